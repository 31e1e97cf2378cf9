import { describe, expect, it } from 'vitest';
import { MemoryStateStore, rbac, TaskController, type AuthRequest, type CommandDone } from '../../src/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { failure, gate, harness, track } from './support.js';

const HOUR = 3_600_000;

/** No executor: a resumed instance goes back to queued and stays there. */
async function world(extra: Parameters<typeof harness>[0] = {}) {
  const asked: AuthRequest[] = [];
  const h = await harness({
    authorize: (req) => {
      asked.push(req);
      return req.actor !== 'mallory';
    },
    pollMs: 60_000, // sweeps play no part here: fewer of them keep hours of fake time cheap
    ...extra,
  });
  const c = h.controller;
  c.define({ id: 'load', group: 'etl' });
  const a = await c.submit('load', { actor: 'ops', logicalDate: '2024-01-01' });
  const b = await c.submit('load', { actor: 'ops', logicalDate: '2024-01-02' });
  await c.pause({ instanceIds: [a.id, b.id] }, { actor: 'ops' });
  return { ...h, c, a, b, asked };
}

describe('scheduled resume: resume(target, { at })', () => {
  it('returns scheduled, changes nothing, and applies when the clock passes `at`, as system:schedule, without asking authorize again', async () => {
    const { c, a, b, asked, advance } = await world();
    const at = new Date(Date.parse('2024-01-01T00:00:00.000Z') + HOUR);
    const res = await c.resume({ instanceIds: [a.id, b.id] }, { actor: 'ops', at, reason: 'after the maintenance window' });
    expect(res).toEqual({ commandId: expect.any(String), action: 'resume', status: 'scheduled', applied: [], rejected: [] });
    expect((await c.get(a.id))?.state).toBe('paused');
    const askedBefore = asked.length;
    expect(asked.at(-1)).toMatchObject({ action: 'resume', actor: 'ops' });

    await advance(HOUR - 1);
    expect((await c.get(a.id))?.state).toBe('paused');
    await advance(1);
    expect((await c.get(a.id))?.state).toBe('queued');
    expect((await c.get(b.id))?.state).toBe('queued');
    expect(asked.length).toBe(askedBefore);

    const entries = await c.audit({ commandId: res.commandId });
    expect(entries.map((e) => [e.kind, e.actor, e.at])).toEqual([
      ['command', 'ops', '2024-01-01T00:00:00.000Z'],
      ['command', 'system:schedule', '2024-01-01T01:00:00.000Z'],
      ['transition', 'system:schedule', '2024-01-01T01:00:00.000Z'],
      ['transition', 'system:schedule', '2024-01-01T01:00:00.000Z'],
    ]);
    expect(entries[0].reason).toBe('scheduled: at 2024-01-01T01:00:00.000Z — after the maintenance window');
    expect(entries[1].result).toMatchObject({ commandId: res.commandId, status: 'completed', applied: [{ instanceId: a.id, to: 'queued' }, { instanceId: b.id, to: 'queued' }] });
    // it applied once: more time passing does nothing
    await advance(10 * HOUR);
    expect(await c.audit({ commandId: res.commandId, actor: 'system:schedule', kind: 'command' })).toHaveLength(1);
    // once applied it cannot be cancelled
    expect((await failure(c.cancelScheduled(res.commandId))).code).toBe('CONFLICT');
  });

  it('a scheduled scope resume releases the held scope when it applies', async () => {
    const { c, advance } = await world();
    await c.pause({ taskId: 'load' }, { actor: 'ops' });
    const res = await c.resume({ taskId: 'load' }, { actor: 'ops', at: '2024-01-01T00:30:00Z' });
    expect(res.status).toBe('scheduled');
    expect(await c.heldScopes()).toHaveLength(1);
    await advance(30 * 60_000);
    expect(await c.heldScopes()).toEqual([]);
    expect((await c.list({ taskId: 'load', state: 'queued' })).items).toHaveLength(2);
  });

  it('the requester must be allowed to resume when scheduling; the later application is not asked again', async () => {
    const { c, a } = await world();
    expect((await failure(c.resume({ instanceId: a.id }, { actor: 'mallory', at: '2024-01-02T00:00:00Z' }))).code).toBe('FORBIDDEN');
    expect(await c.approvals()).toEqual([]);
  });

  it('cancelScheduled prevents it; cancelling twice is CONFLICT, an unknown id NOT_FOUND', async () => {
    const { c, a, advance } = await world();
    const res = await c.resume({ instanceId: a.id }, { actor: 'ops', at: '2024-01-01T00:10:00Z' });
    await c.cancelScheduled(res.commandId, { actor: 'ops', reason: 'not yet' });
    await advance(HOUR);
    expect((await c.get(a.id))?.state).toBe('paused');
    expect((await failure(c.cancelScheduled(res.commandId))).code).toBe('CONFLICT');
    expect((await failure(c.cancelScheduled('01HZZZZZZZZZZZZZZZZZZZZZZZ'))).code).toBe('NOT_FOUND');
    const done = await c.pause({ instanceId: a.id }, { actor: 'ops', idempotencyKey: 'p' });
    expect((await failure(c.cancelScheduled(done.commandId))).code).toBe('NOT_FOUND');
    expect((await c.audit({ commandId: res.commandId })).map((e) => `${e.action}/${e.actor}/${e.reason}`)).toEqual([
      'resume/ops/scheduled: at 2024-01-01T00:10:00.000Z',
      'cancel:resume/ops/not yet',
    ]);
  });

  it('an `at` in the past, now, or unparsable is VALIDATION naming options.at; so is at together with after', async () => {
    const { c, a } = await world();
    for (const at of ['2023-12-31T23:59:59Z', new Date('2024-01-01T00:00:00Z'), 'tomorrow morning', '2024-13-45']) {
      const err = await failure(c.resume({ instanceId: a.id }, { actor: 'ops', at }));
      expect(err.code).toBe('VALIDATION');
      expect(err.issues?.[0].path).toEqual(['options', 'at']);
    }
    const both = await failure(c.resume({ instanceId: a.id }, { actor: 'ops', at: '2024-01-02T00:00:00Z', after: { instanceIds: [a.id] } }));
    expect(both.code).toBe('VALIDATION');
    expect(both.message).toMatch(/options\.at/);
    expect((await failure(c.resume({ instanceId: a.id }, { actor: 'ops', after: { instanceIds: [] } }))).message).toMatch(/options\.after\.instanceIds/);
    // an instance that does not exist could never succeed
    expect((await failure(c.resume({ instanceId: a.id }, { actor: 'ops', after: { instanceIds: ['missing'] } }))).code).toBe('NOT_FOUND');
    expect(await c.audit({ kind: 'command', action: 'resume' })).toEqual([]);
  });

  it('is kept in the StateStore: a second controller on the same store carries it out after the first shut down', async () => {
    const clock = new FakeClock('2024-01-01T00:00:00Z');
    const store = new MemoryStateStore();
    const make = () => {
      const c = track(new TaskController({ store, timers: clock, clock: clock.date }));
      c.define({ id: 'load' });
      return c;
    };
    const first = make();
    await first.start();
    const i = await first.submit('load', { actor: 'ops' });
    await first.pause({ instanceId: i.id }, { actor: 'ops' });
    const res = await first.resume({ instanceId: i.id }, { actor: 'ops', at: '2024-01-01T02:00:00Z' });
    await first.shutdown({ graceMs: 0 });
    const byFirst: CommandDone[] = [];
    first.on('command_done', (e) => byFirst.push(e));

    const second = make();
    const bySecond: CommandDone[] = [];
    second.on('command_done', (e) => bySecond.push(e));
    await second.start();
    await clock.advance(HOUR);
    expect((await second.get(i.id))?.state).toBe('paused');
    await clock.advance(HOUR);
    expect((await second.get(i.id))?.state).toBe('queued');
    expect(byFirst).toEqual([]);
    expect(bySecond).toEqual([expect.objectContaining({ action: 'resume', actor: 'system:schedule', commandId: res.commandId, outcome: 'completed' })]);
  });

  it('a controller started after `at` passed applies it at once', async () => {
    const clock = new FakeClock('2024-01-01T00:00:00Z');
    const store = new MemoryStateStore();
    const tool = track(new TaskController({ store, timers: clock, clock: clock.date })); // an operator's tool, never started
    tool.define({ id: 'load' });
    const i = await tool.submit('load', { actor: 'ops' });
    await tool.pause({ instanceId: i.id }, { actor: 'ops' });
    await tool.resume({ instanceId: i.id }, { actor: 'ops', at: '2024-01-01T00:05:00Z' });
    await clock.advance(HOUR);
    const worker = track(new TaskController({ store, timers: clock, clock: clock.date }));
    worker.define({ id: 'load' });
    await worker.start();
    expect((await worker.get(i.id))?.state).toBe('queued');
  });
});

describe('conditional resume: resume(target, { after: { instanceIds } })', () => {
  it('applies once every named instance succeeded, not before', async () => {
    const gates = new Map<string, ReturnType<typeof gate<void>>>();
    const h = await harness({
      handlers: {
        up: async (ctx) => {
          const g = gate();
          gates.set(ctx.params.name as string, g);
          await g.promise;
        },
        down: async () => 'ok',
      },
    });
    const c = h.controller;
    c.define({ id: 'up' });
    c.define({ id: 'down' });
    await c.pause({ taskId: 'down' }, { actor: 'ops' });
    const d = await c.submit('down', { actor: 'ops' });
    expect(d.state).toBe('paused');
    const u1 = await c.submit('up', { actor: 'ops', params: { name: 'u1' } });
    const u2 = await c.submit('up', { actor: 'ops', params: { name: 'u2' } });
    await h.until(u2.id, 'running');

    const res = await c.resume({ taskId: 'down' }, { actor: 'ops', after: { instanceIds: [u1.id, u2.id] } });
    expect(res.status).toBe('scheduled');
    gates.get('u1')!.open();
    await h.until(u1.id, 'succeeded');
    await h.advance(5_000);
    expect((await c.get(d.id))?.state).toBe('paused');

    gates.get('u2')!.open();
    await h.until(u2.id, 'succeeded');
    const done = await h.until(d.id, 'succeeded', { stepMs: 100, maxMs: 5_000 });
    expect(done.state).toBe('succeeded');
    expect((await c.audit({ commandId: res.commandId, kind: 'command' })).map((e) => e.actor)).toEqual(['ops', 'system:schedule']);
  });

  it('an instance that fails keeps it waiting; cancelScheduled ends it', async () => {
    const h = await harness({ handlers: { up: async () => Promise.reject(new Error('boom')) } });
    const c = h.controller;
    c.define({ id: 'up' });
    c.define({ id: 'down' });
    await c.pause({ taskId: 'down' }, { actor: 'ops' });
    const d = await c.submit('down');
    const u = await c.submit('up');
    await h.until(u.id, 'failed');
    const res = await c.resume({ instanceId: d.id }, { after: { instanceIds: [u.id] } });
    await h.advance(10_000);
    expect((await c.get(d.id))?.state).toBe('paused');
    await c.cancelScheduled(res.commandId);
    await c.rerun({ instanceId: u.id });
    await h.advance(10_000);
    expect((await c.get(d.id))?.state).toBe('paused');
  });
});

describe('scheduled resume that needs approval', () => {
  it('waits for approval first; once approved it is scheduled, and applies at `at`', async () => {
    const policy = rbac({ roles: { ops: [{ actions: ['*'] }] }, actors: { ops: ['ops'], ann: ['ops'], ben: ['ops'] } });
    const { c, a, advance } = await world({ authorize: policy, approvals: { rules: [{ actions: ['resume'], groups: ['etl'] }] } });
    const res = await c.resume({ instanceId: a.id }, { actor: 'ann', at: '2024-01-01T02:00:00Z' });
    expect(res.status).toBe('awaiting_approval');
    await advance(HOUR);
    expect((await c.get(a.id))?.state).toBe('paused');

    const approved = await c.approve(res.commandId, { actor: 'ben' });
    expect(approved).toMatchObject({ commandId: res.commandId, status: 'scheduled', applied: [] });
    expect(await c.approvals()).toEqual([expect.objectContaining({ commandId: res.commandId, state: 'approved', decidedBy: 'ben' })]);
    expect((await c.get(a.id))?.state).toBe('paused');
    expect((await failure(c.approve(res.commandId, { actor: 'ann' }))).message).toMatch(/already approved/);
    expect((await failure(c.reject(res.commandId, { actor: 'ben' }))).code).toBe('CONFLICT');
    await advance(HOUR);
    expect((await c.get(a.id))?.state).toBe('queued');
    expect((await c.audit({ instanceId: a.id, kind: 'transition' })).at(-1)).toMatchObject({ actor: 'system:schedule', commandId: res.commandId });
  });
});

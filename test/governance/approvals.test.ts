import { describe, expect, it } from 'vitest';
import { rbac, type AuthRequest, type Rule } from '../../src/index.js';
import { failure, harness } from './support.js';

const policy = rbac({
  roles: {
    finops: [{ actions: ['pause', 'resume', 'stop', 'rerun'], groups: ['finance'] }],
    etlops: [{ actions: ['pause', 'resume', 'stop', 'rerun'], groups: ['etl'] }],
    admin: [{ actions: ['*'] }],
    viewer: [],
  },
  actors: { ann: ['finops'], ben: ['finops'], carl: ['admin'], dora: ['etlops'], vic: ['viewer'] },
});

const RULES: Rule[] = [{ actions: ['stop', 'rerun'], groups: ['finance'] }, { actions: ['*'], all: true }];

/** No executor: instances stay queued, which is all these stories need. */
async function world(rules: Rule[] = RULES, extra: { ttlMs?: number; asked?: AuthRequest[] } = {}) {
  const h = await harness({
    authorize: (req) => {
      extra.asked?.push(req);
      return policy(req);
    },
    approvals: { rules, ttlMs: extra.ttlMs ?? 60_000 },
  });
  const c = h.controller;
  c.define({ id: 'payroll', group: 'finance' });
  c.define({ id: 'ledger', group: 'finance' });
  c.define({ id: 'load', group: 'etl' });
  const payroll = await c.submit('payroll', { actor: 'carl' });
  const load = await c.submit('load', { actor: 'carl' });
  return { ...h, c, payroll, load };
}

describe('approvals: commands that need a second person', () => {
  it('a rule naming submit or backfill (which never wait for approval) is refused when the controller is built, naming the field', async () => {
    const { TaskController } = await import('../../src/index.js');
    for (const [actions, field] of [[['submit'], 'options.approvals.rules.0.actions.0'], [['stop', 'backfill'], 'options.approvals.rules.0.actions.1']] as const) {
      expect(() => new TaskController({ approvals: { rules: [{ actions: [...actions] }] } })).toThrow(
        expect.objectContaining({ code: 'VALIDATION', message: expect.stringContaining(`${field}: approvals apply to 'pause', 'resume', 'stop' and 'rerun'`) }),
      );
    }
    expect(() => new TaskController({ approvals: { rules: [{ actions: ['stop', 'rerun'], groups: ['finance'] }, { actions: ['*'], all: true }] } })).not.toThrow();
  });

  it('a stop matching a rule waits as awaiting_approval, changes nothing, and is audited and listed', async () => {
    const { c, payroll } = await world();
    const events: unknown[] = [];
    c.on('transition', (e) => events.push(e));
    const before = await c.get(payroll.id);

    const res = await c.stop({ instanceId: payroll.id }, { actor: 'ann', reason: 'bad input file' });
    expect(res).toEqual({ commandId: expect.any(String), action: 'stop', status: 'awaiting_approval', applied: [], rejected: [] });
    expect(await c.get(payroll.id)).toEqual(before);
    expect(events).toEqual([]);
    expect(await c.audit({ commandId: res.commandId })).toEqual([
      expect.objectContaining({ kind: 'command', action: 'stop', actor: 'ann', reason: 'bad input file', result: res, target: { instanceId: payroll.id } }),
    ]);
    expect(await c.approvals()).toEqual([
      {
        commandId: res.commandId,
        action: 'stop',
        target: { instanceId: payroll.id },
        options: { reason: 'bad input file' },
        requestedBy: 'ann',
        state: 'awaiting',
        createdAt: '2024-01-01T00:00:00.000Z',
        expiresAt: '2024-01-01T00:01:00.000Z',
      },
    ]);
    // a command outside the rules applies at once
    expect((await c.pause({ instanceId: payroll.id }, { actor: 'ann' })).status).toBe('completed');
  });

  it('another person approves: it applies exactly once, as the original command (same commandId, the requester in the transitions)', async () => {
    const { c, payroll } = await world();
    const commands: unknown[] = [];
    c.on('command', (e) => commands.push(e));
    const req = await c.stop({ instanceId: payroll.id }, { actor: 'ann', reason: 'bad input file' });

    const res = await c.approve(req.commandId, { actor: 'ben', reason: 'checked with ann' });
    expect(res).toEqual({
      commandId: req.commandId,
      action: 'stop',
      status: 'completed',
      applied: [{ instanceId: payroll.id, from: 'queued', to: 'stopped', changed: true }],
      rejected: [],
    });
    expect((await c.get(payroll.id))?.state).toBe('stopped');
    const transitions = await c.audit({ instanceId: payroll.id, kind: 'transition' });
    expect(transitions.filter((t) => t.to === 'stopped')).toEqual([expect.objectContaining({ actor: 'ann', commandId: req.commandId, reason: 'bad input file' })]);
    // `command` events: the request, then its application; the decision is no ControlResult
    expect(commands).toEqual([
      expect.objectContaining({ commandId: req.commandId, actor: 'ann', status: 'awaiting_approval', applied: [] }),
      expect.objectContaining({ commandId: req.commandId, actor: 'ann', status: 'completed', applied: res.applied }),
    ]);
    const entries = await c.audit({ commandId: req.commandId, kind: 'command' });
    expect(entries.map((e) => [e.action, e.actor])).toEqual([
      ['stop', 'ann'], // the request
      ['stop', 'ann'], // its application
      ['approve:stop', 'ben'],
    ]);
    expect(entries[2].reason).toBe('checked with ann');
    expect(await c.approvals({ state: 'approved' })).toEqual([
      expect.objectContaining({ commandId: req.commandId, state: 'approved', requestedBy: 'ann', decidedBy: 'ben', reason: 'checked with ann', result: res }),
    ]);
    // a second decision of either kind is a CONFLICT and changes nothing
    expect((await failure(c.approve(req.commandId, { actor: 'carl' }))).code).toBe('CONFLICT');
    expect((await failure(c.reject(req.commandId, { actor: 'carl' }))).code).toBe('CONFLICT');
    expect((await c.audit({ instanceId: payroll.id, kind: 'transition' })).filter((t) => t.to === 'stopped')).toHaveLength(1);
  });

  it('the requester cannot approve their own command (FORBIDDEN) but may withdraw it with reject', async () => {
    const { c, payroll } = await world();
    const req = await c.rerun({ instanceId: payroll.id }, { actor: 'ann' });
    expect(req.status).toBe('awaiting_approval');
    const err = await failure(c.approve(req.commandId, { actor: 'ann' }));
    expect(err.code).toBe('FORBIDDEN');
    expect(err.message).toMatch(/ann requested command .* and cannot approve it/);
    expect((await c.approvals())[0].state).toBe('awaiting');

    await c.reject(req.commandId, { actor: 'ann', reason: 'wrong instance' });
    expect(await c.approvals()).toEqual([expect.objectContaining({ state: 'rejected', decidedBy: 'ann', reason: 'wrong instance' })]);
    expect((await failure(c.approve(req.commandId, { actor: 'ben' }))).code).toBe('CONFLICT');
    expect((await c.get(payroll.id))?.attempt).toBe(1);
    expect((await c.audit({ commandId: req.commandId })).map((e) => `${e.action}/${e.actor}`)).toEqual(['rerun/ann', 'approve:rerun/ann', 'reject:rerun/ann']);
  });

  it('an approver must pass authorize for the action (so must anyone else who rejects)', async () => {
    const asked: AuthRequest[] = [];
    const { c, payroll } = await world(RULES, { asked });
    const req = await c.stop({ instanceId: payroll.id }, { actor: 'ann' });
    asked.length = 0;
    for (const actor of ['vic', 'dora', 'mallory']) {
      expect((await failure(c.approve(req.commandId, { actor }))).code).toBe('FORBIDDEN');
      expect((await failure(c.reject(req.commandId, { actor }))).code).toBe('FORBIDDEN');
    }
    expect(asked.map((r) => [r.action, r.actor, r.tasks, r.groups])).toContainEqual(['stop', 'dora', ['payroll'], ['finance']]);
    expect((await c.approvals())[0].state).toBe('awaiting');
    expect((await c.get(payroll.id))?.state).toBe('queued');
    await c.approve(req.commandId, { actor: 'carl' });
    expect((await c.get(payroll.id))?.state).toBe('stopped');
  });

  it('after ttlMs the request expires: approve and reject are CONFLICT, approvals() shows it expired (fake clock)', async () => {
    const { c, payroll, advance } = await world(RULES, { ttlMs: 60_000 });
    const a = await c.stop({ instanceId: payroll.id }, { actor: 'ann' });
    const b = await c.rerun({ taskId: 'payroll' }, { actor: 'ann' });
    await advance(59_999);
    expect((await c.approvals({ state: 'awaiting' })).map((r) => r.commandId)).toEqual([a.commandId, b.commandId]);
    expect((await c.metrics()).commands.stop.awaitingApproval).toBe(1);
    await advance(1);
    // listed as expired as soon as the ttl passed, before any sweep or decision touched it
    expect((await c.approvals()).map((r) => r.state)).toEqual(['expired', 'expired']);
    expect(await c.approvals({ state: 'awaiting' })).toEqual([]);
    const err = await failure(c.approve(a.commandId, { actor: 'ben' }));
    expect(err.code).toBe('CONFLICT');
    expect(err.message).toMatch(/expired/);
    expect((await failure(c.reject(b.commandId, { actor: 'ann' }))).code).toBe('CONFLICT');
    expect((await c.approvals({ state: 'expired' })).map((r) => r.commandId)).toEqual([a.commandId, b.commandId]);
    expect((await c.metrics()).commands.stop.awaitingApproval).toBe(0);
    expect((await c.get(payroll.id))?.state).toBe('queued');
    expect((await c.audit({ commandId: a.commandId })).map((e) => `${e.action}/${e.actor}`)).toContain('expire:stop/system:approvals');
  });

  it('an unknown command id is NOT_FOUND, for approve and reject alike', async () => {
    const { c } = await world();
    expect((await failure(c.approve('01HZZZZZZZZZZZZZZZZZZZZZZZ', { actor: 'ben' }))).code).toBe('NOT_FOUND');
    expect((await failure(c.reject('nope', { actor: 'ben' }))).code).toBe('NOT_FOUND');
    // a command that applied at once is no approval request either
    const done = await c.pause({ taskId: 'load' }, { actor: 'carl', idempotencyKey: 'k1' });
    expect((await failure(c.approve(done.commandId, { actor: 'ben' }))).code).toBe('NOT_FOUND');
    expect((await failure(c.approve('', { actor: 'ben' }))).code).toBe('VALIDATION');
    expect((await failure(c.approve(done.commandId, {} as never))).code).toBe('VALIDATION');
  });

  it('racing approvers in one process: the command applies once, the loser gets CONFLICT', async () => {
    const { c, payroll } = await world();
    const req = await c.stop({ instanceId: payroll.id }, { actor: 'ann' });
    const outcomes = await Promise.allSettled([
      c.approve(req.commandId, { actor: 'ben' }),
      c.approve(req.commandId, { actor: 'carl' }),
      c.approve(req.commandId, { actor: 'carl' }),
    ]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'CONFLICT' });
    expect((await c.audit({ instanceId: payroll.id, kind: 'transition' })).filter((t) => t.to === 'stopped')).toHaveLength(1);
    expect((await c.audit({ commandId: req.commandId, action: 'stop', kind: 'command' }))).toHaveLength(2);
    expect((await c.approvals())[0]).toMatchObject({ state: 'approved' });
  });

  it('an idempotencyKey on a request returns the same request, not a second one', async () => {
    const { c, payroll } = await world();
    const a = await c.stop({ instanceId: payroll.id }, { actor: 'ann', idempotencyKey: 'stop-payroll' });
    const b = await c.stop({ instanceId: payroll.id }, { actor: 'ann', idempotencyKey: 'stop-payroll' });
    expect(b).toEqual(a);
    expect(await c.approvals()).toHaveLength(1);
    await c.approve(a.commandId, { actor: 'ben' });
    expect((await c.stop({ instanceId: payroll.id }, { actor: 'ann', idempotencyKey: 'stop-payroll' })).status).toBe('completed');
    expect((await c.audit({ instanceId: payroll.id, kind: 'transition' })).filter((t) => t.to === 'stopped')).toHaveLength(1);
  });
});

describe('approvals: which commands a rule matches', () => {
  it('a rule with all: true matches only { all: true } targets', async () => {
    const { c, payroll, load } = await world([{ actions: ['*'], all: true }]);
    expect((await c.pause({ taskId: 'load' }, { actor: 'carl' })).status).toBe('completed');
    expect((await c.stop({ instanceIds: [payroll.id, load.id] }, { actor: 'carl' })).status).toBe('completed');
    expect((await c.rerun({ group: 'finance' }, { actor: 'carl' })).status).toBe('completed');
    const all = await c.rerun({ all: true }, { actor: 'carl' });
    expect(all.status).toBe('awaiting_approval');
    expect((await c.pause({ all: true }, { actor: 'carl' })).status).toBe('awaiting_approval');
    expect(await c.heldScopes()).toEqual([expect.objectContaining({ id: 'task:load' })]);
  });

  it('a rule naming no tasks, groups or all matches any target of its actions', async () => {
    const { c, payroll, load } = await world([{ actions: ['rerun'] }]);
    await c.stop({ instanceIds: [payroll.id, load.id] }, { actor: 'carl' });
    for (const target of [{ instanceId: load.id }, { taskId: 'payroll' }, { group: 'etl' }, { all: true as const }]) {
      expect((await c.rerun(target, { actor: 'carl' })).status).toBe('awaiting_approval');
    }
    expect((await c.pause({ taskId: 'load' }, { actor: 'carl' })).status).toBe('completed');
  });

  it('a rule naming groups matches task targets of that group and instance targets with one such instance', async () => {
    const { c, payroll, load } = await world();
    await c.pause({ instanceIds: [payroll.id, load.id] }, { actor: 'carl' });
    expect((await c.stop({ taskId: 'ledger' }, { actor: 'carl' })).status).toBe('awaiting_approval');
    expect((await c.stop({ instanceIds: [load.id, payroll.id] }, { actor: 'carl' })).status).toBe('awaiting_approval');
    expect((await c.stop({ instanceId: load.id }, { actor: 'carl' })).status).toBe('completed');
  });

  it('a rule naming tasks also matches a group target that would touch those tasks', async () => {
    const { c, payroll } = await world([{ actions: ['stop'], tasks: ['pay*'] }]);
    const res = await c.stop({ group: 'finance' }, { actor: 'carl' });
    expect(res.status).toBe('awaiting_approval');
    expect((await c.get(payroll.id))?.state).toBe('queued');
    expect((await c.stop({ group: 'etl' }, { actor: 'carl' })).status).toBe('completed');
  });
});

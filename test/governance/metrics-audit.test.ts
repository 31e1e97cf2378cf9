import { describe, expect, it } from 'vitest';
import type { AuditEntry, AuthRequest } from '../../src/index.js';
import { failure, gate, harness } from './support.js';

describe('metrics(): a snapshot of commands, instances and the queue', () => {
  it('counts total/applied/rejected/denied/awaitingApproval per action, latency percentiles, instances per state, queue, running, transitions', async () => {
    const gates = new Map<string, () => void>();
    let holdAuthorize: Promise<void> | undefined;
    const h = await harness({
      concurrency: 2,
      handlers: {
        work: async (ctx) => {
          const g = gate();
          gates.set(ctx.instance.id, () => g.open());
          const aborted = new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }));
          await Promise.race([g.promise, aborted]);
        },
      },
      authorize: async (req: AuthRequest) => {
        if (holdAuthorize) await holdAuthorize;
        return req.actor !== 'mallory';
      },
      approvals: { rules: [{ actions: ['rerun'] }] },
    });
    const c = h.controller;
    c.define({ id: 'work' });
    const ids: string[] = [];
    for (let n = 0; n < 5; n++) ids.push((await c.submit('work', { actor: 'cron' })).id);
    await h.until(ids[1], 'running');

    let m = await c.metrics();
    expect(m).toMatchObject({ running: 2, queueLength: 3, inFlightCommands: 0, commands: {} });
    expect(m.instances).toMatchObject({ running: 2, queued: 3, paused: 0, succeeded: 0 });
    expect(Object.keys(m.instances)).toHaveLength(10);

    // pause: one applied, one applied unchanged, one denied, one dry run
    await c.pause({ instanceId: ids[2] }, { actor: 'ops' });
    await c.pause({ instanceId: ids[2] }, { actor: 'ops' });
    await failure(c.pause({ instanceId: ids[3] }, { actor: 'mallory' }));
    await c.pause({ instanceId: ids[3] }, { actor: 'ops', dryRun: true });
    // stop: one applied, one rejected (already succeeded)
    gates.get(ids[0])!();
    await h.until(ids[0], 'succeeded');
    await c.stop({ instanceId: ids[3] }, { actor: 'ops', force: true });
    await c.stop({ instanceId: ids[0] }, { actor: 'ops' });
    // rerun: waits for approval; resume: invalid options
    const req = await c.rerun({ instanceId: ids[0] }, { actor: 'ops' });
    await failure(c.resume({ instanceId: ids[2] }, { actor: 'ops', strategy: 'sideways' } as never));

    m = await c.metrics();
    expect(m.commands.pause).toMatchObject({ total: 4, applied: 2, rejected: 0, denied: 1, awaitingApproval: 0 });
    expect(m.commands.stop).toMatchObject({ total: 2, applied: 1, rejected: 1, denied: 0, awaitingApproval: 0 });
    expect(m.commands.rerun).toMatchObject({ total: 1, applied: 0, rejected: 0, denied: 0, awaitingApproval: 1 });
    expect(m.commands.resume).toMatchObject({ total: 1, applied: 0, rejected: 0, denied: 0 });
    for (const cm of Object.values(m.commands)) {
      const { p50, p95, p99 } = cm.latencyMs;
      expect(Number.isFinite(p99)).toBe(true);
      expect(0 <= p50 && p50 <= p95 && p95 <= p99).toBe(true);
    }
    // ids[1] running; ids[0] finished and ids[3] took its slot, was stopped, and ids[4] took it; ids[2] paused
    expect(m.instances).toMatchObject({ running: 2, queued: 0, paused: 1, stopped: 1, succeeded: 1 });
    expect(m.running).toBe(2);
    expect(m.queueLength).toBe(0);
    expect(m.transitions).toBe((await c.audit({ kind: 'transition' })).length);

    // the approved rerun applies: counted as applied, not as a second call
    await c.approve(req.commandId, { actor: 'lead' });
    m = await c.metrics();
    expect(m.commands.rerun).toMatchObject({ total: 1, applied: 1, awaitingApproval: 0 });
    expect(m.instances.queued).toBe(1);
    expect(m.queueLength).toBe(1);

    // a held scope keeps its queued instances out of this controller's queue
    await c.pause({ taskId: 'work' }, { actor: 'ops' });
    await c.resume({ instanceId: ids[2] }, { actor: 'ops' }).catch(() => undefined);
    expect((await c.metrics()).queueLength).toBe(0);

    // a command in flight (here: waiting for authorize)
    const hold = gate();
    holdAuthorize = hold.promise;
    const pending = c.stop({ instanceId: ids[1] }, { actor: 'ops' });
    expect((await c.metrics()).inFlightCommands).toBe(1);
    hold.open();
    holdAuthorize = undefined;
    await pending;
    expect((await c.metrics()).inFlightCommands).toBe(0);
    for (const open of gates.values()) open();
  });

  it('latency percentiles come from the calls it measured', async () => {
    const h = await harness();
    const c = h.controller;
    c.define({ id: 'job' });
    const i = await c.submit('job');
    for (let n = 0; n < 50; n++) await c.pause({ instanceId: i.id });
    const { latencyMs, total } = (await c.metrics()).commands.pause;
    expect(total).toBe(50);
    expect(latencyMs.p50).toBeGreaterThan(0);
    expect(latencyMs.p99).toBeLessThan(1000);
  });
});

describe('audit queries and export', () => {
  async function world() {
    const h = await harness({ handlers: { extract: async () => 'ok', load: async () => 'ok' }, authorize: (req) => req.actor !== 'mallory' });
    const c = h.controller;
    c.define({ id: 'extract', schedule: { every: 'P1D' } });
    c.define({ id: 'load' });
    const e1 = await c.submit('extract', { actor: 'cron', logicalDate: '2023-12-01' });
    await h.until(e1.id, 'succeeded');
    await h.advance(60_000); // 00:01
    const l1 = await c.submit('load', { actor: 'cron' });
    await h.until(l1.id, 'succeeded');
    await h.advance(60_000); // 00:02
    const bf = await c.backfill('extract', { from: '2023-11-01', to: '2023-11-03', actor: 'ann' });
    await bf.done;
    await h.advance(60_000); // 00:03
    await c.rerun({ instanceId: e1.id }, { actor: 'ann', reason: 'fix' });
    await failure(c.stop({ taskId: 'load' }, { actor: 'mallory' }));
    const bfInstances = (await c.list({ backfillId: bf.id })).items;
    await c.rerun({ instanceId: bfInstances[0].id }, { actor: 'bob' });
    await h.until(bfInstances[0].id, 'succeeded');
    return { ...h, c, e1, l1, bf, bfInstances };
  }

  it('filters by action, taskId and backfillId (a command entry matches through its target or the instances it touched)', async () => {
    const { c, e1, bf, bfInstances } = await world();
    const reruns = await c.audit({ action: 'rerun' });
    expect(reruns.map((e) => [e.kind, e.actor])).toEqual([
      ['command', 'ann'],
      ['transition', 'ann'],
      ['command', 'bob'],
      ['transition', 'bob'],
    ]);
    const extract = await c.audit({ taskId: 'extract' });
    expect(extract.length).toBeGreaterThan(0);
    expect(extract.every((e) => e.taskId === 'extract' || e.taskIds?.includes('extract'))).toBe(true);
    expect(extract.some((e) => e.kind === 'command' && e.action === 'rerun' && e.target && 'instanceId' in e.target && e.target.instanceId === e1.id)).toBe(true);
    const load = await c.audit({ taskId: 'load' });
    expect(load.some((e) => e.actor === 'mallory' && e.action === 'stop')).toBe(true);
    expect(load.some((e) => e.taskId === 'extract')).toBe(false);

    const ofBackfill = await c.audit({ backfillId: bf.id });
    expect(ofBackfill[0]).toMatchObject({ kind: 'command', action: 'backfill', actor: 'ann', backfillId: bf.id });
    const ids = new Set(bfInstances.map((i) => i.id));
    for (const e of ofBackfill.slice(1)) {
      expect(e.kind === 'transition' ? ids.has(e.instanceId!) : e.backfillIds?.includes(bf.id)).toBe(true);
    }
    // bob's rerun named an instance, not the backfill: it still matches, through the instance it touched
    expect(ofBackfill.some((e) => e.kind === 'command' && e.actor === 'bob')).toBe(true);
    expect(ofBackfill.some((e) => e.instanceId === e1.id)).toBe(false);
    expect(await c.audit({ backfillId: bf.id, action: 'rerun', kind: 'command' })).toHaveLength(1);
  });

  it('since (inclusive) and until (exclusive), as ISO strings or Dates', async () => {
    const { c, e1, l1 } = await world();
    const all = await c.audit();
    const at = (min: number) => `2024-01-01T00:0${min}:00.000Z`;
    const between = await c.audit({ since: at(1), until: new Date(at(2)) });
    expect(between.length).toBeGreaterThan(0);
    expect(between.every((e) => e.at >= at(1) && e.at < at(2))).toBe(true);
    expect(between.filter((e) => e.kind === 'transition').map((e) => e.instanceId)).toEqual([l1.id, l1.id, l1.id]);
    const early = await c.audit({ until: at(1) });
    expect(early.every((e) => e.at < at(1))).toBe(true);
    expect(early.some((e) => e.instanceId === e1.id)).toBe(true);
    expect([...early, ...(await c.audit({ since: at(1) }))]).toEqual(all);
    expect((await c.audit({ since: at(3), actor: 'ann' })).map((e) => e.action)).toEqual(['rerun', 'rerun']);
    expect((await failure(c.audit({ since: 'last tuesday' }))).message).toMatch(/^filter\.since/);
  });

  it('auditStream yields every match oldest first, across pages, for export as JSON lines', async () => {
    const { c, bf } = await world();
    const all = await c.audit();
    expect(all.length).toBeGreaterThan(20);
    const sortedIds = all.map((e) => e.id);
    expect([...sortedIds].sort()).toEqual(sortedIds);

    for (const pageSize of [1, 3, 7, all.length, all.length + 5, undefined]) {
      const streamed: AuditEntry[] = [];
      for await (const entry of c.auditStream({ pageSize })) streamed.push(entry);
      expect(streamed).toEqual(all);
    }
    const filtered: AuditEntry[] = [];
    for await (const entry of c.auditStream({ backfillId: bf.id, kind: 'transition', pageSize: 2 })) filtered.push(entry);
    expect(filtered).toEqual(await c.audit({ backfillId: bf.id, kind: 'transition' }));
    expect(filtered.length).toBeGreaterThan(2);

    const lines: string[] = [];
    for await (const entry of c.auditStream({ since: '2024-01-01T00:03:00Z' })) lines.push(JSON.stringify(entry));
    expect(lines.map((l) => JSON.parse(l) as AuditEntry)).toEqual(await c.audit({ since: '2024-01-01T00:03:00Z' }));

    const bad = async (f: object) => {
      const it = c.auditStream(f as never)[Symbol.asyncIterator]();
      return failure(it.next());
    };
    expect((await bad({ pageSize: 0 })).message).toMatch(/pageSize/);
    expect((await bad({ until: 'soon' })).message).toMatch(/^filter\.until/);
  });
});

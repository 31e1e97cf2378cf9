import { describe, expect, it } from 'vitest';
import type { CommandDone, ControlResult } from '../../src/index.js';
import { failure, harness } from './support.js';

/** extract -> transform -> publish, for two logical dates, all succeeded; plus a queued and a paused `load`. */
async function world() {
  const h = await harness({
    handlers: { extract: async () => 1, transform: async () => 2, publish: async () => 3, load: async () => 4 },
    authorize: (req) => req.actor !== 'mallory',
  });
  const c = h.controller;
  c.define({ id: 'extract', group: 'etl' });
  c.define({ id: 'transform', group: 'etl', dependsOn: ['extract'] });
  c.define({ id: 'publish', dependsOn: ['transform'] });
  c.define({ id: 'load', group: 'etl' });
  const days = ['2024-01-01', '2024-01-02'];
  const ids: Record<string, string> = {};
  // dependants first, so that each is pending before its upstream can finish
  for (const day of days) {
    for (const t of ['publish', 'transform', 'extract']) ids[`${t}@${day}`] = (await c.submit(t, { logicalDate: day, actor: 'cron' })).id;
  }
  for (const id of Object.values(ids)) await h.until(id, 'succeeded');
  await c.pause({ taskId: 'load' }, { actor: 'ops' });
  const held = await c.submit('load', { actor: 'cron' });
  const snapshot = async () => ({
    instances: (await c.list({ limit: 1000 })).items,
    audit: await c.audit(),
    scopes: await c.heldScopes(),
  });
  return { ...h, c, ids, held, snapshot };
}

describe('impact preview: dryRun on every control command', () => {
  it('returns the would-be ControlResult of pause, resume, stop and rerun and changes, audits and emits nothing', async () => {
    const { c, ids, held, snapshot } = await world();
    const before = await snapshot();
    const events: unknown[] = [];
    c.on('transition', (e) => events.push(e));
    c.on('command', (e) => events.push(e));
    const done: CommandDone[] = [];
    c.on('command_done', (e) => done.push(e));

    const pause = await c.pause({ group: 'etl' }, { actor: 'ops', dryRun: true });
    expect(pause).toMatchObject({ action: 'pause', status: 'completed', rejected: [] });
    expect(pause.applied).toEqual([{ instanceId: held.id, from: 'paused', to: 'paused', changed: false }]);

    const resume = await c.resume({ taskId: 'load' }, { actor: 'ops', dryRun: true });
    expect(resume.applied).toEqual([{ instanceId: held.id, from: 'paused', to: 'queued', changed: true }]);

    const stop = await c.stop({ instanceIds: [held.id, ids['extract@2024-01-01']] }, { actor: 'ops', dryRun: true });
    expect(stop.applied).toEqual([{ instanceId: held.id, from: 'paused', to: 'stopped', changed: true }]);
    expect(stop.rejected).toEqual([{ instanceId: ids['extract@2024-01-01'], code: 'ILLEGAL_TRANSITION', message: expect.any(String) }]);

    const rerun = await c.rerun({ taskId: 'transform' }, { actor: 'ops', dryRun: true });
    expect(rerun.applied.map((a) => a.instanceId)).toEqual([ids['transform@2024-01-01'], ids['transform@2024-01-02']]);

    expect(await snapshot()).toEqual(before);
    expect(events).toEqual([]);
    expect(done.map((d) => [d.action, d.outcome])).toEqual([
      ['pause', 'dry_run'],
      ['resume', 'dry_run'],
      ['stop', 'dry_run'],
      ['rerun', 'dry_run'],
    ]);
    // the preview is what the real command then does
    const real = await c.resume({ taskId: 'load' }, { actor: 'ops' });
    expect(real.applied).toEqual(resume.applied);
  });

  it('rerun with downstream includes the dependants of each date, in dependency order', async () => {
    const { c, ids, snapshot } = await world();
    const before = await snapshot();
    const res: ControlResult = await c.rerun({ instanceId: ids['extract@2024-01-02'] }, { actor: 'ops', downstream: true, dryRun: true });
    expect(res.applied).toEqual([
      { instanceId: ids['extract@2024-01-02'], from: 'succeeded', to: 'queued', changed: true },
      { instanceId: ids['transform@2024-01-02'], from: 'succeeded', to: 'pending', changed: true },
      { instanceId: ids['publish@2024-01-02'], from: 'succeeded', to: 'pending', changed: true },
    ]);
    expect(await snapshot()).toEqual(before);
    const without = await c.rerun({ instanceId: ids['extract@2024-01-02'] }, { actor: 'ops', dryRun: true });
    expect(without.applied).toHaveLength(1);
  });

  it('a dry run is still asked of authorize, ignores idempotency keys, and previews a command that would need approval', async () => {
    const h = await harness({ approvals: { rules: [{ actions: ['stop'] }] }, authorize: (req) => req.actor === 'ops' });
    const c = h.controller;
    c.define({ id: 'job' });
    const i = await c.submit('job', { actor: 'ops' });
    expect((await failure(c.stop({ instanceId: i.id }, { actor: 'mallory', dryRun: true }))).code).toBe('FORBIDDEN');
    const preview = await c.stop({ instanceId: i.id }, { actor: 'ops', dryRun: true, idempotencyKey: 'k' });
    expect(preview).toMatchObject({ status: 'completed', applied: [{ instanceId: i.id, from: 'queued', to: 'stopped' }] });
    expect(await c.approvals()).toEqual([]);
    const real = await c.stop({ instanceId: i.id }, { actor: 'ops', idempotencyKey: 'k' });
    expect(real.status).toBe('awaiting_approval');
    expect(real.commandId).not.toBe(preview.commandId);
    expect((await c.get(i.id))?.state).toBe('queued');
  });
});

// What a backfill does with dates that already have an instance (reprocess none/failed/all),
// and what a dry run reports about it without changing anything.
import { describe, expect, it } from 'vitest';
import { MemoryStateStore, type Instance, type TaskHandler } from '../../src/index.js';
import { controllerWith, untilState } from '../support.js';
import { allInstances, sum, utcDays, within } from './controller-support.js';

const daily = { cron: '0 0 * * *' };
const day = (d: number) => `2024-01-0${d}T00:00:00.000Z`;

const handlers: Record<string, TaskHandler> = {
  etl: (ctx) => {
    if (ctx.params.outcome === 'fail') throw new Error('bad input');
    return { ran: ctx.params.run ?? 'adhoc' };
  },
};

/**
 * Days 2..5 of January already have an instance: 2 succeeded, 3 failed, 4 stopped, 5 paused.
 * Days 1 and 6 have none. Returns a started worker controller on that store.
 */
async function withHistory() {
  const store = new MemoryStateStore();
  const { controller: operator } = controllerWith(undefined, { store });
  operator.define({ id: 'etl', schedule: daily });
  const ok = await operator.submit('etl', { logicalDate: day(2), params: { outcome: 'ok' } });
  const bad = await operator.submit('etl', { logicalDate: day(3), params: { outcome: 'fail' } });
  const stopped = await operator.submit('etl', { logicalDate: day(4) });
  const paused = await operator.submit('etl', { logicalDate: day(5) });
  await operator.stop({ instanceId: stopped.id });
  await operator.pause({ instanceId: paused.id });

  const { controller, transitions } = controllerWith(handlers, { store });
  controller.define({ id: 'etl', schedule: daily });
  await controller.start();
  await untilState(controller, ok.id, 'succeeded');
  await untilState(controller, bad.id, 'failed');
  const before: Record<string, Instance> = {};
  for (const i of [ok, bad, stopped, paused]) before[i.logicalDate!] = (await store.getInstance(i.id))!;
  expect(Object.values(before).map((i) => i.state)).toEqual(['succeeded', 'failed', 'stopped', 'paused']);
  return { controller, store, transitions, before };
}

/** One instance per date, and nothing else. */
async function datesOf(store: MemoryStateStore): Promise<string[]> {
  return (await allInstances(store, { taskId: 'etl' })).map((i) => i.logicalDate!).sort();
}

describe('backfill reprocess policies against pre-existing instances', () => {
  it("'none' (the default) creates only the missing dates and leaves the others alone", async () => {
    const { controller, store, before } = await withHistory();
    const bf = await controller.backfill('etl', { from: day(1), to: day(6), params: { run: 'bf' } });
    const done = await within(bf.done, 5000, 'the backfill');
    expect(done).toMatchObject({ state: 'completed', total: 6 });
    expect(done.counts.succeeded).toBe(2);
    expect(sum(done.counts)).toBe(2);
    expect(await datesOf(store)).toEqual(utcDays('2024-01-01', 6));
    const mine = await allInstances(store, { backfillId: bf.id });
    expect(mine.map((i) => i.logicalDate).sort()).toEqual([day(1), day(6)]);
    for (const old of Object.values(before)) expect(await store.getInstance(old.id)).toEqual(old);
  });

  it("'failed' reruns the failed and stopped dates, which then belong to the backfill", async () => {
    const { controller, store, before } = await withHistory();
    const bf = await controller.backfill('etl', { from: day(1), to: day(6), reprocess: 'failed', params: { run: 'bf', outcome: 'ok' } });
    const done = await within(bf.done, 5000, 'the backfill');
    expect(done.state).toBe('completed');
    expect(done.counts.succeeded).toBe(4);
    expect(sum(done.counts)).toBe(4);
    expect(await datesOf(store)).toEqual(utcDays('2024-01-01', 6));
    const mine = new Map((await allInstances(store, { backfillId: bf.id })).map((i) => [i.logicalDate!, i]));
    expect([...mine.keys()].sort()).toEqual([day(1), day(3), day(4), day(6)]);
    for (const d of [3, 4]) {
      const i = mine.get(day(d))!;
      expect(i.id).toBe(before[day(d)].id);
      expect(i).toMatchObject({ state: 'succeeded', attempt: 2, backfillId: bf.id, result: { ran: 'bf' } });
    }
    expect(await store.getInstance(before[day(2)].id)).toEqual(before[day(2)]);
    expect(await store.getInstance(before[day(5)].id)).toEqual(before[day(5)]);
  });

  it("'all' reruns every finished date and never touches an unfinished one", async () => {
    const { controller, store, before } = await withHistory();
    const bf = await controller.backfill('etl', { from: day(1), to: day(6), reprocess: 'all', params: { run: 'bf', outcome: 'ok' } });
    const done = await within(bf.done, 5000, 'the backfill');
    expect(done.counts.succeeded).toBe(5);
    expect(sum(done.counts)).toBe(5);
    expect(await datesOf(store)).toEqual(utcDays('2024-01-01', 6));
    const mine = new Map((await allInstances(store, { backfillId: bf.id })).map((i) => [i.logicalDate!, i]));
    expect([...mine.keys()].sort()).toEqual([day(1), day(2), day(3), day(4), day(6)]);
    for (const d of [2, 3, 4]) expect(mine.get(day(d))).toMatchObject({ id: before[day(d)].id, attempt: 2, backfillId: bf.id, state: 'succeeded' });
    // the paused one is not terminal: left as it was, not adopted
    expect(await store.getInstance(before[day(5)].id)).toEqual(before[day(5)]);
    // the reruns are audited as reruns on behalf of the backfill
    const reruns = (await controller.audit({ backfillId: bf.id })).filter((e) => e.kind === 'transition' && e.event === 'rerun');
    expect(reruns.length).toBe(3);
    expect(reruns.every((e) => e.reason === `reprocessed by backfill ${bf.id}` && e.actor === 'system:backfill')).toBe(true);
  });
});

describe('backfill dry run', () => {
  it('creates nothing and audits nothing; reports total, preview and what each policy would do', async () => {
    const { controller, store } = await withHistory();
    const auditBefore = (await controller.audit()).length;
    const instancesBefore = await allInstances(store);

    const plans = {} as Record<'none' | 'failed' | 'all', unknown>;
    for (const reprocess of ['none', 'failed', 'all'] as const) {
      const bf = await controller.backfill('etl', { from: day(1), to: day(6), reprocess, dryRun: true });
      expect(await bf.done).toMatchObject({ id: bf.id, taskId: 'etl', state: 'planned', total: 6 });
      expect(bf.status().state).toBe('planned');
      expect(bf.preview?.map((s) => s.logicalDate)).toEqual(utcDays('2024-01-01', 6));
      expect(bf.preview?.map((s) => s.index)).toEqual([0, 1, 2, 3, 4, 5]);
      plans[reprocess] = bf.plan;
      expect(await controller.getBackfill(bf.id)).toBeUndefined();
    }
    const byPolicy = {
      none: { wouldCreate: 2, wouldRerun: 0, wouldSkip: 4 },
      failed: { wouldCreate: 2, wouldRerun: 2, wouldSkip: 2 },
      all: { wouldCreate: 2, wouldRerun: 3, wouldSkip: 1 },
    };
    for (const policy of ['none', 'failed', 'all'] as const) expect(plans[policy]).toEqual({ total: 6, ...byPolicy[policy], byPolicy });

    expect((await controller.audit()).length).toBe(auditBefore);
    expect(await allInstances(store)).toEqual(instancesBefore);
    expect(await store.listBackfills({})).toEqual([]);

    // and the real runs agree with the plan
    const real = await controller.backfill('etl', { from: day(1), to: day(6), reprocess: 'failed', params: { outcome: 'ok' } });
    await within(real.done, 5000, 'the backfill');
    const audit = await controller.audit({ backfillId: real.id });
    expect(audit.filter((e) => e.kind === 'transition' && e.from === 'none')).toHaveLength(2);
    expect(audit.filter((e) => e.kind === 'transition' && e.event === 'rerun')).toHaveLength(2);
  });

  it('on an empty store: store and audit stay empty; the preview is the first 100 slots in run order', async () => {
    const { controller, store } = controllerWith(handlers);
    controller.define({ id: 'etl', schedule: { cron: '0 6 * * *', timezone: 'America/New_York' } });
    await controller.start();
    const bf = await controller.backfill('etl', { from: '2024-01-01', to: '2024-12-31T23:59', order: 'desc', dryRun: true, actor: 'alice' });
    expect(bf.plan).toEqual({
      total: 366,
      wouldCreate: 366,
      wouldRerun: 0,
      wouldSkip: 0,
      byPolicy: {
        none: { wouldCreate: 366, wouldRerun: 0, wouldSkip: 0 },
        failed: { wouldCreate: 366, wouldRerun: 0, wouldSkip: 0 },
        all: { wouldCreate: 366, wouldRerun: 0, wouldSkip: 0 },
      },
    });
    expect(bf.preview).toHaveLength(100);
    expect(bf.preview![0]).toEqual({ index: 0, logicalDate: '2024-12-31T06:00:00.000-05:00', intervalEnd: '2025-01-01T06:00:00.000-05:00' });
    expect(bf.preview![99].logicalDate).toBe('2024-09-23T06:00:00.000-04:00');
    expect((await bf.done).state).toBe('planned');
    await bf.pause();
    await bf.cancel();
    expect(await allInstances(store)).toEqual([]);
    expect(await controller.audit()).toEqual([]);
    expect(await store.listBackfills({})).toEqual([]);
  });
});

// A backfill respects the rest of the controls: held task and group scopes, reruns by
// backfillId, and dependencies (includeDownstream, UPSTREAM_FAILED).
import { describe, expect, it } from 'vitest';
import { type TransitionEvent } from '../../src/index.js';
import { controllerWith, eventually, sleep } from '../support.js';
import { allInstances, sum, utcDays, within } from './controller-support.js';

const daily = { cron: '0 0 * * *' };

describe('a backfill inside a held scope', () => {
  for (const scope of ['task', 'group'] as const) {
    it(`pausing its ${scope} holds the backfill's instances; it waits, and carries on after the resume`, async () => {
      const { controller, store, transitions } = controllerWith({ etl: () => sleep(3) });
      controller.define({ id: 'etl', group: 'warehouse', schedule: daily });
      await controller.start();
      const target = scope === 'task' ? { taskId: 'etl' } : { group: 'warehouse' };
      const bf = await controller.backfill('etl', { from: '2024-01-01', to: '2024-01-15', mode: 'parallel', concurrency: 2 });
      await eventually(() => bf.status().counts.succeeded >= 3, 'three succeeded');

      await controller.pause(target, { actor: 'ops' });
      // what was running ends (no pause points: a graceful pause lets it finish or pauses it)
      await eventually(async () => {
        const c = await store.countInstances({ backfillId: bf.id });
        return c.running + c.pausing + c.queued === 0;
      }, 'nothing of it running or queued');
      const mark = transitions.length;
      await sleep(50);
      const during = transitions.slice(mark).filter((e) => e.backfillId === bf.id);
      expect(during.filter((e) => e.to === 'running')).toEqual([]);
      // anything it created meanwhile was created paused, and it created no more than its window
      expect(during.filter((e) => e.from === 'none' && e.to !== 'paused')).toEqual([]);
      const held = await allInstances(store, { backfillId: bf.id });
      expect(held.filter((i) => i.state === 'paused').length).toBeGreaterThan(0);
      expect(held.filter((i) => i.state === 'paused').length).toBeLessThanOrEqual(2);
      expect(held.length).toBeLessThan(15);
      // the backfill itself is not paused: it waits on its held instances
      expect(bf.status().state).toBe('running');
      expect(bf.status().counts.paused).toBe(held.filter((i) => i.state === 'paused').length);

      await controller.resume(target, { actor: 'ops' });
      const done = await within(bf.done, 5000, 'the backfill after the resume');
      expect(done.state).toBe('completed');
      expect(done.counts.succeeded + done.counts.failed).toBe(15);
      expect((await allInstances(store, { taskId: 'etl' })).map((i) => i.logicalDate).sort()).toEqual(utcDays('2024-01-01', 15));
    });
  }
});

describe('rerun by backfillId', () => {
  it('onlyFailed reruns just the failed instances of that backfill', async () => {
    const failOnce = new Set(['2024-01-02T00:00:00.000Z', '2024-01-05T00:00:00.000Z', '2023-06-01T00:00:00.000Z']);
    const { controller, store } = controllerWith({
      etl: (ctx) => {
        if (ctx.attempt === 1 && failOnce.has(ctx.logicalDate!)) throw new Error('flaky source');
        return 'ok';
      },
    });
    controller.define({ id: 'etl', schedule: daily });
    await controller.start();
    const outsider = await controller.submit('etl', { logicalDate: '2023-06-01T00:00:00Z' });
    const bf = await controller.backfill('etl', { from: '2024-01-01', to: '2024-01-06', mode: 'parallel', concurrency: 3 });
    const done = await within(bf.done, 5000, 'the backfill');
    expect(done.counts).toMatchObject({ succeeded: 4, failed: 2 });
    expect((await controller.waitFor(outsider.id)).state).toBe('failed');
    const failed = (await allInstances(store, { backfillId: bf.id })).filter((i) => i.state === 'failed');

    const result = await controller.rerun({ backfillId: bf.id }, { onlyFailed: true, actor: 'ops' });
    expect(result.rejected).toEqual([]);
    expect(result.applied.map((a) => a.instanceId).sort()).toEqual(failed.map((i) => i.id).sort());
    expect(result.applied.every((a) => a.from === 'failed' && a.to === 'queued')).toBe(true);
    for (const i of failed) expect(await controller.waitFor(i.id, { states: ['succeeded', 'failed'] })).toMatchObject({ state: 'succeeded', attempt: 2, backfillId: bf.id });
    const all = await allInstances(store, { backfillId: bf.id });
    expect(all.filter((i) => i.attempt === 1).every((i) => i.state === 'succeeded')).toBe(true);
    expect((await store.getInstance(outsider.id))?.state).toBe('failed');
    expect(await controller.getBackfill(bf.id)).toMatchObject({ state: 'completed', counts: { succeeded: 6, failed: 0 } });
  });
});

describe('includeDownstream', () => {
  function pipeline(failDates: string[] = []) {
    const { controller, store, transitions } = controllerWith(
      {
        extract: async (ctx) => {
          await sleep(2);
          if (failDates.includes(ctx.logicalDate!)) throw new Error('source missing');
        },
        load: () => sleep(1),
        report: () => sleep(1),
      },
      { concurrency: 6 },
    );
    controller.define({ id: 'extract', schedule: daily });
    controller.define({ id: 'load', dependsOn: ['extract'] });
    controller.define({ id: 'report', dependsOn: ['load'] });
    return { controller, store, transitions };
  }

  /** Position of the first transition of (task, date) to `to`. */
  async function positions(store: ReturnType<typeof pipeline>['store'], transitions: TransitionEvent[]) {
    const byId = new Map((await allInstances(store)).map((i) => [i.id, i]));
    return (taskId: string, date: string, to: string) =>
      transitions.findIndex((e) => e.to === to && byId.get(e.instanceId)?.taskId === taskId && byId.get(e.instanceId)?.logicalDate === date);
  }

  it("runs each date's downstream instances after its upstream, in dependency order", async () => {
    const { controller, store, transitions } = pipeline();
    await controller.start();
    const bf = await controller.backfill('extract', { from: '2024-01-01', to: '2024-01-05', includeDownstream: true, mode: 'parallel', concurrency: 2 });
    const done = await within(bf.done, 5000, 'the backfill');
    expect(done.state).toBe('completed');
    expect(done.counts.succeeded).toBe(15);
    const instances = await allInstances(store);
    expect(instances).toHaveLength(15);
    expect(instances.every((i) => i.backfillId === bf.id)).toBe(true);
    const at = await positions(store, transitions);
    for (const date of utcDays('2024-01-01', 5)) {
      expect(at('extract', date, 'succeeded')).toBeGreaterThanOrEqual(0);
      expect(at('load', date, 'running')).toBeGreaterThan(at('extract', date, 'succeeded'));
      expect(at('report', date, 'running')).toBeGreaterThan(at('load', date, 'succeeded'));
    }
    // the downstream instances waited as pending, not queued
    const load1 = instances.find((i) => i.taskId === 'load' && i.logicalDate === '2024-01-01T00:00:00.000Z')!;
    expect(transitions.find((e) => e.instanceId === load1.id)?.to).toBe('pending');
  });

  it('an upstream that already failed (or fails at once) still ends its downstream instances, created after it', async () => {
    const early = '2024-01-01T00:00:00.000Z';
    const { controller, store } = controllerWith({
      extract: (ctx) => {
        if (ctx.logicalDate! <= '2024-01-02T00:00:00.000Z') throw new Error('source missing');
      },
      load: () => undefined,
      report: () => undefined,
    });
    controller.define({ id: 'extract', schedule: daily });
    controller.define({ id: 'load', dependsOn: ['extract'] });
    controller.define({ id: 'report', dependsOn: ['load'] });
    await controller.start();
    // day 1's extract failed long ago, with nothing downstream; day 2's fails the moment it runs
    const old = await controller.submit('extract', { logicalDate: early });
    expect((await controller.waitFor(old.id)).state).toBe('failed');
    const bf = await controller.backfill('extract', { from: '2024-01-01', to: '2024-01-03', includeDownstream: true });
    const done = await within(bf.done, 3000, 'the backfill');
    expect(done.counts).toMatchObject({ succeeded: 3, failed: 1, stopped: 4 });
    for (const date of [early, '2024-01-02T00:00:00.000Z']) {
      const chain = (await allInstances(store)).filter((i) => i.logicalDate === date && i.taskId !== 'extract');
      expect(chain.map((i) => [i.taskId, i.state, i.error?.code])).toEqual([
        ['load', 'stopped', 'UPSTREAM_FAILED'],
        ['report', 'stopped', 'UPSTREAM_FAILED'],
      ]);
    }
  });

  it("reprocess 'failed' with includeDownstream reruns a failed date's whole chain, upstream first", async () => {
    const bad = '2024-01-02T00:00:00.000Z';
    const failing = new Set([bad]);
    const { controller, store, transitions } = controllerWith(
      {
        extract: (ctx) => {
          if (failing.has(ctx.logicalDate!)) throw new Error('source missing');
        },
        load: () => undefined,
        report: () => undefined,
      },
    );
    controller.define({ id: 'extract', schedule: daily });
    controller.define({ id: 'load', dependsOn: ['extract'] });
    controller.define({ id: 'report', dependsOn: ['load'] });
    await controller.start();
    const first = await controller.backfill('extract', { from: '2024-01-01', to: '2024-01-03', includeDownstream: true });
    expect((await within(first.done, 5000, 'the first backfill')).counts).toMatchObject({ succeeded: 6, failed: 1, stopped: 2 });

    failing.clear();
    const mark = transitions.length;
    const second = await controller.backfill('extract', { from: '2024-01-01', to: '2024-01-03', includeDownstream: true, reprocess: 'failed' });
    const done = await within(second.done, 5000, 'the reprocessing backfill');
    expect(done.counts).toMatchObject({ succeeded: 3 });
    expect(sum(done.counts)).toBe(3);
    const chain = (await allInstances(store)).filter((i) => i.logicalDate === bad);
    expect(chain).toHaveLength(3);
    expect(chain.every((i) => i.state === 'succeeded' && i.attempt === 2 && i.backfillId === second.id)).toBe(true);
    const at = await positions(store, transitions.slice(mark));
    expect(at('load', bad, 'running')).toBeGreaterThan(at('extract', bad, 'succeeded'));
    expect(at('report', bad, 'running')).toBeGreaterThan(at('load', bad, 'succeeded'));
    // the dates that were fine stay with the first backfill, untouched
    expect((await allInstances(store, { backfillId: first.id })).every((i) => i.logicalDate !== bad && i.attempt === 1)).toBe(true);
  });

  it('an upstream failure stops its downstream with UPSTREAM_FAILED, and the backfill still completes', async () => {
    const bad = '2024-01-03T00:00:00.000Z';
    const { controller, store } = pipeline([bad]);
    await controller.start();
    const bf = await controller.backfill('extract', { from: '2024-01-01', to: '2024-01-05', includeDownstream: true });
    const done = await within(bf.done, 5000, 'the backfill');
    expect(done.state).toBe('completed');
    expect(done.counts).toMatchObject({ succeeded: 12, failed: 1, stopped: 2 });
    expect(sum(done.counts)).toBe(15);
    const onBadDay = (await allInstances(store)).filter((i) => i.logicalDate === bad);
    expect(onBadDay.find((i) => i.taskId === 'extract')?.state).toBe('failed');
    for (const taskId of ['load', 'report']) {
      expect(onBadDay.find((i) => i.taskId === taskId)).toMatchObject({ state: 'stopped', error: { code: 'UPSTREAM_FAILED' } });
    }
    // the serial backfill went on to the next dates
    const later = (await allInstances(store)).filter((i) => i.logicalDate! > bad);
    expect(later.every((i) => i.state === 'succeeded')).toBe(true);
    expect(later).toHaveLength(6);
  });
});

describe('a slot that cannot be created', () => {
  it('is reported as an error event and passed over; the backfill completes and a second one fills the gap', async () => {
    const tuesday = '2024-01-02T00:00:00.000Z';
    let refuse = true;
    const { controller, store } = controllerWith(
      { etl: () => undefined },
      { guards: [{ name: 'no-tuesday', events: ['submit'], check: ({ options }) => !refuse || options?.logicalDate !== tuesday || 'not on that date' }] },
    );
    controller.define({ id: 'etl', schedule: daily });
    const errors: unknown[] = [];
    controller.on('error', (e) => errors.push(e));
    await controller.start();
    const bf = await controller.backfill('etl', { from: '2024-01-01', to: '2024-01-04' });
    const done = await within(bf.done, 3000, 'the backfill');
    expect(done).toMatchObject({ state: 'completed', total: 4, counts: { succeeded: 3 } });
    expect(errors).toMatchObject([{ where: 'backfill', error: { code: 'GUARD_REJECTED' } }]);
    expect((await allInstances(store)).map((i) => i.logicalDate)).not.toContain(tuesday);

    refuse = false;
    const again = await controller.backfill('etl', { from: '2024-01-01', to: '2024-01-04' });
    expect((await within(again.done, 3000, 'the second backfill')).counts.succeeded).toBe(1);
    expect((await allInstances(store)).map((i) => i.logicalDate).sort()).toEqual(utcDays('2024-01-01', 4));
  });
});

describe('a backfill under approval rules', () => {
  it('a cancel whose stop needs approval creates no more and lets its instances finish; a rerun that needs approval leaves the date alone', async () => {
    const { controller, store } = controllerWith(
      { etl: (ctx) => (ctx.params.broken ? Promise.reject(new Error('bad')) : sleep(3)) },
      // one at a time: at the cancel, some of its instances are queued, waiting for the slot
      { concurrency: 1, approvals: { rules: [{ actions: ['stop', 'rerun'], groups: ['finance'] }] } },
    );
    controller.define({ id: 'etl', group: 'finance', schedule: daily });
    await controller.start();
    const old = await controller.submit('etl', { logicalDate: '2024-01-02T00:00:00Z', params: { broken: true } });
    expect((await controller.waitFor(old.id)).state).toBe('failed');

    const bf = await controller.backfill('etl', { from: '2024-01-01', to: '2024-01-03', reprocess: 'failed' });
    const done = await within(bf.done, 3000, 'the backfill');
    expect(done.counts).toMatchObject({ succeeded: 2 });
    expect(sum(done.counts)).toBe(2);
    expect((await store.getInstance(old.id))).toMatchObject({ state: 'failed', attempt: 1 });
    expect((await controller.approvals({ state: 'awaiting' })).map((a) => a.action)).toEqual(['rerun']);

    const long = await controller.backfill('etl', { from: '2024-02-01', to: '2024-12-31', mode: 'parallel', concurrency: 3 });
    await eventually(() => long.status().counts.succeeded >= 3 && long.status().counts.queued > 0, 'three succeeded, some queued');
    await long.cancel({ actor: 'ops' });
    const cancelled = await within(long.done, 3000, 'the cancelled backfill');
    expect(cancelled.state).toBe('cancelled');
    const mine = await allInstances(store, { backfillId: long.id });
    expect(mine.every((i) => i.state === 'succeeded')).toBe(true);
    expect(mine.length).toBeLessThan(40);
    const count = mine.length;
    await sleep(20);
    expect((await allInstances(store, { backfillId: long.id })).length).toBe(count);
  });
});

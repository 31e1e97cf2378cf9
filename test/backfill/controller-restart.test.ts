// A backfill's own state lives in the StateStore: after its controller shuts down mid-way,
// another controller on the same store carries it on at start() and finishes it, without
// a second instance for any date and without breaking its concurrency.
import { describe, expect, it } from 'vitest';
import { MemoryStateStore, type BackfillRecord, type Instance, type TaskHandler } from '../../src/index.js';
import { controllerWith, eventually, sleep } from '../support.js';
import { allInstances, peaks, startOrder, utcDays, within } from './controller-support.js';

const daily = { cron: '0 0 * * *' };

function twoControllers(handlers: Record<string, TaskHandler>, task: { maxAttempts?: number } = {}) {
  const store = new MemoryStateStore();
  const first = controllerWith(handlers, { store, concurrency: 8 });
  const second = controllerWith(handlers, { store, concurrency: 8 });
  for (const c of [first.controller, second.controller]) c.define({ id: 'etl', schedule: daily, ...task });
  return { store, first, second };
}

describe('backfill across a restart', () => {
  it('serial: the second controller finishes it, one instance per date, still one at a time and in order', async () => {
    const { store, first, second } = twoControllers({ etl: () => sleep(3) });
    await first.controller.start();
    const bf = await first.controller.backfill('etl', { from: '2024-01-01', to: '2024-01-30' });
    await eventually(() => bf.status().counts.succeeded >= 6, 'six succeeded');
    await first.controller.shutdown({ graceMs: 2000 });
    const record = await store.getBackfill(bf.id);
    expect(record?.state).toBe('running');
    expect(record?.nextIndex).toBeGreaterThan(5);
    expect(record?.nextIndex).toBeLessThan(30);
    const createdBeforeRestart = (await allInstances(store, { backfillId: bf.id })).length;
    await sleep(20);
    // a controller that has shut down drives nothing any more
    expect((await allInstances(store, { backfillId: bf.id })).length).toBe(createdBeforeRestart);

    await second.controller.start();
    const handle = second.controller.backfillHandle(bf.id);
    expect(handle).toBeDefined();
    // the new controller alone drives it now: pausing it there holds it everywhere
    await eventually(() => handle!.status().counts.succeeded >= createdBeforeRestart + 2, 'two more succeeded');
    await handle!.pause();
    const atPause = (await allInstances(store, { backfillId: bf.id })).length;
    await sleep(40);
    expect((await allInstances(store, { backfillId: bf.id })).length).toBe(atPause);
    await handle!.resume();
    const done = await within(handle!.done, 5000, 'the resumed backfill');
    expect(done).toMatchObject({ id: bf.id, state: 'completed', total: 30 });
    expect(done.counts.succeeded).toBe(30);

    const instances = await allInstances(store, { taskId: 'etl' });
    expect(instances.map((i) => i.logicalDate).sort()).toEqual(utcDays('2024-01-01', 30));
    expect(instances.every((i) => i.backfillId === bf.id && i.state === 'succeeded' && i.attempt === 1)).toBe(true);
    expect(peaks(second.transitions, (e) => e.backfillId === bf.id).open).toBe(1);
    expect(await startOrder(store, second.transitions, 'etl')).toEqual(utcDays('2024-01-01', 30));
    expect((await store.getBackfill(bf.id))?.state).toBe('completed');
    expect(await second.controller.getBackfill(bf.id)).toEqual(done);
    // the first controller let go of it
    expect(first.controller.backfillHandle(bf.id)).toBeUndefined();
    expect(await first.controller.getBackfill(bf.id)).toEqual(done);
  });

  it('parallel, shut down without grace: interrupted dates are retried, none duplicated, concurrency kept', async () => {
    const { store, first, second } = twoControllers({ etl: () => sleep(4) }, { maxAttempts: 2 });
    await first.controller.start();
    const bf = await first.controller.backfill('etl', { from: '2024-03-01', to: '2024-04-09', mode: 'parallel', concurrency: 3 });
    await eventually(() => bf.status().counts.succeeded >= 8 && bf.status().counts.running > 0, 'eight succeeded and some running');
    await first.controller.shutdown({ graceMs: 0 });
    const left = (await allInstances(store, { backfillId: bf.id })).filter((i) => i.state !== 'succeeded');
    expect(left.length).toBeGreaterThan(0);
    expect(left.every((i) => i.state === 'queued')).toBe(true);

    const mark = second.transitions.length;
    await second.controller.start();
    const done = await within(second.controller.backfillHandle(bf.id)!.done, 5000, 'the resumed backfill');
    expect(done.counts.succeeded).toBe(40);
    const instances = await allInstances(store, { taskId: 'etl' });
    expect(instances.map((i) => i.logicalDate).sort()).toEqual(utcDays('2024-03-01', 40));
    expect(instances.filter((i) => i.attempt === 2).map((i) => i.id).sort()).toEqual(left.map((i) => i.id).sort());
    expect(peaks(second.transitions.slice(mark), (e) => e.backfillId === bf.id).open).toBeLessThanOrEqual(3);
  });

  it('a paused backfill stays paused across a restart, then resumes from the new controller', async () => {
    const { store, first, second } = twoControllers({ etl: () => sleep(2) });
    await first.controller.start();
    const bf = await first.controller.backfill('etl', { from: '2024-01-01', to: '2024-01-20', mode: 'parallel', concurrency: 2 });
    await eventually(() => bf.status().counts.succeeded >= 3, 'three succeeded');
    await bf.pause();
    await first.controller.shutdown({ graceMs: 2000 });
    const atPause = await allInstances(store, { backfillId: bf.id });

    await second.controller.start();
    expect(await second.controller.getBackfill(bf.id)).toMatchObject({ state: 'paused', total: 20 });
    await sleep(30);
    const later = await allInstances(store, { backfillId: bf.id });
    expect(later.length).toBe(atPause.length);
    // its waiting instances are held by the new controller too
    for (const i of later) if (atPause.find((a) => a.id === i.id)?.state === 'queued') expect(i.state).toBe('queued');

    const handle = second.controller.backfillHandle(bf.id, 'ops')!;
    await handle.resume();
    const done = await within(handle.done, 5000, 'the resumed backfill');
    expect(done.counts.succeeded).toBe(20);
    expect((await allInstances(store, { taskId: 'etl' })).map((i) => i.logicalDate).sort()).toEqual(utcDays('2024-01-01', 20));
  });

  it('a backfill whose last instances finished while no controller drove it completes at start()', async () => {
    const store = new MemoryStateStore();
    const gate = { open: false };
    const first = controllerWith({ etl: async () => void (await eventually(() => gate.open, 'the gate', 5000)) }, { store });
    first.controller.define({ id: 'etl', schedule: daily });
    await first.controller.start();
    const bf = await first.controller.backfill('etl', { from: '2024-01-01', to: '2024-01-02', mode: 'parallel', concurrency: 2 });
    await eventually(() => bf.status().counts.running === 2, 'both running');
    const stopping = first.controller.shutdown({ graceMs: 5000 });
    await sleep(5);
    gate.open = true;
    await stopping;
    expect((await allInstances(store, { backfillId: bf.id })).map((i) => i.state)).toEqual(['succeeded', 'succeeded']);

    const second = controllerWith({ etl: () => undefined }, { store });
    second.controller.define({ id: 'etl', schedule: daily });
    await second.controller.start();
    await eventually(async () => (await store.getBackfill(bf.id))?.state === 'completed', 'the record to say completed');
    expect(await second.controller.getBackfill(bf.id)).toMatchObject({ state: 'completed', counts: { succeeded: 2 } });
  });

  it('a crash after creating slots but before recording them: the restart re-finds them by date, no duplicates', async () => {
    // what a controller that died right after creating three slots' instances leaves behind
    const store = new MemoryStateStore();
    const at = '2024-01-01T00:00:00.000Z';
    const record: BackfillRecord = {
      id: 'bf-crashed', taskId: 'etl', state: 'running', schedule: daily, from: '2024-01-01T00:00:00.000Z', to: '2024-01-08T00:00:00.000Z',
      order: 'asc', mode: 'parallel', concurrency: 3, reprocess: 'none', params: { p: 1 }, includeDownstream: false, total: 8, nextIndex: 0,
      createdAt: at, updatedAt: at, version: 1,
    };
    const left: Instance[] = utcDays('2024-01-01', 3).map((logicalDate, n) => ({
      id: `01HZZZZZZZZZZZZZZZZZZZZZ0${n}`, taskId: 'etl', logicalDate, params: { p: 1 }, state: 'queued', attempt: 1, version: 1,
      backfillId: record.id, createdAt: at, updatedAt: at,
    }));
    await store.commit({ backfills: [{ next: record, expectedVersion: 0 }], instances: left.map((next) => ({ next, expectedVersion: 0 })) });

    const { controller, transitions } = controllerWith({ etl: () => sleep(3) }, { store });
    controller.define({ id: 'etl', schedule: daily });
    await controller.start();
    const done = await within(controller.backfillHandle(record.id)!.done, 5000, 'the recovered backfill');
    expect(done).toMatchObject({ state: 'completed', total: 8, counts: { succeeded: 8 } });
    const instances = await allInstances(store, { taskId: 'etl' });
    expect(instances.map((i) => i.logicalDate).sort()).toEqual(utcDays('2024-01-01', 8));
    for (const i of left) expect((await store.getInstance(i.id))?.state).toBe('succeeded');
    expect(peaks(transitions, (e) => e.backfillId === record.id).open).toBeLessThanOrEqual(3);
    expect((await store.getBackfill(record.id))?.nextIndex).toBe(8);
  });
});

// Scale: a huge range never creates its instances all at once (flat memory, measured as
// instance counts), and many backfills on one controller share its slots fairly.
import { describe, expect, it } from 'vitest';
import { type BackfillHandle } from '../../src/index.js';
import { controllerWith, eventually, sleep } from '../support.js';
import { allInstances, peaks, within } from './controller-support.js';

describe('a backfill over a huge range', () => {
  it('50,000 slots, slow executor: instances created stay bounded by the concurrency, not the range', async () => {
    const { controller, store, transitions } = controllerWith({ etl: () => sleep(15) }, { concurrency: 20 });
    controller.define({ id: 'etl', schedule: { every: 'PT1M' } });
    await controller.start();
    const started = Date.now();
    const bf = await controller.backfill('etl', {
      from: '2024-01-01T00:00:00Z',
      to: new Date(Date.parse('2024-01-01T00:00:00Z') + 49_999 * 60_000).toISOString(),
      mode: 'parallel',
      concurrency: 4,
    });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(bf.status().total).toBe(50_000);

    const samples: number[] = [];
    for (let n = 0; n < 8; n++) {
      await sleep(40);
      samples.push((await store.countInstances({ backfillId: bf.id })).succeeded);
      const created = (await allInstances(store, { backfillId: bf.id })).length;
      const open = created - samples[samples.length - 1];
      // the window: its concurrency, never the range
      expect(open).toBeLessThanOrEqual(4);
      expect(created).toBeLessThan(4 * (n + 2) * 40);
    }
    // it does make progress
    expect(samples.at(-1)!).toBeGreaterThan(samples[0]);
    expect(peaks(transitions, (e) => e.backfillId === bf.id).open).toBeLessThanOrEqual(4);
    const record = await store.getBackfill(bf.id);
    expect(record!.nextIndex).toBeLessThan(1000);

    await bf.cancel();
    const done = await within(bf.done, 3000, 'the cancel');
    expect(done.state).toBe('cancelled');
    expect(done.total).toBe(50_000);
    expect((await allInstances(store, { backfillId: bf.id })).length).toBeLessThan(1000);
  });

  it('serial over 50,000 slots keeps exactly one instance alive', async () => {
    const { controller, store } = controllerWith({ etl: () => sleep(5) });
    controller.define({ id: 'etl', schedule: { every: 'PT1M' } });
    await controller.start();
    const bf = await controller.backfill('etl', { from: '2024-01-01T00:00:00Z', to: '2024-02-04T17:19:00Z' });
    expect(bf.status().total).toBe(50_000);
    await sleep(100);
    const counts = await store.countInstances({ backfillId: bf.id });
    const alive = counts.queued + counts.running + counts.pending;
    expect(alive).toBeLessThanOrEqual(1);
    expect(counts.succeeded).toBeGreaterThan(2);
    expect(counts.succeeded).toBeLessThan(100);
    await bf.cancel();
    await within(bf.done, 3000, 'the cancel');
  });
});

describe('many backfills on one controller', () => {
  it('twenty backfills of different tasks, global concurrency 4: all progress early, none starves, all complete', async () => {
    const handlers = Object.fromEntries(Array.from({ length: 20 }, (_, n) => [`task-${n}`, () => sleep(2)]));
    const { controller } = controllerWith(handlers, { concurrency: 4 });
    for (let n = 0; n < 20; n++) controller.define({ id: `task-${n}`, schedule: { cron: '0 0 * * *' } });
    await controller.start();

    const firstSuccessAt = new Map<string, number>();
    let successes = 0;
    controller.on('transition', (e) => {
      if (e.to !== 'succeeded') return;
      successes++;
      if (e.backfillId && !firstSuccessAt.has(e.backfillId)) firstSuccessAt.set(e.backfillId, successes);
    });
    const t0 = Date.now();
    const backfills: BackfillHandle[] = [];
    for (let n = 0; n < 20; n++) {
      backfills.push(
        await controller.backfill(`task-${n}`, {
          from: '2024-01-01',
          to: '2024-01-10',
          ...(n % 2 ? { mode: 'parallel' as const, concurrency: 3 } : {}),
        }),
      );
    }
    const done = await within(Promise.all(backfills.map((b) => b.done)), 15_000, 'twenty backfills');
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(done.every((d) => d.state === 'completed' && d.counts.succeeded === 10)).toBe(true);
    // every backfill had its first success within the first round-robin-ish pass (200 successes in all)
    expect(firstSuccessAt.size).toBe(20);
    expect(Math.max(...firstSuccessAt.values())).toBeLessThanOrEqual(60);
    await eventually(() => controller.running === 0, 'no run left');
  });
});

// Backfills where time matters (timeouts, retry delays), on createTestController's fake clock:
// an hour of controller time runs in milliseconds.
import { describe, expect, it } from 'vitest';
import { createTestController } from '../../src/testing/index.js';
import { allInstances, peaks, sum, startOrder } from './controller-support.js';
import type { TaskHandler } from '../../src/index.js';

const daily = { cron: '0 0 * * *' };
const untilAborted: TaskHandler = (ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }));

describe('backfill on a fake clock', () => {
  it('a slot that times out fails with TIMEOUT and the serial backfill goes on to the next date', async () => {
    const h = await createTestController({
      handlers: { etl: (ctx) => (ctx.logicalDate!.startsWith('2024-01-02') ? untilAborted(ctx) : 'ok') },
    });
    h.controller.define({ id: 'etl', schedule: daily, timeoutMs: 3_600_000 });
    const bf = await h.controller.backfill('etl', { from: '2024-01-01', to: '2024-01-04' });
    await h.advance(10);
    expect(bf.status().counts).toMatchObject({ succeeded: 1, running: 1 });
    // nothing else starts while the slow slot runs
    await h.advance(3_599_000);
    expect(bf.status().counts).toMatchObject({ succeeded: 1, running: 1 });
    expect(sum(bf.status().counts)).toBe(2);
    await h.advance(1_000);
    await h.advance(10);
    const done = await bf.done;
    expect(done.state).toBe('completed');
    expect(done.counts).toMatchObject({ succeeded: 3, failed: 1 });
    const timedOut = (await allInstances(h.store, { backfillId: bf.id })).find((i) => i.state === 'failed');
    expect(timedOut).toMatchObject({ logicalDate: '2024-01-02T00:00:00.000Z', error: { code: 'TIMEOUT' } });
    await h.controller.shutdown({ graceMs: 0 });
  });

  it("a failed slot with a retry pending is not done: a serial backfill waits for the retry before the next date", async () => {
    const h = await createTestController({
      handlers: {
        etl: (ctx) => {
          if (ctx.logicalDate!.startsWith('2024-01-02') && ctx.attempt === 1) throw new Error('flaky');
          return 'ok';
        },
      },
    });
    h.controller.define({ id: 'etl', schedule: daily, maxAttempts: 2, retryDelayMs: 60_000 });
    const bf = await h.controller.backfill('etl', { from: '2024-01-01', to: '2024-01-04' });
    await h.advance(10);
    // the second date failed and waits for its retry: the third is not started
    expect(bf.status().counts).toMatchObject({ succeeded: 1, failed: 1 });
    expect(sum(bf.status().counts)).toBe(2);
    expect(bf.status().state).toBe('running');
    await h.advance(60_000);
    await h.advance(10);
    const done = await bf.done;
    expect(done.counts).toMatchObject({ succeeded: 4, failed: 0 });
    expect(await startOrder(h.store, h.transitions, 'etl')).toEqual([
      '2024-01-01T00:00:00.000Z',
      '2024-01-02T00:00:00.000Z',
      '2024-01-03T00:00:00.000Z',
      '2024-01-04T00:00:00.000Z',
    ]);
    // never two of it alive at once, the retry included
    const order = h.transitions.filter((e) => e.backfillId === bf.id && e.to === 'running').map((e) => e.attempt);
    expect(order).toEqual([1, 1, 2, 1, 1]);
    expect(peaks(h.transitions, (e) => e.backfillId === bf.id && !(e.to === 'failed' && e.attempt === 1)).active).toBe(1);
    await h.controller.shutdown({ graceMs: 0 });
  });

  it('a backfill does not complete while its last instance waits for a retry', async () => {
    const h = await createTestController({
      handlers: { etl: (ctx) => (ctx.attempt === 1 ? Promise.reject(new Error('flaky')) : 'ok') },
    });
    h.controller.define({ id: 'etl', schedule: daily, maxAttempts: 3, retryDelayMs: 1_000 });
    const bf = await h.controller.backfill('etl', { from: '2024-01-01', to: '2024-01-02', mode: 'parallel', concurrency: 2 });
    let finished = false;
    void bf.done.then(() => (finished = true));
    await h.advance(10);
    expect(bf.status().counts.failed).toBe(2);
    expect(finished).toBe(false);
    await h.advance(1_000);
    await h.advance(10);
    expect(finished).toBe(true);
    expect((await bf.done).counts).toMatchObject({ succeeded: 2, failed: 0 });
    expect(await h.controller.getBackfill(bf.id)).toEqual(await bf.done);
    await h.controller.shutdown({ graceMs: 0 });
  });
});

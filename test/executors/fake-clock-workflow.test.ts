import { afterEach, describe, expect, it } from 'vitest';
import type { ExecutionContext } from '../../src/index.js';
import { createTestController, type FakeClock, type TestHarness } from '../../src/testing/index.js';

const MIN = 60_000;

/** Sleep on the fake clock; rejects with the abort reason when the signal fires. */
function fakeSleep(clock: FakeClock, ms: number, signal?: AbortSignal): Promise<void> {
  return clock.sleep(ms, signal);
}

let harness: TestHarness | undefined;
afterEach(async () => {
  await harness?.controller.shutdown({ graceMs: 0 });
  await harness?.controller.close();
  harness = undefined;
});

describe('in-process workflow tests on a fake clock', () => {
  it('an hour-long workflow of timeouts, retry delays and grace periods runs in milliseconds', async () => {
    const wallStart = performance.now();
    const attempts: { attempt: number; checkpoint: unknown }[] = [];
    // the handlers sleep on the harness's clock, which exists once the harness does
    const fake = {} as { clock: FakeClock };

    // attempt 1 hangs and hits the 10-minute timeout; attempt 2 works in 1-minute steps with a
    // pause point before each, except that step 3 takes 4 minutes
    const etl = async (ctx: ExecutionContext) => {
      attempts.push({ attempt: ctx.attempt, checkpoint: ctx.checkpoint });
      if (ctx.attempt === 1) await fakeSleep(fake.clock, 15 * MIN, ctx.signal);
      for (let step = typeof ctx.checkpoint === 'number' ? ctx.checkpoint : 0; step < 8; step++) {
        await ctx.pausePoint(step);
        ctx.saveCheckpoint(step);
        await fakeSleep(fake.clock, step === 3 ? 4 * MIN : MIN, ctx.signal);
      }
      return { steps: 8 };
    };
    // ignores its signal: only the stop's grace period ends it
    const stubborn = async () => {
      await fakeSleep(fake.clock, 60 * MIN);
      return 'too late';
    };

    const h = (harness = await createTestController({ handlers: { etl, stubborn }, start: '2024-05-01T00:00:00Z' }));
    fake.clock = h.clock;
    const { controller, clock } = h;
    controller.define({ id: 'etl', timeoutMs: 10 * MIN, maxAttempts: 3, retryDelayMs: 5 * MIN });
    controller.define({ id: 'stubborn' });
    const t0 = clock.now();

    const run = await controller.submit('etl', { logicalDate: '2024-04-30T00:00:00Z' });
    const slow = await controller.submit('stubborn');

    // t=1: stop the stubborn one with a 5-minute grace period (it is stopped at t=6 regardless)
    await h.advance(1 * MIN);
    await controller.stop({ instanceId: slow.id }, { graceMs: 5 * MIN });
    expect((await controller.get(slow.id))?.state).toBe('stopping');

    // t=10: attempt 1 times out; the retry delay starts
    await h.advance(9 * MIN);
    expect((await controller.get(slow.id))?.state).toBe('stopped');
    const timedOut = await controller.get(run.id);
    expect(timedOut?.state).toBe('failed');
    expect(timedOut?.error?.code).toBe('TIMEOUT');

    // t=15: attempt 2 starts; t=18.5: inside its 4-minute step 3, a graceful pause with 2 minutes of grace
    await h.advance(5 * MIN);
    expect(await controller.get(run.id)).toMatchObject({ state: 'running', attempt: 2 });
    await h.advance(3.5 * MIN);
    await controller.pause({ instanceId: run.id }, { graceMs: 2 * MIN });
    expect((await controller.get(run.id))?.state).toBe('pausing');

    // t=20.5: no pause point was reached in time, so the pause is forced; the checkpoint is kept
    await h.advance(2 * MIN);
    expect(await controller.get(run.id)).toMatchObject({ state: 'paused', checkpoint: 3 });

    // t=23.5: resumed, it continues from step 3 and finishes 8 minutes later
    await h.advance(3 * MIN);
    await controller.resume({ instanceId: run.id });
    await h.advance(8 * MIN);
    const done = await controller.get(run.id);
    expect(done).toMatchObject({ state: 'succeeded', attempt: 2, result: { steps: 8 } });
    expect(attempts).toEqual([
      { attempt: 1, checkpoint: undefined },
      { attempt: 2, checkpoint: undefined },
      { attempt: 2, checkpoint: 3 },
    ]);

    // when each change happened, in fake minutes since the start
    const timeline = (taskId: string) =>
      h.transitions.filter((e) => e.taskId === taskId).map((e) => `${(Date.parse(e.at) - t0) / MIN} ${e.from}->${e.to}`);
    expect(timeline('stubborn')).toEqual(['0 none->queued', '0 queued->running', '1 running->stopping', '6 stopping->stopped']);
    expect(timeline('etl')).toEqual([
      '0 none->queued',
      '0 queued->running',
      '10 running->failed',
      '15 failed->queued',
      '15 queued->running',
      '18.5 running->pausing',
      '20.5 pausing->paused',
      '23.5 paused->queued',
      '23.5 queued->running',
      '31.5 running->succeeded',
    ]);

    const moves = (await controller.audit({ instanceId: run.id }))
      .filter((e) => e.kind === 'transition')
      .map((e) => `${e.from} -${e.event}-> ${e.to}`);
    expect(moves).toEqual([
      'none -submit-> queued',
      'queued -start-> running',
      'running -timeout-> failed',
      'failed -retry-> queued',
      'queued -start-> running',
      'running -pause-> pausing',
      'pausing -force_pause-> paused',
      'paused -resume-> queued',
      'queued -start-> running',
      'running -succeed-> succeeded',
    ]);

    // the stubborn handler returns at t=60, long after its instance was stopped: audited, nothing changes
    await h.advance(30 * MIN);
    const late = (await controller.audit({ instanceId: slow.id })).filter((e) => e.kind === 'late_result');
    expect(late.map((e) => e.result)).toEqual([{ outcome: 'succeeded', value: 'too late' }]);
    expect((await controller.get(slow.id))?.state).toBe('stopped');

    const wallMs = performance.now() - wallStart;
    expect(clock.now() - t0).toBe(61.5 * MIN);
    expect(wallMs).toBeLessThan(2000);
  });
});

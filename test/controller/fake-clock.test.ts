import { describe, expect, it } from 'vitest';
import { FakeClock, createTestController, settle } from '../../src/testing/index.js';
import { fakeSleep, history } from '../support.js';

describe('FakeClock', () => {
  it('fires timers only when time is advanced, in time order, and not once cleared', async () => {
    const clock = new FakeClock('2024-01-01T00:00:00.000Z');
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('b@200'), 200);
    clock.setTimeout(() => fired.push('a@100'), 100);
    const cancelled = clock.setTimeout(() => fired.push('never'), 150);
    clock.setTimeout(() => fired.push('c@200'), 200);
    clock.clearTimeout(cancelled);
    await settle();
    expect(fired).toEqual([]);
    expect(clock.pendingTimers).toBe(3);

    await clock.advance(100);
    expect(fired).toEqual(['a@100']);
    expect(clock.date().toISOString()).toBe('2024-01-01T00:00:00.100Z');
    await clock.advanceTo('2024-01-01T00:00:01.000Z');
    expect(fired).toEqual(['a@100', 'b@200', 'c@200']);
    expect(clock.now()).toBe(Date.parse('2024-01-01T00:00:01.000Z'));
    expect(clock.pendingTimers).toBe(0);
  });

  it('runs timers that timers set, and the work they start, within one advance', async () => {
    const clock = new FakeClock();
    const at: number[] = [];
    const t0 = clock.now();
    const tick = () => {
      at.push(clock.now() - t0);
      if (at.length < 5) void Promise.resolve().then(() => clock.setTimeout(tick, 1000));
    };
    clock.setTimeout(tick, 1000);
    await clock.advance(10_000);
    expect(at).toEqual([1000, 2000, 3000, 4000, 5000]);
  });
});

describe('a workflow on the fake clock', () => {
  it('with hours of timeouts, retry delays and grace periods, runs in milliseconds', async () => {
    const realStart = Date.now();
    const h = await createTestController({
      pollMs: 60_000, // housekeeping once a fake minute is plenty here
      handlers: {
        // attempt 1 hangs until the 30-minute timeout; attempt 2 works 20 minutes, with a pause point every minute
        report: async (ctx) => {
          if (ctx.attempt === 1) await fakeSleep(h.clock, 24 * 3_600_000, ctx.signal);
          let minute = typeof ctx.checkpoint === 'number' ? ctx.checkpoint : 0;
          for (; minute < 20; minute++) {
            await ctx.pausePoint(minute);
            await fakeSleep(h.clock, 60_000, ctx.signal);
          }
          return { minutes: minute };
        },
        cleanup: () => fakeSleep(h.clock, 3_600_000), // ignores its signal
      },
    });
    const fakeStart = h.clock.now();
    h.controller.define({ id: 'report', timeoutMs: 30 * 60_000, maxAttempts: 2, retryDelayMs: 10 * 60_000 });
    h.controller.define({ id: 'cleanup' });
    const report = await h.controller.submit('report');

    await h.advance(30 * 60_000);
    expect(await h.controller.get(report.id)).toMatchObject({ state: 'failed', attempt: 1, error: { code: 'TIMEOUT' } });
    await h.advance(10 * 60_000);
    expect(await h.controller.get(report.id)).toMatchObject({ state: 'running', attempt: 2 });
    await h.advance(5 * 60_000 + 30_000);
    await h.controller.pause({ instanceId: report.id }, { graceMs: 5 * 60_000 });
    const paused = await h.until(report.id, 'paused', { stepMs: 1000 });
    expect(paused.checkpoint).toBe(6);
    await h.advance(2 * 3_600_000); // paused over a long lunch
    await h.controller.resume({ instanceId: report.id });
    const done = await h.until(report.id, 'succeeded', { stepMs: 60_000 });
    expect(done.result).toEqual({ minutes: 20 });

    const cleanup = await h.controller.submit('cleanup');
    await h.advance(0);
    await h.controller.stop({ instanceId: cleanup.id }, { graceMs: 15 * 60_000 });
    await h.advance(15 * 60_000);
    expect((await h.controller.get(cleanup.id))?.state).toBe('stopped');
    expect((await history(h.controller, cleanup.id)).at(-1)).toBe('stopping --abandon--> stopped');
    await h.advance(3_600_000); // the abandoned cleanup returns at last: audited, nothing else
    expect(await h.controller.audit({ instanceId: cleanup.id, kind: 'late_result' })).toHaveLength(1);
    expect((await h.controller.get(cleanup.id))?.state).toBe('stopped');

    expect(h.clock.now() - fakeStart).toBeGreaterThan(4 * 3_600_000);
    expect(Date.now() - realStart).toBeLessThan(5_000); // typically well under a second
    const events = h.transitions.filter((e) => e.instanceId === report.id).map((e) => e.event);
    expect(events).toEqual(['submit', 'start', 'timeout', 'retry', 'start', 'pause', 'pause_point', 'resume', 'start', 'succeed']);
    await h.controller.shutdown({ graceMs: 0 });
  });

  it("the harness's until() says where an instance is stuck", async () => {
    const h = await createTestController({});
    h.controller.define({ id: 'job' });
    const job = await h.controller.submit('job');
    await expect(h.until(job.id, 'succeeded', { stepMs: 1000, maxMs: 5000 })).rejects.toThrow(/is queued, not succeeded/);
  });
});

import { describe, expect, it } from 'vitest';
import { AbortReason } from '../../src/index.js';
import { createTestController } from '../../src/testing/index.js';
import { controllerWith, deferred, fakeSleep, history, sleep, untilAborted, untilState } from '../support.js';

describe('timeout', () => {
  it('fails the attempt with TIMEOUT when timeoutMs passes, fires its signal, and only audits what it returns later', async () => {
    const late = deferred<string>();
    let reason: unknown;
    const { controller } = controllerWith({
      job: (ctx) => {
        ctx.signal.addEventListener('abort', () => (reason = ctx.signal.reason));
        return late.promise; // ignores the signal
      },
    });
    controller.define({ id: 'job', timeoutMs: 30 });
    await controller.start();
    const job = await controller.submit('job');
    const started = Date.now();
    const failed = await controller.waitFor(job.id, { timeoutMs: 2000 });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(failed.state).toBe('failed');
    expect(failed.error?.code).toBe('TIMEOUT');
    expect(failed.error?.message).toContain('timeoutMs');
    expect((reason as AbortReason).kind).toBe('timeout');
    expect((await history(controller, job.id)).at(-1)).toBe('running --timeout--> failed');

    late.resolve('finally done');
    await sleep(10);
    expect(await controller.get(job.id)).toEqual(failed);
    const entries = await controller.audit({ instanceId: job.id, kind: 'late_result' });
    expect(entries).toMatchObject([{ kind: 'late_result', attempt: 1, result: { outcome: 'succeeded', value: 'finally done' } }]);
  });

  it('a timeout also ends an attempt that is pausing', async () => {
    const { controller } = controllerWith({ job: untilAborted });
    controller.define({ id: 'job', timeoutMs: 40 });
    await controller.start();
    const job = await controller.submit('job');
    await untilState(controller, job.id, 'running');
    await controller.pause({ instanceId: job.id });
    const failed = await controller.waitFor(job.id, { timeoutMs: 2000 });
    expect(failed).toMatchObject({ state: 'failed', error: { code: 'TIMEOUT' } });
    expect((await history(controller, job.id)).at(-1)).toBe('pausing --timeout--> failed');
  });

  it('an attempt that finishes in time is not touched by its timeout', async () => {
    const { controller } = controllerWith({ job: async () => { await sleep(5); return 'quick'; } });
    controller.define({ id: 'job', timeoutMs: 30 });
    await controller.start();
    const job = await controller.submit('job');
    const done = await untilState(controller, job.id, 'succeeded');
    await sleep(50);
    expect(await controller.get(job.id)).toEqual(done);
  });
});

describe('automatic retries', () => {
  it('retries a failed attempt after retryDelayMs until maxAttempts (five minutes of delays on the fake clock)', async () => {
    const attempts: { attempt: number; at: number }[] = [];
    const h = await createTestController({
      handlers: {
        job: (ctx) => {
          attempts.push({ attempt: ctx.attempt, at: h.clock.now() });
          throw Object.assign(new Error(`boom ${ctx.attempt}`), { code: 'E_BOOM' });
        },
      },
    });
    h.controller.define({ id: 'job', maxAttempts: 3, retryDelayMs: 5 * 60_000 });
    const t0 = h.clock.now();
    const job = await h.controller.submit('job');
    await h.advance(0);
    expect(attempts.map((a) => a.attempt)).toEqual([1]);
    const failedOnce = await h.controller.get(job.id);
    expect(failedOnce).toMatchObject({ state: 'failed', attempt: 1, error: { code: 'E_BOOM' } });
    expect(failedOnce?.retryAt).toBe(new Date(t0 + 5 * 60_000).toISOString());

    await h.advance(5 * 60_000 - 1);
    expect(attempts).toHaveLength(1);
    await h.advance(1);
    expect(attempts.map((a) => [a.attempt, a.at - t0])).toEqual([
      [1, 0],
      [2, 5 * 60_000],
    ]);
    await h.advance(5 * 60_000);
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
    await h.advance(60 * 60_000);
    expect(attempts).toHaveLength(3);

    const final = await h.controller.get(job.id);
    expect(final).toMatchObject({ state: 'failed', attempt: 3, error: { message: 'boom 3' } });
    expect(final?.retryAt).toBeUndefined();
    const retries = (await h.controller.audit({ instanceId: job.id })).filter((e) => e.event === 'retry');
    expect(retries.map((e) => [e.from, e.to, e.attempt, e.actor])).toEqual([
      ['failed', 'queued', 2, 'system:retry'],
      ['failed', 'queued', 3, 'system:retry'],
    ]);
    await h.controller.shutdown({ graceMs: 0 });
  });

  it('a retry that succeeds ends the instance succeeded on that attempt', async () => {
    const h = await createTestController({
      handlers: {
        job: (ctx) => {
          if (ctx.attempt < 2) throw new Error('transient');
          return 'second time lucky';
        },
      },
    });
    h.controller.define({ id: 'job', maxAttempts: 5 });
    const job = await h.controller.submit('job');
    const done = await h.until(job.id, 'succeeded');
    expect(done).toMatchObject({ attempt: 2, result: 'second time lucky' });
    expect(done.error).toBeUndefined();
    await h.controller.shutdown({ graceMs: 0 });
  });

  it('a timed-out attempt is retried too (ten-minute timeout on the fake clock)', async () => {
    const h = await createTestController({
      handlers: {
        job: async (ctx) => {
          if (ctx.attempt === 1) await fakeSleep(h.clock, 60 * 60_000, ctx.signal);
          return `attempt ${ctx.attempt}`;
        },
      },
    });
    h.controller.define({ id: 'job', timeoutMs: 10 * 60_000, maxAttempts: 2, retryDelayMs: 1000 });
    const job = await h.controller.submit('job');
    await h.advance(10 * 60_000);
    expect(await h.controller.get(job.id)).toMatchObject({ state: 'failed', attempt: 1, error: { code: 'TIMEOUT' } });
    await h.advance(1000);
    expect(await h.controller.get(job.id)).toMatchObject({ state: 'succeeded', attempt: 2, result: 'attempt 2' });
    await h.controller.shutdown({ graceMs: 0 });
  });

  it('without maxAttempts a failure is final', async () => {
    const { controller } = controllerWith({ job: () => Promise.reject(new Error('no')) });
    controller.define({ id: 'job' });
    await controller.start();
    const job = await controller.submit('job');
    const failed = await controller.waitFor(job.id, { timeoutMs: 2000 });
    expect(failed).toMatchObject({ state: 'failed', attempt: 1, error: { code: 'EXECUTOR_ERROR', message: 'no' } });
    expect(failed.retryAt).toBeUndefined();
  });
});

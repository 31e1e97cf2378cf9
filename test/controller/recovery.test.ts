import { describe, expect, it } from 'vitest';
import { AbortReason, FunctionExecutor, MemoryStateStore, TaskController, type TaskHandler } from '../../src/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { controllerWith, deferred, fakeSleep, history, sleep, stepsHandler, track, untilAborted, untilState } from '../support.js';

/**
 * Controller A runs an instance on its own fake clock and then "dies": its clock never moves
 * again, so it never renews its lease. Controller B starts on the same store later.
 */
async function deadOwner(handler: TaskHandler, task: { maxAttempts?: number } = {}) {
  const store = new MemoryStateStore();
  const clockA = new FakeClock('2024-01-01T00:00:00.000Z');
  const a = track(new TaskController({ store, timers: clockA, clock: clockA.date, leaseMs: 50, executor: new FunctionExecutor({ job: handler }) }));
  a.define({ id: 'job', ...task });
  await a.start();
  const job = await a.submit('job');
  await clockA.advance(0);
  expect((await a.get(job.id))?.state).toBe('running');
  const clockB = new FakeClock('2024-01-01T00:00:01.000Z'); // one second later: A's lease (50 ms) expired
  const startB = async (handlers?: Record<string, TaskHandler>) => {
    const b = track(
      new TaskController({ store, timers: clockB, clock: clockB.date, leaseMs: 50, executor: handlers ? new FunctionExecutor(handlers) : undefined }),
    );
    b.define({ id: 'job', ...task });
    await b.start();
    await clockB.advance(0);
    return b;
  };
  return { store, a, job, clockB, startB };
}

describe('recovery', () => {
  it('a running instance whose owner died is queued again as the next attempt, and runs elsewhere', async () => {
    let signalA: AbortSignal | undefined;
    const lateA = deferred<string>();
    const { a, job, startB } = await deadOwner(
      (ctx) => {
        signalA = ctx.signal;
        return lateA.promise;
      },
      { maxAttempts: 3 },
    );
    const b = await startB({ job: (ctx) => `attempt ${ctx.attempt} on B` });
    const done = await b.waitFor(job.id, { timeoutMs: 1000 });
    expect(done).toMatchObject({ state: 'succeeded', attempt: 2, result: 'attempt 2 on B' });
    expect((await history(b, job.id)).slice(1)).toEqual([
      'queued --start--> running',
      'running --requeue--> queued',
      'queued --start--> running',
      'running --succeed--> succeeded',
    ]);
    const [requeue] = (await b.audit({ instanceId: job.id })).filter((e) => e.event === 'requeue');
    expect(requeue).toMatchObject({ actor: 'system:recovery', attempt: 2, reason: expect.stringContaining(a.id) });
    // the old owner hears that it lost the instance, and what it returns later changes nothing
    expect((signalA?.reason as AbortReason).kind).toBe('lease_lost');
    lateA.resolve('attempt 1 on A');
    await sleep(10);
    expect(await b.get(job.id)).toEqual(done);
    expect(await b.audit({ instanceId: job.id, kind: 'late_result' })).toMatchObject([{ attempt: 1, result: { value: 'attempt 1 on A' } }]);
  });

  it('a running instance with no attempts left is failed', async () => {
    const { job, startB } = await deadOwner(untilAborted);
    const b = await startB();
    const failed = await b.get(job.id);
    expect(failed).toMatchObject({ state: 'failed', attempt: 1, error: { code: 'ABANDONED' } });
    expect(failed?.lease).toBeUndefined();
    expect((await history(b, job.id)).at(-1)).toBe('running --recover_fail--> failed');
  });

  it('a pausing instance whose owner died is paused', async () => {
    const { a, job, startB } = await deadOwner(untilAborted);
    await a.pause({ instanceId: job.id });
    expect((await a.get(job.id))?.state).toBe('pausing');
    const b = await startB();
    expect((await b.get(job.id))?.state).toBe('paused');
    expect((await history(b, job.id)).at(-1)).toBe('pausing --recover--> paused');
  });

  it('a stopping instance whose owner died is stopped', async () => {
    const stalled = deferred();
    const { a, job, startB } = await deadOwner(() => stalled.promise);
    await a.stop({ instanceId: job.id }, { graceMs: 3_600_000 });
    const b = await startB();
    const stopped = await b.get(job.id);
    expect(stopped).toMatchObject({ state: 'stopped' });
    expect(stopped?.endedAt).toBeDefined();
    expect((await history(b, job.id)).at(-1)).toBe('stopping --recover--> stopped');
    stalled.resolve();
  });

  it('a live owner keeps its lease: nothing is recovered while it renews', async () => {
    const store = new MemoryStateStore();
    const clock = new FakeClock();
    const opts = { store, timers: clock, clock: clock.date, leaseMs: 300 };
    const a = track(new TaskController({ ...opts, executor: new FunctionExecutor({ job: (ctx) => fakeSleep(clock, 10_000, ctx.signal) }) }));
    const b = track(new TaskController({ ...opts, executor: new FunctionExecutor({ job: () => 'stolen' }) }));
    for (const c of [a, b]) c.define({ id: 'job', maxAttempts: 5 });
    await a.start();
    const job = await a.submit('job');
    await clock.advance(0);
    await b.start();
    for (let i = 0; i < 20; i++) await clock.advance(200);
    const running = await a.get(job.id);
    expect(running).toMatchObject({ state: 'running', attempt: 1, lease: { owner: a.id } });
    await clock.advance(10_000);
    expect(await a.get(job.id)).toMatchObject({ state: 'succeeded', attempt: 1 });
  });

  it("the dead owner's timers never touch the attempt that replaced its own", async () => {
    const store = new MemoryStateStore();
    const clock = new FakeClock();
    const task = { id: 'job', timeoutMs: 10_000, maxAttempts: 2 };
    const stalled = deferred();
    // A never renews its lease (its housekeeping is stalled) but its timers still fire
    const a = track(
      new TaskController({
        store, timers: clock, clock: clock.date, leaseMs: 50, pollMs: 3_600_000,
        executor: new FunctionExecutor({ job: () => stalled.promise }), // deaf to its signal
      }),
    );
    a.define(task);
    await a.start();
    const job = await a.submit('job');
    await clock.advance(5_000);
    const b = track(
      new TaskController({
        store, timers: clock, clock: clock.date, leaseMs: 50,
        executor: new FunctionExecutor({ job: async (ctx) => { await fakeSleep(clock, 9_000, ctx.signal); return 'B finished'; } }),
      }),
    );
    b.define(task);
    await b.start();
    await clock.advance(0);
    expect(await b.get(job.id)).toMatchObject({ state: 'running', attempt: 2, lease: { owner: b.id } });
    // A's timeout for attempt 1 falls due at 10 s; B's attempt 2 needs until 14 s
    await clock.advance(6_000);
    expect(await b.get(job.id)).toMatchObject({ state: 'running', attempt: 2 });
    await clock.advance(4_000);
    expect(await b.get(job.id)).toMatchObject({ state: 'succeeded', attempt: 2, result: 'B finished' });
    stalled.resolve();
  });
});

describe('control across controllers', () => {
  it('a controller without an executor pauses an instance another controller runs, which honours it at its pause point', async () => {
    const store = new MemoryStateStore();
    const worker = controllerWith({ job: stepsHandler(400, 2) }, { store }).controller;
    const operator = controllerWith(undefined, { store }).controller;
    for (const c of [worker, operator]) c.define({ id: 'job' });
    await worker.start();
    const job = await worker.submit('job');
    await untilState(operator, job.id, 'running');

    const result = await operator.pause({ instanceId: job.id }, { actor: 'ops' });
    expect(result.applied).toEqual([{ instanceId: job.id, from: 'running', to: 'pausing', changed: true }]);
    const paused = await operator.waitFor(job.id, { timeoutMs: 2000 });
    expect(paused).toMatchObject({ state: 'paused', checkpoint: expect.any(Number) });
    expect(paused.lease).toBeUndefined();

    await operator.resume({ instanceId: job.id });
    await untilState(operator, job.id, 'running');
    const stopped = await operator.stop({ instanceId: job.id }, { actor: 'ops' });
    expect(stopped.applied).toMatchObject([{ from: 'running', to: 'stopping' }]);
    expect((await operator.waitFor(job.id, { timeoutMs: 2000 })).state).toBe('stopped');
  });

  it("a stop from another controller fires the running executor's signal", async () => {
    const store = new MemoryStateStore();
    let reason: unknown;
    const worker = controllerWith(
      {
        job: async (ctx) => {
          ctx.signal.addEventListener('abort', () => (reason = ctx.signal.reason));
          await sleep(10_000, ctx.signal);
        },
      },
      { store },
    ).controller;
    const operator = controllerWith(undefined, { store }).controller;
    for (const c of [worker, operator]) c.define({ id: 'job' });
    await worker.start();
    const job = await worker.submit('job');
    await untilState(operator, job.id, 'running');
    await operator.stop({ instanceId: job.id });
    expect((reason as AbortReason).kind).toBe('stop');
    expect((await operator.waitFor(job.id, { timeoutMs: 2000 })).state).toBe('stopped');
  });
});

describe('shutdown', () => {
  it('hands running work back: aborted, its lease released, queued for another controller', async () => {
    const store = new MemoryStateStore();
    let reason: unknown;
    const first = controllerWith(
      {
        job: async (ctx) => {
          if (ctx.attempt === 1) {
            ctx.signal.addEventListener('abort', () => (reason = ctx.signal.reason));
            await sleep(10_000, ctx.signal);
          }
          return `done on attempt ${ctx.attempt}`;
        },
      },
      { store },
    ).controller;
    first.define({ id: 'job', maxAttempts: 2 });
    await first.start();
    const job = await first.submit('job');
    await untilState(first, job.id, 'running');

    await first.shutdown({ graceMs: 20 });
    expect((reason as AbortReason).kind).toBe('shutdown');
    const handedBack = await first.get(job.id);
    expect(handedBack).toMatchObject({ state: 'queued', attempt: 2 });
    expect(handedBack?.lease).toBeUndefined();
    expect(first.running).toBe(0);

    const second = controllerWith({ job: () => 'done on the second controller' }, { store }).controller;
    second.define({ id: 'job', maxAttempts: 2 });
    await second.start();
    expect((await untilState(second, job.id, 'succeeded')).result).toBe('done on the second controller');
  });

  it('finishes what was being paused or stopped: pausing -> paused, stopping -> stopped', async () => {
    const stalled = deferred();
    const { controller } = controllerWith({ job: untilAborted, deaf: () => stalled.promise });
    controller.define({ id: 'job' });
    controller.define({ id: 'deaf' });
    await controller.start();
    const pausing = await controller.submit('job');
    const stopping = await controller.submit('deaf');
    await untilState(controller, pausing.id, 'running');
    await untilState(controller, stopping.id, 'running');
    await controller.pause({ instanceId: pausing.id });
    await controller.stop({ instanceId: stopping.id }, { graceMs: 60_000 });
    setTimeout(() => stalled.resolve(), 20);
    await controller.shutdown({ graceMs: 0 });
    expect((await controller.get(pausing.id))?.state).toBe('paused');
    expect((await controller.get(stopping.id))?.state).toBe('stopped');
  });

  it('lets running work finish within graceMs', async () => {
    const { controller } = controllerWith({ job: async () => { await sleep(20); return 'finished'; } });
    controller.define({ id: 'job' });
    await controller.start();
    const job = await controller.submit('job');
    await untilState(controller, job.id, 'running');
    await controller.shutdown({ graceMs: 2000 });
    expect(await controller.get(job.id)).toMatchObject({ state: 'succeeded', result: 'finished' });
  });

  it('dispatches nothing after shutdown', async () => {
    const { controller } = controllerWith({ job: () => 'ran' });
    controller.define({ id: 'job' });
    await controller.start();
    await controller.shutdown({ graceMs: 0 });
    const job = await controller.submit('job');
    await sleep(20);
    expect((await controller.get(job.id))?.state).toBe('queued');
  });
});

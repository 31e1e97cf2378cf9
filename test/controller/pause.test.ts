import { describe, expect, it } from 'vitest';
import { AbortReason, type ExecutionContext } from '../../src/index.js';
import { createTestController } from '../../src/testing/index.js';
import { controllerWith, deferred, fakeSleep, history, sleep, stepsHandler, untilState } from '../support.js';

describe('pause', () => {
  it('pauses a queued instance at once, and nothing runs it until it is resumed', async () => {
    const gate = deferred();
    const ran: string[] = [];
    const { controller } = controllerWith(
      {
        blocker: () => gate.promise,
        job: (ctx) => void ran.push(ctx.instance.id),
      },
      { concurrency: 1 },
    );
    controller.define({ id: 'blocker' });
    controller.define({ id: 'job' });
    await controller.start();
    const blocker = await controller.submit('blocker');
    await untilState(controller, blocker.id, 'running');
    const job = await controller.submit('job');
    expect(job.state).toBe('queued');

    const result = await controller.pause({ instanceId: job.id });
    expect(result.applied).toEqual([{ instanceId: job.id, from: 'queued', to: 'paused', changed: true }]);
    expect(result.rejected).toEqual([]);
    gate.resolve();
    await untilState(controller, blocker.id, 'succeeded');
    await sleep(20);
    expect(ran).toEqual([]);
    expect((await controller.get(job.id))?.state).toBe('paused');

    await controller.resume({ instanceId: job.id });
    await untilState(controller, job.id, 'succeeded');
    expect(ran).toEqual([job.id]);
  });

  it('pauses a pending instance at once', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'up' });
    controller.define({ id: 'down', dependsOn: ['up'] });
    const down = await controller.submit('down', { logicalDate: '2024-03-01T00:00:00Z' });
    expect(down.state).toBe('pending');
    const result = await controller.pause({ instanceId: down.id });
    expect(result.applied).toEqual([{ instanceId: down.id, from: 'pending', to: 'paused', changed: true }]);
    expect(await history(controller, down.id)).toEqual(['none --submit_pending--> pending', 'pending --pause--> paused']);
  });

  it('a graceful pause waits for the pause point and keeps the checkpoint; resume continue hands it back', async () => {
    const seen = { checkpoints: [] as unknown[], attempts: [] as number[] };
    const { controller } = controllerWith({ job: stepsHandler(30, 3, seen) });
    controller.define({ id: 'job' });
    await controller.start();
    const job = await controller.submit('job');
    await untilState(controller, job.id, 'running');
    await sleep(10);

    const result = await controller.pause({ instanceId: job.id });
    expect(result.applied).toEqual([{ instanceId: job.id, from: 'running', to: 'pausing', changed: true }]);
    const paused = await controller.waitFor(job.id, { timeoutMs: 2000 });
    expect(paused.state).toBe('paused');
    expect(typeof paused.checkpoint).toBe('number');
    expect(paused.checkpoint).toBeGreaterThan(0);
    expect(paused.checkpoint).toBeLessThan(30);
    expect(paused.attempt).toBe(1);

    await controller.resume({ instanceId: job.id }, { strategy: 'continue' });
    const done = await controller.waitFor(job.id, { timeoutMs: 2000 });
    expect(done.state).toBe('succeeded');
    expect(seen.checkpoints).toEqual([undefined, paused.checkpoint]);
    expect(seen.attempts).toEqual([1, 1]);
    expect(done.checkpoint).toBeUndefined();
    expect(await history(controller, job.id)).toEqual([
      'none --submit--> queued',
      'queued --start--> running',
      'running --pause--> pausing',
      'pausing --pause_point--> paused',
      'paused --resume--> queued',
      'queued --start--> running',
      'running --succeed--> succeeded',
    ]);
  });

  it('a forced pause aborts the work; the signal fires only after paused is committed and announced', async () => {
    const { controller, store } = controllerWith({
      job: async (ctx) => {
        ctx.signal.addEventListener('abort', () => {
          // synchronous read of the store at the moment the signal fires
          void store.getInstance(ctx.instance.id).then((i) => (stateAtSignal = i?.state));
          eventSeenAtSignal = announced;
          reason = ctx.signal.reason;
        });
        await sleep(10_000, ctx.signal);
      },
    });
    let stateAtSignal: string | undefined;
    let eventSeenAtSignal: boolean | undefined;
    let announced = false;
    let reason: unknown;
    controller.on('transition', (e) => {
      if (e.to === 'paused') announced = true;
    });
    controller.define({ id: 'job' });
    await controller.start();
    const job = await controller.submit('job');
    await untilState(controller, job.id, 'running');

    const started = Date.now();
    const result = await controller.pause({ instanceId: job.id }, { mode: 'force' });
    expect(result.applied).toEqual([{ instanceId: job.id, from: 'running', to: 'paused', changed: true }]);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(stateAtSignal).toBe('paused');
    expect(eventSeenAtSignal).toBe(true);
    expect(reason).toBeInstanceOf(AbortReason);
    expect((reason as AbortReason).kind).toBe('force_pause');
    // what the aborted executor does afterwards changes nothing
    await sleep(20);
    const after = await controller.get(job.id);
    expect(after?.state).toBe('paused');
    expect(after?.lease).toBeUndefined();
    const late = await controller.audit({ instanceId: job.id, kind: 'late_result' });
    expect(late).toHaveLength(1);
  });

  it('after a forced pause and a quick resume, the next run waits for the aborted one to unwind, and other work keeps flowing', async () => {
    let active = 0;
    let maxActive = 0;
    const runs: number[] = [];
    const { controller } = controllerWith(
      {
        job: async (ctx) => {
          active++;
          maxActive = Math.max(maxActive, active);
          runs.push(ctx.attempt);
          try {
            if (runs.length === 1) await sleep(80); // deaf to its signal for a while
            return 'done';
          } finally {
            active--;
          }
        },
        other: () => 'other done',
      },
      { concurrency: 2 },
    );
    controller.define({ id: 'job' });
    controller.define({ id: 'other' });
    await controller.start();
    const job = await controller.submit('job');
    await untilState(controller, job.id, 'running');
    await controller.pause({ instanceId: job.id }, { mode: 'force' });
    await controller.resume({ instanceId: job.id });
    const other = await controller.submit('other');
    await untilState(controller, other.id, 'succeeded', 60);
    expect(runs).toEqual([1]);
    expect((await untilState(controller, job.id, 'succeeded')).attempt).toBe(1);
    expect(runs).toEqual([1, 1]);
    expect(maxActive).toBe(1);
  });

  it('a graceful pause with graceMs turns into a forced one when no pause point comes (one minute of grace, fake clock)', async () => {
    let signal: AbortSignal | undefined;
    const h = await createTestController({
      handlers: {
        job: async (ctx) => {
          signal = ctx.signal;
          await fakeSleep(h.clock, 3_600_000, ctx.signal);
        },
      },
    });
    h.controller.define({ id: 'job' });
    const job = await h.controller.submit('job');
    await h.until(job.id, 'running');

    await h.controller.pause({ instanceId: job.id }, { graceMs: 60_000 });
    await h.advance(59_000);
    expect((await h.controller.get(job.id))?.state).toBe('pausing');
    expect(signal?.aborted).toBe(false);
    await h.advance(1_000);
    const paused = await h.controller.get(job.id);
    expect(paused?.state).toBe('paused');
    expect(signal?.aborted).toBe(true);
    const moves = await history(h.controller, job.id);
    expect(moves.slice(-2)).toEqual(['running --pause--> pausing', 'pausing --force_pause--> paused']);
    await h.controller.shutdown({ graceMs: 0 });
  });

  it('a graceful pause without graceMs waits for the end of an attempt that has no pause point: it ends succeeded', async () => {
    const release = deferred<string>();
    let ctxSeen: ExecutionContext | undefined;
    const { controller } = controllerWith({
      job: (ctx) => {
        ctxSeen = ctx;
        return release.promise;
      },
    });
    controller.define({ id: 'job' });
    await controller.start();
    const job = await controller.submit('job');
    await untilState(controller, job.id, 'running');
    await controller.pause({ instanceId: job.id });
    await untilState(controller, job.id, 'pausing');
    expect(ctxSeen?.pauseRequested()).toBe(true);
    expect(ctxSeen?.signal.aborted).toBe(false);
    await sleep(20);
    expect((await controller.get(job.id))?.state).toBe('pausing');

    release.resolve('finished anyway');
    const done = await controller.waitFor(job.id, { timeoutMs: 2000 });
    expect(done.state).toBe('succeeded');
    expect(done.result).toBe('finished anyway');
    expect((await history(controller, job.id)).at(-1)).toBe('pausing --succeed--> succeeded');
  });

  it('a graceful pause of work without pause points that throws ends failed', async () => {
    const release = deferred();
    const { controller } = controllerWith({ job: () => release.promise });
    controller.define({ id: 'job' });
    await controller.start();
    const job = await controller.submit('job');
    await untilState(controller, job.id, 'running');
    await controller.pause({ instanceId: job.id });
    release.reject(Object.assign(new Error('disk full'), { code: 'ENOSPC' }));
    const done = await controller.waitFor(job.id, { timeoutMs: 2000 });
    expect(done.state).toBe('failed');
    expect(done.error).toEqual({ code: 'ENOSPC', message: 'disk full' });
  });

  it('a forced pause of a pausing instance ends the wait for the pause point', async () => {
    const { controller } = controllerWith({ job: (ctx) => sleep(10_000, ctx.signal) });
    controller.define({ id: 'job' });
    await controller.start();
    const job = await controller.submit('job');
    await untilState(controller, job.id, 'running');
    await controller.pause({ instanceId: job.id });
    const result = await controller.pause({ instanceId: job.id }, { mode: 'force' });
    expect(result.applied).toEqual([{ instanceId: job.id, from: 'pausing', to: 'paused', changed: true }]);
  });

  it('pausing what is already paused is applied with changed: false, not rejected', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'job' });
    const job = await controller.submit('job');
    await controller.pause({ instanceId: job.id });
    const before = await controller.get(job.id);
    const again = await controller.pause({ instanceId: job.id }, { mode: 'force' });
    expect(again.applied).toEqual([{ instanceId: job.id, from: 'paused', to: 'paused', changed: false }]);
    expect(again.rejected).toEqual([]);
    expect((await controller.get(job.id))?.version).toBe(before?.version);
  });

  it('pausing a finished instance is rejected with ILLEGAL_TRANSITION and leaves it as it was', async () => {
    const { controller } = controllerWith({ job: () => 'ok' });
    controller.define({ id: 'job' });
    await controller.start();
    const job = await controller.submit('job');
    const done = await controller.waitFor(job.id, { timeoutMs: 2000 });
    const result = await controller.pause({ instanceId: job.id });
    expect(result.applied).toEqual([]);
    expect(result.rejected).toEqual([{ instanceId: job.id, code: 'ILLEGAL_TRANSITION', message: expect.stringContaining(job.id) }]);
    expect(await controller.get(job.id)).toEqual(done);
  });
});

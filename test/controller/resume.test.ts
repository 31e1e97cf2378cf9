import { describe, expect, it } from 'vitest';
import type { ExecutionContext } from '../../src/index.js';
import { controllerWith, deferred, history, sleep, stepsHandler, untilState } from '../support.js';

async function pausedAtCheckpoint(params: Record<string, unknown> = {}) {
  const seen = { checkpoints: [] as unknown[], attempts: [] as number[] };
  const paramsSeen: Record<string, unknown>[] = [];
  const inner = stepsHandler(25, 3, seen);
  const { controller } = controllerWith({
    job: (ctx) => {
      paramsSeen.push(ctx.params);
      return inner(ctx);
    },
  });
  controller.define({ id: 'job', defaultParams: { region: 'eu', batch: 10 } });
  await controller.start();
  const job = await controller.submit('job', { params });
  await untilState(controller, job.id, 'running');
  await sleep(10);
  await controller.pause({ instanceId: job.id });
  const paused = await controller.waitFor(job.id, { timeoutMs: 2000 });
  expect(paused.state).toBe('paused');
  expect(paused.checkpoint).toEqual(expect.any(Number));
  return { controller, job: paused, seen, paramsSeen };
}

describe('resume', () => {
  it("resume with 'restart' drops the checkpoint: the executor starts from the beginning", async () => {
    const { controller, job, seen } = await pausedAtCheckpoint();
    const result = await controller.resume({ instanceId: job.id }, { strategy: 'restart' });
    expect(result.applied).toEqual([{ instanceId: job.id, from: 'paused', to: 'queued', changed: true }]);
    const done = await controller.waitFor(job.id, { timeoutMs: 2000 });
    expect(done.state).toBe('succeeded');
    expect(seen.checkpoints).toEqual([undefined, undefined]);
    expect(done.result).toEqual({ steps: 25 });
  });

  it("resume defaults to 'continue'", async () => {
    const { controller, job, seen } = await pausedAtCheckpoint();
    await controller.resume({ instanceId: job.id });
    await controller.waitFor(job.id, { timeoutMs: 2000 });
    expect(seen.checkpoints).toEqual([undefined, job.checkpoint]);
  });

  it("resume with 'skip' ends the instance skipped and releases what waits for it", async () => {
    const { controller } = controllerWith({ up: (ctx) => sleep(5_000, ctx.signal), down: () => 'ran' });
    controller.define({ id: 'up' });
    controller.define({ id: 'down', dependsOn: ['up'] });
    const day = '2024-05-01T00:00:00.000Z';
    const up = await controller.submit('up', { logicalDate: day });
    const down = await controller.submit('down', { logicalDate: day });
    expect(down.state).toBe('pending');
    await controller.pause({ instanceId: up.id });
    await controller.start();

    const result = await controller.resume({ instanceId: up.id }, { strategy: 'skip' });
    expect(result.applied).toEqual([{ instanceId: up.id, from: 'paused', to: 'skipped', changed: true }]);
    expect((await controller.get(up.id))?.state).toBe('skipped');
    const released = await controller.waitFor(down.id, { timeoutMs: 2000 });
    expect(released.state).toBe('succeeded');
    expect(await history(controller, down.id)).toEqual([
      'none --submit_pending--> pending',
      'pending --ready--> queued',
      'queued --start--> running',
      'running --succeed--> succeeded',
    ]);
  });

  it('resume merges new params over the old ones', async () => {
    const { controller, job, paramsSeen } = await pausedAtCheckpoint({ batch: 50, day: 'mon' });
    expect(job.params).toEqual({ region: 'eu', batch: 50, day: 'mon' });
    await controller.resume({ instanceId: job.id }, { params: { batch: 5, extra: true } });
    const done = await controller.waitFor(job.id, { timeoutMs: 2000 });
    expect(done.params).toEqual({ region: 'eu', batch: 5, day: 'mon', extra: true });
    expect(paramsSeen.at(-1)).toEqual({ region: 'eu', batch: 5, day: 'mon', extra: true });
  });

  it('resuming a pausing instance withdraws the pause: the same run carries on', async () => {
    const release = deferred();
    let ctx: ExecutionContext | undefined;
    let runs = 0;
    const { controller } = controllerWith({
      job: async (c) => {
        runs++;
        ctx = c;
        await release.promise;
        await c.pausePoint('never saved');
        return 'done';
      },
    });
    controller.define({ id: 'job' });
    await controller.start();
    const job = await controller.submit('job');
    await untilState(controller, job.id, 'running');
    await controller.pause({ instanceId: job.id });
    await untilState(controller, job.id, 'pausing');
    expect(ctx?.pauseRequested()).toBe(true);

    const result = await controller.resume({ instanceId: job.id });
    expect(result.applied).toEqual([{ instanceId: job.id, from: 'pausing', to: 'running', changed: true }]);
    expect(ctx?.pauseRequested()).toBe(false);
    release.resolve();
    const done = await controller.waitFor(job.id, { timeoutMs: 2000 });
    expect(done.state).toBe('succeeded');
    expect(done.checkpoint).toBeUndefined();
    expect(runs).toBe(1);
  });

  it('a resume that arrives while the executor is unwinding from its pause point still resumes the work', async () => {
    const cleaning = deferred();
    const cleaned = deferred();
    const seen = { checkpoints: [] as unknown[] };
    const { controller } = controllerWith({
      job: async (ctx) => {
        seen.checkpoints.push(ctx.checkpoint);
        const from = typeof ctx.checkpoint === 'number' ? ctx.checkpoint : 0;
        try {
          for (let i = from; i < 40; i++) {
            await ctx.pausePoint(i);
            await sleep(2, ctx.signal);
          }
        } finally {
          if (seen.checkpoints.length === 1) {
            cleaning.resolve();
            await cleaned.promise; // closing files, flushing buffers
          }
        }
        return 'done';
      },
    });
    controller.define({ id: 'job' });
    await controller.start();
    const job = await controller.submit('job');
    await untilState(controller, job.id, 'running');
    await sleep(10);
    await controller.pause({ instanceId: job.id });
    await cleaning.promise; // unwound from its pause point, not yet returned
    const result = await controller.resume({ instanceId: job.id });
    expect(result.applied).toEqual([{ instanceId: job.id, from: 'pausing', to: 'running', changed: true }]);
    cleaned.resolve();

    const done = await untilState(controller, job.id, ['succeeded', 'paused', 'failed']);
    expect(done.state).toBe('succeeded');
    expect(done.attempt).toBe(1);
    expect(seen.checkpoints).toHaveLength(2);
    expect(seen.checkpoints[1]).toEqual(expect.any(Number));
  });

  it('resuming what is not paused changes nothing and is reported with changed: false', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'job' });
    const job = await controller.submit('job');
    const result = await controller.resume({ instanceId: job.id });
    expect(result.applied).toEqual([{ instanceId: job.id, from: 'queued', to: 'queued', changed: false }]);
    expect((await controller.get(job.id))?.version).toBe(job.version);
  });

  it('resuming a finished instance is rejected with ILLEGAL_TRANSITION', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'job' });
    const job = await controller.submit('job');
    await controller.stop({ instanceId: job.id });
    const before = await controller.get(job.id);
    const result = await controller.resume({ instanceId: job.id });
    expect(result.applied).toEqual([]);
    expect(result.rejected).toMatchObject([{ instanceId: job.id, code: 'ILLEGAL_TRANSITION' }]);
    expect(await controller.get(job.id)).toEqual(before);
  });

  it('a resumed instance whose upstream has not succeeded goes back to waiting (pending)', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'up' });
    controller.define({ id: 'down', dependsOn: ['up'] });
    const day = '2024-05-02T00:00:00.000Z';
    const down = await controller.submit('down', { logicalDate: day });
    await controller.pause({ instanceId: down.id });
    const result = await controller.resume({ instanceId: down.id });
    expect(result.applied).toEqual([{ instanceId: down.id, from: 'paused', to: 'pending', changed: true }]);
  });
});

import { Queue, Worker, type Job, type JobState } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BullMQExecutor, bullmqProcessor, BULLMQ_JOB_ID_PARAM } from '../../src/adapters/bullmq.js';
import { TaskController, type Instance } from '../../src/index.js';
import { eventually, until } from './helpers.js';

const REDIS = { host: process.env.REDIS_HOST ?? '127.0.0.1', port: Number(process.env.REDIS_PORT ?? 6379) };

async function redisReachable(): Promise<boolean> {
  const client = new Redis({ ...REDIS, lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

const reachable = await redisReachable();
if (!reachable) {
  const where = `${REDIS.host}:${REDIS.port}`;
  const ci = process.env.CI !== undefined && !['', '0', 'false'].includes(process.env.CI.toLowerCase());
  if (ci) throw new Error(`Redis is not reachable at ${where}, and CI is set: the BullMQ adapter tests must run in CI`);
  console.warn(`\n${'!'.repeat(78)}\n!! SKIPPING the BullMQ adapter tests: Redis is not reachable at ${where}.\n!! Start one (docker run -p 6379:6379 redis) to run them; under CI=true they fail instead.\n${'!'.repeat(78)}\n`);
}

interface JobData {
  steps?: number;
  flaky?: boolean;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });

describe.skipIf(!reachable)('BullMQ adapter (real Redis)', () => {
  const queueName = `taskctl-test-${process.pid}-${Date.now().toString(36)}`;
  const connection = { ...REDIS, maxRetriesPerRequest: null };
  let queue: Queue<JobData>;
  let worker: Worker<JobData>;
  let controller: TaskController;
  /** The last progress reported per instance. */
  const progress = new Map<string, number>();
  /** Every call of the wrapped processor. */
  const runs: { jobId: string; attempt: number; checkpoint: unknown }[] = [];

  beforeAll(async () => {
    queue = new Queue<JobData>(queueName, { connection });
    const executor = new BullMQExecutor({ redeliveryTimeoutMs: 10_000 });
    controller = new TaskController({ executor });
    controller.define({ id: 'resize' });
    controller.on('progress', (e) => progress.set(e.instanceId, e.done));
    await controller.start();
    const processor = bullmqProcessor<JobData, unknown>(controller, {
      taskId: 'resize',
      executor,
      queue,
      // the user's processor: a pause point per step, its signal honoured
      process: async (job, ctx) => {
        runs.push({ jobId: String(job.id), attempt: ctx.attempt, checkpoint: ctx.checkpoint });
        if (job.data.flaky && ctx.attempt === 1) throw new Error('flaky: the first attempt fails');
        const steps = Number(ctx.params.steps ?? 0);
        for (let i = typeof ctx.checkpoint === 'number' ? ctx.checkpoint : 0; i < steps; i++) {
          await ctx.pausePoint(i);
          ctx.progress(i, steps);
          await sleep(15, ctx.signal);
        }
        return { steps, attempt: ctx.attempt };
      },
    });
    worker = new Worker<JobData>(queueName, processor, { connection, concurrency: 4 });
    await worker.waitUntilReady();
  });

  afterAll(async () => {
    await worker?.close();
    await controller?.shutdown({ graceMs: 0 });
    await controller?.close();
    await queue?.obliterate({ force: true }).catch(() => undefined);
    await queue?.close();
  });

  async function instanceOf(job: Job): Promise<Instance> {
    let found: Instance | undefined;
    await eventually(async () => {
      const { items } = await controller.list({ taskId: 'resize', limit: 1000 });
      found = items.find((i) => i.params[BULLMQ_JOB_ID_PARAM] === job.id);
      return found !== undefined;
    }, `the instance of job ${job.id}`);
    return found!;
  }

  /** Until the wrapped processor has been called for the job (running in taskctl is not enough). */
  async function processing(job: Job): Promise<void> {
    await eventually(() => runs.some((r) => r.jobId === job.id), `the processor to run job ${job.id}`);
  }

  async function jobState(job: Job, states: JobState[], timeoutMs = 5000, q: { getJob(id: string): Promise<Job | undefined> } = queue): Promise<Job> {
    let last: string | undefined;
    await eventually(async () => {
      last = await job.getState();
      return (states as string[]).includes(last);
    }, `job ${job.id} to be ${states.join('/')} (it is ${last})`, timeoutMs);
    return (await q.getJob(job.id!))!;
  }

  it('pause parks the job in delayed and frees the worker; resume delivers it again and it finishes from its checkpoint', async () => {
    const job = await queue.add('resize', { steps: 25 });
    const instance = await instanceOf(job);
    await eventually(() => (progress.get(instance.id) ?? 0) >= 3, 'three steps');
    await controller.pause({ instanceId: instance.id });
    const paused = await until(controller, instance.id, 'paused');
    const checkpoint = paused.checkpoint as number;
    expect(checkpoint).toBeGreaterThanOrEqual(3);
    await jobState(job, ['delayed']);
    expect(await queue.getActiveCount()).toBe(0);
    // BullMQ mirrored the progress
    expect((await queue.getJob(job.id!))?.progress).toMatchObject({ total: 25 });

    await controller.resume({ instanceId: instance.id });
    const finished = await jobState(job, ['completed', 'failed']);
    expect(finished.returnvalue).toEqual({ steps: 25, attempt: 1 });
    expect(await controller.get(instance.id)).toMatchObject({ state: 'succeeded', attempt: 1 });
    expect(runs.filter((r) => r.jobId === job.id).map((r) => r.checkpoint)).toEqual([undefined, checkpoint]);
  });

  it('stop fails the job with no BullMQ retry, naming who stopped it and why', async () => {
    const job = await queue.add('resize', { steps: 1000 }, { attempts: 3 });
    const instance = await instanceOf(job);
    await processing(job);
    await controller.stop({ instanceId: instance.id }, { actor: 'alice', reason: 'wrong input file' });
    expect((await until(controller, instance.id, 'stopped')).state).toBe('stopped');
    const failed = await jobState(job, ['failed']);
    expect(failed.failedReason).toContain('stopped in taskctl by alice: wrong input file');
    expect(failed.attemptsMade).toBeLessThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(await job.getState()).toBe('failed');

    // a rerun from taskctl retries the job in BullMQ, and the processor runs again (new params too)
    await controller.rerun({ instanceId: instance.id }, { params: { steps: 3 } });
    const rerun = await jobState(job, ['completed'], 8000);
    expect(rerun.returnvalue).toEqual({ steps: 3, attempt: 2 });
    expect(await controller.get(instance.id)).toMatchObject({ state: 'succeeded', attempt: 2 });
    expect(runs.filter((r) => r.jobId === job.id).map((r) => r.attempt)).toEqual([1, 2]);
  });

  it("a BullMQ retry of a failed job (its attempts) reruns the instance", async () => {
    const job = await queue.add('resize', { steps: 2, flaky: true }, { attempts: 2 });
    const done = await jobState(job, ['completed', 'failed'], 8000);
    expect(await done.getState()).toBe('completed');
    expect(done.returnvalue).toEqual({ steps: 2, attempt: 2 });
    expect(done.attemptsMade).toBe(2);
    const instance = await instanceOf(job);
    expect(await controller.get(instance.id)).toMatchObject({ state: 'succeeded', attempt: 2 });
    const moves = (await controller.audit({ instanceId: instance.id })).filter((e) => e.kind === 'transition').map((e) => `${e.from}->${e.to}`);
    expect(moves).toEqual(['none->queued', 'queued->running', 'running->failed', 'failed->queued', 'queued->running', 'running->succeeded']);
  });

  it('stopping a paused instance settles its parked job at once', async () => {
    const job = await queue.add('resize', { steps: 1000 });
    const instance = await instanceOf(job);
    await processing(job);
    await controller.pause({ instanceId: instance.id });
    await until(controller, instance.id, 'paused');
    await jobState(job, ['delayed']);
    await controller.stop({ instanceId: instance.id }, { actor: 'bob' });
    const failed = await jobState(job, ['failed']);
    expect(failed.failedReason).toContain('stopped in taskctl by bob');
  });

  it('cancelling the job in BullMQ stops the instance', async () => {
    const job = await queue.add('resize', { steps: 1000 });
    const instance = await instanceOf(job);
    await processing(job);
    expect(worker.cancelJob(job.id!, 'no longer needed')).toBe(true);
    await until(controller, instance.id, 'stopped');
    const failed = await jobState(job, ['failed']);
    expect(failed.failedReason).toContain('cancelled in BullMQ: no longer needed');
  });

  it('a job submitted with a logical date finds the same instance: a second job for that date gets its result', async () => {
    const exec = new BullMQExecutor();
    const dated = new TaskController({ executor: exec });
    dated.define({ id: 'daily' });
    await dated.start();
    const name = `${queueName}-daily`;
    const q = new Queue<{ day: string }>(name, { connection });
    let calls = 0;
    const w = new Worker<{ day: string }>(
      name,
      bullmqProcessor<{ day: string }, string>(dated, {
        taskId: 'daily',
        executor: exec,
        queue: q,
        logicalDate: (job) => job.data.day,
        process: async (job) => {
          calls++;
          return `report for ${job.data.day}`;
        },
      }),
      { connection },
    );
    try {
      const first = await q.add('daily', { day: '2024-05-01T00:00:00Z' });
      await jobState(first, ['completed'], 5000, q);
      const second = await q.add('daily', { day: '2024-05-01T00:00:00Z' });
      const again = await jobState(second, ['completed'], 5000, q);
      expect(again.returnvalue).toBe('report for 2024-05-01T00:00:00Z');
      expect(calls).toBe(1);
      expect((await dated.list({ taskId: 'daily' })).items).toHaveLength(1);
    } finally {
      await w.close();
      await dated.shutdown({ graceMs: 0 });
      await q.obliterate({ force: true }).catch(() => undefined);
      await q.close();
    }
  });
});

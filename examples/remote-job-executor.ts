// docs/executors.md, "Wrapping any other runner", runnable: npx tsx examples/remote-job-executor.ts
// An executor for a remote job API. The API here is an in-memory stand-in for a Kubernetes Job,
// a Spark or CI system or a SaaS batch API: jobs that process rows, report progress and a
// checkpoint, and can be cancelled.
import assert from 'node:assert/strict';
import { TaskController, type ExecutionContext, type Executor } from '../src/index.js';

interface RemoteJobStatus {
  state: 'running' | 'succeeded' | 'failed' | 'cancelled';
  progress?: { done: number; total: number };
  checkpoint?: number;
  output?: unknown;
  message?: string;
  code?: string;
}

interface RemoteJobApi {
  /** Starts a job, or returns the live or finished job already started with this key (a cancelled one frees its key). */
  start(request: { key: string; input: Record<string, unknown>; resumeFrom?: unknown }): Promise<{ id: string }>;
  status(id: string): Promise<RemoteJobStatus>;
  cancel(id: string, reason: string): Promise<void>;
}

/** The stand-in: a job processes `input.rows` rows, one every 5 ms; `input.failAt` makes it fail there. */
class FakeRemoteJobs implements RemoteJobApi {
  readonly started: string[] = [];
  readonly cancelled: { id: string; reason: string }[] = [];
  private readonly jobs = new Map<string, RemoteJobStatus & { key: string; timer?: NodeJS.Timeout }>();

  async start({ key, input, resumeFrom }: { key: string; input: Record<string, unknown>; resumeFrom?: unknown }) {
    for (const [id, job] of this.jobs) if (job.key === key && job.state !== 'cancelled') return { id };
    const id = `job-${this.jobs.size + 1}`;
    const total = Number(input.rows);
    const job: RemoteJobStatus & { key: string; timer?: NodeJS.Timeout } = { key, state: 'running', checkpoint: Number(resumeFrom ?? 0), progress: { done: Number(resumeFrom ?? 0), total } };
    job.timer = setInterval(() => {
      const done = (job.checkpoint ?? 0) + 1;
      if (done === input.failAt) return this.finish(job, { state: 'failed', message: `row ${done} is malformed`, code: 'BAD_ROW' });
      Object.assign(job, { checkpoint: done, progress: { done, total } });
      if (done >= total) this.finish(job, { state: 'succeeded', output: { rows: total } });
    }, 5);
    this.jobs.set(id, job);
    this.started.push(`${id} (key ${key.slice(-8)}, from row ${job.checkpoint})`);
    return { id };
  }

  async status(id: string): Promise<RemoteJobStatus> {
    const { key: _key, timer: _timer, ...status } = this.jobs.get(id)!;
    return structuredClone(status);
  }

  async cancel(id: string, reason: string): Promise<void> {
    const job = this.jobs.get(id)!;
    if (job.state !== 'running') return;
    this.cancelled.push({ id, reason });
    this.finish(job, { state: 'cancelled' });
  }

  private finish(job: RemoteJobStatus & { timer?: NodeJS.Timeout }, outcome: Partial<RemoteJobStatus>) {
    clearInterval(job.timer);
    Object.assign(job, outcome);
  }
}

/** Waits `ms`, or rejects with the signal's reason when it fires first. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

class RemoteJobExecutor implements Executor {
  constructor(private readonly api: RemoteJobApi, private readonly pollMs = 2_000) {}

  async execute(ctx: ExecutionContext): Promise<unknown> {
    // idempotent start: a run recovered by another controller (same attempt) finds the job already started
    const job = await this.api.start({
      key: `${ctx.instance.id}:${ctx.attempt}`,
      input: ctx.params,
      resumeFrom: ctx.checkpoint, // present when resumed with 'continue'
    });
    const cancel = () => void this.api.cancel(job.id, String((ctx.signal.reason as { kind?: string }).kind));
    ctx.signal.addEventListener('abort', cancel, { once: true }); // stop, timeout, forced pause
    try {
      for (;;) {
        const status = await this.api.status(job.id);
        if (status.progress) ctx.progress(status.progress.done, status.progress.total);
        if (status.checkpoint !== undefined) ctx.saveCheckpoint(status.checkpoint);
        if (status.state === 'succeeded') return status.output;
        if (status.state === 'failed') throw Object.assign(new Error(status.message), { code: status.code });
        if (ctx.pauseRequested()) {
          await this.api.cancel(job.id, 'pause'); // or the runner's own suspend, then ctx.suspend()
          await ctx.pausePoint(status.checkpoint); // rejects: the instance becomes paused
        }
        await sleep(this.pollMs, ctx.signal);
      }
    } finally {
      ctx.signal.removeEventListener('abort', cancel);
    }
  }
}

// --- run it ------------------------------------------------------------------------------------
const api = new FakeRemoteJobs();
const controller = new TaskController({ executor: new RemoteJobExecutor(api, 10) }); // poll every 10 ms here
controller.define({ id: 'reindex', maxAttempts: 2 });
await controller.start();
const sleepMs = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// 1. pause (the remote job is cancelled at its checkpoint), resume from there, succeed
const a = await controller.submit('reindex', { params: { rows: 40 } });
await sleepMs(60);
await controller.pause({ instanceId: a.id }, { actor: 'alice', reason: 'search cluster upgrade' });
const paused = await controller.waitFor(a.id);
console.log(`paused at row ${paused.checkpoint}`);
await controller.resume({ instanceId: a.id }, { actor: 'alice' });
const succeeded = await controller.waitFor(a.id);
console.log(`${succeeded.state}: ${JSON.stringify(succeeded.result)}`);
assert.equal(paused.state, 'paused');
assert.equal(succeeded.state, 'succeeded');
assert.deepEqual(succeeded.result, { rows: 40 });

// 2. stop: the abort signal cancels the remote job, telling it why
const b = await controller.submit('reindex', { params: { rows: 1_000 } });
await sleepMs(30);
const stopped = await controller.stop({ instanceId: b.id }, { actor: 'bob' });
await controller.waitFor(b.id);
console.log(`stop: ${stopped.applied.length} stopped; remote cancels: ${JSON.stringify(api.cancelled)}`);
assert.equal((await controller.get(b.id))?.state, 'stopped');
assert.deepEqual(api.cancelled.map((c) => c.reason), ['pause', 'stop']);

// 3. a remote failure becomes the instance's error code; the retry (attempt 2) is a new job
const c = await controller.submit('reindex', { params: { rows: 10, failAt: 3 } });
let failed = await controller.waitFor(c.id);
while (failed.state !== 'failed' || failed.attempt < 2) {
  await sleepMs(10);
  failed = (await controller.get(c.id))!;
}
console.log(`${failed.state} after attempt ${failed.attempt}: ${failed.error?.code} ${failed.error?.message}`);
assert.equal(failed.error?.code, 'BAD_ROW');
assert.equal(api.started.length, 5); // 2 for the paused and resumed run, 1 stopped, 2 attempts of the failing one

console.log('remote jobs started:', api.started);
await controller.shutdown();

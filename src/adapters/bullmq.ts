// `taskctl/bullmq`: run BullMQ jobs under taskctl's control. bullmq is a peer dependency of
// this entry point only; the core never imports it.
import { DelayedError, Job, UnrecoverableError, type Queue } from 'bullmq';
import { z } from 'zod';
import type { TaskController } from '../controller/controller.js';
import type { ExecutionContext, Executor } from '../execution/executor.js';
import { parse } from '../schemas.js';
import type { Instance, InstanceState } from '../types.js';

/** What the wrapped processor gets besides the job: taskctl's controls, plus the BullMQ lock token. */
export interface BullMQJobContext<DataType = unknown, ResultType = unknown> extends ExecutionContext {
  /** The job BullMQ delivered. */
  readonly job: Job<DataType, ResultType>;
  /** The worker's lock token for the job. */
  readonly token?: string;
}

/**
 * Your processor, as you would give it to `new Worker(...)`, with a second argument: the
 * {@link BullMQJobContext}. A processor that ignores it works unchanged; one that calls
 * `ctx.pausePoint()` can be paused gracefully, and one that watches `ctx.signal` stops promptly.
 */
export type BullMQTaskProcessor<DataType = unknown, ResultType = unknown> = (
  job: Job<DataType, ResultType>,
  ctx: BullMQJobContext<DataType, ResultType>,
) => Promise<ResultType> | ResultType;

/** Options of {@link BullMQExecutor}. */
export interface BullMQExecutorOptions {
  /** Runs instances of tasks no BullMQ processor is bound to (say, a FunctionExecutor). */
  fallback?: Executor;
  /**
   * How long a resumed or rerun instance waits for BullMQ to deliver its job again before
   * the attempt fails with `BULLMQ_NOT_DELIVERED`. @default 60000
   */
  redeliveryTimeoutMs?: number;
}

/** Options of {@link bullmqProcessor}. */
export interface BullMQProcessorOptions<DataType = unknown, ResultType = unknown> {
  /** The taskctl task each job becomes an instance of (define it on the controller). */
  taskId: string;
  /** The controller's executor: it runs `process` when taskctl dispatches an instance. */
  executor: BullMQExecutor;
  /** Your processor. */
  process: BullMQTaskProcessor<DataType, ResultType>;
  /**
   * A Queue for the same queue name. Lets the adapter find a job by id to deliver it again
   * after a resume or a rerun when this process did not see it (after a restart, or with
   * several workers on one store). Without it, the job handles this worker saw are used.
   */
  queue?: Queue;
  /** The instance's logical date, from the job: one instance per (task, logical date). */
  logicalDate?: (job: Job<DataType, ResultType>) => string | Date | undefined;
  /** The instance's params. @default the job's data when it is an object, else `{ data }` */
  params?: (job: Job<DataType, ResultType>) => Record<string, unknown>;
  /**
   * A paused instance's job waits in BullMQ's `delayed` set, promoted as soon as the instance
   * is resumed; after this long BullMQ delivers it anyway and it is parked again. @default 3600000
   */
  parkMs?: number;
  /** The actor of the submits, reruns and stops the adapter makes. @default 'system:bullmq' */
  actor?: string;
}

/** A processor for `new Worker(queueName, processor, opts)`. */
export type TaskctlProcessor<DataType = unknown, ResultType = unknown> = (
  job: Job<DataType, ResultType>,
  token?: string,
  signal?: AbortSignal,
) => Promise<ResultType>;

/** The param that names an instance's BullMQ job id. */
export const BULLMQ_JOB_ID_PARAM = 'bullmqJobId';
/** The key of `job.data` where the adapter notes the job's instance id (object data only). */
export const BULLMQ_DATA_KEY = '__taskctl';

const SETTLED: InstanceState[] = ['paused', 'stopped', 'succeeded', 'failed', 'skipped'];
const AFTER_FAILED: InstanceState[] = ['pending', 'queued', 'running', 'paused', 'stopped', 'succeeded', 'skipped'];
const WAITING: ReadonlySet<InstanceState> = new Set(['pending', 'queued', 'running', 'pausing', 'stopping']);

// -- one delivery of a job ---------------------------------------------------------------------

/** A job BullMQ handed to this worker, available to the executor while it is open. */
class Delivery {
  closed = false;
  /** The outcome of the last run of the processor on this delivery. */
  last: { ok: true; value: unknown } | { ok: false; error: unknown } | undefined;
  private running: Promise<void> | undefined;

  constructor(
    readonly job: Job,
    readonly token: string | undefined,
    readonly signal: AbortSignal | undefined,
  ) {}

  async run(binding: Binding, ctx: ExecutionContext): Promise<unknown> {
    const { job } = this;
    const signal = this.signal ? AbortSignal.any([ctx.signal, this.signal]) : ctx.signal;
    // delegate rather than spread: the controller's context may keep its methods on a prototype
    const jobCtx: BullMQJobContext = {
      instance: ctx.instance,
      params: ctx.params,
      logicalDate: ctx.logicalDate,
      attempt: ctx.attempt,
      checkpoint: ctx.checkpoint,
      signal,
      job,
      token: this.token,
      pauseRequested: () => ctx.pauseRequested(),
      pausePoint: (checkpoint) => ctx.pausePoint(checkpoint),
      saveCheckpoint: (checkpoint) => ctx.saveCheckpoint(checkpoint),
      suspend: (checkpoint) => ctx.suspend(checkpoint),
      onPauseRequested: (listener) => ctx.onPauseRequested(listener),
      progress(done: number, total?: number): void {
        ctx.progress(done, total);
        job.updateProgress(total === undefined ? done : { done, total }).catch(() => undefined);
      },
    };
    let finished!: () => void;
    this.running = new Promise<void>((resolve) => (finished = resolve));
    try {
      const value = await binding.process(job, jobCtx);
      this.last = { ok: true, value };
      return value;
    } catch (error) {
      this.last = { ok: false, error };
      throw error;
    } finally {
      finished();
      this.running = undefined;
    }
  }

  /** Resolves when the processor is not running on this delivery. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
}

interface Binding {
  taskId: string;
  controller: TaskController;
  process: BullMQTaskProcessor<unknown, unknown>;
  queue?: Queue;
  logicalDate?: (job: Job) => string | Date | undefined;
  params?: (job: Job) => Record<string, unknown>;
  parkMs: number;
  actor: string;
  /** Job id -> instance id, for jobs seen here. */
  instances: Map<string, string>;
  unlisten: () => void;
}

/** How many job handles and job -> instance ids a worker keeps for jobs it saw. */
const REMEMBERED = 10_000;

/** Set `key` in a map used as a bounded memory: the oldest entries go first. */
function remember<K, V>(map: Map<K, V>, key: K, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > REMEMBERED) map.delete(map.keys().next().value as K);
}

function adapterError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

// -- the executor ------------------------------------------------------------------------------

const executorOptionsSchema = z
  .object({
    fallback: z
      .custom<Executor>((v) => typeof v === 'object' && v !== null && typeof (v as Executor).execute === 'function', 'must have an execute(ctx) method')
      .optional(),
    redeliveryTimeoutMs: z.number().int().min(1).optional(),
  })
  .strict();

/** What a BullMQExecutor knows; shared with the processors bound to it. */
interface ExecutorState {
  bindings: Map<string, Binding>;
  /** Instance id -> the job delivered for it, while its worker call waits. */
  deliveries: Map<string, Delivery>;
  /** Instance id -> executors waiting for BullMQ to deliver its job again. */
  waiters: Map<string, Set<(d: Delivery) => void>>;
  /** Instance id -> the last handle seen of its job. */
  jobs: Map<string, Job>;
  redeliveryTimeoutMs: number;
}

const states = new WeakMap<BullMQExecutor, ExecutorState>();

/**
 * The taskctl executor of a BullMQ worker. Give it to the controller, and bind each queue's
 * processor to a task with {@link bullmqProcessor}. When taskctl dispatches an instance, it
 * runs the processor on the job BullMQ delivered for it, or, after a resume or a rerun,
 * has BullMQ deliver that job again (promoting it from `delayed`, or retrying it) and then
 * runs it.
 */
export class BullMQExecutor implements Executor {
  private readonly state: ExecutorState;
  private readonly fallback?: Executor;

  constructor(options: BullMQExecutorOptions = {}) {
    const o = parse(executorOptionsSchema, options, 'options');
    this.fallback = o.fallback;
    this.state = { bindings: new Map(), deliveries: new Map(), waiters: new Map(), jobs: new Map(), redeliveryTimeoutMs: o.redeliveryTimeoutMs ?? 60_000 };
    states.set(this, this.state);
  }

  async execute(ctx: ExecutionContext): Promise<unknown> {
    const binding = this.state.bindings.get(ctx.instance.taskId);
    if (!binding) {
      if (this.fallback) return this.fallback.execute(ctx);
      throw adapterError(
        'NO_BULLMQ_PROCESSOR',
        `no BullMQ processor is bound to task ${ctx.instance.taskId}: use bullmqProcessor(controller, { taskId: '${ctx.instance.taskId}', ... })`,
      );
    }
    const delivery = openDelivery(this.state, ctx.instance.id) ?? (await redeliver(this.state, ctx, binding));
    return delivery.run(binding, ctx);
  }
}

function openDelivery(state: ExecutorState, instanceId: string): Delivery | undefined {
  const d = state.deliveries.get(instanceId);
  return d && !d.closed ? d : undefined;
}

/** Offer a delivered job to the executor; undefined when another job already holds the instance. */
function attach(state: ExecutorState, instanceId: string, job: Job, token: string | undefined, signal: AbortSignal | undefined): Delivery | undefined {
  const current = openDelivery(state, instanceId);
  if (current && current.job.id !== job.id) return undefined;
  const delivery = new Delivery(job, token, signal);
  state.deliveries.set(instanceId, delivery);
  const waiting = state.waiters.get(instanceId);
  if (waiting) {
    state.waiters.delete(instanceId);
    for (const wake of waiting) wake(delivery);
  }
  return delivery;
}

function detach(state: ExecutorState, instanceId: string, delivery: Delivery | undefined): void {
  if (delivery && state.deliveries.get(instanceId) === delivery) state.deliveries.delete(instanceId);
}

/** The job of an instance: fresh from the queue when there is one, else the last handle seen. */
async function findJob(state: ExecutorState, instance: Instance, binding: Binding): Promise<Job | undefined> {
  const jobId = instance.params[BULLMQ_JOB_ID_PARAM];
  if (binding.queue && typeof jobId === 'string') return Job.fromId(binding.queue, jobId);
  return state.jobs.get(instance.id);
}

/** Have BullMQ deliver the instance's job again, and wait for it. */
function redeliver(state: ExecutorState, ctx: ExecutionContext, binding: Binding): Promise<Delivery> {
  const id = ctx.instance.id;
  const jobId = ctx.instance.params[BULLMQ_JOB_ID_PARAM];
  return new Promise<Delivery>((resolve, reject) => {
    let done = false;
    let poll: NodeJS.Timeout | undefined;
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(poll);
      ctx.signal.removeEventListener('abort', onAbort);
      state.waiters.get(id)?.delete(wake);
      fn();
    };
    const fail = (err: unknown) => finish(() => reject(err));
    const wake = (d: Delivery) => finish(() => resolve(d));
    const onAbort = () => fail(ctx.signal.reason);
    const timer = setTimeout(
      () => fail(adapterError('BULLMQ_NOT_DELIVERED', `BullMQ did not deliver job ${String(jobId)} of instance ${id} within ${state.redeliveryTimeoutMs} ms (is a worker running on its queue?)`)),
      state.redeliveryTimeoutMs,
    );
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    let waiting = state.waiters.get(id);
    if (!waiting) state.waiters.set(id, (waiting = new Set()));
    waiting.add(wake);

    const gone = (why: string) => fail(adapterError('BULLMQ_JOB_GONE', why));
    // the job may still be finishing its last delivery (failing, being parked): look again
    // until it is somewhere it can be moved from
    const nudge = async (): Promise<void> => {
      if (done) return;
      const job = await findJob(state, ctx.instance, binding);
      if (done) return;
      if (!job) {
        return jobId === undefined
          ? gone(`instance ${id} has no BullMQ job to deliver again: it was not submitted by bullmqProcessor`)
          : gone(
              `BullMQ job ${String(jobId)} of instance ${id} no longer exists${binding.queue ? '' : ', or this worker never saw it (pass `queue` to bullmqProcessor)'}; ` +
                'keep finished jobs (removeOnComplete/removeOnFail) to rerun them from taskctl',
            );
      }
      const where = await job.getState();
      if (done) return;
      if (where === 'unknown') return gone(`BullMQ job ${job.id} of instance ${id} no longer exists`);
      if (where === 'delayed') await job.promote().catch(() => undefined);
      else if (where === 'failed' || where === 'completed') await job.retry(where).catch(() => undefined);
      if (!done) poll = setTimeout(() => void nudge().catch(fail), 250);
    };
    void nudge().catch(fail);
  });
}

// -- the processor -------------------------------------------------------------------------------

const processorOptionsSchema = z
  .object({
    taskId: z.string().min(1, 'must name a task'),
    executor: z.instanceof(BullMQExecutor, { message: 'must be the BullMQExecutor given to the controller' }),
    process: z.custom<BullMQTaskProcessor>((v) => typeof v === 'function', 'must be a function (job, ctx) => result'),
    queue: z.custom<Queue>((v) => typeof v === 'object' && v !== null, 'must be a bullmq Queue').optional(),
    logicalDate: z.custom<(job: Job) => string>((v) => typeof v === 'function', 'must be a function (job) => date').optional(),
    params: z.custom<(job: Job) => Record<string, unknown>>((v) => typeof v === 'function', 'must be a function (job) => params').optional(),
    parkMs: z.number().int().min(1).optional(),
    actor: z.string().min(1).optional(),
  })
  .strict();

/**
 * Wrap a BullMQ processor so that each job runs as a taskctl instance:
 *
 * ```ts
 * const executor = new BullMQExecutor();
 * const controller = new TaskController({ executor });
 * controller.define({ id: 'resize' });
 * await controller.start();
 * const worker = new Worker('images', bullmqProcessor(controller, {
 *   taskId: 'resize', executor, queue,
 *   process: async (job, ctx) => { for (...) { await ctx.pausePoint(i); ... } return result; },
 * }), { connection });
 * ```
 *
 * Each job is submitted as one instance (or finds the one it already has: by the id noted in
 * its data, or by `logicalDate`), the worker's call waits for taskctl to run it, and the job
 * settles with the instance's outcome:
 * - `succeeded`: the job completes with the processor's return value;
 * - `failed`: the job fails with the processor's error; BullMQ's `attempts` may retry it, and
 *   that delivery reruns the instance (attempt + 1);
 * - `paused`: the job moves to `delayed` and frees the worker; resuming the instance promotes
 *   it, and the processor runs again with `ctx.checkpoint`;
 * - `stopped`: the job fails with an `UnrecoverableError` (no BullMQ retry) naming who stopped it;
 * - `skipped`: the job completes with `undefined`.
 * Rerunning the instance from taskctl retries the finished job in BullMQ. Cancelling the job in
 * BullMQ (`worker.cancelJob`) stops the instance. `ctx.progress` also updates the job's progress.
 */
export function bullmqProcessor<DataType = unknown, ResultType = unknown>(
  controller: TaskController,
  options: BullMQProcessorOptions<DataType, ResultType>,
): TaskctlProcessor<DataType, ResultType> {
  const o = parse(processorOptionsSchema, options, 'options');
  const executor = o.executor;
  const binding: Binding = {
    taskId: o.taskId,
    controller,
    process: o.process as BullMQTaskProcessor<unknown, unknown>,
    queue: o.queue,
    logicalDate: o.logicalDate as Binding['logicalDate'],
    params: o.params as Binding['params'],
    parkMs: o.parkMs ?? 3_600_000,
    actor: o.actor ?? 'system:bullmq',
    instances: new Map(),
    unlisten: () => undefined,
  };
  // a parked job whose instance is stopped or skipped meanwhile: deliver it so that it settles
  const onTransition = (e: { instanceId: string; taskId: string; from: string; to: string }) => {
    if (e.taskId !== binding.taskId || e.from !== 'paused' || (e.to !== 'stopped' && e.to !== 'skipped')) return;
    void (async () => {
      const instance = await controller.get(e.instanceId);
      const job = instance && (await findJob(states.get(executor)!, instance, binding));
      if (job && (await job.getState()) === 'delayed') await job.promote();
    })().catch(() => undefined);
  };
  controller.on('transition', onTransition);
  binding.unlisten = () => controller.off('transition', onTransition);
  const state = states.get(executor)!;
  state.bindings.get(binding.taskId)?.unlisten();
  state.bindings.set(binding.taskId, binding);

  return async (job: Job<DataType, ResultType>, token?: string, signal?: AbortSignal): Promise<ResultType> =>
    (await handle(state, binding, job as unknown as Job, token, signal)) as ResultType;
}

/** One delivery of a job: find its instance, wait for taskctl to run it, settle the job. */
async function handle(state: ExecutorState, binding: Binding, job: Job, token: string | undefined, signal: AbortSignal | undefined): Promise<unknown> {
  const { controller } = binding;
  let instance = await instanceFor(binding, job);
  const id = instance.id;
  // with a queue, jobs are looked up by id when needed; without one, the handle is the way back
  if (!binding.queue) remember(state.jobs, id, job);
  let delivery: Delivery | undefined;
  const onCancel = () => {
    const why = signal?.reason === undefined ? '' : `: ${String(signal.reason instanceof Error ? signal.reason.message : signal.reason)}`;
    controller.stop({ instanceId: id }, { actor: binding.actor, reason: `job ${job.id} was cancelled in BullMQ${why}` }).catch(() => undefined);
  };
  signal?.addEventListener('abort', onCancel, { once: true });
  if (signal?.aborted) onCancel();
  let first = true;
  try {
    for (;;) {
      const current = instance.state;
      if (first && current === 'failed') {
        // BullMQ delivers a failed job again: its `attempts`, or someone retried it there
        instance = await rerun(binding, instance, job);
        first = false;
        continue;
      }
      first = false;
      const retryPending = current === 'failed' && instance.retryAt !== undefined;
      if (WAITING.has(current) || retryPending) {
        delivery ??= attach(state, id, job, token, signal);
        await controller.waitFor(id, { states: retryPending ? AFTER_FAILED : SETTLED });
        instance = (await controller.get(id)) ?? instance;
        continue;
      }
      // settled: from here on the executor must not run this delivery again
      if (delivery) {
        delivery.closed = true;
        await delivery.idle();
      }
      switch (current) {
        case 'succeeded':
          return delivery?.last?.ok ? delivery.last.value : instance.result;
        case 'skipped':
          return undefined;
        case 'stopped':
          throw new UnrecoverableError(await stopMessage(binding, instance));
        case 'paused':
          await job.moveToDelayed(Date.now() + binding.parkMs, token);
          throw new DelayedError(`taskctl instance ${id} is paused; the job waits until it is resumed`);
        default:
          throw failure(instance, delivery);
      }
    }
  } finally {
    signal?.removeEventListener('abort', onCancel);
    if (delivery) delivery.closed = true;
    detach(state, id, delivery);
  }
}

async function instanceFor(binding: Binding, job: Job): Promise<Instance> {
  const { controller } = binding;
  const jobId = String(job.id);
  const noted = isPlainObject(job.data) && isPlainObject(job.data[BULLMQ_DATA_KEY]) ? job.data[BULLMQ_DATA_KEY].instanceId : undefined;
  const known = binding.instances.get(jobId) ?? (typeof noted === 'string' ? noted : undefined);
  if (known) {
    const instance = await controller.get(known);
    if (instance && instance.taskId === binding.taskId) return instance;
  }
  const base = binding.params
    ? binding.params(job)
    : isPlainObject(job.data)
      ? Object.fromEntries(Object.entries(job.data).filter(([key]) => key !== BULLMQ_DATA_KEY))
      : { data: job.data };
  const instance = await controller.submit(binding.taskId, {
    params: { ...base, [BULLMQ_JOB_ID_PARAM]: jobId },
    logicalDate: binding.logicalDate?.(job),
    actor: binding.actor,
  });
  remember(binding.instances, jobId, instance.id);
  if (isPlainObject(job.data) && noted !== instance.id) {
    // noted in the job itself, so that another worker (or this one after a restart) finds it
    await job.updateData({ ...job.data, [BULLMQ_DATA_KEY]: { instanceId: instance.id } }).catch(() => undefined);
  }
  return instance;
}

async function rerun(binding: Binding, instance: Instance, job: Job): Promise<Instance> {
  const { controller } = binding;
  try {
    const result = await controller.rerun(
      { instanceId: instance.id },
      { actor: binding.actor, reason: `BullMQ delivered job ${job.id} again (attempts made: ${job.attemptsMade})` },
    );
    const refused = result.rejected[0];
    if (refused) throw new UnrecoverableError(`taskctl refused to rerun instance ${instance.id}: ${refused.code}: ${refused.message}`);
  } catch (err) {
    if (err instanceof UnrecoverableError) throw err;
    throw new UnrecoverableError(`taskctl refused to rerun instance ${instance.id}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return (await controller.get(instance.id)) ?? instance;
}

async function stopMessage(binding: Binding, instance: Instance): Promise<string> {
  const entries = await binding.controller.audit({ instanceId: instance.id, action: 'stop' }).catch(() => []);
  const command = entries.filter((e) => e.kind === 'command').at(-1);
  const by = command?.actor ? ` by ${command.actor}` : '';
  const why = command?.reason ? `: ${command.reason}` : '';
  return `stopped in taskctl${by}${why} (instance ${instance.id})`;
}

function failure(instance: Instance, delivery: Delivery | undefined): Error {
  const last = delivery?.last;
  if (last && !last.ok && last.error instanceof Error && instance.error?.code !== 'TIMEOUT') return last.error;
  const error = instance.error ?? { code: 'FAILED', message: `taskctl instance ${instance.id} failed` };
  return Object.assign(new Error(error.message), { code: error.code });
}

import { EventEmitter } from 'eventemitter3';
import { DateTime } from 'luxon';
import { realTimers, unrefTimer, type TimerHost } from '../clock.js';
import { TaskControlError, isTaskControlError } from '../errors.js';
import type { Executor } from '../execution/executor.js';
import { StateMachine, type HostGuard } from '../machine/machine.js';
import type { MachineEvent } from '../machine/transitions.js';
import {
  approvalsFilterSchema,
  auditFilterSchema,
  decisionOptionsSchema,
  holdWhileOptionsSchema,
  scopeTargetSchema,
  backfillOptionsSchema,
  controllerOptionsSchema,
  listFilterSchema,
  parse,
  pauseOptionsSchema,
  rerunOptionsSchema,
  resumeOptionsSchema,
  shutdownOptionsSchema,
  stopOptionsSchema,
  submitOptionsSchema,
  targetSchema,
  taskDefinitionSchema,
  waitForOptionsSchema,
} from '../schemas.js';
import { MemoryStateStore } from '../store/memory-store.js';
import type { BackfillRecord, CommandRecord, CommitBatch, HeldScope, InstanceQuery, StateStore, StoreNotice, VersionedWrite } from '../store/state-store.js';
import {
  isTerminal,
  type AuditEntry,
  type AuditFilter,
  type AuthRequest,
  type BackfillStatus,
  type CommandEvent,
  type ControlAction,
  type ControlResult,
  type Instance,
  type InstanceState,
  type ListFilter,
  type Page,
  type PauseOptions,
  type Schedule,
  type RerunOptions,
  type ResumeOptions,
  type StopOptions,
  type Target,
  type TaskDefinition,
  type TransitionEvent as TransitionEventPayload,
} from '../types.js';
import { BackfillPlanner, type DateInput, type Slot } from '../backfill/planner.js';
import { assertKnownOptions, assertNoOverlap, BackfillRun, planReprocess, plannerFor, type BackfillHost } from '../backfill/backfill-run.js';
import { emptyCounts } from '../store/memory-store.js';
import { planInstance, SCOPE_STATES, type InstancePlan, type PlanContext } from './commands.js';
import { advance, buildTransition, idFactory, isoCache, type Core, type TransitionMeta } from './core.js';
import { Runtime } from './runtime.js';
import { approvalRuleMatches, approvalRuleSchema, type Rule } from '../governance/rbac.js';
import { MetricsRecorder, type CommandDone, type MetricsSnapshot } from '../governance/metrics.js';

/** Options of the {@link TaskController} constructor. */
export interface TaskControllerOptions {
  /** Where instances, audit and scopes live. @default new MemoryStateStore() */
  store?: StateStore;
  /** Runs the work. Omit it for a controller that only issues commands (an operator's tool). */
  executor?: Executor;
  /** Max instances running at once in this controller. @default 10 */
  concurrency?: number;
  /** Asked once per submit, control command and backfill; `false` (or a throw) means `FORBIDDEN`. */
  authorize?: (req: AuthRequest) => boolean | Promise<boolean>;
  /** Injectable time, for tests. @default () => new Date() */
  clock?: () => Date;
  /** Injectable timers (with their own time); `taskctl/testing`'s `FakeClock` is one. */
  timers?: TimerHost;
  /** How long a running instance's owner may be silent before another controller recovers it. @default 30000 */
  leaseMs?: number;
  /** This controller's environment (e.g. `prod`), passed to `authorize`. */
  environment?: string;
  /** A stable id for this controller (lease owner); a fresh one by default. */
  controllerId?: string;
  /** Host guards checked on every transition their events cause. */
  guards?: HostGuard[];
  /** How often leases are renewed and deadlines, retries and dead owners are looked for. @default leaseMs / 3, at most 1000 */
  pollMs?: number;
  /** Commands that need a second person: they wait as `awaiting_approval` until `approve()`. */
  approvals?: {
    /** The rules that decide which commands need approval. */
    rules: Rule[];
    /** How long a request waits before it expires. @default 86400000 (24 hours) */
    ttlMs?: number;
  };
}

/** Options of {@link TaskController.submit}. */
export interface SubmitOptions {
  /** Params of the instance, merged over the task's `defaultParams`. */
  params?: Record<string, unknown>;
  /** ISO 8601 (with offset) or a Date; one instance per (taskId, logicalDate). */
  logicalDate?: string | Date;
  /** Who submits; recorded in the audit trail and passed to `authorize`. */
  actor?: string;
}

/** Internal knobs of a command call (backfills, approvals, schedules). */
interface CommandInternals {
  patch?: Partial<Instance>;
  skipAuthorize?: boolean;
  /** Apply a deferred command: its record (with the new status) is committed with the change. */
  record?: { next: CommandRecord; expectedVersion: number };
  fromSchedule?: boolean;
}

/** One approval request, as {@link TaskController.approvals} lists it. */
export interface ApprovalRequest {
  /** The held command. */
  commandId: string;
  /** Its action. */
  action: ControlAction;
  /** Its target. */
  target: Target;
  /** Its options. */
  options: Record<string, unknown>;
  /** Who issued the command. */
  requestedBy?: string;
  /** Where the request stands. */
  state: 'awaiting' | 'approved' | 'rejected' | 'expired';
  /** When it was requested (ISO). */
  createdAt: string;
  /** When it expires if nobody decides (ISO). */
  expiresAt?: string;
  /** Who approved or rejected it. */
  decidedBy?: string;
  /** The reason the approver or rejecter gave with their decision. */
  reason?: string;
  /** The applied command's result, once approved. */
  result?: ControlResult;
}

/** Options of {@link TaskController.holdWhile}. */
export interface HoldWhileOptions {
  /** The policy's name; its commands are audited as `system:<name>`. */
  name: string;
  /** How often the condition is checked. */
  checkEveryMs: number;
}

/** Options of {@link TaskController.backfill}. */
export interface BackfillOptions {
  /** First logical date, inclusive (ISO string, Date or luxon DateTime). */
  from: DateInput;
  /** Last logical date, inclusive. */
  to: DateInput;
  /** Run order. @default 'asc' */
  order?: 'asc' | 'desc';
  /** Params for every instance the backfill creates (merged over the task's defaults). */
  params?: Record<string, unknown>;
  /** Who starts the backfill; recorded in the audit trail and passed to `authorize`. */
  actor?: string;
  /** Why; recorded in the audit trail. */
  reason?: string;
  /** Overrides the task's schedule for this backfill. */
  schedule?: Schedule;
  /** `serial`: one slot at a time in date order; `parallel`: up to `concurrency` at once. @default 'serial' */
  mode?: 'serial' | 'parallel';
  /** Parallel mode: the most slots of this backfill running at once. @default 4 */
  concurrency?: number;
  /** Dates that already have an instance: skip them (`none`), rerun failed/stopped ones, or rerun all. @default 'none' */
  reprocess?: 'none' | 'failed' | 'all';
  /** Create nothing; report the total, a preview and what each reprocess policy would do. */
  dryRun?: boolean;
  /** Also create, per date, the instances of tasks that depend on this one (run after it). */
  includeDownstream?: boolean;
}

/** What a dry run reports. */
export interface BackfillPlan {
  /** Slots in the range. */
  total: number;
  /** Dates with no instance yet. */
  wouldCreate: number;
  /** Dates whose instance the chosen policy reruns. */
  wouldRerun: number;
  /** Dates whose instance the chosen policy leaves alone. */
  wouldSkip: number;
  /** The same counts under each policy. */
  byPolicy: Record<
    'none' | 'failed' | 'all',
    {
      /** Dates with no instance yet. */
      wouldCreate: number;
      /** Dates whose instance the policy reruns. */
      wouldRerun: number;
      /** Dates whose instance the policy leaves alone. */
      wouldSkip: number;
    }
  >;
}

/** A running (or planned) backfill, controlled as one unit. */
export interface BackfillHandle {
  /** The backfill id. */
  id: string;
  /** Resolves when the backfill completes or is cancelled (at once for a dry run). */
  done: Promise<BackfillStatus>;
  /** Hold the backfill: it creates and dispatches nothing until resumed. */
  pause(options?: { actor?: string }): Promise<void>;
  /** Let a paused backfill create and dispatch again. */
  resume(options?: { actor?: string }): Promise<void>;
  /** Stop its unfinished instances and create no more. */
  cancel(options?: { actor?: string }): Promise<void>;
  /** The current status. */
  status(): BackfillStatus;
  /** Dry runs: the first 100 slots in run order. */
  preview?: Slot[];
  /** Dry runs: what the backfill would do. */
  plan?: BackfillPlan;
}

/** Options of {@link TaskController.waitFor}. */
export interface WaitForOptions {
  /** States that end the wait. @default terminal states and `paused` */
  states?: InstanceState[];
  /** Reject with `TIMEOUT` after this long. */
  timeoutMs?: number;
}

/** A `progress` event: what an executor reported. */
export interface ProgressEvent {
  /** The instance. */
  instanceId: string;
  /** The instance's task. */
  taskId: string;
  /** Units of work finished so far. */
  done: number;
  /** Units of work in all, when known. */
  total?: number;
}

/** A `late_result` event: an abandoned executor returned after its instance moved on. */
export type LateResultEvent = AuditEntry;

/** Every event a controller emits, with its payload. */
export interface ControllerEvents {
  /** An instance changed state. */
  transition: (e: TransitionEventPayload) => void;
  /** A control command completed (or was held or scheduled). */
  command: (e: CommandEvent) => void;
  /** A backfill's status changed. */
  backfill: (e: BackfillStatus) => void;
  /** An executor reported progress. */
  progress: (e: ProgressEvent) => void;
  /** An abandoned executor returned after its instance moved on. */
  late_result: (e: LateResultEvent) => void;
  /** After every control command call: its outcome and how long it took (metrics, tracing). */
  command_done: (e: CommandDone) => void;
  /** A background step (dispatch, a timer, housekeeping) failed; the controller carries on. */
  error: (e: { error: unknown; where: string }) => void;
}

const DEFAULT_WAIT_STATES: InstanceState[] = ['paused', 'stopped', 'succeeded', 'failed', 'skipped'];
const ACTIONS: Record<ControlAction, { schema: typeof pauseOptionsSchema | typeof resumeOptionsSchema | typeof stopOptionsSchema | typeof rerunOptionsSchema }> = {
  pause: { schema: pauseOptionsSchema },
  resume: { schema: resumeOptionsSchema },
  stop: { schema: stopOptionsSchema },
  rerun: { schema: rerunOptionsSchema },
};

/** Turn an ISO string or Date into the canonical logical-date string (ISO, milliseconds, its own offset). */
export function normalizeLogicalDate(value: string | Date): string {
  if (value instanceof Date) return DateTime.fromJSDate(value, { zone: 'utc' }).toISO()!;
  // without an offset the string means UTC (as a Date does), never the host's zone, so that
  // '2024-01-20', '2024-01-20T00:00:00Z' and new Date('2024-01-20') name one logical date
  const dt = DateTime.fromISO(value, { setZone: true, zone: 'utc' });
  if (!dt.isValid) {
    throw new TaskControlError('VALIDATION', `logicalDate: '${value}' is not an ISO 8601 date`, {
      issues: [{ path: ['logicalDate'], message: 'must be an ISO 8601 date' }],
    });
  }
  return dt.toISO()!;
}

/**
 * Controls the instances of your tasks: submit them, pause, resume, stop and rerun them,
 * and run them through an executor. Every change goes through the {@link TRANSITIONS} table,
 * is committed with its audit entry, and then emitted as an event.
 */
export class TaskController {
  private readonly emitter = new EventEmitter<ControllerEvents>();
  private readonly core: Core;
  private readonly runtime: Runtime;
  private readonly authorizeHook?: (req: AuthRequest) => boolean | Promise<boolean>;
  private readonly environment?: string;
  /** Held scopes as this controller knows them: loaded once, then kept current by store notices. */
  private scopes = new Map<string, HeldScope>();
  /** The holdWhile policies in force: paused by shutdown(), resumed by start(). */
  private readonly policies = new Set<{ pause(): void; resume(): void }>();
  /** New instances waiting for the next group commit. */
  private createBatch: CreateBatch | undefined;
  /** True once `scopes` was loaded from the store; notices keep it current from then on. */
  private scopesCurrent = false;
  /** Counts scope notices, so that a load overtaken by one is done again. */
  private scopeGeneration = 0;
  private held: { tasks: string[]; groups: string[]; all: boolean; backfills: string[] } | undefined;
  private heldBackfills = new Set<string>();
  private readonly unsubscribe: () => void;
  private started = false;
  private downstreamCache?: Map<string, string[]>;
  private dependentsCache?: Map<string, string[]>;
  private readonly backfillRuns = new Map<string, BackfillRun>();
  private readonly metricsRecorder = new MetricsRecorder();
  private readonly approvalRules: Rule[];
  private readonly approvalTtlMs: number;
  private readonly failureStreaks = new Map<string, number>();
  private readonly scheduleTimers = new Map<string, unknown>();

  constructor(options: TaskControllerOptions = {}) {
    const o = parse(controllerOptionsSchema, options, 'options') as TaskControllerOptions;
    const timers = o.timers ?? realTimers(o.clock);
    const now = o.clock ?? (() => new Date(timers.now()));
    const machine = new StateMachine();
    for (const guard of o.guards ?? []) machine.addGuard(guard);
    const leaseMs = o.leaseMs ?? 30_000;
    const newId = idFactory(() => timers.now());
    this.core = {
      id: o.controllerId ?? `ctl-${newId().slice(-10).toLowerCase()}`,
      store: o.store ?? new MemoryStateStore(),
      machine,
      tasks: new Map(),
      timers,
      leaseMs,
      newId,
      now,
      nowMs: o.clock ? () => now().getTime() : () => timers.now(),
      iso: isoCache(),
    };
    this.authorizeHook = o.authorize;
    this.approvalRules = (o.approvals?.rules ?? []).map((rule, i) => parse(approvalRuleSchema, rule, `options.approvals.rules.${i}`) as Rule);
    this.approvalTtlMs = o.approvals?.ttlMs ?? 24 * 3_600_000;
    this.environment = o.environment;
    this.runtime = new Runtime(
      this.core,
      o.executor,
      o.concurrency ?? 10,
      {
        released: (instance) => {
          if (this.failureStreaks.size > 0) this.failureStreaks.delete(instance.taskId);
          return this.releaseDownstream(instance);
        },
        failedForGood: async (instance) => {
          await this.failDownstream(instance);
          if (instance.state === 'failed') await this.countFailure(instance);
        },
        sweep: async () => {
          await this.governanceSweep();
          await this.backfillSweep();
        },
        progress: (instance, done, total) =>
          this.emitter.emit('progress', { instanceId: instance.id, taskId: instance.taskId, done, total }),
        error: (error, where) => this.emitter.emit('error', { error, where }),
        heldTasks: () => this.heldForDispatch(),
      },
      o.pollMs ?? Math.min(1000, Math.max(10, Math.floor(leaseMs / 3))),
    );
    this.unsubscribe = this.core.store.subscribe((notice) => this.onNotice(notice));
  }

  /**
   * Ask this controller's `authorize` hook a question without acting or auditing (for
   * read-side checks such as which events an actor may see). The controller's environment is
   * filled in; a throwing hook answers false. Undefined when the controller has no hook.
   */
  get authorizer(): ((req: Omit<AuthRequest, 'environment'>) => Promise<boolean>) | undefined {
    const hook = this.authorizeHook;
    if (!hook) return undefined;
    const environment = this.environment;
    return async (req) => {
      try {
        return (await hook(environment === undefined ? req : { ...req, environment })) === true;
      } catch {
        return false;
      }
    };
  }

  /** This controller's id: the owner named in the leases it holds. */
  get id(): string {
    return this.core.id;
  }

  /** The store this controller uses. */
  get store(): StateStore {
    return this.core.store;
  }

  /** The state machine (the table plus guards), to add host guards. */
  get machine(): StateMachine {
    return this.core.machine;
  }

  /** Listen to `transition`, `command`, `backfill`, `progress`, `late_result` or `error` events. */
  on<E extends keyof ControllerEvents>(event: E, listener: ControllerEvents[E]): this {
    this.emitter.on(event, listener as never);
    return this;
  }

  /** Like {@link TaskController.on}, for one event only. */
  once<E extends keyof ControllerEvents>(event: E, listener: ControllerEvents[E]): this {
    this.emitter.once(event, listener as never);
    return this;
  }

  /** Remove a listener added with {@link TaskController.on}. */
  off<E extends keyof ControllerEvents>(event: E, listener: ControllerEvents[E]): this {
    this.emitter.off(event, listener as never);
    return this;
  }

  /** Add a host guard, e.g. "no rerun during business hours". Returns a function that removes it. */
  addGuard(guard: HostGuard): () => void {
    return this.core.machine.addGuard(guard);
  }

  /** Declare a task (or replace its declaration). */
  define(task: TaskDefinition): void {
    const def = parse(taskDefinitionSchema, task, 'task') as TaskDefinition;
    if (def.dependsOn?.includes(def.id)) {
      throw new TaskControlError('VALIDATION', `task.dependsOn: task ${def.id} cannot depend on itself`, {
        issues: [{ path: ['task', 'dependsOn'], message: 'a task cannot depend on itself' }],
      });
    }
    this.core.tasks.set(def.id, def);
    this.downstreamCache = undefined;
    this.dependentsCache = undefined;
  }

  /** The declared task, if any. */
  task(taskId: string): TaskDefinition | undefined {
    return this.core.tasks.get(taskId);
  }

  /** Begin dispatching queued instances; first recovers what dead controllers left running. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.refreshScopes();
    await this.runtime.start();
    for (const policy of this.policies) policy.resume();
    await this.releasePending();
    if (this.runtime.hasExecutor) await this.resumeBackfills();
  }

  /** Stop dispatching, wait up to `graceMs` (default 10 000) for running work, then abort it and release the leases. */
  async shutdown(options: { graceMs?: number } = {}): Promise<void> {
    const o = parse(shutdownOptionsSchema, options, 'options');
    // stop driving backfills first: their records stay in the store, free for the next controller
    for (const run of [...this.backfillRuns.values()]) {
      run.detach();
      await run.releaseLease(this.core.id).catch((error) => this.emitter.emit('error', { error, where: 'backfill' }));
    }
    // holdWhile policies stop checking (and commanding) until the controller starts again
    for (const policy of this.policies) policy.pause();
    await this.runtime.shutdown(o.graceMs ?? 10_000);
    this.started = false;
  }

  /** Stop listening to the store. Call after `shutdown()` when the controller is thrown away. */
  async close(): Promise<void> {
    if (this.started) await this.shutdown();
    this.unsubscribe();
  }

  // -- submit and queries ------------------------------------------------------------------

  /**
   * Create an instance of a task. A logical date that already has an instance returns it
   * unchanged. The instance is `pending` while upstream instances of the same logical date
   * have not succeeded, `paused` inside a held scope, `queued` otherwise.
   */
  submit(taskId: string, options: SubmitOptions = {}): Promise<Instance> {
    // not an async function: the common case (no logical date, no authorize hook) hands back
    // createInstance's own promise instead of a second one around it
    let task: TaskDefinition;
    let o: SubmitOptions;
    try {
      if (typeof taskId !== 'string' || taskId.length === 0) parse(targetSchema, { taskId }, 'taskId');
      o = isEmptyObject(options) ? options : parse(submitOptionsSchema, options, 'options');
      const found = this.core.tasks.get(taskId);
      if (!found) throw new TaskControlError('NOT_FOUND', `task ${taskId} is not defined; call define() first`, { details: { taskId } });
      task = found;
    } catch (err) {
      return Promise.reject(err);
    }
    if (o.logicalDate !== undefined) return this.submitChecked(task, o);
    const create = o as CreateOptions;
    const asking = this.authorizeSubmit(task, o);
    return asking === undefined ? this.createInstance(task, create) : asking.then(() => this.createInstance(task, create));
  }

  /** Ask `authorize` about a submit (undefined: allowed at once, or no hook). */
  private authorizeSubmit(task: TaskDefinition, o: SubmitOptions): Promise<void> | undefined {
    if (!this.authorizeHook) return undefined; // before building the request: the hot path
    const taskId = task.id;
    return this.authorizeOrThrow('submit', o.actor, { taskId }, { ...o }, [taskId], task.group ? [task.group] : [], taskId, [], [{ taskId, group: task.group }]);
  }

  /** The rest of submit: an existing instance for the logical date, then `authorize`. */
  private async submitChecked(task: TaskDefinition, o: SubmitOptions): Promise<Instance> {
    const taskId = task.id;
    const logicalDate = o.logicalDate === undefined ? undefined : normalizeLogicalDate(o.logicalDate);
    if (logicalDate !== undefined) {
      const existing = await this.core.store.findInstance(taskId, logicalDate);
      if (existing) return existing;
    }
    await this.authorizeSubmit(task, o);
    return this.createInstance(task, { params: o.params, logicalDate, actor: o.actor });
  }

  /** Create an instance (no validation, no authorization): shared by submit and backfill. */
  createInstance(
    task: TaskDefinition,
    o: { params?: Record<string, unknown>; logicalDate?: string; actor?: string; backfillId?: string },
  ): Promise<Instance> {
    // the common case decides synchronously; held scopes the cache cannot answer for, and
    // upstream dependencies, need the store first
    const held = this.heldFromCache(task);
    if (held === undefined || (task.dependsOn?.length && o.logicalDate !== undefined)) return this.createChecked(task, o);
    return this.insert(task, o, held ? 'submit_held' : 'submit');
  }

  private async createChecked(task: TaskDefinition, o: CreateOptions): Promise<Instance> {
    const event: MachineEvent = (this.heldFromCache(task) ?? (await this.heldFromStore(task)))
      ? 'submit_held'
      : task.dependsOn?.length && o.logicalDate !== undefined && !(await this.upstreamDone({ taskId: task.id, logicalDate: o.logicalDate }))
        ? 'submit_pending'
        : 'submit';
    return this.insert(task, o, event);
  }

  /** Build the new instance and queue it for the next group commit. */
  private insert(task: TaskDefinition, o: CreateOptions, event: MachineEvent): Promise<Instance> {
    const ms = this.core.nowMs();
    const verdict =
      this.core.machine.allowed('none', event) ?? this.core.machine.apply(event, { instance: undefined, task, actor: o.actor, now: new Date(ms), options: o });
    if (!verdict.ok) return Promise.reject(new TaskControlError(verdict.code as 'GUARD_REJECTED', verdict.message, { details: { guard: verdict.guard } }));
    const at = this.core.iso(ms);
    const next: Instance = {
      id: this.core.newId(ms),
      taskId: task.id,
      params: { ...task.defaultParams, ...o.params },
      state: verdict.to,
      attempt: 1,
      version: 1,
      createdAt: at,
      updatedAt: at,
    };
    if (task.group !== undefined) next.group = task.group;
    if (o.logicalDate !== undefined) next.logicalDate = o.logicalDate;
    if (o.backfillId !== undefined) next.backfillId = o.backfillId;
    const { write, entry } = buildTransition(this.core, undefined, next, event, o.actor === undefined ? ANONYMOUS : { actor: o.actor }, ms);
    const batch = this.enqueueCreate(write, entry);
    return this.inserted(batch, batch.writes.length - 1, next, o);
  }

  /** Wait for the group commit of one new instance (a small frame: one per submit). */
  private async inserted(batch: CreateBatch, index: number, next: Instance, o: CreateOptions): Promise<Instance> {
    const errors = await batch.done;
    if (errors?.[index] !== undefined) return this.insertFailed(errors[index], next, o);
    return next.state === 'pending' ? this.settlePending(next) : next;
  }

  /** A repeated logical date that lost the race returns the instance that won it. */
  private async insertFailed(err: unknown, next: Instance, o: CreateOptions): Promise<Instance> {
    if (isTaskControlError(err, 'CONFLICT') && o.logicalDate !== undefined) {
      const existing = await this.core.store.findInstance(next.taskId, o.logicalDate);
      if (existing) return existing;
    }
    throw err;
  }

  /** A new pending instance whose upstream settled while it was being created. */
  private async settlePending(next: Instance): Promise<Instance> {
    if (await this.upstreamDone(next)) {
      // the upstream finished between our check and our commit, so its release missed us
      return (
        (await this.runtime.transitionIf(next.id, ['pending'], 'ready', 'system:dependencies', () => ({}))) ??
        (await this.core.store.getInstance(next.id)) ??
        next
      );
    }
    const blocked = await this.failedUpstream(next);
    if (blocked) {
      // the upstream already failed for good (or was stopped): this instance would wait forever
      return (
        (await this.runtime.transitionIf(next.id, ['pending'], 'upstream_failed', 'system:dependencies', () => ({
          endedAt: this.core.now().toISOString(),
          error: { code: 'UPSTREAM_FAILED', message: `upstream ${blocked.taskId} ${blocked.state}` },
        }), undefined, { reason: `upstream ${blocked.taskId} ${blocked.state}` })) ??
        (await this.core.store.getInstance(next.id)) ??
        next
      );
    }
    return next;
  }

  /**
   * Commit a new instance together with the others created in the same turn of the event
   * loop: a burst of submits is one commit (and one store notice) instead of hundreds. If
   * the batch loses a race (a logical date taken meanwhile), each is committed on its own,
   * so that only the one in conflict fails.
   */
  private enqueueCreate(write: VersionedWrite<Instance>, entry: AuditEntry): CreateBatch {
    let batch = this.createBatch;
    if (batch === undefined) {
      let settle!: (errors: unknown[] | undefined) => void;
      const done = new Promise<unknown[] | undefined>((resolve) => (settle = resolve));
      const created: CreateBatch = { writes: [], audit: [], done, settle };
      batch = this.createBatch = created;
      queueMicrotask(() => {
        this.createBatch = undefined;
        void this.flushCreates(created);
      });
    }
    batch.writes.push(write);
    batch.audit.push(entry);
    return batch;
  }

  private async flushCreates(batch: CreateBatch): Promise<void> {
    // the store is asked once for the whole batch; only a conflict splits it up
    try {
      await this.core.store.commit({ instances: batch.writes, audit: batch.audit });
      batch.settle(undefined);
      return;
    } catch (err) {
      if (batch.writes.length === 1 || !isTaskControlError(err, 'CONFLICT')) {
        batch.settle(batch.writes.map(() => err));
        return;
      }
    }
    const errors: unknown[] = [];
    for (let i = 0; i < batch.writes.length; i++) {
      try {
        await this.core.store.commit({ instances: [batch.writes[i]], audit: [batch.audit[i]] });
      } catch (err) {
        errors[i] = err;
      }
    }
    batch.settle(errors);
  }

  /** The instance with this id, if it exists. */
  async get(instanceId: string): Promise<Instance | undefined> {
    parse(targetSchema, { instanceId }, 'instanceId');
    return this.core.store.getInstance(instanceId);
  }

  /** Instances matching the filter, oldest first, one page at a time. */
  async list(filter: ListFilter = {}): Promise<Page<Instance>> {
    const f = parse(listFilterSchema, filter, 'filter');
    return this.core.store.listInstances(f as InstanceQuery);
  }

  /** Resolve when the instance reaches one of `states` (default: terminal or paused). */
  async waitFor(instanceId: string, options: WaitForOptions = {}): Promise<Instance> {
    parse(targetSchema, { instanceId }, 'instanceId');
    const o = parse(waitForOptionsSchema, options, 'options');
    const states = new Set((o.states as InstanceState[] | undefined) ?? DEFAULT_WAIT_STATES);
    return new Promise<Instance>((resolve, reject) => {
      let timer: unknown;
      let done = false;
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        unsubscribe();
        if (timer !== undefined) this.core.timers.clearTimeout(timer);
        fn();
      };
      const unsubscribe = this.core.store.subscribe((notice) => {
        for (const instance of notice.instances) {
          if (instance.id === instanceId && states.has(instance.state)) finish(() => resolve(instance));
        }
      });
      if (o.timeoutMs !== undefined) {
        timer = this.core.timers.setTimeout(
          () =>
            finish(() =>
              reject(new TaskControlError('TIMEOUT', `instance ${instanceId} did not reach ${[...states].join('/')} within ${o.timeoutMs} ms`)),
            ),
          o.timeoutMs,
        );
      }
      this.core.store.getInstance(instanceId).then(
        (instance) => {
          if (!instance) finish(() => reject(new TaskControlError('NOT_FOUND', `instance ${instanceId} does not exist`)));
          else if (states.has(instance.state)) finish(() => resolve(instance));
        },
        (err) => finish(() => reject(err)),
      );
    });
  }

  /** The audit trail, oldest first. */
  async audit(filter: AuditFilter = {}): Promise<AuditEntry[]> {
    const f = parse(auditFilterSchema, filter, 'filter');
    return this.core.store.queryAudit({
      ...f,
      since: f.since === undefined ? undefined : new Date(f.since).toISOString(),
      until: f.until === undefined ? undefined : new Date(f.until).toISOString(),
    });
  }

  /** Held task, group and `all` scopes. */
  async heldScopes(): Promise<HeldScope[]> {
    return this.core.store.listScopes();
  }

  // -- control commands --------------------------------------------------------------------

  /**
   * Pause: `pending`/`queued` -> `paused` at once; `running` -> `pausing` -> `paused` at the
   * executor's next pause point (graceful) or at once with its work aborted (`mode: 'force'`).
   * A task, group or `all` target also holds that scope until it is resumed.
   */
  pause(target: Target, options: PauseOptions = {}): Promise<ControlResult> {
    return this.command('pause', target, options);
  }

  /**
   * Resume: `paused` -> `queued` (or `pending` while upstream work is not done). `continue`
   * hands the checkpoint back, `restart` drops it, `skip` ends the instance `skipped`.
   * Resuming a task, group or `all` target releases the held scope.
   */
  resume(target: Target, options: ResumeOptions = {}): Promise<ControlResult> {
    return this.command('resume', target, options);
  }

  /**
   * Stop: waiting instances -> `stopped` at once; running ones -> `stopping`, their signal
   * fires, and after `graceMs` (default 10 000) they are `stopped` regardless.
   */
  stop(target: Target, options: StopOptions = {}): Promise<ControlResult> {
    return this.command('stop', target, options);
  }

  /** Rerun: a terminal instance -> `queued` with `attempt + 1`, params merged; `downstream` reruns dependants too. */
  rerun(target: Target, options: RerunOptions = {}): Promise<ControlResult> {
    return this.command('rerun', target, options);
  }

  private async command(
    action: ControlAction,
    targetIn: Target,
    optionsIn: object,
    internal: CommandInternals = {},
  ): Promise<ControlResult> {
    const t0 = performance.now();
    this.metricsRecorder.inFlight++;
    const actor = (optionsIn as { actor?: unknown } | undefined)?.actor;
    const done = (outcome: CommandDone['outcome'], result?: ControlResult, error?: unknown) => {
      this.metricsRecorder.inFlight--;
      const event: CommandDone = {
        action,
        durationMs: performance.now() - t0,
        outcome,
        applied: result?.applied.length ?? 0,
        rejected: result?.rejected.length ?? 0,
      };
      if (internal.record) event.deferred = true;
      if (typeof actor === 'string') event.actor = actor;
      if (result) event.commandId = result.commandId;
      if (error instanceof Error) event.error = { code: (error as { code?: string }).code ?? 'ERROR', message: error.message };
      this.metricsRecorder.record(event);
      if (this.emitter.listenerCount('command_done') > 0) this.emitter.emit('command_done', event);
    };
    try {
      const result = await this.commandCore(action, targetIn, optionsIn, internal);
      done((optionsIn as { dryRun?: boolean } | undefined)?.dryRun ? 'dry_run' : result.status, result);
      return result;
    } catch (err) {
      done(isTaskControlError(err, 'FORBIDDEN') ? 'denied' : isTaskControlError(err, 'VALIDATION') ? 'invalid' : 'error', undefined, err);
      throw err;
    }
  }

  private async commandCore(
    action: ControlAction,
    targetIn: Target,
    optionsIn: object,
    internal: CommandInternals,
  ): Promise<ControlResult> {
    const target = parse(targetSchema, targetIn, 'target') as Target;
    const options = parse(ACTIONS[action].schema, optionsIn ?? {}, 'options') as Record<string, unknown> & {
      actor?: string;
      reason?: string;
      idempotencyKey?: string;
      dryRun?: boolean;
      at?: string | Date;
      after?: { instanceIds: string[] };
    };
    if (options.at !== undefined && !internal.fromSchedule) {
      const at = new Date(options.at);
      if (at.getTime() <= this.core.now().getTime()) {
        throw new TaskControlError('VALIDATION', `options.at: ${at.toISOString()} is in the past`, {
          issues: [{ path: ['options', 'at'], message: 'must be in the future' }],
        });
      }
    }
    const key = options.idempotencyKey;
    if (key !== undefined && !options.dryRun) {
      const previous = await this.core.store.findCommandByKey(key);
      if (previous) return sameCommandOrThrow(previous, action, target);
    }
    let instances = await this.resolveTarget(action, target);
    const { tasks, groups, backfills, subjects } = this.namedBy(target, instances);
    const commandOptions = { ...options };
    delete commandOptions.actor;
    if (!internal.skipAuthorize) {
      await this.authorizeOrThrow(action, options.actor, target, commandOptions, tasks, groups, 'taskId' in target ? target.taskId : undefined, backfills, subjects);
    }
    if (!options.dryRun && !internal.record) {
      // approval first: a scheduled resume that matches a rule is scheduled once approved
      if (this.needsApproval({ action, actor: options.actor, target, options: commandOptions, tasks, groups, subjects })) {
        return this.deferCommand('awaiting_approval', action, target, options, commandOptions);
      }
      if (action === 'resume' && (options.at !== undefined || options.after !== undefined)) {
        return this.deferCommand('scheduled', action, target, options, commandOptions);
      }
    }

    const commandId = internal.record?.next.id ?? this.core.newId();
    for (let tries = 0; ; tries++) {
      const { result, batch } = await this.plan(action, target, options, commandOptions, instances, commandId, tasks, backfills, internal.patch);
      if (options.dryRun) return result;
      if (internal.record) {
        // applying a deferred command: its record moves in the same commit, so it applies once
        const record = { ...internal.record.next, result, updatedAt: this.core.now().toISOString() };
        batch.commands = [...(batch.commands ?? []), { next: record, expectedVersion: internal.record.expectedVersion }];
      }
      try {
        await this.core.store.commit(batch);
      } catch (err) {
        if (!isTaskControlError(err, 'CONFLICT') || tries >= 30) throw err;
        if (internal.record) {
          const latest = await this.core.store.getCommand(internal.record.next.id);
          if (latest?.version !== internal.record.expectedVersion) {
            throw new TaskControlError('CONFLICT', `command ${internal.record.next.id} was already ${latest?.status ?? 'removed'}`, {
              details: { commandId: internal.record.next.id },
            });
          }
        }
        if (key !== undefined) {
          const previous = await this.core.store.findCommandByKey(key);
          if (previous) return sameCommandOrThrow(previous, action, target);
        }
        instances = await this.resolveTarget(action, target);
        continue;
      }
      {
        // settled instances: a skip releases downstream work, a stop ends it
        for (const change of result.applied) {
          if (!change.changed || (change.to !== 'skipped' && change.to !== 'stopped')) continue;
          const instance = await this.core.store.getInstance(change.instanceId);
          if (instance?.state === 'skipped') await this.releaseDownstream(instance);
          else if (instance?.state === 'stopped') await this.failDownstream(instance);
        }
      }
      return result;
    }
  }

  private async plan(
    action: ControlAction,
    target: Target,
    options: Record<string, unknown> & { actor?: string; reason?: string; idempotencyKey?: string },
    commandOptions: Record<string, unknown>,
    instances: Instance[],
    commandId: string,
    tasks: string[],
    backfills: string[],
    extraPatch?: Partial<Instance>,
  ): Promise<{ result: ControlResult; batch: CommitBatch }> {
    const scopes = new Map((await this.core.store.listScopes()).map((s) => [s.id, s]));
    const now = this.core.now();
    const at = now.toISOString();
    const actor = options.actor ?? 'anonymous';
    const scopeId = 'taskId' in target ? `task:${target.taskId}` : 'group' in target ? `group:${target.group}` : 'all' in target ? 'all' : undefined;
    const batch: CommitBatch = { instances: [], audit: [] };
    if (scopeId !== undefined && action === 'pause' && !scopes.has(scopeId)) {
      const scope: HeldScope = {
        id: scopeId,
        kind: scopeId === 'all' ? 'all' : (scopeId.split(':')[0] as 'task' | 'group'),
        key: scopeId === 'all' ? '' : scopeId.slice(scopeId.indexOf(':') + 1),
        actor,
        commandId,
        at,
      };
      if (options.reason !== undefined) scope.reason = options.reason;
      batch.holdScopes = [scope];
      scopes.set(scopeId, scope);
    }
    if (scopeId !== undefined && action === 'resume' && scopes.has(scopeId)) {
      batch.releaseScopes = [scopeId];
      scopes.delete(scopeId);
    }

    // a rerun with downstream also takes, per logical date, the instances of dependent tasks
    let ordered = instances;
    const rerunKeys = new Set<string>();
    if (action === 'rerun') {
      const eligible = instances.filter((i) => planInstance(action, i, this.planContext(scopes, now, options, () => true, isExplicit(target))).kind === 'change');
      for (const i of eligible) if (i.logicalDate !== undefined) rerunKeys.add(`${i.taskId}\u0000${i.logicalDate}`);
      if (options.downstream) {
        const extra: Instance[] = [];
        const seen = new Set(instances.map((i) => i.id));
        for (const i of eligible) {
          if (i.logicalDate === undefined) continue;
          for (const taskId of this.downstreamOf(i.taskId)) {
            const d = await this.core.store.findInstance(taskId, i.logicalDate);
            if (d && !seen.has(d.id) && isTerminal(d.state)) {
              seen.add(d.id);
              extra.push(d);
              rerunKeys.add(`${d.taskId}\u0000${d.logicalDate}`);
            }
          }
        }
        const depth = this.taskDepths();
        ordered = [...instances, ...extra].sort((a, b) => (depth.get(a.taskId) ?? 0) - (depth.get(b.taskId) ?? 0));
      }
    }
    const upstreamCache = new Map<string, boolean>();
    for (const i of ordered) {
      if (i.logicalDate === undefined || (action !== 'resume' && action !== 'rerun')) continue;
      upstreamCache.set(i.id, await this.upstreamDone(i, rerunKeys));
    }
    const ctx = this.planContext(scopes, now, options, (i) => upstreamCache.get(i.id) ?? true, isExplicit(target));
    const result: ControlResult = { commandId, action, status: 'completed', applied: [], rejected: [] };
    const transitions: AuditEntry[] = [];
    for (const instance of ordered) {
      const p: InstancePlan = planInstance(action, instance, { ...ctx, explicit: ctx.explicit || !instances.includes(instance) });
      if (p.kind === 'skip') continue;
      if (p.kind === 'reject') {
        result.rejected.push({ instanceId: instance.id, code: p.code, message: p.message });
      } else if (p.kind === 'same') {
        result.applied.push({ instanceId: instance.id, from: instance.state, to: instance.state, changed: false });
      } else {
        const next = advance(instance, p.to, extraPatch ? { ...p.patch, ...extraPatch } : p.patch, at);
        const { write, entry } = buildTransition(this.core, instance, next, p.event, {
          actor,
          commandId,
          action,
          reason: options.reason,
        });
        batch.instances!.push(write);
        transitions.push(entry);
        result.applied.push({ instanceId: instance.id, from: instance.state, to: p.to, changed: true });
      }
    }
    const touched = [...result.applied.map((a) => a.instanceId), ...result.rejected.map((r) => r.instanceId)];
    const touchedTasks = new Set(tasks);
    const touchedBackfills = new Set(backfills);
    for (const i of ordered) {
      if (!touched.includes(i.id)) continue;
      touchedTasks.add(i.taskId);
      if (i.backfillId !== undefined) touchedBackfills.add(i.backfillId);
    }
    const commandEntry: AuditEntry = {
      id: this.core.newId(),
      at,
      actor,
      kind: 'command',
      action,
      commandId,
      target,
      instanceIds: touched,
      taskIds: [...touchedTasks],
      result,
    };
    if (touchedBackfills.size > 0) commandEntry.backfillIds = [...touchedBackfills];
    if ('taskId' in target) commandEntry.taskId = target.taskId;
    if ('backfillId' in target) commandEntry.backfillId = target.backfillId;
    if (options.reason !== undefined) commandEntry.reason = options.reason;
    // the command entry gets the smaller id, so it sorts before the transitions it caused
    const [first, ...rest] = [commandEntry.id, ...transitions.map((t) => t.id)].sort();
    commandEntry.id = first;
    transitions.forEach((t, i) => (t.id = rest[i]));
    batch.audit = [commandEntry, ...transitions];
    if (options.idempotencyKey !== undefined) {
      const record: CommandRecord = {
        id: commandId,
        idempotencyKey: options.idempotencyKey,
        action,
        actor: options.actor,
        target,
        options: commandOptions,
        status: 'completed',
        result,
        createdAt: at,
        updatedAt: at,
        version: 1,
      };
      batch.commands = [{ next: record, expectedVersion: 0 }];
    }
    return { result, batch };
  }

  private planContext(
    scopes: Map<string, HeldScope>,
    now: Date,
    options: Record<string, unknown> & { actor?: string },
    upstreamDone: (i: Instance) => boolean,
    explicit: boolean,
  ): PlanContext {
    return {
      machine: this.core.machine,
      tasks: this.core.tasks,
      scopes,
      now,
      actor: options.actor,
      options,
      upstreamDone,
      explicit,
      checkpointOf: (id) => this.runtime.localCheckpoint(id),
    };
  }

  private async resolveTarget(action: ControlAction, target: Target): Promise<Instance[]> {
    if ('instanceId' in target || 'instanceIds' in target) {
      const ids = 'instanceId' in target ? [target.instanceId] : [...new Set(target.instanceIds)];
      const out: Instance[] = [];
      for (const id of ids) {
        const instance = await this.core.store.getInstance(id);
        if (!instance) throw new TaskControlError('NOT_FOUND', `instance ${id} does not exist`, { details: { instanceId: id } });
        out.push(instance);
      }
      return out;
    }
    const query: InstanceQuery = { state: [...SCOPE_STATES[action]], limit: 1000 };
    if ('taskId' in target) query.taskId = target.taskId;
    if ('group' in target) query.group = target.group;
    if ('backfillId' in target) query.backfillId = target.backfillId;
    const out: Instance[] = [];
    for (let cursor: string | undefined; ; ) {
      const page = await this.core.store.listInstances({ ...query, cursor });
      out.push(...page.items);
      if (!page.cursor) return out;
      cursor = page.cursor;
    }
  }

  private namedBy(
    target: Target,
    instances: Instance[],
  ): { tasks: string[]; groups: string[]; backfills: string[]; subjects: NonNullable<AuthRequest['subjects']> } {
    const tasks = new Set<string>();
    const groups = new Set<string>();
    const backfills = new Set<string>();
    const subjects = new Map<string, { taskId?: string; group?: string }>();
    if ('taskId' in target) {
      tasks.add(target.taskId);
      const group = this.core.tasks.get(target.taskId)?.group;
      if (group !== undefined) groups.add(group);
      subjects.set(`t:${target.taskId}`, { taskId: target.taskId, group });
    }
    if ('group' in target) {
      groups.add(target.group);
      subjects.set(`g:${target.group}`, { group: target.group });
    }
    if ('backfillId' in target) backfills.add(target.backfillId);
    for (const i of instances) {
      tasks.add(i.taskId);
      if (i.group !== undefined) groups.add(i.group);
      if (i.backfillId !== undefined) backfills.add(i.backfillId);
      if (!('group' in target)) subjects.set(`t:${i.taskId}`, { taskId: i.taskId, group: i.group });
    }
    return { tasks: [...tasks], groups: [...groups], backfills: [...backfills], subjects: [...subjects.values()] };
  }

  /**
   * Ask `authorize`; on a denial, audit it and throw `FORBIDDEN`. Undefined (synchronously)
   * when there is no hook or the hook allowed at once, so that a busy submit path pays no
   * promise for an answer it already has.
   */
  authorizeOrThrow(
    action: AuthRequest['action'],
    actor: string | undefined,
    target: Target | undefined,
    options: object,
    tasks: string[],
    groups: string[],
    taskId?: string,
    backfills: string[] = [],
    subjects?: AuthRequest['subjects'],
  ): Promise<void> | undefined {
    if (!this.authorizeHook) return undefined;
    const request: AuthRequest = { action, actor, target, options, tasks, groups };
    if (subjects !== undefined) request.subjects = subjects;
    if (taskId !== undefined) request.taskId = taskId;
    if (this.environment !== undefined) request.environment = this.environment;
    let answer: boolean | Promise<boolean>;
    try {
      answer = this.authorizeHook(request);
    } catch (err) {
      answer = Promise.reject(err);
    }
    if (answer === true) return undefined;
    return this.settleAuthorization(answer, action, actor, target, tasks, taskId, backfills);
  }

  private async settleAuthorization(
    answer: boolean | Promise<boolean>,
    action: AuthRequest['action'],
    actor: string | undefined,
    target: Target | undefined,
    tasks: string[],
    taskId: string | undefined,
    backfills: string[],
  ): Promise<void> {
    let why = 'authorize returned false';
    try {
      if ((await answer) === true) return;
    } catch (err) {
      why = err instanceof Error ? err.message : String(err);
    }
    // a denial is audited, then thrown
    const at = this.core.now().toISOString();
    const entry: AuditEntry = {
      id: this.core.newId(),
      at,
      actor: actor ?? 'anonymous',
      kind: 'command',
      action,
      commandId: this.core.newId(),
      reason: why,
      result: { denied: true, code: 'FORBIDDEN', message: why },
      taskIds: tasks,
    };
    if (target !== undefined) entry.target = target;
    if (taskId !== undefined) entry.taskId = taskId;
    if (backfills.length > 0) entry.backfillIds = backfills;
    await this.core.store.commit({ audit: [entry] });
    throw new TaskControlError('FORBIDDEN', `${actor ?? 'an anonymous caller'} may not ${action}: ${why}`, {
      details: { action, actor },
    });
  }

  // -- governance: approvals, scheduled commands, policies, metrics ---------------------------

  private needsApproval(req: Omit<AuthRequest, 'action'> & { action: ControlAction }): boolean {
    if (this.approvalRules.length === 0) return false;
    const request: AuthRequest = { ...req };
    if (this.environment !== undefined) request.environment = this.environment;
    // a rule matches when the command would touch anything it names: a group target is also
    // matched through the tasks of that group (its instances' and the declared ones)
    const subjects = [...(req.subjects ?? []), ...req.tasks.map((taskId) => ({ taskId, group: this.core.tasks.get(taskId)?.group }))];
    if ('group' in req.target!) {
      for (const task of this.core.tasks.values()) if (task.group === req.target.group) subjects.push({ taskId: task.id, group: task.group });
    }
    request.subjects = subjects;
    return this.approvalRules.some((rule) => approvalRuleMatches(rule, request));
  }

  /** Record a command that applies later: after approval, or at its scheduled time. */
  private async deferCommand(
    status: 'awaiting_approval' | 'scheduled',
    action: ControlAction,
    target: Target,
    options: Record<string, unknown> & { actor?: string; reason?: string; idempotencyKey?: string; at?: string | Date },
    commandOptions: Record<string, unknown>,
  ): Promise<ControlResult> {
    // `after` names instances that must exist: a missing one would keep the command waiting forever
    for (const id of (options.after as { instanceIds: string[] } | undefined)?.instanceIds ?? []) {
      if (!(await this.core.store.getInstance(id))) throw new TaskControlError('NOT_FOUND', `options.after: instance ${id} does not exist`, { details: { instanceId: id } });
    }
    const now = this.core.now();
    const at = now.toISOString();
    const commandId = this.core.newId();
    const result: ControlResult = { commandId, action, status, applied: [], rejected: [] };
    const stored = { ...commandOptions };
    if (stored.at !== undefined) stored.at = new Date(stored.at as string | Date).toISOString();
    const record: CommandRecord = {
      id: commandId,
      action,
      target,
      options: stored,
      status,
      result,
      createdAt: at,
      updatedAt: at,
      version: 1,
    };
    if (options.actor !== undefined) record.actor = options.actor;
    if (options.idempotencyKey !== undefined) record.idempotencyKey = options.idempotencyKey;
    if (status === 'awaiting_approval') record.dueAt = new Date(now.getTime() + this.approvalTtlMs).toISOString();
    else if (options.at !== undefined) record.dueAt = new Date(options.at).toISOString();
    const entry: AuditEntry = {
      id: this.core.newId(),
      at,
      actor: options.actor ?? 'anonymous',
      kind: 'command',
      action,
      commandId,
      target,
      result,
      reason: status === 'scheduled' ? `scheduled: ${record.dueAt ? `at ${record.dueAt}` : `after ${JSON.stringify(options.after)}`}${options.reason ? ` — ${options.reason}` : ''}` : (options.reason ?? 'awaiting approval'),
    };
    if ('taskId' in target) entry.taskId = target.taskId;
    if ('backfillId' in target) entry.backfillId = target.backfillId;
    await this.core.store.commit({ commands: [{ next: record, expectedVersion: 0 }], audit: [entry] });
    if (status === 'scheduled' && record.dueAt) this.armSchedule(record);
    return result;
  }

  private armSchedule(record: CommandRecord): void {
    // only a started controller applies scheduled commands (an operator's tool leaves them to the
    // runners' sweeps), and not after it shut down; the timer must not keep the process alive
    if (!this.started || !record.dueAt || this.scheduleTimers.has(record.id)) return;
    const delay = Math.max(0, Date.parse(record.dueAt) - this.core.timers.now());
    const timer = this.core.timers.setTimeout(() => {
      this.scheduleTimers.delete(record.id);
      if (!this.started) return;
      void this.runScheduled(record.id).catch((error) => this.emitter.emit('error', { error, where: 'schedule' }));
    }, delay);
    unrefTimer(timer);
    this.scheduleTimers.set(record.id, timer);
  }

  /** Apply a scheduled command if it is due (its time came, or its instances succeeded). */
  private async runScheduled(commandId: string): Promise<void> {
    const record = await this.core.store.getCommand(commandId);
    if (!record || record.status !== 'scheduled') return;
    const options = record.options as { after?: { instanceIds: string[] } };
    if (record.dueAt !== undefined) {
      if (Date.parse(record.dueAt) > this.core.timers.now()) return;
    } else if (options.after) {
      for (const id of options.after.instanceIds) {
        if ((await this.core.store.getInstance(id))?.state !== 'succeeded') return;
      }
    }
    const applyOptions = { ...record.options, actor: 'system:schedule' } as Record<string, unknown>;
    delete applyOptions.at;
    delete applyOptions.after;
    delete applyOptions.idempotencyKey;
    try {
      await this.command(record.action, record.target, applyOptions, {
        skipAuthorize: true,
        fromSchedule: true,
        record: { next: { ...record, status: 'completed', version: record.version + 1 }, expectedVersion: record.version },
      });
    } catch (err) {
      if (!isTaskControlError(err, 'CONFLICT')) throw err; // another process applied it
    }
  }

  /**
   * Apply a command that waits for approval, exactly once, as the original command. The
   * approver must not be the requester and must pass `authorize` for the action.
   * @throws `NOT_FOUND` (unknown id), `FORBIDDEN`, `CONFLICT` (already decided, or expired)
   */
  async approve(commandId: string, options: { actor: string; reason?: string }): Promise<ControlResult> {
    parse(targetSchema, { instanceId: commandId }, 'commandId');
    const o = parse(decisionOptionsSchema, options, 'options');
    const record = await this.awaitingRecord(commandId);
    if (record.actor !== undefined && record.actor === o.actor) {
      await this.auditDecision(record, o.actor, 'approve', 'denied: the requester cannot approve their own command');
      throw new TaskControlError('FORBIDDEN', `${o.actor} requested command ${commandId} and cannot approve it`, { details: { commandId } });
    }
    const instances = await this.resolveTarget(record.action, record.target);
    const { tasks, groups, backfills, subjects } = this.namedBy(record.target, instances);
    await this.authorizeOrThrow(record.action, o.actor, record.target, record.options, tasks, groups, 'taskId' in record.target ? record.target.taskId : undefined, backfills, subjects);
    if (isScheduledRecord(record)) return this.scheduleApproved(record, o.actor, o.reason);
    const applyOptions = { ...record.options } as Record<string, unknown>;
    if (record.actor !== undefined) applyOptions.actor = record.actor;
    delete applyOptions.idempotencyKey;
    const next: CommandRecord = { ...record, status: 'approved', decidedBy: o.actor, version: record.version + 1 };
    if (o.reason !== undefined) next.decisionReason = o.reason;
    const result = await this.command(record.action, record.target, applyOptions, {
      skipAuthorize: true,
      record: { next, expectedVersion: record.version },
    });
    await this.auditDecision(record, o.actor, 'approve', o.reason);
    return result;
  }

  /** An approved resume with `at`/`after`: from now on it is a scheduled command. */
  private async scheduleApproved(record: CommandRecord, actor: string, reason?: string): Promise<ControlResult> {
    const result: ControlResult = { ...record.result, status: 'scheduled' };
    const next: CommandRecord = { ...record, status: 'scheduled', result, decidedBy: actor, updatedAt: this.core.now().toISOString(), version: record.version + 1 };
    if (reason !== undefined) next.decisionReason = reason;
    if (record.options.at !== undefined) next.dueAt = new Date(record.options.at as string).toISOString();
    else delete next.dueAt;
    try {
      await this.core.store.commit({ commands: [{ next, expectedVersion: record.version }], audit: [this.decisionEntry(record, actor, 'approve', reason)] });
    } catch (err) {
      if (isTaskControlError(err, 'CONFLICT')) throw new TaskControlError('CONFLICT', `command ${record.id} was already decided`, { details: { commandId: record.id } });
      throw err;
    }
    this.armSchedule(next);
    return result;
  }

  /**
   * End a command that waits for approval without applying it. The requester may withdraw
   * their own request; anyone else must pass `authorize` for the action.
   */
  async reject(commandId: string, options: { actor: string; reason?: string }): Promise<void> {
    parse(targetSchema, { instanceId: commandId }, 'commandId');
    const o = parse(decisionOptionsSchema, options, 'options');
    const record = await this.awaitingRecord(commandId);
    if (record.actor !== o.actor) {
      const instances = await this.resolveTarget(record.action, record.target);
      const { tasks, groups, backfills, subjects } = this.namedBy(record.target, instances);
      await this.authorizeOrThrow(record.action, o.actor, record.target, record.options, tasks, groups, 'taskId' in record.target ? record.target.taskId : undefined, backfills, subjects);
    }
    const next: CommandRecord = { ...record, status: 'rejected', decidedBy: o.actor, updatedAt: this.core.now().toISOString(), version: record.version + 1 };
    if (o.reason !== undefined) next.decisionReason = o.reason;
    try {
      await this.core.store.commit({ commands: [{ next, expectedVersion: record.version }], audit: [this.decisionEntry(record, o.actor, 'reject', o.reason)] });
    } catch (err) {
      if (isTaskControlError(err, 'CONFLICT')) throw new TaskControlError('CONFLICT', `command ${commandId} was already decided`, { details: { commandId } });
      throw err;
    }
  }

  private async awaitingRecord(commandId: string): Promise<CommandRecord> {
    const record = await this.core.store.getCommand(commandId);
    // a decided request has decidedBy (an approved scheduled resume moves on to scheduled/completed/cancelled)
    if (!record || (record.status !== 'awaiting_approval' && record.status !== 'expired' && record.decidedBy === undefined)) {
      throw new TaskControlError('NOT_FOUND', `no approval request ${commandId}`, { details: { commandId } });
    }
    if (record.status !== 'awaiting_approval') {
      const was = record.status === 'rejected' || record.status === 'expired' ? record.status : 'approved';
      throw new TaskControlError('CONFLICT', `command ${commandId} was already ${was}`, { details: { commandId } });
    }
    if (record.dueAt !== undefined && Date.parse(record.dueAt) <= this.core.timers.now()) {
      await this.expire(record);
      throw new TaskControlError('CONFLICT', `approval request ${commandId} expired at ${record.dueAt}`, { details: { commandId } });
    }
    return record;
  }

  private async expire(record: CommandRecord): Promise<void> {
    const next: CommandRecord = { ...record, status: 'expired', updatedAt: this.core.now().toISOString(), version: record.version + 1 };
    try {
      await this.core.store.commit({
        commands: [{ next, expectedVersion: record.version }],
        audit: [this.decisionEntry(record, 'system:approvals', 'expire', `no decision within ${this.approvalTtlMs} ms`)],
      });
    } catch (err) {
      if (!isTaskControlError(err, 'CONFLICT')) throw err;
    }
  }

  private decisionEntry(record: CommandRecord, actor: string, decision: 'approve' | 'reject' | 'expire' | 'cancel', reason?: string): AuditEntry {
    const entry: AuditEntry = {
      id: this.core.newId(),
      at: this.core.now().toISOString(),
      actor,
      kind: 'command',
      action: `${decision}:${record.action}`,
      commandId: record.id,
      target: record.target,
      result: { decision, commandId: record.id, requestedBy: record.actor },
    };
    if (reason !== undefined) entry.reason = reason;
    if ('taskId' in record.target) entry.taskId = record.target.taskId;
    return entry;
  }

  private async auditDecision(record: CommandRecord, actor: string, decision: 'approve' | 'reject', reason?: string): Promise<void> {
    await this.core.store.commit({ audit: [this.decisionEntry(record, actor, decision, reason)] });
  }

  /** Approval requests, newest last; `state` filters (`awaiting`, `approved`, `rejected`, `expired`). */
  async approvals(filter: { state?: ApprovalRequest['state'] | ApprovalRequest['state'][] } = {}): Promise<ApprovalRequest[]> {
    const f = parse(approvalsFilterSchema, filter, 'filter');
    const wanted = f.state === undefined ? undefined : new Set(Array.isArray(f.state) ? f.state : [f.state]);
    const now = this.core.timers.now();
    const out: ApprovalRequest[] = [];
    for (const r of await this.core.store.listCommands({ status: ['awaiting_approval', 'approved', 'rejected', 'expired', 'scheduled', 'completed', 'cancelled'] })) {
      // an approved scheduled resume moves on to scheduled, completed or cancelled
      const approvedSchedule = (r.status === 'scheduled' || r.status === 'completed' || r.status === 'cancelled') && r.decidedBy !== undefined;
      if ((r.status === 'scheduled' || r.status === 'completed' || r.status === 'cancelled') && !approvedSchedule) continue;
      const state: ApprovalRequest['state'] = approvedSchedule
        ? 'approved'
        : r.status === 'awaiting_approval'
          ? r.dueAt !== undefined && Date.parse(r.dueAt) <= now
            ? 'expired'
            : 'awaiting'
          : (r.status as ApprovalRequest['state']);
      if (wanted && !wanted.has(state)) continue;
      const item: ApprovalRequest = { commandId: r.id, action: r.action, target: r.target, options: r.options, state, createdAt: r.createdAt };
      if (r.actor !== undefined) item.requestedBy = r.actor;
      if (r.dueAt !== undefined) item.expiresAt = r.dueAt;
      if (r.decidedBy !== undefined) item.decidedBy = r.decidedBy;
      if (r.decisionReason !== undefined) item.reason = r.decisionReason;
      if (state === 'approved') item.result = r.result;
      out.push(item);
    }
    return out;
  }

  /** Cancel a scheduled resume before it applies. @throws `NOT_FOUND`, `CONFLICT` (already applied or cancelled) */
  async cancelScheduled(commandId: string, options: { actor?: string; reason?: string } = {}): Promise<void> {
    parse(targetSchema, { instanceId: commandId }, 'commandId');
    const record = await this.core.store.getCommand(commandId);
    // known by its at/after: once applied, its result is the applied one (status completed)
    if (!record || !isScheduledRecord(record) || !['scheduled', 'cancelled', 'completed'].includes(record.status)) {
      throw new TaskControlError('NOT_FOUND', `no scheduled command ${commandId}`, { details: { commandId } });
    }
    if (record.status !== 'scheduled') throw new TaskControlError('CONFLICT', `scheduled command ${commandId} was already ${record.status === 'completed' ? 'applied' : record.status}`);
    const next: CommandRecord = { ...record, status: 'cancelled', updatedAt: this.core.now().toISOString(), version: record.version + 1 };
    const actor = typeof options.actor === 'string' ? options.actor : 'anonymous';
    try {
      await this.core.store.commit({ commands: [{ next, expectedVersion: record.version }], audit: [this.decisionEntry(record, actor, 'cancel', options.reason)] });
    } catch (err) {
      if (isTaskControlError(err, 'CONFLICT')) throw new TaskControlError('CONFLICT', `scheduled command ${commandId} was already applied or cancelled`);
      throw err;
    }
    const timer = this.scheduleTimers.get(commandId);
    if (timer !== undefined) this.core.timers.clearTimeout(timer);
    this.scheduleTimers.delete(commandId);
  }

  /** Every sweep: scheduled commands that are due, approval requests past their ttl. */
  private async governanceSweep(): Promise<void> {
    const now = this.core.timers.now();
    for (const record of await this.core.store.listCommands({ status: ['scheduled', 'awaiting_approval'] })) {
      if (record.status === 'scheduled') {
        if (record.dueAt === undefined || Date.parse(record.dueAt) <= now) await this.runScheduled(record.id);
        else this.armSchedule(record);
      } else if (record.dueAt !== undefined && Date.parse(record.dueAt) <= now) {
        await this.expire(record);
      }
    }
  }

  /** pauseAfterFailures: hold a task's scope after that many consecutive failed instances. */
  private async countFailure(instance: Instance): Promise<void> {
    const limit = this.core.tasks.get(instance.taskId)?.pauseAfterFailures;
    if (limit === undefined) return;
    const streak = (this.failureStreaks.get(instance.taskId) ?? 0) + 1;
    this.failureStreaks.set(instance.taskId, streak);
    if (streak < limit || this.scopes.has(`task:${instance.taskId}`)) return;
    this.failureStreaks.delete(instance.taskId);
    await this.command('pause', { taskId: instance.taskId }, { actor: 'system:pauseAfterFailures', reason: `${streak} consecutive failed instances` }, { skipAuthorize: true });
  }

  /**
   * Hold a scope while `condition()` returns true (say, resources run short) and release it
   * when it turns false, as audited commands by `system:<name>`. An operator's explicit resume
   * wins until the condition turns true again. While the controller is shut down the policy
   * rests; `start()` resumes it with a check at once. Returns a function that removes it.
   */
  holdWhile(scope: { taskId: string } | { group: string } | { all: true }, condition: () => boolean | Promise<boolean>, options: HoldWhileOptions): () => void {
    const target = parse(scopeTargetSchema, scope, 'scope') as Target;
    if (typeof condition !== 'function') {
      throw new TaskControlError('VALIDATION', 'condition: must be a function', { issues: [{ path: ['condition'], message: 'must be a function' }] });
    }
    const o = parse(holdWhileOptionsSchema, options, 'options');
    const actor = `system:${o.name}`;
    const scopeId = 'taskId' in target ? `task:${target.taskId}` : 'group' in target ? `group:${target.group}` : 'all';
    let phase: 'idle' | 'holding' | 'overridden' = 'idle';
    let stopped = false;
    // paused while the controller is shut down, resumed (with a check at once) by start()
    let paused = false;
    let timer: unknown;
    // each round of checks has a number: one that a pause overtook does not schedule another
    let round = 0;
    const check = async () => {
      const short = await condition();
      if (paused || stopped) return; // shut down or removed while the condition was asked
      if (short) {
        if (phase === 'idle') {
          if (!this.scopes.has(scopeId)) {
            await this.command('pause', target, { actor, reason: `${o.name}: condition holds` }, { skipAuthorize: true });
            phase = 'holding';
          }
        } else if (phase === 'holding' && this.scopes.get(scopeId)?.actor !== actor) {
          phase = 'overridden'; // an operator released (or took over) the scope: do not fight them
        }
      } else {
        if (phase === 'holding' && this.scopes.get(scopeId)?.actor === actor) {
          await this.command('resume', target, { actor, reason: `${o.name}: condition cleared` }, { skipAuthorize: true });
        }
        phase = 'idle';
      }
    };
    const run = () => {
      const mine = ++round;
      void check()
        .catch((error) => this.emitter.emit('error', { error, where: `holdWhile:${o.name}` }))
        .finally(() => {
          if (stopped || paused || mine !== round) return;
          timer = this.core.timers.setTimeout(() => {
            timer = undefined;
            run();
          }, o.checkEveryMs);
          unrefTimer(timer);
        });
    };
    const policy = {
      pause: () => {
        paused = true;
        if (timer !== undefined) this.core.timers.clearTimeout(timer);
        timer = undefined;
      },
      resume: () => {
        if (!paused || stopped) return;
        paused = false;
        run();
      },
    };
    this.policies.add(policy);
    run();
    return () => {
      stopped = true;
      this.policies.delete(policy);
      if (timer !== undefined) this.core.timers.clearTimeout(timer);
    };
  }

  /** A snapshot of what this controller did and sees: commands, instances, queue, transitions. */
  async metrics(): Promise<MetricsSnapshot> {
    const awaiting: Record<string, number> = {};
    const now = this.core.timers.now();
    for (const r of await this.core.store.listCommands({ status: ['awaiting_approval'] })) {
      if (r.dueAt === undefined || Date.parse(r.dueAt) > now) awaiting[r.action] = (awaiting[r.action] ?? 0) + 1;
    }
    const instances = await this.core.store.countInstances({});
    const held = this.heldForDispatch();
    let queueLength = 0;
    if (!held.all) {
      // nothing held: every queued instance is dispatchable, no need to fetch them all
      queueLength =
        held.tasks.length + held.groups.length + held.backfills.length === 0
          ? instances.queued
          : (await this.core.store.queued({ limit: 1_000_000, heldTasks: held.tasks, heldGroups: held.groups, heldBackfills: held.backfills })).length;
    }
    return {
      commands: this.metricsRecorder.commands(awaiting),
      inFlightCommands: this.metricsRecorder.inFlight,
      instances,
      queueLength,
      running: this.runtime.runningCount,
      transitions: this.metricsRecorder.transitions,
    };
  }

  /** Every audit entry matching the filter, oldest first, fetched a page at a time (for export as JSON lines). */
  async *auditStream(filter: Omit<AuditFilter, 'limit'> & { pageSize?: number } = {}): AsyncGenerator<AuditEntry> {
    const { pageSize = 1000, ...rest } = filter;
    if (!Number.isInteger(pageSize) || pageSize < 1) {
      throw new TaskControlError('VALIDATION', 'filter.pageSize: must be a positive integer', {
        issues: [{ path: ['filter', 'pageSize'], message: 'must be a positive integer' }],
      });
    }
    const f = parse(auditFilterSchema, rest, 'filter');
    const base = {
      ...f,
      since: f.since === undefined ? undefined : new Date(f.since).toISOString(),
      until: f.until === undefined ? undefined : new Date(f.until).toISOString(),
    };
    let afterId: string | undefined;
    for (;;) {
      const page = await this.core.store.queryAudit({ ...base, afterId, limit: undefined, pageSize: pageSize + 1 });
      const slice = page.slice(0, pageSize);
      for (const entry of slice) yield entry;
      if (page.length <= pageSize) return;
      afterId = slice[slice.length - 1].id;
    }
  }

  // -- backfill ----------------------------------------------------------------------------

  /** Starts of backfills, one at a time: the overlap check and the record's commit are one step. */
  private backfillStarts: Promise<unknown> = Promise.resolve();
  /** Set once `start()` carried on stored backfills: from then on `started === false` means shut down. */
  private backfillsStarted = false;

  /**
   * Run a task over a range of logical dates from its schedule (or `options.schedule`), as
   * one unit that can be paused, resumed and cancelled. Instances are created as slots come
   * due, never more than the backfill's concurrency ahead. With `dryRun` nothing is created.
   */
  async backfill(taskId: string, options: BackfillOptions): Promise<BackfillHandle> {
    parse(targetSchema, { taskId }, 'taskId');
    assertKnownOptions(options);
    const o = parse(backfillOptionsSchema, options, 'options') as BackfillOptions;
    const task = this.core.tasks.get(taskId);
    if (!task) throw new TaskControlError('NOT_FOUND', `task ${taskId} is not defined; call define() first`, { details: { taskId } });
    const schedule = o.schedule ?? task.schedule;
    if (!schedule) {
      throw new TaskControlError('VALIDATION', `options.schedule: task ${taskId} has no schedule; pass one`, {
        issues: [{ path: ['options', 'schedule'], message: 'required when the task has no schedule' }],
      });
    }
    const planner = plannerFor({ schedule, from: o.from, to: o.to, order: o.order }, o.schedule ? 'options' : 'task');
    const mode = o.mode ?? 'serial';
    const concurrency = mode === 'serial' ? 1 : (o.concurrency ?? 4);
    const reprocess = o.reprocess ?? 'none';
    const groups = task.group ? [task.group] : [];
    await this.authorizeOrThrow('backfill', o.actor, { taskId }, { ...o, actor: undefined }, [taskId], groups, taskId, [], [{ taskId, group: task.group }]);
    const total = planner.count();
    if (o.dryRun) {
      const byPolicy = await planReprocess(this.core.store, planner, taskId);
      const status: BackfillStatus = { id: this.core.newId(), taskId, state: 'planned', total, counts: emptyCounts() };
      return {
        id: status.id,
        done: Promise.resolve(status),
        preview: planner.preview(100),
        plan: { total, ...byPolicy[reprocess], byPolicy },
        pause: async () => undefined,
        resume: async () => undefined,
        cancel: async () => undefined,
        status: () => status,
      };
    }
    // the overlap check and the commit must not interleave with another start's (in this process)
    const turn = this.backfillStarts.then(() => this.startBackfill(task, schedule, planner, o, mode, concurrency, reprocess, total));
    this.backfillStarts = turn.catch(() => undefined);
    const run = await turn;
    return this.handleFor(run, o.actor);
  }

  private async startBackfill(
    task: TaskDefinition,
    schedule: Schedule,
    planner: BackfillPlanner,
    o: BackfillOptions,
    mode: 'serial' | 'parallel',
    concurrency: number,
    reprocess: 'none' | 'failed' | 'all',
    total: number,
  ): Promise<BackfillRun> {
    const taskId = task.id;
    await assertNoOverlap(this.core.store, taskId, planner.fromMs, planner.toMs);
    const at = this.core.now().toISOString();
    const record: BackfillRecord = {
      id: this.core.newId(),
      taskId,
      state: 'running',
      schedule,
      from: planner.from,
      to: planner.to,
      order: planner.order,
      mode,
      concurrency,
      reprocess,
      params: o.params ?? {},
      includeDownstream: o.includeDownstream ?? false,
      total,
      nextIndex: 0,
      createdAt: at,
      updatedAt: at,
      version: 1,
      // the starting controller drives it; its hold is renewed every sweep while it lives
      owner: this.core.id,
      leaseExpiresAt: new Date(this.core.timers.now() + this.core.leaseMs).toISOString(),
    };
    if (o.actor !== undefined) record.actor = o.actor;
    const entry: AuditEntry = {
      id: this.core.newId(),
      at,
      actor: o.actor ?? 'anonymous',
      kind: 'command',
      action: 'backfill',
      commandId: record.id,
      taskId,
      backfillId: record.id,
      target: { taskId },
      result: { backfillId: record.id, total, from: record.from, to: record.to, mode, concurrency, reprocess },
    };
    if (o.reason !== undefined) entry.reason = o.reason;
    await this.core.store.commit({ backfills: [{ next: record, expectedVersion: 0 }], audit: [entry] });
    return this.driveBackfill(record);
  }

  /** The status of a backfill (from the store, so any controller can answer). */
  async getBackfill(backfillId: string): Promise<BackfillStatus | undefined> {
    parse(targetSchema, { backfillId }, 'backfillId');
    const local = this.backfillRuns.get(backfillId);
    if (local && !local.isDetached) return local.status();
    const record = await this.core.store.getBackfill(backfillId);
    if (!record) return undefined;
    const counts = await this.core.store.countInstances({ backfillId });
    return { id: record.id, taskId: record.taskId, state: record.state, total: record.total, counts };
  }

  /** A handle on a backfill this controller drives, e.g. one resumed after a restart. */
  backfillHandle(backfillId: string, actor?: string): BackfillHandle | undefined {
    const run = this.backfillRuns.get(backfillId);
    return run && !run.isDetached ? this.handleFor(run, actor) : undefined;
  }

  private handleFor(run: BackfillRun, actor: string | undefined): BackfillHandle {
    const target = { backfillId: run.id };
    const ask = async (action: 'pause' | 'resume' | 'stop', as?: string) => {
      const record = await this.core.store.getBackfill(run.id);
      const groups = record ? (this.core.tasks.get(record.taskId)?.group ?? undefined) : undefined;
      await this.authorizeOrThrow(action, as ?? actor, target, {}, record ? [record.taskId] : [], groups ? [groups] : [], record?.taskId, [run.id], record ? [{ taskId: record.taskId, group: groups }] : []);
    };
    return {
      id: run.id,
      done: run.done,
      pause: async (o = {}) => {
        await ask('pause', o.actor);
        await run.pause(o.actor ?? actor ?? 'anonymous');
      },
      resume: async (o = {}) => {
        await ask('resume', o.actor);
        await run.resume(o.actor ?? actor ?? 'anonymous');
      },
      cancel: async (o = {}) => {
        await ask('stop', o.actor);
        await run.cancel(o.actor ?? actor ?? 'anonymous');
      },
      status: () => run.status(),
    };
  }

  private async driveBackfill(record: BackfillRecord): Promise<BackfillRun> {
    const existing = this.backfillRuns.get(record.id);
    if (existing && !existing.isDetached) return existing;
    const counts = await this.core.store.countInstances({ backfillId: record.id });
    const run = new BackfillRun(this.backfillHost(), record, counts);
    this.backfillRuns.set(record.id, run);
    void run.done.then(() => {
      if (this.backfillRuns.get(record.id) === run) this.backfillRuns.delete(record.id);
    });
    await run.start();
    return run;
  }

  private backfillHost(): BackfillHost {
    return {
      store: this.core.store,
      task: (taskId) => this.core.tasks.get(taskId),
      downstreamTasks: (taskId) => {
        const depth = this.taskDepths();
        return [...this.downstreamOf(taskId)].sort((a, b) => (depth.get(a) ?? 0) - (depth.get(b) ?? 0));
      },
      createInstance: (task, o) => this.createInstance(task, o),
      rerunFor: async (backfillId, instanceIds, params, actor) => {
        const result = await this.command('rerun', { instanceIds }, { actor, params, reason: `reprocessed by backfill ${backfillId}` }, { patch: { backfillId }, skipAuthorize: true });
        return result.applied.filter((a) => a.changed).map((a) => a.instanceId);
      },
      upstreamFinished: async (instance) => {
        if (instance.state === 'succeeded' || instance.state === 'skipped') await this.releaseDownstream(instance);
        else if (instance.state === 'failed' || instance.state === 'stopped') await this.failDownstream(instance);
      },
      stopAll: async (backfillId, actor) => {
        const result = await this.command('stop', { backfillId }, { actor, reason: `backfill ${backfillId} cancelled` }, { skipAuthorize: true });
        return result.status === 'completed';
      },
      setHeld: (backfillId, held) => this.setBackfillHeld(backfillId, held),
      emit: (status) => this.emitter.emit('backfill', status),
      now: () => this.core.now(),
      newId: () => this.core.newId(),
      onTransition: (listener) => {
        this.emitter.on('transition', listener);
        return () => this.emitter.off('transition', listener);
      },
      error: (error) => this.emitter.emit('error', { error, where: 'backfill' }),
      active: () => this.started || !this.backfillsStarted,
      detached: (run) => {
        if (this.backfillRuns.get(run.id) === run) this.backfillRuns.delete(run.id);
      },
    };
  }

  /** On start: carry on the backfills left running or paused in the store. */
  private async resumeBackfills(): Promise<void> {
    this.backfillsStarted = true;
    const now = this.core.timers.now();
    for (const record of await this.core.store.listBackfills({ state: ['running', 'paused'] })) {
      if (!this.core.tasks.has(record.taskId)) continue;
      const local = this.backfillRuns.get(record.id);
      if (local && !local.isDetached) continue;
      // another live controller drives it: leave it to them
      if (record.owner !== undefined && record.owner !== this.core.id && record.leaseExpiresAt !== undefined && Date.parse(record.leaseExpiresAt) > now) continue;
      const claimed: BackfillRecord = {
        ...record,
        owner: this.core.id,
        leaseExpiresAt: new Date(now + this.core.leaseMs).toISOString(),
        updatedAt: this.core.now().toISOString(),
        version: record.version + 1,
      };
      try {
        await this.core.store.commit({ backfills: [{ next: claimed, expectedVersion: record.version }] });
      } catch (err) {
        if (isTaskControlError(err, 'CONFLICT')) continue; // another controller adopted it first
        throw err;
      }
      await this.driveBackfill(claimed);
    }
  }

  /** Every sweep: renew the holds on the backfills driven here, adopt those whose driver is gone. */
  private async backfillSweep(): Promise<void> {
    if (!this.runtime.hasExecutor || !this.backfillsStarted) return;
    const until = new Date(this.core.timers.now() + this.core.leaseMs).toISOString();
    for (const run of [...this.backfillRuns.values()]) {
      if (!run.isDetached) await run.renewLease(this.core.id, until);
    }
    await this.resumeBackfills();
  }

  // -- dependencies ------------------------------------------------------------------------

  /**
   * Whether a held task, group or `all` scope covers new instances of this task, from the
   * notice-fed cache; undefined when only the store can tell. A store whose notices arrive
   * before its commits resolve (the memory store) keeps that cache exact; any other store is
   * asked, so that a hold committed by another process a moment ago already applies.
   */
  private heldFromCache(task: TaskDefinition): boolean | undefined {
    if (!this.scopesCurrent || !this.core.store.synchronousNotices) return undefined;
    return this.scopes.size > 0 && coversTask(this.scopes.values(), task);
  }

  private async heldFromStore(task: TaskDefinition): Promise<boolean> {
    // a store with synchronous notices is read once; from then on its notices keep the cache
    return coversTask(this.core.store.synchronousNotices ? (await this.refreshScopes()).values() : await this.core.store.listScopes(), task);
  }

  /** True when every upstream instance of the same logical date succeeded or was skipped. */

  private async upstreamDone(instance: Pick<Instance, 'taskId' | 'logicalDate'>, rerunKeys?: Set<string>): Promise<boolean> {
    const deps = this.core.tasks.get(instance.taskId)?.dependsOn;
    if (!deps?.length || instance.logicalDate === undefined) return true;
    for (const dep of deps) {
      if (rerunKeys?.has(`${dep}\u0000${instance.logicalDate}`)) return false;
      const upstream = await this.core.store.findInstance(dep, instance.logicalDate);
      if (!upstream || (upstream.state !== 'succeeded' && upstream.state !== 'skipped')) return false;
    }
    return true;
  }

  /** An upstream instance (same logical date) that failed for good or was stopped, if any. */
  private async failedUpstream(instance: Pick<Instance, 'taskId' | 'logicalDate'>): Promise<Instance | undefined> {
    const deps = this.core.tasks.get(instance.taskId)?.dependsOn;
    if (!deps?.length || instance.logicalDate === undefined) return undefined;
    for (const dep of deps) {
      const upstream = await this.core.store.findInstance(dep, instance.logicalDate);
      if (upstream && (upstream.state === 'stopped' || (upstream.state === 'failed' && upstream.retryAt === undefined))) return upstream;
    }
    return undefined;
  }

  /** Task ids that depend on `taskId` directly. */
  private dependentsOf(taskId: string): string[] {
    if (!this.dependentsCache) {
      this.dependentsCache = new Map();
      for (const task of this.core.tasks.values()) {
        for (const dep of task.dependsOn ?? []) this.dependentsCache.set(dep, [...(this.dependentsCache.get(dep) ?? []), task.id]);
      }
    }
    return this.dependentsCache.get(taskId) ?? [];
  }

  /** Task ids that depend on `taskId`, transitively. */
  private downstreamOf(taskId: string): string[] {
    if (!this.downstreamCache) {
      const direct = new Map<string, string[]>();
      for (const task of this.core.tasks.values()) {
        for (const dep of task.dependsOn ?? []) direct.set(dep, [...(direct.get(dep) ?? []), task.id]);
      }
      const all = new Map<string, string[]>();
      for (const id of this.core.tasks.keys()) {
        const seen = new Set<string>();
        const stack = [...(direct.get(id) ?? [])];
        while (stack.length) {
          const next = stack.pop()!;
          if (seen.has(next)) continue;
          seen.add(next);
          stack.push(...(direct.get(next) ?? []));
        }
        all.set(id, [...seen]);
      }
      this.downstreamCache = all;
    }
    return this.downstreamCache.get(taskId) ?? [];
  }

  private taskDepths(): Map<string, number> {
    const depth = new Map<string, number>();
    const visit = (id: string, trail: Set<string>): number => {
      const known = depth.get(id);
      if (known !== undefined) return known;
      if (trail.has(id)) return 0;
      trail.add(id);
      const deps = this.core.tasks.get(id)?.dependsOn ?? [];
      const d = deps.length ? 1 + Math.max(...deps.map((x) => visit(x, trail))) : 0;
      depth.set(id, d);
      return d;
    };
    for (const id of this.core.tasks.keys()) visit(id, new Set());
    return depth;
  }

  /**
   * An instance succeeded or was skipped: move its pending dependants whose upstream is done
   * to queued. Undefined (synchronously) when it has none to look at.
   */
  private releaseDownstream(instance: Instance): Promise<void> | undefined {
    if (instance.logicalDate === undefined) return undefined;
    const dependents = this.dependentsOf(instance.taskId);
    return dependents.length === 0 ? undefined : this.releaseDependents(instance, instance.logicalDate, dependents);
  }

  private async releaseDependents(instance: Instance, logicalDate: string, dependents: string[]): Promise<void> {
    for (const taskId of dependents) {
      const d = await this.core.store.findInstance(taskId, logicalDate);
      if (d?.state === 'pending' && (await this.upstreamDone(d))) {
        await this.runtime.transitionIf(d.id, ['pending'], 'ready', 'system:dependencies', () => ({}), undefined, {
          reason: `upstream ${instance.taskId} ${instance.state}`,
        });
      }
    }
  }

  /**
   * An instance failed for good or was stopped: its pending dependants (same logical date)
   * will never run, so they are stopped with `UPSTREAM_FAILED`. `rerun(..., { downstream: true })`
   * brings them back.
   */
  private async failDownstream(instance: Instance): Promise<void> {
    if (instance.logicalDate === undefined) return;
    for (const taskId of this.downstreamOf(instance.taskId)) {
      const d = await this.core.store.findInstance(taskId, instance.logicalDate);
      if (d?.state !== 'pending') continue;
      await this.runtime.transitionIf(d.id, ['pending'], 'upstream_failed', 'system:dependencies', () => ({
        endedAt: this.core.now().toISOString(),
        error: { code: 'UPSTREAM_FAILED', message: `upstream ${instance.taskId} ${instance.state}` },
      }), undefined, { reason: `upstream ${instance.taskId} ${instance.state}` });
    }
  }

  /** On start: pending instances whose upstream finished while nobody watched. */
  private async releasePending(): Promise<void> {
    for (let cursor: string | undefined; ; ) {
      const page = await this.core.store.listInstances({ state: 'pending', limit: 500, cursor });
      for (const d of page.items) {
        if (await this.upstreamDone(d)) {
          await this.runtime.transitionIf(d.id, ['pending'], 'ready', 'system:dependencies', () => ({}));
        }
      }
      if (!page.cursor) return;
      cursor = page.cursor;
    }
  }

  // -- scopes and notices ------------------------------------------------------------------

  private async refreshScopes(): Promise<Map<string, HeldScope>> {
    // a scope notice that arrives while the list is read is newer than the list: read again
    for (;;) {
      const generation = this.scopeGeneration;
      const scopes = await this.core.store.listScopes();
      if (generation !== this.scopeGeneration) continue;
      this.scopes = new Map(scopes.map((s) => [s.id, s]));
      this.scopesCurrent = true;
      this.held = undefined;
      return this.scopes;
    }
  }

  private heldForDispatch(): { tasks: string[]; groups: string[]; all: boolean; backfills: string[] } {
    if (this.held) return this.held;
    const tasks: string[] = [];
    const groups: string[] = [];
    for (const scope of this.scopes.values()) {
      if (scope.kind === 'task') tasks.push(scope.key);
      else if (scope.kind === 'group') groups.push(scope.key);
    }
    return (this.held = { tasks, groups, all: this.scopes.has('all'), backfills: [...this.heldBackfills] });
  }

  /** Mark a backfill as held (or not) for dispatch. Internal: used by backfill runs. */
  setBackfillHeld(backfillId: string, held: boolean): void {
    this.held = undefined;
    if (held) this.heldBackfills.add(backfillId);
    else if (this.heldBackfills.delete(backfillId)) this.runtime.schedulePump();
  }

  private onNotice(notice: StoreNotice): void {
    if (notice.scopesChanged) {
      this.scopeGeneration++;
      for (const scope of notice.heldScopes) this.scopes.set(scope.id, scope);
      for (const id of notice.releasedScopes) this.scopes.delete(id);
      this.held = undefined;
      this.runtime.schedulePump();
    }
    // events follow the commit, and signals to local runs follow the events (DESIGN.md);
    // a listener that throws must not keep the signals from being sent
    try {
      this.emitNotice(notice);
    } finally {
      this.runtime.onNotice(notice);
    }
  }

  private emitNotice(notice: StoreNotice): void {
    const audit = notice.audit;
    for (let n = 0; n < audit.length; n++) if (audit[n].kind === 'transition') this.metricsRecorder.transitions++;
    const e = this.emitter;
    if (e.listenerCount('transition') + e.listenerCount('command') + e.listenerCount('late_result') === 0) return;
    for (let n = 0; n < audit.length; n++) {
      const entry = audit[n];
      if (entry.kind === 'transition') {
        const e: TransitionEventPayload = {
          instanceId: entry.instanceId!,
          taskId: entry.taskId!,
          from: entry.from!,
          to: entry.to!,
          event: entry.event!,
          at: entry.at,
          actor: entry.actor,
          attempt: entry.attempt ?? 1,
        };
        if (entry.backfillId !== undefined) e.backfillId = entry.backfillId;
        this.emitter.emit('transition', e);
      } else if (entry.kind === 'command') {
        const result = entry.result as ControlResult | { denied: true } | { decision: string };
        // denials and approval decisions are audited as command entries but are no ControlResult
        if (result && 'applied' in result) this.emitter.emit('command', { ...result, actor: entry.actor });
      } else {
        this.emitter.emit('late_result', entry);
      }
    }
  }

  /** Facts for tests and tooling: what runs here now. */
  get running(): number {
    return this.runtime.runningCount;
  }
}

/** What {@link TaskController.createInstance} is told besides the task. */
type CreateOptions = {
  params?: Record<string, unknown>;
  logicalDate?: string;
  actor?: string;
  backfillId?: string;
};

/** Who submitted an instance when the caller did not say. */
const ANONYMOUS: TransitionMeta = Object.freeze({ actor: 'anonymous' });

/** Instance creations committed together, and what each of them met. */
interface CreateBatch {
  writes: VersionedWrite<Instance>[];
  audit: AuditEntry[];
  /** Resolves once committed: undefined when all went in, else the error of each that failed (by index). */
  done: Promise<unknown[] | undefined>;
  settle: (errors: unknown[] | undefined) => void;
}

/** Whether one of these held scopes covers new instances of the task. */
function coversTask(scopes: Iterable<HeldScope>, task: TaskDefinition): boolean {
  for (const sc of scopes) {
    if (sc.kind === 'all' || (sc.kind === 'task' && sc.key === task.id) || (sc.kind === 'group' && sc.key === task.group)) return true;
  }
  return false;
}

/** A plain object without own properties (the options most calls pass): nothing to validate. */
function isEmptyObject(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype) return false;
  for (const key in value) if (Object.hasOwn(value, key)) return false;
  return true;
}

/** A resume with `at` or `after`: scheduled (or, needing approval, scheduled once approved). */
function isScheduledRecord(record: CommandRecord): boolean {
  return record.action === 'resume' && (record.options.at !== undefined || record.options.after !== undefined);
}

/** A repeated idempotency key returns the first result; reused for another command it is a CONFLICT. */
function sameCommandOrThrow(previous: CommandRecord, action: ControlAction, target: Target): ControlResult {
  if (previous.action !== action || JSON.stringify(previous.target) !== JSON.stringify(target)) {
    throw new TaskControlError(
      'CONFLICT',
      `idempotencyKey ${previous.idempotencyKey} was used by ${previous.action} ${JSON.stringify(previous.target)}, not ${action} ${JSON.stringify(target)}`,
      { details: { commandId: previous.id } },
    );
  }
  return previous.result;
}

function isExplicit(target: Target): boolean {
  return 'instanceId' in target || 'instanceIds' in target;
}

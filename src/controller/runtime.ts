import { unrefTimer } from '../clock.js';
import { isTaskControlError } from '../errors.js';
import { PauseUnwind, type ExecutionContext, type Executor } from '../execution/executor.js';
import type { MachineEvent } from '../machine/transitions.js';
import type { StoreNotice, VersionedWrite } from '../store/state-store.js';
import type { AuditEntry, Instance, InstanceState } from '../types.js';
import { advance, buildTransition, isoCache, type Core, type TransitionMeta } from './core.js';

/** One run of an executor for one instance, in this process. */
class Run {
  private controller: AbortController | undefined;
  /** Created on first use: most runs are never aborted, and most executors never look. */
  get abort(): AbortController {
    return (this.controller ??= new AbortController());
  }
  /** True once the run's signal fired (without creating it). */
  get aborted(): boolean {
    return this.controller?.signal.aborted ?? false;
  }
  pauseFlag = false;
  unwound = false;
  /** Set once the instance left this run's hands (forced pause, stop, timeout, lease lost). */
  abandoned: string | undefined;
  /** False while the commit that claims the instance is in flight: its lease is not ours yet. */
  claimed = false;
  /** Set while this run commits its own outcome, so that its notice is not taken for a takeover. */
  finishing = false;
  checkpoint: unknown;
  progress: { done: number; total?: number } | undefined;
  /** The task's `timeoutMs` timer, if it has one. */
  timeoutTimer: unknown;
  /** Created on first use: few executors listen for pauses. */
  pauseListeners: Set<() => void> | undefined;

  /** While suspended in place (`ctx.suspend()`): how to wake the executor up. */
  suspendWaiter: { resolve: () => void; reject: (reason: unknown) => void } | undefined;

  constructor(
    readonly instanceId: string,
    public token: number,
    public instance: Instance,
  ) {
    this.checkpoint = instance.checkpoint;
  }

  requestPause(): void {
    if (this.pauseFlag) return;
    this.pauseFlag = true;
    if (this.pauseListeners === undefined) return;
    for (const listener of this.pauseListeners) {
      try {
        listener();
      } catch {
        // a listener's failure must not keep the others from hearing the pause
      }
    }
  }

  abandon(reason: string): void {
    if (this.abandoned !== undefined) return;
    this.abandoned = reason;
    this.abort.abort(new AbortReason(reason));
    const waiter = this.suspendWaiter;
    this.suspendWaiter = undefined;
    waiter?.reject(this.abort.signal.reason);
  }
}

/**
 * The ExecutionContext of one run. A class (methods on the prototype) rather than an object
 * of closures: one allocation per run on the hot path.
 */
class RunContext implements ExecutionContext {
  readonly params: Record<string, unknown>;
  readonly logicalDate?: string;
  readonly attempt: number;
  readonly checkpoint?: unknown;

  constructor(
    private readonly run: Run,
    readonly instance: Readonly<Instance>,
    private readonly runtime: Runtime,
  ) {
    this.params = instance.params;
    this.logicalDate = instance.logicalDate;
    this.attempt = instance.attempt;
    this.checkpoint = instance.checkpoint;
  }

  get signal(): AbortSignal {
    return this.run.abort.signal;
  }

  pauseRequested(): boolean {
    return this.run.pauseFlag && this.run.abandoned === undefined;
  }

  pausePoint(checkpoint?: unknown): Promise<void> {
    const run = this.run;
    if (run.aborted) return Promise.reject(run.abort.signal.reason);
    if (!run.pauseFlag) return Promise.resolve();
    if (checkpoint !== undefined) run.checkpoint = checkpoint;
    run.unwound = true;
    return Promise.reject(new PauseUnwind());
  }

  saveCheckpoint(checkpoint: unknown): void {
    this.run.checkpoint = checkpoint;
  }

  progress(done: number, total?: number): void {
    this.run.progress = total === undefined ? { done } : { done, total };
    this.runtime.reportProgress(this.run.instance, done, total);
  }

  suspend(checkpoint?: unknown): Promise<void> {
    const run = this.run;
    if (run.aborted) return Promise.reject(run.abort.signal.reason);
    if (!run.pauseFlag) return Promise.resolve();
    if (checkpoint !== undefined) run.checkpoint = checkpoint;
    return this.runtime.suspendRun(run);
  }

  onPauseRequested(listener: () => void): () => void {
    const run = this.run;
    (run.pauseListeners ??= new Set()).add(listener);
    if (run.pauseFlag) queueMicrotask(listener);
    return () => run.pauseListeners!.delete(listener);
  }
}

/** The `signal.reason` of an aborted run: `stop`, `force_pause`, `timeout`, `shutdown` or `lease_lost`. */
export class AbortReason extends Error {
  constructor(
    /** Why the run was aborted: `stop`, `force_pause`, `timeout`, `shutdown` or `lease_lost`. */
    readonly kind: string,
  ) {
    super(`aborted: ${kind}`);
    this.name = 'AbortError';
  }
}

type Outcome = { kind: 'ok'; value: unknown } | { kind: 'error'; error: unknown } | { kind: 'unwound' };
const UNWOUND: Outcome = Object.freeze({ kind: 'unwound' });
/** What most executors return: nothing. */
const OK_EMPTY: Outcome = Object.freeze({ kind: 'ok', value: undefined });

/** The commit that settles one run. */
interface FinishPlan {
  write: VersionedWrite<Instance>;
  entry: AuditEntry;
  next: Instance;
}

/** A run's outcome waiting to be committed. */
interface FinishItem {
  run: Run;
  outcome: Outcome;
}

/** A prepared claim of one queued instance. */
interface Claim {
  run: Run;
  write: VersionedWrite<Instance>;
  entry: AuditEntry;
  reattach: boolean;
  oldToken: number;
}

/** Callbacks from the runtime to the controller. */
export interface RuntimeHooks {
  /** After an instance reached succeeded or skipped: release its downstream instances (undefined: nothing to do). */
  released(instance: Instance): Promise<void> | undefined;
  /** After an attempt failed for good (no retry left). */
  failedForGood?(instance: Instance): Promise<void>;
  progress(instance: Instance, done: number, total: number | undefined): void;
  error(err: unknown, where: string): void;
  heldTasks(): { tasks: string[]; groups: string[]; all: boolean; backfills: string[] };
  /** Extra housekeeping on every sweep (scheduled commands, expired approvals). */
  sweep?(): Promise<void>;
}

const EXECUTOR_META: TransitionMeta = Object.freeze({ actor: 'system:executor' });

const ACTIVE: ReadonlySet<InstanceState> = new Set(['running', 'pausing', 'stopping']);

/**
 * Dispatches queued instances to the executor, watches their runs (timeouts, grace
 * periods, leases) and commits their outcomes. Every change still goes through the table.
 */
export class Runtime {
  private readonly runs = new Map<string, Run>();
  /** Runs suspended in place: their instance is paused, their executor still alive. */
  private readonly suspended = new Map<string, Run>();
  /** Executions in flight (suspended ones included), to wait for on shutdown. */
  private inflight = 0;
  /** Called when `inflight` drops to 0 (shutdown waits for that). */
  private readonly idleWaiters: (() => void)[] = [];
  /** Outcomes waiting for the next group commit. */
  private finishBatch: FinishItem[] | undefined;
  private started = false;
  private stopping = false;
  private pumping = false;
  private pumpAgain = false;
  private pumpScheduled = false;
  private sweepHandle: unknown;
  private readonly deadlineTimers = new Map<string, unknown>();
  /** Who claims instances here, for the audit trail. */
  private readonly claimMeta: TransitionMeta;
  /** Lease expiry times, cached per millisecond like the core's timestamps. */
  private readonly leaseIso = isoCache();

  constructor(
    private readonly core: Core,
    private readonly executor: Executor | undefined,
    private readonly concurrency: number,
    private readonly hooks: RuntimeHooks,
    private readonly pollMs: number,
  ) {
    this.claimMeta = { actor: `system:${core.id}` };
  }

  /** Whether this controller runs work (has an executor). */
  get hasExecutor(): boolean {
    return this.executor !== undefined;
  }

  get runningCount(): number {
    return this.runs.size;
  }

  /** Ids of the instances this runtime is running. */
  runningIds(): string[] {
    return [...this.runs.keys()];
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.stopping = false;
    await this.sweep();
    this.scheduleSweep();
    this.schedulePump();
  }

  // -- dispatch ---------------------------------------------------------------------------

  /** Ask for a dispatch round soon (coalesced). */
  schedulePump(): void {
    if (!this.started || this.stopping || !this.executor || this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        while (!this.stopping && this.runs.size < this.concurrency) {
          const held = this.hooks.heldTasks();
          if (held.all) break;
          const free = this.concurrency - this.runs.size;
          // an instance queued again while its aborted run here still unwinds cannot be
          // claimed yet: look past it rather than asking for it again and again
          const query = { limit: free + this.runs.size, heldTasks: held.tasks, heldGroups: held.groups, heldBackfills: held.backfills };
          // a store shared by several controllers reserves what this one is about to claim,
          // so that they do not all race for the same oldest instances
          const found = this.core.store.claimQueued
            ? await this.core.store.claimQueued({ ...query, owner: this.core.id, holdMs: this.core.leaseMs })
            : await this.core.store.queued(query);
          const candidates: Instance[] = [];
          for (const c of found) if (!this.runs.has(c.id) && candidates.length < free) candidates.push(c);
          if (candidates.length === 0) break;
          const claimed = await this.claimAll(candidates);
          // nothing claimable (lost races, a guard refusing 'start'): wait for the next notice or sweep
          if (claimed === 0) break;
        }
      } while (this.pumpAgain && !this.stopping);
    } catch (err) {
      this.hooks.error(err, 'dispatch');
    } finally {
      this.pumping = false;
    }
  }

  /** Claim candidates in one commit; if any of them changed meanwhile, claim them one by one. */
  private async claimAll(candidates: Instance[]): Promise<number> {
    if (candidates.length === 0 || this.stopping) return 0;
    if (candidates.length > 1) {
      const claims: Claim[] = [];
      const writes: VersionedWrite<Instance>[] = [];
      const audit: AuditEntry[] = [];
      for (const candidate of candidates) {
        const claim = this.prepareClaim(candidate);
        if (!claim) continue;
        claims.push(claim);
        writes.push(claim.write);
        audit.push(claim.entry);
      }
      if (claims.length === 0) return 0;
      try {
        await this.core.store.commit({ instances: writes, audit });
      } catch (err) {
        for (const claim of claims) this.rollbackClaim(claim);
        if (!isTaskControlError(err, 'CONFLICT')) throw err;
        let claimed = 0;
        for (const candidate of candidates) if (await this.claimOne(candidate)) claimed++;
        return claimed;
      }
      for (const claim of claims) this.launch(claim);
      return claims.length;
    }
    return (await this.claimOne(candidates[0])) ? 1 : 0;
  }

  private async claimOne(candidate: Instance): Promise<boolean> {
    if (this.stopping || this.runs.size >= this.concurrency) return false;
    const claim = this.prepareClaim(candidate);
    if (!claim) return false;
    try {
      await this.core.store.commit({ instances: [claim.write], audit: [claim.entry] });
    } catch (err) {
      this.rollbackClaim(claim);
      if (isTaskControlError(err, 'CONFLICT')) return false;
      throw err;
    }
    this.launch(claim);
    return true;
  }

  /** Build the queued -> running write and register the run (before the commit, so that a pause arriving with its notice finds it). */
  private prepareClaim(candidate: Instance): Claim | undefined {
    if (this.runs.has(candidate.id)) return undefined;
    const ms = this.core.nowMs();
    const outcome =
      this.core.machine.allowed(candidate.state, 'start') ??
      this.core.machine.apply('start', { instance: candidate, task: this.core.tasks.get(candidate.taskId), now: new Date(ms) });
    if (!outcome.ok) return undefined;
    const sleeper = this.suspended.get(candidate.id);
    const reattach = sleeper !== undefined && candidate.lease?.owner === this.core.id && candidate.lease.token === sleeper.token;
    const at = this.core.iso(ms);
    // a fencing token above every earlier one, even after the lease was cleared (pause,
    // requeue): the version only grows, so a former owner's token never matches again
    const token = Math.max(candidate.lease?.token ?? 0, candidate.version) + 1;
    const next = advance(
      candidate,
      outcome.to,
      {
        lease: { owner: this.core.id, token, expiresAt: this.leaseIso(ms + this.core.leaseMs) },
        startedAt: at,
        deadlineAt: undefined,
      },
      at,
    );
    const { write, entry } = buildTransition(this.core, candidate, next, 'start', this.claimMeta, ms);
    let run: Run;
    if (reattach) {
      run = sleeper;
      this.suspended.delete(candidate.id);
    } else {
      run = new Run(candidate.id, token, next);
    }
    const claim: Claim = { run, write, entry, reattach, oldToken: run.token };
    run.token = token;
    run.instance = next;
    run.pauseFlag = false;
    this.runs.set(candidate.id, run);
    return claim;
  }

  private rollbackClaim(claim: Claim): void {
    if (this.runs.get(claim.run.instanceId) === claim.run) this.runs.delete(claim.run.instanceId);
    if (claim.reattach) {
      claim.run.token = claim.oldToken;
      this.suspended.set(claim.run.instanceId, claim.run);
    }
  }

  private launch(claim: Claim): void {
    const run = claim.run;
    run.claimed = true;
    if (claim.reattach) {
      // the executor is still inside ctx.suspend(): wake it
      const waiter = run.suspendWaiter;
      run.suspendWaiter = undefined;
      waiter?.resolve();
      return;
    }
    // a pause or takeover committed meanwhile reached the run through its notice already;
    // concurrency is enforced by claiming: only `concurrency - running` instances are claimed
    this.inflight++;
    void this.execute(run, run.instance);
  }

  /** The checkpoint a local run saved last (for a forced pause or stop committed by a command). */
  localCheckpoint(instanceId: string): unknown {
    return this.runs.get(instanceId)?.checkpoint;
  }

  /** Forward an executor's progress report. */
  reportProgress(instance: Instance, done: number, total: number | undefined): void {
    this.hooks.progress(instance, done, total);
  }

  /** Commit pausing -> paused for a run that stays alive, and wait until it is resumed here. */
  async suspendRun(run: Run): Promise<void> {
    for (let tries = 0; tries < 50; tries++) {
      const current = await this.core.store.getInstance(run.instanceId);
      if (!current || current.lease?.token !== run.token) {
        run.abandon('lease_lost');
        throw run.abort.signal.reason;
      }
      if (current.state === 'running') return; // the pause was withdrawn meanwhile
      if (current.state !== 'pausing') throw run.aborted ? run.abort.signal.reason : new AbortReason(current.state);
      const verdict = this.core.machine.apply('pause_point', { instance: current, task: this.core.tasks.get(current.taskId), now: this.core.now() });
      if (!verdict.ok) throw new AbortReason(verdict.code);
      const next = advance(
        current,
        verdict.to,
        { deadlineAt: undefined, checkpoint: run.checkpoint, progress: run.progress ?? current.progress },
        this.core.now().toISOString(),
      );
      const { write, entry } = buildTransition(this.core, current, next, 'pause_point', { actor: 'system:executor', reason: 'suspended in place' });
      run.finishing = true;
      const woken = new Promise<void>((resolve, reject) => (run.suspendWaiter = { resolve, reject }));
      woken.catch(() => undefined);
      try {
        await this.core.store.commit({ instances: [write], audit: [entry] });
      } catch (err) {
        run.suspendWaiter = undefined;
        if (isTaskControlError(err, 'CONFLICT')) continue;
        throw err;
      } finally {
        run.finishing = false;
      }
      run.instance = next;
      run.pauseFlag = false;
      this.runs.delete(run.instanceId);
      this.suspended.set(run.instanceId, run);
      // no longer counted against concurrency: a suspended executor does no work
      this.schedulePump();
      return woken;
    }
    throw new AbortReason('conflict');
  }

  /** Run the executor, then hand the outcome to the next group commit (which cleans up after it). */
  private async execute(run: Run, instance: Instance): Promise<void> {
    let outcome: Outcome;
    try {
      const timeoutMs = this.core.tasks.get(instance.taskId)?.timeoutMs;
      if (timeoutMs !== undefined) this.armTimeout(run, timeoutMs);
      if (run.abandoned) throw run.abort.signal.reason;
      const value = await this.executor!.execute(new RunContext(run, instance, this));
      outcome = run.unwound ? UNWOUND : value === undefined ? OK_EMPTY : { kind: 'ok', value };
    } catch (error) {
      outcome = run.unwound || error instanceof PauseUnwind ? UNWOUND : { kind: 'error', error };
    }
    if (run.timeoutTimer !== undefined) this.core.timers.clearTimeout(run.timeoutTimer);
    this.finish(run, outcome);
  }

  /** Start the task's `timeoutMs` timer for a run (apart, so that execute() holds no closure). */
  private armTimeout(run: Run, timeoutMs: number): void {
    run.timeoutTimer = this.core.timers.setTimeout(() => void this.timeout(run), timeoutMs);
  }

  /** A run's outcome is committed (or could not be): free its slot and look for more work. */
  private settled(run: Run): void {
    if (this.runs.get(run.instanceId) === run) this.runs.delete(run.instanceId);
    if (this.suspended.get(run.instanceId) === run) this.dropSuspended(run);
    this.schedulePump();
    if (--this.inflight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** Resolves once no execution is in flight. */
  private idle(): Promise<void> {
    return this.inflight === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async lateResult(run: Run, outcome: Outcome): Promise<void> {
    const instance = run.instance;
    const entry: AuditEntry = {
      id: this.core.newId(),
      at: this.core.now().toISOString(),
      actor: `system:${this.core.id}`,
      kind: 'late_result',
      instanceId: instance.id,
      taskId: instance.taskId,
      attempt: instance.attempt,
      reason: run.abandoned ?? 'superseded',
      result:
        outcome.kind === 'ok'
          ? { outcome: 'succeeded', value: safeValue(outcome.value) }
          : outcome.kind === 'error'
            ? { outcome: 'failed', error: describeError(outcome.error) }
            : { outcome: 'paused' },
    };
    if (instance.backfillId !== undefined) entry.backfillId = instance.backfillId;
    await this.core.store.commit({ audit: [entry] });
  }

  /**
   * Commit a run's outcome. Outcomes that arrive together are committed together (one
   * batch); if that batch loses a race, each is retried on its own. Once the batch is
   * settled (errors go to the error hook), each run's slot is freed.
   */
  private finish(run: Run, outcome: Outcome): void {
    let batch = this.finishBatch;
    if (batch === undefined) {
      const created: FinishItem[] = [];
      batch = this.finishBatch = created;
      queueMicrotask(() => {
        this.finishBatch = undefined;
        void this.commitFinishes(created).finally(() => {
          for (let n = 0; n < created.length; n++) this.settled(created[n].run);
        });
      });
    }
    batch.push({ run, outcome });
  }

  private async commitFinishes(items: FinishItem[]): Promise<void> {
    const report = (err: unknown) => this.hooks.error(err, 'finish');
    let rest = items;
    const settling: (Promise<void> | undefined)[] = [];
    if (items.length > 1) {
      try {
        // a run's instance is current when the store's notices arrive with its commits (they
        // update it); other stores are read once for the whole batch, not once per run
        const current = this.core.store.synchronousNotices ? undefined : await this.readRuns(items);
        const planned: FinishPlan[] = [];
        const runs: Run[] = [];
        const unplanned: FinishItem[] = [];
        for (const item of items) {
          const plan = item.run.abandoned ? undefined : this.planFinish(item.run, item.outcome, current ? current.get(item.run.instanceId) : item.run.instance);
          if (plan) {
            planned.push(plan);
            runs.push(item.run);
          } else unplanned.push(item);
        }
        if (planned.length > 1) {
          for (const run of runs) run.finishing = true;
          const writes = new Array<VersionedWrite<Instance>>(planned.length);
          const audit = new Array<AuditEntry>(planned.length);
          for (let i = 0; i < planned.length; i++) {
            writes[i] = planned[i].write;
            audit[i] = planned[i].entry;
          }
          try {
            await this.core.store.commit({ instances: writes, audit });
          } catch (err) {
            for (const run of runs) run.finishing = false;
            if (!isTaskControlError(err, 'CONFLICT')) throw err;
            planned.length = 0; // lost a race: each one on its own below
          }
          for (const plan of planned) settling.push(this.afterSettledSafely(plan.next, report));
          if (planned.length > 0) rest = unplanned;
        }
      } catch (err) {
        items.forEach(() => report(err));
        return;
      }
    }
    for (const item of rest) settling.push(this.finishOne(item.run, item.outcome).catch(report));
    await Promise.all(settling);
  }

  /** {@link afterSettled}, with any error (thrown or rejected) reported instead of raised. */
  private afterSettledSafely(instance: Instance, report: (err: unknown) => void): Promise<void> | undefined {
    try {
      return this.afterSettled(instance)?.catch(report);
    } catch (err) {
      report(err);
      return undefined;
    }
  }

  /** The current instances of these runs, in one read. */
  private async readRuns(items: FinishItem[]): Promise<Map<string, Instance>> {
    const ids: string[] = [];
    for (const item of items) if (!item.run.abandoned) ids.push(item.run.instanceId);
    const current = new Map<string, Instance>();
    if (ids.length > 0) for (const i of (await this.core.store.listInstances({ ids, limit: ids.length })).items) current.set(i.id, i);
    return current;
  }

  /** The write that settles a run, or undefined when its instance has moved on without it. */
  private planFinish(run: Run, outcome: Outcome, current: Instance | undefined): FinishPlan | undefined {
    if (!current || current.lease?.token !== run.token || !ACTIVE.has(current.state)) return undefined;
    const ms = this.core.nowMs();
    const at = this.core.iso(ms);
    const task = this.core.tasks.get(current.taskId);
    let event: MachineEvent;
    const patch: Partial<Instance> = { lease: undefined, deadlineAt: undefined, progress: run.progress ?? current.progress };
    if (run.checkpoint !== undefined) patch.checkpoint = run.checkpoint;
    if (current.state === 'stopping') {
      event = 'exited';
      patch.endedAt = at;
    } else if (outcome.kind === 'unwound') {
      // paused if the pause still stands; queued to go on from the checkpoint if a resume
      // withdrew it while the executor was already unwinding
      event = 'pause_point';
    } else if (outcome.kind === 'ok') {
      event = 'succeed';
      patch.result = safeValue(outcome.value);
      patch.checkpoint = undefined;
      patch.endedAt = at;
    } else {
      event = 'fail';
      patch.error = describeError(outcome.error);
      patch.endedAt = at;
      if (current.attempt < (task?.maxAttempts ?? 1)) {
        patch.retryAt = new Date(ms + (task?.retryDelayMs ?? 0)).toISOString();
      }
    }
    const verdict = this.core.machine.allowed(current.state, event) ?? this.core.machine.apply(event, { instance: current, task, now: new Date(ms) });
    if (!verdict.ok) return undefined;
    const next = advance(current, verdict.to, patch, at);
    const { write, entry } = buildTransition(this.core, current, next, event, EXECUTOR_META, ms);
    if (event === 'succeed' && next.result !== undefined) entry.result = next.result;
    return { write, entry, next };
  }

  private async finishOne(run: Run, outcome: Outcome): Promise<void> {
    for (let tries = 0; ; tries++) {
      if (run.abandoned) return this.lateResult(run, outcome);
      const plan = this.planFinish(run, outcome, await this.core.store.getInstance(run.instanceId));
      if (!plan) {
        run.abandoned ??= 'superseded';
        return this.lateResult(run, outcome);
      }
      run.finishing = true;
      try {
        await this.core.store.commit({ instances: [plan.write], audit: [plan.entry] });
      } catch (err) {
        run.finishing = false;
        if (isTaskControlError(err, 'CONFLICT') && tries < 50) continue;
        throw err;
      }
      await this.afterSettled(plan.next);
      return;
    }
  }

  /**
   * What follows an instance settling: releasing downstream work, scheduling a retry.
   * Undefined when there is nothing to wait for (most settled instances).
   */
  afterSettled(instance: Instance): Promise<void> | undefined {
    if (instance.state === 'succeeded' || instance.state === 'skipped') return this.hooks.released(instance);
    if (instance.state === 'failed') {
      if (instance.retryAt === undefined) return this.hooks.failedForGood?.(instance);
      const delay = Date.parse(instance.retryAt) - this.core.timers.now();
      if (delay <= 0) return this.retry(instance.id);
      this.core.timers.setTimeout(() => void this.retry(instance.id).catch((e) => this.hooks.error(e, 'retry')), delay);
      return undefined;
    }
    if (instance.state === 'stopped') return this.hooks.failedForGood?.(instance);
    return undefined;
  }

  /** Move a failed instance whose retry is due back to queued with attempt + 1. */
  async retry(instanceId: string): Promise<void> {
    for (let tries = 0; tries < 20; tries++) {
      const current = await this.core.store.getInstance(instanceId);
      if (!current || current.state !== 'failed' || current.retryAt === undefined) return;
      const now = this.core.now();
      if (Date.parse(current.retryAt) > now.getTime()) return;
      const task = this.core.tasks.get(current.taskId);
      const verdict = this.core.machine.apply('retry', { instance: current, task, now });
      if (!verdict.ok) return;
      const next = advance(
        current,
        verdict.to,
        // a retry is a new attempt, like a rerun: it starts from the beginning, without a checkpoint
        { attempt: current.attempt + 1, retryAt: undefined, error: undefined, endedAt: undefined, progress: undefined, checkpoint: undefined },
        now.toISOString(),
      );
      const { write, entry } = buildTransition(this.core, current, next, 'retry', {
        actor: 'system:retry',
        reason: `attempt ${current.attempt} failed: ${current.error?.code ?? 'error'}`,
      });
      try {
        await this.core.store.commit({ instances: [write], audit: [entry] });
        return;
      } catch (err) {
        if (!isTaskControlError(err, 'CONFLICT')) throw err;
      }
    }
  }

  private async timeout(run: Run): Promise<void> {
    try {
      await this.transitionIf(run.instanceId, ['running', 'pausing'], 'timeout', 'system:timeout', (current) => {
        const task = this.core.tasks.get(current.taskId);
        const now = this.core.now();
        return {
          lease: undefined,
          deadlineAt: undefined,
          endedAt: now.toISOString(),
          error: { code: 'TIMEOUT', message: `attempt ${current.attempt} ran longer than timeoutMs ${task?.timeoutMs}` },
          retryAt:
            current.attempt < (task?.maxAttempts ?? 1)
              ? new Date(now.getTime() + (task?.retryDelayMs ?? 0)).toISOString()
              : undefined,
        };
      }, run.token);
    } catch (err) {
      this.hooks.error(err, 'timeout');
    }
  }

  /**
   * Apply `event` to an instance if it is in one of `states` (and, if given, still held
   * under lease `token`). Re-reads and retries on a lost race. Returns the new instance.
   */
  async transitionIf(
    instanceId: string,
    states: InstanceState[],
    event: MachineEvent,
    actor: string,
    patch: (current: Instance) => Partial<Instance>,
    token?: number,
    meta: Partial<TransitionMeta> = {},
  ): Promise<Instance | undefined> {
    for (let tries = 0; tries < 50; tries++) {
      const current = await this.core.store.getInstance(instanceId);
      if (!current || !states.includes(current.state)) return undefined;
      if (token !== undefined && current.lease?.token !== token) return undefined;
      const now = this.core.now();
      const task = this.core.tasks.get(current.taskId);
      const verdict = this.core.machine.apply(event, { instance: current, task, now });
      if (!verdict.ok) return undefined;
      const next = advance(current, verdict.to, patch(current), now.toISOString());
      const { write, entry } = buildTransition(this.core, current, next, event, { ...meta, actor });
      try {
        await this.core.store.commit({ instances: [write], audit: [entry] });
      } catch (err) {
        if (isTaskControlError(err, 'CONFLICT')) continue;
        throw err;
      }
      await this.afterSettled(next);
      return next;
    }
    return undefined;
  }

  private dropSuspended(run: Run): void {
    if (this.suspended.get(run.instanceId) !== run) return;
    this.suspended.delete(run.instanceId);
  }

  // -- reacting to commits (ours and other processes') -------------------------------------

  /** Called for every store notice: turn committed states into signals for local runs. */
  onNotice(notice: StoreNotice): void {
    let queued = false;
    const instances = notice.instances;
    for (let n = 0; n < instances.length; n++) {
      const instance = instances[n];
      if (instance.state === 'queued') queued = true;
      const sleeper = this.suspended.get(instance.id);
      if (sleeper && !sleeper.finishing) {
        // a shared store delivers other processes' commits after this process may have read
        // (and claimed) a newer version: an older version than the run's is old news
        if (instance.version < sleeper.instance.version) continue;
        const ours = instance.lease?.owner === this.core.id && instance.lease.token === sleeper.token;
        if (!ours || (instance.state !== 'paused' && instance.state !== 'queued')) {
          this.dropSuspended(sleeper);
          sleeper.abandon(abandonReason(instance));
        }
        continue;
      }
      const run = this.runs.get(instance.id);
      if (!run || run.finishing) continue;
      if (instance.version < run.instance.version) continue;
      if (instance.lease?.token !== run.token || !ACTIVE.has(instance.state)) {
        run.abandon(abandonReason(instance));
        continue;
      }
      run.instance = instance;
      if (instance.state === 'pausing') {
        run.requestPause();
      } else if (instance.state === 'running') {
        run.pauseFlag = false;
      } else if (instance.state === 'stopping' && !run.aborted) {
        run.abort.abort(new AbortReason('stop'));
      }
      this.watchDeadline(instance);
    }
    if (queued) this.schedulePump();
  }

  private watchDeadline(instance: Instance): void {
    const existing = this.deadlineTimers.get(instance.id);
    if (existing !== undefined) {
      this.core.timers.clearTimeout(existing);
      this.deadlineTimers.delete(instance.id);
    }
    if (instance.deadlineAt === undefined) return;
    const delay = Math.max(0, Date.parse(instance.deadlineAt) - this.core.timers.now());
    this.deadlineTimers.set(
      instance.id,
      this.core.timers.setTimeout(() => {
        this.deadlineTimers.delete(instance.id);
        void this.enforceDeadline(instance.id).catch((err) => this.hooks.error(err, 'deadline'));
      }, delay),
    );
  }

  /** A pausing or stopping instance whose deadline passed is forced to paused or stopped. */
  async enforceDeadline(instanceId: string): Promise<void> {
    const current = await this.core.store.getInstance(instanceId);
    if (!current?.deadlineAt || Date.parse(current.deadlineAt) > this.core.timers.now()) return;
    if (current.state === 'pausing') {
      await this.transitionIf(instanceId, ['pausing'], 'force_pause', 'system:grace', (c) => ({
        lease: undefined,
        deadlineAt: undefined,
        checkpoint: this.runs.get(instanceId)?.checkpoint ?? c.checkpoint,
      }), undefined, { reason: 'graceMs passed without a pause point' });
    } else if (current.state === 'stopping') {
      await this.transitionIf(instanceId, ['stopping'], 'abandon', 'system:grace', (c) => ({
        lease: undefined,
        deadlineAt: undefined,
        endedAt: this.core.now().toISOString(),
        checkpoint: this.runs.get(instanceId)?.checkpoint ?? c.checkpoint,
      }), undefined, { reason: 'graceMs passed before the executor exited' });
    }
  }

  // -- housekeeping: leases, deadlines, retries, recovery ---------------------------------

  private scheduleSweep(): void {
    if (!this.started || this.stopping) return;
    this.sweepHandle = this.core.timers.setTimeout(() => {
      void this.sweep()
        .catch((err) => this.hooks.error(err, 'sweep'))
        .finally(() => this.scheduleSweep());
    }, this.pollMs);
    unrefTimer(this.sweepHandle);
  }

  /** One round of housekeeping; also what `start()` runs first (recovery). */
  async sweep(): Promise<void> {
    const now = this.core.now();
    const iso = now.toISOString();
    // a run whose claim is still being committed (a slow or shared store) holds no lease yet
    const held = [...this.runs.values()].filter((run) => run.claimed);
    if (held.length > 0) {
      const kept = await this.core.store.renewLeases(
        this.core.id,
        held.map((run) => run.instanceId),
        new Date(now.getTime() + this.core.leaseMs).toISOString(),
      );
      const keptSet = new Set(kept);
      for (const run of held) if (!keptSet.has(run.instanceId) && !run.finishing) run.abandon('lease_lost');
    }
    for (const instance of await this.core.store.expiredDeadlines(iso, 500)) await this.enforceDeadline(instance.id);
    for (const instance of await this.core.store.expiredLeases(iso, 500)) {
      if (this.runs.has(instance.id)) continue;
      await this.recover(instance);
    }
    for (const instance of await this.core.store.dueRetries(iso, 500)) await this.retry(instance.id);
    await this.hooks.sweep?.();
    this.schedulePump();
  }

  /** Finish what a controller that is gone left running (API.md, Recovery). */
  private async recover(instance: Instance, actor = 'system:recovery', reason?: string): Promise<void> {
    const why = reason ?? `lease of ${instance.lease?.owner ?? 'an unknown owner'} expired`;
    const task = this.core.tasks.get(instance.taskId);
    const endedAt = this.core.now().toISOString();
    if (instance.state === 'stopping') {
      await this.transitionIf(instance.id, ['stopping'], 'recover', actor, () => ({ lease: undefined, deadlineAt: undefined, endedAt }), instance.lease?.token, { reason: why });
    } else if (instance.state === 'pausing') {
      await this.transitionIf(instance.id, ['pausing'], 'recover', actor, () => ({ lease: undefined, deadlineAt: undefined }), instance.lease?.token, { reason: why });
    } else if (instance.state === 'running') {
      if (instance.attempt < (task?.maxAttempts ?? 1)) {
        await this.transitionIf(instance.id, ['running'], 'requeue', actor, (c) => ({
          lease: undefined,
          attempt: c.attempt + 1,
          progress: undefined,
          startedAt: undefined,
          checkpoint: undefined,
        }), instance.lease?.token, { reason: why });
      } else {
        await this.transitionIf(instance.id, ['running'], 'recover_fail', actor, () => ({
          lease: undefined,
          endedAt,
          error: { code: 'ABANDONED', message: `attempt ${instance.attempt} was lost: ${why}` },
        }), instance.lease?.token, { reason: why });
      }
    }
  }

  /** Stop dispatching; wait up to `graceMs` for runs; then abort the rest and hand them back. */
  async shutdown(graceMs: number): Promise<void> {
    if (!this.started) return;
    this.stopping = true;
    if (this.sweepHandle !== undefined) this.core.timers.clearTimeout(this.sweepHandle);
    for (const timer of this.deadlineTimers.values()) this.core.timers.clearTimeout(timer);
    this.deadlineTimers.clear();
    const idle = this.idle();
    if (this.runs.size > 0 && graceMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([idle, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    for (const sleeper of [...this.suspended.values()]) {
      this.dropSuspended(sleeper);
      sleeper.abandon('shutdown');
    }
    const left = [...this.runs.values()];
    for (const run of left) {
      run.abandon('shutdown');
      const current = await this.core.store.getInstance(run.instanceId);
      if (current && current.lease?.token === run.token) {
        const actor = `system:${this.core.id}`;
        const handBack =
          current.state === 'running'
            ? // a deploy is not the work's fault: hand the attempt back without counting it against maxAttempts
              this.transitionIf(current.id, ['running'], 'release', actor, (c) => ({
                lease: undefined,
                attempt: c.attempt + 1,
                progress: undefined,
                startedAt: undefined,
                checkpoint: run.checkpoint ?? c.checkpoint,
              }), run.token, { reason: 'the controller shut down' })
            : this.recover(current, actor, 'the controller shut down');
        await handBack.catch((err) => this.hooks.error(err, 'shutdown'));
      }
    }
    let last: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise((resolve) => (last = setTimeout(resolve, 1000)))]);
    clearTimeout(last);
    this.started = false;
  }
}

function abandonReason(instance: Instance): string {
  switch (instance.state) {
    case 'paused':
      return 'force_pause';
    case 'stopped':
      return 'stop';
    case 'failed':
      return instance.error?.code === 'TIMEOUT' ? 'timeout' : 'failed';
    default:
      return 'lease_lost';
  }
}

/** An error as the audit trail and the instance keep it. */
export function describeError(error: unknown): { code: string; message: string } {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { code: typeof code === 'string' && code ? code : 'EXECUTOR_ERROR', message: error.message };
  }
  return { code: 'EXECUTOR_ERROR', message: typeof error === 'string' ? error : JSON.stringify(error) ?? String(error) };
}

/** A value safe to keep in a store (JSON-able); anything else is described instead. */
function safeValue(value: unknown): unknown {
  if (value === undefined || value === null) return value;
  try {
    return JSON.parse(JSON.stringify(value)) as unknown;
  } catch {
    return String(value);
  }
}

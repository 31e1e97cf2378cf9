import PQueue from 'p-queue';
import { TaskControlError, isTaskControlError, type ValidationIssue } from '../errors.js';
import { backfillOptionsSchema } from '../schemas.js';
import type { BackfillRecord, StateStore } from '../store/state-store.js';
import { emptyCounts } from '../store/memory-store.js';
import {
  isTerminal,
  type AuditEntry,
  type BackfillStatus,
  type Instance,
  type InstanceState,
  type TaskDefinition,
  type TransitionEvent,
} from '../types.js';
import { BackfillPlanner, type BackfillPlannerOptions, type Slot } from './planner.js';

/** What a backfill needs from its controller. Internal. */
export interface BackfillHost {
  readonly store: StateStore;
  task(taskId: string): TaskDefinition | undefined;
  /** Task ids that depend on `taskId`, transitively, in dependency order. */
  downstreamTasks(taskId: string): string[];
  createInstance(
    task: TaskDefinition,
    o: { params?: Record<string, unknown>; logicalDate: string; actor?: string; backfillId: string },
  ): Promise<Instance>;
  /**
   * Rerun existing instances on behalf of the backfill (they then belong to it).
   * Returns the ids that were rerun (a lost race leaves an instance out).
   */
  rerunFor(backfillId: string, instanceIds: string[], params: Record<string, unknown>, actor: string): Promise<string[]>;
  /**
   * An upstream instance that finished before its downstream instance existed: release
   * (succeeded, skipped) or stop with `UPSTREAM_FAILED` (failed for good, stopped) its
   * pending downstream instances of the same date, as its own finish would have.
   */
  upstreamFinished(instance: Instance): Promise<void>;
  /** Stop the backfill's unfinished instances. False when the stop was not applied now (it awaits an approval). */
  stopAll(backfillId: string, actor: string): Promise<boolean>;
  setHeld(backfillId: string, held: boolean): void;
  emit(status: BackfillStatus): void;
  now(): Date;
  newId(): string;
  onTransition(listener: (e: TransitionEvent) => void): () => void;
  error(err: unknown): void;
  /** False once the controller has shut down: the run then stops driving (another controller carries it on). */
  active(): boolean;
  /** The run no longer drives its backfill (shutdown): forget it. */
  detached(run: BackfillRun): void;
}

/**
 * Whether an instance is finished as far as its backfill is concerned: terminal, and not a
 * failed attempt waiting for its automatic retry (that one runs again).
 */
function finished(instance: Pick<Instance, 'state' | 'retryAt'>): boolean {
  return isTerminal(instance.state) && !(instance.state === 'failed' && instance.retryAt !== undefined);
}

const REPROCESSABLE: Record<BackfillRecord['reprocess'], (state: InstanceState) => boolean> = {
  none: () => false,
  failed: (s) => s === 'failed' || s === 'stopped',
  all: (s) => isTerminal(s),
};

/**
 * A backfill as one unit: creates its instances as slots come due (never more than its
 * concurrency ahead), waits for each slot's instances to finish, and can be paused,
 * resumed and cancelled. Its progress is kept in the store, so another controller can
 * carry it on after a restart.
 */
export class BackfillRun {
  private record: BackfillRecord;
  private readonly queue: PQueue;
  private readonly counts: Record<InstanceState, number>;
  /** Instances of this backfill not finished yet (see `finished`), per instance id. */
  private readonly open = new Map<string, InstanceState>();
  /** Who waits for an instance to finish (a slot, a restart's adopted instance, a cancel). */
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly planner: BackfillPlanner;
  private unsubscribe: (() => void) | undefined;
  private resolveDone!: (s: BackfillStatus) => void;
  readonly done: Promise<BackfillStatus>;
  private feeding = false;
  private emitScheduled = false;
  private lastEmitted = '';
  /** Slot indexes created beyond the contiguous prefix recorded as `nextIndex`. */
  private readonly createdAhead = new Set<number>();
  private progressChain: Promise<void> = Promise.resolve();
  /** Set at once (before the record is written) when the run stops driving: cancelled, or detached at shutdown. */
  private halted: 'cancelled' | 'detached' | undefined;
  /** True from the moment `pause()` is called until `resume()` has taken effect. */
  private holding: boolean;
  /** Released by resume, cancel and detach: what slots waiting at a pause wait for. */
  private gate: { promise: Promise<void>; open: () => void } | undefined;
  /** pause/resume/cancel, one at a time, in call order. */
  private ops: Promise<unknown> = Promise.resolve();
  private finishing: Promise<void> | undefined;
  /** Creations and reruns under way: `pause()` waits for them, so that nothing is created after it resolves. */
  private readonly writing = new Set<Promise<unknown>>();
  /** Whether instances left open by an earlier driver (a restart) have been given queue slots. */
  private adopted = false;

  constructor(
    private readonly host: BackfillHost,
    record: BackfillRecord,
    counts: Record<InstanceState, number>,
  ) {
    this.record = record;
    this.counts = counts;
    this.holding = record.state === 'paused';
    this.planner = new BackfillPlanner({ schedule: record.schedule, from: record.from, to: record.to, order: record.order });
    this.queue = new PQueue({ concurrency: record.mode === 'serial' ? 1 : record.concurrency, autoStart: record.state === 'running' });
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get id(): string {
    return this.record.id;
  }

  get state(): BackfillRecord['state'] {
    return this.record.state;
  }

  /** True once the run stopped driving its backfill because its controller shut down. */
  get isDetached(): boolean {
    return this.halted === 'detached';
  }

  status(): BackfillStatus {
    return { id: this.record.id, taskId: this.record.taskId, state: this.record.state, total: this.record.total, counts: { ...this.counts } };
  }

  /** Begin (or carry on) creating and awaiting slots from `record.nextIndex`. */
  async start(): Promise<void> {
    this.unsubscribe = this.host.onTransition((e) => this.onTransition(e));
    // instances of this backfill that already exist (a restart) and are still open
    for (let cursor: string | undefined; ; ) {
      const page = await this.host.store.listInstances({ backfillId: this.record.id, limit: 1000, cursor });
      for (const i of page.items) if (!finished(i)) this.open.set(i.id, i.state);
      if (!page.cursor) break;
      cursor = page.cursor;
    }
    if (this.record.state === 'paused') this.host.setHeld(this.record.id, true);
    this.emit();
    if (this.record.state === 'running') {
      if (this.record.total === 0 || this.allDone()) await this.complete('completed');
      else void this.feed();
    }
  }

  private onTransition(e: TransitionEvent): void {
    if (e.backfillId !== this.record.id) return;
    if (e.from !== 'none') this.counts[e.from]--;
    this.counts[e.to]++;
    this.scheduleEmit();
    if (!this.halted && !this.host.active()) this.detach();
    if (e.to === 'failed') {
      // failed, but perhaps with an automatic retry due: only the instance tells
      this.open.set(e.instanceId, e.to);
      this.host.store.getInstance(e.instanceId).then(
        (current) => {
          if (!current || finished(current)) this.closed(e.instanceId);
        },
        (err) => this.host.error(err),
      );
    } else if (isTerminal(e.to)) {
      this.closed(e.instanceId);
    } else {
      this.open.set(e.instanceId, e.to);
    }
  }

  /** An instance of this backfill is finished. */
  private closed(instanceId: string): void {
    if (!this.open.delete(instanceId)) return;
    this.wake(instanceId);
    this.maybeComplete();
  }

  private wake(instanceId: string): void {
    const waiting = this.waiters.get(instanceId);
    if (!waiting) return;
    this.waiters.delete(instanceId);
    for (const waiter of waiting) waiter();
  }

  /** Resolves when every given instance is finished (or the waiters are released). */
  private waitAll(ids: string[]): Promise<void> {
    if (ids.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let left = ids.length;
      for (const id of ids) {
        let set = this.waiters.get(id);
        if (!set) this.waiters.set(id, (set = new Set()));
        set.add(() => {
          if (--left === 0) resolve();
        });
      }
    });
  }

  /** Every slot created and every instance finished. */
  private allDone(): boolean {
    return this.record.nextIndex >= this.record.total && this.open.size === 0;
  }

  private maybeComplete(): void {
    if (!this.halted && !this.holding && this.record.state === 'running' && this.allDone()) {
      this.complete('completed').catch((err) => this.host.error(err));
    }
  }

  private scheduleEmit(): void {
    if (this.emitScheduled) return;
    this.emitScheduled = true;
    queueMicrotask(() => {
      this.emitScheduled = false;
      this.emit();
    });
  }

  /** Emit the status, unless it is the one emitted last (events report changes). */
  private emit(): void {
    const status = this.status();
    const key = JSON.stringify(status);
    if (key === this.lastEmitted) return;
    this.lastEmitted = key;
    this.host.emit(status);
  }

  /** Wait until every given instance is finished (at once when the run is halted). */
  private async settled(ids: string[]): Promise<void> {
    if (this.halted) return;
    await this.untilFinished(ids);
  }

  /** Wait until every given instance that is open is finished. */
  private async untilFinished(ids: string[]): Promise<void> {
    const pending = [...new Set(ids)].filter((id) => this.open.has(id));
    if (pending.length === 0) return;
    const all = this.waitAll(pending);
    // an instance may have finished before this run heard of it (its creation event
    // arriving late): ask the store once
    for (const id of pending) {
      const current = await this.host.store.getInstance(id);
      if (!current || finished(current)) this.closed(id);
    }
    await all;
  }

  /** Release everything waiting on instances or on a resume (cancel, detach). */
  private releaseWaiters(): void {
    for (const id of [...this.waiters.keys()]) this.wake(id);
    this.gate?.open();
    this.gate = undefined;
  }

  /**
   * Before each step that creates or reruns instances: wait while the backfill is paused.
   * False when the run is halted (cancelled, or its controller shut down): create nothing.
   */
  private async mayProceed(): Promise<boolean> {
    if (!this.halted && !this.host.active()) this.detach();
    while (!this.halted && this.holding) {
      if (!this.gate) {
        let open!: () => void;
        const promise = new Promise<void>((resolve) => (open = resolve));
        this.gate = { promise, open };
      }
      await this.gate.promise;
    }
    return !this.halted;
  }

  /** Keep the queue fed with at most `concurrency` slots waiting beyond the running ones. */
  private async feed(): Promise<void> {
    if (this.feeding || this.halted) return;
    this.feeding = true;
    try {
      if (!this.adopted) {
        this.adopted = true;
        await this.adoptOpen();
      }
      const slots = this.planner.slots();
      for (let skip = this.record.nextIndex; skip > 0; skip--) slots.next();
      while (!this.halted) {
        if (this.queue.size >= this.queue.concurrency) {
          await this.queue.onSizeLessThan(this.queue.concurrency);
          continue;
        }
        const next = slots.next();
        if (next.done) break;
        const slot = next.value;
        void this.queue.add(() => this.runSlot(slot).catch((err) => this.slotFailed(slot, err))).catch((err) => this.host.error(err));
      }
      await this.queue.onIdle();
    } catch (err) {
      this.host.error(err);
    } finally {
      this.feeding = false;
    }
    this.maybeComplete();
  }

  /**
   * Instances an earlier driver left unfinished (a restart) take queue slots first, one per
   * logical date, so that the backfill's concurrency (one at a time in serial mode) holds
   * across the restart.
   */
  private async adoptOpen(): Promise<void> {
    const groups = new Map<string, string[]>();
    for (const id of [...this.open.keys()]) {
      const instance = await this.host.store.getInstance(id);
      if (!instance || finished(instance)) continue;
      const key = instance.logicalDate ?? id;
      groups.set(key, [...(groups.get(key) ?? []), id]);
    }
    for (const ids of groups.values()) void this.queue.add(() => this.settled(ids)).catch((err) => this.host.error(err));
  }

  /** Create (or reprocess) the slot's instances, then wait for them to finish. */
  private async runSlot(slot: Slot): Promise<void> {
    if (!(await this.mayProceed())) return;
    const taskIds = [this.record.taskId, ...(this.record.includeDownstream ? this.host.downstreamTasks(this.record.taskId) : [])];
    const ids: string[] = [];
    const rerun: { id: string; state: InstanceState }[] = [];
    for (const taskId of taskIds) {
      const task = this.host.task(taskId);
      if (!task) continue;
      if (!(await this.mayProceed())) return;
      const existing = await this.host.store.findInstance(taskId, slot.logicalDate);
      if (existing) {
        if (existing.backfillId === this.record.id) {
          ids.push(existing.id);
          if (!finished(existing)) this.open.set(existing.id, existing.state);
        } else if (REPROCESSABLE[this.record.reprocess](existing.state)) {
          rerun.push({ id: existing.id, state: existing.state });
        }
        continue;
      }
      if (!(await this.mayProceed())) return;
      const created = await this.tracked(
        this.host.createInstance(task, {
          params: taskId === this.record.taskId ? this.record.params : undefined,
          logicalDate: slot.logicalDate,
          actor: this.record.actor ?? `system:backfill`,
          backfillId: this.record.id,
        }),
      );
      if (created.backfillId === this.record.id) {
        ids.push(created.id);
        if (!isTerminal(created.state)) this.open.set(created.id, created.state);
      } else if (REPROCESSABLE[this.record.reprocess](created.state)) {
        // another writer created the date meanwhile: treat it as a pre-existing instance
        rerun.push({ id: created.id, state: created.state });
      }
    }
    if (rerun.length > 0) {
      if (!(await this.mayProceed())) return;
      // they join this backfill: count them in their current state, so that the rerun moves the counts
      for (const r of rerun) {
        this.counts[r.state]++;
        this.open.set(r.id, 'queued');
      }
      let applied: Set<string>;
      try {
        applied = new Set(await this.tracked(this.host.rerunFor(this.record.id, rerun.map((r) => r.id), this.record.params, this.record.actor ?? 'system:backfill')));
      } catch (err) {
        applied = new Set();
        this.host.error(err);
      }
      for (const r of rerun) {
        if (applied.has(r.id)) {
          ids.push(r.id);
        } else {
          // not rerun (it moved on meanwhile): it stays out of this backfill
          this.counts[r.state]--;
          this.open.delete(r.id);
        }
      }
      this.scheduleEmit();
    }
    if (taskIds.length > 1) {
      // an upstream instance may have finished before its downstream one was created
      for (const taskId of taskIds.slice(0, -1)) {
        const upstream = await this.host.store.findInstance(taskId, slot.logicalDate);
        if (upstream && finished(upstream)) await this.host.upstreamFinished(upstream);
      }
    }
    await this.created(slot.index);
    await this.settled(ids);
  }

  private tracked<T>(p: Promise<T>): Promise<T> {
    this.writing.add(p);
    const done = () => this.writing.delete(p);
    p.then(done, done);
    return p;
  }

  /**
   * A slot whose instances could not be created (a host guard refused, the store failed):
   * reported as an `error` event and passed over, so that the backfill still completes. The
   * date is left without an instance (`total` minus the counts shows it); a second backfill
   * over the range (reprocess `none`) creates just what is missing.
   */
  private async slotFailed(slot: Slot, err: unknown): Promise<void> {
    this.host.error(err);
    if (!this.halted) await this.created(slot.index);
  }

  /**
   * Record that a slot's instances exist. `nextIndex` only moves over a contiguous prefix,
   * so a restart never skips a slot (and re-finds, by its unique date, any created beyond it).
   */
  private created(index: number): Promise<void> {
    this.createdAhead.add(index);
    // (a failed write is reported to its slot; the next one starts afresh)
    this.progressChain = this.progressChain.catch(() => undefined).then(async () => {
      let next = this.record.nextIndex;
      while (this.createdAhead.delete(next)) next++;
      if (next > this.record.nextIndex) this.record = await this.update((r) => ({ nextIndex: Math.max(r.nextIndex, next) }));
    });
    return this.progressChain;
  }

  /**
   * Write a change to the backfill's record (with an audit entry, for a command on it),
   * re-reading and re-applying it on a lost race.
   */
  private async update(change: (r: BackfillRecord) => Partial<BackfillRecord>, command?: { action: string; actor: string }): Promise<BackfillRecord> {
    for (let tries = 0; ; tries++) {
      const at = this.host.now().toISOString();
      const next: BackfillRecord = {
        ...this.record,
        ...change(this.record),
        updatedAt: at,
        version: this.record.version + 1,
      };
      const audit: AuditEntry[] = [];
      if (command) {
        const id = this.host.newId();
        audit.push({
          id,
          at,
          actor: command.actor,
          kind: 'command',
          action: command.action,
          commandId: id,
          taskId: this.record.taskId,
          backfillId: this.record.id,
          target: { backfillId: this.record.id },
          taskIds: [this.record.taskId],
          result: { backfillId: this.record.id, from: this.record.state, to: next.state },
        });
      }
      try {
        await this.host.store.commit({ backfills: [{ next, expectedVersion: this.record.version }], audit });
        // a write that finished after this one must not be undone by assigning an older record
        return next.version >= this.record.version ? next : this.record;
      } catch (err) {
        const latest = await this.host.store.getBackfill(this.record.id);
        if (!latest || tries > 20) throw err;
        this.record = latest;
      }
    }
  }

  /** Run handle operations one at a time, in call order. */
  private serially(fn: () => Promise<void>): Promise<void> {
    const next = this.ops.then(fn);
    this.ops = next.catch(() => undefined);
    return next;
  }

  pause(actor: string): Promise<void> {
    return this.serially(async () => {
      if (this.halted || this.record.state !== 'running') return;
      this.holding = true;
      this.queue.pause();
      this.host.setHeld(this.record.id, true);
      this.record = await this.update(() => ({ state: 'paused' }), { action: 'pause', actor });
      // a creation that was under way when the pause came lands before pause() resolves
      await Promise.allSettled([...this.writing]);
      this.emit();
    });
  }

  resume(actor: string): Promise<void> {
    return this.serially(async () => {
      if (this.halted || this.record.state !== 'paused') return;
      this.record = await this.update(() => ({ state: 'running' }), { action: 'resume', actor });
      this.holding = false;
      this.gate?.open();
      this.gate = undefined;
      this.host.setHeld(this.record.id, false);
      this.queue.start();
      this.emit();
      if (this.allDone()) this.maybeComplete();
      else void this.feed();
    });
  }

  /**
   * Create nothing more, stop the backfill's unfinished instances, and record it cancelled.
   * Resolves once the stop is applied; `done` resolves when every instance is terminal.
   */
  cancel(actor: string): Promise<void> {
    return this.serially(async () => {
      if (this.halted || this.record.state === 'cancelled' || this.record.state === 'completed') return;
      this.halted = 'cancelled';
      // nothing of it is dispatched while it is being stopped
      this.host.setHeld(this.record.id, true);
      this.queue.clear();
      this.releaseWaiters();
      this.queue.start();
      // slots in flight see `halted` at their next step; wait for them, so that the stop
      // below also reaches anything they created meanwhile
      await this.queue.onIdle();
      this.record = await this.update(() => ({ state: 'cancelled' }), { action: 'cancel', actor });
      this.emit();
      // a stop that awaits approval leaves its instances to finish: hold them no longer
      if (!(await this.host.stopAll(this.record.id, actor))) this.host.setHeld(this.record.id, false);
      void this.complete('cancelled').catch((err) => this.host.error(err));
    });
  }

  /**
   * Record the final state, then (for a cancel) wait until the stopped instances are
   * terminal, and resolve `done`.
   */
  private complete(state: 'completed' | 'cancelled'): Promise<void> {
    return (this.finishing ??= (async () => {
      if (this.record.state !== state) {
        if (this.record.state === 'completed' || this.record.state === 'cancelled') return;
        this.record = await this.update(() => ({ state }));
      }
      this.emit();
      await this.untilFinished([...this.open.keys()]);
      this.unsubscribe?.();
      this.unsubscribe = undefined;
      this.host.setHeld(this.record.id, false);
      this.emit();
      this.resolveDone(this.status());
    })());
  }

  /**
   * Extend this controller's hold on the backfill. If another controller adopted it meanwhile
   * (this one was stalled past its lease), stop driving it.
   */
  async renewLease(owner: string, until: string): Promise<void> {
    if (this.halted) return;
    const latest = await this.host.store.getBackfill(this.record.id);
    if (!latest || latest.state === 'completed' || latest.state === 'cancelled') return;
    if (latest.owner !== undefined && latest.owner !== owner) {
      this.detach();
      return;
    }
    this.record = await this.update(() => ({ owner, leaseExpiresAt: until }));
  }

  /** Give up the hold (on shutdown), so that another controller may adopt the backfill at once. */
  async releaseLease(owner: string): Promise<void> {
    const latest = await this.host.store.getBackfill(this.record.id);
    if (!latest || latest.owner !== owner || latest.state === 'completed' || latest.state === 'cancelled') return;
    this.record = await this.update(() => ({ owner: undefined, leaseExpiresAt: undefined }));
  }

  /** Stop driving this backfill (controller shutdown); its record stays as it is. */
  detach(): void {
    if (this.halted) return;
    this.halted = 'detached';
    this.queue.pause();
    this.queue.clear();
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.releaseWaiters();
    this.host.setHeld(this.record.id, false);
    this.host.detached(this);
  }
}

/** How a backfill's reprocess policies would treat its range (for dry runs). */
export async function planReprocess(
  store: StateStore,
  planner: BackfillPlanner,
  taskId: string,
): Promise<Record<BackfillRecord['reprocess'], { wouldCreate: number; wouldRerun: number; wouldSkip: number }>> {
  const existing = new Map<string, InstanceState>();
  for (let cursor: string | undefined; ; ) {
    const page = await store.listInstances({ taskId, limit: 1000, cursor });
    for (const i of page.items) if (i.logicalDate !== undefined) existing.set(i.logicalDate, i.state);
    if (!page.cursor) break;
    cursor = page.cursor;
  }
  const out = {
    none: { wouldCreate: 0, wouldRerun: 0, wouldSkip: 0 },
    failed: { wouldCreate: 0, wouldRerun: 0, wouldSkip: 0 },
    all: { wouldCreate: 0, wouldRerun: 0, wouldSkip: 0 },
  };
  const total = planner.count();
  if (existing.size === 0) {
    for (const p of Object.values(out)) p.wouldCreate = total;
    return out;
  }
  let found = 0;
  for (const slot of planner.slots()) {
    const state = existing.get(slot.logicalDate);
    if (state === undefined) continue;
    found++;
    for (const policy of ['none', 'failed', 'all'] as const) {
      if (REPROCESSABLE[policy](state)) out[policy].wouldRerun++;
      else out[policy].wouldSkip++;
    }
  }
  for (const p of Object.values(out)) p.wouldCreate = total - found;
  return out;
}

/**
 * Throw `VALIDATION` naming every option `backfill()` does not know, as `['options', key]`
 * (a strict zod object names only `['options']`).
 */
export function assertKnownOptions(options: unknown): void {
  if (typeof options !== 'object' || options === null) return;
  const known = backfillOptionsSchema.shape;
  const unknown = Object.keys(options).filter((k) => !Object.prototype.hasOwnProperty.call(known, k));
  if (unknown.length === 0) return;
  const issues: ValidationIssue[] = unknown.map((k) => ({ path: ['options', k], message: `unknown option '${k}'`, code: 'unrecognized_keys' }));
  throw new TaskControlError('VALIDATION', `options.${unknown[0]}: unknown option (known: ${Object.keys(known).join(', ')})`, { issues });
}

/**
 * The planner of a backfill. A `VALIDATION` error names `options.<field>`, or
 * `task.schedule.<field>` when the schedule at fault is the task's own.
 */
export function plannerFor(options: BackfillPlannerOptions, scheduleOf: 'options' | 'task'): BackfillPlanner {
  try {
    return new BackfillPlanner(options);
  } catch (err) {
    if (!isTaskControlError(err, 'VALIDATION') || !err.issues) throw err;
    const issues = err.issues.map((i) => ({ ...i, path: [i.path[0] === 'schedule' ? scheduleOf : 'options', ...i.path] }));
    const first = issues[0];
    throw new TaskControlError('VALIDATION', `${first.path.join('.')}: ${first.message}`, { issues });
  }
}

/** Throw `BACKFILL_CONFLICT` if an active backfill of the task overlaps [from, to]. */
export async function assertNoOverlap(store: StateStore, taskId: string, fromMs: number, toMs: number): Promise<void> {
  for (const other of await store.listBackfills({ taskId, state: ['running', 'paused'] })) {
    const a = Date.parse(other.from);
    const b = Date.parse(other.to);
    if (a <= toMs && fromMs <= b) {
      throw new TaskControlError('BACKFILL_CONFLICT', `task ${taskId} already has an active backfill ${other.id} over ${other.from} .. ${other.to}`, {
        details: { backfillId: other.id },
      });
    }
  }
}

export { emptyCounts };

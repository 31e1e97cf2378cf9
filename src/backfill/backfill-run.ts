import PQueue from 'p-queue';
import { TaskControlError } from '../errors.js';
import type { BackfillRecord, StateStore } from '../store/state-store.js';
import { emptyCounts } from '../store/memory-store.js';
import {
  isTerminal,
  type BackfillStatus,
  type Instance,
  type InstanceState,
  type TaskDefinition,
  type TransitionEvent,
} from '../types.js';
import { BackfillPlanner, type Slot } from './planner.js';

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
  /** Rerun existing instances on behalf of the backfill (they then belong to it). */
  rerunFor(backfillId: string, instanceIds: string[], params: Record<string, unknown>, actor: string): Promise<void>;
  /** Stop the backfill's unfinished instances. */
  stopAll(backfillId: string, actor: string): Promise<void>;
  setHeld(backfillId: string, held: boolean): void;
  emit(status: BackfillStatus): void;
  now(): Date;
  onTransition(listener: (e: TransitionEvent) => void): () => void;
  error(err: unknown): void;
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
  /** Instances of this backfill not yet terminal, per instance id. */
  private readonly open = new Map<string, InstanceState>();
  private readonly waiters = new Map<string, () => void>();
  private readonly planner: BackfillPlanner;
  private unsubscribe: (() => void) | undefined;
  private resolveDone!: (s: BackfillStatus) => void;
  readonly done: Promise<BackfillStatus>;
  private feeding = false;
  private emitScheduled = false;
  /** Slot indexes created beyond the contiguous prefix recorded as `nextIndex`. */
  private readonly createdAhead = new Set<number>();
  private progressChain: Promise<void> = Promise.resolve();

  constructor(
    private readonly host: BackfillHost,
    record: BackfillRecord,
    counts: Record<InstanceState, number>,
  ) {
    this.record = record;
    this.counts = counts;
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

  status(): BackfillStatus {
    return { id: this.record.id, taskId: this.record.taskId, state: this.record.state, total: this.record.total, counts: { ...this.counts } };
  }

  /** Begin (or carry on) creating and awaiting slots from `record.nextIndex`. */
  async start(): Promise<void> {
    this.unsubscribe = this.host.onTransition((e) => this.onTransition(e));
    // instances of this backfill that already exist (a restart) and are still open
    for (let cursor: string | undefined; ; ) {
      const page = await this.host.store.listInstances({ backfillId: this.record.id, limit: 1000, cursor });
      for (const i of page.items) if (!isTerminal(i.state)) this.open.set(i.id, i.state);
      if (!page.cursor) break;
      cursor = page.cursor;
    }
    if (this.record.state === 'paused') this.host.setHeld(this.record.id, true);
    this.emit();
    if (this.record.state === 'running') {
      if (this.record.total === 0 || (this.record.nextIndex >= this.record.total && this.open.size === 0)) await this.finish('completed');
      else void this.feed();
    }
  }

  private onTransition(e: TransitionEvent): void {
    if (e.backfillId !== this.record.id) return;
    if (e.from !== 'none') this.counts[e.from]--;
    this.counts[e.to]++;
    if (isTerminal(e.to)) {
      this.open.delete(e.instanceId);
      this.waiters.get(e.instanceId)?.();
    } else {
      this.open.set(e.instanceId, e.to);
    }
    this.scheduleEmit();
    if (this.record.state === 'running' && this.record.nextIndex >= this.record.total && this.open.size === 0) void this.finish('completed');
  }

  private scheduleEmit(): void {
    if (this.emitScheduled) return;
    this.emitScheduled = true;
    queueMicrotask(() => {
      this.emitScheduled = false;
      this.emit();
    });
  }

  private emit(): void {
    this.host.emit(this.status());
  }

  /** Wait until every given instance is terminal. */
  private settled(ids: string[]): Promise<void> {
    const pending = ids.filter((id) => this.open.has(id));
    if (pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      let left = pending.length;
      for (const id of pending) {
        this.waiters.set(id, () => {
          this.waiters.delete(id);
          if (--left === 0) resolve();
        });
      }
    });
  }

  /** Keep the queue fed with at most `concurrency` slots waiting beyond the running ones. */
  private async feed(): Promise<void> {
    if (this.feeding) return;
    this.feeding = true;
    try {
      const slots = this.planner.slots();
      for (let skip = this.record.nextIndex; skip > 0; skip--) slots.next();
      while (this.record.state === 'running') {
        if (this.queue.size >= this.queue.concurrency) {
          await this.queue.onSizeLessThan(this.queue.concurrency);
          continue;
        }
        const next = slots.next();
        if (next.done) break;
        const slot = next.value;
        void this.queue.add(() => this.runSlot(slot)).catch((err) => this.host.error(err));
      }
      await this.queue.onIdle();
      if (this.record.state === 'running' && this.record.nextIndex >= this.record.total && this.open.size === 0) await this.finish('completed');
    } catch (err) {
      this.host.error(err);
    } finally {
      this.feeding = false;
    }
  }

  /** Create (or reprocess) the slot's instances, then wait for them to finish. */
  private async runSlot(slot: Slot): Promise<void> {
    if (this.record.state === 'cancelled') return;
    const taskIds = [this.record.taskId, ...(this.record.includeDownstream ? this.host.downstreamTasks(this.record.taskId) : [])];
    const ids: string[] = [];
    const rerun: string[] = [];
    for (const taskId of taskIds) {
      const task = this.host.task(taskId);
      if (!task) continue;
      const existing = await this.host.store.findInstance(taskId, slot.logicalDate);
      if (existing) {
        if (existing.backfillId === this.record.id) {
          ids.push(existing.id);
          if (!isTerminal(existing.state)) this.open.set(existing.id, existing.state);
        } else if (REPROCESSABLE[this.record.reprocess](existing.state)) {
          // it joins this backfill: count it in its current state, so that its rerun moves the counts
          this.counts[existing.state]++;
          rerun.push(existing.id);
          ids.push(existing.id);
        }
        continue;
      }
      const created = await this.host.createInstance(task, {
        params: taskId === this.record.taskId ? this.record.params : undefined,
        logicalDate: slot.logicalDate,
        actor: this.record.actor ?? `system:backfill`,
        backfillId: this.record.id,
      });
      if (created.backfillId === this.record.id) {
        ids.push(created.id);
        if (!isTerminal(created.state)) this.open.set(created.id, created.state);
      }
    }
    if (rerun.length > 0) {
      for (const id of rerun) this.open.set(id, 'queued');
      await this.host.rerunFor(this.record.id, rerun, this.record.params, this.record.actor ?? 'system:backfill');
    }
    await this.created(slot.index);
    await this.settled(ids);
  }

  /**
   * Record that a slot's instances exist. `nextIndex` only moves over a contiguous prefix,
   * so a restart never skips a slot (and re-finds, by its unique date, any created beyond it).
   */
  private created(index: number): Promise<void> {
    this.createdAhead.add(index);
    this.progressChain = this.progressChain.then(async () => {
      let next = this.record.nextIndex;
      while (this.createdAhead.delete(next)) next++;
      if (next > this.record.nextIndex) this.record = await this.update((r) => ({ nextIndex: Math.max(r.nextIndex, next) }));
    });
    return this.progressChain;
  }

  /** Write a change to the backfill's record, re-reading and re-applying it on a lost race. */
  private async update(change: (r: BackfillRecord) => Partial<BackfillRecord>): Promise<BackfillRecord> {
    for (let tries = 0; ; tries++) {
      const next: BackfillRecord = {
        ...this.record,
        ...change(this.record),
        updatedAt: this.host.now().toISOString(),
        version: this.record.version + 1,
      };
      try {
        await this.host.store.commit({ backfills: [{ next, expectedVersion: this.record.version }] });
        return next;
      } catch (err) {
        const latest = await this.host.store.getBackfill(this.record.id);
        if (!latest || tries > 20) throw err;
        this.record = latest;
      }
    }
  }

  async pause(): Promise<void> {
    if (this.record.state !== 'running') return;
    this.queue.pause();
    this.host.setHeld(this.record.id, true);
    this.record = await this.update(() => ({ state: 'paused' }));
    this.emit();
  }

  async resume(): Promise<void> {
    if (this.record.state !== 'paused') return;
    this.record = await this.update(() => ({ state: 'running' }));
    this.host.setHeld(this.record.id, false);
    this.queue.start();
    this.emit();
    void this.feed();
  }

  async cancel(actor: string): Promise<void> {
    if (this.record.state === 'cancelled' || this.record.state === 'completed') return;
    this.queue.clear();
    this.record = await this.update(() => ({ state: 'cancelled' }));
    this.host.setHeld(this.record.id, false);
    await this.host.stopAll(this.record.id, actor);
    for (const waiter of [...this.waiters.values()]) waiter();
    this.queue.start();
    await this.finish('cancelled');
  }

  private async finish(state: 'completed' | 'cancelled'): Promise<void> {
    if (this.record.state !== state) {
      if (this.record.state === 'completed' || this.record.state === 'cancelled') return;
      this.record = await this.update(() => ({ state }));
    }
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.host.setHeld(this.record.id, false);
    this.emit();
    this.resolveDone(this.status());
  }

  /** Stop driving this backfill (controller shutdown); its record stays as it is. */
  detach(): void {
    this.queue.pause();
    this.queue.clear();
    this.unsubscribe?.();
    this.unsubscribe = undefined;
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

import { TaskControlError } from '../errors.js';
import { AuditLog } from './audit-log.js';
import { INSTANCE_STATES, type AuditEntry, type Instance, type InstanceState, type Page } from '../types.js';
import type {
  AuditQuery,
  BackfillRecord,
  CommandRecord,
  CommitBatch,
  HeldScope,
  InstanceQuery,
  QueuedQuery,
  StateStore,
  StoreNotice,
  VersionedWrite,
} from './state-store.js';

function asSet<T>(value: T | T[] | undefined): Set<T> | undefined {
  if (value === undefined) return undefined;
  return new Set(Array.isArray(value) ? value : [value]);
}

function conflict(message: string, id: string): TaskControlError {
  return new TaskControlError('CONFLICT', message, { details: { id } });
}

/** Distinct ids in id order (a query's `ids`). */
function sortedUnique(ids: string[]): string[] {
  let sorted = true;
  for (let i = 1; i < ids.length && sorted; i++) sorted = ids[i - 1] < ids[i];
  return sorted ? ids : [...new Set(ids)].sort();
}

export function emptyCounts(): Record<InstanceState, number> {
  const counts = {} as Record<InstanceState, number>;
  for (const state of INSTANCE_STATES) counts[state] = 0;
  return counts;
}

// Shared by notices for what a commit did not touch; frozen so that no listener can add to it.
const NONE = Object.freeze([]) as unknown as never[];

/** True when an audit entry matches a query (shared by stores that filter in memory). */
export function auditMatches(entry: AuditEntry, q: AuditQuery): boolean {
  if (q.commandId !== undefined && entry.commandId !== q.commandId) return false;
  if (q.actor !== undefined && entry.actor !== q.actor) return false;
  if (q.action !== undefined && entry.action !== q.action) return false;
  if (q.kind !== undefined && entry.kind !== q.kind) return false;
  if (q.since !== undefined && entry.at < q.since) return false;
  if (q.until !== undefined && entry.at >= q.until) return false;
  if (q.afterId !== undefined && entry.id <= q.afterId) return false;
  if (q.instanceId !== undefined && entry.instanceId !== q.instanceId && !entry.instanceIds?.includes(q.instanceId)) return false;
  if (q.taskId !== undefined && entry.taskId !== q.taskId && !entry.taskIds?.includes(q.taskId)) return false;
  if (q.backfillId !== undefined && entry.backfillId !== q.backfillId && !entry.backfillIds?.includes(q.backfillId)) return false;
  return true;
}

/** States whose instances a store query enumerates (dispatch, leases, deadlines, retries). */
const INDEXED: ReadonlySet<InstanceState> = new Set(['pending', 'queued', 'running', 'pausing', 'paused', 'stopping', 'failed']);

/**
 * The instances in one state, in the order they entered it. Leaving is lazy: an entry is
 * live while its slot's `moves` still equals the one recorded with it, and dead entries are
 * dropped from the front as they come and compacted away once they outnumber the live ones.
 * No hashing on the hot path: entering is a push, leaving a counter.
 */
class StateList {
  private slots: Slot[] = [];
  private moves: number[] = [];
  private head = 0;
  private dead = 0;

  add(slot: Slot): void {
    this.slots.push(slot);
    this.moves.push(slot.moves);
  }

  /** One of this list's slots moved to another state: its entry here is dead. */
  left(): void {
    this.dead++;
    // skip dead entries at the front (a queue drains there), compact when most are dead
    while (this.head < this.slots.length && this.slots[this.head].moves !== this.moves[this.head]) {
      this.head++;
      this.dead--;
    }
    if (this.dead > 64 && this.dead > this.slots.length - this.head - this.dead) this.compact();
    else if (this.head > 1024 && this.head > this.slots.length / 2) this.compact();
  }

  private compact(): void {
    const slots: Slot[] = [];
    const moves: number[] = [];
    for (let i = this.head; i < this.slots.length; i++) {
      if (this.slots[i].moves !== this.moves[i]) continue;
      slots.push(this.slots[i]);
      moves.push(this.moves[i]);
    }
    this.slots = slots;
    this.moves = moves;
    this.head = 0;
    this.dead = 0;
  }

  /** Index of the first entry (for a loop up to {@link end}). */
  start(): number {
    return this.head;
  }

  end(): number {
    return this.slots.length;
  }

  /** The slot of entry `i` if it is live. */
  at(i: number): Slot | undefined {
    const slot = this.slots[i];
    return slot.moves === this.moves[i] ? slot : undefined;
  }
}

/** A list for each indexed state, nothing for the others. */
type StateLists = Partial<Record<InstanceState, StateList>>;

/** Where an instance's audit entries are: the first and last node of its chain (-1: none). */
interface AuditChain {
  first: number;
  last: number;
}

/** One instance as the memory store keeps it: its latest version and its audit chain. */
interface Slot extends AuditChain {
  instance: Instance;
  /** The store's number for the instance (its index in creation order). */
  readonly n: number;
  /** Bumped each time the instance changes state (what makes its old state-list entries dead). */
  moves: number;
}

/**
 * The embedded default store: everything in this process's memory, gone when it exits.
 * Several controllers in one process may share one instance, and then control each
 * other's instances exactly as controllers on a shared PostgreSQL store do.
 *
 * Laid out for the hot path: one map entry per instance (its latest version and its audit
 * chain), state lists only for the states a dispatcher or a sweep enumerates, counters for
 * the rest, and the audit trail in columns, so that a million finished instances cost a map
 * entry and a few hundred bytes each.
 */
export class MemoryStateStore implements StateStore {
  /** Notices are delivered inside `commit()`, and nothing outside this process writes here. */
  readonly synchronousNotices = true;
  /** Every instance, in creation order (ULIDs are monotonic, so this is also id order). */
  private readonly slots = new Map<string, Slot>();
  /** The instances of each indexed state, in the order they entered it. */
  private readonly byState: StateLists = {
    pending: new StateList(),
    queued: new StateList(),
    running: new StateList(),
    pausing: new StateList(),
    paused: new StateList(),
    stopping: new StateList(),
    failed: new StateList(),
  };
  /** The slots `check()` found for the writes of the batch being committed. */
  private found: (Slot | undefined)[] = [];
  private readonly counts = emptyCounts();
  private readonly byDate = new Map<string, string>();
  /** Every slot, by its number (`Slot.n`). */
  private readonly numbered: Slot[] = [];
  private readonly audit = new AuditLog((n) => this.numbered[n].instance.id);
  /**
   * The audit entries of each instance, as chains of nodes in two typed arrays: node n points
   * at entry `nodeEntry[n]` of `audit` and at the next node of the same instance. Numbers in
   * typed arrays cost the garbage collector nothing, unlike an array per instance.
   */
  private nodeEntry = new Int32Array(4096);
  private nodeNext = new Int32Array(4096);
  private nodes = 0;
  /** Audit chains of instance ids this store has no instance for (yet). */
  private readonly orphanAudit = new Map<string, AuditChain>();
  private readonly scopes = new Map<string, HeldScope>();
  private readonly commands = new Map<string, CommandRecord>();
  private readonly commandKeys = new Map<string, string>();
  private readonly backfills = new Map<string, BackfillRecord>();
  private readonly listeners = new Set<(notice: StoreNotice) => void>();
  private readonly pending: StoreNotice[] = [];
  private delivering = false;

  async getInstance(id: string): Promise<Instance | undefined> {
    return this.slots.get(id)?.instance;
  }

  async findInstance(taskId: string, logicalDate: string): Promise<Instance | undefined> {
    const id = this.byDate.get(`${taskId}\u0000${logicalDate}`);
    return id === undefined ? undefined : this.slots.get(id)?.instance;
  }

  private matches(q: InstanceQuery): (i: Instance) => boolean {
    const tasks = asSet(q.taskId);
    const groups = asSet(q.group);
    const states = asSet(q.state);
    return (i) =>
      (!tasks || tasks.has(i.taskId)) &&
      (!groups || (i.group !== undefined && groups.has(i.group))) &&
      (!states || states.has(i.state)) &&
      (q.backfillId === undefined || i.backfillId === q.backfillId) &&
      (q.logicalDate === undefined || i.logicalDate === q.logicalDate);
  }

  /** Ids to look at for a query, in id order: from the state lists when they cover it, else all. */
  private candidates(q: InstanceQuery): Iterable<string> {
    if (q.ids) return sortedUnique(q.ids);
    const states = asSet(q.state);
    if (states && [...states].every((s) => INDEXED.has(s))) {
      const ids: string[] = [];
      for (const s of states) {
        const list = this.byState[s]!;
        for (let i = list.start(); i < list.end(); i++) {
          const slot = list.at(i);
          if (slot) ids.push(slot.instance.id);
        }
      }
      return ids.sort();
    }
    return this.slots.keys();
  }

  async listInstances(q: InstanceQuery): Promise<Page<Instance>> {
    const limit = q.limit ?? 100;
    const match = this.matches(q);
    const items: Instance[] = [];
    let more = false;
    for (const id of this.candidates(q)) {
      if (q.cursor !== undefined && id <= q.cursor) continue;
      const instance = this.slots.get(id)?.instance;
      if (!instance || !match(instance)) continue;
      if (items.length === limit) {
        more = true;
        break;
      }
      items.push(instance);
    }
    return more ? { items, cursor: items[items.length - 1].id } : { items };
  }

  async countInstances(q: Omit<InstanceQuery, 'limit' | 'cursor'>): Promise<Record<InstanceState, number>> {
    const counts = emptyCounts();
    if (Object.values(q).every((v) => v === undefined)) return Object.assign(counts, this.counts);
    const match = this.matches(q);
    for (const id of this.candidates(q)) {
      const instance = this.slots.get(id)?.instance;
      if (instance && match(instance)) counts[instance.state]++;
    }
    return counts;
  }

  async queued(q: QueuedQuery): Promise<Instance[]> {
    const heldTasks = q.heldTasks?.length ? new Set(q.heldTasks) : undefined;
    const heldGroups = q.heldGroups?.length ? new Set(q.heldGroups) : undefined;
    const heldBackfills = q.heldBackfills?.length ? new Set(q.heldBackfills) : undefined;
    const out: Instance[] = [];
    const list = this.byState.queued!;
    for (let n = list.start(); n < list.end() && out.length < q.limit; n++) {
      const i = list.at(n)?.instance;
      if (!i) continue;
      if (heldTasks?.has(i.taskId)) continue;
      if (i.group !== undefined && heldGroups?.has(i.group)) continue;
      if (i.backfillId !== undefined && heldBackfills?.has(i.backfillId)) continue;
      out.push(i);
    }
    return out;
  }

  private scan(states: InstanceState[], limit: number, due: (i: Instance) => boolean): Instance[] {
    const out: Instance[] = [];
    for (const state of states) {
      const list = this.byState[state]!;
      for (let n = list.start(); n < list.end(); n++) {
        const i = list.at(n)?.instance;
        if (!i) continue;
        if (due(i)) out.push(i);
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  async expiredLeases(now: string, limit: number): Promise<Instance[]> {
    return this.scan(['running', 'pausing', 'stopping'], limit, (i) => !i.lease || i.lease.expiresAt < now);
  }

  async expiredDeadlines(now: string, limit: number): Promise<Instance[]> {
    return this.scan(['pausing', 'stopping'], limit, (i) => i.deadlineAt !== undefined && i.deadlineAt <= now);
  }

  async dueRetries(now: string, limit: number): Promise<Instance[]> {
    return this.scan(['failed'], limit, (i) => i.retryAt !== undefined && i.retryAt <= now);
  }

  async renewLeases(owner: string, instanceIds: string[], expiresAt: string): Promise<string[]> {
    const kept: string[] = [];
    for (const id of instanceIds) {
      const slot = this.slots.get(id);
      const i = slot?.instance;
      if (!slot || !i?.lease || i.lease.owner !== owner) continue;
      slot.instance = { ...i, lease: { ...i.lease, expiresAt } };
      kept.push(id);
    }
    return kept;
  }

  async commit(batch: CommitBatch): Promise<void> {
    this.check(batch);
    // written for the hot path: index loops, and no arrays allocated for what a batch lacks
    const writes = batch.instances;
    const instances: Instance[] = writes && writes.length ? new Array<Instance>(writes.length) : (NONE as Instance[]);
    if (writes) {
      for (let i = 0; i < writes.length; i++) {
        const next = writes[i].next;
        const id = next.id;
        const slot = this.found[i];
        if (slot) {
          const from = slot.instance.state;
          slot.instance = next;
          if (from !== next.state) this.move(slot, from, next.state);
        } else {
          const orphans = this.orphanAudit.get(id);
          if (orphans) this.orphanAudit.delete(id);
          const created: Slot = { instance: next, first: orphans?.first ?? -1, last: orphans?.last ?? -1, moves: 0, n: this.numbered.length };
          this.numbered.push(created);
          this.slots.set(id, created);
          this.found[i] = created;
          this.counts[next.state]++;
          this.byState[next.state]?.add(created);
          if (next.logicalDate !== undefined) this.byDate.set(`${next.taskId}\u0000${next.logicalDate}`, id);
        }
        instances[i] = next;
      }
    }
    const audit = batch.audit ?? (NONE as AuditEntry[]);
    for (let i = 0; i < audit.length; i++) {
      const entry = audit[i];
      // the usual batch writes instance i with its entry i: no need to look the slot up again
      const slot = entry.instanceId === undefined ? undefined : this.found[i];
      const own = slot !== undefined && slot.instance.id === entry.instanceId ? slot : undefined;
      const at = this.audit.push(entry, own ? own.n : -1);
      if (entry.instanceIds) for (const id of entry.instanceIds) this.indexAudit(id, at);
      else if (own) this.chainAudit(own, at);
      else if (entry.instanceId !== undefined) this.indexAudit(entry.instanceId, at);
    }
    let scopesChanged = false;
    let heldScopes = NONE as HeldScope[];
    let releasedScopes = NONE as string[];
    if (batch.holdScopes?.length) {
      heldScopes = [];
      for (const scope of batch.holdScopes) {
        this.scopes.set(scope.id, scope);
        heldScopes.push(scope);
        scopesChanged = true;
      }
    }
    if (batch.releaseScopes?.length) {
      releasedScopes = [];
      for (const id of batch.releaseScopes) {
        if (!this.scopes.delete(id)) continue;
        releasedScopes.push(id);
        scopesChanged = true;
      }
    }
    let commands = NONE as CommandRecord[];
    if (batch.commands?.length) {
      commands = [];
      for (const { next } of batch.commands) {
        this.commands.set(next.id, next);
        if (next.idempotencyKey !== undefined) this.commandKeys.set(next.idempotencyKey, next.id);
        commands.push(next);
      }
    }
    let backfills = NONE as BackfillRecord[];
    if (batch.backfills?.length) {
      backfills = [];
      for (const { next } of batch.backfills) {
        this.backfills.set(next.id, next);
        backfills.push(next);
      }
    }
    if (this.listeners.size > 0) this.notify({ instances, audit, scopesChanged, heldScopes, releasedScopes, backfills, commands });
  }

  private move(slot: Slot, from: InstanceState, to: InstanceState): void {
    this.counts[from]--;
    this.counts[to]++;
    slot.moves++;
    this.byState[from]?.left();
    this.byState[to]?.add(slot);
  }

  private indexAudit(instanceId: string, entryAt: number): void {
    let chain: AuditChain | undefined = this.slots.get(instanceId);
    if (!chain) {
      chain = this.orphanAudit.get(instanceId);
      if (!chain) this.orphanAudit.set(instanceId, (chain = { first: -1, last: -1 }));
    }
    this.chainAudit(chain, entryAt);
  }

  /** Append entry `entryAt` of the audit to a chain. */
  private chainAudit(chain: AuditChain, entryAt: number): void {
    if (this.nodes === this.nodeEntry.length) {
      const entries = new Int32Array(this.nodes * 2);
      entries.set(this.nodeEntry);
      this.nodeEntry = entries;
      const nexts = new Int32Array(this.nodes * 2);
      nexts.set(this.nodeNext);
      this.nodeNext = nexts;
    }
    const node = this.nodes++;
    this.nodeEntry[node] = entryAt;
    this.nodeNext[node] = -1;
    if (chain.last === -1) chain.first = node;
    else this.nodeNext[chain.last] = node;
    chain.last = node;
  }

  private check(batch: CommitBatch): void {
    let seenDates: Set<string> | undefined;
    const writes = batch.instances ?? (NONE as VersionedWrite<Instance>[]);
    this.found.length = writes.length;
    for (let i = 0; i < writes.length; i++) {
      const { next, expectedVersion } = writes[i];
      const slot = this.slots.get(next.id);
      this.found[i] = slot;
      const prev = slot?.instance;
      const actual = prev?.version ?? 0;
      if (actual !== expectedVersion) {
        throw conflict(`instance ${next.id} is at version ${actual}, expected ${expectedVersion}`, next.id);
      }
      if (!prev && next.logicalDate !== undefined) {
        const key = `${next.taskId}\u0000${next.logicalDate}`;
        if (this.byDate.has(key) || seenDates?.has(key)) {
          throw conflict(`task ${next.taskId} already has an instance for ${next.logicalDate}`, next.id);
        }
        (seenDates ??= new Set()).add(key);
      }
    }
    for (const { next, expectedVersion } of batch.commands ?? []) {
      const actual = this.commands.get(next.id)?.version ?? 0;
      if (actual !== expectedVersion) throw conflict(`command ${next.id} is at version ${actual}, expected ${expectedVersion}`, next.id);
      if (expectedVersion === 0 && next.idempotencyKey !== undefined && this.commandKeys.has(next.idempotencyKey)) {
        throw conflict(`idempotency key ${next.idempotencyKey} was already used`, next.id);
      }
    }
    for (const { next, expectedVersion } of batch.backfills ?? []) {
      const actual = this.backfills.get(next.id)?.version ?? 0;
      if (actual !== expectedVersion) throw conflict(`backfill ${next.id} is at version ${actual}, expected ${expectedVersion}`, next.id);
    }
  }

  private notify(notice: StoreNotice): void {
    if (this.listeners.size === 0) return;
    this.pending.push(notice);
    if (this.delivering) return;
    this.delivering = true;
    try {
      for (let n = this.pending.shift(); n; n = this.pending.shift()) {
        for (const listener of this.listeners) {
          try {
            listener(n);
          } catch (err) {
            queueMicrotask(() => {
              throw err;
            });
          }
        }
      }
    } finally {
      this.delivering = false;
    }
  }

  async queryAudit(q: AuditQuery): Promise<AuditEntry[]> {
    const out: AuditEntry[] = [];
    // entries are built only past the checks their columns answer (id and time ranges)
    const consider = (i: number): boolean => {
      if (q.afterId !== undefined && this.audit.id(i) <= q.afterId) return true;
      const at = this.audit.at(i);
      if ((q.since !== undefined && at < q.since) || (q.until !== undefined && at >= q.until)) return true;
      const e = this.audit.get(i);
      if (auditMatches(e, q)) out.push(e);
      return q.pageSize === undefined || out.length < q.pageSize;
    };
    if (q.instanceId === undefined) {
      for (let i = 0; i < this.audit.length; i++) if (!consider(i)) break;
    } else {
      const chain = this.slots.get(q.instanceId) ?? this.orphanAudit.get(q.instanceId);
      for (let node = chain?.first ?? -1; node !== -1; node = this.nodeNext[node]) if (!consider(this.nodeEntry[node])) break;
    }
    return q.limit !== undefined && out.length > q.limit ? out.slice(out.length - q.limit) : out;
  }

  async listScopes(): Promise<HeldScope[]> {
    return [...this.scopes.values()];
  }

  async getCommand(id: string): Promise<CommandRecord | undefined> {
    return this.commands.get(id);
  }

  async findCommandByKey(key: string): Promise<CommandRecord | undefined> {
    const id = this.commandKeys.get(key);
    return id === undefined ? undefined : this.commands.get(id);
  }

  async listCommands(q: { status?: CommandRecord['status'][]; limit?: number }): Promise<CommandRecord[]> {
    const out = [...this.commands.values()].filter((c) => !q.status || q.status.includes(c.status));
    out.sort((a, b) => (a.id < b.id ? -1 : 1));
    return q.limit !== undefined ? out.slice(0, q.limit) : out;
  }

  async getBackfill(id: string): Promise<BackfillRecord | undefined> {
    return this.backfills.get(id);
  }

  async listBackfills(q: { taskId?: string; state?: BackfillRecord['state'][] }): Promise<BackfillRecord[]> {
    return [...this.backfills.values()].filter(
      (b) => (q.taskId === undefined || b.taskId === q.taskId) && (!q.state || q.state.includes(b.state)),
    );
  }

  subscribe(listener: (notice: StoreNotice) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}

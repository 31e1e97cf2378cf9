import type { AuditEntry, ControlResult, Instance, InstanceState, Page, Schedule, Target } from '../types.js';

/** Which instances a store query returns. Every field narrows the result. */
export interface InstanceQuery {
  /** Only these instance ids. */
  ids?: string[];
  /** Only instances of this task (or these tasks). */
  taskId?: string | string[];
  /** Only instances of this group (or these groups). */
  group?: string | string[];
  /** Only instances in this state (or these states). */
  state?: InstanceState | InstanceState[];
  /** Only instances of this backfill. */
  backfillId?: string;
  /** Only instances of this logical date. */
  logicalDate?: string;
  /** Page size. @default 100 */
  limit?: number;
  /** Opaque cursor from the previous page. */
  cursor?: string;
}

/** Which queued instances a dispatcher may claim. */
export interface QueuedQuery {
  /** At most this many instances. */
  limit: number;
  /** Tasks whose scope is held: their instances are not dispatched. */
  heldTasks?: string[];
  /** Groups whose scope is held. */
  heldGroups?: string[];
  /** Instances of backfills that are paused or cancelled. */
  heldBackfills?: string[];
}

/** What {@link StateStore.claimQueued} takes: a queued query plus who reserves the instances. */
export interface ClaimQueuedQuery extends QueuedQuery {
  /** The dispatcher (controller id) that will claim the returned instances. */
  owner: string;
  /** How long the reservation keeps other dispatchers away from them. @default 5000 */
  holdMs?: number;
}

/** Which audit entries a query returns, oldest first. */
export interface AuditQuery {
  /** Only entries about this instance. */
  instanceId?: string;
  /** Only entries of this command. */
  commandId?: string;
  /** Only entries by this actor. */
  actor?: string;
  /** Only entries with this action. */
  action?: string;
  /** Only entries of this kind. */
  kind?: AuditEntry['kind'];
  /** Only entries about this task. */
  taskId?: string;
  /** Only entries about this backfill. */
  backfillId?: string;
  /** Inclusive lower bound on `at` (ISO). */
  since?: string;
  /** Exclusive upper bound on `at` (ISO). */
  until?: string;
  /** Keep the newest `limit` matches. */
  limit?: number;
  /** Only entries with an id greater than this (for streaming in pages). */
  afterId?: string;
  /** Keep the oldest `pageSize` matches (for streaming in pages; `limit` keeps the newest). */
  pageSize?: number;
}

/** A task, group or `all` scope held by a pause (or a policy). */
export interface HeldScope {
  /** `task:<id>`, `group:<name>` or `all`. */
  id: string;
  /** What kind of scope is held. */
  kind: 'task' | 'group' | 'all';
  /** The task id or group name; empty for `all`. */
  key: string;
  /** Who held it. */
  actor: string;
  /** The command that held it. */
  commandId?: string;
  /** Why, as given by the actor. */
  reason?: string;
  /** When it was held (ISO). */
  at: string;
}

/** A command as the store keeps it: for idempotency, approvals and scheduled resumes. */
export interface CommandRecord {
  /** The command id (ULID). */
  id: string;
  /** The caller's idempotency key, if any. */
  idempotencyKey?: string;
  /** The control action. */
  action: ControlResult['action'];
  /** Who issued the command. */
  actor?: string;
  /** What the command targets. */
  target: Target;
  /** The options the command was called with (without actor). */
  options: Record<string, unknown>;
  /** Where the command stands (approval workflow included). */
  status: 'completed' | 'awaiting_approval' | 'scheduled' | 'approved' | 'rejected' | 'expired' | 'cancelled';
  /** The result reported for the command. */
  result: ControlResult;
  /** When it was recorded (ISO). */
  createdAt: string;
  /** When it last changed (ISO). */
  updatedAt: string;
  /** For approvals and scheduled commands: when they end or fire (ISO). */
  dueAt?: string;
  /** Who approved or rejected it. */
  decidedBy?: string;
  /** The approver's reason. */
  decisionReason?: string;
  /** Bumped on every change (optimistic concurrency). */
  version: number;
}

/** A backfill as the store keeps it, so any controller can carry it on after a restart. */
export interface BackfillRecord {
  /** The backfill id. */
  id: string;
  /** The task being backfilled. */
  taskId: string;
  /** The backfill as one unit. */
  state: 'planned' | 'running' | 'paused' | 'cancelled' | 'completed';
  /** The schedule that produces its slots. */
  schedule: Schedule;
  /** Start of the range (ISO). */
  from: string;
  /** End of the range (ISO). */
  to: string;
  /** Order in which slots are run. */
  order: 'asc' | 'desc';
  /** Run slots one at a time or in parallel. */
  mode: 'serial' | 'parallel';
  /** At most this many slots run at once in parallel mode. */
  concurrency: number;
  /** Which existing instances are run again. */
  reprocess: 'none' | 'failed' | 'all';
  /** Params every created instance gets. */
  params: Record<string, unknown>;
  /** Also rerun dependent tasks for each slot. */
  includeDownstream: boolean;
  /** Who started the backfill. */
  actor?: string;
  /** The controller driving the backfill (creating its instances as slots come due). */
  owner?: string;
  /** Until when `owner` holds it; past this, another controller with an executor adopts it. */
  leaseExpiresAt?: string;
  /** Slots in the range. */
  total: number;
  /** Index of the next slot to create (slots before it have been handled). */
  nextIndex: number;
  /** When it was created (ISO). */
  createdAt: string;
  /** When it last changed (ISO). */
  updatedAt: string;
  /** Bumped on every change (optimistic concurrency). */
  version: number;
}

/** A versioned write: `expectedVersion` 0 means "must not exist yet". */
export interface VersionedWrite<T> {
  /** The record to write. */
  next: T;
  /** The version the stored record must still have, or the commit fails (0 for a new record). */
  expectedVersion: number;
}

/**
 * Everything one commit writes. A store applies all of it or none of it:
 * a version that does not match, a second instance for a (taskId, logicalDate), or a
 * reused idempotency key fails the whole batch with `CONFLICT`.
 */
export interface CommitBatch {
  /** Instance writes. */
  instances?: VersionedWrite<Instance>[];
  /** Audit entries to append. */
  audit?: AuditEntry[];
  /** Scopes to hold. */
  holdScopes?: HeldScope[];
  /** Ids of scopes to release. */
  releaseScopes?: string[];
  /** Command record writes. */
  commands?: VersionedWrite<CommandRecord>[];
  /** Backfill record writes. */
  backfills?: VersionedWrite<BackfillRecord>[];
}

/** What a store tells its subscribers after every commit (its own process's and, for shared stores, others'). */
export interface StoreNotice {
  /** Instances that changed. */
  instances: Instance[];
  /** Audit entries appended. */
  audit: AuditEntry[];
  /** True when scopes were held or released. */
  scopesChanged: boolean;
  /** Scopes this commit held. */
  heldScopes: HeldScope[];
  /** Ids of scopes this commit released. */
  releasedScopes: string[];
  /** Backfill records that changed. */
  backfills: BackfillRecord[];
  /** Command records that changed. */
  commands: CommandRecord[];
}

/**
 * Where instances, the audit trail, held scopes, commands and backfills live.
 * The contract suite in `taskctl/testing` defines what a correct store does.
 */
export interface StateStore {
  /**
   * True when no other process writes to this store and every commit's notice has reached
   * all subscribers before `commit()` resolves (the memory store). A controller then trusts
   * what notices told it (held scopes) instead of asking the store on every submit.
   */
  readonly synchronousNotices?: boolean;
  /** The instance with this id, if any. */
  getInstance(id: string): Promise<Instance | undefined>;
  /** The instance of this task for this logical date, if any. */
  findInstance(taskId: string, logicalDate: string): Promise<Instance | undefined>;
  /** Instances matching the query, ordered by id (creation order), paged by cursor. */
  listInstances(query: InstanceQuery): Promise<Page<Instance>>;
  /** Instances per state among those matching the query. */
  countInstances(query: Omit<InstanceQuery, 'limit' | 'cursor'>): Promise<Record<InstanceState, number>>;
  /** Queued instances, the longest-queued first, for a dispatcher to claim. */
  queued(query: QueuedQuery): Promise<Instance[]>;
  /**
   * Optional, for stores shared by several controllers: like `queued()`, but each instance
   * returned is reserved for `owner` for `holdMs`, and instances another owner reserved are
   * skipped, so that dispatchers do not all race for the same oldest instances. A reservation
   * changes no version and sends no notice: the caller still claims each instance with its
   * version-checked commit, and one it does not claim is free again after `holdMs`.
   */
  claimQueued?(query: ClaimQueuedQuery): Promise<Instance[]>;
  /** Running, pausing or stopping instances whose lease expired before `now` (ISO). */
  expiredLeases(now: string, limit: number): Promise<Instance[]>;
  /** Pausing or stopping instances whose deadline passed before `now` (ISO). */
  expiredDeadlines(now: string, limit: number): Promise<Instance[]>;
  /** Failed instances whose automatic retry is due before `now` (ISO). */
  dueRetries(now: string, limit: number): Promise<Instance[]>;
  /**
   * Extend the leases `owner` holds on these instances without bumping their versions.
   * Returns the ids it still owned.
   */
  renewLeases(owner: string, instanceIds: string[], expiresAt: string): Promise<string[]>;
  /** Apply a batch atomically; throws `CONFLICT` and changes nothing if any check fails. */
  commit(batch: CommitBatch): Promise<void>;
  /** Audit entries matching the query, oldest first. */
  queryAudit(query: AuditQuery): Promise<AuditEntry[]>;
  /** Every held scope. */
  listScopes(): Promise<HeldScope[]>;
  /** The command record with this id, if any. */
  getCommand(id: string): Promise<CommandRecord | undefined>;
  /** The command record with this idempotency key, if any. */
  findCommandByKey(idempotencyKey: string): Promise<CommandRecord | undefined>;
  /** Command records, optionally only in some statuses. */
  listCommands(query: { status?: CommandRecord['status'][]; limit?: number }): Promise<CommandRecord[]>;
  /** The backfill record with this id, if any. */
  getBackfill(id: string): Promise<BackfillRecord | undefined>;
  /** Backfill records, optionally of one task or in some states. */
  listBackfills(query: { taskId?: string; state?: BackfillRecord['state'][] }): Promise<BackfillRecord[]>;
  /** Called after every commit with what it wrote. Returns an unsubscribe function. */
  subscribe(listener: (notice: StoreNotice) => void): () => void;
  /** Release connections. */
  close?(): Promise<void>;
}

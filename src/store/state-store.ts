import type { AuditEntry, ControlResult, Instance, InstanceState, Page, Schedule, Target } from '../types.js';

/** Which instances a store query returns. Every field narrows the result. */
export interface InstanceQuery {
  ids?: string[];
  taskId?: string | string[];
  group?: string | string[];
  state?: InstanceState | InstanceState[];
  backfillId?: string;
  logicalDate?: string;
  /** Page size. @default 100 */
  limit?: number;
  /** Opaque cursor from the previous page. */
  cursor?: string;
}

/** Which queued instances a dispatcher may claim. */
export interface QueuedQuery {
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
  instanceId?: string;
  commandId?: string;
  actor?: string;
  action?: string;
  kind?: AuditEntry['kind'];
  taskId?: string;
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
  kind: 'task' | 'group' | 'all';
  /** The task id or group name; empty for `all`. */
  key: string;
  actor: string;
  commandId?: string;
  reason?: string;
  at: string;
}

/** A command as the store keeps it: for idempotency, approvals and scheduled resumes. */
export interface CommandRecord {
  id: string;
  idempotencyKey?: string;
  action: ControlResult['action'];
  actor?: string;
  target: Target;
  /** The options the command was called with (without actor). */
  options: Record<string, unknown>;
  status: 'completed' | 'awaiting_approval' | 'scheduled' | 'approved' | 'rejected' | 'expired' | 'cancelled';
  result: ControlResult;
  createdAt: string;
  updatedAt: string;
  /** For approvals and scheduled commands: when they end or fire (ISO). */
  dueAt?: string;
  decidedBy?: string;
  decisionReason?: string;
  version: number;
}

/** A backfill as the store keeps it, so any controller can carry it on after a restart. */
export interface BackfillRecord {
  id: string;
  taskId: string;
  state: 'planned' | 'running' | 'paused' | 'cancelled' | 'completed';
  schedule: Schedule;
  from: string;
  to: string;
  order: 'asc' | 'desc';
  mode: 'serial' | 'parallel';
  concurrency: number;
  reprocess: 'none' | 'failed' | 'all';
  params: Record<string, unknown>;
  includeDownstream: boolean;
  actor?: string;
  /** The controller driving the backfill (creating its instances as slots come due). */
  owner?: string;
  /** Until when `owner` holds it; past this, another controller with an executor adopts it. */
  leaseExpiresAt?: string;
  total: number;
  /** Index of the next slot to create (slots before it have been handled). */
  nextIndex: number;
  createdAt: string;
  updatedAt: string;
  version: number;
}

/** A versioned write: `expectedVersion` 0 means "must not exist yet". */
export interface VersionedWrite<T> {
  next: T;
  expectedVersion: number;
}

/**
 * Everything one commit writes. A store applies all of it or none of it:
 * a version that does not match, a second instance for a (taskId, logicalDate), or a
 * reused idempotency key fails the whole batch with `CONFLICT`.
 */
export interface CommitBatch {
  instances?: VersionedWrite<Instance>[];
  audit?: AuditEntry[];
  holdScopes?: HeldScope[];
  /** Ids of scopes to release. */
  releaseScopes?: string[];
  commands?: VersionedWrite<CommandRecord>[];
  backfills?: VersionedWrite<BackfillRecord>[];
}

/** What a store tells its subscribers after every commit (its own process's and, for shared stores, others'). */
export interface StoreNotice {
  instances: Instance[];
  audit: AuditEntry[];
  scopesChanged: boolean;
  /** Scopes this commit held. */
  heldScopes: HeldScope[];
  /** Ids of scopes this commit released. */
  releasedScopes: string[];
  backfills: BackfillRecord[];
  commands: CommandRecord[];
}

/**
 * Where instances, the audit trail, held scopes, commands and backfills live.
 * The contract suite in `taskctl/testing` defines what a correct store does.
 */
export interface StateStore {
  getInstance(id: string): Promise<Instance | undefined>;
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
  queryAudit(query: AuditQuery): Promise<AuditEntry[]>;
  listScopes(): Promise<HeldScope[]>;
  getCommand(id: string): Promise<CommandRecord | undefined>;
  findCommandByKey(idempotencyKey: string): Promise<CommandRecord | undefined>;
  listCommands(query: { status?: CommandRecord['status'][]; limit?: number }): Promise<CommandRecord[]>;
  getBackfill(id: string): Promise<BackfillRecord | undefined>;
  listBackfills(query: { taskId?: string; state?: BackfillRecord['state'][] }): Promise<BackfillRecord[]>;
  /** Called after every commit with what it wrote. Returns an unsubscribe function. */
  subscribe(listener: (notice: StoreNotice) => void): () => void;
  /** Release connections. */
  close?(): Promise<void>;
}

import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { z } from 'zod';
import { TaskControlError, isTaskControlError } from '../errors.js';
import { parse } from '../schemas.js';
import type {
  AuditQuery,
  BackfillRecord,
  ClaimQueuedQuery,
  CommandRecord,
  CommitBatch,
  HeldScope,
  InstanceQuery,
  QueuedQuery,
  StateStore,
  StoreNotice,
} from '../store/state-store.js';
import { INSTANCE_STATES, type AuditEntry, type Instance, type InstanceState, type Page } from '../types.js';
import { batchError, isConnectionError, unavailable } from './errors.js';
import { MIGRATE_LOCK, MIGRATIONS } from './migrations.js';

/** Options of the {@link PostgresStateStore} constructor. */
export interface PostgresStateStoreOptions {
  /** A libpq-style URL, e.g. `postgres://user@host:5432/db`. Without it (and without `pool`), pg's `PG*` environment variables apply. */
  connectionString?: string;
  /** A pool you manage (then `close()` leaves it open). Its `options` also configure the store's LISTEN connection. */
  pool?: pg.Pool;
  /** Where the store's tables live; one schema per deployment (or per test). @default 'taskctl' */
  schema?: string;
  /** The LISTEN/NOTIFY channel commits are announced on. @default `<schema>_commits` */
  notifyChannel?: string;
  /** How often to poll for commits a lost notification left out (and to check the LISTEN connection). @default 1000 */
  pollMs?: number;
}

/** What {@link PostgresStateStore.noticePosition} reports. */
export interface NoticePosition {
  /** The number of the last commit handed to this store's subscribers. */
  delivered: number;
  /** The highest commit number this store has heard of. */
  known: number;
}

const identifier = z
  .string()
  .min(1, 'must not be empty')
  .max(63, 'must be at most 63 characters (a PostgreSQL identifier)')
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a plain identifier: letters, digits and _, not starting with a digit');

const optionsSchema = z
  .object({
    connectionString: z.string().min(1, 'must not be empty').optional(),
    pool: z
      .custom<pg.Pool>(
        (v) => typeof v === 'object' && v !== null && typeof (v as pg.Pool).connect === 'function' && typeof (v as pg.Pool).query === 'function',
        'must be a pg.Pool',
      )
      .optional(),
    schema: identifier.optional(),
    notifyChannel: identifier.optional(),
    pollMs: z.number().int().min(10).max(3_600_000).optional(),
  })
  .strict()
  .refine((o) => !(o.connectionString !== undefined && o.pool !== undefined), {
    message: 'pass connectionString or pool, not both',
    path: ['pool'],
  });

/**
 * At most this many commits share one transaction. The usual path applies them with a few
 * set-based statements; only when one of them runs into something unexpected are they redone
 * one subtransaction each (past 64 of those PostgreSQL briefly keeps them out of its cache).
 */
const GROUP_MAX = 200;
/** ... and at most about this many bytes of JSON. */
const GROUP_BYTES = 4 * 1024 * 1024;
/** Commit groups in flight at once: the next one's writes overlap the previous one's flush. */
const INFLIGHT_GROUPS = 2;
/** How long commit rows (what notices are made of) are kept for processes that fell behind. */
const COMMIT_RETENTION = '10 minutes';
const PRUNE_EVERY_MS = 60_000;
/** Commit rows fetched per round when catching up. */
const FETCH_LIMIT = 200;
/** How long commit() waits for its own notice to be delivered before it resolves anyway. */
const DELIVERY_WAIT_MS = 2000;

/** One commit as it goes to the server: instance writes (`v` the expected version), audit, holds, releases, commands, backfills. */
interface WireBatch {
  i?: { v: number; n: Instance }[];
  a?: AuditEntry[];
  h?: HeldScope[];
  r?: string[];
  c?: { v: number; n: CommandRecord }[];
  b?: { v: number; n: BackfillRecord }[];
}

interface WireResult {
  s?: number | string;
  r?: string[];
  e?: string;
  m?: string;
  d?: string | null;
  c?: string | null;
}

interface Pending {
  batch: CommitBatch;
  json: string;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface CommitRow {
  seq: string;
  instances: { n: Instance }[] | null;
  held: HeldScope[] | null;
  released: string[] | null;
  commands: { n: CommandRecord }[] | null;
  backfills: { n: BackfillRecord }[] | null;
  audit: AuditEntry[];
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function toArray<T>(value: T | T[] | undefined): T[] | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value : [value];
}

/** `host:port` for messages, from a connection string or pool options. */
function describeServer(connectionString: string | undefined, options: Record<string, unknown> | undefined): string {
  const cs = connectionString ?? (typeof options?.connectionString === 'string' ? options.connectionString : undefined);
  if (cs) {
    try {
      const url = new URL(cs);
      if (url.hostname) return `${decodeURIComponent(url.hostname)}:${url.port || '5432'}`;
    } catch {
      // a key=value string
    }
    const host = /(?:^|\s)host=([^\s]+)/.exec(cs)?.[1];
    const port = /(?:^|\s)port=(\d+)/.exec(cs)?.[1];
    if (host) return `${host}:${port ?? '5432'}`;
  }
  const host = (options?.host as string | undefined) ?? process.env.PGHOST ?? 'localhost';
  const port = (options?.port as number | string | undefined) ?? process.env.PGPORT ?? 5432;
  return `${host}:${port}`;
}

/** A driver error as the result of one batch. */
function refusal(err: unknown): WireResult {
  const e = err as { code?: unknown; message?: unknown; detail?: unknown; constraint?: unknown };
  if (typeof e?.code !== 'string' || isTaskControlError(err)) throw err;
  return { e: e.code, m: String(e.message ?? ''), d: typeof e.detail === 'string' ? e.detail : null, c: typeof e.constraint === 'string' ? e.constraint : null };
}

function noticeOf(batch: CommitBatch, released: string[]): StoreNotice {
  const holds = batch.holdScopes ?? [];
  const gone = new Set(released);
  const releasedScopes = [...new Set(batch.releaseScopes ?? [])].filter((id) => gone.has(id));
  return {
    instances: (batch.instances ?? []).map((w) => w.next),
    audit: batch.audit ?? [],
    scopesChanged: holds.length > 0 || releasedScopes.length > 0,
    heldScopes: holds,
    releasedScopes,
    backfills: (batch.backfills ?? []).map((w) => w.next),
    commands: (batch.commands ?? []).map((w) => w.next),
  };
}

function toWire(batch: CommitBatch): string {
  const wire: WireBatch = {};
  if (batch.instances?.length) wire.i = batch.instances.map((w) => ({ v: w.expectedVersion, n: w.next }));
  if (batch.audit?.length) wire.a = batch.audit;
  if (batch.holdScopes?.length) wire.h = batch.holdScopes;
  if (batch.releaseScopes?.length) wire.r = batch.releaseScopes;
  if (batch.commands?.length) wire.c = batch.commands.map((w) => ({ v: w.expectedVersion, n: w.next }));
  if (batch.backfills?.length) wire.b = batch.backfills.map((w) => ({ v: w.expectedVersion, n: w.next }));
  return JSON.stringify(wire);
}

/**
 * A `StateStore` on PostgreSQL, shared by any number of controllers in any number of
 * processes. Every commit is one transaction with version checks; every commit is announced
 * with NOTIFY and delivered to the subscribers of every store on the same schema, in commit
 * order, once each, so a command issued anywhere reaches the executor wherever it runs.
 *
 * ```ts
 * const store = new PostgresStateStore({ connectionString: process.env.DATABASE_URL });
 * await store.migrate();
 * const controller = new TaskController({ store, executor });
 * ```
 */
export class PostgresStateStore implements StateStore {
  /** The schema the tables live in. */
  readonly schema: string;
  /** The LISTEN/NOTIFY channel. */
  readonly notifyChannel: string;
  /** The polling interval of the notice fallback. */
  readonly pollMs: number;
  /** The pool the store queries through. */
  readonly pool: pg.Pool;
  private readonly ownsPool: boolean;
  private readonly server: string;
  private readonly s: string;
  private readonly lockKey: string;
  /** This store object's id in commit rows and notifications: its own commits it delivers itself. */
  private readonly origin = randomUUID();
  private readonly clientConfig: pg.ClientConfig;
  private closed = false;
  private readonly queue: Pending[] = [];
  private inflight = 0;
  private readonly groups = new Set<Promise<void>>();
  /** Group transactions on the wire (for the notice feed, which must not start under one). */
  private readonly sending = new Set<Promise<unknown>>();
  private readonly feed: NoticeFeed;

  constructor(options: PostgresStateStoreOptions = {}) {
    const o = parse(optionsSchema, options, 'options');
    this.schema = o.schema ?? 'taskctl';
    this.s = quoteIdent(this.schema);
    this.lockKey = `hashtext('${this.schema}')`;
    this.notifyChannel = o.notifyChannel ?? defaultChannel(this.schema);
    this.pollMs = o.pollMs ?? 1000;
    const applicationName = `taskctl:${this.schema}`.slice(0, 63);
    if (o.pool) {
      this.pool = o.pool;
      this.ownsPool = false;
      const { max: _max, min: _min, idleTimeoutMillis: _idle, maxUses: _uses, allowExitOnIdle: _exit, ...client } = (o.pool.options ?? {}) as pg.PoolConfig;
      this.clientConfig = { ...client, keepAlive: true };
      this.server = describeServer(undefined, o.pool.options as unknown as Record<string, unknown>);
    } else {
      const base: pg.ClientConfig = { application_name: applicationName, connectionTimeoutMillis: 5000 };
      if (o.connectionString !== undefined) base.connectionString = o.connectionString;
      // like the memory store, the store alone does not keep the process alive
      this.pool = new pg.Pool({ ...base, max: 10, idleTimeoutMillis: 10_000, allowExitOnIdle: true });
      // an idle connection the server closed: the pool drops it; the next query makes a new one
      this.pool.on('error', () => undefined);
      this.ownsPool = true;
      this.clientConfig = { ...base, keepAlive: true };
      this.server = describeServer(o.connectionString, undefined);
    }
    // a session the server ends while the client is between queries (checked out, not idle)
    // would otherwise throw from an 'error' event no one listens to; queries in flight still
    // fail, and the pool drops the client when it comes back
    this.pool.on('connect', (client) => client.on('error', () => undefined));
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const store = this;
    this.feed = new NoticeFeed({
      pollMs: this.pollMs,
      notifyChannel: this.notifyChannel,
      originId: this.origin,
      listenConfig: this.clientConfig,
      get isClosed() {
        return store.closed;
      },
      sending: this.sending,
      lastCommitSeq: () => this.lastCommitSeq(),
      fetchCommits: (after, upto, skip) => this.fetchCommits(after, upto, skip),
      pruneCommits: () => this.pruneCommits(),
    });
  }

  // -- schema ------------------------------------------------------------------------------

  /**
   * Create or upgrade the store's tables. Idempotent, and safe to call from several
   * processes at once: migrations run one at a time under an advisory lock, each recorded
   * in `<schema>.migrations`.
   */
  async migrate(): Promise<void> {
    this.assertOpen();
    const client = await this.connect();
    let failed: unknown;
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [MIGRATE_LOCK, this.schema]);
      // a schema made beforehand (say, by a DBA for a role without CREATE on the database) is used as it is
      const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [this.schema]);
      if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${this.s}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.s}.migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      const done = new Set((await client.query<{ version: number }>(`SELECT version FROM ${this.s}.migrations`)).rows.map((r) => r.version));
      for (const m of MIGRATIONS) {
        if (done.has(m.version)) continue;
        await client.query(m.sql(this.s, this.lockKey));
        await client.query(`INSERT INTO ${this.s}.migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
      }
      await client.query('COMMIT');
    } catch (err) {
      failed = err;
      await client.query('ROLLBACK').catch(() => undefined);
      throw this.wrap(err);
    } finally {
      client.release(failed !== undefined && isConnectionError(failed) ? (failed as Error) : undefined);
    }
  }

  /** Stop listening, wait for commits in flight, and close the pool (unless it was passed in). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.feed.stop();
    while (this.groups.size > 0) await Promise.allSettled([...this.groups]);
    if (this.ownsPool) await this.pool.end().catch(() => undefined);
  }

  // -- plumbing ----------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new TaskControlError('UNAVAILABLE', `the PostgreSQL store on schema ${this.schema} is closed`);
  }

  private async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (err) {
      throw this.wrap(err);
    }
  }

  /** Turn a driver error into the error the store reports. */
  private wrap(err: unknown): unknown {
    if (isTaskControlError(err)) return err;
    if (this.closed && !isConnectionError(err)) return err;
    if (isConnectionError(err)) return unavailable(this.server, err);
    const code = (err as { code?: unknown })?.code;
    if (code === '42P01' || code === '42883' || code === '3F000') {
      return new TaskControlError(
        'UNAVAILABLE',
        `PostgreSQL at ${this.server}: schema ${this.schema} is missing or not migrated; call store.migrate() (${(err as Error).message})`,
        { cause: err, details: { code } },
      );
    }
    return err;
  }

  /** A read (or an idempotent write): retried once on a connection that died while idle. */
  private async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    this.assertOpen();
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.pool.query<R>(text, values);
      } catch (err) {
        if (attempt === 0 && isConnectionError(err) && !this.closed) continue;
        throw this.wrap(err);
      }
    }
  }

  /** Qualified table or function name. */
  private t(name: string): string {
    return `${this.s}.${name}`;
  }

  // -- reads -------------------------------------------------------------------------------

  /** The instance with this id, if any. */
  async getInstance(id: string): Promise<Instance | undefined> {
    const r = await this.query<{ data: Instance }>(`SELECT data FROM ${this.t('instances')} WHERE id = $1`, [id]);
    return r.rows[0]?.data;
  }

  /** The instance of a task for a logical date, if any. */
  async findInstance(taskId: string, logicalDate: string): Promise<Instance | undefined> {
    const r = await this.query<{ data: Instance }>(
      `SELECT data FROM ${this.t('instances')} WHERE task_id = $1 AND logical_date = $2`,
      [taskId, logicalDate],
    );
    return r.rows[0]?.data;
  }

  private instanceWhere(q: Omit<InstanceQuery, 'limit'>, values: unknown[]): string {
    const where: string[] = [];
    const add = (sql: string, value: unknown) => {
      values.push(value);
      where.push(sql.replace('?', `$${values.length}`));
    };
    if (q.ids) add('id = ANY(?::text[])', q.ids);
    const tasks = toArray(q.taskId);
    if (tasks) add('task_id = ANY(?::text[])', tasks);
    const groups = toArray(q.group);
    if (groups) add('task_group = ANY(?::text[])', groups);
    const states = toArray(q.state);
    if (states) add('state = ANY(?::text[])', states);
    if (q.backfillId !== undefined) add('backfill_id = ?', q.backfillId);
    if (q.logicalDate !== undefined) add('logical_date = ?', q.logicalDate);
    if (q.cursor !== undefined) add('id > ?', q.cursor);
    return where.length ? `WHERE ${where.join(' AND ')}` : '';
  }

  /** Instances matching the query, by id (creation order), one page at a time. */
  async listInstances(q: InstanceQuery): Promise<Page<Instance>> {
    const limit = Math.max(1, q.limit ?? 100);
    const values: unknown[] = [];
    const where = this.instanceWhere(q, values);
    values.push(limit + 1);
    const r = await this.query<{ data: Instance }>(
      `SELECT data FROM ${this.t('instances')} ${where} ORDER BY id LIMIT $${values.length}`,
      values,
    );
    const items = r.rows.map((row) => row.data);
    if (items.length <= limit) return { items };
    items.length = limit;
    return { items, cursor: items[limit - 1].id };
  }

  /** Instances per state among those matching the query. */
  async countInstances(q: Omit<InstanceQuery, 'limit' | 'cursor'>): Promise<Record<InstanceState, number>> {
    const values: unknown[] = [];
    const where = this.instanceWhere({ ...q, cursor: undefined }, values);
    const r = await this.query<{ state: InstanceState; n: string }>(
      `SELECT state, count(*) AS n FROM ${this.t('instances')} ${where} GROUP BY state`,
      values,
    );
    const counts = {} as Record<InstanceState, number>;
    for (const state of INSTANCE_STATES) counts[state] = 0;
    for (const row of r.rows) counts[row.state] = Number(row.n);
    return counts;
  }

  /** Queued instances outside held tasks, groups and backfills, the longest-queued (`updatedAt`) first. */
  async queued(q: QueuedQuery): Promise<Instance[]> {
    const r = await this.query<{ data: Instance }>(
      `SELECT data FROM ${this.t('instances')}
        WHERE state = 'queued'
          AND NOT (task_id = ANY($2::text[]))
          AND (task_group IS NULL OR NOT (task_group = ANY($3::text[])))
          AND (backfill_id IS NULL OR NOT (backfill_id = ANY($4::text[])))
        ORDER BY updated_at, id LIMIT $1`,
      [q.limit, q.heldTasks ?? [], q.heldGroups ?? [], q.heldBackfills ?? []],
    );
    return r.rows.map((row) => row.data);
  }

  /**
   * Like {@link queued}, for a dispatcher that will claim what it gets: skips queued instances
   * another dispatcher reserved (or is reserving, `FOR UPDATE SKIP LOCKED`) in the last
   * `holdMs`, and reserves the returned ones for `owner`. The reservation changes no version
   * and sends no notice; the claim itself is still the caller's version-checked commit.
   */
  async claimQueued(q: ClaimQueuedQuery): Promise<Instance[]> {
    const r = await this.query<{ data: Instance }>(
      `SELECT d AS data FROM ${this.t('claim_queued')}($1, $2, $3, $4::text[], $5::text[], $6::text[]) AS d`,
      [q.owner, Math.max(1, Math.round(q.holdMs ?? 5000)), q.limit, q.heldTasks ?? [], q.heldGroups ?? [], q.heldBackfills ?? []],
    );
    return r.rows.map((row) => row.data);
  }

  private async scan(where: string, values: unknown[], limit: number): Promise<Instance[]> {
    values.push(limit);
    const r = await this.query<{ data: Instance }>(
      `SELECT data FROM ${this.t('instances')} WHERE ${where} ORDER BY id LIMIT $${values.length}`,
      values,
    );
    return r.rows.map((row) => row.data);
  }

  /** Running, pausing or stopping instances whose lease expired before `now`. */
  async expiredLeases(now: string, limit: number): Promise<Instance[]> {
    return this.scan(
      `state IN ('running', 'pausing', 'stopping') AND (lease_expires_at IS NULL OR lease_expires_at < $1::timestamptz)`,
      [now],
      limit,
    );
  }

  /** Pausing or stopping instances whose deadline passed. */
  async expiredDeadlines(now: string, limit: number): Promise<Instance[]> {
    return this.scan(`state IN ('pausing', 'stopping') AND deadline_at IS NOT NULL AND deadline_at <= $1::timestamptz`, [now], limit);
  }

  /** Failed instances whose automatic retry is due. */
  async dueRetries(now: string, limit: number): Promise<Instance[]> {
    return this.scan(`state = 'failed' AND retry_at IS NOT NULL AND retry_at <= $1::timestamptz`, [now], limit);
  }

  /** Extend the leases `owner` still holds, without a new version or a notice; returns their ids. */
  async renewLeases(owner: string, instanceIds: string[], expiresAt: string): Promise<string[]> {
    if (instanceIds.length === 0) return [];
    // rows locked in id order, like commits lock them, so the two never deadlock
    const r = await this.query<{ id: string }>(
      `WITH mine AS (
         SELECT id FROM ${this.t('instances')} WHERE id = ANY($2::text[]) AND lease_owner = $1 ORDER BY id FOR UPDATE
       )
       UPDATE ${this.t('instances')} AS i
          SET lease_expires_at = $3::text::timestamptz,
              data = jsonb_set(i.data, '{lease,expiresAt}', to_jsonb($3::text))
         FROM mine WHERE i.id = mine.id
       RETURNING i.id`,
      [owner, instanceIds, expiresAt],
    );
    const kept = new Set(r.rows.map((row) => row.id));
    return instanceIds.filter((id) => kept.has(id));
  }

  /** Audit entries matching the query, in commit order (`limit` keeps the newest). */
  async queryAudit(q: AuditQuery): Promise<AuditEntry[]> {
    const values: unknown[] = [];
    const where: string[] = [];
    const add = (sql: string, value: unknown) => {
      values.push(value);
      where.push(sql.replaceAll('?', `$${values.length}`));
    };
    if (q.instanceId !== undefined) add('(instance_id = ? OR instance_ids @> ARRAY[?::text])', q.instanceId);
    if (q.taskId !== undefined) add('(task_id = ? OR task_ids @> ARRAY[?::text])', q.taskId);
    if (q.backfillId !== undefined) add('(backfill_id = ? OR backfill_ids @> ARRAY[?::text])', q.backfillId);
    if (q.commandId !== undefined) add('command_id = ?', q.commandId);
    if (q.actor !== undefined) add('actor = ?', q.actor);
    if (q.action !== undefined) add('action = ?', q.action);
    if (q.kind !== undefined) add('kind = ?', q.kind);
    if (q.since !== undefined) add('at >= ?::timestamptz', q.since);
    if (q.until !== undefined) add('at < ?::timestamptz', q.until);
    if (q.afterId !== undefined) add('id > ?', q.afterId);
    const filter = where.length ? `WHERE ${where.join(' AND ')}` : '';
    if (q.limit !== undefined) {
      values.push(q.limit);
      const r = await this.query<{ entry: AuditEntry }>(
        `SELECT entry FROM ${this.t('audit')} ${filter} ORDER BY seq DESC LIMIT $${values.length}`,
        values,
      );
      return r.rows.map((row) => row.entry).reverse();
    }
    const r = await this.query<{ entry: AuditEntry }>(`SELECT entry FROM ${this.t('audit')} ${filter} ORDER BY seq`, values);
    return r.rows.map((row) => row.entry);
  }

  /** The held task, group and `all` scopes. */
  async listScopes(): Promise<HeldScope[]> {
    const r = await this.query<{ data: HeldScope }>(`SELECT data FROM ${this.t('scopes')} ORDER BY held_seq`);
    return r.rows.map((row) => row.data);
  }

  /** A command record by id. */
  async getCommand(id: string): Promise<CommandRecord | undefined> {
    const r = await this.query<{ data: CommandRecord }>(`SELECT data FROM ${this.t('commands')} WHERE id = $1`, [id]);
    return r.rows[0]?.data;
  }

  /** The command recorded under an idempotency key. */
  async findCommandByKey(idempotencyKey: string): Promise<CommandRecord | undefined> {
    const r = await this.query<{ data: CommandRecord }>(`SELECT data FROM ${this.t('commands')} WHERE idempotency_key = $1`, [idempotencyKey]);
    return r.rows[0]?.data;
  }

  /** Command records by status, oldest first. */
  async listCommands(q: { status?: CommandRecord['status'][]; limit?: number }): Promise<CommandRecord[]> {
    const values: unknown[] = [];
    let sql = `SELECT data FROM ${this.t('commands')}`;
    if (q.status) {
      values.push(q.status);
      sql += ` WHERE status = ANY($1::text[])`;
    }
    sql += ' ORDER BY id';
    if (q.limit !== undefined) {
      values.push(q.limit);
      sql += ` LIMIT $${values.length}`;
    }
    const r = await this.query<{ data: CommandRecord }>(sql, values);
    return r.rows.map((row) => row.data);
  }

  /** A backfill record by id. */
  async getBackfill(id: string): Promise<BackfillRecord | undefined> {
    const r = await this.query<{ data: BackfillRecord }>(`SELECT data FROM ${this.t('backfills')} WHERE id = $1`, [id]);
    return r.rows[0]?.data;
  }

  /** Backfill records by task and state. */
  async listBackfills(q: { taskId?: string; state?: BackfillRecord['state'][] }): Promise<BackfillRecord[]> {
    const values: unknown[] = [];
    const where: string[] = [];
    if (q.taskId !== undefined) {
      values.push(q.taskId);
      where.push(`task_id = $${values.length}`);
    }
    if (q.state) {
      values.push(q.state);
      where.push(`state = ANY($${values.length}::text[])`);
    }
    const r = await this.query<{ data: BackfillRecord }>(
      `SELECT data FROM ${this.t('backfills')} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id`,
      values,
    );
    return r.rows.map((row) => row.data);
  }

  // -- commits -----------------------------------------------------------------------------

  /**
   * Apply a batch atomically: version-checked instance, command and backfill writes, audit
   * entries, scope holds and releases — all of it or none of it (`CONFLICT`). Concurrent
   * commits of this store share transactions (group commit), each in its own subtransaction,
   * so one batch's conflict never touches another's. A lost connection is `UNAVAILABLE`,
   * with nothing written.
   */
  commit(batch: CommitBatch): Promise<void> {
    if (this.closed) return Promise.reject(new TaskControlError('UNAVAILABLE', `the PostgreSQL store on schema ${this.schema} is closed`));
    let json: string;
    try {
      json = toWire(batch);
    } catch (err) {
      return Promise.reject(
        new TaskControlError('VALIDATION', `batch: cannot be stored as JSON: ${(err as Error).message}`, {
          issues: [{ path: ['batch'], message: 'must be JSON-serialisable' }],
        }),
      );
    }
    if (json.includes('\\u0000')) {
      return Promise.reject(
        new TaskControlError('VALIDATION', 'batch: PostgreSQL cannot store the character \\u0000 in JSON', {
          issues: [{ path: ['batch'], message: 'contains \\u0000, which jsonb cannot hold' }],
        }),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ batch, json, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    while (this.inflight < INFLIGHT_GROUPS && this.queue.length > 0) {
      let bytes = 0;
      let n = 0;
      while (n < this.queue.length && n < GROUP_MAX && (n === 0 || bytes + this.queue[n].json.length <= GROUP_BYTES)) {
        bytes += this.queue[n].json.length;
        n++;
      }
      const group = this.queue.splice(0, n);
      this.inflight++;
      const run: Promise<void> = this.runGroup(group)
        .catch((err) => {
          for (const p of group) p.reject(err);
        })
        .finally(() => {
          this.inflight--;
          this.groups.delete(run);
          this.kick();
        });
      this.groups.add(run);
    }
  }

  private async runGroup(group: Pending[]): Promise<void> {
    await this.feed.gate();
    // registered with the feed before `sending` lets go of it, so that the feed never sets
    // its starting point between a commit and its registration
    const sent = this.send(group).then((results) => this.register(group, results));
    this.sending.add(sent);
    let done: Pending[];
    try {
      done = await sent;
    } finally {
      this.sending.delete(sent);
    }
    if (done.length > 0) {
      // the caller hears its own commit before commit() resolves, as with the memory store;
      // a database that went away right after the commit delays that, but not the caller
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.feed.drain(), new Promise<void>((resolve) => (timer = setTimeout(resolve, DELIVERY_WAIT_MS)))]);
      clearTimeout(timer);
    }
    for (const pending of done) pending.resolve();
  }

  /** Reject the batches that failed; hand the feed the notices of those that committed. */
  private register(group: Pending[], results: WireResult[]): Pending[] {
    const done: Pending[] = [];
    for (let k = 0; k < group.length; k++) {
      const result = results[k];
      const pending = group[k];
      if (!result || result.e !== undefined || result.s === undefined) {
        pending.reject(
          result?.e !== undefined
            ? batchError(result.e, result.m ?? '', result.d ?? null, result.c ?? null)
            : new TaskControlError('CONFLICT', 'the connection was lost while committing; this batch was not applied'),
        );
        continue;
      }
      this.feed.own(Number(result.s), noticeOf(pending.batch, result.r ?? []));
      done.push(pending);
    }
    return done;
  }

  /**
   * Run one group transaction. On a lost connection, find out whether it committed; if it
   * certainly did not (say, the pool handed out a connection the server had just closed),
   * try once more on a fresh one.
   */
  private async send(group: Pending[]): Promise<WireResult[]> {
    const payload = `[${group.map((p) => p.json).join(',')}]`;
    for (let attempt = 0; ; attempt++) {
      const grp = randomUUID();
      const client = await this.connect();
      const pid = (client as unknown as { processID?: number }).processID ?? undefined;
      try {
        const r = await client.query<{ r: WireResult[] }>(`SELECT ${this.t('commit_group')}($1::jsonb, $2, $3, $4) AS r`, [
          payload,
          grp,
          this.origin,
          this.notifyChannel,
        ]);
        client.release();
        return r.rows[0].r;
      } catch (err) {
        client.release(err as Error);
        if (!isConnectionError(err)) {
          // the group as a whole was refused (say, one batch does not parse as jsonb): find out
          // which batch by committing each on its own
          if (group.length > 1) {
            const each: WireResult[] = [];
            for (const one of group) each.push(...(await this.send([one]).catch((e: unknown) => [refusal(e)])));
            return each;
          }
          const code = (err as { code?: unknown }).code;
          if (typeof code === 'string' && /^(22|23)/.test(code)) return [refusal(err)];
          throw this.wrap(err);
        }
        try {
          return await this.recoverGroup(grp, group.length, pid, err);
        } catch (lost) {
          const notWritten = isTaskControlError(lost, 'UNAVAILABLE') && lost.details?.written === false;
          if (attempt === 0 && notWritten && !this.closed) continue;
          throw lost;
        }
      }
    }
  }

  /**
   * The connection broke while a group was committing: it either committed or it did not.
   * Its commit rows say which, once its server process is gone. Unknowable (the database
   * is unreachable) is `UNAVAILABLE` with `details.outcome: 'unknown'`.
   */
  private async recoverGroup(grp: string, size: number, pid: number | undefined, cause: unknown): Promise<WireResult[]> {
    for (let tries = 0; tries < 30; tries++) {
      try {
        const alive = pid !== undefined && (await this.pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount! > 0;
        const rows = (
          await this.pool.query<{ idx: number; seq: string; released: string[] | null }>(
            `SELECT idx, seq, released FROM ${this.t('commits')} WHERE grp = $1`,
            [grp],
          )
        ).rows;
        if (rows.length > 0) {
          const out: WireResult[] = Array.from({ length: size }, () => ({}));
          for (const row of rows) out[row.idx] = { s: row.seq, r: row.released ?? [] };
          return out;
        }
        if (!alive) throw unavailable(this.server, cause, { written: false });
      } catch (err) {
        if (isTaskControlError(err)) throw err;
        throw unavailable(this.server, cause, { outcome: 'unknown' });
      }
      await sleep(100);
    }
    throw unavailable(this.server, cause, { outcome: 'unknown' });
  }

  // -- notices -----------------------------------------------------------------------------

  /**
   * Hear every commit on this schema — this store's and every other process's — in commit
   * order, once each. This store's own commits are delivered before `commit()` resolves.
   * Other processes' commits are heard from the moment the subscription is in place (a LISTEN
   * and a query away; `await store.catchUp()` waits for it).
   */
  subscribe(listener: (notice: StoreNotice) => void): () => void {
    return this.feed.add(listener);
  }

  /**
   * Deliver to this store's subscribers every commit made on the schema so far (by any
   * process), then resolve: for tests and tools that need "everyone's commits heard".
   */
  async catchUp(): Promise<void> {
    await this.feed.catchUp(await this.lastCommitSeq());
  }

  /** Where notice delivery stands (commit numbers count every commit on the schema). */
  noticePosition(): NoticePosition {
    return this.feed.position();
  }

  /** The highest commit number on the schema. */
  private async lastCommitSeq(): Promise<number> {
    const r = await this.query<{ m: string }>(`SELECT coalesce(max(seq), 0) AS m FROM ${this.t('commits')}`);
    return Number(r.rows[0].m);
  }

  /** Commit rows after `after` up to `upto`, without those in `skip`, as notices. */
  private async fetchCommits(after: number, upto: number, skip: number[]): Promise<{ seq: number; notice: StoreNotice }[]> {
    const r = await this.query<CommitRow>(`SELECT * FROM ${this.t('fetch_commits')}($1, $2, $3::bigint[], $4)`, [
      after,
      upto,
      skip,
      FETCH_LIMIT,
    ]);
    return r.rows.map((row) => {
      const held = row.held ?? [];
      const released = row.released ?? [];
      return {
        seq: Number(row.seq),
        notice: {
          instances: (row.instances ?? []).map((w) => w.n),
          audit: row.audit,
          scopesChanged: held.length > 0 || released.length > 0,
          heldScopes: held,
          releasedScopes: released,
          backfills: (row.backfills ?? []).map((w) => w.n),
          commands: (row.commands ?? []).map((w) => w.n),
        },
      };
    });
  }

  /** Drop commit rows older than the retention (audit and instances are kept for good). */
  private async pruneCommits(): Promise<void> {
    await this.query(`DELETE FROM ${this.t('commits')} WHERE at < now() - interval '${COMMIT_RETENTION}'`);
  }
}

/** What the notice feed needs from its store. */
interface FeedHost {
  readonly pollMs: number;
  readonly notifyChannel: string;
  readonly originId: string;
  readonly listenConfig: pg.ClientConfig;
  readonly isClosed: boolean;
  /** Commit groups on the wire. */
  readonly sending: Set<Promise<unknown>>;
  lastCommitSeq(): Promise<number>;
  fetchCommits(after: number, upto: number, skip: number[]): Promise<{ seq: number; notice: StoreNotice }[]>;
  pruneCommits(): Promise<void>;
}

/** Rows a catch-up fetch may return at most; fewer means "everything up to the target". */
const FETCHED_ALL = FETCH_LIMIT;

/**
 * Delivers commits to a store's subscribers: its own directly after they commit, other
 * processes' when their NOTIFY arrives (or the poll finds them), all through one watermark
 * (`delivered`, the last commit number handed out) so that each is delivered once, in order.
 */
class NoticeFeed {
  private readonly listeners = new Set<(notice: StoreNotice) => void>();
  private active = false;
  private ready = false;
  private establishing: Promise<void> | undefined;
  private generation = 0;
  private delivered = 0;
  private target = 0;
  /** Commits whose notices are at hand (this store's own, and small ones that came with their notification), until delivered. */
  private readonly known = new Map<number, StoreNotice>();
  private chain: Promise<void> = Promise.resolve();
  private nextDrain: Promise<void> | undefined;
  private client: pg.Client | undefined;
  private connecting: Promise<void> | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectDelay = 50;
  private pollTimer: NodeJS.Timeout | undefined;
  private polling = false;
  private lastPrune = Date.now();

  constructor(private readonly store: FeedHost) {}

  add(listener: (notice: StoreNotice) => void): () => void {
    if (this.store.isClosed) return () => undefined;
    this.listeners.add(listener);
    if (!this.active) this.start();
    return () => {
      if (!this.listeners.delete(listener)) return;
      if (this.listeners.size === 0) this.stop();
    };
  }

  private start(): void {
    this.active = true;
    this.ready = false;
    this.generation++;
    this.establish();
    this.pollTimer = setInterval(() => void this.poll(), this.store.pollMs);
    this.pollTimer.unref();
  }

  stop(): void {
    this.active = false;
    this.ready = false;
    this.generation++;
    this.listeners.clear();
    this.known.clear();
    this.delivered = 0;
    this.target = 0;
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const client = this.client;
    this.client = undefined;
    if (client) void client.end().catch(() => undefined);
  }

  /** Commit groups wait here while the starting point of delivery is being set. */
  gate(): Promise<void> {
    return this.establishing ?? Promise.resolve();
  }

  /**
   * Set where delivery starts: after every commit on the schema so far, but before any of
   * this store's own commits made since subscribing. Commit groups are held back meanwhile,
   * so that none commits unseen between the two.
   */
  private establish(): void {
    if (this.establishing) return;
    const gen = this.generation;
    this.establishing = (async () => {
      try {
        await Promise.allSettled([...this.store.sending]);
        await this.listen(gen);
        const max = await this.store.lastCommitSeq();
        if (gen !== this.generation) return;
        let start = max;
        for (const seq of this.known.keys()) start = Math.min(start, seq - 1);
        this.delivered = start;
        this.target = Math.max(this.target, max);
        this.ready = true;
      } catch {
        // unreachable now: try again soon (the poll tries too)
        if (gen === this.generation) {
          const retry = setTimeout(() => {
            if (gen === this.generation && !this.ready) this.establish();
          }, Math.min(this.store.pollMs, 1000));
          retry.unref();
        }
      } finally {
        this.establishing = undefined;
      }
    })();
    void this.establishing.then(() => this.drain());
  }

  private async listen(gen: number): Promise<void> {
    if (this.client) return;
    if (this.connecting) return this.connecting;
    this.connecting = (async () => {
      const client = new pg.Client(this.store.listenConfig);
      const lost = () => this.lost(client);
      client.on('error', lost);
      client.on('end', lost);
      client.on('notification', (msg) => this.onNotification(msg));
      try {
        await client.connect();
        await client.query(`LISTEN ${quoteIdent(this.store.notifyChannel)}`);
      } catch (err) {
        client.removeAllListeners();
        client.on('error', () => undefined);
        void client.end().catch(() => undefined);
        throw err;
      }
      if (gen !== this.generation || !this.active) {
        client.removeAllListeners();
        client.on('error', () => undefined);
        void client.end().catch(() => undefined);
        return;
      }
      // listening does not keep the process alive (the memory store's notices would not either)
      (client as unknown as { connection?: { stream?: { unref?: () => void } } }).connection?.stream?.unref?.();
      this.client = client;
      this.reconnectDelay = 50;
    })().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private lost(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.removeAllListeners();
    client.on('error', () => undefined);
    void client.end().catch(() => undefined);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (!this.active || this.reconnectTimer) return;
    const gen = this.generation;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (gen !== this.generation) return;
      void (async () => {
        try {
          await this.listen(gen);
          // whatever was committed while nobody listened
          this.target = Math.max(this.target, await this.store.lastCommitSeq());
          void this.drain();
        } catch {
          this.reconnectDelay = Math.min(this.reconnectDelay * 2, 1000);
          this.scheduleReconnect();
        }
      })();
    }, this.reconnectDelay);
    this.reconnectTimer.unref();
  }

  private onNotification(msg: pg.Notification): void {
    if (msg.channel !== this.store.notifyChannel || !msg.payload) return;
    let payload: NotifyPayload;
    try {
      payload = JSON.parse(msg.payload) as NotifyPayload;
    } catch {
      return;
    }
    // our own commits are delivered by commit() itself
    if (payload.o === this.store.originId) return;
    const seq = Number(payload.s);
    if (!Number.isFinite(seq)) return;
    // a small group comes whole: no need to fetch it
    if (this.ready && Array.isArray(payload.n)) {
      for (const item of payload.n) {
        const s = Number(item.s);
        if (Number.isFinite(s) && s > this.delivered) this.known.set(s, noticeFromWire(item));
      }
    }
    if (seq <= this.target) return;
    this.target = seq;
    void this.drain();
  }

  private async poll(): Promise<void> {
    if (this.polling || !this.active) return;
    this.polling = true;
    try {
      if (!this.ready) {
        this.establish();
        return;
      }
      if (!this.client && !this.reconnectTimer && !this.connecting) this.scheduleReconnect();
      this.target = Math.max(this.target, await this.store.lastCommitSeq());
      await this.drain();
      if (Date.now() - this.lastPrune > PRUNE_EVERY_MS) {
        this.lastPrune = Date.now();
        await this.store.pruneCommits();
      }
    } catch {
      // the database is away: the next poll tries again
    } finally {
      this.polling = false;
    }
  }

  position(): NoticePosition {
    return { delivered: this.delivered, known: this.target };
  }

  async catchUp(seq: number): Promise<void> {
    if (!this.active) return;
    if (seq > this.target) this.target = seq;
    for (let tries = 0; tries < 100 && this.active && (!this.ready || this.delivered < seq); tries++) {
      if (!this.ready) this.establish();
      await this.drain();
      if (this.ready && this.delivered >= seq) return;
      await sleep(10);
    }
  }

  /** One of this store's commits, to deliver in its place in the order. */
  own(seq: number, notice: StoreNotice): void {
    if (!this.active) return;
    if (this.ready && seq <= this.delivered) return;
    this.known.set(seq, notice);
    if (seq > this.target) this.target = seq;
  }

  /** Deliver everything up to the target (coalesced; never rejects). */
  drain(): Promise<void> {
    if (this.nextDrain) return this.nextDrain;
    const next = this.chain.then(() => {
      this.nextDrain = undefined;
      return this.drainOnce();
    });
    this.nextDrain = next;
    this.chain = next;
    return next;
  }

  private async drainOnce(): Promise<void> {
    if (this.establishing) await this.establishing;
    const gen = this.generation;
    if (!this.active || !this.ready) return;
    try {
      while (this.delivered < this.target && gen === this.generation) {
        const mine = this.known.get(this.delivered + 1);
        if (mine) {
          this.known.delete(this.delivered + 1);
          this.delivered++;
          this.emit(mine);
          continue;
        }
        const upto = this.target;
        const skip = [...this.known.keys()].filter((s) => s > this.delivered && s <= upto);
        const rows = await this.store.fetchCommits(this.delivered, upto, skip);
        if (gen !== this.generation) return;
        for (const row of rows) {
          this.deliverKnownBelow(row.seq);
          if (row.seq <= this.delivered) continue;
          const notice = this.known.get(row.seq) ?? row.notice;
          this.known.delete(row.seq);
          this.delivered = row.seq;
          this.emit(notice);
        }
        if (rows.length < FETCHED_ALL) {
          this.deliverKnownBelow(upto + 1);
          if (this.delivered < upto) this.delivered = upto;
        }
      }
    } catch {
      // left for the next notification or poll
    }
  }

  /** Deliver this store's own commits numbered below `seq`, in order. */
  private deliverKnownBelow(seq: number): void {
    if (this.known.size === 0) return;
    const below = [...this.known.keys()].filter((s) => s < seq).sort((a, b) => a - b);
    for (const s of below) {
      const notice = this.known.get(s)!;
      this.known.delete(s);
      if (s <= this.delivered) continue;
      this.delivered = s;
      this.emit(notice);
    }
  }

  private emit(notice: StoreNotice): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(notice);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}

/** A NOTIFY payload: the group's last commit number, the committing store, and (when small) the commits. */
interface NotifyPayload {
  s?: unknown;
  o?: unknown;
  n?: WireCommit[];
}

/** One commit as a notification carries it. */
interface WireCommit {
  s: number | string;
  i?: { n: Instance }[] | null;
  a?: AuditEntry[] | null;
  h?: HeldScope[] | null;
  r?: string[] | null;
  c?: { n: CommandRecord }[] | null;
  b?: { n: BackfillRecord }[] | null;
}

function noticeFromWire(w: WireCommit): StoreNotice {
  const held = w.h ?? [];
  const released = w.r ?? [];
  return {
    instances: (w.i ?? []).map((x) => x.n),
    audit: w.a ?? [],
    scopesChanged: held.length > 0 || released.length > 0,
    heldScopes: held,
    releasedScopes: released,
    backfills: (w.b ?? []).map((x) => x.n),
    commands: (w.c ?? []).map((x) => x.n),
  };
}

/** `<schema>_commits`, or a hashed name when that would be longer than an identifier may be. */
function defaultChannel(schema: string): string {
  const name = `${schema}_commits`;
  if (name.length <= 63) return name;
  let h = 0;
  for (const ch of schema) h = (Math.imul(h, 31) + ch.charCodeAt(0)) | 0;
  return `taskctl_${(h >>> 0).toString(36)}_commits`;
}

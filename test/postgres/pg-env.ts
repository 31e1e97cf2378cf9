// Where the PostgreSQL tests find their server, and whether they run at all. One place for
// the rule: under CI=true an unreachable server fails the run; elsewhere the tests skip, loudly.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresStateStore, type PostgresStateStoreOptions } from '../../src/postgres/index.js';

/** The server the tests use: TASKCTL_PG_URL, or the local default. */
export const PG_URL = process.env.TASKCTL_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function probe(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message || String((err as { code?: string }).code) : String(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The URL without its password, for messages. */
function shown(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

const problem = await probe();
if (problem !== undefined) {
  const why = `PostgreSQL at ${shown(PG_URL)} is unreachable (${problem})`;
  if (process.env.CI === 'true') throw new Error(`${why}: the PostgreSQL tests must run under CI=true. Start the server or set TASKCTL_PG_URL.`);
  console.warn(`\n*** SKIPPING the PostgreSQL tests: ${why}. Start a server or set TASKCTL_PG_URL to run them. ***\n`);
}

/** True when the server answered; use with `describe.skipIf(!pgAvailable)`. */
export const pgAvailable = problem === undefined;

/** A schema name no other run uses. */
export function freshSchema(prefix = 'taskctl_test'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/** Run SQL as the admin connection (for setup, inspection and fault injection). */
export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
  const client = new pg.Client({ connectionString: PG_URL });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await client.query<R>(text, values);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Drop a test schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  await adminQuery(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/** A migrated store on a fresh schema (or the given one). */
export async function makeStore(options: PostgresStateStoreOptions = {}): Promise<PostgresStateStore> {
  const store = new PostgresStateStore({ connectionString: PG_URL, schema: freshSchema(), pollMs: 200, ...options });
  await store.migrate();
  return store;
}

/** Close a store and drop its schema. */
export async function disposeStore(store: PostgresStateStore): Promise<void> {
  await store.close();
  await dropSchema(store.schema);
}

/** Terminate the server sessions of a schema's stores (their application_name is `taskctl:<schema>`). */
export async function terminateSessions(schema: string): Promise<number> {
  const r = await adminQuery<{ n: string }>(
    `SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`,
    [`taskctl:${schema}`.slice(0, 63)],
  );
  return Number(r.rows[0].n);
}

// The database going away under a running controller. Its sessions are terminated with
// pg_terminate_backend, and its role is refused new logins meanwhile, so that it stays away
// for a while: this touches only this test's own role and schema, never the server.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { FunctionExecutor, TaskController, isTaskControlError, isTerminal } from '../../src/index.js';
import { PostgresStateStore } from '../../src/postgres/index.js';
import { adminQuery, freshSchema, PG_URL, pgAvailable } from './pg-env.js';
import { allInstances, auditProblems, until } from './processes.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch((err) => console.error(err));
});

/** A role of its own, owning a schema of its own; returns its connection string. */
async function ownRole(schema: string): Promise<{ role: string; url: string }> {
  const role = `taskctl_r_${randomBytes(5).toString('hex')}`;
  const password = randomBytes(8).toString('hex');
  await adminQuery(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
  await adminQuery(`CREATE SCHEMA "${schema}" AUTHORIZATION ${role}`);
  cleanup.push(async () => {
    await adminQuery(`ALTER ROLE ${role} LOGIN`);
    await adminQuery(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [role]);
    await adminQuery(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await adminQuery(`DROP ROLE IF EXISTS ${role}`);
  });
  const url = new URL(PG_URL);
  url.username = role;
  url.password = password;
  return { role, url: url.toString() };
}

/** The database goes away for this role: no new sessions, and the open ones are terminated. */
async function goAway(role: string, schema: string): Promise<void> {
  await adminQuery(`ALTER ROLE ${role} NOLOGIN`);
  await adminQuery(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 OR usename = $2`, [
    `taskctl:${schema}`,
    role,
  ]);
}

async function comeBack(role: string): Promise<void> {
  await adminQuery(`ALTER ROLE ${role} LOGIN`);
}

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return isTaskControlError(err) ? err.code : `other: ${String(err)}`;
  }
}

describe.skipIf(!pgAvailable)('the database going away', () => {
  it('calls meanwhile are UNAVAILABLE, nothing is half-written, and the controller carries on when it is back', async () => {
    const schema = freshSchema();
    const { role, url } = await ownRole(schema);
    const store = new PostgresStateStore({ connectionString: url, schema, pollMs: 100 });
    cleanup.push(() => store.close());
    await store.migrate();
    const errors: string[] = [];
    const controller = new TaskController({
      store,
      leaseMs: 1000,
      concurrency: 4,
      executor: new FunctionExecutor({
        work: async (ctx) => {
          for (let step = 0; step < 6; step++) {
            await ctx.pausePoint({ step });
            await new Promise((r) => setTimeout(r, 40));
          }
          return 'done';
        },
      }),
    });
    cleanup.push(() => controller.close());
    controller.define({ id: 'work', maxAttempts: 5 });
    controller.on('error', (e) => errors.push(e.where));
    await controller.start();
    // a store that never polls (in this test's time): after the outage it hears commits only
    // if its LISTEN connection came back
    const listener = new PostgresStateStore({ connectionString: url, schema, pollMs: 600_000 });
    cleanup.push(() => listener.close());
    const heard: string[] = [];
    listener.subscribe((n) => heard.push(...n.audit.map((e) => e.id)));
    await listener.catchUp();
    const before = await Promise.all(Array.from({ length: 12 }, () => controller.submit('work')));
    await until('work running', async () => (await store.countInstances({})).running > 0, 5000, 10);

    await goAway(role, schema);
    const t0 = Date.now();
    const during = await Promise.all([
      outcome(store.getInstance(before[0].id)),
      outcome(store.commit({ audit: [{ id: `x${Date.now()}`, at: new Date().toISOString(), actor: 'a', kind: 'late_result' }] })),
      outcome(controller.submit('work')),
      outcome(controller.pause({ instanceId: before[1].id })),
      outcome(controller.list({ state: 'running' })),
      outcome(store.migrate()),
    ]);
    expect(during).toEqual(Array(6).fill('UNAVAILABLE'));
    expect(Date.now() - t0).toBeLessThan(5000);
    // while it is away, the controller keeps trying (and says so), without giving up
    await new Promise((r) => setTimeout(r, 1200));
    expect(errors.length).toBeGreaterThan(0);

    await comeBack(role);
    // the LISTEN connection is back: a commit from elsewhere is heard without polling
    const elsewhere = new PostgresStateStore({ connectionString: PG_URL, schema, pollMs: 600_000 });
    cleanup.push(() => elsewhere.close());
    await new Promise((r) => setTimeout(r, 1500));
    const ping = { id: `ping-${Date.now()}`, at: new Date().toISOString(), actor: 'elsewhere', kind: 'late_result' as const };
    await elsewhere.commit({ audit: [ping] });
    await until('the listener heard it', async () => heard.includes(ping.id), 3000, 20);
    // it carries on: new work is accepted and everything runs to its end
    const after = await until('accepting again', async () => controller.submit('work').catch(() => undefined), 10_000);
    const final = await until(
      'everything finished',
      async () => {
        const list = await allInstances(store);
        return list.length === 13 && list.every((i) => isTerminal(i.state)) ? list : undefined;
      },
      20_000,
      100,
    );
    expect(final.every((i) => i.state === 'succeeded')).toBe(true);
    expect(final.map((i) => i.id)).toContain(after.id);
    // every write went in whole with its audit entry, or not at all
    expect(await auditProblems(store, final)).toEqual([]);
  }, 60_000);

  it('a connection killed in the middle of a commit leaves all of it or none of it', async () => {
    const schema = freshSchema();
    const { url } = await ownRole(schema);
    const store = new PostgresStateStore({ connectionString: url, schema, pollMs: 100 });
    cleanup.push(() => store.close());
    await store.migrate();
    const at = '2024-01-01T00:00:00.000Z';
    let n = 0;
    const results: string[] = [];
    const killer = (async () => {
      for (let k = 0; k < 15; k++) {
        await new Promise((r) => setTimeout(r, 15));
        await adminQuery(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [`taskctl:${schema}`]);
      }
    })();
    const writers = Array.from({ length: 4 }, async () => {
      for (let k = 0; k < 25; k++) {
        const id = `i${String(n++).padStart(4, '0')}`;
        const instance = { id, taskId: 't', params: {}, state: 'queued' as const, attempt: 1, version: 1, createdAt: at, updatedAt: at };
        const entry = { id: `a${id}`, at, actor: 'w', kind: 'transition' as const, instanceId: id, from: 'none' as const, to: 'queued' as const, event: 'submit' };
        results.push(await outcome(store.commit({ instances: [{ next: instance, expectedVersion: 0 }], audit: [entry] })));
      }
    });
    await Promise.all([killer, ...writers]);
    expect(results.every((r) => r === 'ok' || r === 'UNAVAILABLE' || r === 'CONFLICT')).toBe(true);
    const instances = await allInstances(store);
    const audit = await store.queryAudit({});
    // every instance has exactly its audit entry, and no entry lacks its instance
    expect(audit.map((e) => e.instanceId).sort()).toEqual(instances.map((i) => i.id).sort());
    // an ok is a commit that happened
    expect(instances.length).toBeGreaterThanOrEqual(results.filter((r) => r === 'ok').length);
    console.log(`commits under fire: ${results.filter((r) => r === 'ok').length} ok, ${results.filter((r) => r !== 'ok').length} refused`);
  }, 60_000);
});

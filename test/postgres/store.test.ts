import { monotonicFactory } from 'ulid';
import { afterEach, describe, expect, it } from 'vitest';
import { isTaskControlError, type AuditEntry, type Instance, type StoreNotice } from '../../src/index.js';
import { PostgresStateStore } from '../../src/postgres/index.js';
import { adminQuery, disposeStore, dropSchema, freshSchema, makeStore, PG_URL, pgAvailable } from './pg-env.js';

const newId = monotonicFactory();
const AT = '2024-01-01T00:00:00.000Z';

function instance(over: Partial<Instance> = {}): Instance {
  return { id: newId(), taskId: 't', params: {}, state: 'queued', attempt: 1, version: 1, createdAt: AT, updatedAt: AT, ...over };
}

function entry(over: Partial<AuditEntry> = {}): AuditEntry {
  return { id: newId(), at: AT, actor: 'tester', kind: 'transition', ...over };
}

async function until(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const stores: PostgresStateStore[] = [];
async function store(options: ConstructorParameters<typeof PostgresStateStore>[0] = {}): Promise<PostgresStateStore> {
  const s = await makeStore(options);
  stores.push(s);
  return s;
}
/** Another store object on the same schema, as another process would have. */
function twin(of: PostgresStateStore, options: ConstructorParameters<typeof PostgresStateStore>[0] = {}): PostgresStateStore {
  const s = new PostgresStateStore({ connectionString: PG_URL, schema: of.schema, pollMs: 200, ...options });
  stores.push(s);
  return s;
}

afterEach(async () => {
  const schemas = new Set(stores.map((s) => s.schema));
  await Promise.all(stores.splice(0).map((s) => s.close()));
  for (const schema of schemas) await dropSchema(schema);
});

describe.skipIf(!pgAvailable)('PostgresStateStore', () => {
  it('validates its options with zod, naming the field', () => {
    const bad: [object, string][] = [
      [{ schema: 'no-dashes' }, 'options.schema'],
      [{ schema: 'x'.repeat(64) }, 'options.schema'],
      [{ pollMs: 1 }, 'options.pollMs'],
      [{ notifyChannel: '1abc' }, 'options.notifyChannel'],
      [{ connectionString: '' }, 'options.connectionString'],
      [{ pool: {} }, 'options.pool'],
      [{ colour: 'blue' }, 'options'],
    ];
    for (const [options, field] of bad) {
      try {
        new PostgresStateStore(options as never);
        expect.unreachable(`accepted ${JSON.stringify(options)}`);
      } catch (err) {
        expect(isTaskControlError(err, 'VALIDATION')).toBe(true);
        expect((err as Error).message).toContain(field);
      }
    }
  });

  it('migrate() is idempotent and safe when several processes call it at once', async () => {
    const schema = freshSchema();
    const many = Array.from({ length: 4 }, () => new PostgresStateStore({ connectionString: PG_URL, schema }));
    try {
      await Promise.all(many.map((s) => s.migrate()));
      await many[0].migrate();
      const r = await adminQuery<{ version: number }>(`SELECT version FROM "${schema}".migrations ORDER BY version`);
      expect(r.rows.map((row) => row.version)).toEqual([1]);
      await many[1].commit({ instances: [{ next: instance(), expectedVersion: 0 }] });
    } finally {
      await Promise.all(many.map((s) => s.close()));
      await dropSchema(schema);
    }
  });

  it('a server that cannot be reached is UNAVAILABLE, quickly, naming the host and the cause', async () => {
    const s = new PostgresStateStore({ connectionString: 'postgres://postgres@127.0.0.1:1/test', schema: freshSchema() });
    try {
      for (const call of [() => s.migrate(), () => s.getInstance('x'), () => s.commit({ audit: [entry()] })]) {
        const t0 = Date.now();
        const err = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(Date.now() - t0).toBeLessThan(3000);
        expect(isTaskControlError(err, 'UNAVAILABLE')).toBe(true);
        expect((err as Error).message).toMatch(/127\.0\.0\.1:1/);
        expect((err as Error).message).toMatch(/ECONNREFUSED/);
      }
    } finally {
      await s.close();
    }
  });

  it('a schema that was never migrated says so', async () => {
    const s = new PostgresStateStore({ connectionString: PG_URL, schema: freshSchema() });
    try {
      const err = await s.getInstance('x').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isTaskControlError(err, 'UNAVAILABLE')).toBe(true);
      expect((err as Error).message).toMatch(/migrate\(\)/);
    } finally {
      await s.close();
    }
  });

  it("delivers every commit of every process to every subscriber once, in commit order, its own before commit() resolves", async () => {
    const a = await store();
    const b = twin(a);
    const heardA: StoreNotice[] = [];
    const heardB: StoreNotice[] = [];
    a.subscribe((n) => heardA.push(n));
    b.subscribe((n) => heardB.push(n));
    // a subscription hears what is committed once it is in place (its own commits always)
    await b.catchUp();
    // own commits are heard before commit() resolves
    const first = entry();
    await a.commit({ audit: [first] });
    expect(heardA.at(-1)?.audit[0].id).toBe(first.id);

    const commits: Promise<void>[] = [];
    for (let n = 0; n < 150; n++) {
      const from = n % 2 ? a : b;
      commits.push(from.commit({ instances: [{ next: instance(), expectedVersion: 0 }], audit: [entry({ reason: `n${n}` })] }));
    }
    // one large commit: too big for a notification, so listeners fetch it
    const big = Array.from({ length: 300 }, () => instance({ params: { pad: 'x'.repeat(100) } }));
    commits.push(a.commit({ instances: big.map((next) => ({ next, expectedVersion: 0 })), audit: [entry({ reason: 'big' })] }));
    // a commit with instances and no audit entry is heard too
    const silent = instance();
    commits.push(b.commit({ instances: [{ next: silent, expectedVersion: 0 }] }));
    await Promise.all(commits);
    await a.catchUp();
    await b.catchUp();

    const order = (heard: StoreNotice[]) => heard.map((n) => n.audit.map((e) => e.id).join(',') + '|' + n.instances.map((i) => i.id).join(','));
    expect(heardA.length).toBe(153);
    expect(order(heardB)).toEqual(order(heardA).slice(0)); // same commits, same order
    expect(new Set(order(heardA)).size).toBe(heardA.length); // each once
    expect(heardA.find((n) => n.audit[0]?.reason === 'big')?.instances.length).toBe(300);
    expect(heardB.some((n) => n.instances.some((i) => i.id === silent.id) && n.audit.length === 0)).toBe(true);
    // the audit trail is in the same (commit) order
    const audit = await a.queryAudit({});
    expect(audit.map((e) => e.id)).toEqual(heardA.flatMap((n) => n.audit.map((e) => e.id)));
  });

  it('a store that misses the notifications still hears every commit, by polling', async () => {
    const a = await store();
    const deaf = twin(a, { notifyChannel: 'nobody_sends_here', pollMs: 100 });
    const heard: string[] = [];
    deaf.subscribe((n) => heard.push(...n.audit.map((e) => e.id)));
    await deaf.catchUp();
    const sent: string[] = [];
    for (let n = 0; n < 5; n++) {
      const e = entry();
      sent.push(e.id);
      await a.commit({ audit: [e] });
    }
    await until(() => heard.length >= sent.length, 3000);
    expect(heard).toEqual(sent);
  });

  it('renewing a lease changes no version and sends no notice', async () => {
    const a = await store();
    const running = instance({ state: 'running', lease: { owner: 'me', token: 2, expiresAt: AT } });
    await a.commit({ instances: [{ next: running, expectedVersion: 0 }] });
    const b = twin(a);
    const heard: StoreNotice[] = [];
    b.subscribe((n) => heard.push(n));
    await b.catchUp();
    expect(await a.renewLeases('me', [running.id], '2024-01-01T00:10:00.000Z')).toEqual([running.id]);
    await new Promise((r) => setTimeout(r, 300));
    await b.catchUp();
    expect(heard).toEqual([]);
    const after = await a.getInstance(running.id);
    expect(after?.version).toBe(1);
    expect(after?.lease?.expiresAt).toBe('2024-01-01T00:10:00.000Z');
    expect(await a.expiredLeases('2024-01-01T00:05:00.000Z', 10)).toEqual([]);
  });

  it('queued() gives the longest-queued first; claimQueued() gives two dispatchers disjoint instances', async () => {
    const a = await store();
    const list = [3, 1, 2, 5, 4].map((m) => instance({ updatedAt: `2024-01-01T00:0${m}:00.000Z` }));
    await a.commit({ instances: list.map((next) => ({ next, expectedVersion: 0 })) });
    expect((await a.queued({ limit: 10 })).map((i) => i.updatedAt)).toEqual([1, 2, 3, 4, 5].map((m) => `2024-01-01T00:0${m}:00.000Z`));

    const b = twin(a);
    const [mine, theirs] = await Promise.all([
      a.claimQueued({ limit: 3, owner: 'ctl-a', holdMs: 60_000 }),
      b.claimQueued({ limit: 3, owner: 'ctl-b', holdMs: 60_000 }),
    ]);
    const ids = [...mine, ...theirs].map((i) => i.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(5);
    // a dispatcher gets its own reservations again; a commit on an instance clears its reservation
    expect((await a.claimQueued({ limit: 5, owner: 'ctl-a' })).map((i) => i.id).sort()).toEqual(mine.map((i) => i.id).sort());
    const taken = theirs[0];
    await b.commit({ instances: [{ next: { ...taken, params: { again: true }, version: 2 }, expectedVersion: 1 }] });
    expect((await a.claimQueued({ limit: 5, owner: 'ctl-a' })).map((i) => i.id)).toContain(taken.id);
    // and a reservation runs out after holdMs
    await a.claimQueued({ limit: 5, owner: 'ctl-a', holdMs: 1 });
    await b.claimQueued({ limit: 5, owner: 'ctl-b', holdMs: 1 });
    await new Promise((r) => setTimeout(r, 20));
    const c = twin(a);
    expect((await c.claimQueued({ limit: 5, owner: 'ctl-c' })).length).toBe(5);
  });

  it('concurrent commits share transactions, yet each batch is all or nothing on its own', async () => {
    const a = await store();
    const b = twin(a);
    const base = Array.from({ length: 40 }, () => instance());
    await a.commit({ instances: base.map((next) => ({ next, expectedVersion: 0 })) });
    // two writers per instance on the same version, from two stores: exactly one wins each
    const attempts = base.flatMap((i, n) =>
      [a, b].map((s, w) =>
        s
          .commit({
            instances: [{ next: { ...i, params: { w }, version: 2 }, expectedVersion: 1 }],
            audit: [entry({ instanceId: i.id, reason: `w${w}` })],
            holdScopes: n === 0 ? [{ id: `task:x${w}`, kind: 'task', key: `x${w}`, actor: 'a', at: AT }] : undefined,
          })
          .then(
            () => 'ok',
            (err: unknown) => (isTaskControlError(err, 'CONFLICT') ? 'conflict' : `other: ${String(err)}`),
          ),
      ),
    );
    const results = await Promise.all(attempts);
    expect(results.filter((r) => r === 'ok').length).toBe(40);
    expect(results.filter((r) => r === 'conflict').length).toBe(40);
    for (const i of base) {
      const audit = await a.queryAudit({ instanceId: i.id });
      const stored = await a.getInstance(i.id);
      expect(audit.length).toBe(1);
      expect(audit[0].reason).toBe(`w${(stored!.params as { w: number }).w}`);
    }
    // the winner of instance 0 held its scope; the loser's scope is not there
    const scopes = (await a.listScopes()).map((s) => s.id);
    expect(scopes.length).toBe(1);
    // a second instance for a (taskId, logicalDate) in the same group loses too
    const date = '2024-05-01T00:00:00.000Z';
    const pair = await Promise.allSettled([
      a.commit({ instances: [{ next: instance({ logicalDate: date }), expectedVersion: 0 }] }),
      a.commit({ instances: [{ next: instance({ logicalDate: date }), expectedVersion: 0 }] }),
    ]);
    expect(pair.filter((p) => p.status === 'fulfilled').length).toBe(1);
    expect(pair.some((p) => p.status === 'rejected' && isTaskControlError(p.reason, 'CONFLICT'))).toBe(true);
  });

  it('a value the database refuses fails its batch with VALIDATION, and only that batch', async () => {
    const a = await store();
    const good = instance();
    const results = await Promise.allSettled([
      a.commit({ instances: [{ next: good, expectedVersion: 0 }] }),
      a.commit({ audit: [entry({ at: 'not a date' })] }),
      a.commit({ instances: [{ next: instance({ params: { nul: 'a\u0000b' } }), expectedVersion: 0 }] }),
    ]);
    expect(results[0].status).toBe('fulfilled');
    expect(results[1].status === 'rejected' && isTaskControlError(results[1].reason, 'VALIDATION')).toBe(true);
    expect(results[2].status === 'rejected' && isTaskControlError(results[2].reason, 'VALIDATION')).toBe(true);
    expect(await a.getInstance(good.id)).toEqual(good);
  });

  it('closes: calls after close() are UNAVAILABLE', async () => {
    const s = await makeStore();
    await disposeStore(s);
    await expect(s.getInstance('x')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(s.commit({})).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});

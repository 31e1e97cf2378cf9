// Three real controller processes on one database: commands from all of them while jobs run,
// one of them killed with SIGKILL mid-run, a pause from a controller without an executor, and
// a backfill whose process dies, finished by the survivors.
import { afterEach, describe, expect, it } from 'vitest';
import { TaskController, isTerminal, type AuditEntry, type Instance } from '../../src/index.js';
import { PostgresStateStore } from '../../src/postgres/index.js';
import { adminQuery, dropSchema, makeStore, PG_URL, pgAvailable } from './pg-env.js';
import { allInstances, auditProblems, ControllerProcess, until } from './processes.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch((err) => console.error(err));
});

/** A migrated schema with the table the fixtures log executor starts to. */
async function setup(): Promise<PostgresStateStore> {
  const store = await makeStore();
  cleanup.push(() => dropSchema(store.schema));
  cleanup.push(() => store.close());
  await adminQuery(
    `CREATE TABLE "${store.schema}".starts (seq bigserial PRIMARY KEY, instance_id text NOT NULL, attempt int NOT NULL,
       token bigint, owner text NOT NULL, pid int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`,
  );
  return store;
}

async function spawn(name: string, schema: string, options: ConstructorParameters<typeof ControllerProcess>[2] = {}): Promise<ControllerProcess> {
  const p = new ControllerProcess(name, schema, options);
  cleanup.push(() => p.stop());
  return p.ready();
}

/** An operator: a controller in this process with no executor, on its own store. */
async function operator(schema: string): Promise<TaskController> {
  const store = new PostgresStateStore({ connectionString: PG_URL, schema, pollMs: 200 });
  const c = new TaskController({ store, leaseMs: 1000 });
  for (const id of ['work', 'ticker']) c.define({ id });
  c.define({ id: 'daily', schedule: { every: 'P1D', timezone: 'UTC' }, maxAttempts: 3 });
  cleanup.push(async () => {
    await c.close();
    await store.close();
  });
  await c.start();
  return c;
}

interface StartRow {
  instance_id: string;
  attempt: number;
  token: string | null;
  owner: string;
}

/**
 * Executor starts against the audit trail: no run began without its `start` transition (actor
 * system:<controller>) and no lease token ran twice. Each start in a process that lived on began
 * exactly one run, unless the instance was taken from it (a stop, a forced pause) before its
 * executor was called; in the killed process it may also have died in between.
 */
async function startProblems(schema: string, store: PostgresStateStore, killed: string[]): Promise<string[]> {
  const problems: string[] = [];
  const rows = (await adminQuery<StartRow>(`SELECT instance_id, attempt, token, owner FROM "${schema}".starts ORDER BY seq`)).rows;
  const runs = new Map<string, number>();
  const tokens = new Set<string>();
  for (const r of rows) {
    const key = `${r.instance_id}|${r.attempt}|${r.owner}`;
    runs.set(key, (runs.get(key) ?? 0) + 1);
    const token = `${r.instance_id}|${r.token}`;
    if (tokens.has(token)) problems.push(`lease token ${token} ran twice`);
    tokens.add(token);
  }
  const starts = new Map<string, number>();
  const takenAway = new Map<string, number>();
  const chains = new Map<string, AuditEntry[]>();
  for (const e of await store.queryAudit({ kind: 'transition' })) {
    let chain = chains.get(e.instanceId!);
    if (!chain) chains.set(e.instanceId!, (chain = []));
    chain.push(e);
  }
  for (const chain of chains.values()) {
    chain.forEach((e, n) => {
      if (e.event !== 'start') return;
      const key = `${e.instanceId}|${e.attempt}|${e.actor.replace(/^system:/, '')}`;
      starts.set(key, (starts.get(key) ?? 0) + 1);
      const next = chain[n + 1];
      if (next && next.actor !== 'system:executor') takenAway.set(key, (takenAway.get(key) ?? 0) + 1);
    });
  }
  for (const [key, n] of runs) {
    if (n > (starts.get(key) ?? 0)) problems.push(`${key}: ${n} executor runs for ${starts.get(key) ?? 0} start transitions`);
  }
  for (const [key, n] of starts) {
    const owner = key.split('|')[2];
    if (killed.includes(owner)) continue;
    const missing = n - (runs.get(key) ?? 0);
    if (missing > (takenAway.get(key) ?? 0)) problems.push(`${key}: ${n} start transitions but ${runs.get(key) ?? 0} executor runs`);
  }
  return problems;
}

describe.skipIf(!pgAvailable)('several controller processes on one database', () => {
  it('survive random commands from all of them and one of them killed mid-run, leaving every instance legal and the audit complete', async () => {
    const store = await setup();
    const [p1, p2, p3] = await Promise.all(['p1', 'p2', 'p3'].map((name) => spawn(name, store.schema, { concurrency: 3 })));
    const ids = (await p1.request({ type: 'submit', taskId: 'work', n: 30, params: { steps: 20, stepMs: 25 } }, 'submitted')).ids as string[];

    const chaos = [p1, p2, p3].map((p, n) => p.request({ type: 'chaos', ids, ms: 3000, seed: 1000 + n }, 'chaos-done', 20_000));
    void chaos[2].catch(() => undefined); // p3 dies before it answers
    await new Promise((r) => setTimeout(r, 800));
    // kill p3 while it runs something
    const running = await until(
      'p3 running an instance',
      async () => {
        const items = (await store.listInstances({ state: ['running', 'pausing', 'stopping'], limit: 100 })).items;
        return items.some((i) => i.lease?.owner === p3.controllerId) ? items : undefined;
      },
      5000,
      5,
    );
    p3.kill();
    await p3.exited;
    // what p3 held when it died: nobody but a recovery (or a command) may move it on
    const orphans = (await store.listInstances({ state: ['running', 'pausing', 'stopping'], limit: 100 })).items.filter(
      (i) => i.lease?.owner === p3.controllerId,
    );
    const results = await Promise.all(chaos.slice(0, 2));
    for (const r of results) {
      expect(r.unexpected).toEqual([]);
      expect(r.issued as number).toBeGreaterThan(10);
    }

    // an operator resumes what is left paused until everything has run to its end; the
    // survivors recover what p3 held once its leases expire
    const ops = await operator(store.schema);
    const final = await until(
      'every instance settled',
      async () => {
        const list = await allInstances(store);
        const paused = list.filter((i) => i.state === 'paused').map((i) => i.id);
        if (paused.length > 0) await ops.resume({ instanceIds: paused }, { actor: 'ops' });
        return list.every((i) => isTerminal(i.state)) ? list : undefined;
      },
      25_000,
      250,
    );
    expect(final).toHaveLength(30);
    expect(final.filter((i) => ['running', 'pausing', 'stopping', 'queued', 'pending'].includes(i.state))).toEqual([]);
    expect(await auditProblems(store, final)).toEqual([]);
    expect(await startProblems(store.schema, store, [p3.controllerId])).toEqual([]);
    // p3 was running something when it died, and what it held did not stay with it
    const p3Held = running.filter((i) => i.lease?.owner === p3.controllerId);
    for (const i of orphans) {
      const later = (await store.queryAudit({ instanceId: i.id, kind: 'transition' })).slice(i.version);
      const out = later.find((e) => !['running', 'pausing', 'stopping'].includes(e.to!));
      expect(out, `${i.id} left ${i.state}`).toBeDefined();
      expect(out!.actor).not.toBe('system:executor');
    }
    // commands from every process are in the audit trail, in commit order
    const commands = await store.queryAudit({ kind: 'command' });
    expect(new Set(commands.map((e) => e.actor))).toEqual(new Set(['chaos:p1', 'chaos:p2', 'chaos:p3', 'ops']));
    const seqOrder = (await store.queryAudit({})).map((e) => e.id);
    expect(seqOrder.length).toBeGreaterThan(commands.length);
    for (const p of [p1, p2]) expect((await p.request({ type: 'errors' }, 'errors')).errors).toEqual([]);
    const transitions = await store.queryAudit({ kind: 'transition' });
    const count = (pred: (e: (typeof transitions)[number]) => boolean) => transitions.filter(pred).length;
    console.log(
      `chaos: ${commands.length} commands, ${transitions.length} transitions, ${count((e) => e.event === 'start')} starts, ` +
        `${count((e) => e.actor === 'system:recovery')} recoveries of p3's ${orphans.length} orphans, ` +
        `${(await store.queryAudit({ kind: 'late_result' })).length} late results; final: ` +
        JSON.stringify(Object.fromEntries(['succeeded', 'stopped', 'failed', 'skipped'].map((s) => [s, final.filter((i) => i.state === s).length]))),
    );
    expect(p3Held.length).toBeGreaterThan(0);
  }, 60_000);

  it('a pause from a controller with no executor reaches the executor in another process quickly', async () => {
    const store = await setup();
    const runner = await spawn('runner', store.schema);
    const ops = await operator(store.schema);
    const instance = await ops.submit('ticker');
    await ops.waitFor(instance.id, { states: ['running'], timeoutMs: 10_000 });
    const latencies: number[] = [];
    for (let n = 0; n < 15; n++) {
      const seen = new Promise<number>((resolve) => {
        const on = (m: { type: string; to?: unknown; at?: unknown }) => {
          if (m.type !== 'ticker' || m.to !== 'paused') return;
          runner.listeners.splice(runner.listeners.indexOf(on), 1);
          resolve(m.at as number);
        };
        runner.listeners.push(on);
      });
      const t0 = performance.timeOrigin + performance.now();
      await ops.pause({ instanceId: instance.id });
      latencies.push((await seen) - t0);
      await ops.resume({ instanceId: instance.id });
      await ops.waitFor(instance.id, { states: ['running'], timeoutMs: 5000 });
    }
    latencies.sort((a, b) => a - b);
    console.log(`cross-process pause: p50 ${latencies[7].toFixed(1)} ms, max ${latencies[14].toFixed(1)} ms (pause() here -> paused committed by the runner)`);
    expect(latencies[7]).toBeLessThan(250);
    expect(latencies[14]).toBeLessThan(1500);
    const pauses = (await ops.audit({ instanceId: instance.id, kind: 'transition' })).filter((e) => e.to === 'paused');
    expect(pauses.every((e) => e.event === 'pause_point' && e.actor === 'system:executor')).toBe(true);
    await ops.stop({ instanceId: instance.id }, { force: true });
  }, 60_000);

  it('a backfill started by a process that is killed is finished by the survivors, without a duplicate', async () => {
    const store = await setup();
    const doomed = await spawn('doomed', store.schema, { concurrency: 3 });
    const bf = (
      await doomed.request(
        { type: 'backfill', taskId: 'daily', from: '2024-01-01T00:00:00Z', to: '2024-01-12T00:00:00Z', concurrency: 3, params: { steps: 6, stepMs: 150 } },
        'backfill-started',
      )
    ).id as string;
    // the survivors are already up: they must not take the backfill while its driver lives
    const survivors = await Promise.all(['s1', 's2'].map((name) => spawn(name, store.schema, { concurrency: 3 })));
    await until(
      'a few slots done and more running',
      async () => {
        const counts = await store.countInstances({ backfillId: bf });
        if (counts.succeeded < 3) return false;
        // the doomed process must die holding work of its own
        const running = (await store.listInstances({ backfillId: bf, state: 'running', limit: 100 })).items;
        return running.some((i) => i.lease?.owner === doomed.controllerId);
      },
      15_000,
      10,
    );
    expect((await store.getBackfill(bf))?.owner).toBe(doomed.controllerId);
    doomed.kill();
    await doomed.exited;
    expect((await store.getBackfill(bf))?.state).toBe('running');

    // the running survivors adopt it once the dead driver's hold on it expires
    const record = await until(
      'the backfill completed',
      async () => {
        const r = await store.getBackfill(bf);
        return r?.state === 'completed' ? r : undefined;
      },
      30_000,
    );
    expect(record.nextIndex).toBe(12);
    expect(survivors.map((p) => p.controllerId)).toContain(record.owner);
    const instances: Instance[] = (await allInstances(store)).filter((i) => i.backfillId === bf);
    expect(instances).toHaveLength(12);
    expect(new Set(instances.map((i) => i.logicalDate)).size).toBe(12);
    expect(instances.every((i) => i.state === 'succeeded')).toBe(true);
    const created = (await store.queryAudit({ backfillId: bf, kind: 'transition' })).filter((e) => e.from === 'none');
    expect(created).toHaveLength(12);
    expect(await auditProblems(store, instances)).toEqual([]);
    expect(await startProblems(store.schema, store, [doomed.controllerId])).toEqual([]);
    // what the doomed process was running was recovered by a survivor
    const recovered = (await store.queryAudit({ backfillId: bf, kind: 'transition' })).filter((e) => e.actor === 'system:recovery');
    expect(recovered.length).toBeGreaterThan(0);
  }, 60_000);
});

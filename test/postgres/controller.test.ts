// Controllers on one PostgreSQL schema, each with its own store (its own connections, as a
// process of its own would have), in this process: ownership, fencing and signals.
import { afterEach, describe, expect, it } from 'vitest';
import { FunctionExecutor, TaskController, isTaskControlError, type Instance } from '../../src/index.js';
import { PostgresStateStore } from '../../src/postgres/index.js';
import { dropSchema, makeStore, PG_URL, pgAvailable } from './pg-env.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

async function schemaStore(): Promise<PostgresStateStore> {
  const store = await makeStore();
  cleanup.push(() => dropSchema(store.schema));
  cleanup.push(() => store.close());
  return store;
}

function storeOn(schema: string): PostgresStateStore {
  const store = new PostgresStateStore({ connectionString: PG_URL, schema, pollMs: 200 });
  cleanup.push(() => store.close());
  return store;
}

function controller(options: ConstructorParameters<typeof TaskController>[0]): TaskController {
  const c = new TaskController(options);
  cleanup.push(() => c.close());
  return c;
}

describe.skipIf(!pgAvailable)('controllers sharing a PostgreSQL schema', () => {
  it('a pause from a controller with no executor reaches the executor of another one', async () => {
    const a = await schemaStore();
    let pauseHeardAt = 0;
    const worker = controller({
      store: a,
      leaseMs: 2000,
      executor: new FunctionExecutor({
        ticker: async (ctx) => {
          ctx.onPauseRequested(() => (pauseHeardAt ||= performance.now()));
          for (let i = 0; ; i++) {
            await ctx.pausePoint({ i });
            await new Promise((r) => setTimeout(r, 1));
          }
        },
      }),
    });
    worker.define({ id: 'ticker' });
    await worker.start();
    const operator = controller({ store: storeOn(a.schema) });
    operator.define({ id: 'ticker' });
    await operator.start();

    const instance = await operator.submit('ticker');
    await operator.waitFor(instance.id, { states: ['running'], timeoutMs: 5000 });
    const t0 = performance.now();
    const result = await operator.pause({ instanceId: instance.id }, { actor: 'ops' });
    expect(result.applied[0]).toMatchObject({ from: 'running', to: 'pausing' });
    const paused = await operator.waitFor(instance.id, { states: ['paused'], timeoutMs: 5000 });
    const ms = performance.now() - t0;
    expect(pauseHeardAt).toBeGreaterThan(t0);
    expect(paused.checkpoint).toMatchObject({ i: expect.any(Number) });
    // the executor unwound at a pause point (not forced by a deadline): the signal arrived
    const audit = await operator.audit({ instanceId: instance.id });
    expect(audit.at(-1)).toMatchObject({ from: 'pausing', to: 'paused', event: 'pause_point', actor: 'system:executor' });
    expect(ms).toBeLessThan(1000);
    console.log(`pause from another controller: ${ms.toFixed(1)} ms until paused`);

    // and a stop from the operator ends it there
    await operator.resume({ instanceId: instance.id });
    await operator.waitFor(instance.id, { states: ['running'], timeoutMs: 5000 });
    await operator.stop({ instanceId: instance.id }, { graceMs: 2000 });
    expect((await operator.waitFor(instance.id, { states: ['stopped'], timeoutMs: 5000 })).state).toBe('stopped');
  });

  it('a controller whose lease was taken over cannot write: its result is refused and audited as late', async () => {
    const store = await schemaStore();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    // A's clock runs 10 s late, so every lease it takes has already expired for B
    const a = controller({
      store,
      controllerId: 'ctl-a',
      leaseMs: 1000,
      concurrency: 1,
      clock: () => new Date(Date.now() - 10_000),
      executor: new FunctionExecutor({ job: async () => (await released, 'from a') }), // ignores its signal: a zombie
    });
    a.define({ id: 'job', maxAttempts: 2 });
    await a.start();
    const first = await a.submit('job');
    const running = await a.waitFor(first.id, { states: ['running'], timeoutMs: 5000 });
    expect(running.lease?.owner).toBe('ctl-a');

    const b = controller({
      store: storeOn(store.schema),
      controllerId: 'ctl-b',
      leaseMs: 1000,
      executor: new FunctionExecutor({ job: async () => 'from b' }),
    });
    b.define({ id: 'job', maxAttempts: 2 });
    await b.start(); // recovers A's "expired" lease: attempt 2, run by B
    const done = await b.waitFor(first.id, { states: ['succeeded'], timeoutMs: 10_000 });
    expect(done).toMatchObject({ attempt: 2, result: 'from b' });

    // a write based on what A last saw is refused by the version check
    const stale: Instance = { ...running, state: 'succeeded', version: running.version + 1, result: 'from a' };
    delete stale.lease;
    const err = await store.commit({ instances: [{ next: stale, expectedVersion: running.version }] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isTaskControlError(err, 'CONFLICT')).toBe(true);

    // A's executor finishes at last: nothing changes, and the audit trail says so
    release();
    await new Promise((r) => setTimeout(r, 300));
    const after = await b.get(first.id);
    expect(after).toMatchObject({ state: 'succeeded', attempt: 2, result: 'from b' });
    const audit = await b.audit({ instanceId: first.id });
    expect(audit.filter((e) => e.kind === 'transition').map((e) => `${e.event}:${e.actor}`)).toEqual([
      'submit:anonymous',
      'start:system:ctl-a',
      'requeue:system:recovery',
      'start:system:ctl-b',
      'succeed:system:executor',
    ]);
    const late = audit.filter((e) => e.kind === 'late_result');
    expect(late).toHaveLength(1);
    expect(late[0]).toMatchObject({ actor: 'system:ctl-a', attempt: 1 });
  });
});

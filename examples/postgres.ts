// README "Several processes", runnable against a real server:
//   TASKCTL_PG_URL=postgres://postgres@127.0.0.1:5432/test npx tsx examples/postgres.ts
// Two controllers share one database, as two processes on two machines would: the worker runs
// the job; the operator's controller has no executor and pauses it from "elsewhere".
import pg from 'pg';
import { FunctionExecutor, TaskController } from '../src/index.js';
import { PostgresStateStore } from '../src/postgres/index.js';

const url = process.env.TASKCTL_PG_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `taskctl_example_${process.pid}`;
const executor = new FunctionExecutor({
  'sync-crm': async (ctx) => {
    for (let page = (ctx.checkpoint as number | undefined) ?? 0; page < 50; page++) {
      await ctx.pausePoint(page);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return 'synced';
  },
});

const store = new PostgresStateStore({ connectionString: url, schema });
await store.migrate(); // idempotent, safe from several processes at once
const controller = new TaskController({ store, executor, leaseMs: 30_000 });
controller.define({ id: 'sync-crm' });
await controller.start();

// the operator's side: another store object and a controller with no executor
const operatorStore = new PostgresStateStore({ connectionString: url, schema });
const operator = new TaskController({ store: operatorStore });
try {
  const job = await controller.submit('sync-crm');
  await controller.waitFor(job.id, { states: ['running'] });
  const t0 = performance.now();
  await operator.pause({ instanceId: job.id }, { actor: 'alice', reason: 'CRM maintenance' });
  const paused = await controller.waitFor(job.id, { states: ['paused'], timeoutMs: 10_000 });
  console.log(`paused at page ${String(paused.checkpoint)} by the other controller in ${(performance.now() - t0).toFixed(1)} ms`);
  await operator.resume({ instanceId: job.id }, { actor: 'alice' });
  console.log('then', (await controller.waitFor(job.id, { states: ['succeeded', 'failed'], timeoutMs: 30_000 })).state);
} finally {
  await controller.shutdown();
  await operator.close();
  await store.close();
  await operatorStore.close();
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
}

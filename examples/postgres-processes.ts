// docs/postgres.md, runnable against a real server:
//   TASKCTL_PG_URL=postgres://postgres@127.0.0.1:5432/test npx tsx examples/postgres-processes.ts
// A worker and an operator's controller on one schema, each with its own store (its own
// connections), as two processes would be: the operator holds the task's scope, the worker's
// running report pauses at its next pause point, and resumes where it stopped.
import pg from 'pg';
import { FunctionExecutor, TaskController } from '../src/index.js';
import { PostgresStateStore } from '../src/postgres/index.js';

const url = process.env.TASKCTL_PG_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `taskctl_guide_${process.pid}`;
const executor = new FunctionExecutor({
  'nightly-report': async (ctx) => {
    for (let page = (ctx.checkpoint as number | undefined) ?? 0; page < 30; page++) {
      await ctx.pausePoint(page);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return 'sent';
  },
});

const store = new PostgresStateStore({ connectionString: url, schema }); // e.g. process.env.DATABASE_URL, 'taskctl'
await store.migrate();
const worker = new TaskController({ store, executor, leaseMs: 30_000 });
worker.define({ id: 'nightly-report' });
await worker.start();

// an operator's tool, an HTTP API, a cron process: no executor, commands only
const ops = new TaskController({ store: new PostgresStateStore({ connectionString: url, schema }) });
ops.define({ id: 'nightly-report' });
try {
  const report = await ops.submit('nightly-report');
  await worker.waitFor(report.id, { states: ['running'] });
  await ops.pause({ taskId: 'nightly-report' }, { actor: 'alice', reason: 'maintenance' });
  const paused = await worker.waitFor(report.id, { states: ['paused'], timeoutMs: 10_000 });
  console.log(`paused by the operator at page ${String(paused.checkpoint)}; scope held: ${(await worker.heldScopes()).map((s) => s.id).join(', ')}`);
  await ops.resume({ taskId: 'nightly-report' }, { actor: 'alice' });
  console.log('then', (await ops.waitFor(report.id, { timeoutMs: 30_000 })).state);
} finally {
  await ops.close();
  await ops.store.close?.();
  // ... and on the way out:
  await worker.shutdown();
  await worker.close();
  await store.close();
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
}

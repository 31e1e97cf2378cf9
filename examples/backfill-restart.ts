// docs/backfill.md, "What survives a restart": npx tsx examples/backfill-restart.ts
import { FunctionExecutor, MemoryStateStore, TaskController } from '../src/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const store = new MemoryStateStore(); // in production: a PostgresStateStore both processes share
const worker = () => new TaskController({ store, executor: new FunctionExecutor({ rollup: () => sleep(3) }) });

const first = worker();
first.define({ id: 'rollup', schedule: { cron: '0 0 * * *' } });
await first.start();
const bf = await first.backfill('rollup', { from: '2024-01-01', to: '2024-01-31' });
await sleep(40);
await first.shutdown(); // the process goes away mid-backfill
const record = await store.getBackfill(bf.id);
console.log('left in the store:', record?.state, `next slot ${record?.nextIndex} of ${record?.total}`);

const second = worker(); // a new process on the same store
second.define({ id: 'rollup', schedule: { cron: '0 0 * * *' } });
await second.start(); // carries on every running or paused backfill it has the task for
const handle = second.backfillHandle(bf.id)!; // pause/resume/cancel from here on
const done = await handle.done;
const dates = (await second.list({ taskId: 'rollup', limit: 100 })).items.map((i) => i.logicalDate);
console.log('done:', done.state, done.counts.succeeded, 'succeeded;', new Set(dates).size, 'dates,', dates.length, 'instances');
await second.shutdown();

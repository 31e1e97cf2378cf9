// docs/backfill.md, "A first backfill": npx tsx examples/backfill-basic.ts
import { FunctionExecutor, TaskController } from '../src/index.js';

const controller = new TaskController({
  concurrency: 8,
  executor: new FunctionExecutor({
    'daily-sales': async (ctx) => {
      // ctx.logicalDate is the slot's date; ctx.params holds the backfill's params
      await new Promise((resolve) => setTimeout(resolve, 2));
      return { day: ctx.logicalDate, source: ctx.params.source };
    },
  }),
});
controller.define({ id: 'daily-sales', schedule: { cron: '0 2 * * *', timezone: 'Europe/Berlin' } });
await controller.start();

controller.on('backfill', (s) => {
  if (s.state !== 'running') console.log(`backfill ${s.state}: ${s.counts.succeeded}/${s.total} succeeded`);
});

const bf = await controller.backfill('daily-sales', {
  from: '2024-03-01', // wall times in the schedule's zone; both bounds inclusive
  to: '2024-03-31T23:59',
  mode: 'parallel',
  concurrency: 4, // at most 4 of its instances at once
  params: { source: 'archive' },
  actor: 'alice',
  reason: 'reload after the schema fix',
});
console.log('started', bf.id, bf.status().state, 'total', bf.status().total);
const done = await bf.done;
console.log('done:', done.state, done.counts.succeeded, 'succeeded,', done.counts.failed, 'failed');
console.log('same answer from the store:', (await controller.getBackfill(bf.id))?.state);
await controller.shutdown();

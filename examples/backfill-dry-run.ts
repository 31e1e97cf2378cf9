// docs/backfill.md, "Dry run": npx tsx examples/backfill-dry-run.ts
import { FunctionExecutor, TaskController } from '../src/index.js';

const controller = new TaskController({
  executor: new FunctionExecutor({
    'daily-sales': async (ctx) => {
      if (ctx.params.broken) throw new Error('bad input');
    },
  }),
});
controller.define({ id: 'daily-sales', schedule: { cron: '0 0 * * *' } });
await controller.start();

// some history: 2 January succeeded, 3 January failed
await controller.submit('daily-sales', { logicalDate: '2024-01-02' });
const failed = await controller.submit('daily-sales', { logicalDate: '2024-01-03', params: { broken: true } });
await controller.waitFor(failed.id);

const plan = await controller.backfill('daily-sales', {
  from: '2024-01-01',
  to: '2024-01-05',
  reprocess: 'failed',
  dryRun: true,
});
console.log((await plan.done).state);
console.log(plan.plan);
console.log(plan.preview?.map((slot) => `${slot.index} ${slot.logicalDate}`));
await controller.shutdown();

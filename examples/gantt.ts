// README "Backfill": a backfill's history as a Mermaid Gantt chart, runnable: npx tsx examples/gantt.ts
import { backfillGantt, FunctionExecutor, TaskController } from '../src/index.js';

const controller = new TaskController({
  executor: new FunctionExecutor({
    'daily-sales': async (ctx) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (ctx.logicalDate?.startsWith('2024-03-03')) throw new Error('bad day');
    },
  }),
});
controller.define({ id: 'daily-sales', schedule: { cron: '0 2 * * *' } });
await controller.start();
const bf = await controller.backfill('daily-sales', { from: '2024-03-01', to: '2024-03-05T23:59:59Z', mode: 'parallel', concurrency: 2 });
await bf.done;

const history = await controller.audit({ backfillId: bf.id });
const instances = (await controller.list({ backfillId: bf.id })).items;
console.log(backfillGantt(history, { title: `backfill ${bf.id}`, instances }));
await controller.shutdown();

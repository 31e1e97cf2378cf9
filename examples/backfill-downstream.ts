// docs/backfill.md, "includeDownstream": npx tsx examples/backfill-downstream.ts
import { FunctionExecutor, TaskController } from '../src/index.js';

const ran: string[] = [];
const controller = new TaskController({
  executor: new FunctionExecutor({
    extract: async (ctx) => {
      ran.push(`extract ${ctx.logicalDate!.slice(0, 10)}`);
      if (ctx.logicalDate!.startsWith('2024-05-02')) throw new Error('source file missing');
    },
    load: async (ctx) => void ran.push(`load ${ctx.logicalDate!.slice(0, 10)}`),
    report: async (ctx) => void ran.push(`report ${ctx.logicalDate!.slice(0, 10)}`),
  }),
});
controller.define({ id: 'extract', schedule: { cron: '0 0 * * *' } });
controller.define({ id: 'load', dependsOn: ['extract'] });
controller.define({ id: 'report', dependsOn: ['load'] });
await controller.start();

const bf = await controller.backfill('extract', { from: '2024-05-01', to: '2024-05-03', includeDownstream: true });
const done = await bf.done;
console.log(ran.join('\n'));
console.log(done.state, done.counts.succeeded, 'succeeded,', done.counts.failed, 'failed,', done.counts.stopped, 'stopped');

const load2 = (await controller.list({ taskId: 'load', backfillId: bf.id })).items.find((i) => i.logicalDate!.startsWith('2024-05-02'));
console.log('load on 2 May:', load2?.state, load2?.error?.code);
await controller.shutdown();

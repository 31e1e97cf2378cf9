// npm run demo: one job, paused at a checkpoint, resumed where it left off, stopped,
// then rerun with new params; prints the job's timeline from the audit trail.
import { formatTimeline, FunctionExecutor, TaskController } from '../src/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const controller = new TaskController({
  executor: new FunctionExecutor({
    // copies `rows` rows in steps of 10; every step is a safe place to pause
    'copy-orders': async (ctx) => {
      const rows = Number(ctx.params.rows);
      let copied = (ctx.checkpoint as { copied: number } | undefined)?.copied ?? 0;
      while (copied < rows) {
        await ctx.pausePoint({ copied }); // unwinds here when a pause is asked
        await sleep(5); // ... one batch of real work ...
        ctx.signal.throwIfAborted(); // stop and forced pause land here
        copied += 10;
        ctx.progress(copied, rows);
      }
      return { copied };
    },
  }),
});
controller.define({ id: 'copy-orders', group: 'etl', defaultParams: { rows: 200 } });
await controller.start();

const job = await controller.submit('copy-orders', { logicalDate: '2024-05-01T00:00:00Z', actor: 'scheduler' });
await sleep(40);

await controller.pause({ instanceId: job.id }, { actor: 'alice', reason: 'database maintenance' });
const paused = await controller.waitFor(job.id);
console.log(`paused at checkpoint ${JSON.stringify(paused.checkpoint)}`);

await controller.resume({ instanceId: job.id }, { actor: 'alice', strategy: 'continue' });
await sleep(30);
await controller.stop({ instanceId: job.id }, { actor: 'bob', reason: 'wrong source table', graceMs: 1000 });
const stopped = await controller.waitFor(job.id);
console.log(`stopped: ${stopped.state}, ${stopped.progress?.done}/${stopped.progress?.total} rows copied`);

await controller.rerun({ instanceId: job.id }, { actor: 'bob', params: { rows: 50 }, reason: 'fixed source, smaller batch' });
const done = await controller.waitFor(job.id);
console.log(`rerun: ${done.state} on attempt ${done.attempt} with result ${JSON.stringify(done.result)}\n`);

console.log(formatTimeline(await controller.audit({ instanceId: job.id }), { relative: true }));
await controller.shutdown();

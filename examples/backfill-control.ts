// docs/backfill.md, "Pause, resume, cancel": npx tsx examples/backfill-control.ts
import { FunctionExecutor, TaskController } from '../src/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const controller = new TaskController({
  executor: new FunctionExecutor({
    reindex: async (ctx) => {
      await sleep(5);
      ctx.signal.throwIfAborted(); // a cancel stops running instances through their signal
    },
  }),
});
controller.define({ id: 'reindex', schedule: { every: 'PT1H' } });
await controller.start();

const bf = await controller.backfill('reindex', { from: '2024-01-01T00:00:00Z', to: '2024-01-31T23:00:00Z' });
await sleep(30);
await bf.pause({ actor: 'ops' }); // creates and dispatches nothing more until resumed
const created = () => Object.values(bf.status().counts).reduce((a, b) => a + b, 0);
const atPause = created();
await sleep(30);
console.log(bf.status().state, `${atPause} instances at the pause, ${created()} 30 ms later`);

await bf.resume({ actor: 'ops' });
await sleep(30);
await bf.cancel({ actor: 'ops' }); // stops its running instances and creates no more
const done = await bf.done; // resolves once every instance of it is finished
console.log('done:', done.state, `${done.counts.succeeded + done.counts.stopped} of ${done.total} slots were created`);

// the store keeps the record; any controller can report on it
console.log('record:', (await controller.getBackfill(bf.id))?.state);
await controller.shutdown();

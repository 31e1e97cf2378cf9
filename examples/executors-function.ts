// docs/executors.md, "Executors" and "FunctionExecutor", runnable: npx tsx examples/executors-function.ts
import assert from 'node:assert/strict';
import { FunctionExecutor, TaskController, type ExecutionContext, type Executor as LibraryExecutor } from '../src/index.js';

// The interface the doc lists, checked against the library's own type at compile time
interface Executor {
  execute(ctx: ExecutionContext): Promise<unknown>; // resolve = succeeded, throw = failed
}
type SameShape<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const executorIsListedRight: SameShape<Executor, LibraryExecutor> = true;
assert.ok(executorIsListedRight);

// stands in for your real work: renders one page, and gives up when the signal fires
async function renderPage(page: number, { signal }: { signal: AbortSignal }): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 2));
  signal.throwIfAborted();
  void page;
}

const executor = new FunctionExecutor({
  'nightly-report': async (ctx) => {
    let page = (ctx.checkpoint as number | undefined) ?? 0; // resumed where it paused
    for (; page < 100; page++) {
      await ctx.pausePoint(page); // a safe place to pause
      await renderPage(page, { signal: ctx.signal }); // stop and timeouts abort this
      ctx.progress(page + 1, 100);
    }
    return { pages: page }; // kept as instance.result
  },
});
executor.register('cleanup', async () => { /* ... */ }); // add or replace later
const controller = new TaskController({ executor });

// run it: pause at a pause point, resume from the checkpoint, finish
controller.define({ id: 'nightly-report', group: 'reports' });
controller.define({ id: 'cleanup' });
controller.define({ id: 'flaky' });
controller.define({ id: 'unhandled' });
executor.register('flaky', async () => {
  throw Object.assign(new Error('warehouse is read-only'), { code: 'WAREHOUSE_READ_ONLY' });
});
await controller.start();

const report = await controller.submit('nightly-report', { logicalDate: '2024-05-01T00:00:00Z' });
await new Promise((resolve) => setTimeout(resolve, 30));
await controller.pause({ instanceId: report.id }, { actor: 'alice' });
const paused = await controller.waitFor(report.id);
console.log(`nightly-report ${paused.state} at page ${paused.checkpoint}`);
await controller.resume({ instanceId: report.id }, { actor: 'alice' }); // continue from the checkpoint
const done = await controller.waitFor(report.id);
console.log(`nightly-report ${done.state}: ${JSON.stringify(done.result)}`);
assert.equal(paused.state, 'paused');
assert.equal(done.state, 'succeeded');
assert.deepEqual(done.result, { pages: 100 });

// a registered handler, a thrown error's code, and a task with no handler
const cleanup = await controller.waitFor((await controller.submit('cleanup')).id);
const flaky = await controller.waitFor((await controller.submit('flaky')).id);
const unhandled = await controller.waitFor((await controller.submit('unhandled')).id);
console.log(`cleanup ${cleanup.state}; flaky ${flaky.state} (${flaky.error?.code}); unhandled ${unhandled.state} (${unhandled.error?.code})`);
assert.equal(cleanup.state, 'succeeded');
assert.equal(flaky.error?.code, 'WAREHOUSE_READ_ONLY');
assert.equal(unhandled.error?.code, 'NO_HANDLER');
await controller.shutdown();

// The README's twenty-line example, runnable: npx tsx examples/quickstart.ts
import { FunctionExecutor, TaskController } from '../src/index.js';

async function renderPage(page: number, signal: AbortSignal): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 2));
  signal.throwIfAborted();
  void page;
}

const controller = new TaskController({
  concurrency: 4,
  executor: new FunctionExecutor({
    'nightly-report': async (ctx) => {
      let page = (ctx.checkpoint as number | undefined) ?? 0; // resumed where it paused
      for (; page < 100; page++) {
        await ctx.pausePoint(page); // a safe place to pause
        await renderPage(page, ctx.signal); // stop and timeouts abort this
        ctx.progress(page + 1, 100);
      }
      return { pages: page };
    },
  }),
});
controller.define({ id: 'nightly-report', group: 'reports', timeoutMs: 3_600_000, maxAttempts: 3 });
await controller.start();

const run = await controller.submit('nightly-report', { logicalDate: '2024-05-01T00:00:00Z' });
await new Promise((resolve) => setTimeout(resolve, 30));
await controller.pause({ instanceId: run.id }, { actor: 'alice', reason: 'db maintenance' });
const paused = await controller.waitFor(run.id);
await controller.resume({ instanceId: run.id }); // continues from the checkpoint
const done = await controller.waitFor(run.id, { states: ['succeeded', 'failed'] });
console.log(`paused at page ${String(paused.checkpoint)}, then ${done.state}: ${JSON.stringify(done.result)}`);
await controller.shutdown();

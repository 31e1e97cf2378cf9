// docs/getting-started.md, runnable: npx tsx examples/getting-started.ts
import { FunctionExecutor, TaskController, formatTimeline } from '../src/index.js';

// 1. Wrap the work you already have: one async function per task.
const executor = new FunctionExecutor({
  'send-invoices': async (ctx) => {
    const batch = Number(ctx.params.batch);
    let sent = (ctx.checkpoint as number | undefined) ?? 0;
    while (sent < batch) {
      await ctx.pausePoint(sent); // where a pause may land
      ctx.signal.throwIfAborted(); // where a stop lands
      sent += 1; // ... send one invoice ...
      ctx.progress(sent, batch);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    return { sent };
  },
});

// 2. A controller runs it: concurrency, timeouts, retries, audit.
const controller = new TaskController({ executor, concurrency: 4 });
controller.define({ id: 'send-invoices', group: 'billing', defaultParams: { batch: 100 }, timeoutMs: 60_000, maxAttempts: 2 });
controller.on('transition', (e) => console.log(`${e.taskId} ${e.from} -> ${e.to} (${e.actor})`));
await controller.start();

// 3. Submit an instance for a logical date (a second submit for the same date returns it).
const instance = await controller.submit('send-invoices', { logicalDate: '2024-06-01T00:00:00Z', params: { batch: 50 } });

// 4. Control it.
await new Promise((resolve) => setTimeout(resolve, 20));
await controller.pause({ instanceId: instance.id }, { actor: 'alice', reason: 'mail server maintenance' });
console.log('paused at', (await controller.waitFor(instance.id)).checkpoint);
await controller.resume({ instanceId: instance.id }, { actor: 'alice' });
const done = await controller.waitFor(instance.id, { states: ['succeeded', 'failed'] });
console.log(done.state, done.result);

// 5. What happened, from the audit trail.
console.log(formatTimeline(await controller.audit({ instanceId: instance.id })));
await controller.shutdown();

// docs/testing.md, runnable: npx tsx examples/testing-workflows.ts
// A workflow test with an hour-long timeout, ten-minute retry delays and a pause in the middle,
// run on a fake clock: it takes milliseconds.
import assert from 'node:assert/strict';
import { createTestController } from '../src/testing/index.js';

const started = performance.now();
let calls = 0;
const { controller, advance, until } = await createTestController({
  handlers: {
    // fails on its first attempt, then works in ten one-minute steps with a pause point each
    sync: async (ctx) => {
      calls++;
      if (ctx.attempt === 1) throw new Error('upstream not ready');
      for (let minute = (ctx.checkpoint as number | undefined) ?? 0; minute < 10; minute++) {
        await ctx.pausePoint(minute);
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      return 'synced';
    },
  },
});
controller.define({ id: 'sync', timeoutMs: 60 * 60_000, maxAttempts: 3, retryDelayMs: 10 * 60_000 });

const instance = await controller.submit('sync');
await until(instance.id, 'failed'); // attempt 1 failed; a retry is due in ten fake minutes
await advance(10 * 60_000); // ten minutes pass in a blink
await until(instance.id, 'running');
await controller.pause({ instanceId: instance.id });
const paused = await until(instance.id, 'paused');
await controller.resume({ instanceId: instance.id });
const done = await until(instance.id, ['succeeded', 'failed']);

assert.equal(done.state, 'succeeded');
assert.equal(done.attempt, 2);
assert.equal(calls, 3); // attempt 1, attempt 2 until the pause, attempt 2 resumed
assert.equal(typeof paused.checkpoint, 'number');
console.log(`a 10-minute workflow with a retry and a pause ran in ${(performance.now() - started).toFixed(0)} ms of real time`);
await controller.shutdown();

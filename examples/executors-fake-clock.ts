// docs/executors.md, "Testing workflows in process", runnable: npx tsx examples/executors-fake-clock.ts
// A ten-minute timeout and a five-minute retry delay, on a fake clock: it runs in milliseconds.
// In a test file the same lines run under vitest (or use node:assert with any runner).
import { expect } from 'vitest';
import type { ExecutionContext } from '../src/index.js';
import { createTestController } from '../src/testing/index.js';

const MIN = 60_000;

// the first attempt hangs (until the timeout aborts it); the retry works for two fake minutes
async function etl(ctx: ExecutionContext): Promise<string> {
  if (ctx.attempt === 1) {
    await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }));
  }
  await new Promise<void>((resolve) => h.clock.setTimeout(resolve, 2 * MIN)); // waits on the fake clock
  return 'loaded';
}

const startedAt = performance.now();
const h = await createTestController({ handlers: { etl } }); // memory store, FakeClock, started
const fakeStart = h.clock.now();
h.controller.define({ id: 'etl', timeoutMs: 10 * MIN, maxAttempts: 3, retryDelayMs: 5 * MIN });
const run = await h.controller.submit('etl');
await h.advance(10 * MIN); // the first attempt times out
expect((await h.controller.get(run.id))?.error?.code).toBe('TIMEOUT');
await h.advance(5 * MIN); // the retry starts
await h.until(run.id, 'succeeded'); // steps fake time until then

const done = await h.controller.get(run.id);
expect(done?.attempt).toBe(2);
expect(done?.result).toBe('loaded');
console.log(`etl ${done?.state} on attempt ${done?.attempt} at fake ${h.clock.date().toISOString()}`);
console.log(h.transitions.map((t) => `${t.from} -> ${t.to}`).join(', '));
console.log(`${(h.clock.now() - fakeStart) / MIN} fake minutes in ${Math.round(performance.now() - startedAt)} ms of real time`);
await h.controller.shutdown();

// docs/operations.md, runnable: npx tsx examples/operations.ts
import { FunctionExecutor, TaskController } from '../src/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const controller = new TaskController({
  concurrency: 8,
  executor: new FunctionExecutor({
    extract: async (ctx) => {
      for (let step = (ctx.checkpoint as number | undefined) ?? 0; step < 20; step++) {
        await ctx.pausePoint(step);
        await sleep(2);
        ctx.signal.throwIfAborted();
      }
      if (ctx.params.fail) throw Object.assign(new Error('source unavailable'), { code: 'SOURCE_DOWN' });
      return 'extracted';
    },
    load: async () => 'loaded',
  }),
});
controller.define({ id: 'extract', group: 'etl' });
controller.define({ id: 'load', group: 'etl', dependsOn: ['extract'] });
await controller.start();
const day = '2024-06-01T00:00:00.000Z';

// pause: graceful (at the next pause point), forced, or a whole scope
const a = await controller.submit('extract', { logicalDate: day });
const b = await controller.submit('load', { logicalDate: day }); // pending until extract succeeds
await sleep(10);
const paused = await controller.pause({ instanceId: a.id }, { reason: 'investigating', graceMs: 5_000 });
console.log('pause:', paused.applied); // running -> pausing, then paused at the pause point
await controller.waitFor(a.id);
await controller.pause({ group: 'etl' }, { actor: 'ops', reason: 'warehouse upgrade' }); // holds the group
const held = await controller.submit('extract', { logicalDate: '2024-06-02T00:00:00.000Z' });
console.log('submitted into a held scope:', held.state); // paused

// resume: one instance inside a held scope is refused; release the scope instead
const refused = await controller.resume({ instanceId: a.id });
console.log('resume inside held scope:', refused.rejected[0]?.code); // SCOPE_HELD
const resumed = await controller.resume({ group: 'etl' }, { actor: 'ops', strategy: 'continue' });
console.log('resume group:', resumed.applied.map((c) => `${c.from}->${c.to}`));
console.log('load after extract:', (await controller.waitFor(b.id, { states: ['succeeded'] })).state);

// stop: graceful with a grace period, or forced
const c = await controller.submit('extract', { logicalDate: '2024-06-03T00:00:00.000Z' });
await sleep(5);
await controller.stop({ instanceId: c.id }, { graceMs: 1_000, reason: 'wrong input' });
console.log('stopped:', (await controller.waitFor(c.id)).state);

// rerun: a new attempt of the same instance, with new params; failed ones only; downstream too
await controller.rerun({ instanceId: c.id }, { params: { fail: true } });
console.log('rerun failed:', (await controller.waitFor(c.id)).error?.code);
const again = await controller.rerun({ taskId: 'extract' }, { onlyFailed: true, params: { fail: false } });
console.log('rerun only failed:', again.applied.length, 'instance(s)');
const preview = await controller.rerun({ instanceId: a.id }, { downstream: true, dryRun: true });
console.log('rerun with downstream would touch:', preview.applied.map((x) => x.instanceId === b.id ? 'load' : 'extract'));
await controller.shutdown();

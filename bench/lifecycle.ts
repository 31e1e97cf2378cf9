import PQueue from 'p-queue';
import { FunctionExecutor, TaskController } from '../src/index.js';
import { percentile, printTable, type Row } from './util.js';

/** Full lifecycle throughput: submit -> succeeded for a no-op task on the memory store. */
export async function lifecycleThroughput(n: number, extra: ConstructorParameters<typeof TaskController>[0] = {}): Promise<number> {
  let done = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const controller = new TaskController({
    concurrency: 64,
    executor: new FunctionExecutor({ noop: async () => undefined }),
    ...extra,
  });
  controller.define({ id: 'noop' });
  controller.on('transition', (e) => {
    if (e.to === 'succeeded' && ++done === n) resolveAll();
  });
  await controller.start();
  const t0 = performance.now();
  // callers submit concurrently, as a service's request handlers do; `wave` in flight at once
  const wave = 256;
  for (let i = 0; i < n; i += wave) {
    const batch: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(n, i + wave); j++) batch.push(controller.submit('noop'));
    await Promise.all(batch);
  }
  await all;
  const ms = performance.now() - t0;
  await controller.shutdown();
  return (n / ms) * 1000;
}

/** The reference: raw p-queue running the same no-op functions in the same process. */
export async function rawPQueueThroughput(n: number): Promise<number> {
  const queue = new PQueue({ concurrency: 64 });
  const noop = async () => undefined;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) void queue.add(noop);
  await queue.onIdle();
  return (n / (performance.now() - t0)) * 1000;
}

/** Pause latency: pause() called -> instance `paused`, for an executor at a pause point every tick. */
export async function pauseLatency(samples: number): Promise<{ p50: number; p99: number; max: number }> {
  const controller = new TaskController({
    concurrency: 4,
    executor: new FunctionExecutor({
      ticker: async (ctx) => {
        for (let i = 0; ; i++) {
          await ctx.pausePoint({ i });
          await new Promise<void>((r) => setImmediate(r));
        }
      },
    }),
  });
  controller.define({ id: 'ticker' });
  await controller.start();
  const lat: number[] = [];
  const instance = await controller.submit('ticker');
  await controller.waitFor(instance.id, { states: ['running'] });
  for (let s = 0; s < samples; s++) {
    const paused = new Promise<number>((resolve) => {
      const on = (e: { instanceId: string; to: string }) => {
        if (e.instanceId === instance.id && e.to === 'paused') {
          controller.off('transition', on);
          resolve(performance.now());
        }
      };
      controller.on('transition', on);
    });
    const t0 = performance.now();
    await controller.pause({ instanceId: instance.id });
    lat.push((await paused) - t0);
    await controller.resume({ instanceId: instance.id });
    await controller.waitFor(instance.id, { states: ['running'] });
  }
  await controller.stop({ instanceId: instance.id }, { force: true });
  await controller.shutdown();
  lat.sort((a, b) => a - b);
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat[lat.length - 1] };
}

export async function benchLifecycle(): Promise<Row[]> {
  const n = 100_000;
  await lifecycleThroughput(10_000); // warm up
  await rawPQueueThroughput(10_000);
  const ours = await lifecycleThroughput(n);
  const raw = await rawPQueueThroughput(n);
  const pause = await pauseLatency(1000);
  return [
    { benchmark: `lifecycle submit->succeeded (${n} no-op, memory store)`, value: Math.round(ours), unit: 'instances/s', reference: `raw p-queue ${Math.round(raw)}/s`, ratio: ours / raw, target: '>= 100000/s' },
    { benchmark: 'pause latency p50 (pause() -> paused)', value: pause.p50, unit: 'ms', reference: '', ratio: '', target: '' },
    { benchmark: 'pause latency p99', value: pause.p99, unit: 'ms', reference: `max ${pause.max.toFixed(3)} ms`, ratio: '', target: '< 1 ms' },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printTable('lifecycle', await benchLifecycle());
}

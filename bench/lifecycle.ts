import PQueue from 'p-queue';
import { FunctionExecutor, TaskController } from '../src/index.js';
import { gc, percentile, printTable, type Row } from './util.js';

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

/**
 * Pause latency: pause() called -> instance `paused`, for an executor at a pause point every
 * tick. `warmup` pause/resume cycles run first (unmeasured) so that the figures are the
 * steady state, as for the throughput runs.
 */
export async function pauseLatency(samples: number, warmup = 0): Promise<{ p50: number; p99: number; max: number }> {
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
  for (let s = 0; s < warmup + samples; s++) {
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
    const ms = (await paused) - t0;
    if (s >= warmup) lat.push(ms);
    await controller.resume({ instanceId: instance.id });
    await controller.waitFor(instance.id, { states: ['running'] });
  }
  await controller.stop({ instanceId: instance.id }, { force: true });
  await controller.shutdown();
  lat.sort((a, b) => a - b);
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat[lat.length - 1] };
}

/**
 * The reference for pause latency: how late a bare setImmediate callback runs on this
 * machine, over as many samples. No pause can be faster than one turn of the event loop
 * (the executor reaches its pause point on its next tick), so this p99 is the floor that
 * the machine (its scheduler and its other processes) sets for the pause p99.
 */
export async function eventLoopTurn(samples: number): Promise<{ p50: number; p99: number; max: number }> {
  const lat: number[] = [];
  for (let s = 0; s < samples; s++) {
    const t0 = performance.now();
    await new Promise<void>((r) => setImmediate(r));
    lat.push(performance.now() - t0);
  }
  lat.sort((a, b) => a - b);
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat[lat.length - 1] };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

export async function benchLifecycle(): Promise<Row[]> {
  const n = 100_000;
  const rounds = 5;
  await lifecycleThroughput(10_000); // warm up
  await rawPQueueThroughput(10_000);
  // alternate the two so that a slow stretch of the machine hits both alike; report medians
  const ours: number[] = [];
  const raw: number[] = [];
  for (let r = 0; r < rounds; r++) {
    gc();
    ours.push(await lifecycleThroughput(n));
    gc();
    raw.push(await rawPQueueThroughput(n));
  }
  const oursMedian = median(ours);
  const rawMedian = median(raw);
  gc();
  const pause = await pauseLatency(5000, 3000);
  const floor = await eventLoopTurn(5000);
  const range = (v: number[]) => `${Math.round(Math.min(...v))}-${Math.round(Math.max(...v))}`;
  return [
    {
      benchmark: `lifecycle submit->succeeded (${n} no-op, memory store), median of ${rounds}`,
      value: Math.round(oursMedian),
      unit: 'instances/s',
      reference: `raw p-queue ${Math.round(rawMedian)}/s (ours ${range(ours)}, raw ${range(raw)})`,
      ratio: oursMedian / rawMedian,
      target: '>= 100000/s',
    },
    { benchmark: 'pause latency p50 (pause() -> paused, 5000 samples)', value: pause.p50, unit: 'ms', reference: `event-loop turn p50 ${floor.p50.toFixed(3)} ms`, ratio: '', target: '' },
    {
      benchmark: 'pause latency p99',
      value: pause.p99,
      unit: 'ms',
      reference: `event-loop turn p99 ${floor.p99.toFixed(3)} ms; max ${pause.max.toFixed(1)} / ${floor.max.toFixed(1)} ms`,
      ratio: '',
      target: '< 1 ms',
    },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printTable('lifecycle', await benchLifecycle());
}

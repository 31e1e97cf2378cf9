import { FunctionExecutor, TaskController } from '../src/index.js';
import { gc, printTable, type Row } from './util.js';

/** A 100,000-slot backfill of a no-op task: instances per second and peak heap while it runs. */
export async function benchBackfillRun(slots = 100_000): Promise<Row[]> {
  const controller = new TaskController({ concurrency: 64, executor: new FunctionExecutor({ noop: async () => undefined }) });
  controller.define({ id: 'noop', schedule: { every: 'PT1M' } });
  await controller.start();
  gc();
  const baseHeap = process.memoryUsage().heapUsed;
  let peak = baseHeap;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 20);
  const from = new Date('2020-01-01T00:00:00Z');
  const to = new Date(from.getTime() + (slots - 1) * 60_000);
  const t0 = performance.now();
  const bf = await controller.backfill('noop', { from, to, mode: 'parallel', concurrency: 64 });
  const status = await bf.done;
  const ms = performance.now() - t0;
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().heapUsed);
  await controller.shutdown();
  if (status.counts.succeeded !== slots) throw new Error(`backfill ended with ${JSON.stringify(status.counts)}`);
  return [
    { benchmark: `backfill of ${slots} slots (parallel 64, no-op, memory store)`, value: Math.round((slots / ms) * 1000), unit: 'instances/s' },
    { benchmark: 'peak heap above baseline during that backfill (the store keeps every instance and audit entry)', value: Math.round((peak - baseHeap) / 1048576), unit: 'MiB' },
    { benchmark: 'heap per created instance (instance + 3 audit entries)', value: Math.round((peak - baseHeap) / slots), unit: 'bytes' },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printTable('backfill run', await benchBackfillRun());
}

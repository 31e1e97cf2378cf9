// docs/executors.md, "The BullMQ adapter", runnable: npx tsx examples/bullmq-thumbnails.ts
// (needs Redis at 127.0.0.1:6379, or REDIS_URL). examples/bullmq-worker.ts tells the longer story:
// stop, rerun, the audit trail.
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { BullMQExecutor, bullmqProcessor } from '../src/adapters/bullmq.js';
import { MemoryStateStore, TaskController } from '../src/index.js';

// whatever happens, this example ends by itself
setTimeout(() => {
  console.error('the example did not finish within 30 s');
  process.exit(1);
}, 30_000).unref();

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const connection = new Redis(redisUrl, { maxRetriesPerRequest: null, connectTimeout: 2_000, retryStrategy: () => null, lazyConnect: true });
connection.on('error', () => undefined);
try {
  await connection.connect();
} catch {
  console.error(`Redis is not reachable at ${redisUrl}: start one (docker run -p 6379:6379 redis) or set REDIS_URL.`);
  process.exit(1);
}
const store = new MemoryStateStore(); // in production: a PostgresStateStore

// your work: resizing one image (here: a short wait that a stop cuts short)
async function resize(image: string, { signal }: { signal: AbortSignal }): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, 20);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  void image;
}

interface ThumbnailJob { day: string; images: string[] }

const queue = new Queue('thumbnails', { connection });
await queue.obliterate({ force: true }); // start from an empty queue (the example's own)
const executor = new BullMQExecutor();
const controller = new TaskController({ executor, store }); // concurrency >= the worker's
controller.define({ id: 'thumbnails', group: 'media' });
await controller.start();

const worker = new Worker('thumbnails', bullmqProcessor<ThumbnailJob>(controller, {
  taskId: 'thumbnails',
  executor,
  queue, // to find jobs again after a restart
  logicalDate: (job) => job.data.day, // optional: one instance per day
  process: async (job, ctx) => { // your processor, plus taskctl's ctx
    for (let i = (ctx.checkpoint as number) ?? 0; i < job.data.images.length; i++) {
      await ctx.pausePoint(i);
      await resize(job.data.images[i], { signal: ctx.signal });
      ctx.progress(i + 1, job.data.images.length); // also job.updateProgress
    }
    return { resized: job.data.images.length };
  },
}), { connection, concurrency: 4 });

controller.on('transition', (e) => console.log(`  taskctl  ${e.instanceId.slice(-6)}  ${e.from} -> ${e.to}  (${e.actor})`));
const images = (n: number) => Array.from({ length: n }, (_, i) => `img-${i}.jpg`);
const until = async (check: () => Promise<boolean>) => {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 10));
};
const underWay = (day: string) =>
  new Promise<string>((resolve) => {
    const onProgress = async (e: { instanceId: string; done: number }) => {
      if (e.done < 3 || (await controller.get(e.instanceId))?.logicalDate?.slice(0, 10) !== day) return;
      controller.off('progress', onProgress);
      resolve(e.instanceId);
    };
    controller.on('progress', onProgress);
  });

try {
  // two days of thumbnails; pause the first once it is under way, resume it, let both finish
  const firstUnderWay = underWay('2024-05-01');
  const may1 = await queue.add('day', { day: '2024-05-01', images: images(30) });
  const may2 = await queue.add('day', { day: '2024-05-02', images: images(5) });
  const first = await controller.get(await firstUnderWay);
  if (!first) throw new Error('no instance for 2024-05-01');
  await controller.pause({ instanceId: first.id }, { actor: 'alice', reason: 'image CDN is rate-limiting' });
  await until(async () => (await queue.getJobState(may1.id!)) === 'delayed');
  console.log(`  bullmq   job ${may1.id} is delayed while paused at image ${(await controller.get(first.id))?.checkpoint}`);
  await controller.resume({ instanceId: first.id }, { actor: 'alice' });
  await until(async () => (await queue.getJobState(may1.id!)) === 'completed' && (await queue.getJobState(may2.id!)) === 'completed');
  const value = (await queue.getJob(may1.id!))?.returnvalue;
  console.log(`  bullmq   job ${may1.id} completed: ${JSON.stringify(value)}`);
  if (value?.resized !== 30) throw new Error(`expected 30 images resized, got ${JSON.stringify(value)}`);
} finally {
  await worker.close(); // in-flight jobs finish or park, then
  await controller.shutdown({ graceMs: 0 });
  await queue.obliterate({ force: true });
  await queue.close();
  await connection.quit();
}

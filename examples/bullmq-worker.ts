// A BullMQ worker under taskctl's control: pause, resume, stop and rerun BullMQ jobs.
//   npx tsx examples/bullmq-worker.ts        (needs Redis at 127.0.0.1:6379, or REDIS_URL)
// In your code the imports are 'taskctl' and 'taskctl/bullmq'.
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { BullMQExecutor, bullmqProcessor } from '../src/adapters/bullmq.js';
import { TaskController } from '../src/index.js';

// whatever happens, this example ends by itself
setTimeout(() => {
  console.error('the example did not finish within 30 s');
  process.exit(1);
}, 30_000).unref();

interface Album {
  album: string;
  images: number;
}

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const probe = new Redis(redisUrl, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
probe.on('error', () => undefined);
try {
  await probe.connect();
} catch {
  console.error(`Redis is not reachable at ${redisUrl}: start one (docker run -p 6379:6379 redis) or set REDIS_URL.`);
  process.exit(1);
} finally {
  probe.disconnect();
}

const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
const queueName = `thumbnails-example-${process.pid}`;
const queue = new Queue<Album>(queueName, { connection });

// 1. taskctl runs the work; the BullMQExecutor hands it the jobs BullMQ delivers
const executor = new BullMQExecutor();
const controller = new TaskController({ executor, concurrency: 4 });
controller.define({ id: 'thumbnails', group: 'media' });
controller.on('transition', (e) => console.log(`  taskctl  ${e.instanceId.slice(-6)}  ${e.from} -> ${e.to}${e.actor?.startsWith('system') ? '' : `  (${e.actor})`}`));
await controller.start();

// 2. your processor, as you would give it to a Worker, plus taskctl's ctx
const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });

const worker = new Worker(
  queueName,
  bullmqProcessor<Album, { album: string; resized: number; attempt: number }>(controller, {
    taskId: 'thumbnails',
    executor,
    queue,
    process: async (job, ctx) => {
      const images = Number(ctx.params.images); // the job's data, with taskctl's overrides merged in
      let done = typeof ctx.checkpoint === 'number' ? ctx.checkpoint : 0;
      for (; done < images; done++) {
        await ctx.pausePoint(done); // a safe place to pause: resumes here
        await sleep(20, ctx.signal); // "resize one image"; stop aborts it
        ctx.progress(done + 1, images); // also the job's progress in BullMQ
      }
      return { album: job.data.album, resized: done, attempt: ctx.attempt };
    },
  }),
  { connection, concurrency: 4 },
);
worker.on('completed', (job, value) => console.log(`  bullmq   job ${job.id} completed: ${JSON.stringify(value)}`));
worker.on('failed', (job, err) => console.log(`  bullmq   job ${job?.id} failed: ${err.message}`));

async function instanceOf(jobId: string) {
  for (;;) {
    const { items } = await controller.list({ taskId: 'thumbnails' });
    const found = items.find((i) => i.params.bullmqJobId === jobId);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 10));
  }
}
async function jobIs(jobId: string, state: string) {
  while ((await queue.getJobState(jobId)) !== state) await new Promise((r) => setTimeout(r, 10));
}
const started = (instanceId: string) =>
  new Promise<void>((resolve) => {
    const listener = (e: { instanceId: string; done: number }) => {
      if (e.instanceId === instanceId && e.done >= 3) {
        controller.off('progress', listener);
        resolve();
      }
    };
    controller.on('progress', listener);
  });

try {
  console.log('\n1. pause and resume a running job');
  const summer = await queue.add('album', { album: 'summer', images: 20 });
  const a = await instanceOf(summer.id!);
  await started(a.id);
  await controller.pause({ instanceId: a.id }, { actor: 'alice', reason: 'disk almost full' });
  await jobIs(summer.id!, 'delayed');
  console.log(`  bullmq   job ${summer.id} is delayed while paused; checkpoint ${JSON.stringify((await controller.get(a.id))?.checkpoint)}`);
  await controller.resume({ instanceId: a.id }, { actor: 'alice' });
  await jobIs(summer.id!, 'completed');

  console.log('\n2. stop a job: it fails in BullMQ, with no retry');
  const winter = await queue.add('album', { album: 'winter', images: 500 }, { attempts: 3 });
  const b = await instanceOf(winter.id!);
  await started(b.id);
  await controller.stop({ instanceId: b.id }, { actor: 'bob', reason: 'wrong album' });
  await jobIs(winter.id!, 'failed');

  console.log('\n3. rerun it from taskctl with other params: BullMQ runs the job again');
  await controller.rerun({ instanceId: b.id }, { actor: 'bob', params: { images: 5 } });
  await jobIs(winter.id!, 'completed');
  await new Promise((r) => setTimeout(r, 50)); // let the worker's 'completed' event print first

  console.log('\n4. the audit trail of the first job');
  for (const e of await controller.audit({ instanceId: a.id })) {
    console.log(`  ${e.at}  ${e.kind.padEnd(10)} ${e.actor.padEnd(26)} ${e.action ?? e.event ?? ''} ${e.from ? `${e.from} -> ${e.to}` : ''} ${e.reason ?? ''}`);
  }
} finally {
  await worker.close();
  await controller.shutdown({ graceMs: 0 });
  await queue.obliterate({ force: true });
  await queue.close();
  await connection.quit();
}

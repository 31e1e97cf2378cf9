// A demo service for the operator console: a few tasks with real (if small) work, jobs running,
// history with failures, and a backfill in progress. Used by examples/console.ts (npm run
// console) and scripts/screenshots.ts.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FunctionExecutor, TaskController, type ExecutionContext } from '../src/index.js';
import { apiKeys, createControlHandler, type ControlHandler } from '../src/http/index.js';

export interface Demo {
  url: string;
  keys: Record<string, string>;
  controller: TaskController;
  handler: ControlHandler;
  server: Server;
  backfillId: string;
  close(): Promise<void>;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });

/** `steps` steps of `stepMs`, a pause point before each, resuming from the checkpoint. */
function steps(n: number, stepMs: number, failEvery = 0) {
  return async (ctx: ExecutionContext) => {
    let i = typeof ctx.checkpoint === 'number' ? ctx.checkpoint : 0;
    for (; i < n; i++) {
      await ctx.pausePoint(i);
      await sleep(stepMs * (0.6 + Math.random() * 0.8), ctx.signal);
      ctx.progress(i + 1, n);
    }
    const day = ctx.logicalDate ? new Date(ctx.logicalDate).getUTCDate() : 0;
    if (failEvery && day % failEvery === 0) throw new Error(`upstream API answered 502 for ${ctx.logicalDate?.slice(0, 10)}`);
    return { rows: n * 1000 };
  };
}

export const DEMO_KEYS = { 'k-ops-123': 'ops-bot', 'k-alice-456': 'alice' };

/** Start the demo on `port` (0: any free port) of 127.0.0.1. */
export async function startDemo(options: { port?: number; host?: string; speed?: number; quiet?: boolean } = {}): Promise<Demo> {
  const speed = options.speed ?? 1;
  const controller = new TaskController({
    concurrency: 8,
    executor: new FunctionExecutor({
      'ingest-orders': steps(10, 300 * speed, 9),
      'build-report': steps(5, 250 * speed),
      'sync-crm': steps(400, 500 * speed),
      'export-ledger': steps(20, 400 * speed),
      'reindex-search': steps(12, 250 * speed),
    }),
    // needs a taskctl with governance; older controllers ignore it
    ...({ approvals: { rules: [{ actions: ['stop', 'rerun'], groups: ['finance'] }] } } as object),
  });
  controller.define({ id: 'ingest-orders', group: 'etl', schedule: { cron: '0 2 * * *', timezone: 'UTC' } });
  controller.define({ id: 'build-report', group: 'reports', dependsOn: ['ingest-orders'], schedule: { cron: '0 2 * * *', timezone: 'UTC' } });
  controller.define({ id: 'sync-crm', group: 'etl' });
  controller.define({ id: 'export-ledger', group: 'finance', schedule: { every: 'P1D' } });
  controller.define({ id: 'reindex-search', group: 'search', schedule: { cron: '0 * * * *' } });
  await controller.start();

  // history: last week's ingest + report, some of them failing
  const today = new Date();
  const day = (offset: number) => new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - offset, 2)).toISOString();
  for (let d = 7; d >= 1; d--) {
    await controller.submit('ingest-orders', { logicalDate: day(d), actor: 'scheduler' });
    await controller.submit('build-report', { logicalDate: day(d), actor: 'scheduler' });
  }
  await controller.submit('sync-crm', { params: { region: 'eu-west', batch: 500 }, actor: 'scheduler' });
  await controller.submit('sync-crm', { params: { region: 'us-east', batch: 500 }, actor: 'scheduler' });
  await controller.submit('export-ledger', { logicalDate: day(0), params: { ledger: 'GL-2024' }, actor: 'scheduler' });
  await controller.submit('reindex-search', { params: { index: 'products' }, actor: 'ops-bot' });

  // a backfill in progress: 60 days of the search reindex, three at a time
  const bf = await controller.backfill('reindex-search', {
    from: day(60).slice(0, 10) + 'T00:00:00Z',
    to: day(1).slice(0, 10) + 'T00:00:00Z',
    schedule: { every: 'P1D' },
    mode: 'parallel',
    concurrency: 3,
    actor: 'ops-bot',
    reason: 'new analyzer for product names',
  });
  void bf.done.catch(() => undefined);

  const handler = createControlHandler(controller, { authenticate: apiKeys(DEMO_KEYS), title: 'taskctl · demo' });
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  // keep work arriving
  const arrivals = setInterval(() => {
    void controller.submit('sync-crm', { params: { region: Math.random() < 0.5 ? 'eu-west' : 'us-east', batch: 200 }, actor: 'scheduler' }).catch(() => undefined);
  }, 20_000);
  arrivals.unref();
  return {
    url: `http://127.0.0.1:${port}/taskctl/`,
    keys: DEMO_KEYS,
    controller,
    handler,
    server,
    backfillId: bf.id,
    close: async () => {
      clearInterval(arrivals);
      handler.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await controller.shutdown({ graceMs: 0 });
      await controller.close();
    },
  };
}

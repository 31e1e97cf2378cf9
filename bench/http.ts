// npx tsx bench/http.ts: the HTTP control API and its event stream, on 127.0.0.1.
// - command latency: POST /api/commands/pause -> response, against the same pause() called in
//   process (the difference is what HTTP, auth, JSON and validation cost);
// - SSE fan-out: time from a transition to all 100 connected clients having received it
//   (clients in this same process, on plain http.get);
// - list paging with 100,000 instances in the memory store (what the console asks for).
import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { monotonicFactory } from 'ulid';
import { MemoryStateStore, TaskController, type Instance, type InstanceState } from '../src/index.js';
import { apiKeys, createControlHandler, type ControlHandler } from '../src/http/index.js';
import { percentile, printTable, type Row } from './util.js';

const KEY = 'k-bench-123';

async function serve(controller: TaskController): Promise<{ base: string; server: Server; handler: ControlHandler; close: () => Promise<void> }> {
  const handler = createControlHandler(controller, { authenticate: apiKeys({ [KEY]: 'bench' }) });
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/taskctl`;
  return {
    base,
    server,
    handler,
    close: async () => {
      handler.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const ms = (sorted: number[], p: number) => Number(percentile(sorted, p).toFixed(3));

/** An operator's controller (no executor) with `n` queued instances of task `t`. */
async function queuedInstances(n: number): Promise<{ controller: TaskController; ids: string[] }> {
  const controller = new TaskController();
  controller.define({ id: 't', group: 'g' });
  await controller.start();
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await controller.submit('t')).id);
  return { controller, ids };
}

async function commandLatency(samples: number): Promise<Row[]> {
  const { controller, ids } = await queuedInstances(samples * 2 + 50);
  const { base, close } = await serve(controller);
  const post = (id: string) =>
    fetch(`${base}/api/commands/pause`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ target: { instanceId: id }, reason: 'bench' }),
    }).then(async (r) => {
      if (r.status !== 200) throw new Error(`pause answered ${r.status}: ${await r.text()}`);
      return r.json();
    });
  for (const id of ids.slice(0, 50)) await post(id); // warm up: JIT, keep-alive connection
  const http: number[] = [];
  for (const id of ids.slice(50, 50 + samples)) {
    const t0 = performance.now();
    await post(id);
    http.push(performance.now() - t0);
  }
  const direct: number[] = [];
  for (const id of ids.slice(50 + samples)) {
    const t0 = performance.now();
    await controller.pause({ instanceId: id }, { actor: 'bench', reason: 'bench' });
    direct.push(performance.now() - t0);
  }
  await close();
  await controller.shutdown();
  http.sort((a, b) => a - b);
  direct.sort((a, b) => a - b);
  return [
    { bench: 'POST /api/commands/pause -> response (ms)', samples, p50: ms(http, 50), p99: ms(http, 99) },
    { bench: 'controller.pause() in process, reference (ms)', samples, p50: ms(direct, 50), p99: ms(direct, 99) },
  ];
}

async function sseFanOut(clients: number, samples: number): Promise<Row[]> {
  const { controller, ids } = await queuedInstances(samples + 20);
  const { base, handler, close } = await serve(controller);
  const waiting = new Map<string, { left: number; t0: number; done: (ms: number) => void }>();
  const firstSeen: number[] = [];
  const responses: IncomingMessage[] = [];
  await Promise.all(
    Array.from({ length: clients }, (_, c) =>
      new Promise<void>((resolve, reject) => {
        const req = get(`${base}/api/events?types=transition`, { headers: { authorization: `Bearer ${KEY}` } }, (res) => {
          responses.push(res);
          res.setEncoding('utf8');
          let ready = false;
          res.on('data', (chunk: string) => {
            if (!ready && chunk.includes('event: ready')) {
              ready = true;
              resolve();
            }
            for (const [id, w] of waiting) {
              if (!chunk.includes(id)) continue;
              const now = performance.now();
              if (c === 0) firstSeen.push(now - w.t0);
              if (--w.left === 0) {
                waiting.delete(id);
                w.done(now - w.t0);
              }
            }
          });
        });
        req.on('error', reject);
      }),
    ),
  );
  if (handler.eventClients !== clients) throw new Error(`expected ${clients} clients, have ${handler.eventClients}`);
  const all: number[] = [];
  let n = 0;
  for (const id of ids) {
    const warm = n++ < 20;
    const received = new Promise<number>((resolve) => waiting.set(id, { left: clients, t0: performance.now(), done: resolve }));
    await controller.pause({ instanceId: id }, { actor: 'bench' });
    const elapsed = await received;
    if (!warm) all.push(elapsed);
  }
  for (const res of responses) res.destroy();
  await close();
  await controller.shutdown();
  all.sort((a, b) => a - b);
  firstSeen.splice(0, 20);
  firstSeen.sort((a, b) => a - b);
  return [
    { bench: `SSE: pause() -> all ${clients} clients received the transition (ms)`, samples, p50: ms(all, 50), p99: ms(all, 99) },
    { bench: 'SSE: pause() -> the first client received it (ms)', samples, p50: ms(firstSeen, 50), p99: ms(firstSeen, 99) },
  ];
}

async function listWith100k(n = 100_000, samples = 40): Promise<Row[]> {
  const store = new MemoryStateStore();
  const ulid = monotonicFactory();
  const at = new Date().toISOString();
  const pick = (i: number): InstanceState => (i % 20 === 0 ? 'failed' : i % 20 === 1 ? 'queued' : i % 20 === 2 ? 'paused' : 'succeeded');
  for (let i = 0; i < n; i += 5000) {
    const instances = [];
    for (let j = i; j < Math.min(n, i + 5000); j++) {
      const instance: Instance = { id: ulid(), taskId: `task-${j % 50}`, group: `g${j % 5}`, params: { j }, state: pick(j), attempt: 1, version: 1, createdAt: at, updatedAt: at };
      instances.push({ next: instance, expectedVersion: 0 });
    }
    await store.commit({ instances });
  }
  const controller = new TaskController({ store });
  controller.define({ id: 'task-0' });
  const { base, close } = await serve(controller);
  const getJson = async (q: string) => {
    const r = await fetch(`${base}/api/instances${q}`, { headers: { authorization: `Bearer ${KEY}` } });
    return (await r.json()) as { items: Instance[]; cursor?: string };
  };
  const middle = (await getJson(`?limit=10000`)).items.at(-1)!.id;
  const time = async (q: string) => {
    for (let i = 0; i < 5; i++) await getJson(q);
    const t: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      await getJson(q);
      t.push(performance.now() - t0);
    }
    return t.sort((a, b) => a - b);
  };
  const rows: Row[] = [];
  for (const [what, q] of [
    ['first page (50)', '?limit=50'],
    ['page 201 (cursor after 10,000)', `?limit=50&cursor=${middle}`],
    ['state=failed,paused (50)', '?limit=50&state=failed,paused'],
    ['taskId=task-7 (50)', '?limit=50&taskId=task-7'],
  ] as const) {
    const t = await time(q);
    rows.push({ bench: `GET /api/instances, 100k instances: ${what} (ms)`, samples, p50: ms(t, 50), p99: ms(t, 99) });
  }
  await close();
  await controller.close();
  return rows;
}

/** Every HTTP benchmark as rows of { bench, samples, p50, p99 }. */
export async function benchHttp(): Promise<Row[]> {
  return [...(await commandLatency(500)), ...(await sseFanOut(100, 200)), ...(await listWith100k())];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printTable('HTTP control API (127.0.0.1, memory store)', await benchHttp());
}

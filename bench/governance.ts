// What governance costs: the lifecycle benchmark (submit -> succeeded, no-op task, memory store)
// with an rbac() authorize hook and metrics() read periodically, against the plain one, in the
// same process, alternating several rounds so that drift and noise hit both alike.
//
//   npx tsx bench/governance.ts            (or node --expose-gc --import tsx bench/governance.ts)
import { pathToFileURL } from 'node:url';
import { rbac, TaskController, type AuthRequest } from '../src/index.js';
import { lifecycleThroughput } from './lifecycle.js';
import { gc, printTable, type Row } from './util.js';

const policy = rbac({
  roles: {
    runner: [{ actions: ['submit'], tasks: ['noop', 'report-*'] }],
    operator: [{ actions: ['pause', 'resume', 'stop'], groups: ['etl'], environments: ['prod'] }],
    admin: [{ actions: ['*'] }],
  },
  actors: { 'bench-service': ['operator', 'runner'], root: ['admin'] },
});

/**
 * `lifecycleThroughput` submits without an actor, which rbac() denies (as it should): the
 * service's identity stands in, as a host's wrapper around its request context would.
 */
const authorize = (req: AuthRequest) => policy({ ...req, actor: req.actor ?? 'bench-service' });

/** The governed run: rbac on every submit, and controller.metrics() every `everyMs` while it runs. */
async function governedThroughput(n: number, everyMs: number): Promise<{ perSecond: number; metricsCalls: number }> {
  // lifecycleThroughput builds its controller inside: catch it as it starts, to read its metrics
  // The run is one long chain of promise jobs that never yields to timers, so a setInterval
  // would not fire until it ends: the clock is looked at on every transition instead.
  const start = TaskController.prototype.start;
  let metricsCalls = 0;
  TaskController.prototype.start = function (this: TaskController) {
    let last = performance.now();
    this.on('transition', () => {
      const now = performance.now();
      if (now - last < everyMs) return;
      last = now;
      metricsCalls++;
      void this.metrics();
    });
    return start.call(this);
  };
  try {
    const perSecond = await lifecycleThroughput(n, { authorize, environment: 'prod' });
    return { perSecond, metricsCalls };
  } finally {
    TaskController.prototype.start = start;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Mean cost of one rbac() decision, in microseconds. */
async function rbacCost(calls: number): Promise<number> {
  const req: AuthRequest = { action: 'pause', actor: 'bench-service', target: { group: 'etl' }, options: {}, tasks: ['load'], groups: ['etl'], environment: 'prod', subjects: [{ group: 'etl' }] };
  for (let i = 0; i < 1000; i++) await policy(req);
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) await policy(req);
  return ((performance.now() - t0) / calls) * 1000;
}

/** Mean cost of one controller.metrics() call on a memory store holding `n` instances, in ms. */
async function metricsCost(n: number, calls: number): Promise<number> {
  const controller = new TaskController({ concurrency: 1 }); // no executor: the instances stay queued
  controller.define({ id: 'noop' });
  for (let i = 0; i < n; i += 500) await Promise.all(Array.from({ length: Math.min(500, n - i) }, () => controller.submit('noop')));
  await controller.metrics();
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) await controller.metrics();
  const ms = (performance.now() - t0) / calls;
  await controller.close();
  return ms;
}

/** One run: wall-clock throughput and this process's CPU time per instance (µs). */
async function measure(n: number, run: () => Promise<number>): Promise<{ perSecond: number; cpuUs: number }> {
  gc();
  const c0 = process.cpuUsage();
  const perSecond = await run();
  const cpu = process.cpuUsage(c0);
  return { perSecond, cpuUs: (cpu.user + cpu.system) / n };
}

export async function benchGovernance(options: { n?: number; rounds?: number; metricsEveryMs?: number } = {}): Promise<Row[]> {
  const n = options.n ?? 40_000;
  const rounds = options.rounds ?? 8;
  const everyMs = options.metricsEveryMs ?? 100;
  // warm up both paths (JIT, allocator)
  await lifecycleThroughput(10_000);
  await governedThroughput(10_000, everyMs);
  const plain: { perSecond: number; cpuUs: number }[] = [];
  const governed: { perSecond: number; cpuUs: number }[] = [];
  const wallOverhead: number[] = [];
  const cpuOverhead: number[] = [];
  let metricsCalls = 0;
  for (let r = 0; r < rounds; r++) {
    // a pair of runs back to back, alternating which goes first: drift in the machine's load
    // hits both runs of a pair alike, and neither always runs on the warmer heap
    let p!: { perSecond: number; cpuUs: number };
    let g!: { perSecond: number; cpuUs: number };
    for (const which of r % 2 === 0 ? (['plain', 'governed'] as const) : (['governed', 'plain'] as const)) {
      if (which === 'plain') p = await measure(n, () => lifecycleThroughput(n));
      else {
        g = await measure(n, async () => {
          const x = await governedThroughput(n, everyMs);
          metricsCalls += x.metricsCalls;
          return x.perSecond;
        });
      }
    }
    plain.push(p);
    governed.push(g);
    wallOverhead.push(p.perSecond / g.perSecond - 1); // extra wall time per instance in this pair
    cpuOverhead.push(g.cpuUs / p.cpuUs - 1); // extra CPU time per instance in this pair
  }
  const pct = (xs: number[]) => xs.map((o) => (o * 100).toFixed(1)).join(', ');
  const list = (xs: number[]) => xs.map((x) => Math.round(x)).join(', ');
  const pTput = median(plain.map((x) => x.perSecond));
  const gTput = median(governed.map((x) => x.perSecond));
  return [
    { benchmark: `lifecycle submit->succeeded (${n} no-op, memory store), plain`, value: Math.round(pTput), unit: 'instances/s', reference: `median of ${rounds}: ${list(plain.map((x) => x.perSecond))}`, ratio: '', target: '' },
    {
      benchmark: `same with authorize: rbac() + metrics() every ${everyMs} ms`,
      value: Math.round(gTput),
      unit: 'instances/s',
      reference: `median of ${rounds}: ${list(governed.map((x) => x.perSecond))}; ${metricsCalls} metrics() calls`,
      ratio: gTput / pTput,
      target: '',
    },
    {
      benchmark: 'governance overhead, CPU time per instance (median of pairs)',
      value: Number((median(cpuOverhead) * 100).toFixed(1)),
      unit: '%',
      reference: `plain ${median(plain.map((x) => x.cpuUs)).toFixed(2)} µs, governed ${median(governed.map((x) => x.cpuUs)).toFixed(2)} µs; pairs: ${pct(cpuOverhead)}`,
      ratio: '',
      target: '< 10 %',
    },
    {
      benchmark: 'governance overhead, wall time per instance (median of pairs)',
      value: Number((median(wallOverhead) * 100).toFixed(1)),
      unit: '%',
      reference: `pairs: ${pct(wallOverhead)}`,
      ratio: '',
      target: '< 10 %',
    },
    { benchmark: 'rbac() decision (group rule, environment)', value: Number((await rbacCost(100_000)).toFixed(2)), unit: 'µs/call', reference: '', ratio: '', target: '' },
    { benchmark: `metrics() with ${n} instances in the memory store`, value: Number((await metricsCost(n, 50)).toFixed(2)), unit: 'ms/call', reference: '', ratio: '', target: '' },
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  printTable('governance', await benchGovernance());
}

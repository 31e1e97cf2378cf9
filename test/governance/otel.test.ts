import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { SpanStatusCode } from '@opentelemetry/api';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  MetricReader,
  PeriodicExportingMetricReader,
  type DataPoint,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { instrument } from '../../src/otel/index.js';
import { failure, gate, harness } from './support.js';

/** A pull reader: the test decides when to collect. */
class TestReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function otel() {
  const reader = new TestReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  cleanups.push(() => meterProvider.shutdown(), () => tracerProvider.shutdown());
  const collect = async (): Promise<Map<string, MetricData>> => {
    const { resourceMetrics, errors } = await reader.collect();
    expect(errors).toEqual([]);
    return new Map(resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).map((m) => [m.descriptor.name, m]));
  };
  return { meterProvider, tracerProvider, spans, collect };
}

/** The data points of a metric as [attributes, value] pairs. */
function points(m: MetricData | undefined): [Record<string, unknown>, unknown][] {
  return ((m?.dataPoints ?? []) as DataPoint<unknown>[]).map((p) => [p.attributes, p.value]);
}
function value(m: MetricData | undefined, attrs: Record<string, unknown> = {}): unknown {
  return points(m).find(([a]) => JSON.stringify(a) === JSON.stringify(attrs))?.[1];
}

describe('taskctl/otel: instrument(controller, { meterProvider, tracerProvider })', () => {
  it('records commands by action and outcome, their latency, transitions by from/to, and gauges of instances, running and queue', async () => {
    const { meterProvider, tracerProvider, collect } = otel();
    const release = gate();
    const h = await harness({
      concurrency: 1,
      handlers: { job: () => release.promise },
      authorize: (req) => req.actor !== 'mallory',
      approvals: { rules: [{ actions: ['rerun'] }] },
    });
    const c = h.controller;
    cleanups.push(instrument(c, { meterProvider, tracerProvider }));
    c.define({ id: 'job' });
    const a = await c.submit('job', { actor: 'cron' });
    const b = await c.submit('job', { actor: 'cron' });
    const d = await c.submit('job', { actor: 'cron' });
    await h.until(a.id, 'running');
    await c.pause({ instanceId: b.id }, { actor: 'ops' });
    await c.pause({ instanceId: b.id }, { actor: 'ops', dryRun: true });
    await failure(c.stop({ instanceId: d.id }, { actor: 'mallory' }));
    await c.rerun({ instanceId: b.id }, { actor: 'ops' });

    const m = await collect();
    expect(points(m.get('taskctl.commands')).sort()).toEqual(
      [
        [{ action: 'pause', outcome: 'completed' }, 1],
        [{ action: 'pause', outcome: 'dry_run' }, 1],
        [{ action: 'stop', outcome: 'denied' }, 1],
        [{ action: 'rerun', outcome: 'awaiting_approval' }, 1],
      ].sort(),
    );
    const hist = value(m.get('taskctl.command.duration'), { action: 'pause', outcome: 'completed' }) as Histogram;
    expect(hist.count).toBe(1);
    expect(hist.sum).toBeGreaterThan(0);
    expect(m.get('taskctl.command.duration')?.descriptor.unit).toBe('ms');
    expect(value(m.get('taskctl.transitions'), { from: 'none', to: 'queued' })).toBe(3);
    expect(value(m.get('taskctl.transitions'), { from: 'queued', to: 'running' })).toBe(1);
    expect(value(m.get('taskctl.transitions'), { from: 'queued', to: 'paused' })).toBe(1);
    expect(value(m.get('taskctl.instances'), { state: 'running' })).toBe(1);
    expect(value(m.get('taskctl.instances'), { state: 'queued' })).toBe(1);
    expect(value(m.get('taskctl.instances'), { state: 'paused' })).toBe(1);
    expect(value(m.get('taskctl.instances'), { state: 'failed' })).toBe(0);
    expect(value(m.get('taskctl.running'))).toBe(1);
    expect(value(m.get('taskctl.queue.length'))).toBe(1);
    expect(value(m.get('taskctl.commands.in_flight'))).toBe(0);
    expect(value(m.get('taskctl.commands.awaiting_approval'), { action: 'rerun' })).toBe(1);
    release.open();
  });

  it('makes a span per command: timed from the call, with action, actor, outcome, applied, rejected; ERROR when denied', async () => {
    const { meterProvider, tracerProvider, spans } = otel();
    let slowAuthorize: Promise<void> | undefined;
    const h = await harness({
      authorize: async (req) => {
        await slowAuthorize;
        return req.actor !== 'mallory';
      },
      approvals: { rules: [{ actions: ['stop'] }] },
    });
    const c = h.controller;
    cleanups.push(instrument(c, { meterProvider, tracerProvider }));
    c.define({ id: 'job' });
    const i = await c.submit('job', { actor: 'cron' });
    slowAuthorize = new Promise((r) => setTimeout(r, 30));
    const t0 = Date.now();
    const paused = await c.pause({ instanceId: i.id }, { actor: 'ops' });
    slowAuthorize = undefined;
    await failure(c.resume({ instanceId: i.id }, { actor: 'mallory' }));
    const req = await c.stop({ instanceId: i.id }, { actor: 'ops' });
    await c.approve(req.commandId, { actor: 'lead' });

    const finished = spans.getFinishedSpans();
    expect(finished.map((s) => s.name)).toEqual(['taskctl.pause', 'taskctl.resume', 'taskctl.stop', 'taskctl.stop']);
    const [pause, resume, request, applied] = finished;
    expect(pause.attributes).toEqual({
      'taskctl.action': 'pause',
      'taskctl.actor': 'ops',
      'taskctl.outcome': 'completed',
      'taskctl.applied': 1,
      'taskctl.rejected': 0,
      'taskctl.command_id': paused.commandId,
    });
    expect(pause.status.code).toBe(SpanStatusCode.UNSET);
    const startMs = pause.startTime[0] * 1000 + pause.startTime[1] / 1e6;
    const durationMs = pause.duration[0] * 1000 + pause.duration[1] / 1e6;
    expect(Math.abs(startMs - t0)).toBeLessThan(20); // starts at the call, not at the result
    expect(durationMs).toBeGreaterThanOrEqual(25);
    expect(resume.attributes).toMatchObject({ 'taskctl.outcome': 'denied', 'taskctl.actor': 'mallory', 'taskctl.error_code': 'FORBIDDEN' });
    expect(resume.status).toMatchObject({ code: SpanStatusCode.ERROR, message: expect.stringMatching(/mallory may not resume/) });
    expect(request.attributes).toMatchObject({ 'taskctl.outcome': 'awaiting_approval', 'taskctl.applied': 0, 'taskctl.command_id': req.commandId });
    expect(applied.attributes).toMatchObject({ 'taskctl.outcome': 'completed', 'taskctl.actor': 'ops', 'taskctl.applied': 1, 'taskctl.deferred': true, 'taskctl.command_id': req.commandId });
  });

  it('collection is cheap: one metrics() snapshot serves collections within snapshotMaxAgeMs', async () => {
    const { meterProvider, collect } = otel();
    const h = await harness();
    const spy = vi.spyOn(h.controller, 'metrics');
    cleanups.push(instrument(h.controller, { meterProvider, snapshotMaxAgeMs: 60_000 }));
    await Promise.all([collect(), collect(), collect()]);
    await collect();
    expect(spy).toHaveBeenCalledTimes(1);

    const { meterProvider: mp2, collect: collect2 } = otel();
    const h2 = await harness();
    h2.controller.define({ id: 'job' });
    const spy2 = vi.spyOn(h2.controller, 'metrics');
    cleanups.push(instrument(h2.controller, { meterProvider: mp2, snapshotMaxAgeMs: 0 }));
    await collect2();
    await h2.controller.submit('job');
    const m = await collect2();
    expect(spy2).toHaveBeenCalledTimes(2);
    expect(value(m.get('taskctl.instances'), { state: 'queued' })).toBe(1);
  });

  it('a prefix renames every metric and span; the returned function detaches', async () => {
    const { meterProvider, tracerProvider, spans, collect } = otel();
    const h = await harness();
    const c = h.controller;
    c.define({ id: 'job' });
    const detach = instrument(c, { meterProvider, tracerProvider, prefix: 'acme.jobs', snapshotMaxAgeMs: 0 });
    const i = await c.submit('job');
    await c.pause({ instanceId: i.id });
    let m = await collect();
    expect([...m.keys()].every((n) => n.startsWith('acme.jobs.'))).toBe(true);
    expect(value(m.get('acme.jobs.commands'), { action: 'pause', outcome: 'completed' })).toBe(1);
    expect(spans.getFinishedSpans().map((s) => s.name)).toEqual(['acme.jobs.pause']);

    expect(value(m.get('acme.jobs.instances'), { state: 'paused' })).toBe(1);

    detach();
    detach(); // twice is harmless
    const spy = vi.spyOn(c, 'metrics');
    await c.resume({ instanceId: i.id });
    m = await collect();
    expect(spy).not.toHaveBeenCalled();
    expect(value(m.get('acme.jobs.commands'), { action: 'resume', outcome: 'completed' })).toBeUndefined();
    expect(value(m.get('acme.jobs.transitions'), { from: 'paused', to: 'queued' })).toBeUndefined();
    // the SDK keeps a gauge's last value; nothing observes the controller any more
    expect(value(m.get('acme.jobs.instances'), { state: 'paused' })).toBe(1);
    expect(spans.getFinishedSpans()).toHaveLength(1);
  });

  it('works with a push reader (PeriodicExportingMetricReader + InMemoryMetricExporter) and with the global no-op providers', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const meterProvider = new MeterProvider({ readers: [reader] });
    cleanups.push(() => meterProvider.shutdown());
    const h = await harness();
    h.controller.define({ id: 'job' });
    cleanups.push(instrument(h.controller, { meterProvider }));
    await h.controller.submit('job');
    await h.controller.stop({ taskId: 'job' });
    await reader.forceFlush();
    const names = exporter.getMetrics().flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics.map((x) => x.descriptor.name)));
    expect(names).toEqual(expect.arrayContaining(['taskctl.commands', 'taskctl.transitions', 'taskctl.instances', 'taskctl.queue.length']));

    // no providers given and none registered: the API's no-op ones, nothing breaks
    const detach = instrument(h.controller);
    await h.controller.pause({ taskId: 'job' });
    detach();
  });
});

describe('the core does not load OpenTelemetry', () => {
  const root = resolve(import.meta.dirname, '../..');
  const run = promisify(execFile);

  async function loadedBy(entry: string): Promise<string[]> {
    const dir = await mkdtemp(join(tmpdir(), 'taskctl-otel-'));
    // an ESM resolve hook reports every URL this process loads, through a message port
    await writeFile(
      join(dir, 'hooks.mjs'),
      `let port;
export function initialize(data) { port = data.port; }
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  port.postMessage(r.url);
  return r;
}
`,
    );
    await writeFile(
      join(dir, 'register.mjs'),
      `import { register, createRequire } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
const urls = [];
port1.on('message', (u) => urls.push(u));
port1.unref();
register(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)}, { data: { port: port2 }, transferList: [port2] });
globalThis.__report = async () => {
  await new Promise((r) => setTimeout(r, 50));
  const cjs = Object.keys(createRequire(import.meta.url).cache);
  process.stdout.write(JSON.stringify([...urls, ...cjs]));
};
`,
    );
    await writeFile(join(dir, 'main.mjs'), `await import(${JSON.stringify(pathToFileURL(entry).href)});\nawait globalThis.__report();\n`);
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--import', join(dir, 'register.mjs'), join(dir, 'main.mjs')], { cwd: root, timeout: 20_000 });
    return JSON.parse(stdout) as string[];
  }

  it('importing src/index.ts loads no @opentelemetry module; importing src/otel/index.ts does (the check works)', async () => {
    const [core, withOtel] = await Promise.all([loadedBy(join(root, 'src/index.ts')), loadedBy(join(root, 'src/otel/index.ts'))]);
    expect(core.some((u) => u.includes('/src/index.ts'))).toBe(true);
    expect(core.some((u) => u.includes('/src/controller/controller.ts'))).toBe(true);
    expect(core.filter((u) => u.includes('@opentelemetry'))).toEqual([]);
    expect(withOtel.some((u) => u.includes('@opentelemetry/api'))).toBe(true);
  });
});

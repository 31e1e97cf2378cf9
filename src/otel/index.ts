// `taskctl/otel`: OpenTelemetry metrics and spans for a TaskController.
// The only module of taskctl that imports @opentelemetry/api (an optional peer dependency):
// the core never loads it.
import {
  metrics,
  SpanKind,
  SpanStatusCode,
  trace,
  ValueType,
  type Attributes,
  type BatchObservableCallback,
  type MeterProvider,
  type Observable,
  type TracerProvider,
} from '@opentelemetry/api';
import type { TaskController } from '../controller/controller.js';
import type { CommandDone, MetricsSnapshot } from '../governance/metrics.js';
import type { TransitionEvent } from '../types.js';

/** Options of {@link instrument}. */
export interface InstrumentOptions {
  /** Where the metrics go. @default the global MeterProvider (`metrics.getMeterProvider()`) */
  meterProvider?: MeterProvider;
  /** Where the spans go. @default the global TracerProvider (`trace.getTracerProvider()`) */
  tracerProvider?: TracerProvider;
  /** Prefix of every metric and span name. @default 'taskctl' */
  prefix?: string;
  /**
   * How long one `controller.metrics()` snapshot serves the observable gauges: collections
   * closer together than this (several readers, a short export interval) reuse it, so a
   * collection costs at most one snapshot per this many milliseconds. @default 1000
   */
  snapshotMaxAgeMs?: number;
}

const SCOPE = 'taskctl';

/** Milliseconds since the epoch, with sub-millisecond precision. */
const nowMs = (): number => performance.timeOrigin + performance.now();

/**
 * Record what a controller does as OpenTelemetry metrics and spans:
 *
 * - `taskctl.commands` (counter; `action`, `outcome`): control command calls, by outcome
 *   (`completed`, `awaiting_approval`, `scheduled`, `dry_run`, `denied`, `invalid`, `error`);
 * - `taskctl.command.duration` (histogram, ms; `action`, `outcome`): how long calls took;
 * - `taskctl.transitions` (counter; `from`, `to`): state transitions this controller observed;
 * - `taskctl.instances` (gauge; `state`): instances per state in the store;
 * - `taskctl.running`, `taskctl.queue.length`, `taskctl.commands.in_flight` (gauges) and
 *   `taskctl.commands.awaiting_approval` (gauge; `action`);
 * - a span per command, `taskctl.<action>`, from the call to its result, with the attributes
 *   `taskctl.action`, `taskctl.actor`, `taskctl.outcome`, `taskctl.applied`, `taskctl.rejected`,
 *   `taskctl.command_id` (and `taskctl.error_code`); its status is ERROR when the command was
 *   denied or failed. The application of an approved or scheduled command gets a span too
 *   (`taskctl.deferred: true`) but is not counted again in `taskctl.commands`.
 *
 * The gauges read `controller.metrics()`, at most once per `snapshotMaxAgeMs`.
 * Returns a function that detaches the instrumentation.
 */
export function instrument(controller: TaskController, options: InstrumentOptions = {}): () => void {
  const prefix = (options.prefix ?? 'taskctl').replace(/\.+$/, '');
  const name = (n: string) => (prefix ? `${prefix}.${n}` : n);
  const maxAge = options.snapshotMaxAgeMs ?? 1000;
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE);
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE);

  const commands = meter.createCounter(name('commands'), { description: 'Control command calls, by action and outcome', unit: '{command}', valueType: ValueType.INT });
  const duration = meter.createHistogram(name('command.duration'), {
    description: 'How long control command calls took',
    unit: 'ms',
    // commands usually take a few milliseconds; the SDK's default buckets start at 5 ms
    advice: { explicitBucketBoundaries: [0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000] },
  });
  const transitions = meter.createCounter(name('transitions'), { description: 'State transitions observed, by from and to state', unit: '{transition}', valueType: ValueType.INT });
  const instances = meter.createObservableGauge(name('instances'), { description: 'Instances per state in the store', unit: '{instance}', valueType: ValueType.INT });
  const running = meter.createObservableGauge(name('running'), { description: 'Instances running in this controller', unit: '{instance}', valueType: ValueType.INT });
  const queue = meter.createObservableGauge(name('queue.length'), { description: 'Instances queued and dispatchable by this controller', unit: '{instance}', valueType: ValueType.INT });
  const inFlight = meter.createObservableGauge(name('commands.in_flight'), { description: 'Control commands being processed', unit: '{command}', valueType: ValueType.INT });
  const awaiting = meter.createObservableGauge(name('commands.awaiting_approval'), { description: 'Approval requests still waiting, by action', unit: '{command}', valueType: ValueType.INT });
  const observables: Observable[] = [instances, running, queue, inFlight, awaiting];

  let detached = false;
  // one snapshot serves every collection within maxAge; concurrent collections share one call
  let cached: { at: number; snapshot: MetricsSnapshot } | undefined;
  let pending: Promise<MetricsSnapshot | undefined> | undefined;
  const snapshot = (): Promise<MetricsSnapshot | undefined> => {
    if (cached && Date.now() - cached.at < maxAge) return Promise.resolve(cached.snapshot);
    pending ??= controller
      .metrics()
      .then(
        (s) => (cached = { at: Date.now(), snapshot: s }).snapshot,
        () => cached?.snapshot, // the store is unreachable: report the last known figures
      )
      .finally(() => (pending = undefined));
    return pending;
  };

  const observe: BatchObservableCallback = async (result) => {
    if (detached) return;
    const s = await snapshot();
    result.observe(running, controller.running);
    if (!s) return;
    for (const [state, n] of Object.entries(s.instances)) result.observe(instances, n, { state });
    result.observe(queue, s.queueLength);
    result.observe(inFlight, s.inFlightCommands);
    for (const [action, m] of Object.entries(s.commands)) result.observe(awaiting, m.awaitingApproval, { action });
  };
  meter.addBatchObservableCallback(observe, observables);

  const onCommand = (e: CommandDone) => {
    const end = nowMs();
    const attrs: Attributes = { action: e.action, outcome: e.outcome };
    if (!e.deferred) {
      commands.add(1, attrs);
      duration.record(e.durationMs, attrs);
    }
    const spanAttrs: Attributes = {
      'taskctl.action': e.action,
      'taskctl.outcome': e.outcome,
      'taskctl.applied': e.applied,
      'taskctl.rejected': e.rejected,
    };
    if (e.actor !== undefined) spanAttrs['taskctl.actor'] = e.actor;
    if (e.commandId !== undefined) spanAttrs['taskctl.command_id'] = e.commandId;
    if (e.deferred) spanAttrs['taskctl.deferred'] = true;
    if (e.error) spanAttrs['taskctl.error_code'] = e.error.code;
    const span = tracer.startSpan(name(e.action), { kind: SpanKind.INTERNAL, startTime: end - e.durationMs, attributes: spanAttrs });
    if (e.outcome === 'denied' || e.outcome === 'error') {
      span.setStatus({ code: SpanStatusCode.ERROR, message: e.error?.message });
    }
    span.end(end);
  };
  const onTransition = (e: TransitionEvent) => transitions.add(1, { from: e.from, to: e.to });

  controller.on('command_done', onCommand);
  controller.on('transition', onTransition);
  return () => {
    if (detached) return;
    detached = true;
    controller.off('command_done', onCommand);
    controller.off('transition', onTransition);
    meter.removeBatchObservableCallback(observe, observables);
  };
}

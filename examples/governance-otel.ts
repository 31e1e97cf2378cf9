// OpenTelemetry for a controller: taskctl/otel records commands, latency, transitions and
// gauges of instances and queue as metrics, and a span per command. The samples of the
// "OpenTelemetry" section of docs/governance.md are part of this file.
// Run: npx tsx examples/governance-otel.ts   (in-memory exporters here; OTLP ones in production)
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { FunctionExecutor, TaskController } from '../src/index.js';
import { instrument } from '../src/otel/index.js'; // in your code: import { instrument } from 'taskctl/otel'

const controller = new TaskController({ executor: new FunctionExecutor({ extract: async () => ({ rows: 10 }) }) });
controller.define({ id: 'extract', group: 'etl' });
await controller.start();

// #region otel
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const metricReader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 60_000 });
const meterProvider = new MeterProvider({ readers: [metricReader] });
const spanExporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });

const detach = instrument(controller, { meterProvider, tracerProvider }); // or rely on the global providers
// #endregion otel

const run = await controller.submit('extract', { logicalDate: '2024-06-01' });
await controller.waitFor(run.id);
await controller.rerun({ instanceId: run.id }, { actor: 'alice' });
await controller.pause({ taskId: 'extract' }, { actor: 'alice', dryRun: true });

// #region otel-read
await metricReader.forceFlush();
for (const metric of metricExporter.getMetrics().at(-1)!.scopeMetrics.flatMap((s) => s.metrics)) {
  const points = metric.dataPoints.map((p) => `${JSON.stringify(p.attributes)}=${JSON.stringify(p.value)}`);
  console.log(metric.descriptor.name, points.join(' '));
}
for (const span of spanExporter.getFinishedSpans()) console.log(span.name, span.attributes);
// taskctl.rerun { 'taskctl.action': 'rerun', 'taskctl.outcome': 'completed', 'taskctl.applied': 1, 'taskctl.actor': 'alice', ... }

detach(); // stop recording
await meterProvider.shutdown();
await tracerProvider.shutdown();
// #endregion otel-read
await controller.shutdown();

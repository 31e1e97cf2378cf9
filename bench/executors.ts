// ChildProcessExecutor: what controlling a real process costs, against a bare child_process.spawn.
//   npx tsx bench/executors.ts            (BENCH_RUNS=n to change the number of runs)
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { ChildProcessExecutor, TaskController, type ChildOutputLine } from '../src/index.js';
import { percentile, printTable, type Row } from './util.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 30);

// a process that is ready once it prints "ready"; it honours SIGTERM, or ignores it
const HONOURS_TERM = "process.on('SIGTERM', () => process.exit(0)); console.log('ready'); setInterval(() => {}, 1000)";
const IGNORES_TERM = "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)";

function stats(samples: number[]): { p50: number; p99: number; mean: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), mean: samples.reduce((a, b) => a + b, 0) / samples.length };
}

/** Spawn, read its output, wait for it to exit: the reference. */
function bareSpawn(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.resume();
    child.stderr.resume();
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
  });
}

/** submit -> succeeded through a controller and ChildProcessExecutor, one run at a time. */
async function viaExecutor(command: string, args: string[], runs: number): Promise<number[]> {
  const controller = new TaskController({ executor: new ChildProcessExecutor({ run: { command, args } }) });
  controller.define({ id: 'run' });
  await controller.start();
  const samples: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const instance = await controller.submit('run');
      const done = await controller.waitFor(instance.id, { states: ['succeeded', 'failed'] });
      samples.push(performance.now() - t0);
      if (done.state !== 'succeeded') throw new Error(`${command} ${done.state}: ${done.error?.message}`);
    }
  } finally {
    await controller.shutdown({ graceMs: 0 });
    await controller.close();
  }
  return samples;
}

async function bare(command: string, args: string[], runs: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await bareSpawn(command, args);
    samples.push(performance.now() - t0);
  }
  return samples;
}

/** stop() called -> instance `stopped`, for a process that is running and ready. */
async function stopLatency(script: string, graceMs: number, runs: number): Promise<number[]> {
  const ready = new Map<string, () => void>();
  const executor = new ChildProcessExecutor(
    { proc: { command: process.execPath, args: ['-e', script], graceMs } },
    { onOutput: (line: ChildOutputLine) => (line.line === 'ready' ? ready.get(line.instanceId)?.() : undefined) },
  );
  const controller = new TaskController({ executor });
  controller.define({ id: 'proc' });
  await controller.start();
  const samples: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const instance = await controller.submit('proc');
      await new Promise<void>((resolve) => ready.set(instance.id, resolve));
      const t0 = performance.now();
      await controller.stop({ instanceId: instance.id });
      await controller.waitFor(instance.id, { states: ['stopped'] });
      samples.push(performance.now() - t0);
    }
  } finally {
    await controller.shutdown({ graceMs: 0 });
    await controller.close();
  }
  return samples;
}

/** The rows of this benchmark: spawn overhead against a bare spawn, and stop latency. */
export async function benchExecutors(runs = RUNS): Promise<Row[]> {
  const rows: Row[] = [];
  const commands: [string, string, string[]][] = [
    ['/bin/true', '/bin/true', []],
    ["node -e ''", process.execPath, ['-e', '']],
  ];
  for (const [label, command, args] of commands) {
    await bare(command, args, 3); // warm the page cache
    const reference = stats(await bare(command, args, runs));
    const ours = stats(await viaExecutor(command, args, runs));
    rows.push({
      measure: `spawn -> succeeded: ${label}`,
      runs,
      'bare spawn ms': reference.mean,
      'executor ms': ours.mean,
      'executor p50 ms': ours.p50,
      'executor p99 ms': ours.p99,
      ratio: ours.mean / reference.mean,
    });
  }
  const stopRuns = Math.max(5, Math.round(runs / 2));
  const term = stats(await stopLatency(HONOURS_TERM, 10_000, stopRuns));
  rows.push({ measure: 'stop -> stopped: SIGTERM honoured', runs: stopRuns, 'executor ms': term.mean, 'executor p50 ms': term.p50, 'executor p99 ms': term.p99 });
  const killRuns = Math.max(5, Math.round(runs / 3));
  const kill = stats(await stopLatency(IGNORES_TERM, 200, killRuns));
  rows.push({ measure: 'stop -> stopped: SIGKILL after graceMs 200', runs: killRuns, 'executor ms': kill.mean, 'executor p50 ms': kill.p50, 'executor p99 ms': kill.p99 });
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  printTable(`ChildProcessExecutor (${process.platform}, node ${process.version})`, await benchExecutors());
}

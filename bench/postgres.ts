// The PostgreSQL store under two controller processes on one database:
//   npx tsx bench/postgres.ts        (TASKCTL_PG_URL, default postgres://postgres@127.0.0.1:5432/test)
// - lifecycle throughput: both processes submit no-op instances and run whatever is queued;
//   from the first submit until every instance has succeeded;
// - cross-process pause latency: pause() in this process (a controller with no executor) until
//   the executor's process commits `paused` (clocks compared through performance.timeOrigin,
//   one machine), and until this process hears of it.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { TaskController } from '../src/index.js';
import { PostgresStateStore } from '../src/postgres/index.js';
import { percentile, printTable, type Row } from './util.js';

const PG_URL = process.env.TASKCTL_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const WORKER = fileURLToPath(new URL('./postgres-worker.ts', import.meta.url));
const epochNow = () => performance.timeOrigin + performance.now();

type Message = { type: string; [k: string]: unknown };

class Worker {
  readonly child: ChildProcess;
  private readonly waiters: { type: string; resolve: (m: Message) => void }[] = [];
  readonly listeners: ((m: Message) => void)[] = [];

  constructor(schema: string) {
    this.child = fork(WORKER, [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, TASKCTL_PG_URL: PG_URL, TASKCTL_PG_SCHEMA: schema },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (raw) => {
      const m = raw as Message;
      if (m.type === 'error') console.error(`worker ${this.child.pid}: ${String(m.where)}: ${String(m.message)}`);
      for (const l of this.listeners) l(m);
      const i = this.waiters.findIndex((w) => w.type === m.type);
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m);
    });
  }

  next(type: string, timeoutMs = 60_000): Promise<Message> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker ${this.child.pid} sent no ${type} in ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ type, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  }

  send(msg: object): void {
    this.child.send(msg);
  }

  async exit(): Promise<void> {
    const gone = new Promise((resolve) => this.child.once('exit', resolve));
    this.send({ type: 'exit' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
  }
}

async function admin<T extends pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<pg.QueryResult<T>> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return await client.query<T>(sql, values);
  } finally {
    await client.end();
  }
}

/** Submit `n` no-op instances from two processes; instances per second until all succeeded. */
async function lifecycle(schema: string, workers: Worker[], n: number): Promise<{ perSecond: number; ms: number }> {
  const t0 = performance.now();
  for (const w of workers) w.send({ type: 'submit', n: n / workers.length });
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    for (;;) {
      const r = await client.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".instances WHERE state = 'succeeded'`);
      if (Number(r.rows[0].n) >= n) break;
      if (performance.now() - t0 > 300_000) throw new Error(`only ${r.rows[0].n} of ${n} succeeded after 300 s`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    await client.end();
  }
  const ms = performance.now() - t0;
  return { perSecond: (n / ms) * 1000, ms };
}

/** pause() here -> `paused` committed by the executor's process, and heard back here. */
async function pauseLatency(schema: string, runner: Worker, samples: number): Promise<{ remote: number[]; roundTrip: number[] }> {
  const store = new PostgresStateStore({ connectionString: PG_URL, schema });
  const operator = new TaskController({ store }); // no executor: commands only
  operator.define({ id: 'ticker' });
  await operator.start();
  let pausedAt: ((at: number) => void) | undefined;
  runner.listeners.push((m) => {
    if (m.type === 'ticker' && m.to === 'paused') pausedAt?.(m.at as number);
  });
  runner.send({ type: 'ticker' });
  const instanceId = (await runner.next('ticker-submitted')).instanceId as string;
  await operator.waitFor(instanceId, { states: ['running'], timeoutMs: 30_000 });
  const remote: number[] = [];
  const roundTrip: number[] = [];
  for (let s = 0; s < samples; s++) {
    const remoteSeen = new Promise<number>((resolve) => (pausedAt = resolve));
    const t0 = epochNow();
    const p0 = performance.now();
    await operator.pause({ instanceId });
    await operator.waitFor(instanceId, { states: ['paused'], timeoutMs: 10_000 });
    roundTrip.push(performance.now() - p0);
    remote.push((await remoteSeen) - t0);
    await operator.resume({ instanceId });
    await operator.waitFor(instanceId, { states: ['running'], timeoutMs: 10_000 });
  }
  await operator.stop({ instanceId }, { force: true });
  await operator.close();
  await store.close();
  return { remote: remote.sort((a, b) => a - b), roundTrip: roundTrip.sort((a, b) => a - b) };
}

/** Both PostgreSQL benchmarks, as table rows. */
export async function benchPostgres(options: { instances?: number; samples?: number } = {}): Promise<Row[]> {
  const n = options.instances ?? 20_000;
  const samples = options.samples ?? 200;
  const schema = `taskctl_bench_${randomBytes(4).toString('hex')}`;
  const setup = new PostgresStateStore({ connectionString: PG_URL, schema });
  await setup.migrate();
  await setup.close();
  const workers = [new Worker(schema), new Worker(schema)];
  try {
    await Promise.all(workers.map((w) => w.next('ready')));
    await lifecycle(schema, workers, 2_000); // warm up
    const run = await lifecycle(schema, workers, n);
    const pause = await pauseLatency(schema, workers[0], samples);
    return [
      {
        benchmark: `lifecycle submit->succeeded, ${n} no-op instances, 2 controller processes, one database`,
        value: Math.round(run.perSecond),
        unit: 'instances/s',
        target: '>= 2000/s',
      },
      { benchmark: 'cross-process pause latency p50: pause() here -> paused committed by the executor process', value: percentile(pause.remote, 50), unit: 'ms', target: '< 10 ms' },
      { benchmark: 'cross-process pause latency p99', value: percentile(pause.remote, 99), unit: 'ms', target: '< 50 ms' },
      { benchmark: 'round trip p50: pause() here -> paused heard back here', value: percentile(pause.roundTrip, 50), unit: 'ms', target: '' },
      { benchmark: 'round trip p99', value: percentile(pause.roundTrip, 99), unit: 'ms', target: '' },
    ];
  } finally {
    await Promise.all(workers.map((w) => w.exit().catch(() => undefined)));
    await admin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printTable('PostgreSQL store: two controller processes', await benchPostgres());
}

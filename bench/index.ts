// npm run bench: every benchmark, each as a figure and a ratio to a reference run in the
// same process (raw p-queue, raw croner, a bare spawn). Figures vary with the machine; ratios less so.
// `npm run bench -- planner` runs the sections whose title contains "planner".
import { benchBackfillRun } from './backfill.js';
import { benchExecutors } from './executors.js';
import { benchGovernance } from './governance.js';
import { benchHttp } from './http.js';
import { benchLifecycle } from './lifecycle.js';
import { benchPlanner } from './planner.js';
import { benchPostgres } from './postgres.js';
import { printTable, type Row } from './util.js';

const sections: [string, () => Promise<Row[]>][] = [
  ['Lifecycle and pause latency (memory store)', benchLifecycle],
  ['Governance overhead (rbac + metrics vs plain)', async () => (await benchGovernance()) as unknown as Row[]],
  ['Backfill planner vs raw croner', async () => (await benchPlanner()) as unknown as Row[]],
  ['Backfill run (memory store)', () => benchBackfillRun()],
  ['HTTP control API and SSE fan-out (127.0.0.1)', benchHttp],
  ['PostgreSQL: two controller processes', async () => (await benchPostgres()) as unknown as Row[]],
  ['Executors: child processes vs a bare spawn', async () => (await benchExecutors()) as unknown as Row[]],
];

const only = process.argv[2];
for (const [title, run] of sections) {
  if (only && !title.toLowerCase().includes(only.toLowerCase())) continue;
  printTable(title, await run());
}

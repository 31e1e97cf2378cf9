// docs/executors.md, "ChildProcessExecutor", runnable: npx tsx examples/executors-child-process.ts
// (needs python3 on PATH). The report is a small Python script, written to a temporary directory:
// it reports progress and, on SIGTERM, its checkpoint, with the line protocol.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChildProcessExecutor, TaskController, type ChildOutputLine } from '../src/index.js';

const REPORT_PY = `
import argparse, json, os, signal, sys, time

parser = argparse.ArgumentParser()
parser.add_argument('--date')
parser.add_argument('--region')
args = parser.parse_args()
row = (json.loads(os.environ.get('TASKCTL_CHECKPOINT') or 'null') or {'row': 0})['row']

def on_sigterm(signum, frame):  # a pause in 'terminate' mode: save where we are, exit
    print(json.dumps({'taskctl': {'checkpoint': {'row': row}}}), flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_sigterm)

print(f"report {args.region} {args.date[:10]}: attempt {os.environ['REPORT_ATTEMPT']}, from row {row}, LOG_LEVEL={os.environ['LOG_LEVEL']}", flush=True)
with open(f"report-{args.date[:10]}-{args.region}.csv", 'a') as out:
    while row < 20:
        time.sleep(0.02)
        out.write(f"{row},{args.region}\\n")
        row += 1
        print(json.dumps({'taskctl': {'progress': [row, 20]}}), flush=True)
print(json.dumps({'taskctl': {'result': {'rows': row}}}), flush=True)
`;

const reportsDir = mkdtempSync(join(tmpdir(), 'taskctl-reports-'));
writeFileSync(join(reportsDir, 'report.py'), REPORT_PY);
// stands in for your logger (pino, winston, ...)
const logger = { info: (l: ChildOutputLine) => console.log(`  [${l.taskId} attempt ${l.attempt} ${l.stream}] ${l.line}`) };

const executor = new ChildProcessExecutor(
  {
    report: {
      command: 'python3',
      args: ['report.py', '--date', '{{logicalDate}}', '--region', '{{params.region}}'],
      env: { REPORT_ATTEMPT: '{{attempt}}' },
      cwd: reportsDir, // where report.py is
      pauseMode: 'terminate', // or 'suspend', or 'wait' (the default)
      graceMs: 5_000, // SIGTERM, then SIGKILL after 5 s
    },
    archive: { command: 'tar -czf reports.tgz report-*.csv', shell: true, cwd: reportsDir },
  },
  { env: { LOG_LEVEL: 'info' }, onOutput: (l) => logger.info(l) }, // defaults for every task
);
const controller = new TaskController({ executor });

controller.define({ id: 'report', group: 'reports' });
controller.define({ id: 'archive', group: 'reports' });
await controller.start();

try {
  // 1. run the report; pause it at row 5 or later: SIGTERM, the script prints its checkpoint and exits
  const run = await controller.submit('report', { logicalDate: '2024-05-01T00:00:00Z', params: { region: 'emea' } });
  await new Promise<void>((resolve) => {
    const onProgress = (e: { instanceId: string; done: number }) => {
      if (e.instanceId !== run.id || e.done < 5) return;
      controller.off('progress', onProgress);
      resolve();
    };
    controller.on('progress', onProgress);
  });
  await controller.pause({ instanceId: run.id }, { actor: 'alice', reason: 'region db failover' });
  const paused = await controller.waitFor(run.id);
  console.log(`report ${paused.state}, checkpoint ${JSON.stringify(paused.checkpoint)}`);
  assert.equal(paused.state, 'paused');

  // 2. resume: the command starts again with TASKCTL_CHECKPOINT and carries on from that row
  await controller.resume({ instanceId: run.id }, { actor: 'alice' });
  const done = await controller.waitFor(run.id);
  console.log(`report ${done.state}, result ${JSON.stringify((done.result as { result?: unknown }).result)}`);
  assert.equal(done.state, 'succeeded');
  const rows = readFileSync(join(reportsDir, 'report-2024-05-01-emea.csv'), 'utf8').trim().split('\n');
  assert.ok(rows.length >= 20, `expected at least 20 rows, got ${rows.length}`);

  // 3. a shell command line (with a glob), in the same directory
  const archive = await controller.waitFor((await controller.submit('archive')).id);
  console.log(`archive ${archive.state}: reports.tgz ${existsSync(join(reportsDir, 'reports.tgz')) ? 'written' : 'missing'}`);
  assert.equal(archive.state, 'succeeded');

  // 4. a template naming a parameter the instance lacks fails the attempt, nothing throws
  const noRegion = await controller.waitFor((await controller.submit('report', { logicalDate: '2024-05-02T00:00:00Z' })).id);
  console.log(`report without a region: ${noRegion.state} (${noRegion.error?.code})`);
  assert.equal(noRegion.error?.code, 'TEMPLATE_UNKNOWN_PARAM');
} finally {
  await controller.shutdown();
  rmSync(reportsDir, { recursive: true, force: true });
}

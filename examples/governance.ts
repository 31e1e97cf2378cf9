// Governance: roles, approvals, scheduled and conditional resume, policies, dry runs, metrics
// and audit export. Every sample of docs/governance.md is part of this file.
// Run: npx tsx examples/governance.ts   (it exits by itself in about two seconds)
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FunctionExecutor, isTaskControlError, rbac, TaskController } from '../src/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// #region roles
const authorize = rbac({
  roles: {
    viewer: [],
    operator: [{ actions: ['pause', 'resume'], groups: ['etl'] }],
    oncall: [{ actions: ['pause', 'resume', 'stop'], tasks: ['report-*'], environments: ['prod'] }],
    scheduler: [{ actions: ['submit'] }],
    admin: [{ actions: ['*'] }], // '*' also allows { all: true } targets
  },
  actors: { alice: ['operator'], olga: ['oncall'], cron: ['scheduler'], bob: ['admin'], carol: ['admin'] },
});
// #endregion roles

// #region controller
const controller = new TaskController({
  environment: 'prod',
  authorize,
  approvals: {
    rules: [{ actions: ['stop', 'rerun'], groups: ['finance'] }, { actions: ['*'], all: true }],
    ttlMs: 4 * 3_600_000, // unanswered requests expire after four hours
  },
  pollMs: 100, // how often scheduled commands and `after` conditions are checked
  executor: new FunctionExecutor({
    extract: async () => ({ rows: 1200 }),
    'report-daily': async () => ({ pages: 12 }),
    payroll: (ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
    sync: async (ctx) => {
      if (ctx.params.fail) throw new Error('partner API down');
    },
  }),
});
controller.define({ id: 'extract', group: 'etl' });
controller.define({ id: 'report-daily', group: 'etl', dependsOn: ['extract'] });
controller.define({ id: 'payroll', group: 'finance' });
controller.define({ id: 'sync', group: 'etl', pauseAfterFailures: 3 });
await controller.start();
// #endregion controller

// #region denied
const job = await controller.submit('extract', { actor: 'cron' });
try {
  await controller.stop({ instanceId: job.id }, { actor: 'alice' });
} catch (err) {
  if (isTaskControlError(err, 'FORBIDDEN')) console.log('denied:', err.message);
}
const [denial] = await controller.audit({ actor: 'alice', action: 'stop' });
console.log('audited:', denial.reason); // rbac denied alice (roles: operator): action 'stop' not allowed
// #endregion denied

// #region approvals
const run = await controller.submit('payroll', { actor: 'cron' });
await controller.waitFor(run.id, { states: ['running'] });
const request = await controller.stop({ instanceId: run.id }, { actor: 'bob', reason: 'wrong tax table' });
console.log(request.status, request.applied); // awaiting_approval []
console.log(await controller.approvals({ state: 'awaiting' })); // [{ commandId, action: 'stop', requestedBy: 'bob', ... }]

// bob cannot approve his own request; carol can (and must be allowed to stop payroll herself)
const result = await controller.approve(request.commandId, { actor: 'carol', reason: 'confirmed with HR' });
console.log(result.commandId === request.commandId, result.applied); // true [{ from: 'running', to: 'stopping', ... }]
console.log((await controller.waitFor(run.id)).state); // stopped
// #endregion approvals

// #region scheduled
await controller.pause({ group: 'etl' }, { actor: 'alice', reason: 'warehouse maintenance' });
const resumeAt = new Date(Date.now() + 300);
const scheduled = await controller.resume({ group: 'etl' }, { actor: 'alice', at: resumeAt });
console.log(scheduled.status); // scheduled
// changed your mind? await controller.cancelScheduled(scheduled.commandId, { actor: 'alice' });
await sleep(500);
console.log(await controller.heldScopes()); // [] (released by system:schedule)
// #endregion scheduled

// #region after
const upstream = await controller.submit('extract', { actor: 'cron', logicalDate: '2024-06-01' });
await controller.pause({ taskId: 'report-daily' }, { actor: 'olga' });
const report = await controller.submit('report-daily', { actor: 'cron', logicalDate: '2024-06-01' });
await controller.resume({ taskId: 'report-daily' }, { actor: 'olga', after: { instanceIds: [upstream.id] } });
console.log((await controller.waitFor(report.id, { states: ['succeeded'], timeoutMs: 5000 })).state); // succeeded
// #endregion after

// #region pauseAfterFailures
for (let i = 0; i < 3; i++) {
  const failing = await controller.submit('sync', { actor: 'cron', params: { fail: true } });
  await controller.waitFor(failing.id);
}
await sleep(20); // the policy acts right after the third failure is committed
console.log(await controller.heldScopes()); // [{ id: 'task:sync', actor: 'system:pauseAfterFailures', ... }]
await controller.resume({ taskId: 'sync' }, { actor: 'bob', reason: 'partner API is back' });
// #endregion pauseAfterFailures

// #region holdWhile
let diskFull = true; // in real life: a check of free space, a queue depth, a quota
const removePolicy = controller.holdWhile({ group: 'etl' }, () => diskFull, { name: 'disk-full', checkEveryMs: 50 });
await sleep(100);
console.log((await controller.heldScopes()).map((s) => `${s.id} held by ${s.actor}`)); // ['group:etl held by system:disk-full']
diskFull = false;
await sleep(100);
console.log(await controller.heldScopes()); // []
removePolicy();
// #endregion holdWhile

// #region dryRun
const preview = await controller.rerun({ instanceId: upstream.id }, { actor: 'bob', downstream: true, dryRun: true });
for (const a of preview.applied) console.log(`${a.instanceId}: ${a.from} -> ${a.to}`); // extract and report-daily of 2024-06-01
// #endregion dryRun

// #region metrics
const m = await controller.metrics();
console.log(m.commands.stop); // { total: 2, applied: 1, rejected: 0, denied: 1, awaitingApproval: 0, latencyMs: { p50, p95, p99 } }
console.log(m.instances.succeeded, m.instances.failed, m.queueLength, m.running, m.transitions);
// #endregion metrics

// #region audit
const stops = await controller.audit({ action: 'stop', since: new Date(Date.now() - 3_600_000) });
console.log(stops.map((e) => `${e.at} ${e.actor} ${e.kind}`));
const byPolicy = await controller.audit({ actor: 'system:pauseAfterFailures', taskId: 'sync' });
console.log(byPolicy.map((e) => `${e.action}: ${e.reason}`)); // ['pause: 3 consecutive failed instances']

const file = join(tmpdir(), `taskctl-audit-${process.pid}.jsonl`);
const out = createWriteStream(file);
let lines = 0;
for await (const entry of controller.auditStream({ since: '2024-01-01T00:00:00Z' })) {
  out.write(`${JSON.stringify(entry)}\n`);
  lines++;
}
await new Promise((resolve) => out.end(resolve));
console.log(`${lines} audit entries written to ${file}`);
// #endregion audit

await controller.shutdown();

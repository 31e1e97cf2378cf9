import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FunctionExecutor, TaskController } from '../../src/index.js';
import type { PostgresStateStore } from '../../src/postgres/index.js';
import { dropSchema, freshSchema, makeStore, PG_URL, pgAvailable } from '../postgres/pg-env.js';

// The operator at a terminal: the real `taskctl` command in a child process, against a real
// PostgreSQL store that a worker service (this test process) runs instances on.
const bin = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url));

function taskctl(schema: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', bin, '--schema', schema, '--actor', 'alice', ...args], {
      env: { ...process.env, TASKCTL_PG_URL: PG_URL, ...env },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

describe.skipIf(!pgAvailable)('the taskctl command on a PostgreSQL store', () => {
  let schema: string;
  let store: PostgresStateStore;
  let worker: TaskController;
  const gate: { open: boolean } = { open: false };

  beforeAll(async () => {
    schema = freshSchema('taskctl_cli');
    store = await makeStore({ schema });
    worker = new TaskController({
      store,
      concurrency: 8,
      executor: new FunctionExecutor({
        etl: async (ctx) => {
          while (!gate.open) {
            await ctx.pausePoint({ waited: true });
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
          if (ctx.params.fail) throw Object.assign(new Error('bad day'), { code: 'BAD_DAY' });
          return 'ok';
        },
        // runs until it is stopped
        guarded: (ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
      }),
      approvals: { rules: [{ actions: ['stop'], tasks: ['guarded'] }] },
    });
    worker.define({ id: 'etl', group: 'data', schedule: { cron: '0 2 * * *' } });
    worker.define({ id: 'guarded' });
    await worker.start();
  });

  afterAll(async () => {
    await worker?.shutdown({ graceMs: 0 });
    await store?.close();
    if (schema) await dropSchema(schema);
  });

  it('lists instances as a table and as JSON, and shows one with its timeline', async () => {
    const a = await worker.submit('etl', { logicalDate: '2024-01-01T00:00:00Z', actor: 'scheduler' });
    await worker.waitFor(a.id, { states: ['running'] });
    const table = await taskctl(schema, ['list', '--task', 'etl']);
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/ID\s+TASK\s+GROUP\s+LOGICALDATE\s+STATE/);
    expect(table.out).toContain(a.id);
    const json = await taskctl(schema, ['--json', 'list', '--state', 'running']);
    expect(JSON.parse(json.out).items.map((i: { id: string }) => i.id)).toContain(a.id);
    const show = await taskctl(schema, ['show', a.id]);
    expect(show.code).toBe(0);
    expect(show.out).toContain('timeline:');
    expect(show.out).toMatch(/none → queued\s+\[submit\]/);
    expect(show.out).toMatch(/scheduler/);
  });

  it('pauses, resumes, stops and reruns, reaching the worker in another process, with exit codes that say what happened', async () => {
    gate.open = false;
    const i = await worker.submit('etl', { logicalDate: '2024-01-02T00:00:00Z' });
    await worker.waitFor(i.id, { states: ['running'] });
    const paused = await taskctl(schema, ['pause', i.id, '--reason', 'maintenance']);
    expect(paused.code).toBe(0);
    expect(paused.out).toMatch(/running\s+pausing\s+true/);
    expect((await worker.waitFor(i.id, { timeoutMs: 10_000 })).state).toBe('paused');
    const again = await taskctl(schema, ['--json', 'pause', i.id]);
    expect(JSON.parse(again.out).applied[0]).toMatchObject({ from: 'paused', to: 'paused', changed: false });
    expect((await taskctl(schema, ['resume', i.id])).code).toBe(0);
    await worker.waitFor(i.id, { states: ['running'], timeoutMs: 10_000 });
    expect((await taskctl(schema, ['stop', i.id, '--force'])).code).toBe(0);
    expect((await worker.waitFor(i.id, { timeoutMs: 10_000 })).state).toBe('stopped');
    gate.open = true;
    const rerun = await taskctl(schema, ['rerun', i.id, '--params', '{"fail":true}']);
    expect(rerun.code).toBe(0);
    const failed = await worker.waitFor(i.id, { timeoutMs: 10_000 });
    expect(failed).toMatchObject({ state: 'failed', attempt: 2, params: { fail: true } });
    // a rejected instance among the targets: exit 1
    const mixed = await taskctl(schema, ['pause', i.id]);
    expect(mixed.code).toBe(1);
    expect(mixed.out).toContain('ILLEGAL_TRANSITION');
    const audit = await taskctl(schema, ['audit', '--instance', i.id, '--jsonl']);
    const lines = audit.out.trim().split('\n').map((l) => JSON.parse(l) as { actor: string; kind: string });
    expect(lines.filter((e) => e.kind === 'command' && e.actor === 'alice').length).toBeGreaterThanOrEqual(5);
  });

  it('holds and releases a scope, and says so', async () => {
    const held = await taskctl(schema, ['pause', '--group', 'data', '--reason', 'warehouse upgrade']);
    expect(held.out).toContain('scope held');
    expect((await worker.submit('etl', { logicalDate: '2024-01-09T00:00:00Z' })).state).toBe('paused');
    const released = await taskctl(schema, ['resume', '--group', 'data']);
    expect(released.out).toContain('scope released');
  });

  it('backfills: a dry run first, then a run with progress to completion', async () => {
    gate.open = true;
    const dry = await taskctl(schema, ['backfill', 'etl', '--from', '2024-02-01', '--to', '2024-02-05T23:59:59Z', '--cron', '0 2 * * *', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.out).toContain('dry run: 5 dates; would create 5');
    expect((await worker.list({ taskId: 'etl', limit: 1000 })).items.some((i) => i.logicalDate?.startsWith('2024-02'))).toBe(false);
    const run = await taskctl(schema, ['backfill', 'etl', '--from', '2024-02-01', '--to', '2024-02-05T23:59:59Z', '--cron', '0 2 * * *', '--group', 'data', '--mode', 'parallel', '--concurrency', '2']);
    expect(run.code).toBe(0);
    expect(run.err).toMatch(/\[#+\.*\]/); // the progress bar
    expect(run.out).toMatch(/completed: 5 succeeded, 0 failed/);
  });

  it('lists, approves and rejects commands that wait for a second person', async () => {
    const g = await worker.submit('guarded');
    await worker.waitFor(g.id, { states: ['running'] });
    const request = await worker.stop({ instanceId: g.id }, { actor: 'bob' });
    expect(request.status).toBe('awaiting_approval');
    const list = await taskctl(schema, ['--json', 'approvals', '--state', 'awaiting']);
    expect(JSON.parse(list.out).map((a: { commandId: string }) => a.commandId)).toContain(request.commandId);
    const approved = await taskctl(schema, ['approve', request.commandId, '--reason', 'checked']);
    expect(approved.code).toBe(0);
    expect((await worker.waitFor(g.id, { timeoutMs: 10_000 })).state).toBe('stopped');
    const twice = await taskctl(schema, ['approve', request.commandId]);
    expect(twice.code).toBe(5); // CONFLICT: already decided
    const other = await worker.stop({ instanceId: (await worker.submit('guarded')).id }, { actor: 'bob' });
    expect((await taskctl(schema, ['reject', other.commandId, '--reason', 'no'])).code).toBe(0);
  });

  it('answers bad usage, unknown ids and an unreachable database with distinct exit codes', async () => {
    expect((await taskctl(schema, ['pause'])).code).toBe(2);
    expect((await taskctl(schema, ['frobnicate'])).code).toBe(2);
    expect((await taskctl(schema, ['pause', '--bogus'])).code).toBe(2);
    expect((await taskctl(schema, ['show', '01HXXXXXXXXXXXXXXXXXXXXXXX'])).code).toBe(3);
    const down = await taskctl(schema, ['list'], { TASKCTL_PG_URL: 'postgres://postgres@127.0.0.1:1/none' });
    expect(down.code).toBe(6);
    expect(down.err).toMatch(/127\.0\.0\.1/);
    const help = await taskctl(schema, ['backfill', '--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('--dry-run');
    const top = await taskctl(schema, ['--help']);
    expect(top.out).toContain('Exit codes');
  });
});

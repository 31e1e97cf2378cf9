import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChildProcessExecutor,
  isTaskControlError,
  type ChildOutputLine,
  type ChildProcessResult,
  type ExecutionContext,
  type Instance,
  type ProgressEvent,
} from '../../src/index.js';
import { alive, eventually, processState, sleep, startController, until } from './helpers.js';

const FIXTURES = resolve(import.meta.dirname, '../fixtures/child');
const fixture = (name: string) => join(FIXTURES, name);
const node = process.execPath;

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'taskctl-child-'));
  // git keeps the execute bit, but a checkout through some tools loses it
  chmodSync(fixture('print-env.mjs'), 0o755);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A steps.mjs task: `steps` steps of `stepMs`, speaking the line protocol. */
function stepsTask(env: Record<string, string>, extra: Record<string, unknown> = {}) {
  return { command: node, args: [fixture('steps.mjs')], env, ...extra };
}

/** The pid steps.mjs printed at start, from the live output. */
function pidFrom(lines: ChildOutputLine[], instanceId: string): number | undefined {
  const line = lines.find((l) => l.instanceId === instanceId && l.line.startsWith('start pid='));
  return line ? Number(/pid=(\d+)/.exec(line.line)![1]) : undefined;
}

describe('ChildProcessExecutor: outcomes', () => {
  it('runs a command without a shell, with templated args, env and cwd, and resolves with its output', async () => {
    const executor = new ChildProcessExecutor({
      report: {
        command: fixture('print-env.mjs'),
        args: ['--date', '{{logicalDate}}', '--region={{params.region}}', '{{params.opts.depth}}', 'attempt {{attempt}} of {{taskId}}', '$HOME; rm -rf /'],
        env: { FIXTURE_REGION: '{{params.region}}', FIXTURE_ID: '{{instanceId}}' },
        cwd: '{{params.dir}}',
      },
    }, { env: { FIXTURE_DEFAULT: 'from defaults' } });
    const controller = await startController(executor, ['report']);
    const instance = await controller.submit('report', {
      logicalDate: '2024-03-01T00:00:00+01:00',
      params: { region: 'eu-west', opts: { depth: 3 }, dir: tmp },
    });
    const done = await until(controller, instance.id, ['succeeded', 'failed']);
    expect(done.state).toBe('succeeded');
    const result = done.result as ChildProcessResult;
    expect(result.exitCode).toBe(0);
    expect(result.stderrTail).toBe('note: print-env ran\n');
    const seen = JSON.parse(result.stdoutTail) as { argv: string[]; cwd: string; env: Record<string, string> };
    expect(seen.argv).toEqual(['--date', '2024-03-01T00:00:00.000+01:00', '--region=eu-west', '3', 'attempt 1 of report', '$HOME; rm -rf /']);
    expect(seen.cwd).toBe(tmp);
    expect(seen.env).toMatchObject({
      FIXTURE_REGION: 'eu-west',
      FIXTURE_ID: instance.id,
      FIXTURE_DEFAULT: 'from defaults',
      TASKCTL_TASK_ID: 'report',
      TASKCTL_INSTANCE_ID: instance.id,
      TASKCTL_ATTEMPT: '1',
      TASKCTL_LOGICAL_DATE: '2024-03-01T00:00:00.000+01:00',
    });
    expect(JSON.parse(seen.env.TASKCTL_PARAMS)).toEqual({ region: 'eu-west', opts: { depth: 3 }, dir: tmp });
    expect(seen.env.TASKCTL_CHECKPOINT).toBeUndefined();
  });

  it('quotes templated args for the shell with shell: true', async () => {
    const executor = new ChildProcessExecutor({ echo: { command: 'echo "$0" hello', args: ['{{params.word}}'], shell: true } });
    const controller = await startController(executor, ['echo']);
    const instance = await controller.submit('echo', { params: { word: "it's; $(id)" } });
    const done = await until(controller, instance.id, ['succeeded', 'failed']);
    expect((done.result as ChildProcessResult).stdoutTail).toBe("/bin/sh hello it's; $(id)\n");
  });

  it('fails with EXIT_CODE, the code and the stderr tail on a non-zero exit', async () => {
    const executor = new ChildProcessExecutor({ job: { command: node, args: [fixture('exit-code.mjs'), '3'] } });
    const controller = await startController(executor, ['job']);
    const done = await until(controller, (await controller.submit('job')).id, ['succeeded', 'failed']);
    expect(done.state).toBe('failed');
    expect(done.error?.code).toBe('EXIT_CODE');
    expect(done.error?.message).toContain('exited with code 3');
    expect(done.error?.message).toContain('something went wrong: disk on fire');
  });

  it('fails with SIGNAL and the signal name when the process is killed by a signal', async () => {
    const executor = new ChildProcessExecutor({ job: { command: node, args: [fixture('self-signal.mjs'), 'SIGUSR2'] } });
    const controller = await startController(executor, ['job']);
    const done = await until(controller, (await controller.submit('job')).id, ['succeeded', 'failed']);
    expect(done.error?.code).toBe('SIGNAL');
    expect(done.error?.message).toContain('SIGUSR2');
    expect(done.error?.message).toContain('about to be killed');
  });

  it('reports progress, checkpoints and a result through the stdout line protocol', async () => {
    const executor = new ChildProcessExecutor({ job: stepsTask({ FIXTURE_STEPS: '3', FIXTURE_STEP_MS: '5' }) });
    const controller = await startController(executor, ['job']);
    const progress: ProgressEvent[] = [];
    controller.on('progress', (e) => progress.push(e));
    const done = await until(controller, (await controller.submit('job')).id, ['succeeded', 'failed']);
    expect(done.state).toBe('succeeded');
    expect(progress.map((p) => [p.done, p.total])).toEqual([[1, 3], [2, 3], [3, 3]]);
    const result = done.result as ChildProcessResult;
    expect(result.result).toEqual({ startedAt: 0, steps: 3 });
    expect(result.stdoutTail).toMatch(/^start pid=\d+ from=0\ndone\n$/);
    expect(result.stdoutTail).not.toContain('taskctl');
  });

  it('keeps only the last tailBytes of output', async () => {
    const executor = new ChildProcessExecutor({
      job: { command: node, args: ['-e', 'process.stdout.write("x".repeat(10000) + "END\\n"); process.stderr.write("y".repeat(10000) + "ERR")'], tailBytes: 64 },
    });
    const controller = await startController(executor, ['job']);
    const done = await until(controller, (await controller.submit('job')).id, ['succeeded', 'failed']);
    const result = done.result as ChildProcessResult;
    expect(Buffer.byteLength(result.stdoutTail)).toBe(64);
    expect(result.stdoutTail.endsWith('END\n')).toBe(true);
    expect(result.stderrTail).toBe(`${'y'.repeat(61)}ERR`);
  });
});

describe('ChildProcessExecutor: stop, timeout and the process group', () => {
  it('stop sends SIGTERM to the group; a process that honours it ends the instance stopped, checkpoint kept', async () => {
    const lines: ChildOutputLine[] = [];
    const executor = new ChildProcessExecutor({ job: stepsTask({ FIXTURE_STEPS: '1000', FIXTURE_STEP_MS: '10' }) }, { onOutput: (l) => lines.push(l) });
    const controller = await startController(executor, ['job']);
    let progressed = 0;
    controller.on('progress', (e) => (progressed = e.done));
    const instance = await controller.submit('job');
    await eventually(() => progressed >= 2, 'two steps');
    const pid = pidFrom(lines, instance.id)!;
    const t0 = Date.now();
    await controller.stop({ instanceId: instance.id });
    const done = await until(controller, instance.id, 'stopped');
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(lines.some((l) => l.stream === 'stderr' && l.line.startsWith('got SIGTERM at step'))).toBe(true);
    expect((done.checkpoint as { step: number }).step).toBeGreaterThanOrEqual(1);
    await eventually(() => !alive(pid), `pid ${pid} to be gone`);
  });

  it('escalates to SIGKILL after graceMs when the process ignores SIGTERM', async () => {
    const lines: ChildOutputLine[] = [];
    const executor = new ChildProcessExecutor(
      { job: stepsTask({ FIXTURE_STEPS: '100000', FIXTURE_STEP_MS: '10', FIXTURE_IGNORE_TERM: '1' }, { graceMs: 300 }) },
      { onOutput: (l) => lines.push(l) },
    );
    const controller = await startController(executor, ['job']);
    const instance = await controller.submit('job');
    await eventually(() => pidFrom(lines, instance.id) !== undefined, 'the process to start');
    const pid = pidFrom(lines, instance.id)!;
    const t0 = Date.now();
    await controller.stop({ instanceId: instance.id });
    await until(controller, instance.id, 'stopped');
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(3000);
    expect(lines.some((l) => l.line === 'ignoring SIGTERM')).toBe(true);
    expect(alive(pid)).toBe(false);
  });

  it('a forced stop ends the instance at once and the process is still killed', async () => {
    const lines: ChildOutputLine[] = [];
    const executor = new ChildProcessExecutor(
      { job: stepsTask({ FIXTURE_STEPS: '100000', FIXTURE_STEP_MS: '10', FIXTURE_IGNORE_TERM: '1' }, { graceMs: 1000 }) },
      { onOutput: (l) => lines.push(l) },
    );
    const controller = await startController(executor, ['job']);
    const instance = await controller.submit('job');
    await eventually(() => pidFrom(lines, instance.id) !== undefined, 'the process to start');
    const pid = pidFrom(lines, instance.id)!;
    const result = await controller.stop({ instanceId: instance.id }, { force: true });
    expect(result.applied[0].to).toBe('stopped');
    expect(alive(pid)).toBe(true);
    await eventually(() => !alive(pid), `pid ${pid} to be killed`, 3000);
    // the abandoned run's outcome is audited, and changes nothing
    await eventually(async () => (await controller.audit({ instanceId: instance.id })).some((e) => e.kind === 'late_result'), 'the late result');
    const late = (await controller.audit({ instanceId: instance.id })).find((e) => e.kind === 'late_result')!;
    expect(late.result).toMatchObject({ outcome: 'failed', error: { code: 'ABORTED' } });
    expect((await controller.get(instance.id))?.state).toBe('stopped');
  });

  it('leaves no orphaned grandchildren after a stop', async () => {
    const pidFile = join(tmp, 'stop-pids');
    const executor = new ChildProcessExecutor({ job: { command: node, args: [fixture('grandchild.mjs'), pidFile], graceMs: 500 } });
    const controller = await startController(executor, ['job']);
    const instance = await controller.submit('job');
    await eventually(() => statSafe(pidFile), 'the pid file');
    const [child, grandchild] = readFileSync(pidFile, 'utf8').split(' ').map(Number);
    expect(alive(child) && alive(grandchild)).toBe(true);
    await controller.stop({ instanceId: instance.id });
    await until(controller, instance.id, 'stopped');
    await eventually(() => !alive(child) && !alive(grandchild), 'child and grandchild to be gone', 2000);
  });

  it('ends what a successful process left running in its group', async () => {
    const pidFile = join(tmp, 'leave-pids');
    const executor = new ChildProcessExecutor({ job: { command: node, args: [fixture('grandchild.mjs'), pidFile, 'leave'], graceMs: 500 } });
    const controller = await startController(executor, ['job']);
    const done = await until(controller, (await controller.submit('job')).id, ['succeeded', 'failed']);
    expect(done.state).toBe('succeeded');
    const [, grandchild] = readFileSync(pidFile, 'utf8').split(' ').map(Number);
    expect(alive(grandchild)).toBe(false);
  });

  it('a task timeout fails the attempt with TIMEOUT and kills the process', async () => {
    const lines: ChildOutputLine[] = [];
    const executor = new ChildProcessExecutor({ job: stepsTask({ FIXTURE_STEPS: '100000', FIXTURE_STEP_MS: '10' }) }, { onOutput: (l) => lines.push(l) });
    const controller = await startController(executor, [{ id: 'job', timeoutMs: 400 }]);
    const instance = await controller.submit('job');
    const done = await until(controller, instance.id, ['failed', 'succeeded']);
    expect(done.error?.code).toBe('TIMEOUT');
    const pid = pidFrom(lines, instance.id)!;
    await eventually(() => !alive(pid), `pid ${pid} to be gone`);
  });
});

describe('ChildProcessExecutor: pause modes', () => {
  it("pauseMode 'suspend' stops the process group in place and continues it on resume", async () => {
    const heartbeat = join(tmp, 'heartbeat-suspend');
    writeFileSync(heartbeat, '');
    const lines: ChildOutputLine[] = [];
    const executor = new ChildProcessExecutor(
      { job: stepsTask({ FIXTURE_STEPS: '40', FIXTURE_STEP_MS: '10', FIXTURE_HEARTBEAT: heartbeat }, { pauseMode: 'suspend' }) },
      { onOutput: (l) => lines.push(l) },
    );
    const controller = await startController(executor, ['job']);
    const instance = await controller.submit('job');
    await eventually(() => statSync(heartbeat).size >= 3, 'three heartbeats');
    const pid = pidFrom(lines, instance.id)!;
    await controller.pause({ instanceId: instance.id });
    const paused = await until(controller, instance.id, 'paused');
    // the last checkpoint it reported before it was stopped, kept in case the process is lost
    expect((paused.checkpoint as { step: number }).step).toBeGreaterThanOrEqual(2);
    const size = statSync(heartbeat).size;
    await sleep(250);
    expect(statSync(heartbeat).size).toBe(size);
    if (process.platform === 'linux') expect(processState(pid)).toBe('T');
    expect(alive(pid)).toBe(true);

    await controller.resume({ instanceId: instance.id });
    const done = await until(controller, instance.id, ['succeeded', 'failed']);
    expect(done.state).toBe('succeeded');
    expect(statSync(heartbeat).size).toBe(40);
    // the same process carried on: one start, the same attempt
    expect(lines.filter((l) => l.line.startsWith('start pid=')).length).toBe(1);
    expect(done.attempt).toBe(1);
    expect((done.result as ChildProcessResult).result).toEqual({ startedAt: 0, steps: 40 });
  });

  it("stopping a suspended process kills it (SIGCONT first, then SIGTERM)", async () => {
    const lines: ChildOutputLine[] = [];
    const executor = new ChildProcessExecutor(
      { job: stepsTask({ FIXTURE_STEPS: '1000', FIXTURE_STEP_MS: '10' }, { pauseMode: 'suspend' }) },
      { onOutput: (l) => lines.push(l) },
    );
    const controller = await startController(executor, ['job']);
    const instance = await controller.submit('job');
    await eventually(() => pidFrom(lines, instance.id) !== undefined, 'the process to start');
    const pid = pidFrom(lines, instance.id)!;
    await controller.pause({ instanceId: instance.id });
    await until(controller, instance.id, 'paused');
    await controller.stop({ instanceId: instance.id });
    expect((await until(controller, instance.id, 'stopped')).state).toBe('stopped');
    await eventually(() => !alive(pid), `pid ${pid} to be gone`);
    // a paused instance is stopped at once; the process's last words arrive a moment later
    await eventually(() => lines.some((l) => l.line.startsWith('got SIGTERM')), 'the process to report SIGTERM');
  });

  it("pauseMode 'terminate' ends the process, and resume restarts it with the checkpoint in TASKCTL_CHECKPOINT", async () => {
    const heartbeat = join(tmp, 'heartbeat-terminate');
    writeFileSync(heartbeat, '');
    const lines: ChildOutputLine[] = [];
    const executor = new ChildProcessExecutor(
      { job: stepsTask({ FIXTURE_STEPS: '30', FIXTURE_STEP_MS: '10', FIXTURE_HEARTBEAT: heartbeat }, { pauseMode: 'terminate', graceMs: 2000 }) },
      { onOutput: (l) => lines.push(l) },
    );
    const controller = await startController(executor, ['job']);
    const instance = await controller.submit('job');
    await eventually(() => statSync(heartbeat).size >= 3, 'three heartbeats');
    const firstPid = pidFrom(lines, instance.id)!;
    await controller.pause({ instanceId: instance.id });
    const paused = await until(controller, instance.id, 'paused');
    const step = (paused.checkpoint as { step: number }).step;
    expect(step).toBeGreaterThanOrEqual(3);
    expect(alive(firstPid)).toBe(false);
    expect(lines.some((l) => l.line === `got SIGTERM at step ${step}`)).toBe(true);

    await controller.resume({ instanceId: instance.id });
    const done = await until(controller, instance.id, ['succeeded', 'failed']);
    expect(done.state).toBe('succeeded');
    expect((done.result as ChildProcessResult).result).toEqual({ startedAt: step, steps: 30 });
    expect(lines.filter((l) => l.line.startsWith('start pid=')).map((l) => l.line.split(' ')[2])).toEqual(['from=0', `from=${step}`]);
    expect(statSync(heartbeat).size).toBe(30);
  });

  it("passCheckpoint: 'arg' appends --checkpoint=<json>; {{checkpoint}} fills it into a template", async () => {
    const executor = new ChildProcessExecutor({ job: { command: fixture('print-env.mjs'), args: ['x', 'cp={{checkpoint}}'], passCheckpoint: 'arg' } });
    const result = await executor.execute(contextFor('job', { checkpoint: { step: 7 } }));
    const seen = JSON.parse(result.stdoutTail) as { argv: string[]; env: Record<string, string> };
    expect(seen.argv).toEqual(['x', 'cp={"step":7}', '--checkpoint={"step":7}']);
    expect(seen.env.TASKCTL_CHECKPOINT).toBeUndefined();
  });
});

describe('ChildProcessExecutor: bad input', () => {
  it('validates its options at construction, naming the field', () => {
    const attempt = (tasks: unknown, defaults?: unknown) => {
      try {
        new ChildProcessExecutor(tasks as never, defaults as never);
      } catch (err) {
        if (isTaskControlError(err, 'VALIDATION')) return err.message;
        throw err;
      }
      return 'no error';
    };
    expect(attempt({ report: {} })).toBe('tasks.report.command: is required: the executable to run');
    expect(attempt({ report: { command: '' } })).toMatch(/^tasks\.report\.command: must not be empty/);
    expect(attempt({ report: { command: 'x', pauseMode: 'freeze' } })).toMatch(/^tasks\.report\.pauseMode: /);
    expect(attempt({ report: { command: 'x', graceMs: -1 } })).toMatch(/^tasks\.report\.graceMs: /);
    expect(attempt({ report: { command: 'x', args: ['{{nope}}'] } })).toMatch(/^tasks\.report\.args\.0: unknown template variable \{\{nope\}\}/);
    expect(attempt({ report: { command: 'x', comand: 'y' } })).toMatch(/^tasks\.report\.comand: unknown option 'comand'/);
    expect(attempt({ report: { command: 'x' } }, { graceMs: 'soon' })).toMatch(/^defaults\.graceMs: /);
  });

  it('each bad input ends its attempt failed with a clear code, and the controller carries on', async () => {
    const notExecutable = join(tmp, 'not-executable.sh');
    writeFileSync(notExecutable, '#!/bin/sh\necho hi\n', { mode: 0o644 });
    chmodSync(notExecutable, 0o644);
    const executor = new ChildProcessExecutor({
      missing: { command: 'taskctl-no-such-command-7f3a' },
      missingPath: { command: join(tmp, 'nope', 'run.sh') },
      noExec: { command: notExecutable },
      badParam: { command: 'echo', args: ['{{params.region}}'] },
      noDate: { command: 'echo', env: { FIXTURE_DATE: '{{logicalDate}}' } },
      badCwd: { command: 'echo', cwd: join(tmp, 'no-such-dir') },
      fine: { command: 'echo', args: ['ok'] },
    });
    const errors: unknown[] = [];
    const controller = await startController(executor, ['missing', 'missingPath', 'noExec', 'badParam', 'noDate', 'badCwd', 'unknownTask', 'fine']);
    controller.on('error', (e) => errors.push(e));
    const expected: Record<string, [string, RegExp]> = {
      missing: ['COMMAND_NOT_FOUND', /taskctl-no-such-command-7f3a' was not found on PATH/],
      missingPath: ['COMMAND_NOT_FOUND', /run\.sh' was not found/],
      noExec: ['COMMAND_NOT_EXECUTABLE', /not-executable\.sh' is not executable/],
      badParam: ['TEMPLATE_UNKNOWN_PARAM', /tasks\.badParam\.args\.0: \{\{params\.region\}\} names a parameter .* \(its params: other\)/],
      noDate: ['TEMPLATE_NO_LOGICAL_DATE', /tasks\.noDate\.env\.FIXTURE_DATE: \{\{logicalDate\}\}/],
      badCwd: ['CWD_NOT_FOUND', /no-such-dir does not exist/],
      unknownTask: ['NO_COMMAND', /no command is configured for task unknownTask/],
    };
    for (const [taskId, [code, message]] of Object.entries(expected)) {
      const instance = await controller.submit(taskId, { params: { other: 1 } });
      const done = await until(controller, instance.id, ['succeeded', 'failed']);
      expect(done.state, taskId).toBe('failed');
      expect(done.error?.code, taskId).toBe(code);
      expect(done.error?.message, taskId).toMatch(message);
    }
    const fine = await until(controller, (await controller.submit('fine')).id, ['succeeded', 'failed']);
    expect((fine.result as ChildProcessResult).stdoutTail).toBe('ok\n');
    expect(errors).toEqual([]);
  });
});

/** A bare ExecutionContext, to call an executor without a controller. */
function contextFor(taskId: string, over: { checkpoint?: unknown; params?: Record<string, unknown> } = {}): ExecutionContext {
  const at = new Date().toISOString();
  const instance: Instance = { id: `test-${taskId}`, taskId, params: over.params ?? {}, state: 'running', attempt: 1, version: 1, createdAt: at, updatedAt: at };
  return {
    instance,
    params: instance.params,
    attempt: 1,
    checkpoint: over.checkpoint,
    signal: new AbortController().signal,
    pauseRequested: () => false,
    pausePoint: async () => undefined,
    saveCheckpoint: () => undefined,
    progress: () => undefined,
    suspend: async () => undefined,
    onPauseRequested: () => () => undefined,
  };
}

function statSafe(path: string): boolean {
  try {
    return statSync(path).size > 0;
  } catch {
    return false;
  }
}

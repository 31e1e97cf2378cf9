import { spawn, type ChildProcess } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { z } from 'zod';
import { parse } from '../schemas.js';
import type { ExecutionContext, Executor } from './executor.js';
import { groupAlive, signalGroup, trackGroup, untrackGroup } from './process-group.js';

// -- options -------------------------------------------------------------------------------

/** How a graceful pause reaches a child process. */
export type ChildPauseMode = 'wait' | 'suspend' | 'terminate';

/** Where a resumed run finds its checkpoint. */
export type CheckpointPassing = 'env' | 'arg' | false;

/** Signals a child may be asked to stop with. SIGKILL always follows after `graceMs`. */
export type ChildStopSignal = 'SIGTERM' | 'SIGINT' | 'SIGHUP' | 'SIGQUIT' | 'SIGUSR1' | 'SIGUSR2';

/**
 * What to run for one task. `args`, `env` values and `cwd` may hold templates:
 * `{{params.x}}` (also `{{params.a.b}}`), `{{logicalDate}}`, `{{attempt}}`, `{{instanceId}}`,
 * `{{taskId}}` and `{{checkpoint}}` (JSON, or empty when there is none).
 */
export interface ChildProcessTaskOptions {
  /** The executable (looked up on `PATH`), or with `shell: true` a `/bin/sh` command line. Not templated. */
  command: string;
  /** Arguments, each one argument whatever it contains (no shell splitting). */
  args?: string[];
  /** Extra environment variables, over the inherited ones and the defaults' `env`. */
  env?: Record<string, string>;
  /** Working directory. @default the controller's */
  cwd?: string;
  /**
   * Run `command` with `/bin/sh -c`. Templated `args` are then appended to it, each quoted,
   * so a parameter cannot inject shell syntax. @default false
   */
  shell?: boolean;
  /**
   * What a graceful pause does:
   * - `wait`: nothing; the pause takes effect when the process ends (a forced pause kills it).
   * - `suspend`: SIGSTOP the process group and hold it in memory, `paused`; SIGCONT when resumed
   *   with `continue` in this controller. Anything else (stop, restart, another controller
   *   claiming it) kills the group.
   * - `terminate`: SIGTERM the group (SIGKILL after `graceMs`), then `paused` with the last
   *   checkpoint; resuming with `continue` starts the command again with that checkpoint.
   * @default 'wait'
   */
  pauseMode?: ChildPauseMode;
  /** Between the stop signal and SIGKILL to the process group. @default 10000 */
  graceMs?: number;
  /** The first signal sent to the group on stop, timeout, forced pause or a `terminate` pause. @default 'SIGTERM' */
  stopSignal?: ChildStopSignal;
  /**
   * How a run resumed with `continue` gets its checkpoint (as JSON): `env` sets
   * `TASKCTL_CHECKPOINT`, `arg` appends `--checkpoint=<json>`, `false` passes nothing
   * (use `{{checkpoint}}` in a template instead). @default 'env'
   */
  passCheckpoint?: CheckpointPassing;
  /** How many bytes of the end of stdout and of stderr to keep. @default 4096 */
  tailBytes?: number;
  /** Start from this process's environment (minus any `TASKCTL_*` variables). @default true */
  inheritEnv?: boolean;
}

/** One line a child wrote (protocol lines excluded), for {@link ChildProcessDefaults.onOutput}. */
export interface ChildOutputLine {
  /** The task whose command printed the line. */
  taskId: string;
  /** The instance being run. */
  instanceId: string;
  /** The attempt number. */
  attempt: number;
  /** Which stream the line came from. */
  stream: 'stdout' | 'stderr';
  /** The line, without its newline. */
  line: string;
}

/** Defaults for every task of a {@link ChildProcessExecutor}; a task's own options win. */
export interface ChildProcessDefaults extends Omit<ChildProcessTaskOptions, 'command' | 'args'> {
  /** Called with every line the children write (forward it to your logger). */
  onOutput?: (line: ChildOutputLine) => void;
}

/** What a run that exited with code 0 resolves with (kept as the instance's `result`). */
export interface ChildProcessResult {
  /** Always 0: a non-zero exit fails the instance. */
  exitCode: 0;
  /** The last `tailBytes` of stdout, protocol lines left out. */
  stdoutTail: string;
  /** The last `tailBytes` of stderr. */
  stderrTail: string;
  /** What the process reported with `{"taskctl":{"result":...}}`, if it did. */
  result?: unknown;
}

/** The `code` of a {@link ChildProcessError}: it becomes the instance's `error.code`. */
export type ChildProcessErrorCode =
  | 'NO_COMMAND'
  | 'COMMAND_NOT_FOUND'
  | 'COMMAND_NOT_EXECUTABLE'
  | 'CWD_NOT_FOUND'
  | 'SPAWN_FAILED'
  | 'TEMPLATE_UNKNOWN_PARAM'
  | 'TEMPLATE_NO_LOGICAL_DATE'
  | 'CHECKPOINT_NOT_SERIALIZABLE'
  | 'EXIT_CODE'
  | 'SIGNAL'
  | 'ABORTED';

const ERROR_BRAND = Symbol.for('taskctl.ChildProcessError');

/** Why a child process run failed. `instanceof` works across two copies of taskctl. */
export class ChildProcessError extends Error {
  /** What went wrong. */
  readonly code: ChildProcessErrorCode;
  /** The task whose command it was. */
  readonly taskId: string;
  /** The exit code, for `EXIT_CODE`. */
  readonly exitCode?: number;
  /** The signal that killed the process, for `SIGNAL`. */
  readonly signal?: NodeJS.Signals;
  /** The last `tailBytes` of stdout, when the process ran. */
  readonly stdoutTail?: string;
  /** The last `tailBytes` of stderr, when the process ran. */
  readonly stderrTail?: string;

  constructor(
    code: ChildProcessErrorCode,
    message: string,
    extra: { taskId: string; exitCode?: number; signal?: NodeJS.Signals; stdoutTail?: string; stderrTail?: string; cause?: unknown },
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'ChildProcessError';
    this.code = code;
    this.taskId = extra.taskId;
    if (extra.exitCode !== undefined) this.exitCode = extra.exitCode;
    if (extra.signal !== undefined) this.signal = extra.signal;
    if (extra.stdoutTail !== undefined) this.stdoutTail = extra.stdoutTail;
    if (extra.stderrTail !== undefined) this.stderrTail = extra.stderrTail;
    Object.defineProperty(this, ERROR_BRAND, { value: true });
  }

  /** Recognises instances across duplicated copies of the module (checks a brand, not the prototype). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[ERROR_BRAND] === true;
  }
}

// -- validation ----------------------------------------------------------------------------

const TEMPLATE = /\{\{\s*([^{}]*?)\s*\}\}/g;
const PLAIN_VARIABLES = new Set(['logicalDate', 'attempt', 'instanceId', 'taskId', 'checkpoint']);
const PARAM_PATH = /^params(\.[^.\s]+)+$/;

function templateProblem(text: string): string | undefined {
  for (const match of text.matchAll(TEMPLATE)) {
    const name = match[1];
    if (!PLAIN_VARIABLES.has(name) && !PARAM_PATH.test(name)) {
      return `unknown template variable {{${name}}}: use {{params.<name>}}, {{logicalDate}}, {{attempt}}, {{instanceId}}, {{taskId}} or {{checkpoint}}`;
    }
  }
  return undefined;
}

const templated = z.string({ error: 'must be a string' }).superRefine((text, ctx) => {
  const problem = templateProblem(text);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const sharedShape = {
  env: z.record(z.string(), templated).optional(),
  cwd: templated.pipe(z.string().min(1, 'must not be empty')).optional(),
  shell: z.boolean().optional(),
  pauseMode: z.enum(['wait', 'suspend', 'terminate'], { error: "must be 'wait', 'suspend' or 'terminate'" }).optional(),
  graceMs: z.number().int().min(0).max(2_147_483_647).optional(),
  stopSignal: z
    .enum(['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'], { error: 'must be one of SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2' })
    .optional(),
  passCheckpoint: z.union([z.enum(['env', 'arg']), z.literal(false)], { error: "must be 'env', 'arg' or false" }).optional(),
  tailBytes: z.number().int().min(0).max(16 * 1024 * 1024).optional(),
  inheritEnv: z.boolean().optional(),
};

const taskOptionsSchema = z
  .object({
    command: z
      .string({ error: (issue) => (issue.input === undefined ? 'is required: the executable to run' : 'must be a string') })
      .min(1, 'must not be empty: the executable to run'),
    args: z.array(templated, { error: 'must be an array of strings' }).optional(),
    ...sharedShape,
  })
  .strict();

const tasksSchema = z.record(z.string().min(1, 'a task id must not be empty'), taskOptionsSchema, { error: 'must be an object of task options by task id' });

const defaultsSchema = z
  .object({
    ...sharedShape,
    onOutput: z.custom<(line: ChildOutputLine) => void>((v) => typeof v === 'function', 'must be a function').optional(),
  })
  .strict();

// -- templating ------------------------------------------------------------------------------

interface TemplateValues {
  taskId: string;
  instanceId: string;
  attempt: number;
  logicalDate?: string;
  params: Record<string, unknown>;
  checkpoint: unknown;
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value) ?? '';
}

function render(text: string, v: TemplateValues, field: string): string {
  if (!text.includes('{{')) return text;
  return text.replace(TEMPLATE, (_whole, name: string) => {
    switch (name) {
      case 'taskId':
        return v.taskId;
      case 'instanceId':
        return v.instanceId;
      case 'attempt':
        return String(v.attempt);
      case 'checkpoint':
        return v.checkpoint === undefined ? '' : formatValue(v.checkpoint);
      case 'logicalDate':
        if (v.logicalDate === undefined) {
          throw new ChildProcessError(
            'TEMPLATE_NO_LOGICAL_DATE',
            `${field}: {{logicalDate}} is used, but instance ${v.instanceId} has no logicalDate (it was submitted without one)`,
            { taskId: v.taskId },
          );
        }
        return v.logicalDate;
    }
    let value: unknown = v.params;
    for (const key of name.split('.').slice(1)) {
      if (typeof value !== 'object' || value === null || !Object.hasOwn(value, key) || (value as Record<string, unknown>)[key] === undefined) {
        const known = Object.keys(v.params);
        throw new ChildProcessError(
          'TEMPLATE_UNKNOWN_PARAM',
          `${field}: {{${name}}} names a parameter that instance ${v.instanceId} does not have ` +
            `(its params: ${known.length ? known.join(', ') : 'none'})`,
          { taskId: v.taskId },
        );
      }
      value = (value as Record<string, unknown>)[key];
    }
    return formatValue(value);
  });
}

/** Quote one word for /bin/sh. */
function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

// -- output ------------------------------------------------------------------------------------

/** The last `max` bytes written. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly max: number) {}

  push(data: Buffer | string): void {
    if (this.max === 0) return;
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    if (buf.length >= this.max) {
      this.chunks = [buf.subarray(buf.length - this.max)];
      this.size = this.max;
      return;
    }
    this.chunks.push(buf);
    this.size += buf.length;
    while (this.size - this.chunks[0].length >= this.max) this.size -= this.chunks.shift()!.length;
  }

  toString(): string {
    let buf = Buffer.concat(this.chunks);
    if (buf.length > this.max) buf = buf.subarray(buf.length - this.max);
    // the cut may fall inside a multi-byte character
    return buf.toString('utf8').replace(/^\uFFFD+/, '');
  }
}

const MAX_LINE = 1024 * 1024;

/** Splits a byte stream into lines; a line longer than MAX_LINE comes out in pieces. */
class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private rest = '';

  constructor(private readonly emit: (line: string, complete: boolean) => void) {}

  push(chunk: Buffer): void {
    const text = this.rest + this.decoder.write(chunk);
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      this.emit(text.slice(start, nl), true);
      start = nl + 1;
    }
    this.rest = text.slice(start);
    if (this.rest.length > MAX_LINE) {
      this.emit(this.rest, false);
      this.rest = '';
    }
  }

  end(): void {
    const text = this.rest + this.decoder.end();
    this.rest = '';
    if (text) this.emit(text, false);
  }
}

const PROTOCOL_LINE = /^\s*\{\s*"taskctl"\s*:/;

function protocolMessage(line: string): Record<string, unknown> | undefined {
  if (!PROTOCOL_LINE.test(line)) return undefined;
  try {
    const value = JSON.parse(line) as { taskctl?: unknown };
    if (typeof value.taskctl === 'object' && value.taskctl !== null && !Array.isArray(value.taskctl)) {
      return value.taskctl as Record<string, unknown>;
    }
  } catch {
    // not JSON after all: an ordinary line of output
  }
  return undefined;
}

function progressOf(value: unknown): { done: number; total?: number } | undefined {
  const finite = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n);
  if (finite(value)) return { done: value };
  if (Array.isArray(value) && finite(value[0])) return finite(value[1]) ? { done: value[0], total: value[1] } : { done: value[0] };
  if (typeof value === 'object' && value !== null) {
    const { done, total } = value as { done?: unknown; total?: unknown };
    if (finite(done)) return finite(total) ? { done, total } : { done };
  }
  return undefined;
}

// -- one child process -------------------------------------------------------------------------

interface SpawnPlan {
  file: string;
  args: string[];
  cwd?: string;
  env: NodeJS.ProcessEnv;
}

interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all. */
  spawnError?: NodeJS.ErrnoException;
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A child leading its own process group. `done` resolves once the leader has exited, its
 * output is read, and nothing of its group is left running (leftovers get the stop signal,
 * then SIGKILL after `graceMs`).
 */
class ChildHandle {
  readonly done: Promise<ExitInfo>;
  pid: number | undefined;
  leaderExited = false;
  /** The first signal sent to end the group, once sent. */
  termSignal: NodeJS.Signals | undefined;
  /** Whether SIGKILL had to follow. */
  escalated = false;
  private stopped = false;
  private settled = false;
  private killTimer: NodeJS.Timeout | undefined;
  private killedAt = 0;
  private closed = false;
  private onClosed: (() => void) | undefined;
  private resolveDone!: (exit: ExitInfo) => void;
  private proc: ChildProcess | undefined;

  constructor(
    plan: SpawnPlan,
    private readonly graceMs: number,
    private readonly stopSignal: NodeJS.Signals,
    output: { stdout: (chunk: Buffer) => void; stderr: (chunk: Buffer) => void; end: () => void },
  ) {
    this.done = new Promise<ExitInfo>((resolve) => (this.resolveDone = resolve));
    let proc: ChildProcess;
    try {
      proc = spawn(plan.file, plan.args, {
        cwd: plan.cwd,
        env: plan.env,
        detached: process.platform !== 'win32',
        stdio: ['ignore', 'pipe', 'pipe'],
        windowsHide: true,
      });
    } catch (err) {
      // invalid arguments (a NUL byte, say) throw at once instead of emitting 'error'
      this.settle({ code: null, signal: null, spawnError: err as NodeJS.ErrnoException });
      return;
    }
    this.proc = proc;
    this.pid = proc.pid;
    if (this.pid !== undefined) trackGroup(this.pid);
    let streamsOpen = 2;
    const ended = () => {
      if (--streamsOpen === 0) output.end();
    };
    proc.stdout!.on('data', output.stdout).once('end', ended);
    proc.stderr!.on('data', output.stderr).once('end', ended);
    proc.on('error', (err) => {
      if (this.pid === undefined) {
        proc.stdout?.destroy();
        proc.stderr?.destroy();
        this.settle({ code: null, signal: null, spawnError: err });
      }
    });
    proc.once('close', () => {
      this.closed = true;
      this.onClosed?.();
    });
    proc.once('exit', (code, signal) => {
      if (this.pid === undefined) return; // never started: 'error' settles it
      this.leaderExited = true;
      const exit = { code, signal };
      this.reap(exit).catch(() => this.settle(exit));
    });
  }

  /** SIGSTOP the group. False when there is nothing to stop. */
  suspend(): boolean {
    if (this.pid === undefined || this.leaderExited || this.settled || this.termSignal) return false;
    this.stopped = signalGroup(this.pid, 'SIGSTOP');
    return this.stopped;
  }

  /** SIGCONT the group after {@link suspend}. */
  resume(): void {
    if (!this.stopped) return;
    this.stopped = false;
    if (this.pid !== undefined && !this.settled) signalGroup(this.pid, 'SIGCONT');
  }

  /** Stop signal to the group now, SIGKILL after `graceMs`. Idempotent. */
  terminate(): void {
    if (this.pid === undefined || this.settled || this.termSignal) return;
    this.termSignal = this.stopSignal;
    if (this.stopped) {
      // a stopped process cannot act on SIGTERM: let it run so that it can die
      this.stopped = false;
      signalGroup(this.pid, 'SIGCONT');
    }
    signalGroup(this.pid, this.stopSignal);
    this.killTimer = setTimeout(() => this.kill(), this.graceMs);
  }

  private kill(): void {
    if (this.pid === undefined || this.settled) return;
    this.escalated = true;
    this.killedAt = Date.now();
    signalGroup(this.pid, 'SIGKILL');
  }

  private async reap(exit: ExitInfo): Promise<void> {
    const pid = this.pid!;
    if (groupAlive(pid)) {
      // the leader is gone but it left processes behind: they are part of this run
      this.terminate();
      while (groupAlive(pid)) {
        // a process in uninterruptible sleep can outlive even SIGKILL for a while
        if (this.killedAt !== 0 && Date.now() - this.killedAt > 2000) break;
        await delay(20);
      }
    }
    if (this.killTimer !== undefined) clearTimeout(this.killTimer);
    untrackGroup(pid);
    if (!this.closed) {
      // output pipes may be held by a process that left the group (setsid): do not wait for it
      await Promise.race([new Promise<void>((resolve) => (this.onClosed = resolve)), delay(500)]);
      this.proc?.stdout?.destroy();
      this.proc?.stderr?.destroy();
    }
    this.settle(exit);
  }

  private settle(exit: ExitInfo): void {
    if (this.settled) return;
    this.settled = true;
    if (this.killTimer !== undefined) clearTimeout(this.killTimer);
    this.resolveDone(exit);
  }
}

// -- one attempt -------------------------------------------------------------------------------

interface ResolvedTask {
  command: string;
  args: string[];
  env: { field: string; name: string; value: string }[];
  cwd?: { field: string; value: string };
  shell: boolean;
  pauseMode: ChildPauseMode;
  graceMs: number;
  stopSignal: NodeJS.Signals;
  passCheckpoint: CheckpointPassing;
  tailBytes: number;
  inheritEnv: boolean;
}

function describeExit(exit: ExitInfo): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

function withTail(message: string, stderrTail: string): string {
  const tail = stderrTail.trim();
  return tail ? `${message}; stderr: ${tail}` : message;
}

class Attempt {
  private checkpoint: unknown;
  private result: unknown;
  private child: ChildHandle | undefined;
  /** A `terminate` pause has ended the current child. */
  private pauseKill = false;
  private suspending: Promise<void> | undefined;
  private suspendError: { error: unknown } | undefined;
  private readonly stdoutTail: Tail;
  private readonly stderrTail: Tail;
  private readonly label: string;

  constructor(
    private readonly ctx: ExecutionContext,
    private readonly taskId: string,
    private readonly o: ResolvedTask,
    private readonly onOutput: ((line: ChildOutputLine) => void) | undefined,
  ) {
    this.checkpoint = ctx.checkpoint;
    this.stdoutTail = new Tail(o.tailBytes);
    this.stderrTail = new Tail(o.tailBytes);
    this.label = `task ${taskId}: command '${o.command}'`;
  }

  async run(): Promise<ChildProcessResult> {
    const { ctx } = this;
    const onAbort = () => this.child?.terminate();
    ctx.signal.addEventListener('abort', onAbort);
    const stopListening = this.o.pauseMode === 'wait' ? undefined : ctx.onPauseRequested(() => this.onPause());
    try {
      for (;;) {
        const plan = await this.plan();
        if (ctx.signal.aborted) throw ctx.signal.reason;
        // a pause asked before there is a process to pause
        if (this.o.pauseMode !== 'wait' && ctx.pauseRequested()) {
          if (this.o.pauseMode === 'terminate') await ctx.pausePoint(this.checkpoint);
          else await ctx.suspend(this.checkpoint);
          continue;
        }
        this.pauseKill = false;
        const child = new ChildHandle(plan, this.o.graceMs, this.o.stopSignal, this.sinks());
        this.child = child;
        const exit = await child.done;
        while (this.suspending) await this.suspending;
        if (this.suspendError) throw this.suspendError.error;
        if (exit.spawnError) throw this.spawnFailure(exit.spawnError, plan);
        if (ctx.signal.aborted) throw this.aborted(child, exit);
        if (this.pauseKill) {
          // rejects (paused, or aborted); resolves only if the pause was withdrawn: start again
          await ctx.pausePoint(this.checkpoint);
          continue;
        }
        const tails = { stdoutTail: this.stdoutTail.toString(), stderrTail: this.stderrTail.toString() };
        if (exit.code === 0) {
          const result: ChildProcessResult = { exitCode: 0, ...tails };
          if (this.result !== undefined) result.result = this.result;
          return result;
        }
        if (exit.signal) {
          throw new ChildProcessError('SIGNAL', withTail(`${this.label} was killed by ${exit.signal}`, tails.stderrTail), {
            taskId: this.taskId,
            signal: exit.signal,
            ...tails,
          });
        }
        throw new ChildProcessError('EXIT_CODE', withTail(`${this.label} exited with code ${exit.code}`, tails.stderrTail), {
          taskId: this.taskId,
          exitCode: exit.code ?? undefined,
          ...tails,
        });
      }
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
      stopListening?.();
    }
  }

  private onPause(): void {
    const child = this.child;
    if (!child || child.leaderExited || this.ctx.signal.aborted || this.suspending || this.pauseKill) return;
    if (this.o.pauseMode === 'terminate') {
      this.pauseKill = true;
      child.terminate();
      return;
    }
    if (!child.suspend()) return;
    this.suspending = (async () => {
      try {
        // a checkpoint line written just before SIGSTOP may still sit in the pipe: read it first
        for (let turn = 0; turn < 3; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
        await this.ctx.suspend(this.checkpoint);
        child.resume();
      } catch (error) {
        // stopped, resumed with restart/skip, or taken over elsewhere: this process is done
        this.suspendError = { error };
        child.terminate();
      } finally {
        this.suspending = undefined;
      }
    })();
  }

  private sinks(): { stdout: (chunk: Buffer) => void; stderr: (chunk: Buffer) => void; end: () => void } {
    const emit = (stream: 'stdout' | 'stderr', line: string) => {
      if (!this.onOutput) return;
      try {
        this.onOutput({ taskId: this.taskId, instanceId: this.ctx.instance.id, attempt: this.ctx.attempt, stream, line: line.replace(/\r$/, '') });
      } catch {
        // a logger's failure is not the task's
      }
    };
    const stdout = new LineSplitter((line, complete) => {
      const message = complete ? protocolMessage(line) : undefined;
      if (message) return this.protocol(message);
      this.stdoutTail.push(complete ? `${line}\n` : line);
      emit('stdout', line);
    });
    const stderr = this.onOutput ? new LineSplitter((line) => emit('stderr', line)) : undefined;
    return {
      stdout: (chunk) => stdout.push(chunk),
      stderr: (chunk) => {
        this.stderrTail.push(chunk);
        stderr?.push(chunk);
      },
      end: () => {
        stdout.end();
        stderr?.end();
      },
    };
  }

  private protocol(message: Record<string, unknown>): void {
    if ('progress' in message) {
      const p = progressOf(message.progress);
      if (p) this.ctx.progress(p.done, p.total);
    }
    if ('checkpoint' in message) {
      this.checkpoint = message.checkpoint;
      this.ctx.saveCheckpoint(message.checkpoint);
    }
    if ('result' in message) this.result = message.result;
  }

  private async plan(): Promise<SpawnPlan> {
    const { ctx, o } = this;
    const values: TemplateValues = {
      taskId: this.taskId,
      instanceId: ctx.instance.id,
      attempt: ctx.attempt,
      logicalDate: ctx.logicalDate,
      params: ctx.params ?? {},
      checkpoint: this.checkpoint,
    };
    const where = `tasks.${this.taskId}`;
    const args = o.args.map((arg, i) => render(arg, values, `${where}.args.${i}`));
    const extraEnv: Record<string, string> = {};
    for (const e of o.env) extraEnv[e.name] = render(e.value, values, e.field);
    let cwd: string | undefined;
    if (o.cwd) {
      cwd = render(o.cwd.value, values, o.cwd.field);
      const info = await stat(cwd).catch(() => undefined);
      if (!info?.isDirectory()) {
        throw new ChildProcessError('CWD_NOT_FOUND', `${this.label} cannot start: its working directory ${cwd} ${info ? 'is not a directory' : 'does not exist'}`, {
          taskId: this.taskId,
        });
      }
    }
    let checkpointJson: string | undefined;
    if (this.checkpoint !== undefined && o.passCheckpoint !== false) {
      try {
        checkpointJson = JSON.stringify(this.checkpoint);
      } catch (cause) {
        throw new ChildProcessError('CHECKPOINT_NOT_SERIALIZABLE', `${this.label} cannot start: its checkpoint cannot be passed as JSON: ${String(cause)}`, {
          taskId: this.taskId,
          cause,
        });
      }
    }
    if (o.passCheckpoint === 'arg' && checkpointJson !== undefined) args.push(`--checkpoint=${checkpointJson}`);

    const env: NodeJS.ProcessEnv = {};
    if (o.inheritEnv) {
      for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('TASKCTL_')) env[key] = value;
    }
    Object.assign(env, extraEnv);
    env.TASKCTL_TASK_ID = this.taskId;
    env.TASKCTL_INSTANCE_ID = ctx.instance.id;
    env.TASKCTL_ATTEMPT = String(ctx.attempt);
    env.TASKCTL_PARAMS = JSON.stringify(ctx.params ?? {});
    if (ctx.logicalDate !== undefined) env.TASKCTL_LOGICAL_DATE = ctx.logicalDate;
    if (o.passCheckpoint === 'env' && checkpointJson !== undefined) env.TASKCTL_CHECKPOINT = checkpointJson;

    if (o.shell) {
      const line = [o.command, ...args.map(shellQuote)].join(' ');
      return { file: '/bin/sh', args: ['-c', line], cwd, env };
    }
    return { file: o.command, args, cwd, env };
  }

  private spawnFailure(err: NodeJS.ErrnoException, plan: SpawnPlan): ChildProcessError {
    const extra = { taskId: this.taskId, cause: err };
    if (err.code === 'ENOENT') {
      const where = plan.file.includes('/') ? ' (or the interpreter named by its #! line does not exist)' : ' on PATH';
      return new ChildProcessError('COMMAND_NOT_FOUND', `${this.label} was not found${where}`, extra);
    }
    if (err.code === 'EACCES') {
      return new ChildProcessError('COMMAND_NOT_EXECUTABLE', `${this.label} is not executable (permission denied: is its execute bit set?)`, extra);
    }
    return new ChildProcessError('SPAWN_FAILED', `${this.label} could not be started: ${err.message}`, extra);
  }

  private aborted(child: ChildHandle, exit: ExitInfo): ChildProcessError {
    const reason = this.ctx.signal.reason as { kind?: unknown } | undefined;
    const kind = typeof reason?.kind === 'string' ? reason.kind : 'abort';
    const signals = child.termSignal
      ? `its process group got ${child.termSignal}${child.escalated ? `, then SIGKILL after ${this.o.graceMs} ms` : ''}`
      : 'it was already ending';
    return new ChildProcessError('ABORTED', `${this.label} was aborted (${kind}): ${signals}; it ${describeExit(exit)}`, {
      taskId: this.taskId,
      cause: reason,
      ...(exit.code !== null && { exitCode: exit.code }),
      ...(exit.signal !== null && { signal: exit.signal }),
      stdoutTail: this.stdoutTail.toString(),
      stderrTail: this.stderrTail.toString(),
    });
  }
}

// -- the executor --------------------------------------------------------------------------------

/**
 * Runs each task as an operating-system process, and controls it through signals.
 *
 * ```ts
 * new ChildProcessExecutor({
 *   report: { command: 'python3', args: ['report.py', '--date', '{{logicalDate}}', '--region', '{{params.region}}'],
 *             pauseMode: 'terminate', graceMs: 5_000 },
 * }, { env: { LOG_LEVEL: 'info' } })
 * ```
 *
 * - **Spawning**: without a shell (unless `shell: true`), as the leader of a new process
 *   group. `args`, `env` values and `cwd` are templated (see {@link ChildProcessTaskOptions});
 *   a template naming a parameter the instance lacks fails the attempt with
 *   `TEMPLATE_UNKNOWN_PARAM`. The child also gets `TASKCTL_TASK_ID`, `TASKCTL_INSTANCE_ID`,
 *   `TASKCTL_ATTEMPT`, `TASKCTL_PARAMS` (JSON), `TASKCTL_LOGICAL_DATE` and, when resumed with
 *   a checkpoint, `TASKCTL_CHECKPOINT` (JSON).
 * - **Stop, timeout, forced pause, shutdown**: the stop signal (SIGTERM) to the whole group,
 *   SIGKILL after `graceMs`. When the leader exits, whatever it left in its group is ended the
 *   same way, so no grandchild outlives its run. (A process that calls `setsid` leaves the
 *   group and escapes this.)
 * - **Graceful pause**: per `pauseMode` — `wait`, `suspend` (SIGSTOP/SIGCONT) or `terminate`
 *   (SIGTERM now, restart from the last checkpoint on resume).
 * - **Line protocol** on stdout — one JSON object per line under the reserved key `taskctl`:
 *   `{"taskctl":{"progress":[3,10]}}` (also `3` or `{"done":3,"total":10}`) reports progress;
 *   `{"taskctl":{"checkpoint":{...}}}` saves a checkpoint (kept by a pause or stop, handed back
 *   on `continue`); `{"taskctl":{"result":{...}}}` sets `result` of the outcome. Keys combine
 *   in one line. Protocol lines are not part of `stdoutTail`; other lines are plain output.
 * - **Outcome**: exit code 0 resolves with {@link ChildProcessResult}; otherwise the attempt
 *   fails with a {@link ChildProcessError} whose `code` becomes the instance's `error.code`:
 *   `EXIT_CODE`, `SIGNAL`, `COMMAND_NOT_FOUND`, `COMMAND_NOT_EXECUTABLE`, `CWD_NOT_FOUND`,
 *   `NO_COMMAND` (no options for the task), `TEMPLATE_*`, `SPAWN_FAILED`, or `ABORTED`.
 *
 * POSIX only for process groups: on Windows signals reach the child alone.
 */
export class ChildProcessExecutor implements Executor {
  private readonly tasks = new Map<string, ChildProcessTaskOptions>();
  private readonly defaults: ChildProcessDefaults;

  constructor(tasks: Record<string, ChildProcessTaskOptions>, defaults: ChildProcessDefaults = {}) {
    this.defaults = parse(defaultsSchema, defaults, 'defaults') as ChildProcessDefaults;
    const parsed = parse(tasksSchema, tasks, 'tasks') as Record<string, ChildProcessTaskOptions>;
    for (const [taskId, options] of Object.entries(parsed)) this.tasks.set(taskId, options);
  }

  /** Add or replace the command of a task. */
  register(taskId: string, options: ChildProcessTaskOptions): void {
    const parsed = parse(tasksSchema, { [taskId]: options }, 'tasks') as Record<string, ChildProcessTaskOptions>;
    this.tasks.set(taskId, parsed[taskId]);
  }

  /** Spawn the command of the instance's task and wait for it to exit. */
  async execute(ctx: ExecutionContext): Promise<ChildProcessResult> {
    const taskId = ctx.instance.taskId;
    const task = this.tasks.get(taskId);
    if (!task) {
      throw new ChildProcessError(
        'NO_COMMAND',
        `no command is configured for task ${taskId}: give it one with new ChildProcessExecutor({ '${taskId}': { command } }) or register()`,
        { taskId },
      );
    }
    return new Attempt(ctx, taskId, this.resolve(taskId, task), this.defaults.onOutput).run();
  }

  private resolve(taskId: string, task: ChildProcessTaskOptions): ResolvedTask {
    const d = this.defaults;
    const env: ResolvedTask['env'] = [];
    for (const [name, value] of Object.entries(d.env ?? {})) if (!task.env || !Object.hasOwn(task.env, name)) env.push({ field: `defaults.env.${name}`, name, value });
    for (const [name, value] of Object.entries(task.env ?? {})) env.push({ field: `tasks.${taskId}.env.${name}`, name, value });
    const cwd = task.cwd !== undefined ? { field: `tasks.${taskId}.cwd`, value: task.cwd } : d.cwd !== undefined ? { field: 'defaults.cwd', value: d.cwd } : undefined;
    return {
      command: task.command,
      args: task.args ?? [],
      env,
      cwd,
      shell: task.shell ?? d.shell ?? false,
      pauseMode: task.pauseMode ?? d.pauseMode ?? 'wait',
      graceMs: task.graceMs ?? d.graceMs ?? 10_000,
      stopSignal: task.stopSignal ?? d.stopSignal ?? 'SIGTERM',
      passCheckpoint: task.passCheckpoint ?? d.passCheckpoint ?? 'env',
      tailBytes: task.tailBytes ?? d.tailBytes ?? 4096,
      inheritEnv: task.inheritEnv ?? d.inheritEnv ?? true,
    };
  }
}

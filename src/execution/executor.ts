import { TaskControlError } from '../errors.js';
import type { Instance } from '../types.js';

/**
 * What an executor gets for one run of an instance. Cooperative control lives here:
 * check `signal` to stop, call `pausePoint()` where the work can be paused.
 */
export interface ExecutionContext {
  /** The instance as it was when this run started. */
  readonly instance: Readonly<Instance>;
  /** The instance's params (defaults, submit params and resume/rerun overrides merged). */
  readonly params: Record<string, unknown>;
  /** The instance's logical date (ISO), if it has one. */
  readonly logicalDate?: string;
  /** 1 on the first run, +1 per rerun or retry. */
  readonly attempt: number;
  /** The checkpoint saved at the last pause point, present when resumed with `continue`. */
  readonly checkpoint?: unknown;
  /** Fires on stop, forced pause, timeout and shutdown. `signal.reason` says which. */
  readonly signal: AbortSignal;
  /** True while a graceful pause is asked and not yet honoured. */
  pauseRequested(): boolean;
  /**
   * A place where the work may pause. If a pause is asked, saves `checkpoint` and unwinds
   * (the returned promise rejects; let it propagate). If the run was aborted, rejects with
   * the abort reason. Otherwise resolves at once.
   */
  pausePoint(checkpoint?: unknown): Promise<void>;
  /** Save a checkpoint without pausing: a forced pause or stop keeps the last one saved. */
  saveCheckpoint(checkpoint: unknown): void;
  /** Report progress; shown in `progress` events and kept on the instance at its next change. */
  progress(done: number, total?: number): void;
  /**
   * Pause in place: if a pause is asked, the instance becomes `paused` while this run stays
   * alive (say, a child process stopped with SIGSTOP). Resolves when the instance is resumed
   * with `continue` and claimed again by this controller; rejects with the abort reason when
   * it is stopped, resumed with `restart` or `skip`, or claimed by another controller (which
   * then starts the work afresh from the checkpoint). Resolves at once when no pause is asked.
   */
  suspend(checkpoint?: unknown): Promise<void>;
  /**
   * Be told when a graceful pause is asked (for executors that cannot poll `pauseRequested`,
   * such as a child process). Returns a function that removes the listener.
   */
  onPauseRequested(listener: () => void): () => void;
}

/** Runs the work of an instance. Resolve means `succeeded`, throw means `failed`. */
export interface Executor {
  /** Run one attempt; resolve with the result or throw to fail it. */
  execute(ctx: ExecutionContext): Promise<unknown>;
}

/** A task handler for {@link FunctionExecutor}. */
export type TaskHandler = (ctx: ExecutionContext) => unknown | Promise<unknown>;

// Thrown by pausePoint to unwind the executor's stack; recognised by a global symbol so
// that it survives two copies of the package.
const UNWIND = Symbol.for('taskctl.PauseUnwind');

/** The rejection `pausePoint` unwinds with. Executors should let it propagate. */
export class PauseUnwind extends Error {
  constructor() {
    super('paused at a pause point');
    this.name = 'PauseUnwind';
    Object.defineProperty(this, UNWIND, { value: true });
  }

  /** Recognises instances across duplicated copies of the module (checks a brand, not the prototype). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[UNWIND] === true;
  }
}

/**
 * Runs plain async functions, one per task id.
 *
 * ```ts
 * new FunctionExecutor({ report: async (ctx) => { ... } })
 * ```
 */
export class FunctionExecutor implements Executor {
  private readonly handlers: Map<string, TaskHandler>;

  constructor(handlers: Record<string, TaskHandler>) {
    this.handlers = new Map(Object.entries(handlers));
    for (const [taskId, handler] of this.handlers) {
      if (typeof handler !== 'function') {
        throw new TaskControlError('VALIDATION', `handlers.${taskId}: must be a function`, {
          issues: [{ path: ['handlers', taskId], message: 'must be a function' }],
        });
      }
    }
  }

  /** Add or replace the handler of a task. */
  register(taskId: string, handler: TaskHandler): void {
    this.handlers.set(taskId, handler);
  }

  /** Run the handler registered for the instance's task. */
  execute(ctx: ExecutionContext): Promise<unknown> {
    const handler = this.handlers.get(ctx.instance.taskId);
    if (!handler) {
      return Promise.reject(Object.assign(new Error(`no handler registered for task ${ctx.instance.taskId}`), { code: 'NO_HANDLER' }));
    }
    // not an async function: the handler's own promise is handed on as it is, without a
    // second promise (and two more microtask turns) around it
    try {
      return Promise.resolve(handler(ctx));
    } catch (err) {
      return Promise.reject(err);
    }
  }
}

// Shared helpers for the controller and machine tests (not a test file itself).
import { afterEach } from 'vitest';
import {
  FunctionExecutor,
  MemoryStateStore,
  TaskController,
  type AuditEntry,
  type Instance,
  type InstanceState,
  type TaskControllerOptions,
  type TaskHandler,
  type TransitionEvent,
} from '../src/index.js';
import { FakeClock } from '../src/testing/index.js';

/** A promise with its resolve/reject handles. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Real-time sleep that rejects with the signal's reason when it fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Fake-time sleep on a FakeClock, rejecting when the signal fires. */
export function fakeSleep(clock: FakeClock, ms: number, signal?: AbortSignal): Promise<void> {
  return clock.sleep(ms, signal);
}

/** Poll (in real time) until `check` holds; fail with `what` after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, what = 'condition', timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Wait (real time) until the instance is in one of `states`. */
export async function untilState(controller: TaskController, id: string, states: InstanceState | InstanceState[], timeoutMs = 3000): Promise<Instance> {
  const wanted = Array.isArray(states) ? states : [states];
  let last: Instance | undefined;
  await eventually(async () => {
    last = await controller.get(id);
    return last !== undefined && wanted.includes(last.state);
  }, `instance ${id} to be ${wanted.join('/')} (is ${last?.state})`, timeoutMs);
  return last!;
}

const live: TaskController[] = [];
afterEach(async () => {
  const all = live.splice(0);
  await Promise.all(all.map((c) => c.shutdown({ graceMs: 0 }).then(() => c.close())));
});

/** A controller on real timers, shut down after the test. */
export function controllerWith(
  handlers: Record<string, TaskHandler> | undefined,
  options: Omit<TaskControllerOptions, 'executor'> = {},
): { controller: TaskController; store: MemoryStateStore; transitions: TransitionEvent[] } {
  const store = (options.store as MemoryStateStore | undefined) ?? new MemoryStateStore();
  const controller = new TaskController({ ...options, store, executor: handlers ? new FunctionExecutor(handlers) : undefined });
  const transitions: TransitionEvent[] = [];
  controller.on('transition', (e) => transitions.push(e));
  live.push(controller);
  return { controller, store, transitions };
}

/** Register a controller built elsewhere for shutdown after the test. */
export function track(controller: TaskController): TaskController {
  live.push(controller);
  return controller;
}

/** `from --event--> to` of the transition entries, for compact assertions. */
export function moves(entries: AuditEntry[]): string[] {
  return entries.filter((e) => e.kind === 'transition').map((e) => `${e.from} --${e.event}--> ${e.to}`);
}

/** The states an instance went through, in order (from its transition entries). */
export async function history(controller: TaskController, instanceId: string): Promise<string[]> {
  return moves(await controller.audit({ instanceId }));
}

/**
 * A cooperative handler: `n` steps of `stepMs` real milliseconds, a pause point before each
 * step (the checkpoint is the next step), resuming from the checkpoint when there is one.
 */
export function stepsHandler(n: number, stepMs = 2, seen?: { checkpoints: unknown[]; attempts: number[] }): TaskHandler {
  return async (ctx) => {
    seen?.checkpoints.push(ctx.checkpoint);
    seen?.attempts.push(ctx.attempt);
    let i = typeof ctx.checkpoint === 'number' ? ctx.checkpoint : 0;
    for (; i < n; i++) {
      await ctx.pausePoint(i);
      await sleep(stepMs, ctx.signal);
    }
    return { steps: i };
  };
}

/** A handler that waits until its signal fires, then rejects with the signal's reason. */
export const untilAborted: TaskHandler = (ctx) =>
  new Promise((_, reject) => {
    if (ctx.signal.aborted) return reject(ctx.signal.reason);
    ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
  });

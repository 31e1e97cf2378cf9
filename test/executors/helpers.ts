// Helpers for the executor tests (not a test file itself).
import { readFileSync } from 'node:fs';
import { afterEach } from 'vitest';
import { TaskController, type Executor, type Instance, type InstanceState, type TaskControllerOptions } from '../../src/index.js';

/** Whether a process is still running. A zombie (exited, not yet reaped) is not. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // where init does not reap orphans (some containers), a killed grandchild stays a zombie
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return process.platform !== 'linux';
  }
}

/** The scheduler state letter of a process (`T` when stopped by SIGSTOP), Linux only. */
export function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** Poll (real time) until `check` holds; fail naming `what` after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Wait until the instance is in one of `states`. */
export function until(controller: TaskController, id: string, states: InstanceState | InstanceState[], timeoutMs = 5000): Promise<Instance> {
  return controller.waitFor(id, { states: Array.isArray(states) ? states : [states], timeoutMs });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const live: TaskController[] = [];
afterEach(async () => {
  const all = live.splice(0);
  await Promise.all(all.map((c) => c.shutdown({ graceMs: 0 }).then(() => c.close())));
});

/** A started controller on real timers with the given executor and tasks, shut down after the test. */
export async function startController(
  executor: Executor,
  tasks: (string | { id: string; timeoutMs?: number; maxAttempts?: number })[],
  options: Omit<TaskControllerOptions, 'executor'> = {},
): Promise<TaskController> {
  const controller = new TaskController({ ...options, executor });
  for (const task of tasks) controller.define(typeof task === 'string' ? { id: task } : task);
  live.push(controller);
  await controller.start();
  return controller;
}

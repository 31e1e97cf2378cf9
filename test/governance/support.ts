// Shared helpers for the governance tests (not a test file itself).
import { afterEach, expect } from 'vitest';
import { TaskControlError, type TaskController } from '../../src/index.js';
import { createTestController, type TestHarness } from '../../src/testing/index.js';

const live: TaskController[] = [];
afterEach(async () => {
  const all = live.splice(0);
  await Promise.all(all.map((c) => c.shutdown({ graceMs: 0 }).then(() => c.close())));
});

/** A started controller on a memory store and a fake clock, shut down after the test. */
export async function harness(options: Parameters<typeof createTestController>[0] = {}): Promise<TestHarness> {
  const h = await createTestController(options);
  live.push(h.controller);
  return h;
}

/** Register a controller built elsewhere for shutdown after the test. */
export function track<T extends TaskController>(controller: T): T {
  live.push(controller);
  return controller;
}

/** Await `p` and return the TaskControlError it rejects with (fails the test if it resolves). */
export async function failure(p: Promise<unknown> | (() => unknown)): Promise<TaskControlError> {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a TaskControlError').toBeInstanceOf(TaskControlError);
  return err as TaskControlError;
}

/** A promise with its resolve handle. */
export function gate<T = void>(): { promise: Promise<T>; open: (v: T) => void } {
  let open!: (v: T) => void;
  const promise = new Promise<T>((r) => (open = r));
  return { promise, open };
}

import { TaskController, type TaskControllerOptions } from '../controller/controller.js';
import { FunctionExecutor, type TaskHandler } from '../execution/executor.js';
import { MemoryStateStore } from '../store/memory-store.js';
import type { Instance, InstanceState, TransitionEvent } from '../types.js';
import { FakeClock } from './fake-clock.js';

/** What {@link createTestController} returns. */
export interface TestHarness {
  /** The controller under test. */
  controller: TaskController;
  /** The fake clock driving it. */
  clock: FakeClock;
  /** Its in-memory store. */
  store: MemoryStateStore;
  /** Every transition event, in order. */
  transitions: TransitionEvent[];
  /** Advance the fake clock and let the work it starts settle. */
  advance(ms: number): Promise<void>;
  /** Wait (in fake time, advancing `stepMs` at a time up to `maxMs`) until the instance is in one of `states`. */
  until(instanceId: string, states: InstanceState | InstanceState[], opts?: { stepMs?: number; maxMs?: number }): Promise<Instance>;
}

/**
 * A controller on a memory store with a fake clock, started, for workflow tests that run
 * in milliseconds however long their timeouts, grace periods and retry delays are.
 */
export async function createTestController(
  options: Omit<TaskControllerOptions, 'timers' | 'clock' | 'store'> & {
    handlers?: Record<string, TaskHandler>;
    start?: Date | string;
    store?: MemoryStateStore;
  } = {},
): Promise<TestHarness> {
  const clock = new FakeClock(options.start);
  const store = options.store ?? new MemoryStateStore();
  const { handlers, start: _start, ...rest } = options;
  const controller = new TaskController({
    ...rest,
    store,
    timers: clock,
    clock: clock.date,
    executor: rest.executor ?? (handlers ? new FunctionExecutor(handlers) : undefined),
  });
  const transitions: TransitionEvent[] = [];
  controller.on('transition', (e) => transitions.push(e));
  await controller.start();
  const harness: TestHarness = {
    controller,
    clock,
    store,
    transitions,
    advance: (ms) => clock.advance(ms),
    async until(instanceId, states, opts = {}) {
      const wanted = new Set(Array.isArray(states) ? states : [states]);
      const step = opts.stepMs ?? 10;
      const max = opts.maxMs ?? 3_600_000;
      for (let waited = 0; ; waited += step) {
        const instance = await store.getInstance(instanceId);
        if (instance && wanted.has(instance.state)) return instance;
        if (waited >= max) {
          throw new Error(`instance ${instanceId} is ${instance?.state ?? 'missing'}, not ${[...wanted].join('/')}, after ${max} fake ms`);
        }
        await clock.advance(step);
      }
    },
  };
  return harness;
}

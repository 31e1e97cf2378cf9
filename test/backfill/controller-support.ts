// Helpers for the backfill-through-the-controller tests (not a test file itself).
import { isTerminal, type BackfillStatus, type InstanceState, type StateStore, type TaskController, type TransitionEvent } from '../../src/index.js';

/** Reject with a message naming `what` when `p` has not settled within `ms` real milliseconds. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Replay transition events: the most instances (of those `filter` picks) that were
 * non-terminal at once, and the most that were `running`/`pausing`/`stopping` at once.
 */
export function peaks(transitions: TransitionEvent[], filter: (e: TransitionEvent) => boolean = () => true): { open: number; active: number } {
  const state = new Map<string, InstanceState>();
  let open = 0;
  let active = 0;
  const isActive = (s: InstanceState) => s === 'running' || s === 'pausing' || s === 'stopping';
  for (const e of transitions) {
    if (!filter(e)) continue;
    state.set(e.instanceId, e.to);
    let o = 0;
    let a = 0;
    for (const s of state.values()) {
      if (!isTerminal(s)) o++;
      if (isActive(s)) a++;
    }
    open = Math.max(open, o);
    active = Math.max(active, a);
  }
  return { open, active };
}

/** Every instance in the store, all pages. */
export async function allInstances(store: StateStore, query: { taskId?: string; backfillId?: string } = {}) {
  const out = [];
  for (let cursor: string | undefined; ; ) {
    const page = await store.listInstances({ ...query, limit: 1000, cursor });
    out.push(...page.items);
    if (!page.cursor) return out;
    cursor = page.cursor;
  }
}

/** The logical dates of a task's instances in the order they were first started (went `running`). */
export async function startOrder(store: StateStore, transitions: TransitionEvent[], taskId: string): Promise<string[]> {
  const dates = new Map((await allInstances(store, { taskId })).map((i) => [i.id, i.logicalDate!]));
  const seen = new Set<string>();
  const out: string[] = [];
  for (const e of transitions) {
    if (e.taskId !== taskId || e.to !== 'running' || seen.has(e.instanceId)) continue;
    seen.add(e.instanceId);
    out.push(dates.get(e.instanceId)!);
  }
  return out;
}

/** Collect `backfill` events. */
export function recordBackfillEvents(controller: TaskController): BackfillStatus[] {
  const events: BackfillStatus[] = [];
  controller.on('backfill', (e) => events.push(structuredClone(e)));
  return events;
}

/** Sum of a counts record. */
export function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/** ISO dates of a daily UTC schedule from `from` (YYYY-MM-DD), `n` days. */
export function utcDays(from: string, n: number): string[] {
  const start = Date.parse(`${from}T00:00:00.000Z`);
  return Array.from({ length: n }, (_, i) => new Date(start + i * 86_400_000).toISOString());
}

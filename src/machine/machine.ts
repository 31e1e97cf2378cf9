import { TaskControlError, type ErrorCode } from '../errors.js';
import type { Instance, InstanceState, TaskDefinition } from '../types.js';
import { TRANSITIONS, type MachineEvent, type TransitionRow } from './transitions.js';

/** What a guard sees when it decides on one transition. */
export interface GuardContext {
  /** The instance before the change (undefined when it is being created). */
  instance: Readonly<Instance> | undefined;
  /** The state before; `none` for a creation. */
  from: InstanceState | 'none';
  /** The state the change leads to. */
  to: InstanceState;
  /** The event causing the change. */
  event: MachineEvent;
  /** The task the instance belongs to, when the controller knows it. */
  task?: Readonly<TaskDefinition>;
  /** Who caused the change, if known. */
  actor?: string;
  /** The options of the command that asked for the change, if any. */
  options?: Readonly<Record<string, unknown>>;
  /** The current time. */
  now: Date;
  /** True when the instance lies inside a held task, group or `all` scope. */
  scopeHeld?: boolean;
}

/**
 * A guard's answer: `true` allows; `false` or a string (the reason) refuses with
 * `GUARD_REJECTED`; an object refuses with its own code.
 */
export type GuardVerdict =
  | boolean
  | string
  | {
      /** Error code of the rejection. */
      code: ErrorCode | string;
      /** Why the change is refused. */
      message: string;
    };

/** A named predicate over a transition. */
export type Guard = (ctx: GuardContext) => GuardVerdict;

/** A guard the host adds to every transition caused by some events. */
export interface HostGuard {
  /** Shown in the rejection and the audit trail. */
  name: string;
  /** The events it watches, e.g. `['rerun']`; `'*'` for every event a command or submit causes. */
  events: MachineEvent[] | '*';
  /** The predicate; anything but `true` rejects the change. */
  check: Guard;
}

/** The guards the table's rows name. */
export const BUILTIN_GUARDS: Readonly<Record<string, Guard>> = Object.freeze({
  attemptsLeft: ({ instance, task }) =>
    !instance || instance.attempt < (task?.maxAttempts ?? 1) || {
      code: 'GUARD_REJECTED',
      message: `instance ${instance.id} used all ${task?.maxAttempts ?? 1} attempts`,
    },
  scopeNotHeld: ({ instance, scopeHeld }) =>
    !scopeHeld || {
      code: 'SCOPE_HELD',
      message: `instance ${instance?.id} lies in a held scope; resume the task, group or all scope instead`,
    },
});

/** Events that commands and submits cause (as opposed to executors, timers and recovery). */
export const COMMAND_EVENTS: ReadonlySet<MachineEvent> = new Set<MachineEvent>([
  'submit', 'submit_pending', 'submit_held', 'pause', 'force_pause', 'resume', 'resume_pending',
  'skip', 'stop', 'force_stop', 'rerun', 'rerun_pending',
]);

/** The outcome of {@link StateMachine.apply}. */
export type ApplyOutcome =
  | {
      /** The change is allowed. */
      ok: true;
      /** The matching table row. */
      row: TransitionRow;
      /** The state the instance moves to. */
      to: InstanceState;
    }
  | {
      /** The change is refused. */
      ok: false;
      /** Error code of the refusal. */
      code: string;
      /** Why the change is refused. */
      message: string;
      /** The guard that refused it, if any. */
      guard?: string;
    };

const rowIndex = new Map<InstanceState | 'none', Map<MachineEvent, TransitionRow>>();
for (const row of TRANSITIONS) {
  let byEvent = rowIndex.get(row.from);
  if (!byEvent) rowIndex.set(row.from, (byEvent = new Map()));
  if (byEvent.has(row.event)) throw new Error(`TRANSITIONS has two rows for ${row.from} --${row.event}-->`);
  byEvent.set(row.event, row);
}

// an allowed change says the same every time: one frozen outcome per row, not one per call
const allowed = new Map<TransitionRow, ApplyOutcome>(TRANSITIONS.map((row) => [row, Object.freeze({ ok: true as const, row, to: row.to })]));

/** The row for `event` in state `from`, if the table has one. */
export function findTransition(from: InstanceState | 'none', event: MachineEvent): TransitionRow | undefined {
  return rowIndex.get(from)?.get(event);
}

function verdictToOutcome(verdict: GuardVerdict, guard: string): ApplyOutcome | undefined {
  if (verdict === true) return undefined;
  if (verdict === false) return { ok: false, code: 'GUARD_REJECTED', message: `guard ${guard} refused the change`, guard };
  if (typeof verdict === 'string') return { ok: false, code: 'GUARD_REJECTED', message: verdict, guard };
  return { ok: false, code: verdict.code, message: verdict.message, guard };
}

/**
 * The transition table plus its guards. `apply` is pure: it decides the next state
 * or refuses, and never touches a store.
 */
export class StateMachine {
  private readonly guards = new Map<string, Guard>(Object.entries(BUILTIN_GUARDS));
  private readonly hostGuards: HostGuard[] = [];

  /** Register a guard that a table row names, replacing a built-in one of the same name. */
  defineGuard(name: string, guard: Guard): void {
    this.guards.set(name, guard);
  }

  /** Add a host guard checked on every transition caused by its events. Returns a remover. */
  addGuard(guard: HostGuard): () => void {
    this.hostGuards.push(guard);
    return () => {
      const i = this.hostGuards.indexOf(guard);
      if (i >= 0) this.hostGuards.splice(i, 1);
    };
  }

  /**
   * The outcome of `event` from `from` when no guard can have a say (the row has none and
   * no host guard is registered): the hot path of a dispatcher, without building a guard
   * context. Undefined means "call {@link apply}", which also reports illegal changes.
   */
  allowed(from: InstanceState | 'none', event: MachineEvent): ApplyOutcome | undefined {
    if (this.hostGuards.length > 0) return undefined;
    const row = findTransition(from, event);
    return row === undefined || row.guard ? undefined : allowed.get(row);
  }

  /** Decide what `event` does to an instance in state `from`. */
  apply(event: MachineEvent, ctx: Omit<GuardContext, 'event' | 'to' | 'from'> & { from?: InstanceState | 'none' }): ApplyOutcome {
    const from = ctx.from ?? ctx.instance?.state ?? 'none';
    const row = findTransition(from, event);
    if (!row) {
      return {
        ok: false,
        code: 'ILLEGAL_TRANSITION',
        message: `${ctx.instance ? `instance ${ctx.instance.id}` : 'a new instance'} cannot go through '${event}' from '${from}'`,
      };
    }
    if (!row.guard && this.hostGuards.length === 0) return allowed.get(row)!;
    const full: GuardContext = { ...ctx, from, to: row.to, event };
    if (row.guard) {
      const guard = this.guards.get(row.guard);
      if (!guard) return { ok: false, code: 'GUARD_REJECTED', message: `guard ${row.guard} is not registered`, guard: row.guard };
      const refused = verdictToOutcome(guard(full), row.guard);
      if (refused) return refused;
    }
    for (const hostGuard of this.hostGuards) {
      if (hostGuard.events === '*' ? !COMMAND_EVENTS.has(event) : !hostGuard.events.includes(event)) continue;
      const refused = verdictToOutcome(hostGuard.check(full), hostGuard.name);
      if (refused) return refused;
    }
    return allowed.get(row)!;
  }

  /** Like {@link apply}, but throws a {@link TaskControlError} when the change is refused. */
  applyOrThrow(event: MachineEvent, ctx: Parameters<StateMachine['apply']>[1]): InstanceState {
    const outcome = this.apply(event, ctx);
    if (!outcome.ok) throw new TaskControlError(outcome.code as ErrorCode, outcome.message, { details: { guard: outcome.guard } });
    return outcome.to;
  }
}

import type { StateMachine } from '../machine/machine.js';
import type { MachineEvent } from '../machine/transitions.js';
import type { HeldScope } from '../store/state-store.js';
import type { ControlAction, Instance, InstanceState, TaskDefinition } from '../types.js';
import { isTerminal } from '../types.js';

// Pure planning of control commands: which event each instance gets, or why it gets none.
// No I/O here: the controller reads what is needed first and commits what this returns.

/** What the planner needs to know about the world, read before planning. */
export interface PlanContext {
  machine: StateMachine;
  tasks: ReadonlyMap<string, TaskDefinition>;
  scopes: ReadonlyMap<string, HeldScope>;
  now: Date;
  actor?: string;
  options: Record<string, unknown>;
  /** True when every upstream instance of `instance` (same logical date) succeeded or was skipped. */
  upstreamDone(instance: Instance): boolean;
  /** Whether the target names instances explicitly (then every instance is reported). */
  explicit: boolean;
  /** The last checkpoint a run in this process saved (kept by forced pauses and stops). */
  checkpointOf?: (instanceId: string) => unknown;
}

/** The plan for one instance. */
export type InstancePlan =
  | { kind: 'change'; instance: Instance; event: MachineEvent; to: InstanceState; patch: Partial<Instance> }
  | { kind: 'same'; instance: Instance }
  | { kind: 'reject'; instance: Instance; code: string; message: string }
  | { kind: 'skip'; instance: Instance };

/** States each action touches when its target is a task, group, backfill or `all`. */
export const SCOPE_STATES: Record<ControlAction, readonly InstanceState[]> = {
  pause: ['pending', 'queued', 'running', 'pausing', 'paused'],
  resume: ['paused'],
  stop: ['pending', 'queued', 'running', 'pausing', 'paused', 'stopping'],
  rerun: ['succeeded', 'failed', 'stopped', 'skipped'],
};

/** Scope ids that hold an instance: its task, its group, and `all`. */
export function scopeIdsOf(taskId: string, group: string | undefined): string[] {
  return group === undefined ? [`task:${taskId}`, 'all'] : [`task:${taskId}`, `group:${group}`, 'all'];
}

/** True when any scope in `scopes` holds the instance. */
export function isHeld(scopes: ReadonlyMap<string, HeldScope>, taskId: string, group: string | undefined): boolean {
  if (scopes.size === 0) return false;
  return scopeIdsOf(taskId, group).some((id) => scopes.has(id));
}

function illegal(instance: Instance, action: ControlAction): InstancePlan {
  return {
    kind: 'reject',
    instance,
    code: 'ILLEGAL_TRANSITION',
    message: `instance ${instance.id} is ${instance.state}; ${action} does not apply`,
  };
}

/** The checkpoint a local run saved, as a patch (empty when there is none). */
function saved(instance: Instance, ctx: PlanContext): Partial<Instance> {
  const checkpoint = ctx.checkpointOf?.(instance.id);
  return checkpoint === undefined ? {} : { checkpoint };
}

function decide(action: ControlAction, instance: Instance, ctx: PlanContext): { event: MachineEvent; patch: Partial<Instance> } | 'same' | 'illegal' {
  const o = ctx.options;
  const now = ctx.now.getTime();
  switch (action) {
    case 'pause': {
      const force = o.mode === 'force';
      switch (instance.state) {
        case 'pending':
        case 'queued':
          return { event: 'pause', patch: {} };
        case 'running':
          if (force) return { event: 'force_pause', patch: { lease: undefined, deadlineAt: undefined, ...saved(instance, ctx) } };
          return {
            event: 'pause',
            patch: { deadlineAt: typeof o.graceMs === 'number' ? new Date(now + o.graceMs).toISOString() : undefined },
          };
        case 'pausing':
          return force ? { event: 'force_pause', patch: { lease: undefined, deadlineAt: undefined, ...saved(instance, ctx) } } : 'same';
        case 'paused':
          return 'same';
        default:
          return 'illegal';
      }
    }
    case 'resume': {
      switch (instance.state) {
        case 'paused': {
          const params = o.params ? { ...instance.params, ...(o.params as Record<string, unknown>) } : instance.params;
          // an executor suspended in place keeps the lease; only `continue` wakes it up again
          if (o.strategy === 'skip') return { event: 'skip', patch: { params, endedAt: ctx.now.toISOString(), lease: undefined } };
          const patch: Partial<Instance> = { params };
          if (o.strategy === 'restart') {
            patch.checkpoint = undefined;
            patch.lease = undefined;
          }
          return { event: ctx.upstreamDone(instance) ? 'resume' : 'resume_pending', patch };
        }
        case 'pausing':
          return { event: 'resume', patch: { deadlineAt: undefined } };
        case 'pending':
        case 'queued':
        case 'running':
          return 'same';
        default:
          return 'illegal';
      }
    }
    case 'stop': {
      switch (instance.state) {
        case 'pending':
        case 'queued':
        case 'paused':
          return { event: 'stop', patch: { endedAt: ctx.now.toISOString(), deadlineAt: undefined, lease: undefined } };
        case 'running':
        case 'pausing':
          if (o.force) return { event: 'force_stop', patch: { lease: undefined, deadlineAt: undefined, endedAt: ctx.now.toISOString() } };
          return { event: 'stop', patch: { deadlineAt: new Date(now + ((o.graceMs as number | undefined) ?? 10_000)).toISOString() } };
        case 'stopping':
          return o.force ? { event: 'force_stop', patch: { lease: undefined, deadlineAt: undefined, endedAt: ctx.now.toISOString() } } : 'same';
        case 'stopped':
          return 'same';
        default:
          return 'illegal';
      }
    }
    case 'rerun': {
      if (!isTerminal(instance.state)) return 'illegal';
      const params = o.params ? { ...instance.params, ...(o.params as Record<string, unknown>) } : instance.params;
      return {
        event: ctx.upstreamDone(instance) ? 'rerun' : 'rerun_pending',
        patch: {
          params,
          attempt: instance.attempt + 1,
          error: undefined,
          result: undefined,
          checkpoint: undefined,
          retryAt: undefined,
          endedAt: undefined,
          progress: undefined,
        },
      };
    }
  }
}

/** Plan one instance for one action: the event to apply, or why nothing happens. */
export function planInstance(action: ControlAction, instance: Instance, ctx: PlanContext): InstancePlan {
  if (!ctx.explicit && !SCOPE_STATES[action].includes(instance.state)) return { kind: 'skip', instance };
  if (action === 'rerun' && ctx.options.onlyFailed && instance.state !== 'failed' && instance.state !== 'stopped') {
    return ctx.explicit
      ? { kind: 'reject', instance, code: 'GUARD_REJECTED', message: `onlyFailed: instance ${instance.id} is ${instance.state}` }
      : { kind: 'skip', instance };
  }
  const decision = decide(action, instance, ctx);
  if (decision === 'same') return { kind: 'same', instance };
  if (decision === 'illegal') return illegal(instance, action);
  const outcome = ctx.machine.apply(decision.event, {
    instance,
    task: ctx.tasks.get(instance.taskId),
    actor: ctx.actor,
    options: ctx.options,
    now: ctx.now,
    scopeHeld: isHeld(ctx.scopes, instance.taskId, instance.group),
  });
  if (!outcome.ok) return { kind: 'reject', instance, code: outcome.code, message: outcome.message };
  return { kind: 'change', instance, event: decision.event, to: outcome.to, patch: decision.patch };
}

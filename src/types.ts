/** The states an instance moves through. The last four are terminal. */
export type InstanceState =
  | 'pending'
  | 'queued'
  | 'running'
  | 'pausing'
  | 'paused'
  | 'stopping'
  | 'stopped'
  | 'succeeded'
  | 'failed'
  | 'skipped';

/** Every instance state, in lifecycle order. */
export const INSTANCE_STATES: readonly InstanceState[] = [
  'pending',
  'queued',
  'running',
  'pausing',
  'paused',
  'stopping',
  'stopped',
  'succeeded',
  'failed',
  'skipped',
];

/** States an instance never leaves except by a rerun. */
export const TERMINAL_STATES: readonly InstanceState[] = ['stopped', 'succeeded', 'failed', 'skipped'];

/** True for `stopped`, `succeeded`, `failed` and `skipped`. */
export function isTerminal(state: InstanceState): boolean {
  return state === 'stopped' || state === 'succeeded' || state === 'failed' || state === 'skipped';
}

/** The lease under which one controller runs an instance. */
export interface Lease {
  /** The controller that owns the running attempt. */
  owner: string;
  /** Fencing token: grows with every claim, so a stale owner's writes can be refused. */
  token: number;
  /** ISO time after which another controller may recover the instance. */
  expiresAt: string;
}

/** The last progress an executor reported. */
export interface Progress {
  /** Units of work finished so far. */
  done: number;
  /** Units of work in all, when the executor knows it. */
  total?: number;
}

/** One run of a task for one logical date (or an ad-hoc run). */
export interface Instance {
  /** ULID. */
  id: string;
  /** The task this instance runs. */
  taskId: string;
  /** The task's group, copied at submit time so that filters and scopes need no lookup. */
  group?: string;
  /** ISO 8601 with offset; at most one instance exists per (taskId, logicalDate). */
  logicalDate?: string;
  /** Parameters the executor receives (the task's `defaultParams` merged with the submitted ones). */
  params: Record<string, unknown>;
  /** The current state. */
  state: InstanceState;
  /** 1 on the first run, +1 per rerun or automatic retry. */
  attempt: number;
  /** Bumped on every change (optimistic concurrency). */
  version: number;
  /** Saved by the executor at a pause point, or with `ctx.saveCheckpoint()`. */
  checkpoint?: unknown;
  /** Why the last attempt failed, for a failed instance. */
  error?: {
    /** Error code. */
    code: string;
    /** Error message. */
    message: string;
  };
  /** What the executor resolved with, for a succeeded instance. */
  result?: unknown;
  /** The backfill that created the instance, if any. */
  backfillId?: string;
  /** Present while a controller runs the instance (running, pausing, stopping). */
  lease?: Lease;
  /** When a pausing/stopping instance is forced to paused/stopped (ISO). */
  deadlineAt?: string;
  /** When a failed instance is automatically retried (ISO). */
  retryAt?: string;
  /** When the current attempt last started running (ISO). */
  startedAt?: string;
  /** When the instance last reached a terminal state (ISO). */
  endedAt?: string;
  /** The last progress the executor reported. */
  progress?: Progress;
  /** When the instance was created (ISO). */
  createdAt: string;
  /** When the instance last changed (ISO). */
  updatedAt: string;
}

/** What a control command acts on. */
export type Target =
  | {
      /** One instance. */
      instanceId: string;
    }
  | {
      /** These instances. */
      instanceIds: string[];
    }
  | {
      /** Every instance of this task. */
      taskId: string;
    }
  | {
      /** Every instance of the tasks of this group. */
      group: string;
    }
  | {
      /** Every instance of this backfill. */
      backfillId: string;
    }
  | {
      /** Every instance. */
      all: true;
    };

/** The four control commands. */
export type ControlAction = 'pause' | 'resume' | 'stop' | 'rerun';

/** Every action `authorize` is asked about. */
export type AuthAction = 'submit' | ControlAction | 'backfill';

/** Options every control command takes. */
export interface CommandOptions {
  /** Who asks; recorded in the audit trail and passed to `authorize`. */
  actor?: string;
  /** Why; recorded in the audit trail. */
  reason?: string;
  /** A repeated command with the same key returns the first result and changes nothing. */
  idempotencyKey?: string;
  /** Return the result the command would produce, changing and auditing nothing. */
  dryRun?: boolean;
}

/** Options of {@link TaskController.pause}. */
export interface PauseOptions extends CommandOptions {
  /** `graceful` (default) waits for a pause point; `force` aborts the work at once. */
  mode?: 'graceful' | 'force';
  /** A graceful pause turns into a forced one after this many milliseconds. */
  graceMs?: number;
}

/** Options of {@link TaskController.resume}. */
export interface ResumeOptions extends CommandOptions {
  /** `continue` (default) hands the checkpoint back; `restart` drops it; `skip` ends the instance `skipped`. */
  strategy?: 'continue' | 'restart' | 'skip';
  /** Merged over the instance's params. */
  params?: Record<string, unknown>;
  /** Resume later, at this time (a Date or ISO string in the future): the call resolves `scheduled`. */
  at?: string | Date;
  /** Resume once every one of these instances has succeeded: the call resolves `scheduled`. */
  after?: {
    /** The instances to wait for. */
    instanceIds: string[];
  };
}

/** Options of {@link TaskController.stop}. */
export interface StopOptions extends CommandOptions {
  /** Skip the grace period: the instance is `stopped` at once and its work abandoned. */
  force?: boolean;
  /** How long a running executor may take to exit after its signal fires. @default 10000 */
  graceMs?: number;
}

/** Options of {@link TaskController.rerun}. */
export interface RerunOptions extends CommandOptions {
  /** Merged over the instance's params. */
  params?: Record<string, unknown>;
  /** Also rerun, for the same logical date, every instance of tasks that depend on it. */
  downstream?: boolean;
  /** With a multi-instance target: only `failed` and `stopped` instances. */
  onlyFailed?: boolean;
}

/** One instance a command changed (or found already in the wanted state). */
export interface AppliedChange {
  /** The instance. */
  instanceId: string;
  /** Its state before the command. */
  from: InstanceState;
  /** Its state after the command. */
  to: InstanceState;
  /** False when the instance already was where the command wanted it. */
  changed: boolean;
}

/** One instance a command could not change, and why. */
export interface RejectedChange {
  /** The instance. */
  instanceId: string;
  /** Machine-readable reason (an error code). */
  code: string;
  /** Human-readable reason. */
  message: string;
}

/** What every control command resolves to. */
export interface ControlResult {
  /** ULID. */
  commandId: string;
  /** The command that ran. */
  action: ControlAction;
  /** `completed` when applied now; `awaiting_approval` when held for an approver; `scheduled` for a deferred resume. */
  status: 'completed' | 'awaiting_approval' | 'scheduled';
  /** Instances the command changed or found already in the wanted state. */
  applied: AppliedChange[];
  /** Instances the command could not change. */
  rejected: RejectedChange[];
}

/** A cron or interval schedule in an IANA zone. */
export type Schedule =
  | {
      /** Cron expression. */
      cron: string;
      /** IANA time zone. */
      timezone?: string;
    }
  | {
      /** Interval, such as `15m` or `1h`. */
      every: string;
      /** IANA time zone. */
      timezone?: string;
    };

/** What {@link TaskController.define} takes. */
export interface TaskDefinition {
  /** Unique task id. */
  id: string;
  /** Optional group, for filters, scopes and bulk commands. */
  group?: string;
  /** When instances are created automatically. */
  schedule?: Schedule;
  /** Tasks whose instance of the same logical date must succeed (or be skipped) first. */
  dependsOn?: string[];
  /** Params every instance starts with; submitted params are merged over them. */
  defaultParams?: Record<string, unknown>;
  /** An attempt running longer than this fails with `TIMEOUT`. */
  timeoutMs?: number;
  /** Failed attempts are retried automatically until this many attempts ran. @default 1 */
  maxAttempts?: number;
  /** Delay before an automatic retry. @default 0 */
  retryDelayMs?: number;
  /** Hold the task's scope after this many consecutive failed instances. */
  pauseAfterFailures?: number;
}

/** One entry of the audit trail. */
export interface AuditEntry {
  /** ULID; entries sort by it. */
  id: string;
  /** When it was recorded (ISO). */
  at: string;
  /** Who acted (`system` for the controller itself). */
  actor: string;
  /** What was recorded. */
  kind: 'command' | 'transition' | 'late_result';
  /** The command or other action. */
  action?: string;
  /** The command this entry belongs to. */
  commandId?: string;
  /** The instance concerned. */
  instanceId?: string;
  /** The instance's task. */
  taskId?: string;
  /** The backfill concerned. */
  backfillId?: string;
  /** State before the transition. */
  from?: InstanceState | 'none';
  /** State after the transition. */
  to?: InstanceState;
  /** The transition-table event, for transitions. */
  event?: string;
  /** The attempt number, for transitions. */
  attempt?: number;
  /** Why, as given by the actor. */
  reason?: string;
  /** For commands: the ControlResult (or the denial); for late results: what the executor returned. */
  result?: unknown;
  /** For commands: what it targeted. */
  target?: Target;
  /** For commands: the instances it touched (applied or rejected). */
  instanceIds?: string[];
  /** For commands: the tasks its target named or its instances belong to. */
  taskIds?: string[];
  /** For commands: the backfills its target named or its instances belong to. */
  backfillIds?: string[];
}

/** Filters of {@link TaskController.audit}. */
export interface AuditFilter {
  /** Only entries about this instance. */
  instanceId?: string;
  /** Only entries of this command. */
  commandId?: string;
  /** Only entries by this actor. */
  actor?: string;
  /** Only entries with this action. */
  action?: string;
  /** Only entries about this task. */
  taskId?: string;
  /** Only entries about this backfill. */
  backfillId?: string;
  /** Only entries of this kind. */
  kind?: AuditEntry['kind'];
  /** Only entries at or after this time. */
  since?: string | Date;
  /** Only entries at or before this time. */
  until?: string | Date;
  /** Keep the newest `limit` matching entries (still returned oldest first). */
  limit?: number;
}

/** Filters of {@link TaskController.list}. */
export interface ListFilter {
  /** Only instances of this task. */
  taskId?: string;
  /** Only instances of this group. */
  group?: string;
  /** Only instances in this state (or any of these states). */
  state?: InstanceState | InstanceState[];
  /** Only instances of this backfill. */
  backfillId?: string;
  /** Page size. @default 100 */
  limit?: number;
  /** The `cursor` of the previous page. */
  cursor?: string;
}

/** One page of instances, oldest first. */
export interface Page<T> {
  /** The instances on this page. */
  items: T[];
  /** Pass it back to get the next page; absent on the last page. */
  cursor?: string;
}

/** What `authorize` is asked. */
export interface AuthRequest {
  /** What is asked for. */
  action: AuthAction;
  /** Who asks. */
  actor?: string;
  /** What a control command targets. */
  target?: Target;
  /** The task, for `submit` and `backfill`. */
  taskId?: string;
  /** The call's options. */
  options: object;
  /** The controller's environment. */
  environment?: string;
  /** Tasks named by the target or its instances. */
  tasks: string[];
  /** Groups named by the target or its instances. */
  groups: string[];
  /** Each instance's (or the targeted task's or group's) task and group, paired. */
  subjects?: {
    /** The task. */
    taskId?: string;
    /** The group. */
    group?: string;
  }[];
}

/** A `transition` event. */
export interface TransitionEvent {
  /** The instance. */
  instanceId: string;
  /** The instance's task. */
  taskId: string;
  /** State before. */
  from: InstanceState | 'none';
  /** State after. */
  to: InstanceState;
  /** The transition-table event. */
  event: string;
  /** When (ISO). */
  at: string;
  /** Who caused it. */
  actor?: string;
  /** The instance's attempt number. */
  attempt: number;
  /** The instance's backfill, if any. */
  backfillId?: string;
}

/** A `command` event. */
export type CommandEvent = ControlResult & {
  /** Who issued the command. */
  actor?: string;
};

/** The state of a backfill as one unit. */
export type BackfillState = 'planned' | 'running' | 'paused' | 'cancelled' | 'completed';

/** What `getBackfill` and `backfill` events report. */
export interface BackfillStatus {
  /** The backfill id. */
  id: string;
  /** The task being backfilled. */
  taskId: string;
  /** The backfill as one unit. */
  state: BackfillState;
  /** Slots in the range. */
  total: number;
  /** The backfill's existing instances per state. */
  counts: Record<InstanceState, number>;
}

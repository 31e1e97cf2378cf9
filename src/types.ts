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
  done: number;
  total?: number;
}

/** One run of a task for one logical date (or an ad-hoc run). */
export interface Instance {
  /** ULID. */
  id: string;
  taskId: string;
  /** The task's group, copied at submit time so that filters and scopes need no lookup. */
  group?: string;
  /** ISO 8601 with offset; at most one instance exists per (taskId, logicalDate). */
  logicalDate?: string;
  params: Record<string, unknown>;
  state: InstanceState;
  /** 1 on the first run, +1 per rerun or automatic retry. */
  attempt: number;
  /** Bumped on every change (optimistic concurrency). */
  version: number;
  /** Saved by the executor at a pause point, or with `ctx.saveCheckpoint()`. */
  checkpoint?: unknown;
  error?: { code: string; message: string };
  /** What the executor resolved with, for a succeeded instance. */
  result?: unknown;
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
  progress?: Progress;
  createdAt: string;
  updatedAt: string;
}

/** What a control command acts on. */
export type Target =
  | { instanceId: string }
  | { instanceIds: string[] }
  | { taskId: string }
  | { group: string }
  | { backfillId: string }
  | { all: true };

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
  after?: { instanceIds: string[] };
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
  instanceId: string;
  from: InstanceState;
  to: InstanceState;
  /** False when the instance already was where the command wanted it. */
  changed: boolean;
}

/** One instance a command could not change, and why. */
export interface RejectedChange {
  instanceId: string;
  code: string;
  message: string;
}

/** What every control command resolves to. */
export interface ControlResult {
  /** ULID. */
  commandId: string;
  action: ControlAction;
  status: 'completed' | 'awaiting_approval' | 'scheduled';
  applied: AppliedChange[];
  rejected: RejectedChange[];
}

/** A cron or interval schedule in an IANA zone. */
export type Schedule =
  | { cron: string; timezone?: string }
  | { every: string; timezone?: string };

/** What {@link TaskController.define} takes. */
export interface TaskDefinition {
  id: string;
  group?: string;
  schedule?: Schedule;
  /** Tasks whose instance of the same logical date must succeed (or be skipped) first. */
  dependsOn?: string[];
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
  at: string;
  actor: string;
  kind: 'command' | 'transition' | 'late_result';
  action?: string;
  commandId?: string;
  instanceId?: string;
  taskId?: string;
  backfillId?: string;
  from?: InstanceState | 'none';
  to?: InstanceState;
  /** The transition-table event, for transitions. */
  event?: string;
  attempt?: number;
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
  instanceId?: string;
  commandId?: string;
  actor?: string;
  action?: string;
  taskId?: string;
  backfillId?: string;
  kind?: AuditEntry['kind'];
  since?: string | Date;
  until?: string | Date;
  /** Keep the newest `limit` matching entries (still returned oldest first). */
  limit?: number;
}

/** Filters of {@link TaskController.list}. */
export interface ListFilter {
  taskId?: string;
  group?: string;
  state?: InstanceState | InstanceState[];
  backfillId?: string;
  /** Page size. @default 100 */
  limit?: number;
  /** The `cursor` of the previous page. */
  cursor?: string;
}

/** One page of instances, oldest first. */
export interface Page<T> {
  items: T[];
  /** Pass it back to get the next page; absent on the last page. */
  cursor?: string;
}

/** What `authorize` is asked. */
export interface AuthRequest {
  action: AuthAction;
  actor?: string;
  target?: Target;
  taskId?: string;
  options: object;
  /** The controller's environment. */
  environment?: string;
  /** Tasks named by the target or its instances. */
  tasks: string[];
  /** Groups named by the target or its instances. */
  groups: string[];
  /** Each instance's (or the targeted task's or group's) task and group, paired. */
  subjects?: { taskId?: string; group?: string }[];
}

/** A `transition` event. */
export interface TransitionEvent {
  instanceId: string;
  taskId: string;
  from: InstanceState | 'none';
  to: InstanceState;
  event: string;
  at: string;
  actor?: string;
  attempt: number;
  backfillId?: string;
}

/** A `command` event. */
export type CommandEvent = ControlResult & { actor?: string };

/** The state of a backfill as one unit. */
export type BackfillState = 'planned' | 'running' | 'paused' | 'cancelled' | 'completed';

/** What `getBackfill` and `backfill` events report. */
export interface BackfillStatus {
  id: string;
  taskId: string;
  state: BackfillState;
  /** Slots in the range. */
  total: number;
  /** The backfill's existing instances per state. */
  counts: Record<InstanceState, number>;
}

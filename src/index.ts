// Public surface of `taskctl`: what shared/API.md names, plus the types around it.
export { TaskController, normalizeLogicalDate } from './controller/controller.js';
export type {
  TaskControllerOptions,
  SubmitOptions,
  WaitForOptions,
  ControllerEvents,
  ProgressEvent,
  LateResultEvent,
} from './controller/controller.js';
export { AbortReason } from './controller/runtime.js';
export { TaskControlError, isTaskControlError } from './errors.js';
export type { ErrorCode, ValidationIssue } from './errors.js';
export { TRANSITIONS } from './machine/transitions.js';
export type { TransitionRow, MachineEvent } from './machine/transitions.js';
export { StateMachine, BUILTIN_GUARDS, COMMAND_EVENTS, findTransition } from './machine/machine.js';
export type { Guard, GuardContext, GuardVerdict, HostGuard, ApplyOutcome } from './machine/machine.js';
export { MemoryStateStore } from './store/memory-store.js';
export type {
  StateStore,
  StoreNotice,
  CommitBatch,
  VersionedWrite,
  InstanceQuery,
  QueuedQuery,
  ClaimQueuedQuery,
  AuditQuery,
  HeldScope,
  CommandRecord,
  BackfillRecord,
} from './store/state-store.js';
export { FunctionExecutor, PauseUnwind } from './execution/executor.js';
export type { Executor, ExecutionContext, TaskHandler } from './execution/executor.js';
export { ChildProcessExecutor, ChildProcessError } from './execution/child-process-executor.js';
export type { ChildProcessTaskOptions, ChildProcessDefaults, ChildProcessResult, ChildProcessErrorCode, ChildOutputLine, ChildPauseMode, ChildStopSignal, CheckpointPassing } from './execution/child-process-executor.js';
export type { TimerHost } from './clock.js';
export { INSTANCE_STATES, TERMINAL_STATES, isTerminal } from './types.js';
export type * from './types.js';
export { formatTimeline } from './format/timeline.js';
export type { TimelineOptions } from './format/timeline.js';
export { toMermaid } from './format/mermaid.js';
export type { MermaidOptions } from './format/mermaid.js';
export type { BackfillOptions, BackfillHandle, BackfillPlan } from './controller/controller.js';
export { BackfillPlanner } from './backfill/planner.js';
export type { Slot, BackfillPlannerOptions, BackfillOrder, DateInput } from './backfill/planner.js';
export type { ApprovalRequest, HoldWhileOptions } from './controller/controller.js';
export { rbac } from './governance/rbac.js';
export type { RbacPolicy, Rule, AuthSubject } from './governance/rbac.js';
export type { MetricsSnapshot, CommandMetrics, CommandDone } from './governance/metrics.js';
export { backfillGantt } from './format/gantt.js';
export type { GanttOptions } from './format/gantt.js';

import type { InstanceState } from '../types.js';

/** One legal change of an instance: in state `from`, `event` moves it to `to` if `guard` allows. */
export interface TransitionRow {
  /** The state before; `none` for the creation of an instance. */
  from: InstanceState | 'none';
  /** What happened: a command, an executor outcome, a timer. */
  event: MachineEvent;
  /** The state after. */
  to: InstanceState;
  /** Name of a guard that must allow the change (see {@link BUILTIN_GUARDS}). */
  guard?: string;
}

/** Every event the transition table knows. */
export type MachineEvent =
  | 'submit' //            created ready to run
  | 'submit_pending' //    created waiting for upstream instances
  | 'submit_held' //       created inside a held scope
  | 'ready' //             upstream instances succeeded
  | 'upstream_failed' //   an upstream instance failed for good or was stopped
  | 'start' //             a controller claimed it
  | 'succeed' //           the executor resolved
  | 'fail' //              the executor threw
  | 'timeout' //           the task's timeoutMs passed
  | 'pause' //             graceful pause
  | 'force_pause' //       forced pause, or a graceful pause whose graceMs passed
  | 'pause_point' //       the executor unwound at a pause point
  | 'resume' //            paused -> queued
  | 'resume_pending' //    paused -> pending (upstream not done)
  | 'skip' //              resume with strategy 'skip'
  | 'stop' //              graceful stop
  | 'force_stop' //        stop without grace
  | 'exited' //            the executor returned after a stop
  | 'abandon' //           a stop's graceMs passed
  | 'rerun' //             a new attempt of a terminal instance
  | 'rerun_pending' //     a new attempt that waits for upstream reruns
  | 'retry' //             automatic retry of a failed attempt
  | 'requeue' //           a controller died while running it
  | 'release' //           a controller shut down while running it (not counted against maxAttempts)
  | 'recover_fail' //      ... and it had no attempts left
  | 'recover'; //          a dead owner's pausing/stopping instance finished

const RUNNING_LIKE = ['running', 'pausing'] as const;
const TERMINAL = ['succeeded', 'failed', 'stopped', 'skipped'] as const;

/**
 * The transition table: every legal change of an instance, and nothing else.
 * Every state change in taskctl is looked up here; a change not in the table fails
 * with `ILLEGAL_TRANSITION` and changes nothing.
 */
export const TRANSITIONS: readonly TransitionRow[] = Object.freeze([
  { from: 'none', event: 'submit', to: 'queued' },
  { from: 'none', event: 'submit_pending', to: 'pending' },
  { from: 'none', event: 'submit_held', to: 'paused' },
  { from: 'pending', event: 'ready', to: 'queued' },
  { from: 'pending', event: 'upstream_failed', to: 'stopped' },
  { from: 'queued', event: 'start', to: 'running' },

  ...RUNNING_LIKE.flatMap((from) => [
    { from, event: 'succeed', to: 'succeeded' } as const,
    { from, event: 'fail', to: 'failed' } as const,
    { from, event: 'timeout', to: 'failed' } as const,
    { from, event: 'force_pause', to: 'paused' } as const,
    { from, event: 'stop', to: 'stopping' } as const,
    { from, event: 'force_stop', to: 'stopped' } as const,
  ]),
  // recovery and shutdown: a pausing instance is paused (`recover`), only a running one is requeued
  { from: 'running', event: 'requeue', to: 'queued', guard: 'attemptsLeft' },
  { from: 'running', event: 'recover_fail', to: 'failed' },
  { from: 'pending', event: 'pause', to: 'paused' },
  { from: 'queued', event: 'pause', to: 'paused' },
  { from: 'running', event: 'pause', to: 'pausing' },
  { from: 'pausing', event: 'pause_point', to: 'paused' },
  { from: 'running', event: 'release', to: 'queued' },
  // the pause was withdrawn (resume) after the executor had unwound: dispatch it again
  { from: 'running', event: 'pause_point', to: 'queued' },
  { from: 'pausing', event: 'resume', to: 'running' },
  { from: 'pausing', event: 'recover', to: 'paused' },

  { from: 'paused', event: 'resume', to: 'queued', guard: 'scopeNotHeld' },
  { from: 'paused', event: 'resume_pending', to: 'pending', guard: 'scopeNotHeld' },
  { from: 'paused', event: 'skip', to: 'skipped' },

  { from: 'pending', event: 'stop', to: 'stopped' },
  { from: 'queued', event: 'stop', to: 'stopped' },
  { from: 'paused', event: 'stop', to: 'stopped' },
  { from: 'stopping', event: 'force_stop', to: 'stopped' },
  { from: 'stopping', event: 'exited', to: 'stopped' },
  { from: 'stopping', event: 'abandon', to: 'stopped' },
  { from: 'stopping', event: 'recover', to: 'stopped' },

  ...TERMINAL.flatMap((from) => [
    { from, event: 'rerun', to: 'queued' } as const,
    { from, event: 'rerun_pending', to: 'pending' } as const,
  ]),
  { from: 'failed', event: 'retry', to: 'queued', guard: 'attemptsLeft' },
] satisfies TransitionRow[]);

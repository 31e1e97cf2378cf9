import { INSTANCE_STATES, type InstanceState } from '../types.js';

/** Figures about one kind of command. */
export interface CommandMetrics {
  /** Every call, denied ones included. */
  total: number;
  /** Commands with at least one applied entry (dry runs not included; an approved or scheduled command when it applies). */
  applied: number;
  /** Commands with at least one rejected entry (dry runs not included). */
  rejected: number;
  /** Calls denied by `authorize` (`FORBIDDEN`). */
  denied: number;
  /** Requests of this action still waiting for approval. */
  awaitingApproval: number;
  /** How long calls took, over the most recent 1024. */
  latencyMs: {
    /** Median, in milliseconds. */
    p50: number;
    /** 95th percentile, in milliseconds. */
    p95: number;
    /** 99th percentile, in milliseconds. */
    p99: number;
  };
}

/** What {@link TaskController.metrics} returns. */
export interface MetricsSnapshot {
  /** Per-action command counters, keyed by action. */
  commands: Record<string, CommandMetrics>;
  /** Control commands being processed right now. */
  inFlightCommands: number;
  /** Instances per state, in the whole store. */
  instances: Record<InstanceState, number>;
  /** Instances queued and dispatchable by this controller (not held). */
  queueLength: number;
  /** Instances running in this controller. */
  running: number;
  /** Transitions this controller has observed since it was created. */
  transitions: number;
}

/** The outcome of one command call, as the `command_done` event reports it. */
export interface CommandDone {
  /** The command's action. */
  action: string;
  /** Who issued it. */
  actor?: string;
  /** Milliseconds from the call to its result. */
  durationMs: number;
  /** How the call ended. */
  outcome: 'completed' | 'awaiting_approval' | 'scheduled' | 'denied' | 'invalid' | 'error' | 'dry_run';
  /** Entries in the result's `applied` (those with `changed: false` included). */
  applied: number;
  /** Entries in the result's `rejected`. */
  rejected: number;
  /** True when this applies an approved or scheduled command: the request was the call. */
  deferred?: boolean;
  /** The command id, when one was assigned. */
  commandId?: string;
  /** The error, for `denied`, `invalid` and `error` outcomes. */
  error?: {
    /** Error code. */
    code: string;
    /** Error message. */
    message: string;
  };
}

const WINDOW = 1024;

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Counts commands and transitions as they happen; cheap enough to keep on always. */
export class MetricsRecorder {
  private readonly byAction = new Map<string, { total: number; applied: number; rejected: number; denied: number; lat: number[]; next: number }>();
  inFlight = 0;
  transitions = 0;

  record(done: CommandDone): void {
    let m = this.byAction.get(done.action);
    if (!m) this.byAction.set(done.action, (m = { total: 0, applied: 0, rejected: 0, denied: 0, lat: [], next: 0 }));
    // a dry run changed nothing: a call, but neither applied nor rejected
    if (done.outcome !== 'dry_run') {
      if (done.applied > 0) m.applied++;
      if (done.rejected > 0) m.rejected++;
    }
    // applying an approved or scheduled command is no new call: its request was counted
    if (done.deferred) return;
    m.total++;
    if (done.outcome === 'denied') m.denied++;
    if (m.lat.length < WINDOW) m.lat.push(done.durationMs);
    else m.lat[m.next++ % WINDOW] = done.durationMs;
  }

  commands(awaiting: Record<string, number>): Record<string, CommandMetrics> {
    const out: Record<string, CommandMetrics> = {};
    const actions = new Set([...this.byAction.keys(), ...Object.keys(awaiting)]);
    for (const action of actions) {
      const m = this.byAction.get(action) ?? { total: 0, applied: 0, rejected: 0, denied: 0, lat: [], next: 0 };
      const sorted = [...m.lat].sort((a, b) => a - b);
      out[action] = {
        total: m.total,
        applied: m.applied,
        rejected: m.rejected,
        denied: m.denied,
        awaitingApproval: awaiting[action] ?? 0,
        latencyMs: { p50: pct(sorted, 50), p95: pct(sorted, 95), p99: pct(sorted, 99) },
      };
    }
    return out;
  }
}

export function zeroCounts(): Record<InstanceState, number> {
  return Object.fromEntries(INSTANCE_STATES.map((s) => [s, 0])) as Record<InstanceState, number>;
}

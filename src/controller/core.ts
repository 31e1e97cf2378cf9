import { randomFillSync } from 'node:crypto';
import { incrementBase32, ulid } from 'ulid';
import type { TimerHost } from '../clock.js';
import type { StateMachine } from '../machine/machine.js';
import type { MachineEvent } from '../machine/transitions.js';
import type { StateStore, VersionedWrite } from '../store/state-store.js';
import type { AuditEntry, Instance, InstanceState, TaskDefinition } from '../types.js';

/** The parts of a controller its runtime and command code share. Internal. */
export interface Core {
  readonly id: string;
  readonly store: StateStore;
  readonly machine: StateMachine;
  readonly tasks: Map<string, TaskDefinition>;
  readonly timers: TimerHost;
  readonly leaseMs: number;
  /** A new ULID; `ms` is the time to stamp it with when the caller has just read the clock. */
  newId(ms?: number): string;
  now(): Date;
  /** `now().getTime()`, without a Date when the clock is the timers' own. */
  nowMs(): number;
  /** `new Date(ms).toISOString()`, cached per millisecond. */
  iso(ms: number): string;
}

/** Who caused a transition, for its audit entry. */
export interface TransitionMeta {
  actor: string;
  commandId?: string;
  action?: string;
  reason?: string;
}

// ulid asks its PRNG once per character; drawing those bytes from a pool filled by one
// crypto call keeps ids cryptographically random at a fraction of the cost.
const pool = new Uint8Array(4096);
let poolAt = pool.length;
function pooledRandom(): number {
  if (poolAt >= pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  return pool[poolAt++] / 256;
}

const ENCODING = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** Every pair of Crockford base32 digits, in order: the last two characters of an id. */
const PAIRS: string[] = Array.from({ length: 1024 }, (_, i) => ENCODING[i >> 5] + ENCODING[i & 31]);
const PAIR_INDEX = new Map(PAIRS.map((pair, i) => [pair, i]));

/**
 * A ULID source on the controller's clock, monotonic so that ids sort in creation order.
 * The first id of each millisecond comes from `ulid`; the next ones in that millisecond (or
 * while the clock stands still or goes back) add one to the random part, as ulid's own
 * monotonic factory does, but by looking up the last two characters in a table instead of
 * rebuilding the whole string: hundreds of ids per millisecond on the hot path.
 */
export function idFactory(now: () => number): (ms?: number) => string {
  let lastTime = -1;
  let head = ''; // the first 24 characters of the last id
  let tail = 0; // the index in PAIRS of its last two characters
  return (ms) => {
    const time = ms ?? now();
    if (time > lastTime) {
      const id = ulid(time, pooledRandom);
      lastTime = time;
      head = id.slice(0, 24);
      tail = PAIR_INDEX.get(id.slice(24))!;
      return id;
    }
    if (++tail === PAIRS.length) {
      tail = 0;
      head = head.slice(0, 10) + incrementBase32(head.slice(10));
    }
    return head + PAIRS[tail];
  };
}

/**
 * `new Date(ms).toISOString()`, remembering the last answer: the transitions of one
 * millisecond (dozens of them on a busy controller) share one string.
 */
export function isoCache(): (ms: number) => string {
  let lastMs = NaN;
  let last = '';
  return (ms) => {
    if (ms !== lastMs) {
      last = new Date(ms).toISOString();
      lastMs = ms;
    }
    return last;
  };
}

/**
 * Build the write and the audit entry of one transition. The caller has already checked
 * it against the table; this only shapes the data, so that every change looks alike.
 */
export function buildTransition(
  core: Core,
  instance: Instance | undefined,
  next: Instance,
  event: MachineEvent,
  meta: TransitionMeta,
  ms?: number,
): { write: VersionedWrite<Instance>; entry: AuditEntry } {
  const at = next.updatedAt;
  const from: InstanceState | 'none' = instance?.state ?? 'none';
  const entry: AuditEntry = {
    id: core.newId(ms),
    at,
    actor: meta.actor,
    kind: 'transition',
    instanceId: next.id,
    taskId: next.taskId,
    from,
    to: next.state,
    event,
    attempt: next.attempt,
  };
  if (next.backfillId !== undefined) entry.backfillId = next.backfillId;
  if (meta.commandId !== undefined) entry.commandId = meta.commandId;
  if (meta.action !== undefined) entry.action = meta.action;
  if (meta.reason !== undefined) entry.reason = meta.reason;
  return { write: { next, expectedVersion: instance?.version ?? 0 }, entry };
}

/** The optional fields transitions set and clear; {@link advance} rebuilds them in this order. */
const TRANSIENT = new Set<string>(['lease', 'deadlineAt', 'retryAt', 'error', 'endedAt', 'startedAt', 'progress', 'checkpoint', 'result']);

/**
 * The instance after a transition: new state, bumped version, the patch applied (a patch
 * value of undefined clears that field).
 *
 * Records stay free of explicit undefined fields (so every store serialises them alike) and
 * out of V8's slow dictionary mode: the fields transitions change are taken out with one
 * object rest (a fast copy of the others), then put back in a fixed order, so that every
 * instance has one of a few shapes.
 */
export function advance(instance: Instance, to: InstanceState, patch: Partial<Instance>, at: string): Instance {
  const { lease, deadlineAt, retryAt, error, endedAt, startedAt, progress, checkpoint, result, ...rest } = instance;
  const next = rest as Instance;
  next.state = to;
  next.version = instance.version + 1;
  next.updatedAt = at;
  for (const key in patch) {
    if (TRANSIENT.has(key)) continue;
    const value = patch[key as keyof Instance];
    if (value !== undefined) (next as unknown as Record<string, unknown>)[key] = value;
    // no transition clears these today; if one ever does, correctness beats speed
    else delete (next as unknown as Record<string, unknown>)[key];
  }
  const v = 'lease' in patch ? patch.lease : lease;
  if (v !== undefined) next.lease = v;
  const d = 'deadlineAt' in patch ? patch.deadlineAt : deadlineAt;
  if (d !== undefined) next.deadlineAt = d;
  const r = 'retryAt' in patch ? patch.retryAt : retryAt;
  if (r !== undefined) next.retryAt = r;
  const e = 'error' in patch ? patch.error : error;
  if (e !== undefined) next.error = e;
  const s = 'startedAt' in patch ? patch.startedAt : startedAt;
  if (s !== undefined) next.startedAt = s;
  const ended = 'endedAt' in patch ? patch.endedAt : endedAt;
  if (ended !== undefined) next.endedAt = ended;
  const p = 'progress' in patch ? patch.progress : progress;
  if (p !== undefined) next.progress = p;
  const c = 'checkpoint' in patch ? patch.checkpoint : checkpoint;
  if (c !== undefined) next.checkpoint = c;
  const res = 'result' in patch ? patch.result : result;
  if (res !== undefined) next.result = res;
  return next;
}

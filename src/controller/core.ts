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
  newId(): string;
  now(): Date;
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
export function idFactory(now: () => number): () => string {
  let lastTime = -1;
  let head = ''; // the first 24 characters of the last id
  let tail = 0; // the index in PAIRS of its last two characters
  return () => {
    const time = now();
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
): { write: VersionedWrite<Instance>; entry: AuditEntry } {
  const at = next.updatedAt;
  const from: InstanceState | 'none' = instance?.state ?? 'none';
  const entry: AuditEntry = {
    id: core.newId(),
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

/** The instance after a transition: new state, bumped version, the patch applied. */
export function advance(instance: Instance, to: InstanceState, patch: Partial<Instance>, at: string): Instance {
  // Copy field by field rather than spread-and-delete: records stay free of explicit
  // undefined fields (so every store serialises them alike) and out of V8's slow dictionary mode.
  const next = { ...instance } as Record<string, unknown>;
  let drop = false;
  for (const key in patch) {
    const value = patch[key as keyof Instance];
    if (value === undefined) drop ||= key in next;
    else next[key] = value;
  }
  next.state = to;
  next.version = instance.version + 1;
  next.updatedAt = at;
  if (!drop) return next as unknown as Instance;
  const clean: Record<string, unknown> = {};
  for (const key in next) {
    if (next[key] !== undefined && !(key in patch && patch[key as keyof Instance] === undefined)) clean[key] = next[key];
  }
  return clean as unknown as Instance;
}

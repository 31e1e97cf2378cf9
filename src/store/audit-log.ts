import { INSTANCE_STATES, type AuditEntry, type InstanceState } from '../types.js';

/** What an entry's `from` and `to` can be, by code. */
const STATES: readonly (InstanceState | 'none')[] = ['none', ...INSTANCE_STATES];
/** State -> its index in STATES. */
const STATE_CODE: Readonly<Record<string, number>> = Object.freeze(Object.fromEntries(STATES.map((state, i) => [state, i])));

/** Entries per chunk of the columns: chunks are added, never copied. */
const CHUNK = 1 << 14;

/** The columns of {@link CHUNK} entries. */
class Chunk {
  /** 1 for an entry kept in columns, 0 for one kept whole. */
  readonly kept = new Uint8Array(CHUNK);
  readonly time = new Int32Array(CHUNK);
  readonly actor = new Int32Array(CHUNK);
  readonly task = new Int32Array(CHUNK);
  readonly event = new Int32Array(CHUNK);
  readonly instance = new Int32Array(CHUNK);
  readonly attempt = new Int32Array(CHUNK);
  /** from and to, as indexes into STATES. */
  readonly states = new Uint8Array(2 * CHUNK);
}

/** Strings that repeat (actors, task ids, events, timestamps), each kept once and named by a number. */
class Interned {
  readonly values: string[] = [];
  private readonly index: Map<string, number> | undefined;
  private last = '';
  private lastIndex = -1;

  /** `dedupe` false: only runs of one value share a number (timestamps, which only grow). */
  constructor(dedupe = true) {
    this.index = dedupe ? new Map() : undefined;
  }

  of(value: string): number {
    // runs of entries share their actor, task and millisecond: compare with the last one first
    if (value === this.last && this.lastIndex >= 0) return this.lastIndex;
    if (this.index === undefined) {
      this.last = value;
      return (this.lastIndex = this.values.push(value) - 1);
    }
    let i = this.index.get(value);
    if (i === undefined) {
      i = this.values.push(value) - 1;
      this.index.set(value, i);
    }
    this.last = value;
    this.lastIndex = i;
    return i;
  }
}

/**
 * The memory store's audit trail, kept in columns.
 *
 * Nearly every entry is a plain transition (`id, at, actor, kind, instanceId, taskId, from,
 * to, event, attempt` and nothing else). Such an entry is kept as its id plus numbers in
 * typed arrays: the strings it repeats (time, actor, task, event) as indexes into tables of
 * distinct strings, its states as small codes, its instance as the store's number for it.
 * A retained entry is then no object for the garbage collector to copy or mark (only its
 * id string), which is most of what a busy store would otherwise spend on it. An entry
 * object is built again, with the same fields in the same order, when a query returns it.
 * Any other entry (commands, late results, transitions with a command id, a reason or a
 * backfill, or whose instance the caller did not name) is kept as the object it was
 * committed as.
 */
export class AuditLog {
  private size = 0;
  /** The ids of the entries. */
  private readonly ids: string[] = [];
  private readonly chunks: Chunk[] = [];
  private readonly times = new Interned(false);
  private readonly actors = new Interned();
  private readonly tasks = new Interned();
  private readonly events = new Interned();
  private readonly whole = new Map<number, AuditEntry>();

  constructor(
    /** The instance id of the store's number for an instance. */
    private readonly instanceId: (n: number) => string,
  ) {}

  get length(): number {
    return this.size;
  }

  /**
   * Append an entry; returns its index. `instance` is the store's number for the entry's
   * instance when the caller knows it (else the entry is kept whole).
   */
  push(entry: AuditEntry, instance: number): number {
    const i = this.size++;
    const c = i % CHUNK === 0 ? this.chunks[this.chunks.push(new Chunk()) - 1] : this.chunks[(i / CHUNK) | 0];
    const k = i % CHUNK;
    this.ids.push(entry.id);
    const from = entry.from === undefined ? undefined : STATE_CODE[entry.from];
    const to = entry.to === undefined ? undefined : STATE_CODE[entry.to];
    if (instance < 0 || from === undefined || to === undefined || !isPlainTransition(entry)) {
      c.kept[k] = 0;
      this.whole.set(i, entry);
      return i;
    }
    c.kept[k] = 1;
    c.time[k] = this.times.of(entry.at);
    c.actor[k] = this.actors.of(entry.actor);
    c.task[k] = this.tasks.of(entry.taskId!);
    c.event[k] = this.events.of(entry.event!);
    c.instance[k] = instance;
    c.attempt[k] = entry.attempt!;
    c.states[2 * k] = from;
    c.states[2 * k + 1] = to;
    return i;
  }

  /** The id of entry `i`. */
  id(i: number): string {
    return this.ids[i];
  }

  /** The time of entry `i` (ISO). */
  at(i: number): string {
    const c = this.chunks[(i / CHUNK) | 0];
    const k = i % CHUNK;
    return c.kept[k] === 0 ? this.whole.get(i)!.at : this.times.values[c.time[k]];
  }

  /** Entry `i`, as it was committed. */
  get(i: number): AuditEntry {
    const c = this.chunks[(i / CHUNK) | 0];
    const k = i % CHUNK;
    if (c.kept[k] === 0) return this.whole.get(i)!;
    return {
      id: this.ids[i],
      at: this.times.values[c.time[k]],
      actor: this.actors.values[c.actor[k]],
      kind: 'transition',
      instanceId: this.instanceId(c.instance[k]),
      taskId: this.tasks.values[c.task[k]],
      from: STATES[c.states[2 * k]],
      to: STATES[c.states[2 * k + 1]] as InstanceState,
      event: this.events.values[c.event[k]],
      attempt: c.attempt[k],
    };
  }
}

/**
 * A transition entry with exactly the fields the columns keep, checked field by field
 * against the optional fields of {@link AuditEntry}: an entry with any other is kept whole.
 */
function isPlainTransition(e: AuditEntry): boolean {
  return (
    e.kind === 'transition' &&
    e.instanceId !== undefined &&
    e.taskId !== undefined &&
    e.event !== undefined &&
    Number.isInteger(e.attempt) &&
    (e.attempt as number) >= 0 &&
    (e.attempt as number) <= 0x7fffffff &&
    e.action === undefined &&
    e.commandId === undefined &&
    e.backfillId === undefined &&
    e.reason === undefined &&
    e.result === undefined &&
    e.target === undefined &&
    e.instanceIds === undefined &&
    e.taskIds === undefined &&
    e.backfillIds === undefined
  );
}

import type { AuditEntry, InstanceState } from '../types.js';

const STATES: (InstanceState | 'none')[] = ['none', 'pending', 'queued', 'running', 'pausing', 'paused', 'stopping', 'stopped', 'succeeded', 'failed', 'skipped'];

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
  /** 1 for an entry kept in columns, 0 for one kept whole. */
  private kept = new Uint8Array(4096);
  private time = new Int32Array(4096);
  private actor = new Int32Array(4096);
  private task = new Int32Array(4096);
  private event = new Int32Array(4096);
  private instance = new Int32Array(4096);
  private attempt = new Int32Array(4096);
  /** from and to, as indexes into STATES. */
  private states = new Uint8Array(8192);
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
    const i = this.size;
    if (i === this.kept.length) this.grow();
    this.size++;
    this.ids.push(entry.id);
    const from = entry.from === undefined ? -1 : STATES.indexOf(entry.from);
    const to = entry.to === undefined ? -1 : STATES.indexOf(entry.to);
    if (instance < 0 || from < 0 || to < 0 || !isPlainTransition(entry)) {
      this.kept[i] = 0;
      this.whole.set(i, entry);
      return i;
    }
    this.kept[i] = 1;
    this.time[i] = this.times.of(entry.at);
    this.actor[i] = this.actors.of(entry.actor);
    this.task[i] = this.tasks.of(entry.taskId!);
    this.event[i] = this.events.of(entry.event!);
    this.instance[i] = instance;
    this.attempt[i] = entry.attempt!;
    this.states[2 * i] = from;
    this.states[2 * i + 1] = to;
    return i;
  }

  private grow(): void {
    const double = <T extends Int32Array | Int16Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(a.length * 2);
      b.set(a);
      return b;
    };
    this.kept = double(this.kept, (n) => new Uint8Array(n));
    this.time = double(this.time, (n) => new Int32Array(n));
    this.actor = double(this.actor, (n) => new Int32Array(n));
    this.task = double(this.task, (n) => new Int32Array(n));
    this.event = double(this.event, (n) => new Int32Array(n));
    this.instance = double(this.instance, (n) => new Int32Array(n));
    this.attempt = double(this.attempt, (n) => new Int32Array(n));
    this.states = double(this.states, (n) => new Uint8Array(n));
  }

  /** The id of entry `i`. */
  id(i: number): string {
    return this.ids[i];
  }

  /** The time of entry `i` (ISO). */
  at(i: number): string {
    return this.kept[i] === 0 ? this.whole.get(i)!.at : this.times.values[this.time[i]];
  }

  /** Entry `i`, as it was committed. */
  get(i: number): AuditEntry {
    if (this.kept[i] === 0) return this.whole.get(i)!;
    return {
      id: this.ids[i],
      at: this.times.values[this.time[i]],
      actor: this.actors.values[this.actor[i]],
      kind: 'transition',
      instanceId: this.instanceId(this.instance[i]),
      taskId: this.tasks.values[this.task[i]],
      from: STATES[this.states[2 * i]],
      to: STATES[this.states[2 * i + 1]] as InstanceState,
      event: this.events.values[this.event[i]],
      attempt: this.attempt[i],
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

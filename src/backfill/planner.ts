/**
 * The backfill planner: which logical dates a schedule has between two instants.
 *
 * Pure and fast: the cron fields are expanded once (see `schedule.ts`), the planner walks local
 * calendar days and turns local wall times into instants with zone offsets found once per
 * 32 days of the range (and cached per zone). Only the few hours around a clock change are
 * worked out slot by slot.
 *
 * @module
 */
import { DateTime } from 'luxon';
import { z } from 'zod';
import type { ValidationIssue } from '../errors.js';
import type { Schedule } from '../types.js';
import {
  checkSchedule,
  daysFromCivil,
  daysInMonth,
  scheduleSchema,
  throwValidation,
  canonicalZone,
  DEFAULT_TIMEZONE,
  type ParsedCronSchedule,
  type ParsedIntervalSchedule,
  type ParsedSchedule,
} from './schedule.js';

// ---------------------------------------------------------------------------------------------
// Public types

/**
 * One logical date of a backfill.
 *
 * Dates are ISO 8601 strings in the schedule's zone, always in the same shape:
 * `YYYY-MM-DDTHH:mm:ss.SSS±HH:MM`, with `Z` when the zone's offset is zero at that instant
 * (exactly luxon's `toISO()` of the instant in that offset, so a string re-parsed with
 * `DateTime.fromISO(s, { setZone: true }).toISO()` is unchanged). Examples:
 * `2023-03-26T03:00:00.000+02:00`, `2023-01-01T00:00:00.000Z`, `2023-04-02T02:00:00.000+10:30`.
 * Years outside 0000-9999 are written `±YYYYYY`; an offset with seconds (local mean time,
 * before time zones were standardised) is written `±HH:MM:SS`.
 */
export interface Slot {
  /** 0-based position in run order (ascending dates for `order: 'asc'`, descending for `'desc'`). */
  index: number;
  /** The slot's instant, in the schedule's zone. */
  logicalDate: string;
  /** The schedule's next occurrence after `logicalDate` (same format), even when it lies after `to`. */
  intervalEnd: string;
}

/** The order slots are produced (and run) in. */
export type BackfillOrder = 'asc' | 'desc';

/**
 * An instant given to the planner: an ISO 8601 string, a `Date` or a luxon `DateTime`.
 * A string without an offset (`'2023-03-01'`, `'2023-03-01T02:30'`) is a wall time in the
 * schedule's zone, resolved with the same DST policy as the slots.
 */
export type DateInput = string | Date | DateTime;

/** What {@link BackfillPlanner} takes. */
export interface BackfillPlannerOptions {
  /** The schedule whose occurrences are the slots. */
  schedule: Schedule;
  /** First instant of the range, inclusive. */
  from: DateInput;
  /** Last instant of the range, inclusive. */
  to: DateInput;
  /** Run order. @default 'asc' */
  order?: BackfillOrder;
}

/** Planner options after validation: the schedule expanded, the bounds as epoch milliseconds. */
export interface ValidatedPlannerOptions {
  /** The expanded schedule. */
  schedule: ParsedSchedule;
  /** `from` as epoch milliseconds. */
  fromMs: number;
  /** `to` as epoch milliseconds. */
  toMs: number;
  /** The run order. */
  order: BackfillOrder;
}

// ---------------------------------------------------------------------------------------------
// Calendar and ISO formatting

const SECOND = 1000;
const DAY = 86_400_000;

let civilY = 1970;
let civilM = 1;
let civilD = 1;

/** Civil date of a day number (days since 1970-01-01), written to civilY/civilM/civilD. */
function setCivil(days: number): void {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  civilD = doy - Math.floor((153 * mp + 2) / 5) + 1;
  civilM = mp < 10 ? mp + 3 : mp - 9;
  civilY = yoe + era * 400 + (civilM <= 2 ? 1 : 0);
}

function pad2(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

function pad3(n: number): string {
  return n < 10 ? '00' + n : n < 100 ? '0' + n : String(n);
}

function yearString(y: number): string {
  if (y >= 0 && y <= 9999) return y < 10 ? '000' + y : y < 100 ? '00' + y : y < 1000 ? '0' + y : String(y);
  return (y < 0 ? '-' : '+') + String(Math.abs(y)).padStart(6, '0');
}

/** `YYYY-MM-DDT` of a day number. */
function datePrefix(days: number): string {
  setCivil(days);
  return yearString(civilY) + '-' + pad2(civilM) + '-' + pad2(civilD) + 'T';
}

/** `HH:mm:ss.SSS` of milliseconds after midnight. */
function timeString(msOfDay: number): string {
  const s = Math.floor(msOfDay / SECOND);
  return pad2(Math.floor(s / 3600)) + ':' + pad2(Math.floor(s / 60) % 60) + ':' + pad2(s % 60) + '.' + pad3(msOfDay % SECOND);
}

const offsetStrings = new Map<number, string>();

/** `Z`, `±HH:MM` or `±HH:MM:SS` of an offset in milliseconds. */
function offsetString(offMs: number): string {
  let s = offsetStrings.get(offMs);
  if (s === undefined) {
    if (offMs === 0) s = 'Z';
    else {
      const abs = Math.abs(offMs) / SECOND;
      const secs = abs % 60;
      s = (offMs < 0 ? '-' : '+') + pad2(Math.floor(abs / 3600)) + ':' + pad2(Math.floor(abs / 60) % 60) + (secs ? ':' + pad2(secs) : '');
    }
    if (offsetStrings.size > 512) offsetStrings.clear();
    offsetStrings.set(offMs, s);
  }
  return s;
}

/** ISO string of an instant at the given offset. */
function formatAt(ms: number, offMs: number): string {
  const wall = ms + offMs;
  const day = Math.floor(wall / DAY);
  return datePrefix(day) + timeString(wall - day * DAY) + offsetString(offMs);
}

// ---------------------------------------------------------------------------------------------
// Zone offsets

/** A change of a zone's UTC offset: from `at` on, the offset is `after` instead of `before` (ms). */
interface Transition {
  readonly at: number;
  readonly before: number;
  readonly after: number;
}

/** The offset at the start of a 32-day stretch of instants and the transitions inside it. */
interface Chunk {
  readonly startOffset: number;
  /** Transitions with `at` in (chunk start, chunk end], ascending. */
  readonly transitions: readonly Transition[];
}

const CHUNK_DAYS = 32;
/**
 * Offsets are sampled every 4 days. Two changes closer together than that would both be missed;
 * the tz database has none (1900-2040 at 3-hour resolution, the closest pair is 6.9 days apart).
 */
const SAMPLE_DAYS = 4;
const CHUNK = CHUNK_DAYS * DAY;
const MAX_CHUNKS = 4096;
const NO_TRANSITIONS: readonly Transition[] = [];
const FIXED_ZONE = /^(?:Etc\/)?(?:UTC|UCT|GMT|Zulu|Universal|Greenwich)(?:[+-]\d{1,2})?$/i;

/**
 * The offsets of one IANA zone over time. Offsets come from `Intl` (the same data luxon and
 * croner use): sampled every 4 days, with a binary search to the second where a sample changes,
 * cached in 32-day chunks shared by every planner of the zone.
 */
class ZoneTimeline {
  static readonly #zones = new Map<string, ZoneTimeline>();

  static of(zone: string): ZoneTimeline {
    let tl = ZoneTimeline.#zones.get(zone);
    if (tl === undefined) {
      if (ZoneTimeline.#zones.size > 64) ZoneTimeline.#zones.clear();
      tl = new ZoneTimeline(zone);
      ZoneTimeline.#zones.set(zone, tl);
    }
    return tl;
  }

  readonly #fmt: Intl.DateTimeFormat;
  readonly #fixed: Chunk | undefined;
  readonly #chunks = new Map<number, Chunk>();
  #lastIndex = NaN;
  #last: Chunk | undefined;

  private constructor(zone: string) {
    // The year alone formats fastest; only the offset after 'GMT' is read.
    this.#fmt = new Intl.DateTimeFormat('en-US', { timeZone: zone, year: 'numeric', timeZoneName: 'longOffset' });
    this.#fixed = FIXED_ZONE.test(zone) ? { startOffset: this.rawOffset(0), transitions: NO_TRANSITIONS } : undefined;
  }

  /** The offset at an instant, straight from Intl (slow: a few microseconds). */
  rawOffset(ms: number): number {
    const text = this.#fmt.format(ms);
    const i = text.lastIndexOf('GMT');
    if (i < 0 || i + 3 >= text.length) return 0;
    const sign = text.charCodeAt(i + 3) === 45 /* - */ || text.charCodeAt(i + 3) === 0x2212 ? -1 : 1;
    const parts = text.slice(i + 4).split(':');
    const h = Number(parts[0]);
    const m = parts.length > 1 ? Number(parts[1]) : 0;
    const s = parts.length > 2 ? Number(parts[2]) : 0;
    return sign * ((h * 60 + m) * 60 + s) * SECOND;
  }

  /** The chunk of instants [c * CHUNK, (c + 1) * CHUNK). */
  chunk(c: number): Chunk {
    if (this.#fixed !== undefined) return this.#fixed;
    if (c === this.#lastIndex) return this.#last!;
    let ch = this.#chunks.get(c);
    if (ch === undefined) {
      ch = this.#compute(c);
      if (this.#chunks.size >= MAX_CHUNKS) {
        const oldest = this.#chunks.keys().next().value;
        if (oldest !== undefined) this.#chunks.delete(oldest);
      }
      this.#chunks.set(c, ch);
    }
    this.#lastIndex = c;
    this.#last = ch;
    return ch;
  }

  #compute(c: number): Chunk {
    const start = c * CHUNK;
    const startOffset = this.rawOffset(start);
    let transitions: Transition[] | undefined;
    let prevT = start;
    let prevO = startOffset;
    for (let k = SAMPLE_DAYS; k <= CHUNK_DAYS; k += SAMPLE_DAYS) {
      const t = start + k * DAY;
      const o = this.rawOffset(t);
      let lo = prevT;
      let loO = prevO;
      while (o !== loO) {
        // First second in (lo, t] whose offset is not loO.
        let a = lo;
        let b = t;
        while (b - a > SECOND) {
          const mid = a + Math.floor((b - a) / (2 * SECOND)) * SECOND;
          if (this.rawOffset(mid) === loO) a = mid;
          else b = mid;
        }
        const after = b === t ? o : this.rawOffset(b);
        (transitions ??= []).push({ at: b, before: loO, after });
        lo = b;
        loO = after;
      }
      prevT = t;
      prevO = o;
    }
    return { startOffset, transitions: transitions ?? NO_TRANSITIONS };
  }

  /** The offset in effect at an instant. */
  offsetAt(ms: number): number {
    const c = Math.floor(ms / CHUNK);
    const ch = this.chunk(c);
    let o = ch.startOffset;
    const ts = ch.transitions;
    for (let i = 0; i < ts.length; i++) {
      if (ts[i].at <= ms) o = ts[i].after;
      else break;
    }
    return o;
  }

  /** Transitions with `at` in [fromMs, toMs], ascending, into `out`. */
  collect(fromMs: number, toMs: number, out: Transition[]): Transition[] {
    out.length = 0;
    if (this.#fixed !== undefined) return out;
    // A chunk holds the transitions with `at` in (start, end].
    const c1 = Math.floor((toMs - 1) / CHUNK);
    for (let c = Math.floor((fromMs - 1) / CHUNK); c <= c1; c++) {
      for (const t of this.chunk(c).transitions) if (t.at >= fromMs && t.at <= toMs) out.push(t);
    }
    return out;
  }

  /**
   * The instant of a local wall time (wall clock read as UTC milliseconds), by the policy of
   * RFC 5545 and Temporal's 'compatible': a time in a gap is moved later by the gap's length,
   * a time that occurs twice takes its earlier instant. Both come down to: the offset before a
   * transition holds until the wall clock reaches `at + max(before, after)`.
   */
  wallToInstant(wall: number): number {
    if (this.#fixed !== undefined) return wall - this.#fixed.startOffset;
    const lo = wall - 2 * DAY;
    const hi = wall + 2 * DAY;
    let off = this.offsetAt(lo);
    const c1 = Math.floor(hi / CHUNK);
    for (let c = Math.floor(lo / CHUNK); c <= c1; c++) {
      const ts = this.chunk(c).transitions;
      for (let i = 0; i < ts.length; i++) {
        const t = ts[i];
        if (t.at <= lo) continue;
        if (t.at > hi) return wall - off;
        if (wall >= t.at + (t.after > t.before ? t.after : t.before)) off = t.after;
        else return wall - off;
      }
    }
    return wall - off;
  }
}

/** Start (inclusive) and end (exclusive) in wall time of the gap window of a forward transition. */
function gapWindow(t: Transition): [number, number] | undefined {
  // Wall times in [at + before, at + after) do not exist and move to [at, at + gap); the first
  // `gap` of real wall times after the change map there too. Between them they need sorting.
  return t.after > t.before ? [t.at + t.before, t.at + 2 * t.after - t.before] : undefined;
}

// ---------------------------------------------------------------------------------------------
// Cron walking

/** Longest stretch searched for the next matching day: one 400-year Gregorian cycle and a bit. */
const MAX_SEARCH_DAYS = 146097 + 400;
/** How far ahead (or back) transitions are looked up when a clean stretch is planned. */
const HORIZON = 40 * DAY;

/** First index of `secs` whose time (ms after midnight) is at least `msOfDay`. */
function lowerBound(secs: Int32Array, msOfDay: number): number {
  const want = Math.ceil(msOfDay / SECOND);
  let lo = 0;
  let hi = secs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (secs[mid] < want) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * What a cursor hands over at a time: either a run of one day's times at one offset (`fast`:
 * item i is `base + secs[i] * 1000`, written `prefix + name(i) + suffix`), or a short list
 * worked out one by one around a clock change.
 */
class Batch {
  fast = true;
  n = 0;
  base = 0;
  i = 0;
  end = 0;
  step = 1;
  prefix = '';
  suffix = '';
  ms: number[] = [];
  iso: string[] = [];
}

/**
 * Walks the wall times of a cron schedule forward (dir 1) or backward (dir -1) and hands over
 * their instants in order, each instant once, only those within [lowMs, highMs].
 */
class CronCursor {
  readonly #s: ParsedCronSchedule;
  readonly #secs: Int32Array;
  readonly #tl: ZoneTimeline;
  readonly #dir: 1 | -1;
  readonly #lowMs: number;
  readonly #highMs: number;
  readonly #strings: boolean;
  readonly #stopWall: number;
  /** Next wall time to look at (inclusive): ascending, at or after it; descending, at or before it. */
  #pos: number;
  #segValid = false;
  #segClean = true;
  /** Ascending: end (exclusive) of the stretch; descending: its start (inclusive). */
  #segEdge = 0;
  #off = 0;
  #suffix = '';
  #lastMs: number;
  #prefixDay = NaN;
  #prefix = '';
  readonly #scratch: Transition[] = [];
  // The month being walked.
  #mY = 0;
  #mM = 0;
  #mStart = NaN;
  #mDim = 0;
  #mMask = 0;

  constructor(s: ParsedCronSchedule, tl: ZoneTimeline, dir: 1 | -1, lowMs: number, highMs: number, strings = true) {
    this.#s = s;
    this.#secs = s.secondsOfDay;
    this.#tl = tl;
    this.#dir = dir;
    this.#lowMs = lowMs;
    this.#highMs = highMs;
    this.#strings = strings;
    if (dir === 1) {
      this.#lastMs = -Infinity;
      this.#stopWall = highMs + 2 * DAY;
      let pos = lowMs + tl.offsetAt(lowMs);
      // Inside a gap window, earlier wall times may land after lowMs: start at the window.
      for (const t of tl.collect(lowMs - 2 * DAY, lowMs + 2 * DAY, this.#scratch)) {
        const w = gapWindow(t);
        if (w !== undefined && w[0] <= pos && pos < w[1]) pos = w[0];
      }
      this.#pos = pos;
    } else {
      this.#lastMs = Infinity;
      this.#stopWall = lowMs - 2 * DAY;
      let pos = highMs + tl.offsetAt(highMs);
      for (const t of tl.collect(highMs - 2 * DAY, highMs + 2 * DAY, this.#scratch)) {
        const w = gapWindow(t);
        if (w !== undefined) {
          if (w[0] <= pos && pos < w[1]) pos = w[1] - 1;
        } else if (t.at + t.after <= pos && pos < t.at + t.before) {
          // A repeated wall time: later wall times up to the change still take earlier instants.
          pos = t.at + t.before - 1;
        }
      }
      this.#pos = pos;
    }
  }

  /** Fill `b` with the next items; false when there are none left. */
  fill(b: Batch): boolean {
    return this.#dir === 1 ? this.#fillAsc(b) : this.#fillDesc(b);
  }

  #dayPrefix(day: number): string {
    if (day !== this.#prefixDay) {
      this.#prefixDay = day;
      this.#prefix = datePrefix(day);
    }
    return this.#prefix;
  }

  // -- months ---------------------------------------------------------------------------------

  #enterMonth(day: number): void {
    setCivil(day);
    this.#mY = civilY;
    this.#mM = civilM;
    this.#mStart = day - (civilD - 1);
    this.#mDim = daysInMonth(civilY, civilM);
    this.#mMask = this.#s.dayMask(civilY, civilM);
  }

  #nextMonth(): void {
    this.#mStart += this.#mDim;
    if (++this.#mM > 12) {
      this.#mM = 1;
      this.#mY++;
    }
    this.#mDim = daysInMonth(this.#mY, this.#mM);
    this.#mMask = this.#s.dayMask(this.#mY, this.#mM);
  }

  #prevMonth(): void {
    if (--this.#mM < 1) {
      this.#mM = 12;
      this.#mY--;
    }
    this.#mDim = daysInMonth(this.#mY, this.#mM);
    this.#mStart -= this.#mDim;
    this.#mMask = this.#s.dayMask(this.#mY, this.#mM);
  }

  /** The first matching day at or after `day`, or -Infinity when none comes within 400 years. */
  #nextDay(day: number): number {
    if (!(day >= this.#mStart && day < this.#mStart + this.#mDim)) this.#enterMonth(day);
    const limit = day + MAX_SEARCH_DAYS;
    let d = day - this.#mStart;
    for (;;) {
      const m = this.#mMask & (-1 << d);
      if (m !== 0) return this.#mStart + 31 - Math.clz32(m & -m);
      this.#nextMonth();
      d = 0;
      if (this.#mStart > limit) return -Infinity;
    }
  }

  /** The last matching day at or before `day`, or -Infinity when none came within 400 years. */
  #prevDay(day: number): number {
    if (!(day >= this.#mStart && day < this.#mStart + this.#mDim)) this.#enterMonth(day);
    const limit = day - MAX_SEARCH_DAYS;
    let d = day - this.#mStart;
    for (;;) {
      const m = d >= 30 ? this.#mMask : this.#mMask & ((1 << (d + 1)) - 1);
      if (m !== 0) return this.#mStart + 31 - Math.clz32(m);
      this.#prevMonth();
      d = this.#mDim - 1;
      if (this.#mStart + this.#mDim < limit) return -Infinity;
    }
  }

  // -- stretches ------------------------------------------------------------------------------

  /** Plan the stretch starting at `pos` going forward: one offset, or a gap window to sort. */
  #segmentAsc(pos: number): void {
    const ts = this.#tl.collect(pos - 3 * DAY, pos + HORIZON, this.#scratch);
    let edge = pos + HORIZON - 2 * DAY;
    let spanEnd = -Infinity;
    for (const t of ts) {
      const w = gapWindow(t);
      if (w !== undefined && w[0] <= pos && pos < w[1]) spanEnd = Math.max(spanEnd, w[1]);
    }
    if (spanEnd > pos) {
      // Merge windows that overlap this one.
      for (let grown = true; grown; ) {
        grown = false;
        for (const t of ts) {
          const w = gapWindow(t);
          if (w !== undefined && w[0] < spanEnd && w[1] > spanEnd) {
            spanEnd = w[1];
            grown = true;
          }
        }
      }
      this.#segClean = false;
      this.#segEdge = spanEnd;
    } else {
      for (const t of ts) {
        const s = t.at + t.before;
        if (s > pos && s < edge) edge = s;
      }
      this.#segClean = true;
      this.#segEdge = edge;
      this.#off = pos - this.#tl.wallToInstant(pos);
      this.#suffix = offsetString(this.#off);
    }
    this.#segValid = true;
  }

  /** Plan the stretch ending at `pos` going backward. */
  #segmentDesc(pos: number): void {
    const ts = this.#tl.collect(pos - HORIZON, pos + 3 * DAY, this.#scratch);
    let edge = pos - HORIZON + 2 * DAY;
    let spanStart = Infinity;
    for (const t of ts) {
      const w = gapWindow(t);
      if (w !== undefined && w[0] <= pos && pos < w[1]) spanStart = Math.min(spanStart, w[0]);
    }
    if (spanStart <= pos) {
      for (let grown = true; grown; ) {
        grown = false;
        for (const t of ts) {
          const w = gapWindow(t);
          if (w !== undefined && w[1] > spanStart && w[0] < spanStart) {
            spanStart = w[0];
            grown = true;
          }
        }
      }
      this.#segClean = false;
      this.#segEdge = spanStart;
    } else {
      for (const t of ts) {
        const w = gapWindow(t);
        const lower = w !== undefined ? w[1] : t.at + t.before;
        if (lower <= pos && lower > edge) edge = lower;
      }
      this.#segClean = true;
      this.#segEdge = edge;
      this.#off = pos - this.#tl.wallToInstant(pos);
      this.#suffix = offsetString(this.#off);
    }
    this.#segValid = true;
  }

  /** Every matching wall time in [lo, hi), mapped, sorted, each instant once, into `b`. */
  #span(b: Batch, lo: number, hi: number): boolean {
    const tl = this.#tl;
    const secs = this.#secs;
    const found: number[] = [];
    for (let day = this.#nextDay(Math.floor(lo / DAY)); day !== -Infinity; day = this.#nextDay(day + 1)) {
      const dayStart = day * DAY;
      if (dayStart >= hi) break;
      const from = lo > dayStart ? lowerBound(secs, lo - dayStart) : 0;
      for (let i = from; i < secs.length; i++) {
        const wall = dayStart + secs[i] * SECOND;
        if (wall >= hi) break;
        const ms = tl.wallToInstant(wall);
        if (ms >= this.#lowMs && ms <= this.#highMs) found.push(ms);
      }
    }
    found.sort((x, y) => (x - y) * this.#dir);
    const ms: number[] = [];
    let last = this.#lastMs;
    for (const x of found) {
      if ((x - last) * this.#dir <= 0) continue;
      ms.push(x);
      last = x;
    }
    this.#lastMs = last;
    b.fast = false;
    b.n = ms.length;
    b.ms = ms;
    b.iso = this.#strings ? ms.map((x) => formatAt(x, tl.offsetAt(x))) : [];
    return ms.length > 0;
  }

  #fillAsc(b: Batch): boolean {
    const secs = this.#secs;
    for (;;) {
      const pos = this.#pos;
      if (pos > this.#stopWall) return false;
      if (!this.#segValid || pos >= this.#segEdge) this.#segmentAsc(pos);
      const segEnd = this.#segEdge;
      if (!this.#segClean) {
        this.#pos = segEnd;
        this.#segValid = false;
        if (this.#span(b, pos, segEnd)) return true;
        continue;
      }
      const day = this.#nextDay(Math.floor(pos / DAY));
      if (day === -Infinity) return false;
      const dayStart = day * DAY;
      if (dayStart >= segEnd) {
        this.#pos = dayStart;
        continue;
      }
      const dayEnd = dayStart + DAY;
      const stretchEnd = dayEnd < segEnd ? dayEnd : segEnd;
      this.#pos = stretchEnd;
      const off = this.#off;
      let lo = pos > dayStart ? pos : dayStart;
      if (lo < this.#lowMs + off) lo = this.#lowMs + off;
      let hi = stretchEnd;
      if (hi > this.#highMs + off + 1) hi = this.#highMs + off + 1;
      if (lo >= hi) continue;
      const i0 = lo === dayStart ? 0 : lowerBound(secs, lo - dayStart);
      const i1 = hi === dayEnd ? secs.length : lowerBound(secs, hi - dayStart);
      if (i0 >= i1) continue;
      b.fast = true;
      b.n = i1 - i0;
      b.base = dayStart - off;
      b.i = i0;
      b.end = i1;
      b.step = 1;
      if (this.#strings) {
        b.prefix = this.#dayPrefix(day);
        b.suffix = this.#suffix;
      }
      this.#lastMs = b.base + secs[i1 - 1] * SECOND;
      return true;
    }
  }

  #fillDesc(b: Batch): boolean {
    const secs = this.#secs;
    for (;;) {
      const pos = this.#pos;
      if (pos < this.#stopWall) return false;
      if (!this.#segValid || pos < this.#segEdge) this.#segmentDesc(pos);
      const segStart = this.#segEdge;
      if (!this.#segClean) {
        this.#pos = segStart - 1;
        this.#segValid = false;
        if (this.#span(b, segStart, pos + 1)) return true;
        continue;
      }
      const day = this.#prevDay(Math.floor(pos / DAY));
      if (day === -Infinity) return false;
      const dayStart = day * DAY;
      const dayEnd = dayStart + DAY;
      if (dayEnd <= segStart) {
        this.#pos = dayEnd - 1;
        continue;
      }
      const stretchStart = dayStart > segStart ? dayStart : segStart;
      this.#pos = stretchStart - 1;
      const off = this.#off;
      let hi = pos < dayEnd - 1 ? pos : dayEnd - 1;
      if (hi > this.#highMs + off) hi = this.#highMs + off;
      let lo = stretchStart;
      if (lo < this.#lowMs + off) lo = this.#lowMs + off;
      if (lo > hi) continue;
      const i0 = lo === dayStart ? 0 : lowerBound(secs, lo - dayStart);
      const i1 = hi === dayEnd - 1 ? secs.length : lowerBound(secs, hi - dayStart + 1);
      if (i0 >= i1) continue;
      b.fast = true;
      b.n = i1 - i0;
      b.base = dayStart - off;
      b.i = i1 - 1;
      b.end = i0 - 1;
      b.step = -1;
      if (this.#strings) {
        b.prefix = this.#dayPrefix(day);
        b.suffix = this.#suffix;
      }
      this.#lastMs = b.base + secs[i0] * SECOND;
      return true;
    }
  }
}

/** `HH:mm:ss.SSS` of every time of day of a cron schedule, built on first use. */
const timeNames = new WeakMap<ParsedCronSchedule, (string | undefined)[]>();

function namesOf(s: ParsedCronSchedule): (string | undefined)[] {
  let names = timeNames.get(s);
  if (names === undefined) {
    names = new Array<string | undefined>(s.secondsOfDay.length);
    timeNames.set(s, names);
  }
  return names;
}

function nameAt(s: ParsedCronSchedule, names: (string | undefined)[], i: number): string {
  return (names[i] = timeString(s.secondsOfDay[i] * SECOND));
}

function* cronAscending(s: ParsedCronSchedule, tl: ZoneTimeline, fromMs: number, toMs: number): Generator<Slot, void, undefined> {
  const cursor = new CronCursor(s, tl, 1, fromMs, Infinity);
  const b = new Batch();
  const secs = s.secondsOfDay;
  const names = namesOf(s);
  let index = 0;
  let pending: string | undefined;
  while (cursor.fill(b)) {
    if (b.fast) {
      const { base, prefix, suffix, end, step } = b;
      for (let i = b.i; i !== end; i += step) {
        const iso = prefix + (names[i] ?? nameAt(s, names, i)) + suffix;
        if (pending !== undefined) yield { index: index++, logicalDate: pending, intervalEnd: iso };
        if (base + secs[i] * SECOND > toMs) return;
        pending = iso;
      }
    } else {
      const { ms, iso } = b;
      for (let k = 0; k < ms.length; k++) {
        if (pending !== undefined) yield { index: index++, logicalDate: pending, intervalEnd: iso[k] };
        if (ms[k] > toMs) return;
        pending = iso[k];
      }
    }
  }
  // Only reachable when the schedule has no later occurrence at all.
  if (pending !== undefined) yield { index, logicalDate: pending, intervalEnd: pending };
}

/** The first occurrence strictly after `ms`, as an ISO string. */
function cronNextAfter(s: ParsedCronSchedule, tl: ZoneTimeline, ms: number): string | undefined {
  const cursor = new CronCursor(s, tl, 1, ms + 1, Infinity);
  const b = new Batch();
  if (!cursor.fill(b)) return undefined;
  if (!b.fast) return b.iso[0];
  const names = namesOf(s);
  return b.prefix + (names[b.i] ?? nameAt(s, names, b.i)) + b.suffix;
}

function* cronDescending(s: ParsedCronSchedule, tl: ZoneTimeline, fromMs: number, toMs: number): Generator<Slot, void, undefined> {
  const cursor = new CronCursor(s, tl, -1, -Infinity, toMs);
  const b = new Batch();
  const secs = s.secondsOfDay;
  const names = namesOf(s);
  let index = 0;
  let later: string | undefined;
  while (cursor.fill(b)) {
    later ??= cronNextAfter(s, tl, toMs);
    if (b.fast) {
      const { base, prefix, suffix, end, step } = b;
      for (let i = b.i; i !== end; i += step) {
        if (base + secs[i] * SECOND < fromMs) return;
        const iso = prefix + (names[i] ?? nameAt(s, names, i)) + suffix;
        yield { index: index++, logicalDate: iso, intervalEnd: later ?? iso };
        later = iso;
      }
    } else {
      const { ms, iso } = b;
      for (let k = 0; k < ms.length; k++) {
        if (ms[k] < fromMs) return;
        yield { index: index++, logicalDate: iso[k], intervalEnd: later ?? iso[k] };
        later = iso[k];
      }
    }
  }
}

function cronCount(s: ParsedCronSchedule, tl: ZoneTimeline, fromMs: number, toMs: number): number {
  const cursor = new CronCursor(s, tl, 1, fromMs, toMs, false);
  const b = new Batch();
  let n = 0;
  while (cursor.fill(b)) n += b.n;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Interval walking

/** Formats instants in one zone, reusing the offset and the date prefix between calls. */
class InstantFormatter {
  readonly #tl: ZoneTimeline;
  #chunkIndex = NaN;
  #chunk: Chunk | undefined;
  #day = NaN;
  #prefix = '';

  constructor(tl: ZoneTimeline) {
    this.#tl = tl;
  }

  format(ms: number): string {
    const c = Math.floor(ms / CHUNK);
    if (c !== this.#chunkIndex) {
      this.#chunkIndex = c;
      this.#chunk = this.#tl.chunk(c);
    }
    const ch = this.#chunk!;
    let off = ch.startOffset;
    if (ch.transitions.length > 0) off = this.#tl.offsetAt(ms);
    const wall = ms + off;
    const day = Math.floor(wall / DAY);
    if (day !== this.#day) {
      this.#day = day;
      this.#prefix = datePrefix(day);
    }
    return this.#prefix + timeString(wall - day * DAY) + offsetString(off);
  }
}

/** The instants `from + k * every`, k = 0, 1, ... (calendar parts on the wall clock). */
class IntervalSeq {
  readonly #p: ParsedIntervalSchedule;
  readonly #tl: ZoneTimeline;
  readonly #from: number;
  readonly #calendar: boolean;
  readonly #y0: number;
  readonly #m0: number;
  readonly #d0: number;
  readonly #tod0: number;

  constructor(p: ParsedIntervalSchedule, tl: ZoneTimeline, fromMs: number) {
    this.#p = p;
    this.#tl = tl;
    this.#from = fromMs;
    this.#calendar = p.months !== 0 || p.days !== 0;
    const wall = fromMs + tl.offsetAt(fromMs);
    const day = Math.floor(wall / DAY);
    setCivil(day);
    this.#y0 = civilY;
    this.#m0 = civilM;
    this.#d0 = civilD;
    this.#tod0 = wall - day * DAY;
  }

  get calendar(): boolean {
    return this.#calendar;
  }

  /** The k-th instant (not deduplicated: a skipped day can make two equal). */
  at(k: number): number {
    const p = this.#p;
    if (k === 0) return this.#from;
    if (!this.#calendar) return this.#from + k * p.milliseconds;
    const total = this.#m0 - 1 + k * p.months;
    const y = this.#y0 + Math.floor(total / 12);
    const m = total - Math.floor(total / 12) * 12 + 1;
    const d = Math.min(this.#d0, daysInMonth(y, m));
    const day = daysFromCivil(y, m, d) + k * p.days;
    return this.#tl.wallToInstant(day * DAY + this.#tod0) + k * p.milliseconds;
  }

  /** The largest k whose instant is at or before `toMs` (`toMs` at or after from). */
  lastIndex(toMs: number): number {
    const p = this.#p;
    if (!this.#calendar) return Math.floor((toMs - this.#from) / p.milliseconds);
    const approx = p.months * 2_629_746_000 + p.days * DAY + p.milliseconds;
    let k = Math.max(0, Math.floor((toMs - this.#from) / approx));
    while (k > 0 && this.at(k) > toMs) k--;
    while (this.at(k + 1) <= toMs) k++;
    return k;
  }
}

function* intervalAscending(p: ParsedIntervalSchedule, tl: ZoneTimeline, fromMs: number, toMs: number): Generator<Slot, void, undefined> {
  const seq = new IntervalSeq(p, tl, fromMs);
  const fmt = new InstantFormatter(tl);
  let index = 0;
  let pending: string | undefined;
  let prev = -Infinity;
  for (let k = 0; ; k++) {
    const ms = seq.at(k);
    if (ms <= prev) continue;
    prev = ms;
    const iso = fmt.format(ms);
    if (pending !== undefined) yield { index: index++, logicalDate: pending, intervalEnd: iso };
    if (ms > toMs) return;
    pending = iso;
  }
}

function* intervalDescending(p: ParsedIntervalSchedule, tl: ZoneTimeline, fromMs: number, toMs: number): Generator<Slot, void, undefined> {
  const seq = new IntervalSeq(p, tl, fromMs);
  const fmt = new InstantFormatter(tl);
  const last = seq.lastIndex(toMs);
  const lastMs = seq.at(last);
  let k = last + 1;
  while (seq.at(k) <= lastMs) k++;
  let later = fmt.format(seq.at(k));
  let prev = Infinity;
  let index = 0;
  for (k = last; k >= 0; k--) {
    const ms = seq.at(k);
    if (ms >= prev) continue;
    prev = ms;
    const iso = fmt.format(ms);
    yield { index: index++, logicalDate: iso, intervalEnd: later };
    later = iso;
  }
}

function intervalCount(p: ParsedIntervalSchedule, tl: ZoneTimeline, fromMs: number, toMs: number): number {
  const seq = new IntervalSeq(p, tl, fromMs);
  const last = seq.lastIndex(toMs);
  if (!seq.calendar) return last + 1;
  let n = 0;
  let prev = -Infinity;
  for (let k = 0; k <= last; k++) {
    const ms = seq.at(k);
    if (ms > prev) n++;
    prev = ms;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Validation

const MIN_MS = daysFromCivil(1, 1, 2) * DAY;
const MAX_MS = daysFromCivil(9999, 12, 30) * DAY;

function isDate(value: unknown): value is Date {
  return value instanceof Date || Object.prototype.toString.call(value) === '[object Date]';
}

/**
 * Read a {@link DateInput} as epoch milliseconds. Strings without an offset are wall times in
 * `timezone`, resolved with the planner's DST policy.
 */
function instantOf(value: unknown, timezone: string, path: (string | number)[], issues: ValidationIssue[]): number | undefined {
  let ms: number;
  if (typeof value === 'string') {
    const text = value.trim();
    const utc = DateTime.fromISO(text, { zone: 'UTC' });
    if (!utc.isValid) {
      issues.push({ path, message: `'${value}' is not an ISO 8601 date-time (e.g. "2023-03-26T02:00:00+01:00")`, code: 'invalid_format' });
      return undefined;
    }
    const shifted = DateTime.fromISO(text, { zone: 'Etc/GMT+1' });
    // With an offset in the text both readings agree; without, it is a wall time in the zone.
    ms = utc.toMillis() === shifted.toMillis() ? utc.toMillis() : ZoneTimeline.of(timezone).wallToInstant(utc.toMillis());
  } else if (isDate(value)) {
    ms = value.getTime();
    if (Number.isNaN(ms)) {
      issues.push({ path, message: 'is an invalid Date', code: 'invalid_type' });
      return undefined;
    }
  } else if (DateTime.isDateTime(value)) {
    if (!value.isValid) {
      issues.push({ path, message: `is an invalid DateTime (${value.invalidReason ?? 'invalid'})`, code: 'invalid_type' });
      return undefined;
    }
    ms = value.toMillis();
  } else {
    issues.push({
      path,
      message: value === undefined ? 'is required: an ISO 8601 string, a Date or a luxon DateTime' : 'must be an ISO 8601 string, a Date or a luxon DateTime',
      code: 'invalid_type',
    });
    return undefined;
  }
  if (ms < MIN_MS || ms > MAX_MS) {
    issues.push({ path, message: 'must lie between the years 0001 and 9999', code: 'too_big' });
    return undefined;
  }
  return ms;
}

/** What {@link checkPlannerOptions} found. */
export interface PlannerOptionsCheck {
  /** The validated options, present when there are no issues. */
  options?: ValidatedPlannerOptions;
  /** Every problem found, each with the path of its field. */
  issues: ValidationIssue[];
}

/**
 * Check planner options and collect every problem found, without throwing.
 *
 * @param input - What would be given to `new BackfillPlanner(...)`.
 * @returns The validated options when `issues` is empty.
 */
export function checkPlannerOptions(input: unknown): PlannerOptionsCheck {
  if (typeof input !== 'object' || input === null) {
    return { issues: [{ path: [], message: 'planner options must be an object { schedule, from, to, order? }', code: 'invalid_type' }] };
  }
  const o = input as Record<string, unknown>;
  const { schedule, issues } = checkSchedule(o.schedule, ['schedule']);
  let timezone = DEFAULT_TIMEZONE;
  if (schedule !== undefined) timezone = schedule.timezone;
  else {
    const raw = (o.schedule as { timezone?: unknown } | undefined)?.timezone;
    if (typeof raw === 'string') timezone = canonicalZone(raw) ?? DEFAULT_TIMEZONE;
  }
  const fromMs = instantOf(o.from, timezone, ['from'], issues);
  const toMs = instantOf(o.to, timezone, ['to'], issues);
  if (fromMs !== undefined && toMs !== undefined && fromMs > toMs) {
    const fmt = new InstantFormatter(ZoneTimeline.of(timezone));
    issues.push({ path: ['from'], message: `must not be after to (from ${fmt.format(fromMs)}, to ${fmt.format(toMs)})`, code: 'too_big' });
  }
  const order = o.order ?? 'asc';
  if (order !== 'asc' && order !== 'desc') {
    issues.push({ path: ['order'], message: `must be 'asc' or 'desc', got ${JSON.stringify(order)}`, code: 'invalid_value' });
  }
  if (issues.length > 0 || schedule === undefined || fromMs === undefined || toMs === undefined) return { issues };
  return { options: { schedule, fromMs, toMs, order: order as BackfillOrder }, issues };
}

/**
 * Validate planner options.
 *
 * @param input - What would be given to `new BackfillPlanner(...)`.
 * @returns The schedule expanded and the bounds as epoch milliseconds.
 * @throws {@link TaskControlError} `VALIDATION` whose message names the first bad field
 *   (`schedule.cron`, `schedule.every`, `schedule.timezone`, `from`, `to`, `order`) and whose
 *   `issues` list every problem with its path.
 */
export function validatePlannerOptions(input: BackfillPlannerOptions | unknown): ValidatedPlannerOptions {
  const { options, issues } = checkPlannerOptions(input);
  if (options === undefined) throwValidation(issues);
  return options;
}

const dateInputSchema = z.union([
  z.string(),
  z.date(),
  z.custom<DateTime>((v) => DateTime.isDateTime(v), { message: 'must be a luxon DateTime' }),
]);

/**
 * The zod schema of {@link BackfillPlannerOptions}, with the same checks as
 * {@link validatePlannerOptions} (schedule meaning, parsable bounds, `from` not after `to`).
 */
export const plannerOptionsSchema: z.ZodType<BackfillPlannerOptions> = z
  .object({
    schedule: scheduleSchema,
    from: dateInputSchema,
    to: dateInputSchema,
    order: z.enum(['asc', 'desc']).optional(),
  })
  .superRefine((value, ctx) => {
    for (const found of checkPlannerOptions(value).issues) {
      if (found.path[0] === 'schedule') continue; // reported by scheduleSchema
      ctx.addIssue({ code: 'custom', message: found.message, path: found.path });
    }
  });

/**
 * Write an instant the way slots are written: ISO 8601 with milliseconds and the offset of
 * `timezone` at that instant (`Z` for a zero offset). See {@link Slot}.
 *
 * @param value - The instant. A string without an offset is a wall time in `timezone`.
 * @param timezone - IANA zone. @default 'UTC'
 * @throws {@link TaskControlError} `VALIDATION` for an unknown zone or an unparsable instant.
 */
export function formatLogicalDate(value: DateInput, timezone: string = DEFAULT_TIMEZONE): string {
  const zone = canonicalZone(timezone);
  if (zone === undefined) {
    throwValidation([{ path: ['timezone'], message: `unknown time zone '${timezone}'`, code: 'custom' }]);
  }
  const issues: ValidationIssue[] = [];
  const ms = instantOf(value, zone, ['logicalDate'], issues);
  if (ms === undefined) throwValidation(issues);
  return new InstantFormatter(ZoneTimeline.of(zone)).format(ms);
}

// ---------------------------------------------------------------------------------------------
// The planner

/**
 * Plans the slots (logical dates) of a backfill: every occurrence of a schedule between `from`
 * and `to`, both inclusive, DST-correct in the schedule's zone.
 *
 * DST policy (RFC 5545, Temporal's `'compatible'`): a wall time that does not exist (spring
 * forward) moves later by the length of the gap; a wall time that occurs twice (fall back) takes
 * its earlier instant; an instant is yielded once even when two wall times map to it. So a daily
 * schedule has exactly one slot per local day, on the days the clocks change too.
 *
 * Cost: `slots()` is lazy (constant memory) and makes well over a million slots a second;
 * `count()` works per local day, not per slot; `preview(n)` costs O(n) for any range.
 *
 * @example
 * ```ts
 * const planner = new BackfillPlanner({
 *   schedule: { cron: '0 2 * * *', timezone: 'Asia/Shanghai' },
 *   from: '2023-01-01', to: '2023-12-31T23:59:59',
 * });
 * planner.count();            // 365
 * planner.preview(1)[0];      // { index: 0, logicalDate: '2023-01-01T02:00:00.000+08:00',
 *                             //   intervalEnd: '2023-01-02T02:00:00.000+08:00' }
 * ```
 */
export class BackfillPlanner {
  /** The schedule's IANA zone (canonical spelling), in which slots are written. */
  readonly timezone: string;
  /** The run order of {@link BackfillPlanner.slots}. */
  readonly order: BackfillOrder;
  /** `from` as an ISO string in the schedule's zone. */
  readonly from: string;
  /** `to` as an ISO string in the schedule's zone. */
  readonly to: string;
  /** `from` as epoch milliseconds. */
  readonly fromMs: number;
  /** `to` as epoch milliseconds. */
  readonly toMs: number;
  readonly #schedule: ParsedSchedule;
  readonly #tl: ZoneTimeline;
  #count: number | undefined;

  /**
   * @param options - The schedule, the inclusive range and the order.
   * @throws {@link TaskControlError} `VALIDATION` naming the field: an invalid cron expression
   *   (`schedule.cron`), duration (`schedule.every`, zero or negative too) or zone
   *   (`schedule.timezone`), an unparsable bound (`from`, `to`), `from` after `to` (`from`),
   *   or an unknown `order`.
   */
  constructor(options: BackfillPlannerOptions) {
    const v = validatePlannerOptions(options);
    this.#schedule = v.schedule;
    this.#tl = ZoneTimeline.of(v.schedule.timezone);
    this.timezone = v.schedule.timezone;
    this.order = v.order;
    this.fromMs = v.fromMs;
    this.toMs = v.toMs;
    const fmt = new InstantFormatter(this.#tl);
    this.from = fmt.format(v.fromMs);
    this.to = fmt.format(v.toMs);
  }

  /**
   * The slots, lazily, in run order. Each call starts over. Memory stays constant however long
   * the range.
   */
  slots(): Generator<Slot, void, undefined> {
    const s = this.#schedule;
    const asc = this.order === 'asc';
    if (s.kind === 'cron') {
      return asc ? cronAscending(s, this.#tl, this.fromMs, this.toMs) : cronDescending(s, this.#tl, this.fromMs, this.toMs);
    }
    return asc ? intervalAscending(s, this.#tl, this.fromMs, this.toMs) : intervalDescending(s, this.#tl, this.fromMs, this.toMs);
  }

  /** Same as {@link BackfillPlanner.slots}: `for (const slot of planner)`. */
  [Symbol.iterator](): Generator<Slot, void, undefined> {
    return this.slots();
  }

  /**
   * How many slots there are, without making them: per local day for cron schedules (so ten
   * years of 5-minute slots take about a millisecond), by arithmetic for fixed intervals.
   */
  count(): number {
    if (this.#count === undefined) {
      const s = this.#schedule;
      this.#count = s.kind === 'cron' ? cronCount(s, this.#tl, this.fromMs, this.toMs) : intervalCount(s, this.#tl, this.fromMs, this.toMs);
    }
    return this.#count;
  }

  /**
   * The first `n` slots in run order (fewer when the range has fewer). Costs O(n), however
   * long the range.
   *
   * @param n - How many slots, a whole number >= 0.
   * @throws {@link TaskControlError} `VALIDATION` when `n` is not a whole number >= 0.
   */
  preview(n: number): Slot[] {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
      throwValidation([{ path: ['n'], message: `must be a whole number >= 0, got ${String(n)}`, code: 'invalid_type' }]);
    }
    const out: Slot[] = [];
    if (n === 0) return out;
    const it = this.slots();
    for (let r = it.next(); !r.done; r = it.next()) {
      out.push(r.value);
      if (out.length >= n) break;
    }
    it.return(undefined);
    return out;
  }
}

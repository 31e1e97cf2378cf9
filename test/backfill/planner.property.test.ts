import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { Cron, CronPattern } from 'croner';
import { DateTime, Duration } from 'luxon';
import { BackfillPlanner, type BackfillPlannerOptions } from '../../src/backfill/planner.js';
import { parseSchedule } from '../../src/backfill/schedule.js';
import { isTaskControlError } from '../../src/errors.js';

// Oracles:
// - away from DST changes: croner itself (`new Cron(expr, { timezone }).nextRun(prev)`);
// - around DST changes: an independent implementation of the policy (RFC 5545 / Temporal
//   'compatible'), built on croner's day matching and offsets read from Intl here.

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const ZONES = [
  'UTC',
  'Europe/Berlin',
  'America/New_York',
  'Australia/Lord_Howe',
  'Asia/Shanghai',
  'Pacific/Chatham',
  'America/Santiago',
  'Asia/Kolkata',
  'America/St_Johns',
  'Asia/Kathmandu',
];
const DST_ZONES = ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Pacific/Chatham', 'America/Santiago', 'America/St_Johns', 'Asia/Tehran', 'Africa/Casablanca'];

// ---------------------------------------------------------------------------------------------
// Zone offsets, read here straight from Intl (hourly scan, then a binary search to the second)

interface Change {
  at: number;
  before: number;
  after: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function intlOffset(zone: string, ms: number): number {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' });
    formatters.set(zone, f);
  }
  const text = f.format(ms);
  const m = /GMT(?:([+-\u2212])(\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(text);
  if (!m || !m[1]) return 0;
  const sign = m[1] === '+' ? 1 : -1;
  return sign * ((Number(m[2]) * 60 + Number(m[3])) * 60 + Number(m[4] ?? 0)) * 1000;
}

const changeCache = new Map<string, Change[]>();
/** Offset changes of a zone in one UTC year. */
function changesInYear(zone: string, year: number): Change[] {
  const key = `${zone}:${year}`;
  let out = changeCache.get(key);
  if (out) return out;
  out = [];
  const end = Date.UTC(year + 1, 0, 1);
  let prevT = Date.UTC(year, 0, 1);
  let prevO = intlOffset(zone, prevT);
  for (let t = prevT + 6 * HOUR; t <= end; t += 6 * HOUR) {
    const o = intlOffset(zone, t);
    if (o !== prevO) {
      let a = prevT;
      let b = t;
      while (b - a > 1000) {
        const mid = a + Math.floor((b - a) / 2000) * 1000;
        if (intlOffset(zone, mid) === prevO) a = mid;
        else b = mid;
      }
      out.push({ at: b, before: prevO, after: o });
    }
    prevT = t;
    prevO = o;
  }
  changeCache.set(key, out);
  return out;
}

function changesBetween(zone: string, from: number, to: number): Change[] {
  const out: Change[] = [];
  for (let y = new Date(from).getUTCFullYear(); y <= new Date(to).getUTCFullYear(); y++) {
    for (const c of changesInYear(zone, y)) if (c.at >= from && c.at <= to) out.push(c);
  }
  return out;
}

/** The instant of a wall time (wall clock read as UTC ms) by the 'compatible' policy. */
function resolveWall(zone: string, wall: number): number {
  const candidates = new Set<number>([intlOffset(zone, wall - 2 * DAY), intlOffset(zone, wall + 2 * DAY)]);
  for (const c of changesBetween(zone, wall - 2 * DAY, wall + 2 * DAY)) {
    candidates.add(c.before);
    candidates.add(c.after);
  }
  const valid = [...candidates].filter((o) => intlOffset(zone, wall - o) === o);
  if (valid.length > 0) return wall - Math.max(...valid); // a repeated time: the earlier instant
  // A time in a gap: read with the offset before the change, i.e. moved later by the gap.
  return wall - intlOffset(zone, wall - Math.max(...candidates));
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

const int = (min: number, max: number): fc.Arbitrary<number> => fc.integer({ min, max });

function field(min: number, max: number, maxStep: number): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constant('*'),
    int(min, max).map(String),
    int(1, maxStep).map((s) => `*/${s}`),
    fc.tuple(int(min, max), int(min, max)).map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
    fc.tuple(int(min, max), int(min, max), int(1, maxStep)).map(([a, b, s]) => `${Math.min(a, b)}-${Math.max(a, b)}/${s}`),
    fc.uniqueArray(int(min, max), { minLength: 2, maxLength: 4 }).map((a) => a.join(',')),
  );
}

const secondArb = fc.oneof(int(0, 59).map(String), fc.constant('*/20'), fc.uniqueArray(int(0, 59), { minLength: 2, maxLength: 3 }).map((a) => a.join(',')));
const minuteArb = field(0, 59, 30);
const hourArb = field(0, 23, 12);
const domArb = fc.oneof(
  { weight: 8, arbitrary: fc.constant('*') },
  { weight: 6, arbitrary: field(1, 31, 10) },
  { weight: 1, arbitrary: fc.constant('L') },
  { weight: 1, arbitrary: int(1, 31).map((d) => `${d}W`) },
  { weight: 1, arbitrary: fc.constant('LW') },
);
const monthArb = fc.oneof({ weight: 3, arbitrary: fc.constant('*') }, { weight: 2, arbitrary: field(1, 12, 4) });
const dowArb = fc.oneof(
  { weight: 8, arbitrary: fc.constant('*') },
  { weight: 4, arbitrary: field(0, 6, 3) },
  { weight: 1, arbitrary: fc.tuple(int(0, 6), int(1, 5)).map(([d, n]) => `${d}#${n}`) },
  { weight: 1, arbitrary: int(0, 6).map((d) => `${d}L`) },
  { weight: 1, arbitrary: fc.constantFrom('MON-FRI', 'SAT,SUN', '+MON-FRI', '+1,3,5') },
);

/** A cron expression: 5 fields, or 6 with seconds. */
const cronArb = fc
  .record({ second: fc.option(secondArb, { nil: undefined }), minute: minuteArb, hour: hourArb, dom: domArb, month: monthArb, dow: dowArb })
  .map(({ second, minute, hour, dom, month, dow }) => [second, minute, hour, dom, month, dow].filter((f) => f !== undefined).join(' '));

/** Like cronArb, with at most one second a minute so the oracle stays quick around DST changes. */
const edgeCronArb = fc
  .record({ second: fc.option(int(0, 59).map(String), { nil: undefined }), minute: minuteArb, hour: hourArb, dom: domArb, month: monthArb, dow: dowArb })
  .map(({ second, minute, hour, dom, month, dow }) => [second, minute, hour, dom, month, dow].filter((f) => f !== undefined).join(' '));

/** Day fields only (time fixed): for the day-matching property. */
const dayCronArb = fc.record({ dom: domArb, month: monthArb, dow: dowArb }).map(({ dom, month, dow }) => `0 12 ${dom} ${month} ${dow}`);

// ---------------------------------------------------------------------------------------------
// Helpers

function plannerOrNever(options: BackfillPlannerOptions): BackfillPlanner | undefined {
  try {
    return new BackfillPlanner(options);
  } catch (err) {
    if (isTaskControlError(err, 'VALIDATION') && /never matches/.test(err.message)) return undefined;
    throw err;
  }
}

function take<T>(it: Iterable<T>, n: number): T[] {
  const out: T[] = [];
  if (n <= 0) return out;
  for (const x of it) {
    out.push(x);
    if (out.length >= n) break;
  }
  return out;
}

function cronerRuns(expr: string, timezone: string, from: number, to: number, max: number): number[] {
  const cron = new Cron(expr, { timezone });
  const out: number[] = [];
  let prev = new Date(from - 1000);
  while (out.length < max) {
    const next = cron.nextRun(prev);
    if (!next || next.getTime() > to) break;
    out.push(next.getTime());
    prev = next;
  }
  return out;
}

/** The policy's slots, computed independently: croner matches the days, the wall times resolve by resolveWall. */
function policySlots(expr: string, zone: string, from: number, to: number): number[] {
  const pattern = new CronPattern(expr, zone, { mode: '5-or-6-parts' });
  const utc = new Cron(expr, { timezone: 'UTC' });
  const times: number[] = [];
  for (let h = 0; h < 24; h++) {
    if (!pattern.hour[h]) continue;
    for (let m = 0; m < 60; m++) {
      if (!pattern.minute[m]) continue;
      for (let s = 0; s < 60; s++) if (pattern.second[s]) times.push(((h * 60 + m) * 60 + s) * 1000);
    }
  }
  const found = new Set<number>();
  // Offsets lie within -12h..+14h, so only wall times this close to the range can land in it.
  const lo = from - 16 * HOUR;
  const hi = to + 16 * HOUR;
  for (let d = Math.floor(lo / DAY); d <= Math.floor(hi / DAY); d++) {
    if (!utc.match(new Date(d * DAY + times[0]))) continue;
    for (const t of times) {
      const wall = d * DAY + t;
      if (wall < lo || wall > hi) continue;
      const ms = resolveWall(zone, wall);
      if (ms >= from && ms <= to) found.add(ms);
    }
  }
  return [...found].sort((a, b) => a - b);
}

const iso = (ms: number): string => new Date(ms).toISOString();

// ---------------------------------------------------------------------------------------------

describe('BackfillPlanner property tests', () => {
  it('equals croner away from DST changes', () => {
    fc.assert(
      fc.property(
        cronArb,
        fc.constantFrom(...ZONES),
        int(Date.UTC(1995, 0, 1) / 60_000, Date.UTC(2040, 0, 1) / 60_000),
        int(0, 120 * 24 * 60),
        (expr, timezone, startMin, lengthMin) => {
          const from = startMin * 60_000;
          const to = from + lengthMin * 60_000;
          const planner = plannerOrNever({ schedule: { cron: expr, timezone }, from: new Date(from), to: new Date(to) });
          if (!planner) {
            expect(new Cron(expr, { timezone: 'UTC' }).nextRun(new Date(from))).toBeNull();
            return;
          }
          const cap = 200;
          const mine = take(planner.slots(), cap).map((s) => Date.parse(s.logicalDate));
          const theirs = cronerRuns(expr, timezone, from, to, cap);
          let bound = to;
          if (mine.length === cap) bound = Math.min(bound, mine[cap - 1]);
          if (theirs.length === cap) bound = Math.min(bound, theirs[cap - 1]);
          const changes = changesBetween(timezone, from - 2 * DAY, to + 2 * DAY);
          const far = (ms: number): boolean => ms <= bound && changes.every((c) => Math.abs(ms - c.at) > 26 * HOUR);
          expect(mine.filter(far).map(iso)).toEqual(theirs.filter(far).map(iso));
          if (mine.length < cap) expect(planner.count()).toBe(mine.length);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('follows the DST policy around the changes, consistently in both orders', () => {
    fc.assert(
      fc.property(
        edgeCronArb,
        fc.constantFrom(...DST_ZONES),
        int(1995, 2039),
        int(0, 3),
        int(0, 30 * 60),
        int(0, 30 * 60),
        (expr, timezone, year, pick, beforeMin, afterMin) => {
          const changes = changesInYear(timezone, year);
          fc.pre(changes.length > 0);
          const change = changes[pick % changes.length];
          const from = Math.floor(change.at / 60_000) * 60_000 - beforeMin * 60_000;
          const to = change.at + afterMin * 60_000;
          const options: BackfillPlannerOptions = { schedule: { cron: expr, timezone }, from: new Date(from), to: new Date(to) };
          const planner = plannerOrNever(options);
          if (!planner) return;
          const asc = [...planner.slots()];
          const expected = policySlots(expr, timezone, from, to);
          expect(asc.map((s) => iso(Date.parse(s.logicalDate)))).toEqual(expected.map(iso));
          expect(planner.count()).toBe(asc.length);
          // Each slot's offset is the zone's offset at that instant, and intervalEnd is the next slot.
          for (const s of asc) {
            const ms = Date.parse(s.logicalDate);
            expect(DateTime.fromMillis(ms, { zone: timezone }).toISO()!.replace(/\+00:00$/, 'Z')).toBe(s.logicalDate);
          }
          for (let i = 0; i + 1 < asc.length; i++) expect(asc[i].intervalEnd).toBe(asc[i + 1].logicalDate);
          if (asc.length > 0) {
            const last = asc[asc.length - 1];
            expect(Date.parse(last.intervalEnd)).toBeGreaterThan(to);
            const after = policySlots(expr, timezone, to + 1, Date.parse(last.intervalEnd));
            expect(iso(after[0])).toBe(iso(Date.parse(last.intervalEnd)));
          }
          const desc = [...new BackfillPlanner({ ...options, order: 'desc' }).slots()];
          expect(desc.map((s) => [s.index, s.logicalDate, s.intervalEnd])).toEqual(
            asc.map((s, i) => [asc.length - 1 - i, s.logicalDate, s.intervalEnd]).reverse(),
          );
        },
      ),
      { numRuns: 80 },
    );
  });

  it('matches days exactly like croner (day-of-month/day-of-week OR, L, W, #)', () => {
    fc.assert(
      fc.property(dayCronArb, int(1990, 2060), (expr, year) => {
        let parsed;
        try {
          parsed = parseSchedule({ cron: expr });
        } catch (err) {
          if (isTaskControlError(err, 'VALIDATION') && /never matches/.test(err.message)) return;
          throw err;
        }
        if (parsed.kind !== 'cron') throw new Error('expected a cron schedule');
        const cron = new Cron(expr, { timezone: 'UTC' });
        for (let month = 1; month <= 12; month++) {
          const mask = parsed.dayMask(year, month);
          const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
          for (let d = 1; d <= days; d++) {
            const expected = cron.match(new Date(Date.UTC(year, month - 1, d, 12)));
            expect([expr, year, month, d, (mask & (1 << (d - 1))) !== 0]).toEqual([expr, year, month, d, expected]);
          }
          expect(mask >>> days).toBe(0);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('every: from + k * duration, calendar parts on the wall clock, by the policy', () => {
    const durationArb = fc
      .record({
        months: fc.constantFrom(0, 0, 0, 1, 3, 12),
        days: fc.constantFrom(0, 0, 1, 1, 2, 7),
        hours: fc.constantFrom(0, 0, 1, 6),
        minutes: fc.constantFrom(0, 0, 15, 45),
      })
      .filter((d) => d.months + d.days + d.hours + d.minutes > 0);
    fc.assert(
      fc.property(
        durationArb,
        fc.constantFrom(...ZONES, 'Pacific/Apia'),
        int(Date.UTC(2005, 0, 1) / 60_000, Date.UTC(2035, 0, 1) / 60_000),
        int(0, 400),
        ({ months, days, hours, minutes }, timezone, startMin, lengthDays) => {
          const every = Duration.fromObject({ months, days, hours, minutes }).toISO();
          const from = startMin * 60_000;
          const step = (months * 30 + days) * DAY + (hours * 60 + minutes) * 60_000;
          const to = from + Math.min(lengthDays * DAY, step * 300);
          const options: BackfillPlannerOptions = { schedule: { every, timezone }, from: new Date(from), to: new Date(to) };
          const planner = new BackfillPlanner(options);
          const got = [...planner.slots()];

          const anchor = DateTime.fromMillis(from, { zone: timezone });
          const wall0 = anchor.setZone('UTC', { keepLocalTime: true });
          const expected: number[] = [];
          for (let k = 0; ; k++) {
            let ms: number;
            if (k === 0) ms = from;
            else if (months === 0 && days === 0) ms = from + k * step;
            else {
              const wall = wall0.plus({ months: k * months, days: k * days }).toMillis();
              ms = resolveWall(timezone, wall) + k * (hours * 60 + minutes) * 60_000;
            }
            if (ms > to) break;
            if (expected.length === 0 || ms > expected[expected.length - 1]) expected.push(ms);
          }
          expect(got.map((s) => iso(Date.parse(s.logicalDate)))).toEqual(expected.map(iso));
          expect(planner.count()).toBe(got.length);
          const desc = [...new BackfillPlanner({ ...options, order: 'desc' }).slots()];
          expect(desc.map((s) => [s.logicalDate, s.intervalEnd])).toEqual(got.map((s) => [s.logicalDate, s.intervalEnd]).reverse());
        },
      ),
      { numRuns: 100 },
    );
  });
});

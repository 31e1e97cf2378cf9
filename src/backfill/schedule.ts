/**
 * Parsing and validation of a {@link Schedule}: a cron expression or an ISO 8601 interval,
 * in an IANA time zone.
 *
 * Cron expressions are parsed by croner's own `CronPattern`, so the accepted syntax and the
 * meaning of every field are croner's: 5 fields (6 with seconds first), the `@yearly`,
 * `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight` and `@hourly` nicknames, lists,
 * ranges, steps, month and day names, `?`, `L` (last day of the month, or last weekday `5L`),
 * `#` (nth weekday `MON#2`), `W` (nearest weekday `15W`, `LW`), and day-of-month/day-of-week
 * OR-logic (croner's default; `+` before the day-of-week field asks for AND-logic).
 * This module only reads the expanded fields; walking them through time is the planner's job.
 *
 * @module
 */
import { CronPattern } from 'croner';
import { Duration, Info } from 'luxon';
import { z } from 'zod';
import { TaskControlError, type ValidationIssue } from '../errors.js';
import type { Schedule } from '../types.js';

/** The zone a schedule without `timezone` runs in. */
export const DEFAULT_TIMEZONE = 'UTC';

/** A validated cron schedule, expanded once for fast walking. */
export interface ParsedCronSchedule {
  /** Tells the two kinds of schedule apart. */
  readonly kind: 'cron';
  /** The cron expression as given (trimmed). */
  readonly cron: string;
  /** The IANA zone the expression is read in, in its canonical spelling. */
  readonly timezone: string;
  /**
   * The times of day the expression fires at on a matching day, as seconds after local
   * midnight (wall clock), ascending and without duplicates.
   */
  readonly secondsOfDay: Int32Array;
  /**
   * The days of a month the expression fires on: bit `d - 1` is set when day `d` of `month`
   * (1-12) of `year` matches the month, day-of-month and day-of-week fields (croner's rules).
   */
  dayMask(year: number, month: number): number;
}

/** A validated interval schedule (`every`), split into the parts that are added separately. */
export interface ParsedIntervalSchedule {
  /** Tells the two kinds of schedule apart. */
  readonly kind: 'every';
  /** The ISO 8601 duration as given. */
  readonly every: string;
  /** The IANA zone calendar steps are taken in, in its canonical spelling. */
  readonly timezone: string;
  /** Calendar months per step (years count as 12 months). Added to the local date. */
  readonly months: number;
  /** Calendar days per step (weeks count as 7 days). Added to the local date, so `P1D` keeps the wall time across DST. */
  readonly days: number;
  /** Exact milliseconds per step (hours, minutes, seconds), added to the instant. */
  readonly milliseconds: number;
}

/** A schedule after validation: what the planner walks. */
export type ParsedSchedule = ParsedCronSchedule | ParsedIntervalSchedule;

// ---------------------------------------------------------------------------------------------
// Calendar arithmetic (proleptic Gregorian, no Date objects)

/**
 * Days from 1970-01-01 to the given civil date (month 1-12).
 * @internal
 */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = (month + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/**
 * Number of days in `month` (1-12) of `year`.
 * @internal
 */
export function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * Day of week of a day number from {@link daysFromCivil}: 0 = Sunday ... 6 = Saturday.
 * @internal
 */
export function weekdayOfDay(days: number): number {
  return (((days + 4) % 7) + 7) % 7;
}

// ---------------------------------------------------------------------------------------------
// Validation helpers

function issue(path: (string | number)[], message: string, code = 'custom'): ValidationIssue {
  return { path, message, code };
}

/**
 * Throw `VALIDATION` for a list of issues, the message naming the first field.
 * @internal
 */
export function throwValidation(issues: ValidationIssue[]): never {
  const first = issues[0];
  const where = first.path.length > 0 ? first.path.join('.') : 'input';
  throw new TaskControlError('VALIDATION', `${where}: ${first.message}`, { issues });
}

const zoneNames = new Map<string, string | null>();

/**
 * The canonical spelling of an IANA zone (`utc` gives `UTC`), or `undefined` when the zone is
 * unknown. Validated with luxon's `Info.isValidIANAZone`.
 * @internal
 */
export function canonicalZone(zone: string): string | undefined {
  let known = zoneNames.get(zone);
  if (known === undefined) {
    known = null;
    if (zone.length > 0 && Info.isValidIANAZone(zone)) {
      try {
        known = new Intl.DateTimeFormat('en-US', { timeZone: zone }).resolvedOptions().timeZone;
      } catch {
        known = null;
      }
    }
    if (zoneNames.size > 1000) zoneNames.clear();
    zoneNames.set(zone, known);
  }
  return known ?? undefined;
}

function checkZone(value: unknown, path: (string | number)[], issues: ValidationIssue[]): string {
  if (value === undefined) return DEFAULT_TIMEZONE;
  if (typeof value !== 'string') {
    issues.push(issue(path, 'must be an IANA time zone name such as "Europe/Berlin"', 'invalid_type'));
    return DEFAULT_TIMEZONE;
  }
  const zone = canonicalZone(value);
  if (zone === undefined) {
    issues.push(issue(path, `unknown time zone '${value}': use an IANA name such as "Europe/Berlin"`));
    return DEFAULT_TIMEZONE;
  }
  return zone;
}

// ---------------------------------------------------------------------------------------------
// Cron

const NTH_BITS = [1, 2, 4, 8, 16];

/** Day matching with croner's rules, cached per month of the 400-year Gregorian cycle. */
class CronDays {
  readonly #p: CronPattern;
  readonly #cache = new Int32Array(4800).fill(-1);

  constructor(pattern: CronPattern) {
    this.#p = pattern;
  }

  mask(year: number, month: number): number {
    const slot = (((year % 400) + 400) % 400) * 12 + month - 1;
    let m = this.#cache[slot];
    if (m < 0) {
      m = this.#compute(year, month);
      this.#cache[slot] = m;
    }
    return m;
  }

  #compute(year: number, month: number): number {
    const p = this.#p;
    if (!p.month[month - 1]) return 0;
    const dim = daysInMonth(year, month);
    const first = daysFromCivil(year, month, 1);
    const firstDow = weekdayOfDay(first);
    let lastWeekday = -1;
    if (p.lastWeekday) {
      const wd = weekdayOfDay(first + dim - 1);
      lastWeekday = wd === 0 ? dim - 2 : wd === 6 ? dim - 1 : dim;
    }
    let nearest = 0;
    for (let i = 0; i < 31; i++) {
      if (!p.nearestWeekdays[i]) continue;
      const d = i + 1;
      if (d > dim) continue;
      const wd = (firstDow + d - 1) % 7;
      const n = wd === 0 ? (d === dim ? d - 2 : d + 1) : wd === 6 ? (d === 1 ? d + 2 : d - 1) : d;
      nearest |= 1 << (n - 1);
    }
    let mask = 0;
    for (let d = 1; d <= dim; d++) {
      // Same order of rules as croner's CronDate._matchDayValue.
      let a = p.day[d - 1] ? 1 : 0;
      if (!a && nearest & (1 << (d - 1))) a = 1;
      if (d === lastWeekday) a = 1;
      if (p.lastDayOfMonth && d === dim) a = 1;
      if (!p.starDOW) {
        let o = p.dayOfWeek[(firstDow + d - 1) % 7];
        if (o && o !== 63) {
          const nth = Math.floor((d - 1) / 7);
          o = o & NTH_BITS[nth] || (o & 32 && d + 7 > dim) ? 1 : 0;
        } else if (o) {
          o = 1;
        }
        if (p.useAndLogic) a = a && o;
        else if (!p.starDOM) a = a || o;
        else a = a && o;
      }
      if (a) mask |= 1 << (d - 1);
    }
    return mask;
  }

  /** True when some day of the 400-year cycle matches. */
  matchesEver(): boolean {
    for (let y = 2000; y < 2400; y++) {
      for (let m = 1; m <= 12; m++) if (this.mask(y, m) !== 0) return true;
    }
    return false;
  }
}

function parseCron(value: unknown, timezone: string, path: (string | number)[], issues: ValidationIssue[]): ParsedCronSchedule | undefined {
  if (typeof value !== 'string') {
    issues.push(issue(path, 'must be a cron expression string such as "*/5 * * * *"', 'invalid_type'));
    return undefined;
  }
  const cron = value.trim();
  if (cron === '') {
    issues.push(issue(path, 'must not be empty', 'too_small'));
    return undefined;
  }
  let pattern: CronPattern;
  try {
    // Same options croner's Cron uses by default, except that a year field is refused.
    pattern = new CronPattern(cron, timezone, { mode: '5-or-6-parts' });
  } catch (err) {
    const reason = (err instanceof Error ? err.message : String(err)).replace(/^CronPattern: /, '');
    issues.push(issue(path, `invalid cron expression '${cron}': ${reason}`));
    return undefined;
  }
  const days = new CronDays(pattern);
  if (!days.matchesEver()) {
    issues.push(issue(path, `cron expression '${cron}' never matches a date`));
    return undefined;
  }
  const times: number[] = [];
  for (let h = 0; h < 24; h++) {
    if (!pattern.hour[h]) continue;
    for (let m = 0; m < 60; m++) {
      if (!pattern.minute[m]) continue;
      for (let s = 0; s < 60; s++) if (pattern.second[s]) times.push(h * 3600 + m * 60 + s);
    }
  }
  return {
    kind: 'cron',
    cron,
    timezone,
    secondsOfDay: Int32Array.from(times),
    dayMask: (year, month) => days.mask(year, month),
  };
}

// ---------------------------------------------------------------------------------------------
// Intervals

function parseEvery(value: unknown, timezone: string, path: (string | number)[], issues: ValidationIssue[]): ParsedIntervalSchedule | undefined {
  if (typeof value !== 'string') {
    issues.push(issue(path, 'must be an ISO 8601 duration string such as "P1D" or "PT15M"', 'invalid_type'));
    return undefined;
  }
  const every = value.trim();
  const duration = Duration.fromISO(every);
  if (!duration.isValid) {
    issues.push(issue(path, `'${every}' is not an ISO 8601 duration (e.g. "P1D", "PT15M")`));
    return undefined;
  }
  const o = duration.toObject();
  const parts: [keyof typeof o, number][] = Object.entries(o).map(([k, v]) => [k as keyof typeof o, v ?? 0]);
  for (const [unit, n] of parts) {
    if (!Number.isFinite(n) || n < 0) {
      issues.push(issue(path, `'${every}' must be positive: ${unit} is ${n}`));
      return undefined;
    }
  }
  const get = (k: keyof typeof o): number => o[k] ?? 0;
  for (const unit of ['years', 'quarters', 'months', 'weeks', 'days'] as const) {
    if (!Number.isInteger(get(unit))) {
      issues.push(issue(path, `'${every}': ${unit} must be a whole number (use a smaller unit for fractions)`));
      return undefined;
    }
  }
  const months = get('years') * 12 + get('quarters') * 3 + get('months');
  const days = get('weeks') * 7 + get('days');
  const rawMs = get('hours') * 3_600_000 + get('minutes') * 60_000 + get('seconds') * 1000 + get('milliseconds');
  const milliseconds = Math.round(rawMs);
  if (Math.abs(rawMs - milliseconds) > 1e-6) {
    issues.push(issue(path, `'${every}' must be a whole number of milliseconds`));
    return undefined;
  }
  if (months === 0 && days === 0 && milliseconds === 0) {
    issues.push(issue(path, `'${every}' must be longer than zero`, 'too_small'));
    return undefined;
  }
  return { kind: 'every', every, timezone, months, days, milliseconds };
}

// ---------------------------------------------------------------------------------------------
// Public entry points

/** What {@link checkSchedule} found. */
export interface ScheduleCheck {
  /** The parsed schedule, present when there are no issues. */
  schedule?: ParsedSchedule;
  /** Every problem found, each with the path of its field. */
  issues: ValidationIssue[];
}

/**
 * Check a schedule and collect what is wrong with it, without throwing.
 *
 * @param input - The schedule to check (anything; it is checked to be a {@link Schedule}).
 * @param path - Where the schedule sits in a larger input, prefixed to every issue's path.
 * @returns The parsed schedule when `issues` is empty.
 */
export function checkSchedule(input: unknown, path: (string | number)[] = ['schedule']): ScheduleCheck {
  const issues: ValidationIssue[] = [];
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    issues.push(issue(path, 'must be an object: { cron, timezone? } or { every, timezone? }', 'invalid_type'));
    return { issues };
  }
  const obj = input as Record<string, unknown>;
  const hasCron = obj.cron !== undefined;
  const hasEvery = obj.every !== undefined;
  for (const key of Object.keys(obj)) {
    if (key !== 'cron' && key !== 'every' && key !== 'timezone' && obj[key] !== undefined) {
      issues.push(issue([...path, key], `unknown field '${key}': a schedule has cron or every, and timezone`, 'unrecognized_keys'));
    }
  }
  if (hasCron && hasEvery) {
    issues.push(issue([...path, 'every'], 'give either cron or every, not both'));
  } else if (!hasCron && !hasEvery) {
    issues.push(issue([...path, 'cron'], 'a schedule needs cron (e.g. "0 2 * * *") or every (e.g. "P1D")', 'invalid_type'));
  }
  const timezone = checkZone(obj.timezone, [...path, 'timezone'], issues);
  if (issues.length > 0) return { issues };
  const schedule = hasCron
    ? parseCron(obj.cron, timezone, [...path, 'cron'], issues)
    : parseEvery(obj.every, timezone, [...path, 'every'], issues);
  return issues.length > 0 || schedule === undefined ? { issues } : { schedule, issues };
}

/**
 * Validate and expand a schedule.
 *
 * @param input - `{ cron, timezone? }` or `{ every, timezone? }`; `timezone` defaults to `UTC`.
 * @param path - Where the schedule sits in a larger input, used in error paths. Default `['schedule']`.
 * @returns The schedule, ready for the planner.
 * @throws {@link TaskControlError} `VALIDATION` naming the field (e.g. `schedule.cron`,
 *   `schedule.timezone`, `schedule.every`) when the expression, the zone or the duration is invalid.
 */
export function parseSchedule(input: Schedule | unknown, path: (string | number)[] = ['schedule']): ParsedSchedule {
  const { schedule, issues } = checkSchedule(input, path);
  if (schedule === undefined) throwValidation(issues);
  return schedule;
}

/**
 * The zod schema of a {@link Schedule}, checking the meaning too: the cron expression with
 * croner's parser, the zone with luxon, the duration with luxon's `Duration.fromISO`.
 * The shape part (`{ cron, timezone? } | { every, timezone? }`) converts to JSON Schema.
 */
export const scheduleSchema: z.ZodType<Schedule> = z
  .union([
    z.strictObject({ cron: z.string(), timezone: z.string().optional() }),
    z.strictObject({ every: z.string(), timezone: z.string().optional() }),
  ])
  .superRefine((value, ctx) => {
    for (const found of checkSchedule(value, []).issues) {
      ctx.addIssue({ code: 'custom', message: found.message, path: found.path });
    }
  });

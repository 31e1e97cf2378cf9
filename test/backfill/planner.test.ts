import { describe, it, expect } from 'vitest';
import { DateTime } from 'luxon';
import { z } from 'zod';
import {
  BackfillPlanner,
  formatLogicalDate,
  plannerOptionsSchema,
  validatePlannerOptions,
  type BackfillPlannerOptions,
  type Slot,
} from '../../src/backfill/planner.js';
import { parseSchedule, scheduleSchema } from '../../src/backfill/schedule.js';
import { TaskControlError } from '../../src/errors.js';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(?:Z|[+-]\d{2}:\d{2})$/;

function all(options: BackfillPlannerOptions): Slot[] {
  return [...new BackfillPlanner(options).slots()];
}

function dates(options: BackfillPlannerOptions): string[] {
  return all(options).map((s) => s.logicalDate);
}

function validationError(fn: () => unknown): TaskControlError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TaskControlError);
    const e = err as TaskControlError;
    expect(e.code).toBe('VALIDATION');
    return e;
  }
  throw new Error('expected a VALIDATION error');
}

describe('BackfillPlanner: user stories', () => {
  it('every day of 2023 at 02:00 Shanghai time yields 365 slots', () => {
    const planner = new BackfillPlanner({
      schedule: { cron: '0 2 * * *', timezone: 'Asia/Shanghai' },
      from: '2023-01-01T00:00:00+08:00',
      to: '2023-12-31T23:59:59+08:00',
    });
    expect(planner.count()).toBe(365);
    const slots = [...planner.slots()];
    expect(slots).toHaveLength(365);
    expect(slots[0]).toEqual({
      index: 0,
      logicalDate: '2023-01-01T02:00:00.000+08:00',
      intervalEnd: '2023-01-02T02:00:00.000+08:00',
    });
    expect(slots[364]).toEqual({
      index: 364,
      logicalDate: '2023-12-31T02:00:00.000+08:00',
      intervalEnd: '2024-01-01T02:00:00.000+08:00',
    });
  });

  it('reads bounds without an offset as wall times in the schedule zone', () => {
    const planner = new BackfillPlanner({
      schedule: { cron: '0 2 * * *', timezone: 'Asia/Shanghai' },
      from: '2023-01-01',
      to: '2023-12-31T23:59:59',
    });
    expect(planner.count()).toBe(365);
    expect(planner.from).toBe('2023-01-01T00:00:00.000+08:00');
    expect(planner.to).toBe('2023-12-31T23:59:59.000+08:00');
  });

  it('includes both bounds', () => {
    const schedule = { cron: '0 * * * *' };
    expect(dates({ schedule, from: '2023-05-01T10:00:00Z', to: '2023-05-01T12:00:00Z' })).toEqual([
      '2023-05-01T10:00:00.000Z',
      '2023-05-01T11:00:00.000Z',
      '2023-05-01T12:00:00.000Z',
    ]);
    // A one-instant range on an occurrence has that occurrence.
    expect(new BackfillPlanner({ schedule, from: '2023-05-01T10:00:00Z', to: '2023-05-01T10:00:00Z' }).count()).toBe(1);
    // A range between two occurrences has none.
    const empty = new BackfillPlanner({ schedule, from: '2023-05-01T10:00:01Z', to: '2023-05-01T10:59:59.999Z' });
    expect(empty.count()).toBe(0);
    expect([...empty.slots()]).toEqual([]);
    expect(empty.preview(5)).toEqual([]);
    // Milliseconds count: 10:00:00.001 is after the 10:00 occurrence.
    expect(dates({ schedule, from: '2023-05-01T10:00:00.001Z', to: '2023-05-01T11:00:00Z' })).toEqual(['2023-05-01T11:00:00.000Z']);
  });

  it('runs newest first with order desc, same slots, indices in run order', () => {
    const options: BackfillPlannerOptions = {
      schedule: { cron: '*/20 * * * *', timezone: 'Europe/Berlin' },
      from: '2023-03-25T22:00',
      to: '2023-03-26T04:00',
    };
    const asc = all(options);
    const desc = all({ ...options, order: 'desc' });
    expect(desc).toHaveLength(asc.length);
    expect(desc.map((s) => s.index)).toEqual(asc.map((_, i) => i));
    expect(desc.map((s) => [s.logicalDate, s.intervalEnd])).toEqual(asc.map((s) => [s.logicalDate, s.intervalEnd]).reverse());
    expect(desc[0].logicalDate).toBe('2023-03-26T04:00:00.000+02:00');
    expect(new BackfillPlanner({ ...options, order: 'desc' }).order).toBe('desc');
  });

  it('gives each slot the next occurrence as intervalEnd, also past `to`', () => {
    const slots = all({ schedule: { cron: '0 0 1 * *' }, from: '2023-01-01T00:00:00Z', to: '2023-03-15T00:00:00Z' });
    expect(slots.map((s) => [s.logicalDate, s.intervalEnd])).toEqual([
      ['2023-01-01T00:00:00.000Z', '2023-02-01T00:00:00.000Z'],
      ['2023-02-01T00:00:00.000Z', '2023-03-01T00:00:00.000Z'],
      ['2023-03-01T00:00:00.000Z', '2023-04-01T00:00:00.000Z'],
    ]);
    const desc = all({ schedule: { cron: '0 0 1 * *' }, from: '2023-01-01T00:00:00Z', to: '2023-03-15T00:00:00Z', order: 'desc' });
    expect(desc[0].intervalEnd).toBe('2023-04-01T00:00:00.000Z');
  });

  it('writes every date in one ISO format with milliseconds and the zone offset', () => {
    for (const timezone of ['UTC', 'Europe/London', 'America/New_York', 'Asia/Kolkata', 'Asia/Kathmandu', 'Pacific/Chatham']) {
      const slots = all({ schedule: { cron: '7 */5 * * *', timezone }, from: '2023-01-01T00:00Z', to: '2023-12-31T00:00Z' });
      for (const s of slots) {
        expect(s.logicalDate).toMatch(ISO);
        expect(s.intervalEnd).toMatch(ISO);
      }
      // The format is luxon's toISO() of the instant in the zone, and stable under re-parsing.
      for (const s of slots.slice(0, 50)) {
        const dt = DateTime.fromISO(s.logicalDate, { setZone: true });
        expect(dt.toISO()).toBe(s.logicalDate);
        const inZone = DateTime.fromMillis(dt.toMillis(), { zone: timezone }).toISO()!;
        expect(inZone.replace(/\+00:00$/, 'Z')).toBe(s.logicalDate);
      }
    }
    expect(dates({ schedule: { cron: '0 12 1 1 *', timezone: 'Asia/Kathmandu' }, from: '2023-01-01', to: '2023-01-02' })).toEqual([
      '2023-01-01T12:00:00.000+05:45',
    ]);
    // A zero offset is written Z, also for a zone that is at UTC only part of the year.
    expect(dates({ schedule: { cron: '0 12 1 1,7 *', timezone: 'Europe/London' }, from: '2023-01-01', to: '2023-12-31' })).toEqual([
      '2023-01-01T12:00:00.000Z',
      '2023-07-01T12:00:00.000+01:00',
    ]);
  });

  it('accepts Date, luxon DateTime and ISO strings with or without offset as bounds', () => {
    const schedule = { cron: '0 6 * * *', timezone: 'America/New_York' };
    const expected = ['2023-06-01T06:00:00.000-04:00', '2023-06-02T06:00:00.000-04:00'];
    expect(dates({ schedule, from: new Date('2023-06-01T10:00:00Z'), to: new Date('2023-06-02T10:00:00Z') })).toEqual(expected);
    expect(
      dates({
        schedule,
        from: DateTime.fromISO('2023-06-01T06:00', { zone: 'America/New_York' }),
        to: DateTime.fromISO('2023-06-02T12:00:00+02:00'),
      }),
    ).toEqual(expected);
    expect(dates({ schedule, from: '2023-06-01', to: '2023-06-02T06:00' })).toEqual(expected);
    expect(dates({ schedule, from: '2023-06-01T00:00:00-04:00', to: '2023-06-02T10:00:00Z' })).toEqual(expected);
  });

  it('preview(n) gives the first n slots in run order', () => {
    const options: BackfillPlannerOptions = { schedule: { cron: '*/5 * * * *', timezone: 'Europe/Berlin' }, from: '2023-01-01', to: '2023-01-03' };
    const planner = new BackfillPlanner(options);
    const slots = [...planner.slots()];
    expect(planner.preview(10)).toEqual(slots.slice(0, 10));
    expect(planner.preview(0)).toEqual([]);
    expect(planner.preview(100_000)).toEqual(slots);
    const desc = new BackfillPlanner({ ...options, order: 'desc' });
    expect(desc.preview(3).map((s) => s.logicalDate)).toEqual([
      '2023-01-03T00:00:00.000+01:00',
      '2023-01-02T23:55:00.000+01:00',
      '2023-01-02T23:50:00.000+01:00',
    ]);
  });

  it('preview costs the same for a day and for a thousand years', () => {
    const time = (to: string, order: 'asc' | 'desc'): number => {
      const planner = new BackfillPlanner({ schedule: { cron: '*/5 * * * *', timezone: 'America/New_York' }, from: '2000-01-01', to, order });
      const t0 = performance.now();
      const got = planner.preview(100);
      const ms = performance.now() - t0;
      expect(got).toHaveLength(100);
      return ms;
    };
    time('2000-01-02', 'asc'); // warm up
    for (const order of ['asc', 'desc'] as const) {
      expect(time('2999-12-31', order)).toBeLessThan(50);
    }
    // The slots of a huge range are made lazily, too.
    const huge = new BackfillPlanner({ schedule: { cron: '* * * * * *' }, from: '0001-01-02T00:00:00Z', to: '9999-12-01T00:00:00Z' });
    let n = 0;
    for (const s of huge.slots()) {
      if (++n === 3) {
        expect(s.logicalDate).toBe('0001-01-02T00:00:02.000Z');
        break;
      }
    }
  });

  it('count() equals the number of slots', () => {
    const cases: BackfillPlannerOptions[] = [
      { schedule: { cron: '*/7 3-5,22 * * *', timezone: 'Europe/Berlin' }, from: '2023-01-01', to: '2023-12-31' },
      { schedule: { cron: '0 0 L * *', timezone: 'America/Santiago' }, from: '2020-01-01', to: '2024-06-30' },
      { schedule: { cron: '30 2 * * 1-5', timezone: 'America/New_York' }, from: '2022-12-01', to: '2023-12-01' },
      { schedule: { cron: '*/15 * * * *', timezone: 'Australia/Lord_Howe' }, from: '2023-03-25', to: '2023-04-05' },
      { schedule: { cron: '*/10 * * * * *', timezone: 'Pacific/Chatham' }, from: '2023-09-23T12:00', to: '2023-09-24T12:00' },
      { schedule: { every: 'PT15M', timezone: 'Europe/Berlin' }, from: '2023-10-28', to: '2023-10-30' },
      { schedule: { every: 'P1D', timezone: 'America/Santiago' }, from: '2023-01-01', to: '2023-12-31' },
      { schedule: { every: 'P1M', timezone: 'UTC' }, from: '2020-01-31', to: '2023-12-31' },
    ];
    for (const options of cases) {
      const planner = new BackfillPlanner(options);
      expect(planner.count()).toBe([...planner.slots()].length);
      expect(new BackfillPlanner({ ...options, order: 'desc' }).count()).toBe(planner.count());
    }
  });

  it('counts ten years of 5-minute slots in well under a second', () => {
    for (const timezone of ['UTC', 'Europe/Berlin']) {
      const planner = new BackfillPlanner({ schedule: { cron: '*/5 * * * *', timezone }, from: '2014-01-01', to: '2023-12-31T23:59:59' });
      const t0 = performance.now();
      const n = planner.count();
      const ms = performance.now() - t0;
      // 3652 days of 288 slots; Berlin loses 12 a year (spring forward), never doubles (fall back).
      expect(n).toBe(timezone === 'UTC' ? 3652 * 288 : 3652 * 288 - 10 * 12);
      expect(ms).toBeLessThan(1000);
    }
  });

  it('every P1D across DST stays at local midnight', () => {
    const got = dates({ schedule: { every: 'P1D', timezone: 'Europe/Berlin' }, from: '2023-03-25', to: '2023-03-27' });
    expect(got).toEqual(['2023-03-25T00:00:00.000+01:00', '2023-03-26T00:00:00.000+01:00', '2023-03-27T00:00:00.000+02:00']);
    const autumn = dates({ schedule: { every: 'P1D', timezone: 'Europe/Berlin' }, from: '2023-10-28', to: '2023-10-30' });
    expect(autumn).toEqual(['2023-10-28T00:00:00.000+02:00', '2023-10-29T00:00:00.000+02:00', '2023-10-30T00:00:00.000+01:00']);
    const year = all({ schedule: { every: 'P1D', timezone: 'America/New_York' }, from: '2023-01-01', to: '2023-12-31' });
    expect(year).toHaveLength(365);
    for (const s of year) expect(s.logicalDate.slice(10, 23)).toBe('T00:00:00.000');
  });

  it('every PT15M across a fall-back yields unique instants 15 minutes apart', () => {
    const planner = new BackfillPlanner({ schedule: { every: 'PT15M', timezone: 'Europe/Berlin' }, from: '2023-10-29T01:00', to: '2023-10-29T04:00' });
    const slots = [...planner.slots()];
    const instants = slots.map((s) => Date.parse(s.logicalDate));
    expect(new Set(instants).size).toBe(instants.length);
    for (let i = 1; i < instants.length; i++) expect(instants[i] - instants[i - 1]).toBe(15 * 60_000);
    // 01:00 CEST to 04:00 CET is four hours: 17 slots, the repeated hour written with both offsets.
    expect(planner.count()).toBe(17);
    expect(slots.map((s) => s.logicalDate)).toContain('2023-10-29T02:30:00.000+02:00');
    expect(slots.map((s) => s.logicalDate)).toContain('2023-10-29T02:30:00.000+01:00');
  });

  it('anchors every at from: from, from + every, from + 2 every ...', () => {
    expect(dates({ schedule: { every: 'PT90M' }, from: '2023-01-01T00:10:00Z', to: '2023-01-01T04:40:00Z' })).toEqual([
      '2023-01-01T00:10:00.000Z',
      '2023-01-01T01:40:00.000Z',
      '2023-01-01T03:10:00.000Z',
      '2023-01-01T04:40:00.000Z',
    ]);
    // Months are counted from the anchor, so the 31st comes back after a short month.
    expect(dates({ schedule: { every: 'P1M' }, from: '2023-01-31T00:00:00Z', to: '2023-05-31T00:00:00Z' })).toEqual([
      '2023-01-31T00:00:00.000Z',
      '2023-02-28T00:00:00.000Z',
      '2023-03-31T00:00:00.000Z',
      '2023-04-30T00:00:00.000Z',
      '2023-05-31T00:00:00.000Z',
    ]);
    expect(dates({ schedule: { every: 'P1W' }, from: '2023-01-02', to: '2023-01-20' })).toHaveLength(3);
    const desc = all({ schedule: { every: 'PT90M' }, from: '2023-01-01T00:10:00Z', to: '2023-01-01T04:40:00Z', order: 'desc' });
    expect(desc[0]).toEqual({ index: 0, logicalDate: '2023-01-01T04:40:00.000Z', intervalEnd: '2023-01-01T06:10:00.000Z' });
  });

  it('understands croner syntax: nicknames, seconds, names, L, W, #', () => {
    const range = { from: '2024-01-01T00:00:00Z', to: '2024-12-31T23:59:59Z' };
    expect(new BackfillPlanner({ schedule: { cron: '@yearly' }, ...range }).count()).toBe(1);
    expect(new BackfillPlanner({ schedule: { cron: '@annually' }, ...range }).count()).toBe(1);
    expect(new BackfillPlanner({ schedule: { cron: '@monthly' }, ...range }).count()).toBe(12);
    expect(new BackfillPlanner({ schedule: { cron: '@weekly' }, ...range }).count()).toBe(52);
    expect(new BackfillPlanner({ schedule: { cron: '@daily' }, ...range }).count()).toBe(366);
    expect(new BackfillPlanner({ schedule: { cron: '@midnight' }, ...range }).count()).toBe(366);
    expect(new BackfillPlanner({ schedule: { cron: '@hourly' }, ...range }).count()).toBe(366 * 24);
    expect(new BackfillPlanner({ schedule: { cron: '*/15 * * * * *' }, from: '2024-01-01T00:00:00Z', to: '2024-01-01T00:01:00Z' }).count()).toBe(5);
    expect(dates({ schedule: { cron: '0 0 L 2 *' }, ...range })).toEqual(['2024-02-29T00:00:00.000Z']);
    expect(dates({ schedule: { cron: '0 0 * 3 FRI#2' }, ...range })).toEqual(['2024-03-08T00:00:00.000Z']);
    expect(dates({ schedule: { cron: '0 0 * 3 5L' }, ...range })).toEqual(['2024-03-29T00:00:00.000Z']);
    // 1 June 2024 is a Saturday: the nearest weekday is Monday the 3rd.
    expect(dates({ schedule: { cron: '0 0 1W JUN *' }, ...range })).toEqual(['2024-06-03T00:00:00.000Z']);
    expect(dates({ schedule: { cron: '0 0 LW 6 *' }, ...range })).toEqual(['2024-06-28T00:00:00.000Z']);
    // Day of month OR day of week (croner's default), AND with a '+'.
    expect(new BackfillPlanner({ schedule: { cron: '0 0 13 * FRI' }, ...range }).count()).toBe(12 + 52 - 2);
    expect(dates({ schedule: { cron: '0 0 13 * +FRI' }, ...range })).toEqual(['2024-09-13T00:00:00.000Z', '2024-12-13T00:00:00.000Z']);
  });

  it('walks sparse schedules quickly', () => {
    // Friday the 29th of February: a handful in a thousand years.
    const planner = new BackfillPlanner({ schedule: { cron: '0 0 29 2 +FRI' }, from: '2000-01-01T00:00:00Z', to: '2100-01-01T00:00:00Z' });
    expect(planner.preview(10).map((s) => s.logicalDate)).toEqual([
      '2008-02-29T00:00:00.000Z',
      '2036-02-29T00:00:00.000Z',
      '2064-02-29T00:00:00.000Z',
      '2092-02-29T00:00:00.000Z',
    ]);
    expect(planner.preview(4)[3].intervalEnd).toBe('2104-02-29T00:00:00.000Z');
  });
});

describe('BackfillPlanner: validation', () => {
  const base = { from: '2023-01-01T00:00:00Z', to: '2023-01-02T00:00:00Z' };

  it('rejects a wrong cron expression, naming schedule.cron', () => {
    for (const cron of ['61 * * * *', '* * *', '0 0 31 2 *', 'every day', '', '0 0 1 1 * * 2024', '@reboot']) {
      const e = validationError(() => new BackfillPlanner({ schedule: { cron }, ...base }));
      expect(e.message).toMatch(/^schedule\.cron: /);
      expect(e.issues?.[0].path).toEqual(['schedule', 'cron']);
    }
  });

  it('rejects an unknown time zone, naming schedule.timezone', () => {
    for (const timezone of ['Mars/Olympus', '+02:00', 'CEST', '']) {
      const e = validationError(() => new BackfillPlanner({ schedule: { cron: '@daily', timezone }, ...base }));
      expect(e.message).toMatch(/^schedule\.timezone: /);
      expect(e.issues?.[0].path).toEqual(['schedule', 'timezone']);
    }
  });

  it('rejects a zero, negative or unparsable every, naming schedule.every', () => {
    for (const every of ['PT0S', 'P0D', 'P', '-P1D', 'P-1D', 'PT-15M', 'daily', '15m', 'P1.5D', 'PT0.0001S']) {
      const e = validationError(() => new BackfillPlanner({ schedule: { every }, ...base }));
      expect(e.message).toMatch(/^schedule\.every: /);
      expect(e.issues?.[0].path).toEqual(['schedule', 'every']);
    }
  });

  it('rejects a schedule that is neither or both', () => {
    const both = validationError(() => new BackfillPlanner({ schedule: { cron: '@daily', every: 'P1D' } as never, ...base }));
    expect(both.issues?.[0].path).toEqual(['schedule', 'every']);
    const neither = validationError(() => new BackfillPlanner({ schedule: {} as never, ...base }));
    expect(neither.issues?.[0].path).toEqual(['schedule', 'cron']);
    const missing = validationError(() => new BackfillPlanner({ ...base } as never));
    expect(missing.issues?.[0].path[0]).toBe('schedule');
  });

  it('rejects unparsable dates, naming from or to', () => {
    const schedule = { cron: '@daily' };
    const cases: [unknown, unknown, string][] = [
      ['yesterday', base.to, 'from'],
      [base.from, '2023-13-01', 'to'],
      [new Date(Number.NaN), base.to, 'from'],
      [base.from, DateTime.invalid('broken'), 'to'],
      [base.from, 1_700_000_000_000, 'to'],
      [undefined, base.to, 'from'],
    ];
    for (const [from, to, field] of cases) {
      const e = validationError(() => new BackfillPlanner({ schedule, from, to } as BackfillPlannerOptions));
      expect(e.message.startsWith(`${field}: `)).toBe(true);
      expect(e.issues?.[0].path).toEqual([field]);
    }
  });

  it('rejects from after to', () => {
    const e = validationError(() => new BackfillPlanner({ schedule: { cron: '@daily' }, from: '2023-02-01', to: '2023-01-01' }));
    expect(e.message).toMatch(/^from: must not be after to/);
    expect(e.issues?.[0].path).toEqual(['from']);
  });

  it('rejects a bad order and a bad preview size', () => {
    const e = validationError(() => new BackfillPlanner({ schedule: { cron: '@daily' }, ...base, order: 'newest' as never }));
    expect(e.issues?.[0].path).toEqual(['order']);
    const planner = new BackfillPlanner({ schedule: { cron: '@daily' }, ...base });
    for (const n of [-1, 1.5, Number.NaN]) {
      expect(validationError(() => planner.preview(n)).issues?.[0].path).toEqual(['n']);
    }
  });

  it('lists every problem in issues', () => {
    const e = validationError(() => validatePlannerOptions({ schedule: { cron: 'nope', timezone: 'Nowhere/City' }, from: 'x', to: 'y', order: 'z' }));
    expect(e.issues?.map((i) => i.path.join('.'))).toEqual(['schedule.timezone', 'from', 'to', 'order']);
  });

  it('has zod schemas that check the same', () => {
    expect(plannerOptionsSchema.safeParse({ schedule: { cron: '@daily' }, ...base }).success).toBe(true);
    const bad = plannerOptionsSchema.safeParse({ schedule: { cron: '61 * * * *' }, from: '2023-02-01', to: '2023-01-01' });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues.map((i) => i.path.join('.'))).toEqual(['schedule.cron', 'from']);
    expect(scheduleSchema.safeParse({ every: 'P1D', timezone: 'Europe/Berlin' }).success).toBe(true);
    expect(scheduleSchema.safeParse({ every: 'P0D' }).success).toBe(false);
    expect(scheduleSchema.safeParse({ cron: '@daily', every: 'P1D' }).success).toBe(false);
    // The shape converts to JSON Schema (for OpenAPI).
    expect(z.toJSONSchema(scheduleSchema)).toMatchObject({ anyOf: [{ required: ['cron'] }, { required: ['every'] }] });
  });

  it('parseSchedule expands a schedule and defaults the zone to UTC', () => {
    const cron = parseSchedule({ cron: '0 9,17 * * MON-FRI' });
    expect(cron.kind).toBe('cron');
    expect(cron.timezone).toBe('UTC');
    if (cron.kind === 'cron') {
      expect([...cron.secondsOfDay]).toEqual([9 * 3600, 17 * 3600]);
      // June 2024 starts on a Saturday: weekdays are 3-7, 10-14, ...
      expect(cron.dayMask(2024, 6) & 0b1111111).toBe(0b1111100);
    }
    const every = parseSchedule({ every: 'P1Y2M3W4DT5H6M7S', timezone: 'europe/berlin' });
    expect(every).toMatchObject({ kind: 'every', timezone: 'Europe/Berlin', months: 14, days: 25, milliseconds: (5 * 3600 + 6 * 60 + 7) * 1000 });
  });
});

describe('formatLogicalDate', () => {
  it('writes an instant like a slot', () => {
    expect(formatLogicalDate('2023-03-26T01:00:00Z', 'Europe/Berlin')).toBe('2023-03-26T03:00:00.000+02:00');
    expect(formatLogicalDate(new Date('2023-03-26T01:00:00Z'))).toBe('2023-03-26T01:00:00.000Z');
    expect(formatLogicalDate('2023-03-26T02:30', 'Europe/Berlin')).toBe('2023-03-26T03:30:00.000+02:00');
    expect(() => formatLogicalDate('2023-03-26', 'Nowhere/City')).toThrow(TaskControlError);
  });
});

import { describe, it, expect } from 'vitest';
import { BackfillPlanner, type BackfillPlannerOptions, type Slot } from '../../src/backfill/planner.js';

// The DST policy (RFC 5545, Temporal 'compatible'):
// - a wall time that does not exist (spring forward) moves later by the length of the gap;
// - a wall time that occurs twice (fall back) takes its earlier instant;
// - an instant is yielded once even when two wall times map to it.

function slots(cron: string, timezone: string, from: string, to: string, order: 'asc' | 'desc' = 'asc'): Slot[] {
  return [...new BackfillPlanner({ schedule: { cron, timezone }, from, to, order }).slots()];
}

function dates(cron: string, timezone: string, from: string, to: string): string[] {
  return slots(cron, timezone, from, to).map((s) => s.logicalDate);
}

function every(every: string, timezone: string, from: string, to: string): string[] {
  return [...new BackfillPlanner({ schedule: { every, timezone }, from, to }).slots()].map((s) => s.logicalDate);
}

/** Instants strictly increase, each intervalEnd is the next slot, count agrees, desc mirrors asc. */
function expectConsistent(options: BackfillPlannerOptions): Slot[] {
  const planner = new BackfillPlanner(options);
  const asc = [...planner.slots()];
  const instants = asc.map((s) => Date.parse(s.logicalDate));
  for (let i = 1; i < instants.length; i++) expect(instants[i]).toBeGreaterThan(instants[i - 1]);
  for (let i = 0; i + 1 < asc.length; i++) expect(asc[i].intervalEnd).toBe(asc[i + 1].logicalDate);
  expect(planner.count()).toBe(asc.length);
  const desc = [...new BackfillPlanner({ ...options, order: 'desc' }).slots()];
  expect(desc.map((s) => s.logicalDate)).toEqual(asc.map((s) => s.logicalDate).reverse());
  expect(desc.map((s) => s.intervalEnd)).toEqual(asc.map((s) => s.intervalEnd).reverse());
  return asc;
}

describe('DST: Europe/Berlin (CET/CEST, changes at 02:00/03:00)', () => {
  it('spring forward: 02:30 does not exist and moves to 03:30 CEST', () => {
    expect(dates('30 2 * * *', 'Europe/Berlin', '2023-03-25', '2023-03-27T12:00')).toEqual([
      '2023-03-25T02:30:00.000+01:00',
      '2023-03-26T03:30:00.000+02:00',
      '2023-03-27T02:30:00.000+02:00',
    ]);
  });

  it('spring forward: an hourly schedule has 23 slots that day, 02:00 and 03:00 being one instant', () => {
    const got = dates('0 * * * *', 'Europe/Berlin', '2023-03-26T00:00', '2023-03-26T23:59');
    expect(got).toHaveLength(23);
    expect(got.slice(0, 4)).toEqual([
      '2023-03-26T00:00:00.000+01:00',
      '2023-03-26T01:00:00.000+01:00',
      '2023-03-26T03:00:00.000+02:00',
      '2023-03-26T04:00:00.000+02:00',
    ]);
  });

  it('spring forward: every 15 minutes skips the missing hour without duplicates', () => {
    const got = expectConsistent({ schedule: { cron: '*/15 * * * *', timezone: 'Europe/Berlin' }, from: '2023-03-26T01:30', to: '2023-03-26T03:30' });
    expect(got.map((s) => s.logicalDate)).toEqual([
      '2023-03-26T01:30:00.000+01:00',
      '2023-03-26T01:45:00.000+01:00',
      '2023-03-26T03:00:00.000+02:00',
      '2023-03-26T03:15:00.000+02:00',
      '2023-03-26T03:30:00.000+02:00',
    ]);
    expect(got[1].intervalEnd).toBe('2023-03-26T03:00:00.000+02:00');
  });

  it('spring forward: a wall time and its shifted twin are one slot', () => {
    // 02:00 and 02:10 move to 03:00 and 03:10 CEST, the same instants as the real 03:00 and 03:10.
    expect(dates('0,10 2,3 * * *', 'Europe/Berlin', '2023-03-26T00:00', '2023-03-26T23:00')).toEqual([
      '2023-03-26T03:00:00.000+02:00',
      '2023-03-26T03:10:00.000+02:00',
    ]);
  });

  it('fall back: 02:30 occurs twice and runs once, at its first instant (CEST)', () => {
    expect(dates('30 2 * * *', 'Europe/Berlin', '2023-10-28', '2023-10-30')).toEqual([
      '2023-10-28T02:30:00.000+02:00',
      '2023-10-29T02:30:00.000+02:00',
    ]);
  });

  it('fall back: an hourly schedule has 24 slots, the repeated hour once', () => {
    const got = expectConsistent({ schedule: { cron: '0 * * * *', timezone: 'Europe/Berlin' }, from: '2023-10-29T00:00', to: '2023-10-29T23:59' });
    expect(got).toHaveLength(24);
    expect(got.slice(1, 4).map((s) => s.logicalDate)).toEqual([
      '2023-10-29T01:00:00.000+02:00',
      '2023-10-29T02:00:00.000+02:00',
      '2023-10-29T03:00:00.000+01:00',
    ]);
  });

  it('fall back: a range starting in the second 02:xx does not repeat the first', () => {
    // 02:30+01:00 is after every 02:xx+02:00; the first slot is 03:00 CET.
    expect(dates('*/30 * * * *', 'Europe/Berlin', '2023-10-29T02:30:00+01:00', '2023-10-29T03:30:00+01:00')).toEqual([
      '2023-10-29T03:00:00.000+01:00',
      '2023-10-29T03:30:00.000+01:00',
    ]);
    // Going backwards from the second 02:45, the 02:xx slots are those of the first pass.
    expect(slots('*/30 * * * *', 'Europe/Berlin', '2023-10-29T01:00', '2023-10-29T02:45:00+01:00', 'desc').map((s) => s.logicalDate)).toEqual([
      '2023-10-29T02:30:00.000+02:00',
      '2023-10-29T02:00:00.000+02:00',
      '2023-10-29T01:30:00.000+02:00',
      '2023-10-29T01:00:00.000+02:00',
    ]);
  });

  it('a bound given as a wall time follows the policy too', () => {
    const planner = new BackfillPlanner({ schedule: { cron: '@hourly', timezone: 'Europe/Berlin' }, from: '2023-03-26T02:30', to: '2023-10-29T02:30' });
    expect(planner.from).toBe('2023-03-26T03:30:00.000+02:00');
    expect(planner.to).toBe('2023-10-29T02:30:00.000+02:00');
  });
});

describe('DST: America/New_York (changes at 02:00)', () => {
  it('spring forward moves 02:30 to 03:30 EDT; fall back keeps the first 01:30 (EDT)', () => {
    expect(dates('30 2 * * *', 'America/New_York', '2023-03-11', '2023-03-13')).toEqual([
      '2023-03-11T02:30:00.000-05:00',
      '2023-03-12T03:30:00.000-04:00',
    ]);
    expect(dates('30 1 * * *', 'America/New_York', '2023-11-04', '2023-11-06')).toEqual([
      '2023-11-04T01:30:00.000-04:00',
      '2023-11-05T01:30:00.000-04:00',
    ]);
  });

  it('every 10 minutes over both changes of 2023 stays unique and ordered', () => {
    const spring = expectConsistent({ schedule: { cron: '*/10 * * * *', timezone: 'America/New_York' }, from: '2023-03-11T12:00', to: '2023-03-13T12:00' });
    expect(spring).toHaveLength(48 * 6 + 1 - 6);
    const autumn = expectConsistent({ schedule: { cron: '*/10 * * * *', timezone: 'America/New_York' }, from: '2023-11-04T12:00', to: '2023-11-06T12:00' });
    expect(autumn).toHaveLength(48 * 6 + 1);
  });
});

describe('DST: Australia/Lord_Howe (30-minute shift at 02:00)', () => {
  it('spring forward (1 Oct 2023): 02:15 does not exist and moves 30 minutes later', () => {
    expect(dates('15 2 * * *', 'Australia/Lord_Howe', '2023-09-30', '2023-10-02')).toEqual([
      '2023-09-30T02:15:00.000+10:30',
      '2023-10-01T02:45:00.000+11:00',
    ]);
    expect(dates('*/15 * * * *', 'Australia/Lord_Howe', '2023-10-01T01:30', '2023-10-01T03:00')).toEqual([
      '2023-10-01T01:30:00.000+10:30',
      '2023-10-01T01:45:00.000+10:30',
      '2023-10-01T02:30:00.000+11:00',
      '2023-10-01T02:45:00.000+11:00',
      '2023-10-01T03:00:00.000+11:00',
    ]);
  });

  it('spring forward: a moved time that lands after a later real time is sorted in', () => {
    // 02:20 does not exist and moves to 02:50; 02:45 is real. Wall order 02:20, 02:45; run order 02:45, 02:50.
    const got = expectConsistent({ schedule: { cron: '20,45 2 * * *', timezone: 'Australia/Lord_Howe' }, from: '2023-09-30T12:00', to: '2023-10-02T00:00' });
    expect(got.map((s) => s.logicalDate)).toEqual(['2023-10-01T02:45:00.000+11:00', '2023-10-01T02:50:00.000+11:00']);
  });

  it('fall back (2 Apr 2023): 01:30-02:00 repeats, the first (+11:00) is kept', () => {
    expect(dates('45 1 * * *', 'Australia/Lord_Howe', '2023-04-01', '2023-04-03')).toEqual([
      '2023-04-01T01:45:00.000+11:00',
      '2023-04-02T01:45:00.000+11:00',
    ]);
    expect(dates('*/15 * * * *', 'Australia/Lord_Howe', '2023-04-02T01:00', '2023-04-02T02:15')).toEqual([
      '2023-04-02T01:00:00.000+11:00',
      '2023-04-02T01:15:00.000+11:00',
      '2023-04-02T01:30:00.000+11:00',
      '2023-04-02T01:45:00.000+11:00',
      '2023-04-02T02:00:00.000+10:30',
      '2023-04-02T02:15:00.000+10:30',
    ]);
  });
});

describe('DST: Asia/Shanghai (no DST)', () => {
  it('every slot is +08:00 and a daily schedule has one slot per day', () => {
    const got = expectConsistent({ schedule: { cron: '30 2 * * *', timezone: 'Asia/Shanghai' }, from: '2023-01-01', to: '2023-12-31T23:59' });
    expect(got).toHaveLength(365);
    for (const s of got) expect(s.logicalDate.endsWith('T02:30:00.000+08:00')).toBe(true);
  });
});

describe('DST: Pacific/Chatham (+12:45/+13:45, changes at 02:45/03:45)', () => {
  it('spring forward (24 Sep 2023): 03:00 moves to 04:00 +13:45', () => {
    expect(dates('0 3 * * *', 'Pacific/Chatham', '2023-09-23', '2023-09-25')).toEqual([
      '2023-09-23T03:00:00.000+12:45',
      '2023-09-24T04:00:00.000+13:45',
    ]);
  });

  it('fall back (2 Apr 2023): 03:00 occurs twice, the first (+13:45) is kept', () => {
    expect(dates('0 3 * * *', 'Pacific/Chatham', '2023-04-01', '2023-04-03')).toEqual([
      '2023-04-01T03:00:00.000+13:45',
      '2023-04-02T03:00:00.000+13:45',
    ]);
    const got = expectConsistent({ schedule: { cron: '*/5 * * * *', timezone: 'Pacific/Chatham' }, from: '2023-04-02T02:00', to: '2023-04-02T05:00' });
    expect(got).toHaveLength(37);
  });
});

describe('DST: America/Santiago (changes at midnight)', () => {
  it('spring forward (3 Sep 2023): midnight does not exist, the day starts at 01:00', () => {
    expect(dates('0 0 * * *', 'America/Santiago', '2023-09-01', '2023-09-05')).toEqual([
      '2023-09-01T00:00:00.000-04:00',
      '2023-09-02T00:00:00.000-04:00',
      '2023-09-03T01:00:00.000-03:00',
      '2023-09-04T00:00:00.000-03:00',
      '2023-09-05T00:00:00.000-03:00',
    ]);
    expect(every('P1D', 'America/Santiago', '2023-09-01', '2023-09-05')).toEqual([
      '2023-09-01T00:00:00.000-04:00',
      '2023-09-02T00:00:00.000-04:00',
      '2023-09-03T01:00:00.000-03:00',
      '2023-09-04T00:00:00.000-03:00',
      '2023-09-05T00:00:00.000-03:00',
    ]);
  });

  it('fall back (2 Apr 2023): 23:00-24:00 of 1 April repeats, the first (-03:00) is kept', () => {
    expect(dates('30 23 * * *', 'America/Santiago', '2023-03-31', '2023-04-03')).toEqual([
      '2023-03-31T23:30:00.000-03:00',
      '2023-04-01T23:30:00.000-03:00',
      '2023-04-02T23:30:00.000-04:00',
    ]);
    expect(dates('0 0 * * *', 'America/Santiago', '2023-04-01', '2023-04-03')).toEqual([
      '2023-04-01T00:00:00.000-03:00',
      '2023-04-02T00:00:00.000-04:00',
      '2023-04-03T00:00:00.000-04:00',
    ]);
  });
});

describe('DST: a daily schedule has one slot per local day, on DST days too', () => {
  const zones = ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Shanghai', 'Pacific/Chatham', 'America/Santiago', 'Europe/London', 'Asia/Tehran', 'America/Havana'];
  const times = ['0 0', '30 0', '0 1', '30 1', '0 2', '30 2', '45 2', '0 3', '30 3', '30 23'];
  it.each(zones)('%s, for every time of day around the changes, 2022-2024', (timezone) => {
    for (const time of times) {
      const planner = new BackfillPlanner({ schedule: { cron: `${time} * * *`, timezone }, from: '2022-01-01', to: '2024-12-31T23:59:59' });
      const got = [...planner.slots()];
      expect(got).toHaveLength(365 + 365 + 366);
      expect(planner.count()).toBe(got.length);
      const days = got.map((s) => s.logicalDate.slice(0, 10));
      const expected = got.map((_, i) => new Date(Date.UTC(2022, 0, 1 + i)).toISOString().slice(0, 10));
      expect(days).toEqual(expected);
    }
  });

  it('except on a day that does not exist: Pacific/Apia skipped 30 December 2011', () => {
    // 12:00 on 30 Dec moves 24 hours later, onto 12:00 on 31 Dec, which is yielded once.
    expect(dates('0 12 * * *', 'Pacific/Apia', '2011-12-28', '2012-01-01')).toEqual([
      '2011-12-28T12:00:00.000-10:00',
      '2011-12-29T12:00:00.000-10:00',
      '2011-12-31T12:00:00.000+14:00',
    ]);
  });
});

describe('DST: every (ISO durations)', () => {
  it('P1D keeps the wall time; a missing wall time moves later by the gap', () => {
    expect(every('P1D', 'Europe/Berlin', '2023-03-25T02:30', '2023-03-27T12:00')).toEqual([
      '2023-03-25T02:30:00.000+01:00',
      '2023-03-26T03:30:00.000+02:00',
      '2023-03-27T02:30:00.000+02:00',
    ]);
    expect(every('P1D', 'Europe/Berlin', '2023-10-28T02:30', '2023-10-30T12:00')).toEqual([
      '2023-10-28T02:30:00.000+02:00',
      '2023-10-29T02:30:00.000+02:00',
      '2023-10-30T02:30:00.000+01:00',
    ]);
  });

  it('PT1H is exact time: 25 slots on a fall-back day, 23 on a spring-forward day', () => {
    expect(every('PT1H', 'Europe/Berlin', '2023-10-29T00:00', '2023-10-29T23:59')).toHaveLength(25);
    expect(every('PT1H', 'Europe/Berlin', '2023-03-26T00:00', '2023-03-26T23:59')).toHaveLength(23);
  });

  it('PT15M across the Lord Howe fall back: unique, 15 minutes apart', () => {
    const got = every('PT15M', 'Australia/Lord_Howe', '2023-04-02T01:00', '2023-04-02T03:00').map((d) => Date.parse(d));
    expect(got).toHaveLength(11);
    for (let i = 1; i < got.length; i++) expect(got[i] - got[i - 1]).toBe(15 * 60_000);
  });
});

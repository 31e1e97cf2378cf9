/**
 * Benchmark of the BackfillPlanner against croner, for `*\/5 * * * *`.
 *
 * Run it alone with `npx tsx bench/planner.ts`, or call `benchPlanner()` from a bench runner.
 */
import { pathToFileURL } from 'node:url';
import { Cron } from 'croner';
import { BackfillPlanner } from '../src/backfill/planner.js';

/** One measurement. */
export interface PlannerBenchRow {
  /** What was measured. */
  name: string;
  /** Slots (or calls) made. */
  ops: number;
  /** Wall time in milliseconds. */
  ms: number;
  /** Slots (or calls) per second. */
  opsPerSec: number;
  /** For planner rows: how many times croner's rate for the same zone. */
  ratio?: number;
}

const EXPR = '*/5 * * * *';
const FROM = '2014-01-01T00:00:00';
const TO = '2023-12-31T23:59:59';

function row(name: string, ops: number, ms: number, ratio?: number): PlannerBenchRow {
  const r: PlannerBenchRow = { name, ops, ms: Math.round(ms * 100) / 100, opsPerSec: Math.round((ops / ms) * 1000) };
  if (ratio !== undefined) r.ratio = Math.round(ratio * 10) / 10;
  return r;
}

/** Iterate every slot of ten years of 5-minute slots, reading each logical date. */
function plannerRate(timezone: string): { ops: number; ms: number } {
  const warm = new BackfillPlanner({ schedule: { cron: EXPR, timezone }, from: FROM, to: '2014-03-01' });
  for (const _ of warm.slots());
  const planner = new BackfillPlanner({ schedule: { cron: EXPR, timezone }, from: FROM, to: TO });
  let ops = 0;
  let chars = 0;
  const t0 = performance.now();
  for (const slot of planner.slots()) {
    ops++;
    chars += slot.logicalDate.length;
  }
  const ms = performance.now() - t0;
  if (chars === 0) throw new Error('no slots');
  return { ops, ms };
}

/** Walk croner's nextRun() for `n` runs. */
function cronerRate(options: { timezone?: string; utcOffset?: number }, n: number): { ops: number; ms: number } {
  const cron = new Cron(EXPR, options);
  let prev = new Date('2014-01-01T00:00:00Z');
  for (let i = 0; i < 200; i++) prev = cron.nextRun(prev) ?? prev;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const next = cron.nextRun(prev);
    if (!next) break;
    prev = next;
  }
  return { ops: n, ms: performance.now() - t0 };
}

/** Time `count()` for ten years of 5-minute slots (the first call includes reading the zone's offsets). */
function countTime(timezone: string): { ops: number; ms: number } {
  const planner = new BackfillPlanner({ schedule: { cron: EXPR, timezone }, from: FROM, to: TO });
  const t0 = performance.now();
  const n = planner.count();
  return { ops: n, ms: performance.now() - t0 };
}

/** `preview(100)` on a thousand-year range. */
function previewTime(timezone: string): { ops: number; ms: number } {
  const planner = new BackfillPlanner({ schedule: { cron: EXPR, timezone }, from: '2000-01-01', to: '2999-12-31', order: 'desc' });
  const t0 = performance.now();
  const n = planner.preview(100).length;
  return { ops: n, ms: performance.now() - t0 };
}

/**
 * Measure the planner and croner for `*\/5 * * * *`: slots per second over ten years
 * (about 1.05 million slots) in UTC, Europe/Berlin and America/New_York, croner's `nextRun`
 * rate for the same expression (UTC as `utcOffset: 0`; with an IANA zone croner is slow, so a
 * few thousand runs only), the ratio planner/croner, and the time of `count()` for ten years.
 */
export async function benchPlanner(): Promise<PlannerBenchRow[]> {
  const rows: PlannerBenchRow[] = [];
  const countUtc = countTime('UTC');
  const countBerlin = countTime('Europe/Berlin');
  const cronUtc = cronerRate({ utcOffset: 0 }, 20_000);
  const cronUtcZone = cronerRate({ timezone: 'UTC' }, 2_000);
  const cronBerlin = cronerRate({ timezone: 'Europe/Berlin' }, 2_000);
  const cronNy = cronerRate({ timezone: 'America/New_York' }, 2_000);
  const rate = (x: { ops: number; ms: number }): number => x.ops / x.ms;
  for (const [zone, croner] of [
    ['UTC', cronUtc],
    ['Europe/Berlin', cronBerlin],
    ['America/New_York', cronNy],
  ] as const) {
    const p = plannerRate(zone);
    rows.push(row(`planner slots() ${EXPR} ${zone}, 10 years`, p.ops, p.ms, rate(p) / rate(croner)));
  }
  rows.push(row(`croner nextRun() ${EXPR} utcOffset 0`, cronUtc.ops, cronUtc.ms));
  rows.push(row(`croner nextRun() ${EXPR} timezone UTC`, cronUtcZone.ops, cronUtcZone.ms));
  rows.push(row(`croner nextRun() ${EXPR} Europe/Berlin`, cronBerlin.ops, cronBerlin.ms));
  rows.push(row(`croner nextRun() ${EXPR} America/New_York`, cronNy.ops, cronNy.ms));
  rows.push(row(`planner count() ${EXPR} UTC, 10 years (first call)`, countUtc.ops, countUtc.ms));
  rows.push(row(`planner count() ${EXPR} Europe/Berlin, 10 years (first call)`, countBerlin.ops, countBerlin.ms));
  const again = countTime('Europe/Berlin');
  rows.push(row(`planner count() ${EXPR} Europe/Berlin, 10 years (zone cached)`, again.ops, again.ms));
  const preview = previewTime('Europe/Berlin');
  rows.push(row('planner preview(100) desc, 1000-year range, Europe/Berlin', preview.ops, preview.ms));
  return rows;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await benchPlanner();
  console.table(rows);
}

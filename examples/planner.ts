// docs/backfill-planner.md, runnable: npx tsx examples/planner.ts
// The planner is pure (no controller, no store, no clock): it only turns a schedule and a range
// into slots. The outputs the doc shows are checked below.
import assert from 'node:assert/strict';
import { BackfillPlanner, type Slot as PlannerSlot } from '../src/index.js';

const planner = new BackfillPlanner({
  schedule: { cron: '0 2 * * *', timezone: 'Asia/Shanghai' },
  from: '2023-01-01',
  to: '2023-12-31T23:59:59',
  order: 'asc', // or 'desc': newest first
});

console.log(planner.count()); // 365
console.log(planner.preview(2));
for (const slot of planner.slots()) {
  if (slot.index % 100 === 0) console.log(slot.index, slot.logicalDate); // lazily, one at a time
}

assert.equal(planner.count(), 365);
assert.deepEqual(planner.preview(2), [
  { index: 0, logicalDate: '2023-01-01T02:00:00.000+08:00', intervalEnd: '2023-01-02T02:00:00.000+08:00' },
  { index: 1, logicalDate: '2023-01-02T02:00:00.000+08:00', intervalEnd: '2023-01-03T02:00:00.000+08:00' },
]);

// "Slots": the shape the doc lists, checked against the library's own type at compile time
interface Slot { index: number; logicalDate: string; intervalEnd: string }
type SameShape<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const slotIsListedRight: SameShape<Slot, PlannerSlot> = true;
assert.ok(slotIsListedRight);

// both bounds are inclusive; 'desc' runs the newest slot first
const desc = new BackfillPlanner({ schedule: { cron: '0 2 * * *', timezone: 'Asia/Shanghai' }, from: '2023-01-01T02:00', to: '2023-01-03T02:00', order: 'desc' });
const last: Slot = desc.preview(1)[0];
assert.equal(desc.count(), 3);
assert.equal(last.logicalDate, '2023-01-03T02:00:00.000+08:00');
console.log('desc:', desc.preview(3).map((s) => s.logicalDate));

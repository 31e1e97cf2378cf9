import { describe, expect, it } from 'vitest';
import { backfillGantt, FunctionExecutor, TaskController } from '../../src/index.js';

describe("a backfill's history renders as a Mermaid Gantt chart", () => {
  it('has one bar per instance, from its start to its end, marked by its outcome', async () => {
    const controller = new TaskController({
      executor: new FunctionExecutor({
        day: async (ctx) => {
          await new Promise((resolve) => setTimeout(resolve, 3));
          if (ctx.logicalDate?.startsWith('2024-01-02')) throw new Error('bad day');
        },
      }),
    });
    controller.define({ id: 'day', schedule: { every: 'P1D' } });
    await controller.start();
    const bf = await controller.backfill('day', { from: '2024-01-01T00:00:00Z', to: '2024-01-03T00:00:00Z' });
    await bf.done;
    const instances = (await controller.list({ backfillId: bf.id })).items;
    const chart = backfillGantt(await controller.audit({ backfillId: bf.id }), { title: 'nightly: reload', instances });
    const lines = chart.split('\n');
    expect(lines.slice(0, 4)).toEqual(['gantt', '  title nightly. reload', '  dateFormat x', '  axisFormat %H:%M:%S']);
    expect(lines).toContain('  section day');
    const bars = lines.filter((l) => /:(done|crit|active), b\d+, \d+, \d+$/.test(l));
    expect(bars).toHaveLength(3);
    expect(bars.filter((b) => b.includes(':crit,'))).toHaveLength(1);
    expect(bars.find((b) => b.includes(':crit,'))).toContain('2024-01-02T00.00.00.000Z failed');
    for (const bar of bars) {
      const [start, end] = bar.split(', ').slice(-2).map(Number);
      expect(end).toBeGreaterThan(start);
    }
    await controller.shutdown();
  });
});

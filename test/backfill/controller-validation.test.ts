// Bad input to controller.backfill is refused with VALIDATION naming the field, and changes
// nothing; and the planner's DST policy holds through the controller.
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { TaskControlError, type BackfillOptions } from '../../src/index.js';
import { controllerWith } from '../support.js';
import { allInstances, within } from './controller-support.js';

describe('backfill input validation', () => {
  const cases: { name: string; taskId?: string; options: Record<string, unknown>; path: (string | number)[] }[] = [
    { name: 'a wrong cron', options: { from: '2024-01-01', to: '2024-01-05', schedule: { cron: '61 * * * *' } }, path: ['options', 'schedule', 'cron'] },
    { name: 'a cron with too few fields', options: { from: '2024-01-01', to: '2024-01-05', schedule: { cron: '0 2 *' } }, path: ['options', 'schedule', 'cron'] },
    { name: 'an unknown zone', options: { from: '2024-01-01', to: '2024-01-05', schedule: { cron: '0 2 * * *', timezone: 'Mars/Olympus_Mons' } }, path: ['options', 'schedule', 'timezone'] },
    { name: 'a bad every duration', options: { from: '2024-01-01', to: '2024-01-05', schedule: { every: 'one day' } }, path: ['options', 'schedule', 'every'] },
    { name: 'from after to', options: { from: '2024-02-01', to: '2024-01-05' }, path: ['options', 'from'] },
    { name: 'an unparsable from', options: { from: 'yesterday-ish', to: '2024-01-05' }, path: ['options', 'from'] },
    { name: 'an unparsable to', options: { from: '2024-01-01', to: '2024-13-45' }, path: ['options', 'to'] },
    { name: 'a missing to', options: { from: '2024-01-01' }, path: ['options', 'to'] },
    { name: 'a concurrency of 0', options: { from: '2024-01-01', to: '2024-01-05', mode: 'parallel', concurrency: 0 }, path: ['options', 'concurrency'] },
    { name: 'a fractional concurrency', options: { from: '2024-01-01', to: '2024-01-05', mode: 'parallel', concurrency: 1.5 }, path: ['options', 'concurrency'] },
    { name: 'an unknown mode', options: { from: '2024-01-01', to: '2024-01-05', mode: 'turbo' }, path: ['options', 'mode'] },
    { name: 'an unknown reprocess policy', options: { from: '2024-01-01', to: '2024-01-05', reprocess: 'some' }, path: ['options', 'reprocess'] },
    { name: 'an unknown order', options: { from: '2024-01-01', to: '2024-01-05', order: 'random' }, path: ['options', 'order'] },
    { name: 'a task without a schedule and no schedule option', taskId: 'adhoc', options: { from: '2024-01-01', to: '2024-01-05' }, path: ['options', 'schedule'] },
    { name: 'an unknown option key', options: { from: '2024-01-01', to: '2024-01-05', parallelism: 3 }, path: ['options', 'parallelism'] },
  ];

  for (const c of cases) {
    it(`${c.name} is VALIDATION naming ${c.path.join('.')}, and nothing is created`, async () => {
      const { controller, store } = controllerWith({ etl: () => undefined, adhoc: () => undefined }, { authorize: () => true });
      controller.define({ id: 'etl', schedule: { cron: '0 0 * * *' } });
      controller.define({ id: 'adhoc' });
      await controller.start();
      for (const dryRun of [false, true]) {
        const err = await controller.backfill(c.taskId ?? 'etl', { ...c.options, dryRun } as unknown as BackfillOptions).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(TaskControlError);
        expect(err).toMatchObject({ code: 'VALIDATION' });
        const issues = (err as TaskControlError).issues ?? [];
        expect(issues.map((i) => i.path)).toContainEqual(c.path);
        expect((err as Error).message).toContain(c.path.slice(1).join('.') || c.path[0]);
      }
      expect(await allInstances(store)).toEqual([]);
      expect(await store.listBackfills({})).toEqual([]);
      expect(await controller.audit()).toEqual([]);
    });
  }

  it('a bad schedule on the task itself is named as the task schedule', async () => {
    const { controller, store } = controllerWith({ etl: () => undefined });
    controller.define({ id: 'etl', schedule: { cron: '0 25 * * *' } });
    await controller.start();
    const err = (await controller.backfill('etl', { from: '2024-01-01', to: '2024-01-05' }).catch((e: unknown) => e)) as TaskControlError;
    expect(err).toMatchObject({ code: 'VALIDATION' });
    expect(err.issues?.map((i) => i.path)).toContainEqual(['task', 'schedule', 'cron']);
    expect(await allInstances(store)).toEqual([]);
    expect(await store.listBackfills({})).toEqual([]);
  });

  it('an unknown task is NOT_FOUND', async () => {
    const { controller } = controllerWith({ etl: () => undefined });
    await expect(controller.backfill('nope', { from: '2024-01-01', to: '2024-01-02', schedule: { cron: '0 0 * * *' } })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('backfill over DST changes, through the controller', () => {
  it('a daily 02:00 Europe/Berlin backfill over March and October makes one instance per local day', async () => {
    const { controller, store } = controllerWith({ etl: () => undefined });
    controller.define({ id: 'etl', schedule: { cron: '0 2 * * *', timezone: 'Europe/Berlin' } });
    await controller.start();

    for (const [month, days] of [['03', 31], ['10', 31]] as const) {
      const bf = await controller.backfill('etl', { from: `2024-${month}-01`, to: `2024-${month}-31T23:59`, mode: 'parallel', concurrency: 8 });
      const done = await within(bf.done, 5000, `the ${month} backfill`);
      expect(done).toMatchObject({ state: 'completed', total: days });
      expect(done.counts.succeeded).toBe(days);
      const dates = (await allInstances(store, { backfillId: bf.id })).map((i) => i.logicalDate!).sort((a, b) => Date.parse(a) - Date.parse(b));
      expect(dates).toHaveLength(days);
      const localDays = dates.map((d) => DateTime.fromISO(d, { zone: 'Europe/Berlin' }).toISODate());
      expect(new Set(localDays).size).toBe(days);
      expect(localDays[0]).toBe(`2024-${month}-01`);
      expect(localDays.at(-1)).toBe(`2024-${month}-31`);
      if (month === '03') {
        expect(dates[29]).toBe('2024-03-30T02:00:00.000+01:00');
        // 02:00 does not exist on 31 March: moved later by the gap
        expect(dates[30]).toBe('2024-03-31T03:00:00.000+02:00');
      } else {
        expect(dates[25]).toBe('2024-10-26T02:00:00.000+02:00');
        // 02:00 happens twice on 27 October: the earlier instant
        expect(dates[26]).toBe('2024-10-27T02:00:00.000+02:00');
        expect(dates[27]).toBe('2024-10-28T02:00:00.000+01:00');
      }
    }
    expect(await allInstances(store, { taskId: 'etl' })).toHaveLength(62);
  });
});

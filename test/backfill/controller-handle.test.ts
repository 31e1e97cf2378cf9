// A backfill as one unit, through the controller: run order, concurrency, params, events,
// status, conflicts, authorization and the handle's pause/resume/cancel.
import { describe, expect, it } from 'vitest';
import { isTerminal, type AuthRequest, type InstanceState, type TransitionEvent } from '../../src/index.js';
import { controllerWith, eventually, sleep } from '../support.js';
import { allInstances, peaks, recordBackfillEvents, startOrder, sum, utcDays, within } from './controller-support.js';

const daily = { cron: '0 0 * * *' };

describe('backfill through the controller: order and concurrency', () => {
  it('serial mode runs one slot at a time, in date order, and completes', async () => {
    const { controller, store, transitions } = controllerWith({ etl: () => sleep(2) }, { concurrency: 8 });
    controller.define({ id: 'etl', schedule: daily });
    await controller.start();

    const bf = await controller.backfill('etl', { from: '2024-01-01', to: '2024-01-12' });
    const done = await within(bf.done, 5000, 'the serial backfill');
    expect(done).toMatchObject({ id: bf.id, taskId: 'etl', state: 'completed', total: 12 });
    expect(done.counts.succeeded).toBe(12);
    expect(sum(done.counts)).toBe(12);

    expect(await startOrder(store, transitions, 'etl')).toEqual(utcDays('2024-01-01', 12));
    // never two of its instances alive at once, let alone running
    expect(peaks(transitions, (e) => e.backfillId === bf.id)).toEqual({ open: 1, active: 1 });
    const instances = await allInstances(store, { backfillId: bf.id });
    expect(instances.map((i) => i.state)).toEqual(Array(12).fill('succeeded'));
    expect(instances.every((i) => i.backfillId === bf.id)).toBe(true);
  });

  it("order: 'desc' runs the newest date first", async () => {
    const { controller, store, transitions } = controllerWith({ etl: () => undefined });
    controller.define({ id: 'etl', schedule: daily });
    await controller.start();
    const bf = await controller.backfill('etl', { from: '2024-02-01', to: '2024-02-06', order: 'desc' });
    expect((await within(bf.done, 5000, 'the desc backfill')).state).toBe('completed');
    expect(await startOrder(store, transitions, 'etl')).toEqual(utcDays('2024-02-01', 6).reverse());
  });

  it('parallel mode keeps at most `concurrency` of its instances alive at once, and uses them', async () => {
    const { controller, transitions } = controllerWith({ etl: () => sleep(1 + Math.floor(Math.random() * 4)) }, { concurrency: 10 });
    controller.define({ id: 'etl', schedule: daily });
    await controller.start();
    const bf = await controller.backfill('etl', { from: '2024-03-01', to: '2024-03-30', mode: 'parallel', concurrency: 3 });
    const done = await within(bf.done, 5000, 'the parallel backfill');
    expect(done.state).toBe('completed');
    expect(done.counts.succeeded).toBe(30);
    const p = peaks(transitions, (e) => e.backfillId === bf.id);
    expect(p.open).toBeLessThanOrEqual(3);
    expect(p.active).toBe(3);
  });

  it("params reach the executor, merged over the task's defaultParams", async () => {
    const seen: Record<string, unknown>[] = [];
    const { controller } = controllerWith({
      etl: (ctx) => {
        seen.push({ ...ctx.params, date: ctx.logicalDate });
      },
    });
    controller.define({ id: 'etl', schedule: daily, defaultParams: { region: 'us', full: false } });
    await controller.start();
    const bf = await controller.backfill('etl', { from: '2024-01-01', to: '2024-01-02', params: { region: 'eu', source: 'archive' } });
    await within(bf.done, 5000, 'the backfill');
    expect(seen).toEqual([
      { region: 'eu', full: false, source: 'archive', date: '2024-01-01T00:00:00.000Z' },
      { region: 'eu', full: false, source: 'archive', date: '2024-01-02T00:00:00.000Z' },
    ]);
  });
});

describe('backfill through the controller: status and events', () => {
  it('emits a backfill event on every change of state or counts, with counts that match its instances', async () => {
    const { controller } = controllerWith({ etl: (ctx) => (ctx.logicalDate!.startsWith('2024-01-03') ? Promise.reject(new Error('bad day')) : sleep(1)) });
    controller.define({ id: 'etl', schedule: daily });
    await controller.start();

    // replay transitions: at every backfill event its counts must be what the transitions say
    // (the only backfill here: its first instances may exist before backfill() resolves)
    const states = new Map<string, InstanceState>();
    const mismatches: string[] = [];
    controller.on('transition', (e: TransitionEvent) => {
      if (e.backfillId !== undefined) states.set(e.instanceId, e.to);
    });
    const events = recordBackfillEvents(controller);
    controller.on('backfill', (e) => {
      const expected: Record<string, number> = {};
      for (const s of states.values()) expected[s] = (expected[s] ?? 0) + 1;
      const got = Object.fromEntries(Object.entries(e.counts).filter(([, n]) => n !== 0));
      if (JSON.stringify(Object.entries(got).sort()) !== JSON.stringify(Object.entries(expected).sort())) {
        mismatches.push(`${JSON.stringify(got)} != ${JSON.stringify(expected)}`);
      }
    });

    const bf = await controller.backfill('etl', { from: '2024-01-01', to: '2024-01-05', mode: 'parallel', concurrency: 2 });
    const done = await within(bf.done, 5000, 'the backfill');

    expect(mismatches).toEqual([]);
    expect(events.length).toBeGreaterThan(5);
    expect(events.every((e) => e.id === bf.id && e.taskId === 'etl' && e.total === 5)).toBe(true);
    expect(events.every((e) => Object.values(e.counts).every((n) => n >= 0) && sum(e.counts) <= 5)).toBe(true);
    // each event reports a change: never the same status twice in a row
    for (let i = 1; i < events.length; i++) expect(events[i]).not.toEqual(events[i - 1]);
    expect(events[0].state).toBe('running');
    expect(events.at(-1)).toEqual(done);
    expect(events.filter((e) => e.state === 'completed')).toHaveLength(1);
    expect(done.counts).toMatchObject({ succeeded: 4, failed: 1 });
    expect(sum(done.counts)).toBe(5);
    // every instance that reached a state shows up in some event's counts along the way
    expect(events.some((e) => e.counts.running > 0)).toBe(true);
    expect(events.some((e) => e.counts.queued > 0)).toBe(true);
  });

  it('getBackfill reports a running backfill and, from the store, a finished one', async () => {
    const { controller } = controllerWith({ etl: () => sleep(5) });
    controller.define({ id: 'etl', schedule: daily });
    await controller.start();
    const bf = await controller.backfill('etl', { from: '2024-01-01', to: '2024-01-06' });
    const live = await controller.getBackfill(bf.id);
    expect(live).toMatchObject({ id: bf.id, taskId: 'etl', state: 'running', total: 6 });
    expect(bf.status()).toMatchObject({ id: bf.id, state: 'running', total: 6 });
    const done = await within(bf.done, 5000, 'the backfill');
    expect(await controller.getBackfill(bf.id)).toEqual(done);
    expect(bf.status()).toEqual(done);
    expect(await controller.getBackfill('no-such-backfill')).toBeUndefined();
    // another controller on the same store answers from the store alone
    const { controller: other } = controllerWith(undefined, { store: controller.store });
    expect(await other.getBackfill(bf.id)).toEqual(done);
  });
});

describe('backfill through the controller: BACKFILL_CONFLICT', () => {
  it('refuses an overlapping active backfill of the same task, and nothing else', async () => {
    const gate = { open: false };
    const { controller, store } = controllerWith({
      etl: async () => {
        while (!gate.open) await sleep(2);
      },
      other: () => undefined,
    });
    controller.define({ id: 'etl', schedule: daily });
    controller.define({ id: 'other', schedule: daily });
    await controller.start();

    const first = await controller.backfill('etl', { from: '2024-01-10', to: '2024-01-20' });
    for (const [from, to] of [
      ['2024-01-01', '2024-01-10'],
      ['2024-01-20', '2024-02-01'],
      ['2024-01-12', '2024-01-13'],
      ['2024-01-01', '2024-03-01'],
    ]) {
      await expect(controller.backfill('etl', { from, to })).rejects.toMatchObject({ code: 'BACKFILL_CONFLICT' });
    }
    // a paused backfill is still active
    await first.pause();
    await expect(controller.backfill('etl', { from: '2024-01-15', to: '2024-01-16' })).rejects.toMatchObject({ code: 'BACKFILL_CONFLICT' });
    await first.resume();
    const before = (await store.listBackfills({})).length;

    const disjoint = await controller.backfill('etl', { from: '2024-01-21', to: '2024-01-22' });
    const otherTask = await controller.backfill('other', { from: '2024-01-10', to: '2024-01-20' });
    const dry = await controller.backfill('etl', { from: '2024-01-10', to: '2024-01-20', dryRun: true });
    expect(dry.plan?.total).toBe(11);
    expect((await store.listBackfills({})).length).toBe(before + 2);

    gate.open = true;
    await within(Promise.all([first.done, disjoint.done, otherTask.done]), 5000, 'the backfills');
    // after it completed the range is free again
    const again = await controller.backfill('etl', { from: '2024-01-10', to: '2024-01-20' });
    expect((await within(again.done, 5000, 'the second backfill')).state).toBe('completed');
  });

  it('a cancelled backfill frees its range', async () => {
    const { controller } = controllerWith({ etl: () => sleep(5) });
    controller.define({ id: 'etl', schedule: daily });
    await controller.start();
    const first = await controller.backfill('etl', { from: '2024-01-01', to: '2024-12-31' });
    await first.cancel();
    expect((await within(first.done, 5000, 'the cancelled backfill')).state).toBe('cancelled');
    const second = await controller.backfill('etl', { from: '2024-01-01', to: '2024-01-03' });
    expect((await within(second.done, 5000, 'the second backfill')).state).toBe('completed');
  });

  it('two overlapping backfills started at the same moment: exactly one is refused', async () => {
    const { controller, store } = controllerWith({ etl: () => sleep(1) });
    controller.define({ id: 'etl', schedule: daily });
    await controller.start();
    const results = await Promise.allSettled([
      controller.backfill('etl', { from: '2024-01-01', to: '2024-01-05' }),
      controller.backfill('etl', { from: '2024-01-03', to: '2024-01-08' }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code)).toEqual(['BACKFILL_CONFLICT']);
    expect(await store.listBackfills({})).toHaveLength(1);
    await within((results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ done: Promise<unknown> }>).value.done, 5000, 'the backfill');
  });
});

describe('backfill through the controller: the handle', () => {
  it('pause holds the backfill: it creates and dispatches nothing until resumed, then finishes', async () => {
    const { controller, store, transitions } = controllerWith({ etl: () => sleep(2) }, { concurrency: 8 });
    controller.define({ id: 'etl', schedule: daily });
    await controller.start();
    const bf = await controller.backfill('etl', { from: '2024-01-01', to: '2024-02-19', mode: 'parallel', concurrency: 3 });
    await eventually(() => bf.status().counts.succeeded >= 5, 'five succeeded instances');

    await bf.pause();
    expect(bf.status().state).toBe('paused');
    expect((await store.getBackfill(bf.id))?.state).toBe('paused');
    const createdAtPause = (await allInstances(store, { backfillId: bf.id })).length;
    const mark = transitions.length;
    await sleep(60);
    const during = transitions.slice(mark).filter((e) => e.backfillId === bf.id);
    expect(during.filter((e) => e.from === 'none')).toEqual([]);
    expect(during.filter((e) => e.to === 'running')).toEqual([]);
    expect((await allInstances(store, { backfillId: bf.id })).length).toBe(createdAtPause);
    expect(createdAtPause).toBeLessThan(50);

    await bf.resume();
    expect(bf.status().state).toBe('running');
    const done = await within(bf.done, 5000, 'the resumed backfill');
    expect(done).toMatchObject({ state: 'completed', total: 50 });
    expect(done.counts.succeeded).toBe(50);
    expect(peaks(transitions, (e) => e.backfillId === bf.id).open).toBeLessThanOrEqual(3);
  });

  it('pausing and resuming a serial backfill quickly, again and again, loses no slot', async () => {
    const { controller, transitions, store } = controllerWith({ etl: () => sleep(1) });
    controller.define({ id: 'etl', schedule: daily });
    await controller.start();
    const bf = await controller.backfill('etl', { from: '2024-01-01', to: '2024-01-20' });
    for (let n = 0; n < 15; n++) {
      await bf.pause();
      await sleep(n % 3);
      await bf.resume();
      await sleep(n % 4);
    }
    const done = await within(bf.done, 5000, 'the backfill');
    expect(done.counts.succeeded).toBe(20);
    expect(peaks(transitions, (e) => e.backfillId === bf.id).open).toBe(1);
    expect(await startOrder(store, transitions, 'etl')).toEqual(utcDays('2024-01-01', 20));
  });

  it('cancel stops its running instances, creates no more, and done resolves cancelled', async () => {
    let started = 0;
    const { controller, store, transitions } = controllerWith(
      {
        etl: (ctx) =>
          new Promise((resolve, reject) => {
            started++;
            const timer = setTimeout(resolve, 10_000);
            ctx.signal.addEventListener('abort', () => {
              clearTimeout(timer);
              reject(ctx.signal.reason);
            });
          }),
      },
      { concurrency: 10 },
    );
    controller.define({ id: 'etl', schedule: daily });
    await controller.start();
    const bf = await controller.backfill('etl', { from: '2024-01-01', to: '2024-12-31', mode: 'parallel', concurrency: 4 });
    await eventually(() => started === 4, 'four running instances');

    await bf.cancel({ actor: 'ops' });
    const done = await within(bf.done, 3000, 'the cancelled backfill');
    expect(done.state).toBe('cancelled');
    expect(done.total).toBe(366);
    const mine = await allInstances(store, { backfillId: bf.id });
    expect(mine.length).toBe(4);
    expect(mine.map((i) => i.state)).toEqual(['stopped', 'stopped', 'stopped', 'stopped']);
    expect(done.counts.stopped).toBe(4);
    expect(sum(done.counts)).toBe(4);
    const count = transitions.length;
    await sleep(40);
    expect(transitions.slice(count)).toEqual([]);
    expect((await allInstances(store, { backfillId: bf.id })).length).toBe(4);
    expect((await store.getBackfill(bf.id))?.state).toBe('cancelled');
    expect(await controller.getBackfill(bf.id)).toEqual(done);
    // a cancelled backfill cannot be resumed
    await bf.resume();
    expect((await controller.getBackfill(bf.id))?.state).toBe('cancelled');
  });

  it('cancel of a paused backfill stops its waiting instances', async () => {
    const { controller, store } = controllerWith({ etl: () => sleep(3) });
    controller.define({ id: 'etl', schedule: daily });
    await controller.start();
    const bf = await controller.backfill('etl', { from: '2024-01-01', to: '2024-01-31', mode: 'parallel', concurrency: 2 });
    await eventually(() => bf.status().counts.succeeded >= 2, 'two succeeded');
    await bf.pause();
    await bf.cancel();
    const done = await within(bf.done, 3000, 'the cancelled backfill');
    expect(done.state).toBe('cancelled');
    const mine = await allInstances(store, { backfillId: bf.id });
    expect(mine.every((i) => isTerminal(i.state))).toBe(true);
    expect(mine.length).toBeLessThan(31);
  });

  it('cancel right after the start, while its first slots are being created, leaves nothing behind', async () => {
    const { controller, store, transitions } = controllerWith({ etl: () => sleep(2) });
    controller.define({ id: 'etl', schedule: daily });
    await controller.start();
    for (let n = 0; n < 5; n++) {
      const bf = await controller.backfill('etl', { from: '2024-01-01', to: '2024-12-31', mode: 'parallel', concurrency: 4, reprocess: 'all' });
      await bf.cancel();
      const done = await within(bf.done, 3000, 'the cancel');
      expect(done.state).toBe('cancelled');
      const mark = transitions.length;
      await sleep(10);
      expect(transitions.slice(mark).filter((e) => e.backfillId === bf.id)).toEqual([]);
      const mine = await allInstances(store, { backfillId: bf.id });
      expect(mine.every((i) => isTerminal(i.state))).toBe(true);
      expect(mine.length).toBeLessThanOrEqual(4);
      expect(sum(done.counts)).toBe(mine.length);
    }
  });

  it('pause right after the start: once pause() resolves nothing of it starts', async () => {
    const { controller, transitions } = controllerWith({ etl: () => sleep(2) });
    controller.define({ id: 'etl', schedule: daily });
    await controller.start();
    const bf = await controller.backfill('etl', { from: '2024-01-01', to: '2024-03-31', mode: 'parallel', concurrency: 4 });
    await bf.pause();
    await sleep(5);
    const mark = transitions.length;
    await sleep(40);
    expect(transitions.slice(mark).filter((e) => e.backfillId === bf.id && (e.to === 'running' || e.from === 'none'))).toEqual([]);
    await bf.resume();
    expect((await within(bf.done, 5000, 'the backfill')).counts.succeeded).toBe(91);
  });

  it('the handle operations are audited as commands on the backfill', async () => {
    const { controller } = controllerWith({ etl: () => sleep(2) });
    controller.define({ id: 'etl', schedule: daily });
    await controller.start();
    const bf = await controller.backfill('etl', { from: '2024-01-01', to: '2024-03-31', actor: 'alice', reason: 'reload after the schema fix' });
    await bf.pause({ actor: 'bob' });
    await bf.resume();
    await bf.cancel({ actor: 'carol' });
    await within(bf.done, 3000, 'the cancel');
    const commands = (await controller.audit({ backfillId: bf.id })).filter((e) => e.kind === 'command');
    expect(commands.map((e) => [e.action, e.actor])).toEqual([
      ['backfill', 'alice'],
      ['pause', 'bob'],
      ['resume', 'alice'],
      ['cancel', 'carol'],
      ['stop', 'carol'],
    ]);
    expect(commands[0]).toMatchObject({ reason: 'reload after the schema fix', target: { taskId: 'etl' }, result: { total: 91, mode: 'serial' } });
    expect(commands[1]).toMatchObject({ target: { backfillId: bf.id }, result: { from: 'running', to: 'paused' } });
    expect(commands[4]).toMatchObject({ reason: `backfill ${bf.id} cancelled` });
  });

  it('authorize is asked for the start as backfill, and for the handle as pause/resume/stop on { backfillId }', async () => {
    const asked: AuthRequest[] = [];
    let deny = false;
    const { controller, store } = controllerWith(
      { etl: () => sleep(2) },
      {
        authorize: (req) => {
          asked.push(structuredClone(req));
          return !deny;
        },
      },
    );
    controller.define({ id: 'etl', group: 'warehouse', schedule: daily });
    await controller.start();
    const bf = await controller.backfill('etl', { from: '2024-01-01', to: '2024-01-30', actor: 'alice' });
    expect(asked).toMatchObject([{ action: 'backfill', actor: 'alice', taskId: 'etl', tasks: ['etl'], groups: ['warehouse'] }]);
    await bf.pause({ actor: 'bob' });
    await bf.resume();
    await bf.cancel({ actor: 'carol' });
    expect(asked.slice(1)).toMatchObject([
      { action: 'pause', actor: 'bob', target: { backfillId: bf.id }, tasks: ['etl'], groups: ['warehouse'] },
      { action: 'resume', actor: 'alice', target: { backfillId: bf.id } },
      { action: 'stop', actor: 'carol', target: { backfillId: bf.id } },
    ]);
    expect((await within(bf.done, 3000, 'cancel')).state).toBe('cancelled');

    deny = true;
    await expect(controller.backfill('etl', { from: '2024-02-01', to: '2024-02-03', actor: 'mallory' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(await store.listBackfills({ state: ['running'] })).toEqual([]);
    deny = false;
    const second = await controller.backfill('etl', { from: '2024-02-01', to: '2024-02-28', actor: 'alice' });
    deny = true;
    await expect(second.pause({ actor: 'mallory' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(second.cancel({ actor: 'mallory' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(second.status().state).toBe('running');
    deny = false;
    expect((await within(second.done, 5000, 'the second backfill')).state).toBe('completed');
  });
});

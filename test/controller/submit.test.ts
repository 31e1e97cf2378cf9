import { describe, expect, it } from 'vitest';
import { TaskControlError } from '../../src/index.js';
import { createTestController } from '../../src/testing/index.js';
import { controllerWith, history, sleep, untilState } from '../support.js';

describe('submit', () => {
  it('keeps one instance per (taskId, logicalDate): a repeated submit returns it unchanged', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'daily', defaultParams: { a: 1 } });
    const first = await controller.submit('daily', { logicalDate: '2024-01-15T00:00:00.000Z', params: { b: 2 } });
    expect(first).toMatchObject({ taskId: 'daily', state: 'queued', attempt: 1, version: 1, params: { a: 1, b: 2 } });
    expect(first.id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);

    const again = await controller.submit('daily', { logicalDate: '2024-01-15T00:00:00.000Z', params: { b: 3 } });
    expect(again).toEqual(first);
    // a Date and an ISO string for the same UTC instant name the same logical date
    const asDate = await controller.submit('daily', { logicalDate: new Date('2024-01-15T00:00:00Z') });
    expect(asDate.id).toBe(first.id);
    const other = await controller.submit('daily', { logicalDate: '2024-01-16T00:00:00Z' });
    expect(other.id).not.toBe(first.id);
    expect((await controller.list({ taskId: 'daily' })).items).toHaveLength(2);
    expect(await controller.audit({ instanceId: first.id })).toHaveLength(1);
  });

  it('a logical date written without an offset means UTC, whatever the host time zone', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'daily' });
    const fromDate = await controller.submit('daily', { logicalDate: new Date('2024-01-20') });
    expect(fromDate.logicalDate).toBe('2024-01-20T00:00:00.000Z');
    for (const same of ['2024-01-20', '2024-01-20T00:00:00', '2024-01-20T00:00:00+00:00', '2024-01-20T00:00:00.000Z']) {
      expect((await controller.submit('daily', { logicalDate: same })).id, same).toBe(fromDate.id);
    }
    // an explicit offset is kept: it names the local calendar day of that zone
    const paris = await controller.submit('daily', { logicalDate: '2024-01-21T00:00:00+01:00' });
    expect(paris.logicalDate).toBe('2024-01-21T00:00:00.000+01:00');
    expect((await controller.list({ taskId: 'daily' })).items).toHaveLength(2);
  });

  it('concurrent submits of the same logical date create one instance', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'daily' });
    const day = '2024-02-01T00:00:00.000Z';
    const all = await Promise.all(Array.from({ length: 8 }, () => controller.submit('daily', { logicalDate: day })));
    expect(new Set(all.map((i) => i.id)).size).toBe(1);
    expect((await controller.list({ taskId: 'daily' })).items).toHaveLength(1);
    expect(await controller.audit({ kind: 'transition' })).toHaveLength(1);
  });

  it('ad-hoc submits without a logical date each create an instance', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'adhoc' });
    const a = await controller.submit('adhoc');
    const b = await controller.submit('adhoc');
    expect(a.id).not.toBe(b.id);
    expect(a.logicalDate).toBeUndefined();
  });

  it('an instance waits pending until its upstream of the same logical date succeeds, then is queued and run', async () => {
    let finishUpstream!: () => void;
    const { controller } = controllerWith({
      extract: () => new Promise<void>((resolve) => (finishUpstream = resolve)),
      load: () => 'loaded',
    });
    controller.define({ id: 'extract' });
    controller.define({ id: 'load', dependsOn: ['extract'] });
    await controller.start();
    const day = '2024-03-10T00:00:00.000Z';
    const load = await controller.submit('load', { logicalDate: day });
    expect(load.state).toBe('pending');
    // an upstream of another day does not count
    const yesterday = await controller.submit('extract', { logicalDate: '2024-03-09T00:00:00.000Z' });
    await untilState(controller, yesterday.id, 'running');
    finishUpstream();
    await untilState(controller, yesterday.id, 'succeeded');
    await sleep(10);
    expect((await controller.get(load.id))?.state).toBe('pending');

    const extract = await controller.submit('extract', { logicalDate: day });
    await untilState(controller, extract.id, 'running');
    expect((await controller.get(load.id))?.state).toBe('pending');
    finishUpstream();
    const done = await untilState(controller, load.id, 'succeeded');
    expect(done.result).toBe('loaded');
    expect(await history(controller, load.id)).toEqual([
      'none --submit_pending--> pending',
      'pending --ready--> queued',
      'queued --start--> running',
      'running --succeed--> succeeded',
    ]);
  });

  it('a submit after the upstream succeeded is queued at once', async () => {
    const { controller } = controllerWith({ extract: () => 1, load: () => 2 });
    controller.define({ id: 'extract' });
    controller.define({ id: 'load', dependsOn: ['extract'] });
    await controller.start();
    const day = '2024-03-11T00:00:00.000Z';
    await untilState(controller, (await controller.submit('extract', { logicalDate: day })).id, 'succeeded');
    expect((await controller.submit('load', { logicalDate: day })).state).toBe('queued');
  });

  it('runs at most `concurrency` instances at once, and every queued one in turn', async () => {
    let active = 0;
    let most = 0;
    const { controller } = controllerWith(
      {
        job: async () => {
          most = Math.max(most, ++active);
          await sleep(5);
          active--;
        },
      },
      { concurrency: 2 },
    );
    controller.define({ id: 'job' });
    await controller.start();
    const jobs = await Promise.all(Array.from({ length: 6 }, () => controller.submit('job')));
    for (const job of jobs) await untilState(controller, job.id, 'succeeded');
    expect(most).toBe(2);
  });

  it('submitting an undefined task throws NOT_FOUND', async () => {
    const { controller } = controllerWith(undefined);
    await expect(controller.submit('nope')).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('nope') });
  });
});

describe('list', () => {
  it('filters by task, group and state, and pages with a cursor, oldest first', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'a', group: 'g1' });
    controller.define({ id: 'b', group: 'g2' });
    const made = [];
    for (let i = 0; i < 7; i++) made.push(await controller.submit(i % 2 === 0 ? 'a' : 'b'));
    await controller.pause({ instanceId: made[0].id });
    await controller.stop({ instanceId: made[1].id });

    expect((await controller.list({ taskId: 'a' })).items.map((i) => i.id)).toEqual([made[0], made[2], made[4], made[6]].map((i) => i.id));
    expect((await controller.list({ group: 'g2' })).items.map((i) => i.id)).toEqual([made[1], made[3], made[5]].map((i) => i.id));
    expect((await controller.list({ state: 'paused' })).items.map((i) => i.id)).toEqual([made[0].id]);
    expect((await controller.list({ state: ['paused', 'stopped'] })).items.map((i) => i.id)).toEqual([made[0].id, made[1].id]);
    expect((await controller.list({ taskId: 'a', state: 'queued' })).items).toHaveLength(3);

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await controller.list({ limit: 3, cursor });
      expect(page.items.length).toBeLessThanOrEqual(3);
      seen.push(...page.items.map((i) => i.id));
      cursor = page.cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(made.map((i) => i.id));
  });

  it('get returns undefined for an unknown id', async () => {
    const { controller } = controllerWith(undefined);
    expect(await controller.get('01HZZZZZZZZZZZZZZZZZZZZZZZ')).toBeUndefined();
  });
});

describe('waitFor', () => {
  it('resolves by default on a paused or terminal state', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'job' });
    const job = await controller.submit('job');
    const waiting = controller.waitFor(job.id);
    await sleep(5);
    await controller.pause({ instanceId: job.id });
    expect((await waiting).state).toBe('paused');
    // already there: resolves at once
    expect((await controller.waitFor(job.id)).state).toBe('paused');
  });

  it('resolves on the states asked for', async () => {
    const { controller } = controllerWith({ job: (ctx) => sleep(10_000, ctx.signal) });
    controller.define({ id: 'job' });
    const job = await controller.submit('job');
    const running = controller.waitFor(job.id, { states: ['running'] });
    await controller.start();
    expect((await running).state).toBe('running');
    await controller.stop({ instanceId: job.id }, { force: true });
  });

  it('rejects with TIMEOUT when the state is not reached in time (fake clock)', async () => {
    const h = await createTestController({});
    h.controller.define({ id: 'job' });
    const job = await h.controller.submit('job');
    const waiting = h.controller.waitFor(job.id, { timeoutMs: 5 * 60_000 });
    const outcome = waiting.then(
      () => 'resolved',
      (e: unknown) => e,
    );
    await h.advance(5 * 60_000);
    const err = await outcome;
    expect(err).toBeInstanceOf(TaskControlError);
    expect(err).toMatchObject({ code: 'TIMEOUT', message: expect.stringContaining(job.id) });
  });

  it('rejects with NOT_FOUND for an unknown instance', async () => {
    const { controller } = controllerWith(undefined);
    await expect(controller.waitFor('01HZZZZZZZZZZZZZZZZZZZZZZZ', { timeoutMs: 100 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('a dependant submitted after its upstream already failed', () => {
  it('is stopped at once with UPSTREAM_FAILED instead of waiting forever', async () => {
    const { TaskController: Controller, FunctionExecutor: Fn } = await import('../../src/index.js');
    const controller = new Controller({ executor: new Fn({ up: () => { throw new Error('broken'); }, down: () => 'ok' }) });
    controller.define({ id: 'up' });
    controller.define({ id: 'down', dependsOn: ['up'] });
    await controller.start();
    const day = '2024-03-01T00:00:00.000Z';
    const up = await controller.submit('up', { logicalDate: day });
    expect((await controller.waitFor(up.id)).state).toBe('failed');
    const down = await controller.submit('down', { logicalDate: day });
    expect(down.state).toBe('stopped');
    expect(down.error?.code).toBe('UPSTREAM_FAILED');
    await controller.rerun({ instanceId: up.id }, { downstream: true });
    expect((await controller.get(down.id))!.state).toBe('pending');
    await controller.shutdown();
  });
});

import { describe, expect, it } from 'vitest';
import { MemoryStateStore } from '../../src/index.js';
import { controllerWith, sleep, stepsHandler, untilState } from '../support.js';

describe('held scopes', () => {
  it('pause holds a task scope until it is resumed', async () => {
    const ran: string[] = [];
    const { controller } = controllerWith({ job: (ctx) => void ran.push(ctx.instance.id), other: () => 'free' });
    controller.define({ id: 'job' });
    controller.define({ id: 'other' });
    await controller.start();

    const held = await controller.pause({ taskId: 'job' }, { reason: 'warehouse maintenance', actor: 'ops' });
    expect(held.applied).toEqual([]);
    expect(await controller.heldScopes()).toMatchObject([{ id: 'task:job', kind: 'task', key: 'job', actor: 'ops', reason: 'warehouse maintenance' }]);

    const a = await controller.submit('job');
    const b = await controller.submit('job');
    expect(a.state).toBe('paused');
    expect(b.state).toBe('paused');
    const free = await controller.submit('other');
    expect((await controller.waitFor(free.id, { timeoutMs: 2000 })).state).toBe('succeeded');
    await sleep(20);
    expect(ran).toEqual([]);

    const one = await controller.resume({ instanceId: a.id });
    expect(one.applied).toEqual([]);
    expect(one.rejected).toMatchObject([{ instanceId: a.id, code: 'SCOPE_HELD' }]);
    expect((await controller.get(a.id))?.state).toBe('paused');

    const released = await controller.resume({ taskId: 'job' });
    expect(released.applied).toEqual([
      { instanceId: a.id, from: 'paused', to: 'queued', changed: true },
      { instanceId: b.id, from: 'paused', to: 'queued', changed: true },
    ]);
    expect(await controller.heldScopes()).toEqual([]);
    await untilState(controller, a.id, 'succeeded');
    await untilState(controller, b.id, 'succeeded');
    expect(ran.sort()).toEqual([a.id, b.id].sort());
  });

  it('holding a scope pauses what is waiting and running in it, and leaves finished instances alone', async () => {
    const { controller } = controllerWith({ slow: stepsHandler(500, 2), quick: () => 'ok' }, { concurrency: 1 });
    controller.define({ id: 'slow', group: 'etl' });
    controller.define({ id: 'quick', group: 'etl' });
    await controller.start();
    const done = await controller.submit('quick');
    await untilState(controller, done.id, 'succeeded');
    const running = await controller.submit('slow');
    await untilState(controller, running.id, 'running');
    const waiting = await controller.submit('quick');

    const result = await controller.pause({ group: 'etl' });
    expect(result.applied).toEqual([
      { instanceId: running.id, from: 'running', to: 'pausing', changed: true },
      { instanceId: waiting.id, from: 'queued', to: 'paused', changed: true },
    ]);
    expect(result.rejected).toEqual([]);
    expect((await controller.waitFor(running.id, { timeoutMs: 2000 })).state).toBe('paused');
    expect((await controller.get(done.id))?.state).toBe('succeeded');
  });

  it('a group scope holds new instances of every task in the group, and only those', async () => {
    const { controller } = controllerWith({ a: () => 1, b: () => 2, c: () => 3 });
    controller.define({ id: 'a', group: 'finance' });
    controller.define({ id: 'b', group: 'finance' });
    controller.define({ id: 'c', group: 'marketing' });
    await controller.start();
    await controller.pause({ group: 'finance' });
    const a = await controller.submit('a');
    const b = await controller.submit('b');
    const c = await controller.submit('c');
    expect([a.state, b.state, c.state]).toEqual(['paused', 'paused', 'queued']);
    await untilState(controller, c.id, 'succeeded');

    expect((await controller.resume({ instanceId: b.id })).rejected).toMatchObject([{ code: 'SCOPE_HELD' }]);
    // resuming one task of the group does not release the group
    expect((await controller.resume({ taskId: 'a' })).rejected).toMatchObject([{ instanceId: a.id, code: 'SCOPE_HELD' }]);
    expect((await controller.get(a.id))?.state).toBe('paused');
    expect(await controller.heldScopes()).toMatchObject([{ id: 'group:finance' }]);

    await controller.resume({ group: 'finance' });
    await untilState(controller, a.id, 'succeeded');
    await untilState(controller, b.id, 'succeeded');
  });

  it('an all scope holds every task until it is released', async () => {
    const { controller } = controllerWith({ a: () => 1, b: () => 2 });
    controller.define({ id: 'a' });
    controller.define({ id: 'b', group: 'g' });
    await controller.start();
    await controller.pause({ all: true });
    const a = await controller.submit('a');
    const b = await controller.submit('b');
    expect([a.state, b.state]).toEqual(['paused', 'paused']);
    expect((await controller.resume({ taskId: 'a' })).rejected).toMatchObject([{ instanceId: a.id, code: 'SCOPE_HELD' }]);

    const result = await controller.resume({ all: true });
    expect(result.applied.map((x) => x.to)).toEqual(['queued', 'queued']);
    await untilState(controller, a.id, 'succeeded');
    await untilState(controller, b.id, 'succeeded');
  });

  it('nothing in a held scope is dispatched, even instances queued after the hold', async () => {
    const { controller } = controllerWith({ job: () => 'ran' });
    controller.define({ id: 'job' });
    const job = await controller.submit('job');
    await controller.stop({ instanceId: job.id });
    await controller.pause({ taskId: 'job' });
    await controller.start();
    // a rerun is allowed into the held scope, but waits there
    await controller.rerun({ instanceId: job.id });
    await sleep(30);
    expect((await controller.get(job.id))?.state).toBe('queued');
    await controller.resume({ taskId: 'job' });
    expect((await untilState(controller, job.id, 'succeeded')).attempt).toBe(2);
  });

  it('a scope held from one controller holds dispatch in another controller on the same store', async () => {
    const store = new MemoryStateStore();
    const ran: string[] = [];
    const worker = controllerWith({ job: (ctx) => void ran.push(ctx.instance.id) }, { store }).controller;
    const operator = controllerWith(undefined, { store }).controller;
    for (const c of [worker, operator]) c.define({ id: 'job' });
    await worker.start();
    await operator.pause({ taskId: 'job' }, { actor: 'ops' });
    await sleep(5);
    const job = await worker.submit('job');
    expect(job.state).toBe('paused');
    await sleep(20);
    expect(ran).toEqual([]);
    await operator.resume({ taskId: 'job' });
    await untilState(worker, job.id, 'succeeded');
    expect(ran).toEqual([job.id]);
  });

  it('submits follow holds and releases made by another controller on the same memory store at once, started or not', async () => {
    const store = new MemoryStateStore();
    const a = controllerWith(undefined, { store }).controller;
    const b = controllerWith(undefined, { store }).controller;
    for (const c of [a, b]) c.define({ id: 'job', group: 'etl' });
    // b is never started: its first submit reads the scopes, notices keep them current after that
    expect((await b.submit('job')).state).toBe('queued');
    await a.pause({ group: 'etl' });
    expect((await b.submit('job')).state).toBe('paused');
    await a.resume({ group: 'etl' });
    expect((await b.submit('job')).state).toBe('queued');
    await a.pause({ all: true });
    // submits in one burst are committed together: all of them see the hold
    const burst = await Promise.all([b.submit('job'), b.submit('job'), a.submit('job')]);
    expect(burst.map((i) => i.state)).toEqual(['paused', 'paused', 'paused']);
  });
});

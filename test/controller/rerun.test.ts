import { describe, expect, it } from 'vitest';
import { controllerWith, history, untilAborted, untilState } from '../support.js';

const DAY = '2024-07-01T00:00:00.000Z';

describe('rerun', () => {
  it('reruns a finished instance as attempt + 1 of the same instance, keeping the first outcome in the audit trail', async () => {
    let calls = 0;
    const { controller } = controllerWith({
      job: (ctx) => {
        calls++;
        if (ctx.attempt === 1) throw new Error('flaky upstream');
        return `ok on attempt ${ctx.attempt}`;
      },
    });
    controller.define({ id: 'job' });
    await controller.start();
    const job = await controller.submit('job', { logicalDate: DAY });
    const failed = await controller.waitFor(job.id, { timeoutMs: 2000 });
    expect(failed).toMatchObject({ state: 'failed', attempt: 1, error: { message: 'flaky upstream' } });

    const result = await controller.rerun({ instanceId: job.id });
    expect(result.applied).toEqual([{ instanceId: job.id, from: 'failed', to: 'queued', changed: true }]);
    const done = await controller.waitFor(job.id, { timeoutMs: 2000 });
    expect(done).toMatchObject({ id: job.id, state: 'succeeded', attempt: 2, result: 'ok on attempt 2' });
    expect(done.error).toBeUndefined();
    expect(calls).toBe(2);

    const { items } = await controller.list({ taskId: 'job' });
    expect(items.map((i) => i.id)).toEqual([job.id]);
    const transitions = (await controller.audit({ instanceId: job.id })).filter((e) => e.kind === 'transition');
    expect(transitions.map((e) => [e.event, e.attempt])).toEqual([
      ['submit', 1],
      ['start', 1],
      ['fail', 1],
      ['rerun', 2],
      ['start', 2],
      ['succeed', 2],
    ]);
  });

  it('merges rerun params over the instance params', async () => {
    const seen: Record<string, unknown>[] = [];
    const { controller } = controllerWith({ job: (ctx) => void seen.push(ctx.params) });
    controller.define({ id: 'job', defaultParams: { size: 1, mode: 'fast' } });
    await controller.start();
    const job = await controller.submit('job', { params: { size: 2 } });
    await controller.waitFor(job.id, { timeoutMs: 2000 });
    await controller.rerun({ instanceId: job.id }, { params: { mode: 'thorough' } });
    expect((await untilState(controller, job.id, 'succeeded')).params).toEqual({ size: 2, mode: 'thorough' });
    expect(seen).toEqual([
      { size: 2, mode: 'fast' },
      { size: 2, mode: 'thorough' },
    ]);
  });

  it('onlyFailed with a task target reruns only failed and stopped instances', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'job' });
    const stopped = await controller.submit('job');
    const skipped = await controller.submit('job');
    const waiting = await controller.submit('job');
    await controller.stop({ instanceId: stopped.id });
    await controller.pause({ instanceId: skipped.id });
    await controller.resume({ instanceId: skipped.id }, { strategy: 'skip' });

    const result = await controller.rerun({ taskId: 'job' }, { onlyFailed: true });
    expect(result.applied).toEqual([{ instanceId: stopped.id, from: 'stopped', to: 'queued', changed: true }]);
    expect(result.rejected).toEqual([]);
    expect((await controller.get(skipped.id))?.state).toBe('skipped');
    expect((await controller.get(waiting.id))?.state).toBe('queued');

    const all = await controller.rerun({ taskId: 'job' });
    expect(all.applied).toEqual([{ instanceId: skipped.id, from: 'skipped', to: 'queued', changed: true }]);
  });

  it('onlyFailed rejects an explicitly named instance that did not fail', async () => {
    const { controller } = controllerWith({ job: () => 1 });
    controller.define({ id: 'job' });
    await controller.start();
    const job = await controller.submit('job');
    const done = await controller.waitFor(job.id, { timeoutMs: 2000 });
    const result = await controller.rerun({ instanceId: job.id }, { onlyFailed: true });
    expect(result.applied).toEqual([]);
    expect(result.rejected).toMatchObject([{ instanceId: job.id, code: 'GUARD_REJECTED' }]);
    expect(await controller.get(job.id)).toEqual(done);
  });

  it('downstream also reruns the dependants of the same logical date, in dependency order', async () => {
    const order: string[] = [];
    const log = (ctx: { instance: { taskId: string }; attempt: number }) => void order.push(`${ctx.instance.taskId}#${ctx.attempt}`);
    const { controller } = controllerWith({ extract: log, transform: log, load: log, report: log, other: log });
    controller.define({ id: 'extract' });
    controller.define({ id: 'transform', dependsOn: ['extract'] });
    controller.define({ id: 'load', dependsOn: ['transform'] });
    controller.define({ id: 'report', dependsOn: ['load', 'extract'] });
    controller.define({ id: 'other' });
    await controller.start();
    const ids: Record<string, string> = {};
    for (const task of ['report', 'load', 'transform', 'extract', 'other']) ids[task] = (await controller.submit(task, { logicalDate: DAY })).id;
    // another day's chain is not touched
    const otherDay = await controller.submit('transform', { logicalDate: '2024-07-02T00:00:00.000Z' });
    for (const id of Object.values(ids)) await untilState(controller, id, 'succeeded');
    await untilState(controller, otherDay.id, ['succeeded', 'pending']);
    order.length = 0;

    const result = await controller.rerun({ instanceId: ids.extract }, { downstream: true });
    expect(result.applied.map((a) => [a.instanceId, a.to])).toEqual([
      [ids.extract, 'queued'],
      [ids.transform, 'pending'],
      [ids.load, 'pending'],
      [ids.report, 'pending'],
    ]);
    for (const task of ['extract', 'transform', 'load', 'report']) {
      expect((await untilState(controller, ids[task], 'succeeded')).attempt).toBe(2);
    }
    expect(order).toEqual(['extract#2', 'transform#2', 'load#2', 'report#2']);
    expect((await controller.get(ids.other))?.attempt).toBe(1);
    expect((await controller.get(otherDay.id))?.attempt).toBe(1);
  });

  it('rerunning an instance that is still running is rejected with ILLEGAL_TRANSITION', async () => {
    const { controller } = controllerWith({ job: untilAborted });
    controller.define({ id: 'job' });
    await controller.start();
    const job = await controller.submit('job');
    const running = await untilState(controller, job.id, 'running');
    const result = await controller.rerun({ instanceId: job.id });
    expect(result.rejected).toMatchObject([{ instanceId: job.id, code: 'ILLEGAL_TRANSITION' }]);
    expect((await controller.get(job.id))?.version).toBe(running.version);
    await controller.stop({ instanceId: job.id }, { force: true });
  });

  it('a rerun whose upstream has not succeeded waits pending, then runs when it has', async () => {
    const { controller } = controllerWith({ up: () => 'u', down: () => 'd' });
    controller.define({ id: 'up' });
    controller.define({ id: 'down', dependsOn: ['up'] });
    const up = await controller.submit('up', { logicalDate: DAY });
    const down = await controller.submit('down', { logicalDate: DAY });
    await controller.pause({ instanceId: up.id });
    await controller.stop({ instanceId: down.id });
    const result = await controller.rerun({ instanceId: down.id });
    expect(result.applied).toEqual([{ instanceId: down.id, from: 'stopped', to: 'pending', changed: true }]);
    await controller.start();
    await controller.resume({ instanceId: up.id });
    expect((await untilState(controller, down.id, 'succeeded')).attempt).toBe(2);
    expect(await history(controller, down.id)).toContain('stopped --rerun_pending--> pending');
  });
});

import { describe, expect, it } from 'vitest';
import { AbortReason } from '../../src/index.js';
import { createTestController } from '../../src/testing/index.js';
import { controllerWith, deferred, history, sleep, untilState } from '../support.js';

describe('stop', () => {
  it('stops waiting instances (pending, queued, paused) at once', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'up' });
    controller.define({ id: 'down', dependsOn: ['up'] });
    const day = '2024-06-01T00:00:00.000Z';
    const up = await controller.submit('up', { logicalDate: day });
    const down = await controller.submit('down', { logicalDate: day });
    const other = await controller.submit('up');
    await controller.pause({ instanceId: other.id });

    const result = await controller.stop({ instanceIds: [up.id, down.id, other.id] });
    expect(result.applied).toEqual([
      { instanceId: up.id, from: 'queued', to: 'stopped', changed: true },
      { instanceId: down.id, from: 'pending', to: 'stopped', changed: true },
      { instanceId: other.id, from: 'paused', to: 'stopped', changed: true },
    ]);
    for (const id of [up.id, down.id, other.id]) expect((await controller.get(id))?.endedAt).toBeDefined();
  });

  it('stop fires the signal of a running instance, which is stopped once its executor exits', async () => {
    let reason: unknown;
    const { controller } = controllerWith({
      job: async (ctx) => {
        try {
          await sleep(10_000, ctx.signal);
        } catch (err) {
          reason = err;
          await sleep(15); // clean-up inside the grace period
          throw err;
        }
      },
    });
    controller.define({ id: 'job' });
    await controller.start();
    const job = await controller.submit('job');
    await untilState(controller, job.id, 'running');

    const result = await controller.stop({ instanceId: job.id }, { graceMs: 5_000, reason: 'bad deploy' });
    expect(result.applied).toEqual([{ instanceId: job.id, from: 'running', to: 'stopping', changed: true }]);
    expect((reason as AbortReason | undefined)?.kind).toBe('stop');
    expect((await controller.get(job.id))?.state).toBe('stopping');
    const stopped = await controller.waitFor(job.id, { timeoutMs: 2000 });
    expect(stopped.state).toBe('stopped');
    expect(stopped.lease).toBeUndefined();
    expect((await history(controller, job.id)).slice(-2)).toEqual([
      'running --stop--> stopping',
      'stopping --exited--> stopped',
    ]);
    const [command] = await controller.audit({ instanceId: job.id, kind: 'command' });
    expect(command).toMatchObject({ action: 'stop', reason: 'bad deploy' });
  });

  it('after the default 10 s grace the work is abandoned, the instance stopped, and its late return only audited', async () => {
    const finish = deferred<string>();
    let signal: AbortSignal | undefined;
    const h = await createTestController({
      handlers: {
        job: (ctx) => {
          signal = ctx.signal;
          return finish.promise; // ignores the signal
        },
      },
    });
    h.controller.define({ id: 'job' });
    const job = await h.controller.submit('job');
    await h.until(job.id, 'running');

    await h.controller.stop({ instanceId: job.id });
    expect(signal?.aborted).toBe(true);
    await h.advance(9_999);
    expect((await h.controller.get(job.id))?.state).toBe('stopping');
    await h.advance(1);
    const stopped = await h.controller.get(job.id);
    expect(stopped?.state).toBe('stopped');
    expect((await history(h.controller, job.id)).at(-1)).toBe('stopping --abandon--> stopped');

    finish.resolve('too late');
    await h.advance(10);
    expect(await h.controller.get(job.id)).toEqual(stopped);
    const late = await h.controller.audit({ instanceId: job.id, kind: 'late_result' });
    expect(late).toHaveLength(1);
    expect(late[0]).toMatchObject({
      kind: 'late_result',
      instanceId: job.id,
      attempt: 1,
      result: { outcome: 'succeeded', value: 'too late' },
    });
    await h.controller.shutdown({ graceMs: 0 });
  });

  it('force stop ends a running instance stopped at once and abandons its work', async () => {
    const finish = deferred<string>();
    let signal: AbortSignal | undefined;
    const { controller } = controllerWith({
      job: (ctx) => {
        signal = ctx.signal;
        return finish.promise;
      },
    });
    controller.define({ id: 'job' });
    await controller.start();
    const job = await controller.submit('job');
    await untilState(controller, job.id, 'running');

    const result = await controller.stop({ instanceId: job.id }, { force: true });
    expect(result.applied).toEqual([{ instanceId: job.id, from: 'running', to: 'stopped', changed: true }]);
    expect(signal?.aborted).toBe(true);
    const stopped = await controller.get(job.id);
    finish.resolve('late');
    await sleep(10);
    expect(await controller.get(job.id)).toEqual(stopped);
    expect(await controller.audit({ instanceId: job.id, kind: 'late_result' })).toHaveLength(1);
  });

  it('force on a stopping instance cuts its grace period short', async () => {
    const stalled = deferred();
    const { controller } = controllerWith({ job: () => stalled.promise });
    controller.define({ id: 'job' });
    await controller.start();
    const job = await controller.submit('job');
    await untilState(controller, job.id, 'running');
    await controller.stop({ instanceId: job.id }, { graceMs: 60_000 });
    const result = await controller.stop({ instanceId: job.id }, { force: true });
    expect(result.applied).toEqual([{ instanceId: job.id, from: 'stopping', to: 'stopped', changed: true }]);
    stalled.resolve();
  });

  it('stop applies to a pausing instance', async () => {
    let signal: AbortSignal | undefined;
    const { controller } = controllerWith({
      job: (ctx) => {
        signal = ctx.signal;
        return sleep(10_000, ctx.signal);
      },
    });
    controller.define({ id: 'job' });
    await controller.start();
    const job = await controller.submit('job');
    await untilState(controller, job.id, 'running');
    await controller.pause({ instanceId: job.id });
    const result = await controller.stop({ instanceId: job.id });
    expect(result.applied).toEqual([{ instanceId: job.id, from: 'pausing', to: 'stopping', changed: true }]);
    expect(signal?.aborted).toBe(true);
    expect((await controller.waitFor(job.id, { timeoutMs: 2000 })).state).toBe('stopped');
  });

  it('stopping what is already stopped is applied with changed: false', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'job' });
    const job = await controller.submit('job');
    await controller.stop({ instanceId: job.id });
    const before = await controller.get(job.id);
    const again = await controller.stop({ instanceId: job.id }, { force: true });
    expect(again.applied).toEqual([{ instanceId: job.id, from: 'stopped', to: 'stopped', changed: false }]);
    expect(again.rejected).toEqual([]);
    expect(await controller.get(job.id)).toEqual(before);
  });

  it('stopping a succeeded instance is rejected with ILLEGAL_TRANSITION', async () => {
    const { controller } = controllerWith({ job: () => 1 });
    controller.define({ id: 'job' });
    await controller.start();
    const job = await controller.submit('job');
    const done = await controller.waitFor(job.id, { timeoutMs: 2000 });
    const result = await controller.stop({ instanceId: job.id });
    expect(result.rejected).toMatchObject([{ instanceId: job.id, code: 'ILLEGAL_TRANSITION' }]);
    expect(await controller.get(job.id)).toEqual(done);
  });

  it('an explicit target reports every instance: what cannot be stopped lands in rejected, the rest is stopped', async () => {
    const { controller } = controllerWith({ job: () => 'ok' });
    controller.define({ id: 'job' });
    await controller.start();
    const done = await controller.submit('job');
    await untilState(controller, done.id, 'succeeded');
    await controller.shutdown({ graceMs: 0 });
    const waiting = await controller.submit('job');
    const result = await controller.stop({ instanceIds: [done.id, waiting.id] });
    expect(result.applied).toEqual([{ instanceId: waiting.id, from: 'queued', to: 'stopped', changed: true }]);
    expect(result.rejected).toMatchObject([{ instanceId: done.id, code: 'ILLEGAL_TRANSITION' }]);
    expect(result.status).toBe('completed');
  });

  it('a task target stops every unfinished instance of the task and leaves finished ones alone', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'job' });
    const a = await controller.submit('job');
    const b = await controller.submit('job');
    await controller.stop({ instanceId: a.id });
    const result = await controller.stop({ taskId: 'job' });
    expect(result.applied).toEqual([{ instanceId: b.id, from: 'queued', to: 'stopped', changed: true }]);
    expect(result.rejected).toEqual([]);
  });
});

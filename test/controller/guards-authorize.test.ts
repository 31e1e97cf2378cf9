import { describe, expect, it } from 'vitest';
import { TaskControlError, type AuthRequest } from '../../src/index.js';
import { controllerWith, eventually, sleep, untilState } from '../support.js';

describe('authorize', () => {
  it('a denied command throws FORBIDDEN, is audited as a command entry, and changes nothing', async () => {
    const asked: AuthRequest[] = [];
    const { controller } = controllerWith(undefined, {
      environment: 'prod',
      authorize: (req) => {
        asked.push(req);
        return req.actor === 'admin';
      },
    });
    controller.define({ id: 'job', group: 'finance' });
    const job = await controller.submit('job', { actor: 'admin' });
    const commands: unknown[] = [];
    controller.on('command', (e) => commands.push(e));

    const err = await controller.stop({ instanceId: job.id }, { actor: 'mallory', reason: 'why not', force: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskControlError);
    expect(err).toMatchObject({ code: 'FORBIDDEN', message: expect.stringContaining('mallory') });
    expect(await controller.get(job.id)).toEqual(job);
    expect(commands).toEqual([]);

    expect(asked.at(-1)).toMatchObject({
      action: 'stop',
      actor: 'mallory',
      target: { instanceId: job.id },
      options: { reason: 'why not', force: true },
      environment: 'prod',
      tasks: ['job'],
      groups: ['finance'],
    });
    const entries = await controller.audit({ actor: 'mallory' });
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ kind: 'command', action: 'stop', actor: 'mallory', target: { instanceId: job.id }, result: { denied: true, code: 'FORBIDDEN' } });
    expect(await controller.audit({ kind: 'transition', actor: 'mallory' })).toEqual([]);
  });

  it('is asked once per call of submit and of each control command, with the task and group a scope target names', async () => {
    const asked: AuthRequest[] = [];
    const { controller } = controllerWith(undefined, { authorize: (req) => (asked.push(req), true) });
    controller.define({ id: 'job', group: 'etl' });
    const job = await controller.submit('job', { actor: 'ann' });
    await controller.pause({ taskId: 'job' }, { actor: 'ann' });
    await controller.resume({ group: 'etl' }, { actor: 'ann' });
    await controller.stop({ instanceIds: [job.id] }, { actor: 'ann' });
    await controller.rerun({ all: true }, { actor: 'ann' });
    expect(asked.map((r) => [r.action, r.tasks, r.groups])).toEqual([
      ['submit', ['job'], ['etl']],
      ['pause', ['job'], ['etl']],
      ['resume', ['job'], ['etl']],
      ['stop', ['job'], ['etl']],
      ['rerun', ['job'], ['etl']],
    ]);
    expect(asked[0]).toMatchObject({ taskId: 'job', target: { taskId: 'job' } });
  });

  it('a denied submit creates nothing', async () => {
    const { controller } = controllerWith(undefined, { authorize: async () => false });
    controller.define({ id: 'job' });
    await expect(controller.submit('job', { actor: 'bob' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect((await controller.list()).items).toEqual([]);
    expect(await controller.audit()).toMatchObject([{ kind: 'command', action: 'submit', actor: 'bob' }]);
  });

  it('an authorize hook that throws denies', async () => {
    const { controller } = controllerWith(undefined, {
      authorize: () => {
        throw new Error('policy service down');
      },
    });
    controller.define({ id: 'job' });
    await expect(controller.pause({ taskId: 'job' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(await controller.heldScopes()).toEqual([]);
    expect((await controller.audit())[0]).toMatchObject({ reason: 'policy service down' });
  });
});

describe('guards', () => {
  it('a host guard can refuse a change: the instance lands in rejected with the guard named, nothing changes', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'job' });
    const job = await controller.submit('job');
    await controller.stop({ instanceId: job.id });
    const remove = controller.addGuard({
      name: 'freeze',
      events: ['rerun', 'rerun_pending'],
      check: ({ actor }) => actor === 'release-manager' || 'reruns are frozen during the release',
    });
    const before = await controller.get(job.id);
    const refused = await controller.rerun({ instanceId: job.id }, { actor: 'dev' });
    expect(refused.applied).toEqual([]);
    expect(refused.rejected).toEqual([{ instanceId: job.id, code: 'GUARD_REJECTED', message: 'reruns are frozen during the release' }]);
    expect(await controller.get(job.id)).toEqual(before);

    const allowed = await controller.rerun({ instanceId: job.id }, { actor: 'release-manager' });
    expect(allowed.applied).toMatchObject([{ to: 'queued', changed: true }]);
    remove();
    await controller.stop({ instanceId: job.id });
    expect((await controller.rerun({ instanceId: job.id }, { actor: 'dev' })).applied).toHaveLength(1);
  });

  it('a guard with its own code refuses with that code', async () => {
    const { controller } = controllerWith(undefined, {
      guards: [{ name: 'window', events: '*', check: ({ event }) => event !== 'pause' || { code: 'CONFLICT', message: 'outside the maintenance window' } }],
    });
    controller.define({ id: 'job' });
    const job = await controller.submit('job');
    const result = await controller.pause({ instanceId: job.id });
    expect(result.rejected).toEqual([{ instanceId: job.id, code: 'CONFLICT', message: 'outside the maintenance window' }]);
  });

  it('a guard that refuses to start work keeps it queued without blocking the controller', async () => {
    let open = false;
    const { controller } = controllerWith({ job: () => 'ran' }, { concurrency: 1, pollMs: 10 });
    controller.addGuard({ name: 'window', events: ['start'], check: () => open || 'outside the window' });
    controller.define({ id: 'job' });
    await controller.start();
    const job = await controller.submit('job');
    await sleep(20);
    expect((await controller.get(job.id))?.state).toBe('queued');
    open = true;
    await untilState(controller, job.id, 'succeeded');
  });

  it('the attemptsLeft guard keeps automatic retries within maxAttempts', async () => {
    const { controller } = controllerWith({ job: () => Promise.reject(new Error('always')) });
    controller.define({ id: 'job', maxAttempts: 2 });
    await controller.start();
    const job = await controller.submit('job');
    await eventually(async () => (await controller.get(job.id))?.attempt === 2, 'the retry');
    await untilState(controller, job.id, 'failed');
    await sleep(30);
    const final = await controller.get(job.id);
    expect(final).toMatchObject({ state: 'failed', attempt: 2 });
    expect(final?.retryAt).toBeUndefined();
    // a person may still rerun it: maxAttempts limits automatic retries only
    const rerun = await controller.rerun({ instanceId: job.id });
    expect(rerun.applied).toMatchObject([{ to: 'queued' }]);
  });
});

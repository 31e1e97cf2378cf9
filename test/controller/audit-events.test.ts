import { describe, expect, expectTypeOf, it } from 'vitest';
import type { CommandEvent, ControlResult, InstanceState, TransitionEvent } from '../../src/index.js';
import { controllerWith, untilState } from '../support.js';

describe('audit trail', () => {
  it('records every command and every transition, oldest first', async () => {
    const { controller } = controllerWith({ job: () => 'ok' });
    controller.define({ id: 'job' });
    const job = await controller.submit('job', { actor: 'alice' });
    const paused = await controller.pause({ instanceId: job.id }, { actor: 'bob', reason: 'check inputs' });
    const resumed = await controller.resume({ instanceId: job.id }, { actor: 'bob' });
    await controller.start();
    await untilState(controller, job.id, 'succeeded');

    const entries = await controller.audit();
    expect(entries.map((e) => [e.kind, e.action ?? e.event, e.actor])).toEqual([
      ['transition', 'submit', 'alice'],
      ['command', 'pause', 'bob'],
      ['transition', 'pause', 'bob'],
      ['command', 'resume', 'bob'],
      ['transition', 'resume', 'bob'],
      ['transition', 'start', expect.stringMatching(/^system:/)],
      ['transition', 'succeed', 'system:executor'],
    ]);
    const ats = entries.map((e) => e.at);
    expect([...ats].sort()).toEqual(ats);
    expect(entries[1]).toMatchObject({ commandId: paused.commandId, reason: 'check inputs', result: paused, target: { instanceId: job.id } });
    expect(entries[2]).toMatchObject({ commandId: paused.commandId, instanceId: job.id, from: 'queued', to: 'paused' });
    expect(entries[4]).toMatchObject({ commandId: resumed.commandId, from: 'paused', to: 'queued' });
  });

  it('filters by instance (command entries included), command id, actor, and keeps the newest `limit`', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'job' });
    const a = await controller.submit('job');
    const b = await controller.submit('job');
    const both = await controller.pause({ instanceIds: [a.id, b.id] }, { actor: 'carol' });
    const onlyB = await controller.stop({ instanceId: b.id }, { actor: 'dave' });

    const forA = await controller.audit({ instanceId: a.id });
    expect(forA.map((e) => [e.kind, e.action ?? e.event])).toEqual([
      ['transition', 'submit'],
      ['command', 'pause'],
      ['transition', 'pause'],
    ]);
    const forB = await controller.audit({ instanceId: b.id });
    expect(forB.filter((e) => e.kind === 'command').map((e) => e.commandId)).toEqual([both.commandId, onlyB.commandId]);

    const byCommand = await controller.audit({ commandId: both.commandId });
    expect(byCommand.map((e) => [e.kind, e.instanceId])).toEqual([
      ['command', undefined],
      ['transition', a.id],
      ['transition', b.id],
    ]);
    expect((await controller.audit({ actor: 'dave' })).map((e) => e.kind)).toEqual(['command', 'transition']);

    const all = await controller.audit();
    const newest = await controller.audit({ limit: 2 });
    expect(newest).toEqual(all.slice(-2));
    expect((await controller.audit({ instanceId: b.id, limit: 1 }))[0]).toEqual(forB.at(-1));
  });

  it('records a rejected command with its rejections', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'job' });
    const job = await controller.submit('job');
    await controller.stop({ instanceId: job.id });
    const result = await controller.resume({ instanceId: job.id }, { actor: 'eve' });
    const [entry] = await controller.audit({ commandId: result.commandId });
    expect(entry).toMatchObject({ kind: 'command', action: 'resume', actor: 'eve', instanceIds: [job.id] });
    expect((entry.result as ControlResult).rejected).toMatchObject([{ instanceId: job.id, code: 'ILLEGAL_TRANSITION' }]);
  });
});

describe('events', () => {
  it('emits typed transition and command events after the commit, in audit order', async () => {
    const { controller, store } = controllerWith({ job: () => 'ok' });
    controller.define({ id: 'job' });
    const transitions: TransitionEvent[] = [];
    const commands: CommandEvent[] = [];
    const stateWhenEmitted: (InstanceState | undefined)[] = [];
    controller.on('transition', (e) => {
      expectTypeOf(e.from).toEqualTypeOf<InstanceState | 'none'>();
      expectTypeOf(e.to).toEqualTypeOf<InstanceState>();
      transitions.push(e);
      void store.getInstance(e.instanceId).then((i) => stateWhenEmitted.push(i?.state));
    });
    controller.on('command', (e) => {
      expectTypeOf(e).toMatchTypeOf<ControlResult & { actor?: string }>();
      commands.push(e);
    });
    const job = await controller.submit('job', { actor: 'alice' });
    const paused = await controller.pause({ instanceId: job.id }, { actor: 'bob' });
    await controller.resume({ instanceId: job.id }, { actor: 'bob' });
    await controller.start();
    await untilState(controller, job.id, 'succeeded');

    expect(transitions.map((e) => `${e.from}>${e.to}`)).toEqual([
      'none>queued',
      'queued>paused',
      'paused>queued',
      'queued>running',
      'running>succeeded',
    ]);
    // each event saw its own commit already in the store
    expect(stateWhenEmitted).toEqual(['queued', 'paused', 'queued', 'running', 'succeeded']);
    expect(transitions[1]).toMatchObject({ instanceId: job.id, taskId: 'job', event: 'pause', actor: 'bob', attempt: 1, at: expect.any(String) });
    expect(commands).toHaveLength(2);
    expect(commands[0]).toEqual({ ...paused, actor: 'bob' });

    const audited = (await controller.audit({ kind: 'transition' })).map((e) => [e.instanceId, e.from, e.to, e.event, e.at]);
    expect(transitions.map((e) => [e.instanceId, e.from, e.to, e.event, e.at])).toEqual(audited);
  });

  it('a command repeated with the same idempotencyKey returns the first result and changes nothing', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'job' });
    const a = await controller.submit('job');
    const commands: CommandEvent[] = [];
    controller.on('command', (e) => commands.push(e));
    const first = await controller.pause({ instanceId: a.id }, { idempotencyKey: 'pause-once' });
    await controller.resume({ instanceId: a.id });
    const auditBefore = await controller.audit();
    const instanceBefore = await controller.get(a.id);

    const again = await controller.pause({ instanceId: a.id }, { idempotencyKey: 'pause-once' });
    expect(again).toEqual(first);
    expect(again.commandId).toBe(first.commandId);
    expect(await controller.get(a.id)).toEqual(instanceBefore);
    expect(instanceBefore?.state).toBe('queued');
    expect(await controller.audit()).toEqual(auditBefore);
    expect(commands).toHaveLength(2);
  });

  it('concurrent commands with the same idempotencyKey apply once', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'job' });
    const a = await controller.submit('job');
    await controller.stop({ instanceId: a.id });
    const results = await Promise.all(Array.from({ length: 5 }, () => controller.rerun({ instanceId: a.id }, { idempotencyKey: 'rerun-1' })));
    expect(new Set(results.map((r) => r.commandId)).size).toBe(1);
    expect((await controller.get(a.id))?.attempt).toBe(2);
    expect(await controller.audit({ kind: 'command' })).toHaveLength(2);
  });

  it('an explicit instance id that does not exist throws NOT_FOUND and changes nothing', async () => {
    const { controller } = controllerWith(undefined);
    controller.define({ id: 'job' });
    const a = await controller.submit('job');
    const ghost = '01HZZZZZZZZZZZZZZZZZZZZZZZ';
    for (const call of [
      () => controller.pause({ instanceId: ghost }),
      () => controller.stop({ instanceIds: [a.id, ghost] }),
      () => controller.resume({ instanceId: ghost }),
      () => controller.rerun({ instanceIds: [ghost] }),
    ]) {
      await expect(call()).rejects.toMatchObject({ name: 'TaskControlError', code: 'NOT_FOUND', message: expect.stringContaining(ghost) });
    }
    expect((await controller.get(a.id))?.state).toBe('queued');
    expect(await controller.audit({ kind: 'command' })).toEqual([]);
  });
});

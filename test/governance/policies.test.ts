import { describe, expect, it } from 'vitest';
import type { AuthRequest, TaskHandler } from '../../src/index.js';
import { failure, harness } from './support.js';

/** A task that fails when its params say so. */
const flaky: TaskHandler = async (ctx) => {
  if (ctx.params.fail) throw new Error('upstream API down');
  return 'ok';
};

describe('policy: pauseAfterFailures', () => {
  it('holds the task scope after N consecutive failed instances, as system:pauseAfterFailures; a success resets the count', async () => {
    const asked: AuthRequest[] = [];
    const h = await harness({ handlers: { sync: flaky, other: flaky }, authorize: (req) => (asked.push(req), req.actor !== undefined) });
    const c = h.controller;
    c.define({ id: 'sync', pauseAfterFailures: 3 });
    c.define({ id: 'other' });
    const run = async (fail: boolean, taskId = 'sync') => {
      const i = await c.submit(taskId, { actor: 'cron', params: { fail } });
      return h.until(i.id, ['failed', 'succeeded', 'paused']);
    };

    await run(true);
    await run(true);
    await run(false); // resets the streak
    await run(true);
    await run(true);
    await run(true, 'other'); // another task's failures do not count
    expect(await c.heldScopes()).toEqual([]);
    const askedBefore = asked.length;
    expect((await run(true)).state).toBe('failed'); // third in a row
    expect(await c.heldScopes()).toEqual([
      expect.objectContaining({ id: 'task:sync', kind: 'task', key: 'sync', actor: 'system:pauseAfterFailures', reason: '3 consecutive failed instances' }),
    ]);
    expect(asked.length).toBe(askedBefore + 1); // the submit; the policy's pause was not asked
    expect(await c.audit({ actor: 'system:pauseAfterFailures', kind: 'command' })).toEqual([
      expect.objectContaining({ action: 'pause', target: { taskId: 'sync' }, reason: '3 consecutive failed instances' }),
    ]);
    // new work of the task waits, other tasks run
    expect((await c.submit('sync', { actor: 'cron' })).state).toBe('paused');
    expect((await run(false, 'other')).state).toBe('succeeded');

    // an operator releases it: the count starts again from zero
    await c.resume({ taskId: 'sync' }, { actor: 'ops' });
    await run(true);
    await run(true);
    expect(await c.heldScopes()).toEqual([]);
    await run(true);
    expect((await c.heldScopes()).map((s) => s.actor)).toEqual(['system:pauseAfterFailures']);
  });

  it('counts instances that failed for good: retried attempts are one failure', async () => {
    const h = await harness({ handlers: { sync: flaky } });
    const c = h.controller;
    c.define({ id: 'sync', pauseAfterFailures: 2, maxAttempts: 3, retryDelayMs: 1000 });
    const a = await c.submit('sync', { params: { fail: true } });
    const failed = await h.until(a.id, 'failed', { stepMs: 500 });
    await h.advance(5000);
    expect((await c.get(a.id))?.attempt).toBe(3);
    expect(failed.state).toBe('failed');
    expect(await c.heldScopes()).toEqual([]);
    const b = await c.submit('sync', { params: { fail: true } });
    await h.advance(5000);
    expect((await c.get(b.id))?.state).toBe('failed');
    expect((await c.heldScopes()).map((s) => s.id)).toEqual(['task:sync']);
  });

  it('pauseAfterFailures must be a positive integer', async () => {
    const h = await harness();
    const err = await failure(() => h.controller.define({ id: 'x', pauseAfterFailures: 0 }));
    expect(err.code).toBe('VALIDATION');
    expect(err.message).toMatch(/task\.pauseAfterFailures/);
  });
});

describe('policy: holdWhile(scope, condition, { name, checkEveryMs })', () => {
  async function world() {
    const h = await harness({ authorize: (req) => req.actor !== undefined });
    const c = h.controller;
    c.define({ id: 'load', group: 'etl' });
    c.define({ id: 'report', group: 'finance' });
    const a = await c.submit('load', { actor: 'cron' });
    const r = await c.submit('report', { actor: 'cron' });
    return { ...h, c, a, r };
  }

  it('holds the scope while the condition is true and releases it when it turns false, as system:<name>', async () => {
    const { c, a, r, advance } = await world();
    let diskFull = true;
    let checks = 0;
    const remove = c.holdWhile({ group: 'etl' }, () => (checks++, diskFull), { name: 'disk-full', checkEveryMs: 1000 });
    await advance(0);
    expect(await c.heldScopes()).toEqual([expect.objectContaining({ id: 'group:etl', actor: 'system:disk-full', reason: 'disk-full: condition holds' })]);
    expect((await c.get(a.id))?.state).toBe('paused');
    expect((await c.get(r.id))?.state).toBe('queued');
    expect((await c.submit('load', { actor: 'cron', logicalDate: '2024-01-02' })).state).toBe('paused');

    await advance(3000); // still true: nothing more happens
    expect(await c.audit({ actor: 'system:disk-full', kind: 'command' })).toHaveLength(1);
    diskFull = false;
    await advance(1000);
    expect(await c.heldScopes()).toEqual([]);
    expect((await c.get(a.id))?.state).toBe('queued');
    expect((await c.audit({ actor: 'system:disk-full', kind: 'command' })).map((e) => `${e.action}: ${e.reason}`)).toEqual([
      'pause: disk-full: condition holds',
      'resume: disk-full: condition cleared',
    ]);

    diskFull = true;
    await advance(1000);
    expect((await c.heldScopes()).map((s) => s.actor)).toEqual(['system:disk-full']);

    remove();
    const seen = checks;
    diskFull = false;
    await advance(10_000);
    expect(checks).toBe(seen);
    expect((await c.heldScopes()).map((s) => s.actor)).toEqual(['system:disk-full']); // removing a policy releases nothing
  });

  it('rests while the controller is shut down and checks again at once when it starts', async () => {
    const { c, advance } = await world();
    let short = false;
    let checks = 0;
    const remove = c.holdWhile({ group: 'etl' }, () => (checks++, short), { name: 'disk-full', checkEveryMs: 1000 });
    await advance(0);
    expect(checks).toBe(1);
    await c.shutdown({ graceMs: 0 });
    short = true;
    await advance(10_000);
    expect(checks).toBe(1); // no checks, so no hold, while shut down
    expect(await c.heldScopes()).toEqual([]);
    await c.start();
    await advance(0);
    expect(checks).toBe(2);
    expect((await c.heldScopes()).map((s) => s.actor)).toEqual(['system:disk-full']);
    await advance(1000);
    expect(checks).toBe(3);
    remove();
  });

  it('a restart while a check is still out keeps one round of checks, not two', async () => {
    const { c, advance } = await world();
    let checks = 0;
    let answerFirst!: (short: boolean) => void;
    const remove = c.holdWhile(
      { group: 'etl' },
      () => (++checks === 1 ? new Promise<boolean>((resolve) => (answerFirst = resolve)) : false),
      { name: 'slow-probe', checkEveryMs: 1000 },
    );
    await advance(0);
    expect(checks).toBe(1); // still waiting for its answer
    await c.shutdown({ graceMs: 0 });
    await c.start();
    await advance(0);
    expect(checks).toBe(2); // start() checks again at once
    answerFirst(false); // the overtaken check ends: it must not start a second round
    await advance(0);
    await advance(1000);
    expect(checks).toBe(3);
    await advance(1000);
    expect(checks).toBe(4);
    remove();
  });

  it("an operator's explicit resume wins until the condition turns true again", async () => {
    const { c, a, advance } = await world();
    let short = true;
    const remove = c.holdWhile({ taskId: 'load' }, async () => short, { name: 'memory', checkEveryMs: 500 });
    await advance(0);
    expect((await c.heldScopes()).map((s) => s.actor)).toEqual(['system:memory']);

    await c.resume({ taskId: 'load' }, { actor: 'ops', reason: 'we will risk it' });
    await advance(5000); // condition still true, but the operator decided
    expect(await c.heldScopes()).toEqual([]);
    expect((await c.get(a.id))?.state).toBe('queued');

    short = false;
    await advance(500);
    expect(await c.heldScopes()).toEqual([]);
    short = true; // short again: the policy holds again
    await advance(500);
    expect((await c.heldScopes()).map((s) => s.actor)).toEqual(['system:memory']);
    expect((await c.get(a.id))?.state).toBe('paused');
    remove();
  });

  it('does not take over a scope an operator already holds, nor release it', async () => {
    const { c, advance } = await world();
    await c.pause({ all: true }, { actor: 'ops' });
    let short = true;
    const remove = c.holdWhile({ all: true }, () => short, { name: 'quota', checkEveryMs: 100 });
    await advance(300);
    short = false;
    await advance(300);
    expect(await c.heldScopes()).toEqual([expect.objectContaining({ id: 'all', actor: 'ops' })]);
    expect(await c.audit({ actor: 'system:quota' })).toEqual([]);
    remove();
  });

  it('a condition that throws is reported as an error event and checked again later', async () => {
    const { c, advance } = await world();
    const errors: { where: string }[] = [];
    c.on('error', (e) => errors.push(e));
    let n = 0;
    const remove = c.holdWhile({ taskId: 'load' }, () => {
      if (++n === 1) throw new Error('metrics endpoint down');
      return true;
    }, { name: 'probe', checkEveryMs: 100 });
    await advance(100);
    expect(errors.map((e) => e.where)).toEqual(['holdWhile:probe']);
    expect((await c.heldScopes()).map((s) => s.actor)).toEqual(['system:probe']);
    remove();
  });

  it('bad arguments are VALIDATION naming the field: checkEveryMs 0, a non-scope target, no name, no function', async () => {
    const { c } = await world();
    const cases: [() => unknown, RegExp][] = [
      [() => c.holdWhile({ taskId: 'load' }, () => true, { name: 'x', checkEveryMs: 0 }), /^options\.checkEveryMs/],
      [() => c.holdWhile({ instanceId: 'i' } as never, () => true, { name: 'x', checkEveryMs: 10 }), /^scope/],
      [() => c.holdWhile({ taskId: 'load' }, () => true, { checkEveryMs: 10 } as never), /^options\.name/],
      [() => c.holdWhile({ taskId: 'load' }, () => true, { name: 'has space', checkEveryMs: 10 }), /^options\.name/],
      [() => c.holdWhile({ taskId: 'load' }, true as never, { name: 'x', checkEveryMs: 10 }), /^condition/],
    ];
    for (const [call, message] of cases) {
      const err = await failure(call);
      expect(err.code).toBe('VALIDATION');
      expect(err.message).toMatch(message);
    }
    expect(await c.heldScopes()).toEqual([]);
  });
});

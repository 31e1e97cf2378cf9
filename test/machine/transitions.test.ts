import { afterAll, describe, expect, it } from 'vitest';
import {
  FunctionExecutor,
  INSTANCE_STATES,
  MemoryStateStore,
  StateMachine,
  TaskControlError,
  TaskController,
  TRANSITIONS,
  findTransition,
  isTerminal,
  type Instance,
  type InstanceState,
  type MachineEvent,
} from '../../src/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { deferred, fakeSleep } from '../support.js';

const EVENTS = [...new Set(TRANSITIONS.map((r) => r.event))] as MachineEvent[];
const FROM = ['none', ...INSTANCE_STATES] as const;
const rowKey = (from: string, event: string) => `${from} --${event}-->`;

describe('TRANSITIONS, the table', () => {
  it('has at most one row per (from, event)', () => {
    const keys = TRANSITIONS.map((r) => rowKey(r.from, r.event));
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('names only known states, and is frozen', () => {
    for (const row of TRANSITIONS) {
      expect(FROM).toContain(row.from);
      expect(INSTANCE_STATES).toContain(row.to);
    }
    expect(Object.isFrozen(TRANSITIONS)).toBe(true);
    expect(() => (TRANSITIONS as unknown as unknown[]).push({ from: 'succeeded', event: 'start', to: 'running' })).toThrow();
  });

  it('creates instances only through submit events, and leaves terminal states only by a new attempt', () => {
    expect(TRANSITIONS.filter((r) => r.from === 'none').map((r) => r.event).sort()).toEqual(['submit', 'submit_held', 'submit_pending']);
    for (const row of TRANSITIONS.filter((r) => r.from !== 'none' && isTerminal(r.from))) {
      expect(['rerun', 'rerun_pending', 'retry']).toContain(row.event);
    }
  });

  it('reaches every state from creation', () => {
    const seen = new Set<string>(['none']);
    for (let grew = true; grew; ) {
      grew = false;
      for (const row of TRANSITIONS) {
        if (seen.has(row.from) && !seen.has(row.to)) {
          seen.add(row.to);
          grew = true;
        }
      }
    }
    expect([...seen].sort()).toEqual([...FROM].sort());
  });

  it('refuses every (state, event) pair that is not a row with ILLEGAL_TRANSITION', () => {
    const machine = new StateMachine();
    const now = new Date('2024-01-01T00:00:00Z');
    let refused = 0;
    for (const from of FROM) {
      for (const event of EVENTS) {
        const row = findTransition(from, event);
        const instance = from === 'none' ? undefined : fakeInstance(from);
        const outcome = machine.apply(event, { instance, from, now, task: { id: 't', maxAttempts: 5 } });
        if (row) {
          expect(outcome).toMatchObject({ ok: true, to: row.to });
          continue;
        }
        refused++;
        expect(outcome).toMatchObject({ ok: false, code: 'ILLEGAL_TRANSITION' });
        const err = (() => {
          try {
            machine.applyOrThrow(event, { instance, from, now });
          } catch (e) {
            return e;
          }
        })();
        expect(err).toBeInstanceOf(TaskControlError);
        expect(err).toMatchObject({ code: 'ILLEGAL_TRANSITION', message: expect.stringContaining(event) });
      }
    }
    expect(refused).toBe(FROM.length * EVENTS.length - TRANSITIONS.length);
  });

  it('guards named by rows are checked: attemptsLeft and scopeNotHeld', () => {
    const machine = new StateMachine();
    const now = new Date();
    const failed = { ...fakeInstance('failed'), attempt: 3 };
    expect(machine.apply('retry', { instance: failed, now, task: { id: 't', maxAttempts: 3 } })).toMatchObject({ ok: false, code: 'GUARD_REJECTED', guard: 'attemptsLeft' });
    expect(machine.apply('retry', { instance: failed, now, task: { id: 't', maxAttempts: 4 } })).toMatchObject({ ok: true, to: 'queued' });
    const paused = fakeInstance('paused');
    expect(machine.apply('resume', { instance: paused, now, scopeHeld: true })).toMatchObject({ ok: false, code: 'SCOPE_HELD' });
    expect(machine.apply('resume', { instance: paused, now, scopeHeld: false })).toMatchObject({ ok: true, to: 'queued' });
  });
});

function fakeInstance(state: InstanceState): Instance {
  return { id: 'I1', taskId: 't', params: {}, state, attempt: 1, version: 3, createdAt: '', updatedAt: '' };
}

// -- every row, reached through the real controller ----------------------------------------

const reached = new Set<string>();

/** A controller on a fake clock with a few kinds of work, and a record of the rows it went through. */
async function world(options: { start?: boolean; maxAttempts?: number; concurrency?: number } = {}) {
  const clock = new FakeClock();
  const store = new MemoryStateStore();
  const deaf = deferred<string>();
  const controller = new TaskController({
    store,
    timers: clock,
    clock: clock.date,
    concurrency: options.concurrency,
    executor: new FunctionExecutor({
      slow: async (ctx) => {
        for (let i = 0; i < 1000; i++) {
          await ctx.pausePoint(i);
          await fakeSleep(clock, 1000, ctx.signal);
        }
      },
      tidy: async (ctx) => {
        try {
          for (let i = 0; i < 1000; i++) {
            await ctx.pausePoint(i);
            await fakeSleep(clock, 1000, ctx.signal);
          }
        } finally {
          if (ctx.pauseRequested()) await fakeSleep(clock, 500); // cleans up before it returns
        }
      },
      lazy: (ctx) => fakeSleep(clock, 10_000, ctx.signal), // no pause points
      lazyBoom: async (ctx) => {
        await fakeSleep(clock, 10_000, ctx.signal);
        throw new Error('boom');
      },
      deaf: () => deaf.promise, // hears no signal
      timed: (ctx) => fakeSleep(clock, 3_600_000, ctx.signal),
      quick: () => 'ok',
      boom: () => {
        throw new Error('boom');
      },
      up: (ctx) => {
        if (ctx.params.fail) throw new Error('upstream broke');
        return 'ok';
      },
      down: (ctx) => {
        if (ctx.params.fail) throw new Error('bad input');
        return 'ok';
      },
    }),
  });
  const attempts = options.maxAttempts ?? 1;
  for (const id of ['slow', 'tidy', 'lazy', 'lazyBoom', 'quick', 'boom', 'up']) controller.define({ id, maxAttempts: attempts });
  controller.define({ id: 'deaf', maxAttempts: attempts, timeoutMs: 3_600_000 });
  controller.define({ id: 'timed', timeoutMs: 5_000 });
  controller.define({ id: 'down', dependsOn: ['up'] });
  if (options.start !== false) await controller.start();
  const step = () => clock.advance(0);
  const state = async (id: string) => (await store.getInstance(id))!.state;
  const record = async () => {
    for (const e of await store.queryAudit({ kind: 'transition' })) reached.add(rowKey(e.from!, e.event!));
  };
  const end = async () => {
    await record();
    deaf.resolve('late');
    await controller.shutdown({ graceMs: 0 });
  };
  return { clock, store, controller, step, state, deaf, record, end };
}

const DAY = '2024-01-01T00:00:00.000Z';

describe('every row of TRANSITIONS is reached by the real code path', () => {
  afterAll(() => {
    const missing = TRANSITIONS.map((r) => rowKey(r.from, r.event)).filter((k) => !reached.has(k));
    expect(missing).toEqual([]);
  });

  it('submit, ready, upstream_failed, start, succeed, fail, retry and the waiting states', async () => {
    const w = await world({ maxAttempts: 2 });
    const { controller: c } = w;
    const down = await c.submit('down', { logicalDate: DAY }); // none -> pending
    await c.submit('up', { logicalDate: DAY }); // none -> queued -> running -> succeeded; pending -> queued
    await w.step();
    expect(await w.state(down.id)).toBe('succeeded');
    const orphan = await c.submit('down', { logicalDate: '2024-01-02T00:00:00.000Z' });
    await c.submit('up', { logicalDate: '2024-01-02T00:00:00.000Z', params: { fail: true } });
    await w.step(); // the upstream fails for good: pending -> stopped
    expect(await c.get(orphan.id)).toMatchObject({ state: 'stopped', error: { code: 'UPSTREAM_FAILED' } });
    const boom = await c.submit('boom'); // fail, then retry
    await w.step();
    expect((await c.get(boom.id))?.attempt).toBe(2);
    await c.pause({ taskId: 'quick' });
    const held = await c.submit('quick'); // none -> paused
    expect(held.state).toBe('paused');
    await w.end();
  });

  it('pause and stop of waiting instances, resume, resume_pending and skip', async () => {
    const w = await world({ start: false });
    const { controller: c } = w;
    const pending = await c.submit('down', { logicalDate: DAY });
    await c.pause({ instanceId: pending.id }); // pending -> paused
    await c.resume({ instanceId: pending.id }); // paused -> pending (resume_pending)
    await c.stop({ instanceId: pending.id }); // pending -> stopped
    const queued = await c.submit('quick');
    await c.pause({ instanceId: queued.id }); // queued -> paused
    await c.resume({ instanceId: queued.id }); // paused -> queued
    await c.stop({ instanceId: queued.id }); // queued -> stopped
    const paused = await c.submit('quick');
    await c.pause({ instanceId: paused.id });
    await c.stop({ instanceId: paused.id }); // paused -> stopped
    const skipped = await c.submit('quick');
    await c.pause({ instanceId: skipped.id });
    await c.resume({ instanceId: skipped.id }, { strategy: 'skip' }); // paused -> skipped
    expect(await w.state(skipped.id)).toBe('skipped');
    await w.end();
  });

  it('everything that can happen to a running instance', async () => {
    const w = await world();
    const { controller: c } = w;
    const run = async (task: string) => {
      const i = await c.submit(task);
      await w.step();
      expect(await w.state(i.id)).toBe('running');
      return i.id;
    };
    await c.pause({ instanceId: await run('slow') }); // running -> pausing
    await c.pause({ instanceId: await run('slow') }, { mode: 'force' }); // running -> paused
    await c.stop({ instanceId: await run('slow') }); // running -> stopping
    await c.stop({ instanceId: await run('slow') }, { force: true }); // running -> stopped
    const timed = await c.submit('timed');
    await w.clock.advance(5_000); // running -> failed (timeout)
    expect((await c.get(timed.id))?.error?.code).toBe('TIMEOUT');
    await w.end();
  });

  it('everything that can happen to a pausing instance', async () => {
    const w = await world();
    const { controller: c } = w;
    const pausing = async (task: string) => {
      const i = await c.submit(task);
      await w.step();
      const result = await c.pause({ instanceId: i.id });
      expect(result.applied).toMatchObject([{ from: 'running', to: 'pausing' }]);
      return i.id;
    };
    const atPoint = await pausing('slow');
    await w.clock.advance(1000); // pausing -> paused (pause_point)
    expect(await w.state(atPoint)).toBe('paused');
    const succeeds = await pausing('lazy');
    const fails = await pausing('lazyBoom');
    await w.clock.advance(10_000); // pausing -> succeeded, pausing -> failed
    expect([await w.state(succeeds), await w.state(fails)]).toEqual(['succeeded', 'failed']);
    await c.resume({ instanceId: await pausing('lazy') }); // pausing -> running
    await c.pause({ instanceId: await pausing('lazy') }, { mode: 'force' }); // pausing -> paused
    await c.stop({ instanceId: await pausing('lazy') }); // pausing -> stopping
    await c.stop({ instanceId: await pausing('lazy') }, { force: true }); // pausing -> stopped
    const tidy = await pausing('tidy');
    await w.clock.advance(1000); // unwinds at its pause point, then cleans up
    await c.resume({ instanceId: tidy }); // pausing -> running: the pause is withdrawn too late
    await w.clock.advance(500); // running -> queued (pause_point), and dispatched again
    expect(await c.get(tidy)).toMatchObject({ state: 'running', attempt: 1, checkpoint: 1 });
    const timed = await pausing('timed');
    await w.clock.advance(5_000); // pausing -> failed (timeout)
    expect((await c.get(timed))?.error?.code).toBe('TIMEOUT');
    await w.end();
  });

  it('everything that can happen to a stopping instance', async () => {
    const w = await world();
    const { controller: c } = w;
    const stopping = async (task: string, graceMs = 60_000) => {
      const i = await c.submit(task);
      await w.step();
      const result = await c.stop({ instanceId: i.id }, { graceMs });
      expect(result.applied).toMatchObject([{ from: 'running', to: 'stopping' }]);
      return i.id;
    };
    const exits = await stopping('lazy');
    await w.step(); // stopping -> stopped (exited)
    expect(await w.state(exits)).toBe('stopped');
    await c.stop({ instanceId: await stopping('deaf') }, { force: true }); // stopping -> stopped (force_stop)
    const abandoned = await stopping('deaf', 1_000);
    await w.clock.advance(1_000); // stopping -> stopped (abandon)
    expect(await w.state(abandoned)).toBe('stopped');
    await w.end();
  });

  it('shutdown hands work back: release (not counted against maxAttempts) and recover', async () => {
    const w = await world({ maxAttempts: 2 });
    const { controller: c } = w;
    const released = await c.submit('slow');
    const lastAttempt = await c.submit('slow');
    const pausing = await c.submit('lazy');
    const stopping = await c.submit('deaf');
    await w.step();
    await c.stop({ instanceId: lastAttempt.id }, { force: true });
    await c.rerun({ instanceId: lastAttempt.id }); // attempt 2 of 2
    await w.step();
    await c.pause({ instanceId: pausing.id });
    await c.stop({ instanceId: stopping.id }, { graceMs: 60_000 });
    await w.record();
    // the deaf executor returns only after shutdown has handed its instance back
    setTimeout(() => w.deaf.resolve('late'), 10);
    await c.shutdown({ graceMs: 0 });
    expect([await w.state(released.id), await w.state(lastAttempt.id), await w.state(pausing.id), await w.state(stopping.id)]).toEqual([
      'queued',
      'queued',
      'paused',
      'stopped',
    ]);
    expect((await w.store.getInstance(lastAttempt.id))!.attempt).toBe(3);
    await w.end();
  });

  it("a dead owner's running instances are recovered: requeue, or recover_fail with no attempt left", async () => {
    const store = new MemoryStateStore();
    const frozen = new FakeClock('2024-01-01T00:00:00Z');
    const hang = deferred<void>();
    // its clock never moves again: it never renews its leases (a process that died)
    const dead = new TaskController({ store, timers: frozen, clock: frozen.date, leaseMs: 1_000, executor: new FunctionExecutor({ work: () => hang.promise, once: () => hang.promise }) });
    dead.define({ id: 'work', maxAttempts: 2 });
    dead.define({ id: 'once', maxAttempts: 1 });
    await dead.start();
    const again = await dead.submit('work');
    const spent = await dead.submit('once');
    await frozen.advance(0);
    const later = new FakeClock('2024-01-01T00:10:00Z');
    const survivor = new TaskController({ store, timers: later, clock: later.date, leaseMs: 1_000 });
    survivor.define({ id: 'work', maxAttempts: 2 });
    survivor.define({ id: 'once', maxAttempts: 1 });
    await survivor.start();
    const recovered = (await store.queryAudit({ actor: 'system:recovery' })).map((e) => [e.instanceId, e.event, e.to]);
    expect(recovered).toEqual([
      [again.id, 'requeue', 'queued'],
      [spent.id, 'recover_fail', 'failed'],
    ]);
    expect((await store.getInstance(spent.id))!.error?.code).toBe('ABANDONED');
    for (const e of await store.queryAudit({ kind: 'transition' })) reached.add(rowKey(e.from!, e.event!));
    await survivor.shutdown({ graceMs: 0 });
    hang.resolve();
  });

  it('reruns of every terminal state, straight to queued or waiting for upstream', async () => {
    const w = await world({ start: false });
    const { controller: c } = w;
    // straight to queued: tasks without upstream
    const succeeded = await c.submit('quick');
    const failed = await c.submit('boom');
    const stopped = await c.submit('quick');
    await c.stop({ instanceId: stopped.id });
    const skipped = await c.submit('quick');
    await c.pause({ instanceId: skipped.id });
    await c.resume({ instanceId: skipped.id }, { strategy: 'skip' });
    // waiting for upstream: `down` instances whose `up` is rerun with them, or missing
    const day = (n: number) => `2024-02-0${n}T00:00:00.000Z`;
    const up1 = await c.submit('up', { logicalDate: day(1) });
    const down1 = await c.submit('down', { logicalDate: day(1) });
    const up2 = await c.submit('up', { logicalDate: day(2) });
    const down2 = await c.submit('down', { logicalDate: day(2), params: { fail: true } });
    const down3 = await c.submit('down', { logicalDate: day(3) });
    await c.stop({ instanceId: down3.id });
    const down4 = await c.submit('down', { logicalDate: day(4) });
    await c.pause({ instanceId: down4.id });
    await c.resume({ instanceId: down4.id }, { strategy: 'skip' });
    await c.start();
    await w.step();
    expect(await Promise.all([succeeded, failed, down1, down2].map((i) => w.state(i.id)))).toEqual(['succeeded', 'failed', 'succeeded', 'failed']);

    const straight = await c.rerun({ instanceIds: [succeeded.id, failed.id, stopped.id, skipped.id] });
    expect(straight.applied.map((a) => `${a.from}>${a.to}`)).toEqual(['succeeded>queued', 'failed>queued', 'stopped>queued', 'skipped>queued']);
    const waiting = [
      ...(await c.rerun({ instanceId: up1.id }, { downstream: true })).applied,
      ...(await c.rerun({ instanceId: up2.id }, { downstream: true })).applied,
      ...(await c.rerun({ instanceIds: [down3.id, down4.id] })).applied,
    ];
    expect(waiting.map((a) => `${a.from}>${a.to}`)).toEqual([
      'succeeded>queued',
      'succeeded>pending',
      'succeeded>queued',
      'failed>pending',
      'stopped>pending',
      'skipped>pending',
    ]);
    await w.end();
  });
});

describe('a command that does not apply to a state', () => {
  const ILLEGAL: Record<'pause' | 'resume' | 'stop' | 'rerun', InstanceState[]> = {
    pause: ['stopping', 'stopped', 'succeeded', 'failed', 'skipped'],
    resume: ['stopping', 'stopped', 'succeeded', 'failed', 'skipped'],
    stop: ['succeeded', 'failed', 'skipped'],
    rerun: ['pending', 'queued', 'running', 'pausing', 'paused', 'stopping'],
  };

  it('is rejected with ILLEGAL_TRANSITION and leaves the instance exactly as it was', async () => {
    const w = await world({ start: false, concurrency: 3 });
    const { controller: c } = w;
    const ids = {} as Record<InstanceState, string>;
    ids.succeeded = (await c.submit('quick')).id;
    ids.failed = (await c.submit('boom')).id;
    await c.start();
    await w.step();
    ids.running = (await c.submit('slow')).id;
    ids.pausing = (await c.submit('slow')).id;
    ids.stopping = (await c.submit('deaf')).id;
    await w.step();
    ids.queued = (await c.submit('quick')).id; // no free slot
    await c.pause({ instanceId: ids.pausing });
    await c.stop({ instanceId: ids.stopping }, { graceMs: 60_000 });
    ids.pending = (await c.submit('down', { logicalDate: '2024-09-09T00:00:00.000Z' })).id;
    ids.paused = (await c.submit('quick')).id;
    await c.pause({ instanceId: ids.paused });
    ids.stopped = (await c.submit('quick')).id;
    await c.stop({ instanceId: ids.stopped });
    ids.skipped = (await c.submit('quick')).id;
    await c.pause({ instanceId: ids.skipped });
    await c.resume({ instanceId: ids.skipped }, { strategy: 'skip' });
    for (const state of INSTANCE_STATES) expect(await w.state(ids[state])).toBe(state);

    for (const [action, states] of Object.entries(ILLEGAL) as [keyof typeof ILLEGAL, InstanceState[]][]) {
      for (const state of states) {
        const before = await c.get(ids[state]);
        const transitionsBefore = (await c.audit({ kind: 'transition' })).length;
        const result = await c[action]({ instanceId: ids[state] });
        expect(result.applied, `${action} on ${state}`).toEqual([]);
        expect(result.rejected, `${action} on ${state}`).toEqual([
          { instanceId: ids[state], code: 'ILLEGAL_TRANSITION', message: expect.stringContaining(state) },
        ]);
        expect(await c.get(ids[state])).toEqual(before);
        expect((await c.audit({ kind: 'transition' })).length).toBe(transitionsBefore);
      }
    }
    // repeats are applied, not rejected
    for (const [action, state] of [['pause', 'paused'], ['stop', 'stopped']] as const) {
      const before = await c.get(ids[state]);
      const result = await c[action]({ instanceId: ids[state] });
      expect(result.applied).toEqual([{ instanceId: ids[state], from: state, to: state, changed: false }]);
      expect(await c.get(ids[state])).toEqual(before);
    }
    await w.end();
  });
});

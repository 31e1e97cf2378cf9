import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FunctionExecutor,
  MemoryStateStore,
  TaskController,
  TRANSITIONS,
  type ControlResult,
  type ExecutionContext,
  type Instance,
  type InstanceState,
  type Target,
  type TransitionEvent,
} from '../../src/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { fakeSleep } from '../support.js';

// Random interleavings of submit / pause / resume / stop / rerun from two controllers on one
// store (a worker that runs the executors and an operator without one), fired concurrently while
// executors run on a fake clock, checked against a reference model of the legal moves.

const DATES = ['2024-04-01T00:00:00.000Z', '2024-04-02T00:00:00.000Z'];
const TASKS = ['a', 'b', 'c', 'd'] as const;
const ROWS = new Set(TRANSITIONS.map((r) => `${r.from}|${r.event}|${r.to}`));
const TERMINAL: InstanceState[] = ['succeeded', 'failed', 'stopped', 'skipped'];
const SCOPE_STATES: Record<ControlResult['action'], InstanceState[]> = {
  pause: ['pending', 'queued', 'running', 'pausing', 'paused'],
  resume: ['paused'],
  stop: ['pending', 'queued', 'running', 'pausing', 'paused', 'stopping'],
  rerun: TERMINAL,
};

type TargetSpec = { kind: 'instance'; i: number } | { kind: 'instances'; is: number[] } | { kind: 'task'; t: string } | { kind: 'group' } | { kind: 'all' };
type Cmd =
  | { op: 'submit'; task: string; date?: string; failOn?: number; ms: number; via: number }
  | { op: 'pause'; target: TargetSpec; mode?: 'graceful' | 'force'; graceMs?: number; key?: string; via: number }
  | { op: 'resume'; target: TargetSpec; strategy?: 'continue' | 'restart' | 'skip'; failOn?: number; key?: string; via: number }
  | { op: 'stop'; target: TargetSpec; force?: boolean; graceMs?: number; key?: string; via: number }
  | { op: 'rerun'; target: TargetSpec; onlyFailed?: boolean; downstream?: boolean; failOn?: number; key?: string; via: number }
  | { op: 'restart'; via: number };
type Round = { cmds: Cmd[]; advance: number; concurrentAdvance: boolean };

const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
const via = fc.integer({ min: 0, max: 2 });
const key = opt(fc.constantFrom('k1', 'k2', 'k3'));
const failOn = opt(fc.constantFrom(1, 2));
const target: fc.Arbitrary<TargetSpec> = fc.oneof(
  { weight: 6, arbitrary: fc.nat(30).map((i) => ({ kind: 'instance' as const, i })) },
  { weight: 2, arbitrary: fc.array(fc.nat(30), { minLength: 1, maxLength: 3 }).map((is) => ({ kind: 'instances' as const, is })) },
  { weight: 1, arbitrary: fc.constantFrom(...TASKS).map((t) => ({ kind: 'task' as const, t })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'group' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'all' as const }) },
);
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('submit' as const), task: fc.constantFrom(...TASKS), date: opt(fc.constantFrom(...DATES)), failOn, ms: fc.integer({ min: 50, max: 600 }), via }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('pause' as const), target, mode: opt(fc.constantFrom('graceful' as const, 'force' as const)), graceMs: opt(fc.integer({ min: 1, max: 500 })), key, via }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('resume' as const), target, strategy: opt(fc.constantFrom('continue' as const, 'restart' as const, 'skip' as const)), failOn, key, via }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('stop' as const), target, force: opt(fc.boolean()), graceMs: opt(fc.integer({ min: 0, max: 500 })), key, via }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('rerun' as const), target, onlyFailed: opt(fc.boolean()), downstream: opt(fc.boolean()), failOn, key, via }) },
  // a worker shuts down (handing back its work) and starts again
  { weight: 1, arbitrary: fc.record({ op: fc.constant('restart' as const), via: fc.constant(1) }) },
);
const rounds = fc.array(
  fc.record({ cmds: fc.array(cmd, { minLength: 1, maxLength: 4 }), advance: fc.integer({ min: 0, max: 400 }), concurrentAdvance: fc.boolean() }),
  { minLength: 1, maxLength: 10 },
);

/** What each action may do to an instance in each state, given its options (the reference model). */
function legalMoves(action: ControlResult['action'], from: InstanceState, o: Record<string, unknown>): { to: InstanceState[]; same: boolean } {
  const none = { to: [] as InstanceState[], same: false };
  switch (action) {
    case 'pause':
      if (from === 'pending' || from === 'queued') return { to: ['paused'], same: false };
      if (from === 'running') return { to: [o.mode === 'force' ? 'paused' : 'pausing'], same: false };
      if (from === 'pausing') return o.mode === 'force' ? { to: ['paused'], same: false } : { to: [], same: true };
      if (from === 'paused') return { to: [], same: true };
      return none;
    case 'resume':
      if (from === 'paused') return { to: o.strategy === 'skip' ? ['skipped'] : ['queued', 'pending'], same: false };
      if (from === 'pausing') return { to: ['running'], same: false };
      if (from === 'pending' || from === 'queued' || from === 'running') return { to: [], same: true };
      return none;
    case 'stop':
      if (from === 'pending' || from === 'queued' || from === 'paused') return { to: ['stopped'], same: false };
      if (from === 'running' || from === 'pausing') return { to: [o.force ? 'stopped' : 'stopping'], same: false };
      if (from === 'stopping') return o.force ? { to: ['stopped'], same: false } : { to: [], same: true };
      if (from === 'stopped') return { to: [], same: true };
      return none;
    case 'rerun':
      return TERMINAL.includes(from) ? { to: ['queued', 'pending'], same: false } : none;
  }
}

const seenMoves = new Set<string>();

function command(ctl: TaskController, op: ControlResult['action'], target: Target, options: Record<string, unknown>): Promise<ControlResult> {
  switch (op) {
    case 'pause':
      return ctl.pause(target, options);
    case 'resume':
      return ctl.resume(target, options);
    case 'stop':
      return ctl.stop(target, options);
    case 'rerun':
      return ctl.rerun(target, options);
  }
}

async function runScenario(scenario: Round[]): Promise<void> {
  const clock = new FakeClock();
  const store = new MemoryStateStore();
  const invocations = new Map<string, number>();
  /** Runs in flight per instance, and whether each was aborted or unwound at a pause point. */
  const active = new Map<string, Set<{ signal: AbortSignal; unwound: boolean }>>();
  const problems: string[] = [];

  const tracked = (body: (ctx: ExecutionContext) => Promise<unknown>) => async (ctx: ExecutionContext) => {
    const id = ctx.instance.id;
    const current = await store.getInstance(id);
    if (current?.attempt !== ctx.attempt) problems.push(`${id} ran attempt ${ctx.attempt} while the instance is at attempt ${current?.attempt}`);
    const k = `${id}#${ctx.attempt}`;
    invocations.set(k, (invocations.get(k) ?? 0) + 1);
    const runs = active.get(id) ?? new Set();
    active.set(id, runs);
    for (const other of runs) {
      if (!other.signal.aborted && !other.unwound) problems.push(`${id}: attempt ${ctx.attempt} started while an earlier run is neither aborted nor unwound`);
    }
    const me = { signal: ctx.signal, unwound: false };
    runs.add(me);
    const pausePoint = ctx.pausePoint.bind(ctx);
    const watched: ExecutionContext = Object.create(ctx, {
      pausePoint: {
        value: (checkpoint?: unknown) =>
          pausePoint(checkpoint).catch((err: unknown) => {
            me.unwound = true;
            throw err;
          }),
      },
    });
    try {
      if (ctx.params.failOn === ctx.attempt) {
        await fakeSleep(clock, 30, ctx.signal);
        throw new Error(`planned failure of attempt ${ctx.attempt}`);
      }
      return await body(watched);
    } finally {
      runs.delete(me);
    }
  };
  const executor = new FunctionExecutor({
    // cooperative: a pause point before each step, resumes from its checkpoint
    a: tracked(async (ctx) => {
      try {
        for (let i = typeof ctx.checkpoint === 'number' ? ctx.checkpoint : 0; i < 5; i++) {
          await ctx.pausePoint(i);
          await fakeSleep(clock, 60, ctx.signal);
        }
      } finally {
        if (ctx.pauseRequested()) await fakeSleep(clock, 20); // tidies up after unwinding
      }
      return 'a done';
    }),
    // no pause points, may outlive its timeout
    b: tracked(async (ctx) => {
      await fakeSleep(clock, (ctx.params.ms as number | undefined) ?? 200, ctx.signal);
      return 'b done';
    }),
    // hard of hearing: a stretch where it ignores its signal
    c: tracked(async (ctx) => {
      await ctx.pausePoint('before');
      await fakeSleep(clock, 150);
      if (ctx.signal.aborted) throw ctx.signal.reason;
      await ctx.pausePoint('after');
      await fakeSleep(clock, 50, ctx.signal);
      return 'c done';
    }),
    d: tracked(async (ctx) => {
      await ctx.pausePoint();
      await fakeSleep(clock, 40, ctx.signal);
      return 'd done';
    }),
  });
  const base = { store, timers: clock, clock: clock.date, leaseMs: 5_000 };
  const worker = new TaskController({ ...base, executor, concurrency: 2 });
  const worker2 = new TaskController({ ...base, executor, concurrency: 2 });
  const operator = new TaskController({ ...base });
  const events: TransitionEvent[] = [];
  worker.on('transition', (e) => events.push(e));
  const controllers = [worker, worker2, operator];
  for (const c of controllers) {
    c.define({ id: 'a', group: 'g', maxAttempts: 2 });
    c.define({ id: 'b', group: 'g', timeoutMs: 400 });
    c.define({ id: 'c', maxAttempts: 3, retryDelayMs: 50 });
    c.define({ id: 'd', dependsOn: ['a'] });
  }
  await worker.start();
  await worker2.start();

  const ids: string[] = [];
  const results: { result: ControlResult; options: Record<string, unknown>; target: Target; explicit: string[] | undefined }[] = [];
  let keys = 0;
  const toTarget = (spec: TargetSpec): { target: Target; explicit?: string[] } | undefined => {
    switch (spec.kind) {
      case 'instance':
        return ids.length ? { target: { instanceId: ids[spec.i % ids.length] }, explicit: [ids[spec.i % ids.length]] } : undefined;
      case 'instances': {
        if (!ids.length) return undefined;
        const named = spec.is.map((i) => ids[i % ids.length]);
        return { target: { instanceIds: named }, explicit: [...new Set(named)] };
      }
      case 'task':
        return { target: { taskId: spec.t } };
      case 'group':
        return { target: { group: 'g' } };
      case 'all':
        return { target: { all: true } };
    }
  };
  const run = async (c: Cmd): Promise<void> => {
    const controller = controllers[c.via];
    if (c.op === 'submit') {
      const params: Record<string, unknown> = { ms: c.ms };
      if (c.failOn !== undefined) params.failOn = c.failOn;
      const instance = await controller.submit(c.task, { logicalDate: c.date, params });
      if (!ids.includes(instance.id)) ids.push(instance.id);
      return;
    }
    if (c.op === 'restart') {
      // executors deaf to their signal need the clock to move to return
      await Promise.all([worker2.shutdown({ graceMs: 0 }), clock.advance(200)]);
      await worker2.start();
      return;
    }
    const resolved = toTarget(c.target);
    if (!resolved) return;
    const { op, target: _t, via: _v, key, ...rest } = c;
    const options: Record<string, unknown> = Object.fromEntries(Object.entries(rest).filter(([k, v]) => v !== undefined && k !== 'failOn'));
    if ('failOn' in c && c.failOn !== undefined) options.params = { failOn: c.failOn };
    const send = (ctl: TaskController) => command(ctl, op, resolved.target, options);
    let result: ControlResult;
    if (key !== undefined) {
      // a caller retrying: the same command twice at once under one idempotency key
      options.idempotencyKey = `${key}-${++keys}`;
      const [first, again] = await Promise.all([send(controller), send(controllers[(c.via + 1) % controllers.length])]);
      if (first.commandId !== again.commandId) problems.push(`idempotency key ${options.idempotencyKey as string} applied twice`);
      result = first;
    } else {
      result = await send(controller);
    }
    results.push({ result, options, target: resolved.target, explicit: resolved.explicit });
  };

  for (const round of scenario) {
    const work: Promise<unknown>[] = round.cmds.map(run);
    if (round.concurrentAdvance) work.push(clock.advance(round.advance));
    await Promise.all(work);
    if (!round.concurrentAdvance) await clock.advance(round.advance);
  }

  // wind down: release every scope, resume what is paused, let every executor and deadline finish
  for (let pass = 0; pass < 6; pass++) {
    await operator.resume({ all: true });
    await operator.resume({ group: 'g' });
    for (const t of TASKS) await operator.resume({ taskId: t });
    await operator.resume({ all: true });
    for (let i = 0; i < 10; i++) await clock.advance(500);
  }

  // -- the checks ------------------------------------------------------------------------
  expect(problems).toEqual([]);
  const audit = await store.queryAudit({});
  const transitions = audit.filter((e) => e.kind === 'transition');

  // 1. every change is a row of the table
  for (const e of events) expect(ROWS.has(`${e.from}|${e.event}|${e.to}`), `${e.from} --${e.event}--> ${e.to}`).toBe(true);

  // 2. the audit trail and the event stream tell the same story, in the same order
  expect(events.map((e) => [e.instanceId, e.from, e.to, e.event, e.attempt])).toEqual(
    transitions.map((e) => [e.instanceId, e.from, e.to, e.event, e.attempt]),
  );

  const instances = new Map<string, Instance>();
  for (const id of ids) instances.set(id, (await store.getInstance(id))!);
  for (const [id, instance] of instances) {
    const trail = transitions.filter((e) => e.instanceId === id);
    // 3. the trail replays to the instance: each move starts where the last one ended, one version per move
    expect(trail[0].from).toBe('none');
    for (let i = 1; i < trail.length; i++) expect(trail[i].from, `${id} move ${i}`).toBe(trail[i - 1].to);
    expect(trail.at(-1)!.to).toBe(instance.state);
    expect(instance.version).toBe(trail.length);

    // 4. attempts: 1..n, one step at a time, only by a new attempt; none lost, none run twice
    let attempt = 1;
    for (const e of trail) {
      if (e.attempt !== attempt) {
        expect(e.attempt, `${id} ${e.event}`).toBe(attempt + 1);
        expect(['rerun', 'rerun_pending', 'retry', 'requeue', 'release']).toContain(e.event);
        attempt = e.attempt!;
      }
    }
    expect(instance.attempt).toBe(attempt);
    const starts = new Map<number, number>();
    for (const e of trail) if (e.event === 'start') starts.set(e.attempt!, (starts.get(e.attempt!) ?? 0) + 1);
    for (let n = 1; n <= attempt; n++) {
      const ran = invocations.get(`${id}#${n}`) ?? 0;
      expect(ran, `${id} attempt ${n} ran ${ran} times for ${starts.get(n) ?? 0} starts`).toBeLessThanOrEqual(starts.get(n) ?? 0);
    }

    // 5. nothing stuck once executors are done and deadlines passed
    expect(['running', 'pausing', 'stopping', 'queued', 'paused'], `${id} is ${instance.state}`).not.toContain(instance.state);
    if (instance.state === 'pending') {
      const upstream = instance.logicalDate && (await store.findInstance('a', instance.logicalDate));
      expect(upstream && (upstream.state === 'succeeded' || upstream.state === 'skipped'), `${id} pending on a finished upstream`).toBeFalsy();
    }
  }

  // 6. every command result is a legal move of the model, and matches its audit entries
  for (const { result, options, explicit } of results) {
    if (result.status !== 'completed') continue;
    const reported = [...result.applied.map((a) => a.instanceId), ...result.rejected.map((r) => r.instanceId)];
    expect(new Set(reported).size, 'an instance reported twice').toBe(reported.length);
    if (explicit) {
      for (const id of explicit) expect(reported, `${result.action} reports ${id}`).toContain(id);
    }
    for (const a of result.applied) {
      const legal = legalMoves(result.action, a.from, options);
      if (a.changed) expect(legal.to, `${result.action} ${JSON.stringify(options)}: ${a.from} -> ${a.to}`).toContain(a.to);
      else {
        expect(a.to).toBe(a.from);
        expect(legal.same, `${result.action} ${JSON.stringify(options)}: ${a.from} unchanged`).toBe(true);
      }
      if (!explicit?.includes(a.instanceId) && !(result.action === 'rerun' && options.downstream)) {
        expect(SCOPE_STATES[result.action]).toContain(a.from);
      }
    }
    for (const r of result.rejected) expect(['ILLEGAL_TRANSITION', 'SCOPE_HELD', 'GUARD_REJECTED']).toContain(r.code);
    const moves = transitions.filter((e) => e.commandId === result.commandId).map((e) => [e.instanceId, e.from, e.to]);
    expect(moves).toEqual(result.applied.filter((a) => a.changed).map((a) => [a.instanceId, a.from, a.to]));
  }

  await Promise.all([worker, worker2].map((c) => c.shutdown({ graceMs: 0 })));
  await Promise.all(controllers.map((c) => c.close()));
  for (const e of events) seenMoves.add(`${e.from} --${e.event}--> ${e.to}`);
}

describe('the controller against a reference model', () => {
  it('random concurrent commands never make an illegal move, lose or repeat an attempt, or leave anything stuck', async () => {
    await fc.assert(fc.asyncProperty(rounds, runScenario), { numRuns: Number(process.env.TASKCTL_MODEL_RUNS ?? 100) });
    if (process.env.TASKCTL_MODEL_RUNS) console.log([...seenMoves].sort().join('\n'), `\n${seenMoves.size} of ${TRANSITIONS.length} rows`);
  }, process.env.TASKCTL_MODEL_RUNS ? 900_000 : 20_000);
});

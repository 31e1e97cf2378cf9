import { describe, expect, it } from 'vitest';
import { rbac, TaskController, type AuthRequest, type RbacPolicy } from '../../src/index.js';
import { failure, harness } from './support.js';

// One organisation's policy, as the user stories below use it.
const policy: RbacPolicy = {
  roles: {
    viewer: [],
    operator: [{ actions: ['pause', 'resume'], groups: ['etl'] }],
    oncall: [{ actions: ['pause', 'resume', 'stop'], tasks: ['report-*'], environments: ['prod'] }],
    pauser: [{ actions: ['pause'] }],
    allpauser: [{ actions: ['pause'], all: true }],
    submitter: [{ actions: ['submit'] }],
    admin: [{ actions: ['*'] }],
  },
  actors: {
    alice: ['operator'],
    olga: ['oncall'],
    pat: ['pauser'],
    paula: ['allpauser'],
    vic: ['viewer'],
    nobody: [],
    bob: ['admin'],
    sue: ['submitter'],
  },
};

async function world(environment = 'prod', p: RbacPolicy = policy) {
  const h = await harness({ environment, authorize: rbac(p) });
  const c = h.controller;
  c.define({ id: 'load', group: 'etl' });
  c.define({ id: 'report-daily', group: 'finance' });
  c.define({ id: 'report-weekly', group: 'etl' });
  c.define({ id: 'payroll', group: 'finance' });
  c.define({ id: 'loose' }); // no group
  const load = await c.submit('load', { actor: 'bob' });
  const daily = await c.submit('report-daily', { actor: 'bob' });
  const weekly = await c.submit('report-weekly', { actor: 'bob' });
  const payroll = await c.submit('payroll', { actor: 'bob' });
  const loose = await c.submit('loose', { actor: 'bob' });
  return { ...h, c, load, daily, weekly, payroll, loose };
}

describe('rbac: who may do what', () => {
  it('an operator of the etl group may pause and resume etl work (group, task and instance targets) and nothing else', async () => {
    const { c, load, weekly, payroll } = await world();
    expect((await c.pause({ group: 'etl' }, { actor: 'alice' })).applied.map((a) => a.instanceId).sort()).toEqual([load.id, weekly.id].sort());
    expect((await c.resume({ group: 'etl' }, { actor: 'alice' })).applied).toHaveLength(2);
    expect((await c.pause({ taskId: 'load' }, { actor: 'alice' })).applied).toEqual([{ instanceId: load.id, from: 'queued', to: 'paused', changed: true }]);
    expect((await c.resume({ taskId: 'load' }, { actor: 'alice' })).applied).toHaveLength(1);
    expect((await c.pause({ instanceId: weekly.id }, { actor: 'alice' })).applied[0]).toMatchObject({ to: 'paused' });

    const stop = await failure(c.stop({ instanceId: load.id }, { actor: 'alice' }));
    expect(stop.code).toBe('FORBIDDEN');
    expect(stop.message).toMatch(/action 'stop' not allowed/);

    const other = await failure(c.pause({ instanceId: payroll.id }, { actor: 'alice' }));
    expect(other.code).toBe('FORBIDDEN');
    expect(other.message).toMatch(/task 'payroll' \(group 'finance'\) not allowed for 'pause'/);
    expect(await failure(c.pause({ group: 'finance' }, { actor: 'alice' }))).toMatchObject({ code: 'FORBIDDEN', message: expect.stringMatching(/group 'finance' not allowed/) });
    expect((await c.get(payroll.id))?.state).toBe('queued');
  });

  it('task globs: on-call may stop any report-* task, whatever its group, but not other tasks', async () => {
    const { c, daily, weekly, load } = await world();
    expect((await c.stop({ taskId: 'report-daily' }, { actor: 'olga' })).applied).toEqual([{ instanceId: daily.id, from: 'queued', to: 'stopped', changed: true }]);
    expect((await c.stop({ instanceIds: [weekly.id] }, { actor: 'olga' })).applied[0]).toMatchObject({ to: 'stopped' });
    expect((await failure(c.stop({ taskId: 'load' }, { actor: 'olga' }))).message).toMatch(/task 'load' \(group 'etl'\) not allowed for 'stop'/);
    expect((await failure(c.stop({ instanceId: load.id }, { actor: 'olga' }))).code).toBe('FORBIDDEN');
    // a glob is anchored: 'report-*' does not match 'xreport-daily'
    c.define({ id: 'xreport-daily' });
    expect((await failure(c.pause({ taskId: 'xreport-daily' }, { actor: 'olga' }))).code).toBe('FORBIDDEN');
    expect((await c.get(load.id))?.state).toBe('queued');
  });

  it('environments: a rule limited to prod does not apply in staging (nor in a controller with no environment)', async () => {
    const staging = await world('staging');
    const err = await failure(staging.c.stop({ taskId: 'report-daily' }, { actor: 'olga' }));
    expect(err.code).toBe('FORBIDDEN');
    expect(err.message).toMatch(/environment 'staging' not allowed for 'stop'/);
    expect((await staging.c.get(staging.daily.id))?.state).toBe('queued');

    const h = await harness({ authorize: rbac(policy) });
    h.controller.define({ id: 'report-x' });
    expect((await failure(h.controller.pause({ taskId: 'report-x' }, { actor: 'olga' }))).message).toMatch(/environment '\(none\)'/);
  });

  it('`all` targets need a rule with all: true or actions [*]; a rule naming no tasks or groups allows every other target', async () => {
    const { c, load, payroll } = await world();
    expect((await failure(c.pause({ all: true }, { actor: 'alice' }))).message).toMatch(/all instances needs a rule with all: true or actions \['\*'\]/);
    expect((await failure(c.pause({ all: true }, { actor: 'pat' }))).code).toBe('FORBIDDEN');
    expect(await c.heldScopes()).toEqual([]);

    // pat's rule names no tasks or groups: any task, group or instance target
    expect((await c.pause({ taskId: 'payroll' }, { actor: 'pat' })).applied).toHaveLength(1);
    expect((await c.pause({ instanceIds: [load.id, payroll.id] }, { actor: 'pat' })).applied).toHaveLength(2);

    const all = await c.pause({ all: true }, { actor: 'paula' });
    expect(all.applied.length).toBe(5);
    expect((await c.heldScopes()).map((s) => s.id)).toContain('all');
    expect((await failure(c.resume({ all: true }, { actor: 'paula' }))).message).toMatch(/action 'resume' not allowed/);
    // releasing `all` resumes everything but payroll: pat's pause still holds the payroll task
    const resumed = await c.resume({ all: true }, { actor: 'bob' });
    expect(resumed.applied.length).toBe(4);
    expect(resumed.rejected).toEqual([{ instanceId: payroll.id, code: 'SCOPE_HELD', message: expect.any(String) }]);
  });

  it('an instanceIds target spanning an allowed and a forbidden task is denied as a whole, and changes nothing', async () => {
    const { c, load, payroll, loose } = await world();
    const err = await failure(c.pause({ instanceIds: [load.id, payroll.id] }, { actor: 'alice' }));
    expect(err.code).toBe('FORBIDDEN');
    expect(err.message).toMatch(/payroll/);
    expect((await c.get(load.id))?.state).toBe('queued');
    expect((await c.get(payroll.id))?.state).toBe('queued');
    // an instance of a task with no group is not covered by a group rule either
    expect((await failure(c.pause({ instanceIds: [load.id, loose.id] }, { actor: 'alice' }))).message).toMatch(/task 'loose' not allowed/);
    expect(await c.audit({ kind: 'transition', actor: 'alice' })).toEqual([]);
  });

  it('an actor with no roles, an unknown actor, or a call with no actor may do nothing (submit included)', async () => {
    const { c, load } = await world();
    for (const actor of ['vic', 'nobody', 'mallory', undefined]) {
      const err = await failure(c.pause({ instanceId: load.id }, { actor }));
      expect(err.code).toBe('FORBIDDEN');
      // a viewer has a role that allows nothing; the others have no role at all
      expect(err.message).toMatch(actor === 'vic' ? /roles: viewer\): action 'pause' not allowed/ : /no role/);
      expect((await failure(c.submit('load', { actor }))).code).toBe('FORBIDDEN');
    }
    // names that live on Object.prototype are not actors either
    for (const actor of ['toString', 'constructor', '__proto__']) {
      expect((await failure(c.pause({ instanceId: load.id }, { actor }))).message).toMatch(/no role/);
    }
    expect((await c.get(load.id))?.state).toBe('queued');
    expect((await c.list({ taskId: 'load' })).items).toHaveLength(1);
    // a role allowing submit only: submit yes, control no
    expect((await c.submit('payroll', { actor: 'sue', logicalDate: '2024-01-02' })).state).toBe('queued');
    expect((await failure(c.stop({ instanceId: load.id }, { actor: 'sue' }))).code).toBe('FORBIDDEN');
  });

  it('resolveRoles looks roles up at call time (async too); actors listed in `actors` come first', async () => {
    const asked: string[] = [];
    const authorize = rbac({
      roles: policy.roles,
      actors: { root: ['admin'] },
      resolveRoles: async (actor) => {
        asked.push(actor);
        return actor.startsWith('team-etl/') ? ['operator'] : [];
      },
    });
    const h = await harness({ authorize });
    h.controller.define({ id: 'load', group: 'etl' });
    const i = await h.controller.submit('load', { actor: 'root' });
    expect(asked).toEqual([]);
    expect((await h.controller.pause({ instanceId: i.id }, { actor: 'team-etl/ann' })).applied).toHaveLength(1);
    expect((await failure(h.controller.stop({ instanceId: i.id }, { actor: 'team-etl/ann' }))).code).toBe('FORBIDDEN');
    expect((await failure(h.controller.resume({ instanceId: i.id }, { actor: 'team-web/joe' }))).message).toMatch(/no role/);
    expect(asked).toEqual(['team-etl/ann', 'team-etl/ann', 'team-web/joe']);
  });

  it('a denial throws FORBIDDEN, changes nothing, emits nothing, and its audit entry names the rule set and the reason', async () => {
    const { c, payroll } = await world();
    const before = await c.get(payroll.id);
    const auditBefore = await c.audit();
    const events: unknown[] = [];
    c.on('transition', (e) => events.push(e));
    c.on('command', (e) => events.push(e));

    const err = await failure(c.stop({ instanceId: payroll.id }, { actor: 'alice', reason: 'cleanup' }));
    expect(err.code).toBe('FORBIDDEN');
    expect(await c.get(payroll.id)).toEqual(before);
    expect(events).toEqual([]);
    const added = (await c.audit()).slice(auditBefore.length);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({
      kind: 'command',
      action: 'stop',
      actor: 'alice',
      target: { instanceId: payroll.id },
      result: { denied: true, code: 'FORBIDDEN' },
    });
    expect(added[0].reason).toMatch(/^rbac denied alice \(roles: operator\): action 'stop' not allowed$/);
    expect((await c.audit({ actor: 'alice', taskId: 'payroll' })).map((e) => e.id)).toEqual([added[0].id]);
  });

  it('rbac() is a plain function of the request too (the hook the controller calls)', async () => {
    const authorize = rbac(policy);
    const req = (over: Partial<AuthRequest>): AuthRequest => ({ action: 'pause', options: {}, tasks: [], groups: [], ...over });
    expect(await authorize(req({ actor: 'alice', target: { group: 'etl' }, groups: ['etl'] }))).toBe(true);
    expect(await authorize(req({ actor: 'bob', target: { all: true } }))).toBe(true);
    await expect(authorize(req({ actor: 'alice', target: { all: true } }))).rejects.toMatchObject({ code: 'FORBIDDEN', details: { ruleSet: 'rbac', roles: ['operator'] } });
  });
});

describe('rbac: a malformed policy is refused at once with VALIDATION naming the field', () => {
  const invalid = (p: unknown) => {
    try {
      rbac(p as RbacPolicy);
    } catch (err) {
      return err as { code: string; message: string; issues: { path: (string | number)[] }[] };
    }
    throw new Error('rbac() accepted a bad policy');
  };

  it('an unknown action', () => {
    const err = invalid({ roles: { op: [{ actions: ['pause', 'destroy'] }] }, actors: {} });
    expect(err.code).toBe('VALIDATION');
    expect(err.issues[0].path).toEqual(['policy', 'roles', 'op', 0, 'actions', 1]);
    expect(err.message).toMatch(/^policy\.roles\.op\.0\.actions\.1/);
  });

  it('an actor mapped to a role that does not exist (a name on Object.prototype included)', () => {
    const err = invalid({ roles: { op: [] }, actors: { alice: ['op', 'root'] } });
    expect(err.code).toBe('VALIDATION');
    expect(err.issues[0].path).toEqual(['policy', 'actors', 'alice', 1]);
    expect(err.message).toMatch(/role 'root' does not exist/);
    expect(invalid({ roles: { op: [] }, actors: { alice: ['toString'] } }).issues[0].path).toEqual(['policy', 'actors', 'alice', 0]);
  });

  it('a malformed rule: an unknown key, no actions, empty task list, a non-boolean all', () => {
    const unknownKey = invalid({ roles: { op: [{ actions: ['pause'], task: ['x'] }] }, actors: {} });
    expect(unknownKey.issues[0].path.slice(0, 4)).toEqual(['policy', 'roles', 'op', 0]);
    expect(unknownKey.message).toMatch(/^policy\.roles\.op\.0.*task/);
    expect(invalid({ roles: { op: [{ actions: [] }] }, actors: {} }).issues[0].path).toEqual(['policy', 'roles', 'op', 0, 'actions']);
    expect(invalid({ roles: { op: [{ actions: ['stop'], tasks: [] }] }, actors: {} }).issues[0].path).toEqual(['policy', 'roles', 'op', 0, 'tasks']);
    expect(invalid({ roles: { op: [{ actions: ['stop'], all: 'yes' }] }, actors: {} }).issues[0].path).toEqual(['policy', 'roles', 'op', 0, 'all']);
    expect(invalid({ roles: { op: { actions: ['stop'] } }, actors: {} }).issues[0].path).toEqual(['policy', 'roles', 'op']);
  });

  it('neither actors nor resolveRoles, or a resolveRoles that is not a function', () => {
    expect(invalid({ roles: {} }).issues[0].path).toEqual(['policy', 'actors']);
    expect(invalid({ roles: {}, resolveRoles: 'ldap' }).issues[0].path).toEqual(['policy', 'resolveRoles']);
  });

  it('approval rules given to the controller are checked the same way', () => {
    let err: { code?: string; message?: string } = {};
    try {
      new TaskController({ approvals: { rules: [{ actions: ['stop'], groups: ['finance'] }, { actions: ['explode'] } as never] } });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.code).toBe('VALIDATION');
    expect(err.message).toMatch(/^options\.approvals\.rules\.1\.actions\.0/);
  });
});

describe('rbac remembers what it allowed, never what it denied', () => {
  it('answers a repeated request the same way, and a changed one afresh', async () => {
    const { rbac: build } = await import('../../src/index.js');
    const authorize = build({
      roles: { operator: [{ actions: ['pause'], groups: ['etl'] }] },
      actors: { alice: ['operator'] },
    });
    const ask = (group: string) => authorize({ action: 'pause', actor: 'alice', target: { group }, options: {}, tasks: [], groups: [group] });
    const first = ask('etl');
    expect(first).toBeInstanceOf(Promise); // worked out by walking the rules
    expect(await first).toBe(true);
    expect(ask('etl')).toBe(true); // remembered: answered at once, not as a promise
    await expect(ask('finance')).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(ask('finance')).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(ask('etl')).toBe(true);
  });
});

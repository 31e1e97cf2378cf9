import { describe, expect, it } from 'vitest';
import { TaskControlError, isTaskControlError, type Target } from '../../src/index.js';
import { controllerWith } from '../support.js';

async function setup() {
  const { controller } = controllerWith(undefined);
  controller.define({ id: 'job' });
  const job = await controller.submit('job');
  return { controller, job };
}

async function validationError(promise: Promise<unknown>): Promise<TaskControlError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TaskControlError);
  expect((err as TaskControlError).code).toBe('VALIDATION');
  return err as TaskControlError;
}

describe('validation', () => {
  it.each([
    ['graceMs: -1', 'pause', { graceMs: -1 }, 'graceMs'],
    ["mode: 'x'", 'pause', { mode: 'x' }, 'mode'],
    ['an unknown option', 'pause', { gracems: 100 }, 'gracems'],
    ["strategy: 'later'", 'resume', { strategy: 'later' }, 'strategy'],
    ['force: "yes"', 'stop', { force: 'yes' }, 'force'],
    ['graceMs: 1.5', 'stop', { graceMs: 1.5 }, 'graceMs'],
    ['params: []', 'rerun', { params: [] }, 'params'],
  ] as const)('rejects bad options (%s) with VALIDATION naming the field, and changes nothing', async (_, action, options, field) => {
    const { controller, job } = await setup();
    const err = await validationError(controller[action]({ instanceId: job.id }, options as never));
    expect(err.message).toContain(field);
    expect(err.issues?.length).toBeGreaterThan(0);
    expect(err.issues!.some((i) => i.path.includes(field) || i.message.includes(field))).toBe(true);
    expect(err.issues![0].path[0]).toBe('options');
    expect(await controller.get(job.id)).toEqual(job);
    expect(await controller.audit({ kind: 'command' })).toEqual([]);
    expect(await controller.heldScopes()).toEqual([]);
  });

  it.each([
    ['no target', undefined],
    ['an empty object', {}],
    ['an empty instanceIds', { instanceIds: [] }],
    ['an empty instance id', { instanceId: '' }],
    ['all: false', { all: false }],
    ['two kinds at once', { taskId: 'job', group: 'g' }],
  ])('rejects a bad target (%s) with VALIDATION naming the target', async (_, target) => {
    const { controller, job } = await setup();
    const err = await validationError(controller.pause(target as unknown as Target));
    expect(err.message).toMatch(/^target/);
    expect(err.issues![0].path[0]).toBe('target');
    expect(await controller.get(job.id)).toEqual(job);
    expect(await controller.audit({ kind: 'command' })).toEqual([]);
    expect(await controller.heldScopes()).toEqual([]);
  });

  it('rejects bad submit options and task definitions', async () => {
    const { controller } = await setup();
    const date = await validationError(controller.submit('job', { logicalDate: 'yesterday' }));
    expect(date.message).toContain('logicalDate');
    const unknown = await validationError(controller.submit('job', { priority: 1 } as never));
    expect(unknown.message).toContain('priority');
    expect(() => controller.define({ id: 'x', maxAttempts: 0 })).toThrow(/maxAttempts/);
    expect(() => controller.define({ id: 'x', dependsOn: ['x'] })).toThrow(TaskControlError);
    expect((await controller.list()).items).toHaveLength(1);
  });

  it('rejects bad list, audit and waitFor filters', async () => {
    const { controller, job } = await setup();
    expect((await validationError(controller.list({ state: 'sleeping' as never }))).message).toContain('state');
    expect((await validationError(controller.audit({ limit: 0 }))).message).toContain('limit');
    expect((await validationError(controller.waitFor(job.id, { timeoutMs: -5 }))).message).toContain('timeoutMs');
  });
});

describe('TaskControlError', () => {
  it('is an Error with a code, and isTaskControlError narrows by code', () => {
    const err = new TaskControlError('NOT_FOUND', 'instance x does not exist');
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('TaskControlError');
    expect(isTaskControlError(err)).toBe(true);
    expect(isTaskControlError(err, 'NOT_FOUND')).toBe(true);
    expect(isTaskControlError(err, 'FORBIDDEN')).toBe(false);
    expect(isTaskControlError(new Error('plain'))).toBe(false);
    expect(new Error('x') instanceof TaskControlError).toBe(false);
  });

  it('instanceof works for an error made by a second copy of the package', async () => {
    // @ts-expect-error -- a query string makes the module loader evaluate errors.ts a second time
    const copy = (await import('../../src/errors.ts?copy=2')) as typeof import('../../src/errors.js');
    expect(copy.TaskControlError).not.toBe(TaskControlError);
    const foreign = new copy.TaskControlError('CONFLICT', 'lost a race');
    expect(Object.getPrototypeOf(foreign)).not.toBe(TaskControlError.prototype);
    expect(foreign).toBeInstanceOf(TaskControlError);
    expect(isTaskControlError(foreign, 'CONFLICT')).toBe(true);
    const ours = new TaskControlError('CONFLICT', 'lost a race');
    expect(ours).toBeInstanceOf(copy.TaskControlError);
  });

  it('instanceof asks the global brand, not the prototype chain', () => {
    const branded = Object.create(Error.prototype) as Record<symbol, unknown>;
    Object.defineProperty(branded, Symbol.for('taskctl.TaskControlError'), { value: true });
    expect(branded instanceof TaskControlError).toBe(true);
    expect(isTaskControlError(branded)).toBe(true);
    expect(isTaskControlError(null)).toBe(false);
  });
});

describe('validation messages name the field precisely', () => {
  it('targets and unknown option keys are named in the message and the issue path', async () => {
    const { TaskController: Controller } = await import('../../src/index.js');
    const controller = new Controller();
    const cases: [unknown, unknown, string[]][] = [
      [{ instanceIds: [] }, {}, ['target', 'instanceIds']],
      [{ foo: 1 }, {}, ['target', 'foo']],
      [{ all: false }, {}, ['target', 'all']],
      [{ taskId: 'x' }, { bogus: 1 }, ['options', 'bogus']],
    ];
    for (const [target, options, path] of cases) {
      const err = (await controller.pause(target as never, options as never).catch((e: unknown) => e)) as { code: string; message: string; issues: { path: string[] }[] };
      expect(err.code).toBe('VALIDATION');
      expect(err.message.startsWith(path.join('.'))).toBe(true);
      expect(err.issues[0].path).toEqual(path);
      expect(err.message).not.toMatch(/Invalid input/);
    }
  });
});

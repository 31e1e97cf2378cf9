import { createHash } from 'node:crypto';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { MemoryStateStore, TaskControlError, TaskController, type AuthRequest, type ControlResult, type Instance } from '../../src/index.js';
import {
  apiKeys,
  auditEntrySchema,
  backfillDetailSchema,
  backfillStartedSchema,
  controlResultSchema,
  createControlHandler,
  errorSchema,
  instanceDetailSchema,
  instancePageSchema,
  sessionSchema,
} from '../../src/http/index.js';
import { controllerWith, sleep, stepsHandler, track, untilState } from '../support.js';
import { ALICE, events, KEYS, OPS, serve } from './support.js';

/** A controller with a long cooperative job, a quick one, a failing one and a daily task. */
async function setup(options: Parameters<typeof controllerWith>[1] = {}) {
  const { controller, store } = controllerWith(
    {
      'etl-load': stepsHandler(100_000, 5),
      quick: async () => 'ok',
      broken: async () => {
        throw new Error('boom');
      },
      daily: async () => {
        await sleep(5);
        return 'done';
      },
    },
    options,
  );
  controller.define({ id: 'etl-load', group: 'etl' });
  controller.define({ id: 'quick', group: 'misc' });
  controller.define({ id: 'broken', group: 'misc' });
  controller.define({ id: 'daily', group: 'etl', schedule: { every: 'P1D' } });
  controller.define({ id: 'daily-report', group: 'reports', dependsOn: ['daily'], schedule: { every: 'P1D' } });
  await controller.start();
  return { controller, store };
}

const ROUTES: [string, string][] = [
  ['GET', '/'],
  ['GET', '/api/session'],
  ['GET', '/api/instances'],
  ['GET', '/api/instances/x'],
  ['POST', '/api/commands/pause'],
  ['GET', '/api/backfills'],
  ['POST', '/api/backfills'],
  ['GET', '/api/backfills/x'],
  ['POST', '/api/backfills/x/pause'],
  ['GET', '/api/audit'],
  ['GET', '/api/approvals'],
  ['POST', '/api/approvals/x/approve'],
  ['GET', '/api/metrics'],
  ['GET', '/api/events'],
  ['GET', '/api/openapi.json'],
  ['GET', '/api/no-such-route'],
];

describe('authentication', () => {
  it('answers 401 on every route without valid credentials, the console page included', async () => {
    const { controller } = await setup();
    const s = await serve(controller);
    for (const key of [null, 'wrong-key']) {
      for (const [method, path] of ROUTES) {
        const res = await s.call(method, path, { key, body: method === 'POST' ? {} : undefined });
        expect(res.status, `${method} ${path} with key ${key}`).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
        if (path === '/') {
          // the sign-in shell: no console code, no data
          expect(res.headers.get('content-type')).toMatch(/text\/html/);
          expect(res.text).toContain('id="signin"');
          expect(res.text).not.toContain('api/instances');
        } else {
          expect(res.body).toEqual({ code: 'UNAUTHENTICATED', message: expect.any(String) });
        }
      }
    }
  });

  it('apiKeys reads a Bearer key and compares it with every key', async () => {
    const auth = apiKeys({ 'k-ops-123': 'ops-bot', 'k-2': 'two' });
    const req = (authorization?: string) => ({ headers: authorization === undefined ? {} : { authorization } }) as IncomingMessage;
    expect(await auth(req('Bearer k-ops-123'))).toBe('ops-bot');
    expect(await auth(req('bearer k-2'))).toBe('two');
    expect(await auth(req('Bearer k-ops-12'))).toBeUndefined();
    expect(await auth(req('Bearer k-ops-1234'))).toBeUndefined();
    expect(await auth(req('Basic k-ops-123'))).toBeUndefined();
    expect(await auth(req('Bearer'))).toBeUndefined();
    expect(await auth(req())).toBeUndefined();
    expect(() => apiKeys({})).toThrow(TaskControlError);
    expect(() => apiKeys({ 'a b': 'x' })).toThrow(/spaces/);
    expect(() => apiKeys({ k: '' })).toThrow(/actor/);
  });

  it('treats an authenticate that throws or returns nothing as unauthenticated, and an unavailable one as 503', async () => {
    const { controller } = await setup();
    let mode: 'throw' | 'empty' | 'down' = 'throw';
    const s = await serve(controller, {
      authenticate: () => {
        if (mode === 'throw') throw new Error('session store hiccup');
        if (mode === 'down') throw new TaskControlError('UNAVAILABLE', 'identity provider down');
        return '';
      },
    });
    expect((await s.call('GET', '/api/session')).status).toBe(401);
    mode = 'empty';
    expect((await s.call('GET', '/api/session')).status).toBe(401);
    mode = 'down';
    expect((await s.call('GET', '/api/session')).status).toBe(503);
  });

  it('serves the console page to an authenticated request, with a strict Content-Security-Policy', async () => {
    const { controller } = await setup();
    const s = await serve(controller);
    const res = await s.call('GET', '/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/script-src 'sha256-[^']+' 'sha256-[^']+'/);
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.text).toContain('data-base="/taskctl"');
    // the inline script and style are exactly what the CSP allows, on both pages
    const login = await s.call('GET', '/', { key: null });
    expect(login.headers.get('content-security-policy')).toBe(csp);
    for (const html of [res.text, login.text]) {
      const blocks = [...html.matchAll(/<(script|style)>([\s\S]*?)<\/\1>/g)];
      expect(blocks.map((b) => b[1]).sort()).toEqual(['script', 'style']);
      for (const [, tag, body] of blocks) {
        const hash = `'sha256-${createHash('sha256').update(body).digest('base64')}'`;
        expect(csp.split(';').find((d) => d.trim().startsWith(tag === 'script' ? 'script-src' : 'style-src'))).toContain(hash);
      }
    }
    expect((await s.call('GET', '')).status).toBe(200); // the base path without its slash
    const session = await s.call('GET', '/api/session', { key: ALICE });
    expect(sessionSchema.parse(session.body)).toMatchObject({ actor: 'alice', basePath: '/taskctl' });
  });

  it('validates its own options', async () => {
    const controller = track(new TaskController());
    expect(() => createControlHandler(controller, {} as never)).toThrow(/authenticate/);
    expect(() => createControlHandler(controller, { authenticate: () => 'x', basePath: 'taskctl' })).toThrow(/basePath/);
    expect(() => createControlHandler({} as never, { authenticate: () => 'x' })).toThrow(/TaskController/);
    expect(createControlHandler(controller, { authenticate: () => 'x', basePath: '/ops/taskctl/' }).basePath).toBe('/ops/taskctl');
  });
});

describe('instances', () => {
  it('lists with the list filters: task, group, state (repeated or comma-separated), backfill, limit and cursor', async () => {
    const { controller } = await setup();
    const s = await serve(controller);
    const running = await controller.submit('etl-load');
    await untilState(controller, running.id, 'running');
    const quick = await controller.submit('quick');
    await untilState(controller, quick.id, 'succeeded');
    const broken = await controller.submit('broken');
    await untilState(controller, broken.id, 'failed');

    const all = await s.call('GET', '/api/instances');
    expect(all.status).toBe(200);
    expect(instancePageSchema.parse(all.body).items.map((i) => i.id)).toEqual([running.id, quick.id, broken.id]);

    const ids = async (query: string) => ((await s.call('GET', `/api/instances${query}`)).body as { items: Instance[] }).items.map((i) => i.id);
    expect(await ids('?taskId=quick')).toEqual([quick.id]);
    expect(await ids('?group=misc')).toEqual([quick.id, broken.id]);
    expect(await ids('?state=running')).toEqual([running.id]);
    expect(await ids('?state=running,failed')).toEqual([running.id, broken.id]);
    expect(await ids('?state=running&state=succeeded')).toEqual([running.id, quick.id]);
    expect(await ids('?backfillId=none-such')).toEqual([]);
    expect(await ids('?state=')).toEqual([running.id, quick.id, broken.id]);

    const first = (await s.call('GET', '/api/instances?limit=2')).body as { items: Instance[]; cursor: string };
    expect(first.items.map((i) => i.id)).toEqual([running.id, quick.id]);
    expect(first.cursor).toBeTypeOf('string');
    const second = (await s.call('GET', `/api/instances?limit=2&cursor=${encodeURIComponent(first.cursor)}`)).body as { items: Instance[]; cursor?: string };
    expect(second.items.map((i) => i.id)).toEqual([broken.id]);
    expect(second.cursor).toBeUndefined();
  });

  it('answers 400 VALIDATION with the schema issues for bad query parameters', async () => {
    const { controller } = await setup();
    const s = await serve(controller);
    for (const query of ['?limit=abc', '?limit=0', '?state=sleeping', '?state=running,nope', '?colour=red', '?taskId=']) {
      const res = await s.call('GET', `/api/instances${query}`);
      expect(res.status, query).toBe(400);
      const body = errorSchema.parse(res.body);
      expect(body.code).toBe('VALIDATION');
      expect(body.issues?.length).toBeGreaterThan(0);
    }
    const res = await s.call('GET', '/api/instances?state=sleeping');
    expect((res.body as { issues: { path: unknown[] }[] }).issues[0].path).toContain('state');
  });

  it('gets one instance with its audit timeline and its state diagram, current state highlighted', async () => {
    const { controller } = await setup();
    const s = await serve(controller);
    const i = await controller.submit('etl-load', { params: { rows: 3 } });
    await untilState(controller, i.id, 'running');
    await controller.pause({ instanceId: i.id }, { actor: 'alice', reason: 'maintenance' });
    await untilState(controller, i.id, 'paused');

    const res = await s.call('GET', `/api/instances/${i.id}`);
    expect(res.status).toBe(200);
    const body = instanceDetailSchema.parse(res.body);
    expect(body.instance).toMatchObject({ id: i.id, state: 'paused', params: { rows: 3 } });
    expect(body.audit.map((e) => (e.kind === 'transition' ? `${e.from}>${e.to}` : e.kind))).toEqual([
      'none>queued',
      'queued>running',
      'command',
      'running>pausing',
      'pausing>paused',
    ]);
    expect(body.audit.find((e) => e.kind === 'command')).toMatchObject({ actor: 'alice', reason: 'maintenance' });
    expect(body.timeline).toContain('maintenance');
    expect(body.diagram).toMatch(/^stateDiagram-v2/);
    expect(body.diagram).toContain('class paused current');
    expect(body.diagram).toContain('running --> pausing: pause');

    expect((await s.call('GET', '/api/instances/01NOPE')).status).toBe(404);
    expect(errorSchema.parse((await s.call('GET', `/api/instances/${'x'.repeat(600)}`)).body).code).toBe('VALIDATION');
  });
});

describe('commands', () => {
  it('pauses and resumes as the authenticated actor, and audits that actor', async () => {
    const { controller } = await setup();
    const s = await serve(controller);
    const i = await controller.submit('etl-load');
    await untilState(controller, i.id, 'running');

    const paused = await s.call('POST', '/api/commands/pause', { body: { target: { instanceId: i.id }, reason: 'db maintenance' } });
    expect(paused.status).toBe(200);
    const result = controlResultSchema.parse(paused.body);
    expect(result).toMatchObject({ action: 'pause', status: 'completed', applied: [{ instanceId: i.id, from: 'running', to: 'pausing', changed: true }] });
    await untilState(controller, i.id, 'paused');
    const [entry] = await controller.audit({ commandId: result.commandId, kind: 'command' });
    expect(entry).toMatchObject({ actor: 'ops-bot', reason: 'db maintenance' });

    const resumed = await s.call('POST', '/api/commands/resume', { key: ALICE, body: { target: { taskId: 'etl-load' }, strategy: 'continue' } });
    expect(resumed.status).toBe(200);
    expect((resumed.body as ControlResult).applied).toEqual([{ instanceId: i.id, from: 'paused', to: 'queued', changed: true }]);
    expect((await controller.audit({ commandId: (resumed.body as ControlResult).commandId }))[0].actor).toBe('alice');
    await untilState(controller, i.id, 'running');

    const stopped = await s.call('POST', '/api/commands/stop', { body: { target: { instanceIds: [i.id] }, force: true } });
    expect((stopped.body as ControlResult).applied[0]).toMatchObject({ to: 'stopped' });
    const rerun = await s.call('POST', '/api/commands/rerun', { body: { target: { instanceId: i.id }, params: { rows: 1 } } });
    expect((rerun.body as ControlResult).applied[0]).toMatchObject({ from: 'stopped', to: 'queued' });
  });

  it('previews with dryRun: nothing changes, and the result names each instance, downstream ones included', async () => {
    const { controller } = await setup();
    const s = await serve(controller);
    const day = '2024-03-01T00:00:00.000Z';
    const upstream = await controller.submit('daily', { logicalDate: day });
    const downstream = await controller.submit('daily-report', { logicalDate: day });
    await untilState(controller, upstream.id, 'succeeded');
    await untilState(controller, downstream.id, ['stopped', 'succeeded', 'failed', 'queued', 'running']);
    // daily-report has no handler: it fails or stays; make both terminal for the rerun preview
    await controller.stop({ instanceId: downstream.id }, { force: true });
    await untilState(controller, downstream.id, ['stopped', 'failed', 'succeeded']);
    const before = await controller.audit();

    const res = await s.call('POST', '/api/commands/rerun', { body: { target: { instanceId: upstream.id }, downstream: true, dryRun: true } });
    expect(res.status).toBe(200);
    const result = controlResultSchema.parse(res.body);
    expect(result.applied.map((a) => [a.instanceId, a.to])).toEqual([
      [upstream.id, 'queued'],
      [downstream.id, 'pending'],
    ]);
    expect(result.instances).toEqual({
      [upstream.id]: { taskId: 'daily', logicalDate: day, state: 'succeeded' },
      [downstream.id]: { taskId: 'daily-report', logicalDate: day, state: expect.any(String) },
    });
    expect((await controller.get(upstream.id))!.state).toBe('succeeded');
    expect(await controller.audit()).toEqual(before);
  });

  it('refuses a body that names the actor, a non-object body, invalid JSON and invalid options (400)', async () => {
    const { controller } = await setup();
    const s = await serve(controller);
    const i = await controller.submit('etl-load');
    const actor = await s.call('POST', '/api/commands/pause', { body: { target: { instanceId: i.id }, actor: 'mallory' } });
    expect(actor.status).toBe(400);
    expect(actor.body).toMatchObject({ code: 'VALIDATION', issues: [{ path: ['body', 'actor'] }] });
    for (const raw of ['[1,2]', '"pause"', 'null', '{"target":', 'not json']) {
      const res = await s.call('POST', '/api/commands/pause', { raw, headers: { 'content-type': 'application/json' } });
      expect(res.status, raw).toBe(400);
      expect((res.body as { code: string }).code).toBe('VALIDATION');
    }
    const noTarget = await s.call('POST', '/api/commands/pause', { body: {} });
    expect(noTarget.status).toBe(400);
    expect((noTarget.body as { issues: { path: unknown[] }[] }).issues[0].path[0]).toBe('target');
    const badMode = await s.call('POST', '/api/commands/pause', { body: { target: { instanceId: i.id }, mode: 'gently' } });
    expect(badMode.status).toBe(400);
    expect((badMode.body as { issues: { path: unknown[] }[] }).issues[0].path).toEqual(['options', 'mode']);
    const unknown = await s.call('POST', '/api/commands/pause', { body: { target: { instanceId: i.id }, colour: 'red' } });
    expect(unknown.status).toBe(400);
    expect((await controller.get(i.id))!.state).not.toBe('paused');
  });

  it('answers 404 for an unknown instance or action, 405 for a wrong method, 415 without a JSON content type', async () => {
    const { controller } = await setup();
    const s = await serve(controller);
    const missing = await s.call('POST', '/api/commands/pause', { body: { target: { instanceId: '01NOPE' } } });
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ code: 'NOT_FOUND' });
    expect((await s.call('POST', '/api/commands/explode', { body: { target: { all: true } } })).status).toBe(404);

    const get = await s.call('GET', '/api/commands/pause');
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    expect(get.body).toMatchObject({ code: 'METHOD_NOT_ALLOWED' });
    const post = await s.call('POST', '/api/instances', { body: {} });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET');
    expect((await s.call('DELETE', '/api/instances')).status).toBe(405);
    expect((await s.call('PUT', '/api/backfills')).headers.get('allow')).toBe('GET, POST');

    const body = JSON.stringify({ target: { all: true } });
    for (const type of [undefined, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx']) {
      const res = await s.call('POST', '/api/commands/pause', { raw: body, headers: type ? { 'content-type': type } : {} });
      expect(res.status, String(type)).toBe(415);
      expect(res.body).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });
    }
    expect((await controller.heldScopes()).length).toBe(0);
    const ok = await s.call('POST', '/api/commands/pause', { raw: body, headers: { 'content-type': 'Application/JSON; charset=utf-8' } });
    expect(ok.status).toBe(200);
  });

  it('answers 413 for bodies over 1 MiB, declared or streamed', async () => {
    const { controller } = await setup();
    const s = await serve(controller);
    const big = JSON.stringify({ target: { all: true }, reason: 'x'.repeat(1024 * 1024) });
    const declared = await s.call('POST', '/api/commands/pause', { raw: big, headers: { 'content-type': 'application/json' } });
    expect(declared.status).toBe(413);
    expect(declared.body).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });

    // chunked, no Content-Length: the limit is counted as the body arrives
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${s.base}/api/commands/pause`, {
        method: 'POST',
        headers: { authorization: `Bearer ${OPS}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      const chunk = 'x'.repeat(64 * 1024);
      req.write('{"target":{"all":true},"reason":"');
      for (let n = 0; n < 20; n++) req.write(chunk);
      req.end('"}');
    });
    expect(status).toBe(413);
    // a body just under the limit is fine (and then fails validation on its own merits)
    const under = await s.call('POST', '/api/commands/pause', { raw: JSON.stringify({ target: { all: true }, reason: 'x'.repeat(20_000) }), headers: { 'content-type': 'application/json' } });
    expect(under.status).toBe(400);
    expect((await controller.heldScopes()).length).toBe(0);
  });

  it('answers 403 FORBIDDEN when authorize says no, and for cross-site requests', async () => {
    const asked: AuthRequest[] = [];
    const { controller } = await setup({
      authorize: (req) => {
        asked.push(req);
        return req.actor === 'ops-bot';
      },
    });
    const s = await serve(controller);
    const i = await controller.submit('etl-load', { actor: 'ops-bot' });
    const denied = await s.call('POST', '/api/commands/stop', { key: ALICE, body: { target: { instanceId: i.id } } });
    expect(denied.status).toBe(403);
    expect(denied.body).toMatchObject({ code: 'FORBIDDEN' });
    expect(asked.at(-1)).toMatchObject({ action: 'stop', actor: 'alice' });
    const crossSite = await s.call('POST', '/api/commands/pause', { body: { target: { instanceId: i.id } }, headers: { 'sec-fetch-site': 'cross-site' } });
    expect(crossSite.status).toBe(403);
    expect((await s.call('POST', '/api/commands/pause', { body: { target: { instanceId: i.id } }, headers: { 'sec-fetch-site': 'same-origin' } })).status).toBe(200);
  });

  it('maps CONFLICT and ILLEGAL_TRANSITION to 409, UNAVAILABLE to 503, anything else to a bare 500', async () => {
    const { controller } = await setup();
    const errors: unknown[] = [];
    const s = await serve(controller, { onError: (e) => errors.push(e) });
    const i = await controller.submit('etl-load');
    const cases: [unknown, number, string][] = [
      [new TaskControlError('CONFLICT', 'lost a race'), 409, 'CONFLICT'],
      [new TaskControlError('ILLEGAL_TRANSITION', 'no such move'), 409, 'ILLEGAL_TRANSITION'],
      [new TaskControlError('UNAVAILABLE', 'database down'), 503, 'UNAVAILABLE'],
      [new Error('secret stack detail'), 500, 'INTERNAL'],
    ];
    for (const [error, status, code] of cases) {
      (controller as unknown as { stop: () => Promise<never> }).stop = async () => {
        throw error;
      };
      const res = await s.call('POST', '/api/commands/stop', { body: { target: { instanceId: i.id } } });
      expect(res.status).toBe(status);
      expect((res.body as { code: string }).code).toBe(code);
      expect(res.text).not.toContain('secret');
    }
    expect(errors).toHaveLength(1);
  });

  it('answers 503 UNAVAILABLE when the store is down', async () => {
    const store = new MemoryStateStore();
    const { controller } = await setup({ store });
    const s = await serve(controller);
    store.listInstances = async () => {
      throw new TaskControlError('UNAVAILABLE', 'the database cannot be reached');
    };
    const res = await s.call('GET', '/api/instances');
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ code: 'UNAVAILABLE', message: 'the database cannot be reached' });
  });
});

describe('backfills', () => {
  it('previews with dryRun, starts (201), reports status, and pauses, resumes and cancels as one unit', async () => {
    const { controller } = await setup();
    const s = await serve(controller);
    const range = { taskId: 'daily', from: '2024-01-01T00:00:00Z', to: '2024-01-20T00:00:00Z' };
    const dry = await s.call('POST', '/api/backfills', { body: { ...range, mode: 'serial', reprocess: 'failed', dryRun: true } });
    expect(dry.status).toBe(200);
    const plan = backfillStartedSchema.parse(dry.body);
    expect(plan).toMatchObject({ dryRun: true, status: { state: 'planned', total: 20 }, plan: { total: 20, wouldCreate: 20, wouldRerun: 0, wouldSkip: 0 } });
    expect(plan.plan?.byPolicy).toMatchObject({ none: { wouldCreate: 20 }, all: { wouldCreate: 20 } });
    expect(plan.preview?.[0]).toMatchObject({ index: 0, logicalDate: '2024-01-01T00:00:00.000Z' });
    expect(await controller.list({ taskId: 'daily' })).toEqual({ items: [] });

    const started = await s.call('POST', '/api/backfills', { body: { ...range, mode: 'serial', reason: 'recompute' } });
    expect(started.status).toBe(201);
    const { id } = started.body as { id: string };
    expect(started.headers.get('location')).toBe(`/taskctl/api/backfills/${id}`);
    const [entry] = await controller.audit({ backfillId: id, kind: 'command' });
    expect(entry).toMatchObject({ action: 'backfill', actor: 'ops-bot', reason: 'recompute' });

    const paused = await s.call('POST', `/api/backfills/${id}/pause`, { body: {} });
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ id, state: 'paused', total: 20 });
    const status = await s.call('GET', `/api/backfills/${id}`);
    expect(backfillDetailSchema.parse(status.body)).toMatchObject({ id, taskId: 'daily', state: 'paused', controllable: true, mode: 'serial', reprocess: 'none' });
    const list = await s.call('GET', '/api/backfills?state=paused,running&taskId=daily');
    expect((list.body as { items: { id: string }[] }).items.map((b) => b.id)).toEqual([id]);
    expect((await s.call('GET', '/api/backfills?state=done')).status).toBe(400);
    expect((await s.call('GET', '/api/backfills?colour=red')).status).toBe(400);

    expect((await s.call('POST', `/api/backfills/${id}/resume`, { body: {} })).body).toMatchObject({ state: 'running' });
    const cancelled = await s.call('POST', `/api/backfills/${id}/cancel`, { key: ALICE, body: {} });
    expect(cancelled.body).toMatchObject({ state: 'cancelled' });
    expect((await controller.audit({ backfillId: id, actor: 'alice' })).length).toBeGreaterThan(0);

    expect((await s.call('POST', `/api/backfills/${id}/explode`, { body: {} })).status).toBe(404);
    expect((await s.call('POST', `/api/backfills/${id}/pause`, { body: { force: true } })).status).toBe(400);
    expect((await s.call('POST', `/api/backfills/${id}/pause`, { body: { actor: 'x' } })).status).toBe(400);
    expect((await s.call('GET', '/api/backfills/01NOPE')).status).toBe(404);
    expect((await s.call('POST', '/api/backfills/01NOPE/pause', { body: {} })).status).toBe(404);
  });

  it('refuses an overlapping backfill with 409 BACKFILL_CONFLICT, and a bad one with 400 or 404', async () => {
    const { controller } = await setup();
    const s = await serve(controller);
    const body = { taskId: 'daily', from: '2024-01-01T00:00:00Z', to: '2024-03-01T00:00:00Z' };
    expect((await s.call('POST', '/api/backfills', { body })).status).toBe(201);
    const again = await s.call('POST', '/api/backfills', { body: { ...body, from: '2024-02-01T00:00:00Z' } });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'BACKFILL_CONFLICT' });
    expect((await s.call('POST', '/api/backfills', { body: { ...body, mode: 'sideways' } })).status).toBe(400);
    expect((await s.call('POST', '/api/backfills', { body: { from: body.from, to: body.to } })).status).toBe(400);
    expect((await s.call('POST', '/api/backfills', { body: { ...body, taskId: 'nope' } })).status).toBe(404);
    expect((await s.call('POST', '/api/backfills', { body: { ...body, actor: 'mallory' } })).status).toBe(400);
  });

  it('answers 404 for pause/resume/cancel of a backfill another controller drives, while still reporting its status', async () => {
    const store = new MemoryStateStore();
    const { controller } = await setup({ store });
    const bf = await controller.backfill('daily', { from: '2024-01-01T00:00:00Z', to: '2024-01-31T00:00:00Z' });
    const operator = track(new TaskController({ store })); // no executor: drives nothing
    operator.define({ id: 'daily', group: 'etl', schedule: { every: 'P1D' } });
    const s = await serve(operator);
    const status = await s.call('GET', `/api/backfills/${bf.id}`);
    expect(status.body).toMatchObject({ id: bf.id, controllable: false });
    const res = await s.call('POST', `/api/backfills/${bf.id}/pause`, { body: {} });
    expect(res.status).toBe(404);
    expect((res.body as { message: string }).message).toMatch(/not driven by this process/);
  });
});

describe('audit', () => {
  it('queries the audit trail with its filters, as JSON or JSON lines', async () => {
    const { controller } = await setup();
    const s = await serve(controller);
    const a = await controller.submit('quick', { actor: 'scheduler' });
    await untilState(controller, a.id, 'succeeded');
    await s.call('POST', '/api/commands/rerun', { key: ALICE, body: { target: { instanceId: a.id }, reason: 'again' } });
    await untilState(controller, a.id, 'succeeded');

    const byActor = await s.call('GET', '/api/audit?actor=alice&kind=command');
    expect(byActor.status).toBe(200);
    const items = (byActor.body as { items: unknown[] }).items.map((e) => auditEntrySchema.parse(e));
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ actor: 'alice', action: 'rerun', reason: 'again' });
    const byInstance = (await s.call('GET', `/api/audit?instanceId=${a.id}&limit=2`)).body as { items: { id: string }[] };
    expect(byInstance.items).toHaveLength(2);

    const lines = await s.call('GET', `/api/audit?instanceId=${a.id}&format=jsonl`);
    expect(lines.status).toBe(200);
    expect(lines.headers.get('content-type')).toMatch(/application\/x-ndjson/);
    const entries = lines.text.trim().split('\n').map((l) => JSON.parse(l));
    expect(entries.length).toBe((await controller.audit({ instanceId: a.id })).length);
    expect(entries[0]).toMatchObject({ kind: 'transition', to: 'queued' });

    for (const q of ['?limit=x', '?kind=gossip', '?since=yesterday', '?format=xml', '?colour=red']) {
      expect((await s.call('GET', `/api/audit${q}`)).status, q).toBe(400);
    }
    expect((await s.call('GET', '/api/audit?format=jsonl&kind=gossip')).status).toBe(400);
  });
});

describe('approvals and metrics (governance)', () => {
  it('a command that needs approval answers 202; a second person approves it; decisions are checked', async () => {
    const { controller } = await setup({ approvals: { rules: [{ actions: ['stop'], groups: ['etl'] }] } } as never);
    const s = await serve(controller);
    const i = await controller.submit('etl-load');
    await untilState(controller, i.id, 'running');

    const asked = await s.call('POST', '/api/commands/stop', { body: { target: { instanceId: i.id }, reason: 'runaway job' } });
    expect(asked.status).toBe(202);
    const request = controlResultSchema.parse(asked.body);
    expect(request).toMatchObject({ status: 'awaiting_approval', applied: [] });
    expect((await controller.get(i.id))!.state).toBe('running');

    const waiting = await s.call('GET', '/api/approvals?state=awaiting');
    expect(waiting.status).toBe(200);
    expect((waiting.body as { items: { commandId: string }[] }).items.map((r) => r.commandId)).toEqual([request.commandId]);
    expect((await s.call('GET', '/api/approvals?state=maybe')).status).toBe(400);

    const own = await s.call('POST', `/api/approvals/${request.commandId}/approve`, { body: {} });
    expect(own.status).toBe(403);
    const withActor = await s.call('POST', `/api/approvals/${request.commandId}/approve`, { key: ALICE, body: { actor: 'ops-bot' } });
    expect(withActor.status).toBe(400);
    const approved = await s.call('POST', `/api/approvals/${request.commandId}/approve`, { key: ALICE, body: { reason: 'confirmed on call' } });
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ commandId: request.commandId, status: 'completed', applied: [{ instanceId: i.id, to: 'stopping' }] });
    await untilState(controller, i.id, 'stopped');
    const twice = await s.call('POST', `/api/approvals/${request.commandId}/approve`, { key: ALICE, body: {} });
    expect(twice.status).toBe(409);
    expect(twice.body).toMatchObject({ code: 'CONFLICT' });
    expect((await s.call('POST', '/api/approvals/01NOPE/approve', { key: ALICE, body: {} })).status).toBe(404);
    expect((await s.call('POST', `/api/approvals/${request.commandId}/maybe`, { key: ALICE, body: {} })).status).toBe(404);
    expect((await s.call('POST', `/api/approvals/${request.commandId}/approve`, { key: ALICE, raw: '{}' })).status).toBe(415);

    // a second request, rejected
    const j = await controller.submit('etl-load');
    const second = (await s.call('POST', '/api/commands/stop', { body: { target: { instanceId: j.id } } })).body as ControlResult;
    const rejected = await s.call('POST', `/api/approvals/${second.commandId}/reject`, { key: ALICE, body: { reason: 'not needed' } });
    expect(rejected.status).toBe(200);
    expect((await s.call('GET', '/api/approvals?state=rejected')).body).toMatchObject({ items: [{ commandId: second.commandId }] });
    expect((await controller.get(j.id))!.state).not.toBe('stopped');
  });

  it('serves metrics()', async () => {
    const { controller } = await setup();
    const s = await serve(controller);
    const i = await controller.submit('etl-load');
    await s.call('POST', '/api/commands/pause', { body: { target: { instanceId: i.id } } });
    const res = await s.call('GET', '/api/metrics');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      commands: { pause: { total: 1, applied: 1, denied: 0, latencyMs: { p50: expect.any(Number) } } },
      instances: expect.objectContaining({ paused: expect.any(Number) }),
      queueLength: expect.any(Number),
      running: expect.any(Number),
    });
  });

  it('answers 501 where the controller has no such method (feature detection)', async () => {
    const { controller } = await setup();
    for (const name of ['approvals', 'approve', 'reject', 'metrics', 'auditStream']) {
      Object.defineProperty(controller, name, { value: undefined, configurable: true });
    }
    const s = await serve(controller);
    expect((await s.call('GET', '/api/approvals')).status).toBe(501);
    expect((await s.call('POST', '/api/approvals/01X/approve', { body: {} })).body).toMatchObject({ code: 'NOT_IMPLEMENTED' });
    expect((await s.call('GET', '/api/metrics')).status).toBe(501);
    expect((await s.call('GET', '/api/session')).body).toMatchObject({ features: { approvals: false, metrics: false, auditStream: false } });
    const q = await controller.submit('quick');
    await untilState(controller, q.id, 'succeeded');
    const lines = await s.call('GET', `/api/audit?format=jsonl&instanceId=${q.id}`); // falls back to audit()
    expect(lines.text.trim().split('\n')).toHaveLength(3);
  });
});

describe('events (Server-Sent Events)', () => {
  it('streams transition, command and backfill events, with heartbeats', async () => {
    const { controller } = await setup();
    const s = await serve(controller, { heartbeatMs: 40 });
    const stream = await events(s);
    expect(stream.res.status).toBe(200);
    expect(stream.res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(await stream.next('ready')).toMatchObject({ actor: 'ops-bot', types: ['transition', 'command', 'backfill'] });

    const i = await controller.submit('etl-load');
    expect(await stream.next('transition', (e) => e.instanceId === i.id && e.to === 'running')).toMatchObject({ taskId: 'etl-load', from: 'queued' });
    await s.call('POST', '/api/commands/pause', { body: { target: { instanceId: i.id } } });
    expect(await stream.next('command', (e) => e.action === 'pause')).toMatchObject({ actor: 'ops-bot', applied: [{ instanceId: i.id, to: 'pausing' }] });
    await stream.next('transition', (e) => e.instanceId === i.id && e.to === 'paused');
    await s.call('POST', '/api/backfills', { body: { taskId: 'daily', from: '2024-01-01T00:00:00Z', to: '2024-01-03T00:00:00Z' } });
    expect(await stream.next('backfill', (e) => e.state === 'completed', 5000)).toMatchObject({ taskId: 'daily', total: 3 });
    await stream.until(() => stream.comments.some((c) => c.startsWith(': ping')), 'a heartbeat');
    expect(s.handler.eventClients).toBe(1);
    stream.close();
    await untilTrue(() => s.handler.eventClients === 0);
  });

  it('sends only the asked event types, and refuses unknown ones', async () => {
    const { controller } = await setup();
    const s = await serve(controller);
    const stream = await events(s, OPS, '?types=backfill');
    await stream.next('ready');
    const q = await controller.submit('quick');
    await untilState(controller, q.id, 'succeeded');
    await s.call('POST', '/api/backfills', { body: { taskId: 'daily', from: '2024-01-01T00:00:00Z', to: '2024-01-02T00:00:00Z' } });
    await stream.next('backfill', (e) => e.state === 'completed', 5000);
    expect(stream.received.filter((e) => e.event === 'transition')).toEqual([]);
    stream.close();
    expect((await s.call('GET', '/api/events?types=gossip')).status).toBe(400);
  });

  it('shows an actor only the events of tasks the authorize hook lets it control', async () => {
    const rules: Record<string, string[]> = { 'ops-bot': ['etl-load', 'quick', 'daily'], alice: ['quick'] };
    const { controller } = await setup({
      authorize: (req) => req.actor !== undefined && req.tasks.length > 0 && req.tasks.every((t) => rules[req.actor!]?.includes(t)),
    });
    const s = await serve(controller);
    const ops = await events(s, OPS);
    const alice = await events(s, ALICE);
    const viewer = await events(s, 'k-viewer-789');
    await Promise.all([ops.next('ready'), alice.next('ready'), viewer.next('ready')]);

    const hidden = await controller.submit('etl-load', { actor: 'ops-bot' });
    await untilState(controller, hidden.id, 'running');
    const shown = await controller.submit('quick', { actor: 'ops-bot' });
    await untilState(controller, shown.id, 'succeeded');
    await s.call('POST', '/api/commands/pause', { body: { target: { instanceIds: [hidden.id] } } });
    await s.call('POST', '/api/commands/rerun', { body: { target: { instanceId: shown.id } } });

    await ops.next('command', (e) => e.action === 'rerun');
    await alice.next('command', (e) => e.action === 'rerun');
    await ops.next('transition', (e) => e.instanceId === shown.id && e.to === 'succeeded' && e.attempt === 2);
    await alice.next('transition', (e) => e.instanceId === shown.id && e.to === 'succeeded' && e.attempt === 2);
    await sleep(50);
    const about = (list: typeof ops.received) => new Set(list.filter((e) => e.event === 'transition').map((e) => (e.data as { taskId: string }).taskId));
    expect(about(ops.received)).toEqual(new Set(['etl-load', 'quick']));
    expect(about(alice.received)).toEqual(new Set(['quick']));
    expect(alice.received.filter((e) => e.event === 'command').map((e) => (e.data as { action: string }).action)).toEqual(['rerun']);
    expect(viewer.received.map((e) => e.event)).toEqual(['ready']);
    for (const st of [ops, alice, viewer]) st.close();
  });

  it('ends the streams and answers 503 once the handler is closed', async () => {
    const { controller } = await setup();
    const s = await serve(controller);
    const stream = await events(s);
    await stream.next('ready');
    s.handler.close();
    await stream.until(() => stream.ended(), 'the stream to end');
    const res = await s.call('GET', '/api/instances');
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ code: 'UNAVAILABLE' });
  });
});

describe('OpenAPI', () => {
  it('serves an OpenAPI 3.1 document generated from the zod schemas', async () => {
    const { controller } = await setup();
    const s = await serve(controller);
    const res = await s.call('GET', '/api/openapi.json');
    expect(res.status).toBe(200);
    const doc = res.body as {
      openapi: string;
      servers: { url: string }[];
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown>; required: string[] } }> }; parameters?: { name: string }[] }>>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.servers).toEqual([{ url: '/taskctl' }]);
    for (const path of [
      '/api/instances',
      '/api/instances/{id}',
      '/api/commands/pause',
      '/api/commands/resume',
      '/api/commands/stop',
      '/api/commands/rerun',
      '/api/backfills',
      '/api/backfills/{id}',
      '/api/backfills/{id}/pause',
      '/api/backfills/{id}/resume',
      '/api/backfills/{id}/cancel',
      '/api/audit',
      '/api/approvals',
      '/api/approvals/{commandId}/approve',
      '/api/approvals/{commandId}/reject',
      '/api/metrics',
      '/api/events',
      '/api/openapi.json',
    ]) {
      expect(doc.paths[path], path).toBeDefined();
    }
    const pause = doc.paths['/api/commands/pause'].post.requestBody!.content['application/json'].schema;
    expect(Object.keys(pause.properties)).toEqual(expect.arrayContaining(['target', 'mode', 'graceMs', 'reason', 'dryRun', 'idempotencyKey']));
    expect(pause.properties.actor).toBeUndefined();
    expect(pause.properties.mode).toEqual({ type: 'string', enum: ['graceful', 'force'] });
    expect(pause.required).toEqual(['target']);
    const backfill = doc.paths['/api/backfills'].post.requestBody!.content['application/json'].schema;
    expect(backfill.required).toEqual(expect.arrayContaining(['taskId', 'from', 'to']));
    expect(backfill.properties.from).toMatchObject({ type: 'string', format: 'date-time' });
    expect(doc.paths['/api/instances'].get.parameters!.map((p) => p.name)).toEqual(expect.arrayContaining(['taskId', 'group', 'state', 'backfillId', 'limit', 'cursor']));
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['Instance', 'ControlResult', 'AuditEntry', 'BackfillStatus', 'Error', 'Target']));
    expect(JSON.stringify(doc)).not.toContain('$defs');
    expect(s.handler.openapi()).toEqual(doc);
  });
});

describe('mounting', () => {
  it('works as Connect/Express middleware: next() outside basePath, a pre-parsed body, a mount path', async () => {
    const { controller } = await setup();
    const s = await serve(controller, { basePath: '/ops/taskctl' }, (handler) => (req: IncomingMessage, res: ServerResponse) => {
      // what express.json() and app.use('/ops', ...) leave behind
      const r = req as IncomingMessage & { originalUrl?: string; body?: unknown };
      if (req.url?.startsWith('/ops/')) {
        r.originalUrl = req.url;
        req.url = req.url.slice('/ops'.length);
      }
      const go = () =>
        handler(req, res, () => {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('the rest of the app');
        });
      if (req.method === 'POST' && req.headers['x-pre-parsed']) {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          r.body = JSON.parse(Buffer.concat(chunks).toString());
          go();
        });
      } else go();
    });
    const outside = await fetch(`${s.url}/health`);
    expect(await outside.text()).toBe('the rest of the app');
    expect(await (await fetch(`${s.url}/ops/taskctlfoo`)).text()).toBe('the rest of the app');
    expect((await s.call('GET', '/api/session')).body).toMatchObject({ basePath: '/ops/taskctl' });
    const i = await controller.submit('etl-load');
    const res = await s.call('POST', '/api/commands/pause', { body: { target: { instanceId: i.id }, dryRun: true }, headers: { 'x-pre-parsed': '1' } });
    expect(res.status).toBe(200);
    expect((res.body as ControlResult).applied[0].instanceId).toBe(i.id);
  });

  it('answers 404 outside basePath when used as a plain request handler', async () => {
    const { controller } = await setup();
    const s = await serve(controller);
    const res = await fetch(`${s.url}/elsewhere`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('keys map to actors exactly as given', () => {
    expect(Object.values(KEYS)).toEqual(['ops-bot', 'alice', 'viewer']);
  });
});

async function untilTrue(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(5);
  }
}

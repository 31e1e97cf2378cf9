import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import type { BackfillOptions, TaskController } from '../controller/controller.js';
import { TaskControlError } from '../errors.js';
import { toMermaid } from '../format/mermaid.js';
import { formatTimeline } from '../format/timeline.js';
import { TRANSITIONS } from '../machine/transitions.js';
import * as inputs from '../schemas.js';
import type { BackfillRecord } from '../store/state-store.js';
import type { AuditEntry, AuditFilter, ControlAction, ControlResult, ListFilter, Target } from '../types.js';
import type { Authenticate } from './auth.js';
import { DEFAULT_MAX_BODY_BYTES, isJson, readJsonBody } from './body.js';
import { consolePage, CONTENT_SECURITY_POLICY, loginPage } from './console/page.js';
import { HttpError, invalid, toHttpError } from './errors.js';
import { buildOpenApi } from './openapi.js';
import { queryToInput } from './query.js';
import { EVENT_TYPES, EventHub, type CanSee, type EventSubject, type EventType } from './sse.js';

/** Options of {@link createControlHandler}. */
export interface ControlHandlerOptions {
  /** Where the API and the console live. @default '/taskctl' */
  basePath?: string;
  /**
   * Who is calling: the actor's name, or `undefined` for 401. Asked on every request, the
   * console page included. The actor is the actor of every command the request issues.
   * `apiKeys({ key: actor })` is one; a host with its own login reads its session here.
   */
  authenticate: Authenticate;
  /** Request bodies larger than this get 413. @default 1 MiB */
  maxBodyBytes?: number;
  /** How often an idle event stream gets a heartbeat comment. @default 15000 */
  heartbeatMs?: number;
  /**
   * Which events an actor receives on `GET /api/events`. Default: when the controller was built
   * with an `authorize` hook, an actor sees the events of a task when `authorize` allows it at
   * least one control action (pause, resume, stop or rerun) on that task; without a hook,
   * every authenticated actor sees every event. `false` turns filtering off.
   */
  canSee?: CanSee | false;
  /** Called with errors that answer 500 (they are not shown to the client). @default console.error */
  onError?: (error: unknown, req: IncomingMessage) => void;
  /** The console's title. @default 'taskctl' */
  title?: string;
}

/** A Node request handler that is also Connect/Express middleware. */
export interface ControlHandler {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void;
  /** The normalized base path ('' when mounted at the root). */
  readonly basePath: string;
  /** Open event streams. */
  readonly eventClients: number;
  /** The OpenAPI 3.1 document served at `${basePath}/api/openapi.json`. */
  openapi(): Record<string, unknown>;
  /** End every event stream; later requests get 503. Call it before `server.close()`. */
  close(): void;
}

/** The governance methods, present on controllers that have them (feature-detected). */
interface Governance {
  approvals(filter?: { state?: string | string[] }): unknown;
  approve(commandId: string, options: { actor: string; reason?: string }): Promise<unknown>;
  reject(commandId: string, options: { actor: string; reason?: string }): Promise<unknown>;
  metrics(): unknown;
  auditStream(filter?: AuditFilter): AsyncIterable<AuditEntry>;
}

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  actor: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown>;
}
type Route = { pattern: string[]; methods: Partial<Record<'GET' | 'POST', (ctx: Ctx) => Promise<void>>> };

const ACTIONS: readonly ControlAction[] = ['pause', 'resume', 'stop', 'rerun'];
const BACKFILL_OPS = ['pause', 'resume', 'cancel'] as const;
const BACKFILL_STATES = ['planned', 'running', 'paused', 'cancelled', 'completed'] as const;
const DECISIONS = ['approve', 'reject'] as const;

/**
 * Mount taskctl's control API and operator console on any Node HTTP server:
 *
 * ```ts
 * import { createControlHandler, apiKeys } from 'taskctl/http';
 * const handler = createControlHandler(controller, { authenticate: apiKeys({ 'k-ops-123': 'ops-bot' }) });
 * http.createServer(handler).listen(8080);       // or app.use(handler) in Express
 * ```
 *
 * JSON under `${basePath}/api` (see docs/console.md), the console at `${basePath}/`.
 */
export function createControlHandler(controller: TaskController, options: ControlHandlerOptions): ControlHandler {
  if (!controller || typeof (controller as { list?: unknown }).list !== 'function') {
    throw new TaskControlError('VALIDATION', 'createControlHandler: controller must be a TaskController', { issues: [{ path: ['controller'], message: 'must be a TaskController' }] });
  }
  if (typeof options?.authenticate !== 'function') {
    throw new TaskControlError('VALIDATION', 'createControlHandler: options.authenticate must be a function (req) => actor | undefined', {
      issues: [{ path: ['options', 'authenticate'], message: 'must be a function' }],
    });
  }
  const base = normalizeBase(options.basePath ?? '/taskctl');
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const canSee = options.canSee === false ? undefined : (options.canSee ?? authorizeVisibility(controller));
  const hub = new EventHub(controller, canSee, heartbeatMs);
  const gov = controller as unknown as Partial<Governance>;
  const title = options.title ?? 'taskctl';
  const onError = options.onError ?? ((err: unknown) => console.error('[taskctl/http] internal error:', err));
  let openapi: Record<string, unknown> | undefined;
  let closed = false;

  const need = <K extends keyof Governance>(name: K): Governance[K] => {
    const fn = gov[name];
    if (typeof fn !== 'function') throw new HttpError(501, 'NOT_IMPLEMENTED', `this controller has no ${name}() (a taskctl without governance)`);
    return (fn as (...a: never[]) => unknown).bind(controller) as Governance[K];
  };
  const features = () => ({
    approvals: typeof gov.approvals === 'function',
    metrics: typeof gov.metrics === 'function',
    auditStream: typeof gov.auditStream === 'function',
  });

  const routes: Route[] = [
    {
      pattern: ['api', 'session'],
      methods: { GET: async ({ res, actor }) => sendJson(res, 200, { actor, basePath: base, heartbeatMs, features: features() }) },
    },
    {
      pattern: ['api', 'instances'],
      methods: {
        GET: async ({ res, query }) => sendJson(res, 200, await controller.list(queryToInput(inputs.listFilterSchema, query) as ListFilter)),
      },
    },
    {
      pattern: ['api', 'instances', ':id'],
      methods: {
        GET: async ({ res, params }) => {
          const instance = await controller.get(params.id);
          if (!instance) throw new HttpError(404, 'NOT_FOUND', `instance ${params.id} does not exist`);
          const audit = await controller.audit({ instanceId: instance.id, limit: 1000 });
          sendJson(res, 200, {
            instance,
            audit,
            timeline: formatTimeline(audit),
            diagram: toMermaid(TRANSITIONS, { highlight: instance.state }),
          });
        },
      },
    },
    {
      pattern: ['api', 'commands', ':action'],
      methods: {
        POST: async ({ res, params, body, actor }) => {
          const action = params.action as ControlAction;
          if (!ACTIONS.includes(action)) throw new HttpError(404, 'NOT_FOUND', `no command ${params.action}: use pause, resume, stop or rerun`);
          noActor(body);
          const { target, ...rest } = body;
          const result = (await controller[action](target as Target, { ...rest, actor } as never)) as ControlResult;
          if (rest.dryRun === true) (result as ControlResult & { instances?: unknown }).instances = await describeInstances(controller, result);
          sendJson(res, result.status === 'awaiting_approval' || result.status === 'scheduled' ? 202 : 200, result);
        },
      },
    },
    {
      pattern: ['api', 'backfills'],
      methods: {
        GET: async ({ res, query }) => {
          const unknown = [...query.keys()].filter((k) => k !== 'taskId' && k !== 'state');
          if (unknown.length) throw invalid(['query', unknown[0]], 'unknown parameter (use taskId, state)');
          const states = query.getAll('state').flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
          const bad = states.find((s) => !(BACKFILL_STATES as readonly string[]).includes(s));
          if (bad !== undefined) throw invalid(['query', 'state'], `'${bad}' is not a backfill state (${BACKFILL_STATES.join(', ')})`);
          const taskId = query.get('taskId') ?? undefined;
          const records = await controller.store.listBackfills({ taskId, state: states.length ? (states as BackfillRecord['state'][]) : undefined });
          records.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
          const items = await Promise.all(records.slice(0, 100).map((r) => backfillDetail(controller, r.id, r)));
          sendJson(res, 200, { items: items.filter((i) => i !== undefined) });
        },
        POST: async ({ res, body, actor }) => {
          noActor(body);
          const { taskId, ...rest } = body;
          const handle = await controller.backfill(taskId as string, { ...rest, actor } as BackfillOptions);
          void handle.done.catch(() => undefined);
          if (rest.dryRun === true) {
            sendJson(res, 200, { id: handle.id, dryRun: true, status: handle.status(), preview: handle.preview, plan: handle.plan });
          } else {
            sendJson(res, 201, { id: handle.id, dryRun: false, status: handle.status() }, { Location: `${base}/api/backfills/${encodeURIComponent(handle.id)}` });
          }
        },
      },
    },
    {
      pattern: ['api', 'backfills', ':id'],
      methods: {
        GET: async ({ res, params }) => {
          const detail = await backfillDetail(controller, params.id);
          if (!detail) throw new HttpError(404, 'NOT_FOUND', `backfill ${params.id} does not exist`);
          sendJson(res, 200, detail);
        },
      },
    },
    {
      pattern: ['api', 'backfills', ':id', ':op'],
      methods: {
        POST: async ({ res, params, body, actor }) => {
          const op = params.op as (typeof BACKFILL_OPS)[number];
          if (!BACKFILL_OPS.includes(op)) throw new HttpError(404, 'NOT_FOUND', `no backfill operation ${params.op}: use pause, resume or cancel`);
          noActor(body);
          const extra = Object.keys(body);
          if (extra.length) throw invalid(['body', extra[0]], 'unknown field: this operation takes no options');
          const handle = controller.backfillHandle(params.id, actor);
          if (!handle) {
            const exists = await controller.getBackfill(params.id);
            throw new HttpError(
              404,
              'NOT_FOUND',
              exists ? `backfill ${params.id} is not driven by this process; control it where it runs` : `backfill ${params.id} does not exist`,
            );
          }
          await handle[op]({ actor });
          sendJson(res, 200, handle.status());
        },
      },
    },
    {
      pattern: ['api', 'audit'],
      methods: {
        GET: async ({ res, query }) => {
          const format = query.get('format') ?? 'json';
          if (format !== 'json' && format !== 'jsonl') throw invalid(['query', 'format'], 'must be json or jsonl');
          const filter = queryToInput(inputs.auditFilterSchema, query, ['format']) as AuditFilter;
          if (format === 'jsonl') return streamAudit(res, controller, gov, filter);
          sendJson(res, 200, { items: await controller.audit({ limit: 500, ...filter }) });
        },
      },
    },
    {
      pattern: ['api', 'approvals'],
      methods: {
        GET: async ({ res, query }) => {
          const approvals = need('approvals');
          const schema = (inputs as unknown as Record<string, z.ZodType | undefined>).approvalsFilterSchema;
          const filter = schema ? queryToInput(schema, query) : Object.fromEntries(query.entries());
          const items = (await approvals(filter)) as unknown;
          sendJson(res, 200, { items: Array.isArray(items) ? items : ((items as { items?: unknown[] })?.items ?? []) });
        },
      },
    },
    {
      pattern: ['api', 'approvals', ':commandId', ':decision'],
      methods: {
        POST: async ({ res, params, body, actor }) => {
          const decision = params.decision as (typeof DECISIONS)[number];
          if (!DECISIONS.includes(decision)) throw new HttpError(404, 'NOT_FOUND', `no decision ${params.decision}: use approve or reject`);
          noActor(body);
          const result = await need(decision)(params.commandId, { ...body, actor } as { actor: string });
          sendJson(res, 200, result ?? { commandId: params.commandId, decision });
        },
      },
    },
    {
      pattern: ['api', 'metrics'],
      methods: { GET: async ({ res }) => sendJson(res, 200, await need('metrics')()) },
    },
    {
      pattern: ['api', 'events'],
      methods: {
        GET: async ({ res, query, actor }) => {
          const asked = query.getAll('types').flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean);
          const bad = asked.find((t) => !(EVENT_TYPES as readonly string[]).includes(t));
          if (bad !== undefined) throw invalid(['query', 'types'], `'${bad}' is not an event type (${EVENT_TYPES.join(', ')})`);
          hub.add(res, actor, new Set((asked.length ? asked : EVENT_TYPES) as EventType[]));
        },
      },
    },
    {
      pattern: ['api', 'openapi.json'],
      methods: { GET: async ({ res }) => sendJson(res, 200, (openapi ??= buildOpenApi(base))) },
    },
  ];

  const handle = async (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): Promise<void> => {
    const url = new URL((req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/', 'http://taskctl.invalid');
    const path = url.pathname;
    if (path !== base && !path.startsWith(`${base}/`)) {
      if (next) return next();
      throw new HttpError(404, 'NOT_FOUND', `nothing at ${path}`);
    }
    if (closed) throw new HttpError(503, 'UNAVAILABLE', 'the control API is shutting down');
    const rest = path.slice(base.length);
    const isPage = rest === '' || rest === '/';
    const actor = await authenticate(options.authenticate, req);
    if (isPage && req.method === 'GET') {
      if (actor === undefined) return sendPage(res, 401, loginPage(base, title));
      return sendPage(res, 200, consolePage(base, title));
    }
    if (actor === undefined) throw new HttpError(401, 'UNAUTHENTICATED', 'not authenticated: send the credentials this server expects (e.g. Authorization: Bearer <key>)');
    if (isPage) throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed here`, undefined, { Allow: 'GET' });

    let segments: string[];
    try {
      segments = rest.slice(1).split('/').map((s) => decodeURIComponent(s));
    } catch {
      throw invalid(['path'], 'malformed percent-encoding');
    }
    let params: Record<string, string> | undefined;
    const route = routes.find((r) => (params = matchRoute(r.pattern, segments)) !== undefined);
    if (!route || !params) throw new HttpError(404, 'NOT_FOUND', `no route ${req.method} ${path}`);
    const method = req.method as 'GET' | 'POST';
    const run = route.methods[method];
    if (!run) {
      throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}`, undefined, { Allow: Object.keys(route.methods).join(', ') });
    }
    let body: Record<string, unknown> = {};
    if (method === 'POST') {
      if (req.headers['sec-fetch-site'] === 'cross-site') throw new HttpError(403, 'FORBIDDEN', 'cross-site requests are refused');
      if (!isJson(req)) throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'state-changing requests need Content-Type: application/json');
      const parsed = await readJsonBody(req, maxBody);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid(['body'], 'must be a JSON object');
      body = parsed as Record<string, unknown>;
    }
    await run({ req, res, actor, params, query: url.searchParams, body });
  };

  const handler = ((req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => {
    handle(req, res, next).catch((err: unknown) => {
      const e = toHttpError(err);
      if (e.status >= 500 && e.code === 'INTERNAL') onError(err, req);
      if (res.headersSent) {
        res.end();
        return;
      }
      sendJson(res, e.status, e.issues ? { code: e.code, message: e.message, issues: e.issues } : { code: e.code, message: e.message }, {
        ...(e.status === 401 ? { 'WWW-Authenticate': 'Bearer realm="taskctl"' } : {}),
        ...e.headers,
      });
    });
  }) as ControlHandler;
  Object.defineProperties(handler, {
    basePath: { value: base, enumerable: true },
    eventClients: { get: () => hub.size, enumerable: true },
  });
  handler.openapi = () => (openapi ??= buildOpenApi(base));
  handler.close = () => {
    closed = true;
    hub.close();
  };
  return handler;
}

function normalizeBase(basePath: string): string {
  if (typeof basePath !== 'string' || !basePath.startsWith('/') || /[?#\s]/.test(basePath)) {
    throw new TaskControlError('VALIDATION', `createControlHandler: options.basePath must be a path starting with '/' (got ${JSON.stringify(basePath)})`, {
      issues: [{ path: ['options', 'basePath'], message: "must start with '/'" }],
    });
  }
  return basePath.replace(/\/+$/, '');
}

function matchRoute(pattern: string[], segments: string[]): Record<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i].startsWith(':')) {
      if (segments[i] === '') return undefined;
      params[pattern[i].slice(1)] = segments[i];
    } else if (pattern[i] !== segments[i]) return undefined;
  }
  return params;
}

async function authenticate(fn: Authenticate, req: IncomingMessage): Promise<string | undefined> {
  try {
    const actor = await fn(req);
    return typeof actor === 'string' && actor.length > 0 && actor.length <= 512 ? actor : undefined;
  } catch (err) {
    if (err instanceof TaskControlError && err.code === 'UNAVAILABLE') throw err;
    return undefined;
  }
}

/** The caller is the actor: a body that names one is refused rather than silently overridden. */
function noActor(body: Record<string, unknown>): void {
  if ('actor' in body) throw invalid(['body', 'actor'], 'not allowed: the actor is the authenticated caller');
}

/** For dry runs: what each instance named in the result is, so a preview can say which ones change. */
async function describeInstances(controller: TaskController, result: ControlResult): Promise<Record<string, unknown>> {
  const ids = [...new Set([...result.applied.map((a) => a.instanceId), ...result.rejected.map((r) => r.instanceId)])].slice(0, 1000);
  const out: Record<string, unknown> = {};
  for (const id of ids) {
    const i = await controller.get(id);
    if (!i) continue;
    const d: Record<string, unknown> = { taskId: i.taskId, state: i.state };
    if (i.logicalDate !== undefined) d.logicalDate = i.logicalDate;
    if (i.backfillId !== undefined) d.backfillId = i.backfillId;
    out[id] = d;
  }
  return out;
}

async function backfillDetail(controller: TaskController, id: string, known?: BackfillRecord): Promise<Record<string, unknown> | undefined> {
  const status = await controller.getBackfill(id);
  if (!status) return undefined;
  const record = known ?? (await controller.store.getBackfill(id));
  const out: Record<string, unknown> = { ...status, controllable: controller.backfillHandle(id) !== undefined };
  if (record) {
    Object.assign(out, {
      from: record.from,
      to: record.to,
      mode: record.mode,
      concurrency: record.concurrency,
      reprocess: record.reprocess,
      schedule: record.schedule,
      createdAt: record.createdAt,
    });
    if (record.actor !== undefined) out.actor = record.actor;
  }
  return out;
}

/** `GET /api/audit?format=jsonl`: every match as JSON lines, through auditStream when the controller has it. */
async function streamAudit(res: ServerResponse, controller: TaskController, gov: Partial<Governance>, filter: AuditFilter): Promise<void> {
  const source: AsyncIterable<AuditEntry> | AuditEntry[] =
    typeof gov.auditStream === 'function' ? gov.auditStream.call(controller, filter) : await controller.audit(filter);
  const it = (Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : (source as AuditEntry[])[Symbol.iterator]()) as
    | AsyncIterator<AuditEntry>
    | Iterator<AuditEntry>;
  let next = await it.next(); // a VALIDATION error surfaces here, before any header is sent
  res.writeHead(200, { 'Content-Type': 'application/x-ndjson; charset=utf-8', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  while (!next.done) {
    if (res.destroyed) break;
    if (!res.write(`${JSON.stringify(next.value)}\n`)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
    next = await it.next();
  }
  await it.return?.();
  res.end();
}

/**
 * The default event visibility: the controller's own `authorize` hook, asked (without an audit
 * entry) whether the actor may pause, resume, stop or rerun the task. Read from the controller
 * (through the controller's public `authorizer`).
 */
function authorizeVisibility(controller: TaskController): CanSee | undefined {
  const ask = controller.authorizer;
  if (!ask) return undefined;
  return async (actor: string, subject: EventSubject) => {
    for (const action of ACTIONS) {
      const allowed = await ask({
        action,
        actor,
        target: { taskId: subject.taskId },
        taskId: subject.taskId,
        options: {},
        tasks: [subject.taskId],
        groups: subject.group === undefined ? [] : [subject.group],
        subjects: [subject],
      });
      if (allowed) return true;
    }
    return false;
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(text)),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(text);
}

function sendPage(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(html)),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    ...(status === 401 ? { 'WWW-Authenticate': 'Bearer realm="taskctl"' } : {}),
  });
  res.end(html);
}

import { z } from 'zod';
import * as inputs from '../schemas.js';
import { responseSchemas } from './schemas.js';

type JsonSchema = Record<string, unknown> & { properties?: Record<string, JsonSchema>; required?: string[] };

/** A zod schema as JSON Schema 2020-12 (what OpenAPI 3.1 uses), inputs as a client sends them. */
export function jsonSchemaOf(schema: z.ZodType): JsonSchema {
  const out = z.toJSONSchema(schema, OPTIONS) as JsonSchema;
  delete out.$schema;
  return out;
}

const OPTIONS = {
  target: 'draft-2020-12',
  io: 'input',
  unrepresentable: 'any',
  override: (ctx: { zodSchema: unknown; jsonSchema: Record<string, unknown> }) => {
    const type = (ctx.zodSchema as { _zod: { def: { type: string } } })._zod.def.type;
    // dates travel as ISO strings; the library's custom date inputs accept those
    if (type === 'custom' || type === 'date') {
      for (const key of Object.keys(ctx.jsonSchema)) delete ctx.jsonSchema[key];
      Object.assign(ctx.jsonSchema, { type: 'string', format: 'date-time' });
    }
  },
} as const;

/** The response schemas as OpenAPI components, referring to each other by `#/components/schemas/<id>`. */
function components(): Record<string, JsonSchema> {
  const { schemas } = z.toJSONSchema(responseSchemas, { ...OPTIONS, uri: (id: string) => `#/components/schemas/${id}` }) as unknown as {
    schemas: Record<string, JsonSchema>;
  };
  for (const schema of Object.values(schemas)) {
    delete schema.$schema;
    delete schema.$id;
  }
  return schemas;
}

/** The body of a method call over HTTP: its options without `actor` (the caller is the actor), plus `extra` fields. */
function bodySchema(options: z.ZodType, extra: Record<string, JsonSchema>, required: string[]): JsonSchema {
  const js = jsonSchemaOf(options);
  const properties = { ...extra, ...(js.properties ?? {}) };
  delete properties.actor;
  return { ...js, properties, required: [...required, ...(js.required ?? []).filter((r) => r !== 'actor')] };
}

/** Query parameters from the fields of a filter schema. */
function queryParameters(filter: z.ZodType, descriptions: Record<string, string> = {}): unknown[] {
  const js = jsonSchemaOf(filter);
  return Object.entries(js.properties ?? {}).map(([name, schema]) => {
    const takesArray = JSON.stringify(schema).includes('"type":"array"');
    return {
      name,
      in: 'query',
      required: (js.required ?? []).includes(name),
      style: 'form',
      explode: true,
      schema,
      ...(descriptions[name] || takesArray
        ? { description: descriptions[name] ?? 'repeat the parameter or separate values with commas' }
        : {}),
    };
  });
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown, description = 'OK') => ({ description, content: { 'application/json': { schema } } });
const errors = (...statuses: number[]) =>
  Object.fromEntries(
    [401, ...statuses].map((s) => [String(s), { description: ERROR_TEXT[s] ?? 'error', content: { 'application/json': { schema: ref('Error') } } }]),
  );
const ERROR_TEXT: Record<number, string> = {
  400: 'VALIDATION: the input failed the method schema (issues name the fields)',
  401: 'not authenticated',
  403: 'FORBIDDEN: the authorize hook said no (or a cross-site request)',
  404: 'NOT_FOUND',
  405: 'method not allowed',
  409: 'CONFLICT, ILLEGAL_TRANSITION, BACKFILL_CONFLICT, SCOPE_HELD or GUARD_REJECTED',
  413: 'body over the size limit (1 MiB by default)',
  415: 'state-changing requests need Content-Type: application/json',
  501: 'this controller has no such feature (an older taskctl)',
  503: 'UNAVAILABLE: the store cannot be reached, or the handler is closed',
};
const jsonBody = (schema: unknown, required = true) => ({ required, content: { 'application/json': { schema } } });
const post = 'post';

/** Build the OpenAPI 3.1 document of the control API mounted at `basePath`. */
export function buildOpenApi(basePath: string, version = '0.1.0'): Record<string, unknown> {
  const s = inputs as unknown as Record<string, z.ZodType | undefined>;
  const actionBodies = {
    pause: bodySchema(inputs.pauseOptionsSchema, { target: ref('Target') }, ['target']),
    resume: bodySchema(inputs.resumeOptionsSchema, { target: ref('Target') }, ['target']),
    stop: bodySchema(inputs.stopOptionsSchema, { target: ref('Target') }, ['target']),
    rerun: bodySchema(inputs.rerunOptionsSchema, { target: ref('Target') }, ['target']),
  };
  const taskId = (jsonSchemaOf(inputs.listFilterSchema).properties ?? {}).taskId ?? { type: 'string' };
  const backfillBody = bodySchema(inputs.backfillOptionsSchema, { taskId }, ['taskId']);
  const decision = s.decisionOptionsSchema
    ? bodySchema(s.decisionOptionsSchema, {}, [])
    : { type: 'object', properties: { reason: (jsonSchemaOf(inputs.pauseOptionsSchema).properties ?? {}).reason }, additionalProperties: false };

  const paths: Record<string, unknown> = {
    '/api/session': {
      get: { operationId: 'session', summary: 'Who the caller is, and what this server offers', responses: { 200: json(ref('Session')), ...errors() } },
    },
    '/api/instances': {
      get: {
        operationId: 'listInstances',
        summary: 'list(): instances matching the filter, oldest first, one page at a time',
        parameters: queryParameters(inputs.listFilterSchema, { cursor: 'the cursor of the previous page', state: 'repeat the parameter or separate states with commas' }),
        responses: { 200: json(ref('InstancePage')), ...errors(400, 503) },
      },
    },
    '/api/instances/{id}': {
      get: {
        operationId: 'getInstance',
        summary: 'get() plus the instance timeline and its state diagram',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { 200: json(ref('InstanceDetail')), ...errors(400, 404) },
      },
    },
    '/api/backfills': {
      get: {
        operationId: 'listBackfills',
        summary: 'Backfills in the store, newest first (at most 100)',
        parameters: [
          { name: 'taskId', in: 'query', required: false, schema: taskId },
          {
            name: 'state',
            in: 'query',
            required: false,
            style: 'form',
            explode: true,
            description: 'repeat the parameter or separate states with commas',
            schema: { type: 'array', items: { type: 'string', enum: ['running', 'paused', 'cancelled', 'completed'] } },
          },
        ],
        responses: { 200: json(ref('Backfills')), ...errors(400) },
      },
      [post]: {
        operationId: 'backfill',
        summary: 'backfill(taskId, options); with dryRun: the plan and a preview, creating nothing',
        requestBody: jsonBody(backfillBody),
        responses: {
          200: json(ref('BackfillStarted'), 'dry run: what would happen'),
          201: json(ref('BackfillStarted'), 'started'),
          ...errors(400, 403, 404, 409, 413, 415),
        },
      },
    },
    '/api/backfills/{id}': {
      get: {
        operationId: 'getBackfill',
        summary: 'getBackfill(id), with its range and settings',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { 200: json(ref('Backfill')), ...errors(400, 404) },
      },
    },
    '/api/audit': {
      get: {
        operationId: 'audit',
        summary: 'audit(filter): oldest first; the newest 500 unless limit says otherwise. format=jsonl streams every match as JSON lines',
        parameters: [
          ...queryParameters(inputs.auditFilterSchema, { limit: 'keep the newest limit entries (default 500; ignored with format=jsonl)' }),
          { name: 'format', in: 'query', required: false, schema: { type: 'string', enum: ['json', 'jsonl'] } },
        ],
        responses: {
          200: { description: 'OK', content: { 'application/json': { schema: ref('AuditEntries') }, 'application/x-ndjson': { schema: ref('AuditEntry') } } },
          ...errors(400),
        },
      },
    },
    '/api/approvals': {
      get: {
        operationId: 'approvals',
        summary: 'approvals({ state }): approval requests',
        parameters: s.approvalsFilterSchema ? queryParameters(s.approvalsFilterSchema) : [],
        responses: { 200: json({ type: 'object', properties: { items: { type: 'array', items: { type: 'object' } } }, required: ['items'] }), ...errors(400, 501) },
      },
    },
    '/api/metrics': {
      get: { operationId: 'metrics', summary: 'metrics(): a snapshot', responses: { 200: json({ type: 'object' }), ...errors(501) } },
    },
    '/api/events': {
      get: {
        operationId: 'events',
        summary: 'Server-Sent Events: transition, command and backfill (plus ready, and a heartbeat comment)',
        parameters: [
          {
            name: 'types',
            in: 'query',
            required: false,
            style: 'form',
            explode: false,
            description: 'which events to receive (default: all)',
            schema: { type: 'array', items: { type: 'string', enum: ['transition', 'command', 'backfill'] } },
          },
        ],
        responses: { 200: { description: 'an event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errors(400) },
      },
    },
    '/api/openapi.json': {
      get: { operationId: 'openapi', summary: 'This document', responses: { 200: json({ type: 'object' }), ...errors() } },
    },
  };
  for (const [action, body] of Object.entries(actionBodies)) {
    paths[`/api/commands/${action}`] = {
      [post]: {
        operationId: action,
        summary: `${action}(target, options) as the authenticated actor; dryRun: true previews the result`,
        requestBody: jsonBody(body),
        responses: {
          200: json(ref('ControlResult'), 'completed (or, with dryRun, what would happen)'),
          202: json(ref('ControlResult'), 'awaiting_approval or scheduled'),
          ...errors(400, 403, 404, 409, 413, 415),
        },
      },
    };
  }
  for (const op of ['pause', 'resume', 'cancel']) {
    paths[`/api/backfills/{id}/${op}`] = {
      [post]: {
        operationId: `${op}Backfill`,
        summary: `${op} the backfill as one unit (only a backfill this process drives)`,
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        requestBody: jsonBody({ type: 'object', additionalProperties: false }, false),
        responses: { 200: json(ref('BackfillStatus')), ...errors(400, 403, 404, 413, 415) },
      },
    };
  }
  for (const decide of ['approve', 'reject']) {
    paths[`/api/approvals/{commandId}/${decide}`] = {
      [post]: {
        operationId: decide,
        summary: `${decide}(commandId, { actor, reason }) as the authenticated actor`,
        parameters: [{ name: 'commandId', in: 'path', required: true, schema: { type: 'string' } }],
        requestBody: jsonBody(decision, false),
        responses: { 200: json(decide === 'approve' ? ref('ControlResult') : { type: 'object' }), ...errors(400, 403, 404, 409, 413, 415, 501) },
      },
    };
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'taskctl control API',
      version,
      description:
        'Pause, resume, stop, rerun and backfill the instances of a taskctl controller. Request schemas are generated from the ' +
        "library's zod schemas; the authenticated caller is the actor of every command.",
    },
    servers: [{ url: basePath || '/' }],
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: "what the host's authenticate function reads; apiKeys() reads a Bearer key" },
      },
      schemas: components(),
    },
  };
}

// `taskctl/http`: the HTTP control API and the operator console, for any Node HTTP server
// (plain `http`, Express, Connect, Fastify's middie, ...). Nothing here is imported by the core.
export { createControlHandler } from './handler.js';
export type { ControlHandler, ControlHandlerOptions } from './handler.js';
export { apiKeys } from './auth.js';
export type { Authenticate } from './auth.js';
export { buildOpenApi } from './openapi.js';
export { HttpError } from './errors.js';
export type { ErrorBody } from './errors.js';
export type { CanSee, EventSubject, EventType } from './sse.js';
export { EVENT_TYPES } from './sse.js';
export {
  instanceSchema,
  instancePageSchema,
  instanceDetailSchema,
  controlResultSchema,
  auditEntrySchema,
  backfillStatusSchema,
  backfillDetailSchema,
  backfillStartedSchema,
  errorSchema,
  sessionSchema,
} from './schemas.js';

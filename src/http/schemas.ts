import { z } from 'zod';
import { scheduleSchema, stateSchema, targetSchema } from '../schemas.js';
import type { AuditEntry, BackfillStatus, ControlResult, Instance } from '../types.js';

// Shapes of the JSON this API answers with. The request side reuses the methods' own schemas
// (src/schemas.ts); these describe responses only, for the OpenAPI document and for tests that
// check real responses against it. The assignments at the end keep them in step with types.ts.

/** Every response schema, by name: the OpenAPI document's components. */
export const responseSchemas = z.registry<{ id: string }>();

const iso = z.string().describe('ISO 8601 date-time');

export const instanceSchema = z
  .object({
    id: z.string(),
    taskId: z.string(),
    group: z.string().optional(),
    logicalDate: iso.optional(),
    params: z.record(z.string(), z.unknown()),
    state: stateSchema,
    attempt: z.number().int(),
    version: z.number().int(),
    checkpoint: z.unknown().optional(),
    error: z.object({ code: z.string(), message: z.string() }).optional(),
    result: z.unknown().optional(),
    backfillId: z.string().optional(),
    lease: z.object({ owner: z.string(), token: z.number(), expiresAt: iso }).optional(),
    deadlineAt: iso.optional(),
    retryAt: iso.optional(),
    startedAt: iso.optional(),
    endedAt: iso.optional(),
    progress: z.object({ done: z.number(), total: z.number().optional() }).optional(),
    createdAt: iso,
    updatedAt: iso,
  })
  
  .register(responseSchemas, { id: 'Instance' });

export const instancePageSchema = z
  .object({ items: z.array(instanceSchema), cursor: z.string().optional().describe('pass it back as ?cursor= for the next page; absent on the last page') })
  .register(responseSchemas, { id: 'InstancePage' });

export const controlResultSchema = z
  .object({
    commandId: z.string(),
    action: z.enum(['pause', 'resume', 'stop', 'rerun']),
    status: z.enum(['completed', 'awaiting_approval', 'scheduled']),
    applied: z.array(z.object({ instanceId: z.string(), from: stateSchema, to: stateSchema, changed: z.boolean() })),
    rejected: z.array(z.object({ instanceId: z.string(), code: z.string(), message: z.string() })),
    instances: z
      .record(z.string(), z.object({ taskId: z.string(), logicalDate: z.string().optional(), state: stateSchema, backfillId: z.string().optional() }))
      .optional()
      .describe('dry runs only: the task, logical date and state of each instance named in applied/rejected'),
  })
  
  .register(responseSchemas, { id: 'ControlResult' });

export const auditEntrySchema = z
  .object({
    id: z.string(),
    at: iso,
    actor: z.string(),
    kind: z.enum(['command', 'transition', 'late_result']),
    action: z.string().optional(),
    commandId: z.string().optional(),
    instanceId: z.string().optional(),
    taskId: z.string().optional(),
    backfillId: z.string().optional(),
    from: z.union([stateSchema, z.literal('none')]).optional(),
    to: stateSchema.optional(),
    event: z.string().optional(),
    attempt: z.number().int().optional(),
    reason: z.string().optional(),
    result: z.unknown().optional(),
    target: targetSchema.optional(),
    instanceIds: z.array(z.string()).optional(),
    taskIds: z.array(z.string()).optional(),
    backfillIds: z.array(z.string()).optional(),
  })
  
  .register(responseSchemas, { id: 'AuditEntry' });

export const auditPageSchema = z.object({ items: z.array(auditEntrySchema) }).register(responseSchemas, { id: 'AuditEntries' });

export const instanceDetailSchema = z
  .object({
    instance: instanceSchema,
    audit: z.array(auditEntrySchema).describe('the instance timeline: its commands and transitions, oldest first (the newest 1000)'),
    timeline: z.string().describe('the same as text (formatTimeline)'),
    diagram: z.string().describe('Mermaid state diagram of TRANSITIONS with the current state highlighted (toMermaid)'),
  })
  .register(responseSchemas, { id: 'InstanceDetail' });

const countsSchema = z.record(stateSchema, z.number().int());

targetSchema.register(responseSchemas, { id: 'Target' });
stateSchema.register(responseSchemas, { id: 'InstanceState' });

export const backfillStatusSchema = z
  .object({
    id: z.string(),
    taskId: z.string(),
    state: z.enum(['planned', 'running', 'paused', 'cancelled', 'completed']),
    total: z.number().int(),
    counts: countsSchema,
  })
  
  .register(responseSchemas, { id: 'BackfillStatus' });

export const backfillDetailSchema = backfillStatusSchema
  .extend({
    controllable: z.boolean().describe('true when this process drives the backfill, so pause/resume/cancel work here'),
    from: z.string().optional(),
    to: z.string().optional(),
    mode: z.enum(['serial', 'parallel']).optional(),
    concurrency: z.number().int().optional(),
    reprocess: z.enum(['none', 'failed', 'all']).optional(),
    schedule: scheduleSchema.optional(),
    actor: z.string().optional(),
    createdAt: z.string().optional(),
  })
  .register(responseSchemas, { id: 'Backfill' });

export const backfillListSchema = z.object({ items: z.array(backfillDetailSchema) }).register(responseSchemas, { id: 'Backfills' });

const policyCounts = z.object({ wouldCreate: z.number().int(), wouldRerun: z.number().int(), wouldSkip: z.number().int() });

export const backfillStartedSchema = z
  .object({
    id: z.string(),
    dryRun: z.boolean(),
    status: backfillStatusSchema,
    preview: z.array(z.object({ index: z.number().int(), logicalDate: z.string(), intervalEnd: z.string() })).optional().describe('dry runs: the first 100 slots in run order'),
    plan: policyCounts
      .extend({ total: z.number().int(), byPolicy: z.record(z.enum(['none', 'failed', 'all']), policyCounts).optional() })
      
      .optional()
      .describe('dry runs: what the backfill would do under the chosen reprocess policy, and under each'),
  })
  .register(responseSchemas, { id: 'BackfillStarted' });

export const errorSchema = z
  .object({
    code: z.string().describe('VALIDATION, UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, METHOD_NOT_ALLOWED, CONFLICT, ILLEGAL_TRANSITION, BACKFILL_CONFLICT, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, NOT_IMPLEMENTED, UNAVAILABLE, ...'),
    message: z.string(),
    issues: z.array(z.object({ path: z.array(z.union([z.string(), z.number()])), message: z.string(), code: z.string().optional() })).optional(),
  })
  .register(responseSchemas, { id: 'Error' });

export const sessionSchema = z
  .object({
    actor: z.string(),
    basePath: z.string(),
    heartbeatMs: z.number().int(),
    features: z.object({ approvals: z.boolean(), metrics: z.boolean(), auditStream: z.boolean() }),
  })
  .register(responseSchemas, { id: 'Session' });


// keep the response schemas in step with the library's types: these fail to compile when a
// field of the type no longer fits the schema
type Out<T extends z.ZodType> = z.output<T>;
export const _typeChecks = {
  instance: (i: Instance): Out<typeof instanceSchema> => i,
  result: (r: ControlResult): Out<typeof controlResultSchema> => r,
  audit: (e: AuditEntry): Out<typeof auditEntrySchema> => e,
  backfill: (b: BackfillStatus): Out<typeof backfillStatusSchema> => b,
};

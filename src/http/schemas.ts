import { z } from 'zod';
import { scheduleSchema, stateSchema, targetSchema } from '../schemas.js';
import type { AuditEntry, BackfillStatus, ControlResult, Instance } from '../types.js';

// Shapes of the JSON this API answers with. The request side reuses the methods' own schemas
// (src/schemas.ts); these describe responses only, for the OpenAPI document and for tests that
// check real responses against it. The assignments at the end keep them in step with types.ts.

/** Every response schema, by name: the OpenAPI document's components. */
export const responseSchemas = z.registry<{ id: string }>();

const iso = z.string().describe('ISO 8601 date-time');

/** An instance, as the API returns it (see {@link index!Instance}). */
export const instanceSchema = z
  .object({
    /** ULID. */
    id: z.string(),
    /** The task this instance runs. */
    taskId: z.string(),
    /** The task's group, copied at submit time. */
    group: z.string().optional(),
    /** ISO 8601 with offset; at most one instance exists per (taskId, logicalDate). */
    logicalDate: iso.optional(),
    /** Parameters the executor receives. */
    params: z.record(z.string(), z.unknown()),
    /** The current state. */
    state: stateSchema,
    /** 1 on the first run, +1 per rerun or automatic retry. */
    attempt: z.number().int(),
    /** Bumped on every change (optimistic concurrency). */
    version: z.number().int(),
    /** Saved by the executor at a pause point. */
    checkpoint: z.unknown().optional(),
    /** Why the last attempt failed, for a failed instance. */
    error: z
      .object({
        /** Error code. */
        code: z.string(),
        /** Error message. */
        message: z.string(),
      })
      .optional(),
    /** What the executor resolved with, for a succeeded instance. */
    result: z.unknown().optional(),
    /** The backfill that created the instance, if any. */
    backfillId: z.string().optional(),
    /** Present while a controller runs the instance. */
    lease: z
      .object({
        /** The controller that owns the running attempt. */
        owner: z.string(),
        /** Fencing token: grows with every claim. */
        token: z.number(),
        /** When another controller may recover the instance. */
        expiresAt: iso,
      })
      .optional(),
    /** When a pausing/stopping instance is forced to paused/stopped. */
    deadlineAt: iso.optional(),
    /** When a failed instance is automatically retried. */
    retryAt: iso.optional(),
    /** When the current attempt last started running. */
    startedAt: iso.optional(),
    /** When the instance last reached a terminal state. */
    endedAt: iso.optional(),
    /** The last progress the executor reported. */
    progress: z
      .object({
        /** Units of work finished so far. */
        done: z.number(),
        /** Units of work in all, when known. */
        total: z.number().optional(),
      })
      .optional(),
    /** When the instance was created. */
    createdAt: iso,
    /** When the instance last changed. */
    updatedAt: iso,
  })
  
  .register(responseSchemas, { id: 'Instance' });

/** One page of instances (`GET /api/instances`). */
export const instancePageSchema = z
  .object({
    /** The instances on this page. */
    items: z.array(instanceSchema),
    /** Pass it back as `?cursor=` for the next page; absent on the last page. */
    cursor: z.string().optional().describe('pass it back as ?cursor= for the next page; absent on the last page'),
  })
  .register(responseSchemas, { id: 'InstancePage' });

/** What a control command answers (see {@link index!ControlResult}). */
export const controlResultSchema = z
  .object({
    /** The command id (ULID). */
    commandId: z.string(),
    /** The control action. */
    action: z.enum(['pause', 'resume', 'stop', 'rerun']),
    /** `completed`, `awaiting_approval` or `scheduled`. */
    status: z.enum(['completed', 'awaiting_approval', 'scheduled']),
    /** Instances the command changed or found already in the wanted state. */
    applied: z.array(
      z.object({
        /** The instance. */
        instanceId: z.string(),
        /** Its state before the command. */
        from: stateSchema,
        /** Its state after the command. */
        to: stateSchema,
        /** False when the instance already was where the command wanted it. */
        changed: z.boolean(),
      }),
    ),
    /** Instances the command could not change. */
    rejected: z.array(
      z.object({
        /** The instance. */
        instanceId: z.string(),
        /** Machine-readable reason (an error code). */
        code: z.string(),
        /** Human-readable reason. */
        message: z.string(),
      }),
    ),
    /** Dry runs only: the task, logical date and state of each instance named in applied/rejected. */
    instances: z
      .record(
        z.string(),
        z.object({
          /** The instance's task. */
          taskId: z.string(),
          /** Its logical date, if any. */
          logicalDate: z.string().optional(),
          /** Its current state. */
          state: stateSchema,
          /** Its backfill, if any. */
          backfillId: z.string().optional(),
        }),
      )
      .optional()
      .describe('dry runs only: the task, logical date and state of each instance named in applied/rejected'),
  })
  
  .register(responseSchemas, { id: 'ControlResult' });

/** One audit trail entry (see {@link index!AuditEntry}). */
export const auditEntrySchema = z
  .object({
    /** ULID; entries sort by it. */
    id: z.string(),
    /** When it was recorded. */
    at: iso,
    /** Who acted. */
    actor: z.string(),
    /** What was recorded. */
    kind: z.enum(['command', 'transition', 'late_result']),
    /** The command or other action. */
    action: z.string().optional(),
    /** The command this entry belongs to. */
    commandId: z.string().optional(),
    /** The instance concerned. */
    instanceId: z.string().optional(),
    /** The instance's task. */
    taskId: z.string().optional(),
    /** The backfill concerned. */
    backfillId: z.string().optional(),
    /** State before the transition. */
    from: z.union([stateSchema, z.literal('none')]).optional(),
    /** State after the transition. */
    to: stateSchema.optional(),
    /** The transition-table event, for transitions. */
    event: z.string().optional(),
    /** The attempt number, for transitions. */
    attempt: z.number().int().optional(),
    /** Why, as given by the actor. */
    reason: z.string().optional(),
    /** For commands: the result (or the denial); for late results: what the executor returned. */
    result: z.unknown().optional(),
    /** For commands: what it targeted. */
    target: targetSchema.optional(),
    /** For commands: the instances it touched. */
    instanceIds: z.array(z.string()).optional(),
    /** For commands: the tasks it concerned. */
    taskIds: z.array(z.string()).optional(),
    /** For commands: the backfills it concerned. */
    backfillIds: z.array(z.string()).optional(),
  })
  
  .register(responseSchemas, { id: 'AuditEntry' });

export const auditPageSchema = z.object({ items: z.array(auditEntrySchema) }).register(responseSchemas, { id: 'AuditEntries' });

/** One instance with its timeline (`GET /api/instances/:id`). */
export const instanceDetailSchema = z
  .object({
    /** The instance. */
    instance: instanceSchema,
    /** The instance timeline: its commands and transitions, oldest first (the newest 1000). */
    audit: z.array(auditEntrySchema).describe('the instance timeline: its commands and transitions, oldest first (the newest 1000)'),
    /** The same as text (formatTimeline). */
    timeline: z.string().describe('the same as text (formatTimeline)'),
    /** Mermaid state diagram of the transitions with the current state highlighted. */
    diagram: z.string().describe('Mermaid state diagram of TRANSITIONS with the current state highlighted (toMermaid)'),
  })
  .register(responseSchemas, { id: 'InstanceDetail' });

const countsSchema = z.record(stateSchema, z.number().int());

targetSchema.register(responseSchemas, { id: 'Target' });
stateSchema.register(responseSchemas, { id: 'InstanceState' });

/** A backfill's status (see {@link index!BackfillStatus}). */
export const backfillStatusSchema = z
  .object({
    /** The backfill id. */
    id: z.string(),
    /** The task being backfilled. */
    taskId: z.string(),
    /** The backfill as one unit. */
    state: z.enum(['planned', 'running', 'paused', 'cancelled', 'completed']),
    /** Slots in the range. */
    total: z.number().int(),
    /** The backfill's existing instances per state. */
    counts: countsSchema,
  })
  
  .register(responseSchemas, { id: 'BackfillStatus' });

/** A backfill with its options (`GET /api/backfills/:id`). */
export const backfillDetailSchema = backfillStatusSchema
  .extend({
    /** True when this process drives the backfill, so pause/resume/cancel work here. */
    controllable: z.boolean().describe('true when this process drives the backfill, so pause/resume/cancel work here'),
    /** Start of the range. */
    from: z.string().optional(),
    /** End of the range. */
    to: z.string().optional(),
    /** Run slots one at a time or in parallel. */
    mode: z.enum(['serial', 'parallel']).optional(),
    /** At most this many slots run at once in parallel mode. */
    concurrency: z.number().int().optional(),
    /** Which existing instances are run again. */
    reprocess: z.enum(['none', 'failed', 'all']).optional(),
    /** The schedule that produces the slots. */
    schedule: scheduleSchema.optional(),
    /** Who started the backfill. */
    actor: z.string().optional(),
    /** When it was created. */
    createdAt: z.string().optional(),
  })
  .register(responseSchemas, { id: 'Backfill' });

export const backfillListSchema = z.object({ items: z.array(backfillDetailSchema) }).register(responseSchemas, { id: 'Backfills' });

const policyCounts = z.object({
  /** Dates with no instance yet. */
  wouldCreate: z.number().int(),
  /** Dates whose instance the policy reruns. */
  wouldRerun: z.number().int(),
  /** Dates whose instance the policy leaves alone. */
  wouldSkip: z.number().int(),
});

/** What starting a backfill answers (`POST /api/backfills`). */
export const backfillStartedSchema = z
  .object({
    /** The backfill id. */
    id: z.string(),
    /** True for a dry run, which created nothing. */
    dryRun: z.boolean(),
    /** The backfill's status. */
    status: backfillStatusSchema,
    /** Dry runs: the first 100 slots in run order. */
    preview: z
      .array(
        z.object({
          /** Position of the slot in run order. */
          index: z.number().int(),
          /** The slot's logical date. */
          logicalDate: z.string(),
          /** The end of the slot's interval. */
          intervalEnd: z.string(),
        }),
      )
      .optional().describe('dry runs: the first 100 slots in run order'),
    /** Dry runs: what the backfill would do under the chosen reprocess policy, and under each. */
    plan: policyCounts
      .extend({
        /** Slots in the range. */
        total: z.number().int(),
        /** The same counts under each reprocess policy. */
        byPolicy: z.record(z.enum(['none', 'failed', 'all']), policyCounts).optional(),
      })
      
      .optional()
      .describe('dry runs: what the backfill would do under the chosen reprocess policy, and under each'),
  })
  .register(responseSchemas, { id: 'BackfillStarted' });

/** The body of every error response. */
export const errorSchema = z
  .object({
    /** Machine-readable error code. */
    code: z.string().describe('VALIDATION, UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, METHOD_NOT_ALLOWED, CONFLICT, ILLEGAL_TRANSITION, BACKFILL_CONFLICT, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, NOT_IMPLEMENTED, UNAVAILABLE, ...'),
    /** Human-readable message. */
    message: z.string(),
    /** What was wrong with the input, for validation errors. */
    issues: z
      .array(
        z.object({
          /** Where in the input. */
          path: z.array(z.union([z.string(), z.number()])),
          /** What is wrong there. */
          message: z.string(),
          /** The validator's issue code, if any. */
          code: z.string().optional(),
        }),
      )
      .optional(),
  })
  .register(responseSchemas, { id: 'Error' });

/** The caller's session (`GET /api/session`), as the console reads it. */
export const sessionSchema = z
  .object({
    /** The authenticated actor. */
    actor: z.string(),
    /** The path the handler is mounted at. */
    basePath: z.string(),
    /** How often the event stream sends a heartbeat, in milliseconds. */
    heartbeatMs: z.number().int(),
    /** Which optional features this server offers. */
    features: z.object({
      /** Approval requests can be listed and decided. */
      approvals: z.boolean(),
      /** Metrics are available. */
      metrics: z.boolean(),
      /** The audit trail can be streamed. */
      auditStream: z.boolean(),
    }),
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

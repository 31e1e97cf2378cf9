import { z } from 'zod';
import { TaskControlError, type ValidationIssue } from './errors.js';
import { INSTANCE_STATES } from './types.js';

// One zod schema per public input. Types in types.ts are the documented shapes; these
// schemas are what the boundary checks, and the HTTP layer reuses them.

const id = z.string().min(1, 'must not be empty').max(512);
const params = z.record(z.string(), z.unknown());
const nonNegInt = z.number().int().min(0);
const positiveInt = z.number().int().min(1);
const isoDate = z
  .union([z.string(), z.date()])
  .refine((v) => !Number.isNaN(new Date(v).getTime()), { message: 'must be a parsable ISO 8601 date' });

export const stateSchema = z.enum(INSTANCE_STATES as [string, ...string[]]);

export const scheduleSchema = z.union([
  z
    .object({
      /** Cron expression. */
      cron: z.string().min(1),
      /** IANA time zone. */
      timezone: z.string().optional(),
    })
    .strict(),
  z
    .object({
      /** Interval, such as `15m` or `1h`. */
      every: z.string().min(1),
      /** IANA time zone. */
      timezone: z.string().optional(),
    })
    .strict(),
]);

export const taskDefinitionSchema = z
  .object({
    id,
    group: id.optional(),
    schedule: scheduleSchema.optional(),
    dependsOn: z.array(id).optional(),
    defaultParams: params.optional(),
    timeoutMs: positiveInt.optional(),
    maxAttempts: positiveInt.optional(),
    retryDelayMs: nonNegInt.optional(),
    pauseAfterFailures: positiveInt.optional(),
  })
  .strict();

const TARGET_KEYS = ['instanceId', 'instanceIds', 'taskId', 'group', 'backfillId', 'all'] as const;

const targetVariants = z.union([
  z
    .object({
      /** One instance. */
      instanceId: id,
    })
    .strict(),
  z
    .object({
      /** These instances. */
      instanceIds: z.array(id).min(1, 'must name at least one instance'),
    })
    .strict(),
  z
    .object({
      /** Every instance of this task. */
      taskId: id,
    })
    .strict(),
  z
    .object({
      /** Every instance of the tasks of this group. */
      group: id,
    })
    .strict(),
  z
    .object({
      /** Every instance of this backfill. */
      backfillId: id,
    })
    .strict(),
  z
    .object({
      /** Every instance. */
      all: z.literal(true),
    })
    .strict(),
]);

/**
 * A control command's target. Checked key first, so that a mistake is named precisely
 * ("target.instanceIds: must name at least one instance", not "invalid input").
 */
export const targetSchema = z.unknown().superRefine((value, ctx) => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    ctx.addIssue({ code: 'custom', message: `must be an object with one of ${TARGET_KEYS.join(', ')}` });
    return;
  }
  const keys = Object.keys(value);
  const known = keys.filter((k) => (TARGET_KEYS as readonly string[]).includes(k));
  if (known.length !== 1 || keys.length !== 1) {
    const extra = keys.filter((k) => !(TARGET_KEYS as readonly string[]).includes(k));
    ctx.addIssue({
      code: 'custom',
      path: extra.length ? [extra[0]] : [],
      message: extra.length
        ? `unknown key '${extra[0]}'; a target has exactly one of ${TARGET_KEYS.join(', ')}`
        : `must have exactly one of ${TARGET_KEYS.join(', ')} (got ${known.length ? known.join(', ') : 'none'})`,
    });
    return;
  }
  const result = targetVariants.safeParse(value);
  if (!result.success) {
    for (const issue of result.error.issues) {
      if (issue.code === 'invalid_union') continue;
      const path = issue.path.length ? issue.path : [known[0]];
      ctx.addIssue({ code: 'custom', path: path as (string | number)[], message: issue.message });
    }
    // union errors nest the real reason: name the field and what it must be
    if (result.error.issues.every((i) => i.code === 'invalid_union')) {
      const k = known[0];
      const v = (value as Record<string, unknown>)[k];
      ctx.addIssue({
        code: 'custom',
        path: [k],
        message:
          k === 'all'
            ? 'must be true'
            : k === 'instanceIds'
              ? Array.isArray(v) && v.length === 0
                ? 'must name at least one instance'
                : 'must be an array of non-empty ids'
              : 'must be a non-empty string',
      });
    }
  }
}) as unknown as typeof targetVariants;

const commandOptions = {
  actor: id.optional(),
  reason: z.string().max(10_000).optional(),
  idempotencyKey: id.optional(),
  dryRun: z.boolean().optional(),
};

export const pauseOptionsSchema = z
  .object({ ...commandOptions, mode: z.enum(['graceful', 'force']).optional(), graceMs: positiveInt.optional() })
  .strict();

export const resumeOptionsSchema = z
  .object({
    ...commandOptions,
    strategy: z.enum(['continue', 'restart', 'skip']).optional(),
    params: params.optional(),
    at: isoDate.optional(),
    after: z.object({ instanceIds: z.array(id).min(1, 'must name at least one instance') }).strict().optional(),
  })
  .strict()
  .refine((o) => !(o.at !== undefined && o.after !== undefined), { message: 'give at or after, not both', path: ['at'] });

export const decisionOptionsSchema = z
  .object({ actor: id, reason: z.string().max(10_000).optional() })
  .strict();

export const approvalsFilterSchema = z
  .object({ state: z.union([z.enum(['awaiting', 'approved', 'rejected', 'expired']), z.array(z.enum(['awaiting', 'approved', 'rejected', 'expired']))]).optional() })
  .strict();

export const holdWhileOptionsSchema = z
  .object({ name: id.regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : - only'), checkEveryMs: positiveInt })
  .strict();

export const scopeTargetSchema = z.union([
  z.object({ taskId: id }).strict(),
  z.object({ group: id }).strict(),
  z.object({ all: z.literal(true) }).strict(),
]);

export const stopOptionsSchema = z
  .object({ ...commandOptions, force: z.boolean().optional(), graceMs: nonNegInt.optional() })
  .strict();

export const rerunOptionsSchema = z
  .object({
    ...commandOptions,
    params: params.optional(),
    downstream: z.boolean().optional(),
    onlyFailed: z.boolean().optional(),
  })
  .strict();

export const submitOptionsSchema = z
  .object({
    params: params.optional(),
    logicalDate: isoDate.optional(),
    actor: id.optional(),
  })
  .strict();

export const listFilterSchema = z
  .object({
    taskId: id.optional(),
    group: id.optional(),
    state: z.union([stateSchema, z.array(stateSchema)]).optional(),
    backfillId: id.optional(),
    limit: z.number().int().min(1).max(10_000).optional(),
    cursor: z.string().optional(),
  })
  .strict();

export const auditFilterSchema = z
  .object({
    instanceId: id.optional(),
    commandId: id.optional(),
    actor: id.optional(),
    action: id.optional(),
    taskId: id.optional(),
    backfillId: id.optional(),
    kind: z.enum(['command', 'transition', 'late_result']).optional(),
    since: isoDate.optional(),
    until: isoDate.optional(),
    limit: positiveInt.optional(),
  })
  .strict();

export const waitForOptionsSchema = z
  .object({ states: z.array(stateSchema).min(1).optional(), timeoutMs: positiveInt.optional() })
  .strict();

export const shutdownOptionsSchema = z.object({ graceMs: nonNegInt.optional() }).strict();

export const controllerOptionsSchema = z
  .object({
    store: z.custom<object>((v) => typeof v === 'object' && v !== null, 'must be a StateStore').optional(),
    executor: z
      .custom<object>((v) => typeof v === 'object' && v !== null && typeof (v as { execute?: unknown }).execute === 'function', 'must have an execute(ctx) method')
      .optional(),
    concurrency: positiveInt.optional(),
    authorize: z.custom<(...a: unknown[]) => unknown>((v) => typeof v === 'function', 'must be a function').optional(),
    clock: z.custom<() => Date>((v) => typeof v === 'function', 'must be a function returning a Date').optional(),
    timers: z.custom<object>((v) => typeof v === 'object' && v !== null, 'must be a TimerHost').optional(),
    leaseMs: positiveInt.optional(),
    environment: id.optional(),
    controllerId: id.optional(),
    guards: z.array(z.custom<object>((v) => typeof v === 'object' && v !== null)).optional(),
    pollMs: positiveInt.optional(),
    approvals: z
      .object({ rules: z.array(z.custom<object>((v) => typeof v === 'object' && v !== null, 'must be a rule')), ttlMs: positiveInt.optional() })
      .strict()
      .optional(),
  })
  .passthrough();

/** Validate `value` against `schema`; throw `VALIDATION` naming the field (prefixed by `what`) otherwise. */
export function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues: ValidationIssue[] = result.error.issues
    .filter((issue) => issue.code !== 'invalid_union' || result.error.issues.length === 1)
    .flatMap((issue): ValidationIssue[] => {
      const path = [what, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
      // name each unknown key in the path, so that the field is named, not just its object
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((key) => ({ path: [...path, key], message: `unknown option '${key}'`, code: issue.code }));
      }
      return [{ path, message: issue.message, code: issue.code }];
    });
  const first = issues[0];
  throw new TaskControlError('VALIDATION', `${first.path.join('.')}: ${first.message}`, { issues });
}

const dateInput = z.custom<string | Date | object>(
  (v) => typeof v === 'string' || v instanceof Date || (typeof v === 'object' && v !== null && 'toISO' in v),
  'must be an ISO 8601 string, a Date or a luxon DateTime',
);

export const backfillOptionsSchema = z
  .object({
    from: dateInput,
    to: dateInput,
    order: z.enum(['asc', 'desc']).optional(),
    params: params.optional(),
    actor: id.optional(),
    schedule: scheduleSchema.optional(),
    mode: z.enum(['serial', 'parallel']).optional(),
    concurrency: positiveInt.max(10_000).optional(),
    reprocess: z.enum(['none', 'failed', 'all']).optional(),
    dryRun: z.boolean().optional(),
    includeDownstream: z.boolean().optional(),
    reason: z.string().max(10_000).optional(),
  })
  .strict();

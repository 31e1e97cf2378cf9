/**
 * Every failure taskctl reports carries one of these codes.
 *
 * - `VALIDATION`: an input failed its schema; `issues` lists what and where.
 * - `NOT_FOUND`: an instance, task, backfill or command id that does not exist.
 * - `FORBIDDEN`: the controller's `authorize` hook said no.
 * - `ILLEGAL_TRANSITION`: the transition table has no row for that change.
 * - `CONFLICT`: an optimistic-concurrency race was lost, or a decision was already taken.
 * - `GUARD_REJECTED`: a transition guard refused the change.
 * - `SCOPE_HELD`: resuming one instance of a scope that is held; release the scope instead.
 * - `BACKFILL_CONFLICT`: an active backfill of the same task overlaps the range.
 * - `TIMEOUT`: a task's `timeoutMs` or a `waitFor` timeout passed.
 * - `UNAVAILABLE`: the store cannot be reached (a wrong connection string, a database that went
 *   away); nothing was written, and the call may be retried once it is back.
 */
export type ErrorCode =
  | 'VALIDATION'
  | 'NOT_FOUND'
  | 'FORBIDDEN'
  | 'ILLEGAL_TRANSITION'
  | 'CONFLICT'
  | 'GUARD_REJECTED'
  | 'SCOPE_HELD'
  | 'BACKFILL_CONFLICT'
  | 'TIMEOUT'
  | 'UNAVAILABLE';

/** One problem found while validating an input: where it is and what is wrong with it. */
export interface ValidationIssue {
  /** Path to the offending field, e.g. `['options', 'graceMs']`. */
  path: (string | number)[];
  /** What is wrong, in plain words. */
  message: string;
  /** The zod issue code, e.g. `too_small`. */
  code?: string;
}

// A global symbol survives two copies of the package being loaded side by side
// (say, one bundled by a dependency): `instanceof` then asks the symbol, not the prototype chain.
const BRAND = Symbol.for('taskctl.TaskControlError');

/**
 * The one error class taskctl throws. Check `code` to tell the cases apart.
 * `instanceof TaskControlError` works even when two copies of taskctl are loaded.
 */
export class TaskControlError extends Error {
  /** What kind of failure this is. */
  readonly code: ErrorCode;
  /** For `VALIDATION`: the zod issues, each with the path of the field. */
  readonly issues?: ValidationIssue[];
  /** Extra structured facts (the instance id, the guard name, ...). */
  readonly details?: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message: string,
    extra: { issues?: ValidationIssue[]; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'TaskControlError';
    this.code = code;
    if (extra.issues) this.issues = extra.issues;
    if (extra.details) this.details = extra.details;
    Object.defineProperty(this, BRAND, { value: true });
  }

  /** Recognises instances across duplicated copies of the module (checks a brand, not the prototype). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/** True when `err` is a {@link TaskControlError}, optionally with the given code. */
export function isTaskControlError(err: unknown, code?: ErrorCode): err is TaskControlError {
  return err instanceof TaskControlError && (code === undefined || err.code === code);
}

import { isTaskControlError, type ValidationIssue } from '../errors.js';

/** Codes the HTTP layer adds to the library's own (`VALIDATION`, `NOT_FOUND`, ...). */
export type HttpOnlyCode =
  | 'UNAUTHENTICATED'
  | 'METHOD_NOT_ALLOWED'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'PAYLOAD_TOO_LARGE'
  | 'NOT_IMPLEMENTED'
  | 'INTERNAL';

/** The body of every error response: `{ code, message, issues? }`. */
export interface ErrorBody {
  /** Machine-readable error code. */
  code: string;
  /** Human-readable message. */
  message: string;
  /** What was wrong with the input, for validation errors. */
  issues?: ValidationIssue[];
}

/** An error with the HTTP status it answers with. */
export class HttpError extends Error {
  constructor(
    /** The HTTP status code. */
    readonly status: number,
    /** Machine-readable error code. */
    readonly code: string,
    message: string,
    /** What was wrong with the input, for validation errors. */
    readonly issues?: ValidationIssue[],
    /** Extra response headers. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Status per library error code. */
const STATUS: Record<string, number> = {
  VALIDATION: 400,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  ILLEGAL_TRANSITION: 409,
  BACKFILL_CONFLICT: 409,
  GUARD_REJECTED: 409,
  SCOPE_HELD: 409,
  UNAVAILABLE: 503,
  TIMEOUT: 504,
};

/** Map anything thrown to a status and an error body; unknown errors become a bare 500. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (isTaskControlError(err)) return new HttpError(STATUS[err.code] ?? 500, err.code, err.message, err.issues);
  return new HttpError(500, 'INTERNAL', 'internal error');
}

/** A VALIDATION error about one field of the request. */
export function invalid(path: (string | number)[], message: string): HttpError {
  return new HttpError(400, 'VALIDATION', `${path.join('.')}: ${message}`, [{ path, message, code: 'custom' }]);
}

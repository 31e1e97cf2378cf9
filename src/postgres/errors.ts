import { TaskControlError } from '../errors.js';

// Node socket errors that mean the server cannot be reached (or the connection broke).
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
]);

// SQLSTATEs that mean "not reachable now": connection exceptions (class 08), the server
// shutting down or terminating the session (57P01-57P03), too many connections, a database
// that does not exist, and a login that is refused.
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300', '3D000', '28000', '28P01']);

// What pg and pg-pool say when a connection dies under them or cannot be made in time.
const CONNECTION_MESSAGES = [
  'Connection terminated',
  'connection timeout',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'Client was closed and is not queryable',
  'Cannot use a pool after calling end on the pool',
  'terminating connection',
];

/** True when `err` says the database could not be reached or the connection was lost. */
export function isConnectionError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; message?: unknown; errors?: unknown };
  if (typeof e.code === 'string') {
    if (SOCKET_CODES.has(e.code) || UNAVAILABLE_STATES.has(e.code) || e.code.startsWith('08')) return true;
  }
  // AggregateError from a host that resolves to several addresses
  if (Array.isArray(e.errors) && e.errors.some(isConnectionError)) return true;
  const message = typeof e.message === 'string' ? e.message : '';
  return CONNECTION_MESSAGES.some((m) => message.includes(m));
}

/** The UNAVAILABLE error for a connection failure, naming the server and the cause. */
export function unavailable(where: string, err: unknown, details: Record<string, unknown> = {}): TaskControlError {
  const cause = err instanceof Error ? err.message || (err as { code?: string }).code || err.name : String(err);
  return new TaskControlError('UNAVAILABLE', `PostgreSQL at ${where} is unavailable: ${cause}`, {
    cause: err,
    details: { ...details, ...(typeof (err as { code?: unknown })?.code === 'string' ? { code: (err as { code: string }).code } : {}) },
  });
}

/** The error a failed batch of a commit group reports, from its SQLSTATE. */
export function batchError(state: string, message: string, detail: string | null, constraint: string | null): Error {
  if (state === 'TK409' || state === 'TK000') {
    return new TaskControlError('CONFLICT', message, { details: { id: detail ?? undefined } });
  }
  if (state === '23505') {
    const what =
      constraint === 'instances_task_date'
        ? 'an instance for this (taskId, logicalDate) already exists'
        : constraint === 'commands_idempotency_key_key'
          ? 'this idempotency key was already used'
          : 'a record with this id already exists';
    return new TaskControlError('CONFLICT', `${what}${detail ? ` (${detail})` : ''}`, { details: { constraint } });
  }
  if (state === '40P01' || state === '40001') {
    return new TaskControlError('CONFLICT', `lost a race with a concurrent commit: ${message}`);
  }
  if (state.startsWith('22') || state === '23502') {
    return new TaskControlError('VALIDATION', `the store refused a value: ${message}${detail ? ` (${detail})` : ''}`, {
      issues: [{ path: ['batch'], message, code: state }],
    });
  }
  return Object.assign(new Error(`PostgreSQL refused the commit: ${message}`), { code: state });
}

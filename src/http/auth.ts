import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { TaskControlError } from '../errors.js';

/** Who is calling: the actor's name, or `undefined` for "not authenticated" (401). */
export type Authenticate = (req: IncomingMessage) => string | undefined | Promise<string | undefined>;

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/**
 * An {@link Authenticate} function for static API keys: `Authorization: Bearer <key>` names the
 * actor `keys[key]`. Keys are compared in constant time (every key is compared, as SHA-256
 * digests of equal length), so response times tell nothing about how much of a key was right.
 *
 * ```ts
 * createControlHandler(controller, { authenticate: apiKeys({ 'k-ops-123': 'ops-bot' }) });
 * ```
 */
export function apiKeys(keys: Record<string, string>): Authenticate {
  const entries = Object.entries(keys ?? {});
  if (entries.length === 0) throw new TaskControlError('VALIDATION', 'apiKeys: give at least one key', { issues: [{ path: ['keys'], message: 'must name at least one key' }] });
  for (const [key, actor] of entries) {
    if (key.length === 0 || /\s/.test(key)) {
      throw new TaskControlError('VALIDATION', 'apiKeys: a key must be non-empty and without spaces', { issues: [{ path: ['keys'], message: 'empty key or key with spaces' }] });
    }
    if (typeof actor !== 'string' || actor.length === 0) {
      throw new TaskControlError('VALIDATION', 'apiKeys: every key must name an actor', { issues: [{ path: ['keys'], message: 'actor must be a non-empty string' }] });
    }
  }
  const table = entries.map(([key, actor]) => ({ hash: digest(key), actor }));
  return (req) => {
    const header = req.headers.authorization;
    if (typeof header !== 'string') return undefined;
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!match) return undefined;
    const given = digest(match[1]);
    let found: string | undefined;
    // no early exit: every key is compared whatever the outcome
    for (const { hash, actor } of table) if (timingSafeEqual(given, hash) && found === undefined) found = actor;
    return found;
  };
}

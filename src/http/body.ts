import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.js';

/** Bodies larger than this are refused with 413. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** True when the request says its body is JSON (`application/json`, any parameters). */
export function isJson(req: IncomingMessage): boolean {
  const type = req.headers['content-type'];
  return typeof type === 'string' && type.split(';')[0].trim().toLowerCase() === 'application/json';
}

/**
 * Read and parse a JSON request body of at most `limit` bytes. An empty body is `{}`.
 * A body already read by a framework's body parser (Express's `express.json()`) is used as is.
 */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  // body-parser sets `req.body = {}` even when it skips a request, so only a stream that was
  // read to its end (or body-parser's own `_body` flag) says the body is really there
  const { body: parsed, _body: parsedByBodyParser } = req as IncomingMessage & { body?: unknown; _body?: boolean };
  if (parsed !== undefined && (req.readableEnded || parsedByBodyParser === true)) {
    if (Buffer.isBuffer(parsed) || typeof parsed === 'string') return parseJson(String(parsed));
    return parsed;
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        // keep draining (and dropping) what the client still sends, so it reads our answer
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve();
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
  return parseJson(Buffer.concat(chunks).toString('utf8'));
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'VALIDATION', 'body: not valid JSON', [{ path: ['body'], message: 'not valid JSON', code: 'invalid_json' }]);
  }
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, 'PAYLOAD_TOO_LARGE', `body: larger than ${limit} bytes`, undefined, { Connection: 'close' });
}

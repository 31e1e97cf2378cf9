// Helpers for the HTTP tests (not a test file itself): a real server on 127.0.0.1, requests
// with a key, and an SSE reader over fetch streaming (what the console does).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';
import type { TaskController } from '../../src/index.js';
import { apiKeys, createControlHandler, type ControlHandler, type ControlHandlerOptions } from '../../src/http/index.js';

export const KEYS = { 'k-ops-123': 'ops-bot', 'k-alice-456': 'alice', 'k-viewer-789': 'viewer' };
export const OPS = 'k-ops-123';
export const ALICE = 'k-alice-456';

export interface Served {
  url: string;
  base: string;
  handler: ControlHandler;
  server: Server;
  call(method: string, path: string, init?: { key?: string | null; body?: unknown; headers?: Record<string, string>; raw?: string }): Promise<{ status: number; headers: Headers; body: unknown; text: string }>;
}

const open: Server[] = [];
const handlers: ControlHandler[] = [];
afterEach(async () => {
  for (const h of handlers.splice(0)) h.close();
  await Promise.all(
    open.splice(0).map(
      (s) =>
        new Promise<void>((resolve) => {
          s.closeAllConnections();
          s.close(() => resolve());
        }),
    ),
  );
});

/** Serve `controller` on a fresh port; `wrap` lets a test put the handler behind middleware. */
export async function serve(
  controller: TaskController,
  options: Partial<ControlHandlerOptions> = {},
  wrap?: (handler: ControlHandler) => (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Served> {
  const handler = createControlHandler(controller, { authenticate: apiKeys(KEYS), ...options });
  const server = createServer(wrap ? wrap(handler) : handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  open.push(server);
  handlers.push(handler);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const base = `${url}${handler.basePath}`;
  return {
    url,
    base,
    handler,
    server,
    call: async (method, path, init = {}) => {
      const headers: Record<string, string> = { ...(init.headers ?? {}) };
      const key = init.key === undefined ? OPS : init.key;
      if (key) headers.authorization = `Bearer ${key}`;
      let body: string | undefined = init.raw;
      if (init.body !== undefined) {
        body = JSON.stringify(init.body);
        if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
      }
      const res = await fetch(`${base}${path}`, { method, headers, body });
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: res.status, headers: res.headers, body: parsed, text };
    },
  };
}

export interface SseEvent {
  id?: string;
  event: string;
  data: unknown;
}

/** Read `GET /api/events` as the console does (fetch streaming, Bearer header). */
export async function events(served: Served, key = OPS, query = '') {
  const ctrl = new AbortController();
  const res = await fetch(`${served.base}/api/events${query}`, { headers: { authorization: `Bearer ${key}` }, signal: ctrl.signal });
  const received: SseEvent[] = [];
  const comments: string[] = [];
  const waiters = new Set<() => void>();
  let ended = false;
  void (async () => {
    if (!res.body) return;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const e: SseEvent = { event: 'message', data: undefined };
          const data: string[] = [];
          for (const line of frame.split('\n')) {
            if (line.startsWith(':')) comments.push(line);
            else if (line.startsWith('event: ')) e.event = line.slice(7);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
            else if (line.startsWith('id: ')) e.id = line.slice(4);
          }
          if (data.length) {
            e.data = JSON.parse(data.join('\n'));
            received.push(e);
          }
          for (const w of waiters) w();
        }
      }
    } catch {
      // aborted
    }
    ended = true;
    for (const w of waiters) w();
  })();
  const until = async (check: () => boolean, what: string, timeoutMs = 3000) => {
    if (check()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`timed out waiting for ${what}; got ${received.map((e) => e.event).join(', ')}`));
      }, timeoutMs);
      const w = () => {
        if (check()) {
          clearTimeout(timer);
          waiters.delete(w);
          resolve();
        }
      };
      waiters.add(w);
    });
  };
  return {
    res,
    received,
    comments,
    ended: () => ended,
    /** Wait for an event of `type` matching `match`, and return it. */
    next: async <T = Record<string, unknown>>(type: string, match: (data: T) => boolean = () => true, timeoutMs = 3000): Promise<T> => {
      let found: SseEvent | undefined;
      await until(() => (found = received.find((e) => e.event === type && match(e.data as T))) !== undefined, `event ${type}`, timeoutMs);
      return found!.data as T;
    },
    until,
    close: () => ctrl.abort(),
  };
}

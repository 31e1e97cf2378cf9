// docs/console.md, "Mounting" and "Authentication": the control handler as middleware in front of
// a service's own routes, authenticated by the service's own login sessions.
// Runnable: npx tsx examples/http-middleware.ts (serves on a free port, makes a few requests, exits)
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import assert from 'node:assert/strict';
import { FunctionExecutor, TaskController } from '../src/index.js';
import { createControlHandler } from '../src/http/index.js';

const controller = new TaskController({
  executor: new FunctionExecutor({
    'nightly-report': async (ctx) => {
      for (let page = (ctx.checkpoint as number | undefined) ?? 0; page < 600; page++) {
        await ctx.pausePoint(page);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
  }),
});
controller.define({ id: 'nightly-report', group: 'reports' });
await controller.start();
const report = await controller.submit('nightly-report', { logicalDate: '2024-05-01T00:00:00Z' });

// The service's own login: a session id in a cookie. A stand-in for your session store.
const sessionStore = new Map<string, { userName: string }>();
const sessions = {
  async fromCookie(cookie: string | undefined): Promise<{ userName: string } | undefined> {
    const id = /(?:^|;\s*)sid=([^;]+)/.exec(cookie ?? '')?.[1];
    return id === undefined ? undefined : sessionStore.get(id);
  },
};

// The service's own routes: any (req, res) listener (an Express app is one too).
const app = (req: IncomingMessage, res: ServerResponse) => {
  if (req.method === 'POST' && req.url === '/login') {
    const sid = randomUUID();
    sessionStore.set(sid, { userName: 'alice' }); // after checking a password, say
    res.writeHead(204, { 'Set-Cookie': `sid=${sid}; HttpOnly; SameSite=Strict; Path=/` }).end();
    return;
  }
  res.writeHead(200, { 'Content-Type': 'text/plain' }).end(`the service's own page: ${req.url}\n`);
};

const handler = createControlHandler(controller, {
  authenticate: async (req) => (await sessions.fromCookie(req.headers.cookie))?.userName, // your session lookup
});
const server = http.createServer((req, res) => handler(req, res, () => app(req, res))); // outside /taskctl: your own routes
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
console.log(`serving on ${base}/ (the console: ${base}/taskctl/)`);

try {
  // outside the base path: the service's routes
  const page = await fetch(`${base}/orders`);
  console.log('GET /orders ->', page.status, (await page.text()).trim());
  assert.equal(page.status, 200);

  // under it: taskctl, behind the service's login
  const anonymous = await fetch(`${base}/taskctl/api/session`);
  console.log('GET /taskctl/api/session without a session ->', anonymous.status, ((await anonymous.json()) as { code: string }).code);
  assert.equal(anonymous.status, 401);

  const login = await fetch(`${base}/login`, { method: 'POST' });
  const cookie = login.headers.get('set-cookie')!.split(';')[0];
  const session = await fetch(`${base}/taskctl/api/session`, { headers: { cookie } });
  const { actor } = (await session.json()) as { actor: string };
  console.log('GET /taskctl/api/session signed in ->', session.status, actor);
  assert.equal(actor, 'alice');

  // a command as the signed-in user: the actor comes from the session, never from the body
  const pause = await fetch(`${base}/taskctl/api/commands/pause`, {
    method: 'POST',
    headers: { cookie, 'Content-Type': 'application/json' },
    body: JSON.stringify({ target: { instanceId: report.id }, reason: 'checking the numbers' }),
  });
  console.log('POST /taskctl/api/commands/pause ->', pause.status);
  assert.equal(pause.status, 200);
  const paused = await controller.waitFor(report.id);
  const audit = await controller.audit({ instanceId: report.id, kind: 'command' });
  console.log(`nightly-report ${paused.state}; audited as ${audit.map((e) => `${e.action} by ${e.actor}`).join(', ')}`);
  assert.equal(paused.state, 'paused');
  assert.equal(audit[0]?.actor, 'alice');
} finally {
  handler.close(); // ends open event streams, before server.close()
  server.close();
  await controller.shutdown();
}

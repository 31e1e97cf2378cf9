// ci: serves
// The control API and the operator console mounted on a plain Node HTTP server (docs/console.md).
// npx tsx examples/http-server.ts, then open http://127.0.0.1:8080/taskctl/ with the key below.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { FunctionExecutor, TaskController } from '../src/index.js';
import { apiKeys, createControlHandler } from '../src/http/index.js';

const controller = new TaskController({
  executor: new FunctionExecutor({
    'nightly-report': async (ctx) => {
      for (let page = (ctx.checkpoint as number | undefined) ?? 0; page < 600; page++) {
        await ctx.pausePoint(page); // a safe place to pause
        await new Promise((resolve) => setTimeout(resolve, 100));
        ctx.progress(page + 1, 600);
      }
    },
  }),
});
controller.define({ id: 'nightly-report', group: 'reports' });
await controller.start();
await controller.submit('nightly-report', { logicalDate: '2024-05-01T00:00:00Z' });

const handler = createControlHandler(controller, {
  basePath: '/taskctl', // the default
  authenticate: apiKeys({ 'k-ops-123': 'ops-bot' }), // Authorization: Bearer k-ops-123 is the actor ops-bot
});
const server = http.createServer(handler).listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => {
  console.log(`console: http://127.0.0.1:${(server.address() as AddressInfo).port}/taskctl/ (API key k-ops-123)`);
});

process.on('SIGINT', async () => {
  handler.close(); // ends the event streams
  server.close();
  await controller.shutdown();
  process.exit(0);
});

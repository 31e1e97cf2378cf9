// One controller process for bench/postgres.ts: `node --import tsx bench/postgres-worker.ts`,
// driven over the IPC channel. Not a public API.
import { FunctionExecutor, TaskController } from '../src/index.js';
import { PostgresStateStore } from '../src/postgres/index.js';

const url = process.env.TASKCTL_PG_URL!;
const schema = process.env.TASKCTL_PG_SCHEMA!;
const send = (msg: object) => process.send!(msg);
const epochNow = () => performance.timeOrigin + performance.now();

const store = new PostgresStateStore({ connectionString: url, schema });
const controller = new TaskController({
  store,
  concurrency: 64,
  executor: new FunctionExecutor({
    noop: async () => undefined,
    ticker: async (ctx) => {
      for (let i = 0; ; i++) {
        await ctx.pausePoint({ i });
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    },
  }),
});
controller.define({ id: 'noop' });
controller.define({ id: 'ticker' });
controller.on('error', (e) => send({ type: 'error', where: e.where, message: String((e.error as Error)?.message ?? e.error) }));
// cross-process pause latency: when this process saw the instance reach `paused`
controller.on('transition', (e) => {
  if (e.taskId === 'ticker') send({ type: 'ticker', to: e.to, instanceId: e.instanceId, at: epochNow() });
});
await controller.start();

process.on('message', (raw) => {
  const msg = raw as { type: string; n?: number };
  void (async () => {
    if (msg.type === 'submit') {
      for (let i = 0; i < msg.n!; i += 256) {
        const wave: Promise<unknown>[] = [];
        for (let j = i; j < Math.min(msg.n!, i + 256); j++) wave.push(controller.submit('noop'));
        await Promise.all(wave);
      }
      send({ type: 'submitted' });
    } else if (msg.type === 'ticker') {
      const instance = await controller.submit('ticker');
      send({ type: 'ticker-submitted', instanceId: instance.id });
    } else if (msg.type === 'exit') {
      await controller.shutdown({ graceMs: 0 });
      await controller.close();
      await store.close();
      process.exit(0);
    }
  })().catch((err) => {
    send({ type: 'error', where: msg.type, message: String(err?.message ?? err) });
  });
});
send({ type: 'ready' });

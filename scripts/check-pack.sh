#!/usr/bin/env bash
# Pack the package, install the tarball into a scratch consumer project, and load it with
# both `import` and `require`, as a user's project would.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$root"
tarball=$(npm pack --silent --pack-destination "$scratch" | tail -n 1)
cd "$scratch"
npm init -y >/dev/null
# the optional peers a consumer installs when it uses taskctl/otel, taskctl/bullmq, taskctl/postgres
npm install --no-audit --no-fund --silent "./$tarball" @opentelemetry/api bullmq pg >/dev/null
cat > esm.mjs <<'JS'
import { TaskController, MemoryStateStore, FunctionExecutor, BackfillPlanner, TaskControlError, TRANSITIONS } from 'taskctl';
import { storeContract, createTestController } from 'taskctl/testing';
import { createControlHandler, apiKeys } from 'taskctl/http';
import { instrument } from 'taskctl/otel';
import { bullmqProcessor } from 'taskctl/bullmq';
import { PostgresStateStore } from 'taskctl/postgres';
if (typeof PostgresStateStore !== 'function') throw new Error('ESM: missing taskctl/postgres');
for (const [name, value] of Object.entries({ createControlHandler, apiKeys, instrument, bullmqProcessor })) {
  if (typeof value !== 'function') throw new Error(`ESM: missing subpath export ${name}`);
}
for (const [name, value] of Object.entries({ TaskController, MemoryStateStore, FunctionExecutor, BackfillPlanner, TaskControlError, TRANSITIONS, storeContract, createTestController })) {
  if (!value) throw new Error(`ESM: missing export ${name}`);
}
const c = new TaskController({ executor: new FunctionExecutor({ t: async () => 42 }) });
c.define({ id: 't' });
await c.start();
const i = await c.submit('t');
const done = await c.waitFor(i.id);
if (done.state !== 'succeeded' || done.result !== 42) throw new Error(`ESM: unexpected ${done.state}`);
await c.shutdown();
console.log('ESM import works:', done.state);
JS
cat > cjs.cjs <<'JS'
const { TaskController, FunctionExecutor, TaskControlError, TRANSITIONS } = require('taskctl');
const { FakeClock } = require('taskctl/testing');
const { createControlHandler } = require('taskctl/http');
if (typeof createControlHandler !== 'function') throw new Error('CJS: taskctl/http');
if (!TaskController || !TRANSITIONS.length || !FakeClock) throw new Error('CJS: missing exports');
(async () => {
  const c = new TaskController({ executor: new FunctionExecutor({ t: async () => 'cjs' }) });
  c.define({ id: 't' });
  await c.start();
  const i = await c.submit('t');
  const done = await c.waitFor(i.id);
  await c.shutdown();
  try { await c.pause({ instanceId: '' }); } catch (e) { if (!(e instanceof TaskControlError)) throw e; }
  console.log('CJS require works:', done.state);
})().catch((e) => { console.error(e); process.exit(1); });
JS
node esm.mjs
node cjs.cjs
npx --no-install taskctl --help | head -n 1
echo 'the taskctl command runs from the installed package'
cat > types.ts <<'TS'
import { TaskController, type Instance, type ControlResult } from 'taskctl';
const c = new TaskController();
const p: Promise<ControlResult> = c.pause({ taskId: 'x' }, { mode: 'force' });
const i: Promise<Instance> = c.submit('x');
void p; void i;
TS
if [ -x "$root/node_modules/.bin/tsc" ]; then
  "$root/node_modules/.bin/tsc" --noEmit --strict --module nodenext --moduleResolution nodenext --target es2022 --skipLibCheck types.ts
  echo 'types resolve for a TypeScript consumer'
fi

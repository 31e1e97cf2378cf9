// ci: serves
// npm run console: a demo service with the operator console on http://127.0.0.1:$PORT/taskctl/
// (PORT defaults to 8080). Jobs run, a backfill is in progress; Ctrl-C stops it.
import { startDemo } from './console-demo.js';

const demo = await startDemo({ port: Number(process.env.PORT ?? 8080) });
const [opsKey, aliceKey] = Object.keys(demo.keys);
console.log(`taskctl operator console: ${demo.url}`);
console.log(`  API key for ops-bot: ${opsKey}`);
console.log(`  API key for alice (a second person, to approve): ${aliceKey}`);
console.log(`  e.g. curl -H 'Authorization: Bearer ${opsKey}' ${demo.url}api/instances?state=running`);
console.log('Ctrl-C to stop.');

let stopping = false;
const stop = async () => {
  if (stopping) process.exit(1);
  stopping = true;
  console.log('\nstopping…');
  await demo.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

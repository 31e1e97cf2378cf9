// The README's per-operation samples, runnable: npx tsx examples/readme-operations.ts
import { createTestController } from '../src/testing/index.js';
import { formatTimeline, rbac, TaskController, type AuthRequest } from '../src/index.js';

const { controller, advance } = await createTestController({
  handlers: {
    import: async (ctx) => {
      for (let step = (ctx.checkpoint as number | undefined) ?? 0; step < 5; step++) await ctx.pausePoint(step);
      return 'imported';
    },
    load: async () => 'loaded',
  },
});
controller.define({ id: 'import', group: 'etl', maxAttempts: 3 });
controller.define({ id: 'load', group: 'etl', dependsOn: ['import'] });
const day = '2024-05-01T00:00:00.000Z';
const { id: instanceId } = await controller.submit('import', { logicalDate: day });
await controller.submit('load', { logicalDate: day });

// --- pause
await controller.pause({ instanceId }, { reason: 'investigating' }); // graceful
await controller.pause({ instanceId }, { mode: 'force' }); // abort now
await controller.pause({ group: 'etl' }, { actor: 'ops', reason: 'warehouse upgrade' }); // holds the scope

// --- resume
await controller.resume({ group: 'etl' }, { actor: 'ops' }); // releases the held scope
await controller.pause({ instanceId });
await controller.resume({ instanceId }, { strategy: 'restart', params: { batch: 50 } });
await controller.pause({ instanceId });
await controller.resume({ instanceId }); // continue from the checkpoint

// --- stop
await controller.stop({ instanceId }, { graceMs: 5_000, reason: 'wrong input' });
await controller.stop({ taskId: 'import' }, { force: true });

// --- rerun
await controller.rerun({ instanceId }, { params: { region: 'eu' } }); // attempt + 1
await advance(10);
await controller.rerun({ taskId: 'import' }, { onlyFailed: true }); // only failed/stopped ones
await controller.rerun({ instanceId }, { downstream: true }); // and dependants, same date, in order
await advance(10);

// --- audit and events
controller.on('transition', (e) => console.log(e.instanceId, e.from, '->', e.to, e.actor));
controller.on('command', (r) => console.log(r.action, r.applied.length, 'applied'));
const trail = await controller.audit({ instanceId });
console.log(formatTimeline(trail));

// --- permissions and guards
const guarded = new TaskController({ authorize: ({ action, actor }: AuthRequest) => actor === 'ops' || action === 'pause' });
guarded.addGuard({
  name: 'no-rerun-in-business-hours',
  events: ['rerun'],
  check: ({ now }) => now.getUTCHours() < 8 || now.getUTCHours() >= 18 || 'reruns wait until 18:00 UTC',
});
const governed = new TaskController({
  authorize: rbac({
    roles: { operator: [{ actions: ['pause', 'resume'], groups: ['etl'] }], admin: [{ actions: ['*'] }] },
    actors: { alice: ['operator'], bob: ['admin'] },
  }),
  approvals: { rules: [{ actions: ['stop'], groups: ['finance'] }] },
});
void guarded;
void governed;
await controller.shutdown();

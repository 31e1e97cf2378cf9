import { describe, expect, it } from 'vitest';
import { FunctionExecutor, TaskController, TaskControlError } from '../../src/index.js';

describe('checkpoints and idempotency keys', () => {
  it('a forced pause keeps the checkpoint the executor saved last, and resume hands it back', async () => {
    const seen: unknown[] = [];
    const controller = new TaskController({
      executor: new FunctionExecutor({
        copy: async (ctx) => {
          seen.push(ctx.checkpoint);
          for (let row = (ctx.checkpoint as number | undefined) ?? 0; row < 1000; row++) {
            ctx.saveCheckpoint(row); // no pause points: only a forced pause can stop it
            await new Promise((resolve) => setTimeout(resolve, 1));
            ctx.signal.throwIfAborted();
          }
          return 'done';
        },
      }),
    });
    controller.define({ id: 'copy' });
    await controller.start();
    const i = await controller.submit('copy');
    await new Promise((resolve) => setTimeout(resolve, 30));
    await controller.pause({ instanceId: i.id }, { mode: 'force' });
    const paused = await controller.waitFor(i.id);
    expect(paused.state).toBe('paused');
    expect(typeof paused.checkpoint).toBe('number');
    expect(paused.checkpoint as number).toBeGreaterThan(0);
    await controller.resume({ instanceId: i.id });
    await controller.waitFor(i.id, { states: ['running'] });
    await controller.stop({ instanceId: i.id }, { force: true });
    expect(seen).toEqual([undefined, paused.checkpoint]);
    await controller.shutdown({ graceMs: 0 });
  });

  it('an idempotency key reused for a different command is a CONFLICT, and changes nothing', async () => {
    const controller = new TaskController();
    controller.define({ id: 't' });
    const a = await controller.submit('t');
    const b = await controller.submit('t');
    const first = await controller.pause({ instanceId: a.id }, { idempotencyKey: 'k-1' });
    expect(await controller.pause({ instanceId: a.id }, { idempotencyKey: 'k-1' })).toEqual(first);
    const err = await controller.pause({ instanceId: b.id }, { idempotencyKey: 'k-1' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskControlError);
    expect((err as TaskControlError).code).toBe('CONFLICT');
    expect((await controller.get(b.id))!.state).toBe('queued');
    const stopErr = await controller.stop({ instanceId: a.id }, { idempotencyKey: 'k-1' }).catch((e: unknown) => e);
    expect((stopErr as TaskControlError).code).toBe('CONFLICT');
    expect((await controller.get(a.id))!.state).toBe('paused');
  });
});

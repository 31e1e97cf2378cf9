import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryStateStore } from '../../src/index.js';
import { INSTANCE_STATES, type Instance, type InstanceState } from '../../src/types.js';

const at = '2024-01-01T00:00:00.000Z';

describe('MemoryStateStore state lists', () => {
  it('after any sequence of moves, lists, counts and queued() agree with a plain model, oldest arrival first', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(59), fc.constantFrom(...INSTANCE_STATES)), { minLength: 1, maxLength: 3000, size: 'max' }),
        async (moves) => {
          const store = new MemoryStateStore();
          const current = new Map<string, Instance>();
          // the model: per state, ids in the order they entered it
          const entered = new Map<InstanceState, string[]>(INSTANCE_STATES.map((s) => [s, []]));
          // ids grow in creation order, as ULIDs do
          const ids = new Map<number, string>();
          for (const [n, state] of moves) {
            if (!ids.has(n)) ids.set(n, `01J${String(ids.size).padStart(23, '0')}`);
            const id = ids.get(n)!;
            const prev = current.get(id);
            if (prev?.state === state) continue;
            const next: Instance = prev
              ? { ...prev, state, version: prev.version + 1 }
              : { id, taskId: 't', params: {}, state, attempt: 1, version: 1, createdAt: at, updatedAt: at };
            await store.commit({ instances: [{ next, expectedVersion: prev?.version ?? 0 }] });
            current.set(id, next);
            if (prev) entered.set(prev.state, entered.get(prev.state)!.filter((x) => x !== id));
            entered.get(state)!.push(id);
          }
          const counts = await store.countInstances({});
          for (const state of INSTANCE_STATES) {
            const expected = entered.get(state)!;
            expect(counts[state]).toBe(expected.length);
            const listed = (await store.listInstances({ state, limit: 1000 })).items.map((i) => i.id);
            expect(listed).toEqual([...expected].sort());
          }
          expect((await store.queued({ limit: 1000 })).map((i) => i.id)).toEqual(entered.get('queued'));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('an instance queued for long keeps its place while thousands pass through behind it', async () => {
    const store = new MemoryStateStore();
    const mk = (n: number): Instance => ({ id: `01J${String(n).padStart(23, '0')}`, taskId: 't', params: {}, state: 'queued', attempt: 1, version: 1, createdAt: at, updatedAt: at });
    const first = mk(0);
    await store.commit({ instances: [{ next: first, expectedVersion: 0 }] });
    for (let n = 1; n <= 3000; n++) {
      const i = mk(n);
      await store.commit({ instances: [{ next: i, expectedVersion: 0 }] });
      // every third one stays queued; the others run and finish
      if (n % 3 !== 0) {
        await store.commit({ instances: [{ next: { ...i, state: 'running', version: 2 }, expectedVersion: 1 }] });
        await store.commit({ instances: [{ next: { ...i, state: 'succeeded', version: 3 }, expectedVersion: 2 }] });
      }
    }
    const queued = (await store.queued({ limit: 5000 })).map((i) => i.id);
    expect(queued).toEqual([first.id, ...Array.from({ length: 1000 }, (_, k) => mk(3 * (k + 1)).id)]);
    expect((await store.listInstances({ state: 'running', limit: 10 })).items).toEqual([]);
    expect((await store.countInstances({})).succeeded).toBe(2000);
  });
});

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

describe('MemoryStateStore audit columns', () => {
  it('gives back every entry as it was committed, plain transitions and all others alike', async () => {
    const store = new MemoryStateStore();
    const i: Instance = { id: '01JAAAAAAAAAAAAAAAAAAAAAAA', taskId: 't', params: {}, state: 'queued', attempt: 1, version: 1, createdAt: at, updatedAt: at };
    const plain = { id: '01JAAAAAAAAAAAAAAAAAAAAAAB', at, actor: 'alice', kind: 'transition' as const, instanceId: i.id, taskId: 't', from: 'none' as const, to: 'queued' as const, event: 'submit', attempt: 1 };
    await store.commit({ instances: [{ next: i, expectedVersion: 0 }], audit: [plain] });
    const next = { ...i, state: 'paused' as const, version: 2 };
    const withCommand = { ...plain, id: '01JAAAAAAAAAAAAAAAAAAAAAAC', from: 'queued' as const, to: 'paused' as const, event: 'pause', commandId: 'c1', action: 'pause', reason: 'why' };
    const command = { id: '01JAAAAAAAAAAAAAAAAAAAAAAD', at, actor: 'bob', kind: 'command' as const, action: 'pause', commandId: 'c1', instanceIds: [i.id], taskIds: ['t'], result: { applied: [] } };
    await store.commit({ instances: [{ next, expectedVersion: 1 }], audit: [withCommand, command] });
    const third = { ...plain, id: '01JAAAAAAAAAAAAAAAAAAAAAAE', at: '2024-01-01T00:00:01.000Z', actor: 'system:executor', from: 'paused' as const, to: 'queued' as const, event: 'resume', attempt: 2 };
    await store.commit({ instances: [{ next: { ...next, state: 'queued', version: 3, attempt: 2 }, expectedVersion: 2 }], audit: [third] });
    const all = await store.queryAudit({});
    expect(all).toStrictEqual([plain, withCommand, command, third]);
    // the same field order as committed, so that JSON looks alike too
    expect(all.map((e) => JSON.stringify(e))).toEqual([plain, withCommand, command, third].map((e) => JSON.stringify(e)));
    expect(await store.queryAudit({ instanceId: i.id })).toStrictEqual([plain, withCommand, command, third]);
    expect(await store.queryAudit({ afterId: withCommand.id })).toStrictEqual([command, third]);
    expect(await store.queryAudit({ since: '2024-01-01T00:00:01.000Z' })).toStrictEqual([third]);
    expect(await store.queryAudit({ actor: 'alice', limit: 1 })).toStrictEqual([withCommand]);
  });

  it('keeps tens of thousands of entries, across chunks of its columns', async () => {
    const store = new MemoryStateStore();
    const ids: string[] = [];
    for (let n = 0; n < 4000; n++) {
      const id = `01J${String(n).padStart(23, '0')}`;
      ids.push(id);
      const inst: Instance = { id, taskId: `t${n % 7}`, params: {}, state: 'queued', attempt: 1, version: 1, createdAt: at, updatedAt: at };
      const audit = Array.from({ length: 5 }, (_, k) => ({ id: `${id.slice(0, 20)}${String(k).padStart(6, '0')}`, at: `2024-01-01T00:00:0${k}.000Z`, actor: `a${k}`, kind: 'transition' as const, instanceId: id, taskId: inst.taskId, from: 'none' as const, to: 'queued' as const, event: 'submit', attempt: k + 1 }));
      await store.commit({ instances: [{ next: inst, expectedVersion: 0 }], audit: audit.slice(0, 1) });
      await store.commit({ audit: audit.slice(1) });
    }
    expect((await store.queryAudit({})).length).toBe(20000);
    const of = await store.queryAudit({ instanceId: ids[3999] });
    expect(of.map((e) => [e.taskId, e.actor, e.attempt, e.at])).toEqual(
      Array.from({ length: 5 }, (_, k) => [`t${3999 % 7}`, `a${k}`, k + 1, `2024-01-01T00:00:0${k}.000Z`]),
    );
  });
});

import assert from 'node:assert/strict';
import { monotonicFactory } from 'ulid';
import { isTaskControlError } from '../errors.js';
import type { BackfillRecord, CommandRecord, StateStore, StoreNotice } from '../store/state-store.js';
import type { AuditEntry, Instance, InstanceState } from '../types.js';

/** A test-registering function such as vitest's or node:test's `it`. */
export type TestFn = (name: string, fn: () => Promise<void> | void) => unknown;

/** The test functions the suite registers its cases with: vitest's, node:test's, or jest's. */
export interface ContractRunner {
  /** Declares a suite, like `describe`. */
  describe: (name: string, fn: () => void) => unknown;
  /** Declares a test case. */
  it: TestFn;
  /** Registers a hook run after each case. */
  afterEach?: (fn: () => Promise<void> | void) => unknown;
}

/** Options of {@link storeContract}. */
export interface ContractOptions {
  /** Called after each case with the store it made, to close it and drop its data. */
  teardown?: (store: StateStore) => Promise<void> | void;
}

const newId = monotonicFactory();

function instance(over: Partial<Instance> = {}): Instance {
  const at = '2024-01-01T00:00:00.000Z';
  return { id: newId(), taskId: 't', params: {}, state: 'queued', attempt: 1, version: 1, createdAt: at, updatedAt: at, ...over };
}

function entry(over: Partial<AuditEntry> = {}): AuditEntry {
  return { id: newId(), at: '2024-01-01T00:00:00.000Z', actor: 'alice', kind: 'transition', ...over };
}

async function expectConflict(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.ok(isTaskControlError(err, 'CONFLICT'), `expected a CONFLICT TaskControlError, got ${String(err)}`);
    return;
  }
  assert.fail('expected the commit to fail with CONFLICT');
}

/**
 * The StateStore contract: what every store must do for taskctl to be correct on it.
 * Call it from a test file with a factory that makes a fresh, empty store:
 *
 * ```ts
 * import { describe, it } from 'vitest';           // or from 'node:test'
 * import { storeContract } from 'taskctl/testing';
 * storeContract('my store', () => new MyStore(), { describe, it });
 * ```
 */
export function storeContract(
  name: string,
  factory: () => StateStore | Promise<StateStore>,
  runner: ContractRunner,
  options: ContractOptions = {},
): void {
  const { describe, it } = runner;
  const open: StateStore[] = [];
  const make = async () => {
    const store = await factory();
    open.push(store);
    return store;
  };
  const test = (title: string, fn: (store: StateStore) => Promise<void>) =>
    it(title, async () => {
      const store = await make();
      try {
        await fn(store);
      } finally {
        open.splice(open.indexOf(store), 1);
        if (options.teardown) await options.teardown(store);
        else await store.close?.();
      }
    });

  describe(`StateStore contract: ${name}`, () => {
    test('a committed instance can be read back by id and by (taskId, logicalDate)', async (store) => {
      const i = instance({ logicalDate: '2024-01-02T00:00:00.000Z', params: { a: 1, nested: { b: [1, 2] } } });
      await store.commit({ instances: [{ next: i, expectedVersion: 0 }], audit: [entry({ instanceId: i.id })] });
      assert.deepEqual(await store.getInstance(i.id), i);
      assert.deepEqual(await store.findInstance('t', '2024-01-02T00:00:00.000Z'), i);
      assert.equal(await store.getInstance('missing'), undefined);
      assert.equal(await store.findInstance('t', '2030-01-01T00:00:00.000Z'), undefined);
    });

    test('a write with a stale version fails with CONFLICT and changes nothing', async (store) => {
      const i = instance();
      await store.commit({ instances: [{ next: i, expectedVersion: 0 }] });
      const v2 = { ...i, state: 'running' as InstanceState, version: 2 };
      await store.commit({ instances: [{ next: v2, expectedVersion: 1 }] });
      const stale = { ...i, state: 'paused' as InstanceState, version: 2 };
      await expectConflict(store.commit({ instances: [{ next: stale, expectedVersion: 1 }], audit: [entry({ instanceId: i.id, reason: 'lost' })] }));
      assert.equal((await store.getInstance(i.id))?.state, 'running');
      assert.equal((await store.queryAudit({ instanceId: i.id })).length, 0, 'the audit entry of a failed commit must not be kept');
      await expectConflict(store.commit({ instances: [{ next: instance({ id: i.id }), expectedVersion: 0 }] }));
    });

    test('a batch is atomic: one conflicting write keeps every other write and the audit out', async (store) => {
      const a = instance();
      const b = instance();
      await store.commit({ instances: [{ next: a, expectedVersion: 0 }, { next: b, expectedVersion: 0 }] });
      await expectConflict(
        store.commit({
          instances: [
            { next: { ...a, state: 'paused', version: 2 }, expectedVersion: 1 },
            { next: { ...b, state: 'paused', version: 2 }, expectedVersion: 7 },
          ],
          audit: [entry({ instanceId: a.id }), entry({ instanceId: b.id })],
          holdScopes: [{ id: 'task:t', kind: 'task', key: 't', actor: 'alice', at: a.createdAt }],
        }),
      );
      assert.equal((await store.getInstance(a.id))?.state, 'queued');
      assert.equal((await store.queryAudit({})).length, 0);
      assert.deepEqual(await store.listScopes(), []);
    });

    test('one instance per (taskId, logicalDate): a second one is a CONFLICT', async (store) => {
      const date = '2024-03-01T00:00:00.000+01:00';
      await store.commit({ instances: [{ next: instance({ logicalDate: date }), expectedVersion: 0 }] });
      await expectConflict(store.commit({ instances: [{ next: instance({ logicalDate: date }), expectedVersion: 0 }] }));
      await expectConflict(
        store.commit({
          instances: [
            { next: instance({ taskId: 'u', logicalDate: date }), expectedVersion: 0 },
            { next: instance({ taskId: 'u', logicalDate: date }), expectedVersion: 0 },
          ],
        }),
      );
      await store.commit({ instances: [{ next: instance({ taskId: 'other', logicalDate: date }), expectedVersion: 0 }] });
      assert.equal((await store.listInstances({ limit: 10 })).items.length, 2);
    });

    test('racing writers on one version: exactly one wins', async (store) => {
      const i = instance();
      await store.commit({ instances: [{ next: i, expectedVersion: 0 }] });
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, n) =>
          store.commit({ instances: [{ next: { ...i, params: { n }, version: 2 }, expectedVersion: 1 }], audit: [entry({ instanceId: i.id })] }),
        ),
      );
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      assert.equal((await store.queryAudit({ instanceId: i.id })).length, 1);
    });

    test('listInstances filters by task, group, state and backfill, and pages by cursor without gaps or repeats', async (store) => {
      const all: Instance[] = [];
      for (let n = 0; n < 25; n++) {
        const i = instance({
          taskId: n % 2 ? 'odd' : 'even',
          group: n % 3 ? 'g1' : 'g2',
          state: (['queued', 'running', 'failed'] as const)[n % 3],
          backfillId: n < 10 ? 'bf1' : undefined,
        });
        if (i.backfillId === undefined) delete i.backfillId;
        all.push(i);
        await store.commit({ instances: [{ next: i, expectedVersion: 0 }] });
      }
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.listInstances({ limit: 7, cursor });
        assert.ok(page.items.length <= 7);
        seen.push(...page.items.map((i) => i.id));
        cursor = page.cursor;
      } while (cursor);
      assert.deepEqual(seen, all.map((i) => i.id));
      const ids = (items: Instance[]) => items.map((i) => i.id);
      assert.deepEqual(ids((await store.listInstances({ taskId: 'odd', limit: 100 })).items), ids(all.filter((i) => i.taskId === 'odd')));
      assert.deepEqual(ids((await store.listInstances({ group: 'g2', limit: 100 })).items), ids(all.filter((i) => i.group === 'g2')));
      assert.deepEqual(
        ids((await store.listInstances({ state: ['queued', 'failed'], limit: 100 })).items),
        ids(all.filter((i) => i.state !== 'running')),
      );
      assert.deepEqual(ids((await store.listInstances({ backfillId: 'bf1', state: 'running', limit: 100 })).items), ids(all.filter((i) => i.backfillId === 'bf1' && i.state === 'running')));
      const counts = await store.countInstances({ taskId: 'even' });
      assert.equal(counts.queued, all.filter((i) => i.taskId === 'even' && i.state === 'queued').length);
      assert.equal(counts.paused, 0);
    });

    test('lists, counts and scans follow every move, into and out of terminal states', async (store) => {
      const a = instance({ state: 'queued' });
      const b = instance({ state: 'queued' });
      await store.commit({ instances: [{ next: a, expectedVersion: 0 }, { next: b, expectedVersion: 0 }] });
      const aDone = { ...a, state: 'succeeded' as const, version: 2 };
      const bFailed = { ...b, state: 'failed' as const, version: 2, retryAt: '2024-01-01T00:00:00.000Z' };
      await store.commit({ instances: [{ next: aDone, expectedVersion: 1 }, { next: bFailed, expectedVersion: 1 }] });
      const ids = async (state: Instance['state'] | Instance['state'][]) => (await store.listInstances({ state, limit: 10 })).items.map((i) => i.id);
      assert.deepEqual(await ids('succeeded'), [a.id]);
      assert.deepEqual(await ids(['succeeded', 'failed']), [a.id, b.id]);
      assert.deepEqual(await ids('queued'), []);
      assert.deepEqual((await store.queued({ limit: 10 })).map((i) => i.id), []);
      assert.deepEqual((await store.dueRetries('2024-01-02T00:00:00.000Z', 10)).map((i) => i.id), [b.id]);
      let counts = await store.countInstances({});
      assert.equal(counts.succeeded, 1);
      assert.equal(counts.failed, 1);
      assert.equal(counts.queued, 0);
      // a rerun takes a terminal instance back to queued
      await store.commit({ instances: [{ next: { ...aDone, state: 'queued', attempt: 2, version: 3 }, expectedVersion: 2 }] });
      assert.deepEqual(await ids('succeeded'), []);
      assert.deepEqual((await store.queued({ limit: 10 })).map((i) => i.id), [a.id]);
      counts = await store.countInstances({});
      assert.equal(counts.succeeded, 0);
      assert.equal(counts.queued, 1);
      assert.equal((await store.countInstances({ state: 'succeeded' })).succeeded, 0);
    });

    test('audit entries written before their instance exists are found by its id', async (store) => {
      const i = instance();
      const early = entry({ instanceId: i.id, reason: 'early' });
      await store.commit({ audit: [early] });
      await store.commit({ instances: [{ next: i, expectedVersion: 0 }], audit: [entry({ instanceId: i.id, reason: 'with it' })] });
      assert.deepEqual((await store.queryAudit({ instanceId: i.id })).map((e) => e.reason), ['early', 'with it']);
    });

    test('queued() leaves out held tasks, groups and backfills, and honours the limit', async (store) => {
      const mk = (over: Partial<Instance>) => instance(over);
      const list = [mk({ taskId: 'a' }), mk({ taskId: 'b', group: 'g' }), mk({ taskId: 'c', backfillId: 'bf' }), mk({ taskId: 'd' }), mk({ taskId: 'e', state: 'paused' })];
      await store.commit({ instances: list.map((next) => ({ next, expectedVersion: 0 })) });
      const got = await store.queued({ limit: 10, heldTasks: ['a'], heldGroups: ['g'], heldBackfills: ['bf'] });
      assert.deepEqual(got.map((i) => i.taskId), ['d']);
      assert.equal((await store.queued({ limit: 2 })).length, 2);
    });

    test('the audit trail keeps every entry, oldest first, and filters', async (store) => {
      const i = instance();
      await store.commit({ instances: [{ next: i, expectedVersion: 0 }] });
      const cmd = entry({ kind: 'command', action: 'pause', commandId: 'c1', instanceIds: [i.id], taskIds: ['t'], actor: 'bob', at: '2024-01-01T00:00:01.000Z' });
      const tr = entry({ instanceId: i.id, taskId: 't', commandId: 'c1', action: 'pause', from: 'queued', to: 'paused', at: '2024-01-01T00:00:01.000Z' });
      const late = entry({ kind: 'late_result', instanceId: i.id, at: '2024-01-01T00:00:05.000Z', result: { outcome: 'succeeded' } });
      await store.commit({ audit: [cmd, tr] });
      await store.commit({ audit: [late] });
      assert.deepEqual((await store.queryAudit({})).map((e) => e.id), [cmd.id, tr.id, late.id]);
      assert.deepEqual((await store.queryAudit({ instanceId: i.id })).map((e) => e.id), [cmd.id, tr.id, late.id], 'a command matches the instances it touched');
      assert.deepEqual((await store.queryAudit({ commandId: 'c1' })).map((e) => e.id), [cmd.id, tr.id]);
      assert.deepEqual((await store.queryAudit({ actor: 'bob' })).map((e) => e.id), [cmd.id]);
      assert.deepEqual((await store.queryAudit({ kind: 'late_result' })).map((e) => e.id), [late.id]);
      assert.deepEqual((await store.queryAudit({ taskId: 't' })).map((e) => e.id), [cmd.id, tr.id]);
      assert.deepEqual((await store.queryAudit({ since: '2024-01-01T00:00:02.000Z' })).map((e) => e.id), [late.id]);
      assert.deepEqual((await store.queryAudit({ until: '2024-01-01T00:00:02.000Z' })).map((e) => e.id), [cmd.id, tr.id]);
      assert.deepEqual((await store.queryAudit({ limit: 2 })).map((e) => e.id), [tr.id, late.id], 'limit keeps the newest');
      assert.deepEqual(await store.queryAudit({ afterId: tr.id }), [late]);
      assert.deepEqual((await store.queryAudit({ action: 'pause' })).length, 2);
    });

    test('held scopes are kept until released', async (store) => {
      await store.commit({ holdScopes: [{ id: 'task:t', kind: 'task', key: 't', actor: 'a', at: '2024-01-01T00:00:00.000Z' }, { id: 'all', kind: 'all', key: '', actor: 'a', at: '2024-01-01T00:00:00.000Z' }] });
      assert.deepEqual((await store.listScopes()).map((s) => s.id).sort(), ['all', 'task:t']);
      await store.commit({ releaseScopes: ['all'] });
      assert.deepEqual((await store.listScopes()).map((s) => s.id), ['task:t']);
    });

    test('commands: one per idempotency key, versioned updates, listed by status', async (store) => {
      const at = '2024-01-01T00:00:00.000Z';
      const rec: CommandRecord = {
        id: newId(), idempotencyKey: 'k1', action: 'pause', actor: 'alice', target: { taskId: 't' }, options: {},
        status: 'awaiting_approval', result: { commandId: 'x', action: 'pause', status: 'awaiting_approval', applied: [], rejected: [] },
        createdAt: at, updatedAt: at, version: 1,
      };
      await store.commit({ commands: [{ next: rec, expectedVersion: 0 }] });
      assert.deepEqual(await store.findCommandByKey('k1'), rec);
      assert.deepEqual(await store.getCommand(rec.id), rec);
      await expectConflict(store.commit({ commands: [{ next: { ...rec, id: newId() }, expectedVersion: 0 }] }));
      await store.commit({ commands: [{ next: { ...rec, status: 'approved', version: 2 }, expectedVersion: 1 }] });
      await expectConflict(store.commit({ commands: [{ next: { ...rec, status: 'rejected', version: 2 }, expectedVersion: 1 }] }));
      assert.equal((await store.listCommands({ status: ['approved'] })).length, 1);
      assert.equal((await store.listCommands({ status: ['awaiting_approval'] })).length, 0);
    });

    test('backfills are versioned and listed by task and state', async (store) => {
      const at = '2024-01-01T00:00:00.000Z';
      const bf: BackfillRecord = {
        id: newId(), taskId: 't', state: 'running', schedule: { cron: '0 2 * * *', timezone: 'Asia/Shanghai' },
        from: at, to: '2024-02-01T00:00:00.000Z', order: 'asc', mode: 'serial', concurrency: 1, reprocess: 'none',
        params: { x: 1 }, includeDownstream: false, total: 31, nextIndex: 0, createdAt: at, updatedAt: at, version: 1,
      };
      await store.commit({ backfills: [{ next: bf, expectedVersion: 0 }] });
      assert.deepEqual(await store.getBackfill(bf.id), bf);
      await expectConflict(store.commit({ backfills: [{ next: { ...bf, nextIndex: 5, version: 2 }, expectedVersion: 3 }] }));
      await store.commit({ backfills: [{ next: { ...bf, nextIndex: 5, version: 2 }, expectedVersion: 1 }] });
      assert.equal((await store.getBackfill(bf.id))?.nextIndex, 5);
      assert.equal((await store.listBackfills({ taskId: 't', state: ['running'] })).length, 1);
      assert.equal((await store.listBackfills({ taskId: 't', state: ['completed'] })).length, 0);
    });

    test('a backfill record keeps every field as written; listBackfills filters by task and by several states', async (store) => {
      const at = '2024-01-01T00:00:00.000Z';
      const base: BackfillRecord = {
        id: newId(), taskId: 'a', state: 'running', schedule: { every: 'PT15M', timezone: 'Australia/Lord_Howe' },
        from: '2024-04-06T23:30:00.000+11:00', to: '2024-04-07T03:00:00.000+10:30', order: 'desc', mode: 'parallel', concurrency: 7,
        reprocess: 'failed', params: { region: 'eu', nested: { list: [1, 'two', null], flag: false } }, includeDownstream: true,
        actor: 'alice', total: 15, nextIndex: 3, createdAt: at, updatedAt: at, version: 1,
      };
      const others: BackfillRecord[] = [
        { ...base, id: newId(), taskId: 'a', state: 'paused', actor: undefined },
        { ...base, id: newId(), taskId: 'b', state: 'completed', nextIndex: 15 },
        { ...base, id: newId(), taskId: 'b', state: 'cancelled' },
      ];
      for (const o of others) if (o.actor === undefined) delete o.actor;
      await store.commit({ backfills: [base, ...others].map((next) => ({ next, expectedVersion: 0 })) });
      assert.deepEqual(await store.getBackfill(base.id), base);
      assert.deepEqual(await store.getBackfill(others[0].id), others[0], 'an absent actor stays absent');
      assert.equal(await store.getBackfill('missing'), undefined);
      const ids = (list: BackfillRecord[]) => list.map((b) => b.id).sort();
      assert.deepEqual(ids(await store.listBackfills({})), ids([base, ...others]));
      assert.deepEqual(ids(await store.listBackfills({ taskId: 'a' })), ids([base, others[0]]));
      assert.deepEqual(ids(await store.listBackfills({ state: ['running', 'paused'] })), ids([base, others[0]]));
      assert.deepEqual(ids(await store.listBackfills({ taskId: 'b', state: ['completed', 'cancelled', 'running'] })), ids(others.slice(1)));
      assert.deepEqual(await store.listBackfills({ taskId: 'c' }), []);
    });

    test('a backfill record is created once; racing writers on one version: exactly one wins', async (store) => {
      const at = '2024-01-01T00:00:00.000Z';
      const bf: BackfillRecord = {
        id: newId(), taskId: 't', state: 'running', schedule: { cron: '0 0 * * *' }, from: at, to: at, order: 'asc', mode: 'serial',
        concurrency: 1, reprocess: 'none', params: {}, includeDownstream: false, total: 1, nextIndex: 0, createdAt: at, updatedAt: at, version: 1,
      };
      await store.commit({ backfills: [{ next: bf, expectedVersion: 0 }] });
      await expectConflict(store.commit({ backfills: [{ next: { ...bf, state: 'paused' }, expectedVersion: 0 }] }));
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, n) =>
          store.commit({ backfills: [{ next: { ...bf, nextIndex: n + 1, version: 2 }, expectedVersion: 1 }], audit: [entry({ kind: 'command', backfillId: bf.id })] }),
        ),
      );
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      const won = await store.getBackfill(bf.id);
      assert.equal(won?.version, 2);
      assert.ok(won!.nextIndex >= 1 && won!.nextIndex <= 8);
      assert.equal((await store.queryAudit({ backfillId: bf.id })).length, 1, 'only the winner\'s audit entry is kept');
    });

    test("a backfill write is atomic with the batch's instances and audit", async (store) => {
      const at = '2024-01-01T00:00:00.000Z';
      const bf: BackfillRecord = {
        id: newId(), taskId: 't', state: 'running', schedule: { cron: '0 0 * * *' }, from: at, to: at, order: 'asc', mode: 'serial',
        concurrency: 1, reprocess: 'none', params: {}, includeDownstream: false, total: 1, nextIndex: 0, createdAt: at, updatedAt: at, version: 1,
      };
      await store.commit({ backfills: [{ next: bf, expectedVersion: 0 }] });
      const i = instance({ backfillId: bf.id, logicalDate: at });
      // a stale backfill version keeps the instance and the audit entry out
      await expectConflict(
        store.commit({
          instances: [{ next: i, expectedVersion: 0 }],
          backfills: [{ next: { ...bf, state: 'paused', version: 2 }, expectedVersion: 5 }],
          audit: [entry({ instanceId: i.id, backfillId: bf.id })],
        }),
      );
      assert.equal(await store.getInstance(i.id), undefined);
      assert.equal((await store.queryAudit({})).length, 0);
      // and a conflicting instance keeps the backfill write out
      await store.commit({ instances: [{ next: i, expectedVersion: 0 }] });
      await expectConflict(
        store.commit({
          instances: [{ next: instance({ logicalDate: at }), expectedVersion: 0 }],
          backfills: [{ next: { ...bf, state: 'paused', version: 2 }, expectedVersion: 1 }],
        }),
      );
      assert.equal((await store.getBackfill(bf.id))?.state, 'running');
      assert.equal((await store.getBackfill(bf.id))?.version, 1);
      // subscribers hear backfill writes
      const heard: StoreNotice[] = [];
      const off = store.subscribe((n) => heard.push(n));
      await store.commit({ backfills: [{ next: { ...bf, state: 'completed', version: 2 }, expectedVersion: 1 }] });
      await new Promise((r) => setTimeout(r, 50));
      off();
      assert.deepEqual(heard.flatMap((n) => n.backfills.map((b) => [b.id, b.state])), [[bf.id, 'completed']]);
    });

    test('leases: only the owner renews; expired leases, deadlines and due retries are found', async (store) => {
      const lease = (owner: string, expiresAt: string) => ({ owner, token: 1, expiresAt });
      const mine = instance({ state: 'running', lease: lease('me', '2024-01-01T00:00:10.000Z') });
      const theirs = instance({ state: 'running', lease: lease('them', '2024-01-01T00:00:10.000Z') });
      const stopping = instance({ state: 'stopping', lease: lease('them', '2024-01-01T00:01:00.000Z'), deadlineAt: '2024-01-01T00:00:05.000Z' });
      const retry = instance({ state: 'failed', retryAt: '2024-01-01T00:00:03.000Z' });
      await store.commit({ instances: [mine, theirs, stopping, retry].map((next) => ({ next, expectedVersion: 0 })) });
      assert.deepEqual(await store.renewLeases('me', [mine.id, theirs.id], '2024-01-01T00:05:00.000Z'), [mine.id]);
      const renewed = await store.getInstance(mine.id);
      assert.equal(renewed?.lease?.expiresAt, '2024-01-01T00:05:00.000Z');
      assert.equal(renewed?.version, 1, 'renewing a lease does not bump the version');
      assert.deepEqual((await store.expiredLeases('2024-01-01T00:00:20.000Z', 10)).map((i) => i.id), [theirs.id]);
      assert.deepEqual((await store.expiredDeadlines('2024-01-01T00:00:06.000Z', 10)).map((i) => i.id), [stopping.id]);
      assert.deepEqual(await store.expiredDeadlines('2024-01-01T00:00:04.000Z', 10), []);
      assert.deepEqual((await store.dueRetries('2024-01-01T00:00:03.000Z', 10)).map((i) => i.id), [retry.id]);
    });

    test('subscribers hear every commit once, after it is written, and nothing of a failed one', async (store) => {
      const heard: StoreNotice[] = [];
      const off = store.subscribe((n) => heard.push(n));
      const i = instance();
      const e = entry({ instanceId: i.id });
      await store.commit({ instances: [{ next: i, expectedVersion: 0 }], audit: [e] });
      await expectConflict(store.commit({ instances: [{ next: i, expectedVersion: 0 }] }));
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(heard.length, 1);
      assert.deepEqual(heard[0].instances.map((x) => x.id), [i.id]);
      assert.deepEqual(heard[0].audit.map((x) => x.id), [e.id]);
      off();
      await store.commit({ instances: [{ next: instance(), expectedVersion: 0 }] });
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(heard.length, 1, 'no notice after unsubscribe');
    });
  });
}

// docs/writing-a-store.md, runnable: npx tsx examples/custom-store.ts
// A store of your own is a class implementing StateStore. This one delegates to the memory
// store and counts commits (a stand-in for your database); the contract suite checks it.
import { describe, it } from 'node:test';
import { MemoryStateStore, type CommitBatch, type StateStore } from '../src/index.js';
import { storeContract } from '../src/testing/index.js';

class CountingStore extends MemoryStateStore implements StateStore {
  commits = 0;

  override async commit(batch: CommitBatch): Promise<void> {
    // a real store opens a transaction here: version-checked writes, audit rows, scopes,
    // commands and backfills, all or nothing; a lost race throws TaskControlError('CONFLICT')
    await super.commit(batch);
    this.commits++;
  }
}

storeContract('CountingStore', () => new CountingStore(), { describe, it });

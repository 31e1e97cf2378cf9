import { afterEach, describe, it } from 'vitest';
import type { PostgresStateStore } from '../../src/postgres/index.js';
import { storeContract } from '../../src/testing/index.js';
import { disposeStore, makeStore, pgAvailable } from './pg-env.js';

describe.skipIf(!pgAvailable)('PostgresStateStore', () => {
  // a fresh schema per store, dropped when the case ends
  storeContract('PostgresStateStore', () => makeStore(), { describe, it, afterEach }, {
    teardown: (store) => disposeStore(store as PostgresStateStore),
  });
});

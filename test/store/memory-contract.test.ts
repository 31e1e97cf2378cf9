import { afterEach, describe, it } from 'vitest';
import { MemoryStateStore } from '../../src/index.js';
import { storeContract } from '../../src/testing/index.js';

storeContract('MemoryStateStore', () => new MemoryStateStore(), { describe, it, afterEach });

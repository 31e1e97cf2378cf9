// `taskctl/testing`: the StateStore contract suite and helpers for in-process workflow tests.
export { storeContract } from './contract.js';
export type { ContractRunner, ContractOptions, TestFn } from './contract.js';
export { FakeClock, settle } from './fake-clock.js';
export { createTestController } from './helpers.js';
export type { TestHarness } from './helpers.js';

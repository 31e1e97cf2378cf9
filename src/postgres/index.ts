// `taskctl/postgres`: the PostgreSQL StateStore (`pg` is a peer dependency).
export { PostgresStateStore } from './store.js';
export type { PostgresStateStoreOptions, NoticePosition } from './store.js';

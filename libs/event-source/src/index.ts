export * from './source';
export * from './in-memory-source';
export * from './deterministic-ulid';
export * from './fs-poll-source';
export * from './fs-poll-diff';
export * from './stream-source';
export * from './bridge-source';

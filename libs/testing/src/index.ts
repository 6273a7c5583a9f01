export * from './redis-server';
export * from './namespace';
export * from './service-process';
export * from './redis-cluster';
export * from './streams-audit';
export * from './service-test';
export * from './pg-proxy';
export * from './process-state';

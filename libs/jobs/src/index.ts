// The job domain, store, executor, operations and queue: shared by the job-coordinator
// service and the `coordbus jobs` CLI. bullmq is loaded only where a queue or worker is made.
export * from './domain/env-scrub';
export * from './domain/hook-event';
export * from './domain/hooks-file';
export * from './domain/job';
export * from './domain/outcome';
export * from './domain/retention';
export * from './store/job-store';
export * from './store/job-log';
export * from './store/outage';
export * from './exec/containment';
export * from './exec/control';
export * from './exec/job-executor';
export * from './exec/proc';
export * from './exec/process-runner';
export * from './exec/runner';
export * from './exec/spawner';
export * from './exec/workspace';
export * from './ops/cancel';
export * from './ops/follow';
export * from './ops/liveness';
export * from './ops/prune';
export * from './ops/reconcile';
export * from './queue/bull';
export * from './queue/submit';
export * from './queue/worker';
export * from './tokens';

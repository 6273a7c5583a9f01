export * from './config';
export * from './logger';
export * from './redis';
export * from './metrics';
export * from './health';
export * from './tokens';
export * from './runtime.module';
export * from './service';

export * from './commands';
export * from './invoke';

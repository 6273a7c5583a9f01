export * from './types';
export * from './config';
export * from './resp-client';
export * from './file-mirror';
export * from './store';
export * from './fanout';

export * from './types';
export * from './config';
export * from './resp-client';
export * from './cluster-client';
export * from './file-mirror';
export * from './file-layout';
export * from './store';
export * from './fanout';

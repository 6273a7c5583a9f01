export * from './redis-server';
export * from './namespace';

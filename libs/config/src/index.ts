// The config core: durations, environment variables (each defined once), Redis URLs and service
// ports. Dependency-free (node builtins only), so the `coord` esbuild bundle can load it.
export * from './duration';
export * from './time-point';
export * from './values';
export * from './env';
export * from './variables';
export * from './redis-url';
export * from './services';
export * from './docs';

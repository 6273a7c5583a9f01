/** Injection tokens provided by RuntimeModule to every service. */
export const BASE_CONFIG = Symbol('coordbus:base-config');
export const KEYSPACE = Symbol('coordbus:keyspace');
export const LOGGER = Symbol('coordbus:logger');
/** A shared ioredis command connection (never used for blocking reads). */
export const REDIS = Symbol('coordbus:redis');
export const METRICS_REGISTRY = Symbol('coordbus:metrics-registry');

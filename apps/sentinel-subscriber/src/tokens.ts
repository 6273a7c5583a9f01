/** Injection tokens of the sentinel's providers whose type is not a class of this app. */
export const SENTINEL_CONFIG = Symbol('sentinel:config');
export const EVENT_SOURCE = Symbol('sentinel:event-source');
/** The connection blocking reads use (XREADGROUP BLOCK would stall every other command). */
export const SOURCE_REDIS = Symbol('sentinel:source-redis');
export const OBSERVATION_OPTIONS = Symbol('sentinel:observation-options');
export const LOOP_OPTIONS = Symbol('sentinel:loop-options');
/** What the cull evicts through (`SessionEvictor`, a CoordStore in the service). */
export const SESSION_EVICTOR = Symbol('sentinel:session-evictor');
/** COORD_SESSION_TTL when the deployment sets it: seeds the stored session TTL (absent otherwise). */
export const SESSION_TTL_SEED_MS = Symbol('sentinel:session-ttl-seed-ms');
/** Optional clock of SentinelService (tests pin it). */
export const CLOCK = Symbol('sentinel:clock');
/** Optional `{ host, pid }` SentinelService names in the live envelopes it writes (tests pin it). */
export const REPORTER = Symbol('sentinel:reporter');

/** Injection tokens of the archivist. */
export const ARCHIVIST_CONFIG = Symbol('ARCHIVIST_CONFIG');
/** The archived streams as StreamRef[] (row-mapper), resolved in the service's keyspace. */
export const STREAM_REFS = Symbol('STREAM_REFS');
/** The AccessPolicy built from the config (who may read, who may act). */
export const ACCESS_POLICY = Symbol('ACCESS_POLICY');

/** TLS settings a `rediss://` URL implies (structurally ioredis' `tls` option). */
export interface UrlTls {
  servername: string;
}

/**
 * What a `redis://` / `rediss://` URL implies: seed address, user, password, TLS, database.
 * The one reading of a Redis URL, shared by the services' connections (`openRedis`) and the
 * CLI's; plain objects, so this module loads no client library.
 */
export function redisUrlOptions(url: string): {
  host: string;
  port: number;
  options: { username?: string; password?: string; tls?: UrlTls };
  db: number;
} {
  const u = new URL(url);
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new RangeError(`a Redis URL must be redis:// or rediss:// (got ${u.protocol}//)`);
  const host = u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  const options: { username?: string; password?: string; tls?: UrlTls } = {};
  if (u.username) options.username = decodeURIComponent(u.username);
  if (u.password) options.password = decodeURIComponent(u.password);
  // SNI names the seed host; nodes discovered later are reached by address with the same settings.
  if (u.protocol === 'rediss:') options.tls = { servername: host };
  const db = Number(u.pathname.replace(/^\//, '') || '0');
  return { host, port: Number(u.port || 6379), options, db };
}

/** `redis://user:secret@host` → `redis://***@host`, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

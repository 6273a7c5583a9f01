import { SHARED_VARS } from '@coordbus/config';
import { coordVar } from './config';
import { CoordRedis, RedisReplyError, RespClient, RespClientOptions } from './resp-client';

/**
 * What the `coord` hot path needs from a connection: {@link RespClient} on one Redis, or
 * {@link ClusterRespClient} on a Redis Cluster.
 */
export interface CoordConnection extends CoordRedis {
  /** The URL it was made from (a blocking command opens a second connection from it). */
  readonly url: string;
  /** Like `call` with its own reply bound (0 = none). */
  callWithTimeout(timeoutMs: number, command: string, ...args: (string | number)[]): Promise<unknown>;
  /** Closes at once; pending commands reject. */
  disconnect(): void;
  /** Waits for pending replies (at most `timeoutMs`), then closes. */
  close(timeoutMs?: number): Promise<void>;
}

/** `REDIS_CLUSTER`, with the services' definition (1/0, true/false, yes/no, on/off; default off). */
export function redisClusterFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return coordVar(env, SHARED_VARS.REDIS_CLUSTER);
}

/** A RespClient on one Redis, or a ClusterRespClient when `cluster` is set. */
export function openCoordConnection(
  url: string,
  options: RespClientOptions & { cluster?: boolean } = {},
): CoordConnection {
  return options.cluster ? new ClusterRespClient(url, options) : new RespClient(url, options);
}

// ---- hash slots ------------------------------------------------------------------------------

const CRC16_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

/** The Redis Cluster hash slot of `key`: CRC16/XMODEM of its hash tag (or the whole key) mod 16384. */
export function keySlot(key: string): number {
  let s = key;
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) s = key.slice(open + 1, close);
  }
  const bytes = Buffer.from(s, 'utf8');
  let crc = 0;
  for (const b of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ b) & 0xff];
  return crc & 0x3fff;
}

const SCRIPT_COMMANDS = new Set(['EVAL', 'EVALSHA', 'EVAL_RO', 'EVALSHA_RO', 'FCALL', 'FCALL_RO']);
const KEYLESS = new Set([
  'TIME',
  'PING',
  'ECHO',
  'SCRIPT',
  'INFO',
  'CLUSTER',
  'AUTH',
  'SELECT',
  'ASKING',
  'COMMAND',
  'CLIENT',
  'PUBLISH',
  'DBSIZE',
]);

/** The first key of a command (the one it is routed by), or undefined for a keyless command. */
export function commandKey(args: readonly (string | number)[]): string | undefined {
  const cmd = String(args[0]).toUpperCase();
  if (SCRIPT_COMMANDS.has(cmd)) return Number(args[2]) > 0 ? String(args[3]) : undefined;
  if (KEYLESS.has(cmd)) return undefined;
  if (cmd === 'XREAD' || cmd === 'XREADGROUP') {
    const at = args.findIndex((a) => String(a).toUpperCase() === 'STREAMS');
    return at >= 0 && at + 1 < args.length ? String(args[at + 1]) : undefined;
  }
  return args.length > 1 ? String(args[1]) : undefined;
}

// ---- the client ------------------------------------------------------------------------------

const REDIRECT = /^(MOVED|ASK) (\d+) (\S*):(\d+)$/;
const MAX_REDIRECTS = 5;

/**
 * The `coord` hot path's client for a Redis Cluster: one {@link RespClient} per node, each
 * command sent to the node owning its key's slot. The slot map is learned lazily from the
 * cluster's own answers — a command for a slot not seen yet goes to the seed node, and a
 * `-MOVED <slot> <host:port>` reply records the owner for the rest of the process and resends
 * there; `-ASK` (a slot being migrated) resends once to the named node after `ASKING`. So a
 * short-lived `coord` pays at most one extra round trip per slot it touches (the `{coord}` state
 * and the `{ingest}` stream: two slots, usually on two nodes), and nothing up front.
 *
 * Commands for one slot keep their order: they are written to one node's socket in call order,
 * and a redirected batch is resent in the order its replies arrive.
 */
export class ClusterRespClient implements CoordConnection {
  private readonly nodes = new Map<string, RespClient>();
  private readonly owners = new Map<number, string>();
  private readonly seed: string;
  private readonly base: URL;
  private readonly commandTimeoutMs: number;
  private lastNode: string;
  private closed = false;

  constructor(
    readonly url: string,
    private readonly options: RespClientOptions = {},
  ) {
    this.base = new URL(url);
    this.seed = `${this.base.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1'}:${this.base.port || 6379}`;
    this.lastNode = this.seed;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 5000;
  }

  /** Nodes this process has opened a connection to (`host:port`). */
  get openNodes(): string[] {
    return [...this.nodes.keys()];
  }

  call(command: string, ...args: (string | number)[]): Promise<unknown> {
    return this.route(this.commandTimeoutMs, [command, ...args], 0);
  }

  callWithTimeout(timeoutMs: number, command: string, ...args: (string | number)[]): Promise<unknown> {
    return this.route(timeoutMs, [command, ...args], 0);
  }

  disconnect(): void {
    this.closed = true;
    for (const n of this.nodes.values()) n.disconnect();
  }

  async close(timeoutMs = 1000): Promise<void> {
    this.closed = true;
    await Promise.all([...this.nodes.values()].map((n) => n.close(timeoutMs)));
  }

  private route(
    timeoutMs: number,
    args: (string | number)[],
    redirects: number,
    asking?: string,
  ): Promise<unknown> {
    const key = commandKey(args);
    const slot = key === undefined ? undefined : keySlot(key);
    const addr = asking ?? (slot === undefined ? this.lastNode : (this.owners.get(slot) ?? this.seed));
    const node = this.node(addr);
    this.lastNode = addr;
    const [command, ...rest] = args;
    if (asking) void node.callWithTimeout(timeoutMs, 'ASKING').catch(() => undefined);
    return node.callWithTimeout(timeoutMs, String(command), ...rest).catch((err: unknown) => {
      const m = err instanceof RedisReplyError ? REDIRECT.exec(err.message) : null;
      if (!m || redirects >= MAX_REDIRECTS || this.closed) throw err;
      // An empty host means "the host you reached me on" (Redis 7 with unknown endpoints).
      const target = `${m[3] || addr.slice(0, addr.lastIndexOf(':'))}:${m[4]}`;
      if (m[1] === 'MOVED') {
        this.owners.set(Number(m[2]), target);
        return this.route(timeoutMs, args, redirects + 1);
      }
      return this.route(timeoutMs, args, redirects + 1, target);
    });
  }

  private node(addr: string): RespClient {
    let n = this.nodes.get(addr);
    if (!n) {
      const u = new URL(this.base.toString());
      const at = addr.lastIndexOf(':');
      const host = addr.slice(0, at);
      u.hostname = host.includes(':') ? `[${host}]` : host;
      u.port = addr.slice(at + 1);
      // A Cluster has only database 0: a path in the URL would make every node SELECT and fail.
      u.pathname = '';
      n = new RespClient(u.toString(), this.options);
      this.nodes.set(addr, n);
    }
    return n;
  }
}

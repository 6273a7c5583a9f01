import { Socket, connect } from 'node:net';

/**
 * The one Redis capability coord code needs: send a command, get its reply. `ioredis` satisfies it
 * (`redis.call(cmd, ...args)`), and so does {@link RespClient}, the tiny client the `coord` hot
 * path uses because loading ioredis alone costs more than the whole `coord heartbeat` budget.
 */
export interface CoordRedis {
  call(command: string, ...args: (string | number)[]): Promise<unknown>;
}

/** A Redis error reply (`-ERR ...`, `-NOSCRIPT ...`); `message` is the server's text. */
export class RedisReplyError extends Error {
  override name = 'RedisReplyError';
}

/** The socket could not be opened, broke, or a reply did not arrive within the timeout. */
export class RedisConnectionError extends Error {
  override name = 'RedisConnectionError';
}

/** The connection is up but a reply did not arrive within its bound (slow, or a large reply). */
export class RedisTimeoutError extends RedisConnectionError {
  override name = 'RedisTimeoutError';
}

export interface RespClientOptions {
  /** Bound on connecting (and AUTH/SELECT), in ms. */
  connectTimeoutMs?: number;
  /** Bound on each reply, in ms; 0 = none (blocking commands pass their own). */
  commandTimeoutMs?: number;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer?: NodeJS.Timeout;
}

type Reply = unknown;
const INCOMPLETE = Symbol('incomplete');

/** Parses one RESP2 reply at `pos`; returns [value, next] or INCOMPLETE. */
function parse(buf: Buffer, pos: number): [Reply, number] | typeof INCOMPLETE {
  if (pos >= buf.length) return INCOMPLETE;
  const eol = buf.indexOf('\r\n', pos);
  if (eol < 0) return INCOMPLETE;
  const type = buf[pos];
  const line = buf.toString('utf8', pos + 1, eol);
  switch (type) {
    case 0x2b: // +
      return [line, eol + 2];
    case 0x2d: // -
      return [new RedisReplyError(line), eol + 2];
    case 0x3a: // :
      return [Number(line), eol + 2];
    case 0x24: {
      // $
      const len = Number(line);
      if (len < 0) return [null, eol + 2];
      const end = eol + 2 + len;
      if (buf.length < end + 2) return INCOMPLETE;
      return [buf.toString('utf8', eol + 2, end), end + 2];
    }
    case 0x2a: {
      // *
      const n = Number(line);
      if (n < 0) return [null, eol + 2];
      const out: Reply[] = [];
      let p = eol + 2;
      for (let i = 0; i < n; i++) {
        const r = parse(buf, p);
        if (r === INCOMPLETE) return INCOMPLETE;
        out.push(r[0]);
        p = r[1];
      }
      return [out, p];
    }
    default:
      throw new RedisConnectionError(`unexpected RESP type byte ${type}`);
  }
}

function encode(args: (string | number)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.from(String(a), 'utf8');
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/**
 * A minimal RESP2 client: one socket, pipelined commands, replies in order, a bound on connect
 * and on each reply. It loads nothing but `node:net`, so a short-lived CLI pays ~1 ms for it.
 * Long-running services use ioredis instead (reconnects, cluster, TLS); this does none of that.
 */
export class RespClient implements CoordRedis {
  private socket?: Socket;
  private ready?: Promise<void>;
  private buffer: Buffer = Buffer.alloc(0);
  private readonly queue: Pending[] = [];
  private closed = false;
  private failure?: Error;
  private readonly connectTimeoutMs: number;
  private readonly commandTimeoutMs: number;

  constructor(
    readonly url: string,
    options: RespClientOptions = {},
  ) {
    this.connectTimeoutMs = options.connectTimeoutMs ?? 2000;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 5000;
  }

  /** Opens the socket (done lazily by the first command). */
  connect(): Promise<void> {
    if (this.ready) return this.ready;
    this.ready = new Promise<void>((resolve, reject) => {
      let u: URL;
      try {
        u = new URL(this.url);
        if (u.protocol !== 'redis:') throw new Error(`unsupported protocol ${u.protocol} (only redis://)`);
      } catch (err) {
        const e = new RedisConnectionError(
          `bad REDIS_URL ${JSON.stringify(this.url)}: ${(err as Error).message}`,
        );
        this.fail(e);
        reject(e);
        return;
      }
      const host = u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
      const port = Number(u.port || 6379);
      const sock = connect({ host, port });
      this.socket = sock;
      sock.setNoDelay(true);
      const timer = setTimeout(() => {
        const err = new RedisConnectionError(
          `connect to ${host}:${port} timed out after ${this.connectTimeoutMs} ms`,
        );
        this.fail(err);
        reject(err);
      }, this.connectTimeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      sock.on('error', (err) => {
        clearTimeout(timer);
        const e = new RedisConnectionError(`redis ${host}:${port}: ${err.message}`);
        this.fail(e);
        reject(e);
      });
      sock.on('close', () => this.fail(new RedisConnectionError('connection closed')));
      sock.on('data', (chunk) => this.onData(chunk));
    });
    const u = safeUrl(this.url);
    const auth: Promise<unknown>[] = [];
    if (u?.password) {
      const user = decodeURIComponent(u.username);
      const pass = decodeURIComponent(u.password);
      auth.push(
        user
          ? this.send(['AUTH', user, pass], this.connectTimeoutMs)
          : this.send(['AUTH', pass], this.connectTimeoutMs),
      );
    }
    const db = u?.pathname?.replace(/^\//, '');
    if (db && db !== '0') auth.push(this.send(['SELECT', db], this.connectTimeoutMs));
    if (auth.length) {
      const base = this.ready;
      this.ready = base.then(() => Promise.all(auth)).then(() => undefined);
    }
    // A rejection nobody awaited yet must not crash the process.
    this.ready.catch(() => undefined);
    return this.ready;
  }

  /** Sends one command; resolves with its reply, rejects with RedisReplyError or RedisConnectionError. */
  async call(command: string, ...args: (string | number)[]): Promise<unknown> {
    void this.connect();
    return this.send([command, ...args], this.commandTimeoutMs);
  }

  /** Like {@link call} with its own reply bound (for blocking commands); 0 = wait forever. */
  callWithTimeout(timeoutMs: number, command: string, ...args: (string | number)[]): Promise<unknown> {
    void this.connect();
    return this.send([command, ...args], timeoutMs);
  }

  private send(args: (string | number)[], timeoutMs: number): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new RedisConnectionError('client closed'));
    return new Promise((resolve, reject) => {
      const p: Pending = { resolve, reject };
      if (timeoutMs > 0) {
        p.timer = setTimeout(() => {
          // Replies are matched by position, so a late reply would desynchronise the socket: give it up.
          this.fail(new RedisTimeoutError(`no reply to ${String(args[0])} within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.queue.push(p);
      // Written even before 'connect': net.Socket buffers until the connection is up.
      this.socket!.write(encode(args));
    });
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    let pos = 0;
    for (;;) {
      let r: ReturnType<typeof parse>;
      try {
        r = parse(this.buffer, pos);
      } catch (err) {
        // Not Redis on the other end (a proxy, an HTTP server): give up the connection.
        this.fail(err as Error);
        return;
      }
      if (r === INCOMPLETE) break;
      pos = r[1];
      const p = this.queue.shift();
      if (!p) continue;
      if (p.timer) clearTimeout(p.timer);
      if (r[0] instanceof RedisReplyError) p.reject(r[0]);
      else p.resolve(r[0]);
    }
    this.buffer = pos >= this.buffer.length ? Buffer.alloc(0) : this.buffer.subarray(pos);
  }

  private fail(err: Error): void {
    if (!this.failure) this.failure = err;
    for (const p of this.queue.splice(0)) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(err);
    }
    this.socket?.destroy();
  }

  /** Closes the socket at once; pending commands reject. */
  disconnect(): void {
    this.closed = true;
    this.fail(new RedisConnectionError('client closed'));
  }

  /** Waits for every pending reply (at most `timeoutMs`), then closes. */
  async close(timeoutMs = 1000): Promise<void> {
    if (this.queue.length && !this.failure) {
      const last = new Promise<void>((resolve) => {
        const tail = this.queue[this.queue.length - 1];
        const { resolve: r, reject: j } = tail;
        tail.resolve = (v) => {
          r(v);
          resolve();
        };
        tail.reject = (e) => {
          j(e);
          resolve();
        };
      });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([last, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
      if (timer) clearTimeout(timer);
    }
    this.disconnect();
  }
}

function safeUrl(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

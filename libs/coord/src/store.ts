import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  ConflictError,
  InvalidError,
  isRetryable,
  Keyspace,
  NotFoundError,
  UnavailableError,
} from '@coordbus/envelope';
import { COORD_INBOX_MAX, COORD_MAX_MESSAGE_BYTES } from '@coordbus/config';
import { checkResource, checkSessionId, DEFAULT_SESSION_TTL_S } from './config';
import { FileMirror } from './file-mirror';
import { CoordRedis, RedisConnectionError, RedisTimeoutError } from './resp-client';
import { evalCommand, LuaCommand } from '@coordbus/lua';
import { COORD_COMMANDS } from './commands';
import { ORDER_ACTIONS } from './types';
import {
  DispatchOrder,
  EvictResult,
  HeartbeatResult,
  InboxMessage,
  LockRecord,
  OrderAction,
  OrderState,
  LockResult,
  PeerRecord,
  RegisterInput,
  RegisterResult,
  RemoveResult,
  SessionRecord,
  SessionStatus,
} from './types';

export interface CoordStoreOptions {
  keyspace: Keyspace;
  /** `source` of the events this store writes (default `coord`). */
  source?: string;
  /**
   * The caller's own session TTL in ms, for DISPLAY only: `live` in peers/status is judged with it
   * when given. Who may steal, the heartbeat event rule and the cull always use the deployment's
   * TTL stored in Redis ({@link CoordStore.sessionTtl}), read inside the scripts.
   */
  displayTtlMs?: number;
  /** Approximate safety cap of the coord events stream (default 1 000 000; consumers trim below it ack-aware). */
  eventsMaxLen?: number;
  /** Dual-write of the COORD_ROOT file layout, when set. */
  mirror?: FileMirror;
  /** Called when the file mirror fails (Redis already committed, so the op still succeeds). */
  onMirrorError?: (err: Error) => void;
  /** Most bytes a message body may have (`COORD_MAX_MESSAGE_BYTES`, default 1 MiB). */
  maxMessageBytes?: number;
  /** Most messages an inbox may hold before sends to it are refused (`COORD_INBOX_MAX`, default 10 000). */
  maxInboxDepth?: number;
}

/** Messages one `recv` returns unless told otherwise: bounded so any inbox is readable in one reply. */
export const DEFAULT_RECV_LIMIT = 100;
export const MAX_RECV_LIMIT = 10_000;

const C = COORD_COMMANDS;

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

function random16(): string {
  const bytes = randomBytes(16);
  let out = '';
  for (let i = 0; i < 16; i++) out += CROCKFORD[bytes[i] & 31];
  return out;
}

function toRecord(flat: unknown): Record<string, string> {
  const a = flat as string[];
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < a.length; i += 2) out[a[i]] = a[i + 1];
  return out;
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined || text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function sessionFrom(h: Record<string, string>): SessionRecord {
  return {
    session_id: h.session_id,
    pid: Number(h.pid),
    host: h.host ?? '',
    role: h.role ?? '',
    task: h.task ?? '',
    blob: parseJson(h.blob),
    phase: h.phase ? h.phase : null,
    registered_at: h.registered_at,
    last_heartbeat: h.last_heartbeat,
  };
}

function lockFrom(h: Record<string, string>): LockRecord {
  return {
    resource: h.resource,
    owner_session_id: h.owner_session_id,
    owner_pid: Number(h.owner_pid),
    acquired_at: h.acquired_at,
    expires_at: h.expires_at ? h.expires_at : null,
    reason: h.reason ?? '',
  };
}

function orderFrom(h: Record<string, string>): DispatchOrder {
  return {
    order_id: h.order_id,
    assignee: h.assignee,
    ticket: h.ticket,
    issued_by: h.issued_by,
    issued_at: h.issued_at,
    // Orders issued before order states existed are pending.
    state: (h.state || 'pending') as OrderState,
    state_at: h.state_at || h.issued_at,
    note: h.note ? h.note : null,
  };
}

/**
 * Coord state in Redis — sessions, locks, inboxes, dispatch orders — where every state change and
 * its typed coord event (`Schemas.coordEvent` on `keyspace.coordEvents`) are written by ONE Lua
 * script, so they commit together or not at all. All keys come from `keyspace.coordKey(...)` and
 * share the `{coord}` hash tag with the events stream (one cluster slot).
 *
 * Works with any {@link CoordRedis}: an ioredis client (services) or the tiny RespClient (the
 * `coord` CLI). Failures to reach Redis surface as UnavailableError; conflicts as ConflictError
 * (naming the owner in `details.owner`); unknown sessions/locks as NotFoundError.
 *
 * Clock: every timestamp and every liveness judgement uses the Redis server clock (`TIME`), so
 * writers on different hosts agree. tx_ids are made inside the scripts and increase strictly
 * across all writers (see commands/includes/prelude.lua).
 */
export class CoordStore {
  readonly keyspace: Keyspace;
  readonly source: string;
  readonly displayTtlMs?: number;
  private readonly eventsMaxLen: number;
  private readonly mirror?: FileMirror;
  private readonly onMirrorError: (err: Error) => void;
  readonly maxMessageBytes: number;
  readonly maxInboxDepth: number;

  constructor(
    private readonly redis: CoordRedis,
    options: CoordStoreOptions,
  ) {
    this.keyspace = options.keyspace;
    this.source = options.source ?? 'coord';
    this.displayTtlMs = options.displayTtlMs;
    this.eventsMaxLen = options.eventsMaxLen ?? 1_000_000;
    this.mirror = options.mirror;
    this.onMirrorError = options.onMirrorError ?? (() => undefined);
    this.maxMessageBytes = options.maxMessageBytes ?? COORD_MAX_MESSAGE_BYTES.default;
    this.maxInboxDepth = options.maxInboxDepth ?? COORD_INBOX_MAX.default;
  }

  // ---- keys ----------------------------------------------------------------------------------

  /** The prefix every coord key starts with (`<ns>:coord:{coord}:`). */
  get prefix(): string {
    return this.keyspace.coordKey('');
  }
  sessionKey(id: string): string {
    return this.keyspace.coordKey(`session:${id}`);
  }
  /** Sorted set of session ids scored by last heartbeat (ms, Redis clock). */
  get sessionsKey(): string {
    return this.keyspace.coordKey('sessions');
  }
  sessionLocksKey(id: string): string {
    return this.keyspace.coordKey(`session-locks:${id}`);
  }
  lockKey(resource: string): string {
    return this.keyspace.coordKey(`lock:${resource}`);
  }
  get locksKey(): string {
    return this.keyspace.coordKey('locks');
  }
  inboxKey(id: string): string {
    return this.keyspace.coordKey(`inbox:${id}`);
  }
  dispatchKey(orderId: string): string {
    return this.keyspace.coordKey(`dispatch:${orderId}`);
  }
  get dispatchesKey(): string {
    return this.keyspace.coordKey('dispatches');
  }
  get seqKey(): string {
    return this.keyspace.coordKey('tx-seq');
  }
  /** Hash of deployment settings kept with the coord state: `session_ttl_ms`. */
  get configKey(): string {
    return this.keyspace.coordKey('config');
  }
  /** Zset of an assignee's orders not yet done or rejected, scored by issue time. */
  openOrdersKey(assignee: string): string {
    return this.keyspace.coordKey(`orders-open:${assignee}`);
  }

  // ---- deployment settings -------------------------------------------------------------------

  /** The deployment's session TTL in ms (the stored one; 300 s when none was ever set). */
  async sessionTtl(): Promise<number> {
    const raw = (await this.call('HGET', this.configKey, 'session_ttl_ms')) as string | null;
    const ms = Number(raw);
    return raw && Number.isFinite(ms) && ms > 0 ? ms : DEFAULT_SESSION_TTL_S * 1000;
  }

  /** Whether a session TTL has been stored (set or seeded). */
  async sessionTtlIsSet(): Promise<boolean> {
    return Number(await this.call('HEXISTS', this.configKey, 'session_ttl_ms')) === 1;
  }

  /** Sets the deployment's session TTL (`coordbus config set session-ttl`); takes effect at once everywhere. */
  async setSessionTtl(ms: number): Promise<void> {
    await this.call('HSET', this.configKey, 'session_ttl_ms', String(checkTtl(ms)));
  }

  /**
   * Stores `ms` as the session TTL only when none is stored yet (a deployment's first start seeds
   * it from COORD_SESSION_TTL); returns whether it did. A later `config set` is never undone.
   */
  async seedSessionTtl(ms: number): Promise<boolean> {
    return Number(await this.call('HSETNX', this.configKey, 'session_ttl_ms', String(checkTtl(ms)))) === 1;
  }

  // ---- sessions ------------------------------------------------------------------------------

  /**
   * Registers a session. Idempotent on (host, pid, session_id): repeating it refreshes the record
   * (role/task/blob) and resets last_heartbeat without an event; the first registration of a
   * triple writes `session.register`.
   */
  async register(input: RegisterInput): Promise<RegisterResult> {
    const sid = checkSessionId(input.sessionId);
    const blob = input.blob === undefined ? 'null' : JSON.stringify(input.blob);
    const r = (await this.script(
      C.register,
      [this.sessionKey(sid), this.sessionsKey],
      [sid, input.host, String(input.pid), input.role ?? '', input.task ?? '', blob],
    )) as [string, string, string[]];
    const session = sessionFrom(toRecord(r[2]));
    this.mirrored(() => this.mirror?.writeSession(session));
    return { status: r[0] as RegisterResult['status'], session, txId: r[1] || undefined };
  }

  /**
   * Advances last_heartbeat (and the phase, when given). Writes `session.heartbeat` only when
   * something changed: the phase differs, or the previous heartbeat is at least TTL/3 old.
   * @throws NotFoundError when the session is not registered.
   */
  async heartbeat(sessionId: string, options: { phase?: string } = {}): Promise<HeartbeatResult> {
    const sid = checkSessionId(sessionId);
    const r = (await this.script(
      C.heartbeat,
      [this.sessionKey(sid), this.sessionsKey],
      [sid, options.phase ?? '', options.phase === undefined ? '0' : '1'],
    )) as [string, string, string[]];
    if (r[0] === 'missing') throw new NotFoundError(`session ${sid} is not registered`, { session: sid });
    const session = sessionFrom(toRecord(r[2]));
    this.mirrored(() => this.mirror?.writeSession(session));
    return { session, emitted: r[1] !== '', txId: r[1] || undefined };
  }

  /**
   * Deregisters a session: `session.dereg` with `reason` (default `explicit`), then `lock.release`
   * reason `owner-dereg` for every lock it held.
   * @throws NotFoundError when the session is not registered.
   */
  async dereg(sessionId: string, reason = 'explicit'): Promise<RemoveResult> {
    const sid = checkSessionId(sessionId);
    const r = await this.remove(sid, reason || 'explicit', 'owner-dereg', '', undefined);
    if (r[0] === 'missing') throw new NotFoundError(`session ${sid} is not registered`, { session: sid });
    return this.removed(r);
  }

  /**
   * The sentinel's cull, exactly once across replicas: one script checks that the session still
   * exists and that its last heartbeat is older than the deployment's session TTL (read by the
   * script; on the Redis clock, or `nowMs` when given — for tests), and only then deletes it,
   * writes `session.dereg` reason `ttl-expired` and `lock.release` reason `owner-evicted` for each
   * lock it held. Otherwise it changes nothing. Concurrent callers: exactly one gets `evicted: true`.
   */
  async evictIfExpired(sessionId: string, nowMs?: number): Promise<EvictResult> {
    const r = await this.remove(sessionId, 'ttl-expired', 'owner-evicted', '1', nowMs);
    if (r[0] === 'missing') return { evicted: false, reason: 'missing' };
    if (r[0] === 'live') return { evicted: false, reason: 'live', lastHeartbeatMs: Number(r[1]) };
    return { evicted: true, ...this.removed(r) };
  }

  /**
   * Every registered session, oldest heartbeat first, with liveness against the display TTL when
   * the store has one, else the deployment's, and its open order count.
   */
  async listSessions(): Promise<PeerRecord[]> {
    return (await this.listSessionsWithTtl()).peers;
  }

  private async listSessionsWithTtl(): Promise<{ peers: PeerRecord[]; ttlMs: number }> {
    const [now, hashes, storedTtl, counts] = (await this.script(
      C.list,
      [this.sessionsKey],
      [this.keyspace.coordKey('session:'), this.configKey, this.keyspace.coordKey('orders-open:')],
      { bare: true },
    )) as [string, string[][], string, number[]];
    const nowMs = Number(now);
    const ttlMs = Number(storedTtl) > 0 ? Number(storedTtl) : DEFAULT_SESSION_TTL_S * 1000;
    const judge = this.displayTtlMs ?? ttlMs;
    const peers = hashes.map((h, i) => {
      const rec = toRecord(h);
      const age = Math.max(0, nowMs - Number(rec.last_heartbeat_ms));
      return { ...sessionFrom(rec), live: age <= judge, age_ms: age, open_orders: Number(counts[i] ?? 0) };
    });
    return { peers, ttlMs };
  }

  /** `peers [--live]`: {@link listSessions}, optionally only the live ones. */
  async peers(options: { live?: boolean } = {}): Promise<PeerRecord[]> {
    const all = await this.listSessions();
    return options.live ? all.filter((p) => p.live) : all;
  }

  /**
   * Ids of sessions whose last heartbeat is older than the deployment's session TTL (Redis clock,
   * or `nowMs`), oldest first — candidates for {@link evictIfExpired}, which re-checks atomically.
   */
  async expiredSessions(nowMs?: number): Promise<string[]> {
    const ttlMs = await this.sessionTtl();
    const now = nowMs ?? (await this.redisNowMs());
    return (await this.redis.call('ZRANGEBYSCORE', this.sessionsKey, '-inf', `(${now - ttlMs}`)) as string[];
  }

  /** One session's record, or null. */
  async getSession(sessionId: string): Promise<SessionRecord | null> {
    const h = toRecord(await this.call('HGETALL', this.sessionKey(sessionId)));
    return h.session_id ? sessionFrom(h) : null;
  }

  // ---- locks ---------------------------------------------------------------------------------

  /**
   * Takes `resource` — a name or a glob reservation (`src/**`) — for the session. Already held by
   * it: refreshes expiry/reason (`held`, no event). Held by another session, or overlapping a glob
   * held by one either way: ConflictError naming the owner (`details.owner`) and the lock that
   * blocks (`details.blocking`). A lock past its `--ttl` expiry is released (`lock.release` reason
   * `expired`) and taken. A caller with no session record is registered first (auto-register,
   * `autoRegistered: true`), so its locks are culled with it.
   */
  lock(
    sessionId: string,
    resource: string,
    options: { ttlMs?: number; reason?: string; pid?: number; host?: string } = {},
  ): Promise<LockResult> {
    return this.acquire('lock', sessionId, resource, options);
  }

  /**
   * Takes `resource` from its owner(s) when no owner is live (no session, or heartbeat older than
   * the deployment's session TTL — never the caller's), or always with `force`. Each old owner
   * gets `lock.release` reason `stolen`. A live owner without `force`: ConflictError naming it.
   */
  steal(
    sessionId: string,
    resource: string,
    options: { force?: boolean; reason?: string; pid?: number; ttlMs?: number; host?: string } = {},
  ): Promise<LockResult> {
    return this.acquire(options.force ? 'force' : 'steal', sessionId, resource, options);
  }

  /**
   * Releases the session's lock (`lock.release` reason `unlock`).
   * @throws NotFoundError when nothing holds it; ConflictError (naming the owner) when another session does.
   */
  async unlock(sessionId: string, resource: string): Promise<{ txId: string }> {
    const sid = checkSessionId(sessionId);
    const res = checkResource(resource);
    const r = (await this.script(C.unlock, [this.lockKey(res)], [sid, res])) as string[];
    if (r[0] === 'missing') throw new NotFoundError(`lock ${res} is not held`, { resource: res });
    if (r[0] === 'not-owner') {
      throw new ConflictError(`lock ${res} is held by ${r[1]}, not by ${sid}: refusing to unlock`, {
        resource: res,
        owner: r[1],
      });
    }
    this.mirrored(() => this.mirror?.removeLock(res));
    return { txId: r[1] };
  }

  /**
   * Releases `resource` whoever holds it (`lock.release` reason `forced`): an operator freeing a
   * dead or stuck session's lock. With `expectedOwner`, refuses (ConflictError naming the owner)
   * when the lock has changed hands since.
   * @throws NotFoundError when nothing holds it.
   */
  async forceRelease(resource: string, expectedOwner?: string): Promise<{ txId: string; owner: string }> {
    const res = checkResource(resource);
    const expected = expectedOwner === undefined ? '' : checkSessionId(expectedOwner, 'owner');
    const r = (await this.script(C.forceRelease, [this.lockKey(res)], [res, expected])) as string[];
    if (r[0] === 'missing') throw new NotFoundError(`lock ${res} is not held`, { resource: res });
    if (r[0] === 'other-owner') {
      throw new ConflictError(`lock ${res} is now held by ${r[1]}, not ${expected}: nothing released`, {
        resource: res,
        owner: r[1],
      });
    }
    this.mirrored(() => this.mirror?.removeLock(res));
    return { txId: r[1], owner: r[2] };
  }

  /** Every held lock, oldest first (expired ones included, with their expires_at in the past). */
  async locks(): Promise<LockRecord[]> {
    const [, hashes] = (await this.script(C.list, [this.locksKey], [this.keyspace.coordKey('lock:')], {
      bare: true,
    })) as [string, string[][]];
    return hashes.map((h) => lockFrom(toRecord(h)));
  }

  // ---- inbox ---------------------------------------------------------------------------------

  /**
   * Delivers a message to `to`'s inbox and writes `inbox.deliver` (envelope only, not the body).
   * @throws NotFoundError when `to` is not registered (unless `allowUnknownPeer`).
   */
  async send(
    from: string,
    to: string,
    body: string,
    options: { kind?: string; subject?: string; allowUnknownPeer?: boolean } = {},
  ): Promise<{ message: InboxMessage; txId: string }> {
    const src = checkSessionId(from);
    const dst = checkSessionId(to, 'peer');
    const r = (await this.script(
      C.send,
      [this.inboxKey(dst), this.sessionKey(dst)],
      [
        src,
        dst,
        options.kind ?? 'message',
        options.subject ?? '',
        body,
        options.allowUnknownPeer ? '0' : '1',
        String(this.maxMessageBytes),
        String(this.maxInboxDepth),
      ],
    )) as string[];
    if (r[0] === 'missing') throw new NotFoundError(`peer ${dst} is not registered`, { peer: dst });
    if (r[0] === 'too_large') {
      throw new InvalidError(
        `message body is ${r[1]} bytes, over the ${this.maxMessageBytes}-byte limit (COORD_MAX_MESSAGE_BYTES)`,
        ['body: too large'],
      );
    }
    if (r[0] === 'full') {
      throw new ConflictError(
        `inbox of ${dst} is full (${r[1]} messages, limit ${this.maxInboxDepth}: COORD_INBOX_MAX); not sent`,
        { peer: dst, depth: Number(r[1]), limit: this.maxInboxDepth },
      );
    }
    const message = JSON.parse(r[3]) as InboxMessage;
    this.mirrored(() => this.mirror?.writeMessage(message));
    return { message, txId: r[2] };
  }

  /** The oldest `limit` messages of the session's inbox, taking nothing. */
  async inbox(sessionId: string, options: { limit?: number } = {}): Promise<InboxMessage[]> {
    return (await this.page(checkSessionId(sessionId), options.limit)).map(parseMessage);
  }

  /**
   * At-least-once take of the oldest `limit` messages: reads a page, hands it to `deliver` (the
   * CLI writes it out), and only once that resolved removes exactly those messages. A reader that
   * fails or gives up before then removes nothing; one that dies after `deliver` sees the page
   * again (at least once, never lost). [] when empty.
   */
  async drain(
    sessionId: string,
    options: { limit?: number; deliver?: (messages: InboxMessage[]) => Promise<void> | void } = {},
  ): Promise<InboxMessage[]> {
    const sid = checkSessionId(sessionId);
    const raws = await this.page(sid, options.limit);
    const messages = raws.map(parseMessage);
    if (!raws.length) return messages;
    await options.deliver?.(messages);
    await this.script(C.ack, [this.inboxKey(sid)], raws, { bare: true });
    this.mirrored(() => messages.forEach((m) => this.mirror?.removeMessage(m)));
    return messages;
  }

  /**
   * Blocks until the inbox holds a message (a push from the server, not polling), then takes a
   * page like {@link drain}. Resolves [] after `timeoutMs` (0 = wait forever). The wait is
   * BLMOVE of the inbox onto itself: it returns when a message is there and moves nothing, so a
   * reader that gives up while waiting loses nothing. Blocks the connection: give it its own.
   */
  async follow(
    sessionId: string,
    timeoutMs = 0,
    options: { limit?: number; deliver?: (messages: InboxMessage[]) => Promise<void> | void } = {},
  ): Promise<InboxMessage[]> {
    const key = this.inboxKey(checkSessionId(sessionId));
    const woke = await this.call('BLMOVE', key, key, 'LEFT', 'LEFT', (timeoutMs / 1000).toFixed(3));
    if (woke === null) return [];
    return this.drain(sessionId, options);
  }

  private async page(sid: string, limit = DEFAULT_RECV_LIMIT): Promise<string[]> {
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_RECV_LIMIT) {
      throw new InvalidError(`limit must be an integer from 1 to ${MAX_RECV_LIMIT} (got ${limit})`, [
        'limit: 1..' + MAX_RECV_LIMIT,
      ]);
    }
    return (await this.call('LRANGE', this.inboxKey(sid), 0, limit - 1)) as string[];
  }

  // ---- dispatch ------------------------------------------------------------------------------

  /**
   * Issues a work order to `assignee` (`dispatch.issue`). `orderId` defaults to a fresh ULID.
   * Re-issuing an identical order is a no-op (`issued: false`).
   * @throws ConflictError when `orderId` exists with a different assignee or ticket.
   */
  async dispatch(
    issuer: string,
    assignee: string,
    ticket: string,
    orderId?: string,
  ): Promise<{ order: DispatchOrder; issued: boolean; txId?: string }> {
    const by = checkSessionId(issuer);
    const to = checkSessionId(assignee, 'assignee');
    if (!ticket) throw new InvalidError('dispatch needs a ticket', ['ticket: required']);
    if (orderId !== undefined) checkSessionId(orderId, 'order id');
    const r = (await this.script(
      C.dispatch,
      [this.dispatchKey(orderId ?? ''), this.dispatchesKey],
      [orderId ?? '', to, ticket, by],
    )) as [string, string, string[]];
    const order = orderFrom(toRecord(r[2]));
    if (r[0] === 'conflict') {
      throw new ConflictError(
        `order ${order.order_id} already exists for ${order.assignee} (${order.ticket})`,
        { order },
      );
    }
    if (r[0] === 'issued') this.mirrored(() => this.mirror?.writeDispatch(order));
    return { order, issued: r[0] === 'issued', txId: r[1] || undefined };
  }

  /** Every dispatch order, oldest first. */
  async dispatches(): Promise<DispatchOrder[]> {
    return this.listOrders(this.dispatchesKey);
  }

  /**
   * `coord orders`: the assignee's orders not yet done or rejected (pending or ack), oldest first;
   * with `all`, every order ever issued to it, in any state.
   */
  async orders(assignee: string, options: { all?: boolean } = {}): Promise<DispatchOrder[]> {
    const to = checkSessionId(assignee, 'assignee');
    if (options.all) return (await this.dispatches()).filter((o) => o.assignee === to);
    return this.listOrders(this.openOrdersKey(to));
  }

  /** One order, or null. */
  async getOrder(orderId: string): Promise<DispatchOrder | null> {
    const h = toRecord(await this.call('HGETALL', this.dispatchKey(checkSessionId(orderId, 'order id'))));
    return h.order_id ? orderFrom(h) : null;
  }

  /**
   * `coord order ack|done|reject <id>`: the assignee moves its order on (pending -> ack -> done,
   * or reject), writing `dispatch.<action>` with the note. Repeating the current step changes
   * nothing (`moved: false`).
   * @throws NotFoundError (no such order), ConflictError (not the assignee, or the order is past
   * that step: done and reject are final), InvalidError (unknown action).
   */
  async order(
    sessionId: string,
    orderId: string,
    action: OrderAction,
    note?: string,
  ): Promise<{ order: DispatchOrder; moved: boolean; txId?: string }> {
    const sid = checkSessionId(sessionId);
    const oid = checkSessionId(orderId, 'order id');
    if (!ORDER_ACTIONS.includes(action)) {
      throw new InvalidError(
        `unknown order action ${JSON.stringify(action)}: one of ${ORDER_ACTIONS.join(', ')}`,
        [`action: one of ${ORDER_ACTIONS.join(', ')}`],
      );
    }
    const r = (await this.script(C.order, [this.dispatchKey(oid)], [oid, action, sid, note ?? ''])) as [
      string,
      string,
      string[]?,
    ];
    if (r[0] === 'missing') throw new NotFoundError(`order ${oid} does not exist`, { order_id: oid });
    if (r[0] === 'not-assignee') {
      throw new ConflictError(`order ${oid} is assigned to ${r[1]}, not ${sid}`, {
        order_id: oid,
        owner: r[1],
      });
    }
    if (r[0] === 'refused') {
      throw new ConflictError(`order ${oid} is ${r[1]}: cannot ${action} it`, { order_id: oid, state: r[1] });
    }
    const order = orderFrom(toRecord(r[2]));
    if (r[0] === 'moved') this.mirrored(() => this.mirror?.writeDispatch(order));
    return { order, moved: r[0] === 'moved', txId: r[1] || undefined };
  }

  private async listOrders(zset: string): Promise<DispatchOrder[]> {
    const [, hashes] = (await this.script(C.list, [zset], [this.keyspace.coordKey('dispatch:')], {
      bare: true,
    })) as [string, string[][]];
    return hashes.map((h) => orderFrom(toRecord(h)));
  }

  // ---- status --------------------------------------------------------------------------------

  /** The session's own view: its record and liveness, locks it holds, inbox depth, peer counts. */
  async status(sessionId: string): Promise<SessionStatus> {
    const sid = checkSessionId(sessionId);
    const [{ peers, ttlMs }, locks, depth, orders] = await Promise.all([
      this.listSessionsWithTtl(),
      this.locks(),
      this.call('LLEN', this.inboxKey(sid)),
      this.orders(sid),
    ]);
    return {
      session_id: sid,
      session: peers.find((p) => p.session_id === sid) ?? null,
      locks: locks.filter((l) => l.owner_session_id === sid),
      inbox_depth: Number(depth),
      peers: { total: peers.length, live: peers.filter((p) => p.live).length },
      orders,
      session_ttl_s: ttlMs / 1000,
      ...(this.displayTtlMs !== undefined && this.displayTtlMs !== ttlMs
        ? { display_ttl_s: this.displayTtlMs / 1000 }
        : {}),
    };
  }

  // ---- internals -----------------------------------------------------------------------------

  private async acquire(
    mode: 'lock' | 'steal' | 'force',
    sessionId: string,
    resource: string,
    options: { ttlMs?: number; reason?: string; pid?: number; host?: string },
  ): Promise<LockResult> {
    const sid = checkSessionId(sessionId);
    const res = checkResource(resource);
    if (options.ttlMs !== undefined && (!Number.isFinite(options.ttlMs) || options.ttlMs <= 0)) {
      throw new InvalidError(`lock ttl must be a positive duration (got ${options.ttlMs} ms)`, [
        'ttl: positive',
      ]);
    }
    const r = (await this.script(
      C.lock,
      [this.lockKey(res), this.locksKey, this.sessionLocksKey(sid)],
      [
        sid,
        String(options.pid ?? process.pid),
        res,
        options.ttlMs === undefined ? '' : String(Math.ceil(options.ttlMs)),
        options.reason ?? '',
        mode,
        options.host ?? hostname(),
      ],
    )) as [string, string, string[], string?, string?];
    const lock = lockFrom(toRecord(r[2]));
    if (r[0] === 'conflict') {
      const live = r[3] === '1';
      const blocking = r[4] ?? res;
      const via = blocking === res ? '' : ` (via ${blocking})`;
      const why = mode === 'lock' ? '' : live ? ' (owner is live; --force to take it anyway)' : '';
      throw new ConflictError(`lock ${res} is held by ${r[1]}${via}${why}`, {
        resource: res,
        owner: r[1],
        owner_live: live,
        blocking,
        lock,
      });
    }
    this.mirrored(() => this.mirror?.writeLock(lock));
    const stolen = r[3] ? r[3] : undefined;
    return {
      status: r[0] as LockResult['status'],
      lock,
      stolenFrom: stolen,
      autoRegistered: r[4] === '1' || undefined,
      txId: r[1] || undefined,
    };
  }

  private remove(
    sid: string,
    reason: string,
    lockReason: string,
    cull: '1' | '',
    nowMs: number | undefined,
  ): Promise<unknown[]> {
    return this.script(
      C.dereg,
      [this.sessionKey(sid), this.sessionsKey, this.sessionLocksKey(sid)],
      [sid, reason, lockReason, cull],
      { nowMs },
    ) as Promise<unknown[]>;
  }

  private removed(r: unknown[]): RemoveResult {
    const session = sessionFrom(toRecord(r[4]));
    const releasedLocks = r[2] as string[];
    this.mirrored(() => {
      this.mirror?.removeSession(session.session_id);
      releasedLocks.forEach((l) => this.mirror?.removeLock(l));
    });
    return { session, releasedLocks, txIds: [r[1] as string, ...(r[3] as string[])] };
  }

  private async redisNowMs(): Promise<number> {
    const [s, us] = (await this.call('TIME')) as [string, string];
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  }

  private mirrored(fn: () => void): void {
    if (!this.mirror) return;
    try {
      fn();
    } catch (err) {
      this.onMirrorError(err as Error);
    }
  }

  private async call(command: string, ...args: (string | number)[]): Promise<unknown> {
    try {
      return await this.redis.call(command, ...args);
    } catch (err) {
      throw wrap(err);
    }
  }

  /**
   * Runs a coord command (EVALSHA, EVAL once on NOSCRIPT: the one way over a generic `call`).
   * Non-bare commands get the prelude's leading KEYS/ARGV (see commands/includes/prelude.lua).
   */
  private async script(
    command: LuaCommand,
    keys: string[],
    args: string[],
    options: { bare?: boolean; nowMs?: number } = {},
  ): Promise<unknown> {
    const allKeys = options.bare ? keys : [this.keyspace.coordEvents, this.seqKey, ...keys];
    const allArgs = options.bare
      ? args
      : [
          this.prefix,
          this.source,
          random16(),
          String(this.eventsMaxLen),
          options.nowMs === undefined ? '' : String(Math.floor(options.nowMs)),
          ...args,
        ];
    try {
      return await evalCommand(this.redis, command, allKeys, allArgs);
    } catch (err) {
      throw wrap(err);
    }
  }
}

function checkTtl(ms: number): number {
  if (!Number.isFinite(ms) || ms < 1 || ms > 30 * 86_400_000) {
    throw new InvalidError(`session TTL must be between 1ms and 30d (got ${ms} ms)`, [
      'session-ttl: a duration like 90s, 5m, 1h, up to 30d',
    ]);
  }
  return Math.round(ms);
}

function parseMessage(raw: string): InboxMessage {
  return JSON.parse(raw) as InboxMessage;
}

function wrap(err: unknown): Error {
  // Slow is not down: say which bound was hit, so a big reply is not blamed on Redis being away.
  if (err instanceof RedisTimeoutError) {
    return new UnavailableError(
      `redis did not reply in time: ${err.message} (a large reply? page it with --limit, or raise COORD_REDIS_TIMEOUT)`,
    );
  }
  if (err instanceof RedisConnectionError) return new UnavailableError(`redis unavailable: ${err.message}`);
  const e = err as Error & { code?: string };
  // A single-node client redirected by a cluster node: the configuration is wrong, not the op.
  if (e && /^(MOVED|ASK) \d+ /.test(String(e.message))) {
    return new InvalidError(`REDIS_URL names a node of a Redis Cluster (it answered ${e.message})`, [
      'REDIS_CLUSTER must be 1',
    ]);
  }
  // A cluster failing over or resharding a slot: Redis is unavailable for now, not the op invalid.
  if (e && /^(CLUSTERDOWN|TRYAGAIN)\b/.test(String(e.message))) {
    return new UnavailableError(`redis cluster unavailable: ${e.message}`);
  }
  // A lost or refused connection, a timeout, or Redis saying it cannot take writes now (OOM,
  // READONLY, LOADING, ...): the one classification every consumer loop uses too.
  if (isRetryable(e)) return new UnavailableError(`redis unavailable: ${e.message}`);
  return err instanceof Error ? err : new Error(String(err));
}

import { coordbusVersion, EXIT_CODES_HELP } from '../version';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { CoordbusError, EXIT_CODES, InvalidError, keyspaceFromEnv, NotFoundError } from '@coordbus/envelope';
import {
  buildEnvelope,
  coordVar,
  CoordStore,
  FanoutPublisher,
  FileMirror,
  inboxLimits,
  MAX_RECV_LIMIT,
  DEFAULT_RECV_LIMIT,
  normaliseResource,
  openCoordConnection,
  parseBoundedJson,
  ORDER_ACTIONS,
  type OrderAction,
  opContext,
  redisClusterFromEnv,
  resolveSessionId,
  sessionTtlMs,
  type CoordConnection,
  type DispatchOrder,
  type OpContext,
} from '@coordbus/coord';
import { COORD_VARS, EnvReader, formatDuration, parseDuration, SHARED_VARS } from '@coordbus/config';
import { parseArgs, seconds, UsageError } from './args';

/** Where a coord run writes; the CLI passes process streams, tests pass buffers. */
export interface CoordIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  cwd?: string;
}

export const COORD_USAGE = `usage: coord <op> [args] [--json]

ops:
  register [--task T] [--role R] [--blob JSON]   register this session (idempotent on host+pid+session)
  heartbeat [--phase P] [--ensure]               advance last_heartbeat (--ensure: register when missing)
  dereg [--reason R]                             deregister; releases this session's locks
  peers [--live]                                 list sessions (only live ones with --live)
  lock <resource> [--ttl S] [--reason R]         take a lock (held by another: exit 3, owner named)
  unlock <resource>                              release your lock (another's: exit 3; none: exit 4)
  steal <resource> [--force] [--reason R]        take a lock whose owner is not live (--force: even if live)
      (a path-like resource is made relative to the git worktree root; a glob such as src/** reserves
       every path it covers; an unregistered session is registered by its first lock)
  send <peer> <body> [--kind K] [--subject S]    put a message in a peer's inbox
  recv [--limit N] [--drain] [--follow] [--timeout S]
                                                 read the oldest N (default 100) inbox messages (JSON
                                                 array); --drain/--follow take them, removed only after
                                                 they were written out (repeat until [])
  dispatch <assignee> --ticket T [--order-id ID] issue a work order
  orders [--all] [--follow] [--timeout S]        your open orders, oldest first (--all: any state;
                                                 --follow: then each new one as it is issued)
  order ack|done|reject <order-id> [--note N]    move your order on (pending -> ack -> done, or reject)
  locks                                          list held locks
  config get [session-ttl]                       the deployment's settings stored with the coord state
  config set session-ttl <duration>              e.g. 300s, 5m (a bare number is seconds); takes effect
                                                 at once for every CLI, hook and sentinel
  status                                         your session, locks, inbox depth, peer counts

\`--\` ends options: \`coord send peer -- --json\` sends the body "--json".
${EXIT_CODES_HELP}
env: REDIS_URL (redis://127.0.0.1:6379), COORDBUS_NAMESPACE, COORD_SESSION_ID > CLAUDE_SESSION_ID,
     REDIS_CLUSTER=1 (REDIS_URL names one node of a Redis Cluster),
     COORD_SESSION_TTL (display only: liveness shown by peers/status; the deployment's TTL in Redis,
     \`coordbus config set session-ttl\`, decides steal and cull), COORD_ROOT (file mirror), COORD_PID (default: parent pid),
     COORD_REDIS_TIMEOUT (2 s), COORD_MAX_MESSAGE_BYTES (1 MiB), COORD_INBOX_MAX (10000),
     LOGS_COORD_DISABLED=1, LOGS_COORD_REDIS_TIMEOUT (0.25 s)
`;

const SPECS: Record<string, { bool?: string[]; value?: string[]; min: number; max: number; usage: string }> =
  {
    register: {
      value: ['task', 'role', 'blob'],
      min: 0,
      max: 0,
      usage: 'register [--task T] [--role R] [--blob JSON]',
    },
    heartbeat: {
      value: ['phase'],
      bool: ['ensure'],
      min: 0,
      max: 0,
      usage: 'heartbeat [--phase P] [--ensure]',
    },
    dereg: { value: ['reason'], min: 0, max: 0, usage: 'dereg [--reason R]' },
    peers: { bool: ['live'], min: 0, max: 0, usage: 'peers [--live]' },
    lock: { value: ['ttl', 'reason'], min: 1, max: 1, usage: 'lock <resource> [--ttl S] [--reason R]' },
    unlock: { min: 1, max: 1, usage: 'unlock <resource>' },
    steal: {
      bool: ['force'],
      value: ['reason', 'ttl'],
      min: 1,
      max: 1,
      usage: 'steal <resource> [--force] [--reason R]',
    },
    send: {
      value: ['kind', 'subject'],
      min: 2,
      max: 2,
      usage: 'send <peer> <body> [--kind K] [--subject S]',
    },
    recv: {
      bool: ['drain', 'follow'],
      value: ['timeout', 'limit'],
      min: 0,
      max: 0,
      usage: 'recv [--limit N] [--drain] [--follow] [--timeout S]',
    },
    dispatch: {
      value: ['ticket', 'order-id'],
      min: 1,
      max: 1,
      usage: 'dispatch <assignee> --ticket T [--order-id ID]',
    },
    orders: {
      bool: ['all', 'follow'],
      value: ['timeout'],
      min: 0,
      max: 0,
      usage: 'orders [--all] [--follow] [--timeout S]',
    },
    order: { value: ['note'], min: 2, max: 2, usage: 'order ack|done|reject <order-id> [--note N]' },
    locks: { min: 0, max: 0, usage: 'locks' },
    config: { min: 1, max: 3, usage: 'config get [session-ttl] | config set session-ttl <duration>' },
    status: { min: 0, max: 0, usage: 'status' },
  };

/** The first line of `.claude-task` in `cwd`, else "session" (what the SessionStart hook registers with). */
export function defaultTask(cwd: string): string {
  try {
    const line = readFileSync(`${cwd}/.claude-task`, 'utf8').split('\n')[0].trim();
    return line || 'session';
  } catch {
    return 'session';
  }
}

function recordedPid(env: NodeJS.ProcessEnv): number {
  return coordVar(env, COORD_VARS.COORD_PID) || process.ppid;
}

/** One op's lines of COORD_USAGE (its entry and continuation lines), then the shared footer. */
export function opHelp(op: string): string {
  const lines = COORD_USAGE.split('\n');
  const entry: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith(`  ${op} `) && lines[i] !== `  ${op}`) continue;
    entry.push(lines[i]);
    for (let j = i + 1; j < lines.length && /^ {4,}/.test(lines[j]); j++) entry.push(lines[j]);
  }
  return `usage: coord ${SPECS[op].usage} [--json]\n\n${entry.join('\n')}\n\n${EXIT_CODES_HELP}\n(coord --help: every op and the environment)\n`;
}

function line(out: NodeJS.WritableStream, text: string): void {
  out.write(`${text}\n`);
}

/**
 * Runs one coord operation (`argv` = everything after `coord`) and returns its exit code. Shared
 * by `bin/coord` (hot path, bundled without Nest/commander/class-validator) and `coordbus coord`.
 * Sends its own pre/post op envelopes to the ingest stream, bounded and fire-and-forget.
 */
export async function runCoord(argv: string[], io: CoordIo): Promise<number> {
  const env = io.env;
  // \`--\` ends options for every op: what follows is data (a body may be literally --json).
  const cut = argv.indexOf('--');
  const opts = cut < 0 ? argv : argv.slice(0, cut);
  const json = opts.includes('--json');
  const args = [...opts.filter((a) => a !== '--json'), ...(cut < 0 ? [] : argv.slice(cut))];
  const op = opts.find((a) => !a.startsWith('-'));
  const help = opts.includes('--help') || opts.includes('-h');
  if (opts[0] === '--version' || opts[0] === '-V') {
    line(io.stdout, coordbusVersion());
    return EXIT_CODES.ok;
  }
  if (help && op && op !== 'help' && Object.hasOwn(SPECS, op)) {
    io.stdout.write(opHelp(op));
    return EXIT_CODES.ok;
  }
  if (!op || help || op === 'help') {
    (op || args.length ? io.stdout : io.stderr).write(COORD_USAGE);
    return op === 'help' || help ? EXIT_CODES.ok : EXIT_CODES.usage;
  }

  let session = 'unknown';
  let sessionError: unknown;
  try {
    session = resolveSessionId(env);
  } catch (err) {
    sessionError = err;
  }
  let fan: FanoutPublisher | undefined;
  let ctx: OpContext | undefined;
  const started = process.hrtime.bigint();
  let client: CoordConnection | undefined;
  let code: number;
  try {
    const redisUrl = coordVar(env, SHARED_VARS.REDIS_URL);
    const keyspace = keyspaceFromEnv(env);
    const timeout = coordVar(env, COORD_VARS.COORD_REDIS_TIMEOUT);
    // One connection for the op and its envelopes: a connect is a visible share of a heartbeat.
    // REDIS_CLUSTER=1: REDIS_URL is one seed node; each command goes to its slot's owner.
    const cluster = redisClusterFromEnv(env);
    client = openCoordConnection(redisUrl, { connectTimeoutMs: timeout, commandTimeoutMs: timeout, cluster });
    ctx = opContext(args, session);
    if (ctx?.resource) ctx.resource = tryNormalise(ctx.resource, io.cwd ?? process.cwd());
    fan = FanoutPublisher.fromEnv(env, redisUrl, keyspace, client);
    if (ctx) fan.publish(buildEnvelope(ctx, 'pre'));
    if (sessionError) throw sessionError;
    // Own keys only: \`coord constructor\` is an unknown op, not Object's constructor.
    const spec = Object.hasOwn(SPECS, op) ? SPECS[op] : undefined;
    if (!spec) throw new UsageError(`unknown op ${JSON.stringify(op)}`);
    const parsed = parseArgs(args, spec);
    const pos = parsed.positional.slice(1);
    if (pos.length < spec.min || pos.length > spec.max) throw new UsageError(`usage: coord ${spec.usage}`);
    const store = new CoordStore(client, {
      keyspace,
      // The caller's own TTL only changes what peers/status SHOW as live.
      displayTtlMs: new EnvReader(env).isSet(COORD_VARS.COORD_SESSION_TTL) ? sessionTtlMs(env) : undefined,
      mirror: FileMirror.fromEnv(env),
      onMirrorError: (err) => line(io.stderr, `coord: warning: COORD_ROOT mirror failed: ${err.message}`),
      ...inboxLimits(env),
    });
    const result = await execute(op, pos, parsed.flags, store, session, client, io, timeout, json);
    if (result !== PRINTED) print(io.stdout, op, result, json);
    code = EXIT_CODES.ok;
  } catch (err) {
    code = report(io.stderr, err, json);
  }
  try {
    if (fan && ctx) {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      fan.publish(buildEnvelope(ctx, 'post', { durationMs, exitCode: code }));
      await fan.flush();
    }
  } finally {
    client?.disconnect();
  }
  return code;
}

/** The envelope names the lock as the op will; a name the op will refuse stays as typed. */
function tryNormalise(resource: string, cwd: string): string {
  try {
    return normaliseResource(resource, cwd);
  } catch {
    return resource;
  }
}

async function execute(
  op: string,
  pos: string[],
  f: Record<string, string | boolean>,
  store: CoordStore,
  session: string,
  client: CoordConnection,
  io: CoordIo,
  timeoutMs: number,
  json: boolean,
): Promise<unknown> {
  const str = (k: string): string | undefined => (typeof f[k] === 'string' ? (f[k] as string) : undefined);
  const pid = recordedPid(io.env);
  const cwd = io.cwd ?? process.cwd();
  switch (op) {
    case 'register': {
      const raw = str('blob');
      const blob = raw === undefined ? undefined : parseBoundedJson(raw, '--blob');
      return store.register({
        sessionId: session,
        host: hostname(),
        pid,
        role: str('role'),
        task: str('task'),
        blob,
      });
    }
    case 'heartbeat': {
      try {
        return await store.heartbeat(session, { phase: str('phase') });
      } catch (err) {
        if (!(err instanceof NotFoundError) || !f.ensure) throw err;
        // A session evicted while idle (or one that started before the hooks were installed)
        // comes back on its next activity.
        await store.register({ sessionId: session, host: hostname(), pid, task: defaultTask(cwd) });
        return store.heartbeat(session, { phase: str('phase') });
      }
    }
    case 'dereg':
      return store.dereg(session, str('reason') ?? 'explicit');
    case 'peers':
      return store.peers({ live: !!f.live });
    case 'lock':
      return store.lock(session, normaliseResource(pos[0], cwd), {
        ttlMs: seconds('ttl', f.ttl),
        reason: str('reason'),
        pid,
      });
    case 'unlock':
      return store.unlock(session, normaliseResource(pos[0], cwd));
    case 'steal':
      return store.steal(session, normaliseResource(pos[0], cwd), {
        force: !!f.force,
        reason: str('reason'),
        pid,
        ttlMs: seconds('ttl', f.ttl),
      });
    case 'send':
      return store.send(session, pos[0], pos[1], { kind: str('kind'), subject: str('subject') });
    case 'recv': {
      if (f.drain && f.follow) throw new UsageError('use --drain or --follow, not both');
      const timeout = seconds('timeout', f.timeout, true);
      if (timeout !== undefined && !f.follow) throw new UsageError('--timeout goes with --follow');
      const limit = recvLimit(f.limit);
      // Taken messages leave the inbox only once the page is written out (at least once).
      const deliver = async (messages: unknown[]) => {
        await new Promise<void>((done, fail) =>
          io.stdout.write(`${JSON.stringify(messages)}\n`, (err) => (err ? fail(err) : done())),
        );
      };
      const take = async (taken: Promise<unknown[]>) => ((await taken).length ? PRINTED : []);
      if (f.drain) return take(store.drain(session, { limit, deliver }));
      if (f.follow) {
        // BLPOP holds the connection: lift the reply bound past the requested wait.
        const wait = timeout ?? 0;
        const blocking = openCoordConnection(client.url, {
          connectTimeoutMs: timeoutMs,
          commandTimeoutMs: wait ? wait + timeoutMs : 0,
          cluster: redisClusterFromEnv(io.env),
        });
        try {
          return await take(
            new CoordStore(blocking, {
              keyspace: store.keyspace,
              mirror: FileMirror.fromEnv(io.env),
            }).follow(session, wait, { limit, deliver }),
          );
        } finally {
          blocking.disconnect();
        }
      }
      return store.inbox(session, { limit });
    }
    case 'dispatch': {
      const ticket = str('ticket');
      if (!ticket) throw new UsageError('usage: coord dispatch <assignee> --ticket T [--order-id ID]');
      return store.dispatch(session, pos[0], ticket, str('order-id'));
    }
    case 'orders': {
      const timeout = seconds('timeout', f.timeout, true);
      if (timeout !== undefined && !f.follow) throw new UsageError('--timeout goes with --follow');
      if (!f.follow) return store.orders(session, { all: !!f.all });
      return followOrders(store, session, !!f.all, timeout ?? 0, client, io, timeoutMs, json);
    }
    case 'order': {
      const action = pos[0] as OrderAction;
      if (!ORDER_ACTIONS.includes(action)) {
        throw new UsageError(
          `unknown order action ${JSON.stringify(pos[0])}: one of ${ORDER_ACTIONS.join(', ')}`,
        );
      }
      return store.order(session, pos[1], action, str('note'));
    }
    case 'locks':
      return store.locks();
    case 'config':
      return configOp(store, pos);
    case 'status':
      return store.status(session);
  }
  throw new UsageError(`unknown op ${op}`);
}

const CONFIG_KEYS = ['session-ttl'];

/** `config get|set`: the deployment settings kept in Redis beside the coord state. */
async function configOp(store: CoordStore, pos: string[]): Promise<unknown> {
  const [verb, key, value] = pos;
  const usage = 'usage: coord config get [session-ttl] | coord config set session-ttl <duration>';
  if (key !== undefined && !CONFIG_KEYS.includes(key)) {
    throw new UsageError(`unknown setting ${JSON.stringify(key)}: one of ${CONFIG_KEYS.join(', ')}`);
  }
  if (verb === 'set') {
    if (key === undefined || value === undefined) throw new UsageError(usage);
    const ms = parseDuration(value, 's');
    if (ms === undefined) {
      throw new InvalidError(
        `session-ttl must be a duration like 90s, 5m, 1h or a number of seconds (got ${JSON.stringify(value)})`,
        ['session-ttl: a duration'],
      );
    }
    await store.setSessionTtl(ms);
  } else if (verb !== 'get' || value !== undefined) {
    throw new UsageError(usage);
  }
  const [ms, stored] = await Promise.all([store.sessionTtl(), store.sessionTtlIsSet()]);
  return { session_ttl_ms: ms, session_ttl: formatDuration(ms), stored };
}

function orderLine(o: DispatchOrder): string {
  return `${o.order_id}  ${o.state.padEnd(7)}  ${o.ticket}  from ${o.issued_by}  issued ${o.issued_at}${o.note ? `  note ${JSON.stringify(o.note)}` : ''}`;
}

/**
 * `orders --follow`: prints the current orders, then each order issued to the session as its
 * `dispatch.issue` lands on the coord events stream (XREAD BLOCK: pushed, not polled), one line
 * (or one JSON object) each, until `waitMs` passes (0 = until interrupted). Returns undefined:
 * everything is printed as it comes.
 */
async function followOrders(
  store: CoordStore,
  session: string,
  all: boolean,
  waitMs: number,
  client: CoordConnection,
  io: CoordIo,
  timeoutMs: number,
  json: boolean,
): Promise<undefined> {
  const show = (o: DispatchOrder) => line(io.stdout, json ? JSON.stringify(o) : orderLine(o));
  // Read the stream's tail id first, so nothing issued between the listing and the wait is lost.
  const tail = (await client.call('XREVRANGE', store.keyspace.coordEvents, '+', '-', 'COUNT', 1)) as [
    string,
  ][];
  let last = tail.length ? tail[0][0] : '0-0';
  for (const o of await store.orders(session, { all })) show(o);
  const blocking = openCoordConnection(client.url, {
    connectTimeoutMs: timeoutMs,
    commandTimeoutMs: 0,
    cluster: redisClusterFromEnv(io.env),
  });
  const deadline = waitMs ? Date.now() + waitMs : Infinity;
  try {
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      const block = Number.isFinite(left) ? Math.max(1, Math.min(left, 5000)) : 5000;
      const r = (await blocking.call(
        'XREAD',
        'COUNT',
        100,
        'BLOCK',
        Math.ceil(block),
        'STREAMS',
        store.keyspace.coordEvents,
        last,
      )) as [string, [string, string[]][]][] | null;
      for (const [id, fields] of r?.[0]?.[1] ?? []) {
        last = id;
        const data = fields[fields.indexOf('data') + 1];
        const ev = JSON.parse(data ?? '{}') as {
          tx_kind?: string;
          payload?: { order_id?: string; assignee?: string };
        };
        if (ev.tx_kind !== 'dispatch.issue' || ev.payload?.assignee !== session) continue;
        const o = await store.getOrder(ev.payload.order_id ?? '');
        if (o) show(o);
      }
    }
  } finally {
    blocking.disconnect();
  }
}

/** \`execute\` wrote its own output (a taken page is written before it is acknowledged). */
const PRINTED = Symbol('printed');

function recvLimit(raw: string | boolean | undefined): number {
  if (raw === undefined) return DEFAULT_RECV_LIMIT;
  const n = Number(raw);
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || n < 1 || n > MAX_RECV_LIMIT) {
    throw new UsageError(
      `--limit must be a whole number from 1 to ${MAX_RECV_LIMIT} (got ${JSON.stringify(raw)})`,
    );
  }
  return n;
}

function print(out: NodeJS.WritableStream, op: string, result: unknown, json: boolean): void {
  if (op === 'orders' && result === undefined) return;
  if (json || op === 'recv') {
    line(out, JSON.stringify(result));
    return;
  }
  const r = result as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  switch (op) {
    case 'register':
      return line(
        out,
        `${r.status} ${r.session.session_id} (pid ${r.session.pid} on ${r.session.host}, task ${JSON.stringify(r.session.task)})`,
      );
    case 'heartbeat':
      return line(
        out,
        `heartbeat ${r.session.session_id} at ${r.session.last_heartbeat}${r.session.phase ? ` phase ${r.session.phase}` : ''}`,
      );
    case 'dereg':
      return line(
        out,
        `deregistered ${r.session.session_id}${r.releasedLocks.length ? `; released ${r.releasedLocks.join(', ')}` : ''}`,
      );
    case 'peers': {
      const peers = result as Array<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
      if (!peers.length) return line(out, 'no sessions');
      for (const p of peers) {
        line(
          out,
          `${p.live ? 'live ' : 'stale'} ${p.session_id}  pid ${p.pid}@${p.host}  ${p.role || '-'}  ${JSON.stringify(p.task)}  last ${p.last_heartbeat}${p.phase ? `  phase ${p.phase}` : ''}${p.open_orders ? `  orders ${p.open_orders} open` : ''}`,
        );
      }
      return;
    }
    case 'lock':
    case 'steal':
      return line(
        out,
        `${r.status === 'held' ? 'already held' : r.stolenFrom ? `stolen from ${r.stolenFrom}` : 'locked'} ${r.lock.resource}${r.lock.expires_at ? ` until ${r.lock.expires_at}` : ''}${r.autoRegistered ? ` (session ${r.lock.owner_session_id} registered by this lock)` : ''}`,
      );
    case 'unlock':
      return line(out, 'unlocked');
    case 'send':
      return line(out, `sent ${r.message.msg_id} to ${r.message.to_session}`);
    case 'dispatch':
      return line(
        out,
        `${r.issued ? 'issued' : 'already issued'} ${r.order.order_id} to ${r.order.assignee} (${r.order.ticket})`,
      );
    case 'config':
      return line(out, `session-ttl ${r.session_ttl}${r.stored ? '' : ' (default: never set)'}`);
    case 'orders': {
      const orders = result as DispatchOrder[];
      if (!orders.length) return line(out, 'no orders');
      for (const o of orders) line(out, orderLine(o));
      return;
    }
    case 'order':
      return line(
        out,
        `${r.moved ? '' : 'already '}${r.order.state} ${r.order.order_id} (${r.order.ticket})`,
      );
    case 'locks': {
      const locks = result as Array<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
      if (!locks.length) return line(out, 'no locks');
      for (const l of locks) {
        line(
          out,
          `${l.resource}  ${l.owner_session_id} (pid ${l.owner_pid})  since ${l.acquired_at}${l.expires_at ? `  until ${l.expires_at}` : ''}${l.reason ? `  ${l.reason}` : ''}`,
        );
      }
      return;
    }
    case 'status': {
      const s = r.session;
      line(
        out,
        `session ${r.session_id}: ${s ? `${s.live ? 'live' : 'stale'}, last heartbeat ${s.last_heartbeat}` : 'not registered'}`,
      );
      line(
        out,
        `locks: ${r.locks.length ? r.locks.map((l: { resource: string }) => l.resource).join(', ') : 'none'}`,
      );
      line(out, `inbox: ${r.inbox_depth} message(s)`);
      const orders = r.orders as DispatchOrder[];
      line(
        out,
        `orders: ${orders.length ? `${orders.filter((o) => o.state === 'pending').length} pending, ${orders.filter((o) => o.state === 'ack').length} acked (${orders.map((o) => `${o.order_id} ${o.ticket}`).join(', ')})` : 'none'}`,
      );
      return line(
        out,
        `peers: ${r.peers.live} live of ${r.peers.total} (session ttl ${r.session_ttl_s} s${r.display_ttl_s !== undefined ? `; shown with your COORD_SESSION_TTL ${r.display_ttl_s} s` : ''})`,
      );
    }
  }
}

function report(err: NodeJS.WritableStream, e: unknown, json: boolean): number {
  if (e instanceof UsageError) {
    line(
      err,
      json
        ? JSON.stringify({ error: { code: 'Usage', message: e.message } })
        : `coord: ${e.message}\n(coord --help for usage)`,
    );
    return EXIT_CODES.usage;
  }
  if (e instanceof CoordbusError) {
    line(err, json ? JSON.stringify({ error: e.toJSON() }) : `coord: ${e.message}`);
    return e.exitCode;
  }
  const message = e instanceof Error ? e.message : String(e);
  line(
    err,
    json ? JSON.stringify({ error: { code: 'Internal', message } }) : `coord: internal error: ${message}`,
  );
  return EXIT_CODES.Internal;
}

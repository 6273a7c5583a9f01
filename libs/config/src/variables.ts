import type { DurationUnit } from './duration';
import { formatDuration } from './duration';
import { SERVICES } from './services';

/**
 * Every environment variable a coordbus service reads, defined once with its parser, bounds,
 * default and meaning. Services and the CLI read them through `EnvReader.get`; the README's
 * configuration tables are rendered from these definitions (`npm run docs:config`).
 */
interface Common {
  name: string;
  doc: string;
  /** How the README shows a default that is computed (per service, from another variable). */
  defaultDoc?: string;
}
export interface IntVar extends Common {
  kind: 'int';
  default: number;
  min: number;
  max: number;
}
export interface DurationVar extends Common {
  kind: 'duration';
  /** Milliseconds. */
  default: number;
  minMs: number;
  maxMs: number;
  /** What a bare number means (`*_MS` variables: ms; `COORD_SESSION_TTL`: seconds). */
  bareUnit: DurationUnit;
  /** What the error message says instead of the generic duration wording. */
  expected?: string;
}
export interface BoolVar extends Common {
  kind: 'bool';
  default: boolean;
}
export interface StringVar extends Common {
  kind: 'string';
  default: string;
  pattern?: RegExp;
  expected?: string;
}
export interface OptionalVar extends Common {
  kind: 'optional';
  /** Checked only when set. */
  protocols?: readonly string[];
}
export interface EnumVar<T extends string = string> extends Common {
  kind: 'enum';
  values: readonly T[];
  default: T;
}
export interface UrlVar extends Common {
  kind: 'url';
  default: string;
  protocols: readonly string[];
}
/** A finite number, fractions allowed (`TAILER_THRESHOLD_MS`). */
export interface NumberVar extends Common {
  kind: 'number';
  default: number;
  min: number;
  max: number;
}
/**
 * A credential: `NAME`, or `NAME_FILE` naming a file that holds it (a mounted secret). The
 * services read it with the runtime's `EnvReader.secret`, which never shows the value.
 */
export interface SecretVar extends Common {
  kind: 'secret';
  minLength: number;
}
export type Var =
  IntVar | NumberVar | DurationVar | BoolVar | StringVar | OptionalVar | EnumVar | UrlVar | SecretVar;

export type ValueOf<V extends Var> = V extends IntVar | NumberVar | DurationVar
  ? number
  : V extends BoolVar
    ? boolean
    : V extends EnumVar<infer T>
      ? T
      : V extends OptionalVar | SecretVar
        ? string | undefined
        : string;

const MAX = Number.MAX_SAFE_INTEGER;
const int = (name: string, def: number, min: number, max: number, doc: string): IntVar => ({
  kind: 'int',
  name,
  default: def,
  min,
  max,
  doc,
});
const ms = (
  name: string,
  def: number,
  minMs: number,
  doc: string,
  extra: Partial<DurationVar> = {},
): DurationVar => ({
  kind: 'duration',
  name,
  default: def,
  minMs,
  maxMs: MAX,
  bareUnit: 'ms',
  doc,
  ...extra,
});
const bool = (name: string, def: boolean, doc: string): BoolVar => ({
  kind: 'bool',
  name,
  default: def,
  doc,
});

const NAME = /^[A-Za-z0-9_.:-]*$/;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const SENTINEL_SOURCES = ['event-manager', 'fs-poll'] as const;
export type SentinelSourceKind = (typeof SENTINEL_SOURCES)[number];

/** Read by every service (`baseConfig`). */
export const SHARED_VARS = {
  REDIS_URL: {
    kind: 'url',
    name: 'REDIS_URL',
    default: 'redis://127.0.0.1:6379',
    protocols: ['redis', 'rediss'],
    doc: 'Redis to use; `rediss://` for TLS, `redis://user:password@host` for ACLs',
  } as UrlVar,
  REDIS_CLUSTER: bool('REDIS_CLUSTER', false, '`1`: `REDIS_URL` names one seed node of a Redis Cluster'),
  COORDBUS_NAMESPACE: {
    kind: 'string',
    name: 'COORDBUS_NAMESPACE',
    default: '',
    pattern: NAME,
    expected: "letters, digits, '_', '.', ':' or '-'",
    doc: 'prefix of every key, stream and channel (empty keeps the seed names exactly)',
  } as StringVar,
  HTTP_PORT: {
    ...int('HTTP_PORT', 0, 0, 65535, '`/healthz`, `/readyz`, `/metrics` (0 picks a free port)'),
    defaultDoc: 'per service (see below)',
  },
  HTTP_HOST: {
    kind: 'string',
    name: 'HTTP_HOST',
    default: '127.0.0.1',
    doc: 'address the HTTP listener binds; loopback by default (the container image sets `0.0.0.0`, where the network is the boundary)',
  } as StringVar,
  LOG_LEVEL: {
    kind: 'enum',
    name: 'LOG_LEVEL',
    values: LOG_LEVELS,
    default: 'info',
    doc: 'pino level (JSON logs on stdout)',
  } as EnumVar<LogLevel>,
  COORDBUS_CONSUMER: {
    kind: 'string',
    name: 'COORDBUS_CONSUMER',
    default: '',
    pattern: /^[A-Za-z0-9_.:-]{1,200}$/,
    expected: "1-200 letters, digits, '_', '.', ':' or '-'",
    doc: 'consumer name of this replica in every consumer group',
    defaultDoc: '`<hostname>-<pid>`',
  } as StringVar,
  COORDBUS_MAX_ENTRY_BYTES: int(
    'COORDBUS_MAX_ENTRY_BYTES',
    64 * 1024,
    1024,
    64 * 1024 * 1024,
    'largest stream entry accepted; larger ones are dead-lettered',
  ),
  SHUTDOWN_TIMEOUT_MS: ms('SHUTDOWN_TIMEOUT_MS', 20_000, 100, 'how long a graceful stop (SIGTERM) may take'),
  STREAM_BATCH_SIZE: int('STREAM_BATCH_SIZE', 100, 1, 10_000, 'XREADGROUP COUNT per stream loop'),
  STREAM_CONCURRENCY: int('STREAM_CONCURRENCY', 64, 1, 10_000, 'handlers in flight per stream loop'),
  STREAM_MAX_DELIVERIES: int(
    'STREAM_MAX_DELIVERIES',
    5,
    1,
    1000,
    'deliveries before an entry is dead-lettered',
  ),
  STREAM_RECLAIM_IDLE_MS: ms(
    'STREAM_RECLAIM_IDLE_MS',
    30_000,
    100,
    'idle time before another replica reclaims a pending entry',
  ),
  STREAM_CONSUMER_IDLE_REMOVE: ms(
    'STREAM_CONSUMER_IDLE_REMOVE',
    3_600_000,
    0,
    'a consumer idle this long with no pending entries (a replica that is gone) is removed from the groups this service reads, checked about once a minute; `0` keeps them all',
  ),
} as const;

/**
 * The deployment's session TTL is stored in Redis (`coordbus config set session-ttl`); this
 * variable seeds it (the sentinel, when none is stored) and, given to `coord`, only changes what
 * peers/status show as live.
 */
export const COORD_SESSION_TTL: DurationVar = {
  kind: 'duration',
  name: 'COORD_SESSION_TTL',
  default: 300_000,
  minMs: 1,
  maxMs: 30 * 86_400_000,
  bareUnit: 's',
  expected: 'a positive number of seconds or a duration like 90s, 5m, 1h, up to 30d',
  doc: 'sentinel: seeds the stored session TTL (`coordbus config set session-ttl`) when none is stored; coord: display only (peers/status liveness)',
};

/** Read by whoever sends a coord message (the CLI, services using CoordStore): refused at the send. */
export const COORD_MAX_MESSAGE_BYTES: IntVar = {
  kind: 'int',
  name: 'COORD_MAX_MESSAGE_BYTES',
  default: 1_048_576,
  min: 1,
  max: 64 * 1_048_576,
  doc: 'most bytes of a `coord send` body; a larger one is refused (exit 7), nothing is delivered',
};
export const COORD_INBOX_MAX: IntVar = {
  kind: 'int',
  name: 'COORD_INBOX_MAX',
  default: 10_000,
  min: 1,
  max: 10_000_000,
  doc: "most messages one inbox holds; a send to a full inbox is refused (exit 3), the reader's inbox stays readable",
};

/** Every `coordbus` CLI command's bound on reaching Redis and on each reply (`coord` has COORD_REDIS_TIMEOUT). */
export const COORDBUS_REDIS_TIMEOUT: DurationVar = {
  kind: 'duration',
  name: 'COORDBUS_REDIS_TIMEOUT',
  default: 5_000,
  minMs: 1,
  maxMs: 600_000,
  bareUnit: 's',
  expected: 'a positive number of seconds or a duration like 500ms, 10s',
  doc: 'a `coordbus` command that cannot reach Redis, or gets no reply, within this fails with exit 5',
};

/** The job-coordinator's settings; the `coordbus jobs` CLI reads the ones it shares with it. */
export const JOBS_VARS = {
  JOBS_CONCURRENCY: int('JOBS_CONCURRENCY', 4, 1, 256, 'jobs one replica runs at once'),
  JOBS_CGROUP: bool(
    'JOBS_CGROUP',
    true,
    'each job in a cgroup v2 of its own, ended with it (where cgroup v2 is writable: root, a delegated unit, a container given its cgroup; else process groups and a descendant sweep); `0` turns it off',
  ),
  JOBS_NATIVE_SPAWN: bool(
    'JOBS_NATIVE_SPAWN',
    true,
    "start jobs from the replica with the spawn addon `npm run build` compiles where a C compiler is installed (no fork: nothing of the replica is copied, and a job joins its cgroup itself); `0`, or no addon, forks them from a small helper process through Node's child_process",
  ),
  JOBS_NICE: int(
    'JOBS_NICE',
    10,
    0,
    19,
    "CPU niceness of the replica's job processes and of the spawner process that forks them: background hook jobs yield the CPU to the agents and to coordination (never raised above the replica's own); `0` runs them at the replica's priority",
  ),
  JOBS_KILL_GRACE: ms('JOBS_KILL_GRACE', 5_000, 0, 'SIGTERM → SIGKILL grace on cancel or timeout', {
    maxMs: 600_000,
  }),
  JOBS_LOCK_DURATION: ms(
    'JOBS_LOCK_DURATION',
    30_000,
    1000,
    'BullMQ lock: a replica silent this long is stalled',
  ),
  JOBS_STALLED_INTERVAL: ms('JOBS_STALLED_INTERVAL', 15_000, 200, 'how often stalled jobs are looked for'),
  JOBS_RECONCILE_INTERVAL: ms(
    'JOBS_RECONCILE_INTERVAL',
    30_000,
    200,
    'the host reconcile pass (also run at boot)',
  ),
  JOBS_PRUNE_INTERVAL: ms(
    'JOBS_PRUNE_INTERVAL',
    10 * 60_000,
    0,
    'periodic retention, one replica at a time; 0 disables',
  ),
  JOBS_RETENTION: ms('JOBS_RETENTION', 7 * 86_400_000, 0, 'finished jobs older than this are removed'),
  JOBS_KEEP_LAST: int(
    'JOBS_KEEP_LAST',
    20,
    0,
    MAX,
    'newest finished jobs kept per worktree whatever their age',
  ),
  JOBS_STALE_RUNNING_AFTER: ms(
    'JOBS_STALE_RUNNING_AFTER',
    5 * 60_000,
    0,
    'a running job whose runner is gone this long is marked crashed',
  ),
  JOBS_SECRET_TTL: ms(
    'JOBS_SECRET_TTL',
    86_400_000,
    1000,
    "how long a queued job's secrets may wait in Redis",
  ),
  JOBS_LOG_MAX_RECORDS: int('JOBS_LOG_MAX_RECORDS', 100_000, 100, MAX, "cap of one job's log stream"),
  JOBS_LOG_LINE_MAX_BYTES: int(
    'JOBS_LOG_LINE_MAX_BYTES',
    16 * 1024,
    256,
    1024 * 1024,
    'bytes a stored job log line keeps; the rest is dropped with a marker',
  ),
  JOBS_LOG_MAX_BYTES: int(
    'JOBS_LOG_MAX_BYTES',
    16 * 1024 * 1024,
    0,
    MAX,
    'stored output per job; past it lines are counted on the job, not stored (0: no cap)',
  ),
  JOBS_SHUTDOWN_GRACE: ms(
    'JOBS_SHUTDOWN_GRACE',
    10_000,
    0,
    'on SIGTERM, running jobs get this long before they are cancelled',
  ),
  JOBS_WORKSPACE_ROOTS: {
    kind: 'string',
    name: 'JOBS_WORKSPACE_ROOTS',
    default: '',
    pattern: /^(\/[^:]*(:\/[^:]*)*)?$/,
    expected: 'absolute paths separated by ":"',
    defaultDoc: 'anywhere',
    doc: 'the only directories jobs may run in (a container sees only what is mounted); a job elsewhere is refused when submitted',
  } as StringVar,
} as const;

export const FANOUT_VARS = {
  FANOUT_REPLAY_MAXLEN: int(
    'FANOUT_REPLAY_MAXLEN',
    10_000,
    1,
    100_000_000,
    'approximate cap of `logs:stream:coord`',
  ),
  FANOUT_DEDUP_WINDOW_MS: ms(
    'FANOUT_DEDUP_WINDOW_MS',
    300_000,
    1000,
    'how long a fanned-out ingest id is remembered against redelivery',
  ),
  FANOUT_INGEST_HARD_CAP: int(
    'FANOUT_INGEST_HARD_CAP',
    1_000_000,
    1000,
    1_000_000_000,
    'the ingest stream is trimmed ack-aware, and never kept longer than this',
  ),
  FANOUT_TRIM_INTERVAL_MS: ms(
    'FANOUT_TRIM_INTERVAL_MS',
    5000,
    100,
    'time between ack-aware trims of the ingest stream',
  ),
  FANOUT_BATCH_SIZE: int('FANOUT_BATCH_SIZE', 200, 1, 10_000, 'most entries one read returns'),
  FANOUT_RECLAIM_IDLE_MS: ms(
    'FANOUT_RECLAIM_IDLE_MS',
    30_000,
    100,
    'entries pending this long on a dead replica are reclaimed',
  ),
} as const;

export const COORD_ROOT: OptionalVar = {
  kind: 'optional',
  name: 'COORD_ROOT',
  doc: 'the coord file root: `coord` also writes the file layout there (`sessions/`, `locks/`, `messages/`, `dispatch-orders/`); the sentinel diffs it with `fs-poll`',
};

export const SENTINEL_VARS = {
  SENTINEL_SOURCE: {
    kind: 'enum',
    name: 'SENTINEL_SOURCE',
    values: SENTINEL_SOURCES,
    default: 'event-manager',
    doc: '`event-manager` (the coord events stream) or `fs-poll` (diffs a file-based coord root)',
  } as EnumVar<SentinelSourceKind>,
  COORD_ROOT,
  SENTINEL_TICK_MS: int('SENTINEL_TICK_MS', 1000, 10, 600_000, 'pause between fs-poll scans (ms)'),
  SENTINEL_BRIDGE: bool(
    'SENTINEL_BRIDGE',
    false,
    'with fs-poll, publish what is seen to the coord events stream',
  ),
  SENTINEL_FS_STATE: {
    kind: 'optional',
    name: 'SENTINEL_FS_STATE',
    doc: "file keeping fs-poll's last committed snapshot across restarts",
  } as OptionalVar,
  SENTINEL_MAX_BATCH: int('SENTINEL_MAX_BATCH', 256, 1, 10_000, 'most events per poll'),
  COORD_SESSION_TTL,
  SENTINEL_CULL: bool('SENTINEL_CULL', true, 'run the liveness cull pass'),
  SENTINEL_CULL_INTERVAL_MS: {
    ...int('SENTINEL_CULL_INTERVAL_MS', 30_000, 50, 3_600_000, 'how often the cull pass runs (ms)'),
    defaultDoc: 'a tenth of the stored session TTL (re-read each pass), between 250 ms and 30 s',
  },
  SENTINEL_DEDUP_TTL: ms(
    'SENTINEL_DEDUP_TTL',
    7 * 86_400_000,
    1000,
    'how long a handled `(source, tx_id)` is remembered',
  ),
  SENTINEL_CLAIM_IDLE_MS: int(
    'SENTINEL_CLAIM_IDLE_MS',
    30_000,
    100,
    86_400_000,
    "a dead replica's pending events are reclaimed after this (ms)",
  ),
  SENTINEL_BLOCK_MS: int(
    'SENTINEL_BLOCK_MS',
    1000,
    10,
    60_000,
    'how long one stream poll waits for new events (ms)',
  ),
  SENTINEL_MAX_DELIVERIES: int(
    'SENTINEL_MAX_DELIVERIES',
    5,
    1,
    1000,
    'an event not handled after this many deliveries is dead-lettered',
  ),
  SENTINEL_OBSERVATIONS_MAXLEN: int(
    'SENTINEL_OBSERVATIONS_MAXLEN',
    1_000_000,
    1000,
    MAX,
    'approximate safety cap of the observations stream',
  ),
} as const;

export const ARCHIVIST_VARS = {
  ARCHIVIST_DATA_DIR: {
    kind: 'string',
    name: 'ARCHIVIST_DATA_DIR',
    default: './.coordbus-data/archive',
    doc: 'where the SQLite file lives',
  } as StringVar,
  DATABASE_URL: {
    kind: 'optional',
    name: 'DATABASE_URL',
    protocols: ['postgres', 'postgresql'],
    doc: 'PostgreSQL instead of SQLite when set (several replicas may share it)',
  } as OptionalVar,
  ARCHIVIST_PG_SCHEMA: {
    kind: 'string',
    name: 'ARCHIVIST_PG_SCHEMA',
    default: 'public',
    pattern: /^[a-z_][a-z0-9_]{0,62}$/,
    expected: 'a lower-case SQL identifier (letters, digits, _)',
    doc: 'PostgreSQL schema of the archive tables',
  } as StringVar,
  ARCHIVIST_BATCH_SIZE: int(
    'ARCHIVIST_BATCH_SIZE',
    500,
    1,
    5000,
    'most entries read and inserted per transaction',
  ),
  ARCHIVIST_RECLAIM_IDLE_MS: ms(
    'ARCHIVIST_RECLAIM_IDLE_MS',
    30_000,
    100,
    'entries pending this long on a dead replica are reclaimed',
  ),
  ARCHIVIST_RETENTION: {
    kind: 'string',
    name: 'ARCHIVIST_RETENTION',
    default: '',
    doc: 'comma-separated `<stream\\|*>=[<age>][/<rows>]` rules, e.g. `*=30d,telemetryEvents=7d/100000` (empty keeps everything)',
  } as StringVar,
  ARCHIVIST_RETENTION_INTERVAL: ms(
    'ARCHIVIST_RETENTION_INTERVAL',
    5 * 60_000,
    100,
    'time between retention passes',
  ),
  COORD_SESSION_TTL,
  CONSOLE_POLL_MS: ms('CONSOLE_POLL_MS', 250, 20, "how often the console's live feed reads the streams", {
    maxMs: 10_000,
  }),
  COORDBUS_API_TOKEN: {
    kind: 'secret',
    name: 'COORDBUS_API_TOKEN',
    minLength: 16,
    doc: 'read token of `/v1/*` and the console. Required whenever it is set, and always when `HTTP_HOST` is not loopback: such a listener with no token refuses every read (401, naming the variable)',
  } as SecretVar,
  COORDBUS_OPERATOR_TOKEN: {
    kind: 'secret',
    name: 'COORDBUS_OPERATOR_TOKEN',
    minLength: 16,
    doc: "the console's actions (send, dispatch, force-release, cancel, re-drive); also grants reads. Without it the console is read-only",
  } as SecretVar,
  ARCHIVIST_CONSOLE_DIR: {
    kind: 'optional',
    name: 'ARCHIVIST_CONSOLE_DIR',
    defaultDoc: '`dist/console` of the install',
    doc: "the fleet console's built page (a directory holding `index.html`)",
  } as OptionalVar,
} as const;

/**
 * The `coord` hot path (`coord`, `coord-with-fanout`, `coordbus coord`). Besides these it reads
 * `REDIS_URL`, `REDIS_CLUSTER` and `COORDBUS_NAMESPACE` with the services' definitions.
 */
export const COORD_VARS = {
  COORD_SESSION_ID: {
    kind: 'optional',
    name: 'COORD_SESSION_ID',
    defaultDoc: '`CLAUDE_SESSION_ID`, else `unknown`',
    doc: "the calling session (1-200 of letters, digits and `. _ : @ + -`); Claude Code's `CLAUDE_SESSION_ID` when unset",
  } as OptionalVar,
  CLAUDE_SESSION_ID: {
    kind: 'optional',
    name: 'CLAUDE_SESSION_ID',
    doc: 'set by Claude Code; the session when `COORD_SESSION_ID` is unset',
  } as OptionalVar,
  COORD_PID: {
    ...int('COORD_PID', 0, 1, 4_194_304, 'the process a `register` records as the session'),
    defaultDoc: "the caller's parent process",
  },
  COORD_REDIS_TIMEOUT: {
    kind: 'duration',
    name: 'COORD_REDIS_TIMEOUT',
    default: 2000,
    minMs: 1,
    maxMs: 600_000,
    bareUnit: 's',
    expected: 'a positive number of seconds or a duration like 500ms, 2s, up to 10m',
    doc: 'bound on reaching Redis and on each reply; past it the op fails with exit 5 (Redis too slow is told apart from Redis down)',
  } as DurationVar,
  COORD_SESSION_TTL,
  COORD_ROOT,
  COORD_MAX_MESSAGE_BYTES,
  COORD_INBOX_MAX,
  COORD_INGEST_MAXLEN: int(
    'COORD_INGEST_MAXLEN',
    100_000,
    1,
    1_000_000_000,
    "approximate cap (`MAXLEN ~`) of the ingest stream at each envelope's XADD",
  ),
  LOGS_COORD_DISABLED: bool(
    'LOGS_COORD_DISABLED',
    false,
    '`1`: send no pre/post envelopes (the op itself still runs)',
  ),
  LOGS_COORD_REDIS_TIMEOUT: {
    kind: 'duration',
    name: 'LOGS_COORD_REDIS_TIMEOUT',
    default: 250,
    minMs: 1,
    maxMs: 60_000,
    bareUnit: 's',
    doc: 'bound on each envelope send (connect included); a bad value or a slow Redis never fails the op',
  } as DurationVar,
  COORD_BIN: {
    kind: 'string',
    name: 'COORD_BIN',
    default: '~/.claude/bin/coord',
    doc: 'the coord binary `coord-with-fanout` wraps (a leading `~/` is your home)',
  } as StringVar,
} as const;

/** The `coordbus` command line (besides the coord and `coordbus jobs` variables). */
export const CLI_VARS = {
  COORDBUS_REDIS_TIMEOUT,
  ARCHIVIST_URL: {
    kind: 'url',
    name: 'ARCHIVIST_URL',
    default: 'http://127.0.0.1:8085',
    protocols: ['http', 'https'],
    doc: 'the telemetry-archivist `coordbus replay --archive` reads',
  } as UrlVar,
} as const;

/** Read by the installed Claude Code hook (sh); `coordbus hooks install` carries them in its env file. */
export const HOOK_VARS = {
  COORD_HEARTBEAT_THROTTLE: int(
    'COORD_HEARTBEAT_THROTTLE',
    15,
    0,
    86_400,
    'seconds between two heartbeats of one session (PostToolUse); a bad value means the default',
  ),
  COORDBUS_ACTIVITY_MAXLEN: int(
    'COORDBUS_ACTIVITY_MAXLEN',
    10_000,
    1,
    100_000_000,
    'approximate cap of the agent activity stream `activity:{activity}`',
  ),
} as const;

/**
 * The log-tailer's environment: its config file, and the twins of its command-line flags (for
 * containers; a flag given on the command line wins). The bounds here are also those of the
 * flags and of the config file's settings.
 */
export const TAILER_VARS = {
  TAILER_CONFIG: {
    kind: 'optional',
    name: 'TAILER_CONFIG',
    doc: 'YAML or JSON config file (`--config`): a list of targets, or `{ targets, reconcile_ms, ... }`',
  } as OptionalVar,
  TAILER_PATH: {
    kind: 'optional',
    name: 'TAILER_PATH',
    doc: 'a log file to follow (`--path`; one file: list several in the config file)',
  } as OptionalVar,
  TAILER_OBSERVER: {
    kind: 'string',
    name: 'TAILER_OBSERVER',
    default: 'headroom-stage-timings',
    doc: 'line observer (`--observer`)',
  } as StringVar,
  TAILER_EVENT: {
    kind: 'string',
    name: 'TAILER_EVENT',
    default: 'headroom.overhead',
    pattern: /^[A-Za-z0-9_.:-]{1,100}$/,
    expected: "1-100 letters, digits, '_', '.', ':' or '-'",
    doc: 'telemetry event of a breach (`--event`); episodes are `<event>.episode`',
  } as StringVar,
  TAILER_SOURCE: {
    kind: 'string',
    name: 'TAILER_SOURCE',
    default: '',
    pattern: /^[A-Za-z0-9_.:-]{1,100}$/,
    expected: "1-100 letters, digits, '_', '.', ':' or '-'",
    defaultDoc: 'the observer name',
    doc: 'telemetry source, and the checkpoint key (`--source`)',
  } as StringVar,
  TAILER_THRESHOLD_MS: {
    kind: 'number',
    name: 'TAILER_THRESHOLD_MS',
    default: 500,
    min: 0.001,
    max: 86_400_000,
    doc: 'breach threshold in ms; a stall from 4x (`--threshold-ms`)',
  } as NumberVar,
  TAILER_QUIET_MS: int(
    'TAILER_QUIET_MS',
    2000,
    50,
    86_400_000,
    'an episode closes after this many ms without a breach (`--quiet-ms`; below 50 its timer would spin)',
  ),
  TAILER_FROM_START: bool(
    'TAILER_FROM_START',
    false,
    'without a checkpoint, read from byte 0 instead of the end of the file (`--from-start`)',
  ),
  TAILER_LINE_LIMIT_BYTES: int(
    'TAILER_LINE_LIMIT_BYTES',
    1024 * 1024,
    64,
    64 * 1024 * 1024,
    'longer lines are dropped and counted (`--line-limit-bytes`)',
  ),
  TAILER_RECONCILE_MS: int(
    'TAILER_RECONCILE_MS',
    30_000,
    1000,
    3_600_000,
    'backstop stat of every target, in ms (`--reconcile-ms`)',
  ),
  TAILER_FOLLOW_SYMLINKS: bool(
    'TAILER_FOLLOW_SYMLINKS',
    false,
    'follow a symbolic link at a watched path (`--follow-symlinks`); off, one is refused with a warning',
  ),
} as const;

/**
 * `npm start`'s name for a service's port: `HTTP_PORT` is one value per process, and `npm start`
 * runs every service, so each gets its own (`FANOUT_PUBLISHER_HTTP_PORT`, ...).
 */
export function startPortVarName(service: string): string {
  return `${service.toUpperCase().replace(/-/g, '_')}_HTTP_PORT`;
}

/** Read by `npm start` (scripts/start.mjs), never by a service. */
export const START_VARS: Record<string, Var> = {
  COORDBUS_DATA_DIR: {
    kind: 'string',
    name: 'COORDBUS_DATA_DIR',
    default: '.coordbus-data',
    defaultDoc: '`.coordbus-data` in the checkout',
    doc: 'what `npm start` keeps: the local Redis data, the SQLite archive, the service logs (`service-logs/<service>.log`), the operator token, the tailer config',
  } as StringVar,
  COORDBUS_START_VERBOSE: bool(
    'COORDBUS_START_VERBOSE',
    false,
    'stream every service log line to the terminal too, prefixed with its service (as `npm start -- --verbose`)',
  ),
  COORDBUS_START_TIMEOUT: {
    kind: 'duration',
    name: 'COORDBUS_START_TIMEOUT',
    default: 120_000,
    minMs: 1000,
    maxMs: 3_600_000,
    bareUnit: 's',
    expected: 'a number of seconds or a duration like 90s, 5m, from 1s to 1h',
    doc: "how long `npm start` waits for every service's `/readyz` to answer 200; then it names the one that is not, prints the end of its log and stops the rest",
  } as DurationVar,
  ...Object.fromEntries(
    SERVICES.map((s) => [
      startPortVarName(s.name),
      int(
        startPortVarName(s.name),
        s.port,
        0,
        65535,
        `${s.name}'s \`HTTP_PORT\` under \`npm start\` (0 picks a free port; \`HTTP_PORT=0\` does it for every service)`,
      ),
    ]),
  ),
};

/** The README's configuration tables, in order. */
export const VARIABLE_SECTIONS: readonly { title: string; vars: Record<string, Var> }[] = [
  { title: 'Every service', vars: SHARED_VARS },
  { title: 'fanout-publisher', vars: FANOUT_VARS },
  { title: 'sentinel-subscriber', vars: SENTINEL_VARS },
  { title: 'job-coordinator (and `coordbus jobs`)', vars: JOBS_VARS },
  { title: 'telemetry-archivist', vars: ARCHIVIST_VARS },
  { title: 'log-tailer (each also a command-line flag, which wins)', vars: TAILER_VARS },
  { title: '`coord` and `coord-with-fanout`', vars: COORD_VARS },
  { title: '`coordbus` command line', vars: CLI_VARS },
  { title: 'Claude Code hook (carried by `coordbus hooks install`)', vars: HOOK_VARS },
  { title: '`npm start`', vars: START_VARS },
];

/** The default as the README shows it. */
export function defaultText(v: Var): string {
  if (v.defaultDoc) return v.defaultDoc;
  switch (v.kind) {
    case 'duration':
      return `\`${formatDuration(v.default)}\``;
    case 'bool':
      return v.default ? '`1`' : '`0`';
    case 'optional':
    case 'secret':
      return 'unset';
    case 'int':
    case 'number':
    case 'enum':
    case 'url':
      return `\`${v.default}\``;
    case 'string':
      return v.default === '' ? 'empty' : `\`${v.default}\``;
  }
}

import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { parse as parseYaml } from 'yaml';
import {
  checkBool,
  checkInt,
  checkNumber,
  EnvReader,
  readVar,
  TAILER_VARS as T,
  type Var,
} from '@coordbus/config';
import { MIN_QUIET_MS } from '../episodes/episode-tracker';
import { isKnownObserver, knownObservers } from '../observers/registry';

/** One followed file and how its lines become telemetry. */
export interface TargetConfig {
  path: string;
  /** Telemetry `source`, and the checkpoint's key. */
  source: string;
  observer: string;
  /** Telemetry `event` of each breach; episodes use `<event>.episode`. */
  event: string;
  thresholdMs: number;
  quietMs: number;
  /** Without a checkpoint, read from byte 0 instead of the end of the file. */
  fromStart: boolean;
  lineLimitBytes: number;
  /** Follow a symbolic link at the path; off (the default), a link there is refused with a warning. */
  followSymlinks: boolean;
}

export interface TailerConfig {
  targets: TargetConfig[];
  /** Backstop stat of every target (missed inotify events, queue overflow). */
  reconcileMs: number;
  /** After a rename or recreate is seen, how long the old file is still read before switching. */
  rotateWaitMs: number;
  /** Largest read per batch (one Redis round trip per batch). */
  readChunkBytes: number;
  /** `MAXLEN ~` safety cap of the telemetry stream (0: none; the archivist trims ack-aware). */
  streamMaxLen: number;
  /** How often a watched directory that does not exist yet is looked for. */
  dirPollMs: number;
}

export const DEFAULTS = {
  observer: T.TAILER_OBSERVER.default,
  event: T.TAILER_EVENT.default,
  thresholdMs: T.TAILER_THRESHOLD_MS.default,
  quietMs: T.TAILER_QUIET_MS.default,
  lineLimitBytes: T.TAILER_LINE_LIMIT_BYTES.default,
  reconcileMs: T.TAILER_RECONCILE_MS.default,
  rotateWaitMs: 250,
  readChunkBytes: 1024 * 1024,
  streamMaxLen: 1_000_000,
  dirPollMs: 1000,
} as const;

/** Bad flags or config: the message lists every problem; the process exits 2. */
export class TailerConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid log-tailer configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'TailerConfigError';
  }
}

// Names, flags and config-file settings share the bounds of their TAILER_* twins (libs/config).
const NAME = T.TAILER_SOURCE.pattern!;
const NAME_EXPECTED = T.TAILER_SOURCE.expected!;

type Raw = Record<string, unknown>;

class Checker {
  readonly problems: string[] = [];

  problem(where: string, message: string): void {
    this.problems.push(`${where}: ${message}`);
  }

  name(where: string, v: unknown, fallback: string): string {
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string' || !NAME.test(v)) {
      this.problem(where, `must be ${NAME_EXPECTED} (got ${JSON.stringify(v)})`);
      return fallback;
    }
    return v;
  }

  number(
    where: string,
    v: unknown,
    fallback: number,
    opts: { min: number; max: number; integer?: boolean; hint?: string },
  ): number {
    if (v === undefined || v === null) return fallback;
    const r = opts.integer ? checkInt(v, opts.min, opts.max) : checkNumber(v, opts.min, opts.max);
    if (r.ok) return r.value;
    this.problem(
      where,
      `must be ${r.expected}${opts.hint ? ` (${opts.hint})` : ''} (got ${JSON.stringify(v)})`,
    );
    return fallback;
  }

  bool(where: string, v: unknown, fallback: boolean): boolean {
    if (v === undefined || v === null) return fallback;
    // YAML booleans, or 1/0, yes/no, on/off from a TAILER_* variable: the rule every variable follows.
    const r = checkBool(v);
    if (r.ok) return r.value;
    this.problem(where, `must be true or false (got ${JSON.stringify(v)})`);
    return fallback;
  }
}

function targetFrom(
  raw: Raw,
  where: string,
  baseDir: string,
  c: Checker,
  defaults: Partial<TargetConfig>,
): TargetConfig | null {
  const known = new Set([
    'path',
    'source',
    'observer',
    'event',
    'threshold_ms',
    'quiet_ms',
    'from_start',
    'line_limit_bytes',
    'follow_symlinks',
  ]);
  for (const key of Object.keys(raw))
    if (!known.has(key)) c.problem(`${where}.${key}`, `unknown setting (known: ${[...known].join(', ')})`);
  if (typeof raw.path !== 'string' || !raw.path.trim()) {
    c.problem(`${where}.path`, 'is required (the log file to follow)');
    return null;
  }
  const path = isAbsolute(raw.path) ? raw.path : resolve(baseDir, raw.path);
  // A missing directory, or something other than a regular file at the path, is waited out at
  // run time (it may appear later); only a path whose parent is not a directory cannot work.
  const dir = dirname(path);
  if (existsSync(dir) && !statSync(dir).isDirectory()) {
    c.problem(
      `${where}.path`,
      `${dir} is not a directory (the tailer watches it to see the file appear and rotate)`,
    );
  }
  const observer = raw.observer ?? defaults.observer ?? DEFAULTS.observer;
  if (typeof observer !== 'string' || !isKnownObserver(observer)) {
    c.problem(
      `${where}.observer`,
      `unknown observer ${JSON.stringify(observer)}; known observers: ${knownObservers().join(', ')}`,
    );
  }
  const obsName = typeof observer === 'string' ? observer : DEFAULTS.observer;
  return {
    path,
    source: c.name(`${where}.source`, raw.source, defaults.source ?? obsName),
    observer: obsName,
    event: c.name(`${where}.event`, raw.event, defaults.event ?? DEFAULTS.event),
    thresholdMs: c.number(
      `${where}.threshold_ms`,
      raw.threshold_ms,
      defaults.thresholdMs ?? DEFAULTS.thresholdMs,
      T.TAILER_THRESHOLD_MS,
    ),
    quietMs: c.number(`${where}.quiet_ms`, raw.quiet_ms, defaults.quietMs ?? DEFAULTS.quietMs, {
      ...T.TAILER_QUIET_MS,
      integer: true,
      hint: `below ${MIN_QUIET_MS} the episode timer would spin`,
    }),
    fromStart: c.bool(`${where}.from_start`, raw.from_start, defaults.fromStart ?? false),
    lineLimitBytes: c.number(
      `${where}.line_limit_bytes`,
      raw.line_limit_bytes,
      defaults.lineLimitBytes ?? DEFAULTS.lineLimitBytes,
      { ...T.TAILER_LINE_LIMIT_BYTES, integer: true },
    ),
    followSymlinks: c.bool(`${where}.follow_symlinks`, raw.follow_symlinks, defaults.followSymlinks ?? false),
  };
}

/** Reads a YAML or JSON config file: a list of targets, or `{ targets: [...], reconcile_ms, ... }`. */
function loadFile(file: string, c: Checker): { raw: Raw; targets: Raw[] } | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    c.problem('config', `cannot read ${file}: ${(err as Error).message}`);
    return null;
  }
  let doc: unknown;
  try {
    // YAML is a superset of JSON, so one parser reads both.
    doc = parseYaml(text);
  } catch (err) {
    c.problem('config', `${file} is not valid YAML or JSON: ${(err as Error).message}`);
    return null;
  }
  if (Array.isArray(doc)) doc = { targets: doc };
  if (typeof doc !== 'object' || doc === null) {
    c.problem('config', `${file} must hold a list of targets or an object with "targets"`);
    return null;
  }
  const raw = doc as Raw;
  const known = new Set([
    'targets',
    'reconcile_ms',
    'rotate_wait_ms',
    'read_chunk_bytes',
    'stream_maxlen',
    'dir_poll_ms',
  ]);
  for (const key of Object.keys(raw))
    if (!known.has(key)) c.problem(`config.${key}`, `unknown setting (known: ${[...known].join(', ')})`);
  if (raw.targets !== undefined && !Array.isArray(raw.targets)) {
    c.problem('config.targets', 'must be a list');
    return { raw, targets: [] };
  }
  const targets = (raw.targets as unknown[] | undefined) ?? [];
  const good: Raw[] = [];
  targets.forEach((t, i) => {
    if (typeof t !== 'object' || t === null || Array.isArray(t))
      c.problem(`targets[${i}]`, 'must be an object with at least "path"');
    else good.push(t as Raw);
  });
  return { raw, targets: good };
}

/** Flags as given (strings), or their TAILER_* twins as read by their definitions. */
interface Flags {
  config?: string;
  path?: string[];
  observer?: string;
  event?: string;
  source?: string;
  thresholdMs?: string | number;
  quietMs?: string | number;
  fromStart?: boolean;
  lineLimitBytes?: string | number;
  reconcileMs?: string | number;
  followSymlinks?: boolean;
}

/** The command line of the service (also documents the flags in `--help`). */
export function buildCli(): Command {
  return new Command('log-tailer')
    .description('follows log files event-driven and turns their lines into telemetry events')
    .option('-c, --config <file>', 'YAML or JSON config file (default: $TAILER_CONFIG)')
    .option('-p, --path <file>', 'a log file to follow (repeatable)', (v: string, acc: string[] = []) => [
      ...acc,
      v,
    ])
    .option('--observer <name>', `line observer (known: ${knownObservers().join(', ')})`)
    .option('--event <name>', `telemetry event name of a breach (default ${DEFAULTS.event})`)
    .option('--source <name>', 'telemetry source, and the checkpoint key (default: the observer name)')
    .option('--threshold-ms <ms>', `breach threshold; stall from 4x (default ${DEFAULTS.thresholdMs})`)
    .option(
      '--quiet-ms <ms>',
      `an episode closes after this long without a breach, min ${MIN_QUIET_MS} (default ${DEFAULTS.quietMs})`,
    )
    .option('--from-start', 'without a checkpoint, read from byte 0 (default: the end of the file)')
    .option(
      '--line-limit-bytes <n>',
      `longer lines are dropped and counted (default ${DEFAULTS.lineLimitBytes})`,
    )
    .option('--reconcile-ms <ms>', `backstop stat interval (default ${DEFAULTS.reconcileMs})`)
    .option(
      '--follow-symlinks',
      'follow a symbolic link at a watched path (default: refuse it with a warning, at start or when one appears)',
    )
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: (s) => process.stdout.write(s) });
}

/**
 * Environment twins of the flags, for containers (`TAILER_PATH`, `TAILER_SOURCE`, ...), each read
 * by its definition in libs/config (a bad value is a problem naming the variable). A flag given
 * on the command line wins over its variable. `TAILER_PATH` takes one file; list several in a
 * config file.
 */
function withEnvDefaults(flags: Flags, env: NodeJS.ProcessEnv, c: Checker): Flags {
  const reader = new EnvReader(env);
  const twin = <K extends keyof Flags>(key: K, v: Var): Flags[K] | undefined => {
    if (flags[key] !== undefined || !reader.isSet(v)) return flags[key];
    const r = readVar(env, v);
    if (r.ok) return (key === 'path' ? [r.value] : r.value) as Flags[K];
    c.problems.push(r.problem);
    return undefined;
  };
  return {
    config: twin('config', T.TAILER_CONFIG),
    path: twin('path', T.TAILER_PATH),
    observer: twin('observer', T.TAILER_OBSERVER),
    event: twin('event', T.TAILER_EVENT),
    source: twin('source', T.TAILER_SOURCE),
    thresholdMs: twin('thresholdMs', T.TAILER_THRESHOLD_MS),
    quietMs: twin('quietMs', T.TAILER_QUIET_MS),
    fromStart: twin('fromStart', T.TAILER_FROM_START),
    lineLimitBytes: twin('lineLimitBytes', T.TAILER_LINE_LIMIT_BYTES),
    reconcileMs: twin('reconcileMs', T.TAILER_RECONCILE_MS),
    followSymlinks: twin('followSymlinks', T.TAILER_FOLLOW_SYMLINKS),
  };
}

/**
 * Resolves the service's configuration from flags and/or a config file (`--config` or
 * `TAILER_CONFIG`). Config-file targets come first; `--path` flags add targets that take the
 * other flags. Throws TailerConfigError listing every problem.
 */
export function resolveTailerConfig(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): TailerConfig {
  const cli = buildCli();
  try {
    cli.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) throw err; // --help / --version
      throw new TailerConfigError([err.message.replace(/^error: /, '')]);
    }
    throw err;
  }
  const c = new Checker();
  const flags = withEnvDefaults(cli.opts<Flags>(), env, c);
  const targets: TargetConfig[] = [];
  const configFile = flags.config;
  let global: Raw = {};
  if (configFile) {
    const file = resolve(cwd, configFile);
    const loaded = loadFile(file, c);
    if (loaded) {
      global = loaded.raw;
      loaded.targets.forEach((t, i) => {
        const target = targetFrom(t, `targets[${i}]`, dirname(file), c, {});
        if (target) targets.push(target);
      });
    }
  }
  const flagTargetOnly = [
    'observer',
    'event',
    'source',
    'thresholdMs',
    'quietMs',
    'fromStart',
    'lineLimitBytes',
    'followSymlinks',
  ] as const;
  if (!flags.path?.length && flagTargetOnly.some((k) => flags[k] !== undefined)) {
    c.problem(
      'flags',
      '--observer, --event, --source, --threshold-ms, --quiet-ms, --from-start, --line-limit-bytes and --follow-symlinks (and their TAILER_* variables) apply to --path / TAILER_PATH targets; give --path',
    );
  }
  for (const [i, path] of (flags.path ?? []).entries()) {
    const where = flags.path!.length > 1 ? `--path[${i}]` : '--path';
    const raw: Raw = {
      path,
      source: flags.source,
      observer: flags.observer,
      event: flags.event,
      threshold_ms: flags.thresholdMs,
      quiet_ms: flags.quietMs,
      from_start: flags.fromStart,
      line_limit_bytes: flags.lineLimitBytes,
      follow_symlinks: flags.followSymlinks,
    };
    const target = targetFrom(raw, where, cwd, c, {});
    if (target) targets.push(target);
  }
  if (!targets.length && !c.problems.length) {
    c.problem(
      'targets',
      'nothing to follow: give --path <file> or a config file (--config or TAILER_CONFIG)',
    );
  }
  const seen = new Set<string>();
  for (const t of targets) {
    const key = `${t.source}\u0000${t.path}`;
    if (seen.has(key)) c.problem('targets', `${t.path} is listed twice for source ${t.source}`);
    seen.add(key);
  }
  const config: TailerConfig = {
    targets,
    reconcileMs: c.number('reconcile_ms', flags.reconcileMs ?? global.reconcile_ms, DEFAULTS.reconcileMs, {
      ...T.TAILER_RECONCILE_MS,
      integer: true,
    }),
    rotateWaitMs: c.number('rotate_wait_ms', global.rotate_wait_ms, DEFAULTS.rotateWaitMs, {
      min: 0,
      max: 60_000,
      integer: true,
    }),
    readChunkBytes: c.number('read_chunk_bytes', global.read_chunk_bytes, DEFAULTS.readChunkBytes, {
      min: 4096,
      max: 64 * 1024 * 1024,
      integer: true,
    }),
    streamMaxLen: c.number('stream_maxlen', global.stream_maxlen, DEFAULTS.streamMaxLen, {
      min: 0,
      max: 1e12,
      integer: true,
    }),
    dirPollMs: c.number('dir_poll_ms', global.dir_poll_ms, DEFAULTS.dirPollMs, {
      min: 50,
      max: 600_000,
      integer: true,
    }),
  };
  if (c.problems.length) throw new TailerConfigError(c.problems);
  return config;
}

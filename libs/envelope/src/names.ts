/**
 * Every stream, consumer group, pub/sub channel and key name in coordbus comes from here.
 *
 * `COORDBUS_NAMESPACE` (empty by default, so the seeds' names hold exactly) prefixes every name
 * as `<ns>:`. Each stream name carries a Redis Cluster hash tag (`{...}`), and so does every
 * key that a Lua script or MULTI touches together with it: a stream's dead-letter stream shares
 * its tag (dead-lettering is XADD + XACK in one MULTI), and all coord state shares the coord
 * events stream's tag (a coord state change and its event are written by one script).
 */
import { readVar, SHARED_VARS } from '@coordbus/config';
import { InvalidError } from './errors';

export const LEVELS = ['info', 'warn', 'error'] as const;
export type Level = (typeof LEVELS)[number];

/** Consumer group names. Groups live inside a stream, so the namespace is already applied. */
export const GROUPS = {
  fanout: 'fanout',
  archivist: 'archivist',
  sentinel: 'sentinel',
} as const;
export type GroupName = (typeof GROUPS)[keyof typeof GROUPS];

export const DEAD_LETTER_SUFFIX = ':dead';

export class Keyspace {
  readonly namespace: string;

  constructor(namespace = '') {
    this.namespace = checkedNamespace({ COORDBUS_NAMESPACE: namespace });
  }

  /** Prefixes a raw name with the namespace. */
  name(raw: string): string {
    return this.namespace ? `${this.namespace}:${raw}` : raw;
  }

  // ---- durable streams --------------------------------------------------------------------

  /** Where `coord` and `coord-with-fanout` write op envelopes; read by `fanout` and `archivist`. */
  get coordIngest(): string {
    return this.name('coord:{ingest}');
  }

  /** The capped replay stream of seed 000, read by people with XREVRANGE. */
  get coordReplay(): string {
    return this.name('logs:stream:coord');
  }

  /** Typed coord state-change events; shares the coord state hash tag. */
  get coordEvents(): string {
    return this.coordKey('events');
  }

  /**
   * Fan-out dedup set: ingest entry ids already fanned out (fanout-publisher). Its hash tag is
   * the replay stream's full name, so it lands in the replay stream's cluster slot and one
   * script can touch both (the seed's `logs:stream:coord` itself carries no tag).
   */
  get coordReplayDedup(): string {
    return this.name(`fanout:dedup:{${this.coordReplay}}`);
  }

  get sentinelObservations(): string {
    return this.name('sentinel:{observations}');
  }

  get telemetryEvents(): string {
    return this.name('telemetry:{events}');
  }

  /** Job lifecycle events; shares the job state hash tag. */
  get jobEvents(): string {
    return this.jobKey('events');
  }

  /** The dead-letter stream of `stream`; same hash tag, so dead-lettering can be one MULTI. */
  deadLetter(stream: string): string {
    return `${stream}${DEAD_LETTER_SUFFIX}`;
  }

  /** Every stream the archivist consumes, with their dead-letter streams. */
  get archivedStreams(): string[] {
    const sources = [
      this.coordIngest,
      this.coordEvents,
      this.sentinelObservations,
      this.telemetryEvents,
      this.jobEvents,
    ];
    return [...sources, ...sources.map((s) => this.deadLetter(s))];
  }

  // ---- pub/sub channels -------------------------------------------------------------------

  /** `logs.coord.<level>` of seed 000. */
  coordLevelChannel(level: Level): string {
    return this.name(`logs.coord.${level}`);
  }

  /** Pattern matching every coord level channel (`logs.coord.*`). */
  get coordLevelPattern(): string {
    return this.name('logs.coord.*');
  }

  /** `telemetry.<event>`: best-effort live copy of telemetry events. */
  telemetryChannel(event: string): string {
    return this.name(`telemetry.${event}`);
  }

  get telemetryPattern(): string {
    return this.name('telemetry.*');
  }

  // ---- coord state (one hash tag: one Lua script touches them together) --------------------

  /** A key of the coord state; every one shares the `{coord}` hash tag. */
  coordKey(suffix: string): string {
    return this.name(`coord:{coord}:${suffix}`);
  }

  // ---- job state -------------------------------------------------------------------------

  /** A key of the job-coordinator's state; every one shares the `{jobs}` hash tag. */
  jobKey(suffix: string): string {
    return this.name(`jobs:{jobs}:${suffix}`);
  }

  /** The per-job structured log stream. */
  jobLog(jobId: string): string {
    return this.jobKey(`log:${jobId}`);
  }

  /** BullMQ's key prefix: hash-tagged so every queue key lands in one cluster slot. */
  get bullPrefix(): string {
    return this.name('{bull}');
  }

  /** Pub/sub control channel of the job-coordinator (cancel requests reach whichever replica runs a job). */
  get jobControlChannel(): string {
    return this.name('jobs.control');
  }

  /** The BullMQ queue name for background hook jobs. */
  get jobQueue(): string {
    return 'hook-jobs';
  }

  // ---- agent activity and operator audit ------------------------------------------------------

  /**
   * Every agent hook event of every session (tool use, prompts, `Notification`, `Stop`), newest
   * last, capped (`MAXLEN ~`). One fleet-wide stream so a live view reads it with one XREAD;
   * each entry names its session. Entry: `type agent-activity v 1 data <json>` with
   * `{session_id, event, ts, tool?, path?, command?, exit_code?, message?}`.
   */
  get activityStream(): string {
    return this.name('activity:{activity}');
  }

  /**
   * The latest activity entry per session (hash: session id -> the same JSON), written with the
   * stream entry in one MULTI (same hash tag), so "what is X doing now" is one HGET, not a scan.
   */
  get activityLast(): string {
    return this.name('activity:{activity}:last');
  }

  /**
   * Operator actions taken from the console (who, what, when, why, result). Entry:
   * `type console-audit v 1 data <json>`; capped, and never holds a token or a message body.
   */
  get auditStream(): string {
    return this.name('audit:{audit}');
  }

  // ---- other service state -----------------------------------------------------------------

  /** Log-tailer checkpoint hash for one (source, path). */
  tailerCheckpoint(source: string): string {
    return this.name(`tailer:{checkpoints}:${source}`);
  }

  /**
   * Log-tailer checkpoint hash of one source (one field per followed path). It shares the
   * telemetry events stream's hash tag, so the tailer writes a range's events and the checkpoint
   * past that range in one Lua script (exactly one emit per range, even across a crash).
   */
  tailerCheckpointKey(source: string): string {
    return this.name(`telemetry:{events}:checkpoint:${source}`);
  }

  /** Sentinel dedup and cull bookkeeping. */
  sentinelKey(suffix: string): string {
    return this.name(`sentinel:{sentinel}:${suffix}`);
  }

  /**
   * The sentinel's "already handled" marker of one `(source, tx_id)`. It shares the observations
   * stream's hash tag: one script checks the marker and appends the observation atomically.
   */
  sentinelSeen(source: string, txId: string): string {
    return this.name(`sentinel:{observations}:seen:${source}:${txId}`);
  }

  /**
   * "Already put on the ingest stream" marker of the live-view envelope of a coord event
   * `(source, tx_id)` (a cull, a forced release, ...): in the ingest stream's slot, so one script
   * checks it and appends, and of several sentinel replicas exactly one envelope is written.
   */
  coordIngestFromEvent(source: string, txId: string): string {
    return this.name(`coord:{ingest}:from-event:${source}:${txId}`);
  }

  /** Every key of this namespace matches this glob (used by tests to clean up). */
  get glob(): string {
    return this.namespace ? `${this.namespace}:*` : '*';
  }
}

/** `COORDBUS_NAMESPACE` by its one definition (libs/config); a bad one is an InvalidError naming it. */
function checkedNamespace(env: NodeJS.ProcessEnv): string {
  const r = readVar(env, SHARED_VARS.COORDBUS_NAMESPACE);
  if (!r.ok) throw new InvalidError(r.problem, [r.problem]);
  return r.value;
}

/** The keyspace configured by `COORDBUS_NAMESPACE`. */
export function keyspaceFromEnv(env: NodeJS.ProcessEnv = process.env): Keyspace {
  return new Keyspace(checkedNamespace(env));
}

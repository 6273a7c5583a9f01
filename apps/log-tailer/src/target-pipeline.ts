import { TELEMETRY_EPISODE_SUFFIX, TelemetryEvent, TelemetryKind, toCoordbusError } from '@coordbus/envelope';
import type { Logger } from 'pino';
import type { TailerConfig, TargetConfig } from './config/tailer-config';
import { TelemetryEmitter } from './emit/telemetry-emitter';
import { EpisodeState, EpisodeTracker } from './episodes/episode-tracker';
import { FileFollower, FollowBatch, FollowerEvent } from './follow/file-follower';
import { Checkpoint, FileIdentity, parseCheckpoint } from './follow/file-identity';
import type { TailerMetrics } from './metrics';
import { LineObserver, Observation } from './observers/line-observer';
import { createObserver } from './observers/registry';

export interface PipelineDeps {
  emitter: TelemetryEmitter;
  logger: Logger;
  metrics: TailerMetrics;
  onFatal: (err: Error) => void;
  /** Wall clock (tests may pin it). */
  now?: () => number;
}

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

/** A retry abandoned because the service is stopping (not a failure to report). */
export class StoppedError extends Error {}

/**
 * One followed file end to end: follower -> observer -> episode tracker -> emitter. Every
 * batch and every timer-driven episode close runs through one serial queue, so the checkpoint
 * and the episode state inside it always describe the same point of the file.
 */
export class TargetPipeline {
  private readonly observer: LineObserver;
  private readonly tracker: EpisodeTracker;
  private readonly follower: FileFollower;
  private readonly log: Logger;
  private readonly now: () => number;
  private queue: Promise<void> = Promise.resolve();
  private last: Checkpoint | null = null;
  private episodeTimer: NodeJS.Timeout | null = null;
  private stopping = false;
  private started = false;
  /** Set while a write to Redis is being retried (an outage): the target is not ready meanwhile. */
  private failing: string | null = null;

  constructor(
    readonly target: TargetConfig,
    global: TailerConfig,
    private readonly deps: PipelineDeps,
  ) {
    this.observer = createObserver(target.observer, { thresholdMs: target.thresholdMs });
    this.tracker = new EpisodeTracker(target.quietMs);
    this.log = deps.logger.child({ source: target.source, path: target.path });
    this.now = deps.now ?? Date.now;
    this.follower = new FileFollower({
      path: target.path,
      fromStart: target.fromStart,
      lineLimitBytes: target.lineLimitBytes,
      readChunkBytes: global.readChunkBytes,
      rotateWaitMs: global.rotateWaitMs,
      reconcileMs: global.reconcileMs,
      followSymlinks: target.followSymlinks,
      dirPollMs: global.dirPollMs,
      logger: this.log,
      sink: (batch) => this.enqueue(() => this.process(batch)),
      onFatal: (err) => this.fatal(err),
      onEvent: (e) => this.onFollowerEvent(e),
    });
    deps.metrics.addLagSource(async () => ({
      source: target.source,
      path: target.path,
      bytes: await this.checkpointLag(),
    }));
  }

  /** Bytes of the followed file past the durable checkpoint (the whole file if it is not the checkpoint's). */
  async checkpointLag(): Promise<number> {
    const file = await this.follower.currentFile();
    if (!file) return 0;
    const cp = this.last;
    return cp && cp.dev === file.dev && cp.ino === file.ino ? Math.max(0, file.size - cp.offset) : file.size;
  }

  get isStarted(): boolean {
    return this.started;
  }

  /** Why this target is not following yet (for /readyz), null once it is. */
  get notReadyReason(): string | null {
    if (this.failing) return this.failing;
    if (this.started) return null;
    if (this.follower.waitingForDirectory) return `waiting for directory of ${this.target.path}`;
    return 'starting';
  }

  /** The open episode (for tests and diagnostics). */
  get openEpisode(): EpisodeState | null {
    return this.tracker.current;
  }

  async start(): Promise<void> {
    const ref = { source: this.target.source, path: this.target.path };
    const raw = await this.retry('load checkpoint', () => this.deps.emitter.loadCheckpoint(ref));
    let cp: Checkpoint | null = null;
    if (raw !== null) {
      const parsed = parseCheckpoint(raw);
      if (parsed.checkpoint) cp = parsed.checkpoint;
      // Unreadable: reading the file again from 0 duplicates events, which beats losing them.
      else
        this.log.error(
          { problem: parsed.problem },
          'stored checkpoint is unreadable: reading the file from 0',
        );
    }
    if (this.stopping) throw new StoppedError('stopped while starting');
    this.last = cp;
    this.tracker.restore(cp?.episode ?? null);
    if (raw !== null && !cp) {
      await this.follower.start({
        v: 1,
        dev: '',
        ino: '',
        fp: '',
        fp_len: 0,
        offset: 0,
        episode: null,
        updated_at: '',
      });
    } else {
      await this.follower.start(cp);
    }
    this.started = true;
    this.log.info(
      { resumed: Boolean(cp), offset: cp?.offset ?? null, observer: this.target.observer },
      'following',
    );
    this.armEpisodeTimer();
  }

  /** Graceful stop: finish the read in flight, flush the open episode, write the last checkpoint. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    // Set first: a commit retrying against a dead Redis gives up instead of holding shutdown.
    this.stopping = true;
    await this.follower.stop();
    if (this.episodeTimer) clearTimeout(this.episodeTimer);
    await this.enqueue(async () => {
      const ep = this.tracker.flush();
      if (ep && this.last) await this.commit([this.episodeEvent(ep)], { ...this.last, episode: null }, true);
    });
  }

  private fatal(err: Error): void {
    this.log.fatal({ err }, 'following stopped');
    this.deps.onFatal(err);
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private onFollowerEvent(e: FollowerEvent): void {
    const m = this.deps.metrics;
    if (e.kind === 'truncated') m.rotations.inc({ source: this.target.source, kind: 'truncate' });
    if (e.kind === 'refused') m.refused.inc({ source: this.target.source, what: e.what });
    // The follower has logged these as warnings already.
    if (e.kind === 'refused' || e.kind === 'waiting-for-directory') return;
    if (e.kind === 'rotated') {
      m.rotations.inc({ source: this.target.source, kind: 'rotate' });
      if (e.discardedPartialBytes)
        m.linesDropped.inc({ source: this.target.source, reason: 'incomplete_at_rotation' });
    }
    this.log.info(e, `file ${e.kind}`);
  }

  private async process(batch: FollowBatch): Promise<void> {
    const { source } = this.target;
    const m = this.deps.metrics;
    const events: TelemetryEvent[] = [];
    // Counted locally and added once per batch: a labelled inc per line costs more than the parse.
    const seen = { ok: 0, degraded: 0, stall: 0 };
    const wall = this.now();
    for (const line of batch.lines) {
      let obs: Observation | null;
      try {
        obs = this.observer.observe(line);
      } catch (err) {
        // An observer must not throw; if one does, the line is skipped but never silently.
        m.errors.inc({ source, stage: 'observe' });
        this.log.error({ err, line: line.slice(0, 200) }, 'observer threw on a line');
        continue;
      }
      if (!obs) continue;
      seen[obs.severity]++;
      const eventMs = obs.timeMs ?? wall;
      const closed = this.tracker.observe(obs, eventMs, wall);
      if (closed) events.push(this.episodeEvent(closed));
      if (obs.severity !== 'ok') events.push(this.breachEvent(obs, new Date(eventMs).toISOString()));
    }
    m.linesRead.inc({ source }, batch.lines.length);
    for (const severity of ['ok', 'degraded', 'stall'] as const) {
      if (seen[severity]) m.observations.inc({ source, severity }, seen[severity]);
    }
    if (batch.dropped) {
      m.linesDropped.inc({ source, reason: 'over_limit' }, batch.dropped);
      this.log.warn(
        { dropped: batch.dropped, limit: this.target.lineLimitBytes },
        'dropped lines over the line limit',
      );
    }
    const checkpoint = this.checkpointAt(batch.identity, batch.offset);
    await this.commit(events, checkpoint, false);
    this.armEpisodeTimer();
  }

  private checkpointAt(identity: FileIdentity, offset: number): Checkpoint {
    return {
      v: 1,
      ...identity,
      offset,
      episode: this.tracker.current ? { ...this.tracker.current } : null,
      updated_at: '',
    };
  }

  private sameAsLast(cp: Checkpoint): boolean {
    const l = this.last;
    return (
      !!l &&
      l.dev === cp.dev &&
      l.ino === cp.ino &&
      l.fp === cp.fp &&
      l.fp_len === cp.fp_len &&
      l.offset === cp.offset &&
      JSON.stringify(l.episode) === JSON.stringify(cp.episode)
    );
  }

  /** Writes events + checkpoint in one Lua script, retrying until Redis takes it (or we stop). */
  private async commit(events: TelemetryEvent[], cp: Checkpoint, final: boolean): Promise<void> {
    const { source } = this.target;
    const m = this.deps.metrics;
    if (!events.length && this.sameAsLast(cp)) return;
    const encoded: { event: string; fields: string[]; kind: string }[] = [];
    for (const e of events) {
      try {
        encoded.push({ event: e.event, fields: this.deps.emitter.encode(e), kind: String(e.detail.kind) });
      } catch (err) {
        // Cannot become valid by retrying: log it whole and move on rather than stall the file.
        m.errors.inc({ source, stage: 'encode' });
        this.log.error(
          { err: toCoordbusError(err), event: e },
          'telemetry event failed validation: not emitted',
        );
      }
    }
    cp.updated_at = new Date(this.now()).toISOString();
    const ref = { source, path: this.target.path };
    await this.retry(
      'commit',
      () =>
        this.deps.emitter.commit(
          encoded.map((e) => e.fields),
          ref,
          cp,
        ),
      final,
    );
    this.last = cp;
    m.commits.inc({ source });
    m.openEpisode.set({ source }, cp.episode ? 1 : 0);
    for (const e of encoded) m.eventsEmitted.inc({ source, kind: e.kind });
    if (encoded.length) {
      void this.deps.emitter.publish(encoded).then((err) => {
        if (err) {
          m.errors.inc({ source, stage: 'publish' });
          this.log.warn({ err }, 'pub/sub copy failed (the stream has the events)');
        }
      });
    }
  }

  private async retry<T>(what: string, op: () => Promise<T>, final = false): Promise<T> {
    let delay = RETRY_MIN_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        const done = await op();
        this.failing = null;
        return done;
      } catch (err) {
        this.failing = `${what} failing for ${this.target.path}, retrying: ${(err as Error).message}`;
        this.deps.metrics.errors.inc({ source: this.target.source, stage: what });
        this.log.error({ err, attempt }, `${what} failed; retrying in ${delay} ms`);
        // On the final flush a dead Redis must not hold shutdown forever.
        if (final && attempt >= 3) throw err;
        if (this.stopping && !final) throw new StoppedError(`${what} abandoned: stopping`);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
  }

  private breachEvent(obs: Observation, ts: string): TelemetryEvent {
    return {
      source: this.target.source,
      event: this.target.event,
      status: obs.severity,
      duration_ms: obs.durationMs,
      ts,
      detail: {
        kind: 'breach' satisfies TelemetryKind,
        ...obs.detail,
        dominant_stage: obs.dominantStage,
        threshold_ms: this.target.thresholdMs,
        file: this.target.path,
      },
    };
  }

  private episodeEvent(ep: EpisodeState): TelemetryEvent {
    this.deps.metrics.episodes.inc({ source: this.target.source, severity: ep.peak_severity });
    return {
      source: this.target.source,
      event: `${this.target.event}${TELEMETRY_EPISODE_SUFFIX}`,
      status: ep.peak_severity,
      duration_ms: ep.peak_ms,
      ts: new Date(ep.first_ms).toISOString(),
      detail: {
        kind: 'episode' satisfies TelemetryKind,
        count: ep.count,
        peak_ms: ep.peak_ms,
        peak_severity: ep.peak_severity,
        first_ts: new Date(ep.first_ms).toISOString(),
        last_ts: new Date(ep.last_breach_ms).toISOString(),
        dominant_stage: ep.dominant_stage,
        stage_counts: ep.stage_counts,
        threshold_ms: this.target.thresholdMs,
        quiet_ms: this.target.quietMs,
        file: this.target.path,
      },
    };
  }

  /** A timer exists only while an episode is open: it closes the episode once the log goes quiet. */
  private armEpisodeTimer(): void {
    if (this.stopping || this.episodeTimer) return;
    const due = this.tracker.dueAt();
    if (due === null) return;
    this.episodeTimer = setTimeout(
      () => {
        this.episodeTimer = null;
        void this.enqueue(async () => {
          const ep = this.tracker.closeIfQuiet(this.now());
          if (ep && this.last)
            await this.commit([this.episodeEvent(ep)], { ...this.last, episode: null }, false);
        })
          .catch((err: unknown) => {
            if (!(err instanceof StoppedError)) this.fatal(err as Error);
          })
          .finally(() => this.armEpisodeTimer());
      },
      Math.max(1, due - this.now()),
    );
  }
}

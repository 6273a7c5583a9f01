import { Counter, Gauge, Registry } from 'prom-client';

/** The tailer's Prometheus metrics (served at /metrics with the process defaults). */
export class TailerMetrics {
  readonly linesRead: Counter<'source'>;
  readonly linesDropped: Counter<'source' | 'reason'>;
  readonly observations: Counter<'source' | 'severity'>;
  readonly eventsEmitted: Counter<'source' | 'kind'>;
  readonly episodes: Counter<'source' | 'severity'>;
  readonly commits: Counter<'source'>;
  readonly errors: Counter<'source' | 'stage'>;
  readonly rotations: Counter<'source' | 'kind'>;
  readonly refused: Counter<'source' | 'what'>;
  readonly checkpointLag: Gauge<'source' | 'path'>;
  readonly openEpisode: Gauge<'source'>;
  private readonly lagSources: (() => Promise<{ source: string; path: string; bytes: number }>)[] = [];

  constructor(registry: Registry) {
    const registers = [registry];
    this.linesRead = new Counter({
      name: 'coordbus_tailer_lines_read_total',
      help: 'Complete lines read',
      labelNames: ['source'],
      registers,
    });
    this.linesDropped = new Counter({
      name: 'coordbus_tailer_lines_dropped_total',
      help: 'Lines not observed: over the line limit, or an incomplete last line of a rotated-away file',
      labelNames: ['source', 'reason'],
      registers,
    });
    this.observations = new Counter({
      name: 'coordbus_tailer_observations_total',
      help: 'Lines an observer recognised, by severity',
      labelNames: ['source', 'severity'],
      registers,
    });
    this.eventsEmitted = new Counter({
      name: 'coordbus_tailer_events_emitted_total',
      help: 'Telemetry events durably written (breach, episode)',
      labelNames: ['source', 'kind'],
      registers,
    });
    this.episodes = new Counter({
      name: 'coordbus_tailer_episodes_total',
      help: 'Stall episodes closed, by peak severity',
      labelNames: ['source', 'severity'],
      registers,
    });
    this.commits = new Counter({
      name: 'coordbus_tailer_commits_total',
      help: 'Checkpoint commits (one atomic script each)',
      labelNames: ['source'],
      registers,
    });
    this.errors = new Counter({
      name: 'coordbus_tailer_errors_total',
      help: 'Errors by stage (commit, publish, encode)',
      labelNames: ['source', 'stage'],
      registers,
    });
    this.rotations = new Counter({
      name: 'coordbus_tailer_rotations_total',
      help: 'Rotations and truncations seen',
      labelNames: ['source', 'kind'],
      registers,
    });
    this.refused = new Counter({
      name: 'coordbus_tailer_refused_total',
      help: 'Things found at a watched path and not read (symlink without --follow-symlinks, fifo, socket, directory, device)',
      labelNames: ['source', 'what'],
      registers,
    });
    const lagSources = this.lagSources;
    this.checkpointLag = new Gauge({
      name: 'coordbus_tailer_checkpoint_lag_bytes',
      help: 'Bytes of the followed file past the durable checkpoint',
      labelNames: ['source', 'path'],
      registers,
      // Measured at scrape time (an fstat per target), not on the hot path.
      async collect() {
        for (const lag of await Promise.all(lagSources.map((f) => f())))
          this.set({ source: lag.source, path: lag.path }, lag.bytes);
      },
    });
    this.openEpisode = new Gauge({
      name: 'coordbus_tailer_open_episode',
      help: '1 while a stall episode is open',
      labelNames: ['source'],
      registers,
    });
  }

  /** Registers a target whose checkpoint lag is reported at scrape time. */
  addLagSource(f: () => Promise<{ source: string; path: string; bytes: number }>): void {
    this.lagSources.push(f);
  }
}

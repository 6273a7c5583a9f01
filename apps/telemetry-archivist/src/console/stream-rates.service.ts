import { BeforeApplicationShutdown, Inject, Injectable, OnModuleInit } from '@nestjs/common';
import type { Registry } from 'prom-client';
import type { Keyspace } from '@coordbus/envelope';
import { METRICS_REGISTRY } from '@coordbus/runtime';
import { STREAM_REFS } from '../tokens';
import type { StreamRef } from '../ingest/row-mapper';
import { ConsoleRedis, GroupCounters } from './console-redis';

/** Every stream the console's health view lists, by the key the page shows, with its Redis name. */
export function healthStreams(ks: Keyspace): [string, string][] {
  const names: [string, string][] = [
    ['coordIngest', ks.coordIngest],
    ['coordReplay', ks.coordReplay],
    ['coordEvents', ks.coordEvents],
    ['sentinelObservations', ks.sentinelObservations],
    ['telemetryEvents', ks.telemetryEvents],
    ['jobEvents', ks.jobEvents],
    ['activity', ks.activityStream],
    ['audit', ks.auditStream],
  ];
  // Every stream a consumer group reads has a dead-letter stream (the replay stream has none).
  const dead: [string, string][] = names
    .filter(([k]) => !['coordReplay', 'activity', 'audit'].includes(k))
    .map(([k, n]) => [`${k}:dead`, ks.deadLetter(n)]);
  return [...names, ...dead];
}

export interface StreamRatesOptions {
  /** How often the counters are read (ms). */
  sampleMs: number;
  /** Samples kept (the sparklines' width in time is sampleMs × keep). */
  keep: number;
}

export const STREAM_RATES_OPTIONS = Symbol('STREAM_RATES_OPTIONS');
export const DEFAULT_STREAM_RATES_OPTIONS: StreamRatesOptions = { sampleMs: 2000, keep: 150 };

const ARCHIVED_METRIC = 'coordbus_archive_inserted_total';

interface Sample {
  t: number;
  streams: Map<string, GroupCounters>;
  /** coordbus_archive_inserted_total of this process, by stream key. */
  archived: Map<string, number>;
}

/** Per-second rates between consecutive samples; null where a counter is unknown or went back (reset). */
export interface RateSeries {
  /** Sample times (epoch ms), one per rate. */
  t: number[];
  streams: Record<
    string,
    {
      /** Entries added to the stream per second (for a dead-letter stream: entries dead-lettered). */
      added: (number | null)[];
      /** This archivist's rows archived per second from the stream (its own Prometheus counter). */
      archived?: (number | null)[];
      groups: Record<string, { delivered: (number | null)[]; acked: (number | null)[] }>;
    }
  >;
}

/**
 * Throughput of every stream and consumer group, for the console's sparklines. The services'
 * `coordbus_stream_*` counters live in each replica's own /metrics, and the archivist cannot know
 * every replica's address (Prometheus scrapes them by discovery); the same numbers, summed over
 * all replicas, are the consumer groups' counters in Redis, which every deployment shares:
 * XINFO STREAM `entries-added` (produced; dead-lettered for a `:dead` stream) and XINFO GROUPS
 * `entries-read` (delivered to the group) minus `pending` (acked). Plus this process's own
 * archived rows from its Prometheus registry. One pipeline of two commands per stream per tick,
 * whatever the traffic; a fixed number of samples kept.
 */
@Injectable()
export class StreamRates implements OnModuleInit, BeforeApplicationShutdown {
  private readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly streams: [string, string][];
  /** Keys of the streams this archivist archives (the label of its inserted counter). */
  private readonly archivedKeys: Set<string>;
  private sampling = false;

  constructor(
    private readonly redis: ConsoleRedis,
    @Inject(METRICS_REGISTRY) private readonly registry: Registry,
    @Inject(STREAM_REFS) refs: StreamRef[],
    @Inject(STREAM_RATES_OPTIONS) private readonly options: StreamRatesOptions,
  ) {
    this.streams = healthStreams(redis.keyspace);
    this.archivedKeys = new Set(refs.map((r) => r.key));
  }

  onModuleInit(): void {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.options.sampleMs);
    this.timer.unref();
  }

  beforeApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Takes one sample; a Redis outage skips it (the sparkline shows a gap, nothing else fails). */
  async sample(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const [t, counters, archived] = await Promise.all([
        this.redis.time(),
        this.redis.groupCounters(this.streams.map(([, n]) => n)),
        this.archivedByStream(),
      ]);
      this.samples.push({
        t,
        streams: new Map(this.streams.map(([k], i) => [k, counters[i]])),
        archived,
      });
      if (this.samples.length > this.options.keep + 1) this.samples.shift();
    } catch {
      /* skipped */
    } finally {
      this.sampling = false;
    }
  }

  private async archivedByStream(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const metric = this.registry.getSingleMetric(ARCHIVED_METRIC);
    if (!metric) return out;
    for (const v of (await metric.get()).values) {
      const key = String(v.labels.stream);
      if (this.archivedKeys.has(key)) out.set(key, (out.get(key) ?? 0) + v.value);
    }
    return out;
  }

  /** The rates between every pair of consecutive samples kept. */
  series(): RateSeries {
    const s = this.samples;
    const rate = (a: number | null | undefined, b: number | null | undefined, dtMs: number) =>
      a === null || a === undefined || b === null || b === undefined || b < a || dtMs <= 0
        ? null
        : ((b - a) * 1000) / dtMs;
    const out: RateSeries = { t: s.slice(1).map((x) => x.t), streams: {} };
    for (const [key] of this.streams) {
      const groups: RateSeries['streams'][string]['groups'] = {};
      const names = new Set(s.flatMap((x) => [...(x.streams.get(key)?.groups.keys() ?? [])]));
      for (const g of names) {
        const read = s.map((x) => x.streams.get(key)?.groups.get(g) ?? null);
        groups[g] = {
          delivered: read.slice(1).map((b, i) => rate(read[i]?.read, b?.read, s[i + 1].t - s[i].t)),
          acked: read.slice(1).map((b, i) => {
            const a = read[i];
            const acked = (c: typeof a) => (c && c.read !== null ? c.read - c.pending : null);
            return rate(acked(a), acked(b), s[i + 1].t - s[i].t);
          }),
        };
      }
      const entry: RateSeries['streams'][string] = {
        added: s
          .slice(1)
          .map((b, i) => rate(s[i].streams.get(key)?.added, b.streams.get(key)?.added, b.t - s[i].t)),
        groups,
      };
      if (this.archivedKeys.has(key)) {
        entry.archived = s
          .slice(1)
          .map((b, i) => rate(s[i].archived.get(key) ?? 0, b.archived.get(key) ?? 0, b.t - s[i].t));
      }
      out.streams[key] = entry;
    }
    return out;
  }
}

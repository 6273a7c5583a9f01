import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Pending and lag of one (stream, group), as read from XINFO GROUPS. */
export interface GroupGauge {
  stream: string;
  group: string;
  pending: number;
  /** `null` when Redis cannot compute it (entries were deleted inside the group's range). */
  lag: number | null;
  /** Consumers in the group (XINFO GROUPS consumers), when the source reads them. */
  consumers?: number;
}

/** Reads the current pending/lag of the groups a server consumes (called at scrape time). */
export type GroupGaugeSource = () => Promise<GroupGauge[]>;

/**
 * The `coordbus_stream_*` metrics of one registry. Shared by every server, client and trimmer
 * using that registry (prom-client refuses a metric name registered twice).
 */
export class StreamMetrics {
  readonly delivered: Counter<'stream' | 'group'>;
  readonly acked: Counter<'stream' | 'group'>;
  readonly retried: Counter<'stream' | 'group'>;
  readonly deadLettered: Counter<'stream' | 'group'>;
  readonly reclaimed: Counter<'stream' | 'group'>;
  readonly handlerSeconds: Histogram<'stream' | 'group'>;
  readonly pending: Gauge<'stream' | 'group'>;
  readonly lag: Gauge<'stream' | 'group'>;
  readonly consumers: Gauge<'stream' | 'group'>;
  readonly consumersRemoved: Counter<'stream' | 'group'>;
  readonly trimmed: Counter<'stream'>;
  readonly capDropped: Counter<'stream'>;
  private readonly sources = new Set<GroupGaugeSource>();

  constructor(readonly registry: Registry) {
    const registers = [registry];
    const labelNames = ['stream', 'group'] as const;
    const counter = (name: string, help: string) =>
      new Counter({ name: `coordbus_stream_${name}`, help, labelNames, registers });
    this.delivered = counter('delivered_total', 'Entries handed to a handler (including redeliveries).');
    this.acked = counter('acked_total', 'Entries acknowledged after their handler resolved.');
    this.retried = counter('retried_total', 'Handler failures that will be redelivered.');
    this.deadLettered = counter(
      'dead_lettered_total',
      'Entries moved to the dead-letter stream (and acked).',
    );
    this.reclaimed = counter(
      'reclaimed_total',
      'Stale entries claimed from other consumers with XAUTOCLAIM.',
    );
    this.handlerSeconds = new Histogram({
      name: 'coordbus_stream_handler_seconds',
      help: 'Handler run time per entry (per batch for batch handlers).',
      labelNames,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    const refresh = async (): Promise<GroupGauge[]> => {
      const all = await Promise.all([...this.sources].map((s) => s().catch(() => [] as GroupGauge[])));
      return all.flat();
    };
    // One XINFO round per scrape feeds the three gauges: the pending gauge fetches, the others reuse it.
    let lastScrape: Promise<GroupGauge[]> | undefined;
    this.pending = new Gauge({
      name: 'coordbus_stream_pending',
      help: 'Entries delivered to the group and not yet acked (XINFO GROUPS pending).',
      labelNames,
      registers,
      collect: async () => {
        lastScrape = refresh();
        for (const g of await lastScrape) this.pending.labels(g.stream, g.group).set(g.pending);
      },
    });
    // The gauges after the first reuse its scrape; the last one ends it.
    const scraped = (
      name: string,
      help: string,
      value: (g: GroupGauge) => number | null | undefined,
      last = false,
    ): Gauge<'stream' | 'group'> => {
      const gauge: Gauge<'stream' | 'group'> = new Gauge({
        name: `coordbus_stream_${name}`,
        help,
        labelNames,
        registers,
        collect: async () => {
          for (const g of await (lastScrape ?? refresh())) {
            const v = value(g);
            if (v !== null && v !== undefined) gauge.labels(g.stream, g.group).set(v);
          }
          if (last) lastScrape = undefined;
        },
      });
      return gauge;
    };
    this.lag = scraped(
      'lag',
      'Entries in the stream not yet delivered to the group (XINFO GROUPS lag, Redis 7+).',
      (g) => g.lag,
    );
    this.consumers = scraped(
      'consumers',
      'Consumers in the group (XINFO GROUPS consumers); those a gone replica left stay until removed as idle.',
      (g) => g.consumers,
      true,
    );
    this.consumersRemoved = counter(
      'consumers_removed_total',
      'Consumers removed from the group as idle with nothing pending (STREAM_CONSUMER_IDLE_REMOVE).',
    );
    this.trimmed = new Counter({
      name: 'coordbus_stream_trimmed_total',
      help: 'Entries the ack-aware trimmer removed because every consumer group had acked them.',
      labelNames: ['stream'] as const,
      registers,
    });
    this.capDropped = new Counter({
      name: 'coordbus_stream_cap_dropped_total',
      help: 'Entries the hard safety cap removed although some consumer group still needed them (data loss: raise the cap or add consumers).',
      labelNames: ['stream'] as const,
      registers,
    });
  }

  /** Adds a source of pending/lag figures; returns its removal. */
  addGaugeSource(source: GroupGaugeSource): () => void {
    this.sources.add(source);
    return () => this.sources.delete(source);
  }
}

const byRegistry = new WeakMap<Registry, StreamMetrics>();

/** The stream metrics of `registry` (created on first use; a private registry when none is given). */
export function streamMetrics(registry: Registry = new Registry()): StreamMetrics {
  let metrics = byRegistry.get(registry);
  if (!metrics) {
    metrics = new StreamMetrics(registry);
    byRegistry.set(registry, metrics);
  }
  return metrics;
}

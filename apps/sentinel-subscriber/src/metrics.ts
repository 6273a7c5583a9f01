import { Inject, Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { METRICS_REGISTRY } from '@coordbus/runtime';

/** The sentinel's Prometheus metrics (registered once per registry). */
@Injectable()
export class SentinelMetrics {
  readonly handled: Counter<'kind'>;
  readonly duplicates: Counter<'kind'>;
  readonly culls: Counter<string>;
  readonly cullLocks: Counter<string>;
  readonly cullErrors: Counter<string>;
  readonly backlog: Gauge<'source'>;
  readonly eventLag: Histogram<'source'>;
  readonly pollErrors: Counter<'source'>;
  readonly handleErrors: Counter<'kind'>;
  readonly malformedFiles: Counter<string>;
  readonly deadLetters: Counter<'reason'>;
  readonly bridged: Counter<string>;

  constructor(@Inject(METRICS_REGISTRY) registry: Registry) {
    const reg = [registry];
    this.handled = new Counter({
      name: 'coordbus_sentinel_events_handled_total',
      help: 'Coord events observed, per kind',
      labelNames: ['kind'],
      registers: reg,
    });
    this.duplicates = new Counter({
      name: 'coordbus_sentinel_duplicates_dropped_total',
      help: 'Events dropped because their (source, tx_id) was already observed',
      labelNames: ['kind'],
      registers: reg,
    });
    this.culls = new Counter({
      name: 'coordbus_sentinel_culls_total',
      help: 'Sessions evicted for a heartbeat older than the session TTL',
      registers: reg,
    });
    this.cullLocks = new Counter({
      name: 'coordbus_sentinel_cull_locks_released_total',
      help: 'Locks released because their owner was culled',
      registers: reg,
    });
    this.cullErrors = new Counter({
      name: 'coordbus_sentinel_cull_errors_total',
      help: 'Cull passes that failed',
      registers: reg,
    });
    this.backlog = new Gauge({
      name: 'coordbus_sentinel_source_backlog',
      help: 'Events waiting in the source (stream: entries not yet delivered to the group)',
      labelNames: ['source'],
      registers: reg,
    });
    this.eventLag = new Histogram({
      name: 'coordbus_sentinel_source_lag_seconds',
      help: 'Source lag: ingress_ts minus ts of each handled event',
      labelNames: ['source'],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: reg,
    });
    this.pollErrors = new Counter({
      name: 'coordbus_sentinel_poll_errors_total',
      help: 'Failed polls (retried with backoff)',
      labelNames: ['source'],
      registers: reg,
    });
    this.handleErrors = new Counter({
      name: 'coordbus_sentinel_handle_errors_total',
      help: 'Events whose handling failed (redelivered)',
      labelNames: ['kind'],
      registers: reg,
    });
    this.malformedFiles = new Counter({
      name: 'coordbus_sentinel_fs_malformed_total',
      help: 'fs-poll files skipped as half-written or malformed',
      registers: reg,
    });
    this.deadLetters = new Counter({
      name: 'coordbus_sentinel_dead_letters_total',
      help: 'Stream entries moved to the dead-letter stream',
      labelNames: ['reason'],
      registers: reg,
    });
    this.bridged = new Counter({
      name: 'coordbus_sentinel_bridge_published_total',
      help: 'Events the fs-poll bridge published to the coord events stream',
      registers: reg,
    });
  }
}

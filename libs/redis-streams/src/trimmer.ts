import type Redis from 'ioredis';
import { bindCommand } from '@coordbus/lua';
import { COMMANDS } from './commands';
import type { Registry } from 'prom-client';
import { streamMetrics, StreamMetrics } from './metrics';
import type { StreamsLogger } from './options';

export interface AckAwareTrimOptions {
  /** Safety cap on the length: past it, entries are dropped even if a group still needs them (counted). 0 = none. */
  hardCap?: number;
  /** Trim whole radix-tree nodes only (`MINID ~`): cheaper, may keep a few more entries. Default false. */
  approximate?: boolean;
  /** Counts what was trimmed and dropped on this registry's `coordbus_stream_*` metrics. */
  registry?: Registry;
}

export interface TrimResult {
  stream: string;
  /** Lowest id some group still needs; `null` when the stream has no consumer group (or does not exist). */
  lowestNeededId: string | null;
  /** Entries removed because every group had acked them. */
  trimmed: number;
  /** Entries removed by the hard cap although some group still needed them. */
  capDropped: number;
  /** Stream length after trimming. */
  length: number;
}

/**
 * Trims `stream` only below the lowest entry some consumer group still needs (never an entry a
 * group has not acked), then applies the hard cap, counting what the cap drops. A stream without
 * any consumer group is only capped. One script (commands/trimAckAware-1.lua), so no group can
 * appear or move in between.
 */
export async function trimAckAware(
  redis: Redis,
  stream: string,
  options: AckAwareTrimOptions = {},
): Promise<TrimResult> {
  const hardCap = options.hardCap ?? 0;
  if (!Number.isInteger(hardCap) || hardCap < 0)
    throw new RangeError(`hardCap must be an integer >= 0 (got ${hardCap})`);
  const reply = await bindCommand<[string, number, number, number]>(redis, COMMANDS.trimAckAware)(
    [stream],
    [hardCap, options.approximate ? '1' : '0'],
  );
  const result: TrimResult = {
    stream,
    lowestNeededId: reply[0] || null,
    trimmed: Number(reply[1]),
    capDropped: Number(reply[2]),
    length: Number(reply[3]),
  };
  if (options.registry) record(streamMetrics(options.registry), result);
  return result;
}

function record(metrics: StreamMetrics, result: TrimResult): void {
  if (result.trimmed) metrics.trimmed.labels(result.stream).inc(result.trimmed);
  if (result.capDropped) metrics.capDropped.labels(result.stream).inc(result.capDropped);
}

export interface StreamTrimmerOptions {
  /** Streams to trim (full names from the Keyspace) with their hard caps. */
  streams: Array<{ stream: string; hardCap?: number; approximate?: boolean }>;
  /** Time between rounds. Default 10000 ms. */
  intervalMs?: number;
  registry?: Registry;
  logger?: StreamsLogger;
}

/**
 * Runs {@link trimAckAware} over a set of streams periodically. Errors (Redis down) are logged
 * and the next round tries again; a cap drop is logged as a warning.
 */
export class StreamTrimmer {
  private timer?: NodeJS.Timeout;
  private running?: Promise<TrimResult[]>;
  private stopped = true;
  private readonly metrics?: StreamMetrics;

  constructor(
    private readonly redis: Redis,
    private readonly options: StreamTrimmerOptions,
  ) {
    const interval = options.intervalMs ?? 10_000;
    if (!Number.isInteger(interval) || interval <= 0)
      throw new RangeError(`intervalMs must be a positive integer (got ${interval})`);
    if (options.registry) this.metrics = streamMetrics(options.registry);
  }

  /** Starts periodic trimming (the first round runs after one interval). */
  start(): this {
    this.stopped = false;
    this.schedule();
    return this;
  }

  /** Trims every configured stream once and returns what happened per stream. */
  async runOnce(): Promise<TrimResult[]> {
    const results: TrimResult[] = [];
    for (const s of this.options.streams) {
      const result = await trimAckAware(this.redis, s.stream, {
        hardCap: s.hardCap,
        approximate: s.approximate,
      });
      if (this.metrics) record(this.metrics, result);
      if (result.capDropped) {
        this.options.logger?.warn({
          msg: 'hard cap dropped entries a consumer group had not acked',
          stream: s.stream,
          dropped: result.capDropped,
          hardCap: s.hardCap,
        });
      }
      results.push(result);
    }
    return results;
  }

  /** Stops the timer and waits for a round in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce();
      this.running
        .catch((err: unknown) =>
          this.options.logger?.warn({ msg: 'stream trim failed; retrying next round', err: String(err) }),
        )
        .finally(() => this.schedule());
    }, this.options.intervalMs ?? 10_000);
    this.timer.unref();
  }
}

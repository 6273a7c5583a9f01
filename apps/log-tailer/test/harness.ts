import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import pino from 'pino';
import { Registry } from 'prom-client';
import { EnvelopeCodec, Keyspace, Schemas, TelemetryEvent } from '@coordbus/envelope';
import { cleanupNamespace, testKeyspace, testRedisUrl, waitFor } from '@coordbus/testing';
import { DEFAULTS, TailerConfig, TargetConfig } from '../src/config/tailer-config';
import { TailerMetrics } from '../src/metrics';
import { Tailer } from '../src/tailer';

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** Python logging's asctime for `d` in local time (what the headroom proxy writes). */
export function asctime(d = new Date()): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())},${pad(d.getMilliseconds(), 3)}`;
}

/** A headroom STAGE_TIMINGS line carrying a sequence number in `request_id`. */
export function stageLine(seq: number, totalMs = 5, at = new Date()): string {
  return (
    `${asctime(at)} - headroom.proxy - INFO - [hr_${Math.floor(at.getTime() / 1000)}_${pad(seq, 6)}] STAGE_TIMINGS ` +
    `{"event": "stage_timings", "path": "anthropic_messages", "request_id": "seq-${seq}", "session_id": "s", ` +
    `"stages": {"read_request_json": 0.5, "deep_copy": 0.1, "compression_first_stage": ${totalMs - 1}, "total_pre_upstream": ${totalMs}}}\n`
  );
}

export function stageLines(from: number, to: number, totalMs = 5): string {
  let s = '';
  for (let i = from; i <= to; i++) s += stageLine(i, totalMs);
  return s;
}

export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

const codec = new EnvelopeCodec();

/** One test's world: a tmp dir, a namespace on the shared Redis, and in-process tailers. */
export class TailerHarness {
  readonly dir = mkdtempSync(join(tmpdir(), 'tailer-it-'));
  readonly keyspace: Keyspace;
  readonly redis: Redis;
  readonly logPath: string;
  readonly tailers: Tailer[] = [];
  readonly fatals: Error[] = [];
  metrics!: TailerMetrics;
  registry!: Registry;

  /** `redisUrl`: another Redis than the shared one (a test that stops and restarts it). */
  constructor(
    label: string,
    readonly redisUrl = testRedisUrl(),
  ) {
    this.redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
    this.keyspace = testKeyspace(`tailer-${label}`);
    this.logPath = join(this.dir, 'proxy.log');
  }

  target(over: Partial<TargetConfig> = {}): TargetConfig {
    return {
      path: this.logPath,
      source: 'headroom',
      observer: 'headroom-stage-timings',
      event: 'log.overhead',
      // Every test line (5 ms) is a breach, so each line yields exactly one event to count.
      thresholdMs: 1,
      quietMs: 60_000,
      fromStart: true,
      lineLimitBytes: DEFAULTS.lineLimitBytes,
      followSymlinks: false,
      ...over,
    };
  }

  config(over: Partial<TargetConfig> = {}, global: Partial<TailerConfig> = {}): TailerConfig {
    return {
      targets: [this.target(over)],
      reconcileMs: 30_000,
      dirPollMs: 100,
      rotateWaitMs: 250,
      readChunkBytes: 64 * 1024,
      streamMaxLen: 0,
      ...global,
    };
  }

  async start(config: TailerConfig = this.config()): Promise<Tailer> {
    this.registry = new Registry();
    this.metrics = new TailerMetrics(this.registry);
    const tailer = new Tailer(config, {
      redis: this.redis,
      keyspace: this.keyspace,
      codec,
      logger: pino({ level: process.env.TAILER_TEST_LOG ?? 'silent' }),
      metrics: this.metrics,
      onFatal: (err) => this.fatals.push(err),
    });
    this.tailers.push(tailer);
    await tailer.start();
    return tailer;
  }

  async events(): Promise<TelemetryEvent[]> {
    const entries = await this.redis.xrange(this.keyspace.telemetryEvents, '-', '+');
    return entries.map(([, fields]) => codec.decode(Schemas.telemetry, fields));
  }

  /** Sequence numbers of the breach events in the stream, in stream order. */
  async seqs(): Promise<number[]> {
    return (await this.events())
      .filter((e) => e.detail.kind === 'breach')
      .map((e) => Number(String(e.detail.request_id).replace('seq-', '')));
  }

  /**
   * Waits until the stream holds `expected.length` breach events AND the checkpoint covers the whole
   * current file (so any duplicate would already be in the stream), then checks for gaps and doubles.
   */
  async waitForSeqs(expected: number[], what = 'every line once', timeoutMs = 10_000): Promise<void> {
    await waitFor(
      async () => (await this.seqs()).length >= expected.length,
      `${expected.length} events: ${what}`,
      timeoutMs,
    );
    await this.waitCaughtUp(timeoutMs);
    const got = await this.seqs();
    expect(sorted(got)).toEqual(expected);
    expect(new Set(got).size).toBe(got.length);
  }

  /** The checkpoint names the file now at the path and covers every complete line of it. */
  async waitCaughtUp(timeoutMs = 10_000): Promise<void> {
    await waitFor(
      async () => {
        const cp = await this.checkpoint();
        const st = statSync(this.logPath, { bigint: true });
        // The end of the last complete line: a trailing partial line is never covered.
        const lineEnd = readFileSync(this.logPath).lastIndexOf(0x0a) + 1;
        return cp && cp.ino === String(st.ino) && cp.offset === lineEnd;
      },
      'the checkpoint to reach the end of the file',
      timeoutMs,
    );
  }

  async checkpoint(source = 'headroom', path = this.logPath): Promise<Record<string, unknown> | null> {
    const raw = await this.redis.hget(this.keyspace.tailerCheckpointKey(source), path);
    return raw ? JSON.parse(raw) : null;
  }

  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const m = (await this.registry.getMetricsAsJSON()).find((x) => x.name === name);
    const values = (m?.values ?? []) as { value: number; labels: Record<string, string> }[];
    return values
      .filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
      .reduce((a, v) => a + v.value, 0);
  }

  async dispose(): Promise<void> {
    for (const t of this.tailers) await t.stop().catch(() => undefined);
    await cleanupNamespace(this.redis, this.keyspace);
    this.redis.disconnect();
    rmSync(this.dir, { recursive: true, force: true });
    expect(this.fatals).toEqual([]);
  }
}

export function sorted(xs: number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

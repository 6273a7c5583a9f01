import { EnvelopeCodec, Keyspace } from '@coordbus/envelope';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import type { TailerConfig } from './config/tailer-config';
import { TelemetryEmitter } from './emit/telemetry-emitter';
import type { TailerMetrics } from './metrics';
import { TargetPipeline } from './target-pipeline';

export interface TailerDeps {
  redis: Redis;
  keyspace: Keyspace;
  codec: EnvelopeCodec;
  logger: Logger;
  metrics: TailerMetrics;
  /** Following cannot go on (the watcher died): the service exits non-zero so a supervisor restarts it. */
  onFatal: (err: Error) => void;
  now?: () => number;
}

/** Every configured target's pipeline, started and stopped together. */
export class Tailer {
  readonly pipelines: TargetPipeline[];

  constructor(config: TailerConfig, deps: TailerDeps) {
    const emitter = new TelemetryEmitter(deps.redis, deps.keyspace, deps.codec, config.streamMaxLen);
    this.pipelines = config.targets.map(
      (t) =>
        new TargetPipeline(t, config, {
          emitter,
          logger: deps.logger,
          metrics: deps.metrics,
          onFatal: deps.onFatal,
          now: deps.now,
        }),
    );
  }

  get started(): boolean {
    return this.pipelines.every((p) => p.isStarted);
  }

  /** Why the tailer is not ready (every target not following yet), or null. */
  notReadyReason(): string | null {
    const reasons = this.pipelines.map((p) => p.notReadyReason).filter((r): r is string => r !== null);
    return reasons.length ? reasons.join('; ') : null;
  }

  async start(): Promise<void> {
    await Promise.all(this.pipelines.map((p) => p.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.pipelines.map((p) => p.stop()));
  }
}

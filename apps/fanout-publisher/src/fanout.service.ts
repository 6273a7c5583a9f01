import { Counter, Registry } from 'prom-client';
import { CoordOpEnvelope } from '@coordbus/envelope';
import { FanoutRepository } from './fanout.repository';

/** Fans validated coord op envelopes out and counts what it did. */
export class FanoutService {
  private readonly published: Counter<'level'>;
  private readonly duplicates: Counter;

  constructor(
    private readonly repo: FanoutRepository,
    registry: Registry,
  ) {
    this.published = new Counter({
      name: 'coordbus_fanout_published_total',
      help: 'coord op envelopes published to logs.coord.<level> and the replay stream',
      labelNames: ['level'],
      registers: [registry],
    });
    this.duplicates = new Counter({
      name: 'coordbus_fanout_duplicates_total',
      help: 'redelivered ingest entries skipped because they were already fanned out',
      registers: [registry],
    });
  }

  /** Fans a batch out (one script run) and counts published envelopes by level and skipped redeliveries. */
  async handle(batch: Array<{ id: string; env: CoordOpEnvelope }>): Promise<void> {
    const fresh = await this.repo.fanout(batch);
    fresh.forEach((isNew, i) =>
      isNew ? this.published.inc({ level: batch[i].env.level }) : this.duplicates.inc(),
    );
  }
}

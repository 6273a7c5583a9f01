import { Counter, Registry } from 'prom-client';
import { FanoutItem, FanoutRepository } from './fanout.repository';

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
  async handle(batch: readonly FanoutItem[]): Promise<void> {
    const fresh = await this.repo.fanout(batch);
    // Counted once per level and batch: a labelled inc per envelope hashed its labels each time.
    const byLevel = new Map<string, number>();
    let duplicates = 0;
    for (let i = 0; i < fresh.length; i++) {
      if (!fresh[i]) duplicates++;
      else byLevel.set(batch[i].env.level, (byLevel.get(batch[i].env.level) ?? 0) + 1);
    }
    for (const [level, n] of byLevel) this.published.inc({ level }, n);
    if (duplicates) this.duplicates.inc(duplicates);
  }
}

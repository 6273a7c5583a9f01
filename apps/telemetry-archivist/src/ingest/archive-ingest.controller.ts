import { Controller } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { GROUPS } from '@coordbus/envelope';
import { StreamBatch, StreamBatchHandler } from '@coordbus/redis-streams';
import { ArchiveIngestService } from './archive-ingest.service';

type Batch = StreamBatch<unknown>;
const group = GROUPS.archivist;
// Two batches per stream at once: one is mapped into rows on this thread while the other commits
// (on SQLite's writer thread, or in PostgreSQL). Rows carry their entry id, so commit order is free.
const concurrency = 2;
// Caught up with a stream, wait 25 ms before reading it again: at a fleet's trickle (a few entries
// per read) each batch is one transaction, and a commit costs far more than its rows.
const lingerMs = 25;

/**
 * One batch handler per archived stream (Keyspace.archivedStreams): the transport decodes each
 * entry with the stream's schema and dead-letters the invalid ones (which then reach us again,
 * as dead letters, through the `:dead` handlers). A batch is acked only after its commit.
 */
@Controller()
export class ArchiveIngestController {
  constructor(private readonly ingest: ArchiveIngestService) {}

  @StreamBatchHandler({ stream: 'coordIngest', group, schema: 'coordOp', concurrency, lingerMs })
  coordIngest(@Payload() batch: Batch) {
    return this.ingest.archive('coordIngest', batch);
  }

  @StreamBatchHandler({ stream: 'coordEvents', group, schema: 'coordEvent', concurrency, lingerMs })
  coordEvents(@Payload() batch: Batch) {
    return this.ingest.archive('coordEvents', batch);
  }

  @StreamBatchHandler({ stream: 'sentinelObservations', group, schema: 'observation', concurrency, lingerMs })
  sentinelObservations(@Payload() batch: Batch) {
    return this.ingest.archive('sentinelObservations', batch);
  }

  @StreamBatchHandler({ stream: 'telemetryEvents', group, schema: 'telemetry', concurrency, lingerMs })
  telemetryEvents(@Payload() batch: Batch) {
    return this.ingest.archive('telemetryEvents', batch);
  }

  @StreamBatchHandler({ stream: 'jobEvents', group, schema: 'jobEvent', concurrency, lingerMs })
  jobEvents(@Payload() batch: Batch) {
    return this.ingest.archive('jobEvents', batch);
  }

  @StreamBatchHandler({ stream: 'coordIngest:dead', group, schema: 'deadLetter', concurrency, lingerMs })
  coordIngestDead(@Payload() batch: Batch) {
    return this.ingest.archive('coordIngest:dead', batch);
  }

  @StreamBatchHandler({ stream: 'coordEvents:dead', group, schema: 'deadLetter', concurrency, lingerMs })
  coordEventsDead(@Payload() batch: Batch) {
    return this.ingest.archive('coordEvents:dead', batch);
  }

  @StreamBatchHandler({
    stream: 'sentinelObservations:dead',
    group,
    schema: 'deadLetter',
    concurrency,
    lingerMs,
  })
  sentinelObservationsDead(@Payload() batch: Batch) {
    return this.ingest.archive('sentinelObservations:dead', batch);
  }

  @StreamBatchHandler({ stream: 'telemetryEvents:dead', group, schema: 'deadLetter', concurrency, lingerMs })
  telemetryEventsDead(@Payload() batch: Batch) {
    return this.ingest.archive('telemetryEvents:dead', batch);
  }

  @StreamBatchHandler({ stream: 'jobEvents:dead', group, schema: 'deadLetter', concurrency, lingerMs })
  jobEventsDead(@Payload() batch: Batch) {
    return this.ingest.archive('jobEvents:dead', batch);
  }
}

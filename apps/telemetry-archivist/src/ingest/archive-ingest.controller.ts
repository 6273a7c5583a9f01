import { Controller } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { GROUPS } from '@coordbus/envelope';
import { StreamBatch, StreamBatchHandler } from '@coordbus/redis-streams';
import { ArchiveIngestService } from './archive-ingest.service';

type Batch = StreamBatch<unknown>;
type RawBatch = StreamBatch<Record<string, string>>;
const group = GROUPS.archivist;

/**
 * One batch handler per archived stream (Keyspace.archivedStreams): the transport decodes each
 * entry with the stream's schema and dead-letters the invalid ones (which then reach us again,
 * as dead letters, through the `:dead` handlers). A batch is acked only after its commit.
 */
@Controller()
export class ArchiveIngestController {
  constructor(private readonly ingest: ArchiveIngestService) {}

  @StreamBatchHandler({ stream: 'coordIngest', group, schema: 'coordOp' })
  coordIngest(@Payload() batch: Batch) {
    return this.ingest.archive('coordIngest', batch);
  }

  @StreamBatchHandler({ stream: 'coordEvents', group, schema: 'coordEvent' })
  coordEvents(@Payload() batch: Batch) {
    return this.ingest.archive('coordEvents', batch);
  }

  @StreamBatchHandler({ stream: 'sentinelObservations', group, schema: 'observation' })
  sentinelObservations(@Payload() batch: Batch) {
    return this.ingest.archive('sentinelObservations', batch);
  }

  @StreamBatchHandler({ stream: 'telemetryEvents', group, schema: 'telemetry' })
  telemetryEvents(@Payload() batch: Batch) {
    return this.ingest.archive('telemetryEvents', batch);
  }

  @StreamBatchHandler({ stream: 'jobEvents', group, schema: 'jobEvent' })
  jobEvents(@Payload() batch: Batch) {
    return this.ingest.archive('jobEvents', batch);
  }

  @StreamBatchHandler({ stream: 'coordIngest:dead', group, schema: 'deadLetter' })
  coordIngestDead(@Payload() batch: Batch) {
    return this.ingest.archive('coordIngest:dead', batch);
  }

  @StreamBatchHandler({ stream: 'coordEvents:dead', group, schema: 'deadLetter' })
  coordEventsDead(@Payload() batch: Batch) {
    return this.ingest.archive('coordEvents:dead', batch);
  }

  @StreamBatchHandler({ stream: 'sentinelObservations:dead', group, schema: 'deadLetter' })
  sentinelObservationsDead(@Payload() batch: Batch) {
    return this.ingest.archive('sentinelObservations:dead', batch);
  }

  @StreamBatchHandler({ stream: 'telemetryEvents:dead', group, schema: 'deadLetter' })
  telemetryEventsDead(@Payload() batch: Batch) {
    return this.ingest.archive('telemetryEvents:dead', batch);
  }

  @StreamBatchHandler({ stream: 'jobEvents:dead', group, schema: 'deadLetter' })
  jobEventsDead(@Payload() batch: Batch) {
    return this.ingest.archive('jobEvents:dead', batch);
  }
}

/** The same handlers without a schema (ARCHIVIST_VALIDATE=false): the raw fields are archived as written. */
@Controller()
export class RawArchiveIngestController {
  constructor(private readonly ingest: ArchiveIngestService) {}

  @StreamBatchHandler({ stream: 'coordIngest', group })
  coordIngest(@Payload() batch: RawBatch) {
    return this.ingest.archiveRaw('coordIngest', batch);
  }

  @StreamBatchHandler({ stream: 'coordEvents', group })
  coordEvents(@Payload() batch: RawBatch) {
    return this.ingest.archiveRaw('coordEvents', batch);
  }

  @StreamBatchHandler({ stream: 'sentinelObservations', group })
  sentinelObservations(@Payload() batch: RawBatch) {
    return this.ingest.archiveRaw('sentinelObservations', batch);
  }

  @StreamBatchHandler({ stream: 'telemetryEvents', group })
  telemetryEvents(@Payload() batch: RawBatch) {
    return this.ingest.archiveRaw('telemetryEvents', batch);
  }

  @StreamBatchHandler({ stream: 'jobEvents', group })
  jobEvents(@Payload() batch: RawBatch) {
    return this.ingest.archiveRaw('jobEvents', batch);
  }

  @StreamBatchHandler({ stream: 'coordIngest:dead', group })
  coordIngestDead(@Payload() batch: RawBatch) {
    return this.ingest.archiveRaw('coordIngest:dead', batch);
  }

  @StreamBatchHandler({ stream: 'coordEvents:dead', group })
  coordEventsDead(@Payload() batch: RawBatch) {
    return this.ingest.archiveRaw('coordEvents:dead', batch);
  }

  @StreamBatchHandler({ stream: 'sentinelObservations:dead', group })
  sentinelObservationsDead(@Payload() batch: RawBatch) {
    return this.ingest.archiveRaw('sentinelObservations:dead', batch);
  }

  @StreamBatchHandler({ stream: 'telemetryEvents:dead', group })
  telemetryEventsDead(@Payload() batch: RawBatch) {
    return this.ingest.archiveRaw('telemetryEvents:dead', batch);
  }

  @StreamBatchHandler({ stream: 'jobEvents:dead', group })
  jobEventsDead(@Payload() batch: RawBatch) {
    return this.ingest.archiveRaw('jobEvents:dead', batch);
  }
}

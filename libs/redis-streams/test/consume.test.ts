import { Controller, Module } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import {
  CoordOpEnvelope,
  DeadLetterEntry,
  EnvelopeCodec,
  ErrorCode,
  GROUPS,
  Schemas,
} from '@coordbus/envelope';
import { waitFor } from '@coordbus/testing';
import { RedisStreamsContext, StreamBatch, StreamBatchHandler, StreamHandler } from '@coordbus/redis-streams';
import { StreamsFixture } from './helpers';

/** What the controllers below do with each entry; set per test. */
let onRaw: (data: Record<string, string>, ctx: RedisStreamsContext) => Promise<void> = async () => undefined;
let onOp: (data: CoordOpEnvelope, ctx: RedisStreamsContext) => Promise<void> = async () => undefined;
let onBatch: (batch: StreamBatch<CoordOpEnvelope>, ctx: RedisStreamsContext) => Promise<void> = async () =>
  undefined;

@Controller()
class RawController {
  @StreamHandler({ stream: 'telemetryEvents', group: 'raw' })
  handle(@Payload() data: Record<string, string>, @Ctx() ctx: RedisStreamsContext) {
    return onRaw(data, ctx);
  }
}

@Controller()
class OpController {
  @StreamHandler({ stream: 'coordIngest', group: GROUPS.fanout, schema: 'coordOp' })
  handle(@Payload() data: CoordOpEnvelope, @Ctx() ctx: RedisStreamsContext) {
    return onOp(data, ctx);
  }
}

@Controller()
class BatchController {
  @StreamBatchHandler({ stream: 'coordIngest', group: GROUPS.archivist, schema: 'coordOp' })
  handle(@Payload() batch: StreamBatch<CoordOpEnvelope>, @Ctx() ctx: RedisStreamsContext) {
    return onBatch(batch, ctx);
  }
}

let onOverlap: (batch: StreamBatch<CoordOpEnvelope>) => Promise<void> = async () => undefined;

@Controller()
class OverlapController {
  @StreamBatchHandler({ stream: 'coordIngest', group: GROUPS.archivist, schema: 'coordOp', concurrency: 2 })
  handle(@Payload() batch: StreamBatch<CoordOpEnvelope>) {
    return onOverlap(batch);
  }
}

@Module({ controllers: [RawController] })
class RawModule {}
@Module({ controllers: [OpController] })
class OpModule {}
@Module({ controllers: [BatchController] })
class BatchModule {}
@Module({ controllers: [OverlapController] })
class OverlapModule {}

function op(i: number): CoordOpEnvelope {
  return Object.assign(new CoordOpEnvelope(), {
    v: 0,
    ts: new Date().toISOString(),
    service: 'coord',
    host: 'h',
    level: 'info',
    pid: 100 + i,
    target: 'coord::lock',
    msg: `op ${i}`,
    fields: {
      op: 'lock.acquire',
      session: `s${i}`,
      resource: `r${i}`,
      peer: '',
      phase: 'post',
      exit_code: 0,
      duration_ms: 1,
    },
  } as unknown as CoordOpEnvelope);
}

async function deadLetters(
  f: StreamsFixture,
  stream: string,
): Promise<Array<{ id: string; entry: DeadLetterEntry }>> {
  const codec = new EnvelopeCodec();
  const rows = await f.redis.xrange(f.keyspace.deadLetter(stream), '-', '+');
  return rows.map(([id, fields]) => ({ id, entry: codec.decode(Schemas.deadLetter, fields) }));
}

async function pending(f: StreamsFixture, stream: string, group: string): Promise<number> {
  const summary = (await f.redis.xpending(stream, group)) as [number, ...unknown[]];
  return Number(summary[0]);
}

describe('RedisStreamsServer through Nest', () => {
  let f: StreamsFixture;
  beforeEach(() => {
    f = new StreamsFixture('rs-consume');
  });
  afterEach(async () => {
    onRaw = async () => undefined;
    onOp = async () => undefined;
    onBatch = async () => undefined;
    onOverlap = async () => undefined;
    await f.dispose();
  });

  it('handles each of N entries exactly once, acks them all, and sees entries written before it started', async () => {
    const stream = f.keyspace.coordIngest;
    const early = await f.client.publishMany(stream, 'coordOp', [op(0), op(1)]);
    const seen = new Map<string, number>();
    const contexts: RedisStreamsContext[] = [];
    onOp = async (data, ctx) => {
      expect(data).toBeInstanceOf(CoordOpEnvelope);
      seen.set(ctx.getEntryId(), (seen.get(ctx.getEntryId()) ?? 0) + 1);
      contexts.push(ctx);
    };
    const { server } = await f.nest(OpModule, { batchSize: 7, concurrency: 5 });
    expect(server.isReady()).toBe(true);
    const ids = [...early];
    for (let i = 2; i < 300; i++) {
      ids.push(await f.client.publish(stream, 'coordOp', op(i)));
    }
    await waitFor(() => seen.size === 300, '300 entries handled');
    await waitFor(async () => (await pending(f, stream, GROUPS.fanout)) === 0, 'all acked');
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(new Set(ids)).toEqual(new Set(seen.keys()));
    const ctx = contexts[0];
    expect(ctx.getStream()).toBe(stream);
    expect(ctx.getGroup()).toBe(GROUPS.fanout);
    expect(ctx.getConsumer()).toBe(server.consumer);
    expect(ctx.getDeliveryCount()).toBe(1);
    // XPENDING can read 0 before this client has taken the XACK's reply, which is when it counts.
    const acked = `coordbus_stream_acked_total{stream="${stream}",group="fanout"} 300`;
    await waitFor(async () => (await f.registry.metrics()).includes(acked), 'acks counted');
    const metrics = await f.registry.metrics();
    expect(metrics).toContain(`coordbus_stream_delivered_total{stream="${stream}",group="fanout"} 300`);
    expect(metrics).toContain(`coordbus_stream_pending{stream="${stream}",group="fanout"} 0`);
    expect(metrics).toContain(`coordbus_stream_lag{stream="${stream}",group="fanout"} 0`);
    expect(metrics).toContain(`coordbus_stream_handler_seconds_count{stream="${stream}",group="fanout"} 300`);
  });

  it('passes the raw field record when no schema is named', async () => {
    const got: Array<Record<string, string>> = [];
    onRaw = async (data) => {
      got.push(data);
    };
    await f.nest(RawModule);
    await f.client.publishRaw(f.keyspace.telemetryEvents, ['a', '1', 'b', 'two']);
    await waitFor(() => got.length === 1, 'raw entry handled');
    expect(got[0]).toEqual({ a: '1', b: 'two' });
  });

  it('redelivers an entry whose handler throws k times, then acks it once it succeeds', async () => {
    const stream = f.keyspace.coordIngest;
    const counts: number[] = [];
    onOp = async (_data, ctx) => {
      counts.push(ctx.getDeliveryCount());
      if (counts.length <= 3) throw new Error(`transient ${counts.length}`);
    };
    await f.nest(OpModule, { maxDeliveries: 5 });
    await f.client.publish(stream, 'coordOp', op(1));
    await waitFor(() => counts.length === 4, 'fourth delivery');
    await waitFor(async () => (await pending(f, stream, GROUPS.fanout)) === 0, 'acked after success');
    expect(counts).toEqual([1, 2, 3, 4]);
    expect(await deadLetters(f, stream)).toEqual([]);
    const retried = await f.registry.getSingleMetricAsString('coordbus_stream_retried_total');
    expect(retried).toContain('} 3');
  });

  it('dead-letters an entry whose handler always throws after maxDeliveries, with the reason, and acks it', async () => {
    const stream = f.keyspace.coordIngest;
    let calls = 0;
    onOp = async () => {
      calls++;
      throw new Error('disk on fire');
    };
    const { server } = await f.nest(OpModule, { maxDeliveries: 3 });
    const id = await f.client.publish(stream, 'coordOp', op(7));
    await waitFor(async () => (await deadLetters(f, stream)).length === 1, 'dead letter written');
    const [{ entry }] = await deadLetters(f, stream);
    expect(calls).toBe(3);
    expect(entry.entry_id).toBe(id);
    expect(entry.source_stream).toBe(stream);
    expect(entry.delivery_count).toBe(3);
    expect(entry.reason).toContain('disk on fire');
    expect(entry.error_code).toBe(ErrorCode.Internal);
    expect(entry.group).toBe(GROUPS.fanout);
    expect(entry.consumer).toBe(server.consumer);
    expect(JSON.parse(entry.fields.data).msg).toBe('op 7');
    await waitFor(async () => (await pending(f, stream, GROUPS.fanout)) === 0, 'dead letter acked');
  });

  it('dead-letters an invalid entry at once (with the failing paths) and keeps handling the next ones', async () => {
    const stream = f.keyspace.coordIngest;
    const handled: string[] = [];
    onOp = async (data) => {
      handled.push(data.msg);
    };
    await f.nest(OpModule);
    const bad = await f.client.publishRaw(stream, [
      'type',
      'coord-op',
      'v',
      '0',
      'data',
      JSON.stringify({ ...op(1), level: 'loud' }),
    ]);
    const garbage = await f.client.publishRaw(stream, ['data', 'not json']);
    const newer = await f.client.publishRaw(stream, [
      'type',
      'coord-op',
      'v',
      '9',
      'data',
      JSON.stringify(op(2)),
    ]);
    await f.client.publish(stream, 'coordOp', op(3));
    await waitFor(() => handled.includes('op 3'), 'valid entry after the bad ones handled');
    await waitFor(async () => (await deadLetters(f, stream)).length === 3, 'three dead letters');
    const dead = new Map((await deadLetters(f, stream)).map((d) => [d.entry.entry_id, d.entry]));
    expect(dead.get(bad)?.error_code).toBe(ErrorCode.Invalid);
    expect(dead.get(bad)?.reason).toContain('level');
    expect(dead.get(bad)?.delivery_count).toBe(1);
    expect(dead.get(garbage)?.error_code).toBe(ErrorCode.Invalid);
    expect(dead.get(newer)?.error_code).toBe(ErrorCode.SchemaMismatch);
    expect(handled).toEqual(['op 3']);
    await waitFor(async () => (await pending(f, stream, GROUPS.fanout)) === 0, 'all acked');
  });

  it('runs two batches of a `concurrency: 2` batch handler at once, and handles every entry exactly once', async () => {
    const stream = f.keyspace.coordIngest;
    const ids = await f.client.publishMany(
      stream,
      'coordOp',
      Array.from({ length: 95 }, (_, i) => op(i)),
    );
    const seen = new Map<string, number>();
    let running = 0;
    let most = 0;
    onOverlap = async (batch) => {
      most = Math.max(most, ++running);
      // Long enough that the next batch is read and started while this one still runs.
      await new Promise((r) => setTimeout(r, 40));
      for (const e of batch.entries) seen.set(e.id, (seen.get(e.id) ?? 0) + 1);
      running--;
    };
    await f.nest(OverlapModule, { batchSize: 10 });
    await waitFor(() => seen.size === 95, '95 entries handled');
    await waitFor(async () => (await pending(f, stream, GROUPS.archivist)) === 0, 'all acked');
    expect(most).toBe(2);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(new Set(seen.keys())).toEqual(new Set(ids));
  });

  it('hands a batch handler validated entries and acks them together; a failing batch is redelivered', async () => {
    const stream = f.keyspace.coordIngest;
    const batches: Array<{ ids: string[]; counts: number[] }> = [];
    let failOnce = true;
    onBatch = async (batch) => {
      batches.push({
        ids: batch.entries.map((e) => e.id),
        counts: batch.entries.map((e) => e.deliveryCount),
      });
      expect(batch.stream).toBe(stream);
      expect(batch.group).toBe(GROUPS.archivist);
      if (failOnce) {
        failOnce = false;
        throw new Error('database locked');
      }
    };
    await f.client.publishRaw(stream, ['data', '{}']);
    const ids = await f.client.publishMany(stream, 'coordOp', [op(1), op(2), op(3)]);
    await f.nest(BatchModule, { batchSize: 10 });
    await waitFor(() => batches.length === 2, 'batch retried');
    expect(batches[0].ids).toEqual(ids);
    expect(batches[0].counts).toEqual([1, 1, 1]);
    expect(batches[1].ids).toEqual(ids);
    expect(batches[1].counts).toEqual([2, 2, 2]);
    await waitFor(async () => (await pending(f, stream, GROUPS.archivist)) === 0, 'batch acked');
    expect((await deadLetters(f, stream)).map((d) => d.entry.error_code)).toEqual([ErrorCode.Invalid]);
  });
});

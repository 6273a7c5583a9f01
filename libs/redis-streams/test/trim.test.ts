import { waitFor } from '@coordbus/testing';
import { Registry } from 'prom-client';
import { StreamTrimmer, trimAckAware } from '@coordbus/redis-streams';
import { StreamsFixture } from './helpers';

async function readAndAck(
  f: StreamsFixture,
  stream: string,
  group: string,
  read: number,
  ack: string[],
): Promise<string[]> {
  const reply = (await f.redis.xreadgroup(
    'GROUP',
    group,
    'c',
    'COUNT',
    read,
    'STREAMS',
    stream,
    '>',
  )) as Array<[string, Array<[string, string[]]>]>;
  if (ack.length) await f.redis.xack(stream, group, ...ack);
  return reply[0][1].map(([id]) => id);
}

describe('ack-aware trimming', () => {
  let f: StreamsFixture;
  let stream: string;
  let ids: string[];
  beforeEach(async () => {
    f = new StreamsFixture('rs-trim');
    stream = f.keyspace.telemetryEvents;
    const pipeline = f.redis.pipeline();
    for (let i = 0; i < 100; i++) pipeline.xadd(stream, '*', 'n', String(i));
    ids = ((await pipeline.exec()) ?? []).map(([, id]) => id as string);
  });
  afterEach(() => f.dispose());

  it('trims only below the lowest entry some group still needs, never an un-acked one', async () => {
    await f.redis.xgroup('CREATE', stream, 'a', '0');
    await f.redis.xgroup('CREATE', stream, 'b', '0');
    // a: read all 100, acked 0..59 -> still needs 60..99. b: read 30, acked all -> needs 30.. (30th kept).
    await readAndAck(f, stream, 'a', 100, ids.slice(0, 60));
    await readAndAck(f, stream, 'b', 30, ids.slice(0, 30));
    const registry = new Registry();
    const result = await trimAckAware(f.redis, stream, { registry });
    expect(result).toEqual({ stream, lowestNeededId: ids[29], trimmed: 29, capDropped: 0, length: 71 });
    const left = (await f.redis.xrange(stream, '-', '+')).map(([id]) => id);
    expect(left).toEqual(ids.slice(29));
    expect(await registry.getSingleMetricAsString('coordbus_stream_trimmed_total')).toContain(
      `{stream="${stream}"} 29`,
    );

    // b now has an old entry pending (read, not acked): nothing past it may go.
    await readAndAck(f, stream, 'b', 10, ids.slice(31, 40));
    await f.redis.xack(stream, 'a', ...ids.slice(60));
    const again = await trimAckAware(f.redis, stream);
    expect(again.lowestNeededId).toBe(ids[30]);
    expect(again.trimmed).toBe(1);
    expect((await f.redis.xrange(stream, '-', '+')).map(([id]) => id)).toEqual(ids.slice(30));
  });

  it('keeps everything past a group that has read nothing yet, and trims nothing without any group', async () => {
    expect(await trimAckAware(f.redis, stream)).toMatchObject({
      lowestNeededId: null,
      trimmed: 0,
      length: 100,
    });
    await f.redis.xgroup('CREATE', stream, 'a', '0');
    await f.redis.xgroup('CREATE', stream, 'late', '0');
    await readAndAck(f, stream, 'a', 100, ids);
    expect(await trimAckAware(f.redis, stream)).toMatchObject({
      lowestNeededId: '0-0',
      trimmed: 0,
      length: 100,
    });
  });

  it('applies the hard cap past what groups need and counts what it dropped', async () => {
    await f.redis.xgroup('CREATE', stream, 'slow', '0');
    await readAndAck(f, stream, 'slow', 10, ids.slice(0, 10));
    const trimmer = new StreamTrimmer(f.redis, {
      streams: [{ stream, hardCap: 50 }],
      registry: f.registry,
      logger: { log() {}, warn() {}, error() {} },
    });
    const [result] = await trimmer.runOnce();
    expect(result).toMatchObject({ lowestNeededId: ids[9], trimmed: 9, capDropped: 41, length: 50 });
    expect((await f.redis.xrange(stream, '-', '+')).map(([id]) => id)).toEqual(ids.slice(50));
    expect(await f.registry.getSingleMetricAsString('coordbus_stream_cap_dropped_total')).toContain(
      `{stream="${stream}"} 41`,
    );
  });

  it('runs periodically once started and stops cleanly', async () => {
    await f.redis.xgroup('CREATE', stream, 'a', '0');
    await readAndAck(f, stream, 'a', 100, ids);
    const trimmer = new StreamTrimmer(f.redis, { streams: [{ stream }], intervalMs: 20 }).start();
    await waitFor(async () => (await f.redis.xlen(stream)) === 1, 'periodic trim');
    await trimmer.stop();
  });
});

import Redis from 'ioredis';
import { EnvelopeCodec, fieldsToRecord, Keyspace, Schemas } from '@coordbus/envelope';
import { buildEnvelope } from '@coordbus/coord';
import { cleanupNamespace, testKeyspace, testRedisUrl, waitFor } from '@coordbus/testing';
import { FanoutRepository } from '../src/fanout.repository';

describe('FanoutRepository (real Redis)', () => {
  let redis: Redis;
  let sub: Redis;
  let ks: Keyspace;

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
    sub = new Redis(testRedisUrl());
  });
  afterAll(() => {
    redis.disconnect();
    sub.disconnect();
  });
  beforeEach(() => {
    ks = testKeyspace('fanrepo');
  });
  afterEach(async () => {
    await sub.punsubscribe();
    await cleanupNamespace(redis, ks);
  });

  it('publishes by level and appends readable replay entries in order, once per ingest id even when redelivered', async () => {
    const got: Array<[string, string]> = [];
    sub.on('pmessage', (_p, channel: string, msg: string) => got.push([channel, msg]));
    await sub.psubscribe(ks.coordLevelPattern);
    const repo = new FanoutRepository(redis, ks, { replayMaxLen: 10_000, dedupWindowMs: 60_000 });
    const a = buildEnvelope({ op: 'lock', session: 's1', resource: 'r' }, 'pre');
    const b = buildEnvelope({ op: 'lock', session: 's1', resource: 'r' }, 'post', {
      durationMs: 2,
      exitCode: 3,
    });
    expect(
      await repo.fanout([
        { id: '1-0', env: a },
        { id: '2-0', env: b },
      ]),
    ).toEqual([true, true]);
    // A redelivered batch (crash before the ack) changes nothing.
    expect(await repo.fanout([{ id: '2-0', env: b }])).toEqual([false]);

    const replay = await redis.xrange(ks.coordReplay, '-', '+');
    expect(replay).toHaveLength(2);
    const rec = fieldsToRecord(replay[1][1]);
    // A lock conflict (exit 3) is an expected refusal: logs.coord.warn, not logs.coord.error.
    expect(rec).toMatchObject({
      level: 'warn',
      msg: 'coord.lock end',
      session: 's1',
      type: 'coord-op',
      v: '0',
    });
    expect(new EnvelopeCodec().decode(Schemas.coordOp, replay[1][1])).toEqual(JSON.parse(rec.data));
    await waitFor(() => got.length === 2, 'both pub/sub messages');
    expect(got.map(([c]) => c)).toEqual([ks.coordLevelChannel('info'), ks.coordLevelChannel('warn')]);
    expect(JSON.parse(got[1][1])).toEqual(b);

    // A real failure (Redis unavailable, exit 5) goes to logs.coord.error.
    const c = buildEnvelope({ op: 'lock', session: 's2', resource: 'r' }, 'post', {
      durationMs: 2,
      exitCode: 5,
    });
    expect(await repo.fanout([{ id: '3-0', env: c }])).toEqual([true]);
    await waitFor(() => got.length === 3, 'the third pub/sub message');
    expect(got[2][0]).toBe(ks.coordLevelChannel('error'));
    expect(fieldsToRecord((await redis.xrange(ks.coordReplay, '-', '+'))[2][1]).level).toBe('error');
  });

  it('sends the text the codec vouched for as it is, and the DTO serialised when there is none', async () => {
    const got: string[] = [];
    sub.on('pmessage', (_p, _c, msg: string) => got.push(msg));
    await sub.psubscribe(ks.coordLevelPattern);
    const repo = new FanoutRepository(redis, ks, { replayMaxLen: 10_000, dedupWindowMs: 60_000 });
    const env = buildEnvelope({ op: 'lock', session: 's1', resource: 'r' }, 'post', { durationMs: 2.5 });
    // A producer may spell a number its own way; the codec's text keeps it (the same JSON value).
    const text = JSON.stringify(env).replace('"duration_ms":2.5', '"duration_ms":2.50');
    expect(text).toContain('2.50');
    expect(
      await repo.fanout([
        { id: '1-0', env, text },
        { id: '2-0', env },
      ]),
    ).toEqual([true, true]);
    await waitFor(() => got.length === 2, 'both pub/sub messages');
    expect(got).toEqual([text, JSON.stringify(env)]);
    const replay = await redis.xrange(ks.coordReplay, '-', '+');
    expect(replay.map(([, f]) => fieldsToRecord(f).data)).toEqual([text, JSON.stringify(env)]);
    expect(JSON.parse(got[0])).toEqual(JSON.parse(got[1]));
  });

  it('marks an id done only once its envelope is out: a run that fails part way can be run again', async () => {
    const repo = new FanoutRepository(redis, ks, { replayMaxLen: 10_000, dedupWindowMs: 60_000 });
    const env = buildEnvelope({ op: 'heartbeat', session: 's1' }, 'post');
    // The replay key holds the wrong type: the script's first XADD fails (WRONGTYPE).
    await redis.set(ks.coordReplay, 'not a stream');
    await expect(repo.fanout([{ id: '1-0', env }])).rejects.toThrow(/WRONGTYPE/);
    await redis.del(ks.coordReplay);
    // Marked before its XADD (the old order), the id would read as already fanned out: lost.
    expect(await repo.fanout([{ id: '1-0', env }])).toEqual([true]);
    expect(await redis.xlen(ks.coordReplay)).toBe(1);
  });

  it('flags each id of a large mixed batch (dedup read and written per batch, in chunks)', async () => {
    const repo = new FanoutRepository(redis, ks, { replayMaxLen: 100_000, dedupWindowMs: 60_000 });
    const env = buildEnvelope({ op: 'heartbeat', session: 's1' }, 'post');
    const item = (i: number) => ({ id: `${i + 1}-0`, env });
    // Every third id was fanned out before; the batch spans three chunks of 1 000 ids.
    const before = Array.from({ length: 2500 }, (_, i) => i).filter((i) => i % 3 === 0);
    expect(await repo.fanout(before.map(item))).toEqual(before.map(() => true));
    const all = Array.from({ length: 2500 }, (_, i) => item(i));
    // The same id twice within a batch goes out once.
    const flags = await repo.fanout([...all, item(1)]);
    expect(flags).toEqual([...all.map((_, i) => i % 3 !== 0), false]);
    expect(await redis.xlen(ks.coordReplay)).toBe(2500);
    expect(await redis.zcard(ks.coordReplayDedup)).toBe(2500);
  });
});

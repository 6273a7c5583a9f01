import Redis from 'ioredis';
import { DeadLetterEntry, EnvelopeCodec, ErrorCode, Keyspace } from '@coordbus/envelope';
import { encodeDeadLetter } from '@coordbus/redis-streams';
import { cleanupNamespace, testKeyspace, testRedisUrl } from '@coordbus/testing';
import { COORDBUS, run } from './coord-helpers';

/** `coordbus dead ls|show|replay|drop` as an operator runs it, against real Redis (issue 13 §1). */
jest.setTimeout(180_000);

describe('coordbus dead (bin/coordbus)', () => {
  let redis: Redis;
  let ks: Keyspace;
  const codec = new EnvelopeCodec();
  const dead = (o: string[]) =>
    run(COORDBUS, ['dead', ...o], {
      env: { REDIS_URL: testRedisUrl(), COORDBUS_NAMESPACE: ks.namespace },
      timeoutMs: 60_000,
    });

  /** Dead-letters an entry the way every consumer does (the one encoder), returns its dead-letter id. */
  async function deadLetter(stream: string, n: number, reason: string, code: ErrorCode): Promise<string> {
    const entry = Object.assign(new DeadLetterEntry(), {
      fields: { type: 'telemetry', v: '1', data: JSON.stringify({ n }) },
      source_stream: stream,
      entry_id: `${1000 + n}-0`,
      reason,
      error_code: code,
      delivery_count: 5,
      group: 'archivist',
      consumer: 'c1',
      ts: new Date().toISOString(),
    });
    return (await redis.xadd(ks.deadLetter(stream), '*', ...encodeDeadLetter(codec, entry)))!;
  }

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
  });
  afterAll(() => redis.disconnect());
  beforeEach(() => {
    ks = testKeyspace('dead');
  });
  afterEach(async () => {
    await cleanupNamespace(redis, ks);
  });

  it('lists by stream, reason and id range; shows one; refuses an unknown stream and a dead-of-dead stream', async () => {
    const a = await deadLetter(ks.telemetryEvents, 1, 'payload.value: must be a number', ErrorCode.Invalid);
    const b = await deadLetter(ks.telemetryEvents, 2, 'boom in handler', ErrorCode.Internal);
    // `ls` lists oldest first by entry id across streams: ids of two streams written in the same
    // millisecond tie, so the third letter goes into a later one.
    await new Promise((r) => setTimeout(r, 5));
    const c = await deadLetter(ks.coordEvents, 3, 'payload.resource: missing', ErrorCode.Invalid);
    const ls = await dead(['ls', '--json']);
    expect(ls.code).toBe(0);
    expect((JSON.parse(ls.stdout) as { id: string }[]).map((v) => v.id)).toEqual([a, b, c]);
    const ids = async (args: string[]) =>
      (JSON.parse((await dead(['ls', '--json', ...args])).stdout) as { id: string }[]).map((v) => v.id);
    expect(await ids(['--stream', ks.telemetryEvents])).toEqual([a, b]);
    expect(await ids(['--stream', ks.deadLetter(ks.coordEvents)])).toEqual([c]);
    expect(await ids(['--reason', 'Invalid'])).toEqual([a, c]);
    expect(await ids(['--reason', 'BOOM'])).toEqual([b]);
    expect(await ids(['--from', b, '--to', c])).toEqual([b, c]);
    expect(await ids(['--to', a])).toEqual([a]);

    const show = await dead(['show', b, '--json']);
    expect(JSON.parse(show.stdout)).toMatchObject({
      id: b,
      source_stream: ks.telemetryEvents,
      entry: { reason: 'boom in handler', error_code: 'Internal', fields: { data: '{"n":2}' } },
    });
    const human = await dead(['ls']);
    expect(human.stdout).toContain(`${a}  ${ks.telemetryEvents}  entry 1001-0  Invalid  after 5 deliveries`);

    expect((await dead(['ls', '--stream', 'nope'])).code).toBe(7);
    expect((await dead(['ls', '--stream', `${ks.deadLetter(ks.coordEvents)}:dead`])).code).toBe(7);
    expect((await dead(['ls', '--from', 'yesterday'])).code).toBe(7);
    expect((await dead(['show', '1-1'])).code).toBe(4);
  });

  it('replays each dead letter to its source exactly once, even with two operators racing; drop removes', async () => {
    const ids = [];
    for (let n = 0; n < 6; n++)
      ids.push(await deadLetter(ks.telemetryEvents, n, 'store refused', ErrorCode.Invalid));
    const other = await deadLetter(ks.coordEvents, 9, 'kept', ErrorCode.Internal);

    // Refuses to act on everything by accident.
    expect((await dead(['replay'])).code).toBe(7);

    const one = await dead(['replay', ids[0], '--json']);
    expect(one.code).toBe(0);
    expect(JSON.parse(one.stdout)).toEqual([{ id: ids[0], status: 'redriven', new_id: expect.any(String) }]);
    // A second replay of the same letter finds nothing: never delivered twice.
    expect((await dead(['replay', ids[0]])).code).toBe(4);

    // Two operators replaying the same selection at once: each letter moves once.
    const [r1, r2] = await Promise.all([
      dead(['replay', '--stream', ks.telemetryEvents, '--reason', 'refused', '--json']),
      dead(['replay', '--stream', ks.telemetryEvents, '--reason', 'refused', '--json']),
    ]);
    expect([r1.code, r2.code]).toEqual([0, 0]);
    const statuses = [...JSON.parse(r1.stdout), ...JSON.parse(r2.stdout)] as { id: string; status: string }[];
    expect(
      statuses
        .filter((s) => s.status === 'redriven')
        .map((s) => s.id)
        .sort(),
    ).toEqual(ids.slice(1).sort());

    const source = await redis.xrange(ks.telemetryEvents, '-', '+');
    expect(source.map(([, f]) => f[f.indexOf('data') + 1]).sort()).toEqual(
      [0, 1, 2, 3, 4, 5].map((n) => JSON.stringify({ n })).sort(),
    );
    expect(source[0][1]).toEqual(expect.arrayContaining(['type', 'telemetry', 'v', '1']));
    expect(await redis.xlen(ks.deadLetter(ks.telemetryEvents))).toBe(0);

    const drop = await dead(['drop', other]);
    expect(drop.code).toBe(0);
    expect(drop.stdout).toContain('dropped 1 of 1');
    expect(await redis.xlen(ks.deadLetter(ks.coordEvents))).toBe(0);
    expect(await redis.exists(`${ks.deadLetter(ks.coordEvents)}:dead`)).toBe(0);
  });
});

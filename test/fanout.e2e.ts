import { ChildProcess, spawn } from 'node:child_process';
import Redis from 'ioredis';
import { CoordOpEnvelope, EnvelopeCodec, fieldsToRecord, Keyspace, Schemas } from '@coordbus/envelope';
import { buildEnvelope, envelopeFields } from '@coordbus/coord';
import {
  cleanupNamespace,
  ServiceProcess,
  startService,
  testKeyspace,
  testRedisUrl,
  waitFor,
} from '@coordbus/testing';
import { formatEnvelopeLine } from '../apps/cli/src/tail/format';
import { COORD, COORDBUS, run } from './coord-helpers';

jest.setTimeout(90_000);
const codec = new EnvelopeCodec();

/** `redis-cli` exactly as seed 000 tells users to run it, against the test Redis. */
function redisCliArgs(): string[] {
  const u = new URL(testRedisUrl());
  return ['-h', u.hostname, '-p', u.port || '6379'];
}

/** Starts `redis-cli psubscribe <pattern>` and collects what it prints. */
function psubscribe(pattern: string): { child: ChildProcess; out: () => string } {
  const child = spawn('redis-cli', [...redisCliArgs(), 'psubscribe', pattern], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  return { child, out: () => out };
}

/**
 * The fanout-publisher as deployed: two replicas (built processes) in the `fanout` group,
 * real coord processes producing, and the seed's three redis-cli commands reading.
 */
describe('fanout-publisher (2 replicas)', () => {
  let redis: Redis;
  let ks: Keyspace;
  let replicas: ServiceProcess[] = [];

  beforeAll(async () => {
    redis = new Redis(testRedisUrl());
    ks = testKeyspace('fanout');
    const env = {
      REDIS_URL: testRedisUrl(),
      COORDBUS_NAMESPACE: ks.namespace,
      FANOUT_TRIM_INTERVAL_MS: '200',
    };
    replicas = await Promise.all([
      startService('fanout-publisher', { ...env, COORDBUS_CONSUMER: 'replica-a' }),
      startService('fanout-publisher', { ...env, COORDBUS_CONSUMER: 'replica-b' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop('SIGTERM')));
    await cleanupNamespace(redis, ks);
    redis.disconnect();
  });

  it('fans every envelope out exactly once to logs.coord.<level> and logs:stream:coord, readable with redis-cli', async () => {
    const all = psubscribe(ks.coordLevelPattern);
    const warns = psubscribe(ks.coordLevelChannel('warn'));
    const errors = psubscribe(ks.coordLevelChannel('error'));
    const sub = new Redis(testRedisUrl());
    const received: CoordOpEnvelope[] = [];
    sub.on('pmessage', (_p, _c, m: string) => received.push(JSON.parse(m)));
    await sub.psubscribe(ks.coordLevelPattern);
    try {
      await waitFor(
        () => [all, warns, errors].every((s) => s.out().includes('psubscribe')),
        'redis-cli to subscribe',
      );
      const before = (await redis.xlen(ks.coordReplay)) as number;

      // Real coord ops: one refused (exit 3, a conflict: its post envelope is warn), one failed
      // (exit 4, unlocking what nobody holds: error)...
      const env = { REDIS_URL: testRedisUrl(), COORDBUS_NAMESPACE: ks.namespace };
      await run(COORD, ['lock', 'fan-res'], { env: { ...env, COORD_SESSION_ID: 'fan-a' } });
      const conflict = await run(COORD, ['lock', 'fan-res'], { env: { ...env, COORD_SESSION_ID: 'fan-b' } });
      expect(conflict.code).toBe(3);
      const failed = await run(COORD, ['unlock', 'fan-nobody'], {
        env: { ...env, COORD_SESSION_ID: 'fan-c' },
      });
      expect(failed.code).toBe(4);
      // ...plus a burst written straight to the ingest stream, for volume across both replicas.
      const N = 400;
      const pipe = redis.pipeline();
      for (let i = 0; i < N; i++) {
        const e = buildEnvelope({ op: 'heartbeat', session: `burst-${i}` }, i % 2 ? 'post' : 'pre', {
          durationMs: 1,
          exitCode: 0,
        });
        pipe.xadd(ks.coordIngest, '*', ...envelopeFields(e));
      }
      await pipe.exec();
      const total = N + 6;

      await waitFor(
        async () => (await redis.xlen(ks.coordReplay)) - before >= total,
        'every envelope on the replay stream',
        30_000,
      );
      await waitFor(() => received.length >= total, 'every envelope on pub/sub', 10_000);
      // Nothing more arrives (no doubles): the consumer group has nothing pending or undelivered.
      await waitFor(async () => {
        const groups = (await redis.xinfo('GROUPS', ks.coordIngest)) as unknown[][];
        const g = fieldsToRecord(groups[0].map(String));
        return (
          g.pending === '0' &&
          g['last-delivered-id'] === (await redis.xrevrange(ks.coordIngest, '+', '-', 'COUNT', 1))[0][0]
        );
      }, 'the fanout group to ack everything');

      const replay = await redis.xrange(ks.coordReplay, '-', '+');
      const sessions = replay
        .map(([, f]) => codec.decode(Schemas.coordOp, f))
        .map((e) => `${e.fields.session}/${e.fields.phase}`);
      expect(sessions).toHaveLength(total);
      expect(new Set(sessions).size).toBe(total);
      expect(received).toHaveLength(total);
      // Both replicas did part of the work.
      const metrics = await Promise.all(replicas.map(async (r) => (await fetch(`${r.url}/metrics`)).text()));
      const counts = metrics.map((m) =>
        Number(/coordbus_fanout_published_total\{[^}]*level="info"[^}]*\} (\d+)/.exec(m)?.[1] ?? 0),
      );
      expect(counts.every((c) => c > 0)).toBe(true);

      // `redis-cli XREVRANGE logs:stream:coord + - COUNT 20`: newest first, readable fields.
      const xrev = await run('redis-cli', [
        ...redisCliArgs(),
        'XREVRANGE',
        ks.coordReplay,
        '+',
        '-',
        'COUNT',
        '20',
      ]);
      expect(xrev.code).toBe(0);
      const lines = xrev.stdout.trim().split('\n');
      expect(lines.filter((l) => l === 'level')).toHaveLength(20);
      expect(xrev.stdout).toContain('"service":"coord"');

      // `psubscribe 'logs.coord.*'` saw everything; `logs.coord.warn` only the refused lock's post
      // (a conflict is not an error); `logs.coord.error` only the failed unlock's post.
      await waitFor(
        () => (all.out().match(/"service":"coord"/g) ?? []).length >= total,
        'redis-cli psubscribe logs.coord.*',
      );
      await waitFor(() => warns.out().includes('"exit_code":3'), 'redis-cli psubscribe logs.coord.warn');
      await waitFor(() => errors.out().includes('"exit_code":4'), 'redis-cli psubscribe logs.coord.error');
      expect(warns.out().match(/"service":"coord"/g)).toHaveLength(1);
      expect(warns.out()).toContain(ks.coordLevelChannel('warn'));
      expect(errors.out().match(/"service":"coord"/g)).toHaveLength(1);
      expect(errors.out()).not.toContain('"exit_code":3');
    } finally {
      all.child.kill();
      warns.child.kill();
      errors.child.kill();
      sub.disconnect();
    }
  });

  it('dead-letters an invalid entry with the reason and keeps going', async () => {
    const bad = await redis.xadd(
      ks.coordIngest,
      '*',
      'type',
      'coord-op',
      'v',
      '0',
      'data',
      JSON.stringify({ v: 0, level: 'loud' }),
    );
    const good = buildEnvelope({ op: 'status', session: 'after-bad' }, 'pre');
    await redis.xadd(ks.coordIngest, '*', ...envelopeFields(good));
    const dead = await waitFor(
      async () => (await redis.xrange(ks.deadLetter(ks.coordIngest), '-', '+'))[0],
      'the dead letter',
    );
    const entry = codec.decode(Schemas.deadLetter, dead[1]);
    expect(entry).toMatchObject({ entry_id: bad, error_code: 'Invalid', group: 'fanout' });
    expect(entry.reason).toContain('level');
    await waitFor(async () => {
      const last = await redis.xrevrange(ks.coordReplay, '+', '-', 'COUNT', 1);
      return last[0] && codec.decode(Schemas.coordOp, last[0][1]).fields.session === 'after-bad';
    }, 'the next valid envelope to be fanned out');
  });

  it('trims the ingest stream once every group has acked', async () => {
    await waitFor(
      async () => (await redis.xlen(ks.coordIngest)) < 50,
      'ack-aware trimming of the ingest stream',
      20_000,
    );
  });

  it('coordbus replay prints the last entries oldest first (--reverse: newest first); coordbus tail prints live lines with filters', async () => {
    const env = { REDIS_URL: testRedisUrl(), COORDBUS_NAMESPACE: ks.namespace };
    // What the replay stream holds, oldest first (two replicas may interleave; the stream's order is the truth).
    const stream = (await redis.xrange(ks.coordReplay, '-', '+')).map(([, f]) =>
      codec.decode(Schemas.coordOp, f),
    );
    const last3 = stream.slice(-3);
    const replay = await run(COORDBUS, ['replay', '--count', '3'], { env });
    expect(replay.code).toBe(0);
    const lines = replay.stdout.trim().split('\n');
    expect(lines).toEqual(last3.map(formatEnvelopeLine));
    // The newest (the envelope after the dead letter) comes last, as in `tail`.
    expect(lines[2]).toMatch(/^\S+Z INFO {2}coord\.status start\s+session=after-bad op=status/);
    const reversed = await run(COORDBUS, ['replay', '--count', '3', '--reverse'], { env });
    expect(reversed.stdout.trim().split('\n')).toEqual(last3.map(formatEnvelopeLine).reverse());

    const asJson = await run(COORDBUS, ['replay', '--count', '2', '--json', '--session', 'fan-b'], { env });
    const envs = asJson.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as CoordOpEnvelope);
    const fanB = stream.filter((e) => e.fields.session === 'fan-b');
    expect(envs).toEqual(fanB);
    // Two replicas may fan a pre and its post out in either order: the levels compared as a set.
    expect(envs.map((e) => [e.fields.phase, e.level]).sort()).toEqual([
      ['post', 'warn'],
      ['pre', 'info'],
    ]);
    const jsonReversed = await run(
      COORDBUS,
      ['replay', '--count', '2', '--json', '--session', 'fan-b', '--reverse'],
      { env },
    );
    expect(
      jsonReversed.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as CoordOpEnvelope),
    ).toEqual([...fanB].reverse());
    expect((await run(COORDBUS, ['replay', '--since', '1h'], { env })).code).toBe(2);

    const tail = spawn(COORDBUS, ['tail', '--op', 'unlock', '--level', 'error'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    tail.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    try {
      // Keep producing until tail is subscribed and has printed the failing unlock.
      await waitFor(
        async () => {
          await run(COORD, ['unlock', 'not-held'], { env: { ...env, COORD_SESSION_ID: 'tailer' } });
          return out.includes('coord.unlock end');
        },
        'coordbus tail to print the failed unlock',
        30_000,
        200,
      );
      const printed = out.trim().split('\n');
      expect(
        printed.every((l) =>
          / ERROR coord\.unlock end\s+session=tailer op=unlock resource=not-held exit=4 /.test(l),
        ),
      ).toBe(true);
    } finally {
      tail.kill('SIGINT');
    }
  });
});

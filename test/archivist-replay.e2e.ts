import { PassThrough } from 'node:stream';
import Redis from 'ioredis';
import { CoordOpEnvelope, GROUPS, Keyspace, Schemas } from '@coordbus/envelope';
import { cleanupNamespace, testKeyspace, testRedisUrl, waitFor } from '@coordbus/testing';
import { runArchiveReplay } from '../apps/cli/src/archive/replay';
import { formatEnvelopeLine } from '../apps/cli/src/tail/format';
import { COORDBUS, run } from './coord-helpers';
import {
  Archivist,
  coordOp,
  removeDir,
  startArchivist,
  waitForCount,
  xadd,
} from '../apps/telemetry-archivist/test/harness';

jest.setTimeout(60_000);

/** Collects what runArchiveReplay writes, line by line. */
function sink() {
  const out = new PassThrough();
  const lines: string[] = [];
  let buf = '';
  out.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  const err = new PassThrough();
  let errText = '';
  err.on('data', (d: Buffer) => (errText += d.toString()));
  return { out, lines, err, errText: () => errText };
}

describe('coordbus replay --archive (built archivist)', () => {
  let keyspace: Keyspace;
  let redis: Redis;
  let archivist: Archivist | undefined;
  let dataDir: string | undefined;
  const envFor = (a: Archivist) => ({
    ARCHIVIST_URL: a.url,
    REDIS_URL: testRedisUrl(),
    COORDBUS_NAMESPACE: keyspace.namespace,
  });

  beforeEach(() => {
    keyspace = testKeyspace('arch-replay');
    redis = new Redis(testRedisUrl());
  });

  afterEach(async () => {
    await archivist?.stop();
    archivist = undefined;
    if (dataDir) removeDir(dataDir);
    dataDir = undefined;
    await cleanupNamespace(redis, keyspace);
    redis.disconnect();
  });

  const op = (i: number) =>
    coordOp(i, {
      session: i % 2 ? 'odd' : 'even',
      op: i % 5 ? 'lock' : 'msg',
      ts: new Date(Date.UTC(2026, 5, 1, 10, 0, 0, i * 10)).toISOString(),
    });
  const publish = async (from: number, to: number) => {
    for (let i = from; i <= to; i++) await xadd(redis, keyspace.coordIngest, Schemas.coordOp, op(i));
  };

  it('sends the read token to an archivist that requires one, and says which variable is missing', async () => {
    await publish(1, 5);
    const token = 'replay-read-token-0123456789';
    archivist = await startArchivist(keyspace, testRedisUrl(), { COORDBUS_API_TOKEN: token });
    dataDir = archivist.dataDir;
    const env = { ...envFor(archivist), COORDBUS_API_TOKEN: token };
    let lines: string[] = [];
    await waitFor(
      async () => {
        const got = sink();
        if ((await runArchiveReplay({ json: true }, got.out, { env, err: got.err })) !== 0) return false;
        lines = got.lines;
        return lines.length === 5;
      },
      'the 5 entries through the token-guarded API',
      30_000,
    );
    expect(lines.map((l) => (JSON.parse(l) as CoordOpEnvelope).msg)).toEqual(
      [1, 2, 3, 4, 5].map((i) => `op ${i}`),
    );

    const without = sink();
    expect(await runArchiveReplay({}, without.out, { env: envFor(archivist), err: without.err })).toBe(2);
    expect(without.errText()).toMatch(/requires a token \(401\): set COORDBUS_API_TOKEN/);
    expect(without.lines).toEqual([]);
    const wrong = sink();
    const wrongEnv = { ...envFor(archivist), COORDBUS_API_TOKEN: 'not-the-right-token-000' };
    expect(await runArchiveReplay({}, wrong.out, { env: wrongEnv, err: wrong.err })).toBe(2);
    expect(wrong.errText()).toMatch(/refused the token \(401\)/);
    expect(wrong.errText()).not.toContain('not-the-right-token-000');
  });

  it('prints archived envelopes in the replay line format or as JSON, with filters and --count', async () => {
    await publish(1, 40);
    archivist = await startArchivist(keyspace, testRedisUrl());
    dataDir = archivist.dataDir;
    await waitForCount(archivist, 'stream=coordIngest', 40);
    const env = envFor(archivist);

    const all = sink();
    expect(await runArchiveReplay({}, all.out, { env, err: all.err })).toBe(0);
    expect(all.lines).toEqual(Array.from({ length: 40 }, (_, k) => formatEnvelopeLine(op(k + 1))));

    const json = sink();
    expect(await runArchiveReplay({ json: true, session: 'odd', op: 'msg' }, json.out, { env })).toBe(0);
    expect(json.lines.map((l) => JSON.parse(l) as CoordOpEnvelope)).toEqual([5, 15, 25, 35].map(op));

    const window = sink();
    const since = op(10).ts;
    const until = op(19).ts;
    expect(await runArchiveReplay({ since, until, json: true }, window.out, { env })).toBe(0);
    expect(window.lines.map((l) => (JSON.parse(l) as CoordOpEnvelope).msg)).toEqual(
      Array.from({ length: 10 }, (_, k) => `op ${k + 10}`),
    );

    const last = sink();
    expect(await runArchiveReplay({ count: 3, json: true }, last.out, { env })).toBe(0);
    expect(last.lines.map((l) => (JSON.parse(l) as CoordOpEnvelope).msg)).toEqual([
      'op 38',
      'op 39',
      'op 40',
    ]);

    // --reverse: the same selection, newest first.
    const lastReversed = sink();
    expect(await runArchiveReplay({ count: 3, json: true, reverse: true }, lastReversed.out, { env })).toBe(
      0,
    );
    expect(lastReversed.lines.map((l) => (JSON.parse(l) as CoordOpEnvelope).msg)).toEqual([
      'op 40',
      'op 39',
      'op 38',
    ]);
    const allReversed = sink();
    expect(await runArchiveReplay({ reverse: true }, allReversed.out, { env })).toBe(0);
    expect(allReversed.lines).toEqual(Array.from({ length: 40 }, (_, k) => formatEnvelopeLine(op(40 - k))));
    const windowReversed = sink();
    expect(
      await runArchiveReplay(
        { since, until, session: 'odd', reverse: true, json: true },
        windowReversed.out,
        { env },
      ),
    ).toBe(0);
    expect(windowReversed.lines.map((l) => (JSON.parse(l) as CoordOpEnvelope).msg)).toEqual([
      'op 19',
      'op 17',
      'op 15',
      'op 13',
      'op 11',
    ]);

    // The CLI as users run it: `coordbus replay --archive` prints in the same order as
    // `coordbus replay` (oldest first), `--reverse` newest first.
    const cli = await run(COORDBUS, ['replay', '--archive', '--count', '3'], { env });
    expect(cli).toMatchObject({ code: 0, stderr: '' });
    expect(cli.stdout).toBe([38, 39, 40].map((i) => `${formatEnvelopeLine(op(i))}\n`).join(''));
    const cliReversed = await run(COORDBUS, ['replay', '--archive', '--count', '3', '--reverse'], { env });
    expect(cliReversed.stdout).toBe([40, 39, 38].map((i) => `${formatEnvelopeLine(op(i))}\n`).join(''));
  });

  it('exits with a clear error for bad flags and an unreachable archivist', async () => {
    const bad = sink();
    expect(
      await runArchiveReplay({ since: 'yesterday' }, bad.out, {
        env: { ARCHIVIST_URL: 'http://127.0.0.1:9' },
        err: bad.err,
      }),
    ).toBe(2);
    expect(bad.errText()).toContain('--since must be an RFC 3339 time');
    const both = sink();
    expect(await runArchiveReplay({ follow: true, until: '1h' }, both.out, { err: both.err })).toBe(2);
    const reverseFollow = sink();
    expect(
      await runArchiveReplay({ follow: true, reverse: true }, reverseFollow.out, { err: reverseFollow.err }),
    ).toBe(2);
    expect(reverseFollow.errText()).toContain('--follow and --reverse cannot be combined');
    const down = sink();
    expect(
      await runArchiveReplay({}, down.out, { env: { ARCHIVIST_URL: 'http://127.0.0.1:9' }, err: down.err }),
    ).toBe(5);
    expect(down.errText()).toContain('the archivist at http://127.0.0.1:9 did not answer');
    expect(down.lines).toEqual([]);
  });

  it('--follow continues live after the archive with no gap and no repeat at the seam', async () => {
    // 1..50 archived and acked.
    await publish(1, 50);
    archivist = await startArchivist(keyspace, testRedisUrl(), { ARCHIVIST_RECLAIM_IDLE_MS: '10m' });
    dataDir = archivist.dataDir;
    await waitForCount(archivist, 'stream=coordIngest', 50);
    await archivist.stop();
    // 51..55 read by a replica that then died before committing: pending, not archived.
    // 56..60 archived and acked by the archivist after its restart: in the archive ABOVE the pending ones.
    await publish(51, 60);
    const ghost = await redis.xreadgroup(
      'GROUP',
      GROUPS.archivist,
      'ghost-replica',
      'COUNT',
      5,
      'STREAMS',
      keyspace.coordIngest,
      '>',
    );
    expect((ghost as Array<[string, unknown[]]>)[0][1]).toHaveLength(5);
    archivist = await startArchivist(keyspace, testRedisUrl(), { ARCHIVIST_RECLAIM_IDLE_MS: '10m' }, dataDir);
    await waitForCount(archivist, 'stream=coordIngest', 55);

    const s = sink();
    const ac = new AbortController();
    const done = runArchiveReplay({ follow: true, json: true }, s.out, {
      env: envFor(archivist),
      signal: ac.signal,
      err: s.err,
    });
    await waitFor(() => s.lines.length >= 60, 'the archived part and the stream up to now', 15_000);
    // Live entries published while following come through too.
    await publish(61, 70);
    await waitFor(() => s.lines.length >= 70, 'the live entries', 15_000);
    ac.abort();
    expect(await done).toBe(0);
    const msgs = s.lines.map((l) => (JSON.parse(l) as CoordOpEnvelope).msg);
    expect(msgs).toEqual(Array.from({ length: 70 }, (_, k) => `op ${k + 1}`));
    expect(s.errText()).toBe('');
  });
});

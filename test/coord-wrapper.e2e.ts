import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { CoordOpEnvelope, EnvelopeCodec, Keyspace, Schemas } from '@coordbus/envelope';
import { cleanupNamespace, testKeyspace, testRedisUrl, TestRedisServer, waitFor } from '@coordbus/testing';
import { run, WRAPPER } from './coord-helpers';

jest.setTimeout(60_000);
const codec = new EnvelopeCodec();

/**
 * coord-with-fanout wrapping a stand-in coord binary (a shell script that echoes its args and
 * stdin, and exits with the code it is told): exit code, stdio, signals, and the envelope bound.
 */
describe('coord-with-fanout', () => {
  let redis: Redis;
  let ks: Keyspace;
  let dir: string;
  let fake: string;

  beforeAll(async () => {
    redis = new Redis(testRedisUrl());
    dir = mkdtempSync(join(tmpdir(), 'coord-wrapper-'));
    fake = join(dir, 'coord');
    writeFileSync(
      fake,
      `#!/bin/sh
echo "args:$*"
if [ "$1" = sleep ]; then
  trap 'echo "got TERM" > "${dir}/term"; exit 143' TERM
  echo ready > "${dir}/ready"
  while :; do sleep 0.05; done
fi
cat
echo "to stderr" >&2
exit \${FAKE_EXIT:-0}
`,
    );
    chmodSync(fake, 0o755);
    await run(WRAPPER, ['--version'], { env: { COORD_BIN: '/bin/true', LOGS_COORD_DISABLED: '1' } });
  });
  afterAll(() => {
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    ks = testKeyspace('wrap');
  });
  afterEach(async () => {
    await cleanupNamespace(redis, ks);
  });

  const env = (extra: NodeJS.ProcessEnv = {}) => ({
    COORD_BIN: fake,
    REDIS_URL: testRedisUrl(),
    COORDBUS_NAMESPACE: ks.namespace,
    COORD_SESSION_ID: 'wrapped-1',
    ...extra,
  });
  const envelopes = async (): Promise<CoordOpEnvelope[]> =>
    (await redis.xrange(ks.coordIngest, '-', '+')).map(([, f]) => codec.decode(Schemas.coordOp, f));

  it("passes stdio through, keeps the wrapped binary's exit code and publishes pre/post envelopes", async () => {
    const r = await run(WRAPPER, ['lock', 'build-dir', '--ttl', '5'], {
      env: env({ FAKE_EXIT: '3' }),
      input: 'from stdin\n',
    });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('args:lock build-dir --ttl 5\nfrom stdin\n');
    expect(r.stderr).toBe('to stderr\n');
    const [pre, post] = await envelopes();
    expect(pre).toMatchObject({
      service: 'coord',
      level: 'info',
      target: 'coord::lock',
      msg: 'coord.lock start',
      fields: {
        op: 'lock',
        session: 'wrapped-1',
        resource: 'build-dir',
        phase: 'pre',
        exit_code: 0,
        duration_ms: 0,
      },
    });
    // Exit 3 is a conflict (someone else holds it): warn, not error.
    expect(post).toMatchObject({
      level: 'warn',
      msg: 'coord.lock end',
      fields: { phase: 'post', exit_code: 3, resource: 'build-dir' },
    });

    const ok = await run(WRAPPER, ['heartbeat'], { env: env() });
    expect(ok.code).toBe(0);
    // A real failure of the wrapped binary (here 5, Redis unavailable) stays error.
    expect((await run(WRAPPER, ['heartbeat'], { env: env({ FAKE_EXIT: '5' }) })).code).toBe(5);
    expect(
      (await envelopes()).slice(2).map((e) => [e.level, e.fields.phase, e.fields.op, e.fields.exit_code]),
    ).toEqual([
      ['info', 'pre', 'heartbeat', 0],
      ['info', 'post', 'heartbeat', 0],
      ['info', 'pre', 'heartbeat', 0],
      ['error', 'post', 'heartbeat', 5],
    ]);
  });

  it('forwards SIGTERM to the wrapped binary and dies the way it did', async () => {
    let pid = 0;
    const running = run(WRAPPER, ['sleep'], { env: env(), onSpawn: (p) => (pid = p) });
    await waitFor(() => {
      try {
        return readFileSync(join(dir, 'ready'), 'utf8');
      } catch {
        return undefined;
      }
    }, 'the wrapped coord to start');
    process.kill(pid, 'SIGTERM');
    const r = await running;
    expect(readFileSync(join(dir, 'term'), 'utf8')).toBe('got TERM\n');
    expect(r.code).toBe(143);
    const post = (await envelopes()).find((e) => e.fields.phase === 'post');
    expect(post?.fields.exit_code).toBe(143);
  });

  it('a missing COORD_BIN exits 127 with a message', async () => {
    const r = await run(WRAPPER, ['status'], { env: env({ COORD_BIN: join(dir, 'nope') }) });
    expect(r.code).toBe(127);
    expect(r.stderr).toContain('cannot run');
  });

  it('Redis down: no delay beyond LOGS_COORD_REDIS_TIMEOUT, exit code unchanged; LOGS_COORD_DISABLED=1 skips Redis', async () => {
    const server = await new TestRedisServer().start();
    const url = server.url;
    await server.stop();
    try {
      // Baseline: the same wrapper with publishing disabled.
      const off = await run(WRAPPER, ['status'], {
        env: env({ REDIS_URL: url, LOGS_COORD_DISABLED: '1', FAKE_EXIT: '4' }),
      });
      expect(off.code).toBe(4);
      const down = await run(WRAPPER, ['status'], {
        env: env({ REDIS_URL: url, FAKE_EXIT: '4', LOGS_COORD_REDIS_TIMEOUT: '0.25' }),
      });
      expect(down.code).toBe(4);
      expect(down.stdout).toBe('args:status\n');
      expect(down.stderr).toBe('to stderr\n');
      // Refused connections fail at once; the bound caps anything slower. Generous slack for a loaded CI box.
      expect(down.ms - off.ms).toBeLessThan(250 + 1500);
      // A Redis that accepts but never answers is cut off by the bound too.
      const silent = createServer(() => undefined);
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      try {
        const port = (silent.address() as AddressInfo).port;
        const slow = await run(WRAPPER, ['status'], {
          env: env({ REDIS_URL: `redis://127.0.0.1:${port}`, LOGS_COORD_REDIS_TIMEOUT: '0.3' }),
        });
        expect(slow.code).toBe(0);
        expect(slow.ms - off.ms).toBeLessThan(300 + 1500);
      } finally {
        silent.close();
      }
    } finally {
      await server.dispose?.();
    }
  });
});

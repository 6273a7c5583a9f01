import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import { SERVICES } from '@coordbus/config';
import { Keyspace } from '@coordbus/envelope';
import { REPO_ROOT, streamDrained, streamGroups, waitFor } from '@coordbus/testing';
import { COORD, COORDBUS, RunResult, json, run } from '../coord-helpers';

/**
 * The whole system as `docker compose` runs it (run by test/compose/run.mjs, which owns the
 * project and always takes it down with `down -v`): build the one image, start every service and
 * wait for readiness, scale two consumer groups, drive a fleet through the CLI in the image and
 * the host CLI against the published Redis, run hook jobs in a mounted worktree from the host,
 * then SIGKILL one replica of every consumer service while envelopes flow and check each comes
 * back and nothing is lost or doubled. The tests run in order and share the project.
 */
const PROJECT = process.env.COORDBUS_COMPOSE_PROJECT;
const WORKSPACE = process.env.COORDBUS_COMPOSE_WORKSPACE!;
const REDIS_PORT = Number(process.env.REDIS_HOST_PORT);
const REDIS_URL = `redis://127.0.0.1:${REDIS_PORT}`;
const CONSUMERS = SERVICES.filter((s) => s.consumes);
const ks = new Keyspace('');
const hostEnv = { REDIS_URL, ARCHIVIST_URL: '' };

if (!PROJECT)
  throw new Error('run through `npm run test:compose` (test/compose/run.mjs sets the project up)');

let redis: Redis;
// Failing fast: a step that fails leaves the later ones nothing to stand on.
let broken = '';
const step = (name: string, fn: () => Promise<void>, timeoutMs: number) =>
  it(
    name,
    async () => {
      if (broken) throw new Error(`not run: "${broken}" failed`);
      // Progress straight to stderr (jest holds test output until the file ends), so a run the
      // runner's watchdog stops still shows how far it got.
      const t0 = Date.now();
      process.stderr.write(`== compose e2e: ${name}\n`);
      try {
        await fn();
        process.stderr.write(`== compose e2e:   ok in ${Math.round((Date.now() - t0) / 1000)} s\n`);
      } catch (err) {
        broken = name;
        throw err;
      }
    },
    timeoutMs,
  );

const compose = (args: string[], timeoutMs = 120_000, env: NodeJS.ProcessEnv = {}) =>
  run('docker', ['compose', ...args], { timeoutMs, env });
const docker = (args: string[], timeoutMs = 30_000) => run('docker', args, { timeoutMs });
const ok = (r: RunResult, what: string): RunResult => {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
};
const coord = (session: string, args: string[]) =>
  run(COORD, args, { env: { ...hostEnv, COORD_SESSION_ID: session } });
const coordbus = (args: string[], timeoutMs = 20_000) => run(COORDBUS, args, { env: hostEnv, timeoutMs });
const inImage = (session: string, args: string[]) =>
  compose(['run', '--rm', '-T', '-e', `COORD_SESSION_ID=${session}`, 'cli', ...args], 60_000);

interface Ps {
  ID: string;
  Service: string;
  State: string;
  Health: string;
}
async function ps(): Promise<Ps[]> {
  const out = ok(await compose(['ps', '--format', 'json']), 'compose ps').stdout.trim();
  // Compose 2.21+ prints one JSON object per line; older ones one array.
  return out.startsWith('[')
    ? (JSON.parse(out) as Ps[])
    : out
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Ps);
}
const byService = (rows: Ps[]) =>
  Object.fromEntries(
    [...new Set(rows.map((r) => r.Service))].sort().map((s) => [
      s,
      rows
        .filter((r) => r.Service === s)
        .map((r) => r.Health || r.State)
        .sort(),
    ]),
  );

async function inspect(
  id: string,
): Promise<{ pid: number; restarts: number; health: string; running: boolean }> {
  const r = ok(
    await docker([
      'inspect',
      '-f',
      '{{.State.Pid}} {{.RestartCount}} {{.State.Health.Status}} {{.State.Running}}',
      id,
    ]),
    'docker inspect',
  );
  const [pid, restarts, health, running] = r.stdout.trim().split(' ');
  return { pid: Number(pid), restarts: Number(restarts), health, running: running === 'true' };
}

async function publishedUrl(service: string, port: number): Promise<string> {
  const r = ok(await compose(['port', service, String(port)]), `compose port ${service}`);
  return `http://${r.stdout.trim()}`;
}

/** Every archived envelope (its JSON) of one stream for one session, through the archivist's HTTP API. */
async function archived(stream: string, session: string): Promise<string[]> {
  const base = await publishedUrl('telemetry-archivist', 8085);
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const q = new URLSearchParams({ stream, session, limit: '1000', ...(cursor ? { cursor } : {}) });
    const res = await fetch(`${base}/v1/events?${q}`, {
      headers: { authorization: `Bearer ${process.env.COORDBUS_API_TOKEN}` },
    });
    if (res.status !== 200) throw new Error(`archivist answered ${res.status}: ${await res.text()}`);
    const page = (await res.json()) as { events: { data: unknown }[]; next_cursor: string | null };
    ids.push(...page.events.map((e) => JSON.stringify(e.data)));
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return ids;
}

async function jobStatus(id: string): Promise<string | undefined> {
  const jobs = json<{ id: string; status: string }[]>(
    ok(await coordbus(['jobs', 'ls', '--json']), 'jobs ls'),
  );
  return jobs.find((j) => j.id === id)?.status;
}

/** The envelopes (their JSON) of `session` in the replay stream logs:stream:coord, oldest first. */
async function replayed(session: string): Promise<string[]> {
  const entries = await redis.xrange(ks.coordReplay, '-', '+');
  return entries
    .map(([, fields]) => JSON.parse(fields[fields.indexOf('data') + 1]) as { fields?: { session?: string } })
    .filter((data) => data.fields?.session === session)
    .map((data) => JSON.stringify(data));
}

beforeAll(() => {
  redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 3 });
});
afterAll(() => redis.disconnect());

step(
  'docker compose build: the one image, built once',
  async () => {
    const r = ok(await compose(['build'], 9 * 60_000), 'compose build');
    // BuildKit names the image once per service that builds it.
    const named = (r.stdout + r.stderr).match(/naming to \S+/g) ?? [];
    expect(named).toHaveLength(1);
  },
  9 * 60_000,
);

step(
  'up -d --wait: every service becomes healthy by readiness, its port published on 127.0.0.1 only',
  async () => {
    ok(await compose(['up', '-d', '--wait', '--wait-timeout', '150'], 180_000), 'compose up --wait');
    const services = byService(await ps());
    expect(services).toEqual({
      'fanout-publisher': ['healthy'],
      'job-coordinator': ['healthy'],
      'log-tailer': ['healthy'],
      redis: ['healthy'],
      'sentinel-subscriber': ['healthy'],
      'telemetry-archivist': ['healthy'],
    });
    for (const s of CONSUMERS) {
      const url = await publishedUrl(s.name, s.port);
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
    }
    // The healthcheck is the readiness probe (container-entry.js healthcheck = /readyz).
    const [first] = await ps();
    const test = ok(
      await docker(['inspect', '-f', '{{json .Config.Healthcheck.Test}}', first.ID]),
      'inspect',
    );
    expect(JSON.parse(test.stdout)).toEqual([
      'CMD',
      'node',
      '/app/scripts/container-entry.js',
      'healthcheck',
    ]);
    await redis.connect();
    expect(await redis.ping()).toBe('PONG');
  },
  200_000,
);

step(
  'scales sentinel-subscriber=3 fanout-publisher=2, every replica healthy',
  async () => {
    ok(
      await compose(
        [
          'up',
          '-d',
          '--wait',
          '--wait-timeout',
          '120',
          '--scale',
          'sentinel-subscriber=3',
          '--scale',
          'fanout-publisher=2',
        ],
        150_000,
      ),
      'compose up --scale',
    );
    const services = byService(await ps());
    expect(services['sentinel-subscriber']).toEqual(['healthy', 'healthy', 'healthy']);
    expect(services['fanout-publisher']).toEqual(['healthy', 'healthy']);
  },
  160_000,
);

step(
  'a fleet through the CLI in the image and the host CLI against the published Redis',
  async () => {
    const reg = json(
      ok(await inImage('ctr-1', ['coord', 'register', '--task', 'compose', '--json']), 'register'),
    );
    expect(reg.status).toBe('registered');
    ok(await coord('host-1', ['register', '--task', 'host', '--json']), 'host register');
    ok(await inImage('ctr-1', ['coord', 'lock', 'src/a.ts', '--ttl', '600', '--json']), 'lock');
    const held = await coord('host-1', ['lock', 'src/a.ts', '--json']);
    expect({ code: held.code, out: held.stdout + held.stderr }).toEqual({
      code: 3,
      out: expect.stringContaining('ctr-1'),
    });
    ok(await inImage('ctr-1', ['coord', 'send', 'host-1', 'from the container', '--json']), 'send');
    ok(await inImage('ctr-1', ['coord', 'heartbeat', '--json']), 'heartbeat');
    const inbox = json<{ body?: string; from?: string }[]>(
      ok(await coord('host-1', ['recv', '--drain', '--json']), 'recv'),
    );
    expect(inbox.map((m) => JSON.stringify(m))).toEqual([expect.stringContaining('from the container')]);
    ok(await coord('host-1', ['send', 'ctr-1', 'from the host', '--json']), 'host send');
    const back = ok(await inImage('ctr-1', ['coord', 'recv', '--drain', '--json']), 'recv in image');
    expect(back.stdout).toContain('from the host');
    ok(await inImage('ctr-1', ['coord', 'dereg', '--json']), 'dereg');
    ok(await coord('host-1', ['dereg', '--json']), 'host dereg');
  },
  180_000,
);

step(
  'XREVRANGE logs:stream:coord holds both fleets’ envelopes, each once (pre and post of every op)',
  async () => {
    // ctr-1 ran 6 ops (register lock send heartbeat recv dereg), host-1 5 (register, a refused
    // lock, recv, send, dereg): a pre and a post envelope each.
    const expected = { 'ctr-1': 12, 'host-1': 10 };
    let got: Record<string, number> = {};
    await waitFor(
      async () => {
        got = Object.fromEntries(
          await Promise.all(Object.keys(expected).map(async (s) => [s, (await replayed(s)).length] as const)),
        );
        return JSON.stringify(got) === JSON.stringify(expected);
      },
      'the fleet to be fanned out',
      20_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(got)}`);
    });
    for (const session of Object.keys(expected)) {
      const envelopes = await replayed(session);
      expect({ session, distinct: new Set(envelopes).size }).toEqual({ session, distinct: envelopes.length });
    }
  },
  30_000,
);

step(
  'hook jobs in a mounted worktree from the host CLI: run, logs --follow, cancel; a worktree no replica sees is refused at once',
  async () => {
    const wt = join(WORKSPACE, 'wt-1');
    mkdirSync(wt, { recursive: true });
    const submitted = json<{ id: string; status: string }>(
      ok(
        await coordbus([
          'jobs',
          'run',
          '--cwd',
          wt,
          '--worktree',
          'wt-1',
          '--json',
          '--shell',
          '--',
          'pwd; id -u; echo built > out.txt; echo done',
        ]),
        'jobs run',
      ),
    );
    expect(submitted.status).toBe('queued');
    const logs = ok(await coordbus(['jobs', 'logs', submitted.id, '--follow'], 60_000), 'jobs logs --follow');
    expect(logs.stdout).toContain(wt);
    expect(logs.stdout).toContain(`${process.getuid!()}\n`);
    expect(await jobStatus(submitted.id)).toBe('succeeded');
    // Written in the user's worktree, as the user.
    expect(readFileSync(join(wt, 'out.txt'), 'utf8')).toBe('built\n');
    expect(statSync(join(wt, 'out.txt')).uid).toBe(process.getuid!());
    // The image's build compiled the spawn addon, and the replicas start their jobs with it.
    const coordinatorLogs = ok(await compose(['logs', 'job-coordinator']), 'compose logs').stdout;
    expect(coordinatorLogs).toContain('jobs are started by the spawn addon, without a fork');
    expect(coordinatorLogs).not.toContain('jobs are forked by a spawner helper process');

    const long = json<{ id: string }>(
      ok(await coordbus(['jobs', 'run', '--cwd', wt, '--json', '--', 'sleep', '300']), 'run'),
    );
    const follow = run(COORDBUS, ['jobs', 'logs', long.id, '--follow'], { env: hostEnv, timeoutMs: 60_000 });
    await waitFor(async () => (await jobStatus(long.id)) === 'running', 'the long job to run', 30_000);
    ok(await coordbus(['jobs', 'cancel', long.id]), 'jobs cancel');
    // --follow ends when the job does.
    await follow;
    expect(await jobStatus(long.id)).toBe('cancelled');

    const outside = REPO_ROOT; // exists on the host, but no replica has it mounted
    const t0 = Date.now();
    const refused = await coordbus(['jobs', 'run', '--cwd', outside, '--', 'true']);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect({ code: refused.code, err: refused.stderr }).toEqual({
      code: 1,
      err: expect.stringContaining(`no job-coordinator can see ${outside}`),
    });
    const ls = ok(await coordbus(['jobs', 'ls']), 'jobs ls').stdout;
    expect(ls.split('\n').find((l) => l.includes(`no job-coordinator can see ${outside}`))).toMatch(
      /\bfailed\b/,
    );
  },
  150_000,
);

step(
  'kill -9 of one replica of every consumer service while envelopes flow: restarted, nothing lost or doubled, nothing pending',
  async () => {
    const session = 'load-1';
    ok(await coord(session, ['register', '--task', 'load', '--json']), 'register');
    let stop = false;
    let calls = 0;
    const failures: string[] = [];
    const loops = [0, 1].map(async () => {
      while (!stop) {
        const r = await coord(session, ['heartbeat', '--json']);
        calls++;
        if (r.code !== 0) failures.push(`exit ${r.code}: ${r.stderr}`);
      }
    });
    const killed: { service: string; id: string; before: number }[] = [];
    try {
      for (const s of CONSUMERS) {
        await new Promise((r) => setTimeout(r, 3000));
        const [victim] = (await ps()).filter((p) => p.Service === s.name);
        const before = await inspect(victim.ID);
        // The container's main process (tini), killed from the host: a crash, not `docker kill`
        // (a manual stop, which unless-stopped would not restart).
        process.kill(before.pid, 'SIGKILL');
        killed.push({ service: s.name, id: victim.ID, before: before.restarts });
      }
      await new Promise((r) => setTimeout(r, 3000));
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    expect(calls).toBeGreaterThan(10);
    // Redis stayed up: every heartbeat succeeded (services dying does not touch the coord path).
    expect(failures).toEqual([]);
    for (const k of killed) {
      await waitFor(
        async () => {
          const now = await inspect(k.id);
          return now.restarts > k.before && now.running && now.health === 'healthy';
        },
        `${k.service} (${k.id.slice(0, 12)}) to be restarted and healthy`,
        120_000,
        1000,
      );
    }
    const flow = [ks.coordIngest, ks.coordEvents, ks.telemetryEvents, ks.jobEvents, ks.sentinelObservations];
    let last = '';
    await waitFor(
      async () => {
        for (const s of flow)
          if (!(await streamDrained(redis, s))) {
            last = `${s}: ${JSON.stringify(await streamGroups(redis, s))}`;
            return false;
          }
        return true;
      },
      'every consumer group to drain',
      120_000,
      1000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${last}`);
    });
    // register + every heartbeat, a pre and a post envelope each: archived exactly once (none
    // missing, none twice), and fanned out exactly once, the same envelopes in both.
    const expected = 2 * (calls + 1);
    const inArchive = await archived('coordIngest', session);
    const inReplay = await replayed(session);
    expect({ archived: inArchive.length, distinct: new Set(inArchive).size }).toEqual({
      archived: expected,
      distinct: expected,
    });
    expect({ replayed: inReplay.length, distinct: new Set(inReplay).size }).toEqual({
      replayed: expected,
      distinct: expected,
    });
    expect([...inReplay].sort()).toEqual([...inArchive].sort());
    for (const s of [...flow, ...flow.map((x) => ks.deadLetter(x))]) {
      for (const g of await streamGroups(redis, s))
        expect({ s, g: g.name, pending: g.pending }).toEqual({ s, g: g.name, pending: 0 });
    }
    expect(await redis.xlen(ks.deadLetter(ks.coordIngest))).toBe(0);
  },
  360_000,
);

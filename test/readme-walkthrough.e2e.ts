import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import Redis from 'ioredis';
import { Keyspace } from '@coordbus/envelope';
import {
  cleanupNamespace,
  REPO_ROOT,
  ServiceProcess,
  startService,
  testKeyspace,
  testRedisUrl,
  waitFor,
} from '@coordbus/testing';
import { run, RunResult } from './coord-helpers';

jest.setTimeout(120_000);

interface Block {
  shell: string;
  lines: string[];
}

/** The README's ```sh walkthrough <shell>``` blocks, in order. */
function walkthroughBlocks(readme: string): Block[] {
  return [...readme.matchAll(/^```sh walkthrough (\S+)\n([\s\S]*?)^```$/gm)].map((m) => ({
    shell: m[1],
    lines: m[2].split('\n').filter((l) => l.trim() !== ''),
  }));
}

/** The ```text blocks of the README section that holds the walkthrough: the output it shows. */
function shownOutput(readme: string): string[] {
  const start = readme.indexOf('## Three sessions');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  return [...section.matchAll(/^```text\n([\s\S]*?)^```$/gm)].flatMap((m) =>
    m[1].split('\n').filter((l) => l.trim() !== '' && l.trim() !== '…'),
  );
}

/**
 * A shown line as a pattern over a real one: `…` elides anything (with the id it cuts), and the
 * values that differ per run or machine (numbers, the host name) match any value.
 */
function shownLinePattern(line: string): RegExp {
  const parts = line.split(/[0-9A-Z]*…/).map((part) =>
    part
      .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
      .replace(/\d+/g, '\\d+')
      .replace(/(host=|@)vm\b/g, '$1\\S+'),
  );
  return new RegExp(`^${parts.join('.*')}$`, 'm');
}

/**
 * README "Three sessions" as a user follows it: every command of its `sh walkthrough` blocks runs
 * through `sh` with bin/ on PATH against the built sentinel and fan-out started as `npm start`
 * starts them (no COORD_SESSION_TTL, no cull interval: the TTL comes from `config set`).
 */
describe('README walkthrough: three sessions', () => {
  let redis: Redis;
  let ks: Keyspace;
  let repo: string;
  const services: ServiceProcess[] = [];
  const background: ChildProcess[] = [];

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
    ks = testKeyspace('walkthrough');
    repo = mkdtempSync(join(tmpdir(), 'walkthrough-repo-'));
    mkdirSync(join(repo, '.git'));
    mkdirSync(join(repo, 'src'));
    writeFileSync(join(repo, 'src', 'auth.ts'), '');
  });
  afterAll(async () => {
    for (const p of background) {
      try {
        process.kill(-p.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await Promise.all(services.map((s) => s.stop('SIGKILL').catch(() => undefined)));
    await cleanupNamespace(redis, ks);
    redis.disconnect();
    rmSync(repo, { recursive: true, force: true });
  });

  it('culls, orders, locks and activity show in tail, events and status', async () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const blocks = walkthroughBlocks(readme);
    expect(blocks.map((b) => b.shell)).toEqual(['watch', 'A', 'B', 'C', 'A', 'B', 'A']);

    const svcEnv = { REDIS_URL: testRedisUrl(), COORDBUS_NAMESPACE: ks.namespace };
    services.push(
      ...(await Promise.all([
        startService('sentinel-subscriber', svcEnv, 60_000),
        startService('fanout-publisher', svcEnv, 60_000),
      ])),
    );

    const shellEnv = new Map<string, NodeJS.ProcessEnv>();
    const envOf = (shell: string) => {
      if (!shellEnv.has(shell))
        shellEnv.set(shell, {
          ...svcEnv,
          PATH: `${join(REPO_ROOT, 'bin')}${delimiter}${process.env.PATH}`,
          CLAUDE_SESSION_ID: '',
          COORD_SESSION_ID: '',
          COORD_SESSION_TTL: '',
        });
      return shellEnv.get(shell)!;
    };
    const spawnBackground = (shell: string, cmd: string) => {
      const child = spawn('sh', ['-c', cmd], {
        cwd: repo,
        env: { ...process.env, ...envOf(shell) },
        detached: true,
      });
      background.push(child);
      const out = { stdout: '', stderr: '' };
      child.stdout!.on('data', (d: Buffer) => (out.stdout += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out.stderr += d.toString()));
      return out;
    };

    const results: { shell: string; cmd: string; r: RunResult }[] = [];
    let tail = { stdout: '', stderr: '' };
    for (const block of blocks) {
      for (const line of block.lines) {
        const exported = /^export (\w+)=(.*)$/.exec(line);
        if (exported) {
          envOf(block.shell)[exported[1]] = exported[2];
          continue;
        }
        if (block.shell === 'watch') {
          tail = spawnBackground('watch', line);
          // The user sees its "following" line before going on.
          await waitFor(() => tail.stderr.includes('following'), 'coordbus tail connected', 20_000, 50);
          continue;
        }
        if (line.trimEnd().endsWith('&')) {
          spawnBackground(block.shell, line.trimEnd().slice(0, -1));
          continue;
        }
        const want = Number(/# exit (\d+)\s*$/.exec(line)?.[1] ?? 0);
        const until = /# repeat until it shows (\S+)/.exec(line)?.[1];
        const once = () => run('sh', ['-c', line], { env: envOf(block.shell), cwd: repo, timeoutMs: 30_000 });
        const r: RunResult = until
          ? (await waitFor(
              async () => {
                const x = await once();
                return x.stdout.includes(until) ? x : undefined;
              },
              `${line} to show ${until}`,
              40_000,
              300,
            ))!
          : await once();
        // The line and its stderr are in the failure message.
        expect({ line, code: r.code, stderr: r.stderr }).toMatchObject({ line, code: want });
        results.push({ shell: block.shell, cmd: line.replace(/\s+#.*$/, ''), r });
      }
    }
    const out = (shell: string, cmd: string) => {
      const hit = results.filter((x) => x.shell === shell && x.cmd === cmd).at(-1);
      if (!hit) throw new Error(`no "${cmd}" in shell ${shell}`);
      return hit.r;
    };

    // The glob conflict names the lock that blocks.
    expect(out('B', "coord lock 'src/**'").stderr).toContain(
      'lock src/** is held by alice (via src/auth.ts)',
    );
    // B's status lists its lock and its open order.
    const statusB = out('B', 'coord status').stdout;
    expect(statusB).toContain('locks: tests/**');
    expect(statusB).toContain('orders: 1 pending, 0 acked (o-43 TOD-43)');

    // After the cull: status/peers/locks without C, A and B live.
    const statusA = out('A', 'coord status').stdout;
    expect(statusA).toMatch(/^session alice: live/m);
    expect(statusA).toContain('locks: src/auth.ts');
    expect(statusA).toMatch(/^peers: 2 live of 2 /m);
    const peers = out('A', 'coord peers').stdout;
    expect(peers).toMatch(/^live {2}alice /m);
    expect(peers).toMatch(/^live {2}bob /m);
    expect(peers).not.toContain('carol');
    const locks = out('A', 'coord locks').stdout;
    expect(locks).toMatch(/^src\/auth\.ts +alice/m);
    expect(locks).toMatch(/^tests\/\*\* +bob/m);
    expect(locks).not.toContain('docs/guide.md');

    // events --json: the order's steps and the cull (with C's lock), in order.
    type Ev = {
      tx_kind: string;
      source: string;
      session_id: string;
      resource: string | null;
      payload: Record<string, unknown>;
    };
    const events = (cmd: string) =>
      out('A', cmd)
        .stdout.trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Ev);
    expect(
      events('coordbus events --kind dispatch --json')
        .filter((e) => e.payload.order_id === 'o-42')
        .map((e) => [e.tx_kind, e.session_id, e.payload.note ?? null]),
    ).toEqual([
      ['dispatch.issue', 'bob', null],
      ['dispatch.ack', 'bob', null],
      ['dispatch.done', 'bob', 'tests green'],
    ]);
    expect(
      events('coordbus events --session carol --json')
        .filter((e) => e.tx_kind !== 'session.heartbeat')
        .map((e) => [e.tx_kind, e.resource, e.payload.reason ?? null, e.source]),
    ).toEqual([
      ['session.register', null, null, 'coord'],
      ['lock.acquire', 'docs/guide.md', null, 'coord'],
      ['session.dereg', null, 'ttl-expired', 'sentinel'],
      ['lock.release', 'docs/guide.md', 'owner-evicted', 'sentinel'],
    ]);

    // The tail started first printed the conflict and the cull at warn, the order steps at info.
    await waitFor(
      () => tail.stdout.includes('coord.cull lock docs/guide.md of carol released'),
      'the cull in coordbus tail',
      20_000,
      100,
    );
    expect(tail.stdout).toMatch(/ WARN {2}coord\.lock end +session=bob op=lock resource=src\/\*\* exit=3 /);
    expect(tail.stdout).toMatch(
      / WARN {2}coord\.cull session carol culled: no heartbeat within the session TTL/,
    );
    expect(tail.stdout).toMatch(/ WARN {2}coord\.cull lock docs\/guide\.md of carol released: owner culled/);
    expect(tail.stdout).toMatch(/ INFO {2}coord\.order o-42 ack by bob /);
    expect(tail.stdout).toMatch(/ INFO {2}coord\.order o-42 done by bob: tests green /);
    expect(tail.stdout).not.toMatch(/coord\.cull session (alice|bob) /);

    // Every output line the README shows is one a command or the watcher really printed.
    const printed = [tail.stdout, ...results.flatMap((x) => [x.r.stdout, x.r.stderr])].join('\n');
    const shown = shownOutput(readme);
    expect(shown.length).toBeGreaterThan(20);
    const missing = shown.filter((l) => !shownLinePattern(l).test(printed));
    // On a mismatch the diff shows what was printed instead.
    expect({ missing, printed }).toEqual({ missing: [], printed });
  });
});

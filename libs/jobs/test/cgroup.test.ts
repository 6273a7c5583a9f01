import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processRunning, waitFor } from '@coordbus/testing';
import { JobCgroups, ownCgroupDir } from '../src/exec/cgroup';
import { CgroupMoveWindow, DEFAULT_CGROUP_MOVE_WINDOW } from '../src/exec/move-window';
import { HelperSpawner } from '../src/exec/spawner';
import { Harness } from './harness';

const alive = processRunning;

/**
 * The cgroup v2 path of job containment, on this host's real cgroup2 mount. The tests run as root
 * on a host with cgroup2 mounted (the development machine and CI); elsewhere the first test
 * checks that the reason is given instead.
 */
describe('job cgroups (cgroup v2)', () => {
  const base = ownCgroupDir();
  const usable = base !== null && process.getuid?.() === 0;
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'jobs-cgroup-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('opens under this process’s own cgroup, or says why it cannot', async () => {
    const groups = await JobCgroups.open();
    if (!usable) {
      expect(groups).toEqual({ unavailable: expect.any(String) });
      return;
    }
    expect(groups).toBeInstanceOf(JobCgroups);
    expect((groups as JobCgroups).dir).toBe(join(base!, 'coordbus-jobs', String(process.pid)));
    // The probe left nothing behind, and this process is back in its own cgroup.
    expect(ownCgroupDir()).toBe(base);
    expect(existsSync(join((groups as JobCgroups).dir, 'probe'))).toBe(false);
  });

  it('ends a daemon that left the process group and the session and cleared its environment', async () => {
    if (!usable) return expect(ownCgroupDir() === null || process.getuid?.() !== 0).toBe(true);
    const groups = (await JobCgroups.open()) as JobCgroups;
    // The job double-forks: the daemon calls setsid, clears its environment and outlives the job.
    const script = `setsid -f env -i /bin/sh -c 'echo $$ > ${dir}/daemon.pid; exec sleep 300'; exit 0`;
    // It forks at once: only a job born in its cgroup keeps the daemon in it.
    const cg = groups.create('job-daemon')!;
    const job = spawn(...cg.spawnArgs('/bin/sh', ['-c', script], true), { detached: true, stdio: 'ignore' });
    await new Promise((r) => job.once('exit', r));
    const daemon = await waitFor<number>(
      () =>
        (existsSync(join(dir, 'daemon.pid')) && Number(readFileSync(join(dir, 'daemon.pid'), 'utf8'))) || 0,
      'the daemon to start',
    );
    expect(alive(daemon)).toBe(true);
    expect(cg.pids()).toContain(daemon);
    expect(await cg.end(300)).toEqual([]);
    await waitFor(() => !alive(daemon), 'the daemon to be gone', 3000);
    expect(existsSync(cg.dir)).toBe(false);
  });

  it('a command job is born in its cgroup: same argv, same PATH lookup, its exit code kept', async () => {
    if (!usable) return expect(ownCgroupDir() === null || process.getuid?.() !== 0).toBe(true);
    const groups = (await JobCgroups.open()) as JobCgroups;
    const cg = groups.create('job-argv')!;
    const args = [
      '-c',
      'cat /proc/self/cgroup > "$1"; printf "%s|" "$@" >> "$1"; exit 3',
      'x',
      join(dir, 'out'),
      "it's",
      '$HOME',
    ];
    const child = spawn(...cg.spawnArgs('sh', args, false), { stdio: 'ignore' });
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(3);
    const out = readFileSync(join(dir, 'out'), 'utf8');
    expect(out).toMatch(new RegExp(`^0::(/.*)?/coordbus-jobs/${process.pid}/job-argv$`, 'm'));
    expect(out).toContain(`${join(dir, 'out')}|it's|$HOME|`);
    expect(await cg.end(100)).toEqual([]);
  });

  it('gives a member that ignores SIGTERM the grace, then kills it; an empty cgroup ends at once', async () => {
    if (!usable) return expect(ownCgroupDir() === null || process.getuid?.() !== 0).toBe(true);
    const groups = (await JobCgroups.open()) as JobCgroups;
    const stubborn = spawn(
      '/bin/sh',
      ['-c', `trap '' TERM; : > ${dir}/ready; while :; do sleep 0.05; done`],
      {
        detached: true,
        stdio: 'ignore',
      },
    );
    const cg = groups.create(`job-${stubborn.pid}`)!;
    cg.add(stubborn.pid!);
    await waitFor(() => existsSync(join(dir, 'ready')), 'SIGTERM ignored');
    const started = Date.now();
    expect(await cg.end(400)).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
    await waitFor(() => !alive(stubborn.pid!), 'the stubborn member to be gone', 3000);

    const empty = groups.create('job-empty')!;
    const t = Date.now();
    expect(await empty.end(5000)).toEqual([]);
    expect(Date.now() - t).toBeLessThan(1000);
    expect(existsSync(empty.dir)).toBe(false);
  });

  it('a job cgroup that ended empty is kept for the next job; the old handle can no longer touch it', async () => {
    if (!usable) return expect(ownCgroupDir() === null || process.getuid?.() !== 0).toBe(true);
    const groups = (await JobCgroups.open()) as JobCgroups;
    const first = groups.create()!;
    const ran = spawn(...first.spawnArgs('true', [], false), { stdio: 'ignore' });
    await new Promise((r) => ran.once('exit', r));
    expect(await first.end(100)).toEqual([]);
    expect(existsSync(first.dir)).toBe(true);
    // The next job is born in the same (empty) directory, through a new handle.
    const second = groups.create()!;
    expect(second).not.toBe(first);
    expect(second.dir).toBe(first.dir);
    const next = spawn(...second.spawnArgs('sleep', ['300'], false), { detached: true, stdio: 'ignore' });
    await waitFor(() => second.pids().includes(next.pid!), 'the next job in the kept cgroup');
    // A late kill or removal from the first job's handle (a kill timer after a cancel) is a no-op.
    first.kill();
    first.remove();
    expect(await first.end(0)).toEqual([]);
    expect(alive(next.pid!)).toBe(true);
    expect(await second.end(300)).toEqual([]);
    await waitFor(() => !alive(next.pid!), 'the next job to be gone', 3000);
    await groups.close(0);
    expect(existsSync(first.dir)).toBe(false);
  });

  it('a replica ends what a replica no longer running left in its cgroups, never a live replica’s jobs', async () => {
    if (!usable) return expect(ownCgroupDir() === null || process.getuid?.() !== 0).toBe(true);
    const root = join(base!, 'coordbus-jobs');
    // A replica that crashed (its pid is free) and one still running (this test's parent jest).
    const gonePid = spawnSync('true').pid!;
    const leftBehind = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
    const running = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
    for (const [replica, child] of [
      [gonePid, leftBehind],
      [process.ppid, running],
    ] as const) {
      mkdirSync(join(root, String(replica), 'job-x'), { recursive: true });
      writeFileSync(join(root, String(replica), 'job-x', 'cgroup.procs'), `${child.pid}\n`);
    }
    try {
      await JobCgroups.open();
      await waitFor(() => !alive(leftBehind.pid!), 'the crashed replica’s job to be gone', 3000);
      expect(existsSync(join(root, String(gonePid)))).toBe(false);
      expect(alive(running.pid!)).toBe(true);
    } finally {
      running.kill('SIGKILL');
      await waitFor(() => !alive(running.pid!), 'cleanup');
      rmdirSync(join(root, String(process.ppid), 'job-x'));
      rmdirSync(join(root, String(process.ppid)));
    }
  });

  it('finds the cgroup2 mount on a hybrid host and on a pure v2 host', () => {
    const hybrid =
      'cgroup /sys/fs/cgroup/memory cgroup rw 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n';
    expect(ownCgroupDir(hybrid, '4:memory:/x\n0::/\n')).toBe('/sys/fs/cgroup/unified');
    const v2 = 'cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n';
    expect(ownCgroupDir(v2, '0::/system.slice/coordbus.service\n')).toBe(
      '/sys/fs/cgroup/system.slice/coordbus.service',
    );
    expect(ownCgroupDir('cgroup /sys/fs/cgroup/memory cgroup rw 0 0\n', '4:memory:/x\n')).toBeNull();
  });
});

/** Through the executor, as a replica runs jobs where cgroup v2 is writable. */
describe('a job in its cgroup (executor)', () => {
  const usable = ownCgroupDir() !== null && process.getuid?.() === 0;
  let h: Harness;
  let dir: string;
  beforeAll(async () => {
    const cgroups = usable ? ((await JobCgroups.open()) as JobCgroups) : undefined;
    h = await new Harness('jobs-cgroup', { killGraceMs: 300, cgroups, spawner: 'helper' }).start();
  });
  afterAll(() => h.close());
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'jobs-cgroup-run-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const pidIn = (file: string) =>
    waitFor<number>(() => (existsSync(file) && Number(readFileSync(file, 'utf8'))) || 0, file);

  // The one escape the sweep cannot see: a daemon that leaves the group and the session, clears
  // its environment (no job marker) and is orphaned before any sample finds its parent chain.
  it.each([
    ['a shell job', (d: string) => ({ argv: [escape(d)], shell: true, cwd: d })],
    ['a command job', (d: string) => ({ argv: ['/bin/sh', '-c', escape(d)], shell: false, cwd: d })],
  ])('%s: a daemon that escaped everything else ends with the job', async (_kind, request) => {
    if (!usable) return expect(ownCgroupDir() === null || process.getuid?.() !== 0).toBe(true);
    const job = await h.run(request(dir));
    expect(job.status).toBe('succeeded');
    const daemon = await pidIn(join(dir, 'daemon.pid'));
    await waitFor(() => !alive(daemon), `the daemon ${daemon} to be gone`, 5000);
  });

  it.each([
    ['moves itself in for the fork (jobs in a burst)', Infinity],
    ['puts a shell in front (the first job after a pause)', 0],
  ])('the helper %s: the job is born in its cgroup, the helper stays in its own', async (_how, windowMs) => {
    if (!usable) return expect(ownCgroupDir() === null || process.getuid?.() !== 0).toBe(true);
    const cgroups = (await JobCgroups.open()) as JobCgroups;
    const h = await new Harness('jobs-cgroup-move', {
      cgroups,
      spawner: 'helper',
      moveWindow: CgroupMoveWindow.fixed(windowMs),
    }).start();
    try {
      const line = (pid: number | string) =>
        readFileSync(`/proc/${pid}/cgroup`, 'utf8')
          .split('\n')
          .find((l) => l.startsWith('0::'));
      for (const argv of [['cat', '/proc/self/cgroup'], ['cat /proc/self/cgroup']]) {
        const job = await h.run({ argv, shell: argv.length === 1, cwd: dir });
        expect(job.status).toBe('succeeded');
        const out = (await h.log(job.id)).filter((r) => r.kind === 'stdout').map((r) => r.line);
        expect(out).toContainEqual(
          expect.stringMatching(new RegExp(`^0::.*/coordbus-jobs/${process.pid}/job-\\d+$`)),
        );
        expect(line(h.spawner!.pid!)).toBe(line('self'));
      }
      // A job that forks at once: the child it started first is in the job's cgroup too.
      const job = await h.run({
        argv: ['/bin/sh', '-c', '(cat /proc/self/cgroup) & wait'],
        shell: false,
        cwd: dir,
      });
      const out = (await h.log(job.id)).filter((r) => r.kind === 'stdout').map((r) => r.line);
      expect(out).toContainEqual(expect.stringMatching(/\/coordbus-jobs\/\d+\/job-\d+$/));
      // Born in its cgroup (moved): no /proc sampling or sweep, the cgroup alone ends the daemon.
      const escaped = await h.run({ argv: [escape(dir)], shell: true, cwd: dir });
      expect(escaped.status).toBe('succeeded');
      const daemon = await pidIn(join(dir, 'daemon.pid'));
      await waitFor(() => !alive(daemon), `the daemon ${daemon} to be gone`, 5000);
      // Whether the spawner says so: only a fork inside the cgroup proves it.
      const born = await spawnTrueIn(h.spawner!, cgroups, 'job-born', dir);
      expect(born).toBe(windowMs > 0);
    } finally {
      await h.close();
    }
  });

  it.each([
    ['the job joins it itself before its exec (jobs in a burst)', Infinity],
    ['a shell in front joins it (the first job after a pause)', 0],
  ])(
    'the spawn addon: %s; the job is born in its cgroup, this process stays in its own',
    async (_how, windowMs) => {
      if (!usable) return expect(ownCgroupDir() === null || process.getuid?.() !== 0).toBe(true);
      const cgroups = (await JobCgroups.open()) as JobCgroups;
      const h = await new Harness('jobs-cgroup-native', {
        cgroups,
        spawner: 'native',
        moveWindow: CgroupMoveWindow.fixed(windowMs),
      }).start();
      try {
        const own = () =>
          readFileSync('/proc/self/cgroup', 'utf8')
            .split('\n')
            .find((l) => l.startsWith('0::'));
        const before = own();
        const inJobCgroup = expect.stringMatching(
          new RegExp(`^0::.*/coordbus-jobs/${process.pid}/job-\\d+$`),
        );
        for (const argv of [['cat', '/proc/self/cgroup'], ['cat /proc/self/cgroup']]) {
          const job = await h.run({ argv, shell: argv.length === 1, cwd: dir });
          expect(job.status).toBe('succeeded');
          const out = (await h.log(job.id)).filter((r) => r.kind === 'stdout').map((r) => r.line);
          expect(out.filter((line) => line?.startsWith('0::'))).toEqual([inJobCgroup]);
        }
        expect(own()).toBe(before);
        // A job that forks at once: the child it started first is in the job's cgroup too.
        const job = await h.run({
          argv: ['/bin/sh', '-c', '(cat /proc/self/cgroup) & wait'],
          shell: false,
          cwd: dir,
        });
        const out = (await h.log(job.id)).filter((r) => r.kind === 'stdout').map((r) => r.line);
        expect(out).toContainEqual(inJobCgroup);
        // Born in its cgroup: the cgroup alone ends a daemon that escaped everything else (the job
        // waits for its pid file: it ends so soon after the start that the daemon may not have run).
        const escaped = await h.run({
          argv: [`${escape(dir).replace(/; exit 0$/, '')}; until [ -s daemon.pid ]; do sleep 0.01; done`],
          shell: true,
          cwd: dir,
        });
        expect(escaped.status).toBe('succeeded');
        const daemon = await pidIn(join(dir, 'daemon.pid'));
        await waitFor(() => !alive(daemon), `the daemon ${daemon} to be gone`, 5000);
      } finally {
        await h.close();
      }
    },
  );

  it('the helper reports what each move into a job cgroup took, and its window learns from it', async () => {
    if (!usable) return expect(ownCgroupDir() === null || process.getuid?.() !== 0).toBe(true);
    const cgroups = (await JobCgroups.open()) as JobCgroups;
    const seen: { gap: number; took: number; windowAfter: number }[] = [];
    // Probes as often as it may: every spawn past the window is moved, and reported.
    const window = new (class extends CgroupMoveWindow {
      override observe(gap: number, took: number): void {
        super.observe(gap, took);
        seen.push({ gap, took, windowAfter: this.ms });
      }
    })({ ...DEFAULT_CGROUP_MOVE_WINDOW, probeMs: 1, maxProbeMs: 1 });
    const spawner = new HelperSpawner({ moveWindow: window });
    try {
      expect(await spawner.start()).toBe(true);
      const born: (boolean | undefined)[] = [];
      for (let i = 0; i < 4; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 60));
        born.push(await spawnTrueIn(spawner, cgroups, `job-window-${i}`, dir));
      }
      // The first spawn has no gap to judge by (a shell places it); each later one is a probe.
      expect(born).toEqual([false, true, true, true]);
      expect(seen).toHaveLength(3);
      for (const { gap, took, windowAfter } of seen) {
        expect(gap).toBeGreaterThanOrEqual(55);
        // Less any wait for a CPU: on a loaded machine that can be all of it (0), never negative.
        expect(Number.isFinite(took)).toBe(true);
        expect(took).toBeGreaterThanOrEqual(0);
        expect(took).toBeLessThan(5_000);
        // Cheap: the window covers that gap now; a stall: it is at most half of it.
        if (took <= DEFAULT_CGROUP_MOVE_WINDOW.stallMs) expect(windowAfter).toBeGreaterThanOrEqual(gap);
        else expect(windowAfter).toBeLessThanOrEqual(Math.max(gap / 2, DEFAULT_CGROUP_MOVE_WINDOW.minMs));
      }
    } finally {
      spawner.close();
    }
  });

  it('a command that does not exist still fails to start (ENOENT), not as a shell that exited 127', async () => {
    const job = await h.run({ argv: ['coordbus-no-such-command'], shell: false, cwd: dir });
    expect(job).toMatchObject({ status: 'failed', exit_code: 127, reason: 'could not start: ENOENT' });
  });
});

/** Spawns `true` in a new job cgroup; resolves with whether the spawner says it was born in it. */
function spawnTrueIn(
  spawner: HelperSpawner,
  cgroups: JobCgroups,
  name: string,
  cwd: string,
): Promise<boolean | undefined> {
  return new Promise((resolve) => {
    const cg = cgroups.create(name)!;
    spawner.spawn(
      { file: 'true', args: [], cwd, env: { PATH: process.env.PATH }, stdin: null, cgroup: cg.placement() },
      {
        started: (info) => resolve(info.bornInCgroup),
        failed: () => resolve(undefined),
        error: () => undefined,
        data: () => undefined,
        end: () => undefined,
        exit: () => void cg.end(0),
      },
    );
  });
}

function escape(d: string): string {
  return `setsid -f env -i /bin/sh -c 'echo $$ > ${d}/daemon.pid; exec sleep 300'; exit 0`;
}

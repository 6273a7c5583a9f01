import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '@coordbus/testing';
import { range, sorted, stageLines, TailerHarness } from './harness';

/**
 * What is at the watched path is not trusted: whoever can write the directory can put a symlink
 * (to a file the tailer may read but should not ship), a FIFO (whose open() blocks forever) or a
 * directory there, and the directory itself may not exist yet.
 */
describe('log-tailer reads what it was told to read, and nothing else', () => {
  let h: TailerHarness;
  let secret: string;
  beforeEach(() => {
    h = new TailerHarness('untrusted');
    // Lines an attacker wants shipped (they parse as breaches: seq 900..909).
    secret = join(h.dir, 'secret.txt');
    writeFileSync(secret, stageLines(900, 909));
  });
  afterEach(async () => {
    await h.dispose();
  });

  const mkfifo = (path: string) => execFileSync('mkfifo', [path]);
  /** Replaces the file at the path atomically (rename over it), like an attacker or a rotation would. */
  const replaceWith = (make: (tmp: string) => void) => {
    const tmp = join(h.dir, `.tmp-${Math.random().toString(36).slice(2)}`);
    make(tmp);
    renameSync(tmp, h.logPath);
  };
  const noSecretLines = async () => expect((await h.seqs()).filter((s) => s >= 900)).toEqual([]);

  it('a symlink that replaces the file after start is not followed; a regular file coming back is read', async () => {
    writeFileSync(h.logPath, stageLines(1, 10));
    await h.start();
    await h.waitForSeqs(range(1, 10));
    replaceWith((tmp) => symlinkSync(secret, tmp));
    await waitFor(
      async () => (await h.metric('coordbus_tailer_refused_total', { what: 'symlink' })) === 1,
      'the symlink to be refused',
    );
    // Another event in the directory must not make it try (and warn) again.
    writeFileSync(join(h.dir, 'other.log'), 'x\n');
    await new Promise((r) => setTimeout(r, 400));
    await noSecretLines();
    expect(await h.metric('coordbus_tailer_refused_total', { what: 'symlink' })).toBe(1);
    replaceWith((tmp) => writeFileSync(tmp, stageLines(11, 20)));
    await h.waitForSeqs(range(1, 20));
    await noSecretLines();
    expect(h.fatals).toEqual([]);
  });

  it('a symlink at the path at start is not followed either', async () => {
    symlinkSync(secret, h.logPath);
    await h.start();
    await waitFor(
      async () => (await h.metric('coordbus_tailer_refused_total', { what: 'symlink' })) === 1,
      'the symlink to be refused',
    );
    await noSecretLines();
    unlinkSync(h.logPath);
    writeFileSync(h.logPath, stageLines(1, 5));
    await h.waitForSeqs(range(1, 5));
  });

  it('with followSymlinks a symlink at the path is followed (and is not taken for a rotation)', async () => {
    symlinkSync(secret, h.logPath);
    await h.start(h.config({ followSymlinks: true }));
    await waitFor(async () => (await h.seqs()).length === 10, 'the link target to be read');
    expect(sorted(await h.seqs())).toEqual(range(900, 909));
    await new Promise((r) => setTimeout(r, 600)); // past rotateWaitMs: no spurious rotation re-reads it
    expect(await h.seqs()).toHaveLength(10);
    expect(await h.metric('coordbus_tailer_rotations_total')).toBe(0);
  });

  it('a FIFO at the path is refused without blocking; lines flow again when a regular file is back; stop is prompt', async () => {
    writeFileSync(h.logPath, stageLines(1, 10));
    const tailer = await h.start();
    await h.waitForSeqs(range(1, 10));
    replaceWith(mkfifo);
    await waitFor(
      async () => (await h.metric('coordbus_tailer_refused_total', { what: 'fifo' })) === 1,
      'the FIFO to be refused',
    );
    replaceWith((tmp) => writeFileSync(tmp, stageLines(11, 30)));
    await h.waitForSeqs(range(1, 30));
    // And once more, then stop while the FIFO is there: nothing may hold the stop.
    replaceWith(mkfifo);
    await waitFor(
      async () => (await h.metric('coordbus_tailer_refused_total', { what: 'fifo' })) === 2,
      'the second FIFO to be refused',
    );
    const t0 = Date.now();
    await tailer.stop();
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('a FIFO or a directory at the path at start is refused, not fatal', async () => {
    mkfifo(h.logPath);
    const other = join(h.dir, 'dir.log');
    mkdirSync(other);
    await h.start({ ...h.config(), targets: [h.target(), h.target({ path: other, source: 'other' })] });
    await waitFor(
      async () =>
        (await h.metric('coordbus_tailer_refused_total', { what: 'fifo' })) === 1 &&
        (await h.metric('coordbus_tailer_refused_total', { what: 'directory' })) === 1,
      'both refused',
    );
    rmSync(h.logPath);
    writeFileSync(h.logPath, stageLines(1, 3));
    await h.waitForSeqs(range(1, 3));
  });

  it('a watched directory missing at start is waited for (not ready), then followed from its first line', async () => {
    const dir = join(h.dir, 'later', 'logs');
    const path = join(dir, 'proxy.log');
    // Not from_start: the file was created after the tailer started, so all of it is new.
    const starting = h.start(h.config({ path, fromStart: false }));
    const tailer = h.tailers[h.tailers.length - 1];
    await new Promise((r) => setTimeout(r, 300));
    expect(tailer.started).toBe(false);
    expect(tailer.notReadyReason()).toContain(`waiting for directory of ${path}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path, stageLines(1, 7));
    await starting;
    expect(tailer.notReadyReason()).toBeNull();
    await waitFor(async () => (await h.seqs()).length === 7, 'the lines of the new file');
    expect(sorted(await h.seqs())).toEqual(range(1, 7));
    expect(h.fatals).toEqual([]);
  });

  it('stopping while waiting for the directory returns at once', async () => {
    const starting = h.start(h.config({ path: join(h.dir, 'never', 'proxy.log') }));
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    await h.tailers[h.tailers.length - 1].stop();
    await starting.catch(() => undefined);
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});

import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { waitFor } from '@coordbus/testing';
import { FileFollower, FollowBatch } from '../src/follow/file-follower';
import { Checkpoint } from '../src/follow/file-identity';

/**
 * A follower resumed from a checkpoint while the file is still being written must continue at
 * the checkpoint: a write landing while it opens the file must not make it read from 0
 * (found by the whole-system soak: a restarted tailer re-emitted every earlier breach).
 */
describe('FileFollower resumed from a checkpoint while writes continue', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'coordbus-resume-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const follower = (path: string, seen: string[], batches: FollowBatch[]) =>
    new FileFollower({
      path,
      fromStart: true,
      lineLimitBytes: 1 << 20,
      readChunkBytes: 1 << 20,
      rotateWaitMs: 250,
      reconcileMs: 30_000,
      followSymlinks: false,
      dirPollMs: 1000,
      logger: pino({ level: 'silent' }),
      sink: async (b) => {
        seen.push(...b.lines);
        batches.push(b);
      },
      onFatal: (err) => {
        throw err;
      },
    });

  it.each([1, 2, 3, 4, 5])('never re-reads committed lines (round %i)', async () => {
    const path = join(dir, 'app.log');
    writeFileSync(path, Array.from({ length: 2000 }, (_, i) => `line ${i}\n`).join(''));
    const firstSeen: string[] = [];
    const firstBatches: FollowBatch[] = [];
    const first = follower(path, firstSeen, firstBatches);
    await first.start(null);
    await waitFor(() => firstSeen.length === 2000, 'the first 2000 lines');
    await first.stop();
    const last = firstBatches[firstBatches.length - 1];
    const checkpoint: Checkpoint = {
      ...last.identity,
      v: 1,
      offset: last.offset,
      episode: null,
      updated_at: '',
    };

    // Keep writing while the second follower starts: its watcher fires during the initial open.
    let n = 2000;
    const writer = setInterval(() => appendFileSync(path, `line ${n++}\n`), 1);
    const seen: string[] = [];
    const second = follower(path, seen, []);
    try {
      await second.start(checkpoint);
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      clearInterval(writer);
    }
    await waitFor(() => seen.length === n - 2000, `lines 2000..${n - 1}`);
    await second.stop();
    expect(seen[0]).toBe('line 2000');
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(Array.from({ length: n - 2000 }, (_, i) => `line ${2000 + i}`));
  });
});

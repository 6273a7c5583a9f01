import {
  appendFileSync,
  closeSync,
  copyFileSync,
  openSync,
  renameSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { waitFor } from '@coordbus/testing';
import { range, stageLine, stageLines, TailerHarness } from './harness';

describe('log-tailer follows files through rotation without losing or doubling a line', () => {
  let h: TailerHarness;
  beforeEach(() => {
    h = new TailerHarness('rot');
  });
  afterEach(async () => {
    await h.dispose();
  });

  it('rename + create, with writes to both files around the rotation', async () => {
    writeFileSync(h.logPath, stageLines(1, 50));
    await h.start();
    await h.waitForSeqs(range(1, 50));
    const old = openSync(h.logPath, 'a');
    writeSync(old, stageLines(51, 100));
    renameSync(h.logPath, `${h.logPath}.1`);
    // The writer has not reopened yet: it keeps writing to the renamed file.
    writeSync(old, stageLines(101, 150));
    writeFileSync(h.logPath, stageLines(151, 200));
    writeSync(old, stageLines(201, 220));
    closeSync(old);
    appendFileSync(h.logPath, stageLines(221, 300));
    await h.waitForSeqs(range(1, 300));
    expect(await h.metric('coordbus_tailer_rotations_total', { kind: 'rotate' })).toBe(1);
  });

  it('copytruncate', async () => {
    writeFileSync(h.logPath, '');
    await h.start();
    appendFileSync(h.logPath, stageLines(1, 100));
    await h.waitForSeqs(range(1, 100));
    copyFileSync(h.logPath, `${h.logPath}.1`);
    truncateSync(h.logPath, 0);
    appendFileSync(h.logPath, stageLines(101, 150));
    await h.waitForSeqs(range(1, 150));
    expect(await h.metric('coordbus_tailer_rotations_total', { kind: 'truncate' })).toBe(1);
  });

  it('truncate then append (smaller than before)', async () => {
    writeFileSync(h.logPath, stageLines(1, 100));
    await h.start();
    await h.waitForSeqs(range(1, 100));
    truncateSync(h.logPath, 0);
    await waitFor(async () => (await h.checkpoint())?.offset === 0, 'the checkpoint to go back to 0');
    appendFileSync(h.logPath, stageLines(101, 110));
    await h.waitForSeqs(range(1, 110));
  });

  it('truncate then rewrite past the old size before the tailer looks (first bytes differ)', async () => {
    writeFileSync(h.logPath, stageLines(1, 20));
    await h.start();
    await h.waitForSeqs(range(1, 20));
    // One syscall-quick truncate+write: by the time the tailer stats, the file is longer than its offset.
    writeFileSync(h.logPath, stageLines(21, 200));
    await h.waitForSeqs(range(1, 200));
  });

  it('delete and recreate', async () => {
    writeFileSync(h.logPath, stageLines(1, 40));
    await h.start();
    await h.waitForSeqs(range(1, 40));
    const old = openSync(h.logPath, 'a');
    unlinkSync(h.logPath);
    writeSync(old, stageLines(41, 50)); // written to the deleted file before the writer reopens
    writeFileSync(h.logPath, stageLines(51, 90));
    closeSync(old);
    await h.waitForSeqs(range(1, 90));
  });

  it('a file that does not exist yet is read from 0 once it appears', async () => {
    await h.start(h.config({ fromStart: false }));
    writeFileSync(h.logPath, stageLines(1, 30));
    await h.waitForSeqs(range(1, 30));
  });

  it('starts at the end of an existing file by default, never inside a line', async () => {
    writeFileSync(h.logPath, stageLines(1, 10) + stageLine(11).slice(0, 40));
    await h.start(h.config({ fromStart: false }));
    // The first line seen is the one completed after the start: the old partial is not emitted as a line.
    appendFileSync(h.logPath, stageLine(11).slice(40) + stageLines(12, 15));
    await h.waitForSeqs(range(11, 15));
  });

  it('starting at the end inside a line longer than the look-back window skips that line, never half of it', async () => {
    const long = `${'x'.repeat(100 * 1024)} ${stageLine(99)}`; // half of it would parse as seq 99
    writeFileSync(h.logPath, stageLines(1, 3) + long.slice(0, 90 * 1024));
    await h.start(h.config({ fromStart: false }));
    appendFileSync(h.logPath, long.slice(90 * 1024) + stageLines(4, 6));
    await h.waitForSeqs(range(4, 6));
  });

  it('a partial line is not emitted until its newline arrives, across a rotation', async () => {
    writeFileSync(h.logPath, '');
    await h.start();
    const old = openSync(h.logPath, 'a');
    const partial = stageLine(11);
    writeSync(old, stageLines(1, 10) + partial.slice(0, 60));
    await h.waitForSeqs(range(1, 10));
    expect((await h.checkpoint())!.offset).toBe(Buffer.byteLength(stageLines(1, 10)));
    // The newline lands in the old file right as it is rotated away.
    writeSync(old, partial.slice(60));
    renameSync(h.logPath, `${h.logPath}.1`);
    writeSync(old, stageLine(12) + stageLine(13).slice(0, 30)); // never completed: must not appear
    closeSync(old);
    writeFileSync(h.logPath, stageLines(14, 20));
    await h.waitForSeqs([...range(1, 12), ...range(14, 20)]);
    const ev = (await h.events()).find((e) => e.detail.request_id === 'seq-11');
    expect(ev).toMatchObject({ duration_ms: 5, status: 'stall' });
    expect(await h.metric('coordbus_tailer_lines_dropped_total', { reason: 'incomplete_at_rotation' })).toBe(
      1,
    );
  });

  it('drops and counts a very long line and keeps tailing', async () => {
    writeFileSync(h.logPath, '');
    await h.start(h.config({ lineLimitBytes: 64 * 1024 }));
    const long = `STAGE_TIMINGS {"stages": {"total_pre_upstream": 999, "pad": "${'x'.repeat(1024 * 1024)}"}}\n`;
    appendFileSync(h.logPath, stageLines(1, 5));
    appendFileSync(h.logPath, long); // 1 MiB: spans many reads of the 64 KiB buffer
    appendFileSync(h.logPath, stageLines(6, 10));
    await h.waitForSeqs(range(1, 10));
    expect(await h.metric('coordbus_tailer_lines_dropped_total', { reason: 'over_limit' })).toBe(1);
    expect(await h.metric('coordbus_tailer_lines_read_total')).toBe(10);
    expect(statSync(h.logPath).size).toBeGreaterThan(1024 * 1024);
  });
});

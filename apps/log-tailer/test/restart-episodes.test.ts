import { appendFileSync, unlinkSync, writeFileSync } from 'node:fs';
import Redis from 'ioredis';
import { testRedisUrl, waitFor } from '@coordbus/testing';
import { range, stageLine, stageLines, TailerHarness } from './harness';

describe('log-tailer checkpoints across restarts', () => {
  let h: TailerHarness;
  beforeEach(() => {
    h = new TailerHarness('restart');
  });
  afterEach(async () => {
    await h.dispose();
  });

  it('graceful restart duplicates nothing and loses nothing written while stopped', async () => {
    writeFileSync(h.logPath, stageLines(1, 100));
    const first = await h.start();
    await h.waitForSeqs(range(1, 100));
    await first.stop();
    appendFileSync(h.logPath, stageLines(101, 150));
    await h.start(h.config({ fromStart: false })); // the checkpoint wins over the start rule
    await h.waitForSeqs(range(1, 150));
  });

  it('a partial line waits for its newline across a restart', async () => {
    writeFileSync(h.logPath, stageLines(1, 10) + stageLine(11).slice(0, 50));
    const first = await h.start();
    await h.waitForSeqs(range(1, 10));
    expect((await h.checkpoint())!.offset).toBe(Buffer.byteLength(stageLines(1, 10)));
    expect(await h.metric('coordbus_tailer_checkpoint_lag_bytes')).toBe(50); // the held partial line
    await first.stop();
    appendFileSync(h.logPath, stageLine(11).slice(50) + stageLine(12));
    await h.start();
    await h.waitForSeqs(range(1, 12));
    expect((await h.events()).find((e) => e.detail.request_id === 'seq-11')?.duration_ms).toBe(5);
  });

  it('a file rotated while the tailer was stopped is finished before the new one', async () => {
    writeFileSync(h.logPath, stageLines(1, 20));
    const first = await h.start();
    await h.waitForSeqs(range(1, 20));
    await first.stop();
    appendFileSync(h.logPath, stageLines(21, 30));
    const { renameSync } = await import('node:fs');
    renameSync(h.logPath, `${h.logPath}.1`);
    writeFileSync(h.logPath, stageLines(31, 40));
    await h.start();
    await h.waitForSeqs(range(1, 40));
  });

  it('inode reuse: the checkpoint inode names a new file with different first bytes -> read it from 0', async () => {
    writeFileSync(h.logPath, stageLines(1, 30));
    const first = await h.start();
    await h.waitForSeqs(range(1, 30));
    await first.stop();
    const cp = (await h.checkpoint())!;
    unlinkSync(h.logPath);
    writeFileSync(h.logPath, stageLines(31, 100)); // longer than the old offset
    // Whether the kernel hands the inode out again is up to it: make the checkpoint say it did.
    const { statSync } = await import('node:fs');
    const st = statSync(h.logPath, { bigint: true });
    await h.redis.hset(
      h.keyspace.tailerCheckpointKey('headroom'),
      h.logPath,
      JSON.stringify({ ...cp, dev: String(st.dev), ino: String(st.ino) }),
    );
    await h.start();
    await h.waitForSeqs(range(1, 100));
  });

  it('an unreadable checkpoint is reported and the file is read from 0 (duplicates over loss)', async () => {
    writeFileSync(h.logPath, stageLines(1, 5));
    await h.redis.hset(h.keyspace.tailerCheckpointKey('headroom'), h.logPath, '{not json');
    await h.start(h.config({ fromStart: false }));
    await h.waitForSeqs(range(1, 5));
  });
});

describe('log-tailer stall episodes', () => {
  let h: TailerHarness;
  beforeEach(() => {
    h = new TailerHarness('episodes');
  });
  afterEach(async () => {
    await h.dispose();
  });

  const at = (ms: number, seq: number, total: number) => stageLine(seq, total, new Date(ms));
  const episodes = async () => (await h.events()).filter((e) => e.detail.kind === 'episode');

  it('coalesces bursts into one episode each, emitted with per-breach events, on the stream and pub/sub', async () => {
    const sub = new Redis(testRedisUrl());
    const live: string[] = [];
    await sub.subscribe(h.keyspace.telemetryChannel('log.overhead.episode'));
    sub.on('message', (_c, m) => live.push(m));
    try {
      writeFileSync(h.logPath, '');
      await h.start(h.config({ thresholdMs: 500, quietMs: 200 }));
      const t0 = Date.now();
      // Burst 1: degraded, stall, degraded; a normal line in between does not split it.
      appendFileSync(
        h.logPath,
        at(t0, 1, 600) + at(t0 + 10, 2, 2500) + at(t0 + 20, 3, 10) + at(t0 + 30, 4, 700),
      );
      await waitFor(async () => (await episodes()).length === 1, 'the first episode to close');
      appendFileSync(h.logPath, at(Date.now(), 5, 900) + at(Date.now() + 5, 6, 800));
      await waitFor(async () => (await episodes()).length === 2, 'the second episode to close');
      const [e1, e2] = await episodes();
      expect(e1).toMatchObject({
        event: 'log.overhead.episode',
        status: 'stall',
        duration_ms: 2500,
        ts: new Date(t0).toISOString(),
        detail: {
          count: 3,
          peak_ms: 2500,
          peak_severity: 'stall',
          last_ts: new Date(t0 + 30).toISOString(),
          dominant_stage: 'compression_first_stage',
        },
      });
      expect(e2).toMatchObject({ status: 'degraded', duration_ms: 900, detail: { count: 2 } });
      const breaches = (await h.events()).filter((e) => e.detail.kind === 'breach');
      expect(breaches.map((e) => e.duration_ms)).toEqual([600, 2500, 700, 900, 800]);
      await waitFor(() => live.length === 2, 'the pub/sub copies');
      expect(JSON.parse(live[0])).toMatchObject({ event: 'log.overhead.episode', duration_ms: 2500 });
    } finally {
      sub.disconnect();
    }
  });

  it('closes while normal lines keep flowing', async () => {
    writeFileSync(h.logPath, '');
    await h.start(h.config({ thresholdMs: 500, quietMs: 300 }));
    appendFileSync(h.logPath, at(Date.now(), 1, 800));
    let seq = 2;
    let normalAfterClose = 0;
    let closed = false;
    const steady = setInterval(() => {
      appendFileSync(h.logPath, at(Date.now(), seq++, 20));
      if (closed) normalAfterClose++;
    }, 25);
    try {
      await waitFor(
        async () => (await episodes()).length === 1,
        'the episode to close under steady normal traffic',
        5000,
      );
      closed = true;
      await waitFor(() => normalAfterClose >= 3, 'normal traffic to go on');
    } finally {
      clearInterval(steady);
    }
    expect((await episodes())[0]).toMatchObject({ detail: { count: 1, peak_ms: 800 } });
    expect(await h.metric('coordbus_tailer_open_episode')).toBe(0);
  });

  it('is flushed on shutdown and not emitted again after a restart', async () => {
    writeFileSync(h.logPath, '');
    const first = await h.start(h.config({ thresholdMs: 500, quietMs: 60_000 }));
    appendFileSync(h.logPath, at(Date.now(), 1, 3000) + at(Date.now(), 2, 600));
    await waitFor(async () => (await h.seqs()).length === 2, 'the breach events');
    expect(await episodes()).toEqual([]);
    await first.stop();
    expect(await episodes()).toHaveLength(1);
    expect((await episodes())[0]).toMatchObject({ status: 'stall', detail: { count: 2, peak_ms: 3000 } });
    expect((await h.checkpoint())!.episode).toBeNull();
    await h.start(h.config({ thresholdMs: 500, quietMs: 60_000 }));
    appendFileSync(h.logPath, at(Date.now(), 3, 10));
    await h.waitCaughtUp();
    expect(await episodes()).toHaveLength(1);
    expect(await h.seqs()).toEqual([1, 2]);
  });

  it('an open episode is written inside the checkpoint (so a crash cannot lose it)', async () => {
    writeFileSync(h.logPath, '');
    await h.start(h.config({ thresholdMs: 500, quietMs: 60_000 }));
    appendFileSync(h.logPath, at(Date.now(), 1, 700));
    await waitFor(async () => (await h.checkpoint())?.episode, 'the open episode in the checkpoint');
    expect((await h.checkpoint())!.episode).toMatchObject({ count: 1, peak_ms: 700 });
  });
});

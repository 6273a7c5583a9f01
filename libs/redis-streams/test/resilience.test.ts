import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { TestRedisServer, waitFor } from '@coordbus/testing';
import { RedisStreamsContext } from '@coordbus/redis-streams';
import { ensureBuilt, ROOT } from './build';
import { StreamsFixture } from './helpers';

jest.setTimeout(30_000);

async function pendingOf(
  f: StreamsFixture,
  stream: string,
  group: string,
): Promise<{ total: number; byConsumer: Record<string, number> }> {
  const [total, , , consumers] = (await f.redis.xpending(stream, group)) as [
    number,
    string,
    string,
    Array<[string, string]> | null,
  ];
  return {
    total: Number(total),
    byConsumer: Object.fromEntries((consumers ?? []).map(([c, n]) => [c, Number(n)])),
  };
}

function raw(i: number): string[] {
  return ['n', String(i)];
}

describe('RedisStreamsServer under failure', () => {
  const fixtures: StreamsFixture[] = [];
  const children: ChildProcess[] = [];
  const redisServers: TestRedisServer[] = [];
  const fixture = (label: string, url?: string) => {
    const f = new StreamsFixture(label, url);
    fixtures.push(f);
    return f;
  };
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const f of fixtures.splice(0)) await f.dispose();
    for (const s of redisServers.splice(0)) await s.dispose();
  });

  it('reclaims the pending entries of a consumer process killed with SIGKILL', async () => {
    ensureBuilt();
    const f = fixture('rs-sigkill');
    const stream = f.keyspace.telemetryEvents;
    const ids = await Promise.all(Array.from({ length: 25 }, (_, i) => f.client.publishRaw(stream, raw(i))));

    const child = spawn(process.execPath, [join(__dirname, 'fixtures/consumer.js')], {
      cwd: ROOT,
      env: {
        ...process.env,
        REDIS_URL: f.url,
        COORDBUS_NAMESPACE: f.keyspace.namespace,
        CONSUMER: 'doomed',
        GROUP: 'g',
        CONCURRENCY: '10',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    const got: string[] = [];
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('got ')) got.push(line.split(' ')[1]);
    });
    // Concurrency 10: the doomed replica takes exactly 10 entries and reads no more while they run.
    await waitFor(() => got.length === 10, 'the child to hold 10 entries');
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    expect((await pendingOf(f, stream, 'g')).byConsumer).toEqual({ doomed: 10 });

    const handled = new Map<string, number[]>();
    const survivor = f.server({ consumer: 'survivor', reclaimIdleMs: 300, reclaimIntervalMs: 100 });
    survivor.addStreamHandler(
      { stream: 'telemetryEvents', group: 'g' },
      async (_d, ctx: RedisStreamsContext) => {
        handled.set(ctx.getEntryId(), [...(handled.get(ctx.getEntryId()) ?? []), ctx.getDeliveryCount()]);
      },
    );
    await new Promise<void>((resolve, reject) =>
      survivor.listen((err?: unknown) => (err ? reject(err) : resolve())),
    );

    await waitFor(() => handled.size === 25, 'every entry handled by the survivor', 10_000);
    await waitFor(async () => (await pendingOf(f, stream, 'g')).total === 0, 'nothing left pending');
    expect(new Set(handled.keys())).toEqual(new Set(ids));
    for (const id of ids) {
      expect(handled.get(id)).toEqual([got.includes(id) ? 2 : 1]);
    }
    const reclaimed = await f.registry.getSingleMetricAsString('coordbus_stream_reclaimed_total');
    expect(reclaimed).toContain(`{stream="${stream}",group="g"} 10`);
  });

  it('dead-letters, without running the handler, an entry whose consumers kept dying (deliveries past the limit)', async () => {
    const f = fixture('rs-poison');
    const stream = f.keyspace.telemetryEvents;
    await f.redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
    const id = await f.client.publishRaw(stream, raw(1));
    // Five deliveries to consumers that never acked (as if each crashed while handling it).
    await f.redis.xreadgroup('GROUP', 'g', 'ghost', 'COUNT', 1, 'STREAMS', stream, '>');
    for (let i = 0; i < 4; i++) await f.redis.xclaim(stream, 'g', 'ghost', 0, id);
    const calls: string[] = [];
    const server = f.server({
      consumer: 'survivor',
      maxDeliveries: 5,
      reclaimIdleMs: 50,
      reclaimIntervalMs: 50,
    });
    server.addStreamHandler(
      { stream: 'telemetryEvents', group: 'g' },
      async (_d, ctx: RedisStreamsContext) => {
        calls.push(ctx.getEntryId());
      },
    );
    await new Promise<void>((resolve, reject) => server.listen((e?: unknown) => (e ? reject(e) : resolve())));
    await waitFor(
      async () => (await f.redis.xlen(f.keyspace.deadLetter(stream))) === 1,
      'dead letter written',
    );
    const [[, fields]] = await f.redis.xrange(f.keyspace.deadLetter(stream), '-', '+');
    const entry = JSON.parse(fields[fields.indexOf('data') + 1]);
    expect(entry).toMatchObject({
      entry_id: id,
      delivery_count: 6,
      fields: { n: '1' },
      consumer: 'survivor',
    });
    expect(entry.reason).toMatch(/delivered 6 times without an ack \(limit 5\)/);
    expect(calls).toEqual([]);
    await waitFor(async () => (await pendingOf(f, stream, 'g')).total === 0, 'acked');
  });

  it('stops reading while every slot waits for a retry (a failing dependency), then catches up', async () => {
    const f = fixture('rs-backpressure');
    const stream = f.keyspace.telemetryEvents;
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => f.client.publishRaw(stream, raw(i))));
    const seen = new Set<string>();
    let attempts = 0;
    let healthy = false;
    const done = new Set<string>();
    const server = f.server({
      consumer: 'bp',
      concurrency: 3,
      batchSize: 10,
      maxDeliveries: 1000,
      retryDelayMs: 20,
    });
    server.addStreamHandler(
      { stream: 'telemetryEvents', group: 'g' },
      async (_d, ctx: RedisStreamsContext) => {
        seen.add(ctx.getEntryId());
        attempts++;
        if (!healthy) throw new Error('database unavailable');
        done.add(ctx.getEntryId());
      },
    );
    await new Promise<void>((resolve, reject) => server.listen((e?: unknown) => (e ? reject(e) : resolve())));
    await waitFor(() => attempts >= 15, 'several redeliveries');
    expect(seen.size).toBe(3);
    healthy = true;
    await waitFor(() => done.size === 20, 'all entries handled once the dependency is back', 10_000);
    expect(new Set(done)).toEqual(new Set(ids));
    await waitFor(async () => (await pendingOf(f, stream, 'g')).total === 0, 'all acked');
    expect(await f.redis.exists(f.keyspace.deadLetter(stream))).toBe(0);
  });

  it('splits the work of one group between two consumers, never handling an entry twice', async () => {
    const f = fixture('rs-split');
    const stream = f.keyspace.telemetryEvents;
    const byConsumer = new Map<string, string>();
    const duplicates: string[] = [];
    const servers = ['a', 'b'].map((name) => {
      const s = f.server({ consumer: name, batchSize: 20, concurrency: 8 });
      s.addStreamHandler(
        { stream: 'telemetryEvents', group: 'split' },
        async (_d, ctx: RedisStreamsContext) => {
          if (byConsumer.has(ctx.getEntryId())) duplicates.push(ctx.getEntryId());
          byConsumer.set(ctx.getEntryId(), ctx.getConsumer());
          await new Promise((r) => setTimeout(r, 1));
        },
      );
      return s;
    });
    for (const s of servers)
      await new Promise<void>((resolve, reject) => s.listen((e?: unknown) => (e ? reject(e) : resolve())));
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      ids.push(
        ...(await Promise.all(
          Array.from({ length: 25 }, (_, j) => f.client.publishRaw(stream, raw(i * 25 + j))),
        )),
      );
    }
    await waitFor(() => byConsumer.size === 500, '500 entries handled');
    await waitFor(async () => (await pendingOf(f, stream, 'split')).total === 0, 'all acked');
    expect(duplicates).toEqual([]);
    expect(new Set(byConsumer.keys())).toEqual(new Set(ids));
    const counts = [...byConsumer.values()].reduce<Record<string, number>>(
      (acc, c) => ({ ...acc, [c]: (acc[c] ?? 0) + 1 }),
      {},
    );
    expect(counts.a).toBeGreaterThan(0);
    expect(counts.b).toBeGreaterThan(0);
  });

  it('resumes after redis-server restarts mid-run, with nothing acked lost or redone', async () => {
    const redisServer = await new TestRedisServer({ appendonly: true }).start();
    redisServers.push(redisServer);
    const f = fixture('rs-restart', redisServer.url);
    const stream = f.keyspace.telemetryEvents;
    const handled = new Map<string, number>();
    const server = f.server({ consumer: 'r1', batchSize: 10 });
    server.addStreamHandler(
      { stream: 'telemetryEvents', group: 'g' },
      async (_d, ctx: RedisStreamsContext) => {
        handled.set(ctx.getEntryId(), (handled.get(ctx.getEntryId()) ?? 0) + 1);
      },
    );
    await new Promise<void>((resolve, reject) => server.listen((e?: unknown) => (e ? reject(e) : resolve())));

    const before: string[] = [];
    for (let i = 0; i < 200; i++) before.push(await f.client.publishRaw(stream, raw(i)));
    await waitFor(
      async () => handled.size === 200 && (await pendingOf(f, stream, 'g')).total === 0,
      'first 200 acked',
    );

    // Keep producing while Redis goes down and comes back: writes wait in the producer's queue.
    let producing = true;
    const after: string[] = [];
    const producer = (async () => {
      for (let i = 0; producing && i < 200; i++) {
        after.push(await f.client.publishRaw(stream, raw(1000 + i)));
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    await waitFor(() => after.length >= 20, 'production under way');
    await redisServer.restart('SIGTERM', 300);
    await producer;
    producing = false;
    expect(after.length).toBe(200);

    await waitFor(
      () => after.every((id) => handled.has(id)),
      'entries written around the restart handled',
      20_000,
    );
    await waitFor(
      async () => (await pendingOf(f, stream, 'g')).total === 0,
      'all acked after the restart',
      10_000,
    );
    for (const id of before) expect(handled.get(id)).toBe(1);
    // An XADD whose reply was lost with the connection is resent (at-least-once), so the stream
    // may hold a duplicate of one entry; every entry in it, duplicates included, was handled.
    const all = (await f.redis.xrange(stream, '-', '+')).map(([id]) => id);
    expect(all).toEqual(expect.arrayContaining([...before, ...after]));
    expect(all.filter((id) => !handled.has(id))).toEqual([]);
    await waitFor(() => server.isReady(), 'server ready again');
  });

  it('starts while Redis is down (not ready), then connects, creates its group and consumes', async () => {
    const redisServer = await new TestRedisServer().start();
    redisServers.push(redisServer);
    await redisServer.stop();
    const f = fixture('rs-late-redis', redisServer.url);
    const handled: string[] = [];
    const server = f.server({ consumer: 'early', startTimeoutMs: 200 });
    server.addStreamHandler(
      { stream: 'telemetryEvents', group: 'g' },
      async (_d, ctx: RedisStreamsContext) => {
        handled.push(ctx.getEntryId());
      },
    );
    await new Promise<void>((resolve, reject) => server.listen((e?: unknown) => (e ? reject(e) : resolve())));
    expect(server.isReady()).toBe(false);
    await redisServer.start();
    await waitFor(() => server.isReady(), 'ready once Redis is up', 15_000);
    const id = await f.client.publishRaw(f.keyspace.telemetryEvents, raw(1));
    await waitFor(() => handled.includes(id), 'entry handled', 10_000);
  });

  it('recreates a consumer group deleted under it (NOGROUP) and keeps consuming', async () => {
    const f = fixture('rs-nogroup');
    const stream = f.keyspace.telemetryEvents;
    const handled = new Set<string>();
    const server = f.server({ consumer: 'n1' });
    server.addStreamHandler(
      { stream: 'telemetryEvents', group: 'g' },
      async (_d, ctx: RedisStreamsContext) => {
        handled.add(ctx.getEntryId());
      },
    );
    await new Promise<void>((resolve, reject) => server.listen((e?: unknown) => (e ? reject(e) : resolve())));
    const a = await f.client.publishRaw(stream, raw(1));
    await waitFor(() => handled.has(a), 'first entry handled');
    await f.redis.xgroup('DESTROY', stream, 'g');
    const b = await f.client.publishRaw(stream, raw(2));
    await waitFor(() => handled.has(b), 'entry after the group was destroyed handled', 10_000);
    const groups = (await f.redis.xinfo('GROUPS', stream)) as unknown[][];
    expect(groups.map((g) => g[1])).toEqual(['g']);
  });

  it('close() finishes in-flight handlers, flushes their acks and breaks the blocking read', async () => {
    const f = fixture('rs-close');
    const stream = f.keyspace.telemetryEvents;
    const release: Array<() => void> = [];
    const started: string[] = [];
    const finished: string[] = [];
    const server = f.server({ consumer: 'c1', blockMs: 30_000, concurrency: 5 });
    server.addStreamHandler(
      { stream: 'telemetryEvents', group: 'g' },
      async (_d, ctx: RedisStreamsContext) => {
        started.push(ctx.getEntryId());
        await new Promise<void>((r) => release.push(r));
        finished.push(ctx.getEntryId());
      },
    );
    await new Promise<void>((resolve, reject) => server.listen((e?: unknown) => (e ? reject(e) : resolve())));

    // Idle, blocked in XREADGROUP BLOCK 30000: close must return at once.
    const idleServer = f.server({ consumer: 'idle', blockMs: 30_000 });
    idleServer.addStreamHandler({ stream: 'coordEvents', group: 'g' }, async () => undefined);
    await new Promise<void>((resolve, reject) =>
      idleServer.listen((e?: unknown) => (e ? reject(e) : resolve())),
    );
    const t0 = Date.now();
    await idleServer.close();
    expect(Date.now() - t0).toBeLessThan(2000);

    for (let i = 0; i < 5; i++) await f.client.publishRaw(stream, raw(i));
    await waitFor(() => started.length === 5, 'five handlers running');
    let closed = false;
    const closing = server.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(false);
    const late = await f.client.publishRaw(stream, raw(99));
    for (const r of release) r();
    await closing;
    expect(finished.length).toBe(5);
    expect(started).not.toContain(late);
    expect((await pendingOf(f, stream, 'g')).total).toBe(0);
    expect(server.isReady()).toBe(false);
  });
});

import { waitFor } from '@coordbus/testing';
import { InvalidError, UnavailableError } from '@coordbus/envelope';
import { RedisStreamsContext } from '@coordbus/redis-streams';
import { StreamsFixture } from './helpers';

jest.setTimeout(30_000);

/** A dependency outage is waited out, never dead-lettered; and dead letters are never dead-lettered again. */
describe('RedisStreamsServer and retryable failures (real Redis)', () => {
  const fixtures: StreamsFixture[] = [];
  const fixture = (label: string) => {
    const f = new StreamsFixture(label);
    fixtures.push(f);
    return f;
  };
  afterEach(async () => {
    for (const f of fixtures.splice(0)) await f.dispose();
  });

  it('keeps entries pending and uncounted while the handler fails with retryable errors, then handles each once', async () => {
    const f = fixture('rs-outage');
    const stream = f.keyspace.telemetryEvents;
    const ids = await Promise.all([1, 2, 3].map((i) => f.client.publishRaw(stream, ['n', String(i)])));
    const outageUntil = Date.now() + 2500;
    const done: string[] = [];
    const deliveries: number[] = [];
    let failures = 0;
    // Two kinds of outage: a typed one, and a raw Redis reply seen through some client.
    const outage = (n: number) =>
      n % 2
        ? new UnavailableError('archive database unavailable')
        : new Error("READONLY You can't write against a read only replica.");
    const server = f.server({ consumer: 'c', maxDeliveries: 2, retryDelayMs: 20, reclaimIdleMs: 200 });
    server.addStreamHandler(
      { stream: 'telemetryEvents', group: 'g' },
      async (_d, ctx: RedisStreamsContext) => {
        deliveries.push(ctx.getDeliveryCount());
        if (Date.now() < outageUntil) throw outage(++failures);
        done.push(ctx.getEntryId());
      },
    );
    await new Promise<void>((resolve, reject) => server.listen((e?: unknown) => (e ? reject(e) : resolve())));
    await waitFor(() => failures >= 4, 'several failed attempts');
    expect(server.isReady()).toBe(false);
    // What /readyz shows names the stream and group that waits, and why.
    expect(String(server.readiness())).toContain(`${stream} (group g): waiting out a dependency outage`);
    // Pending at this consumer, and Redis has counted one delivery each: the failures were not charged.
    const rows = (await f.redis.xpending(stream, 'g', '-', '+', 10)) as Array<
      [string, string, number, number]
    >;
    expect(rows.map((r) => [r[1], Number(r[3])])).toEqual(rows.map(() => ['c', 1]));

    await waitFor(() => done.length === 3, 'all handled once the dependency is back', 15_000);
    expect([...done].sort()).toEqual([...ids].sort());
    await waitFor(async () => Number((await f.redis.xpending(stream, 'g'))[0]) === 0, 'all acked');
    await waitFor(() => server.isReady(), 'ready again');
    expect(failures).toBeGreaterThan(2 * 3);
    expect(Math.max(...deliveries)).toBe(1);
    expect(await f.redis.exists(f.keyspace.deadLetter(stream))).toBe(0);
  });

  // The soak's database cut left both archivists not ready for good: another replica reclaimed
  // and archived the entries one was keeping through the outage, so no handler of its own could
  // succeed again, and reads stayed stopped.
  it.each([
    [
      'another replica handled them',
      (f: StreamsFixture, stream: string, id: string) => f.redis.xack(stream, 'g', id),
    ],
    ['the stream was trimmed', (f: StreamsFixture, stream: string, id: string) => f.redis.xdel(stream, id)],
  ])(
    'ends the outage when the entries it kept are gone (%s): ready again, and new entries are read',
    async (_label, takeAway) => {
      const f = fixture('rs-outage-gone');
      const stream = f.keyspace.telemetryEvents;
      const kept = await f.client.publishRaw(stream, ['n', 'kept']);
      let down = true;
      let failures = 0;
      const done: string[] = [];
      const server = f.server({ consumer: 'a', retryDelayMs: 20, reclaimIdleMs: 60_000 });
      server.addStreamHandler(
        { stream: 'telemetryEvents', group: 'g' },
        async (_d, ctx: RedisStreamsContext) => {
          if (down) {
            failures++;
            throw new UnavailableError('archive database unavailable');
          }
          done.push(ctx.getEntryId());
        },
      );
      await new Promise<void>((resolve, reject) =>
        server.listen((e?: unknown) => (e ? reject(e) : resolve())),
      );
      await waitFor(() => failures >= 2, 'the outage seen twice');
      expect(server.isReady()).toBe(false);

      await takeAway(f, stream, kept);
      down = false;
      await waitFor(() => server.isReady(), 'ready again without the kept entry', 15_000);
      const next = await f.client.publishRaw(stream, ['n', 'next']);
      await waitFor(() => done.includes(next), 'an entry written after the outage handled');
      expect(done).not.toContain(kept);
      expect(await f.redis.exists(f.keyspace.deadLetter(stream))).toBe(0);
    },
  );

  it('never writes a dead letter of a dead letter: a failing entry of a :dead stream is acked and stays there', async () => {
    const f = fixture('rs-deaddead');
    const dead = f.keyspace.deadLetter(f.keyspace.telemetryEvents);
    const id = await f.client.publishRaw(dead, ['not', 'a dead letter']);
    const server = f.server({ consumer: 'c' });
    const seen: string[] = [];
    server.addStreamHandler(
      { stream: 'telemetryEvents:dead', group: 'g' },
      async (_d, ctx: RedisStreamsContext) => {
        seen.push(ctx.getEntryId());
        throw new InvalidError('cannot archive it', ['data: bad']);
      },
    );
    await new Promise<void>((resolve, reject) => server.listen((e?: unknown) => (e ? reject(e) : resolve())));
    await waitFor(
      async () => seen.length === 1 && Number((await f.redis.xpending(dead, 'g'))[0]) === 0,
      'acked',
    );
    expect(await f.redis.exists(f.keyspace.deadLetter(dead))).toBe(0);
    expect((await f.redis.xrange(dead, '-', '+')).map(([i]) => i)).toEqual([id]);
  });
});

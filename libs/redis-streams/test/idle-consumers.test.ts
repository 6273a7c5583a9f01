import { bindCommand } from '@coordbus/lua';
import { EnvelopeCodec } from '@coordbus/envelope';
import { waitFor } from '@coordbus/testing';
import { ConsumerGroup, ConsumerInfo } from '@coordbus/redis-streams';
import { COMMANDS } from '../src/commands';
import { MemoryLogger, StreamsFixture } from './helpers';

jest.setTimeout(60_000);

const BOUND = 300;

describe('removing consumers a gone replica left behind', () => {
  let f: StreamsFixture;
  let stream: string;

  beforeEach(async () => {
    f = new StreamsFixture('idle-consumers');
    stream = f.keyspace.telemetryEvents;
    await f.redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
    for (let i = 0; i < 3; i++) await f.redis.xadd(stream, '*', 'n', String(i));
  });

  afterEach(() => f.dispose());

  const names = async () =>
    ((await f.redis.xinfo('CONSUMERS', stream, 'g')) as string[][])
      .map((c) => c[c.indexOf('name') + 1])
      .sort();

  /** A replica that read and then vanished: `gone-holding` still owns 2 entries, `gone-empty` none. */
  async function leaveConsumers(): Promise<void> {
    await f.redis.xgroup('CREATECONSUMER', stream, 'g', 'gone-empty');
    await f.redis.xreadgroup('GROUP', 'g', 'gone-holding', 'COUNT', 2, 'STREAMS', stream, '>');
    await f.redis.xgroup('CREATECONSUMER', stream, 'g', 'me');
  }

  const group = (consumer = 'me') =>
    new ConsumerGroup({
      redis: f.redis,
      stream,
      group: 'g',
      consumer,
      deadLetterMaxLen: 100,
      codec: new EnvelopeCodec(),
    });

  async function idlePast(ms: number, who: string[]): Promise<void> {
    const g = group();
    await waitFor(
      async () => (await g.consumers()).filter((c) => who.includes(c.name)).every((c) => c.idleMs >= ms),
      `${who.join(', ')} idle for ${ms} ms`,
      20_000,
      50,
    );
  }

  it('removes only consumers idle past the bound with nothing pending, never its own', async () => {
    await leaveConsumers();
    // Nobody has been idle for a minute: nothing goes.
    expect(await group().removeIdleConsumers(60_000)).toEqual({ removed: [], consumers: 3 });
    await idlePast(BOUND, ['gone-empty', 'gone-holding', 'me']);
    expect(await group().removeIdleConsumers(BOUND)).toEqual({ removed: ['gone-empty'], consumers: 2 });
    expect(await names()).toEqual(['gone-holding', 'me']);
    // The entries gone-holding owns are still pending at it, so a live replica can reclaim them.
    const pending = (await f.redis.xpending(stream, 'g')) as [number, string, string, string[][]];
    expect(pending[0]).toBe(2);
    expect(pending[3]).toEqual([['gone-holding', '2']]);
  });

  it('re-checks in the script: a consumer given entries after the look is kept', async () => {
    await leaveConsumers();
    await idlePast(BOUND, ['gone-empty', 'gone-holding', 'me']);
    // A view taken before gone-holding read its entries: everyone idle, nothing pending.
    class StaleView extends ConsumerGroup {
      override async consumers(): Promise<ConsumerInfo[]> {
        return ['gone-empty', 'gone-holding'].map((name) => ({
          name,
          pending: 0,
          idleMs: 10 * BOUND,
          inactiveMs: null,
        }));
      }
    }
    const stale = new StaleView({
      redis: f.redis,
      stream,
      group: 'g',
      consumer: 'me',
      deadLetterMaxLen: 100,
      codec: new EnvelopeCodec(),
    });
    expect((await stale.removeIdleConsumers(BOUND)).removed).toEqual(['gone-empty']);
    expect(await names()).toEqual(['gone-holding', 'me']);

    const script = bindCommand<string>(f.redis, COMMANDS.removeIdleConsumer);
    expect(await script([stream], ['g', 'gone-holding', BOUND, 'me'])).toBe('pending');
    expect(await script([stream], ['g', 'me', BOUND, 'me'])).toBe('self');
    expect(await script([stream], ['g', 'nobody', BOUND, 'me'])).toBe('missing');
    expect(await script([stream], ['no-such-group', 'me', BOUND, 'x'])).toBe('missing');
    // Just active again (a read resets its idle time): kept although it owns nothing new.
    await f.redis.xack(stream, 'g', ...(await f.redis.xrange(stream, '-', '+')).map(([id]) => id));
    await f.redis.xreadgroup('GROUP', 'g', 'gone-holding', 'COUNT', 1, 'STREAMS', stream, '>');
    await f.redis.xack(stream, 'g', ...(await f.redis.xrange(stream, '-', '+')).map(([id]) => id));
    expect(await script([stream], ['g', 'gone-holding', 60_000, 'me'])).toBe('active');
    expect(await names()).toEqual(['gone-holding', 'me']);
  });

  it('the transport sweeps its groups on a timer and counts consumers and removals in /metrics', async () => {
    await leaveConsumers();
    const logger = new MemoryLogger();
    const server = f.server({
      consumer: 'me',
      logger,
      // gone-holding's entries stay where they are (no reclaim within the test).
      reclaimIdleMs: 600_000,
      consumerIdleRemoveMs: BOUND,
      consumerSweepIntervalMs: 100,
    });
    server.addStreamHandler({ stream: 'telemetryEvents', group: 'g' }, async () => undefined);
    await new Promise<void>((resolve, reject) => server.listen((err) => (err ? reject(err) : resolve())));
    await waitFor(async () => !(await names()).includes('gone-empty'), 'gone-empty removed', 20_000, 50);
    expect(await names()).toEqual(['gone-holding', 'me']);
    await waitFor(
      async () =>
        (await f.registry.getSingleMetricAsString('coordbus_stream_consumers_removed_total')).includes(
          `coordbus_stream_consumers_removed_total{stream="${stream}",group="g"} 1`,
        ),
      'the removal counted',
      10_000,
      50,
    );
    const metrics = await f.registry.metrics();
    expect(metrics).toContain(`coordbus_stream_consumers{stream="${stream}",group="g"} 2`);
    expect(logger.lines).toContainEqual({
      level: 'log',
      message: expect.objectContaining({ msg: 'removed idle consumers', consumers: ['gone-empty'] }),
    });
    // The service's own consumer stays however long it idles between reads.
    await idlePast(BOUND, ['gone-holding']);
    expect(await names()).toContain('me');
  });
});

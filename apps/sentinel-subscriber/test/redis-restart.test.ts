import Redis from 'ioredis';
import pino from 'pino';
import { Registry } from 'prom-client';
import { CoordEvent, EnvelopeCodec, Keyspace, newUlid, Schemas } from '@coordbus/envelope';
import { StreamSource } from '@coordbus/event-source';
import { TestRedisServer, testKeyspace, waitFor } from '@coordbus/testing';
import { SentinelMetrics } from '../src/metrics';
import { ObservationRepository } from '../src/observations/observation.repository';
import { SentinelLoop } from '../src/sentinel.loop';
import { SentinelService } from '../src/sentinel.service';

const codec = new EnvelopeCodec();

/** The read loop never dies: Redis goes away (losing everything), comes back, the loop carries on. */
describe('sentinel loop across a Redis restart', () => {
  let server: TestRedisServer;
  let keyspace: Keyspace;
  const conns: Redis[] = [];
  jest.setTimeout(60_000);

  const connect = () => {
    const c = new Redis(server.url, { retryStrategy: () => 100, maxRetriesPerRequest: 2 });
    c.on('error', () => undefined);
    conns.push(c);
    return c;
  };
  const ev = (i: number): CoordEvent =>
    ({
      tx_id: newUlid(),
      tx_kind: 'session.dereg',
      ts: new Date().toISOString(),
      ingress_ts: null,
      source: 'coord',
      session_id: `s${i}`,
      resource: null,
      payload: { reason: 'explicit' },
    }) as CoordEvent;

  beforeEach(async () => {
    server = await new TestRedisServer().start();
    keyspace = testKeyspace('restart');
  });
  afterEach(async () => {
    for (const c of conns.splice(0)) c.disconnect();
    await server.dispose();
  });

  it('reconnects, recreates the lost consumer group and keeps observing', async () => {
    const cmd = connect();
    const metrics = new SentinelMetrics(new Registry());
    const service = new SentinelService(
      new ObservationRepository(cmd, keyspace, { dedupTtlMs: 60_000, maxLen: 10_000 }),
      metrics,
    );
    const source = new StreamSource({ redis: connect(), keyspace, consumer: 'c', blockMs: 50 });
    const loop = new SentinelLoop(source, service, metrics, pino({ level: 'silent' }), {
      idleDelayMs: 0,
      maxBatch: 256,
      maxBackoffMs: 200,
    });
    const publish = (e: CoordEvent) =>
      cmd.xadd(keyspace.coordEvents, '*', ...codec.encode(Schemas.coordEvent, e));
    const observed = async () =>
      (await cmd.xrange(keyspace.sentinelObservations, '-', '+')).map(
        ([, f]) => codec.decode(Schemas.observation, f).session_id,
      );
    loop.start();
    try {
      await publish(ev(1));
      await waitFor(async () => (await observed()).includes('s1'), 's1 observed');
      await server.restart('SIGKILL', 300); // no persistence: the stream and its group are gone
      await waitFor(
        async () =>
          await publish(ev(2)).then(
            () => true,
            () => false,
          ),
        'Redis back',
      );
      await waitFor(async () => (await observed()).includes('s2'), 's2 observed after the restart', 20_000);
    } finally {
      await loop.stop();
      await source.close();
    }
  });
});

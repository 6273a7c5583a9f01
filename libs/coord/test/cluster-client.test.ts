import Redis from 'ioredis';
import { ClusterRespClient, CoordStore, keySlot, RedisConnectionError } from '@coordbus/coord';
import { freePort, TestRedisCluster, testKeyspace } from '@coordbus/testing';

/**
 * The coord hot path's cluster client against a real 3-master cluster: MOVED learned once per
 * slot, ASK during a slot migration, per-slot ordering across a redirect, blocking commands.
 */
jest.setTimeout(60_000);

describe('ClusterRespClient on a Redis Cluster', () => {
  const cluster = new TestRedisCluster(3);
  /** Direct (non-cluster) connections per node, by port. */
  const direct = new Map<number, Redis>();
  const clients: ClusterRespClient[] = [];

  const node = (port: number) => direct.get(port)!;
  const ownerPort = async (slot: number): Promise<number> => {
    const ranges = (await node(cluster.nodes[0].port).cluster('SLOTS')) as unknown as Array<
      [number, number, [string, number]]
    >;
    return ranges.find(([lo, hi]) => slot >= lo && slot <= hi)![2][1];
  };
  const nodeId = async (port: number) => String(await node(port).cluster('MYID'));
  const movedCount = async (port: number) =>
    Number(/errorstat_MOVED:count=(\d+)/.exec(String(await node(port).info('errorstats')))?.[1] ?? 0);
  /** A client seeded on a node that does not own `slot`. */
  const clientAvoiding = async (slot: number, timeoutMs = 2000) => {
    const owner = await ownerPort(slot);
    const seed = cluster.nodes.find((n) => n.port !== owner)!;
    const c = new ClusterRespClient(seed.url, { connectTimeoutMs: timeoutMs, commandTimeoutMs: timeoutMs });
    clients.push(c);
    return { c, seed: seed.port, owner };
  };

  beforeAll(async () => {
    await cluster.start();
    for (const n of cluster.nodes) direct.set(n.port, new Redis(n.url));
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    for (const r of direct.values()) r.disconnect();
    await cluster.dispose();
  });

  it('follows MOVED to the owner once, then goes there directly', async () => {
    const key = 'moved-test:{coord}:k';
    const { c, seed, owner } = await clientAvoiding(keySlot(key));
    const before = await movedCount(seed);
    expect(await c.call('SET', key, 'v1')).toBe('OK');
    expect(await c.call('GET', key)).toBe('v1');
    expect(await c.call('INCR', 'moved-test:{coord}:n')).toBe(1);
    expect(await movedCount(seed)).toBe(before + 1);
    expect(c.openNodes.sort()).toEqual([`127.0.0.1:${seed}`, `127.0.0.1:${owner}`].sort());
    expect(await node(owner).get(key)).toBe('v1');
  });

  it('keeps the order of commands pipelined into one slot across the redirect', async () => {
    const key = 'order-test:{coord}:list';
    const { c } = await clientAvoiding(keySlot(key));
    const sent = Array.from({ length: 200 }, (_, i) => c.call('RPUSH', key, String(i)));
    await Promise.all(sent);
    expect(await c.call('LRANGE', key, 0, -1)).toEqual(Array.from({ length: 200 }, (_, i) => String(i)));
  });

  it('sends a command to the importing node after ASKING while its slot migrates, without caching it', async () => {
    const key = 'ask-test:{asking}:k';
    const slot = keySlot(key);
    const { c, owner } = await clientAvoiding(slot);
    await c.call('SET', 'ask-test:{asking}:warm', '1'); // learn the owner first
    const target = cluster.nodes.find((n) => n.port !== owner)!.port;
    await node(target).cluster('SETSLOT', slot, 'IMPORTING', await nodeId(owner));
    await node(owner).cluster('SETSLOT', slot, 'MIGRATING', await nodeId(target));
    // A key the owner does not hold while migrating: it answers -ASK <slot> <target>.
    expect(await c.call('SET', key, 'moved-along')).toBe('OK');
    expect(Number(await node(target).cluster('COUNTKEYSINSLOT', slot))).toBe(1);
    // ASK is one-off: a key the owner still holds is served by the owner.
    expect(await c.call('GET', 'ask-test:{asking}:warm')).toBe('1');
    // Finish the migration; the cached owner is now stale and a MOVED sends the client on.
    await node(owner).migrate('127.0.0.1', target, '', 0, 5000, 'KEYS', 'ask-test:{asking}:warm');
    for (const n of cluster.nodes) await node(n.port).cluster('SETSLOT', slot, 'NODE', await nodeId(target));
    expect(await c.call('GET', key)).toBe('moved-along');
    expect(await c.call('GET', 'ask-test:{asking}:warm')).toBe('1');
  });

  it('runs a blocking BLPOP on the owner with its own reply bound', async () => {
    const key = 'block-test:{coord}:inbox';
    const { c } = await clientAvoiding(keySlot(key));
    const waiting = c.callWithTimeout(5000, 'BLPOP', key, '3');
    await new Promise((r) => setTimeout(r, 100));
    await node(await ownerPort(keySlot(key))).rpush(key, 'hello');
    expect(await waiting).toEqual([key, 'hello']);
  });

  it('gives a CoordStore the whole coord state on the cluster (every script keeps to the {coord} slot)', async () => {
    const keyspace = testKeyspace('cluster-client');
    const { c } = await clientAvoiding(keySlot(keyspace.coordEvents));
    const store = new CoordStore(c, { keyspace });
    await store.register({ sessionId: 'a', host: 'h', pid: 1 });
    await store.lock('a', 'r');
    await store.send('a', 'a', 'note to self');
    expect(await store.drain('a')).toHaveLength(1);
    await store.dispatch('a', 'a', 'T-1', 'o-1');
    expect((await store.dispatches()).map((o) => o.order_id)).toEqual(['o-1']);
    await store.unlock('a', 'r');
    await store.setSessionTtl(1000);
    expect(await store.evictIfExpired('a', Date.now() + 10_000)).toMatchObject({ evicted: true });
    expect((await store.peers()).length).toBe(0);
  });

  it('reports a dead seed as a connection error within the bound', async () => {
    const c = new ClusterRespClient(`redis://127.0.0.1:${await freePort()}`, { connectTimeoutMs: 300 });
    clients.push(c);
    const started = Date.now();
    await expect(c.call('GET', 'x')).rejects.toBeInstanceOf(RedisConnectionError);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

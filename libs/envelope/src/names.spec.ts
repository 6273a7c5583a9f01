import { DEAD_LETTER_SUFFIX, GROUPS, Keyspace, LEVELS, keyspaceFromEnv } from '@coordbus/envelope';

/** CRC16/XMODEM (poly 0x1021, init 0), the checksum Redis Cluster hashes keys with. */
function crc16(input: string): number {
  let crc = 0;
  for (const byte of Buffer.from(input)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The hash tag Redis Cluster hashes: the text between the first `{` and the next `}`, if not empty. */
function hashTag(key: string): string | null {
  const open = key.indexOf('{');
  if (open < 0) return null;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return null;
  return key.slice(open + 1, close);
}

/** The cluster slot of a key (CLUSTER KEYSLOT). */
function slot(key: string): number {
  return crc16(hashTag(key) ?? key) % 16384;
}

describe('cluster slot helper (checks the checker)', () => {
  it('matches the CRC16 test vector of the Redis Cluster spec', () => {
    expect(crc16('123456789')).toBe(0x31c3);
  });

  it('hashes only the first non-empty tag', () => {
    expect(slot('{user1000}.following')).toBe(slot('{user1000}.followers'));
    expect(slot('foo{}{bar}')).toBe(crc16('foo{}{bar}') % 16384);
    expect(slot('foo{{bar}}zap')).toBe(crc16('{bar') % 16384);
    expect(slot('foo{bar}{zap}')).toBe(crc16('bar') % 16384);
    // Known CLUSTER KEYSLOT answers.
    expect(slot('foo')).toBe(12182);
    expect(slot('bar')).toBe(5061);
  });
});

const NAMESPACES = ['', 'team-a', 'A_b.c:d-1'];

describe.each(NAMESPACES)('Keyspace(%j)', (ns) => {
  const ks = new Keyspace(ns);
  const p = (raw: string) => (ns ? `${ns}:${raw}` : raw);

  /** Every stream a consumer group reads (so each has a dead-letter stream). */
  const streamsOf = (k: Keyspace): [string, string][] => [
    ['coordIngest', k.coordIngest],
    ['coordEvents', k.coordEvents],
    ['sentinelObservations', k.sentinelObservations],
    ['telemetryEvents', k.telemetryEvents],
    ['jobEvents', k.jobEvents],
    ['jobLog(1)', k.jobLog('1')],
  ];
  const streams = () => streamsOf(ks);

  it('builds every name with the namespace prefix', () => {
    expect(ks.namespace).toBe(ns);
    expect({
      coordIngest: ks.coordIngest,
      coordReplay: ks.coordReplay,
      coordEvents: ks.coordEvents,
      sentinelObservations: ks.sentinelObservations,
      telemetryEvents: ks.telemetryEvents,
      jobEvents: ks.jobEvents,
      coordLevelPattern: ks.coordLevelPattern,
      telemetryChannel: ks.telemetryChannel('stage.stall'),
      telemetryPattern: ks.telemetryPattern,
      coordKey: ks.coordKey('locks'),
      jobKey: ks.jobKey('index'),
      jobLog: ks.jobLog('42'),
      bullPrefix: ks.bullPrefix,
      tailerCheckpoint: ks.tailerCheckpoint('headroom'),
      tailerCheckpointKey: ks.tailerCheckpointKey('headroom'),
      sentinelKey: ks.sentinelKey('seen'),
      activityStream: ks.activityStream,
      activityLast: ks.activityLast,
      auditStream: ks.auditStream,
    }).toEqual({
      coordIngest: p('coord:{ingest}'),
      coordReplay: p('logs:stream:coord'),
      coordEvents: p('coord:{coord}:events'),
      sentinelObservations: p('sentinel:{observations}'),
      telemetryEvents: p('telemetry:{events}'),
      jobEvents: p('jobs:{jobs}:events'),
      coordLevelPattern: p('logs.coord.*'),
      telemetryChannel: p('telemetry.stage.stall'),
      telemetryPattern: p('telemetry.*'),
      coordKey: p('coord:{coord}:locks'),
      jobKey: p('jobs:{jobs}:index'),
      jobLog: p('jobs:{jobs}:log:42'),
      bullPrefix: p('{bull}'),
      tailerCheckpoint: p('tailer:{checkpoints}:headroom'),
      tailerCheckpointKey: p('telemetry:{events}:checkpoint:headroom'),
      sentinelKey: p('sentinel:{sentinel}:seen'),
      activityStream: p('activity:{activity}'),
      activityLast: p('activity:{activity}:last'),
      auditStream: p('audit:{audit}'),
    });
    for (const level of LEVELS) expect(ks.coordLevelChannel(level)).toBe(p(`logs.coord.${level}`));
    expect(ks.name('x')).toBe(p('x'));
    expect(ks.glob).toBe(ns ? `${ns}:*` : '*');
    // BullMQ applies the (namespaced) prefix itself; the queue name stays fixed.
    expect(ks.jobQueue).toBe('hook-jobs');
  });

  it('channel patterns match their channels (PSUBSCRIBE glob)', () => {
    const glob = (pattern: string) =>
      new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
    for (const level of LEVELS) expect(ks.coordLevelChannel(level)).toMatch(glob(ks.coordLevelPattern));
    expect(ks.telemetryChannel('x')).toMatch(glob(ks.telemetryPattern));
    expect(ks.telemetryChannel('x')).not.toMatch(glob(ks.coordLevelPattern));
    expect(new Keyspace('other').coordLevelChannel('info')).not.toMatch(glob(ks.coordLevelPattern));
  });

  it.each(streams().map(([n]) => n))('%s carries a hash tag shared by its dead-letter stream', (name) => {
    const stream = streams().find(([n]) => n === name)![1];
    const dead = ks.deadLetter(stream);
    expect(dead).toBe(`${stream}${DEAD_LETTER_SUFFIX}`);
    expect(hashTag(stream)).not.toBeNull();
    expect(hashTag(dead)).toBe(hashTag(stream));
    expect(slot(dead)).toBe(slot(stream));
  });

  it('coord state shares the coord events slot; job state the job events slot', () => {
    expect(slot(ks.coordKey('x'))).toBe(slot(ks.coordEvents));
    expect(slot(ks.coordKey('locks:repo/main'))).toBe(slot(ks.coordEvents));
    expect(slot(ks.jobLog('1'))).toBe(slot(ks.jobEvents));
    expect(slot(ks.jobKey('index'))).toBe(slot(ks.jobEvents));
    expect(slot(ks.tailerCheckpointKey('headroom'))).toBe(slot(ks.telemetryEvents));
    // A job id or suffix holding braces cannot move the key: the first tag wins.
    expect(slot(ks.jobLog('{evil}'))).toBe(slot(ks.jobEvents));
    expect(slot(ks.coordKey('}{x}'))).toBe(slot(ks.coordEvents));
  });

  it('the namespace does not move any key to another slot', () => {
    const bare = new Keyspace('');
    const bareStreams = new Map(streamsOf(bare));
    for (const [name, stream] of streams()) expect(slot(stream)).toBe(slot(bareStreams.get(name)!));
    expect(slot(`${ks.bullPrefix}:hook-jobs:wait`)).toBe(slot(`${bare.bullPrefix}:hook-jobs:id`));
  });

  it('archivedStreams lists every durable source stream with its dead-letter stream', () => {
    const sources = [
      ks.coordIngest,
      ks.coordEvents,
      ks.sentinelObservations,
      ks.telemetryEvents,
      ks.jobEvents,
    ];
    expect([...ks.archivedStreams].sort()).toEqual(
      [...sources, ...sources.map((s) => ks.deadLetter(s))].sort(),
    );
  });

  it('keeps the independent streams on distinct tags', () => {
    const tags = [
      ks.coordIngest,
      ks.coordEvents,
      ks.sentinelObservations,
      ks.telemetryEvents,
      ks.jobEvents,
    ].map(hashTag);
    expect(new Set(tags).size).toBe(tags.length);
  });
});

describe('Keyspace with the empty namespace keeps the seed names exactly', () => {
  const ks = new Keyspace();
  it('uses logs:stream:coord and logs.coord.<level>', () => {
    expect(ks.coordReplay).toBe('logs:stream:coord');
    expect(ks.coordLevelChannel('info')).toBe('logs.coord.info');
    expect(ks.coordLevelChannel('warn')).toBe('logs.coord.warn');
    expect(ks.coordLevelChannel('error')).toBe('logs.coord.error');
    expect(ks.coordLevelPattern).toBe('logs.coord.*');
  });
});

describe('namespace validation', () => {
  it.each(['{x}', 'a}', 'a b', 'ns/x', 'ünï', 'a*', 'a?', 'a\n', 'tab\t'])(
    'refuses %j naming the variable',
    (ns) => {
      expect(() => new Keyspace(ns)).toThrow(/COORDBUS_NAMESPACE must be letters, digits/);
      expect(() => keyspaceFromEnv({ COORDBUS_NAMESPACE: ns })).toThrow(/COORDBUS_NAMESPACE/);
    },
  );

  it('keyspaceFromEnv applies COORDBUS_NAMESPACE, empty by default', () => {
    expect(keyspaceFromEnv({}).namespace).toBe('');
    expect(keyspaceFromEnv({ COORDBUS_NAMESPACE: '' }).coordReplay).toBe('logs:stream:coord');
    expect(keyspaceFromEnv({ COORDBUS_NAMESPACE: 'prod' }).coordReplay).toBe('prod:logs:stream:coord');
  });

  it('exposes the consumer group names', () => {
    expect(GROUPS).toEqual({ fanout: 'fanout', archivist: 'archivist', sentinel: 'sentinel' });
  });
});

import {
  EnvelopeCodec,
  EntryFields,
  InvalidError,
  JOB_STATUSES,
  Schema,
  SchemaKey,
  SchemaMismatchError,
  Schemas,
  TX_KINDS,
  TooLargeError,
  TxKind,
  schemaByName,
} from '@coordbus/envelope';

/**
 * Every schema: a valid example round-trips unchanged, every invalid field is refused naming
 * exactly that path, and the codec's wire rules (version, size, type, JSON, whitelist) hold.
 */

const codec = new EnvelopeCodec();
const TS = '2026-04-07T12:34:56.789Z';
const ULID = '01JABCDEF0TXSD0123456789AB';

type Plain = Record<string, unknown>;
const DELETE = Symbol('delete');
/** An invalid field: the dotted path to change, the value to put there (or DELETE), and the paths expected to fail. */
type Bad = [path: string, value: unknown, failing?: string[]];

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** A deep copy of `obj` with `path` set to `value` (or removed). */
function withField(obj: Plain, path: string, value: unknown): Plain {
  const out = clone(obj);
  const keys = path.split('.');
  let node = out;
  for (const k of keys.slice(0, -1)) node = node[k] as Plain;
  const last = keys[keys.length - 1];
  if (value === DELETE) delete node[last];
  else node[last] = value;
  return out;
}

/** Stream-entry fields for `data`, written by hand so decode is tested apart from encode. */
function entry(schema: Schema<unknown>, data: unknown, version = String(schema.major)): string[] {
  return ['type', schema.name, 'v', version, 'data', typeof data === 'string' ? data : JSON.stringify(data)];
}

/** The field names of InvalidError paths (`fields.phase: phase must be ...` -> `fields.phase`). */
function failingPaths(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidError);
    const paths = (err as InvalidError).paths;
    expect((err as InvalidError).details).toEqual({ paths });
    return paths.map((p) => p.slice(0, p.indexOf(':'))).sort();
  }
  throw new Error('expected an InvalidError, nothing was thrown');
}

/** Plain JSON view of a decoded DTO: what a consumer would serialize (no undefined, no class). */
const json = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

/** Common invalid timestamps: not a date, impossible date, date only, no offset, basic format, space separator, number. */
const badTimestamps = (path: string): Bad[] => [
  [path, 'yesterday'],
  [path, '2026-02-30T00:00:00Z'],
  [path, '2026-04-07'],
  [path, '2026-04-07T12:34:56'],
  [path, '20260407T123456Z'],
  [path, '2026-04-07 12:34:56Z'],
  [path, 1775565296789],
  [path, null],
  [path, DELETE],
];

// ---- valid examples ------------------------------------------------------------------------

/** Seed 000's envelope, verbatim (placeholders filled in). */
const coordOp = (): Plain => ({
  v: 0,
  ts: '2026-04-07T12:34:56.789Z',
  service: 'coord',
  host: 'box',
  level: 'info',
  pid: 12345,
  target: 'coord::register',
  msg: 'coord.register start',
  fields: {
    op: 'register',
    session: 'claude-pid-91952',
    resource: '',
    peer: '',
    duration_ms: 0,
    phase: 'pre',
    exit_code: 0,
  },
});

/** One valid payload per TxKind (seed 002's table). */
const PAYLOADS: Record<TxKind, Plain> = {
  'session.register': { role: 'worker', task: 'TOD-481', blob: { cwd: '/repo', tags: ['a', 1, null] } },
  'session.heartbeat': { last_heartbeat: TS, phase: 'implement' },
  'session.dereg': { reason: 'explicit' },
  'lock.acquire': { resource: 'repo/main', owner_session: 's1' },
  'lock.release': { resource: 'repo/main', owner_session: 's1', reason: 'unlock' },
  'inbox.deliver': { to_session: 's2', msg_id: 'm-1', kind: 'text' },
  'dispatch.issue': { order_id: 'o-1', assignee: 's2', ticket: 'TOD-481' },
  'dispatch.ack': { order_id: 'o-1', assignee: 's2' },
  'dispatch.done': { order_id: 'o-1', assignee: 's2', note: 'merged in 4f2c' },
  'dispatch.reject': { order_id: 'o-1', assignee: 's2', note: 'not mine' },
};

const coordEvent = (kind: TxKind = 'session.heartbeat'): Plain => ({
  tx_id: ULID,
  tx_kind: kind,
  ts: '2026-04-07T21:13:45.123Z',
  ingress_ts: null,
  source: 'fs-poll',
  session_id: 'claude-pid-91952',
  resource: null,
  payload: clone(PAYLOADS[kind]),
});

const jobLog = (): Plain => ({ seq: 1, ts: TS, kind: 'stdout', line: 'hello' });
const jobStatus = (): Plain => ({
  seq: 7,
  ts: TS,
  kind: 'status',
  status: 'failed',
  exit_code: 1,
  signal: null,
  reason: 'exit 1',
});

const jobEvent = (): Plain => ({
  job_id: 'j-1',
  invocation_id: 'inv-1',
  hook: 'post-commit',
  name: 'lint',
  worktree: '/repo',
  tags: ['ci', 'fast'],
  status: 'running',
  exit_code: null,
  signal: null,
  host: 'box',
  ts: TS,
});

const telemetry = (): Plain => ({
  source: 'headroom',
  event: 'stage.stall',
  status: 'stall',
  duration_ms: 1234.5,
  detail: { dominant_stage: 'compress', episodes: 3, peak_ms: 900, nested: { list: [1, 'two', null] } },
  ts: TS,
});

const observation = (): Plain => ({
  ts: TS,
  session_id: 's1',
  kind: 'session.register',
  resource: null,
  summary: 's1 registered as worker (TOD-481)',
  tx_id: ULID,
  source: 'fs-poll',
});

const deadLetter = (): Plain => ({
  fields: { type: 'coord-op', v: '0', data: '{not json' },
  source_stream: 'coord:{ingest}',
  entry_id: '1775565296789-0',
  reason: 'data: not JSON',
  error_code: 'Invalid',
  delivery_count: 1,
  group: 'fanout',
  consumer: 'box-4242',
  ts: TS,
});

interface SchemaCase {
  key: SchemaKey;
  valid: () => Plain;
  /** Other valid shapes of the same schema (optional fields, nullables, other enum values). */
  variants: Plain[];
  invalid: Bad[];
  /** A valid example whose encoded size is at least `bytes` (for the size-limit tests). */
  big: (bytes: number) => Plain;
}

const CASES: SchemaCase[] = [
  {
    key: 'coordOp',
    valid: coordOp,
    variants: [
      withField(
        withField(
          withField(withField(coordOp(), 'level', 'error'), 'fields.phase', 'post'),
          'fields.exit_code',
          2,
        ),
        'fields.duration_ms',
        12.5,
      ),
      withField(withField(coordOp(), 'fields.resource', 'repo/main'), 'target', 'coord::lock'),
      withField(withField(coordOp(), 'level', 'warn'), 'fields.exit_code', -1),
      withField(coordOp(), 'host', ''),
    ],
    invalid: [
      ['v', '0'],
      ['v', -1],
      ['v', DELETE],
      ...badTimestamps('ts'),
      ['service', ''],
      ['service', 5],
      ['service', DELETE],
      ['host', 5],
      ['host', null],
      ['host', DELETE],
      ['level', 'debug'],
      ['level', 'INFO'],
      ['level', DELETE],
      ['pid', -1],
      ['pid', 1.5],
      ['pid', '12345'],
      ['pid', DELETE],
      ['target', 5],
      ['target', DELETE],
      ['msg', null],
      ['msg', DELETE],
      ['fields', 'x'],
      ['fields', null],
      ['fields', DELETE],
      ['fields.op', ''],
      ['fields.op', 3],
      ['fields.op', DELETE],
      ['fields.session', null],
      ['fields.session', DELETE],
      ['fields.resource', null],
      ['fields.resource', 1],
      ['fields.peer', null],
      ['fields.peer', DELETE],
      ['fields.duration_ms', -1],
      ['fields.duration_ms', '5'],
      ['fields.duration_ms', null],
      ['fields.duration_ms', DELETE],
      ['fields.phase', 'middle'],
      ['fields.phase', DELETE],
      ['fields.exit_code', 1.5],
      ['fields.exit_code', '0'],
      ['fields.exit_code', null],
      ['fields.exit_code', DELETE],
    ],
    big: (n) => withField(coordOp(), 'msg', 'x'.repeat(n)),
  },
  {
    key: 'coordEvent',
    valid: coordEvent,
    variants: [
      ...TX_KINDS.map((k) => coordEvent(k)),
      withField(coordEvent(), 'ingress_ts', '2026-04-07T21:13:45.200+02:00'),
      withField(withField(coordEvent('lock.acquire'), 'resource', 'repo/main'), 'session_id', null),
      withField(coordEvent('session.heartbeat'), 'payload.phase', null),
      withField(coordEvent('session.register'), 'payload.blob', null),
      withField(coordEvent('session.register'), 'payload.blob', 'opaque'),
      withField(
        withField(coordEvent('lock.acquire'), 'payload.expires_at', '2026-04-07T21:14:45.123Z'),
        'payload.reason',
        'steal',
      ),
      withField(
        withField(coordEvent('inbox.deliver'), 'payload.from_session', 's1'),
        'payload.subject',
        'review please',
      ),
    ],
    invalid: [
      ['tx_id', 'not-a-ulid'],
      ['tx_id', ULID.toLowerCase()],
      ['tx_id', ULID.slice(1)],
      ['tx_id', `${ULID}0`],
      ['tx_id', `${ULID.slice(0, -1)}I`],
      ['tx_id', '8ZZZZZZZZZZZZZZZZZZZZZZZZZ'],
      ['tx_id', 5],
      ['tx_id', DELETE],
      ['tx_kind', 'session.start'],
      ['tx_kind', 'dispatch-order.issue'],
      ['tx_kind', 'constructor'],
      ['tx_kind', DELETE],
      ...badTimestamps('ts'),
      ['ingress_ts', 'later'],
      ['ingress_ts', 5],
      ['ingress_ts', '2026-04-07'],
      ['ingress_ts', DELETE],
      ['source', ''],
      ['source', 7],
      ['source', DELETE],
      ['session_id', 5],
      ['session_id', DELETE],
      ['resource', 5],
      ['resource', DELETE],
      ['payload', null],
      ['payload', []],
      ['payload', 'x'],
      ['payload', DELETE],
    ],
    big: (n) => withField(coordEvent('session.register'), 'payload.blob', 'x'.repeat(n)),
  },
  {
    key: 'jobLog',
    valid: jobLog,
    variants: [
      withField(jobLog(), 'kind', 'stderr'),
      withField(jobLog(), 'line', ''),
      jobStatus(),
      ...JOB_STATUSES.map((s) => withField(jobStatus(), 'status', s)),
      withField(
        withField(withField(jobStatus(), 'status', 'signaled'), 'exit_code', null),
        'signal',
        'SIGTERM',
      ),
      { seq: 2, ts: TS, kind: 'status', status: 'queued' },
    ],
    invalid: [
      ['seq', 0],
      ['seq', -1],
      ['seq', 1.5],
      ['seq', '1'],
      ['seq', DELETE],
      ...badTimestamps('ts'),
      ['kind', 'stdin'],
      ['kind', DELETE],
      ['line', DELETE],
      ['line', 5],
      ['line', null],
      ['status', 'bogus'],
      ['exit_code', 1.5],
      ['exit_code', '1'],
      ['signal', 9],
      ['reason', 5],
    ],
    big: (n) => withField(jobLog(), 'line', 'x'.repeat(n)),
  },
  {
    key: 'jobEvent',
    valid: jobEvent,
    variants: [
      withField(withField(jobEvent(), 'worktree', null), 'tags', []),
      withField(withField(jobEvent(), 'status', 'succeeded'), 'exit_code', 0),
      withField(
        withField(withField(jobEvent(), 'status', 'signaled'), 'signal', 'SIGKILL'),
        'reason',
        'cancelled by tag',
      ),
      ...JOB_STATUSES.map((s) => withField(jobEvent(), 'status', s)),
    ],
    invalid: [
      ['job_id', ''],
      ['job_id', DELETE],
      ['invocation_id', ''],
      ['invocation_id', DELETE],
      ['hook', ''],
      ['hook', DELETE],
      ['name', 5],
      ['name', DELETE],
      ['worktree', 5],
      ['worktree', DELETE],
      ['tags', 'ci'],
      ['tags', [1]],
      ['tags', null],
      ['tags', DELETE],
      ['status', 'done'],
      ['status', DELETE],
      ['exit_code', 1.5],
      ['exit_code', '0'],
      ['exit_code', DELETE],
      ['signal', 9],
      ['signal', DELETE],
      ['reason', 5],
      ['host', 5],
      ['host', DELETE],
      ...badTimestamps('ts'),
    ],
    big: (n) => withField(jobEvent(), 'reason', 'x'.repeat(n)),
  },
  {
    key: 'telemetry',
    valid: telemetry,
    variants: [
      withField(withField(telemetry(), 'status', 'ok'), 'duration_ms', 0),
      withField(withField(telemetry(), 'status', 'degraded'), 'detail', {}),
      withField(telemetry(), 'ts', '2026-04-07T12:34:56-07:00'),
    ],
    invalid: [
      ['source', ''],
      ['source', DELETE],
      ['event', ''],
      ['event', 1],
      ['event', DELETE],
      ['status', 'stalled'],
      ['status', DELETE],
      ['duration_ms', -1],
      ['duration_ms', '1'],
      ['duration_ms', null],
      ['duration_ms', DELETE],
      ['detail', []],
      ['detail', null],
      ['detail', 'x'],
      ['detail', DELETE],
      ...badTimestamps('ts'),
    ],
    big: (n) => withField(telemetry(), 'detail.blob', 'x'.repeat(n)),
  },
  {
    key: 'observation',
    valid: observation,
    variants: [
      ...TX_KINDS.map((k) => withField(observation(), 'kind', k)),
      withField(withField(observation(), 'session_id', null), 'resource', 'repo/main'),
    ],
    invalid: [
      ...badTimestamps('ts'),
      ['session_id', 5],
      ['session_id', DELETE],
      ['kind', 'session.start'],
      ['kind', DELETE],
      ['resource', 5],
      ['resource', DELETE],
      ['summary', ''],
      ['summary', DELETE],
      ['tx_id', 'nope'],
      ['tx_id', DELETE],
      ['source', ''],
      ['source', DELETE],
    ],
    big: (n) => withField(observation(), 'summary', 'x'.repeat(n)),
  },
  {
    key: 'deadLetter',
    valid: deadLetter,
    variants: [
      withField(withField(deadLetter(), 'error_code', 'SchemaMismatch'), 'delivery_count', 0),
      withField(withField(deadLetter(), 'fields', {}), 'group', ''),
    ],
    invalid: [
      ['fields', 'x'],
      ['fields', []],
      ['fields', null],
      ['fields', { data: 1 }],
      ['fields', DELETE],
      ['source_stream', ''],
      ['source_stream', DELETE],
      ['entry_id', ''],
      ['entry_id', DELETE],
      ['reason', ''],
      ['reason', DELETE],
      ['error_code', 'Oops'],
      ['error_code', DELETE],
      ['delivery_count', -1],
      ['delivery_count', 1.5],
      ['delivery_count', DELETE],
      ['group', 5],
      ['group', DELETE],
      ['consumer', 5],
      ['consumer', DELETE],
      ...badTimestamps('ts'),
    ],
    big: (n) => withField(deadLetter(), 'fields.data', 'x'.repeat(n)),
  },
];

const show = (v: unknown): string => (v === DELETE ? '(missing)' : JSON.stringify(v));

describe.each(CASES)('schema $key', ({ key, valid, variants, invalid, big }) => {
  const schema = Schemas[key] as Schema<unknown>;

  it('is registered under its wire name', () => {
    expect(schemaByName(schema.name)).toBe(schema);
  });

  it.each([valid(), ...variants].map((v, i) => [i, v] as const))(
    'valid example #%i round-trips through encode -> decode unchanged',
    (_i, value) => {
      const fields = codec.encode(schema, clone(value));
      expect(fields.slice(0, 4)).toEqual(['type', schema.name, 'v', String(schema.major)]);
      expect(fields[4]).toBe('data');
      expect(JSON.parse(fields[5])).toStrictEqual(value);
      const decoded = codec.decode(schema, fields);
      expect(decoded).toBeInstanceOf(schema.cls);
      expect(json(decoded)).toStrictEqual(value);
      // Redis hands fields back as a flat array or, through some clients, a record: both decode.
      const record = Object.fromEntries([0, 2, 4].map((i) => [fields[i], fields[i + 1]]));
      expect(json(codec.decode(schema, record))).toStrictEqual(value);
      // Re-encoding what was decoded gives the same entry.
      expect(codec.encode(schema, decoded)).toEqual(fields);
    },
  );

  it.each(invalid.map(([path, value, failing]) => [path, show(value), value, failing ?? [path]] as const))(
    'refuses %s = %s with InvalidError naming it',
    (path, _shown, value, failing) => {
      const bad = withField(valid(), path, value);
      expect(failingPaths(() => codec.decode(schema, entry(schema, bad)))).toEqual([...failing].sort());
      expect(failingPaths(() => codec.encode(schema, bad))).toEqual([...failing].sort());
    },
  );

  it('names every failing path at once', () => {
    const [[p1, v1], [p2, v2]] = [invalid[0], invalid.find(([p]) => p !== invalid[0][0])!];
    const bad = withField(withField(valid(), p1, v1), p2, v2);
    expect(failingPaths(() => codec.decode(schema, entry(schema, bad)))).toEqual([p1, p2].sort());
  });

  it('refuses a newer major version with SchemaMismatchError', () => {
    let err: unknown;
    try {
      codec.decode(schema, entry(schema, valid(), String(schema.major + 1)));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SchemaMismatchError);
    expect(err).toMatchObject({
      code: 'SchemaMismatch',
      exitCode: 8,
      schema: schema.name,
      found: schema.major + 1,
      supported: schema.major,
    });
  });

  it('accepts its own major version and an entry without type/v fields', () => {
    expect(json(codec.decode(schema, entry(schema, valid(), String(schema.major))))).toStrictEqual(valid());
    expect(json(codec.decode(schema, ['data', JSON.stringify(valid())]))).toStrictEqual(valid());
  });

  it.each(['', ' ', '1.5', '-1', 'x', '0x1', '1e3'])('refuses version field %j as not a version', (v) => {
    expect(failingPaths(() => codec.decode(schema, entry(schema, valid(), v)))).toEqual(['v']);
  });

  it('refuses an entry whose type is another schema', () => {
    const other = Object.values(Schemas).find((s) => s.name !== schema.name)!;
    const fields = ['type', other.name, 'v', String(schema.major), 'data', JSON.stringify(valid())];
    expect(failingPaths(() => codec.decode(schema, fields))).toEqual(['type']);
    expect(failingPaths(() => codec.decode(schema, ['type', 'nonsense', 'data', '{}']))).toEqual(['type']);
  });

  it.each([
    ['not JSON', '{not json', 'data'],
    ['truncated JSON', JSON.stringify(valid()).slice(0, -1), 'data'],
    ['JSON null', 'null', '(root)'],
    ['a JSON array', '[]', '(root)'],
    ['a JSON string', '"x"', '(root)'],
    ['a JSON number', '42', '(root)'],
  ])('refuses data that is %s', (_what, data, path) => {
    expect(failingPaths(() => codec.decode(schema, entry(schema, data)))).toEqual([path]);
  });

  it('refuses an entry without data', () => {
    expect(
      failingPaths(() => codec.decode(schema, ['type', schema.name, 'v', String(schema.major)])),
    ).toEqual(['data']);
  });

  it('strips unknown properties (whitelist) on decode and on encode', () => {
    const extra = { ...valid(), extra: 1, __secret: 'x', toString: 'shadow' };
    const decoded = codec.decode(schema, entry(schema, extra));
    expect(json(decoded)).toStrictEqual(valid());
    const fields = codec.encode(schema, extra);
    expect(JSON.parse(fields[5])).toStrictEqual(valid());
  });

  it('refuses an oversize entry with TooLargeError at the default and a configured limit', () => {
    const limit = codec.limitFor(schema);
    expect(limit).toBe(key === 'deadLetter' ? 1024 * 1024 : 64 * 1024);
    const huge = big(limit);
    const expectTooLarge = (fn: () => unknown, max: number) => {
      let err: unknown;
      try {
        fn();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TooLargeError);
      expect((err as TooLargeError).limit).toBe(max);
      expect((err as TooLargeError).size).toBeGreaterThan(max);
      expect((err as TooLargeError).exitCode).toBe(10);
    };
    expectTooLarge(() => codec.encode(schema, huge), limit);
    expectTooLarge(() => codec.decode(schema, entry(schema, huge)), limit);

    // Exactly at a configured limit passes; one byte over fails, on both sides.
    const example = big(1000);
    const fields = codec.encode(schema, example);
    const size = fields.reduce((n, f) => n + Buffer.byteLength(f), 0);
    const exact = new EnvelopeCodec({ maxBytes: size });
    expect(exact.encode(schema, example)).toEqual(fields);
    expect(json(exact.decode(schema, fields))).toStrictEqual(example);
    const tight = new EnvelopeCodec({ maxBytes: size - 1 });
    if (schema.maxBytes === undefined) {
      expectTooLarge(() => tight.encode(schema, example), size - 1);
      expectTooLarge(() => tight.decode(schema, fields), size - 1);
    } else {
      // A schema with its own larger limit (dead letters) is not cut down by a smaller codec limit.
      expect(json(tight.decode(schema, fields))).toStrictEqual(example);
    }
  });

  it('counts bytes, not characters, against the limit', () => {
    const fields = codec.encode(schema, big(100));
    const size = fields.reduce((n, f) => n + Buffer.byteLength(f), 0);
    const wide = JSON.stringify(big(100)).replace(/x{100}/, 'é'.repeat(100));
    const wideFields = entry(schema, wide);
    expect(wideFields.reduce((n, f) => n + f.length, 0)).toBe(size);
    const small = new EnvelopeCodec({ maxBytes: size + 50 });
    if (schema.maxBytes === undefined) {
      expect(() => small.decode(schema, wideFields)).toThrow(TooLargeError);
    }
    expect(() => small.decode(schema, fields)).not.toThrow();
  });

  it('validate() refuses a value that is not an object', () => {
    for (const v of [null, [], 'x', 1, undefined]) {
      expect(failingPaths(() => codec.validate(schema, v))).toEqual(['(root)']);
    }
  });
});

describe('coord event payload: a tagged union on tx_kind', () => {
  /** Every required payload field of each kind (an empty payload must name all of them). */
  const REQUIRED: Record<TxKind, string[]> = {
    'session.register': ['role', 'task', 'blob'],
    'session.heartbeat': ['last_heartbeat', 'phase'],
    'session.dereg': ['reason'],
    'lock.acquire': ['resource', 'owner_session'],
    'lock.release': ['resource', 'owner_session'],
    'inbox.deliver': ['to_session', 'msg_id', 'kind'],
    'dispatch.issue': ['order_id', 'assignee', 'ticket'],
    'dispatch.ack': ['order_id', 'assignee'],
    'dispatch.done': ['order_id', 'assignee'],
    'dispatch.reject': ['order_id', 'assignee'],
  };

  /** Each invalid payload field per kind. */
  const BAD_PAYLOAD: [TxKind, string, unknown][] = [
    ['session.register', 'role', 5],
    ['session.register', 'role', DELETE],
    ['session.register', 'task', null],
    ['session.register', 'task', DELETE],
    ['session.register', 'blob', DELETE],
    ['session.heartbeat', 'last_heartbeat', 'soon'],
    ['session.heartbeat', 'last_heartbeat', '2026-04-07'],
    ['session.heartbeat', 'last_heartbeat', DELETE],
    ['session.heartbeat', 'phase', 5],
    ['session.heartbeat', 'phase', DELETE],
    ['session.dereg', 'reason', ''],
    ['session.dereg', 'reason', DELETE],
    ['lock.acquire', 'resource', ''],
    ['lock.acquire', 'resource', DELETE],
    ['lock.acquire', 'owner_session', ''],
    ['lock.acquire', 'owner_session', DELETE],
    ['lock.acquire', 'expires_at', 'later'],
    ['lock.acquire', 'reason', 5],
    ['lock.release', 'resource', DELETE],
    ['lock.release', 'owner_session', ''],
    ['lock.release', 'reason', 5],
    ['inbox.deliver', 'to_session', ''],
    ['inbox.deliver', 'msg_id', DELETE],
    ['inbox.deliver', 'kind', 5],
    ['inbox.deliver', 'kind', DELETE],
    ['inbox.deliver', 'from_session', 5],
    ['inbox.deliver', 'subject', 5],
    ['dispatch.issue', 'order_id', DELETE],
    ['dispatch.issue', 'assignee', ''],
    ['dispatch.issue', 'ticket', DELETE],
    ['dispatch.issue', 'ticket', 7],
    ['dispatch.ack', 'order_id', DELETE],
    ['dispatch.ack', 'assignee', ''],
    ['dispatch.done', 'order_id', ''],
    ['dispatch.done', 'note', 5],
    ['dispatch.reject', 'assignee', DELETE],
    ['dispatch.reject', 'note', []],
  ];

  it('covers every TxKind', () => {
    expect(Object.keys(PAYLOADS).sort()).toEqual([...TX_KINDS].sort());
    expect(new Set(BAD_PAYLOAD.map(([k]) => k))).toEqual(new Set(TX_KINDS));
  });

  it.each(BAD_PAYLOAD.map(([k, f, v]) => [k, f, show(v), v] as const))(
    '%s refuses payload.%s = %s',
    (kind, field, _shown, value) => {
      const bad = withField(coordEvent(kind), `payload.${field}`, value);
      const fields = entry(Schemas.coordEvent as Schema<unknown>, bad);
      expect(failingPaths(() => codec.decode(Schemas.coordEvent, fields))).toEqual([`payload.${field}`]);
      expect(failingPaths(() => codec.encode(Schemas.coordEvent, bad as never))).toEqual([
        `payload.${field}`,
      ]);
    },
  );

  it.each(TX_KINDS)('%s with an empty payload names each required field', (kind) => {
    const bad = withField(coordEvent(kind), 'payload', {});
    expect(failingPaths(() => codec.validate(Schemas.coordEvent, bad))).toEqual(
      REQUIRED[kind].map((f) => `payload.${f}`).sort(),
    );
  });

  // An order's later steps carry a subset of dispatch.issue's fields, so only the others refuse it.
  it.each(TX_KINDS.filter((k) => !k.startsWith('dispatch.')))(
    '%s refuses a dispatch.issue payload (checked against its own kind)',
    (kind) => {
      const bad = { ...coordEvent(kind), payload: clone(PAYLOADS['dispatch.issue']) };
      expect(failingPaths(() => codec.validate(Schemas.coordEvent, bad))).toEqual(
        REQUIRED[kind].map((f) => `payload.${f}`).sort(),
      );
    },
  );

  it('refuses a session.register payload under dispatch.issue', () => {
    const bad = { ...coordEvent('dispatch.issue'), payload: clone(PAYLOADS['session.register']) };
    expect(failingPaths(() => codec.validate(Schemas.coordEvent, bad))).toEqual([
      'payload.assignee',
      'payload.order_id',
      'payload.ticket',
    ]);
  });

  it.each(TX_KINDS)('%s strips unknown payload properties', (kind) => {
    const extra = withField(coordEvent(kind), 'payload.body', 'the message body must never travel');
    const decoded = codec.decode(Schemas.coordEvent, entry(Schemas.coordEvent as Schema<unknown>, extra));
    expect(json(decoded)).toStrictEqual(coordEvent(kind));
    expect(json(decoded.payload)).toStrictEqual(PAYLOADS[kind]);
  });

  it('reports envelope and payload failures together', () => {
    const bad = withField(withField(coordEvent('dispatch.issue'), 'tx_id', 'x'), 'payload.ticket', DELETE);
    expect(failingPaths(() => codec.validate(Schemas.coordEvent, bad))).toEqual(['payload.ticket', 'tx_id']);
  });

  it('an unknown tx_kind names only tx_kind (no payload class to check against)', () => {
    for (const kind of ['constructor', '__proto__', 'toString', 'nope']) {
      expect(
        failingPaths(() => codec.validate(Schemas.coordEvent, { ...coordEvent(), tx_kind: kind })),
      ).toEqual(['tx_kind']);
    }
  });
});

describe('job log record kinds', () => {
  it('stdout and stderr need line; status needs status', () => {
    for (const kind of ['stdout', 'stderr']) {
      expect(failingPaths(() => codec.validate(Schemas.jobLog, { seq: 1, ts: TS, kind }))).toEqual(['line']);
    }
    expect(failingPaths(() => codec.validate(Schemas.jobLog, { seq: 1, ts: TS, kind: 'status' }))).toEqual([
      'status',
    ]);
  });

  it('a line record does not need status, a status record does not need line', () => {
    expect(() => codec.validate(Schemas.jobLog, { seq: 1, ts: TS, kind: 'stderr', line: 'x' })).not.toThrow();
    expect(() =>
      codec.validate(Schemas.jobLog, { seq: 1, ts: TS, kind: 'status', status: 'running' }),
    ).not.toThrow();
  });

  it('a field of the other kind must still be well-typed when present', () => {
    expect(failingPaths(() => codec.validate(Schemas.jobLog, { ...jobLog(), status: 'bogus' }))).toEqual([
      'status',
    ]);
    expect(failingPaths(() => codec.validate(Schemas.jobLog, { ...jobStatus(), line: 5 }))).toEqual(['line']);
  });
});

describe('coord op envelope (seed 000)', () => {
  it('keeps exactly the seed shape and key order on the wire', () => {
    const data = codec.encode(Schemas.coordOp, coordOp() as never)[5];
    expect(data).toBe(JSON.stringify(coordOp()));
    expect(Object.keys(JSON.parse(data))).toEqual([
      'v',
      'ts',
      'service',
      'host',
      'level',
      'pid',
      'target',
      'msg',
      'fields',
    ]);
  });

  it('refuses an envelope whose own v is newer, even in a v0 entry', () => {
    const fields = entry(Schemas.coordOp as Schema<unknown>, { ...coordOp(), v: 1 }, '0');
    expect(() => codec.decode(Schemas.coordOp, fields)).toThrow(SchemaMismatchError);
  });

  it('strips unknown properties inside fields too', () => {
    const extra = withField(coordOp(), 'fields.junk', { a: 1 });
    expect(
      json(codec.decode(Schemas.coordOp, entry(Schemas.coordOp as Schema<unknown>, extra))),
    ).toStrictEqual(coordOp());
  });
});

describe('EnvelopeCodec options', () => {
  it.each([0, -1, 1.5, NaN])('refuses maxBytes %p', (maxBytes) => {
    expect(() => new EnvelopeCodec({ maxBytes })).toThrow(RangeError);
  });

  it('defaults to 64 KiB', () => {
    expect(new EnvelopeCodec().maxBytes).toBe(65536);
  });

  it('a configured limit above the dead-letter limit raises it too (a dead letter must fit its original)', () => {
    const roomy = new EnvelopeCodec({ maxBytes: 2 * 1024 * 1024 });
    expect(roomy.limitFor(Schemas.deadLetter as Schema<unknown>)).toBe(2 * 1024 * 1024);
    const dl = withField(deadLetter(), 'fields.data', 'x'.repeat(1536 * 1024));
    expect(
      json(roomy.decode(Schemas.deadLetter, roomy.encode(Schemas.deadLetter, dl as never))),
    ).toStrictEqual(dl);
  });

  it('accepts fields as [k, v, ...] with an odd trailing key ignored', () => {
    const fields: EntryFields = [...entry(Schemas.jobLog as Schema<unknown>, jobLog()), 'dangling'];
    expect(json(codec.decode(Schemas.jobLog, fields))).toStrictEqual(jobLog());
  });
});

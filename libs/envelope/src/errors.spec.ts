import {
  ConflictError,
  CoordbusError,
  EXIT_CODES,
  ErrorCode,
  InternalError,
  InvalidError,
  KillFailedError,
  NoMatchError,
  NotFoundError,
  SchemaMismatchError,
  TooLargeError,
  UnavailableError,
  toCoordbusError,
} from '@coordbus/envelope';

/** One instance of every error class, with its code, exit code and retryability. */
const ERRORS: [name: string, make: () => CoordbusError, code: ErrorCode, exit: number, retryable: boolean][] =
  [
    ['InternalError', () => new InternalError('boom'), ErrorCode.Internal, 1, false],
    [
      'ConflictError',
      () => new ConflictError('lock held by s2', { owner: 's2' }),
      ErrorCode.Conflict,
      3,
      false,
    ],
    ['NotFoundError', () => new NotFoundError('no job j-1'), ErrorCode.NotFound, 4, false],
    ['UnavailableError', () => new UnavailableError('redis down'), ErrorCode.Unavailable, 5, true],
    ['NoMatchError', () => new NoMatchError('no job matched'), ErrorCode.NoMatch, 6, false],
    ['InvalidError', () => new InvalidError('invalid x', ['a: bad']), ErrorCode.Invalid, 7, false],
    [
      'SchemaMismatchError',
      () => new SchemaMismatchError('coord-event', 2, 1),
      ErrorCode.SchemaMismatch,
      8,
      false,
    ],
    ['KillFailedError', () => new KillFailedError('EPERM'), ErrorCode.KillFailed, 9, false],
    ['TooLargeError', () => new TooLargeError(70000, 65536), ErrorCode.TooLarge, 10, false],
  ];

describe.each(ERRORS)('%s', (name, make, code, exit, retryable) => {
  const err = make();

  it('is a typed Error with its name, code, exit code and retryability', () => {
    expect(err).toBeInstanceOf(Error);
    expect(err).toBeInstanceOf(CoordbusError);
    expect(err.name).toBe(name);
    expect(err.code).toBe(code);
    expect(err.exitCode).toBe(exit);
    expect(EXIT_CODES[code]).toBe(exit);
    expect(err.retryable).toBe(retryable);
    expect(err.stack).toContain(name);
    expect(String(err)).toBe(`${name}: ${err.message}`);
  });

  it('serializes to {code, message, details}', () => {
    expect(err.toJSON()).toEqual({ code, message: err.message, details: err.details });
    expect(JSON.parse(JSON.stringify(err))).toEqual({ code, message: err.message, details: err.details });
  });

  it('passes through toCoordbusError unchanged', () => {
    expect(toCoordbusError(err)).toBe(err);
  });
});

describe('error taxonomy', () => {
  it('has one distinct exit code per code, plus 0 ok and 2 usage', () => {
    expect(EXIT_CODES).toEqual({
      ok: 0,
      Internal: 1,
      usage: 2,
      Conflict: 3,
      NotFound: 4,
      Unavailable: 5,
      NoMatch: 6,
      Invalid: 7,
      SchemaMismatch: 8,
      KillFailed: 9,
      TooLarge: 10,
    });
    expect(new Set(Object.values(EXIT_CODES)).size).toBe(Object.keys(EXIT_CODES).length);
  });

  it('has an error class for every code', () => {
    expect(new Set(ERRORS.map(([, , code]) => code))).toEqual(new Set(Object.values(ErrorCode)));
  });

  it('InvalidError lists its paths in the message and details', () => {
    const err = new InvalidError('invalid coord-op', ['fields.phase: bad', 'level: bad']);
    expect(err.paths).toEqual(['fields.phase: bad', 'level: bad']);
    expect(err.details).toEqual({ paths: err.paths });
    expect(err.message).toBe('invalid coord-op: fields.phase: bad; level: bad');
    expect(new InvalidError('plain').message).toBe('plain');
    expect(new InvalidError('plain').paths).toEqual([]);
  });

  it('TooLargeError names size, limit and the variable that raises it', () => {
    const err = new TooLargeError(70000, 65536);
    expect(err).toMatchObject({ size: 70000, limit: 65536, details: { size: 70000, limit: 65536 } });
    expect(err.message).toMatch(/70000 bytes.*65536-byte limit.*COORDBUS_MAX_ENTRY_BYTES/);
  });

  it('SchemaMismatchError names the schema and both versions', () => {
    const err = new SchemaMismatchError('coord-event', 2, 1);
    expect(err).toMatchObject({ schema: 'coord-event', found: 2, supported: 1 });
    expect(err.details).toEqual({ schema: 'coord-event', found: 2, supported: 1 });
    expect(err.message).toMatch(/coord-event.*version 2.*major version 1/);
  });

  it('other errors default to empty details', () => {
    expect(new NotFoundError('x').details).toEqual({});
  });
});

describe('toCoordbusError', () => {
  it.each([
    ['an Error', new TypeError('bad thing'), 'bad thing'],
    ['a string', 'plain failure', 'plain failure'],
    ['a number', 42, '42'],
    ['undefined', undefined, 'undefined'],
  ])('wraps %s into an InternalError keeping the message', (_what, thrown, message) => {
    const err = toCoordbusError(thrown);
    expect(err).toBeInstanceOf(InternalError);
    expect(err.code).toBe(ErrorCode.Internal);
    expect(err.exitCode).toBe(1);
    expect(err.message).toBe(message);
  });
});

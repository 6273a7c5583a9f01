import { EnvelopeCodec, Schemas } from '@coordbus/envelope';
import { buildEnvelope, envelopeFields, opContext } from './fanout';

describe('coord op envelopes (seed 000)', () => {
  it('takes op from the first positional, resource for lock/unlock/steal, peer for send/dispatch', () => {
    expect(opContext(['lock', '--ttl', '5', 'db'], 's')).toEqual({
      op: 'lock',
      session: 's',
      resource: '5',
      peer: '',
    });
    expect(opContext(['steal', 'db', '--force'], 's')).toEqual({
      op: 'steal',
      session: 's',
      resource: 'db',
      peer: '',
    });
    expect(opContext(['send', 'bob', 'hi'], 's')).toEqual({
      op: 'send',
      session: 's',
      resource: '',
      peer: 'bob',
    });
    expect(opContext(['heartbeat'], 's')).toEqual({ op: 'heartbeat', session: 's', resource: '', peer: '' });
    expect(opContext(['--json'], 's')).toBeUndefined();
  });

  it('builds pre/post envelopes that the codec accepts, raising a failed post to error', () => {
    const ctx = { op: 'unlock', session: 'abc', resource: 'r' };
    const pre = buildEnvelope(ctx, 'pre', {}, new Date('2026-04-07T12:34:56.789Z'));
    expect(pre).toEqual({
      v: 0,
      ts: '2026-04-07T12:34:56.789Z',
      service: 'coord',
      host: expect.any(String),
      level: 'info',
      pid: process.pid,
      target: 'coord::unlock',
      msg: 'coord.unlock start',
      fields: {
        op: 'unlock',
        session: 'abc',
        resource: 'r',
        peer: '',
        duration_ms: 0,
        phase: 'pre',
        exit_code: 0,
      },
    });
    const post = buildEnvelope(ctx, 'post', { durationMs: 12.34567, exitCode: 4 });
    expect(post).toMatchObject({
      level: 'error',
      msg: 'coord.unlock end',
      fields: { duration_ms: 12.346, phase: 'post', exit_code: 4 },
    });
    const codec = new EnvelopeCodec();
    expect(codec.decode(Schemas.coordOp, envelopeFields(post))).toEqual(post);
    expect(buildEnvelope(ctx, 'post', { durationMs: 1, exitCode: 0 }).level).toBe('info');
  });

  it('logs a conflict (exit 3, another session holds it) at warn, never error; real failures stay error', () => {
    const ctx = { op: 'lock', session: 'bob', resource: 'db' };
    const level = (exitCode: number) => buildEnvelope(ctx, 'post', { durationMs: 1, exitCode }).level;
    expect(level(0)).toBe('info');
    expect(level(3)).toBe('warn');
    // Internal (crash), usage, not found, Redis unavailable, invalid, kill failed: failures.
    for (const code of [1, 2, 4, 5, 7, 9]) expect([code, level(code)]).toEqual([code, 'error']);
    // A pre envelope knows no outcome yet.
    expect(buildEnvelope(ctx, 'pre').level).toBe('info');
  });
});

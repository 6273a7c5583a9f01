import { buildEnvelope } from '@coordbus/coord';
import { formatEnvelopeLine } from './format';

describe('formatEnvelopeLine', () => {
  it('prints one line with time, level, msg and the fields that are set', () => {
    const now = new Date('2026-04-07T12:34:56.789Z');
    const post = {
      ...buildEnvelope(
        { op: 'lock', session: 's1', resource: 'db' },
        'post',
        { durationMs: 12.3, exitCode: 3 },
        now,
      ),
      host: 'vm',
      pid: 42,
    };
    // exit 3, a conflict: WARN (an expected refusal, not an error).
    expect(formatEnvelopeLine(post)).toBe(
      '2026-04-07T12:34:56.789Z WARN  coord.lock end     session=s1 op=lock resource=db exit=3 12.3ms host=vm pid=42',
    );
    const failed = { ...post, ...buildEnvelope({ op: 'lock', session: 's1' }, 'post', { exitCode: 5 }, now) };
    expect(formatEnvelopeLine({ ...failed, host: 'vm', pid: 42 })).toBe(
      '2026-04-07T12:34:56.789Z ERROR coord.lock end     session=s1 op=lock exit=5 0.0ms host=vm pid=42',
    );
    const pre = {
      ...buildEnvelope({ op: 'send', session: 's1', peer: 'bob' }, 'pre', {}, now),
      host: 'vm',
      pid: 42,
    };
    expect(formatEnvelopeLine(pre)).toBe(
      '2026-04-07T12:34:56.789Z INFO  coord.send start   session=s1 op=send peer=bob host=vm pid=42',
    );
  });
});

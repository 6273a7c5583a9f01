import { CoordEvent, InvalidError, newUlid } from '@coordbus/envelope';
import { InMemorySource } from './in-memory-source';

const ev = (i: number): CoordEvent =>
  ({
    tx_id: newUlid(),
    tx_kind: 'session.dereg',
    ts: new Date().toISOString(),
    ingress_ts: null,
    source: 'in-memory',
    session_id: `s${i}`,
    resource: null,
    payload: { reason: 'explicit' },
  }) as CoordEvent;

describe('InMemorySource', () => {
  it('returns the oldest uncommitted events, at most maxBatch, until they are committed', async () => {
    const source = new InMemorySource('mem', { maxBatch: 2 });
    source.push(ev(1), ev(2), ev(3));
    const first = await source.poll();
    expect(first.map((e) => e.session_id)).toEqual(['s1', 's2']);
    expect(await source.poll()).toEqual(first); // not committed: returned again
    expect(await source.backlog()).toBe(1);
    await source.commit(first);
    expect((await source.poll()).map((e) => e.session_id)).toEqual(['s3']);
    expect(source.committed).toBe(2);
  });

  it('commits out of order and ignores unknown or repeated commits', async () => {
    const source = new InMemorySource();
    const [a, b] = [ev(1), ev(2)];
    source.push(a, b);
    await source.commit([b, b, ev(9)]);
    expect(await source.poll()).toEqual([a]);
  });

  it('refuses events a real source would never produce', () => {
    const source = new InMemorySource();
    expect(() => source.push({ ...ev(1), payload: {} } as CoordEvent)).toThrow(InvalidError);
    expect(() => source.push({ ...ev(1), tx_id: 'x' })).toThrow(/tx_id/);
  });

  it('rejects a poll whose signal is already aborted', async () => {
    const source = new InMemorySource();
    const ac = new AbortController();
    ac.abort();
    await expect(source.poll(ac.signal)).rejects.toMatchObject({ name: 'AbortError' });
    expect(() => new InMemorySource('x', { maxBatch: 0 })).toThrow(RangeError);
  });
});

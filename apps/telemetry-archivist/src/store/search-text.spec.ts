import { ftsQuery, parseSearch, searchText, tsQuery, tsVector, words } from './search-text';

describe('search words', () => {
  it('cuts on anything but letters, marks and digits, lowercased and NFKC-normalised', () => {
    expect(words('TOD-42 src/auth.ts')).toEqual(['tod', '42', 'src', 'auth', 'ts']);
    expect(words('Café ＡＢＣ naïve')).toEqual(['café', 'abc', 'naïve']);
    expect(words('cafe\u0301')).toEqual(['café']);
    expect(words(`a ${'x'.repeat(65)} b`)).toEqual(['a', 'b']);
  });

  it('indexes the fields a person searches by, per schema', () => {
    const dispatch = {
      tx_kind: 'dispatch.issue',
      session_id: 'bob',
      resource: null,
      payload: { order_id: 'o1', assignee: 'alice', ticket: 'TOD-42' },
    };
    expect(searchText('coord-event', dispatch)).toBe('dispatch issue tod 42 o1 alice');
    const op = {
      msg: 'coord.lock start',
      fields: { op: 'lock', session: 's', resource: 'src/a.ts', peer: '' },
    };
    expect(searchText('coord-op', op)).toBe('lock src a ts');
    expect(searchText('coord-op', { ...op, msg: 'deploy blocked by review' })).toBe(
      'lock src a ts deploy blocked by review',
    );
    expect(
      searchText('telemetry', { source: 'h', event: 'e', status: 'stall', detail: { line: 'took 9ms' } }),
    ).toBe('h e stall took 9ms');
    expect(searchText('job-event', { job_id: 'j1', name: 'lint', hook: 'Stop', tags: ['ci'] })).toBe(
      'j1 lint stop ci',
    );
    expect(searchText('unknown', { msg: 'x' })).toBeNull();
    expect(searchText('coord-op', 'not an object')).toBeNull();
  });

  it('keeps at most 200 words per row', () => {
    const tags = Array.from({ length: 300 }, (_, i) => `w${i}`);
    const text = searchText('job-event', { job_id: 'j', tags })!.split(' ');
    expect(text.length).toBe(200);
    expect(text[199]).toBe('w198');
  });

  it('turns a query into phrases, the last word a prefix, in both dialects', () => {
    const q = parseSearch('  TOD-42  review ')!;
    expect(q).toEqual([['tod', '42'], ['review']]);
    expect(ftsQuery(q)).toBe('"tod 42" AND "review"*');
    expect(tsQuery(q)).toBe("('tod' <-> '42') & ('review':*)");
    expect(parseSearch('-- / ..')).toBeNull();
    expect(tsVector('a b a')).toBe("'a':1 'b':2 'a':3");
    expect(tsVector(null)).toBeNull();
  });
});

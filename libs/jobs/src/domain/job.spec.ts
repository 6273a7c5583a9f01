import { hasFilter, JobMeta, matchesFilter } from './job';

const base = {
  id: '01J0000000000000000000000A',
  invocation_id: '01HINV00000000000000000000',
  name: 'build',
  hook: 'SessionStart',
  worktree: '/w/a',
  tags: ['ci', 'fast'],
  status: 'running',
  created_at: '2026-01-01T00:00:00.000Z',
} as JobMeta;
const now = Date.parse('2026-01-01T01:00:00.000Z');

describe('job filters', () => {
  it('counts --inv alone as a filter (seed review finding)', () => {
    expect(hasFilter({ inv: '01H' })).toBe(true);
    expect(hasFilter({})).toBe(false);
  });

  it('matches each predicate', () => {
    expect(matchesFilter(base, { hook: 'SessionStart' }, now)).toBe(true);
    expect(matchesFilter(base, { hook: 'Stop' }, now)).toBe(false);
    expect(matchesFilter(base, { worktree: '/w/a' }, now)).toBe(true);
    expect(matchesFilter(base, { worktree: '/w/b' }, now)).toBe(false);
    expect(matchesFilter(base, { tag: 'fast' }, now)).toBe(true);
    expect(matchesFilter(base, { tag: 'slow' }, now)).toBe(false);
    expect(matchesFilter(base, { inv: '01hinv' }, now)).toBe(true);
    expect(matchesFilter(base, { inv: '01HX' }, now)).toBe(false);
    expect(matchesFilter(base, { olderThanMs: 30 * 60_000 }, now)).toBe(true);
    expect(matchesFilter(base, { olderThanMs: 2 * 3_600_000 }, now)).toBe(false);
  });

  it('AND-combines predicates', () => {
    expect(matchesFilter(base, { hook: 'SessionStart', tag: 'ci', worktree: '/w/a' }, now)).toBe(true);
    expect(matchesFilter(base, { hook: 'SessionStart', tag: 'nope' }, now)).toBe(false);
  });
});

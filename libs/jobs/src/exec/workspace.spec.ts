import { parseWorkspaceRoots, servesPath } from './workspace';

describe('workspace roots', () => {
  it('parses JOBS_WORKSPACE_ROOTS: absolute paths separated by ":", normalised; unset serves everything', () => {
    expect(parseWorkspaceRoots(undefined)).toEqual(['/']);
    expect(parseWorkspaceRoots('')).toEqual(['/']);
    expect(parseWorkspaceRoots('/home/ann/:/srv//wt/./x:/home/ann')).toEqual(['/home/ann', '/srv/wt/x']);
    expect(() => parseWorkspaceRoots('/ok:relative/wt')).toThrow(/absolute paths \(got relative\/wt\)/);
  });

  it('serves a cwd at or under a root, not a sibling that shares its prefix', () => {
    const roots = ['/home/ann', '/srv/wt'];
    expect(servesPath(roots, '/home/ann')).toBe(true);
    expect(servesPath(roots, '/home/ann/proj/wt-1')).toBe(true);
    expect(servesPath(roots, '/srv/wt/a/../b')).toBe(true);
    expect(servesPath(roots, '/home/anna/proj')).toBe(false);
    expect(servesPath(roots, '/home/ann/../bob')).toBe(false);
    expect(servesPath(roots, '/srv')).toBe(false);
    expect(servesPath(['/'], '/anything/at/all')).toBe(true);
  });
});

import { ConditionContext, globToRegExp, parseHooksFile, skipReason } from './hooks-file';
import { InvalidError } from '@coordbus/envelope';

const ctx = (over: Partial<ConditionContext> = {}): ConditionContext => ({
  env: { CI: '1', MODE: 'fast' },
  fileExists: (p) => p === 'package.json',
  branch: 'feature/x',
  platform: 'linux',
  ...over,
});

describe('hooks file', () => {
  it('parses jobs with every field, in both list shapes', () => {
    const f = parseHooksFile(`
hooks:
  SessionStart:
    jobs:
      - name: deps
        run: [npm, ci]
        background: true
        tags: [setup]
        env: { NODE_ENV: test, N: 3 }
        cwd: web
        timeout: 10m
        log: { sampling_every_nth: 10 }
        skip: { env: CI }
        only: [{ branch: 'feature/*' }, { file_exists: package.json }]
  Stop:
    - name: lint
      run: npm run lint && npm test
      shell: true
`);
    expect(f.hooks.SessionStart[0]).toMatchObject({
      name: 'deps',
      argv: ['npm', 'ci'],
      shell: false,
      background: true,
      tags: ['setup'],
      env: { NODE_ENV: 'test', N: '3' },
      cwd: 'web',
      timeout_ms: 600_000,
      sample_every: 10,
    });
    expect(f.hooks.Stop[0]).toMatchObject({
      name: 'lint',
      argv: ['npm run lint && npm test'],
      shell: true,
      background: false,
    });
    expect(parseHooksFile('').hooks).toEqual({});
  });

  it('takes hook names at the top level too (what agent-hook scripts grep for), mixed with a hooks: mapping', () => {
    const f = parseHooksFile(`
SessionStart:
  - name: a
    run: [echo, a]
Stop:
  jobs:
    - name: b
      run: [echo, b]
hooks:
  PreCompact:
    - name: c
      run: [echo, c]
`);
    expect(Object.keys(f.hooks).sort()).toEqual(['PreCompact', 'SessionStart', 'Stop']);
    expect(f.hooks.Stop[0].argv).toEqual(['echo', 'b']);
    expect(() => parseHooksFile('Stop: 3\nhooks:\n  Stop: []\n')).toThrow(
      /Stop: must be a list of jobs[\s\S]*hooks.Stop: hook Stop is defined twice/,
    );
  });

  it('reports every problem at once, by path', () => {
    let err: InvalidError | undefined;
    try {
      parseHooksFile(`
hooks:
  Stop:
    - name: a
      run: echo hi
    - name: a
      run: []
      timeout: soon
      log: { sampling_every_nth: 0 }
      skip: { weather: sunny }
      color: red
`);
    } catch (e) {
      err = e as InvalidError;
    }
    expect(err).toBeInstanceOf(InvalidError);
    const msg = err!.message;
    expect(msg).toContain('hooks.Stop.jobs[0].run: a string runs through a shell, which needs `shell: true`');
    expect(msg).toContain('hooks.Stop.jobs[1].run: must be a non-empty argv list');
    expect(msg).toContain('hooks.Stop.jobs[1].timeout');
    expect(msg).toContain('hooks.Stop.jobs[1].log.sampling_every_nth');
    expect(msg).toContain('hooks.Stop.jobs[1].skip.weather: unknown condition');
    expect(msg).toContain('hooks.Stop.jobs[1].color: unknown key');
  });

  it('refuses invalid YAML with an Invalid error', () => {
    expect(() => parseHooksFile('hooks: [unclosed')).toThrow(InvalidError);
  });
});

describe('conditions', () => {
  const job = (yaml: string) =>
    parseHooksFile(`hooks:\n  H:\n    - name: j\n      run: [true]\n${yaml}`).hooks.H[0];

  it('skip: any holding condition skips, with the reason', () => {
    expect(skipReason(job('      skip: { env: CI }'), ctx())).toBe('skip: env CI is set');
    expect(skipReason(job('      skip: { env: NOPE }'), ctx())).toBeNull();
    expect(skipReason(job('      skip: [{ env: NOPE }, { env_equals: { MODE: fast } }]'), ctx())).toBe(
      'skip: env MODE is "fast"',
    );
  });

  it('only: every condition must hold', () => {
    expect(skipReason(job("      only: { branch: 'feature/*' }"), ctx())).toBeNull();
    expect(skipReason(job('      only: { branch: main }'), ctx())).toBe(
      'only: branch feature/x does not match main',
    );
    expect(
      skipReason(job('      only: [{ file_exists: package.json }, { file_exists: Cargo.toml }]'), ctx()),
    ).toBe('only: file Cargo.toml does not exist');
    expect(skipReason(job('      only: { platform: darwin }'), ctx())).toBe('only: platform is linux');
    expect(skipReason(job("      only: { branch: 'feature/*' }"), ctx({ branch: null }))).toBe(
      'only: not on a branch',
    );
  });

  it('combines with not / all / any and constants', () => {
    expect(skipReason(job('      skip: { not: { env: CI } }'), ctx())).toBeNull();
    expect(skipReason(job('      only: { any: [{ env: NOPE }, { env: CI }] }'), ctx())).toBeNull();
    expect(skipReason(job('      only: { all: [{ env: CI }, { env: NOPE }] }'), ctx())).toBe(
      'only: env NOPE is not set',
    );
    expect(skipReason(job('      skip: true'), ctx())).toBe('skip: true');
  });

  it('branch globs: * stays within a segment, ** crosses', () => {
    expect(globToRegExp('feature/*').test('feature/a')).toBe(true);
    expect(globToRegExp('feature/*').test('feature/a/b')).toBe(false);
    expect(globToRegExp('feature/**').test('feature/a/b')).toBe(true);
    expect(globToRegExp('v?.x').test('v1.x')).toBe(true);
  });
});

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULTS, resolveTailerConfig, TailerConfigError } from './tailer-config';

const dir = mkdtempSync(join(tmpdir(), 'tailer-config-'));
const log = join(dir, 'proxy.log');
const notADir = join(dir, 'a-file');
writeFileSync(notADir, '');

function problems(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    resolveTailerConfig(argv, env, dir);
  } catch (err) {
    expect(err).toBeInstanceOf(TailerConfigError);
    return (err as TailerConfigError).message;
  }
  throw new Error('expected a TailerConfigError');
}

describe('resolveTailerConfig', () => {
  it('builds a target from flags with defaults (end of file, 500 ms, 1 MiB)', () => {
    const cfg = resolveTailerConfig(['--path', log], {}, dir);
    expect(cfg.targets).toEqual([
      {
        path: log,
        source: 'headroom-stage-timings',
        observer: 'headroom-stage-timings',
        event: 'headroom.overhead',
        thresholdMs: 500,
        quietMs: DEFAULTS.quietMs,
        fromStart: false,
        lineLimitBytes: 1024 * 1024,
        followSymlinks: false,
      },
    ]);
    expect(cfg.reconcileMs).toBe(30_000);
  });

  it('accepts a directory that does not exist yet and a non-regular path (both are waited out at run time)', () => {
    const later = join(dir, 'not-yet', 'x.log');
    expect(resolveTailerConfig(['--path', later], {}, dir).targets[0].path).toBe(later);
    expect(resolveTailerConfig(['--path', dir], {}, dir).targets[0].path).toBe(dir);
    expect(problems(['--path', join(notADir, 'x.log')])).toContain(`${notADir} is not a directory`);
  });

  it('follows symlinks only when asked: --follow-symlinks, TAILER_FOLLOW_SYMLINKS or follow_symlinks', () => {
    expect(resolveTailerConfig(['--path', log, '--follow-symlinks'], {}, dir).targets[0].followSymlinks).toBe(
      true,
    );
    expect(
      resolveTailerConfig([], { TAILER_PATH: log, TAILER_FOLLOW_SYMLINKS: '1' }, dir).targets[0]
        .followSymlinks,
    ).toBe(true);
    const file = join(dir, 'links.yaml');
    writeFileSync(file, `targets:\n  - path: ${log}\n    follow_symlinks: true\n  - path: other.log\n`);
    expect(resolveTailerConfig(['--config', file], {}, dir).targets.map((t) => t.followSymlinks)).toEqual([
      true,
      false,
    ]);
    expect(problems([], { TAILER_PATH: log, TAILER_FOLLOW_SYMLINKS: 'maybe' })).toContain(
      'TAILER_FOLLOW_SYMLINKS must be a boolean',
    );
  });

  it('takes every flag', () => {
    const cfg = resolveTailerConfig(
      [
        '--path',
        'proxy.log',
        '--source',
        'headroom',
        '--event',
        'headroom.overhead',
        '--threshold-ms',
        '250',
        '--quiet-ms',
        '50',
        '--from-start',
        '--line-limit-bytes',
        '4096',
      ],
      {},
      dir,
    );
    expect(cfg.targets[0]).toMatchObject({
      path: log,
      source: 'headroom',
      event: 'headroom.overhead',
      thresholdMs: 250,
      quietMs: 50,
      fromStart: true,
      lineLimitBytes: 4096,
    });
  });

  it('reads YAML from TAILER_CONFIG and JSON from --config, relative paths against the file', () => {
    const yamlFile = join(dir, 'tailer.yaml');
    writeFileSync(
      yamlFile,
      'reconcile_ms: 5000\ntargets:\n  - path: proxy.log\n    source: a\n    quiet_ms: 100\n  - path: other.log\n    source: b\n',
    );
    const cfg = resolveTailerConfig([], { TAILER_CONFIG: yamlFile }, '/');
    expect(cfg.targets.map((t) => [t.path, t.source, t.quietMs])).toEqual([
      [log, 'a', 100],
      [join(dir, 'other.log'), 'b', 2000],
    ]);
    expect(cfg.reconcileMs).toBe(5000);
    const jsonFile = join(dir, 'tailer.json');
    writeFileSync(jsonFile, JSON.stringify([{ path: log, from_start: true }]));
    expect(resolveTailerConfig(['--config', jsonFile], {}, dir).targets[0].fromStart).toBe(true);
  });

  it('takes TAILER_* variables as flag defaults; a flag wins over its variable', () => {
    const env = {
      TAILER_PATH: log,
      TAILER_SOURCE: 'from-env',
      TAILER_QUIET_MS: '75',
      TAILER_FROM_START: 'yes',
      TAILER_RECONCILE_MS: '2000',
    };
    const cfg = resolveTailerConfig(['--source', 'from-flag'], env, dir);
    expect(cfg.targets[0]).toMatchObject({ path: log, source: 'from-flag', quietMs: 75, fromStart: true });
    expect(cfg.reconcileMs).toBe(2000);
    // A bad variable is named as the variable, with what its definition (libs/config) accepts.
    expect(problems([], { TAILER_PATH: log, TAILER_FROM_START: 'maybe' })).toContain(
      'TAILER_FROM_START must be a boolean (1/0, true/false, yes/no, on/off) (got "maybe")',
    );
    expect(problems([], { TAILER_PATH: log, TAILER_THRESHOLD_MS: '0' })).toContain(
      'TAILER_THRESHOLD_MS must be a number from 0.001 to 86400000 (got "0")',
    );
  });

  it('refuses quiet_ms below 50 with the reason', () => {
    expect(problems(['--path', log, '--quiet-ms', '0'])).toContain(
      '--path.quiet_ms: must be an integer from 50',
    );
    expect(problems(['--path', log, '--quiet-ms', '0'])).toContain('would spin');
  });

  it('names the known observers for an unknown one', () => {
    expect(problems(['--path', log, '--observer', 'nginx'])).toContain(
      'unknown observer "nginx"; known observers: headroom-stage-timings',
    );
  });

  it('lists every problem at once', () => {
    const msg = problems([
      '--path',
      join(notADir, 'x.log'),
      '--threshold-ms',
      'soon',
      '--source',
      'bad name',
      '--line-limit-bytes',
      '1',
    ]);
    expect(msg).toContain('directory');
    expect(msg).toContain('threshold_ms');
    expect(msg).toContain('source');
    expect(msg).toContain('line_limit_bytes');
  });

  it('refuses no targets, unknown flags, unknown settings, bad files and duplicates', () => {
    expect(problems([])).toContain('nothing to follow');
    expect(problems(['--bogus'])).toContain("unknown option '--bogus'");
    expect(problems(['--quiet-ms', '100'])).toContain('give --path');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'targets:\n  - path: proxy.log\n    treshold_ms: 5\n');
    expect(problems(['--config', bad])).toContain('targets[0].treshold_ms: unknown setting');
    writeFileSync(bad, 'targets: [');
    expect(problems(['--config', bad])).toContain('not valid YAML or JSON');
    expect(problems(['--config', join(dir, 'missing.yaml')])).toContain('cannot read');
    expect(problems(['--path', log, '--path', 'proxy.log'])).toContain('listed twice');
  });
});

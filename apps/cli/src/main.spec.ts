import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram } from './main';

function parse(argv: string[]): { out: string; code: number | undefined } {
  let out = '';
  const program = buildProgram().configureOutput({
    writeOut: (s) => (out += s),
    writeErr: (s) => (out += s),
  });
  try {
    program.parse(['node', 'coordbus', ...argv]);
  } catch (err) {
    return { out, code: (err as { exitCode?: number }).exitCode };
  }
  return { out, code: undefined };
}

describe('coordbus --version and --help', () => {
  it('--version prints the package version and exits 0', () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8'));
    expect(parse(['--version'])).toEqual({ out: `${pkg.version}\n`, code: 0 });
  });

  it('--help lists the exit codes 0-10', () => {
    const { out, code } = parse(['--help']);
    expect(code).toBe(0);
    expect(out).toContain('exit codes: 0 ok, 1 internal, 2 usage, 3 conflict');
    expect(out).toContain('9 kill failed, 10 too large');
  });
});

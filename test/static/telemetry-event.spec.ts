import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULTS } from '../../apps/log-tailer/src/config/tailer-config';

const root = join(__dirname, '..', '..');
const read = (p: string) => readFileSync(join(root, p), 'utf8');

/**
 * The telemetry event name must not depend on how the system is started: `npm start` uses the
 * tailer's default, compose/k8s/README name it explicitly, and all must be the same name.
 */
describe('one telemetry event name everywhere', () => {
  it('is the tailer default and what compose, k8s and the README pass', () => {
    expect(DEFAULTS.event).toBe('headroom.overhead');
    for (const file of [
      'docker-compose.yml',
      'docker-compose.cluster.yml',
      'k8s/base/log-tailer.yaml',
      'README.md',
    ]) {
      const named = [...read(file).matchAll(/\b([a-z]+\.overhead)\b/g)].map((m) => m[1]);
      expect({ file, named: [...new Set(named)] }).toEqual({ file, named: [DEFAULTS.event] });
    }
    // npm start passes no --event: it gets the default.
    expect(read('scripts/start.mjs')).not.toMatch(/--event|event:/);
  });
});

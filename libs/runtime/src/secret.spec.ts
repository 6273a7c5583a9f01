import { inspect } from 'node:util';
import type { SecretVar } from '@coordbus/config';
import { EnvReader } from './config';
import { Secret, isLoopbackHost } from './secret';

describe('Secret', () => {
  it('matches only the exact value and never prints it', () => {
    const s = new Secret('s3cret-value-0123456789');
    expect(s.matches('s3cret-value-0123456789')).toBe(true);
    for (const bad of ['s3cret-value-012345678', 's3cret-value-01234567890', '', undefined, null]) {
      expect(s.matches(bad)).toBe(false);
    }
    const shown = [JSON.stringify({ s }), inspect({ s }), `${s}`, String(s)].join(' ');
    expect(shown).not.toContain('s3cret');
    expect(shown).toContain('[redacted]');
  });
});

describe('EnvReader.secret', () => {
  it('reads NAME or NAME_FILE, refusing both, short values and unreadable files without showing the value', () => {
    const T: SecretVar = { kind: 'secret', name: 'T', minLength: 16, doc: 'a test token' };
    expect(new EnvReader({}).secret(T)).toBeUndefined();
    expect(new EnvReader({ T: 'abcdefghijklmnop' }).secret(T)?.matches('abcdefghijklmnop')).toBe(true);
    const short = new EnvReader({ T: 'tiny' });
    short.secret(T);
    expect(() => short.finish()).toThrow(/T must hold at least 16 characters/);
    expect(() => short.finish()).not.toThrow(/tiny/);
    const both = new EnvReader({ T: 'abcdefghijklmnop', T_FILE: '/x' });
    both.secret(T);
    expect(() => both.finish()).toThrow(/T and T_FILE are both set/);
    const missing = new EnvReader({ T_FILE: '/nonexistent/token' });
    missing.secret(T);
    expect(() => missing.finish()).toThrow(/T_FILE names a file that cannot be read \(ENOENT/);
  });
});

describe('isLoopbackHost', () => {
  it('knows loopback from everything else', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]'])
      expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '']) expect(isLoopbackHost(h)).toBe(false);
  });
});

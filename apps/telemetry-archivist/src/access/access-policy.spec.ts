import { Secret } from '@coordbus/runtime';
import { AccessPolicy, credentialsOf } from './access-policy';

const READ = 'read-token-0123456789';
const OP = 'operator-token-0123456789';

function sut(options: { api?: string; op?: string; loopback: boolean }) {
  return new AccessPolicy({
    apiToken: options.api === undefined ? undefined : new Secret(options.api),
    operatorToken: options.op === undefined ? undefined : new Secret(options.op),
    loopback: options.loopback,
  });
}

describe('AccessPolicy', () => {
  it('leaves reads open on loopback without a token, and keeps actions off without an operator token', () => {
    const p = sut({ loopback: true });
    expect(p.read({})).toEqual({ ok: true, level: 'read' });
    expect(p.act({ bearer: OP })).toMatchObject({
      ok: false,
      status: 403,
      reason: /COORDBUS_OPERATOR_TOKEN/,
    });
  });

  it('refuses every read on a non-loopback listener with no token configured, naming the variable', () => {
    const p = sut({ loopback: false });
    expect(p.read({})).toMatchObject({ ok: false, status: 401, reason: /COORDBUS_API_TOKEN/ });
    expect(p.read({ bearer: 'anything-at-all-123' })).toMatchObject({ ok: false, status: 401 });
  });

  it('requires the read token once one is set, even on loopback', () => {
    const p = sut({ api: READ, loopback: true });
    expect(p.read({})).toMatchObject({ ok: false, status: 401 });
    expect(p.read({ bearer: `${READ}x` })).toMatchObject({ ok: false, status: 401 });
    expect(p.read({ bearer: READ })).toEqual({ ok: true, level: 'read' });
    expect(p.read({ readCookie: READ })).toEqual({ ok: true, level: 'read' });
  });

  it('lets the operator token read and act; the read token cannot act', () => {
    const p = sut({ api: READ, op: OP, loopback: false });
    expect(p.read({ bearer: OP })).toEqual({ ok: true, level: 'operator' });
    expect(p.act({ operatorCookie: OP })).toEqual({ ok: true, level: 'operator' });
    expect(p.act({ bearer: READ })).toMatchObject({ ok: false, status: 403 });
    expect(p.act({ readCookie: OP })).toMatchObject({ ok: false, status: 403 });
    expect(p.login(OP)).toBe('operator');
    expect(p.login(READ)).toBe('read');
    expect(p.login('nope-nope-nope-nope')).toBeNull();
  });
});

describe('credentialsOf', () => {
  it('reads a bearer header and the console cookies, ignoring everything else', () => {
    expect(
      credentialsOf({
        authorization: 'Bearer abc',
        cookie: 'x=1; coordbus_read=r%2B1; coordbus_operator=o; bad=%E0%A4%A',
      }),
    ).toEqual({ bearer: 'abc', readCookie: 'r+1', operatorCookie: 'o' });
    expect(credentialsOf({ authorization: 'Basic abc' })).toEqual({});
  });
});

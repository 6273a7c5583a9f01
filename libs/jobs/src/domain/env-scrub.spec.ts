import { isSecretName, secretRedactor, splitSecrets } from './env-scrub';

describe('env scrub', () => {
  it.each(['GH_TOKEN', 'aws_secret', 'Api_Key', 'DB_PASSWORD', 'x_token'])('%s is a secret', (name) => {
    expect(isSecretName(name)).toBe(true);
  });
  it.each(['TOKEN', 'KEYS', 'MY_KEYRING', 'PASSWORD_HINT', 'PATH', 'TOKEN_URL'])('%s is not', (name) => {
    expect(isSecretName(name)).toBe(false);
  });

  it('splits an environment into storable and secret parts', () => {
    expect(splitSecrets({ A: '1', GH_TOKEN: 't', b_key: 'k' })).toEqual({
      plain: { A: '1' },
      secrets: { GH_TOKEN: 't', b_key: 'k' },
    });
  });

  it('redacts secret values that a job prints', () => {
    const redact = secretRedactor({ GH_TOKEN: 'ghp_abcdef', SHORT_KEY: 'ab' });
    expect(redact('token=ghp_abcdef and again ghp_abcdef; ab stays')).toBe(
      'token=[scrubbed] and again [scrubbed]; ab stays',
    );
    expect(secretRedactor({})('unchanged')).toBe('unchanged');
  });
});

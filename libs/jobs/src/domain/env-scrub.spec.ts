import { hookEventEnv, isSecretName, jobBaseEnv, scrubArgv, secretRedactor, splitSecrets } from './env-scrub';

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

describe('scrubArgv', () => {
  const S = 'sEcReT-123456';
  it.each([
    [
      ['cli', '--token', S],
      ['cli', '--token', '[scrubbed]'],
    ],
    [
      ['cli', '--db-password', S, 'next'],
      ['cli', '--db-password', '[scrubbed]', 'next'],
    ],
    [
      ['cli', `--api-key=${S}`],
      ['cli', '--api-key=[scrubbed]'],
    ],
    [
      ['env', `GH_TOKEN=${S}`, 'cmd'],
      ['env', 'GH_TOKEN=[scrubbed]', 'cmd'],
    ],
    [
      ['redis-cli', '-u', `rediss://admin:${S}@h:6380/0`],
      ['redis-cli', '-u', 'rediss://admin:[scrubbed]@h:6380/0'],
    ],
    [
      ['curl', '-H', `Authorization: Bearer ${S}`],
      ['curl', '-H', 'Authorization: Bearer [scrubbed]'],
    ],
    [
      ['gh', 'ghp_abcdefghijklmnopqrstuvwxyz0123456789'],
      ['gh', '[scrubbed]'],
    ],
    [
      ['aws', 'AKIAABCDEFGHIJKLMNOP'],
      ['aws', '[scrubbed]'],
    ],
    [[`deploy --token ${S} && echo ${S}`], ['deploy --token [scrubbed] && echo [scrubbed]']],
  ])('%j -> %j', (argv, want) => {
    expect(scrubArgv(argv).argv).toEqual(want);
  });

  it.each([
    [['npm', 'run', 'lint']],
    [['git', 'commit', '--author', 'A <a@b>', '-m', 'msg']],
    [['train', '--tokenizer', 'bert', '--password-file', '/run/secrets/pw']],
    [['curl', 'https://example.com/path?x=1']],
    [['psql', 'postgresql://user@db/app']],
  ])('leaves %j alone', (argv) => {
    expect(scrubArgv(argv)).toEqual({ argv, found: [] });
  });

  it("hides the job's secret values wherever they appear, and reports what it found", () => {
    expect(scrubArgv(['echo', `x${S}y`, '--token', 'tok-9999'], [S])).toEqual({
      argv: ['echo', 'x[scrubbed]y', '--token', '[scrubbed]'],
      found: ['tok-9999'],
    });
  });
});

describe('job environment', () => {
  it('starts from PATH and HOME only', () => {
    expect(
      jobBaseEnv({ PATH: '/bin', HOME: '/h', REDIS_URL: 'redis://:pw@h', X_TOKEN: 't', LANG: 'C' }),
    ).toEqual({
      PATH: '/bin',
      HOME: '/h',
    });
    expect(jobBaseEnv({}).PATH).toContain('/usr/bin');
  });
  it('passes on the hook event variables, not secret-named ones', () => {
    expect(
      hookEventEnv({
        CLAUDE_SESSION_ID: 's',
        CLAUDE_PROJECT_DIR: '/p',
        COORD_SESSION_ID: 'c',
        CLAUDE_API_KEY: 'k',
        REDIS_URL: 'r',
      }),
    ).toEqual({ CLAUDE_SESSION_ID: 's', CLAUDE_PROJECT_DIR: '/p', COORD_SESSION_ID: 'c' });
  });
});

/** Names whose values are secrets: they end in _TOKEN, _SECRET, _KEY or _PASSWORD, in any case. */
const SECRET_NAME = /_(TOKEN|SECRET|KEY|PASSWORD)$/i;

/** Placeholder written where a secret value would otherwise appear in a log line. */
export const SCRUBBED = '[scrubbed]';

/** True when an environment variable of this name must never be persisted, logged or evented. */
export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** Splits an environment into what may be stored (`plain`) and what may only reach the process (`secrets`). */
export function splitSecrets(env: Record<string, string>): {
  plain: Record<string, string>;
  secrets: Record<string, string>;
} {
  const plain: Record<string, string> = {};
  const secrets: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) (isSecretName(k) ? secrets : plain)[k] = v;
  return { plain, secrets };
}

/**
 * Returns a function that replaces every secret value in a line with `[scrubbed]`: a job that
 * echoes its token must not leak it into its log stream. Values under 4 characters are left
 * alone, since replacing them would mangle ordinary output more than it protects.
 */
export function secretRedactor(secrets: Record<string, string>): (line: string) => string {
  const values = [...new Set(Object.values(secrets))]
    .filter((v) => v.length >= 4)
    .sort((a, b) => b.length - a.length);
  if (!values.length) return (line) => line;
  return (line) => {
    let out = line;
    for (const v of values) if (out.includes(v)) out = out.split(v).join(SCRUBBED);
    return out;
  };
}

// ---- the environment a job starts from ------------------------------------------------------

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * What a job inherits from whoever runs it (a coordinator replica or the CLI): PATH and HOME,
 * nothing else. Everything else a job gets is declared (`env` in hooks.yml, `--env`) or set by
 * coordbus (COORDBUS_JOB_ID, ...): a job never sees the runner's REDIS_URL, tokens or passwords.
 */
export function jobBaseEnv(from: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = { PATH: from.PATH || DEFAULT_PATH };
  if (from.HOME) env.HOME = from.HOME;
  return env;
}

/** The variables an agent hook event carries (its session and project), passed on to the jobs it fires. */
const HOOK_EVENT_NAME = /^(CLAUDE_[A-Z0-9_]+|COORD_SESSION_ID)$/;

/** The hook event variables of `from`, secret-named ones excepted. */
export function hookEventEnv(from: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(from))
    if (v !== undefined && HOOK_EVENT_NAME.test(k) && !isSecretName(k)) env[k] = v;
  return env;
}

// ---- secrets in argv ------------------------------------------------------------------------

/** Words in an option or variable name that mark its value as a secret. */
const SECRET_WORD =
  'password|passwd|passphrase|token|secret|api[-_]?key|access[-_]?key|private[-_]?key|credentials?';
/** An option whose name ENDS in a secret word: `--token`, `--db-password`, `--api-key` (not `--tokenizer`). */
const SECRET_OPTION = `--?(?:[A-Za-z0-9]+[-_])*(?:${SECRET_WORD})`;
/** Such an option given alone: the NEXT argument is the secret. */
const SECRET_FLAG = new RegExp(`^${SECRET_OPTION}$`, 'i');
/**
 * Secret patterns inside one argument (or a shell command string), each with the secret as its
 * last group: `--token=v` / `--token v`, `NAME_TOKEN=v` (the names isSecretName knows),
 * `scheme://user:v@host`, `Authorization: Bearer v`, and the shapes of well-known tokens.
 */
const SECRET_PATTERNS: RegExp[] = [
  new RegExp(`((?:^|\\s)${SECRET_OPTION}(?:=|\\s+))([^\\s'"]+)`, 'gi'),
  /(\b[A-Za-z_][A-Za-z0-9_]*_(?:TOKEN|SECRET|KEY|PASSWORD)=)([^\s'"]+)/gi,
  /([a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:)([^@\s/]+)(?=@)/gi,
  /((?:Bearer|Basic|Token)\s+)([A-Za-z0-9._~+/-]{8,}=*)/g,
  /()\b((?:gh[pousr]_[A-Za-z0-9]{20,})|(?:github_pat_[A-Za-z0-9_]{20,})|(?:sk-[A-Za-z0-9_-]{20,})|(?:xox[abprs]-[A-Za-z0-9-]{10,})|(?:AKIA[0-9A-Z]{16})|(?:glpat-[A-Za-z0-9_-]{20,}))\b/g,
];

/** Replaces the secrets found in `text`; `found` collects them (for redacting the job's output too). */
function scrubText(text: string, found: Set<string>): string {
  let out = text;
  for (const re of SECRET_PATTERNS) {
    out = out.replace(re, (_m: string, lead: string, secret: string) => {
      if (secret === SCRUBBED) return `${lead}${secret}`;
      found.add(secret);
      return `${lead}${SCRUBBED}`;
    });
  }
  return out;
}

/**
 * The argv as it may be stored and shown (`jobs ls`, events, the archive): every secret the
 * patterns above recognise, and every value of the job's secret variables, replaced by
 * `[scrubbed]`. `found` lists the secrets replaced. The real argv reaches only the process.
 */
export function scrubArgv(
  argv: readonly string[],
  secretValues: readonly string[] = [],
): { argv: string[]; found: string[] } {
  const found = new Set<string>();
  const first = argv.map((arg, i) => {
    if (i > 0 && SECRET_FLAG.test(argv[i - 1]) && arg !== '' && arg !== SCRUBBED) {
      found.add(arg);
      return SCRUBBED;
    }
    return scrubText(arg, found);
  });
  // A secret recognised once is hidden wherever else it appears (`test -n "<it>"` after `--token <it>`).
  const values = [...found, ...secretValues].filter((v) => v.length >= 4).sort((a, b) => b.length - a.length);
  const out = first.map((arg) => {
    let s = arg;
    for (const v of values) if (s.includes(v)) s = s.split(v).join(SCRUBBED);
    return s;
  });
  return { argv: out, found: [...found] };
}

/**
 * Key under which a job's real argv travels with its secrets (JSON), when the stored argv was
 * scrubbed. Not a valid variable name, so it never reaches the environment.
 */
export const ARGV_SECRET_KEY = '#argv';
/** Likewise for a job's real stdin (a hook event), when the stored one was scrubbed. */
export const STDIN_SECRET_KEY = '#stdin';

/** Splits what travels with a job into its secret variables and its real argv and stdin (if scrubbed). */
export function unpackSecrets(secrets: Record<string, string>): {
  env: Record<string, string>;
  argv: string[] | null;
  stdin: string | null;
} {
  const { [ARGV_SECRET_KEY]: rawArgv, [STDIN_SECRET_KEY]: stdin, ...env } = secrets;
  return { env, argv: rawArgv ? (JSON.parse(rawArgv) as string[]) : null, stdin: stdin ?? null };
}

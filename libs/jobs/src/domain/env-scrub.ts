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

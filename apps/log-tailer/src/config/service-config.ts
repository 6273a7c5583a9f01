import { servicePort } from '@coordbus/config';
import { baseConfig, BaseConfig, ConfigError, EnvReader } from '@coordbus/runtime';
import { resolveTailerConfig, TailerConfig, TailerConfigError } from './tailer-config';

export const TAILER_SERVICE = 'log-tailer';
export const DEFAULT_HTTP_PORT = servicePort(TAILER_SERVICE);

/** Everything the service reads at start: the shared env plus its targets (flags and/or config file). */
export function loadServiceConfig(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): { base: BaseConfig; tailer: TailerConfig } {
  const reader = new EnvReader(env);
  const base = baseConfig(reader, { service: TAILER_SERVICE, defaultHttpPort: DEFAULT_HTTP_PORT });
  const problems: string[] = [];
  let tailer: TailerConfig | undefined;
  try {
    tailer = resolveTailerConfig(argv, env);
  } catch (err) {
    if (!(err instanceof TailerConfigError)) throw err;
    problems.push(...err.problems);
  }
  try {
    reader.finish();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.unshift(...err.problems);
  }
  if (problems.length || !tailer) throw new ConfigError(problems);
  return { base, tailer };
}

import type { CoordOpEnvelope } from '@coordbus/envelope';

const LEVEL_TAG: Record<string, string> = { info: 'INFO ', warn: 'WARN ', error: 'ERROR' };

/**
 * One readable line per coord op envelope (used by `coordbus tail`, `replay` and the archive
 * replay), e.g.
 *   2026-04-07T12:34:56.789Z INFO  coord.lock end      session=s1 op=lock resource=db exit=0 12.3ms host=vm pid=42
 * Absent values (empty strings) are left out; a `pre` envelope shows no exit code or duration.
 */
export function formatEnvelopeLine(env: CoordOpEnvelope): string {
  const f = env.fields;
  const parts = [env.ts, LEVEL_TAG[env.level] ?? env.level.toUpperCase(), env.msg.padEnd(18)];
  parts.push(`session=${f.session}`, `op=${f.op}`);
  if (f.resource) parts.push(`resource=${f.resource}`);
  if (f.peer) parts.push(`peer=${f.peer}`);
  if (f.phase === 'post') parts.push(`exit=${f.exit_code}`, `${formatMs(f.duration_ms)}`);
  parts.push(`host=${env.host}`, `pid=${env.pid}`);
  return parts.join(' ');
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)}s` : `${ms.toFixed(1)}ms`;
}

import { scrubArgv } from './env-scrub';

/**
 * Largest hook event a job gets on its stdin (and that is stored with it). Claude Code puts whole
 * tool results in PostToolUse (a Write's file content, a Bash command's output): past this, long
 * strings are cut, and if that is not enough only the main fields are kept, so what the job reads
 * is always valid JSON.
 */
export const HOOK_EVENT_MAX_BYTES = 256 * 1024;
/** Longest string kept inside an event that had to be cut down. */
const CUT_STRING_CHARS = 4096;

/** The hook event as a job receives it: the JSON for its stdin, the main fields as variables. */
export interface HookEventInput {
  stdin: string | null;
  env: Record<string, string>;
}

/**
 * The agent's hook event (the JSON Claude Code wrote to the hook's stdin) turned into a job's
 * input. Bad or empty input still fires the hook: the job gets what there is (`stdin` null when
 * there was nothing, the raw text when it is not JSON) and `COORDBUS_HOOK_EVENT` names the hook.
 * Variable values pass the argv secret scrubber: they are stored with the job's metadata, while the
 * unscrubbed event travels on stdin (see newJob).
 */
export function hookEventInput(
  raw: string | null,
  hook: string,
  maxBytes = HOOK_EVENT_MAX_BYTES,
): HookEventInput {
  const env: Record<string, string> = { COORDBUS_HOOK_EVENT: hook };
  if (raw === null || raw.trim() === '') return { stdin: null, env };
  let event: unknown;
  try {
    event = JSON.parse(raw);
  } catch {
    return { stdin: Buffer.byteLength(raw) <= maxBytes ? raw : null, env };
  }
  if (!isObject(event)) return { stdin: Buffer.byteLength(raw) <= maxBytes ? raw : null, env };

  const input = isObject(event.tool_input) ? event.tool_input : {};
  const fields: [string, unknown][] = [
    ['COORDBUS_HOOK_EVENT', event.hook_event_name ?? hook],
    ['COORDBUS_SESSION_ID', event.session_id],
    ['COORDBUS_TOOL_NAME', event.tool_name],
    ['COORDBUS_FILE_PATH', input.file_path ?? input.notebook_path ?? input.path],
    ['COORDBUS_CWD', event.cwd],
    ['COORDBUS_TRANSCRIPT_PATH', event.transcript_path],
    ['COORDBUS_MESSAGE', event.message],
  ];
  for (const [name, value] of fields) {
    if (typeof value !== 'string' || !value || value.includes('\0')) continue;
    env[name] = scrubArgv([value.slice(0, CUT_STRING_CHARS)]).argv[0];
  }
  return { stdin: boundEvent(event, raw, maxBytes), env };
}

function boundEvent(event: Record<string, unknown>, raw: string, maxBytes: number): string {
  if (Buffer.byteLength(raw) <= maxBytes) return raw;
  const cut = JSON.stringify({ ...(cutStrings(event) as object), coordbus_truncated: true });
  if (Buffer.byteLength(cut) <= maxBytes) return cut;
  const main: Record<string, unknown> = { coordbus_truncated: true };
  for (const k of ['session_id', 'transcript_path', 'cwd', 'hook_event_name', 'tool_name', 'message'])
    if (typeof event[k] === 'string') main[k] = (event[k] as string).slice(0, CUT_STRING_CHARS);
  return JSON.stringify(main);
}

function cutStrings(v: unknown): unknown {
  if (typeof v === 'string')
    return v.length <= CUT_STRING_CHARS
      ? v
      : `${v.slice(0, CUT_STRING_CHARS)}…[${v.length - CUT_STRING_CHARS} more characters cut]`;
  if (Array.isArray(v)) return v.map(cutStrings);
  if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, cutStrings(x)]));
  return v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

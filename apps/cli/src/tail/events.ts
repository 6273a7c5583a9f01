import {
  CoordEvent,
  EnvelopeCodec,
  EXIT_CODES,
  fieldsToRecord,
  keyspaceFromEnv,
  Schemas,
  SentinelObservation,
  TX_KINDS,
} from '@coordbus/envelope';
import { connect, fail, type LiveDeps } from './live';

export interface EventsOptions {
  follow?: boolean;
  session?: string;
  /** A TxKind (`lock.release`) or its family (`lock`). */
  kind?: string;
  json?: boolean;
  /** Read the sentinel's observations instead of the coord events stream. */
  observations?: boolean;
  /** How many past entries (default 50). */
  count?: number;
}

const codec = new EnvelopeCodec();
const FAMILIES = [...new Set(TX_KINDS.map((k) => k.split('.')[0]))];

type Row = { kind: string; session: string | null; line: string; json: unknown };

function eventRow(e: CoordEvent): Row {
  const p = { ...(e.payload as unknown as Record<string, unknown>) };
  // Said once: the session and the resource lead the line.
  for (const k of ['resource', 'owner_session', 'to_session', 'assignee']) {
    if (p[k] === e.resource || p[k] === e.session_id) delete p[k];
  }
  const rest = Object.entries(p)
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const line = [e.ts, e.tx_kind.padEnd(17), `session=${e.session_id ?? '-'}`]
    .concat(e.resource ? [`resource=${e.resource}`] : [])
    .concat(rest ? [rest] : [])
    .concat([`source=${e.source}`])
    .join(' ');
  return { kind: e.tx_kind, session: e.session_id, line, json: e };
}

function observationRow(o: SentinelObservation): Row {
  return {
    kind: o.kind,
    session: o.session_id,
    line: `${o.ts} ${o.kind.padEnd(17)} ${o.summary} (source=${o.source})`,
    json: o,
  };
}

/**
 * `coordbus events`: the typed coord event stream (every state change: registrations, locks,
 * culls, orders...) or, with `observations`, the sentinel's one-line observations of it —
 * oldest first, human-readable (`--json`: one record per line), filtered by session and kind;
 * `--follow` then waits for new ones (XREAD BLOCK) until `signal` aborts.
 */
export async function runEvents(
  opts: EventsOptions,
  out: NodeJS.WritableStream,
  deps: LiveDeps = {},
): Promise<number> {
  const env = deps.env ?? process.env;
  const err = deps.err ?? process.stderr;
  if (
    opts.kind !== undefined &&
    !(TX_KINDS as readonly string[]).includes(opts.kind) &&
    !FAMILIES.includes(opts.kind)
  ) {
    err.write(
      `coordbus events: --kind must be one of ${[...FAMILIES, ...TX_KINDS].join(', ')} (got ${JSON.stringify(opts.kind)})\n`,
    );
    return EXIT_CODES.usage;
  }
  const count = opts.count ?? 50;
  const keyspace = keyspaceFromEnv(env);
  const stream = opts.observations ? keyspace.sentinelObservations : keyspace.coordEvents;
  const toRow = (fields: string[]): Row =>
    opts.observations
      ? observationRow(codec.decode(Schemas.observation, fieldsToRecord(fields)))
      : eventRow(codec.decode(Schemas.coordEvent, fieldsToRecord(fields)));
  const wanted = (r: Row) =>
    (!opts.session || r.session === opts.session) &&
    (!opts.kind || r.kind === opts.kind || r.kind.startsWith(`${opts.kind}.`));
  const show = (id: string, fields: string[]) => {
    let row: Row;
    try {
      row = toRow(fields);
    } catch (e) {
      err.write(`coordbus events: skipped entry ${id}: ${(e as Error).message}\n`);
      return;
    }
    if (wanted(row)) out.write(`${opts.json ? JSON.stringify(row.json) : row.line}\n`);
  };

  const redis = connect(env);
  try {
    await redis.connect();
    // The last `count` matching entries, paging back, then printed oldest first.
    const past: [string, string[]][] = [];
    let cursor = '+';
    let last = '0-0';
    for (;;) {
      const page = await redis.xrevrange(stream, cursor, '-', 'COUNT', 500);
      if (!page.length) break;
      if (last === '0-0') last = page[0][0];
      for (const entry of page) {
        let row: Row | undefined;
        try {
          row = toRow(entry[1]);
        } catch {
          row = undefined; // reported when shown
        }
        if (!row || wanted(row)) past.push(entry);
        if (past.length >= count) break;
      }
      if (past.length >= count) break;
      cursor = `(${page[page.length - 1][0]}`;
    }
    for (const [id, fields] of past.reverse()) show(id, fields);
    if (!opts.follow) return EXIT_CODES.ok;

    const aborted = new Promise<null>((resolve) =>
      deps.signal?.addEventListener('abort', () => resolve(null), { once: true }),
    );
    deps.onSubscribed?.();
    while (!deps.signal?.aborted) {
      // A blocking read on its own connection would outlive Ctrl-C: block in short slices.
      const r = await Promise.race([
        redis.xread('COUNT', 500, 'BLOCK', 1000, 'STREAMS', stream, last),
        aborted,
      ]);
      for (const [id, fields] of r?.[0]?.[1] ?? []) {
        last = id;
        show(id, fields);
      }
    }
    return EXIT_CODES.ok;
  } catch (e) {
    return fail(err, e, 'events');
  } finally {
    redis.disconnect();
  }
}

import type { CoordEvent, CoordOpEnvelope, Level } from '@coordbus/envelope';

/** What a state change nobody typed looks like in the live views: op name, level and message. */
interface LiveLine {
  op: string;
  level: Level;
  msg: string;
}

function lineFor(e: CoordEvent): LiveLine | undefined {
  const p = e.payload as unknown as Record<string, string | undefined>;
  const sid = e.session_id ?? '';
  switch (e.tx_kind) {
    case 'session.dereg':
      return p.reason === 'ttl-expired'
        ? {
            op: 'cull',
            level: 'warn',
            msg: `coord.cull session ${sid} culled: no heartbeat within the session TTL`,
          }
        : undefined;
    case 'lock.release':
      switch (p.reason) {
        case 'owner-evicted':
          return {
            op: 'cull',
            level: 'warn',
            msg: `coord.cull lock ${p.resource} of ${sid} released: owner culled`,
          };
        case 'forced':
          return {
            op: 'force-release',
            level: 'warn',
            msg: `coord.force-release lock ${p.resource} of ${sid} released by an operator`,
          };
        case 'expired':
          return {
            op: 'expire',
            level: 'info',
            msg: `coord.expire lock ${p.resource} of ${sid} expired (its --ttl passed)`,
          };
        case 'stolen':
          return { op: 'stolen', level: 'info', msg: `coord.stolen lock ${p.resource} taken from ${sid}` };
        default:
          return undefined;
      }
    case 'dispatch.ack':
    case 'dispatch.done':
    case 'dispatch.reject': {
      const state = e.tx_kind.slice('dispatch.'.length);
      const note = p.note ? `: ${p.note}` : '';
      return {
        op: `order.${state}`,
        level: 'info',
        msg: `coord.order ${p.order_id} ${state} by ${sid}${note}`,
      };
    }
    default:
      return undefined;
  }
}

/**
 * The live-view envelope (seed 000's shape: `service`, `target`, `msg`, `fields`) of a coord
 * event that changed state without the affected session typing it — a cull, a lock released by
 * eviction, expiry, steal or an operator, an order moving on — or undefined for the others, whose
 * `coord <op>` envelopes already tell the story. Culls and forced releases are `warn`.
 * `fields.session` is the session it happened to; `host`/`pid` are the reporter's.
 */
export function liveEnvelope(
  e: CoordEvent,
  reporter: { host: string; pid: number },
): CoordOpEnvelope | undefined {
  const l = lineFor(e);
  if (!l) return undefined;
  return {
    v: 0,
    ts: e.ts,
    service: 'coord',
    host: reporter.host,
    level: l.level,
    pid: reporter.pid,
    target: `coord::${l.op}`,
    msg: l.msg,
    fields: {
      op: l.op,
      session: e.session_id ?? '',
      resource: e.resource ?? '',
      peer: '',
      duration_ms: 0,
      phase: 'post',
      exit_code: 0,
    },
  } as CoordOpEnvelope;
}

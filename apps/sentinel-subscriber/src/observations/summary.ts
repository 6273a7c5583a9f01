import { CoordEvent, PayloadByKind, SentinelObservation } from '@coordbus/envelope';

const MAX_SUMMARY = 300;

/** One line, bounded: control characters and newlines become spaces, long text is cut with an ellipsis. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return flat.length > MAX_SUMMARY ? `${flat.slice(0, MAX_SUMMARY - 1)}…` : flat;
}

/**
 * The human one-liner of an event. It uses only what every source can know (no times, no
 * message bodies), so the same coord operation summarises identically whichever source saw it.
 */
export function summarize(event: CoordEvent): string {
  const who = event.session_id ?? 'unknown';
  switch (event.tx_kind) {
    case 'session.register': {
      const p = event.payload as PayloadByKind['session.register'];
      return oneLine(`session ${who} registered (role ${p.role || '-'}, task ${p.task || '-'})`);
    }
    case 'session.heartbeat': {
      const p = event.payload as PayloadByKind['session.heartbeat'];
      return oneLine(`session ${who} heartbeat (phase ${p.phase ?? '-'})`);
    }
    case 'session.dereg': {
      const p = event.payload as PayloadByKind['session.dereg'];
      return oneLine(`session ${who} deregistered (${p.reason})`);
    }
    case 'lock.acquire': {
      const p = event.payload as PayloadByKind['lock.acquire'];
      return oneLine(`${p.owner_session} acquired lock ${p.resource}${p.reason ? ` (${p.reason})` : ''}`);
    }
    case 'lock.release': {
      const p = event.payload as PayloadByKind['lock.release'];
      return oneLine(`${p.owner_session} released lock ${p.resource} (${p.reason ?? 'unlock'})`);
    }
    case 'inbox.deliver': {
      const p = event.payload as PayloadByKind['inbox.deliver'];
      return oneLine(
        `${p.kind || 'message'} ${p.msg_id} delivered to ${p.to_session}${p.from_session ? ` from ${p.from_session}` : ''}`,
      );
    }
    case 'dispatch.issue': {
      const p = event.payload as PayloadByKind['dispatch.issue'];
      return oneLine(`order ${p.order_id} (ticket ${p.ticket}) dispatched to ${p.assignee}`);
    }
    default:
      return oneLine(`${String((event as CoordEvent).tx_kind)} for ${who}`);
  }
}

/** The observation of one handled event: when it happened, who, what, and where it came from. */
export function toObservation(event: CoordEvent): SentinelObservation {
  return {
    ts: event.ts,
    session_id: event.session_id,
    kind: event.tx_kind,
    resource: event.resource,
    summary: summarize(event),
    tx_id: event.tx_id,
    source: event.source,
  };
}

// Talks to the archivist: JSON reads, actions (operator), the live feed with exact resume.
import { applyBatch, loadSnapshot, state, changed } from './store.js';

export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function getJson(path) {
  const res = await fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new HttpError(res.status, [body.message].flat().join('; ') || res.statusText);
  return body;
}

/** An operator action: JSON body, plus the header a cross-site form cannot send. */
export async function act(path, body) {
  const res = await fetch(`/v1/console/actions/${path}`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-coordbus-action': '1' },
    body: JSON.stringify(body),
  });
  const out = await res.json().catch(() => ({}));
  if (!res.ok) throw new HttpError(res.status, [out.message].flat().join('; ') || res.statusText);
  return out;
}

export async function login(token) {
  const res = await fetch('/console/login', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token }),
  });
  const out = await res.json().catch(() => ({}));
  if (!res.ok) throw new HttpError(res.status, out.message || 'login refused');
  return out;
}

export async function logout() {
  await fetch('/console/logout', { method: 'POST', credentials: 'same-origin' });
}

let source = null;

/**
 * Loads the snapshot, then follows the live feed from the snapshot's cursor. The browser's
 * EventSource reconnects by itself and sends the last event id it saw (Last-Event-ID): the server
 * replays exactly what was missed. A `reset` (too far behind) reloads the snapshot.
 */
export async function start() {
  const snap = await getJson('/v1/console/snapshot');
  loadSnapshot(snap);
  source?.close();
  source = new EventSource(`/v1/console/live?cursor=${encodeURIComponent(snap.cursor)}`);
  source.addEventListener('open', () => {
    state.connection = 'live';
    changed();
  });
  source.addEventListener('error', () => {
    state.connection = source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting';
    changed();
  });
  source.addEventListener('batch', (e) => {
    state.connection = 'live';
    applyBatch(JSON.parse(e.data));
  });
  source.addEventListener('reset', () => {
    source.close();
    start().catch(() => undefined);
  });
}

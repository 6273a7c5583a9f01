// The fleet console: one page, live from the archivist's feed. Preact + htm, uPlot for charts.
import { render } from 'preact';
import { html } from 'htm/preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import 'uplot/dist/uPlot.min.css';
import './app.css';
import { act, getJson, login, logout, start } from './api.js';
import { StageChart, Sparkline } from './charts.js';
import { changed, needsYou, pendingOrders, serverNow, sessionState, state, subscribe } from './store.js';

const PAGE = 100;

// ---- small helpers ---------------------------------------------------------------------------

function useVersion() {
  const [, set] = useState(0);
  useEffect(() => subscribe(set), []);
}

/** Re-renders every second (ticking ages), only while mounted. */
function useTick(ms = 1000) {
  const [, set] = useState(0);
  useEffect(() => {
    const t = setInterval(() => set((n) => n + 1), ms);
    return () => clearInterval(t);
  }, [ms]);
}

function useRoute() {
  const [hash, setHash] = useState(location.hash || '#/sessions');
  useEffect(() => {
    const on = () => setHash(location.hash || '#/sessions');
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  const [, view, ...rest] = hash.split('/');
  return { view, arg: rest.map(decodeURIComponent).join('/') };
}

export function age(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d`;
}
const since = (iso) => (iso ? age(serverNow() - Date.parse(iso)) : '—');
const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '—');
const sessionLink = (id) => (id ? html`<a href=${`#/session/${encodeURIComponent(id)}`}>${id}</a>` : '—');
const badge = (text, kind = text) => html`<span class=${`badge b-${kind}`} data-state=${text}>${text}</span>`;

function Pager({ page, total, onPage }) {
  const pages = Math.max(1, Math.ceil(total / PAGE));
  if (pages <= 1) return null;
  return html`<div class="pager">
    <button disabled=${page === 0} onClick=${() => onPage(page - 1)}>‹ prev</button>
    <span>page ${page + 1} of ${pages} (${total})</span>
    <button disabled=${page >= pages - 1} onClick=${() => onPage(page + 1)}>next ›</button>
  </div>`;
}

const canAct = () => state.access.level === 'operator';

function ActButton({ label, run, confirmText, testid, askReason }) {
  const [busy, setBusy] = useState(false);
  const [msg, setMsg] = useState(null);
  if (!canAct()) return null;
  return html`<span>
    <button
      class="act"
      data-testid=${testid}
      disabled=${busy}
      onClick=${async () => {
        let reason = null;
        if (askReason) {
          reason = prompt(confirmText || 'Reason?');
          if (!reason) return;
        } else if (confirmText && !confirm(confirmText)) return;
        setBusy(true);
        try {
          await run(reason);
          setMsg('done');
        } catch (e) {
          setMsg(e.message);
        } finally {
          setBusy(false);
        }
      }}
    >
      ${label}
    </button>
    ${msg && html`<small class="note">${msg}</small>`}
  </span>`;
}

// ---- views -----------------------------------------------------------------------------------

function Sessions() {
  useVersion();
  useTick();
  const [q, setQ] = useState('');
  const [which, setWhich] = useState('all');
  const [page, setPage] = useState(0);
  const locksBy = new Map();
  for (const l of state.locks.values()) locksBy.set(l.owner, [...(locksBy.get(l.owner) ?? []), l.resource]);
  const needle = q.trim().toLowerCase();
  const rows = [...state.sessions.values()]
    .map((s) => ({ s, st: sessionState(s) }))
    .filter(
      ({ s, st }) =>
        (which === 'all' || st === which) &&
        (!needle ||
          [s.session, s.task, s.role, s.host].some((v) => v && String(v).toLowerCase().includes(needle))),
    )
    .sort((a, b) => (b.s.last_hb_ms ?? 0) - (a.s.last_hb_ms ?? 0));
  const counts = { live: 0, stale: 0, culled: 0, deregistered: 0, unknown: 0 };
  for (const s of state.sessions.values()) counts[sessionState(s)]++;
  const shown = rows.slice(page * PAGE, page * PAGE + PAGE);
  return html`<section>
    <div class="toolbar">
      <input
        placeholder="filter: session, task, role, host"
        value=${q}
        onInput=${(e) => (setQ(e.target.value), setPage(0))}
        data-testid="session-filter"
      />
      ${['all', 'live', 'stale', 'culled', 'deregistered'].map(
        (w) =>
          html`<button class=${which === w ? 'on' : ''} onClick=${() => (setWhich(w), setPage(0))}>
            ${w}${w === 'all' ? '' : ` ${counts[w]}`}
          </button>`,
      )}
    </div>
    <table>
      <thead>
        <tr>
          <th>session</th>
          <th>state</th>
          <th>task</th>
          <th>role</th>
          <th>host</th>
          <th>heartbeat</th>
          <th>doing now</th>
          <th>locks</th>
          <th>inbox</th>
          <th>orders</th>
        </tr>
      </thead>
      <tbody>
        ${shown.map(({ s, st }) => {
          const locks = locksBy.get(s.session) ?? [];
          const a = s.activity;
          return html`<tr data-testid=${`session-row-${s.session}`} data-state=${st}>
            <td>${sessionLink(s.session)}</td>
            <td>${badge(st)}</td>
            <td>${s.task || '—'}</td>
            <td>${s.role || '—'}</td>
            <td>${s.host || '—'}</td>
            <td class="num">
              ${st === 'culled' || st === 'deregistered' ? `ended ${since(s.ended_at)} ago` : s.last_hb_ms ? `${age(serverNow() - s.last_hb_ms)} ago` : '—'}
            </td>
            <td>
              ${a ? html`<span title=${a.ts}>${a.event}${a.tool ? ` ${a.tool}` : ''} ${a.path || a.command || ''}</span>` : '—'}
            </td>
            <td title=${locks.join('\n')}>
              ${locks.length ? `${locks.length}: ${locks.slice(0, 2).join(', ')}${locks.length > 2 ? '…' : ''}` : '—'}
            </td>
            <td class="num">${s.inbox || 0}</td>
            <td class="num">${pendingOrders(s.session) || '—'}</td>
          </tr>`;
        })}
      </tbody>
    </table>
    ${!rows.length && html`<p class="empty">No sessions${needle || which !== 'all' ? ' match' : ' yet: run coord register in a session'}.</p>`}
    <${Pager} page=${page} total=${rows.length} onPage=${setPage} />
  </section>`;
}

function SessionPage({ id }) {
  useVersion();
  useTick();
  const [data, setData] = useState(null);
  const [err, setErr] = useState(null);
  useEffect(() => {
    getJson(`/v1/console/sessions/${encodeURIComponent(id)}`).then(setData, (e) => setErr(e.message));
  }, [id, state.sessions.get(id)?.state]);
  const s = state.sessions.get(id);
  const locks = [...state.locks.values()].filter((l) => l.owner === id);
  const orders = [...state.orders.values()].filter((o) => o.assignee === id);
  return html`<section>
    <h2>session ${id} ${s && badge(sessionState(s))}</h2>
    ${err && html`<p class="error">${err}</p>`}
    ${
      s &&
      html`<dl class="facts">
        <dt>task</dt>
        <dd>${s.task || '—'}</dd>
        <dt>role</dt>
        <dd>${s.role || '—'}</dd>
        <dt>host</dt>
        <dd>${s.host || '—'} ${s.pid ? `pid ${s.pid}` : ''}</dd>
        <dt>heartbeat</dt>
        <dd>${s.last_hb_ms ? `${age(serverNow() - s.last_hb_ms)} ago` : '—'}</dd>
        <dt>inbox</dt>
        <dd>${s.inbox || 0} unread</dd>
        <dt>ended</dt>
        <dd>${s.ended_at ? `${time(s.ended_at)} (${s.end_reason})` : '—'}</dd>
      </dl>`
    }
    <h3>locks</h3>
    ${
      locks.length
        ? html`<ul>
            ${locks.map((l) => html`<li>${l.resource} <small>since ${time(l.acquired_at)}</small></li>`)}
          </ul>`
        : html`<p class="empty">none</p>`
    }
    <h3>orders</h3>
    ${
      orders.length
        ? html`<ul>
            ${orders.map((o) => html`<li>${o.ticket} ${badge(o.state)} <small>${time(o.issued_at)}${o.issued_by ? ` from ${o.issued_by}` : ''}</small></li>`)}
          </ul>`
        : html`<p class="empty">none</p>`
    }
    ${canAct() && html`<${SendForms} to=${id} />`}
    <h3>activity</h3>
    ${
      data?.activity?.length
        ? html`<table>
            <tbody>
              ${data.activity.map(
                (a) =>
                  html`<tr>
                    <td>${time(a.ts)}</td>
                    <td>${a.event}</td>
                    <td>${a.tool || ''}</td>
                    <td>${a.path || a.command || a.message || ''}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
        : html`<p class="empty">
            No activity recorded for this session (the activity stream is written by the agent hooks).
          </p>`
    }
    <h3>timeline (archive)</h3>
    ${
      data
        ? html`<table data-testid="timeline">
              <thead>
                <tr>
                  <th>time</th>
                  <th>stream</th>
                  <th>kind</th>
                  <th>resource</th>
                  <th>what</th>
                </tr>
              </thead>
              <tbody>
                ${data.timeline.map(
                  (e) =>
                    html`<tr>
                      <td>${time(e.ts)}</td>
                      <td>${e.stream}</td>
                      <td>${e.kind}</td>
                      <td>${e.resource || ''}</td>
                      <td>${e.summary || ''}</td>
                    </tr>`,
                )}
              </tbody>
            </table>
            ${data.more && html`<p class="note">Newest ${data.timeline.length} shown; use Search or /v1/events for more.</p>`}`
        : html`<p>loading…</p>`
    }
  </section>`;
}

function SendForms({ to }) {
  const [msg, setMsg] = useState(null);
  const submit = (path, body) =>
    act(path, body).then(
      () => setMsg('sent'),
      (e) => setMsg(e.message),
    );
  return html`<div class="forms">
    <form
      onSubmit=${(e) => (e.preventDefault(), submit('message', { to: to || e.target.to.value, subject: e.target.subject.value, body: e.target.body.value }))}
    >
      <h4>send a message</h4>
      ${!to && html`<input name="to" placeholder="to session" required />`}
      <input name="subject" placeholder="subject" />
      <textarea name="body" placeholder="message" required></textarea>
      <button>send</button>
    </form>
    <form
      onSubmit=${(e) => (e.preventDefault(), submit('dispatch', { assignee: to || e.target.assignee.value, ticket: e.target.ticket.value }))}
    >
      <h4>dispatch an order</h4>
      ${!to && html`<input name="assignee" placeholder="assignee session" required />`}
      <input name="ticket" placeholder="ticket, e.g. TOD-42" required />
      <button>dispatch</button>
    </form>
    ${msg && html`<p class="note">${msg}</p>`}
  </div>`;
}

function Locks() {
  useVersion();
  useTick();
  const [page, setPage] = useState(0);
  const rows = [...state.locks.values()].sort((a, b) => (a.acquired_at < b.acquired_at ? -1 : 1));
  return html`<section>
    <table>
      <thead>
        <tr>
          <th>resource</th>
          <th>owner</th>
          <th>owner live?</th>
          <th>age</th>
          <th>TTL left</th>
          <th>reason</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        ${rows.slice(page * PAGE, page * PAGE + PAGE).map((l) => {
          const owner = state.sessions.get(l.owner);
          const st = owner ? sessionState(owner) : 'unknown';
          const left = l.expires_at ? Date.parse(l.expires_at) - serverNow() : null;
          return html`<tr data-testid=${`lock-row-${l.resource}`}>
            <td>${l.resource}</td>
            <td>${sessionLink(l.owner)}</td>
            <td>${badge(st)}</td>
            <td class="num">${since(l.acquired_at)}</td>
            <td class="num">${left === null ? 'none' : age(left)}</td>
            <td>${l.reason || ''}</td>
            <td>
              <${ActButton}
                label="force-release"
                testid="force-release"
                askReason
                confirmText=${`Force-release ${l.resource} held by ${l.owner}? Reason:`}
                run=${(reason) => act('force-release', { resource: l.resource, owner: l.owner, reason })}
              />
            </td>
          </tr>`;
        })}
      </tbody>
    </table>
    ${!rows.length && html`<p class="empty">No locks held.</p>`}
    <${Pager} page=${page} total=${rows.length} onPage=${setPage} />
    <h3>conflicts and steals, as they happen</h3>
    <table data-testid="conflicts">
      <thead>
        <tr>
          <th>time</th>
          <th>what</th>
          <th>session</th>
          <th>resource</th>
          <th>owner</th>
          <th>message</th>
        </tr>
      </thead>
      <tbody>
        ${[...state.conflicts].reverse().map(
          (c) =>
            html`<tr data-testid="conflict-row">
              <td>${time(c.ts)}</td>
              <td>${badge(c.kind, 'warn')}</td>
              <td>${sessionLink(c.session)}</td>
              <td>${c.resource || ''}</td>
              <td>${sessionLink(c.owner)}</td>
              <td>${c.msg || ''}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}

function Orders() {
  useVersion();
  const orders = [...state.orders.values()].sort((a, b) => (a.issued_at < b.issued_at ? 1 : -1));
  const byState = {};
  for (const o of orders) byState[o.state] = (byState[o.state] ?? 0) + 1;
  const flow = new Map();
  for (const m of state.messages) {
    const k = `${m.from_session ?? m.session ?? '?'} → ${m.to_session}`;
    flow.set(k, (flow.get(k) ?? 0) + 1);
  }
  return html`<section>
    <h3>dispatch orders ${Object.entries(byState).map(([k, n]) => html` ${badge(`${k} ${n}`, k)}`)}</h3>
    <table>
      <thead>
        <tr>
          <th>order</th>
          <th>ticket</th>
          <th>assignee</th>
          <th>state</th>
          <th>issued by</th>
          <th>issued</th>
        </tr>
      </thead>
      <tbody>
        ${orders.slice(0, PAGE).map(
          (o) =>
            html`<tr>
              <td>${o.order_id}</td>
              <td>${o.ticket}</td>
              <td>${sessionLink(o.assignee)}</td>
              <td>${badge(o.state)}</td>
              <td>${o.issued_by || '—'}</td>
              <td>${time(o.issued_at)}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${!orders.length && html`<p class="empty">No orders.</p>`}
    <h3>message flow (since the page loaded)</h3>
    <table>
      <tbody>
        ${[...flow]
          .sort((a, b) => b[1] - a[1])
          .map(
            ([k, n]) =>
              html`<tr>
                <td>${k}</td>
                <td class="num">${n}</td>
              </tr>`,
          )}
      </tbody>
    </table>
    <h3>last messages</h3>
    <table>
      <thead>
        <tr>
          <th>time</th>
          <th>from</th>
          <th>to</th>
          <th>kind</th>
          <th>subject</th>
        </tr>
      </thead>
      <tbody>
        ${[...state.messages]
          .reverse()
          .slice(0, 50)
          .map(
            (m) =>
              html`<tr>
                <td>${time(m.ts)}</td>
                <td>${sessionLink(m.from_session ?? m.session)}</td>
                <td>${sessionLink(m.to_session)}</td>
                <td>${m.kind}</td>
                <td>${m.subject || ''}</td>
              </tr>`,
          )}
      </tbody>
    </table>
    ${canAct() && html`<${SendForms} />`}
  </section>`;
}

const duration = (j) => {
  if (!j.started_at) return '—';
  const end = j.finished_at ? Date.parse(j.finished_at) : serverNow();
  return age(end - Date.parse(j.started_at));
};

function Jobs() {
  useVersion();
  useTick();
  const [status, setStatus] = useState('all');
  const [page, setPage] = useState(0);
  const all = [...state.jobs.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  const counts = {};
  for (const j of all) counts[j.status] = (counts[j.status] ?? 0) + 1;
  const rows = all.filter((j) => status === 'all' || j.status === status);
  return html`<section>
    <div class="toolbar">
      ${['all', ...Object.keys(counts)].map((s) => html`<button class=${status === s ? 'on' : ''} onClick=${() => (setStatus(s), setPage(0))}>${s} ${s === 'all' ? all.length : counts[s]}</button>`)}
    </div>
    <table>
      <thead>
        <tr>
          <th>job</th>
          <th>name</th>
          <th>hook</th>
          <th>status</th>
          <th>duration</th>
          <th>exit</th>
          <th>worktree</th>
          <th>host</th>
        </tr>
      </thead>
      <tbody>
        ${rows.slice(page * PAGE, page * PAGE + PAGE).map(
          (j) =>
            html`<tr data-testid=${`job-row-${j.job}`}>
              <td><a href=${`#/job/${j.job}`}>${j.job}</a></td>
              <td>${j.name}</td>
              <td>${j.hook}</td>
              <td>${badge(j.status)}</td>
              <td class="num">${duration(j)}</td>
              <td class="num">${j.exit_code ?? j.signal ?? '—'}</td>
              <td>${j.worktree || '—'}</td>
              <td>${j.host || '—'}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${!rows.length && html`<p class="empty">No jobs.</p>`}
    <${Pager} page=${page} total=${rows.length} onPage=${setPage} />
  </section>`;
}

function JobPage({ id }) {
  useVersion();
  useTick();
  const [lines, setLines] = useState([]);
  const [ended, setEnded] = useState(false);
  const [meta, setMeta] = useState(null);
  useEffect(() => {
    getJson(`/v1/console/jobs/${encodeURIComponent(id)}`).then(setMeta, () => undefined);
    setLines([]);
    setEnded(false);
    const es = new EventSource(`/v1/console/jobs/${encodeURIComponent(id)}/logs`);
    es.addEventListener('log', (e) => setLines((l) => [...l, JSON.parse(e.data)].slice(-2000)));
    es.addEventListener('end', () => (setEnded(true), es.close()));
    return () => es.close();
  }, [id]);
  const j = state.jobs.get(id) ?? meta;
  return html`<section>
    <h2>job ${id} ${j && badge(j.status)}</h2>
    ${
      j &&
      html`<dl class="facts">
        <dt>name</dt>
        <dd>${j.name}</dd>
        <dt>hook</dt>
        <dd>${j.hook}</dd>
        <dt>worktree</dt>
        <dd>${j.worktree || '—'}</dd>
        <dt>duration</dt>
        <dd>${duration(j)}</dd>
        <dt>exit</dt>
        <dd>${j.exit_code ?? j.signal ?? '—'}</dd>
        <dt>reason</dt>
        <dd>${j.reason || '—'}</dd>
      </dl>`
    }
    ${j && ['queued', 'running'].includes(j.status) && html`<${ActButton} label="cancel job" testid="cancel-job" confirmText=${`Cancel job ${id}?`} run=${() => act('cancel-job', { job: id })} />`}
    <h3>log ${ended ? '(ended)' : '(following)'}</h3>
    <pre class="log" data-testid="job-log">
${lines.map((r) => (r.kind === 'status' ? `[${r.status}${r.exit_code !== undefined && r.exit_code !== null ? ` exit ${r.exit_code}` : ''}${r.reason ? `: ${r.reason}` : ''}]\n` : `${r.kind === 'stderr' ? '! ' : ''}${r.line}\n`))}</pre>
  </section>`;
}

function Telemetry() {
  useVersion();
  const [data, setData] = useState(null);
  const [err, setErr] = useState(null);
  useEffect(() => {
    getJson('/v1/console/telemetry?hours=24').then(setData, (e) => setErr(e.message));
  }, []);
  const episodes = useMemo(() => {
    const byId = new Map();
    for (const e of data?.episodes ?? []) byId.set(e.id, e);
    for (const t of state.telemetry) byId.set(t.id, { ...t });
    return [...byId.values()].sort((a, b) => (a.ts < b.ts ? -1 : 1));
  }, [data, state.telemetry.length]);
  const stages = new Map();
  for (const e of episodes) {
    const k = `${e.source ?? '?'} · ${e.event ?? '?'}`;
    if (!stages.has(k)) stages.set(k, []);
    stages.get(k).push([Date.parse(e.ts), e.duration_ms ?? 0, e.status]);
  }
  return html`<section>
    ${err && html`<p class="error">${err}</p>`}
    <p class="note">
      Stall episodes and breaches of the last 24 h, one chart per stage (log-tailer telemetry).
    </p>
    <div class="charts">
      ${[...stages].map(([k, pts]) => html`<${StageChart} title=${k} points=${pts} />`)}
    </div>
    ${!episodes.length && html`<p class="empty">No stalls or breaches recorded.</p>`}
    <h3>latest episodes</h3>
    <table>
      <thead>
        <tr>
          <th>time</th>
          <th>stage</th>
          <th>status</th>
          <th>duration</th>
          <th>line</th>
        </tr>
      </thead>
      <tbody>
        ${[...episodes]
          .reverse()
          .slice(0, 50)
          .map(
            (e) =>
              html`<tr>
                <td>${time(e.ts)}</td>
                <td>${e.source} · ${e.event}</td>
                <td>${badge(e.status)}</td>
                <td class="num">${e.duration_ms ?? '—'} ms</td>
                <td><code>${e.line || ''}</code></td>
              </tr>`,
          )}
      </tbody>
    </table>
  </section>`;
}

let notified = new Set();
function NeedsYou() {
  useVersion();
  useTick();
  const list = needsYou();
  const [perm, setPerm] = useState(
    typeof Notification === 'undefined' ? 'unsupported' : Notification.permission,
  );
  useEffect(() => {
    if (perm !== 'granted') return;
    for (const n of list) {
      const key = `${n.s.session}/${n.since}`;
      if (notified.has(key)) continue;
      notified.add(key);
      new Notification(`coordbus: ${n.s.session} needs you`, { body: n.why });
    }
  });
  return html`<section>
    <div class="toolbar">
      ${perm === 'default' && html`<button onClick=${() => Notification.requestPermission().then(setPerm)}>enable browser notifications</button>`}
      ${perm === 'granted' && html`<span class="note">browser notifications on</span>`}
    </div>
    <table>
      <thead>
        <tr>
          <th>waiting since</th>
          <th>session</th>
          <th>task</th>
          <th>why</th>
        </tr>
      </thead>
      <tbody>
        ${list.map(
          (n) =>
            html`<tr data-testid="needs-row">
              <td class="num">${since(n.since)}</td>
              <td>${sessionLink(n.s.session)}</td>
              <td>${n.s.task || '—'}</td>
              <td>${n.why}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${!list.length && html`<p class="empty">Nobody is waiting on you. (Sessions show here when their last hook event is a Notification — a permission prompt or idle input — or when they stopped with pending orders.)</p>`}
  </section>`;
}

function Streams() {
  useTick();
  const [data, setData] = useState(null);
  const [err, setErr] = useState(null);
  useVersion();
  useEffect(() => {
    let stop = false;
    const load = () =>
      getJson('/v1/console/streams').then(
        (d) => stop || (setData(d), setErr(null)),
        (e) => stop || setErr(e.message),
      );
    load();
    const t = setInterval(load, 2000);
    return () => ((stop = true), clearInterval(t));
  }, []);
  const t = data?.rates_t ?? [];
  const spark = (testid, series) =>
    t.length > 1 ? html`<span data-testid=${testid}><${Sparkline} t=${t} series=${series} /></span>` : '';
  const dead = [...state.dead.values()].sort((a, b) => (a.id < b.id ? 1 : -1));
  const deadStream = {
    dci: 'coordIngest',
    dce: 'coordEvents',
    dso: 'sentinelObservations',
    dte: 'telemetryEvents',
    dje: 'jobEvents',
  };
  return html`<section>
    ${err && html`<p class="error">${err}</p>`}
    <table>
      <thead>
        <tr>
          <th>stream</th>
          <th>length</th>
          <th title="entries added per second (for a :dead stream: dead-lettered)">in/s</th>
          <th>group</th>
          <th title="entries the group acked per second (all replicas), and this archivist's archived rows">
            processed/s
          </th>
          <th>lag</th>
          <th>pending</th>
          <th>oldest pending</th>
          <th>consumers (idle)</th>
        </tr>
      </thead>
      <tbody>
        ${(data?.streams ?? []).flatMap((s) => {
          const groups = s.groups.length ? s.groups : [null];
          return groups.map(
            (g, i) =>
              html`<tr data-testid=${`stream-row-${s.key}`} data-group=${g?.group ?? ''}>
                <td>${i === 0 ? s.key : ''}</td>
                <td class="num">${i === 0 ? (s.exists ? s.length : 'absent') : ''}</td>
                <td>
                  ${i === 0 && s.added_rate ? spark('in-rate', [{ label: s.key.endsWith(':dead') ? 'dead-lettered' : 'added', values: s.added_rate, stroke: s.key.endsWith(':dead') ? '#ef4444' : '#60a5fa', fill: s.key.endsWith(':dead') ? '#ef444433' : '#60a5fa33' }]) : ''}
                </td>
                <td>${g?.group ?? '—'}</td>
                <td>
                  ${g ? spark('acked-rate', [{ label: 'acked', values: g.acked_rate, stroke: '#34d399', fill: '#34d39933' }, ...(g.group === 'archivist' && s.archived_rate ? [{ label: 'archived here', values: s.archived_rate, stroke: '#a78bfa' }] : [])]) : ''}
                </td>
                <td class="num">${g ? (g.lag ?? '?') : ''}</td>
                <td class="num">${g ? g.pending : ''}</td>
                <td class="num">${g?.oldest_pending_age_ms != null ? age(g.oldest_pending_age_ms) : ''}</td>
                <td>
                  ${g ? g.consumers.map((c) => html`<span class=${`consumer ${c.idle_ms > 60000 ? 'idle' : ''}`}>${c.name} (${age(c.idle_ms)}${c.pending ? `, ${c.pending} pending` : ''})</span>`) : ''}
                </td>
              </tr>`,
          );
        })}
      </tbody>
    </table>
    <h3>dead letters</h3>
    <table data-testid="dead-letters">
      <thead>
        <tr>
          <th>time</th>
          <th>stream</th>
          <th>entry</th>
          <th>code</th>
          <th>reason</th>
          <th>deliveries</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        ${dead.slice(0, PAGE).map(
          (d) =>
            html`<tr data-testid="dead-row">
              <td>${time(d.ts)}</td>
              <td>${deadStream[d.s]}</td>
              <td>${d.entry_id}</td>
              <td>${d.error_code}</td>
              <td class="reason">${d.reason}</td>
              <td class="num">${d.delivery_count}</td>
              <td>
                <${ActButton}
                  label="replay"
                  testid="redrive"
                  confirmText=${`Re-drive ${d.entry_id} back to ${deadStream[d.s]}?`}
                  run=${() => act('redrive', { stream: deadStream[d.s], id: d.id }).then(() => (state.dead.delete(`${d.s}/${d.id}`), changed()))}
                />
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${!dead.length && html`<p class="empty">No dead letters.</p>`}
  </section>`;
}

/** Search as one types: the request waits for a pause (300 ms), and an answer to an older query is dropped. */
function Search() {
  const [q, setQ] = useState('');
  const [res, setRes] = useState(null);
  const [err, setErr] = useState(null);
  const [busy, setBusy] = useState(false);
  const query = q.trim();
  const fetchPage = (cursor) =>
    getJson(
      `/v1/console/search?q=${encodeURIComponent(query)}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
  useEffect(() => {
    if (!query) {
      setRes(null);
      return undefined;
    }
    let stale = false;
    const t = setTimeout(() => {
      setBusy(true);
      fetchPage(null).then(
        (r) => stale || (setRes(r), setErr(null), setBusy(false)),
        (x) => stale || (setErr(x.message), setBusy(false)),
      );
    }, 300);
    return () => ((stale = true), clearTimeout(t));
  }, [query]);
  const more = () =>
    fetchPage(res.next_cursor).then(
      (r) => setRes({ ...r, results: [...res.results, ...r.results] }),
      (x) => setErr(x.message),
    );
  return html`<section>
    <form class="toolbar" onSubmit=${(e) => e.preventDefault()}>
      <input
        value=${q}
        onInput=${(e) => setQ(e.target.value)}
        placeholder="session id, ticket (TOD-42), words of a note, subject, resource or log line"
        data-testid="search"
        autofocus
      />
      <span class="note">${busy ? 'searching…' : ''}</span>
    </form>
    <p class="note">
      Every word must match (the last one as a prefix); message bodies are never archived, subjects are.
    </p>
    ${err && html`<p class="error">${err}</p>`}
    ${
      res &&
      html`<table data-testid="search-results">
          <thead>
            <tr>
              <th>time</th>
              <th>stream</th>
              <th>kind</th>
              <th>session</th>
              <th>resource</th>
              <th>what</th>
            </tr>
          </thead>
          <tbody>
            ${res.results.map(
              (r) =>
                html`<tr data-testid="search-row">
                  <td>${new Date(r.ts).toLocaleString()}</td>
                  <td>${r.stream}</td>
                  <td>${r.kind}</td>
                  <td>${sessionLink(r.session)}</td>
                  <td>${r.resource || ''}</td>
                  <td>${r.summary || r.status || ''}</td>
                </tr>`,
            )}
          </tbody>
        </table>
        ${res.next_cursor && html`<button data-testid="search-more" onClick=${more}>more results</button>`}
        ${!res.results.length && html`<p class="empty" data-testid="search-empty">No results: nothing archived matches ${res.q}.</p>`}`
    }
  </section>`;
}

function Audit() {
  useVersion();
  return html`<section>
    ${canAct() ? html`<${SendForms} />` : html`<p class="note">Read-only: log in with the operator token to act.</p>`}
    <h3>audit log (operator actions)</h3>
    <table data-testid="audit">
      <thead>
        <tr>
          <th>time</th>
          <th>who</th>
          <th>action</th>
          <th>target</th>
          <th>reason</th>
          <th>result</th>
        </tr>
      </thead>
      <tbody>
        ${state.audit.map(
          (a) =>
            html`<tr>
              <td>${time(a.ts)}</td>
              <td>${a.actor}</td>
              <td>${a.action}</td>
              <td>${a.target}</td>
              <td>${a.reason || ''}</td>
              <td>${badge(a.result)} ${a.error || ''}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${!state.audit.length && html`<p class="empty">No actions yet.</p>`}
  </section>`;
}

function Login({ message }) {
  const [err, setErr] = useState(null);
  return html`<form
    class="login"
    data-testid="login"
    onSubmit=${async (e) => {
      e.preventDefault();
      try {
        await login(e.target.token.value);
        location.reload();
      } catch (x) {
        setErr(x.message);
      }
    }}
  >
    <h2>coordbus console</h2>
    <p>${message}</p>
    <input
      type="password"
      name="token"
      placeholder="COORDBUS_API_TOKEN or COORDBUS_OPERATOR_TOKEN"
      autocomplete="off"
      required
    />
    <button>log in</button>
    ${err && html`<p class="error">${err}</p>`}
  </form>`;
}

const TABS = [
  ['sessions', 'Sessions'],
  ['needs', 'Needs you'],
  ['locks', 'Locks'],
  ['orders', 'Orders & messages'],
  ['jobs', 'Jobs'],
  ['telemetry', 'Telemetry'],
  ['streams', 'Stream health'],
  ['search', 'Search'],
  ['audit', 'Act & audit'],
];

function App() {
  useVersion();
  const { view, arg } = useRoute();
  const [refused, setRefused] = useState(null);
  useEffect(() => {
    getJson('/v1/console/whoami')
      .then((w) => {
        state.access = w;
        changed();
        return start();
      })
      .catch((e) => setRefused(e.status === 401 ? 'A token is required to read this console.' : e.message));
  }, []);
  if (refused) return html`<${Login} message=${refused} />`;
  if (!state.loaded) return html`<p class="loading">loading the fleet…</p>`;
  const needs = needsYou().length;
  const body =
    {
      sessions: () => html`<${Sessions} />`,
      session: () => html`<${SessionPage} id=${arg} />`,
      needs: () => html`<${NeedsYou} />`,
      locks: () => html`<${Locks} />`,
      orders: () => html`<${Orders} />`,
      jobs: () => html`<${Jobs} />`,
      job: () => html`<${JobPage} id=${arg} />`,
      telemetry: () => html`<${Telemetry} />`,
      streams: () => html`<${Streams} />`,
      search: () => html`<${Search} />`,
      audit: () => html`<${Audit} />`,
    }[view] ?? (() => html`<${Sessions} />`);
  return html`<div>
    <header>
      <h1>coordbus fleet</h1>
      <span class=${`conn c-${state.connection}`} data-testid="connection">${state.connection}</span>
      <span class="access">
        ${state.access.level === 'operator' ? badge('operator', 'ok') : html`${badge('read-only', 'warn')} ${state.access.actions_enabled ? html`<a href="#" onClick=${(e) => (e.preventDefault(), setRefused('Log in with the operator token to act.'))}>log in to act</a>` : html`<small>actions off (no COORDBUS_OPERATOR_TOKEN)</small>`}`}
        ${state.access.reads_need_token && html` <a href="#" onClick=${(e) => (e.preventDefault(), logout().then(() => location.reload()))}>log out</a>`}
      </span>
    </header>
    <nav>
      ${TABS.map(([k, label]) => html`<a class=${view === k || (view === 'session' && k === 'sessions') || (view === 'job' && k === 'jobs') ? 'on' : ''} href=${`#/${k}`}>${label}${k === 'needs' && needs ? html` <span class="count">${needs}</span>` : ''}</a>`)}
    </nav>
    <main>${body()}</main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));

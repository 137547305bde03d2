// The workshop's Class page (in cvlab; the instructor's key only): one row per seat with the furthest lesson, each
// exercise's check, the quiz skills, the best AP, the published models and who needs help, refreshed every second
// from GET /cvlab/workshop/progress (the same table `cvlab workshop progress` prints), with a CSV export and
// a seat's details on click. A seat's key gets 403 from the server, and the page says so.
import { ApiError, call, query, session } from './api.js';
import { formatDate, html, pct, useCallback, useEffect, useInterval, useRef, useState } from './lib.js';
import { Dialog, ErrorText, icon } from './ui.js';

const WORKSHOP = '/cvlab/workshop';
const REFRESH_MS = 1000;

function useStylesheet(href) {
  useEffect(() => {
    if (document.querySelector(`link[href="${href}"]`)) return;
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = href;
    document.head.appendChild(link);
  }, [href]);
}

/** The columns grouped for the two header rows: [{group, title, span}] then the columns themselves. */
function groups(columns) {
  const out = [];
  for (const c of columns) {
    const last = out[out.length - 1];
    if (last && c.group && last.group === c.group) last.span += 1;
    else out.push({ group: c.group, title: c.group_title || '', span: 1 });
  }
  return out;
}

/** The ids of the columns that open a group (a lesson, the quiz): they get a rule on their left. */
function groupStarts(columns) {
  return new Set(columns.filter((c, i) => c.group && (i === 0 || columns[i - 1].group !== c.group)).map((c) => c.id));
}

function Cell({ column, cell, onSeat, starts }) {
  const c = cell || { text: '', state: '', title: '' };
  if (column.id === 'seat') {
    return html`<th scope="row"><button type="button" class="link" onClick=${() => onSeat(c.text)}
      title="Details of this seat">${c.text}</button></th>`;
  }
  const start = starts.has(column.id) ? ' group-start' : '';
  return html`<td class=${`cell-${c.state || 'plain'} col-${column.id.split(':')[0]}${start}`} title=${c.title || undefined}
    data-column=${column.id}>${c.text}</td>`;
}

async function downloadCsv(params) {
  const res = await fetch(`${WORKSHOP}/progress${query({ ...params, format: 'csv' })}`,
    { headers: { 'Training-Key': session.trainingKey }, credentials: 'omit', cache: 'no-store' });
  if (!res.ok) throw new ApiError(res.status, String(res.status), `The CSV export failed (HTTP ${res.status}).`);
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = `class-progress-${new Date().toISOString().slice(0, 16).replace(/[:T]/g, '-')}.csv`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function SeatDetails({ seat, onClose }) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    call('GET', `${WORKSHOP}/seats/${encodeURIComponent(seat)}/progress`).then(setData, setError);
  }, [seat]);
  const exercises = Object.entries((data && data.exercises) || {});
  const lessons = Object.entries((data && data.lessons) || {}).sort();
  return html`<${Dialog} title=${`Seat ${seat}`} onClose=${onClose} size="wide">
    <${ErrorText} error=${error} />
    ${!data && !error && html`<p aria-busy="true">Loading…</p>`}
    ${data && html`
      <h3>Lessons</h3>
      ${lessons.length ? html`<ul>${lessons.map(([n, l]) => html`<li key=${n}>${n}: code cell ${l.cell} of
        ${l.cells ?? '?'} (${formatDate(l.at)})</li>`)}</ul>` : html`<p class="muted">No lesson reported yet.</p>`}
      <h3>Exercises</h3>
      ${exercises.length ? html`<table class="table"><thead><tr><th>Exercise</th><th>Status</th><th>Checks</th>
        <th>Last message</th></tr></thead><tbody>${exercises.map(([id, e]) => html`<tr key=${id}>
          <td>${e.lesson} ex ${e.number}</td><td>${e.passed ? 'passed' : 'failing'}</td>
          <td>${e.attempts} (${e.failed} failed)</td><td>${e.passed ? '' : e.error}</td></tr>`)}</tbody></table>`
        : html`<p class="muted">No exercise checked yet.</p>`}
      <h3>Quiz answers</h3>
      ${data.quiz.length ? html`<table class="table"><thead><tr><th>Question</th><th>Result</th><th>Mode</th>
        <th>When</th></tr></thead><tbody>${data.quiz.map((q, i) => html`<tr key=${i}><td>${q.question}</td>
          <td>${q.points}/${q.max_points}${q.correct ? ' (right)' : ''}</td><td>${q.mode}</td>
          <td>${formatDate(q.at)}</td></tr>`)}</tbody></table>` : html`<p class="muted">No quiz answer yet.</p>`}
      <h3>Iterations</h3>
      ${data.iterations.length ? html`<table class="table"><thead><tr><th>Project</th><th>Iteration</th>
        <th>Status</th><th>Precision</th><th>Recall</th><th>AP</th><th>Published</th><th>Where</th></tr></thead>
        <tbody>${data.iterations.map((it) => html`<tr key=${it.id}><td>${it.project}</td><td>${it.name}</td>
          <td>${it.status}</td><td>${pct((it.metrics || {}).precision)}</td><td>${pct((it.metrics || {}).recall)}</td>
          <td>${pct((it.metrics || {}).average_precision)}</td><td>${it.publish_name || ''}</td>
          <td>${it.source === 'seat' ? 'SDK (seat)' : 'laptop'}</td></tr>`)}</tbody></table>`
        : html`<p class="muted">No iteration yet.</p>`}`}
  </${Dialog}>`;
}

export function ClassPage({ TopBar, route }) {
  useStylesheet('/portal/class.css');
  const [table, setTable] = useState(null);
  const [error, setError] = useState(null);
  const [live, setLive] = useState(true);
  const [idle, setIdle] = useState(10);
  const [failures, setFailures] = useState(3);
  const [seat, setSeat] = useState(null);
  const busy = useRef(false);
  const params = { idleMinutes: idle, failures };
  const load = useCallback(async () => {
    if (busy.current) return;
    busy.current = true;
    try {
      setTable(await call('GET', `${WORKSHOP}/progress${query(params)}`));
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      busy.current = false;
    }
  }, [idle, failures]);
  useEffect(() => { load(); }, [load]);
  const refused = error && (error.status === 403 || error.status === 401);
  useInterval(load, REFRESH_MS, live && !refused);
  const columns = table ? table.columns : [];
  const starts = groupStarts(columns);
  const alerts = table ? table.rows.flatMap((r) => r.alerts.map((a) => [r.seat, a])) : [];
  return html`
    <${TopBar} route=${route} />
    <main class="page class-page" id="main">
      <div class="class-head">
        <h1>Class</h1>
        <span class="muted small" role="status">${table ? `${table.rows.length} seats · updated
          ${formatDate(table.generated)}` : ''}</span>
        <span class="spacer"></span>
        <label>Idle after <input type="number" min="1" max="1440" value=${idle} aria-label="Idle after minutes"
          onChange=${(e) => setIdle(Math.max(1, Number(e.currentTarget.value) || 10))} /> min</label>
        <label>Stuck after <input type="number" min="1" max="100" value=${failures}
          aria-label="Stuck after failed checks"
          onChange=${(e) => setFailures(Math.max(1, Number(e.currentTarget.value) || 3))} /> failed checks</label>
        <button type="button" class="toggle" aria-pressed=${live} onClick=${() => setLive(!live)}>
          Live refresh</button>
        <button type="button" class="secondary" disabled=${!table}
          onClick=${() => downloadCsv(params).catch(setError)}>${icon('download')} Download CSV</button>
      </div>
      ${refused ? html`<div class="alert error" role="alert">The Class page is the instructor's: ${error.message}
        Sign in with the instructor's training key (printed by <code>cvlab workshop serve</code>).</div>`
        : html`<${ErrorText} error=${error} />`}
      ${alerts.length > 0 && html`<section class="alert warning needs-help" aria-label="Needs help">
        <strong>Needs help</strong><ul>${alerts.map(([s, a], i) => html`<li key=${i}><button type="button"
          class="link" onClick=${() => setSeat(s)}>${s}</button>: ${a}</li>`)}</ul></section>`}
      ${table && html`<div class="class-scroll"><table class="table class-table" aria-label="Class progress">
        <thead>
          <tr>${groups(columns).map((g, i) => html`<th key=${i} colspan=${g.span} scope="colgroup"
            class=${g.group ? 'group-start' : ''} title=${g.title || undefined}>${g.group}</th>`)}</tr>
          <tr>${columns.map((c) => html`<th key=${c.id} scope="col" title=${c.title}
            class=${starts.has(c.id) ? 'group-start' : ''}>${c.label}</th>`)}</tr>
        </thead>
        <tbody>${table.rows.map((row) => html`<tr key=${row.seat} data-seat=${row.seat}
          class=${row.alerts.length ? 'needs-help' : ''}>
          ${columns.map((c) => html`<${Cell} key=${c.id} column=${c} cell=${row.cells[c.id]} onSeat=${setSeat}
            starts=${starts} />`)}
        </tr>`)}</tbody>
      </table></div>`}
      <p class="muted small">✓ the exercise's check passed · ✗n its check failed n times since it last passed · quiz
        cells: questions right the last time / answered. Hover a cell for details; click a seat for everything it
        reported.</p>
    </main>
    ${seat && html`<${SeatDetails} seat=${seat} onClose=${() => setSeat(null)} />`}`;
}

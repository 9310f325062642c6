// The portal's shared pieces: the API call (with the admin token), number formats, the
// loading / empty / error states, tables, badges, and the view lifecycle (a view's refresh timer
// and the generation that keeps a late answer from painting over the next view).

export const TOKEN_KEY = 'llm-gateway.admin-token';
export const view = document.getElementById('view');
export const actions = document.getElementById('actions');

/** The current view: its generation (bumped on every change) and its refresh timer. */
export const current = { generation: 0, timer: null };
/** Whether the view that asked at generation `gen` has since been left. */
export const stale = (gen) => gen !== current.generation;
/** Calls `fn` every `ms` (at least 2 s) while the view lasts and the tab is visible. */
export function every(ms, fn) {
  current.timer = setInterval(() => { if (!document.hidden) fn(); }, Math.max(ms, 2000));
}

export function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}
const nf = new Intl.NumberFormat('en-US');
export const int = (v) => nf.format(Math.round(v || 0));
export const usd = (v) => (v >= 100 ? '$' + nf.format(Math.round(v)) : '$' + (v || 0).toFixed(v < 0.01 && v > 0 ? 6 : 4));
export const pct = (v) => ((v || 0) * 100).toFixed(1) + '%';
export const ms = (v) => (v == null ? '—' : v >= 1000 ? (v / 1000).toFixed(2) + ' s' : Math.round(v) + ' ms');
export const compact = (v) => new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 }).format(v || 0);
export const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');
export const num = (v, d = 2) => (v == null ? '—' : Number(v).toFixed(d));
export const bucketLabel = (iso, bucket) => {
  const d = new Date(iso);
  return bucket === 'day' ? d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' }) : d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
};

/** A call to the gateway, with the admin token when one is stored. */
export async function api(path, init = {}) {
  const headers = { ...(init.headers || {}) };
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (init.body && typeof init.body !== 'string') {
    headers['Content-Type'] = 'application/json';
    init = { ...init, body: JSON.stringify(init.body) };
  }
  const res = await fetch(path, { ...init, headers });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!res.ok) {
    const msg = json?.error?.message || text || res.statusText;
    const hint = res.status === 401 || res.status === 403 ? ' — set the admin token in the sidebar.' : '';
    const err = new Error(`${res.status}: ${msg}${hint}`);
    err.status = res.status;
    err.body = json;
    throw err;
  }
  return json;
}

export const loading = (what = 'Loading') => `<div class="state" role="status"><span class="spinner"></span>${esc(what)}…</div>`;
export const empty = (html) => `<div class="state empty">${html}</div>`;
export const failed = (err) => `<div class="state error" role="alert">Could not load: ${esc(err.message)}</div>`;
/** A view's one-line description, under its title. */
export const lede = (text) => `<p class="lede">${text}</p>`;

/** columns: [{label, num?, wrap?, value(row) | html(row)}]; opts.clickable makes rows focusable. */
export function table(columns, rows, opts = {}) {
  const cls = (c) => [c.num ? 'num' : '', c.wrap ? 'wrap' : ''].join(' ').trim();
  const head = columns.map((c) => `<th class="${cls(c)}" scope="col">${esc(c.label)}</th>`).join('');
  const body = rows.map((r, i) => {
    const cells = columns.map((c) => `<td class="${cls(c)}">${c.html ? c.html(r) : esc(c.value(r))}</td>`).join('');
    return opts.clickable ? `<tr class="clickable" tabindex="0" data-row="${i}">${cells}</tr>` : `<tr>${cells}</tr>`;
  }).join('');
  return `<div class="scroll"><table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}

/** Makes the clickable rows of `root` open `rows[i]` on click, Enter or Space. */
export function onRows(root, rows, open) {
  root.querySelectorAll('tr.clickable').forEach((tr) => {
    const go = () => open(rows[Number(tr.dataset.row)], tr);
    tr.onclick = go;
    tr.onkeydown = (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); go(); } };
  });
}

export const badge = (text, kind) => `<span class="badge ${esc(kind)}">${esc(text)}</span>`;
export const outcomeBadge = (o) => badge(o, o === 'ok' ? 'ok' : o === 'mitigated' ? 'mitigated' : 'error');
export const breakerBadge = (state) => badge('breaker ' + state, state === 'closed' ? 'ok' : state === 'half_open' ? 'mitigated' : 'error');

/** A view that loads once: `load()` resolves to the view's HTML (or throws). */
export async function once(gen, what, load, after) {
  view.innerHTML = loading(what);
  try {
    const html = await load();
    if (stale(gen)) return;
    view.innerHTML = html;
    if (after) after();
  } catch (err) {
    if (!stale(gen)) view.innerHTML = failed(err);
  }
}

export function curlExample() {
  return `curl ${location.origin}/v1/chat/completions \\
  -H "Content-Type: application/json" \\
  -H "x-project: my-project" \\
  -H "x-source: my-tool" \\
  -d '{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}]}'`;
}

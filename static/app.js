// The portal: hash-routed views over the gateway's JSON endpoints. Each view makes a bounded
// number of calls (listed beside it) and shows a loading, an empty and an error state.
import { chart } from './chart.js';

const TOKEN_KEY = 'llm-gateway.admin-token';
const view = document.getElementById('view');
const title = document.getElementById('title');
const actions = document.getElementById('actions');
let timer = null; // the current view's refresh, cleared on every view change
let generation = 0; // bumps on every view change, so a late answer never paints over a new view

// ---------- helpers ----------
export function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}
const nf = new Intl.NumberFormat('en-US');
const int = (v) => nf.format(Math.round(v || 0));
const usd = (v) => (v >= 100 ? '$' + nf.format(Math.round(v)) : '$' + (v || 0).toFixed(v < 0.01 && v > 0 ? 6 : 4));
const pct = (v) => ((v || 0) * 100).toFixed(1) + '%';
const ms = (v) => (v == null ? '—' : v >= 1000 ? (v / 1000).toFixed(2) + ' s' : Math.round(v) + ' ms');
const compact = (v) => new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 }).format(v || 0);
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');
const hourLabel = (iso, bucket) => {
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
    throw err;
  }
  return json;
}

const loading = (what = 'Loading') => `<div class="state" role="status"><span class="spinner"></span>${esc(what)}…</div>`;
const empty = (html) => `<div class="state empty">${html}</div>`;
const failed = (err) => `<div class="state error" role="alert">Could not load: ${esc(err.message)}</div>`;

function table(columns, rows, opts = {}) {
  const head = columns.map((c) => `<th class="${c.num ? 'num' : ''}" scope="col">${esc(c.label)}</th>`).join('');
  const body = rows.map((r, i) => {
    const cells = columns.map((c) => `<td class="${c.num ? 'num' : ''}">${c.html ? c.html(r) : esc(c.value(r))}</td>`).join('');
    return opts.clickable ? `<tr class="clickable" tabindex="0" data-row="${i}">${cells}</tr>` : `<tr>${cells}</tr>`;
  }).join('');
  return `<div class="scroll"><table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}

const badge = (text, kind) => `<span class="badge ${esc(kind)}">${esc(text)}</span>`;
const outcomeBadge = (o) => badge(o, o === 'ok' ? 'ok' : o === 'mitigated' ? 'mitigated' : 'error');

// ---------- Overview: 2 calls (GET /v1/stats, GET /v1/stats/timeseries), refreshed every 15 s ----------
async function overview(gen) {
  actions.innerHTML = `<label>Range <select id="range"><option value="hour">last 24 hours</option><option value="day">last 30 days</option></select></label><span id="updated"></span>`;
  const range = document.getElementById('range');
  range.value = sessionStorage.getItem('overview.range') || 'hour';
  range.onchange = () => { sessionStorage.setItem('overview.range', range.value); paint(true); };
  view.innerHTML = loading('Loading the overview');
  async function paint(first) {
    const bucket = range.value;
    try {
      const [stats, series] = await Promise.all([api('/v1/stats'), api(`/v1/stats/timeseries?bucket=${bucket}`)]);
      if (gen !== generation) return;
      document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
      view.innerHTML = renderOverview(stats, series);
    } catch (err) {
      if (gen !== generation) return;
      if (first) view.innerHTML = failed(err);
      else document.getElementById('updated').textContent = 'refresh failed: ' + err.message;
    }
  }
  await paint(true);
  timer = setInterval(() => { if (!document.hidden) paint(false); }, 15000);
}

function renderOverview(s, series) {
  const errorRate = s.total_requests ? s.failed_requests / s.total_requests : 0;
  const kpi = (id, label, value, sub = '') => `<div class="panel kpi" data-kpi="${id}"><div class="label">${label}</div><div class="value">${value}</div><div class="sub">${sub}</div></div>`;
  const kpis = `<section class="grid kpis" aria-label="Totals">
    ${kpi('requests', 'Requests', int(s.total_requests), `${int(s.successful_requests)} succeeded`)}
    ${kpi('spend', 'Spend', usd(s.total_cost_usd), s.unpriced_requests ? `${int(s.unpriced_requests)} unpriced` : 'all priced')}
    ${kpi('tokens', 'Tokens', int(s.total_tokens), `${compact(s.input_tokens)} in · ${compact(s.output_tokens)} out`)}
    ${kpi('error-rate', 'Error rate', pct(errorRate), `${int(s.failed_requests)} failed`)}
    ${kpi('latency', 'Mean latency', ms(s.avg_latency_ms), 'end to end')}
    ${kpi('cache', 'Cached input', pct(s.input_tokens ? s.cached_input_tokens / s.input_tokens : 0), 'of input tokens')}
  </section>`;
  if (!s.total_requests) {
    return kpis + `<div class="panel" style="margin-top:14px">${empty(`No requests yet. Send one through the gateway:<pre>${esc(curlExample())}</pre>`)}</div>`;
  }
  const b = series.buckets;
  const labels = b.map((x) => hourLabel(x.start, series.bucket));
  const span = series.bucket === 'day' ? 'per day, last 30 days' : 'per hour, last 24 hours';
  const box = (name, html) => `<div class="panel chart"><h2>${name} <span class="muted" style="text-transform:none;font-weight:400">${span}</span></h2>${html}</div>`;
  const charts = `<section class="grid charts" aria-label="Over time">
    ${box('Requests', chart([{ name: 'requests', color: '#2f5bea', values: b.map((x) => x.requests) }, { name: 'errors', color: '#c0362c', values: b.map((x) => x.errors) }], labels, { kind: 'bar', format: compact, title: 'Requests' }))}
    ${box('Spend', chart([{ name: 'USD', color: '#0f9d8a', values: b.map((x) => x.cost_usd) }], labels, { format: (v) => '$' + (v === 0 ? '0' : v < 1 ? Number(v.toPrecision(2)).toString() : compact(v)), title: 'Spend' }))}
    ${box('Tokens', chart([{ name: 'input', color: '#6d4de0', values: b.map((x) => x.input_tokens) }, { name: 'output', color: '#e08a1e', values: b.map((x) => x.output_tokens) }], labels, { format: compact, title: 'Tokens' }))}
    ${box('Latency and errors', chart([{ name: 'mean latency (ms)', color: '#2f5bea', values: b.map((x) => x.avg_latency_ms) }], labels, { format: compact, title: 'Latency' }) + `<div class="muted" style="font-size:12px">error rate over the range: ${pct(errorRate)}</div>`)}
  </section>`;
  const breakdown = (name, key) => {
    const rows = Object.entries(s[key] || {}).map(([k, v]) => ({ k, ...v })).sort((a, c) => c.requests - a.requests).slice(0, 8);
    const body = rows.length ? table([
      { label: name, value: (r) => r.k },
      { label: 'Requests', num: true, value: (r) => int(r.requests) },
      { label: 'Errors', num: true, value: (r) => int(r.errors) },
      { label: 'Tokens', num: true, value: (r) => compact(r.input_tokens + r.output_tokens) },
      { label: 'Spend', num: true, value: (r) => (r.pricing === 'unpriced' ? 'unpriced' : usd(r.cost_usd)) },
    ], rows) : empty('None in this range.');
    return `<div class="panel" data-breakdown="${key}"><h2>By ${name.toLowerCase()}</h2>${body}</div>`;
  };
  const breakdowns = `<section class="grid breakdowns" aria-label="Breakdowns">${breakdown('Model', 'by_model')}${breakdown('Provider', 'by_provider')}${breakdown('Source', 'by_source')}${breakdown('Project', 'by_project')}${breakdown('Key label', 'by_key_label')}</section>`;
  return kpis + charts + breakdowns;
}

function curlExample() {
  return `curl ${location.origin}/v1/chat/completions \\
  -H "Content-Type: application/json" \\
  -H "x-project: my-project" -H "x-source: my-tool" \\
  -d '{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}]}'`;
}

// ---------- Records: 1 call per page (GET /v1/records with the filters) ----------
const RECORD_FILTERS = ['project', 'source', 'model', 'provider', 'key_label', 'status', 'since', 'until'];
async function records(gen) {
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const inputs = RECORD_FILTERS.map((f) => f === 'status'
    ? `<label>status<select name="status"><option value="">any</option>${['ok', 'error', 'mitigated'].map((o) => `<option${params.get('status') === o ? ' selected' : ''}>${o}</option>`).join('')}</select></label>`
    : `<label>${f.replace('_', ' ')}<input name="${f}" value="${esc(params.get(f) || '')}" placeholder="${f === 'since' || f === 'until' ? '2026-12-01T00:00:00Z' : 'any'}"></label>`).join('');
  view.innerHTML = `<form class="filters panel" id="filters">${inputs}<button type="submit">Filter</button><button type="button" class="ghost" id="clear">Clear</button></form><div class="split"><div class="panel" id="list">${loading('Loading records')}</div><aside class="panel detail" id="detail"><p class="muted">Select a record to see its route trace, attempts, findings and signals.</p></aside></div>`;
  const form = document.getElementById('filters');
  form.onsubmit = (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) q.set(k, v);
    location.hash = 'records' + (q.toString() ? '?' + q : '');
  };
  document.getElementById('clear').onclick = () => { location.hash = 'records'; };
  const limit = 50;
  const offset = Number(params.get('offset') || 0);
  const q = new URLSearchParams();
  for (const f of RECORD_FILTERS) if (params.get(f)) q.set(f, params.get(f));
  q.set('limit', limit); q.set('offset', offset);
  const list = document.getElementById('list');
  try {
    const page = await api('/v1/records?' + q);
    if (gen !== generation) return;
    if (!page.data.length) { list.innerHTML = empty(offset ? 'No more records.' : 'No records match these filters.'); return; }
    list.innerHTML = table([
      { label: 'Time', value: (r) => when(r.timestamp) },
      { label: 'Outcome', html: (r) => outcomeBadge(r.outcome) },
      { label: 'Status', num: true, value: (r) => r.status },
      { label: 'Model', value: (r) => r.model_used || r.model_requested || '—' },
      { label: 'Provider', value: (r) => r.provider_id || '—' },
      { label: 'Project', value: (r) => r.project || '—' },
      { label: 'Tokens', num: true, value: (r) => int(r.input_tokens + r.output_tokens) },
      { label: 'Cost', num: true, value: (r) => (r.cost_usd == null ? '—' : usd(r.cost_usd)) },
      { label: 'Latency', num: true, value: (r) => ms(r.latency_ms) },
    ], page.data, { clickable: true }) + pager(q, offset, page.data.length, limit, page.has_more);
    list.querySelectorAll('tr.clickable').forEach((tr) => {
      const open = () => showRecord(page.data[Number(tr.dataset.row)]);
      tr.onclick = open;
      tr.onkeydown = (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(); } };
    });
  } catch (err) {
    if (gen === generation) list.innerHTML = failed(err);
  }
}

function pager(q, offset, shown, limit, more) {
  const link = (o, text) => { const p = new URLSearchParams(q); p.delete('limit'); p.set('offset', o); return `<a href="#records?${p}">${text}</a>`; };
  return `<p class="muted">Records ${offset + 1}–${offset + shown} ${offset > 0 ? link(Math.max(0, offset - limit), '← newer') : ''} ${more ? link(offset + limit, 'older →') : ''}</p>`;
}

function showRecord(r) {
  const findings = r.sanitizer_findings && Object.keys(r.sanitizer_findings).length
    ? Object.entries(r.sanitizer_findings).map(([k, n]) => badge(`${k} × ${n}`, 'mitigated')).join(' ') : '<span class="muted">none</span>';
  const row = (k, v) => `<dt>${esc(k)}</dt><dd>${v}</dd>`;
  document.getElementById('detail').innerHTML = `<h2>Record</h2><dl>
    ${row('request id', `<code>${esc(r.id)}</code>`)}
    ${row('time', esc(when(r.timestamp)))}
    ${row('outcome', outcomeBadge(r.outcome) + ' ' + esc(r.status))}
    ${r.error_kind ? row('error', esc(`${r.error_kind}: ${r.error_message || ''}`)) : ''}
    ${row('endpoint', esc(r.endpoint))}
    ${row('model', esc(`${r.model_requested || '—'} → ${r.model_used || '—'}`))}
    ${row('provider', esc(`${r.provider_id || '—'} (${r.provider_type || '—'})`))}
    ${row('attempts', esc(r.attempts) + (r.attempts > 1 ? ' (failed over)' : ''))}
    ${row('translated', esc(r.translated || 'no'))}
    ${row('latency', esc(`${ms(r.latency_ms)}; first byte ${ms(r.ttfb_ms)}${r.streamed ? ', streamed' : ''}`))}
    ${row('tokens', esc(`${int(r.input_tokens)} in (${int(r.cached_input_tokens)} cached) · ${int(r.output_tokens)} out${r.usage_estimated ? ' · estimated' : ''}`))}
    ${row('cost', esc(r.cost_usd == null ? 'unpriced' : usd(r.cost_usd)))}
  </dl><h2 style="margin-top:14px">Route trace</h2><dl>
    ${row('profile', esc(r.route_profile || 'none (explicit model)'))}
    ${row('rank', esc(r.route_rank ?? '—'))}
    ${row('needs', esc((r.needs || []).join(', ') || 'nothing special'))}
    ${row('prompt tokens', esc(r.prompt_tokens_estimate ?? '—'))}
    ${row('max tokens', esc(r.max_tokens ?? '—'))}
  </dl><h2 style="margin-top:14px">Sanitizer findings</h2><p>${findings}</p>
  <p class="muted">Identity: project ${esc(r.project || '—')}, source ${esc(r.source || '—')}, key ${esc(r.key_label || '—')}.</p>`;
}

// ---------- Errors: 1 call (GET /v1/errors) ----------
async function errors(gen) {
  const impact = new URLSearchParams(location.hash.split('?')[1] || '').get('impact') || '';
  actions.innerHTML = `<label>Impact <select id="impact"><option value="">all</option><option value="customer_impacting">customer-impacting</option><option value="mitigated">mitigated</option></select></label>`;
  const sel = document.getElementById('impact');
  sel.value = impact;
  sel.onchange = () => { location.hash = 'errors' + (sel.value ? '?impact=' + sel.value : ''); };
  view.innerHTML = loading('Loading failed attempts');
  try {
    const page = await api('/v1/errors?limit=100' + (impact ? '&impact=' + impact : ''));
    if (gen !== generation) return;
    const c = page.counts.by_impact;
    const kinds = Object.entries(page.counts.by_kind).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${badge(k, 'neutral')} ${int(n)}`).join(' &nbsp; ');
    const tiles = `<section class="grid impact"><div class="panel bad" data-impact="customer_impacting"><div class="kpi"><div class="label">Customer-impacting</div><div class="value">${int(c.customer_impacting)}</div><div class="sub">no attempt of the request succeeded: the client saw an error</div></div></div>
      <div class="panel mitigated" data-impact="mitigated"><div class="kpi"><div class="label">Mitigated</div><div class="value">${int(c.mitigated)}</div><div class="sub">a later attempt succeeded: failover saved the request</div></div></div></section>`;
    if (!page.errors.length) { view.innerHTML = tiles + `<div class="panel">${empty('No failed upstream attempts. Requests refused before any provider was tried are under Records → status error.')}</div>`; return; }
    view.innerHTML = tiles + `<div class="panel"><p>${kinds}</p>${table([
      { label: 'Time', value: (e) => when(e.ts) },
      { label: 'Impact', html: (e) => badge(e.impact === 'mitigated' ? 'mitigated' : 'customer-impacting', e.impact) },
      { label: 'Provider', value: (e) => e.provider },
      { label: 'Model', value: (e) => e.model || '—' },
      { label: 'Attempt', num: true, value: (e) => e.attempt },
      { label: 'Kind', value: (e) => e.error_kind },
      { label: 'Status', num: true, value: (e) => e.status ?? '—' },
      { label: 'Message', value: (e) => (e.message || '').slice(0, 90) },
      { label: 'Request', html: (e) => `<code title="${esc(e.request_id)}">${esc(e.request_id.slice(0, 8))}…</code>` },
    ], page.errors)}<p class="muted">Showing ${page.errors.length} of ${int(page.total)}.</p></div>`;
  } catch (err) {
    if (gen === generation) view.innerHTML = failed(err);
  }
}

// ---------- Routing visualiser: 1 call to load (GET /v1/profiles), 1 per run (POST /v1/route) ----------
const CAPABILITIES = ['tools', 'vision', 'json_mode', 'streaming', 'pdf', 'reasoning'];
async function routing(gen) {
  view.innerHTML = loading('Loading the routing profiles');
  let profiles;
  try { profiles = await api('/v1/profiles'); } catch (err) { if (gen === generation) view.innerHTML = failed(err); return; }
  if (gen !== generation) return;
  const options = profiles.map((p) => `<option value="${esc(p.id)}"${p.default ? ' selected' : ''}>${esc(p.id)}${p.default ? ' (default)' : ''}</option>`).join('');
  view.innerHTML = `<form class="panel" id="route-form"><div class="route-form">
    <label>Profile<select name="profile">${options}</select></label>
    <label>Prompt<textarea name="prompt" rows="2">Refactor this function to use iterators.</textarea></label>
    <label>Max tokens<input name="max_tokens" type="number" min="1" placeholder="none"></label>
    <button type="submit">Route</button></div>
    <fieldset class="caps" style="border:0;padding:0"><legend class="muted" style="font-size:12px">Requires</legend>${CAPABILITIES.map((c) => `<label><input type="checkbox" name="cap" value="${c}"> ${c}</label>`).join('')}</fieldset>
  </form><div id="route-out">${empty('Pick a profile and requirements, then Route: the five layers appear here.')}</div>`;
  const form = document.getElementById('route-form');
  form.onsubmit = async (e) => {
    e.preventDefault();
    const fd = new FormData(form);
    const requirements = { capabilities: fd.getAll('cap') };
    if (fd.get('max_tokens')) requirements.max_tokens = Number(fd.get('max_tokens'));
    const body = { profile: fd.get('profile'), requirements, messages: [{ role: 'user', content: fd.get('prompt') || '' }] };
    const out = document.getElementById('route-out');
    out.innerHTML = loading('Routing');
    try {
      out.innerHTML = renderRoute(await api('/v1/route', { method: 'POST', body }));
    } catch (err) { out.innerHTML = failed(err); }
  };
  form.requestSubmit();
}

function renderRoute(r) {
  const name = (c) => `${c.provider}/${c.model}`;
  const layers = (r.layers || []).map((l) => {
    const dropped = (l.dropped || []).map((d) => `<li title="${esc(d.reason)}">${esc(name(d))}: ${esc(d.reason)}</li>`).join('');
    const entered = Array.isArray(l.entered) ? l.entered.length : (l.entered ?? '');
    return `<div class="panel layer" data-layer="${l.layer}"><div class="step">Layer ${l.layer}</div><h3>${esc(l.name)}</h3>
      <div class="count">${int(l.kept)} <span class="muted" style="font-size:12px;font-weight:400">kept${entered !== '' ? ` of ${int(entered)}` : ''}</span></div>
      ${dropped ? `<ul class="dropped">${dropped}</ul>` : '<p class="muted" style="font-size:12px">nothing dropped</p>'}</div>`;
  }).join('');
  const scores = (r.scores || []).slice(0, 10);
  const part = (p) => (p ? `${p.normalised.toFixed(2)} × ${Number(p.weight).toFixed(2)} <span class="muted">(${esc(p.basis)})</span>` : '—');
  const scoreTable = scores.length ? table([
    { label: 'Candidate', value: name },
    { label: 'Total', num: true, value: (s) => s.total.toFixed(3) },
    { label: 'Cost', html: (s) => part(s.cost) },
    { label: 'Latency', html: (s) => part(s.latency) },
    { label: 'Quality', html: (s) => part(s.quality) },
  ], scores) : empty('No scores.');
  const ranking = (r.ranking || []).map((x) => `<li>${esc(name(x))} <span class="muted">${x.score.toFixed(3)}</span></li>`).join('');
  return `<div class="panel" style="margin-top:14px" data-decision><h2>Decision</h2><p style="font-size:16px;margin:0"><strong>${esc(r.provider)}/${esc(r.model)}</strong> under <code>${esc(r.profile)}</code>, decided by ${esc(r.decided_by || 'score')}; needs ${esc((r.needs?.capabilities || []).join(', ') || 'nothing special')}, ~${int(r.needs?.prompt_tokens)} prompt tokens.</p></div>
    <div class="layers">${layers}</div>
    <div class="grid" style="grid-template-columns: minmax(0, 2fr) minmax(0, 1fr); margin-top: 14px"><div class="panel"><h2>Scores (layer 4, top 10)</h2>${scoreTable}</div><div class="panel"><h2>Ranking (layer 5)</h2><ol>${ranking}</ol></div></div>`;
}

// ---------- Model catalog: 1 call (GET /v1/catalog?served=true) ----------
async function catalog(gen) {
  view.innerHTML = loading('Loading the catalog');
  try {
    const cat = await api('/v1/catalog?served=true');
    if (gen !== generation) return;
    if (!cat.models.length) { view.innerHTML = `<div class="panel">${empty('No model is served by a configured provider. Add a provider in config.toml.')}</div>`; return; }
    const card = (m) => {
      const serving = m.serving || [];
      const live = serving.find((s) => s.live)?.live;
      const num = (v, d = 2) => (v == null ? '—' : Number(v).toFixed(d));
      const caps = (m.capabilities || []).map((c) => `<span class="tag">${esc(c)}</span>`).join('');
      const recent = serving.find((s) => s.signals)?.signals?.recent;
      const breakers = serving.map((s) => `${esc(s.provider)} · ${badge('breaker ' + s.breaker, s.breaker === 'closed' ? 'ok' : 'error')}`).join(' ');
      return `<article class="panel card"><h3>${esc(m.id)}</h3><div class="provider">${breakers || esc(m.provider_type || '')}</div>
        <div class="tags">${caps}</div>
        <div class="pair"><span class="h"></span><span class="h">prior (card)</span><span class="h">live</span>
        <span>input $/M</span><span>${num(m.input_per_mtok)}</span><span class="muted">—</span>
        <span>output $/M</span><span>${num(m.output_per_mtok)}</span><span class="muted">—</span>
        <span>first token</span><span>${ms(m.latency?.ttft_ms)}</span><span>${live?.ttft_ms_p50 != null ? ms(live.ttft_ms_p50) : '—'}</span>
        <span>tokens/s</span><span>${num(m.latency?.output_tokens_per_s, 0)}</span><span>${num(live?.output_tokens_per_s_p50, 0)}</span>
        <span>quality</span><span>${num(m.quality?.general)}</span><span>${num(recent)}</span>
        <span>error rate</span><span class="muted">—</span><span>${live ? pct(live.error_rate) + ` <span class="muted">(${int(live.attempts)})</span>` : '—'}</span>
        <span>context</span><span>${compact(m.context_window)}</span><span></span></div></article>`;
    };
    view.innerHTML = `<p class="muted">${cat.models.length} models served${cat.live ? '' : ' · live figures need the admin token'} · live after ${cat.min_live_samples} samples.</p><section class="grid cards">${cat.models.map(card).join('')}</section>`;
  } catch (err) {
    if (gen === generation) view.innerHTML = failed(err);
  }
}

// ---------- Projects live: 1 call every 5 s (GET /v1/projects) ----------
async function projects(gen) {
  view.innerHTML = loading('Loading projects');
  actions.innerHTML = '<span id="updated"></span>';
  async function paint(first) {
    try {
      const list = await api('/v1/projects');
      if (gen !== generation) return;
      document.getElementById('updated').textContent = 'live · updated ' + new Date().toLocaleTimeString();
      const data = list.data || list;
      view.innerHTML = data.length ? `<div class="panel">${table([
        { label: 'Project', html: (p) => `<a href="#records?project=${encodeURIComponent(p.id)}">${esc(p.id)}</a>` },
        { label: 'Last seen', value: (p) => when(p.last_seen) },
        { label: 'Requests', num: true, value: (p) => int(p.requests) },
        { label: 'Success', num: true, value: (p) => pct(p.success_rate) },
        { label: 'Tokens', num: true, value: (p) => compact(p.input_tokens + p.output_tokens) },
        { label: 'Spend', num: true, value: (p) => usd(p.cost_usd) },
        { label: 'Sources', value: (p) => p.sources.join(', ') },
        { label: 'Models', value: (p) => p.models.join(', ') },
      ], data)}</div>` : `<div class="panel">${empty(`No project yet. Name one with the <code>x-project</code> header:<pre>${esc(curlExample())}</pre>`)}</div>`;
    } catch (err) {
      if (gen !== generation) return;
      if (first) view.innerHTML = failed(err);
      else document.getElementById('updated').textContent = 'refresh failed: ' + err.message;
    }
  }
  await paint(true);
  timer = setInterval(() => { if (!document.hidden) paint(false); }, 5000);
}

// ---------- Requesters (x-source): 1 call (GET /v1/sources) ----------
async function sources(gen) {
  view.innerHTML = loading('Loading requesters');
  try {
    const list = (await api('/v1/sources')).data;
    if (gen !== generation) return;
    if (!list.length) { view.innerHTML = `<div class="panel">${empty('No requests yet. Tools name themselves with the <code>x-source</code> header.')}</div>`; return; }
    const top = Math.max(...list.map((x) => x.requests));
    view.innerHTML = `<div class="panel">${table([
      { label: 'Requester', html: (x) => `<a href="#records?source=${encodeURIComponent(x.source)}">${esc(x.source)}</a>` },
      { label: 'Requests', num: true, value: (x) => int(x.requests) },
      { label: '', html: (x) => `<svg width="120" height="10" aria-hidden="true"><rect width="${(120 * x.requests) / top}" height="10" rx="2" fill="#2f5bea"/></svg>` },
      { label: 'Success', html: (x) => badge(pct(x.success_rate), x.success_rate >= 0.99 ? 'ok' : x.success_rate >= 0.9 ? 'mitigated' : 'error') },
      { label: 'Tokens', num: true, value: (x) => compact(x.input_tokens + x.output_tokens) },
      { label: 'Spend', num: true, value: (x) => usd(x.cost_usd) },
      { label: 'Models', value: (x) => Object.entries(x.by_model).map(([m, b]) => `${m} (${b.requests})`).join(', ') },
    ], list)}</div>`;
  } catch (err) {
    if (gen === generation) view.innerHTML = failed(err);
  }
}

// ---------- shell ----------
const VIEWS = {
  overview: ['Overview', overview],
  records: ['Records', records],
  errors: ['Errors', errors],
  routing: ['Routing visualiser', routing],
  catalog: ['Model catalog', catalog],
  projects: ['Projects', projects],
  sources: ['Requesters', sources],
};

function show() {
  const name = (location.hash.slice(1).split('?')[0]) || 'overview';
  const [label, render] = VIEWS[name] || VIEWS.overview;
  clearInterval(timer);
  timer = null;
  generation += 1;
  title.textContent = label;
  document.title = `${label} · llm-gateway`;
  actions.innerHTML = '';
  document.querySelectorAll('#nav a').forEach((a) => { if (a.dataset.view === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current'); });
  document.body.dataset.view = name;
  delete document.body.dataset.ready;
  const gen = generation;
  render(gen).finally(() => { if (gen === generation) document.body.dataset.ready = name; });
}

const tokenInput = document.getElementById('token');
tokenInput.value = localStorage.getItem(TOKEN_KEY) || '';
document.getElementById('token-form').onsubmit = (e) => {
  e.preventDefault();
  if (tokenInput.value) localStorage.setItem(TOKEN_KEY, tokenInput.value); else localStorage.removeItem(TOKEN_KEY);
  document.getElementById('token-state').textContent = tokenInput.value ? 'Token saved in this browser.' : 'No token: the endpoints answer on loopback only.';
  show();
};
window.addEventListener('hashchange', show);
show();

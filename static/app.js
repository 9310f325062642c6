// The portal: hash-routed views over the gateway's JSON endpoints. Each view makes a bounded
// number of calls (listed beside it) and shows a loading, an empty and an error state. This file
// holds the shell and the usage views; routing.js the routing views, manage.js the rest.
import { chart } from './chart.js';
import {
  TOKEN_KEY, view, actions, current, stale, every, esc, int, usd, pct, ms, compact, when,
  bucketLabel, api, loading, empty, failed, lede, table, onRows, badge, outcomeBadge, once, curlExample,
} from './ui.js';
import { routing, catalog, profiles, signals } from './routing.js';
import { providers, keys, ask, start } from './manage.js';

const title = document.getElementById('title');

// ---------- Overview: 2 calls (GET /v1/stats, GET /v1/stats/timeseries), refreshed every 15 s ----------
async function overview(gen) {
  actions.innerHTML = `<label>Range <select id="range"><option value="hour">last 24 hours</option><option value="day">last 30 days</option></select></label><span id="updated"></span>`;
  const range = document.getElementById('range');
  range.value = sessionStorage.getItem('overview.range') || 'hour';
  range.onchange = () => { sessionStorage.setItem('overview.range', range.value); paint(true); };
  view.innerHTML = loading('Loading the overview');
  async function paint(first) {
    const bucket = range.value;
    // The totals cover the window of the charts (whole buckets up to the current one), so
    // both read the hourly rollups alone.
    const size = bucket === 'day' ? 86400e3 : 3600e3;
    const since = new Date(Math.ceil(Date.now() / size) * size - (bucket === 'day' ? 30 : 24) * size).toISOString();
    try {
      const [stats, series] = await Promise.all([api(`/v1/stats?since=${encodeURIComponent(since)}`), api(`/v1/stats/timeseries?bucket=${bucket}`)]);
      if (stale(gen)) return;
      document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
      view.innerHTML = renderOverview(stats, series);
    } catch (err) {
      if (stale(gen)) return;
      if (first) view.innerHTML = failed(err);
      else document.getElementById('updated').textContent = 'refresh failed: ' + err.message;
    }
  }
  await paint(true);
  every(15000, () => paint(false));
}

function renderOverview(s, series) {
  const errorRate = s.total_requests ? s.failed_requests / s.total_requests : 0;
  const kpi = (id, label, value, sub = '') => `<div class="panel kpi" data-kpi="${id}"><div class="label">${label}</div><div class="value">${value}</div><div class="sub">${sub}</div></div>`;
  const p = (v) => (v == null ? '—' : ms(v));
  const kpis = `<section class="grid kpis" aria-label="Totals">
    ${kpi('requests', 'Requests', int(s.total_requests), `${int(s.successful_requests)} succeeded`)}
    ${kpi('spend', 'Spend', usd(s.total_cost_usd), s.unpriced_requests ? `${int(s.unpriced_requests)} unpriced` : 'all priced')}
    ${kpi('tokens', 'Tokens', int(s.total_tokens), `${compact(s.input_tokens)} in · ${compact(s.output_tokens)} out`)}
    ${kpi('error-rate', 'Error rate', pct(errorRate), `${int(s.failed_requests)} failed`)}
    ${kpi('latency', 'Latency p50', p(s.latency_ms_p50 ?? s.avg_latency_ms), `p95 ${p(s.latency_ms_p95)} · first token ${p(s.ttfb_ms_p50)}`)}
    ${kpi('cache', 'Cached input', pct(s.input_tokens ? s.cached_input_tokens / s.input_tokens : 0), 'of input tokens')}
  </section>`;
  if (!s.total_requests) {
    return kpis + `<div class="panel" style="margin-top:14px">${empty(`No requests yet. Send one through the gateway:<pre>${esc(curlExample())}</pre>`)}</div>`;
  }
  const b = series.buckets;
  const labels = b.map((x) => bucketLabel(x.start, series.bucket));
  const span = series.bucket === 'day' ? 'per day, last 30 days' : 'per hour, last 24 hours';
  const box = (name, html) => `<div class="panel chart"><h2>${name} <span class="span">${span}</span></h2>${html}</div>`;
  const money = (v) => '$' + (v === 0 ? '0' : v < 1 ? Number(v.toPrecision(2)).toString() : compact(v));
  const line = (name, color, key, dash) => ({ name, color, dash, values: b.map((x) => x[key] ?? null) });
  const charts = `<section class="grid charts" aria-label="Over time">
    ${box('Requests', chart([{ name: 'requests', color: '#2f5bea', values: b.map((x) => x.requests) }, { name: 'errors', color: '#c0362c', values: b.map((x) => x.errors) }], labels, { kind: 'bar', format: compact, title: 'Requests' }))}
    ${box('Error rate', chart([{ name: 'error rate', color: '#c0362c', values: b.map((x) => (x.requests ? x.error_rate : null)) }], labels, { format: (v) => (v * 100).toFixed(v && v < 0.1 ? 1 : 0) + '%', title: 'Error rate' }))}
    ${box('Spend', chart([{ name: 'USD', color: '#0f9d8a', values: b.map((x) => x.cost_usd) }], labels, { format: money, title: 'Spend' }))}
    ${box('Tokens', chart([{ name: 'input', color: '#6d4de0', values: b.map((x) => x.input_tokens) }, { name: 'output', color: '#e08a1e', values: b.map((x) => x.output_tokens) }], labels, { format: compact, title: 'Tokens' }))}
    ${box('Latency', chart([line('p50', '#2f5bea', 'latency_ms_p50'), line('p95', '#7c93f0', 'latency_ms_p95', true)], labels, { format: ms, title: 'Latency', noFill: true }))}
    ${box('Time to first token', chart([line('p50', '#0f9d8a', 'ttfb_ms_p50'), line('p95', '#6cc3b6', 'ttfb_ms_p95', true)], labels, { format: ms, title: 'Time to first token', noFill: true }))}
  </section>`;
  const stepped = (id, label, n, sub) => `<div class="step-in" data-stepped="${id}"><div class="value">${int(n)}</div><div><div class="label">${label}</div><div class="sub">${sub}</div></div></div>`;
  const interventions = `<section class="panel" style="margin-top:14px" aria-label="Where the gateway stepped in"><h2>Where the gateway stepped in</h2><div class="grid stepped">
    ${stepped('failover', 'Failover', s.mitigated_requests, 'requests saved by a later attempt after one failed')}
    ${stepped('breakers', 'Circuit breakers', s.breaker_steered_requests, 'requests steered away from a provider whose breaker was open')}
    ${stepped('sanitizer', 'Sanitizer', s.sanitized_requests, `requests with credentials or PII found · ${int(s.sanitizer_blocked_requests)} blocked`)}
    ${stepped('budgets', 'Budgets', s.budget_refused_requests, `requests refused for a spent budget · ${int(s.budget_rerouted_requests)} routed to a cheaper profile`)}
    ${stepped('rate-limits', 'Rate limits', s.rate_limited_requests, 'requests refused past a key\'s or project\'s rpm or tpm')}
    </div>${chart([
      { name: 'failover', color: '#b86e00', values: b.map((x) => x.mitigated || 0) },
      { name: 'breakers', color: '#c0362c', values: b.map((x) => x.breaker_steered || 0) },
      { name: 'sanitizer', color: '#6d4de0', values: b.map((x) => x.sanitized || 0) },
      { name: 'limits', color: '#0f9d8a', values: b.map((x) => (x.budget_refused || 0) + (x.rate_limited || 0)) },
    ], labels, { kind: 'bar', format: compact, title: 'Interventions' })}</section>`;
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
  return kpis + charts + interventions + breakdowns;
}

// ---------- Records: 1 call per page (GET /v1/records with the filters), 1 per opened record ----------
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
    if (stale(gen)) return;
    if (!page.data.length) { list.innerHTML = empty(offset ? 'No more records.' : 'No records match these filters.'); return; }
    const today = new Date().toDateString();
    const stamp = (iso) => { const d = new Date(iso); return d.toDateString() === today ? d.toLocaleTimeString() : d.toLocaleString(); };
    list.innerHTML = table([
      { label: 'Time', value: (r) => stamp(r.timestamp) },
      { label: 'Outcome', html: (r) => `<span title="HTTP ${esc(r.status)}">${outcomeBadge(r.outcome)}</span>${r.status >= 400 ? ` <span class="muted small">${esc(r.status)}</span>` : ''}` },
      { label: 'Model', wrap: true, value: (r) => r.model_used || r.model_requested || '—' },
      { label: 'Provider', value: (r) => r.provider_id || '—' },
      { label: 'Project', value: (r) => r.project || '—' },
      { label: 'Tokens', num: true, value: (r) => int(r.input_tokens + r.output_tokens) },
      { label: 'Cost', num: true, value: (r) => (r.cost_usd == null ? '—' : usd(r.cost_usd)) },
      { label: 'Latency', num: true, value: (r) => ms(r.latency_ms) },
    ], page.data, { clickable: true }) + pager(q, offset, page.data.length, limit, page.has_more);
    onRows(list, page.data, (r, tr) => {
      list.querySelectorAll('tr[aria-selected]').forEach((x) => x.removeAttribute('aria-selected'));
      tr.setAttribute('aria-selected', 'true');
      showRecord(gen, r);
    });
  } catch (err) {
    if (!stale(gen)) list.innerHTML = failed(err);
  }
}

function pager(q, offset, shown, limit, more) {
  const link = (o, text) => { const p = new URLSearchParams(q); p.delete('limit'); p.set('offset', o); return `<a href="#records?${p}">${text}</a>`; };
  return `<p class="muted">Records ${offset + 1}–${offset + shown} ${offset > 0 ? link(Math.max(0, offset - limit), '← newer') : ''} ${more ? link(offset + limit, 'older →') : ''}</p>`;
}

/** The record at once from its row, then its attempts and signals from GET /v1/records/{id}. */
async function showRecord(gen, r) {
  const detail = document.getElementById('detail');
  const findings = r.sanitizer_findings && Object.keys(r.sanitizer_findings).length
    ? Object.entries(r.sanitizer_findings).map(([k, n]) => badge(`${k} × ${n}`, 'mitigated')).join(' ') : '<span class="muted">none</span>';
  const row = (k, v) => `<dt>${esc(k)}</dt><dd>${v}</dd>`;
  // The target that answered: its rank when the router ranked it, else the first of its provider.
  const served = r.route_rank ?? (r.route_plan || []).findIndex((c) => c.startsWith(`${r.provider_id}/`));
  const plan = (r.route_plan || []).map((c, i) => `<li${i === served ? ' class="served"' : ''}>${esc(c)}${i === served && r.status < 400 ? ' <span class="muted">answered</span>' : ''}</li>`).join('');
  detail.innerHTML = `<h2>Record</h2><dl>
    ${row('request id', `<code>${esc(r.id)}</code>`)}
    ${row('time', esc(when(r.timestamp)))}
    ${row('outcome', outcomeBadge(r.outcome) + ' ' + esc(r.status))}
    ${r.error_kind ? row('error', esc(`${r.error_kind}: ${r.error_message || ''}`)) : ''}
    ${row('endpoint', esc(r.endpoint))}
    ${row('model', esc(`${r.model_requested || '—'} → ${r.model_used || '—'}`))}
    ${row('provider', esc(`${r.provider_id || '—'} (${r.provider_type || '—'})`))}
    ${row('translated', esc(r.translated || 'no'))}
    ${row('latency', esc(`${ms(r.latency_ms)}; first byte ${ms(r.ttfb_ms)}${r.streamed ? ', streamed' : ''}`))}
    ${row('tokens', esc(`${int(r.input_tokens)} in (${int(r.cached_input_tokens)} cached) · ${int(r.output_tokens)} out${r.usage_estimated ? ' · estimated' : ''}`))}
    ${row('cost', esc(r.cost_usd == null ? 'unpriced' : usd(r.cost_usd)))}
  </dl><h2 class="sub-h">Route trace</h2><dl>
    ${row('profile', esc(r.route_profile || 'none (explicit model)'))}
    ${row('decided by', esc(r.route_decided_by || '—'))}
    ${row('needs', esc((r.needs || []).join(', ') || 'nothing special'))}
    ${row('prompt tokens', esc(r.prompt_tokens_estimate ?? '—'))}
    ${row('max tokens', esc(r.max_tokens ?? '—'))}
    ${row('breaker skips', esc(r.breaker_skips ?? 0))}
  </dl>${plan ? `<ol class="plan" aria-label="The ranked plan">${plan}</ol>` : ''}
  <h2 class="sub-h">Attempts</h2><div id="attempts">${loading('Loading attempts')}</div>
  <h2 class="sub-h">Sanitizer findings</h2><p>${findings}</p>
  <h2 class="sub-h">Signals</h2><div id="record-signals"><span class="muted">…</span></div>
  <p class="muted">Identity: project ${esc(r.project || '—')}, source ${esc(r.source || '—')}, key ${esc(r.key_label || '—')}.</p>`;
  try {
    const full = await api(`/v1/records/${encodeURIComponent(r.id)}`);
    if (stale(gen) || !document.getElementById('attempts')) return;
    // The ledger keeps the attempts of a failover or a failure; a first try that answered is
    // the record itself.
    const tries = full.attempts.length || !r.provider_id ? full.attempts
      : [{ attempt: 0, provider: r.provider_id, model: r.model_used || r.model_requested, status: r.status, error_kind: r.error_kind, latency_ms: r.latency_ms, mitigated: false }];
    document.getElementById('attempts').innerHTML = tries.length ? table([
      { label: '#', num: true, value: (a) => a.attempt },
      { label: 'Target', value: (a) => `${a.provider}/${a.model}` },
      { label: 'Result', html: (a) => (a.error_kind ? badge(a.mitigated ? 'failed, mitigated' : 'failed', a.mitigated ? 'mitigated' : 'error') + ' ' + esc(a.error_kind) : badge('ok', 'ok')) },
      { label: 'Status', num: true, value: (a) => a.status ?? '—' },
      { label: 'Time', num: true, value: (a) => ms(a.latency_ms) },
    ], tries) : '<p class="muted">No upstream attempt (refused before any provider was tried).</p>';
    document.getElementById('record-signals').innerHTML = full.signals.length
      ? `<ul class="signals">${full.signals.map((x) => `<li>${badge(x.signal, x.signal === 'thumbs_up' || x.signal === 'accepted' ? 'ok' : x.signal === 'score' ? 'neutral' : 'error')} ${x.value != null ? esc(x.value) : ''} <span class="muted">${esc(x.source || '')} ${esc(when(x.ts))}</span>${x.comment ? `<div>${esc(x.comment)}</div>` : ''}</li>`).join('')}</ul>`
      : '<p class="muted">None reported. Report one with <code>POST /v1/signals</code> and this request id.</p>';
  } catch (err) {
    if (!stale(gen) && document.getElementById('attempts')) {
      document.getElementById('attempts').innerHTML = failed(err);
      document.getElementById('record-signals').innerHTML = '';
    }
  }
}

// ---------- Errors: 1 call (GET /v1/errors) ----------
async function errors(gen) {
  const impact = new URLSearchParams(location.hash.split('?')[1] || '').get('impact') || '';
  actions.innerHTML = `<label>Impact <select id="impact"><option value="">all</option><option value="customer_impacting">customer-impacting</option><option value="mitigated">mitigated</option></select></label>`;
  const sel = document.getElementById('impact');
  sel.value = impact;
  sel.onchange = () => { location.hash = 'errors' + (sel.value ? '?impact=' + sel.value : ''); };
  await once(gen, 'Loading failed attempts', async () => {
    const page = await api('/v1/errors?limit=100' + (impact ? '&impact=' + impact : ''));
    const c = page.counts.by_impact;
    const kinds = Object.entries(page.counts.by_kind).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${badge(k, 'neutral')} ${int(n)}`).join(' &nbsp; ');
    const tiles = lede('All errors and mitigated failovers. <span class="dot bad"></span> Customer-impacting <span class="dot warn"></span> Mitigated by Failover') + `<section class="grid impact"><div class="panel bad" data-impact="customer_impacting"><div class="kpi"><div class="label">Customer-impacting</div><div class="value">${int(c.customer_impacting)}</div><div class="sub">no attempt of the request succeeded: the client saw an error</div></div></div>
      <div class="panel mitigated" data-impact="mitigated"><div class="kpi"><div class="label">Mitigated</div><div class="value">${int(c.mitigated)}</div><div class="sub">a later attempt succeeded: failover saved the request</div></div></div></section>`;
    if (!page.errors.length) return tiles + `<div class="panel">${empty('No failed upstream attempts. Requests refused before any provider was tried are under Records → status error.')}</div>`;
    return tiles + `<div class="panel"><p>${kinds}</p>${table([
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
  });
}

// ---------- Projects live: 1 call every 5 s (GET /v1/projects) ----------
async function projects(gen) {
  view.innerHTML = loading('Loading projects');
  actions.innerHTML = '<span id="updated"></span>';
  const intro = lede('Live view of all projects routing requests through this gateway. Clients identify their project via the <code>x-project</code> header.');
  async function paint(first) {
    try {
      const list = await api('/v1/projects');
      if (stale(gen)) return;
      document.getElementById('updated').textContent = 'live · updated ' + new Date().toLocaleTimeString();
      const data = list.data || list;
      view.innerHTML = intro + (data.length ? `<div class="panel">${table([
        { label: 'Project', html: (p) => `<a href="#records?project=${encodeURIComponent(p.id)}">${esc(p.id)}</a>` },
        { label: 'Last seen', value: (p) => when(p.last_seen) },
        { label: 'Requests', num: true, value: (p) => int(p.requests) },
        { label: 'Success', num: true, value: (p) => pct(p.success_rate) },
        { label: 'Tokens', num: true, value: (p) => compact(p.input_tokens + p.output_tokens) },
        { label: 'Spend', num: true, value: (p) => usd(p.cost_usd) },
        { label: 'Sources', value: (p) => p.sources.join(', ') },
        { label: 'Models', value: (p) => p.models.join(', ') },
      ], data)}</div>` : `<div class="panel">${empty(`Send requests with the <code>x-project</code> header to see them here.<pre>${esc(curlExample())}</pre>`)}</div>`);
    } catch (err) {
      if (stale(gen)) return;
      if (first) view.innerHTML = failed(err);
      else document.getElementById('updated').textContent = 'refresh failed: ' + err.message;
    }
  }
  await paint(true);
  every(5000, () => paint(false));
}

// ---------- Requesters (x-source): 1 call (GET /v1/sources) ----------
async function sources(gen) {
  await once(gen, 'Loading requesters', async () => {
    const list = (await api('/v1/sources')).data;
    const intro = lede('Per-requester success rates and usage breakdown. Requesters identified by <code>x-source</code> header.');
    if (!list.length) return intro + `<div class="panel">${empty('No requests yet. Tools name themselves with the <code>x-source</code> header.')}</div>`;
    const top = Math.max(...list.map((x) => x.requests));
    return intro + `<div class="panel">${table([
      { label: 'Requester', html: (x) => `<a href="#records?source=${encodeURIComponent(x.source)}">${esc(x.source)}</a>` },
      { label: 'Requests', num: true, value: (x) => int(x.requests) },
      { label: '', html: (x) => `<svg width="120" height="10" aria-hidden="true"><rect width="${(120 * x.requests) / top}" height="10" rx="2" fill="#2f5bea"/></svg>` },
      { label: 'Success', html: (x) => badge(pct(x.success_rate), x.success_rate >= 0.99 ? 'ok' : x.success_rate >= 0.9 ? 'mitigated' : 'error') },
      { label: 'Tokens', num: true, value: (x) => compact(x.input_tokens + x.output_tokens) },
      { label: 'Spend', num: true, value: (x) => usd(x.cost_usd) },
      { label: 'Models', value: (x) => Object.entries(x.by_model).map(([m, b]) => `${m} (${b.requests})`).join(', ') },
    ], list)}</div>`;
  });
}

// ---------- shell ----------
const VIEWS = {
  overview: ['Overview', overview],
  records: ['Records', records],
  errors: ['Errors', errors],
  routing: ['Routing visualiser', routing],
  catalog: ['Model catalog', catalog],
  profiles: ['Routing profiles', profiles],
  signals: ['Quality signals', signals],
  projects: ['Projects', projects],
  sources: ['Requesters', sources],
  ask: ['Ask', ask],
  providers: ['Providers', providers],
  keys: ['Keys and budgets', keys],
  start: ['Quick start', start],
};

function show() {
  const name = (location.hash.slice(1).split('?')[0]) || 'overview';
  const [label, render] = VIEWS[name] || VIEWS.overview;
  clearInterval(current.timer);
  current.timer = null;
  current.generation += 1;
  title.textContent = label;
  document.title = `${label} · llm-gateway`;
  actions.innerHTML = '';
  document.querySelectorAll('#nav a').forEach((a) => { if (a.dataset.view === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current'); });
  document.body.dataset.view = name;
  delete document.body.dataset.ready;
  const gen = current.generation;
  render(gen).finally(() => { if (gen === current.generation) document.body.dataset.ready = name; });
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

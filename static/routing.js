// The routing views: the visualiser of the five layers, the model catalog (prior beside live),
// the routing profiles and the quality signals.
import { chart } from './chart.js';
import { view, stale, esc, int, pct, ms, compact, num, bucketLabel, api, loading, empty, failed, lede, table, badge, breakerBadge, once } from './ui.js';

// ---------- Routing visualiser: 1 call to load (GET /v1/profiles), 1 per run (POST /v1/route) ----------
const CAPABILITIES = ['tools', 'vision', 'json_mode', 'json_schema', 'streaming', 'pdf', 'reasoning'];
export async function routing(gen) {
  view.innerHTML = loading('Loading the routing profiles');
  let list;
  try { list = await api('/v1/profiles'); } catch (err) { if (!stale(gen)) view.innerHTML = failed(err); return; }
  if (stale(gen)) return;
  const options = list.map((p) => `<option value="${esc(p.id)}"${p.default ? ' selected' : ''}>${esc(p.id)}${p.default ? ' (default)' : ''}</option>`).join('');
  const preset = new URLSearchParams(location.hash.split('?')[1] || '').get('profile');
  view.innerHTML = lede('Visualize how the 5-layer routing engine processes a request. Configure inputs and watch models get filtered, scored, and ranked layer by layer.') + `<form class="panel" id="route-form"><div class="route-form">
    <label>Profile<select name="profile">${options}</select></label>
    <label>Prompt<textarea name="prompt" rows="2">Refactor this function to use iterators.</textarea></label>
    <label>Max tokens<input name="max_tokens" type="number" min="1" placeholder="none"></label>
    <button type="submit">Route</button></div>
    <fieldset class="caps"><legend class="muted">Requires</legend>${CAPABILITIES.map((c) => `<label><input type="checkbox" name="cap" value="${c}"> ${c}</label>`).join('')}</fieldset>
  </form><div id="route-out">${empty('Pick a profile and requirements, then Route: the five layers appear here.')}</div>`;
  const form = document.getElementById('route-form');
  if (preset && list.some((p) => p.id === preset)) form.profile.value = preset;
  async function run() {
    const fd = new FormData(form);
    const requirements = { capabilities: fd.getAll('cap') };
    if (fd.get('max_tokens')) requirements.max_tokens = Number(fd.get('max_tokens'));
    const body = { profile: fd.get('profile'), requirements, messages: [{ role: 'user', content: fd.get('prompt') || '' }] };
    const out = document.getElementById('route-out');
    out.innerHTML = loading('Routing');
    try {
      const decision = await api('/v1/route', { method: 'POST', body });
      if (!stale(gen)) out.innerHTML = renderRoute(decision);
    } catch (err) { if (!stale(gen)) out.innerHTML = failed(err); }
  }
  form.onsubmit = (e) => { e.preventDefault(); run(); };
  await run(); // the first run is part of loading the view
}

function renderRoute(r) {
  const name = (c) => `${c.provider}/${c.model}`;
  const layers = (r.layers || []).map((l) => {
    const dropped = (l.dropped || []).map((d) => `<li title="${esc(d.reason)}">${esc(name(d))}: ${esc(d.reason)}</li>`).join('');
    const entered = Array.isArray(l.entered) ? l.entered.length : (l.entered ?? '');
    return `<div class="panel layer" data-layer="${l.layer}"><div class="step">Layer ${l.layer}</div><h3>${esc(l.name)}</h3>
      <div class="count">${int(l.kept)} <span class="muted">kept${entered !== '' ? ` of ${int(entered)}` : ''}</span></div>
      ${dropped ? `<ul class="dropped">${dropped}</ul>` : '<p class="muted small">nothing dropped</p>'}</div>`;
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
  return `<div class="panel decision" data-decision><h2>Decision</h2><p><strong>${esc(r.provider)}/${esc(r.model)}</strong> under <code>${esc(r.profile)}</code>, decided by ${esc(r.decided_by || 'score')}; needs ${esc((r.needs?.capabilities || []).join(', ') || 'nothing special')}, ~${int(r.needs?.prompt_tokens)} prompt tokens.</p></div>
    <div class="layers">${layers}</div>
    <div class="grid two-one"><div class="panel"><h2>Scores (layer 4, top 10)</h2>${scoreTable}</div><div class="panel"><h2>Ranking (layer 5)</h2><ol>${ranking}</ol></div></div>`;
}

// ---------- Model catalog: 1 call (GET /v1/catalog?served=true) ----------
export async function catalog(gen) {
  await once(gen, 'Loading the catalog', async () => {
    const cat = await api('/v1/catalog?served=true');
    const intro = lede('All model cards known to this gateway with capabilities, pricing, latency profiles, and quality signals.');
    if (!cat.models.length) return intro + `<div class="panel">${empty('No model is served by a configured provider. Add one under <a href="#providers">Providers</a> or in config.toml.')}</div>`;
    const card = (m) => {
      const serving = m.serving || [];
      const live = serving.find((s) => s.live)?.live;
      const learned = serving.find((s) => s.signals)?.signals;
      const caps = (m.capabilities || []).map((c) => `<span class="tag">${esc(c)}</span>`).join('');
      const breakers = serving.map((s) => `<span class="serve">${esc(s.provider)} ${breakerBadge(s.breaker)}</span>`).join(' ');
      return `<article class="panel card" data-model="${esc(m.id)}"><h3>${esc(m.id)}</h3><div class="provider">${breakers || esc(m.provider_type || '')}</div>
        <div class="tags">${caps}</div>
        <div class="pair"><span class="h"></span><span class="h">prior (card)</span><span class="h">live</span>
        <span>input $/M</span><span>${num(m.input_per_mtok)}</span><span class="muted">—</span>
        <span>output $/M</span><span>${num(m.output_per_mtok)}</span><span class="muted">—</span>
        <span>first token</span><span>${ms(m.latency?.ttft_ms)}</span><span>${live?.ttft_ms_p50 != null ? ms(live.ttft_ms_p50) : '—'}</span>
        <span>tokens/s</span><span>${num(m.latency?.output_tokens_per_s, 0)}</span><span>${num(live?.output_tokens_per_s_p50, 0)}</span>
        <span>quality</span><span>${num(m.quality?.general)}</span><span title="${learned ? `mean of the recent signals ${num(learned.mean)} over a weight of ${num(learned.recent, 1)}, blended with the prior` : 'no signals yet'}">${num(learned?.quality_general)}</span>
        <span>error rate</span><span class="muted">—</span><span>${live ? pct(live.error_rate) + ` <span class="muted">(${int(live.attempts)})</span>` : '—'}</span>
        <span>context</span><span>${compact(m.context_window)}</span><span></span></div></article>`;
    };
    return intro + `<p class="muted">${cat.models.length} models served${cat.live ? '' : ' · live figures need the admin token'} · live after ${cat.min_live_samples} samples.</p><section class="grid cards">${cat.models.map(card).join('')}</section>`;
  });
}

// ---------- Routing profiles: 1 call (GET /v1/profiles) ----------
export async function profiles(gen) {
  await once(gen, 'Loading the routing profiles', async () => {
    const list = await api('/v1/profiles');
    const intro = lede('Pre-configured profiles that optimize model selection for different task types. Pass a profile ID in the routing request to apply its weights and preferences.');
    if (!list.length) return intro + `<div class="panel">${empty('No profiles.')}</div>`;
    const lists = (l) => ['allow', 'prefer', 'exclude'].filter((k) => l?.[k]?.length).map((k) => `${k}: ${l[k].map(esc).join(', ')}`).join(' · ') || 'any';
    const caps = (c) => [
      c.max_input_per_mtok != null && `input ≤ $${c.max_input_per_mtok}/M`,
      c.max_output_per_mtok != null && `output ≤ $${c.max_output_per_mtok}/M`,
      c.min_context != null && `context ≥ ${compact(c.min_context)}`,
      c.max_ttft_ms != null && `first token ≤ ${ms(c.max_ttft_ms)}`,
    ].filter(Boolean).join(' · ') || 'none';
    const weights = (w) => {
      const total = w.cost + w.latency + w.quality || 1;
      const seg = (k, color) => `<span style="width:${((100 * w[k]) / total).toFixed(1)}%;background:${color}" title="${k} ${w[k]}"></span>`;
      return `<div class="weights" aria-label="weights: cost ${w.cost}, latency ${w.latency}, quality ${w.quality}">${seg('cost', '#0f9d8a')}${seg('latency', '#2f5bea')}${seg('quality', '#6d4de0')}</div>
        <div class="legend small"><span><span class="swatch" style="background:#0f9d8a"></span>cost ${w.cost}</span><span><span class="swatch" style="background:#2f5bea"></span>latency ${w.latency}</span><span><span class="swatch" style="background:#6d4de0"></span>quality ${w.quality}</span></div>`;
    };
    const card = (p) => `<article class="panel profile" data-profile="${esc(p.id)}"><h3><code>${esc(p.id)}</code> ${p.default ? badge('default', 'ok') : ''}</h3>
      <p class="muted">${esc(p.description)}</p>${weights(p.weights)}
      <dl class="facts"><dt>task kind</dt><dd>${esc(p.task)}</dd>
      <dt>requires</dt><dd>${(p.require || []).map((c) => `<span class="tag">${esc(c)}</span>`).join(' ') || 'nothing'}</dd>
      <dt>providers</dt><dd>${lists(p.providers)}</dd>
      <dt>models</dt><dd>${lists(p.models)}</dd>
      <dt>caps</dt><dd>${caps(p.caps || {})}</dd>
      <dt>affinity</dt><dd>${p.affinity ? 'conversations stay where their prompt cache is warm' : 'off'}</dd></dl>
      <a href="#routing?profile=${encodeURIComponent(p.id)}">Try it in the visualiser →</a></article>`;
    return intro + `<section class="grid cards wide">${list.map(card).join('')}</section>`;
  });
}

// ---------- Quality signals: 1 call (GET /v1/signals, last 30 days by day) ----------
export async function signals(gen) {
  await once(gen, 'Loading quality signals', async () => {
    const since = new Date(Date.now() - 30 * 86400e3).toISOString().replace(/\.\d+Z$/, 'Z');
    const report = await api(`/v1/signals?bucket=day&since=${since}`);
    const intro = lede('Quality metrics from adaptive routing signals. Report signals via <code>POST /v1/signals</code>.');
    const models = Object.entries(report.by_model).map(([id, m]) => ({ id, ...m })).sort((a, b) => b.signals - a.signals);
    if (!models.length) {
      return intro + `<div class="panel">${empty(`No signals in the last 30 days. Report one about a proxied answer (its <code>x-request-id</code>):<pre>${esc(`curl ${location.origin}/v1/signals \\\n  -H "Content-Type: application/json" \\\n  -d '{"request_id": "<x-request-id>", "signal": "thumbs_up", "source": "my-tool"}'`)}</pre>`)}</div>`;
    }
    const ci = (f) => (f.ci95 ? `${num(f.ci95.low)}–${num(f.ci95.high)}` : '—');
    const meanBar = (f) => (f.mean == null ? '—' : `<span class="meter" title="95% interval ${ci(f)}"><span class="ci" style="left:${(f.ci95?.low ?? f.mean) * 100}%;width:${((f.ci95?.high ?? f.mean) - (f.ci95?.low ?? f.mean)) * 100}%"></span><span class="mean" style="left:${f.mean * 100}%"></span></span> ${num(f.mean)}`);
    const t = report.total;
    const kpis = `<section class="grid kpis four"><div class="panel kpi" data-kpi="signals"><div class="label">Signals</div><div class="value">${int(t.signals)}</div><div class="sub">last 30 days</div></div>
      <div class="panel kpi"><div class="label">Mean outcome</div><div class="value">${num(t.mean)}</div><div class="sub">95% interval ${ci(t)}</div></div>
      <div class="panel kpi"><div class="label">Thumbs up · down</div><div class="value">${int(t.counts.thumbs_up)} · ${int(t.counts.thumbs_down)}</div><div class="sub">${int(t.counts.accepted)} accepted · ${int(t.counts.retry)} retried</div></div>
      <div class="panel kpi"><div class="label">Format and tool errors</div><div class="value">${int(t.counts.bad_format + t.counts.tool_error)}</div><div class="sub">${int(t.counts.bad_format)} bad format · ${int(t.counts.tool_error)} tool errors</div></div></section>`;
    const rows = table([
      { label: 'Model', value: (m) => m.id },
      { label: 'Signals', num: true, value: (m) => int(m.signals) },
      { label: 'Mean (95% interval)', html: meanBar },
      { label: 'Up', num: true, value: (m) => int(m.counts.thumbs_up) },
      { label: 'Down', num: true, value: (m) => int(m.counts.thumbs_down) },
      { label: 'Scores', num: true, value: (m) => int(m.counts.score) },
      { label: 'Retries', num: true, value: (m) => int(m.counts.retry) },
      { label: 'Errors', num: true, value: (m) => int(m.counts.bad_format + m.counts.tool_error) },
      { label: 'By provider', value: (m) => Object.entries(m.by_provider).map(([p, f]) => `${p} ${num(f.mean)} (${f.signals})`).join(', ') },
    ], models);
    // The trend of the models with the most signals, one line each, per day.
    const days = [];
    for (let d = new Date(report.since).setUTCHours(0, 0, 0, 0); d <= Date.now(); d += 86400e3) days.push(d);
    const colors = ['#2f5bea', '#0f9d8a', '#e08a1e', '#6d4de0', '#c0362c'];
    const top = models.slice(0, 5).map((m, i) => {
      const at = new Map(m.trend.map((p) => [new Date(p.start).getTime(), p.mean]));
      return { name: m.id, color: colors[i], values: days.map((d) => at.get(d) ?? null) };
    });
    const trend = `<div class="panel chart"><h2>Mean outcome per day <span class="span">top ${top.length} models by signals</span></h2>${chart(top, days.map((d) => bucketLabel(new Date(d).toISOString(), 'day')), { format: (v) => v.toFixed(2), title: 'Mean outcome', noFill: true })}</div>`;
    return intro + kpis + `<div class="panel" style="margin-top:14px"><h2>By model</h2>${rows}</div><section class="grid charts">${trend}</section>`;
  });
}

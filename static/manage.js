// The operator's views: providers (list, add, remove, breaker state), Ask (a question in; the
// SQL, a chart and the table out) and the quick start with the feature summary.
import { chart } from './chart.js';
import { view, stale, esc, int, ms, usd, pct, when, api, loading, empty, failed, lede, table, badge, breakerBadge, curlExample, once } from './ui.js';

// ---------- Providers: 1 call to load (GET /v1/providers), 1 per change (POST / DELETE) and a reload ----------
const TYPES = ['openai', 'anthropic', 'azure_openai', 'local'];
export async function providers(gen) {
  view.innerHTML = lede('The providers this gateway forwards to, with their circuit breakers. A provider added here is kept in memory; add it to <code>config.toml</code> to keep it across restarts. Keys are never shown.')
    + `<div class="panel" id="provider-list">${loading('Loading providers')}</div>
    <form class="panel" id="add-provider" autocomplete="off"><h2>Add a provider</h2><div class="form-grid">
      <label>Id<input name="id" required pattern="[A-Za-z0-9._\\-]+" placeholder="ollama-2"></label>
      <label>Type<select name="provider_type">${TYPES.map((t) => `<option>${t}</option>`).join('')}</select></label>
      <label class="wide">Endpoint<input name="endpoint" type="url" placeholder="http://localhost:11434 (required for azure_openai and local)"></label>
      <label>API key<input name="api_key" type="password" spellcheck="false" placeholder="kept in memory, never shown"></label>
      <label>Models<input name="models" placeholder="llama3.1:8b, qwen2.5:7b"></label>
      <label>Deployment<input name="deployment" placeholder="azure_openai only"></label>
      <label>API version<input name="api_version" placeholder="2024-10-21"></label>
      <div class="form-actions"><button type="submit">Add provider</button><span id="add-state" role="status" aria-live="polite"></span></div>
    </div></form>`;
  const form = document.getElementById('add-provider');
  form.onsubmit = async (e) => {
    e.preventDefault();
    const fd = new FormData(form);
    const body = { id: fd.get('id').trim(), provider_type: fd.get('provider_type') };
    for (const k of ['endpoint', 'api_key', 'deployment', 'api_version']) if (fd.get(k)) body[k] = fd.get(k).trim();
    const models = fd.get('models').split(',').map((m) => m.trim()).filter(Boolean);
    if (models.length) body.models = models;
    const state = document.getElementById('add-state');
    state.className = '';
    state.textContent = 'Adding…';
    try {
      await api('/v1/providers', { method: 'POST', body });
      if (stale(gen)) return;
      form.reset();
      state.textContent = `Added ${body.id}.`;
      await list(gen);
    } catch (err) {
      if (stale(gen)) return;
      state.className = 'error-text';
      state.textContent = err.message;
    }
  };
  await list(gen);
}

async function list(gen) {
  const box = document.getElementById('provider-list');
  let rows;
  try { rows = await api('/v1/providers'); } catch (err) { if (!stale(gen)) box.innerHTML = failed(err); return; }
  if (stale(gen)) return;
  if (!rows.length) { box.innerHTML = empty('No provider is configured. Add one below, or in config.toml.'); return; }
  const models = (p) => {
    const sick = Object.entries(p.breaker.models || {}).filter(([, b]) => b.state !== 'closed');
    return (p.models.length ? p.models.map(esc).join(', ') : '<span class="muted">its defaults</span>')
      + sick.map(([m, b]) => ` <span class="serve">${esc(m)} ${breakerBadge(b.state)}</span>`).join('');
  };
  box.innerHTML = `<h2>Providers</h2>` + table([
    { label: 'Provider', html: (p) => `<strong>${esc(p.id)}</strong><div class="muted small">${esc(p.provider_type)}</div>` },
    { label: 'Endpoint', html: (p) => `<code>${esc(p.endpoint)}</code>` },
    { label: 'State', html: (p) => `${p.enabled ? badge('enabled', 'ok') : badge('disabled', 'neutral')}<div class="muted small">${p.has_api_key ? 'key held' : 'no key'}</div>` },
    { label: 'Breaker', html: (p) => `${breakerBadge(p.breaker.state)}<div class="muted small">${p.breaker.retry_in_ms != null ? `probe in ${ms(p.breaker.retry_in_ms)} · ` : ''}opened ${int(p.breaker.times_opened)}× · ${int(p.breaker.window_failures)}/${int(p.breaker.window_attempts)} failed</div>` },
    { label: 'Models', wrap: true, html: models },
    { label: '', html: (p) => `<button type="button" class="ghost danger" data-remove="${esc(p.id)}" aria-label="Remove ${esc(p.id)}">Remove</button>` },
  ], rows);
  box.querySelectorAll('[data-remove]').forEach((button) => {
    button.onclick = () => confirmRemove(gen, button);
  });
}

/** Remove asks once more in place (no dialog), then deletes and reloads the list. */
function confirmRemove(gen, button) {
  const id = button.dataset.remove;
  const cell = button.parentElement;
  cell.innerHTML = `<span class="confirm">Remove ${esc(id)}? <button type="button" class="danger" data-confirm>Remove</button> <button type="button" class="ghost" data-cancel>Keep</button></span>`;
  cell.querySelector('[data-cancel]').onclick = () => list(gen);
  const yes = cell.querySelector('[data-confirm]');
  yes.focus();
  yes.onclick = async () => {
    try {
      await api(`/v1/providers/${encodeURIComponent(id)}`, { method: 'DELETE' });
      if (!stale(gen)) await list(gen);
    } catch (err) {
      if (!stale(gen)) cell.innerHTML = `<span class="error-text">${esc(err.message)}</span>`;
    }
  };
}

// ---------- Keys and budgets: 1 call (GET /v1/keys), 1 per "my key" look-up (GET /v1/keys/self) ----------
export async function keys(gen) {
  await once(gen, 'Loading keys and limits', async () => {
    const report = await api('/v1/keys');
    const intro = lede('Budgets and rate limits per virtual key (by label; tokens are never shown) and per project. Set them in <code>config.toml</code>: <code>max_budget_usd</code>, <code>budget_period</code>, <code>rpm</code>, <code>tpm</code>, <code>models</code>.');
    const rows = [
      ...report.keys.map((k) => ({ kind: 'key', id: k.label, l: k.limits })),
      ...report.projects.map((p) => ({ kind: 'project', id: p.id, l: p })),
    ];
    const budget = (l) => {
      const b = l?.budget;
      if (!b) return '<span class="muted">none</span>';
      const share = b.used_share;
      const color = share >= 1 ? 'var(--bad)' : share >= 0.8 ? 'var(--warn)' : 'var(--good)';
      return `<span class="bar" title="${pct(share)} used"><span style="width:${(share * 100).toFixed(1)}%;background:${color}"></span></span> ${usd(b.spent_usd)} of ${usd(b.limit_usd)} <span class="muted">${esc(b.period)}${b.reserved_usd > 0 ? ` · ${usd(b.reserved_usd)} held` : ''}</span>`;
    };
    const rate = (l, limit, count) => (l?.[limit] ? `${int(l[count])} / ${int(l[limit])}` : '<span class="muted">—</span>');
    const grid = rows.length ? table([
      { label: 'Key or project', html: (r) => `<strong>${esc(r.id)}</strong> <span class="muted small">${r.kind}</span>` },
      { label: 'Budget', html: (r) => budget(r.l) },
      { label: 'Resets', value: (r) => (r.l?.budget ? (r.l.budget.resets_at ? when(r.l.budget.resets_at) : 'never (total)') : '—') },
      { label: 'Requests / min', num: true, html: (r) => rate(r.l, 'rpm', 'requests_this_minute') },
      { label: 'Tokens / min', num: true, html: (r) => rate(r.l, 'tpm', 'tokens_this_minute') },
      { label: 'In flight', num: true, value: (r) => int(r.l?.in_flight) },
      { label: 'Models', wrap: true, html: (r) => (r.l?.models ? r.l.models.map(esc).join(', ') : '<span class="muted">any</span>') },
    ], rows) : empty('No virtual keys. Add <code>[key_map.&lt;token&gt;]</code> entries to the config.');
    return intro + `<div class="panel">${grid}</div>
      <form class="panel" id="self-form" autocomplete="off" style="margin-top:14px"><h2>My key</h2>
      <div class="ask-row"><input id="self-key" type="password" spellcheck="false" placeholder="a virtual key: what it may see of its own spend and limits (GET /v1/keys/self)"><button type="submit">Look up</button></div>
      <div id="self-out" class="small" style="margin-top:8px"></div></form>`;
  }, () => {
    document.getElementById('self-form').onsubmit = async (e) => {
      e.preventDefault();
      const out = document.getElementById('self-out');
      const token = document.getElementById('self-key').value.trim();
      if (!token) return;
      try {
        // The virtual key, not the admin token: fetch directly.
        const res = await fetch('/v1/keys/self', { headers: { Authorization: `Bearer ${token}` } });
        const body = await res.json();
        if (!res.ok) throw new Error(`${res.status}: ${body?.error?.message || res.statusText}`);
        const b = body.limits?.budget;
        out.innerHTML = `<strong>${esc(body.label)}</strong>: ${b ? `${usd(b.spent_usd)} spent of ${usd(b.limit_usd)} (${esc(b.period)}), ${usd(b.remaining_usd)} left` : 'no budget'}${body.limits?.rpm ? ` · ${int(body.limits.requests_this_minute)} of ${int(body.limits.rpm)} requests this minute` : ''}`;
      } catch (err) {
        out.innerHTML = `<span class="error-text">${esc(err.message)}</span>`;
      }
    };
  });
}

// ---------- Ask: no call to load, 1 per question (POST /v1/ask) ----------
const EXAMPLES = [
  'How much did each model cost over the last 7 days?',
  'Which sources made the most requests today?',
  'What is the error rate per provider this week?',
  'How many tokens did each project use per day?',
];
export async function ask(gen) {
  const preset = new URLSearchParams(location.hash.split('?')[1] || '').get('q') || '';
  view.innerHTML = lede('Ask questions about your usage data in natural language. The gateway generates and executes a SQL query.')
    + `<form class="panel" id="ask-form"><label for="question" class="muted small">Question</label>
      <div class="ask-row"><textarea id="question" name="question" rows="2" maxlength="2000" required placeholder="${esc(EXAMPLES[0])}">${esc(preset)}</textarea><button type="submit">Ask</button></div>
      <div class="examples">${EXAMPLES.map((q) => `<button type="button" class="chip" data-q="${esc(q)}">${esc(q)}</button>`).join('')}</div>
    </form><div id="answer">${empty('The SQL the model wrote, checked read-only by the gateway, its rows and a chart appear here. Needs <code>[analytics] model</code> in the config.')}</div>`;
  const form = document.getElementById('ask-form');
  const input = document.getElementById('question');
  form.querySelectorAll('[data-q]').forEach((b) => { b.onclick = () => { input.value = b.dataset.q; form.requestSubmit(); }; });
  input.onkeydown = (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) form.requestSubmit(); };
  form.onsubmit = async (e) => {
    e.preventDefault();
    const question = input.value.trim();
    if (!question) return;
    const out = document.getElementById('answer');
    out.innerHTML = loading('Asking');
    delete out.dataset.answered;
    try {
      const a = await api('/v1/ask', { method: 'POST', body: { question } });
      if (stale(gen)) return;
      out.innerHTML = renderAnswer(a);
      out.dataset.answered = 'true';
    } catch (err) {
      if (stale(gen)) return;
      const sql = err.body?.sql;
      out.innerHTML = failed(err) + (sql ? `<div class="panel"><h2>The SQL that was refused</h2><pre>${esc(sql)}</pre></div>` : '');
    }
  };
  if (preset) form.requestSubmit();
}

function renderAnswer(a) {
  const rows = a.rows.map((r) => Object.fromEntries(a.columns.map((c, i) => [c, r[i]])));
  const cell = (v) => (v == null ? '—' : typeof v === 'number' ? (Number.isInteger(v) ? int(v) : Number(v.toPrecision(6)).toString()) : String(v));
  const grid = rows.length ? table(a.columns.map((c) => ({ label: c, num: rows.some((r) => typeof r[c] === 'number'), value: (r) => cell(r[c]) })), rows) : empty('The query returned no rows.');
  let picture = '';
  const c = a.chart || {};
  if ((c.kind === 'bar' || c.kind === 'line') && c.x && c.y && rows.length > 1) {
    const shown = rows.slice(0, 60);
    picture = `<div class="panel chart"><h2>${esc(c.y)} by ${esc(c.x)}</h2>${chart([{ name: c.y, color: '#2f5bea', values: shown.map((r) => Number(r[c.y]) || 0) }], shown.map((r) => String(r[c.x] ?? '—')), { kind: c.kind, title: c.y, format: (v) => (Math.abs(v) >= 1000 ? Intl.NumberFormat('en-US', { notation: 'compact' }).format(v) : Number(v.toPrecision(3)).toString()) })}</div>`;
  }
  return `<div class="panel" data-sql><h2>SQL <span class="span">written by ${esc(a.model)}${a.repaired ? ', repaired once' : ''} · ${ms(a.elapsed_ms)}</span></h2><pre>${esc(a.sql)}</pre></div>
    <div class="grid ${picture ? 'two-one' : ''}">
    <div class="panel" data-rows="${a.rows.length}"><h2>${int(a.rows.length)} row${a.rows.length === 1 ? '' : 's'}${a.truncated ? ' (cut at the row limit)' : ''}</h2>${grid}</div>${picture}</div>`;
}

// ---------- Quick start: 1 call (GET /health) ----------
export async function start(gen) {
  view.innerHTML = loading('Loading');
  let health = null;
  try { health = await api('/health'); } catch { /* shown as unknown below */ }
  if (stale(gen)) return;
  const o = location.origin;
  const block = (name, code) => `<div class="panel snippet"><h2>${esc(name)}</h2><pre>${esc(code)}</pre></div>`;
  const features = [
    ['Any provider, one endpoint', 'Forward requests to Anthropic, OpenAI, Azure OpenAI, or any OpenAI-compatible local model server (Ollama, vLLM, LM Studio).'],
    ['Drop-in for OpenAI and Anthropic', 'Point any tool that speaks OpenAI at this gateway — LangChain, LlamaIndex, Continue, etc. Anthropic clients such as Claude Code work too; calls are translated when the provider speaks the other API.'],
    ['Prompt sanitization', 'Automatically scan for leaked credentials (API keys, tokens, private keys) and optionally redact PII before forwarding to providers.'],
    ['Cost tracking', 'Per-request cost estimation with aggregate statistics. Know exactly how much each model, source, and team is spending.'],
    ['Streaming', 'Full SSE passthrough for streaming responses. No buffering — chunks arrive at your client as soon as the provider emits them.'],
    ['Virtual keys', 'Map virtual bearer tokens to provider-specific keys. Give each team their own key without sharing provider credentials.'],
    ['Routing with failover', 'model: "auto" or a profile picks a model across the catalog in five explainable layers, fails over when a provider is down, and learns from quality signals.'],
    ['Ask your ledger', 'Questions about usage in plain language, answered with read-only SQL the gateway checks before it runs.'],
  ];
  view.innerHTML = lede('Get running in under 5 minutes: change the base URL of your tools to this gateway and nothing else.')
    + `<section class="panel status-line"><strong>Gateway</strong> ${health ? `${badge(health.status, 'ok')} version ${esc(health.version)} · up ${int(health.uptime_secs / 60)} min · providers: ${health.providers.map(esc).join(', ') || 'none yet — add one under <a href="#providers">Providers</a>'}` : badge('unreachable', 'error')}</section>
    <section class="grid snippets">
    ${block('OpenAI SDK (Python)', `from openai import OpenAI\n\nclient = OpenAI(base_url="${o}/v1", api_key="<your virtual key>")\nreply = client.chat.completions.create(\n    model="gpt-4o",\n    messages=[{"role": "user", "content": "Hello!"}],\n    extra_headers={"x-project": "my-project", "x-source": "my-tool"},\n)`)}
    ${block('Anthropic SDK (Python)', `import anthropic\n\nclient = anthropic.Anthropic(base_url="${o}", api_key="<your virtual key>")\nreply = client.messages.create(\n    model="claude-sonnet-4-20250514", max_tokens=256,\n    messages=[{"role": "user", "content": "Hello!"}],\n)`)}
    ${block('Claude Code', `export ANTHROPIC_BASE_URL=${o}\nexport ANTHROPIC_AUTH_TOKEN=<your virtual key>\nclaude`)}
    ${block('curl', curlExample())}
    ${block('Let the router choose', `curl ${o}/v1/chat/completions \\\n  -H "Content-Type: application/json" \\\n  -H "x-route-profile: cost-optimized" \\\n  -d '{"model": "auto", "messages": [{"role": "user", "content": "Hello"}]}'`)}
    ${block('Run it', `cp config.example.toml config.toml   # add your provider keys\n./target/release/llm-gateway --config config.toml --port 8930\ncurl ${o}/health`)}
    </section>
    <h2 class="sub-h">What it does</h2><section class="grid features">${features.map(([h, p]) => `<div class="panel feature"><h3>${esc(h)}</h3><p>${esc(p)}</p></div>`).join('')}</section>
    <p class="muted">Every endpoint, with its parameters and schemas: <a href="/docs">the API docs</a> (or the raw <a href="/openapi.json">OpenAPI document</a>).</p>`;
}

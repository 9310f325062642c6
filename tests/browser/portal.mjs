// Every view of the portal in headless Chromium against a seeded gateway: no console error, real
// content (figures equal to /v1/stats, five routing layers, an Ask answer from the mock's SQL
// writer, a project appearing live, a provider added and removed through the page), and a
// 1280x800 screenshot of each; then, on a second gateway with an admin token, the sidebar's token
// flow on Keys and budgets. Usage: node portal.mjs <gateway url> <screenshot dir>
// <token gateway url> <its admin token> <its virtual key>
// (playwright-core is loaded from $BROWSER_NODE, where test_portal.py installed it).
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';

const require = createRequire(join(process.env.BROWSER_NODE, 'package.json'));
const { chromium } = require('playwright-core');
const [base, shots, tokenBase, adminToken, keyToken] = process.argv.slice(2);
const json = async (path, init) => (await fetch(base + path, init)).json();

const profile = mkdtempSync(join(tmpdir(), 'portal-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const page = context.pages()[0] || (await context.newPage());
const problems = [];
page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
// Nothing leaves the machine: every request goes to the gateways.
page.on('request', (r) => { if (![base, tokenBase, 'data:'].some((o) => r.url().startsWith(o))) problems.push(`off-box request: ${r.url()}`); });
let calls = 0;
page.on('request', (r) => { if (new URL(r.url()).pathname.startsWith('/v1/')) calls += 1; });

const results = [];
async function visit(view, check, shot = view.split('?')[0]) {
  problems.length = 0;
  calls = 0;
  await page.goto(`${base}/#${view}`);
  if (page.url().includes('#') && (await page.evaluate(() => document.body.dataset.view)) !== view.split('?')[0]) {
    await page.evaluate((v) => { location.hash = v; }, view);
  }
  await page.waitForSelector(`body[data-ready="${view.split('?')[0]}"]`, { timeout: 10000 });
  assert.equal(await page.locator('.state.error').count(), 0, `${view}: an error state: ${await page.locator('.state.error').allTextContents()}`);
  await check();
  const name = view.split('?')[0];
  if (shot) await page.screenshot({ path: join(shots, `${shot}.png`) });
  assert.deepEqual(problems, [], `${view}: ${problems.join('; ')}`);
  results.push(`${view}: ok, ${calls} API call(s)`);
}

try {
  const stats = await json('/v1/stats');
  const nf = new Intl.NumberFormat('en-US');

  await visit('overview', async () => {
    const value = async (k) => (await page.locator(`[data-kpi="${k}"] .value`).textContent()).trim();
    assert.equal(await value('requests'), nf.format(stats.total_requests));
    assert.equal(await value('tokens'), nf.format(stats.total_tokens));
    assert.equal(await value('spend'), '$' + stats.total_cost_usd.toFixed(stats.total_cost_usd < 0.01 ? 6 : 4));
    assert.equal(await value('error-rate'), ((stats.failed_requests / stats.total_requests) * 100).toFixed(1) + '%');
    assert.equal(await page.locator('.chart svg').count(), 6, 'six charts');
    const stepped = async (k) => (await page.locator(`[data-stepped="${k}"] .value`).textContent()).trim();
    assert.equal(await stepped('failover'), nf.format(stats.mitigated_requests));
    assert.equal(await stepped('sanitizer'), nf.format(stats.sanitized_requests));
    assert.equal(await stepped('breakers'), nf.format(stats.breaker_steered_requests));
    assert.ok(stats.budget_refused_requests >= 1 && stats.rate_limited_requests >= 1, 'the seeded refusals are counted');
    assert.equal(await stepped('budgets'), nf.format(stats.budget_refused_requests));
    assert.equal(await stepped('rate-limits'), nf.format(stats.rate_limited_requests));
    for (const p of Object.keys(stats.by_project)) {
      assert.ok((await page.locator('[data-breakdown="by_project"]').textContent()).includes(p), `project ${p} in the breakdown`);
    }
  });

  await visit('records', async () => {
    const rows = page.locator('#list tbody tr');
    assert.equal(await rows.count(), stats.total_requests);
    await rows.first().click();
    await page.waitForSelector('#detail dl');
    const detail = await page.locator('#detail').textContent();
    assert.ok(detail.includes('Route trace') && detail.includes('request id'));
    // The record with a signal opens to its attempts and its signal.
    const signalled = page.locator('#list tbody tr', { hasText: 'claude' }).first();
    await signalled.click();
    await page.waitForSelector('#attempts table');
    await page.waitForSelector('#record-signals .signals li');
    assert.ok((await page.locator('#record-signals').textContent()).includes('thumbs_up'));
    assert.equal(await page.locator('#attempts tbody tr').count(), 1);
    assert.ok((await page.locator('#detail').textContent()).includes('Sanitizer findings'));
  });

  await visit('records?project=apollo', async () => {
    const cells = await page.locator('#list tbody tr td:nth-child(5)').allTextContents();
    assert.equal(cells.length, stats.by_project.apollo.requests);
    assert.ok(cells.every((c) => c === 'apollo'), cells.join());
  }, null);

  await visit('errors', async () => {
    const errors = await json('/v1/errors');
    const count = async (k) => (await page.locator(`[data-impact="${k}"] .value`).textContent()).trim();
    assert.equal(await count('customer_impacting'), nf.format(errors.counts.by_impact.customer_impacting));
    assert.equal(await count('mitigated'), nf.format(errors.counts.by_impact.mitigated));
    assert.ok(errors.total > 0, 'the seeded failure is listed');
    assert.equal(await page.locator('#view tbody tr').count(), errors.errors.length);
  });

  await visit('routing', async () => {
    await page.waitForSelector('[data-decision]', { timeout: 10000 });
    assert.equal(await page.locator('.layer').count(), 5, 'five layers');
    const names = await page.locator('.layer h3').allTextContents();
    assert.deepEqual(names.map((n) => n.trim()), ['inventory', 'capabilities and context', 'policy and health', 'scoring', 'ranking']);
  });

  await visit('catalog', async () => {
    const catalog = await json('/v1/catalog?served=true');
    assert.equal(await page.locator('.card').count(), catalog.models.length);
  });

  await visit('profiles', async () => {
    const list = await json('/v1/profiles');
    assert.equal(await page.locator('.profile').count(), list.length);
    for (const p of list) assert.equal(await page.locator(`[data-profile="${p.id}"] .weights span`).count(), 3);
  });

  await visit('signals', async () => {
    const report = await json('/v1/signals?bucket=day');
    assert.equal((await page.locator('[data-kpi="signals"] .value').textContent()).trim(), nf.format(report.total.signals));
    const models = await page.locator('#view tbody td:first-child').allTextContents();
    assert.deepEqual(models.sort(), Object.keys(report.by_model).sort());
    assert.equal(await page.locator('.chart svg').count(), 1, 'the trend');
  });

  await visit('ask', async () => {
    await page.fill('#question', 'How much did each model cost?');
    await page.click('#ask-form button[type="submit"]');
    await page.waitForSelector('#answer[data-answered]', { timeout: 15000 });
    const sql = await page.locator('[data-sql] pre').textContent();
    assert.ok(sql.includes('SUM(cost_usd)') && sql.includes('ask_requests'), sql);
    // The rows are the ledger's own: one per model the seeded requests used.
    const models = new Set(Object.keys(stats.by_model));
    const cells = await page.locator('[data-rows] tbody td:first-child').allTextContents();
    assert.ok(cells.length >= 2 && cells.every((c) => models.has(c) || c === 'mock-sql-writer'), cells.join());
    assert.equal(await page.locator('#answer .chart svg').count(), 1, 'a chart of the rows');
  });

  await visit('providers', async () => {
    const before = await json('/v1/providers');
    assert.equal(await page.locator('#provider-list tbody tr').count(), before.length);
    await page.fill('#add-provider [name="id"]', 'ollama-browser');
    await page.selectOption('#add-provider [name="provider_type"]', 'local');
    await page.fill('#add-provider [name="endpoint"]', 'http://127.0.0.1:9/v1');
    await page.fill('#add-provider [name="models"]', 'llama3.1:8b');
    await page.click('#add-provider button[type="submit"]');
    await page.waitForSelector('#provider-list tbody tr:has-text("ollama-browser")');
    assert.ok((await json('/v1/providers')).some((p) => p.id === 'ollama-browser'), 'added on the server');
    await page.screenshot({ path: join(shots, 'providers.png') });
    await page.click('[data-remove="ollama-browser"]');
    await page.click('[data-confirm]');
    await page.waitForSelector('#provider-list tbody tr:has-text("ollama-browser")', { state: 'detached' });
    assert.ok(!(await json('/v1/providers')).some((p) => p.id === 'ollama-browser'), 'removed on the server');
  }, null);

  await visit('keys', async () => {
    const report = await json('/v1/keys');
    const alpha = report.keys.find((k) => k.label === 'Team Alpha');
    const row = page.locator('#view tbody tr', { hasText: 'Team Alpha' });
    const text = await row.textContent();
    assert.ok(text.includes('of $5') && text.includes('monthly'), text);
    assert.ok(text.includes(`${alpha.limits.requests_this_minute} / 100`), text);
    assert.ok(!(await page.content()).includes('team-alpha-key'), 'no token on the page');
    await page.fill('#self-key', 'team-alpha-key');
    await page.click('#self-form button[type="submit"]');
    await page.waitForSelector('#self-out strong');
    assert.ok((await page.locator('#self-out').textContent()).includes('Team Alpha'));
  });

  await visit('start', async () => {
    const text = await page.locator('#view').textContent();
    assert.ok(text.includes(`${base}/v1`) && text.includes('ANTHROPIC_BASE_URL'), 'the snippets name this gateway');
    assert.ok(await page.locator('a[href="/docs"]').count() > 0, 'a link to the API docs');
  });

  await visit('sources', async () => {
    const sources = (await json('/v1/sources')).data;
    const names = await page.locator('#view tbody td:first-child').allTextContents();
    assert.deepEqual(names, sources.map((x) => x.source));
  });

  await visit('projects', async () => {
    const before = await page.locator('#view tbody tr').count();
    await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'x-project': 'hermes', 'x-source': 'browser-test' },
      body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hello' }] }),
    });
    // The view refreshes by itself (every 5 s): the new project appears without a reload.
    await page.waitForSelector('#view tbody a:text-is("hermes")', { timeout: 15000 });
    assert.equal(await page.locator('#view tbody tr').count(), before + 1);
  });

  // The admin token: Keys and budgets on the gateway that asks for one shows the error with the
  // hint and nothing of /v1/keys; the token saved in the sidebar loads it (by label, never the
  // key's token), still used after a reload; cleared, the hint is back.
  const keysAsk = async (when) => {
    await page.waitForSelector('body[data-ready="keys"] .state.error');
    const text = await page.locator('#view').textContent();
    assert.ok(text.includes('set the admin token in the sidebar') && !text.includes('Team Token'), `${when}: ${text}`);
    // The browser's own console line for the refused call, and nothing else.
    assert.ok(problems.every((p) => p.includes('status of 401')), `${when}: ${problems.join('; ')}`);
    problems.length = 0;
  };
  const keysShown = async (when) => {
    await page.waitForSelector('body[data-ready="keys"] #view tbody tr:has-text("Team Token")');
    const text = await page.locator('#view tbody tr', { hasText: 'Team Token' }).textContent();
    assert.ok(text.includes('of $2') && text.includes('daily'), `${when}: ${text}`);
    assert.equal(await page.locator('.state.error').count(), 0, when);
    assert.ok(!(await page.content()).includes(keyToken), `${when}: no key token on the page`);
    assert.deepEqual(problems, [], `${when}: ${problems.join('; ')}`);
  };
  problems.length = 0;
  await page.goto(`${tokenBase}/#keys`);
  await keysAsk('without a token');
  await page.fill('#token', adminToken);
  await page.click('#token-form button[type="submit"]');
  await keysShown('token saved');
  await page.reload();
  await keysShown('after a reload');
  await page.fill('#token', '');
  await page.click('#token-form button[type="submit"]');
  await keysAsk('token cleared');
  results.push('admin token: asked for, kept across a reload, cleared');

  // The interactive API docs, served from the binary: Swagger UI lists the operations, with
  // no console error and nothing fetched from off the machine.
  problems.length = 0;
  await page.goto(`${base}/docs`);
  await page.waitForSelector('.opblock', { timeout: 15000 });
  const operations = await page.locator('.opblock').count();
  assert.ok(operations >= 20, `${operations} operations in the docs`);
  await page.screenshot({ path: join(shots, 'docs.png') });
  assert.deepEqual(problems, [], `docs: ${problems.join('; ')}`);
  results.push(`docs: ok, ${operations} operations`);

  console.log(results.join('\n'));
  console.log('portal: every view passed');
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}

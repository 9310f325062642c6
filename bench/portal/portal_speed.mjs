// The portal's speed over a large ledger, in headless Chromium: every view of the portal (found
// from its `#nav a[data-view]` links), each loaded LOADS + 1 times as a full page load (from
// about:blank), timed from the navigation's start to the view's rendered mark
// (`document.body.dataset.ready === <view>`), with the API calls (`/v1/*`) it made meanwhile.
// The first load of each view is reported apart as its cold load (the first of all is the
// browser's first page too); the others give the median.
//
// Usage: node portal_speed.mjs <gateway url> <out.json> [LOADS, default 5]
// playwright-core is loaded from $BROWSER_NODE (bench/run.sh installs it there, as
// tests/browser/test_portal.py does); Chromium is Debian's (/usr/bin/chromium).
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(join(process.env.BROWSER_NODE, 'package.json'));
const { chromium } = require('playwright-core');
const [base, out, loadsArg] = process.argv.slice(2);
const LOADS = Number(loadsArg || 5);
// What a view may still call right after its mark (a second request it starts late), and the
// most a view may take before it counts as failed.
const SETTLE_MS = 300;
const TIMEOUT_MS = 30000;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null;
};

const profile = mkdtempSync(join(tmpdir(), 'bench-portal-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
// The moment the view's mark appears, in the page's own clock (ms since its navigation began).
await context.addInitScript(() => {
  new MutationObserver(() => {
    const ready = document.body && document.body.dataset.ready;
    window.__readyAt = window.__readyAt || {};
    if (ready && !(ready in window.__readyAt)) window.__readyAt[ready] = performance.now();
  }).observe(document, { attributes: true, subtree: true, attributeFilter: ['data-ready'] });
});
const page = context.pages()[0] || (await context.newPage());
const problems = [];
page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
let calls = [];
page.on('request', (r) => {
  const url = new URL(r.url());
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) && url.protocol !== 'data:' && url.protocol !== 'about:') {
    problems.push(`off-box request: ${r.url()}`);
  }
  if (url.pathname.startsWith('/v1/')) calls.push(r);
});

async function load(view) {
  await page.goto('about:blank');
  problems.length = 0;
  calls = [];
  await page.goto(`${base}/#${view}`);
  await page.waitForFunction((v) => window.__readyAt && v in window.__readyAt, view, { timeout: TIMEOUT_MS });
  const readyMs = await page.evaluate((v) => window.__readyAt[v], view);
  await page.waitForTimeout(SETTLE_MS);
  const error = await page.locator('.state.error').allTextContents();
  const timings = [];
  for (const r of calls) {
    const response = await r.response();
    if (response) await response.finished();
    const t = r.timing();
    if (t.responseEnd > 0) timings.push({ path: new URL(r.url()).pathname + new URL(r.url()).search, ms: t.responseEnd, status: response && response.status() });
  }
  return { readyMs, calls: calls.length, api: timings, error: error.join(' ').trim() || null, problems: [...problems] };
}

const result = { base, loads: LOADS, settle_ms: SETTLE_MS, views: [] };
try {
  await page.goto(`${base}/`);
  await page.waitForSelector('#nav a[data-view]', { timeout: TIMEOUT_MS });
  const views = await page.$$eval('#nav a[data-view]', (as) => as.map((a) => a.dataset.view));
  for (const view of views) {
    const runs = [];
    let failure = null;
    for (let i = 0; i <= LOADS; i++) {
      try {
        runs.push(await load(view));
      } catch (e) {
        failure = `${e.message.split('\n')[0]}`;
        break;
      }
    }
    const warm = runs.slice(1).map((r) => r.readyMs);
    const last = runs[runs.length - 1] || {};
    const entry = {
      view,
      cold_ms: runs[0] ? Math.round(runs[0].readyMs) : null,
      median_ms: warm.length ? Math.round(median(warm)) : null,
      loads_ms: warm.map(Math.round),
      api_calls: runs[0] ? runs[0].calls : null,
      api_calls_each_load: runs.map((r) => r.calls),
      api: (last.api || []).map((a) => ({ ...a, ms: Math.round(a.ms) })),
      error: failure || runs.map((r) => r.error).find((e) => e) || null,
      problems: [...new Set(runs.flatMap((r) => r.problems))],
    };
    result.views.push(entry);
    console.log(`  ${view.padEnd(12)} cold ${String(entry.cold_ms).padStart(6)} ms  median ${String(entry.median_ms).padStart(6)} ms  ` +
      `${entry.api_calls} API call(s)` + (entry.error ? `  ERROR: ${entry.error}` : '') + (entry.problems.length ? `  ${entry.problems.join('; ')}` : ''));
  }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
  writeFileSync(out, JSON.stringify(result, null, 1));
}

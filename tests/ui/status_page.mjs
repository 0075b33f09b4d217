// The status page in a real browser (Debian's chromium, driven by playwright-core), against a running host. Run by
// tests/ui/status_page_test.cpp, which starts the host and the load, in two phases:
//   live    — under load: the page asks for the admin token and keeps it; it renders with no console error; the
//             plot has points; a plugin swapped on disk (the script installs --swap-from as --swap-to, copy beside
//             then rename) appears in the reload history within 2 s. Screenshot: status-live.png.
//   figures — the load stopped and consumed: every agent's and pipeline's figures on the page equal /agents and
//             /pipelines; the table form reads a key (--table, --key, --expect). Screenshot: status-figures.png.
// Prints what it checked; exits non-zero with the reason on the first failure.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function args() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) throw new Error('usage: --name value ...');
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const required of ['url', 'phase', 'out']) if (!out[required]) throw new Error('--' + required + ' is required');
  return out;
}

async function until(what, condition, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await condition();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(what + ' within ' + timeoutMs + ' ms' + (last instanceof Error ? ': ' + last.message : ''));
}

async function api(o, p) {
  const response = await fetch(o.url + p, { headers: o.token ? { Authorization: 'Bearer ' + o.token } : {} });
  if (response.status !== 200) throw new Error(p + ': HTTP ' + response.status);
  return response.json();
}

// What the page shows in table `id`, row `key`: field -> number (the cells marked data-field).
async function figures(page, id, key) {
  return page.evaluate(([id, key]) => {
    const row = [...document.querySelectorAll('#' + id + ' tbody tr')].find((r) => r.dataset.key === key);
    if (!row) return null;
    const out = {};
    for (const td of row.querySelectorAll('td[data-field]')) out[td.dataset.field] = td.textContent;
    return out;
  }, [id, key]);
}

async function live(o, page) {
  // The token: asked for, given, kept for the session (a reload of the page does not ask again).
  if (o.token) {
    await page.waitForSelector('#token-form:not([hidden])', { timeout: 10000 });
    console.log('ok: the page asks for the admin token');
    await page.fill('#token', o.token);
    await page.click('#token-form button');
  }
  await page.waitForSelector('#status:not([hidden])', { timeout: 10000 });
  if (o.token) {
    await page.reload();
    await page.waitForSelector('#status:not([hidden])', { timeout: 10000 });
    console.log('ok: the token is kept for the session');
  }
  await until('agents listed', async () => (await page.locator('#agents tbody tr').count()) > 0, 10000);

  // The plot has points, and they grow.
  const points = async () => Number(await page.locator('.plot').first().getAttribute('data-points'));
  await until('the plot has 3 points', async () => (await points()) >= 3, 20000);
  const before = await points();
  await until('the plot grows', async () => (await points()) > before, 5000);
  const canvases = await page.locator('.plot canvas').count();
  if (canvases === 0) throw new Error('the plot drew no canvas');
  console.log('ok: the plot has ' + (await points()) + ' points');

  // A plugin swap shows in the reload history within 2 s.
  const rows = async () => page.locator('#reloads tbody tr').count();
  const reloadsBefore = await rows();
  const partial = path.join(path.dirname(o['swap-to']), '.' + path.basename(o['swap-to']) + '.partial');
  fs.copyFileSync(o['swap-from'], partial);
  fs.chmodSync(partial, 0o755);
  const swapped = Date.now();
  fs.renameSync(partial, o['swap-to']);
  await until('the swap in the reload history', async () => {
    if ((await rows()) <= reloadsBefore) return false;
    const first = await page.locator('#reloads tbody tr').first().innerText();
    return first.includes('swapped');
  }, 2000);
  console.log('ok: the swap appeared in the reload history after ' + (Date.now() - swapped) + ' ms');
  await page.screenshot({ path: path.join(o.out, 'status-live.png'), fullPage: true });
}

async function settledFigures(o, page) {
  await page.waitForSelector('#status:not([hidden])', { timeout: 10000 });
  // Agents: every figure on the page equals /agents (the load stopped: they no longer move).
  const agents = await api(o, '/agents');
  if (agents.length === 0) throw new Error('/agents lists no agent');
  for (const a of agents) {
    const key = a.pipeline + '/' + a.agent;
    await until('the page shows ' + key + ' as /agents does', async () => {
      const shown = await figures(page, 'agents', key);
      if (!shown) return false;
      for (const field of ['processed', 'outputs', 'failures', 'restarts', 'quarantined_records', 'dead_lettered'])
        if (shown[field] !== String(a[field])) return false;
      return true;
    }, 5000);
    console.log('ok: ' + key + ' processed ' + a.processed + ' on the page and in /agents');
  }
  // Pipelines and partitions: equal /pipelines.
  const pipelines = await api(o, '/pipelines');
  for (const p of pipelines) {
    const lag = p.partitions.reduce((sum, x) => sum + (x.lag ?? 0), 0);
    await until('the page shows pipeline ' + p.app + ' as /pipelines does', async () => {
      const shown = await figures(page, 'pipelines', p.app);
      return shown && shown.partitions === String(p.partitions.length) && shown.lag === String(lag) &&
             shown.rebalances === String(p.rebalances);
    }, 5000);
    for (const x of p.partitions) {
      const key = p.app + '/' + x.topic + '/' + x.partition;
      await until('the page shows ' + key + ' as /pipelines does', async () => {
        const shown = await figures(page, 'partitions', key);
        return shown && shown.committed === String(x.committed) && shown.lag === String(x.lag);
      }, 5000);
    }
    console.log('ok: pipeline ' + p.app + ': ' + p.partitions.length + ' partitions, lag ' + lag + ', as /pipelines');
  }
  // The table form.
  if (o.table) {
    await page.fill('#table-name', o.table);
    await page.fill('#table-key', o.key);
    await page.click('#table-form button');
    await until('the table form reads ' + o.key, async () => {
      const text = await page.locator('#table-result').innerText();
      return text.startsWith('200 ') && text.includes(JSON.stringify(o.expect));
    }, 5000);
    console.log('ok: the table form read ' + o.table + '/' + o.key);
  }
  await page.screenshot({ path: path.join(o.out, 'status-figures.png'), fullPage: true });
}

async function main() {
  const o = args();
  fs.mkdirSync(o.out, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'mephisto-chromium-'));
  // No internet here: Chromium must not try its own connections (updates, sync, field trials).
  // A fresh profile each run (the persistent context's user data dir, removed at the end).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.MEPHISTO_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
           '--no-first-run', '--disable-sync', '--disable-quic'],
  });
  const problems = [];
  try {
    const page = context.pages()[0] || await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') problems.push('console error: ' + m.text()); });
    page.on('pageerror', (e) => problems.push('page error: ' + e.message));
    page.on('requestfailed', (r) => problems.push('request failed: ' + r.url() + ' ' + r.failure()?.errorText));
    if (o.phase === 'figures' && o.token) {
      await page.goto(o.url + '/');
      await page.evaluate((t) => sessionStorage.setItem('mephisto-token', t), o.token);
    }
    await page.goto(o.url + '/');
    if (o.phase === 'live') await live(o, page);
    else if (o.phase === 'figures') await settledFigures(o, page);
    else throw new Error('unknown phase ' + o.phase);
    // The only 401s expected are the token prompt's, before the token was given.
    const real = problems.filter((p) => !(p.includes('401') && p.startsWith('console error')));
    if (real.length) throw new Error(real.join('\n'));
    console.log('ok: no console errors');
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e) => {
  console.error('FAILED: ' + e.message);
  process.exit(1);
});

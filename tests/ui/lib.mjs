// lib.mjs — shared by the browser scenarios (run by tests/it/ui.rs): launches Debian's Chromium
// through playwright-core (never Playwright's own browsers), logs in, waits, asserts, takes
// screenshots, and ends the process on its own after a deadline so a scenario never hangs.
// Any uncaught page error or Content-Security-Policy violation fails the scenario.

import { chromium } from 'playwright-core';

export const env = {
  url: required('LOGRAFT_URL').replace(/\/$/, ''),
  user: required('LOGRAFT_USER'),
  password: required('LOGRAFT_PASSWORD'),
  token: required('LOGRAFT_TOKEN'),
  chromium: process.env.CHROMIUM || '/usr/bin/chromium',
  shots: process.env.SCREENSHOT_DIR || '',
};

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set (tests/it/ui.rs sets it)`);
    process.exit(2);
  }
  return value;
}

const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export class AssertionError extends Error {}

export function assert(condition, message) {
  if (!condition) throw new AssertionError(message);
}

export function assertEqual(actual, expected, message) {
  if (actual !== expected) {
    throw new AssertionError(`${message}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

/** Poll `probe` until it returns a truthy value; fail with `message` (and the last value). */
export async function eventually(probe, message, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new AssertionError(`${message} (last: ${detail})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Save `<dir>/<name>.png` when a screenshot folder is set. */
export async function screenshot(page, name, options = {}) {
  if (!env.shots) return;
  await page.screenshot({ path: `${env.shots}/${name}.png`, ...options });
}

/** The hash part of the page's URL, decoded into `{page, params}`. */
export function hashOf(page) {
  const hash = new URL(page.url()).hash;
  const split = hash.indexOf('?');
  return {
    path: split === -1 ? hash : hash.slice(0, split),
    params: new URLSearchParams(split === -1 ? '' : hash.slice(split + 1)),
  };
}

/** Fill the login form and wait until the app shows its top bar. */
export async function logIn(page, { user = env.user, password = env.password } = {}) {
  await page.locator('#login-user').waitFor();
  await page.fill('#login-user', user);
  await page.fill('#login-password', password);
  await page.press('#login-password', 'Enter');
  await page.locator('#topbar').waitFor({ state: 'visible' });
}

/** The rows of the results table as `{ts, text, message, level}`. */
export async function resultRows(page) {
  return page.$$eval('#results tbody tr.hit', (rows) =>
    rows.map((row) => ({
      ts: row.dataset.ts,
      id: row.dataset.id,
      text: row.textContent,
      message: row.querySelector('.cell-message').textContent,
      level: row.querySelector('.cell-level').textContent,
    })),
  );
}

/** Wait until no search is in flight and the summary shows a count; returns it. */
export async function hitCount(page) {
  const text = await eventually(async () => {
    const loading = await page.$eval('.search-page', (el) => el.classList.contains('is-loading'));
    const summary = await page.textContent('#summary');
    return !loading && /^[\d,]+ hits?$/.test(summary.trim()) && summary.trim();
  }, 'the search finishes with a hit count');
  return Number(text.replace(/[^\d]/g, ''));
}

/** POST lines to a runner's ingest endpoint with the admin token (on `url`'s node). */
export async function ingest(runner, lines, url = env.url) {
  const response = await fetch(`${url}/api/v1/ingest/${runner}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${env.token}` },
    body: lines.join('\n') + '\n',
  });
  assert(response.ok, `ingest to ${runner}: HTTP ${response.status} ${await response.text()}`);
}

/** Total matches of `q` through the API (token), for waiting on indexing. */
export async function apiCount(q) {
  const response = await fetch(`${env.url}/api/v1/search?limit=1&q=${encodeURIComponent(q)}`, {
    headers: { Authorization: `Bearer ${env.token}` },
  });
  assert(response.ok, `search ${q}: HTTP ${response.status}`);
  return (await response.json()).total;
}

/**
 * Run one scenario: a fresh browser with a 1280×800 page, `body({browser, context, page})`,
 * exit code 0 only when it finished and the page raised no error. `contextOptions` go to
 * `browser.newContext` (the hostile test turns the CSP off there).
 */
export function scenario(name, body, { timeoutMs = 90_000, contextOptions = {} } = {}) {
  const timer = setTimeout(() => {
    console.error(`${name}: timed out after ${timeoutMs / 1000} s`);
    process.exit(3);
  }, timeoutMs);
  const problems = [];
  (async () => {
    const browser = await chromium.launch({ executablePath: env.chromium, args: LAUNCH_ARGS, timeout: 30_000 });
    let page;
    try {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...contextOptions });
      context.setDefaultTimeout(20_000);
      page = await context.newPage();
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
      page.on('console', (message) => {
        const text = message.text();
        if (/Content Security Policy/i.test(text)) problems.push(`CSP violation: ${text}`);
        if (message.type() === 'error' && !/status of 40[01]/.test(text)) console.log(`[browser error] ${text}`);
      });
      await body({ browser, context, page });
      assert(!problems.length, `the page reported problems:\n${problems.join('\n')}`);
      console.log(`${name}: ok`);
    } catch (err) {
      process.exitCode = 1;
      console.error(`${name}: FAILED\n${err.stack || err}`);
      if (problems.length) console.error(problems.join('\n'));
      if (page) await screenshot(page, `${name}-failure`).catch(() => {});
    } finally {
      clearTimeout(timer);
      await browser.close();
    }
  })().catch((err) => {
    console.error(`${name}: could not start: ${err.stack || err}`);
    process.exit(4);
  });
}

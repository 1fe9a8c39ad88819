// search.mjs — the Search page against lines written by tests/it/ui.rs: 60 "uitestmarker request
// NN served by <service>" lines two minutes apart over the last two hours (JSON, with
// fields.service and a level), and 230 "uiscroll" lines. Covers: a shared link survives the
// login, finding a line, query history, a syntax error shown at its position, drag-to-zoom on
// the histogram, filters from the field sidebar, an expanded hit, context, infinite scroll,
// export, the cluster page (single node), dark theme and a narrow window.

import {
  assert,
  assertEqual,
  env,
  eventually,
  hashOf,
  hitCount,
  logIn,
  resultRows,
  scenario,
  screenshot,
} from './lib.mjs';

scenario('search', async ({ page }) => {
  // A shared link opened without a session: login first, then exactly that search.
  const link = `${env.url}/#/search?q=uitestmarker&from=-3h`;
  await page.goto(link);
  await page.locator('#login-user').waitFor();
  await screenshot(page, 'login');
  await logIn(page);
  await eventually(() => page.url() === link, `back at ${link} after logging in`);
  assertEqual(await page.inputValue('#query'), 'uitestmarker', 'the query bar holds the linked query');

  // The lines the test wrote are found, newest first.
  assertEqual(await hitCount(page), 60, 'hits for uitestmarker');
  let rows = await resultRows(page);
  assertEqual(rows.length, 60, 'rows shown');
  assert(rows.some((row) => row.message === 'uitestmarker request 07 served by search'), 'line 07 is shown as written');
  assert(rows[0].message.includes('request 59'), `newest first, got ${rows[0].message}`);
  for (let i = 1; i < rows.length; i++) assert(rows[i - 1].ts >= rows[i].ts, 'rows are newest first');
  const levels = await page.$$eval('#results .cell-level .lvl', (spans) => spans.map((span) => span.className));
  assert(levels.some((c) => c.includes('lvl-error')) && levels.some((c) => c.includes('lvl-warn')), 'levels are coloured by class');
  await eventually(() => page.$('#histogram svg rect.bar'), 'the histogram draws bars');
  await eventually(() => page.$('#fields [data-field="fields.service"]'), 'the sidebar lists fields.service');
  await screenshot(page, 'search');

  // A syntax error is shown under the query, with a caret at the position the API reports.
  await page.fill('#query', 'uitestmarker AND (level:error');
  await page.press('#query', 'Enter');
  const error = page.locator('#query-error');
  await error.waitFor({ state: 'visible' });
  const message = await error.locator('.query-error-message').textContent();
  const position = Number(/at position (\d+)/.exec(message)?.[1]);
  assert(Number.isInteger(position), `the error names a position: ${message}`);
  const where = (await error.locator('.query-error-where').textContent()).split('\n');
  assertEqual(where[0], 'uitestmarker AND (level:error', 'the error repeats the query');
  assertEqual(where[1], `${' '.repeat(position)}^`, 'the caret sits at the reported position');
  assertEqual(await page.getAttribute('#query', 'aria-invalid'), 'true', 'the query is marked invalid');
  await screenshot(page, 'search-syntax-error');

  // Query history: ↑ brings back the last query that ran.
  await page.fill('#query', '');
  await page.press('#query', 'ArrowUp');
  assertEqual(await page.inputValue('#query'), 'uitestmarker', '↑ recalls the last query');

  // Drag across the histogram: the URL gets an absolute range and the hits stay inside it.
  await page.goto(link);
  assertEqual(await hitCount(page), 60, 'hits before zooming');
  await eventually(() => page.$('#histogram svg rect.bar'), 'bars before zooming');
  const box = await page.locator('#histogram svg').boundingBox();
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width * 0.5, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.7, y, { steps: 5 });
  await page.mouse.move(box.x + box.width * 0.85, y, { steps: 5 });
  await page.mouse.up();
  const zoomed = await eventually(() => {
    const { params } = hashOf(page);
    return /^\d{4}-/.test(params.get('from') || '') && /^\d{4}-/.test(params.get('to') || '') && params;
  }, 'dragging sets an absolute from/to in the URL');
  const from = new Date(zoomed.get('from')).getTime();
  const to = new Date(zoomed.get('to')).getTime();
  assert(to > from, 'the range is not empty');
  assertEqual(zoomed.get('q'), 'uitestmarker', 'zooming keeps the query');
  const zoomedCount = await hitCount(page);
  assert(zoomedCount > 0 && zoomedCount < 60, `zooming narrows the hits (got ${zoomedCount})`);
  rows = await resultRows(page);
  assertEqual(rows.length, zoomedCount, 'every hit of the zoomed range is shown');
  for (const row of rows) {
    const ts = new Date(row.ts).getTime();
    assert(ts >= from && ts < to, `${row.ts} is inside ${zoomed.get('from')}..${zoomed.get('to')}`);
  }
  assert(!(await page.textContent('#range-button')).startsWith('Last'), 'the range button shows the absolute range');

  // The field sidebar: top values of fields.service, then "filter for" one of them.
  await page.click('#fields [data-field="fields.service"]');
  const payments = page.locator('#fields .value', { hasText: 'payments' });
  await payments.waitFor();
  await screenshot(page, 'search-fields');
  await payments.locator('.filter-for').click();
  await eventually(() => hashOf(page).params.get('q') === 'uitestmarker AND fields.service:payments', 'the filter is added to the URL');
  assertEqual(await page.inputValue('#query'), 'uitestmarker AND fields.service:payments', 'the query bar shows the filter');
  const paymentsCount = await hitCount(page);
  rows = await resultRows(page);
  assert(paymentsCount > 0 && paymentsCount < zoomedCount, `the filter narrows the hits (${paymentsCount} of ${zoomedCount})`);
  assert(rows.every((row) => row.message.endsWith('served by payments')), 'only payments lines remain');
  assertEqual(hashOf(page).params.get('from'), zoomed.get('from'), 'filtering keeps the zoomed range');
  await screenshot(page, 'search-filtered');

  // "Filter out" a level.
  await page.click('#fields [data-field="level"]');
  const levelValue = page.locator('#fields [data-field="level"] ~ .field-values .value').first();
  await levelValue.waitFor();
  const excluded = (await levelValue.locator('.value-text').textContent()).trim();
  await levelValue.locator('.filter-out').click();
  const expectedQuery = `uitestmarker AND fields.service:payments AND NOT level:${excluded}`;
  await eventually(() => hashOf(page).params.get('q') === expectedQuery, `the exclusion is added (${expectedQuery})`);
  const withoutLevel = await hitCount(page);
  rows = await resultRows(page);
  assert(withoutLevel < paymentsCount, `excluding ${excluded} removes lines`);
  assert(rows.every((row) => row.level.trim() !== excluded), `no ${excluded} lines remain`);

  // Expand a hit: all its fields as a table.
  await page.goto(`${env.url}/#/search?q=uitestmarker&from=-3h`);
  await hitCount(page);
  const target = page.locator('#results tr.hit', { hasText: 'uitestmarker request 31 ' });
  await target.click();
  assertEqual(await target.getAttribute('aria-expanded'), 'true', 'the row opens');
  const details = page.locator('#results tr.hit-details');
  await details.waitFor();
  assertEqual((await details.locator('[data-field="fields.service"] .detail-value').textContent()).trim(), 'search', 'fields.service of line 31');
  assertEqual((await details.locator('[data-field="fields.latency_ms"] .detail-value').textContent()).trim(), '93', 'fields.latency_ms of line 31');
  assertEqual((await details.locator('[data-field="runner"] .detail-value').textContent()).trim(), 'uiapp', 'the runner');
  await screenshot(page, 'search-expanded');

  // Context: the lines around it from the same file, the hit marked.
  await details.locator('.context-button').click();
  const context = page.locator('#context');
  await context.locator('.context-line.is-hit').waitFor();
  const lines = await context.locator('.context-line').allTextContents();
  const hitIndex = lines.findIndex((text) => text.includes('uitestmarker request 31 '));
  assert(hitIndex > 0, 'the hit is among the context lines');
  assert(lines[hitIndex - 1].includes('uitestmarker request 30 '), `the line before: ${lines[hitIndex - 1]}`);
  assert(lines[hitIndex + 1].includes('uitestmarker request 32 '), `the line after: ${lines[hitIndex + 1]}`);
  assert((await context.locator('.context-line.is-hit').textContent()).includes('request 31 '), 'the hit is marked');
  assertEqual(lines.length, 51, '25 lines before, the hit and 25 after');
  await screenshot(page, 'context');
  await page.keyboard.press('Escape');
  await context.waitFor({ state: 'detached' });

  // Keyboard: a focused row opens with Enter.
  const keyboardRow = page.locator('#results tr.hit', { hasText: 'uitestmarker request 40 ' });
  await keyboardRow.focus();
  await page.keyboard.press('Enter');
  assertEqual(await keyboardRow.getAttribute('aria-expanded'), 'true', 'Enter opens a focused row');

  // Infinite scroll: 230 uiscroll lines arrive in pages of 100 as the list scrolls.
  await page.goto(`${env.url}/#/search?q=uiscroll&from=-3h`);
  assertEqual(await hitCount(page), 230, 'uiscroll hits');
  assertEqual((await resultRows(page)).length, 100, 'the first page');
  for (const expected of [200, 230]) {
    await page.locator('#load-more').scrollIntoViewIfNeeded();
    await eventually(async () => (await resultRows(page)).length === expected, `scrolling loads up to ${expected} rows`);
  }
  await page.locator('#results-end').scrollIntoViewIfNeeded();
  assertEqual((await page.textContent('#results-end')).trim(), 'End of results.', 'the end is marked');
  const ids = (await resultRows(page)).map((row) => row.id);
  assertEqual(new Set(ids).size, 230, 'no line is shown twice across pages');

  // Export: the link carries the search and streams every match.
  const href = await page.getAttribute('#export-ndjson', 'href');
  const exportUrl = new URL(href, env.url);
  assertEqual(exportUrl.searchParams.get('q'), 'uiscroll', 'export carries the query');
  assertEqual(exportUrl.searchParams.get('format'), 'ndjson', 'export format');
  const exported = await page.request.get(exportUrl.toString());
  assertEqual(exported.status(), 200, 'export answers');
  assertEqual((await exported.text()).trim().split('\n').length, 230, 'export has every match');
  const csv = new URL(await page.getAttribute('#export-csv', 'href'), env.url);
  assertEqual(csv.searchParams.get('format'), 'csv', 'CSV export link');

  // A cluster search that some nodes did not answer: a banner names them (as text). The
  // response is rewritten here because this test runs one node.
  const failedNode = { node: 'node-b <img src=x>', error: 'timed out after 5s' };
  const partial = /\/api\/v1\/(search|histogram|fields)\?/;
  await page.route(partial, async (route) => {
    const response = await route.fetch();
    const body = await response.json();
    await route.fulfill({ response, json: { ...body, nodes: { queried: 3, failed: [failedNode] } } });
  });
  await page.goto(link);
  const banner = page.locator('#partial-banner');
  await banner.waitFor({ state: 'visible' });
  const bannerText = await banner.textContent();
  assert(bannerText.includes('1 of 3 nodes did not answer'), `the banner counts the nodes: ${bannerText}`);
  assert(bannerText.includes(`${failedNode.node}: ${failedNode.error}`), `the banner names the node and why: ${bannerText}`);
  await screenshot(page, 'search-partial');
  await page.unroute(partial);
  await page.reload();
  await hitCount(page);
  assert(await banner.isHidden(), 'no banner when every node answered');

  // Dark theme (follows the OS) and a narrow window.
  await page.goto(link);
  await hitCount(page);
  await page.emulateMedia({ colorScheme: 'dark' });
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assertEqual(background, 'rgb(15, 19, 24)', 'the dark theme applies');
  await screenshot(page, 'search-dark');
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 420, height: 800 });
  await eventually(
    async () => (await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)) <= 0,
    'no sideways scrolling in a narrow window',
  );
  assert(!(await page.isVisible('#results th.cell-node')), 'the node column gives way in a narrow window');
  await screenshot(page, 'search-narrow');
  await page.setViewportSize({ width: 1280, height: 800 });

  // The cluster page, on a node without the cluster API: this node alone, with its runner.
  await page.click('nav a[data-page="cluster"]');
  await page.locator('#nodes tbody tr').first().waitFor();
  await page.locator('.runners tr[data-runner="uiapp"]').waitFor();
  await screenshot(page, 'cluster', { fullPage: true });
});

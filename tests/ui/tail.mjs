// tail.mjs — live tail and session expiry. Lines go in through POST /api/v1/ingest/uitail (the
// `http` runner tests/it/ui.rs created) while the page tails. Covers: a new line appears live;
// pausing holds lines back (and counts them) until resume; lines beyond what a paused page
// holds are shown as a "dropped" marker, and every line is either shown or counted; after the
// session ends, the next action goes to the login page and back to the same search.

import { apiCount, assert, assertEqual, env, eventually, hashOf, hitCount, ingest, logIn, resultRows, scenario, screenshot } from './lib.mjs';

const line = (msg) => JSON.stringify({ msg, level: 'info' });

scenario('tail', async ({ page, context }) => {
  await page.goto(env.url);
  await logIn(page);
  assertEqual(hashOf(page).path, '#/search', 'a plain visit lands on Search after logging in');

  // Live: a line written after the tail started shows up at the top.
  await page.goto(`${env.url}/#/search?q=runner:uitail`);
  await hitCount(page);
  await page.click('#live-toggle');
  assertEqual(await page.getAttribute('#live-toggle', 'aria-pressed'), 'true', 'live is on');
  await eventually(async () => (await page.textContent('#summary')).startsWith('Live:'), 'the tail is connected');
  await ingest('uitail', [line('uitail line one')]);
  await eventually(async () => (await resultRows(page)).some((row) => row.message === 'uitail line one'), 'the new line appears live');
  await screenshot(page, 'tail');

  // Pause: the next line is held back (and counted) until resume.
  await page.click('#live-pause');
  await ingest('uitail', [line('uitail line two')]);
  await eventually(async () => /1 new line held back/.test(await page.textContent('#summary')), 'the paused page counts the held line');
  assert(!(await resultRows(page)).some((row) => row.message === 'uitail line two'), 'a held line is not shown while paused');
  await page.click('#live-pause');
  await eventually(async () => {
    const rows = await resultRows(page);
    return rows[0]?.message === 'uitail line two' && rows[1]?.message === 'uitail line one';
  }, 'resume shows the held line on top');

  // More lines than a paused page holds (1000): the rest become a "dropped" marker, and every
  // line is either shown or counted as dropped.
  const burst = 1100;
  await page.click('#live-pause');
  await ingest('uitail', Array.from({ length: burst }, (_, i) => line(`uiburst ${i}`)));
  await eventually(async () => (await apiCount('uiburst')) === burst, 'the burst is indexed');
  await eventually(async () => {
    const summary = await page.textContent('#summary');
    const match = /(\d[\d,]*) new lines? held back(?:, (\d[\d,]*) dropped)?/.exec(summary);
    const held = match ? Number(match[1].replace(/,/g, '')) : 0;
    const dropped = match && match[2] ? Number(match[2].replace(/,/g, '')) : 0;
    return held + dropped === burst;
  }, 'the paused page accounts for every line of the burst');
  await page.click('#live-pause');
  const markers = page.locator('#results tr.marker-dropped');
  await markers.first().waitFor();
  const dropped = (await markers.allTextContents()).reduce((sum, text) => sum + Number(/^([\d,]+)/.exec(text)[1].replace(/,/g, '')), 0);
  const shown = (await resultRows(page)).filter((row) => row.message.startsWith('uiburst ')).length;
  assert(dropped >= burst - 1000, `at least ${burst - 1000} lines are counted as dropped (got ${dropped})`);
  assertEqual(shown + dropped, burst, 'shown + dropped covers the burst');
  await screenshot(page, 'tail-dropped');

  // Leaving live mode shows the search again.
  await page.click('#live-toggle');
  assertEqual(await page.getAttribute('#live-toggle', 'aria-pressed'), 'false', 'live is off');
  assert((await hitCount(page)) >= 2, 'the search is back');

  // The session ends (logged out elsewhere); the next search goes to the login page, and
  // logging in comes back to the same search.
  const search = `${env.url}/#/search?q=uisession&from=-1h`;
  await page.goto(search);
  assertEqual(await hitCount(page), 5, 'uisession hits before expiry');
  const cookies = await context.cookies();
  const session = cookies.find((cookie) => cookie.name === 'lograft_session');
  assert(session && session.httpOnly, 'the session cookie is HttpOnly');
  const logout = await fetch(`${env.url}/api/v1/logout`, {
    method: 'POST',
    headers: { Cookie: `${session.name}=${session.value}`, 'x-lograft-csrf': '1' },
  });
  assertEqual(logout.status, 204, 'the session is ended server-side');
  await page.click('#search-button');
  await page.locator('#login-user').waitFor();
  assert((await page.textContent('main')).includes('Your session has ended'), 'the login page says why');
  await screenshot(page, 'login-expired');
  await logIn(page);
  await eventually(() => page.url() === search, `back at ${search} after logging in again`);
  assertEqual(await hitCount(page), 5, 'the same search runs again');

  // Logging out from the top bar ends the session.
  await page.click('#logout');
  await page.locator('#login-user').waitFor();
  const me = await page.request.get(`${env.url}/api/v1/me`);
  assertEqual(me.status(), 401, 'no session after logging out');
});

// logkit.mjs — a logkit slave registered with the cluster (a fleet moving to lograft), started by
// tests/it/ui.rs at LOGKIT_SLAVE_URL: the Cluster page lists it with the lograft node, marked
// as logkit, with its status and tag, and shows its runners, asked of it through logkit's API.

import { assert, env, eventually, logIn, scenario, screenshot } from './lib.mjs';

const slaveUrl = process.env.LOGKIT_SLAVE_URL;
assert(slaveUrl, 'tests/it/ui.rs sets LOGKIT_SLAVE_URL');

scenario('logkit', async ({ page }) => {
  await page.goto(`${env.url}/#/cluster`);
  await logIn(page);
  const row = page.locator(`#nodes tbody tr[data-node="${slaveUrl}"]`);
  await row.waitFor();
  await eventually(async () => (await row.locator('.badge-logkit').count()) === 1, 'the row is marked as logkit');
  const text = await row.textContent();
  assert(text.includes('ok'), `the slave is ok: ${text}`);
  assert(text.includes('logkit'), `its role is logkit: ${text}`);
  assert((await row.locator('.tag-input').inputValue()) === 'legacy', 'its tag');
  const section = page.locator('.node-section', { hasText: `Runners on ${slaveUrl}` });
  await eventually(async () => (await section.textContent()).includes('legacy-runner'), "its runners, asked of it");
  await screenshot(page, 'cluster-logkit-slave');
});

// deploy.mjs — the Deploy page (seed 002) on a real node started by tests/it/ui.rs, whose file
// LOGRAFT_LOG_PATH holds lines. Walks: create (name and remark with markup, shown as text),
// the buttons disabled before saving, a role edited in the runner editor (with its try-it), save, the unsaved-changes prompt,
// the plan (the file the node matches, what is added) and its confirmation, the log growing
// during the execution and the result, start (a green light in the list), stop, and delete
// with its second confirmation.

import { assert, assertEqual, env, eventually, logIn, scenario, screenshot } from './lib.mjs';

const logPath = process.env.LOGRAFT_LOG_PATH;
assert(logPath, 'tests/it/ui.rs sets LOGRAFT_LOG_PATH');
const NAME = '<b>web</b> & <img src=x onerror="window.__pwned=1">';
const REMARK = '<script>window.__pwned=1</script> remark';

const disabled = (page, id) => page.$eval(`#${id}`, (el) => el.disabled);

async function waitOver(page, expected) {
  await eventually(async () => (await page.textContent('#deploy-result')).trim() === expected, `the result says ${expected}`, 60_000);
}

scenario('deploy', async ({ page }) => {
  await page.goto(`${env.url}/#/deploy`);
  await logIn(page);
  await page.locator('#deploy-create').waitFor();
  await eventually(async () => (await page.textContent('#deploy-editor')).includes('Create a deployment'), 'an empty editor when nothing is started');

  // Create: name and remark in a dialog; the editor opens, nothing is in the list yet.
  await page.click('#deploy-create');
  await page.fill('#create-name', NAME);
  await page.fill('#create-remark', REMARK);
  await screenshot(page, 'deploy-create-dialog');
  await page.click('#create-ok');
  await page.locator('#deploy-editor #deploy-name').waitFor();
  assertEqual(await page.$$eval('#deploy-list .deploy-item', (items) => items.length), 0, 'not listed before it is saved');
  for (const id of ['deploy-deploy', 'deploy-start', 'deploy-stop', 'deploy-delete']) {
    assert(await disabled(page, id), `${id} is disabled before saving`);
  }
  assertEqual(await page.inputValue('#deploy-name'), NAME, 'the name as typed');
  assertEqual(await page.textContent('#deploy-title'), NAME, 'the title shows the name as text');

  // A role: an existing file runner config, on this node.
  await page.click('#deploy-add-role');
  const role = page.locator('#deploy-roles fieldset.role').first();
  await role.locator('.role-name').fill('uideploy');
  await role.locator('.role-hosts').fill('test-node');
  await role.locator('.role-body').fill(JSON.stringify({ reader: { mode: 'file', log_path: logPath, read_from: 'oldest' }, parser: { type: 'raw' } }, null, 2));
  await page.fill('#deploy-hosts', 'test-node');
  // The runner editor edits a role's config, with its "try it"; its config comes back.
  await role.locator('.role-edit').click();
  await page.locator('.runner-editor').waitFor();
  assert(await page.locator('.runner-editor .try-it').isVisible(), 'the runner editor has its try-it box');
  assert(!(await page.locator('.runner-editor .apply-target').isVisible()), 'nothing to apply to from a role');
  await screenshot(page, 'deploy-role-runner-editor');
  await page.click('#runner-use');
  await page.locator('.runner-editor').waitFor({ state: 'detached' });
  const used = JSON.parse(await role.locator('.role-body').inputValue());
  assertEqual(used.reader.log_path, logPath, 'the config came back from the runner editor');
  assertEqual(used.name, undefined, 'the role names the runner, not its body');
  await screenshot(page, 'deploy-editor-unsaved');
  await page.click('#deploy-save');
  await eventually(async () => (await page.$$eval('#deploy-list .deploy-item', (items) => items.length)) === 1, 'listed once saved');
  const listed = page.locator('#deploy-list .deploy-item').first();
  assertEqual(await listed.locator('.deploy-name').textContent(), NAME, 'the list shows the name as text');
  assertEqual(await listed.locator('.deploy-name *').count(), 0, 'no markup from the name');
  assert(!(await disabled(page, 'deploy-deploy')), 'deploy is enabled once saved (prepare allows it)');
  assert(await disabled(page, 'deploy-start'), 'start is not allowed in prepare');

  // Unsaved changes, then Create: asked whether to save or discard; keep editing.
  await page.fill('#deploy-remark', `${REMARK} (changed)`);
  assert(await disabled(page, 'deploy-deploy'), 'deploy waits for the change to be saved');
  await page.click('#deploy-create');
  await page.locator('#unsaved-dialog').waitFor();
  await screenshot(page, 'deploy-unsaved-prompt');
  await page.click('#unsaved-discard');
  await page.locator('#create-form').waitFor();
  await page.keyboard.press('Escape');
  await listed.locator('button').click();
  await eventually(async () => (await page.inputValue('#deploy-remark')) === REMARK, 'the discarded change is gone');

  // Deploy: the plan shows the file and what is added; confirm; the log grows; the result.
  await page.click('#deploy-deploy');
  await page.locator('#plan-dialog').waitFor();
  const plan = await page.textContent('#plan-dialog');
  assert(plan.includes(logPath), `the plan lists the matched file: ${plan}`);
  assert(plan.includes('uideploy added'), `the plan says what is added: ${plan}`);
  await screenshot(page, 'deploy-plan');
  await page.click('#plan-confirm');
  await waitOver(page, 'deployupdate: succeeded');
  const logLines = () => page.$$eval('#deploy-log li', (items) => items.map((li) => li.textContent));
  await eventually(async () => (await logLines()).some((line) => line.includes('runner uideploy: added')), 'the log says the runner was added');
  const log = await logLines();
  assert(log.length > 0, 'the log stays on screen');
  await screenshot(page, 'deploy-log-result');
  assert(!(await disabled(page, 'deploy-start')), 'start is allowed in deploysuccess');

  // Start: a green light in the list; delete is not allowed while started.
  await page.click('#deploy-start');
  await waitOver(page, 'start: succeeded');
  await eventually(async () => (await listed.locator('.light-ok').count()) === 1, 'a green light on the started deployment');
  assert(await disabled(page, 'deploy-delete'), 'a started deployment cannot be deleted');
  await screenshot(page, 'deploy-started');

  // Reloading the page shows the started deployment.
  await page.reload();
  await page.locator('#deploy-editor #deploy-name').waitFor();
  assertEqual(await page.inputValue('#deploy-name'), NAME, 'the started deployment is shown on load');

  // Stop, then delete with two confirmations.
  await page.click('#deploy-stop');
  await waitOver(page, 'stop: succeeded');
  await page.click('#deploy-delete');
  await page.locator('#delete-dialog').waitFor();
  await page.click('#delete-confirm');
  await page.locator('#delete-dialog-2').waitFor();
  await screenshot(page, 'deploy-delete-confirm');
  await page.click('#delete-really');
  await eventually(async () => (await page.$$eval('#deploy-list .deploy-item', (items) => items.length)) === 0, 'deleted');
  assertEqual(await page.evaluate(() => window.__pwned), undefined, 'no markup ran');
});

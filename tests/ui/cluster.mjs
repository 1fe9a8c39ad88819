// cluster.mjs — the Cluster page on a real three-node cluster started by tests/it/ui.rs:
// ui-a (tag web, the page's node), ui-b (tag web) and ui-c (tag db), listed in LOGRAFT_NODES.
// Covers: the nodes table (status, role, tag, version); the runner editor (an http runner with
// the json parser, "try it" on pasted lines, applied to the tag "web") and the runner then
// running on both web nodes and not on ui-c, with the lines each node read; editing a node's
// tag; an admin creating a join token for a new node; and ui-b going bad, then lost, once the Rust side has killed it. The kill is a
// handshake through files in SIGNAL_DIR: this script writes `kill-b`, the test kills ui-b and
// writes `b-killed`.

import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { assert, assertEqual, env, eventually, ingest, logIn, scenario, screenshot } from './lib.mjs';

const nodes = JSON.parse(process.env.LOGRAFT_NODES || '[]');
const signals = process.env.SIGNAL_DIR;
const version = process.env.LOGRAFT_VERSION;
assert(nodes.length === 3 && signals && version, 'tests/it/ui.rs sets LOGRAFT_NODES, SIGNAL_DIR and LOGRAFT_VERSION');
const [a, b, c] = nodes;
const RUNNER = 'uiweb';

/** Click Refresh and wait until the nodes table is drawn again from a fresh answer. */
async function refresh(page) {
  const answered = page.waitForResponse((response) => new URL(response.url()).pathname === '/api/v1/cluster/nodes');
  await page.click('#cluster-refresh');
  await answered;
  await page.locator('#cluster-refresh:not([disabled])').waitFor();
}

/** The nodes table as `{name, status, light, self, url, role, tag, version, heartbeat}`. */
async function nodeRows(page) {
  return page.$$eval('#nodes tbody tr', (rows) =>
    rows.map((row) => {
      const cells = row.querySelectorAll('td');
      return {
        name: row.dataset.node,
        status: cells[0].textContent.trim(),
        light: [...cells[0].querySelector('.light').classList].find((name) => name.startsWith('light-')),
        self: Boolean(cells[1].querySelector('.badge')),
        url: cells[2].textContent,
        role: cells[3].textContent,
        tag: row.querySelector('.tag-input').value,
        version: cells[5].textContent,
        heartbeat: cells[6].textContent,
      };
    }),
  );
}

async function statusOf(page, name) {
  const row = (await nodeRows(page)).find((node) => node.name === name);
  assert(row, `${name} is in the nodes table`);
  assertEqual(row.light, `light-${row.status}`, `${name}'s light matches its status`);
  return row.status;
}

/**
 * The runner section of node `name` once its statuses arrived: `{message, runners}` with
 * `runners[runner] = {running, state, stopButton, linesRead}`.
 */
function runnersOf(page, name) {
  return eventually(() => runnerSection(page, name), `${name}'s runners load`, 10_000);
}

/** `runnersOf` as it stands: null while the node's statuses are still loading. */
async function runnerSection(page, name) {
  return page.$$eval(
    '.node-section',
    (sections, name) => {
      const section = sections.find((s) => s.querySelector('h2').textContent === `Runners on ${name}`);
      if (!section) return null;
      const rows = [...section.querySelectorAll('.runners tbody tr')];
      if (rows.some((row) => row.textContent === 'Loading…')) return null;
      const runners = {};
      for (const row of rows.filter((row) => row.dataset.runner)) {
        const cells = row.querySelectorAll('td');
        runners[row.dataset.runner] = {
          running: cells[0].querySelector('.light').classList.contains('light-ok'),
          state: cells[0].textContent.trim(),
          stopButton: Boolean(row.querySelector('[data-action="stop"]')),
          linesRead: cells[2].textContent.trim(),
        };
      }
      const plain = rows.find((row) => !row.dataset.runner);
      return { message: plain ? plain.textContent.trim() : '', runners };
    },
    name,
  );
}

scenario('cluster', async ({ page }) => {
  // A link to the Cluster page survives the login.
  await page.goto(`${env.url}/#/cluster`);
  await logIn(page);
  await page.locator('#nodes tbody tr').first().waitFor();

  // 1. Every node, ok, with its role, tag and version; this node marked.
  const initial = await eventually(async () => {
    const rows = await nodeRows(page);
    return rows.length === 3 && rows.every((row) => row.status === 'ok') && rows;
  }, 'three nodes, all ok');
  assert(await page.isHidden('.cluster-page .notice'), 'no "not part of a cluster" notice');
  for (const node of nodes) {
    const row = initial.find((r) => r.name === node.name);
    assert(row, `${node.name} is listed`);
    assertEqual(row.url, node.url, `${node.name}'s URL`);
    assertEqual(row.tag, node.tag, `${node.name}'s tag`);
    assertEqual(row.version, version, `${node.name}'s version`);
    assert(['leader', 'voter'].includes(row.role), `${node.name} is leader or voter, got ${row.role}`);
    assert(/\d{2}:\d{2}:\d{2}/.test(row.heartbeat), `${node.name} has a last heartbeat, got ${row.heartbeat}`);
    assertEqual(row.light, 'light-ok', `${node.name}'s light`);
    assertEqual(row.self, node.name === a.name, `only ${a.name} is "this node"`);
  }
  assertEqual(initial.filter((row) => row.role === 'leader').length, 1, 'exactly one leader');
  // No runners yet on any node.
  for (const node of nodes) {
    const section = await runnersOf(page, node.name);
    assertEqual(section.message, 'No runners.', `${node.name} starts without runners`);
  }

  // 2. The runner editor: an http runner with the json parser; only the inputs that apply
  // to the chosen reader and parser are shown.
  await page.click('#new-runner');
  const editor = page.locator('dialog.dialog');
  await editor.waitFor();
  assertEqual(await editor.locator('.dialog-title').textContent(), 'New runner', 'the editor opens for a new runner');
  await editor.locator('[name="name"]').fill(RUNNER);
  await editor.locator('[name="reader.mode"]').selectOption('http');
  await editor.locator('[name="parser.type"]').selectOption('json');
  assert(await editor.locator('[name="reader.log_path"]').isHidden(), 'an http reader has no log path to fill in');
  assert(await editor.locator('[name="parser.regex"]').isHidden(), 'the json parser has no regex to fill in');
  assert(await editor.locator('[name="parser.level_key"]').isVisible(), 'the level key applies to every parser');

  // Try it: a JSON line and a line that is not JSON, parsed by the node as configured.
  const good = { ts: '2024-05-01T12:00:00Z', level: 'warn', msg: 'uicluster try line', service: 'checkout', latency_ms: 42 };
  await editor.locator('textarea.sample').fill(`${JSON.stringify(good)}\nnot json <b>at all</b>`);
  await editor.getByRole('button', { name: 'Try it' }).click();
  const sampleRows = editor.locator('.sample-table tbody tr');
  await eventually(async () => (await sampleRows.count()) === 2, 'the try-it table shows both lines');
  const cells = await sampleRows.nth(0).locator('td').allTextContents();
  assert(cells[0].startsWith('2024-05-01T12:00:00'), `the parsed ts, got ${cells[0]}`);
  assertEqual(cells[1], 'warn', 'the parsed level');
  assertEqual(cells[2], 'uicluster try line', 'the parsed message');
  const fields = JSON.parse(cells[3]);
  assertEqual(fields.service, 'checkout', 'fields.service');
  assertEqual(fields.latency_ms, 42, 'fields.latency_ms');
  assert((await sampleRows.nth(0).getAttribute('class')) !== 'parse-error', 'the JSON line parsed');
  assertEqual(await sampleRows.nth(1).getAttribute('class'), 'parse-error', 'the other line is marked as a parse error');
  assertEqual((await sampleRows.nth(1).locator('td').nth(2).textContent()), 'not json <b>at all</b>', 'kept raw, as text');
  await screenshot(page, 'cluster-runner-editor');

  // Apply to every node tagged "web".
  const tagInput = editor.locator('input[aria-label="Tag"]');
  await tagInput.fill('web');
  assert(await editor.locator('input[name="apply-target"][value="tag"]').isChecked(), 'typing a tag chooses "every node tagged"');
  await editor.getByRole('button', { name: 'Create runner' }).click();
  await eventually(
    async () => (await page.locator('dialog.dialog').count()) === 0,
    'the editor closes after a successful apply',
  ).catch(async (err) => {
    throw new Error(`${err.message}; apply results: ${await editor.locator('.apply-results').textContent().catch(() => '?')}`);
  });

  // The runner runs on both web nodes (each node starts it on its own), not on the db node.
  await eventually(async () => {
    await refresh(page);
    const seen = { [a.name]: await runnersOf(page, a.name), [b.name]: await runnersOf(page, b.name), [c.name]: await runnersOf(page, c.name) };
    const runs = (name) => {
      const runner = seen[name].runners[RUNNER];
      // An http runner is "listening"; logkit's runningStatus (the light, the Stop button) says running.
      return runner && runner.running && runner.stopButton && ['running', 'listening'].includes(runner.state);
    };
    assert(runs(a.name) && runs(b.name) && seen[c.name].message === 'No runners.', JSON.stringify(seen));
    return true;
  }, `${RUNNER} runs on ${a.name} and ${b.name}, and not on ${c.name}`, 30_000);
  const nodesRows = await nodeRows(page);
  for (const node of [a, b]) {
    assertEqual(nodesRows.find((row) => row.name === node.name).status, 'ok', `${node.name} still ok`);
  }

  // Each node reads its own lines: 2 sent to ui-a, 3 to ui-b.
  const line = (msg) => JSON.stringify({ msg, level: 'info' });
  await ingest(RUNNER, [line('uicluster a1'), line('uicluster a2')], a.url);
  await ingest(RUNNER, [line('uicluster b1'), line('uicluster b2'), line('uicluster b3')], b.url);
  await eventually(async () => {
    await refresh(page);
    const onA = await runnersOf(page, a.name);
    const onB = await runnersOf(page, b.name);
    return onA?.runners[RUNNER]?.linesRead === '2' && onB?.runners[RUNNER]?.linesRead === '3';
  }, 'the lines read per node: 2 on ui-a, 3 on ui-b');

  // 3. Edit ui-c's tag in the table: the change is kept (seen after a refresh).
  const cRow = page.locator(`#nodes tr[data-node="${c.name}"]`);
  await cRow.locator('.tag-input').fill('edge');
  await cRow.getByRole('button', { name: 'Save' }).click();
  await page.locator('.toast', { hasText: `Tag of ${c.name} set.` }).waitFor();
  await eventually(async () => {
    await refresh(page);
    const rows = await nodeRows(page);
    const tags = Object.fromEntries(rows.map((row) => [row.name, row.tag]));
    return tags[c.name] === 'edge' && tags[a.name] === 'web' && tags[b.name] === 'web';
  }, `${c.name} is tagged edge, the others keep web`);
  // An admin adds a node: a join token (not the cluster secret), shown once, in the config.
  await page.click('#join-mint');
  await page.locator('#join-config', { hasText: 'join_token = "lgj_' }).waitFor();
  const joinConfig = await page.textContent('#join-config');
  assert(joinConfig.includes(`join = "${a.url}"`) || joinConfig.includes('join = "http'), `the config names a member: ${joinConfig}`);
  assert(!joinConfig.includes('lgc_'), 'the cluster secret is never shown');
  assert((await page.textContent('#join-expiry')).includes('for one node'), 'the page says what the token allows');
  await eventually(async () => (await page.locator('.toast').count()) === 0, 'the toasts are gone before the screenshot');
  await screenshot(page, 'cluster-nodes', { fullPage: true });

  // 4. ui-b goes down (killed by the Rust side): the page shows it bad, then lost.
  writeFileSync(join(signals, 'kill-b'), '');
  await eventually(() => existsSync(join(signals, 'b-killed')), 'the test killed ui-b', 30_000);
  const left = await eventually(async () => {
    await refresh(page);
    const status = await statusOf(page, b.name);
    return status !== 'ok' && status;
  }, `${b.name} leaves ok`);
  assertEqual(left, 'bad', `${b.name} is shown bad first`);
  await screenshot(page, 'cluster-node-bad', { fullPage: true });
  await eventually(async () => {
    await refresh(page);
    return (await statusOf(page, b.name)) === 'lost';
  }, `${b.name} is shown lost`);
  for (const node of [a, c]) assertEqual(await statusOf(page, node.name), 'ok', `${node.name} stays ok`);
  // Its runners cannot be asked for: the section says so instead of showing stale rows.
  const bSection = await runnersOf(page, b.name);
  assert(bSection.message.startsWith('No answer:') && bSection.message.includes('lost'), `${b.name}'s runners: ${bSection.message}`);
  assert(!bSection.runners[RUNNER], `no stale ${RUNNER} row for ${b.name}`);
  const aSection = await runnersOf(page, a.name);
  assert(aSection.runners[RUNNER]?.running, `${RUNNER} still runs on ${a.name}`);
  await screenshot(page, 'cluster-node-lost', { fullPage: true });
});

// hostile.mjs — log lines written by tests/it/ui.rs carry markup that tries to run
// `window.__pwned = 1` (script tags, event-handler attributes, javascript: URLs; in messages,
// field names, field values and the level), terminal escapes, control characters, a bidi
// override and a 20,000-character line. This scenario sets no canary itself: it asserts that
// `window.__pwned` stays undefined AND that the payloads are visible as literal text.
//
// The page's CSP would block inline handlers on its own, which would hide a UI that inserted
// log text as HTML; so this context runs with the CSP bypassed, and only rendering-as-text
// keeps the payloads inert.

import { assert, assertEqual, env, hitCount, logIn, scenario, screenshot } from './lib.mjs';

const PWN = 'window.__pwned=1';

scenario(
  'hostile',
  async ({ page }) => {
    await page.goto(`${env.url}/#/search?q=hostile&from=-1h`);
    await logIn(page);
    assertEqual(await hitCount(page), 9, 'hostile lines');

    const row = (text) => page.locator('#results tr.hit', { hasText: text });
    const literals = [
      `hostile-a <script>${PWN}</script>`,
      `hostile-b <img src=x onerror="${PWN}">`,
      `hostile-c <svg onload="${PWN}"></svg><iframe src="javascript:${PWN}"></iframe>`,
      `hostile-d <a href="javascript:${PWN}">click me</a> &lt;b&gt; &amp;`,
    ];
    for (const literal of literals) {
      const match = row(literal);
      assertEqual(await match.count(), 1, `one row shows ${literal} as text`);
      assert(await match.isVisible(), `${literal} is visible`);
    }

    // Terminal escapes are gone (colours, title, clear screen); the words stay.
    const ansi = (await row('hostile-e').locator('.cell-message').textContent()).trim();
    assertEqual(ansi, 'hostile-e RED  ansi', 'ANSI sequences are stripped');

    // Control characters are visible symbols; none reaches the page raw.
    const controls = (await row('hostile-f').locator('.cell-message').textContent()).trim();
    assertEqual(controls, 'hostile-f controls ␀␁␇␈␋␌␍␡ end', 'control characters are shown as pictures');
    const chips = await row('hostile-f').locator('.cell-message .ctl').evaluateAll((spans) => spans.map((span) => span.title));
    assertEqual(chips.join(' '), 'U+0000 U+0001 U+0007 U+0008 U+000B U+000C U+000D U+007F', 'each picture is marked with its code point');
    const bidi = (await row('hostile-g').locator('.cell-message').textContent()).trim();
    assertEqual(bidi, 'hostile-g <U+202E>gpj.exe<U+202C> bidi', 'bidi overrides are named, not applied');
    const raw = await page.$eval('#results tbody', (body) => /[\u0000-\u0008\u000b-\u001f\u007f\u202e]/.test(body.textContent));
    assert(!raw, 'no raw control character is in the results');

    // The long line is cut, with a control that shows all of it.
    const long = row('hostile-h');
    const cut = (await long.locator('.logtext-body').textContent()).length;
    assert(cut < 1000, `the long line is cut (${cut} characters shown)`);
    await long.locator('.show-all').click();
    const full = (await long.locator('.logtext-body').textContent()).length;
    assertEqual(full, 'hostile-h '.length + 20_000, 'show all shows every character');

    // Markup in the level, field names and values: text in the row and in its details.
    const fields = row('hostile-i fields');
    assertEqual((await fields.locator('.cell-level').textContent()).trim(), `<b onmouseover="${PWN}">error</b>`, 'the level is text');
    assertEqual(await fields.locator('.cell-level .lvl').getAttribute('class'), 'lvl lvl-other', 'an unknown level gets the neutral colour');
    const [levelBox, messageBox] = await Promise.all([fields.locator('.cell-level .lvl').boundingBox(), fields.locator('.cell-message').boundingBox()]);
    assert(levelBox.x + levelBox.width <= messageBox.x, 'a long level stays in its column');
    await fields.hover();
    await fields.click();
    const details = page.locator('#results tr.hit-details');
    await details.waitFor();
    const detailText = await details.textContent();
    assert(detailText.includes(`fields.<img src=x onerror="${PWN}">`), 'a field name with markup is text');
    assert(detailText.includes(`<script>${PWN}</script>`), 'a field value with markup is text');
    await screenshot(page, 'hostile');

    // The sidebar lists the hostile field and its top values as text.
    const payload = page.locator('#fields [data-field="fields.payload"]');
    await payload.click();
    const value = page.locator('#fields .value-text', { hasText: `<img src=x onerror="${PWN}">` });
    await value.waitFor();
    assert(
      (await page.locator('#fields .field-label').allTextContents()).includes(`fields.<img src=x onerror="${PWN}">`),
      'the sidebar shows the hostile field name as text',
    );

    // Context of a hostile line is text too.
    await row('hostile-a').click();
    await page.locator('#results tr.hit-details .context-button').first().click();
    await page.locator('#context .context-line.is-hit').waitFor();
    assert((await page.textContent('#context')).includes(`<script>${PWN}</script>`), 'context shows the payload as text');
    await screenshot(page, 'hostile-context');
    await page.keyboard.press('Escape');

    // Nothing from the log became an element, and nothing ran.
    const injected = await page.$$eval(
      '#results img, #results script, #results iframe, #results svg, #results a, #results b, #fields img, #fields script, #fields b',
      (elements) => elements.map((element) => element.outerHTML),
    );
    assertEqual(injected.length, 0, `no element came from log text: ${injected.join(' ')}`);
    // An <img onerror> would fire after its request fails: give such handlers a moment.
    await page.waitForTimeout(500);
    assertEqual(await page.evaluate(() => typeof window.__pwned), 'undefined', 'window.__pwned stays undefined');
  },
  { contextOptions: { bypassCSP: true } },
);

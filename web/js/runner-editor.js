// runner-editor.js — create or edit a runner (logkit's config shape: name, reader, parser, and
// whatever else the JSON holds, e.g. transforms). A form for the reader and parser, a raw JSON
// mode for the rest, a "try it" box that parses pasted sample lines with the parser as set
// (POST /logkit/parser/parse), and "apply" to chosen nodes or to every node with a tag.

import { h, modal, toast } from './dom.js';
import { NodeTarget, tryParser } from './nodes.js';
import { valueText, visibleText } from './render.js';

const READER_MODES = ['tailx', 'file', 'dir', 'syslog', 'http', 'bulk'];
const PARSER_TYPES = ['raw', 'json', 'logfmt', 'regex', 'nginx', 'apache', 'syslog', 'csv'];
// Which optional inputs apply to which reader mode / parser type.
const READER_FIELDS = [
  { key: 'log_path', label: 'Log path', modes: ['tailx', 'file', 'dir'], hint: 'A file, a folder, or a glob with * and ** (tailx)' },
  { key: 'read_from', label: 'Read from', modes: ['tailx', 'file', 'dir'], options: ['oldest', 'newest'] },
  { key: 'valid_file_pattern', label: 'File pattern', modes: ['dir'] },
  { key: 'listen', label: 'Listen on', modes: ['syslog'], hint: 'e.g. 0.0.0.0:5140' },
  { key: 'head_pattern', label: 'Record start (regex)', modes: ['tailx', 'file', 'dir'], hint: 'for multi-line records' },
  { key: 'encoding', label: 'Encoding', modes: ['tailx', 'file', 'dir'], hint: 'utf-8 unless set: gbk, shift_jis…' },
];
const PARSER_FIELDS = [
  { key: 'regex', label: 'Regex', types: ['regex'], hint: 'named groups become fields' },
  { key: 'nginx_log_format', label: 'nginx log_format', types: ['nginx'] },
  { key: 'csv_schema', label: 'CSV schema', types: ['csv'], hint: 'name type, name type…' },
  { key: 'csv_splitter', label: 'CSV splitter', types: ['csv'] },
  { key: 'timestamp_key', label: 'Timestamp key', types: PARSER_TYPES },
  { key: 'timeformat_layouts', label: 'Time layouts', types: PARSER_TYPES, list: true, hint: 'comma-separated' },
  { key: 'timezone', label: 'Time zone', types: PARSER_TYPES },
  { key: 'level_key', label: 'Level key', types: PARSER_TYPES },
];

let fieldIds = 0;

function select(name, options, value) {
  return h('select', { name }, options.map((option) => h('option', { value: option, selected: option === value }, option)));
}

/**
 * Open the editor. `config`: an existing runner config (edit) or null (new); `nodes`: the
 * cluster's nodes; `mode`: 'cluster' | 'single'; `onDone()` after a successful apply;
 * `onUse(config)`: instead of applying, hand the config back (a deployment's role).
 */
export function openRunnerEditor({ config, nodes, mode, preselected = [], onDone, onUse }) {
  const editing = Boolean(config);
  let base = structuredClone(config || { name: '', reader: { mode: 'tailx', log_path: '', read_from: 'oldest' }, parser: { type: 'raw' } });
  const labelled = (label, input, hint) => {
    const id = `runner-field-${++fieldIds}`;
    input.id = id;
    return h('div', { class: 'form-row' }, h('label', { for: id }, label), input, hint ? h('span', { class: 'hint' }, hint) : null);
  };

  const nameInput = h('input', { name: 'name', value: base.name || '', required: true, disabled: editing, autocomplete: 'off' });
  const modeSelect = select('reader.mode', READER_MODES, base.reader?.mode || 'tailx');
  const typeSelect = select('parser.type', PARSER_TYPES, base.parser?.type || 'raw');
  const readerInputs = READER_FIELDS.map((field) => {
    const value = base.reader?.[field.key] ?? '';
    const name = `reader.${field.key}`;
    const input = field.options
      ? select(name, ['', ...field.options], value)
      : h('input', { name, value: String(value), autocomplete: 'off' });
    return { field, input, row: labelled(field.label, input, field.hint) };
  });
  const parserInputs = PARSER_FIELDS.map((field) => {
    const raw = base.parser?.[field.key];
    const value = field.list && Array.isArray(raw) ? raw.join(', ') : raw ?? '';
    const input = h('input', { name: `parser.${field.key}`, value: String(value), autocomplete: 'off' });
    return { field, input, row: labelled(field.label, input, field.hint) };
  });
  const showRelevant = () => {
    for (const { field, row } of readerInputs) row.hidden = !field.modes.includes(modeSelect.value);
    for (const { field, row } of parserInputs) row.hidden = !field.types.includes(typeSelect.value);
  };
  modeSelect.addEventListener('change', showRelevant);
  typeSelect.addEventListener('change', showRelevant);
  showRelevant();

  /** The config as the form says, on top of what the JSON held (transforms etc. kept). */
  const fromForm = () => {
    const next = structuredClone(base);
    next.name = nameInput.value.trim();
    next.reader = { ...(next.reader || {}), mode: modeSelect.value };
    for (const { field, input } of readerInputs) {
      if (field.modes.includes(modeSelect.value) && input.value.trim()) next.reader[field.key] = input.value.trim();
      else delete next.reader[field.key];
    }
    next.parser = { ...(next.parser || {}), type: typeSelect.value };
    for (const { field, input } of parserInputs) {
      const text = input.value.trim();
      if (!field.types.includes(typeSelect.value) || !text) delete next.parser[field.key];
      else next.parser[field.key] = field.list ? text.split(',').map((item) => item.trim()).filter(Boolean) : text;
    }
    return next;
  };
  const fillForm = (next) => {
    base = next;
    nameInput.value = next.name || '';
    modeSelect.value = next.reader?.mode || 'tailx';
    typeSelect.value = next.parser?.type || 'raw';
    for (const { field, input } of readerInputs) input.value = String(next.reader?.[field.key] ?? '');
    for (const { field, input } of parserInputs) {
      const raw = next.parser?.[field.key];
      input.value = field.list && Array.isArray(raw) ? raw.join(', ') : String(raw ?? '');
    }
    showRelevant();
  };

  // Form and raw JSON: one of them is shown; switching carries the config across.
  const formPane = h(
    'div',
    { class: 'editor-form' },
    labelled('Name', nameInput),
    h('fieldset', null, h('legend', null, 'Reader'), labelled('Mode', modeSelect), readerInputs.map((entry) => entry.row)),
    h('fieldset', null, h('legend', null, 'Parser'), labelled('Type', typeSelect), parserInputs.map((entry) => entry.row)),
  );
  const rawText = h('textarea', { class: 'raw-json', rows: 18, spellcheck: 'false', 'aria-label': 'Runner config as JSON' });
  const rawPane = h('div', { class: 'editor-raw', hidden: true }, rawText);
  const editorError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const showError = (message) => {
    editorError.textContent = message;
    editorError.hidden = !message;
  };
  const rawToggle = h('button', { type: 'button', class: 'btn', 'aria-pressed': 'false' }, 'Raw JSON');
  const current = () => {
    if (rawPane.hidden) return fromForm();
    try {
      return JSON.parse(rawText.value);
    } catch (err) {
      throw new Error(`The JSON does not parse: ${err.message}`);
    }
  };
  rawToggle.addEventListener('click', () => {
    showError('');
    if (rawPane.hidden) {
      rawText.value = JSON.stringify(fromForm(), null, 2);
      rawPane.hidden = false;
      formPane.hidden = true;
      rawToggle.setAttribute('aria-pressed', 'true');
      rawText.focus();
    } else {
      let parsed;
      try {
        parsed = JSON.parse(rawText.value);
      } catch (err) {
        showError(`The JSON does not parse: ${err.message}`);
        return;
      }
      fillForm(parsed);
      rawPane.hidden = true;
      formPane.hidden = false;
      rawToggle.setAttribute('aria-pressed', 'false');
    }
  });

  // Try it: parse sample lines with the parser as it stands.
  const sample = h('textarea', { class: 'sample', rows: 4, spellcheck: 'false', placeholder: 'Paste a few log lines…' });
  const sampleOut = h('div', { class: 'sample-out', 'aria-live': 'polite' });
  const tryButton = h('button', { type: 'button', class: 'btn' }, 'Try it');
  tryButton.addEventListener('click', async () => {
    let parser;
    try {
      parser = current().parser || {};
    } catch (err) {
      sampleOut.replaceChildren(h('p', { class: 'form-error' }, err.message));
      return;
    }
    sampleOut.replaceChildren(h('p', { class: 'muted' }, 'Parsing…'));
    try {
      const points = await tryParser(parser, sample.value);
      sampleOut.replaceChildren(sampleTable(points));
    } catch (err) {
      if (!err.unauthorized) sampleOut.replaceChildren(h('p', { class: 'form-error' }, err.message));
    }
  });

  // Where to apply: chosen nodes, or a tag (cluster only).
  const nodeChecks = nodes.map((node) => ({
    node,
    input: h('input', { type: 'checkbox', checked: preselected.includes(node.url) || nodes.length === 1 }),
  }));
  const tags = [...new Set(nodes.map((node) => node.tag).filter(Boolean))];
  const byTag = h('input', { type: 'radio', name: 'apply-target', value: 'tag', disabled: mode !== 'cluster' });
  const byNodes = h('input', { type: 'radio', name: 'apply-target', value: 'nodes', checked: true });
  const tagInput = h('input', { list: 'known-tags', autocomplete: 'off', disabled: mode !== 'cluster', 'aria-label': 'Tag' });
  const target = h(
    'fieldset',
    { class: 'apply-target' },
    h('legend', null, 'Apply to'),
    h('label', { class: 'inline' }, byNodes, ' these nodes:'),
    h(
      'div',
      { class: 'node-checks' },
      nodeChecks.map(({ node, input }) => h('label', { class: 'inline' }, input, ` ${visibleText(node.id)} `, h('span', { class: 'muted' }, visibleText(node.url)))),
    ),
    h('label', { class: 'inline' }, byTag, ' every node tagged '),
    tagInput,
    h('datalist', { id: 'known-tags' }, tags.map((tag) => h('option', { value: tag }))),
  );
  tagInput.addEventListener('focus', () => {
    byTag.checked = true;
  });

  const results = h('ul', { class: 'apply-results', 'aria-live': 'polite' });
  const applyButton = h(
    'button',
    { type: 'button', class: 'btn btn-primary', id: onUse ? 'runner-use' : null },
    onUse ? 'Use this config' : editing ? 'Apply changes' : 'Create runner',
  );
  // With `onUse` (the Deploy page's roles), the config goes back to the caller instead of to
  // nodes: there is nothing to apply to.
  target.hidden = Boolean(onUse);
  const dialog = modal(
    editing ? `Edit runner ${visibleText(base.name)}` : 'New runner',
    h(
      'div',
      { class: 'runner-editor' },
      h('div', { class: 'editor-toolbar' }, rawToggle),
      formPane,
      rawPane,
      h('section', { class: 'try-it' }, h('h3', null, 'Try the parser'), sample, tryButton, sampleOut),
      target,
      editorError,
      h('div', { class: 'editor-actions' }, applyButton),
      results,
    ),
    { wide: true },
  );

  applyButton.addEventListener('click', async () => {
    showError('');
    let next;
    try {
      next = current();
    } catch (err) {
      showError(err.message);
      return;
    }
    if (onUse) {
      onUse(next);
      dialog.close();
      return;
    }
    const name = (next.name || '').trim();
    if (!name) {
      showError('The runner needs a name.');
      return;
    }
    const targets = byTag.checked
      ? [{ label: `tag ${tagInput.value.trim()}`, target: new NodeTarget(mode, { tag: tagInput.value.trim() }) }]
      : nodeChecks.filter(({ input }) => input.checked).map(({ node }) => ({ label: node.id, target: new NodeTarget(mode, { url: node.url }) }));
    if (byTag.checked && !tagInput.value.trim()) {
      showError('Enter a tag.');
      return;
    }
    if (!targets.length) {
      showError('Choose at least one node.');
      return;
    }
    applyButton.disabled = true;
    results.replaceChildren();
    let failures = 0;
    for (const { label, target: where } of targets) {
      try {
        await where.save(name, next, editing);
        results.append(h('li', { class: 'ok' }, `${visibleText(label)}: applied`));
      } catch (err) {
        failures++;
        if (err.unauthorized) return;
        results.append(h('li', { class: 'form-error' }, `${visibleText(label)}: ${err.message}`));
      }
    }
    applyButton.disabled = false;
    if (!failures) {
      toast(`Runner ${name} applied.`);
      dialog.close();
      if (onDone) onDone();
    }
  });
  nameInput.focus();
}

function sampleTable(points) {
  if (!points.length) return h('p', { class: 'muted' }, 'No lines to parse.');
  return h(
    'table',
    { class: 'sample-table' },
    h('thead', null, h('tr', null, h('th', null, 'ts'), h('th', null, 'level'), h('th', null, 'message'), h('th', null, 'fields'))),
    h(
      'tbody',
      null,
      points.map((point) =>
        h(
          'tr',
          { class: point.parse_error ? 'parse-error' : null },
          h('td', null, visibleText(point.ts)),
          h('td', null, visibleText(point.level)),
          h('td', null, visibleText(point.message)),
          h('td', null, point.fields ? visibleText(valueText(point.fields)) : point.parse_error ? 'parse error: kept raw' : ''),
        ),
      ),
    ),
  );
}

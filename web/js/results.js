// results.js — the hits table: time, node, runner, level (coloured), message; newest first.
// A row opens (click, Enter or Space) into a table of all its fields with filter buttons and
// a "context" button. Appending a page never moves what is on screen; rows added at the top
// (live tail) keep the reader's place when they have scrolled down.

import { h } from './dom.js';
import { flattenFields, formatTime, levelClass, textBlock, valueText, visibleText } from './render.js';

const FILTERABLE = new Set(['level', 'runner', 'node', 'path']);

export class ResultsTable {
  /** `onFilter(field, value, exclude)`, `onContext(hit)`. */
  constructor({ onFilter, onContext }) {
    this.onFilter = onFilter;
    this.onContext = onContext;
    this.body = h('tbody');
    this.table = h(
      'table',
      { class: 'results', id: 'results' },
      h('caption', { class: 'visually-hidden' }, 'Matching lines, newest first; open a row for all its fields'),
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          h('th', { scope: 'col', class: 'cell-time' }, 'Time'),
          h('th', { scope: 'col', class: 'cell-node' }, 'Node'),
          h('th', { scope: 'col', class: 'cell-runner' }, 'Runner'),
          h('th', { scope: 'col', class: 'cell-level' }, 'Level'),
          h('th', { scope: 'col', class: 'cell-message' }, 'Message'),
        ),
      ),
      this.body,
    );
    this.element = this.table;
    this.rowCount = 0;
  }

  clear() {
    this.body.replaceChildren();
    this.rowCount = 0;
  }

  /** Append hits at the bottom (next page). */
  append(hits) {
    const fragment = document.createDocumentFragment();
    for (const hit of hits) fragment.append(this.row(hit));
    this.body.append(fragment);
    this.rowCount += hits.length;
  }

  /** Put rows at the top (live tail) without moving what the reader is looking at. */
  prepend(rows) {
    const scroller = document.scrollingElement;
    const tableTop = this.table.getBoundingClientRect().top + scroller.scrollTop;
    const keepPlace = scroller.scrollTop > tableTop;
    const before = scroller.scrollHeight;
    const fragment = document.createDocumentFragment();
    for (const row of rows) fragment.append(row);
    this.body.prepend(fragment);
    if (keepPlace) scroller.scrollTop += scroller.scrollHeight - before;
  }

  /** Drop rows from the bottom beyond `max` (live tail keeps memory bounded). */
  trim(max) {
    while (this.body.rows.length > max) this.body.lastElementChild.remove();
  }

  /** A full-width row that says something about the stream (dropped lines, end of results). */
  marker(text, kind = 'info') {
    return h('tr', { class: `marker marker-${kind}` }, h('td', { colspan: 5 }, text));
  }

  row(hit) {
    const level = hit.level || '';
    const row = h(
      'tr',
      {
        class: 'hit',
        tabindex: 0,
        'aria-expanded': 'false',
        dataset: { id: hit.id || '', ts: hit.ts || '' },
      },
      h('td', { class: 'cell-time', title: hit.ts || '' }, formatTime(hit.ts)),
      h('td', { class: 'cell-node' }, visibleText(hit.node)),
      h('td', { class: 'cell-runner' }, visibleText(hit.runner)),
      h('td', { class: 'cell-level' }, level ? h('span', { class: levelClass(level), title: visibleText(level) }, visibleText(level)) : ''),
      h('td', { class: 'cell-message' }, textBlock(hit.message)),
    );
    const toggle = () => this.toggle(row, hit);
    row.addEventListener('click', (event) => {
      // Selecting text or pressing a button inside the row does not fold it.
      const selection = window.getSelection();
      const selecting = selection && !selection.isCollapsed && row.contains(selection.anchorNode);
      if (event.target.closest('button') || selecting) return;
      toggle();
    });
    row.addEventListener('keydown', (event) => {
      if (event.target !== row) return;
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        toggle();
      }
    });
    return row;
  }

  toggle(row, hit) {
    const open = row.getAttribute('aria-expanded') === 'true';
    if (open) {
      row.setAttribute('aria-expanded', 'false');
      if (row.nextElementSibling && row.nextElementSibling.classList.contains('hit-details')) {
        row.nextElementSibling.remove();
      }
      return;
    }
    row.setAttribute('aria-expanded', 'true');
    row.after(h('tr', { class: 'hit-details' }, h('td', { colspan: 5 }, this.details(hit))));
  }

  details(hit) {
    const entries = [
      ['ts', hit.ts],
      ['node', hit.node],
      ['runner', hit.runner],
      ['level', hit.level],
      ['path', hit.path],
      ['offset', hit.offset],
      ['flags', (hit.flags || []).join(', ')],
      ['id', hit.id],
      ...flattenFields(hit.fields),
      ['message', hit.message],
    ].filter(([, value]) => value !== undefined && value !== null && value !== '');
    const rows = entries.map(([name, value]) => {
      const filterable = FILTERABLE.has(name) || name.startsWith('fields.');
      const long = name === 'message';
      return h(
        'tr',
        { dataset: { field: name } },
        h('th', { scope: 'row', class: 'detail-name' }, visibleText(name)),
        h(
          'td',
          { class: 'detail-value' },
          textBlock(valueText(value), { maxChars: long ? 20_000 : 2_000, maxLines: long ? 200 : 20 }),
        ),
        h(
          'td',
          { class: 'detail-actions' },
          filterable
            ? [
                h(
                  'button',
                  {
                    type: 'button',
                    class: 'btn btn-icon filter-for',
                    title: 'Filter for this value',
                    'aria-label': `Filter for ${name}`,
                    onclick: () => this.onFilter(name, value, false),
                  },
                  '+',
                ),
                h(
                  'button',
                  {
                    type: 'button',
                    class: 'btn btn-icon filter-out',
                    title: 'Filter out this value',
                    'aria-label': `Filter out ${name}`,
                    onclick: () => this.onFilter(name, value, true),
                  },
                  '−',
                ),
              ]
            : null,
        ),
      );
    });
    const actions = h(
      'div',
      { class: 'detail-toolbar' },
      h(
        'button',
        {
          type: 'button',
          class: 'btn context-button',
          disabled: !hit.stream,
          title: hit.stream ? 'The lines around this one, from the same file' : 'This line did not come from a file',
          onclick: () => this.onContext(hit),
        },
        'Show context',
      ),
    );
    return h('div', { class: 'hit-detail' }, actions, h('table', { class: 'detail-table' }, h('tbody', null, rows)));
  }
}

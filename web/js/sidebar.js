// sidebar.js — the field sidebar: the fields present in the matches (GET /api/v1/fields) and,
// for a field the user opens, its top values with counts (GET /api/v1/top). Each value has
// "filter for" and "filter out" buttons: `onFilter(field, value, exclude)`.

import { api } from './api.js';
import { h } from './dom.js';
import { valueText, visibleText } from './render.js';

// `message` is full text: it has no top values.
const AGGREGATABLE = new Set(['level', 'runner', 'node', 'path']);
const canAggregate = (field) => AGGREGATABLE.has(field.name) || (field.name.startsWith('fields.') && ['keyword', 'number', 'bool'].includes(field.type));

export class FieldSidebar {
  constructor(onFilter) {
    this.onFilter = onFilter;
    this.list = h('ul', { class: 'field-list' });
    this.status = h('p', { class: 'muted sidebar-status' });
    this.element = h(
      'aside',
      { class: 'sidebar', id: 'fields', 'aria-label': 'Fields' },
      h('h2', { class: 'sidebar-title' }, 'Fields'),
      this.status,
      this.list,
    );
    this.open = new Set(); // field names whose values are shown, kept across searches
    this.range = {};
  }

  /** Show the fields of a `/api/v1/fields` response; `range` is `{q, from, to}` for top values. */
  render(response, range) {
    this.range = range;
    const fields = (response.fields || []).slice().sort((a, b) => b.share - a.share || a.name.localeCompare(b.name));
    this.status.textContent = fields.length ? `in the newest ${response.sampled} matches` : 'No fields: no matches.';
    const items = fields.map((field) => this.fieldItem(field));
    if (response.more) {
      // The node lists the most common fields only; say how many more there are.
      items.push(h('li', { class: 'field-more' }, `… and ${response.more} more fields (the most common are listed)`));
    }
    this.list.replaceChildren(...items);
  }

  clear(message = '') {
    this.status.textContent = message;
    this.list.replaceChildren();
  }

  fieldItem(field) {
    const percent = `${Math.round(field.share * 100)}%`;
    const values = h('div', { class: 'field-values' });
    const aggregatable = canAggregate(field);
    const toggle = h(
      'button',
      {
        type: 'button',
        class: 'field-name',
        'aria-expanded': 'false',
        disabled: !aggregatable,
        title: aggregatable ? `Top values of ${field.name}` : `${field.name} is full text`,
        dataset: { field: field.name },
      },
      h('span', { class: 'field-label' }, visibleText(field.name)),
      h('span', { class: 'field-share' }, percent),
    );
    const item = h('li', { class: 'field' }, toggle, values);
    const show = async () => {
      toggle.setAttribute('aria-expanded', 'true');
      this.open.add(field.name);
      values.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
      try {
        const top = await api('/api/v1/top', { params: { field: field.name, size: 5, ...this.range } });
        values.replaceChildren(this.valueList(field.name, top));
      } catch (err) {
        if (!err.unauthorized) values.replaceChildren(h('p', { class: 'form-error' }, err.message));
      }
    };
    toggle.addEventListener('click', () => {
      if (toggle.getAttribute('aria-expanded') === 'true') {
        toggle.setAttribute('aria-expanded', 'false');
        this.open.delete(field.name);
        values.replaceChildren();
      } else {
        show();
      }
    });
    if (aggregatable && this.open.has(field.name)) show();
    return item;
  }

  valueList(field, top) {
    const total = (top.values || []).reduce((sum, value) => sum + value.count, 0) + (top.other || 0);
    const rows = (top.values || []).map((entry) => {
      const text = valueText(entry.value);
      const share = total ? entry.count / total : 0;
      const meter = h('span', { class: 'value-meter' });
      meter.style.width = `${Math.round(share * 100)}%`;
      return h(
        'li',
        { class: 'value' },
        h(
          'div',
          { class: 'value-line' },
          h('span', { class: 'value-text', title: visibleText(text) }, visibleText(text) || '(empty)'),
          h('span', { class: 'value-count' }, entry.count.toLocaleString()),
          h(
            'button',
            {
              type: 'button',
              class: 'btn btn-icon filter-for',
              'aria-label': `Filter for ${field} ${visibleText(text)}`,
              title: 'Filter for this value',
              onclick: () => this.onFilter(field, entry.value, false),
            },
            '+',
          ),
          h(
            'button',
            {
              type: 'button',
              class: 'btn btn-icon filter-out',
              'aria-label': `Filter out ${field} ${visibleText(text)}`,
              title: 'Filter out this value',
              onclick: () => this.onFilter(field, entry.value, true),
            },
            '−',
          ),
        ),
        h('div', { class: 'value-bar' }, meter),
      );
    });
    if (!rows.length) return h('p', { class: 'muted' }, 'No values.');
    return h('ul', { class: 'value-list' }, rows);
  }
}

// query.js — the query bar: history on ↑/↓ (kept in localStorage), the syntax error shown
// under the query at the position the API reports, and building `field:value` filters.

import { h } from './dom.js';
import { visibleText } from './render.js';

const HISTORY_KEY = 'lograft.queryHistory';
const HISTORY_SIZE = 50;

function loadHistory() {
  try {
    const list = JSON.parse(localStorage.getItem(HISTORY_KEY) || '[]');
    return Array.isArray(list) ? list.filter((q) => typeof q === 'string') : [];
  } catch {
    return [];
  }
}

export class QueryBar {
  constructor() {
    this.input = h('input', {
      id: 'query',
      class: 'query-input',
      type: 'search',
      name: 'q',
      autocomplete: 'off',
      spellcheck: 'false',
      placeholder: 'Search… e.g. level:error AND timeout (↑ for history)',
      'aria-describedby': 'query-error',
    });
    this.error = h('div', { id: 'query-error', class: 'query-error', role: 'alert', hidden: true });
    this.element = h(
      'div',
      { class: 'query-wrap' },
      h('label', { class: 'visually-hidden', for: 'query' }, 'Query'),
      this.input,
      this.error,
    );
    this.history = loadHistory();
    this.historyIndex = -1; // -1: the text being typed, 0: newest history entry
    this.draft = '';
    this.input.addEventListener('keydown', (event) => this.onKey(event));
    this.input.addEventListener('input', () => {
      this.historyIndex = -1;
      this.clearError();
    });
  }

  get value() {
    return this.input.value;
  }

  set value(text) {
    this.input.value = text;
  }

  onKey(event) {
    if (event.key !== 'ArrowUp' && event.key !== 'ArrowDown') return;
    if (!this.history.length) return;
    event.preventDefault();
    if (this.historyIndex === -1) this.draft = this.input.value;
    const step = event.key === 'ArrowUp' ? 1 : -1;
    this.historyIndex = Math.max(-1, Math.min(this.history.length - 1, this.historyIndex + step));
    this.input.value = this.historyIndex === -1 ? this.draft : this.history[this.historyIndex];
    const end = this.input.value.length;
    this.input.setSelectionRange(end, end);
  }

  /** Remember a query that was run (newest first, no duplicates). */
  remember(q) {
    const text = q.trim();
    this.historyIndex = -1;
    if (!text) return;
    this.history = [text, ...this.history.filter((item) => item !== text)].slice(0, HISTORY_SIZE);
    try {
      localStorage.setItem(HISTORY_KEY, JSON.stringify(this.history));
    } catch {
      // Private windows may refuse storage; history then lasts for the page only.
    }
  }

  /**
   * Show an API error under the query. A syntax error's position (counted in the trimmed
   * query, in characters) gets a caret under the query text and moves the cursor there.
   */
  showError(err, q) {
    const position = err.position;
    const children = [h('span', { class: 'query-error-message' }, visibleText(err.message))];
    if (position !== null && q.trim()) {
      const offset = q.length - q.trimStart().length;
      const chars = Array.from(q);
      const at = Math.min(chars.length, offset + position);
      children.unshift(
        h(
          'pre',
          { class: 'query-error-where', 'aria-hidden': 'true' },
          visibleText(chars.join('')),
          '\n',
          `${' '.repeat(at)}^`,
        ),
      );
      if (document.activeElement !== this.input) this.input.focus();
      const index = chars.slice(0, at).join('').length; // UTF-16 index for the selection
      this.input.setSelectionRange(index, index);
    }
    this.error.replaceChildren(...children);
    this.error.hidden = false;
    this.input.setAttribute('aria-invalid', 'true');
  }

  clearError() {
    this.error.hidden = true;
    this.error.replaceChildren();
    this.input.removeAttribute('aria-invalid');
  }
}

const KEYWORDS = new Set(['AND', 'OR', 'NOT', 'TO']);

/** `field:value`, quoted unless the value is a plain word. */
export function filterClause(field, value) {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const plain = /^[\p{L}\p{N}_.]+$/u.test(text) && !KEYWORDS.has(text);
  const quoted = `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  // Field names may hold the grammar's special characters (JSON keys are free text).
  const name = field.replace(/[+^`:{}"'[\]()!\\* ]/g, '\\$&');
  return `${name}:${plain ? text : quoted}`;
}

/** The query narrowed by one more clause (`exclude`: NOT clause). */
export function addClause(q, clause, exclude = false) {
  const term = exclude ? `NOT ${clause}` : clause;
  const current = q.trim();
  if (!current || current === '*') return term;
  // `a OR b AND x` would bind the new clause to `b` only.
  const base = /\bOR\b/.test(current) ? `(${current})` : current;
  return `${base} AND ${term}`;
}

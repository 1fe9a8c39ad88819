// timerange.js — the time range picker: quick ranges (last 15m, 1h, 24h, 7d) and an absolute
// from/to. Ranges are kept as the API's own text (`-15m`, RFC 3339, `now`), so a link carries
// either "the last hour" or a fixed window, as the user chose.

import { h } from './dom.js';
import { formatTime } from './render.js';

export const DEFAULT_FROM = '-15m';

export const QUICK_RANGES = [
  { from: '-15m', label: 'Last 15 minutes' },
  { from: '-1h', label: 'Last hour' },
  { from: '-24h', label: 'Last 24 hours' },
  { from: '-7d', label: 'Last 7 days' },
];

/** How a range reads in the picker's button. */
export function rangeLabel(from, to) {
  const quick = QUICK_RANGES.find((range) => range.from === from && !to);
  if (quick) return quick.label;
  const absolute = (text) => /^\d{4}-\d\d-\d\d/.test(text) && !Number.isNaN(new Date(text).getTime());
  // `2026-01-15 10:00:05` (milliseconds only when there are some); the end's date is left out
  // when it is the start's.
  const short = (text) => formatTime(text).replace(/\.000$/, '');
  const start = from ? (absolute(from) ? short(from) : from) : 'the beginning';
  let end = to ? (absolute(to) ? short(to) : to) : 'now';
  if (from && to && absolute(from) && absolute(to) && start.slice(0, 10) === end.slice(0, 10)) end = end.slice(11);
  return `${start} → ${end}`;
}

export class RangePicker {
  /** `onChange(from, to)` when the user picks a range. */
  constructor(onChange) {
    this.onChange = onChange;
    this.summary = h('summary', { class: 'btn range-button', id: 'range-button', 'aria-label': 'Time range' });
    this.fromInput = h('input', { id: 'range-from', class: 'range-input', autocomplete: 'off', spellcheck: 'false' });
    this.toInput = h('input', {
      id: 'range-to',
      class: 'range-input',
      autocomplete: 'off',
      spellcheck: 'false',
      placeholder: 'now',
    });
    const quick = QUICK_RANGES.map((range) =>
      h(
        'button',
        {
          type: 'button',
          class: 'btn btn-quiet quick-range',
          dataset: { from: range.from },
          onclick: () => this.pick(range.from, ''),
        },
        range.label,
      ),
    );
    const apply = h('button', { type: 'button', class: 'btn btn-primary', id: 'range-apply' }, 'Apply');
    apply.addEventListener('click', () => this.pick(this.fromInput.value.trim(), this.toInput.value.trim()));
    for (const input of [this.fromInput, this.toInput]) {
      input.addEventListener('keydown', (event) => {
        if (event.key === 'Enter') {
          event.preventDefault();
          apply.click();
        }
      });
    }
    this.element = h(
      'details',
      { class: 'range-picker' },
      this.summary,
      h(
        'div',
        { class: 'range-popover' },
        h('div', { class: 'quick-ranges', role: 'group', 'aria-label': 'Quick ranges' }, quick),
        h(
          'div',
          { class: 'absolute-range' },
          h('label', { for: 'range-from' }, 'From'),
          this.fromInput,
          h('label', { for: 'range-to' }, 'To'),
          this.toInput,
          h('p', { class: 'hint' }, 'RFC 3339 (2026-01-15T10:00:00Z), a date, now, or relative (-2h, now-1d).'),
          apply,
        ),
      ),
    );
    this.element.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.element.open) {
        this.element.open = false;
        this.summary.focus();
      }
    });
  }

  set(from, to) {
    this.summary.textContent = rangeLabel(from, to);
    this.fromInput.value = from;
    this.toInput.value = to;
  }

  pick(from, to) {
    this.element.open = false;
    this.onChange(from || DEFAULT_FROM, to);
  }
}

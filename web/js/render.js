// render.js — showing log text, which is attacker-controlled. Everything here ends up in text
// nodes (never innerHTML). Terminal escapes are removed, other control characters are shown as
// visible symbols (U+2400 block), bidirectional overrides are shown by name so they cannot
// reorder what the reader sees, and very long text is cut with a "show all" control.

import { h } from './dom.js';

// ESC sequences: CSI (colours, cursor moves), OSC (titles, hyperlinks) ended by BEL or ST,
// DCS/SOS/PM/APC strings, and two-character escapes.
const ANSI_SEQUENCE =
  /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[PX^_][^\x1b]*(?:\x1b\\)?|\x1b[@-Z\\-_]/g;
const hex = (char) => char.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');

// Replaced by a visible stand-in: C0 controls except tab and newline (kept: multi-line records
// such as stack traces), DEL, C1 controls (U+0080–U+009F, e.g. the one-character CSI U+009B),
// and the bidirectional embeddings, overrides and isolates ("Trojan Source").
const REPLACED = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

/** What stands for one replaced character: its control picture, or its code point by name. */
function standIn(char) {
  const code = char.charCodeAt(0);
  if (code === 0x7f) return '\u2421';
  if (code < 0x20) return String.fromCharCode(0x2400 + code);
  return `<U+${hex(char)}>`;
}

function printable(value) {
  const text = value === undefined || value === null ? '' : String(value);
  return text.replace(ANSI_SEQUENCE, '');
}

/** Log text made safe to look at: no escapes, controls visible. Returns a plain string. */
export function visibleText(value) {
  return printable(value).replace(REPLACED, standIn);
}

/**
 * The same text as nodes: plain runs as text, each replaced character as a marked-up chip
 * (its title names the code point, so it reads even where no font has the control pictures).
 */
function visibleNodes(printableText) {
  const nodes = [];
  let last = 0;
  for (const match of printableText.matchAll(REPLACED)) {
    if (match.index > last) nodes.push(printableText.slice(last, match.index));
    const char = match[0];
    nodes.push(h('span', { class: 'ctl', title: `U+${hex(char)}` }, standIn(char)));
    last = match.index + 1;
  }
  if (last < printableText.length) nodes.push(printableText.slice(last));
  return nodes;
}

/** Default cut for messages in lists. */
export const LIST_CHARS = 600;
export const LIST_LINES = 6;

/**
 * A span with the visible text, cut at `maxChars` characters or `maxLines` lines, followed by
 * a "show all" button when cut. The full text is only built when asked for.
 */
export function textBlock(value, { maxChars = LIST_CHARS, maxLines = LIST_LINES, className = 'logtext' } = {}) {
  const full = printable(value);
  let cut = full.length > maxChars ? full.slice(0, maxChars) : full;
  const lines = cut.split('\n');
  if (lines.length > maxLines) cut = lines.slice(0, maxLines).join('\n');
  const span = h('span', { class: className });
  const text = h('span', { class: 'logtext-body' }, visibleNodes(cut));
  span.append(text);
  if (cut.length < full.length) {
    const hidden = full.length - cut.length;
    const more = h(
      'button',
      { type: 'button', class: 'btn btn-link show-all', 'aria-label': `Show all ${full.length} characters` },
      `… show all (${hidden.toLocaleString()} more characters)`,
    );
    more.addEventListener('click', (event) => {
      event.stopPropagation();
      text.replaceChildren(...visibleNodes(full));
      more.remove();
    });
    span.append(more);
  }
  return span;
}

const LEVELS = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  information: 'info',
  notice: 'info',
  warn: 'warn',
  warning: 'warn',
  error: 'error',
  err: 'error',
  fatal: 'fatal',
  critical: 'fatal',
  crit: 'fatal',
  alert: 'fatal',
  emerg: 'fatal',
  panic: 'fatal',
};

/** A CSS class for a level, from a fixed list (the level text itself is log data). */
export function levelClass(level) {
  const known = LEVELS[String(level || '').toLowerCase()];
  return known ? `lvl lvl-${known}` : 'lvl lvl-other';
}

const pad = (number, width = 2) => String(number).padStart(width, '0');

/** `2026-01-15 10:00:05.250` in the browser's time zone. */
export function formatTime(rfc3339) {
  const date = new Date(rfc3339);
  if (Number.isNaN(date.getTime())) return visibleText(rfc3339);
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
  );
}

/** A hit's parsed fields flattened to `fields.a.b` → value. */
export function flattenFields(fields, prefix = 'fields') {
  const out = [];
  if (!fields || typeof fields !== 'object' || Array.isArray(fields)) return out;
  for (const [key, value] of Object.entries(fields)) {
    const name = `${prefix}.${key}`;
    if (value && typeof value === 'object' && !Array.isArray(value)) out.push(...flattenFields(value, name));
    else out.push([name, value]);
  }
  return out;
}

/** A field value as display text (strings as they are, the rest as JSON). */
export function valueText(value) {
  if (typeof value === 'string') return value;
  if (value === undefined) return '';
  return JSON.stringify(value);
}

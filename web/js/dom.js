// dom.js — building elements without HTML strings. `h()` creates an element; string children
// become text nodes, so nothing passed here is ever parsed as markup. Attribute names are
// always literals in our code; values may be anything (an attribute value is not markup).

/**
 * h('button', {class: 'btn', onclick: fn, 'aria-label': 'Close'}, 'text', child, [more])
 * Props: `class`, `dataset` (object), `on<event>` (listener), booleans (`hidden`, `disabled`),
 * anything else via setAttribute.
 */
export function h(tag, props, ...children) {
  const element = document.createElement(tag);
  setProps(element, props);
  append(element, children);
  return element;
}

/** An SVG element (no children as text: SVG here is drawn, never filled with log text). */
export function svg(tag, props) {
  const element = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value !== undefined && value !== null) element.setAttribute(key, String(value));
  }
  return element;
}

function setProps(element, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') element.className = value;
    else if (key === 'dataset') Object.assign(element.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      element.addEventListener(key.slice(2), value);
    } else if (value === true) element.setAttribute(key, '');
    else if (key === 'value' || key === 'checked') element[key] = value;
    else element.setAttribute(key, String(value));
  }
}

/** Append children: nodes as they are, anything else as text; arrays are flattened. */
export function append(element, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** Replace an element's children. */
export function replace(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

/** A `<dialog>` shown modally; Escape and the close button close it, and it removes itself. */
export function modal(title, body, { wide = false, onClose } = {}) {
  const close = h('button', { type: 'button', class: 'btn btn-quiet', 'aria-label': 'Close' }, '✕');
  const heading = h('h2', { class: 'dialog-title' }, title);
  const dialog = h(
    'dialog',
    { class: wide ? 'dialog dialog-wide' : 'dialog', 'aria-label': typeof title === 'string' ? title : 'Dialog' },
    h('div', { class: 'dialog-head' }, heading, close),
    h('div', { class: 'dialog-body' }, body),
  );
  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (onClose) onClose();
  });
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

/** A short status line that disappears after a while (`role=status` for screen readers). */
export function toast(message, kind = 'info') {
  let holder = document.getElementById('toasts');
  if (!holder) {
    holder = h('div', { id: 'toasts', class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(holder);
  }
  const item = h('div', { class: `toast toast-${kind}` }, message);
  holder.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 8000 : 4000);
}

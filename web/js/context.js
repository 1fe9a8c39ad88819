// context.js — "context" on a hit: the lines read just before and after it from the same file
// (GET /api/v1/context), in a dialog, with the hit marked and scrolled into view.

import { api } from './api.js';
import { h, modal } from './dom.js';
import { formatTime, levelClass, textBlock, visibleText } from './render.js';

const AROUND = 25;

export async function showContext(hit) {
  const body = h('div', { class: 'context', id: 'context' }, h('p', { class: 'muted' }, 'Loading…'));
  const title = hit.path ? `Context · ${visibleText(hit.path)}` : 'Context';
  modal(title, body, { wide: true });
  try {
    const response = await api('/api/v1/context', { params: { id: hit.id, node: hit.node, before: AROUND, after: AROUND } });
    const lines = response.lines || [];
    const list = h(
      'ol',
      { class: 'context-lines' },
      lines.map((line, index) => {
        const isHit = index === response.hit_index;
        return h(
          'li',
          {
            class: isHit ? 'context-line is-hit' : 'context-line',
            'aria-current': isHit ? 'true' : null,
            dataset: { offset: String(line.offset ?? '') },
          },
          h('span', { class: 'context-time' }, formatTime(line.ts)),
          line.level ? h('span', { class: levelClass(line.level) }, visibleText(line.level)) : h('span', { class: 'lvl-none' }),
          textBlock(line.message, { maxChars: 2000, maxLines: 20 }),
        );
      }),
    );
    const before = response.hit_index;
    const after = lines.length - response.hit_index - 1;
    body.replaceChildren(
      h('p', { class: 'muted' }, `${before} line${before === 1 ? '' : 's'} before, ${after} after, from the same file.`),
      list,
    );
    const marked = list.querySelector('.is-hit');
    if (marked) marked.scrollIntoView({ block: 'center' });
  } catch (err) {
    if (!err.unauthorized) body.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, err.message));
  }
}

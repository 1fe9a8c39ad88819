// histogram.js — matches over time as SVG bars (GET /api/v1/histogram). Drag across it to zoom
// into that window, or click one bar to zoom into its bucket; `onSelect(fromIso, toIso)`.
// The box keeps a fixed height, so results below never jump when it fills in.

import { h, svg } from './dom.js';
import { formatTime } from './render.js';

const HEIGHT = 110;
const AXIS = 18; // room for the time labels under the bars
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `30s`, `5m`, `1h` (the API's interval text) in milliseconds. */
export function intervalMs(text) {
  const match = /^(\d+)(ms|us|s|m|h|d|w)$/.exec(String(text || ''));
  if (!match) return 0;
  return match[2] === 'us' ? Number(match[1]) / 1000 : Number(match[1]) * UNIT_MS[match[2]];
}

export class Histogram {
  constructor(onSelect) {
    this.onSelect = onSelect;
    this.data = null;
    this.plot = h('div', { class: 'histogram-plot' });
    this.caption = h('div', { class: 'histogram-caption' });
    this.element = h(
      'figure',
      { class: 'histogram', id: 'histogram', 'aria-label': 'Matches over time; drag to zoom' },
      this.plot,
      this.caption,
    );
    this.resizeObserver = new ResizeObserver(() => this.draw());
    this.resizeObserver.observe(this.plot);
  }

  destroy() {
    this.resizeObserver.disconnect();
  }

  clear(message = '') {
    this.data = null;
    this.plot.replaceChildren();
    this.caption.textContent = message;
  }

  /** Draw a histogram response (`{interval, buckets: [{ts, count}]}`). */
  render(response) {
    const step = intervalMs(response.interval);
    const buckets = (response.buckets || []).map((bucket) => ({
      start: new Date(bucket.ts).getTime(),
      count: Number(bucket.count) || 0,
    }));
    if (!buckets.length || !step) {
      this.clear('No data in this range.');
      return;
    }
    this.data = { step, buckets, start: buckets[0].start, end: buckets[buckets.length - 1].start + step };
    this.caption.textContent = `${Number(response.total || 0).toLocaleString()} matches · ${response.interval} per bar · drag to zoom`;
    this.draw();
  }

  draw() {
    if (!this.data) return;
    const width = Math.max(200, Math.floor(this.plot.clientWidth));
    const { buckets, start, end, step } = this.data;
    const max = Math.max(1, ...buckets.map((bucket) => bucket.count));
    const span = end - start;
    const x = (time) => ((time - start) / span) * width;
    const chart = svg('svg', {
      class: 'histogram-svg',
      width,
      height: HEIGHT,
      viewBox: `0 0 ${width} ${HEIGHT}`,
      role: 'img',
      'aria-label': `Histogram of ${buckets.length} bars`,
    });
    const plotHeight = HEIGHT - AXIS;
    for (const bucket of buckets) {
      const left = x(bucket.start);
      const barWidth = Math.max(1, x(bucket.start + step) - left - 1);
      const barHeight = bucket.count ? Math.max(2, (bucket.count / max) * (plotHeight - 4)) : 0;
      const bar = svg('rect', {
        class: 'bar',
        x: left.toFixed(1),
        y: (plotHeight - barHeight).toFixed(1),
        width: barWidth.toFixed(1),
        height: barHeight.toFixed(1),
      });
      const title = svg('title');
      title.textContent = `${formatTime(new Date(bucket.start).toISOString())}: ${bucket.count}`;
      bar.append(title);
      chart.append(bar);
    }
    chart.append(svg('line', { class: 'axis', x1: 0, x2: width, y1: plotHeight + 0.5, y2: plotHeight + 0.5 }));
    const ticks = width < 500 ? 2 : 4;
    for (let i = 0; i <= ticks; i++) {
      const time = start + (span * i) / ticks;
      const label = svg('text', {
        class: 'tick',
        x: ((width * i) / ticks).toFixed(1),
        y: HEIGHT - 4,
        'text-anchor': i === 0 ? 'start' : i === ticks ? 'end' : 'middle',
      });
      label.textContent = formatTime(new Date(time).toISOString()).slice(span > 86_400_000 ? 5 : 11, 19);
      chart.append(label);
    }
    const selection = svg('rect', { class: 'selection', x: 0, y: 0, width: 0, height: plotHeight, visibility: 'hidden' });
    chart.append(selection);
    this.attachDrag(chart, selection, width, x);
    this.plot.replaceChildren(chart);
  }

  attachDrag(chart, selection, width, x) {
    const { start, end, step } = this.data;
    const timeAt = (px) => start + (Math.min(width, Math.max(0, px)) / width) * (end - start);
    const localX = (event) => event.clientX - chart.getBoundingClientRect().left;
    let anchor = null;
    chart.addEventListener('pointerdown', (event) => {
      if (event.button !== 0) return;
      anchor = localX(event);
      chart.setPointerCapture(event.pointerId);
      selection.setAttribute('visibility', 'visible');
      selection.setAttribute('x', anchor);
      selection.setAttribute('width', 0);
    });
    chart.addEventListener('pointermove', (event) => {
      if (anchor === null) return;
      const now = localX(event);
      selection.setAttribute('x', Math.min(anchor, now));
      selection.setAttribute('width', Math.abs(now - anchor));
    });
    const finish = (event, cancelled) => {
      if (anchor === null) return;
      const now = localX(event);
      const [left, right] = [Math.min(anchor, now), Math.max(anchor, now)];
      anchor = null;
      selection.setAttribute('visibility', 'hidden');
      if (cancelled) return;
      if (right - left >= 4) {
        this.onSelect(new Date(timeAt(left)).toISOString(), new Date(timeAt(right)).toISOString());
        return;
      }
      // A click: zoom into the bucket under the pointer.
      const bucketStart = start + Math.floor((timeAt(left) - start) / step) * step;
      if (x(bucketStart) <= width) {
        this.onSelect(new Date(bucketStart).toISOString(), new Date(bucketStart + step).toISOString());
      }
    };
    chart.addEventListener('pointerup', (event) => finish(event, false));
    chart.addEventListener('pointercancel', (event) => finish(event, true));
  }
}

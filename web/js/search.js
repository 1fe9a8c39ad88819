// search.js — the Search page. The URL (`#/search?q=&from=&to=`) holds the query and the range,
// so a search is a link; every change goes through the URL, and `update()` runs what it says:
// hits (GET /api/v1/search, then more pages by cursor as the user scrolls), the histogram,
// the field sidebar, a banner when some cluster nodes did not answer, export links, live tail.

import { api, queryString } from './api.js';
import { showContext } from './context.js';
import { h, toast } from './dom.js';
import { Histogram } from './histogram.js';
import { QueryBar, addClause, filterClause } from './query.js';
import { ResultsTable } from './results.js';
import { FieldSidebar } from './sidebar.js';
import { LiveTail } from './tail.js';
import { DEFAULT_FROM, RangePicker } from './timerange.js';

const PAGE_SIZE = 100;
const LIVE_MAX_ROWS = 2000;
// Live lines are drawn in batches, so a fast stream costs one layout per batch, not per line.
const LIVE_FLUSH_MS = 100;

/** The URL of a search. */
export function searchHash({ q = '', from = DEFAULT_FROM, to = '' }) {
  return `#/search${queryString({ q, from, to })}`;
}

export class SearchPage {
  constructor(main, params) {
    this.state = { q: '', from: DEFAULT_FROM, to: '' };
    this.generation = 0;
    this.controller = null;
    this.cursor = null;
    this.loadingMore = false;
    this.liveQueue = []; // {hit} or {dropped}, oldest first
    this.liveTimer = null;

    this.queryBar = new QueryBar();
    this.range = new RangePicker((from, to) => this.navigate({ ...this.state, from, to }));
    this.histogram = new Histogram((from, to) => this.navigate({ ...this.state, from, to }));
    this.sidebar = new FieldSidebar((field, value, exclude) => this.addFilter(field, value, exclude));
    this.results = new ResultsTable({
      onFilter: (field, value, exclude) => this.addFilter(field, value, exclude),
      onContext: (hit) => showContext(hit),
    });
    this.tail = new LiveTail({
      onLines: (hits) => this.showLiveLines(hits),
      onDropped: (count) => this.showDropped(count),
      onState: (state) => this.showLiveState(state),
      onHeld: (held, dropped) => this.showHeld(held, dropped),
    });

    this.liveButton = h(
      'button',
      { type: 'button', class: 'btn live-toggle', id: 'live-toggle', 'aria-pressed': 'false' },
      h('span', { class: 'live-dot', 'aria-hidden': 'true' }),
      'Live',
    );
    this.liveButton.addEventListener('click', () => (this.tail.running ? this.stopLive(true) : this.startLive()));
    this.pauseButton = h('button', { type: 'button', class: 'btn', id: 'live-pause', hidden: true }, 'Pause');
    this.pauseButton.addEventListener('click', () => this.togglePause());
    this.exportNdjson = h('a', { class: 'btn btn-quiet', id: 'export-ndjson', download: 'lograft-export.ndjson' }, 'NDJSON');
    this.exportCsv = h('a', { class: 'btn btn-quiet', id: 'export-csv', download: 'lograft-export.csv' }, 'CSV');

    const form = h(
      'form',
      { class: 'searchbar', role: 'search' },
      this.queryBar.element,
      this.range.element,
      h('button', { type: 'submit', class: 'btn btn-primary', id: 'search-button' }, 'Search'),
      this.liveButton,
      this.pauseButton,
      h(
        'details',
        { class: 'export-menu' },
        h('summary', { class: 'btn' }, 'Export'),
        h('div', { class: 'export-popover' }, h('p', { class: 'hint' }, 'Every match of this search:'), this.exportNdjson, this.exportCsv),
      ),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.navigate({ ...this.state, q: this.queryBar.value });
    });

    this.banner = h('div', { class: 'banner banner-warn', id: 'partial-banner', role: 'status', hidden: true });
    this.summary = h('p', { class: 'summary', id: 'summary', 'aria-live': 'polite' });
    this.more = h('button', { type: 'button', class: 'btn load-more', id: 'load-more', hidden: true }, 'Load more');
    this.more.addEventListener('click', () => this.loadMore());
    this.end = h('p', { class: 'results-end muted', id: 'results-end' });

    this.element = h(
      'div',
      { class: 'search-page' },
      form,
      this.banner,
      h(
        'div',
        { class: 'search-body' },
        this.sidebar.element,
        h(
          'section',
          { class: 'results-pane', 'aria-label': 'Results' },
          this.histogram.element,
          this.summary,
          this.results.element,
          h('div', { class: 'results-foot' }, this.more, this.end),
        ),
      ),
    );
    main.replaceChildren(this.element);

    // Infinite scroll: the "Load more" button loads itself when it comes into view.
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) this.loadMore();
    }, { rootMargin: '400px' });
    this.observer.observe(this.more);
    this.update(params);
    this.queryBar.input.focus();
  }

  destroy() {
    this.tail.stop();
    this.observer.disconnect();
    this.histogram.destroy();
    if (this.controller) this.controller.abort();
  }

  /**
   * Show `state` now and put it in the URL. The query bar, the loading mark and the
   * search change in this call, not one event later when the router sees the new hash
   * (a reader of the URL then never sees a stale bar or count); the router's own
   * call for that hash is skipped.
   */
  navigate(state) {
    const hash = searchHash(state);
    this.shownHash = hash;
    if (hash !== location.hash) location.hash = hash;
    this.apply(new URLSearchParams(hash.split('?')[1] || ''));
  }

  addFilter(field, value, exclude) {
    const q = addClause(this.queryBar.value, filterClause(field, value), exclude);
    this.navigate({ ...this.state, q });
  }

  /** The router: run what the URL says, unless `navigate()` has already shown it. */
  update(params) {
    if (this.shownHash && this.shownHash === location.hash) return;
    this.shownHash = null;
    this.apply(params);
  }

  apply(params) {
    this.state = {
      q: params.get('q') || '',
      from: params.get('from') || DEFAULT_FROM,
      to: params.get('to') || '',
    };
    this.queryBar.value = this.state.q;
    this.range.set(this.state.from, this.state.to);
    const exportParams = { q: this.state.q, from: this.state.from, to: this.state.to || 'now' };
    this.exportNdjson.href = `/api/v1/export${queryString({ ...exportParams, format: 'ndjson' })}`;
    this.exportCsv.href = `/api/v1/export${queryString({ ...exportParams, format: 'csv' })}`;
    if (this.tail.running) this.stopLive(false);
    // A new search starts at the top (a filter may be clicked far down the list).
    window.scrollTo(0, 0);
    this.run();
  }

  /** Time parameters as sent: an open end means "now" (so the histogram ends now too). */
  rangeParams() {
    return { q: this.state.q, from: this.state.from, to: this.state.to || 'now' };
  }

  async run() {
    const generation = ++this.generation;
    if (this.controller) this.controller.abort();
    this.controller = new AbortController();
    const signal = this.controller.signal;
    const params = this.rangeParams();
    this.queryBar.clearError();
    this.cursor = null;
    this.more.hidden = true;
    this.end.textContent = '';
    this.element.classList.add('is-loading');
    this.summary.textContent = 'Searching…';
    this.failures = new Map();
    this.queried = 0;
    this.showBanner();

    const current = () => generation === this.generation;
    const quiet = (err) => !current() || err.unauthorized || err.name === 'AbortError';
    api('/api/v1/histogram', { params, signal })
      .then((response) => {
        if (!current()) return;
        this.noteFailures(response);
        this.histogram.render(response);
      })
      .catch((err) => quiet(err) || this.histogram.clear(''));
    api('/api/v1/fields', { params, signal })
      .then((response) => {
        if (!current()) return;
        this.noteFailures(response);
        this.sidebar.render(response, params);
      })
      .catch((err) => quiet(err) || this.sidebar.clear(''));
    const hits = api('/api/v1/search', { params: { ...params, limit: PAGE_SIZE }, signal });

    try {
      const response = await hits;
      if (!current()) return;
      this.queryBar.remember(this.state.q);
      this.noteFailures(response);
      this.results.clear();
      this.results.append(response.hits || []);
      this.cursor = response.cursor || null;
      const total = Number(response.total || 0);
      this.summary.textContent = `${total.toLocaleString()} hit${total === 1 ? '' : 's'}`;
      this.showEnd();
    } catch (err) {
      if (quiet(err)) return;
      this.results.clear();
      this.summary.textContent = '';
      if (err.status === 400) this.queryBar.showError(err, this.state.q);
      else this.summary.textContent = `Search failed: ${err.message}`;
    } finally {
      if (current()) this.element.classList.remove('is-loading');
    }

  }

  async loadMore() {
    if (!this.cursor || this.loadingMore || this.tail.running) return;
    const generation = this.generation;
    this.loadingMore = true;
    this.more.disabled = true;
    try {
      const response = await api('/api/v1/search', {
        params: { ...this.rangeParams(), limit: PAGE_SIZE, cursor: this.cursor },
        signal: this.controller ? this.controller.signal : undefined,
      });
      if (generation !== this.generation) return;
      this.noteFailures(response);
      this.results.append(response.hits || []);
      this.cursor = response.cursor || null;
      this.showEnd();
    } catch (err) {
      if (err.name !== 'AbortError' && !err.unauthorized) toast(`Loading more failed: ${err.message}`, 'error');
    } finally {
      this.loadingMore = false;
      this.more.disabled = false;
    }
  }

  showEnd() {
    this.more.hidden = !this.cursor;
    this.end.textContent = this.cursor ? '' : this.results.rowCount ? 'End of results.' : 'No lines match.';
  }

  /** Cluster searches say which nodes did not answer: `nodes.failed` (absent on one node). */
  noteFailures(response) {
    const failed = response && response.nodes && Array.isArray(response.nodes.failed) ? response.nodes.failed : [];
    for (const failure of failed) {
      if (failure && failure.node) this.failures.set(String(failure.node), String(failure.error || 'no answer'));
    }
    const queried = response && response.nodes ? Number(response.nodes.queried) || 0 : 0;
    this.queried = Math.max(this.queried, queried);
    this.showBanner();
  }

  showBanner() {
    if (!this.failures || !this.failures.size) {
      this.banner.hidden = true;
      this.banner.replaceChildren();
      return;
    }
    const names = [...this.failures].map(([node, error]) => h('li', null, h('strong', null, node), `: ${error}`));
    const of = this.queried ? ` of ${this.queried}` : '';
    this.banner.replaceChildren(
      h('p', null, `Partial results: ${this.failures.size}${of} nodes did not answer, so their lines are missing.`),
      h('ul', null, names),
    );
    this.banner.hidden = false;
  }

  startLive() {
    this.generation++; // pending searches no longer draw
    if (this.controller) this.controller.abort();
    this.cursor = null;
    this.more.hidden = true;
    this.end.textContent = '';
    this.results.clear();
    this.summary.textContent = 'Live: new lines matching the query appear at the top as they are indexed.';
    this.liveButton.setAttribute('aria-pressed', 'true');
    this.liveButton.classList.add('is-live');
    this.pauseButton.hidden = false;
    this.pauseButton.textContent = 'Pause';
    this.tail.start(this.state.q);
  }

  /** Leave live mode; `rerun`: show the search again. */
  stopLive(rerun) {
    this.tail.stop();
    clearTimeout(this.liveTimer);
    this.liveTimer = null;
    this.liveQueue = [];
    this.liveButton.setAttribute('aria-pressed', 'false');
    this.liveButton.classList.remove('is-live', 'is-paused');
    this.pauseButton.hidden = true;
    if (rerun) this.run();
  }

  togglePause() {
    if (this.tail.paused) this.tail.resume();
    else this.tail.pause();
  }

  showLiveLines(hits) {
    for (const hit of hits) this.queueLive({ hit });
  }

  showDropped(count) {
    this.queueLive({ dropped: count });
  }

  queueLive(item) {
    this.liveQueue.push(item);
    if (!this.liveTimer) this.liveTimer = setTimeout(() => this.flushLive(), LIVE_FLUSH_MS);
  }

  flushLive() {
    this.liveTimer = null;
    // Only the newest rows would stay in the table anyway.
    const items = this.liveQueue.splice(0).slice(-LIVE_MAX_ROWS);
    if (!items.length || !this.tail.running) return;
    const rows = items.map((item) => {
      if (item.hit) {
        const row = this.results.row(item.hit);
        row.classList.add('is-new');
        return row;
      }
      const count = item.dropped;
      const text = `${count.toLocaleString()} line${count === 1 ? '' : 's'} dropped here: the browser fell behind the stream.`;
      return this.results.marker(text, 'dropped');
    });
    // The stream is oldest first; the table is newest first.
    this.results.prepend(rows.reverse());
    this.results.rowCount += items.filter((item) => item.hit).length;
    this.results.trim(LIVE_MAX_ROWS);
  }

  showHeld(held, dropped) {
    const lines = `${held.toLocaleString()} new line${held === 1 ? '' : 's'} held back`;
    const lost = dropped ? `, ${dropped.toLocaleString()} dropped` : '';
    this.summary.textContent = `Paused: ${lines}${lost}. Resume to show them.`;
  }

  showLiveState(state) {
    this.pauseButton.textContent = state === 'paused' ? 'Resume' : 'Pause';
    this.liveButton.classList.toggle('is-paused', state === 'paused');
    const text = {
      live: 'Live: new lines matching the query appear at the top as they are indexed.',
      paused: 'Paused: new lines are held back until you resume.',
      reconnecting: 'Live tail interrupted; reconnecting…',
      closed: 'Live tail stopped by the server (check the query).',
    }[state];
    if (text) this.summary.textContent = text;
    if (state === 'closed') this.stopLive(false);
  }
}

// tail.js — live tail: GET /api/v1/tail (Server-Sent Events: `hit` per new matching line,
// `dropped` with a count when this client fell behind). Pausing keeps the stream open and
// holds new lines back (up to a limit, beyond which they are counted as dropped here).

import { api, queryString } from './api.js';

// The table keeps 2000 live rows; a paused page holds half that, and counts the rest.
export const PAUSED_BUFFER = 1000;

export class LiveTail {
  /** `onLines(hits)` (oldest first), `onDropped(count)`, `onState(text)`, `onHeld(held, dropped)`. */
  constructor({ onLines, onDropped, onState, onHeld }) {
    this.onLines = onLines;
    this.onDropped = onDropped;
    this.onState = onState;
    this.onHeld = onHeld;
    this.source = null;
    this.paused = false;
    this.held = [];
    this.heldDropped = 0;
  }

  get running() {
    return this.source !== null;
  }

  start(q) {
    this.stop();
    this.paused = false;
    const source = new EventSource(`/api/v1/tail${queryString({ q })}`, { withCredentials: true });
    this.source = source;
    source.addEventListener('open', () => this.onState('live'));
    source.addEventListener('hit', (event) => {
      let hit;
      try {
        hit = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!this.paused) {
        this.onLines([hit]);
        return;
      }
      if (this.held.length < PAUSED_BUFFER) this.held.push(hit);
      else this.heldDropped += 1;
      this.onHeld(this.held.length, this.heldDropped);
    });
    source.addEventListener('dropped', (event) => {
      const count = Number(event.data) || 0;
      if (this.paused) {
        this.heldDropped += count;
        this.onHeld(this.held.length, this.heldDropped);
      } else {
        this.onDropped(count);
      }
    });
    source.addEventListener('error', () => {
      if (source.readyState !== EventSource.CLOSED) {
        this.onState('reconnecting');
        return;
      }
      // The server refused the stream (a bad query, or the session ended). Ask why: a 401
      // sends the user to the login page; anything else is shown.
      this.source = null;
      api('/api/v1/me')
        .then(() => this.onState('closed'))
        .catch((err) => {
          if (!err.unauthorized) this.onState('closed');
        });
    });
  }

  pause() {
    this.paused = true;
    this.onState('paused');
  }

  resume() {
    this.paused = false;
    const held = this.held;
    const dropped = this.heldDropped;
    this.held = [];
    this.heldDropped = 0;
    if (held.length) this.onLines(held);
    if (dropped) this.onDropped(dropped);
    this.onState(this.source ? 'live' : 'closed');
  }

  stop() {
    if (this.source) this.source.close();
    this.source = null;
    this.held = [];
    this.heldDropped = 0;
  }
}

// Venue connections (and the node's journal), from the `status` channel while the WebSocket
// is up and from `/status` while the page polls: each with its state and the reason it last
// went down.

import { $, el, setText, duration } from './dom.js';

export class VenuesView {
  constructor() {
    this.venues = new Map(); // name -> { state, reason, ... }
    this.dirty = false;
    this.unreachable = false;
  }

  /** Neither the WebSocket nor `/status` answers: what is shown is only the last known. */
  setUnreachable(yes) {
    if (this.unreachable !== yes) this.dirty = true;
    this.unreachable = yes;
  }

  /** A `status` channel message: `{ venue, market, data }`. */
  onStatus(msg) {
    if (!msg.venue || !msg.data) return;
    this.venues.set(msg.venue, { market: msg.market ?? null, ...msg.data, sinceMs: msg.data.since_ns / 1e6 });
    this.unreachable = false;
    this.dirty = true;
  }

  /** `/status`'s `venues` (and `journal`), while polling. */
  onStatusDoc(doc, now) {
    if (!Array.isArray(doc.venues)) return;
    for (const v of doc.venues) {
      // `/status` says how long in whole seconds: shown as such, not as false precision.
      this.venues.set(v.name, { ...v, sinceMs: now - v.since_s * 1000, coarse: true });
    }
    if (doc.journal && doc.journal.state === 'degraded') {
      this.venues.set('journal', { state: 'degraded', reason: doc.journal.reason, sinceMs: doc.journal.since_ns / 1e6 });
    }
    this.dirty = true;
  }

  render(now) {
    if (!this.dirty) return;
    this.dirty = false;
    const list = $('venues');
    const items = [...this.venues].sort(([a], [b]) => (a === 'journal' ? 1 : b === 'journal' ? -1 : a.localeCompare(b)));
    list.replaceChildren(
      ...items.map(([name, v]) => {
        const age = Math.max(0, now - v.sinceMs);
        const since = !Number.isFinite(v.sinceMs) || v.sinceMs <= 0 ? '' : v.coarse ? `for ${Math.floor(age / 1000)} s` : `for ${duration(age)}`;
        const books = v.books ? `books ${v.books_synced}/${v.books}` : '';
        const counts = v.connects !== undefined ? `connects ${v.connects} · drops ${v.disconnects}` : '';
        const backoff = v.state === 'backing_off' && v.backoff_ms ? `retry in ${duration(v.backoff_ms)}` : '';
        const detail = [v.reason ? `last down: ${v.reason}` : '', backoff].filter(Boolean).join(' · ');
        return el('li', { 'data-venue': name, 'data-state': v.state },
          el('span', { class: 'name', text: name }),
          el('span', { class: 'muted', text: [v.market, books, counts].filter(Boolean).join(' · ') }),
          el('span', { class: 'pill', 'data-state': v.state, text: `${v.state.replace('_', ' ')} ${since}`.trim() }),
          detail ? el('span', { class: 'detail', text: detail }) : null);
      }),
    );
    if (items.length === 0) list.append(el('li', { class: 'muted', text: 'no venue connections yet' }));
    list.dataset.stale = String(this.unreachable);
    const n = items.filter(([name]) => name !== 'journal').length;
    setText($('h-venues'), this.unreachable ? `Venues (${n}, last known: tape unreachable)` : `Venues (${n})`);
  }
}

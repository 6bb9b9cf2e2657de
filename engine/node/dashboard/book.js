// An L2 book rebuilt from the protocol's `book` channel: a snapshot, then updates applied in
// order (docs/protocol.md, "book"). Prices and quantities stay the server's strings.
//
// Range: a snapshot of `depth` levels on a side is exact only down to its worst level; the
// server also sends changes beyond it, but the page cannot know the levels there that did not
// change, so it ignores them. When every level inside the range is gone, the side is no longer
// known and the book asks for a new snapshot (`needsSnapshot`).

import { cmp, isZero } from './decimal.js';

/** How long a changed level stays highlighted, ms. */
export const HIGHLIGHT_MS = 600;

export class Book {
  constructor(depth) {
    this.depth = depth;
    this.reset();
  }

  /** Forgets everything (another instrument, a lost connection, a stale book). */
  reset() {
    this.bids = new Map();
    this.asks = new Map();
    this.limit = { bids: null, asks: null };
    this.updateId = null;
    this.sorted = null;
    this.changed = new Map(); // "b:price" / "a:price" -> { dir: 'up' | 'down', until }
    this.live = false;
  }

  /** Replaces the book with a snapshot's `data`. */
  snapshot(data) {
    this.reset();
    for (const [p, q] of data.bids) this.bids.set(p, q);
    for (const [p, q] of data.asks) this.asks.set(p, q);
    // A full side is exact only to its worst level (bids descend, asks ascend).
    this.limit.bids = data.bids.length >= this.depth ? data.bids[data.bids.length - 1][0] : null;
    this.limit.asks = data.asks.length >= this.depth ? data.asks[data.asks.length - 1][0] : null;
    this.updateId = data.update_id;
    this.live = true;
  }

  /** Applies an update's changed levels, in order. */
  apply(data, now = 0) {
    this.side(this.bids, data.bids, 'bids', 'b', now);
    this.side(this.asks, data.asks, 'asks', 'a', now);
    this.updateId = data.update_id;
    this.sorted = null;
  }

  side(levels, changes, name, tag, now) {
    const limit = this.limit[name];
    for (const [p, q] of changes) {
      if (limit !== null && (name === 'bids' ? cmp(p, limit) < 0 : cmp(p, limit) > 0)) {
        continue; // beyond the range this page knows exactly
      }
      const old = levels.get(p);
      if (isZero(q)) {
        if (old === undefined) continue;
        levels.delete(p);
        this.changed.set(`${tag}:${p}`, { dir: 'down', until: now + HIGHLIGHT_MS });
      } else {
        levels.set(p, q);
        const up = old === undefined || cmp(q, old) > 0;
        this.changed.set(`${tag}:${p}`, { dir: up ? 'up' : 'down', until: now + HIGHLIGHT_MS });
      }
    }
  }

  /** True when a side that was cut at `depth` has emptied: only a snapshot can refill it. */
  needsSnapshot() {
    return (
      (this.limit.bids !== null && this.bids.size === 0) ||
      (this.limit.asks !== null && this.asks.size === 0)
    );
  }

  /** True when a side that was cut at `depth` knows fewer than `n` levels: the market moved
   *  through the known range, and a snapshot would show more. */
  thin(n) {
    return (
      (this.limit.bids !== null && this.bids.size < n) ||
      (this.limit.asks !== null && this.asks.size < n)
    );
  }

  /** Both sides best first: `{ bids: [[price, qty], ...], asks: [...] }`. */
  levels() {
    if (!this.sorted) {
      const bids = [...this.bids].sort((x, y) => cmp(y[0], x[0]));
      const asks = [...this.asks].sort((x, y) => cmp(x[0], y[0]));
      this.sorted = { bids, asks };
    }
    return this.sorted;
  }

  /** Best bid and ask levels (`null` for an empty side). */
  best() {
    const { bids, asks } = this.levels();
    return { bid: bids[0] ?? null, ask: asks[0] ?? null };
  }

  /** The highlight of a level at `now`: 'up', 'down' or null. Expired ones are dropped. */
  highlight(tag, price, now) {
    const key = `${tag}:${price}`;
    const h = this.changed.get(key);
    if (!h) return null;
    if (h.until <= now) {
      this.changed.delete(key);
      return null;
    }
    return h.dir;
  }

  /** True while some highlight has yet to expire (the view repaints to clear it). */
  highlighting(now) {
    for (const [k, h] of this.changed) {
      if (h.until > now) return true;
      this.changed.delete(k);
    }
    return false;
  }
}

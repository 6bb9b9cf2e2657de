// The market panel: one instrument's book (ladder with depth bars and highlighted changes),
// best bid/ask and spread, 24h ticker, trades tape and a price chart of recent trades.
//
// Messages only change state and mark the panel dirty; `render` (called from the page's
// animation-frame loop) paints whatever changed since the last frame, so a burst of 1,000
// messages costs one paint, not 1,000. The ladder carries the book's `update_id` and top of
// book as data attributes: what the browser test compares with its own protocol client.

import { $, el, setText, clock, nowMs } from './dom.js';
import { Book } from './book.js';
import { SeqTracker, Seq, streamKey } from './streams.js';
import { sub, isNegative, isZero, add } from './decimal.js';
import { priceChart } from './chart.js';

/** Levels per side the page subscribes to (the snapshot's depth). */
export const BOOK_DEPTH = 25;
/** Levels per side shown. */
export const LADDER_ROWS = 14;
/** Least time between two snapshots asked for to refill a thin ladder, ms. */
export const REFILL_MS = 1000;
/** Trades listed in the tape. */
export const TAPE_ROWS = 60;
/** Least time between two paints of the chart, ms: a line of 500 trades redrawn at 60 Hz
 *  costs more than it shows. */
export const CHART_EVERY_MS = 100;
/** Trades kept for the chart. */
export const CHART_POINTS = 500;

export class MarketView {
  /**
   * @param {object} hooks requestSnapshot(instrument), sample(kind, ms)
   */
  constructor(hooks) {
    this.hooks = hooks;
    this.inst = null;
    this.book = new Book(BOOK_DEPTH);
    this.seq = new SeqTracker();
    this.snapshots = 0;
    this.reset();
    this.rows = { asks: makeRows($('ladder-asks')), bids: makeRows($('ladder-bids')) };
    this.chartCanvas = $('chart');
    this.chartAt = 0;
    this.tradesAt = 0;
  }

  reset() {
    this.book.reset();
    this.seq.reset();
    this.awaitingSnapshot = true;
    this.snapshotRequested = false;
    this.lastRefill = 0;
    this.bookReason = 'waiting for a snapshot';
    this.bbo = null;
    this.bboStale = false;
    this.ticker = null;
    this.trades = [];
    this.newTrades = 0;
    this.points = [];
    this.missedTrades = 0;
    this.newestRecvNs = 0;
    this.dirty = { book: true, bbo: true, ticker: true, trades: true, chart: true };
    this.tapeCleared = true;
  }

  /** Follows another instrument (`{ market, symbol, price_scale, qty_scale }`). */
  select(inst) {
    this.inst = inst;
    this.snapshots = 0;
    this.reset();
    setText($('t-symbol'), inst ? `${inst.market}:${inst.symbol}` : '');
  }

  /** The connection was lost: everything shown is kept but marked stale until the fresh
   *  snapshot and states of the new connection arrive. */
  disconnected() {
    this.seq.reset();
    this.awaitingSnapshot = true;
    this.snapshotRequested = false;
    this.bookReason = 'reconnecting';
    this.book.live = false;
    this.dirty.book = true;
  }

  /** True if `msg` is about the instrument shown. */
  mine(msg) {
    return this.inst !== null && msg.market === this.inst.market && msg.symbol === this.inst.symbol;
  }

  /** A `bbo`, `trades`, `ticker` or `book` message; `arrival` is its arrival time, ms. */
  onMessage(msg, arrival) {
    if (!this.mine(msg)) return;
    const key = streamKey(msg.channel, msg.market, msg.symbol);
    switch (msg.channel) {
      case 'book':
        this.onBook(msg, key, arrival);
        break;
      case 'bbo':
        this.onState(msg, key, arrival, 'bbo');
        break;
      case 'ticker':
        this.onState(msg, key, arrival, 'ticker');
        break;
      case 'trades':
        this.onTrade(msg, key, arrival);
        break;
      default:
    }
  }

  /** Counts a published message's latency (not an initial state or a snapshot sent to this
   *  page alone: those carry the receive time of an older input). */
  published(msg, arrival) {
    this.hooks.sample(arrival - msg.recv_ns / 1e6);
    if (msg.recv_ns > this.newestRecvNs) this.newestRecvNs = msg.recv_ns;
  }

  onBook(msg, key, arrival) {
    if (msg.type === 'snapshot') {
      if (msg.id === undefined && this.seq.has(key) && msg.seq === this.seq.last.get(key) + 1) {
        this.published(msg, arrival); // a resync's snapshot, published to every subscriber
      }
      this.book.snapshot(msg.data);
      this.seq.base(key, msg.seq);
      this.awaitingSnapshot = false;
      this.snapshotRequested = false;
      this.snapshots += 1;
      this.bookReason = '';
      this.dirty.book = true;
      return;
    }
    if (msg.type === 'status') {
      if (msg.data && msg.data.stale) {
        this.book.reset();
        this.seq.base(key, msg.seq);
        this.awaitingSnapshot = true;
        this.bookReason = `stale: ${msg.data.reason}`;
        this.dirty.book = true;
      }
      return;
    }
    if (this.awaitingSnapshot) return; // a snapshot is on its way; it includes this
    const r = this.seq.check(key, msg.seq);
    if (r === Seq.OLD) return;
    if (r !== Seq.NEXT) {
      // Missed updates: the book is wrong until a fresh snapshot.
      this.requestSnapshot(`gap before seq ${msg.seq}`);
      return;
    }
    this.published(msg, arrival);
    this.book.apply(msg.data, performance.now());
    this.dirty.book = true;
    if (this.book.needsSnapshot()) this.requestSnapshot('the known range emptied');
    else if (this.book.thin(LADDER_ROWS)) this.refill();
  }

  /** Asks for a fresh snapshot while the book stays live (at most once a second): the
   *  market moved through the range the last snapshot covered, and the ladder thins out. */
  refill() {
    const now = performance.now();
    if (this.snapshotRequested || now - this.lastRefill < REFILL_MS || !this.inst) return;
    this.lastRefill = now;
    this.snapshotRequested = true;
    this.hooks.requestSnapshot(this.inst);
  }

  requestSnapshot(why) {
    this.awaitingSnapshot = true;
    this.book.live = false;
    this.bookReason = `recovering: ${why}`;
    this.dirty.book = true;
    if (!this.snapshotRequested && this.inst) {
      this.snapshotRequested = true;
      this.hooks.requestSnapshot(this.inst);
    }
  }

  /** The snapshot request failed (connection lost): the next connection asks again. */
  snapshotFailed() {
    this.snapshotRequested = false;
  }

  onState(msg, key, arrival, which) {
    const r = this.seq.check(key, msg.seq);
    if (r === Seq.OLD) return;
    if (r !== Seq.FIRST && msg.type === 'update') this.published(msg, arrival);
    if (which === 'bbo') {
      this.bboStale = msg.type === 'status';
      if (msg.type === 'update') this.bbo = msg.data;
      this.dirty.bbo = true;
    } else {
      this.ticker = msg.data;
      this.dirty.ticker = true;
    }
  }

  onTrade(msg, key, arrival) {
    const last = this.seq.last.get(key);
    const r = this.seq.check(key, msg.seq);
    if (r === Seq.OLD) return;
    if (r === Seq.GAP) this.missedTrades += msg.seq - last - 1;
    this.published(msg, arrival);
    const t = msg.data;
    this.trades.unshift(t);
    if (this.trades.length > TAPE_ROWS) this.trades.length = TAPE_ROWS;
    this.newTrades = Math.min(this.newTrades + 1, TAPE_ROWS);
    this.points.push({ t: t.trade_ts, p: Number(t.price), label: t.price, side: t.side });
    if (this.points.length > CHART_POINTS) this.points.splice(0, this.points.length - CHART_POINTS);
    this.dirty.trades = true;
    this.dirty.chart = true;
  }

  /** Paints what changed; returns the "behind by" sample of this frame (ms), if any. */
  render() {
    const now = performance.now();
    if (this.book.highlighting(now)) this.dirty.book = true;
    if (this.dirty.book) this.renderBook(now);
    if (this.dirty.bbo) this.renderBbo();
    if (this.dirty.ticker) this.renderTicker();
    if (this.dirty.trades) this.renderTrades(now);
    if (this.dirty.chart && now - this.chartAt >= CHART_EVERY_MS) {
      priceChart(this.chartCanvas, this.points);
      this.dirty.chart = false;
      this.chartAt = now;
    }
    if (this.newestRecvNs === 0) return null;
    const behind = nowMs() - this.newestRecvNs / 1e6;
    this.newestRecvNs = 0;
    return behind;
  }

  renderBook(now) {
    this.dirty.book = false;
    const ladder = $('ladder');
    const { bids, asks } = this.book.levels();
    const shownAsks = asks.slice(0, LADDER_ROWS);
    const shownBids = bids.slice(0, LADDER_ROWS);
    const cum = (levels) => {
      let total = '0';
      return levels.map(([p, q]) => {
        total = add(total, q);
        return [p, q, total];
      });
    };
    const a = cum(shownAsks);
    const b = cum(shownBids);
    const maxTotal = Math.max(Number(a.length ? a[a.length - 1][2] : 0), Number(b.length ? b[b.length - 1][2] : 0)) || 1;
    // Asks: worst at the top, best next to the spread.
    paintSide(this.rows.asks, [...a].reverse(), LADDER_ROWS - a.length, maxTotal, this.book, 'a', now);
    paintSide(this.rows.bids, b, 0, maxTotal, this.book, 'b', now);
    const best = this.book.best();
    const state = this.book.live ? 'live' : this.snapshots > 0 ? 'stale' : 'waiting';
    // Attributes are set only when they change: each write is a style invalidation.
    setData(ladder, {
      state,
      updateId: this.book.updateId === null ? '' : String(this.book.updateId),
      bestBid: best.bid ? best.bid[0] : '',
      bestBidQty: best.bid ? best.bid[1] : '',
      bestAsk: best.ask ? best.ask[0] : '',
      bestAskQty: best.ask ? best.ask[1] : '',
      snapshots: String(this.snapshots),
    });
    setText($('ladder-mid'), best.bid && best.ask ? `spread ${sub(best.ask[0], best.bid[0])}` : '–');
    setText($('update-id'), this.book.updateId);
    setText($('book-state'), state === 'live' ? '' : this.bookReason);
  }

  renderBbo() {
    this.dirty.bbo = false;
    const d = this.bbo;
    setText($('bbo-bid'), d ? d.bid : null);
    setText($('bbo-ask'), d ? d.ask : null);
    setText($('bbo-bid-qty'), d && d.bid_qty ? d.bid_qty : '');
    setText($('bbo-ask-qty'), d && d.ask_qty ? d.ask_qty : '');
    setText($('bbo-spread'), this.bboStale ? 'stale' : d ? d.spread : null);
  }

  renderTicker() {
    this.dirty.ticker = false;
    const t = this.ticker;
    setText($('tk-last'), t ? t.last : null);
    const change = $('tk-change');
    if (t && t.change !== undefined) {
      const pct = t.change_pct === null || t.change_pct === undefined ? '' : ` (${t.change_pct}%)`;
      setText(change, `${t.change}${pct}`);
      change.className = isNegative(t.change) ? 'down' : isZero(t.change) ? '' : 'up';
    } else {
      setText(change, null);
    }
    setText($('tk-high'), t ? t.high : null);
    setText($('tk-low'), t ? t.low : null);
    setText($('tk-volume'), t ? t.volume : null);
    setText($('tk-qvolume'), t ? t.quote_volume : null);
  }

  renderTrades(now) {
    this.dirty.trades = false;
    // New rows flash when trades are sparse enough to follow by eye; in a burst the flash
    // would keep the whole tape repainting for nothing.
    const flash = now - this.tradesAt > 250;
    this.tradesAt = now;
    const body = $('trades');
    if (this.tapeCleared) {
      body.replaceChildren();
      this.tapeCleared = false;
      this.newTrades = this.trades.length;
    }
    const fresh = this.trades.slice(0, this.newTrades).reverse();
    for (const t of fresh) {
      body.prepend(
        el('tr', { class: flash ? 'new' : '' },
          el('td', { text: clock(t.trade_ts) }),
          el('td', { class: t.side, text: t.price }),
          el('td', { text: t.qty }),
          el('td', { class: t.side, text: t.side })));
    }
    this.newTrades = 0;
    while (body.children.length > TAPE_ROWS) body.lastElementChild.remove();
    setText($('trades-missed'), this.missedTrades ? `${this.missedTrades} missed (slow page: the server dropped them)` : '');
  }
}

/** Sets `e.dataset` from `values`, touching only what changed. */
function setData(e, values) {
  for (const [k, v] of Object.entries(values)) if (e.dataset[k] !== v) e.dataset[k] = v;
}

function makeRows(container) {
  const rows = [];
  for (let i = 0; i < LADDER_ROWS; i++) {
    const price = el('span');
    const qty = el('span');
    const total = el('span');
    const bar = el('div', { class: 'bar' });
    const row = el('div', { class: 'row empty' }, bar, price, qty, total);
    container.append(row);
    rows.push({ row, price, qty, total, bar, key: '', width: '' });
  }
  return rows;
}

/** Fills `rows` from `levels` ([price, qty, cumulative]) starting at row `offset`. */
function paintSide(rows, levels, offset, maxTotal, book, tag, now) {
  rows.forEach((r, i) => {
    const lv = levels[i - offset];
    if (!lv) {
      if (r.key !== '') {
        r.row.className = 'row empty';
        r.price.textContent = '';
        r.qty.textContent = '';
        r.total.textContent = '';
        r.bar.style.setProperty('width', '0');
        r.width = '0';
        r.key = '';
      }
      return;
    }
    const [p, q, total] = lv;
    const hl = book.highlight(tag, p, now);
    const cls = hl ? `row hl-${hl}` : 'row';
    if (r.row.className !== cls) r.row.className = cls;
    setText(r.price, p);
    setText(r.qty, q);
    setText(r.total, total);
    const width = `${Math.min(100, (100 * Number(total)) / maxTotal).toFixed(1)}%`;
    if (r.width !== width) {
      r.bar.style.setProperty('width', width);
      r.width = width;
    }
    if (r.key !== p) r.row.dataset.price = p;
    r.key = p;
  });
}

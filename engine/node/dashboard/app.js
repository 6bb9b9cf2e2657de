// tape's dashboard: wiring. One WebSocket (conn.js) feeds the market, venue and account
// views; `/status` is polled every 2 s for latency (poll.js), and while the WebSocket is down
// the poll also carries venues, instruments and the account. Views only change state when a
// message arrives; one requestAnimationFrame loop paints, so the page never falls behind the
// feed by more than a frame of work.

import { $, el, setText, nowMs } from './dom.js';
import { Connection, MAX_ATTEMPTS } from './conn.js';
import { Poller, getJson } from './poll.js';
import { MarketView, BOOK_DEPTH } from './market.js';
import { LatencyView } from './latency.js';
import { VenuesView } from './venues.js';
import { AccountView } from './account.js';

const MARKET_CHANNELS = new Set(['bbo', 'trades', 'ticker', 'book']);

const meta = (name) => {
  const m = document.querySelector(`meta[name="${name}"]`);
  return m ? m.content : '';
};
const wsPath = meta('tape-ws-path') || '/ws';
const authOn = meta('tape-auth') === 'on';
const wsUrl = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${wsPath}`;

let instruments = [];
let polledOk = null; // last /status poll: true, false, or null before the first
let msgCount = 0;
let rate = 0;
let lastSecond = 0;
let wasConnected = false;

const latency = new LatencyView();
const venues = new VenuesView();
const market = new MarketView({
  requestSnapshot: (inst) => {
    conn
      .request({ type: 'get_book', symbol: name(inst), depth: BOOK_DEPTH })
      .then((reply) => {
        if (reply.type === 'error') market.snapshotFailed();
      })
      .catch(() => market.snapshotFailed());
  },
  sample: (ms) => latency.sample(ms),
});
const account = new AccountView(authOn, {
  conn: () => conn,
  restart: () => conn.restart(),
  instrument: () => market.inst,
});
const conn = new Connection(wsUrl, {
  now: nowMs,
  onOpen,
  onMessage,
  onState: renderBadge,
});
const poller = new Poller({
  fallback: () => !conn.connected,
  token: () => account.token,
  onStatus: (res, fallback) => {
    polledOk = res.ok;
    if (fallback) venues.setUnreachable(!res.ok);
    if (!res.ok || !res.body) return;
    latency.onStatus(res.body.latency_ns);
    if (fallback) venues.onStatusDoc(res.body, nowMs());
  },
  onInstruments: (res) => {
    if (res.ok && res.body) setInstruments(res.body.instruments);
  },
  onPrivate: (kind, res) => account.onPolled(kind, res),
});

function name(inst) {
  return `${inst.market}:${inst.symbol}`;
}

/** Every new session: the status channel first (its reply is the server's first answer),
 *  then the shown instrument, then the account. Everything shown is asked for again. */
function onOpen(c) {
  c.request({ type: 'subscribe', channels: ['status'] }).catch(() => {});
  market.disconnected();
  if (market.inst) subscribeMarket(market.inst);
  account.onOpen(c);
  loadInstruments();
}

function subscribeMarket(inst) {
  conn
    .request({ type: 'subscribe', channels: ['bbo', 'trades', 'ticker', 'book'], symbols: [name(inst)], depth: BOOK_DEPTH })
    .then((reply) => {
      if (reply.type === 'error') showBanner(`cannot follow ${name(inst)}: ${reply.code} ${reply.message}`);
    })
    .catch(() => {});
}

function onMessage(msg, arrival) {
  msgCount += 1;
  switch (msg.type) {
    case 'update':
    case 'snapshot':
    case 'status':
      if (msg.channel === 'status') venues.onStatus(msg);
      else if (MARKET_CHANNELS.has(msg.channel)) market.onMessage(msg, arrival);
      else account.onUpdate(msg, conn);
      break;
    case 'error':
      // Errors that answer a request are the requester's; one without an id is the server
      // telling the session something (e.g. before closing it).
      if (msg.id === undefined) showBanner(`server: ${msg.code} ${msg.message}`);
      break;
    default:
  }
}

function showBanner(text) {
  const b = $('banner');
  setText(b, text);
  b.hidden = !text;
}

function renderBadge(s) {
  const badge = $('badge');
  const secs = Math.max(0, Math.ceil((s.retryAt - nowMs()) / 1000));
  let text;
  switch (s.name) {
    case 'connected':
      text = 'connected';
      break;
    case 'connecting':
      text = s.failures > 0 ? `connecting (attempt ${s.failures + 1})` : 'connecting';
      break;
    case 'reconnecting':
      text = `reconnecting in ${secs} s`;
      break;
    case 'failed':
      text = s.retryAt ? `failed after ${s.failures} attempts · next try in ${secs} s` : `failed after ${s.failures} attempts · trying`;
      break;
    default:
      text = s.name;
  }
  badge.dataset.state = s.name;
  badge.dataset.failures = String(s.failures);
  setText(badge, text);
  badge.title = s.closeReason ? `last close: ${s.closeReason}` : wsUrl;
  $('retry').hidden = s.name === 'connected' || s.name === 'connecting';
  const connected = s.name === 'connected';
  if (wasConnected && !connected) market.disconnected();
  wasConnected = connected;
  const mode = $('mode');
  mode.dataset.mode = connected ? 'live' : 'polling';
  setText(mode, connected ? 'live · WebSocket' : polledOk === false ? 'polling · server unreachable' : 'polling /status every 2 s');
  if (connected) showBanner('');
  else if (s.failures > 0) {
    const more = authOn && account.token ? ', and your account from /api/*' : '';
    showBanner(
      `The WebSocket is down (${s.closeReason || 'no connection'}${s.failures >= MAX_ATTEMPTS ? `, ${s.failures} attempts` : ''}). ` +
        `Showing venues and latency from /status${more} every 2 s until it reconnects.`,
    );
  }
}

let loading = false;
async function loadInstruments() {
  if (loading) return;
  loading = true;
  const res = await getJson('/api/instruments');
  loading = false;
  if (res.ok && res.body) setInstruments(res.body.instruments);
  // The engine learns its instruments from the feed's first records: ask again until some.
  if (instruments.length === 0) setTimeout(loadInstruments, 1000);
}

function setInstruments(list) {
  if (!Array.isArray(list)) return;
  const same = list.length === instruments.length && list.every((x, i) => name(x) === name(instruments[i]));
  instruments = list;
  if (!same) {
    const select = $('instrument');
    const current = market.inst ? name(market.inst) : null;
    select.replaceChildren(
      ...list.map((x) => el('option', { value: name(x), text: name(x) })),
    );
    if (current) select.value = current;
  }
  if (!market.inst && list.length) {
    const wanted = decodeURIComponent(location.hash.slice(1)).toLowerCase();
    const pick = list.find((x) => name(x).toLowerCase() === wanted) || list.find((x) => x.book) || list[0];
    switchInstrument(pick);
  }
}

function switchInstrument(inst) {
  const old = market.inst;
  if (old && name(old) === name(inst)) return;
  market.select(inst);
  $('instrument').value = name(inst);
  history.replaceState(null, '', `#${name(inst)}`);
  if (conn.open) {
    if (old) conn.request({ type: 'unsubscribe', channels: ['bbo', 'trades', 'ticker', 'book'], symbols: [name(old)] }).catch(() => {});
    subscribeMarket(inst);
  }
}

function frame() {
  const now = performance.now();
  const behind = market.render();
  if (behind !== null) latency.behindSample(now, behind);
  latency.render(now);
  account.render();
  if (now - lastSecond >= 1000) {
    rate = Math.round((msgCount * 1000) / Math.max(1, now - lastSecond));
    msgCount = 0;
    lastSecond = now;
    setText($('rate'), rate);
    setText($('gaps'), market.seq.gaps + account.seq.gaps);
    renderBadge(conn.state);
    venues.dirty = true;
  }
  venues.render(nowMs());
  requestAnimationFrame(frame);
}

$('instrument').addEventListener('change', (e) => {
  const inst = instruments.find((x) => name(x) === e.target.value);
  if (inst) switchInstrument(inst);
});
$('retry').addEventListener('click', () => conn.retryNow());

// What a test or a benchmark reads: the figures the page shows, as numbers.
window.tapeDashboard = Object.freeze({
  stats: () => ({
    behind: latency.behindStats(performance.now()),
    tickToBrowser: latency.t2bStats(),
    rate,
    gaps: market.seq.gaps,
    snapshots: market.snapshots,
    state: conn.state.name,
  }),
});

conn.start();
poller.start();
loadInstruments();
requestAnimationFrame(frame);

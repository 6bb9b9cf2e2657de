// The account panel: a token (kept in sessionStorage only, never in the URL or localStorage),
// then positions with unrealized and realized PnL, open orders, brackets/OCOs/trailing stops,
// the portfolio, risk alerts as notifications, and the order ticket with cancel buttons.
//
// Nothing private is rendered before the server accepted the token: over the WebSocket its
// `authenticated` reply, while polling a 200 from `/api/*`. A refused token (4001, 401) is
// forgotten and everything private cleared.

import { $, el, setText, notify, syncRows } from './dom.js';
import { SeqTracker, Seq } from './streams.js';
import { buildRequest, describeReply, readForm } from './ticket.js';

const TOKEN_KEY = 'tape-token';
const PRIVATE_CHANNELS = ['orders', 'positions', 'portfolio', 'risk_alerts'];
const LIVE_STATUSES = new Set(['pending_new', 'new', 'partially_filled', 'pending_cancel']);
const OPEN_ADVANCED = new Set(['waiting_entry', 'armed', 'triggered']);

export class AccountView {
  /**
   * @param {object} hooks conn() -> Connection, restart() (a new WebSocket session),
   *   instrument() -> the shown instrument
   */
  constructor(authOn, hooks) {
    this.authOn = authOn;
    this.hooks = hooks;
    this.token = sessionStorage.getItem(TOKEN_KEY);
    this.seq = new SeqTracker();
    this.kind = 'order';
    this.clear();
    this.phase = !authOn ? 'off' : this.token ? 'pending' : 'locked';
    this.wire();
    this.renderPhase();
  }

  clear() {
    this.user = null;
    this.roles = [];
    this.orders = new Map();
    this.positions = new Map();
    this.advanced = new Map();
    this.portfolio = null;
    this.balances = [];
    this.seq.reset();
    this.dirty = true;
  }

  get accepted() {
    return this.phase === 'accepted';
  }

  wire() {
    $('token-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const t = $('token').value.trim();
      if (!t) return;
      $('token').value = '';
      this.token = t;
      sessionStorage.setItem(TOKEN_KEY, t);
      this.clear();
      this.setPhase('pending', 'checking the token…');
      // A session authenticates once: a new token needs a new session.
      this.hooks.restart();
    });
    $('token-clear').addEventListener('click', () => {
      this.forget('signed out');
      this.hooks.restart();
    });
    for (const tab of document.querySelectorAll('#ticket .tab')) {
      tab.addEventListener('click', () => this.setKind(tab.dataset.kind));
    }
    $('t-type').addEventListener('change', () => this.showFields());
    $('ticket').addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    $('cancel-all').addEventListener('click', () => this.send({ type: 'cancel_all' }, 'cancel all'));
    this.showFields();
  }

  setKind(kind) {
    this.kind = kind;
    for (const tab of document.querySelectorAll('#ticket .tab')) {
      tab.setAttribute('aria-selected', String(tab.dataset.kind === kind));
    }
    this.showFields();
  }

  showFields() {
    for (const box of document.querySelectorAll('#ticket [data-for]')) box.hidden = box.dataset.for !== this.kind;
    const limit = $('t-type').value === 'limit';
    for (const f of document.querySelectorAll('#ticket [data-for-type="limit"]')) f.hidden = !limit;
  }

  forget(why) {
    this.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    this.clear();
    this.setPhase(this.authOn ? 'locked' : 'off', why);
  }

  setPhase(phase, note = '') {
    this.phase = phase;
    this.note = note;
    this.dirty = true;
    this.renderPhase();
  }

  renderPhase() {
    const panel = $('account');
    panel.dataset.state = this.phase;
    const notes = {
      off: 'authentication is off on this server (no [[user]] in its config): market data only',
      locked: 'sign in with a token to see positions and orders and to trade',
      pending: 'checking the token…',
      accepted: '',
      refused: '',
    };
    setText($('token-state'), this.note || notes[this.phase]);
    setText($('account-user'), this.accepted ? `${this.user} · ${this.roles.join(', ')}` : '');
    $('account-body').hidden = !this.accepted;
    const trader = this.roles.includes('trader') || this.roles.includes('admin');
    $('t-submit').disabled = !trader;
    $('cancel-all').disabled = !trader;
    if (this.accepted && !trader) setText($('t-feedback'), 'this user may view but not trade (no trader role)');
  }

  /** A new WebSocket session: authenticate, subscribe, then fetch the state (subscribing
   *  first, so no update falls between the snapshot and the subscription). */
  async onOpen(conn) {
    if (!this.authOn || !this.token) return;
    this.seq.reset();
    let reply;
    try {
      reply = await conn.request({ type: 'auth', token: this.token });
    } catch {
      return; // the connection dropped; the next one tries again
    }
    if (reply.type === 'error') {
      if (reply.code === 4001) this.refused(reply.message);
      else this.setPhase(this.phase, `${reply.code}: ${reply.message}`);
      return;
    }
    this.user = reply.user;
    this.roles = reply.roles || [];
    this.setPhase('accepted');
    try {
      await conn.request({ type: 'subscribe', channels: PRIVATE_CHANNELS });
      await this.refetch(conn);
    } catch {
      // connection lost midway: the next session does it all again
    }
  }

  refused(message) {
    this.forget(`token refused: ${message}`);
    this.phase = 'refused';
    this.renderPhase();
  }

  async refetch(conn) {
    const [o, p, f] = await Promise.all([
      conn.request({ type: 'get_orders' }),
      conn.request({ type: 'get_positions' }),
      conn.request({ type: 'get_portfolio' }),
    ]);
    this.onSnapshot('orders', o);
    this.onSnapshot('positions', p);
    this.onSnapshot('portfolio', f);
  }

  /** A `get_*` reply or an `/api/*` body: replaces that part of the state. */
  onSnapshot(kind, msg) {
    if (!msg || msg.type === 'error' || msg.data === undefined) return;
    if (kind === 'orders') {
      this.orders = new Map(msg.data.map((o) => [o.client_order_id, o]));
    } else if (kind === 'positions') {
      this.positions = new Map(msg.data.map((p) => [`${p.market}:${p.symbol}`, p]));
    } else if (kind === 'portfolio') {
      this.portfolio = msg.data.summary;
      this.balances = msg.data.balances || [];
    }
    this.dirty = true;
  }

  /** While polling: an `/api/*` answer with the token. */
  onPolled(kind, res) {
    if (!this.authOn || !this.token) return;
    if (res.status === 401) {
      this.refused((res.body && res.body.error) || 'unauthorized');
      return;
    }
    if (!res.ok) return;
    if (this.phase !== 'accepted') {
      this.user = this.user || '(checked over HTTP)';
      this.setPhase('accepted');
    }
    this.onSnapshot(kind, res.body);
  }

  /** A private channel update. */
  onUpdate(msg, conn) {
    if (!this.accepted || !PRIVATE_CHANNELS.includes(msg.channel)) return;
    const r = this.seq.check(msg.channel, msg.seq);
    if (r === Seq.OLD) return;
    if (r === Seq.GAP && conn) this.refetch(conn).catch(() => {});
    const d = msg.data || {};
    switch (d.event) {
      case 'order':
        if (LIVE_STATUSES.has(d.status)) this.orders.set(d.client_order_id, d);
        else this.orders.delete(d.client_order_id);
        break;
      case 'advanced':
        this.advanced.set(d.advanced_id, { ...this.advanced.get(d.advanced_id), ...d });
        break;
      case 'trailing': {
        const a = this.advanced.get(d.advanced_id) || { advanced_id: d.advanced_id, kind: 'trailing_stop', market: d.market, symbol: d.symbol };
        this.advanced.set(d.advanced_id, { ...a, peak: d.peak, stop: d.stop });
        break;
      }
      case 'position':
        this.positions.set(`${d.market}:${d.symbol}`, d);
        break;
      case 'portfolio':
        this.portfolio = d;
        break;
      case 'balance':
        this.balances = [...this.balances.filter((b) => b.asset !== d.asset), d];
        break;
      case 'risk_alert':
        notify(`risk alert: ${d.alert_type}`, d.message, d.severity === 'critical' ? 'critical' : 'warning', 12000);
        break;
      case 'command_failed':
        notify('order failed', `${d.client_order_id}: ${d.reason}`, 'critical');
        break;
      case 'venue_error':
        notify(`venue refused ${d.method}`, `${d.client_order_id || ''} ${d.error}: ${d.message}`, 'critical');
        break;
      default:
    }
    this.dirty = true;
  }

  async submit() {
    const built = buildRequest(this.kind, readForm(document), this.hooks.instrument());
    if (built.error) {
      this.feedback(false, built.error);
      return;
    }
    await this.send(built.req, built.req.type.replace('_', ' '));
  }

  /** Sends an order-entry request and shows what came of it. */
  async send(req, what) {
    const conn = this.hooks.conn();
    if (!conn.connected) {
      this.feedback(false, 'not connected: orders need the WebSocket (the page is polling)');
      return;
    }
    this.feedback(null, `${what}: sent…`);
    try {
      const reply = await conn.request(req);
      const r = describeReply(reply);
      this.feedback(r.ok, r.text, r.code);
    } catch (e) {
      this.feedback(false, `${what}: ${e.message}`);
    }
  }

  feedback(ok, text, code = null) {
    const f = $('t-feedback');
    f.dataset.state = ok === null ? 'pending' : ok ? 'ok' : 'error';
    f.dataset.code = code === null ? '' : String(code);
    setText(f, text);
  }

  render() {
    if (!this.dirty) return;
    this.dirty = false;
    this.renderPhase();
    if (!this.accepted) {
      for (const id of ['positions', 'orders', 'advanced', 'portfolio']) $(id).replaceChildren();
      return;
    }
    const p = this.portfolio;
    const cell = (label, value, cls) => el('div', {}, el('span', { text: label }), el('b', { class: cls, text: value ?? '–' }));
    const signed = (v) => (typeof v === 'string' && v.startsWith('-') ? 'down' : 'up');
    $('portfolio').replaceChildren(
      ...(p
        ? [
            cell('total pnl', p.total_pnl, signed(p.total_pnl)),
            cell('realized', p.realized_pnl, signed(p.realized_pnl)),
            cell('unrealized', p.unrealized_pnl, signed(p.unrealized_pnl)),
            cell('open positions', String(p.open_positions)),
            cell('drawdown', p.drawdown),
            cell('equity peak', p.equity_peak),
          ]
        : []),
      ...this.balances.map((b) => cell(`${b.asset} free`, b.free)),
    );
    syncRows(
      $('positions'),
      [...this.positions.values()].map((x) => ({
        key: `${x.market}:${x.symbol}`,
        data: { instrument: `${x.market}:${x.symbol}`, qty: x.qty, side: x.side },
        cells: [
          [`${x.market}:${x.symbol}`],
          [x.side, x.side === 'short' ? 'sell' : x.side === 'long' ? 'buy' : ''],
          [x.qty],
          [x.avg_entry_price ?? '–'],
          [x.mark ?? '–'],
          [x.unrealized_pnl, signed(x.unrealized_pnl)],
          [x.realized_pnl, signed(x.realized_pnl)],
          [x.fees],
        ],
      })),
    );
    const cancel = (label, req) => () => el('button', { type: 'button', class: 'small danger', 'data-cancel': label, text: 'cancel', onclick: () => this.send(req, `cancel ${label}`) });
    syncRows(
      $('orders'),
      [...this.orders.values()].map((o) => ({
        key: o.client_order_id,
        data: { order: o.client_order_id, status: o.status },
        cells: [
          [o.client_order_id],
          [`${o.market}:${o.symbol}`],
          [o.side, o.side],
          [o.order_type],
          [o.price ?? '–'],
          [o.stop_price ?? '–'],
          [o.qty],
          [o.filled],
          [o.status],
        ],
        action: cancel(o.client_order_id, { type: 'cancel_order', client_order_id: o.client_order_id }),
      })),
      true,
    );
    syncRows(
      $('advanced'),
      [...this.advanced.values()].map((a) => ({
        key: a.advanced_id,
        data: { advanced: a.advanced_id, state: a.state || '' },
        cells: [
          [a.advanced_id],
          [a.kind],
          [`${a.market}:${a.symbol}`],
          [a.side ?? '–', a.side],
          [a.qty ?? '–'],
          [a.state ?? '–'],
          [a.stop ? `peak ${a.peak} · stop ${a.stop}` : a.reason || ''],
        ],
        action: OPEN_ADVANCED.has(a.state) ? cancel(a.advanced_id, { type: 'cancel_order', advanced_id: a.advanced_id }) : null,
      })),
      true,
    );
  }
}

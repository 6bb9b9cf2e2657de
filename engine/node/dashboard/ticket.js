// The order ticket: market/limit orders with an optional bracket (take-profit and stop-loss),
// OCOs and trailing stops (docs/protocol.md, "Order entry"). `buildRequest` turns the form's
// values into one protocol request, or says what is wrong before anything is sent; the
// server still decides (4020 account, 4021 risk), and `describeReply` words its answer.

import { checkPositive } from './decimal.js';

/** Protocol errors an order can get, in words a trader reads. */
const CODES = {
  4001: 'not signed in',
  4002: 'this user may not trade (role trader needed)',
  4004: 'invalid request',
  4005: 'unknown instrument',
  4007: 'rate limited: too many requests',
  4020: 'refused by the account',
  4021: 'refused by a risk limit',
  4030: 'tape cannot journal right now (full disk): no order is taken',
};

/**
 * The request for the ticket's `kind` ('order', 'oco', 'trailing') and form values `v`, on
 * instrument `inst` ({ market, symbol, price_scale, qty_scale }): `{ req }` or `{ error }`.
 */
export function buildRequest(kind, v, inst) {
  if (!inst) return { error: 'pick an instrument first' };
  const ps = inst.price_scale;
  const qs = inst.qty_scale;
  const symbol = `${inst.market}:${inst.symbol}`;
  const side = v.side === 'sell' ? 'sell' : 'buy';
  const qtyErr = checkPositive(v.qty, qs, 'quantity');
  if (qtyErr) return { error: qtyErr };
  const price = (s, what) => checkPositive(s, ps, what);
  if (kind === 'order') {
    const req = { type: 'place_order', symbol, side, order_type: v.type === 'limit' ? 'limit' : 'market', qty: v.qty };
    if (req.order_type === 'limit') {
      const e = price(v.price, 'price');
      if (e) return { error: e };
      req.price = v.price;
    }
    if (v.tif) req.time_in_force = v.tif;
    if (v.tp !== '' || v.sl !== '') {
      if (v.tp === '' || v.sl === '') return { error: 'a bracket needs both take-profit and stop-loss' };
      const e = price(v.tp, 'take-profit') || price(v.sl, 'stop-loss');
      if (e) return { error: e };
      req.take_profit = v.tp;
      req.stop_loss = v.sl;
    }
    if (v.reduce) req.reduce_only = true;
    return { req };
  }
  if (kind === 'oco') {
    const e = price(v.ocoPrice, 'limit leg price') || price(v.ocoTrigger, 'trigger price');
    if (e) return { error: e };
    const trigger = { trigger: v.ocoTrigger, when: v.ocoWhen === 'above' ? 'above' : 'below' };
    if (v.ocoTriggerPrice !== '') {
      const e2 = price(v.ocoTriggerPrice, 'trigger limit price');
      if (e2) return { error: e2 };
      trigger.price = v.ocoTriggerPrice;
    }
    return { req: { type: 'place_oco', symbol, side, qty: v.qty, legs: [{ price: v.ocoPrice }, trigger] } };
  }
  if (kind === 'trailing') {
    const req = { type: 'place_trailing', symbol, side, qty: v.qty };
    if (v.trailUnit === 'bps') {
      if (!/^\d+$/.test(v.trailOffset) || Number(v.trailOffset) < 1 || Number(v.trailOffset) > 9999) {
        return { error: 'offset in basis points is a whole number from 1 to 9999' };
      }
      req.offset_bps = Number(v.trailOffset);
    } else {
      const e = price(v.trailOffset, 'offset');
      if (e) return { error: e };
      req.offset = v.trailOffset;
    }
    return { req };
  }
  return { error: `unknown ticket kind ${kind}` };
}

/** `{ ok, text, code }` for the server's reply to an order request. */
export function describeReply(reply) {
  if (reply.type === 'ack') {
    const ids = [reply.client_order_id && `order ${reply.client_order_id}`, reply.advanced_id && `${reply.advanced_id}`]
      .filter(Boolean)
      .join(', ');
    const what = reply.request === 'cancel_all' ? `cancel sent to ${reply.canceled} order(s)` : `${reply.request.replace('_', ' ')} accepted`;
    return { ok: true, code: null, text: `${what}${ids ? `: ${ids}` : ''}${reply.dry_run ? ' (dry run: not sent to the venue)' : ''}` };
  }
  if (reply.type === 'error') {
    const name = CODES[reply.code] || 'refused';
    return { ok: false, code: reply.code, text: `${reply.code} ${name}: ${reply.message}` };
  }
  return { ok: false, code: null, text: `unexpected reply ${reply.type}` };
}

/** The form's current values. */
export function readForm(doc) {
  const val = (id) => doc.getElementById(id).value.trim();
  return {
    side: doc.getElementById('t-side-sell').checked ? 'sell' : 'buy',
    qty: val('t-qty'),
    type: val('t-type'),
    price: val('t-price'),
    tif: val('t-tif'),
    tp: val('t-tp'),
    sl: val('t-sl'),
    reduce: doc.getElementById('t-reduce').checked,
    ocoPrice: val('t-oco-price'),
    ocoWhen: val('t-oco-when'),
    ocoTrigger: val('t-oco-trigger'),
    ocoTriggerPrice: val('t-oco-trigger-price'),
    trailOffset: val('t-trail-offset'),
    trailUnit: val('t-trail-unit'),
  };
}

// Unit tests of the page's pure modules: `node --test test/*.test.js` in engine/node/dashboard
// (node's own runner; no npm package). The browser test (.ci/dashboard_test.py) covers the
// page as a whole.

import test from 'node:test';
import assert from 'node:assert/strict';

import { toUnits, fromUnits, cmp, sub, add, isZero, isNegative, checkPositive } from '../decimal.js';
import { Book } from '../book.js';
import { SeqTracker, Seq } from '../streams.js';
import { buildRequest, describeReply } from '../ticket.js';
import { backoff, INITIAL_BACKOFF_MS, MAX_BACKOFF_MS } from '../conn.js';

test('decimals stay exact through units and back', () => {
  assert.equal(toUnits('61800.20', 2), 6180020n);
  assert.equal(toUnits('61800.2', 2), 6180020n);
  assert.equal(toUnits('0.001', 2), null, 'more digits than the scale');
  assert.equal(toUnits('1e5', 2), null);
  assert.equal(toUnits('', 2), null);
  assert.equal(fromUnits(6180020n, 2), '61800.20');
  assert.equal(fromUnits(5n, 3), '0.005');
  assert.equal(fromUnits(-5n, 3), '-0.005');
  assert.equal(fromUnits(7n, 0), '7');
  // Beyond 2^53: a float would round these.
  assert.equal(add('90071992547409.93', '0.01'), '90071992547409.94');
  assert.equal(sub('61800.30', '61800.20'), '0.10');
  assert.equal(sub('1', '0.001'), '0.999');
  assert.equal(cmp('61800.3', '61800.29'), 1);
  assert.equal(cmp('0.010', '0.01'), 0);
  assert.equal(cmp('9.9', '10'), -1);
  assert.ok(isZero('0.000') && isZero('0') && isZero('-0.0') && !isZero('0.001'));
  assert.ok(isNegative('-0.01') && !isNegative('-0.00') && !isNegative('1'));
  assert.equal(checkPositive('0.010', 3, 'qty'), null);
  assert.match(checkPositive('0.0101', 3, 'qty'), /more than 3 decimal places/);
  assert.match(checkPositive('0', 3, 'qty'), /more than 0/);
  assert.match(checkPositive('-1', 3, 'qty'), /decimal number/);
  assert.match(checkPositive('', 3, 'qty'), /required/);
});

test('the fast comparison agrees with exact arithmetic', () => {
  let seed = 7;
  const rnd = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const dec = () => {
    const scale = rnd(3);
    const int = String([0, 1, 9, 10, 99, 61800, 123456][rnd(7)] + rnd(3));
    const frac = scale ? `.${String(rnd(10 ** scale)).padStart(scale, '0')}` : '';
    return (rnd(5) === 0 ? '-' : '') + int + frac;
  };
  for (let i = 0; i < 5000; i++) {
    const a = dec();
    const b = dec();
    const x = toUnits(a, 3);
    const y = toUnits(b, 3);
    assert.equal(cmp(a, b), x < y ? -1 : x > y ? 1 : 0, `${a} vs ${b}`);
  }
});

const snap = (bids, asks, update_id = 100) => ({ update_id, bids, asks });

test('the book applies updates in order and sorts both sides best first', () => {
  const b = new Book(3);
  b.snapshot(snap([['10.0', '1'], ['9.9', '2']], [['10.1', '3'], ['10.2', '4']]));
  b.apply({ update_id: 101, bids: [['10.0', '0'], ['9.95', '5']], asks: [['10.1', '1.5']] }, 0);
  assert.deepEqual(b.levels().bids, [['9.95', '5'], ['9.9', '2']]);
  assert.deepEqual(b.levels().asks, [['10.1', '1.5'], ['10.2', '4']]);
  assert.deepEqual(b.best(), { bid: ['9.95', '5'], ask: ['10.1', '1.5'] });
  assert.equal(b.updateId, 101);
  assert.equal(b.highlight('b', '9.95', 10), 'up');
  assert.equal(b.highlight('a', '10.1', 10), 'down');
  assert.equal(b.highlight('a', '10.1', 10_000), null, 'highlights expire');
  assert.equal(b.needsSnapshot(), false, 'sides shorter than the depth are exact');
});

test('a full side is exact only to its worst level; emptied, it needs a snapshot', () => {
  const b = new Book(2);
  b.snapshot(snap([['10', '1'], ['9', '1']], [['11', '1'], ['12', '1']]));
  // 8 and 13 lie beyond the range the snapshot covered: ignored.
  b.apply({ update_id: 101, bids: [['8', '7']], asks: [['13', '7']] });
  assert.deepEqual(b.levels().bids, [['10', '1'], ['9', '1']]);
  assert.deepEqual(b.levels().asks, [['11', '1'], ['12', '1']]);
  assert.ok(b.thin(3), 'fewer levels known than a ladder of 3 shows');
  b.apply({ update_id: 102, bids: [], asks: [['11', '0'], ['12', '0']] });
  assert.equal(b.needsSnapshot(), true);
});

test('seq: first sets the baseline, +1 is next, a jump is a gap, older is old', () => {
  const s = new SeqTracker();
  assert.equal(s.check('k', 5), Seq.FIRST);
  assert.equal(s.check('k', 6), Seq.NEXT);
  assert.equal(s.check('k', 6), Seq.OLD);
  assert.equal(s.check('k', 9), Seq.GAP);
  assert.equal(s.gaps, 1);
  s.base('k', 20);
  assert.equal(s.check('k', 20), Seq.OLD, 'queued before the snapshot');
  assert.equal(s.check('k', 21), Seq.NEXT);
  s.reset('k');
  assert.equal(s.has('k'), false);
});

const inst = { market: 'usdm', symbol: 'BTCUSDT', price_scale: 2, qty_scale: 3 };
const form = (over) => ({
  side: 'buy', qty: '0.010', type: 'market', price: '', tif: '', tp: '', sl: '', reduce: false,
  ocoPrice: '', ocoWhen: 'below', ocoTrigger: '', ocoTriggerPrice: '', trailOffset: '', trailUnit: 'price',
  ...over,
});

test('the ticket builds the documented requests', () => {
  assert.deepEqual(buildRequest('order', form({ tp: '61805.00', sl: '61795.00' }), inst).req, {
    type: 'place_order', symbol: 'usdm:BTCUSDT', side: 'buy', order_type: 'market', qty: '0.010',
    take_profit: '61805.00', stop_loss: '61795.00',
  });
  assert.deepEqual(buildRequest('order', form({ type: 'limit', price: '61800.00', tif: 'gtc', side: 'sell', reduce: true }), inst).req, {
    type: 'place_order', symbol: 'usdm:BTCUSDT', side: 'sell', order_type: 'limit', qty: '0.010',
    price: '61800.00', time_in_force: 'gtc', reduce_only: true,
  });
  assert.deepEqual(buildRequest('oco', form({ side: 'sell', ocoPrice: '61810.00', ocoTrigger: '61790.00' }), inst).req, {
    type: 'place_oco', symbol: 'usdm:BTCUSDT', side: 'sell', qty: '0.010',
    legs: [{ price: '61810.00' }, { trigger: '61790.00', when: 'below' }],
  });
  assert.deepEqual(buildRequest('trailing', form({ trailOffset: '10.00' }), inst).req, {
    type: 'place_trailing', symbol: 'usdm:BTCUSDT', side: 'buy', qty: '0.010', offset: '10.00',
  });
  assert.equal(buildRequest('trailing', form({ trailOffset: '25', trailUnit: 'bps' }), inst).req.offset_bps, 25);
});

test('the ticket refuses what the server would, before sending', () => {
  assert.match(buildRequest('order', form({ tp: '61805.00' }), inst).error, /both take-profit and stop-loss/);
  assert.match(buildRequest('order', form({ qty: '0.0001' }), inst).error, /quantity has more than 3/);
  assert.match(buildRequest('order', form({ type: 'limit' }), inst).error, /price is required/);
  assert.match(buildRequest('trailing', form({ trailOffset: '0', trailUnit: 'bps' }), inst).error, /1 to 9999/);
  assert.match(buildRequest('order', form({}), null).error, /instrument/);
});

test('replies and error codes are worded for a person', () => {
  assert.deepEqual(describeReply({ type: 'ack', request: 'place_order', client_order_id: 'tp-o1', advanced_id: 'adv-1' }), {
    ok: true, code: null, text: 'place order accepted: order tp-o1, adv-1',
  });
  const risk = describeReply({ type: 'error', code: 4021, message: 'risk reject (order_qty): order qty 5.000 above limit 1' });
  assert.equal(risk.ok, false);
  assert.equal(risk.code, 4021);
  assert.match(risk.text, /^4021 refused by a risk limit: risk reject \(order_qty\)/);
  assert.match(describeReply({ type: 'error', code: 4020, message: 'unknown client order id' }).text, /^4020 refused by the account/);
});

test('backoff doubles with equal jitter up to the cap', () => {
  assert.equal(backoff(1, () => 0), INITIAL_BACKOFF_MS / 2);
  assert.equal(backoff(1, () => 1), INITIAL_BACKOFF_MS);
  assert.equal(backoff(3, () => 1), INITIAL_BACKOFF_MS * 4);
  assert.equal(backoff(30, () => 1), MAX_BACKOFF_MS);
  assert.equal(backoff(30, () => 0), MAX_BACKOFF_MS / 2);
});

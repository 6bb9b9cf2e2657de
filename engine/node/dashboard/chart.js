// Small canvas charts, hand-written: a price line, a histogram and per-stage percentile
// strips on a log axis. Numbers here are JS doubles: they only place pixels; every label that
// shows a price is the server's own string.

const COLORS = {
  grid: '#223040',
  text: '#7d8b99',
  line: '#4ea1ff',
  fill: 'rgba(78, 161, 255, 0.12)',
  bid: '#35c28f',
  ask: '#f0616d',
  warn: '#f2b84b',
  bar: '#4ea1ff',
};
const FONT = '11px ui-monospace, "DejaVu Sans Mono", monospace';

/** Sizes the canvas's bitmap to its CSS box at the device pixel ratio; returns the context
 *  (in CSS pixels) and the box. */
export function fit(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = FONT;
  return { ctx, w, h };
}

function message(ctx, w, h, text) {
  ctx.fillStyle = COLORS.text;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(text, w / 2, h / 2);
}

/**
 * Recent trades as a step line. `points`: [{ t: ms, p: number, label: price string, side }].
 */
export function priceChart(canvas, points, empty = 'no trades yet') {
  const { ctx, w, h } = fit(canvas);
  if (points.length < 2) {
    message(ctx, w, h, empty);
    return;
  }
  const pad = { l: 8, r: 78, t: 10, b: 18 };
  let lo = points[0];
  let hi = points[0];
  for (const q of points) {
    if (q.p < lo.p) lo = q;
    if (q.p > hi.p) hi = q;
  }
  const t0 = points[0].t;
  const t1 = Math.max(points[points.length - 1].t, t0 + 1);
  const span = hi.p - lo.p || Math.abs(hi.p) * 1e-6 || 1;
  const x = (t) => pad.l + ((t - t0) / (t1 - t0)) * (w - pad.l - pad.r);
  const y = (p) => pad.t + (1 - (p - lo.p) / span) * (h - pad.t - pad.b);
  // Grid: the high and low, labelled with their exact strings.
  ctx.strokeStyle = COLORS.grid;
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (const gy of [y(hi.p), y(lo.p)]) {
    ctx.moveTo(pad.l, Math.round(gy) + 0.5);
    ctx.lineTo(w - pad.r, Math.round(gy) + 0.5);
  }
  ctx.stroke();
  ctx.fillStyle = COLORS.text;
  ctx.textAlign = 'left';
  ctx.textBaseline = 'middle';
  ctx.fillText(hi.label, w - pad.r + 6, y(hi.p));
  ctx.fillText(lo.label, w - pad.r + 6, y(lo.p));
  // The line, as steps: a trade's price holds until the next trade.
  ctx.beginPath();
  ctx.moveTo(x(points[0].t), y(points[0].p));
  for (let i = 1; i < points.length; i++) {
    ctx.lineTo(x(points[i].t), y(points[i - 1].p));
    ctx.lineTo(x(points[i].t), y(points[i].p));
  }
  ctx.strokeStyle = COLORS.line;
  ctx.lineWidth = 1.5;
  ctx.stroke();
  ctx.lineTo(x(points[points.length - 1].t), h - pad.b);
  ctx.lineTo(x(points[0].t), h - pad.b);
  ctx.closePath();
  ctx.fillStyle = COLORS.fill;
  ctx.fill();
  // The last trade: a dot in its side's colour and its price.
  const last = points[points.length - 1];
  ctx.fillStyle = last.side === 'sell' ? COLORS.ask : COLORS.bid;
  ctx.beginPath();
  ctx.arc(x(last.t), y(last.p), 3, 0, Math.PI * 2);
  ctx.fill();
  if (last !== hi && last !== lo) ctx.fillText(last.label, w - pad.r + 6, y(last.p));
  // Time axis: the span covered.
  ctx.fillStyle = COLORS.text;
  ctx.textAlign = 'left';
  ctx.textBaseline = 'bottom';
  ctx.fillText(`${Math.round((t1 - t0) / 1000)} s`, pad.l, h - 2);
  ctx.textAlign = 'right';
  ctx.fillText('now', w - pad.r, h - 2);
}

/** Vertical bars with labels under them. `buckets`: [{ label, count }]. */
export function histogram(canvas, buckets, empty = 'no samples yet') {
  const { ctx, w, h } = fit(canvas);
  const total = buckets.reduce((s, b) => s + b.count, 0);
  if (total === 0) {
    message(ctx, w, h, empty);
    return;
  }
  const pad = { l: 6, r: 6, t: 14, b: 16 };
  const max = Math.max(...buckets.map((b) => b.count));
  const bw = (w - pad.l - pad.r) / buckets.length;
  ctx.textAlign = 'center';
  buckets.forEach((b, i) => {
    const bh = (b.count / max) * (h - pad.t - pad.b);
    const bx = pad.l + i * bw;
    ctx.fillStyle = b.warn ? COLORS.warn : COLORS.bar;
    ctx.fillRect(bx + 1, h - pad.b - bh, Math.max(1, bw - 2), bh);
    ctx.fillStyle = COLORS.text;
    ctx.textBaseline = 'bottom';
    if (b.count > 0) ctx.fillText(`${Math.round((100 * b.count) / total)}%`, bx + bw / 2, h - pad.b - bh - 1);
    ctx.textBaseline = 'top';
    if (i % 2 === 0 || bw > 40) ctx.fillText(b.label, bx + bw / 2, h - pad.b + 3);
  });
}

/**
 * One row per stage on a log time axis: a bar from p50 to p99, a tick at p90, dots at p99.9
 * and max. `rows`: [{ name, p50, p90, p99, p999, max }] in ns.
 */
export function percentileStrips(canvas, rows, empty = 'no samples yet') {
  const { ctx, w, h } = fit(canvas);
  const live = rows.filter((r) => r.count > 0);
  if (live.length === 0) {
    message(ctx, w, h, empty);
    return;
  }
  const pad = { l: 92, r: 10, t: 6, b: 18 };
  const lo = 10; // ns
  const hiNs = Math.max(1e4, ...live.map((r) => r.max));
  const decades = Math.ceil(Math.log10(hiNs / lo));
  const x = (ns) => pad.l + (Math.log10(Math.max(ns, lo) / lo) / decades) * (w - pad.l - pad.r);
  const rowH = (h - pad.t - pad.b) / rows.length;
  // Decade grid: 10 ns, 100 ns, 1 µs, ...
  ctx.strokeStyle = COLORS.grid;
  ctx.fillStyle = COLORS.text;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  ctx.beginPath();
  for (let d = 0; d <= decades; d++) {
    const ns = lo * 10 ** d;
    const gx = Math.round(x(ns)) + 0.5;
    ctx.moveTo(gx, pad.t);
    ctx.lineTo(gx, h - pad.b);
    const label = ns < 1e3 ? `${ns}ns` : ns < 1e6 ? `${ns / 1e3}µs` : ns < 1e9 ? `${ns / 1e6}ms` : `${ns / 1e9}s`;
    ctx.fillText(label, gx, h - pad.b + 3);
  }
  ctx.stroke();
  rows.forEach((r, i) => {
    const cy = pad.t + rowH * (i + 0.5);
    ctx.fillStyle = COLORS.text;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    ctx.fillText(r.name, pad.l - 8, cy);
    if (!r.count) {
      ctx.textAlign = 'left';
      ctx.fillText('no samples', pad.l + 6, cy);
      return;
    }
    const bh = Math.min(10, rowH * 0.5);
    ctx.fillStyle = COLORS.bar;
    ctx.fillRect(x(r.p50), cy - bh / 2, Math.max(2, x(r.p99) - x(r.p50)), bh);
    ctx.fillStyle = '#d7e0ea';
    ctx.fillRect(x(r.p90) - 1, cy - bh / 2 - 2, 2, bh + 4);
    for (const [v, c] of [[r.p999, COLORS.warn], [r.max, COLORS.ask]]) {
      ctx.fillStyle = c;
      ctx.beginPath();
      ctx.arc(x(v), cy, 2.5, 0, Math.PI * 2);
      ctx.fill();
    }
  });
}

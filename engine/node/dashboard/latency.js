// Latency, as charts: tape's per-stage percentiles from `/status` (decode, apply, journal,
// fan-out, tick-to-wire), the page's own tick-to-browser histogram (a message's arrival
// minus its `recv_ns`: tape and the browser on one host share a clock), and the "behind by"
// figure (paint time minus the `recv_ns` of the newest message painted), which says whether
// the page keeps up with the feed.

import { $, setText, duration } from './dom.js';
import { histogram, percentileStrips } from './chart.js';

/** Stages of `/status`'s `latency_ns`, in pipeline order, with their labels. */
export const STAGES = [
  ['decode', 'decode'],
  ['apply', 'apply'],
  ['journal', 'journal'],
  ['fanout', 'fan-out'],
  ['tick_to_wire', 'tick-to-wire'],
];

/** Upper bounds (ms) of the tick-to-browser histogram's buckets; the last is open. */
export const BUCKETS_MS = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 500];

/** Samples kept for percentiles. */
const KEEP = 5000;
/** Window of the "behind by" figure, ms. */
const BEHIND_WINDOW_MS = 5000;

/** The p-th percentile (0..100) of `xs` (sorted in place). */
export function percentile(xs, p) {
  if (xs.length === 0) return NaN;
  xs.sort((a, b) => a - b);
  const i = Math.min(xs.length - 1, Math.max(0, Math.ceil((p / 100) * xs.length) - 1));
  return xs[i];
}

/** A ring of the last `n` numbers. */
class Ring {
  constructor(n) {
    this.n = n;
    this.xs = [];
    this.next = 0;
  }
  push(x) {
    if (this.xs.length < this.n) this.xs.push(x);
    else this.xs[this.next] = x;
    this.next = (this.next + 1) % this.n;
  }
  values() {
    return this.xs.slice();
  }
  clear() {
    this.xs = [];
    this.next = 0;
  }
}

export class LatencyView {
  constructor() {
    this.t2b = new Ring(KEEP);
    this.buckets = new Array(BUCKETS_MS.length + 1).fill(0);
    this.behind = []; // [paint time ms, behind ms], the last BEHIND_WINDOW_MS
    this.stages = null;
    this.dirtyStages = false;
    this.lastPaint = 0;
  }

  /** One market message's tick-to-browser latency, ms. */
  sample(ms) {
    const v = Math.max(0, ms);
    this.t2b.push(v);
    let i = BUCKETS_MS.findIndex((b) => v < b);
    if (i < 0) i = BUCKETS_MS.length;
    this.buckets[i] += 1;
  }

  /** One frame's "behind by", ms, painted at `at` (performance.now()). */
  behindSample(at, ms) {
    this.behind.push([at, Math.max(0, ms)]);
  }

  /** `/status`'s `latency_ns`. */
  onStatus(latencyNs) {
    this.stages = latencyNs;
    this.dirtyStages = true;
  }

  /** `{ p50, p99, max, n }` of the "behind by" samples of the last window. */
  behindStats(now) {
    while (this.behind.length && this.behind[0][0] < now - BEHIND_WINDOW_MS) this.behind.shift();
    const xs = this.behind.map((b) => b[1]);
    return { p50: percentile(xs, 50), p99: percentile(xs, 99), max: xs.length ? Math.max(...xs) : NaN, n: xs.length };
  }

  /** `{ p50, p99, n }` of the last KEEP tick-to-browser samples. */
  t2bStats() {
    const xs = this.t2b.values();
    return { p50: percentile(xs, 50), p99: percentile(xs, 99), n: xs.length };
  }

  /** Paints at most twice a second (figures that change every frame cannot be read). */
  render(now) {
    if (this.dirtyStages && this.stages) {
      this.dirtyStages = false;
      const rows = STAGES.map(([key, name]) => {
        const s = this.stages[key] || {};
        return { name, count: s.count || 0, p50: s.p50_ns, p90: s.p90_ns, p99: s.p99_ns, p999: s.p999_ns, max: s.max_ns };
      });
      percentileStrips($('latency-stages'), rows);
      $('latency-stages').dataset.stages = String(rows.filter((r) => r.count > 0).length);
    }
    if (now - this.lastPaint < 500) return;
    this.lastPaint = now;
    const b = this.behindStats(now);
    const el = $('behind');
    setText(el, b.n ? duration(b.p50) : '–');
    el.dataset.ms = b.n ? b.p50.toFixed(3) : '';
    el.dataset.p99 = b.n ? b.p99.toFixed(3) : '';
    el.dataset.max = b.n ? b.max.toFixed(3) : '';
    el.title = b.n ? `last 5 s: median ${duration(b.p50)}, p99 ${duration(b.p99)}, max ${duration(b.max)} over ${b.n} frames` : 'no data painted in the last 5 s';
    const t = this.t2bStats();
    setText($('t2b-summary'), t.n ? `p50 ${duration(t.p50)} · p99 ${duration(t.p99)} · ${t.n} messages` : '–');
    const labels = BUCKETS_MS.map((ms) => `<${ms < 1 ? `${ms * 1000}µ` : ms}`);
    labels.push(`≥${BUCKETS_MS[BUCKETS_MS.length - 1]}`);
    histogram(
      $('latency-browser'),
      this.buckets.map((count, i) => ({ label: labels[i], count, warn: i >= BUCKETS_MS.indexOf(50) })),
    );
  }
}

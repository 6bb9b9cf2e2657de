// Continuity of the streams the page follows. Every channel message carries `seq`, +1 per
// message published on its stream (docs/protocol.md, "Continuity"); a snapshot or an initial
// state carries the stream's current seq without advancing it. A jump means messages were
// missed: for `book` the page needs a fresh snapshot, for `trades` they are gone (counted),
// for `bbo`/`ticker` the server conflated them (only the latest state matters), for the
// private channels the page refetches with `get_*`.

/** What a message's seq means for its stream. */
export const Seq = Object.freeze({
  /** The first message since the stream was (re)subscribed: it sets the baseline. */
  FIRST: 'first',
  /** The next one: previous + 1. */
  NEXT: 'next',
  /** Later than the next one: messages in between were missed. */
  GAP: 'gap',
  /** Not newer than one already seen (a duplicate, or queued before a fresh snapshot). */
  OLD: 'old',
});

export class SeqTracker {
  constructor() {
    this.last = new Map();
    this.gaps = 0;
  }

  /** Forgets every stream, or the streams whose key starts with `prefix`. */
  reset(prefix) {
    if (prefix === undefined) {
      this.last.clear();
      return;
    }
    for (const k of [...this.last.keys()]) if (k.startsWith(prefix)) this.last.delete(k);
  }

  /** A snapshot (or an initial state) of `key` at `seq`: the next message should be seq + 1. */
  base(key, seq) {
    this.last.set(key, seq);
  }

  /** Classifies a published message of `key` and records its seq if it is not old. */
  check(key, seq) {
    const last = this.last.get(key);
    if (last === undefined) {
      this.last.set(key, seq);
      return Seq.FIRST;
    }
    if (seq <= last) return Seq.OLD;
    this.last.set(key, seq);
    if (seq === last + 1) return Seq.NEXT;
    this.gaps += 1;
    return Seq.GAP;
  }

  /** True once `key` has a baseline. */
  has(key) {
    return this.last.has(key);
  }
}

/** The key of a market stream. */
export function streamKey(channel, market, symbol) {
  return `${channel}|${market}|${symbol}`;
}

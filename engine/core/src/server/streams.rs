//! [`Streams`]: the hub's per-stream state, apart from any connection.
//!
//! A stream is a channel of one instrument (or, for `status`, of one venue source). For each
//! it keeps the sequence number, the subscribers, and what late subscribers need as initial
//! state (the last `bbo`/`ticker`, serialized once on first need; the book's diff in
//! progress and its sync episode).
//!
//! Invariants (checked by the tests below):
//! * `seq` counts the messages published on a stream, from 1, one per [`Streams::bump`],
//!   whether or not anyone subscribes: a client that subscribes later sees the same numbers
//!   as one that never left.
//! * A stream's subscribers are sorted by [`ConnId`], each connection at most once, so
//!   fan-out is in connection order and removal is a binary search.
//! * [`Streams::subscriptions`] of a channel is the total length of its subscriber lists.

use tungstenite::Utf8Bytes;

use super::history::{History, HistoryConfig, Lookup};
use super::messages::Change;
use super::{Channel, ConnId, StreamKey};
use crate::input::Nanos;
use crate::instrument::InstrumentId;
use crate::msg::Ticker;
use crate::output::Bbo;

/// One subscriber of a stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subscriber {
    pub conn: ConnId,
    /// The connection's slot in the sessions, so fan-out never searches.
    pub slot: usize,
    /// Snapshot depth (book only).
    pub depth: usize,
}

/// The last value published on the `bbo` stream.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LastBbo {
    Quote {
        bbo: Bbo,
        seq: u64,
        ts: u64,
        recv: Nanos,
    },
    Stale {
        seq: u64,
        reason: &'static str,
        recv: Nanos,
    },
}

/// Where the book stream of an instrument stands, for snapshots sent to one client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BookHead {
    /// Last published `seq` of the book stream.
    pub seq: u64,
    /// Event time of the last applied diff (0 right after a resync).
    pub ts: u64,
    /// Receive time of the input that last changed the book.
    pub recv: Nanos,
    /// The reason of the current out-of-sync episode, if the book is out of sync.
    pub stale: Option<&'static str>,
}

/// The streams of one instrument.
#[derive(Debug, Default)]
struct InstState {
    /// Last published `seq`, by channel.
    seq: [u64; 4],
    /// Subscribers by channel, sorted by connection id.
    subs: [Vec<Subscriber>; 4],
    /// Levels changed by the diff being applied (until its `Applied`).
    changes: Vec<Change>,
    last_event_ms: u64,
    book_recv: Nanos,
    /// Set when a stale `status` went out in this out-of-sync episode.
    stale: Option<&'static str>,
    bbo: Option<LastBbo>,
    /// `bbo` serialized, once needed.
    bbo_msg: Option<Utf8Bytes>,
    ticker: Option<(Ticker, u64, Nanos)>,
    ticker_msg: Option<Utf8Bytes>,
    /// What each channel published since its first subscription, for `resume`.
    hist: [History; 4],
}

/// Every stream: sequence numbers, subscribers, last values.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    /// Per-instrument streams, indexed by instrument id, created on first use.
    insts: Vec<InstState>,
    /// Subscriptions by channel (the sum of the lists' lengths).
    counts: [usize; 4],
    /// Subscribers of the `status` channel (every venue), sorted by connection id.
    status_subs: Vec<Subscriber>,
    /// Per venue source: the last `status` message and its `seq`.
    venues: Vec<Option<(u64, Utf8Bytes)>>,
    /// The node's own `journal` entry of the `status` channel, once it had something to say.
    journal: Option<(u64, Utf8Bytes)>,
    /// The node's `log` entry (an edge's replicated log), once it had something to say.
    log: Option<(u64, Utf8Bytes)>,
    /// Messages published to at least one subscriber.
    published: u64,
    /// History budgets per channel.
    history: HistoryConfig,
}

/// Inserts `s` into a list sorted by connection; false when the connection is already in.
fn insert_sorted(list: &mut Vec<Subscriber>, s: Subscriber) -> bool {
    match list.binary_search_by_key(&s.conn, |x| x.conn) {
        Ok(_) => false,
        Err(pos) => {
            list.insert(pos, s);
            true
        }
    }
}

fn remove_sorted(list: &mut Vec<Subscriber>, conn: ConnId) -> bool {
    match list.binary_search_by_key(&conn, |x| x.conn) {
        Ok(pos) => {
            list.remove(pos);
            true
        }
        Err(_) => false,
    }
}

/// Equal 24h statistics, whatever the event time.
fn same_ticker(a: &Ticker, b: &Ticker) -> bool {
    Ticker {
        event_time_ms: 0,
        ..*a
    } == Ticker {
        event_time_ms: 0,
        ..*b
    }
}

impl Streams {
    /// No streams yet; histories bounded by `history`.
    pub(crate) fn new(history: HistoryConfig) -> Self {
        Streams {
            history,
            ..Streams::default()
        }
    }

    fn budget(&self, ch: Channel) -> super::history::HistoryBudget {
        match ch {
            Channel::Trades => self.history.trades,
            Channel::Bbo => self.history.bbo,
            Channel::Ticker => self.history.ticker,
            Channel::Book => self.history.book,
            Channel::Status => super::history::HistoryBudget::new(0, 0),
        }
    }

    /// True when the stream's messages must be serialized: somebody subscribes, or its
    /// history records (it had a subscriber once).
    pub(crate) fn wants(&self, key: StreamKey) -> bool {
        self.is_watched(key)
            || self
                .insts
                .get(key.instrument.0 as usize)
                .is_some_and(|st| st.hist[key.channel.index()].on)
    }

    /// Records the message published with `seq` on a per-instrument stream (`None`: a book
    /// resync marker), if its history records.
    pub(crate) fn record(&mut self, key: StreamKey, seq: u64, msg: Option<&Utf8Bytes>) {
        if key.channel == Channel::Status {
            return;
        }
        let budget = self.budget(key.channel);
        let h = &mut self.inst(key.instrument).hist[key.channel.index()];
        if h.on {
            h.record(budget, seq, msg);
        }
    }

    /// The last published `seq` of a per-instrument stream.
    pub(crate) fn head_seq(&self, key: StreamKey) -> u64 {
        if key.channel == Channel::Status {
            return 0;
        }
        self.insts
            .get(key.instrument.0 as usize)
            .map_or(0, |st| st.seq[key.channel.index()])
    }

    /// What the stream's history can replay after `after` (at most its head).
    pub(crate) fn lookup(&self, key: StreamKey, after: u64) -> Lookup<'_> {
        let head = self.head_seq(key);
        match self.insts.get(key.instrument.0 as usize) {
            Some(st) => st.hist[key.channel.index()].lookup(after, head),
            None if after >= head => Lookup::Replay(Vec::new()),
            None => Lookup::TooOld,
        }
    }

    fn inst(&mut self, id: InstrumentId) -> &mut InstState {
        let i = id.0 as usize;
        if self.insts.len() <= i {
            self.insts.resize_with(i + 1, InstState::default);
        }
        &mut self.insts[i]
    }

    /// Advances the stream's `seq` and returns it (the `seq` of the message being published).
    pub(crate) fn bump(&mut self, key: StreamKey) -> u64 {
        let s = &mut self.inst(key.instrument).seq[key.channel.index()];
        *s += 1;
        *s
    }

    /// The stream's subscribers, in connection order (`status`: every venue's).
    pub(crate) fn subscribers(&self, key: StreamKey) -> &[Subscriber] {
        if key.channel == Channel::Status {
            return &self.status_subs;
        }
        self.insts
            .get(key.instrument.0 as usize)
            .map_or(&[], |st| &st.subs[key.channel.index()])
    }

    /// True when somebody subscribes to the stream (else nothing needs serializing).
    pub(crate) fn is_watched(&self, key: StreamKey) -> bool {
        !self.subscribers(key).is_empty()
    }

    /// Counts one message published (serialized and fanned out).
    pub(crate) fn count_published(&mut self) {
        self.published += 1;
    }

    /// Messages published so far.
    pub(crate) fn published(&self) -> u64 {
        self.published
    }

    /// Subscriptions to `ch` across instruments.
    pub(crate) fn subscriptions(&self, ch: Channel) -> usize {
        self.counts[ch.index()]
    }

    /// Adds a subscriber to a per-instrument stream; false if it already subscribes.
    pub(crate) fn subscribe(&mut self, key: StreamKey, s: Subscriber) -> bool {
        debug_assert!(
            key.channel != Channel::Status,
            "status uses subscribe_status"
        );
        let b = self.budget(key.channel);
        let st = self.inst(key.instrument);
        // From its first subscriber on, the stream keeps a history (see `history.rs`).
        st.hist[key.channel.index()].start(b);
        let added = insert_sorted(&mut st.subs[key.channel.index()], s);
        self.counts[key.channel.index()] += usize::from(added);
        added
    }

    /// Changes the snapshot depth of a book subscriber.
    pub(crate) fn set_depth(&mut self, key: StreamKey, conn: ConnId, depth: usize) {
        let list = &mut self.inst(key.instrument).subs[key.channel.index()];
        if let Ok(pos) = list.binary_search_by_key(&conn, |s| s.conn) {
            list[pos].depth = depth;
        }
    }

    /// Removes `conn` from the stream's subscribers (`status`: from every venue's).
    pub(crate) fn unsubscribe(&mut self, key: StreamKey, conn: ConnId) {
        if key.channel == Channel::Status {
            remove_sorted(&mut self.status_subs, conn);
            return;
        }
        if remove_sorted(
            &mut self.inst(key.instrument).subs[key.channel.index()],
            conn,
        ) {
            self.counts[key.channel.index()] -= 1;
        }
    }

    /// Subscribes `conn` to every venue's `status` stream, now and later; false if it
    /// already does.
    pub(crate) fn subscribe_status(&mut self, conn: ConnId, slot: usize) -> bool {
        let s = Subscriber {
            conn,
            slot,
            depth: 0,
        };
        insert_sorted(&mut self.status_subs, s)
    }

    /// Records a venue's new status message (built by `render` from its `seq`) and returns
    /// the key of its `status` stream.
    pub(crate) fn publish_venue(
        &mut self,
        src: usize,
        render: impl FnOnce(u64) -> Utf8Bytes,
    ) -> (StreamKey, Utf8Bytes) {
        if self.venues.len() <= src {
            self.venues.resize(src + 1, None);
        }
        let seq = self.venues[src].as_ref().map_or(0, |(s, _)| *s) + 1;
        let msg = render(seq);
        self.venues[src] = Some((seq, msg.clone()));
        (status_key(src), msg)
    }

    /// Records the node's new `journal` status message (built by `render` from its `seq`)
    /// and returns the key of its `status` stream.
    pub(crate) fn publish_journal(
        &mut self,
        render: impl FnOnce(u64) -> Utf8Bytes,
    ) -> (StreamKey, Utf8Bytes) {
        let seq = self.journal.as_ref().map_or(0, |(s, _)| *s) + 1;
        let msg = render(seq);
        self.journal = Some((seq, msg.clone()));
        (journal_status_key(), msg)
    }

    /// Records the node's new `log` status message (an edge's replicated log) and returns
    /// the key of its `status` stream.
    pub(crate) fn publish_log(
        &mut self,
        render: impl FnOnce(u64) -> Utf8Bytes,
    ) -> (StreamKey, Utf8Bytes) {
        let seq = self.log.as_ref().map_or(0, |(s, _)| *s) + 1;
        let msg = render(seq);
        self.log = Some((seq, msg.clone()));
        (log_status_key(), msg)
    }

    /// Every instrument whose `channel` stream has subscribers.
    pub(crate) fn watched(&self, channel: Channel) -> Vec<InstrumentId> {
        (0..self.insts.len() as u32)
            .map(InstrumentId)
            .filter(|&i| self.is_watched(StreamKey::new(channel, i)))
            .collect()
    }

    /// The last status of every venue that published one, in source order, then the
    /// node's `journal` and `log` entries if they published one.
    pub(crate) fn venue_statuses(&self) -> impl Iterator<Item = (StreamKey, &Utf8Bytes)> {
        self.venues
            .iter()
            .enumerate()
            .filter_map(|(src, v)| v.as_ref().map(|(_, m)| (status_key(src), m)))
            .chain(
                self.journal
                    .as_ref()
                    .map(|(_, m)| (journal_status_key(), m)),
            )
            .chain(self.log.as_ref().map(|(_, m)| (log_status_key(), m)))
    }

    /// Distinct snapshot depths of the book subscribers of `id`, ascending, into `out`.
    pub(crate) fn book_depths(&self, id: InstrumentId, out: &mut Vec<usize>) {
        out.clear();
        out.extend(
            self.subscribers(StreamKey::new(Channel::Book, id))
                .iter()
                .map(|s| s.depth),
        );
        out.sort_unstable();
        out.dedup();
    }

    /// A level changed in the diff being applied.
    pub(crate) fn book_change(&mut self, id: InstrumentId, change: Change) {
        self.inst(id).changes.push(change);
    }

    /// A diff was applied at `event_ms`: the levels it changed (empty: nothing to publish).
    /// Call [`Streams::clear_changes`] once they are published.
    pub(crate) fn book_applied(
        &mut self,
        id: InstrumentId,
        event_ms: u64,
        recv: Nanos,
    ) -> &[Change] {
        let st = self.inst(id);
        st.last_event_ms = event_ms;
        st.book_recv = recv;
        &st.changes
    }

    /// The levels changed by the diff in progress.
    pub(crate) fn book_changes(&self, id: InstrumentId) -> &[Change] {
        self.insts.get(id.0 as usize).map_or(&[], |st| &st.changes)
    }

    /// Forgets the levels of the diff in progress.
    pub(crate) fn clear_changes(&mut self, id: InstrumentId) {
        self.inst(id).changes.clear();
    }

    /// The book (re)synced: a new episode, no diff in progress.
    pub(crate) fn book_synced(&mut self, id: InstrumentId, recv: Nanos) {
        let st = self.inst(id);
        st.changes.clear();
        st.stale = None;
        st.last_event_ms = 0;
        st.book_recv = recv;
    }

    /// The book went out of sync for `reason`: true only the first time in an episode (the
    /// stale `status` is announced once).
    pub(crate) fn book_stale(&mut self, id: InstrumentId, reason: &'static str) -> bool {
        let st = self.inst(id);
        st.changes.clear();
        if st.stale.is_some() {
            return false;
        }
        st.stale = Some(reason);
        true
    }

    /// Where `id`'s book stream stands.
    pub(crate) fn book_head(&self, id: InstrumentId) -> BookHead {
        match self.insts.get(id.0 as usize) {
            Some(st) => BookHead {
                seq: st.seq[Channel::Book.index()],
                ts: st.last_event_ms,
                recv: st.book_recv,
                stale: st.stale,
            },
            None => BookHead {
                seq: 0,
                ts: 0,
                recv: Nanos(0),
                stale: None,
            },
        }
    }

    /// Event time of the last applied diff of `id`'s book (0 right after a resync).
    pub(crate) fn last_event_ms(&mut self, id: InstrumentId) -> u64 {
        self.inst(id).last_event_ms
    }

    /// Sets the last value of `id`'s bbo stream (its serialized form is dropped).
    pub(crate) fn set_bbo(&mut self, id: InstrumentId, last: LastBbo) {
        let st = self.inst(id);
        st.bbo = Some(last);
        st.bbo_msg = None;
    }

    /// The last message of `id`'s bbo stream, serialized by `render` on first need.
    pub(crate) fn last_bbo(
        &mut self,
        id: InstrumentId,
        render: impl FnOnce(LastBbo) -> Utf8Bytes,
    ) -> Option<Utf8Bytes> {
        let st = self.inst(id);
        if st.bbo_msg.is_none() {
            st.bbo_msg = Some(render(st.bbo?));
        }
        st.bbo_msg.clone()
    }

    /// New 24h statistics for `t.instrument`: its `seq`, or `None` when they equal the last
    /// published ones (whatever the event time), which are then not published again.
    pub(crate) fn set_ticker(&mut self, t: &Ticker, recv: Nanos) -> Option<u64> {
        let key = StreamKey::new(Channel::Ticker, t.instrument);
        let st = self.inst(t.instrument);
        if st
            .ticker
            .as_ref()
            .is_some_and(|(last, ..)| same_ticker(last, t))
        {
            return None;
        }
        let seq = self.bump(key);
        let st = self.inst(t.instrument);
        st.ticker = Some((*t, seq, recv));
        st.ticker_msg = None;
        Some(seq)
    }

    /// The last message of `id`'s ticker stream, serialized by `render` on first need.
    pub(crate) fn last_ticker(
        &mut self,
        id: InstrumentId,
        render: impl FnOnce(&Ticker, u64, Nanos) -> Utf8Bytes,
    ) -> Option<Utf8Bytes> {
        let st = self.inst(id);
        if st.ticker_msg.is_none() {
            let (t, seq, recv) = st.ticker.as_ref()?;
            st.ticker_msg = Some(render(t, *seq, *recv));
        }
        st.ticker_msg.clone()
    }
}

/// The `status` stream of venue source `src`.
pub(super) fn status_key(src: usize) -> StreamKey {
    StreamKey::new(Channel::Status, InstrumentId(src as u32))
}

/// The `status` stream of the node's journal: a slot no venue source can have (sources are
/// numbered from 0 and the top ids are reserved for client and gateway records).
pub(super) fn journal_status_key() -> StreamKey {
    StreamKey::new(Channel::Status, InstrumentId(u32::MAX - 2))
}

/// The `status` stream of an edge's replicated log (next to the journal's slot).
pub(super) fn log_status_key() -> StreamKey {
    StreamKey::new(Channel::Status, InstrumentId(u32::MAX - 3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::{Decimal, Price};

    fn sub(conn: usize) -> Subscriber {
        Subscriber {
            conn: ConnId(conn),
            slot: conn,
            depth: 20,
        }
    }

    fn conns(s: &Streams, key: StreamKey) -> Vec<usize> {
        s.subscribers(key).iter().map(|x| x.conn.0).collect()
    }

    #[test]
    fn seq_counts_from_one_per_stream_whoever_listens() {
        let mut s = Streams::default();
        let a = StreamKey::new(Channel::Trades, InstrumentId(3));
        let b = StreamKey::new(Channel::Book, InstrumentId(3));
        assert_eq!(s.bump(a), 1);
        assert_eq!(s.bump(a), 2);
        assert!(s.subscribe(a, sub(1)));
        assert_eq!(s.bump(a), 3, "a subscriber does not restart the count");
        assert_eq!(s.bump(b), 1, "each channel counts on its own");
        assert_eq!(s.bump(StreamKey::new(Channel::Trades, InstrumentId(0))), 1);
        assert_eq!(s.book_head(InstrumentId(3)).seq, 1);
    }

    #[test]
    fn subscribers_stay_sorted_unique_and_counted() {
        let mut s = Streams::default();
        let key = StreamKey::new(Channel::Bbo, InstrumentId(1));
        for c in [5, 2, 9, 2, 7, 5] {
            s.subscribe(key, sub(c));
        }
        assert_eq!(conns(&s, key), [2, 5, 7, 9]);
        assert_eq!(s.subscriptions(Channel::Bbo), 4);
        s.unsubscribe(key, ConnId(5));
        s.unsubscribe(key, ConnId(5));
        s.unsubscribe(key, ConnId(4));
        assert_eq!(conns(&s, key), [2, 7, 9]);
        assert_eq!(s.subscriptions(Channel::Bbo), 3);
        assert_eq!(s.subscriptions(Channel::Trades), 0);
        // Unknown instruments have no subscribers and are not created by asking.
        assert!(!s.is_watched(StreamKey::new(Channel::Bbo, InstrumentId(40))));
    }

    #[test]
    fn status_subscribers_cover_every_venue() {
        let mut s = Streams::default();
        assert!(s.subscribe_status(ConnId(4), 0));
        assert!(!s.subscribe_status(ConnId(4), 0));
        assert!(s.subscribe_status(ConnId(1), 1));
        assert_eq!(conns(&s, status_key(0)), [1, 4]);
        assert_eq!(conns(&s, status_key(7)), [1, 4]);
        s.unsubscribe(status_key(3), ConnId(4));
        assert_eq!(conns(&s, status_key(0)), [1]);
        assert_eq!(s.subscriptions(Channel::Bbo), 0);
    }

    #[test]
    fn venue_seq_counts_per_source() {
        let mut s = Streams::default();
        let render = |seq: u64| Utf8Bytes::from(seq.to_string());
        assert_eq!(s.publish_venue(2, render).1.as_str(), "1");
        assert_eq!(s.publish_venue(2, render).1.as_str(), "2");
        assert_eq!(s.publish_venue(0, render).1.as_str(), "1");
        let last: Vec<(u32, &str)> = s
            .venue_statuses()
            .map(|(k, m)| (k.instrument.0, m.as_str()))
            .collect();
        assert_eq!(last, [(0, "1"), (2, "2")]);
    }

    #[test]
    fn stale_is_announced_once_per_episode() {
        let mut s = Streams::default();
        let id = InstrumentId(0);
        assert!(s.book_stale(id, "gap"));
        assert!(!s.book_stale(id, "crossed"));
        assert_eq!(s.book_head(id).stale, Some("gap"));
        s.book_synced(id, Nanos(9));
        assert_eq!(s.book_head(id).stale, None);
        assert!(s.book_stale(id, "crossed"));
    }

    #[test]
    fn an_unchanged_ticker_is_not_published_again() {
        let mut s = Streams::default();
        let t = Ticker {
            instrument: InstrumentId(1),
            mini: true,
            event_time_ms: 1,
            last: Price(5),
            open: Price(4),
            high: Price(6),
            low: Price(3),
            price_change: Price(1),
            price_change_pct: None,
            volume: Decimal::default(),
            quote_volume: Decimal::default(),
        };
        assert_eq!(s.set_ticker(&t, Nanos(1)), Some(1));
        let later = Ticker {
            event_time_ms: 2,
            ..t
        };
        assert_eq!(s.set_ticker(&later, Nanos(2)), None);
        let mut rendered = 0;
        for _ in 0..2 {
            let m = s.last_ticker(InstrumentId(1), |t, seq, _| {
                rendered += 1;
                Utf8Bytes::from(format!("{}:{seq}", t.event_time_ms))
            });
            assert_eq!(m.unwrap().as_str(), "1:1");
        }
        assert_eq!(rendered, 1, "serialized once, then shared");
        assert!(s
            .last_ticker(InstrumentId(2), |_, _, _| unreachable!())
            .is_none());
    }
}

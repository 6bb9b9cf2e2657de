//! `resume`: a client cut at a random point (losing a random number of messages in flight)
//! and resuming later sees exactly what a client that never left saw; with small histories
//! it is told `too_old`/`resynced` and ends consistent. Driven through the fixture replay
//! with virtual time, no sockets.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::Value;

use super::tests_util::*;
use super::{ConnId, HistoryBudget, HistoryConfig, HubConfig};
use crate::input::{Nanos, RecordKind};

const ALWAYS: usize = 1;
const CUT: usize = 2;
const BACK: usize = 3;

const CHANNELS: [&str; 4] = ["trades", "bbo", "ticker", "book"];

/// (channel, market, symbol).
type StreamName = (String, String, String);

fn records() -> &'static [Rec] {
    static R: OnceLock<Vec<Rec>> = OnceLock::new();
    R.get_or_init(fixture_records)
}

fn defs() -> usize {
    records()
        .iter()
        .take_while(|r| r.kind == RecordKind::SourceDef)
        .count()
}

/// The stream of a channel message, if it is one.
fn stream_of(m: &Value) -> Option<(StreamName, u64)> {
    let s = |k: &str| m.get(k)?.as_str().map(str::to_owned);
    Some((
        (s("channel")?, s("market")?, s("symbol")?),
        m.get("seq")?.as_u64()?,
    ))
}

/// Channel messages per stream, in arrival order.
fn per_stream(msgs: &[Value]) -> BTreeMap<StreamName, Vec<Value>> {
    let mut out: BTreeMap<StreamName, Vec<Value>> = BTreeMap::new();
    for m in msgs {
        if let Some((k, _)) = stream_of(m) {
            out.entry(k).or_default().push(m.clone());
        }
    }
    out
}

fn config(history: HistoryConfig) -> HubConfig {
    HubConfig {
        outbound_queue: 1 << 20,
        max_queued_replies: 1 << 20,
        heartbeat_interval_ns: 0,
        history,
        ..HubConfig::default()
    }
}

/// What the three clients saw: the one that never left, the cut one (before the cut, minus
/// `lost` messages in flight), the resumed one (the `resumed` reply first).
struct Run {
    always: Vec<Value>,
    cut: Vec<Value>,
    back: Vec<Value>,
}

fn run(n: usize, cut_at: usize, back_at: usize, lost: usize, history: HistoryConfig) -> Run {
    let recs = records();
    let d = defs();
    let mut h = Harness::new(config(history));
    for r in &recs[..d] {
        h.record(r);
    }
    h.now = Nanos(recs[d].now);
    let sub = format!(
        r#"{{"type":"subscribe","channels":["trades","bbo","ticker","book"],"symbols":{ALL_SYMBOLS}}}"#
    );
    for c in [ALWAYS, CUT] {
        h.open(c);
        h.send(c, &sub);
    }
    let (mut always, mut cut, mut back) = (h.drain(ALWAYS), h.drain(CUT), Vec::new());
    for (i, r) in recs[d..d + n].iter().enumerate() {
        if i == cut_at {
            let mut tail = h.drain(CUT);
            tail.truncate(tail.len().saturating_sub(lost));
            cut.extend(tail);
            h.hub.handle_closed(ConnId(CUT));
        }
        if i == back_at {
            let mut last: BTreeMap<StreamName, u64> = BTreeMap::new();
            for m in &cut {
                if let Some((k, seq)) = stream_of(m) {
                    last.insert(k, seq);
                }
            }
            let mut streams = Vec::new();
            for ch in CHANNELS {
                for sym in serde_json::from_str::<Vec<String>>(ALL_SYMBOLS).unwrap() {
                    let (m, s) = sym.split_once(':').unwrap();
                    let key = (ch.to_owned(), m.to_owned(), s.to_owned());
                    let seq = last.get(&key).copied().unwrap_or(0);
                    streams.push(format!(
                        r#"{{"channel":"{ch}","symbol":"{sym}","seq":{seq}}}"#
                    ));
                }
            }
            h.open(BACK);
            h.send(
                BACK,
                &format!(
                    r#"{{"type":"resume","id":9,"streams":[{}]}}"#,
                    streams.join(",")
                ),
            );
            back.extend(h.drain(BACK));
        }
        h.record(r);
        always.extend(h.drain(ALWAYS));
        if i < cut_at {
            cut.extend(h.drain(CUT));
        }
        if i >= back_at {
            back.extend(h.drain(BACK));
        }
    }
    Run { always, cut, back }
}

/// Checks a run: resumed streams exactly, the others consistent from their fresh state on.
/// Returns how many streams were resumed and how many were not.
fn check(r: &Run) -> Result<(usize, usize), TestCaseError> {
    let reply = r
        .back
        .iter()
        .find(|m| m["type"] == "resumed")
        .ok_or_else(|| TestCaseError::fail(format!("no resumed reply: {:?}", r.back.first())))?;
    prop_assert_eq!(&reply["id"], 9);
    let always = per_stream(&r.always);
    let cut = per_stream(&r.cut);
    let back = per_stream(&r.back);
    let none = Vec::new();
    let (mut resumed, mut fresh) = (0, 0);
    for s in reply["streams"].as_array().unwrap() {
        let key: StreamName = (
            s["channel"].as_str().unwrap().to_owned(),
            s["market"].as_str().unwrap().to_owned(),
            s["symbol"].as_str().unwrap().to_owned(),
        );
        let a = always.get(&key).unwrap_or(&none);
        let c = cut.get(&key).unwrap_or(&none);
        let b = back.get(&key).unwrap_or(&none);
        if s["resumed"] == true {
            resumed += 1;
            let joined: Vec<&Value> = c.iter().chain(b).collect();
            let want: Vec<&Value> = a.iter().collect();
            prop_assert!(joined == want, "{key:?}: resumed view differs");
        } else {
            fresh += 1;
            let reason = s["reason"].as_str().unwrap();
            prop_assert!(reason == "too_old" || reason == "resynced", "{}", reason);
            // From the fresh state on, every published message is the uninterrupted one.
            let by_seq: BTreeMap<u64, &Value> = a
                .iter()
                .filter(|m| m["type"] != "snapshot")
                .map(|m| (m["seq"].as_u64().unwrap(), m))
                .collect();
            let mut prev: Option<u64> = None;
            for (k, m) in b.iter().enumerate() {
                let seq = m["seq"].as_u64().unwrap();
                // A book's fresh state is made now (snapshot, or stale status stamped now).
                if k == 0 && key.0 == "book" {
                    prev = Some(seq);
                    continue;
                }
                if let Some(p) = prev {
                    prop_assert_eq!(seq, p + 1, "{:?}: a gap after the fresh state", key);
                }
                prev = Some(seq);
                if m["type"] == "snapshot" {
                    continue;
                }
                prop_assert_eq!(Some(&m), by_seq.get(&seq), "{:?}", key);
            }
        }
    }
    Ok((resumed, fresh))
}

/// Fixture records fed per case: enough for trades, book updates, a ticker and resyncs.
const N: usize = 2500;

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// With histories larger than the run, every stream resumes exactly, however many
    /// messages were in flight when the connection was cut.
    #[test]
    fn a_resumed_client_sees_what_an_uninterrupted_one_saw(
        cut_at in 0..N,
        away in 0..N,
        lost in 0..40usize,
    ) {
        let back_at = (cut_at + away).min(N - 1);
        let r = run(N, cut_at, back_at, lost, HistoryConfig::default());
        let (resumed, _) = check(&r)?;
        // Only a book that (re)synced while the client was away is not replayed.
        prop_assert!(resumed >= 15, "{} streams resumed", resumed);
    }

    /// With small histories, streams that moved too far are `too_old` and get a fresh
    /// subscription's state; the rest still resume exactly.
    #[test]
    fn small_histories_fall_back_to_a_fresh_state(
        cut_at in 0..N,
        away in 0..N,
        lost in 0..40usize,
        messages in 1..64usize,
        bytes in 64..16384usize,
    ) {
        let back_at = (cut_at + away).min(N - 1);
        let b = HistoryBudget::new(messages, bytes);
        let history = HistoryConfig { trades: b, bbo: b, ticker: b, book: b, private: b };
        check(&run(N, cut_at, back_at, lost, history))?;
    }
}

#[test]
fn a_long_absence_with_a_tiny_history_is_too_old() {
    let b = HistoryBudget::new(2, 1 << 20);
    let history = HistoryConfig {
        trades: b,
        bbo: b,
        ticker: b,
        book: b,
        private: b,
    };
    let r = run(N, 100, N - 1, 0, history);
    let (resumed, fresh) = check(&r).unwrap();
    assert!(fresh > 0, "{resumed} resumed, {fresh} fresh");
    let reply = r.back.iter().find(|m| m["type"] == "resumed").unwrap();
    assert!(reply["streams"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["reason"] == "too_old"));
}

#[test]
fn refused_resumes_subscribe_nothing_and_say_why() {
    let recs = records();
    let mut h = Harness::new(HubConfig {
        max_errors: 100,
        ..config(HistoryConfig::default())
    });
    for r in &recs[..defs() + 200] {
        h.record(r);
    }
    h.open(1);
    let cases = [
        (
            r#"{"type":"resume","id":1,"streams":[{"channel":"trades","symbol":"usdm:BTCUSDT","seq":99999999}]}"#,
            4012,
        ),
        (
            r#"{"type":"resume","id":2,"streams":[{"channel":"nope","symbol":"usdm:BTCUSDT","seq":0}]}"#,
            4006,
        ),
        (
            r#"{"type":"resume","id":3,"streams":[{"channel":"trades","symbol":"BTCUSDT","seq":0}]}"#,
            4005,
        ),
        (
            r#"{"type":"resume","id":4,"streams":[{"channel":"trades","symbol":"usdm:NOPE","seq":0}]}"#,
            4005,
        ),
        (
            r#"{"type":"resume","id":5,"streams":[{"channel":"status","seq":0}]}"#,
            4004,
        ),
        (
            r#"{"type":"resume","id":6,"streams":[{"channel":"signal","seq":0}]}"#,
            4004,
        ),
        (
            r#"{"type":"resume","id":7,"streams":[{"channel":"trades","symbol":"usdm:BTCUSDT"}]}"#,
            4004,
        ),
        (
            r#"{"type":"resume","id":8,"streams":[{"channel":"trades","symbol":"usdm:BTCUSDT","seq":-1}]}"#,
            4004,
        ),
        (r#"{"type":"resume","id":9,"streams":[]}"#, 4004),
        (
            r#"{"type":"resume","id":10,"streams":[{"channel":"trades","symbol":"usdm:BTCUSDT","seq":0},{"channel":"trades","symbol":"usdm:BTCUSDT","seq":1}]}"#,
            4004,
        ),
        (
            r#"{"type":"resume","id":11,"streams":[{"channel":"orders","seq":0}]}"#,
            4001,
        ),
    ];
    for (text, code) in cases {
        h.send(1, text);
        let got = h.drain(1);
        assert_eq!(got.len(), 1, "{text}: {got:?}");
        assert_eq!(got[0]["type"], "error", "{text}: {got:?}");
        assert_eq!(got[0]["code"], code, "{text}: {got:?}");
    }
    assert_eq!(h.hub.stats().subscriptions.values().sum::<usize>(), 0);
    // A stream the connection already subscribes is listed, not replayed again.
    h.send(
        1,
        r#"{"type":"subscribe","channels":["trades"],"symbols":["usdm:BTCUSDT"]}"#,
    );
    h.drain(1);
    h.send(1, r#"{"type":"resume","id":12,"streams":[{"channel":"trades","symbol":"usdm:BTCUSDT","seq":0}]}"#);
    let got = h.drain(1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["streams"][0]["resumed"], false);
    assert_eq!(got[0]["streams"][0]["reason"], "subscribed");
}

#[test]
fn seqs_from_another_run_get_a_fresh_state() {
    let recs = records();
    let mut h = Harness::new(HubConfig {
        run_id: 7,
        ..config(HistoryConfig::default())
    });
    for r in &recs[..defs() + 1] {
        h.record(r);
    }
    h.open(1);
    h.send(
        1,
        r#"{"type":"subscribe","id":1,"channels":["trades"],"symbols":["usdm:BTCUSDT"]}"#,
    );
    assert_eq!(h.drain(1)[0]["run"], 7);
    for r in &recs[defs() + 1..defs() + 1500] {
        h.record(r);
    }
    let had = h.drain(1);
    let last = had.last().expect("trades")["seq"].as_u64().unwrap();
    h.hub.handle_closed(ConnId(1));
    // Same run: resumed. Another run (its numbers may even be ahead): fresh, not refused.
    for (conn, run, seq, want) in [(2, 7, last - 1, true), (3, 6, last + 100, false)] {
        h.open(conn);
        h.send(
            conn,
            &format!(
                r#"{{"type":"resume","run":{run},"streams":[{{"channel":"trades","symbol":"usdm:BTCUSDT","seq":{seq}}}]}}"#
            ),
        );
        let got = h.drain(conn);
        assert_eq!(got[0]["run"], 7, "{got:?}");
        let s = &got[0]["streams"][0];
        assert_eq!(s["resumed"], want, "{got:?}");
        if want {
            assert_eq!(got[1], *had.last().unwrap(), "the one message missed");
            let r = h.hub.stats().resumes;
            assert_eq!((r.resumed, r.fresh, r.replayed), (1, 0, 1));
        } else {
            assert_eq!(s["reason"], "restarted");
            assert_eq!(got.len(), 1, "trades have no initial state: {got:?}");
            let r = h.hub.stats().resumes;
            assert_eq!((r.resumed, r.fresh, r.replayed), (1, 1, 1));
        }
    }
}

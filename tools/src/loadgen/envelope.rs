//! What a server message says, read cheaply, and whether its stream is continuous.
//!
//! Messages are not parsed as JSON: [`scan`] finds the envelope fields (`type`, `channel`,
//! `market`, `symbol`, `venue`, `seq`, `recv_ns`) by substring search in the part before
//! `"data":`. The server writes that envelope first and in fixed form, so this is exact for
//! tape's messages, costs O(header) instead of O(message) (a 1000-level book snapshot would
//! otherwise dominate the client's CPU and the loadgen would measure itself), and allocates
//! nothing. It is not a validator: anything without a readable envelope counts as a bad message.
//!
//! Gaps: per (connection, channel, market, symbol, venue) stream, after the first message,
//! an `update` must carry the previous `seq` + 1. A jump is a gap of `seq - prev - 1` missed
//! messages: the server conflated or dropped them for a slow consumer. A `snapshot` or `status`
//! may repeat the current `seq` (initial state) but a jump there is also a gap (a `book`
//! conflated into a fresh snapshot). A `seq` that goes backwards is a regression.

/// Envelope fields of one server message, found by [`scan`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// `type`: `update`, `snapshot`, `status`, `subscribed`, `error`, `pong`, ...
    pub kind: &'a str,
    /// `channel`.
    pub channel: Option<&'a str>,
    /// `market`.
    pub market: Option<&'a str>,
    /// `symbol`.
    pub symbol: Option<&'a str>,
    /// `venue` (status channel).
    pub venue: Option<&'a str>,
    /// `seq`.
    pub seq: Option<u64>,
    /// `recv_ns`.
    pub recv_ns: Option<u64>,
}

impl Envelope<'_> {
    /// A channel message (`update`, `snapshot`, `status`).
    pub fn is_stream(&self) -> bool {
        matches!(self.kind, "update" | "snapshot" | "status")
    }
}

/// The envelope of `msg` by substring search in the part before `"data":` (see the module
/// docs for why); `None` if it is not an object with a string `type`. Never panics.
pub fn scan(msg: &str) -> Option<Envelope<'_>> {
    if !msg.trim_start().starts_with('{') {
        return None;
    }
    let head = msg.find("\"data\":").map_or(msg, |i| &msg[..i]);
    Some(Envelope {
        kind: str_field(head, "\"type\":")?,
        channel: str_field(head, "\"channel\":"),
        market: str_field(head, "\"market\":"),
        symbol: str_field(head, "\"symbol\":"),
        venue: str_field(head, "\"venue\":"),
        seq: num_field(head, "\"seq\":"),
        recv_ns: num_field(head, "\"recv_ns\":"),
    })
}

/// The value after the first `key` (`"name":`), whitespace skipped.
fn value<'a>(head: &'a str, key: &str) -> Option<&'a str> {
    let at = head.find(key)? + key.len();
    head.get(at..).map(str::trim_start)
}

/// A string value without escapes.
fn str_field<'a>(head: &'a str, key: &str) -> Option<&'a str> {
    let v = value(head, key)?.strip_prefix('"')?;
    let s = &v[..v.find('"')?];
    (!s.contains('\\')).then_some(s)
}

/// An unsigned integer value that fits 64 bits.
fn num_field(head: &str, key: &str) -> Option<u64> {
    let v = value(head, key)?;
    let digits = v.bytes().take_while(u8::is_ascii_digit);
    let mut n = 0u64;
    let mut any = false;
    for d in digits {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        any = true;
    }
    any.then_some(n)
}

/// Where a stream's `seq` stands on one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqState {
    last: u64,
    seen: bool,
    gapped: bool,
}

/// What one `seq` told about its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// In order (or the first message seen).
    Ok,
    /// A jump: this many messages were missed; `first` if the stream had no gap before.
    Gap {
        /// Messages missed.
        missed: u64,
        /// The stream's first gap.
        first: bool,
    },
    /// Backwards, or an `update` repeating the previous `seq`.
    Regression,
}

impl SeqState {
    /// Checks and records `seq` of an `update` (`update` = true) or a `snapshot`/`status`.
    pub fn check(&mut self, seq: u64, update: bool) -> SeqCheck {
        let prev = std::mem::replace(&mut self.last, seq);
        if !std::mem::replace(&mut self.seen, true) {
            return SeqCheck::Ok;
        }
        let Some(next) = prev.checked_add(1) else {
            return SeqCheck::Regression; // nothing can follow u64::MAX
        };
        if seq == next || (seq == prev && !update) {
            SeqCheck::Ok
        } else if seq > next {
            let first = !std::mem::replace(&mut self.gapped, true);
            SeqCheck::Gap {
                missed: seq - next,
                first,
            }
        } else {
            SeqCheck::Regression
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn scans_the_protocol_documents_messages() {
        let m = r#"{"type":"update","channel":"bbo","market":"usdm","symbol":"BTCUSDT","seq":812,"ts":1723161262573,"recv_ns":1723161262601234567,"data":{"bid":"61800.20","bid_qty":"2.507","ask":"61800.30","ask_qty":"2.510","spread":"0.10","update_id":5123108265240}}"#;
        let e = scan(m).unwrap();
        assert_eq!(
            e,
            Envelope {
                kind: "update",
                channel: Some("bbo"),
                market: Some("usdm"),
                symbol: Some("BTCUSDT"),
                venue: None,
                seq: Some(812),
                recv_ns: Some(1723161262601234567),
            }
        );
        assert!(e.is_stream());
        let m = r#"{"type":"snapshot","channel":"book","market":"usdm","symbol":"BTCUSDT","seq":4410,"ts":1723161262573,"recv_ns":1723161262601234567,"data":{"update_id":5123108265240,"bids":[["61800.20","2.507"]],"asks":[["61800.30","2.510"]]}}"#;
        let e = scan(m).unwrap();
        assert_eq!(
            (e.kind, e.channel, e.seq),
            ("snapshot", Some("book"), Some(4410))
        );
        let m = r#"{"type":"status","channel":"book","market":"spot","symbol":"BTCUSDT","seq":4412,"ts":0,"recv_ns":1723161262611234567,"data":{"stale":true,"reason":"gap"}}"#;
        assert_eq!(scan(m).unwrap().seq, Some(4412));
        let m = r#"{"type":"update","channel":"status","venue":"binance-usdm","market":"usdm","seq":7,"ts":0,"recv_ns":1763895712000000000,"data":{"state":"live","reason":"closed by venue: 1001 going away","seq":99}}"#;
        let e = scan(m).unwrap();
        assert_eq!(
            (e.venue, e.symbol, e.seq),
            (Some("binance-usdm"), None, Some(7))
        );
        let m = r#"{"type":"subscribed","id":1,"subscriptions":[{"channel":"bbo","market":"spot","symbol":"BTCUSDT"}]}"#;
        assert_eq!(scan(m).unwrap().kind, "subscribed");
        let m = r#"{"type":"error","code":4004,"message":"invalid message: expected a JSON object with a \"type\"","id":7}"#;
        assert_eq!(scan(m).unwrap().kind, "error");
        // Not an envelope, an escaped type, a seq that overflows 64 bits, no digits.
        for bad in [
            "",
            "[1]",
            "null",
            r#"{"id":1}"#,
            r#"{"type":"a\"b"}"#,
            r#"{"type":5}"#,
        ] {
            assert!(scan(bad).is_none(), "{bad}");
        }
        let m = r#"{"type":"update","seq":99999999999999999999,"recv_ns":-1}"#;
        assert_eq!(
            (scan(m).unwrap().seq, scan(m).unwrap().recv_ns),
            (None, None)
        );
    }

    #[test]
    fn seq_continuity() {
        let mut s = SeqState::default();
        assert_eq!(s.check(10, false), SeqCheck::Ok); // first: initial snapshot
        assert_eq!(s.check(10, false), SeqCheck::Ok); // a repeated snapshot
        assert_eq!(s.check(11, true), SeqCheck::Ok);
        assert_eq!(
            s.check(14, true),
            SeqCheck::Gap {
                missed: 2,
                first: true
            }
        );
        assert_eq!(
            s.check(20, false),
            SeqCheck::Gap {
                missed: 5,
                first: false
            }
        );
        assert_eq!(s.check(20, true), SeqCheck::Regression);
        assert_eq!(s.check(3, false), SeqCheck::Regression);
        assert_eq!(s.check(4, true), SeqCheck::Ok);
        assert_eq!(
            s.check(u64::MAX, true),
            SeqCheck::Gap {
                missed: u64::MAX - 5,
                first: false
            }
        );
        assert_eq!(s.check(u64::MAX, true), SeqCheck::Regression);
    }

    proptest! {
        #[test]
        fn scan_never_panics(s in any::<String>()) {
            let _ = scan(&s);
        }

        #[test]
        fn scan_never_panics_on_near_envelopes(
            s in r#"\{("(type|seq|recv_ns|channel|data|symbol)":?[" 0-9a-z\\{]{0,6}){0,8}"#,
        ) {
            if let Some(e) = scan(&s) {
                prop_assert!(!e.kind.contains('"'));
            }
        }
    }
}

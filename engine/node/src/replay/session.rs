//! One replay's private engine and hub with its one client session: the node's pipeline
//! without journal, sockets or clock. Records go in with their recorded receive time, which
//! is also the hub's `now`, so every message carries the `recv_ns` it had live.

use tape_core::auth::{AuthConfig, Authenticator};
use tape_core::engine::{Engine, EngineConfig};
use tape_core::input::{Nanos, SourceId, CLIENT_SOURCE};
use tape_core::server::{ConnId, HistoryBudget, HistoryConfig, Hub, HubConfig, Utf8Bytes};

/// The replay client's id in its private hub. Private replies in the journal name the live
/// connections they answered; this id is one no live socket ever has (the transport's slot
/// bits never reach all ones), so none of them reaches the replay client.
pub(super) const REPLAY_CONN: ConnId = ConnId(usize::MAX);

/// Requests a replay client may make: reading only. Orders and publishes would act on the
/// private engine's desk, which is a recording, not a venue.
const READ_ONLY: [&str; 8] = [
    "subscribe",
    "unsubscribe",
    "get_book",
    "ping",
    "auth",
    "get_orders",
    "get_positions",
    "get_portfolio",
];

/// A private engine and hub fed from a journal.
pub(super) struct Session {
    engine: Engine,
    hub: Hub,
    /// The replay clock: the receive time of the latest record applied.
    now: Nanos,
    /// Records the engine rejected (as a live node counts them).
    pub(super) record_errors: u64,
}

impl Session {
    /// A session whose hub is configured like the live one, except: one connection, no
    /// heartbeat (the replay clock is not the wall clock), no `resume` history, and room for
    /// everything one record produces (the worker writes the hub's queue out after each
    /// record, so it never conflates).
    pub(super) fn new(
        engine: &EngineConfig,
        hub: &HubConfig,
        auth: Option<&AuthConfig>,
    ) -> Result<Session, String> {
        let none = HistoryBudget::new(0, 0);
        let cfg = HubConfig {
            max_connections: 1,
            heartbeat_interval_ns: 0,
            outbound_queue: 1 << 20,
            slow_client_timeout_ns: u64::MAX / 4,
            history: HistoryConfig {
                trades: none,
                bbo: none,
                ticker: none,
                book: none,
                private: none,
            },
            run_id: 0,
            ..hub.clone()
        };
        let mut hub = Hub::new(cfg);
        if let Some(a) = auth {
            hub.set_authenticator(Authenticator::new(a.clone()).map_err(|e| e.to_string())?);
        }
        Ok(Session {
            engine: Engine::new(engine.clone()).map_err(|e| e.to_string())?,
            hub,
            now: Nanos(0),
            record_errors: 0,
        })
    }

    /// Applies one journal record at its recorded time, as the live pipeline did.
    pub(super) fn apply(&mut self, recv: u64, source: u32, kind: u16, payload: &[u8]) {
        self.now = Nanos(recv.max(self.now.0));
        self.feed(SourceId(source), kind, payload);
    }

    fn feed(&mut self, source: SourceId, kind: u16, payload: &[u8]) {
        if self
            .engine
            .handle_stored(self.now, source, kind, payload)
            .is_err()
        {
            self.record_errors += 1;
        }
        while let Some(out) = self.engine.poll_output() {
            self.hub.handle_output(&out, &self.engine);
        }
        // A replay sends nothing to a venue: its answers are in the journal already.
        while self.engine.poll_venue_command().is_some() {}
        // What the replay client's own session records (its login, private subscriptions)
        // goes to the private engine, as live it went to the journal and the engine.
        while let Some((kind, payload)) = self.hub.poll_record() {
            self.feed(SourceId(CLIENT_SOURCE), kind, &payload);
        }
    }

    /// Opens the client's session at the replay clock (`query` may carry `token=`).
    pub(super) fn open(&mut self, query: &str) {
        self.hub.handle_open(self.now, REPLAY_CONN, query);
        self.drain_records();
    }

    /// One request from the client. Anything but a read is refused here with 4004, so it
    /// never reaches the hub.
    pub(super) fn request(&mut self, text: &str) -> Option<String> {
        let v: Option<serde_json::Value> = serde_json::from_str(text).ok();
        let kind = v.as_ref().and_then(|v| v["type"].as_str());
        if let Some(k) = kind.filter(|k| !READ_ONLY.contains(k)) {
            let mut err = serde_json::json!({
                "type": "error",
                "code": tape_core::wire::E_INVALID,
                "message": format!("{k} is not available in a replay (read-only: {})", READ_ONLY.join(", ")),
            });
            if let Some(id) = v.as_ref().map(|v| v["id"].clone()).filter(|i| !i.is_null()) {
                err["id"] = id;
            }
            return Some(err.to_string());
        }
        self.hub
            .handle_text(self.now, REPLAY_CONN, text, &self.engine);
        self.drain_records();
        None
    }

    /// A binary message from the client: refused by the hub (4004), as live.
    pub(super) fn binary(&mut self, len: usize) {
        self.hub.handle_binary(self.now, REPLAY_CONN, len);
    }

    fn drain_records(&mut self) {
        while let Some((kind, payload)) = self.hub.poll_record() {
            self.feed(SourceId(CLIENT_SOURCE), kind, &payload);
        }
    }

    /// Every message the hub has for the client now, in order.
    pub(super) fn transmit(&mut self, mut out: impl FnMut(Utf8Bytes)) {
        while let Some(c) = self.hub.poll_ready() {
            while let Some(m) = self.hub.poll_transmit(self.now, c, &self.engine) {
                if c == REPLAY_CONN {
                    out(m);
                }
            }
        }
    }

    /// Ends the client's session (its logout record goes nowhere: the replay is over).
    pub(super) fn close(&mut self) {
        self.hub.handle_closed(REPLAY_CONN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> tape_journal::JournalReader {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/session");
        tape_journal::JournalReader::open(dir).unwrap()
    }

    fn texts(s: &mut Session) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        s.transmit(|m| out.push(serde_json::from_str(m.as_str()).unwrap()));
        out
    }

    #[test]
    fn updates_carry_the_recorded_receive_time() {
        let mut s = Session::new(&EngineConfig::default(), &HubConfig::default(), None).unwrap();
        let mut r = fixture();
        let mut opened = false;
        let mut trades = 0;
        while let Some(rec) = r.next() {
            let rec = rec.unwrap();
            s.apply(rec.recv_ns, rec.source, rec.kind, rec.payload);
            if !opened && rec.kind != tape_core::input::RecordKind::SourceDef as u16 {
                s.open("");
                assert!(s
                    .request(r#"{"type":"subscribe","id":1,"channels":["trades"],"symbols":["usdm:BTCUSDT"]}"#)
                    .is_none());
                // A read-only replay: orders never reach the hub or the engine.
                let err = s.request(r#"{"type":"place_order","id":2}"#).unwrap();
                assert!(
                    err.contains("\"code\":4004") && err.contains("\"id\":2"),
                    "{err}"
                );
                let reply = texts(&mut s);
                assert_eq!(reply[0]["type"], "subscribed", "{reply:?}");
                opened = true;
                continue;
            }
            for m in texts(&mut s) {
                assert_eq!(m["channel"], "trades", "{m}");
                assert_eq!(m["recv_ns"].as_u64(), Some(rec.recv_ns), "{m}");
                trades += 1;
                assert_eq!(m["seq"].as_u64(), Some(trades), "{m}");
            }
        }
        assert!(trades > 100, "{trades}");
        assert_eq!(s.record_errors, 0);
    }
}

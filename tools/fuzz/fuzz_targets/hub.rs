//! A sequence of client messages through the sans-IO hub, next to an engine fed the bundled
//! session's first records (the source definitions, both spot REST snapshots cut to 50 levels
//! a side, and the frames around them), as the hub's test harness (`engine/core/src/server/tests_util.rs`) drives it.
//!
//! Input layout: frames split at `\n`. A frame's first byte `c` is the operation (`c % 8`:
//! 0-3 a text message, 4 open with the rest as the query, 5 close, 6 advance the clock by
//! the next byte in seconds and run the timers, 7 feed the engine `1 + rest.len()` more
//! session records) on connection `(c / 8) % 4`; the rest of the frame is its argument.
//! Connections 0-3 are open at the start. After every operation every ready connection is
//! drained and each `Close` action is carried out as a transport would.
//!
//! Properties: no panic; every message the hub sends is one valid JSON value.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tape_core::engine::{Engine, EngineConfig};
use tape_core::input::{Nanos, RecordKind};
use tape_core::server::{Action, ConnId, Hub, HubConfig};
use tape_journal::JournalReader;

/// Session records fed before the first operation: through both spot snapshots (seq 21, 23).
const WARM: usize = 40;
/// Session records available to the "feed" operation after those.
const POOL: usize = 400;
const CONNS: usize = 4;
/// Levels a side kept of each session snapshot.
const SNAPSHOT_LEVELS: usize = 50;
const NS: u64 = 1_000_000_000;

struct Rec {
    recv_ns: u64,
    source: u32,
    kind: u16,
    payload: Vec<u8>,
}

fn session() -> &'static [Rec] {
    static RECS: OnceLock<Vec<Rec>> = OnceLock::new();
    RECS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/session");
        let mut r = JournalReader::open(&dir).expect("fixtures/session");
        let mut recs = Vec::with_capacity(WARM + POOL);
        while let Some(Ok(x)) = r.next() {
            let payload = if x.kind == RecordKind::RestSnapshot as u16 {
                trim_snapshot(x.payload)
            } else {
                x.payload.to_vec()
            };
            recs.push(Rec {
                recv_ns: x.recv_ns,
                source: x.source,
                kind: x.kind,
                payload,
            });
            if recs.len() == WARM + POOL {
                break;
            }
        }
        assert_eq!(recs.len(), WARM + POOL, "fixtures/session is too short");
        recs
    })
}

/// A REST snapshot body cut to its best [`SNAPSHOT_LEVELS`] levels a side: the session's
/// 1000-level snapshots would make every run decode 130 kB before the first message.
fn trim_snapshot(body: &[u8]) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(body).expect("snapshot JSON");
    for side in ["bids", "asks"] {
        if let Some(levels) = v.get_mut(side).and_then(|l| l.as_array_mut()) {
            levels.truncate(SNAPSHOT_LEVELS);
        }
    }
    serde_json::to_vec(&v).expect("snapshot JSON")
}

struct Harness {
    engine: Engine,
    hub: Hub,
    now: Nanos,
    next: usize,
    actions: Vec<Action>,
}

impl Harness {
    fn record(&mut self, r: &Rec) {
        self.now = self.now.max(Nanos(r.recv_ns));
        let _ = self
            .engine
            .handle_stored(self.now, tape_core::input::SourceId(r.source), r.kind, &r.payload);
        while let Some(o) = self.engine.poll_output() {
            self.hub.handle_output(&o, &self.engine);
        }
    }

    fn feed(&mut self, n: usize) {
        let recs = session();
        for _ in 0..n {
            let Some(r) = recs.get(self.next) else { return };
            self.next += 1;
            self.record(r);
        }
    }

    fn send(&mut self, conn: ConnId, text: &str) {
        self.hub.handle_text(self.now, conn, text, &self.engine);
    }

    /// Sends what every ready connection has, and carries out the hub's actions.
    fn drain(&mut self) {
        self.actions.clear();
        self.hub.handle_timeout(self.now, &mut self.actions);
        for a in std::mem::take(&mut self.actions) {
            if let Action::Close { conn, .. } = a {
                self.transmit(conn);
                self.hub.handle_closed(conn);
            }
        }
        while let Some(conn) = self.hub.poll_ready() {
            self.transmit(conn);
        }
    }

    fn transmit(&mut self, conn: ConnId) {
        while let Some(m) = self.hub.poll_transmit(self.now, conn, &self.engine) {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(&m) {
                panic!("hub sent invalid JSON ({e}): {m}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut h = Harness {
        engine: Engine::new(EngineConfig::default()).expect("engine"),
        hub: Hub::new(HubConfig::default()),
        now: Nanos(1),
        next: 0,
        actions: Vec::new(),
    };
    h.feed(WARM);
    for c in 0..CONNS {
        assert!(h.hub.handle_open(h.now, ConnId(c), ""));
    }
    h.drain();
    for frame in data.split(|&b| b == b'\n') {
        let Some((&op, arg)) = frame.split_first() else {
            continue;
        };
        let conn = ConnId(usize::from(op / 8) % CONNS);
        match op % 8 {
            0..=3 => h.send(conn, &String::from_utf8_lossy(arg)),
            4 => {
                let _ = h
                    .hub
                    .handle_open(h.now, conn, &String::from_utf8_lossy(arg));
            }
            5 => h.hub.handle_closed(conn),
            6 => {
                let secs = u64::from(arg.first().copied().unwrap_or(1));
                h.now = Nanos(h.now.0.saturating_add(secs * NS));
            }
            _ => h.feed(1 + arg.len()),
        }
        h.drain();
    }
});

//! The desk's side of an external venue under hostile venue input: an engine with a USD-M
//! (or spot) gateway desk of two users, driven by a sequence of records.
//!
//! Input layout: the first byte picks the gateway market (even: USD-M, odd: spot); then frames
//! split at `\n`. A frame's first byte `c` is the operation (`c % 6`): 0-1 the rest as a
//! venue frame (`gateway_frame`), 2 the rest as a `gateway_event` payload, 3 a well-formed
//! gateway event chosen by the next byte (up, ready, down, timeout of request `rest[1]`,
//! shutdown), 4 a limit order of user `(c / 6) % 2` (price and client id from the rest), 5
//! `cancel_all` of that user. Every record is stamped 1 ms after the previous one.
//!
//! Properties: no panic; every private message is one valid JSON value; every venue request
//! is `{"id":N,"method":..}` JSON; the same input gives the same digest twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tape_core::desk::{ClientOp, ClientRecord, DeskSetup, GatewayEvent};
use tape_core::engine::{Engine, EngineConfig};
use tape_core::input::{Nanos, RecordKind, SourceId, CLIENT_SOURCE, GATEWAY_SOURCE};
use tape_core::instrument::Market;
use tape_core::output::{Event, VenueCommand};

const USERS: [&str; 2] = ["alice", "bob"];

fn run(data: &[u8]) -> u64 {
    let market = if data.first().is_some_and(|b| b % 2 == 1) {
        Market::Spot
    } else {
        Market::UsdM
    };
    let mut e = Engine::new(EngineConfig {
        instruments: vec![(market, "BTCUSDT".into(), 2, 3)],
        ..EngineConfig::default()
    })
    .expect("engine");
    let setup = DeskSetup {
        users: USERS.iter().map(|u| (*u).to_owned()).collect(),
        gateway: Some(market),
        ..DeskSetup::default()
    };
    e.handle_record(
        Nanos(1),
        SourceId(CLIENT_SOURCE),
        RecordKind::DeskSetup,
        setup.to_payload().as_bytes(),
    )
    .expect("setup");
    let mut now = 1_000_000u64;
    for frame in data.get(1..).unwrap_or_default().split(|&b| b == b'\n') {
        let Some((&c, rest)) = frame.split_first() else {
            continue;
        };
        now += 1_000_000;
        let user = USERS[usize::from(c / 6) % 2];
        let (kind, payload): (RecordKind, Vec<u8>) = match c % 6 {
            0 | 1 => (RecordKind::GatewayFrame, rest.to_vec()),
            2 => (RecordKind::GatewayEvent, rest.to_vec()),
            3 => {
                let ev = match rest.first().map_or(0, |b| b % 5) {
                    0 => GatewayEvent::Up,
                    1 => GatewayEvent::Ready,
                    2 => GatewayEvent::Down {
                        reason: "fuzz".into(),
                    },
                    3 => GatewayEvent::Timeout {
                        id: u64::from(rest.get(1).copied().unwrap_or(1)),
                    },
                    _ => GatewayEvent::Shutdown,
                };
                (RecordKind::GatewayEvent, ev.to_payload().into_bytes())
            }
            4 => {
                let price = 60_000 + u32::from(rest.first().copied().unwrap_or(0));
                let id = rest.get(1).copied().unwrap_or(0);
                let body = format!(
                    r#"{{"type":"place_order","symbol":"BTCUSDT","side":"buy","order_type":"limit","price":"{price}.00","qty":"0.010","client_order_id":"c{id}"}}"#
                );
                (
                    RecordKind::Client,
                    ClientRecord::encode(ClientOp::Command, 1, user, body.as_bytes()),
                )
            }
            _ => (
                RecordKind::Client,
                ClientRecord::encode(
                    ClientOp::Command,
                    1,
                    user,
                    br#"{"type":"cancel_all","all_users":true}"#,
                ),
            ),
        };
        let source = if kind == RecordKind::Client {
            CLIENT_SOURCE
        } else {
            GATEWAY_SOURCE
        };
        let _ = e.handle_record(Nanos(now), SourceId(source), kind, &payload);
        while let Some(o) = e.poll_output() {
            if let Event::Private(m) = o.event {
                assert!(
                    serde_json::from_str::<serde_json::Value>(&m.json).is_ok(),
                    "{}",
                    m.json
                );
            }
        }
        while let Some(cmd) = e.poll_venue_command() {
            if let VenueCommand::Order { json, .. } = cmd {
                let v: serde_json::Value = serde_json::from_str(&json).expect("request JSON");
                assert!(v["id"].is_u64() && v["method"].is_string(), "{json}");
            }
        }
    }
    e.digest().value()
}

fuzz_target!(|data: &[u8]| {
    assert_eq!(run(data), run(data));
});

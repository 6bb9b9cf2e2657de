//! The shared-memory publication end to end: a journal replayed with it leaves exactly the
//! engine's books and accounts in the files; `tape run --shm` publishes the same top of book
//! a WebSocket client of the same server gets, update id for update id; the CLI's flags,
//! defaults and errors. Every wait is bounded; every file is in a temporary directory.

mod support;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{recv_json, root, send_json, start, tape};
use tape_core::desk::{ClientOp, ClientRecord, DeskSetup};
use tape_core::engine::Engine;
use tape_core::input::{RecordKind, CLIENT_SOURCE};
use tape_journal::{JournalOptions, JournalReader, JournalWriter};
use tape_node::shm::{book_state, order, position, Publisher, ShmConfig};
use tape_shm::{BookState, Level, Reader, UserReader};
use tape_tools::replay::{replay, replay_into, ReplayOptions};
use tungstenite::stream::MaybeTlsStream;

const WAIT: Duration = Duration::from_secs(30);

/// The bundled session with a desk (alice, bob) and orders placed, resting, cancelled and
/// filled along the way, as a new journal in `dir`.
fn session_with_trading(dir: &Path) {
    let mut reader = JournalReader::open(root().join("fixtures/session")).unwrap();
    let (mut w, _) = JournalWriter::open(dir, JournalOptions::default()).unwrap();
    let setup = DeskSetup {
        users: vec!["alice".into(), "bob".into()],
        ..DeskSetup::default()
    };
    let commands: BTreeMap<u64, (&str, Value)> = [
        (2500, ("alice", json!({"type":"place_order","id":1,"symbol":"usdm:BTCUSDT","side":"buy","order_type":"market","qty":"0.010"}))),
        (2600, ("alice", json!({"type":"place_order","id":2,"symbol":"usdm:BTCUSDT","side":"buy","order_type":"limit","price":"50000.00","qty":"0.005","client_order_id":"a-rest-1"}))),
        (2700, ("alice", json!({"type":"place_order","id":3,"symbol":"usdm:BTCUSDT","side":"sell","order_type":"limit","price":"70000.00","qty":"0.002","client_order_id":"a-rest-2"}))),
        (3000, ("bob", json!({"type":"place_order","id":4,"symbol":"spot:ETHUSDT","side":"sell","order_type":"market","qty":"0.1000"}))),
        (3100, ("bob", json!({"type":"place_order","id":5,"symbol":"spot:ETHUSDT","side":"buy","order_type":"limit","price":"2000.00","qty":"0.5000","client_order_id":"b-rest"}))),
        (5000, ("alice", json!({"type":"cancel_order","id":6,"client_order_id":"a-rest-2"}))),
        (6000, ("alice", json!({"type":"place_order","id":7,"symbol":"usdm:BTCUSDT","side":"sell","order_type":"market","qty":"0.004"}))),
    ]
    .into_iter()
    .collect();
    let mut n = 0u64;
    while let Some(rec) = reader.next() {
        let rec = rec.unwrap();
        let last = rec.recv_ns;
        w.append(rec.recv_ns, rec.source, rec.kind, rec.payload)
            .unwrap();
        n += 1;
        if n == 1 {
            w.append(
                last,
                CLIENT_SOURCE,
                RecordKind::DeskSetup as u16,
                setup.to_payload().as_bytes(),
            )
            .unwrap();
        }
        if let Some((user, cmd)) = commands.get(&n) {
            let body = cmd.to_string();
            let payload = ClientRecord::encode(ClientOp::Command, 1, user, body.as_bytes());
            w.append(last, CLIENT_SOURCE, RecordKind::Client as u16, &payload)
                .unwrap();
        }
    }
    w.flush().unwrap();
}

fn levels(it: impl Iterator<Item = tape_core::msg::Level>, n: usize) -> Vec<Level> {
    it.take(n)
        .map(|l| Level {
            price: l.price.0,
            qty: l.qty.0,
        })
        .collect()
}

/// Every book and account of `engine`, as the files in `dir` hold them.
fn assert_files_equal_engine(dir: &Path, engine: &Engine) {
    let r = Reader::open(dir).unwrap();
    let n = r.levels_per_side() as usize;
    let reg = engine.registry();
    let mut books = 0;
    for b in engine.books() {
        let inst = reg.get(b.instrument());
        let name = format!("{}:{}", inst.market, inst.symbol);
        let i = r.find(&name).unwrap_or_else(|| panic!("{name} published"));
        assert_eq!(
            (i.key.price_scale, i.key.qty_scale),
            (inst.price_scale, inst.qty_scale),
            "{name}"
        );
        let d = r.levels(&i).unwrap();
        assert_eq!(d.head.state, book_state(Some(b)), "{name} state");
        assert_eq!(d.head.update_id, b.last_update_id().unwrap_or(0), "{name}");
        assert_eq!(d.bids, levels(b.book().bids(), n), "{name} bids");
        assert_eq!(d.asks, levels(b.book().asks(), n), "{name} asks");
        let top = r.bbo(&i).unwrap();
        assert_eq!(top.state, d.head.state, "{name} top state");
        if top.state == BookState::Synced {
            assert_eq!(
                top.bid,
                levels(b.book().bids(), 1).first().copied(),
                "{name}"
            );
            assert_eq!(
                top.ask,
                levels(b.book().asks(), 1).first().copied(),
                "{name}"
            );
            assert!(top.update_id <= d.head.update_id, "{name}");
        } else {
            assert_eq!((top.bid, top.ask), (None, None), "{name}: not live");
        }
        books += 1;
    }
    assert_eq!(books, 5, "the session's five books");
    if let Some(desk) = engine.desk() {
        let mut traded = 0;
        for user in &desk.setup().users {
            let a = desk.accounts().user(user).unwrap();
            let u = UserReader::open(dir.join(format!("user-{user}.shm"))).unwrap();
            let p = u.portfolio().unwrap();
            let e = a.portfolio();
            assert_eq!(
                (
                    p.total_balance,
                    p.realized_pnl,
                    p.unrealized_pnl,
                    p.total_pnl
                ),
                (
                    e.total_balance.0,
                    e.realized_pnl.0,
                    e.unrealized_pnl.0,
                    e.total_pnl.0
                ),
                "{user} portfolio"
            );
            assert_eq!(
                (p.open_positions, p.equity_peak, p.drawdown),
                (u64::from(e.open_positions), e.equity_peak.0, e.drawdown.0),
                "{user} portfolio"
            );
            let (positions, total) = u.positions().unwrap();
            let want: Vec<_> = a.positions().map(|p| position(p, reg)).collect();
            assert_eq!(positions, want, "{user} positions");
            assert_eq!(total, want.len() as u64);
            let (orders, open) = u.orders().unwrap();
            let want: Vec<_> = a.orders().live().map(|o| order(o, reg)).collect();
            assert_eq!(orders, want, "{user} open orders");
            assert_eq!(open, want.len() as u64);
            traded += positions.len() + orders.len();
        }
        assert!(
            traded >= 4,
            "the journal's orders left positions and resting orders"
        );
    }
}

#[test]
fn replayed_shared_memory_equals_the_engines_books_and_accounts() {
    let tmp = tempfile::tempdir().unwrap();
    let journal = tmp.path().join("journal");
    session_with_trading(&journal);
    let shm = tmp.path().join("shm");
    let mut publisher = Publisher::open(&ShmConfig::new(shm.clone()), &[]).unwrap();
    let (with, engine) =
        replay_into(&journal, &ReplayOptions::default(), Some(&mut publisher)).unwrap();
    assert!(with.errors.is_empty(), "{:?}", with.errors);
    let desk = engine.desk().expect("the journal set a desk up");
    assert_eq!(desk.stats().accepted, 7, "every command accepted");
    assert_files_equal_engine(&shm, &engine);
    // The publication changes nothing the engine outputs.
    let (without, _) = replay(&journal).unwrap();
    assert_eq!(with.digest, without.digest);
    assert_eq!(with.output_events, without.output_events);

    // The bundled session alone: the same, and the pinned digest.
    let shm2 = tmp.path().join("shm2");
    let mut p2 = Publisher::open(&ShmConfig::new(shm2.clone()), &[]).unwrap();
    let (s, engine) = replay_into(
        &root().join("fixtures/session"),
        &ReplayOptions::default(),
        Some(&mut p2),
    )
    .unwrap();
    assert_eq!(s.digest, "58624847cad61891");
    assert_files_equal_engine(&shm2, &engine);
}

/// Decimal strings as integers at scale 8, so "61800.2" and "61800.20" compare equal.
fn dec(v: &Value) -> Option<i128> {
    let s = v.as_str()?;
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    let f = format!("{f:0<8}");
    format!("{i}{}", &f[..8]).parse().ok()
}

type Quote = [Option<i128>; 4];

fn quote(d: &Value) -> Quote {
    [
        dec(&d["bid"]),
        dec(&d["bid_qty"]),
        dec(&d["ask"]),
        dec(&d["ask_qty"]),
    ]
}

#[test]
fn the_rust_reader_sees_the_bbo_a_websocket_client_sees_for_the_same_update_id() {
    let tmp = tempfile::tempdir().unwrap();
    let shm = tmp.path().join("shm");
    let dir = shm.clone();
    let srv = start(move |c| {
        c.shm.enabled = true;
        c.shm.dir = dir.display().to_string();
        c.feed.speed = 5;
    });
    let symbol = "usdm:BTCUSDT";

    // The reader: every top of book it sees, by update id, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, shm) = (Arc::clone(&stop), shm.clone());
        std::thread::spawn(move || {
            let r = Reader::open(&shm).unwrap();
            let deadline = Instant::now() + WAIT;
            let inst = loop {
                if let Some(i) = r.find(symbol) {
                    break i;
                }
                assert!(Instant::now() < deadline, "{symbol} never published");
                std::thread::yield_now();
            };
            let mut seen: BTreeMap<u64, Quote> = BTreeMap::new();
            let (_, mut seq) = r.bbo_seq(&inst).unwrap();
            while !stop.load(Ordering::Relaxed) {
                if let Some((top, s)) = r
                    .wait_change(&inst, seq, Duration::from_millis(100))
                    .unwrap()
                {
                    seq = s;
                    if top.state == BookState::Synced {
                        let v = tape_tools::shm_read::top_json(&inst, &top, s);
                        seen.insert(top.update_id, quote(&v));
                    }
                }
            }
            seen
        })
    };

    // The WebSocket client of the same server.
    let (mut ws, _) = tungstenite::connect(format!("ws://{}/ws", srv.addr)).unwrap();
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        TcpStream::set_read_timeout(s, Some(Duration::from_secs(5))).unwrap();
    }
    send_json(
        &mut ws,
        json!({"type":"subscribe","id":1,"channels":["bbo"],"symbols":[symbol]}),
    );
    let deadline = Instant::now() + WAIT;
    let mut client: BTreeMap<u64, Quote> = BTreeMap::new();
    // About 150 top-of-book changes of this instrument per pass of the session.
    while client.len() < 100 {
        let m = recv_json(&mut ws, deadline);
        if m["channel"] == "bbo" {
            let d = &m["data"];
            client.insert(d["update_id"].as_u64().unwrap(), quote(d));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let seen = reader.join().expect("reader thread");
    let mut common = 0;
    for (u, q) in &seen {
        if let Some(c) = client.get(u) {
            assert_eq!(q, c, "update_id {u}: shared memory {q:?}, WebSocket {c:?}");
            common += 1;
        }
    }
    assert!(
        common >= 50,
        "only {common} update ids seen by both (reader {}, client {})",
        seen.len(),
        client.len()
    );
}

#[test]
fn tape_replay_with_shm_keeps_the_digest_and_shm_read_prints_what_it_left() {
    let tmp = tempfile::tempdir().unwrap();
    let shm = tmp.path().join("shm");
    let session = root().join("fixtures/session");
    let out = tape(&[
        "replay",
        session.to_str().unwrap(),
        "--shm",
        shm.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("digest    58624847cad61891 (40142 events)"),
        "{text}"
    );
    let out = tape(&["shm-read", shm.to_str().unwrap(), "--once", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    let btc = lines
        .iter()
        .find(|l| l["symbol"] == "usdm:BTCUSDT")
        .unwrap();
    assert_eq!(btc["state"], "synced");
    assert_eq!(btc["bid"], "61811.30");
    assert_eq!(btc["ask"], "61811.40");

    // A journal with a desk: the users' files, read by name.
    let journal = tmp.path().join("trading");
    session_with_trading(&journal);
    let shm2 = tmp.path().join("shm2");
    let out = tape(&[
        "replay",
        journal.to_str().unwrap(),
        "--shm",
        shm2.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = tape(&[
        "shm-read",
        shm2.to_str().unwrap(),
        "--user",
        "alice",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "portfolio", "{lines:?}");
    assert_eq!(lines[0]["user"], "alice");
    let position = lines
        .iter()
        .find(|l| l["type"] == "position")
        .expect("a position");
    assert_eq!(position["symbol"], "usdm:BTCUSDT");
    assert_eq!(position["qty"], "0.006", "bought 0.010, sold 0.004");
    let order = lines
        .iter()
        .find(|l| l["type"] == "order")
        .expect("an open order");
    assert_eq!(order["client_order_id"], "a-rest-1");
    assert_eq!(order["price"], "50000.00");
    assert_eq!(order["status"], "new");
    assert!(
        !lines.iter().any(|l| l["client_order_id"] == "a-rest-2"),
        "the cancelled order is not open: {lines:?}"
    );
    let mode = std::fs::metadata(shm2.join("user-alice.shm"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap();
    assert_eq!(mode, 0o600, "a user's file is the engine's account's only");

    let out = tape(&[
        "shm-read",
        shm.to_str().unwrap(),
        "--symbol",
        "spot:NOPE",
        "--once",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no instrument \"spot:NOPE\""),
        "{out:?}"
    );
}

#[test]
fn a_bad_shm_directory_or_setting_stops_tape_run_at_start_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no/such/parent/shm");
    let out = tape(&[
        "run",
        "--listen",
        "127.0.0.1:0",
        "--journal",
        root().join("fixtures/session").to_str().unwrap(),
        "--shm",
        missing.to_str().unwrap(),
        "--exit-after",
        "5",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shm directory") && err.contains("does not exist"),
        "{err}"
    );

    let cfg = tmp.path().join("bad.toml");
    std::fs::write(&cfg, "[shm]\nenabled = true\nlevels = 0\n").unwrap();
    let out = tape(&["run", "--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("shm.levels must be 1 to 1000, not 0"), "{err}");

    std::fs::write(&cfg, "[shm]\nenabled = true\nuser_mode = \"0644\"\n").unwrap();
    let out = tape(&["run", "--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shm.user_mode") && err.contains("every OS account"),
        "{err}"
    );
}

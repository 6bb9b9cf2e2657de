//! The digest does not depend on the encoding of control records: a journal whose source
//! definitions, link events, desk setup and client records are in the version 1 text formats
//! (as every journal written before version 2) replays to exactly the digest of the same
//! journal with those records re-encoded in version 2.

mod support;

use support::{session_records, write_journal as write, Rec};
use tape_core::desk::{ClientRecord, DeskSetup};
use tape_core::input::{SourceDef, CLIENT_SOURCE};
use tape_core::venue::LinkEvent;

const SOURCE_DEF: u16 = 1;
const LINK: u16 = 4;
const DESK_SETUP: u16 = 5;
const CLIENT: u16 = 6;

/// The bundled session with link events on its first WebSocket source and a desk session
/// (setup, login, orders, logout) interleaved, all control records in version 1 text.
fn legacy_session() -> Vec<Rec> {
    let frames = session_records();
    let defs = frames.iter().take_while(|r| r.2 == SOURCE_DEF).count();
    assert_eq!(defs, 10, "the session declares its sources first");
    let t0 = frames[defs].0;
    let ctl = |source: u32, kind: u16, text: &str| (t0, source, kind, text.as_bytes().to_vec());
    let client = |text: &str| ctl(CLIENT_SOURCE, CLIENT, text);
    let mut out: Vec<Rec> = frames[..defs].to_vec();
    out.extend([
        ctl(
            0,
            LINK,
            "tape-link/1 event=connecting url=wss://dstream.binance.com/stream?streams=btcusd_perp@depth",
        ),
        ctl(0, LINK, "tape-link/1 event=up"),
        ctl(
            CLIENT_SOURCE,
            DESK_SETUP,
            "tape-desk/1\nuser=alice\nuser=bob\nquote_asset=USDT\nmark=mid\nmaker_fee_bps=2\n\
             taker_fee_bps=4\ngateway=paper\nmax_open_orders=5\nmax_order_qty=1.5\n",
        ),
        client("tape-client/1 op=login conn=1 user=alice\n"),
    ]);
    let rest = &frames[defs..];
    let (a, b) = rest.split_at(rest.len() / 2);
    out.extend_from_slice(a);
    let t1 = b[0].0;
    let at = |r: Rec| (t1, r.1, r.2, r.3);
    out.extend(
        [
            client(
                "tape-client/1 op=command conn=1 user=alice\n{\"type\":\"place_order\",\"id\":1,\
                 \"symbol\":\"usdm:BTCUSDT\",\"side\":\"buy\",\"order_type\":\"market\",\"qty\":\"0.010\"}",
            ),
            client(
                "tape-client/1 op=command conn=1 user=alice\n{\"type\":\"place_order\",\"id\":2,\
                 \"symbol\":\"usdm:BTCUSDT\",\"side\":\"sell\",\"order_type\":\"limit\",\"price\":\"1\",\"qty\":\"9\"}",
            ),
            ctl(0, LINK, "tape-link/1 event=down reason=closed by venue: 1001 going away"),
            ctl(0, LINK, "tape-link/1 event=backoff attempt=1 delay_ms=500"),
            ctl(0, LINK, "tape-link/1 event=connecting url=wss://dstream.binance.com/stream?streams=btcusd_perp@depth"),
            ctl(0, LINK, "tape-link/1 event=up"),
        ]
        .map(at),
    );
    out.extend_from_slice(b);
    let end = out.last().unwrap().0;
    out.push((
        end,
        CLIENT_SOURCE,
        CLIENT,
        b"tape-client/1 op=logout conn=1 user=alice\n".to_vec(),
    ));
    out
}

/// The same records with every control record re-encoded by today's writers (version 2).
fn reencoded(recs: &[Rec]) -> Vec<Rec> {
    recs.iter()
        .map(|(t, s, k, p)| {
            let v2 = match *k {
                SOURCE_DEF => SourceDef::parse(p).unwrap().to_text().into_bytes(),
                LINK => LinkEvent::parse(p).unwrap().to_text().into_bytes(),
                DESK_SETUP => DeskSetup::parse(p).unwrap().to_payload().into_bytes(),
                CLIENT => {
                    let r = ClientRecord::parse(p).unwrap();
                    ClientRecord::encode(r.op, r.conn, &r.user, r.body)
                }
                _ => return (*t, *s, *k, p.clone()),
            };
            assert!(
                v2.starts_with(b"{\"v\":2,") && !p.starts_with(b"{"),
                "{v2:?}"
            );
            (*t, *s, *k, v2)
        })
        .collect()
}

#[test]
fn control_records_replay_to_the_same_digest_in_either_encoding() {
    let tmp = tempfile::tempdir().unwrap();
    let old = legacy_session();
    let new = reencoded(&old);
    assert_eq!(old.len(), new.len());
    let (d1, d2) = (tmp.path().join("v1"), tmp.path().join("v2"));
    write(&d1, &old);
    write(&d2, &new);
    let (s1, e1) = tape_tools::replay::replay(&d1).unwrap();
    let (s2, e2) = tape_tools::replay::replay(&d2).unwrap();
    // Every control record was understood, in both encodings ...
    assert!(s1.errors.is_empty(), "{:?}", s1.errors);
    assert!(s2.errors.is_empty(), "{:?}", s2.errors);
    // ... and did something: the venue went down once, the desk saw every client record
    // and answered both commands.
    for e in [&e1, &e2] {
        let v = e
            .venues()
            .find(|v| v.source.0 == 0)
            .expect("source 0 has a venue");
        assert_eq!((v.attempts, v.connects, v.disconnects), (2, 2, 1));
        assert_eq!(v.reason, "closed by venue: 1001 going away");
        let st = e.desk().expect("the setup made a desk").stats();
        assert_eq!((st.records, st.accepted + st.refused), (4, 2));
    }
    assert_ne!(
        s1.digest, "58624847cad61891",
        "the records changed the outputs"
    );
    assert_eq!(s1.output_events, s2.output_events);
    assert_eq!(s1.digest, s2.digest);
}

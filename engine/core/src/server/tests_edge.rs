//! An edge's hub: its client records go to the origin instead of its own engine, so every
//! request must still be answered when the origin cannot take it.

use super::log_status::LogStatus;
use super::tests_private::{of_type, token, World};
use super::{Action, ConnId};
use crate::desk::{ClientOp, ClientRecord};
use crate::input::Nanos;
use crate::wire::{CLOSE_TRY_AGAIN_LATER, E_ORIGIN_UNAVAILABLE};

const ORDER: &str = r#"{"type":"place_order","id":"o-7","market":"usdm","symbol":"BTCUSDT","side":"buy","order_type":"market","qty":"0.001","client_order_id":"e1"}"#;

/// An edge with alice connected: her login record taken as a forward would take it (not
/// applied here: on an edge it is the origin's to journal).
fn edge_with_alice() -> (World, Vec<u8>) {
    let mut w = World::new();
    assert!(w.h.hub.handle_open(w.h.now, ConnId(1), &token("alice")));
    let (_, login) = w.h.hub.poll_record().expect("a login record");
    w.h.drain(1);
    (w, login)
}

fn stale(state: &'static str) -> LogStatus {
    LogStatus {
        role: "edge",
        state,
        reason: "test".into(),
        ..LogStatus::default()
    }
}

/// Exactly one error among `msgs`: 4031 for order `o-7`, its message naming `why`.
fn assert_origin_unavailable(msgs: &[serde_json::Value], why: &str) {
    let errors = of_type(msgs, "error");
    assert_eq!(errors.len(), 1, "{msgs:?}");
    assert_eq!(errors[0]["code"], E_ORIGIN_UNAVAILABLE);
    assert_eq!(errors[0]["id"], "o-7");
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(why), "{message}");
}

#[test]
fn an_order_the_origin_did_not_take_is_answered_with_its_id() {
    let (mut w, _) = edge_with_alice();
    w.h.send(1, ORDER);
    let (_, rec) = w.h.hub.poll_record().expect("the order, to forward");
    assert_eq!(ClientRecord::parse(&rec).unwrap().op, ClientOp::Command);
    assert!(w.h.drain(1).is_empty(), "no answer before the origin's");

    assert!(w
        .h
        .hub
        .refuse_forwarded(&rec, "no answer from the origin in 3s; outcome unknown"));
    assert_origin_unavailable(&w.h.drain(1), "outcome unknown");

    // Garbage, or a connection that is gone, is nobody's answer.
    assert!(!w.h.hub.refuse_forwarded(b"not a record", "x"));
    let other = ClientRecord::encode(ClientOp::Command, 99, "alice", ORDER.as_bytes());
    assert!(!w.h.hub.refuse_forwarded(&other, "x"));
}

#[test]
fn a_login_the_origin_did_not_take_closes_the_session_to_try_again() {
    let (mut w, login) = edge_with_alice();
    assert!(w.h.hub.refuse_forwarded(&login, "the origin refused it"));
    let actions = w.h.tick();
    assert!(
        actions.iter().any(|a| matches!(
            a,
            Action::Close { conn: ConnId(1), code, .. } if *code == CLOSE_TRY_AGAIN_LATER
        )),
        "{actions:?}"
    );
}

#[test]
fn an_edge_whose_log_is_not_live_takes_no_order() {
    let (mut w, _) = edge_with_alice();
    let now = w.h.now;
    w.h.hub
        .set_log_status(now, &stale("origin_silent"), &w.h.engine);
    w.h.drain(1);
    w.h.send(1, ORDER);
    assert!(
        w.h.hub.poll_record().is_none(),
        "nothing forwarded while the log is not live"
    );
    assert_origin_unavailable(&w.h.drain(1), "origin_silent");

    // Live again: the order goes to the origin.
    w.h.now = Nanos(now.0 + 1);
    let now = w.h.now;
    w.h.hub.set_log_status(now, &stale("live"), &w.h.engine);
    w.h.send(1, ORDER);
    assert!(w.h.hub.poll_record().is_some(), "forwarded once live");
}

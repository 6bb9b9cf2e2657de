//! The venue link driven with virtual time (see `tests_util`): reconnects, timeouts, stalls,
//! shutdown, the snapshot interplay, and a proptest over random io histories.

use proptest::prelude::*;

use super::tests_util::{feed_backoff, feed_config, Harness, MS, SEC};
use super::{Backoff, HealthyAfter, LinkConfig, SchedulerConfig, SnapshotScheduler};
use crate::venue::LinkEvent;

fn connecting() -> LinkEvent {
    LinkEvent::Connecting {
        url: "wss://venue.test/stream".into(),
    }
}

fn down(reason: &str) -> LinkEvent {
    LinkEvent::Down {
        reason: reason.into(),
    }
}

#[test]
fn refused_attempts_back_off_with_full_jitter_under_doubling_ceilings() {
    let mut h = Harness::new(feed_config(), feed_backoff(3));
    let mut reference = feed_backoff(3);
    h.start();
    assert_eq!(h.events_since(0), [connecting()]);
    for n in 1..=7u32 {
        let ceiling = reference.ceiling_ns();
        let delay = reference.next_delay_ns();
        let at = h.now;
        let mark = h.journal.len();
        h.closed("connect refused");
        assert_eq!(
            h.events_since(mark),
            [
                down("connect refused"),
                LinkEvent::Backoff {
                    attempt: n,
                    delay_ms: delay / MS
                }
            ]
        );
        assert!(delay <= ceiling && ceiling == (SEC << (n - 1)).min(8 * SEC));
        assert_eq!(h.link.next_attempt(), Some(at + delay));
        // Not a nanosecond early, then exactly on time.
        if delay > 0 {
            h.advance(delay - 1);
            assert_eq!(h.connects.len(), n as usize);
        }
        h.jump();
        assert_eq!((h.connects.len(), h.now), (n as usize + 1, at + delay));
        assert_eq!(h.journal.last().map(|(_, e)| e.clone()), Some(connecting()));
    }
    assert_eq!(h.cancels, 7);
}

#[test]
fn backoff_starts_over_only_after_a_healthy_period_with_data() {
    let mut h = Harness::new(feed_config(), feed_backoff(9));
    h.start();
    for _ in 0..3 {
        h.closed("refused");
        h.jump();
    }
    assert_eq!(h.link.backoff().attempt(), 3);

    // Up for less than the cap, with data: the count goes on.
    h.connected();
    h.frame();
    h.advance(8 * SEC - 1);
    h.closed("reset by peer");
    assert_eq!(h.backoffs().last().map(|b| b.0), Some(4));
    h.jump();

    // Up past the cap but silent except for answered pings: no fresh start either.
    h.connected();
    for _ in 0..3 {
        h.advance(9 * SEC);
        assert!(h.link.is_open());
    }
    h.closed("closed by venue: 1000 bye");
    assert_eq!(h.backoffs().last().map(|b| b.0), Some(5));
    h.jump();

    // Up for the cap with data flowing: the next delay is a first one again.
    h.connected();
    for _ in 0..8 {
        h.advance(SEC);
        h.frame();
    }
    h.closed("closed by venue: 1000 bye");
    let (attempt, delay_ms) = *h.backoffs().last().unwrap();
    assert_eq!(attempt, 1);
    assert!(delay_ms <= 1_000);
}

#[test]
fn an_order_link_starts_over_on_every_connection() {
    let config = LinkConfig {
        healthy_after: HealthyAfter {
            up_ns: 0,
            needs_data: false,
        },
        ..feed_config()
    };
    let mut h = Harness::new(config, feed_backoff(1));
    h.start();
    h.closed("refused");
    h.jump();
    h.closed("refused");
    h.jump();
    h.connected();
    h.closed("gone");
    assert_eq!(
        h.backoffs().iter().map(|b| b.0).collect::<Vec<_>>(),
        [1, 2, 1]
    );
}

#[test]
fn an_attempt_that_never_opens_is_dropped_at_the_connect_timeout() {
    let mut h = Harness::new(feed_config(), feed_backoff(5));
    h.now = 1_000 * SEC;
    h.start();
    h.advance(5 * SEC - 1);
    assert!(h.live && h.closes.is_empty());
    h.advance(1);
    let reason = "connect timeout after 5000 ms";
    assert_eq!(h.closes, [(1_005 * SEC, reason.to_owned())]);
    assert!(!h.live);
    assert_eq!(h.events_since(1)[0], down(reason));
    assert!(matches!(
        h.events_since(2)[..],
        [LinkEvent::Backoff { attempt: 1, .. }]
    ));
    // A handshake that completes after the timeout is stale: the link stays down.
    h.link.handle_connected(h.now);
    assert!(!h.link.is_open() && h.link.poll_action().is_none());
    // The timeout is per attempt: the next one gets its own.
    h.jump();
    assert!(h.link.is_connecting());
    assert_eq!(h.link.poll_timeout(), Some(h.now + 5 * SEC));
}

#[test]
fn quiet_links_are_pinged_once_then_dropped_as_stalled() {
    let mut h = Harness::new(feed_config(), feed_backoff(2));
    h.start();
    h.advance(100 * MS);
    h.connected();
    let opened = h.now;
    // Data keeps it quiet-free: no ping.
    for _ in 0..5 {
        h.advance(9 * SEC);
        h.frame();
    }
    assert!(h.pings.is_empty());
    let last = h.now;
    // Silence: one ping after 10 s, only one.
    h.advance(29 * SEC);
    assert_eq!(h.pings, [last + 10 * SEC]);
    // Data answers it and re-arms the ping.
    h.frame();
    let last = h.now;
    h.advance(10 * SEC);
    assert_eq!(h.pings, [opened + 45 * SEC + 10 * SEC, last + 10 * SEC]);
    // A pong is not data: it does not reach the link, and the stall fires 30 s after the
    // last frame.
    h.advance(20 * SEC - 1);
    assert!(h.link.is_open());
    h.advance(1);
    let reason = "stalled: nothing received for 30000 ms";
    assert_eq!(h.closes, [(last + 30 * SEC, reason.to_owned())]);
    assert!(h.events_since(0).contains(&down(reason)));
    assert_eq!(h.cancels, 1);
}

#[test]
fn shutdown_during_backoff_is_silent_and_final() {
    let mut h = Harness::new(feed_config(), feed_backoff(4));
    h.start();
    h.closed("refused");
    let before = h.journal.len();
    h.close();
    assert_eq!(h.journal.len(), before);
    assert_eq!(h.link.poll_timeout(), None);
    h.advance(3_600 * SEC);
    assert_eq!(h.connects.len(), 1);
    // Late io reports change nothing.
    h.link.handle_closed(h.now, "late");
    h.link.handle_timeout(h.now);
    assert!(h.link.poll_action().is_none());
}

#[test]
fn shutdown_of_an_open_link_closes_it_without_a_backoff() {
    let mut h = Harness::new(feed_config(), feed_backoff(4));
    h.start();
    h.connected();
    h.frame();
    h.close();
    assert_eq!(h.closes, [(0, "closed by tape".to_owned())]);
    assert_eq!(
        h.events_since(0),
        [connecting(), LinkEvent::Up, down("closed by tape")]
    );
    assert_eq!((h.cancels, h.link.poll_timeout()), (0, None));
    h.start(); // start is for an idle link only
    assert!(h.link.poll_action().is_none());
}

#[test]
fn a_reconnect_voids_snapshot_requests_of_the_old_connection() {
    let mut h = Harness::new(feed_config(), feed_backoff(6));
    let scheduler = SnapshotScheduler::new(SchedulerConfig {
        min_interval_ns: 100 * MS,
        max_in_flight_per_venue: 1,
        retry_initial_ns: SEC,
        retry_max_ns: 8 * SEC,
        timeout_ns: 11 * SEC,
    });
    h.snapshots = Some((scheduler, vec![1, 2]));
    h.start();
    h.connected();
    let want = |h: &mut Harness, key: u32| {
        let open = h.link.is_open();
        let (s, _) = h.snapshots.as_mut().unwrap();
        open && s.want(h.now, 0, key)
    };
    assert!(want(&mut h, 1) && want(&mut h, 2));
    let (s, _) = h.snapshots.as_mut().unwrap();
    assert_eq!(s.poll_request(h.now).map(|r| r.key), Some(1));
    h.closed("reset by peer");
    let now = h.now;
    let (s, _) = h.snapshots.as_mut().unwrap();
    assert!(!s.is_tracked(1) && !s.is_tracked(2) && s.in_flight(0) == 0);
    // The old connection's answer arrives late and is ignored.
    assert!(!s.on_result(now, 1, true, None));
    // While down, a book's request waits for the connection.
    assert!(!want(&mut h, 2));
    h.jump();
    h.connected();
    assert!(want(&mut h, 2));
    let now = h.now;
    let (s, _) = h.snapshots.as_mut().unwrap();
    assert_eq!(s.poll_request(now).map(|r| r.key), Some(2));
}

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    Connected,
    Frame,
    Closed,
    Timeout,
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..40 * SEC).prop_map(Op::Advance),
        3 => Just(Op::Connected),
        4 => Just(Op::Frame),
        2 => Just(Op::Closed),
        1 => Just(Op::Timeout),
        1 => Just(Op::Close),
    ]
}

proptest! {
    /// Any io history the model io can produce keeps the contract the harness checks at
    /// every action (one attempt at a time, closes and pings only for a live one, the journal
    /// grammar, deadlines never in the past), delays stay under the ceilings, and the link
    /// never goes quiet: until shut down it always has a deadline.
    #[test]
    fn random_histories_keep_the_contract(
        seed: u64,
        ping in 1..20 * SEC,
        stall_extra in 0..20 * SEC,
        ops in proptest::collection::vec(op(), 0..120),
    ) {
        let config = LinkConfig {
            ping_after_ns: ping,
            stall_timeout_ns: ping + stall_extra,
            ..feed_config()
        };
        let mut h = Harness::new(config, Backoff::new(SEC, 8 * SEC, seed));
        h.start();
        let mut closed = false;
        for op in ops {
            match op {
                Op::Advance(dt) => h.advance(dt),
                // The io only reports about an attempt or connection it holds.
                Op::Connected if h.live && h.link.is_connecting() => h.connected(),
                Op::Frame if h.link.is_open() => h.frame(),
                Op::Closed if h.live => h.closed("io error"),
                Op::Timeout => { h.link.handle_timeout(h.now); h.advance(0); }
                Op::Close => { h.close(); closed = true; }
                _ => {}
            }
            prop_assert_eq!(h.live, h.link.is_connecting() || h.link.is_open());
            prop_assert_eq!(h.link.poll_timeout().is_none(), closed);
        }
        let mut ceiling = Backoff::new(SEC, 8 * SEC, seed);
        for (attempt, delay_ms) in h.backoffs() {
            if attempt == 1 { ceiling.reset(); }
            prop_assert!(delay_ms * MS <= ceiling.ceiling_ns(), "attempt {attempt}: {delay_ms} ms");
            let _ = ceiling.next_delay_ns();
        }
        // Downs and voided snapshots pair up, except a shutdown's.
        let downs = h.journal.iter().filter(|(_, e)| matches!(e, LinkEvent::Down { reason } if reason != "closed by tape")).count();
        prop_assert_eq!(downs, h.cancels);
    }
}

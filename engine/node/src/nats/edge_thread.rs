//! The edge's NATS thread: follows the origin's stream with an ordered push consumer from
//! the record the engine needs, forwards the origin's heartbeats and the connection's state,
//! and hands everything to the engine thread through a crossbeam channel and a mio `Waker`.
//!
//! The channel is bounded: when the engine falls behind, the thread blocks on it, so NATS's
//! own flow control slows the consumer down instead of anything being dropped here.

use std::sync::Arc;

use async_nats::jetstream::consumer::{push, DeliverPolicy};
use async_nats::jetstream::{self};
use bytes::Bytes;
use crossbeam_channel::Sender;
use futures_util::StreamExt;
use mio::Waker;
use tokio::sync::mpsc;

use super::wire::decode_heartbeat;
use super::NatsConfig;

/// Items the engine thread receives, in order.
#[derive(Debug)]
pub(super) enum Item {
    /// A record message body.
    Record(Bytes),
    /// The origin's heartbeat: its run and its last acknowledged seq.
    Heartbeat { run: u64, seq: u64 },
    /// The NATS connection went up (true) or down.
    Nats(bool),
    /// The stream no longer holds `want`: it starts at `first`.
    Truncated { want: u64, first: u64 },
    /// Something failed (already retried), for `/status`.
    Error(String),
    /// A forwarded command was taken by the origin (`Ok`), or not (or maybe not): the
    /// request body and why, for its client's answer.
    Forwarded(Result<(), (Bytes, String)>),
}

/// Requests from the engine thread.
#[derive(Debug)]
pub(super) enum Ctl {
    /// Deliver the stream again from this sequence (a gap or a new run).
    From(u64),
}

const RETRY: std::time::Duration = std::time::Duration::from_millis(250);

#[derive(Clone)]
struct Out {
    tx: Sender<Item>,
    waker: Arc<Waker>,
}

impl Out {
    fn send(&self, item: Item) -> bool {
        let ok = self.tx.send(item).is_ok();
        let _ = self.waker.wake();
        ok
    }
}

/// Runs the thread until the engine side hangs up.
pub(super) async fn follow(
    cfg: NatsConfig,
    tx: Sender<Item>,
    waker: Arc<Waker>,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
    fwd: mpsc::UnboundedReceiver<Bytes>,
) {
    let out = Out { tx, waker };
    let ev = out.clone();
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .name("tape-edge")
        .event_callback(move |e| {
            let ev = ev.clone();
            async move {
                match e {
                    async_nats::Event::Connected => {
                        ev.send(Item::Nats(true));
                    }
                    async_nats::Event::Disconnected => {
                        ev.send(Item::Nats(false));
                    }
                    _ => {}
                }
            }
        })
        .connect(cfg.url.as_str())
        .await;
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            out.send(Item::Error(format!("nats connect {}: {e}", cfg.url)));
            return;
        }
    };
    // Heartbeats: plain NATS, on their own task.
    let hb_out = out.clone();
    let hb_client = client.clone();
    let hb_subject = cfg.heartbeat_subject();
    tokio::spawn(async move {
        loop {
            match hb_client.subscribe(hb_subject.clone()).await {
                Ok(mut sub) => {
                    while let Some(m) = sub.next().await {
                        if let Some((run, seq)) = decode_heartbeat(&m.payload) {
                            if !hb_out.send(Item::Heartbeat { run, seq }) {
                                return;
                            }
                        }
                    }
                }
                Err(e) => {
                    hb_out.send(Item::Error(format!("subscribe heartbeats: {e}")));
                }
            }
            tokio::time::sleep(RETRY).await;
        }
    });
    tokio::spawn(forward(
        client.clone(),
        cfg.command_subject(),
        fwd,
        out.clone(),
    ));
    let js = jetstream::ContextBuilder::new()
        .timeout(std::time::Duration::from_secs(5))
        .build(client.clone());
    // The stream sequence (= record seq) to deliver from next.
    let mut from = 1u64;
    loop {
        while let Ok(Ctl::From(n)) = ctl.try_recv() {
            from = n;
        }
        let mut stream = match js.get_stream(&cfg.stream).await {
            Ok(s) => s,
            Err(e) => {
                out.send(Item::Error(format!("stream {}: {e}", cfg.stream)));
                if !wait(&mut ctl, &mut from).await {
                    return;
                }
                continue;
            }
        };
        let first = match stream.info().await {
            Ok(i) => i.state.first_sequence,
            Err(e) => {
                out.send(Item::Error(format!("stream {} info: {e}", cfg.stream)));
                if !wait(&mut ctl, &mut from).await {
                    return;
                }
                continue;
            }
        };
        // An empty stream reports first = last + 1: nothing is missing then.
        if first > from {
            let info = stream.cached_info();
            if info.state.messages > 0 {
                out.send(Item::Truncated { want: from, first });
                if !wait(&mut ctl, &mut from).await {
                    return;
                }
                continue;
            }
        }
        let policy = if from <= 1 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: from,
            }
        };
        let consumer = stream
            .create_consumer(push::OrderedConfig {
                deliver_subject: client.new_inbox(),
                filter_subject: cfg.subject.clone(),
                deliver_policy: policy,
                ..Default::default()
            })
            .await;
        let mut msgs = match consumer {
            Ok(c) => match c.messages().await {
                Ok(m) => m,
                Err(e) => {
                    out.send(Item::Error(format!("consumer messages: {e}")));
                    if !wait(&mut ctl, &mut from).await {
                        return;
                    }
                    continue;
                }
            },
            Err(e) => {
                out.send(Item::Error(format!("create consumer: {e}")));
                if !wait(&mut ctl, &mut from).await {
                    return;
                }
                continue;
            }
        };
        loop {
            tokio::select! {
                m = msgs.next() => match m {
                    Some(Ok(m)) => {
                        if let Ok(info) = m.info() {
                            from = info.stream_sequence + 1;
                        }
                        if !out.send(Item::Record(m.message.payload)) {
                            return;
                        }
                    }
                    Some(Err(e)) => {
                        out.send(Item::Error(format!("consumer: {e}")));
                        break;
                    }
                    None => break,
                },
                c = ctl.recv() => match c {
                    Some(Ctl::From(n)) => {
                        from = n;
                        break;
                    }
                    None => return,
                },
            }
        }
    }
}

/// Sends the clients' commands to the origin one at a time, in order, each awaiting its
/// answer (so a login is journaled before the order that follows it).
async fn forward(
    client: async_nats::Client,
    subject: String,
    mut fwd: mpsc::UnboundedReceiver<Bytes>,
    out: Out,
) {
    while let Some(body) = fwd.recv().await {
        let r = tokio::time::timeout(
            FORWARD_TIMEOUT,
            client.request(subject.clone(), body.clone()),
        )
        .await;
        let result = match r {
            Ok(Ok(m)) if m.payload.as_ref() == b"ok" => Ok(()),
            Ok(Ok(m)) => Err(format!(
                "the origin did not take it ({})",
                String::from_utf8_lossy(&m.payload)
            )),
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                Err("no origin serves commands now; it was not taken".to_owned())
            }
            Ok(Err(e)) => Err(format!("request to the origin failed ({e}); {UNKNOWN}")),
            Err(_) => Err(format!(
                "no answer from the origin in {FORWARD_TIMEOUT:?}; {UNKNOWN}"
            )),
        }
        .map_err(|why| (body, why));
        if !out.send(Item::Forwarded(result)) {
            return;
        }
    }
}

/// What a client is told when the origin may or may not have taken its command.
const UNKNOWN: &str = "its outcome is unknown: the `orders` channel or `get_orders` tells";

/// How long a forwarded command waits for the origin.
const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Waits a little before trying again, taking a new start the engine asks for; false when the
/// engine side is gone.
async fn wait(ctl: &mut mpsc::UnboundedReceiver<Ctl>, from: &mut u64) -> bool {
    tokio::select! {
        c = ctl.recv() => match c {
            Some(Ctl::From(n)) => { *from = n; true }
            None => false,
        },
        () = tokio::time::sleep(RETRY) => true,
    }
}

//! The origin's publisher: every record the node journals goes, in order, to a JetStream
//! stream, one message per record, whose stream sequence is the record's `seq` in the run.
//!
//! The engine thread calls [`Publisher::offer`] after the journal append: it encodes the
//! record and `try_send`s it to the publisher thread, never blocking. If that channel is
//! full (the thread starved of CPU), the record waits in an engine-side queue that is
//! retried first on the next offer and on every timer tick; nothing is dropped. Past
//! `max_backlog` records (NATS down for long) the publisher gives the run's log up, says so
//! in `/status` and stops its heartbeat: edges go stale and stay stale, never wrong.
//!
//! The thread publishes with `Nats-Expected-Last-Sequence: seq - 1` and
//! `Nats-Msg-Id: run-seq`, so the stream holds record `n` at sequence `n` or refuses it:
//! no duplicate, no hole, whatever reconnects and retries happen. Up to [`WINDOW`]
//! publishes are in flight; acknowledgements are taken in order. On any failure it asks the
//! stream where it stands (`last_sequence`) and publishes again from the next record. Each
//! run starts a fresh stream (the old run's records describe an engine that no longer
//! exists), so stream sequence 1 is the run's first record. While JetStream refuses to
//! create it (most often: `max_bytes` over what its file storage may reserve), the state is
//! `no_stream` with the server's answer, the records are held as while NATS is down (bounded
//! by `max_backlog`), and the thread asks again every [`RETRY`].

use std::collections::VecDeque;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_nats::jetstream::context::{CreateStreamError, CreateStreamErrorKind, PublishError};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::wire::{encode_heartbeat, WireRecord};
use super::NatsConfig;

/// Publishes in flight before the thread waits for the oldest acknowledgement.
const WINDOW: usize = 512;
/// Records the engine thread may hand over before its queue counts as full.
const CHANNEL: usize = 65_536;
/// Wait between attempts while NATS or the stream is unavailable.
const RETRY: std::time::Duration = std::time::Duration::from_millis(250);

struct Out {
    seq: u64,
    body: Bytes,
}

/// A client record an edge forwarded (checked by `command::decode`), to journal and apply.
#[derive(Debug)]
pub struct Command {
    /// Record kind (client).
    pub kind: u16,
    /// The client record, its connection already the edge's global id.
    pub payload: Vec<u8>,
    reply: Option<async_nats::Subject>,
}

/// The engine's answer to a command, back to the thread.
struct Answer {
    reply: async_nats::Subject,
    body: Bytes,
}

/// What the thread and the engine thread both see, for `/status`.
#[derive(Debug, Default)]
struct Shared {
    connected: AtomicBool,
    ever_connected: AtomicBool,
    /// Highest seq JetStream acknowledged.
    acked: AtomicU64,
    /// Records held by the thread, not yet acknowledged.
    backlog: AtomicU64,
    /// Failed publishes (each followed by a resync with the stream).
    errors: AtomicU64,
    /// The run's log was given up (see the module docs).
    broken: AtomicBool,
    /// JetStream refused the run's stream, and it was not created since.
    no_stream: AtomicBool,
    /// Edge commands taken, and refused as malformed.
    commands: AtomicU64,
    commands_refused: AtomicU64,
    last_error: Mutex<String>,
}

impl Shared {
    fn note(&self, e: impl std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut s) = self.last_error.lock() {
            *s = e.to_string();
        }
    }
}

/// The engine thread's end of the origin's publisher.
pub struct Publisher {
    tx: mpsc::Sender<Out>,
    run: u64,
    seq: u64,
    /// Records the channel did not take yet, oldest first.
    overflow: VecDeque<Out>,
    max_backlog: usize,
    shared: Arc<Shared>,
    cfg: NatsConfig,
    commands: crossbeam_channel::Receiver<Command>,
    answers: mpsc::UnboundedSender<Answer>,
    /// The state last reported to the hub, and since when.
    reported: (&'static str, u64),
    /// Disconnected when the publisher thread ends.
    done: crossbeam_channel::Receiver<()>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("run", &self.run)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Starts the publisher thread for run `run` (the hub's run id); edges' commands wake
    /// the engine's poll through `waker`.
    ///
    /// # Errors
    /// The thread or its runtime cannot be created.
    pub fn start(cfg: &NatsConfig, run: u64, waker: mio::Waker) -> std::io::Result<Publisher> {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let shared = Arc::new(Shared::default());
        let rt = super::runtime()?;
        let (c, s) = (cfg.clone(), Arc::clone(&shared));
        let (cmd_tx, commands) = crossbeam_channel::bounded(4096);
        let (answers, ans_rx) = mpsc::unbounded_channel();
        let inbox = Inbox {
            tx: cmd_tx,
            waker: Arc::new(waker),
            answers: ans_rx,
        };
        let (done_tx, done) = crossbeam_channel::bounded::<()>(0);
        std::thread::Builder::new()
            .name("tape-nats-pub".into())
            .spawn(move || {
                let _done = done_tx;
                rt.block_on(publish_loop(c, run, rx, s, inbox));
            })?;
        Ok(Publisher {
            tx,
            run,
            seq: 0,
            overflow: VecDeque::new(),
            max_backlog: cfg.max_backlog,
            shared,
            cfg: cfg.clone(),
            commands,
            answers,
            reported: ("", 0),
            done,
        })
    }

    /// The node stops: hands every record offered so far to the thread, which publishes what
    /// is left and ends, and waits for it at most `grace`. True when the stream has every
    /// record of the run; otherwise says on stderr which records it lacks (they are in the
    /// journal; edges see the origin go silent and stay stale).
    pub fn finish(mut self, grace: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + grace;
        while let Some(o) = self.overflow.pop_front() {
            match self.tx.try_send(o) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(o)) => {
                    if std::time::Instant::now() >= deadline {
                        self.overflow.push_front(o);
                        break;
                    }
                    self.overflow.push_front(o);
                    // Shutdown only: the thread takes records as fast as it can.
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(mpsc::error::TrySendError::Closed(_)) => break,
            }
        }
        let Publisher {
            tx, done, shared, ..
        } = self;
        drop(tx);
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let _ = done.recv_timeout(left);
        let acked = shared.acked.load(Ordering::Relaxed);
        if acked >= self.seq {
            return true;
        }
        eprintln!(
            "tape: nats: stopped with records {}..={} of run {} not in the stream {} ({}); \
             they are in the journal",
            acked + 1,
            self.seq,
            self.run,
            self.cfg.stream,
            if shared.broken.load(Ordering::Relaxed) {
                "the log was given up".to_owned()
            } else if shared.no_stream.load(Ordering::Relaxed) {
                shared
                    .last_error
                    .lock()
                    .map(|e| e.clone())
                    .unwrap_or_default()
            } else {
                "NATS did not take them in time".to_owned()
            }
        );
        false
    }

    /// The publication's state, when it changed since the last call (for the `status`
    /// channel's `log` entry): `connecting`, `live`, `no_stream` (JetStream refuses the
    /// run's stream: records held), `nats_down` (records held), `given_up`.
    pub fn take_log_status(&mut self, now: u64) -> Option<tape_core::server::LogStatus> {
        let (state, reason) = self.state();
        let acked = self.shared.acked.load(Ordering::Relaxed);
        if state == self.reported.0 {
            return None;
        }
        self.reported = (state, now);
        Some(tape_core::server::LogStatus {
            role: "origin",
            state,
            reason,
            applied: acked,
            origin: self.seq,
            since_ns: now,
        })
    }

    /// Where the publication stands, and why when it is not `live`.
    fn state(&self) -> (&'static str, String) {
        let s = &self.shared;
        let last_error = || s.last_error.lock().map(|e| e.clone()).unwrap_or_default();
        if s.broken.load(Ordering::Relaxed) {
            ("given_up", last_error())
        } else if s.connected.load(Ordering::Relaxed) && s.no_stream.load(Ordering::Relaxed) {
            ("no_stream", last_error())
        } else if s.connected.load(Ordering::Relaxed) {
            ("live", String::new())
        } else if s.ever_connected.load(Ordering::Relaxed) {
            let held = self.seq.saturating_sub(s.acked.load(Ordering::Relaxed));
            (
                "nats_down",
                format!(
                    "not connected to {}: {held} record(s) held until it is back",
                    self.cfg.url
                ),
            )
        } else {
            ("connecting", format!("connecting to {}", self.cfg.url))
        }
    }

    /// The next command an edge forwarded, if any.
    pub fn take_command(&mut self) -> Option<Command> {
        self.commands.try_recv().ok()
    }

    /// Answers a command: `Ok` once journaled and applied, or why it was not.
    pub fn answer(&self, cmd: Command, result: Result<(), String>) {
        let Some(reply) = cmd.reply else { return };
        let body = match result {
            Ok(()) => Bytes::from_static(b"ok"),
            Err(why) => Bytes::from(format!("refused: {why}")),
        };
        let _ = self.answers.send(Answer { reply, body });
    }

    /// Hands one journaled record over (after its append, before or after its apply).
    pub fn offer(&mut self, journal_seq: u64, recv: u64, source: u32, kind: u16, payload: &[u8]) {
        self.seq += 1;
        if self.shared.broken.load(Ordering::Relaxed) {
            return;
        }
        let mut body = Vec::with_capacity(super::HEADER_LEN + payload.len());
        WireRecord {
            run: self.run,
            seq: self.seq,
            journal_seq,
            recv,
            source,
            kind,
            payload,
        }
        .encode_into(&mut body);
        self.overflow.push_back(Out {
            seq: self.seq,
            body: Bytes::from(body),
        });
        self.flush();
    }

    /// Moves held records into the channel, oldest first; called on every offer and timer.
    pub fn flush(&mut self) {
        while let Some(o) = self.overflow.pop_front() {
            match self.tx.try_send(o) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(o)) => {
                    self.overflow.push_front(o);
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.give_up("the publisher thread ended");
                    return;
                }
            }
        }
        if self.overflow.len() > self.max_backlog {
            self.give_up("more records than nats.max_backlog are waiting for the thread");
        }
    }

    fn give_up(&mut self, why: &str) {
        if !self.shared.broken.swap(true, Ordering::Relaxed) {
            let msg = format!(
                "the log of run {} is given up at seq {}: {why}; edges stay stale until the \
                 origin starts a new run",
                self.run,
                self.shared.acked.load(Ordering::Relaxed) + 1
            );
            eprintln!("tape: nats: {msg}");
            self.shared.note(msg);
        }
        self.overflow.clear();
    }

    /// The figures of `/status`.
    pub fn status_json(&self) -> serde_json::Value {
        let s = &self.shared;
        let (state, reason) = self.state();
        serde_json::json!({
            "role": "origin",
            "state": state,
            "reason": reason,
            "url": self.cfg.url,
            "subject": self.cfg.subject,
            "stream": self.cfg.stream,
            "run": self.run,
            "connected": s.connected.load(Ordering::Relaxed),
            "published": self.seq,
            "acked": s.acked.load(Ordering::Relaxed),
            "backlog": s.backlog.load(Ordering::Relaxed) + self.overflow.len() as u64,
            "errors": s.errors.load(Ordering::Relaxed),
            "broken": s.broken.load(Ordering::Relaxed),
            "commands": s.commands.load(Ordering::Relaxed),
            "commands_refused": s.commands_refused.load(Ordering::Relaxed),
            "last_error": s.last_error.lock().map(|e| e.clone()).unwrap_or_default(),
        })
    }
}

type AckFuture = Pin<Box<dyn Future<Output = Result<PublishAck, PublishError>> + Send>>;

/// The thread's side of the edges' commands.
struct Inbox {
    tx: crossbeam_channel::Sender<Command>,
    waker: Arc<mio::Waker>,
    answers: mpsc::UnboundedReceiver<Answer>,
}

/// Takes the edges' commands: checked here, answered here when malformed, else handed to the
/// engine, whose answers go back as replies.
async fn serve_commands(
    client: async_nats::Client,
    subject: String,
    inbox: Inbox,
    sh: Arc<Shared>,
) {
    let Inbox {
        tx,
        waker,
        mut answers,
    } = inbox;
    let mut sub = loop {
        match client.subscribe(subject.clone()).await {
            Ok(s) => break s,
            Err(e) => {
                sh.note(format!("subscribe {subject}: {e}"));
                tokio::time::sleep(RETRY).await;
            }
        }
    };
    loop {
        tokio::select! {
            m = sub.next() => {
                let Some(m) = m else { return };
                match super::command::decode(&m.payload) {
                    Ok((kind, payload)) => {
                        sh.commands.fetch_add(1, Ordering::Relaxed);
                        let cmd = Command { kind, payload: payload.to_vec(), reply: m.reply.clone() };
                        if tx.try_send(cmd).is_err() {
                            sh.commands_refused.fetch_add(1, Ordering::Relaxed);
                            if let Some(r) = m.reply {
                                let _ = client.publish(r, Bytes::from_static(b"refused: the origin is busy")).await;
                            }
                        } else {
                            let _ = waker.wake();
                        }
                    }
                    Err(e) => {
                        sh.commands_refused.fetch_add(1, Ordering::Relaxed);
                        if let Some(r) = m.reply {
                            let _ = client.publish(r, Bytes::from(format!("refused: {e}"))).await;
                        }
                    }
                }
            }
            a = answers.recv() => {
                let Some(a) = a else { return };
                let _ = client.publish(a.reply, a.body).await;
            }
        }
    }
}

/// The thread: connect, start the run's stream, publish in order, heartbeat.
async fn publish_loop(
    cfg: NatsConfig,
    run: u64,
    mut rx: mpsc::Receiver<Out>,
    sh: Arc<Shared>,
    inbox: Inbox,
) {
    let ev = Arc::clone(&sh);
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .name("tape-origin")
        .event_callback(move |e| {
            let ev = Arc::clone(&ev);
            async move {
                match e {
                    async_nats::Event::Connected => {
                        ev.connected.store(true, Ordering::Relaxed);
                        ev.ever_connected.store(true, Ordering::Relaxed);
                    }
                    async_nats::Event::Disconnected => ev.connected.store(false, Ordering::Relaxed),
                    _ => {}
                }
            }
        })
        .connect(cfg.url.as_str())
        .await;
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            sh.note(format!("nats connect {}: {e}", cfg.url));
            sh.broken.store(true, Ordering::Relaxed);
            return;
        }
    };
    tokio::spawn(serve_commands(
        client.clone(),
        cfg.command_subject(),
        inbox,
        Arc::clone(&sh),
    ));
    let js = jetstream::ContextBuilder::new()
        .timeout(std::time::Duration::from_secs(5))
        .build(client.clone());
    let mut pending: VecDeque<Out> = VecDeque::new();
    // A new run: a fresh stream, so its sequence 1 is this run's first record.
    loop {
        let _ = js.delete_stream(&cfg.stream).await;
        let created = js
            .create_stream(stream::Config {
                name: cfg.stream.clone(),
                subjects: vec![cfg.subject.clone()],
                max_age: cfg.max_age,
                max_bytes: cfg.max_bytes,
                storage: stream::StorageType::File,
                discard: stream::DiscardPolicy::Old,
                ..Default::default()
            })
            .await;
        match created {
            Ok(_) => {
                if sh.no_stream.swap(false, Ordering::Relaxed) {
                    eprintln!(
                        "tape: nats: stream {} created; publishing run {run}",
                        cfg.stream
                    );
                }
                break;
            }
            Err(e) => {
                let why = create_refused(&cfg, &e);
                if !sh.no_stream.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "tape: nats: {why}; records are held (at most nats.max_backlog = {}) \
                         and the stream is asked for again every {} ms",
                        cfg.max_backlog,
                        RETRY.as_millis()
                    );
                }
                sh.note(why);
                absorb(&mut rx, &mut pending, RETRY).await;
                if over_backlog(
                    &cfg,
                    run,
                    &sh,
                    &pending,
                    " while the stream could not be created",
                ) {
                    return;
                }
            }
        }
    }
    let hb_subject = cfg.heartbeat_subject();
    let mut hb = tokio::time::interval(cfg.heartbeat);
    let mut inflight: VecDeque<AckFuture> = VecDeque::new();
    // pending[..sent] are in flight (in `inflight`, same order).
    let mut sent = 0usize;
    let mut resync = false;
    let mut open = true;
    loop {
        // Every path that holds records (a resync that waits, a failed publish, records
        // arriving faster than acknowledgements) comes back here.
        if sh.broken.load(Ordering::Relaxed) || over_backlog(&cfg, run, &sh, &pending, "") {
            return;
        }
        if resync {
            inflight.clear();
            sent = 0;
            match where_stream_is(&js, &cfg.stream, run).await {
                Ok(last) => {
                    while pending.front().is_some_and(|o| o.seq <= last) {
                        pending.pop_front();
                    }
                    sh.acked.fetch_max(last, Ordering::Relaxed);
                    if pending.front().is_some_and(|o| o.seq > last + 1) {
                        sh.note(format!(
                            "stream {} lost records: it ends at {last}, the next record is {}",
                            cfg.stream,
                            pending.front().map_or(0, |o| o.seq)
                        ));
                        sh.broken.store(true, Ordering::Relaxed);
                        return;
                    }
                    resync = false;
                }
                Err(Resync::Foreign(e)) => {
                    eprintln!("tape: nats: {e}; the log of run {run} is given up");
                    sh.note(e);
                    sh.broken.store(true, Ordering::Relaxed);
                    return;
                }
                Err(Resync::Retry(e)) => {
                    sh.note(e);
                    absorb(&mut rx, &mut pending, RETRY).await;
                    continue;
                }
            }
        }
        while inflight.len() < WINDOW && sent < pending.len() {
            let o = &pending[sent];
            let msg = PublishMessage::build()
                .payload(o.body.clone())
                .message_id(format!("{run}-{}", o.seq))
                .expected_last_sequence(o.seq - 1);
            match js.send_publish(cfg.subject.clone(), msg).await {
                Ok(f) => {
                    inflight.push_back(f.into_future());
                    sent += 1;
                }
                Err(e) => {
                    sh.note(format!("publish seq {}: {e}", o.seq));
                    resync = true;
                    break;
                }
            }
        }
        if resync {
            absorb(&mut rx, &mut pending, RETRY).await;
            continue;
        }
        tokio::select! {

            r = rx.recv(), if open => match r {
                Some(o) => {
                    pending.push_back(o);
                    while let Ok(o) = rx.try_recv() {
                        pending.push_back(o);
                    }
                }
                None => open = false,
            },
            ack = async { inflight.front_mut().expect("guarded").await }, if !inflight.is_empty() => {
                inflight.pop_front();
                sent -= 1;
                let o = pending.pop_front().expect("an ack has its record");
                match ack {
                    Ok(a) if a.sequence == o.seq => {
                        sh.acked.store(o.seq, Ordering::Relaxed);
                    }
                    Ok(a) => {
                        sh.note(format!("record {} stored at stream sequence {}", o.seq, a.sequence));
                        pending.push_front(o);
                        sent += 1;
                        resync = true;
                    }
                    Err(e) => {
                        sh.note(format!("ack of seq {}: {e}", o.seq));
                        pending.push_front(o);
                        sent += 1;
                        resync = true;
                    }
                }
            },
            _ = hb.tick() => {
                let acked = sh.acked.load(Ordering::Relaxed);
                let _ = client
                    .publish(hb_subject.clone(), Bytes::copy_from_slice(&encode_heartbeat(run, acked)))
                    .await;
            },
            () = tokio::time::sleep(RETRY), if !open && pending.is_empty() => return,
        }
    }
}

/// Publishes the count of held records; past `max_backlog` gives the run's log up (said in
/// `/status` and on stderr) and returns true.
fn over_backlog(
    cfg: &NatsConfig,
    run: u64,
    sh: &Shared,
    pending: &VecDeque<Out>,
    while_: &str,
) -> bool {
    sh.backlog.store(pending.len() as u64, Ordering::Relaxed);
    if pending.len() <= cfg.max_backlog {
        return false;
    }
    let msg = format!(
        "more than nats.max_backlog = {} records unacknowledged{while_}: the log of run {run} \
         is given up",
        cfg.max_backlog
    );
    eprintln!("tape: nats: {msg}");
    sh.note(msg);
    sh.broken.store(true, Ordering::Relaxed);
    true
}

/// Why JetStream did not create the run's stream, with what the operator can do when the
/// server says what is wrong.
fn create_refused(cfg: &NatsConfig, e: &CreateStreamError) -> String {
    let hint = match e.kind() {
        CreateStreamErrorKind::JetStream(j)
            if [
                ErrorCode::STORAGE_RESOURCES_EXCEEDED,
                ErrorCode::INSUFFICIENT_RESOURCES,
            ]
            .contains(&j.error_code()) =>
        {
            format!(
                " (the server cannot reserve nats.max_mib = {} MiB for it: its JetStream \
                 storage, max_file_store, is by default three quarters of its disk's free \
                 space when it starts; lower nats.max_mib or give JetStream more)",
                cfg.max_bytes >> 20
            )
        }
        CreateStreamErrorKind::JetStreamUnavailable => {
            " (is JetStream enabled on the server: nats-server -js?)".to_owned()
        }
        _ => String::new(),
    };
    format!("create stream {}: {e}{hint}", cfg.stream)
}

/// The stream's last sequence, once its last message is checked to be this run's record of
/// that seq (anything else there — another publisher on the subject — would make "stored up
/// to N" a lie: the log is given up rather than continued wrong).
async fn where_stream_is(js: &jetstream::Context, name: &str, run: u64) -> Result<u64, Resync> {
    let retry = Resync::Retry;
    let mut s = js
        .get_stream(name)
        .await
        .map_err(|e| retry(format!("get stream {name}: {e}")))?;
    let info = s
        .info()
        .await
        .map_err(|e| retry(format!("stream {name} info: {e}")))?;
    let last = info.state.last_sequence;
    if last == 0 {
        return Ok(0);
    }
    let m = s
        .get_raw_message(last)
        .await
        .map_err(|e| retry(format!("stream {name} message {last}: {e}")))?;
    match WireRecord::decode(&m.payload) {
        Ok(r) if r.run == run && r.seq == last => Ok(last),
        _ => Err(Resync::Foreign(format!(
            "stream {name} holds at {last} a message that is not record {last} of run {run}: \
             something else publishes on the subject"
        ))),
    }
}

/// Why the stream's position is not known.
enum Resync {
    /// NATS or the stream is not reachable now: try again.
    Retry(String),
    /// The stream holds something that is not this run's log: give it up.
    Foreign(String),
}

/// Waits `d`, taking the records that arrive meanwhile.
async fn absorb(rx: &mut mpsc::Receiver<Out>, pending: &mut VecDeque<Out>, d: std::time::Duration) {
    let until = tokio::time::Instant::now() + d;
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Some(o) => pending.push_back(o),
                None => { tokio::time::sleep_until(until).await; return; }
            },
            () = tokio::time::sleep_until(until) => return,
        }
    }
}

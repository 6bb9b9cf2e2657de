//! Replay on demand: `GET /replay` (a WebSocket) and `GET /replay.ndjson` (chunked HTTP) play
//! a recorded journal to one client through a private [`Engine`](tape_core::engine::Engine) and
//! [`Hub`](tape_core::server::Hub), so the client gets the live protocol (`subscribed`,
//! snapshots, updates with the recorded `recv_ns`) for a past range.
//!
//! Who does what:
//! - the engine thread (`node::Node`) only checks the request (path, query, journal name,
//!   authorization, the session bound), answers a refusal itself with its HTTP status, and
//!   otherwise [detaches](crate::net::NetServer::detach) the socket and hands it to
//!   [`Replays::start`];
//! - each session runs on its own thread (`worker`), at the lowest scheduling priority
//!   (nice 19), with its own mio `Poll` on the socket: it reads the journal, feeds its private
//!   engine and hub, and writes what the client's socket accepts, never more (a client that
//!   reads slowly slows its replay, not anyone else and not memory).
//!
//! - `params`: the query, parsed and bounded.
//! - `session`: the private engine and hub, fed record by record.
//! - `sink`: the two wire formats (WebSocket frames, NDJSON chunks) over a non-blocking socket.
//! - `worker`: the thread: pacing, reading the client, the end of the replay.

mod params;
mod session;
mod sink;
mod worker;

pub use params::{parse_time, valid_name, ParamError, ReplayParams, MAX_NAME_BYTES};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tape_core::auth::Role;
use tape_core::engine::EngineConfig;
use tape_core::server::HubConfig;

/// `[replay]`: which journals may be replayed, by how many clients at once, and by whom.
#[derive(Debug, Clone, Default)]
pub struct ReplayConfig {
    /// The journals clients may name, `(name, directory)`; a name is all a client gives.
    pub journals: Vec<(String, PathBuf)>,
    /// Replay sessions at once at most; one more is answered 503.
    pub max_sessions: usize,
    /// Market data may be replayed without a token. Private channels always need one (and
    /// show only the token's user's own data).
    pub public: bool,
    /// Niceness of the replay threads (0..=19; 19 = run only when nothing else wants the CPU).
    pub nice: i32,
}

impl ReplayConfig {
    /// The directory of the journal called `name`, if configured.
    pub fn journal_dir(&self, name: &str) -> Option<&PathBuf> {
        self.journals
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d)
    }
}

/// How a replay is written to its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayWire {
    /// A WebSocket; the worker writes the `101` with this `Sec-WebSocket-Accept`.
    WebSocket {
        /// The accept key of the upgrade request.
        accept: String,
    },
    /// Newline-delimited JSON over a chunked HTTP response.
    Ndjson,
}

/// Counters of replay sessions since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Sessions running now.
    pub active: usize,
    /// Sessions started.
    pub started: u64,
    /// Requests refused with 503 (too many sessions).
    pub refused_busy: u64,
    /// Sessions that ended because the journal could not be read (damage, open failure).
    pub journal_errors: u64,
}

#[derive(Debug, Default)]
struct Shared {
    active: AtomicUsize,
    started: AtomicU64,
    refused_busy: AtomicU64,
    journal_errors: AtomicU64,
    /// Set when the node stops: every session ends at its next wake-up.
    stop: AtomicBool,
}

/// The engine thread's handle on replay sessions: the bound, the counters, the stop flag.
#[derive(Debug)]
pub struct Replays {
    cfg: ReplayConfig,
    engine: EngineConfig,
    hub: HubConfig,
    auth: Option<tape_core::auth::AuthConfig>,
    shared: Arc<Shared>,
}

/// One session's claim on the bound; released when the worker thread ends (or never starts).
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Replays {
    /// Sessions will run engines and hubs configured like the live ones (limits, auth).
    pub fn new(
        cfg: ReplayConfig,
        engine: EngineConfig,
        hub: HubConfig,
        auth: Option<tape_core::auth::AuthConfig>,
    ) -> Replays {
        // Inside a replay, `replay` reads what `viewer` reads (its user's own private
        // channels, of the recording): the sessions' authenticator grants it.
        let auth = auth.map(|mut a| {
            for u in &mut a.users {
                if u.roles.contains(Role::Replay) {
                    u.roles = u.roles.with(Role::Viewer);
                }
            }
            a
        });
        Replays {
            cfg,
            engine,
            hub,
            auth,
            shared: Arc::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ReplayConfig {
        &self.cfg
    }

    /// True when another session may start now.
    pub fn has_room(&self) -> bool {
        let ok = self.shared.active.load(Ordering::Acquire) < self.cfg.max_sessions;
        if !ok {
            self.shared.refused_busy.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Starts a session on its own thread for `sock` (detached from the server, its request
    /// read, nothing answered yet). Returns false when over the bound or the thread could not
    /// be spawned (the socket is then dropped).
    pub fn start(
        &self,
        sock: mio::net::TcpStream,
        wire: ReplayWire,
        params: ReplayParams,
        dir: PathBuf,
    ) -> bool {
        let prev = self.shared.active.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(Arc::clone(&self.shared));
        if prev >= self.cfg.max_sessions {
            self.shared.refused_busy.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.shared.started.fetch_add(1, Ordering::Relaxed);
        let job = worker::Job {
            sock,
            wire,
            params,
            dir,
            engine: self.engine.clone(),
            hub: self.hub.clone(),
            auth: self.auth.clone(),
            nice: self.cfg.nice,
            shared: Arc::clone(&self.shared),
        };
        std::thread::Builder::new()
            .name("tape-replay".into())
            .spawn(move || {
                let _slot = slot;
                worker::run(job);
            })
            .is_ok()
    }

    /// Figures for `/status`.
    pub fn stats(&self) -> ReplayStats {
        ReplayStats {
            active: self.shared.active.load(Ordering::Acquire),
            started: self.shared.started.load(Ordering::Relaxed),
            refused_busy: self.shared.refused_busy.load(Ordering::Relaxed),
            journal_errors: self.shared.journal_errors.load(Ordering::Relaxed),
        }
    }

    /// Asks every running session to end (the node is stopping).
    pub fn stop_all(&self) {
        self.shared.stop.store(true, Ordering::Release);
    }
}

impl Drop for Replays {
    fn drop(&mut self) {
        self.stop_all();
    }
}

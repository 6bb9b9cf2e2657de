//! `tape replay`'s two-thread loop: the caller's thread reads the journal and decodes each
//! record ([`Intake`]), a second thread applies them to the engine
//! ([`Engine::apply_intaken`]), in record order, batch by batch.
//!
//! The engine is the same single-threaded state machine; only the reading and decoding of
//! the next records overlap with the applying of the previous ones. Both halves are the code
//! [`Engine::handle_stored`] runs, so the outputs, the counts and the digest are the ones a
//! one-thread replay gives (the replay tests hold both equal).
//!
//! A decoded message borrows the decoder's level buffers, so the intake copies each
//! message into the batch (a diff's levels into one vector per batch, a REST snapshot's into
//! a vector of its own, sized once), and the records the engine takes whole (source
//! definitions, links, the desk's records) with their payload bytes. Batches go back to the
//! intake once applied, so market frames cost no allocation once the batches have grown to
//! their size. A batch is handed over at 128 records, or sooner at 4,096 levels or 64 KiB of
//! payload bytes, so the batches in flight hold about eight batches' worth whatever the
//! journal holds (a snapshot's vector is freed once applied).

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{bounded, Receiver, RecvError, Sender, TryRecvError};
use tape_core::engine::{AdoptError, Engine, Intake, Intaken};
use tape_core::input::{Nanos, SourceId};
use tape_core::instrument::{Instrument, Market};
use tape_core::msg::{BookTicker, DepthSnapshot, DepthUpdate, Level, MarketMsg, Trade};
use tape_core::output::Error;
use tape_journal::{JournalError, JournalReader};

/// Records per batch: enough that a hand-over costs nothing next to the records, few enough
/// that a batch's messages and levels stay in the cache until the engine applies them.
const BATCH: usize = 128;

/// Batches in flight: the intake can run this far ahead of the engine.
const BATCHES: usize = 8;

/// Levels after which a batch is handed over before it has [`BATCH`] records: a run of deep
/// snapshots would otherwise make each of the batches hold a hundred of them (the memory a
/// one-thread replay never holds), and the engine would wait for all of them before it
/// applies the first.
const BATCH_LEVELS: usize = 4096;

/// Payload bytes (of the records the engine takes whole) after which a batch is handed over,
/// for the same reasons.
const BATCH_BYTES: usize = 1 << 16;

/// Where a message's levels sit in its batch's level vector: bids, then asks.
#[derive(Debug, Clone, Copy)]
struct Levels {
    at: usize,
    bids: usize,
    asks: usize,
}

impl Levels {
    fn keep(levels: &mut Vec<Level>, bids: &[Level], asks: &[Level]) -> Levels {
        let at = levels.len();
        levels.extend_from_slice(bids);
        levels.extend_from_slice(asks);
        Levels {
            at,
            bids: bids.len(),
            asks: asks.len(),
        }
    }

    /// The bids and asks, from the batch's levels (`None` only if `levels` is not the
    /// vector they were kept in).
    fn get(self, levels: &[Level]) -> Option<(&[Level], &[Level])> {
        let all = levels.get(self.at..self.at + self.bids + self.asks)?;
        Some(all.split_at(self.bids))
    }
}

/// Which of a batch's tables holds a record's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Depth,
    BookTicker,
    Trade,
    Other,
}

/// One record of a batch. Its message is the next one of its [`Table`]: the records of a
/// table are applied in the order they were taken in, so no index is kept.
#[derive(Debug, Clone, Copy)]
struct Rec {
    recv_ns: u64,
    source: u32,
    kind: u16,
    market: Market,
    table: Table,
}

/// The rare rest, owned: what [`Intaken`] says.
#[derive(Debug)]
enum Other {
    /// An instrument the intake registered, for [`Engine::adopt_instrument`] (its record's
    /// fields are not used).
    Adopt(Instrument),
    Frame(MarketMsg<'static>, Levels),
    /// A REST snapshot, its levels in a vector of their own: a thousand levels a side, few
    /// and far between, would otherwise grow the batch's level vector (every growth a copy
    /// into pages touched for the first time) for one record.
    Snapshot(DepthSnapshot<'static>, Vec<Level>, Levels),
    Failed(Error),
    /// Taken whole by the engine; its payload is in the batch's bytes.
    Whole(Range<usize>),
}

/// Records taken in, for the engine's thread: the two hot message kinds and depth diffs
/// (their levels in one vector) in tables of their own, so a record costs a few dozen bytes
/// to hand over, and everything else in [`Other`].
#[derive(Debug, Default)]
struct Batch {
    recs: Vec<Rec>,
    depths: Vec<(DepthUpdate<'static>, Levels)>,
    book_tickers: Vec<BookTicker>,
    trades: Vec<Trade>,
    others: Vec<Other>,
    levels: Vec<Level>,
    /// Levels of the batch's snapshots (in their own vectors), counted against
    /// [`BATCH_LEVELS`] with `levels`.
    snapshot_levels: usize,
    bytes: Vec<u8>,
    /// The reader's error after the last record: the journal ends here.
    end: Option<JournalError>,
}

impl Batch {
    fn with_capacity(n: usize) -> Batch {
        Batch {
            recs: Vec::with_capacity(n),
            depths: Vec::with_capacity(n),
            book_tickers: Vec::with_capacity(n),
            trades: Vec::with_capacity(n),
            others: Vec::new(),
            levels: Vec::with_capacity(16 * n),
            snapshot_levels: 0,
            bytes: Vec::new(),
            end: None,
        }
    }

    fn clear(&mut self) {
        self.recs.clear();
        self.depths.clear();
        self.book_tickers.clear();
        self.trades.clear();
        self.others.clear();
        self.levels.clear();
        self.snapshot_levels = 0;
        self.bytes.clear();
        self.end = None;
        // One record far larger than a batch's share (a depth message thousands of levels
        // deep) leaves its vector that large: the excess is freed, so the batches in flight
        // hold about [`BATCHES`] batches' worth, whatever the journal.
        if self.levels.capacity() > 2 * BATCH_LEVELS {
            self.levels.shrink_to(BATCH_LEVELS);
        }
        if self.bytes.capacity() > 2 * BATCH_BYTES {
            self.bytes.shrink_to(BATCH_BYTES);
        }
    }

    /// Whether the batch is handed over as it is: [`BATCH`] records, or [`BATCH_LEVELS`]
    /// levels, or [`BATCH_BYTES`] bytes.
    fn is_full(&self) -> bool {
        self.recs.len() >= BATCH
            || self.levels.len() + self.snapshot_levels >= BATCH_LEVELS
            || self.bytes.len() >= BATCH_BYTES
    }

    /// Copies what `intaken` borrows into the batch: a record of its table.
    #[inline]
    fn take(&mut self, intaken: Intaken<'_>, payload: &[u8]) -> (Market, Table) {
        // A failed or whole record's market is not read: the engine finds it again.
        match intaken {
            Intaken::Frame(market, MarketMsg::Depth(d)) => {
                let levels = Levels::keep(&mut self.levels, d.bids, d.asks);
                self.depths.push((own_depth(&d, &[], &[]), levels));
                (market, Table::Depth)
            }
            Intaken::Frame(market, MarketMsg::BookTicker(t)) => {
                self.book_tickers.push(t);
                (market, Table::BookTicker)
            }
            Intaken::Frame(market, MarketMsg::Trade(t)) => {
                self.trades.push(t);
                (market, Table::Trade)
            }
            Intaken::Frame(market, msg) => {
                let (msg, levels) = own_msg(msg, &mut self.levels);
                self.others.push(Other::Frame(msg, levels));
                (market, Table::Other)
            }
            Intaken::Snapshot(market, s) => {
                let mut own = Vec::with_capacity(s.bids.len() + s.asks.len());
                let levels = Levels::keep(&mut own, s.bids, s.asks);
                self.snapshot_levels += own.len();
                self.others
                    .push(Other::Snapshot(own_snapshot(&s, &[], &[]), own, levels));
                (market, Table::Other)
            }
            Intaken::Failed(e) => {
                self.others.push(Other::Failed(e));
                (Market::Spot, Table::Other)
            }
            Intaken::Whole => {
                let at = self.bytes.len();
                self.bytes.extend_from_slice(payload);
                self.others.push(Other::Whole(at..self.bytes.len()));
                (Market::Spot, Table::Other)
            }
        }
    }
}

fn own_snapshot<'a>(
    s: &DepthSnapshot<'_>,
    bids: &'a [Level],
    asks: &'a [Level],
) -> DepthSnapshot<'a> {
    DepthSnapshot {
        instrument: s.instrument,
        last_update_id: s.last_update_id,
        event_time_ms: s.event_time_ms,
        transact_time_ms: s.transact_time_ms,
        bids,
        asks,
    }
}

fn own_depth<'a>(d: &DepthUpdate<'_>, bids: &'a [Level], asks: &'a [Level]) -> DepthUpdate<'a> {
    DepthUpdate {
        instrument: d.instrument,
        event_time_ms: d.event_time_ms,
        transact_time_ms: d.transact_time_ms,
        first_update_id: d.first_update_id,
        final_update_id: d.final_update_id,
        prev_final_update_id: d.prev_final_update_id,
        bids,
        asks,
    }
}

/// `msg` with its levels moved into `levels`, and where they went.
fn own_msg(msg: MarketMsg<'_>, levels: &mut Vec<Level>) -> (MarketMsg<'static>, Levels) {
    let none = Levels {
        at: 0,
        bids: 0,
        asks: 0,
    };
    let owned = match msg {
        MarketMsg::Depth(d) => {
            let kept = Levels::keep(levels, d.bids, d.asks);
            return (MarketMsg::Depth(own_depth(&d, &[], &[])), kept);
        }
        MarketMsg::Snapshot(s) => {
            let kept = Levels::keep(levels, s.bids, s.asks);
            return (MarketMsg::Snapshot(own_snapshot(&s, &[], &[])), kept);
        }
        MarketMsg::Trade(t) => MarketMsg::Trade(t),
        MarketMsg::AggTrade(t) => MarketMsg::AggTrade(t),
        MarketMsg::BookTicker(t) => MarketMsg::BookTicker(t),
        MarketMsg::Ticker(t) => MarketMsg::Ticker(t),
        MarketMsg::Unknown => MarketMsg::Unknown,
    };
    (owned, none)
}

/// `msg` with its levels back from the batch (`None` if they are not there).
fn lend_msg<'a>(
    msg: &MarketMsg<'static>,
    kept: Levels,
    levels: &'a [Level],
) -> Option<MarketMsg<'a>> {
    let (bids, asks) = kept.get(levels)?;
    Some(match msg {
        MarketMsg::Depth(d) => MarketMsg::Depth(own_depth(d, bids, asks)),
        MarketMsg::Snapshot(s) => MarketMsg::Snapshot(own_snapshot(s, bids, asks)),
        MarketMsg::Trade(t) => MarketMsg::Trade(*t),
        MarketMsg::AggTrade(t) => MarketMsg::AggTrade(*t),
        MarketMsg::BookTicker(t) => MarketMsg::BookTicker(*t),
        MarketMsg::Ticker(t) => MarketMsg::Ticker(*t),
        MarketMsg::Unknown => MarketMsg::Unknown,
    })
}

/// The intake (the caller's thread): reads `reader` to its end (or first error) in batches.
fn intake_loop(
    mut reader: JournalReader,
    mut intake: Intake,
    full: &Sender<Batch>,
    free: &Receiver<Batch>,
) {
    let mut made = 0;
    loop {
        let mut batch = match free.try_recv() {
            Ok(b) => b,
            Err(_) if made < BATCHES => {
                made += 1;
                Batch::with_capacity(BATCH)
            }
            Err(_) => match recv_spinning(free) {
                Ok(b) => b,
                // The engine's side stopped: nothing more is wanted.
                Err(_) => return,
            },
        };
        batch.clear();
        let done = fill(&mut batch, &mut reader, &mut intake);
        if full.send(batch).is_err() || done {
            return;
        }
    }
}

/// Takes records from `reader` into `batch` until it [is full](Batch::is_full); returns
/// whether the journal ended (or the reader failed: its error is the batch's `end`).
#[inline]
fn fill(batch: &mut Batch, reader: &mut JournalReader, intake: &mut Intake) -> bool {
    while !batch.is_full() {
        let rec = match reader.next() {
            None => return true,
            Some(Err(e)) => {
                batch.end = Some(e);
                return true;
            }
            Some(Ok(rec)) => rec,
        };
        let (intaken, registered) = intake.intake(SourceId(rec.source), rec.kind, rec.payload);
        for inst in registered {
            // Before the record that registered them: the engine must know them then.
            batch.others.push(Other::Adopt(inst.clone()));
            batch.recs.push(Rec {
                recv_ns: rec.recv_ns,
                source: rec.source,
                kind: rec.kind,
                market: inst.market,
                table: Table::Other,
            });
        }
        let (market, table) = batch.take(intaken, rec.payload);
        batch.recs.push(Rec {
            recv_ns: rec.recv_ns,
            source: rec.source,
            kind: rec.kind,
            market,
            table,
        });
    }
    false
}

/// Why [`run`] stopped before the journal's end.
#[derive(Debug)]
pub enum Stop {
    /// The reader's error (the records before it were applied).
    Journal(JournalError),
    /// The engine refused an instrument the intake registered: the two halves disagree.
    Adopt(AdoptError),
    /// The two threads' hand-over went wrong (a bug): what went wrong.
    Internal(&'static str),
    /// The engine's thread could not be started (nothing was read).
    Thread(std::io::Error),
}

/// The name of the thread that applies the records (the engine's).
pub const ENGINE_THREAD: &str = "tape-engine";

/// Replays `reader` through `engine` with `intake` (built from the engine's configuration,
/// [`Intake::new`], with nothing taken in yet): the caller's thread reads and decodes, a
/// second thread ([`ENGINE_THREAD`]) applies. `each` runs on that thread after every applied
/// record with the engine and the record's receive time, as a one-thread replay's loop body
/// would after `handle_stored`.
///
/// The caller's thread takes the intake because it has work from the first moment: the
/// reading and decoding start at once, while the new thread is still being started, and
/// the engine, which waits for batches anyway, takes the start-up's delay instead.
///
/// The new thread may run on any CPU the caller may use but the one the caller is on
/// ([`beside`]). Linux starts a new thread on its parent's CPU and moves it to an idle one
/// only at a later balancing tick, milliseconds away on an idle machine: until then the two
/// halves share one CPU and take turns, longer than a short journal's whole replay. Where
/// the caller may use one CPU only, or the system will not say, the thread is left where
/// Linux puts it.
///
/// # Errors
/// The first error the reader returned, an instrument the engine could not adopt, or a
/// thread the system would not start.
///
/// # Panics
/// A panic on the engine's thread is resumed on the caller's.
pub fn run(
    reader: JournalReader,
    intake: Intake,
    engine: &mut Engine,
    mut each: impl FnMut(&mut Engine, u64) + Send,
) -> Result<(), Stop> {
    let (full_tx, full_rx) = bounded::<Batch>(BATCHES);
    let (free_tx, free_rx) = bounded::<Batch>(BATCHES);
    let cpus = beside();
    // How the engine's side ended (its panic caught), and `done` once that is written.
    let mut outcome: Option<std::thread::Result<Result<(), Stop>>> = None;
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (outcome, done) = (&mut outcome, &done);
        // Named, so `top -H` and profilers tell the two halves apart. Its channel ends are
        // dropped on every way out, a panic's included, so the intake stops when the engine
        // does.
        std::thread::Builder::new()
            .name(ENGINE_THREAD.into())
            .spawn_scoped(scope, move || {
                move_to(cpus);
                let applied = catch_unwind(AssertUnwindSafe(move || -> Result<(), Stop> {
                    while let Ok(mut batch) = recv_spinning(&full_rx) {
                        apply(engine, &mut each, &mut batch)?;
                        // The intake may have finished: a batch it will not reuse is dropped.
                        let _ = free_tx.send(batch);
                    }
                    Ok(())
                }));
                *outcome = Some(applied);
                done.store(true, Ordering::Release);
            })
            .map_err(Stop::Thread)?;
        intake_loop(reader, intake, &full_tx, &free_rx);
        // The engine's side ends once it has applied every batch sent.
        drop(full_tx);
        drop(free_rx);
        // Its last records are applied within a few batches' time: waiting for them by
        // polling, as the engine waits for batches, keeps this thread off a parked wake-up.
        // The scope's end then waits only for the closure to return, not for the thread's
        // exit (its stack and thread-locals released, ~50 µs on the hosts measured), which
        // `join` would wait for.
        wait_spinning(done);
        Ok(())
    })?;
    match outcome {
        Some(Ok(result)) => result,
        Some(Err(panic)) => std::panic::resume_unwind(panic),
        None => Err(Stop::Internal("the engine's thread ended without a result")),
    }
}

/// The CPUs the calling thread may use but the one it is on now, or `None` where that
/// leaves none (or the system does not say).
#[cfg(target_os = "linux")]
fn beside() -> Option<nix::sched::CpuSet> {
    use nix::sched::{sched_getaffinity, sched_getcpu};
    let here = sched_getcpu().ok()?;
    let allowed = sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok()?;
    others(&allowed, here)
}

/// `allowed` less `here`, if any CPU is left.
#[cfg(target_os = "linux")]
fn others(allowed: &nix::sched::CpuSet, here: usize) -> Option<nix::sched::CpuSet> {
    let mut rest = *allowed;
    rest.unset(here).ok()?;
    (rest != nix::sched::CpuSet::new()).then_some(rest)
}

/// Restricts the calling thread to `cpus`; a refusal leaves it where it is (it only runs
/// slower).
#[cfg(target_os = "linux")]
fn move_to(cpus: Option<nix::sched::CpuSet>) {
    if let Some(cpus) = cpus {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &cpus);
    }
}

#[cfg(not(target_os = "linux"))]
fn beside() -> Option<()> {
    None
}

#[cfg(not(target_os = "linux"))]
fn move_to(_: Option<()>) {}

/// Applies a batch's records to `engine` in their order, `each` after every one; then the
/// reader's error that ended the journal in this batch, if any.
#[inline]
fn apply(
    engine: &mut Engine,
    each: &mut impl FnMut(&mut Engine, u64),
    b: &mut Batch,
) -> Result<(), Stop> {
    let (mut depths, mut tickers) = (b.depths.iter(), b.book_tickers.iter());
    let (mut trades, mut others) = (b.trades.iter(), b.others.drain(..));
    for rec in &b.recs {
        let mut payload: &[u8] = &[];
        // A snapshot's levels, held until it is applied (then freed).
        let snapshot: Vec<Level>;
        let intaken = match rec.table {
            Table::Depth => depths.next().and_then(|(d, kept)| {
                let (bids, asks) = kept.get(&b.levels)?;
                let msg = MarketMsg::Depth(own_depth(d, bids, asks));
                Some(Intaken::Frame(rec.market, msg))
            }),
            Table::BookTicker => tickers
                .next()
                .map(|t| Intaken::Frame(rec.market, MarketMsg::BookTicker(*t))),
            Table::Trade => trades
                .next()
                .map(|t| Intaken::Frame(rec.market, MarketMsg::Trade(*t))),
            Table::Other => match others.next() {
                Some(Other::Adopt(inst)) => {
                    engine.adopt_instrument(&inst).map_err(Stop::Adopt)?;
                    continue;
                }
                Some(Other::Frame(msg, kept)) => {
                    lend_msg(&msg, kept, &b.levels).map(|msg| Intaken::Frame(rec.market, msg))
                }
                Some(Other::Snapshot(s, own, kept)) => {
                    snapshot = own;
                    kept.get(&snapshot).map(|(bids, asks)| {
                        Intaken::Snapshot(rec.market, own_snapshot(&s, bids, asks))
                    })
                }
                Some(Other::Failed(e)) => Some(Intaken::Failed(e)),
                Some(Other::Whole(range)) => b.bytes.get(range).map(|p| {
                    payload = p;
                    Intaken::Whole
                }),
                None => None,
            },
        };
        // Every record has its message, levels and bytes: the tables are filled together.
        // Anything else is a bug, and stops the replay.
        let Some(intaken) = intaken else {
            return Err(Stop::Internal("a record without its message"));
        };
        // Errors are counted by the engine and appear in the summary; replay goes on.
        let _ = engine.apply_intaken(
            Nanos(rec.recv_ns),
            SourceId(rec.source),
            rec.kind,
            payload,
            intaken,
        );
        each(engine, rec.recv_ns);
    }
    drop(others);
    match b.end.take() {
        Some(e) => Err(Stop::Journal(e)),
        None => Ok(()),
    }
}

/// Polls `done` as [`recv_spinning`] polls a channel; returns when it is set, or after as
/// many polls (the caller then waits some other way).
fn wait_spinning(done: &AtomicBool) {
    spin_until(|| done.load(Ordering::Acquire).then_some(()));
}

/// Calls `poll` until it gives a value, at most [`SPINS`] times, yielding the CPU every
/// [`SPINS_PER_YIELD`] calls; `None` if it never did.
#[inline]
fn spin_until<T>(mut poll: impl FnMut() -> Option<T>) -> Option<T> {
    for i in 1..=SPINS {
        if let Some(v) = poll() {
            return Some(v);
        }
        if i % SPINS_PER_YIELD == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
    None
}

/// Polls before a waiting thread parks: waking a parked thread costs tens of microseconds,
/// on a virtual machine hundreds (several batches' worth of records), this many polls a few.
const SPINS: u32 = 1 << 12;

/// Polls between two `yield`s: where the two threads share a core (a busy or a one-core
/// machine), the waiting one hands it to the other instead of polling its time away.
const SPINS_PER_YIELD: u32 = 1 << 8;

/// `rx.recv()`, polling for a while before the thread parks.
fn recv_spinning<T>(rx: &Receiver<T>) -> Result<T, RecvError> {
    let polled = spin_until(|| match rx.try_recv() {
        Ok(v) => Some(Ok(v)),
        Err(TryRecvError::Disconnected) => Some(Err(RecvError)),
        Err(TryRecvError::Empty) => None,
    });
    polled.unwrap_or_else(|| rx.recv())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tape_core::engine::EngineConfig;

    /// The bundled session's snapshots (five, ~2,000 levels each, two among its first
    /// records) and depth diffs: no batch goes over [`BATCH_LEVELS`] but by its last record,
    /// and none is cut short of [`BATCH`] records but for its levels (or the journal's end).
    #[test]
    fn a_batch_is_handed_over_at_its_levels_cap() {
        let (mut reader, mut intake, _) = bundled();
        let mut batch = Batch::with_capacity(BATCH);
        let (mut records, mut cut_by_levels) = (0, 0);
        loop {
            batch.clear();
            let done = fill(&mut batch, &mut reader, &mut intake);
            assert!(batch.end.is_none());
            let adopted = batch.others.iter();
            let adopted = adopted.filter(|o| matches!(o, Other::Adopt(_))).count();
            records += batch.recs.len() - adopted;
            let levels = batch.levels.len() + batch.snapshot_levels;
            // The cap is checked before each record: what exceeds it is the last record's.
            let kept = match batch.recs.last().map(|r| r.table) {
                Some(Table::Depth) => batch.depths.last().map(|d| d.1),
                Some(Table::Other) => match batch.others.last() {
                    Some(Other::Snapshot(_, _, kept) | Other::Frame(_, kept)) => Some(*kept),
                    _ => None,
                },
                _ => None,
            };
            let last = kept.map_or(0, |k| k.bids + k.asks);
            assert!(levels - last.min(levels) < BATCH_LEVELS, "{levels} levels");
            if done {
                break;
            }
            if batch.recs.len() < BATCH {
                assert!(
                    levels >= BATCH_LEVELS,
                    "cut at {} records",
                    batch.recs.len()
                );
                cut_by_levels += 1;
            }
        }
        assert_eq!(records, 8910);
        assert!(
            cut_by_levels >= 2,
            "{cut_by_levels} batches cut by their levels"
        );
    }

    /// A reader, an intake and an engine for the bundled session.
    fn bundled() -> (JournalReader, Intake, Engine) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/session");
        let cfg = EngineConfig::default();
        let reader = JournalReader::open(&dir).unwrap();
        (
            reader,
            Intake::new(&cfg).unwrap(),
            Engine::new(cfg).unwrap(),
        )
    }

    /// The engine's thread may use every CPU the caller may but one (the one the caller was
    /// on); a caller restricted to one CPU shares it, and the replay runs all the same.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_engine_thread_starts_off_the_callers_cpu() {
        use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};
        use nix::unistd::Pid;
        let me = Pid::from_raw(0);
        let cpus = |set: &CpuSet| {
            let all = 0..CpuSet::count();
            all.filter(|&c| set.is_set(c).unwrap()).collect::<Vec<_>>()
        };
        // The engine thread's CPUs, from a caller that may use `allowed`.
        let replay_from = |allowed: CpuSet| {
            std::thread::scope(|s| {
                s.spawn(|| {
                    sched_setaffinity(me, &allowed).unwrap();
                    let (reader, intake, mut engine) = bundled();
                    let (mut seen, mut applied) = (None, 0);
                    run(reader, intake, &mut engine, |_, _| {
                        applied += 1;
                        seen.get_or_insert_with(|| sched_getaffinity(me).unwrap());
                    })
                    .unwrap();
                    assert_eq!(applied, 8910);
                    cpus(&seen.unwrap())
                })
                .join()
                .unwrap()
            })
        };
        let allowed = sched_getaffinity(me).unwrap();
        let all = cpus(&allowed);
        if all.len() >= 2 {
            let engine = replay_from(allowed);
            assert_eq!(engine.len(), all.len() - 1, "{engine:?} of {all:?}");
            assert!(
                engine.iter().all(|c| all.contains(c)),
                "{engine:?} of {all:?}"
            );
        }
        let mut one = CpuSet::new();
        one.set(sched_getcpu().unwrap()).unwrap();
        assert_eq!(replay_from(one), cpus(&one));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn beside_is_every_allowed_cpu_but_the_callers() {
        use nix::sched::CpuSet;
        let set = |cpus: &[usize]| {
            let mut s = CpuSet::new();
            cpus.iter().for_each(|&c| s.set(c).unwrap());
            s
        };
        assert_eq!(others(&set(&[0, 1]), 0), Some(set(&[1])));
        assert_eq!(others(&set(&[0, 2, 5]), 2), Some(set(&[0, 5])));
        // Moved since it was allowed elsewhere: all of them.
        assert_eq!(others(&set(&[0, 2]), 1), Some(set(&[0, 2])));
        assert_eq!(others(&set(&[3]), 3), None);
        // A CPU number no set holds: the thread is left where it is.
        assert_eq!(others(&set(&[3]), CpuSet::count()), None);
    }

    /// The records are applied on the engine's own thread, and a panic there comes back
    /// to the caller (the intake stops instead of waiting for batches that never return).
    #[test]
    fn the_engine_thread_applies_and_its_panic_reaches_the_caller() {
        let (reader, intake, mut engine) = bundled();
        let caller = std::thread::current().id();
        let mut threads = std::collections::HashSet::new();
        let mut applied = 0;
        run(reader, intake, &mut engine, |_, _| {
            threads.insert(std::thread::current().id());
            applied += 1;
        })
        .unwrap();
        assert_eq!(applied, 8910);
        assert_eq!(threads.len(), 1);
        assert!(!threads.contains(&caller));

        let (reader, intake, mut engine) = bundled();
        let mut seen = 0;
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run(reader, intake, &mut engine, |_, _| {
                seen += 1;
                assert!(seen < 1000, "the engine's side fails");
            })
        }));
        let panic = panicked.unwrap_err();
        assert_eq!(
            panic.downcast_ref::<&str>().copied(),
            Some("the engine's side fails")
        );
        assert_eq!(seen, 1000);
    }
}

//! `tape replay`: every journal record through the engine core, as fast as possible, or
//! with `--latency` paced and timed stage by stage.
//!
//! As fast as possible, it runs on two threads unless told otherwise
//! ([`ReplayOptions::pipeline`], `--threads`): one reads the journal and decodes each record
//! (an [`Intake`]), the other applies them to the engine in record order (see
//! `pipeline.rs`). Both halves are the engine's own code, so the outputs and the digest are
//! those of a one-thread replay; only the reading and decoding of the next records overlap
//! with the applying of the previous ones. `--latency` always runs on one thread.
//!
//! # Latency mode
//!
//! `tape replay --latency [--speed N] JOURNAL` feeds each record when it is due: at its
//! recorded inter-arrival time after the first record, divided by N (default 1 = the
//! recorded pace; 0 = as fast as possible). Waiting sleeps until ~50 us before the due time
//! and spins for the rest. Each record goes through [`Engine::handle_record_probed`] with a
//! [`StageTimer`], the probe `tape run` uses, and three stages land in HdrHistograms
//! (1 ns to 60 s, 3 significant digits):
//!
//! - `decode`: decoding one frame or snapshot (records that reach the decoder);
//! - `apply`: applying it (books, derived state, engine outputs);
//! - `due_to_applied`: from when the record was due until the engine returned from it, so
//!   scheduling lateness (sleep overshoot, preemption) plus the engine's processing. At
//!   speed 0 a record is due when it is read, so this is processing alone.
//!
//! The human output adds count, p50, p90, p99, p99.9 and max (ns) per stage after the usual
//! summary; `--json` adds them under `latency`. The engine still sees every record's
//! *recorded* receive time, so the digest is the one a plain replay gives.
//!
//! To compare two builds on the same recorded session, build each into its own target
//! directory (`CARGO_TARGET_DIR=/tmp/a cargo build --release -p tape-tools`, the same for
//! B), then run both on one pinned core, one after the other, a few times each:
//!
//! ```sh
//! taskset -c 1 /tmp/a/release/tape replay --latency --speed 1 --json fixtures/session > a.json
//! taskset -c 1 /tmp/b/release/tape replay --latency --speed 1 --json fixtures/session > b.json
//! ```
//!
//! and compare p50 and p99 of `decode` and `apply` (the code) and of `due_to_applied` (what
//! a record waits for in practice). The digests must be equal: if they differ, the builds
//! do not compute the same thing.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;
use tape_core::engine::{Engine, EngineConfig, Intake};
use tape_core::fixed::Scaled;
use tape_core::input::{Nanos, SourceId};
use tape_core::metrics::{Latency, LatencyStage, StageSummary, MAX_LATENCY_NS, PERCENTILES};
use tape_journal::JournalReader;
use tape_node::node::{StageTimer, WallClock};

use crate::pipeline::Stop;

/// How [`replay_with`] feeds the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Pace the records and time their stages (see the module docs); otherwise feed them as
    /// fast as possible with no probe.
    pub latency: bool,
    /// With `latency`: 1 = recorded inter-arrival times, N = N times faster, 0 = as fast as
    /// possible. Ignored otherwise.
    pub speed: u32,
    /// Replay the intact prefix of a damaged journal and report where it stopped, instead of
    /// failing.
    pub allow_damaged: bool,
    /// Apply on a second thread while this one reads and decodes (see the module docs);
    /// ignored with `latency`, which times both stages of each record on one thread.
    pub pipeline: bool,
}

impl Default for ReplayOptions {
    /// A plain replay (no pacing, no timing), pipelined; speed 1 if `latency` is turned on.
    fn default() -> Self {
        ReplayOptions {
            latency: false,
            speed: 1,
            allow_damaged: false,
            pipeline: true,
        }
    }
}

/// Percentiles of one stage, ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StagePercentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest sample.
    pub max_ns: u64,
}

impl From<StageSummary> for StagePercentiles {
    fn from(s: StageSummary) -> Self {
        let [p50_ns, p90_ns, p99_ns, p999_ns, max_ns] = s.ns;
        StagePercentiles {
            count: s.count,
            p50_ns,
            p90_ns,
            p99_ns,
            p999_ns,
            max_ns,
        }
    }
}

/// Per-stage latency of a `--latency` replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LatencyReport {
    /// The pace: 1 = recorded, N = N times faster, 0 = as fast as possible.
    pub speed: u32,
    /// Decoding a frame or snapshot.
    pub decode: StagePercentiles,
    /// Applying it.
    pub apply: StagePercentiles,
    /// From the record's due time until the engine returned from it.
    pub due_to_applied: StagePercentiles,
}

/// How long before a record is due the wait stops sleeping and spins.
const SPIN_NS: u64 = 50_000;

/// The replay summary (`--json` prints it as is).
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Journal directory.
    pub journal: String,
    /// Records replayed.
    pub records: u64,
    /// Receive time of the first and last record, ns.
    pub first_recv_ns: Option<u64>,
    /// Receive time of the last record, ns.
    pub last_recv_ns: Option<u64>,
    /// Decoded messages by kind.
    pub messages: BTreeMap<String, u64>,
    /// Errors by code.
    pub errors: BTreeMap<String, u64>,
    /// Output events by kind.
    pub outputs: BTreeMap<String, u64>,
    /// Books, in instrument order.
    pub books: Vec<BookSummary>,
    /// bookTicker cross-checks against the book.
    pub oracle: Oracle,
    /// Total output events.
    pub output_events: u64,
    /// xxh3 chain over every output event, hex.
    pub digest: String,
    /// Wall time of the replay loop, seconds (not part of the digest).
    pub elapsed_secs: f64,
    /// Input records per second of wall time.
    pub records_per_sec: f64,
    /// Threads the replay ran on: 2 when reading and decoding ran beside the engine
    /// (`pipeline`), else 1.
    pub threads: u32,
    /// Output events per second of wall time.
    pub events_per_sec: f64,
    /// Stage percentiles, with `--latency` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyReport>,
    /// With `--allow-damaged`: the damage the replay stopped at (everything before it was
    /// replayed); absent when the journal was read to its end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at_damage: Option<String>,
}

/// One book at the end of the replay.
#[derive(Debug, Serialize)]
pub struct BookSummary {
    /// Market.
    pub market: String,
    /// Symbol.
    pub symbol: String,
    /// Sync state.
    pub state: String,
    /// Whether the book is live.
    pub synced: bool,
    /// Last applied update id.
    pub last_update_id: Option<u64>,
    /// Best bid `[price, qty]`, decimal strings.
    pub best_bid: Option<[String; 2]>,
    /// Best ask `[price, qty]`.
    pub best_ask: Option<[String; 2]>,
    /// Levels per side `[bids, asks]`.
    pub levels: [usize; 2],
    /// Gaps seen.
    pub gaps: u64,
    /// Resync requests.
    pub resyncs: u64,
}

/// bookTicker oracle counters.
#[derive(Debug, Serialize)]
pub struct Oracle {
    /// bookTickers whose `u` matched the book's last applied id.
    pub checks: u64,
    /// Of those, disagreements.
    pub mismatches: u64,
}

/// Waits until `clock` reads `due`: sleeps while more than [`SPIN_NS`] remain, then spins.
fn wait_until(clock: &WallClock, due: u64) {
    loop {
        let now = clock.now();
        if now >= due {
            return;
        }
        let left = due - now;
        if left > SPIN_NS {
            std::thread::sleep(Duration::from_nanos(left - SPIN_NS));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// The latency state of a `--latency` replay.
struct Timing {
    speed: u32,
    clock: WallClock,
    stages: Latency,
    due_to_applied: Histogram<u64>,
    /// Wall-clock time the first record was due and its recorded receive time.
    epoch: Option<(u64, u64)>,
}

impl Timing {
    fn new(speed: u32) -> Result<Timing> {
        Ok(Timing {
            speed,
            clock: WallClock::default(),
            stages: Latency::default(),
            due_to_applied: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .context("latency histogram")?,
            epoch: None,
        })
    }

    /// Waits until the record received at `recorded` is due, feeds it through `engine` with a
    /// stage timer, and records its stages.
    fn handle(
        &mut self,
        engine: &mut Engine,
        recorded: u64,
        source: u32,
        kind: u16,
        payload: &[u8],
    ) {
        let due = if self.speed == 0 {
            self.clock.now()
        } else {
            let (wall, rec0) = *self.epoch.get_or_insert((self.clock.now(), recorded));
            let offset = recorded.saturating_sub(rec0) / u64::from(self.speed);
            let due = wall.saturating_add(offset);
            wait_until(&self.clock, due);
            due
        };
        let start = self.clock.now();
        let mut timer = StageTimer::new(&self.clock, start, &mut self.stages);
        // Errors are counted by the engine and appear in the summary; replay goes on.
        let _ = engine.handle_stored_probed(
            Nanos(recorded),
            SourceId(source),
            kind,
            payload,
            &mut timer,
        );
        let done = self.clock.now();
        self.due_to_applied
            .saturating_record(done.saturating_sub(due).clamp(1, MAX_LATENCY_NS));
    }

    fn report(&self) -> LatencyReport {
        let h = &self.due_to_applied;
        let mut ns = [0; 5];
        if !h.is_empty() {
            for (slot, p) in ns.iter_mut().zip(PERCENTILES) {
                *slot = h.value_at_percentile(p);
            }
        }
        LatencyReport {
            speed: self.speed,
            decode: self.stages.summary(LatencyStage::Decode).into(),
            apply: self.stages.summary(LatencyStage::Apply).into(),
            due_to_applied: StageSummary { count: h.len(), ns }.into(),
        }
    }
}

/// Replays the journal in `dir` through a fresh engine, as fast as possible.
///
/// # Errors
/// An unreadable or damaged journal.
pub fn replay(dir: &Path) -> Result<(Summary, Engine)> {
    replay_with(dir, &ReplayOptions::default())
}

/// Replays the journal in `dir` through a fresh engine as `opts` says: as fast as possible,
/// or paced and timed per stage (`opts.latency`, see the module docs). The outputs, and so
/// the digest, are the same either way.
///
/// # Errors
/// An unreadable or damaged journal.
pub fn replay_with(dir: &Path, opts: &ReplayOptions) -> Result<(Summary, Engine)> {
    replay_into(dir, opts, None)
}

/// [`replay_with`], publishing the engine's state into shared memory as `tape run --shm`
/// does (every output, then a flush after each record): at the end the files hold the final
/// books and accounts. The outputs, and so the digest, are the same with or without it.
///
/// # Errors
/// An unreadable or damaged journal.
pub fn replay_into(
    dir: &Path,
    opts: &ReplayOptions,
    mut shm: Option<&mut tape_node::shm::Publisher>,
) -> Result<(Summary, Engine)> {
    let reader = JournalReader::open(dir)
        .with_context(|| format!("{}: cannot open journal", dir.display()))?;
    // Nothing here reads the outputs but the shared-memory publisher: without it the engine
    // folds them into the digest and counts them by kind, and keeps no queue.
    let cfg = EngineConfig {
        queue_outputs: shm.is_some(),
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(cfg.clone())?;
    let mut timing = if opts.latency {
        Some(Timing::new(opts.speed)?)
    } else {
        None
    };
    let (mut first, mut last) = (None, None);
    // After each record, whichever loop applied it.
    let mut after = |engine: &mut Engine, recv_ns: u64| {
        first.get_or_insert(recv_ns);
        last = Some(recv_ns);
        if let Some(p) = shm.as_deref_mut() {
            p.publish(engine);
        }
        // The engine counts the outputs (and venue orders) by kind; whatever it queued is
        // dropped here, as nothing else takes it.
        engine.clear_outputs();
        while engine.poll_venue_command().is_some() {}
    };
    let damaged = |e: tape_journal::JournalError| -> Result<String> {
        if opts.allow_damaged && e.is_corruption() {
            return Ok(e.to_string());
        }
        Err(anyhow::Error::new(e).context(format!(
            "{}: damaged journal (--allow-damaged replays the records before the damage); {}",
            dir.display(),
            crate::dump::DAMAGE_HINT
        )))
    };
    let start = Instant::now();
    let mut stopped_at_damage = None;
    let threads = if opts.pipeline && timing.is_none() {
        let intake = Intake::new(&cfg)?;
        match crate::pipeline::run(reader, intake, &mut engine, &mut after) {
            Ok(()) => {}
            Err(Stop::Journal(e)) => stopped_at_damage = Some(damaged(e)?),
            Err(Stop::Internal(what)) => {
                anyhow::bail!(
                    "{}: the replay's two threads lost track of each other ({what}; a bug; \
                     --threads 1 replays on one thread)",
                    dir.display()
                )
            }
            Err(Stop::Thread(e)) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "{}: cannot start the replay's engine thread (--threads 1 replays on one \
                     thread)",
                    dir.display()
                )))
            }
            Err(Stop::Adopt(e)) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "{}: the replay's intake and engine disagree (a bug; \
                     --threads 1 replays on one thread)",
                    dir.display()
                )))
            }
        }
        2
    } else {
        let mut reader = reader;
        while let Some(rec) = reader.next() {
            let rec = match rec {
                Ok(rec) => rec,
                Err(e) => {
                    stopped_at_damage = Some(damaged(e)?);
                    break;
                }
            };
            if let Some(t) = timing.as_mut() {
                t.handle(&mut engine, rec.recv_ns, rec.source, rec.kind, rec.payload);
            } else {
                // Errors are counted by the engine and appear in the summary; replay goes on.
                let _ = engine.handle_stored(
                    Nanos(rec.recv_ns),
                    SourceId(rec.source),
                    rec.kind,
                    rec.payload,
                );
            }
            after(&mut engine, rec.recv_ns);
        }
        1
    };
    let elapsed = start.elapsed().as_secs_f64();
    let stats = engine.stats();
    let reg = engine.registry();
    let books = engine
        .books()
        .map(|b| {
            let inst = reg.get(b.instrument());
            let lvl = |l: tape_core::msg::Level| {
                [
                    Scaled(l.price.0, inst.price_scale).to_string(),
                    Scaled(l.qty.0, inst.qty_scale).to_string(),
                ]
            };
            BookSummary {
                market: inst.market.to_string(),
                symbol: inst.symbol.clone(),
                state: format!("{:?}", b.state()),
                synced: b.is_synced(),
                last_update_id: b.last_update_id(),
                best_bid: b.book().best_bid().map(lvl),
                best_ask: b.book().best_ask().map(lvl),
                levels: [
                    b.book().len(tape_core::msg::Side::Bid),
                    b.book().len(tape_core::msg::Side::Ask),
                ],
                gaps: b.stats().gaps,
                resyncs: b.stats().resyncs,
            }
        })
        .collect();
    let digest = engine.digest();
    let per_sec = |n: u64| {
        if elapsed > 0.0 {
            n as f64 / elapsed
        } else {
            0.0
        }
    };
    let summary = Summary {
        journal: dir.display().to_string(),
        records: stats.records,
        first_recv_ns: first,
        last_recv_ns: last,
        messages: stats
            .messages
            .iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        errors: stats
            .errors
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
        outputs: stats
            .outputs_by_kind
            .iter()
            .map(|(k, n)| (k.to_owned(), n))
            .collect(),
        books,
        oracle: Oracle {
            checks: stats.bbo_checks,
            mismatches: stats.bbo_mismatches,
        },
        output_events: digest.count(),
        digest: format!("{:016x}", digest.value()),
        elapsed_secs: elapsed,
        records_per_sec: per_sec(stats.records),
        threads,
        events_per_sec: per_sec(digest.count()),
        latency: timing.as_ref().map(Timing::report),
        stopped_at_damage,
    };
    Ok((summary, engine))
}

/// Prints the summary for people.
pub fn print_human(s: &Summary) {
    println!("journal   {}", s.journal);
    let span = match (s.first_recv_ns, s.last_recv_ns) {
        (Some(a), Some(b)) => format!(
            " over {:.3} s of recorded time",
            (b.saturating_sub(a)) as f64 / 1e9
        ),
        _ => String::new(),
    };
    println!("records   {}{span}", s.records);
    let kv = |m: &BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!("messages  {}", kv(&s.messages));
    println!(
        "errors    {}",
        if s.errors.is_empty() {
            "none".to_owned()
        } else {
            kv(&s.errors)
        }
    );
    println!("outputs   {}", kv(&s.outputs));
    println!(
        "oracle    {} bookTicker checks, {} mismatches",
        s.oracle.checks, s.oracle.mismatches
    );
    let synced = s.books.iter().filter(|b| b.synced).count();
    println!("books     {synced}/{} synced", s.books.len());
    for b in &s.books {
        let side = |l: &Option<[String; 2]>| match l {
            Some([p, q]) => format!("{q} @ {p}"),
            None => "-".to_owned(),
        };
        println!(
            "  {:<6} {:<12} {:<10} u={:<14} bid {:<28} ask {:<28} levels {}/{} gaps {} resyncs {}",
            b.market,
            b.symbol,
            b.state,
            b.last_update_id.map_or("-".to_owned(), |u| u.to_string()),
            side(&b.best_bid),
            side(&b.best_ask),
            b.levels[0],
            b.levels[1],
            b.gaps,
            b.resyncs
        );
    }
    println!(
        "speed     {:.0} records/s, {:.0} events/s ({:.3} s, {} thread{})",
        s.records_per_sec,
        s.events_per_sec,
        s.elapsed_secs,
        s.threads,
        if s.threads == 1 { "" } else { "s" }
    );
    println!("digest    {} ({} events)", s.digest, s.output_events);
    if let Some(d) = &s.stopped_at_damage {
        println!("stopped   at damage, after {} records: {d}", s.records);
    }
    if let Some(l) = &s.latency {
        let pace = match l.speed {
            0 => "as fast as possible".to_owned(),
            1 => "recorded pace".to_owned(),
            n => format!("{n}x recorded pace"),
        };
        println!("latency   ns, {pace}");
        println!(
            "  {:<15} {:>9} {:>10} {:>10} {:>10} {:>10} {:>12}",
            "stage", "count", "p50", "p90", "p99", "p99.9", "max"
        );
        for (name, p) in [
            ("decode", &l.decode),
            ("apply", &l.apply),
            ("due_to_applied", &l.due_to_applied),
        ] {
            println!(
                "  {:<15} {:>9} {:>10} {:>10} {:>10} {:>10} {:>12}",
                name, p.count, p.p50_ns, p.p90_ns, p.p99_ns, p.p999_ns, p.max_ns
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("fixtures")
            .join("session")
    }

    #[test]
    fn latency_replay_as_fast_as_possible_keeps_the_digest_and_fills_the_stages() {
        let (plain, _) = replay(&session()).expect("plain replay");
        assert!(plain.latency.is_none());
        let opts = ReplayOptions {
            latency: true,
            speed: 0,
            ..ReplayOptions::default()
        };
        let (timed, _) = replay_with(&session(), &opts).expect("latency replay");
        assert_eq!(timed.digest, plain.digest);
        assert_eq!(timed.output_events, plain.output_events);
        assert_eq!(timed.records, plain.records);
        let lat = timed.latency.expect("latency report");
        assert_eq!(lat.speed, 0);
        for (name, s) in [("decode", lat.decode), ("apply", lat.apply)] {
            assert!(s.count > 0, "{name}: {s:?}");
            assert!(
                s.p50_ns > 0 && s.p50_ns <= s.p99_ns && s.p99_ns <= s.max_ns,
                "{name}: {s:?}"
            );
        }
        // Every record is timed from due to applied, decodable or not.
        assert_eq!(lat.due_to_applied.count, plain.records);
    }

    /// An engine that keeps no queue (as `tape replay` runs it) folds and counts exactly
    /// what a queueing engine hands out: the same digest, and counts by kind equal to the
    /// kinds of the outputs taken from the queueing one, which the summary prints.
    #[test]
    fn an_engine_without_a_queue_digests_and_counts_what_a_queueing_one_hands_out() {
        use std::collections::BTreeMap;
        use tape_core::book::BookEvent;
        use tape_core::output::Event;

        let mut queued = Engine::new(EngineConfig::default()).expect("engine");
        let mut bare = Engine::new(EngineConfig {
            queue_outputs: false,
            ..EngineConfig::default()
        })
        .expect("engine");
        let mut taken: BTreeMap<&str, u64> = BTreeMap::new();
        let mut reader = JournalReader::open(session()).expect("session");
        while let Some(rec) = reader.next() {
            let rec = rec.expect("intact record");
            for e in [&mut queued, &mut bare] {
                let _ = e.handle_stored(
                    Nanos(rec.recv_ns),
                    SourceId(rec.source),
                    rec.kind,
                    rec.payload,
                );
            }
            assert!(bare.poll_output().is_none(), "no queue, no outputs");
            while let Some(out) = queued.poll_output() {
                let kind = match out.event {
                    Event::Book(BookEvent::LevelChanged { .. }) => "book_level",
                    Event::Book(BookEvent::Applied { .. }) => "book_applied",
                    Event::Book(BookEvent::Synced { .. }) => "book_synced",
                    Event::Book(BookEvent::ResyncRequested { .. }) => "book_resync_requested",
                    Event::Bbo(_) => "bbo",
                    Event::Trade(_) => "trade",
                    Event::BookTicker(_) => "book_ticker",
                    Event::Ticker(_) => "ticker",
                    other => panic!("the session has no {other:?}"),
                };
                *taken.entry(kind).or_default() += 1;
            }
        }
        assert_eq!(bare.digest(), queued.digest());
        assert_eq!(bare.stats(), queued.stats());
        let counted: BTreeMap<&str, u64> = bare.stats().outputs_by_kind.iter().collect();
        assert_eq!(counted, taken);
        assert_eq!(taken.values().sum::<u64>(), bare.digest().count());
        let (summary, _) = replay(&session()).expect("replay");
        let printed: BTreeMap<&str, u64> = summary
            .outputs
            .iter()
            .map(|(k, n)| (k.as_str(), *n))
            .collect();
        assert_eq!(printed, taken);
    }

    #[test]
    fn waiting_reaches_the_due_time() {
        let clock = WallClock::default();
        let due = clock.now() + 200_000;
        wait_until(&clock, due);
        assert!(clock.now() >= due);
        // A due time in the past returns at once.
        wait_until(&clock, 0);
    }
}

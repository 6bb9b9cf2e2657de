//! `tape replay`: every journal record through the engine core, as fast as possible.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use tape_engine::book::BookEvent;
use tape_engine::engine::{Engine, EngineConfig};
use tape_engine::fixed::Scaled;
use tape_engine::input::Nanos;
use tape_engine::output::Event;
use tape_journal::JournalReader;

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
    /// Output events per second of wall time.
    pub events_per_sec: f64,
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

fn event_kind(e: &Event) -> &'static str {
    match e {
        Event::Book(b) => match b {
            BookEvent::Synced { .. } => "book_synced",
            BookEvent::LevelChanged { .. } => "book_level",
            BookEvent::Applied { .. } => "book_applied",
            BookEvent::Gap { .. } => "book_gap",
            BookEvent::ResyncRequested { .. } => "book_resync_requested",
            BookEvent::Crossed { .. } => "book_crossed",
            BookEvent::StaleSnapshot { .. } => "book_stale_snapshot",
            BookEvent::BufferOverflow { .. } => "book_buffer_overflow",
        },
        Event::Bbo(_) => "bbo",
        Event::Trade(_) => "trade",
        Event::AggTrade(_) => "agg_trade",
        Event::BookTicker(_) => "book_ticker",
        Event::Ticker(_) => "ticker",
        Event::Error(_) => "error",
        Event::Venue(_) => "venue",
    }
}

/// Replays the journal in `dir` through a fresh engine.
///
/// # Errors
/// An unreadable or damaged journal.
pub fn replay(dir: &Path) -> Result<(Summary, Engine)> {
    let mut reader = JournalReader::open(dir)
        .with_context(|| format!("{}: cannot open journal", dir.display()))?;
    let mut engine = Engine::new(EngineConfig::default())?;
    let mut outputs: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut first, mut last) = (None, None);
    let start = Instant::now();
    while let Some(rec) = reader.next() {
        let rec = rec.with_context(|| format!("{}: damaged journal", dir.display()))?;
        first.get_or_insert(rec.recv_ns);
        last = Some(rec.recv_ns);
        // Errors are counted by the engine and appear in the summary; replay goes on.
        let _ = engine.handle_record(Nanos(rec.recv_ns), rec.source, rec.kind, rec.payload);
        while let Some(out) = engine.poll_output() {
            *outputs.entry(event_kind(&out.event)).or_default() += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let stats = engine.stats();
    let reg = engine.registry();
    let books = engine
        .books()
        .map(|b| {
            let inst = reg.get(b.instrument());
            let lvl = |l: tape_engine::msg::Level| {
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
                    b.book().len(tape_engine::msg::Side::Bid),
                    b.book().len(tape_engine::msg::Side::Ask),
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
        outputs: outputs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
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
        events_per_sec: per_sec(digest.count()),
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
        "speed     {:.0} records/s, {:.0} events/s ({:.3} s)",
        s.records_per_sec, s.events_per_sec, s.elapsed_secs
    );
    println!("digest    {} ({} events)", s.digest, s.output_events);
}

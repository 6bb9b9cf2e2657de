//! `tape`: the command-line front end of the tape engine.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tape_core::instrument::Market;
use tape_tools::{dump, import, loadgen, replay, run, shm_read, sim, synth};

#[derive(Parser)]
#[command(
    name = "tape",
    version,
    about = "Low-latency market-data and trading-state engine"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve market data over WebSocket until SIGINT/SIGTERM, fed by the configured venues,
    /// a journal replay, or (the default) the venue simulator started in-process on loopback
    /// and reached over TLS.
    Run(run::RunArgs),
    /// Serve the same protocol as an edge of an origin (`tape run` with `[nats]`): follow its
    /// log over NATS (`--nats URL`, `[nats]`) into this node's own engine, books, `seq`s and
    /// digest, equal to the origin's (docs/scale-out.md).
    Edge(run::EdgeArgs),
    /// Connect to the configured venues (or the simulator) and journal every input, serving
    /// no client.
    Record(run::RecordArgs),
    /// Convert capture files into a journal, keeping each frame's recorded receive time.
    Import {
        /// Capture format.
        #[arg(long, value_enum)]
        format: import::Format,
        /// Capture files; several are merged by receive time.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// cryptofeed REST snapshot file(s) (`*.http.*`), merged by receive time.
        #[arg(long)]
        http: Vec<PathBuf>,
        /// Market, if the file name or URL does not tell (spot, usdm, coinm).
        #[arg(long, value_parser = parse_market)]
        market: Option<Market>,
        /// Symbol of an hftbacktest file's inline snapshot, if no stream names it.
        #[arg(long)]
        symbol: Option<String>,
        /// Output journal directory (must not hold a journal already).
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// Journal segment size in MiB.
        #[arg(long, default_value_t = 64)]
        segment_mib: u64,
    },
    /// Generate a synthetic USD-M session (snapshots, then depth diffs, bookTickers and
    /// trades at a fixed frame rate) into a new journal; the same arguments give the same
    /// bytes.
    Synth {
        /// Output journal directory (must not hold a journal already).
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        #[command(flatten)]
        opts: synth::SynthOptions,
        /// Journal segment size in MiB.
        #[arg(long, default_value_t = 64)]
        segment_mib: u64,
    },
    /// Drive every record of a journal through the engine and print a summary.
    Replay {
        /// Journal directory.
        journal: PathBuf,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        /// Feed records at their recorded inter-arrival times (see --speed) and print
        /// per-stage latency percentiles (decode, apply, due to applied) after the summary.
        #[arg(long)]
        latency: bool,
        /// With --latency: 1 = recorded pace, N = N times faster, 0 = as fast as possible.
        #[arg(long, default_value_t = 1, requires = "latency")]
        speed: u32,
        /// Replay the intact records before a damaged place and report where the replay
        /// stopped (exit status 3), instead of refusing the journal.
        #[arg(long)]
        allow_damaged: bool,
        /// Publish the books and accounts in shared memory in this directory as `tape run
        /// --shm` does (default settings); at the end it holds the final state.
        #[arg(long, value_name = "DIR")]
        shm: Option<PathBuf>,
        /// 2: the engine applies on a second thread, started off this one's CPU, while this
        /// one reads and decodes (the same outputs and digest, faster); 1: everything on one
        /// thread. Default: 2 when the machine has two cores or more. --latency always runs
        /// on one thread.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=2))]
        threads: Option<u8>,
    },
    /// Print what a shared-memory reader sees in a `tape run --shm DIR` directory: every
    /// instrument's top of book, or one instrument's (and its depth, last trade, ticker), or
    /// a user's account; live until --count or --timeout, or once.
    ShmRead(shm_read::ShmReadArgs),
    /// Print a journal's records.
    Dump {
        /// Journal directory.
        journal: PathBuf,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// First sequence number to print.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Print at most this many records.
        #[arg(long)]
        limit: Option<u64>,
        /// Print at most this many payload bytes per record (human format).
        #[arg(long, default_value_t = 160)]
        width: usize,
    },
    /// Check every checksum, the sequence continuity and both ends of the journal; exit
    /// status 1 on damage.
    Verify {
        /// Journal directory.
        journal: PathBuf,
        /// Then repair it as `tape repair` does.
        #[arg(long)]
        repair: bool,
    },
    /// Move everything from a damaged journal's first damaged place on into a quarantine
    /// directory inside it (nothing is deleted), so that its intact prefix replays and
    /// records again; print what was kept and what was moved where.
    Repair {
        /// Journal directory.
        journal: PathBuf,
    },
    /// A local Binance: replay a journal over the real WebSocket/REST protocol (TLS with a
    /// self-signed certificate), with injectable faults, until SIGINT/SIGTERM.
    VenueSim(sim::cli::SimArgs),
    /// Open N WebSocket clients to a tape server, subscribe them, and measure messages, gaps,
    /// closes and tick-to-client latency (arrival - recv_ns) for a bounded time.
    Loadgen {
        #[command(flatten)]
        cfg: loadgen::LoadgenConfig,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Print a client token (JWT HS256) for a user of the config, signed with its
    /// `[auth]` secret.
    Token {
        /// The config file with `[auth]` and `[[user]]`.
        #[arg(long)]
        config: PathBuf,
        /// The user (a `[[user]]` name).
        #[arg(long)]
        user: String,
        /// Lifetime in seconds from now (the `exp` claim).
        #[arg(long, default_value_t = 3600)]
        ttl_secs: u64,
    },
}

fn parse_market(s: &str) -> Result<Market, String> {
    Market::parse(s).ok_or_else(|| format!("unknown market {s:?} (spot, usdm, coinm)"))
}

fn main() -> ExitCode {
    // Before any other thread starts: freed memory stays in the process (every command;
    // see the module's docs for what it saves).
    tape_tools::alloc::keep_freed_memory();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("tape: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Run(args) => {
            run::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Edge(args) => {
            run::run(&args.into())?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Record(args) => {
            run::record(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Import {
            format,
            files,
            http,
            market,
            symbol,
            out,
            segment_mib,
        } => {
            let opts = import::ImportOptions {
                format,
                files,
                http,
                market,
                symbol,
            };
            let jopts = tape_journal::JournalOptions {
                segment_size: segment_mib.saturating_mul(1 << 20),
                ..tape_journal::JournalOptions::default()
            };
            let report = dump::write_import_with(&opts, &out, jopts)?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Synth {
            out,
            opts,
            segment_mib,
        } => {
            let jopts = tape_journal::JournalOptions {
                segment_size: segment_mib.saturating_mul(1 << 20),
                ..tape_journal::JournalOptions::default()
            };
            println!("{}", synth::write(&opts, &out, jopts)?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Replay {
            journal,
            json,
            latency,
            speed,
            allow_damaged,
            shm,
            threads,
        } => {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            let opts = replay::ReplayOptions {
                latency,
                speed,
                allow_damaged,
                pipeline: threads.map_or(cores >= 2, |n| n == 2),
            };
            let mut publisher = match shm {
                Some(dir) => Some(
                    tape_node::shm::Publisher::open(&tape_node::shm::ShmConfig::new(dir), &[])
                        .context("shm")?,
                ),
                None => None,
            };
            let (summary, _) = replay::replay_into(&journal, &opts, publisher.as_mut())?;
            if let Some(p) = publisher.as_mut() {
                p.close();
            }
            if json {
                let mut stdout = std::io::stdout().lock();
                serde_json::to_writer_pretty(&mut stdout, &summary)?;
                writeln!(stdout).context("stdout")?;
            } else {
                replay::print_human(&summary);
            }
            if let Some(d) = &summary.stopped_at_damage {
                eprintln!(
                    "tape: replay stopped at damage after {} records: {d}",
                    summary.records
                );
                return Ok(ExitCode::from(3));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Dump {
            journal,
            json,
            from,
            limit,
            width,
        } => {
            dump::dump(&journal, json, from, limit, width)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Verify { journal, repair } => {
            let code = dump::verify(&journal)?;
            if repair {
                return dump::repair(&journal);
            }
            Ok(code)
        }
        Cmd::Repair { journal } => dump::repair(&journal),
        Cmd::VenueSim(args) => {
            sim::cli::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::ShmRead(args) => {
            shm_read::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Loadgen { cfg, json } => {
            loadgen::cli(&cfg, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Token {
            config,
            user,
            ttl_secs,
        } => {
            let cfg = tape_tools::config::Config::load(&config)?;
            let Some(auth) = cfg.auth_config()? else {
                anyhow::bail!("{}: no [[user]] is configured", config.display());
            };
            if !auth.users.iter().any(|u| u.name == user) {
                anyhow::bail!("{}: no [[user]] named {user:?}", config.display());
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            let token = tape_core::auth::token_for(&auth.secret, &user, now + ttl_secs);
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

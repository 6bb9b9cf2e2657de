//! `tape shm-read DIR`: what a shared-memory reader sees, with the `tape-shm` reader a
//! strategy would use.
//!
//! - no `--symbol`: every instrument's top of book, then (unless `--once`) each change as it
//!   happens;
//! - `--symbol usdm:BTCUSDT`: that instrument's top, depth, last trade and ticker, then each
//!   top-of-book change;
//! - `--user NAME`: that user's portfolio, positions and open orders (a file the OS lets this
//!   account open).
//!
//! Live output stops after `--count` changes or when none came for `--timeout` seconds;
//! `--json` prints one JSON object per line (what the CI compares with a WebSocket client).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};
use tape_shm::layout::{ORDER_STATUSES, ORDER_TYPES, TIMES_IN_FORCE};
use tape_shm::{Instrument, Reader, Top, UserReader, WriterStatus};

/// `tape shm-read` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ShmReadArgs {
    /// The directory of `tape run --shm DIR` (or its `market.shm`).
    pub dir: PathBuf,
    /// One instrument, `market:SYMBOL` or `SYMBOL`.
    #[arg(long)]
    pub symbol: Option<String>,
    /// A user's account file (`DIR/user-NAME.shm`) instead of the market.
    #[arg(long, conflicts_with = "symbol")]
    pub user: Option<String>,
    /// Print the current state and stop.
    #[arg(long)]
    pub once: bool,
    /// Stop after this many top-of-book changes.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop when no change came for this many seconds (and wait at most this long for the
    /// instrument to appear).
    #[arg(long)]
    pub timeout: Option<f64>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// A top of book as JSON (prices and quantities as exact decimal strings).
pub fn top_json(inst: &Instrument, top: &Top, seq: u64) -> Value {
    let px = |l: Option<tape_shm::Level>| l.map(|l| inst.price(l.price));
    let qty = |l: Option<tape_shm::Level>| l.map(|l| inst.qty(l.qty));
    json!({
        "type": "top",
        "symbol": inst.name(),
        "state": top.state.as_str(),
        "update_id": top.update_id,
        "bid": px(top.bid),
        "bid_qty": qty(top.bid),
        "ask": px(top.ask),
        "ask_qty": qty(top.ask),
        "recv_ns": top.recv_ns,
        "seq": seq,
    })
}

fn top_line(inst: &Instrument, top: &Top) -> String {
    let side = |l: Option<tape_shm::Level>| match l {
        Some(l) => format!("{} @ {}", inst.qty(l.qty), inst.price(l.price)),
        None => "-".to_owned(),
    };
    format!(
        "{:<20} {:<17} u={:<14} bid {:<28} ask {:<28} recv_ns={}",
        inst.name(),
        top.state.as_str(),
        top.update_id,
        side(top.bid),
        side(top.ask),
        top.recv_ns
    )
}

struct Out {
    json: bool,
    stdout: std::io::StdoutLock<'static>,
}

impl Out {
    fn emit(&mut self, v: &Value, human: &str) -> Result<()> {
        if self.json {
            writeln!(self.stdout, "{v}")?;
        } else {
            writeln!(self.stdout, "{human}")?;
        }
        self.stdout.flush()?;
        Ok(())
    }
}

/// Runs `tape shm-read`.
///
/// # Errors
/// A file that cannot be opened or is refused (another layout version, another kind), an
/// unknown symbol, a stalled writer, a closed stdout.
pub fn run(args: &ShmReadArgs) -> Result<()> {
    let mut out = Out {
        json: args.json,
        stdout: std::io::stdout().lock(),
    };
    if let Some(user) = &args.user {
        return read_user(args, user, &mut out);
    }
    let reader = Reader::open(&args.dir)?;
    let timeout = args.timeout.map(Duration::from_secs_f64);
    match &args.symbol {
        Some(name) => {
            let deadline = Instant::now() + timeout.unwrap_or(Duration::ZERO);
            let inst = loop {
                if let Some(i) = reader.find(name) {
                    break i;
                }
                if Instant::now() >= deadline {
                    anyhow::bail!(
                        "{}: no instrument {name:?} (published: {})",
                        reader.path().display(),
                        reader
                            .instruments()
                            .iter()
                            .map(Instrument::name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                std::thread::sleep(Duration::from_millis(10)); // polling for an instrument to appear, bounded
            };
            one(&reader, &inst, args, timeout, &mut out)
        }
        None => all(&reader, args, timeout, &mut out),
    }
}

fn one(
    reader: &Reader,
    inst: &Instrument,
    args: &ShmReadArgs,
    timeout: Option<Duration>,
    out: &mut Out,
) -> Result<()> {
    let (top, mut seq) = reader.bbo_seq(inst)?;
    out.emit(&top_json(inst, &top, seq), &top_line(inst, &top))?;
    let d = reader.levels(inst)?;
    let lv = |l: &tape_shm::Level| json!([inst.price(l.price), inst.qty(l.qty)]);
    out.emit(
        &json!({
            "type": "depth", "symbol": inst.name(), "state": d.head.state.as_str(),
            "update_id": d.head.update_id, "recv_ns": d.head.recv_ns,
            "bids": d.bids.iter().map(lv).collect::<Vec<_>>(),
            "asks": d.asks.iter().map(lv).collect::<Vec<_>>(),
        }),
        &format!(
            "  depth u={} {} bids / {} asks; best 5: bids {} | asks {}",
            d.head.update_id,
            d.bids.len(),
            d.asks.len(),
            d.bids
                .iter()
                .take(5)
                .map(|l| format!("{}@{}", inst.qty(l.qty), inst.price(l.price)))
                .collect::<Vec<_>>()
                .join(" "),
            d.asks
                .iter()
                .take(5)
                .map(|l| format!("{}@{}", inst.qty(l.qty), inst.price(l.price)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    )?;
    let t = reader.last_trade(inst)?;
    if t.count > 0 {
        out.emit(
            &json!({"type": "trade", "symbol": inst.name(), "price": inst.price(t.price),
                "qty": inst.qty(t.qty), "trade_id": t.trade_id, "side": if t.buyer_is_maker {"sell"} else {"buy"},
                "count": t.count, "recv_ns": t.recv_ns}),
            &format!(
                "  last trade {} @ {} ({}) id {} ({} trades)",
                inst.qty(t.qty),
                inst.price(t.price),
                if t.buyer_is_maker { "sell" } else { "buy" },
                t.trade_id,
                t.count
            ),
        )?;
    }
    let k = reader.ticker(inst)?;
    if k.recv_ns > 0 {
        let dec = |d: tape_shm::Dec| tape_shm::layout::fmt_fixed(d.mantissa, d.scale);
        out.emit(
            &json!({"type": "ticker", "symbol": inst.name(), "last": inst.price(k.last),
                "open": inst.price(k.open), "high": inst.price(k.high), "low": inst.price(k.low),
                "volume": dec(k.volume), "recv_ns": k.recv_ns}),
            &format!(
                "  ticker last {} open {} high {} low {} volume {}",
                inst.price(k.last),
                inst.price(k.open),
                inst.price(k.high),
                inst.price(k.low),
                dec(k.volume)
            ),
        )?;
    }
    if args.once {
        return Ok(());
    }
    let mut n = 0u64;
    while args.count.is_none_or(|c| n < c) {
        let wait = timeout.unwrap_or(Duration::from_secs(3600));
        match reader.wait_change(inst, seq, wait)? {
            Some((top, s)) => {
                seq = s;
                n += 1;
                out.emit(&top_json(inst, &top, s), &top_line(inst, &top))?;
            }
            None if timeout.is_some() => break,
            None => {}
        }
        if reader.status() == WriterStatus::Closed {
            break;
        }
    }
    Ok(())
}

fn all(
    reader: &Reader,
    args: &ShmReadArgs,
    timeout: Option<Duration>,
    out: &mut Out,
) -> Result<()> {
    let mut insts = reader.instruments();
    let mut seqs = Vec::new();
    for i in &insts {
        let (top, seq) = reader.bbo_seq(i)?;
        out.emit(&top_json(i, &top, seq), &top_line(i, &top))?;
        seqs.push(seq);
    }
    if args.once {
        return Ok(());
    }
    let mut n = 0u64;
    let mut last_change = Instant::now();
    let mut idle = 0u32;
    while args.count.is_none_or(|c| n < c) {
        if reader.instrument_count() as usize > insts.len() {
            insts = reader.instruments();
            seqs.resize(insts.len(), u64::MAX);
        }
        let mut changed = false;
        for (i, inst) in insts.iter().enumerate() {
            if reader.top_seq(inst)? != seqs[i] {
                let (top, seq) = reader.bbo_seq(inst)?;
                seqs[i] = seq;
                changed = true;
                n += 1;
                out.emit(&top_json(inst, &top, seq), &top_line(inst, &top))?;
            }
        }
        if changed {
            last_change = Instant::now();
            idle = 0;
            continue;
        }
        if timeout.is_some_and(|t| last_change.elapsed() >= t)
            || reader.status() == WriterStatus::Closed
        {
            break;
        }
        // A command-line tool: spin briefly, then nap, rather than take a core for ever.
        idle = idle.saturating_add(1);
        if idle < 1000 {
            std::hint::spin_loop();
        } else {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    Ok(())
}

fn read_user(args: &ShmReadArgs, user: &str, out: &mut Out) -> Result<()> {
    let path = if args.dir.is_dir() {
        args.dir.join(format!("user-{user}.shm"))
    } else {
        args.dir.clone()
    };
    let r = UserReader::open(&path).with_context(|| format!("user {user:?}"))?;
    let money = |m: i64| tape_shm::layout::fmt_fixed(m, tape_shm::layout::MONEY_SCALE);
    let p = r.portfolio()?;
    out.emit(
        &json!({"type": "portfolio", "user": r.user(), "total_balance": money(p.total_balance),
            "realized_pnl": money(p.realized_pnl), "unrealized_pnl": money(p.unrealized_pnl),
            "total_pnl": money(p.total_pnl), "open_positions": p.open_positions,
            "equity_peak": money(p.equity_peak), "drawdown": money(p.drawdown), "recv_ns": p.recv_ns}),
        &format!(
            "{}: balance {} realized {} unrealized {} total {} open positions {} drawdown {}",
            r.user(),
            money(p.total_balance),
            money(p.realized_pnl),
            money(p.unrealized_pnl),
            money(p.total_pnl),
            p.open_positions,
            money(p.drawdown)
        ),
    )?;
    let (positions, total) = r.positions()?;
    for p in &positions {
        let px = |m: i64| tape_shm::layout::fmt_fixed(m, p.instrument.price_scale);
        let sym = format!(
            "{}:{}",
            tape_shm::MarketCode::from_code(p.instrument.market).map_or("?", |m| m.as_str()),
            p.instrument.symbol
        );
        out.emit(
            &json!({"type": "position", "symbol": sym,
                "qty": tape_shm::layout::fmt_fixed(p.qty, p.instrument.qty_scale),
                "avg_entry_price": p.avg_entry_price.map(px), "mark": p.mark.map(px),
                "realized_pnl": money(p.realized_pnl), "unrealized_pnl": money(p.unrealized_pnl),
                "fees": money(p.fees)}),
            &format!(
                "  position {sym} qty {} avg {} mark {} realized {} unrealized {}",
                tape_shm::layout::fmt_fixed(p.qty, p.instrument.qty_scale),
                p.avg_entry_price.map_or("-".into(), px),
                p.mark.map_or("-".into(), px),
                money(p.realized_pnl),
                money(p.unrealized_pnl)
            ),
        )?;
    }
    let (orders, open) = r.orders()?;
    for o in &orders {
        let px = |m: i64| tape_shm::layout::fmt_fixed(m, o.instrument.price_scale);
        let q = |m: i64| tape_shm::layout::fmt_fixed(m, o.instrument.qty_scale);
        let name = |t: &[&'static str], c: u8| t.get(usize::from(c)).copied().unwrap_or("?");
        out.emit(
            &json!({"type": "order", "client_order_id": o.client_order_id.as_str(),
                "symbol": o.instrument.symbol.as_str(), "side": if o.side == 0 {"buy"} else {"sell"},
                "order_type": name(&ORDER_TYPES, o.order_type),
                "time_in_force": name(&TIMES_IN_FORCE, o.time_in_force),
                "status": name(&ORDER_STATUSES, o.status), "price": px(o.price), "qty": q(o.qty),
                "filled": q(o.filled)}),
            &format!(
                "  order {} {} {} {} {} @ {} filled {} {}",
                o.client_order_id,
                o.instrument.symbol,
                if o.side == 0 { "buy" } else { "sell" },
                name(&ORDER_TYPES, o.order_type),
                q(o.qty),
                px(o.price),
                q(o.filled),
                name(&ORDER_STATUSES, o.status)
            ),
        )?;
    }
    if !args.json {
        writeln!(
            out.stdout,
            "  {} position(s) of {total}, {} open order(s) of {open}",
            positions.len(),
            orders.len()
        )?;
    }
    Ok(())
}

//! `tape import`: capture files (hftbacktest, cryptofeed) into a journal.
//!
//! Every input file keeps its own order; files are merged by receive time (ties go to the
//! file whose path sorts first), so frames from one connection are never reordered even if the recording
//! host's clock stepped backwards.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::de::IgnoredAny;
use serde::Deserialize;
use tape_core::input::{RecordKind, SourceDef};
use tape_core::instrument::Market;

/// Capture line formats `tape import` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `<recv_ns> <raw json>` per line (hftbacktest's collector).
    Hftbacktest,
    /// cryptofeed raw recordings: `*.ws.*` frames, `--http` for the REST snapshots.
    Cryptofeed,
}

/// One record to be journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRecord {
    /// Receive time, ns.
    pub recv_ns: u64,
    /// Source id.
    pub source: u32,
    /// Record kind.
    pub kind: RecordKind,
    /// Raw bytes.
    pub payload: Vec<u8>,
}

/// What an import will write: source definitions, then the merged records.
#[derive(Debug, Default)]
pub struct ImportPlan {
    /// `(source id, definition)` in id order.
    pub sources: Vec<(u32, SourceDef)>,
    /// Records in merged receive-time order.
    pub records: Vec<ImportRecord>,
    /// Blank or skipped lines (sent frames, connect lines).
    pub skipped_lines: u64,
}

/// Options for building an import plan.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The capture format.
    pub format: Format,
    /// Capture files (frames; hftbacktest files also hold their snapshot).
    pub files: Vec<PathBuf>,
    /// cryptofeed `*.http.*` snapshot files.
    pub http: Vec<PathBuf>,
    /// Market override (otherwise from the file name or URL).
    pub market: Option<Market>,
    /// Symbol override for hftbacktest snapshots (otherwise from the stream names).
    pub symbol: Option<String>,
}

/// A parsed stream of one file before merging.
struct FileRecords {
    records: Vec<ImportRecord>,
}

#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow)]
    stream: Option<&'a str>,
    #[serde(rename = "lastUpdateId")]
    last_update_id: Option<IgnoredAny>,
    symbol: Option<&'a str>,
}

struct Sources {
    defs: Vec<(u32, SourceDef)>,
}

impl Sources {
    fn id_for(&mut self, market: Market, symbol: Option<&str>, name: &str) -> u32 {
        let symbol = symbol.map(str::to_ascii_uppercase);
        if let Some((id, _)) = self
            .defs
            .iter()
            .find(|(_, d)| d.market == market && d.symbol == symbol && d.name == name)
        {
            return *id;
        }
        let id = self.defs.len() as u32;
        self.defs.push((
            id,
            SourceDef {
                market,
                symbol,
                scales: None,
                name: name.to_owned(),
            },
        ));
        id
    }

    /// Records the scales of a snapshot source's symbol from its first snapshot.
    fn learn_scales(&mut self, id: u32, body: &str) {
        let def = &mut self.defs[id as usize].1;
        if def.scales.is_none() {
            def.scales = snapshot_scales(body);
        }
    }
}

/// The instrument's price and quantity scales as a REST snapshot writes them: Binance pads
/// every decimal to the instrument's precision, so the widest fraction seen is the scale.
fn snapshot_scales(body: &str) -> Option<(u8, u8)> {
    #[derive(Deserialize)]
    struct Snap<'a> {
        #[serde(borrow)]
        bids: Vec<[&'a str; 2]>,
        #[serde(borrow)]
        asks: Vec<[&'a str; 2]>,
    }
    let snap: Snap<'_> = serde_json::from_str(body).ok()?;
    let frac = |s: &str| s.split_once('.').map_or(0, |(_, f)| f.len());
    let (mut p, mut q) = (None::<usize>, None::<usize>);
    for [price, qty] in snap.bids.iter().chain(&snap.asks) {
        p = Some(p.unwrap_or(0).max(frac(price)));
        q = Some(q.unwrap_or(0).max(frac(qty)));
    }
    let max = usize::from(tape_core::fixed::MAX_SCALE);
    match (p, q) {
        (Some(p), Some(q)) if p <= max && q <= max => Some((p as u8, q as u8)),
        _ => None,
    }
}

/// Reads every input file and merges them into one plan.
///
/// # Errors
/// Unreadable files, malformed lines (named by file and line number), a market or symbol that
/// cannot be determined.
pub fn plan(opts: &ImportOptions) -> Result<ImportPlan> {
    if opts.files.is_empty() {
        bail!("no capture file given");
    }
    if opts.format == Format::Hftbacktest && !opts.http.is_empty() {
        bail!("--http is for cryptofeed captures; hftbacktest files carry their snapshots inline");
    }
    // Inputs are taken in path order, so the journal does not depend on how they were named
    // on the command line.
    let mut files = opts.files.clone();
    files.sort();
    files.dedup();
    let mut http = opts.http.clone();
    http.sort();
    http.dedup();
    let mut sources = Sources { defs: Vec::new() };
    let mut per_file = Vec::new();
    let mut skipped = 0;
    for path in &files {
        let text = read_text(path)?;
        let f = match opts.format {
            Format::Hftbacktest => hftbacktest(path, &text, opts, &mut sources)?,
            Format::Cryptofeed => cryptofeed_ws(path, &text, opts, &mut sources, &mut skipped)?,
        };
        per_file.push(f);
    }
    for path in &http {
        let text = read_text(path)?;
        per_file.push(cryptofeed_http(
            path,
            &text,
            opts,
            &mut sources,
            &mut skipped,
        )?);
    }
    Ok(ImportPlan {
        sources: sources.defs,
        records: merge(per_file),
        skipped_lines: skipped,
    })
}

fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// K-way merge by receive time that keeps each file's own order.
fn merge(files: Vec<FileRecords>) -> Vec<ImportRecord> {
    let total = files.iter().map(|f| f.records.len()).sum();
    let mut out = Vec::with_capacity(total);
    let mut iters: Vec<_> = files
        .into_iter()
        .map(|f| f.records.into_iter().peekable())
        .collect();
    loop {
        let mut best: Option<(usize, u64)> = None;
        for (i, it) in iters.iter_mut().enumerate() {
            if let Some(r) = it.peek() {
                if best.is_none_or(|(_, t)| r.recv_ns < t) {
                    best = Some((i, r.recv_ns));
                }
            }
        }
        let Some((i, _)) = best else { break };
        out.extend(iters[i].next());
    }
    out
}

/// The file name, as a label for the sources it defines.
fn file_label(path: &Path, fallback: &str) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(fallback)
        .to_owned()
}

fn market_from_name(path: &Path) -> Option<Market> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let prefix = name.split(['_', '.', '-']).next()?;
    match prefix {
        "spot" => Some(Market::Spot),
        "usdm" | "um" | "futures" => Some(Market::UsdM),
        "cm" | "coinm" => Some(Market::CoinM),
        _ => None,
    }
}

fn market_from_url(url: &str) -> Option<Market> {
    let host = url.split("://").nth(1)?.split(['/', ':']).next()?;
    if host.starts_with("fstream") || url.contains("/fapi/") {
        Some(Market::UsdM)
    } else if host.starts_with("dstream") || url.contains("/dapi/") {
        Some(Market::CoinM)
    } else if host.starts_with("stream") || host.starts_with("api") || url.contains("/api/v3/") {
        Some(Market::Spot)
    } else {
        None
    }
}

/// `<seconds>.<fraction>` into ns, by digits (no float): extra fraction digits are cut.
fn parse_secs_ns(s: &str) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || !int.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = int.parse().ok()?;
    let mut ns: u64 = 0;
    for i in 0..9 {
        ns = ns * 10 + frac.as_bytes().get(i).map_or(0, |c| u64::from(c - b'0'));
    }
    secs.checked_mul(1_000_000_000)?.checked_add(ns)
}

fn hftbacktest(
    path: &Path,
    text: &str,
    opts: &ImportOptions,
    sources: &mut Sources,
) -> Result<FileRecords> {
    let market = opts
        .market
        .or_else(|| market_from_name(path))
        .with_context(|| {
            format!(
            "{}: cannot tell the market from the file name (spot_*, usdm_*, cm_*); pass --market",
            path.display()
        )
        })?;
    let name = file_label(path, "capture");
    let ws = sources.id_for(market, None, &name);
    // First pass: lines and the symbol (for the inline snapshot, which names none on spot).
    let mut lines = Vec::new();
    let mut symbol = opts.symbol.clone();
    for (no, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (ts, json) = line.split_once(' ').with_context(|| {
            format!("{}:{}: expected `<recv_ns> <json>`", path.display(), no + 1)
        })?;
        let ts: u64 = ts.parse().with_context(|| {
            format!(
                "{}:{}: bad receive timestamp {ts:?}",
                path.display(),
                no + 1
            )
        })?;
        let probe: Probe<'_> = serde_json::from_str(json)
            .with_context(|| format!("{}:{}: not a JSON object", path.display(), no + 1))?;
        let is_snapshot = probe.stream.is_none() && probe.last_update_id.is_some();
        if symbol.is_none() {
            symbol = probe
                .stream
                .and_then(|s| s.split('@').next())
                .or(probe.symbol)
                .map(str::to_ascii_uppercase);
        }
        lines.push((ts, is_snapshot, json));
    }
    let mut records = Vec::with_capacity(lines.len());
    for (ts, is_snapshot, json) in lines {
        let (source, kind) = if is_snapshot {
            let sym = symbol.as_deref().with_context(|| {
                format!(
                    "{}: snapshot found but no stream names its symbol; pass --symbol",
                    path.display()
                )
            })?;
            let id = sources.id_for(market, Some(sym), &format!("{name}:rest"));
            sources.learn_scales(id, json);
            (id, RecordKind::RestSnapshot)
        } else {
            (ws, RecordKind::WsFrame)
        };
        records.push(ImportRecord {
            recv_ns: ts,
            source,
            kind,
            payload: json.as_bytes().to_vec(),
        });
    }
    Ok(FileRecords { records })
}

fn cryptofeed_ws(
    path: &Path,
    text: &str,
    opts: &ImportOptions,
    sources: &mut Sources,
    skipped: &mut u64,
) -> Result<FileRecords> {
    let mut lines = text.lines().enumerate();
    let (_, first) = lines
        .next()
        .with_context(|| format!("{}: empty file", path.display()))?;
    let url = first
        .split_once(" <-> ")
        .map(|(u, _)| u)
        .with_context(|| format!("{}:1: expected `<url> <-> <connect time>`", path.display()))?;
    let market = opts
        .market
        .or_else(|| market_from_url(url))
        .with_context(|| {
            format!(
                "{}:1: cannot tell the market of {url}; pass --market",
                path.display()
            )
        })?;
    let name = file_label(path, "capture");
    let ws = sources.id_for(market, None, &name);
    let mut records = Vec::new();
    for (no, line) in lines {
        if line.trim().is_empty() || line.contains(" <- ") {
            *skipped += 1;
            continue;
        }
        let (ts, json) = line.split_once(": ").with_context(|| {
            format!(
                "{}:{}: expected `<seconds>: <json>`",
                path.display(),
                no + 1
            )
        })?;
        let recv_ns = parse_secs_ns(ts)
            .with_context(|| format!("{}:{}: bad timestamp {ts:?}", path.display(), no + 1))?;
        records.push(ImportRecord {
            recv_ns,
            source: ws,
            kind: RecordKind::WsFrame,
            payload: json.as_bytes().to_vec(),
        });
    }
    Ok(FileRecords { records })
}

fn cryptofeed_http(
    path: &Path,
    text: &str,
    opts: &ImportOptions,
    sources: &mut Sources,
    skipped: &mut u64,
) -> Result<FileRecords> {
    let name = file_label(path, "http");
    let mut records = Vec::new();
    for (no, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            *skipped += 1;
            continue;
        }
        let ctx = || format!("{}:{}", path.display(), no + 1);
        let (url, rest) = line
            .split_once(" -> ")
            .with_context(|| format!("{}: expected `<url> -> <seconds>: <body>`", ctx()))?;
        let (ts, body) = rest
            .split_once(": ")
            .with_context(|| format!("{}: expected `<seconds>: <body>`", ctx()))?;
        let recv_ns =
            parse_secs_ns(ts).with_context(|| format!("{}: bad timestamp {ts:?}", ctx()))?;
        if !url.contains("depth") {
            *skipped += 1;
            continue;
        }
        let market = opts
            .market
            .or_else(|| market_from_url(url))
            .with_context(|| format!("{}: cannot tell the market of {url}", ctx()))?;
        let symbol = url
            .split(['?', '&'])
            .find_map(|kv| kv.strip_prefix("symbol="))
            .with_context(|| format!("{}: no symbol= in {url}", ctx()))?;
        let source = sources.id_for(market, Some(symbol), &name);
        sources.learn_scales(source, body);
        records.push(ImportRecord {
            recv_ns,
            source,
            kind: RecordKind::RestSnapshot,
            payload: body.as_bytes().to_vec(),
        });
    }
    Ok(FileRecords { records })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_to_ns_without_floats() {
        assert_eq!(
            parse_secs_ns("1633998512.0633569"),
            Some(1_633_998_512_063_356_900)
        );
        assert_eq!(parse_secs_ns("1.5"), Some(1_500_000_000));
        assert_eq!(parse_secs_ns("7"), Some(7_000_000_000));
        assert_eq!(parse_secs_ns("1.0000000019"), Some(1_000_000_001));
        assert_eq!(parse_secs_ns("x"), None);
        assert_eq!(parse_secs_ns("-1.5"), None);
        assert_eq!(parse_secs_ns("99999999999999999999"), None);
    }

    #[test]
    fn scales_come_from_the_snapshot_padding() {
        let spot = r#"{"lastUpdateId":1,"bids":[["61837.63000000","3.78826000"]],"asks":[]}"#;
        assert_eq!(snapshot_scales(spot), Some((8, 8)));
        let cm = r#"{"lastUpdateId":1,"bids":[["61800.9","832"]],"asks":[["61801.0","1975"]]}"#;
        assert_eq!(snapshot_scales(cm), Some((1, 0)));
        assert_eq!(
            snapshot_scales(r#"{"lastUpdateId":1,"bids":[],"asks":[]}"#),
            None
        );
        assert_eq!(snapshot_scales("not json"), None);
    }

    #[test]
    fn markets_from_names_and_urls() {
        assert_eq!(
            market_from_name(Path::new("x/spot_btcusdt.txt")),
            Some(Market::Spot)
        );
        assert_eq!(
            market_from_name(Path::new("cm_btcusd_perp.txt")),
            Some(Market::CoinM)
        );
        assert_eq!(
            market_from_name(Path::new("usdm_ethusdt")),
            Some(Market::UsdM)
        );
        assert_eq!(market_from_name(Path::new("btc.txt")), None);
        assert_eq!(
            market_from_url("wss://fstream.binance.com/stream?streams=a"),
            Some(Market::UsdM)
        );
        assert_eq!(
            market_from_url("https://api.binance.com/api/v3/depth?symbol=X"),
            Some(Market::Spot)
        );
        assert_eq!(
            market_from_url("https://dapi.binance.com/dapi/v1/depth?symbol=X"),
            Some(Market::CoinM)
        );
    }

    fn rec(t: u64, s: u32) -> ImportRecord {
        ImportRecord {
            recv_ns: t,
            source: s,
            kind: RecordKind::WsFrame,
            payload: vec![],
        }
    }

    #[test]
    fn merge_keeps_each_file_in_order() {
        let a = FileRecords {
            records: vec![rec(10, 0), rec(5, 0), rec(30, 0)],
        };
        let b = FileRecords {
            records: vec![rec(10, 1), rec(20, 1)],
        };
        let m: Vec<_> = merge(vec![a, b])
            .iter()
            .map(|r| (r.recv_ns, r.source))
            .collect();
        assert_eq!(m, vec![(10, 0), (5, 0), (10, 1), (20, 1), (30, 0)]);
    }
}

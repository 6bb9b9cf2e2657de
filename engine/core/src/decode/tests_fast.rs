//! Proves the fast path changes nothing but speed: every real capture line, and random
//! mutations of them, decode to the same `Result` and leave the same registry with the fast
//! path on as with it off.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;

use proptest::prelude::*;

use super::tests::{registry, FRAMES};
use super::tests_corpus::{fixtures_dir, hftbacktest_captures};
use super::*;
use crate::instrument::Instrument;

/// One capture line: the market of its connection and the raw JSON.
struct Line {
    market: Market,
    json: Vec<u8>,
}

/// Every Binance line of the hftbacktest and cryptofeed captures, prefixes stripped.
fn lines() -> &'static [Line] {
    static LINES: OnceLock<Vec<Line>> = OnceLock::new();
    LINES.get_or_init(|| {
        let dir = fixtures_dir();
        let mut out = Vec::new();
        for capture in hftbacktest_captures() {
            for json in capture.jsons() {
                out.push(Line {
                    market: capture.market,
                    json: json.as_bytes().to_vec(),
                });
            }
        }
        for (file, market) in [
            ("BINANCE.ws.1.0", Market::Spot),
            ("BINANCE_FUTURES.ws.1.0", Market::UsdM),
        ] {
            let text = std::fs::read_to_string(dir.join("cryptofeed").join(file)).unwrap();
            for l in text.lines().skip(1).filter(|l| !l.is_empty()) {
                let (_, json) = l.split_once(": ").unwrap();
                out.push(Line {
                    market,
                    json: json.as_bytes().to_vec(),
                });
            }
        }
        out
    })
}

/// A registry's full state (its key map is derived from the instrument list).
fn state(r: &Registry) -> Vec<Instrument> {
    r.iter().cloned().collect()
}

/// The two decoders under comparison and their registries, kept in lockstep.
struct Pair {
    fast: Decoder,
    slow: Decoder,
    rf: Registry,
    rs: Registry,
}

impl Pair {
    fn new(r: Registry) -> Self {
        Pair {
            fast: Decoder::new(),
            slow: Decoder::new().with_fast_path(false),
            rf: r.clone(),
            rs: r,
        }
    }

    /// Decodes `frame` with both; asserts equal results and registries. Returns whether
    /// the fast path answered, and the result's kind.
    fn check(&mut self, frame: &[u8], ctx: DecodeCtx) -> (bool, &'static str) {
        let hits = self.fast.fast_path_hits();
        let a = self.fast.decode_frame(frame, ctx, &mut self.rf);
        let b = self.slow.decode_frame(frame, ctx, &mut self.rs);
        let text = String::from_utf8_lossy(frame);
        assert_eq!(a, b, "{ctx:?} {text}");
        assert_eq!(state(&self.rf), state(&self.rs), "{ctx:?} {text}");
        assert_eq!(self.slow.fast_path_hits(), 0);
        let kind = match &a {
            Ok(MarketMsg::Depth(_)) => "depth",
            Ok(MarketMsg::BookTicker(_)) => "bookTicker",
            Ok(MarketMsg::Trade(_)) => "trade",
            Ok(_) => "other",
            Err(_) => "error",
        };
        (self.fast.fast_path_hits() > hits, kind)
    }
}

#[test]
fn real_captures_decode_identically_and_take_the_fast_path() {
    // Known instruments at their real scales, then auto-registration from empty.
    for auto_register in [false, true] {
        let start = if auto_register {
            Registry::default()
        } else {
            registry()
        };
        let mut p = Pair::new(start);
        let (mut hot, mut hot_fast, mut other_fast, mut total) = (0, 0, 0, 0);
        for l in lines() {
            let ctx = DecodeCtx {
                market: l.market,
                auto_register,
            };
            let (fast, kind) = p.check(&l.json, ctx);
            total += 1;
            if matches!(kind, "depth" | "bookTicker" | "trade") {
                hot += 1;
                hot_fast += usize::from(fast);
            } else {
                other_fast += usize::from(fast);
            }
        }
        eprintln!(
            "auto_register={auto_register}: {total} lines, fast path took {hot_fast} of {hot} \
             bookTicker/trade/depth lines and {other_fast} others"
        );
        if auto_register {
            // Every hot line of the captures is in the subset.
            assert_eq!(hot_fast, hot);
            assert!(hot > 10_000, "{hot}");
        }
    }
}

#[test]
fn literal_frames_and_wrong_markets_decode_identically() {
    let mut p = Pair::new(registry());
    for market in [Market::Spot, Market::UsdM, Market::CoinM] {
        for auto_register in [false, true] {
            let ctx = DecodeCtx {
                market,
                auto_register,
            };
            for (_, f) in FRAMES {
                p.check(f.as_bytes(), ctx);
            }
        }
    }
}

#[test]
fn edge_shapes_decode_identically() {
    let bt = r#""u":1,"s":"BTCUSDT","b":"1.5","B":"2","a":"1.6","A":"3""#;
    let cases = [
        format!("{{{bt}}}"),
        format!(" \t\r\n{{ {bt} }} \n"),
        format!(r#"{{"stream":"x","data":{{{bt}}}}}"#),
        format!(r#"{{"data":{{{bt}}},"stream":"x"}}"#),
        format!(r#"{{"data":{{{bt}}}}}"#),
        format!(r#"{{"stream":1,"data":{{{bt}}}}}"#),
        format!(r#"{{"stream":"x","data":{{{bt}}},"data":{{{bt}}}}}"#),
        format!(r#"{{"stream":"x","stream":"y","data":{{{bt}}},"id":null}}"#),
        format!(r#"{{{bt},"stream":"x","data":"y"}}"#),
        format!(r#"{{{bt},"data":"y"}}"#),
        format!(r#"{{{bt},"u":2}}"#),
        format!(r#"{{{bt},"u":2.0}}"#),
        format!(r#"{{{bt},"u":01}}"#),
        format!(r#"{{{bt},"u":-1}}"#),
        format!(r#"{{{bt},"u":18446744073709551615}}"#),
        format!(r#"{{{bt},"u":9999999999999999999}}"#),
        format!(r#"{{{bt},"u":99999999999999999999}}"#),
        format!(r#"{{{bt},"b":"1.55555555555555555555"}}"#),
        format!(r#"{{{bt},"s":"btcusdt"}}"#),
        format!(r#"{{{bt},"s":"NEW_SYM"}}"#),
        format!(r#"{{{bt},"s":"BAD SYM"}}"#),
        format!(r#"{{{bt},"s":"\u0042TCUSDT"}}"#),
        format!(r#"{{{bt},"x":{{}}}}"#),
        format!(r#"{{{bt},"x":[]}}"#),
        format!(r#"{{{bt},"E":null,"T":true}}"#),
        format!(r#"{{{bt},"e":"bookTicker","E":1,"T":2}}"#),
        format!(r#"{{{bt},"e":"kline"}}"#),
        format!(r#"{{{bt}}}x"#),
        format!(r#"{{{bt}}}{{}}"#),
        format!(r#"{{{bt},}}"#),
        format!("{{{bt}}}\u{0}"),
        r#"{"e":"trade","E":1,"T":2,"s":"ETHUSDT","t":3,"p":"1.5","q":"2","m":false,"m":true,"X":"ADL"}"#.into(),
        r#"{"e":"trade","E":1,"T":2,"s":"ETHUSDT","t":3,"p":"1.5","q":"2","m":true,"b":1,"a":[]}"#.into(),
        r#"{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":1,"u":2,"T":3,"pu":0,"b":[[ "1" , "2" ]],"a":[],"b":[]}"#.into(),
        r#"{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":1,"u":2,"T":3,"pu":0,"b":[["1","2","3"]],"a":[]}"#.into(),
        r#"{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":1,"u":2,"T":3,"pu":0,"b":[["1",2]],"a":[]}"#.into(),
        r#"{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":1,"u":2,"T":3,"pu":0,"b":[["x","2"]],"a":[]}"#.into(),
        r#"{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":1,"u":2,"T":3,"pu":0,"b":[],"a":[],}"#.into(),
        "{}".into(),
        "[]".into(),
        "".into(),
    ];
    let mut p = Pair::new(registry());
    for market in [Market::Spot, Market::UsdM] {
        for auto_register in [false, true] {
            for c in &cases {
                p.check(
                    c.as_bytes(),
                    DecodeCtx {
                        market,
                        auto_register,
                    },
                );
            }
        }
    }
}

/// Byte ranges of the members of the objects at nesting `depth` (1: the root's members).
fn members(b: &[u8], depth: usize) -> Vec<(usize, usize)> {
    let (mut stack, mut out, mut start) = (Vec::new(), Vec::new(), None);
    let (mut in_str, mut esc) = (false, false);
    for (i, &c) in b.iter().enumerate() {
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
            continue;
        }
        let here = stack.len() == depth && stack.last() == Some(&b'{');
        match c {
            b'"' => in_str = true,
            b'{' | b'[' => {
                stack.push(c);
                if stack.len() == depth && c == b'{' {
                    start = Some(i + 1);
                }
            }
            b'}' | b']' => {
                if here {
                    if let Some(s) = start.take() {
                        out.push((s, i));
                    }
                }
                stack.pop();
            }
            b',' if here => {
                if let Some(s) = start {
                    out.push((s, i));
                }
                start = Some(i + 1);
            }
            _ => {}
        }
    }
    out
}

/// Start and end of every number token outside strings.
fn numbers(b: &[u8]) -> Vec<(usize, usize)> {
    let (mut out, mut in_str, mut i) = (Vec::new(), false, 0);
    while i < b.len() {
        let c = b[i];
        if in_str {
            match c {
                b'\\' => i += 1,
                b'"' => in_str = false,
                _ => {}
            }
        } else if c == b'"' {
            in_str = true;
        } else if c.is_ascii_digit() {
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            out.push((s, i));
            continue;
        }
        i += 1;
    }
    out
}

fn splice(b: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    let at = at.min(b.len());
    b.splice(at..at, bytes.iter().copied());
}

const ESCAPES: &[&str] = &[
    r"\u0041", r#"\""#, r"\\", r"\n", r"\/", "\u{e9}", "\u{7f}", "\t",
];
const VALUES: &[&str] = &[
    "null",
    "true",
    "false",
    r#""x""#,
    "1.5",
    "-1",
    "1e3",
    "0",
    "00",
    "{}",
    "[]",
    r#"[["1","2"]]"#,
    r#""61837.63000000""#,
    r#""-1.5""#,
    "18446744073709551616",
    "9223372036854775808",
];
const MEMBERS: &[&str] = &[
    r#""Z":1"#,
    r#""zz":"q""#,
    r#""k":{}"#,
    r#""stream":"x""#,
    r#""data":{}"#,
    r#""e":"trade""#,
    r#""e":"bookTicker""#,
    r#""X":"ADL""#,
    r#""b":7"#,
    r#""pu":null"#,
    r#""T":1"#,
    r#""s":"ethusdt""#,
    r#""s":"ZZZUSDT""#,
];

/// Applies one mutation; `pos` and `pick` choose where and what.
pub(super) fn mutate(b: &mut Vec<u8>, kind: u8, pos: usize, pick: usize) {
    let len = b.len();
    let at = pos % (len + 1);
    let ms = members(b, 1 + pick % 2);
    match kind {
        0 => {
            if len > 0 {
                b[pos % len] = [
                    b'"', b'{', b'}', b',', b':', b'1', b'.', b'\\', 0x80, pick as u8,
                ][pick % 10];
            }
        }
        1 => b.truncate(at),
        2 => splice(b, at, &[b" \t\n\r"[pick % 4]]),
        3 => {
            // Mostly inside strings: right after a quote.
            let quotes: Vec<usize> = (0..len).filter(|&i| b[i] == b'"').collect();
            let at = if quotes.is_empty() || pick.is_multiple_of(4) {
                at
            } else {
                quotes[pos % quotes.len()] + 1
            };
            splice(b, at, ESCAPES[pick % ESCAPES.len()].as_bytes());
        }
        4 if ms.len() >= 2 => {
            // Swap two members of one object.
            let (i, j) = (pos % ms.len(), pick % ms.len());
            let (i, j) = (i.min(j), i.max(j));
            if i != j {
                let (a, c) = (ms[i], ms[j]);
                let mut out = b[..a.0].to_vec();
                out.extend_from_slice(&b[c.0..c.1]);
                out.extend_from_slice(&b[a.1..c.0]);
                out.extend_from_slice(&b[a.0..a.1]);
                out.extend_from_slice(&b[c.1..]);
                *b = out;
            }
        }
        5 if !ms.is_empty() => {
            // Duplicate a member, sometimes with another value.
            let (s, e) = ms[pos % ms.len()];
            let mut m = b[s..e].to_vec();
            if pick.is_multiple_of(3) {
                if let Some(colon) = m.iter().position(|&c| c == b':') {
                    m.truncate(colon + 1);
                    m.extend_from_slice(VALUES[pick % VALUES.len()].as_bytes());
                }
            }
            m.push(b',');
            let (ins, _) = ms[pick % ms.len()];
            splice(b, ins, &m);
        }
        6 => {
            let ns = numbers(b);
            if !ns.is_empty() {
                let (s, e) = ns[pos % ns.len()];
                match pick % 5 {
                    0 => splice(b, e, b".0"),
                    1 => splice(b, e, b"e0"),
                    2 => splice(b, s, b"-"),
                    3 => splice(b, s, b"0"),
                    _ => splice(b, e, b"9999999999"),
                }
            }
        }
        7 if !ms.is_empty() => {
            // Replace a member's value.
            let (s, e) = ms[pos % ms.len()];
            if let Some(colon) = b[s..e].iter().position(|&c| c == b':') {
                b.splice(s + colon + 1..e, VALUES[pick % VALUES.len()].bytes());
            }
        }
        8 if !ms.is_empty() => {
            // Remove a member (and its comma, when it has one after it).
            let (s, e) = ms[pos % ms.len()];
            let e = if b.get(e) == Some(&b',') { e + 1 } else { e };
            b.drain(s..e);
        }
        9 => {
            let m = MEMBERS[pick % MEMBERS.len()];
            match ms.get(pos % ms.len().max(1)) {
                Some(&(s, _)) => splice(b, s, format!("{m},").as_bytes()),
                None => splice(b, at, m.as_bytes()),
            }
        }
        10 => {
            // Unwrap to the bare `data` object, or wrap a bare object.
            let data = members(b, 1)
                .into_iter()
                .find(|&(s, _)| b[s..].starts_with(br#""data":"#));
            match data {
                Some((s, e)) => *b = b[s + 7..e].to_vec(),
                None => {
                    let mut w = br#"{"stream":"s","data":"#.to_vec();
                    w.extend_from_slice(b);
                    w.push(b'}');
                    *b = w;
                }
            }
        }
        _ => {
            let tail: [&[u8]; 5] = [b" ", b"x", b"}", b"\n", b"\x00"];
            b.extend_from_slice(tail[pick % 5]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 4000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_captures_decode_identically(
        line in any::<prop::sample::Index>(),
        ops in proptest::collection::vec((0u8..12, any::<usize>(), any::<usize>()), 1..4),
        market in 0usize..3,
        auto_register in any::<bool>(),
        known in any::<bool>(),
    ) {
        // REST snapshot lines (tens of KB) are left to the unmutated pass: slow in debug.
        let small: Vec<&Line> = lines().iter().filter(|l| l.json.len() < 8192).collect();
        let l = line.get(&small);
        let mut frame = l.json.clone();
        for (kind, pos, pick) in ops {
            mutate(&mut frame, kind, pos, pick);
        }
        let market = [l.market, Market::Spot, Market::UsdM][market];
        let mut p = Pair::new(if known { registry() } else { Registry::default() });
        let ctx = DecodeCtx { market, auto_register };
        // Twice: the second decode takes the symbol cache's hit path.
        let (fast, _) = p.check(&frame, ctx);
        p.check(&frame, ctx);
        // How many mutants the fast path took, printed with --nocapture.
        static RUNS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
        let n = RUNS[0].fetch_add(1, Relaxed) + 1;
        let f = RUNS[1].fetch_add(usize::from(fast), Relaxed) + usize::from(fast);
        if n.is_multiple_of(1000) {
            eprintln!("{n} mutated frames, fast path took {f}");
        }
    }
}

/// The depth, bookTicker and trade frames of the captures, in every market, go straight to
/// their message (`fast::direct`), and that message and its levels are the walk's, field for
/// field.
#[test]
fn hot_frames_take_the_direct_path_and_equal_the_walk() {
    let mut registry = registry();
    let mut dec = Decoder::new();
    // Taken and seen, per market: depth, bookTicker, trade.
    let (mut taken, mut hot) = ([[0; 3]; 3], [[0; 3]; 3]);
    for l in lines() {
        let ctx = DecodeCtx {
            market: l.market,
            auto_register: false,
        };
        let m = l.market as usize;
        // Fills the symbol cache as live decoding does.
        let _ = dec.decode_frame(&l.json, ctx, &mut registry);
        let mut res = events::Resolver {
            ctx,
            registry: &mut registry,
            cache: &mut dec.symbols,
        };
        let (mut direct_bids, mut direct_asks) = (Vec::new(), Vec::new());
        let direct = fast::direct(&l.json, &res, &mut direct_bids, &mut direct_asks);
        let (mut spans, mut bids, mut asks) = (Vec::new(), Vec::new(), Vec::new());
        let walked = fast::walk(&l.json, &mut res, &mut spans, &mut bids, &mut asks);
        let kind = |m: &Option<Result<MarketMsg<'_>, DecodeError>>| match m {
            Some(Ok(MarketMsg::Depth(_))) => Some(0),
            Some(Ok(MarketMsg::BookTicker(_))) => Some(1),
            Some(Ok(MarketMsg::Trade(_))) => Some(2),
            _ => None,
        };
        if let Some(k) = kind(&walked) {
            hot[m][k] += 1;
        }
        if let Some(msg) = direct {
            let k = kind(&Some(Ok(msg))).expect("a depth, bookTicker or trade");
            taken[m][k] += 1;
            let line = String::from_utf8_lossy(&l.json);
            assert_eq!(walked, Some(Ok(msg)), "{line}");
            if k == 0 {
                assert_eq!((&direct_bids, &direct_asks), (&bids, &asks), "{line}");
            }
        }
    }
    let (spot, usdm, cm) = (
        Market::Spot as usize,
        Market::UsdM as usize,
        Market::CoinM as usize,
    );
    // Every depth, bookTicker and trade frame of the captures, in every market, is in
    // Binance's exact shape.
    assert_eq!(taken, hot);
    for m in [spot, usdm, cm] {
        assert!(taken[m].iter().all(|&n| n > 10), "{taken:?}");
    }
    assert!(taken[spot][1] > 1000 && taken[spot][2] > 100, "{taken:?}");
}

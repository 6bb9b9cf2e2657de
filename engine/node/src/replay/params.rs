//! The query of `GET /replay` and `GET /replay.ndjson`, parsed and bounded: every byte is the
//! client's, so each parameter is checked and a bad one is a 400 with the reason.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Longest journal name accepted.
pub const MAX_NAME_BYTES: usize = 64;
/// Largest `speed` accepted (beyond it, ask for 0: as fast as the client reads).
pub const MAX_SPEED: u32 = 1_000_000;

/// A `/replay` request's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayParams {
    /// The journal's configured name (validated: never a path).
    pub journal: String,
    /// Records received before this (ns since the epoch) are applied silently; 0 = from the
    /// start.
    pub from_ns: u64,
    /// Records received after this are not replayed; `u64::MAX` = to the end.
    pub to_ns: u64,
    /// 1 = the recorded pace, N = N times faster, 0 = as fast as the client reads.
    pub speed: u32,
    /// The `token=` value, if any (authenticates like `?token=` on `/ws`).
    pub token: Option<String>,
    /// The subscribe request built from `channels`, `symbols`, `depth` (the NDJSON endpoint
    /// has no way to send one); `None` if no `channels` was given.
    pub subscribe: Option<String>,
}

/// Why a query was refused (the 400 body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// A `%` escape that is not two hex digits, or bytes that are not UTF-8.
    #[error("bad percent-encoding in parameter {0}")]
    Encoding(String),
    /// `journal=` missing.
    #[error("missing parameter journal=NAME")]
    NoJournal,
    /// A journal name that could be a path, or is too long or odd.
    #[error("invalid journal name (letters, digits, '-', '_', '.', at most {MAX_NAME_BYTES} bytes, not starting with '.')")]
    BadName,
    /// `from`/`to` neither ns nor RFC 3339.
    #[error("parameter {0}: expected ns since the epoch or an ISO 8601 / RFC 3339 time (2024-08-09T00:00:00Z)")]
    BadTime(&'static str),
    /// `from` after `to`.
    #[error("from is after to")]
    Backwards,
    /// `speed` not an integer in range.
    #[error("parameter speed: expected an integer from 0 to {MAX_SPEED}")]
    BadSpeed,
    /// `depth` not an integer.
    #[error("parameter depth: expected an integer")]
    BadDepth,
    /// A parameter given twice, or one that is not known.
    #[error("parameter {0} unknown or given twice")]
    Unknown(String),
}

impl ReplayParams {
    /// Parses a raw query string (`a=b&c=d`, percent-encoded).
    ///
    /// # Errors
    /// Any malformed, repeated or unknown parameter; a missing or invalid journal name.
    pub fn parse(query: &str) -> Result<ReplayParams, ParamError> {
        let mut seen: Vec<String> = Vec::new();
        let mut p = ReplayParams {
            journal: String::new(),
            from_ns: 0,
            to_ns: u64::MAX,
            speed: 1,
            token: None,
            subscribe: None,
        };
        let (mut channels, mut symbols, mut depth) = (None, None, None);
        for kv in query.split('&').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let k = decode(k).map_err(|()| ParamError::Encoding(k.to_owned()))?;
            let v = decode(v).map_err(|()| ParamError::Encoding(k.clone()))?;
            if seen.contains(&k) {
                return Err(ParamError::Unknown(k));
            }
            match k.as_str() {
                "journal" => p.journal = valid_name(&v)?.to_owned(),
                "from" => p.from_ns = parse_time(&v).ok_or(ParamError::BadTime("from"))?,
                "to" => p.to_ns = parse_time(&v).ok_or(ParamError::BadTime("to"))?,
                "speed" => {
                    p.speed = v
                        .parse()
                        .ok()
                        .filter(|s| *s <= MAX_SPEED)
                        .ok_or(ParamError::BadSpeed)?;
                }
                "token" => p.token = Some(v).filter(|t| !t.is_empty()),
                "channels" => channels = Some(v),
                "symbols" => symbols = Some(v),
                "depth" => depth = Some(v.parse::<u32>().map_err(|_| ParamError::BadDepth)?),
                _ => return Err(ParamError::Unknown(k)),
            }
            seen.push(k);
        }
        if p.journal.is_empty() {
            return Err(ParamError::NoJournal);
        }
        if p.from_ns > p.to_ns {
            return Err(ParamError::Backwards);
        }
        p.subscribe = channels.map(|c| subscribe_request(&c, symbols.as_deref(), depth));
        Ok(p)
    }

    /// The query to open the replay's hub session with (`token=` only; the hub reads nothing
    /// else from it).
    pub fn open_query(&self) -> String {
        match &self.token {
            Some(t) => format!("token={t}"),
            None => String::new(),
        }
    }
}

/// `{"type":"subscribe","channels":[..],"symbols":[..],"depth":N}` from comma-separated lists;
/// the hub validates the names like any client request.
fn subscribe_request(channels: &str, symbols: Option<&str>, depth: Option<u32>) -> String {
    let list = |s: &str| {
        serde_json::Value::Array(
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(|x| serde_json::Value::String(x.to_owned()))
                .collect(),
        )
    };
    let mut req =
        serde_json::json!({"type": "subscribe", "id": "replay", "channels": list(channels)});
    if let Some(s) = symbols {
        req["symbols"] = list(s);
    }
    if let Some(d) = depth {
        req["depth"] = d.into();
    }
    req.to_string()
}

/// A journal name: a plain file name, never a path (`/`, `\`, `..`, NUL and every other
/// control or unusual byte are refused; so is a leading `.`).
pub fn valid_name(name: &str) -> Result<&str, ParamError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(name)
    } else {
        Err(ParamError::BadName)
    }
}

/// ns since the epoch (all digits) or an RFC 3339 time (`2024-08-09T12:00:00.5Z`).
pub fn parse_time(s: &str) -> Option<u64> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos()).ok()
}

/// Percent-decoding (and `+` as a space, as forms send it) into UTF-8.
fn decode(s: &str) -> Result<String, ()> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3).ok_or(())?;
                let hex = std::str::from_utf8(hex).map_err(|_| ())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_query_parses() {
        let p = ReplayParams::parse(
            "journal=day-1&from=2024-08-09T00:00:00Z&to=1723161600000000001&speed=0\
             &channels=trades,bbo&symbols=usdm:BTCUSDT&depth=5&token=abc",
        )
        .unwrap();
        assert_eq!(p.journal, "day-1");
        assert_eq!(p.from_ns, 1_723_161_600_000_000_000);
        assert_eq!(p.to_ns, 1_723_161_600_000_000_001);
        assert_eq!(p.speed, 0);
        assert_eq!(p.open_query(), "token=abc");
        let sub: serde_json::Value = serde_json::from_str(p.subscribe.as_deref().unwrap()).unwrap();
        assert_eq!(sub["channels"], serde_json::json!(["trades", "bbo"]));
        assert_eq!(sub["symbols"], serde_json::json!(["usdm:BTCUSDT"]));
        assert_eq!(sub["depth"], 5);
    }

    #[test]
    fn defaults_are_whole_journal_at_recorded_pace() {
        let p = ReplayParams::parse("journal=a").unwrap();
        assert_eq!((p.from_ns, p.to_ns, p.speed), (0, u64::MAX, 1));
        assert!(p.subscribe.is_none() && p.token.is_none());
    }

    #[test]
    fn paths_and_odd_names_are_refused() {
        for q in [
            "journal=..",
            "journal=../etc",
            "journal=%2e%2e%2fetc",
            "journal=a/b",
            "journal=a%2Fb",
            "journal=a%5Cb",
            "journal=a%00",
            "journal=.hidden",
            "journal=%2Fetc%2Fpasswd",
            "journal=a%20b",
            "journal=",
        ] {
            let e = ReplayParams::parse(q).unwrap_err();
            assert!(
                matches!(e, ParamError::BadName | ParamError::NoJournal),
                "{q}: {e}"
            );
        }
        let long = format!("journal={}", "a".repeat(MAX_NAME_BYTES + 1));
        assert_eq!(ReplayParams::parse(&long), Err(ParamError::BadName));
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(ReplayParams::parse("speed=1"), Err(ParamError::NoJournal));
        assert_eq!(
            ReplayParams::parse("journal=a&from=yesterday"),
            Err(ParamError::BadTime("from"))
        );
        assert_eq!(
            ReplayParams::parse("journal=a&speed=-1"),
            Err(ParamError::BadSpeed)
        );
        assert_eq!(
            ReplayParams::parse("journal=a&speed=99999999"),
            Err(ParamError::BadSpeed)
        );
        assert_eq!(
            ReplayParams::parse("journal=a&from=5&to=4"),
            Err(ParamError::Backwards)
        );
        assert!(matches!(
            ReplayParams::parse("journal=a&journal=b"),
            Err(ParamError::Unknown(_))
        ));
        assert!(matches!(
            ReplayParams::parse("journal=a&path=/x"),
            Err(ParamError::Unknown(_))
        ));
        assert!(matches!(
            ReplayParams::parse("journal=%zz"),
            Err(ParamError::Encoding(_))
        ));
        assert!(matches!(
            ReplayParams::parse("journal=%c3"),
            Err(ParamError::Encoding(_))
        ));
        assert!(matches!(
            ReplayParams::parse("journal=%"),
            Err(ParamError::Encoding(_))
        ));
    }

    #[test]
    fn times_in_both_forms() {
        assert_eq!(parse_time("0"), Some(0));
        assert_eq!(
            parse_time("1970-01-01T00:00:01.5+00:00"),
            Some(1_500_000_000)
        );
        assert_eq!(parse_time("1969-12-31T23:59:59Z"), None);
        assert_eq!(parse_time("99999999999999999999999"), None);
        assert_eq!(parse_time(""), None);
    }

    proptest::proptest! {
        /// Any query: a typed answer, never a panic, and an accepted name is never a path.
        #[test]
        fn any_query_parses_or_is_refused(q in ".{0,200}") {
            if let Ok(p) = ReplayParams::parse(&q) {
                proptest::prop_assert!(valid_name(&p.journal).is_ok());
                proptest::prop_assert!(!p.journal.contains('/') && !p.journal.starts_with('.'));
                proptest::prop_assert!(p.from_ns <= p.to_ns && p.speed <= MAX_SPEED);
            }
        }

        /// Percent-encoded bytes of any kind in the name: refused unless a plain name.
        #[test]
        fn encoded_names_are_checked_after_decoding(bytes in proptest::collection::vec(proptest::num::u8::ANY, 1..20)) {
            let enc: String = bytes.iter().map(|b| format!("%{b:02x}")).collect();
            if let Ok(p) = ReplayParams::parse(&format!("journal={enc}")) {
                proptest::prop_assert_eq!(p.journal.as_bytes(), &bytes[..]);
                proptest::prop_assert!(valid_name(&p.journal).is_ok());
            }
        }
    }
}

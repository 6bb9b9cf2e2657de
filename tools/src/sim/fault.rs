//! Faults the venue simulator can inject, and their text forms (`gap=3`, `usdm:drop@12.5`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tape_core::instrument::Market;
use tape_node::live::Endpoint;

/// Something going wrong at the venue. See `docs/venue-sim.md` for what clients observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Every stream connection is dropped without a close frame (the TCP connection just ends).
    Drop,
    /// `drop=public`, `drop=market`: only the USD-M stream connections of that routed endpoint
    /// class are dropped (a legacy `/stream` or `/ws` one counts as `public`).
    DropEndpoint(Endpoint),
    /// Every stream connection is closed with 1001, like Binance's 24-hour disconnect.
    Close,
    /// The next N depth frames of each symbol change the venue's book but are not sent.
    Gap(u32),
    /// Nothing at all is sent for this long; frames due meanwhile go out late, in order.
    Stall(Duration),
    /// Every stream client gets one frame of invalid JSON and one with mistyped fields.
    Malformed,
    /// The next frame is sent cut in half, instead of whole.
    Truncate,
    /// The next N REST depth requests are answered 503 with `Retry-After: 1`.
    RefuseSnapshot(u32),
    /// Every WebSocket API connection (only those) is dropped without a close frame; the
    /// account, its resting orders and listen key stay as they are.
    DropApi,
    /// The next N WebSocket API requests are carried out (orders placed, events sent) but
    /// never answered, so the client's request times out.
    MuteApi(u32),
    /// The futures listen key expires now: its `/private` connections get
    /// `listenKeyExpired` and are closed.
    ExpireListenKey,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Drop => f.write_str("drop"),
            Fault::DropEndpoint(e) => write!(f, "drop={e}"),
            Fault::Close => f.write_str("close"),
            Fault::Gap(n) => write!(f, "gap={n}"),
            Fault::Stall(d) => write!(f, "stall={}", d.as_millis()),
            Fault::Malformed => f.write_str("malformed"),
            Fault::Truncate => f.write_str("truncate"),
            Fault::RefuseSnapshot(n) => write!(f, "refuse-snapshot={n}"),
            Fault::DropApi => f.write_str("drop-api"),
            Fault::MuteApi(n) => write!(f, "mute-api={n}"),
            Fault::ExpireListenKey => f.write_str("expire-listen-key"),
        }
    }
}

impl FromStr for Fault {
    type Err = String;

    /// `drop[=public|market]`, `close`, `gap[=N]`, `stall=MS`, `malformed`, `truncate`,
    /// `refuse-snapshot[=N]`, `drop-api`, `mute-api[=N]`, `expire-listen-key`.
    fn from_str(s: &str) -> Result<Fault, String> {
        let (kind, arg) = match s.split_once('=') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        let count = |default: u32| -> Result<u32, String> {
            match arg {
                None => Ok(default),
                Some(a) => a
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{kind}: expected a positive count, got {a:?}")),
            }
        };
        let no_arg = |f: Fault| match arg {
            None => Ok(f),
            Some(_) => Err(format!("{kind} takes no argument")),
        };
        match kind {
            "drop" => match arg.map(|a| (a, Endpoint::parse(a))) {
                None => Ok(Fault::Drop),
                Some((_, Some(e))) => Ok(Fault::DropEndpoint(e)),
                Some((a, None)) => Err(format!("drop=: expected public or market, got {a:?}")),
            },
            "close" => no_arg(Fault::Close),
            "malformed" => no_arg(Fault::Malformed),
            "truncate" => no_arg(Fault::Truncate),
            "gap" => Ok(Fault::Gap(count(1)?)),
            "refuse-snapshot" => Ok(Fault::RefuseSnapshot(count(1)?)),
            "drop-api" => no_arg(Fault::DropApi),
            "mute-api" => Ok(Fault::MuteApi(count(1)?)),
            "expire-listen-key" => no_arg(Fault::ExpireListenKey),
            "stall" => {
                let ms = arg
                    .and_then(|a| a.parse::<u64>().ok())
                    .ok_or_else(|| "stall needs a duration in ms: stall=MS".to_owned())?;
                Ok(Fault::Stall(Duration::from_millis(ms)))
            }
            _ => Err(format!(
                "unknown fault {kind:?} (drop[=public|market], close, gap[=N], stall=MS, malformed, \
                 truncate, refuse-snapshot[=N], drop-api, mute-api[=N], expire-listen-key)"
            )),
        }
    }
}

/// A fault due at a timeline offset: it fires just before the first record recorded at least
/// `at` after the journal's first record, in every pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledFault {
    /// Offset into the recorded timeline.
    pub at: Duration,
    /// Only this market's listener (`None`: all of them).
    pub market: Option<Market>,
    /// What happens.
    pub fault: Fault,
}

impl FromStr for ScheduledFault {
    type Err = String;

    /// `[MARKET:]KIND@SECONDS`, e.g. `drop@5`, `usdm:gap=3@12.5`, `stall=800@2`.
    fn from_str(s: &str) -> Result<ScheduledFault, String> {
        let (spec, secs) = s
            .rsplit_once('@')
            .ok_or_else(|| format!("{s:?}: expected [MARKET:]KIND@SECONDS"))?;
        let (market, kind) = match spec.split_once(':') {
            Some((m, k)) => (
                Some(Market::parse(m).ok_or_else(|| format!("{s:?}: unknown market {m:?}"))?),
                k,
            ),
            None => (None, spec),
        };
        Ok(ScheduledFault {
            at: parse_secs(secs).ok_or_else(|| format!("{s:?}: bad offset {secs:?} (seconds)"))?,
            market,
            fault: kind.parse().map_err(|e| format!("{s:?}: {e}"))?,
        })
    }
}

/// `SECONDS[.FRACTION]` into a `Duration`, by digits (fraction digits past ns are cut).
fn parse_secs(s: &str) -> Option<Duration> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| t.bytes().all(|c| c.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) {
        return None;
    }
    let nanos = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0'));
    Some(Duration::new(int.parse().ok()?, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_print_back() {
        for (text, fault) in [
            ("drop", Fault::Drop),
            ("drop=market", Fault::DropEndpoint(Endpoint::Market)),
            ("drop=public", Fault::DropEndpoint(Endpoint::Public)),
            ("close", Fault::Close),
            ("gap", Fault::Gap(1)),
            ("gap=4", Fault::Gap(4)),
            ("stall=250", Fault::Stall(Duration::from_millis(250))),
            ("malformed", Fault::Malformed),
            ("truncate", Fault::Truncate),
            ("refuse-snapshot", Fault::RefuseSnapshot(1)),
            ("refuse-snapshot=2", Fault::RefuseSnapshot(2)),
            ("drop-api", Fault::DropApi),
            ("mute-api", Fault::MuteApi(1)),
            ("mute-api=3", Fault::MuteApi(3)),
            ("expire-listen-key", Fault::ExpireListenKey),
        ] {
            assert_eq!(text.parse::<Fault>(), Ok(fault), "{text}");
            assert_eq!(fault.to_string().parse::<Fault>(), Ok(fault));
        }
        for bad in [
            "",
            "boom",
            "gap=0",
            "gap=x",
            "stall",
            "stall=-1",
            "drop=1",
            "drop-api=1",
            "mute-api=0",
            "expire-listen-key=2",
        ] {
            assert!(bad.parse::<Fault>().is_err(), "{bad}");
        }
    }

    #[test]
    fn schedules_parse_with_optional_market() {
        assert_eq!(
            "usdm:gap=3@12.5".parse::<ScheduledFault>(),
            Ok(ScheduledFault {
                at: Duration::from_millis(12_500),
                market: Some(Market::UsdM),
                fault: Fault::Gap(3)
            })
        );
        let s: ScheduledFault = "stall=800@2".parse().unwrap();
        assert_eq!((s.at, s.market), (Duration::from_secs(2), None));
        for bad in [
            "drop",
            "drop@",
            "drop@x",
            "mars:drop@1",
            "drop@-1",
            "nope@1",
        ] {
            assert!(bad.parse::<ScheduledFault>().is_err(), "{bad}");
        }
        assert_eq!(parse_secs("0.0000000019"), Some(Duration::from_nanos(1)));
    }
}

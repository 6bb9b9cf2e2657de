//! Client requests: simd-json tape in, a validated [`Request`] (symbols resolved) out.
//!
//! The tape and the `id` rule are [`crate::wire::request`]'s, shared with the desk, which
//! reads order-entry and publish requests (only their `type` and `id` are read here).
//! Unknown keys are ignored so that clients written for a later protocol version keep
//! working. The `id` is read first, so that every later error can echo it.

use std::collections::HashSet;

use super::{Channel, MAX_BOOK_DEPTH};
use crate::desk::PrivateChannel;
use crate::instrument::{InstrumentId, Market, Registry};
use crate::wire::json::quoted;
use crate::wire::request::{request_id, Obj, Reader, Val, BAD_ID};
use crate::wire::{E_CHANNEL, E_INVALID, E_SYMBOL, MAX_ID_BYTES};

/// A request that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    /// `subscribe`: every pair of `channels` x `instruments` (both deduplicated, in request
    /// order).
    Subscribe {
        channels: Vec<Channel>,
        instruments: Vec<InstrumentId>,
        depth: Option<usize>,
        /// The `status` channel was named (it takes no symbols).
        status: bool,
        /// Private channels named (they take no symbols and need a session).
        private: Vec<PrivateChannel>,
    },
    /// `unsubscribe`.
    Unsubscribe {
        channels: Vec<Channel>,
        instruments: Vec<InstrumentId>,
        status: bool,
        private: Vec<PrivateChannel>,
    },
    /// `auth` with a token.
    Auth { token: String },
    /// A request the trading desk answers (order entry, publish: journaled and applied by
    /// the engine) or reads (`get_*`).
    Private(PrivateKind),
    /// `get_book` for one instrument.
    GetBook {
        instrument: InstrumentId,
        depth: Option<usize>,
    },
    /// `ping`.
    Ping,
    /// `resume`: streams to subscribe again from a `seq` on.
    Resume {
        streams: Vec<ResumeStream>,
        /// Publisher names of `signal`/`bot_status` entries, each once
        /// ([`ResumeTarget::Broadcast`] indexes it).
        publishers: Vec<String>,
        /// The run the `seq`s are from, if the client names it.
        run: Option<u64>,
    },
}

/// One stream named in a `resume`: where the client's view stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResumeStream {
    pub target: ResumeTarget,
    /// The last `seq` the client received on it.
    pub seq: u64,
    /// Snapshot depth (`book`), if named.
    pub depth: Option<usize>,
}

/// The stream a `resume` entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResumeTarget {
    /// A market channel of one instrument.
    Market(Channel, InstrumentId),
    /// A per-user private channel of the session's user.
    Private(PrivateChannel),
    /// `signal` or `bot_status` of one publisher (an index into the request's publishers).
    Broadcast(PrivateChannel, usize),
}

/// Most streams one `resume` may name.
pub(crate) const MAX_RESUME_STREAMS: usize = 1000;

/// Requests that need an authenticated session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrivateKind {
    /// `place_order`, `place_oco`, `place_trailing`, `cancel_order` (role `trader`).
    Order,
    /// `cancel_all` with `"all_users":true` (role `admin`).
    AdminOrder,
    /// `publish` (role `publisher`).
    Publish,
    /// `get_orders`.
    GetOrders,
    /// `get_positions`.
    GetPositions,
    /// `get_portfolio`.
    GetPortfolio,
}

/// Longest token accepted in an `auth` request, bytes.
const MAX_TOKEN_BYTES: usize = 4096;

/// A refused request: the error code and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReqError {
    pub code: u16,
    pub message: String,
}

impl ReqError {
    fn new(code: u16, message: impl Into<String>) -> Self {
        ReqError {
            code,
            message: message.into(),
        }
    }
}

/// What parsing a request produced: its rendered `id` (when valid) and the request.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// The `id` as JSON text (an integer, or an escaped string literal).
    pub id: Option<String>,
    pub request: Result<Request, ReqError>,
}

/// Reusable parsing buffers.
#[derive(Default)]
pub(crate) struct Parser {
    reader: Reader,
}

fn invalid(msg: impl Into<String>) -> ReqError {
    ReqError::new(E_INVALID, format!("invalid message: {}", msg.into()))
}

/// A short, escaped rendering of client text for error messages.
fn show(s: &str) -> String {
    let cut: String = s.chars().take(MAX_ID_BYTES).collect();
    quoted(&cut)
}

impl Parser {
    /// Parses one text frame. Never panics, whatever the input.
    pub(crate) fn parse(&mut self, text: &str, registry: &Registry) -> Parsed {
        self.reader.read(text.as_bytes(), |root| {
            let obj = match root {
                Ok(o) => o,
                Err(e) => {
                    return Parsed {
                        id: None,
                        request: Err(invalid(e.message())),
                    }
                }
            };
            match request_id(obj) {
                Ok(id) => Parsed {
                    id,
                    request: parse_request(obj, registry),
                },
                Err(()) => Parsed {
                    id: None,
                    request: Err(invalid(BAD_ID)),
                },
            }
        })
    }
}

fn parse_request(o: Obj<'_>, registry: &Registry) -> Result<Request, ReqError> {
    let Some(kind) = o.kind() else {
        return Err(invalid("expected a JSON object with a \"type\""));
    };
    match kind {
        "subscribe" | "unsubscribe" => {
            let (mut channels, private) = channels(o.get("channels"))?;
            let status = channels.contains(&Channel::Status);
            channels.retain(|c| *c != Channel::Status);
            // `status` alone needs no symbols; with market channels, they name the symbols.
            let names = if channels.is_empty() {
                Vec::new()
            } else {
                strings(o.get("symbols"), "symbols")?
            };
            let mut instruments = Vec::new();
            let mut seen = HashSet::new();
            for name in names {
                for id in resolve(registry, name)?.into_iter().flatten() {
                    if seen.insert(id) {
                        instruments.push(id);
                    }
                }
            }
            if kind == "subscribe" {
                let depth = depth(o.get("depth"))?;
                Ok(Request::Subscribe {
                    channels,
                    instruments,
                    depth,
                    status,
                    private,
                })
            } else {
                Ok(Request::Unsubscribe {
                    channels,
                    instruments,
                    status,
                    private,
                })
            }
        }
        "get_book" => {
            let Some(name) = o.get("symbol").and_then(Val::as_str) else {
                return Err(invalid("\"symbol\" must be a string"));
            };
            let instrument = one_instrument(registry, name)?;
            Ok(Request::GetBook {
                instrument,
                depth: depth(o.get("depth"))?,
            })
        }
        "ping" => Ok(Request::Ping),
        "resume" => resume(o, registry),
        "auth" => match o.get("token").and_then(Val::as_str) {
            Some(t) if !t.is_empty() && t.len() <= MAX_TOKEN_BYTES => Ok(Request::Auth {
                token: t.to_owned(),
            }),
            _ => Err(invalid(format!(
                "\"token\" must be a non-empty string of at most {MAX_TOKEN_BYTES} bytes"
            ))),
        },
        "place_order" | "place_oco" | "place_trailing" | "cancel_order" => {
            Ok(Request::Private(PrivateKind::Order))
        }
        "cancel_all" => match o.get("all_users").map(|v| v.as_bool()) {
            None | Some(Some(false)) => Ok(Request::Private(PrivateKind::Order)),
            Some(Some(true)) => Ok(Request::Private(PrivateKind::AdminOrder)),
            Some(None) => Err(invalid("\"all_users\" must be true or false".to_owned())),
        },
        "publish" => Ok(Request::Private(PrivateKind::Publish)),
        "get_orders" => Ok(Request::Private(PrivateKind::GetOrders)),
        "get_positions" => Ok(Request::Private(PrivateKind::GetPositions)),
        "get_portfolio" => Ok(Request::Private(PrivateKind::GetPortfolio)),
        other => Err(invalid(format!("unknown type {}", show(other)))),
    }
}

/// The streams of a `resume`: `[{"channel","symbol"?,"seq","depth"?},...]`.
fn resume(o: Obj<'_>, registry: &Registry) -> Result<Request, ReqError> {
    let bad = || {
        invalid(format!(
            "\"streams\" must be a non-empty array of at most {MAX_RESUME_STREAMS} objects"
        ))
    };
    let items = o.get("streams").and_then(Val::as_array).ok_or_else(bad)?;
    let mut streams = Vec::new();
    let mut publishers: Vec<String> = Vec::new();
    for v in items {
        if streams.len() == MAX_RESUME_STREAMS {
            return Err(bad());
        }
        let e = v.as_obj().ok_or_else(bad)?;
        let Some(name) = e.get("channel").and_then(Val::as_str) else {
            return Err(invalid("each stream needs a \"channel\" string"));
        };
        let Some(seq) = e.get("seq").and_then(Val::as_u64) else {
            return Err(invalid(
                "each stream needs a \"seq\": the last seq received, an integer >= 0",
            ));
        };
        let target = if let Some(p) = PrivateChannel::parse(name) {
            if p.is_per_user() {
                ResumeTarget::Private(p)
            } else {
                // `seq` counts per publisher on the broadcast channels.
                let Some(publisher) = e.get("publisher").and_then(Val::as_str) else {
                    return Err(invalid(format!(
                        "stream of channel {} needs a \"publisher\" string (its seq counts per publisher)",
                        show(name)
                    )));
                };
                let i = match publishers.iter().position(|x| x == publisher) {
                    Some(i) => i,
                    None => {
                        publishers.push(publisher.to_owned());
                        publishers.len() - 1
                    }
                };
                ResumeTarget::Broadcast(p, i)
            }
        } else {
            let ch = Channel::parse(name).ok_or_else(|| {
                ReqError::new(E_CHANNEL, format!("unknown channel {}", show(name)))
            })?;
            if ch == Channel::Status {
                return Err(invalid(
                    "channel \"status\" cannot be resumed (it has no history); subscribe to it",
                ));
            }
            let Some(sym) = e.get("symbol").and_then(Val::as_str) else {
                return Err(invalid(format!(
                    "stream of channel {} needs a \"symbol\" string",
                    show(name)
                )));
            };
            ResumeTarget::Market(ch, one_instrument(registry, sym)?)
        };
        let depth = depth(e.get("depth"))?;
        streams.push(ResumeStream { target, seq, depth });
    }
    if streams.is_empty() {
        return Err(bad());
    }
    let run =
        match o.get("run") {
            None => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                invalid("\"run\" must be the integer a \"subscribed\" reply gave")
            })?),
        };
    Ok(Request::Resume {
        streams,
        publishers,
        run,
    })
}

/// The one instrument `name` names; a bare symbol listed by several markets is ambiguous.
fn one_instrument(registry: &Registry, name: &str) -> Result<InstrumentId, ReqError> {
    let found = resolve(registry, name)?;
    let mut ids = found.iter().flatten();
    let Some(&instrument) = ids.next() else {
        return Err(ReqError::new(
            E_SYMBOL,
            format!("unknown symbol {}", show(name)),
        ));
    };
    if ids.next().is_some() {
        let names: Vec<String> = found
            .iter()
            .flatten()
            .map(|id| {
                let i = registry.get(*id);
                format!("{}:{}", i.market, i.symbol)
            })
            .collect();
        return Err(ReqError::new(
            E_SYMBOL,
            format!(
                "ambiguous symbol {}: name the market ({})",
                show(name),
                names.join(", ")
            ),
        ));
    }
    Ok(instrument)
}

/// The string elements of a non-empty array.
fn strings<'a>(v: Option<Val<'a>>, name: &str) -> Result<Vec<&'a str>, ReqError> {
    let bad = || invalid(format!("\"{name}\" must be a non-empty array of strings"));
    let items = v.and_then(Val::as_array).ok_or_else(bad)?;
    let names: Vec<&str> = items
        .map(|v| v.as_str().ok_or_else(bad))
        .collect::<Result<_, _>>()?;
    if names.is_empty() {
        return Err(bad());
    }
    Ok(names)
}

/// The market (and `status`) channels named, and the private ones, each deduplicated.
fn channels(v: Option<Val<'_>>) -> Result<(Vec<Channel>, Vec<PrivateChannel>), ReqError> {
    let mut out = Vec::with_capacity(Channel::ALL.len());
    let mut private = Vec::new();
    for name in strings(v, "channels")? {
        if let Some(p) = PrivateChannel::parse(name) {
            if !private.contains(&p) {
                private.push(p);
            }
            continue;
        }
        let ch = Channel::parse(name)
            .ok_or_else(|| ReqError::new(E_CHANNEL, format!("unknown channel {}", show(name))))?;
        if !out.contains(&ch) {
            out.push(ch);
        }
    }
    Ok((out, private))
}

fn depth(v: Option<Val<'_>>) -> Result<Option<usize>, ReqError> {
    let Some(v) = v else { return Ok(None) };
    match v.as_u64() {
        Some(d @ 1..) if d <= MAX_BOOK_DEPTH as u64 => Ok(Some(d as usize)),
        _ => Err(invalid(format!(
            "\"depth\" must be an integer from 1 to {MAX_BOOK_DEPTH}"
        ))),
    }
}

/// The instruments `name` (`SYMBOL` or `MARKET:SYMBOL`) names, one slot per market in
/// [`Market`] order; at least one is `Some`.
fn resolve(registry: &Registry, name: &str) -> Result<[Option<InstrumentId>; 3], ReqError> {
    let unknown = || ReqError::new(E_SYMBOL, format!("unknown symbol {}", show(name)));
    let mut found = [None; 3];
    match name.split_once(':') {
        Some((m, sym)) => {
            let market = Market::parse(m).ok_or_else(unknown)?;
            found[0] = registry.lookup(market, sym.as_bytes());
        }
        None => {
            for (slot, market) in found
                .iter_mut()
                .zip([Market::Spot, Market::UsdM, Market::CoinM])
            {
                *slot = registry.lookup(market, name.as_bytes());
            }
        }
    }
    if found.iter().all(Option::is_none) {
        return Err(unknown());
    }
    Ok(found)
}

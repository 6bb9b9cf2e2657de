//! Client requests: simd-json tape in, a validated [`Request`] (symbols resolved) out.
//!
//! The root object is walked once; unknown keys are ignored so that clients written for a
//! later protocol version keep working. The `id` is read first, so that every later error
//! can echo it.

use std::collections::HashSet;

use simd_json::{Buffers, Node, StaticNode, Tape, INPUT_PADDING};

use super::{Channel, MAX_BOOK_DEPTH};
use crate::desk::PrivateChannel;
use crate::instrument::{InstrumentId, Market, Registry};
use crate::wire::json::quoted;
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
}

/// Requests that need an authenticated session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrivateKind {
    /// `place_order`, `place_oco`, `place_trailing`, `cancel_order` (role `trader`).
    Order,
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
pub(crate) struct Parser {
    scratch: Vec<u8>,
    buffers: Buffers,
    /// Always empty between calls; `Tape::reset` re-lifetimes it to each input.
    tape: Tape<'static>,
}

impl Default for Parser {
    fn default() -> Self {
        Parser {
            scratch: Vec::with_capacity(1024),
            buffers: Buffers::new(1024),
            tape: Tape(Vec::with_capacity(256)),
        }
    }
}

fn invalid(msg: impl Into<String>) -> ReqError {
    ReqError::new(E_INVALID, format!("invalid message: {}", msg.into()))
}

/// Number of tape nodes a value occupies, its header included.
fn span(node: &Node<'_>) -> usize {
    match node {
        Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
        _ => 1,
    }
}

/// A short, escaped rendering of client text for error messages.
fn show(s: &str) -> String {
    let cut: String = s.chars().take(MAX_ID_BYTES).collect();
    quoted(&cut)
}

impl Parser {
    /// Parses one text frame. Never panics, whatever the input.
    pub(crate) fn parse(&mut self, text: &str, registry: &Registry) -> Parsed {
        let len = text.len();
        self.scratch.clear();
        self.scratch.extend_from_slice(text.as_bytes());
        self.scratch.resize(len + INPUT_PADDING, b' ');
        let mut t = std::mem::replace(&mut self.tape, Tape(Vec::new())).reset();
        let parsed =
            match simd_json::fill_tape_padded(&mut self.scratch, len, &mut self.buffers, &mut t) {
                Ok(()) => parse_nodes(&t.0, registry),
                Err(_) => Parsed {
                    id: None,
                    request: Err(invalid("not JSON")),
                },
            };
        self.tape = t.reset();
        parsed
    }
}

/// The fields a request may have, as tape indices of their values.
#[derive(Default)]
struct Fields {
    kind: Option<usize>,
    id: Option<usize>,
    channels: Option<usize>,
    symbols: Option<usize>,
    symbol: Option<usize>,
    depth: Option<usize>,
    token: Option<usize>,
}

fn parse_nodes(nodes: &[Node<'_>], registry: &Registry) -> Parsed {
    let no_id = |e| Parsed {
        id: None,
        request: Err(e),
    };
    let Some(Node::Object { len, .. }) = nodes.first() else {
        return no_id(invalid("expected a JSON object with a \"type\""));
    };
    let mut f = Fields::default();
    let mut p = 1;
    for _ in 0..*len {
        let (Some(Node::String(k)), Some(v)) = (nodes.get(p), nodes.get(p + 1)) else {
            break;
        };
        let slot = match *k {
            "type" => &mut f.kind,
            "id" => &mut f.id,
            "channels" => &mut f.channels,
            "symbols" => &mut f.symbols,
            "symbol" => &mut f.symbol,
            "depth" => &mut f.depth,
            "token" => &mut f.token,
            _ => {
                p += 1 + span(v);
                continue;
            }
        };
        *slot = Some(p + 1);
        p += 1 + span(v);
    }
    let id = match f.id.map(|i| &nodes[i]) {
        None => None,
        Some(Node::Static(StaticNode::I64(v))) => Some(itoa::Buffer::new().format(*v).to_owned()),
        Some(Node::Static(StaticNode::U64(v))) => Some(itoa::Buffer::new().format(*v).to_owned()),
        Some(Node::String(s)) if s.len() <= MAX_ID_BYTES => Some(quoted(s)),
        Some(_) => {
            return no_id(invalid(format!(
                "\"id\" must be an integer or a string of at most {MAX_ID_BYTES} bytes"
            )))
        }
    };
    let request = parse_request(nodes, &f, registry);
    Parsed { id, request }
}

fn parse_request(nodes: &[Node<'_>], f: &Fields, registry: &Registry) -> Result<Request, ReqError> {
    let kind = match f.kind.map(|i| &nodes[i]) {
        Some(Node::String(s)) => *s,
        _ => return Err(invalid("expected a JSON object with a \"type\"")),
    };
    match kind {
        "subscribe" | "unsubscribe" => {
            let (mut channels, private) = channels(nodes, f.channels)?;
            let status = channels.contains(&Channel::Status);
            channels.retain(|c| *c != Channel::Status);
            // `status` alone needs no symbols; with market channels, they name the symbols.
            let names = if channels.is_empty() {
                Vec::new()
            } else {
                strings(nodes, f.symbols, "symbols")?
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
                let depth = depth(nodes, f.depth)?;
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
            let name = match f.symbol.map(|i| &nodes[i]) {
                Some(Node::String(s)) => *s,
                _ => return Err(invalid("\"symbol\" must be a string")),
            };
            let found = resolve(registry, name)?;
            let mut ids = found.iter().flatten();
            let instrument = *ids.next().expect("resolve finds at least one");
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
            Ok(Request::GetBook {
                instrument,
                depth: depth(nodes, f.depth)?,
            })
        }
        "ping" => Ok(Request::Ping),
        "auth" => match f.token.map(|i| &nodes[i]) {
            Some(Node::String(t)) if !t.is_empty() && t.len() <= MAX_TOKEN_BYTES => {
                Ok(Request::Auth {
                    token: (*t).to_owned(),
                })
            }
            _ => Err(invalid(format!(
                "\"token\" must be a non-empty string of at most {MAX_TOKEN_BYTES} bytes"
            ))),
        },
        "place_order" | "place_oco" | "place_trailing" | "cancel_order" => {
            Ok(Request::Private(PrivateKind::Order))
        }
        "publish" => Ok(Request::Private(PrivateKind::Publish)),
        "get_orders" => Ok(Request::Private(PrivateKind::GetOrders)),
        "get_positions" => Ok(Request::Private(PrivateKind::GetPositions)),
        "get_portfolio" => Ok(Request::Private(PrivateKind::GetPortfolio)),
        other => Err(invalid(format!("unknown type {}", show(other)))),
    }
}

/// The string elements of the non-empty array at `at`.
fn strings<'a>(
    nodes: &'a [Node<'a>],
    at: Option<usize>,
    name: &str,
) -> Result<Vec<&'a str>, ReqError> {
    let bad = || invalid(format!("\"{name}\" must be a non-empty array of strings"));
    let at = at.ok_or_else(bad)?;
    let Node::Array { len, .. } = nodes[at] else {
        return Err(bad());
    };
    if len == 0 {
        return Err(bad());
    }
    // An array of strings has one node per element, so they are contiguous.
    (at + 1..at + 1 + len)
        .map(|i| match nodes.get(i) {
            Some(Node::String(s)) => Ok(*s),
            _ => Err(bad()),
        })
        .collect()
}

/// The market (and `status`) channels named, and the private ones, each deduplicated.
fn channels(
    nodes: &[Node<'_>],
    at: Option<usize>,
) -> Result<(Vec<Channel>, Vec<PrivateChannel>), ReqError> {
    let mut out = Vec::with_capacity(Channel::ALL.len());
    let mut private = Vec::new();
    for name in strings(nodes, at, "channels")? {
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

fn depth(nodes: &[Node<'_>], at: Option<usize>) -> Result<Option<usize>, ReqError> {
    let Some(at) = at else { return Ok(None) };
    let v = match nodes[at] {
        Node::Static(StaticNode::I64(v)) => u64::try_from(v).ok(),
        Node::Static(StaticNode::U64(v)) => Some(v),
        _ => None,
    };
    match v {
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

//! What the client protocol's two writers share: the JSON writer and the protocol's constants.
//!
//! Both the public hub (`server`) and the trading desk (`desk`) write client messages; this is
//! their common ground, so neither imports the other's internals. Both also read client
//! requests the same way ([`request`]).

pub(crate) mod arena;
pub mod json;
pub mod request;

pub use json::JsonBuf;

/// Longest string `id` accepted, in bytes.
pub const MAX_ID_BYTES: usize = 64;

/// Error code (and close code at connect time): the request needs an authenticated session,
/// or authentication failed (bad `?token=`).
pub const E_UNAUTHORIZED: u16 = 4001;
/// Error code: the session's roles do not allow the request.
pub const E_FORBIDDEN: u16 = 4002;
/// Error code: invalid message.
pub const E_INVALID: u16 = 4004;
/// Error code: unknown or ambiguous symbol.
pub const E_SYMBOL: u16 = 4005;
/// Error code: unknown channel.
pub const E_CHANNEL: u16 = 4006;
/// Error code: over the request budget.
pub const E_RATE_LIMITED: u16 = 4007;
/// Error code: message too large.
pub const E_TOO_LARGE: u16 = 4008;
/// Error code: over the subscription cap.
pub const E_TOO_MANY_SUBS: u16 = 4009;
/// Error code: a `resume` named a `seq` ahead of its stream's last one (the client holds
/// numbers from another run, or made them up).
pub const E_RESUME_AHEAD: u16 = 4012;
/// Error code: the order (or cancel) was refused by the account (state, validation).
pub const E_ORDER_REJECTED: u16 = 4020;
/// Error code: the order was refused by a pre-trade risk limit (a `risk_alert` follows on
/// the `risk_alerts` channel).
pub const E_RISK_REJECTED: u16 = 4021;

/// Error code: the node cannot journal right now (e.g. a full disk), so it takes no order or
/// publish: journal before apply is the rule. Retry when the `status` channel's `journal`
/// entry is `ok` again.
pub const E_JOURNAL_UNAVAILABLE: u16 = 4030;

/// Error code, on an edge: an order, publish or private subscription that the origin did not
/// take, or whose outcome the edge cannot know (the origin refused it, did not answer, or
/// cannot be reached; or the edge's log is not live, so it takes no order). The message says
/// which; when the outcome is unknown, `orders` (or `get_orders`) tells whether it was taken.
pub const E_ORIGIN_UNAVAILABLE: u16 = 4031;

/// Close code (IANA "Try Again Later"): an edge's origin did not take the session's login,
/// so the origin's desk does not know the session; reconnect and authenticate again.
pub const CLOSE_TRY_AGAIN_LATER: u16 = 1013;

/// Close code: authentication failed at connect time (bad `?token=`).
pub const CLOSE_UNAUTHORIZED: u16 = E_UNAUTHORIZED;
/// Close code: too many errors in a row.
pub const CLOSE_TOO_MANY_ERRORS: u16 = 1008;
/// Close code (and error code): too many connections.
pub const CLOSE_TOO_MANY_CONNECTIONS: u16 = 4003;
/// Close code: slow consumer.
pub const CLOSE_SLOW_CONSUMER: u16 = 4010;
/// Close code: heartbeat timeout.
pub const CLOSE_HEARTBEAT_TIMEOUT: u16 = 4011;

//! What the io layer tells the desk about the order gateway, journaled as
//! [`RecordKind::GatewayEvent`](crate::input::RecordKind::GatewayEvent) records in order with
//! the venue's frames, so a replay drives the desk through the same connects, drops, sends and
//! timeouts.

/// One gateway event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayEvent {
    /// The API connection is open (before any logon).
    Up,
    /// Logged on where the key needs it, and the account's user data flows: the desk
    /// reconciles its orders with the venue's.
    Ready,
    /// The API connection or the user-data connection went down. Requests still
    /// outstanding are in doubt until the next reconciliation.
    Down {
        /// Why, one line.
        reason: String,
    },
    /// A request as written to the venue, or, in dry run, as it would have been: the
    /// signed payload without `signature` and without `apiKey`.
    Sent {
        /// The request JSON.
        request: String,
        /// Not written (dry run).
        dry_run: bool,
    },
    /// The node is stopping with `cancel_on_shutdown`: every user's live orders are
    /// cancelled (the io layer waits, bounded, for the answers before it closes).
    Shutdown,
    /// A request the venue did not answer within the configured timeout: the desk resolves
    /// it by asking the venue, as after a reconnect.
    Timeout {
        /// The request's id.
        id: u64,
    },
}

impl GatewayEvent {
    /// The record payload (version 2, see [`crate::record`]).
    pub fn to_payload(&self) -> String {
        crate::record::encode_gateway(self)
    }
}

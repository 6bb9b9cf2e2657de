//! The WebSocket API's authentication on the venue: each request is checked
//! ([`crate::sim::orders::auth::check`]) against the wall clock before it runs, and the session
//! methods (`session.logon`, `session.status`, `session.logout`) keep the connection's logon.
//!
//! Timestamps are checked against the real system clock, as Binance checks them against its
//! own: clients sign with their wall clock. The replayed session's clock (`Listener::clock_ms`)
//! stays what fills and events are stamped with.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use tape_node::net::SocketId;

use super::Venue;
use crate::sim::auth::{KeyId, SimAuth};
use crate::sim::orders::auth::{self, rejected_key, Authorized, SessionAuth, SessionOp};
use crate::sim::orders::{ApiError, Call, Outcome};

/// Stands for "logged on" in lenient mode, where no key is checked.
const LENIENT_KEY: KeyId = KeyId(u32::MAX);

/// The wall clock in µs since the Unix epoch (0 before it: a clock that far off fails every
/// timestamp, which is the right answer).
pub(crate) fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The wall clock in ms: `serverTime`.
pub(crate) fn wall_ms() -> u64 {
    wall_us() / 1000
}

/// A new API connection's authentication state.
pub(super) fn new_session() -> SessionAuth {
    SessionAuth {
        logged_on: None,
        connected_ms: wall_ms(),
        logon_subscription: false,
    }
}

impl Venue {
    /// Runs `call` (parsed from `text`) if the connection may: the request's security is
    /// checked first (strict mode), except for frames the parser could not even name a method
    /// in, whose parse error stands.
    pub(super) fn authorized_call(
        &mut self,
        li: usize,
        conn: SocketId,
        text: &str,
        call: Result<Call, ApiError>,
    ) -> Result<Outcome, ApiError> {
        let call = match call {
            // -1135: not JSON / params not an object; -1020: a method the sim does not serve;
            // -1102 on `method`: none given.
            Err(e)
                if e.code == -1135
                    || e.code == -1020
                    || (e.code == -1102 && e.msg.contains("'method'")) =>
            {
                return Err(e)
            }
            other => other,
        };
        let authorized = match &self.auth {
            SimAuth::Lenient => None,
            SimAuth::Strict(keys) => {
                let session = self.session(li, conn).unwrap_or_default();
                match auth::check(text, &session, keys, wall_us()) {
                    Ok(a) => Some(a),
                    Err(e) => {
                        self.stats.auth_refused += 1;
                        return Err(e);
                    }
                }
            }
        };
        let call = call?;
        let key = authorized.as_ref().and_then(|a| a.key);
        match call {
            Call::Session(op) => self.session_call(li, conn, op, key),
            Call::Subscribe => {
                let outcome = self.api_call(li, conn, Call::Subscribe)?;
                // Only a subscription made through the logon ends with `session.logout`.
                let by_logon = authorized
                    .as_ref()
                    .is_some_and(|a: &Authorized| a.method.ends_with("userDataStream.subscribe"));
                if let Some(s) = self.session_mut(li, conn) {
                    s.logon_subscription = by_logon;
                }
                Ok(outcome)
            }
            call => self.api_call(li, conn, call),
        }
    }

    fn session(&self, li: usize, conn: SocketId) -> Option<SessionAuth> {
        self.listeners[li]
            .clients
            .get(&conn)
            .and_then(|c| c.api.as_ref())
            .map(|a| a.auth)
    }

    fn session_mut(&mut self, li: usize, conn: SocketId) -> Option<&mut SessionAuth> {
        self.listeners[li]
            .clients
            .get_mut(&conn)
            .and_then(|c| c.api.as_mut())
            .map(|a| &mut a.auth)
    }

    /// `session.logon` (with the key [`auth::check`] verified), `session.status`,
    /// `session.logout`: each answers the session's status.
    pub(super) fn session_call(
        &mut self,
        li: usize,
        conn: SocketId,
        op: SessionOp,
        key: Option<KeyId>,
    ) -> Result<Outcome, ApiError> {
        let lenient = self.auth.is_lenient();
        let now_ms = wall_ms();
        let Some(api) = self.listeners[li]
            .clients
            .get_mut(&conn)
            .and_then(|c| c.api.as_mut())
        else {
            return Err(ApiError::new(-1000, "connection is gone"));
        };
        match op {
            SessionOp::Logon => {
                let key = match key {
                    Some(k) => k,
                    None if lenient => LENIENT_KEY,
                    None => return Err(rejected_key()),
                };
                api.auth.logged_on = Some((key, now_ms));
            }
            SessionOp::Logout => {
                api.auth.logged_on = None;
                if api.auth.logon_subscription {
                    api.subscription = None;
                    api.auth.logon_subscription = false;
                }
            }
            SessionOp::Status => {}
        }
        let (auth, subscribed) = (api.auth, api.subscription.is_some());
        let api_key = match (&self.auth, auth.logged_on) {
            (SimAuth::Strict(keys), Some((id, _))) => keys.get(id).map(|(name, _)| name.to_owned()),
            _ => None,
        };
        let result = json!({
            "apiKey": api_key,
            "authorizedSince": auth.logged_on.map(|(_, since)| since),
            "connectedSince": auth.connected_ms,
            "returnRateLimits": false,
            "serverTime": now_ms,
            "userDataStream": subscribed,
        });
        Ok(Outcome {
            result: result.to_string(),
            events: Vec::new(),
        })
    }
}

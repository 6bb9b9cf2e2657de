//! Why a snapshot request failed ([`HttpError`]) and the per-request context that words every
//! error: the peer, the phase, and the deadline that turns a blocked read into a timeout.

use std::io;
use std::time::{Duration, Instant};

/// Why a request failed. Every message names the peer and, for transfer errors, the phase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The URL is not one this client can fetch (caller mistake).
    #[error("invalid URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {message}")]
    Resolve {
        /// The host.
        host: String,
        /// The resolver's error.
        message: String,
    },
    /// No resolved address accepted a TCP connection.
    #[error("cannot connect to {peer}: {message}")]
    Connect {
        /// `host:port`.
        peer: String,
        /// The last address's error.
        message: String,
    },
    /// The TLS layer failed (untrusted certificate, bad record, ...).
    #[error("TLS error with {peer} during {during}: {message}")]
    Tls {
        /// `host:port`.
        peer: String,
        /// The phase.
        during: &'static str,
        /// What rustls said.
        message: String,
    },
    /// A socket error.
    #[error("I/O error with {peer} during {during}: {message}")]
    Io {
        /// `host:port`.
        peer: String,
        /// The phase.
        during: &'static str,
        /// The error kind.
        kind: io::ErrorKind,
        /// The error text.
        message: String,
    },
    /// The request deadline passed.
    #[error("request to {peer} timed out after {limit_ms} ms during {during}")]
    Timeout {
        /// `host:port`.
        peer: String,
        /// The phase.
        during: &'static str,
        /// The request deadline.
        limit_ms: u64,
    },
    /// The server sent something that is not a valid HTTP/1.x response (peer fault).
    #[error("bad response from {peer}: {reason}")]
    BadResponse {
        /// `host:port`.
        peer: String,
        /// What was wrong.
        reason: String,
    },
    /// The body is larger than the caller's limit.
    #[error("response body from {peer} exceeds the {limit}-byte limit")]
    BodyTooLarge {
        /// `host:port`.
        peer: String,
        /// The limit.
        limit: usize,
    },
}

/// One request's deadline and peer: the context every error carries.
pub(super) struct Req {
    pub(super) peer: String,
    pub(super) deadline: Instant,
    pub(super) limit_ms: u64,
}

impl Req {
    pub(super) fn remaining(&self, during: &'static str) -> Result<Duration, HttpError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.timeout(during));
        }
        Ok(left)
    }

    pub(super) fn timeout(&self, during: &'static str) -> HttpError {
        HttpError::Timeout {
            peer: self.peer.clone(),
            during,
            limit_ms: self.limit_ms,
        }
    }

    /// Classifies a socket error: timeouts, rustls errors (wrapped by `StreamOwned`), the rest.
    pub(super) fn io(&self, e: io::Error, during: &'static str) -> HttpError {
        if matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            return self.timeout(during);
        }
        if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            return HttpError::Tls {
                peer: self.peer.clone(),
                during,
                message: tls.to_string(),
            };
        }
        HttpError::Io {
            peer: self.peer.clone(),
            during,
            kind: e.kind(),
            message: e.to_string(),
        }
    }

    pub(super) fn bad(&self, reason: String) -> HttpError {
        HttpError::BadResponse {
            peer: self.peer.clone(),
            reason,
        }
    }
}

//! `GET /replay` and `GET /replay.ndjson` on the engine thread: the checks only. A request that
//! passes them leaves the server (its socket is detached) for a replay thread; one that does
//! not is answered here with its status (400 bad query, 401/403 authorization, 404 unknown
//! journal, 405 method, 426 not a WebSocket, 501 TLS, 503 too many sessions).

use tape_core::auth::Role;
use tape_core::input::Nanos;

use super::http::{Answer, TEXT};
use super::Node;
use crate::net::SocketId;
use crate::replay::{ReplayParams, ReplayWire};

/// The WebSocket replay path.
pub(super) const REPLAY_WS_PATH: &str = "/replay";
/// The NDJSON replay path.
pub(super) const REPLAY_NDJSON_PATH: &str = "/replay.ndjson";

/// True for the two replay paths.
pub(super) fn is_replay_path(path: &str) -> bool {
    path == REPLAY_WS_PATH || path == REPLAY_NDJSON_PATH
}

/// A replay request as the transport delivered it.
#[derive(Debug)]
pub(super) struct ReplayRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub authorization: Option<&'a str>,
    /// Set for a valid WebSocket upgrade request.
    pub ws_accept: Option<String>,
}

fn refuse(status: u16, msg: impl Into<String>) -> Answer {
    let mut body = msg.into();
    body.push('\n');
    Answer::new(status, TEXT, body.into_bytes())
}

impl Node {
    /// Checks a replay request; `None` when a replay thread took the connection, otherwise
    /// the refusal to answer with.
    pub(super) fn replay_request(
        &mut self,
        conn: SocketId,
        req: ReplayRequest<'_>,
        now: u64,
    ) -> Option<Answer> {
        let replays = self.replays.as_ref()?;
        if req.method != "GET" {
            return Some(refuse(405, "405 Method Not Allowed: use GET").header("Allow", "GET"));
        }
        let wire = if req.path == REPLAY_WS_PATH {
            match req.ws_accept {
                Some(accept) => ReplayWire::WebSocket { accept },
                None => {
                    return Some(refuse(
                        426,
                        "426 Upgrade Required: /replay speaks WebSocket; GET /replay.ndjson \
                         streams the same messages over plain HTTP",
                    ))
                }
            }
        } else {
            ReplayWire::Ndjson
        };
        let mut params = match ReplayParams::parse(req.query) {
            Ok(p) => p,
            Err(e) => return Some(refuse(400, format!("400 Bad Request: {e}"))),
        };
        if wire == ReplayWire::Ndjson && params.subscribe.is_none() {
            return Some(refuse(
                400,
                "400 Bad Request: /replay.ndjson needs channels= (and symbols=, depth=): what \
                 to subscribe to",
            ));
        }
        let token = params.token.clone().or_else(|| {
            req.authorization
                .and_then(|a| a.strip_prefix("Bearer "))
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
        });
        match &token {
            Some(t) => {
                let bearer = format!("Bearer {t}");
                let hub = &mut self.pipe.hub;
                // `replay` or `viewer` (which `trader` and `admin` include).
                let verdict = match hub.authorize_http(Some(&bearer), Role::Replay, Nanos(now)) {
                    Err((403, _)) => hub.authorize_http(Some(&bearer), Role::Viewer, Nanos(now)),
                    v => v,
                };
                if let Err((status, msg)) = verdict {
                    let msg = if status == 403 {
                        "forbidden: role replay or viewer required".to_owned()
                    } else {
                        msg
                    };
                    return Some(refuse(status, msg));
                }
            }
            None if !replays.config().public => {
                return Some(refuse(
                    401,
                    "401 Unauthorized: replay needs a token (token= or Authorization: Bearer) \
                     of a user with role replay or viewer",
                ))
            }
            None => {}
        }
        params.token = token;
        // After the authorization: which names exist is not for anyone to probe.
        let Some(dir) = replays.config().journal_dir(&params.journal).cloned() else {
            return Some(refuse(404, "404 Not Found: no such journal"));
        };
        if self.cfg.net.tls.is_some() {
            return Some(refuse(
                501,
                "501 Not Implemented: replay is not served over TLS; use a plain listener",
            ));
        }
        if !replays.has_room() {
            return Some(
                refuse(503, "503 Service Unavailable: too many replay sessions")
                    .header("Retry-After", "5"),
            );
        }
        let sock = self
            .pipe
            .net
            .as_mut()
            .and_then(|n| n.detach(self.poll.registry(), conn));
        let Some(sock) = sock else {
            return Some(refuse(
                500,
                "500 Internal Server Error: the connection cannot be handed over",
            ));
        };
        // Over the bound (impossible: only this thread starts sessions) or no thread: the
        // socket is dropped, the client sees the connection end.
        let _ = replays.start(sock, wire, params, dir);
        None
    }
}

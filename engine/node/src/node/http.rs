//! The node's HTTP answers: `/api/orders|positions|portfolio`, `/status`, `/metrics`, and
//! a 426 on the WebSocket path.

use tape_core::auth::Role;
use tape_core::desk::Snapshot;
use tape_core::engine::Engine;
use tape_core::input::Nanos;
use tape_core::server::Hub;
use tape_core::wire::json::{escape_json_string, JsonBuf};

use super::Node;

/// A JSON content type.
const JSON: &str = "application/json";

/// `(status, content type, body)`.
pub(super) type Answer = (u16, &'static str, String);

impl Node {
    /// Answers one HTTP request (the transport handles the WebSocket upgrade itself).
    /// Only `GET` and `HEAD` (the transport drops a `HEAD`'s body) reach an endpoint; any
    /// other method on a known path is a 405 (the caller adds `Allow`).
    pub(super) fn http_route(
        &mut self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        now: u64,
    ) -> Answer {
        if !known_path(path, &self.cfg.net.ws_path) {
            return (404, "text/plain; charset=utf-8", "404 Not Found\n".into());
        }
        if !read_only_method(method) {
            return (
                405,
                "text/plain; charset=utf-8",
                "405 Method Not Allowed: use GET or HEAD\n".into(),
            );
        }
        if let Some(what) = api_snapshot(path) {
            let (status, body) = api_answer(
                &mut self.pipe.hub,
                &self.pipe.engine,
                what,
                authorization,
                Nanos(now),
            );
            return (status, JSON, body);
        }
        match path {
            "/status" => (200, JSON, self.status_json(now)),
            "/metrics" => (
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics_text(now),
            ),
            p if p == self.cfg.net.ws_path => (
                426,
                "text/plain; charset=utf-8",
                "426 Upgrade Required: this path speaks WebSocket\n".into(),
            ),
            _ => (404, "text/plain; charset=utf-8", "404 Not Found\n".into()),
        }
    }
}

/// The methods every endpoint serves: they only read.
fn read_only_method(method: &str) -> bool {
    matches!(method, "GET" | "HEAD")
}

/// A path some endpoint answers (so a wrong method on it is 405, not 404).
fn known_path(path: &str, ws_path: &str) -> bool {
    api_snapshot(path).is_some() || matches!(path, "/status" | "/metrics") || path == ws_path
}

/// The desk snapshot an `/api/*` path names.
fn api_snapshot(path: &str) -> Option<Snapshot> {
    match path {
        "/api/orders" => Some(Snapshot::Orders),
        "/api/positions" => Some(Snapshot::Positions),
        "/api/portfolio" => Some(Snapshot::Portfolio),
        _ => None,
    }
}

/// `GET /api/orders|positions|portfolio` with `Authorization: Bearer`: the same JSON as
/// `get_orders`/`get_positions`/`get_portfolio`. No io and no clock but `now` (the hub only
/// counts the authorization).
pub(super) fn api_answer(
    hub: &mut Hub,
    engine: &Engine,
    what: Snapshot,
    authorization: Option<&str>,
    now: Nanos,
) -> (u16, String) {
    let err = |status: u16, msg: &str| {
        let mut s = String::from("{\"error\":");
        escape_json_string(&mut s, msg);
        s.push('}');
        (status, s)
    };
    let user = match hub.authorize_http(authorization, Role::Viewer, now) {
        Ok(u) => u,
        Err((status, msg)) => return err(status, &msg),
    };
    let Some(desk) = engine.desk() else {
        return err(404, "no trading desk is configured");
    };
    let mut j = JsonBuf::new();
    match desk.snapshot_json(&mut j, what, &user, None, now, engine.registry()) {
        Some(b) => (200, b),
        None => err(404, "this user has no account on the desk"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tape_core::engine::EngineConfig;
    use tape_core::server::HubConfig;

    #[test]
    fn api_paths_name_their_snapshot() {
        assert_eq!(api_snapshot("/api/orders"), Some(Snapshot::Orders));
        assert_eq!(api_snapshot("/api/positions"), Some(Snapshot::Positions));
        assert_eq!(api_snapshot("/api/portfolio"), Some(Snapshot::Portfolio));
        assert_eq!(api_snapshot("/api/other"), None);
        assert_eq!(api_snapshot("/status"), None);
    }

    #[test]
    fn only_get_and_head_are_served_and_unknown_paths_stay_404() {
        for m in ["GET", "HEAD"] {
            assert!(read_only_method(m), "{m}");
        }
        for m in ["POST", "DELETE", "PUT", "PATCH", "OPTIONS", "get"] {
            assert!(!read_only_method(m), "{m}");
        }
        for p in [
            "/status",
            "/metrics",
            "/api/orders",
            "/api/portfolio",
            "/ws",
        ] {
            assert!(known_path(p, "/ws"), "{p}");
        }
        assert!(!known_path("/nope", "/ws"));
    }

    #[test]
    fn api_without_authenticator_is_refused_as_json() {
        let engine = Engine::new(EngineConfig::default()).unwrap();
        let mut hub = Hub::new(HubConfig::default());
        let (status, body) = api_answer(&mut hub, &engine, Snapshot::Orders, None, Nanos(1));
        assert!(status >= 400, "{status} {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(v["error"].is_string(), "{body}");
    }
}

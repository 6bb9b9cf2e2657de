//! The node's HTTP answers: the dashboard (`/` and its assets), `/api/instruments`,
//! `/api/orders|positions|portfolio`, `/status`, `/metrics`, and a 426 on the WebSocket path.

use std::borrow::Cow;

use tape_core::auth::Role;
use tape_core::desk::Snapshot;
use tape_core::engine::Engine;
use tape_core::input::Nanos;
use tape_core::server::Hub;
use tape_core::wire::json::{escape_json_string, JsonBuf};

use super::{dashboard, Node};

/// A JSON content type.
const JSON: &str = "application/json";
/// A plain-text content type.
pub(super) const TEXT: &str = "text/plain; charset=utf-8";

/// One HTTP answer: status, content type, extra headers and body (an embedded asset is
/// borrowed, never copied).
#[derive(Debug)]
pub(super) struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Cow<'static, [u8]>,
}

impl Answer {
    pub(super) fn new(
        status: u16,
        content_type: &'static str,
        body: impl Into<Cow<'static, [u8]>>,
    ) -> Self {
        Answer {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub(super) fn text(status: u16, body: &'static str) -> Self {
        Answer::new(status, TEXT, body.as_bytes())
    }

    fn json(status: u16, body: String) -> Self {
        Answer::new(status, JSON, body.into_bytes())
    }

    pub(super) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// One HTTP request, as the routes see it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub authorization: Option<&'a str>,
    pub host: Option<&'a str>,
}

impl Node {
    /// Answers one HTTP request (the transport handles the WebSocket upgrade itself).
    /// Only `GET` and `HEAD` (the transport drops a `HEAD`'s body) reach an endpoint; any
    /// other method on a known path is a 405 with `Allow`.
    pub(super) fn http_route(&mut self, req: Request<'_>, now: u64) -> Answer {
        let dashboard = self.cfg.dashboard && dashboard::is_dashboard_path(req.path);
        if !dashboard && !known_path(req.path, &self.cfg.net.ws_path) {
            return Answer::text(404, "404 Not Found\n");
        }
        if !read_only_method(req.method) {
            return Answer::text(405, "405 Method Not Allowed: use GET or HEAD\n")
                .header("Allow", "GET, HEAD");
        }
        if dashboard {
            return self.dashboard_answer(req);
        }
        if let Some(what) = api_snapshot(req.path) {
            let (status, body) = api_answer(
                &mut self.pipe.hub,
                &self.pipe.engine,
                what,
                req.authorization,
                Nanos(now),
            );
            return Answer::json(status, body);
        }
        match req.path {
            "/api/instruments" => Answer::json(200, instruments_json(&self.pipe.engine)),
            "/status" => Answer::json(200, self.status_json(now)),
            "/metrics" => Answer::new(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics_text(now).into_bytes(),
            ),
            p if p == self.cfg.net.ws_path => {
                Answer::text(426, "426 Upgrade Required: this path speaks WebSocket\n")
            }
            _ => Answer::text(404, "404 Not Found\n"),
        }
    }

    /// `/` (the page) or one of its assets; every answer carries the dashboard's CSP.
    fn dashboard_answer(&self, req: Request<'_>) -> Answer {
        let answer = if req.path == "/" {
            let page = dashboard::index(&self.cfg.net.ws_path, self.cfg.auth.is_some());
            Answer::new(200, "text/html; charset=utf-8", page.into_bytes())
                .header("Cache-Control", dashboard::INDEX_CACHE)
        } else {
            match dashboard::asset_at(req.path) {
                Some(a) => Answer::new(200, a.content_type, a.body)
                    .header("Cache-Control", dashboard::ASSET_CACHE),
                None => Answer::text(404, "404 Not Found\n").header("Cache-Control", "no-store"),
            }
        };
        answer
            .header(
                "Content-Security-Policy",
                dashboard::csp(req.host, self.cfg.net.tls.is_some()),
            )
            .header("X-Content-Type-Options", "nosniff")
            .header("Referrer-Policy", "no-referrer")
            .header("X-Frame-Options", "DENY")
    }
}

/// `/api/instruments`: every instrument the engine knows (registry order), with its scales
/// and whether tape keeps a book for it yet (one exists once the feed brought depth data for
/// it). Public: market data needs no token.
fn instruments_json(engine: &Engine) -> String {
    let mut s = String::from("{\"instruments\":[");
    for (k, i) in engine.registry().iter().enumerate() {
        if k > 0 {
            s.push(',');
        }
        s.push_str("{\"market\":\"");
        s.push_str(i.market.as_str());
        s.push_str("\",\"symbol\":");
        escape_json_string(&mut s, &i.symbol);
        s.push_str(&format!(
            ",\"price_scale\":{},\"qty_scale\":{},\"book\":{}}}",
            i.price_scale,
            i.qty_scale,
            engine.book(i.id).is_some()
        ));
    }
    s.push_str("]}\n");
    s
}

/// The methods every endpoint serves: they only read.
fn read_only_method(method: &str) -> bool {
    matches!(method, "GET" | "HEAD")
}

/// A path some endpoint answers (so a wrong method on it is 405, not 404).
fn known_path(path: &str, ws_path: &str) -> bool {
    api_snapshot(path).is_some()
        || matches!(path, "/status" | "/metrics" | "/api/instruments")
        || path == ws_path
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

//! The dashboard over real sockets on 127.0.0.1: `GET /` serves the page with its
//! Content-Security-Policy, every asset the page references (and every module those import)
//! is served with its type and cache headers, `/api/instruments` lists what the page can
//! pick, and `server.dashboard = false` takes all of it away. The page in a real browser is
//! `.ci/dashboard_test.py`.

use std::collections::{BTreeSet, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

mod support;

use support::start;

/// A response: status, headers (names lower-cased) and body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn request(addr: SocketAddr, method: &str, path: &str) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path)
}

/// Every `attr="..."` value in `text`.
fn attr_values<'a>(text: &'a str, attr: &str) -> Vec<&'a str> {
    let pat = format!("{attr}=\"");
    text.match_indices(&pat)
        .filter_map(|(i, _)| {
            let rest = &text[i + pat.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

/// The relative modules a JavaScript module imports (`from './x.js'`).
fn imports(js: &str) -> Vec<String> {
    js.match_indices("from './")
        .filter_map(|(i, _)| {
            let rest = &js[i + "from './".len()..];
            rest.find('\'').map(|end| rest[..end].to_owned())
        })
        .collect()
}

#[test]
fn the_page_and_every_asset_it_references_are_served_with_a_strict_csp() {
    let srv = start(|_| {});
    let page = get(srv.addr, "/");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    let csp = page.header("content-security-policy").expect("a CSP");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        &format!("connect-src 'self' ws://{}", srv.addr),
    ] {
        assert!(csp.contains(directive), "{directive} missing: {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    // No inline script or style: the CSP would block them.
    assert!(!page.body.contains("<script>"), "inline script");
    assert!(!page.body.contains("<style"), "inline style");
    assert!(page.body.contains("name=\"tape-ws-path\" content=\"/ws\""));
    assert!(page.body.contains("name=\"tape-auth\" content=\"off\""));

    // Walk everything the page loads: its href/src and the modules' imports.
    let mut queue: VecDeque<String> = attr_values(&page.body, "href")
        .into_iter()
        .chain(attr_values(&page.body, "src"))
        .filter(|u| u.starts_with("/dashboard/"))
        .map(str::to_owned)
        .collect();
    assert!(
        queue.iter().any(|u| u.ends_with("/app.js")),
        "the page loads its script: {queue:?}"
    );
    let mut served = BTreeSet::new();
    while let Some(url) = queue.pop_front() {
        if !served.insert(url.clone()) {
            continue;
        }
        let r = get(srv.addr, &url);
        assert_eq!(r.status, 200, "{url}: {}", r.body);
        assert!(!r.body.is_empty(), "{url} is empty");
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{url}"
        );
        assert!(r.header("content-security-policy").is_some(), "{url}");
        let ctype = r.header("content-type").unwrap_or_default();
        let want = match url.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => panic!("unexpected asset kind {other:?}: {url}"),
        };
        assert_eq!(ctype, want, "{url}");
        if url.ends_with(".js") {
            // Nothing from anywhere but tape: no absolute URL in an import, no eval.
            assert!(!r.body.contains("from 'http"), "{url}");
            assert!(!r.body.contains("eval("), "{url}");
            let dir = &url[..url.rfind('/').unwrap() + 1];
            for m in imports(&r.body) {
                queue.push_back(format!("{dir}{m}"));
            }
        }
    }
    let modules = served.iter().filter(|u| u.ends_with(".js")).count();
    assert!(modules >= 10, "every module reached: {served:?}");

    // Another build's assets are not this one's; the page only reads.
    let app = served.iter().find(|u| u.ends_with("/app.js")).unwrap();
    let other = app.replace(app.split('/').nth(2).unwrap(), "0000000000000000");
    assert_eq!(get(srv.addr, &other).status, 404, "{other}");
    assert_eq!(get(srv.addr, "/dashboard/app.js").status, 404);
    let post = request(srv.addr, "POST", "/");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let head = request(srv.addr, "HEAD", "/");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD has no body");
}

#[test]
fn api_instruments_lists_every_instrument_with_its_scales() {
    let srv = start(|_| {});
    let r = get(srv.addr, "/api/instruments");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let list = v["instruments"].as_array().expect("an array");
    let names: Vec<String> = list
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["market"].as_str().unwrap(),
                i["symbol"].as_str().unwrap()
            )
        })
        .collect();
    for want in ["spot:BTCUSDT", "usdm:BTCUSDT", "coinm:BTCUSD_PERP"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    let usdm = list
        .iter()
        .find(|i| i["market"] == "usdm" && i["symbol"] == "BTCUSDT")
        .unwrap();
    assert_eq!(usdm["price_scale"], 2, "{usdm}");
    assert_eq!(usdm["qty_scale"], 3, "{usdm}");
    // Whether tape keeps a book for it yet depends on how far the feed got.
    assert!(usdm["book"].is_boolean(), "{usdm}");
    // Public: no token, and not a private snapshot.
    assert_eq!(request(srv.addr, "DELETE", "/api/instruments").status, 405);
}

#[test]
fn dashboard_off_is_404_and_the_page_follows_ws_path_and_auth() {
    let srv = start(|c| c.server.dashboard = false);
    assert_eq!(get(srv.addr, "/").status, 404);
    assert_eq!(request(srv.addr, "POST", "/").status, 404);
    assert_eq!(get(srv.addr, "/dashboard/x/app.js").status, 404);
    assert_eq!(get(srv.addr, "/status").status, 200, "the rest stays");
    assert_eq!(get(srv.addr, "/api/instruments").status, 200);
    drop(srv);

    let srv = start(|c| {
        c.server.ws_path = "/stream".into();
        c.auth.secret = "0123456789abcdef0123456789abcdef".into();
        c.users.push(tape_tools::config::UserSection {
            name: "alice".into(),
            roles: vec!["trader".into()],
            max_connections: 0,
            shm_group: String::new(),
        });
    });
    let page = get(srv.addr, "/");
    assert_eq!(page.status, 200);
    assert!(page
        .body
        .contains("name=\"tape-ws-path\" content=\"/stream\""));
    assert!(page.body.contains("name=\"tape-auth\" content=\"on\""));
}

//! The dashboard at `/`: one HTML page, its stylesheet and its JavaScript modules, embedded
//! in the binary (`engine/node/dashboard/`: hand-written, no build step, nothing fetched from
//! anywhere but tape itself).
//!
//! Assets live under `/dashboard/<version>/`, where the version is a hash of every asset
//! computed at compile time. The page's modules import each other by relative path, so they
//! all resolve under the same version; that makes them safe to cache forever (`immutable`),
//! while `/` itself is revalidated on every load and names the current version. A request
//! for another version is a 404, never an asset of a different build.

/// One embedded file.
#[derive(Debug)]
pub(super) struct Asset {
    /// File name under the versioned prefix.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the page may load. The loopback test fetches each one the page references
/// (and each module they import), so a file missing here fails it.
pub(super) const ASSETS: &[Asset] = &[
    asset(
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../dashboard/style.css"),
    ),
    asset(
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../dashboard/favicon.svg"),
    ),
    asset("app.js", JS, include_bytes!("../../dashboard/app.js")),
    asset("conn.js", JS, include_bytes!("../../dashboard/conn.js")),
    asset("poll.js", JS, include_bytes!("../../dashboard/poll.js")),
    asset(
        "streams.js",
        JS,
        include_bytes!("../../dashboard/streams.js"),
    ),
    asset(
        "decimal.js",
        JS,
        include_bytes!("../../dashboard/decimal.js"),
    ),
    asset("book.js", JS, include_bytes!("../../dashboard/book.js")),
    asset("dom.js", JS, include_bytes!("../../dashboard/dom.js")),
    asset("chart.js", JS, include_bytes!("../../dashboard/chart.js")),
    asset("market.js", JS, include_bytes!("../../dashboard/market.js")),
    asset(
        "latency.js",
        JS,
        include_bytes!("../../dashboard/latency.js"),
    ),
    asset("venues.js", JS, include_bytes!("../../dashboard/venues.js")),
    asset(
        "account.js",
        JS,
        include_bytes!("../../dashboard/account.js"),
    ),
    asset("ticket.js", JS, include_bytes!("../../dashboard/ticket.js")),
];

/// The page, with `{{BASE}}`, `{{WS_PATH}}` and `{{AUTH}}` filled in per request.
const INDEX: &str = include_str!("../../dashboard/index.html");

const fn asset(name: &'static str, content_type: &'static str, body: &'static [u8]) -> Asset {
    Asset {
        name,
        content_type,
        body,
    }
}

/// FNV-1a over every asset's name and bytes (and the page's): changes whenever any of them
/// does. Evaluated by the compiler.
const VERSION: u64 = {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i <= ASSETS.len() {
        let (name, body) = if i < ASSETS.len() {
            (ASSETS[i].name.as_bytes(), ASSETS[i].body)
        } else {
            ("index.html".as_bytes(), INDEX.as_bytes())
        };
        let mut k = 0;
        while k < name.len() {
            h = (h ^ name[k] as u64).wrapping_mul(0x0000_0100_0000_01b3);
            k += 1;
        }
        let mut k = 0;
        while k < body.len() {
            h = (h ^ body[k] as u64).wrapping_mul(0x0000_0100_0000_01b3);
            k += 1;
        }
        i += 1;
    }
    h
};

/// Path prefix of the assets of this build, `/dashboard/<16 hex digits>/`.
pub(super) fn base() -> String {
    format!("/dashboard/{VERSION:016x}/")
}

/// The asset `path` names, if it is one of this build's.
pub(super) fn asset_at(path: &str) -> Option<&'static Asset> {
    let rest = path.strip_prefix("/dashboard/")?;
    let (version, name) = rest.split_once('/')?;
    if version != format!("{VERSION:016x}") {
        return None;
    }
    ASSETS.iter().find(|a| a.name == name)
}

/// True for paths under the dashboard's asset prefix (any version): a wrong method there is
/// 405, and a wrong version 404.
pub(super) fn is_dashboard_path(path: &str) -> bool {
    path == "/" || path.starts_with("/dashboard/")
}

/// The page: the asset prefix, the WebSocket path and whether authentication is on, as
/// `<meta>` values the script reads (no inline script: the CSP forbids them).
pub(super) fn index(ws_path: &str, auth: bool) -> String {
    INDEX
        .replace("{{BASE}}", &base())
        .replace("{{WS_PATH}}", &escape_attr(ws_path))
        .replace("{{AUTH}}", if auth { "on" } else { "off" })
}

/// Escapes text for a double-quoted HTML attribute.
fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The Content-Security-Policy of every dashboard response: scripts, styles, images and
/// connections only from tape itself; no inline script or style, no `eval`, no plugins, no
/// framing, DOM sinks only through Trusted Types (the page uses none: it builds nodes and
/// sets `textContent`). `host` is the request's `Host`: WebSocket URLs are named explicitly
/// for it, since older browsers do not count `ws:` as `'self'`; a `Host` that is not a plain
/// `name[:port]` is left out (and `'self'` still covers current browsers).
pub(super) fn csp(host: Option<&str>, tls: bool) -> String {
    let mut connect = String::from("'self'");
    if let Some(h) = host.filter(|h| plain_host(h)) {
        let scheme = if tls { "wss" } else { "ws" };
        connect.push_str(&format!(" {scheme}://{h}"));
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; \
         require-trusted-types-for 'script'"
    )
}

/// `name[:port]` with a DNS name or IPv4 address (a CSP host-source cannot hold an IPv6
/// literal, and anything else could smuggle in another directive).
fn plain_host(h: &str) -> bool {
    let (name, port) = match h.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (h, None),
    };
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Headers of the page itself: revalidated on every load, since it names the asset version.
pub(super) const INDEX_CACHE: &str = "no-cache";
/// Headers of a versioned asset: its URL changes whenever its bytes do.
pub(super) const ASSET_CACHE: &str = "public, max-age=31536000, immutable";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_served_under_this_builds_prefix_only() {
        for a in ASSETS {
            let path = format!("{}{}", base(), a.name);
            assert_eq!(asset_at(&path).map(|x| x.name), Some(a.name), "{path}");
            assert!(!a.body.is_empty(), "{} is empty", a.name);
        }
        assert!(asset_at("/dashboard/0000000000000000/app.js").is_none());
        assert!(asset_at(&format!("{}nope.js", base())).is_none());
        assert!(asset_at(&format!("{}../app.js", base())).is_none());
        assert!(asset_at("/dashboard/app.js").is_none());
        assert!(is_dashboard_path("/"));
        assert!(is_dashboard_path("/dashboard/x/y"));
        assert!(!is_dashboard_path("/status"));
    }

    #[test]
    fn the_page_names_its_assets_ws_path_and_auth_and_escapes_them() {
        let page = index("/ws", true);
        assert!(page.contains(&format!("{}app.js", base())), "{page}");
        assert!(page.contains("content=\"/ws\""), "{page}");
        assert!(page.contains("content=\"on\""), "{page}");
        assert!(!page.contains("{{"), "a placeholder left: {page}");
        let evil = index("/\"><script>x</script>", false);
        assert!(!evil.contains("<script>x"), "{evil}");
        assert!(evil.contains("content=\"off\""), "{evil}");
    }

    #[test]
    fn the_csp_names_the_host_only_when_it_is_plain() {
        let c = csp(Some("127.0.0.1:8080"), false);
        assert!(c.contains("connect-src 'self' ws://127.0.0.1:8080;"), "{c}");
        assert!(c.contains("script-src 'self';"), "{c}");
        assert!(!c.contains("unsafe"), "{c}");
        assert!(csp(Some("tape.example"), true).contains("wss://tape.example;"));
        for bad in ["a; script-src *", "[::1]:8080", "x:", "x:123456", "", "a b"] {
            let c = csp(Some(bad), false);
            assert!(c.contains("connect-src 'self';"), "{bad}: {c}");
        }
    }
}

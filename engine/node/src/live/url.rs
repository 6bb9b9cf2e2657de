//! The one URL parser of the live clients: `scheme://host[:port][/path][?query]`, for the
//! WebSocket connections (`ws`, `wss`) and the snapshot client (`http`, `https`) alike.
//!
//! Strict on purpose: no user info, a host that is a DNS name, an IPv4 address or a bracketed
//! IPv6 address, an explicit port in 1..=65535, no whitespace or control characters. A URL
//! that passes here cannot surprise the resolver or the request line later.

use std::net::Ipv6Addr;

/// A parsed URL, borrowing the host from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parts<'a> {
    /// Index into the `schemes` the caller allowed.
    pub scheme: usize,
    /// A DNS name or an IP literal (IPv6 without its brackets).
    pub host: &'a str,
    /// The port, explicit or the scheme's default.
    pub port: u16,
    /// `host[:port]` exactly as written (IPv6 in brackets): what a `Host` header carries.
    pub authority: &'a str,
    /// Path and query, always starting with `/` (the fragment is dropped).
    pub target: String,
}

/// Parses `url` with one of `schemes` (`("https://", 443)`, ...; the prefix is matched without
/// regard to case, in the order given). `Err` is what is wrong; `scheme_error` when the scheme
/// is none of them.
pub(crate) fn parse<'a>(
    url: &'a str,
    schemes: &[(&str, u16)],
    scheme_error: &'static str,
) -> Result<Parts<'a>, &'static str> {
    let (scheme, rest, default_port) = schemes
        .iter()
        .enumerate()
        .find_map(|(i, (prefix, port))| {
            let head = url.get(..prefix.len())?;
            head.eq_ignore_ascii_case(prefix)
                .then(|| (i, &url[prefix.len()..], *port))
        })
        .ok_or(scheme_error)?;
    if url.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("contains whitespace or control characters");
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority, target) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let target = match target {
        "" => "/".to_owned(),
        t if t.starts_with('?') => format!("/{t}"),
        t => t.to_owned(),
    };
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, port) = bracketed.split_once(']').ok_or("unclosed '[' in host")?;
        host.parse::<Ipv6Addr>()
            .map_err(|_| "not an IPv6 address in brackets")?;
        (host, port)
    } else {
        let (host, port) = authority.split_at(authority.find(':').unwrap_or(authority.len()));
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err("host is not a DNS name or an IP address");
        }
        (host, port)
    };
    if host.is_empty() {
        return Err("empty host");
    }
    let port = match port {
        "" => default_port,
        p => p
            .strip_prefix(':')
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0)
            .ok_or("invalid port")?,
    };
    Ok(Parts {
        scheme,
        host,
        port,
        authority,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WS: &[(&str, u16)] = &[("wss://", 443), ("ws://", 80)];

    #[test]
    fn schemes_in_order_and_default_ports() {
        let p = parse("WSS://h.example/s?x=a/b#frag", WS, "no").unwrap();
        assert_eq!(
            (p.scheme, p.host, p.port, p.target.as_str()),
            (0, "h.example", 443, "/s?x=a/b")
        );
        let p = parse("ws://[::1]?q", WS, "no").unwrap();
        assert_eq!(
            (p.scheme, p.host, p.port, p.target.as_str()),
            (1, "::1", 80, "/?q")
        );
        assert_eq!(
            parse("ws://[::1]:9/x", WS, "no").unwrap().authority,
            "[::1]:9"
        );
        assert_eq!(parse("http://h/", WS, "no"), Err("no"));
        assert_eq!(parse("ws://h:1:2/", WS, "no"), Err("invalid port"));
        assert_eq!(
            parse("ws://u@h/", WS, "no"),
            Err("host is not a DNS name or an IP address")
        );
    }
}

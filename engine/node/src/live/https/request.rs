//! What the snapshot client sends: the `http(s)://` URL it accepts (parsed by the live
//! clients' one URL parser) and the GET request head built from it.

use super::HttpError;

/// `http` (plain, for tests and local endpoints) or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain TCP, default port 80.
    Http,
    /// TLS, default port 443.
    Https,
}

/// An absolute `http(s)://host[:port]/path?query` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// The scheme.
    pub scheme: Scheme,
    /// A DNS name or an IP literal (IPv6 without its brackets).
    pub host: String,
    /// The port, explicit or the scheme's default.
    pub port: u16,
    /// Path and query, always starting with `/` (the fragment is dropped).
    pub target: String,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

impl Url {
    /// Parses an absolute `http://` or `https://` URL.
    ///
    /// # Errors
    /// [`HttpError::Url`] for another scheme, user info, a bad host or port, whitespace or
    /// control characters.
    pub fn parse(url: &str) -> Result<Url, HttpError> {
        let schemes = [("https://", 443), ("http://", 80)];
        let parts = crate::live::url::parse(url, &schemes, "scheme must be http:// or https://")
            .map_err(|reason| HttpError::Url {
                url: url.to_owned(),
                reason,
            })?;
        Ok(Url {
            scheme: [Scheme::Https, Scheme::Http][parts.scheme],
            host: parts.host.to_owned(),
            port: parts.port,
            target: parts.target,
        })
    }

    /// `host:port`, with IPv6 hosts in brackets: the peer named in errors.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub(super) fn request_head(&self) -> Vec<u8> {
        let host = if self.port != self.scheme.default_port() {
            self.host_port()
        } else if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tape/{}\r\n\
             Accept: application/json\r\nConnection: keep-alive\r\n\r\n",
            self.target,
            env!("CARGO_PKG_VERSION")
        )
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parsing() {
        let u = Url::parse("HTTPS://fapi.binance.com/fapi/v1/depth?symbol=X#f").unwrap();
        assert_eq!((u.scheme, u.port), (Scheme::Https, 443));
        assert_eq!(
            (u.host.as_str(), u.target.as_str()),
            ("fapi.binance.com", "/fapi/v1/depth?symbol=X")
        );
        let u = Url::parse("http://[::1]:8080?q=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("::1", 8080, "/?q=1")
        );
        assert_eq!(u.host_port(), "[::1]:8080");
        assert!(String::from_utf8(u.request_head())
            .unwrap()
            .contains("Host: [::1]:8080\r\n"));
        let u = Url::parse("http://127.0.0.1").unwrap();
        assert_eq!((u.port, u.target.as_str()), (80, "/"));
        assert!(String::from_utf8(u.request_head())
            .unwrap()
            .contains("Host: 127.0.0.1\r\n"));
        for bad in [
            "ftp://x/",
            "https://",
            "https://:80/",
            "https://h:0/",
            "https://h:99999/",
            "https://u@h/",
            "https://[::1/",
            "https://[nope]/",
            "https://h/a b",
            "https://h\r\n/",
            "https://h:1:2/",
            "é",
        ] {
            assert!(
                matches!(Url::parse(bad), Err(HttpError::Url { .. })),
                "{bad}"
            );
        }
    }
}

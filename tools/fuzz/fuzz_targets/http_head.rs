//! Arbitrary bytes as what a client sent before its request head completed, through the
//! node's request-head parser and, for a complete head, the WebSocket upgrade check, as the
//! connection state machine calls them.
//!
//! Properties: no panic; a complete head's length lies within the input and parsing just
//! those bytes gives the same head; shorter prefixes of it are still incomplete (so a head
//! that arrives in pieces is never refused early); an accepted upgrade answers a valid
//! `Sec-WebSocket-Accept` (base64 of a SHA-1, 28 characters).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tape_node::net::http::{accept_upgrade, parse_head, HeadParse};

fuzz_target!(|buf: &[u8]| {
    match parse_head(buf) {
        HeadParse::Complete(head) => {
            assert!(head.len <= buf.len() && head.len > 0);
            assert_eq!(
                parse_head(&buf[..head.len]),
                HeadParse::Complete(head.clone()),
                "the bytes after the head changed it"
            );
            for cut in [head.len - 1, head.len / 2, head.len * 3 / 4] {
                let p = parse_head(&buf[..cut]);
                assert_eq!(p, HeadParse::Partial, "prefix of {cut} bytes");
            }
            match accept_upgrade(&head) {
                Ok(accept) => {
                    assert_eq!(accept.len(), 28, "{accept}");
                    assert!(head.method == "GET" && head.version == 1);
                }
                Err(e) => assert!(!e.reason().is_empty()),
            }
        }
        HeadParse::Invalid(reason) => assert!(!reason.is_empty()),
        HeadParse::Partial | HeadParse::TooLarge => {}
    }
});

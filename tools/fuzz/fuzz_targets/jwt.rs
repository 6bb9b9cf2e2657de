//! Client tokens through `Authenticator::verify`.
//!
//! Input layout: a mode byte, then text. Mode 0: the text is the token as received. Mode 1:
//! the text is a claims JSON signed with the right secret by `sign_hs256`. Mode 2: the text is
//! `header JSON` + `\n` + `claims JSON`, base64url-encoded and HMAC-signed with the right
//! secret whatever the header says. The signed modes get past the HMAC, which random bytes
//! never do, to the header and claims checks behind it.
//!
//! Properties: no panic; errors render with a code; a token signed with the right secret is
//! never refused for its signature; a verified token names a configured user with that
//! user's roles; verifying is deterministic.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use ring::hmac;
use tape_core::auth::{sign_hs256, AuthConfig, AuthError, Authenticator, Role, UserDef};

const SECRET: &[u8] = b"tape-test-secret-0123456789abcdef";
const NOW_MS: u64 = 1_700_000_000_000;

fn authenticator() -> Authenticator {
    let user = |name: &str, role: Role, max| UserDef {
        name: name.into(),
        roles: [role].into_iter().collect(),
        max_connections: max,
    };
    Authenticator::new(AuthConfig::new(
        SECRET.to_vec(),
        vec![
            user("alice", Role::Trader, None),
            user("bot-1@desk.eu", Role::Publisher, Some(2)),
            user("root", Role::Admin, None),
        ],
    ))
    .expect("valid auth config")
}

fn forge(header: &str, claims: &str) -> String {
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, SECRET),
        signed.as_bytes(),
    );
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let (token, signed) = match mode % 3 {
        0 => (text.into_owned(), false),
        1 => (sign_hs256(SECRET, &text), true),
        _ => {
            let (h, c) = text.split_once('\n').unwrap_or((&text, ""));
            (forge(h, c), true)
        }
    };
    let a = authenticator();
    let first = a.verify(&token, NOW_MS);
    match &first {
        Ok(p) => {
            let name = a.user_name(p.user);
            assert_eq!(a.user_by_name(name), Some(p.user));
            assert!(p.user.index() < a.user_count());
            assert!(a.max_connections(p.user) > 0);
        }
        Err(e) => {
            assert!(!e.to_string().is_empty() && !e.code().is_empty());
            if signed {
                assert!(
                    !matches!(e, AuthError::BadSignature),
                    "a correctly signed token was refused for its signature: {token}"
                );
            }
        }
    }
    assert_eq!(a.verify(&token, NOW_MS), first);
});

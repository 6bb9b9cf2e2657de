use std::collections::BTreeMap;

use proptest::prelude::*;
use ring::signature::{self, KeyPair as _};

use super::*;

// Binance's worked example, binance/binance-spot-api-docs `web-socket-api.md`, "SIGNED request
// example (HMAC)": the example API key and secret, two requests and their signatures.
const DOC_API_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const DOC_SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

fn doc_params(ascii: bool) -> Map<String, Value> {
    let (symbol, side, price, qty, window) = if ascii {
        ("BTCUSDT", "SELL", "52000.00", "0.01000000", 100)
    } else {
        ("１２３４５６", "BUY", "0.10000000", "1.00000000", 5000)
    };
    // In the request's own order (not sorted), with the numbers as JSON numbers.
    let v = serde_json::json!({
        "symbol": symbol, "side": side, "type": "LIMIT", "timeInForce": "GTC",
        "quantity": qty, "price": price, "recvWindow": window,
        "timestamp": 1645423376532u64, "apiKey": DOC_API_KEY,
    });
    v.as_object().cloned().expect("an object")
}

#[test]
fn payload_of_the_documented_requests() {
    let ascii = payload_of(&params_of(&doc_params(true)).unwrap());
    assert_eq!(
        ascii,
        format!("apiKey={DOC_API_KEY}&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT")
    );
    let unicode = payload_of(&params_of(&doc_params(false)).unwrap());
    assert_eq!(
        unicode,
        format!("apiKey={DOC_API_KEY}&price=0.10000000&quantity=1.00000000&recvWindow=5000&side=BUY&symbol=１２３４５６&timeInForce=GTC&timestamp=1645423376532&type=LIMIT")
    );
}

#[test]
fn hmac_matches_the_documented_signatures() {
    let key = HmacKey::new(DOC_SECRET.as_bytes());
    let cases = [
        (
            true,
            "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24",
        ),
        (
            false,
            "b33892ae8e687c939f4468c6268ddd4c40ac1af18ad19a064864c47bae0752cd",
        ),
    ];
    for (ascii, expected) in cases {
        let mut params = doc_params(ascii);
        let p = payload_of(&params_of(&params).unwrap());
        assert_eq!(key.sign(&p), expected);
        assert!(key.verify(&p, expected));
        // Binance: HMAC signatures are not case-sensitive.
        assert!(key.verify(&p, &expected.to_uppercase()));
        // The signature itself is left out of the payload.
        params.insert("signature".into(), Value::String(expected.into()));
        assert_eq!(payload_of(&params_of(&params).unwrap()), p);
    }
}

#[test]
fn hmac_refuses_wrong_signatures() {
    let key = HmacKey::new(DOC_SECRET.as_bytes());
    let p = payload_of(&params_of(&doc_params(true)).unwrap());
    let good = key.sign(&p);
    let mut flipped = good.clone().into_bytes();
    flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    for bad in [
        &flipped,
        &good[..63],
        "",
        &format!("{good}0"),
        &good.replace('a', "g"),
    ] {
        assert!(!key.verify(&p, bad), "{bad}");
    }
    assert!(!HmacKey::new(b"another secret").verify(&p, &good));
    assert!(!key.verify(&format!("{p}&x=1"), &good));
}

// binance/binance-spot-api-docs `fix-api.md`, "How to sign Logon <A> request": the example
// Ed25519 private key, the Logon fields joined with SOH, and the signature it gives. (The
// WebSocket API's Ed25519 example does not publish its private key.)
const FIX_DOC_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIIJEYWtGBrhACmb9Dvy+qa8WEf0lQOl1s4CLIAB9m89u
-----END PRIVATE KEY-----
";
const FIX_DOC_SIG: &str =
    "4MHXelVVcpkdwuLbl6n73HQUXUf1dse2PCgT1DYqW9w8AVZ1RACFGM+5UdlGPrQHrgtS3CvsRURC1oj73j8gCA==";

#[test]
fn ed25519_matches_the_documented_signature() {
    let key = Ed25519Key::from_pkcs8_pem(FIX_DOC_KEY).unwrap();
    let payload = "A\u{1}EXAMPLE\u{1}SPOT\u{1}1\u{1}20240627-11:17:25.223";
    assert_eq!(key.sign(payload), FIX_DOC_SIG);
    assert!(key.public().verify(payload, FIX_DOC_SIG));
    assert!(!key.public().verify("A", FIX_DOC_SIG));
    // Ed25519 signatures are compared exactly: another case is another (invalid) signature.
    assert!(!key.public().verify(payload, &FIX_DOC_SIG.to_lowercase()));
}

// A key made for these tests with `openssl genpkey -algorithm ed25519`, its `openssl pkey
// -pubout`, and `openssl pkeyutl -sign -rawin` over PAYLOAD_FOR_OPENSSL: an independent signer.
const OPENSSL_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEINPFeWvismpT4he3p+jRuFKVOEiIIDeTu2mfeAY0INoN
-----END PRIVATE KEY-----
";
const OPENSSL_PUB: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAcQvpdTJC1i3+49H0BQpkAxz70AetupAyFvGp2yRrecs=
-----END PUBLIC KEY-----
";
const PAYLOAD_FOR_OPENSSL: &str = "apiKey=k&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT";
const OPENSSL_SIG: &str =
    "4I7W82MrhAVJqvpo1CIQGU0UrLTmqIPA9XgmZOUbCkRFteZ9jZQRz+WlfmsaTHhja4kaY7An7anNJ49z3M6oCA==";

#[test]
fn ed25519_agrees_with_openssl() {
    let key = Ed25519Key::from_pkcs8_pem(OPENSSL_KEY).unwrap();
    assert_eq!(key.sign(PAYLOAD_FOR_OPENSSL), OPENSSL_SIG);
    let public = Ed25519PublicKey::from_public_pem(OPENSSL_PUB).unwrap();
    assert_eq!(public, key.public());
    assert!(public.verify(PAYLOAD_FOR_OPENSSL, OPENSSL_SIG));
    assert_eq!(public.to_public_pem(), OPENSSL_PUB);
    // Our PEM reads back as the same key, and CRLF or surrounding text does not matter.
    let again = Ed25519Key::from_pkcs8_pem(&key.to_pkcs8_pem()).unwrap();
    assert_eq!(again.public(), public);
    let crlf = format!("comment line\r\n{}", OPENSSL_KEY.replace('\n', "\r\n"));
    assert_eq!(Ed25519Key::from_pkcs8_pem(&crlf).unwrap().public(), public);
}

#[test]
fn encrypted_key_is_refused_with_the_way_out() {
    let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----
MIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAhQELcSsK4nRQICCAAw
DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEEtpw5tC1gLiy6zPpEh7vIAEQCIW
u8VSx2iTeGmqPaq7Icvw7XIwZFB/pFJpLfaAi0ZmFh3ovuzpol8cVHXF4A9sbweV
W5zyvlexnDe3OUUryvQ=
-----END ENCRYPTED PRIVATE KEY-----
";
    let err = Ed25519Key::from_pkcs8_pem(encrypted).unwrap_err();
    assert_eq!(err, KeyError::Encrypted);
    assert!(
        err.to_string()
            .contains("openssl pkey -in k.pem -out plain.pem"),
        "{err}"
    );
}

#[test]
fn wrong_key_types_are_refused() {
    // A P-256 key in PKCS#8 (`openssl genpkey -algorithm EC`) and its public half.
    let ec_pkcs8 = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg6QjGKtpR3PlxDvkA
RpgQw++ygVZ6gfMQFvtv29CNl0ShRANCAASwiNkRqFx5n6477gF6qkRvPhzHovO8
sRh2XGTLg2mj1wcUr43zyLNEx0yVR3kLgZfXBLUaepZHo9y+B98h961S
-----END PRIVATE KEY-----
";
    let ec_pub = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsIjZEahceZ+uO+4BeqpEbz4cx6Lz
vLEYdlxky4Npo9cHFK+N88izRMdMlUd5C4GX1wS1GnqWR6PcvgffIfetUg==
-----END PUBLIC KEY-----
";
    let sec1 = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIGtOBfgTaWGJ/99v2qixO/y32zj856flyhgLtv0HkrpooAoGCCqGSM49
-----END EC PRIVATE KEY-----
";
    let ec = KeyError::NotEd25519 {
        oid: "1.2.840.10045.2.1".into(),
        name: "EC",
    };
    assert_eq!(Ed25519Key::from_pkcs8_pem(ec_pkcs8).unwrap_err(), ec);
    assert_eq!(Ed25519PublicKey::from_public_pem(ec_pub).unwrap_err(), ec);
    assert!(matches!(
        Ed25519Key::from_pkcs8_pem(sec1).unwrap_err(),
        KeyError::WrongBlock { expected: "PRIVATE KEY", found } if found == "EC PRIVATE KEY"
    ));
    // The two halves swapped.
    assert!(matches!(
        Ed25519Key::from_pkcs8_pem(OPENSSL_PUB).unwrap_err(),
        KeyError::WrongBlock {
            expected: "PRIVATE KEY",
            ..
        }
    ));
    assert!(matches!(
        Ed25519PublicKey::from_public_pem(OPENSSL_KEY).unwrap_err(),
        KeyError::WrongBlock {
            expected: "PUBLIC KEY",
            ..
        }
    ));
    assert_eq!(
        Ed25519Key::from_pkcs8_pem("").unwrap_err(),
        KeyError::NotPem
    );
    assert_eq!(
        Ed25519Key::from_pkcs8_pem(DOC_SECRET).unwrap_err(),
        KeyError::NotPem
    );
    let garbage = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert!(matches!(
        Ed25519Key::from_pkcs8_pem(garbage),
        Err(KeyError::Malformed(_))
    ));
    let truncated = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2Vw";
    assert!(Ed25519Key::from_pkcs8_pem(truncated).is_err());
}

#[test]
fn debug_prints_no_secret() {
    let hmac = HmacKey::new(DOC_SECRET.as_bytes());
    let text = format!("{hmac:?} {:?}", Signer::Hmac(hmac.clone()));
    assert!(
        !text.contains(DOC_SECRET) && !text.contains("Nhq"),
        "{text}"
    );
    let key = Ed25519Key::from_pkcs8_pem(OPENSSL_KEY).unwrap();
    let text = format!("{key:?} {:?}", Signer::Ed25519(key.clone()));
    // The seed's base64 and hex are nowhere in it; the public key is.
    assert!(!text.contains("INPFeWvismpT4he3p"), "{text}");
    assert!(!text.contains("d3c5796b"), "{text}");
    assert!(
        text.contains("cQvpdTJC1i3+49H0BQpkAxz70AetupAyFvGp2yRrecs="),
        "{text}"
    );
}

#[test]
fn params_of_refuses_nested_values() {
    let v = serde_json::json!({"a": "x", "b": 1, "c": true, "d": -2, "e": 0.5});
    let pairs = params_of(v.as_object().unwrap()).unwrap();
    assert_eq!(payload_of(&pairs), "a=x&b=1&c=true&d=-2&e=0.5");
    for (bad, kind) in [
        (serde_json::json!({"a": null}), "null"),
        (serde_json::json!({"a": [1]}), "an array"),
        (serde_json::json!({"a": {"b": 1}}), "an object"),
    ] {
        assert_eq!(
            params_of(bad.as_object().unwrap()).unwrap_err(),
            SignError::NotScalar {
                name: "a".into(),
                kind
            }
        );
    }
}

#[test]
fn payload_sorts_by_byte_order_and_skips_signature() {
    let p = payload([
        ("b", "2"),
        ("signature", "x"),
        ("B", "1"),
        ("a", "3"),
        ("ab", "4"),
    ]);
    assert_eq!(p, "B=1&a=3&ab=4&b=2");
    assert_eq!(payload(std::iter::empty()), "");
}

fn params_strategy() -> impl Strategy<Value = BTreeMap<String, String>> {
    // Names as Binance's (ASCII letters); values any text, `&` and `=` included: the payload
    // is not parsed back, only signed.
    prop::collection::btree_map("[a-zA-Z]{1,12}", "\\PC{0,24}", 0..12)
}

/// The payload rule written again, independently of `payload`: a sorted map, joined.
fn independent_payload(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .filter(|(k, _)| k.as_str() != "signature")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

proptest! {
    #[test]
    fn signatures_verify_with_ring(
        params in params_strategy(),
        secret in prop::collection::vec(any::<u8>(), 1..80),
        seed in any::<[u8; 32]>(),
    ) {
        // Shuffle the input order: the payload must not depend on it.
        let mut pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        pairs.reverse();
        let p = payload(pairs);
        prop_assert_eq!(&p, &independent_payload(&params));

        let hmac = HmacKey::new(&secret);
        let sig = hmac.sign(&p);
        prop_assert_eq!(sig.len(), HMAC_SIG_HEX_LEN);
        prop_assert!(sig.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        let ring_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        prop_assert!(ring::hmac::verify(&ring_key, p.as_bytes(), &unhex(&sig)).is_ok());
        prop_assert!(hmac.verify(&p, &sig));

        let ed = Ed25519Key::from_seed(&seed);
        let sig = ed.sign(&p);
        prop_assert_eq!(sig.len(), ED25519_SIG_B64_LEN);
        let ring_pair = signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        let ring_public = signature::UnparsedPublicKey::new(&signature::ED25519, ring_pair.public_key().as_ref());
        let raw = STANDARD.decode(&sig).unwrap();
        prop_assert!(ring_public.verify(p.as_bytes(), &raw).is_ok());
        let ours = ed.public().to_bytes();
        prop_assert_eq!(ours.as_slice(), ring_pair.public_key().as_ref());
        // And the other way round: ring's signature verifies here.
        let ring_sig = STANDARD.encode(ring_pair.sign(p.as_bytes()).as_ref());
        prop_assert!(ed.public().verify(&p, &ring_sig));
        prop_assert!(Signer::Ed25519(ed.clone()).verifier().verify(&p, &ring_sig));
        let other = format!("{p}x");
        prop_assert!(!ed.public().verify(&other, &ring_sig));
    }
}

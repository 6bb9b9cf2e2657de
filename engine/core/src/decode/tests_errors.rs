//! Error-path unit tests: every malformed input is a typed error naming the event and field,
//! and the decoder keeps working afterwards.

use super::tests::*;
use super::*;
use crate::fixed::FixedError;
use crate::instrument::RegistryError;

#[test]
fn futures_require_their_sequencing_fields() {
    let mut r = registry();
    let no_pu = USDM_DEPTH.replace(",\"pu\":5123107956167", "");
    assert_eq!(
        frame(&mut r, Market::UsdM, &no_pu),
        Err(DecodeError::MissingField {
            event: "depthUpdate",
            field: "pu"
        })
    );
    let no_e = USDM_BOOK_TICKER.replace(",\"E\":1723161256311", "");
    assert_eq!(
        frame(&mut r, Market::UsdM, &no_e),
        Err(DecodeError::MissingField {
            event: "bookTicker",
            field: "E"
        })
    );
    let eth = id(&r, Market::UsdM, "ETHUSDT");
    let no_t = USDM_SNAPSHOT.replace(",\"T\":1723161256493", "");
    assert_eq!(
        Decoder::new().decode_snapshot(no_t.as_bytes(), eth, &r),
        Err(DecodeError::MissingField {
            event: "snapshot",
            field: "T"
        })
    );
}

/// Decodes `bad`, checks the error, then checks the same decoder still decodes a good frame.
fn rejects(m: Market, bad: &[u8], want: DecodeError) {
    let mut r = registry();
    let mut d = Decoder::new();
    assert_eq!(
        d.decode_frame(bad, ctx(m), &mut r),
        Err(want),
        "{}",
        String::from_utf8_lossy(&bad[..bad.len().min(200)])
    );
    let ok = d.decode_frame(USDM_DEPTH.as_bytes(), ctx(Market::UsdM), &mut r);
    assert!(matches!(ok, Ok(MarketMsg::Depth(u)) if u.bids.len() == 11 && u.asks.len() == 4));
}

#[test]
fn malformed_frames_are_typed_errors() {
    use DecodeError as E;
    let truncated = &SPOT_TRADE.as_bytes()[..SPOT_TRADE.len() / 2];
    let mut r = registry();
    let err = Decoder::new()
        .decode_frame(truncated, ctx(Market::Spot), &mut r)
        .unwrap_err();
    assert_eq!(err.code(), "json");

    rejects(Market::Spot, b"", E::Empty);
    rejects(
        Market::Spot,
        b"null",
        E::NotObject {
            context: "frame",
            found: "null",
        },
    );
    rejects(
        Market::Spot,
        b"[]",
        E::NotObject {
            context: "frame",
            found: "array",
        },
    );
    rejects(
        Market::Spot,
        b"42",
        E::NotObject {
            context: "frame",
            found: "integer",
        },
    );
    rejects(
        Market::Spot,
        br#"{"stream":"x","data":"y"}"#,
        E::NotObject {
            context: "data",
            found: "string",
        },
    );
    for bad in [
        &b"   "[..],
        b"{",
        b"{\"e\":\"trade\"",
        b"{\"e\":\"trade\"}}",
        b"{\"e\":tru}",
        b"\xff\xfe",
        b"{\"s\":\"\xc3\x28\"}",
        b"{} {}",
    ] {
        let err = Decoder::new()
            .decode_frame(bad, ctx(Market::Spot), &mut r)
            .unwrap_err();
        assert_eq!(err.code(), "json", "{bad:?}");
    }
    let oversize = vec![b' '; MAX_FRAME_BYTES + 1];
    rejects(
        Market::Spot,
        &oversize,
        E::Oversize {
            len: MAX_FRAME_BYTES + 1,
            max: MAX_FRAME_BYTES,
        },
    );
}

#[test]
fn field_errors_name_event_and_field() {
    use DecodeError as E;
    let sub = |s: &str, from: &str, to: &str| {
        assert!(s.contains(from), "{from}");
        s.replacen(from, to, 1).into_bytes()
    };
    rejects(
        Market::Spot,
        &sub(SPOT_TRADE, "\"E\":1723161255612", "\"E\":\"1723161255612\""),
        E::WrongType {
            event: "trade",
            field: "E",
            expected: "unsigned integer",
            found: "string",
        },
    );
    rejects(
        Market::Spot,
        &sub(SPOT_TRADE, "\"t\":1520538925", "\"t\":-1520538925"),
        E::WrongType {
            event: "trade",
            field: "t",
            expected: "unsigned integer",
            found: "negative integer",
        },
    );
    rejects(
        Market::Spot,
        &sub(SPOT_TRADE, "\"T\":1723161255611", "\"T\":1.5"),
        E::WrongType {
            event: "trade",
            field: "T",
            expected: "unsigned integer",
            found: "float",
        },
    );
    rejects(
        Market::Spot,
        &sub(SPOT_TRADE, "\"m\":true", "\"m\":\"true\""),
        E::WrongType {
            event: "trade",
            field: "m",
            expected: "bool",
            found: "string",
        },
    );
    rejects(
        Market::Spot,
        &sub(SPOT_TRADE, "\"p\":\"2683.80000000\"", "\"p\":2683.8"),
        E::WrongType {
            event: "trade",
            field: "p",
            expected: "string",
            found: "float",
        },
    );
    rejects(
        Market::Spot,
        &sub(SPOT_TRADE, "\"e\":\"trade\"", "\"e\":7"),
        E::WrongType {
            event: "frame",
            field: "e",
            expected: "string",
            found: "integer",
        },
    );
    rejects(
        Market::Spot,
        &sub(SPOT_TRADE, "\"s\":\"ETHUSDT\",", ""),
        E::MissingField {
            event: "trade",
            field: "s",
        },
    );
    rejects(
        Market::Spot,
        &sub(SPOT_TRADE, "\"s\":\"ETHUSDT\"", "\"s\":null"),
        E::WrongType {
            event: "trade",
            field: "s",
            expected: "string",
            found: "null",
        },
    );
    rejects(
        Market::Spot,
        &sub(SPOT_BOOK_TICKER, ",\"A\":\"1.54698000\"", ""),
        E::MissingField {
            event: "bookTicker",
            field: "A",
        },
    );
    rejects(
        Market::Spot,
        &sub(SPOT_TRADE, "\"2683.80000000\"", "\"2683.8x\""),
        E::BadNumber {
            event: "trade",
            field: "p",
            level: None,
            error: FixedError::Syntax,
        },
    );
    // More digits than the instrument's scale is an error, never rounding.
    rejects(
        Market::Spot,
        &sub(SPOT_TRADE, "\"2683.80000000\"", "\"2683.805\""),
        E::BadNumber {
            event: "trade",
            field: "p",
            level: None,
            error: FixedError::Precision { scale: 2 },
        },
    );
    rejects(
        Market::UsdM,
        &sub(
            USDM_DEPTH,
            "[\"2682.16\",\"4.485\"]",
            "[\"2682.16\",\"4.4.85\"]",
        ),
        E::BadNumber {
            event: "depthUpdate",
            field: "a",
            level: Some(1),
            error: FixedError::Syntax,
        },
    );
    for bad_level in [
        "[\"2682.16\"]",
        "[2682.16,4.485]",
        "{}",
        "\"x\"",
        "[\"1\",\"2\",\"3\"]",
    ] {
        rejects(
            Market::UsdM,
            &sub(USDM_DEPTH, "[\"2682.16\",\"4.485\"]", bad_level),
            E::BadLevel {
                event: "depthUpdate",
                field: "a",
                index: 1,
            },
        );
    }
    rejects(
        Market::UsdM,
        &sub(
            &String::from_utf8(sub(USDM_DEPTH, "\"a\":[", "\"a\":{\"x\":[")).unwrap(),
            "]]}}",
            "]]}}}",
        ),
        E::WrongType {
            event: "depthUpdate",
            field: "a",
            expected: "array",
            found: "object",
        },
    );
    rejects(
        Market::Spot,
        &sub(SPOT_TRADE, "ETHUSDT", "DOGEUSDT"),
        E::UnknownSymbol {
            event: "trade",
            market: Market::Spot,
            symbol: "DOGEUSDT".into(),
        },
    );
    // A symbol known on another market is unknown on this one.
    rejects(
        Market::CoinM,
        SPOT_TRADE.as_bytes(),
        E::UnknownSymbol {
            event: "trade",
            market: Market::CoinM,
            symbol: "ETHUSDT".into(),
        },
    );
}

#[test]
fn auto_register_errors_are_typed() {
    let mut r = Registry::with_capacity(1);
    let mut d = Decoder::new();
    let c = DecodeCtx {
        market: Market::Spot,
        auto_register: true,
    };
    let bad = SPOT_TRADE.replace("\"ETHUSDT\"", "\"ETH USDT\"");
    assert_eq!(
        d.decode_frame(bad.as_bytes(), c, &mut r),
        Err(DecodeError::Register {
            event: "trade",
            market: Market::Spot,
            symbol: "ETH USDT".into(),
            error: RegistryError::InvalidSymbol("ETH USDT".into()),
        })
    );
    d.decode_frame(SPOT_TRADE.as_bytes(), c, &mut r).unwrap();
    let err = d
        .decode_frame(SPOT_BOOK_TICKER.as_bytes(), c, &mut r)
        .unwrap_err();
    assert_eq!(err.code(), "register");
    assert_eq!(
        err.to_string(),
        "bookTicker: cannot register spot:BTCUSDT: instrument registry full (1 instruments)"
    );
    // Long hostile symbols are truncated in the error.
    let long = SPOT_TRADE.replace("ETHUSDT", &"X".repeat(5000));
    let err = d.decode_frame(long.as_bytes(), c, &mut r).unwrap_err();
    assert!(matches!(&err, DecodeError::Register { symbol, .. } if symbol.len() == 64));
}

#[test]
fn snapshot_errors() {
    let r = registry();
    let mut d = Decoder::new();
    let cm = id(&r, Market::CoinM, "BTCUSD_PERP");
    let other = CM_SNAPSHOT.replace("\"BTCUSD_PERP\"", "\"ETHUSD_PERP\"");
    let err = d.decode_snapshot(other.as_bytes(), cm, &r).unwrap_err();
    assert_eq!(
        err,
        DecodeError::SymbolMismatch {
            expected: "BTCUSD_PERP".into(),
            got: "ETHUSD_PERP".into()
        }
    );
    assert_eq!(err.code(), "symbol_mismatch");
    // Case differences are not a mismatch.
    let lower = CM_SNAPSHOT.replace("\"BTCUSD_PERP\"", "\"btcusd_perp\"");
    assert!(d.decode_snapshot(lower.as_bytes(), cm, &r).is_ok());
    let missing = CM_SNAPSHOT.replace("\"lastUpdateId\":1007198635033,", "");
    assert_eq!(
        d.decode_snapshot(missing.as_bytes(), cm, &r),
        Err(DecodeError::MissingField {
            event: "snapshot",
            field: "lastUpdateId"
        })
    );
    let bad = CM_SNAPSHOT.replace("\"61805.1\"", "\"61805.15\"");
    assert_eq!(
        d.decode_snapshot(bad.as_bytes(), cm, &r),
        Err(DecodeError::BadNumber {
            event: "snapshot",
            field: "asks",
            level: Some(1),
            error: FixedError::Precision { scale: 1 }
        })
    );
    for (body, found) in [(&b"null"[..], "null"), (b"[]", "array")] {
        assert_eq!(
            d.decode_snapshot(body, cm, &r),
            Err(DecodeError::NotObject {
                context: "snapshot",
                found
            })
        );
    }
    assert_eq!(d.decode_snapshot(b"", cm, &r), Err(DecodeError::Empty));
    let err = d.decode_snapshot(b"{\"lastUpdateId\":1,", cm, &r);
    assert_eq!(err.unwrap_err().code(), "json");
    let stranger = InstrumentId(r.len() as u32);
    let err = d.decode_snapshot(CM_SNAPSHOT.as_bytes(), stranger, &r);
    assert_eq!(err, Err(DecodeError::UnknownInstrument { id: stranger }));
    assert!(err.unwrap_err().is_caller_error());
    // Still usable.
    assert_eq!(
        d.decode_snapshot(CM_SNAPSHOT.as_bytes(), cm, &r)
            .unwrap()
            .asks
            .len(),
        3
    );
}

#[test]
fn error_codes_and_messages() {
    let all = [
        DecodeError::Empty,
        DecodeError::Oversize { len: 9, max: 8 },
        DecodeError::Json {
            offset: 3,
            reason: "Eof".into(),
        },
        DecodeError::NotObject {
            context: "frame",
            found: "null",
        },
        DecodeError::MissingField {
            event: "trade",
            field: "s",
        },
        DecodeError::WrongType {
            event: "trade",
            field: "E",
            expected: "unsigned integer",
            found: "string",
        },
        DecodeError::BadNumber {
            event: "depthUpdate",
            field: "b",
            level: Some(3),
            error: FixedError::Syntax,
        },
        DecodeError::BadLevel {
            event: "depthUpdate",
            field: "a",
            index: 0,
        },
        DecodeError::UnknownSymbol {
            event: "trade",
            market: Market::Spot,
            symbol: "X".into(),
        },
        DecodeError::Register {
            event: "trade",
            market: Market::Spot,
            symbol: "X".into(),
            error: RegistryError::Full(1),
        },
        DecodeError::SymbolMismatch {
            expected: "A".into(),
            got: "B".into(),
        },
        DecodeError::UnknownInstrument {
            id: InstrumentId(7),
        },
    ];
    let mut codes: Vec<_> = all.iter().map(DecodeError::code).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), all.len());
    assert_eq!(all[6].to_string(), "depthUpdate.b[3]: not a decimal number");
    assert_eq!(
        all[5].to_string(),
        "trade.E: expected unsigned integer, found string"
    );
    assert_eq!(all[4].to_string(), "trade: missing field \"s\"");
    assert_eq!(all[8].to_string(), "trade: unknown symbol spot:X");
}

//! User-data decoding: every event type in all three envelopes, malformed input as typed
//! errors, and proptests that nothing panics.

use proptest::prelude::*;

use super::event::*;
use super::ids::{Asset, ClientOrderId};
use super::kinds::*;
use super::money::Money;
use super::userdata::{UserDataDecoder, UserDataError, MAX_USER_FRAME_BYTES};
use crate::fixed::{FixedError, Price, Qty};
use crate::instrument::{InstrumentId, Market, Registry};

pub(super) const SPOT_NEW: &str =
    include_str!("../../../../fixtures/userdata/spot_execution_report_new.json");
pub(super) const SPOT_TRADE: &str =
    include_str!("../../../../fixtures/userdata/spot_execution_report_trade.json");
pub(super) const SPOT_CANCELED: &str =
    include_str!("../../../../fixtures/userdata/spot_execution_report_canceled.json");
pub(super) const SPOT_POSITION: &str =
    include_str!("../../../../fixtures/userdata/spot_outbound_account_position.json");
pub(super) const SPOT_BALANCE: &str =
    include_str!("../../../../fixtures/userdata/spot_balance_update.json");
pub(super) const SPOT_LIST: &str =
    include_str!("../../../../fixtures/userdata/spot_list_status.json");
pub(super) const USDM_TRADE: &str =
    include_str!("../../../../fixtures/userdata/usdm_order_trade_update_trade.json");
pub(super) const USDM_ACCOUNT: &str =
    include_str!("../../../../fixtures/userdata/usdm_account_update.json");

const ALL: [&str; 8] = [
    SPOT_NEW,
    SPOT_TRADE,
    SPOT_CANCELED,
    SPOT_POSITION,
    SPOT_BALANCE,
    SPOT_LIST,
    USDM_TRADE,
    USDM_ACCOUNT,
];

/// Spot BTCUSDT (price scale 2, qty scale 5) is id 0; USD-M BTCUSDT (1, 3) is id 1.
pub(super) fn registry() -> Registry {
    let mut r = Registry::default();
    r.register(Market::Spot, "BTCUSDT", 2, 5).unwrap();
    r.register(Market::UsdM, "BTCUSDT", 1, 3).unwrap();
    r
}

fn envelopes(bare: &str) -> [String; 3] {
    let bare = bare.trim();
    [
        bare.to_owned(),
        format!(r#"{{"stream":"8f0c2b7d1a","data":{bare}}}"#),
        format!(r#"{{"subscriptionId":3,"event":{bare}}}"#),
    ]
}

fn decode(frame: &str) -> Result<UserEvent, UserDataError> {
    UserDataDecoder::new().decode(frame.as_bytes(), Market::UsdM, &registry())
}

fn decode_all(bare: &str) -> UserEvent {
    let [a, b, c] = envelopes(bare);
    let first = decode(&a).unwrap();
    assert_eq!(decode(&b).unwrap(), first, "stream envelope");
    assert_eq!(decode(&c).unwrap(), first, "subscription envelope");
    first
}

fn cid(s: &str) -> ClientOrderId {
    ClientOrderId::new(s).unwrap()
}

fn asset(s: &str) -> Asset {
    Asset::new(s).unwrap()
}

#[test]
fn spot_execution_reports() {
    let UserEvent::Execution(r) = decode_all(SPOT_NEW) else {
        panic!("not an execution report")
    };
    assert_eq!(r.market, Market::Spot);
    assert_eq!(r.instrument, InstrumentId(0));
    assert_eq!(r.client_order_id, cid("tape-demo-1"));
    assert_eq!(r.orig_client_order_id, None, "empty C is none");
    assert_eq!(
        (r.side, r.order_type, r.time_in_force),
        (OrderSide::Buy, OrderType::Limit, TimeInForce::Gtc)
    );
    assert_eq!(
        (r.qty, r.price, r.stop_price),
        (Qty(1_500), Price(6_180_020), Price(0))
    );
    assert_eq!((r.exec_type, r.status), (ExecType::New, OrderStatus::New));
    assert_eq!(r.reject_reason, None);
    assert_eq!(
        (r.order_id, r.trade_id, r.order_list_id),
        (28_457_311, None, None)
    );
    assert_eq!((r.fee, r.fee_asset), (Money::ZERO, None));
    assert_eq!(
        (r.event_time_ms, r.transact_time_ms),
        (1_723_161_300_123, 1_723_161_300_120)
    );
    assert_eq!(r.order_time_ms, Some(1_723_161_300_120));
    assert!(!r.is_fill());

    let UserEvent::Execution(r) = decode_all(SPOT_TRADE) else {
        panic!()
    };
    assert_eq!(
        (r.exec_type, r.status),
        (ExecType::Trade, OrderStatus::PartiallyFilled)
    );
    assert_eq!(
        (r.last_qty, r.cum_qty, r.last_price),
        (Qty(1_000), Qty(1_000), Price(6_180_010))
    );
    assert_eq!((r.fee, r.fee_asset), (Money(1_000), Some(asset("BTC"))));
    assert_eq!(r.trade_id, Some(3_741_009));
    assert!(r.is_maker && r.is_fill());
    assert_eq!(r.cum_quote, Some(Money(61_800_100_000)));

    let UserEvent::Execution(r) = decode_all(SPOT_CANCELED) else {
        panic!()
    };
    assert_eq!(r.client_order_id, cid("cxl-77a1"));
    assert_eq!(r.orig_client_order_id, Some(cid("tape-demo-1")));
    assert_eq!(
        (r.exec_type, r.status),
        (ExecType::Canceled, OrderStatus::Canceled)
    );
}

#[test]
fn spot_balances_and_lists() {
    let UserEvent::AccountPosition(p) = decode_all(SPOT_POSITION) else {
        panic!()
    };
    assert_eq!(p.last_update_ms, 1_723_161_301_450);
    assert_eq!(
        p.balances,
        vec![
            AssetBalance {
                asset: asset("BTC"),
                free: Money(50_999_000),
                locked: Money::ZERO
            },
            AssetBalance {
                asset: asset("USDT"),
                free: Money(907_299_700_000),
                locked: Money(30_900_100_000)
            },
        ]
    );
    assert_eq!(
        decode_all(SPOT_BALANCE),
        UserEvent::BalanceUpdate(BalanceDelta {
            event_time_ms: 1_723_161_400_001,
            asset: asset("USDT"),
            delta: Money(-25_050_000_000),
            clear_time_ms: 1_723_161_399_998,
        })
    );
    let UserEvent::ListStatus(l) = decode_all(SPOT_LIST) else {
        panic!()
    };
    assert_eq!(
        (l.order_list_id, l.contingency_type.as_str()),
        (7781, "OCO")
    );
    assert_eq!(
        (l.list_status_type.as_str(), l.list_order_status.as_str()),
        ("EXEC_STARTED", "EXECUTING")
    );
    assert_eq!(l.list_client_order_id, cid("tape-oco-9"));
    assert_eq!(l.orders.len(), 2);
    assert_eq!(l.orders[1].order_id, 28_457_401);
    assert_eq!(l.orders[1].client_order_id, cid("tape-oco-9-sl"));
}

#[test]
fn usdm_order_and_account_updates() {
    let ev = decode_all(USDM_TRADE);
    assert_eq!(ev.kind(), "ORDER_TRADE_UPDATE");
    let UserEvent::Execution(r) = ev else {
        panic!()
    };
    assert_eq!((r.market, r.instrument), (Market::UsdM, InstrumentId(1)));
    assert_eq!(
        (r.side, r.order_type, r.time_in_force),
        (OrderSide::Sell, OrderType::Limit, TimeInForce::Gtx)
    );
    assert_eq!(
        (r.qty, r.price, r.last_qty, r.last_price),
        (Qty(250), Price(618_500), Qty(250), Price(618_500))
    );
    assert_eq!(
        r.venue_avg_price,
        Some(Price(618_500)),
        "61850.03333 rounds to 61850.0"
    );
    assert_eq!(r.venue_realized_pnl, Some(Money(1_250_000_000)));
    assert_eq!(
        (r.fee, r.fee_asset),
        (Money(309_250_000), Some(asset("USDT")))
    );
    assert!(r.reduce_only && r.is_maker);
    assert_eq!(r.position_side, VenuePositionSide::Both);
    assert_eq!(r.transact_time_ms, 1_723_161_600_555);

    let UserEvent::AccountUpdate(u) = decode_all(USDM_ACCOUNT) else {
        panic!()
    };
    assert_eq!(u.reason, "ORDER");
    assert_eq!(
        u.balances,
        vec![FuturesBalance {
            asset: asset("USDT"),
            wallet: Money(1_001_250_000_000),
            cross_wallet: Money(998_025_000_000),
            change: Some(Money::ZERO),
        }]
    );
    assert_eq!(
        u.positions,
        vec![FuturesPosition {
            instrument: InstrumentId(1),
            amount: Qty(-250),
            entry_price: Price(618_500),
            accumulated_realized: Money(1_250_000_000),
            unrealized: Money(-125_000_000),
            margin_type: MarginType::Cross,
            isolated_wallet: Money::ZERO,
            position_side: VenuePositionSide::Both,
        }]
    );
}

/// Decodes `bad`, expects `want`, then checks the same decoder still decodes good frames.
fn rejects(bad: &str, want: UserDataError) {
    let r = registry();
    let mut d = UserDataDecoder::new();
    assert_eq!(
        d.decode(bad.as_bytes(), Market::UsdM, &r),
        Err(want),
        "{bad}"
    );
    assert!(d.decode(SPOT_TRADE.as_bytes(), Market::UsdM, &r).is_ok());
}

#[test]
fn malformed_frames_are_typed_errors() {
    use UserDataError as E;
    rejects("", E::Empty);
    let big = " ".repeat(MAX_USER_FRAME_BYTES + 1);
    rejects(
        &big,
        E::Oversize {
            len: MAX_USER_FRAME_BYTES + 1,
            max: MAX_USER_FRAME_BYTES,
        },
    );
    assert!(matches!(decode(&SPOT_NEW[..40]), Err(E::Json { .. })));
    assert!(
        matches!(
            decode(&format!("{}{}", "[".repeat(40), "]".repeat(40))),
            Err(E::Json { .. })
        ),
        "too deep"
    );
    rejects(
        "[1,2]",
        E::NotObject {
            context: "frame",
            found: "array",
        },
    );
    rejects(
        r#"{"stream":"x","data":[1]}"#,
        E::NotObject {
            context: "data",
            found: "array",
        },
    );
    rejects(
        r#"{"subscriptionId":1,"event":"x"}"#,
        E::NotObject {
            context: "event",
            found: "string",
        },
    );
    rejects(
        r#"{"e":"listenKeyExpired","E":1}"#,
        E::UnknownEvent {
            event: "listenKeyExpired".into(),
        },
    );
    rejects(
        r#"{"result":null,"id":1}"#,
        E::MissingField {
            event: "frame",
            field: "e",
        },
    );
    rejects(
        r#"{"e":5}"#,
        E::WrongType {
            event: "frame",
            field: "e",
            expected: "string",
            found: "integer",
        },
    );
    rejects(
        &SPOT_NEW.replace(r#""q":"0.01500000","#, ""),
        E::MissingField {
            event: "executionReport",
            field: "q",
        },
    );
    rejects(
        &SPOT_NEW.replace(r#""i":28457311"#, r#""i":"28457311""#),
        E::WrongType {
            event: "executionReport",
            field: "i",
            expected: "non-negative integer",
            found: "string",
        },
    );
    rejects(
        &SPOT_NEW.replace(r#""i":28457311"#, r#""i":-4"#),
        E::WrongType {
            event: "executionReport",
            field: "i",
            expected: "non-negative integer",
            found: "negative integer",
        },
    );
    rejects(
        &SPOT_NEW.replace("61800.20000000", "61800.201"),
        E::BadNumber {
            event: "executionReport",
            field: "p",
            value: "61800.201".into(),
            error: FixedError::Precision { scale: 2 },
        },
    );
    rejects(
        &SPOT_NEW.replace("0.01500000", "1e5"),
        E::BadNumber {
            event: "executionReport",
            field: "q",
            value: "1e5".into(),
            error: FixedError::Syntax,
        },
    );
    rejects(
        &SPOT_NEW.replace(r#""S":"BUY""#, r#""S":"HOLD""#),
        E::BadValue {
            event: "executionReport",
            field: "S",
            value: "HOLD".into(),
        },
    );
    rejects(
        &SPOT_NEW.replace(r#""o":"LIMIT""#, r#""o":"STOP""#),
        E::BadValue {
            event: "executionReport",
            field: "o",
            value: "STOP".into(),
        },
    );
    rejects(
        &SPOT_NEW.replace("tape-demo-1", &"x".repeat(37)),
        E::BadValue {
            event: "executionReport",
            field: "c",
            value: "x".repeat(37),
        },
    );
    rejects(
        &SPOT_NEW.replace(r#""s":"BTCUSDT""#, r#""s":"DOGEUSDT""#),
        E::UnknownSymbol {
            event: "executionReport",
            market: Market::Spot,
            symbol: "DOGEUSDT".into(),
        },
    );
    rejects(
        &USDM_ACCOUNT.replace(r#""s":"BTCUSDT""#, r#""s":"ETHUSDT""#),
        E::UnknownSymbol {
            event: "ACCOUNT_UPDATE",
            market: Market::UsdM,
            symbol: "ETHUSDT".into(),
        },
    );
    rejects(
        &USDM_TRADE.replace(r#""o":{"#, r#""o":5,"x":{"#),
        E::WrongType {
            event: "ORDER_TRADE_UPDATE",
            field: "o",
            expected: "object",
            found: "integer",
        },
    );
    rejects(
        &USDM_ACCOUNT.replace(r#""mt":"cross""#, r#""mt":"portfolio""#),
        E::BadValue {
            event: "ACCOUNT_UPDATE",
            field: "mt",
            value: "portfolio".into(),
        },
    );
    rejects(
        &SPOT_POSITION.replace(r#""B":["#, r#""B":[7,"#),
        E::WrongType {
            event: "outboundAccountPosition",
            field: "B",
            expected: "array of objects",
            found: "integer",
        },
    );
    rejects(
        &SPOT_BALANCE.replace(r#""a":"USDT""#, r#""a":"US DT""#),
        E::BadValue {
            event: "balanceUpdate",
            field: "a",
            value: "US DT".into(),
        },
    );
    let e = decode(&SPOT_NEW.replace("0.01500000", "abc")).unwrap_err();
    assert_eq!(e.code(), "bad_number");
    assert_eq!(
        e.to_string(),
        "executionReport.q: bad number \"abc\": not a decimal number"
    );
}

#[test]
fn futures_events_look_up_the_futures_market() {
    let r = registry();
    let mut d = UserDataDecoder::new();
    // A spot hint still decodes USD-M events on USD-M.
    let UserEvent::Execution(x) = d.decode(USDM_TRADE.as_bytes(), Market::Spot, &r).unwrap() else {
        panic!()
    };
    assert_eq!(x.instrument, InstrumentId(1));
    // COIN-M: the symbol is not registered there.
    assert!(matches!(
        d.decode(USDM_TRADE.as_bytes(), Market::CoinM, &r),
        Err(UserDataError::UnknownSymbol {
            market: Market::CoinM,
            ..
        })
    ));
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        0..ALL.len(),
        any::<prop::sample::Index>(),
        any::<u8>(),
        0u8..4,
        any::<prop::sample::Index>(),
    )
        .prop_map(|(which, at, byte, op, to)| {
            let mut v = envelopes(ALL[which])[usize::from(byte) % 3]
                .clone()
                .into_bytes();
            let i = at.index(v.len());
            match op {
                0 => v[i] = byte,
                1 => v.truncate(i),
                2 => v.insert(i, byte),
                _ => {
                    let j = to.index(v.len());
                    let (a, b) = (i.min(j), i.max(j));
                    v.drain(a..b);
                }
            }
            v
        })
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let r = registry();
        let _ = UserDataDecoder::new().decode(&bytes, Market::UsdM, &r);
    }

    #[test]
    fn never_panics_on_mutated_frames(frame in mutated()) {
        let r = registry();
        let mut d = UserDataDecoder::new();
        let _ = d.decode(&frame, Market::UsdM, &r);
        prop_assert!(d.decode(SPOT_NEW.as_bytes(), Market::UsdM, &r).is_ok());
    }
}

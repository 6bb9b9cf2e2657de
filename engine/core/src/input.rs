//! What goes into the engine: journal record kinds, sources, and receive time.
//!
//! Every input is a journal record `(recv time, source, kind, raw bytes)`. A source is a
//! stream of inputs with one meaning (an exchange WebSocket connection, the REST snapshots of
//! one symbol); it is declared by a [`RecordKind::SourceDef`] record in the same journal, so a
//! journal is self-describing and replays without outside configuration.

/// Receive time in nanoseconds, stamped once by the io layer (or read back from the journal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Nanos(pub u64);

/// A journal source id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceId(pub u32);

/// Highest accepted source id + 1; sources are indexed densely.
pub const MAX_SOURCES: u32 = 4096;

/// The kind of a journal record; stored as a `u16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u16)]
pub enum RecordKind {
    /// Declares a source: payload is a [`SourceDef`] in its text form.
    SourceDef = 1,
    /// One WebSocket text frame from an exchange market-data stream.
    WsFrame = 2,
    /// One REST depth snapshot response body.
    RestSnapshot = 3,
    /// A change in a feed connection's state (see [`crate::venue::LinkEvent`]), on the
    /// connection's own source.
    Link = 4,
    /// The trading desk's setup (users, risk limits, paper fees; see
    /// [`crate::desk::DeskSetup`]), on [`CLIENT_SOURCE`]. Written once when a node with
    /// accounts starts, so the journal replays without the configuration.
    DeskSetup = 5,
    /// A client session event or command (login, private subscribe, order entry, publish;
    /// see [`crate::desk::ClientRecord`]), on [`CLIENT_SOURCE`].
    Client = 6,
    /// One text frame from the external order venue's WebSocket API (a response or a
    /// user-data event), or a failure the io layer reports in the same shape, on
    /// [`GATEWAY_SOURCE`].
    GatewayFrame = 7,
    /// What the io layer did on the order gateway (connected, ready, down, a request sent or
    /// timed out; see [`crate::desk::GatewayEvent`]), on [`GATEWAY_SOURCE`], in order with
    /// the frames.
    GatewayEvent = 8,
}

/// The source id of client records ([`RecordKind::DeskSetup`], [`RecordKind::Client`]): not a
/// feed, so it needs no [`RecordKind::SourceDef`].
pub const CLIENT_SOURCE: u32 = u32::MAX;

/// The source id of [`RecordKind::GatewayFrame`] records.
pub const GATEWAY_SOURCE: u32 = u32::MAX - 1;

impl RecordKind {
    /// The kind for a stored `u16`, if known.
    pub fn from_u16(v: u16) -> Option<RecordKind> {
        match v {
            1 => Some(RecordKind::SourceDef),
            2 => Some(RecordKind::WsFrame),
            3 => Some(RecordKind::RestSnapshot),
            4 => Some(RecordKind::Link),
            5 => Some(RecordKind::DeskSetup),
            6 => Some(RecordKind::Client),
            7 => Some(RecordKind::GatewayFrame),
            8 => Some(RecordKind::GatewayEvent),
            _ => None,
        }
    }

    /// Stable lower-case name, for dumps.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::SourceDef => "source_def",
            RecordKind::WsFrame => "ws_frame",
            RecordKind::RestSnapshot => "rest_snapshot",
            RecordKind::Link => "link",
            RecordKind::DeskSetup => "desk_setup",
            RecordKind::Client => "client",
            RecordKind::GatewayFrame => "gateway_frame",
            RecordKind::GatewayEvent => "gateway_event",
        }
    }
}

use crate::instrument::Market;

/// What a source carries. Journal payload: a `"type":"source"` record (see
/// [`crate::record`]): `{"v":2,"type":"source","market":"usdm","symbol":"BTCUSDT",
/// "price_scale":2,"qty_scale":3,"name":"rest"}`; journals written before version 2 hold
/// `tape-source/1` lines, which [`SourceDef::parse`] still reads. `symbol` is required for
/// REST snapshot sources (spot snapshots do not name their symbol); `price_scale`/`qty_scale`
/// (0 to 18, both or neither) register the symbol with those scales; `name` is free text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceDef {
    /// Market whose rules decode and sequence this source.
    pub market: Market,
    /// The symbol, for single-symbol sources.
    pub symbol: Option<String>,
    /// `(price scale, quantity scale)` of `symbol`, when known.
    pub scales: Option<(u8, u8)>,
    /// A label for humans.
    pub name: String,
}

/// Why a source definition could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceDefError {
    /// Not UTF-8, or neither a version 2 record nor a `tape-source/1` line.
    #[error("not a tape-source/1 definition")]
    Format,
    /// `market` missing or unknown.
    #[error("missing or unknown market in source definition")]
    Market,
    /// A scale that is not a number from 0 to 18, or only one of the two.
    #[error("bad price_scale/qty_scale in source definition")]
    Scale,
    /// A `key=value` pair that is not understood (`tape-source/1`).
    #[error("unknown key {0:?} in source definition")]
    UnknownKey(String),
    /// A version 2 record that is malformed.
    #[error("source definition: {0}")]
    Record(#[from] crate::record::RecordError),
}

impl SourceDef {
    /// The journal payload for this definition (version 2).
    pub fn to_text(&self) -> String {
        crate::record::encode_source(self)
    }

    /// Parses a definition in either encoding (version 2 or `tape-source/1`).
    ///
    /// # Errors
    /// [`SourceDefError`] for anything else.
    pub fn parse(payload: &[u8]) -> Result<SourceDef, SourceDefError> {
        crate::record::parse_source(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_def_round_trip() {
        let d = SourceDef {
            market: Market::CoinM,
            symbol: Some("BTCUSD_PERP".into()),
            scales: Some((1, 0)),
            name: "rest snapshots".into(),
        };
        let text = d.to_text();
        assert_eq!(
            text,
            r#"{"v":2,"type":"source","market":"coinm","symbol":"BTCUSD_PERP","price_scale":1,"qty_scale":0,"name":"rest snapshots"}"#
        );
        // Version 2 carries the name as it is (version 1 had to turn spaces into `_`).
        assert_eq!(SourceDef::parse(text.as_bytes()), Ok(d.clone()));
        let back = SourceDef::parse(
            b"tape-source/1 market=coinm symbol=BTCUSD_PERP price_scale=1 qty_scale=0 name=rest_snapshots",
        )
        .unwrap();
        assert_eq!(back.symbol, d.symbol);
        assert_eq!(back.market, Market::CoinM);
        assert_eq!(back.name, "rest_snapshots");
        assert_eq!(back.scales, Some((1, 0)));
    }

    #[test]
    fn source_def_rejects_garbage() {
        assert_eq!(SourceDef::parse(b""), Err(SourceDefError::Format));
        assert_eq!(SourceDef::parse(&[0xff, 0xfe]), Err(SourceDefError::Format));
        assert_eq!(
            SourceDef::parse(b"tape-source/1 symbol=X"),
            Err(SourceDefError::Market)
        );
        assert_eq!(
            SourceDef::parse(b"tape-source/1 market=mars"),
            Err(SourceDefError::Market)
        );
        for bad in [
            "price_scale=19 qty_scale=2",
            "price_scale=2",
            "price_scale=x qty_scale=1",
        ] {
            let text = format!("tape-source/1 market=spot symbol=A {bad}");
            assert_eq!(
                SourceDef::parse(text.as_bytes()),
                Err(SourceDefError::Scale),
                "{bad}"
            );
        }
        assert!(matches!(
            SourceDef::parse(b"tape-source/1 market=spot bogus"),
            Err(SourceDefError::UnknownKey(_))
        ));
        for k in 0..=u16::MAX {
            if let Some(rk) = RecordKind::from_u16(k) {
                assert_eq!(rk as u16, k);
            }
        }
    }
}

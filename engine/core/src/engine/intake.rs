//! The decoding half of a record, on its own: an [`Intake`] reads records as
//! [`Engine::handle_stored`] does up to the decoded message, and [`Engine::apply_intaken`]
//! finishes them. Together they are `handle_stored` cut in two, so a replay can decode the
//! next records on one thread while the engine applies the previous ones on another
//! (`tape replay`'s pipeline). Both halves run the engine's own code: the source table, the
//! snapshot decoding and the frame decoder's call are those of [`Engine::handle_record`]
//! (the frame's is written out in both, as it is the hot path; the tests in
//! `tools/tests/pipeline.rs` hold the two halves equal to `handle_stored`).
//!
//! The intake keeps its own copy of what decoding reads: the source table and the
//! instrument registry, changed by the same records in the same order as the engine's. Only
//! one change is the intake's alone: a symbol registered by a frame (`auto_register`).
//! [`Intake::intake`] returns such instruments beside the record, and the caller hands them
//! to [`Engine::adopt_instrument`] before it applies the record, so both registries stay
//! equal.

use crate::decode::{DecodeCtx, Decoder};
use crate::input::{Nanos, RecordKind, SourceId};
use crate::instrument::{Instrument, InstrumentId, Market, Registry, RegistryError};
use crate::msg::{DepthSnapshot, MarketMsg};
use crate::output::Error;

use super::market::decode_snapshot;
use super::sources::{self, Source};
use super::{Engine, EngineConfig};

/// What [`Intake::intake`] made of a record, for [`Engine::apply_intaken`].
#[derive(Debug)]
pub enum Intaken<'a> {
    /// A WebSocket frame, decoded, from a source on this market.
    Frame(Market, MarketMsg<'a>),
    /// A REST snapshot, decoded, from a source on this market.
    Snapshot(Market, DepthSnapshot<'a>),
    /// A frame or snapshot that failed before it could be applied (unknown source, a
    /// snapshot source without a symbol, a decode error): the engine counts and rejects it
    /// as `handle_stored` would.
    Failed(Error),
    /// Any other record (source definitions, links, the desk's records, unknown kinds): the
    /// engine handles it whole.
    Whole,
}

/// The decoding half of [`Engine::handle_stored`] (see the module docs).
#[derive(Debug)]
pub struct Intake {
    registry: Registry,
    sources: Vec<Option<Source>>,
    decoder: Decoder,
    auto_register: bool,
    /// The instruments the last record registered.
    registered: Vec<Instrument>,
}

impl Intake {
    /// The intake of a new engine built from `cfg` ([`Engine::new`]): the same configured
    /// instruments, registered in the same order.
    ///
    /// # Errors
    /// As [`Engine::new`].
    pub fn new(cfg: &EngineConfig) -> Result<Intake, RegistryError> {
        let mut registry = Registry::default();
        for (market, symbol, ps, qs) in &cfg.instruments {
            registry.register(*market, symbol, *ps, *qs)?;
        }
        Ok(Intake {
            registry,
            sources: Vec::new(),
            decoder: Decoder::new(),
            auto_register: cfg.auto_register,
            registered: Vec::new(),
        })
    }

    /// The intake's registry: the engine's once every instrument [`Intake::intake`]
    /// returned was handed to [`Engine::adopt_instrument`].
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Takes in one stored record (a raw `kind`, as [`Engine::handle_stored`]): decodes a
    /// frame or snapshot, and applies a source definition to the intake's own table (the
    /// engine applies it again, from the record, when it gets [`Intaken::Whole`]).
    ///
    /// Returns what it made of the record and the instruments the record registered (a
    /// symbol first seen in a frame, or named by a source definition), in id order: hand
    /// them to [`Engine::adopt_instrument`] before applying the record.
    #[inline]
    pub fn intake(
        &mut self,
        source: SourceId,
        kind: u16,
        payload: &[u8],
    ) -> (Intaken<'_>, &[Instrument]) {
        let before = self.registry.len();
        if !self.registered.is_empty() {
            self.registered.clear();
        }
        // Matched out (not mapped through `Result`s) so the decoded message is built in
        // place rather than moved through each layer.
        let taken = match RecordKind::from_u16(kind) {
            Some(RecordKind::WsFrame) => match sources::info(&self.sources, source) {
                Ok((market, _)) => {
                    let ctx = DecodeCtx {
                        market,
                        auto_register: self.auto_register,
                    };
                    match self.decoder.decode_frame(payload, ctx, &mut self.registry) {
                        Ok(msg) => Intaken::Frame(market, msg),
                        Err(err) => Intaken::Failed(Error::Decode {
                            source_id: source,
                            err,
                        }),
                    }
                }
                Err(e) => Intaken::Failed(e),
            },
            Some(RecordKind::RestSnapshot) => {
                match decode_snapshot(
                    &mut self.decoder,
                    &self.registry,
                    &self.sources,
                    source,
                    payload,
                ) {
                    Ok((market, snap)) => Intaken::Snapshot(market, snap),
                    Err(e) => Intaken::Failed(e),
                }
            }
            Some(RecordKind::SourceDef) => {
                // Its error, if any, is the engine's to count when it applies the record.
                let _ = sources::define(&mut self.registry, &mut self.sources, source, payload);
                Intaken::Whole
            }
            _ => Intaken::Whole,
        };
        if self.registry.len() > before {
            self.registered
                .extend(self.registry.iter().skip(before).cloned());
        }
        (taken, &self.registered)
    }
}

/// [`Engine::adopt_instrument`] was handed an instrument that does not come next in the
/// engine's registry: the caller skipped one, or fed the engine records the intake did not
/// take in. The engine's registry is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("instrument {market}:{symbol} is id {expected} in the intake but would be id {got} in the engine")]
pub struct AdoptError {
    /// Market of the instrument.
    pub market: Market,
    /// Its symbol.
    pub symbol: String,
    /// Its id in the intake.
    pub expected: u32,
    /// The id the engine's registry gives it (or would: nothing was registered).
    pub got: u32,
}

impl Engine {
    /// Registers an instrument that an [`Intake`] registered while taking a record in (see
    /// [`Intake::intake`]), so that the engine's registry stays the intake's.
    ///
    /// # Errors
    /// The instrument is not the next one the engine's registry would register.
    pub fn adopt_instrument(&mut self, inst: &Instrument) -> Result<InstrumentId, AdoptError> {
        let err = |got: usize| AdoptError {
            market: inst.market,
            symbol: inst.symbol.clone(),
            expected: inst.id.0,
            got: u32::try_from(got).unwrap_or(u32::MAX),
        };
        let next = self.registry.len();
        if inst.id.0 as usize != next {
            return Err(err(next));
        }
        match self
            .registry
            .register(inst.market, &inst.symbol, inst.price_scale, inst.qty_scale)
        {
            Ok(id) if id == inst.id => Ok(id),
            Ok(id) => Err(err(id.0 as usize)),
            Err(_) => Err(err(next)),
        }
    }

    /// Applies a record an [`Intake`] took in: the rest of [`Engine::handle_stored`], with
    /// the same counts, outputs and digest. `kind` and `payload` are the stored record's;
    /// the payload is read only for [`Intaken::Whole`].
    ///
    /// # Errors
    /// As [`Engine::handle_record`].
    pub fn apply_intaken(
        &mut self,
        now: Nanos,
        source: SourceId,
        kind: u16,
        payload: &[u8],
        intaken: Intaken<'_>,
    ) -> Result<(), Error> {
        let res = match intaken {
            Intaken::Whole => return self.handle_stored(now, source, kind, payload),
            Intaken::Frame(market, msg) => {
                self.stats.records += 1;
                self.apply_frame(now, source, market, msg);
                return Ok(());
            }
            Intaken::Snapshot(market, snap) => {
                self.stats.records += 1;
                self.apply_snapshot(now, market, &snap);
                return Ok(());
            }
            Intaken::Failed(e) => {
                self.stats.records += 1;
                e
            }
        };
        self.reject(now, &res);
        Err(res)
    }
}

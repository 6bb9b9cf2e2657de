//! Source definitions: what each journal source id means (market, name, and for snapshot
//! sources the instrument), and their lookup by every other record kind.

use crate::input::{SourceDef, SourceId, MAX_SOURCES};
use crate::instrument::{InstrumentId, Market, Registry};
use crate::output::Error;

use super::Engine;

#[derive(Debug, Clone)]
pub(super) struct Source {
    pub(super) def: SourceDef,
    /// For snapshot sources: the instrument their symbol names.
    pub(super) instrument: Option<InstrumentId>,
}

impl Engine {
    /// The definition of a source, if it was declared.
    pub fn source(&self, id: SourceId) -> Option<&SourceDef> {
        Some(&self.sources.get(id.0 as usize)?.as_ref()?.def)
    }

    pub(super) fn define_source(&mut self, source: SourceId, payload: &[u8]) -> Result<(), Error> {
        define(&mut self.registry, &mut self.sources, source, payload)
    }

    pub(super) fn source_info(
        &self,
        source: SourceId,
    ) -> Result<(Market, Option<InstrumentId>), Error> {
        info(&self.sources, source)
    }
}

/// Defines `source` from a [`RecordKind::SourceDef`](crate::input::RecordKind) payload,
/// registering the instrument it names: the engine's and an [`Intake`](super::Intake)'s
/// tables change alike.
pub(super) fn define(
    registry: &mut Registry,
    sources: &mut Vec<Option<Source>>,
    source: SourceId,
    payload: &[u8],
) -> Result<(), Error> {
    let bad = |message: String| Error::BadSourceDef {
        source_id: source,
        message,
    };
    if source.0 >= MAX_SOURCES {
        return Err(bad(format!("source id above {}", MAX_SOURCES - 1)));
    }
    let def = SourceDef::parse(payload).map_err(|e| bad(e.to_string()))?;
    let registered = match (&def.symbol, def.scales) {
        (Some(sym), Some((ps, qs))) => Some(registry.register(def.market, sym, ps, qs)),
        (Some(sym), None) => Some(registry.lookup_or_register(def.market, sym.as_bytes())),
        (None, _) => None,
    };
    let instrument = registered.transpose().map_err(|err| Error::Registry {
        source_id: source,
        err,
    })?;
    let idx = source.0 as usize;
    if sources.len() <= idx {
        sources.resize_with(idx + 1, || None);
    }
    if let Some(old) = &sources[idx] {
        if old.def != def {
            return Err(bad("redefined with a different meaning".into()));
        }
    }
    sources[idx] = Some(Source { def, instrument });
    Ok(())
}

/// The market of `source` and, for a snapshot source, its instrument.
#[inline]
pub(super) fn info(
    sources: &[Option<Source>],
    source: SourceId,
) -> Result<(Market, Option<InstrumentId>), Error> {
    match sources.get(source.0 as usize) {
        Some(Some(s)) => Ok((s.def.market, s.instrument)),
        _ => Err(Error::UnknownSource(source)),
    }
}

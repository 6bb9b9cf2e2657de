//! The trading desk inside the engine: its setup record, client and gateway records, the
//! market data it follows, and the private messages and venue orders it produces.

use crate::desk::{Desk, DeskError, DeskOutput, DeskSetup, SetupError};
use crate::fixed::{Price, Qty};
use crate::input::Nanos;
use crate::instrument::InstrumentId;
use crate::msg::Level;
use crate::output::{Error, Event, VenueCommand};

use super::Engine;

impl Engine {
    /// The trading desk, if the journal set one up.
    pub fn desk(&self) -> Option<&Desk> {
        self.desk.as_deref()
    }

    /// The trading desk, mutably (for rendering snapshots; queries change no state).
    pub fn desk_mut(&mut self) -> Option<&mut Desk> {
        self.desk.as_deref_mut()
    }

    /// A desk setup: creates the desk (a second, identical setup is a no-op; a different one
    /// is refused, as the accounts already exist).
    pub(super) fn handle_desk_setup(&mut self, payload: &[u8]) -> Result<(), Error> {
        let setup = DeskSetup::parse(payload).map_err(|e| Error::Desk(e.into()))?;
        match &self.desk {
            Some(d) if *d.setup() == setup => Ok(()),
            Some(_) => Err(Error::Desk(DeskError::Setup(SetupError::Syntax(
                "a different desk setup is already in force".into(),
            )))),
            None => {
                let desk = Desk::new(setup).map_err(|e| Error::Desk(e.into()))?;
                self.desk = Some(Box::new(desk));
                Ok(())
            }
        }
    }

    pub(super) fn handle_client(&mut self, now: Nanos, payload: &[u8]) -> Result<(), Error> {
        let desk = self
            .desk
            .as_deref_mut()
            .ok_or(Error::Desk(DeskError::NoDesk))?;
        let res = desk
            .handle_client(now, payload, &self.registry)
            .map_err(Error::Desk);
        self.flush_desk(now);
        res
    }

    pub(super) fn handle_gateway_frame(&mut self, now: Nanos, payload: &[u8]) -> Result<(), Error> {
        let desk = self
            .desk
            .as_deref_mut()
            .ok_or(Error::Desk(DeskError::NoDesk))?;
        desk.handle_gateway_frame(now, payload, &self.registry);
        self.flush_desk(now);
        Ok(())
    }

    /// What the io layer did on the order gateway (see [`crate::desk::GatewayEvent`]).
    pub(super) fn handle_gateway_event(&mut self, now: Nanos, payload: &[u8]) -> Result<(), Error> {
        let ev = crate::record::parse_gateway(payload)
            .map_err(|e| Error::Desk(DeskError::BadGatewayEvent(e)))?;
        let desk = self
            .desk
            .as_deref_mut()
            .ok_or(Error::Desk(DeskError::NoDesk))?;
        desk.handle_gateway_event(now, ev, &self.registry);
        self.flush_desk(now);
        Ok(())
    }

    fn flush_desk(&mut self, now: Nanos) {
        while let Some(m) = self.desk.as_deref_mut().and_then(Desk::poll_output) {
            match m {
                DeskOutput::Private(m) => self.emit(now, Event::Private(m)),
                DeskOutput::VenueOrder { user, json } => {
                    // In the digest at the same point, with the same encoding, as when venue
                    // orders were client outputs: pinned digests stay valid.
                    self.digest.update_venue_order(now, &user, &json);
                    self.count_output(super::stats::KIND_GATEWAY_REQUEST);
                    self.emit_venue(VenueCommand::Order {
                        recv: now,
                        user,
                        json,
                    });
                }
            }
        }
    }

    /// A book changed: the desk's marks, triggers and paper venue follow it while it is synced.
    pub(super) fn desk_book(&mut self, now: Nanos, id: InstrumentId) {
        let Some(desk) = self.desk.as_deref_mut() else {
            return;
        };
        if let Some(b) = self.books[id.0 as usize].as_ref().filter(|b| b.is_synced()) {
            desk.on_book(now, id, b.book(), &self.registry);
            self.flush_desk(now);
        }
    }

    pub(super) fn desk_trade(&mut self, now: Nanos, id: InstrumentId, price: Price, qty: Qty) {
        if let Some(desk) = self.desk.as_deref_mut() {
            desk.on_trade(now, id, Level { price, qty }, &self.registry);
            self.flush_desk(now);
        }
    }
}

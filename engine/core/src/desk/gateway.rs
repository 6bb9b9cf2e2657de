//! The desk's side of an external order venue (Binance's WebSocket API, or the simulator's).
//!
//! Orders the accounts want sent become `order.place` / `order.cancel` requests, rendered
//! here and emitted as [`DeskOutput::VenueOrder`](super::DeskOutput::VenueOrder)s, which the
//! engine hands to the io layer as
//! [`VenueCommand::Order`](crate::output::VenueCommand::Order)s. Everything the venue says
//! back (responses, user-data events) returns as
//! [`RecordKind::GatewayFrame`](crate::input::RecordKind::GatewayFrame) records, journaled like
//! market data, so a replay reproduces the same fills.
//!
//! One venue account serves every user of the desk. Each order gets a venue client id of
//! its own (`tg<n>`, unique on the desk), so two users' ids never collide at the venue; the
//! desk maps it back to the user and the id the user knows before the account sees the
//! report. Account-wide venue events (balances, the venue's own positions) cannot be split
//! between users and are counted, not applied: positions and PnL are tape's own, from fills.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::account::{
    Accounts, ClientOrderId, NewOrder, OrderCommand, OrderType, UserDataDecoder, UserEvent,
};
use crate::input::Nanos;
use crate::instrument::{InstrumentId, Market, Registry};
use crate::wire::JsonBuf;

/// Counters of the gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// Requests rendered for the venue.
    pub requests: u64,
    /// Error responses (orders rejected, cancels refused).
    pub rejected: u64,
    /// Order reports applied to an account.
    pub reports: u64,
    /// Events for no order of the desk, or account-wide ones.
    pub unattributed: u64,
    /// Frames that did not parse or decode.
    pub bad_frames: u64,
}

#[derive(Debug, Clone, Copy)]
enum Pending {
    Place(ClientOrderId),
    Cancel(ClientOrderId),
}

#[derive(Debug)]
pub(super) struct Gateway {
    market: Market,
    next: u64,
    /// Request id → (user, what it was).
    pending: BTreeMap<u64, (String, Pending)>,
    /// Venue client id → (user, the user's client id).
    by_venue: BTreeMap<ClientOrderId, (String, ClientOrderId)>,
    /// (user, client id) → venue client id.
    to_venue: BTreeMap<(String, ClientOrderId), ClientOrderId>,
    decoder: UserDataDecoder,
    pub stats: GatewayStats,
}

fn venue_id(n: u64) -> ClientOrderId {
    // `tg` + at most 20 digits: always a valid id.
    ClientOrderId::new(&format!("tg{n}")).unwrap_or_else(|_| ClientOrderId::generated("tg"))
}

impl Gateway {
    pub(super) fn new(market: Market) -> Gateway {
        Gateway {
            market,
            next: 1,
            pending: BTreeMap::new(),
            by_venue: BTreeMap::new(),
            to_venue: BTreeMap::new(),
            decoder: UserDataDecoder::new(),
            stats: GatewayStats::default(),
        }
    }

    /// Renders the request for `cmd` of `user`; `Err` is why it cannot be sent (the order
    /// is then rejected by the caller).
    pub(super) fn request(
        &mut self,
        j: &mut JsonBuf,
        user: &str,
        cmd: &OrderCommand,
        registry: &Registry,
    ) -> Result<String, String> {
        let n = self.next;
        match cmd {
            OrderCommand::Place(o) => {
                let vid = venue_id(n);
                render_place(j, n, o, vid, registry)?;
                self.by_venue
                    .insert(vid, (user.to_owned(), o.client_order_id));
                self.to_venue
                    .insert((user.to_owned(), o.client_order_id), vid);
                self.pending
                    .insert(n, (user.to_owned(), Pending::Place(o.client_order_id)));
            }
            OrderCommand::Cancel {
                instrument,
                client_order_id,
                ..
            } => {
                let vid = *self
                    .to_venue
                    .get(&(user.to_owned(), *client_order_id))
                    .ok_or("the venue never got this order")?;
                j.clear();
                j.raw("{\"id\":");
                j.u64(n);
                j.raw(",\"method\":\"order.cancel\",\"params\":{\"symbol\":");
                symbol(j, *instrument, registry)?;
                j.raw(",\"origClientOrderId\":");
                j.string(vid.as_str());
                j.raw("}}");
                self.pending
                    .insert(n, (user.to_owned(), Pending::Cancel(*client_order_id)));
            }
        }
        self.next += 1;
        self.stats.requests += 1;
        Ok(j.as_str().to_owned())
    }

    /// Applies one frame from the venue. Returns the users whose accounts changed.
    pub(super) fn handle_frame(
        &mut self,
        now: Nanos,
        frame: &[u8],
        accounts: &mut Accounts,
        registry: &Registry,
    ) {
        let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(frame) else {
            self.stats.bad_frames += 1;
            return;
        };
        if let (Some(id), Some(status)) = (o.get("id"), o.get("status").and_then(Value::as_u64)) {
            let id = id
                .as_u64()
                .or_else(|| id.as_str().and_then(|s| s.parse().ok()));
            let Some((user, what)) = id.and_then(|id| self.pending.remove(&id)) else {
                // The subscription's answer, or an id that is not ours.
                return;
            };
            if status == 200 {
                return;
            }
            self.stats.rejected += 1;
            let Some(a) = accounts.user_mut(&user) else {
                return;
            };
            // A report may have moved the order on already; then there is nothing to undo.
            match what {
                Pending::Place(id) => {
                    let _ = a.order_rejected(now, &id);
                    if a.order(&id).is_none_or(|o| !o.is_live()) {
                        self.forget(&user, id);
                    }
                }
                Pending::Cancel(id) => {
                    let _ = a.cancel_rejected(now, &id);
                }
            }
            return;
        }
        let ev = match self.decoder.decode(frame, self.market, registry) {
            Ok(ev) => ev,
            Err(_) => {
                self.stats.bad_frames += 1;
                return;
            }
        };
        let UserEvent::Execution(mut r) = ev else {
            self.stats.unattributed += 1;
            return;
        };
        // A spot cancel's report carries the cancel's id in `c` and the order's in `C`.
        let key = r.orig_client_order_id.unwrap_or(r.client_order_id);
        let Some((user, mine)) = self.by_venue.get(&key).cloned() else {
            self.stats.unattributed += 1;
            return;
        };
        r.client_order_id = mine;
        r.orig_client_order_id = None;
        self.stats.reports += 1;
        let done = r.status.is_terminal();
        let _ = accounts.handle_user_event(now, &user, UserEvent::Execution(r));
        // A finished order gets no more reports: its mapping goes, so the maps hold live
        // orders only, however long the session.
        if done {
            self.forget(&user, mine);
        }
    }

    fn forget(&mut self, user: &str, mine: ClientOrderId) {
        if let Some(vid) = self.to_venue.remove(&(user.to_owned(), mine)) {
            self.by_venue.remove(&vid);
        }
    }

    /// Orders whose venue id is still mapped (live at the venue, as far as tape knows).
    #[cfg(test)]
    pub(super) fn tracked(&self) -> usize {
        self.by_venue.len()
    }
}

fn symbol(j: &mut JsonBuf, id: InstrumentId, registry: &Registry) -> Result<(), String> {
    if id.0 as usize >= registry.len() {
        return Err("unknown instrument".into());
    }
    j.string(&registry.get(id).symbol);
    Ok(())
}

fn render_place(
    j: &mut JsonBuf,
    n: u64,
    o: &NewOrder,
    vid: ClientOrderId,
    registry: &Registry,
) -> Result<(), String> {
    let kind = match o.order_type {
        OrderType::Market => "MARKET",
        OrderType::Limit => "LIMIT",
        other => return Err(format!("order type {} cannot be sent", other.as_str())),
    };
    if o.instrument.0 as usize >= registry.len() {
        return Err("unknown instrument".into());
    }
    let inst = registry.get(o.instrument);
    j.clear();
    j.raw("{\"id\":");
    j.u64(n);
    j.raw(",\"method\":\"order.place\",\"params\":{\"symbol\":");
    j.string(&inst.symbol);
    j.raw(",\"side\":\"");
    j.raw(&o.side.as_str().to_ascii_uppercase());
    j.raw("\",\"type\":\"");
    j.raw(kind);
    j.raw("\",\"quantity\":");
    j.fixed(o.qty.0, inst.qty_scale);
    if o.order_type == OrderType::Limit {
        j.raw(",\"price\":");
        j.fixed(o.price.0, inst.price_scale);
        j.raw(",\"timeInForce\":\"");
        j.raw(&o.time_in_force.as_str().to_ascii_uppercase());
        j.raw("\"");
    }
    if o.reduce_only && inst.market.is_futures() {
        j.raw(",\"reduceOnly\":\"true\"");
    }
    j.raw(",\"newClientOrderId\":");
    j.string(vid.as_str());
    j.raw("}}");
    Ok(())
}

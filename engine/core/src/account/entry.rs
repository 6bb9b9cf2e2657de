//! Order entry for an [`Account`]: place (plain, bracket, OCO, trailing), cancel, and the
//! gateway hand-off (the paper venue answers at once; an external gateway gets commands).

use super::*;

impl Account {
    fn new_order(&mut self, r: &OrderRequest) -> Result<NewOrder, Reject> {
        let id = match r.client_order_id {
            Some(c) if c.as_str().starts_with(GENERATED_ID_PREFIX) => {
                return Err(Reject::ReservedId(c))
            }
            Some(c) => c,
            None => {
                let c =
                    ClientOrderId::generated(&format!("{GENERATED_ID_PREFIX}o{}", self.next_order));
                self.next_order = self.next_order.saturating_add(1); // an id counter: 2^64 orders never happen
                c
            }
        };
        let o = NewOrder {
            client_order_id: id,
            instrument: r.instrument,
            side: r.side,
            order_type: r.order_type,
            time_in_force: r.time_in_force,
            qty: r.qty,
            price: r.price,
            stop_price: r.stop_price,
            reduce_only: r.reduce_only,
        };
        self.orders.check_new(&o)?;
        Ok(o)
    }

    /// Refuses an order whose implied values do not fit their types, with or without risk
    /// limits: the resulting position (`i64` quantity), the notional at its price (or, for a
    /// market-priced order, at the touch it would take, else the last trade) in [`Money`],
    /// and the paper venue's fee on that notional. Refusing here (error 4020) is the rule:
    /// an order accepted with a value that wraps or saturates later is worse than none.
    /// `prices` are every price the order may be sent at (bracket children, OCO legs).
    fn check_fits(
        &self,
        info: &InstrumentInfo,
        side: OrderSide,
        qty: Qty,
        prices: &[Option<Price>],
    ) -> Result<(), Reject> {
        let position = self.positions.get(&info.id).map_or(0, |p| p.qty.0);
        let signed = match side {
            OrderSide::Buy => Some(qty.0),
            OrderSide::Sell => qty.0.checked_neg(),
        };
        signed
            .and_then(|d| position.checked_add(d))
            .ok_or(money::overflow("resulting position quantity"))?;
        let q = self.quotes.get(&info.id).copied().unwrap_or_default();
        let reference = match side {
            OrderSide::Buy => q.ask,
            OrderSide::Sell => q.bid,
        }
        .or(q.last);
        for price in prices {
            let Some(p) = price.or(reference) else {
                continue;
            };
            let n = money::notional(p, qty, info.price_scale, info.qty_scale)
                .map_err(|_| money::overflow("order notional"))?;
            if let Some(paper) = &self.paper {
                let c = paper.config();
                for bps in [c.maker_fee_bps, c.taker_fee_bps] {
                    money::apply_bps(n, bps).map_err(|_| money::overflow("order fee"))?;
                }
            }
        }
        Ok(())
    }

    /// Pre-trade risk for an order-like request; a refusal is also emitted as an alert.
    fn risk_check(
        &mut self,
        now: Nanos,
        info: &InstrumentInfo,
        side: OrderSide,
        qty: Qty,
        price: Option<Price>,
        reduce_only: bool,
    ) -> Result<(), Reject> {
        let q = self.quotes.get(&info.id).copied().unwrap_or_default();
        let reference = match side {
            OrderSide::Buy => q.ask,
            OrderSide::Sell => q.bid,
        };
        let order = RiskOrder {
            instrument: info.id,
            side,
            qty,
            price: price.or(reference).or(q.last),
            reduce_only,
            price_scale: info.price_scale,
            qty_scale: info.qty_scale,
        };
        let ctx = RiskContext {
            open_orders: self.orders.open_count(),
            position: self.positions.get(&info.id).map_or(Qty::ZERO, |p| p.qty),
            drawdown: self.portfolio.drawdown,
        };
        self.risk.check(&order, &ctx, now).map_err(|e| {
            self.events.push_back(AccountEvent::Risk(e.0.clone()));
            Reject::Risk(e)
        })
    }

    /// Places an order: risk check, record as pending, send.
    ///
    /// # Errors
    /// A [`Reject`]; nothing was recorded or sent.
    pub fn place(&mut self, now: Nanos, r: OrderRequest) -> Result<ClientOrderId, Reject> {
        let info = self
            .info(r.instrument)
            .ok_or(Reject::UnknownInstrument(r.instrument))?;
        let o = self.new_order(&r)?;
        let limit = o.order_type.has_limit_price().then_some(o.price);
        let stop = o.order_type.has_stop_price().then_some(o.stop_price);
        self.check_fits(&info, o.side, o.qty, &[limit, stop.or(limit)])?;
        self.risk_check(now, &info, o.side, o.qty, limit, o.reduce_only)?;
        self.submit(now, o)?;
        Ok(o.client_order_id)
    }

    /// Places a bracket: the entry as [`Account::place`], then take-profit and stop-loss
    /// children armed on its fills.
    ///
    /// # Errors
    /// A [`Reject`]; nothing was recorded or sent.
    pub fn place_bracket(
        &mut self,
        now: Nanos,
        entry: OrderRequest,
        bracket: BracketRequest,
    ) -> Result<(ClientOrderId, AdvancedId), Reject> {
        let info = self
            .info(entry.instrument)
            .ok_or(Reject::UnknownInstrument(entry.instrument))?;
        let o = self.new_order(&entry)?;
        self.triggers.check_bracket(&o, &bracket)?;
        let limit = o.order_type.has_limit_price().then_some(o.price);
        // The children are sized to the entry's fills, up to its quantity.
        let children = [Some(bracket.take_profit), Some(bracket.stop_loss)];
        self.check_fits(&info, o.side, o.qty, &[limit])?;
        self.check_fits(&info, o.side.opposite(), o.qty, &children)?;
        self.risk_check(now, &info, o.side, o.qty, limit, o.reduce_only)?;
        let mut out = std::mem::take(&mut self.trig_out);
        let id = self.triggers.add_bracket(&o, &bracket, &mut out);
        self.trig_out = out;
        let id = id?;
        self.submit(now, o)?;
        self.drain_triggers(now);
        Ok((o.client_order_id, id))
    }

    /// Places an OCO (risk-checked as one order of its quantity at its first leg's price).
    ///
    /// # Errors
    /// A [`Reject`]; nothing was recorded or sent.
    pub fn place_oco(&mut self, now: Nanos, r: OcoRequest) -> Result<AdvancedId, Reject> {
        let info = self
            .info(r.instrument)
            .ok_or(Reject::UnknownInstrument(r.instrument))?;
        let price = match r.legs[0] {
            Leg::Limit { price } => price,
            Leg::Trigger { trigger, .. } => trigger,
        };
        let mut prices = [None; 4];
        for (i, leg) in r.legs.iter().enumerate() {
            let (a, b) = match *leg {
                Leg::Limit { price } => (price, price),
                Leg::Trigger { trigger, limit, .. } => (trigger, limit.unwrap_or(trigger)),
            };
            prices[2 * i] = Some(a);
            prices[2 * i + 1] = Some(b);
        }
        self.check_fits(&info, r.side, r.qty, &prices)?;
        self.risk_check(now, &info, r.side, r.qty, Some(price), r.reduce_only)?;
        let mut out = std::mem::take(&mut self.trig_out);
        let id = self.triggers.add_oco(&r, &mut out);
        self.trig_out = out;
        let id = id?;
        self.drain_triggers(now);
        Ok(id)
    }

    /// Places a trailing stop (risk-checked as one order of its quantity).
    ///
    /// # Errors
    /// A [`Reject`]; nothing was recorded.
    pub fn place_trailing(&mut self, now: Nanos, r: TrailingRequest) -> Result<AdvancedId, Reject> {
        let info = self
            .info(r.instrument)
            .ok_or(Reject::UnknownInstrument(r.instrument))?;
        self.check_fits(&info, r.side, r.qty, &[None])?;
        self.risk_check(now, &info, r.side, r.qty, None, r.reduce_only)?;
        let mut out = std::mem::take(&mut self.trig_out);
        let id = self.triggers.add_trailing(&r, &mut out);
        self.trig_out = out;
        let id = id?;
        self.drain_triggers(now);
        Ok(id)
    }

    /// Requests a cancel of a live order.
    ///
    /// # Errors
    /// [`Reject::Order`] for an unknown or terminal order, or one already pending cancel.
    pub fn cancel(&mut self, now: Nanos, id: &ClientOrderId) -> Result<(), Reject> {
        self.cancel_order(now, id)?;
        self.drain_triggers(now);
        Ok(())
    }

    fn cancel_order(&mut self, now: Nanos, id: &ClientOrderId) -> Result<(), Reject> {
        let o = self.orders.request_cancel(now, id)?;
        self.emit_order(o, None);
        self.send(
            now,
            OrderCommand::Cancel {
                instrument: o.instrument,
                client_order_id: o.client_order_id,
                venue_order_id: o.venue_order_id,
            },
        );
        Ok(())
    }

    /// Cancels every advanced order, then every live order not already being cancelled
    /// (`cancel_all`). Returns how many order cancels went out.
    pub fn cancel_all(&mut self, now: Nanos) -> usize {
        for id in self.triggers.ids() {
            let _ = self.cancel_advanced(now, id);
        }
        let ids: Vec<ClientOrderId> = self
            .orders
            .live()
            .filter(|o| o.status != OrderStatus::PendingCancel)
            .map(|o| o.client_order_id)
            .collect();
        let mut n = 0;
        for id in ids {
            if self.cancel_order(now, &id).is_ok() {
                n += 1;
            }
        }
        self.drain_triggers(now);
        n
    }

    /// Cancels an advanced order (its triggers, resting legs and unfilled entry).
    ///
    /// # Errors
    /// [`Reject::Trigger`] for an unknown id.
    pub fn cancel_advanced(&mut self, now: Nanos, id: AdvancedId) -> Result<(), Reject> {
        let mut out = std::mem::take(&mut self.trig_out);
        let r = self.triggers.cancel(id, &mut out);
        self.trig_out = out;
        r?;
        self.drain_triggers(now);
        Ok(())
    }

    /// External gateway: the venue refused a cancel; the order returns to its prior state.
    ///
    /// # Errors
    /// [`Reject::Order`] when the order is not pending cancel.
    pub fn cancel_rejected(&mut self, now: Nanos, id: &ClientOrderId) -> Result<(), Reject> {
        let o = self.orders.cancel_rejected(now, id)?;
        self.emit_order(o, None);
        Ok(())
    }

    /// External gateway: an order could not be sent (or the venue refused it on the REST
    /// call); it becomes rejected.
    ///
    /// # Errors
    /// [`Reject::Order`] when the order is not pending new.
    pub fn order_rejected(&mut self, now: Nanos, id: &ClientOrderId) -> Result<(), Reject> {
        let o = self.orders.reject_pending(now, id)?;
        self.after_order(
            now,
            Applied {
                order: o,
                fill: None,
            },
        );
        self.drain_triggers(now);
        Ok(())
    }

    /// Records `o` as pending and sends it.
    fn submit(&mut self, now: Nanos, o: NewOrder) -> Result<(), Reject> {
        let info = self
            .info(o.instrument)
            .ok_or(Reject::UnknownInstrument(o.instrument))?;
        let order = self
            .orders
            .insert_pending(now, &o, info.price_scale, info.qty_scale)?;
        self.emit_order(order, None);
        self.send(now, OrderCommand::Place(o));
        Ok(())
    }

    /// Hands a command to the gateway: the paper venue answers at once, an external gateway
    /// gets a [`AccountEvent::Command`].
    fn send(&mut self, now: Nanos, cmd: OrderCommand) {
        let instrument = match cmd {
            OrderCommand::Place(o) => o.instrument,
            OrderCommand::Cancel { instrument, .. } => instrument,
        };
        let (Some(paper), Some(info)) = (self.paper.as_mut(), self.instruments.get(&instrument))
        else {
            self.events.push_back(AccountEvent::Command(cmd));
            return;
        };
        let mut out = std::mem::take(&mut self.venue_out);
        if let Err(e) = paper.submit(now, &cmd, info, &mut out) {
            if let OrderCommand::Cancel {
                client_order_id, ..
            } = cmd
            {
                if let Ok(o) = self.orders.cancel_rejected(now, &client_order_id) {
                    self.emit_order(o, None);
                }
                self.events.push_back(AccountEvent::CommandFailed {
                    client_order_id,
                    reason: e.to_string(),
                });
            }
        }
        self.apply_venue_events(now, &mut out);
        self.venue_out = out;
    }

    /// Applies events the paper venue produced, through the same path as venue user data.
    pub(super) fn apply_venue_events(&mut self, now: Nanos, out: &mut Vec<UserEvent>) {
        for ev in out.drain(..) {
            // A paper report the order table refuses would be a paper-venue bug; surface it.
            let r = self.apply_user_event(now, ev);
            self.count_overflow(now, &r);
            if let Err(e) = r {
                if let AccountError::Order(oe) = &e {
                    let id = match oe {
                        OrderError::InvalidTransition {
                            client_order_id, ..
                        }
                        | OrderError::Overfill {
                            client_order_id, ..
                        }
                        | OrderError::UnknownOrder {
                            client_order_id, ..
                        } => Some(*client_order_id),
                        _ => None,
                    };
                    if let Some(client_order_id) = id {
                        self.events.push_back(AccountEvent::CommandFailed {
                            client_order_id,
                            reason: e.to_string(),
                        });
                    }
                }
            }
        }
    }

    /// Processes trigger outputs until none are left (placing a child can itself produce
    /// outputs when the paper venue fills it at once).
    pub(super) fn drain_triggers(&mut self, now: Nanos) {
        let mut guard = 0;
        while !self.trig_out.is_empty() && guard < 1_000 {
            guard += 1;
            let batch = std::mem::take(&mut self.trig_out);
            for t in &batch {
                match *t {
                    TriggerOutput::Advanced(u) => self.events.push_back(AccountEvent::Advanced(u)),
                    TriggerOutput::Trailing(u) => self.events.push_back(AccountEvent::Trailing(u)),
                    TriggerOutput::Overflow(id, e) => {
                        let what = format!("trailing stop {id} update withheld");
                        self.report_overflow(now, None, &what, e);
                    }
                    TriggerOutput::Command(OrderCommand::Place(o)) => {
                        if let Err(e) = self.submit(now, o) {
                            self.events.push_back(AccountEvent::CommandFailed {
                                client_order_id: o.client_order_id,
                                reason: e.to_string(),
                            });
                        }
                    }
                    TriggerOutput::Command(OrderCommand::Cancel {
                        client_order_id, ..
                    }) => {
                        let live = self
                            .orders
                            .get(&client_order_id)
                            .is_some_and(|o| o.is_live());
                        if live {
                            if let Err(e) = self.cancel_order(now, &client_order_id) {
                                self.events.push_back(AccountEvent::CommandFailed {
                                    client_order_id,
                                    reason: e.to_string(),
                                });
                            }
                        }
                    }
                }
            }
            let mut batch = batch;
            batch.clear();
            if self.trig_out.is_empty() {
                self.trig_out = batch;
            }
        }
    }
}

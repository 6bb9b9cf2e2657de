//! [`Accounts`]: many users' [`Account`]s keyed by user id, for a hub.
//!
//! A hub routes each user's venue user-data frames with [`Accounts::handle_user_data`] (it
//! knows which user a user-data connection belongs to), forwards market events to every
//! account with [`Accounts::handle_market`] / [`Accounts::handle_book`], places and cancels
//! on behalf of a user, and drains [`Accounts::poll_event`], which yields each event with its
//! user id: users in id order, each user's events oldest first.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use super::event::UserEvent;
use super::instruments::InstrumentInfo;
use super::userdata::{UserDataDecoder, UserDataError};
use super::{
    Account, AccountConfig, AccountError, AccountEvent, ClientOrderId, OrderRequest, Reject,
};
use crate::book::OrderBook;
use crate::input::Nanos;
use crate::instrument::{InstrumentId, Market, Registry};
use crate::msg::Level;

/// Longest user id.
pub const MAX_USER_ID: usize = 64;

/// Default cap on the number of users.
pub const DEFAULT_MAX_USERS: usize = 10_000;

/// A user id: 1 to 64 bytes of `[A-Za-z0-9._:@-]`; cheap to clone into every event.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(Arc<str>);

impl UserId {
    /// Validates `s`.
    ///
    /// # Errors
    /// [`AccountsError::InvalidUser`].
    pub fn new(s: &str) -> Result<UserId, AccountsError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_USER_ID
            && s.bytes().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'@' | b'-')
            });
        if ok {
            Ok(UserId(Arc::from(s)))
        } else {
            Err(AccountsError::InvalidUser(
                s.chars().take(MAX_USER_ID).collect(),
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// A user id orders, hashes and compares exactly as its text (`Arc<str>` does), so maps keyed
// by it can be searched with a `&str`: no id (and no allocation) is built for a lookup.
impl std::borrow::Borrow<str> for UserId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({:?})", &*self.0)
    }
}

/// Why an [`Accounts`] call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountsError {
    /// Not a valid user id.
    #[error("invalid user id {0:?}")]
    InvalidUser(String),
    /// No such user.
    #[error("unknown user {0}")]
    UnknownUser(UserId),
    /// The user already exists.
    #[error("user {0} already exists")]
    DuplicateUser(UserId),
    /// Too many users.
    #[error("too many users ({0})")]
    Full(usize),
    /// The account refused a request.
    #[error("user {0}: {1}")]
    Reject(UserId, Reject),
    /// The account refused a user-data event.
    #[error("user {0}: {1}")]
    Account(UserId, AccountError),
    /// A user-data frame did not decode.
    #[error("user {0}: {1}")]
    Decode(UserId, UserDataError),
}

/// The accounts of many users.
#[derive(Debug)]
pub struct Accounts {
    users: BTreeMap<UserId, Account>,
    instruments: BTreeMap<InstrumentId, InstrumentInfo>,
    /// Users that may have events waiting.
    dirty: BTreeSet<UserId>,
    decoder: UserDataDecoder,
    max_users: usize,
}

impl Default for Accounts {
    fn default() -> Self {
        Accounts::new(DEFAULT_MAX_USERS)
    }
}

impl Accounts {
    /// No users yet; at most `max_users`.
    pub fn new(max_users: usize) -> Self {
        Accounts {
            users: BTreeMap::new(),
            instruments: BTreeMap::new(),
            dirty: BTreeSet::new(),
            decoder: UserDataDecoder::new(),
            max_users,
        }
    }

    /// Makes an instrument known to every account, present and future.
    ///
    /// # Errors
    /// [`Reject::InvalidInstrument`] for a scale above 18.
    pub fn add_instrument(&mut self, info: InstrumentInfo) -> Result<(), Reject> {
        if info.price_scale > crate::fixed::MAX_SCALE || info.qty_scale > crate::fixed::MAX_SCALE {
            return Err(Reject::InvalidInstrument(info.id));
        }
        self.instruments.insert(info.id, info);
        for a in self.users.values_mut() {
            a.add_instrument(info)?;
        }
        Ok(())
    }

    /// Adds a user with its own configuration; returns its id.
    ///
    /// # Errors
    /// Invalid or duplicate id, or too many users.
    pub fn add_user(&mut self, user: &str, config: AccountConfig) -> Result<UserId, AccountsError> {
        let id = UserId::new(user)?;
        if self.users.contains_key(&id) {
            return Err(AccountsError::DuplicateUser(id));
        }
        if self.users.len() >= self.max_users {
            return Err(AccountsError::Full(self.max_users));
        }
        let mut a = Account::new(config);
        for info in self.instruments.values() {
            // Validated when added to `self.instruments`.
            let _ = a.add_instrument(*info);
        }
        self.users.insert(id.clone(), a);
        Ok(id)
    }

    /// Removes a user and its pending events.
    pub fn remove_user(&mut self, user: &str) -> Option<Account> {
        let id = UserId::new(user).ok()?;
        self.dirty.remove(&id);
        self.users.remove(&id)
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True with no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// A user's account (a lookup by text: it allocates nothing, so the shared-memory
    /// publisher can read accounts on the engine thread after every input).
    pub fn user(&self, user: &str) -> Option<&Account> {
        self.users.get(user)
    }

    /// A user's account, mutably (its events are still collected by `poll_event`).
    pub fn user_mut(&mut self, user: &str) -> Option<&mut Account> {
        let id = UserId::new(user).ok()?;
        let a = self.users.get_mut(&id)?;
        self.dirty.insert(id);
        Some(a)
    }

    fn get(&mut self, user: &str) -> Result<(UserId, &mut Account), AccountsError> {
        let id = UserId::new(user)?;
        let Some(a) = self.users.get_mut(&id) else {
            return Err(AccountsError::UnknownUser(id));
        };
        self.dirty.insert(id.clone());
        Ok((id, a))
    }

    /// Places an order for `user`.
    ///
    /// # Errors
    /// Unknown user, or the account's [`Reject`].
    pub fn place(
        &mut self,
        now: Nanos,
        user: &str,
        r: OrderRequest,
    ) -> Result<ClientOrderId, AccountsError> {
        let (id, a) = self.get(user)?;
        a.place(now, r).map_err(|e| AccountsError::Reject(id, e))
    }

    /// Cancels an order of `user`.
    ///
    /// # Errors
    /// Unknown user, or the account's [`Reject`].
    pub fn cancel(
        &mut self,
        now: Nanos,
        user: &str,
        order: &ClientOrderId,
    ) -> Result<(), AccountsError> {
        let (id, a) = self.get(user)?;
        a.cancel(now, order)
            .map_err(|e| AccountsError::Reject(id, e))
    }

    /// Applies a decoded user-data event to `user`'s account.
    ///
    /// # Errors
    /// Unknown user, or the account's [`AccountError`].
    pub fn handle_user_event(
        &mut self,
        now: Nanos,
        user: &str,
        ev: UserEvent,
    ) -> Result<(), AccountsError> {
        let (id, a) = self.get(user)?;
        a.handle_user_event(now, ev)
            .map_err(|e| AccountsError::Account(id, e))
    }

    /// Decodes one user-data frame from `user`'s stream and applies it.
    ///
    /// # Errors
    /// Unknown user, a decode error, or the account's [`AccountError`].
    pub fn handle_user_data(
        &mut self,
        now: Nanos,
        user: &str,
        frame: &[u8],
        futures_market: Market,
        registry: &Registry,
    ) -> Result<(), AccountsError> {
        let id = UserId::new(user)?;
        if !self.users.contains_key(&id) {
            return Err(AccountsError::UnknownUser(id));
        }
        let ev = self
            .decoder
            .decode(frame, futures_market, registry)
            .map_err(|e| AccountsError::Decode(id.clone(), e))?;
        self.handle_user_event(now, user, ev)
    }

    /// Passes a market event to every account (see [`Account::handle_market`]).
    pub fn handle_market(
        &mut self,
        now: Nanos,
        instrument: InstrumentId,
        best_bid: Option<Level>,
        best_ask: Option<Level>,
        last_trade: Option<Level>,
    ) {
        for (id, a) in &mut self.users {
            a.handle_market(now, instrument, best_bid, best_ask, last_trade);
            if a.pending_events() > 0 {
                self.dirty.insert(id.clone());
            }
        }
    }

    /// Passes a book to every account (see [`Account::handle_book`]).
    pub fn handle_book(
        &mut self,
        now: Nanos,
        instrument: InstrumentId,
        book: &OrderBook,
        last_trade: Option<Level>,
    ) {
        for (id, a) in &mut self.users {
            a.handle_book(now, instrument, book, last_trade);
            if a.pending_events() > 0 {
                self.dirty.insert(id.clone());
            }
        }
    }

    /// The next event and its user: users in id order, each user's events oldest first.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<(UserId, AccountEvent)> {
        while let Some(id) = self.dirty.first().cloned() {
            if let Some(ev) = self.users.get_mut(&id).and_then(|a| a.poll_event()) {
                return Some((id, ev));
            }
            self.dirty.remove(&id);
        }
        None
    }
}

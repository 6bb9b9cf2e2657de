//! Futures user data through a listen key, as on Binance's USD-M and COIN-M: the WebSocket
//! API's `userDataStream.start` / `.ping` / `.stop` manage the account's one key, and
//! stream connections at `/private/ws/<key>`, `/private/ws?listenKey=<key>` (bare events)
//! or `/private/stream?listenKey=<key>` / `?streams=<key>` (`{"stream":<key>,"data":EVENT}`)
//! get the account's
//! events. A key not pinged for its validity (Binance: 60 minutes;
//! `SimConfig::listen_key_validity`) expires: its connections get a `listenKeyExpired`
//! event and are closed.

use std::collections::BTreeMap;

use tape_core::instrument::Market;
use tape_node::net::SocketId;

use super::{Client, Listener, Venue, POLICY};
use crate::sim::orders::{ApiError, Call, Outcome};

/// Close code after `listenKeyExpired` or `userDataStream.stop`.
const NORMAL: u16 = 1000;
/// Characters of a listen key (Binance's are 64 alphanumerics).
const KEY_LEN: usize = 64;
/// Most private connections one listener serves at once.
const MAX_PRIVATE: usize = 256;

/// One private stream connection.
#[derive(Debug, Clone)]
struct PrivateConn {
    key: String,
    /// `/private/ws`: bare events; else `{"stream":KEY,"data":EVENT}`.
    raw: bool,
    /// `events=A/B`: only these event types (`e`); empty: all.
    events: Vec<String>,
}

/// A listener's listen key and its private connections.
#[derive(Debug)]
pub(super) struct ListenKeys {
    validity_ns: u64,
    /// The account's key and when it expires (sim clock, ns).
    active: Option<(String, u64)>,
    /// Keys made so far (seeds the next key).
    made: u64,
    conns: BTreeMap<SocketId, PrivateConn>,
}

impl ListenKeys {
    /// The private connections this listener holds.
    pub(super) fn conn_ids(&self) -> impl Iterator<Item = &SocketId> {
        self.conns.keys()
    }

    pub(super) fn new(validity_ns: u64) -> ListenKeys {
        ListenKeys {
            validity_ns: validity_ns.max(1),
            active: None,
            made: 0,
            conns: BTreeMap::new(),
        }
    }

    /// `userDataStream.start`: the active key, its validity extended, or a new one.
    pub(super) fn start(&mut self, now: u64) -> String {
        let until = now.saturating_add(self.validity_ns);
        if let Some((key, exp)) = &mut self.active {
            *exp = until;
            return key.clone();
        }
        self.made += 1;
        let key = make_key(self.made, now);
        self.active = Some((key.clone(), until));
        key
    }

    /// `userDataStream.ping`: extends the active key.
    pub(super) fn ping(&mut self, now: u64) -> Option<String> {
        let validity = self.validity_ns;
        let (key, exp) = self.active.as_mut()?;
        *exp = now.saturating_add(validity);
        Some(key.clone())
    }

    fn is_active(&self, key: &str) -> bool {
        self.active.as_ref().is_some_and(|(k, _)| k == key)
    }
}

/// A 64-character alphanumeric key from a counter and the clock (splitmix64 steps): unique
/// per sim, not a secret.
fn make_key(n: u64, now: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ now;
    (0..KEY_LEN)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ALPHABET[(z % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

/// `(key, raw, events)` of a private stream path and query, or `None` when it names none.
fn private_route(path: &str, query: &str) -> Option<(String, bool, Vec<String>)> {
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .filter(|v| !v.is_empty())
    };
    let events: Vec<String> = param("events")
        .map(|v| {
            v.split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let (key, raw) = match path {
        "/private/ws" => (param("listenKey")?, true),
        "/private/stream" => (param("listenKey").or_else(|| param("streams"))?, false),
        p => (p.strip_prefix("/private/ws/")?, true),
    };
    let legal =
        (1..=KEY_LEN).contains(&key.len()) && key.bytes().all(|c| c.is_ascii_alphanumeric());
    legal.then(|| (key.to_owned(), raw, events))
}

/// `event` as a private connection gets it, or `None` when its `events=` filter drops it.
fn private_frame(c: &PrivateConn, event: &str) -> Option<String> {
    if !c.events.is_empty() {
        let kind = serde_json::from_str::<serde_json::Value>(event)
            .ok()
            .and_then(|v| v.get("e").and_then(|e| e.as_str().map(str::to_owned)))
            .unwrap_or_default();
        if !c.events.contains(&kind) {
            return None;
        }
    }
    Some(if c.raw {
        event.to_owned()
    } else {
        let key = serde_json::to_string(&c.key).unwrap_or_default();
        format!("{{\"stream\":{key},\"data\":{event}}}")
    })
}

/// Sends `event` to `l`'s private connections of `key` (all keys when `None`), dropping
/// the ones that are gone.
fn deliver(reg: &mio::Registry, l: &mut Listener, key: Option<&str>, event: &str) {
    let conns: Vec<(SocketId, PrivateConn)> = l
        .keys
        .conns
        .iter()
        .filter(|(_, c)| key.is_none_or(|k| k == c.key))
        .map(|(id, c)| (*id, c.clone()))
        .collect();
    for (id, c) in conns {
        if !l.clients.contains_key(&id) {
            l.keys.conns.remove(&id);
            continue;
        }
        if let Some(frame) = private_frame(&c, event) {
            l.net.send(reg, id, frame.into());
        }
    }
}

impl Venue {
    /// A stream connection at `/private/...` on listener `li`: kept as a private user-data
    /// connection when it names the active listen key of a futures listener, else closed
    /// with 1008. Returns false when `path` is no private path (the caller routes it on).
    pub(super) fn on_private_open(
        &mut self,
        li: usize,
        conn: SocketId,
        path: &str,
        query: &str,
        now: u64,
    ) -> bool {
        let market = self.listeners[li].market;
        // USD-M: the routed `/private` endpoint. COIN-M (not routed): `/ws/<listenKey>`, as
        // on Binance's dstream; a `/ws/...` path that names no active key is a stream path.
        let coinm_key = (market == Market::CoinM)
            .then(|| path.strip_prefix("/ws/"))
            .flatten()
            .filter(|k| self.listeners[li].keys.is_active(k));
        if coinm_key.is_none()
            && (market != Market::UsdM || (path != "/private" && !path.starts_with("/private/")))
        {
            return false;
        }
        let path = match coinm_key {
            Some(k) => format!("/private/ws/{k}"),
            None => path.to_owned(),
        };
        let path = path.as_str();
        let reg = self.poll.registry();
        let l = &mut self.listeners[li];
        l.keys.conns.retain(|id, _| l.clients.contains_key(id));
        if l.keys.conns.len() >= MAX_PRIVATE {
            self.stats.bad_requests += 1;
            l.net
                .close(reg, conn, POLICY, "Too many private connections");
            return true;
        }
        let route = private_route(path, query)
            .filter(|(key, _, _)| l.market.is_futures() && l.keys.is_active(key));
        let Some((key, raw, events)) = route else {
            self.stats.bad_requests += 1;
            l.net
                .close(reg, conn, POLICY, "Invalid request: invalid listenKey");
            return true;
        };
        l.clients.insert(
            conn,
            Client {
                raw,
                names: Vec::new(),
                keys: Vec::new(),
                opened_ns: now,
                touched: false,
                api: None,
                route: None,
            },
        );
        l.keys.conns.insert(conn, PrivateConn { key, raw, events });
        self.stats.clients_total += 1;
        true
    }

    /// The listener's user-data `events` to its private connections.
    pub(super) fn private_user_data(&mut self, li: usize, events: &[String]) {
        let reg = self.poll.registry();
        let l = &mut self.listeners[li];
        if l.keys.conns.is_empty() {
            return;
        }
        for ev in events {
            deliver(reg, l, None, ev);
        }
    }

    /// `userDataStream.start` / `.ping` / `.stop` on a futures API connection.
    pub(super) fn listen_key_call(
        &mut self,
        li: usize,
        _conn: SocketId,
        call: &Call,
    ) -> Result<Outcome, ApiError> {
        let now = self.now();
        let missing = || ApiError::new(-1125, "This listenKey does not exist.");
        let l = &mut self.listeners[li];
        let result = match call {
            Call::ListenKeyStart => l.keys.start(now),
            Call::ListenKeyPing => l.keys.ping(now).ok_or_else(missing)?,
            _ => {
                let (key, _) = l.keys.active.take().ok_or_else(missing)?;
                self.close_private(li, &key, "listenKey closed");
                return Ok(Outcome {
                    result: "{}".to_owned(),
                    events: Vec::new(),
                });
            }
        };
        let key = serde_json::to_string(&result).unwrap_or_default();
        Ok(Outcome {
            result: format!("{{\"listenKey\":{key}}}"),
            events: Vec::new(),
        })
    }

    /// Closes (1000) every private connection of `key` on listener `li`.
    fn close_private(&mut self, li: usize, key: &str, reason: &str) {
        let reg = self.poll.registry();
        let l = &mut self.listeners[li];
        let ids: Vec<SocketId> = l
            .keys
            .conns
            .iter()
            .filter(|(_, c)| c.key == key)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            l.keys.conns.remove(&id);
            if l.clients.remove(&id).is_some() {
                l.net.close(reg, id, NORMAL, reason);
            }
        }
    }

    /// Expires listener `li`'s key now: `{"e":"listenKeyExpired","E":..,"listenKey":..}` to
    /// its private connections, which are then closed.
    pub(super) fn expire_listen_key(&mut self, li: usize) {
        let Some((key, _)) = self.listeners[li].keys.active.take() else {
            return;
        };
        let reg = self.poll.registry();
        let l = &mut self.listeners[li];
        let event = crate::sim::orders::listen_key_expired(&key, l.clock_ms);
        deliver(reg, l, Some(&key), &event);
        self.close_private(li, &key, "listenKey expired");
    }

    /// Expires the keys whose validity ran out.
    pub(super) fn expire_listen_keys(&mut self, now: u64) {
        for li in 0..self.listeners.len() {
            if self.listeners[li]
                .keys
                .active
                .as_ref()
                .is_some_and(|(_, exp)| now >= *exp)
            {
                self.expire_listen_key(li);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_64_alphanumerics_and_start_reuses_the_active_one() {
        let mut k = ListenKeys::new(1_000);
        let a = k.start(5);
        assert_eq!(a.len(), KEY_LEN);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(k.start(10), a, "start returns the active key");
        assert_eq!(k.active.as_ref().map(|(_, e)| *e), Some(1_010));
        assert_eq!(k.ping(500).as_deref(), Some(a.as_str()));
        assert_eq!(k.active.as_ref().map(|(_, e)| *e), Some(1_500));
        k.active = None;
        assert_eq!(k.ping(600), None);
        assert_ne!(k.start(700), a, "a new key after the old one ended");
    }

    #[test]
    fn private_routes_take_the_key_from_path_or_query() {
        let key = "Ab3".to_owned();
        assert_eq!(
            private_route("/private/ws/Ab3", ""),
            Some((key.clone(), true, vec![]))
        );
        assert_eq!(
            private_route(
                "/private/ws",
                "listenKey=Ab3&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE"
            ),
            Some((
                key.clone(),
                true,
                vec!["ORDER_TRADE_UPDATE".to_owned(), "ACCOUNT_UPDATE".to_owned()]
            ))
        );
        assert_eq!(
            private_route("/private/stream", "listenKey=Ab3"),
            Some((key.clone(), false, vec![]))
        );
        assert_eq!(
            private_route("/private/stream", "streams=Ab3"),
            Some((key, false, vec![]))
        );
        for (p, q) in [
            ("/private/ws", ""),
            ("/private/stream", "listenKey="),
            ("/private/ws/a%20b", ""),
            ("/private", "listenKey=Ab3"),
        ] {
            assert_eq!(private_route(p, q), None, "{p}?{q}");
        }
        let long = format!("/private/ws/{}", "a".repeat(KEY_LEN + 1));
        assert_eq!(private_route(&long, ""), None);
    }

    #[test]
    fn frames_are_bare_or_wrapped_and_filtered_by_event_type() {
        let ev = r#"{"e":"ORDER_TRADE_UPDATE","E":1}"#;
        let mut c = PrivateConn {
            key: "K".into(),
            raw: true,
            events: vec![],
        };
        assert_eq!(private_frame(&c, ev).as_deref(), Some(ev));
        c.raw = false;
        assert_eq!(
            private_frame(&c, ev).as_deref(),
            Some(r#"{"stream":"K","data":{"e":"ORDER_TRADE_UPDATE","E":1}}"#)
        );
        c.events = vec!["ACCOUNT_UPDATE".into()];
        assert_eq!(private_frame(&c, ev), None);
    }
}

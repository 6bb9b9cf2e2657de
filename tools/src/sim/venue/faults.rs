//! Applying a [`Fault`] to the running venue.

use std::mem;

use tape_core::instrument::Market;

use super::{Client, Venue, GOING_AWAY};
use crate::sim::fault::Fault;

impl Venue {
    /// Applies a fault now (see [`Fault`] for what each does).
    pub(super) fn apply(&mut self, scope: Option<Market>, fault: Fault, now: u64) {
        self.stats.faults_applied += 1;
        if let Fault::Stall(d) = fault {
            let until = now.saturating_add(super::ns(d));
            self.stall_until = self.stall_until.max(until);
            return;
        }
        if fault == Fault::ExpireListenKey {
            for li in 0..self.listeners.len() {
                if scope.is_none_or(|m| m == self.listeners[li].market) {
                    self.expire_listen_key(li);
                }
            }
            return;
        }
        let reg = self.poll.registry();
        for l in &mut self.listeners {
            if scope.is_some_and(|m| m != l.market) {
                continue;
            }
            match fault {
                Fault::Drop => {
                    for id in mem::take(&mut l.clients).into_keys() {
                        l.net.abort(reg, id);
                    }
                }
                Fault::DropEndpoint(e) => {
                    let ids: Vec<_> = l
                        .clients
                        .iter()
                        .filter(|(_, c)| c.api.is_none() && c.route == Some(e))
                        .map(|(id, _)| *id)
                        .collect();
                    for id in ids {
                        l.clients.remove(&id);
                        l.net.abort(reg, id);
                    }
                }
                Fault::Close => {
                    for id in mem::take(&mut l.clients).into_keys() {
                        l.net.close(reg, id, GOING_AWAY, "forced disconnect");
                    }
                }
                Fault::Gap(n) => {
                    for (i, s) in self.tl.symbols.iter().enumerate() {
                        if s.market == l.market {
                            self.gap_left[i] = self.gap_left[i].saturating_add(n);
                        }
                    }
                }
                Fault::Malformed => {
                    for (id, c) in l.clients.iter().filter(|(_, c)| c.api.is_none()) {
                        for frame in malformed_frames(c) {
                            l.net.send(reg, *id, frame.into());
                        }
                    }
                }
                Fault::Truncate => l.truncate_next = true,
                Fault::RefuseSnapshot(n) => l.refuse_left = l.refuse_left.saturating_add(n),
                Fault::DropApi => {
                    let api: Vec<_> = l
                        .clients
                        .iter()
                        .filter(|(_, c)| c.api.is_some())
                        .map(|(id, _)| *id)
                        .collect();
                    for id in api {
                        l.clients.remove(&id);
                        l.net.abort(reg, id);
                    }
                }
                Fault::MuteApi(n) => l.mute_left = l.mute_left.saturating_add(n),
                Fault::Stall(_) | Fault::ExpireListenKey => {}
            }
        }
    }
}

/// The `malformed` fault's two frames for one client: invalid JSON, then well-formed JSON
/// whose fields have the wrong types.
fn malformed_frames(c: &Client) -> [String; 2] {
    let name = c.names.first().map_or("venue@malformed", String::as_str);
    let name = serde_json::to_string(name).unwrap_or_else(|_| "\"\"".to_owned());
    let broken = r#"{"e":"depthUpdate","E":17231612"#;
    let mistyped = r#"{"e":"depthUpdate","E":"soon","s":42,"U":"one","u":-1,"pu":null,"b":{"p":1},"a":"none"}"#;
    if c.raw {
        [broken.to_owned(), mistyped.to_owned()]
    } else {
        [
            format!(r#"{{"stream":{name},"data":{broken}"#),
            format!(r#"{{"stream":{name},"data":{mistyped}}}"#),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_frames_are_invalid_then_mistyped() {
        let c = Client {
            raw: false,
            names: vec!["btcusdt@depth".into()],
            keys: vec![],
            route: None,
            opened_ns: 0,
            touched: false,
            api: None,
        };
        let [broken, mistyped] = malformed_frames(&c);
        assert!(serde_json::from_str::<serde_json::Value>(&broken).is_err());
        let v: serde_json::Value = serde_json::from_str(&mistyped).unwrap();
        assert_eq!(v["stream"], "btcusdt@depth");
        assert!(v["data"]["E"].is_string());
    }
}

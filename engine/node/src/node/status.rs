//! `/status` (JSON), `/metrics` (Prometheus text) and the console status line.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use super::{LoopStats, Node};
use tape_core::metrics::{LatencyStage, PERCENTILES, PERCENTILE_NAMES};
use tape_core::server::HubStats;

/// Per-second rates over the last sampling window (about a second).
#[derive(Debug, Clone, Default)]
pub(super) struct Rates {
    window_start: u64,
    prev: (u64, u64, u64),
    /// (client messages in, messages out, feed records) per second.
    pub per_sec: (u64, u64, u64),
}

const RATE_WINDOW_NS: u64 = 1_000_000_000;

impl Rates {
    /// True when a new window should be sampled; checked before building [`HubStats`], which
    /// walks every connection and so must not run on every timer tick.
    pub(super) fn due(&self, now: u64) -> bool {
        self.window_start == 0 || now.saturating_sub(self.window_start) >= RATE_WINDOW_NS
    }

    pub(super) fn sample(&mut self, now: u64, hub: &HubStats, lp: &LoopStats) {
        let cur = (hub.requests, lp.sent, lp.records);
        if self.window_start == 0 {
            self.window_start = now;
            self.prev = cur;
            return;
        }
        let dt = now.saturating_sub(self.window_start);
        if dt < RATE_WINDOW_NS {
            return;
        }
        let rate = |a: u64, b: u64| (a.saturating_sub(b)).saturating_mul(1_000_000_000) / dt;
        self.per_sec = (
            rate(cur.0, self.prev.0),
            rate(cur.1, self.prev.1),
            rate(cur.2, self.prev.2),
        );
        self.window_start = now;
        self.prev = cur;
    }
}

/// What the console prints every few seconds.
#[derive(Debug, Clone)]
pub struct StatusLine {
    /// Seconds since start.
    pub uptime_s: u64,
    /// Open client connections.
    pub connections: usize,
    /// Books in sync / books.
    pub books_synced: (usize, usize),
    /// Feed records per second.
    pub records_per_sec: u64,
    /// Messages written per second.
    pub sent_per_sec: u64,
    /// Tick-to-wire p50 and p99, ns.
    pub tick_to_wire_ns: (u64, u64),
    /// Trades dropped and conflations for slow clients, so far.
    pub drops: (u64, u64),
    /// Why the journal cannot be written, while it cannot (inputs are skipped meanwhile).
    pub journal_degraded: Option<String>,
}

impl std::fmt::Display for StatusLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "up {}s  clients {}  books {}/{} synced  in {}/s  out {}/s  tick-to-wire p50 {:.1}us p99 {:.1}us  dropped {} conflated {}",
            self.uptime_s,
            self.connections,
            self.books_synced.0,
            self.books_synced.1,
            self.records_per_sec,
            self.sent_per_sec,
            self.tick_to_wire_ns.0 as f64 / 1e3,
            self.tick_to_wire_ns.1 as f64 / 1e3,
            self.drops.0,
            self.drops.1
        )?;
        if let Some(why) = &self.journal_degraded {
            write!(f, "  JOURNAL DEGRADED (no input applied): {why}")?;
        }
        Ok(())
    }
}

impl Node {
    /// `/status`'s `connections_per_user`: authenticated users by name, the rest `anonymous`.
    fn connections_per_user(&self, open: usize) -> Value {
        let mut m = Map::new();
        let mut named = 0;
        for (user, n) in self.pipe.hub.connections_per_user() {
            named += n;
            m.insert(user.to_owned(), json!(n));
        }
        // A user may be called "anonymous": the unauthenticated count then yields the name.
        let key = if m.contains_key("anonymous") {
            "(anonymous)"
        } else {
            "anonymous"
        };
        m.insert(key.into(), json!(open.saturating_sub(named)));
        Value::Object(m)
    }

    /// `/status`'s `journal`: whether inputs are journaled, and a fault while there is one.
    fn journal_json(&self) -> Value {
        let Some(j) = &self.pipe.journal else {
            return json!({"state": "off"});
        };
        let mut m = json!({
            "state": "ok",
            "dir": j.dir().display().to_string(),
            "next_seq": j.next_seq(),
        });
        if let Some(f) = &self.pipe.fault {
            m["state"] = json!("degraded");
            m["reason"] = json!(f.reason);
            m["since_ns"] = json!(f.since_ns);
            m["skipped_inputs"] = json!(f.skipped);
        }
        m
    }

    pub(super) fn status_line(&self, now: u64) -> StatusLine {
        let hub = self.pipe.hub.stats();
        let t2w = self.pipe.latency.summary(LatencyStage::TickToWire);
        let books: Vec<_> = self.pipe.engine.books().collect();
        StatusLine {
            uptime_s: now.saturating_sub(self.started_ns) / 1_000_000_000,
            connections: hub.connections,
            books_synced: (books.iter().filter(|b| b.is_synced()).count(), books.len()),
            records_per_sec: self.rates.per_sec.2,
            sent_per_sec: self.rates.per_sec.1,
            tick_to_wire_ns: (t2w.ns[0], t2w.ns[2]),
            drops: (hub.trades_dropped, hub.conflated),
            journal_degraded: self.pipe.fault.as_ref().map(|f| f.reason.clone()),
        }
    }

    /// The `/status` document.
    pub fn status_json(&self, now: u64) -> String {
        let hub = self.pipe.hub.stats();
        let net = self
            .pipe
            .net
            .as_ref()
            .map(|n| n.stats().clone())
            .unwrap_or_default();
        let mut latency = Map::new();
        for stage in LatencyStage::ALL {
            let s = self.pipe.latency.summary(stage);
            let mut m = Map::new();
            m.insert("count".into(), json!(s.count));
            for (name, v) in PERCENTILE_NAMES.iter().zip(s.ns) {
                m.insert(format!("{name}_ns"), json!(v));
            }
            latency.insert(stage.as_str().into(), Value::Object(m));
        }
        let errors: Map<String, Value> = hub
            .errors
            .iter()
            .map(|(code, n)| (code.to_string(), json!(n)))
            .collect();
        let clients: Vec<Value> = hub
            .per_connection
            .iter()
            .map(|c| {
                json!({
                    "conn": c.conn.0,
                    "subscriptions": c.subscriptions,
                    "queued": c.queued,
                    "behind": c.behind,
                    "trades_dropped": c.counters.trades_dropped,
                    "conflated": c.counters.conflated,
                    "delivered": c.counters.delivered,
                })
            })
            .collect();
        let reg = self.pipe.engine.registry();
        let books: Vec<Value> = self
            .pipe
            .engine
            .books()
            .map(|b| {
                let i = reg.get(b.instrument());
                let st = b.stats();
                json!({
                    "market": i.market.as_str(),
                    "symbol": i.symbol,
                    "state": format!("{:?}", b.state()),
                    "last_update_id": b.last_update_id(),
                    "gaps": st.gaps,
                    "resyncs": st.resyncs,
                    "crossed": st.crossed,
                    "snapshots_loaded": st.snapshots_loaded,
                    "stale_snapshots": st.stale_snapshots,
                })
            })
            .collect();
        let engine_errors: Map<String, Value> = self
            .pipe
            .engine
            .stats()
            .errors
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        let doc = json!({
            "uptime_s": now.saturating_sub(self.started_ns) / 1_000_000_000,
            "connections": hub.connections,
            "connections_per_user": self.connections_per_user(hub.connections),
            "subscriptions": hub.subscriptions,
            "messages": {
                "in_per_sec": self.rates.per_sec.0,
                "out_per_sec": self.rates.per_sec.1,
                "in_total": hub.requests,
                "out_total": self.pipe.stats.sent,
                "published_total": hub.published,
            },
            "slow_clients": {
                "trades_dropped": hub.trades_dropped,
                "conflated": hub.conflated,
                "disconnected_slow": hub.disconnects.slow,
                "disconnected_heartbeat": hub.disconnects.heartbeat,
                "disconnected_errors": hub.disconnects.too_many_errors,
                "refused_too_many_connections": hub.disconnects.too_many_connections,
            },
            "resume": {
                "resumed": hub.resumes.resumed,
                "fresh": hub.resumes.fresh,
                "replayed": hub.resumes.replayed,
            },
            "replay": self.replays.as_ref().map(|r| {
                let s = r.stats();
                serde_json::json!({
                    "active": s.active,
                    "started": s.started,
                    "refused_busy": s.refused_busy,
                    "journal_errors": s.journal_errors,
                })
            }),
            "errors_by_code": errors,
            "latency_ns": latency,
            "feed": {
                "records": self.pipe.stats.records,
                "records_per_sec": self.rates.per_sec.2,
                "passes": self.feed.passes(),
                "record_errors": self.pipe.stats.record_errors,
                "engine_errors": engine_errors,
                "bbo_oracle_checks": self.pipe.engine.stats().bbo_checks,
                "bbo_oracle_mismatches": self.pipe.engine.stats().bbo_mismatches,
                "digest": format!("{:016x}", self.pipe.engine.digest().value()),
            },
            "books": books,
            "journal": self.journal_json(),
            "nats": self.feed.nats_json().or_else(|| self.pipe.nats.as_ref().map(crate::nats::Publisher::status_json)),
            "venues": self.venues_json(now),
            "desk": self.desk_json(),
            "net": {
                "accepted": net.accepted,
                "rejected_over_cap": net.rejected_over_cap,
                "rejected_per_ip": net.rejected_per_ip,
                "partial_bytes": net.partial_bytes,
                "partial_budget_closed": net.partial_budget_closed,
                "handshakes_evicted": net.handshakes_evicted,
                "first_byte_timeouts": net.first_byte_timeouts,
                "timeouts": net.timeouts,
                "http_requests": net.http_requests,
                "upgrades": net.upgrades,
                "handshake_failures": net.handshake_failures,
                "protocol_errors": net.protocol_errors,
                "tls_errors": net.tls_errors,
                "io_errors": net.io_errors,
                "bytes_in": net.bytes_in,
                "bytes_out": net.bytes_out,
            },
            "clients": clients,
        });
        let mut s = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into());
        s.push('\n');
        s
    }

    /// The trading desk and the private sessions, when configured.
    fn desk_json(&self) -> Value {
        let Some(d) = self.pipe.engine.desk() else {
            return Value::Null;
        };
        let st = d.stats();
        let p = self.pipe.hub.private_stats();
        let gateway = match d.gateway_stats() {
            None => Value::Null,
            Some(g) => {
                let io = self.feed.gateway_io();
                json!({
                    "requests": g.requests,
                    "rejected": g.rejected,
                    "reports": g.reports,
                    "unattributed": g.unattributed,
                    "bad_frames": g.bad_frames,
                    "url": io.as_ref().map(|i| i.url.clone()),
                    "connected": io.as_ref().map(|i| i.connected),
                    "connects": io.as_ref().map(|i| i.connects),
                    "sent": io.as_ref().map(|i| i.sent),
                    "failed": io.as_ref().map(|i| i.failed),
                    "last_down": io.as_ref().map(|i| i.last_down.clone()),
                    "signing": io.as_ref().map(|i| i.signing),
                    "logged_on": io.as_ref().map(|i| i.logged_on),
                    "ready": io.as_ref().map(|i| i.ready),
                    "clock_offset_ms": io.as_ref().and_then(|i| i.clock_offset_ms),
                    "clock_rtt_us": io.as_ref().and_then(|i| i.clock_rtt_us),
                    "listen_keys": io.as_ref().map(|i| i.listen_keys),
                    "timeouts": io.as_ref().map(|i| i.timeouts),
                    "dry_run": d.setup().dry_run,
                    "dry_run_orders": g.dry_run,
                    "reconciliations": g.reconciliations,
                    "reconciled_orders": g.reconciled_orders,
                    "rate_limited": g.rate_limited,
                    "rate_limits": d.venue_rate_limits().iter().map(|l| json!({
                        "type": l.kind.as_str(),
                        "window_ms": l.window_ms,
                        "limit": l.limit,
                        "count": l.count,
                    })).collect::<Vec<_>>(),
                })
            }
        };
        json!({
            "users": d.setup().users.len(),
            "client_records": st.records,
            "accepted": st.accepted,
            "refused": st.refused,
            "risk_alerts": st.risk_alerts,
            "published": st.published,
            "logins": p.logins,
            "auth_failures": p.auth_failures,
            "user_limit_refused": p.user_limit_refused,
            "private_delivered": p.delivered,
            "gateway": gateway,
        })
    }

    /// Venue connections: the engine's status (from the journaled link records) joined with
    /// the io figures of the live feed.
    fn venues_json(&self, now: u64) -> Vec<Value> {
        let io = self.feed.venue_io();
        self.pipe
            .engine
            .venues()
            .map(|v| {
                let mut doc = json!({
                    "name": v.name,
                    "market": v.market.as_str(),
                    "state": v.state.as_str(),
                    "reason": v.reason,
                    "since_s": now.saturating_sub(v.since_ns) / 1_000_000_000,
                    "attempts": v.attempts,
                    "connects": v.connects,
                    "disconnects": v.disconnects,
                    "backoff_ms": v.backoff_ms,
                    "books": v.books,
                    "books_synced": v.books_synced,
                });
                if let Some(x) = io.iter().find(|x| x.name == v.name) {
                    doc["endpoint"] = json!(x.endpoint.map(|e| e.as_str()));
                    doc["url"] = json!(x.url);
                    doc["frames"] = json!(x.frames);
                    doc["bytes"] = json!(x.bytes);
                    doc["next_attempt_in_ms"] =
                        json!(x.next_attempt_ns.map(|t| t.saturating_sub(now) / 1_000_000));
                    doc["snapshots_ok"] = json!(x.snapshots_ok);
                    doc["snapshots_failed"] = json!(x.snapshots_failed);
                    doc["last_snapshot_error"] = json!(x.last_snapshot_error);
                }
                doc
            })
            .collect()
    }

    /// The `/metrics` document (Prometheus text exposition format 0.0.4).
    pub fn metrics_text(&self, now: u64) -> String {
        let hub = self.pipe.hub.stats();
        let net = self
            .pipe
            .net
            .as_ref()
            .map(|n| n.stats().clone())
            .unwrap_or_default();
        let mut m = String::with_capacity(4096);
        let mut gauge = |name: &str, help: &str, kind: &str, lines: &[(String, u64)]| {
            let _ = writeln!(m, "# HELP {name} {help}");
            let _ = writeln!(m, "# TYPE {name} {kind}");
            for (labels, v) in lines {
                let _ = writeln!(m, "{name}{labels} {v}");
            }
        };
        gauge(
            "tape_uptime_seconds",
            "Seconds since the engine started.",
            "gauge",
            &[(
                String::new(),
                now.saturating_sub(self.started_ns) / 1_000_000_000,
            )],
        );
        gauge(
            "tape_connections",
            "Open client WebSocket connections.",
            "gauge",
            &[(String::new(), hub.connections as u64)],
        );
        let subs: Vec<_> = hub
            .subscriptions
            .iter()
            .map(|(c, n)| (format!("{{channel=\"{c}\"}}"), *n as u64))
            .collect();
        gauge(
            "tape_subscriptions",
            "Subscriptions per channel.",
            "gauge",
            &subs,
        );
        gauge(
            "tape_client_requests_total",
            "Client requests received.",
            "counter",
            &[(String::new(), hub.requests)],
        );
        gauge(
            "tape_messages_sent_total",
            "Messages written to client sockets.",
            "counter",
            &[(String::new(), self.pipe.stats.sent)],
        );
        gauge(
            "tape_feed_records_total",
            "Feed records handled by the engine.",
            "counter",
            &[(String::new(), self.pipe.stats.records)],
        );
        gauge(
            "tape_slow_client_events_total",
            "Slow-consumer handling: dropped trades, conflations.",
            "counter",
            &[
                ("{kind=\"trades_dropped\"}".into(), hub.trades_dropped),
                ("{kind=\"conflated\"}".into(), hub.conflated),
            ],
        );
        let r = hub.resumes;
        gauge(
            "tape_resume_streams_total",
            "Streams named in resume requests, by outcome: replayed from history, or given fresh state.",
            "counter",
            &[
                ("{outcome=\"resumed\"}".into(), r.resumed),
                ("{outcome=\"fresh\"}".into(), r.fresh),
            ],
        );
        gauge(
            "tape_resume_replayed_total",
            "Messages replayed from history by resume requests.",
            "counter",
            &[(String::new(), r.replayed)],
        );
        if let Some(rs) = self.replays.as_ref().map(crate::replay::Replays::stats) {
            gauge(
                "tape_replay_sessions",
                "Replay sessions (/replay, /replay.ndjson) running now.",
                "gauge",
                &[(String::new(), rs.active as u64)],
            );
            gauge(
                "tape_replay_sessions_total",
                "Replay sessions started, and requests refused with 503 (too many sessions).",
                "counter",
                &[
                    ("{outcome=\"started\"}".into(), rs.started),
                    ("{outcome=\"refused_busy\"}".into(), rs.refused_busy),
                ],
            );
            gauge(
                "tape_replay_journal_errors_total",
                "Replay sessions ended by a journal that could not be read.",
                "counter",
                &[(String::new(), rs.journal_errors)],
            );
        }
        let d = hub.disconnects;
        gauge(
            "tape_disconnects_total",
            "Connections closed by the server, by reason.",
            "counter",
            &[
                ("{reason=\"slow\"}".into(), d.slow),
                ("{reason=\"heartbeat\"}".into(), d.heartbeat),
                ("{reason=\"too_many_errors\"}".into(), d.too_many_errors),
                (
                    "{reason=\"too_many_connections\"}".into(),
                    d.too_many_connections,
                ),
            ],
        );
        let errs: Vec<_> = hub
            .errors
            .iter()
            .map(|(c, n)| (format!("{{code=\"{c}\"}}"), *n))
            .collect();
        gauge(
            "tape_client_errors_total",
            "Error replies by code.",
            "counter",
            &errs,
        );
        gauge(
            "tape_net_bytes_total",
            "Socket bytes.",
            "counter",
            &[
                ("{direction=\"in\"}".into(), net.bytes_in),
                ("{direction=\"out\"}".into(), net.bytes_out),
            ],
        );
        let venues: Vec<_> = self.pipe.engine.venues().collect();
        let label = |v: &tape_core::venue::VenueStatus| format!("{{venue=\"{}\"}}", v.name);
        let live: Vec<_> = venues
            .iter()
            .map(|v| {
                let up = v.state == tape_core::venue::VenueState::Live;
                (label(v), u64::from(up))
            })
            .collect();
        gauge(
            "tape_venue_live",
            "1 when the venue connection is up and every book it feeds is synced.",
            "gauge",
            &live,
        );
        let mut conns = Vec::new();
        for v in &venues {
            let name = &v.name;
            conns.push((
                format!("{{venue=\"{name}\",event=\"connect\"}}"),
                v.connects,
            ));
            conns.push((
                format!("{{venue=\"{name}\",event=\"disconnect\"}}"),
                v.disconnects,
            ));
        }
        gauge(
            "tape_venue_connections_total",
            "Venue connections established and lost.",
            "counter",
            &conns,
        );
        let _ = writeln!(m, "# HELP tape_latency_ns Stage latency in nanoseconds.");
        let _ = writeln!(m, "# TYPE tape_latency_ns summary");
        for stage in LatencyStage::ALL {
            let s = self.pipe.latency.summary(stage);
            for (p, v) in PERCENTILES.iter().zip(s.ns) {
                let q = if *p >= 100.0 {
                    "1".to_owned()
                } else {
                    format!("{}", p / 100.0)
                };
                let _ = writeln!(
                    m,
                    "tape_latency_ns{{stage=\"{}\",quantile=\"{q}\"}} {v}",
                    stage.as_str()
                );
            }
            let _ = writeln!(
                m,
                "tape_latency_ns_count{{stage=\"{}\"}} {}",
                stage.as_str(),
                s.count
            );
        }
        m
    }
}

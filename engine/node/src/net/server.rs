//! [`NetServer`]: the listener, the connection table, tokens, ids and deadlines.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::mem;
use std::net::{IpAddr, SocketAddr};

use mio::event::Event;
use mio::net::TcpListener;
use mio::{Interest, Registry, Token};
use rustls::ServerConnection;
use tungstenite::protocol::Message;
use tungstenite::Utf8Bytes;

use super::conn::{Conn, Env, Step};
use super::{NetConfig, NetEvent, NetStats, SendResult, SocketId};
use crate::transport::Transport;

/// Low bits of a [`SocketId`] name the slot, high bits its generation, so an id is never reused.
const SLOT_BITS: u32 = usize::BITS / 2;
const SLOT_MASK: usize = (1 << SLOT_BITS) - 1;

struct Slot {
    generation: usize,
    conn: Option<Box<Conn>>,
}

/// A non-blocking WebSocket + HTTP server on a caller-owned mio `Poll`.
///
/// The listener is registered under `first_token`; connections get tokens
/// `first_token + 1 ..= first_token + max_sockets` ([`NetServer::owns`] tells). Every method
/// returns at once; output that cannot be written now waits in a bounded per-connection buffer
/// and goes out on later readiness events.
pub struct NetServer {
    listener: TcpListener,
    listening: bool,
    local_addr: SocketAddr,
    cfg: NetConfig,
    first_token: usize,
    slots: Vec<Slot>,
    free: Vec<usize>,
    count: usize,
    stats: NetStats,
    /// Events raised outside `handle_event`/`tick` (e.g. a `send` that hit a dead socket),
    /// handed out at the start of the next one.
    deferred: Vec<NetEvent>,
    /// Latest `now_ns` seen; deadlines set by API calls without a clock start from it.
    now: u64,
    /// Earliest connection deadline (`u64::MAX` if none), so `tick` is O(1) until then.
    next_deadline: u64,
    /// `accept` failed with something other than `WouldBlock` (e.g. EMFILE): retry from `tick`
    /// since no new readiness edge may come.
    accept_retry: bool,
    /// Sockets in their handshake, oldest first, for eviction when the pool is full. Entries
    /// of connections that finished or died stay until skipped (or compacted): cheaper than
    /// removing from the middle.
    pool: VecDeque<SocketId>,
    /// Live connections counted in `pool` (`in_pool` set).
    pool_len: usize,
    /// Sockets in their handshake per peer address; an address with none has no entry, so
    /// the map is bounded by `max_handshaking`.
    per_ip: HashMap<IpAddr, usize>,
}

impl NetServer {
    /// Binds a listener on `addr` and registers it under `first_token`.
    ///
    /// # Errors
    /// Binding or registering the listener failed.
    pub fn bind(
        addr: SocketAddr,
        mut cfg: NetConfig,
        registry: &Registry,
        first_token: usize,
    ) -> io::Result<NetServer> {
        cfg.max_sockets = cfg.max_sockets.min(SLOT_MASK);
        if first_token.checked_add(cfg.max_sockets).is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "first_token + max_sockets overflows the token space",
            ));
        }
        let mut listener = TcpListener::bind(addr)?;
        registry.register(&mut listener, Token(first_token), Interest::READABLE)?;
        let local_addr = listener.local_addr()?;
        Ok(NetServer {
            listener,
            listening: true,
            local_addr,
            cfg,
            first_token,
            slots: Vec::new(),
            free: Vec::new(),
            count: 0,
            stats: NetStats::default(),
            deferred: Vec::new(),
            now: 0,
            next_deadline: u64::MAX,
            accept_retry: false,
            pool: VecDeque::new(),
            pool_len: 0,
            per_ip: HashMap::new(),
        })
    }

    /// The address the listener is bound to (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// True for the listener's token and every token a connection may get.
    pub fn owns(&self, token: Token) -> bool {
        token
            .0
            .checked_sub(self.first_token)
            .is_some_and(|off| off <= self.cfg.max_sockets)
    }

    /// Handles one mio event for a token this server [`owns`](Self::owns): accepts, reads,
    /// writes, and appends what happened to `out`.
    pub fn handle_event(
        &mut self,
        registry: &Registry,
        event: &Event,
        now_ns: u64,
        out: &mut Vec<NetEvent>,
    ) {
        self.now = self.now.max(now_ns);
        out.append(&mut self.deferred);
        let token = event.token();
        if token.0 == self.first_token {
            if self.listening {
                self.accept(registry, out);
            }
            return;
        }
        let Some(slot) = self.slot_of(token) else {
            return;
        };
        self.with_conn(registry, slot, Some(out), |conn, env| ((), conn.drive(env)));
    }

    /// Queues `msg` as one text frame on an open client WebSocket and tries to write it now.
    /// The payload is shared, not copied, until it is framed into the connection's buffer.
    pub fn send(&mut self, registry: &Registry, conn: SocketId, msg: Utf8Bytes) -> SendResult {
        let Some(slot) = self.slot_of_id(conn) else {
            return SendResult::Closed;
        };
        self.with_conn(registry, slot, None, |c, env| {
            c.send(Message::Text(msg), env)
        })
        .unwrap_or(SendResult::Closed)
    }

    /// Frames `msg` into `conn`'s write buffer without writing it to the socket yet; call
    /// [`NetServer::flush`] after queueing a connection's messages, so a burst costs one
    /// syscall instead of one per message. `Sent` means queued; `Refused` and `Closed` as for
    /// [`NetServer::send`].
    pub fn queue(&mut self, registry: &Registry, conn: SocketId, msg: Utf8Bytes) -> SendResult {
        let Some(slot) = self.slot_of_id(conn) else {
            return SendResult::Closed;
        };
        self.with_conn(registry, slot, None, |c, env| {
            c.queue(Message::Text(msg), env)
        })
        .unwrap_or(SendResult::Closed)
    }

    /// Writes what [`NetServer::queue`] framed for `conn`: `Sent` when all of it reached the
    /// kernel, `Buffered` when the rest waits for [`NetEvent::Writable`].
    pub fn flush(&mut self, registry: &Registry, conn: SocketId) -> SendResult {
        let Some(slot) = self.slot_of_id(conn) else {
            return SendResult::Closed;
        };
        self.with_conn(registry, slot, None, |c, env| c.flush_ws(env))
            .unwrap_or(SendResult::Closed)
    }

    /// The kernel's `SO_SNDBUF` of `conn`'s socket, bytes (Linux reports twice the value set,
    /// the rest being its bookkeeping); `None` for an unknown connection.
    pub fn socket_send_buffer(&self, conn: SocketId) -> Option<usize> {
        let c = self.conn(conn)?;
        socket2::SockRef::from(c.io.socket())
            .send_buffer_size()
            .ok()
    }

    /// True while `conn` has output waiting for the socket (a [`NetEvent::Writable`] follows
    /// when it drains).
    pub fn write_pending(&self, conn: SocketId) -> bool {
        self.conn(conn).is_some_and(|c| c.write_pending())
    }

    /// Sends a WebSocket ping on `conn` (heartbeats); skipped if its write buffer is full.
    pub fn ping(&mut self, registry: &Registry, conn: SocketId) {
        if let Some(slot) = self.slot_of_id(conn) {
            self.with_conn(registry, slot, None, |c, env| ((), c.ping(env)));
        }
    }

    /// Starts the close handshake on `conn` with `code` and `reason` (cut to 123 bytes).
    /// `Closed` follows when the peer answers, or at the closing deadline (`close_timeout_ns`
    /// after the latest `now_ns` seen). A connection still in its HTTP phase is just dropped.
    pub fn close(&mut self, registry: &Registry, conn: SocketId, code: u16, reason: &str) {
        if let Some(slot) = self.slot_of_id(conn) {
            self.with_conn(registry, slot, None, |c, env| {
                ((), c.close(code, reason, env))
            });
        }
    }

    /// Answers the request of a [`NetEvent::Http`] (HTTP/1.1, `Content-Length`,
    /// `Connection: close`; no body for `HEAD`), then closes after the flush. Ignored for a
    /// connection with no pending request.
    pub fn respond_http(
        &mut self,
        registry: &Registry,
        conn: SocketId,
        status: u16,
        content_type: &str,
        body: &[u8],
    ) {
        self.respond_http_with(registry, conn, status, content_type, &[], body);
    }

    /// [`NetServer::respond_http`] with extra response headers (e.g. `Retry-After`). Control
    /// characters are removed from names and values, so they cannot inject headers.
    pub fn respond_http_with(
        &mut self,
        registry: &Registry,
        conn: SocketId,
        status: u16,
        content_type: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) {
        let mut extra = String::new();
        for (name, value) in headers {
            let clean = |s: &str| s.chars().filter(|c| !c.is_control()).collect::<String>();
            extra.push_str(&format!("{}: {}\r\n", clean(name), clean(value)));
        }
        if let Some(slot) = self.slot_of_id(conn) {
            self.with_conn(registry, slot, None, |c, env| {
                ((), c.respond(status, content_type, &extra, body, env))
            });
        }
    }

    /// Drops `conn` at once, in any phase: no close frame, no TLS close_notify, no lingering;
    /// the peer sees the TCP connection end abruptly. A [`NetEvent::Closed`] with no code
    /// follows (from the next `handle_event`/`tick`) if the connection was open. For fault
    /// injection and for peers that must not get a goodbye.
    pub fn abort(&mut self, registry: &Registry, conn: SocketId) {
        if let Some(slot) = self.slot_of_id(conn) {
            self.with_conn(registry, slot, None, |c, env| ((), c.abort(env)));
        }
    }

    /// Drives timeouts (handshake and closing deadlines) and retries a failed `accept`. Cheap
    /// until the earliest deadline; call it once per loop iteration.
    pub fn tick(&mut self, registry: &Registry, now_ns: u64, out: &mut Vec<NetEvent>) {
        self.now = self.now.max(now_ns);
        out.append(&mut self.deferred);
        if self.accept_retry && self.listening {
            self.accept(registry, out);
        }
        if self.now < self.next_deadline {
            return;
        }
        let mut next = u64::MAX;
        for slot in 0..self.slots.len() {
            let Some(conn) = self.slots[slot].conn.as_mut() else {
                continue;
            };
            if conn.deadline == 0 {
                continue;
            }
            if conn.deadline > self.now {
                next = next.min(conn.deadline);
                continue;
            }
            let mut env = Env {
                cfg: &self.cfg,
                stats: &mut self.stats,
                out,
                now: self.now,
            };
            conn.expire(&mut env);
            self.free_slot(registry, slot);
        }
        self.next_deadline = next;
    }

    /// When bytes last arrived on WebSocket `conn` (ns, as passed in `now_ns`).
    pub fn last_heard(&self, conn: SocketId) -> Option<u64> {
        self.conn(conn).and_then(|c| c.last_heard())
    }

    /// Stops accepting, starts a 1001 close on every WebSocket and drops connections still in
    /// their HTTP phase. Keep polling (and ticking) until [`connection_count`] is 0 or a
    /// deadline of your own passes.
    ///
    /// [`connection_count`]: Self::connection_count
    pub fn shutdown(&mut self, registry: &Registry) {
        if mem::take(&mut self.listening) {
            let _ = registry.deregister(&mut self.listener);
        }
        for slot in 0..self.slots.len() {
            self.with_conn(registry, slot, None, |c, env| {
                ((), c.close(1001, "server shutting down", env))
            });
        }
    }

    /// Open sockets, in any phase (handshaking, open, closing, lingering).
    pub fn connection_count(&self) -> usize {
        self.count
    }

    /// Counters since bind.
    pub fn stats(&self) -> &NetStats {
        &self.stats
    }

    fn accept(&mut self, registry: &Registry, out: &mut Vec<NetEvent>) {
        self.accept_retry = false;
        loop {
            let (sock, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    continue
                }
                Err(_) => {
                    self.stats.accept_errors += 1;
                    self.accept_retry = true;
                    return;
                }
            };
            self.stats.accepted += 1;
            let ip = canonical_ip(peer.ip());
            let limit = self.cfg.max_handshaking_per_ip;
            if limit > 0
                && !(self.cfg.per_ip_exempt_loopback && ip.is_loopback())
                && self.per_ip.get(&ip).copied().unwrap_or(0) >= limit
            {
                // Dropping the socket unread closes it: one address cannot hold more of the
                // handshake pool than this.
                self.stats.rejected_per_ip += 1;
                continue;
            }
            if self.pool_len >= self.cfg.max_handshaking.max(1) {
                // The pool is full: the oldest handshake has had the most time and made the
                // least of it, so it goes and the newcomer gets a chance.
                self.evict_oldest_handshake(registry, out);
            }
            if self.count >= self.cfg.max_sockets {
                self.stats.rejected_over_cap += 1;
                continue;
            }
            // Latency over throughput: small frames must not wait for Nagle.
            let _ = sock.set_nodelay(true);
            if self.cfg.send_buffer_bytes > 0 {
                // Best effort: the kernel clamps it to `net.core.wmem_max`; a failure leaves the
                // default, which only costs latency for slow clients.
                let _ =
                    socket2::SockRef::from(&sock).set_send_buffer_size(self.cfg.send_buffer_bytes);
            }
            let io = match &self.cfg.tls {
                None => Transport::plain(sock),
                Some(tls) => match ServerConnection::new(tls.clone()) {
                    Ok(tc) => Transport::tls(sock, tc),
                    Err(_) => {
                        self.stats.tls_errors += 1;
                        continue;
                    }
                },
            };
            let slot = match self.free.pop() {
                Some(slot) => slot,
                None => {
                    self.slots.push(Slot {
                        generation: 0,
                        conn: None,
                    });
                    self.slots.len() - 1
                }
            };
            let generation = self.slots[slot].generation & SLOT_MASK;
            let id = SocketId((generation << SLOT_BITS) | slot);
            let mut conn = Box::new(Conn::new(id, peer, io, self.now, &self.cfg));
            let deadline = conn.deadline;
            let token = Token(self.first_token + 1 + slot);
            if registry
                .register(conn.io.socket_mut(), token, Interest::READABLE)
                .is_err()
            {
                self.stats.accept_errors += 1;
                self.free.push(slot);
                continue;
            }
            conn.in_pool = true;
            self.slots[slot].conn = Some(conn);
            self.count += 1;
            self.pool_len += 1;
            *self.per_ip.entry(ip).or_insert(0) += 1;
            self.pool.push_back(id);
            if self.pool.len() > 2 * self.cfg.max_handshaking.max(1) + 64 {
                // Most entries are stale (finished handshakes): keep the deque bounded.
                let slots = &self.slots;
                self.pool.retain(|id| {
                    slots
                        .get(id.0 & SLOT_MASK)
                        .and_then(|s| s.conn.as_deref())
                        .is_some_and(|c| c.id == *id && c.in_pool)
                });
            }
            self.next_deadline = self.next_deadline.min(deadline);
            // A real client's request is usually in the socket already: read it now, so it can
            // leave the pool before the next flood socket could evict it.
            self.with_conn(registry, slot, Some(out), |conn, env| ((), conn.drive(env)));
        }
    }

    /// Drops the oldest connection still in its handshake (skipping stale pool entries).
    fn evict_oldest_handshake(&mut self, registry: &Registry, out: &mut Vec<NetEvent>) {
        while let Some(id) = self.pool.pop_front() {
            let Some(slot) = self.slot_of_id(id) else {
                continue;
            };
            if !self.slots[slot].conn.as_ref().is_some_and(|c| c.in_pool) {
                continue;
            }
            self.stats.handshakes_evicted += 1;
            self.with_conn(registry, slot, Some(out), |c, env| ((), c.remove(env)));
            return;
        }
    }

    /// Takes a connection that left its handshake (or is going away) out of the pool and
    /// the per-address count, once.
    fn leave_pool(pool_len: &mut usize, per_ip: &mut HashMap<IpAddr, usize>, conn: &mut Conn) {
        if !mem::take(&mut conn.in_pool) {
            return;
        }
        *pool_len -= 1;
        let ip = canonical_ip(conn.peer.ip());
        if let Some(n) = per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&ip);
            }
        }
    }

    /// Runs `f` on the connection in `slot` (events to `out`, or deferred), then applies the
    /// outcome: byte counters, interest re-registration, deadline, or removal.
    fn with_conn<R>(
        &mut self,
        registry: &Registry,
        slot: usize,
        out: Option<&mut Vec<NetEvent>>,
        f: impl FnOnce(&mut Conn, &mut Env) -> (R, Step),
    ) -> Option<R> {
        let NetServer {
            slots,
            cfg,
            stats,
            deferred,
            now,
            next_deadline,
            first_token,
            pool_len,
            per_ip,
            ..
        } = self;
        let conn = slots.get_mut(slot)?.conn.as_mut()?;
        let out = out.unwrap_or(deferred);
        let mut env = Env {
            cfg,
            stats,
            out,
            now: *now,
        };
        let (result, mut step) = f(conn, &mut env);
        if step == Step::Keep {
            let want = conn.interest();
            if want != conn.registered {
                let token = Token(*first_token + 1 + slot);
                match registry.reregister(conn.io.socket_mut(), token, want) {
                    Ok(()) => conn.registered = want,
                    Err(_) => {
                        env.stats.io_errors += 1;
                        step = conn.remove(&mut env);
                    }
                }
            }
            if conn.deadline != 0 {
                *next_deadline = (*next_deadline).min(conn.deadline);
            }
        }
        if conn.in_pool && !conn.is_handshaking() {
            Self::leave_pool(pool_len, per_ip, conn);
        }
        stats.bytes_in += mem::take(&mut conn.io.bytes_in);
        stats.bytes_out += mem::take(&mut conn.io.bytes_out);
        if step == Step::Remove {
            self.free_slot(registry, slot);
        }
        Some(result)
    }

    /// Takes `conn`'s socket out of the server while it waits for the answer to an HTTP
    /// request ([`NetEvent::Http`]), so another thread can serve it (a replay session): it is
    /// deregistered, uncounted and its id is dead; no `Closed` follows (it was never `Open`).
    /// `None` (nothing changes) for an unknown connection, one in any other phase, or a TLS
    /// one (its TLS state cannot move with the socket).
    pub fn detach(&mut self, registry: &Registry, conn: SocketId) -> Option<mio::net::TcpStream> {
        let slot = self.slot_of_id(conn)?;
        if !self.slots[slot].conn.as_ref()?.detachable() {
            return None;
        }
        self.take_slot(registry, slot).map(|c| c.into_socket())
    }

    fn free_slot(&mut self, registry: &Registry, slot: usize) {
        self.take_slot(registry, slot);
    }

    fn take_slot(&mut self, registry: &Registry, slot: usize) -> Option<Box<Conn>> {
        let s = self.slots.get_mut(slot)?;
        let mut conn = s.conn.take()?;
        Self::leave_pool(&mut self.pool_len, &mut self.per_ip, &mut conn);
        // Its unfinished message goes with it.
        self.stats.partial_bytes = self
            .stats
            .partial_bytes
            .saturating_sub(conn.partial_bytes());
        let _ = registry.deregister(conn.io.socket_mut());
        self.stats.bytes_in += mem::take(&mut conn.io.bytes_in);
        self.stats.bytes_out += mem::take(&mut conn.io.bytes_out);
        s.generation = s.generation.wrapping_add(1);
        self.free.push(slot);
        self.count -= 1;
        Some(conn)
    }

    /// Sockets in their handshake now (the pool bounded by `max_handshaking`).
    pub fn handshaking_count(&self) -> usize {
        self.pool_len
    }

    fn slot_of(&self, token: Token) -> Option<usize> {
        let slot = token.0.checked_sub(self.first_token)?.checked_sub(1)?;
        (slot < self.slots.len()).then_some(slot)
    }

    fn slot_of_id(&self, id: SocketId) -> Option<usize> {
        let slot = id.0 & SLOT_MASK;
        self.conn(id).map(|_| slot)
    }

    fn conn(&self, id: SocketId) -> Option<&Conn> {
        self.slots
            .get(id.0 & SLOT_MASK)?
            .conn
            .as_deref()
            .filter(|c| c.id == id)
    }
}

/// An IPv4 peer on a dual-stack listener arrives as `::ffff:a.b.c.d`; count it as `a.b.c.d`.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

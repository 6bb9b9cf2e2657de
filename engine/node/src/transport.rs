//! The byte stream under HTTP and WebSocket: a non-blocking mio `TcpStream`, plain or wrapped in
//! a rustls connection, server side (`net`) or client side (`live::dial`, so venue connections
//! and `tape loadgen`). Both sides need the same thing: `WouldBlock` passed through untouched,
//! handshake records pushed out as soon as they exist, and the socket at hand for mio.
//!
//! Both variants implement `Read` and `Write` with non-blocking semantics: `WouldBlock` means
//! "come back on the next readiness event", never "lost". The TLS adapter is the usual
//! `read_tls` / `process_new_packets` / `reader` dance on the way in and `writer` + `write_tls`
//! on the way out; handshake records are pushed out opportunistically and whatever the kernel
//! refuses stays in rustls until [`Transport::wants_write`] says it is gone.

use std::io::{self, Read, Write};
use std::net::Shutdown;

use mio::net::TcpStream;
use rustls::{ClientConnection, Connection, ServerConnection};

/// A connection's socket, plain or TLS, with raw byte counters.
pub struct Transport {
    sock: TcpStream,
    tls: Option<Box<TlsState>>,
    /// Raw bytes read from the socket (TLS records included) not yet moved into the stats.
    pub(crate) bytes_in: u64,
    /// Raw bytes written to the socket not yet moved into the stats.
    pub(crate) bytes_out: u64,
}

struct TlsState {
    conn: Connection,
    /// Set once rustls rejected the peer's records: the connection is dead and counted as a
    /// TLS error rather than a plain I/O error.
    failed: bool,
    close_notify_sent: bool,
}

impl Transport {
    /// A plain TCP transport.
    pub(crate) fn plain(sock: TcpStream) -> Self {
        Transport {
            sock,
            tls: None,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// A TLS server transport; the handshake runs as a side effect of the first reads and
    /// writes.
    pub(crate) fn tls(sock: TcpStream, conn: ServerConnection) -> Self {
        Transport::with_tls(sock, conn.into())
    }

    /// A TLS client transport; the handshake (ClientHello first) runs as a side effect of the
    /// first reads and writes, so plaintext written before it completes waits in rustls.
    pub(crate) fn tls_client(sock: TcpStream, conn: ClientConnection) -> Self {
        Transport::with_tls(sock, conn.into())
    }

    fn with_tls(sock: TcpStream, conn: Connection) -> Self {
        Transport {
            sock,
            tls: Some(Box::new(TlsState {
                conn,
                failed: false,
                close_notify_sent: false,
            })),
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// The socket, for socket options.
    pub(crate) fn socket(&self) -> &TcpStream {
        &self.sock
    }

    /// The socket, for (re)registration with the mio registry.
    pub(crate) fn socket_mut(&mut self) -> &mut TcpStream {
        &mut self.sock
    }

    /// The socket back (TLS state dropped), for deregistration after a failed dial.
    pub(crate) fn into_socket(self) -> TcpStream {
        self.sock
    }

    /// True for a TLS transport.
    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// True when TLS records are waiting for the socket to accept them.
    pub(crate) fn wants_write(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.conn.wants_write())
    }

    /// True once rustls rejected the peer (bad record, failed handshake, ...).
    pub(crate) fn tls_failed(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.failed)
    }

    /// Ends our direction of the stream: a TLS close_notify (if TLS), flushed, then a TCP
    /// half-close. `WouldBlock` means the close_notify is still queued; call again when writable.
    pub(crate) fn close_write(&mut self) -> io::Result<()> {
        if let Some(tls) = self.tls.as_mut() {
            if !tls.close_notify_sent && !tls.failed {
                tls.conn.send_close_notify();
                tls.close_notify_sent = true;
            }
        }
        self.push_tls()?;
        match self.sock.shutdown(Shutdown::Write) {
            // The peer may already be gone; the socket is about to be dropped anyway.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        }
    }

    /// Reads raw socket bytes and throws them away (lingering close): returns `Ok(true)` at EOF,
    /// `Ok(false)` once the socket would block.
    pub(crate) fn discard_input(&mut self) -> io::Result<bool> {
        let mut scratch = [0u8; 4096];
        loop {
            match self.sock.read(&mut scratch) {
                Ok(0) => return Ok(true),
                Ok(n) => self.bytes_in += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes queued TLS records until none is left (`Ok`) or the socket would block (`Err`
    /// with `WouldBlock`). A no-op for plain TCP.
    fn push_tls(&mut self) -> io::Result<()> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(());
        };
        while tls.conn.wants_write() {
            match tls.conn.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.bytes_out += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Like [`Self::push_tls`] but a full socket is not an error: the records stay queued.
    fn push_tls_opportunistic(&mut self) -> io::Result<()> {
        match self.push_tls() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }

    fn read_tls_plaintext(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(tls) = self.tls.as_mut() else {
                return Err(io::ErrorKind::NotConnected.into());
            };
            match tls.conn.reader().read(buf) {
                // Ok(0) here is a clean close_notify from the peer: EOF.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            // No plaintext buffered: pull more records off the socket.
            match tls.conn.read_tls(&mut self.sock) {
                // EOF is recorded by rustls; the next reader() call reports it.
                Ok(0) => {}
                Ok(n) => {
                    self.bytes_in += n as u64;
                    if let Err(err) = tls.conn.process_new_packets() {
                        tls.failed = true;
                        // Best effort: let the peer see the alert rustls queued.
                        let _ = self.push_tls();
                        return Err(io::Error::new(io::ErrorKind::InvalidData, err));
                    }
                    // Handshake flights and session tickets go out as soon as they exist.
                    self.push_tls_opportunistic()?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.tls.is_some() {
            return self.read_tls_plaintext(buf);
        }
        loop {
            match self.sock.read(buf) {
                Ok(n) => {
                    self.bytes_in += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_mut() else {
            loop {
                match self.sock.write(buf) {
                    Ok(n) => {
                        self.bytes_out += n as u64;
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        };
        let mut n = tls.conn.writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            // rustls' own buffer is at its limit: make room, then try once more. Ok(0) would
            // read as "connection closed" to callers, so a still-full buffer is WouldBlock.
            self.push_tls()?;
            let Some(tls) = self.tls.as_mut() else {
                return Err(io::ErrorKind::NotConnected.into());
            };
            n = tls.conn.writer().write(buf)?;
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        self.push_tls_opportunistic()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(tls) = self.tls.as_mut() {
            tls.conn.writer().flush()?;
        }
        self.push_tls()
    }
}

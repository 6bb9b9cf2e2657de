//! The node's side of a scale-out (docs/scale-out.md): an origin takes the commands its
//! edges forward; an edge serves its origin's run.

use mio::Token;

use super::pipeline::{socket_of, Handled};
use super::{forward_venue_commands, Node};
use tape_core::input::{SourceId, CLIENT_SOURCE};
use tape_core::server::Hub;

/// The origin's NATS thread wakes the poll with this token (an edge's command arrived).
pub(super) const ORIGIN_WAKER_TOKEN: usize = super::LIVE_FIRST_TOKEN - 1;

impl Node {
    /// On an origin: journals and applies the client records edges forwarded, as a local
    /// client's, and answers each.
    pub(super) fn serve_edge_commands(&mut self, now: u64) -> std::io::Result<()> {
        while let Some(cmd) = self.pipe.nats.as_mut().and_then(|p| p.take_command()) {
            let handled = self.pipe.handle_input(
                self.poll.registry(),
                now,
                SourceId(CLIENT_SOURCE),
                cmd.kind,
                &cmd.payload,
                false,
            )?;
            forward_venue_commands(&mut self.pipe.engine, &mut *self.feed);
            let result = match handled {
                Handled::Applied => Ok(()),
                Handled::Skipped => Err("the origin cannot journal right now".to_owned()),
            };
            if let Some(p) = &self.pipe.nats {
                p.answer(cmd, result);
            }
        }
        Ok(())
    }

    /// An edge starts (or the origin started) a run: the hub serves it under the origin's run
    /// id, so a client resumes across origin and edges. A later run is another engine whose
    /// `seq`s start over: every client is closed (1012, service restart) and the hub starts
    /// afresh, as the origin's own did.
    pub(super) fn adopt_origin_run(&mut self) {
        let Some(run) = self.feed.origin_run() else {
            return;
        };
        if self.edge_run.is_some_and(|r| r != run) {
            let conns = self.pipe.hub.connections();
            if let Some(net) = &mut self.pipe.net {
                for c in conns {
                    net.close(
                        self.poll.registry(),
                        socket_of(c),
                        1012,
                        "the origin started a new run",
                    );
                }
            }
            let mut hub = Hub::new(self.cfg.hub.clone());
            if let Some(a) = &self.cfg.auth {
                if let Ok(a) = tape_core::auth::Authenticator::new(a.clone()) {
                    hub.set_authenticator(a);
                }
            }
            self.pipe.hub = hub;
        }
        self.edge_run = Some(run);
        self.pipe.hub.set_run_id(run);
    }
}

/// The origin's waker, for [`crate::nats::Publisher::start`].
pub(super) fn origin_waker(registry: &mio::Registry) -> std::io::Result<mio::Waker> {
    mio::Waker::new(registry, Token(ORIGIN_WAKER_TOKEN))
}

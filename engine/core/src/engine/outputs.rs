//! The engine's outputs: the client queue ([`Engine::poll_output`]), the venue queue
//! ([`Engine::poll_venue_command`]), both bounded, and the [`Digest`] over what they carry.

use crate::book::BookEvent;
use crate::fixed::{Price, Qty};
use crate::input::Nanos;
use crate::instrument::InstrumentId;
use crate::msg::Side;
use crate::output::{Digest, Event, Output, VenueCommand};

use super::stats::{output_kind, KIND_BOOK_LEVEL};
use super::Engine;

impl Engine {
    /// The next output for clients, oldest first.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The outputs queued and not taken yet, oldest first, without taking them: for a
    /// consumer that must see an input's outputs before they are handed on (the io layer's
    /// shared-memory publisher stores the new state before the hub serializes it).
    pub fn queued_outputs(&self) -> impl Iterator<Item = &Output> {
        self.out.iter()
    }

    /// Drops every queued output. A consumer that only reads the outputs can look at them
    /// through [`Engine::queued_outputs`] and then clear the queue, instead of moving each
    /// one out with [`Engine::poll_output`] (replay counts a few million per second).
    pub fn clear_outputs(&mut self) {
        self.out.clear();
    }

    /// The next command for a venue connection (an order to send, a snapshot to fetch),
    /// oldest first. The io layer drains it after every input, like [`Engine::poll_output`].
    #[must_use]
    pub fn poll_venue_command(&mut self) -> Option<VenueCommand> {
        self.venue_out.pop_front()
    }

    /// The running digest over every output produced so far.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    #[inline(always)]
    pub(super) fn emit(&mut self, now: Nanos, event: Event) {
        let out = Output { recv: now, event };
        self.digest.update(&out);
        self.count_output(output_kind(&out.event));
        if self.cfg.queue_outputs {
            self.queue_output(out);
        }
    }

    /// Counts an output already folded into the digest; `kind` is its index in
    /// [`OUTPUT_KINDS`](super::OUTPUT_KINDS).
    #[inline(always)]
    pub(super) fn count_output(&mut self, kind: usize) {
        self.stats.outputs += 1;
        if let Some(n) = self.stats.outputs_by_kind.0.get_mut(kind) {
            *n += 1;
        }
    }

    /// Queues a counted output, dropping the oldest (and counting it) when the queue is
    /// full.
    #[inline(always)]
    fn queue_output(&mut self, out: Output) {
        if self.out.len() >= self.cfg.max_queued_outputs {
            self.out.pop_front();
            self.stats.outputs_dropped += 1;
        }
        self.out.push_back(out);
    }

    /// [`Engine::emit`] of a book's level change (most of a depth-heavy session's outputs),
    /// from its fields: the digest takes them directly instead of matching the built output,
    /// and the output is built only for a queue.
    #[inline(always)]
    pub(super) fn emit_level_changed(
        &mut self,
        now: Nanos,
        instrument: InstrumentId,
        side: Side,
        price: Price,
        qty: Qty,
    ) {
        self.digest
            .update_level_changed(now, instrument, side, price, qty);
        self.count_output(KIND_BOOK_LEVEL);
        if self.cfg.queue_outputs {
            self.queue_output(Output {
                recv: now,
                event: Event::Book(BookEvent::LevelChanged {
                    instrument,
                    side,
                    price,
                    qty,
                }),
            });
        }
    }

    pub(super) fn emit_venue(&mut self, cmd: VenueCommand) {
        if self.venue_out.len() >= self.cfg.max_queued_outputs {
            self.venue_out.pop_front();
            self.stats.venue_commands_dropped += 1;
        }
        self.venue_out.push_back(cmd);
    }
}

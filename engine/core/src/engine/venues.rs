//! Venue connections: link records become a [`VenueStatus`] per source, kept in step with
//! how many of the books that source feeds are synced.

use crate::book::BookEvent;
use crate::input::{Nanos, SourceId};
use crate::output::{Error, Event};
use crate::venue::{LinkEvent, VenueStatus};

use super::Engine;

impl Engine {
    /// The status of every venue connection seen in link records, in source order.
    pub fn venues(&self) -> impl Iterator<Item = &VenueStatus> {
        self.venues.iter().flatten()
    }

    /// A connection changed state. `down` clears every book it fed, so nothing stale is ever
    /// served as live; they sync again from scratch when frames flow again.
    pub(super) fn handle_link(
        &mut self,
        now: Nanos,
        source_id: SourceId,
        payload: &[u8],
    ) -> Result<(), Error> {
        self.source_info(source_id)?;
        let ev = LinkEvent::parse(payload).map_err(|err| Error::BadLink { source_id, err })?;
        let source = source_id.0;
        let idx = source as usize;
        if self.venues.len() <= idx {
            self.venues.resize_with(idx + 1, || None);
        }
        if self.venues[idx].is_none() {
            let def = &self.sources[idx]
                .as_ref()
                .expect("source_info checked it")
                .def;
            self.venues[idx] = Some(VenueStatus::new(source_id, def.name.clone(), def.market));
        }
        // The venue is down before its books are cleared, so the clearing itself reports no
        // intermediate state.
        self.venues[idx]
            .as_mut()
            .expect("just set")
            .on_link(now.0, &ev);
        if matches!(ev, LinkEvent::Down { .. }) {
            for idx in 0..self.book_source.len() {
                if self.book_source[idx] != source {
                    continue;
                }
                let Some(Some(book)) = self.books.get_mut(idx) else {
                    continue;
                };
                book.reset();
                if let Some(q) = self.pending_oracle.get_mut(idx) {
                    q.clear();
                }
                let instrument = book.instrument();
                self.book_events.push(BookEvent::ResyncRequested {
                    instrument,
                    reason: crate::book::ResyncReason::Disconnected,
                });
                self.flush_book_events(now, instrument);
            }
        }
        let (books, synced) = self.count_books(source);
        let v = self.venues[idx].as_mut().expect("just set");
        v.on_books(now.0, books, synced);
        let out = Event::Venue(v.clone());
        self.emit(now, out);
        Ok(())
    }

    /// (books fed by `source`, how many of them are synced).
    fn count_books(&self, source: u32) -> (u32, u32) {
        let (mut books, mut synced) = (0, 0);
        for (idx, s) in self.book_source.iter().enumerate() {
            if *s == source {
                books += 1;
                if let Some(Some(b)) = self.books.get(idx) {
                    synced += u32::from(b.is_synced());
                }
            }
        }
        (books, synced)
    }

    /// Re-counts the books of a venue connection; emits its status if that changed it.
    pub(super) fn refresh_venue(&mut self, now: Nanos, source: u32) {
        if !matches!(self.venues.get(source as usize), Some(Some(_))) {
            return;
        }
        let (books, synced) = self.count_books(source);
        let v = self.venues[source as usize].as_mut().expect("checked");
        if v.on_books(now.0, books, synced) {
            let out = Event::Venue(v.clone());
            self.emit(now, out);
        }
    }
}

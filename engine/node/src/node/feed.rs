//! The market-data feed of `tape run` for now: a journal replayed at its recorded pace (or N
//! times faster, or as fast as possible), optionally in a loop. Live exchange feeds come in
//! through the same [`Feed`] shape later.

use std::path::{Path, PathBuf};

use tape_journal::{JournalError, JournalReader};

/// One input ready for the engine.
#[derive(Debug)]
pub struct FeedRecord<'a> {
    /// Source id.
    pub source: u32,
    /// Record kind.
    pub kind: u16,
    /// Raw bytes.
    pub payload: &'a [u8],
}

/// Replays a journal against the wall clock.
pub struct ReplayFeed {
    dir: PathBuf,
    reader: JournalReader,
    speed: u32,
    repeat: bool,
    /// The next record, copied out of the map (the reader lends it only until the next call).
    next: Option<(u64, u32, u16)>,
    buf: Vec<u8>,
    /// Wall-clock ns at which the first record of this pass is due.
    epoch_wall: Option<u64>,
    /// Recorded receive time of the first record of this pass.
    epoch_rec: u64,
    passes: u64,
    records: u64,
    done: bool,
    /// `buf` holds a record the caller may still be reading; load the next one first.
    handed_out: bool,
}

impl std::fmt::Debug for ReplayFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayFeed")
            .field("dir", &self.dir)
            .field("passes", &self.passes)
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

/// What [`ReplayFeed::poll`] found.
#[derive(Debug)]
pub enum FeedPoll<'a> {
    /// A record due now.
    Record(FeedRecord<'a>),
    /// The next record is due at this wall-clock time (ns).
    NotBefore(u64),
    /// The journal ended and a new pass begins: the engine should start from a clean state.
    Restarted,
    /// The journal ended and the feed does not loop.
    Finished,
}

impl ReplayFeed {
    /// Opens the journal in `dir`. `speed`: 1 = recorded pace, N = N times faster, 0 = as
    /// fast as possible.
    ///
    /// # Errors
    /// The journal cannot be opened, or holds no record.
    pub fn open(dir: &Path, speed: u32, repeat: bool) -> Result<ReplayFeed, JournalError> {
        let reader = JournalReader::open(dir)?;
        let mut feed = ReplayFeed {
            dir: dir.to_owned(),
            reader,
            speed,
            repeat,
            next: None,
            buf: Vec::with_capacity(1 << 16),
            epoch_wall: None,
            epoch_rec: 0,
            passes: 1,
            records: 0,
            done: false,
            handed_out: false,
        };
        feed.load_next()?;
        if feed.next.is_none() {
            return Err(JournalError::SeqOutOfRange {
                seq: 0,
                dir: dir.to_owned(),
            });
        }
        Ok(feed)
    }

    fn load_next(&mut self) -> Result<(), JournalError> {
        self.next = match self.reader.next() {
            Some(Ok(r)) => {
                self.buf.clear();
                self.buf.extend_from_slice(r.payload);
                Some((r.recv_ns, r.source, r.kind))
            }
            Some(Err(e)) => return Err(e),
            None => None,
        };
        Ok(())
    }

    /// The record due at `now` (wall-clock ns), or when the next one is due.
    ///
    /// # Errors
    /// A journal that became unreadable (damage found while reading).
    pub fn poll(&mut self, now: u64) -> Result<FeedPoll<'_>, JournalError> {
        if self.done {
            return Ok(FeedPoll::Finished);
        }
        if self.handed_out {
            // The caller is done with the record handed out last time: read the next one.
            self.handed_out = false;
            self.load_next()?;
        }
        let Some((recv, source, kind)) = self.next else {
            if !self.repeat {
                self.done = true;
                return Ok(FeedPoll::Finished);
            }
            self.reader = JournalReader::open(&self.dir)?;
            self.load_next()?;
            self.epoch_wall = None;
            self.passes += 1;
            return Ok(FeedPoll::Restarted);
        };
        let epoch_wall = *self.epoch_wall.get_or_insert_with(|| {
            self.epoch_rec = recv;
            now
        });
        if self.speed > 0 {
            let offset = recv.saturating_sub(self.epoch_rec) / u64::from(self.speed);
            let due = epoch_wall.saturating_add(offset);
            if due > now {
                return Ok(FeedPoll::NotBefore(due));
            }
        }
        self.handed_out = true;
        self.records += 1;
        Ok(FeedPoll::Record(FeedRecord {
            source,
            kind,
            payload: &self.buf,
        }))
    }

    /// Records handed out so far (all passes).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Passes started (1 for the first).
    pub fn passes(&self) -> u64 {
        self.passes
    }
}

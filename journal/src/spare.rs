//! Creating segment files: a new segment is prepared under a temporary name (sized, mapped,
//! possibly pre-touched) and becomes part of the journal by writing its header and renaming
//! it. A crash can therefore leave a stray temporary file, which the writer deletes on open,
//! but never a half-created segment under a segment name.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use crate::dir::{segment_file_name, SPARE_NAME};
use crate::error::{io_err, JournalError};
use crate::format::{SegmentHeader, SEGMENT_HEADER_LEN};
use crate::segment::{reserve, WriteMap};

/// A sized and mapped segment file that is not yet part of the journal.
#[derive(Debug)]
pub(crate) struct Spare {
    map: WriteMap,
    size: usize,
    path: PathBuf,
}

impl Spare {
    /// Creates (or replaces) the temporary file in `dir`, sparse, `size` bytes long, mapped.
    pub(crate) fn create(dir: &Path, size: u64) -> Result<Spare, JournalError> {
        let path = dir.join(SPARE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err("create segment", &path))?;
        file.set_len(size).map_err(io_err("size segment", &path))?;
        // A full disk fails here, not as a SIGBUS at the first store into the map. Whatever
        // fallocate managed to allocate before failing is given back.
        if let Err(e) = reserve(&file, size, &path) {
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        let map = WriteMap::of_file(&file, &path)?;
        let size = map.bytes().len();
        Ok(Spare { map, size, path })
    }

    /// Size of the file in bytes.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The mapped bytes, for pre-touching.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        self.map.bytes_mut()
    }

    /// Writes the segment header for `first_seq` and renames the file to its segment name.
    /// On error the spare stays usable (the header is rewritten by the next attempt).
    pub(crate) fn install(&mut self, dir: &Path, first_seq: u64) -> Result<PathBuf, JournalError> {
        let header = SegmentHeader {
            first_seq,
            segment_size: self.size as u64,
        };
        self.map.bytes_mut()[..SEGMENT_HEADER_LEN].copy_from_slice(&header.encode());
        let target = dir.join(segment_file_name(first_seq));
        fs::rename(&self.path, &target).map_err(io_err("rename new segment", &target))?;
        self.path.clone_from(&target);
        Ok(target)
    }

    /// The map, once installed.
    pub(crate) fn into_map(self) -> WriteMap {
        self.map
    }

    /// Unmaps and deletes the temporary file.
    pub(crate) fn discard(self) -> Result<(), JournalError> {
        drop(self.map);
        fs::remove_file(&self.path).map_err(io_err("remove spare segment", &self.path))
    }
}

/// Deletes a temporary spare left behind by a crashed writer, if any.
pub(crate) fn remove_stale(dir: &Path) -> Result<(), JournalError> {
    let path = dir.join(SPARE_NAME);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io_err("remove stale spare segment", &path)(e))
        }
        _ => Ok(()),
    }
}

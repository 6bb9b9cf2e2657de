//! The crate's errors: settings that make no sense ([`OptionsError`]), a writer that cannot
//! set up its files ([`ShmError`]), a file a reader refuses ([`OpenError`]) and a record it
//! cannot read ([`ReadError`]). Each is comparable by kind and names what it is about.

use std::io;
use std::path::PathBuf;

/// A setting of the publication that makes no sense (refused before anything is created).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// `levels` out of range.
    #[error("shm.levels must be 1 to {max}, not {value}")]
    Levels {
        /// The value given.
        value: u64,
        /// The largest allowed.
        max: u32,
    },
    /// A table size out of range.
    #[error("shm.{key} must be 1 to {max}, not {value}")]
    Size {
        /// The key (`max_instruments`, `max_positions`, `max_orders`).
        key: &'static str,
        /// The value given.
        value: u64,
        /// The largest allowed.
        max: u32,
    },
    /// A file mode that does not parse or is not allowed.
    #[error("shm.{key}: {value:?} {reason}")]
    Mode {
        /// The key (`market_mode`, `user_mode`).
        key: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A group that is neither a number nor a name in `/etc/group`.
    #[error("{key}: no group {value:?} (a name from /etc/group or a numeric gid)")]
    Group {
        /// The key (`shm.user_group`, `user[N].shm_group`).
        key: String,
        /// The value given.
        value: String,
    },
    /// A user name that cannot name a file (the account layer's user names always can).
    #[error("shm: user {0:?} cannot name a file (1-64 bytes of [A-Za-z0-9._:@-])")]
    User(String),
}

/// Why the writer could not set up (or keep) its directory or files.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    /// The directory is missing and cannot be created, is not a directory, or is not
    /// writable.
    #[error("shm directory {}: {reason}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// What is wrong, with the OS's error.
        reason: String,
    },
    /// Another writer holds the directory.
    #[error("shm directory {} is in use by another tape (its LOCK is held): give each node its own directory", path.display())]
    Locked {
        /// The directory.
        path: PathBuf,
    },
    /// A file operation failed.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS's error.
        #[source]
        source: io::Error,
    },
    /// The file's space could not be reserved: the file system is full (or too small).
    #[error("{}: cannot reserve {bytes} bytes: {source} (is the file system full? /dev/shm is sized by its tmpfs mount)", path.display())]
    NoSpace {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// The OS's error.
        #[source]
        source: io::Error,
    },
    /// The file could not be given to the configured group.
    #[error("{}: cannot give the file to group {gid}: {source} (the engine's OS user must be a member of that group)", path.display())]
    Chown {
        /// The file.
        path: PathBuf,
        /// The group.
        gid: u32,
        /// The OS's error.
        #[source]
        source: io::Error,
    },
    /// Bad settings.
    #[error(transparent)]
    Options(#[from] OptionsError),
}

/// Why a reader refused a file.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file could not be opened, inspected or mapped.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS's error.
        #[source]
        source: io::Error,
    },
    /// Not a tape shared-memory file.
    #[error("{}: not a tape shared-memory file (magic {magic:#018x})", path.display())]
    NotTape {
        /// The file.
        path: PathBuf,
        /// The first eight bytes, as a little-endian word.
        magic: u64,
    },
    /// A tape file of the other kind (a user file opened as the market, or the reverse).
    #[error("{}: a tape {found} file, not a {expected} file", path.display())]
    WrongKind {
        /// The file.
        path: PathBuf,
        /// What it is.
        found: &'static str,
        /// What was asked for.
        expected: &'static str,
    },
    /// The file's layout version is not the one this reader understands: a newer (or older)
    /// tape wrote it. Use a reader of the same version as the writer.
    #[error("{}: layout version {found}, this reader understands version {supported} only (build the reader from the same tape as the writer)", path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// The file's version.
        found: u64,
        /// The reader's.
        supported: u64,
    },
    /// A header field disagrees with the layout of this version.
    #[error("{}: header field {field} is {found}, expected {expected}: the file is damaged or not written by tape", path.display())]
    Layout {
        /// The file.
        path: PathBuf,
        /// The field.
        field: &'static str,
        /// Its value.
        found: u64,
        /// What this version's layout says.
        expected: u64,
    },
    /// The file is shorter than its header says.
    #[error("{}: {len} bytes, its header says {expected}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// Its header's `file_size`.
        expected: u64,
    },
}

impl OpenError {
    pub(crate) fn io(path: &std::path::Path, op: &'static str) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_owned();
        move |source| OpenError::Io { path, op, source }
    }
}

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The writer stayed in the middle of a write of this record for the whole patience
    /// (it was stopped, or died, mid-write).
    #[error("record at offset {offset} stayed mid-write for {waited_ms} ms: the writer is stopped or dead")]
    Stalled {
        /// Byte offset of the record in the file.
        offset: u64,
        /// How long the reader tried.
        waited_ms: u64,
    },
    /// No such instrument slot in this file.
    #[error("no instrument slot {0} in this file")]
    NoSlot(u32),
}

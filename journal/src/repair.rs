//! Explicit repair of a damaged journal: what follows the first damage is moved into a
//! quarantine directory inside the journal (never deleted), so that the intact prefix is a
//! clean journal a writer can continue and a replay can read whole.
//!
//! This is the operator's decision that `JournalWriter::open` never takes on its own beyond a
//! torn tail: the writer refuses any other damage and names it; `repair` (the `tape repair`
//! command) acts on it and reports exactly what it kept and what it moved where.
//!
//! Layout of a quarantine: `DIR/quarantine/NNNN-seqS/` (NNNN counts repairs, S is the first
//! sequence number no longer in the journal), holding whole segment files under their own names
//! (readable with any tool that reads segments), the cut-off tail of a damaged segment as
//! `<segment name>.from-<offset>` (raw bytes, from the damage to the last non-zero byte), a
//! metadata file that did not parse, and `MANIFEST` (what each file is and why it was moved).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::dir::{list_segments, lock_dir, SegmentEntry};
use crate::error::{io_err, Damage, DamageKind, JournalError};
use crate::format::{last_nonzero, SEGMENT_HEADER_LEN};
use crate::meta::{check_ends, meta_path, read_meta, write_meta, JournalMeta};
use crate::scan::{check_header, count_record_shapes, scan_records};
use crate::segment::{reserve, ReadMap};
use crate::spare;
use crate::verify::verify;

/// Name of the directory (inside the journal) that holds every quarantine.
pub const QUARANTINE_DIR: &str = "quarantine";

/// Most passes one `repair` makes: one for a metadata file that does not parse, one for the
/// records, one to confirm. More means something changes the files under us.
const MAX_PASSES: usize = 4;

/// One file moved (or written) into the quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedPart {
    /// Where the bytes were in the journal.
    pub source: PathBuf,
    /// Offset in `source` the moved bytes start at (0 for a whole file).
    pub from_offset: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// Record-shaped regions among them (each starting with the record marker; a torn or
    /// flipped region counts as one).
    pub record_shapes: u64,
    /// The file in the quarantine.
    pub file: PathBuf,
}

/// What [`repair`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// Every damaged place `verify` found before the repair.
    pub damage: Vec<Damage>,
    /// Records in the journal after the repair.
    pub kept_records: u64,
    /// Sequence number of the last record kept, if any.
    pub last_kept_seq: Option<u64>,
    /// The quarantine directory of this repair, if anything was moved.
    pub quarantine: Option<PathBuf>,
    /// What was moved there, in journal order.
    pub moved: Vec<QuarantinedPart>,
    /// The metadata file was rewritten to match the segments that remain (after a missing
    /// newest segment was accepted as lost, or a metadata file that did not parse).
    pub metadata_rewritten: bool,
}

impl RepairReport {
    /// Whether the journal was clean and nothing was done.
    pub fn nothing_to_do(&self) -> bool {
        self.damage.is_empty()
    }
}

impl fmt::Display for RepairReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nothing_to_do() {
            return f.write_str("clean: nothing to repair");
        }
        for d in &self.damage {
            writeln!(f, "damage: {d}")?;
        }
        match self.last_kept_seq {
            Some(last) => writeln!(f, "kept: {} record(s), up to seq {last}", self.kept_records)?,
            None => writeln!(f, "kept: no records")?,
        }
        if let Some(q) = &self.quarantine {
            writeln!(f, "moved to {} (nothing was deleted):", q.display())?;
            for p in &self.moved {
                writeln!(
                    f,
                    "  {} from offset {}: {} byte(s), {} record-shaped region(s) -> {}",
                    p.source.display(),
                    p.from_offset,
                    p.bytes,
                    p.record_shapes,
                    p.file.display()
                )?;
            }
        }
        if self.metadata_rewritten {
            writeln!(f, "metadata: rewritten to match the segments that remain")?;
        }
        Ok(())
    }
}

/// Repairs the journal in `dir`: everything from the first damaged place on is moved into a
/// new quarantine directory (see the module docs), the damaged segment is cut at the damage,
/// and the metadata is rewritten to match; a clean journal is left untouched. Takes the
/// writer's lock, so it cannot run beside a writer.
///
/// # Errors
/// [`JournalError::Locked`] while a writer has the journal open;
/// [`JournalError::Unrepairable`] when the journal's first segment(s) are missing (nothing a
/// repair could keep would replay: restore them instead); [`JournalError::Io`].
pub fn repair(dir: impl AsRef<Path>) -> Result<RepairReport, JournalError> {
    let dir = dir.as_ref();
    let _lock = lock_dir(dir)?;
    spare::remove_stale(dir)?;
    let before = verify(dir)?;
    let mut report = RepairReport {
        damage: before.damage.clone(),
        kept_records: before.records,
        last_kept_seq: before.last_seq,
        quarantine: None,
        moved: Vec::new(),
        metadata_rewritten: false,
    };
    if before.is_clean() {
        return Ok(report);
    }
    let mut q = Quarantine::new(dir, before.last_seq.map_or(0, |s| s + 1));
    for _ in 0..MAX_PASSES {
        let now = verify(dir)?;
        if now.is_clean() {
            report.kept_records = now.records;
            report.last_kept_seq = now.last_seq;
            report.quarantine = q.path.clone();
            q.finish(&report)?;
            return Ok(report);
        }
        pass(dir, &mut q, &mut report)?;
    }
    let left = verify(dir)?;
    Err(JournalError::Unrepairable {
        damage: left.damage.into_iter().next().unwrap_or(Damage {
            segment: dir.to_path_buf(),
            offset: 0,
            seq: None,
            kind: DamageKind::BadMetadata,
        }),
        why: "the damage did not go away: is something else writing to the journal?",
    })
}

/// One repair pass: a metadata file that does not parse, else the first damaged place.
fn pass(dir: &Path, q: &mut Quarantine, report: &mut RepairReport) -> Result<(), JournalError> {
    let meta = match read_meta(dir) {
        Ok(m) => m,
        Err(JournalError::Corrupt { .. }) => {
            q.move_whole(&meta_path(dir), report, 0)?;
            report.metadata_rewritten = true;
            None
        }
        Err(e) => return Err(e),
    };
    let segs = list_segments(dir)?;
    let (start, _) = check_ends(dir, &segs, meta);
    if let Some(damage) = start {
        return Err(JournalError::Unrepairable {
            damage,
            why: "the journal's first segment(s) are missing, so nothing after them replays \
                  (its sources are declared at its start): restore them from a copy, or start a \
                  new journal",
        });
    }
    if let Some((i, at)) = first_damage(&segs)? {
        let seg = &segs[i];
        if at <= SEGMENT_HEADER_LEN as u64 && at == 0 {
            q.move_whole(&seg.path, report, count_shapes(&seg.path)?)?;
        } else {
            q.cut_tail(seg, at, report)?;
        }
        for later in &segs[i + 1..] {
            q.move_whole(&later.path, report, count_shapes(&later.path)?)?;
        }
    }
    let remaining = list_segments(dir)?;
    let wanted = remaining.last().map(|last| JournalMeta {
        first_seq: meta.map_or(remaining[0].first_seq, |m| m.first_seq),
        last_segment: last.first_seq,
    });
    if wanted != meta {
        match wanted {
            Some(m) => write_meta(dir, &m, true)?,
            // Every segment went to the quarantine: the journal starts afresh.
            None => match fs::remove_file(meta_path(dir)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_err("remove journal metadata", &meta_path(dir))(e));
                }
                _ => {}
            },
        }
        report.metadata_rewritten = true;
    }
    sync_dir(dir)
}

/// The first damaged place in journal order: (segment index, offset); offset 0 means the
/// segment as a whole (its header, or its place in the sequence).
fn first_damage(segs: &[SegmentEntry]) -> Result<Option<(usize, u64)>, JournalError> {
    let mut expected = None;
    for (i, seg) in segs.iter().enumerate() {
        let map = ReadMap::open(&seg.path)?;
        let bytes = map.bytes();
        let Ok(header) = check_header(bytes, seg.first_seq) else {
            return Ok(Some((i, 0)));
        };
        if expected.is_some_and(|e| e != header.first_seq) {
            return Ok(Some((i, 0)));
        }
        let scan = scan_records(bytes, header.segment_size as usize, header.first_seq);
        if let Some((at, _)) = scan.damage {
            return Ok(Some((i, at as u64)));
        }
        expected = Some(scan.next_seq);
    }
    Ok(None)
}

fn count_shapes(path: &Path) -> Result<u64, JournalError> {
    let map = ReadMap::open(path)?;
    let bytes = map.bytes();
    Ok(match last_nonzero(bytes, SEGMENT_HEADER_LEN) {
        Some(last) => count_record_shapes(bytes, SEGMENT_HEADER_LEN, last + 1),
        None => 0,
    })
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync journal directory", dir))
}

/// The quarantine directory of one repair, created on first use.
struct Quarantine {
    dir: PathBuf,
    first_lost_seq: u64,
    path: Option<PathBuf>,
}

impl Quarantine {
    fn new(dir: &Path, first_lost_seq: u64) -> Quarantine {
        Quarantine {
            dir: dir.to_path_buf(),
            first_lost_seq,
            path: None,
        }
    }

    fn path(&mut self) -> Result<PathBuf, JournalError> {
        if let Some(p) = &self.path {
            return Ok(p.clone());
        }
        let root = self.dir.join(QUARANTINE_DIR);
        fs::create_dir_all(&root).map_err(io_err("create quarantine directory", &root))?;
        let taken = fs::read_dir(&root)
            .map_err(io_err("read quarantine directory", &root))?
            .count();
        let mut n = taken + 1;
        let path = loop {
            let p = root.join(format!("{n:04}-seq{}", self.first_lost_seq));
            match fs::create_dir(&p) {
                Ok(()) => break p,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(io_err("create quarantine directory", &p)(e)),
            }
        };
        self.path = Some(path.clone());
        Ok(path)
    }

    /// Moves a whole file into the quarantine under its own name.
    fn move_whole(
        &mut self,
        src: &Path,
        report: &mut RepairReport,
        record_shapes: u64,
    ) -> Result<(), JournalError> {
        let bytes = fs::metadata(src)
            .map_err(io_err("stat file to quarantine", src))?
            .len();
        let name = src.file_name().unwrap_or_default();
        let target = self.path()?.join(name);
        fs::rename(src, &target).map_err(io_err("move file to quarantine", src))?;
        report.moved.push(QuarantinedPart {
            source: src.to_path_buf(),
            from_offset: 0,
            bytes,
            record_shapes,
            file: target,
        });
        Ok(())
    }

    /// Copies `seg`'s bytes from `at` to its last non-zero byte into the quarantine (synced),
    /// then cuts the segment at `at` and restores its full, reserved size.
    fn cut_tail(
        &mut self,
        seg: &SegmentEntry,
        at: u64,
        report: &mut RepairReport,
    ) -> Result<(), JournalError> {
        let path = &seg.path;
        let map = ReadMap::open(path)?;
        let bytes = map.bytes();
        let header = check_header(bytes, seg.first_seq)
            .map_err(|kind| JournalError::corrupt(path, 0, None, kind))?;
        let from = usize::try_from(at).unwrap_or(usize::MAX).min(bytes.len());
        if let Some(last) = last_nonzero(bytes, from) {
            let tail = &bytes[from..=last];
            let name = format!(
                "{}.from-{at}",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            let target = self.path()?.join(name);
            let mut f = File::create(&target).map_err(io_err("create quarantine file", &target))?;
            f.write_all(tail)
                .and_then(|()| f.sync_all())
                .map_err(io_err("write quarantine file", &target))?;
            report.moved.push(QuarantinedPart {
                source: path.clone(),
                from_offset: at,
                bytes: tail.len() as u64,
                record_shapes: count_record_shapes(bytes, from, last + 1),
                file: target,
            });
        }
        drop(map);
        // Only now that the tail is safely elsewhere is it cut from the segment.
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_err("open segment", path))?;
        file.set_len(at)
            .and_then(|()| file.set_len(header.segment_size))
            .map_err(io_err("cut segment", path))?;
        reserve(&file, header.segment_size, path)?;
        file.sync_all().map_err(io_err("fsync segment", path))
    }

    /// Writes the manifest, if anything was quarantined.
    fn finish(&self, report: &RepairReport) -> Result<(), JournalError> {
        let Some(q) = &self.path else { return Ok(()) };
        let path = q.join("MANIFEST");
        let text = format!("tape journal repair of {}\n\n{report}", self.dir.display());
        fs::write(&path, text).map_err(io_err("write quarantine manifest", &path))
    }
}

//! Journal-facing subcommands: writing an import, `dump` and `verify`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use tape_core::input::RecordKind;
use tape_journal::{JournalOptions, JournalReader, JournalWriter};

use crate::import::{self, ImportOptions};

/// Opens a new journal in `out` for `tool` (`import`, `synth`): the options are validated, and
/// a directory that already holds files is refused, so a writer never appends to a session.
///
/// # Errors
/// Invalid options, a non-empty or unreadable `out`, a journal that cannot be created.
pub fn create_journal(out: &Path, jopts: JournalOptions, tool: &str) -> Result<JournalWriter> {
    jopts
        .validate()
        .with_context(|| format!("{}: journal options", out.display()))?;
    if out.exists()
        && std::fs::read_dir(out)
            .with_context(|| format!("{}: cannot read directory", out.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{}: directory is not empty; {tool} writes a new journal",
            out.display()
        );
    }
    let (w, _) = JournalWriter::open(out, jopts)
        .with_context(|| format!("{}: cannot create journal", out.display()))?;
    Ok(w)
}

/// Builds the import plan and writes it to a new journal in `out`.
///
/// # Errors
/// Bad inputs, or `out` already holding a journal (an import never appends to a session).
pub fn write_import(opts: &ImportOptions, out: &Path) -> Result<String> {
    write_import_with(opts, out, JournalOptions::default())
}

/// [`write_import`] with explicit journal options.
///
/// # Errors
/// As [`write_import`], and invalid journal options.
pub fn write_import_with(
    opts: &ImportOptions,
    out: &Path,
    jopts: JournalOptions,
) -> Result<String> {
    let plan = import::plan(opts)?;
    let mut w = create_journal(out, jopts, "import")?;
    let first_ts = plan.records.first().map_or(0, |r| r.recv_ns);
    for (id, def) in &plan.sources {
        w.append(
            first_ts,
            *id,
            RecordKind::SourceDef as u16,
            def.to_text().as_bytes(),
        )
        .with_context(|| format!("{}: append", out.display()))?;
    }
    let (mut frames, mut snapshots) = (0u64, 0u64);
    for r in &plan.records {
        match r.kind {
            RecordKind::RestSnapshot => snapshots += 1,
            _ => frames += 1,
        }
        w.append(r.recv_ns, r.source, r.kind as u16, &r.payload)
            .with_context(|| format!("{}: append", out.display()))?;
    }
    w.close()
        .with_context(|| format!("{}: close", out.display()))?;
    Ok(format!(
        "imported {} frames and {} snapshots from {} sources into {} ({} lines skipped)",
        frames,
        snapshots,
        plan.sources.len(),
        out.display(),
        plan.skipped_lines
    ))
}

fn kind_name(kind: u16) -> String {
    RecordKind::from_u16(kind).map_or_else(|| format!("kind{kind}"), |k| k.as_str().to_owned())
}

/// Prints records from `from` on.
///
/// # Errors
/// An unreadable or damaged journal, or a closed stdout.
pub fn dump(dir: &Path, json: bool, from: u64, limit: Option<u64>, width: usize) -> Result<()> {
    let mut reader = JournalReader::open_from(dir, from)
        .with_context(|| format!("{}: cannot open journal", dir.display()))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut n = 0u64;
    while let Some(rec) = reader.next() {
        if limit.is_some_and(|l| n >= l) {
            break;
        }
        let rec =
            rec.with_context(|| format!("{}: damaged journal; {DAMAGE_HINT}", dir.display()))?;
        let text = String::from_utf8_lossy(rec.payload);
        if json {
            let v = serde_json::json!({
                "seq": rec.seq,
                "recv_ns": rec.recv_ns,
                "source": rec.source,
                "kind": kind_name(rec.kind),
                "len": rec.payload.len(),
                "payload": text,
            });
            writeln!(out, "{v}")?;
        } else {
            let shown: String = text.chars().take(width).collect();
            let more = if shown.len() < text.len() { "…" } else { "" };
            writeln!(
                out,
                "{:>8} {:>20} src={:<3} {:<13} {:>7}B {shown}{more}",
                rec.seq,
                rec.recv_ns,
                rec.source,
                kind_name(rec.kind),
                rec.payload.len()
            )?;
        }
        n += 1;
    }
    out.flush()?;
    Ok(())
}

/// What to do about a damaged journal, for the messages of the commands that meet one.
pub const DAMAGE_HINT: &str = "`tape verify DIR` lists every damaged place; `tape repair DIR` \
     moves what follows the first one into DIR/quarantine/ (nothing is deleted) so the intact \
     records before it replay and record again";

/// Repairs a journal (see [`tape_journal::repair`]) and prints what it kept and moved.
///
/// # Errors
/// A journal locked by a writer, damage a repair cannot mend (missing first segments), I/O.
pub fn repair(dir: &Path) -> Result<ExitCode> {
    let report = tape_journal::repair(dir)
        .with_context(|| format!("{}: cannot repair journal", dir.display()))?;
    print!("{report}");
    if report.nothing_to_do() {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks a journal; exit code 0 when clean, 1 on any damage.
///
/// # Errors
/// A journal that cannot be opened at all.
pub fn verify(dir: &Path) -> Result<ExitCode> {
    let report = tape_journal::verify(dir)
        .with_context(|| format!("{}: cannot verify journal", dir.display()))?;
    println!("{report}");
    if !report.is_clean() {
        eprintln!("tape: {DAMAGE_HINT}");
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

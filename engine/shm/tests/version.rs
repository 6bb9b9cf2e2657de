//! Layout versioning: a reader of version V refuses a file of version V+1 (and any header
//! that disagrees with V's layout) with a typed error that says why, before it reads a record.

use std::os::unix::fs::FileExt;
use std::path::Path;

use tape_shm::layout::{header, VERSION};
use tape_shm::{MarketOptions, OpenError, Reader, ShmDir, UserOptions, UserReader};

/// Overwrites one header word, as a writer of another version (or damage) would have it.
fn set_word(file: &Path, offset: usize, value: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    f.write_all_at(&value.to_le_bytes(), offset as u64).unwrap();
}

#[test]
fn a_reader_refuses_the_next_layout_version_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ShmDir::open(&tmp.path().join("shm")).unwrap();
    let _w = dir.create_market(&MarketOptions::default()).unwrap();
    let file = dir.path().join("market.shm");
    Reader::open(&file).expect("version V opens");

    set_word(&file, header::VERSION, VERSION + 1);
    let e = Reader::open(&file).unwrap_err();
    match &e {
        OpenError::Version {
            found, supported, ..
        } => assert_eq!((*found, *supported), (VERSION + 1, VERSION)),
        other => panic!("expected a version error, got {other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("layout version {}", VERSION + 1))
            && msg.contains(&format!("understands version {VERSION} only")),
        "{msg}"
    );

    // The same for a user file.
    let _u = dir.create_user("carol", &UserOptions::default()).unwrap();
    let ufile = dir.user_path("carol");
    set_word(&ufile, header::VERSION, VERSION + 1);
    assert!(matches!(
        UserReader::open(&ufile),
        Err(OpenError::Version { found, .. }) if found == VERSION + 1
    ));
}

#[test]
fn a_header_that_disagrees_with_the_layout_is_refused_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ShmDir::open(&tmp.path().join("shm")).unwrap();
    let _w = dir.create_market(&MarketOptions::default()).unwrap();
    let file = dir.path().join("market.shm");
    // A record size this version does not have.
    set_word(&file, header::TOP_SIZE, 128);
    match Reader::open(&file).unwrap_err() {
        OpenError::Layout {
            field,
            found,
            expected,
            ..
        } => assert_eq!((field, found, expected), ("top_size", 128, 64)),
        other => panic!("expected a layout error, got {other:?}"),
    }
    set_word(&file, header::TOP_SIZE, 64);
    Reader::open(&file).expect("restored");
    // Levels beyond the maximum.
    set_word(&file, header::LEVELS, 5000);
    assert!(matches!(
        Reader::open(&file),
        Err(OpenError::Layout {
            field: "levels",
            ..
        })
    ));
    set_word(&file, header::LEVELS, 20);
    // A file longer than its header says is not this layout either.
    set_word(&file, header::FILE_SIZE, 4096);
    assert!(matches!(Reader::open(&file), Err(OpenError::Layout { .. })));
}

//! A user's file is the configured mode, owner and group, so the kernel refuses it to other
//! OS accounts. Run as root (as CI is), the test also opens the files as other accounts,
//! a process started with another uid and gid, and checks the kernel's answer: refused
//! without the group, allowed with it, and the market file (0644) readable by anyone.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use tape_shm::{MarketOptions, ShmDir, UserOptions, UserReader};

fn euid_egid() -> (u32, u32) {
    let m = std::fs::metadata("/proc/self").expect("procfs");
    (m.uid(), m.gid())
}

/// Opens `path` for reading as `uid`:`gid` (no supplementary groups), in a child process.
fn can_read_as(path: &Path, uid: u32, gid: u32) -> bool {
    Command::new("head")
        .args(["-c", "8"])
        .arg(path)
        .uid(uid)
        .gid(gid)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("head runs")
        .success()
}

#[test]
fn user_files_have_the_configured_mode_and_group_and_other_accounts_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // Other accounts may traverse the directories (so only the files' modes decide).
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = tmp.path().join("shm");
    let dir = ShmDir::open(&path).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().mode() & 0o7777,
        0o755,
        "a directory tape makes lets readers reach the files, whatever the umask"
    );
    let (uid, gid) = euid_egid();

    let _m = dir.create_market(&MarketOptions::default()).unwrap();
    let market = path.join("market.shm");
    let alice = dir.create_user("alice", &UserOptions::default()).unwrap();
    let meta = std::fs::metadata(alice.path()).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o600, "default user mode");
    assert_eq!((meta.uid(), meta.gid()), (uid, gid), "owned by the engine");
    assert_eq!(
        std::fs::metadata(&market).unwrap().mode() & 0o7777,
        0o644,
        "market mode"
    );
    UserReader::open(alice.path()).expect("the engine's account reads its files");

    // A group file: 0640 to a group. As root, any group; otherwise one of ours.
    let group = if uid == 0 { 4242 } else { gid };
    let bob = dir
        .create_user(
            "bob",
            &UserOptions {
                mode: 0o640,
                group: Some(group),
                ..UserOptions::default()
            },
        )
        .unwrap();
    let meta = std::fs::metadata(bob.path()).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert_eq!(meta.gid(), group);

    if uid != 0 {
        eprintln!("not root: another account cannot be tried; modes and owners checked");
        return;
    }
    // Accounts that exist nowhere but in the kernel's checks.
    let (other, member) = ((4243, 4243), (4244, group));
    assert!(
        can_read_as(&market, other.0, other.1),
        "control: another account reads the 0644 market file (else this test proves nothing)"
    );
    assert!(
        !can_read_as(alice.path(), other.0, other.1),
        "another account is refused alice's 0600 file by the kernel"
    );
    assert!(
        !can_read_as(bob.path(), other.0, other.1),
        "an account outside the group is refused bob's 0640 file"
    );
    assert!(
        can_read_as(bob.path(), member.0, member.1),
        "an account in bob's group reads his 0640 file"
    );
}

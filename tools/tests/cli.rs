//! The `tape` binary's contract: clear one-line errors, dump, and verify catching damage.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use support::{root, tape};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `tape import --format hftbacktest SRC -o OUT`.
/// A successful `replay --json`'s summary.
fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("replay --json prints JSON")
}

fn import_hft(src: &Path, out: &Path) -> Output {
    tape(&[
        "import",
        "--format",
        "hftbacktest",
        src.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ])
}

fn eth_slice() -> PathBuf {
    root().join("fixtures/hftbacktest/spot_ethusdt_20240808.first1000lines.txt")
}

fn small_journal(dir: &Path) -> PathBuf {
    let out = dir.join("j");
    let o = import_hft(&eth_slice(), &out);
    assert!(o.status.success(), "{}", stderr(&o));
    out
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn bad_paths_give_one_line_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    for args in [
        vec!["replay", missing.to_str().unwrap()],
        vec!["dump", missing.to_str().unwrap()],
        vec!["verify", missing.to_str().unwrap()],
    ] {
        let o = tape(&args);
        assert!(!o.status.success(), "{args:?} should fail");
        let err = stderr(&o);
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line: {err}"
        );
        assert!(err.contains("nope"), "{args:?}: names the path: {err}");
    }
    let o = import_hft(&missing, &tmp.path().join("out"));
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "import: one line: {err}");
    assert!(err.contains("nope"), "import names the path: {err}");
}

#[test]
fn unknown_format_and_unknown_market_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let o = tape(&["import", "--format", "parquet", "x", "-o", "y"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("parquet"), "{}", stderr(&o));

    // A capture whose name does not tell the market.
    let f = tmp.path().join("capture.txt");
    std::fs::write(&f, "1 {\"stream\":\"btcusdt@trade\",\"data\":{}}\n").unwrap();
    let o = import_hft(&f, &tmp.path().join("o"));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--market"), "{}", stderr(&o));

    // A malformed line is reported with its line number.
    let f = tmp.path().join("spot_bad.txt");
    std::fs::write(&f, "1 {}\nnot-a-timestamp {}\n").unwrap();
    let o = import_hft(&f, &tmp.path().join("o2"));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("spot_bad.txt:2"), "{}", stderr(&o));
}

/// An edge's feed is the origin's log: `tape edge` takes no flag of a feed it does not have.
#[test]
fn edge_refuses_the_flags_of_a_feed_it_does_not_have() {
    for flag in ["--journal", "--speed", "--once", "--echo-path"] {
        let o = tape(&["edge", flag, "1"]);
        assert!(!o.status.success(), "{flag}");
        assert!(
            stderr(&o).contains(&format!("unexpected argument '{flag}'")),
            "{flag}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn import_refuses_to_overwrite_a_journal() {
    let tmp = tempfile::tempdir().unwrap();
    let j = small_journal(tmp.path());
    let o = import_hft(&eth_slice(), &j);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
}

#[test]
fn dump_prints_every_record_and_seeks() {
    let tmp = tempfile::tempdir().unwrap();
    let j = small_journal(tmp.path());
    let o = tape(&["dump", "--json", j.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 2 source definitions + 1000 captured lines.
    assert_eq!(lines.len(), 1002);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["seq"], i as u64);
    }
    assert_eq!(lines[0]["kind"], "source_def");
    assert!(lines
        .iter()
        .any(|l| l["kind"] == "rest_snapshot"
            && l["payload"].as_str().unwrap().contains("lastUpdateId")));

    let o = tape(&["dump", "--from", "500", "--limit", "3", j.to_str().unwrap()]);
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    let seqs: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(seqs, ["500", "501", "502"]);
}

#[test]
fn verify_passes_a_clean_journal_and_catches_a_flipped_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let j = small_journal(tmp.path());
    let o = tape(&["verify", j.to_str().unwrap()]);
    assert!(o.status.success(), "clean journal verifies: {}", stderr(&o));

    // Flip one byte inside a payload in the middle of the journal.
    let seg = segment_files(&j).into_iter().next().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let needle = b"\"depthUpdate\"";
    let hits: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    let at = hits[hits.len() / 2] + 3;
    bytes[at] ^= 0x20;
    std::fs::write(&seg, &bytes).unwrap();
    let o = tape(&["verify", j.to_str().unwrap()]);
    assert!(!o.status.success(), "damage must fail verify");
    let out = String::from_utf8_lossy(&o.stdout).to_lowercase();
    assert!(out.contains("checksum") || out.contains("corrupt"), "{out}");
}

#[test]
fn replay_latency_prints_stage_percentiles_and_keeps_the_digest() {
    let session = root().join("fixtures/session");
    let session = session.to_str().unwrap();
    let plain = json(&tape(&["replay", "--json", session]));
    assert!(
        plain.get("latency").is_none(),
        "plain replay has no latency: {plain:#}"
    );
    // ~28 s of recorded time at 50x: about 0.6 s.
    let timed = json(&tape(&[
        "replay",
        "--latency",
        "--speed",
        "50",
        "--json",
        session,
    ]));
    assert_eq!(timed["digest"], plain["digest"]);
    let lat = &timed["latency"];
    assert_eq!(lat["speed"], 50, "{lat:#}");
    for stage in ["decode", "apply", "due_to_applied"] {
        let s = &lat[stage];
        assert!(s["count"].as_u64().unwrap() > 0, "{stage}: {s}");
        let ps: Vec<u64> = ["p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"]
            .iter()
            .map(|k| s[k].as_u64().unwrap_or_else(|| panic!("{stage}.{k}: {s}")))
            .collect();
        assert!(
            ps[0] > 0 && ps.windows(2).all(|w| w[0] <= w[1]),
            "{stage}: {s}"
        );
    }
    // Paced, not as fast as possible: the records span ~28 s, so at least ~0.5 s.
    let span_s = (timed["last_recv_ns"].as_u64().unwrap()
        - timed["first_recv_ns"].as_u64().unwrap()) as f64
        / 1e9;
    let elapsed = timed["elapsed_secs"].as_f64().unwrap();
    assert!(
        elapsed >= span_s / 50.0 * 0.95,
        "{elapsed} s for {span_s} s at 50x"
    );

    // The human output adds the table after the summary.
    let o = tape(&["replay", "--latency", "--speed", "0", session]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let tail = &out[out.find("digest").expect("digest line")..];
    for word in [
        "latency",
        "as fast as possible",
        "p99.9",
        "decode",
        "apply",
        "due_to_applied",
    ] {
        assert!(tail.contains(word), "{word} after the digest: {out}");
    }

    // --speed means nothing without --latency.
    let o = tape(&["replay", "--speed", "2", session]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--latency"), "{}", stderr(&o));
}

#[test]
fn replay_threads_picks_one_or_two_and_keeps_the_digest() {
    let session = root().join("fixtures/session");
    let session = session.to_str().unwrap();
    let one = json(&tape(&["replay", "--threads", "1", "--json", session]));
    let two = json(&tape(&["replay", "--threads", "2", "--json", session]));
    assert_eq!(one["threads"], 1, "{one:#}");
    assert_eq!(two["threads"], 2, "{two:#}");
    assert_eq!(one["digest"], "58624847cad61891");
    assert_eq!(two["digest"], one["digest"]);
    assert_eq!(two["outputs"], one["outputs"]);
    // --latency times each record on one thread, whatever --threads says.
    let timed = json(&tape(&[
        "replay",
        "--latency",
        "--speed",
        "0",
        "--threads",
        "2",
        "--json",
        session,
    ]));
    assert_eq!(timed["threads"], 1);
    assert_eq!(timed["digest"], one["digest"]);
    // The human summary says how many.
    let o = tape(&["replay", "--threads", "2", session]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains(", 2 threads)"));
    for bad in ["0", "3", "two"] {
        let o = tape(&["replay", "--threads", bad, session]);
        assert!(!o.status.success(), "--threads {bad}");
        assert!(stderr(&o).contains("--threads"), "{}", stderr(&o));
    }
}

#[test]
fn token_mints_a_jwt_the_configured_authenticator_accepts() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("tape.toml");
    std::fs::write(
        &cfg,
        "[auth]\nsecret = \"a-secret-for-the-cli-test-of-32-bytes-or-more\"\n\
         [[user]]\nname = \"alice\"\nroles = [\"trader\"]\n",
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let out = tape(&[
        "token",
        "--config",
        c,
        "--user",
        "alice",
        "--ttl-secs",
        "60",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = String::from_utf8(out.stdout).unwrap();
    let auth = tape_tools::config::Config::load(&cfg)
        .unwrap()
        .auth_config()
        .unwrap()
        .unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let p = tape_core::auth::Authenticator::new(auth)
        .unwrap()
        .verify(token.trim(), now_ms)
        .unwrap();
    assert!(p.roles.contains(tape_core::auth::Role::Trader));
    // An unknown user is an error naming it.
    let out = tape(&["token", "--config", c, "--user", "mallory"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("mallory"), "{}", stderr(&out));
}

/// Every file of a journal directory (the lock file aside) with its bytes.
fn journal_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.ends_with("LOCK"))
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    v
}

/// A synthetic journal of several 1 MiB segments.
fn multi_segment_journal(dir: &Path) -> PathBuf {
    let j = dir.join("synth");
    let o = tape(&[
        "synth",
        "--out",
        j.to_str().unwrap(),
        "--secs",
        "6",
        "--rate",
        "2000",
        "--segment-mib",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(segment_files(&j).len() >= 3, "want several segments");
    j
}

fn replayed_records(o: &Output) -> u64 {
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out.lines().find(|l| l.starts_with("records")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A flipped byte in the middle of the first segment: every command says so, none drops a
/// record on its own, `tape record` refuses to append, and only `tape repair` changes the
/// journal, moving what follows the damage into the quarantine.
#[test]
fn damaged_journal_is_refused_everywhere_until_an_explicit_repair() {
    let tmp = tempfile::tempdir().unwrap();
    let j = multi_segment_journal(tmp.path());
    let js = j.to_str().unwrap();
    let clean = tape(&["replay", js]);
    assert!(clean.status.success(), "{}", stderr(&clean));
    let all = replayed_records(&clean);

    let first = segment_files(&j).into_iter().next().unwrap();
    let mut bytes = std::fs::read(&first).unwrap();
    let mid = bytes.iter().rposition(|&b| b != 0).unwrap() / 2;
    bytes[mid] ^= 0x08;
    std::fs::write(&first, &bytes).unwrap();
    let damaged = journal_files(&j);

    let o = tape(&["verify", js]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("corrupt"));
    assert!(stderr(&o).contains("tape repair"), "{}", stderr(&o));

    let o = tape(&["replay", js]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains(first.file_name().unwrap().to_str().unwrap()),
        "{err}"
    );
    assert!(
        err.contains("--allow-damaged") && err.contains("tape repair"),
        "{err}"
    );

    let o = tape(&["replay", "--allow-damaged", js]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let prefix = replayed_records(&o);
    assert!(prefix > 0 && prefix < all, "{prefix} of {all}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("stopped   at damage"));

    let o = tape(&["dump", js]);
    assert!(!o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().count() as u64,
        prefix
    );

    // A recorder restarted on it refuses and touches nothing.
    let o = tape(&["record", "--out", js, "--exit-after", "5"]);
    assert!(!o.status.success(), "record must refuse a damaged journal");
    assert!(stderr(&o).contains("tape repair"), "{}", stderr(&o));
    assert_eq!(journal_files(&j), damaged, "a refused open changes nothing");

    let o = tape(&["repair", js]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!("kept: {prefix} record(s)")), "{out}");
    assert!(out.contains("nothing was deleted"), "{out}");
    let quarantine = std::fs::read_dir(j.join("quarantine"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let moved: u64 = std::fs::read_dir(&quarantine)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(moved > 0);

    let o = tape(&["verify", js]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let o = tape(&["replay", js]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(replayed_records(&o), prefix);
}

/// A journal whose first segment was deleted is damage (it used to verify clean while every
/// record failed with unknown_source), and repair will not bless it.
#[test]
fn missing_first_segment_is_damage_that_repair_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let j = multi_segment_journal(tmp.path());
    let js = j.to_str().unwrap();
    std::fs::remove_file(&segment_files(&j)[0]).unwrap();
    let o = tape(&["verify", js]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("segment(s) before it are missing"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = tape(&["replay", js]);
    assert!(!o.status.success());
    let o = tape(&["repair", js]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("restore"), "{}", stderr(&o));
}

#[test]
fn a_legacy_usdm_ws_url_runs_routed_with_a_warning_and_a_class_url_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // Nothing listens there: the run only has to start, print and stop.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let venue = |ws: &str| {
        format!(
            "[[venue]]\nname = \"f\"\nmarket = \"usdm\"\nws_url = \"{ws}\"\n\
             rest_url = \"https://127.0.0.1:{port}\"\nsymbols = [\"BTCUSDT\"]\n\
             streams = [\"depth@100ms\", \"aggTrade\", \"ticker\"]\n"
        )
    };
    let cfg = tmp.path().join("legacy.toml");
    std::fs::write(&cfg, venue(&format!("wss://127.0.0.1:{port}/stream"))).unwrap();
    let out = tape(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--status-interval",
        "0",
        "--exit-after",
        "1",
    ]);
    let (err, so) = (
        stderr(&out),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    );
    assert!(out.status.success(), "{err}{so}");
    let base = format!("wss://127.0.0.1:{port}");
    assert!(
        err.contains("warning") && err.contains(&format!("write ws_url = \"{base}\"")),
        "{err}"
    );
    assert!(
        so.contains(&format!(
            "f {base}/public/stream?streams=btcusdt@depth@100ms"
        )) && so.contains(&format!(
            "f:market {base}/market/stream?streams=btcusdt@aggTrade/btcusdt@ticker"
        )),
        "{so}"
    );
    std::fs::write(&cfg, venue(&format!("{base}/public/stream"))).unwrap();
    let out = tape(&["run", "--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("write ws_url = \"{base}\"")),
        "{}",
        stderr(&out)
    );
}

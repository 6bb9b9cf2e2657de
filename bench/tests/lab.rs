//! `lab` runs a scenario against tape and the tokio-tungstenite peer by itself and prints
//! both rows, the peer ratios and the medians as JSON.

use std::process::Command;
use std::time::Duration;

#[test]
fn lab_measures_tape_and_the_peer_in_one_run() {
    let out = Command::new(env!("CARGO_BIN_EXE_lab"))
        // Blocking, so the engine does not take a core from the tests running beside it.
        .args(["--runs", "1", "--seconds", "1", "--block", "200x5"])
        .output()
        .expect("lab runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("| 0.2k | tape | 5 |"), "{stdout}");
    assert!(
        stdout.contains("| 0.2k | tokio-tungstenite | 5 |"),
        "{stdout}"
    );
    assert!(stdout.contains("| 0.2k | peer / tape | 5 |"), "{stdout}");
    let medians: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a JSON line")).expect("JSON medians");
    let medians = medians.as_array().expect("one entry per server");
    assert_eq!(medians.len(), 2, "{stdout}");
    for m in medians {
        assert_eq!(m["clients"], 5, "{m}");
        // Both servers took in frames, never faster than the 200 frames/s session is paced
        // (how far below depends on how loaded the machine is: not asserted), and every
        // client got messages stamped with a receive time.
        let input = m["input_per_sec"].as_f64().expect("input rate");
        assert!(input > 0.0 && input < 400.0, "{m}");
        assert!(m["messages"].as_u64().expect("messages") > 0, "{m}");
        assert!(m["latency"]["count"].as_u64().expect("samples") > 0, "{m}");
        let p50 = Duration::from_nanos(m["latency"]["p50"].as_u64().expect("p50"));
        assert!(p50 < Duration::from_secs(30), "{m}");
    }
}

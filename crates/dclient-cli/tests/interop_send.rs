//! `dclient send` against DCMTK's storescp on loopback: exit statuses (0 all stored, 1 any
//! failed, 2 no path exists), one stderr line per failed file naming it and the reason
//! (status code, meaning and Error Comment when the peer refused), and the summary line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cli::Run;

use dclient_synth::{DatasetSpec, ImageSize, Syntax, Synth};
use dclient_testkit::{dcmtk_storescp, Peer, StoreScpOpts};

const RUN_BOUND: Duration = Duration::from_secs(60);

fn send(peer: &Peer, args: &[&Path], extra: &[&str]) -> Run {
    let mut cmd = cli::command();
    cmd.args(["send", "127.0.0.1", &peer.port.to_string(), "--host-ae", &peer.ae])
        .args(extra)
        .args(args);
    cli::run(&mut cmd, RUN_BOUND)
}

fn files(dir: &Path, n: usize) -> Vec<PathBuf> {
    let spec = DatasetSpec {
        studies: 1,
        instances_per_series: n,
        size: ImageSize::single(16, 16),
        syntax: Syntax::ExplicitLe,
        ..DatasetSpec::default()
    };
    Synth::from_entropy().generate(dir, &spec).unwrap().into_iter().map(|f| f.path).collect()
}

fn count_stored(peer: &Peer) -> usize {
    std::fs::read_dir(&peer.dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn folder_with_bad_files_exit_1_and_one_line_per_failed_file() {
    let peer = dcmtk_storescp(StoreScpOpts::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let good = files(tmp.path(), 5);
    // In the folder: a hidden file and a DICOMDIR-named file are skipped silently, a
    // non-DICOM file is skipped with a note; given by name, bad files are failures.
    std::fs::write(tmp.path().join(".hidden.dcm"), b"x").unwrap();
    std::fs::write(tmp.path().join("DICOMDIR"), b"x").unwrap();
    std::fs::write(tmp.path().join("readme.txt"), b"not DICOM").unwrap();
    let other = tempfile::tempdir().unwrap();
    let empty = other.path().join("empty.dcm");
    std::fs::write(&empty, b"").unwrap();
    let truncated = other.path().join("cut.dcm");
    let bytes = std::fs::read(&good[0]).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2 * 2 - 64]).unwrap();
    let missing = other.path().join("missing.dcm");

    let report = other.path().join("report.csv");
    let r = send(
        &peer,
        &[tmp.path(), &empty, &truncated, &missing],
        &["--report", report.to_str().unwrap()],
    );
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    assert!(r.elapsed < Duration::from_secs(10), "{}", r.describe());
    assert_eq!(count_stored(&peer), 5, "{}", r.describe());
    let err = r.stderr();
    let failed: Vec<&str> = err.lines().filter(|l| !l.contains("skipped")).collect();
    assert_eq!(failed.len(), 3, "one line per failed file:\n{}", r.describe());
    for (p, why) in [(&empty, "empty"), (&truncated, "truncated"), (&missing, "no such file")] {
        let line = failed
            .iter()
            .find(|l| l.contains(&p.display().to_string()))
            .unwrap_or_else(|| panic!("no line for {}:\n{}", p.display(), r.describe()));
        assert!(line.contains(why), "{line}");
    }
    assert!(err.contains("readme.txt: skipped: not a DICOM file"), "{}", r.describe());
    assert!(!err.contains("hidden") && !err.contains("DICOMDIR"), "{}", r.describe());
    assert!(r.stdout().starts_with("sent 5 of 8 files ("), "{}", r.describe());
    assert!(r.stdout().contains("; 3 failed; 1 skipped"), "{}", r.describe());

    // The report: a header, then one row per file with its outcome.
    let csv = std::fs::read_to_string(&report).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows[0],
        ["path", "outcome", "status", "sop_instance_uid", "transfer_syntax", "bytes", "detail"]
    );
    assert_eq!(rows.len(), 1 + 9, "{csv}");
    let row = |p: &Path| {
        let p = p.display().to_string();
        rows.iter().find(|r| r[0] == p).unwrap_or_else(|| panic!("no row for {p}:\n{csv}"))
    };
    for g in &good {
        let r = row(g);
        assert_eq!((r[1], r[2], r[4]), ("stored", "0000", "1.2.840.10008.1.2.1"), "{csv}");
        assert!(r[3].starts_with("2.25.") && r[5].parse::<u64>().unwrap() > 0, "{csv}");
    }
    for bad in [&empty, &truncated, &missing] {
        assert_eq!(row(bad)[1], "failed", "{csv}");
    }
    assert_eq!(row(&tmp.path().join("readme.txt"))[1], "skipped", "{csv}");
}

#[test]
fn all_stored_exit_0_in_parallel_and_no_path_exit_2() {
    let peer = dcmtk_storescp(StoreScpOpts::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    files(tmp.path(), 6);
    let r = send(&peer, &[tmp.path()], &["--parallel", "3"]);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(r.stderr().trim().is_empty(), "{}", r.describe());
    assert!(r.stdout().starts_with("sent 6 of 6 files"), "{}", r.describe());
    assert_eq!(count_stored(&peer), 6);

    let nothing = tmp.path().join("nothing-here");
    let r = send(&peer, &[&nothing], &[]);
    assert_eq!(r.code(), Some(2), "{}", r.describe());
    assert!(r.stderr().contains("none of the given paths exists"), "{}", r.describe());
    assert_eq!(count_stored(&peer), 6);
}

#[test]
fn refusal_status_is_named_with_code_and_meaning() {
    let peer = dcmtk_storescp(StoreScpOpts::default()).unwrap();
    // storescp cannot write into a folder that is gone: it answers with a failure status.
    std::fs::remove_dir_all(&peer.dir).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let f = files(tmp.path(), 2);
    let r = send(&peer, &[tmp.path()], &[]);
    assert_eq!(r.code(), Some(1), "{}\n{}", r.describe(), peer.log_tail());
    let err = r.stderr();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.describe());
    for (line, p) in lines.iter().zip(&f) {
        assert!(line.contains(&p.display().to_string()), "{line}");
        assert!(line.contains("C-STORE failed: status 0x"), "{line}");
    }
    assert!(r.stdout().starts_with("sent 0 of 2 files"), "{}", r.describe());
}

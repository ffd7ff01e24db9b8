//! The CI use: warm an environment up for 10 s, archive it, restore it in a
//! later "job" in under a tenth of the warm-up, with its state intact
//! (examples/ci-snapshot.sh, the README's worked example).

mod common;
use common::*;

#[test]
fn a_warmed_environment_restores_from_its_archive_in_a_tenth_of_its_warm_up() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ci-snapshot.sh");
    let out = std::process::Command::new(script).args([RCKPT, "10"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    let warm = text.lines().find(|l| l.starts_with("WARM")).expect("no WARM line");
    let answer = text.lines().find(|l| l.starts_with("ANSWER")).expect("no ANSWER from the restored environment");
    // Same number of entries and the same checksum as before the snapshot.
    let w: Vec<&str> = warm.split_whitespace().collect();
    let a: Vec<&str> = answer.split_whitespace().collect();
    assert_eq!((w[3], w[5]), (a[1], a[2]), "{text}");
    let pct: f64 =
        text.lines().find_map(|l| l.split('(').nth(1)?.split('%').next()?.parse().ok()).expect("no timing line");
    assert!(pct < 10.0, "restore took {pct}% of the warm-up: {text}");
    eprintln!("{}", text.lines().last().unwrap_or_default());
}

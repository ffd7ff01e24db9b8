//! The tool around dump and restore: `show --json`, `show --diff`, archives
//! (`--archive FILE` and `-` through a pipe, a damaged one refused), the log
//! file, completions and help.

mod common;
use common::*;

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

fn show_json(args: &[&str]) -> Value {
    let mut all = vec!["show", "--json"];
    all.extend_from_slice(args);
    let (st, out, err) = rckpt(&all, &[]);
    assert!(st.success(), "rckpt {all:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Every entry of a (small) directory.
fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn show_json_names_every_task_of_a_tree() {
    let mut w = Workload::spawn("tree", &[]);
    let pids = tree_pids(w.pid);
    let img = TempDir::new("tool-json");
    dump_ok(w.pid, img.path(), &["--leave-running"]);
    let doc = show_json(&["-D", img.path().to_str().unwrap()]);
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["image"]["root_pid"], w.pid);
    assert_eq!(doc["image"]["rckpt_version"], env!("CARGO_PKG_VERSION"));
    let tasks = doc["tasks"].as_array().unwrap();
    let mut saved: Vec<i64> = tasks.iter().map(|t| t["pid"].as_i64().unwrap()).collect();
    let mut live: Vec<i64> = pids.iter().map(|&p| p as i64).collect();
    saved.sort();
    live.sort();
    assert_eq!(saved, live, "{doc:#}");
    assert_eq!(tasks[0]["pid"], w.pid, "the root comes first");
    for t in tasks {
        assert_eq!(t["comm"], "tree", "{t:#}");
        assert_eq!(t["state"], "running");
        assert_eq!(t["threads"][0]["tid"], t["pid"]);
        assert!(t["mm"]["vmas"].as_u64().unwrap() > 3, "{t:#}");
        assert!(t["mm"]["saved_bytes"].as_u64().unwrap() + t["mm"]["parent_shared_bytes"].as_u64().unwrap() > 0);
        // Every key is there in every task, null or not.
        for k in ["ppid", "pgid", "sid", "stop_signal", "exit_status", "exe", "cwd", "fds", "signals"] {
            assert!(t.get(k).is_some(), "task without {k}: {t:#}");
        }
    }
    // Its stdout is the test's pipe: an external, used by the root's fd 1.
    let key = format!("pipe:[{}]", w.stdout_ino);
    let ext = doc["externals"].as_array().unwrap().iter().find(|e| e["key"] == key.as_str()).expect("stdout external");
    assert_eq!(ext["kind"], "pipe");
    let fd1 = tasks[0]["fds"].as_array().unwrap().iter().find(|f| f["fd"] == 1).unwrap();
    assert_eq!(fd1["kind"], "external");
    assert_eq!(fd1["path"], key.as_str());
    trigger_tree(w.pid);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn show_describes_zombies_and_threads() {
    let mut w = Workload::spawn("zombies", &[]);
    let img = TempDir::new("tool-zombies");
    dump_ok(w.pid, img.path(), &["--leave-running"]);
    let (st, text, err) = rckpt(&["show", "-D", img.path().to_str().unwrap()], &[]);
    assert!(st.success(), "{err}");
    assert!(text.contains("zombie, exit code") || text.contains("zombie, killed by"), "{text}");
    let doc = show_json(&["-D", img.path().to_str().unwrap()]);
    let zombie = doc["tasks"].as_array().unwrap().iter().find(|t| t["state"] == "zombie").expect("a zombie");
    assert!(zombie["exit_status"].is_i64() && zombie["comm"].is_null() && zombie["mm"].is_null(), "{zombie:#}");
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);

    let mut w = Workload::spawn("threads", &["3"]);
    let img = TempDir::new("tool-threads");
    dump_ok(w.pid, img.path(), &["--leave-running"]);
    let doc = show_json(&["-D", img.path().to_str().unwrap()]);
    assert_eq!(doc["tasks"][0]["threads"].as_array().unwrap().len(), 4, "{:#}", doc["tasks"][0]["threads"]);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn show_diff_reports_what_changed_between_two_moments() {
    let mut w = Workload::spawn("counter", &[]);
    let (a, b) = (TempDir::new("tool-diff-a"), TempDir::new("tool-diff-b"));
    dump_ok(w.pid, a.path(), &["--leave-running"]);
    // The counter ticks every millisecond, in memory.
    std::thread::sleep(Duration::from_millis(50));
    dump_ok(w.pid, b.path(), &["--leave-running"]);
    let (pa, pb) = (a.path().to_str().unwrap(), b.path().to_str().unwrap());

    let doc = show_json(&["--diff", pa, pb]);
    assert_eq!(doc["identical"], false, "{doc:#}");
    assert!(doc["tasks_added"].as_array().unwrap().is_empty() && doc["tasks_removed"].as_array().unwrap().is_empty());
    let changed = doc["tasks_changed"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{doc:#}");
    assert_eq!(changed[0]["pid"], w.pid);
    let pages = changed[0]["changes"].as_array().unwrap().iter().find(|c| c["what"] == "pages").expect("pages changed");
    assert!(pages["after"]["bytes"].as_u64().unwrap() >= 4096, "{pages:#}");

    let (st, text, err) = rckpt(&["show", "--diff", pa, pb], &[]);
    assert!(st.success(), "{err}");
    assert!(
        text.contains(&format!("task {} \"counter\":", w.pid)) && text.contains("pages: content differs"),
        "{text}"
    );

    // An image against itself.
    let same = show_json(&["--diff", pa, pa]);
    assert_eq!(same["identical"], true, "{same:#}");
    let (_, text, _) = rckpt(&["show", "--diff", pa, pa], &[]);
    assert!(text.contains("no differences"), "{text}");
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn show_diff_reports_tasks_added_and_removed() {
    let mut w = Workload::spawn("counter", &[]);
    let mut t = Workload::spawn("tree", &[]);
    let (a, b) = (TempDir::new("tool-diff-c"), TempDir::new("tool-diff-t"));
    dump_ok(w.pid, a.path(), &["--leave-running"]);
    dump_ok(t.pid, b.path(), &["--leave-running"]);
    let doc = show_json(&["--diff", a.path().to_str().unwrap(), b.path().to_str().unwrap()]);
    assert_eq!(doc["tasks_removed"][0]["pid"], w.pid, "{doc:#}");
    assert_eq!(doc["tasks_added"].as_array().unwrap().len(), 5, "{doc:#}");
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
    trigger_tree(t.pid);
    let (st, lines) = t.trigger_and_finish();
    assert_passed(st, &lines);
}

/// A private $TMPDIR, where restore unpacks archives.
fn tmpdir(tag: &str) -> TempDir {
    let d = TempDir::new(tag);
    std::fs::create_dir_all(d.path()).unwrap();
    d
}

/// A foreground `rckpt restore --archive SRC` whose stdout serves the
/// workload's, started with `stdin` (the archive for `-`).
fn restore_archive(src: &str, w: &Workload, stdin: Stdio, tmp: &Path) -> (Child, Lines, Lines) {
    let mut child = Command::new(RCKPT)
        .args(["restore", "-v", "--archive", src, "--inherit-fd", &w.inherit_stdout()])
        .env("TMPDIR", tmp)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Lines::new(child.stdout.take().unwrap());
    let err = Lines::new(child.stderr.take().unwrap());
    (child, out, err)
}

/// Waits until the restored task is released, triggers it, and returns how rckpt
/// (passing the workload's status through) ended and what it printed.
fn finish(mut child: Child, mut out: Lines, mut err: Lines, pid: i32) -> (ExitStatus, Vec<String>) {
    let l = err.wait_for("rckpt: restored ", Duration::from_secs(60));
    assert_eq!(l.trim_start_matches("rckpt: restored ").trim().parse::<i32>().unwrap(), pid);
    signal(pid, libc::SIGUSR2);
    let st = wait_child(&mut child, Duration::from_secs(60));
    if st.is_none() {
        signal(pid, libc::SIGKILL);
    }
    (st.expect("the restored workload did not finish"), out.drain(Duration::from_secs(2)).to_vec())
}

#[test]
fn an_archive_round_trip_restores_the_workload() {
    let mut w = Workload::spawn("counter", &[]);
    let dir = TempDir::new("tool-archive");
    std::fs::create_dir_all(dir.path()).unwrap();
    let file = dir.file("counter.rckpt");
    let log = dir.file("dump.log");
    let pid = w.pid.to_string();
    let (st, _, err) =
        rckpt(&["dump", "-t", &pid, "--archive", file.to_str().unwrap(), "--log-file", log.to_str().unwrap()], &[]);
    assert!(st.success(), "{err}");
    w.wait_gone();
    // Only the archive is left beside it: no partial file, no private image.
    let mut left = entries(dir.path());
    left.sort();
    assert_eq!(left, ["counter.rckpt", "dump.log"]);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("dumping 1 task(s)") && log.contains(&format!("task {pid}: done")), "{log}");

    // It shows like a directory.
    let doc = show_json(&["--archive", file.to_str().unwrap()]);
    assert_eq!(doc["tasks"][0]["comm"], "counter");

    let tmp = tmpdir("tool-archive-tmp");
    let (child, out, err) = restore_archive(file.to_str().unwrap(), &w, Stdio::null(), tmp.path());
    let (st, lines) = finish(child, out, err, w.pid);
    assert_passed(st, &lines);
    assert!(entries(tmp.path()).is_empty(), "restore left {:?} in its TMPDIR", entries(tmp.path()));
}

#[test]
fn an_archive_streams_from_dump_to_restore_through_a_pipe() {
    let mut w = Workload::spawn("counter", &[]);
    let pid = w.pid.to_string();
    let mut dump = Command::new(RCKPT)
        .args(["dump", "-t", &pid, "--archive", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pipe = Stdio::from(dump.stdout.take().unwrap());
    let tmp = tmpdir("tool-pipe-tmp");
    let (child, out, err) = restore_archive("-", &w, pipe, tmp.path());
    let st = wait_child(&mut dump, Duration::from_secs(60)).expect("dump did not finish");
    assert!(st.success(), "dump --archive - failed: {st:?}");
    w.wait_gone();
    let (st, lines) = finish(child, out, err, w.pid);
    assert_passed(st, &lines);
    assert!(entries(tmp.path()).is_empty(), "restore left {:?} in its TMPDIR", entries(tmp.path()));
}

#[test]
fn a_damaged_archive_is_refused_with_65_before_anything_is_created() {
    let mut w = Workload::spawn("counter", &[]);
    let dir = TempDir::new("tool-damaged");
    std::fs::create_dir_all(dir.path()).unwrap();
    let file = dir.file("counter.rckpt");
    let pid = w.pid.to_string();
    let (st, _, err) = rckpt(&["dump", "-t", &pid, "--archive", file.to_str().unwrap()], &[]);
    assert!(st.success(), "{err}");
    w.wait_gone();
    let good = std::fs::read(&file).unwrap();
    let tmp = tmpdir("tool-damaged-tmp");
    let tmp_env = [("TMPDIR", tmp.path().to_str().unwrap())];
    let inherit = w.inherit_stdout();
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for at in [good.len() / 3, good.len() / 2, good.len() - 2] {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        cases.push((format!("a byte flipped at {at}"), bad));
    }
    cases.push(("cut short".into(), good[..good.len() - 100].to_vec()));
    for (what, bytes) in cases {
        let bad = dir.file("bad.rckpt");
        std::fs::write(&bad, &bytes).unwrap();
        let (st, _, err) =
            rckpt(&["restore", "-d", "--archive", bad.to_str().unwrap(), "--inherit-fd", &inherit], &tmp_env);
        assert_eq!(st.code(), Some(65), "{what}: {err}");
        assert!(err.contains("damaged"), "{what}: {err}");
        assert!(!Path::new(&format!("/proc/{}", w.pid)).exists(), "{what}: a process was created");
        assert!(entries(tmp.path()).is_empty(), "{what}: left {:?}", entries(tmp.path()));
    }
    // Not an archive at all, and no archive.
    let junk = dir.file("junk");
    std::fs::write(&junk, b"not an archive").unwrap();
    let (st, _, err) = rckpt(&["restore", "--archive", junk.to_str().unwrap()], &tmp_env);
    assert_eq!(st.code(), Some(65), "{err}");
    let (st, _, err) = rckpt(&["restore", "--archive", dir.file("none").to_str().unwrap()], &tmp_env);
    assert_eq!(st.code(), Some(66), "{err}");
    // The good one still restores.
    let (child, out, err) = restore_archive(file.to_str().unwrap(), &w, Stdio::null(), tmp.path());
    let (st, lines) = finish(child, out, err, w.pid);
    assert_passed(st, &lines);
}

#[test]
fn dump_refuses_an_existing_archive_before_touching_the_tree() {
    let mut w = Workload::spawn("counter", &[]);
    let dir = TempDir::new("tool-exists");
    std::fs::create_dir_all(dir.path()).unwrap();
    let file = dir.file("there.rckpt");
    std::fs::write(&file, b"keep me").unwrap();
    let (st, _, err) = rckpt(&["dump", "-t", &w.pid.to_string(), "--archive", file.to_str().unwrap()], &[]);
    assert_eq!(st.code(), Some(64), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    assert_eq!(entries(dir.path()), ["there.rckpt"]);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn completions_and_help_with_examples() {
    let (st, out, err) = rckpt(&["completions", "bash"], &[]);
    assert!(st.success(), "{err}");
    assert!(out.contains("_rckpt()") && out.contains("complete -F _rckpt"), "{out}");
    assert!(out.contains("--archive") && out.contains("--images-dir"), "{out}");
    for shell in ["zsh", "fish"] {
        let (st, out, err) = rckpt(&["completions", shell], &[]);
        assert!(st.success() && out.contains("rckpt"), "{shell}: {err}");
    }
    let (st, _, _) = rckpt(&["completions", "tcsh"], &[]);
    assert_eq!(st.code(), Some(64));
    for cmd in ["dump", "restore", "show", "check", "demo", "completions"] {
        let (st, out, _) = rckpt(&[cmd, "--help"], &[]);
        assert!(st.success() && out.contains("Example"), "{cmd} --help: {out}");
    }
    let (st, _, err) = rckpt(&["restore", "-D", "/tmp/x", "--archive", "/tmp/y"], &[]);
    assert_eq!(st.code(), Some(64), "{err}");
    let (st, _, err) = rckpt(&["show"], &[]);
    assert_eq!(st.code(), Some(64), "{err}");
}

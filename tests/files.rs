//! File mappings, open files, working directory and umask.

mod common;
use common::*;

#[test]
fn file_mappings_open_files_cwd_and_umask_survive() {
    let data = TempDir::new("files-data");
    std::fs::create_dir_all(data.path()).unwrap();
    let mut w = Workload::spawn("files", &[data.path().to_str().unwrap()]);
    let img = TempDir::new("files");
    let (st, lines) = cycle(&mut w, &img);
    assert_passed(st, &lines);
}

#[test]
fn file_state_survives_leave_running() {
    let data = TempDir::new("files-data-lr");
    std::fs::create_dir_all(data.path()).unwrap();
    let mut w = Workload::spawn("files", &[data.path().to_str().unwrap()]);
    let img = TempDir::new("files-lr");
    dump_ok(w.pid, img.path(), &["--leave-running"]);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

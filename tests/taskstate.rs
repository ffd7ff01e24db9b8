//! Credentials, limits and the other per-task settings.

mod common;
use common::*;

#[test]
fn credentials_limits_and_task_settings_survive() {
    let mut w = Workload::spawn("taskstate", &[]);
    let img = TempDir::new("taskstate");
    let (st, lines) = cycle(&mut w, &img);
    assert_passed(st, &lines);
}

#[test]
fn task_settings_survive_leave_running() {
    let mut w = Workload::spawn("taskstate", &[]);
    let img = TempDir::new("taskstate-lr");
    dump_ok(w.pid, img.path(), &["--leave-running"]);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

//! Tasks dumped while blocked in a system call resume it as the kernel would.

mod common;
use common::*;

fn restored(mode: &str) {
    let mut w = Workload::spawn("blocking", &[mode, "restored"]);
    wait_blocked(w.pid);
    let img = TempDir::new(&format!("blocking-{mode}"));
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    let mut r = Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()]);
    if mode == "nanosleep" {
        r.out.wait_for("NANOSLEEP EINTR", std::time::Duration::from_secs(10));
    } else {
        // Still waiting: nothing has woken it.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(alive(r.pid), "{mode}: the restored task ended before it was signalled");
    }
    let (st, lines) = r.trigger_and_finish();
    assert_passed(st, &lines);
}

fn running(mode: &str) {
    let mut w = Workload::spawn("blocking", &[mode, "running"]);
    wait_blocked(w.pid);
    let img = TempDir::new(&format!("blocking-lr-{mode}"));
    dump_ok(w.pid, img.path(), &["--leave-running"]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(alive(w.pid), "{mode}: the task ended after a --leave-running dump");
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn pause_keeps_waiting() {
    restored("pause");
    running("pause");
}

#[test]
fn sigsuspend_keeps_waiting_with_its_mask() {
    restored("sigsuspend");
    running("sigsuspend");
}

#[test]
fn futex_wait_keeps_waiting() {
    restored("futex");
    running("futex");
}

#[test]
fn nanosleep_returns_eintr_after_restore() {
    restored("nanosleep");
    running("nanosleep");
}

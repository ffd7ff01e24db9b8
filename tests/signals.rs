//! Signal dispositions, masks, pending and queued signals, the altstack and timers.

mod common;
use common::*;

#[test]
fn signal_state_and_timers_survive() {
    let mut w = Workload::spawn("signals", &[]);
    std::thread::sleep(std::time::Duration::from_millis(150));
    let img = TempDir::new("signals");
    let (st, lines) = cycle(&mut w, &img);
    assert_passed(st, &lines);
}

#[test]
fn signal_state_survives_leave_running() {
    let mut w = Workload::spawn("signals", &[]);
    let img = TempDir::new("signals-lr");
    dump_ok(w.pid, img.path(), &["--leave-running"]);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

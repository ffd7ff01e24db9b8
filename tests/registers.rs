//! Live vector and general registers, MXCSR and the x87 control word, held in a
//! spin loop across the checkpoint.

mod common;
use common::*;

#[test]
fn live_vector_registers_and_mxcsr_survive() {
    let mut w = Workload::spawn("regs", &[]);
    // Let it enter the spin loop with everything loaded.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let img = TempDir::new("regs");
    let (st, lines) = cycle(&mut w, &img);
    assert_passed(st, &lines);
}

#[test]
fn registers_survive_leave_running() {
    let mut w = Workload::spawn("regs", &[]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let img = TempDir::new("regs-lr");
    dump_ok(w.pid, img.path(), &["--leave-running"]);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

//! Pipes, sockets, FIFOs, event objects, shared memory and locks: each
//! workload checks, after restore, every byte and setting it had.

mod common;
use common::*;

fn dump_and_restore(w: &mut Workload, tag: &str, dump_args: &[&str]) -> Restore {
    let img = TempDir::new(tag);
    dump_ok(w.pid, img.path(), dump_args);
    w.wait_gone();
    let r = Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()]);
    assert_eq!(r.pid, w.pid);
    r
}

#[test]
fn pipes_sockets_fifo_and_a_shared_offset_keep_every_byte() {
    let data = TempDir::new("ipc-data");
    std::fs::create_dir_all(data.path()).unwrap();
    let mut w = Workload::spawn("ipc", &[data.path().to_str().unwrap()]);
    assert_eq!(tree_pids(w.pid).len(), 3);
    let mut r = dump_and_restore(&mut w, "ipc", &[]);
    trigger_tree(r.pid);
    let (st, lines) = r.finish();
    assert_passed(st, &lines);
}

#[test]
fn pipes_sockets_fifo_survive_leave_running() {
    let data = TempDir::new("ipc-data-lr");
    std::fs::create_dir_all(data.path()).unwrap();
    let mut w = Workload::spawn("ipc", &[data.path().to_str().unwrap()]);
    let img = TempDir::new("ipc-lr");
    dump_ok(w.pid, img.path(), &["--leave-running"]);
    trigger_tree(w.pid);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn event_objects_shared_memory_and_locks_keep_their_state() {
    let data = TempDir::new("events-data");
    std::fs::create_dir_all(data.path()).unwrap();
    let mut w = Workload::spawn("events", &[data.path().to_str().unwrap()]);
    let mut r = dump_and_restore(&mut w, "events", &["--file-locks"]);
    trigger_tree(r.pid);
    let (st, lines) = r.finish();
    assert_passed(st, &lines);
}

#[test]
fn a_held_lock_refuses_the_dump_without_file_locks() {
    let data = TempDir::new("events-data-nolocks");
    std::fs::create_dir_all(data.path()).unwrap();
    let mut w = Workload::spawn("events", &[data.path().to_str().unwrap()]);
    let img = TempDir::new("events-nolocks");
    let (st, err) = dump(w.pid, img.path(), &[]);
    assert_eq!(st.code(), Some(69), "{err}");
    assert!(err.contains("--file-locks") && err.contains(&w.pid.to_string()), "{err}");
    // Refused before anything was touched: every check still passes.
    trigger_tree(w.pid);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

#[test]
fn event_objects_shared_memory_and_locks_survive_leave_running() {
    let data = TempDir::new("events-data-lr");
    std::fs::create_dir_all(data.path()).unwrap();
    let mut w = Workload::spawn("events", &[data.path().to_str().unwrap()]);
    let img = TempDir::new("events-lr");
    dump_ok(w.pid, img.path(), &["--file-locks", "--leave-running"]);
    trigger_tree(w.pid);
    let (st, lines) = w.trigger_and_finish();
    assert_passed(st, &lines);
}

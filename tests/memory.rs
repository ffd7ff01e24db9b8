//! Memory of a single process: random anonymous memory, a sparse mapping, the brk
//! heap, read-only and PROT_NONE regions; and the size of the pages file.

mod common;
use common::*;

#[test]
fn memory_comes_back_intact_and_sparse_memory_costs_what_it_holds() {
    let mut w = Workload::spawn("memory", &[]);
    let touched = w.line_value("TOUCHED").unwrap();
    let img = TempDir::new("memory");
    dump_ok(w.pid, img.path(), &[]);
    w.wait_gone();
    let pages = std::fs::metadata(img.file(&format!("pages-{}.img", w.pid))).unwrap().len();
    // The 64 GiB sparse mapping holds 16 pages: the file follows what is resident
    // (libc's data and the stack add a little).
    assert!((pages as f64) <= 1.2 * touched as f64, "pages file is {pages} bytes for {touched} bytes touched");
    let mut r = Restore::spawn(img.path(), &["--inherit-fd", &w.inherit_stdout()]);
    assert_eq!(r.pid, w.pid);
    let (st, lines) = r.trigger_and_finish();
    assert_passed(st, &lines);
}

//! A counting global allocator: each binary of this crate installs [`Counting`],
//! and [`measure`] reports the peak of heap bytes the calling thread held during
//! a closure, above what it held before.
//!
//! Accounting is per thread (the drivers decode one input per thread at a time).
//! A `realloc` counts as the new block allocated before the old one is freed, as
//! when the allocator has to move it: the peak is an upper bound.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

pub struct Counting;

thread_local! {
    static CURRENT: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn grow(n: usize) {
    let _ = CURRENT.try_with(|c| {
        let v = c.get() + n as isize;
        c.set(v);
        let _ = PEAK.try_with(|p| {
            if v > p.get() {
                p.set(v);
            }
        });
    });
}

fn shrink(n: usize) {
    let _ = CURRENT.try_with(|c| c.set(c.get() - n as isize));
}

// SAFETY: every call is forwarded to the system allocator with the caller's
// arguments; the bookkeeping around it touches only const-initialised,
// destructor-free thread locals, which neither allocate nor unwind.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            grow(new_size);
            shrink(layout.size());
        }
        p
    }
}

thread_local! {
    static SECTION_MAX: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f` and returns its result and the peak number of heap bytes this thread
/// held during it beyond what it held when `f` started.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = CURRENT.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let r = f();
    let peak = PEAK.with(Cell::get);
    (r, (peak - base).max(0) as usize)
}

/// Runs `f`, a part of the reader's work inside the harness, measured: see
/// [`take_metered`].
pub fn metered<R>(f: impl FnOnce() -> R) -> R {
    let (r, peak) = measure(f);
    SECTION_MAX.with(|m| m.set(m.get().max(peak)));
    r
}

/// The largest peak of the [`metered`] sections since the last call.
pub fn take_metered() -> usize {
    SECTION_MAX.with(|m| m.replace(0))
}

const MIB: usize = 1 << 20;

/// The documented bound (README.md, "Allocation bound") on the heap that the
/// reader's work on one input (decoding, canonical re-encoding, validation) may
/// take, for an input of `len` bytes. Inputs are refused above the kind's cap
/// before anything is allocated, so at the cap this is
/// `ALLOC_PER_BYTE * (HEADER_LEN + Kind::body_cap()) + ALLOC_BASE`.
pub fn bound(len: usize) -> usize {
    ALLOC_BASE + ALLOC_PER_BYTE * len
}

/// Heap any input may take whatever its size. serde preallocates a sequence from
/// the length postcard reads, at most 1 MiB and (postcard 1.2) only when that
/// many bytes remain; sequences nest three deep (a core's threads, a thread's
/// pending signals, a signal's bytes; a files image's descriptions, a socket's
/// queue, a message's bytes).
pub const ALLOC_BASE: usize = 4 * MIB;

/// Heap per input byte. A list of the smallest elements decodes to
/// `size_of::<Element>() / encoded size` times its bytes: at most 38.4, a 5-byte
/// `FileDesc` being 192 bytes. A vector grown past its preallocation holds up to
/// twice its length, and while it grows the old and the new block coexist (a
/// `realloc` is counted as the copy it may be): up to 3 x 38.4 = 115 in all,
/// 96 measured (`--stress`). 128 allowed.
pub const ALLOC_PER_BYTE: usize = 128;

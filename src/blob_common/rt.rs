//! What a freestanding binary must provide: the mem* functions (the compiler emits
//! calls to them) and a panic handler.

#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges are valid and disjoint.
    unsafe { core::arch::asm!("rep movsb", inout("rcx") n => _, inout("rdi") d => _, inout("rsi") s => _, options(nostack, preserves_flags)) };
    d
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    if (d as usize) <= (s as usize) || (d as usize) >= (s as usize) + n {
        // SAFETY: forward copy is correct when the destination starts below the source.
        unsafe { memcpy(d, s, n) }
    } else {
        let mut i = n;
        while i > 0 {
            i -= 1;
            // SAFETY: inside both ranges, copied backwards for the overlap.
            unsafe { core::ptr::write_volatile(d.add(i), core::ptr::read_volatile(s.add(i))) };
        }
        d
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the range is valid.
    unsafe { core::arch::asm!("rep stosb", inout("rcx") n => _, inout("rdi") d => _, in("al") c as u8, options(nostack, preserves_flags)) };
    d
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: the caller guarantees both ranges are valid for n bytes.
        let (x, y) = unsafe { (core::ptr::read_volatile(a.add(i)), core::ptr::read_volatile(b.add(i))) };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // A blob cannot report a panic; stop the task where a tracer will see it.
    loop {
        // SAFETY: int3 raises SIGTRAP; then exit_group ends the task if ignored.
        unsafe {
            core::arch::asm!("int3");
            crate::common::sys::exit_group(127);
        }
    }
}

/// The prebuilt `core` refers to the unwinding personality even with panic=abort;
/// nothing unwinds in a blob, so it is never called.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

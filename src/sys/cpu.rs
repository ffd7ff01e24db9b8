//! XCR0: the XSAVE components the kernel has enabled.

/// XCR0, or 0 when the OS has not enabled XSAVE.
pub fn xcr0() -> u64 {
    if core::arch::x86_64::__cpuid(1).ecx & (1 << 27) == 0 {
        return 0;
    }
    #[target_feature(enable = "xsave")]
    fn read() -> u64 {
        // SAFETY: XGETBV with ECX = 0 is valid once OSXSAVE is set (checked).
        unsafe { core::arch::x86_64::_xgetbv(0) }
    }
    // SAFETY: the CPU has XSAVE enabled (OSXSAVE).
    unsafe { read() }
}

//! The XSAVE area (uncompacted, as PTRACE_GETREGSET NT_X86_XSTATE gives it).

/// Offset of `sw_reserved` (struct _fpx_sw_bytes) inside the legacy FXSAVE area.
pub const SW_BYTES_OFF: usize = 464;
pub const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
pub const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
pub const MAGIC2_SIZE: usize = 4;
/// x87 and SSE components.
pub const FP_SSE: u64 = 0x3;
/// Offset of MXCSR in the FXSAVE area.
pub const MXCSR_OFF: usize = 24;
/// Offset of the XSAVE header (xstate_bv).
pub const XSTATE_BV_OFF: usize = 512;

fn get_u64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// Which components hold non-initial state.
pub fn xstate_bv(xstate: &[u8]) -> u64 {
    get_u64(xstate, XSTATE_BV_OFF)
}

pub fn mxcsr(xstate: &[u8]) -> u32 {
    u32::from_le_bytes(xstate[MXCSR_OFF..MXCSR_OFF + 4].try_into().unwrap())
}

/// Fills `_fpx_sw_bytes` so that rt_sigreturn restores every component (without it
/// the kernel silently restores only FP/SSE).
pub fn write_sw_bytes(buf: &mut [u8], xstate_size: usize, xfeatures: u64) {
    let s = SW_BYTES_OFF;
    buf[s..s + 48].fill(0);
    buf[s..s + 4].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
    buf[s + 4..s + 8].copy_from_slice(&((xstate_size + MAGIC2_SIZE) as u32).to_le_bytes());
    buf[s + 8..s + 16].copy_from_slice(&xfeatures.to_le_bytes());
    buf[s + 16..s + 20].copy_from_slice(&(xstate_size as u32).to_le_bytes());
}

/// Size of the XSAVE area (uncompacted) for the features this CPU and kernel
/// enable: CPUID leaf 0xD, sub-leaf 0, EBX.
pub fn own_xstate_size() -> usize {
    core::arch::x86_64::__cpuid_count(0xd, 0).ebx as usize
}

//! The x86_64 `struct rt_sigframe` that rt_sigreturn consumes: built as bytes for
//! a given address, so it can be written into another address space.
//!
//! ```text
//! rt_sigframe: pretcode (8) | ucontext (304) | siginfo (128) | ... | fpstate (64-aligned)
//! ucontext:    uc_flags (8) | uc_link (8) | uc_stack (24) | sigcontext (256) | uc_sigmask (8)
//! ```
//! rt_sigreturn reads the frame at rsp - 8 (the handler's `ret` popped pretcode).

use rckpt_images::core::{AltStack, GpRegs};

use super::regs::{USER_CS, USER_DS};
use super::xstate;

pub const FRAME_LEN: usize = 8 + 304 + 128;
const UC: usize = 8;
const UC_STACK: usize = UC + 16;
const SC: usize = UC + 40;
const UC_SIGMASK: usize = SC + 256;

const UC_FP_XSTATE: u64 = 0x1;
const UC_SIGCONTEXT_SS: u64 = 0x2;
const UC_STRICT_RESTORE_SS: u64 = 0x4;

/// Red zone below rsp that signal delivery must not touch (System V ABI).
pub const RED_ZONE: u64 = 128;

/// A frame placed at `addr` with its fpstate at `addr + fp_off`.
pub struct Frame {
    pub addr: u64,
    pub bytes: Vec<u8>,
}

impl Frame {
    /// rsp for the rt_sigreturn that consumes this frame.
    pub fn sigreturn_rsp(&self) -> u64 {
        self.addr + 8
    }
}

/// Total bytes a frame with this xstate needs, including alignment slack.
pub fn frame_size(xstate_len: usize) -> u64 {
    (FRAME_LEN + 64 + xstate_len + xstate::MAGIC2_SIZE + 64) as u64
}

/// Where the kernel itself would put a frame below `rsp`: under the red zone,
/// fpstate 64-byte aligned, the frame 16-byte aligned minus 8 (as after a call).
pub fn place_below(rsp: u64, xstate_len: usize) -> (u64, u64) {
    let sp = rsp - RED_ZONE;
    let fp = (sp - (xstate_len + xstate::MAGIC2_SIZE) as u64) & !63;
    let frame = ((fp - FRAME_LEN as u64) & !15) - 8;
    (frame, fp)
}

/// Places the frame in a buffer area [area, area+len): fpstate first, 64-aligned.
pub fn place_in(area: u64) -> (u64, u64) {
    let frame = ((area + 15) & !15) + 8;
    let fp = (frame + FRAME_LEN as u64 + 63) & !63;
    (frame, fp)
}

fn put(buf: &mut [u8], off: usize, v: u64) {
    buf[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Builds the frame so that rt_sigreturn resumes `regs` (restart rules already
/// applied by the caller) with `xstate`, blocked mask `mask` and `altstack`.
pub fn build(
    frame_addr: u64,
    fp_addr: u64,
    regs: &GpRegs,
    xstate_bytes: &[u8],
    mask: u64,
    altstack: &AltStack,
) -> Frame {
    assert!(fp_addr % 64 == 0 && fp_addr >= frame_addr + FRAME_LEN as u64);
    let fp_off = (fp_addr - frame_addr) as usize;
    let total = fp_off + xstate_bytes.len() + xstate::MAGIC2_SIZE;
    let mut b = vec![0u8; total];
    put(&mut b, UC, UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS);
    put(&mut b, UC_STACK, altstack.sp);
    b[UC_STACK + 8..UC_STACK + 12].copy_from_slice(&altstack.flags.to_le_bytes());
    put(&mut b, UC_STACK + 16, altstack.size);
    let order = [
        regs.r8,
        regs.r9,
        regs.r10,
        regs.r11,
        regs.r12,
        regs.r13,
        regs.r14,
        regs.r15,
        regs.rdi,
        regs.rsi,
        regs.rbp,
        regs.rbx,
        regs.rdx,
        regs.rax,
        regs.rcx,
        regs.rsp,
        regs.rip,
        regs.eflags,
    ];
    for (i, v) in order.iter().enumerate() {
        put(&mut b, SC + i * 8, *v);
    }
    // cs, gs, fs, ss as u16s.
    let segs = [USER_CS as u16, 0, 0, USER_DS as u16];
    for (i, s) in segs.iter().enumerate() {
        b[SC + 144 + i * 2..SC + 146 + i * 2].copy_from_slice(&s.to_le_bytes());
    }
    put(&mut b, SC + 184, fp_addr);
    put(&mut b, UC_SIGMASK, mask);
    let fp = &mut b[fp_off..fp_off + xstate_bytes.len()];
    fp.copy_from_slice(xstate_bytes);
    // The features to restore: every component the saved state holds (ptrace
    // leaves sw_reserved's xfeatures zero). Components outside that set were in
    // their initial state, which is what the kernel gives components it does not
    // restore.
    xstate::write_sw_bytes(fp, xstate_bytes.len(), xstate::xstate_bv(xstate_bytes) | xstate::FP_SSE);
    let m2 = fp_off + xstate_bytes.len();
    b[m2..m2 + 4].copy_from_slice(&xstate::FP_XSTATE_MAGIC2.to_le_bytes());
    Frame { addr: frame_addr, bytes: b }
}

/// Reads the altstack back out of a frame (the parasite fills it in place).
pub const UC_STACK_OFF: usize = UC_STACK;

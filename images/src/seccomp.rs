//! Seccomp filters, saved in `core-PID.img`: the classic BPF programs of every
//! thread's filter chain, each distinct filter once per process.
//!
//! The kernel links a thread's filters newest to oldest (`struct seccomp_filter`'s
//! `prev`), and a thread created after a filter was installed, or synchronised
//! with SECCOMP_FILTER_FLAG_TSYNC, points at the same filters as the thread it
//! came from. The image keeps that shape: [`SeccompFilter::prev`] makes the
//! filters of a process a forest, and each thread names its newest filter.

use serde::{Deserialize, Serialize};

use crate::{ImageError, check};

/// BPF_MAXINSNS: the kernel's bound on one classic BPF program.
pub const BPF_MAXINSNS: usize = 4096;
/// MAX_INSNS_PER_PATH of kernel/seccomp.c: a filter's instructions plus those of
/// every older filter of its chain, counting 4 more per older filter.
pub const MAX_INSNS_PER_PATH: usize = (1 << 18) / 8;
/// Bounds of one process's filters, all threads together.
pub const MAX_FILTERS: usize = 4096;
pub const MAX_TOTAL_INSNS: usize = 1 << 18;

pub const MODE_DISABLED: u32 = 0;
pub const MODE_STRICT: u32 = 1;
pub const MODE_FILTER: u32 = 2;

/// The only per-filter flag the kernel reports (PTRACE_SECCOMP_GET_METADATA).
pub const FILTER_FLAG_LOG: u32 = 2;

/// `struct seccomp_data` is 64 bytes: loads past it are refused by the kernel.
const SECCOMP_DATA_LEN: u32 = 64;

/// `struct sock_filter`: one classic BPF instruction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// One filter of a process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompFilter {
    /// The filter installed before it in the chain (an earlier index of
    /// `TaskCore::seccomp_filters`), or None for the oldest.
    pub prev: Option<u32>,
    /// FILTER_FLAG_LOG or 0.
    pub flags: u32,
    pub insns: Vec<SockFilter>,
}

/// A thread's seccomp state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seccomp {
    /// MODE_DISABLED or MODE_FILTER (strict mode is refused at dump).
    pub mode: u32,
    /// With MODE_FILTER: the thread's newest filter.
    pub filter: Option<u32>,
}

// Classic BPF opcode fields (linux/bpf_common.h).
const BPF_LD: u16 = 0x00;
const BPF_LDX: u16 = 0x01;
const BPF_ST: u16 = 0x02;
const BPF_STX: u16 = 0x03;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_MISC: u16 = 0x07;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_JA: u16 = 0x00;
const BPF_K: u16 = 0x00;
/// BPF_MEMWORDS: the scratch memory slots.
const BPF_MEMWORDS: u32 = 16;

/// SECCOMP_RET_USER_NOTIF: hands the syscall to a listener fd, which a restore
/// cannot bring back.
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
const RET_ACTION_FULL: u32 = 0xffff_0000;

impl SockFilter {
    /// Whether this instruction ends the program with SECCOMP_RET_USER_NOTIF.
    pub fn returns_user_notif(&self) -> bool {
        self.code == BPF_RET | BPF_K && self.k & RET_ACTION_FULL == RET_USER_NOTIF
    }
}

/// The structural part of the kernel's checks (bpf_check_classic and
/// seccomp_check_filter), so that a damaged program is refused before any
/// process exists: the length, every jump inside the program, the last
/// instruction a return, loads of seccomp_data aligned and inside it, scratch
/// memory in range. The kernel still checks opcodes when the filter is installed.
fn check_program(insns: &[SockFilter], what: &dyn Fn() -> String) -> Result<(), ImageError> {
    let n = insns.len();
    check((1..=BPF_MAXINSNS).contains(&n), || format!("{}: {n} instructions", what()))?;
    for (pc, i) in insns.iter().enumerate() {
        let bad = |why: &str| ImageError::Invalid(format!("{}: instruction {pc}: {why}", what()));
        let class = i.code & 0x07;
        match class {
            BPF_JMP if i.code & 0xf0 == BPF_JA => {
                if (i.k as u64) >= (n - pc - 1) as u64 {
                    return Err(bad("jump past the end"));
                }
            }
            BPF_JMP => {
                if pc + 1 + i.jt as usize >= n || pc + 1 + i.jf as usize >= n {
                    return Err(bad("jump past the end"));
                }
            }
            BPF_LD if i.code == BPF_LD | BPF_W | BPF_ABS => {
                if i.k >= SECCOMP_DATA_LEN || i.k % 4 != 0 {
                    return Err(bad("load outside seccomp_data"));
                }
            }
            BPF_LD | BPF_LDX if i.code & 0xe0 == 0x60 /* BPF_MEM */ => {
                if i.k >= BPF_MEMWORDS {
                    return Err(bad("scratch memory slot"));
                }
            }
            BPF_ST | BPF_STX => {
                if i.k >= BPF_MEMWORDS {
                    return Err(bad("scratch memory slot"));
                }
            }
            BPF_ALU | BPF_RET | BPF_MISC | BPF_LD | BPF_LDX => {}
            _ => unreachable!("the class is three bits"),
        }
    }
    check(insns[n - 1].code & 0x07 == BPF_RET, || format!("{}: the last instruction is not a return", what()))
}

/// Checks the filters of task `pid` and the threads' references to them.
pub(crate) fn validate(pid: i32, filters: &[SeccompFilter], threads: &[(i32, Seccomp)]) -> Result<(), ImageError> {
    check(filters.len() <= MAX_FILTERS, || format!("task {pid}: {} seccomp filters", filters.len()))?;
    let total: usize = filters.iter().map(|f| f.insns.len()).sum();
    check(total <= MAX_TOTAL_INSNS, || format!("task {pid}: {total} seccomp instructions"))?;
    // What each filter's chain costs the kernel's MAX_INSNS_PER_PATH check, as
    // an older filter of the next one: its instructions plus 4.
    let mut path = Vec::with_capacity(filters.len());
    for (i, f) in filters.iter().enumerate() {
        let what = || format!("task {pid}: seccomp filter {i}");
        check(f.flags & !FILTER_FLAG_LOG == 0, || format!("{}: flags {:#x}", what(), f.flags))?;
        check_program(&f.insns, &what)?;
        let older = match f.prev {
            None => 0,
            Some(p) => {
                check((p as usize) < i, || format!("{}: previous filter {p} is not an older one", what()))?;
                path[p as usize]
            }
        };
        check(older + f.insns.len() <= MAX_INSNS_PER_PATH, || format!("{}: its chain is too long", what()))?;
        path.push(older + f.insns.len() + 4);
    }
    for (tid, s) in threads {
        match (s.mode, s.filter) {
            (MODE_DISABLED, None) => {}
            (MODE_FILTER, Some(f)) => {
                check((f as usize) < filters.len(), || format!("thread {tid}: seccomp filter {f}"))?;
            }
            (mode, f) => {
                return Err(ImageError::Invalid(format!("thread {tid}: seccomp mode {mode} with filter {f:?}")));
            }
        }
    }
    Ok(())
}

/// The filters of a chain, oldest first, from its newest filter. The image must
/// have been validated (every `prev` is an older index).
pub fn chain(filters: &[SeccompFilter], newest: Option<u32>) -> Vec<u32> {
    let mut out = Vec::new();
    let mut at = newest;
    while let Some(i) = at {
        out.push(i);
        at = filters[i as usize].prev;
    }
    out.reverse();
    out
}

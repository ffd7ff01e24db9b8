//! The CPU features a process may have picked code for at start-up (glibc
//! chooses its string routines by CPUID; JITs and math libraries too), saved at
//! dump and required at restore: a missing one would crash the restored tree
//! later with SIGILL, so restore refuses up front, naming it.

use rckpt_images::inventory::Cpu;

/// (name, CPUID leaf, sub-leaf, register 0..4 = eax ebx ecx edx, bit)
const FLAGS: &[(&str, u32, u32, u8, u8)] = &[
    ("sse3", 1, 0, 2, 0),
    ("pclmulqdq", 1, 0, 2, 1),
    ("ssse3", 1, 0, 2, 9),
    ("fma", 1, 0, 2, 12),
    ("cx16", 1, 0, 2, 13),
    ("sse4_1", 1, 0, 2, 19),
    ("sse4_2", 1, 0, 2, 20),
    ("movbe", 1, 0, 2, 22),
    ("popcnt", 1, 0, 2, 23),
    ("aes", 1, 0, 2, 25),
    ("xsave", 1, 0, 2, 26),
    ("avx", 1, 0, 2, 28),
    ("f16c", 1, 0, 2, 29),
    ("rdrand", 1, 0, 2, 30),
    ("sse", 1, 0, 3, 25),
    ("sse2", 1, 0, 3, 26),
    ("fsgsbase", 7, 0, 1, 0),
    ("bmi1", 7, 0, 1, 3),
    ("avx2", 7, 0, 1, 5),
    ("bmi2", 7, 0, 1, 8),
    ("erms", 7, 0, 1, 9),
    ("rtm", 7, 0, 1, 11),
    ("avx512f", 7, 0, 1, 16),
    ("avx512dq", 7, 0, 1, 17),
    ("rdseed", 7, 0, 1, 18),
    ("adx", 7, 0, 1, 19),
    ("avx512ifma", 7, 0, 1, 21),
    ("clflushopt", 7, 0, 1, 23),
    ("clwb", 7, 0, 1, 24),
    ("avx512cd", 7, 0, 1, 28),
    ("sha", 7, 0, 1, 29),
    ("avx512bw", 7, 0, 1, 30),
    ("avx512vl", 7, 0, 1, 31),
    ("avx512vbmi", 7, 0, 2, 1),
    ("pku", 7, 0, 2, 3),
    ("avx512vbmi2", 7, 0, 2, 6),
    ("gfni", 7, 0, 2, 8),
    ("vaes", 7, 0, 2, 9),
    ("vpclmulqdq", 7, 0, 2, 10),
    ("avx512vnni", 7, 0, 2, 11),
    ("avx512bitalg", 7, 0, 2, 12),
    ("avx512vpopcntdq", 7, 0, 2, 14),
    ("movdiri", 7, 0, 2, 27),
    ("fsrm", 7, 0, 3, 4),
    ("avx512fp16", 7, 0, 3, 23),
    ("amx-tile", 7, 0, 3, 24),
    ("avxvnni", 7, 1, 0, 4),
    ("avx512bf16", 7, 1, 0, 5),
    ("lahf_lm", 0x8000_0001, 0, 2, 0),
    ("abm", 0x8000_0001, 0, 2, 5),
    ("sse4a", 0x8000_0001, 0, 2, 6),
    ("prefetchw", 0x8000_0001, 0, 2, 8),
    ("rdtscp", 0x8000_0001, 0, 3, 27),
];

fn cpuid(leaf: u32, sub: u32) -> [u32; 4] {
    let max = core::arch::x86_64::__cpuid(leaf & 0x8000_0000).eax;
    if leaf > max {
        return [0; 4];
    }
    let r = core::arch::x86_64::__cpuid_count(leaf, sub);
    [r.eax, r.ebx, r.ecx, r.edx]
}

/// The named features this CPU has, and the XSAVE components enabled.
pub fn this_cpu() -> Cpu {
    let v = cpuid(0, 0);
    let vendor: Vec<u8> = [v[1], v[3], v[2]].iter().flat_map(|w| w.to_le_bytes()).collect();
    let flags = FLAGS
        .iter()
        .filter(|(_, leaf, sub, reg, bit)| cpuid(*leaf, *sub)[*reg as usize] & (1 << bit) != 0)
        .map(|(n, ..)| n.to_string())
        .collect();
    Cpu { vendor: String::from_utf8_lossy(&vendor).into_owned(), flags, xcr0: crate::sys::cpu::xcr0() }
}

/// What the image's CPU had that this one lacks (empty: it may run here).
pub fn missing(saved: &Cpu, here: &Cpu) -> Vec<String> {
    let mut out: Vec<String> = saved.flags.iter().filter(|f| !here.flags.contains(f)).cloned().collect();
    let lost = saved.xcr0 & !here.xcr0;
    if lost != 0 {
        out.push(format!("XSAVE components {lost:#x}"));
    }
    out
}

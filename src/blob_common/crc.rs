//! crc32c (Castagnoli), with the same meaning as `crc32c::crc32c_append` on the host:
//! `append(append(0, a), b) == crc32c(a ++ b)`.

const POLY: u32 = 0x82f6_3b78;

const fn make_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static TABLE: [u32; 256] = make_table();

fn has_sse42() -> bool {
    use core::sync::atomic::{AtomicU8, Ordering};
    // CPUID traps to the hypervisor in a VM: ask once.
    static KNOWN: AtomicU8 = AtomicU8::new(0);
    match KNOWN.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            // CPUID leaf 1, ECX bit 20.
            let yes = core::arch::x86_64::__cpuid(1).ecx & (1 << 20) != 0;
            KNOWN.store(if yes { 1 } else { 2 }, Ordering::Relaxed);
            yes
        }
    }
}

#[target_feature(enable = "sse4.2")]
fn hw(mut crc: u32, data: &[u8]) -> u32 {
    use core::arch::x86_64::{_mm_crc32_u8, _mm_crc32_u64};
    // Three independent streams would be faster; one keeps this small and is
    // still several GiB/s, above the memory bandwidth the callers see.
    let mut chunks = data.chunks_exact(8);
    let mut c64 = crc as u64;
    for c in &mut chunks {
        c64 = _mm_crc32_u64(c64, u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
    }
    crc = c64 as u32;
    for &b in chunks.remainder() {
        crc = _mm_crc32_u8(crc, b);
    }
    crc
}

fn sw(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

pub fn append(crc: u32, data: &[u8]) -> u32 {
    let c = !crc;
    let c = if has_sse42() {
        // SAFETY: the CPU reports SSE4.2.
        unsafe { hw(c, data) }
    } else {
        sw(c, data)
    };
    !c
}

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

/// Bytes per stream of the three-way loop.
const LANE: usize = 4096;

static ZEROS: [u8; 2 * LANE] = [0; 2 * LANE];

/// The raw crc state after `n` zero bytes, as a linear map: column j is the
/// image of bit j. Built once with the one-stream loop (32 x 2 x LANE bytes).
struct Shift {
    cols: [[u32; 32]; 2],
}

static mut SHIFT: Shift = Shift { cols: [[0; 32]; 2] };
static SHIFT_READY: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

#[target_feature(enable = "sse4.2")]
fn shift_tables() -> &'static Shift {
    // SAFETY: filled before SHIFT_READY is set; a race fills it twice with the
    // same values (the blobs are single-threaded while they compute crcs).
    unsafe {
        if !SHIFT_READY.load(core::sync::atomic::Ordering::Acquire) {
            let s = &mut *(&raw mut SHIFT);
            for j in 0..32 {
                s.cols[0][j] = hw1(1 << j, &ZEROS[..LANE]);
                s.cols[1][j] = hw1(1 << j, &ZEROS[..2 * LANE]);
            }
            SHIFT_READY.store(true, core::sync::atomic::Ordering::Release);
        }
        &*(&raw const SHIFT)
    }
}

fn apply(cols: &[u32; 32], mut v: u32) -> u32 {
    let mut out = 0;
    let mut j = 0;
    while v != 0 {
        if v & 1 != 0 {
            out ^= cols[j];
        }
        v >>= 1;
        j += 1;
    }
    out
}

/// Three streams over consecutive lanes, whose dependency chains the CPU runs
/// side by side, joined by shifting the earlier lanes' states over the later
/// lanes' lengths (the state update is linear).
#[target_feature(enable = "sse4.2")]
fn hw(mut crc: u32, mut data: &[u8]) -> u32 {
    use core::arch::x86_64::_mm_crc32_u64;
    if data.len() >= 3 * LANE {
        let s = shift_tables();
        while data.len() >= 3 * LANE {
            let (a, rest) = data.split_at(LANE);
            let (b, rest) = rest.split_at(LANE);
            let (c, rest) = rest.split_at(LANE);
            let (mut x, mut y, mut z) = (crc as u64, 0u64, 0u64);
            let mut i = 0;
            while i < LANE {
                // SAFETY: i + 8 <= LANE, the length of each lane.
                let (wa, wb, wc) = unsafe {
                    (
                        core::ptr::read_unaligned(a.as_ptr().add(i) as *const u64),
                        core::ptr::read_unaligned(b.as_ptr().add(i) as *const u64),
                        core::ptr::read_unaligned(c.as_ptr().add(i) as *const u64),
                    )
                };
                x = _mm_crc32_u64(x, u64::from_le(wa));
                y = _mm_crc32_u64(y, u64::from_le(wb));
                z = _mm_crc32_u64(z, u64::from_le(wc));
                i += 8;
            }
            crc = apply(&s.cols[1], x as u32) ^ apply(&s.cols[0], y as u32) ^ z as u32;
            data = rest;
        }
    }
    hw1(crc, data)
}

#[target_feature(enable = "sse4.2")]
fn hw1(mut crc: u32, data: &[u8]) -> u32 {
    use core::arch::x86_64::{_mm_crc32_u8, _mm_crc32_u64};
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

#[cfg(test)]
mod tests {
    #[test]
    fn matches_the_host_crc32c_at_every_length_and_split() {
        let data: Vec<u8> = (0..40_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        for len in [0, 1, 7, 8, 4095, 4096, 12287, 12288, 12289, 24576, 30000, 40000] {
            assert_eq!(super::append(0, &data[..len]), crc32c::crc32c(&data[..len]), "len {len}");
        }
        let (a, b) = data.split_at(13_001);
        assert_eq!(super::append(super::append(0, a), b), crc32c::crc32c(&data));
        assert_eq!(super::append(0x1234_5678, &data), crc32c::crc32c_append(0x1234_5678, &data));
    }
}

//! The mutation engine of the stable driver: byte-level damage to real image
//! files (flips, sets, truncation, extension, insertion, removal, overwrites,
//! postcard varints, copies and splices from other files), then, most of the
//! time, a repaired frame (length and checksums recomputed) so that postcard and
//! validation see the damage instead of a checksum refusing it. Whole images get
//! damage to one or more files, files swapped in from other images, removed,
//! copied under another task's name, and the inventory's sizes brought up to date.

use rckpt_images::Kind;
use rckpt_images::frame::HEADER_LEN;

use crate::harness::{self, Dir, DirFile, Target, is_raw, kind_of};

/// splitmix64: small, fast, and good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in 0..n (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }

    /// True with probability num/den.
    pub fn chance(&mut self, num: u32, den: u32) -> bool {
        (self.next_u64() % den as u64) < num as u64
    }

    /// A length in 1..=small, or (one time in four) in 1..=big.
    pub fn length(&mut self, small: usize, big: usize) -> usize {
        let max = if self.chance(1, 4) { big } else { small };
        1 + self.below(max)
    }

    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Values that sit at the edges of the checks: lengths, counts, pids, page
/// addresses, the caps.
const INTERESTING: [u64; 34] = [
    0,
    1,
    2,
    3,
    0x10,
    0x3f,
    0x40,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x3ff,
    0x400,
    0xfff,
    0x1000,
    0x1001,
    0x7fff,
    0xffff,
    0x1_0000,
    0x1_0001,
    0x10_0000,
    0x40_0000,
    0x40_0001,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    0x0000_7fff_ffff_f000,
    0x00ff_ffff_ffff_f000,
    0xffff_ffff_ff60_0000,
    0xffff_ffff_ffff_f000,
    1 << 63,
    u64::MAX - 1,
    u64::MAX,
];

fn interesting(rng: &mut Rng) -> u64 {
    match rng.below(8) {
        0 => rng.next_u64(),
        1 => rng.next_u64() & 0xffff,
        // Near a power of two.
        2 => (1u64 << rng.below(64)).wrapping_add(rng.below(3) as u64).wrapping_sub(1),
        _ => *rng.pick(&INTERESTING),
    }
}

pub fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// A position in `lo..=hi`, mostly near the ends where the small fields and the
/// lengths sit (and, in an mm body, the extents), otherwise uniform.
fn position(rng: &mut Rng, lo: usize, hi: usize) -> usize {
    let span = hi.saturating_sub(lo) + 1;
    lo + match rng.below(10) {
        0..=2 => rng.below(span.min(160)),
        3..=4 => span - 1 - rng.below(span.min(160)),
        _ => rng.below(span),
    }
}

/// One byte-level mutation of `buf`, leaving `buf[..lo]` alone (unless `lo` is
/// past the end). `donors` are other files to splice from.
fn mutate_once(rng: &mut Rng, buf: &mut Vec<u8>, lo: usize, donors: &[&[u8]]) {
    let lo = lo.min(buf.len());
    let hi = buf.len();
    let any = |rng: &mut Rng| position(rng, lo, hi);
    let existing = |rng: &mut Rng| (hi > lo).then(|| position(rng, lo, hi - 1));
    match rng.below(15) {
        0 | 1 => {
            if let Some(i) = existing(rng) {
                buf[i] ^= 1 << rng.below(8);
            }
        }
        2 => {
            if let Some(i) = existing(rng) {
                buf[i] = *rng.pick(&[0u8, 1, 2, 0x7f, 0x80, 0xfe, 0xff]);
            }
        }
        3 => {
            if let Some(i) = existing(rng) {
                buf[i] = rng.next_u64() as u8;
            }
        }
        4 => {
            let i = any(rng);
            buf.truncate(i);
        }
        5 => {
            let n = 1 + rng.below(64);
            let tail = if rng.chance(1, 2) { rng.bytes(n) } else { vec![*rng.pick(&[0u8, 1, 0xff]); n] };
            buf.extend_from_slice(&tail);
        }
        6 => {
            let i = any(rng);
            let n = 1 + rng.below(16);
            let b = rng.bytes(n);
            let end = (i + b.len()).min(hi);
            buf.splice(i..end, b);
        }
        7 => {
            let i = any(rng);
            let n = 1 + rng.below(16);
            let b = rng.bytes(n);
            buf.splice(i..i, b);
        }
        8 => {
            let i = any(rng);
            let end = (i + rng.length(16, 512)).min(hi);
            buf.drain(i..end);
        }
        9 | 10 => {
            // A postcard field set to an edge value: a varint over 1..=10 bytes.
            let i = any(rng);
            let end = (i + 1 + rng.below(10)).min(hi);
            let v = interesting(rng);
            buf.splice(i..end, varint(v));
        }
        11 => {
            // A fixed-width little-endian integer (header fields, raw words).
            let i = any(rng);
            let v = interesting(rng);
            let w = *rng.pick(&[2usize, 4, 8]);
            let end = (i + w).min(hi);
            buf.splice(i..end, v.to_le_bytes()[..w].iter().copied());
        }
        12 => {
            // Repeat a chunk of this file elsewhere (duplicated list entries).
            if let Some(f) = existing(rng) {
                let n = rng.length(64, 1024);
                let chunk = buf[f..(f + n).min(hi)].to_vec();
                let t = any(rng);
                if rng.chance(1, 2) {
                    buf.splice(t..t, chunk);
                } else {
                    let end = (t + chunk.len()).min(hi);
                    buf.splice(t..end, chunk);
                }
            }
        }
        13 => {
            // Splice a chunk of another file in (same kind or not).
            if !donors.is_empty() {
                let d = *rng.pick(donors);
                if !d.is_empty() {
                    let f = position(rng, 0, d.len() - 1);
                    let n = rng.length(64, 2048);
                    let chunk = d[f..(f + n).min(d.len())].to_vec();
                    let t = any(rng);
                    let end = if rng.chance(1, 2) { t } else { (t + chunk.len()).min(hi) };
                    buf.splice(t..end, chunk);
                }
            }
        }
        _ => {
            // Cross over: this file's head with another file's tail.
            if !donors.is_empty() {
                let d = *rng.pick(donors);
                let t = any(rng);
                let f = position(rng, 0, d.len());
                buf.truncate(t);
                buf.extend_from_slice(&d[f.min(d.len())..]);
            }
        }
    }
}

/// How many mutations to stack: mostly one or two, sometimes many.
fn count(rng: &mut Rng) -> usize {
    let mut n = 1;
    while n < 16 && rng.chance(1, 2) {
        n += 1;
    }
    n
}

/// Damages a framed metadata file. The frame is then repaired most of the time:
/// damage to the body only reaches postcard behind a matching length and body
/// checksum.
pub fn mutate_framed(rng: &mut Rng, buf: &mut Vec<u8>, donors: &[&[u8]]) {
    let header_too = rng.chance(1, 8);
    for _ in 0..count(rng) {
        mutate_once(rng, buf, if header_too { 0 } else { HEADER_LEN }, donors);
    }
    match rng.below(10) {
        0 => {}
        1 => harness::fix_header_crc(buf),
        _ => {
            if let Some(b) = harness::refit(buf) {
                *buf = b;
            }
        }
    }
}

/// Damages a pages header, usually with its checksum recomputed.
pub fn mutate_pages(rng: &mut Rng, buf: &mut Vec<u8>, donors: &[&[u8]]) {
    for _ in 0..count(rng) {
        if rng.chance(1, 2) {
            // The 20 bytes that matter.
            let end = buf.len().min(20);
            if end > 0 {
                let i = rng.below(end);
                match rng.below(3) {
                    0 => buf[i] ^= 1 << rng.below(8),
                    1 => buf[i] = rng.next_u64() as u8,
                    _ => {
                        let v = interesting(rng).to_le_bytes();
                        let w = (*rng.pick(&[2usize, 4])).min(end - i);
                        buf[i..i + w].copy_from_slice(&v[..w]);
                    }
                }
            }
        } else {
            mutate_once(rng, buf, 0, donors);
        }
    }
    if rng.chance(7, 10) {
        harness::fix_pages_crc(buf);
    }
}

/// Seeds of every target, and what mutation picks from.
pub struct Corpus {
    /// Inputs per target.
    pub inputs: Vec<(Target, Vec<Vec<u8>>)>,
    /// The image seeds, parsed.
    pub dirs: Vec<Dir>,
}

impl Corpus {
    pub fn of(&self, t: Target) -> &[Vec<u8>] {
        self.inputs.iter().find(|(x, _)| *x == t).map(|(_, v)| v.as_slice()).unwrap_or(&[])
    }
}

/// A new input for a single-file target: a seed (or, with `pool`, an input that
/// got past the decoder earlier), damaged.
pub fn mutate_file(rng: &mut Rng, target: Target, corpus: &Corpus, pool: &[Vec<u8>]) -> Vec<u8> {
    let seeds = corpus.of(target);
    let mut buf = if !pool.is_empty() && rng.chance(1, 3) { rng.pick(pool).clone() } else { rng.pick(seeds).clone() };
    // Donors: mostly files of the same kind, sometimes any file.
    let other = if rng.chance(1, 4) { *rng.pick(&Target::ALL) } else { target };
    let donors: Vec<&[u8]> = corpus.of(other).iter().map(Vec::as_slice).chain(pool.iter().map(Vec::as_slice)).collect();
    if target == Target::Pages {
        mutate_pages(rng, &mut buf, &donors);
    } else {
        mutate_framed(rng, &mut buf, &donors);
    }
    buf
}

/// A new input for the image target: a seed image with one to a few files
/// damaged, replaced, removed or copied, then (usually) relisted.
pub fn mutate_image(rng: &mut Rng, corpus: &Corpus, pool: &[Vec<u8>]) -> Vec<u8> {
    let mut dir = if !pool.is_empty() && rng.chance(1, 3) {
        Dir::parse(&rng.pick(pool)[..])
    } else {
        rng.pick(&corpus.dirs).clone()
    };
    let donor_dir = rng.pick(&corpus.dirs).clone();
    for _ in 0..count(rng).min(4) {
        let names: Vec<String> = dir.files.keys().cloned().collect();
        if names.is_empty() {
            break;
        }
        let name = rng.pick(&names).clone();
        let kind = kind_of(&name);
        match rng.below(12) {
            0..=6 => {
                // Damage it.
                let donors: Vec<&[u8]> = donor_dir
                    .files
                    .iter()
                    .filter(|(n, _)| kind_of(n) == kind)
                    .map(|(_, f)| f.data.as_slice())
                    .collect();
                let f = dir.files.get_mut(&name).unwrap();
                if is_raw(&name) {
                    if kind != Some(Kind::Pages) || rng.chance(1, 3) {
                        f.len = match rng.below(4) {
                            0 => f.len.wrapping_add(4096),
                            1 => f.len.saturating_sub(4096),
                            2 => rng.below(64) as u64,
                            _ => interesting(rng),
                        };
                    } else {
                        mutate_pages(rng, &mut f.data, &donors);
                    }
                } else {
                    mutate_framed(rng, &mut f.data, &donors);
                    f.len = f.data.len() as u64;
                }
            }
            7 | 8 => {
                // Replace it with a file of the same kind from another image.
                let same: Vec<&DirFile> =
                    donor_dir.files.iter().filter(|(n, _)| kind_of(n) == kind).map(|(_, f)| f).collect();
                if !same.is_empty() {
                    let f = (*rng.pick(&same)).clone();
                    dir.files.insert(name, f);
                }
            }
            9 => {
                dir.files.remove(&name);
            }
            10 => {
                // Copy it under the name of another file of the same kind.
                let same: Vec<&String> = names.iter().filter(|n| kind_of(n) == kind && **n != name).collect();
                if !same.is_empty() {
                    let to = (*rng.pick(&same)).clone();
                    let f = dir.files[&name].clone();
                    dir.files.insert(to, f);
                }
            }
            _ => {
                // Swap two files' contents.
                let other = rng.pick(&names).clone();
                let a = dir.files[&name].clone();
                let b = dir.files[&other].clone();
                dir.files.insert(name, b);
                dir.files.insert(other, a);
            }
        }
    }
    for (name, f) in &mut dir.files {
        if !is_raw(name) {
            f.len = f.data.len() as u64;
        }
    }
    if rng.chance(3, 4) {
        harness::relist(&mut dir);
    }
    dir.to_bytes()
}

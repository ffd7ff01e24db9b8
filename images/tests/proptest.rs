//! Property tests: every image file is untrusted input, so decoding and validating
//! arbitrary or damaged bytes must never panic, and whatever decodes must survive
//! a re-encoding unchanged.
//!
//! The number of cases per property can be raised for a longer fuzzing run with
//! `PROPTEST_CASES=100000 cargo test -p rckpt-images --release --test proptest`.

mod common;

use std::sync::LazyLock;

use common::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;
use rckpt_images::frame::HEADER_LEN;
use rckpt_images::{ImageSet, Kind};

static SET: LazyLock<ImageSet> = LazyLock::new(valid_set);

/// The encoded sample of every metadata kind.
static ENCODED: LazyLock<Vec<(Kind, Vec<u8>)>> =
    LazyLock::new(|| samples(&SET).into_iter().map(|s| (s.kind(), s.encode().unwrap())).collect());

fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default_cases);
    Config { cases, max_shrink_iters: 2048, ..Config::default() }
}

// ---------------------------------------------------------------------------
// Mutations

/// Where a mutation applies: anywhere, or near either end (headers, lengths and
/// small fields sit at the start of a body; the extents at the end of an mm body,
/// while its middle is mostly vDSO bytes).
#[derive(Debug, Clone)]
enum Pos {
    Any(Index),
    Front(usize),
    Back(usize),
}

impl Pos {
    /// An index in `lo..=hi` (`hi` included so that inserting at the end works).
    fn resolve(&self, lo: usize, hi: usize) -> usize {
        let span = hi - lo + 1;
        lo + match self {
            Pos::Any(i) => i.index(span),
            Pos::Front(n) => n % span,
            Pos::Back(n) => span - 1 - n % span,
        }
    }
}

fn pos() -> impl Strategy<Value = Pos> {
    prop_oneof![
        2 => any::<Index>().prop_map(Pos::Any),
        1 => (0usize..160).prop_map(Pos::Front),
        1 => (0usize..160).prop_map(Pos::Back),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(Pos, u8),
    Set(Pos, u8),
    Truncate(Pos),
    Extend(Vec<u8>),
    Overwrite(Pos, Vec<u8>),
    Insert(Pos, Vec<u8>),
    Remove(Pos, usize),
    /// Replaces `n` bytes with the postcard varint of a value: when the range is a
    /// varint field, this sets the field to an interesting value.
    Varint(Pos, usize, u64),
    /// Copies a range over another place (repeats plausible structure).
    Copy(Pos, Pos, usize),
}

fn interesting_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => prop::sample::select(vec![
            0u64,
            1,
            2,
            0x3f,
            0x40,
            0x7f,
            0x80,
            0xff,
            0x100,
            0xfff,
            0x1000,
            0x3fff,
            0x4000,
            0xffff,
            0x1_0000,
            0x1_0001,
            0x7fff_ffff,
            0x8000_0000,
            0xffff_ffff,
            1 << 32,
            0x00ff_ffff_ffff_f000,
            0xffff_ffff_ff60_0000,
            0xffff_ffff_ffff_f000,
            1 << 63,
            u64::MAX - 1,
            u64::MAX,
        ]),
        1 => any::<u64>(),
    ]
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 1..=max)
}

/// Garbage that postcard has a chance to accept: uniform bytes, or short runs of
/// small values (lengths, tags, bools and small numbers of a real body).
fn garbage(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..max),
        vec(0u8..3, 0..max / 4),
        vec(prop_oneof![4 => 0u8..3, 1 => any::<u8>()], 0..max / 2),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (pos(), 0u8..8).prop_map(|(p, b)| Mutation::Flip(p, b)),
        3 => (pos(), any::<u8>()).prop_map(|(p, v)| Mutation::Set(p, v)),
        1 => pos().prop_map(Mutation::Truncate),
        1 => bytes(24).prop_map(Mutation::Extend),
        2 => (pos(), bytes(24)).prop_map(|(p, b)| Mutation::Overwrite(p, b)),
        2 => (pos(), bytes(12)).prop_map(|(p, b)| Mutation::Insert(p, b)),
        2 => (pos(), 1usize..16).prop_map(|(p, n)| Mutation::Remove(p, n)),
        4 => (pos(), 1usize..=10, interesting_u64()).prop_map(|(p, n, v)| Mutation::Varint(p, n, v)),
        1 => (pos(), pos(), 1usize..64).prop_map(|(a, b, n)| Mutation::Copy(a, b, n)),
    ]
}

fn varint(mut v: u64) -> Vec<u8> {
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

/// Applies `m` to `buf`, never touching `buf[..lo]`.
fn apply(buf: &mut Vec<u8>, lo: usize, m: &Mutation) {
    let hi = buf.len();
    let at = |p: &Pos| p.resolve(lo, hi);
    // An index of an existing byte, if any.
    let byte_at = |p: &Pos| (hi > lo).then(|| p.resolve(lo, hi - 1));
    match m {
        Mutation::Flip(p, bit) => {
            if let Some(i) = byte_at(p) {
                buf[i] ^= 1 << bit;
            }
        }
        Mutation::Set(p, v) => {
            if let Some(i) = byte_at(p) {
                buf[i] = *v;
            }
        }
        Mutation::Truncate(p) => buf.truncate(at(p)),
        Mutation::Extend(b) => buf.extend_from_slice(b),
        Mutation::Overwrite(p, b) => {
            let i = at(p);
            let end = (i + b.len()).min(hi);
            buf.splice(i..end, b.iter().copied());
        }
        Mutation::Insert(p, b) => {
            let i = at(p);
            buf.splice(i..i, b.iter().copied());
        }
        Mutation::Remove(p, n) => {
            let i = at(p);
            let end = (i + n).min(hi);
            buf.drain(i..end);
        }
        Mutation::Varint(p, n, v) => {
            let i = at(p);
            let end = (i + n).min(hi);
            buf.splice(i..end, varint(*v));
        }
        Mutation::Copy(from, to, n) => {
            if hi > lo {
                let f = byte_at(from).unwrap();
                let chunk: Vec<u8> = buf[f..(f + n).min(hi)].to_vec();
                let t = at(to);
                let end = (t + chunk.len()).min(hi);
                buf.splice(t..end, chunk);
            }
        }
    }
}

/// What is done to the header after the mutations.
#[derive(Debug, Clone, Copy)]
enum Fix {
    /// Nothing: the checksums catch the damage.
    None,
    /// Both checksums recomputed, the length field kept.
    Checksums,
    /// Length and both checksums made to match the body.
    Refit,
}

fn fix_frame(buf: &mut [u8], fix: Fix) {
    if buf.len() < HEADER_LEN {
        return;
    }
    match fix {
        Fix::None => {}
        Fix::Checksums => {
            let c = crc32c::crc32c(&buf[HEADER_LEN..]);
            buf[24..28].copy_from_slice(&c.to_le_bytes());
            fix_header_crc(buf);
        }
        Fix::Refit => refit_frame(buf),
    }
}

fn fix() -> impl Strategy<Value = Fix> {
    prop_oneof![Just(Fix::None), Just(Fix::Checksums), Just(Fix::Refit)]
}

fn kind_index() -> impl Strategy<Value = usize> {
    0..META_KINDS.len()
}

// ---------------------------------------------------------------------------
// The checks

/// Works around the one known panic of `validate` (see validate.rs,
/// `mm_vdso_block_arithmetic_overflow`): an mm image whose vDSO block fields
/// overflow when added is not validated here. Remove once the bug is fixed.
fn hits_known_vdso_overflow(_v: &AnyImage) -> bool {
    // Fixed: validate() checks the vDSO block with checked arithmetic.
    false
}

/// Decodes `bytes` as `kind`. When that succeeds: the value re-encodes, the
/// re-encoding decodes to the same value and re-encodes to the same bytes, and
/// validation (alone and within the valid image) runs without panicking. Returns
/// the value and whether it validated within the image.
fn exercise(kind: Kind, bytes: &[u8]) -> Result<Option<(AnyImage, bool)>, TestCaseError> {
    let Ok(v) = AnyImage::decode(kind, bytes) else {
        return Ok(None);
    };
    let e = v.encode().map_err(|e| TestCaseError::fail(format!("a decoded {kind} image does not re-encode: {e}")))?;
    let v2 = AnyImage::decode(kind, &e)
        .map_err(|e| TestCaseError::fail(format!("a re-encoded {kind} image does not decode: {e}")))?;
    prop_assert_eq!(&v2, &v, "{} changed through a re-encoding", kind);
    prop_assert_eq!(v2.encode().unwrap(), e, "{} re-encodes differently", kind);
    if hits_known_vdso_overflow(&v) {
        return Ok(Some((v, false)));
    }
    let alone = v.validate_alone(&SET).is_ok();
    let whole = v.substitute(&SET).validate().is_ok();
    // The image-wide check includes the file's own.
    if whole && !matches!(v, AnyImage::Inventory(_) | AnyImage::Mm(_)) {
        prop_assert!(alone, "{} validates within the image but not alone", kind);
    }
    Ok(Some((v, whole)))
}

// ---------------------------------------------------------------------------
// (a) Arbitrary bytes

proptest! {
    #![proptest_config(config(2000))]

    /// Random bytes, decoded as every kind.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in garbage(400)) {
        for kind in META_KINDS {
            exercise(kind, &bytes)?;
        }
    }

    /// Random bytes under a forged header whose checksums are right, so that the
    /// header checks and the postcard decoder see garbage.
    #[test]
    fn arbitrary_framed_bytes_never_panic(
        raw_kind in prop_oneof![4 => 1u16..=7, 1 => any::<u16>()],
        version in prop_oneof![4 => Just(1u16), 1 => any::<u16>()],
        reserved in prop_oneof![4 => Just([0u8; 4]), 1 => any::<[u8; 4]>()],
        body in garbage(600),
        body_len in prop_oneof![4 => Just(None), 1 => any::<u64>().prop_map(Some)],
    ) {
        let len = body_len.unwrap_or(body.len() as u64);
        let b = forge(raw_kind, version, reserved, len, &body);
        for kind in META_KINDS {
            exercise(kind, &b)?;
        }
    }

    /// Random bodies behind a header that is right for the kind: every decoder
    /// meets garbage (a small FdTable or PsTree decodes from random bytes often).
    #[test]
    fn arbitrary_bodies_never_panic(k in kind_index(), body in garbage(300)) {
        let kind = META_KINDS[k];
        let b = forge(kind as u16, 1, [0; 4], body.len() as u64, &body);
        exercise(kind, &b)?;
    }
}

// ---------------------------------------------------------------------------
// (b) Damaged valid files

proptest! {
    #![proptest_config(config(4000))]

    /// Mutations anywhere in the file, the header fixed up or not.
    #[test]
    fn damaged_files_never_panic(
        k in kind_index(),
        muts in vec(mutation(), 1..5),
        fix in fix(),
    ) {
        let (kind, orig) = &ENCODED[k];
        let mut b = orig.clone();
        for m in &muts {
            apply(&mut b, 0, m);
        }
        fix_frame(&mut b, fix);
        if let Some((v, _)) = exercise(*kind, &b)? {
            // Without a checksum fix, damage anywhere but in bytes no check covers
            // cannot decode; the only such bytes would be none at all.
            if matches!(fix, Fix::None) {
                prop_assert_eq!(&b, orig, "damage went unnoticed");
            }
            let _ = v;
        }
    }
}

// ---------------------------------------------------------------------------
// (c) Damaged bodies behind a correct frame

proptest! {
    #![proptest_config(config(6000))]

    /// Mutations of the body only, the header then made to match: postcard and
    /// validate() see every kind of garbage. Whatever decodes and validates must
    /// be what the bytes say: it re-encodes to the same file.
    #[test]
    fn damaged_bodies_decode_and_validate_consistently(
        k in kind_index(),
        muts in vec(mutation(), 1..4),
    ) {
        let (kind, orig) = &ENCODED[k];
        let mut b = orig.clone();
        for m in &muts {
            apply(&mut b, HEADER_LEN, m);
        }
        refit_frame(&mut b);
        if let Some((v, true)) = exercise(*kind, &b)? {
            let e = v.encode().unwrap();
            // The canonical encoding of the value validates as well.
            let again = AnyImage::decode(*kind, &e).unwrap();
            prop_assert!(again.substitute(&SET).validate().is_ok());
            // Non-canonical bodies (overlong varints) are refused by decode: what
            // is accepted is exactly the canonical encoding of its value.
            prop_assert_eq!(e, b, "a {} image that decodes and validates re-encodes differently", kind);
        }
    }
}

// ---------------------------------------------------------------------------
// Sanity of the machinery above

#[test]
fn mutations_apply_within_bounds() {
    let mut b: Vec<u8> = (0..40).collect();
    apply(&mut b, HEADER_LEN, &Mutation::Truncate(Pos::Front(0)));
    assert_eq!(b.len(), HEADER_LEN, "truncation keeps the protected prefix");
    apply(&mut b, HEADER_LEN, &Mutation::Flip(Pos::Back(0), 3));
    apply(&mut b, HEADER_LEN, &Mutation::Remove(Pos::Back(0), 5));
    assert_eq!(b, (0..32).collect::<Vec<u8>>(), "nothing to flip or remove");
    apply(&mut b, HEADER_LEN, &Mutation::Varint(Pos::Back(0), 3, 300));
    assert_eq!(&b[32..], &[0xac, 0x02]);
    apply(&mut b, HEADER_LEN, &Mutation::Copy(Pos::Front(0), Pos::Back(0), 8));
    assert_eq!(&b[32..], &[0xac, 0x02, 0xac, 0x02]);
    assert_eq!(varint(0), [0]);
    assert_eq!(varint(u64::MAX).len(), 10);
    // A refit frame of the original body is the original file.
    for (kind, orig) in ENCODED.iter() {
        let mut b = orig.clone();
        refit_frame(&mut b);
        assert_eq!(&b, orig, "{kind}");
        let mut b = orig.clone();
        fix_frame(&mut b, Fix::Checksums);
        assert_eq!(&b, orig, "{kind}");
    }
}

#[test]
fn body_mutations_reach_validate() {
    // A field set through a varint splice is seen by validate(): the pid of an
    // fd table is its first field.
    let (kind, orig) = &ENCODED[5];
    assert_eq!(*kind, Kind::FdInfo);
    let mut b = orig.clone();
    // i32 pids are zigzag varints: 1000 is 2000, two bytes.
    apply(&mut b, HEADER_LEN, &Mutation::Varint(Pos::Front(0), 2, 2 * 1002));
    refit_frame(&mut b);
    let v = AnyImage::decode(Kind::FdInfo, &b).unwrap();
    match &v {
        AnyImage::FdInfo(t) => assert_eq!(t.pid, CHILD),
        _ => unreachable!(),
    }
    let e = v.substitute(&SET).validate().unwrap_err();
    assert!(e.to_string().contains("fdinfo image of task 1000 says 1002"), "{e}");
}

// ---------------------------------------------------------------------------
// (d) Generated address spaces and pid arrays, checked against a model

mod model {
    use super::*;
    use rckpt_images::mm::{
        MappedFile, MmFields, MmImage, PAGE_SIZE, PROT_READ, PageExtent, TASK_SIZE_MAX, VSYSCALL_START, Vdso, Vma,
        VmaKind,
    };
    use rckpt_images::pages;
    use rckpt_images::pstree::{PID_MAX_LIMIT, PsTree, TaskEntry, TaskState};

    const P: u64 = PAGE_SIZE;

    fn vma_kind(k: u8) -> VmaKind {
        match k {
            0 | 7 => VmaKind::Anon,
            1 => VmaKind::Heap,
            2 => VmaKind::Stack,
            3 => VmaKind::File { file: 0, offset: 0 },
            // The vDSO block is placed by `build` itself.
            _ => VmaKind::Anon,
        }
    }

    /// One change to a consistent address space.
    #[derive(Debug, Clone)]
    pub enum Perturb {
        Vma(Index, u8, u64),
        Extent(Index, u8, u64),
        Vdso(u8, u64),
        Share(Index),
        SwapVmas(Index, Index),
        SwapExtents(Index, Index),
        DropVma(Index),
        DropExtent(Index),
        PagesSize(u64),
    }

    fn value() -> impl Strategy<Value = u64> {
        prop_oneof![
            2 => interesting_u64(),
            2 => (0x10u64..0x40).prop_map(|p| p * P),
            1 => (0x10u64..0x40).prop_map(|p| p * P + 1),
            1 => (0u64..16).prop_map(|n| pages::HEADER_LEN + n * P),
        ]
    }

    fn perturb() -> impl Strategy<Value = Perturb> {
        prop_oneof![
            (any::<Index>(), 0u8..2, value()).prop_map(|(i, f, v)| Perturb::Vma(i, f, v)),
            (any::<Index>(), 0u8..3, value()).prop_map(|(i, f, v)| Perturb::Extent(i, f, v)),
            (0u8..4, value()).prop_map(|(f, v)| Perturb::Vdso(f, v)),
            any::<Index>().prop_map(Perturb::Share),
            (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Perturb::SwapVmas(a, b)),
            (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Perturb::SwapExtents(a, b)),
            any::<Index>().prop_map(Perturb::DropVma),
            any::<Index>().prop_map(Perturb::DropExtent),
            value().prop_map(Perturb::PagesSize),
        ]
    }

    type VmaSpec = (u64, u64, u8, bool, Vec<(u64, u64)>);

    fn vma_spec() -> impl Strategy<Value = VmaSpec> {
        (0u64..3, 1u64..6, 0u8..8, prop::bool::weighted(0.2), vec((0u64..2, 1u64..3), 0..3))
    }

    /// A consistent address space (VMAs back to back or with holes, extents in the
    /// private ones, laid out in the pages file), and the pages file size.
    pub fn build(specs: &[VmaSpec], vsyscall: bool) -> (MmImage, u64) {
        let mut vmas = Vec::new();
        let mut extents = Vec::new();
        let mut cur = 0x10 * P;
        let mut off = pages::HEADER_LEN;
        for (gap, len, kind, shared, exts) in specs {
            let start = cur + gap * P;
            let end = start + len * P;
            cur = end;
            let kind = vma_kind(*kind);
            let saves = kind.has_pages(*shared);
            let mut p = start;
            for (skip, n) in exts {
                let s = p + skip * P;
                let e = s + n * P;
                if !saves || e > end {
                    break;
                }
                extents.push(PageExtent { start: s, nr_pages: *n, offset: off, crc32c: 0 });
                off += n * P;
                p = e;
            }
            vmas.push(Vma { start, end, prot: PROT_READ, shared: *shared, flags: 0, kind, anon_name: None });
        }
        // The vDSO block after them: [vvar] 4 pages, [vvar_vclock] 1, [vdso] 2.
        let vs = cur + P;
        for (k, a, b, prot) in [
            (VmaKind::Vvar, vs, vs + 4 * P, PROT_READ),
            (VmaKind::VvarVclock, vs + 4 * P, vs + 5 * P, PROT_READ),
            (VmaKind::Vdso, vs + 5 * P, vs + 7 * P, PROT_READ | 4),
        ] {
            vmas.push(Vma { start: a, end: b, prot, shared: false, flags: 0, kind: k, anon_name: None });
        }
        if vsyscall {
            vmas.push(Vma {
                start: VSYSCALL_START,
                end: VSYSCALL_START + P,
                prot: 4,
                shared: false,
                flags: 0,
                kind: VmaKind::Vsyscall,
                anon_name: None,
            });
        }
        let m = MmImage {
            pid: 1,
            fields: MmFields::default(),
            auxv: vec![6, P, 0, 0],
            exe: Some(0),
            files: vec![MappedFile { path: "/bin/x".into(), size: 4096, mtime_ns: 0, dev: 1, ino: 2, build_id: None }],
            vmas,
            vdso: Some(Vdso {
                vvar_start: vs,
                vvar_size: 4 * P,
                vvar_vclock_size: P,
                vdso_start: vs + 5 * P,
                vdso_bytes: vec![0; 2 * P as usize],
            }),
            pages_file: pages::file_name(1),
            extents,
            parent_pages: Vec::new(),
            prev_pages: Vec::new(),
            tracked: Vec::new(),
        };
        (m, off)
    }

    pub fn apply(m: &mut MmImage, size: &mut u64, p: &Perturb) {
        match p {
            Perturb::Vma(i, f, v) if !m.vmas.is_empty() => {
                let n = m.vmas.len();
                let vma = &mut m.vmas[i.index(n)];
                if *f == 0 { vma.start = *v } else { vma.end = *v }
            }
            Perturb::Extent(i, f, v) if !m.extents.is_empty() => {
                let n = m.extents.len();
                let e = &mut m.extents[i.index(n)];
                match f {
                    0 => e.start = *v,
                    1 => e.nr_pages = *v / P,
                    _ => e.offset = *v,
                }
            }
            Perturb::Vdso(f, v) => {
                let d = m.vdso.as_mut().unwrap();
                match f {
                    0 => d.vvar_start = *v,
                    1 => d.vvar_size = *v,
                    2 => d.vvar_vclock_size = *v,
                    _ => d.vdso_start = *v,
                }
            }
            Perturb::Share(i) if !m.vmas.is_empty() => {
                let n = m.vmas.len();
                let v = &mut m.vmas[i.index(n)];
                v.shared = !v.shared;
            }
            Perturb::SwapVmas(a, b) if !m.vmas.is_empty() => {
                let n = m.vmas.len();
                m.vmas.swap(a.index(n), b.index(n));
            }
            Perturb::SwapExtents(a, b) if !m.extents.is_empty() => {
                let n = m.extents.len();
                m.extents.swap(a.index(n), b.index(n));
            }
            Perturb::DropVma(i) if !m.vmas.is_empty() => {
                let n = m.vmas.len();
                m.vmas.remove(i.index(n));
            }
            Perturb::DropExtent(i) if !m.extents.is_empty() => {
                let n = m.extents.len();
                m.extents.remove(i.index(n));
            }
            Perturb::PagesSize(v) => *size = *v,
            _ => {}
        }
    }

    /// What FORMAT.md promises of a validated address space, computed without
    /// overflow: VMAs ordered, page aligned, in user space (but the vsyscall page);
    /// extents inside private VMAs, ordered, laid out back to back after the header
    /// page, filling the pages file exactly; a contiguous vDSO block when there are
    /// vDSO VMAs.
    pub fn consistent(m: &MmImage, pages_size: u64) -> bool {
        let a = |v: u64| v.is_multiple_of(P);
        let mut prev = 0u64;
        for v in &m.vmas {
            if !(a(v.start) && a(v.end) && v.start < v.end && v.start >= prev) {
                return false;
            }
            prev = v.end;
            let placed = if v.kind == VmaKind::Vsyscall { v.start == VSYSCALL_START } else { v.end <= TASK_SIZE_MAX };
            if !placed {
                return false;
            }
        }
        let mut prev = 0u128;
        let mut off = pages::HEADER_LEN as u128;
        for e in &m.extents {
            let s = e.start as u128;
            let end = s + e.nr_pages as u128 * P as u128;
            if !a(e.start) || e.nr_pages == 0 || s < prev || e.offset as u128 != off {
                return false;
            }
            let Some(v) = m.vmas.iter().find(|v| (v.start as u128) <= s && s < v.end as u128) else {
                return false;
            };
            if end > v.end as u128 || !v.kind.has_pages(v.shared) {
                return false;
            }
            prev = end;
            off += end - s;
        }
        if off != pages_size as u128 {
            return false;
        }
        let vdso_vmas = m.vmas.iter().any(|v| matches!(v.kind, VmaKind::Vvar | VmaKind::VvarVclock | VmaKind::Vdso));
        if vdso_vmas {
            let Some(d) = &m.vdso else { return false };
            let n = d.vdso_bytes.len() as u64;
            if !(a(n) && n <= 64 * P) {
                return false;
            }
            if d.vvar_start as u128 + d.vvar_size as u128 + d.vvar_vclock_size as u128 != d.vdso_start as u128 {
                return false;
            }
            // The block is exactly the VMAs restore maps it as.
            let find = |k: VmaKind| m.vmas.iter().find(|v| v.kind == k).map(|v| (v.start as u128, v.end as u128));
            let (vs, vz, vc, ds) =
                (d.vvar_start as u128, d.vvar_size as u128, d.vvar_vclock_size as u128, d.vdso_start as u128);
            if find(VmaKind::Vvar) != Some((vs, vs + vz)) {
                return false;
            }
            if vc != 0 && find(VmaKind::VvarVclock) != Some((vs + vz, ds)) {
                return false;
            }
            if find(VmaKind::Vdso) != Some((ds, ds + n as u128)) {
                return false;
            }
            let count =
                m.vmas.iter().filter(|v| matches!(v.kind, VmaKind::Vvar | VmaKind::VvarVclock | VmaKind::Vdso)).count();
            if count > 3 {
                return false;
            }
        }
        true
    }

    proptest! {
        #![proptest_config(config(4000))]

        /// `MmImage::validate` accepts exactly the consistent address spaces.
        #[test]
        fn mm_validate_matches_the_model(
            specs in vec(vma_spec(), 0..7),
            vsyscall in any::<bool>(),
            perturbs in vec(perturb(), 0..3),
        ) {
            let (mut m, mut size) = build(&specs, vsyscall);
            prop_assert!(consistent(&m, size), "the generator builds consistent images");
            m.validate(size).map_err(|e| TestCaseError::fail(format!("refused before any change: {e}")))?;
            for p in &perturbs {
                apply(&mut m, &mut size, p);
            }
            let any = AnyImage::Mm(m.clone());
            let back = AnyImage::decode(Kind::Mm, &any.encode().unwrap()).unwrap();
            prop_assert_eq!(&back, &any);
            if hits_known_vdso_overflow(&any) {
                return Ok(());
            }
            let got = m.validate(size);
            let want = consistent(&m, size);
            prop_assert_eq!(got.is_ok(), want, "validate says {:?}", got);
        }
    }

    // The pid array.

    fn id() -> impl Strategy<Value = i32> {
        prop_oneof![
            8 => 1i32..8,
            1 => prop::sample::select(vec![0, -1, PID_MAX_LIMIT, PID_MAX_LIMIT + 1, i32::MIN]),
        ]
    }

    fn state() -> impl Strategy<Value = TaskState> {
        prop_oneof![
            4 => Just(TaskState::Running),
            1 => prop::sample::select(vec![0, 1, 19, 64, 65]).prop_map(|signal| TaskState::Stopped { signal }),
            1 => prop::sample::select(vec![0, 0x100, 0x7f, 0x9, 0x8b, 0x10000])
                .prop_map(|status| TaskState::Zombie { status }),
            1 => Just(TaskState::LeaderExited),
        ]
    }

    fn entry() -> impl Strategy<Value = TaskEntry> {
        (id(), prop_oneof![1 => Just(0), 4 => id()], id(), id(), vec(8i32..12, 0..3), any::<bool>(), state()).prop_map(
            |(pid, ppid, pgid, sid, extra, leader, state)| {
                let mut threads = if leader { vec![pid] } else { vec![] };
                threads.extend(extra);
                TaskEntry { pid, ppid, pgid, sid, threads, state }
            },
        )
    }

    /// What a validated pid array guarantees (a subset of the rules, the ones the
    /// restorer relies on to create the tree).
    fn sound(t: &PsTree) -> Result<(), String> {
        let ok = |id: i32| id > 0 && id <= PID_MAX_LIMIT;
        let root = t.tasks.first().ok_or("empty")?;
        if t.tasks.iter().any(|o| o.pid == root.ppid) {
            return Err("the root's parent is in the tree".into());
        }
        if root.state.is_zombie() {
            return Err("the root is a zombie".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, e) in t.tasks.iter().enumerate() {
            if !(ok(e.pid) && ok(e.pgid) && ok(e.sid) && e.ppid >= 0 && e.ppid <= PID_MAX_LIMIT) {
                return Err(format!("task {}: ids out of range", e.pid));
            }
            if i > 0 && !t.tasks[..i].iter().any(|p| p.pid == e.ppid) {
                return Err(format!("task {}: parent not before it", e.pid));
            }
            match e.state {
                TaskState::Zombie { .. } if !e.threads.is_empty() => return Err("zombie threads".into()),
                TaskState::LeaderExited if e.threads.is_empty() || e.threads.contains(&e.pid) => {
                    return Err("exited leader".into());
                }
                TaskState::Running | TaskState::Stopped { .. } if e.threads.first() != Some(&e.pid) => {
                    return Err(format!("task {}: leader not first", e.pid));
                }
                TaskState::Stopped { signal } if !(1..=64).contains(&signal) => return Err("stop signal".into()),
                _ => {}
            }
            let mut ids: Vec<i32> = e.threads.clone();
            if !ids.contains(&e.pid) {
                ids.push(e.pid);
            }
            for id in ids {
                if !ok(id) || !seen.insert(id) {
                    return Err(format!("id {id} out of range or twice"));
                }
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(config(6000))]

        /// Whatever `PsTree::validate` accepts has the properties the restorer
        /// relies on, and round-trips.
        #[test]
        fn pstree_validate_is_sound(tasks in vec(entry(), 0..6)) {
            let t = PsTree { tasks };
            let any = AnyImage::PsTree(t.clone());
            prop_assert_eq!(AnyImage::decode(Kind::PsTree, &any.encode().unwrap()).unwrap(), any);
            if let (Ok(()), Err(why)) = (t.validate(), sound(&t)) {
                return Err(TestCaseError::fail(format!("accepted, but {why}: {t:?}")));
            }
        }
    }
}

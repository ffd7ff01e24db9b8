//! Framing of image files: round trips of every kind, and one test per way a
//! frame can be refused (FORMAT.md, "Framing of metadata files"), plus the header
//! page of pages files.

mod common;

use common::*;
use rckpt_images::frame::{self, HEADER_LEN, Header, MAGIC};
use rckpt_images::{Image, ImageError, ImageSet, Kind, core, fdinfo, files, inventory, mm, pages, pstree};

fn encoded_samples() -> Vec<(AnyImage, Vec<u8>)> {
    samples(&valid_set())
        .into_iter()
        .map(|s| {
            let b = s.encode().expect("encodes");
            (s, b)
        })
        .collect()
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn header_only(kind: Kind, body_len: u64) -> Vec<u8> {
    Header { kind, version: kind.current_version(), body_len, body_crc: 0 }.encode().to_vec()
}

// ---------------------------------------------------------------------------
// Round trips

#[test]
fn the_sample_image_set_is_valid() {
    let set = valid_set();
    set.validate().expect("the builders make a valid image");
    assert_eq!(set.pstree.tasks.len(), 2);
    assert_eq!(set.inventory.images.len(), 2 + 4 * 2);
    let m = &set.mms[&ROOT];
    assert!(m.extents.len() >= 3 && m.vmas.len() >= 8);
    assert_eq!(pages_file(m).len() as u64, pages_size(m));
    pages::check_header(&pages_file(m), ROOT).expect("pages header");
}

#[test]
fn every_kind_round_trips() {
    for (value, bytes) in encoded_samples() {
        let kind = value.kind();
        let back = AnyImage::decode(kind, &bytes).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(back, value, "{kind} changed in a round trip");
    }
}

#[test]
fn every_kind_has_a_well_formed_header() {
    for (value, bytes) in encoded_samples() {
        let kind = value.kind();
        assert!(bytes.len() > HEADER_LEN, "{kind}: empty body");
        assert_eq!(bytes[0..8], MAGIC, "{kind}");
        assert_eq!(bytes[0..8], *b"RCKPTIMG", "{kind}");
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), kind as u16, "{kind}");
        assert_eq!(u16::from_le_bytes([bytes[10], bytes[11]]), kind.current_version(), "{kind}");
        assert_eq!(bytes[12..16], [0; 4], "{kind}: reserved");
        assert_eq!(u64_at(&bytes, 16), (bytes.len() - HEADER_LEN) as u64, "{kind}");
        assert_eq!(u32_at(&bytes, 24), crc32c::crc32c(&bytes[HEADER_LEN..]), "{kind}");
        assert_eq!(u32_at(&bytes, 28), crc32c::crc32c(&bytes[..28]), "{kind}");
        let h = Header::decode(&bytes, kind).expect("header");
        assert_eq!(
            h,
            Header {
                kind,
                version: kind.current_version(),
                body_len: (bytes.len() - HEADER_LEN) as u64,
                body_crc: crc32c::crc32c(&bytes[HEADER_LEN..]),
            }
        );
        assert_eq!(h.encode()[..], bytes[..HEADER_LEN], "{kind}: header re-encodes");
        let (h2, body) = frame::unframe(&bytes, kind).expect("unframe");
        assert_eq!(h2, h);
        assert_eq!(body, &bytes[HEADER_LEN..]);
        // The body is plain postcard of the value.
        let direct = match &value {
            AnyImage::Inventory(v) => postcard::to_allocvec(v),
            AnyImage::PsTree(v) => postcard::to_allocvec(v),
            AnyImage::Core(v) => postcard::to_allocvec(v),
            AnyImage::Mm(v) => postcard::to_allocvec(v),
            AnyImage::Files(v) => postcard::to_allocvec(v),
            AnyImage::FdInfo(v) => postcard::to_allocvec(v),
        }
        .unwrap();
        assert_eq!(body, &direct[..], "{kind}: body is the postcard encoding");
    }
}

#[test]
fn encode_decode_encode_is_byte_identical() {
    for (value, bytes) in encoded_samples() {
        let kind = value.kind();
        let again = AnyImage::decode(kind, &bytes).unwrap().encode().unwrap();
        assert_eq!(again, bytes, "{kind}: re-encoding differs");
        // And encoding is deterministic.
        assert_eq!(value.encode().unwrap(), bytes, "{kind}");
    }
}

#[test]
fn decode_version_one_is_the_frame_decoder() {
    for (value, bytes) in encoded_samples() {
        let kind = value.kind();
        let v = AnyImage::decode_version(kind, 1, &bytes[HEADER_LEN..]).unwrap();
        assert_eq!(v, value, "{kind}");
    }
}

#[test]
fn decode_version_refuses_unknown_versions_by_name() {
    for (value, bytes) in encoded_samples() {
        let kind = value.kind();
        let next = kind.current_version() + 1;
        for version in [0u16, next, 99, u16::MAX] {
            match AnyImage::decode_version(kind, version, &bytes[HEADER_LEN..]) {
                Err(ImageError::UnsupportedVersion { kind: k, version: v, accepted }) => {
                    assert_eq!((k, v, accepted), (kind, version, kind.accepted_versions()));
                }
                other => panic!("{kind} version {version}: {other:?}"),
            }
        }
    }
}

#[test]
fn the_whole_image_round_trips_file_by_file() {
    let set = valid_set();
    let inv = inventory::Inventory::decode(&set.inventory.encode().unwrap()).unwrap();
    let tree = pstree::PsTree::decode(&set.pstree.encode().unwrap()).unwrap();
    let fil = files::FilesImage::decode(&set.files.encode().unwrap()).unwrap();
    let mut read = ImageSet {
        inventory: inv,
        pstree: tree,
        files: fil,
        cores: Default::default(),
        mms: Default::default(),
        fdtables: Default::default(),
    };
    for t in &set.pstree.tasks {
        let p = t.pid;
        let c = set.cores[&p].encode().unwrap();
        let m = set.mms[&p].encode().unwrap();
        let f = set.fdtables[&p].encode().unwrap();
        // The inventory lists each file with the size it has on disk.
        assert_eq!(set.inventory.file(&core::file_name(p)).unwrap().size, c.len() as u64);
        assert_eq!(set.inventory.file(&mm::file_name(p)).unwrap().size, m.len() as u64);
        assert_eq!(set.inventory.file(&fdinfo::file_name(p)).unwrap().size, f.len() as u64);
        read.cores.insert(p, core::TaskCore::decode(&c).unwrap());
        read.mms.insert(p, mm::MmImage::decode(&m).unwrap());
        read.fdtables.insert(p, fdinfo::FdTable::decode(&f).unwrap());
    }
    read.validate().expect("the decoded image validates");
    assert_eq!(read.inventory, set.inventory);
    assert_eq!(read.pstree, set.pstree);
    assert_eq!(read.files, set.files);
    assert_eq!(read.cores, set.cores);
    assert_eq!(read.mms, set.mms);
    assert_eq!(read.fdtables, set.fdtables);
}

#[test]
fn headers_round_trip_for_every_kind_including_pages() {
    for kind in Kind::ALL {
        for (body_len, body_crc) in [(0u64, 0u32), (kind.body_cap(), 0xdead_beef)] {
            let h = Header { kind, version: 1, body_len, body_crc };
            let b = h.encode();
            assert_eq!(Header::decode(&b, kind).unwrap(), h, "{kind}");
        }
    }
}

#[test]
fn kinds_keep_their_on_disk_numbers_and_names() {
    let want = [
        (Kind::Inventory, 1u16, "inventory"),
        (Kind::PsTree, 2, "pstree"),
        (Kind::Core, 3, "core"),
        (Kind::Mm, 4, "mm"),
        (Kind::Files, 5, "files"),
        (Kind::FdInfo, 6, "fdinfo"),
        (Kind::Pages, 7, "pages"),
    ];
    assert_eq!(Kind::ALL.len(), want.len());
    for (kind, n, name) in want {
        assert_eq!(kind as u16, n);
        assert_eq!(Kind::from_u16(n), Some(kind));
        assert_eq!(kind.name(), name);
        assert_eq!(kind.to_string(), name);
        assert!(kind.accepted_versions().contains(&kind.current_version()));
    }
    for n in [0u16, 8, 0x100, u16::MAX] {
        assert_eq!(Kind::from_u16(n), None);
    }
    assert_eq!(Kind::Pages.body_cap(), 0);
    for kind in META_KINDS {
        assert!(kind.body_cap() >= 1 << 20, "{kind}");
    }
}

#[test]
fn file_names_of_task_files() {
    assert_eq!(core::file_name(42), "core-42.img");
    assert_eq!(mm::file_name(42), "mm-42.img");
    assert_eq!(fdinfo::file_name(42), "fdinfo-42.img");
    assert_eq!(pages::file_name(42), "pages-42.img");
    let names: Vec<_> = ImageSet::expected_files(&pstree(), &files_image()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "pstree.img",
            "files.img",
            "core-1000.img",
            "mm-1000.img",
            "fdinfo-1000.img",
            "pages-1000.img",
            "core-1002.img",
            "mm-1002.img",
            "fdinfo-1002.img",
            "pages-1002.img",
        ]
    );
}

// ---------------------------------------------------------------------------
// One test per way a frame is refused

#[test]
fn bad_magic() {
    for (value, bytes) in encoded_samples() {
        let kind = value.kind();
        for i in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 0x20;
            // Even with a header checksum that matches, the magic comes first.
            let mut fixed = b.clone();
            fix_header_crc(&mut fixed);
            for b in [b, fixed] {
                let r = AnyImage::decode(kind, &b);
                assert!(matches!(r, Err(ImageError::BadMagic)), "{kind} byte {i}: {r:?}");
            }
        }
        // A pages file is not a metadata image either.
        let r = AnyImage::decode(kind, &pages::header(ROOT));
        assert!(matches!(r, Err(ImageError::BadMagic)), "{kind}: {r:?}");
    }
    assert_eq!(ImageError::BadMagic.to_string(), "not an rckpt image (bad magic)");
}

#[test]
fn header_checksum() {
    for (value, bytes) in encoded_samples() {
        let kind = value.kind();
        // Any change to bytes 8..28 (kind, version, reserved, length, body crc), or
        // to the stored checksum itself, is caught before any of them is trusted.
        for i in 8..32 {
            for bit in [0x01u8, 0x80] {
                let mut b = bytes.clone();
                b[i] ^= bit;
                let r = AnyImage::decode(kind, &b);
                assert!(matches!(r, Err(ImageError::HeaderChecksum)), "{kind} byte {i} bit {bit:#x}: {r:?}");
            }
        }
    }
}

#[test]
fn unknown_kind() {
    for (value, bytes) in encoded_samples() {
        let kind = value.kind();
        for raw in [0u16, 8, 9, 0x0100, 0x0300, u16::MAX] {
            let mut b = bytes.clone();
            b[8..10].copy_from_slice(&raw.to_le_bytes());
            fix_header_crc(&mut b);
            match AnyImage::decode(kind, &b) {
                Err(e @ ImageError::UnknownKind(n)) => {
                    assert_eq!(n, raw);
                    assert_eq!(e.to_string(), format!("unknown image kind {raw}"));
                }
                other => panic!("{kind} with kind {raw}: {other:?}"),
            }
        }
    }
}

#[test]
fn wrong_kind() {
    let all = encoded_samples();
    for (found, bytes) in &all {
        for expected in META_KINDS {
            if expected == found.kind() {
                continue;
            }
            match AnyImage::decode(expected, bytes) {
                Err(e @ ImageError::WrongKind { expected: x, found: f }) => {
                    assert_eq!((x, f), (expected, found.kind()));
                    assert_eq!(e.to_string(), format!("expected a {expected} image, found a {} image", found.kind()));
                }
                other => panic!("{} read as {expected}: {other:?}", found.kind()),
            }
        }
    }
    // A frame claiming the Pages kind is not a metadata image.
    let b = header_only(Kind::Pages, 0);
    for expected in META_KINDS {
        let r = AnyImage::decode(expected, &b);
        assert!(
            matches!(r, Err(ImageError::WrongKind { expected: x, found: Kind::Pages }) if x == expected),
            "{expected}: {r:?}"
        );
    }
    // The kind is checked on the header alone, even if the rest of the file would
    // be refused too.
    let (v, bytes) = &all[3];
    assert_eq!(v.kind(), Kind::Mm);
    let r = AnyImage::decode(Kind::Core, &bytes[..HEADER_LEN]);
    assert!(matches!(r, Err(ImageError::WrongKind { .. })), "{r:?}");
}

#[test]
fn unsupported_version() {
    for (value, bytes) in encoded_samples() {
        let kind = value.kind();
        let next = kind.current_version() + 1;
        for version in [99u16, 0, next, u16::MAX] {
            let mut b = bytes.clone();
            b[10..12].copy_from_slice(&version.to_le_bytes());
            fix_header_crc(&mut b);
            match AnyImage::decode(kind, &b) {
                Err(e @ ImageError::UnsupportedVersion { kind: k, version: v, accepted }) => {
                    assert_eq!((k, v, accepted), (kind, version, kind.accepted_versions()));
                    assert_eq!(
                        e.to_string(),
                        format!(
                            "{kind} image version {version} is not supported (this rckpt reads {:?})",
                            kind.accepted_versions()
                        )
                    );
                }
                other => panic!("{kind} version {version}: {other:?}"),
            }
        }
    }
    // The example of FORMAT.md, for the mm kind.
    let mut b = encoded_samples()[3].1.clone();
    b[10..12].copy_from_slice(&3u16.to_le_bytes());
    fix_header_crc(&mut b);
    let e = mm::MmImage::decode(&b).unwrap_err();
    assert!(e.to_string().starts_with("mm image version 3 is not supported (this rckpt reads"), "{e}");
}

#[test]
fn reserved_bytes_not_zero() {
    for (value, bytes) in encoded_samples() {
        let kind = value.kind();
        for i in 12..16 {
            for v in [1u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] = v;
                fix_header_crc(&mut b);
                assert_invalid(AnyImage::decode(kind, &b), &["reserved"]);
            }
        }
    }
}

#[test]
fn body_length_above_the_cap_is_refused_from_the_header_alone() {
    for kind in META_KINDS {
        let cap = kind.body_cap();
        for len in [cap + 1, cap * 2, 1 << 40, u64::MAX / 2, u64::MAX] {
            // Only the 32-byte header: the reader must not look for (or allocate) a
            // body it will refuse anyway.
            let b = header_only(kind, len);
            assert_eq!(b.len(), HEADER_LEN);
            match AnyImage::decode(kind, &b) {
                Err(e @ ImageError::TooLarge { kind: k, len: l, cap: c }) => {
                    assert_eq!((k, l, c), (kind, len, cap));
                    assert_eq!(e.to_string(), format!("{kind} body of {len} bytes exceeds the cap of {cap}"));
                }
                other => panic!("{kind} claiming {len} bytes: {other:?}"),
            }
            assert!(matches!(Header::decode(&b, kind), Err(ImageError::TooLarge { .. })));
        }
        // Exactly the cap is accepted by the header; the missing body is then
        // reported as a truncation.
        let b = header_only(kind, cap);
        assert_eq!(Header::decode(&b, kind).unwrap().body_len, cap);
        match AnyImage::decode(kind, &b) {
            Err(ImageError::Truncated { what: "body", need, have: 0 }) => assert_eq!(need, cap),
            other => panic!("{kind} claiming its cap: {other:?}"),
        }
    }
    // The Pages kind has no postcard body at all.
    assert!(matches!(
        Header::decode(&header_only(Kind::Pages, 1), Kind::Pages),
        Err(ImageError::TooLarge { kind: Kind::Pages, len: 1, cap: 0 })
    ));
}

#[test]
fn truncated_header() {
    for (value, bytes) in encoded_samples() {
        let kind = value.kind();
        for n in 0..HEADER_LEN {
            match AnyImage::decode(kind, &bytes[..n]) {
                Err(e @ ImageError::Truncated { what: "header", need: 32, have }) => {
                    assert_eq!(have, n as u64);
                    assert_eq!(e.to_string(), format!("truncated header: need 32 bytes, have {n}"));
                }
                other => panic!("{kind} cut at {n}: {other:?}"),
            }
        }
    }
}

#[test]
fn truncated_body() {
    for (value, bytes) in encoded_samples() {
        let kind = value.kind();
        let len = (bytes.len() - HEADER_LEN) as u64;
        for n in HEADER_LEN..bytes.len() {
            match AnyImage::decode(kind, &bytes[..n]) {
                Err(ImageError::Truncated { what: "body", need, have }) => {
                    assert_eq!(need, len, "{kind}");
                    assert_eq!(have, (n - HEADER_LEN) as u64, "{kind}");
                }
                other => panic!("{kind} cut at {n}: {other:?}"),
            }
        }
    }
}

#[test]
fn trailing_bytes() {
    for (value, bytes) in encoded_samples() {
        let kind = value.kind();
        for extra in [1usize, 7, 4096] {
            let mut b = bytes.clone();
            b.extend(std::iter::repeat_n(0u8, extra));
            match AnyImage::decode(kind, &b) {
                Err(e @ ImageError::TrailingBytes(n)) => {
                    assert_eq!(n, extra as u64);
                    assert_eq!(e.to_string(), format!("{extra} trailing bytes"));
                }
                other => panic!("{kind} + {extra}: {other:?}"),
            }
        }
    }
}

#[test]
fn trailing_bytes_inside_a_checksummed_body() {
    // The frame is right, but postcard does not consume the whole body.
    for (value, bytes) in encoded_samples() {
        let kind = value.kind();
        for extra in [&[0u8][..], &[1, 2, 3]] {
            let mut b = bytes.clone();
            b.extend_from_slice(extra);
            refit_frame(&mut b);
            match AnyImage::decode(kind, &b) {
                Err(ImageError::TrailingBytes(n)) => assert_eq!(n, extra.len() as u64),
                other => panic!("{kind} + {extra:?}: {other:?}"),
            }
        }
    }
}

#[test]
fn body_checksum() {
    for (value, bytes) in encoded_samples() {
        let kind = value.kind();
        let len = bytes.len();
        for i in [HEADER_LEN, HEADER_LEN + 1, (HEADER_LEN + len) / 2, len - 1] {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            let r = AnyImage::decode(kind, &b);
            assert!(matches!(r, Err(ImageError::BodyChecksum)), "{kind} byte {i}: {r:?}");
        }
        // A stored body checksum that is wrong, under a header checksum that is right.
        let mut b = bytes.clone();
        b[24] ^= 0x10;
        fix_header_crc(&mut b);
        let r = AnyImage::decode(kind, &b);
        assert!(matches!(r, Err(ImageError::BodyChecksum)), "{kind}: {r:?}");
        // Two swapped body bytes (a classic that weak sums miss).
        let mut b = bytes.clone();
        let (x, y) = (HEADER_LEN, HEADER_LEN + 2);
        if b[x] != b[y] {
            b.swap(x, y);
            let r = AnyImage::decode(kind, &b);
            assert!(matches!(r, Err(ImageError::BodyChecksum)), "{kind}: {r:?}");
        }
    }
    assert_eq!(ImageError::BodyChecksum.to_string(), "body checksum mismatch");
}

#[test]
fn garbage_body_under_a_correct_frame_is_a_decode_error() {
    for kind in META_KINDS {
        // 0xff.. is an unterminated varint; an empty body ends before the first field.
        for body in [&[0xffu8; 12][..], &[], &[0x80; 3]] {
            let b = forge(kind as u16, 1, [0; 4], body.len() as u64, body);
            let r = AnyImage::decode(kind, &b);
            assert!(matches!(r, Err(ImageError::Decode(_))), "{kind} {body:?}: {r:?}");
        }
    }
}

#[test]
fn truncated_postcard_under_a_correct_frame_is_a_decode_error() {
    for (value, bytes) in encoded_samples() {
        let kind = value.kind();
        let body = &bytes[HEADER_LEN..];
        // Every prefix of the body, framed correctly, is refused cleanly.
        for n in 0..body.len() {
            let b = forge(kind as u16, 1, [0; 4], n as u64, &body[..n]);
            let r = AnyImage::decode(kind, &b);
            assert!(matches!(r, Err(ImageError::Decode(_))), "{kind} body cut at {n}: {r:?}");
        }
    }
}

#[test]
fn header_checks_come_in_the_documented_order() {
    let (_, bytes) = &encoded_samples()[0];
    let kind = Kind::Inventory;
    let forged = |k: u16, v: u16, r: [u8; 4], len: u64| forge(k, v, r, len, &bytes[HEADER_LEN..]);
    // Magic before the checksum.
    let mut b = bytes.clone();
    b[0] = b'X';
    b[20] ^= 1;
    assert!(matches!(AnyImage::decode(kind, &b), Err(ImageError::BadMagic)));
    // The checksum before the kind, version, reserved bytes and length.
    let mut b = forged(99, 99, [1; 4], u64::MAX);
    b[28] ^= 1;
    assert!(matches!(AnyImage::decode(kind, &b), Err(ImageError::HeaderChecksum)));
    // The kind before the version.
    let b = forged(99, 99, [1; 4], u64::MAX);
    assert!(matches!(AnyImage::decode(kind, &b), Err(ImageError::UnknownKind(99))));
    let b = forged(Kind::Mm as u16, 99, [1; 4], u64::MAX);
    assert!(matches!(AnyImage::decode(kind, &b), Err(ImageError::WrongKind { .. })));
    // The version before the reserved bytes.
    let b = forged(kind as u16, 99, [1; 4], u64::MAX);
    assert!(matches!(AnyImage::decode(kind, &b), Err(ImageError::UnsupportedVersion { version: 99, .. })));
    // The reserved bytes before the length.
    let b = forged(kind as u16, 1, [1; 4], u64::MAX);
    assert_invalid(AnyImage::decode(kind, &b), &["reserved"]);
    // The cap before the truncation of the body.
    let b = forged(kind as u16, 1, [0; 4], u64::MAX);
    assert!(matches!(AnyImage::decode(kind, &b), Err(ImageError::TooLarge { .. })));
    // The length before the body checksum.
    let mut b = bytes.clone();
    b[HEADER_LEN] ^= 1;
    b.pop();
    assert!(matches!(AnyImage::decode(kind, &b), Err(ImageError::Truncated { what: "body", .. })));
    let mut b = bytes.clone();
    b[HEADER_LEN] ^= 1;
    b.push(0);
    assert!(matches!(AnyImage::decode(kind, &b), Err(ImageError::TrailingBytes(1))));
}

// ---------------------------------------------------------------------------
// The writer's side of the cap

#[test]
fn encode_refuses_a_body_above_the_cap() {
    let mut inv = valid_set().inventory;
    inv.kernel_release = "x".repeat(Kind::Inventory.body_cap() as usize);
    match inv.encode() {
        Err(ImageError::TooLarge { kind, len, cap }) => {
            assert_eq!(kind, Kind::Inventory);
            assert_eq!(cap, 1 << 20);
            assert!(len > cap);
        }
        other => panic!("{:?}", other.map(|b| b.len())),
    }
    // A body of exactly the cap is fine, and reads back.
    let mut small = valid_set().inventory;
    let base = postcard::to_allocvec(&small).unwrap().len();
    // Replace the 16-byte release (1-byte length) by n bytes (3-byte length, n < 2^21).
    assert_eq!(small.kernel_release.len(), 16);
    let n = (1usize << 20) - (base - 17) - 3;
    small.kernel_release = "y".repeat(n);
    let b = small.encode().expect("a body of exactly the cap");
    assert_eq!(u64_at(&b, 16), 1 << 20);
    assert_eq!(inventory::Inventory::decode(&b).unwrap(), small);
}

#[test]
fn the_pages_kind_frames_no_body() {
    let b = frame::encode(Kind::Pages, &()).expect("an empty body");
    assert_eq!(b.len(), HEADER_LEN);
    let (h, body) = frame::unframe(&b, Kind::Pages).unwrap();
    assert_eq!(h.body_len, 0);
    assert!(body.is_empty());
    assert!(matches!(
        frame::encode(Kind::Pages, &1u8),
        Err(ImageError::TooLarge { kind: Kind::Pages, len: 1, cap: 0 })
    ));
}

// ---------------------------------------------------------------------------
// The header page of pages files

fn pages_header_fields(pid: i32, kind: u16, version: u16) -> Vec<u8> {
    let mut h = pages::header(pid);
    h[8..10].copy_from_slice(&kind.to_le_bytes());
    h[10..12].copy_from_slice(&version.to_le_bytes());
    let c = crc32c::crc32c(&h[0..16]);
    h[16..20].copy_from_slice(&c.to_le_bytes());
    h
}

#[test]
fn pages_header_round_trips() {
    for pid in [1, ROOT, CHILD, pstree::PID_MAX_LIMIT] {
        let h = pages::header(pid);
        assert_eq!(h.len() as u64, pages::HEADER_LEN);
        assert_eq!(h[0..8], pages::MAGIC);
        assert_eq!(h[0..8], *b"RCKPTPGS");
        assert_eq!(u16::from_le_bytes([h[8], h[9]]), Kind::Pages as u16);
        assert_eq!(u16::from_le_bytes([h[10], h[11]]), pages::VERSION);
        assert_eq!(i32::from_le_bytes(h[12..16].try_into().unwrap()), pid);
        assert_eq!(u32_at(&h, 16), crc32c::crc32c(&h[0..16]));
        assert!(h[20..].iter().all(|&b| b == 0));
        pages::check_header(&h, pid).unwrap();
        // The reader looks at the first 20 bytes only.
        pages::check_header(&h[..20], pid).unwrap();
    }
    // A whole pages file starts with a header the reader accepts.
    let set = valid_set();
    for (pid, m) in &set.mms {
        let f = pages_file(m);
        pages::check_header(&f, *pid).unwrap();
        for e in &m.extents {
            let data = &f[e.offset as usize..(e.offset + e.len()) as usize];
            assert_eq!(crc32c::crc32c(data), e.crc32c);
        }
    }
}

#[test]
fn pages_header_of_another_task() {
    let h = pages::header(CHILD);
    let e = pages::check_header(&h, ROOT).unwrap_err();
    assert_invalid(Err::<(), _>(e), &["1002", "1000"]);
    let e = pages::check_header(&h, ROOT).unwrap_err();
    assert_eq!(e.to_string(), "pages file belongs to task 1002, not 1000");
}

#[test]
fn pages_header_bad_magic() {
    for i in 0..8 {
        let mut h = pages::header(ROOT);
        h[i] ^= 0x01;
        assert!(matches!(pages::check_header(&h, ROOT), Err(ImageError::BadMagic)));
    }
    // A metadata image is not a pages file.
    let b = valid_set().mms[&ROOT].encode().unwrap();
    assert!(matches!(pages::check_header(&b, ROOT), Err(ImageError::BadMagic)));
}

#[test]
fn pages_header_checksum() {
    for i in 8..20 {
        let mut h = pages::header(ROOT);
        h[i] ^= 0x04;
        let r = pages::check_header(&h, ROOT);
        assert!(matches!(r, Err(ImageError::HeaderChecksum)), "byte {i}: {r:?}");
    }
}

#[test]
fn pages_header_version() {
    for version in [0u16, 2, 99, u16::MAX] {
        let h = pages_header_fields(ROOT, Kind::Pages as u16, version);
        match pages::check_header(&h, ROOT) {
            Err(e @ ImageError::UnsupportedVersion { kind: Kind::Pages, version: v, accepted }) => {
                assert_eq!(v, version);
                assert_eq!(accepted, &[pages::VERSION][..]);
                assert!(e.to_string().starts_with(&format!("pages image version {version}")));
            }
            other => panic!("version {version}: {other:?}"),
        }
    }
}

#[test]
fn pages_header_truncated() {
    let h = pages::header(ROOT);
    for n in 0..20 {
        match pages::check_header(&h[..n], ROOT) {
            Err(ImageError::Truncated { what: "pages header", need: 20, have }) => assert_eq!(have, n as u64),
            other => panic!("cut at {n}: {other:?}"),
        }
    }
}

#[test]

fn pages_header_wrong_kind() {
    // The header page records the kind (FORMAT.md), but a header with another kind
    // and a matching checksum is accepted.
    for kind in [0u16, Kind::Mm as u16, Kind::Core as u16, 0xffff] {
        let h = pages_header_fields(ROOT, kind, pages::VERSION);
        let r = pages::check_header(&h, ROOT);
        assert!(r.is_err(), "a pages header of kind {kind} was accepted");
    }
}

#[test]

fn a_body_with_an_overlong_varint_is_refused() {
    // The fd table body starts with its pid, a zigzag varint: 1000 is 2000,
    // [0xd0, 0x0f]. The same number in three bytes is [0xd0, 0x8f, 0x00].
    let set = valid_set();
    let table = &set.fdtables[&ROOT];
    let good = table.encode().unwrap();
    assert_eq!(good[HEADER_LEN..HEADER_LEN + 2], [0xd0, 0x0f]);
    let mut b = good.clone();
    b.splice(HEADER_LEN..HEADER_LEN + 2, [0xd0, 0x8f, 0x00]);
    refit_frame(&mut b);
    match fdinfo::FdTable::decode(&b) {
        Err(_) => {}
        Ok(t) => {
            assert_eq!(&t, table);
            t.validate(set.files.files.len()).unwrap();
            assert_eq!(t.encode().unwrap(), b, "an overlong varint decoded to an image whose encoding is other bytes");
        }
    }
}

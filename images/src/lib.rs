//! The rckpt image format: one framed, checksummed, versioned file per resource,
//! and validation of each file and of the image as a whole.
//!
//! This crate is pure: it turns bytes into checked values and back, and makes no
//! system calls. Everything in an image is untrusted input (ARCHITECTURE rule 4).
//! See FORMAT.md for the files and the compatibility rules.

pub mod core;
pub mod fdinfo;
pub mod files;
pub mod frame;
pub mod inventory;
pub mod mm;
pub mod pages;
pub mod pstree;
pub mod seccomp;

use std::collections::BTreeMap;

pub use frame::Kind;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("not an rckpt image (bad magic)")]
    BadMagic,
    #[error("header checksum mismatch")]
    HeaderChecksum,
    #[error("body checksum mismatch")]
    BodyChecksum,
    #[error("unknown image kind {0}")]
    UnknownKind(u16),
    #[error("expected a {expected} image, found a {found} image")]
    WrongKind { expected: Kind, found: Kind },
    #[error("{kind} image version {version} is not supported (this rckpt reads {accepted:?})")]
    UnsupportedVersion { kind: Kind, version: u16, accepted: &'static [u16] },
    #[error("{kind} body of {len} bytes exceeds the cap of {cap}")]
    TooLarge { kind: Kind, len: u64, cap: u64 },
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated { what: &'static str, need: u64, have: u64 },
    #[error("{0} trailing bytes")]
    TrailingBytes(u64),
    #[error("failed to decode: {0}")]
    Decode(String),
    #[error("failed to encode: {0}")]
    Encode(String),
    #[error("{0}")]
    Invalid(String),
}

pub(crate) fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<(), ImageError> {
    if ok { Ok(()) } else { Err(ImageError::Invalid(msg())) }
}

/// Names of files inside an image directory: plain names, no separators.
pub(crate) fn check_file_name(name: &str) -> Result<(), ImageError> {
    check(
        !name.is_empty()
            && name.len() <= 255
            && !name.contains('/')
            && !name.contains('\0')
            && name != "."
            && name != "..",
        || format!("bad image file name {name:?}"),
    )
}

/// Paths named by an image (files to reopen): absolute, bounded, no NUL.
pub(crate) fn check_abs_path(path: &str) -> Result<(), ImageError> {
    check(path.starts_with('/') && path.len() < 4096 && !path.contains('\0'), || format!("bad path {path:?}"))
}

/// A metadata image kind: its frame kind and its decoders, one per accepted version.
pub trait Image: Sized + serde::Serialize + serde::de::DeserializeOwned {
    const KIND: Kind;

    /// Decodes a body of the given version into the current type. Old versions
    /// get their own decoder and a tested conversion here.
    fn decode_version(version: u16, body: &[u8]) -> Result<Self, ImageError> {
        match version {
            1 => frame::decode_body(body),
            v => Err(ImageError::UnsupportedVersion {
                kind: Self::KIND,
                version: v,
                accepted: Self::KIND.accepted_versions(),
            }),
        }
    }

    /// Decodes a whole file. A body of the current version must be the one
    /// encoding of its value (postcard also accepts overlong varints): one image,
    /// one byte sequence, so what decodes re-encodes byte for byte.
    fn decode(bytes: &[u8]) -> Result<Self, ImageError> {
        let (header, body) = frame::unframe(bytes, Self::KIND)?;
        let value = Self::decode_version(header.version, body)?;
        if header.version == Self::KIND.current_version() {
            let again = postcard::to_allocvec(&value).map_err(|e| ImageError::Encode(e.to_string()))?;
            if again != body {
                return Err(ImageError::Invalid("the body is not in canonical form".into()));
            }
        }
        Ok(value)
    }

    fn encode(&self) -> Result<Vec<u8>, ImageError> {
        frame::encode(Self::KIND, self)
    }
}

impl Image for inventory::Inventory {
    const KIND: Kind = Kind::Inventory;
}
impl Image for pstree::PsTree {
    const KIND: Kind = Kind::PsTree;
}
impl Image for core::TaskCore {
    const KIND: Kind = Kind::Core;
}
impl Image for mm::MmImage {
    const KIND: Kind = Kind::Mm;

    /// Version 1 is version 2 without `vmflags::NORESERVE`: the same layout, so
    /// its body decodes as is; a flag it could not have had makes it invalid.
    fn decode_version(version: u16, body: &[u8]) -> Result<Self, ImageError> {
        match version {
            1 => {
                let mm: mm::MmImage = frame::decode_body(body)?;
                check(mm.vmas.iter().all(|v| v.flags & !mm::vmflags::ALL_V1 == 0), || {
                    "a version 1 mm image with VMA flags version 1 did not have".to_string()
                })?;
                Ok(mm)
            }
            2 => frame::decode_body(body),
            v => Err(ImageError::UnsupportedVersion {
                kind: Self::KIND,
                version: v,
                accepted: Self::KIND.accepted_versions(),
            }),
        }
    }
}
impl Image for files::FilesImage {
    const KIND: Kind = Kind::Files;
}
impl Image for fdinfo::FdTable {
    const KIND: Kind = Kind::FdInfo;
}

/// All metadata of one checkpoint, decoded. Built by the reader in src/restore,
/// then [`ImageSet::validate`]d before any process exists.
#[derive(Debug, Clone)]
pub struct ImageSet {
    pub inventory: inventory::Inventory,
    pub pstree: pstree::PsTree,
    pub files: files::FilesImage,
    pub cores: BTreeMap<i32, core::TaskCore>,
    pub mms: BTreeMap<i32, mm::MmImage>,
    pub fdtables: BTreeMap<i32, fdinfo::FdTable>,
}

impl ImageSet {
    /// Names of the per-task files the inventory must list for this tree.
    pub fn expected_files(pstree: &pstree::PsTree, files: &files::FilesImage) -> Vec<(String, Kind)> {
        let mut v = vec![(pstree::FILE_NAME.to_string(), Kind::PsTree), (files::FILE_NAME.to_string(), Kind::Files)];
        for t in pstree.tasks.iter().filter(|t| !t.state.is_zombie()) {
            v.push((core::file_name(t.pid), Kind::Core));
            v.push((mm::file_name(t.pid), Kind::Mm));
            v.push((fdinfo::file_name(t.pid), Kind::FdInfo));
            v.push((pages::file_name(t.pid), Kind::Pages));
        }
        for i in 0..files.contents.len() {
            v.push((files::content_file_name(i), Kind::Pages));
        }
        v
    }

    /// Cross-checks every file against the others: the same tasks everywhere,
    /// every reference resolvable, every size consistent.
    pub fn validate(&self) -> Result<(), ImageError> {
        let inv = &self.inventory;
        inv.validate()?;
        self.pstree.validate()?;
        self.files.validate()?;
        check(self.pstree.root().pid == inv.root_pid, || {
            format!("inventory root {} is not the first task {}", inv.root_pid, self.pstree.root().pid)
        })?;
        let expected = Self::expected_files(&self.pstree, &self.files);
        let listed: std::collections::HashMap<&str, &inventory::ImageFile> =
            inv.images.iter().map(|f| (f.name.as_str(), f)).collect();
        for (name, kind) in &expected {
            let f = listed
                .get(name.as_str())
                .ok_or_else(|| ImageError::Invalid(format!("the inventory does not list {name}")))?;
            check(f.kind == *kind, || format!("{name} is listed as {}, not {kind}", f.kind))?;
        }
        check(inv.images.len() == expected.len(), || "the inventory lists files of no task".into())?;
        let live = self.pstree.tasks.iter().filter(|t| !t.state.is_zombie()).count();
        check(self.cores.len() == live, || "core images do not match the pid array".into())?;
        check(self.mms.len() == live, || "mm images do not match the pid array".into())?;
        check(self.fdtables.len() == live, || "fdinfo images do not match the pid array".into())?;
        for t in self.pstree.tasks.iter().filter(|t| !t.state.is_zombie()) {
            let pid = t.pid;
            let core =
                self.cores.get(&pid).ok_or_else(|| ImageError::Invalid(format!("no core image for task {pid}")))?;
            check(core.pid == pid, || format!("core image of task {pid} says {}", core.pid))?;
            core.validate()?;
            let tids: Vec<i32> = core.threads.iter().map(|t| t.tid).collect();
            check(tids == t.threads, || format!("task {pid}: threads in core and pstree differ"))?;
            let mm = self.mms.get(&pid).ok_or_else(|| ImageError::Invalid(format!("no mm image for task {pid}")))?;
            check(mm.pid == pid, || format!("mm image of task {pid} says {}", mm.pid))?;
            check(mm.pages_file == pages::file_name(pid), || format!("task {pid}: pages file {}", mm.pages_file))?;
            let pages_size = listed.get(mm.pages_file.as_str()).map(|f| f.size).unwrap_or(0);
            mm.validate(pages_size)?;
            mm.validate_parent_pages(self.mms.get(&t.ppid))?;
            mm.validate_prev_pages()?;
            check(mm.prev_pages.is_empty() || inv.prev.is_some(), || {
                format!("task {pid}: pages from a previous image, which the inventory does not name")
            })?;
            for v in &mm.vmas {
                if let mm::VmaKind::Shared { content, .. } = v.kind {
                    let c = self.files.contents.get(content as usize);
                    check(c.is_some_and(|c| !matches!(c.origin, files::ContentOrigin::Deleted { .. })), || {
                        format!("task {pid}: VMA {:#x} maps content {content}, not shared memory", v.start)
                    })?;
                }
            }
            let fdt = self
                .fdtables
                .get(&pid)
                .ok_or_else(|| ImageError::Invalid(format!("no fdinfo image for task {pid}")))?;
            check(fdt.pid == pid, || format!("fdinfo image of task {pid} says {}", fdt.pid))?;
            fdt.validate(self.files.files.len())?;
            if let Some(tty) = &fdt.tty {
                check((tty.pty as usize) < self.files.ptys.len(), || {
                    format!("task {pid}: controlling pty {}", tty.pty)
                })?;
            }
        }
        for (i, c) in self.files.contents.iter().enumerate() {
            let name = files::content_file_name(i);
            let size = listed.get(name.as_str()).map(|f| f.size);
            check(size == Some(c.data_len), || format!("{name} holds {size:?} bytes, not {}", c.data_len))?;
        }
        let live_pids: std::collections::HashSet<i32> =
            self.pstree.tasks.iter().filter(|t| !t.state.is_zombie()).map(|t| t.pid).collect();
        let live = |pid: i32| live_pids.contains(&pid);
        for f in &self.files.files {
            if let files::FileKind::Epoll { owner, .. } = &f.kind {
                check(live(*owner), || format!("file {}: epoll owner {owner} is not a live task", f.id))?;
            }
            for l in f.locks.iter().filter(|l| l.kind == files::LockKind::Posix) {
                check(live(l.owner), || format!("file {}: lock owner {} is not a live task", f.id, l.owner))?;
            }
            if let files::FileKind::External { key } = &f.kind {
                check(inv.externals.iter().any(|e| &e.key == key), || {
                    format!("file {} names unknown external {key}", f.id)
                })?;
            }
        }
        Ok(())
    }
}

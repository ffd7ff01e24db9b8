//! What every fuzz input goes through, whichever driver produced it: the libFuzzer
//! targets (fuzz_targets/), the stable driver (src/main.rs) and the corpus replay
//! test of rckpt-images (images/tests/fuzz_corpus.rs, which includes this file by
//! path). It needs only rckpt-images, crc32c and the builders of
//! images/tests/common (as `crate::common`).
//!
//! An input is one image file (metadata kinds and the pages header) or a whole
//! image directory packed in a small archive (the `image` target). [`run`] decodes
//! it the way the reader in src/restore/read.rs does, validates what decodes, and
//! panics when an oracle fails: a file that decodes must re-encode to the same
//! bytes, the whole-image check must refuse what a file's own check refuses, and a
//! valid image must survive what restore then does with it. Any other panic comes
//! from images/ itself and is a bug.
//!
//! The reader's own work (decoding and validation) runs inside `crate::metered`,
//! which the including crate provides: the fuzz crate measures the heap taken
//! there (src/alloc.rs), the replay test just runs it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use rckpt_images::frame::{self, HEADER_LEN};
use rckpt_images::{Image, ImageError, ImageSet, Kind, core, fdinfo, files, inventory, mm, pages, pstree};

use crate::common::{self, AnyImage};

/// One fuzz target per image kind, and one for a whole image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Inventory,
    PsTree,
    Core,
    Mm,
    Files,
    FdInfo,
    /// The header page of a pages file.
    Pages,
    /// A whole image directory (see [`Dir`]): every file decoded as the reader
    /// does, then `ImageSet::validate`.
    Image,
}

impl Target {
    pub const ALL: [Target; 8] = [
        Target::Inventory,
        Target::PsTree,
        Target::Core,
        Target::Mm,
        Target::Files,
        Target::FdInfo,
        Target::Pages,
        Target::Image,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::Image => "image",
            t => t.kind().unwrap().name(),
        }
    }

    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The image kind of a single-file target.
    pub fn kind(self) -> Option<Kind> {
        Some(match self {
            Target::Inventory => Kind::Inventory,
            Target::PsTree => Kind::PsTree,
            Target::Core => Kind::Core,
            Target::Mm => Kind::Mm,
            Target::Files => Kind::Files,
            Target::FdInfo => Kind::FdInfo,
            Target::Pages => Kind::Pages,
            Target::Image => return None,
        })
    }

    /// The largest input the reader would accept for this target: the kind's body
    /// cap and the frame header (for an image, the sum over its metadata files and
    /// pages headers).
    pub fn cap(self, input: &[u8]) -> u64 {
        match self {
            Target::Pages => pages::HEADER_LEN,
            Target::Image => Dir::parse(input)
                .files
                .keys()
                .map(|n| match kind_of(n) {
                    Some(Kind::Pages) => pages::HEADER_LEN,
                    Some(k) => HEADER_LEN as u64 + k.body_cap(),
                    None => 0,
                })
                .sum::<u64>()
                // The reader reads the inventory first, whatever else there is.
                .max(HEADER_LEN as u64 + Kind::Inventory.body_cap()),
            t => HEADER_LEN as u64 + t.kind().unwrap().body_cap(),
        }
    }
}

/// How far an input got before it was refused: statistics only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Depth {
    /// Refused by the frame: magic, checksums, kind, version, length, cap.
    Frame,
    /// The frame was sound but postcard refused the body, or it was not canonical.
    Decode,
    /// Decoded, refused by validation (the file's own or the whole image's).
    Check,
    /// Accepted.
    Valid,
}

impl Depth {
    pub const ALL: [Depth; 4] = [Depth::Frame, Depth::Decode, Depth::Check, Depth::Valid];
}

/// Runs one input through `target`. Panics only on a bug (see the module doc).
pub fn run(target: Target, bytes: &[u8]) -> Depth {
    match target {
        Target::Pages => run_pages(bytes),
        Target::Image => run_image(bytes),
        t => run_meta(t.kind().unwrap(), bytes),
    }
}

// ---------------------------------------------------------------------------
// Single files

/// Valid image sets that single files are checked in: the builders' two-task tree
/// and every image of the committed corpus (fuzz/corpus/image), so that a mutated
/// real file meets the image it came from.
static CONTEXTS: LazyLock<Vec<ImageSet>> = LazyLock::new(|| {
    let mut v = vec![common::valid_set()];
    let dir = corpus_dir().join("image");
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(&dir).map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    paths.sort();
    for p in paths {
        if let Ok(bytes) = std::fs::read(&p)
            && let Ok(set) = read_dir(&Dir::parse(&bytes))
        {
            v.push(set);
        }
    }
    v
});

/// fuzz/corpus, from either crate that includes this file.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

pub fn contexts() -> &'static [ImageSet] {
    &CONTEXTS
}

/// The context a file is checked in (an index into [`contexts`]): the one whose
/// tree holds the pid it claims; and the pid to file a per-task image under.
fn context_for(img: &AnyImage) -> (usize, i32) {
    let sets = contexts();
    let live = |s: &ImageSet, pid: i32| s.pstree.tasks.iter().any(|t| t.pid == pid && !t.state.is_zombie());
    let pick = |f: &dyn Fn(&ImageSet) -> bool| sets.iter().position(f).unwrap_or(0);
    let ci = match img {
        AnyImage::Inventory(v) => pick(&|s| s.inventory.root_pid == v.root_pid),
        AnyImage::PsTree(v) => pick(&|s| v.tasks.first().is_some_and(|t| t.pid == s.pstree.root().pid)),
        AnyImage::Files(v) => {
            // The image it came from, else one whose externals it names.
            let externals_known = |s: &ImageSet| {
                v.files.iter().all(|f| match &f.kind {
                    files::FileKind::External { key } => s.inventory.externals.iter().any(|e| &e.key == key),
                    _ => true,
                })
            };
            sets.iter()
                .position(|s| s.files == *v)
                .unwrap_or_else(|| pick(&|s| s.files.files.len() == v.files.len() && externals_known(s)))
        }
        AnyImage::Core(v) => pick(&|s| live(s, v.pid)),
        AnyImage::Mm(v) => pick(&|s| live(s, v.pid)),
        AnyImage::FdInfo(v) => pick(&|s| live(s, v.pid)),
    };
    let set = &sets[ci];
    let pid = match img {
        AnyImage::Core(v) if live(set, v.pid) => v.pid,
        AnyImage::Mm(v) if live(set, v.pid) => v.pid,
        AnyImage::FdInfo(v) if live(set, v.pid) => v.pid,
        _ => set.pstree.root().pid,
    };
    (ci, pid)
}

thread_local! {
    /// This thread's copies of the contexts, for [`with_substituted`].
    static WORK: std::cell::RefCell<Vec<ImageSet>> = std::cell::RefCell::new(contexts().to_vec());
}

/// Runs `f` on context `ci` with `img` in place of the file of its kind (per-task
/// kinds at `pid`), as the reader would file it; gives `img` back. The image is
/// swapped in and out rather than the context cloned, so that the heap measured
/// around it is the validation's own.
fn with_substituted<R>(img: AnyImage, ci: usize, pid: i32, f: impl FnOnce(&ImageSet) -> R) -> (R, AnyImage) {
    fn swap_in<T>(map: &mut BTreeMap<i32, T>, pid: i32, v: T) -> Option<T> {
        map.insert(pid, v)
    }
    fn swap_out<T>(map: &mut BTreeMap<i32, T>, pid: i32, old: Option<T>) -> T {
        match old {
            Some(o) => map.insert(pid, o).unwrap(),
            None => map.remove(&pid).unwrap(),
        }
    }
    WORK.with(|w| {
        let mut w = w.borrow_mut();
        let s = &mut w[ci];
        match img {
            AnyImage::Inventory(mut v) => {
                std::mem::swap(&mut s.inventory, &mut v);
                let r = f(s);
                std::mem::swap(&mut s.inventory, &mut v);
                (r, AnyImage::Inventory(v))
            }
            AnyImage::PsTree(mut v) => {
                std::mem::swap(&mut s.pstree, &mut v);
                let r = f(s);
                std::mem::swap(&mut s.pstree, &mut v);
                (r, AnyImage::PsTree(v))
            }
            AnyImage::Files(mut v) => {
                std::mem::swap(&mut s.files, &mut v);
                let r = f(s);
                std::mem::swap(&mut s.files, &mut v);
                (r, AnyImage::Files(v))
            }
            AnyImage::Core(v) => {
                let old = swap_in(&mut s.cores, pid, v);
                let r = f(s);
                (r, AnyImage::Core(swap_out(&mut s.cores, pid, old)))
            }
            AnyImage::Mm(v) => {
                let old = swap_in(&mut s.mms, pid, v);
                let r = f(s);
                (r, AnyImage::Mm(swap_out(&mut s.mms, pid, old)))
            }
            AnyImage::FdInfo(v) => {
                let old = swap_in(&mut s.fdtables, pid, v);
                let r = f(s);
                (r, AnyImage::FdInfo(swap_out(&mut s.fdtables, pid, old)))
            }
        }
    })
}

fn run_meta(kind: Kind, bytes: &[u8]) -> Depth {
    if frame::unframe(bytes, kind).is_err() {
        let r = crate::metered(|| AnyImage::decode(kind, bytes).map(|_| ()));
        assert!(r.is_err(), "{kind}: decoded a file whose frame is refused");
        return Depth::Frame;
    }
    // What the reader does with the file: decode, its own checks, the whole
    // image's; measured (the rest is the harness's, and the contexts are set up
    // before).
    WORK.with(|_| ());
    let read = crate::metered(|| {
        let img = AnyImage::decode(kind, bytes)?;
        let (ci, pid) = context_for(&img);
        let alone = validate_alone(&img, &contexts()[ci]);
        let (whole, img) = with_substituted(img, ci, pid, ImageSet::validate);
        Ok::<_, ImageError>((img, ci, pid, alone, whole))
    });
    let Ok((img, ci, pid, alone, whole)) = read else { return Depth::Decode };
    let again = img.encode().unwrap_or_else(|e| panic!("{kind}: a decoded image does not encode: {e}"));
    assert!(again == bytes, "{kind}: decoded, but re-encodes to other bytes (not canonical)");
    if alone.is_ok() {
        restore_uses(&img, &contexts()[ci]);
    }
    assert!(
        alone.is_ok() || whole.is_err(),
        "{kind}: the whole image accepts a file that its own check refuses ({})",
        alone.unwrap_err()
    );
    match whole {
        Ok(()) => {
            with_substituted(img, ci, pid, after_valid);
            Depth::Valid
        }
        Err(_) => Depth::Check,
    }
}

/// A file's own checks, with what they need from the rest of the image.
fn validate_alone(img: &AnyImage, ctx: &ImageSet) -> Result<(), ImageError> {
    match img {
        AnyImage::Mm(v) => v.validate(ctx.inventory.file(&pages::file_name(v.pid)).map_or(0, |f| f.size)),
        AnyImage::FdInfo(v) => v.validate(ctx.files.files.len()),
        other => other.validate_alone(ctx),
    }
}

/// Calls that follow a file's own validation.
fn restore_uses(img: &AnyImage, ctx: &ImageSet) {
    match img {
        AnyImage::Mm(m) => {
            let _ = m.pages_len();
            // As a child of every task of its context, and as nobody's child.
            for parent in ctx.mms.values() {
                let _ = m.validate_parent_pages(Some(parent));
            }
            let _ = m.validate_parent_pages(None);
            for e in &m.extents {
                let _ = m.vma_holding(e.start, e.end());
            }
        }
        AnyImage::Core(c) => {
            for s in c.shared_pending.iter().chain(c.threads.iter().flat_map(|t| t.pending.iter())) {
                let _ = s.signo();
            }
        }
        AnyImage::PsTree(t) => {
            let _ = t.root();
            let _ = ImageSet::expected_files(t, &ctx.files);
        }
        AnyImage::Inventory(_) | AnyImage::Files(_) | AnyImage::FdInfo(_) => {}
    }
}

/// What restore does with an image that passed `ImageSet::validate` and that
/// must not panic.
fn after_valid(set: &ImageSet) {
    let root = set.pstree.root().pid;
    assert_eq!(root, set.inventory.root_pid);
    for t in &set.pstree.tasks {
        assert!(set.pstree.find(t.pid).is_some());
        if t.state.is_zombie() {
            continue;
        }
        let c = &set.cores[&t.pid];
        for s in c.shared_pending.iter().chain(c.threads.iter().flat_map(|t| t.pending.iter())) {
            let _ = s.signo();
        }
        let m = &set.mms[&t.pid];
        let size = set.inventory.file(&m.pages_file).map(|f| f.size).expect("the pages file is listed");
        assert_eq!(pages::HEADER_LEN.checked_add(m.pages_len()), Some(size), "pages file size");
        for e in &m.extents {
            assert!(m.vma_holding(e.start, e.end()).is_some());
        }
        for fd in &set.fdtables[&t.pid].fds {
            assert!(set.files.files.get(fd.file as usize).is_some());
        }
    }
}

fn run_pages(bytes: &[u8]) -> Depth {
    let root = common::ROOT;
    let owner = bytes.get(12..16).map(|b| i32::from_le_bytes(b.try_into().unwrap()));
    let (as_root, as_owner) =
        crate::metered(|| (pages::check_header(bytes, root), owner.map(|pid| pages::check_header(bytes, pid))));
    if as_root.is_ok() {
        assert_eq!(owner, Some(root), "pages header accepted for another task");
    }
    match (owner, as_owner) {
        (Some(pid), Some(Ok(()))) => {
            assert_eq!(bytes[..20], pages::header(pid)[..20], "pages header accepted with other bytes");
            Depth::Valid
        }
        _ => Depth::Frame,
    }
}

// ---------------------------------------------------------------------------
// Whole images

/// An image directory in memory. A metadata file is its bytes; a pages file is
/// its length and the first bytes of its header (the reader reads 20), the rest
/// zero.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dir {
    pub files: BTreeMap<String, DirFile>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirFile {
    /// The file's length: for a pages file, what the reader stats; for a
    /// metadata file always `data.len()`.
    pub len: u64,
    pub data: Vec<u8>,
}

/// The first bytes of an archive (optional when parsing).
pub const ARCHIVE_MAGIC: [u8; 8] = *b"RCKPTDIR";
/// How much of a pages file an archive keeps.
pub const PAGES_KEPT: usize = 32;

impl Dir {
    /// Reads an archive: the magic, then per file a u16 name length, the name, a
    /// u64 file length, a u32 data length and the data (little endian). Lenient,
    /// as fuzz inputs are: a short field ends the list; the magic may be missing.
    pub fn parse(bytes: &[u8]) -> Dir {
        let mut b = bytes.strip_prefix(&ARCHIVE_MAGIC[..]).unwrap_or(bytes);
        let mut dir = Dir::default();
        fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            let (h, t) = (b.get(..n)?, b.get(n..)?);
            *b = t;
            Some(h)
        }
        while let Some(nl) = take(&mut b, 2) {
            let Some(name) = take(&mut b, u16::from_le_bytes(nl.try_into().unwrap()) as usize) else { break };
            let Some(len) = take(&mut b, 8) else { break };
            let Some(dl) = take(&mut b, 4) else { break };
            let dl = u32::from_le_bytes(dl.try_into().unwrap()) as usize;
            let avail = b.len();
            let data = take(&mut b, dl.min(avail)).unwrap().to_vec();
            let name = String::from_utf8_lossy(name).into_owned();
            let len = if is_raw(&name) { u64::from_le_bytes(len.try_into().unwrap()) } else { data.len() as u64 };
            dir.files.insert(name, DirFile { len, data });
        }
        dir
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = ARCHIVE_MAGIC.to_vec();
        for (name, f) in &self.files {
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&f.len.to_le_bytes());
            out.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
            out.extend_from_slice(&f.data);
        }
        out
    }

    /// Reads an image directory from disk (pages files: their length and header).
    pub fn load(path: &Path) -> std::io::Result<Dir> {
        let mut dir = Dir::default();
        for e in std::fs::read_dir(path)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !e.file_type()?.is_file() {
                continue;
            }
            let file = if is_raw(&name) {
                let len = e.metadata()?.len();
                let mut data = std::fs::read(e.path())?;
                data.truncate(PAGES_KEPT);
                DirFile { len, data }
            } else {
                let data = std::fs::read(e.path())?;
                DirFile { len: data.len() as u64, data }
            };
            dir.files.insert(name, file);
        }
        Ok(dir)
    }

    /// Writes the directory out (pages files zero-filled to their length), for
    /// `rckpt show` or `rckpt restore` on a reproducer.
    pub fn unpack(&self, path: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(path)?;
        for (name, f) in &self.files {
            if name.contains('/') || name == "." || name == ".." || name.is_empty() {
                continue;
            }
            let file = std::fs::File::create(path.join(name))?;
            use std::io::Write;
            (&file).write_all(&f.data[..f.data.len().min(f.len as usize)])?;
            file.set_len(f.len)?;
        }
        Ok(())
    }

    /// A valid image set as a directory.
    pub fn from_set(set: &ImageSet) -> Dir {
        let mut dir = Dir::default();
        let mut meta = |name: String, bytes: Result<Vec<u8>, ImageError>| {
            let data = bytes.expect("encodes");
            dir.files.insert(name, DirFile { len: data.len() as u64, data });
        };
        meta(inventory::FILE_NAME.into(), set.inventory.encode());
        meta(pstree::FILE_NAME.into(), set.pstree.encode());
        meta(files::FILE_NAME.into(), set.files.encode());
        for (pid, c) in &set.cores {
            meta(core::file_name(*pid), c.encode());
        }
        for (pid, m) in &set.mms {
            meta(mm::file_name(*pid), m.encode());
        }
        for (pid, f) in &set.fdtables {
            meta(fdinfo::file_name(*pid), f.encode());
        }
        for (pid, m) in &set.mms {
            let mut data = pages::header(*pid);
            data.truncate(PAGES_KEPT);
            dir.files.insert(pages::file_name(*pid), DirFile { len: common::pages_size(m), data });
        }
        for (i, c) in set.files.contents.iter().enumerate() {
            dir.files.insert(files::content_file_name(i), DirFile { len: c.data_len, data: Vec::new() });
        }
        dir
    }

    fn meta(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(|f| f.data.as_slice())
    }
}

/// Whether a file is raw data (pages, contents), which the reader only stats and,
/// for pages, reads the header of.
pub fn is_raw(name: &str) -> bool {
    kind_of(name) == Some(Kind::Pages) || name.starts_with("content-")
}

/// The kind of a file by its name, as src/restore/read.rs `kind_of`.
pub fn kind_of(name: &str) -> Option<Kind> {
    let stem = name.split(['-', '.']).next()?;
    Kind::ALL.into_iter().find(|k| k.name() == stem)
}

fn run_image(bytes: &[u8]) -> Depth {
    let dir = Dir::parse(bytes);
    match crate::metered(|| read_dir(&dir)) {
        Ok(set) => {
            after_valid(&set);
            Depth::Valid
        }
        Err(e) => match e {
            ImageError::Decode(_) | ImageError::TrailingBytes(_) => Depth::Decode,
            ImageError::Invalid(m) if m.contains("canonical") => Depth::Decode,
            ImageError::Invalid(_) => Depth::Check,
            _ => Depth::Frame,
        },
    }
}

/// Reads all metadata of an image as src/restore/read.rs `read` does (same order,
/// same checks, same refusals before decoding), in memory.
pub fn read_dir(dir: &Dir) -> Result<ImageSet, ImageError> {
    let inv: inventory::Inventory = read_framed(dir, inventory::FILE_NAME, None)?;
    inv.validate()?;
    let listed = |name: &str| {
        inv.file(name).map(|f| f.size).ok_or_else(|| ImageError::Invalid(format!("the inventory does not list {name}")))
    };
    let tree: pstree::PsTree = read_framed(dir, pstree::FILE_NAME, Some(listed(pstree::FILE_NAME)?))?;
    tree.validate()?;
    let files_img: files::FilesImage = read_framed(dir, files::FILE_NAME, Some(listed(files::FILE_NAME)?))?;
    let mut cores = BTreeMap::new();
    let mut mms = BTreeMap::new();
    let mut fdtables = BTreeMap::new();
    for t in tree.tasks.iter().filter(|t| !t.state.is_zombie()) {
        let n = core::file_name(t.pid);
        cores.insert(t.pid, read_framed::<core::TaskCore>(dir, &n, Some(listed(&n)?))?);
        let n = mm::file_name(t.pid);
        mms.insert(t.pid, read_framed::<mm::MmImage>(dir, &n, Some(listed(&n)?))?);
        let n = fdinfo::file_name(t.pid);
        fdtables.insert(t.pid, read_framed::<fdinfo::FdTable>(dir, &n, Some(listed(&n)?))?);
        let n = pages::file_name(t.pid);
        check_pages_file(dir, &n, t.pid, listed(&n)?)?;
    }
    let set = ImageSet { inventory: inv, pstree: tree, files: files_img, cores, mms, fdtables };
    set.validate()?;
    for (i, c) in set.files.contents.iter().enumerate() {
        let name = files::content_file_name(i);
        let len = dir.files.get(&name).map(|f| f.len);
        if len != Some(c.data_len) {
            return Err(ImageError::Invalid(format!("{name}: {len:?} bytes where the inventory lists {}", c.data_len)));
        }
    }
    Ok(set)
}

fn read_framed<T: Image>(dir: &Dir, name: &str, expect_size: Option<u64>) -> Result<T, ImageError> {
    let bytes = dir.meta(name).ok_or_else(|| ImageError::Invalid("the file is missing".into()))?;
    let len = bytes.len() as u64;
    if let Some(want) = expect_size
        && want != len
    {
        return Err(ImageError::Invalid(format!("{len} bytes where the inventory lists {want}")));
    }
    let cap = HEADER_LEN as u64 + T::KIND.body_cap();
    if len > cap {
        return Err(ImageError::TooLarge { kind: T::KIND, len, cap });
    }
    T::decode(bytes)
}

fn check_pages_file(dir: &Dir, name: &str, pid: i32, size: u64) -> Result<(), ImageError> {
    let f = dir.files.get(name).ok_or_else(|| ImageError::Invalid("the file is missing".into()))?;
    if f.len != size {
        return Err(ImageError::Invalid(format!("{} bytes where the inventory lists {size}", f.len)));
    }
    if f.len < 20 {
        return Err(ImageError::Truncated { what: "pages header", need: 20, have: f.len });
    }
    let mut head = [0u8; 20];
    for (h, b) in head.iter_mut().zip(&f.data) {
        *h = *b;
    }
    pages::check_header(&head, pid)
}

// ---------------------------------------------------------------------------
// Repairs: what lets damage reach the decoder and the cross-checks

/// The file with its header made to agree with its body (length and both
/// checksums; magic, kind, version and reserved bytes as they are), or None when
/// it is too short to have a header or already agrees.
pub fn refit(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() < HEADER_LEN {
        return None;
    }
    let mut b = bytes.to_vec();
    let len = (b.len() - HEADER_LEN) as u64;
    b[16..24].copy_from_slice(&len.to_le_bytes());
    let c = crc32c::crc32c(&b[HEADER_LEN..]);
    b[24..28].copy_from_slice(&c.to_le_bytes());
    fix_header_crc(&mut b);
    (b != bytes).then_some(b)
}

/// Recomputes the header checksum only.
pub fn fix_header_crc(b: &mut [u8]) {
    if b.len() >= HEADER_LEN {
        let c = crc32c::crc32c(&b[0..28]);
        b[28..32].copy_from_slice(&c.to_le_bytes());
    }
}

/// Recomputes the checksum of a pages header.
pub fn fix_pages_crc(b: &mut [u8]) {
    if b.len() >= 20 {
        let c = crc32c::crc32c(&b[0..16]);
        b[16..20].copy_from_slice(&c.to_le_bytes());
    }
}

/// Makes the inventory list every file of `dir` it already lists with the file's
/// real length (what the writer does last), if the inventory decodes.
pub fn relist(dir: &mut Dir) -> bool {
    let Some(inv) = dir.meta(inventory::FILE_NAME) else { return false };
    let Ok(mut inv) = inventory::Inventory::decode(inv) else { return false };
    let mut changed = false;
    for f in &mut inv.images {
        if let Some(d) = dir.files.get(&f.name)
            && d.len != f.size
        {
            f.size = d.len;
            changed = true;
        }
    }
    if !changed {
        return false;
    }
    let Ok(bytes) = inv.encode() else { return false };
    dir.files.insert(inventory::FILE_NAME.into(), DirFile { len: bytes.len() as u64, data: bytes });
    true
}

/// The archive with every metadata frame refitted, every pages header checksum
/// recomputed and the inventory's sizes brought up to date, or None if that
/// changes nothing.
pub fn repair(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut dir = Dir::parse(bytes);
    for (name, f) in &mut dir.files {
        match kind_of(name) {
            Some(Kind::Pages) => fix_pages_crc(&mut f.data),
            _ if is_raw(name) => {}
            _ => {
                if let Some(b) = refit(&f.data) {
                    f.len = b.len() as u64;
                    f.data = b;
                }
            }
        }
    }
    relist(&mut dir);
    let out = dir.to_bytes();
    (out != bytes).then_some(out)
}

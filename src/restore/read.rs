//! Reading an image directory: every file opened without following symlinks, its
//! size checked against the inventory and the kind's cap before it is read, its
//! frame and checksum checked, then the whole set cross-checked. Nothing here
//! creates a process.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rckpt_images::mm::PAGE_SIZE;
use rckpt_images::{Image, ImageSet, Kind, core, fdinfo, files, frame, inventory, mm, pages, pstree};

use super::{RestoreError, Result};

pub fn open_nofollow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path)
}

/// Reads a framed image file, refusing before allocation if it is larger than
/// its kind allows.
pub(crate) fn read_framed<T: Image>(dir: &Path, name: &str, expect_size: Option<u64>) -> Result<T> {
    let path = dir.join(name);
    let bad = |source| RestoreError::Image { file: name.to_string(), source };
    let mut f = match open_nofollow(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RestoreError::Image {
                file: name.to_string(),
                source: rckpt_images::ImageError::Invalid("the file is missing".into()),
            });
        }
        Err(source) => {
            return Err(RestoreError::Io { op: "open image file", path, source });
        }
    };
    let md = f.metadata().map_err(|source| RestoreError::Io { op: "stat image file", path: path.clone(), source })?;
    if !md.is_file() {
        return Err(bad(rckpt_images::ImageError::Invalid("not a regular file".into())));
    }
    let len = md.len();
    if let Some(want) = expect_size
        && want != len
    {
        return Err(bad(rckpt_images::ImageError::Invalid(format!("{len} bytes where the inventory lists {want}"))));
    }
    let cap = frame::HEADER_LEN as u64 + T::KIND.body_cap();
    if len > cap {
        return Err(bad(rckpt_images::ImageError::TooLarge { kind: T::KIND, len, cap }));
    }
    let mut buf = Vec::with_capacity(len as usize);
    f.by_ref().take(cap + 1).read_to_end(&mut buf).map_err(|source| RestoreError::Io {
        op: "read image file",
        path,
        source,
    })?;
    T::decode(&buf).map_err(bad)
}

/// Reads and validates all metadata of the image in `dir`.
pub fn read(dir: &Path) -> Result<ImageSet> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        _ => {
            return Err(RestoreError::NoImage { dir: dir.to_path_buf() });
        }
    }
    if !dir.join(inventory::FILE_NAME).exists() {
        return Err(RestoreError::Incomplete { dir: dir.to_path_buf() });
    }
    let inv: inventory::Inventory = read_framed(dir, inventory::FILE_NAME, None)?;
    inv.validate().map_err(|source| RestoreError::Image { file: inventory::FILE_NAME.into(), source })?;
    if inv.pre_dump {
        return Err(RestoreError::Invalid(format!(
            "{} is a pre-dump (memory only): restore the dump made with --prev-images-dir {0}",
            dir.display()
        )));
    }
    let size_of = |name: &str| inv.file(name).map(|f| f.size);
    let listed = |name: &str| -> Result<u64> {
        size_of(name).ok_or_else(|| RestoreError::Invalid(format!("the inventory does not list {name}")))
    };
    let tree: pstree::PsTree = read_framed(dir, pstree::FILE_NAME, Some(listed(pstree::FILE_NAME)?))?;
    tree.validate().map_err(|source| RestoreError::Image { file: pstree::FILE_NAME.into(), source })?;
    let files_img: files::FilesImage = read_framed(dir, files::FILE_NAME, Some(listed(files::FILE_NAME)?))?;
    let mut cores = BTreeMap::new();
    let mut mms = BTreeMap::new();
    let mut fdtables = BTreeMap::new();
    for t in tree.tasks.iter().filter(|t| !t.state.is_zombie()) {
        let n = core::file_name(t.pid);
        let c: core::TaskCore = read_framed(dir, &n, Some(listed(&n)?))?;
        cores.insert(t.pid, c);
        let n = mm::file_name(t.pid);
        let m: mm::MmImage = read_framed(dir, &n, Some(listed(&n)?))?;
        mms.insert(t.pid, m);
        let n = fdinfo::file_name(t.pid);
        let f: fdinfo::FdTable = read_framed(dir, &n, Some(listed(&n)?))?;
        fdtables.insert(t.pid, f);
        let n = pages::file_name(t.pid);
        check_pages_file(dir, &n, t.pid, listed(&n)?)?;
    }
    let set = ImageSet { inventory: inv, pstree: tree, files: files_img, cores, mms, fdtables };
    set.validate().map_err(|e| RestoreError::Invalid(e.to_string()))?;
    // Contents are raw; their checksums are checked as they are read, still
    // before any task exists.
    for (i, c) in set.files.contents.iter().enumerate() {
        let name = files::content_file_name(i);
        let len = std::fs::symlink_metadata(dir.join(&name)).ok().filter(|m| m.is_file()).map(|m| m.len());
        if len != Some(c.data_len) {
            let what = len.map_or("the file is missing".to_string(), |l| {
                format!("{l} bytes where the inventory lists {}", c.data_len)
            });
            return Err(RestoreError::Image { file: name, source: rckpt_images::ImageError::Invalid(what) });
        }
    }
    Ok(set)
}

fn check_pages_file(dir: &Path, name: &str, pid: i32, size: u64) -> Result<()> {
    let path = dir.join(name);
    let bad = |source| RestoreError::Image { file: name.to_string(), source };
    let mut f =
        open_nofollow(&path).map_err(|_| bad(rckpt_images::ImageError::Invalid("the file is missing".into())))?;
    let len =
        f.metadata().map_err(|source| RestoreError::Io { op: "stat pages file", path: path.clone(), source })?.len();
    if len != size {
        return Err(bad(rckpt_images::ImageError::Invalid(format!("{len} bytes where the inventory lists {size}"))));
    }
    let mut head = [0u8; 20];
    f.read_exact(&mut head)
        .map_err(|_| bad(rckpt_images::ImageError::Truncated { what: "pages header", need: 20, have: len }))?;
    pages::check_header(&head, pid).map_err(bad)
}

/// The pre-dump an image builds on: its directory, and the mm image of each
/// task that takes pages from it.
pub struct PrevSet {
    pub dir: PathBuf,
    pub mms: BTreeMap<i32, mm::MmImage>,
}

/// Reads the pre-dump `set` builds on, if any, and checks that it holds every
/// page the image takes from it, with the checksums of every extent those
/// pages are in: all before any process exists.
pub fn read_prev(set: &ImageSet) -> Result<Option<PrevSet>> {
    let Some(d) = &set.inventory.prev else { return Ok(None) };
    let dir = PathBuf::from(d);
    let gone = |what: String| RestoreError::Invalid(format!("the pre-dump this image builds on ({d}): {what}"));
    if !dir.join(inventory::FILE_NAME).exists() {
        return Err(gone("missing (keep it until the dump is restored no more)".into()));
    }
    let inv: inventory::Inventory = read_framed(&dir, inventory::FILE_NAME, None)?;
    inv.validate().map_err(|source| RestoreError::Image { file: format!("{d}/{}", inventory::FILE_NAME), source })?;
    if !inv.pre_dump {
        return Err(gone("not a pre-dump".into()));
    }
    let mut mms = BTreeMap::new();
    for (pid, m) in set.mms.iter().filter(|(_, m)| !m.prev_pages.is_empty()) {
        let name = mm::file_name(*pid);
        let size = inv.file(&name).map(|f| f.size).ok_or_else(|| gone(format!("it does not list {name}")))?;
        let pm: mm::MmImage = read_framed(&dir, &name, Some(size))?;
        let pname = pages::file_name(*pid);
        let psize = inv.file(&pname).map(|f| f.size).ok_or_else(|| gone(format!("it does not list {pname}")))?;
        pm.validate(psize).map_err(|source| RestoreError::Image { file: format!("{d}/{name}"), source })?;
        check_pages_file(&dir, &pname, *pid, psize)?;
        // Every page taken from it is in one of its extents; each such extent
        // is checked whole.
        let mut touched = std::collections::BTreeSet::new();
        for r in &m.prev_pages {
            let end = r.start + r.nr_pages * PAGE_SIZE;
            let mut at = r.start;
            while at < end {
                let i = pm.extents.partition_point(|e| e.end() <= at);
                match pm.extents.get(i) {
                    Some(e) if e.start <= at => {
                        touched.insert(i);
                        at = e.end().min(end);
                    }
                    _ => return Err(gone(format!("task {pid}: it does not hold the page at {at:#x}"))),
                }
            }
        }
        let f = open_nofollow(&dir.join(&pname)).map_err(|source| RestoreError::Io {
            op: "open",
            path: dir.join(&pname),
            source,
        })?;
        let mut buf = vec![0u8; 1 << 20];
        for i in touched {
            let e = &pm.extents[i];
            let mut crc = 0u32;
            let mut done = 0u64;
            while done < e.len() {
                let n = (buf.len() as u64).min(e.len() - done) as usize;
                std::os::unix::fs::FileExt::read_exact_at(&f, &mut buf[..n], e.offset + done)
                    .map_err(|source| RestoreError::Io { op: "read", path: dir.join(&pname), source })?;
                crc = crc32c::crc32c_append(crc, &buf[..n]);
                done += n as u64;
            }
            if crc != e.crc32c {
                return Err(RestoreError::PagesCorrupt { file: format!("{d}/{pname}"), addr: e.start, pid: *pid });
            }
        }
        mms.insert(*pid, pm);
    }
    Ok(Some(PrevSet { dir, mms }))
}

pub fn pages_path(dir: &Path, pid: i32) -> PathBuf {
    dir.join(pages::file_name(pid))
}

/// For `rckpt show` and tests: the kind a file name belongs to.
pub fn kind_of(name: &str) -> Option<Kind> {
    let stem = name.split(['-', '.']).next()?;
    Kind::ALL.into_iter().find(|k| k.name() == stem)
}

//! One file for a whole image: `rckpt dump --archive FILE` packs the image
//! directory, `rckpt restore --archive FILE` unpacks it into a private directory
//! and restores from there.
//!
//! The format (version 1.0), all integers little-endian:
//!
//! ```text
//! header, not compressed (16 bytes):
//!     magic "RCKPTARC", major u16 = 1, minor u16 = 0, compression u16 = 1 (zstd), reserved u16 = 0
//! one zstd frame, with its content checksum (xxh64), holding:
//!     per file:  name_len u16 (1..=255), name (a plain file name), len u64, len bytes
//!     end:       0u16, file count u32, total file bytes u64
//! trailer, not compressed: crc32c u32 of the header and the frame, byte for byte
//! ```
//!
//! Reading checks the magic and version first ("major must match, minor may be
//! older"), refuses an entry name that is not a plain image file name, writes each
//! file with O_EXCL|O_NOFOLLOW into a directory it created 0700, and checks the
//! trailer, the frame checksum and the end of input last. The checksum is known only
//! at the end of a stream, so nothing is restored before the whole archive has
//! been unpacked and checked; a caller removes the directory when unpacking fails.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::exit::Exit;
use crate::progress;

pub const MAGIC: [u8; 8] = *b"RCKPTARC";
pub const MAJOR: u16 = 1;
pub const MINOR: u16 = 0;
const COMPRESSION_ZSTD: u16 = 1;
const HEADER_LEN: usize = 16;
/// zstd's default: a good ratio on page data at several hundred MB/s.
const LEVEL: i32 = 3;
/// More files than any image of a tree rckpt can dump holds (4 per task, and
/// the contents): a bound before anything is created.
const MAX_ENTRIES: u32 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{what} is not an rckpt archive (bad magic)")]
    BadMagic { what: String },
    #[error("{what}: archive version {major}.{minor} is not supported (this rckpt reads {MAJOR}.0 to {MAJOR}.{MINOR})")]
    Version { what: String, major: u16, minor: u16 },
    #[error("{what}: the archive is damaged: {why}")]
    Damaged { what: String, why: String },
    #[error("no archive at {path}")]
    NoArchive { path: PathBuf },
    #[error("{0}")]
    Usage(String),
    #[error("image directory {dir}: {why}")]
    BadImageDir { dir: PathBuf, why: String },
    #[error("failed to {op} {path}: {source}")]
    Io { op: &'static str, path: PathBuf, source: io::Error },
}

pub type Result<T> = std::result::Result<T, ArchiveError>;

impl ArchiveError {
    /// The exit code the CLI reports it with (see exit.rs).
    pub fn exit(&self) -> Exit {
        match self {
            ArchiveError::BadMagic { .. } | ArchiveError::Version { .. } | ArchiveError::Damaged { .. } => {
                Exit::BadImage
            }
            ArchiveError::NoArchive { .. } => Exit::NoImage,
            ArchiveError::BadImageDir { .. } => Exit::NoImage,
            ArchiveError::Usage(_) => Exit::Usage,
            ArchiveError::Io { .. } => Exit::Failed,
        }
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ArchiveError {
    let path = path.to_path_buf();
    move |source| ArchiveError::Io { op, path, source }
}

/// Whether `name` may be the name of a file of an image: what the image writer
/// makes ("core-1234.img"), never a path, never hidden, never "." or "..".
pub fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Packed {
    pub files: u32,
    /// Bytes of the image files.
    pub bytes: u64,
    /// Bytes of the archive.
    pub archive_bytes: u64,
}

/// Counts what goes through and feeds the crc32c of the trailer.
struct Crc<W> {
    inner: W,
    crc: u32,
    len: u64,
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&MAJOR.to_le_bytes());
    h[10..12].copy_from_slice(&MINOR.to_le_bytes());
    h[12..14].copy_from_slice(&COMPRESSION_ZSTD.to_le_bytes());
    h
}

/// The files of a finished image in `dir`, by name, the inventory last (so an
/// archive cut short never carries one). Refuses anything but regular files.
fn image_files(dir: &Path) -> Result<Vec<(String, u64)>> {
    let bad = |why: String| ArchiveError::BadImageDir { dir: dir.to_path_buf(), why };
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io_err("read image directory", dir))? {
        let e = e.map_err(io_err("read image directory", dir))?;
        let name = e.file_name().into_string().map_err(|n| bad(format!("{n:?} is not an image file name")))?;
        if !plain_name(&name) {
            return Err(bad(format!("{name:?} is not an image file name")));
        }
        let md = std::fs::symlink_metadata(e.path()).map_err(io_err("stat image file", &e.path()))?;
        if !md.is_file() {
            return Err(bad(format!("{name} is not a regular file")));
        }
        files.push((name, md.len()));
    }
    let inv = rckpt_images::inventory::FILE_NAME;
    if !files.iter().any(|(n, _)| n == inv) {
        return Err(bad("holds no finished image (no inventory.img)".into()));
    }
    files.sort_by(|a, b| (a.0 == inv, &a.0).cmp(&(b.0 == inv, &b.0)));
    Ok(files)
}

/// Packs the image in `dir` into `out` (see the module doc for the format).
pub fn pack(dir: &Path, out: impl Write) -> Result<Packed> {
    let files = image_files(dir)?;
    let total: u64 = files.iter().map(|f| f.1).sum();
    progress::phase("packing", 0, total);
    let dest = Path::new("the archive");
    let w = |e| ArchiveError::Io { op: "write", path: dest.to_path_buf(), source: e };
    let mut raw = Crc { inner: out, crc: 0, len: 0 };
    raw.write_all(&header()).map_err(w)?;
    let mut enc = zstd::stream::write::Encoder::new(raw, LEVEL).map_err(w)?;
    enc.include_checksum(true).map_err(w)?;
    let mut buf = vec![0u8; 1 << 20];
    for (name, len) in &files {
        let path = dir.join(name);
        let mut f = crate::restore::read::open_nofollow(&path).map_err(io_err("open image file", &path))?;
        enc.write_all(&(name.len() as u16).to_le_bytes()).map_err(w)?;
        enc.write_all(name.as_bytes()).map_err(w)?;
        enc.write_all(&len.to_le_bytes()).map_err(w)?;
        let mut left = *len;
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = f.read(&mut buf[..want]).map_err(io_err("read image file", &path))?;
            if n == 0 {
                return Err(ArchiveError::BadImageDir {
                    dir: dir.to_path_buf(),
                    why: format!("{name} shrank while it was packed"),
                });
            }
            enc.write_all(&buf[..n]).map_err(w)?;
            left -= n as u64;
            progress::bytes(n as u64);
        }
    }
    enc.write_all(&0u16.to_le_bytes()).map_err(w)?;
    enc.write_all(&(files.len() as u32).to_le_bytes()).map_err(w)?;
    enc.write_all(&total.to_le_bytes()).map_err(w)?;
    let mut raw = enc.finish().map_err(w)?;
    let crc = raw.crc;
    raw.inner.write_all(&crc.to_le_bytes()).map_err(w)?;
    raw.inner.flush().map_err(w)?;
    Ok(Packed { files: files.len() as u32, bytes: total, archive_bytes: raw.len + 4 })
}

/// Computes the crc32c of the trailer over exactly the bytes consumed: the
/// decoder consumes the frame and no more, though the buffer may hold more.
struct CrcRead<R> {
    inner: R,
    crc: u32,
}

impl<R: BufRead> Read for CrcRead<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let buf = self.fill_buf()?;
            let n = buf.len().min(out.len());
            out[..n].copy_from_slice(&buf[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for CrcRead<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        // A BufRead hands out its buffer again without reading while it holds data.
        if let Ok(buf) = self.inner.fill_buf() {
            self.crc = crc32c::crc32c_append(self.crc, &buf[..amt.min(buf.len())]);
        }
        self.inner.consume(amt);
    }
}

/// The decompressed stream, for the entries.
struct Source<R> {
    inner: R,
    what: String,
}

impl<R: Read> Source<R> {
    fn damaged(&self, why: impl Into<String>) -> ArchiveError {
        ArchiveError::Damaged { what: self.what.clone(), why: why.into() }
    }

    /// Exactly `buf.len()` bytes, or the archive is damaged (truncated, or zstd
    /// found its frame corrupt).
    fn exact(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        self.inner.read_exact(buf).map_err(|e| self.damaged(format!("reading {what}: {e}")))
    }

    fn u16(&mut self, what: &str) -> Result<u16> {
        let mut b = [0u8; 2];
        self.exact(&mut b, what)?;
        Ok(u16::from_le_bytes(b))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        let mut b = [0u8; 4];
        self.exact(&mut b, what)?;
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        let mut b = [0u8; 8];
        self.exact(&mut b, what)?;
        Ok(u64::from_le_bytes(b))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unpacked {
    pub files: u32,
    pub bytes: u64,
}

/// Unpacks an archive read from `input` (named `what` in messages) into `dir`,
/// which must not exist yet: it is created 0700. On error, what was written is
/// left for the caller to remove with the directory (see [`PrivateDir`]).
pub fn unpack(input: impl Read, what: &str, dir: &Path) -> Result<Unpacked> {
    let damaged = |why: String| ArchiveError::Damaged { what: what.into(), why };
    let cap = zstd::stream::read::Decoder::<&[u8]>::recommended_output_size().max(1 << 16);
    let mut input = CrcRead { inner: BufReader::with_capacity(cap, input), crc: 0 };
    let mut h = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match input.read(&mut h[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(damaged(format!("reading the header: {e}"))),
        }
    }
    if got < MAGIC.len() || h[..8] != MAGIC {
        return Err(ArchiveError::BadMagic { what: what.into() });
    }
    if got < HEADER_LEN {
        return Err(damaged("the header is truncated".into()));
    }
    let major = u16::from_le_bytes([h[8], h[9]]);
    let minor = u16::from_le_bytes([h[10], h[11]]);
    if major != MAJOR || minor > MINOR {
        return Err(ArchiveError::Version { what: what.into(), major, minor });
    }
    let compression = u16::from_le_bytes([h[12], h[13]]);
    if compression != COMPRESSION_ZSTD || h[14..16] != [0, 0] {
        return Err(damaged(format!("unknown compression {compression}")));
    }
    std::fs::DirBuilder::new().mode(0o700).create(dir).map_err(io_err("create image directory", dir))?;
    progress::phase("unpacking", 0, 0);
    let dec = zstd::stream::read::Decoder::with_buffer(&mut input).map_err(|e| damaged(e.to_string()))?.single_frame();
    let mut src = Source { inner: dec, what: what.into() };
    let mut names = std::collections::BTreeSet::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let name_len = src.u16("an entry name")? as usize;
        if name_len == 0 {
            break;
        }
        if names.len() as u32 >= MAX_ENTRIES {
            return Err(src.damaged(format!("more than {MAX_ENTRIES} files")));
        }
        let mut name = vec![0u8; name_len];
        src.exact(&mut name, "an entry name")?;
        let name = String::from_utf8(name).ok().filter(|n| plain_name(n)).ok_or_else(|| {
            src.damaged("an entry is not named as an image file (a path, or a name that is not plain)")
        })?;
        if !names.insert(name.clone()) {
            return Err(src.damaged(format!("{name} appears twice")));
        }
        let len = src.u64("an entry length")?;
        let path = dir.join(&name);
        // The directory is rckpt's own (0700), the name plain: O_EXCL and
        // O_NOFOLLOW make sure nothing else is written even so.
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(io_err("create image file", &path))?;
        let mut left = len;
        while left > 0 {
            let want = buf.len().min(left as usize);
            src.exact(&mut buf[..want], &name)?;
            f.write_all(&buf[..want]).map_err(io_err("write image file", &path))?;
            left -= want as u64;
            progress::bytes(want as u64);
        }
        total = total.saturating_add(len);
    }
    let count = src.u32("the end record")?;
    let listed_total = src.u64("the end record")?;
    if count as usize != names.len() || listed_total != total {
        return Err(src.damaged(format!(
            "the end record lists {count} files of {listed_total} bytes, the archive held {} of {total}",
            names.len()
        )));
    }
    // The end of the frame: zstd checks its content checksum on the way.
    let mut rest = [0u8; 1];
    match src.inner.read(&mut rest) {
        Ok(0) => {}
        Ok(_) => return Err(src.damaged("data after the end record")),
        Err(e) => return Err(src.damaged(e.to_string())),
    }
    drop(src);
    let want = input.crc;
    let mut trailer = [0u8; 4];
    input.inner.read_exact(&mut trailer).map_err(|e| damaged(format!("reading the trailer: {e}")))?;
    let crc = u32::from_le_bytes(trailer);
    if crc != want {
        return Err(damaged(format!("checksum mismatch (crc32c {crc:#010x}, computed {want:#010x})")));
    }
    match input.inner.fill_buf() {
        Ok([]) => {}
        Ok(_) => return Err(damaged("data after the trailer".into())),
        Err(e) => return Err(damaged(e.to_string())),
    }
    Ok(Unpacked { files: names.len() as u32, bytes: total })
}

/// A directory of rckpt's own (mkdtemp: 0700, a fresh name), removed with all it
/// holds on drop unless kept.
#[derive(Debug)]
pub struct PrivateDir {
    path: PathBuf,
    keep: bool,
}

impl PrivateDir {
    /// Creates `.rckpt-XXXXXX` in `parent`.
    pub fn new(parent: &Path) -> Result<PrivateDir> {
        let template = parent.join(".rckpt-XXXXXX");
        let path = nix::unistd::mkdtemp(&template).map_err(|errno| ArchiveError::Io {
            op: "create a private directory in",
            path: parent.to_path_buf(),
            source: errno.into(),
        })?;
        Ok(PrivateDir { path, keep: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Leaves the directory in place (an image that could not be packed) and
    /// returns its path.
    pub fn keep(mut self) -> PathBuf {
        self.keep = true;
        self.path.clone()
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        if !self.keep {
            // remove_dir_all does not follow symbolic links.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Where `dump --archive` writes: stdout (`-`), or a file that appears only
/// once complete (written as a hidden temporary beside it, fsynced, then linked
/// into place, which refuses to replace an existing file).
pub enum Output {
    Stdout(io::Stdout),
    File { tmp: PathBuf, dest: PathBuf, file: File, done: bool },
}

impl Output {
    /// Checks the destination before anything is dumped.
    pub fn open(dest: &Path) -> Result<Output> {
        if dest == Path::new("-") {
            use std::io::IsTerminal;
            let out = io::stdout();
            if out.is_terminal() {
                return Err(ArchiveError::Usage(
                    "--archive -: stdout is a terminal; redirect it to a file or pipe".into(),
                ));
            }
            return Ok(Output::Stdout(out));
        }
        if std::fs::symlink_metadata(dest).is_ok() {
            return Err(ArchiveError::Usage(format!("--archive {}: the file exists", dest.display())));
        }
        let name = dest
            .file_name()
            .ok_or_else(|| ArchiveError::Usage(format!("--archive {}: not a file name", dest.display())))?;
        let tmp = dest.with_file_name(format!(".{}.partial-{}", name.to_string_lossy(), std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(io_err("create archive", &tmp))?;
        Ok(Output::File { tmp, dest: dest.to_path_buf(), file, done: false })
    }

    /// Where a dump may put its private image directory: beside the archive
    /// (on the filesystem chosen for it), or in $TMPDIR for stdout.
    pub fn work_parent(&self) -> PathBuf {
        match self {
            Output::Stdout(_) => std::env::temp_dir(),
            Output::File { dest, .. } => match dest.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            },
        }
    }

    pub fn writer(&mut self) -> Box<dyn Write + '_> {
        match self {
            Output::Stdout(s) => Box::new(io::BufWriter::with_capacity(1 << 20, s.lock())),
            Output::File { file, .. } => Box::new(io::BufWriter::with_capacity(1 << 20, file)),
        }
    }

    /// Makes the archive appear under its name.
    pub fn commit(mut self) -> Result<()> {
        if let Output::File { tmp, dest, file, done } = &mut self {
            file.sync_all().map_err(io_err("fsync archive", tmp))?;
            std::fs::hard_link(&*tmp, &*dest).map_err(io_err("link archive into place as", dest))?;
            let _ = std::fs::remove_file(&*tmp);
            if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                let _ = File::open(parent).and_then(|d| d.sync_all());
            }
            *done = true;
        }
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Output::File { tmp, done: false, .. } = self {
            let _ = std::fs::remove_file(&*tmp);
        }
    }
}

/// Opens an archive to read: stdin (`-`, not a terminal) or a file.
pub fn open_input(src: &Path) -> Result<(Box<dyn Read>, String)> {
    if src == Path::new("-") {
        use std::io::IsTerminal;
        let stdin = io::stdin();
        if stdin.is_terminal() {
            return Err(ArchiveError::Usage("--archive -: stdin is a terminal; pipe an archive into it".into()));
        }
        return Ok((Box::new(stdin), "the archive on stdin".into()));
    }
    match File::open(src) {
        Ok(f) => {
            let md = f.metadata().map_err(io_err("stat archive", src))?;
            if md.is_dir() {
                return Err(ArchiveError::Usage(format!("--archive {}: is a directory (use -D)", src.display())));
            }
            Ok((Box::new(f), src.display().to_string()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ArchiveError::NoArchive { path: src.to_path_buf() }),
        Err(source) => Err(ArchiveError::Io { op: "open archive", path: src.to_path_buf(), source }),
    }
}

/// Unpacks the archive at `src` into a new private directory in $TMPDIR;
/// returns the directory (removed when dropped) and the image directory in it.
pub fn unpack_private(src: &Path) -> Result<(PrivateDir, PathBuf)> {
    let (input, what) = open_input(src)?;
    let work = PrivateDir::new(&std::env::temp_dir())?;
    let img = work.path().join("image");
    let u = unpack(input, &what, &img)?;
    progress::log(2, format_args!("unpacked {} files, {} bytes, into {}", u.files, u.bytes, img.display()));
    Ok((work, img))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("pages-1.img"), vec![7u8; 3 << 20]).unwrap();
        std::fs::write(dir.join("core-1.img"), b"core").unwrap();
        std::fs::write(dir.join("inventory.img"), b"inv").unwrap();
    }

    fn scratch(tag: &str) -> PrivateDir {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-archive");
        std::fs::create_dir_all(&base).unwrap();
        let d = PrivateDir::new(&base).unwrap();
        std::fs::create_dir(d.path().join(tag)).unwrap();
        d
    }

    fn packed() -> (PrivateDir, Vec<u8>) {
        let d = scratch("src");
        image(&d.path().join("src"));
        let mut out = Vec::new();
        let p = pack(&d.path().join("src"), &mut out).unwrap();
        assert_eq!(p.files, 3);
        assert_eq!(p.archive_bytes, out.len() as u64);
        (d, out)
    }

    #[test]
    fn round_trip_keeps_every_byte_and_the_inventory_comes_last() {
        let (d, out) = packed();
        let dst = d.path().join("dst");
        let u = unpack(&out[..], "test", &dst).unwrap();
        assert_eq!(u.files, 3);
        for n in ["pages-1.img", "core-1.img", "inventory.img"] {
            assert_eq!(std::fs::read(dst.join(n)).unwrap(), std::fs::read(d.path().join("src").join(n)).unwrap());
        }
        let files = image_files(&d.path().join("src")).unwrap();
        assert_eq!(files.last().unwrap().0, "inventory.img");
    }

    #[test]
    fn any_flipped_byte_is_refused() {
        let (d, out) = packed();
        // Every byte of the header and trailer region, and a sample of the rest.
        let positions: Vec<usize> = (0..out.len()).filter(|&i| i < 40 || i + 40 > out.len() || i % 97 == 0).collect();
        for (k, &i) in positions.iter().enumerate() {
            let mut bad = out.clone();
            bad[i] ^= 0x10;
            let dst = d.path().join(format!("bad{k}"));
            let r = unpack(&bad[..], "test", &dst);
            assert!(r.is_err(), "flipping byte {i} of {} went unnoticed", out.len());
            assert_eq!(r.unwrap_err().exit(), Exit::BadImage, "byte {i}");
        }
    }

    #[test]
    fn truncation_and_trailing_data_are_refused() {
        let (d, out) = packed();
        for (k, cut) in [1usize, 10, 17, out.len() / 2, out.len() - 1].into_iter().enumerate() {
            let r = unpack(&out[..cut], "test", &d.path().join(format!("cut{k}")));
            assert_eq!(r.unwrap_err().exit(), Exit::BadImage, "cut at {cut}");
        }
        let mut more = out.clone();
        more.push(0);
        let r = unpack(&more[..], "test", &d.path().join("more"));
        assert_eq!(r.unwrap_err().exit(), Exit::BadImage);
    }

    /// A well-formed archive (right checksums) whose one entry is `name`.
    fn forged(name: &str) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&(name.len() as u16).to_le_bytes());
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(&1u64.to_le_bytes());
        body.push(b'x');
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&1u32.to_le_bytes());
        body.extend_from_slice(&1u64.to_le_bytes());
        let mut out = header().to_vec();
        let mut enc = zstd::stream::write::Encoder::new(&mut out, 1).unwrap();
        enc.include_checksum(true).unwrap();
        enc.write_all(&body).unwrap();
        enc.finish().unwrap();
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn entry_names_must_be_plain() {
        let d = scratch("names");
        let ok = d.path().join("ok");
        unpack(&forged("core-1.img")[..], "test", &ok).unwrap();
        for (k, name) in ["../escape", "/etc/passwd", "a/b", "..", ".", ".hidden", "x\0y", ""].iter().enumerate() {
            let dst = d.path().join(format!("n{k}"));
            let r = unpack(&forged(name)[..], "test", &dst);
            assert_eq!(r.unwrap_err().exit(), Exit::BadImage, "{name:?}");
        }
        assert!(!d.path().join("escape").exists());
    }

    #[test]
    fn other_versions_and_files_are_refused_by_name() {
        let (d, mut out) = packed();
        out[8] = 2;
        let e = unpack(&out[..], "test", &d.path().join("v2")).unwrap_err();
        assert!(e.to_string().contains("version 2.0"), "{e}");
        let e = unpack(&b"not an archive at all"[..], "test", &d.path().join("x")).unwrap_err();
        assert!(matches!(e, ArchiveError::BadMagic { .. }), "{e}");
    }
}

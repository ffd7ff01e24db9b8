//! Writing an image directory: created 0700, files 0600 never following symlinks,
//! everything fsynced before the inventory is renamed into place last. A dump that
//! fails removes what it wrote.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rckpt_images::{Image, Kind, inventory};

use super::{DumpError, Result};

pub struct ImageWriter {
    dir: PathBuf,
    files: Vec<(String, Kind, File)>,
    finished: bool,
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DumpError {
    let path = path.to_path_buf();
    move |source| DumpError::Io { op, path, source }
}

impl ImageWriter {
    /// Uses `dir` (creating it 0700); it must hold no image yet.
    pub fn create(dir: &Path) -> Result<ImageWriter> {
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(DumpError::BadImageDir { dir: dir.into(), why: "is a symbolic link" });
            }
            Ok(m) if !m.is_dir() => {
                return Err(DumpError::BadImageDir { dir: dir.into(), why: "is not a directory" });
            }
            Ok(_) => {
                let rd = std::fs::read_dir(dir).map_err(io("read image directory", dir))?;
                for e in rd.flatten() {
                    if e.file_name().to_string_lossy().ends_with(".img") {
                        return Err(DumpError::BadImageDir { dir: dir.into(), why: "already holds an image" });
                    }
                }
            }
            Err(_) => std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io("create image directory", dir))?,
        }
        Ok(ImageWriter { dir: dir.to_path_buf(), files: Vec::new(), finished: false })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates a new file (0600, O_EXCL, O_NOFOLLOW) and returns it for writing.
    pub fn create_file(&mut self, name: &str, kind: Kind) -> Result<File> {
        let path = self.dir.join(name);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(io("create image file", &path))?;
        let dup = f.try_clone().map_err(io("duplicate image file", &path))?;
        self.files.push((name.to_string(), kind, dup));
        Ok(f)
    }

    pub fn write_image<T: Image>(&mut self, name: &str, value: &T) -> Result<()> {
        let bytes = value.encode()?;
        let mut f = self.create_file(name, T::KIND)?;
        f.write_all(&bytes).map_err(io("write image file", &self.dir.join(name)))?;
        Ok(())
    }

    /// fsyncs every file (from a few threads at once, so the filesystem commits
    /// them together instead of one journal commit each), writes the inventory
    /// (temp file, fsync, rename, fsync the directory). Until this returns, the
    /// directory is an incomplete checkpoint.
    pub fn finish(mut self, mut inv: inventory::Inventory) -> Result<u64> {
        let mut total = 0;
        for (_, _, f) in &self.files {
            crate::sys::start_writeback(std::os::fd::AsFd::as_fd(f), 0, 0);
        }
        let per = self.files.len().div_ceil(8).max(1);
        std::thread::scope(|s| {
            let jobs: Vec<_> = self
                .files
                .chunks(per)
                .map(|c| s.spawn(move || c.iter().try_for_each(|(n, _, f)| f.sync_all().map_err(|e| (n.clone(), e)))))
                .collect();
            jobs.into_iter().try_for_each(|j| j.join().expect("fsync threads do not panic"))
        })
        .map_err(|(name, e)| DumpError::Io {
            op: "fsync image file",
            path: self.dir.join(name),
            source: e,
        })?;
        for (name, kind, f) in &self.files {
            let path = self.dir.join(name);
            let size = f.metadata().map_err(io("stat image file", &path))?.len();
            total += size;
            inv.images.push(inventory::ImageFile { name: name.clone(), kind: *kind, size });
        }
        let bytes = inv.encode()?;
        let tmp = self.dir.join("inventory.img.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(io("create inventory", &tmp))?;
        f.write_all(&bytes).map_err(io("write inventory", &tmp))?;
        f.sync_all().map_err(io("fsync inventory", &tmp))?;
        let fin = self.dir.join(inventory::FILE_NAME);
        std::fs::rename(&tmp, &fin).map_err(io("rename inventory", &fin))?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io("fsync image directory", &self.dir))?;
        self.finished = true;
        Ok(total + bytes.len() as u64)
    }
}

impl Drop for ImageWriter {
    fn drop(&mut self) {
        if !self.finished {
            for (name, _, _) in &self.files {
                let _ = std::fs::remove_file(self.dir.join(name));
            }
            let _ = std::fs::remove_file(self.dir.join("inventory.img.tmp"));
        }
    }
}

//! `files.img`: every open file description of the tree, once, referenced by id from
//! the fd tables (so descriptions shared by dup or fork stay shared).

use serde::{Deserialize, Serialize};

use crate::{ImageError, check};

pub const FILE_NAME: &str = "files.img";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesImage {
    pub files: Vec<FileDesc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDesc {
    pub id: u32,
    /// open(2) status flags and access mode (O_CLOEXEC is per fd, in fdinfo).
    pub flags: u32,
    pub kind: FileKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileKind {
    /// A path on a filesystem, reopened at restore.
    Path(PathFile),
    /// Belongs to the outside world; bound at restore with `--inherit-fd` or
    /// `--shell-job` (key as in the inventory's externals).
    External { key: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathFile {
    pub path: String,
    pub ftype: FileType,
    pub pos: u64,
    pub size: u64,
    pub mtime_ns: i128,
    /// st_rdev of a device node.
    pub rdev: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileType {
    Regular,
    Directory,
    CharDevice,
}

impl FilesImage {
    pub fn validate(&self) -> Result<(), ImageError> {
        check(self.files.len() <= 1 << 20, || "too many open files".into())?;
        for (i, f) in self.files.iter().enumerate() {
            check(f.id as usize == i, || format!("file id {} at index {i}", f.id))?;
            match &f.kind {
                FileKind::Path(p) => crate::check_abs_path(&p.path)?,
                FileKind::External { key } => {
                    check(!key.is_empty() && key.len() < 4096, || format!("file {}: external key", f.id))?
                }
            }
        }
        Ok(())
    }
}

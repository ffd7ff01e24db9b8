//! `inventory.img`: written last, renamed into place. A directory without it is an
//! incomplete checkpoint.

use serde::{Deserialize, Serialize};

use crate::{ImageError, Kind, check};

pub const FILE_NAME: &str = "inventory.img";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// "rckpt 0.1.0": who wrote the image.
    pub tool: String,
    /// Seconds since the epoch when the dump finished.
    pub created_unix: u64,
    /// `uname -r` of the dumping kernel (informational; the vDSO check is what binds).
    pub kernel_release: String,
    /// The pid given with `-t`; first in the pid array of pstree.img.
    pub root_pid: i32,
    /// Every other file of the image, with its exact size.
    pub images: Vec<ImageFile>,
    /// Resources outside the tree that the tree uses (see ARCHITECTURE rule 8).
    pub externals: Vec<External>,
    /// Namespaces the tree has of its own (made fresh at restore).
    pub namespaces: Namespaces,
    /// The CPU features the tree may rely on (checked at restore).
    pub cpu: Cpu,
    /// A pre-dump: memory only, with writes tracked since; not restorable by
    /// itself, the base of a later `dump --prev-images-dir`.
    pub pre_dump: bool,
    /// The pre-dump this dump builds on (absolute path): pages unchanged since
    /// are read from it at restore.
    pub prev: Option<String>,
}

/// CPU features by name (as /proc/cpuinfo spells them) and the XSAVE
/// components the kernel enabled (XCR0).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpu {
    pub vendor: String,
    pub flags: Vec<String>,
    pub xcr0: u64,
}

/// The namespaces a tree owns, as `rckpt run` makes them: each is made afresh
/// at restore, so a restored tree never collides with the host or with another
/// restore of the same image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespaces {
    /// A PID namespace whose init is the root (root_pid is 1): every pid of
    /// the image is the namespace's.
    pub pid: bool,
    /// A network namespace holding only the loopback interface, up.
    pub net: bool,
    /// An IPC namespace (holding no System V objects).
    pub ipc: bool,
    /// A UTS namespace with this host and domain name.
    pub uts: Option<Uts>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uts {
    pub hostname: String,
    pub domainname: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageFile {
    pub name: String,
    pub kind: Kind,
    pub size: u64,
}

/// Something the tree uses that belongs to the outside world; restore binds it to
/// the restorer's own only when asked (`--inherit-fd`, `--shell-job`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct External {
    /// The key a user passes to `--inherit-fd fd[N]:KEY`, e.g. `pipe:[12345]`.
    pub key: String,
    pub kind: ExternalKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExternalKind {
    Pipe,
    Tty,
    Session,
    ProcessGroup,
}

impl Inventory {
    pub fn validate(&self) -> Result<(), ImageError> {
        check(self.root_pid > 0, || format!("root pid {} is not positive", self.root_pid))?;
        let mut names: Vec<&str> = self.images.iter().map(|f| f.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        check(names.len() == self.images.len(), || "an image file is listed twice".into())?;
        for f in &self.images {
            crate::check_file_name(&f.name)?;
            check(f.kind != Kind::Inventory, || format!("{} is listed as an inventory", f.name))?;
        }
        check(!self.namespaces.pid || self.root_pid == 1, || {
            format!("a pid namespace whose root is pid {}, not 1", self.root_pid)
        })?;
        if let Some(u) = &self.namespaces.uts {
            check(u.hostname.len() <= 64 && u.domainname.len() <= 64, || "host or domain name too long".into())?;
        }
        if let Some(p) = &self.prev {
            crate::check_abs_path(p)?;
        }
        check(!(self.pre_dump && self.prev.is_some()), || "a pre-dump that builds on another".into())?;
        check(self.cpu.vendor.len() <= 16 && self.cpu.flags.len() <= 256, || "CPU description too long".into())?;
        check(self.cpu.flags.iter().all(|f| !f.is_empty() && f.len() <= 32), || "CPU flag name length".into())?;
        for e in &self.externals {
            check(!e.key.is_empty() && e.key.len() < 4096, || "external key length is out of range".into())?;
        }
        Ok(())
    }

    pub fn file(&self, name: &str) -> Option<&ImageFile> {
        self.images.iter().find(|f| f.name == name)
    }
}

//! Loading the freestanding blobs built by build.rs: lay out the PT_LOAD segments
//! (zeroing .bss), and relocate for a base address. Only R_X86_64_RELATIVE is
//! accepted; any other relocation means the blob was built wrongly.

use std::sync::OnceLock;

use goblin::elf::Elf;

pub static PARASITE_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/parasite.elf"));
pub static RESTORER_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/restorer.elf"));

const R_X86_64_RELATIVE: u32 = 8;
const PAGE: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob is not a valid ELF file: {0}")]
    Elf(String),
    #[error("blob has an unsupported relocation of type {0}")]
    Relocation(u32),
    #[error("blob layout is invalid: {0}")]
    Layout(&'static str),
}

/// A blob's memory image at base 0.
#[derive(Debug)]
pub struct Blob {
    image: Vec<u8>,
    /// Where the segments' file contents end: beyond, .bss, zero.
    file_end: u64,
    /// [0, exec_end) is mapped read+exec, the rest read+write.
    exec_end: u64,
    entry: u64,
    /// (offset, addend) of each R_X86_64_RELATIVE.
    relocs: Vec<(u64, u64)>,
    /// Offsets of the entry points other than the ELF entry (`thread_start`, ...).
    symbols: Vec<(String, u64)>,
}

impl Blob {
    pub fn parse(bytes: &[u8]) -> Result<Blob, BlobError> {
        let elf = Elf::parse(bytes).map_err(|e| BlobError::Elf(e.to_string()))?;
        let loads: Vec<_> =
            elf.program_headers.iter().filter(|p| p.p_type == goblin::elf::program_header::PT_LOAD).collect();
        if loads.is_empty() {
            return Err(BlobError::Layout("no loadable segment"));
        }
        let end = loads.iter().map(|p| p.p_vaddr + p.p_memsz).max().unwrap();
        let size = end.div_ceil(PAGE) * PAGE;
        if size > 16 << 20 {
            return Err(BlobError::Layout("larger than 16 MiB"));
        }
        let mut image = vec![0u8; size as usize];
        let mut file_end = 0;
        let mut exec_end = 0;
        let mut first_write = u64::MAX;
        for p in &loads {
            let file = bytes
                .get(p.p_offset as usize..(p.p_offset + p.p_filesz) as usize)
                .ok_or(BlobError::Layout("segment outside the file"))?;
            image[p.p_vaddr as usize..(p.p_vaddr + p.p_filesz) as usize].copy_from_slice(file);
            file_end = file_end.max(p.p_vaddr + p.p_filesz);
            if p.is_executable() {
                exec_end = exec_end.max((p.p_vaddr + p.p_memsz).div_ceil(PAGE) * PAGE);
            }
            if p.is_write() {
                first_write = first_write.min(p.p_vaddr / PAGE * PAGE);
            }
        }
        if first_write < exec_end {
            return Err(BlobError::Layout("writable data shares a page with code"));
        }
        let mut relocs = Vec::new();
        for r in elf.dynrelas.iter().chain(elf.dynrels.iter()).chain(elf.pltrelocs.iter()) {
            if r.r_type != R_X86_64_RELATIVE {
                return Err(BlobError::Relocation(r.r_type));
            }
            if r.r_offset + 8 > size {
                return Err(BlobError::Layout("relocation outside the image"));
            }
            relocs.push((r.r_offset, r.r_addend.unwrap_or(0) as u64));
            file_end = file_end.max(r.r_offset + 8);
        }
        if elf.entry >= exec_end {
            return Err(BlobError::Layout("entry point outside the code"));
        }
        let mut symbols = Vec::new();
        for sym in elf.syms.iter() {
            if let Some(name) = elf.strtab.get_at(sym.st_name)
                && name.ends_with("_start")
                && sym.st_value > 0
                && sym.st_value < exec_end
            {
                symbols.push((name.to_string(), sym.st_value));
            }
        }
        Ok(Blob { image, file_end, exec_end, entry: elf.entry, relocs, symbols })
    }

    pub fn size(&self) -> u64 {
        self.image.len() as u64
    }

    pub fn exec_end(&self) -> u64 {
        self.exec_end
    }

    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// Offset of a named entry point.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.symbols.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// The memory image relocated to run at `base`.
    /// The memory image relocated to run at `base`, up to the end of its file
    /// contents: the rest (.bss) is zero in a fresh anonymous mapping, and
    /// need not be written.
    pub fn relocated(&self, base: u64) -> Vec<u8> {
        let mut img = self.image.clone();
        self.relocate_into(base, &mut img);
        img.truncate(self.file_end as usize);
        img
    }

    pub fn relocate_into(&self, base: u64, img: &mut [u8]) {
        img[..self.image.len()].copy_from_slice(&self.image);
        for &(off, addend) in &self.relocs {
            img[off as usize..off as usize + 8].copy_from_slice(&base.wrapping_add(addend).to_le_bytes());
        }
    }
}

pub fn parasite() -> &'static Blob {
    static B: OnceLock<Blob> = OnceLock::new();
    B.get_or_init(|| Blob::parse(PARASITE_ELF).expect("the parasite blob built by build.rs is valid"))
}

pub fn restorer() -> &'static Blob {
    static B: OnceLock<Blob> = OnceLock::new();
    B.get_or_init(|| Blob::parse(RESTORER_ELF).expect("the restorer blob built by build.rs is valid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_load() {
        for b in [parasite(), restorer()] {
            assert!(b.size() > 0 && b.exec_end() > 0 && b.entry() < b.exec_end());
            let img = b.relocated(0x7000_0000_0000);
            assert!(img.len() as u64 <= b.size() && img.len() as u64 > b.exec_end());
        }
    }

    #[test]
    fn parasite_has_a_thread_entry() {
        assert!(parasite().symbol("thread_start").is_some());
        assert!(parasite().symbol("_start").is_some());
    }

    #[test]
    fn refuses_garbage() {
        assert!(Blob::parse(b"not an elf").is_err());
    }
}

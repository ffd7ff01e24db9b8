//! ELF build-ids (NT_GNU_BUILD_ID), read with goblin from the head of a file: the
//! identity of an executable or library that restore checks before mapping it.

use std::io::Read;
use std::path::Path;

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::program_header::{PT_NOTE, ProgramHeader};

const HEAD: usize = 64 * 1024;
const NT_GNU_BUILD_ID: u32 = 3;

/// The build-id of the ELF file at `path`, if it is an ELF file with one in its
/// first 64 KiB (where linkers put the note). Errors only for I/O.
pub fn build_id(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; HEAD];
    let mut n = 0;
    while n < HEAD {
        let k = f.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    buf.truncate(n);
    Ok(build_id_of(&buf))
}

pub fn build_id_of(buf: &[u8]) -> Option<Vec<u8>> {
    if buf.len() < 64 || &buf[0..4] != b"\x7fELF" {
        return None;
    }
    let header = goblin::elf::Elf::parse_header(buf).ok()?;
    let container = if header.e_ident[4] == 2 { Container::Big } else { Container::Little };
    let endian = if header.e_ident[5] == 1 { Endian::Little } else { Endian::Big };
    let ctx = Ctx::new(container, endian);
    let phs = ProgramHeader::parse(buf, header.e_phoff as usize, header.e_phnum as usize, ctx).ok()?;
    for ph in phs.iter().filter(|p| p.p_type == PT_NOTE) {
        let start = ph.p_offset as usize;
        let end = start.checked_add(ph.p_filesz as usize)?;
        if let Some(id) = buf.get(start..end).and_then(find_gnu_build_id) {
            return Some(id);
        }
    }
    None
}

fn find_gnu_build_id(mut notes: &[u8]) -> Option<Vec<u8>> {
    let word = |b: &[u8], i: usize| -> Option<u32> { Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?)) };
    let pad = |n: usize| n.div_ceil(4) * 4;
    while notes.len() >= 12 {
        let namesz = word(notes, 0)? as usize;
        let descsz = word(notes, 4)? as usize;
        let kind = word(notes, 8)?;
        let name = notes.get(12..12 + namesz)?;
        let desc_at = 12 + pad(namesz);
        let desc = notes.get(desc_at..desc_at + descsz)?;
        if kind == NT_GNU_BUILD_ID && name.starts_with(b"GNU") {
            return Some(desc.to_vec());
        }
        notes = notes.get(desc_at + pad(descsz)..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn libc_and_self_have_build_ids() {
        let exe = std::env::current_exe().unwrap();
        // Rust test binaries are linked with a build-id by default on Linux.
        let id = super::build_id(&exe).unwrap();
        assert!(id.is_some_and(|v| !v.is_empty()));
        assert_eq!(super::build_id_of(b"not elf"), None);
    }
}

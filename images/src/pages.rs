//! `pages-PID.img`: raw page data. One header page (so a misplaced file is caught),
//! then the extents of mm-PID.img back to back in address order, each checked by
//! its own crc32c after it is read into place.

use crate::{ImageError, Kind};

pub fn file_name(pid: i32) -> String {
    format!("pages-{pid}.img")
}

pub const HEADER_LEN: u64 = 4096;
pub const MAGIC: [u8; 8] = *b"RCKPTPGS";
pub const VERSION: u16 = 1;

pub fn header(pid: i32) -> Vec<u8> {
    let mut h = vec![0u8; HEADER_LEN as usize];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&(Kind::Pages as u16).to_le_bytes());
    h[10..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&pid.to_le_bytes());
    let c = crc32c::crc32c(&h[0..16]);
    h[16..20].copy_from_slice(&c.to_le_bytes());
    h
}

pub fn check_header(bytes: &[u8], pid: i32) -> Result<(), ImageError> {
    if bytes.len() < 20 {
        return Err(ImageError::Truncated { what: "pages header", need: 20, have: bytes.len() as u64 });
    }
    if bytes[0..8] != MAGIC {
        return Err(ImageError::BadMagic);
    }
    if crc32c::crc32c(&bytes[0..16]) != u32::from_le_bytes(bytes[16..20].try_into().unwrap()) {
        return Err(ImageError::HeaderChecksum);
    }
    let kind = u16::from_le_bytes(bytes[8..10].try_into().unwrap());
    if kind != Kind::Pages as u16 {
        return Err(match Kind::from_u16(kind) {
            Some(found) => ImageError::WrongKind { expected: Kind::Pages, found },
            None => ImageError::UnknownKind(kind),
        });
    }
    let version = u16::from_le_bytes(bytes[10..12].try_into().unwrap());
    if version != VERSION {
        return Err(ImageError::UnsupportedVersion { kind: Kind::Pages, version, accepted: &[VERSION] });
    }
    let owner = i32::from_le_bytes(bytes[12..16].try_into().unwrap());
    if owner != pid {
        return Err(ImageError::Invalid(format!("pages file belongs to task {owner}, not {pid}")));
    }
    Ok(())
}

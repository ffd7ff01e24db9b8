//! Framing of every metadata image file.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "RCKPTIMG"
//!      8     2  kind (see [`Kind`])
//!     10     2  version of that kind
//!     12     4  reserved, zero
//!     16     8  body length in bytes
//!     24     4  crc32c of the body
//!     28     4  crc32c of bytes 0..28
//!     32     …  postcard body
//! ```
//!
//! The header checksum is checked before the length is trusted, and the length
//! is checked against the kind's cap before anything is allocated.

use serde::{Serialize, de::DeserializeOwned};

use crate::ImageError;

pub const MAGIC: [u8; 8] = *b"RCKPTIMG";
pub const HEADER_LEN: usize = 32;

/// Every kind of image file. The numbers are on disk: never reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[repr(u16)]
pub enum Kind {
    Inventory = 1,
    PsTree = 2,
    Core = 3,
    Mm = 4,
    Files = 5,
    FdInfo = 6,
    /// Raw page data: not postcard, see [`crate::pages`].
    Pages = 7,
}

impl Kind {
    pub const ALL: [Kind; 7] =
        [Kind::Inventory, Kind::PsTree, Kind::Core, Kind::Mm, Kind::Files, Kind::FdInfo, Kind::Pages];

    pub fn from_u16(v: u16) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| *k as u16 == v)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Inventory => "inventory",
            Kind::PsTree => "pstree",
            Kind::Core => "core",
            Kind::Mm => "mm",
            Kind::Files => "files",
            Kind::FdInfo => "fdinfo",
            Kind::Pages => "pages",
        }
    }

    /// The largest body a reader accepts for this kind, checked before allocating.
    pub fn body_cap(self) -> u64 {
        const MIB: u64 = 1 << 20;
        match self {
            Kind::Inventory => MIB,
            Kind::PsTree => 16 * MIB,
            Kind::Core => 64 * MIB,
            Kind::Mm => 256 * MIB,
            Kind::Files => 64 * MIB,
            Kind::FdInfo => 16 * MIB,
            Kind::Pages => 0,
        }
    }

    /// The version this build writes.
    ///
    /// Mm 2: VMAs may carry `vmflags::NORESERVE` (version 1 had no such bit).
    pub fn current_version(self) -> u16 {
        match self {
            Kind::Mm => 2,
            _ => 1,
        }
    }

    /// Every version this build reads (each has its own decoder).
    pub fn accepted_versions(self) -> &'static [u16] {
        match self {
            Kind::Mm => &[1, 2],
            _ => &[1],
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub version: u16,
    pub body_len: u64,
    pub body_crc: u32,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..10].copy_from_slice(&(self.kind as u16).to_le_bytes());
        h[10..12].copy_from_slice(&self.version.to_le_bytes());
        h[16..24].copy_from_slice(&self.body_len.to_le_bytes());
        h[24..28].copy_from_slice(&self.body_crc.to_le_bytes());
        let hc = crc32c::crc32c(&h[0..28]);
        h[28..32].copy_from_slice(&hc.to_le_bytes());
        h
    }

    /// Decodes and checks a header; `expect` is the kind the caller wants.
    pub fn decode(bytes: &[u8], expect: Kind) -> Result<Header, ImageError> {
        if bytes.len() < HEADER_LEN {
            return Err(ImageError::Truncated { what: "header", need: HEADER_LEN as u64, have: bytes.len() as u64 });
        }
        if bytes[0..8] != MAGIC {
            return Err(ImageError::BadMagic);
        }
        let hc = u32::from_le_bytes(bytes[28..32].try_into().unwrap());
        if crc32c::crc32c(&bytes[0..28]) != hc {
            return Err(ImageError::HeaderChecksum);
        }
        let raw_kind = u16::from_le_bytes(bytes[8..10].try_into().unwrap());
        let kind = Kind::from_u16(raw_kind).ok_or(ImageError::UnknownKind(raw_kind))?;
        if kind != expect {
            return Err(ImageError::WrongKind { expected: expect, found: kind });
        }
        let version = u16::from_le_bytes(bytes[10..12].try_into().unwrap());
        if !kind.accepted_versions().contains(&version) {
            return Err(ImageError::UnsupportedVersion { kind, version, accepted: kind.accepted_versions() });
        }
        if bytes[12..16] != [0; 4] {
            return Err(ImageError::Invalid("reserved header bytes are not zero".into()));
        }
        let body_len = u64::from_le_bytes(bytes[16..24].try_into().unwrap());
        if body_len > kind.body_cap() {
            return Err(ImageError::TooLarge { kind, len: body_len, cap: kind.body_cap() });
        }
        let body_crc = u32::from_le_bytes(bytes[24..28].try_into().unwrap());
        Ok(Header { kind, version, body_len, body_crc })
    }
}

/// Frames `value` as a `kind` image at the current version.
pub fn encode<T: Serialize>(kind: Kind, value: &T) -> Result<Vec<u8>, ImageError> {
    let body = postcard::to_allocvec(value).map_err(|e| ImageError::Encode(e.to_string()))?;
    if body.len() as u64 > kind.body_cap() {
        return Err(ImageError::TooLarge { kind, len: body.len() as u64, cap: kind.body_cap() });
    }
    let header =
        Header { kind, version: kind.current_version(), body_len: body.len() as u64, body_crc: crc32c::crc32c(&body) };
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Checks the frame of a whole file and returns its header and body.
pub fn unframe(bytes: &[u8], kind: Kind) -> Result<(Header, &[u8]), ImageError> {
    let header = Header::decode(bytes, kind)?;
    let have = (bytes.len() - HEADER_LEN) as u64;
    if have < header.body_len {
        return Err(ImageError::Truncated { what: "body", need: header.body_len, have });
    }
    if have > header.body_len {
        return Err(ImageError::TrailingBytes(have - header.body_len));
    }
    let body = &bytes[HEADER_LEN..];
    if crc32c::crc32c(body) != header.body_crc {
        return Err(ImageError::BodyChecksum);
    }
    Ok((header, body))
}

/// Decodes a postcard body, refusing trailing bytes.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ImageError> {
    let (value, rest) = postcard::take_from_bytes::<T>(body).map_err(|e| ImageError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(ImageError::TrailingBytes(rest.len() as u64));
    }
    Ok(value)
}

//! One gzip member (RFC 1952) with fixed header bytes: `1f 8b 08`, no flags, mtime 0, XFL 0, OS 3 (Unix) —
//! the same ten bytes `gzip -n -6` writes — then raw deflate from miniz_oxide (through flate2) at level 6,
//! then CRC-32 and the length mod 2^32. Members concatenate into one stream (RFC 1952 §2.2), which is what
//! lets a precompressed segment be spliced into a bundle verbatim.

use std::io::{self, Write};

use flate2::Compression;
use flate2::write::DeflateEncoder;

use super::{GZIP_OS, LEVEL};

/// The ten header bytes of every member.
pub const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, GZIP_OS];

/// A gzip member being written to `W`.
pub struct Member<W: Write> {
    deflate: DeflateEncoder<W>,
    crc: flate2::Crc,
}

impl<W: Write> Member<W> {
    /// Writes the header and starts deflating.
    pub fn start(mut out: W) -> io::Result<Member<W>> {
        out.write_all(&HEADER)?;
        Ok(Member {
            deflate: DeflateEncoder::new(out, Compression::new(LEVEL)),
            crc: flate2::Crc::new(),
        })
    }

    /// Compresses `data`.
    pub fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.crc.update(data);
        self.deflate.write_all(data)
    }

    /// Finishes the deflate stream and writes the trailer; returns the writer.
    pub fn finish(self) -> io::Result<W> {
        let mut out = self.deflate.finish()?;
        out.write_all(&self.crc.sum().to_le_bytes())?;
        out.write_all(&self.crc.amount().to_le_bytes())?;
        Ok(out)
    }
}

/// Reads the uncompressed length (mod 2^32) from a member's trailer, after checking the fixed header.
pub fn trailer_len(member: &[u8]) -> Option<u32> {
    if member.len() < HEADER.len() + 8 || member[..HEADER.len()] != HEADER {
        return None;
    }
    let t: [u8; 4] = member[member.len() - 4..].try_into().ok()?;
    Some(u32::from_le_bytes(t))
}

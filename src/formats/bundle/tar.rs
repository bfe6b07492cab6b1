//! GNU tar headers, encoded with the `tar` crate's [`::tar::Header`] (GNU flavour) so that they match what
//! GNU tar 1.34 writes with `--format=gnu --owner=root:0 --group=root:0 --mtime=@0 -b 1` (a test compares
//! the two byte for byte). One field is re-spelled by hand: the checksum (see `block`).
//!
//! A header is 512 bytes: name (100), mode, uid, gid (8 each, 7 octal digits and NUL), size, mtime (12 each,
//! 11 octal digits and NUL), checksum (6 octal digits, NUL, space), typeflag (`0` file, `5` directory), an
//! empty link name, the GNU magic `ustar  \0`, uname and gname `root`, and NUL device numbers. A name longer
//! than 100 bytes is preceded by a `././@LongLink` header (typeflag `L`, mode 0644, size = name + NUL) and
//! the name in 512-byte blocks; the real header then holds the name's first 100 bytes, as GNU tar does.
//! Sizes are limited to 11 octal digits (8 GiB - 1); larger files are rejected rather than base-256 encoded.

use super::BundleError;
use super::MTIME;

/// The tar block size.
pub const BLOCK: usize = 512;
/// End of archive: two zero blocks.
pub const END_OF_ARCHIVE: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

const NAME_LEN: usize = 100;
const MAX_SIZE: u64 = 0o777_7777_7777;
const LONG_LINK: &[u8] = b"././@LongLink";

/// What a member is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberType {
    Dir,
    File,
}

/// The member name of an absolute overlay path: relative, and with a trailing `/` for a directory.
pub fn member_name(path: &str, kind: MemberType) -> String {
    let rel = path.strip_prefix('/').unwrap_or(path);
    match kind {
        MemberType::Dir => format!("{rel}/"),
        MemberType::File => rel.to_owned(),
    }
}

/// Zeros needed after `size` bytes of data to fill the last block.
pub fn padding(size: u64) -> usize {
    // The remainder is below 512, so the cast cannot truncate.
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

/// Bytes one member takes in the tar stream: headers (with a long name's extra blocks), data and padding.
pub fn member_len(name: &str, size: u64) -> u64 {
    let block = BLOCK as u64;
    let long = if name.len() > NAME_LEN {
        block + (name.len() as u64 + 1).div_ceil(block) * block
    } else {
        0
    };
    long + block + size.div_ceil(block) * block
}

/// Appends the header block(s) of a member to `out`. `path` is only for the error message.
pub fn write_header(
    out: &mut Vec<u8>,
    path: &str,
    name: &str,
    kind: MemberType,
    mode: u32,
    size: u64,
) -> Result<(), BundleError> {
    if size > MAX_SIZE {
        return Err(BundleError::TooLarge {
            path: path.to_owned(),
            size,
        });
    }
    let name = name.as_bytes();
    if name.len() > NAME_LEN {
        let long_size = name.len() as u64 + 1;
        out.extend_from_slice(&block(LONG_LINK, b'L', 0o644, long_size));
        out.extend_from_slice(name);
        out.push(0);
        out.resize(out.len() + padding(long_size), 0);
    }
    let (typeflag, size) = match kind {
        MemberType::Dir => (b'5', 0),
        MemberType::File => (b'0', size),
    };
    out.extend_from_slice(&block(
        &name[..name.len().min(NAME_LEN)],
        typeflag,
        mode,
        size,
    ));
    Ok(())
}

fn block(name: &[u8], typeflag: u8, mode: u32, size: u64) -> [u8; BLOCK] {
    let mut h = ::tar::Header::new_gnu();
    // The tar crate encodes every field; only the name is copied raw (a truncated long name may end inside
    // a UTF-8 sequence, and `set_path` would refuse it, as it refuses `././@LongLink`).
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(size);
    h.set_mtime(MTIME);
    h.set_entry_type(::tar::EntryType::new(typeflag));
    // "root" is ASCII and short: neither setter can fail.
    let _ = h.set_username("root");
    let _ = h.set_groupname("root");
    h.set_cksum();
    let mut bytes = [0u8; BLOCK];
    bytes.copy_from_slice(h.as_bytes());
    // The one field the tar crate writes differently from GNU tar: it puts the checksum as seven octal
    // digits and a NUL (`0012345\0`), GNU tar as six digits, a NUL and a space (`012345\0 `). Same value
    // (computed with the field as spaces), GNU's spelling.
    let sum: u64 = bytes
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    octal(&mut bytes[148..155], sum);
    bytes[155] = b' ';
    bytes
}

/// Writes `value` as zero-padded octal filling all but the last byte of `field`, then a NUL (a checksum is
/// below 0o777777).
fn octal(field: &mut [u8], mut value: u64) {
    let digits = field.len() - 1;
    for i in (0..digits).rev() {
        field[i] = b'0' + (value & 7) as u8;
        value >>= 3;
    }
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields() {
        let mut out = Vec::new();
        write_header(&mut out, "/etc/x", "etc/x", MemberType::File, 0o600, 3).expect("header");
        assert_eq!(out.len(), BLOCK);
        assert_eq!(&out[..6], b"etc/x\0");
        assert_eq!(&out[100..108], b"0000600\0");
        assert_eq!(&out[124..136], b"00000000003\0");
        assert_eq!(&out[136..148], b"00000000000\0");
        assert_eq!(out[156], b'0');
        assert_eq!(&out[257..265], b"ustar  \0");
        // Checked against GNU tar's header for the same member.
        assert_eq!(&out[148..156], b"010443\0 ");
    }

    #[test]
    fn long_names_take_extra_blocks() {
        let name = "a".repeat(101);
        let mut out = Vec::new();
        write_header(&mut out, "/x", &name, MemberType::File, 0o644, 0).expect("header");
        assert_eq!(out.len() as u64, member_len(&name, 0));
        assert_eq!(out.len(), 3 * BLOCK);
        assert_eq!(out[156], b'L');
        assert_eq!(&out[BLOCK..BLOCK + 101], name.as_bytes());
        assert_eq!(&out[2 * BLOCK..2 * BLOCK + 100], &name.as_bytes()[..100]);
        assert_eq!(member_len(&"a".repeat(100), 513), 3 * BLOCK as u64);
    }

    #[test]
    fn too_large() {
        let mut out = Vec::new();
        let r = write_header(&mut out, "/big", "big", MemberType::File, 0o644, 1 << 33);
        assert!(matches!(r, Err(BundleError::TooLarge { .. })));
    }
}

//! [`DrvHash`]: a derivation's 32-byte BLAKE3 hash and its 32-character base32 store form.

use std::fmt;

/// Nix's base32 alphabet: digits and lowercase letters without e, o, u, t (no accidental words).
const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Bytes of the hash that name a store path: 160 bits, 32 base32 characters.
const STORE_HASH_BYTES: usize = 20;

/// The hash of a derivation.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DrvHash([u8; 32]);

impl DrvHash {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        DrvHash(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 32-character base32 prefix used in store path names.
    pub fn to_base32(&self) -> String {
        base32_encode(&self.0[..STORE_HASH_BYTES])
    }
}

impl fmt::Display for DrvHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base32())
    }
}

impl fmt::Debug for DrvHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DrvHash({})", self.to_base32())
    }
}

/// Base32 (Nix alphabet, most significant bit first, no padding).
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_lengths_and_alphabet() {
        let h = DrvHash::from_bytes([0xff; 32]);
        assert_eq!(h.to_base32(), "z".repeat(32));
        let h = DrvHash::from_bytes([0; 32]);
        assert_eq!(h.to_base32(), "0".repeat(32));
        assert_eq!(base32_encode(&[0b0000_1000, 0b0100_0000]), "1100");
    }
}

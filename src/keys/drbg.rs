//! HMAC_DRBG (SP 800-90A Rev. 1, section 10.1.2) with SHA-256, in exactly the shape
//! C2SP det-keygen uses it: instantiated from `seed || personalization_string` with no
//! nonce, generating whole 32-byte blocks, and updated with no additional input after
//! every generate call.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

type HmacSha256 = Hmac<Sha256>;

/// Output size of HMAC-SHA-256, the DRBG's block size.
pub(crate) const BLOCK: usize = 32;

/// HMAC_DRBG state (`K`, `V`), plus HMAC keyed with `K` (cloned per block, which saves
/// re-deriving the HMAC pads for every block). Zeroized on drop (the `hmac` crate's
/// `zeroize` feature covers the keyed state).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct HmacDrbg {
    k: [u8; BLOCK],
    v: [u8; BLOCK],
    #[zeroize(skip)]
    keyed: HmacSha256,
}

/// HMAC-SHA-256 keyed with `key`.
fn keyed(key: &[u8; BLOCK]) -> HmacSha256 {
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// `HMAC(key, parts[0] || parts[1] || ...)`, from a keyed state.
fn hmac_with(mac: &HmacSha256, parts: &[&[u8]]) -> [u8; BLOCK] {
    let mut mac = mac.clone();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// `HMAC(key, parts[0] || parts[1] || ...)`.
#[cfg(test)]
fn hmac(key: &[u8; BLOCK], parts: &[&[u8]]) -> [u8; BLOCK] {
    hmac_with(&keyed(key), parts)
}

impl HmacDrbg {
    /// det-keygen steps 2–7: instantiate with `seed || personalization`.
    pub(crate) fn new(seed: &[u8], personalization: &[u8]) -> Self {
        let mut drbg = HmacDrbg {
            k: [0u8; BLOCK],
            v: [1u8; BLOCK],
            keyed: keyed(&[0u8; BLOCK]),
        };
        drbg.rekey(&[&[0x00], seed, personalization]);
        drbg.rekey(&[&[0x01], seed, personalization]);
        drbg
    }

    /// `K = HMAC(K, V || data); V = HMAC(K, V)`.
    fn rekey(&mut self, data: &[&[u8]]) {
        let mut parts: Vec<&[u8]> = Vec::with_capacity(data.len() + 1);
        parts.push(&self.v);
        parts.extend_from_slice(data);
        self.k = hmac_with(&self.keyed, &parts);
        self.keyed = keyed(&self.k);
        self.v = hmac_with(&self.keyed, &[&self.v]);
    }

    /// det-keygen steps 8–9: `temp = ""; while len(temp) < len: V = HMAC(K, V); temp ||= V`,
    /// writing the first `out.len()` bytes of `temp` into `out` (the rest is discarded).
    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(BLOCK) {
            self.v = hmac_with(&self.keyed, &[&self.v]);
            chunk.copy_from_slice(&self.v[..chunk.len()]);
        }
    }

    /// The update with no additional input that follows each generate call
    /// (`K = HMAC(K, V || 0x00); V = HMAC(K, V)`), used by det-keygen before every retry.
    pub(crate) fn update(&mut self) {
        self.rekey(&[&[0x00]]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An independent restatement of HMAC_DRBG over `Vec`s, checked against [`HmacDrbg`].
    #[test]
    fn fill_matches_block_concatenation() {
        let mut a = HmacDrbg::new(b"0123456789abcdef", b"p");
        let mut b = HmacDrbg::new(b"0123456789abcdef", b"p");
        let mut long = [0u8; 80];
        a.fill(&mut long);
        let mut blocks = Vec::new();
        for _ in 0..3 {
            b.v = hmac(&b.k, &[&b.v]);
            blocks.extend_from_slice(&b.v);
        }
        assert_eq!(&long[..], &blocks[..80]);
        a.update();
        b.update();
        assert_eq!(a.k, b.k);
        assert_eq!(a.v, b.v);
    }
}

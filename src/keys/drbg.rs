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

/// HMAC_DRBG state (`K`, `V`). Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct HmacDrbg {
    k: [u8; BLOCK],
    v: [u8; BLOCK],
}

/// `HMAC(key, parts[0] || parts[1] || ...)`.
fn hmac(key: &[u8; BLOCK], parts: &[&[u8]]) -> [u8; BLOCK] {
    let mut mac =
        <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl HmacDrbg {
    /// det-keygen steps 2–7: instantiate with `seed || personalization`.
    pub(crate) fn new(seed: &[u8], personalization: &[u8]) -> Self {
        let mut drbg = HmacDrbg {
            k: [0u8; BLOCK],
            v: [1u8; BLOCK],
        };
        drbg.k = hmac(&drbg.k, &[&drbg.v, &[0x00], seed, personalization]);
        drbg.v = hmac(&drbg.k, &[&drbg.v]);
        drbg.k = hmac(&drbg.k, &[&drbg.v, &[0x01], seed, personalization]);
        drbg.v = hmac(&drbg.k, &[&drbg.v]);
        drbg
    }

    /// det-keygen steps 8–9: `temp = ""; while len(temp) < len: V = HMAC(K, V); temp ||= V`,
    /// writing the first `out.len()` bytes of `temp` into `out` (the rest is discarded).
    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(BLOCK) {
            self.v = hmac(&self.k, &[&self.v]);
            chunk.copy_from_slice(&self.v[..chunk.len()]);
        }
    }

    /// The update with no additional input that follows each generate call
    /// (`K = HMAC(K, V || 0x00); V = HMAC(K, V)`), used by det-keygen before every retry.
    pub(crate) fn update(&mut self) {
        self.k = hmac(&self.k, &[&self.v, &[0x00]]);
        self.v = hmac(&self.k, &[&self.v]);
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

//! C2SP det-keygen for ECDSA over NIST P-256 and P-384 (<https://c2sp.org/det-keygen>).
//!
//! HMAC_DRBG(SHA-256) is instantiated with the seed and the personalization string
//! `det ECDSA key gen P-<bits>`; `len(n)` bits are drawn and converted with bits2int.
//! Only for P-256, a first draw `d ≥ n` is retried once after a DRBG update; any other
//! out-of-range draw is a fatal error.

use zeroize::Zeroizing;

use super::KeyError;
use super::drbg::HmacDrbg;

/// The curves det-keygen supports here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
}

impl Curve {
    fn personalization(self) -> &'static [u8] {
        match self {
            Curve::P256 => b"det ECDSA key gen P-256",
            Curve::P384 => b"det ECDSA key gen P-384",
        }
    }

    /// `len(n)` in bytes (both orders are a whole number of bytes, so bits2int is a truncation).
    fn scalar_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }
}

/// Draws `len(n)` bits from the DRBG (steps 8–10). bits2int for P-256 and P-384 is just
/// truncation of `temp` to `len(n)` bytes, which [`HmacDrbg::fill`] does.
fn draw(drbg: &mut HmacDrbg, curve: Curve) -> Zeroizing<Vec<u8>> {
    let mut d = Zeroizing::new(vec![0u8; curve.scalar_len()]);
    drbg.fill(&mut d);
    d
}

/// Runs det-keygen for `curve`, calling `accept` on each candidate big-endian scalar;
/// `accept` returns `None` when the scalar is `≥ n` (it is never called with zero).
fn generate<K>(
    curve: Curve,
    seed: &[u8],
    accept: impl Fn(&[u8]) -> Option<K>,
) -> Result<K, KeyError> {
    if seed.len() < super::MIN_SEED_LEN {
        return Err(KeyError::SeedTooShort { len: seed.len() });
    }
    let mut drbg = HmacDrbg::new(seed, curve.personalization());
    let mut d = draw(&mut drbg, curve);
    // Step 11: only P-256 retries, and only once, when d ≥ n.
    if curve == Curve::P256 && d.iter().any(|&b| b != 0) {
        if let Some(key) = accept(&d) {
            return Ok(key);
        }
        drbg.update();
        d = draw(&mut drbg, curve);
    }
    // Step 12.
    if d.iter().all(|&b| b == 0) {
        return Err(KeyError::EcdsaScalarOutOfRange);
    }
    accept(&d).ok_or(KeyError::EcdsaScalarOutOfRange)
}

/// det-keygen for P-256.
pub(crate) fn generate_p256(seed: &[u8]) -> Result<p256::ecdsa::SigningKey, KeyError> {
    generate(Curve::P256, seed, |d| {
        p256::ecdsa::SigningKey::from_slice(d).ok()
    })
}

/// det-keygen for P-384.
pub(crate) fn generate_p384(seed: &[u8]) -> Result<p384::ecdsa::SigningKey, KeyError> {
    generate(Curve::P384, seed, |d| {
        p384::ecdsa::SigningKey::from_slice(d).ok()
    })
}

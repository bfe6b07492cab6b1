//! C2SP det-keygen for RSA (<https://c2sp.org/det-keygen>), for any modulus size that is a
//! multiple of 16 and at least 2048 bits, with `e = 65537`.
//!
//! HMAC_DRBG(SHA-256) is instantiated with the seed and `det RSA key gen || I2OSP(bits, 2)`.
//! Each prime candidate is `bits/16` DRBG bytes with the top two and bottom three bits set;
//! the DRBG is updated after every candidate. When `GCD(p-1, q-1) ≥ 2^32` or `e` is not
//! invertible modulo `λ = lcm(p-1, q-1)`, both primes are discarded and the search goes on.
//! `d = e^-1 mod λ`; the CRT parameters are the usual `d mod (p-1)`, `d mod (q-1)`,
//! `q^-1 mod p`, computed by the `rsa` crate from `(n, e, d, [p, q])`.

use crypto_bigint::{BoxedUint, ConcatenatingMul, Gcd, Limb, NonZero};
use zeroize::Zeroizing;

use super::KeyError;
use super::drbg::HmacDrbg;
use super::prime;

/// The fixed public exponent.
pub(crate) const E: u32 = 65_537;

/// Smallest modulus size det-keygen allows.
pub const MIN_BITS: usize = 2048;
/// Largest modulus size representable in the spec's 2-byte personalization string.
pub const MAX_BITS: usize = 65_520;

/// The primes found for one key, as big-endian byte strings of `bits/16` bytes.
pub(crate) struct Primes {
    pub(crate) p: Zeroizing<Vec<u8>>,
    pub(crate) q: Zeroizing<Vec<u8>>,
}

/// Checks the modulus size the spec accepts.
pub(crate) fn check_bits(bits: usize) -> Result<(), KeyError> {
    if !bits.is_multiple_of(16) || !(MIN_BITS..=MAX_BITS).contains(&bits) {
        return Err(KeyError::UnsupportedRsaBits { bits });
    }
    Ok(())
}

/// Step 1: `det RSA key gen || I2OSP(bits, 2)`.
fn personalization(bits: usize) -> Result<Vec<u8>, KeyError> {
    let bits_u16 = u16::try_from(bits).map_err(|_| KeyError::UnsupportedRsaBits { bits })?;
    let mut personalization = b"det RSA key gen".to_vec();
    personalization.extend_from_slice(&bits_u16.to_be_bytes());
    Ok(personalization)
}

/// Draws candidates (steps 8–13) until one is prime. The DRBG is updated after every
/// candidate, which is the update the spec performs before every following draw.
///
/// For speed, candidates that survive trial division are base-2 tested two at a time
/// (interleaved arithmetic). That may draw one candidate past the prime; the DRBG state
/// saved right after each candidate is restored, so the stream is exactly the spec's.
fn next_prime(drbg: &mut HmacDrbg, bits: usize) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let len = bits / 16;
    let rounds = prime::spec_mr_rounds(bits);
    let mut tester = prime::Tester::new(len);
    // FIPS 186-5 A.1.3 bounds the search; reaching this bound has probability ~2^-83.
    let mut remaining = 10 * bits;
    loop {
        // Up to two sieved candidates, in draw order, each with the DRBG state after it.
        let mut batch: Vec<(Zeroizing<Vec<u8>>, HmacDrbg)> = Vec::with_capacity(2);
        while batch.len() < 2 && remaining > 0 {
            remaining -= 1;
            let mut t = Zeroizing::new(vec![0u8; len]);
            drbg.fill(&mut t);
            drbg.update();
            // Steps 10 and 11.
            t[0] |= 0b1100_0000;
            t[len - 1] |= 0b0000_0111;
            if tester.sieve(&t) {
                batch.push((t, drbg.clone()));
            }
        }
        if batch.is_empty() {
            return Err(KeyError::RsaPrimeSearchExhausted);
        }
        let candidates: Vec<&[u8]> = batch.iter().map(|(t, _)| t.as_slice()).collect();
        let base2 = tester.base2(&candidates);
        for ((t, state), passed) in batch.into_iter().zip(base2) {
            if passed && tester.random_rounds(&t, rounds) {
                *drbg = state;
                return Ok(t);
            }
        }
    }
}

/// The whole process: the key for `(bits, seed)`, with the retries of steps 20 and 23.
pub(crate) fn generate_components(bits: usize, seed: &[u8]) -> Result<rsa::PrivateKey, KeyError> {
    check_bits(bits)?;
    if seed.len() < super::MIN_SEED_LEN {
        return Err(KeyError::SeedTooShort { len: seed.len() });
    }
    let personalization = personalization(bits)?;
    let mut drbg = HmacDrbg::new(seed, &personalization);
    loop {
        let primes = Primes {
            p: next_prime(&mut drbg, bits)?,
            q: next_prime(&mut drbg, bits)?,
        };
        if let Some(key) = assemble(bits, &primes)? {
            return Ok(key);
        }
    }
}

/// Steps 19–25 for a pair of primes. `Ok(None)` asks for fresh primes (steps 20 and 23).
fn assemble(bits: usize, primes: &Primes) -> Result<Option<rsa::PrivateKey>, KeyError> {
    let half_bits = (bits / 2) as u32;
    let load = |be: &[u8]| {
        BoxedUint::from_be_slice(be, half_bits).map_err(|_| KeyError::Internal("prime encoding"))
    };
    let p = Zeroizing::new(load(&primes.p)?);
    let q = Zeroizing::new(load(&primes.q)?);
    let pm1 = Zeroizing::new(p.wrapping_sub(Limb::ONE));
    let qm1 = Zeroizing::new(q.wrapping_sub(Limb::ONE));

    // Step 19-20: ratio = GCD(p-1, q-1) must be below 2^32.
    let ratio = Zeroizing::new(pm1.gcd(&qm1));
    if ratio.bit_width_vartime() > 32 {
        return Ok(None);
    }
    let ratio_limb = NonZero::new(ratio.as_limbs()[0])
        .into_option()
        .ok_or(KeyError::Internal("zero gcd"))?;

    // Step 21: λ = (p-1)(q-1) / ratio.
    let phi = Zeroizing::new(pm1.concatenating_mul(&*qm1));
    let (lambda, rem) = phi.div_rem_limb(ratio_limb);
    let lambda = Zeroizing::new(lambda);
    if rem != Limb::ZERO {
        return Err(KeyError::Internal("gcd does not divide"));
    }

    // Step 23: d = e^-1 mod λ. With e prime, the inverse exists iff e ∤ λ; then
    // d = (1 + k·λ) / e where k = -λ^-1 mod e, which is the unique d in [0, λ).
    let e_limb = NonZero::new(Limb::from(E))
        .into_option()
        .ok_or(KeyError::Internal("e"))?;
    let lambda_mod_e: u64 = lambda.rem_limb(e_limb).0;
    if lambda_mod_e == 0 {
        return Ok(None);
    }
    let k = u64::from(E) - pow_mod_u64(lambda_mod_e, u64::from(E) - 2, u64::from(E));
    let k_lambda = Zeroizing::new(lambda.concatenating_mul(&BoxedUint::from(k)));
    let k_lambda_plus_1 = Zeroizing::new(k_lambda.wrapping_add(Limb::ONE));
    let (d, rem) = k_lambda_plus_1.div_rem_limb(e_limb);
    let d = Zeroizing::new(d);
    if rem != Limb::ZERO {
        return Err(KeyError::Internal("inverse check"));
    }

    // Step 24.
    let n = p.concatenating_mul(&*q);
    let key = rsa::PrivateKey::from_components(
        n,
        BoxedUint::from(E),
        (*d).clone(),
        vec![(*p).clone(), (*q).clone()],
    )
    .map_err(|_| KeyError::Internal("rsa key assembly"))?;
    Ok(Some(key))
}

/// `b^e mod m` for small values.
fn pow_mod_u64(mut b: u64, mut e: u64, m: u64) -> u64 {
    let mut r = 1u64;
    b %= m;
    while e > 0 {
        if e & 1 == 1 {
            r = ((u128::from(r) * u128::from(b)) % u128::from(m)) as u64;
        }
        b = ((u128::from(b) * u128::from(b)) % u128::from(m)) as u64;
        e >>= 1;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's prime search read literally: one candidate at a time, the reference
    /// (crypto-bigint) primality test, the DRBG updated after every candidate.
    fn reference_next_prime(drbg: &mut HmacDrbg, bits: usize) -> Vec<u8> {
        let len = bits / 16;
        loop {
            let mut t = vec![0u8; len];
            drbg.fill(&mut t);
            drbg.update();
            t[0] |= 0b1100_0000;
            t[len - 1] |= 0b0000_0111;
            if prime::is_prime_reference(&t, prime::spec_mr_rounds(bits)) {
                return t;
            }
        }
    }

    #[test]
    fn batched_search_matches_literal_search() {
        let mut cases = vec![(2048, [0u8; 32]), (2048, [1u8; 32]), (2064, [2u8; 32])];
        if !cfg!(debug_assertions) {
            cases.push((3072, [3u8; 32]));
        }
        for (bits, seed) in cases {
            let p13n = personalization(bits).expect("size");
            let mut fast = HmacDrbg::new(&seed, &p13n);
            let mut literal = HmacDrbg::new(&seed, &p13n);
            for which in ["p", "q", "next p"] {
                let got = next_prime(&mut fast, bits).expect("prime");
                let want = reference_next_prime(&mut literal, bits);
                assert_eq!(*got, want, "{which} for {bits} bits");
            }
        }
    }

    #[test]
    fn personalization_string() {
        assert_eq!(
            personalization(2048).expect("ok"),
            b"det RSA key gen\x08\x00"
        );
        assert_eq!(
            personalization(3072).expect("ok"),
            b"det RSA key gen\x0c\x00"
        );
    }

    #[test]
    fn sizes() {
        for ok in [2048, 2064, 3072, 4096, 8192, MAX_BITS] {
            assert!(check_bits(ok).is_ok(), "{ok}");
        }
        for bad in [0, 1024, 2047, 2056, 3000, MAX_BITS + 16] {
            assert!(check_bits(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn small_modular_inverse() {
        for x in [1u64, 2, 3, 12345, 65536] {
            let inv = pow_mod_u64(x, u64::from(E) - 2, u64::from(E));
            assert_eq!(x * inv % u64::from(E), 1);
        }
    }
}

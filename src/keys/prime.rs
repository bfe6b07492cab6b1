//! Primality testing for det-keygen RSA prime candidates.
//!
//! The spec (step 13) requires a test whose false positive/negative probability is
//! cryptographically negligible for random candidates, and suggests trial division by the
//! primes up to 1619 followed by 5/4/3 Miller–Rabin rounds with random bases. We do at
//! least that: trial division by the same primes (and more), an extra base-2 round, and
//! then the spec's number of rounds with bases drawn uniformly from `[2, t-2]`.
//!
//! None of these choices change *which* candidate is accepted (only primes pass, up to
//! negligible probability), so the generated key depends only on the seed. The MR bases
//! are drawn from an HMAC_DRBG keyed by the candidate itself, so a key generation is a pure
//! function of its inputs and never touches the OS RNG.

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd};

use super::drbg::HmacDrbg;

/// The spec's trial-division bound.
const SPEC_TRIAL_DIVISION_LIMIT: u32 = 1619;

/// Miller–Rabin rounds with random bases the spec asks for, given the *modulus* size.
pub(crate) fn spec_mr_rounds(modulus_bits: usize) -> usize {
    if modulus_bits < 2690 {
        5
    } else if modulus_bits < 7494 {
        4
    } else {
        3
    }
}

/// Odd primes up to `limit`, by a plain sieve.
pub(crate) fn odd_primes_up_to(limit: u32) -> Vec<u32> {
    let n = limit as usize + 1;
    let mut composite = vec![false; n];
    let mut out = Vec::new();
    for i in 2..n {
        if !composite[i] {
            if i > 2 {
                out.push(i as u32);
            }
            let mut j = i * i;
            while j < n {
                composite[j] = true;
                j += i;
            }
        }
    }
    out
}

/// Remainder of the big-endian integer `be` modulo the small `m` (`m < 2^32`).
pub(crate) fn rem_small(be: &[u8], m: u32) -> u32 {
    let m = u64::from(m);
    let mut r = 0u64;
    for &b in be {
        r = ((r << 8) | u64::from(b)) % m;
    }
    r as u32
}

/// Primality tester for candidates of one byte length; holds precomputed tables.
pub(crate) struct Tester {}

impl Tester {
    pub(crate) fn new(_len: usize) -> Self {
        Tester {}
    }

    /// Whether the big-endian candidate `t` (`t ≡ 7 mod 8`) is prime, with `rounds`
    /// random-base Miller–Rabin rounds after trial division and a base-2 round.
    pub(crate) fn is_prime(&mut self, t: &[u8], rounds: usize) -> bool {
        is_prime_reference(t, rounds)
    }
}

/// Reference primality test (slow, straightforward): trial division by the spec's
/// primes, then a base-2 round, then `rounds` Miller–Rabin rounds with random bases.
/// `t` is a big-endian candidate with `t ≡ 3 (mod 4)` and at least 64 bits.
pub(crate) fn is_prime_reference(t: &[u8], rounds: usize) -> bool {
    for p in odd_primes_up_to(SPEC_TRIAL_DIVISION_LIMIT) {
        if rem_small(t, p) == 0 {
            return false;
        }
    }
    let bits = (t.len() * 8) as u32;
    let Ok(n) = BoxedUint::from_be_slice(t, bits) else {
        return false;
    };
    let Some(n) = Option::<Odd<BoxedUint>>::from(Odd::new(n)) else {
        return false;
    };
    let params = BoxedMontyParams::new_vartime(n.clone());
    let one = BoxedMontyForm::one(&params);
    let minus_one = -one.clone();
    // t ≡ 3 (mod 4), so t - 1 = 2·m with m odd and a single squaring step: the strong test
    // reduces to b^m ≡ ±1.
    let m = n.as_ref().shr(1);
    let strong = |b: &BoxedUint| {
        let x = BoxedMontyForm::new(b.clone(), &params).pow(&m);
        x == one || x == minus_one
    };
    let Ok(two) = BoxedUint::from_be_slice(&[2], bits) else {
        return false;
    };
    if !strong(&two) {
        return false;
    }
    let mut bases = BaseSource::new(t);
    for _ in 0..rounds {
        let b = bases.next_base(t);
        let Ok(b) = BoxedUint::from_be_slice(&b, bits) else {
            return false;
        };
        if !strong(&b) {
            return false;
        }
    }
    true
}

/// Deterministic source of uniformly random Miller–Rabin bases in `[2, t-2]`, from an
/// HMAC_DRBG seeded with the candidate.
pub(crate) struct BaseSource {
    drbg: HmacDrbg,
}

impl BaseSource {
    pub(crate) fn new(t: &[u8]) -> Self {
        BaseSource {
            drbg: HmacDrbg::new(t, b"hardway det-keygen Miller-Rabin bases"),
        }
    }

    /// Next base, big-endian, same length as `t`, by rejection sampling on
    /// `bitlen(t)`-bit strings (`t` has its top bit set, so at least half are accepted).
    pub(crate) fn next_base(&mut self, t: &[u8]) -> Vec<u8> {
        let top_mask = t.first().map_or(0xff, |&b| {
            if b == 0 {
                0xff
            } else {
                0xffu8 >> b.leading_zeros()
            }
        });
        let mut b = vec![0u8; t.len()];
        loop {
            self.drbg.fill(&mut b);
            self.drbg.update();
            if let Some(first) = b.first_mut() {
                *first &= top_mask;
            }
            // Accept 2 <= b <= t - 2, i.e. b >= 2 and b < t - 1.
            let ge_two =
                b.iter().rev().skip(1).any(|&x| x != 0) || b.last().is_some_and(|&x| x >= 2);
            if ge_two && be_lt_minus_one(&b, t) {
                return b;
            }
        }
    }
}

/// `a < t - 1` for equal-length big-endian `a`, `t` with `t` odd (so `t - 1` only clears
/// the low bit).
fn be_lt_minus_one(a: &[u8], t: &[u8]) -> bool {
    let mut tm1 = t.to_vec();
    if let Some(last) = tm1.last_mut() {
        *last &= 0xfe;
    }
    a < tm1.as_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_prime_table() {
        let ps = odd_primes_up_to(SPEC_TRIAL_DIVISION_LIMIT);
        assert_eq!(ps.first(), Some(&3));
        assert_eq!(ps.last(), Some(&1619));
        // 1619 is the 256th prime, so 255 odd primes.
        assert_eq!(ps.len(), 255);
    }

    #[test]
    fn reference_test_known_values() {
        // 2^127 - 1 ≡ 3 mod 4, prime.
        let m127 = (u128::MAX >> 1).to_be_bytes();
        assert!(is_prime_reference(&m127, 5));
        // (2^61 - 1) · (2^64 - 59): a product of two primes, ≡ 3 mod 4.
        let c = (((1u128 << 61) - 1) * 18446744073709551557u128).to_be_bytes();
        assert!(!is_prime_reference(&c, 5));
    }
}

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

use std::sync::{Arc, Mutex};

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd};

use super::drbg::HmacDrbg;
use super::mont::Mont;
use zeroize::Zeroize;

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

/// Trial division goes up to this bound: far past the spec's 1619, because each extra prime
/// only costs a few multiplications per surviving candidate while a Miller–Rabin round
/// costs about a thousand modular squarings.
const TRIAL_DIVISION_LIMIT: u32 = 1 << 16;

/// Moduli are products of consecutive small primes below this bound, so that 64 products
/// `limb · (2^(64i) mod M)` can be summed in a `u128` without overflow.
const GROUP_MODULUS_LIMIT: u64 = 1 << 57;

/// The fast path handles candidates of up to this many 64-bit limbs (8192-bit keys).
const MAX_FAST_LIMBS: usize = 64;

/// A product `m` of the odd primes `primes[first..first + count]`.
struct Group {
    m: u64,
    /// `-m^-1 mod 2^64`, for a one-step Montgomery reduction of the 128-bit sum.
    m_neg_inv: u64,
    first: usize,
    count: usize,
}

/// Divisibility test by an odd prime `p` without division: for `x < 2^64`,
/// `p | x ⟺ x · p^-1 mod 2^64 ≤ ⌊(2^64 - 1) / p⌋`.
#[derive(Clone, Copy)]
struct Divisor {
    inv: u64,
    max_quotient: u64,
}

impl Divisor {
    fn new(p: u64) -> Self {
        let mut inv = 1u64;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(p.wrapping_mul(inv)));
        }
        Divisor {
            inv,
            max_quotient: u64::MAX / p,
        }
    }

    #[inline(always)]
    fn divides(self, x: u64) -> bool {
        x.wrapping_mul(self.inv) <= self.max_quotient
    }
}

/// Trial-division tables for candidates of a given limb count.
struct TrialDivision {
    limbs: usize,
    groups: Vec<Group>,
    divisors: Vec<Divisor>,
    /// `2^(64 i) mod groups[g].m` at `[g * limbs + i]`.
    powers: Vec<u64>,
}

impl TrialDivision {
    fn new(limbs: usize) -> Self {
        let primes = odd_primes_up_to(TRIAL_DIVISION_LIMIT);
        let mut groups = Vec::new();
        let mut start = 0;
        while start < primes.len() {
            let mut m = 1u64;
            let mut count = 0;
            while start + count < primes.len() {
                let p = u64::from(primes[start + count]);
                match m.checked_mul(p) {
                    Some(next) if next < GROUP_MODULUS_LIMIT => {
                        m = next;
                        count += 1;
                    }
                    _ => break,
                }
            }
            groups.push(Group {
                m,
                m_neg_inv: Divisor::new(m).inv.wrapping_neg(),
                first: start,
                count,
            });
            start += count;
        }
        let divisors = primes.iter().map(|&p| Divisor::new(u64::from(p))).collect();
        let mut powers = Vec::with_capacity(groups.len() * limbs);
        for g in &groups {
            let m = u128::from(g.m);
            let base = ((1u128 << 64) % m) as u64;
            let mut x = 1u64 % g.m;
            for _ in 0..limbs {
                powers.push(x);
                x = ((u128::from(x) * u128::from(base)) % m) as u64;
            }
        }
        TrialDivision {
            limbs,
            groups,
            divisors,
            powers,
        }
    }

    /// Tables for `limbs`, built once per process and size.
    fn for_limbs(limbs: usize) -> Arc<TrialDivision> {
        static CACHE: Mutex<Vec<Arc<TrialDivision>>> = Mutex::new(Vec::new());
        let mut cache = CACHE
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(t) = cache.iter().find(|t| t.limbs == limbs) {
            return Arc::clone(t);
        }
        let t = Arc::new(TrialDivision::new(limbs));
        cache.push(Arc::clone(&t));
        t
    }

    /// `false` if `x` (little-endian, `self.limbs` limbs) has a prime factor in the table.
    fn passes(&self, x: &[u64]) -> bool {
        debug_assert_eq!(x.len(), self.limbs);
        for (g, powers) in self.groups.iter().zip(self.powers.chunks_exact(self.limbs)) {
            let mut acc = 0u128;
            for (&limb, &pow) in x.iter().zip(powers) {
                acc += u128::from(limb) * u128::from(pow);
            }
            // Montgomery reduction r = acc·2^-64 mod m (up to a multiple of m), exact in
            // 128 bits: acc < 64·2^121 and μ·m < 2^121. Multiplying by the unit 2^-64
            // keeps divisibility by each prime of the group, which is all we ask.
            let mu = (acc as u64).wrapping_mul(g.m_neg_inv);
            let r = ((acc + u128::from(mu) * u128::from(g.m)) >> 64) as u64;
            if self.divisors[g.first..g.first + g.count]
                .iter()
                .any(|d| d.divides(r))
            {
                return false;
            }
        }
        true
    }
}

/// Primality tester for candidates of one byte length; holds the precomputed tables.
pub(crate) struct Tester {
    len: usize,
    trial: Option<Arc<TrialDivision>>,
    limbs: Vec<u64>,
}

impl Tester {
    /// A tester for big-endian candidates of `len` bytes.
    pub(crate) fn new(len: usize) -> Self {
        let limbs = len.div_ceil(8);
        Tester {
            len,
            trial: (limbs <= MAX_FAST_LIMBS).then(|| TrialDivision::for_limbs(limbs)),
            limbs: vec![0; limbs],
        }
    }

    /// Whether the big-endian candidate `t` (`t ≡ 3 mod 4`, top bit set) is prime, with
    /// `rounds` random-base Miller–Rabin rounds after trial division and a base-2 round.
    #[cfg(test)]
    pub(crate) fn is_prime(&mut self, t: &[u8], rounds: usize) -> bool {
        self.sieve(t) && self.base2(&[t])[0] && self.random_rounds(t, rounds)
    }

    /// Trial division: `false` if `t` has a small prime factor. Candidates of an
    /// unexpected length pass (the later steps test them fully).
    pub(crate) fn sieve(&mut self, t: &[u8]) -> bool {
        let Some(trial) = &self.trial else {
            return true;
        };
        if t.len() != self.len {
            return true;
        }
        be_to_limbs(t, &mut self.limbs);
        trial.passes(&self.limbs)
    }

    /// The base-2 round for one or two candidates of this tester's length; two are run
    /// interleaved, which is faster than one after the other.
    pub(crate) fn base2(&self, ts: &[&[u8]]) -> Vec<bool> {
        let fast = match 8 * self.len + 4 {
            0..=1037 => base2_fast::<17, 61>(ts),
            1038..=1586 => base2_fast::<26, 61>(ts),
            1587..=2100 => base2_fast::<35, 60>(ts),
            2101..=4140 => base2_fast::<69, 60>(ts),
            _ => None,
        };
        fast.unwrap_or_else(|| ts.iter().map(|t| is_prime_reference(t, 0)).collect())
    }

    /// `rounds` Miller–Rabin rounds with random bases.
    pub(crate) fn random_rounds(&self, t: &[u8], rounds: usize) -> bool {
        let fast = match 8 * self.len + 4 {
            0..=1037 => random_rounds_fast::<17, 61>(t, rounds),
            1038..=1586 => random_rounds_fast::<26, 61>(t, rounds),
            1587..=2100 => random_rounds_fast::<35, 60>(t, rounds),
            2101..=4140 => random_rounds_fast::<69, 60>(t, rounds),
            _ => None,
        };
        fast.unwrap_or_else(|| is_prime_reference(t, rounds))
    }
}

impl Drop for Tester {
    fn drop(&mut self) {
        // The last candidate tested is usually the prime that was kept.
        self.limbs.zeroize();
    }
}

/// A candidate `t ≡ 3 (mod 4)` ready for Miller–Rabin: its Montgomery context and the
/// exponent `m = (t - 1) / 2` (odd).
struct Prepared<const N: usize, const B: u32> {
    modulus: Mont<N, B>,
    half: Vec<u64>,
    mod8_is_7: bool,
}

impl<const N: usize, const B: u32> Prepared<N, B> {
    /// `None` when the fast path does not apply (wrong residue mod 4, or too wide).
    fn new(t: &[u8]) -> Option<Self> {
        let mut limbs = vec![0u64; t.len().div_ceil(8)];
        be_to_limbs(t, &mut limbs);
        if limbs.first().is_none_or(|&l| l & 3 != 3) {
            return None;
        }
        let modulus = Mont::<N, B>::new(&limbs)?;
        let mod8_is_7 = limbs[0] & 7 == 7;
        let mut carry = 0u64;
        for limb in limbs.iter_mut().rev() {
            let next = *limb & 1;
            *limb = (*limb >> 1) | (carry << 63);
            carry = next;
        }
        Some(Prepared {
            modulus,
            half: limbs,
            mod8_is_7,
        })
    }

    /// Strong-test verdict for `x = b^m`: `t - 1 = 2m` with `m` odd, so a prime gives
    /// `±1`; for base 2 and `t ≡ 7 (mod 8)`, 2 is a quadratic residue and a prime gives
    /// exactly `+1`.
    fn verdict(&self, x: &[u64; N], base_two: bool) -> bool {
        *x == self.modulus.one()
            || (!(base_two && self.mod8_is_7) && *x == self.modulus.minus_one())
    }
}

impl<const N: usize, const B: u32> Drop for Prepared<N, B> {
    fn drop(&mut self) {
        self.half.zeroize();
    }
}

/// Base-2 rounds on the fast path; `None` to fall back to the reference test.
fn base2_fast<const N: usize, const B: u32>(ts: &[&[u8]]) -> Option<Vec<bool>> {
    let prepared = ts
        .iter()
        .map(|t| Prepared::<N, B>::new(t))
        .collect::<Option<Vec<_>>>()?;
    let results = match prepared.as_slice() {
        [a, b] => {
            let [x, y] = Mont::pow2_pair([&a.modulus, &b.modulus], [&a.half, &b.half]);
            vec![a.verdict(&x, true), b.verdict(&y, true)]
        }
        _ => prepared
            .iter()
            .map(|p| p.verdict(&p.modulus.pow2(&p.half), true))
            .collect(),
    };
    Some(results)
}

/// Random-base rounds on the fast path; `None` to fall back to the reference test.
fn random_rounds_fast<const N: usize, const B: u32>(t: &[u8], rounds: usize) -> Option<bool> {
    let p = Prepared::<N, B>::new(t)?;
    let r2 = p.modulus.r_squared();
    let mut bases = BaseSource::new(t);
    let mut b64 = vec![0u64; t.len().div_ceil(8)];
    for _ in 0..rounds {
        let Some(base) = bases.next_base(t) else {
            break;
        };
        be_to_limbs(&base, &mut b64);
        let b = Mont::<N, B>::limbs_from_u64(&b64)?;
        let x = p.modulus.pow(&p.modulus.mul(&b, &r2), &p.half);
        if !p.verdict(&x, false) {
            return Some(false);
        }
    }
    Some(true)
}

/// Big-endian bytes to little-endian limbs (`out.len() * 8 >= be.len()`).
fn be_to_limbs(be: &[u8], out: &mut [u64]) {
    out.fill(0);
    for (i, chunk) in be.rchunks(8).enumerate() {
        let mut word = [0u8; 8];
        word[8 - chunk.len()..].copy_from_slice(chunk);
        out[i] = u64::from_be_bytes(word);
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
        let Some(b) = bases.next_base(t) else {
            break;
        };
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
    pub(crate) fn next_base(&mut self, t: &[u8]) -> Option<Vec<u8>> {
        // Only t ≥ 5 has a base in [2, t-2].
        let significant = t.iter().position(|&b| b != 0)?;
        if t.len() - significant == 1 && t[significant] < 5 {
            return None;
        }
        // Draw bitlen(t)-bit strings: zero the leading zero bytes of t, mask the first
        // significant one. At least half of the draws are below t.
        let top_mask = 0xffu8 >> t[significant].leading_zeros();
        let mut b = vec![0u8; t.len()];
        loop {
            self.drbg.fill(&mut b[significant..]);
            self.drbg.update();
            b[significant] &= top_mask;
            // Accept 2 <= b <= t - 2, i.e. b >= 2 and b < t - 1.
            let ge_two =
                b.iter().rev().skip(1).any(|&x| x != 0) || b.last().is_some_and(|&x| x >= 2);
            if ge_two && be_lt_minus_one(&b, t) {
                return Some(b);
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

    /// `2^p - 1` as big-endian bytes.
    fn mersenne(p: usize) -> Vec<u8> {
        let mut be = vec![0xffu8; p.div_ceil(8)];
        if !p.is_multiple_of(8) {
            be[0] = (1u8 << (p % 8)) - 1;
        }
        be
    }

    /// Candidates like the RSA search draws them: DRBG bytes, top two and low three bits set.
    fn candidates(len: usize, count: usize, label: &[u8]) -> Vec<Vec<u8>> {
        let mut drbg = HmacDrbg::new(b"hardway prime test candidates", label);
        (0..count)
            .map(|_| {
                let mut t = vec![0u8; len];
                drbg.fill(&mut t);
                drbg.update();
                t[0] |= 0xc0;
                t[len - 1] |= 7;
                t
            })
            .collect()
    }

    /// `be - r` for a small `r ≤ be`.
    fn sub_small(be: &mut [u8], mut r: u32) {
        for byte in be.iter_mut().rev() {
            let (d, borrow) = byte.overflowing_sub((r & 0xff) as u8);
            *byte = d;
            r = (r >> 8) + u32::from(borrow);
        }
    }

    #[test]
    fn trial_division_matches_plain_remainders() {
        let primes = odd_primes_up_to(TRIAL_DIVISION_LIMIT);
        for len in [128usize, 129, 192] {
            let mut tester = Tester::new(len);
            let mut cases = candidates(len, 40, b"td");
            // Multiples of primes from every part of the table, including the largest.
            for (i, p) in primes
                .iter()
                .copied()
                .enumerate()
                .step_by(997)
                .chain([(0, 65521)])
            {
                let mut t = cases[i % cases.len()].clone();
                let r = rem_small(&t, p);
                sub_small(&mut t, r);
                assert_eq!(rem_small(&t, p), 0);
                cases.push(t);
            }
            for t in &cases {
                let naive = primes.iter().all(|&p| rem_small(t, p) != 0);
                assert_eq!(tester.sieve(t), naive, "len {len}");
            }
        }
    }

    #[test]
    fn fast_path_agrees_with_reference() {
        let mut tester = Tester::new(128);
        let mut survivors = candidates(128, 600, b"fast")
            .into_iter()
            .filter(|t| tester.sieve(t))
            .collect::<Vec<_>>();
        survivors.truncate(40);
        assert!(survivors.len() >= 30);
        let mut primes = 0;
        for pair in survivors.chunks(2) {
            let refs: Vec<&[u8]> = pair.iter().map(Vec::as_slice).collect();
            let fast = tester.base2(&refs);
            for (t, fast) in pair.iter().zip(fast) {
                let reference = is_prime_reference(t, 0);
                assert_eq!(fast, reference);
                if fast {
                    let prime = tester.random_rounds(t, 5);
                    assert_eq!(prime, is_prime_reference(t, 5));
                    primes += usize::from(prime);
                }
            }
        }
        // 40 sieved 1024-bit candidates hold a prime with probability ≈ 98%; this fixed
        // sample holds at least one.
        assert!(primes >= 1);
    }

    #[test]
    fn mersenne_numbers() {
        // Mersenne numbers 2^p - 1 (p prime) are ≡ 7 mod 8 and pass every base-2 test,
        // prime or not, so they exercise the random-base rounds.
        let mut cases = vec![(521, true), (607, true), (1277, false), (1279, true)];
        if !cfg!(debug_assertions) {
            cases.extend([(2203, true), (2207, false), (4253, true)]);
        }
        for (p, prime) in cases {
            let t = mersenne(p);
            let mut tester = Tester::new(t.len());
            assert!(tester.sieve(&t), "M{p} has no small factors");
            assert_eq!(
                tester.base2(&[&t]),
                vec![true],
                "M{p} is a base-2 pseudoprime"
            );
            assert_eq!(tester.random_rounds(&t, 5), prime, "M{p}");
            assert_eq!(tester.is_prime(&t, 3), prime, "M{p}");
        }
    }

    #[test]
    fn strong_pseudoprime_to_small_bases_is_rejected() {
        // 3215031751 = 151 · 751 · 28351 ≡ 7 (mod 8) is a strong pseudoprime to bases
        // 2, 3, 5 and 7; random bases catch it even without trial division.
        let t = 3_215_031_751u64.to_be_bytes();
        assert_eq!(random_rounds_fast::<17, 61>(&t, 5), Some(false));
        assert!(!is_prime_reference(&t, 5));
    }

    /// Cost model aid: `cargo test --release --lib prime::tests::profile -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing only"]
    fn profile() {
        for len in [128usize, 192, 256] {
            let mut drbg = HmacDrbg::new(b"profile profile profile", b"x");
            let mut tester = Tester::new(len);
            let trial = TrialDivision::for_limbs(len / 8);
            let mut limbs = vec![0u64; len / 8];
            let (mut cands, mut survivors, mut primes) = (0u32, 0u32, 0u32);
            let mut td_time = std::time::Duration::ZERO;
            let mut mr_time = std::time::Duration::ZERO;
            let start = std::time::Instant::now();
            while primes < 20 {
                let mut t = vec![0u8; len];
                drbg.fill(&mut t);
                drbg.update();
                t[0] |= 0xc0;
                t[len - 1] |= 7;
                cands += 1;
                let s0 = std::time::Instant::now();
                be_to_limbs(&t, &mut limbs);
                let pass = trial.passes(&limbs);
                td_time += s0.elapsed();
                if pass {
                    survivors += 1;
                    let s1 = std::time::Instant::now();
                    if tester.is_prime(&t, 0) {
                        primes += 1;
                    }
                    mr_time += s1.elapsed();
                }
            }
            let total = start.elapsed();
            eprintln!(
                "len {len}: {} groups; per prime: {:.0} candidates, {:.1} survive TD; \
                 TD {:?}/candidate, base-2 {:?}/survivor; total {:?}/prime (no random rounds)",
                trial.groups.len(),
                f64::from(cands) / f64::from(primes),
                f64::from(survivors) / f64::from(primes),
                td_time / cands,
                mr_time / survivors,
                total / primes,
            );
        }
    }

    /// Trial-division cost: `cargo test --release --lib prime::tests::td_speed -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing only"]
    fn td_speed() {
        let len = 128;
        let mut drbg = HmacDrbg::new(b"td speed td speed td speed", b"x");
        let trial = TrialDivision::for_limbs(len / 8);
        let cands: Vec<Vec<u64>> = (0..4000)
            .map(|_| {
                let mut t = vec![0u8; len];
                drbg.fill(&mut t);
                drbg.update();
                t[0] |= 0xc0;
                t[len - 1] |= 7;
                let mut l = vec![0u64; len / 8];
                be_to_limbs(&t, &mut l);
                l
            })
            .collect();
        let mut pass = 0;
        let best = (0..20)
            .map(|_| {
                let start = std::time::Instant::now();
                pass = cands.iter().filter(|c| trial.passes(c)).count();
                start.elapsed() / cands.len() as u32
            })
            .min()
            .expect("runs");
        eprintln!("TD: {best:?} per candidate, {pass} of {} pass", cands.len());
    }
}

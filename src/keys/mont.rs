//! Montgomery arithmetic for Miller–Rabin on RSA prime candidates.
//!
//! This is the hot path of RSA key generation (over 90% of it is modular squaring), so it
//! is variable-time and written for speed rather than generality:
//!
//! - Numbers use `N` limbs of `B < 64` bits (`B` = 61 or 60), so a whole column of
//!   products `Σ aᵢ·bⱼ` fits in a `u128` without carry handling, and `R = 2^(B·N)` leaves
//!   at least 4 bits of headroom over the modulus (`16n < R`). With that headroom the
//!   results of products stay in `[0, 2n)` given inputs in `[0, 4n)` ("lazy" reduction):
//!   no comparisons or subtractions in the inner loop, and doubling (base-2 exponentiation
//!   multiplies by 2) is a plain shift.
//! - Squaring is product scanning (one column at a time, square and Montgomery reduction
//!   interleaved), with each column a separate non-inlined function specialised for its
//!   index, so the compiler emits straight-line multiply/add chains; a fully inlined
//!   version schedules worse.
//!
//! Everything is cross-checked against `crypto-bigint` in the tests.

use zeroize::Zeroize;

/// Column indices for the unrolled squaring (`2·N - 1` columns for `N ≤ 35` limbs).
macro_rules! for_each_column {
    ($mac:ident) => {
        $mac!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27
            28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55
            56 57 58 59 60 61 62 63 64 65 66 67 68)
    };
}

/// The largest `N` whose squaring is unrolled per column; larger sizes use loops.
const MAX_UNROLLED_LIMBS: usize = 35;

/// Inputs and running values of one squaring, passed to each column by one pointer.
struct SqrState<'a, const N: usize> {
    a: &'a [u64; N],
    a2: [u64; N],
    m: [u64; N],
    carry: u128,
}

impl<'a, const N: usize> SqrState<'a, N> {
    fn new(a: &'a [u64; N]) -> Self {
        let mut a2 = [0u64; N];
        for (d, &x) in a2.iter_mut().zip(a) {
            *d = x << 1;
        }
        SqrState {
            a,
            a2,
            m: [0u64; N],
            carry: 0,
        }
    }
}

#[inline(always)]
fn prod(a: u64, b: u64) -> u128 {
    u128::from(a) * u128::from(b)
}

/// An odd modulus `n` with `16n < R = 2^(B·N)`, in radix-`2^B` limbs.
pub(crate) struct Mont<const N: usize, const B: u32> {
    n: [u64; N],
    /// `-n^-1 mod 2^B`.
    n0inv: u64,
    /// `R mod n`: 1 in Montgomery form, fully reduced.
    one: [u64; N],
}

impl<const N: usize, const B: u32> Drop for Mont<N, B> {
    fn drop(&mut self) {
        // The modulus may be one of the key's primes.
        self.n.zeroize();
        self.one.zeroize();
    }
}

impl<const N: usize, const B: u32> Mont<N, B> {
    const MASK: u64 = (1u64 << B) - 1;

    /// Radix-`2^B` limbs of the little-endian 64-bit limbs `x`, or `None` if `x` needs
    /// more than `B·N` bits.
    pub(crate) fn limbs_from_u64(x: &[u64]) -> Option<[u64; N]> {
        let mut out = [0u64; N];
        let mut acc = 0u128;
        let mut acc_bits = 0u32;
        let mut k = 0;
        for &word in x {
            acc |= u128::from(word) << acc_bits;
            acc_bits += 64;
            while acc_bits >= B {
                if acc as u64 & Self::MASK != 0 && k >= N {
                    return None;
                }
                if k < N {
                    out[k] = acc as u64 & Self::MASK;
                }
                k += 1;
                acc >>= B;
                acc_bits -= B;
            }
        }
        if acc != 0 {
            if k >= N {
                return None;
            }
            out[k] = acc as u64;
        }
        Some(out)
    }

    /// Bit length of a radix-`2^B` number.
    fn bit_len(x: &[u64; N]) -> usize {
        (0..N)
            .rev()
            .find(|&i| x[i] != 0)
            .map_or(0, |i| i * B as usize + (64 - x[i].leading_zeros() as usize))
    }

    /// `None` unless `n` (little-endian 64-bit limbs) is odd, greater than 1 and at most
    /// `B·N - 4` bits long.
    pub(crate) fn new(n64: &[u64]) -> Option<Self> {
        // A column sum, at most (2N+1)·2^(2B) plus a carry below 2^(128-B), must fit a u128.
        const { assert!(B <= 61 && (2 * N as u128 + 2) <= 1u128 << (128 - 2 * B)) };
        let n = Self::limbs_from_u64(n64)?;
        let bits = Self::bit_len(&n);
        if n[0] & 1 == 0 || bits < 2 || bits + 4 > B as usize * N {
            return None;
        }
        let mut inv = 1u64;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(n[0].wrapping_mul(inv)));
        }
        let mut m = Mont {
            n,
            n0inv: inv.wrapping_neg() & Self::MASK,
            one: [0u64; N],
        };
        // R mod n: start below n at 2^(bits-1) and double up to 2^(B·N).
        let mut x = [0u64; N];
        x[(bits - 1) / B as usize] = 1u64 << ((bits - 1) % B as usize);
        for _ in bits - 1..B as usize * N {
            m.dbl_lazy(&mut x);
            m.reduce_below_n(&mut x);
        }
        m.one = x;
        Some(m)
    }

    /// `x ≥ n`.
    fn geq_n(&self, x: &[u64; N]) -> bool {
        for i in (0..N).rev() {
            if x[i] != self.n[i] {
                return x[i] > self.n[i];
            }
        }
        true
    }

    /// `x -= y` limb-wise in radix `2^B` (requires `x ≥ y`).
    fn sub_assign(x: &mut [u64; N], y: &[u64; N]) {
        let mut borrow = 0u64;
        for (xi, &yi) in x.iter_mut().zip(y) {
            let d = xi.wrapping_sub(yi).wrapping_sub(borrow);
            borrow = d >> 63;
            *xi = d & Self::MASK;
        }
    }

    /// `x -= n` (requires `x ≥ n`).
    fn sub_n(&self, x: &mut [u64; N]) {
        Self::sub_assign(x, &self.n);
    }

    /// Fully reduces a lazily reduced `x < 8n` into `[0, n)`.
    pub(crate) fn reduce_below_n(&self, x: &mut [u64; N]) {
        while self.geq_n(x) {
            self.sub_n(x);
        }
    }

    /// `x = 2x` without reduction (`x < 2n` gives `2x < 4n < R`).
    #[inline(always)]
    pub(crate) fn dbl_lazy(&self, x: &mut [u64; N]) {
        let mut carry = 0u64;
        for limb in x.iter_mut() {
            let v = (*limb << 1) | carry;
            carry = v >> B;
            *limb = v & Self::MASK;
        }
    }

    /// `R mod n`.
    pub(crate) fn one(&self) -> [u64; N] {
        self.one
    }

    /// `n - (R mod n)`: -1 in Montgomery form.
    pub(crate) fn minus_one(&self) -> [u64; N] {
        let mut x = self.n;
        Self::sub_assign(&mut x, &self.one);
        x
    }

    /// Column `K` of the Montgomery square: `Σ_{i+j=K} aᵢaⱼ` (cross terms via `a2 = 2a`),
    /// plus `Σ mᵢ·n_{K-i}`, plus the carry; then either the next `m` or an output limb.
    #[inline(never)]
    fn sqr_column<const K: usize>(&self, st: &mut SqrState<'_, N>, out: &mut [u64; N]) {
        self.sqr_column_body::<K>(st, out);
    }

    #[inline(always)]
    fn sqr_column_body<const K: usize>(&self, st: &mut SqrState<'_, N>, out: &mut [u64; N]) {
        let (a, a2, m, n) = (st.a, &st.a2, &mut st.m, &self.n);
        let lo = K.saturating_sub(N - 1);
        let mut acc = 0u128;
        let mut i = lo;
        while 2 * i < K {
            acc += prod(a[i], a2[K - i]);
            i += 1;
        }
        if K.is_multiple_of(2) {
            acc += prod(a[K / 2], a[K / 2]);
        }
        for i in lo..K.min(N) {
            acc += prod(m[i], n[K - i]);
        }
        acc += st.carry;
        if K < N {
            let mk = (acc as u64).wrapping_mul(self.n0inv) & Self::MASK;
            m[K] = mk;
            acc += prod(mk, n[0]);
        } else {
            out[K - N] = acc as u64 & Self::MASK;
        }
        st.carry = acc >> B;
    }

    /// Montgomery square `a²·R^-1 mod n` into `out`, lazily reduced: `a < 4n` gives a
    /// result `< 2n`.
    pub(crate) fn sqr_into(&self, a: &[u64; N], out: &mut [u64; N]) {
        if N > MAX_UNROLLED_LIMBS {
            *out = self.mul(a, a);
            return;
        }
        let mut st = SqrState::new(a);
        macro_rules! columns {
            ($($k:literal)*) => {
                $( if $k + 1 < 2 * N { self.sqr_column::<$k>(&mut st, out); } )*
            };
        }
        for_each_column!(columns);
        out[N - 1] = st.carry as u64;
    }

    /// Column `K` of `P` independent squarings at once: their dependency chains are
    /// separate, so the processor overlaps them.
    #[inline(never)]
    fn sqr_column_multi<const K: usize, const P: usize>(
        mods: [&Self; P],
        st: &mut [SqrState<'_, N>; P],
        out: &mut [[u64; N]; P],
    ) {
        for ((m, s), o) in mods.iter().zip(st.iter_mut()).zip(out.iter_mut()) {
            m.sqr_column_body::<K>(s, o);
        }
    }

    /// `P` Montgomery squares `aᵢ²·R^-1 mod nᵢ` (same `N`), interleaved column by column;
    /// each lazily reduced like [`Self::sqr_into`].
    pub(crate) fn sqr_multi_into<const P: usize>(
        mods: [&Self; P],
        a: [&[u64; N]; P],
        out: &mut [[u64; N]; P],
    ) {
        if N > MAX_UNROLLED_LIMBS {
            for i in 0..P {
                mods[i].sqr_into(a[i], &mut out[i]);
            }
            return;
        }
        let mut st = a.map(SqrState::new);
        macro_rules! columns {
            ($($k:literal)*) => {
                $( if $k + 1 < 2 * N { Self::sqr_column_multi::<$k, P>(mods, &mut st, out); } )*
            };
        }
        for_each_column!(columns);
        for (o, s) in out.iter_mut().zip(&st) {
            o[N - 1] = s.carry as u64;
        }
    }

    /// Montgomery square (see [`Self::sqr_into`]).
    pub(crate) fn sqr(&self, a: &[u64; N]) -> [u64; N] {
        let mut out = [0u64; N];
        self.sqr_into(a, &mut out);
        out
    }

    /// Column `K` of the Montgomery product (see [`Self::sqr_column`]).
    #[inline(never)]
    fn mul_column<const K: usize>(&self, st: &mut MulState<N>, out: &mut [u64; N]) {
        let (a, b, m, n) = (&st.a, &st.b, &mut st.m, &self.n);
        let lo = K.saturating_sub(N - 1);
        let mut acc = 0u128;
        for i in lo..=K.min(N - 1) {
            acc += prod(a[i], b[K - i]);
        }
        for i in lo..K.min(N) {
            acc += prod(m[i], n[K - i]);
        }
        acc += st.carry;
        if K < N {
            let mk = (acc as u64).wrapping_mul(self.n0inv) & Self::MASK;
            m[K] = mk;
            acc += prod(mk, n[0]);
        } else {
            out[K - N] = acc as u64 & Self::MASK;
        }
        st.carry = acc >> B;
    }

    /// Montgomery product `a·b·R^-1 mod n` by product scanning, lazily reduced: inputs
    /// `< 4n` give a result `< 2n`.
    pub(crate) fn mul(&self, a: &[u64; N], b: &[u64; N]) -> [u64; N] {
        let mut out = [0u64; N];
        if N > MAX_UNROLLED_LIMBS {
            self.mul_loop(a, b, &mut out);
            return out;
        }
        let mut st = MulState {
            a: *a,
            b: *b,
            m: [0u64; N],
            carry: 0,
        };
        macro_rules! columns {
            ($($k:literal)*) => {
                $( if $k + 1 < 2 * N { self.mul_column::<$k>(&mut st, &mut out); } )*
            };
        }
        for_each_column!(columns);
        out[N - 1] = st.carry as u64;
        out
    }

    /// [`Self::mul`] with loops, for sizes that are not unrolled.
    fn mul_loop(&self, a: &[u64; N], b: &[u64; N], out: &mut [u64; N]) {
        let n = &self.n;
        let mut m = [0u64; N];
        let mut carry = 0u128;
        for k in 0..2 * N - 1 {
            let lo = k.saturating_sub(N - 1);
            let mut acc = carry;
            for i in lo..=k.min(N - 1) {
                acc += prod(a[i], b[k - i]);
            }
            for i in lo..k.min(N) {
                acc += prod(m[i], n[k - i]);
            }
            if k < N {
                let mk = (acc as u64).wrapping_mul(self.n0inv) & Self::MASK;
                m[k] = mk;
                acc += prod(mk, n[0]);
            } else {
                out[k - N] = acc as u64 & Self::MASK;
            }
            carry = acc >> B;
        }
        out[N - 1] = carry as u64;
    }

    /// `2^e` in Montgomery form, fully reduced, for the little-endian exponent `e`:
    /// square-and-double, where doubling is a shift.
    pub(crate) fn pow2(&self, e: &[u64]) -> [u64; N] {
        let mut x = self.one;
        if let Some(top_limb) = (0..e.len()).rev().find(|&i| e[i] != 0) {
            let top_bit = 64 * top_limb + 63 - e[top_limb].leading_zeros() as usize;
            self.dbl_lazy(&mut x);
            // Ping-pong between two buffers: no copies of the number per step.
            let mut y = [0u64; N];
            let (mut cur, mut next) = (&mut x, &mut y);
            for bit in (0..top_bit).rev() {
                self.sqr_into(cur, next);
                std::mem::swap(&mut cur, &mut next);
                if (e[bit / 64] >> (bit % 64)) & 1 == 1 {
                    self.dbl_lazy(cur);
                }
            }
            x = *cur;
        }
        self.reduce_below_n(&mut x);
        x
    }

    /// [`Self::pow2`] for two moduli at once (squarings interleaved), when the exponents
    /// have the same bit length; otherwise one after the other.
    pub(crate) fn pow2_pair(mods: [&Self; 2], e: [&[u64]; 2]) -> [[u64; N]; 2] {
        let top_bit = |e: &[u64]| {
            (0..e.len())
                .rev()
                .find(|&i| e[i] != 0)
                .map(|i| 64 * i + 63 - e[i].leading_zeros() as usize)
        };
        let top = match (top_bit(e[0]), top_bit(e[1])) {
            (Some(a), Some(b)) if a == b => a,
            _ => return [mods[0].pow2(e[0]), mods[1].pow2(e[1])],
        };
        let mut x = [mods[0].one, mods[1].one];
        mods[0].dbl_lazy(&mut x[0]);
        mods[1].dbl_lazy(&mut x[1]);
        let mut y = [[0u64; N]; 2];
        let (mut cur, mut next) = (&mut x, &mut y);
        for bit in (0..top).rev() {
            Self::sqr_multi_into(mods, [&cur[0], &cur[1]], next);
            std::mem::swap(&mut cur, &mut next);
            for i in 0..2 {
                if (e[i][bit / 64] >> (bit % 64)) & 1 == 1 {
                    mods[i].dbl_lazy(&mut cur[i]);
                }
            }
        }
        let mut out = *cur;
        mods[0].reduce_below_n(&mut out[0]);
        mods[1].reduce_below_n(&mut out[1]);
        out
    }

    /// `R² mod n`, the factor that moves a value into Montgomery form.
    pub(crate) fn r_squared(&self) -> [u64; N] {
        // The Montgomery form of 2^(B·N) = R is R·R.
        self.pow2(&[u64::from(B) * N as u64])
    }

    /// `b^e` for `b` in Montgomery form (`b < 4n`), fully reduced; sliding windows of up
    /// to 5 bits over the odd powers `b, b³, …, b³¹`.
    pub(crate) fn pow(&self, b: &[u64; N], e: &[u64]) -> [u64; N] {
        const WINDOW: usize = 5;
        let bit = |i: usize| (e[i / 64] >> (i % 64)) & 1 == 1;
        let mut odd = [*b; 1 << (WINDOW - 1)];
        let b2 = self.sqr(b);
        for i in 1..odd.len() {
            odd[i] = self.mul(&odd[i - 1], &b2);
        }
        let mut x = self.one;
        let mut i = 64 * e.len();
        let mut started = false;
        while i > 0 {
            if !bit(i - 1) {
                if started {
                    x = self.sqr(&x);
                }
                i -= 1;
                continue;
            }
            // The longest window of at most WINDOW bits ending at i-1 whose lowest bit is 1.
            let mut len = WINDOW.min(i);
            while !bit(i - len) {
                len -= 1;
            }
            let mut value = 0usize;
            for j in (i - len..i).rev() {
                value = (value << 1) | usize::from(bit(j));
            }
            if started {
                for _ in 0..len {
                    x = self.sqr(&x);
                }
                x = self.mul(&x, &odd[value >> 1]);
            } else {
                x = odd[value >> 1];
                started = true;
            }
            i -= len;
        }
        self.reduce_below_n(&mut x);
        x
    }
}

/// Inputs and running values of one product, passed to each column by one pointer.
struct MulState<const N: usize> {
    a: [u64; N],
    b: [u64; N],
    m: [u64; N],
    carry: u128,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
    use crypto_bigint::{BoxedUint, Odd};

    /// Deterministic pseudo-random limbs (SplitMix64).
    fn limbs(state: &mut u64, n: usize) -> Vec<u64> {
        (0..n)
            .map(|_| {
                *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = *state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            })
            .collect()
    }

    fn big(l: &[u64], bits: u32) -> BoxedUint {
        let mut be = Vec::new();
        for x in l.iter().rev() {
            be.extend_from_slice(&x.to_be_bytes());
        }
        BoxedUint::from_be_slice(&be, bits).expect("fits")
    }

    /// Radix-2^B limbs back to a `BoxedUint` of `bits` precision (the value must fit).
    fn from_radix<const N: usize, const B: u32>(x: &[u64; N], bits: u32) -> BoxedUint {
        let mut words = vec![0u64; bits.div_ceil(64) as usize + 2];
        for (i, &limb) in x.iter().enumerate() {
            let pos = i * B as usize;
            words[pos / 64] |= limb << (pos % 64);
            if pos % 64 + B as usize > 64 {
                words[pos / 64 + 1] |= limb >> (64 - pos % 64);
            }
        }
        let used = bits.div_ceil(64) as usize;
        assert!(words[used..].iter().all(|&w| w == 0), "value fits");
        big(&words[..used], bits)
    }

    /// `x + y` in radix 2^B (no reduction).
    fn add_radix<const N: usize, const B: u32>(x: &[u64; N], y: &[u64; N]) -> [u64; N] {
        let mut out = [0u64; N];
        let mut carry = 0u64;
        for i in 0..N {
            let v = x[i] + y[i] + carry;
            out[i] = v & ((1u64 << B) - 1);
            carry = v >> B;
        }
        assert_eq!(carry, 0);
        out
    }

    fn check<const N: usize, const B: u32>(n_words: usize, seed: u64) {
        let bits = (n_words * 64) as u32;
        let mut st = seed;
        for round in 0..4 {
            let mut nl = limbs(&mut st, n_words);
            nl[0] |= 1;
            if round % 2 == 0 {
                nl[n_words - 1] |= 3 << 62; // top bits set, like real candidates
            }
            let m = Mont::<N, B>::new(&nl).expect("modulus fits");
            let nb = Odd::new(big(&nl, bits)).expect("odd");
            let params = BoxedMontyParams::new_vartime(nb.clone());
            let reduce = |l: &[u64]| big(l, bits).rem_vartime(nb.as_nz_ref());
            let radix = |b: &BoxedUint| Mont::<N, B>::limbs_from_u64(b.as_words()).expect("fits");
            let norm = |mut x: [u64; N]| {
                m.reduce_below_n(&mut x);
                from_radix::<N, B>(&x, bits)
            };
            // Leaving Montgomery form (multiplying by a plain 1) gives comparable values;
            // crypto-bigint's own Montgomery radix differs from ours.
            let mut unit = [0u64; N];
            unit[0] = 1;
            let out = |x: &[u64; N]| norm(m.mul(x, &unit));
            let a = reduce(&limbs(&mut st, n_words));
            let b = reduce(&limbs(&mut st, n_words));
            // Long exponents only where the arithmetic is fast enough in debug builds.
            let e = limbs(&mut st, if N > MAX_UNROLLED_LIMBS { 3 } else { n_words });
            let eb = big(&e, bits);
            let ma = BoxedMontyForm::new(a.clone(), &params);
            let mb = BoxedMontyForm::new(b.clone(), &params);
            let two =
                BoxedMontyForm::new(BoxedUint::from_be_slice(&[2], bits).expect("2"), &params);
            assert_eq!(
                out(&m.one()),
                BoxedUint::from_be_slice(&[1], bits).expect("1")
            );
            assert_eq!(
                out(&m.minus_one()),
                (-BoxedMontyForm::one(&params)).retrieve()
            );
            // R² mod n is the Montgomery form of R = 2^(B·N).
            let r_bits = BoxedUint::from(u64::from(B) * N as u64);
            assert_eq!(out(&m.r_squared()), two.pow(&r_bits).retrieve());
            let a_m = m.mul(&radix(&a), &m.r_squared());
            let b_m = m.mul(&radix(&b), &m.r_squared());
            assert_eq!(out(&a_m), a);
            assert_eq!(out(&m.mul(&a_m, &b_m)), (&ma * &mb).retrieve());
            assert_eq!(out(&m.sqr(&a_m)), ma.square().retrieve());
            // Lazy inputs: a + 3n < 4n must give the same residues.
            let mut lazy = a_m;
            m.reduce_below_n(&mut lazy);
            for _ in 0..3 {
                lazy = add_radix::<N, B>(&lazy, &m.n);
            }
            assert_eq!(out(&m.sqr(&lazy)), ma.square().retrieve());
            assert_eq!(out(&m.mul(&lazy, &lazy)), ma.square().retrieve());
            assert_eq!(out(&m.pow(&a_m, &e)), ma.pow(&eb).retrieve());
            assert_eq!(out(&m.pow2(&e)), two.pow(&eb).retrieve());
            let mut e2 = limbs(&mut st, e.len());
            e2[e.len() - 1] = e[e.len() - 1]; // same bit length: the interleaved path
            let [p1, p2] = Mont::pow2_pair([&m, &m], [&e, &e2]);
            assert_eq!(out(&p1), two.pow(&eb).retrieve());
            assert_eq!(out(&p2), two.pow(&big(&e2, bits)).retrieve());
            let [p1, p2] = Mont::pow2_pair([&m, &m], [&e, &e[..1]]);
            assert_eq!(out(&p1), two.pow(&eb).retrieve());
            assert_eq!(out(&p2), two.pow(&big(&e[..1], 64)).retrieve());
            let mut pair = [[0u64; N]; 2];
            Mont::sqr_multi_into([&m, &m], [&a_m, &lazy], &mut pair);
            assert_eq!(out(&pair[0]), ma.square().retrieve());
            assert_eq!(out(&pair[1]), ma.square().retrieve());
        }
    }

    #[test]
    fn matches_crypto_bigint() {
        check::<17, 61>(16, 1); // RSA-2048 primes
        check::<17, 61>(15, 2); // much smaller than R
        check::<26, 61>(24, 3); // RSA-3072
        check::<35, 60>(32, 4); // RSA-4096
        check::<69, 60>(64, 5); // RSA-8192 (loop squaring)
        check::<3, 61>(2, 6);
    }

    #[test]
    fn rejects_unusable_moduli() {
        assert!(Mont::<17, 61>::new(&[2; 16]).is_none()); // even
        assert!(Mont::<17, 61>::new(&[1]).is_none()); // one
        assert!(Mont::<17, 61>::new(&[u64::MAX; 17]).is_none()); // too long
        let mut nl = vec![u64::MAX; 16];
        nl.push(0x7); // 1027 bits: 10 bits of headroom in 17·61 = 1037
        assert!(Mont::<17, 61>::new(&nl).is_some());
        nl[16] = 0x7ff; // 1035 bits: only 2 bits of headroom
        assert!(Mont::<17, 61>::new(&nl).is_none());
    }

    /// Timing aid: `cargo test --release --lib mont::tests::speed -- --ignored --nocapture`.
    /// Reports the fastest of many short runs, to see through a busy machine.
    #[test]
    #[ignore = "timing only"]
    fn speed() {
        fn best(mut f: impl FnMut()) -> std::time::Duration {
            let reps = 200;
            (0..50)
                .map(|_| {
                    let start = std::time::Instant::now();
                    for _ in 0..reps {
                        f();
                    }
                    start.elapsed() / reps
                })
                .min()
                .expect("runs")
        }
        fn time<const N: usize, const B: u32>(words: usize) {
            let mut st = 99;
            let mut nl = limbs(&mut st, words);
            nl[0] |= 1;
            nl[words - 1] |= 3 << 62;
            let m = Mont::<N, B>::new(&nl).expect("modulus");
            let mut x = m.minus_one();
            x[0] ^= 12345;
            let y = x;
            let sqr = best(|| x = m.sqr(&x));
            let mul = best(|| x = m.mul(&x, &y));
            let mut nl2 = limbs(&mut st, words);
            nl2[0] |= 1;
            nl2[words - 1] |= 3 << 62;
            let m2 = Mont::<N, B>::new(&nl2).expect("modulus");
            let mut pair = [m.minus_one(), m2.minus_one()];
            let pair_time = best(|| {
                let inp = pair;
                Mont::sqr_multi_into([&m, &m2], [&inp[0], &inp[1]], &mut pair);
            });
            let mut quad = [m.minus_one(), m2.minus_one(), m.one(), m2.one()];
            let quad_time = best(|| {
                let inp = quad;
                Mont::sqr_multi_into(
                    [&m, &m2, &m, &m2],
                    [&inp[0], &inp[1], &inp[2], &inp[3]],
                    &mut quad,
                );
            });
            eprintln!("quad {quad_time:?} ({})", quad[0][0]);
            eprintln!(
                "{} bits: sqr {sqr:?} mul {mul:?} pair of sqr {pair_time:?} ({})",
                words * 64,
                x[0] ^ pair[0][0]
            );
        }
        time::<17, 61>(16);
        time::<26, 61>(24);
        time::<35, 60>(32);
        time::<69, 60>(64);
    }
}

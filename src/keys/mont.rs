//! Fixed-width Montgomery arithmetic for Miller–Rabin on RSA prime candidates.
//!
//! Prime *candidates* are public-ish intermediate values that are mostly thrown away, and
//! the test is the hot path of RSA key generation, so this code is variable-time and
//! written for speed: `N` 64-bit limbs fixed at compile time, CIOS multiplication, a
//! dedicated squaring with separate (SOS) reduction, and a base-2 exponentiation that
//! needs no multiplications at all (multiplying by 2 is a shift and a conditional
//! subtraction). Everything is cross-checked against `crypto-bigint` in the tests.
//!
//! `W` is always `2 * N` (stable Rust cannot spell `[u64; 2 * N]` for a generic `N`).

/// `t + a·b + c` as (low, high) words; cannot overflow 128 bits.
#[inline(always)]
fn mac(t: u64, a: u64, b: u64, c: u64) -> (u64, u64) {
    let r = u128::from(t) + u128::from(a) * u128::from(b) + u128::from(c);
    (r as u64, (r >> 64) as u64)
}

macro_rules! sqr_columns {
    ($name:ident, $n:literal, $w:literal, [$($k:literal)*]) => {
        impl Modulus<$n, $w> {
            /// Product-scanning Montgomery square with every column unrolled.
            #[inline(never)]
            pub(crate) fn $name(&self, a: &[u64; $n]) -> [u64; $n] {
                let mut m = [0u64; $n];
                let mut t = [0u64; $n];
                let mut acc = Acc::default();
                $( self.sqr_column::<$k>(a, &mut m, &mut t, &mut acc); )*
                t[$n - 1] = acc.low();
                acc.shift();
                self.reduce_once(t, acc.low())
            }
        }
    };
}

macro_rules! sqr_phased {
    ($name:ident, $n:literal, $w:literal, [$($k:literal)*]) => {
        impl Modulus<$n, $w> {
            /// Montgomery square: unrolled product-scanning square, then unrolled
            /// product-scanning reduction.
            #[inline(never)]
            pub(crate) fn $name(&self, a: &[u64; $n]) -> [u64; $n] {
                let mut w = [0u64; $w];
                let mut acc = Acc::default();
                $( Self::square_column::<$k>(a, &mut w, &mut acc); )*
                w[$w - 1] = acc.low();
                let mut m = [0u64; $n];
                let mut t = [0u64; $n];
                let mut acc = Acc::default();
                $( self.redc_column::<$k>(&w, &mut m, &mut t, &mut acc); )*
                acc.add_word(w[$w - 1]);
                t[$n - 1] = acc.low();
                acc.shift();
                self.reduce_once(t, acc.low())
            }
        }
    };
}

sqr_phased!(sqr_phased, 16, 32, [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30]);

sqr_columns!(sqr_unrolled, 16, 32, [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30]);

/// A three-word (192-bit) column accumulator for product scanning.
#[derive(Default, Clone, Copy)]
struct Acc {
    lo: u128,
    hi: u64,
}

impl Acc {
    /// `self += a·b`.
    #[inline(always)]
    fn add(&mut self, a: u64, b: u64) {
        let (s, o) = self.lo.overflowing_add(u128::from(a) * u128::from(b));
        self.lo = s;
        self.hi = self.hi.wrapping_add(u64::from(o));
    }

    #[inline(always)]
    fn add_word(&mut self, x: u64) {
        let (s, o) = self.lo.overflowing_add(u128::from(x));
        self.lo = s;
        self.hi = self.hi.wrapping_add(u64::from(o));
    }

    #[inline(always)]
    fn add_acc(&mut self, x: &Acc) {
        let (s, o) = self.lo.overflowing_add(x.lo);
        self.lo = s;
        self.hi = self.hi.wrapping_add(x.hi).wrapping_add(u64::from(o));
    }

    #[inline(always)]
    fn double(&mut self) {
        self.hi = (self.hi << 1) | (self.lo >> 127) as u64;
        self.lo <<= 1;
    }

    #[inline(always)]
    fn low(&self) -> u64 {
        self.lo as u64
    }

    /// Drop the low word: `self >>= 64`.
    #[inline(always)]
    fn shift(&mut self) {
        self.lo = (self.lo >> 64) | (u128::from(self.hi) << 64);
        self.hi = 0;
    }
}

/// `a ≥ b` for equal-length little-endian limbs.
#[inline(always)]
fn geq<const N: usize>(a: &[u64; N], b: &[u64; N]) -> bool {
    for i in (0..N).rev() {
        if a[i] != b[i] {
            return a[i] > b[i];
        }
    }
    true
}

/// `a -= b`, returning the borrow.
#[inline(always)]
fn sub_assign<const N: usize>(a: &mut [u64; N], b: &[u64; N]) -> bool {
    let mut borrow = false;
    for i in 0..N {
        let (d, b1) = a[i].overflowing_sub(b[i]);
        let (d, b2) = d.overflowing_sub(u64::from(borrow));
        a[i] = d;
        borrow = b1 | b2;
    }
    borrow
}

/// An odd modulus `n < 2^(64N)` with its Montgomery constants (`R = 2^(64N)`).
pub(crate) struct Modulus<const N: usize, const W: usize> {
    n: [u64; N],
    /// `-n^-1 mod 2^64`.
    n0inv: u64,
    /// `R mod n`: 1 in Montgomery form.
    one: [u64; N],
}

impl<const N: usize, const W: usize> Modulus<N, W> {
    /// `None` unless `n` is odd, greater than 1, and fits in `N` limbs.
    pub(crate) fn new(limbs: &[u64]) -> Option<Self> {
        debug_assert_eq!(W, 2 * N);
        if limbs.len() > N || limbs.first().is_none_or(|&l| l & 1 == 0) {
            return None;
        }
        let mut n = [0u64; N];
        n[..limbs.len()].copy_from_slice(limbs);
        if n[1..].iter().all(|&l| l == 0) && n[0] == 1 {
            return None;
        }
        // Newton iteration for n^-1 mod 2^64: each step doubles the correct low bits.
        let mut inv = 1u64;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(n[0].wrapping_mul(inv)));
        }
        // R mod n: start below n at 2^(bitlen(n)-1), then double up to 2^(64N).
        let top = (0..N).rev().find(|&i| n[i] != 0).unwrap_or(0);
        let bitlen = 64 * top + (64 - n[top].leading_zeros() as usize);
        let mut one = [0u64; N];
        one[(bitlen - 1) / 64] = 1u64 << ((bitlen - 1) % 64);
        let mut m = Modulus {
            n,
            n0inv: inv.wrapping_neg(),
            one,
        };
        let mut x = m.one;
        for _ in (bitlen - 1)..(64 * N) {
            m.dbl(&mut x);
        }
        m.one = x;
        Some(m)
    }

    /// `R mod n`.
    pub(crate) fn one(&self) -> [u64; N] {
        self.one
    }

    /// `n - (R mod n)`: -1 in Montgomery form.
    pub(crate) fn minus_one(&self) -> [u64; N] {
        let mut x = self.n;
        sub_assign(&mut x, &self.one);
        x
    }

    /// `a = 2a mod n` for `a < n`.
    #[inline(always)]
    pub(crate) fn dbl(&self, a: &mut [u64; N]) {
        let mut carry = 0u64;
        for limb in a.iter_mut() {
            let next = *limb >> 63;
            *limb = (*limb << 1) | carry;
            carry = next;
        }
        if carry != 0 || geq(a, &self.n) {
            sub_assign(a, &self.n);
        }
    }

    /// Final step of both products: the `N`-limb value `t + hi·R` (known `< 2n`) mod `n`.
    #[inline(always)]
    fn reduce_once(&self, mut t: [u64; N], hi: u64) -> [u64; N] {
        if hi != 0 || geq(&t, &self.n) {
            sub_assign(&mut t, &self.n);
        }
        t
    }

    /// Montgomery product `a·b·R^-1 mod n` (CIOS), for `a, b < n`.
    #[inline(never)]
    pub(crate) fn mul(&self, a: &[u64; N], b: &[u64; N]) -> [u64; N] {
        let n = &self.n;
        let mut t = [0u64; N];
        let mut t_hi = 0u64;
        for &bi in b.iter() {
            let mut c = 0u64;
            for j in 0..N {
                let (lo, hi) = mac(t[j], a[j], bi, c);
                t[j] = lo;
                c = hi;
            }
            let (s, o1) = t_hi.overflowing_add(c);
            let m = t[0].wrapping_mul(self.n0inv);
            let (_, mut c) = mac(t[0], m, n[0], 0);
            for j in 1..N {
                let (lo, hi) = mac(t[j], m, n[j], c);
                t[j - 1] = lo;
                c = hi;
            }
            let (s2, o2) = s.overflowing_add(c);
            t[N - 1] = s2;
            t_hi = u64::from(o1) + u64::from(o2);
        }
        self.reduce_once(t, t_hi)
    }

    /// Montgomery square `a²·R^-1 mod n`, for `a < n`.
    #[inline(never)]
    pub(crate) fn sqr(&self, a: &[u64; N]) -> [u64; N] {
        let mut w = [0u64; W];
        // Off-diagonal products a[i]·a[j], i < j.
        for i in 0..N - 1 {
            let ai = a[i];
            let mut c = 0u64;
            for j in i + 1..N {
                let (lo, hi) = mac(w[i + j], ai, a[j], c);
                w[i + j] = lo;
                c = hi;
            }
            w[i + N] = c;
        }
        // Double them and add the squares a[i]².
        let mut carry = 0u64;
        let mut shifted_in = 0u64;
        for i in 0..N {
            let lo_word = w[2 * i];
            let hi_word = w[2 * i + 1];
            let d_lo = (lo_word << 1) | shifted_in;
            let d_hi = (hi_word << 1) | (lo_word >> 63);
            shifted_in = hi_word >> 63;
            let sq = u128::from(a[i]) * u128::from(a[i]);
            let s = u128::from(d_lo) + (sq & u128::from(u64::MAX)) + u128::from(carry);
            w[2 * i] = s as u64;
            let s2 = u128::from(d_hi) + (sq >> 64) + (s >> 64);
            w[2 * i + 1] = s2 as u64;
            carry = (s2 >> 64) as u64;
        }
        // Montgomery reduction of the 2N-limb square.
        let n = &self.n;
        let mut extra = 0u64;
        for i in 0..N {
            let m = w[i].wrapping_mul(self.n0inv);
            let mut c = 0u64;
            for j in 0..N {
                let (lo, hi) = mac(w[i + j], m, n[j], c);
                w[i + j] = lo;
                c = hi;
            }
            let (s, o1) = w[i + N].overflowing_add(c);
            let (s, o2) = s.overflowing_add(extra);
            w[i + N] = s;
            extra = u64::from(o1) + u64::from(o2);
        }
        let mut t = [0u64; N];
        t.copy_from_slice(&w[N..]);
        self.reduce_once(t, extra)
    }

    /// Montgomery product by product scanning (FIPS): one column at a time into a
    /// three-word accumulator, so the carry chains stay short.
    #[inline(never)]
    pub(crate) fn mul_ps(&self, a: &[u64; N], b: &[u64; N]) -> [u64; N] {
        let n = &self.n;
        let mut m = [0u64; N];
        let mut t = [0u64; N];
        let mut acc = Acc::default();
        for k in 0..2 * N - 1 {
            let lo = k.saturating_sub(N - 1);
            for i in lo..=k.min(N - 1) {
                acc.add(a[i], b[k - i]);
            }
            for i in lo..k.min(N) {
                acc.add(m[i], n[k - i]);
            }
            if k < N {
                let mk = acc.low().wrapping_mul(self.n0inv);
                m[k] = mk;
                acc.add(mk, n[0]);
            } else {
                t[k - N] = acc.low();
            }
            acc.shift();
        }
        t[N - 1] = acc.low();
        acc.shift();
        self.reduce_once(t, acc.low())
    }

    /// Montgomery square by product scanning: each column's cross products are summed
    /// once, doubled, and the diagonal square added.
    #[inline(never)]
    pub(crate) fn sqr_ps(&self, a: &[u64; N]) -> [u64; N] {
        let n = &self.n;
        let mut m = [0u64; N];
        let mut t = [0u64; N];
        let mut acc = Acc::default();
        for k in 0..2 * N - 1 {
            let lo = k.saturating_sub(N - 1);
            let mut cross = Acc::default();
            let mut i = lo;
            while 2 * i < k {
                cross.add(a[i], a[k - i]);
                i += 1;
            }
            cross.double();
            if k % 2 == 0 {
                cross.add(a[k / 2], a[k / 2]);
            }
            acc.add_acc(&cross);
            for i in lo..k.min(N) {
                acc.add(m[i], n[k - i]);
            }
            if k < N {
                let mk = acc.low().wrapping_mul(self.n0inv);
                m[k] = mk;
                acc.add(mk, n[0]);
            } else {
                t[k - N] = acc.low();
            }
            acc.shift();
        }
        t[N - 1] = acc.low();
        acc.shift();
        self.reduce_once(t, acc.low())
    }

    /// Montgomery reduction of the `2N`-limb `w < n·R`: `w·R^-1 mod n`. Two rows of the
    /// reduction run interleaved with separate carries, which halves the length of the
    /// carry chain that otherwise bounds the speed.
    #[inline(always)]
    fn redc2(&self, w: &mut [u64; W]) -> [u64; N] {
        let n = &self.n;
        let mut extra = 0u64; // pending carry at position i + N
        let mut i = 0;
        while i + 1 < N {
            let m0 = w[i].wrapping_mul(self.n0inv);
            let (_, mut ca) = mac(w[i], m0, n[0], 0);
            let (x, c) = mac(w[i + 1], m0, n[1], ca);
            ca = c;
            let m1 = x.wrapping_mul(self.n0inv);
            let (_, mut cb) = mac(x, m1, n[0], 0);
            for j in 2..N {
                let (lo, c) = mac(w[i + j], m0, n[j], ca);
                ca = c;
                let (lo, c) = mac(lo, m1, n[j - 1], cb);
                cb = c;
                w[i + j] = lo;
            }
            let (s, o1) = w[i + N].overflowing_add(extra);
            let (s, o2) = s.overflowing_add(ca);
            let (lo, c) = mac(s, m1, n[N - 1], cb);
            w[i + N] = lo;
            let top = u128::from(w[i + N + 1]) + u128::from(c) + u128::from(o1) + u128::from(o2);
            w[i + N + 1] = top as u64;
            extra = (top >> 64) as u64;
            i += 2;
        }
        if i < N {
            // Odd N: one last single row.
            let m0 = w[i].wrapping_mul(self.n0inv);
            let mut c = 0u64;
            for j in 0..N {
                let (lo, hi) = mac(w[i + j], m0, n[j], c);
                w[i + j] = lo;
                c = hi;
            }
            let top = u128::from(w[i + N]) + u128::from(c) + u128::from(extra);
            w[i + N] = top as u64;
            extra = (top >> 64) as u64;
        }
        let mut t = [0u64; N];
        t.copy_from_slice(&w[N..]);
        self.reduce_once(t, extra)
    }

    /// Montgomery square with two-row interleaving in both the product and the reduction.
    #[inline(never)]
    pub(crate) fn sqr2(&self, a: &[u64; N]) -> [u64; N] {
        let mut w = [0u64; W];
        // Off-diagonal products a[i]·a[j], i < j, rows i and i+1 together. Rows 0..=N-2
        // have products; row r writes positions 2r+1..r+N-1 and its carry to r+N.
        let mut i = 0;
        while i + 1 <= N - 2 {
            let (ai, ai1) = (a[i], a[i + 1]);
            let (lo, mut ca) = mac(w[2 * i + 1], ai, a[i + 1], 0);
            w[2 * i + 1] = lo;
            let (lo, c) = mac(w[2 * i + 2], ai, a[i + 2], ca);
            ca = c;
            w[2 * i + 2] = lo;
            let mut cb = 0u64;
            for p in 2 * i + 3..i + N {
                let (lo, c) = mac(w[p], ai, a[p - i], ca);
                ca = c;
                let (lo, c) = mac(lo, ai1, a[p - i - 1], cb);
                cb = c;
                w[p] = lo;
            }
            // w[i+N] and w[i+N+1] are still zero here.
            let (lo, c) = mac(ca, ai1, a[N - 1], cb);
            w[i + N] = lo;
            w[i + N + 1] = c;
            i += 2;
        }
        if i == N - 2 {
            let (lo, c) = mac(w[2 * i + 1], a[i], a[i + 1], 0);
            w[2 * i + 1] = lo;
            w[2 * i + 2] = c;
        }
        // Double and add the squares a[i]².
        let mut carry = 0u64;
        let mut shifted_in = 0u64;
        for i in 0..N {
            let lo_word = w[2 * i];
            let hi_word = w[2 * i + 1];
            let d_lo = (lo_word << 1) | shifted_in;
            let d_hi = (hi_word << 1) | (lo_word >> 63);
            shifted_in = hi_word >> 63;
            let sq = u128::from(a[i]) * u128::from(a[i]);
            let s = u128::from(d_lo) + (sq & u128::from(u64::MAX)) + u128::from(carry);
            w[2 * i] = s as u64;
            let s2 = u128::from(d_hi) + (sq >> 64) + (s >> 64);
            w[2 * i + 1] = s2 as u64;
            carry = (s2 >> 64) as u64;
        }
        self.redc2(&mut w)
    }

    /// Montgomery product: schoolbook rows two at a time, then [`Self::redc2`].
    #[inline(never)]
    pub(crate) fn mul2(&self, a: &[u64; N], b: &[u64; N]) -> [u64; N] {
        let mut w = [0u64; W];
        let mut i = 0;
        while i + 1 < N {
            let (bi, bi1) = (b[i], b[i + 1]);
            // Row i at positions i..i+N-1 (carry to i+N); row i+1 at i+1..i+N (carry i+N+1).
            let (lo, mut ca) = mac(w[i], a[0], bi, 0);
            w[i] = lo;
            let mut cb = 0u64;
            for j in 1..N {
                let (lo, c) = mac(w[i + j], a[j], bi, ca);
                ca = c;
                let (lo, c) = mac(lo, a[j - 1], bi1, cb);
                cb = c;
                w[i + j] = lo;
            }
            let (lo, c) = mac(ca, a[N - 1], bi1, cb);
            w[i + N] = lo;
            w[i + N + 1] = c;
            i += 2;
        }
        if i < N {
            let bi = b[i];
            let mut c = 0u64;
            for j in 0..N {
                let (lo, hi) = mac(w[i + j], a[j], bi, c);
                w[i + j] = lo;
                c = hi;
            }
            w[i + N] = c;
        }
        self.redc2(&mut w)
    }

    /// One column `K` of the product-scanning Montgomery square (see [`Self::sqr_unrolled`]).
    #[inline(always)]
    fn sqr_column<const K: usize>(
        &self,
        a: &[u64; N],
        m: &mut [u64; N],
        t: &mut [u64; N],
        acc: &mut Acc,
    ) {
        let n = &self.n;
        let lo = K.saturating_sub(N - 1);
        let mut cross = Acc::default();
        let mut i = lo;
        while 2 * i < K {
            cross.add(a[i], a[K - i]);
            i += 1;
        }
        cross.double();
        if K % 2 == 0 {
            cross.add(a[K / 2], a[K / 2]);
        }
        acc.add_acc(&cross);
        for i in lo..K.min(N) {
            acc.add(m[i], n[K - i]);
        }
        if K < N {
            let mk = acc.low().wrapping_mul(self.n0inv);
            m[K] = mk;
            acc.add(mk, n[0]);
        } else {
            t[K - N] = acc.low();
        }
        acc.shift();
    }

    /// Column `K` of the plain square `a²` by product scanning: cross products summed,
    /// doubled, plus the diagonal.
    #[inline(always)]
    fn square_column<const K: usize>(a: &[u64; N], w: &mut [u64; W], acc: &mut Acc) {
        let lo = K.saturating_sub(N - 1);
        let mut cross = Acc::default();
        let mut i = lo;
        while 2 * i < K {
            cross.add(a[i], a[K - i]);
            i += 1;
        }
        cross.double();
        if K % 2 == 0 {
            cross.add(a[K / 2], a[K / 2]);
        }
        acc.add_acc(&cross);
        w[K] = acc.low();
        acc.shift();
    }

    /// Column `K` of Montgomery reduction by product scanning.
    #[inline(always)]
    fn redc_column<const K: usize>(
        &self,
        w: &[u64; W],
        m: &mut [u64; N],
        t: &mut [u64; N],
        acc: &mut Acc,
    ) {
        let n = &self.n;
        let lo = K.saturating_sub(N - 1);
        acc.add_word(w[K]);
        for i in lo..K.min(N) {
            acc.add(m[i], n[K - i]);
        }
        if K < N {
            let mk = acc.low().wrapping_mul(self.n0inv);
            m[K] = mk;
            acc.add(mk, n[0]);
        } else {
            t[K - N] = acc.low();
        }
        acc.shift();
    }

    /// `2^e` in Montgomery form, for the little-endian exponent `e`. Square-and-double.
    pub(crate) fn pow2(&self, e: &[u64]) -> [u64; N] {
        let mut x = self.one;
        let Some(top_limb) = (0..e.len()).rev().find(|&i| e[i] != 0) else {
            return x;
        };
        let top_bit = 64 * top_limb + 63 - e[top_limb].leading_zeros() as usize;
        self.dbl(&mut x);
        for bit in (0..top_bit).rev() {
            x = self.sqr(&x);
            if (e[bit / 64] >> (bit % 64)) & 1 == 1 {
                self.dbl(&mut x);
            }
        }
        x
    }

    /// `R² mod n`, the factor that moves a value into Montgomery form.
    pub(crate) fn r_squared(&self) -> [u64; N] {
        // Montgomery form of 2^(64N) is 2^(64N)·R = R².
        self.pow2(&[64 * N as u64])
    }

    /// `b^e` for `b` in Montgomery form, fixed 4-bit windows.
    pub(crate) fn pow(&self, b: &[u64; N], e: &[u64]) -> [u64; N] {
        let mut table = [self.one; 16];
        for i in 1..16 {
            table[i] = self.mul(&table[i - 1], b);
        }
        let mut x = self.one;
        let mut started = false;
        for limb in e.iter().rev() {
            for shift in (0..16).rev() {
                let window = ((limb >> (4 * shift)) & 0xf) as usize;
                if started {
                    for _ in 0..4 {
                        x = self.sqr(&x);
                    }
                    if window != 0 {
                        x = self.mul(&x, &table[window]);
                    }
                } else if window != 0 {
                    x = table[window];
                    started = true;
                }
            }
        }
        x
    }
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

    fn check<const N: usize, const W: usize>(used: usize, seed: u64) {
        let bits = (64 * N) as u32;
        let mut st = seed;
        for _ in 0..4 {
            let mut nl = limbs(&mut st, used);
            nl[0] |= 1;
            let m = Modulus::<N, W>::new(&nl).expect("odd modulus");
            let nb = Odd::new(big(&nl, bits)).expect("odd");
            let params = BoxedMontyParams::new_vartime(nb.clone());
            let reduce = |l: &[u64]| big(l, bits).rem_vartime(nb.as_nz_ref());
            let to_limbs = |b: &BoxedUint| -> [u64; N] {
                let mut out = [0u64; N];
                for (o, w) in out.iter_mut().zip(b.as_words()) {
                    *o = *w;
                }
                out
            };
            let a = to_limbs(&reduce(&limbs(&mut st, N)));
            let b = to_limbs(&reduce(&limbs(&mut st, N)));
            let e = limbs(&mut st, used);
            let ma = BoxedMontyForm::new(big(&a, bits), &params);
            let mb = BoxedMontyForm::new(big(&b, bits), &params);
            // Conversions: one and R² agree with crypto-bigint's.
            assert_eq!(m.one(), to_limbs(BoxedMontyForm::one(&params).as_montgomery()));
            let r2 = m.r_squared();
            let a_m = m.mul(&a, &r2);
            assert_eq!(a_m, to_limbs(ma.as_montgomery()));
            let b_m = m.mul(&b, &r2);
            // Products.
            assert_eq!(m.mul(&a_m, &b_m), to_limbs((&ma * &mb).as_montgomery()));
            assert_eq!(m.sqr(&a_m), to_limbs(ma.square().as_montgomery()));
            assert_eq!(m.mul(&a_m, &a_m), m.sqr(&a_m));
            assert_eq!(m.mul_ps(&a_m, &b_m), m.mul(&a_m, &b_m));
            assert_eq!(m.sqr_ps(&a_m), m.sqr(&a_m));
            assert_eq!(m.sqr_ps(&m.minus_one()), m.one());
            assert_eq!(m.sqr2(&a_m), m.sqr(&a_m));
            assert_eq!(m.mul2(&a_m, &b_m), m.mul(&a_m, &b_m));
            assert_eq!(m.sqr2(&m.minus_one()), m.one());
            assert_eq!(m.mul2(&m.minus_one(), &m.minus_one()), m.one());
            // Exponentiation.
            let eb = big(&e, bits);
            assert_eq!(m.pow(&a_m, &e), to_limbs(ma.pow(&eb).as_montgomery()));
            let two = BoxedMontyForm::new(BoxedUint::from_be_slice(&[2], bits).expect("2"), &params);
            assert_eq!(m.pow2(&e), to_limbs(two.pow(&eb).as_montgomery()));
            // Leaving Montgomery form.
            let mut unit = [0u64; N];
            unit[0] = 1;
            assert_eq!(m.mul(&a_m, &unit), a);
            // -1.
            assert_eq!(m.minus_one(), to_limbs((-BoxedMontyForm::one(&params)).as_montgomery()));
        }
    }

    #[test]
    fn matches_crypto_bigint() {
        check::<16, 32>(16, 1);
        check::<16, 32>(13, 2); // padded: n much smaller than R
        check::<24, 48>(24, 3);
        check::<24, 48>(17, 4);
        check::<32, 64>(32, 5);
        check::<4, 8>(4, 6);
        check::<4, 8>(1, 7);
        check::<5, 10>(5, 8);
        check::<17, 34>(17, 9);
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
        fn time<const N: usize, const W: usize>() {
            let mut st = 99;
            let mut nl = limbs(&mut st, N);
            nl[0] |= 1;
            nl[N - 1] |= 3 << 62;
            let m = Modulus::<N, W>::new(&nl).expect("odd");
            let mut x = m.minus_one();
            x[0] ^= 12345;
            let y = x;
            let sqr = best(|| x = m.sqr(&x));
            let sqr_ps = best(|| x = m.sqr_ps(&x));
            let mul = best(|| x = m.mul(&x, &y));
            let mul_ps = best(|| x = m.mul_ps(&x, &y));
            let sqr2 = best(|| x = m.sqr2(&x));
            let mul2 = best(|| x = m.mul2(&x, &y));
            eprintln!("N={N}: sqr2 {sqr2:?} mul2 {mul2:?}");
            if let Some(m16) = (&m as &dyn std::any::Any).downcast_ref::<Modulus<16, 32>>() {
                let mut x16 = m16.minus_one();
                x16[0] ^= 5;
                let un = best(|| x16 = m16.sqr_unrolled(&x16));
                let ph = best(|| x16 = m16.sqr_phased(&x16));
                eprintln!("N=16 unrolled: {un:?} phased {ph:?} ({})", x16[0]);
            }
            eprintln!(
                "N={N}: sqr {sqr:?} sqr_ps {sqr_ps:?} mul {mul:?} mul_ps {mul_ps:?} ({})",
                x[0]
            );
        }
        time::<16, 32>();
        time::<24, 48>();
        time::<32, 64>();
    }

    #[test]
    fn unrolled_matches() {
        let mut st = 5;
        for _ in 0..20 {
            let mut nl = limbs(&mut st, 16);
            nl[0] |= 1;
            let m = Modulus::<16, 32>::new(&nl).expect("odd");
            let mut x = m.minus_one();
            x[3] ^= st;
            for _ in 0..50 {
                let y = m.sqr(&x);
                assert_eq!(m.sqr_unrolled(&x), y);
                assert_eq!(m.sqr_phased(&x), y);
                x = y;
            }
        }
    }

    #[test]
    fn top_bits_set_modulus() {
        // All-ones high limbs stress every carry path.
        let mut nl = vec![u64::MAX; 16];
        nl[0] = u64::MAX - 58; // odd
        let m = Modulus::<16, 32>::new(&nl).expect("odd");
        let x = m.minus_one();
        assert_eq!(m.mul(&x, &x), m.one());
        assert_eq!(m.sqr(&x), m.one());
    }
}

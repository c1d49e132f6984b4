//! Distance kernels between f32 vectors and 8-bit codes.
//!
//! Every slice has the same length, a multiple of [`LANES`] (code rows are
//! padded), so the loops have no remainder. Each body is written once with
//! one accumulator per lane, which LLVM vectorises, and compiled three times:
//! for AVX-512, for AVX2 + FMA and for the baseline target; the best one the
//! CPU has is chosen once per process (`is_x86_feature_detected!`).

use std::sync::atomic::{AtomicU8, Ordering};

/// Code rows and prepared queries are padded to a multiple of this.
pub(crate) const LANES: usize = 16;

#[inline(always)]
fn fmadd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    // `mul_add` is one instruction with FMA, a libm call without it.
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `sum (a - s * c)^2`: L2 of a query (`a = q - lo`) against a code.
#[inline(always)]
fn l2_asym_body<const FMA: bool>(a: &[f32], s: &[f32], c: &[u8]) -> f32 {
    let mut acc = [0f32; LANES];
    for ((a, s), c) in a
        .chunks_exact(LANES)
        .zip(s.chunks_exact(LANES))
        .zip(c.chunks_exact(LANES))
    {
        for i in 0..LANES {
            let d = fmadd::<FMA>(-s[i], f32::from(c[i]), a[i]);
            acc[i] = fmadd::<FMA>(d, d, acc[i]);
        }
    }
    acc.iter().sum()
}

/// `sum b * c`: the code-dependent part of a query's inner product.
#[inline(always)]
fn dot_asym_body<const FMA: bool>(b: &[f32], c: &[u8]) -> f32 {
    let mut acc = [0f32; LANES];
    for (b, c) in b.chunks_exact(LANES).zip(c.chunks_exact(LANES)) {
        for i in 0..LANES {
            acc[i] = fmadd::<FMA>(b[i], f32::from(c[i]), acc[i]);
        }
    }
    acc.iter().sum()
}

/// `sum w * (x - y)^2`: L2 between two codes (`w = step^2`).
#[inline(always)]
fn l2_sym_body<const FMA: bool>(w: &[f32], x: &[u8], y: &[u8]) -> f32 {
    let mut acc = [0f32; LANES];
    for ((w, x), y) in w
        .chunks_exact(LANES)
        .zip(x.chunks_exact(LANES))
        .zip(y.chunks_exact(LANES))
    {
        for i in 0..LANES {
            let d = f32::from(x[i]) - f32::from(y[i]);
            acc[i] = fmadd::<FMA>(w[i] * d, d, acc[i]);
        }
    }
    acc.iter().sum()
}

/// `sum w * x * y`: the product part of the inner product of two codes.
#[inline(always)]
fn dot_sym_body<const FMA: bool>(w: &[f32], x: &[u8], y: &[u8]) -> f32 {
    let mut acc = [0f32; LANES];
    for ((w, x), y) in w
        .chunks_exact(LANES)
        .zip(x.chunks_exact(LANES))
        .zip(y.chunks_exact(LANES))
    {
        for i in 0..LANES {
            let p = f32::from(x[i]) * f32::from(y[i]);
            acc[i] = fmadd::<FMA>(w[i], p, acc[i]);
        }
    }
    acc.iter().sum()
}

const ISA_UNKNOWN: u8 = 0;
const ISA_BASE: u8 = 1;
const ISA_AVX2: u8 = 2;
const ISA_AVX512: u8 = 3;

static ISA: AtomicU8 = AtomicU8::new(ISA_UNKNOWN);

#[inline]
fn isa() -> u8 {
    match ISA.load(Ordering::Relaxed) {
        ISA_UNKNOWN => {
            let found = detect();
            ISA.store(found, Ordering::Relaxed);
            found
        }
        x => x,
    }
}

fn detect() -> u8 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw") {
            return ISA_AVX512;
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return ISA_AVX2;
        }
    }
    ISA_BASE
}

/// The instruction set the kernels use on this CPU (for reports).
pub fn kernel_isa() -> &'static str {
    match isa() {
        ISA_AVX512 => "avx512",
        ISA_AVX2 => "avx2+fma",
        _ => "baseline",
    }
}

macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        $(#[$doc])*
        #[inline]
        pub(crate) fn $name($($arg: $ty),*) -> f32 {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
                fn avx512($($arg: $ty),*) -> f32 {
                    $body::<true>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) -> f32 {
                    $body::<true>($($arg),*)
                }
                match isa() {
                    // SAFETY: `isa` found these features on this CPU.
                    ISA_AVX512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    ISA_AVX2 => return unsafe { avx2($($arg),*) },
                    _ => {}
                }
            }
            $body::<false>($($arg),*)
        }
    };
}

dispatch!(
    /// `sum (a - s * c)^2` over equal-length slices (a multiple of `LANES`).
    l2_asym, l2_asym_body, (a: &[f32], s: &[f32], c: &[u8])
);
dispatch!(
    /// `sum b * c` over equal-length slices.
    dot_asym, dot_asym_body, (b: &[f32], c: &[u8])
);
dispatch!(
    /// `sum w * (x - y)^2` over equal-length slices.
    l2_sym, l2_sym_body, (w: &[f32], x: &[u8], y: &[u8])
);
dispatch!(
    /// `sum w * x * y` over equal-length slices.
    dot_sym, dot_sym_body, (w: &[f32], x: &[u8], y: &[u8])
);

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> (Vec<f32>, Vec<f32>, Vec<u8>, Vec<u8>) {
        let a = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        let s = (0..n).map(|i| 0.01 + (i % 7) as f32 * 0.003).collect();
        let x = (0..n).map(|i| ((i * 31 + 7) % 256) as u8).collect();
        let y = (0..n).map(|i| ((i * 17 + 100) % 256) as u8).collect();
        (a, s, x, y)
    }

    fn close(a: f32, b: f64) -> bool {
        (f64::from(a) - b).abs() <= 1e-4 * b.abs().max(1.0)
    }

    #[test]
    fn every_kernel_matches_a_plain_f64_sum() {
        for n in [16, 64, 768] {
            let (a, s, x, y) = data(n);
            let f = |v: f32| f64::from(v);
            let l2a: f64 = (0..n)
                .map(|i| (f(a[i]) - f(s[i]) * f64::from(x[i])).powi(2))
                .sum();
            let dota: f64 = (0..n).map(|i| f(a[i]) * f64::from(x[i])).sum();
            let l2s: f64 = (0..n)
                .map(|i| f(s[i]) * (f64::from(x[i]) - f64::from(y[i])).powi(2))
                .sum();
            let dots: f64 = (0..n)
                .map(|i| f(s[i]) * f64::from(x[i]) * f64::from(y[i]))
                .sum();
            assert!(close(l2_asym(&a, &s, &x), l2a), "l2_asym n={n}");
            assert!(close(dot_asym(&a, &x), dota), "dot_asym n={n}");
            assert!(close(l2_sym(&s, &x, &y), l2s), "l2_sym n={n}");
            assert!(close(dot_sym(&s, &x, &y), dots), "dot_sym n={n}");
            // The baseline bodies agree with the dispatched ones.
            assert!(close(l2_asym_body::<false>(&a, &s, &x), l2a));
            assert!(close(dot_asym_body::<false>(&a, &x), dota));
            assert!(close(l2_sym_body::<false>(&s, &x, &y), l2s));
            assert!(close(dot_sym_body::<false>(&s, &x, &y), dots));
        }
    }
}

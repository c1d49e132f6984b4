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

/// Elements per block of the main loop: four accumulators per lane, so that
/// the additions of one block do not wait on each other.
const BLOCK: usize = 4 * LANES;

/// Runs `$step` (a fn over `N`-arrays: `(acc, x1, x2, ..)`) over the
/// slices `$s..` (truncated to their common length, a multiple of `LANES`)
/// in blocks of `BLOCK`, then of `LANES`, and sums the accumulators.
macro_rules! drive {
    ($step:ident::<$fma:ident>, $($s:ident),+) => {{
        let len = [$($s.len()),+].into_iter().min().unwrap_or(0) / LANES * LANES;
        $(let $s = &$s[..len];)+
        let mut acc = [0f32; BLOCK];
        let whole = len / BLOCK * BLOCK;
        {
            $(let $s = $s[..whole].as_chunks::<BLOCK>().0.iter();)+
            for_each_zip!(|$($s),+| $step::<$fma, BLOCK>(&mut acc, $($s),+));
        }
        let mut tail = [0f32; LANES];
        {
            $(let $s = $s[whole..].as_chunks::<LANES>().0.iter();)+
            for_each_zip!(|$($s),+| $step::<$fma, LANES>(&mut tail, $($s),+));
        }
        let mut lanes = tail;
        for (i, l) in lanes.iter_mut().enumerate() {
            *l += (acc[i] + acc[i + LANES]) + (acc[i + 2 * LANES] + acc[i + 3 * LANES]);
        }
        // Halves added pairwise (a few shuffles), not one lane after
        // another (sixteen dependent additions, which cost a 64-d row as
        // much as its products).
        let mut width = LANES / 2;
        while width > 0 {
            for i in 0..width {
                lanes[i] += lanes[i + width];
            }
            width /= 2;
        }
        lanes[0]
    }};
}

/// Zips two or three iterators and runs the body on each tuple.
macro_rules! for_each_zip {
    (|$a:ident, $b:ident| $body:expr) => {
        for ($a, $b) in $a.zip($b) {
            $body;
        }
    };
    (|$a:ident, $b:ident, $c:ident| $body:expr) => {
        for (($a, $b), $c) in $a.zip($b).zip($c) {
            $body;
        }
    };
}

#[inline(always)]
fn dot_asym_step<const FMA: bool, const N: usize>(acc: &mut [f32; N], b: &[f32; N], c: &[u8; N]) {
    for i in 0..N {
        acc[i] = fmadd::<FMA>(b[i], f32::from(c[i]), acc[i]);
    }
}

#[inline(always)]
fn dot_sym_step<const FMA: bool, const N: usize>(
    acc: &mut [f32; N],
    w: &[f32; N],
    x: &[u8; N],
    y: &[u8; N],
) {
    for i in 0..N {
        acc[i] = fmadd::<FMA>(w[i], f32::from(x[i]) * f32::from(y[i]), acc[i]);
    }
}

/// `sum b * c`: the code-dependent part of a query's inner product.
#[inline(always)]
fn dot_asym_body<const FMA: bool>(b: &[f32], c: &[u8]) -> f32 {
    drive!(dot_asym_step::<FMA>, b, c)
}

/// `sum w * x * y`: the product part of the inner product of two codes.
#[inline(always)]
fn dot_sym_body<const FMA: bool>(w: &[f32], x: &[u8], y: &[u8]) -> f32 {
    drive!(dot_sym_step::<FMA>, w, x, y)
}

const ISA_UNKNOWN: u8 = 0;
const ISA_BASE: u8 = 1;
pub(crate) const ISA_AVX2: u8 = 2;
pub(crate) const ISA_AVX512: u8 = 3;

static ISA: AtomicU8 = AtomicU8::new(ISA_UNKNOWN);

/// The best of the instruction sets the kernels are built for that this
/// CPU has (detected once).
#[inline]
pub(crate) fn isa() -> u8 {
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
    ($(#[$doc:meta])* $name:ident, $body:ident, $avx512:ident, $avx2:ident, ($($arg:ident: $ty:ty),*)) => {
        $(#[$doc])*
        #[inline]
        pub(crate) fn $name($($arg: $ty),*) -> f32 {
            #[cfg(target_arch = "x86_64")]
            match isa() {
                // SAFETY: `isa` found these features on this CPU.
                ISA_AVX512 => return unsafe { $avx512($($arg),*) },
                // SAFETY: as above.
                ISA_AVX2 => return unsafe { $avx2($($arg),*) },
                _ => {}
            }
            $body::<false>($($arg),*)
        }

        /// The AVX-512 build of the body (named, so that tests call it).
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        fn $avx512($($arg: $ty),*) -> f32 {
            $body::<true>($($arg),*)
        }

        /// The AVX2 build, which an AVX-512 CPU never dispatches to: named
        /// so that a test runs it there too.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn $avx2($($arg: $ty),*) -> f32 {
            $body::<true>($($arg),*)
        }
    };
}

dispatch!(
    /// `sum b * c` over equal-length slices.
    dot_asym, dot_asym_body, dot_asym_avx512, dot_asym_avx2, (b: &[f32], c: &[u8])
);
dispatch!(
    /// `sum w * x * y` over equal-length slices.
    dot_sym, dot_sym_body, dot_sym_avx512, dot_sym_avx2, (w: &[f32], x: &[u8], y: &[u8])
);

/// Largest magnitude of a weight for [`dot_i16`] over `len` codes: the
/// exact sum, at most `255 * max * len`, must fit an `i32`.
pub(crate) fn i16_weight_max(len: usize) -> i32 {
    let bound = i64::from(i32::MAX) / (255 * len.max(1) as i64);
    bound.min(i64::from(i16::MAX)) as i32
}

/// `sum p * c` over equal-length slices (a multiple of [`LANES`]), exact in
/// integers: weights no larger than [`i16_weight_max`] cannot overflow.
/// Codes are widened to 16 bits and multiplied in pairs (`pmaddwd`): 32
/// products an instruction with AVX-512, against 16 for f32 weights, which
/// must also convert every code to a float first.
#[inline]
pub(crate) fn dot_i16(p: &[i16], c: &[u8]) -> i32 {
    let len = p.len().min(c.len()) / LANES * LANES;
    let (p, c) = (&p[..len], &c[..len]);
    #[cfg(target_arch = "x86_64")]
    {
        match isa() {
            // SAFETY: `isa` found these features on this CPU.
            ISA_AVX512 => return unsafe { x86::dot_i16_avx512(p, c) },
            // SAFETY: as above.
            ISA_AVX2 => return unsafe { x86::dot_i16_avx2(p, c) },
            _ => {}
        }
    }
    p.iter()
        .zip(c)
        .map(|(&w, &x)| i32::from(w) * i32::from(x))
        .sum()
}

/// `finish(row, dot)` for each of the rows `ids` of `rows` (rows of
/// `pitch` bytes, the first `p.len()` of each the codes), where `dot` is
/// [`dot_i16`] of `p` with the row's codes, into `out`: one dispatch for
/// a neighbour list, the weights kept in registers (in a search at 50
/// dimensions a call a distance cost more than the products). The row
/// `ahead` places further down the list is prefetched before each (rows of
/// many lines, whose loads a list's worth of prefetches would not keep in
/// flight). An id past the rows gets `finish(&[], 0)`.
#[inline]
pub(crate) fn dot_i16_rows<F: Fn(&[u8], i32) -> f32>(
    p: &[i16],
    rows: &[u8],
    (pitch, ahead): (usize, usize),
    ids: &[u32],
    out: &mut [f32],
    finish: F,
) {
    let len = (p.len() / LANES * LANES).min(pitch);
    let p = &p[..len];
    #[cfg(target_arch = "x86_64")]
    {
        match isa() {
            // SAFETY: `isa` found these features on this CPU.
            ISA_AVX512 => {
                return unsafe {
                    x86::dot_i16_rows_avx512(p, rows, (pitch, ahead), ids, out, finish)
                };
            }
            // SAFETY: as above.
            ISA_AVX2 => {
                return unsafe {
                    x86::dot_i16_rows_avx2(p, rows, (pitch, ahead), ids, out, finish)
                };
            }
            _ => {}
        }
    }
    rows_each(rows, (pitch, ahead), ids, out, |c| dot_i16(p, c), finish);
}

/// `out[i] = finish(row, dot(row))` for row `ids[i]`, row `ids[i + ahead]`
/// prefetched first.
#[inline(always)]
fn rows_each(
    rows: &[u8],
    (pitch, ahead): (usize, usize),
    ids: &[u32],
    out: &mut [f32],
    dot: impl Fn(&[u8]) -> i32,
    finish: impl Fn(&[u8], i32) -> f32,
) {
    for (i, (&id, o)) in ids.iter().zip(out.iter_mut()).enumerate() {
        if let Some(&later) = ids.get(i.saturating_add(ahead)) {
            crate::hnsw::prefetch_up_to::<u8, 1024>(rows, later as usize * pitch, pitch);
        }
        let s = id as usize * pitch;
        *o = match rows.get(s..s + pitch) {
            Some(row) => finish(row, dot(row)),
            None => finish(&[], 0),
        };
    }
}

/// Codes between two checkpoints of [`dot_i16_rows_below`]: one cache line.
pub(crate) const CHUNK: usize = 64;

/// [`dot_i16_rows`] for rows whose first dimensions hold most of a
/// distance: after every [`CHUNK`] codes, `partial(row, c, dots so far)`
/// (checkpoint `c`, from 0) is a lower bound of the row's distance, and a
/// row whose bound exceeds `bound` gets that bound and is read no further;
/// the others get `finish(row, dots)`. The dots are two: over the first
/// chunk and over the rest (their weights are scaled apart). The first line
/// of every row is prefetched at once, the rest of a row when it passes
/// its first checkpoint. An id past the rows gets `finish(&[], (0, 0))`.
#[inline]
pub(crate) fn dot_i16_rows_below<P, F>(
    p: &[i16],
    rows: &[u8],
    pitch: usize,
    (ids, bound): (&[u32], f32),
    out: &mut [f32],
    (partial, finish): (P, F),
) where
    P: Fn(&[u8], usize, (i32, i32)) -> f32,
    F: Fn(&[u8], (i32, i32)) -> f32,
{
    let len = (p.len() / LANES * LANES).min(pitch);
    let p = &p[..len];
    #[cfg(target_arch = "x86_64")]
    {
        match isa() {
            // SAFETY: `isa` found these features on this CPU.
            ISA_AVX512 => {
                return unsafe {
                    x86::dot_i16_rows_below_avx512(
                        p,
                        rows,
                        pitch,
                        (ids, bound),
                        out,
                        (partial, finish),
                    )
                };
            }
            // SAFETY: as above.
            ISA_AVX2 => {
                return unsafe {
                    x86::dot_i16_rows_below_avx2(
                        p,
                        rows,
                        pitch,
                        (ids, bound),
                        out,
                        (partial, finish),
                    )
                };
            }
            _ => {}
        }
    }
    rows_below(
        rows,
        (pitch, len),
        (ids, bound),
        out,
        |c, r| dot_i16(&p[r.clone()], &c[r]),
        (partial, finish),
    );
}

/// The loop of [`dot_i16_rows_below`]; `dot(row, range)` is the product of
/// the weights and codes in `range`.
#[inline(always)]
fn rows_below(
    rows: &[u8],
    (pitch, len): (usize, usize),
    (ids, bound): (&[u32], f32),
    out: &mut [f32],
    dot: impl Fn(&[u8], std::ops::Range<usize>) -> i32,
    (partial, finish): (
        impl Fn(&[u8], usize, (i32, i32)) -> f32,
        impl Fn(&[u8], (i32, i32)) -> f32,
    ),
) {
    for &id in ids {
        crate::hnsw::prefetch_up_to::<u8, 64>(rows, id as usize * pitch, 1);
    }
    for (&id, o) in ids.iter().zip(out.iter_mut()) {
        let s = id as usize * pitch;
        let Some(row) = rows.get(s..s + pitch) else {
            *o = finish(&[], (0, 0));
            continue;
        };
        let head = dot(row, 0..CHUNK.min(len));
        let (mut rest, mut at, mut c) = (0i32, CHUNK, 0usize);
        *o = loop {
            if at >= len {
                break finish(row, (head, rest));
            }
            let low = partial(row, c, (head, rest));
            if low > bound {
                break low;
            }
            if c == 0 {
                crate::hnsw::prefetch_up_to::<u8, 1024>(
                    rows,
                    s + CHUNK,
                    pitch.saturating_sub(CHUNK),
                );
            }
            let end = (at + CHUNK).min(len);
            rest = rest.wrapping_add(dot(row, at..end));
            (at, c) = (end, c + 1);
        };
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `p.len() == c.len()`, a multiple of 16.
    #[target_feature(enable = "avx512f,avx512bw,avx2")]
    pub(super) fn dot_i16_avx512(p: &[i16], c: &[u8]) -> i32 {
        let (pw, cw) = (p.as_chunks::<32>().0, c.as_chunks::<32>().0);
        let mut acc = _mm512_setzero_si512();
        for (w, x) in pw.iter().zip(cw) {
            // SAFETY: each chunk is 32 codes (256 bits) and 32 weights (512 bits).
            let (w, x) = unsafe {
                (
                    _mm512_loadu_si512(w.as_ptr().cast()),
                    _mm256_loadu_si256(x.as_ptr().cast()),
                )
            };
            acc = _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_cvtepu8_epi16(x), w));
        }
        let done = pw.len() * 32;
        let tail = if done < p.len() {
            dot16_avx2(&p[done..], &c[done..])
        } else {
            0
        };
        _mm512_reduce_add_epi32(acc) + tail
    }

    /// [`super::dot_i16_blocked`]: two accumulators, each a pair of
    /// dimensions of the 16 rows a step.
    #[target_feature(enable = "avx512f,avx512bw,avx2")]
    pub(super) fn dot_i16_blocked_avx512(w: &[i32], blocks: &[u8], out: &mut [i32]) {
        if w.is_empty() {
            return;
        }
        let (wt, wr) = w.as_chunks::<2>();
        for (block, o) in blocks.chunks_exact(w.len() * 32).zip(out.chunks_mut(16)) {
            let (two, rest) = block.as_chunks::<64>();
            let (mut a0, mut a1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
            for (c, ww) in two.iter().zip(wt) {
                // SAFETY: `c` is 64 bytes: two loads of 32.
                let (x0, x1) = unsafe {
                    (
                        _mm256_loadu_si256(c.as_ptr().cast()),
                        _mm256_loadu_si256(c.as_ptr().add(32).cast()),
                    )
                };
                let p0 = _mm512_madd_epi16(_mm512_cvtepu8_epi16(x0), _mm512_set1_epi32(ww[0]));
                let p1 = _mm512_madd_epi16(_mm512_cvtepu8_epi16(x1), _mm512_set1_epi32(ww[1]));
                a0 = _mm512_add_epi32(a0, p0);
                a1 = _mm512_add_epi32(a1, p1);
            }
            if let (Some(&ww), true) = (wr.first(), rest.len() >= 32) {
                // SAFETY: `rest` holds the last pair's 32 bytes.
                let x = unsafe { _mm256_loadu_si256(rest.as_ptr().cast()) };
                let p = _mm512_madd_epi16(_mm512_cvtepu8_epi16(x), _mm512_set1_epi32(ww));
                a0 = _mm512_add_epi32(a0, p);
            }
            let mut sum = [0i32; 16];
            // SAFETY: `sum` is 16 i32s, 512 bits.
            unsafe { _mm512_storeu_si512(sum.as_mut_ptr().cast(), _mm512_add_epi32(a0, a1)) };
            let len = o.len();
            o.copy_from_slice(&sum[..len]);
        }
    }

    /// [`super::dot_i16_blocked_body`] compiled for AVX2 (the compiler
    /// vectorises the portable body; tested directly on any AVX2 CPU).
    #[target_feature(enable = "avx2")]
    pub(super) fn dot_i16_blocked_avx2(w: &[i32], blocks: &[u8], out: &mut [i32]) {
        super::dot_i16_blocked_body(w, blocks, out)
    }

    /// `p.len() == c.len()`, a multiple of 16.
    #[target_feature(enable = "avx2")]
    pub(super) fn dot_i16_avx2(p: &[i16], c: &[u8]) -> i32 {
        dot16_avx2(p, c)
    }

    #[target_feature(enable = "avx512f,avx512bw,avx2")]
    pub(super) fn dot_i16_rows_avx512<F: Fn(&[u8], i32) -> f32>(
        p: &[i16],
        rows: &[u8],
        layout: (usize, usize),
        ids: &[u32],
        out: &mut [f32],
        finish: F,
    ) {
        let len = p.len();
        super::rows_each(
            rows,
            layout,
            ids,
            out,
            |c| dot_i16_avx512(p, &c[..len]),
            finish,
        );
    }

    #[target_feature(enable = "avx512f,avx512bw,avx2")]
    pub(super) fn dot_i16_rows_below_avx512<P, F>(
        p: &[i16],
        rows: &[u8],
        pitch: usize,
        bounded: (&[u32], f32),
        out: &mut [f32],
        scores: (P, F),
    ) where
        P: Fn(&[u8], usize, (i32, i32)) -> f32,
        F: Fn(&[u8], (i32, i32)) -> f32,
    {
        super::rows_below(
            rows,
            (pitch, p.len()),
            bounded,
            out,
            |c, r| dot_i16_avx512(&p[r.clone()], &c[r]),
            scores,
        );
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn dot_i16_rows_below_avx2<P, F>(
        p: &[i16],
        rows: &[u8],
        pitch: usize,
        bounded: (&[u32], f32),
        out: &mut [f32],
        scores: (P, F),
    ) where
        P: Fn(&[u8], usize, (i32, i32)) -> f32,
        F: Fn(&[u8], (i32, i32)) -> f32,
    {
        super::rows_below(
            rows,
            (pitch, p.len()),
            bounded,
            out,
            |c, r| dot16_avx2(&p[r.clone()], &c[r]),
            scores,
        );
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn dot_i16_rows_avx2<F: Fn(&[u8], i32) -> f32>(
        p: &[i16],
        rows: &[u8],
        layout: (usize, usize),
        ids: &[u32],
        out: &mut [f32],
        finish: F,
    ) {
        let len = p.len();
        super::rows_each(rows, layout, ids, out, |c| dot16_avx2(p, &c[..len]), finish);
    }

    #[target_feature(enable = "avx2")]
    fn dot16_avx2(p: &[i16], c: &[u8]) -> i32 {
        let (pw, cw) = (p.as_chunks::<16>().0, c.as_chunks::<16>().0);
        let mut acc = _mm256_setzero_si256();
        for (w, x) in pw.iter().zip(cw) {
            // SAFETY: each chunk is 16 codes (128 bits) and 16 weights (256 bits).
            let (w, x) = unsafe {
                (
                    _mm256_loadu_si256(w.as_ptr().cast()),
                    _mm_loadu_si128(x.as_ptr().cast()),
                )
            };
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_cvtepu8_epi16(x), w));
        }
        let half = _mm_add_epi32(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256(acc, 1),
        );
        let quad = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0b01_00_11_10));
        let pair = _mm_add_epi32(quad, _mm_shuffle_epi32(quad, 0b10_11_00_01));
        _mm_cvtsi128_si32(pair)
    }
}

/// Rows a [`dot_i16_blocked`] block holds.
pub(crate) const BLOCK_ROWS: usize = 16;

/// Bytes of a block of 16 rows of `dim` codes: the dimensions in pairs
/// (the last padded with a zero code when `dim` is odd).
pub(crate) fn block_bytes(dim: usize) -> usize {
    dim.div_ceil(2) * 2 * BLOCK_ROWS
}

/// Where dimension `j` of row `r` (of 16) sits in its block: pair `j / 2`
/// holds, row after row, the two codes of each row.
pub(crate) fn block_at(r: usize, j: usize) -> usize {
    j / 2 * 2 * BLOCK_ROWS + 2 * r + j % 2
}

/// Two `i16` weights packed in one `i32` (the first in the low half), the
/// form [`dot_i16_blocked`] takes them in.
pub(crate) fn pack_pairs(w: &[i16], dim: usize) -> Vec<i32> {
    (0..dim.div_ceil(2))
        .map(|t| {
            let lo = w.get(2 * t).copied().unwrap_or(0);
            let hi = w.get(2 * t + 1).copied().unwrap_or(0);
            (u32::from(lo as u16) | (u32::from(hi as u16) << 16)) as i32
        })
        .collect()
}

/// `out[r] = sum_j w[j] * code(r, j)` for every block of 16 rows
/// ([`block_at`]; `w` packed by [`pack_pairs`]), exact in integers for
/// weights no larger than [`i16_weight_max`]: the 16 rows are the lanes of
/// a register, so a row's sum needs no horizontal addition, and each pair
/// of dimensions is one multiply-add of 16-bit products (`pmaddwd`).
#[inline(always)]
fn dot_i16_blocked_body(w: &[i32], blocks: &[u8], out: &mut [i32]) {
    if w.is_empty() {
        return;
    }
    for (block, o) in blocks
        .chunks_exact(w.len() * 2 * BLOCK_ROWS)
        .zip(out.chunks_mut(BLOCK_ROWS))
    {
        let mut acc = [0i32; BLOCK_ROWS];
        for (cols, &pw) in block.as_chunks::<{ 2 * BLOCK_ROWS }>().0.iter().zip(w) {
            let (w0, w1) = (i32::from(pw as i16), pw >> 16);
            for (r, a) in acc.iter_mut().enumerate() {
                *a += w0 * i32::from(cols[2 * r]) + w1 * i32::from(cols[2 * r + 1]);
            }
        }
        let len = o.len();
        o.copy_from_slice(&acc[..len]);
    }
}

/// [`dot_i16_blocked_body`] with the best instruction set of this CPU.
pub(crate) fn dot_i16_blocked(w: &[i32], blocks: &[u8], out: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    {
        match isa() {
            // SAFETY: `isa` found these features on this CPU.
            ISA_AVX512 => return unsafe { x86::dot_i16_blocked_avx512(w, blocks, out) },
            // SAFETY: as above.
            ISA_AVX2 => return unsafe { x86::dot_i16_blocked_avx2(w, blocks, out) },
            _ => {}
        }
    }
    dot_i16_blocked_body(w, blocks, out)
}

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
        for n in [16, 48, 64, 80, 768, 4096, 65_536] {
            let (a, s, x, y) = data(n);
            let f = |v: f32| f64::from(v);
            let dota: f64 = (0..n).map(|i| f(a[i]) * f64::from(x[i])).sum();
            let dots: f64 = (0..n)
                .map(|i| f(s[i]) * f64::from(x[i]) * f64::from(y[i]))
                .sum();
            assert!(close(dot_asym(&a, &x), dota), "dot_asym n={n}");
            // Integer weights at both ends of their range: exact sums.
            let top = i16_weight_max(n);
            let w: Vec<i16> = (0..n)
                .map(|i| ((i as i32 * 7919) % (2 * top + 1) - top) as i16)
                .collect();
            let want: i64 = (0..n).map(|i| i64::from(w[i]) * i64::from(x[i])).sum();
            assert_eq!(i64::from(dot_i16(&w, &x)), want, "dot_i16 n={n}");
            let plain: i64 = w
                .iter()
                .zip(&x)
                .map(|(&a, &b)| i64::from(a) * i64::from(b))
                .sum();
            assert_eq!(plain, want);
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2; equal lengths, a multiple of 16.
                let avx2 = unsafe { x86::dot_i16_avx2(&w, &x) };
                assert_eq!(i64::from(avx2), want, "dot_i16 avx2 n={n}");
            }
            // A list of rows (pitch: the codes and 16 bytes more) in one
            // call: each row's dot, by every build; an id past the rows gets
            // `finish(&[], 0)`.
            let pitch = n + 16;
            let rows: Vec<u8> = (0..3)
                .flat_map(|r| x.iter().map(move |&c| c.wrapping_add(r)).chain([r; 16]))
                .collect();
            let ids = [2u32, 0, 3, 1, 2];
            let want_rows: Vec<f32> = ids
                .iter()
                .map(
                    |&id| match rows.get(id as usize * pitch..(id as usize + 1) * pitch) {
                        Some(r) => dot_i16(&w, &r[..n]) as f32 + f32::from(r[pitch - 1]),
                        None => -1.0,
                    },
                )
                .collect();
            let finish = |r: &[u8], d: i32| r.last().map_or(-1.0, |&t| d as f32 + f32::from(t));
            let mut out = vec![0f32; ids.len()];
            dot_i16_rows(&w, &rows, (pitch, 1), &ids, &mut out, finish);
            assert_eq!(out, want_rows, "dot_i16_rows n={n}");
            out.fill(0.0);
            rows_each(
                &rows,
                (pitch, 2),
                &ids,
                &mut out,
                |c| dot_i16(&w, c),
                finish,
            );
            assert_eq!(out, want_rows, "baseline rows n={n}");
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") {
                out.fill(0.0);
                // SAFETY: the CPU has AVX2; the weights are a multiple of 16.
                unsafe { x86::dot_i16_rows_avx2(&w, &rows, (pitch, 1), &ids, &mut out, finish) };
                assert_eq!(out, want_rows, "dot_i16_rows avx2 n={n}");
            }
            let most = vec![top as i16; n];
            let full = vec![255u8; n];
            assert_eq!(
                i64::from(dot_i16(&most, &full)),
                255 * i64::from(top) * n as i64
            );
            assert!(close(dot_sym(&s, &x, &y), dots), "dot_sym n={n}");
            // The baseline bodies agree with the dispatched ones.
            assert!(close(dot_asym_body::<false>(&a, &x), dota));
            assert!(close(dot_sym_body::<false>(&s, &x, &y), dots));
            // And the AVX2 builds, which an AVX-512 CPU never dispatches to.
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU has AVX2 and FMA.
                let (asym, sym) = unsafe { (dot_asym_avx2(&a, &x), dot_sym_avx2(&s, &x, &y)) };
                assert!(close(asym, dota), "dot_asym avx2 n={n}");
                assert!(close(sym, dots), "dot_sym avx2 n={n}");
            }
            // Two blocks of 16 rows, dimensions in pairs; row r is `x` with
            // dimension r % n zeroed, over n and n - 1 dimensions (odd).
            for dim in [n, n - 1] {
                let row = |r: usize| {
                    let mut v = x[..dim].to_vec();
                    v[r % dim] = 0;
                    v
                };
                let per = block_bytes(dim);
                let mut blocks = vec![0u8; 2 * per];
                for r in 0..2 * BLOCK_ROWS {
                    let (b, lane) = (r / BLOCK_ROWS, r % BLOCK_ROWS);
                    for (j, c) in row(r).into_iter().enumerate() {
                        blocks[b * per + block_at(lane, j)] = c;
                    }
                }
                let packed = pack_pairs(&w, dim);
                let mut out = [0i32; 2 * BLOCK_ROWS];
                dot_i16_blocked(&packed, &blocks, &mut out);
                let mut plain = [0i32; 2 * BLOCK_ROWS];
                dot_i16_blocked_body(&packed, &blocks, &mut plain);
                // The AVX2 build, which an AVX-512 CPU never dispatches to.
                #[cfg(target_arch = "x86_64")]
                if std::is_x86_feature_detected!("avx2") {
                    let mut avx2 = [0i32; 2 * BLOCK_ROWS];
                    // SAFETY: the CPU has AVX2; `packed` and `blocks` are
                    // laid out for `dim` dimensions, two blocks.
                    unsafe { x86::dot_i16_blocked_avx2(&packed, &blocks, &mut avx2) };
                    assert_eq!(avx2, plain, "blocked avx2 {dim}");
                }
                for (r, (o, p)) in out.iter().zip(&plain).enumerate() {
                    let want: i64 = row(r)
                        .iter()
                        .zip(&w)
                        .map(|(c, w)| i64::from(*w) * i64::from(*c))
                        .sum();
                    assert_eq!(
                        (i64::from(*o), i64::from(*p)),
                        (want, want),
                        "blocked {dim} row {r}"
                    );
                }
            }
        }
    }
}

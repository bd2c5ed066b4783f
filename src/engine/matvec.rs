//! Matrix-vector products over 8-bit weight blocks for one token on the CPU: the
//! activation is quantized to the same 8-bit blocks (as ggml does) and each output row is an
//! integer dot product scaled per block. Rows are shared out over candle's worker pool.
//!
//! candle's own kernel for this case keeps one accumulator per row and spends a few more
//! instructions per block; here each worker takes rows four at a time but streams them one
//! after the other, with two accumulators, which keeps the loads ahead of the arithmetic in a
//! memory-bound token step.
use candle_core::utils::barrier_pool;

/// Values per block (ggml's Q8_0).
pub(crate) const BLOCK: usize = 32;

/// ggml's Q8_0 block: an f16 scale and 32 signed bytes (34 bytes, the layout candle stores).
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct Q8Block {
    d: u16,
    qs: [i8; BLOCK],
}

/// Views Q8_0 tensor bytes as blocks; None when the length or alignment does not fit.
pub(crate) fn blocks(bytes: &[u8]) -> Option<&[Q8Block]> {
    let size = std::mem::size_of::<Q8Block>();
    if !bytes.len().is_multiple_of(size) || !bytes.as_ptr().cast::<Q8Block>().is_aligned() {
        return None;
    }
    // SAFETY: Q8Block is plain old data of 34 bytes (repr(C), align 2), and the length and
    // alignment were checked above.
    Some(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast(), bytes.len() / size) })
}

/// `x` as 8-bit blocks, rounding like ggml (scale = max |x| / 127, round half away from
/// zero). `x.len()` must be a multiple of BLOCK.
pub(crate) fn quantize(x: &[f32], out: &mut Vec<Q8Block>) {
    out.clear();
    out.extend(x.chunks_exact(BLOCK).map(|chunk| {
        let amax = chunk.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d == 0.0 { 0.0 } else { 1.0 / d };
        let mut qs = [0i8; BLOCK];
        for (q, v) in qs.iter_mut().zip(chunk) {
            *q = (v * id).round() as i8;
        }
        Q8Block {
            d: half::f16::from_f32(d).to_bits(),
            qs,
        }
    }));
}

/// `out[r] = dot(w row r, a)` for every row of `w` (row-major, `a.len()` blocks per row).
pub(crate) fn matvec(w: &[Q8Block], a: &[Q8Block], out: &mut [f32]) {
    let k = a.len();
    let rows = out.len();
    debug_assert_eq!(w.len(), rows * k);
    let quads = rows / 4;
    let dst = out.as_mut_ptr() as usize;
    barrier_pool().execute_chunked(quads, |range| {
        for quad in range {
            let r = quad * 4;
            let row = |i: usize| &w[(r + i) * k..(r + i + 1) * k];
            let d = dot4([row(0), row(1), row(2), row(3)], a);
            // SAFETY: each quad writes its own four rows of `out`, which outlives the call.
            unsafe {
                std::ptr::copy_nonoverlapping(d.as_ptr(), (dst as *mut f32).add(r), 4);
            }
        }
    });
    for r in quads * 4..rows {
        out[r] = dot1(&w[r * k..(r + 1) * k], a);
    }
}

fn dot1(w: &[Q8Block], a: &[Q8Block]) -> f32 {
    w.iter()
        .zip(a)
        .map(|(w, a)| {
            let s: i32 =
                w.qs.iter()
                    .zip(&a.qs)
                    .map(|(&x, &y)| x as i32 * y as i32)
                    .sum();
            f16(w.d) * f16(a.d) * s as f32
        })
        .sum()
}

fn f16(bits: u16) -> f32 {
    half::f16::from_bits(bits).to_f32()
}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
))]
fn dot4(w: [&[Q8Block]; 4], a: &[Q8Block]) -> [f32; 4] {
    // The kernel reads each row without bounds checks, as far as `a` reaches.
    assert!(
        w.iter().all(|row| row.len() == a.len()),
        "dot4: every row needs as many blocks as the vector"
    );
    // SAFETY: the target features are enabled for the whole build (cfg above), and every row
    // has `a.len()` blocks (asserted above).
    unsafe { avx2::dot4(w, a) }
}

#[cfg(not(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
)))]
fn dot4(w: [&[Q8Block]; 4], a: &[Q8Block]) -> [f32; 4] {
    w.map(|row| dot1(row, a))
}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
))]
mod avx2 {
    use super::{f16, Q8Block};
    use std::arch::x86_64::*;

    /// Signed bytes times signed bytes, summed in fours into 8 i32 lanes, as f32.
    ///
    /// # Safety
    /// The CPU must have AVX2 (the build enables it for this module).
    #[inline(always)]
    unsafe fn dot_bytes(w: __m256i, a: __m256i) -> __m256 {
        // maddubs wants an unsigned operand: move w's sign onto a.
        let pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
        _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
    }

    /// # Safety
    /// The CPU must have AVX2 (the build enables it for this module).
    #[inline(always)]
    unsafe fn hsum(x: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
    }

    /// One row at a time (streaming each row's blocks in order is what the prefetchers
    /// follow; interleaving four rows ran 3x slower), with two accumulators for the
    /// even and odd blocks.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA, and every row of `w` must have at least `a.len()`
    /// blocks: rows are read without bounds checks.
    pub(super) unsafe fn dot4(w: [&[Q8Block]; 4], a: &[Q8Block]) -> [f32; 4] {
        // SAFETY: the caller's guarantees are `dot`'s.
        w.map(|row| unsafe { dot(row, a) })
    }

    /// # Safety
    /// As `dot4`, for one row: `w` has at least `a.len()` blocks.
    #[inline(always)]
    unsafe fn dot(w: &[Q8Block], a: &[Q8Block]) -> f32 {
        let block = |j: usize| -> __m256 {
            // SAFETY: j < a.len() <= w.len() (the caller's guarantee).
            let (wb, ab) = unsafe { (w.get_unchecked(j), a.get_unchecked(j)) };
            let wv = _mm256_loadu_si256(wb.qs.as_ptr().cast());
            let av = _mm256_loadu_si256(ab.qs.as_ptr().cast());
            _mm256_mul_ps(_mm256_set1_ps(f16(wb.d) * f16(ab.d)), dot_bytes(wv, av))
        };
        let (mut even, mut odd) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let pairs = a.len() / 2;
        for p in 0..pairs {
            even = _mm256_add_ps(even, block(2 * p));
            odd = _mm256_add_ps(odd, block(2 * p + 1));
        }
        if a.len() % 2 == 1 {
            even = _mm256_add_ps(even, block(a.len() - 1));
        }
        hsum(_mm256_add_ps(even, odd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matvec_matches_the_plain_dot_product_of_the_dequantized_blocks() {
        let k = 3 * BLOCK;
        let rows = 7; // one quad and three rows after it
        let w: Vec<f32> = (0..rows * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 13.0)
            .collect();
        let x: Vec<f32> = (0..k)
            .map(|i| ((i * 11 % 29) as f32 - 14.0) / 7.0)
            .collect();
        let (mut wq, mut xq) = (Vec::new(), Vec::new());
        quantize(&w, &mut wq);
        quantize(&x, &mut xq);
        let mut got = vec![0.0; rows];
        matvec(&wq, &xq, &mut got);
        let deq = |b: &[Q8Block]| -> Vec<f32> {
            b.iter()
                .flat_map(|b| b.qs.map(|q| q as f32 * f16(b.d)))
                .collect()
        };
        let (wd, xd) = (deq(&wq), deq(&xq));
        for r in 0..rows {
            let want: f32 = wd[r * k..(r + 1) * k]
                .iter()
                .zip(&xd)
                .map(|(a, b)| a * b)
                .sum();
            assert!(
                (got[r] - want).abs() < 1e-3 * want.abs().max(1.0),
                "row {r}: {} vs {want}",
                got[r]
            );
            // And the quantized product is close to the exact one.
            let exact: f32 = w[r * k..(r + 1) * k]
                .iter()
                .zip(&x)
                .map(|(a, b)| a * b)
                .sum();
            assert!(
                (got[r] - exact).abs() < 0.02 * exact.abs().max(10.0),
                "row {r}: {} vs {exact}",
                got[r]
            );
        }
    }
}

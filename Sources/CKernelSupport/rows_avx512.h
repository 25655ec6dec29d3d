// Kernels in AVX-512, for CPUs that have it: the few-rows product y[i, j] = Σ_p W[j, p]·x[i, p]
// (m ≤ 16 rows of x, any weight format), which `WeightKernels.smallBatch` calls when
// `VectorISA.current` is .avx512 (rows_avx2.h's otherwise), and the F32 batch-1 matvec (at the
// end).
//
// Why C: Swift has no per-function target attribute, and the package is compiled for AVX2 so it
// runs on every x86-64 CPU this project targets. A `target("avx512...")` function here is
// compiled with AVX-512 whatever the package's flags, and only called after the CPUID check
// (`tinyseek_has_avx512`, kernel_support.h). (The inner loops carry `unroll(full)`: without it
// the Swift compiler's pipeline kept the sixteen accumulators on the stack, and the kernel was
// 1.25× slower than the AVX2 path.)
//
// Why it matters: batched decode multiplies every weight it streams by m rows of activations, so
// at 9-16 rows the Swift AVX2 kernel of then (8 lanes an FMA) was compute-bound below the memory
// roof, and OpenBLAS's sgemm spent two thirds of its time packing the weights (perf at 16
// sequences: sgemm_incopy 18%, its kernel 9% of a step). Decode steps of the benchmark model
// alternating between this kernel and that AVX2 path (Swift kernel, sgemm at 9-16 rows; median ratio of a step to its neighbours, 4 × 32 pairs;
// Xeon model 207): at 16 sequences 0.74× as long in F32, 0.62× in BF16, 0.59× in Q8_0; at 4
// sequences 0.82×, 0.79×, 0.75×.
//
// The tile: two rows of W against up to eight rows of x, sixteen 512-bit accumulators, 16
// columns a step; W's two rows are widened once per pass (m = 16 takes two passes, the second
// reading W from L1); the sixteen sums are reduced together (`tinyseek_hsum16`) and scattered
// into y. Each step prefetches the next line of both rows `ahead` bytes on into L2 (without it,
// steps took 0.86× instead of 0.74× at 16 sequences; 2× or 4× the distance changed nothing).
// Four rows of W against four of x took 0.78×, and switching to that tile for m ≤ 4 gained
// nothing; loading Q8_0's block scale once per 32 weights instead of per 16 (which the AVX2 kernel
// needs) made steps 1.02-1.07× as long. Columns past the last multiple of 16 go through masked
// loads, so any width works.
#ifndef TINYSEEK_ROWS_AVX512_H
#define TINYSEEK_ROWS_AVX512_H

#include <immintrin.h>
#include <stdint.h>

#include "rows_avx2.h"  // the formats' names, TINYSEEK_FOR_FORMAT

#define TINYSEEK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")))

// Sixteen weights of row `j` from column `p` as floats; lanes at or past `cols` read as 0
// (`mask` has a bit per lane still inside the row).
static inline __attribute__((always_inline)) TINYSEEK_AVX512
__m512 tinyseek_w16(const void *w, const uint16_t *scales, long cols, long blocks, int format, long j, long p, __mmask16 mask) {
    switch (format) {
    case TINYSEEK_F32:
        return _mm512_maskz_loadu_ps(mask, (const float *)w + j * cols + p);
    case TINYSEEK_BF16: {
        __m256i h = _mm256_maskz_loadu_epi16(mask, (const uint16_t *)w + j * cols + p);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    case TINYSEEK_F16:
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, (const uint16_t *)w + j * cols + p));
    default: {
        __m128i q = _mm_maskz_loadu_epi8(mask, (const int8_t *)w + j * cols + p);
        float d = _cvtsh_ss(scales[j * blocks + p / 32]);
        return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), _mm512_set1_ps(d));
    }
    }
}

// [Σa[0], Σa[1], ..., Σa[15]]: four rounds of pairwise adds (unpack, shuffle_ps, two shuffle_f32x4)
// instead of sixteen separate reductions (45 instructions for 16 sums rather than ~130).
static inline __attribute__((always_inline)) TINYSEEK_AVX512 __m512 tinyseek_hsum16(const __m512 *a) {
    __m512 b[8], c[4], d[2];
    _Pragma("clang loop unroll(full)")
    for (int i = 0; i < 8; i++)  // per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] of the pair
        b[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    _Pragma("clang loop unroll(full)")
    for (int i = 0; i < 4; i++)  // per 128-bit lane: the lane's sums of four inputs
        c[i] = _mm512_add_ps(_mm512_shuffle_ps(b[2 * i], b[2 * i + 1], 0x44), _mm512_shuffle_ps(b[2 * i], b[2 * i + 1], 0xEE));
    _Pragma("clang loop unroll(full)")
    for (int i = 0; i < 2; i++)  // pairs of 128-bit lanes added
        d[i] = _mm512_add_ps(_mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0x88), _mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_f32x4(d[0], d[1], 0x88), _mm512_shuffle_f32x4(d[0], d[1], 0xDD));
}

// One pass: rows [j, j + rw) of W (rows at or past `rowsEnd` repeat the last and are dropped)
// against rows [0, rx) of x (rw·rx ≤ 16; both compile-time constants once inlined), prefetching
// `ahead` bytes past what the pass reads in each of its rows when `ahead` > 0 (below `limit`).
static inline __attribute__((always_inline)) TINYSEEK_AVX512
void tinyseek_rows_avx512_pass(const void *w, const uint16_t *scales, long cols, long blocks, int format, int elementBytes,
                        long j, long rowsEnd, int rw, const float *x, long ldx, int rx, float *y, long ldy, long ahead,
                        long limit) {
    __m512 acc[16];
    long jr[4];
    _Pragma("clang loop unroll(full)")
    for (int a = 0; a < 16; a++) acc[a] = _mm512_setzero_ps();
    _Pragma("clang loop unroll(full)")
    for (int a = 0; a < rw; a++) jr[a] = j + a < rowsEnd ? j + a : rowsEnd - 1;
    long p = 0;
    for (; p + 16 <= cols; p += 16) {
        if (ahead > 0)
            _Pragma("clang loop unroll(full)")
            for (int a = 0; a < rw; a++) {
                const long o = (jr[a] * cols + p) * elementBytes + ahead;
                if (o < limit) _mm_prefetch((const char *)w + o, _MM_HINT_T1);
            }
        __m512 v[4];
        _Pragma("clang loop unroll(full)")
        for (int a = 0; a < rw; a++) v[a] = tinyseek_w16(w, scales, cols, blocks, format, jr[a], p, 0xFFFF);
        _Pragma("clang loop unroll(full)")
        for (int r = 0; r < rx; r++) {
            __m512 xv = _mm512_loadu_ps(x + r * ldx + p);
            _Pragma("clang loop unroll(full)")
            for (int a = 0; a < rw; a++) acc[a * rx + r] = _mm512_fmadd_ps(v[a], xv, acc[a * rx + r]);
        }
    }
    if (p < cols) {
        __mmask16 mask = (__mmask16)((1u << (cols - p)) - 1);
        __m512 v[4];
        _Pragma("clang loop unroll(full)")
        for (int a = 0; a < rw; a++) v[a] = tinyseek_w16(w, scales, cols, blocks, format, jr[a], p, mask);
        _Pragma("clang loop unroll(full)")
        for (int r = 0; r < rx; r++) {
            __m512 xv = _mm512_maskz_loadu_ps(mask, x + r * ldx + p);
            _Pragma("clang loop unroll(full)")
            for (int a = 0; a < rw; a++) acc[a * rx + r] = _mm512_fmadd_ps(v[a], xv, acc[a * rx + r]);
        }
    }
    // Lane a·rx + r holds y[r, j + a].
    __m512 sums = tinyseek_hsum16(acc);
    int offsets[16];
    __mmask16 keep = 0;
    _Pragma("clang loop unroll(full)")
    for (int a = 0; a < rw; a++)
        _Pragma("clang loop unroll(full)")
        for (int r = 0; r < rx; r++) {
            offsets[a * rx + r] = (int)(r * ldy) + a;
            if (j + a < rowsEnd) keep |= (__mmask16)(1u << (a * rx + r));
        }
    _Pragma("clang loop unroll(full)")
    for (int l = rw * rx; l < 16; l++) offsets[l] = 0;
    _mm512_mask_i32scatter_ps(y + j, keep, _mm512_loadu_si512(offsets), sums, 4);
}

// The whole product for one format (a literal once inlined, so the widening has no branch).
static inline __attribute__((always_inline)) TINYSEEK_AVX512
void tinyseek_rows_avx512_format(const void *w, const uint16_t *scales, long cols, int format,
                          long rowsBegin, long rowsEnd, const float *x, long ldx, long m,
                          float *y, long ldy, long ahead, long limit) {
    const int elementBytes = format == TINYSEEK_F32 ? 4 : format == TINYSEEK_Q8_0 ? 1 : 2;
    const long blocks = (cols + 31) / 32;
#define TINYSEEK_PASS(RW, RX) tinyseek_rows_avx512_pass(w, scales, cols, blocks, format, elementBytes, j, rowsEnd, RW, \
                                                 x + i * ldx, ldx, RX, y + i * ldy, ldy, i == 0 ? ahead : 0, limit)
    for (long j = rowsBegin; j < rowsEnd; j += 2) {
        for (long i = 0; i < m; i += 8) {
            switch (m - i >= 8 ? 8 : (int)(m - i)) {
            case 8: TINYSEEK_PASS(2, 8); break;
            case 7: TINYSEEK_PASS(2, 7); break;
            case 6: TINYSEEK_PASS(2, 6); break;
            case 5: TINYSEEK_PASS(2, 5); break;
            case 4: TINYSEEK_PASS(2, 4); break;
            case 3: TINYSEEK_PASS(2, 3); break;
            case 2: TINYSEEK_PASS(2, 2); break;
            default: TINYSEEK_PASS(2, 1); break;
            }
        }
    }
#undef TINYSEEK_PASS
}

// The product `tinyseek_rows_avx2` computes (same arguments), in AVX-512. Requires
// tinyseek_has_avx512(); 8·ldy must fit in 32 bits (the scatter's offsets).
static TINYSEEK_AVX512
void tinyseek_rows_avx512(const void *w, const uint16_t *scales, long cols, int format,
                          long rowsBegin, long rowsEnd, const float *x, long ldx, long m,
                          float *y, long ldy, long ahead, long limit) {
    TINYSEEK_FOR_FORMAT(tinyseek_rows_avx512_format);
}

// y[j] = Σ_p W[j, p]·x[p] for j in [rowsBegin, rowsEnd), W float32 with row stride `cols`: the
// batch-1 matvec (`WeightKernels.matvec` with AVX-512 and every-line prefetching). One row at a
// time, 64 weights a step in four accumulators, the step's four lines prefetched `ahead` bytes on
// into L2 while that stays below `limit` bytes from `w` (the matrix's end). Against the AVX2
// kernel, alternating decode steps of the F32 benchmark model took 0.92-0.94× as long (4 KB
// ahead; 2 KB: 0.97×, 8 KB: 0.95×); in BF16 the same tile gained nothing (0.98-1.01× at 4, 8 and
// 16 KB), so the 16-bit formats keep the AVX2 kernel.
static TINYSEEK_AVX512
void tinyseek_matvec_f32_avx512(const float *w, long cols, long rowsBegin, long rowsEnd,
                                const float *x, float *y, long ahead, long limit) {
    for (long j = rowsBegin; j < rowsEnd; j++) {
        const float *row = w + j * cols;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        long p = 0;
        for (; p + 64 <= cols; p += 64) {
            const long o = (j * cols + p) * 4 + ahead;
            if (o + 192 < limit) {
                const char *line = (const char *)w + o;
                _mm_prefetch(line, _MM_HINT_T1);
                _mm_prefetch(line + 64, _MM_HINT_T1);
                _mm_prefetch(line + 128, _MM_HINT_T1);
                _mm_prefetch(line + 192, _MM_HINT_T1);
            }
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(row + p), _mm512_loadu_ps(x + p), a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(row + p + 16), _mm512_loadu_ps(x + p + 16), a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(row + p + 32), _mm512_loadu_ps(x + p + 32), a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(row + p + 48), _mm512_loadu_ps(x + p + 48), a3);
        }
        for (; p < cols; p += 16) {
            __mmask16 mask = cols - p >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cols - p)) - 1);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, row + p), _mm512_maskz_loadu_ps(mask, x + p), a0);
        }
        y[j] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    }
}

#undef TINYSEEK_AVX512
#endif

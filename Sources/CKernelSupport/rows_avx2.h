// The few-rows product y[i, j] = Σ_p W[j, p]·x[i, p] (m ≤ 16 rows of x, any weight format) in
// AVX2 + FMA: what `WeightKernels.smallBatch` runs on CPUs without AVX-512 (rows_avx512.h has the
// 512-bit twin; the layout and the reasons are the same).
//
// The tile: two rows of W against up to six rows of x, twelve 256-bit accumulators (with the two
// widened rows and a row of x, 15 of the 16 registers), 8 columns a step; m = 16 takes three
// passes, the later ones reading W's two rows from L1. Q8_0's block scale is loaded once per 32
// weights (loading it every 8 made the kernel 1.7× slower than the Swift one it replaced); each
// line of both rows is prefetched `ahead` bytes on into L2 (within the matrix); the last columns (width not a multiple
// of 8) are summed one by one.
//
// Measured against the Swift AVX2 kernel it replaced (with sgemm or decoded tiles + sgemm at 9-16
// rows for F32 and Q8_0), in decode steps alternating between the two inside one run, on the Xeon
// host (which has AVX-512, so this is what an AVX2-only CPU would run, timed on this one): at 16
// sequences F32 steps took 0.80× as long, BF16 0.79×, Q8_0 0.90×; at 4 sequences 0.82×, 0.83×,
// 0.91×.
#ifndef TINYSEEK_ROWS_AVX2_H
#define TINYSEEK_ROWS_AVX2_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define TINYSEEK_AVX2 __attribute__((target("avx2,fma,f16c")))

// Storage formats, as `WeightMatrix.Storage` names them.
enum { TINYSEEK_F32 = 0, TINYSEEK_BF16 = 1, TINYSEEK_F16 = 2, TINYSEEK_Q8_0 = 3 };

// In a kernel's entry point: calls `specialized` (its body for one format) with the runtime
// `format` as a literal, so each format gets its own copy with the widening inlined and no branch
// in the loop. The entry points' parameters share these names.
#define TINYSEEK_FOR_FORMAT(specialized) \
    switch (format) { \
    case TINYSEEK_F32: specialized(w, scales, cols, TINYSEEK_F32, rowsBegin, rowsEnd, x, ldx, m, y, ldy, ahead, limit); break; \
    case TINYSEEK_BF16: specialized(w, scales, cols, TINYSEEK_BF16, rowsBegin, rowsEnd, x, ldx, m, y, ldy, ahead, limit); break; \
    case TINYSEEK_F16: specialized(w, scales, cols, TINYSEEK_F16, rowsBegin, rowsEnd, x, ldx, m, y, ldy, ahead, limit); break; \
    default: specialized(w, scales, cols, TINYSEEK_Q8_0, rowsBegin, rowsEnd, x, ldx, m, y, ldy, ahead, limit); break; \
    }

// Eight weights of row `j` from column `p` as floats (`scale`: the row's Q8_0 block scale there).
static inline __attribute__((always_inline)) TINYSEEK_AVX2
__m256 tinyseek_w8(const void *w, __m256 scale, long cols, int format, long j, long p) {
    switch (format) {
    case TINYSEEK_F32:
        return _mm256_loadu_ps((const float *)w + j * cols + p);
    case TINYSEEK_BF16: {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + j * cols + p));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    case TINYSEEK_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + j * cols + p)));
    default: {
        __m128i q = _mm_loadl_epi64((const __m128i *)((const int8_t *)w + j * cols + p));
        return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), scale);
    }
    }
}

// One weight W[j, p] as a float.
static inline __attribute__((always_inline)) TINYSEEK_AVX2
float tinyseek_w1(const void *w, const uint16_t *scales, long cols, long blocks, int format, long j, long p) {
    switch (format) {
    case TINYSEEK_F32: return ((const float *)w)[j * cols + p];
    case TINYSEEK_BF16: {
        uint32_t bits = (uint32_t)((const uint16_t *)w)[j * cols + p] << 16;
        float f;
        memcpy(&f, &bits, 4);
        return f;
    }
    case TINYSEEK_F16: return _cvtsh_ss(((const uint16_t *)w)[j * cols + p]);
    default: return (float)((const int8_t *)w)[j * cols + p] * _cvtsh_ss(scales[j * blocks + p / 32]);
    }
}

static inline __attribute__((always_inline)) TINYSEEK_AVX2 float tinyseek_hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// One pass: rows j and j + 1 of W (a lone last row is paired with itself, its twin dropped)
// against rows [0, rx) of x (rx ≤ 6, a literal once inlined).
static inline __attribute__((always_inline)) TINYSEEK_AVX2
void tinyseek_rows_avx2_pass(const void *w, const uint16_t *scales, long cols, long blocks, int format, int elementBytes,
                             long j, long rowsEnd, const float *x, long ldx, int rx, float *y, long ldy, long ahead,
                             long limit) {
    __m256 acc[12];
    _Pragma("clang loop unroll(full)")
    for (int a = 0; a < 12; a++) acc[a] = _mm256_setzero_ps();
    const long j1 = j + 1 < rowsEnd ? j + 1 : j;
    __m256 d0 = _mm256_setzero_ps(), d1 = d0;
    long p = 0;
    for (; p + 8 <= cols; p += 8) {
        if (ahead > 0 && ((p * elementBytes) & 63) == 0) {
            const long o0 = (j * cols + p) * elementBytes + ahead, o1 = (j1 * cols + p) * elementBytes + ahead;
            if (o0 < limit) _mm_prefetch((const char *)w + o0, _MM_HINT_T1);
            if (o1 < limit) _mm_prefetch((const char *)w + o1, _MM_HINT_T1);
        }
        if (format == TINYSEEK_Q8_0 && (p & 31) == 0) {
            d0 = _mm256_set1_ps(_cvtsh_ss(scales[j * blocks + p / 32]));
            d1 = _mm256_set1_ps(_cvtsh_ss(scales[j1 * blocks + p / 32]));
        }
        __m256 v0 = tinyseek_w8(w, d0, cols, format, j, p);
        __m256 v1 = tinyseek_w8(w, d1, cols, format, j1, p);
        _Pragma("clang loop unroll(full)")
        for (int r = 0; r < rx; r++) {
            __m256 xv = _mm256_loadu_ps(x + r * ldx + p);
            acc[r] = _mm256_fmadd_ps(v0, xv, acc[r]);
            acc[6 + r] = _mm256_fmadd_ps(v1, xv, acc[6 + r]);
        }
    }
    _Pragma("clang loop unroll(full)")
    for (int r = 0; r < rx; r++) {
        float s0 = tinyseek_hsum8(acc[r]), s1 = tinyseek_hsum8(acc[6 + r]);
        for (long q = p; q < cols; q++) {
            s0 += tinyseek_w1(w, scales, cols, blocks, format, j, q) * x[r * ldx + q];
            s1 += tinyseek_w1(w, scales, cols, blocks, format, j1, q) * x[r * ldx + q];
        }
        y[r * ldy + j] = s0;
        if (j1 != j) y[r * ldy + j1] = s1;
    }
}

// The whole product for one format (a literal once inlined).
static inline __attribute__((always_inline)) TINYSEEK_AVX2
void tinyseek_rows_avx2_format(const void *w, const uint16_t *scales, long cols, int format,
                               long rowsBegin, long rowsEnd, const float *x, long ldx, long m,
                               float *y, long ldy, long ahead, long limit) {
    const int elementBytes = format == TINYSEEK_F32 ? 4 : format == TINYSEEK_Q8_0 ? 1 : 2;
    const long blocks = (cols + 31) / 32;
#define TINYSEEK_PASS(RX) tinyseek_rows_avx2_pass(w, scales, cols, blocks, format, elementBytes, j, rowsEnd, \
                                                  x + i * ldx, ldx, RX, y + i * ldy, ldy, i == 0 ? ahead : 0, limit)
    for (long j = rowsBegin; j < rowsEnd; j += 2) {
        for (long i = 0; i < m; i += 6) {
            switch (m - i >= 6 ? 6 : (int)(m - i)) {
            case 6: TINYSEEK_PASS(6); break;
            case 5: TINYSEEK_PASS(5); break;
            case 4: TINYSEEK_PASS(4); break;
            case 3: TINYSEEK_PASS(3); break;
            case 2: TINYSEEK_PASS(2); break;
            default: TINYSEEK_PASS(1); break;
            }
        }
    }
#undef TINYSEEK_PASS
}

// y[i·ldy + j] = Σ_p W[j, p]·x[i·ldx + p] for i < m, j in [rowsBegin, rowsEnd), W in `format`
// (`w` the values, row stride `cols`; `scales` Q8_0's half-precision block scales, ⌈cols/32⌉ a
// row). `ahead`: bytes past the pass's position to prefetch into L2 (0: none), never at or past
// `limit` bytes from `w` (the matrix's end: a view inside a larger tensor must not pull in the
// rows after it, which nobody reads).
static TINYSEEK_AVX2
void tinyseek_rows_avx2(const void *w, const uint16_t *scales, long cols, int format,
                        long rowsBegin, long rowsEnd, const float *x, long ldx, long m,
                        float *y, long ldy, long ahead, long limit) {
    TINYSEEK_FOR_FORMAT(tinyseek_rows_avx2_format);
}

#undef TINYSEEK_AVX2
#endif

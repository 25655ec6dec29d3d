// Small x86-64 helpers for the weight kernels, header-only so Swift inlines them into its loops:
// software prefetch (Swift has no prefetch intrinsic), the widening conversions of 8 weights to
// 8 floats (the standard library's generic SIMD conversions are not reliably inlined: inside a
// larger loop they became a call per 8 weights), the Q8_0 matvec's int16 activations and
// integer block dot, the CPU feature checks, and (rows_avx2.h, rows_avx512.h) the few-rows
// products and the AVX-512 F32 matvec.
#ifndef TINYSEEK_KERNEL_SUPPORT_H
#define TINYSEEK_KERNEL_SUPPORT_H

#include <cpuid.h>
#include <stdint.h>
#include <string.h>

// Asks for the cache line holding `p` to be loaded into all cache levels (a hint: never faults).
static inline __attribute__((always_inline)) void tinyseek_prefetch(const void *p) {
    __builtin_prefetch(p, 0, 3);
}

// The same into L2 and outward only (prefetcht1): for data needed a few microseconds later,
// which would otherwise push the current working set out of L1.
static inline __attribute__((always_inline)) void tinyseek_prefetch_l2(const void *p) {
    __builtin_prefetch(p, 0, 2);
}

// 8 lanes of float, imported by Swift as SIMD8<Float>.
typedef float tinyseek_float8 __attribute__((ext_vector_type(8)));
typedef int32_t tinyseek_int8x8 __attribute__((ext_vector_type(8)));
typedef int32_t tinyseek_i32x8 __attribute__((ext_vector_type(8)));

// 8 signed bytes at `p` (any alignment) as 8 floats: sign-extend (vpmovsxbd), convert (vcvtdq2ps).
static inline __attribute__((always_inline)) tinyseek_float8 tinyseek_i8x8_to_f32(const int8_t *p) {
    typedef int8_t i8x8 __attribute__((ext_vector_type(8)));
    i8x8 bytes;
    memcpy(&bytes, p, 8);
    return __builtin_convertvector(__builtin_convertvector(bytes, tinyseek_int8x8), tinyseek_float8);
}

// 8 bfloat16 at `p` (2-byte aligned or not) as 8 floats: zero-extend to 32 bits (vpmovzxwd), shift
// into the high half (vpslld).
static inline __attribute__((always_inline)) tinyseek_float8 tinyseek_bf16x8_to_f32(const uint16_t *p) {
    typedef uint16_t u16x8 __attribute__((ext_vector_type(8)));
    typedef uint32_t u32x8 __attribute__((ext_vector_type(8)));
    u16x8 halves;
    memcpy(&halves, p, 16);
    u32x8 wide = __builtin_convertvector(halves, u32x8) << 16;
    tinyseek_float8 out;
    memcpy(&out, &wide, 32);
    return out;
}

// Q8_0 × int16 activations (the Q8_0 matvec; see `WeightKernels.matvecQ8`).
typedef int16_t tinyseek_i16x16 __attribute__((ext_vector_type(16)));
typedef int32_t tinyseek_i32x16 __attribute__((ext_vector_type(16)));

// One block of 32 floats as int16 with one scale: d = max|x| / 32767, q = x / d rounded to nearest
// even (|q| ≤ 32767). Returns d: 0 for an all-zero block (q then all 0), NaN when the block holds
// a NaN or an infinity (so the block's product is NaN: nothing non-finite is rounded away).
static inline __attribute__((always_inline)) float tinyseek_quantize_i16(const float *x, int16_t *q) {
    tinyseek_float8 v0, v1, v2, v3;
    memcpy(&v0, x, 32); memcpy(&v1, x + 8, 32); memcpy(&v2, x + 16, 32); memcpy(&v3, x + 24, 32);
    tinyseek_float8 m = __builtin_elementwise_max(
        __builtin_elementwise_max(__builtin_elementwise_abs(v0), __builtin_elementwise_abs(v1)),
        __builtin_elementwise_max(__builtin_elementwise_abs(v2), __builtin_elementwise_abs(v3)));
    float amax = __builtin_reduce_max(m);
    float inv = amax > 0 ? 32767.0f / amax : 0.0f;
    tinyseek_i32x8 i0 = __builtin_convertvector(__builtin_elementwise_roundeven(v0 * inv), tinyseek_i32x8);
    tinyseek_i32x8 i1 = __builtin_convertvector(__builtin_elementwise_roundeven(v1 * inv), tinyseek_i32x8);
    tinyseek_i32x8 i2 = __builtin_convertvector(__builtin_elementwise_roundeven(v2 * inv), tinyseek_i32x8);
    tinyseek_i32x8 i3 = __builtin_convertvector(__builtin_elementwise_roundeven(v3 * inv), tinyseek_i32x8);
    tinyseek_i16x16 lo = __builtin_convertvector(__builtin_shufflevector(i0, i1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), tinyseek_i16x16);
    tinyseek_i16x16 hi = __builtin_convertvector(__builtin_shufflevector(i2, i3, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), tinyseek_i16x16);
    memcpy(q, &lo, 32); memcpy(q + 16, &hi, 32);
    // 0 when every lane is finite, NaN otherwise (x·0 is NaN for NaN and ±∞).
    tinyseek_float8 z = (v0 * 0.0f + v1 * 0.0f) + (v2 * 0.0f + v3 * 0.0f);
    float finite = ((z[0] + z[1]) + (z[2] + z[3])) + ((z[4] + z[5]) + (z[6] + z[7]));
    return amax / 32767.0f + finite;
}

// Σ w[i]·q[i] over one block of 32 int8 weights and 32 int16 activations, exactly, as 8 int32
// partial sums (each of 4 products, |sum| < 2²⁴) converted to float: widen the weights to int16
// (vpmovsxbw), multiply pairs and add them (vpmaddwd), add the two halves (vpaddd).
static inline __attribute__((always_inline)) tinyseek_float8 tinyseek_dot_q8_i16(const int8_t *w, const int16_t *q) {
    typedef int8_t i8x16 __attribute__((ext_vector_type(16)));
    i8x16 w0, w1;
    tinyseek_i16x16 q0, q1;
    memcpy(&w0, w, 16); memcpy(&w1, w + 16, 16);
    memcpy(&q0, q, 32); memcpy(&q1, q + 16, 32);
    tinyseek_i32x16 p0 = __builtin_convertvector(__builtin_convertvector(w0, tinyseek_i16x16), tinyseek_i32x16)
                       * __builtin_convertvector(q0, tinyseek_i32x16);
    tinyseek_i32x16 p1 = __builtin_convertvector(__builtin_convertvector(w1, tinyseek_i16x16), tinyseek_i32x16)
                       * __builtin_convertvector(q1, tinyseek_i32x16);
    tinyseek_i32x8 s0 = __builtin_shufflevector(p0, p0, 0, 2, 4, 6, 8, 10, 12, 14) + __builtin_shufflevector(p0, p0, 1, 3, 5, 7, 9, 11, 13, 15);
    tinyseek_i32x8 s1 = __builtin_shufflevector(p1, p1, 0, 2, 4, 6, 8, 10, 12, 14) + __builtin_shufflevector(p1, p1, 1, 3, 5, 7, 9, 11, 13, 15);
    return __builtin_convertvector(s0 + s1, tinyseek_float8);
}

// out[i] = half(d[i])·x[i] for i < n: a row's Q8_0 block scales (IEEE half) times x's block
// scales, 8 at a time (vcvtph2ps), then one at a time.
static inline __attribute__((always_inline)) void tinyseek_q8_row_scales(const uint16_t *d, const float *x, float *out, long n) {
    typedef _Float16 h8 __attribute__((ext_vector_type(8)));
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        h8 h; tinyseek_float8 v;
        memcpy(&h, d + i, 16); memcpy(&v, x + i, 32);
        tinyseek_float8 r = __builtin_convertvector(h, tinyseek_float8) * v;
        memcpy(out + i, &r, 32);
    }
    for (; i < n; i++) {
        _Float16 h; memcpy(&h, d + i, 2);
        out[i] = (float)h * x[i];
    }
}

// The horizontal sums of eight vectors as one vector, [Σa0, Σa1, ..., Σa7]: six pairwise adds
// and one add across the halves (the hadd/vperm2f128 pattern) instead of eight reductions.
#define TINYSEEK_HADD(a, b) (__builtin_shufflevector(a, b, 0, 2, 8, 10, 4, 6, 12, 14) \
                             + __builtin_shufflevector(a, b, 1, 3, 9, 11, 5, 7, 13, 15))
static inline __attribute__((always_inline)) tinyseek_float8 tinyseek_hsum8x8(
    tinyseek_float8 a0, tinyseek_float8 a1, tinyseek_float8 a2, tinyseek_float8 a3,
    tinyseek_float8 a4, tinyseek_float8 a5, tinyseek_float8 a6, tinyseek_float8 a7) {
    // lo = [Σ0..3 of a0..a3, Σ4..7 of a0..a3]; hi the same for a4..a7.
    tinyseek_float8 lo = TINYSEEK_HADD(TINYSEEK_HADD(a0, a1), TINYSEEK_HADD(a2, a3));
    tinyseek_float8 hi = TINYSEEK_HADD(TINYSEEK_HADD(a4, a5), TINYSEEK_HADD(a6, a7));
    return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 8, 9, 10, 11)
         + __builtin_shufflevector(lo, hi, 4, 5, 6, 7, 12, 13, 14, 15);
}
#undef TINYSEEK_HADD

// 1 when the CPU has AVX2 and FMA and the OS saves the YMM state (the package's baseline; what
// OpenBLAS's Haswell kernels need).
static inline int tinyseek_has_avx2_fma(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!fma || !osxsave || !avx) return 0;
    unsigned xcr0, xcr0High;
    __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(xcr0High) : "c"(0));
    if ((xcr0 & 0x6) != 0x6) return 0;  // XMM and YMM state
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 5) & 1;
}

// 1 when the CPU also has AVX-512 F, DQ, BW and VL and the OS saves the opmask and ZMM state
// (`VectorISA`'s .avx512; OpenBLAS's SkylakeX kernels).
static inline int tinyseek_has_avx512(void) {
    if (!tinyseek_has_avx2_fma()) return 0;
    unsigned a, b, c, d, xcr0, xcr0High;
    __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(xcr0High) : "c"(0));
    if ((xcr0 & 0xe0) != 0xe0) return 0;  // opmask, ZMM 0-15 upper halves, ZMM 16-31
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
}

// 1 when CPUID's vendor string is "GenuineIntel" (for `StreamPrefetch`'s default).
static inline int tinyseek_cpu_is_intel(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
    return b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e;  // "Genu" "ineI" "ntel"
}

// The few-rows kernels in AVX2 and, compiled for AVX-512 per function and called only when it is
// there, the AVX-512 kernels.
#include "rows_avx2.h"
#include "rows_avx512.h"

#endif

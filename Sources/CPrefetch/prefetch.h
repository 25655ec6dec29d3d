// Small x86-64 helpers for the weight kernels, header-only so Swift inlines them into its loops:
// software prefetch (Swift has no prefetch intrinsic) and the widening conversions of 8 weights
// to 8 floats (the standard library's generic SIMD conversions are not reliably inlined: inside
// a larger loop they became a call per 8 weights).
#ifndef TINYSEEK_PREFETCH_H
#define TINYSEEK_PREFETCH_H

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

#endif

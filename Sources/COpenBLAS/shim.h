#ifndef TINYSEEK_COPENBLAS_SHIM_H
#define TINYSEEK_COPENBLAS_SHIM_H
#include <cblas.h>
#include <cpuid.h>
#include <stddef.h>

// The OpenBLAS kernel family (an OPENBLAS_CORETYPE value) that OpenBLAS's own detection gives a
// CPU with this one's instruction sets when it knows the model: "SkylakeX" with AVX-512
// (F, DQ, BW, VL) enabled by the OS, "Haswell" with AVX2 and FMA, NULL below that. Read from
// CPUID and XGETBV (which state the OS saves), not from the model number OpenBLAS keys on.
static inline const char *tinyseek_openblas_core_for_isa(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return NULL;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!fma || !osxsave || !avx) return NULL;
    unsigned xcr0, xcr0High;
    __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(xcr0High) : "c"(0));
    if ((xcr0 & 0x6) != 0x6) return NULL;  // the OS saves XMM and YMM state
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return NULL;
    const int avx2 = (b >> 5) & 1;
    const int avx512 = ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
    if (!avx2) return NULL;
    if (avx512 && (xcr0 & 0xe0) == 0xe0) return "SkylakeX";  // ... and opmask and ZMM state
    return "Haswell";
}
#endif

// Software prefetch for the streaming matvec kernels (Swift has no prefetch intrinsic).
// Header-only: Swift inlines these static functions into its own loops.
#ifndef TINYSEEK_PREFETCH_H
#define TINYSEEK_PREFETCH_H

// Asks for the cache line holding `p` to be loaded into all cache levels (a hint: never faults).
static inline __attribute__((always_inline)) void tinyseek_prefetch(const void *p) {
    __builtin_prefetch(p, 0, 3);
}

// The same into L2 and outward only (prefetcht1): for data needed a few microseconds later,
// which would otherwise push the current working set out of L1.
static inline __attribute__((always_inline)) void tinyseek_prefetch_l2(const void *p) {
    __builtin_prefetch(p, 0, 2);
}

#endif

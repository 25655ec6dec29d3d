// Counts the heap allocations made by the calling thread, for tests that check a loop allocates
// nothing (decode). Linked into the test binary only, where it replaces malloc and friends and
// forwards to glibc's own; elsewhere (not glibc) the count is -1 and such tests are skipped.
#pragma once

/// Allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) this thread has
/// made so far, or -1 where the counter is not available.
long tinyseek_thread_allocations(void);

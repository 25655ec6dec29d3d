#include "allocation_counter.h"

#include <errno.h>   // first: on glibc it defines __GLIBC__, which the check below needs
#include <stddef.h>

#if defined(__linux__) && defined(__GLIBC__)
// glibc's allocator under its internal names: forwarding to these (not dlsym) cannot recurse.
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

// Per thread: tests run in parallel, and only the thread running the loop under test matters.
static __thread long allocations;

long tinyseek_thread_allocations(void) { return allocations; }

void *malloc(size_t n) { allocations++; return __libc_malloc(n); }
void *calloc(size_t count, size_t n) { allocations++; return __libc_calloc(count, n); }
void *realloc(void *p, size_t n) { allocations++; return __libc_realloc(p, n); }
void *memalign(size_t alignment, size_t n) { allocations++; return __libc_memalign(alignment, n); }
void *aligned_alloc(size_t alignment, size_t n) { allocations++; return __libc_memalign(alignment, n); }
int posix_memalign(void **out, size_t alignment, size_t n) {
    allocations++;
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    void *p = __libc_memalign(alignment, n);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}
#else
long tinyseek_thread_allocations(void) { return -1; }
#endif

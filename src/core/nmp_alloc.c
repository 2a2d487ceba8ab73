/* nmp_alloc.c: the library's heap, with failure injection for out-of-memory tests */
#include "nmp_internal.h"

#include <stdatomic.h>
#include <stdlib.h>

static atomic_llong fail_after = -1; /* allocation number that fails first; -1: never */
static atomic_llong count;           /* allocations made so far */

void nmp_alloc_fail_after(int64_t k)
{
    atomic_store(&count, 0);
    atomic_store(&fail_after, k < 0 ? -1 : (long long)k);
}

int64_t nmp_alloc_count(void)
{
    return (int64_t)atomic_load(&count);
}

/* true when this allocation is to fail (the k-th and all later ones) */
static bool injected_failure(void)
{
    long long k = atomic_fetch_add(&count, 1);
    long long f = atomic_load(&fail_after);
    return f >= 0 && k >= f;
}

void *nmp_malloc(size_t size)
{
    if (injected_failure())
        return NULL;
    return malloc(size ? size : 1);
}

void *nmp_calloc(size_t n, size_t size)
{
    if (injected_failure())
        return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *nmp_realloc(void *p, size_t size)
{
    if (injected_failure())
        return NULL;
    return realloc(p, size ? size : 1);
}

void nmp_free(void *p)
{
    free(p);
}

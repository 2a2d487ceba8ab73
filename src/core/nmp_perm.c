/* nmp_perm.c: channel permutations, perm[k] = source column of slot k */
#include "nmp_internal.h"

#include <stdlib.h>
#include <string.h>

/* NMP_OK if perm is a bijection on 0..n-1, NMP_ERR_ARG if not, NMP_ERR_NOMEM if the n bytes of
 * scratch could not be had (kept apart so that running out of memory is not reported as a bad
 * permutation). */
nmp_err nmp_perm_check(const int32_t *perm, int64_t n)
{
    if (!perm || n < 0)
        return NMP_ERR_ARG;
    uint8_t *seen = nmp_calloc((size_t)n, 1);
    if (!seen)
        return NMP_ERR_NOMEM;
    int ok = 1;
    for (int64_t k = 0; ok && k < n; k++) {
        const int32_t c = perm[k];
        ok = c >= 0 && c < n && !seen[c];
        if (ok)
            seen[c] = 1;
    }
    nmp_free(seen);
    return ok ? NMP_OK : NMP_ERR_ARG;
}

int nmp_perm_is_valid(const int32_t *perm, int64_t n)
{
    return nmp_perm_check(perm, n) == NMP_OK;
}

void nmp_perm_identity(int32_t *perm, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        perm[k] = (int32_t)k;
}

/* pinv[perm[k]] = k */
void nmp_perm_invert(const int32_t *perm, int32_t *pinv, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        pinv[perm[k]] = (int32_t)k;
}

/* out[k] = p[q[k]] */
void nmp_perm_compose(const int32_t *p, const int32_t *q, int32_t *out, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        out[k] = p[q[k]];
}

static int cmp_i32(const void *a, const void *b)
{
    const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Sort each group's columns, then order the groups by their smallest column (an insertion sort of
 * whole groups: a permutation of groups needs no scratch and n/m is small next to the solve). */
void nmp_perm_canonical(int32_t *perm, int64_t n, int m)
{
    const int64_t groups = n / m;
    for (int64_t g = 0; g < groups; g++)
        qsort(perm + g * m, (size_t)m, sizeof *perm, cmp_i32);
    int32_t tmp[NMP_MAX_M];
    for (int64_t g = 1; g < groups; g++) {
        memcpy(tmp, perm + g * m, (size_t)m * sizeof *perm);
        int64_t h = g;
        while (h > 0 && perm[(h - 1) * m] > tmp[0]) {
            memcpy(perm + h * m, perm + (h - 1) * m, (size_t)m * sizeof *perm);
            h--;
        }
        memcpy(perm + h * m, tmp, (size_t)m * sizeof *perm);
    }
}

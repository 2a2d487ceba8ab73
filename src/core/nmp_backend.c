/* nmp_backend.c: the scoring backend table (BLIS-style context) and its CPU reference entries;
 * gpu/ overrides entries through nmp_backend.release (see gpu/nmp_device.c) */
#include "nmp_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------- reference entries */

static nmp_err ref_score_groups(const nmp_backend *be, const int32_t *perm, double *out)
{
    return nmp_score_groups(be->pb, perm, out);
}

/* out[t] = nmp_eval_swap_delta(a, b[t]) on a fresh eval of perm: O(rows * cols) to build the
 * cached state, then O(rows) per slot b. */
static nmp_err ref_swap_deltas(const nmp_backend *be, const int32_t *perm, int64_t a,
                               const int64_t *b, int64_t count, double *out)
{
    nmp_err e = NMP_OK;
    nmp_eval *ev = NULL;
    const int64_t cols = be->pb->cols;
    if (a < 0 || a >= cols || count < 0 || (count > 0 && (!b || !out)))
        return NMP_ERR_ARG;
    for (int64_t t = 0; t < count; t++)
        if (b[t] < 0 || b[t] >= cols)
            return NMP_ERR_ARG;
    NMP_TRY(e, nmp_eval_create(be->pb, perm, &ev));
    for (int64_t t = 0; t < count; t++)
        out[t] = nmp_eval_swap_delta(ev, a, b[t]);
out:
    nmp_eval_free(ev);
    return e;
}

int64_t nmp_backend_split_count(int m)
{
    int64_t c = 1; /* C(2m-1, m-1), exact in int64 for m <= 32 step by step */
    for (int t = 1; t <= m - 1; t++)
        c = c * (m + t) / t;
    return m >= 1 ? c : 0;
}

static int popcount(uint32_t x)
{
    int c = 0;
    for (; x; x &= x - 1)
        c++;
    return c;
}

/* Masks over 2m bits with m bits set and bit 0 set, increasing: the splits of a window. */
static int64_t list_masks(int m, uint32_t *masks)
{
    int64_t count = 0;
    for (uint32_t mask = 1; mask < (1u << (2 * m)); mask += 2)
        if (popcount(mask) == m)
            masks[count++] = mask;
    return count;
}

/* sum_j topn(A) + topn(B), A = window columns with mask bit set, B the others */
double nmp_backend_split_value(const nmp_problem *pb, const int32_t *perm, int64_t g, int64_t h,
                              uint32_t mask)
{
    const int m = pb->m;
    int32_t first[NMP_MAX_M], second[NMP_MAX_M];
    int na = 0, nb = 0;
    for (int t = 0; t < 2 * m; t++) {
        const int64_t slot = t < m ? g * m + t : h * m + (t - m);
        const int32_t col = perm ? perm[slot] : (int32_t)slot;
        if ((mask >> t) & 1u) {
            if (na < m)
                first[na] = col;
            na++;
        } else {
            if (nb < m)
                second[nb] = col;
            nb++;
        }
    }
    if (na != m || nb != m)
        return -INFINITY;
    return nmp_score_group_value(pb, first) + nmp_score_group_value(pb, second);
}

/* gain[p] = max_mask value(mask) - value(identity split), first maximum in mask order; the
 * identity split (bits 0..m-1) is the smallest mask, so gain >= 0 exactly. */
static nmp_err ref_window_repartitions(const nmp_backend *be, const int32_t *perm, double *gain,
                                       uint32_t *mask)
{
    nmp_err e = NMP_OK;
    const nmp_problem *pb = be->pb;
    const int m = pb->m;
    const int64_t groups = pb->groups;
    uint32_t *masks = NULL;
    if (2 * m > 16)
        return NMP_ERR_UNSUPPORTED;
    if (perm)
        NMP_TRY(e, nmp_perm_check(perm, pb->cols));
    masks = nmp_malloc((size_t)nmp_backend_split_count(m) * sizeof *masks);
    if (!masks) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    const int64_t nmasks = list_masks(m, masks);
    int64_t p = 0;
    for (int64_t g = 0; g < groups; g++)
        for (int64_t h = g + 1; h < groups; h++, p++) {
            const double cur = nmp_backend_split_value(pb, perm, g, h, masks[0]);
            double best = cur;
            uint32_t arg = masks[0];
            for (int64_t q = 1; q < nmasks; q++) {
                const double v = nmp_backend_split_value(pb, perm, g, h, masks[q]);
                if (v > best) {
                    best = v;
                    arg = masks[q];
                }
            }
            gain[p] = best - cur;
            mask[p] = arg;
        }
out:
    nmp_free(masks);
    return e;
}

/* rc[i] = max over m-subsets S with min S = i of D(S) - y(S), enumerated in lexicographic order
 * (first maximum kept). O(C(cols, m) * rows * m): a reference for small cols. */
static nmp_err ref_pricing(const nmp_backend *be, const double *y, double *rc, int32_t *cols)
{
    const nmp_problem *pb = be->pb;
    const int m = pb->m;
    const int64_t c = pb->cols;
    double subsets = 1;
    for (int t = 0; t < m; t++)
        subsets = subsets * (double)(c - t) / (t + 1);
    if (m > 8 || subsets > 1099511627776.0)
        return NMP_ERR_UNSUPPORTED;
    for (int64_t i = 0; i < c; i++) {
        int32_t s[NMP_MAX_M];
        rc[i] = -INFINITY;
        for (int t = 0; t < m; t++)
            cols[i * m + t] = -1;
        if (i > c - m)
            continue;
        for (int t = 0; t < m; t++)
            s[t] = (int32_t)(i + t);
        for (;;) {
            double v = nmp_score_group_value(pb, s);
            for (int t = 0; t < m; t++)
                v -= y[s[t]];
            if (v > rc[i]) {
                rc[i] = v;
                memcpy(cols + i * m, s, (size_t)m * sizeof *s);
            }
            int t = m - 1; /* next combination of s[1..m-1] within i+1 .. c-1 */
            while (t >= 1 && s[t] == c - m + t)
                t--;
            if (t < 1)
                break;
            s[t]++;
            for (int u = t + 1; u < m; u++)
                s[u] = s[u - 1] + 1;
        }
    }
    return NMP_OK;
}

void nmp_backend_init_cpu(nmp_backend *be, const nmp_problem *pb)
{
    memset(be, 0, sizeof *be);
    be->name = "cpu";
    be->pb = pb;
    be->score_groups = ref_score_groups;
    be->swap_deltas = ref_swap_deltas;
    be->window_repartitions = ref_window_repartitions;
    be->pricing = ref_pricing;
}
void nmp_backend_release(nmp_backend *be)
{
    if (!be)
        return;
    if (be->release)
        be->release(be); /* frees the device state and restores the reference */
    be->dev = NULL;
    be->release = NULL;
}

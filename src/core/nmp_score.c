/* nmp_score.c: kept saliency under N:M pruning: totals, per-group scores, bounds, efficacy */
#include "nmp_internal.h"

/* sum = v(1) + ... + v(n), vn = v(n), vn1 = v(n+1) for v sorted decreasingly (n < m <= 32).
 * Insertion into a sorted buffer of the n+1 largest: O(m * n), branchy but m is small; the 2:4
 * paths below avoid it. */
void nmp_topn(const float *v, int m, int n, float *sum, float *vn, float *vn1)
{
    float top[NMP_MAX_M + 1];
    int len = 0;
    for (int t = 0; t < m; t++) {
        const float x = v[t];
        int p = len < n + 1 ? len++ : n + 1;
        if (p == n + 1 && x <= top[n])
            continue;
        while (p > 0 && top[p - 1] < x) {
            if (p <= n)
                top[p] = top[p - 1];
            p--;
        }
        top[p] = x;
    }
    float s = 0;
    for (int t = 0; t < n; t++)
        s += top[t];
    *sum = s;
    *vn = top[n - 1];
    *vn1 = top[n];
}

/* 2:4 fast path: top two of (x0, x1, x2, x3) with a four-element min/max network. */
static inline float top2of4(float x0, float x1, float x2, float x3)
{
    const float a = NMP_MAX(x0, x1), b = NMP_MIN(x0, x1);
    const float c = NMP_MAX(x2, x3), d = NMP_MIN(x2, x3);
    return NMP_MAX(a, c) + NMP_MAX(NMP_MIN(a, c), NMP_MAX(b, d));
}

/* D(q) = sum_j topn(s(j, q)) for the m source columns cols[0..m-1] */
double nmp_score_group_value(const nmp_problem *pb, const int32_t *cols)
{
    const int64_t rows = pb->rows;
    const int m = pb->m, n = pb->n;
    double total = 0;
    if (m == 4 && n == 2) {
        const float *c0 = nmp_col(pb, cols[0]), *c1 = nmp_col(pb, cols[1]);
        const float *c2 = nmp_col(pb, cols[2]), *c3 = nmp_col(pb, cols[3]);
        for (int64_t j = 0; j < rows; j++)
            total += (double)top2of4(c0[j], c1[j], c2[j], c3[j]);
        return total;
    }
    const float *c[NMP_MAX_M];
    float v[NMP_MAX_M], sum, vn, vn1;
    for (int t = 0; t < m; t++)
        c[t] = nmp_col(pb, cols[t]);
    for (int64_t j = 0; j < rows; j++) {
        for (int t = 0; t < m; t++)
            v[t] = c[t][j];
        nmp_topn(v, m, n, &sum, &vn, &vn1);
        total += (double)sum;
    }
    return total;
}

/* out[g] = D(perm[g*m .. g*m+m-1]); groups are independent, so OpenMP splits them. */
void nmp_score_groups_raw(const nmp_problem *pb, const int32_t *perm, double *out)
{
    const int64_t groups = pb->groups;
    const int m = pb->m;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (pb->rows * pb->cols > (1 << 20))
#endif
    for (int64_t g = 0; g < groups; g++) {
        int32_t ident[NMP_MAX_M];
        const int32_t *cols = perm ? perm + g * m : ident;
        for (int t = 0; t < m; t++)
            ident[t] = (int32_t)(g * m + t);
        out[g] = nmp_score_group_value(pb, cols);
    }
}

nmp_err nmp_score_groups(const nmp_problem *pb, const int32_t *perm, double *out)
{
    const nmp_err e = perm ? nmp_perm_check(perm, pb->cols) : NMP_OK;
    if (e != NMP_OK)
        return e;
    nmp_score_groups_raw(pb, perm, out);
    return NMP_OK;
}

/* kept = sum_g D(group g), summed in group order so the result does not depend on threads */
nmp_err nmp_score(const nmp_problem *pb, const int32_t *perm, double *kept)
{
    nmp_err e = NMP_OK;
    double *gs = nmp_malloc((size_t)pb->groups * sizeof *gs);
    if (!gs) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    NMP_TRY(e, nmp_score_groups(pb, perm, gs));
    double total = 0;
    for (int64_t g = 0; g < pb->groups; g++)
        total += gs[g];
    *kept = total;
out:
    nmp_free(gs);
    return e;
}

double nmp_score_identity(const nmp_problem *pb) { return pb->identity; }
double nmp_score_total(const nmp_problem *pb) { return pb->total; }
double nmp_score_row_bound(const nmp_problem *pb) { return pb->row_bound; }

/* (kept - identity) / (row bound - identity) */
double nmp_score_efficacy(const nmp_problem *pb, double kept)
{
    const double room = pb->row_bound - pb->identity;
    return room > 0 ? (kept - pb->identity) / room : 0.0;
}

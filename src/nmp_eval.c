/* nmp_eval.c: cached per-(row, group) top-n state and O(rows) exact move deltas */
#include "nmp_internal.h"

#include <string.h>

/* Rows per float partial sum of a delta; the partial sums are added in double, which keeps the
 * rounding error of a delta near float epsilon times 64 terms however tall the matrix is. */
#define BLOCK 64

/* The state of group g from scratch: for each row the top-n sum, n-th and (n+1)-th largest. */
static void refresh_group(nmp_eval *ev, int64_t g)
{
    const nmp_problem *pb = ev->pb;
    const int64_t rows = pb->rows;
    const int m = pb->m, n = pb->n;
    const int32_t *cols = ev->perm + g * m;
    float *sum = ev->sum + g * rows, *vn = ev->vn + g * rows, *vn1 = ev->vn1 + g * rows;
    double total = 0;
    if (m == 4 && n == 2) {
        const float *c0 = nmp_col(pb, cols[0]), *c1 = nmp_col(pb, cols[1]);
        const float *c2 = nmp_col(pb, cols[2]), *c3 = nmp_col(pb, cols[3]);
        for (int64_t j = 0; j < rows; j++) {
            const float a = NMP_MAX(c0[j], c1[j]), b = NMP_MIN(c0[j], c1[j]);
            const float c = NMP_MAX(c2[j], c3[j]), d = NMP_MIN(c2[j], c3[j]);
            const float lo_top = NMP_MIN(a, c), hi_bot = NMP_MAX(b, d);
            const float first = NMP_MAX(a, c), second = NMP_MAX(lo_top, hi_bot);
            sum[j] = first + second;
            vn[j] = second;
            vn1[j] = NMP_MAX(NMP_MIN(lo_top, hi_bot), NMP_MIN(b, d));
            total += (double)sum[j];
        }
    } else {
        const float *c[NMP_MAX_M];
        float v[NMP_MAX_M];
        for (int t = 0; t < m; t++)
            c[t] = nmp_col(pb, cols[t]);
        for (int64_t j = 0; j < rows; j++) {
            for (int t = 0; t < m; t++)
                v[t] = c[t][j];
            nmp_topn(v, m, n, &sum[j], &vn[j], &vn1[j]);
            total += (double)sum[j];
        }
    }
    ev->score += total - ev->gscore[g];
    ev->gscore[g] = total;
}

nmp_err nmp_eval_create(const nmp_problem *pb, const int32_t *perm, nmp_eval **out)
{
    nmp_err e = NMP_OK;
    const size_t cells = (size_t)pb->groups * (size_t)pb->rows;
    nmp_eval *ev = nmp_calloc(1, sizeof *ev);
    *out = NULL;
    if (!ev) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    ev->pb = pb;
    ev->perm = nmp_malloc((size_t)pb->cols * sizeof *ev->perm);
    ev->sum = nmp_malloc(cells * sizeof *ev->sum);
    ev->vn = nmp_malloc(cells * sizeof *ev->vn);
    ev->vn1 = nmp_malloc(cells * sizeof *ev->vn1);
    ev->gscore = nmp_calloc((size_t)pb->groups, sizeof *ev->gscore);
    if (!ev->perm || !ev->sum || !ev->vn || !ev->vn1 || !ev->gscore) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    if (perm)
        NMP_TRY(e, nmp_perm_check(perm, pb->cols));
    nmp_eval_reset(ev, perm);
    *out = ev;
    ev = NULL;
out:
    nmp_eval_free(ev);
    return e;
}

void nmp_eval_free(nmp_eval *ev)
{
    if (!ev)
        return;
    nmp_free(ev->perm);
    nmp_free(ev->sum);
    nmp_free(ev->vn);
    nmp_free(ev->vn1);
    nmp_free(ev->gscore);
    nmp_free(ev);
}

void nmp_eval_reset(nmp_eval *ev, const int32_t *perm)
{
    const nmp_problem *pb = ev->pb;
    if (perm)
        memcpy(ev->perm, perm, (size_t)pb->cols * sizeof *perm);
    else
        nmp_perm_identity(ev->perm, pb->cols);
    memset(ev->gscore, 0, (size_t)pb->groups * sizeof *ev->gscore);
    ev->score = 0;
    for (int64_t g = 0; g < pb->groups; g++)
        refresh_group(ev, g);
    /* a fresh sum in group order, free of the incremental updates' rounding */
    ev->score = 0;
    for (int64_t g = 0; g < pb->groups; g++)
        ev->score += ev->gscore[g];
}

const nmp_problem *nmp_eval_problem(const nmp_eval *ev) { return ev->pb; }
const int32_t *nmp_eval_perm(const nmp_eval *ev) { return ev->perm; }
double nmp_eval_score(const nmp_eval *ev) { return ev->score; }
double nmp_eval_group_score(const nmp_eval *ev, int64_t g) { return ev->gscore[g]; }

/* Change of group g's top-n sum, per row, when column x leaves and column y enters:
 *   out = [x >= vn] ? x - vn1 : 0              (x was kept: the (n+1)-th moves up)
 *   min = [x >= vn] ? vn1 : vn                 (smallest kept value of the other m-1)
 *   d   = max(0, y - min) - out                (y displaces that smallest kept value)
 * Ties are safe: if x == vn but another equal value was the one counted, vn1 == x, so out = 0. */
static inline float row_delta(float x, float y, float vn, float vn1)
{
    const int kept = x >= vn;
    const float lost = kept ? x - vn1 : 0.0f;
    const float low = kept ? vn1 : vn;
    return NMP_MAX(0.0f, y - low) - lost;
}

/* delta = sum_j [row_delta(x_a, x_b, group g) + row_delta(x_b, x_a, group h)] */
static double swap_delta_cols(const nmp_eval *ev, int64_t g, int64_t h, const float *xa,
                              const float *xb)
{
    const int64_t rows = ev->pb->rows;
    const float *vng = ev->vn + g * rows, *vn1g = ev->vn1 + g * rows;
    const float *vnh = ev->vn + h * rows, *vn1h = ev->vn1 + h * rows;
    double total = 0;
    for (int64_t j0 = 0; j0 < rows; j0 += BLOCK) {
        const int64_t j1 = NMP_MIN(rows, j0 + BLOCK);
        float part = 0;
        for (int64_t j = j0; j < j1; j++)
            part += row_delta(xa[j], xb[j], vng[j], vn1g[j]) +
                    row_delta(xb[j], xa[j], vnh[j], vn1h[j]);
        total += (double)part;
    }
    return total;
}

double nmp_eval_swap_delta(const nmp_eval *ev, int64_t a, int64_t b)
{
    const nmp_problem *pb = ev->pb;
    const int64_t g = a / pb->m, h = b / pb->m;
    if (g == h)
        return 0.0;
    return swap_delta_cols(ev, g, h, nmp_col(pb, ev->perm[a]), nmp_col(pb, ev->perm[b]));
}

void nmp_eval_pair_deltas(const nmp_eval *ev, int64_t g, int64_t h, double *out)
{
    const nmp_problem *pb = ev->pb;
    const int m = pb->m;
    for (int x = 0; x < m; x++) {
        const float *xa = nmp_col(pb, ev->perm[g * m + x]);
        for (int y = 0; y < m; y++)
            out[x * m + y] = swap_delta_cols(ev, g, h, xa, nmp_col(pb, ev->perm[h * m + y]));
    }
}

void nmp_eval_swap(nmp_eval *ev, int64_t a, int64_t b)
{
    const int m = ev->pb->m;
    const int32_t t = ev->perm[a];
    ev->perm[a] = ev->perm[b];
    ev->perm[b] = t;
    if (a / m != b / m) {
        refresh_group(ev, a / m);
        refresh_group(ev, b / m);
    }
}

/* sum_t D(cols[t*m ..]) - sum_t score(groups[t]) */
double nmp_eval_regroup_delta(const nmp_eval *ev, const int64_t *groups, int k, const int32_t *cols)
{
    const int m = ev->pb->m;
    double delta = 0;
    for (int t = 0; t < k; t++)
        delta += nmp_score_group_value(ev->pb, cols + t * m) - ev->gscore[groups[t]];
    return delta;
}

void nmp_eval_regroup(nmp_eval *ev, const int64_t *groups, int k, const int32_t *cols)
{
    const int m = ev->pb->m;
    for (int t = 0; t < k; t++)
        memcpy(ev->perm + groups[t] * m, cols + t * m, (size_t)m * sizeof *cols);
    for (int t = 0; t < k; t++)
        refresh_group(ev, groups[t]);
}

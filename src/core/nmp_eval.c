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
 * Ties are safe: if x == vn but another equal value was the one counted, vn1 == x, so out = 0.
 * Written without branches: out = max(0, x - vn1) (x < vn implies x <= vn1), and the two
 * selects act on bit patterns. As ternaries on floats GCC keeps them as branches (it may not
 * if-convert float operations under the default -ftrapping-math), which mispredict about 1.5
 * times per row on real data and made the loop ~20x slower (docs/benchmarks.md). The values
 * are the same as the ternary form's, bit for bit (up to the sign of a zero). */
static inline uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float positive_part(float v) /* max(0, v) */
{
    return float_of(bits_of(v) & (uint32_t)-(int32_t)(v > 0.0f));
}

static inline float row_delta(float x, float y, float vn, float vn1)
{
    const uint32_t kept = (uint32_t)-(int32_t)(x >= vn);
    const float gain = float_of((bits_of(y - vn1) & kept) | (bits_of(y - vn) & ~kept));
    return positive_part(gain) - positive_part(x - vn1);
}

/* Sum over rows j0 <= j < j1 of row_delta(x_a, x_b, group g) + row_delta(x_b, x_a, group h). */
static inline float block_delta(const float *xa, const float *xb, const float *vng,
                                const float *vn1g, const float *vnh, const float *vn1h, int64_t j0,
                                int64_t j1)
{
    float part = 0;
    for (int64_t j = j0; j < j1; j++)
        part += row_delta(xa[j], xb[j], vng[j], vn1g[j]) + row_delta(xb[j], xa[j], vnh[j], vn1h[j]);
    return part;
}

double nmp_eval_swap_delta(const nmp_eval *ev, int64_t a, int64_t b)
{
    const nmp_problem *pb = ev->pb;
    const int64_t rows = pb->rows, g = a / pb->m, h = b / pb->m;
    if (g == h)
        return 0.0;
    const float *xa = nmp_col(pb, ev->perm[a]), *xb = nmp_col(pb, ev->perm[b]);
    const float *vng = ev->vn + g * rows, *vn1g = ev->vn1 + g * rows;
    const float *vnh = ev->vn + h * rows, *vn1h = ev->vn1 + h * rows;
    double total = 0;
    for (int64_t j0 = 0; j0 < rows; j0 += BLOCK)
        total += (double)block_delta(xa, xb, vng, vn1g, vnh, vn1h, j0, NMP_MIN(rows, j0 + BLOCK));
    return total;
}

/* All m*m swaps between groups g and h, a block of rows at a time so that the two groups' state
 * and columns stay in L1 while the m*m sums pass over them. */
void nmp_eval_pair_deltas(const nmp_eval *ev, int64_t g, int64_t h, double *out)
{
    const nmp_problem *pb = ev->pb;
    const int64_t rows = pb->rows;
    const int m = pb->m;
    const float *vng = ev->vn + g * rows, *vn1g = ev->vn1 + g * rows;
    const float *vnh = ev->vn + h * rows, *vn1h = ev->vn1 + h * rows;
    const float *cg[NMP_MAX_M], *ch[NMP_MAX_M];
    for (int t = 0; t < m; t++) {
        cg[t] = nmp_col(pb, ev->perm[g * m + t]);
        ch[t] = nmp_col(pb, ev->perm[h * m + t]);
    }
    for (int k = 0; k < m * m; k++)
        out[k] = 0;
    for (int64_t j0 = 0; j0 < rows; j0 += BLOCK) {
        const int64_t j1 = NMP_MIN(rows, j0 + BLOCK);
        for (int x = 0; x < m; x++)
            for (int y = 0; y < m; y++)
                out[x * m + y] += (double)block_delta(cg[x], ch[y], vng, vn1g, vnh, vn1h, j0, j1);
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

/* nmp_problem.c: an N:M permutation problem: saliency matrix, pattern, objective, cached bounds */
#include "nmp_internal.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

nmp_err nmp_pattern_parse(const char *s, nmp_pattern *out, nmp_msg *msg)
{
    char *end = NULL;
    if (!s || !*s)
        return nmp_fail(msg, NMP_ERR_ARG, "empty N:M pattern, expected e.g. 2:4");
    errno = 0;
    const long n = strtol(s, &end, 10);
    if (end == s || *end != ':' || errno)
        return nmp_fail(msg, NMP_ERR_ARG, "bad N:M pattern '%s', expected e.g. 2:4", s);
    const char *ms = end + 1;
    const long m = strtol(ms, &end, 10);
    if (end == ms || *end != '\0' || errno)
        return nmp_fail(msg, NMP_ERR_ARG, "bad N:M pattern '%s', expected e.g. 2:4", s);
    if (n < 1 || n >= m || m > NMP_MAX_M)
        return nmp_fail(msg, NMP_ERR_ARG, "N:M pattern '%s' out of range: need 1 <= N < M <= %d",
                        s, NMP_MAX_M);
    out->n = (int)n;
    out->m = (int)m;
    return NMP_OK;
}

static const char *const objective_names[] = { "abs", "sq", "importance", "saliency" };

const char *nmp_objective_name(nmp_objective o)
{
    return (unsigned)o < 4 ? objective_names[o] : "unknown";
}

nmp_err nmp_objective_parse(const char *s, nmp_objective *out)
{
    for (int k = 0; k < 4; k++)
        if (s && strcmp(s, objective_names[k]) == 0) {
            *out = (nmp_objective)k;
            return NMP_OK;
        }
    return NMP_ERR_ARG;
}

/* Largest first; for quickselect. */
static void swapf(float *a, float *b)
{
    const float t = *a;
    *a = *b;
    *b = t;
}

/* Partially orders v[0..len-1] so that v[0..k-1] hold the k largest (Hoare-style quickselect with
 * a median-of-three pivot; expected O(len)). */
static void select_top(float *v, int64_t len, int64_t k)
{
    int64_t lo = 0, hi = len - 1;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (v[mid] > v[lo]) swapf(&v[mid], &v[lo]);
        if (v[hi] > v[lo]) swapf(&v[hi], &v[lo]);
        if (v[mid] > v[hi]) swapf(&v[mid], &v[hi]);
        const float pivot = v[hi]; /* median of the three */
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] > pivot) i++;
            while (v[j] < pivot) j--;
            if (i <= j) {
                swapf(&v[i], &v[j]);
                i++;
                j--;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

/* saliency value of element (j, i) under the objective */
static float saliency_of(const nmp_problem_desc *d, int64_t j, int64_t i)
{
    const float w = nmp_matrix_at(&d->weights, j, i);
    switch (d->objective) {
    case NMP_OBJ_SQ: return w * w;
    case NMP_OBJ_IMPORTANCE: return fabsf(w) * d->importance[i];
    case NMP_OBJ_SALIENCY: return nmp_matrix_at(&d->saliency, j, i);
    case NMP_OBJ_ABS: break;
    }
    return fabsf(w);
}

static nmp_err check_desc(const nmp_problem_desc *d, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const nmp_matrix *w = &d->weights;
    if (d->objective == NMP_OBJ_SALIENCY) {
        if (d->saliency.rows != w->rows || d->saliency.cols != w->cols)
            return nmp_fail(msg, NMP_ERR_ARG, "saliency is %lld x %lld, weights are %lld x %lld",
                            (long long)d->saliency.rows, (long long)d->saliency.cols,
                            (long long)w->rows, (long long)w->cols);
        if ((e = nmp_matrix_check(&d->saliency, msg)) != NMP_OK)
            return e;
    }
    if ((unsigned)d->objective > NMP_OBJ_SALIENCY)
        return nmp_fail(msg, NMP_ERR_ARG, "unknown objective %d", (int)d->objective);
    if ((e = nmp_matrix_check(w, msg)) != NMP_OK)
        return e;
    const int n = d->nm.n, m = d->nm.m;
    if (n < 1 || n >= m || m > NMP_MAX_M)
        return nmp_fail(msg, NMP_ERR_ARG, "N:M pattern %d:%d out of range: need 1 <= N < M <= %d",
                        n, m, NMP_MAX_M);
    if (w->cols % m != 0)
        return nmp_fail(msg, NMP_ERR_ARG, "%lld columns are not divisible by M = %d",
                        (long long)w->cols, m);
    if (w->cols > INT32_MAX || w->rows > INT32_MAX)
        return nmp_fail(msg, NMP_ERR_ARG, "matrix %lld x %lld is too large", (long long)w->rows,
                        (long long)w->cols);
    if (d->objective == NMP_OBJ_IMPORTANCE) {
        if (!d->importance)
            return nmp_fail(msg, NMP_ERR_ARG, "objective 'importance' needs a per-column vector");
        for (int64_t i = 0; i < w->cols; i++)
            if (!isfinite(d->importance[i]) || d->importance[i] < 0)
                return nmp_fail(msg, NMP_ERR_ARG, "importance of column %lld is %g, expected a "
                                "finite value >= 0", (long long)i, (double)d->importance[i]);
    }
    return NMP_OK;
}

#define TILE 16 /* rows per block of the column-major copy: 64 bytes of each column */

/* The error for a saliency that is negative, NaN or infinite at (j, i). */
static nmp_err bad_value(const nmp_problem_desc *d, int64_t j, int64_t i, float v, nmp_msg *msg)
{
    if (isinf(v) && (d->objective == NMP_OBJ_SQ || d->objective == NMP_OBJ_IMPORTANCE))
        return nmp_fail(msg, NMP_ERR_ARG, "objective %s overflows float32 at row %lld, col %lld "
                        "(w = %g)", nmp_objective_name(d->objective), (long long)j, (long long)i,
                        (double)nmp_matrix_at(&d->weights, j, i));
    return nmp_fail(msg, NMP_ERR_ARG, "saliency at row %lld, col %lld is %g, expected a finite "
                    "value >= 0", (long long)j, (long long)i, (double)v);
}

/* The largest total saliency accepted. Scores are float sums in the hot loops (top-n sums of a
 * row, blocked move deltas, pricing gains: each a partial sum of at most twice the total), so a
 * total within FLT_MAX / 16 keeps every one of them finite, with room for rounding; a larger one
 * is refused rather than scored as inf. Real weights are many orders of magnitude below. */
#define SUM_LIMIT ((double)FLT_MAX / 16)

nmp_err nmp_problem_create(const nmp_problem_desc *d, nmp_problem **out, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    nmp_problem *pb = NULL;
    float *row = NULL;
    *out = NULL;
    NMP_TRY(e, check_desc(d, msg));
    const int64_t rows = d->weights.rows, cols = d->weights.cols;
    pb = nmp_calloc(1, sizeof *pb);
    row = nmp_malloc((size_t)TILE * (size_t)cols * sizeof *row);
    if (!pb || !row) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    pb->s = nmp_malloc((size_t)rows * (size_t)cols * sizeof *pb->s);
    if (!pb->s) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    pb->rows = rows;
    pb->cols = cols;
    pb->n = d->nm.n;
    pb->m = d->nm.m;
    pb->groups = cols / pb->m;
    pb->objective = d->objective;
    const int64_t keep = cols / pb->m * pb->n;
    /* Rows in blocks of TILE: the column-major copy is written TILE floats (a cache line) at a
     * time instead of one float per cache line and page (`nmperm score` of 4096^2: half the
     * CPU). Checks, sums and bounds run row by row in the same order as one row at a time. */
    for (int64_t j0 = 0; j0 < rows; j0 += TILE) {
        const int64_t jn = NMP_MIN(TILE, rows - j0);
        for (int64_t b = 0; b < jn; b++) {
            const int64_t j = j0 + b;
            float *r = row + b * cols;
            for (int64_t i = 0; i < cols; i++) {
                const float v = saliency_of(d, j, i);
                if (!(v >= 0) || !isfinite(v)) {
                    e = bad_value(d, j, i, v, msg);
                    goto out;
                }
                r[i] = v;
            }
        }
        for (int64_t i = 0; i < cols; i++)
            for (int64_t b = 0; b < jn; b++)
                pb->s[i * rows + j0 + b] = row[b * cols + i];
        for (int64_t b = 0; b < jn; b++) {
            float *r = row + b * cols;
            double total = 0, bound = 0;
            for (int64_t i = 0; i < cols; i++)
                total += r[i];
            select_top(r, cols, keep);
            for (int64_t i = 0; i < keep; i++)
                bound += r[i];
            pb->total += total;
            pb->row_bound += bound;
        }
    }
    if (!(pb->total <= SUM_LIMIT)) {
        e = nmp_fail(msg, NMP_ERR_ARG, "saliency values sum to %.3g, more than float32 scores "
                     "can hold (at most %.3g): scale the matrix down", pb->total, SUM_LIMIT);
        goto out;
    }
    NMP_TRY(e, nmp_score(pb, NULL, &pb->identity));
    *out = pb;
    pb = NULL;
out:
    nmp_free(row);
    nmp_problem_free(pb);
    return e;
}

void nmp_problem_free(nmp_problem *pb)
{
    if (!pb)
        return;
    nmp_free(pb->s);
    nmp_free(pb);
}

int64_t nmp_problem_rows(const nmp_problem *pb) { return pb->rows; }
int64_t nmp_problem_cols(const nmp_problem *pb) { return pb->cols; }
int64_t nmp_problem_groups(const nmp_problem *pb) { return pb->groups; }
nmp_objective nmp_problem_objective(const nmp_problem *pb) { return pb->objective; }
const float *nmp_problem_saliency(const nmp_problem *pb) { return pb->s; }

nmp_pattern nmp_problem_pattern(const nmp_problem *pb)
{
    nmp_pattern p = { pb->n, pb->m };
    return p;
}

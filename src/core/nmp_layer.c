/* nmp_layer.c: CPU references of the 2:4 layer evaluator (column gather, N:M magnitude prune,
 * output differences, X W^T, token inputs, a pruned layer's output error) and the GEMM data
 * types */
#include "nmp_internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

nmp_err nmp_gather_cols(const nmp_matrix *a, const int32_t *perm, float *out)
{
    if (!a || !a->data || !out || a->rows < 1 || a->cols < 1)
        return NMP_ERR_ARG;
    if (perm) {
        const nmp_err e = nmp_perm_check(perm, a->cols);
        if (e != NMP_OK)
            return e;
    }
    for (int64_t j = 0; j < a->rows; j++)
        for (int64_t k = 0; k < a->cols; k++)
            out[j * a->cols + k] = nmp_matrix_at(a, j, perm ? perm[k] : k);
    return NMP_OK;
}

/* keep w[t] iff #{u : |w_u| > |w_t| or (|w_u| == |w_t| and u < t)} < n, per group of m */
nmp_err nmp_prune_nm(float *w, int64_t rows, int64_t cols, nmp_pattern nm)
{
    if (!w || rows < 1 || cols < 1 || nm.m < 2 || nm.m > NMP_MAX_M || nm.n < 1 || nm.n >= nm.m ||
        cols % nm.m != 0)
        return NMP_ERR_ARG;
    float mag[NMP_MAX_M];
    for (int64_t base = 0; base < rows * cols; base += nm.m) {
        for (int t = 0; t < nm.m; t++)
            mag[t] = fabsf(w[base + t]);
        for (int t = 0; t < nm.m; t++) {
            int beaten = 0;
            for (int u = 0; u < nm.m; u++)
                beaten += mag[u] > mag[t] || (mag[u] == mag[t] && u < t);
            if (beaten >= nm.n)
                w[base + t] = 0.0f;
        }
    }
    return NMP_OK;
}

int64_t nmp_prune_violations(const float *w, int64_t rows, int64_t cols, nmp_pattern nm)
{
    int64_t bad = 0;
    if (!w || nm.m < 1 || cols % nm.m != 0)
        return -1;
    for (int64_t base = 0; base < rows * cols; base += nm.m) {
        int nonzero = 0;
        for (int t = 0; t < nm.m; t++)
            nonzero += w[base + t] != 0.0f;
        bad += nonzero > nm.n;
    }
    return bad;
}

nmp_err nmp_diff_compute(const float *y, const float *ref, int64_t count, nmp_diff *out)
{
    double num = 0, den = 0;
    if (!y || !ref || !out || count < 0)
        return NMP_ERR_ARG;
    memset(out, 0, sizeof *out);
    for (int64_t k = 0; k < count; k++) {
        const double a = y[k], b = ref[k];
        if (!isfinite(a)) {
            out->nonfinite++;
            continue;
        }
        const double d = fabs(a - b);
        out->max_abs = NMP_MAX(out->max_abs, d);
        out->max_ref = NMP_MAX(out->max_ref, fabs(b));
        num += d * d;
        den += b * b;
    }
    out->rel_fro = den > 0 ? sqrt(num / den) : (num > 0 ? INFINITY : 0.0);
    if (out->nonfinite)
        out->rel_fro = NAN;
    return NMP_OK;
}

/* y(r, c) = sum_i x(r, i) w(c, i), accumulated in double: each entry by one thread in one
 * order, so the bytes do not depend on the thread count */
nmp_err nmp_gemm_xwt(const float *x, const float *w, int64_t t, int64_t n, int64_t k, float *y)
{
    if (!x || !w || !y || t < 1 || n < 1 || k < 1)
        return NMP_ERR_ARG;
#pragma omp parallel for schedule(static) if (t * n * k > (1 << 22))
    for (int64_t r = 0; r < t; r++)
        for (int64_t c = 0; c < n; c++) {
            double s = 0;
            for (int64_t i = 0; i < k; i++)
                s += (double)x[r * k + i] * (double)w[c * k + i];
            y[r * n + c] = (float)s;
        }
    return NMP_OK;
}

nmp_err nmp_layer_inputs(int64_t rows, int64_t cols, uint64_t seed, float *x)
{
    nmp_rng r;
    if (!x || rows < 1 || cols < 1)
        return NMP_ERR_ARG;
    nmp_rng_seed(&r, seed);
    for (int64_t q = 0; q < rows * cols; q++)
        x[q] = (float)nmp_rng_normal(&r);
    return NMP_OK;
}

/* Sum of |w| over a matrix (the kept magnitude after a prune). */
static double abs_sum(const float *w, int64_t count)
{
    double s = 0;
    for (int64_t q = 0; q < count; q++)
        s += fabs((double)w[q]);
    return s;
}

/* err_p = ||X_p prune(W_p)^T - X W^T||_F / ||X W^T||_F with W_p, X_p the columns in perm order
 * (identity and perm): five buffers, three GEMMs; gathering both operands by one perm leaves the
 * unpruned product as it is, so only where the prune falls changes. */
nmp_err nmp_layer_error(const nmp_matrix *w, const float *x, int64_t tokens, const int32_t *perm,
                        nmp_pattern nm, nmp_layer_err *out)
{
    nmp_err e = NMP_OK;
    float *wg = NULL, *xg = NULL, *y = NULL, *yp = NULL;
    nmp_diff dif;
    if (!w || !w->data || !x || !out || tokens < 1 || w->rows < 1 || w->cols < 1 || nm.m < 2 ||
        nm.m > NMP_MAX_M || nm.n < 1 || nm.n >= nm.m || w->cols % nm.m != 0)
        return NMP_ERR_ARG;
    if (perm && nmp_perm_check(perm, w->cols) != NMP_OK)
        return NMP_ERR_ARG;
    memset(out, 0, sizeof *out);
    const int64_t n = w->rows, k = w->cols;
    if ((uint64_t)n > SIZE_MAX / sizeof(float) / (uint64_t)k ||
        (uint64_t)tokens > SIZE_MAX / sizeof(float) / (uint64_t)NMP_MAX(n, k))
        return NMP_ERR_ARG;
    wg = nmp_malloc((size_t)(n * k) * sizeof *wg);
    xg = nmp_malloc((size_t)(tokens * k) * sizeof *xg);
    y = nmp_malloc((size_t)(tokens * n) * sizeof *y);
    yp = nmp_malloc((size_t)(tokens * n) * sizeof *yp);
    if (!wg || !xg || !y || !yp) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    /* unpruned reference */
    NMP_TRY(e, nmp_gather_cols(w, NULL, wg));
    NMP_TRY(e, nmp_gemm_xwt(x, wg, tokens, n, k, y));
    /* identity: prune in natural order */
    NMP_TRY(e, nmp_prune_nm(wg, n, k, nm));
    out->kept_identity = abs_sum(wg, n * k);
    out->violations += nmp_prune_violations(wg, n, k, nm);
    NMP_TRY(e, nmp_gemm_xwt(x, wg, tokens, n, k, yp));
    NMP_TRY(e, nmp_diff_compute(yp, y, tokens * n, &dif));
    out->err_identity = dif.rel_fro;
    /* perm: both operands gathered, then W pruned */
    const nmp_matrix xv = nmp_matrix_view(x, tokens, k);
    NMP_TRY(e, nmp_gather_cols(w, perm, wg));
    NMP_TRY(e, nmp_gather_cols(&xv, perm, xg));
    NMP_TRY(e, nmp_prune_nm(wg, n, k, nm));
    out->kept_perm = abs_sum(wg, n * k);
    out->violations += nmp_prune_violations(wg, n, k, nm);
    NMP_TRY(e, nmp_gemm_xwt(xg, wg, tokens, n, k, yp));
    NMP_TRY(e, nmp_diff_compute(yp, y, tokens * n, &dif));
    out->err_perm = dif.rel_fro;
out:
    nmp_free(wg);
    nmp_free(xg);
    nmp_free(y);
    nmp_free(yp);
    return e;
}

/* ------------------------------------------------------------------ dtypes */

const char *nmp_dtype_name(nmp_dtype d)
{
    switch (d) {
    case NMP_DTYPE_F16: return "fp16";
    case NMP_DTYPE_BF16: return "bf16";
    case NMP_DTYPE_I8: return "int8";
    case NMP_DTYPE_E4M3: return "e4m3";
    case NMP_DTYPE_F32: return "fp32";
    }
    return "?";
}

nmp_err nmp_dtype_parse(const char *s, nmp_dtype *out)
{
    static const struct {
        const char *name;
        nmp_dtype d;
    } names[] = { { "fp16", NMP_DTYPE_F16 }, { "f16", NMP_DTYPE_F16 }, { "half", NMP_DTYPE_F16 },
                  { "bf16", NMP_DTYPE_BF16 }, { "int8", NMP_DTYPE_I8 }, { "i8", NMP_DTYPE_I8 },
                  { "e4m3", NMP_DTYPE_E4M3 }, { "fp8", NMP_DTYPE_E4M3 },
                  { "fp32", NMP_DTYPE_F32 }, { "f32", NMP_DTYPE_F32 }, { "tf32", NMP_DTYPE_F32 } };
    for (size_t k = 0; s && k < sizeof names / sizeof names[0]; k++)
        if (strcmp(s, names[k].name) == 0) {
            *out = names[k].d;
            return NMP_OK;
        }
    return NMP_ERR_ARG;
}

double nmp_dtype_tolerance(nmp_dtype d)
{
    switch (d) {
    case NMP_DTYPE_F16: return 4e-3;  /* fp16 output: 2^-11 relative rounding, a few ulps */
    case NMP_DTYPE_BF16: return 3e-2; /* bf16 output: 2^-8 */
    case NMP_DTYPE_I8: return 0.0;    /* int32 accumulation is exact */
    case NMP_DTYPE_E4M3: return 3e-2; /* bf16 output */
    case NMP_DTYPE_F32: return 1e-3;
    }
    return 0.0;
}

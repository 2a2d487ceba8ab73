/* nmp_backend.c: the scoring backend table with its CPU reference entries, and the CPU references
 * of the GPU evaluator (column gather, N:M magnitude prune, output differences, X W^T) */
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

int64_t nmp_window_masks(int m)
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
double nmp_window_split_value(const nmp_problem *pb, const int32_t *perm, int64_t g, int64_t h,
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
    masks = nmp_malloc((size_t)nmp_window_masks(m) * sizeof *masks);
    if (!masks) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    const int64_t nmasks = list_masks(m, masks);
    int64_t p = 0;
    for (int64_t g = 0; g < groups; g++)
        for (int64_t h = g + 1; h < groups; h++, p++) {
            const double cur = nmp_window_split_value(pb, perm, g, h, masks[0]);
            double best = cur;
            uint32_t arg = masks[0];
            for (int64_t q = 1; q < nmasks; q++) {
                const double v = nmp_window_split_value(pb, perm, g, h, masks[q]);
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

nmp_err nmp_backend_init(nmp_backend *be, const nmp_problem *pb, const char *device,
                         nmp_msg *msg)
{
    nmp_backend_init_cpu(be, pb);
    const char *env = getenv("NMP_BACKEND");
    const bool want_gpu = device && strcmp(device, "gpu") == 0;
    if (device && strcmp(device, "auto") != 0 && strcmp(device, "cpu") != 0 && !want_gpu)
        return nmp_fail(msg, NMP_ERR_ARG, "device '%s': expected auto, cpu or gpu", device);
    if ((device && strcmp(device, "cpu") == 0) || (!want_gpu && env && strcmp(env, "cpu") == 0))
        return NMP_OK;
#ifdef NMP_HAVE_CUDA
    if (nmp_gpu_count() < 1)
        return want_gpu ? nmp_fail(msg, NMP_ERR_GPU, "no CUDA device found") : NMP_OK;
    const nmp_err e = nmp_gpu_backend_open(be, msg);
    if (e != NMP_OK && !want_gpu) {
        nmp_backend_init_cpu(be, pb); /* auto: fall back to the reference */
        return NMP_OK;
    }
    return e;
#else
    if (want_gpu)
        return nmp_fail(msg, NMP_ERR_UNSUPPORTED, "built without CUDA");
    return NMP_OK;
#endif
}

void nmp_backend_release(nmp_backend *be)
{
    if (!be)
        return;
#ifdef NMP_HAVE_CUDA
    if (be->dev)
        nmp_gpu_backend_close(be);
#endif
    be->dev = NULL;
}

/* ---------------------------------------------- references of the GPU evaluator */

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

nmp_err nmp_gemm_xwt(const float *x, const float *w, int64_t t, int64_t n, int64_t k, float *y)
{
    if (!x || !w || !y || t < 1 || n < 1 || k < 1)
        return NMP_ERR_ARG;
    for (int64_t r = 0; r < t; r++)
        for (int64_t c = 0; c < n; c++) {
            double s = 0;
            for (int64_t i = 0; i < k; i++)
                s += (double)x[r * k + i] * (double)w[c * k + i];
            y[r * n + c] = (float)s;
        }
    return NMP_OK;
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

/* ------------------------------------------------- without CUDA: the GPU API answers "none" */

#ifndef NMP_HAVE_CUDA
int nmp_gpu_built(void) { return 0; }
int nmp_gpu_has_cusparselt(void) { return 0; }
int nmp_gpu_count(void) { return 0; }

nmp_err nmp_gpu_describe(char *buf, size_t len)
{
    if (buf && len)
        buf[0] = '\0';
    return NMP_ERR_GPU;
}

nmp_err nmp_gpu_spmm_eval(const nmp_spmm_desc *d, nmp_spmm_report *r, nmp_msg *msg)
{
    (void)d;
    if (r)
        memset(r, 0, sizeof *r);
    return nmp_fail(msg, NMP_ERR_GPU, "no CUDA device found (built without CUDA)");
}
#endif

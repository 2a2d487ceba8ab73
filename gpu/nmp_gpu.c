/* nmp_gpu.c: host side of the GPU backend: device queries, the problem uploaded once, and the
 * backend entries that replace the CPU reference (score_groups, swap_deltas, window_repartitions,
 * pricing); cudaError_t is translated to nmp_err here */
#include "nmp_gpu.h"

#include <cuda_runtime_api.h>

#include <math.h>
#include <string.h>

/* Device state of one problem: its column-major saliency and scratch for a perm. */
typedef struct gpu_state {
    float *s;
    int32_t *perm;
} gpu_state;

static nmp_err cuda_fail(nmp_msg *msg, cudaError_t c, const char *what)
{
    return nmp_fail(msg, NMP_ERR_GPU, "%s: %s", what, cudaGetErrorString(c));
}

#define CUDA_TRY(e, call)                                                                          \
    do {                                                                                           \
        const cudaError_t c_ = (cudaError_t)(call);                                                \
        if (c_ != cudaSuccess) {                                                                   \
            (e) = cuda_fail(NULL, c_, #call);                                                      \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

int nmp_gpu_built(void) { return 1; }

/* Set once a sticky error is seen; never cleared: the process's CUDA context is gone. */
static volatile int context_lost;

int nmp_gpu_is_lost(void) { return context_lost; }

/* A non-sticky error is cleared by cudaGetLastError and the next synchronize succeeds; a sticky
 * one (illegal address, launch failure, ...) is returned by every call from then on. */
int nmp_gpu_check_lost(void)
{
    if (context_lost)
        return 1;
    if (cudaDeviceSynchronize() == cudaSuccess)
        return 0;
    (void)cudaGetLastError();
    if (cudaDeviceSynchronize() != cudaSuccess)
        context_lost = 1;
    return context_lost;
}

int nmp_gpu_count(void)
{
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no device" error */
        return 0;
    }
    return count;
}

nmp_err nmp_gpu_describe(char *buf, size_t len)
{
    struct cudaDeviceProp p;
    if (nmp_gpu_count() < 1 || cudaGetDeviceProperties(&p, 0) != cudaSuccess) {
        if (buf && len)
            buf[0] = '\0';
        return NMP_ERR_GPU;
    }
    if (buf && len)
        snprintf(buf, len, "%s (sm_%d%d, %d SMs, %.1f GiB)", p.name, p.major, p.minor,
                 p.multiProcessorCount, (double)p.totalGlobalMem / (1024.0 * 1024 * 1024));
    return NMP_OK;
}

/* Copies perm (NULL = identity) to the device scratch. */
static nmp_err upload_perm(const nmp_backend *be, const int32_t *perm)
{
    nmp_err e = NMP_OK;
    const gpu_state *st = be->dev;
    const int64_t cols = be->pb->cols;
    int32_t *ident = NULL;
    if (perm) {
        NMP_TRY(e, nmp_perm_check(perm, cols));
    } else {
        ident = nmp_malloc((size_t)cols * sizeof *ident);
        if (!ident) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
        nmp_perm_identity(ident, cols);
        perm = ident;
    }
    CUDA_TRY(e, cudaMemcpy(st->perm, perm, (size_t)cols * sizeof *perm, cudaMemcpyHostToDevice));
out:
    nmp_free(ident);
    return e;
}

static nmp_err gpu_score_groups(const nmp_backend *be, const int32_t *perm, double *out)
{
    nmp_err e = NMP_OK;
    const nmp_problem *pb = be->pb;
    const gpu_state *st = be->dev;
    double *d_out = NULL;
    NMP_TRY(e, upload_perm(be, perm));
    CUDA_TRY(e, cudaMalloc((void **)&d_out, (size_t)pb->groups * sizeof *d_out));
    CUDA_TRY(e, nmp_gpu_score_groups(st->s, pb->rows, pb->groups, pb->m, pb->n, st->perm, d_out));
    CUDA_TRY(e, cudaMemcpy(out, d_out, (size_t)pb->groups * sizeof *out, cudaMemcpyDeviceToHost));
out:
    cudaFree(d_out);
    return e;
}

static nmp_err gpu_swap_deltas(const nmp_backend *be, const int32_t *perm, int64_t a,
                               const int64_t *b, int64_t count, double *out)
{
    nmp_err e = NMP_OK;
    const nmp_problem *pb = be->pb;
    const gpu_state *st = be->dev;
    int64_t *d_b = NULL;
    double *d_out = NULL;
    if (a < 0 || a >= pb->cols || count < 0 || (count > 0 && (!b || !out)))
        return NMP_ERR_ARG;
    for (int64_t t = 0; t < count; t++)
        if (b[t] < 0 || b[t] >= pb->cols)
            return NMP_ERR_ARG;
    if (count == 0)
        return NMP_OK;
    NMP_TRY(e, upload_perm(be, perm));
    CUDA_TRY(e, cudaMalloc((void **)&d_b, (size_t)count * sizeof *d_b));
    CUDA_TRY(e, cudaMalloc((void **)&d_out, (size_t)count * sizeof *d_out));
    CUDA_TRY(e, cudaMemcpy(d_b, b, (size_t)count * sizeof *b, cudaMemcpyHostToDevice));
    CUDA_TRY(e, nmp_gpu_swap_deltas(st->s, pb->rows, pb->m, pb->n, st->perm, a, d_b, count,
                                    d_out));
    CUDA_TRY(e, cudaMemcpy(out, d_out, (size_t)count * sizeof *out, cudaMemcpyDeviceToHost));
out:
    cudaFree(d_b);
    cudaFree(d_out);
    return e;
}

static nmp_err gpu_window(const nmp_backend *be, const int32_t *perm, double *gain,
                          uint32_t *mask)
{
    nmp_err e = NMP_OK;
    const nmp_problem *pb = be->pb;
    const gpu_state *st = be->dev;
    const int m = pb->m;
    const int64_t pairs = pb->groups * (pb->groups - 1) / 2;
    uint32_t *masks = NULL, *d_masks = NULL, *d_mask = NULL;
    double *d_gain = NULL;
    if (2 * m > 14) { /* more than 1716 masks: the reference takes it */
        nmp_backend ref;
        nmp_backend_init_cpu(&ref, pb);
        return ref.window_repartitions(&ref, perm, gain, mask);
    }
    if (pairs == 0)
        return perm ? nmp_perm_check(perm, pb->cols) : NMP_OK;
    const int64_t nmasks = nmp_backend_split_count(m);
    masks = nmp_malloc((size_t)nmasks * sizeof *masks);
    if (!masks) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    int64_t q = 0;
    for (uint32_t mk = 1; mk < (1u << (2 * m)); mk += 2) {
        int bits = 0;
        for (uint32_t x = mk; x; x &= x - 1)
            bits++;
        if (bits == m)
            masks[q++] = mk;
    }
    NMP_TRY(e, upload_perm(be, perm));
    CUDA_TRY(e, cudaMalloc((void **)&d_masks, (size_t)nmasks * sizeof *d_masks));
    CUDA_TRY(e, cudaMalloc((void **)&d_mask, (size_t)pairs * sizeof *d_mask));
    CUDA_TRY(e, cudaMalloc((void **)&d_gain, (size_t)pairs * sizeof *d_gain));
    CUDA_TRY(e, cudaMemcpy(d_masks, masks, (size_t)nmasks * sizeof *masks,
                           cudaMemcpyHostToDevice));
    CUDA_TRY(e, nmp_gpu_window(st->s, pb->rows, pb->groups, m, pb->n, st->perm, d_masks,
                               (int)nmasks, d_gain, d_mask));
    CUDA_TRY(e, cudaMemcpy(gain, d_gain, (size_t)pairs * sizeof *gain, cudaMemcpyDeviceToHost));
    CUDA_TRY(e, cudaMemcpy(mask, d_mask, (size_t)pairs * sizeof *mask, cudaMemcpyDeviceToHost));
out:
    nmp_free(masks);
    cudaFree(d_masks);
    cudaFree(d_mask);
    cudaFree(d_gain);
    return e;
}

/* The rank-th (lexicographic) k-subset of 0..len-1 into sub. */
static void unrank(int64_t rank, int64_t len, int k, const int64_t *binom, int32_t *sub)
{
    int64_t off = 0;
    for (int q = 0; q < k; q++) {
        for (;;) {
            const int64_t cnt = binom[(len - off - 1) * 9 + (k - q - 1)];
            if (rank < cnt)
                break;
            rank -= cnt;
            off++;
        }
        sub[q] = (int32_t)off++;
    }
}

static nmp_err gpu_pricing(const nmp_backend *be, const double *y, double *rc, int32_t *cols)
{
    nmp_err e = NMP_OK;
    const nmp_problem *pb = be->pb;
    const gpu_state *st = be->dev;
    const int m = pb->m;
    const int64_t c = pb->cols;
    double subsets = 1;
    for (int t = 0; t < m; t++)
        subsets = subsets * (double)(c - t) / (t + 1);
    if (m > 8 || subsets > 1099511627776.0 || c > 65535)
        return NMP_ERR_UNSUPPORTED;
    const int64_t chunks = nmp_gpu_pricing_chunks(c, m);
    int64_t *binom = nmp_calloc((size_t)(c + 1) * 9, sizeof *binom);
    double *brc = nmp_malloc((size_t)(c * chunks) * sizeof *brc);
    int64_t *brank = nmp_malloc((size_t)(c * chunks) * sizeof *brank);
    int64_t *d_binom = NULL, *d_rank = NULL;
    double *d_y = NULL, *d_rc = NULL;
    if (!binom || !brc || !brank) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    for (int64_t a = 0; a <= c; a++) /* C(a, b), b <= 8; values stay below 2^40 for C(c, m) */
        for (int b = 0; b <= 8 && b <= a; b++)
            binom[a * 9 + b] = (b == 0 || b == a) ? 1 : binom[(a - 1) * 9 + b - 1] +
                                                           (b <= a - 1 ? binom[(a - 1) * 9 + b] : 0);
    CUDA_TRY(e, cudaMalloc((void **)&d_binom, (size_t)(c + 1) * 9 * sizeof *d_binom));
    CUDA_TRY(e, cudaMalloc((void **)&d_y, (size_t)c * sizeof *d_y));
    CUDA_TRY(e, cudaMalloc((void **)&d_rc, (size_t)(c * chunks) * sizeof *d_rc));
    CUDA_TRY(e, cudaMalloc((void **)&d_rank, (size_t)(c * chunks) * sizeof *d_rank));
    CUDA_TRY(e, cudaMemcpy(d_binom, binom, (size_t)(c + 1) * 9 * sizeof *binom,
                           cudaMemcpyHostToDevice));
    CUDA_TRY(e, cudaMemcpy(d_y, y, (size_t)c * sizeof *y, cudaMemcpyHostToDevice));
    CUDA_TRY(e, nmp_gpu_pricing(st->s, pb->rows, c, m, pb->n, d_y, d_binom, d_rc, d_rank));
    CUDA_TRY(e, cudaMemcpy(brc, d_rc, (size_t)(c * chunks) * sizeof *brc,
                           cudaMemcpyDeviceToHost));
    CUDA_TRY(e, cudaMemcpy(brank, d_rank, (size_t)(c * chunks) * sizeof *brank,
                           cudaMemcpyDeviceToHost));
    for (int64_t i = 0; i < c; i++) {
        double best = -INFINITY;
        int64_t arg = -1;
        for (int64_t x = 0; x < chunks; x++) { /* chunks hold increasing ranks: first max */
            const int64_t r = brank[i * chunks + x];
            if (r >= 0 && brc[i * chunks + x] > best) {
                best = brc[i * chunks + x];
                arg = r;
            }
        }
        rc[i] = best;
        for (int t = 0; t < m; t++)
            cols[i * m + t] = -1;
        if (arg >= 0) {
            int32_t sub[8];
            unrank(arg, c - 1 - i, m - 1, binom, sub);
            cols[i * m] = (int32_t)i;
            for (int t = 1; t < m; t++)
                cols[i * m + t] = (int32_t)(i + 1 + sub[t - 1]);
        }
    }
out:
    nmp_free(binom);
    nmp_free(brc);
    nmp_free(brank);
    cudaFree(d_binom);
    cudaFree(d_y);
    cudaFree(d_rc);
    cudaFree(d_rank);
    return e;
}

/* be->release: frees the device copy and restores the reference entries. */
static void gpu_backend_close(nmp_backend *be)
{
    gpu_state *st = be->dev;
    if (st) {
        cudaFree(st->s);
        cudaFree(st->perm);
        nmp_free(st);
    }
    nmp_backend_init_cpu(be, be->pb);
}

nmp_err nmp_gpu_backend_open(nmp_backend *be, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const nmp_problem *pb = be->pb;
    gpu_state *st = nmp_calloc(1, sizeof *st);
    cudaError_t c = cudaSuccess;
    if (!st)
        return NMP_ERR_NOMEM;
    if (context_lost) {
        e = nmp_fail(msg, NMP_ERR_GPU, "GPU backend: the CUDA context was lost to an earlier "
                     "fault in this process");
        goto out;
    }
    if (pb->m > 8) { /* the kernels hold a group in 8 registers */
        e = nmp_fail(msg, NMP_ERR_UNSUPPORTED, "GPU backend: group size %d > 8", pb->m);
        goto out;
    }
    const size_t bytes = (size_t)pb->rows * (size_t)pb->cols * sizeof(float);
    if ((c = cudaMalloc((void **)&st->s, bytes)) != cudaSuccess ||
        (c = cudaMalloc((void **)&st->perm, (size_t)pb->cols * sizeof(int32_t))) != cudaSuccess ||
        (c = cudaMemcpy(st->s, pb->s, bytes, cudaMemcpyHostToDevice)) != cudaSuccess) {
        e = cuda_fail(msg, c, "GPU backend: uploading the problem");
        goto out;
    }
    be->name = "cuda";
    be->dev = st;
    be->release = gpu_backend_close;
    be->score_groups = gpu_score_groups;
    be->swap_deltas = gpu_swap_deltas;
    be->window_repartitions = gpu_window;
    be->pricing = gpu_pricing;
    st = NULL;
out:
    if (st) {
        cudaFree(st->s);
        cudaFree(st->perm);
        nmp_free(st);
    }
    return e;
}

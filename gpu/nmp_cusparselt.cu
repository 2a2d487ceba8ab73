/* nmp_cusparselt.cu: one 2:4 layer on the device: gather by the permutation, magnitude prune,
 * cuSPARSELt prune check, compression and algorithm search, timed against the dense cuBLASLt GEMM
 * on the same pruned W, and the fp32 output error of the pruned layer. cuBLASLt and cuSPARSELt
 * are loaded at first use (nmp_gpu_libs_load, search order in nmp_gpu_dl.c) and called through
 * the function table below: the program links neither, so a CUDA build runs its CPU commands
 * where no GPU library is installed. */
#include "nmp_gpu.h"

#include <cublasLt.h>
#include <cuda_runtime.h>
#ifdef NMP_HAVE_CUSPARSELT
#include <cusparseLt.h>
#endif

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ libraries through dlopen */

#define LT_FUNCS(X)                                                                                \
    X(cublasLtCreate) X(cublasLtDestroy) X(cublasLtMatmulDescCreate) X(cublasLtMatmulDescDestroy) \
    X(cublasLtMatmulDescSetAttribute) X(cublasLtMatrixLayoutCreate)                                \
    X(cublasLtMatrixLayoutDestroy) X(cublasLtMatmulPreferenceCreate)                               \
    X(cublasLtMatmulPreferenceDestroy) X(cublasLtMatmulPreferenceSetAttribute)                     \
    X(cublasLtMatmulAlgoGetHeuristic) X(cublasLtMatmul)

#ifdef NMP_HAVE_CUSPARSELT
#define CSL_FUNCS(X)                                                                               \
    X(cusparseLtInit) X(cusparseLtDestroy) X(cusparseLtGetErrorString)                             \
    X(cusparseLtStructuredDescriptorInit) X(cusparseLtDenseDescriptorInit)                         \
    X(cusparseLtMatDescriptorDestroy) X(cusparseLtMatmulDescriptorInit)                            \
    X(cusparseLtMatmulAlgSelectionInit) X(cusparseLtMatmulAlgSelectionDestroy)                     \
    X(cusparseLtMatmulAlgSetAttribute) X(cusparseLtMatmulAlgGetAttribute)                          \
    X(cusparseLtMatmulPlanInit) X(cusparseLtMatmulPlanDestroy) X(cusparseLtMatmulGetWorkspace)     \
    X(cusparseLtSpMMAPruneCheck) X(cusparseLtSpMMACompressedSize) X(cusparseLtSpMMACompress)       \
    X(cusparseLtMatmulSearch) X(cusparseLtMatmul)
#else
#define CSL_FUNCS(X)
#endif

/* Every entry has the type of the function it stands for (decltype of the header's declaration),
 * so a call through the table is checked as a direct call would be. */
typedef struct gpu_libs {
#define X(f) decltype(&::f) f;
    LT_FUNCS(X) CSL_FUNCS(X)
#undef X
    int loaded;
    char lt_path[1024], csl_path[1024];
} gpu_libs;

static gpu_libs lib;
static pthread_mutex_t lib_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const lt_layouts[] = { "nvidia/cu13/lib", "nvidia/cublas/lib", NULL };
static const char *const csl_layouts[] = { "nvidia/cu13/lib", "nvidia/cusparselt/lib", NULL };

extern "C" int nmp_gpu_has_cusparselt(void)
{
#ifdef NMP_HAVE_CUSPARSELT
    return 1;
#else
    return 0;
#endif
}

/* Fills the table from one handle; NMP_ERR_UNSUPPORTED naming the first missing symbol. */
static nmp_err fill(gpu_libs *t, void *lt, void *csl, nmp_msg *msg)
{
    (void)csl;
#define X(f)                                                                                       \
    if (!(t->f = (decltype(t->f))nmp_gpu_dl_sym(lt, #f)))                                          \
        return nmp_fail(msg, NMP_ERR_UNSUPPORTED, "%s: no symbol %s", t->lt_path, #f);
    LT_FUNCS(X)
#undef X
#define X(f)                                                                                       \
    if (!(t->f = (decltype(t->f))nmp_gpu_dl_sym(csl, #f)))                                         \
        return nmp_fail(msg, NMP_ERR_UNSUPPORTED, "%s: no symbol %s", t->csl_path, #f);
    CSL_FUNCS(X)
#undef X
    return NMP_OK;
}

extern "C" nmp_err nmp_gpu_libs_load(const char *dir, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    pthread_mutex_lock(&lib_lock);
    if (!lib.loaded) {
        char lt_name[64], lt_wheel[64];
        const int major = CUDART_VERSION / 1000;
        snprintf(lt_name, sizeof lt_name, "libcublasLt.so.%d", major);
        if (major >= 13) /* CUDA 13's wheel dropped the -cuXX suffix */
            snprintf(lt_wheel, sizeof lt_wheel, "nvidia-cublas");
        else
            snprintf(lt_wheel, sizeof lt_wheel, "nvidia-cublas-cu%d", major);
        const nmp_gpu_lib lt = { "cuBLASLt", lt_name, "NMP_CUBLASLT", lt_wheel, lt_layouts };
        gpu_libs t;
        memset(&t, 0, sizeof t);
        void *hl = nmp_gpu_dl_open(&lt, dir, t.lt_path, sizeof t.lt_path, msg), *hc = NULL;
        if (!hl)
            e = NMP_ERR_UNSUPPORTED;
#ifdef NMP_HAVE_CUSPARSELT
        char csl_wheel[64];
        snprintf(csl_wheel, sizeof csl_wheel, "nvidia-cusparselt-cu%d", major);
        const nmp_gpu_lib csl = { "cuSPARSELt", "libcusparseLt.so.0", "NMP_CUSPARSELT", csl_wheel,
                                  csl_layouts };
        if (e == NMP_OK &&
            !(hc = nmp_gpu_dl_open(&csl, dir, t.csl_path, sizeof t.csl_path, msg)))
            e = NMP_ERR_UNSUPPORTED;
#endif
        if (e == NMP_OK && (e = fill(&t, hl, hc, msg)) == NMP_OK) {
            t.loaded = 1;
            lib = t;
        }
    }
    pthread_mutex_unlock(&lib_lock);
    return e;
}

extern "C" void nmp_gpu_libs_describe(char *buf, size_t len)
{
    if (!buf || !len)
        return;
    pthread_mutex_lock(&lib_lock);
    if (!lib.loaded)
        snprintf(buf, len, "GPU libraries not loaded");
    else if (lib.csl_path[0])
        snprintf(buf, len, "cuBLASLt %s; cuSPARSELt %s", lib.lt_path, lib.csl_path);
    else
        snprintf(buf, len, "cuBLASLt %s; no cuSPARSELt in this build", lib.lt_path);
    pthread_mutex_unlock(&lib_lock);
}

#ifndef NMP_HAVE_CUSPARSELT

extern "C" nmp_err nmp_gpu_spmm_eval(const nmp_spmm_desc *d, nmp_spmm_report *r, nmp_msg *msg)
{
    (void)d;
    if (r)
        memset(r, 0, sizeof *r);
    return nmp_fail(msg, NMP_ERR_UNSUPPORTED, "cuSPARSELt unavailable in this build (no "
                    "cusparseLt.h when it was configured: pip install nvidia-cusparselt-cu13, then "
                    "configure again)");
}

#else

/* Everything one evaluation allocates; released in one place. */
typedef struct spmm_bufs {
    float *w0, *x0, *w, *x, *wi, *yd32, *ys32, *yfull, *yperm, *yident, *absmax;
    int32_t *perm;
    void *wq, *xq, *yd, *ys, *wc, *wcbuf, *ws_sparse, *ws_dense;
    int *valid;
    unsigned long long *viol;
    cudaEvent_t ev0, ev1;
    cublasLtHandle_t lt;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulPreference_t pref;
    cusparseLtHandle_t sp;
    cusparseLtMatDescriptor_t ma, mb, mc;
    cusparseLtMatmulDescriptor_t mm;
    cusparseLtMatmulAlgSelection_t sel;
    cusparseLtMatmulPlan_t plan;
    bool have_sp, have_ma, have_mb, have_mc, have_sel, have_plan;
} spmm_bufs;

#define DENSE_WS ((size_t)64 << 20) /* cuBLASLt workspace: 32 MiB is NVIDIA's advice on Hopper */

#define TRY_CUDA(call)                                                                             \
    do {                                                                                           \
        const cudaError_t c_ = (cudaError_t)(call);                                                \
        if (c_ != cudaSuccess) {                                                                   \
            e = nmp_fail(msg, NMP_ERR_GPU, "%s: %s", #call, cudaGetErrorString(c_));               \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)
#define TRY_BLAS(call)                                                                             \
    do {                                                                                           \
        const cublasStatus_t b_ = (call);                                                          \
        if (b_ != CUBLAS_STATUS_SUCCESS) {                                                         \
            e = nmp_fail(msg, NMP_ERR_GPU, "%s: cuBLASLt status %d", #call, (int)b_);              \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)
#define TRY_SP(call)                                                                               \
    do {                                                                                           \
        const cusparseStatus_t s_ = (call);                                                        \
        if (s_ != CUSPARSE_STATUS_SUCCESS) {                                                       \
            e = nmp_fail(msg, NMP_ERR_GPU, "%s: %s", #call, lib.cusparseLtGetErrorString(s_));     \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

static cudaDataType in_type(nmp_dtype d)
{
    return d == NMP_DTYPE_F16 ? CUDA_R_16F
         : d == NMP_DTYPE_BF16 ? CUDA_R_16BF
         : d == NMP_DTYPE_I8 ? CUDA_R_8I : CUDA_R_8F_E4M3;
}

/* fp16 -> fp16, bf16 -> bf16, int8 -> int32, e4m3 -> bf16 */
static cudaDataType out_type(nmp_dtype d)
{
    return d == NMP_DTYPE_F16 ? CUDA_R_16F : d == NMP_DTYPE_I8 ? CUDA_R_32I : CUDA_R_16BF;
}

static size_t in_size(nmp_dtype d) { return d == NMP_DTYPE_F16 || d == NMP_DTYPE_BF16 ? 2 : 1; }
static size_t out_size(nmp_dtype d) { return d == NMP_DTYPE_I8 ? 4 : 2; }

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sum of |w| kept by an N:M prune of w's columns in perm order (host). */
static double kept_abs(const float *w, int64_t n, int64_t k, const int32_t *perm, nmp_err *e)
{
    double kept = 0;
    float *g = (float *)nmp_malloc((size_t)(n * k) * sizeof *g);
    const nmp_matrix view = nmp_matrix_view(w, n, k);
    const nmp_pattern nm = { 2, 4 };
    if (!g) {
        *e = NMP_ERR_NOMEM;
        return 0;
    }
    if ((*e = nmp_gather_cols(&view, perm, g)) == NMP_OK &&
        (*e = nmp_prune_nm(g, n, k, nm)) == NMP_OK)
        for (int64_t t = 0; t < n * k; t++)
            kept += fabs((double)g[t]);
    nmp_free(g);
    return kept;
}

/* Median of reps timed runs (ms) of one GEMM, after warmup runs; which: 0 dense, 1 sparse. */
static nmp_err time_gemm(spmm_bufs *b, int which, const nmp_spmm_desc *d, const void *alpha,
                         const void *beta, double *median, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    double *times = (double *)nmp_malloc((size_t)d->reps * sizeof *times);
    cudaStream_t stream = 0;
    if (!times)
        return NMP_ERR_NOMEM;
    for (int rep = -d->warmup; rep < d->reps; rep++) {
        TRY_CUDA(cudaEventRecord(b->ev0, stream));
        if (which == 0)
            TRY_BLAS(lib.cublasLtMatmul(b->lt, b->op, alpha, b->wq, b->la, b->xq, b->lb, beta,
                                        b->yd, b->lc, b->yd, b->lc, NULL, b->ws_dense, DENSE_WS,
                                        stream));
        else
            TRY_SP(lib.cusparseLtMatmul(&b->sp, &b->plan, alpha, b->wc, b->xq, beta, b->ys, b->ys,
                                        b->ws_sparse, &stream, 1));
        TRY_CUDA(cudaEventRecord(b->ev1, stream));
        TRY_CUDA(cudaEventSynchronize(b->ev1));
        float ms = 0;
        TRY_CUDA(cudaEventElapsedTime(&ms, b->ev0, b->ev1));
        if (rep >= 0)
            times[rep] = ms;
    }
    qsort(times, (size_t)d->reps, sizeof *times, cmp_double);
    *median = d->reps % 2 ? times[d->reps / 2]
                          : 0.5 * (times[d->reps / 2 - 1] + times[d->reps / 2]);
out:
    nmp_free(times);
    return e;
}

static void release(spmm_bufs *b)
{
    void *ptrs[] = { b->w0, b->x0, b->w, b->x, b->wi, b->yd32, b->ys32, b->yfull, b->yperm,
                     b->yident, b->absmax, b->perm, b->wq, b->xq, b->yd, b->ys, b->wc, b->wcbuf,
                     b->ws_sparse, b->ws_dense, b->valid, b->viol };
    for (size_t k = 0; k < sizeof ptrs / sizeof ptrs[0]; k++)
        cudaFree(ptrs[k]);
    if (b->ev0)
        cudaEventDestroy(b->ev0);
    if (b->ev1)
        cudaEventDestroy(b->ev1);
    if (b->pref)
        lib.cublasLtMatmulPreferenceDestroy(b->pref);
    if (b->la)
        lib.cublasLtMatrixLayoutDestroy(b->la);
    if (b->lb)
        lib.cublasLtMatrixLayoutDestroy(b->lb);
    if (b->lc)
        lib.cublasLtMatrixLayoutDestroy(b->lc);
    if (b->op)
        lib.cublasLtMatmulDescDestroy(b->op);
    if (b->lt)
        lib.cublasLtDestroy(b->lt);
    if (b->have_plan)
        lib.cusparseLtMatmulPlanDestroy(&b->plan);
    if (b->have_sel)
        lib.cusparseLtMatmulAlgSelectionDestroy(&b->sel);
    if (b->have_ma)
        lib.cusparseLtMatDescriptorDestroy(&b->ma);
    if (b->have_mb)
        lib.cusparseLtMatDescriptorDestroy(&b->mb);
    if (b->have_mc)
        lib.cusparseLtMatDescriptorDestroy(&b->mc);
    if (b->have_sp)
        lib.cusparseLtDestroy(&b->sp);
}

/* y (t x n, row-major) = x (t x k) w^T (n x k) in fp32 through cuBLASLt (CUBLAS_COMPUTE_32F: no
 * TF32): column-major Y^T (n x t) = op(W stored k x n)^T X^T (k x t). */
static nmp_err sgemm_xwt(cublasLtHandle_t h, const float *x, const float *w, int64_t t, int64_t n,
                         int64_t k, float *y, void *ws, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    cublasLtMatmulHeuristicResult_t heur;
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    const float one = 1.0f, zero = 0.0f;
    const size_t wsize = DENSE_WS;
    int nres = 0;
    memset(&heur, 0, sizeof heur);
    TRY_BLAS(lib.cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    TRY_BLAS(lib.cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    TRY_BLAS(lib.cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    TRY_BLAS(lib.cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, (uint64_t)k, (uint64_t)n, k));
    TRY_BLAS(lib.cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, (uint64_t)k, (uint64_t)t, k));
    TRY_BLAS(lib.cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, (uint64_t)n, (uint64_t)t, n));
    TRY_BLAS(lib.cublasLtMatmulPreferenceCreate(&pref));
    TRY_BLAS(lib.cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsize, sizeof wsize));
    TRY_BLAS(lib.cublasLtMatmulAlgoGetHeuristic(h, op, la, lb, lc, lc, pref, 1, &heur, &nres));
    if (nres < 1) {
        e = nmp_fail(msg, NMP_ERR_GPU, "cuBLASLt: no fp32 algorithm for %lld x %lld x %lld",
                     (long long)t, (long long)n, (long long)k);
        goto out;
    }
    TRY_BLAS(lib.cublasLtMatmul(h, op, &one, w, la, x, lb, &zero, y, lc, y, lc, &heur.algo, ws,
                                wsize, 0));
out:
    if (pref)
        lib.cublasLtMatmulPreferenceDestroy(pref);
    if (la)
        lib.cublasLtMatrixLayoutDestroy(la);
    if (lb)
        lib.cublasLtMatrixLayoutDestroy(lb);
    if (lc)
        lib.cublasLtMatrixLayoutDestroy(lc);
    if (op)
        lib.cublasLtMatmulDescDestroy(op);
    return e;
}

/* Workspace for cusparseLtMatmulSearch: the search times configurations the plan was not made
 * with (split-K among them), and a split-K configuration needs more workspace than the default
 * one cusparseLtMatmulGetWorkspace reports right after plan init (measured on an H200: 16.8 MB
 * at init, 25.2 MB for the configuration the search kept, fp16 4096 x 4096 x 11008; the run with
 * the init size ended in an illegal memory access). So each split-K setting is asked for its
 * own size on a scratch plan, and the search gets the largest, at least 64 MiB. */
static size_t search_workspace(spmm_bufs *b, size_t init)
{
    static const int splits[] = { 2, 3, 4, 5, 6, 8, 12, 16, 32, 64 };
    static const cusparseLtSplitKMode_t modes[] = { CUSPARSELT_SPLIT_K_MODE_ONE_KERNEL,
                                                    CUSPARSELT_SPLIT_K_MODE_TWO_KERNELS };
    size_t best = NMP_MAX(init, (size_t)64 << 20);
    for (size_t s = 0; s < sizeof splits / sizeof splits[0]; s++)
        for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
            cusparseLtMatmulAlgSelection_t sel;
            cusparseLtMatmulPlan_t plan;
            size_t size = 0;
            if (lib.cusparseLtMatmulAlgSelectionInit(&b->sp, &sel, &b->mm,
                                                     CUSPARSELT_MATMUL_ALG_DEFAULT) !=
                CUSPARSE_STATUS_SUCCESS)
                continue;
            if (lib.cusparseLtMatmulAlgSetAttribute(&b->sp, &sel, CUSPARSELT_MATMUL_SPLIT_K,
                                                    &splits[s], sizeof splits[s]) ==
                    CUSPARSE_STATUS_SUCCESS &&
                lib.cusparseLtMatmulAlgSetAttribute(&b->sp, &sel, CUSPARSELT_MATMUL_SPLIT_K_MODE,
                                                    &modes[m], sizeof modes[m]) ==
                    CUSPARSE_STATUS_SUCCESS &&
                lib.cusparseLtMatmulPlanInit(&b->sp, &plan, &b->mm, &sel) ==
                    CUSPARSE_STATUS_SUCCESS) {
                if (lib.cusparseLtMatmulGetWorkspace(&b->sp, &plan, &size) ==
                    CUSPARSE_STATUS_SUCCESS)
                    best = NMP_MAX(best, size);
                lib.cusparseLtMatmulPlanDestroy(&plan);
            }
            lib.cusparseLtMatmulAlgSelectionDestroy(&sel);
        }
    return best;
}

static nmp_err eval(const nmp_spmm_desc *din, nmp_spmm_report *r, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    spmm_bufs b;
    nmp_spmm_desc d = *din;
    float sw = 1.0f, sx = 1.0f;
    nmp_diff dp, di;
    float *hw = NULL, *hx = NULL, *hyd = NULL, *hys = NULL, *hf = NULL, *hp = NULL, *hi = NULL;
    memset(&b, 0, sizeof b);
    d.warmup = d.warmup > 0 ? d.warmup : 10;
    d.reps = d.reps > 0 ? d.reps : 50;
    nmp_gpu_describe(r->device, sizeof r->device);
    r->tolerance = nmp_dtype_tolerance(d.dtype);

    const int64_t n = d.n, k = d.k, t = d.tokens;
    const size_t wn = (size_t)(n * k), xn = (size_t)(t * k), yn = (size_t)(t * n);
    if ((!d.w && !(hw = (float *)nmp_malloc(wn * sizeof *hw))) ||
        (!d.x && !(hx = (float *)nmp_malloc(xn * sizeof *hx)))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    if (hw)
        NMP_TRY(e, nmp_layer_inputs(n, k, d.seed + 1, hw));
    if (hx)
        NMP_TRY(e, nmp_layer_inputs(t, k, d.seed, hx));
    {
    const float *w = d.w ? d.w : hw, *x = d.x ? d.x : hx;

    /* upload, gather by perm, prune W, count what breaks 2:4 */
    TRY_CUDA(cudaSetDevice(0));
    TRY_CUDA(cudaMalloc((void **)&b.w0, wn * 4));
    TRY_CUDA(cudaMalloc((void **)&b.x0, xn * 4));
    TRY_CUDA(cudaMalloc((void **)&b.w, wn * 4));
    TRY_CUDA(cudaMalloc((void **)&b.x, xn * 4));
    TRY_CUDA(cudaMalloc((void **)&b.absmax, 2 * sizeof(float)));
    TRY_CUDA(cudaMalloc((void **)&b.viol, sizeof *b.viol));
    TRY_CUDA(cudaMalloc((void **)&b.valid, sizeof *b.valid));
    TRY_CUDA(cudaMemcpy(b.w0, w, wn * 4, cudaMemcpyHostToDevice));
    TRY_CUDA(cudaMemcpy(b.x0, x, xn * 4, cudaMemcpyHostToDevice));
    if (d.perm) {
        TRY_CUDA(cudaMalloc((void **)&b.perm, (size_t)k * sizeof *b.perm));
        TRY_CUDA(cudaMemcpy(b.perm, d.perm, (size_t)k * sizeof *b.perm, cudaMemcpyHostToDevice));
    }
    TRY_CUDA(nmp_gpu_gather(b.w0, n, k, b.perm, b.w));
    TRY_CUDA(nmp_gpu_gather(b.x0, t, k, b.perm, b.x));
    TRY_CUDA(nmp_gpu_prune(b.w, n, k, 4, 2));
    TRY_CUDA(cudaMemset(b.viol, 0, sizeof *b.viol));
    TRY_CUDA(nmp_gpu_violations(b.w, n, k, 4, 2, b.viol));
    {
        unsigned long long viol = 0;
        TRY_CUDA(cudaMemcpy(&viol, b.viol, sizeof viol, cudaMemcpyDeviceToHost));
        r->violations = (int64_t)viol;
    }

    /* quantize: fp16/bf16 as they are; int8 and e4m3 with one scale per tensor */
    if (d.dtype == NMP_DTYPE_I8 || d.dtype == NMP_DTYPE_E4M3) {
        float mx[2];
        const float top = d.dtype == NMP_DTYPE_I8 ? 127.0f : 448.0f;
        TRY_CUDA(cudaMemset(b.absmax, 0, 2 * sizeof(float)));
        TRY_CUDA(nmp_gpu_absmax(b.w, (int64_t)wn, b.absmax));
        TRY_CUDA(nmp_gpu_absmax(b.x, (int64_t)xn, b.absmax + 1));
        TRY_CUDA(cudaMemcpy(mx, b.absmax, sizeof mx, cudaMemcpyDeviceToHost));
        sw = mx[0] > 0 ? top / mx[0] : 1.0f;
        sx = mx[1] > 0 ? top / mx[1] : 1.0f;
    }
    TRY_CUDA(cudaMalloc(&b.wq, wn * in_size(d.dtype)));
    TRY_CUDA(cudaMalloc(&b.xq, xn * in_size(d.dtype)));
    TRY_CUDA(cudaMalloc(&b.yd, yn * out_size(d.dtype)));
    TRY_CUDA(cudaMalloc(&b.ys, yn * out_size(d.dtype)));
    TRY_CUDA(nmp_gpu_convert(b.w, (int64_t)wn, d.dtype, sw, b.wq));
    TRY_CUDA(nmp_gpu_convert(b.x, (int64_t)xn, d.dtype, sx, b.xq));
    TRY_CUDA(cudaMemset(b.yd, 0xff, yn * out_size(d.dtype))); /* poison: NaN / -1 */
    TRY_CUDA(cudaMemset(b.ys, 0xff, yn * out_size(d.dtype)));
    TRY_CUDA(cudaEventCreate(&b.ev0));
    TRY_CUDA(cudaEventCreate(&b.ev1));

    /* dense: column-major Y^T (n x t) = op(W stored k x n)^T X^T (k x t), "TN" as fp8 needs */
    {
        const bool i8 = d.dtype == NMP_DTYPE_I8;
        const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
        const size_t ws = DENSE_WS;
        TRY_BLAS(lib.cublasLtCreate(&b.lt));
        TRY_BLAS(lib.cublasLtMatmulDescCreate(&b.op, i8 ? CUBLAS_COMPUTE_32I : CUBLAS_COMPUTE_32F,
                                              i8 ? CUDA_R_32I : CUDA_R_32F));
        TRY_BLAS(lib.cublasLtMatmulDescSetAttribute(b.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta,
                                                    sizeof ta));
        TRY_BLAS(lib.cublasLtMatmulDescSetAttribute(b.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb,
                                                    sizeof tb));
        TRY_BLAS(lib.cublasLtMatrixLayoutCreate(&b.la, in_type(d.dtype), (uint64_t)k, (uint64_t)n,
                                                k));
        TRY_BLAS(lib.cublasLtMatrixLayoutCreate(&b.lb, in_type(d.dtype), (uint64_t)k, (uint64_t)t,
                                                k));
        TRY_BLAS(lib.cublasLtMatrixLayoutCreate(&b.lc, out_type(d.dtype), (uint64_t)n,
                                                (uint64_t)t, n));
        TRY_BLAS(lib.cublasLtMatmulPreferenceCreate(&b.pref));
        TRY_BLAS(lib.cublasLtMatmulPreferenceSetAttribute(
            b.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
        TRY_CUDA(cudaMalloc(&b.ws_dense, ws));
    }

    /* sparse: the same product with A structured 2:4 along k */
    {
        const cusparseOrder_t col = CUSPARSE_ORDER_COL;
        const cusparseComputeType ct =
            d.dtype == NMP_DTYPE_I8 ? CUSPARSE_COMPUTE_32I : CUSPARSE_COMPUTE_32F;
        int valid = 1;
        size_t csize = 0, cbuf = 0;
        TRY_SP(lib.cusparseLtInit(&b.sp));
        b.have_sp = true;
        TRY_SP(lib.cusparseLtStructuredDescriptorInit(&b.sp, &b.ma, k, n, k, 16, in_type(d.dtype),
                                                      col, CUSPARSELT_SPARSITY_50_PERCENT));
        b.have_ma = true;
        TRY_SP(lib.cusparseLtDenseDescriptorInit(&b.sp, &b.mb, k, t, k, 16, in_type(d.dtype),
                                                 col));
        b.have_mb = true;
        TRY_SP(lib.cusparseLtDenseDescriptorInit(&b.sp, &b.mc, n, t, n, 16, out_type(d.dtype),
                                                 col));
        b.have_mc = true;
        TRY_SP(lib.cusparseLtMatmulDescriptorInit(&b.sp, &b.mm, CUSPARSE_OPERATION_TRANSPOSE,
                                                  CUSPARSE_OPERATION_NON_TRANSPOSE, &b.ma, &b.mb,
                                                  &b.mc, &b.mc, ct));
        TRY_SP(lib.cusparseLtMatmulAlgSelectionInit(&b.sp, &b.sel, &b.mm,
                                                    CUSPARSELT_MATMUL_ALG_DEFAULT));
        b.have_sel = true;
        TRY_SP(lib.cusparseLtMatmulPlanInit(&b.sp, &b.plan, &b.mm, &b.sel));
        b.have_plan = true;
        TRY_SP(lib.cusparseLtSpMMAPruneCheck(&b.sp, &b.mm, b.wq, b.valid, 0));
        TRY_CUDA(cudaMemcpy(&valid, b.valid, sizeof valid, cudaMemcpyDeviceToHost));
        r->prune_valid = valid == 0;
        TRY_SP(lib.cusparseLtSpMMACompressedSize(&b.sp, &b.plan, &csize, &cbuf));
        r->compressed_bytes = csize;
        TRY_CUDA(cudaMalloc(&b.wc, csize));
        TRY_CUDA(cudaMalloc(&b.wcbuf, cbuf ? cbuf : 1));
        TRY_SP(lib.cusparseLtSpMMACompress(&b.sp, &b.plan, b.wq, b.wc, b.wcbuf, 0));
        TRY_SP(lib.cusparseLtMatmulGetWorkspace(&b.sp, &b.plan, &r->ws_init));
        r->ws_search = search_workspace(&b, r->ws_init);
        TRY_CUDA(cudaMalloc(&b.ws_sparse, r->ws_search));
    }

    {
        const float alpha = 1.0f, beta = 0.0f;
        const int32_t ialpha = 1, ibeta = 0;
        const bool i8 = d.dtype == NMP_DTYPE_I8;
        const void *da = i8 ? (const void *)&ialpha : (const void *)&alpha;
        const void *db = i8 ? (const void *)&ibeta : (const void *)&beta;
        cudaStream_t stream = 0;
        int nres = 0;
        cublasLtMatmulHeuristicResult_t heur;
        memset(&heur, 0, sizeof heur);
        TRY_BLAS(lib.cublasLtMatmulAlgoGetHeuristic(b.lt, b.op, b.la, b.lb, b.lc, b.lc, b.pref, 1,
                                                    &heur, &nres));
        if (nres < 1) {
            e = nmp_fail(msg, NMP_ERR_GPU, "cuBLASLt: no dense algorithm for %s",
                         nmp_dtype_name(d.dtype));
            goto out;
        }
        /* cuSPARSELt's own search times its candidates and keeps the fastest in the plan; the
         * configuration it keeps may need more workspace than the plan's first one: ask again */
        TRY_SP(lib.cusparseLtMatmulSearch(&b.sp, &b.plan, &alpha, b.wc, b.xq, &beta, b.ys, b.ys,
                                          b.ws_sparse, &stream, 1));
        TRY_CUDA(cudaDeviceSynchronize());
        TRY_SP(lib.cusparseLtMatmulAlgGetAttribute(&b.sp, &b.sel, CUSPARSELT_MATMUL_ALG_CONFIG_ID,
                                                   &r->alg_id, sizeof r->alg_id));
        TRY_SP(lib.cusparseLtMatmulAlgGetAttribute(&b.sp, &b.sel, CUSPARSELT_MATMUL_SPLIT_K,
                                                   &r->split_k, sizeof r->split_k));
        TRY_SP(lib.cusparseLtMatmulGetWorkspace(&b.sp, &b.plan, &r->ws_final));
        if (r->ws_final > r->ws_search) {
            TRY_CUDA(cudaFree(b.ws_sparse));
            b.ws_sparse = NULL;
            TRY_CUDA(cudaMalloc(&b.ws_sparse, r->ws_final));
        }
        /* time_gemm passes NULL as the dense algo: cuBLASLt then runs its own heuristic pick,
         * the same top-1 algorithm as heur */
        NMP_TRY(e, time_gemm(&b, 0, &d, da, db, &r->dense_ms, msg));
        NMP_TRY(e, time_gemm(&b, 1, &d, &alpha, &beta, &r->sparse_ms, msg));
        TRY_CUDA(cudaDeviceSynchronize());
        const double flops = 2.0 * (double)n * (double)k * (double)t;
        r->dense_tflops = flops / (r->dense_ms * 1e-3) / 1e12;
        r->sparse_tflops = flops / (r->sparse_ms * 1e-3) / 1e12;
        r->speedup = r->dense_ms / r->sparse_ms;
    }

    /* sparse against dense, in output units (the quantization scales cancel) */
    TRY_CUDA(cudaMalloc((void **)&b.yd32, yn * 4));
    TRY_CUDA(cudaMalloc((void **)&b.ys32, yn * 4));
    TRY_CUDA(nmp_gpu_output_to_f32(b.yd, (int64_t)yn, d.dtype, 1.0f, b.yd32));
    TRY_CUDA(nmp_gpu_output_to_f32(b.ys, (int64_t)yn, d.dtype, 1.0f, b.ys32));
    hyd = (float *)nmp_malloc(yn * 4);
    hys = (float *)nmp_malloc(yn * 4);
    if (!hyd || !hys) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    TRY_CUDA(cudaMemcpy(hyd, b.yd32, yn * 4, cudaMemcpyDeviceToHost));
    TRY_CUDA(cudaMemcpy(hys, b.ys32, yn * 4, cudaMemcpyDeviceToHost));
    NMP_TRY(e, nmp_diff_compute(hys, hyd, (int64_t)yn, &r->sparse_vs_dense));
    r->within_tolerance = r->sparse_vs_dense.nonfinite == 0 &&
                          r->sparse_vs_dense.max_abs <=
                              r->tolerance * r->sparse_vs_dense.max_ref;

    /* fp32 output error of the pruned layer against the unpruned one, with and without perm:
     * the device side of nmp_layer_error */
    if (d.errors) {
        TRY_CUDA(cudaMalloc((void **)&b.wi, wn * 4));
        TRY_CUDA(cudaMalloc((void **)&b.yfull, yn * 4));
        TRY_CUDA(cudaMalloc((void **)&b.yperm, yn * 4));
        TRY_CUDA(cudaMalloc((void **)&b.yident, yn * 4));
        TRY_CUDA(cudaMemcpy(b.wi, b.w0, wn * 4, cudaMemcpyDeviceToDevice));
        TRY_CUDA(nmp_gpu_prune(b.wi, n, k, 4, 2));
        NMP_TRY(e, sgemm_xwt(b.lt, b.x0, b.w0, t, n, k, b.yfull, b.ws_dense, msg));
        NMP_TRY(e, sgemm_xwt(b.lt, b.x, b.w, t, n, k, b.yperm, b.ws_dense, msg));
        NMP_TRY(e, sgemm_xwt(b.lt, b.x0, b.wi, t, n, k, b.yident, b.ws_dense, msg));
        hf = (float *)nmp_malloc(yn * 4);
        hp = (float *)nmp_malloc(yn * 4);
        hi = (float *)nmp_malloc(yn * 4);
        if (!hf || !hp || !hi) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
        TRY_CUDA(cudaMemcpy(hf, b.yfull, yn * 4, cudaMemcpyDeviceToHost));
        TRY_CUDA(cudaMemcpy(hp, b.yperm, yn * 4, cudaMemcpyDeviceToHost));
        TRY_CUDA(cudaMemcpy(hi, b.yident, yn * 4, cudaMemcpyDeviceToHost));
        NMP_TRY(e, nmp_diff_compute(hp, hf, (int64_t)yn, &dp));
        NMP_TRY(e, nmp_diff_compute(hi, hf, (int64_t)yn, &di));
        r->err_perm = dp.rel_fro;
        r->err_identity = di.rel_fro;
        r->kept_identity = kept_abs(w, n, k, NULL, &e);
        if (e == NMP_OK)
            r->kept_perm = kept_abs(w, n, k, d.perm, &e);
        if (e != NMP_OK)
            goto out;
    }
    }
out:
    release(&b);
    nmp_free(hw);
    nmp_free(hx);
    nmp_free(hyd);
    nmp_free(hys);
    nmp_free(hf);
    nmp_free(hp);
    nmp_free(hi);
    return e;
}

extern "C" nmp_err nmp_gpu_spmm_eval(const nmp_spmm_desc *d, nmp_spmm_report *r, nmp_msg *msg)
{
    memset(r, 0, sizeof *r);
    r->err_identity = r->err_perm = -1;
    if (d->dtype == NMP_DTYPE_F32)
        return nmp_fail(msg, NMP_ERR_UNSUPPORTED,
                        "fp32/tf32 in cuSPARSELt is 1:2 sparsity, not 2:4: use fp16, bf16, int8 or "
                        "e4m3");
    const int64_t align = in_size(d->dtype) == 1 ? 32 : 16;
    if (d->n < align || d->k < align || d->tokens < align || d->n % align || d->k % align ||
        d->tokens % align || d->n > INT32_MAX || d->k > INT32_MAX || d->tokens > INT32_MAX)
        return nmp_fail(msg, NMP_ERR_ARG,
                        "shape %lld x %lld with %lld tokens: each must be a multiple of %lld "
                        "for %s",
                        (long long)d->n, (long long)d->k, (long long)d->tokens, (long long)align,
                        nmp_dtype_name(d->dtype));
    if (d->perm && nmp_perm_check(d->perm, d->k) != NMP_OK)
        return nmp_fail(msg, NMP_ERR_ARG, "the permutation is not one of 0..%lld",
                        (long long)d->k - 1);
    if (nmp_gpu_is_lost()) {
        r->device_lost = 1;
        return nmp_fail(msg, NMP_ERR_GPU, "not run: the CUDA context was lost to an earlier fault "
                        "in this process (rerun in a fresh process)");
    }
    nmp_err e = nmp_gpu_libs_load(NULL, msg);
    if (e != NMP_OK)
        return e;
    if (nmp_gpu_count() < 1)
        return nmp_fail(msg, NMP_ERR_GPU, "no CUDA device found");
    e = eval(d, r, msg);
    /* a fault surfaces at the next synchronizing call: eval synchronizes before it returns, so
     * the row that faulted is the one that reports it */
    if (e == NMP_ERR_GPU && nmp_gpu_check_lost()) {
        r->device_lost = 1;
        if (msg) {
            const size_t used = strlen(msg->text);
            snprintf(msg->text + used, sizeof msg->text - used,
                     " (CUDA context lost: later device calls in this process fail)");
        }
    }
    return e;
}

#endif /* NMP_HAVE_CUSPARSELT */

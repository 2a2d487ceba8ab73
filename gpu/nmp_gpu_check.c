/* nmp_gpu_check.c: standalone GPU check (needs neither jansson nor cmocka): every GPU backend
 * entry against the CPU reference on the same input, the device's layer error columns against
 * nmp_layer_error, then timings (CPU vs GPU scoring and stripe-pair windows, pricing at C = 256,
 * cuSPARSELt vs cuBLASLt over LLM shapes) as one table. Exit 77 without a device, 1 when a
 * comparison fails, 3 when a fault lost the CUDA context (the table says at which row R; rerun
 * with --from R+1 in a fresh process, as gpu/check.sh does).
 * Usage: nmp_gpu_check [--quick] [--from R] (--from: the GEMM table only, from row R) */
#include "nmp_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void check(int ok, const char *what, double got, double want)
{
    if (!ok) {
        failures++;
        printf("FAIL %-40s got %.9g want %.9g\n", what, got, want);
    }
}

static nmp_problem *make_problem(int64_t rows, int64_t cols, int n, int m, uint64_t seed)
{
    nmp_rng r;
    nmp_rng_seed(&r, seed);
    float *a = nmp_malloc((size_t)(rows * cols) * sizeof *a);
    for (int64_t k = 0; a && k < rows * cols; k++)
        a[k] = (float)fabs(nmp_rng_normal(&r));
    nmp_problem_desc d = { 0 };
    d.weights = nmp_matrix_view(a, rows, cols);
    d.nm.n = n;
    d.nm.m = m;
    nmp_problem *pb = NULL;
    if (!a || nmp_problem_create(&d, &pb, NULL) != NMP_OK)
        pb = NULL;
    nmp_free(a);
    return pb;
}

static int close_to(double a, double b, double scale)
{
    return fabs(a - b) <= 1e-5 * (1 + fabs(scale)) + 1e-9 * fabs(b);
}

/* GPU entries against the CPU ones on one problem. */
static void compare(int64_t rows, int64_t cols, int n, int m, int pricing)
{
    nmp_problem *pb = make_problem(rows, cols, n, m, (uint64_t)(rows * 131 + cols));
    nmp_backend cpu, gpu;
    nmp_msg msg = { { 0 } };
    char what[96];
    if (!pb) {
        check(0, "problem", 0, 0);
        return;
    }
    nmp_backend_init_cpu(&cpu, pb);
    if (nmp_backend_init(&gpu, pb, "gpu", &msg) != NMP_OK) {
        printf("FAIL backend init: %s\n", msg.text);
        failures++;
        nmp_problem_free(pb);
        return;
    }
    const int64_t g = cols / m, pairs = g * (g - 1) / 2;
    int32_t *perm = nmp_malloc((size_t)cols * sizeof *perm);
    int64_t *b = nmp_malloc((size_t)cols * sizeof *b);
    double *x = nmp_malloc((size_t)(cols + pairs + 1) * sizeof *x);
    double *y = nmp_malloc((size_t)(cols + pairs + 1) * sizeof *y);
    uint32_t *mx = nmp_malloc((size_t)(pairs + 1) * sizeof *mx);
    uint32_t *my = nmp_malloc((size_t)(pairs + 1) * sizeof *my);
    int32_t *cx = nmp_malloc((size_t)(cols * m) * sizeof *cx);
    int32_t *cy = nmp_malloc((size_t)(cols * m) * sizeof *cy);
    nmp_rng r;
    nmp_rng_seed(&r, 7);
    nmp_perm_random(perm, cols, &r);
    for (int64_t t = 0; t < cols; t++)
        b[t] = t;
    const double scale = nmp_score_total(pb) / (double)g;

    snprintf(what, sizeof what, "score_groups %lldx%lld %d:%d", (long long)rows, (long long)cols,
             n, m);
    check(cpu.score_groups(&cpu, perm, x) == NMP_OK && gpu.score_groups(&gpu, perm, y) == NMP_OK,
          what, 0, 0);
    for (int64_t t = 0; t < g; t++)
        check(close_to(y[t], x[t], scale), what, y[t], x[t]);

    snprintf(what, sizeof what, "swap_deltas %lldx%lld %d:%d", (long long)rows, (long long)cols,
             n, m);
    for (int64_t a = 0; a < cols; a += 1 + cols / 5) {
        check(cpu.swap_deltas(&cpu, perm, a, b, cols, x) == NMP_OK &&
                  gpu.swap_deltas(&gpu, perm, a, b, cols, y) == NMP_OK, what, 0, 0);
        for (int64_t t = 0; t < cols; t++)
            check(close_to(y[t], x[t], scale), what, y[t], x[t]);
    }

    if (2 * m <= 16 && pairs <= 4096) {
        snprintf(what, sizeof what, "windows %lldx%lld %d:%d", (long long)rows, (long long)cols, n,
                 m);
        check(cpu.window_repartitions(&cpu, perm, x, mx) == NMP_OK &&
                  gpu.window_repartitions(&gpu, perm, y, my) == NMP_OK, what, 0, 0);
        int64_t p = 0;
        for (int64_t gg = 0; gg < g; gg++)
            for (int64_t h = gg + 1; h < g; h++, p++) {
                check(close_to(y[p], x[p], scale), what, y[p], x[p]);
                const double cur = nmp_backend_split_value(pb, perm, gg, h, (1u << m) - 1);
                const double v = nmp_backend_split_value(pb, perm, gg, h, my[p]) - cur;
                check(close_to(v, x[p], scale), what, v, x[p]); /* GPU's mask is as good */
            }
    }

    if (pricing) {
        snprintf(what, sizeof what, "pricing %lldx%lld %d:%d", (long long)rows, (long long)cols,
                 n, m);
        double *dual = nmp_malloc((size_t)cols * sizeof *dual);
        for (int64_t i = 0; i < cols; i++)
            dual[i] = scale / m * (0.5 + nmp_rng_uniform(&r));
        check(cpu.pricing(&cpu, dual, x, cx) == NMP_OK && gpu.pricing(&gpu, dual, y, cy) == NMP_OK,
              what, 0, 0);
        for (int64_t i = 0; i + m <= cols; i++) {
            check(close_to(y[i], x[i], scale), what, y[i], x[i]);
            double v = nmp_score_group_value(pb, cy + i * m);
            for (int t = 0; t < m; t++)
                v -= dual[cy[i * m + t]];
            check(close_to(v, x[i], scale), what, v, x[i]);
        }
        nmp_free(dual);
    }
    nmp_free(perm);
    nmp_free(b);
    nmp_free(x);
    nmp_free(y);
    nmp_free(mx);
    nmp_free(my);
    nmp_free(cx);
    nmp_free(cy);
    nmp_backend_release(&gpu);
    nmp_problem_free(pb);
}

/* seconds of fn's best of 3 runs */
#define TIME3(var, call)                                                                           \
    do {                                                                                           \
        var = INFINITY;                                                                            \
        for (int rep_ = 0; rep_ < 3; rep_++) {                                                     \
            const double t0_ = nmp_now();                                                          \
            (void)(call);                                                                          \
            const double t1_ = nmp_now() - t0_;                                                    \
            var = t1_ < var ? t1_ : var;                                                           \
        }                                                                                          \
    } while (0)

static void timings(void)
{
    printf("# scoring         rows  cols     cpu_s     gpu_s   speedup\n");
    nmp_problem *pb = make_problem(4096, 4096, 2, 4, 1);
    nmp_backend cpu, gpu;
    if (!pb || nmp_backend_init(&gpu, pb, "gpu", NULL) != NMP_OK) {
        printf("FAIL timing setup\n");
        failures++;
        nmp_problem_free(pb);
        return;
    }
    nmp_backend_init_cpu(&cpu, pb);
    int64_t *b = nmp_malloc(4096 * sizeof *b);
    double *out = nmp_malloc(4096 * sizeof *out), tc, tg;
    for (int t = 0; t < 4096; t++)
        b[t] = t;
    TIME3(tc, cpu.score_groups(&cpu, NULL, out));
    TIME3(tg, gpu.score_groups(&gpu, NULL, out));
    printf("%-14s %7d %5d %9.4f %9.4f %8.1fx\n", "score_groups", 4096, 4096, tc, tg, tc / tg);
    TIME3(tc, cpu.swap_deltas(&cpu, NULL, 5, b, 4096, out));
    TIME3(tg, gpu.swap_deltas(&gpu, NULL, 5, b, 4096, out));
    printf("%-14s %7d %5d %9.4f %9.4f %8.1fx\n", "swap_deltas", 4096, 4096, tc, tg, tc / tg);
    nmp_backend_release(&gpu);
    nmp_problem_free(pb);
    nmp_free(b);
    nmp_free(out);

    pb = make_problem(512, 256, 2, 4, 2); /* pricing round at C = 256 */
    if (pb && nmp_backend_init(&gpu, pb, "gpu", NULL) == NMP_OK) {
        double y[256], rc[256];
        int32_t cols[256 * 4];
        for (int i = 0; i < 256; i++)
            y[i] = nmp_score_total(pb) / 512.0;
        TIME3(tg, gpu.pricing(&gpu, y, rc, cols));
        printf("%-14s %7d %5d %9s %9.4f %9s\n", "pricing", 512, 256, "-", tg, "-");
        nmp_backend_release(&gpu);
    }
    nmp_problem_free(pb);
    pb = make_problem(1024, 512, 2, 4, 4); /* the seam of a device search: all 8128 stripe pairs */
    if (pb && nmp_backend_init(&gpu, pb, "gpu", NULL) == NMP_OK) {
        double *gain = nmp_malloc(8128 * sizeof *gain);
        uint32_t *mask = nmp_malloc(8128 * sizeof *mask);
        nmp_backend_init_cpu(&cpu, pb);
        TIME3(tc, cpu.window_repartitions(&cpu, NULL, gain, mask));
        TIME3(tg, gpu.window_repartitions(&gpu, NULL, gain, mask));
        printf("%-14s %7d %5d %9.4f %9.4f %8.1fx\n", "windows", 1024, 512, tc, tg, tc / tg);
        nmp_free(gain);
        nmp_free(mask);
        nmp_backend_release(&gpu);
    }
    nmp_problem_free(pb);
    pb = make_problem(4096, 1024, 2, 4, 3); /* all 130816 stripe pairs of 256 groups */
    if (pb && nmp_backend_init(&gpu, pb, "gpu", NULL) == NMP_OK) {
        double *gain = nmp_malloc(130816 * sizeof *gain);
        uint32_t *mask = nmp_malloc(130816 * sizeof *mask);
        TIME3(tg, gpu.window_repartitions(&gpu, NULL, gain, mask));
        printf("%-14s %7d %5d %9s %9.4f %9s\n", "windows", 4096, 1024, "-", tg, "-");
        nmp_free(gain);
        nmp_free(mask);
        nmp_backend_release(&gpu);
    }
    nmp_problem_free(pb);
}

/* The device's error columns (errors = 1: fp32 cuBLASLt GEMMs) against the CPU reference on the
 * same W, X and perm. */
static void layer_errors(void)
{
    const int64_t n = 256, k = 512, t = 128;
    float *w = nmp_malloc((size_t)(n * k) * sizeof *w);
    float *x = nmp_malloc((size_t)(t * k) * sizeof *x);
    int32_t *perm = nmp_malloc((size_t)k * sizeof *perm);
    nmp_spmm_desc d = { 0 };
    nmp_spmm_report r;
    nmp_layer_err le;
    nmp_msg msg = { { 0 } };
    nmp_rng rng;
    const nmp_pattern nm = { 2, 4 };
    nmp_rng_seed(&rng, 3);
    nmp_perm_random(perm, k, &rng);
    if (!w || !x || !perm || nmp_layer_inputs(n, k, 8, w) != NMP_OK ||
        nmp_layer_inputs(t, k, 9, x) != NMP_OK) {
        check(0, "layer errors: setup", 0, 0);
        goto out;
    }
    d.w = w;
    d.perm = perm;
    d.n = n;
    d.k = k;
    d.tokens = t;
    d.seed = 9; /* d.x NULL: nmp_layer_inputs(t, k, 9), the x above */
    d.reps = 2;
    d.warmup = 1;
    d.errors = 1;
    const nmp_matrix wv = nmp_matrix_view(w, n, k);
    if (nmp_gpu_spmm_eval(&d, &r, &msg) != NMP_OK) {
        printf("FAIL layer errors on the device: %s\n", msg.text);
        failures++;
        goto out;
    }
    check(nmp_layer_error(&wv, x, t, perm, nm, &le) == NMP_OK, "layer errors: reference", 0, 0);
    check(fabs(r.err_identity - le.err_identity) <= 1e-4 * le.err_identity,
          "layer err_identity gpu vs cpu", r.err_identity, le.err_identity);
    check(fabs(r.err_perm - le.err_perm) <= 1e-4 * le.err_perm, "layer err_perm gpu vs cpu",
          r.err_perm, le.err_perm);
    check(fabs(r.kept_perm - le.kept_perm) <= 1e-6 * le.kept_perm, "layer kept_perm", r.kept_perm,
          le.kept_perm);
    printf("# layer errors 256x512, 128 tokens: identity gpu %.6f cpu %.6f, perm gpu %.6f cpu "
           "%.6f\n", r.err_identity, le.err_identity, r.err_perm, le.err_perm);
out:
    nmp_free(w);
    nmp_free(x);
    nmp_free(perm);
}

/* The GEMM table from row `from`; 3 after a fault that lost the context, else 0. */
static int spmm_table(int quick, int from)
{
    static const int64_t shapes[][3] = {
        { 256, 4096, 4096 },  { 256, 4096, 11008 },  { 256, 11008, 4096 },
        { 4096, 4096, 4096 }, { 4096, 4096, 11008 }, { 4096, 11008, 4096 },
        { 8192, 8192, 8192 }, { 16384, 8192, 8192 },
    };
    const nmp_dtype dts[] = { NMP_DTYPE_F16, NMP_DTYPE_BF16, NMP_DTYPE_I8, NMP_DTYPE_E4M3 };
    const int nshapes = quick ? 1 : (int)(sizeof shapes / sizeof shapes[0]), rows = 4 * nshapes;
    if (from == 0)
        printf("# row dtype      m      n      k   dense_ms  sparse_ms  speedup  dense_TF  "
               "sparse_TF   maxdiff  ok   alg  splitK  ws_init  ws_search  ws_final (MiB)\n");
    for (int row = from; row < rows; row++) {
        const int di = row / nshapes, s = row % nshapes;
        nmp_spmm_desc d = { 0 };
        nmp_spmm_report r;
        nmp_msg msg = { { 0 } };
        d.tokens = quick ? 256 : shapes[s][0];
        d.n = quick ? 512 : shapes[s][1];
        d.k = quick ? 1024 : shapes[s][2];
        d.dtype = dts[di];
        d.reps = quick ? 5 : 30;
        d.warmup = quick ? 2 : 10;
        if (nmp_gpu_spmm_eval(&d, &r, &msg) != NMP_OK) {
            printf("%5d %-6s %6lld %6lld %6lld   %s: %s\n", row, nmp_dtype_name(d.dtype),
                   (long long)d.tokens, (long long)d.n, (long long)d.k,
                   r.device_lost ? "FAULT" : "error", msg.text);
            failures++;
            if (r.device_lost) {
                printf("# stopped at row %d: the CUDA context is lost; rows %d.. need a fresh "
                       "process (--from %d)\n", row, row + 1, row + 1);
                return row + 1 < rows ? 3 : 0;
            }
            continue;
        }
        const int ok = r.within_tolerance && r.prune_valid && r.violations == 0;
        failures += !ok;
        printf("%5d %-6s %6lld %6lld %6lld %10.4f %10.4f %8.3f %9.1f %10.1f %9.2e  %-3s %5d %6d "
               "%8.1f %10.1f %9.1f\n", row, nmp_dtype_name(d.dtype), (long long)d.tokens,
               (long long)d.n, (long long)d.k, r.dense_ms, r.sparse_ms, r.speedup,
               r.dense_tflops, r.sparse_tflops,
               r.sparse_vs_dense.max_abs / (r.sparse_vs_dense.max_ref + 1e-30), ok ? "yes" : "NO",
               r.alg_id, r.split_k, (double)r.ws_init / 1048576.0,
               (double)r.ws_search / 1048576.0, (double)r.ws_final / 1048576.0);
        fflush(stdout);
    }
    if (from == 0) {
        nmp_spmm_desc d = { 0 };
        nmp_spmm_report r;
        d.n = d.k = d.tokens = 64;
        d.dtype = NMP_DTYPE_F32;
        check(nmp_gpu_spmm_eval(&d, &r, NULL) == NMP_ERR_UNSUPPORTED, "fp32 refused as 1:2", 0,
              0);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int quick = 0, from = -1;
    char dev[160], libs[2200];
    nmp_msg msg = { { 0 } };
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[a], "--from") == 0 && a + 1 < argc)
            from = atoi(argv[++a]);
        else {
            fprintf(stderr, "usage: nmp_gpu_check [--quick] [--from ROW]\n");
            return 2;
        }
    }
    if (nmp_gpu_count() < 1) {
        printf("nmp_gpu_check: no CUDA device found: skipped\n");
        return 77;
    }
    nmp_gpu_describe(dev, sizeof dev);
    const int have_libs = nmp_gpu_has_cusparselt() && nmp_gpu_libs_load(NULL, &msg) == NMP_OK;
    nmp_gpu_libs_describe(libs, sizeof libs);
    if (from >= 0) { /* a fresh process for the rest of the GEMM table */
        const int rc = have_libs ? spmm_table(quick, from) : 0;
        printf("# result: %s (%d failures)\n", failures ? "FAIL" : "PASS", failures);
        return rc ? rc : failures ? 1 : 0;
    }
    printf("# device: %s\n# %s\n", dev, have_libs ? libs : msg.text);
    compare(1, 16, 2, 4, 1);
    compare(37, 32, 2, 4, 1);
    compare(300, 64, 2, 4, 0);
    compare(1000, 24, 2, 4, 1);
    compare(129, 48, 3, 8, 0);
    compare(64, 36, 2, 6, 0);
    compare(50, 24, 1, 2, 1);
    if (have_libs)
        layer_errors();
    printf("# backend comparisons: %s\n", failures ? "FAILED" : "all GPU entries match the CPU");
    if (!quick)
        timings();
    const int rc = have_libs ? spmm_table(quick, 0) : 0;
    if (!have_libs) {
        printf("FAIL GPU libraries: %s\n", msg.text);
        failures++;
    }
    printf("# result: %s (%d failures)\n", failures ? "FAIL" : "PASS", failures);
    return rc ? rc : failures ? 1 : 0;
}

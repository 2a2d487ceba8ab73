/* nmp_cli_gpu.c: the GPU commands: gpu-eval (one layer, pruned 2:4 after a permutation, sparse
 * cuSPARSELt GEMM against dense cuBLAS) and gpu-bench (the same over a table of shapes) */
#include "nmp_cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help_eval[] =
    "usage: nmperm gpu-eval W.npy --report R.json [options]\n"
    "\n"
    "On the CUDA device: gather the columns of W (out x in) and of random activations X\n"
    "(tokens x in) by the permutation, prune W 2:4 by magnitude, check the pattern with\n"
    "cuSPARSELt, compress, and time Y = X W^T with cuSPARSELt (after its algorithm search) and\n"
    "with dense cuBLAS on the same pruned W (CUDA events, warm-up, median). Reports the speedup,\n"
    "TFLOP/s, the sparse-vs-dense difference against the dtype's tolerance, and the fp32 output\n"
    "error of the pruned layer against the unpruned one, with and without the permutation.\n"
    "\n"
    "  --report R.json     write the report here (also printed as one line on stdout)\n"
    "  --perm P.npy        permutation of W's columns (default: identity)\n"
    "  --tokens T          rows of X (default 2048)\n"
    "  --dtype D           fp16 (default), bf16, int8, e4m3; fp32/tf32 are refused (1:2 in\n"
    "                      cuSPARSELt)\n"
    "  --reps N            timed runs per GEMM (default 50); --warmup N (default 10)\n"
    "  --seed S            seed of X (default 0)\n"
    "\n"
    "Needs a CUDA device and a build with cuSPARSELt; otherwise one line and exit 1.\n";

static const char help_bench[] =
    "usage: nmperm gpu-bench [--m M --n N --k K] [--dtype D[,D...]] [--reps N] [--warmup N]\n"
    "\n"
    "Times the 2:4 sparse GEMM (cuSPARSELt) against dense cuBLAS for Y (M x N) = X (M x K) W^T\n"
    "with random data, one row per (dtype, shape). Without --m/--n/--k: M = 4096 tokens over\n"
    "the LLM weight shapes N x K = 4096x4096, 4096x11008, 11008x4096, and 8192^3.\n"
    "Exit 1 when a sparse result is outside the dtype's tolerance of the dense one.\n"
    "\n"
    "  --dtype D[,D...]    fp16 (default), bf16, int8, e4m3\n";

/* The one message without a device; exit 1 as the task's failure, not an internal error. */
static int need_device(const char *cmd)
{
    if (nmp_gpu_count() < 1)
        return cli_fail(CLI_EXIT_USAGE, cmd, "no CUDA device found");
    if (!nmp_gpu_has_cusparselt())
        return cli_fail(CLI_EXIT_USAGE, cmd, "cuSPARSELt unavailable in this build");
    return 0;
}

static bool take_dtype(cli_args *c, const char *v, nmp_dtype *d)
{
    if (v && nmp_dtype_parse(v, d) != NMP_OK) {
        cli_usage(c, "--dtype '%s': expected fp16, bf16, int8 or e4m3", v);
        return false;
    }
    if (v && *d == NMP_DTYPE_F32) {
        cli_usage(c, "--dtype %s: cuSPARSELt runs fp32/tf32 as 1:2 sparsity, not 2:4; use fp16, "
                     "bf16, int8 or e4m3", v);
        return false;
    }
    return true;
}

static json_t *diff_json(const nmp_diff *d)
{
    json_t *o = json_object();
    cli_jset(o, "max_abs", cli_jnum(d->max_abs));
    cli_jset(o, "max_ref", cli_jnum(d->max_ref));
    cli_jset(o, "rel_fro", cli_jnum(d->rel_fro));
    cli_jset(o, "nonfinite", json_integer(d->nonfinite));
    return o;
}

int cli_cmd_gpu_eval(cli_args *c)
{
    const char *input = NULL, *report = NULL, *perm_path = NULL, *v = NULL;
    int64_t tokens = 2048, reps = 50, warmup = 10;
    uint64_t seed = 0;
    nmp_dtype dtype = NMP_DTYPE_F16;
    if (cli_help_or_version(c, help_eval))
        return 0;
    for (c->k = 2; c->k < c->argc && !c->bad; c->k++) {
        if (cli_take(c, "--report", NULL, &v))
            report = v;
        else if (cli_take(c, "--perm", NULL, &v))
            perm_path = v;
        else if (cli_take(c, "--tokens", NULL, &v))
            cli_parse_i64(c, "--tokens", v, 16, 1 << 20, &tokens);
        else if (cli_take(c, "--reps", NULL, &v))
            cli_parse_i64(c, "--reps", v, 1, 100000, &reps);
        else if (cli_take(c, "--warmup", NULL, &v))
            cli_parse_i64(c, "--warmup", v, 0, 100000, &warmup);
        else if (cli_take(c, "--seed", NULL, &v))
            cli_parse_u64(c, "--seed", v, UINT64_MAX, &seed);
        else if (cli_take(c, "--dtype", NULL, &v))
            take_dtype(c, v, &dtype);
        else
            cli_take_input(c, &input);
    }
    if (!c->bad && !input)
        cli_usage(c, "missing the weight matrix W.npy");
    if (!c->bad && !report)
        cli_usage(c, "missing --report R.json");
    if (c->bad)
        return CLI_EXIT_USAGE;
    /* the files first: a wrong path is named even on a machine without a device */
    const char *const inputs[] = { input, perm_path };
    int rc = nmp_cli_check_paths(inputs, 2, &report, 1);
    if (rc == 0)
        rc = cli_check_writable(report);
    if (rc)
        return rc;

    nmp_array w = { 0 };
    int32_t *perm = NULL;
    nmp_msg msg = { { 0 } };
    nmp_spmm_report r;
    char *text = NULL;
    nmp_err e = nmp_npy_read_matrix(input, &w, &msg);
    if (e != NMP_OK) {
        rc = cli_fail_lib(e, input, &msg);
        goto out;
    }
    if (perm_path && (rc = cli_load_perm(perm_path, input, w.cols, &perm)) != 0)
        goto out;
    if ((rc = need_device(c->cmd)) != 0)
        goto out;
    nmp_spmm_desc d = { 0 };
    d.w = w.data;
    d.perm = perm;
    d.n = w.rows;
    d.k = w.cols;
    d.tokens = tokens;
    d.dtype = dtype;
    d.reps = (int)reps;
    d.warmup = (int)warmup;
    d.seed = seed;
    d.errors = 1;
    if ((e = nmp_gpu_spmm_eval(&d, &r, &msg)) != NMP_OK) {
        rc = cli_fail_lib(e, c->cmd, &msg);
        goto out;
    }
    json_t *o = json_object();
    cli_jset(o, "file", json_string(input));
    cli_jset(o, "perm", perm_path ? json_string(perm_path) : json_null());
    cli_jset(o, "device", json_string(r.device));
    cli_jset(o, "dtype", json_string(nmp_dtype_name(dtype)));
    cli_jset(o, "n", json_integer(w.rows));
    cli_jset(o, "k", json_integer(w.cols));
    cli_jset(o, "tokens", json_integer(tokens));
    cli_jset(o, "reps", json_integer(reps));
    cli_jset(o, "dense_ms", cli_jnum(r.dense_ms));
    cli_jset(o, "sparse_ms", cli_jnum(r.sparse_ms));
    cli_jset(o, "speedup", cli_jnum(r.speedup));
    cli_jset(o, "dense_tflops", cli_jnum(r.dense_tflops));
    cli_jset(o, "sparse_tflops", cli_jnum(r.sparse_tflops));
    cli_jset(o, "sparse_vs_dense", diff_json(&r.sparse_vs_dense));
    cli_jset(o, "tolerance", cli_jnum(r.tolerance));
    cli_jset(o, "within_tolerance", json_boolean(r.within_tolerance));
    cli_jset(o, "prune_check_valid", json_boolean(r.prune_valid));
    cli_jset(o, "violations", json_integer(r.violations));
    cli_jset(o, "alg_id", json_integer(r.alg_id));
    cli_jset(o, "compressed_bytes", json_integer((json_int_t)r.compressed_bytes));
    cli_jset(o, "err_identity", cli_jnum(r.err_identity));
    cli_jset(o, "err_perm", cli_jnum(r.err_perm));
    cli_jset(o, "kept_abs_identity", cli_jnum(r.kept_identity));
    cli_jset(o, "kept_abs_perm", cli_jnum(r.kept_perm));
    text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
    if (!text) {
        json_decref(o);
        rc = cli_fail_lib(NMP_ERR_NOMEM, report, NULL);
        goto out;
    }
    const size_t len = strlen(text);
    if ((rc = cli_write_atomic(report, text, len)) != 0) {
        json_decref(o);
        goto out;
    }
    rc = cli_print_json(o);
    if (!rc && (!r.within_tolerance || !r.prune_valid || r.violations))
        rc = cli_fail(CLI_EXIT_USAGE, c->cmd, "check failed: sparse vs dense %s, prune check %s",
                      r.within_tolerance ? "ok" : "outside tolerance",
                      r.prune_valid ? "ok" : "rejected");
out:
    free(text);
    nmp_array_free(&w);
    nmp_free(perm);
    return rc;
}

int cli_cmd_gpu_bench(cli_args *c)
{
    static const int64_t shapes[][3] = { { 4096, 4096, 4096 }, { 4096, 4096, 11008 },
                                         { 4096, 11008, 4096 }, { 8192, 8192, 8192 } };
    const char *v = NULL, *dtypes = "fp16";
    int64_t m = 0, n = 0, k = 0, reps = 50, warmup = 10;
    if (cli_help_or_version(c, help_bench))
        return 0;
    for (; c->k < c->argc && !c->bad; c->k++) {
        if (cli_take(c, "--m", NULL, &v))
            cli_parse_i64(c, "--m", v, 16, 1 << 20, &m);
        else if (cli_take(c, "--n", NULL, &v))
            cli_parse_i64(c, "--n", v, 16, 1 << 20, &n);
        else if (cli_take(c, "--k", NULL, &v))
            cli_parse_i64(c, "--k", v, 16, 1 << 20, &k);
        else if (cli_take(c, "--reps", NULL, &v))
            cli_parse_i64(c, "--reps", v, 1, 100000, &reps);
        else if (cli_take(c, "--warmup", NULL, &v))
            cli_parse_i64(c, "--warmup", v, 0, 100000, &warmup);
        else if (cli_take(c, "--dtype", NULL, &v))
            dtypes = v;
        else
            cli_usage(c, "unexpected argument '%s'", c->argv[c->k]);
    }
    if (!c->bad && (m || n || k) && !(m && n && k))
        cli_usage(c, "give all of --m, --n and --k, or none for the default shapes");
    nmp_dtype list[8];
    int count = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", dtypes ? dtypes : "");
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok && !c->bad;
         tok = strtok_r(NULL, ",", &save)) {
        if (count == 8)
            cli_usage(c, "--dtype: at most 8 entries");
        else if (take_dtype(c, tok, &list[count]))
            count++;
    }
    if (!c->bad && count == 0)
        cli_usage(c, "--dtype: empty list");
    if (c->bad)
        return CLI_EXIT_USAGE;
    int rc = need_device(c->cmd);
    if (rc)
        return rc;
    char dev[160];
    nmp_gpu_describe(dev, sizeof dev);
    printf("# device: %s; median of %lld runs after %lld warm-up\n", dev, (long long)reps,
           (long long)warmup);
    printf("# dtype      m      n      k   dense_ms  sparse_ms  speedup  dense_TF  sparse_TF"
           "   maxdiff  ok   alg\n");
    fflush(stdout);
    const int nshapes = m ? 1 : (int)(sizeof shapes / sizeof shapes[0]);
    bool all_ok = true;
    for (int di = 0; di < count; di++)
        for (int s = 0; s < nshapes; s++) {
            nmp_spmm_desc d = { 0 };
            nmp_spmm_report r;
            nmp_msg msg = { { 0 } };
            d.tokens = m ? m : shapes[s][0];
            d.n = m ? n : shapes[s][1];
            d.k = m ? k : shapes[s][2];
            d.dtype = list[di];
            d.reps = (int)reps;
            d.warmup = (int)warmup;
            const nmp_err e = nmp_gpu_spmm_eval(&d, &r, &msg);
            if (e != NMP_OK) {
                printf("%-6s %6lld %6lld %6lld   error: %s\n", nmp_dtype_name(d.dtype),
                       (long long)d.tokens, (long long)d.n, (long long)d.k,
                       msg.text[0] ? msg.text : nmp_err_str(e));
                all_ok = false;
                continue;
            }
            const double rel = r.sparse_vs_dense.max_ref > 0
                                   ? r.sparse_vs_dense.max_abs / r.sparse_vs_dense.max_ref
                                   : r.sparse_vs_dense.max_abs;
            const bool ok = r.within_tolerance && r.prune_valid && r.violations == 0;
            all_ok = all_ok && ok;
            printf("%-6s %6lld %6lld %6lld %10.4f %10.4f %8.3f %9.1f %10.1f %9.2e  %-3s %5d\n",
                   nmp_dtype_name(d.dtype), (long long)d.tokens, (long long)d.n, (long long)d.k,
                   r.dense_ms, r.sparse_ms, r.speedup, r.dense_tflops, r.sparse_tflops, rel,
                   ok ? "yes" : "NO", r.alg_id);
            fflush(stdout);
        }
    return all_ok ? 0 : CLI_EXIT_USAGE;
}

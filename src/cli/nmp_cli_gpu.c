/* nmp_cli_gpu.c: the GPU commands: gpu-eval (one layer, or every consumer of a checkpoint, pruned
 * 2:4 after its permutation: sparse cuSPARSELt GEMM against dense cuBLASLt and the pruned layer's
 * output error; --device cpu computes the error columns with the CPU reference) and gpu-bench
 * (the GEMMs over a table of shapes) */
#include "nmp_cli.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX2(a, b) ((a) > (b) ? (a) : (b))

#define HELP_LIBS                                                                                  \
    "  --gpu-libs DIR      folder of libcublasLt.so.13, libcusparseLt.so.0 (looked at first)\n"  \
    "\n"                                                                                           \
    "The CUDA runtime is linked statically; cuBLASLt and cuSPARSELt are loaded at first GPU\n"    \
    "use, each from the first of: --gpu-libs DIR; $NMP_CUBLASLT / $NMP_CUSPARSELT (a file or\n"   \
    "a folder); pip wheels (nvidia/cu13/lib, nvidia/cusparselt/lib, nvidia/cublas/lib) under\n"   \
    "the site-packages folders in $NMP_PYTHON_SITE (colon-separated; only those when set),\n"     \
    "else under PYTHONPATH, $VIRTUAL_ENV, $CONDA_PREFIX, each PATH folder's python3, ~/.local\n"  \
    "and the build machine's python3; the system (LD_LIBRARY_PATH, ld.so.cache,\n"               \
    "$CUDA_HOME/lib64, /usr/local/cuda/lib64). When one is missing: one line naming it and\n"    \
    "its pip package (nvidia-cusparselt-cu13, nvidia-cublas), exit 1. Every other nmperm\n"       \
    "command runs without them.\n"

static const char help_eval[] =
    "usage: nmperm gpu-eval W.npy [--perm P.npy] [--out E.json] [options]\n"
    "       nmperm gpu-eval MODEL.safetensors (--report R.json | --all) [--out E.json] [options]\n"
    "\n"
    "One layer Y = X W^T (W: out x in, X: tokens x in, N(0, 1) from --seed) pruned 2:4 after\n"
    "gathering the columns of W and X by the permutation: on the CUDA device, the pattern is\n"
    "checked with cuSPARSELt, W compressed, and Y timed with cuSPARSELt (after its algorithm\n"
    "search) and with dense cuBLASLt on the same pruned W (CUDA events, warm-up, median). Reports\n"
    "the speedup, TFLOP/s, the sparse-vs-dense difference against the dtype's tolerance, and the\n"
    "fp32 output error ||Y_pruned - Y||_F / ||Y||_F of the pruned layer against the unpruned one,\n"
    "with (err_perm) and without (err_identity) the permutation.\n"
    "\n"
    "A checkpoint: every consumer tensor of the report written by 'nmperm permute' (its columns\n"
    "in the order of every space that consumes it), with --all also every other 2-D weight\n"
    "(input axis 1; embedding tables are lookups and left out), each at its own shape; one\n"
    "table row per tensor and totals per model (GEMM time dense vs sparse summed over the\n"
    "tensors, mean errors).\n"
    "A tensor cuSPARSELt cannot take (n, k not multiples of 16, of 32 for int8/e4m3) gets its\n"
    "error columns from the CPU reference and no timings.\n"
    "\n"
    "  --out E.json        write the evaluation as JSON (one layer: also printed on stdout)\n"
    "  --perm P.npy        permutation of W's columns (one layer; default: identity)\n"
    "  --report R.json     the report of 'nmperm permute' on this checkpoint\n"
    "  --all               also every other 2-D weight of the checkpoint\n"
    "  --device D          gpu (default): timings and error columns on the device; cpu: the\n"
    "                      error columns only, with the CPU reference (no device, no GPU library;\n"
    "                      double-accumulated GEMMs, slow on large layers: lower --tokens)\n"
    "  --tokens T          rows of X (default 2048)\n"
    "  --dtype D           fp16 (default), bf16, int8, e4m3; fp32/tf32 are refused (1:2 in\n"
    "                      cuSPARSELt)\n"
    "  --reps N            timed runs per GEMM (default 50); --warmup N (default 10)\n"
    "  --seed S            seed of X (default 0)\n"
    HELP_LIBS
    "\n"
    "After a fault that loses the CUDA context (an illegal memory access), the tensor that\n"
    "faulted is reported and the command stops (exit 2): later device calls in the process\n"
    "would fail.\n";

static const char help_bench[] =
    "usage: nmperm gpu-bench [--m M --n N --k K] [--dtype D[,D...]] [--reps N] [--warmup N]\n"
    "\n"
    "Times the 2:4 sparse GEMM (cuSPARSELt) against dense cuBLASLt for Y (M x N) = X (M x K) W^T\n"
    "with random data, one row per (dtype, shape). Without --m/--n/--k: 256 and 4096 tokens over\n"
    "the LLaMA weight shapes N x K = 4096x4096, 4096x11008 (down_proj), 11008x4096, then\n"
    "8192^3 and 16384 x 8192 x 8192. Columns: times (median), TFLOP/s, max |sparse - dense| /\n"
    "max |dense|, ok (within the dtype's tolerance and the prune check passed), the algorithm\n"
    "and split-K cuSPARSELt's search kept and its workspace (MiB). Exit 1 when a row fails; after\n"
    "a fault that loses the CUDA context the row that faulted is printed and the rest are not\n"
    "run (exit 2).\n"
    "\n"
    "  --dtype D[,D...]    fp16 (default), bf16, int8, e4m3\n"
    HELP_LIBS;

/* The one-line answers for what is missing: the GPU libraries first (what to install), then the
 * device. Exit 1 as the task's failure, not an internal error. */
static int need_device(const char *cmd, const char *libs)
{
    nmp_msg msg = { { 0 } };
    if (!nmp_gpu_built())
        return cli_fail(CLI_EXIT_USAGE, cmd, "this nmperm was built without CUDA");
    if (!nmp_gpu_has_cusparselt())
        return cli_fail(CLI_EXIT_USAGE, cmd, "cuSPARSELt unavailable in this build (no "
                        "cusparseLt.h when it was configured)");
    const nmp_err e = nmp_gpu_libs_load(libs, &msg);
    if (e != NMP_OK)
        return cli_fail_lib(e, cmd, &msg);
    if (nmp_gpu_count() < 1)
        return cli_fail(CLI_EXIT_USAGE, cmd, "no CUDA device found");
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

static bool ends_with(const char *s, const char *suffix)
{
    const size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Options of gpu-eval. */
typedef struct eval_opts {
    const char *input, *out, *perm_path, *report, *libs;
    bool all, on_cpu;
    int64_t tokens, reps, warmup;
    uint64_t seed;
    nmp_dtype dtype;
} eval_opts;

/* The device columns of a report as JSON fields of o. */
static void device_json(json_t *o, const nmp_spmm_report *r)
{
    cli_jset(o, "dense_ms", cli_jnum(r->dense_ms));
    cli_jset(o, "sparse_ms", cli_jnum(r->sparse_ms));
    cli_jset(o, "speedup", cli_jnum(r->speedup));
    cli_jset(o, "dense_tflops", cli_jnum(r->dense_tflops));
    cli_jset(o, "sparse_tflops", cli_jnum(r->sparse_tflops));
    cli_jset(o, "sparse_vs_dense", diff_json(&r->sparse_vs_dense));
    cli_jset(o, "tolerance", cli_jnum(r->tolerance));
    cli_jset(o, "within_tolerance", json_boolean(r->within_tolerance));
    cli_jset(o, "prune_check_valid", json_boolean(r->prune_valid));
    cli_jset(o, "violations", json_integer(r->violations));
    cli_jset(o, "alg_id", json_integer(r->alg_id));
    cli_jset(o, "split_k", json_integer(r->split_k));
    cli_jset(o, "workspace_bytes", json_integer((json_int_t)MAX2(r->ws_search, r->ws_final)));
    cli_jset(o, "compressed_bytes", json_integer((json_int_t)r->compressed_bytes));
}

/* Writes o to path atomically (a temporary, then a rename). */
static int write_json(json_t *o, const char *path)
{
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
    if (!text)
        return cli_fail_lib(NMP_ERR_NOMEM, path, NULL);
    const int rc = cli_write_atomic(path, text, strlen(text));
    free(text);
    return rc;
}

/* One layer from W.npy (the original gpu-eval). */
static int eval_layer(const char *cmd, const eval_opts *o)
{
    nmp_array w = { 0 };
    int32_t *perm = NULL;
    float *x = NULL;
    nmp_msg msg = { { 0 } };
    nmp_spmm_report r;
    nmp_layer_err le;
    json_t *j = NULL;
    int rc = 0;
    memset(&r, 0, sizeof r);
    nmp_err e = nmp_npy_read_matrix(o->input, &w, &msg);
    if (e != NMP_OK) { /* the input is reported before anything about the device */
        rc = cli_fail_lib(e, o->input, &msg);
        goto out;
    }
    if (o->perm_path && (rc = cli_load_perm(o->perm_path, o->input, w.cols, &perm)) != 0)
        goto out;
    if (!o->on_cpu && (rc = need_device(cmd, o->libs)) != 0)
        goto out;
    j = json_object();
    cli_jset(j, "file", json_string(o->input));
    cli_jset(j, "perm", o->perm_path ? json_string(o->perm_path) : json_null());
    cli_jset(j, "dtype", json_string(nmp_dtype_name(o->dtype)));
    cli_jset(j, "n", json_integer(w.rows));
    cli_jset(j, "k", json_integer(w.cols));
    cli_jset(j, "tokens", json_integer(o->tokens));
    if (o->on_cpu) {
        const nmp_matrix wv = nmp_matrix_view(w.data, w.rows, w.cols);
        const nmp_pattern nm = { 2, 4 };
        if (!(x = nmp_malloc((size_t)(o->tokens * w.cols) * sizeof *x))) {
            rc = cli_fail_lib(NMP_ERR_NOMEM, cmd, NULL);
            goto out;
        }
        if ((e = nmp_layer_inputs(o->tokens, w.cols, o->seed, x)) != NMP_OK ||
            (e = nmp_layer_error(&wv, x, o->tokens, perm, nm, &le)) != NMP_OK) {
            rc = cli_fail(cli_exit_code(e), o->input, "%s x %s: %s", "error reference",
                          w.cols % 4 ? "columns not a multiple of 4" : "shape",
                          nmp_err_str(e));
            goto out;
        }
        cli_jset(j, "device", json_string("cpu (reference)"));
        cli_jset(j, "err_identity", cli_jnum(le.err_identity));
        cli_jset(j, "err_perm", cli_jnum(le.err_perm));
        cli_jset(j, "kept_abs_identity", cli_jnum(le.kept_identity));
        cli_jset(j, "kept_abs_perm", cli_jnum(le.kept_perm));
    } else {
        nmp_spmm_desc d = { 0 };
        d.w = w.data;
        d.perm = perm;
        d.n = w.rows;
        d.k = w.cols;
        d.tokens = o->tokens;
        d.dtype = o->dtype;
        d.reps = (int)o->reps;
        d.warmup = (int)o->warmup;
        d.seed = o->seed;
        d.errors = 1;
        if ((e = nmp_gpu_spmm_eval(&d, &r, &msg)) != NMP_OK) {
            rc = cli_fail_lib(e, cmd, &msg);
            goto out;
        }
        cli_jset(j, "device", json_string(r.device));
        cli_jset(j, "reps", json_integer(o->reps));
        device_json(j, &r);
        cli_jset(j, "err_identity", cli_jnum(r.err_identity));
        cli_jset(j, "err_perm", cli_jnum(r.err_perm));
        cli_jset(j, "kept_abs_identity", cli_jnum(r.kept_identity));
        cli_jset(j, "kept_abs_perm", cli_jnum(r.kept_perm));
    }
    if (o->out && (rc = write_json(j, o->out)) != 0)
        goto out;
    rc = cli_print_json(j);
    j = NULL;
    if (!rc && !o->on_cpu && (!r.within_tolerance || !r.prune_valid || r.violations))
        rc = cli_fail(CLI_EXIT_USAGE, cmd, "check failed: sparse vs dense %s, prune check %s",
                      r.within_tolerance ? "ok" : "outside tolerance",
                      r.prune_valid ? "ok" : "rejected");
out:
    json_decref(j);
    nmp_array_free(&w);
    nmp_free(perm);
    nmp_free(x);
    return rc;
}

/* ------------------------------------------------------------ checkpoints */

/* A library-style failure: e with its reason in msg. */
static nmp_err fail_msg(nmp_msg *msg, nmp_err e, const char *fmt, ...) CLI_PRINTF(3, 4);
static nmp_err fail_msg(nmp_msg *msg, nmp_err e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg->text, sizeof msg->text, fmt, ap);
    va_end(ap);
    return e;
}

/* One tensor to evaluate: its input axis and the permutation of that axis. */
typedef struct ev_tensor {
    const nmp_st_tensor *t;
    int axis;          /* the input (k) axis: 1 for nn.Linear [out, in], 0 for GPT-2's Conv1D */
    int32_t *perm;     /* t->shape[axis] entries; NULL = identity */
    const char *skip;  /* why it is not evaluated, or NULL */
    int spaces;        /* spaces that permute it */
} ev_tensor;

/* Embedding tables are read by lookup, not multiplied: --all leaves them out. */
static bool is_embedding(const char *name)
{
    return strstr(name, "embed") || strstr(name, ".wte.") || strstr(name, ".wpe.") ||
           strncmp(name, "wte.", 4) == 0 || strncmp(name, "wpe.", 4) == 0;
}

/* The tensors of a checkpoint to evaluate, in file order: every consumer of the plan (its input
 * axis permuted by every space that consumes it, perm[off + c] = off + space perm[c]) and, with
 * all, every other 2-D float tensor that is not an embedding. */
static nmp_err collect(const nmp_st *st, const nmp_plan *plan, bool all, ev_tensor **out,
                       int64_t *count, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const int64_t total = nmp_st_count(st);
    ev_tensor *ev = nmp_calloc((size_t)(total > 0 ? total : 1), sizeof *ev);
    int64_t used = 0;
    if (!ev)
        return NMP_ERR_NOMEM;
    for (int64_t q = 0; q < total; q++) {
        const nmp_st_tensor *t = nmp_st_tensor_at(st, q);
        ev_tensor *v = &ev[used];
        v->t = t;
        v->axis = -1;
        for (int64_t s = 0; plan && s < plan->count; s++) {
            const nmp_space *sp = &plan->spaces[s];
            for (int64_t r = 0; r < sp->nrefs; r++) {
                const nmp_ref *ref = &sp->refs[r];
                if (ref->role != NMP_ROLE_CONSUMER || strcmp(ref->tensor, t->name) != 0)
                    continue;
                if (t->ndim != 2) {
                    v->skip = "not 2-D (only linear weights are evaluated)";
                    continue;
                }
                if (v->axis >= 0 && v->axis != ref->axis) {
                    v->skip = "consumed along both axes";
                    continue;
                }
                if (ref->axis < 0 || ref->axis > 1 || ref->offset < 0 ||
                    ref->offset + sp->size > t->shape[ref->axis]) {
                    e = fail_msg(msg, NMP_ERR_FORMAT, "%s: space %s does not fit the tensor",
                                 t->name, sp->name);
                    goto out;
                }
                v->axis = ref->axis;
                v->spaces++;
                if (sp->skip || !sp->perm)
                    continue;
                if (!v->perm) {
                    if (!(v->perm = nmp_malloc((size_t)t->shape[ref->axis] * sizeof *v->perm))) {
                        e = NMP_ERR_NOMEM;
                        goto out;
                    }
                    nmp_perm_identity(v->perm, t->shape[ref->axis]);
                }
                for (int64_t c = 0; c < sp->size; c++)
                    v->perm[ref->offset + c] = (int32_t)(ref->offset + sp->perm[c]);
            }
        }
        if (v->axis < 0 && all && t->ndim == 2 && nmp_st_dtype_is_float(t->dtype) &&
            !is_embedding(t->name))
            v->axis = 1;
        if (v->axis < 0 && !v->skip)
            continue;
        if (v->perm && !nmp_perm_is_valid(v->perm, t->shape[v->axis])) {
            e = fail_msg(msg, NMP_ERR_FORMAT, "%s: the spaces' permutations overlap", t->name);
            used++;
            goto out;
        }
        if (!v->skip && !nmp_st_dtype_is_float(t->dtype))
            v->skip = "not a float tensor";
        else if (!v->skip && t->shape[v->axis] % 4 != 0)
            v->skip = "input size not a multiple of 4";
        used++;
    }
out:
    if (e != NMP_OK) {
        for (int64_t q = 0; q < used; q++)
            nmp_free(ev[q].perm);
        nmp_free(ev);
        ev = NULL;
        used = 0;
    }
    *out = ev;
    *count = used;
    return e;
}

/* w (n x k, row-major) = the tensor with its input axis as columns. */
static nmp_err read_weight(const nmp_st *st, const ev_tensor *v, float **w, int64_t *n,
                           int64_t *k, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const int64_t r0 = v->t->shape[0], c0 = v->t->shape[1];
    float *raw = nmp_malloc((size_t)(r0 * c0) * sizeof *raw), *tr = NULL;
    *w = NULL;
    if (!raw)
        return NMP_ERR_NOMEM;
    if ((e = nmp_st_read_f32(st, v->t, raw, msg)) != NMP_OK)
        goto out;
    if (v->axis == 1) {
        *w = raw;
        *n = r0;
        *k = c0;
        return NMP_OK;
    }
    if (!(tr = nmp_malloc((size_t)(r0 * c0) * sizeof *tr))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    for (int64_t i = 0; i < r0; i++)
        for (int64_t j = 0; j < c0; j++)
            tr[j * r0 + i] = raw[i * c0 + j];
    *w = tr;
    *n = c0;
    *k = r0;
out:
    nmp_free(raw);
    return e;
}

/* Per-model sums. */
typedef struct ev_totals {
    int64_t timed, errs, better, failed;
    double dense_ms, sparse_ms, err_identity, err_perm;
} ev_totals;

static int eval_checkpoint(const char *cmd, const eval_opts *o)
{
    nmp_st *st = NULL;
    nmp_plan *plan = NULL;
    ev_tensor *ev = NULL;
    int64_t count = 0, done = 0;
    nmp_msg msg = { { 0 } };
    json_t *j = NULL, *rows = NULL;
    ev_totals tot = { 0 };
    float *w = NULL, *x = NULL;
    int rc = 0;
    bool lost = false;
    char dev[160] = "cpu (reference)";
    nmp_err e = nmp_st_open(o->input, &st, &msg);
    if (e != NMP_OK) {
        rc = cli_fail_lib(e, o->input, &msg);
        goto out;
    }
    if (o->report && (e = nmp_plan_read(o->report, &plan, &msg)) != NMP_OK) {
        rc = cli_fail_lib(e, o->report, &msg);
        goto out;
    }
    if ((e = collect(st, plan, o->all, &ev, &count, &msg)) != NMP_OK) {
        rc = cli_fail_lib(e, o->report ? o->report : o->input, &msg);
        goto out;
    }
    if (count == 0) {
        rc = cli_fail(CLI_EXIT_USAGE, o->input, "no tensor to evaluate (%s)",
                      o->all ? "no 2-D float weight" : "the report names no consumer in it");
        goto out;
    }
    if (!o->on_cpu) {
        if ((rc = need_device(cmd, o->libs)) != 0)
            goto out;
        nmp_gpu_describe(dev, sizeof dev);
    }
    j = json_object();
    rows = json_array();
    cli_jset(j, "file", json_string(o->input));
    cli_jset(j, "report", o->report ? json_string(o->report) : json_null());
    cli_jset(j, "device", json_string(dev));
    cli_jset(j, "dtype", json_string(nmp_dtype_name(o->dtype)));
    cli_jset(j, "tokens", json_integer(o->tokens));
    cli_jset(j, "seed", json_integer((json_int_t)o->seed));
    printf("# %s on %s, %s, %lld tokens; err = ||Y_pruned - Y||_F / ||Y||_F (fp32 outputs)\n",
           o->input, dev, o->on_cpu ? "error columns only" : nmp_dtype_name(o->dtype),
           (long long)o->tokens);
    printf("# %-44s %6s %6s %9s %9s %7s %9s %9s %9s %7s  %s\n", "tensor", "n", "k", "dense_ms",
           "sparse_ms", "speedup", "sp_vs_dn", "err_ident", "err_perm", "change", "status");
    fflush(stdout);
    for (done = 0; done < count && !lost; done++) {
        const ev_tensor *v = &ev[done];
        json_t *row = json_object();
        int64_t n = 0, k = 0;
        nmp_spmm_report r;
        nmp_layer_err le;
        const char *status = "ok", *errs_from = NULL;
        char why[600] = "";
        bool timed = false;
        memset(&r, 0, sizeof r);
        memset(&le, 0, sizeof le);
        cli_jset(row, "tensor", json_string(v->t->name));
        cli_jset(row, "spaces", json_integer(v->spaces));
        cli_jset(row, "permuted", json_boolean(v->perm != NULL));
        json_array_append_new(rows, row);
        if (v->skip) {
            cli_jset(row, "skipped", json_string(v->skip));
            printf("  %-44s %6s %6s %9s %9s %7s %9s %9s %9s %7s  skipped: %s\n", v->t->name, "-",
                   "-", "-", "-", "-", "-", "-", "-", "-", v->skip);
            continue;
        }
        if ((e = read_weight(st, v, &w, &n, &k, &msg)) != NMP_OK) {
            rc = cli_fail_lib(e, o->input, &msg);
            goto out;
        }
        cli_jset(row, "n", json_integer(n));
        cli_jset(row, "k", json_integer(k));
        if (!o->on_cpu) {
            nmp_spmm_desc d = { 0 };
            d.w = w;
            d.perm = v->perm;
            d.n = n;
            d.k = k;
            d.tokens = o->tokens;
            d.dtype = o->dtype;
            d.reps = (int)o->reps;
            d.warmup = (int)o->warmup;
            d.seed = o->seed;
            d.errors = 1;
            msg.text[0] = '\0';
            e = nmp_gpu_spmm_eval(&d, &r, &msg);
            if (e == NMP_OK) {
                timed = true;
                errs_from = "gpu";
                le.err_identity = r.err_identity;
                le.err_perm = r.err_perm;
                device_json(row, &r);
                if (!r.within_tolerance || !r.prune_valid || r.violations)
                    status = "CHECK FAILED";
            } else if (e == NMP_ERR_ARG) { /* a shape cuSPARSELt refuses: errors on the CPU */
                snprintf(why, sizeof why, "no timing: %s", msg.text);
                cli_jset(row, "not_timed", json_string(msg.text));
            } else {
                lost = r.device_lost;
                snprintf(why, sizeof why, "%s", msg.text[0] ? msg.text : nmp_err_str(e));
                cli_jset(row, "error", json_string(why));
                status = lost ? "FAULT" : "ERROR";
                tot.failed++;
            }
        }
        if (!errs_from && (o->on_cpu || e == NMP_ERR_ARG)) {
            const nmp_matrix wv = nmp_matrix_view(w, n, k);
            const nmp_pattern nm = { 2, 4 };
            nmp_free(x);
            if (!(x = nmp_malloc((size_t)(o->tokens * k) * sizeof *x))) {
                rc = cli_fail_lib(NMP_ERR_NOMEM, cmd, NULL);
                goto out;
            }
            if ((e = nmp_layer_inputs(o->tokens, k, o->seed, x)) != NMP_OK ||
                (e = nmp_layer_error(&wv, x, o->tokens, v->perm, nm, &le)) != NMP_OK) {
                rc = cli_fail_lib(e, v->t->name, NULL);
                goto out;
            }
            errs_from = "cpu";
        }
        if (errs_from) {
            cli_jset(row, "errors_from", json_string(errs_from));
            cli_jset(row, "err_identity", cli_jnum(le.err_identity));
            cli_jset(row, "err_perm", cli_jnum(le.err_perm));
            tot.errs++;
            tot.err_identity += le.err_identity;
            tot.err_perm += le.err_perm;
            tot.better += le.err_perm < le.err_identity;
        }
        if (timed) {
            tot.timed++;
            tot.dense_ms += r.dense_ms;
            tot.sparse_ms += r.sparse_ms;
            printf("  %-44s %6lld %6lld %9.4f %9.4f %6.3fx %9.2e", v->t->name, (long long)n,
                   (long long)k, r.dense_ms, r.sparse_ms, r.speedup,
                   r.sparse_vs_dense.max_abs / (r.sparse_vs_dense.max_ref + 1e-30));
        } else {
            printf("  %-44s %6lld %6lld %9s %9s %7s %9s", v->t->name, (long long)n, (long long)k,
                   "-", "-", "-", "-");
        }
        if (errs_from)
            printf(" %9.5f %9.5f %+6.2f%%  %s%s%s\n", le.err_identity, le.err_perm,
                   le.err_identity > 0 ? 100.0 * (le.err_perm - le.err_identity) / le.err_identity
                                       : 0.0,
                   status, why[0] ? "; " : "", why);
        else
            printf(" %9s %9s %7s  %s%s%s\n", "-", "-", "-", status, why[0] ? ": " : "", why);
        fflush(stdout);
        nmp_free(w);
        w = NULL;
    }
    {
        json_t *t = json_object();
        cli_jset(t, "tensors", json_integer(count));
        cli_jset(t, "timed", json_integer(tot.timed));
        cli_jset(t, "dense_ms", tot.timed ? cli_jnum(tot.dense_ms) : json_null());
        cli_jset(t, "sparse_ms", tot.timed ? cli_jnum(tot.sparse_ms) : json_null());
        cli_jset(t, "speedup", tot.timed ? cli_jnum(tot.dense_ms / tot.sparse_ms) : json_null());
        cli_jset(t, "mean_err_identity", tot.errs ? cli_jnum(tot.err_identity / (double)tot.errs)
                                                  : json_null());
        cli_jset(t, "mean_err_perm", tot.errs ? cli_jnum(tot.err_perm / (double)tot.errs)
                                              : json_null());
        cli_jset(t, "perm_lowers_error", json_integer(tot.better));
        cli_jset(t, "failed", json_integer(tot.failed));
        cli_jset(t, "not_run", json_integer(count - done));
        cli_jset(j, "tensors", rows);
        rows = NULL;
        cli_jset(j, "totals", t);
    }
    if (tot.timed)
        printf("# total %lld tensors timed: dense %.4f ms, sparse %.4f ms, %.3fx\n",
               (long long)tot.timed, tot.dense_ms, tot.sparse_ms, tot.dense_ms / tot.sparse_ms);
    if (tot.errs)
        printf("# mean error over %lld tensors: identity %.5f, permuted %.5f; the permutation "
               "lowers it on %lld\n", (long long)tot.errs, tot.err_identity / (double)tot.errs,
               tot.err_perm / (double)tot.errs, (long long)tot.better);
    if (lost)
        printf("# stopped: the CUDA context was lost at %s; %lld tensors after it not run "
               "(rerun in a fresh process)\n", ev[done - 1].t->name, (long long)(count - done));
    fflush(stdout);
    if (o->out && (rc = write_json(j, o->out)) != 0)
        goto out;
    if (lost)
        rc = cli_fail(CLI_EXIT_INTERNAL, cmd, "CUDA context lost (see the table)");
    else if (tot.failed)
        rc = cli_fail(CLI_EXIT_USAGE, cmd, "%lld tensors failed (see the table)",
                      (long long)tot.failed);
out:
    json_decref(j);
    json_decref(rows);
    for (int64_t q = 0; q < count; q++)
        nmp_free(ev[q].perm);
    nmp_free(ev);
    nmp_free(w);
    nmp_free(x);
    nmp_plan_free(plan);
    nmp_st_close(st);
    return rc;
}

int cli_cmd_gpu_eval(cli_args *c)
{
    eval_opts o = { 0 };
    const char *v = NULL, *device = "gpu";
    o.tokens = 2048;
    o.reps = 50;
    o.warmup = 10;
    o.dtype = NMP_DTYPE_F16;
    if (cli_help_or_version(c, help_eval))
        return 0;
    for (c->k = 2; c->k < c->argc && !c->bad; c->k++) {
        if (cli_take(c, "--out", NULL, &v))
            o.out = v;
        else if (cli_take(c, "--report", NULL, &v))
            o.report = v;
        else if (cli_take(c, "--perm", NULL, &v))
            o.perm_path = v;
        else if (cli_is_flag(c, "--all"))
            o.all = true;
        else if (cli_take(c, "--device", NULL, &v))
            device = v;
        else if (cli_take(c, "--gpu-libs", NULL, &v))
            o.libs = v;
        else if (cli_take(c, "--tokens", NULL, &v))
            cli_parse_i64(c, "--tokens", v, 16, 1 << 20, &o.tokens);
        else if (cli_take(c, "--reps", NULL, &v))
            cli_parse_i64(c, "--reps", v, 1, 100000, &o.reps);
        else if (cli_take(c, "--warmup", NULL, &v))
            cli_parse_i64(c, "--warmup", v, 0, 100000, &o.warmup);
        else if (cli_take(c, "--seed", NULL, &v))
            cli_parse_u64(c, "--seed", v, UINT64_MAX, &o.seed);
        else if (cli_take(c, "--dtype", NULL, &v))
            take_dtype(c, v, &o.dtype);
        else
            cli_take_input(c, &o.input);
    }
    const bool ckpt = o.input && ends_with(o.input, ".safetensors");
    if (!c->bad && !o.input)
        cli_usage(c, "missing the input W.npy or MODEL.safetensors");
    if (!c->bad && device && strcmp(device, "gpu") != 0 && strcmp(device, "cpu") != 0)
        cli_usage(c, "--device '%s': expected gpu or cpu", device);
    if (!c->bad && ckpt && o.perm_path)
        cli_usage(c, "--perm is for one layer (W.npy); a checkpoint takes --report R.json");
    if (!c->bad && ckpt && !o.report && !o.all)
        cli_usage(c, "give --report R.json (from 'nmperm permute') or --all");
    if (!c->bad && !ckpt && o.all)
        cli_usage(c, "--all is for a checkpoint (MODEL.safetensors)");
    if (!c->bad && !ckpt && o.report) { /* the old name of --out for one layer */
        if (o.out)
            cli_usage(c, "one layer: --report is the old name of --out; give one of them");
        o.out = o.report;
        o.report = NULL;
    }
    if (c->bad)
        return CLI_EXIT_USAGE;
    o.on_cpu = strcmp(device, "cpu") == 0;
    /* the files first: a wrong path is named even on a machine without a device */
    const char *const inputs[] = { o.input, o.perm_path, o.report };
    int rc = nmp_cli_check_paths(inputs, 3, &o.out, 1);
    if (rc == 0 && o.out)
        rc = cli_check_writable(o.out);
    if (rc)
        return rc;
    return ckpt ? eval_checkpoint(c->cmd, &o) : eval_layer(c->cmd, &o);
}

int cli_cmd_gpu_bench(cli_args *c)
{
    static const int64_t shapes[][3] = {
        { 256, 4096, 4096 },   { 256, 4096, 11008 },   { 256, 11008, 4096 },
        { 4096, 4096, 4096 },  { 4096, 4096, 11008 },  { 4096, 11008, 4096 },
        { 8192, 8192, 8192 },  { 16384, 8192, 8192 },
    };
    const char *v = NULL, *dtypes = "fp16", *libs = NULL;
    int64_t m = 0, n = 0, k = 0, reps = 50, warmup = 10;
    if (cli_help_or_version(c, help_bench))
        return 0;
    for (c->k = 2; c->k < c->argc && !c->bad; c->k++) {
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
        else if (cli_take(c, "--gpu-libs", NULL, &v))
            libs = v;
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
    int rc = need_device(c->cmd, libs);
    if (rc)
        return rc;
    char dev[160], where[2200];
    nmp_gpu_describe(dev, sizeof dev);
    nmp_gpu_libs_describe(where, sizeof where);
    printf("# device: %s; median of %lld runs after %lld warm-up\n# %s\n", dev, (long long)reps,
           (long long)warmup, where);
    printf("# dtype      m      n      k   dense_ms  sparse_ms  speedup  dense_TF  sparse_TF"
           "   maxdiff  ok    alg splitK  ws_MiB\n");
    fflush(stdout);
    const int nshapes = m ? 1 : (int)(sizeof shapes / sizeof shapes[0]);
    const int rows = count * nshapes;
    bool all_ok = true;
    for (int row = 0; row < rows; row++) {
        const int di = row / nshapes, s = row % nshapes;
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
            printf("%-6s %6lld %6lld %6lld   %s: %s\n", nmp_dtype_name(d.dtype),
                   (long long)d.tokens, (long long)d.n, (long long)d.k,
                   r.device_lost ? "FAULT" : "error", msg.text[0] ? msg.text : nmp_err_str(e));
            all_ok = false;
            if (r.device_lost) {
                printf("# stopped: the CUDA context is lost after this row; the %d rows after it "
                       "were not run (rerun them in a fresh process)\n", rows - row - 1);
                fflush(stdout);
                return cli_fail(CLI_EXIT_INTERNAL, c->cmd, "CUDA context lost at %s %lld x %lld "
                                "x %lld", nmp_dtype_name(d.dtype), (long long)d.tokens,
                                (long long)d.n, (long long)d.k);
            }
            continue;
        }
        const double rel = r.sparse_vs_dense.max_ref > 0
                               ? r.sparse_vs_dense.max_abs / r.sparse_vs_dense.max_ref
                               : r.sparse_vs_dense.max_abs;
        const bool ok = r.within_tolerance && r.prune_valid && r.violations == 0;
        all_ok = all_ok && ok;
        printf("%-6s %6lld %6lld %6lld %10.4f %10.4f %8.3f %9.1f %10.1f %9.2e  %-3s %5d %6d "
               "%7.1f\n", nmp_dtype_name(d.dtype), (long long)d.tokens, (long long)d.n,
               (long long)d.k, r.dense_ms, r.sparse_ms, r.speedup, r.dense_tflops,
               r.sparse_tflops, rel, ok ? "yes" : "NO", r.alg_id, r.split_k,
               (double)MAX2(r.ws_search, r.ws_final) / 1048576.0);
        fflush(stdout);
    }
    return all_ok ? 0 : CLI_EXIT_USAGE;
}

/* nmp_cli_batch.c: nmperm batch (many matrices and checkpoints, parallel worker processes, a
 * journal to resume from, shards for Slurm arrays) and nmperm merge (shards into one folder) */
#define _GNU_SOURCE /* sched_getaffinity, prctl */
#include "nmp_cli_batch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

static const char help_batch[] =
    "usage: nmperm batch INPUT... -o OUTDIR [options]\n"
    "\n"
    "Runs solvers over many inputs: every .npy matrix is one job per solver, every free channel\n"
    "space of a .safetensors checkpoint (or sharded index) one job per solver. INPUT is a file,\n"
    "a folder (walked recursively) or a manifest (one path per line). Jobs run in parallel\n"
    "worker processes; a failed or crashed job is reported and never stops the batch. Each\n"
    "finished job is appended to OUTDIR/journal.jsonl (fsync'd), so a killed run continues with\n"
    "--resume. At the end: a table, summary.csv/.json/.md and plots/*.svg in OUTDIR.\n"
    "Outputs: OUTDIR/perms/<input>[/<space>].<solver>.npy (and with --write-checkpoints\n"
    "OUTDIR/checkpoints/<input>.<solver>.safetensors), all written atomically; nothing is written\n"
    "outside OUTDIR.\n"
    "\n"
    "options:\n"
    "  -o, --output OUTDIR   the output folder\n"
    "  --solvers LIST        comma-separated solvers (default auto, else swap)\n"
    "  --param S.KEY=VALUE   a parameter of solver S (repeatable)\n"
    "  --nm N:M              sparsity pattern (default 2:4)\n"
    "  --objective OBJ       abs (default) or sq (checkpoint spaces: abs)\n"
    "  --budget S            total wall seconds of this run, split over the jobs by size\n"
    "  --time-limit S        seconds per job (exclusive with --budget); without either the\n"
    "                        solvers do a fixed amount of work and results do not depend on time\n"
    "  --bound-time S        also the LP bound (colgen, GLPK) per job, S seconds each\n"
    "  --seed N              seed of every job (default 0)\n"
    "  --threads T           threads per job (default 1)\n"
    "  --jobs J              jobs at a time (default: cores / T; J x T may not exceed the cores\n"
    "                        unless --oversubscribe)\n"
    "  --shard I/N           run shard I of N (0 <= I < N): a deterministic 1/N of the jobs,\n"
    "                        balanced by size; default from SLURM_ARRAY_TASK_ID and\n"
    "                        SLURM_ARRAY_TASK_COUNT when set ('nmperm merge' joins the shards)\n"
    "  --resume              continue the run in OUTDIR: finished jobs are skipped\n"
    "  --retry-failed        with --resume, also redo the jobs that failed\n"
    "  --force               start over in an OUTDIR that holds another run (or other files)\n"
    "  --write-checkpoints   also write each checkpoint permuted (per solver)\n"
    "  --arch A, --heads H, --kv-heads K, --residual\n"
    "                        channel spaces of checkpoints, as for 'nmperm permute'\n"
    "  --quiet               no progress and no table\n"
    "  -h, --help            this text\n"
    "\n"
    "exit codes: 0 all jobs ok, 1 usage error or some job failed, 2 internal error,\n"
    "130 interrupted (continue with --resume)\n";

static const char help_merge[] =
    "usage: nmperm merge OUTDIR... -o MERGED [--force] [--quiet]\n"
    "\n"
    "Joins the output folders of the shards of one batch (nmperm batch --shard I/N, same options)\n"
    "into MERGED: the same files as one run on one machine (journal, permutations, checkpoints,\n"
    "summary files and plots). Refuses shards run with other options, missing or repeated\n"
    "shards, and shards with unfinished jobs.\n"
    "\n"
    "options:\n"
    "  -o, --output MERGED   the merged folder\n"
    "  --force               replace a merged folder that already holds a run\n"
    "  --quiet               no table\n"
    "  -h, --help            this text\n";

/* Budget reserve: shares add up to this part of budget x jobs at a time; the rest covers the
 * last jobs' imbalance. JOB_OVERHEAD: seconds of every share for the process start, loading
 * and writing, before the split by size. */
#define BUDGET_USE 0.9
#define JOB_OVERHEAD 0.1

/* -------------------------------------------------------------- options */

typedef struct batch_opts {
    const char **inputs;
    int ninputs;
    const char *outdir;
    char *solver_text;        /* owned copy, split in place */
    const char **solvers;
    int nsolvers;
    const char **param_text;
    int nparams;
    nmp_params *par;          /* per solver */
    nmp_pattern nm;
    nmp_objective objective;
    double budget, time_limit, bound_time;
    uint64_t seed;
    int64_t threads, jobs;
    int shard_i, shard_n;
    bool budget_set, time_limit_set, threads_set, jobs_set, shard_set, oversubscribe;
    bool resume, force, retry_failed, write_ckpt, quiet;
    const char *arch;
    int64_t heads, kv_heads;
    bool residual;
} batch_opts;

static void opts_free(batch_opts *o)
{
    nmp_free(o->inputs);
    nmp_free(o->solver_text);
    nmp_free(o->solvers);
    nmp_free(o->param_text);
    nmp_free(o->par);
}

/* Cores this process may use: its CPU affinity, or SLURM_CPUS_PER_TASK when smaller. */
static int64_t cores(void)
{
    int64_t n = 1;
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    else
#endif
        n = sysconf(_SC_NPROCESSORS_ONLN);
    const char *s = getenv("SLURM_CPUS_PER_TASK");
    const long long slurm = s ? atoll(s) : 0;
    if (slurm > 0 && slurm < n)
        n = slurm;
    return n > 0 ? n : 1;
}

static bool parse_shard(const char *s, int *i, int *n)
{
    char *end = NULL;
    errno = 0;
    const long a = strtol(s, &end, 10);
    if (end == s || *end != '/' || errno)
        return false;
    const char *t = end + 1;
    const long b = strtol(t, &end, 10);
    if (end == t || *end || errno || b < 1 || b > 1000000 || a < 0 || a >= b)
        return false;
    *i = (int)a;
    *n = (int)b;
    return true;
}

/* Splits the solver list and sets up per-solver parameters; usage errors mark c bad. */
static void setup_solvers(cli_args *c, batch_opts *o)
{
    if (!o->solver_text) {
        const char *def = nmp_solver_find("auto") ? "auto" : "swap";
        o->solver_text = nmp_malloc(strlen(def) + 1);
        if (o->solver_text)
            memcpy(o->solver_text, def, strlen(def) + 1);
    }
    const size_t len = o->solver_text ? strlen(o->solver_text) : 0;
    o->solvers = nmp_calloc(len + 1, sizeof *o->solvers);
    if (!o->solver_text || !o->solvers) {
        cli_usage(c, "out of memory");
        return;
    }
    for (char *p = o->solver_text, *next = NULL; p; p = next) {
        next = strchr(p, ',');
        if (next)
            *next++ = '\0';
        if (!*p) {
            cli_usage(c, "--solvers: empty solver name in the list");
            return;
        }
        if (!nmp_solver_find(p)) {
            cli_usage(c, "unknown solver '%s' (see 'nmperm solvers')", p);
            return;
        }
        for (int s = 0; s < o->nsolvers; s++)
            if (strcmp(o->solvers[s], p) == 0) {
                cli_usage(c, "--solvers: '%s' is listed twice", p);
                return;
            }
        o->solvers[o->nsolvers++] = p;
    }
    if (!(o->par = nmp_calloc((size_t)o->nsolvers, sizeof *o->par))) {
        cli_usage(c, "out of memory");
        return;
    }
    for (int s = 0; s < o->nsolvers; s++)
        nmp_params_init(&o->par[s]);
    cli_solver_params(c, o->solvers, o->nsolvers, o->param_text, o->nparams, o->par);
}

static void parse_batch(cli_args *c, batch_opts *o)
{
    const char *v = NULL;
    nmp_msg msg = { { 0 } };
    o->inputs = nmp_calloc((size_t)c->argc, sizeof *o->inputs);
    o->param_text = nmp_calloc((size_t)c->argc, sizeof *o->param_text);
    if (!o->inputs || !o->param_text) {
        cli_usage(c, "out of memory");
        return;
    }
    for (c->k = 2; c->k < c->argc && !c->bad; c->k++) {
        if (cli_is_flag(c, "--resume")) {
            o->resume = true;
        } else if (cli_is_flag(c, "--force")) {
            o->force = true;
        } else if (cli_is_flag(c, "--retry-failed")) {
            o->retry_failed = true;
        } else if (cli_is_flag(c, "--write-checkpoints")) {
            o->write_ckpt = true;
        } else if (cli_is_flag(c, "--oversubscribe")) {
            o->oversubscribe = true;
        } else if (cli_is_flag(c, "--residual")) {
            o->residual = true;
        } else if (cli_is_flag(c, "--quiet")) {
            o->quiet = true;
        } else if (cli_take(c, "--output", "-o", &v)) {
            o->outdir = v;
        } else if (cli_take(c, "--solvers", NULL, &v)) {
            if (v && !o->solver_text && (o->solver_text = nmp_malloc(strlen(v) + 1)))
                memcpy(o->solver_text, v, strlen(v) + 1);
            else if (v)
                cli_usage(c, "--solvers given twice");
        } else if (cli_take(c, "--param", NULL, &v)) {
            if (v)
                o->param_text[o->nparams++] = v;
        } else if (cli_take(c, "--nm", NULL, &v)) {
            if (v && nmp_pattern_parse(v, &o->nm, &msg) != NMP_OK)
                cli_usage(c, "--nm: %s", msg.text);
        } else if (cli_take(c, "--objective", NULL, &v)) {
            if (v && (nmp_objective_parse(v, &o->objective) != NMP_OK ||
                      (o->objective != NMP_OBJ_ABS && o->objective != NMP_OBJ_SQ)))
                cli_usage(c, "--objective '%s': expected abs or sq", v);
        } else if (cli_take(c, "--budget", NULL, &v)) {
            o->budget_set = cli_parse_seconds(c, "--budget", v, &o->budget);
        } else if (cli_take(c, "--time-limit", NULL, &v)) {
            o->time_limit_set = cli_parse_seconds(c, "--time-limit", v, &o->time_limit);
        } else if (cli_take(c, "--bound-time", NULL, &v)) {
            cli_parse_seconds(c, "--bound-time", v, &o->bound_time);
        } else if (cli_take(c, "--seed", NULL, &v)) {
            cli_parse_u64(c, "--seed", v, UINT64_MAX, &o->seed);
        } else if (cli_take(c, "--threads", NULL, &v)) {
            o->threads_set = cli_parse_i64(c, "--threads", v, 1, 4096, &o->threads);
        } else if (cli_take(c, "--jobs", "-j", &v)) {
            o->jobs_set = cli_parse_i64(c, "--jobs", v, 1, 4096, &o->jobs);
        } else if (cli_take(c, "--shard", NULL, &v)) {
            o->shard_set = true;
            if (v && !parse_shard(v, &o->shard_i, &o->shard_n))
                cli_usage(c, "--shard '%s': expected I/N with 0 <= I < N", v);
        } else if (cli_take(c, "--arch", NULL, &v)) {
            o->arch = v;
        } else if (cli_take(c, "--heads", NULL, &v)) {
            cli_parse_i64(c, "--heads", v, 1, 65536, &o->heads);
        } else if (cli_take(c, "--kv-heads", NULL, &v)) {
            cli_parse_i64(c, "--kv-heads", v, 1, 65536, &o->kv_heads);
        } else if (c->argv[c->k][0] == '-' && c->argv[c->k][1]) {
            cli_usage(c, "unknown option '%s'", c->argv[c->k]);
        } else {
            o->inputs[o->ninputs++] = c->argv[c->k];
        }
    }
    if (c->bad)
        return;
    if (!o->ninputs)
        cli_usage(c, "missing the inputs (files, folders or manifests)");
    else if (!o->outdir)
        cli_usage(c, "missing -o OUTDIR");
    else if (o->budget_set && o->time_limit_set)
        cli_usage(c, "--budget and --time-limit exclude each other");
    else if (o->budget_set && o->budget <= 0)
        cli_usage(c, "--budget must be > 0");
    else if (o->retry_failed && !o->resume)
        cli_usage(c, "--retry-failed goes with --resume");
    if (c->bad)
        return;
    if (!o->shard_set && getenv("SLURM_ARRAY_TASK_ID") && getenv("SLURM_ARRAY_TASK_COUNT")) {
        const long long id = atoll(getenv("SLURM_ARRAY_TASK_ID"));
        const char *min = getenv("SLURM_ARRAY_TASK_MIN");
        const long long n = atoll(getenv("SLURM_ARRAY_TASK_COUNT"));
        const long long i = id - (min ? atoll(min) : 0);
        if (n < 1 || i < 0 || i >= n) {
            cli_usage(c, "SLURM_ARRAY_TASK_ID %lld is not in a dense array of %lld tasks; "
                      "give --shard I/N", id, n);
            return;
        }
        o->shard_i = (int)i;
        o->shard_n = (int)n;
    }
    if (!o->shard_n)
        o->shard_n = 1;
    if (!o->threads_set)
        o->threads = 1;
    const int64_t ncores = cores();
    if (!o->jobs_set)
        o->jobs = ncores / o->threads > 0 ? ncores / o->threads : 1;
    if (o->jobs * o->threads > ncores && !o->oversubscribe)
        cli_usage(c, "--jobs %lld x --threads %lld exceeds the %lld cores (add "
                  "--oversubscribe to run so anyway)", (long long)o->jobs, (long long)o->threads,
                  (long long)ncores);
    if (!c->bad)
        setup_solvers(c, o);
}

/* The options that decide results (and the budget shares): the journal's fingerprint. */
static json_t *fingerprint(const batch_opts *o)
{
    json_t *f = json_object(), *s = json_array(), *p = json_array();
    char nm[32];
    snprintf(nm, sizeof nm, "%d:%d", o->nm.n, o->nm.m);
    for (int k = 0; k < o->nsolvers; k++)
        json_array_append_new(s, json_string(o->solvers[k]));
    for (int k = 0; k < o->nparams; k++)
        json_array_append_new(p, json_string(o->param_text[k]));
    cli_jset(f, "solvers", s);
    cli_jset(f, "param", p);
    cli_jset(f, "nm", json_string(nm));
    cli_jset(f, "objective", json_string(nmp_objective_name(o->objective)));
    cli_jset(f, "seed", json_integer((json_int_t)o->seed));
    cli_jset(f, "threads", json_integer(o->threads));
    cli_jset(f, "budget", o->budget_set ? json_real(o->budget) : NULL);
    cli_jset(f, "jobs", o->budget_set ? json_integer(o->jobs) : NULL); /* shares depend on it */
    cli_jset(f, "time_limit", o->time_limit_set ? json_real(o->time_limit) : NULL);
    cli_jset(f, "bound_time", o->bound_time > 0 ? json_real(o->bound_time) : NULL);
    cli_jset(f, "write_checkpoints", json_boolean(o->write_ckpt));
    cli_jset(f, "arch", json_string(o->arch ? o->arch : "auto"));
    cli_jset(f, "heads", json_integer(o->heads));
    cli_jset(f, "kv_heads", json_integer(o->kv_heads));
    cli_jset(f, "residual", json_boolean(o->residual));
    return f;
}

/* The first option that differs between two fingerprints, as "--seed: 1 here, 0 in <where>";
 * false when equal. */
static bool fingerprint_diff(json_t *a, json_t *b, const char *where, char *out, size_t len)
{
    const char *key;
    json_t *va;
    json_object_foreach(a, key, va) {
        json_t *vb = json_object_get(b, key);
        if (vb && json_equal(va, vb))
            continue;
        char opt[64], *ta = json_dumps(va, JSON_ENCODE_ANY | JSON_COMPACT);
        char *tb = vb ? json_dumps(vb, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
        snprintf(opt, sizeof opt, "--%s", key);
        for (char *p = opt; *p; p++)
            if (*p == '_')
                *p = '-';
        snprintf(out, len, "%s: %s here, %s in %s", opt, ta ? ta : "?", tb ? tb : "(absent)",
                 where);
        free(ta);
        free(tb);
        return true;
    }
    json_object_foreach(b, key, va) {
        if (!json_object_get(a, key)) {
            snprintf(out, len, "--%s: absent here, set in %s", key, where);
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------ the job list */

static const char *kind_name(nmp_batch_kind k)
{
    return k == NMP_BATCH_SPACE ? "space" : k == NMP_BATCH_WRITE ? "write" : "matrix";
}

/* Shares of the budget: each job gets JOB_OVERHEAD (process start, load, write) plus a part of
 * the rest of (budget x jobs at a time x BUDGET_USE) in proportion to its estimated solve work
 * (cost - 0.05), at most BUDGET_USE x budget; --time-limit: that; else 0 (fixed work). */
static void shares(const batch_opts *o, const nmp_batch_list *l, const int *mine, double *share)
{
    double work = 0, pool = o->budget * (double)o->jobs * BUDGET_USE;
    int64_t n = 0;
    for (int64_t k = 0; k < l->count; k++)
        if (mine[k] && !l->jobs[k].error && l->jobs[k].kind != NMP_BATCH_WRITE) {
            work += fmax(l->jobs[k].cost - 0.05, 0);
            n++;
        }
    pool -= (double)n * JOB_OVERHEAD;
    for (int64_t k = 0; k < l->count; k++) {
        share[k] = 0;
        if (!mine[k] || l->jobs[k].error || l->jobs[k].kind == NMP_BATCH_WRITE)
            continue;
        if (o->time_limit_set) {
            share[k] = o->time_limit;
        } else if (o->budget_set) {
            const double w = fmax(l->jobs[k].cost - 0.05, 0);
            const double s = pool > 0 && work > 0
                                 ? JOB_OVERHEAD + pool * w / work
                                 : o->budget * (double)o->jobs * BUDGET_USE / (double)n;
            share[k] = fmin(s, BUDGET_USE * o->budget);
            share[k] = floor(share[k] * 1e6 + 0.5) / 1e6; /* printable exactly */
        }
    }
}

static json_t *job_json(const nmp_batch_job *j, double share)
{
    json_t *o = json_object();
    cli_jset(o, "id", json_string(j->id));
    cli_jset(o, "kind", json_string(kind_name(j->kind)));
    cli_jset(o, "rel", json_string(j->rel));
    cli_jset(o, "space", j->space ? json_string(j->space) : NULL);
    cli_jset(o, "index", json_integer(j->index));
    cli_jset(o, "solver", json_string(j->solver));
    cli_jset(o, "rows", json_integer(j->rows));
    cli_jset(o, "cols", json_integer(j->cols));
    cli_jset(o, "cost", json_real(floor(j->cost * 1e6 + 0.5) / 1e6));
    cli_jset(o, "share", share > 0 ? json_real(share) : NULL);
    cli_jset(o, "output", json_string(j->output));
    cli_jset(o, "group", json_integer(j->group));
    cli_jset(o, "error", j->error ? json_string(j->error) : NULL);
    return o;
}

/* ------------------------------------------------------------ the worker */

/* nmperm batch --run-job SPEC: one job in this process; prints one JSON line with the result
 * ({"ok": true, ...} or {"ok": false, "error": ...}). Exit 0 unless the line could not be
 * printed. */
static int run_job(const char *spec_text)
{
    json_error_t jerr;
    json_t *spec = json_loads(spec_text, 0, &jerr), *out = json_object();
    nmp_msg msg = { { 0 } };
    nmp_err e = NMP_OK;
    const char *kind = json_string_value(json_object_get(spec, "kind"));
    const char *path = json_string_value(json_object_get(spec, "path"));
    const char *space = json_string_value(json_object_get(spec, "space"));
    const char *solver = json_string_value(json_object_get(spec, "solver"));
    const char *output = json_string_value(json_object_get(spec, "out"));
    const char *nmtext = json_string_value(json_object_get(spec, "nm"));
    const char *objtext = json_string_value(json_object_get(spec, "objective"));
    json_t *plan = json_object_get(spec, "plan");
    nmp_batch_run_opts ro;
    memset(&ro, 0, sizeof ro);
    nmp_params_init(&ro.par);
    if (!kind || !path || !solver || !output || !nmtext || !objtext ||
        nmp_pattern_parse(nmtext, &ro.nm, NULL) != NMP_OK ||
        nmp_objective_parse(objtext, &ro.objective) != NMP_OK) {
        e = NMP_ERR_ARG;
        snprintf(msg.text, sizeof msg.text, "batch --run-job: bad job spec");
        goto out;
    }
    ro.par.seed = (uint64_t)json_integer_value(json_object_get(spec, "seed"));
    ro.par.threads = (int)json_integer_value(json_object_get(spec, "threads"));
    ro.job_seconds = json_number_value(json_object_get(spec, "job_seconds"));
    ro.bound_seconds = json_number_value(json_object_get(spec, "bound_seconds"));
    ro.plan.arch = json_string_value(json_object_get(plan, "arch"));
    ro.plan.heads = (int)json_integer_value(json_object_get(plan, "heads"));
    ro.plan.kv_heads = (int)json_integer_value(json_object_get(plan, "kv_heads"));
    ro.plan.residual = json_is_true(json_object_get(plan, "residual"));
    const char *key;
    json_t *val;
    json_object_foreach(json_object_get(spec, "params"), key, val)
        nmp_params_set(&ro.par, key, json_number_value(val));
    if (strcmp(kind, "write") == 0) {
        const char *prefix = json_string_value(json_object_get(spec, "perm_prefix"));
        e = nmp_batch_write_checkpoint(path, &ro.plan, ro.nm, prefix ? prefix : "", solver,
                                       output, &msg);
        goto out;
    }
    nmp_batch_result r;
    if ((e = nmp_batch_run(path, space, solver, &ro, output, &r, &msg)) != NMP_OK)
        goto out;
    cli_jset(out, "rows", json_integer(r.rows));
    cli_jset(out, "cols", json_integer(r.cols));
    cli_jset(out, "status", json_string(nmp_status_str(r.res.status)));
    cli_jset(out, "identity", cli_jnum(r.identity));
    cli_jset(out, "kept", cli_jnum(r.res.score));
    cli_jset(out, "row_bound", cli_jnum(r.row_bound));
    cli_jset(out, "bound", cli_jnum(r.res.bound));
    cli_jset(out, "lp_bound", cli_jnum(r.lp_bound));
    cli_jset(out, "lp_complete", json_boolean(r.lp_complete));
    cli_jset(out, "efficacy", cli_jnum(r.efficacy));
    cli_jset(out, "iterations", json_integer(r.res.iterations));
    cli_jset(out, "seconds", cli_jnum(r.res.seconds));
    cli_jset(out, "load_seconds", cli_jnum(r.load_seconds));
out:
    cli_jset(out, "ok", json_boolean(e == NMP_OK));
    if (e != NMP_OK)
        cli_jset(out, "error", json_string(msg.text[0] ? msg.text : nmp_err_str(e)));
    char *text = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(17));
    int rc = text && printf("\n%s\n", text) > 0 && fflush(stdout) == 0 ? 0 : CLI_EXIT_INTERNAL;
    free(text);
    json_decref(out);
    json_decref(spec);
    return rc;
}

/* ------------------------------------------------------------ scheduling */

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
    stop_signal = sig;
}

typedef struct slot {
    pid_t pid;
    int fd;
    int64_t job;
    double start;
    char *buf;
    size_t len, cap;
} slot;

typedef struct runner {
    const batch_opts *o;
    const nmp_batch_list *l;
    const int *mine;
    const double *share;
    char *self;              /* this program, for the workers */
    int *state;              /* per job: 0 pending, 1 running, 2 done ok, 3 failed */
    nmp_journal *journal;
    slot *slots;
    int64_t total, done, failed;
    double cost_total, cost_done, start;
    cli_progress_line pl;
} runner;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static json_t *spec_json(const runner *r, int64_t k)
{
    const batch_opts *o = r->o;
    const nmp_batch_job *j = &r->l->jobs[k];
    json_t *s = json_object(), *plan = json_object(), *params = json_object();
    char nm[32], buf[8192];
    int sv = 0;
    while (sv < o->nsolvers - 1 && strcmp(o->solvers[sv], j->solver) != 0)
        sv++;
    snprintf(nm, sizeof nm, "%d:%d", o->nm.n, o->nm.m);
    cli_jset(s, "kind", json_string(kind_name(j->kind)));
    cli_jset(s, "path", json_string(j->path));
    cli_jset(s, "space", j->space ? json_string(j->space) : NULL);
    cli_jset(s, "solver", json_string(j->solver));
    snprintf(buf, sizeof buf, "%s/%s", o->outdir, j->output);
    cli_jset(s, "out", json_string(buf));
    snprintf(buf, sizeof buf, "%s/perms/%s/", o->outdir, j->rel);
    cli_jset(s, "perm_prefix", json_string(buf));
    cli_jset(s, "nm", json_string(nm));
    cli_jset(s, "objective", json_string(nmp_objective_name(o->objective)));
    cli_jset(s, "seed", json_integer((json_int_t)o->seed));
    cli_jset(s, "threads", json_integer(o->threads));
    cli_jset(s, "job_seconds", json_real(r->share[k]));
    cli_jset(s, "bound_seconds", json_real(o->bound_time));
    for (int p = 0; p < o->par[sv].count; p++)
        cli_jset(params, o->par[sv].values[p].name, json_real(o->par[sv].values[p].value));
    cli_jset(s, "params", params);
    cli_jset(plan, "arch", o->arch ? json_string(o->arch) : NULL);
    cli_jset(plan, "heads", json_integer(o->heads));
    cli_jset(plan, "kv_heads", json_integer(o->kv_heads));
    cli_jset(plan, "residual", json_boolean(o->residual));
    cli_jset(s, "plan", plan);
    return s;
}

/* Starts job k in a worker process (fork + exec of this program); false when it could not be
 * started (then it is failed with the reason). */
static bool spawn(runner *r, slot *s, int64_t k, char *why, size_t len)
{
    json_t *spec = spec_json(r, k);
    char *text = json_dumps(spec, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(spec);
    int fds[2];
    if (!text || pipe2(fds, O_CLOEXEC) != 0) { /* no worker inherits another's pipe */
        snprintf(why, len, "cannot start a worker: %s", text ? strerror(errno) : "out of memory");
        free(text);
        return false;
    }
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = { r->self, (char *)"batch", (char *)"--run-job", text, NULL };
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a killed batch takes its workers along */
        if (getppid() != parent)
            _exit(127);
#else
        (void)parent;
#endif
        signal(SIGINT, SIG_IGN); /* Ctrl-C is the batch's to handle */
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(r->self, argv);
        _exit(127);
    }
    free(text);
    close(fds[1]);
    if (pid < 0) {
        snprintf(why, len, "cannot start a worker: %s", strerror(errno));
        close(fds[0]);
        return false;
    }
    s->pid = pid;
    s->fd = fds[0];
    s->job = k;
    s->start = now();
    s->len = 0;
    return true;
}

/* The worker's result line: the last line of its output that parses as a JSON object. */
static json_t *last_object(char *buf, size_t len, char *tail, size_t tail_len)
{
    json_t *res = NULL;
    tail[0] = '\0';
    buf[len] = '\0';
    for (char *line = buf, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        json_t *j = line[0] == '{' ? json_loads(line, 0, NULL) : NULL;
        if (json_is_object(j)) {
            json_decref(res);
            res = j;
        } else {
            json_decref(j);
            if (*line)
                snprintf(tail, tail_len, "%s", line);
        }
    }
    return res;
}

static void progress(runner *r, const char *last, const json_t *rec)
{
    if (r->o->quiet)
        return;
    const double el = now() - r->start;
    const double rate = r->cost_done > 0 ? el / r->cost_done : 0;
    const double eta = rate * (r->cost_total - r->cost_done);
    char line[400];
    if (r->pl.show) {
        const char *cur = "";
        for (int64_t s = 0; s < r->o->jobs; s++)
            if (r->slots[s].pid > 0) {
                cur = r->l->jobs[r->slots[s].job].id;
                break;
            }
        char failed[64] = "";
        if (r->failed)
            snprintf(failed, sizeof failed, ", %lld failed", (long long)r->failed);
        snprintf(line, sizeof line, "batch %lld/%lld done%s, %.0fs, ETA %.0fs  %.60s",
                 (long long)r->done, (long long)r->total, failed, el, eta, cur);
        cli_progress_draw(&r->pl, line);
    } else if (last) {
        const char *state = json_string_value(json_object_get(rec, "state"));
        const double id = json_number_value(json_object_get(rec, "identity"));
        const double kept = json_number_value(json_object_get(rec, "kept"));
        fprintf(stderr, "nmperm: batch: [%lld/%lld] %s %s", (long long)r->done,
                (long long)r->total, last, state ? state : "?");
        if (state && strcmp(state, "ok") == 0 && id > 0)
            fprintf(stderr, " %+.3f%%", 100.0 * (kept - id) / id);
        fprintf(stderr, " %.2fs, ETA %.0fs\n", json_number_value(json_object_get(rec, "wall")),
                eta);
    }
}

/* Records job k's end in the journal (fsync'd) and the counters. */
static int finish(runner *r, int64_t k, json_t *res, const char *error, double wall)
{
    const nmp_batch_job *j = &r->l->jobs[k];
    json_t *rec = json_object();
    nmp_msg msg = { { 0 } };
    const bool ok = !error && json_is_true(json_object_get(res, "ok"));
    cli_jset(rec, "id", json_string(j->id));
    cli_jset(rec, "state", json_string(ok ? "ok" : "failed"));
    if (res) {
        const char *keys[] = { "rows", "cols", "status", "identity", "kept", "row_bound",
                               "bound", "lp_bound", "lp_complete", "efficacy", "iterations",
                               "seconds", "load_seconds" };
        for (size_t q = 0; q < sizeof keys / sizeof keys[0]; q++) {
            json_t *v = json_object_get(res, keys[q]);
            if (v)
                json_object_set(rec, keys[q], v);
        }
    }
    cli_jset(rec, "wall", json_real(floor(wall * 1e6 + 0.5) / 1e6));
    cli_jset(rec, "share", r->share[k] > 0 ? json_real(r->share[k]) : NULL);
    if (!ok) {
        /* the input's absolute path differs between machines: name it relative to the root */
        const char *text = error ? error : json_string_value(json_object_get(res, "error"));
        char rel[1500];
        const char *at = text ? strstr(text, j->path) : NULL;
        if (at)
            snprintf(rel, sizeof rel, "%.*s%s%s", (int)(at - text), text, j->rel,
                     at + strlen(j->path));
        cli_jset(rec, "error", json_string(at ? rel : text ? text : "no result"));
    }
    char *text = json_dumps(rec, JSON_COMPACT | JSON_REAL_PRECISION(17));
    int rc = 0;
    nmp_err e = text ? nmp_journal_append(r->journal, text, &msg) : NMP_ERR_NOMEM;
    if (e != NMP_OK)
        rc = cli_fail_lib(e, r->o->outdir, &msg);
    free(text);
    r->state[k] = ok ? 2 : 3;
    r->done++;
    r->failed += !ok;
    r->cost_done += j->cost;
    progress(r, j->id, rec);
    json_decref(rec);
    return rc;
}

/* A worker's end: its result, or why it has none. */
static int reap(runner *r, slot *s)
{
    int status = 0;
    char tail[600], why[800];
    while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
        ;
    close(s->fd);
    const double wall = now() - s->start;
    json_t *res = last_object(s->buf, s->len, tail, sizeof tail);
    const char *error = NULL;
    if (!res) {
        if (WIFSIGNALED(status))
            snprintf(why, sizeof why, "worker crashed: signal %d (%s)%s%s", WTERMSIG(status),
                     strsignal(WTERMSIG(status)), tail[0] ? ": " : "", tail);
        else
            snprintf(why, sizeof why, "worker exited with code %d%s%s",
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1, tail[0] ? ": " : "", tail);
        error = why;
    }
    const int64_t k = s->job;
    s->pid = 0;
    s->fd = -1;
    const int rc = finish(r, k, res, error, wall);
    json_decref(res);
    return rc;
}

/* Whether write job k can start: every space job of its group is finished. *failed names a
 * failed one. */
static bool deps_done(const runner *r, int64_t k, const char **failed)
{
    const nmp_batch_job *j = &r->l->jobs[k];
    *failed = NULL;
    for (int64_t q = 0; q < r->l->count; q++) {
        const nmp_batch_job *d = &r->l->jobs[q];
        if (q == k || d->group != j->group || d->kind != NMP_BATCH_SPACE)
            continue;
        if (r->state[q] < 2)
            return false;
        if (r->state[q] == 3 && !*failed)
            *failed = d->id;
    }
    return true;
}

/* Runs the pending jobs (state 0) with o->jobs workers; 0, 130 on a signal, or an exit code. */
static int run_all(runner *r)
{
    const batch_opts *o = r->o;
    const int64_t n = r->l->count;
    int rc = 0;
    struct pollfd *pfd = nmp_calloc((size_t)o->jobs, sizeof *pfd);
    int64_t *order = nmp_calloc((size_t)n + 1, sizeof *order);
    r->slots = nmp_calloc((size_t)o->jobs, sizeof *r->slots);
    if (!pfd || !order || !r->slots) {
        rc = cli_fail(CLI_EXIT_INTERNAL, "batch", "out of memory");
        goto out;
    }
    /* largest first (LPT): the makespan of J parallel slots is then near total / J */
    int64_t norder = 0;
    for (int64_t k = 0; k < n; k++)
        if (r->state[k] == 0)
            order[norder++] = k;
    for (int64_t a = 1; a < norder; a++) { /* insertion sort: stable and deterministic */
        const int64_t k = order[a];
        int64_t b = a;
        while (b > 0 && r->l->jobs[order[b - 1]].cost < r->l->jobs[k].cost)
            order[b] = order[b - 1], b--;
        order[b] = k;
    }
    int64_t running = 0, next = 0;
    while (!stop_signal && (running > 0 || next < norder)) {
        /* start what can start */
        for (int64_t s = 0; s < o->jobs && !stop_signal; s++) {
            if (r->slots[s].pid > 0)
                continue;
            int64_t pick = -1;
            for (int64_t q = next; q < norder && pick < 0; q++) {
                const int64_t k = order[q];
                if (r->state[k] != 0)
                    continue;
                const nmp_batch_job *j = &r->l->jobs[k];
                const char *failed = NULL;
                char why[1200];
                if (j->error) {
                    r->state[k] = 1;
                    if ((rc = finish(r, k, NULL, j->error, 0)))
                        goto out;
                    continue;
                }
                if (j->kind == NMP_BATCH_WRITE) {
                    if (!deps_done(r, k, &failed))
                        continue;
                    if (failed) {
                        snprintf(why, sizeof why, "not written: %s failed", failed);
                        r->state[k] = 1;
                        if ((rc = finish(r, k, NULL, why, 0)))
                            goto out;
                        continue;
                    }
                }
                pick = k;
            }
            while (next < norder && r->state[order[next]] != 0)
                next++;
            if (pick < 0)
                break;
            char why[300];
            r->state[pick] = 1;
            if (!spawn(r, &r->slots[s], pick, why, sizeof why)) {
                if ((rc = finish(r, pick, NULL, why, 0)))
                    goto out;
                continue;
            }
            running++;
            progress(r, NULL, NULL);
        }
        if (running == 0)
            continue; /* only unstartable write jobs were left: they are finished by now */
        int nf = 0;
        for (int64_t s = 0; s < o->jobs; s++)
            if (r->slots[s].pid > 0)
                pfd[nf++] = (struct pollfd){ r->slots[s].fd, POLLIN, 0 };
        if (poll(pfd, (nfds_t)nf, 250) < 0 && errno != EINTR) {
            rc = cli_fail(CLI_EXIT_INTERNAL, "batch", "poll: %s", strerror(errno));
            goto out;
        }
        for (int64_t s = 0; s < o->jobs; s++) {
            slot *sl = &r->slots[s];
            if (sl->pid <= 0)
                continue;
            int f = 0;
            while (f < nf && pfd[f].fd != sl->fd)
                f++;
            if (f == nf || !pfd[f].revents)
                continue;
            if (sl->cap - sl->len < 4097) {
                if (sl->cap >= 65536) { /* keep the tail: the result line comes last */
                    memmove(sl->buf, sl->buf + sl->len - 8192, 8192);
                    sl->len = 8192;
                } else {
                    char *grown = nmp_realloc(sl->buf, sl->cap * 2 + 8192);
                    if (!grown) {
                        rc = cli_fail(CLI_EXIT_INTERNAL, "batch", "out of memory");
                        goto out;
                    }
                    sl->buf = grown;
                    sl->cap = sl->cap * 2 + 8192;
                }
            }
            const ssize_t got = read(sl->fd, sl->buf + sl->len, sl->cap - sl->len - 1);
            if (got > 0) {
                sl->len += (size_t)got;
            } else if (got == 0 || errno != EINTR) {
                running--;
                if ((rc = reap(r, sl)))
                    goto out;
            }
        }
        progress(r, NULL, NULL);
    }
    if (stop_signal)
        rc = 130;
out:
    for (int64_t s = 0; r->slots && s < o->jobs; s++)
        if (r->slots[s].pid > 0) {
            kill(r->slots[s].pid, SIGKILL);
            while (waitpid(r->slots[s].pid, NULL, 0) < 0 && errno == EINTR)
                ;
            close(r->slots[s].fd);
        }
    for (int64_t s = 0; r->slots && s < o->jobs; s++)
        nmp_free(r->slots[s].buf);
    nmp_free(r->slots);
    r->slots = NULL;
    nmp_free(pfd);
    nmp_free(order);
    cli_progress_clear(&r->pl);
    return rc;
}

/* --------------------------------------------------------- output folder */

/* Removes temporaries (name.tmpXXXXXX) that a killed run left under dir. */
static void remove_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *ent; (ent = readdir(d)) != NULL;) {
        const char *name = ent->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (lstat(path, &st) != 0)
            continue;
        const size_t len = strlen(name);
        if (S_ISDIR(st.st_mode))
            remove_temporaries(path);
        else if (S_ISREG(st.st_mode) && len > 10 && strncmp(name + len - 10, ".tmp", 4) == 0)
            unlink(path);
    }
    closedir(d);
}

static bool dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    bool empty = true;
    if (!d)
        return true;
    for (struct dirent *ent; empty && (ent = readdir(d)) != NULL;)
        empty = strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0;
    closedir(d);
    return empty;
}

/* Finished ids of an existing journal, after checking it belongs to this run. 0 to go on
 * (*fresh: start a new journal), else the exit code after one line. */
static int check_existing(const batch_opts *o, json_t *fp, json_t *jobs, const char *jpath,
                          batch_view *old, bool *fresh)
{
    char **lines = NULL;
    int64_t count = 0;
    int torn = 0;
    nmp_msg msg = { { 0 } };
    struct stat st;
    *fresh = true;
    memset(old, 0, sizeof *old);
    if (stat(o->outdir, &st) == 0 && !S_ISDIR(st.st_mode))
        return cli_fail(CLI_EXIT_USAGE, o->outdir, "exists and is not a folder");
    nmp_err e = nmp_journal_read(jpath, &lines, &count, &torn, &msg);
    if (e != NMP_OK) {
        if (!o->force)
            return cli_fail(CLI_EXIT_USAGE, o->outdir, "%s (start over with --force)",
                            msg.text);
        return 0;
    }
    if (count == 0) {
        nmp_batch_lines_free(lines, count);
        if (!o->force && stat(o->outdir, &st) == 0 && !dir_is_empty(o->outdir) &&
            access(jpath, F_OK) != 0)
            return cli_fail(CLI_EXIT_USAGE, o->outdir, "is not empty and holds no batch "
                            "journal (choose another folder, or --force)");
        return 0;
    }
    int rc = batch_view_from_lines(jpath, lines, count, old);
    nmp_batch_lines_free(lines, count);
    if (rc)
        return o->force ? 0 : rc;
    old->torn = torn;
    json_t *ofp = json_object_get(old->header, "options");
    json_t *shard = json_object_get(old->header, "shard");
    char diff[1200];
    size_t finished = 0;
    for (size_t k = 0; k < old->count; k++)
        finished += old->records[k] != NULL;
    if (o->force) {
        batch_view_free(old);
        return 0;
    }
    if (!o->resume) {
        rc = cli_fail(CLI_EXIT_USAGE, o->outdir, "holds a batch run (%zu of %zu jobs finished): "
                      "continue it with --resume, or start over with --force", finished,
                      old->count);
        goto out;
    }
    if (fingerprint_diff(fp, ofp, jpath, diff, sizeof diff)) {
        rc = cli_fail(CLI_EXIT_USAGE, o->outdir, "made with other options: %s (start over "
                      "with --force)", diff);
        goto out;
    }
    if (json_integer_value(json_array_get(shard, 0)) != o->shard_i ||
        json_integer_value(json_array_get(shard, 1)) != o->shard_n) {
        rc = cli_fail(CLI_EXIT_USAGE, o->outdir, "made for shard %lld/%lld, this is shard %d/%d",
                      (long long)json_integer_value(json_array_get(shard, 0)),
                      (long long)json_integer_value(json_array_get(shard, 1)), o->shard_i,
                      o->shard_n);
        goto out;
    }
    const size_t now_n = json_array_size(jobs);
    for (size_t k = 0; k < now_n || k < old->count; k++) {
        const char *a = k < now_n ? json_string_value(json_object_get(json_array_get(jobs, k),
                                                                      "id"))
                                  : NULL;
        const char *b = k < old->count ? json_string_value(json_object_get(
                                             json_array_get(old->jobs, k), "id"))
                                       : NULL;
        if (a && b && strcmp(a, b) == 0)
            continue;
        rc = cli_fail(CLI_EXIT_USAGE, o->outdir, "the inputs now give %zu jobs, the journal "
                      "has %zu (job %zu: %s here, %s in %s; start over with --force)", now_n,
                      old->count, k + 1, a ? a : "none", b ? b : "none", jpath);
        goto out;
    }
    *fresh = false;
    return 0;
out:
    batch_view_free(old);
    return rc;
}

/* ------------------------------------------------------------------ batch */

int cli_cmd_batch(cli_args *c)
{
    if (c->argc == 4 && strcmp(c->argv[2], "--run-job") == 0)
        return run_job(c->argv[3]);
    if (cli_help_or_version(c, help_batch))
        return 0;
    batch_opts o;
    memset(&o, 0, sizeof o);
    o.nm = (nmp_pattern){ 2, 4 };
    o.objective = NMP_OBJ_ABS;
    nmp_batch_list *l = NULL;
    nmp_msg msg = { { 0 } };
    json_t *fp = NULL, *jobs = NULL, *header = NULL;
    int *shard = NULL, *mine = NULL;
    double *share = NULL;
    batch_view old = { 0 };
    runner r;
    memset(&r, 0, sizeof r);
    char jpath[4096], self[4096];
    int rc = 0;
    parse_batch(c, &o);
    if (c->bad) {
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    const nmp_batch_opts bo = { o.solvers, o.nsolvers, o.nm,
                                { o.arch, (int)o.heads, (int)o.kv_heads, o.residual },
                                o.write_ckpt, o.outdir };
    nmp_err e = nmp_batch_list_inputs(o.inputs, o.ninputs, &bo, &l, &msg);
    if (e != NMP_OK) {
        rc = cli_fail_lib(e, "batch", &msg);
        goto out;
    }
    shard = nmp_calloc((size_t)l->count + 1, sizeof *shard);
    mine = nmp_calloc((size_t)l->count + 1, sizeof *mine);
    share = nmp_calloc((size_t)l->count + 1, sizeof *share);
    r.state = nmp_calloc((size_t)l->count + 1, sizeof *r.state);
    if (!shard || !mine || !share || !r.state ||
        nmp_batch_shard(l, o.shard_n, shard) != NMP_OK) {
        rc = cli_fail(CLI_EXIT_INTERNAL, "batch", "out of memory");
        goto out;
    }
    for (int64_t k = 0; k < l->count; k++)
        mine[k] = shard[k] == o.shard_i;
    shares(&o, l, mine, share);
    fp = fingerprint(&o);
    jobs = json_array();
    for (int64_t k = 0; k < l->count; k++)
        if (mine[k])
            json_array_append_new(jobs, job_json(&l->jobs[k], share[k]));
    snprintf(jpath, sizeof jpath, "%s/%s", o.outdir, BATCH_JOURNAL);
    bool fresh = true;
    if ((rc = check_existing(&o, fp, jobs, jpath, &old, &fresh)))
        goto out;
    if (old.torn)
        fprintf(stderr, "nmperm: %s: ignored a torn last line (a run was killed while writing "
                "it)\n", jpath);
    if ((e = nmp_journal_open(jpath, fresh, &r.journal, &msg)) != NMP_OK) {
        rc = cli_fail_lib(e, o.outdir, &msg);
        goto out;
    }
    if (fresh) {
        header = json_object();
        cli_jset(header, "nmperm_batch", json_integer(BATCH_FORMAT));
        cli_jset(header, "version", json_string(nmp_version()));
        cli_jset(header, "options", json_incref(fp));
        json_t *sh = json_array();
        json_array_append_new(sh, json_integer(o.shard_i));
        json_array_append_new(sh, json_integer(o.shard_n));
        cli_jset(header, "shard", sh);
        cli_jset(header, "root", json_string(l->root));
        cli_jset(header, "jobs", json_incref(jobs));
        char *text = json_dumps(header, JSON_COMPACT | JSON_REAL_PRECISION(17));
        e = text ? nmp_journal_append(r.journal, text, &msg) : NMP_ERR_NOMEM;
        free(text);
        if (e != NMP_OK) {
            rc = cli_fail_lib(e, o.outdir, &msg);
            goto out;
        }
    } else {
        remove_temporaries(o.outdir);
    }
    /* which jobs are left */
    for (int64_t k = 0; k < l->count; k++)
        r.state[k] = mine[k] ? 0 : 2;
    for (size_t q = 0; !fresh && q < old.count; q++) {
        json_t *rec = old.records[q];
        if (!rec)
            continue;
        const char *id = json_string_value(json_object_get(rec, "id"));
        const bool ok = strcmp(json_string_value(json_object_get(rec, "state")), "ok") == 0;
        for (int64_t k = 0; k < l->count; k++)
            if (mine[k] && strcmp(l->jobs[k].id, id) == 0 && (ok || !o.retry_failed))
                r.state[k] = ok ? 2 : 3;
    }
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl > 0)
        self[sl] = '\0';
    else
        snprintf(self, sizeof self, "%s", c->argv[0]);
    r.o = &o;
    r.l = l;
    r.mine = mine;
    r.share = share;
    r.self = self;
    cli_progress_init(&r.pl, o.quiet, false);
    r.start = now();
    for (int64_t k = 0; k < l->count; k++)
        if (mine[k]) {
            r.total++;
            r.cost_total += l->jobs[k].cost;
            if (r.state[k] >= 2) {
                r.done++;
                r.cost_done += l->jobs[k].cost;
            }
        }
    r.cost_total -= r.cost_done; /* ETA from this run's pace */
    r.cost_done = 0;
    if (!o.quiet && !r.pl.show)
        fprintf(stderr, "nmperm: batch: %lld jobs (shard %d/%d), %lld already finished, %lld "
                "at a time x %lld threads\n", (long long)r.total, o.shard_i, o.shard_n,
                (long long)r.done, (long long)o.jobs, (long long)o.threads);
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    rc = run_all(&r);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    nmp_journal_close(r.journal);
    r.journal = NULL;
    if (rc == 130) {
        cli_fail(130, "batch", "interrupted; continue with --resume");
        goto out;
    }
    if (rc)
        goto out;
    batch_view v;
    if ((rc = batch_view_load(o.outdir, &v)))
        goto out;
    rc = summary_write_files(&v, o.outdir);
    if (!rc && !o.quiet)
        summary_print(&v, stdout, true);
    size_t failed = 0;
    for (size_t k = 0; k < v.count; k++)
        failed += v.records[k] &&
                  strcmp(json_string_value(json_object_get(v.records[k], "state")), "ok") != 0;
    batch_view_free(&v);
    if (!rc && failed)
        rc = cli_fail(CLI_EXIT_USAGE, "batch", "%zu of %lld jobs failed (listed in the summary)",
                      failed, (long long)r.total);
out:
    nmp_journal_close(r.journal);
    batch_view_free(&old);
    json_decref(header);
    json_decref(fp);
    json_decref(jobs);
    nmp_free(shard);
    nmp_free(mine);
    nmp_free(share);
    nmp_free(r.state);
    nmp_batch_list_free(l);
    opts_free(&o);
    return rc;
}

/* ------------------------------------------------------------------ merge */

typedef struct merge_job {
    json_t *job, *record;
    const char *dir;
    int solver; /* position in the options' solver list */
} merge_job;

static int cmp_merge(const void *pa, const void *pb)
{
    const merge_job *a = pa, *b = pb;
    const char *ra = json_string_value(json_object_get(a->job, "rel"));
    const char *rb = json_string_value(json_object_get(b->job, "rel"));
    int c = nmp_batch_name_cmp(ra ? ra : "", rb ? rb : "");
    if (c)
        return c;
    const json_int_t ia = json_integer_value(json_object_get(a->job, "index"));
    const json_int_t ib = json_integer_value(json_object_get(b->job, "index"));
    if (ia != ib)
        return ia < ib ? -1 : 1;
    if (a->solver != b->solver)
        return a->solver < b->solver ? -1 : 1;
    return strcmp(json_string_value(json_object_get(a->job, "id")),
                  json_string_value(json_object_get(b->job, "id")));
}

int cli_cmd_merge(cli_args *c)
{
    if (cli_help_or_version(c, help_merge))
        return 0;
    const char **dirs = nmp_calloc((size_t)c->argc, sizeof *dirs), *out = NULL, *v = NULL;
    int ndirs = 0, rc = 0;
    bool force = false, quiet = false;
    batch_view *views = NULL;
    merge_job *mj = NULL;
    size_t nmj = 0;
    json_t *header = NULL;
    char *text = NULL;
    size_t tlen = 0;
    nmp_msg msg = { { 0 } };
    if (!dirs)
        return cli_fail(CLI_EXIT_INTERNAL, "merge", "out of memory");
    for (c->k = 2; c->k < c->argc && !c->bad; c->k++) {
        if (cli_is_flag(c, "--force"))
            force = true;
        else if (cli_is_flag(c, "--quiet"))
            quiet = true;
        else if (cli_take(c, "--output", "-o", &v))
            out = v;
        else if (c->argv[c->k][0] == '-' && c->argv[c->k][1])
            cli_usage(c, "unknown option '%s'", c->argv[c->k]);
        else
            dirs[ndirs++] = c->argv[c->k];
    }
    if (!c->bad && !ndirs)
        cli_usage(c, "missing the shards' output folders");
    else if (!c->bad && !out)
        cli_usage(c, "missing -o MERGED");
    if (c->bad) {
        nmp_free(dirs);
        return CLI_EXIT_USAGE;
    }
    views = nmp_calloc((size_t)ndirs, sizeof *views);
    if (!views) {
        rc = cli_fail(CLI_EXIT_INTERNAL, "merge", "out of memory");
        goto out;
    }
    int n = 0;
    for (int d = 0; d < ndirs; d++) {
        if ((rc = batch_view_load(dirs[d], &views[d])))
            goto out;
        json_t *sh = json_object_get(views[d].header, "shard");
        const json_int_t i = json_integer_value(json_array_get(sh, 0));
        const json_int_t nn = json_integer_value(json_array_get(sh, 1));
        if (d == 0)
            n = (int)nn;
        char diff[1200], where[4200];
        snprintf(where, sizeof where, "%s", dirs[0]);
        if (d > 0 && fingerprint_diff(json_object_get(views[d].header, "options"),
                                      json_object_get(views[0].header, "options"), where, diff,
                                      sizeof diff)) {
            rc = cli_fail(CLI_EXIT_USAGE, dirs[d], "run with other options than the other "
                          "shards: %s", diff);
            goto out;
        }
        if (nn != n) {
            rc = cli_fail(CLI_EXIT_USAGE, dirs[d], "is shard %lld/%lld, %s is of %d shards",
                          (long long)i, (long long)nn, dirs[0], n);
            goto out;
        }
        for (int q = 0; q < d; q++)
            if (json_integer_value(json_array_get(json_object_get(views[q].header, "shard"),
                                                  0)) == i) {
                rc = cli_fail(CLI_EXIT_USAGE, "merge", "shard %lld/%d given twice (%s and %s)",
                              (long long)i, n, dirs[q], dirs[d]);
                goto out;
            }
        size_t unfinished = 0;
        for (size_t k = 0; k < views[d].count; k++)
            unfinished += !views[d].records[k];
        if (unfinished) {
            rc = cli_fail(CLI_EXIT_USAGE, dirs[d], "shard %lld/%d has %zu of %zu jobs "
                          "unfinished (run it again with --resume)", (long long)i, n,
                          unfinished, views[d].count);
            goto out;
        }
        nmj += views[d].count;
    }
    for (int i = 0; i < n; i++) {
        int d = 0;
        while (d < ndirs && json_integer_value(json_array_get(
                                json_object_get(views[d].header, "shard"), 0)) != i)
            d++;
        if (d == ndirs) {
            rc = cli_fail(CLI_EXIT_USAGE, "merge", "shard %d/%d is missing (%d of %d shards "
                          "given)", i, n, ndirs, n);
            goto out;
        }
    }
    mj = nmp_calloc(nmj + 1, sizeof *mj);
    if (!mj) {
        rc = cli_fail(CLI_EXIT_INTERNAL, "merge", "out of memory");
        goto out;
    }
    json_t *solvers = json_object_get(json_object_get(views[0].header, "options"), "solvers");
    nmj = 0;
    for (int d = 0; d < ndirs; d++)
        for (size_t k = 0; k < views[d].count; k++) {
            merge_job *m = &mj[nmj++];
            m->job = json_array_get(views[d].jobs, k);
            m->record = views[d].records[k];
            m->dir = dirs[d];
            const char *sv = json_string_value(json_object_get(m->job, "solver"));
            m->solver = 0;
            for (size_t s = 0; s < json_array_size(solvers); s++)
                if (sv && strcmp(json_string_value(json_array_get(solvers, s)), sv) == 0)
                    m->solver = (int)s;
        }
    qsort(mj, nmj, sizeof *mj, cmp_merge);
    for (size_t k = 1; k < nmj; k++)
        if (strcmp(json_string_value(json_object_get(mj[k].job, "id")),
                   json_string_value(json_object_get(mj[k - 1].job, "id"))) == 0) {
            rc = cli_fail(CLI_EXIT_USAGE, "merge", "job %s is in two shards (%s and %s): "
                          "overlapping shards", json_string_value(json_object_get(mj[k].job,
                                                                                   "id")),
                          mj[k - 1].dir, mj[k].dir);
            goto out;
        }
    /* the merged folder */
    char jpath[4096];
    snprintf(jpath, sizeof jpath, "%s/%s", out, BATCH_JOURNAL);
    struct stat st;
    if (!force && stat(out, &st) == 0 && !dir_is_empty(out)) {
        rc = cli_fail(CLI_EXIT_USAGE, out, "is not empty (choose another folder, or --force)");
        goto out;
    }
    for (size_t k = 0; k < nmj; k++) {
        const char *state = json_string_value(json_object_get(mj[k].record, "state"));
        const char *output = json_string_value(json_object_get(mj[k].job, "output"));
        if (!state || strcmp(state, "ok") != 0 || !output)
            continue;
        char from[4096], to[4096];
        snprintf(from, sizeof from, "%s/%s", mj[k].dir, output);
        snprintf(to, sizeof to, "%s/%s", out, output);
        nmp_err e = nmp_batch_copy_file(from, to, &msg);
        if (e != NMP_OK) {
            rc = cli_fail_lib(e, from, &msg);
            goto out;
        }
    }
    header = json_deep_copy(views[0].header);
    json_t *jobs = json_array(), *sh = json_array();
    json_array_append_new(sh, json_integer(0));
    json_array_append_new(sh, json_integer(1));
    cli_jset(header, "shard", sh);
    cli_jset(header, "merged_from", json_integer(n));
    for (size_t k = 0; k < nmj; k++)
        json_array_append(jobs, mj[k].job);
    cli_jset(header, "jobs", jobs);
    for (size_t k = 0; k <= nmj; k++) {
        json_t *line = k == 0 ? header : mj[k - 1].record;
        char *one = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(17));
        const size_t len = one ? strlen(one) : 0;
        char *grown = one ? nmp_realloc(text, tlen + len + 2) : NULL;
        if (!grown) {
            free(one);
            rc = cli_fail(CLI_EXIT_INTERNAL, "merge", "out of memory");
            goto out;
        }
        text = grown;
        memcpy(text + tlen, one, len);
        text[tlen + len] = '\n';
        tlen += len + 1;
        free(one);
    }
    nmp_err e = nmp_batch_write_file(jpath, text, tlen, &msg);
    if (e != NMP_OK) {
        rc = cli_fail_lib(e, out, &msg);
        goto out;
    }
    batch_view mv;
    if ((rc = batch_view_load(out, &mv)))
        goto out;
    rc = summary_write_files(&mv, out);
    if (!rc && !quiet)
        summary_print(&mv, stdout, true);
    batch_view_free(&mv);
out:
    for (int d = 0; views && d < ndirs; d++)
        batch_view_free(&views[d]);
    nmp_free(views);
    nmp_free(mj);
    nmp_free(text);
    json_decref(header);
    nmp_free(dirs);
    return rc;
}

/* nmp_cli_batch.c: nmperm batch (many matrices and checkpoints, parallel worker processes, a
 * journal to resume from, shards for Slurm arrays): options, the job list and its budget shares,
 * the journal's fingerprint and the journal read back, an existing OUTDIR checked first */
#define _GNU_SOURCE /* sched_getaffinity */
#include "nmp_cli_batch.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    "  --device D            cpu (default), gpu, auto or ref: where the solvers with a device\n"
    "                        search (osg, auto, colgen, bnp) and --bound-time's LP run\n"
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
/* Budget reserve: shares add up to this part of budget x jobs at a time; the rest covers the
 * last jobs' imbalance. JOB_OVERHEAD: seconds of every share for the process start, loading
 * and writing, before the split by size. */
#define BUDGET_USE 0.9
#define JOB_OVERHEAD 0.1

/* -------------------------------------------------------------- options */

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
    if (!o->solver_text) {
        cli_usage(c, "out of memory");
        return;
    }
    cli_solver_list(c, o->solver_text, &o->solvers, &o->nsolvers, &o->par);
    if (!c->bad)
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
        } else if (cli_take_device(c, &o->device)) {
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
    if (o->device != NMP_DEVICE_CPU) /* absent: cpu (journals from before --device) */
        cli_jset(f, "device", json_string(nmp_device_name(o->device)));
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

bool batch_fingerprint_diff(json_t *a, json_t *b, const char *where, char *out, size_t len)
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
    cli_jset(o, "kind", json_string(batch_kind_name(j->kind)));
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
/* ------------------------------------------------------- the journal read back */

void batch_view_free(batch_view *v)
{
    for (size_t k = 0; v->records && k < v->count; k++)
        json_decref(v->records[k]);
    nmp_free(v->records);
    json_decref(v->header);
    memset(v, 0, sizeof *v);
}

int batch_view_from_lines(const char *path, char **lines, int64_t count, batch_view *v)
{
    memset(v, 0, sizeof *v);
    json_t *index = json_object();
    int rc = 0;
    v->header = count > 0 ? json_loads(lines[0], 0, NULL) : NULL;
    v->jobs = json_object_get(v->header, "jobs");
    if (json_integer_value(json_object_get(v->header, "nmperm_batch")) != BATCH_FORMAT ||
        !json_is_array(v->jobs)) {
        rc = cli_fail(CLI_EXIT_USAGE, path, "not a batch journal (its first line is no header "
                      "of nmperm batch)");
        goto out;
    }
    v->count = json_array_size(v->jobs);
    v->records = nmp_calloc(v->count + 1, sizeof *v->records);
    if (!v->records) {
        rc = cli_fail(CLI_EXIT_INTERNAL, path, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < v->count; k++) {
        const char *id = json_string_value(json_object_get(json_array_get(v->jobs, k), "id"));
        if (id)
            json_object_set_new(index, id, json_integer((json_int_t)k));
    }
    for (int64_t q = 1; q < count; q++) {
        json_t *rec = json_loads(lines[q], 0, NULL);
        const char *id = json_string_value(json_object_get(rec, "id"));
        json_t *at = id ? json_object_get(index, id) : NULL;
        if (!at || !json_string_value(json_object_get(rec, "state"))) {
            json_decref(rec);
            continue; /* a record of no job of this run: ignored */
        }
        const size_t k = (size_t)json_integer_value(at);
        json_decref(v->records[k]);
        v->records[k] = rec; /* the last record of a job wins */
    }
out:
    json_decref(index);
    if (rc)
        batch_view_free(v);
    return rc;
}

int batch_view_load(const char *outdir, batch_view *v)
{
    char path[4096];
    char **lines = NULL;
    int64_t count = 0;
    int torn = 0;
    nmp_msg msg = { { 0 } };
    memset(v, 0, sizeof *v);
    snprintf(path, sizeof path, "%s/%s", outdir, BATCH_JOURNAL);
    const nmp_err e = nmp_journal_read(path, &lines, &count, &torn, &msg);
    if (e != NMP_OK)
        return cli_fail_lib(e, path, &msg);
    if (count == 0) {
        nmp_batch_lines_free(lines, count);
        return cli_fail(CLI_EXIT_USAGE, outdir, "not a batch output folder (no %s)",
                        BATCH_JOURNAL);
    }
    const int rc = batch_view_from_lines(path, lines, count, v);
    nmp_batch_lines_free(lines, count);
    if (!rc)
        v->torn = torn;
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

bool batch_dir_is_empty(const char *dir)
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
        if (!o->force && stat(o->outdir, &st) == 0 && !batch_dir_is_empty(o->outdir) &&
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
    if (batch_fingerprint_diff(fp, ofp, jpath, diff, sizeof diff)) {
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
        return batch_run_job(c->argv[3]);
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
    batch_runner r;
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
    rc = batch_run(&r);
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

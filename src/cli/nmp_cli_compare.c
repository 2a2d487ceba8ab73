/* nmp_cli_compare.c: nmperm compare: several solvers on several inputs against the best proven
 * bound of each input: a table, CSV and JSON */
#include "nmp_cli.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help_compare[] =
    "usage: nmperm compare W.npy [W2.npy ...] --solvers NAME,NAME,... [options]\n"
    "\n"
    "Runs every solver on every input (each from the identity) and prints one table: kept\n"
    "score, time, status, and the gap to the best proven bound of the input, the least of the\n"
    "row bound, the LP bound (colgen, with GLPK) and the bounds of the solvers in this run. The\n"
    "gap reads 'optimal' when a solver proved optimality or its score reaches the bound (within\n"
    "1e-9 relative). Before each input's rows a '#' line gives its identity score, row bound, LP\n"
    "bound and best bound. Ctrl-C stops the current solve and skips the rest.\n"
    "\n"
    "options:\n"
    "  --solvers LIST        comma-separated solvers ('nmperm solvers' lists them; default\n"
    "                        identity and auto, else identity and swap)\n"
    "  --param S.KEY=VALUE   parameter KEY of solver S (repeatable), e.g. swap.escapes=100\n"
    "  --time-limit S        seconds per solve (default 60; 0: none)\n"
    "  --bound-time S        seconds for the LP bound of each input (default 60; 0: no LP\n"
    "                        bound); skipped when a solver proved optimality\n"
    "  --seed N              seed of all randomness (default 0)\n"
    "  --threads T           threads (0: the OpenMP default)\n"
    "  --device D            cpu (default), gpu, auto or ref: where the solvers with a device\n"
    "                        search (osg, auto, colgen, bnp; see 'nmperm solvers') and the LP\n"
    "                        bound's pricing run; the others run on the CPU\n"
    "  --nm N:M              sparsity pattern, keep N of every M columns (default 2:4)\n"
    "  --objective OBJ       abs (|w|, default) or sq (w^2)\n"
    "  --csv FILE            also write the results as CSV (atomically)\n"
    "  --json FILE           also write the results as JSON (atomically)\n"
    "  --quiet               no table, and no progress line unless --progress\n"
    "  --progress            progress lines on stderr even when it is not a terminal (on a\n"
    "                        terminal they are shown unless --quiet)\n"
    "  -h, --help            this text\n"
    "      --version         print the version\n";


/* -------------------------------------------------------------- compare */

/* One solve of compare. */
typedef struct cmp_run {
    nmp_result res;
    bool done;       /* res is meaningful */
    bool refused;    /* the solver refused the input (reason in note) */
    bool optimal;    /* proven optimal, or reaches the best bound */
    double gap_pct;  /* 100 (best bound - kept) / kept */
    char note[sizeof(nmp_msg) + 16];
} cmp_run;

/* One input of compare: its fixed scores, LP bound, best bound and one run per solver. */
typedef struct cmp_input {
    const char *path;
    char name[64];   /* file name without folder and .npy, for the table */
    int64_t rows, cols;
    double total, identity, row_bound;
    cli_lp_bound lp;
    bool lp_skipped; /* not computed: a solver proved optimality, or --bound-time 0 */
    bool lp_from_run; /* lp is the result of the colgen solver in the list */
    double best_bound;
    const char *best_source; /* "row", "lp" or a solver name */
    cmp_run *runs;
    bool done;       /* every run was attempted */
} cmp_input;

typedef struct compare_opts {
    cli_problem_opts po;
    const char **inputs;
    int ninputs;
    char *solver_text;   /* the --solvers values joined by commas (owned) */
    const char **solvers;
    int nsolvers;
    const char **param_text; /* --param values, "solver.key=value" */
    int nparams;
    nmp_params *par;     /* one per solver */
    double time_limit, bound_time;
    uint64_t seed;
    int threads;
    nmp_device device;
    const char *csv_path, *json_path;
    bool quiet, progress;
} compare_opts;

static void compare_opts_free(compare_opts *o)
{
    nmp_free(o->inputs);
    nmp_free(o->solver_text);
    nmp_free(o->solvers);
    nmp_free(o->param_text);
    nmp_free(o->par);
}

/* Appends p to a growing array of pointers (count entries); false when out of memory. */
static bool push_ptr(const char ***arr, int *count, const char *p)
{
    const char **grown = nmp_realloc(*arr, (size_t)(*count + 1) * sizeof *grown);
    if (!grown)
        return false;
    grown[(*count)++] = p;
    *arr = grown;
    return true;
}

/* Appends ",text" to the solver list text. */
static bool add_solver_text(compare_opts *o, const char *text)
{
    const size_t old = o->solver_text ? strlen(o->solver_text) : 0, len = strlen(text);
    char *grown = nmp_realloc(o->solver_text, old + len + 2);
    if (!grown)
        return false;
    if (old)
        grown[old] = ',';
    memcpy(grown + (old ? old + 1 : 0), text, len + 1);
    o->solver_text = grown;
    return true;
}

/* Splits the solver list, checks every name against the registry and sets up the parameters:
 * all before any solving, so a typo costs nothing. Usage errors mark c bad. */
static void compare_setup(cli_args *c, compare_opts *o)
{
    if (!o->solver_text) {
        const char *def = nmp_solver_find("auto") ? "identity,auto" : "identity,swap";
        if (!add_solver_text(o, def)) {
            cli_usage(c, "out of memory");
            return;
        }
    }
    cli_solver_list(c, o->solver_text, &o->solvers, &o->nsolvers, &o->par);
    if (c->bad)
        return;
    for (int s = 0; s < o->nsolvers; s++) {
        o->par[s].seed = o->seed;
        o->par[s].threads = o->threads;
        o->par[s].time_limit = o->time_limit;
        if (nmp_solver_find(o->solvers[s])->device) /* the others run on the CPU */
            o->par[s].device = o->device;
    }
    cli_solver_params(c, o->solvers, o->nsolvers, o->param_text, o->nparams, o->par);
}

static void parse_compare(cli_args *c, compare_opts *o)
{
    const char *v = NULL;
    for (c->k = 2; c->k < c->argc && !c->bad; c->k++) {
        const char *a = c->argv[c->k];
        if (cli_is_flag(c, "--quiet")) {
            o->quiet = true;
        } else if (cli_is_flag(c, "--progress")) {
            o->progress = true;
        } else if (cli_take(c, "--solvers", NULL, &v)) {
            if (v && !add_solver_text(o, v))
                cli_usage(c, "out of memory");
        } else if (cli_take(c, "--param", NULL, &v)) {
            if (v && !push_ptr(&o->param_text, &o->nparams, v))
                cli_usage(c, "out of memory");
        } else if (cli_take(c, "--time-limit", NULL, &v)) {
            cli_parse_seconds(c, "--time-limit", v, &o->time_limit);
        } else if (cli_take(c, "--bound-time", NULL, &v)) {
            cli_parse_seconds(c, "--bound-time", v, &o->bound_time);
        } else if (cli_take(c, "--seed", NULL, &v)) {
            cli_parse_u64(c, "--seed", v, UINT64_MAX, &o->seed);
        } else if (cli_take(c, "--threads", NULL, &v)) {
            int64_t t = 0;
            if (cli_parse_i64(c, "--threads", v, 0, 4096, &t))
                o->threads = (int)t;
        } else if (cli_take_device(c, &o->device)) {
        } else if (cli_take(c, "--csv", NULL, &v)) {
            o->csv_path = v;
        } else if (cli_take(c, "--json", NULL, &v)) {
            o->json_path = v;
        } else if (cli_take_problem_opt(c, &o->po)) {
            if (o->po.importance_path || o->po.saliency_path)
                cli_usage(c, "--importance and --saliency are not supported by compare "
                             "(they belong to one input)");
        } else if (a[0] == '-' && a[1]) {
            cli_usage(c, "unknown option '%s'", a);
        } else if (!push_ptr(&o->inputs, &o->ninputs, a)) {
            cli_usage(c, "out of memory");
        }
    }
    if (c->bad)
        return;
    if (o->po.objective == NMP_OBJ_IMPORTANCE || o->po.objective == NMP_OBJ_SALIENCY) {
        cli_usage(c, "--objective %s is not supported by compare (abs or sq)",
                  nmp_objective_name(o->po.objective));
        return;
    }
    if (o->ninputs == 0) {
        cli_usage(c, "missing the input matrix W.npy");
        return;
    }
    compare_setup(c, o);
}

/* Everything after the last '/' and without ".npy". */
static void instance_name(const char *path, char *out, size_t len)
{
    const char *base = strrchr(path, '/');
    base = base && base[1] ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".npy") == 0)
        n -= 4;
    snprintf(out, len, "%.*s", (int)n, base);
}

/* Runs every solver on one loaded input, then the LP bound when no solver proved optimality,
 * then fills in the best bound and each run's gap. 0, or the exit code of an error that ends
 * compare (out of memory); a solver's own failure is recorded in its run and returned in
 * *solver_rc. */
static int compare_input(const compare_opts *o, const nmp_problem *pb, cmp_input *in, int index,
                         int *solver_rc)
{
    const int64_t cols = nmp_problem_cols(pb);
    int32_t *perm = nmp_malloc((size_t)cols * sizeof *perm);
    if (!perm)
        return cli_fail_lib(NMP_ERR_NOMEM, in->path, NULL);
    in->rows = nmp_problem_rows(pb);
    in->cols = cols;
    in->total = nmp_score_total(pb);
    in->identity = nmp_score_identity(pb);
    in->row_bound = nmp_score_row_bound(pb);
    in->best_bound = in->row_bound;
    in->best_source = "row";
    cli_progress_line pl;
    cli_progress_init(&pl, o->quiet, o->progress);
    bool proven = false;
    int rc = 0;
    for (int s = 0; s < o->nsolvers && !cli_interrupted; s++) {
        cmp_run *r = &in->runs[s];
        nmp_params par = o->par[s];
        nmp_msg msg = { { 0 } };
        par.progress = cli_progress_report;
        par.progress_user = &pl;
        snprintf(pl.label, sizeof pl.label, "[%d/%d] %s %s", index + 1, o->ninputs, in->name,
                 o->solvers[s]);
        const nmp_err e = nmp_solve(pb, o->solvers[s], &par, perm, 1, &r->res, &msg);
        cli_progress_clear(&pl);
        if (e == NMP_OK) {
            r->done = true;
            proven = proven || r->res.status == NMP_STATUS_OPTIMAL;
            if (strcmp(o->solvers[s], "colgen") == 0 && (r->res.status == NMP_STATUS_FEASIBLE ||
                                                         r->res.status == NMP_STATUS_OPTIMAL)) {
                in->lp.ran = in->lp.complete = true; /* its bound is the LP value */
                in->lp.res = r->res;
                in->lp_from_run = true;
            }
            if (r->res.bound < in->best_bound) {
                in->best_bound = r->res.bound;
                in->best_source = o->solvers[s];
            }
        } else {
            const char *why = msg.text[0] ? msg.text : nmp_err_str(e);
            const size_t len = strlen(o->solvers[s]);
            const bool named = strncmp(why, o->solvers[s], len) == 0 && why[len] == ':';
            snprintf(r->note, sizeof r->note, "%s", why);
            r->refused = e == NMP_ERR_ARG || e == NMP_ERR_UNSUPPORTED;
            cli_fail(0, in->path, "%s%s%s", named ? "" : o->solvers[s], named ? "" : ": ", why);
            if (!r->refused && !*solver_rc)
                *solver_rc = cli_exit_code(e);
        }
    }
    in->lp_skipped = !in->lp.ran && (proven || o->bound_time <= 0 || cli_interrupted);
    if (!in->lp.ran && !in->lp_skipped) {
        snprintf(pl.label, sizeof pl.label, "[%d/%d] %s lp bound", index + 1, o->ninputs,
                 in->name);
        rc = cli_lp_compute(pb, in->path, o->bound_time, o->threads, o->device, &pl, &in->lp);
        if (rc == 0 && in->lp.ran && in->lp.res.bound < in->best_bound) {
            in->best_bound = in->lp.res.bound;
            in->best_source = "lp";
        }
    }
    in->done = !cli_interrupted;
    for (int s = 0; s < o->nsolvers; s++) {
        cmp_run *r = &in->runs[s];
        if (!r->done)
            continue;
        const double kept = r->res.score, bb = in->best_bound;
        r->optimal = r->res.status == NMP_STATUS_OPTIMAL || kept >= bb - 1e-9 * fabs(bb);
        r->gap_pct = kept > 0 ? 100.0 * (bb - kept) / kept : 0.0;
    }
    nmp_free(perm);
    return rc;
}

/* Status words without spaces, so that awk sees one field ("time limit" -> "time_limit"). */
static void status_field(nmp_status st, char *out, size_t len)
{
    snprintf(out, len, "%s", nmp_status_str(st));
    for (char *p = out; *p; p++)
        if (*p == ' ')
            *p = '_';
}

#define TABLE_FMT "%-18s %-10s %5s %5s %10s %12s %9s %10s  %s\n"

static void table_header(void)
{
    printf(TABLE_FMT, "# instance", "solver", "rows", "cols", "seconds", "kept", "vs_ident", "gap",
           "status");
}

/* The '#' line of one input, then one row per solver. */
static void table_input(const compare_opts *o, const cmp_input *in, const nmp_pattern nm)
{
    printf("# %s: %lld x %lld %d:%d, identity %.4f, row bound %.4f, lp bound ", in->name,
           (long long)in->rows, (long long)in->cols, nm.n, nm.m, in->identity, in->row_bound);
    if (in->lp.ran)
        printf("%.4f (%s, %.3f s, %lld rounds)", in->lp.res.bound,
               in->lp_from_run       ? "solved by the colgen run"
               : in->lp.complete     ? "solved"
                                     : "stopped: Lagrangian",
               in->lp.res.seconds, (long long)in->lp.res.iterations);
    else if (in->lp_skipped)
        printf("- (not computed)");
    else
        printf("- (%s)", in->lp.note);
    printf(", best bound %.4f (%s)\n", in->best_bound, in->best_source);
    for (int s = 0; s < o->nsolvers; s++) {
        const cmp_run *r = &in->runs[s];
        char rows[24], cols[24], secs[32], kept[32], vs[32], gap[32], status[32];
        snprintf(rows, sizeof rows, "%lld", (long long)in->rows);
        snprintf(cols, sizeof cols, "%lld", (long long)in->cols);
        if (!r->done) {
            printf(TABLE_FMT, in->name, o->solvers[s], rows, cols, "-", "-", "-", "-",
                   r->refused ? "refused" : r->note[0] ? "error" : "not_run");
            continue;
        }
        snprintf(secs, sizeof secs, "%.3f", r->res.seconds);
        snprintf(kept, sizeof kept, "%.3f", r->res.score);
        snprintf(vs, sizeof vs, "%+.2f%%", cli_gain_pct(in->identity, r->res.score));
        if (r->optimal)
            snprintf(gap, sizeof gap, "optimal");
        else
            snprintf(gap, sizeof gap, "%.4f%%", r->gap_pct);
        status_field(r->res.status, status, sizeof status);
        printf(TABLE_FMT, in->name, o->solvers[s], rows, cols, secs, kept, vs, gap, status);
    }
}

/* ------------------------------------------------------ CSV, JSON files */

/* A CSV field: quoted (quotes doubled) when it holds a comma, quote or line break. */
static void csv_text(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_num(FILE *f, bool have, double x)
{
    if (have && isfinite(x))
        fprintf(f, "%.10g", x);
}

/* Header, then one row per (input, solver) that was attempted. */
static int write_csv(const compare_opts *o, const cmp_input *ins, int count, nmp_pattern nm)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return cli_fail_lib(NMP_ERR_NOMEM, o->csv_path, NULL);
    fputs("file,solver,rows,cols,nm,objective,identity,row_bound,lp_bound,lp_status,best_bound,"
          "best_bound_source,kept,gain_pct,seconds,status,solver_bound,gap_pct,optimal,"
          "iterations,nodes,note\n", f);
    for (int k = 0; k < count; k++) {
        const cmp_input *in = &ins[k];
        for (int s = 0; s < o->nsolvers; s++) {
            const cmp_run *r = &in->runs[s];
            const bool d = r->done;
            csv_text(f, in->path);
            fprintf(f, ",%s,%lld,%lld,%d:%d,%s,", o->solvers[s], (long long)in->rows,
                    (long long)in->cols, nm.n, nm.m, nmp_objective_name(o->po.objective));
            csv_num(f, true, in->identity);
            fputc(',', f);
            csv_num(f, true, in->row_bound);
            fputc(',', f);
            csv_num(f, in->lp.ran, in->lp.res.bound);
            fprintf(f, ",%s,", in->lp.ran ? nmp_status_str(in->lp.res.status) : "");
            csv_num(f, true, in->best_bound);
            fprintf(f, ",%s,", in->best_source);
            csv_num(f, d, r->res.score);
            fputc(',', f);
            csv_num(f, d, cli_gain_pct(in->identity, r->res.score));
            fputc(',', f);
            csv_num(f, d, r->res.seconds);
            fprintf(f, ",%s,", d ? nmp_status_str(r->res.status)
                                 : r->refused ? "refused" : r->note[0] ? "error" : "not run");
            csv_num(f, d, r->res.bound);
            fputc(',', f);
            csv_num(f, d, r->gap_pct);
            fprintf(f, ",%s,", d ? (r->optimal ? "true" : "false") : "");
            if (d)
                fprintf(f, "%lld,%lld", (long long)r->res.iterations, (long long)r->res.nodes);
            else
                fputc(',', f);
            fputc(',', f);
            csv_text(f, r->note);
            fputc('\n', f);
        }
    }
    const bool failed = ferror(f) != 0;
    fclose(f);
    int rc = failed ? cli_fail_lib(NMP_ERR_NOMEM, o->csv_path, NULL)
                        : cli_write_atomic(o->csv_path, buf, len);
    free(buf);
    return rc;
}

static int write_json(const compare_opts *o, const cmp_input *ins, int count, nmp_pattern nm)
{
    json_t *root = json_object(), *arr = json_array(), *names = json_array();
    char nmtext[32];
    snprintf(nmtext, sizeof nmtext, "%d:%d", nm.n, nm.m);
    cli_jset(root, "nmperm", json_string(nmp_version()));
    for (int s = 0; s < o->nsolvers; s++)
        json_array_append_new(names, json_string(o->solvers[s]));
    cli_jset(root, "solvers", names);
    cli_jset(root, "nm", json_string(nmtext));
    cli_jset(root, "objective", json_string(nmp_objective_name(o->po.objective)));
    cli_jset(root, "time_limit", cli_jnum(o->time_limit));
    cli_jset(root, "bound_time", cli_jnum(o->bound_time));
    cli_jset(root, "seed", json_integer((json_int_t)o->seed));
    cli_jset(root, "threads", json_integer(o->threads));
    const bool complete = count == o->ninputs && (count == 0 || ins[count - 1].done);
    cli_jset(root, "complete", json_boolean(complete));
    for (int k = 0; k < count; k++) {
        const cmp_input *in = &ins[k];
        json_t *j = json_object(), *runs = json_array();
        cli_jset(j, "file", json_string(in->path));
        cli_jset(j, "instance", json_string(in->name));
        cli_jset(j, "rows", json_integer(in->rows));
        cli_jset(j, "cols", json_integer(in->cols));
        cli_jset(j, "total", cli_jnum(in->total));
        cli_jset(j, "identity", cli_jnum(in->identity));
        cli_jset(j, "row_bound", cli_jnum(in->row_bound));
        cli_json_lp(j, &in->lp);
        if (in->lp_skipped)
            cli_jset(j, "lp_note", json_string("not computed"));
        cli_jset(j, "best_bound", cli_jnum(in->best_bound));
        cli_jset(j, "best_bound_source", json_string(in->best_source));
        for (int s = 0; s < o->nsolvers; s++) {
            const cmp_run *r = &in->runs[s];
            json_t *x = json_object();
            cli_jset(x, "solver", json_string(o->solvers[s]));
            if (r->done) {
                cli_jset(x, "kept", cli_jnum(r->res.score));
                cli_jset(x, "gain_pct", cli_jnum(cli_gain_pct(in->identity, r->res.score)));
                cli_jset(x, "seconds", cli_jnum(r->res.seconds));
                cli_jset(x, "status", json_string(nmp_status_str(r->res.status)));
                cli_jset(x, "bound", cli_jnum(r->res.bound));
                cli_jset(x, "gap_pct", cli_jnum(r->gap_pct));
                cli_jset(x, "optimal", json_boolean(r->optimal));
                cli_jset(x, "iterations", json_integer(r->res.iterations));
                cli_jset(x, "nodes", json_integer(r->res.nodes));
            } else {
                cli_jset(x, "status", json_string(r->refused ? "refused"
                                                  : r->note[0] ? "error" : "not run"));
                cli_jset(x, "note", r->note[0] ? json_string(r->note) : NULL);
            }
            json_array_append_new(runs, x);
        }
        cli_jset(j, "results", runs);
        json_array_append_new(arr, j);
    }
    cli_jset(root, "inputs", arr);
    char *text = json_dumps(root, JSON_REAL_PRECISION(12) | JSON_PRESERVE_ORDER | JSON_INDENT(2));
    json_decref(root);
    if (!text)
        return cli_fail_lib(NMP_ERR_NOMEM, o->json_path, NULL);
    const size_t len = strlen(text);
    char *line = nmp_malloc(len + 2);
    int rc = 0;
    if (!line) {
        rc = cli_fail_lib(NMP_ERR_NOMEM, o->json_path, NULL);
    } else {
        memcpy(line, text, len);
        line[len] = '\n';
        rc = cli_write_atomic(o->json_path, line, len + 1);
    }
    nmp_free(line);
    free(text);
    return rc;
}

int cli_cmd_compare(cli_args *c)
{
    if (cli_help_or_version(c, help_compare))
        return 0;
    compare_opts o;
    memset(&o, 0, sizeof o);
    o.po.nm = (nmp_pattern){ 2, 4 };
    o.po.objective = NMP_OBJ_ABS;
    o.time_limit = CLI_DEFAULT_SECONDS;
    o.bound_time = CLI_DEFAULT_SECONDS;
    parse_compare(c, &o);
    int rc = c->bad ? CLI_EXIT_USAGE : 0;
    const char *const outputs[] = { o.csv_path, o.json_path };
    if (rc == 0)
        rc = nmp_cli_check_paths(o.inputs, o.ninputs, outputs, 2);
    if (rc == 0 && o.csv_path)
        rc = cli_check_writable(o.csv_path);
    if (rc == 0 && o.json_path)
        rc = cli_check_writable(o.json_path);

    /* every input is read and checked before any solving, then read again when its turn comes,
     * so that only one is in memory at a time */
    for (int k = 0; k < o.ninputs && rc == 0; k++) {
        cli_loaded ld;
        o.po.input = o.inputs[k];
        rc = cli_load_problem(&o.po, &ld);
        cli_loaded_free(&ld);
    }
    cmp_input *ins = NULL;
    cmp_run *runs = NULL;
    if (rc == 0) {
        ins = nmp_calloc((size_t)o.ninputs, sizeof *ins);
        runs = nmp_calloc((size_t)o.ninputs * (size_t)o.nsolvers, sizeof *runs);
        if (!ins || !runs)
            rc = cli_fail_lib(NMP_ERR_NOMEM, "compare", NULL);
    }
    int count = 0, solver_rc = 0;
    if (rc == 0) {
        struct sigaction old;
        cli_interrupted = 0;
        cli_sigint_catch(&old);
        if (!o.quiet)
            table_header();
        for (; count < o.ninputs && rc == 0 && !cli_interrupted; count++) {
            cmp_input *in = &ins[count];
            cli_loaded ld;
            in->path = o.inputs[count];
            in->runs = runs + (size_t)count * (size_t)o.nsolvers;
            instance_name(in->path, in->name, sizeof in->name);
            o.po.input = in->path;
            rc = cli_load_problem(&o.po, &ld);
            if (rc == 0)
                rc = compare_input(&o, ld.pb, in, count, &solver_rc);
            cli_loaded_free(&ld);
            if (rc == 0 && !o.quiet) {
                table_input(&o, in, o.po.nm);
                fflush(stdout);
            }
        }
        sigaction(SIGINT, &old, NULL);
        if (cli_interrupted)
            cli_fail(0, "compare", "interrupted: %d of %d inputs reported", count, o.ninputs);
    }
    if (rc == 0 && o.csv_path)
        rc = write_csv(&o, ins, count, o.po.nm);
    if (rc == 0 && o.json_path)
        rc = write_json(&o, ins, count, o.po.nm);
    nmp_free(runs);
    nmp_free(ins);
    compare_opts_free(&o);
    return rc ? rc : solver_rc;
}

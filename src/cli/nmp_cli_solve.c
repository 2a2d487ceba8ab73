/* nmp_cli_solve.c: nmperm solve: run a solver with a progress line, Ctrl-C and a summary */
#include "nmp_cli.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char help[] =
    "usage: nmperm solve W.npy [--solver NAME] [options]\n"
    "\n"
    "Searches for a permutation of W's columns that maximises the kept score and prints a\n"
    "summary.\n"
    "Ctrl-C stops the search early; the best permutation so far is still reported and written.\n"
    "\n"
    "options:\n"
    "  --solver NAME         solver ('nmperm solvers' lists them; default auto, else swap)\n"
    "  --param KEY=VALUE     a solver parameter (repeatable)\n"
    "  --time-limit S        stop after S seconds (0: none, the default)\n"
    "  --seed N              seed of all randomness (default 0)\n"
    "  --threads T           threads (0: the OpenMP default)\n"
    CLI_DEVICE_HELP
    "  --start P.npy         start from this permutation instead of the identity\n"
    "  -o, --output P.npy    write the permutation (int64, 1-D) here, atomically\n"
    CLI_HELP_PROBLEM
    "  --json                print one JSON object (with the permutation) instead of text\n"
    "  --quiet               no text summary, and no progress line unless --progress\n"
    "  --progress            progress lines on stderr even when it is not a terminal (on a\n"
    "                        terminal they are shown unless --quiet)\n"
    "  -h, --help            this text\n"
    "      --version         print the version\n";

/* --------------------------------------------------------------- solve */

typedef struct solve_opts {
    cli_problem_opts po;
    const char *solver, *start_path, *out_path;
    nmp_params par;
    bool json, quiet, progress;
} solve_opts;

static void parse_solve(cli_args *c, solve_opts *o)
{
    const char *v = NULL;
    nmp_msg msg = { { 0 } };
    for (c->k = 2; c->k < c->argc && !c->bad; c->k++) {
        if (cli_is_flag(c, "--json")) {
            o->json = true;
        } else if (cli_is_flag(c, "--quiet")) {
            o->quiet = true;
        } else if (cli_is_flag(c, "--progress")) {
            o->progress = true;
        } else if (cli_take(c, "--solver", NULL, &v)) {
            o->solver = v;
        } else if (cli_take(c, "--param", NULL, &v)) {
            if (v && nmp_params_parse(&o->par, v, &msg) != NMP_OK)
                cli_usage(c, "--param: %s", msg.text);
        } else if (cli_take(c, "--time-limit", NULL, &v)) {
            cli_parse_seconds(c, "--time-limit", v, &o->par.time_limit);
        } else if (cli_take(c, "--seed", NULL, &v)) {
            cli_parse_u64(c, "--seed", v, UINT64_MAX, &o->par.seed);
        } else if (cli_take(c, "--threads", NULL, &v)) {
            int64_t t = 0;
            if (cli_parse_i64(c, "--threads", v, 0, 4096, &t))
                o->par.threads = (int)t;
        } else if (cli_take_device(c, &o->par.device)) {
        } else if (cli_take(c, "--start", NULL, &v)) {
            o->start_path = v;
        } else if (cli_take(c, "--output", "-o", &v)) {
            o->out_path = v;
        } else if (cli_take_problem_opt(c, &o->po)) {
        } else {
            cli_take_input(c, &o->po.input);
        }
    }
    if (!c->bad)
        cli_check_problem_opts(c, &o->po);
    if (c->bad)
        return;
    if (!o->solver)
        o->solver = nmp_solver_find("auto") ? "auto" : "swap";
    const nmp_solver_ops *ops = nmp_solver_find(o->solver);
    if (!ops)
        cli_usage(c, "unknown solver '%s' (see 'nmperm solvers')", o->solver);
    else if (nmp_params_check(&o->par, ops, &msg) != NMP_OK)
        cli_usage(c, "%s", msg.text);
}

/* The solver's parameters with the values in effect, as JSON or one text line. */
static json_t *json_params(const nmp_solver_ops *ops, const nmp_params *par)
{
    json_t *o = json_object();
    for (const nmp_param_desc *d = ops->params; d && d->name; d++)
        cli_jset(o, d->name, cli_jnum(nmp_param_get(par, ops->params, d->name)));
    return o;
}

static void report_solve(const solve_opts *o, const nmp_problem *pb, const int32_t *perm,
                         const nmp_result *res)
{
    const nmp_solver_ops *ops = nmp_solver_find(o->solver);
    const double row_bound = nmp_score_row_bound(pb);
    const bool has_bound = res->bound < row_bound;
    const double gap = res->score > 0 ? 100.0 * (res->bound - res->score) / res->score : 0.0;
    const int64_t cols = nmp_problem_cols(pb);
    if (o->json) {
        json_t *j = json_object();
        cli_jset(j, "solver", json_string(o->solver));
        cli_json_problem(j, o->po.input, pb);
        cli_jset(j, "start", cli_jnum(res->start_score));
        cli_jset(j, "kept", cli_jnum(res->score));
        cli_jset(j, "gain_pct", cli_jnum(cli_gain_pct(nmp_score_identity(pb), res->score)));
        cli_jset(j, "efficacy_pct", cli_jnum(100.0 * nmp_score_efficacy(pb, res->score)));
        cli_jset(j, "bound", cli_jnum(res->bound));
        cli_jset(j, "gap_pct", cli_jnum(gap));
        cli_jset(j, "status", json_string(nmp_status_str(res->status)));
        cli_jset(j, "seconds", cli_jnum(res->seconds));
        cli_jset(j, "iterations", json_integer(res->iterations));
        cli_jset(j, "nodes", json_integer(res->nodes));
        cli_jset(j, "seed", json_integer((json_int_t)o->par.seed));
        cli_jset(j, "time_limit", cli_jnum(o->par.time_limit));
        cli_jset(j, "threads", json_integer(o->par.threads));
        cli_jset(j, "params", json_params(ops, &o->par));
        cli_jset(j, "output", o->out_path ? json_string(o->out_path) : json_null());
        json_t *p = json_array();
        for (int64_t k = 0; k < cols; k++)
            json_array_append_new(p, json_integer(perm[k]));
        cli_jset(j, "perm", p);
        cli_print_json(j);
        return;
    }
    if (o->quiet)
        return;
    printf("solver      %s", o->solver);
    for (const nmp_param_desc *d = ops->params; d && d->name; d++)
        printf("%s%s=%g", d == ops->params ? "  (" : ", ", d->name,
               nmp_param_get(&o->par, ops->params, d->name));
    printf("%s\n", ops->params && ops->params->name ? ")" : "");
    cli_text_problem(o->po.input, pb);
    printf("identity    %.4f\n", nmp_score_identity(pb));
    if (o->start_path)
        printf("start       %.4f   (%s)\n", res->start_score, o->start_path);
    printf("kept        %.4f   (%+.3f%% over identity)\n", res->score,
           cli_gain_pct(nmp_score_identity(pb), res->score));
    printf("row bound   %.4f\n", row_bound);
    printf("efficacy    %.2f%%\n", 100.0 * nmp_score_efficacy(pb, res->score));
    if (has_bound)
        printf("bound       %.4f   (gap %.4f%%)\n", res->bound, gap);
    printf("time        %.3f s   (%lld iterations", res->seconds, (long long)res->iterations);
    if (res->nodes)
        printf(", %lld nodes", (long long)res->nodes);
    printf(")\n");
    printf("status      %s\n", nmp_status_str(res->status));
    if (o->out_path)
        printf("written     %s\n", o->out_path);
}

int cli_cmd_solve(cli_args *c)
{
    solve_opts o;
    memset(&o, 0, sizeof o);
    o.po.nm = (nmp_pattern){ 2, 4 };
    o.po.objective = NMP_OBJ_ABS;
    nmp_params_init(&o.par);
    if (cli_help_or_version(c, help))
        return 0;
    parse_solve(c, &o);
    if (c->bad)
        return CLI_EXIT_USAGE;
    const char *const inputs[] = { o.po.input, o.po.importance_path, o.po.saliency_path,
                                   o.start_path };
    int rc = nmp_cli_check_paths(inputs, 4, &o.out_path, 1);
    if (rc == 0 && o.out_path)
        rc = cli_check_writable(o.out_path);
    if (rc)
        return rc;

    cli_loaded ld;
    int32_t *perm = NULL;
    nmp_msg msg = { { 0 } };
    nmp_result res;
    memset(&res, 0, sizeof res);
    rc = cli_load_problem(&o.po, &ld);
    const int64_t cols = ld.w.cols;
    if (rc == 0 && o.start_path)
        rc = cli_load_perm(o.start_path, o.po.input, cols, &perm);
    if (rc == 0 && !perm && !(perm = nmp_malloc((size_t)cols * sizeof *perm)))
        rc = cli_fail_lib(NMP_ERR_NOMEM, o.po.input, NULL);
    if (rc == 0) {
        cli_progress_line pl;
        cli_progress_init(&pl, o.quiet, o.progress);
        struct sigaction old;
        cli_sigint_catch(&old);
        o.par.progress = cli_progress_report;
        o.par.progress_user = &pl;
        const nmp_err e = nmp_solve(ld.pb, o.solver, &o.par, perm, !o.start_path, &res, &msg);
        sigaction(SIGINT, &old, NULL);
        cli_progress_clear(&pl);
        if (e != NMP_OK)
            rc = cli_fail_lib(e, o.po.input, &msg);
    }
    if (rc == 0 && o.out_path) {
        const nmp_err e = nmp_npy_write_perm(o.out_path, perm, cols, &msg);
        if (e != NMP_OK)
            rc = cli_fail_lib(e, o.out_path, &msg);
    }
    if (rc == 0)
        report_solve(&o, ld.pb, perm, &res);
    nmp_free(perm);
    cli_loaded_free(&ld);
    return rc;
}

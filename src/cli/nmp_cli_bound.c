/* nmp_cli_bound.c: nmperm bound: the row bound and the LP bound of set partitioning (colgen);
 * the LP bound is shared with compare (nmp_cli_compare.c) */
#include "nmp_cli.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char help_bound[] =
    "usage: nmperm bound W.npy [--time-limit S] [options]\n"
    "\n"
    "Prints the best upper bound on the kept score that can be computed within the time limit:\n"
    "the row bound, and the LP bound of set partitioning by column generation (solver colgen,\n"
    "in builds with GLPK). An LP stopped by the time limit still gives a valid (Lagrangian)\n"
    "bound, weaker than the LP value; the lines say whether the LP was solved, and when the\n"
    "bound is only the row bound or a Lagrangian one (JSON: bound_kind row, lagrangian, lp or\n"
    "optimum).\n"
    "No permutation keeps more than the bound.\n"
    "\n"
    "options:\n"
    "  --time-limit S        stop the LP after S seconds (default 60; 0: none)\n"
    "  --threads T           threads of the LP's pricing (0: the OpenMP default)\n"
    "  --device D            where the pricing runs: cpu (default), gpu (every column's best\n"
    "                        subset on the GPU; rounds that find nothing are priced exactly on\n"
    "                        the CPU, so the LP value stays a certificate), auto (gpu when\n"
    "                        present and >= 96 columns), ref (the GPU path on the CPU reference)\n"
    CLI_HELP_PROBLEM
    "  --json                print one JSON object instead of text\n"
    "  --progress            progress lines on stderr even when it is not a terminal (on a\n"
    "                        terminal they are shown anyway)\n"
    "  -h, --help            this text\n"
    "      --version         print the version\n";

/* ------------------------------------------------------------- LP bound */

/* bound = min over pricing rounds of the Lagrangian value (nmp_colgen.c), the LP value once no
 * column prices out. colgen runs without its heuristic and without the restricted master's
 * binary program (heur_time = mip_time = 0): all of the time goes to the LP, and the status says
 * whether it was solved (OPTIMAL or FEASIBLE) or stopped (a valid, weaker bound). A refusal
 * (NMP_ERR_ARG, NMP_ERR_UNSUPPORTED) is a note, not an error. 0, or the exit code after a line. */
int cli_lp_compute(const nmp_problem *pb, const char *input, double seconds, int threads,
                   nmp_device device, cli_progress_line *pl, cli_lp_bound *lp)
{
    memset(lp, 0, sizeof *lp);
    if (!nmp_solver_find("colgen")) {
        snprintf(lp->note, sizeof lp->note, "needs GLPK: this build has no colgen solver");
        return 0;
    }
    nmp_params par;
    nmp_params_init(&par);
    par.time_limit = seconds;
    par.threads = threads;
    par.device = device;
    par.progress = cli_progress_report;
    par.progress_user = pl;
    nmp_params_set(&par, "heur_time", 0);
    nmp_params_set(&par, "mip_time", 0);
    nmp_msg msg = { { 0 } };
    int32_t *perm = nmp_malloc((size_t)nmp_problem_cols(pb) * sizeof *perm);
    if (!perm)
        return cli_fail_lib(NMP_ERR_NOMEM, input, NULL);
    const nmp_err e = nmp_solve(pb, "colgen", &par, perm, 1, &lp->res, &msg);
    nmp_free(perm);
    cli_progress_clear(pl);
    if ((e == NMP_ERR_ARG || e == NMP_ERR_UNSUPPORTED) && device == NMP_DEVICE_CPU) {
        snprintf(lp->note, sizeof lp->note, "colgen: %s",
                 msg.text[0] ? msg.text : nmp_err_str(e));
        return 0;
    }
    if (e != NMP_OK)
        return cli_fail_lib(e, input, &msg);
    lp->ran = true;
    lp->complete = lp->res.status == NMP_STATUS_OPTIMAL || lp->res.status == NMP_STATUS_FEASIBLE;
    return 0;
}

/* What the bound is: "row" (the row bound only: no LP, or an LP that got nowhere below it),
 * "lagrangian" (an LP stopped early: a valid, weaker bound), "lp" (the LP value) or "optimum"
 * (an integral LP). */
static const char *bound_kind(const cli_lp_bound *lp, double row_bound)
{
    if (!lp->ran || !(lp->res.bound < row_bound))
        return "row";
    if (lp->res.status == NMP_STATUS_OPTIMAL)
        return "optimum";
    return lp->complete ? "lp" : "lagrangian";
}

/* How a computed LP (lp->ran) ended, in words. */
static const char *lp_words(const cli_lp_bound *lp, double row_bound)
{
    if (lp->res.status == NMP_STATUS_OPTIMAL)
        return "LP solved, integral: the bound is the optimum";
    if (lp->complete)
        return "LP solved";
    if (!(lp->res.bound < row_bound) && lp->res.iterations == 0)
        return "stopped before its first pricing round: no LP progress, the row bound only";
    if (!(lp->res.bound < row_bound))
        return "stopped: no Lagrangian bound below the row bound yet";
    return lp->res.status == NMP_STATUS_INTERRUPTED
               ? "interrupted: LP not solved, a Lagrangian bound"
               : "time limit: LP not solved, a Lagrangian bound";
}

void cli_json_lp(json_t *o, const cli_lp_bound *lp)
{
    cli_jset(o, "lp_bound", lp->ran ? cli_jnum(lp->res.bound) : NULL);
    cli_jset(o, "lp_status", lp->ran ? json_string(nmp_status_str(lp->res.status)) : NULL);
    cli_jset(o, "lp_complete", json_boolean(lp->complete));
    cli_jset(o, "lp_seconds", lp->ran ? cli_jnum(lp->res.seconds) : NULL);
    cli_jset(o, "lp_rounds", lp->ran ? json_integer(lp->res.iterations) : NULL);
    cli_jset(o, "lp_note", lp->ran ? NULL : json_string(lp->note));
}

/* ---------------------------------------------------------------- bound */

int cli_cmd_bound(cli_args *c)
{
    if (cli_help_or_version(c, help_bound))
        return 0;
    cli_problem_opts po = { NULL, NULL, NULL, { 2, 4 }, NMP_OBJ_ABS, false };
    double seconds = CLI_DEFAULT_SECONDS;
    int threads = 0;
    nmp_device device = NMP_DEVICE_CPU;
    bool json = false, progress = false;
    const char *v = NULL;
    for (c->k = 2; c->k < c->argc && !c->bad; c->k++) {
        if (cli_is_flag(c, "--json")) {
            json = true;
        } else if (cli_is_flag(c, "--progress")) {
            progress = true;
        } else if (cli_take(c, "--time-limit", NULL, &v)) {
            cli_parse_seconds(c, "--time-limit", v, &seconds);
        } else if (cli_take(c, "--threads", NULL, &v)) {
            int64_t t = 0;
            if (cli_parse_i64(c, "--threads", v, 0, 4096, &t))
                threads = (int)t;
        } else if (cli_take_device(c, &device)) {
        } else if (cli_take_problem_opt(c, &po)) {
        } else {
            cli_take_input(c, &po.input);
        }
    }
    if (!c->bad)
        cli_check_problem_opts(c, &po);
    if (c->bad)
        return CLI_EXIT_USAGE;

    cli_loaded ld;
    cli_lp_bound lp;
    memset(&lp, 0, sizeof lp);
    int rc = cli_load_problem(&po, &ld);
    if (rc == 0) {
        cli_progress_line pl;
        cli_progress_init(&pl, false, progress);
        snprintf(pl.label, sizeof pl.label, "lp bound");
        struct sigaction old;
        cli_sigint_catch(&old);
        rc = cli_lp_compute(ld.pb, po.input, seconds, threads, device, &pl, &lp);
        sigaction(SIGINT, &old, NULL);
    }
    if (rc == 0) {
        const nmp_problem *pb = ld.pb;
        const double row_bound = nmp_score_row_bound(pb), identity = nmp_score_identity(pb);
        const bool lp_better = lp.ran && lp.res.bound < row_bound;
        const double bound = lp_better ? lp.res.bound : row_bound;
        if (json) {
            json_t *o = json_object();
            cli_json_problem(o, po.input, pb);
            cli_json_lp(o, &lp);
            cli_jset(o, "bound", cli_jnum(bound));
            cli_jset(o, "bound_source", json_string(lp_better ? "lp" : "row"));
            cli_jset(o, "bound_kind", json_string(bound_kind(&lp, row_bound)));
            cli_jset(o, "max_gain_pct", cli_jnum(cli_gain_pct(identity, bound)));
            cli_jset(o, "time_limit", cli_jnum(seconds));
            cli_jset(o, "threads", json_integer(threads));
            rc = cli_print_json(o);
        } else {
            cli_text_problem(po.input, pb);
            printf("identity    %.4f\n", identity);
            printf("row bound   %.4f   (unstructured pruning, same density)\n", row_bound);
            if (lp.ran)
                printf("lp bound    %.4f   (colgen: %s; %.3f s, %lld pricing rounds)\n",
                       lp.res.bound, lp_words(&lp, row_bound), lp.res.seconds,
                       (long long)lp.res.iterations);
            else
                printf("lp bound    -           (%s)\n", lp.note);
            const char *kind = bound_kind(&lp, row_bound);
            const char *words = strcmp(kind, "optimum") == 0 ? "the LP bound, the optimum"
                                : strcmp(kind, "lp") == 0    ? "the LP bound"
                                : strcmp(kind, "lagrangian") == 0
                                    ? "a Lagrangian bound: the LP was not solved"
                                : lp.ran ? "the row bound only: the LP got no bound below it"
                                         : "the row bound only";
            printf("bound       %.4f   (%s; at most %+.3f%% over identity)\n", bound, words,
                   cli_gain_pct(identity, bound));
        }
    }
    cli_loaded_free(&ld);
    return rc;
}

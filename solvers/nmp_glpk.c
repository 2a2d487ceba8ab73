/* nmp_glpk.c: the GLPK glue: guarded calls, reasons, set-partitioning model pieces, paced solves
 *
 * GLPK reports an internal error (its memory limit, a bad argument) by printing a message and
 * calling abort(), unless an error hook is set, which must not return: nmp_glpk_run sets one that
 * longjmps back to it, where glp_free_env() releases all GLPK state of the thread, as GLPK's
 * manual prescribes (glp_error_hook). Library code never aborts, so every GLPK solver runs its
 * solve inside nmp_glpk_run. The simplex method and branch-and-cut run in slices or with a
 * callback so that the clock (time limit, progress, interrupt) is served while GLPK works. */
#include "nmp_glpk.h"

#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct guard {
    jmp_buf fail;
} guard;

static _Thread_local int64_t fail_countdown = -1;

void nmp_glpk_fail_at(int64_t k)
{
    fail_countdown = k;
}

/* Swallows GLPK's terminal output: glp_term_out(GLP_OFF) alone does not silence the message
 * GLPK prints before calling the error hook. */
static int quiet(void *info, const char *text)
{
    (void)info;
    (void)text;
    return 1;
}

static void on_error(void *info)
{
    guard *g = info;
    longjmp(g->fail, 1);
}

nmp_err nmp_glpk_run(nmp_err (*run)(void *state, int32_t *perm, nmp_result *res),
                     void (*lost)(void *state), void *state, int32_t *perm, nmp_result *res,
                     int verbose, const char *who, nmp_msg *msg)
{
    nmp_err e;
    guard g;
    const int term = glp_term_out(verbose ? GLP_ON : GLP_OFF);
    if (!verbose)
        glp_term_hook(quiet, NULL);
    glp_error_hook(on_error, &g);
    if (setjmp(g.fail) == 0) {
        e = run(state, perm, res);
    } else {
        glp_free_env(); /* GLPK's state after an internal error: release all of it */
        lost(state);
        e = nmp_fail(msg, NMP_ERR_LP, "%s: GLPK stopped on an internal error (out of memory?)",
                     who);
    }
    glp_error_hook(NULL, NULL);
    if (!verbose)
        glp_term_hook(NULL, NULL);
    glp_term_out(term);
    return e;
}

static const char *reason(int ret)
{
    switch (ret) {
    case GLP_EBADB: return "invalid initial basis";
    case GLP_ESING: return "singular basis matrix";
    case GLP_ECOND: return "ill-conditioned basis matrix";
    case GLP_EBOUND: return "inconsistent bounds";
    case GLP_EFAIL: return "solver failure";
    case GLP_EOBJLL: return "objective lower limit reached";
    case GLP_EOBJUL: return "objective upper limit reached";
    case GLP_EITLIM: return "iteration limit";
    case GLP_ETMLIM: return "time limit";
    case GLP_ENOPFS: return "no primal feasible solution";
    case GLP_ENODFS: return "no dual feasible solution";
    case GLP_EROOT: return "root LP optimum not provided";
    case GLP_ESTOP: return "stopped by the application";
    case GLP_EMIPGAP: return "MIP gap tolerance reached";
    case GLP_ENOFEAS: return "no primal/dual feasible solution";
    case GLP_ENOCVG: return "no convergence";
    case GLP_EINSTAB: return "numerical instability";
    case GLP_EDATA: return "invalid data";
    case GLP_ERANGE: return "result out of range";
    default: return "unknown failure";
    }
}

nmp_err nmp_glpk_fail(nmp_msg *msg, const char *who, const char *what, int ret)
{
    return nmp_fail(msg, NMP_ERR_LP, "%s: GLPK %s failed: %s (code %d)", who, what, reason(ret),
                    ret);
}

/* ------------------------------------------------------------------ model */

void nmp_glpk_partition_rows(glp_prob *lp, int64_t cols)
{
    const int first = glp_add_rows(lp, (int)cols);
    for (int64_t i = 0; i < cols; i++)
        glp_set_row_bnds(lp, first + (int)i, GLP_FX, 1.0, 1.0);
}

void nmp_glpk_subset_col(glp_prob *lp, int j, const int32_t *c, int m, double value, bool fixed)
{
    int ind[NMP_MAX_M + 1];
    double one[NMP_MAX_M + 1];
    for (int t = 0; t < m; t++) {
        ind[t + 1] = c[t] + 1;
        one[t + 1] = 1.0;
    }
    glp_set_mat_col(lp, j, m, ind, one);
    glp_set_obj_coef(lp, j, value);
    glp_set_col_bnds(lp, j, fixed ? GLP_FX : GLP_LO, 0.0, 0.0);
}

/* ------------------------------------------------------------------ solves */

nmp_err nmp_glpk_simplex(glp_prob *lp, glp_smcp *parm, int slice, nmp_clock *clk,
                         const nmp_report *rep, const char *who, bool *solved, nmp_msg *msg)
{
    bool rebased = false;
    *solved = false;
    for (;;) {
        /* Slices of `slice` iterations, never of time: a simplex stopped and restarted takes
         * another path (its pricing weights start over), and on a degenerate master another
         * optimal basis gives other duals, other columns, another search. Slices by time made
         * bnp's answer depend on the machine's load (kill/resume and shard tests saw it). Only
         * a time limit stops GLPK by time. */
        parm->it_lim = slice;
        parm->tm_lim = INT_MAX;
        if (clk && clk->limit > 0)
            parm->tm_lim = (int)NMP_MIN(NMP_MAX(1.0, (clk->limit - nmp_clock_elapsed(clk)) * 1e3),
                                        (double)INT_MAX);
        if (fail_countdown >= 0 && fail_countdown-- == 0)
            (void)glp_get_row_dual(lp, 0); /* row 0 is out of range: GLPK's error path */
        const int ret = glp_simplex(lp, parm);
        if (ret == GLP_ETMLIM || ret == GLP_EITLIM) {
            if (clk && nmp_clock_tick(clk, rep ? rep->iteration : 0, rep ? rep->best : 0,
                                      rep ? rep->bound : 0, "lp", false))
                return NMP_OK;
            continue;
        }
        if ((ret == GLP_EBADB || ret == GLP_ESING || ret == GLP_ECOND) && !rebased) {
            glp_adv_basis(lp, 0); /* restart from a fresh basis once */
            parm->meth = GLP_PRIMAL;
            rebased = true;
            continue;
        }
        if (ret != 0)
            return nmp_glpk_fail(msg, who, "simplex", ret);
        if (glp_get_status(lp) != GLP_OPT)
            return nmp_fail(msg, NMP_ERR_LP, "%s: GLPK simplex ended with LP status %d, not "
                            "optimal", who, glp_get_status(lp));
        *solved = true;
        return NMP_OK;
    }
}

/* GLPK's branch-and-cut callback: the start solution at the first heuristic call, the tree's
 * size and bound, progress, and the stop. */
static void bc_callback(glp_tree *tree, void *info)
{
    nmp_glpk_bc *bc = info;
    if (glp_ios_reason(tree) == GLP_IHEUR && bc->start) {
        glp_ios_heur_sol(tree, bc->start); /* rejected when GLPK already holds a better one */
        bc->start = NULL;
    }
    int active, alive, total;
    glp_ios_tree_size(tree, &active, &alive, &total);
    bc->nodes = total;
    const int p = glp_ios_best_node(tree);
    if (p)
        bc->tree_bound = glp_ios_node_bound(tree, p);
    glp_prob *P = glp_ios_get_prob(tree);
    const double best = glp_mip_status(P) == GLP_FEAS ? NMP_MAX(bc->rep.best, glp_mip_obj_val(P))
                                                      : bc->rep.best;
    const double bound = NMP_MAX(best, NMP_MIN(bc->rep.bound, NMP_MAX(bc->tree_bound,
                                                                      bc->outside)));
    if ((bc->clk && nmp_clock_tick(bc->clk, bc->rep.iteration + bc->nodes, best, bound, "mip",
                                   false)) ||
        nmp_now() >= bc->deadline) {
        bc->stopped = true;
        glp_ios_terminate(tree);
    }
}

int nmp_glpk_intopt(glp_prob *lp, glp_iocp *parm, nmp_glpk_bc *bc)
{
    parm->cb_func = bc_callback;
    parm->cb_info = bc;
    bc->nodes = 0;
    bc->stopped = false;
    return glp_intopt(lp, parm);
}

/* ------------------------------------------- the frame of the exact MIP solvers (sp, blp) */

#define EXACT_SLICE 2000 /* simplex iterations between clock checks */

nmp_err nmp_glpk_exact_init(nmp_glpk_exact *x, const nmp_problem *pb, const nmp_params *par,
                            const char *who, const nmp_param_desc *params, nmp_msg *msg)
{
    memset(x, 0, sizeof *x);
    if (par)
        x->par = *par;
    else
        nmp_params_init(&x->par);
    x->pb = pb;
    x->msg = msg;
    x->who = who;
    x->params = params;
    x->threads = x->par.threads;
#ifdef _OPENMP
    if (x->threads <= 0)
        x->threads = omp_get_max_threads();
#endif
    nmp_clock_start(&x->clock, &x->par);
    x->inc = nmp_malloc((size_t)pb->cols * sizeof *x->inc);
    x->work = nmp_malloc((size_t)pb->cols * sizeof *x->work);
    return x->inc && x->work ? NMP_OK : NMP_ERR_NOMEM;
}

void nmp_glpk_exact_release(nmp_glpk_exact *x)
{
    if (x->lp)
        glp_delete_prob(x->lp);
    x->lp = NULL;
    nmp_free(x->inc);
    nmp_free(x->work);
    nmp_free(x->hx);
}

bool nmp_glpk_exact_tick(nmp_glpk_exact *x, int64_t iteration, const char *phase)
{
    return nmp_clock_tick(&x->clock, iteration, x->inc_score, NMP_MAX(x->bound, x->inc_score),
                          phase, false);
}

nmp_err nmp_glpk_exact_lp(nmp_glpk_exact *x, const char *phase, bool *solved)
{
    *solved = false;
    if (nmp_glpk_exact_tick(x, glp_get_it_cnt(x->lp), phase))
        return NMP_OK;
    glp_smcp parm;
    glp_init_smcp(&parm);
    parm.msg_lev = x->par.verbose ? GLP_MSG_ON : GLP_MSG_OFF;
    parm.meth = GLP_PRIMAL;
    const nmp_report rep = { x->inc_score, NMP_MAX(x->bound, x->inc_score),
                             glp_get_it_cnt(x->lp) };
    return nmp_glpk_simplex(x->lp, &parm, EXACT_SLICE, &x->clock, &rep, x->who, solved, x->msg);
}

void nmp_glpk_exact_iocp(const nmp_glpk_exact *x, glp_iocp *parm)
{
    glp_init_iocp(parm);
    parm->msg_lev = x->par.verbose ? GLP_MSG_ON : GLP_MSG_OFF;
    parm->presolve = GLP_OFF; /* keep our column numbering for the callback */
    parm->br_tech = (int)nmp_param_get(&x->par, x->params, "branch");
    parm->bt_tech = (int)nmp_param_get(&x->par, x->params, "backtrack");
}

nmp_err nmp_glpk_exact_mip(nmp_glpk_exact *x, glp_iocp *parm, nmp_status *status, bool *found)
{
    const double left = x->clock.limit > 0 ? x->clock.limit - nmp_clock_elapsed(&x->clock)
                                           : INFINITY;
    parm->tm_lim = isfinite(left) ? (int)NMP_MIN(1000.0 * NMP_MAX(left, 0.001), INT_MAX)
                                  : INT_MAX;
    nmp_glpk_bc bc = { x->hx, &x->clock, { x->inc_score, x->bound, x->nodes }, x->outside,
                       INFINITY, 0, x->bound, false };
    const int ret = nmp_glpk_intopt(x->lp, parm, &bc);
    x->nodes += bc.nodes;
    x->tree_bound = bc.tree_bound;
    const int ms = glp_mip_status(x->lp);
    *found = ms == GLP_OPT || ms == GLP_FEAS;
    if (ret == 0 && ms == GLP_OPT) {
        *status = NMP_STATUS_OPTIMAL;
        x->tree_bound = glp_mip_obj_val(x->lp);
    } else if (ret == GLP_ETMLIM) {
        *status = NMP_STATUS_TIME_LIMIT;
    } else if (ret == GLP_ESTOP) {
        *status = nmp_clock_status(&x->clock);
    } else if (ret == 0) {
        return nmp_fail(x->msg, NMP_ERR_LP, "%s: GLPK branch-and-cut ended with MIP status %d",
                        x->who, ms);
    } else {
        return nmp_glpk_fail(x->msg, x->who, "branch-and-cut", ret);
    }
    return NMP_OK;
}

void nmp_glpk_exact_offer(nmp_glpk_exact *x)
{
    const nmp_problem *pb = x->pb;
    if (!nmp_perm_is_valid(x->work, pb->cols))
        return;
    double got = 0;
    for (int64_t g = 0; g < pb->groups; g++)
        got += nmp_score_group_value(pb, x->work + g * pb->m);
    if (got > x->inc_score) {
        x->inc_score = got;
        memcpy(x->inc, x->work, (size_t)pb->cols * sizeof *x->inc);
    }
}

static void exact_lost(void *state)
{
    nmp_glpk_exact *x = state;
    x->lp = NULL;
}

nmp_err nmp_glpk_exact_solve(nmp_glpk_exact *x,
                             nmp_err (*run)(void *state, int32_t *perm, nmp_result *res),
                             int32_t *perm, nmp_result *res)
{
    nmp_err e = NMP_OK;
    const nmp_problem *pb = x->pb;
    x->bound = pb->row_bound;
    x->outside = -INFINITY;
    x->nodes = 0;
    if (x->lp) {
        glp_delete_prob(x->lp);
        x->lp = NULL;
    }
    /* the warm start: swap from perm, so the incumbent is never worse than the start and its
     * score is the first cutoff */
    nmp_params hp;
    nmp_result hres;
    nmp_params_init(&hp);
    hp.seed = x->par.seed;
    hp.threads = x->par.threads;
    NMP_TRY(e, nmp_params_set(&hp, "escapes", nmp_param_get(&x->par, x->params, "escapes")));
    memcpy(x->inc, perm, (size_t)pb->cols * sizeof *perm);
    NMP_TRY(e, nmp_subsolve(&nmp_swap_ops, pb, &hp, &x->clock, 0, x->inc, &hres, x->msg));
    x->inc_score = hres.score;
    NMP_TRY(e, nmp_glpk_run(run, exact_lost, x, perm, res, x->par.verbose, x->who, x->msg));
    memcpy(perm, x->inc, (size_t)pb->cols * sizeof *perm);
    res->bound = NMP_MAX(x->bound, x->inc_score);
out:
    return e;
}

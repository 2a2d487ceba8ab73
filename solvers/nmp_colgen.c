/* nmp_colgen.c: the LP bound of set partitioning by column generation ("colgen")
 *
 * bound = min over pricing rounds of L(y) = sum_i y_i + (cols/m) * max_q (D(q) - y(q)),
 * which at convergence is the LP value of  max sum_q D(q) x_q, sum_{q ∋ i} x_q = 1, x >= 0,
 * over all C(cols, m) groups q, computed without enumerating them (nmp_master.c, nmp_price.c).
 * The pricing is heuristic first (hprice, nmp_price_set_heuristic) and exact when that finds
 * nothing, so the last round, the one that finds nothing, is always exact. Dual smoothing pays
 * for exact rounds only (a heuristic round gives no bound, so the stability center goes stale):
 * off by default, 0.5 was the default of the exact-only pricing.
 *
 * The master starts from the groups of the start perm and of a heuristic solution ("auto" at
 * heur_effort, a fixed work, through nmp_subsolve; heur_time caps it in seconds), which also give
 * the returned perm; at the end the restricted master is solved as a binary program for a few
 * seconds for a better one. Status
 * OPTIMAL only when the bound meets the score (the LP happened to be integral at the optimum).
 * The solve runs inside nmp_glpk_run: a GLPK internal error becomes NMP_ERR_LP. */
#include "nmp_glpk.h"

#include <math.h>
#include <string.h>

static const nmp_param_desc colgen_params[] = {
    { "columns", 0, 0, 1e6, "columns added per pricing round (0: 2 * cols)" },
    { "smoothing", 0, 0, 0.99, "Wentges dual smoothing factor (0: off; 0.5 helps hprice=0)" },
    { "heur_effort", 1, 0, 1e3, "effort of the 'auto' run for the first incumbent (0: none)" },
    { "heur_time", 60, 0, 1e6, "most seconds of that run (0: none; it ends by its work first)" },
    { "mip_time", 2, 0, 1e6, "seconds for the restricted master as a binary program (0: skip)" },
    { "hprice", 1, 0, 1, "heuristic pricing before the exact search (0: exact only)" },
    { 0 },
};

typedef struct colgen_state {
    const nmp_problem *pb;
    nmp_params par;
    nmp_master *cg;
    nmp_backend be;  /* the device pricing (par->device), when dev */
    bool dev;
    double heur_effort, heur_time, mip_time;
    int32_t *inc, *work;
    nmp_msg *msg;
} colgen_state;

static void colgen_destroy(void *p)
{
    colgen_state *st = p;
    if (!st)
        return;
    nmp_master_free(st->cg);
    nmp_backend_release(&st->be);
    nmp_free(st->inc);
    nmp_free(st->work);
    nmp_free(st);
}

static nmp_err colgen_create(const nmp_problem *pb, const nmp_params *par, void **state,
                             nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    colgen_state *st = nmp_calloc(1, sizeof *st);
    if (!st)
        return NMP_ERR_NOMEM;
    st->pb = pb;
    st->par = *par;
    st->msg = msg;
    st->heur_effort = nmp_param_get(par, colgen_params, "heur_effort");
    st->heur_time = nmp_param_get(par, colgen_params, "heur_time");
    st->mip_time = nmp_param_get(par, colgen_params, "mip_time");
    st->inc = nmp_malloc((size_t)pb->cols * sizeof *st->inc);
    st->work = nmp_malloc((size_t)pb->cols * sizeof *st->work);
    if (!st->inc || !st->work) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    NMP_TRY(e, nmp_solver_backend("colgen", pb, par, NMP_DEVICE_AUTO_PRICE_COLS, &st->be, &st->dev,
                                  msg));
    const nmp_master_opts o = { par->threads, (int64_t)nmp_param_get(par, colgen_params, "columns"),
                            nmp_param_get(par, colgen_params, "smoothing"), par->verbose, 0,
                            st->dev ? &st->be : NULL,
                            nmp_param_get(par, colgen_params, "hprice") > 0 };
    NMP_TRY(e, nmp_master_create(pb, &o, &st->cg, msg));
    *state = st;
    st = NULL;
out:
    colgen_destroy(st);
    return e;
}

/* The solve, inside nmp_glpk_run. */
static nmp_err colgen_run(void *p, int32_t *perm, nmp_result *res)
{
    nmp_err e = NMP_OK;
    colgen_state *st = p;
    const nmp_problem *pb = st->pb;
    const size_t bytes = (size_t)pb->cols * sizeof *st->inc;
    nmp_clock clk;
    nmp_clock_start(&clk, &st->par);
    double best;
    NMP_TRY(e, nmp_master_start(st->cg, &st->par, st->heur_effort, st->heur_time, &clk, perm,
                                st->inc, &best, st->msg));
    nmp_report rep = { best, pb->row_bound, 0 };
    nmp_master_out out;
    NMP_TRY(e, nmp_master_solve(st->cg, -INFINITY, &clk, NULL, &out, st->msg));
    res->iterations = out.rounds;
    res->nodes = 1;
    if (isfinite(out.bound))
        res->bound = NMP_MIN(out.bound, pb->row_bound);
    rep.bound = res->bound;
    if (out.end != NMP_MASTER_STOPPED) {
        double v;
        if (!out.artificial && nmp_master_integral(st->cg, st->work)) {
            NMP_TRY(e, nmp_score(pb, st->work, &v));
            if (v > best) {
                best = v;
                memcpy(st->inc, st->work, bytes);
            }
        }
        const double gap = res->bound - best;
        if (gap > 1e-9 * fabs(res->bound) && st->mip_time > 0) {
            bool found;
            rep.best = best;
            NMP_TRY(e, nmp_master_mip(st->cg, st->mip_time, st->inc, &clk, &rep, st->work,
                                      &found, st->msg));
            if (found) {
                NMP_TRY(e, nmp_score(pb, st->work, &v));
                if (v > best) {
                    best = v;
                    memcpy(st->inc, st->work, bytes);
                }
            }
        }
    }
    memcpy(perm, st->inc, bytes);
    if (out.end == NMP_MASTER_STOPPED || clk.stopped)
        res->status = nmp_clock_status(&clk);
    else if (res->bound - best <= 1e-9 * fabs(res->bound))
        res->status = NMP_STATUS_OPTIMAL;
    else
        res->status = NMP_STATUS_FEASIBLE;
    nmp_clock_tick(&clk, res->iterations, best, res->bound, "done", true);
out:
    return e;
}

/* After a GLPK internal error: the master's LP is gone. */
static void colgen_lost(void *p)
{
    colgen_state *st = p;
    nmp_master_forget_lp(st->cg);
}

static nmp_err colgen_solve(void *p, int32_t *perm, nmp_result *res)
{
    colgen_state *st = p;
    return nmp_glpk_run(colgen_run, colgen_lost, st, perm, res, st->par.verbose, "colgen",
                        st->msg);
}

const nmp_solver_ops nmp_colgen_ops = {
    "colgen",
    "LP bound of set partitioning by column generation (heuristic, then exact pricing B&B), GLPK",
    colgen_params, colgen_create, colgen_solve, colgen_destroy, 1,
};

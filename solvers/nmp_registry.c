/* nmp_registry.c: the table of solvers and the driver that runs one end to end */
#include "nmp_solvers.h"

#include <string.h>

static const nmp_solver_ops *const solvers[] = {
    &nmp_auto_ops, /* the default */
    &nmp_identity_ops,
    &nmp_random_ops,
    &nmp_swap_ops,
    &nmp_dp_ops,
    &nmp_anneal_ops,
    &nmp_lap_ops,
    &nmp_match_ops,
    &nmp_osg_ops,
    &nmp_lns_ops,
#ifdef NMP_HAVE_GLPK
    /* exact solvers through GLPK */
    &nmp_sp_ops,
    &nmp_blp_ops,
    &nmp_colgen_ops,
    &nmp_bnp_ops,
#endif
    NULL,
};

const nmp_solver_ops *const *nmp_solver_list(void)
{
    return solvers;
}

const nmp_solver_ops *nmp_solver_find(const char *name)
{
    for (const nmp_solver_ops *const *s = solvers; name && *s; s++)
        if (strcmp((*s)->name, name) == 0)
            return *s;
    return NULL;
}

/* The contract every solver promises, kept by the driver for it: parameters in the solver's
 * table, a valid start, then create, solve, destroy; a valid perm, its score recomputed, never
 * worse than the start (a solver bug must not cost the caller), a bound no lower than the score.
 * A score that reaches the row bound within rounding (nmp_at_row_bound) is reported OPTIMAL with
 * bound = score: the bound then exceeds the row bound by at most that rounding, and the score
 * never exceeds the bound. nmp_solve and nmp_subsolve both run solvers through here. */
nmp_err nmp_solver_run(const nmp_solver_ops *ops, const nmp_problem *pb, const nmp_params *par,
                       int32_t *perm, nmp_result *res, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    void *state = NULL;
    int32_t *start = NULL;
    memset(res, 0, sizeof *res);
    NMP_TRY(e, nmp_params_check(par, ops, msg));
    if ((e = nmp_perm_check(perm, pb->cols)) != NMP_OK) {
        if (e == NMP_ERR_ARG)
            nmp_fail(msg, e, "start permutation is not a permutation of 0..%lld",
                     (long long)pb->cols - 1);
        goto out;
    }
    start = nmp_malloc((size_t)pb->cols * sizeof *start);
    if (!start) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    memcpy(start, perm, (size_t)pb->cols * sizeof *start);
    NMP_TRY(e, nmp_score(pb, start, &res->start_score));

    const double t0 = nmp_now();
    NMP_TRY(e, ops->create(pb, par, &state, msg));
    res->bound = pb->row_bound;
    e = ops->solve(state, perm, res);
    res->seconds = nmp_now() - t0;
    if (e != NMP_OK) {
        memcpy(perm, start, (size_t)pb->cols * sizeof *start);
        goto out;
    }
    if ((e = nmp_perm_check(perm, pb->cols)) != NMP_OK) {
        if (e == NMP_ERR_ARG)
            e = nmp_fail(msg, NMP_ERR_INTERNAL, "solver '%s' returned an invalid permutation",
                         ops->name);
        memcpy(perm, start, (size_t)pb->cols * sizeof *start);
        goto out;
    }
    NMP_TRY(e, nmp_score(pb, perm, &res->score));
    if (res->score < res->start_score) {
        memcpy(perm, start, (size_t)pb->cols * sizeof *start);
        res->score = res->start_score;
    }
    /* a score at the row bound is optimal, whatever stopped the search */
    if (nmp_at_row_bound(pb, res->score))
        res->status = NMP_STATUS_OPTIMAL;
    if (res->status == NMP_STATUS_OPTIMAL)
        res->bound = res->score;
    if (!(res->bound >= res->score) || res->bound > pb->row_bound)
        res->bound = NMP_MAX(res->score, NMP_MIN(res->bound, pb->row_bound));
out:
    if (state)
        ops->destroy(state);
    nmp_free(start);
    return e;
}

nmp_err nmp_solve(const nmp_problem *pb, const char *solver, const nmp_params *par, int32_t *perm,
                  int start_is_identity, nmp_result *res, nmp_msg *msg)
{
    nmp_params defaults;
    const nmp_solver_ops *ops = nmp_solver_find(solver);
    memset(res, 0, sizeof *res);
    if (!par) {
        nmp_params_init(&defaults);
        par = &defaults;
    }
    if (!ops)
        return nmp_fail(msg, NMP_ERR_ARG, "unknown solver '%s' (see 'nmperm solvers')",
                        solver ? solver : "(null)");
    if (start_is_identity) {
        const nmp_err e = nmp_params_check(par, ops, msg);
        if (e != NMP_OK)
            return e;
        nmp_perm_identity(perm, pb->cols);
    }
    return nmp_solver_run(ops, pb, par, perm, res, msg);
}

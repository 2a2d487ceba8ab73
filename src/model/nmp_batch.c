/* nmp_batch.c: one batch job: a matrix's or a checkpoint space's solve (and its LP bound), its
 * permutation written atomically; a checkpoint written with its space jobs' permutations */
#include "nmp_model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* With a job time: the solve gets this part of what loading left, less the time to write the
 * permutation (an fsync'd file). Measured on 320 matrices under load: auto overshoots a limit by
 * up to 9 % (a last LAP round at 2048 columns), writing takes a few ms. */
#define JOB_SOLVE_SHARE 0.88
#define JOB_WRITE_SECONDS 0.02

static nmp_err load_matrix(const char *path, const nmp_batch_run_opts *o, nmp_array *w,
                           nmp_problem **pb, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    NMP_TRY(e, nmp_npy_read_matrix(path, w, msg));
    const nmp_matrix v = nmp_array_view(w);
    NMP_TRY(e, nmp_matrix_check(&v, msg));
    const nmp_problem_desc d = { v, o->nm, o->objective, NULL, { 0 } };
    if ((e = nmp_problem_create(&d, pb, msg)) != NMP_OK && msg && !strstr(msg->text, path)) {
        char reason[sizeof msg->text];
        snprintf(reason, sizeof reason, "%s", msg->text);
        nmp_fail(msg, e, "%s: %s", path, reason);
    }
out:
    return e;
}

static nmp_err load_space(const char *path, const char *space, const nmp_batch_run_opts *o,
                          nmp_problem **pb, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    nmp_st *st = NULL;
    nmp_plan *plan = NULL;
    if (o->objective != NMP_OBJ_ABS)
        return nmp_fail(msg, NMP_ERR_ARG, "%s: checkpoint spaces are scored by |w| only "
                        "(objective abs)", path);
    NMP_TRY(e, nmp_batch_open_plan(path, &o->plan, o->nm, &st, &plan, msg));
    int64_t s = 0;
    while (s < plan->count && strcmp(plan->spaces[s].name, space) != 0)
        s++;
    if (s == plan->count) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: no channel space '%s'", path, space);
        goto out;
    }
    if (plan->spaces[s].skip) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: space %s is skipped: %s", path, space,
                     plan->spaces[s].skip);
        goto out;
    }
    NMP_TRY(e, nmp_space_problem(st, &plan->spaces[s], o->nm, pb, msg));
out:
    nmp_plan_free(plan);
    nmp_st_close(st);
    return e;
}

/* The colgen LP bound (no heuristic, no binary program: all of the time on the LP). A refusal
 * or a build without GLPK leaves it NaN. */
static nmp_err lp_bound(const nmp_problem *pb, const nmp_batch_run_opts *o, int32_t *scratch,
                        nmp_batch_result *r)
{
    if (!nmp_solver_find("colgen"))
        return NMP_OK;
    nmp_params par;
    nmp_result res;
    nmp_params_init(&par);
    par.time_limit = o->bound_seconds;
    par.threads = o->par.threads;
    par.seed = o->par.seed;
    par.device = o->par.device; /* the job solver's device (cpu when it has no device search) */
    nmp_params_set(&par, "heur_time", 0);
    nmp_params_set(&par, "mip_time", 0);
    const nmp_err e = nmp_solve(pb, "colgen", &par, scratch, 1, &res, NULL);
    if (e == NMP_ERR_ARG || e == NMP_ERR_UNSUPPORTED)
        return NMP_OK;
    if (e != NMP_OK)
        return e;
    r->lp_bound = res.bound;
    r->lp_complete = res.status == NMP_STATUS_OPTIMAL || res.status == NMP_STATUS_FEASIBLE;
    return NMP_OK;
}

nmp_err nmp_batch_run(const char *path, const char *space, const char *solver,
                      const nmp_batch_run_opts *o, const char *perm_path, nmp_batch_result *r,
                      nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    nmp_array w = { 0 };
    nmp_problem *pb = NULL;
    int32_t *perm = NULL, *scratch = NULL;
    const double t0 = nmp_now();
    memset(r, 0, sizeof *r);
    r->lp_bound = NAN;
    if (o->objective != NMP_OBJ_ABS && o->objective != NMP_OBJ_SQ)
        return nmp_fail(msg, NMP_ERR_ARG, "batch: objective %s needs per-matrix data; use abs "
                        "or sq", nmp_objective_name(o->objective));
    if (space)
        NMP_TRY(e, load_space(path, space, o, &pb, msg));
    else
        NMP_TRY(e, load_matrix(path, o, &w, &pb, msg));
    r->rows = nmp_problem_rows(pb);
    r->cols = nmp_problem_cols(pb);
    perm = nmp_malloc((size_t)r->cols * sizeof *perm);
    scratch = nmp_malloc((size_t)r->cols * sizeof *scratch);
    if (!perm || !scratch) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    nmp_params par = o->par;
    r->load_seconds = nmp_now() - t0;
    if (o->job_seconds > 0) /* margins: solvers overshoot their limits by up to ~10 % */
        par.time_limit = NMP_MAX(JOB_SOLVE_SHARE * (o->job_seconds - r->load_seconds) -
                                 JOB_WRITE_SECONDS, 1e-3);
    NMP_TRY(e, nmp_solve(pb, solver, &par, perm, 1, &r->res, msg));
    r->identity = nmp_score_identity(pb);
    r->row_bound = nmp_score_row_bound(pb);
    r->efficacy = nmp_score_efficacy(pb, r->res.score);
    if (o->bound_seconds > 0)
        NMP_TRY(e, lp_bound(pb, o, scratch, r));
    NMP_TRY(e, nmp_batch_mkdirs(perm_path, msg));
    NMP_TRY(e, nmp_npy_write_perm(perm_path, perm, r->cols, msg));
out:
    nmp_free(perm);
    nmp_free(scratch);
    nmp_problem_free(pb);
    nmp_array_free(&w);
    return e;
}

nmp_err nmp_batch_write_checkpoint(const char *path, const nmp_plan_opts *plan_opts,
                                   nmp_pattern nm, const char *perm_prefix, const char *solver,
                                   const char *out_path, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    nmp_st *st = NULL;
    nmp_plan *plan = NULL;
    NMP_TRY(e, nmp_batch_open_plan(path, plan_opts, nm, &st, &plan, msg));
    plan->nm = nm;
    for (int64_t s = 0; s < plan->count; s++) {
        nmp_space *sp = &plan->spaces[s];
        if (sp->skip)
            continue;
        char *pp = nmp_batch_perm_name(perm_prefix, sp->name, solver);
        if (!pp) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
        int64_t len = 0;
        nmp_free(sp->perm);
        sp->perm = NULL;
        e = nmp_npy_read_perm(pp, &sp->perm, &len, msg);
        if (e == NMP_OK && (len != sp->size || !nmp_perm_is_valid(sp->perm, len)))
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: not a permutation of the %lld channels of %s",
                         pp, (long long)sp->size, sp->name);
        nmp_free(pp);
        if (e != NMP_OK)
            goto out;
    }
    NMP_TRY(e, nmp_batch_mkdirs(out_path, msg));
    NMP_TRY(e, nmp_plan_apply(st, plan, 0, nm, out_path, msg));
out:
    nmp_plan_free(plan);
    nmp_st_close(st);
    return e;
}

/* nmp_permute.c: a checkpoint permuted end to end: per space the scoring problem, a solve and
 * its statistics, then the permuted file written to a temporary, verified, and committed */
#include "nmp_model.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

void nmp_permute_opts_init(nmp_permute_opts *o)
{
    memset(o, 0, sizeof *o);
    o->nm = (nmp_pattern){ 2, 4 };
    o->solve = 1;
    o->effort = NMP_PERMUTE_EFFORT;
    nmp_params_init(&o->par);
}

/* The progress callback with its stage: stage start times, the stop request once made. */
typedef struct ticker {
    const nmp_permute_opts *o;
    nmp_ckpt_progress p;
    double start;
    int stopped;
} ticker;

static void tick_stage(ticker *tk, const char *stage, int64_t count)
{
    tk->p = (nmp_ckpt_progress){ stage, -1, count, "", 0, NULL };
    tk->start = nmp_now();
}

/* Calls the user's callback at space s (-1: none); nonzero (and sticky) asks to stop. */
static int tick(ticker *tk, const nmp_plan *plan, int64_t s)
{
    if (tk->stopped || !tk->o->progress)
        return tk->stopped;
    tk->p.space = s;
    tk->p.name = s >= 0 ? plan->spaces[s].name : "";
    tk->p.elapsed = nmp_now() - tk->start;
    tk->stopped = tk->o->progress(&tk->p, tk->o->progress_user) != 0;
    return tk->stopped;
}

/* The solver's progress: passed on as the solve stage of the space at work. */
typedef struct solve_tick {
    ticker *tk;
    const nmp_plan *plan;
    int64_t s;
} solve_tick;

static int on_solver_progress(const nmp_progress *p, void *user)
{
    solve_tick *st = user;
    (void)p;
    return tick(st->tk, st->plan, st->s);
}

/* One space: its problem, a solve from the identity, perm and stats into sp. */
static nmp_err solve_space(const nmp_st *st, const nmp_plan *plan, int64_t s,
                           const nmp_permute_opts *o, const char *solver, ticker *tk,
                           nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    nmp_space *sp = &plan->spaces[s];
    nmp_problem *pb = NULL;
    nmp_result res = { 0 };
    nmp_params par = o->par;
    solve_tick stk = { tk, plan, s };
    /* no time limit: auto's work budget (fixed per space, scaled by its size by auto), so the
     * perms depend on seed and threads only */
    bool has_effort = false;
    for (int k = 0; k < par.count; k++)
        has_effort |= strcmp(par.values[k].name, "effort") == 0;
    if (strcmp(solver, "auto") == 0 && !has_effort && !(par.time_limit > 0) && o->effort > 0)
        NMP_TRY(e, nmp_params_set(&par, "effort", o->effort));
    par.progress = o->progress ? on_solver_progress : NULL;
    par.progress_user = o->progress ? &stk : NULL;
    nmp_free(sp->perm);
    sp->perm = NULL;
    sp->solved = 0;
    const double t0 = nmp_now();
    NMP_TRY(e, nmp_space_problem_sal(st, sp, o->nm, &o->saliency, &pb, msg));
    /* a time limit covers the whole space: building its problem (seconds for the residual
     * stream of a large model) comes out of the solver's share, which keeps at least a tenth;
     * a build that used the whole limit leaves no search: the space keeps the identity with
     * status time limit (a solver's setup on 10^5 stacked rows would overrun it again) */
    const double build = nmp_now() - t0;
    const bool spent = par.time_limit > 0 && build >= par.time_limit;
    if (par.time_limit > 0)
        par.time_limit = NMP_MAX(0.1 * par.time_limit, par.time_limit - build);
    if (!(sp->perm = nmp_malloc((size_t)sp->size * sizeof *sp->perm))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    nmp_msg smsg = { { 0 } };
    if (spent) {
        nmp_perm_identity(sp->perm, sp->size);
        res.status = NMP_STATUS_TIME_LIMIT;
        res.score = res.start_score = nmp_score_identity(pb);
        res.bound = nmp_score_row_bound(pb);
    } else if ((e = nmp_solve(pb, solver, &par, sp->perm, 1, &res, &smsg)) != NMP_OK) {
        nmp_fail(msg, e, "space %s: %s", sp->name, smsg.text[0] ? smsg.text : nmp_err_str(e));
        goto out;
    }
    nmp_space_stats *t = &sp->stats;
    t->rows = nmp_problem_rows(pb);
    t->cols = nmp_problem_cols(pb);
    snprintf(t->solver, sizeof t->solver, "%s", solver);
    t->status = res.status;
    t->identity = nmp_score_identity(pb);
    t->kept = res.score;
    t->bound = res.bound;
    t->row_bound = nmp_score_row_bound(pb);
    t->efficacy = nmp_score_efficacy(pb, res.score);
    t->seconds = res.seconds + build;
    sp->solved = 1;
out:
    nmp_problem_free(pb);
    return e;
}

static nmp_err solve_all(const nmp_st *st, nmp_plan *plan, const nmp_permute_opts *o,
                         ticker *tk, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const char *solver = o->solver ? o->solver : nmp_solver_find("auto") ? "auto" : "swap";
    tick_stage(tk, "solve", plan->count);
    plan->nm = o->nm;
    plan->time_limit = o->par.time_limit > 0 ? o->par.time_limit : 0;
    plan->seed = o->par.seed;
#ifdef _OPENMP
    plan->threads = o->par.threads > 0 ? o->par.threads : omp_get_max_threads();
#else
    plan->threads = 1;
#endif
    plan->objective = (int)o->saliency.kind;
    for (int64_t s = 0; s < plan->count && !tk->stopped; s++) {
        if (plan->spaces[s].skip || tick(tk, plan, s))
            continue;
        NMP_TRY(e, solve_space(st, plan, s, o, solver, tk, msg));
        nmp_st_drop_pages(st); /* resident: one space's tensors at a time */
    }
out:
    return e;
}

nmp_err nmp_plan_solve(const nmp_st *st, nmp_plan *plan, const nmp_permute_opts *o,
                       int *interrupted, nmp_msg *msg)
{
    ticker tk = { o, { 0 }, 0, 0 };
    const nmp_err e = solve_all(st, plan, o, &tk, msg);
    *interrupted = tk.stopped;
    return e;
}

/* Every active space of the plan: b (through the perms when virtual_perm) against a; the
 * largest relative difference into *worst and each space's stats. `dest` names the output. */
static nmp_err verify_all(nmp_plan *plan, const nmp_st *a, const nmp_st *b, int virtual_perm,
                          const nmp_permute_opts *o, const char *dest, ticker *tk,
                          double *worst, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    for (int64_t s = 0; s < plan->count && !tk->stopped; s++) {
        nmp_space *sp = &plan->spaces[s];
        double rel = 0;
        if (sp->skip || tick(tk, plan, s))
            continue;
        NMP_TRY(e, nmp_space_verify(plan, s, a, b, virtual_perm, o->par.seed + (uint64_t)s,
                                    NMP_VERIFY_SAMPLES, &rel, msg));
        sp->stats.verify_rel = rel;
        *worst = NMP_MAX(*worst, rel);
        nmp_st_drop_pages(a);
        nmp_st_drop_pages(b);
        if (!(rel <= NMP_VERIFY_TOL)) {
            e = nmp_fail(msg, NMP_ERR_INTERNAL, "%s: space %s: the permuted block differs from "
                         "the original (max relative difference %.3g > %.0e); nothing written",
                         dest, sp->name, rel, NMP_VERIFY_TOL);
            goto out;
        }
    }
out:
    return e;
}

/* The writer asks before each tensor. */
typedef struct write_tick {
    ticker *tk;
    const nmp_plan *plan;
} write_tick;

static int on_write(void *user, const nmp_st_tensor *t)
{
    write_tick *wt = user;
    (void)t;
    return tick(wt->tk, wt->plan, -1);
}

nmp_err nmp_ckpt_permute(const nmp_st *in, nmp_plan *plan, const nmp_permute_opts *o,
                         const char *path, nmp_permute_result *res, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    nmp_atomic out = { 0 }, rep = { 0 };
    nmp_st *written = NULL;
    char *text = NULL;
    ticker tk = { o, { 0 }, 0, 0 };
    const double t0 = nmp_now();
    int stopped = 0;
    memset(res, 0, sizeof *res);
    res->verify_max_rel = -1;
    NMP_TRY(e, nmp_plan_check_values(plan, in, msg));
    if (o->solve) {
        NMP_TRY(e, solve_all(in, plan, o, &tk, msg));
        res->solve_seconds = nmp_now() - t0;
    } else {
        for (int64_t s = 0; s < plan->count; s++)
            if (!plan->spaces[s].skip && !plan->spaces[s].perm) {
                e = nmp_fail(msg, NMP_ERR_ARG, "space %s has no perm", plan->spaces[s].name);
                goto out;
            }
    }
    if (tk.stopped)
        goto out;
    double worst = 0, tv = nmp_now();
    /* with prune the output no longer computes the same: verify the perms on the input */
    if (o->verify && o->prune) {
        tick_stage(&tk, "verify", plan->count);
        NMP_TRY(e, verify_all(plan, in, in, 1, o, path, &tk, &worst, msg));
        res->verify_seconds = nmp_now() - tv;
        if (tk.stopped)
            goto out;
    }
    NMP_TRY(e, nmp_st_out_open(in, &out, path, msg));
    tick_stage(&tk, "write", plan->count);
    tk.p.file = nmp_st_out_file(&out);
    write_tick wt = { &tk, plan };
    const nmp_prune_spec pr = { o->prune, o->nm, o->saliency, o->prune_exclude,
                                o->prune_nexclude };
    NMP_TRY(e, nmp_plan_apply_to(in, plan, &pr, &out, on_write, &wt, &stopped, msg));
    if (stopped)
        goto out;
    if (o->verify && !o->prune) {
        tv = nmp_now();
        tick_stage(&tk, "verify", plan->count);
        tk.p.file = nmp_st_out_file(&out);
        if (tick(&tk, plan, -1)) /* before the temporary is read */
            goto out;
        NMP_TRY(e, nmp_st_out_reopen(&out, &written, msg));
        NMP_TRY(e, verify_all(plan, in, written, 0, o, path, &tk, &worst, msg));
        res->verify_seconds = nmp_now() - tv;
        if (tk.stopped)
            goto out;
    }
    if (o->verify)
        res->verify_max_rel = worst;
    if (o->report) {
        NMP_TRY(e, nmp_plan_dumps(plan, &text));
        NMP_TRY(e, nmp_atomic_open(&rep, o->report, msg));
        NMP_TRY(e, nmp_atomic_write(&rep, text, strlen(text), msg));
        NMP_TRY(e, nmp_atomic_write(&rep, "\n", 1, msg));
        NMP_TRY(e, nmp_atomic_close(&rep, msg));
    }
    if (tick(&tk, plan, -1)) /* last chance to stop: nothing replaced yet */
        goto out;
    NMP_TRY(e, nmp_atomic_commit(&out, msg));
    if (o->report)
        NMP_TRY(e, nmp_atomic_commit(&rep, msg));
out:
    res->interrupted = e == NMP_OK && tk.stopped;
    res->seconds = nmp_now() - t0;
    nmp_st_close(written);
    nmp_atomic_abort(&out);
    nmp_atomic_abort(&rep);
    nmp_free(text);
    return e;
}

/* nmp_subsolve.c: one solver running another with part of its time (the one sub-solve entry)
 *
 * A parent solver (auto, sp, blp, colgen, bnp) that wants another solver's answer calls
 * nmp_subsolve with that solver's ops table, never a name: a solver that is not in the build
 * is then a link error, not a silent skip. The child runs through nmp_solver_run, the driver of
 * nmp_solve, so it gets the same checks (its parameters against its table, a valid perm, the
 * score recomputed, never worse than the start). Its clock is the parent's remaining time,
 * capped by `seconds`; its progress goes to the parent's clock (elapsed and rate limit there)
 * and a stop asked there (the user's interrupt) stops the child. A child's clock starts after
 * its setup (allocating and filling arrays of the matrix's size, which no clock watches), so
 * under a parent's limit the child's limit is the time left less an estimate of that setup,
 * and a child whose setup alone would not fit is not started.
 */
#include "nmp_solvers.h"

#include <stdbool.h>
#include <string.h>

/* Seconds a child's setup takes per matrix entry, at most: auto's create measured 7-10 ns per
 * entry at 1024^2 and 4096^2 on the loaded 2-core VM (bench_limits). */
#define SETUP_PER_ENTRY 1e-8

/* The child's progress, reported through the parent's clock; nonzero once the parent was asked
 * to stop. The parent's time limit needs no signal: the child's own limit ends with it. */
static int forward(const nmp_progress *p, void *user)
{
    nmp_clock *parent = user;
    nmp_clock_tick(parent, p->iteration, p->best, p->bound, p->phase, false);
    return parent->stopped;
}

nmp_err nmp_subsolve(const nmp_solver_ops *ops, const nmp_problem *pb, const nmp_params *par,
                     nmp_clock *parent, double seconds, int32_t *perm, nmp_result *res,
                     nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    nmp_params q = *par;
    if (!ops->device) /* a device asked of the parent serves the children that have a search */
        q.device = NMP_DEVICE_CPU;
    q.time_limit = seconds > 0 ? seconds : 0;
    q.progress = NULL;
    q.progress_user = NULL;
    if (parent) {
        q.progress = forward;
        q.progress_user = parent;
        const double setup = SETUP_PER_ENTRY * (double)pb->rows * (double)pb->cols;
        const double left =
            parent->limit > 0 ? parent->limit - nmp_clock_elapsed(parent) - setup : 0;
        if (parent->limit > 0)
            q.time_limit = q.time_limit > 0 ? NMP_MIN(q.time_limit, left) : left;
        if (parent->stopped || (parent->limit > 0 && left <= 0)) { /* nothing left to spend */
            memset(res, 0, sizeof *res);
            res->status = nmp_clock_status(parent);
            NMP_TRY(e, nmp_score(pb, perm, &res->start_score));
            res->score = res->start_score;
            res->bound = pb->row_bound;
            goto out;
        }
    }
    NMP_TRY(e, nmp_solver_run(ops, pb, &q, perm, res, msg));
out:
    return e;
}

nmp_err nmp_solver_backend(const char *solver, const nmp_problem *pb, const nmp_params *par,
                           int64_t min_cols, nmp_backend *be, bool *on, nmp_msg *msg)
{
    nmp_backend_init_cpu(be, pb);
    *on = false;
    switch (par->device) {
    case NMP_DEVICE_CPU:
        return NMP_OK;
    case NMP_DEVICE_REF:
        *on = true;
        return NMP_OK;
    case NMP_DEVICE_AUTO:
        if (pb->cols < min_cols || nmp_gpu_count() < 1)
            return NMP_OK;
        if (nmp_backend_init(be, pb, "auto", NULL) != NMP_OK) { /* auto: the CPU code */
            nmp_backend_init_cpu(be, pb);
            return NMP_OK;
        }
        *on = strcmp(be->name, "cpu") != 0;
        return NMP_OK;
    case NMP_DEVICE_GPU: {
        nmp_msg why = { 0 };
        const nmp_err e = nmp_backend_init(be, pb, "gpu", &why);
        if (e != NMP_OK)
            return nmp_fail(msg, e, "%s --device gpu: %s", solver, why.text);
        *on = true;
        return NMP_OK;
    }
    }
    return nmp_fail(msg, NMP_ERR_ARG, "%s: unknown device %d", solver, (int)par->device);
}

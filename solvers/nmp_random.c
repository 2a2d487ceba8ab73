/* nmp_random.c: best of K uniformly random permutations (a sanity baseline) */
#include "nmp_solvers.h"

#include <string.h>

static const nmp_param_desc random_params[] = {
    { "tries", 100, 1, 1e9, "number of random permutations drawn" },
    { 0 },
};

typedef struct random_state {
    const nmp_problem *pb;
    nmp_rng rng;
    int64_t tries;
    nmp_clock clock;
    int32_t *cand;
    double *gscore;
} random_state;

static void random_destroy(void *p)
{
    random_state *st = p;
    if (!st)
        return;
    nmp_free(st->cand);
    nmp_free(st->gscore);
    nmp_free(st);
}

static nmp_err random_create(const nmp_problem *pb, const nmp_params *par, void **state,
                             nmp_msg *msg)
{
    (void)msg;
    random_state *st = nmp_calloc(1, sizeof *st);
    if (!st)
        return NMP_ERR_NOMEM;
    st->pb = pb;
    nmp_rng_seed(&st->rng, par->seed);
    st->tries = (int64_t)nmp_param_get(par, random_params, "tries");
    nmp_clock_start(&st->clock, par);
    st->cand = nmp_malloc((size_t)pb->cols * sizeof *st->cand);
    st->gscore = nmp_malloc((size_t)pb->groups * sizeof *st->gscore);
    if (!st->cand || !st->gscore) {
        random_destroy(st);
        return NMP_ERR_NOMEM;
    }
    *state = st;
    return NMP_OK;
}

static double total_of(const double *gs, int64_t groups)
{
    double t = 0;
    for (int64_t g = 0; g < groups; g++)
        t += gs[g];
    return t;
}

static nmp_err random_solve(void *p, int32_t *perm, nmp_result *res)
{
    random_state *st = p;
    const nmp_problem *pb = st->pb;
    nmp_score_groups_raw(pb, perm, st->gscore);
    double best = total_of(st->gscore, pb->groups);
    res->status = NMP_STATUS_FEASIBLE;
    for (int64_t t = 0; t < st->tries; t++) {
        if (nmp_clock_tick(&st->clock, t, best, pb->row_bound, "random", false)) {
            res->status = nmp_clock_status(&st->clock);
            break;
        }
        nmp_perm_random(st->cand, pb->cols, &st->rng);
        nmp_score_groups_raw(pb, st->cand, st->gscore);
        const double s = total_of(st->gscore, pb->groups);
        if (s > best) {
            best = s;
            memcpy(perm, st->cand, (size_t)pb->cols * sizeof *perm);
        }
        res->iterations = t + 1;
    }
    return NMP_OK;
}

const nmp_solver_ops nmp_random_ops = {
    "random", "best of K uniformly random permutations", random_params,
    random_create, random_solve, random_destroy, 0,
};

/* nmp_auto.c: the default portfolio: exact dp when small, else annealing, assignment moves, lns
 *
 * Plan by size (C = cols, R = rows, G = C / m groups, T = threads):
 *   exact        C <= dp_cols (24) and dp built in: a short anneal (the answer should dp be
 *                stopped), then the exact dp, which proves optimality (status OPTIMAL) and uses
 *                the T threads itself.
 *   multi-start  when the annealing budget of a thread (below) gives every column at least
 *                ms_sweeps (3000) offers: up to 512 x 512, or wider when short. Each of the T
 *                threads runs its own searches from the start perm, each one anneal -> LAP
 *                rounds -> swap descent, then lns (when built) on its best; the answer is the best
 *                thread's (ties: the lowest thread index). Thread t draws from splitmix(seed, t).
 *                Annealing at a constant low temperature (see nmp_anneal.c) is what finds the
 *                optimum of small instances; LAP and lns add a little after it.
 *   LAP          larger: one search, its assignment moves spread over the T threads (blocks of
 *                groups side by side, or one block's weight matrix by rows): LAP rounds with
 *                random positions until two rounds gain nothing, a swap descent where its
 *                C^2 R / 2 pass is affordable, LAP again. Here LAP gives by far the most per
 *                second (annealing first lowers the result at 1024 x 1024 in equal time). Blocks:
 *                all G groups up to G = 512, else 512 (larger blocks are stronger and cost G k R
 *                per selection).
 * Budget. Without a time limit the work is fixed by the instance, so the result depends on the
 *   seed and T only: annealing gets effort * 1.5e7 * 128 / (R + 32) moves per thread (~1.2e7
 *   at R = 128, about 0.6 s of one core here), capped at 2e4 * C * G per search for tiny
 *   inputs, in one search per thread up to 128 columns and two above; LAP rounds are capped at
 *   effort * 1e12 weight entries (~90 core-seconds). Measured with 2 threads (loaded machine,
 *   CPU time): ~0.7 s at 128 x 64, ~0.8 s at 256^2, ~2 s at 512^2, ~1.5 s at 1024^2, ~15 s at
 *   2048^2, ~60 s at 4096^2 (30-35 s wall when the two cores are free).
 *   With a time limit, the annealing of every search is paced by the clock to use an equal share
 *   of 85 % of it, LAP rounds run until they stall or the limit, and everything stops at the limit
 *   (then the result also depends on the machine's speed).
 * Threads. For a fixed seed and thread count (and no binding time limit) the result is the same
 *   on every run. In the multi-start plan more threads run more independent searches (the
 *   search of thread t is the same whatever T, so T + 1 threads never do worse than T); in the
 *   exact and LAP plans the result does not depend on T at all, only the time does.
 */
#include "nmp_internal.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static const nmp_param_desc auto_params[] = {
    { "effort", 1, 0.001, 1000, "scale of the default work (no time limit)" },
    { "dp_cols", 24, 0, 30, "solve exactly with dp up to this many columns (0: never)" },
    { "ms_sweeps", 3000, 0, 1e12, "multi-start annealing when a thread's budget has this many sweeps" },
    { "starts", 0, 0, 1e6, "searches per thread in multi-start (0: by size)" },
    { "lns", 1, 0, 1, "finish each thread with lns (when built)" },
    { "block", 0, 0, 1e6, "most groups per assignment (0: all up to 512, else 512)" },
    { 0 },
};

#define AUTO_MAX_THREADS 256

typedef struct auto_state auto_state;

/* One thread's search. */
typedef struct slot {
    auto_state *st;
    int index;
    nmp_eval *ev;
    nmp_anneal *an;
    nmp_lap_move *lm;
    void *lns;
    int32_t *best;
    double score;
    nmp_rng rng;
    nmp_clock clk;
    bool stopped;
    int64_t iterations;      /* LAP moves applied */
    int64_t moves0;          /* the annealer's move count when the solve began */
    int64_t rounds_left;     /* LAP rounds still allowed */
} slot;

struct auto_state {
    const nmp_problem *pb;
    nmp_params par;
    double effort;
    int64_t dp_cols, starts, block;
    double ms_sweeps;
    int64_t moves, nstarts;  /* multi-start: anneal moves per search, searches per thread */
    double kicks;            /* lns kicks per thread */
    bool use_lns, multi, exact;
    int threads, nslots;     /* OpenMP threads; searches (threads in multi-start, else 1) */
    const nmp_solver_ops *dp_ops, *lns_ops;
    void *dp;
    slot *slots;
    nmp_clock clk;
    atomic_int stop;         /* set when the user's callback asked to stop */
};

/* splitmix64 of (seed, t): the seed of thread t */
static uint64_t mix(uint64_t seed, uint64_t t)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ull * (t + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Progress of a thread's clock (and of sub-solvers run by it): thread 0 forwards to the user's
 * callback; every thread stops once the user asked to. */
static int slot_progress(const nmp_progress *p, void *user)
{
    slot *s = user;
    auto_state *st = s->st;
    if (s->index == 0 && st->par.progress && st->par.progress(p, st->par.progress_user) != 0)
        atomic_store(&st->stop, 1);
    return atomic_load(&st->stop);
}

static void auto_destroy(void *p)
{
    auto_state *st = p;
    if (!st)
        return;
    if (st->dp)
        st->dp_ops->destroy(st->dp);
    for (int t = 0; st->slots && t < st->nslots; t++) {
        slot *s = &st->slots[t];
        nmp_eval_free(s->ev);
        nmp_anneal_free(s->an);
        nmp_lap_move_free(s->lm);
        if (s->lns)
            st->lns_ops->destroy(s->lns);
        nmp_free(s->best);
    }
    nmp_free(st->slots);
    nmp_free(st);
}

/* A parameter set for a sub-solver or the annealer of thread t: the seed of the thread, one
 * thread, the user's time limit, progress through slot_progress; no named values (each sub-solver
 * keeps its defaults). */
static nmp_params sub_params(const auto_state *st, slot *s)
{
    nmp_params q;
    nmp_params_init(&q);
    q.seed = mix(st->par.seed, (uint64_t)s->index);
    q.time_limit = st->par.time_limit;
    q.threads = 1;
    q.progress = slot_progress;
    q.progress_user = s;
    return q;
}

/* The work of a thread without a time limit: anneal moves per search, searches, lns kicks. */
static void plan(auto_state *st)
{
    const nmp_problem *pb = st->pb;
    /* ~1.2e7 moves per second and thread at 128 rows, the cost of a move growing like rows + 32:
     * annealing gets ~0.45 s of a core, lns's kicks (~0.25 us per group and row each) ~0.4 s */
    const double per_thread = st->effort * 0.55 * 1.5e7 * 128.0 / ((double)pb->rows + 32.0);
    int64_t k = st->starts;
    if (k <= 0)
        k = pb->cols <= 128 ? 1 : 2;
    const double cap = st->effort * 2e4 * (double)pb->cols * (double)pb->groups;
    st->nstarts = k;
    st->moves = (int64_t)NMP_MAX(1000.0, NMP_MIN(cap, per_thread / (double)k));
    st->kicks = NMP_MAX(10.0, NMP_MIN(1e4, st->effort * 0.4 /
                                               (0.25e-6 * (double)pb->groups * (double)pb->rows)));
}

static nmp_err auto_create(const nmp_problem *pb, const nmp_params *par, void **state,
                           nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    auto_state *st = nmp_calloc(1, sizeof *st);
    if (!st)
        return NMP_ERR_NOMEM;
    const nmp_param_desc *d = auto_params;
    st->pb = pb;
    st->par = *par;
    st->effort = nmp_param_get(par, d, "effort");
    st->dp_cols = (int64_t)nmp_param_get(par, d, "dp_cols");
    st->ms_sweeps = nmp_param_get(par, d, "ms_sweeps");
    st->starts = (int64_t)nmp_param_get(par, d, "starts");
    st->use_lns = nmp_param_get(par, d, "lns") != 0;
    st->block = (int64_t)nmp_param_get(par, d, "block");
    if (st->block <= 0)
        st->block = pb->groups <= 512 ? NMP_MAX(pb->groups, 2) : 512;
    atomic_init(&st->stop, 0);
    int threads = par->threads;
#ifdef _OPENMP
    if (threads <= 0)
        threads = omp_get_max_threads();
#endif
    st->threads = NMP_MIN(NMP_MAX(threads, 1), AUTO_MAX_THREADS);
    st->dp_ops = nmp_solver_find("dp");
    /* lns's kicks repair with pair windows; above m = 4 one kick took ~0.5 s (4:8, 16 x 64) */
    st->lns_ops = st->use_lns && pb->m <= 4 ? nmp_solver_find("lns") : NULL;
    st->exact = st->dp_ops && pb->cols <= st->dp_cols;
    plan(st);
    st->multi = !st->exact && (double)st->moves * (double)st->nstarts >=
                                  st->ms_sweeps * (double)pb->cols;
    st->nslots = st->multi ? st->threads : 1;
    st->slots = nmp_calloc((size_t)st->nslots, sizeof *st->slots);
    if (!st->slots) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    if (!st->multi) { /* one search; its LAP uses every thread */
        slot *s = &st->slots[0];
        s->st = st;
        NMP_TRY(e, nmp_eval_create(pb, NULL, &s->ev));
        const nmp_params q = sub_params(st, s);
        NMP_TRY(e, nmp_anneal_create(pb, &q, &s->an));
        if (!st->exact)
            NMP_TRY(e, nmp_lap_move_create(pb, st->block, 1, st->threads, &s->lm));
        s->best = nmp_malloc((size_t)pb->cols * sizeof *s->best);
        if (!s->best) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
        if (st->exact) {
            nmp_params q2 = *par;
            q2.count = 0;
            q2.progress = slot_progress;
            q2.progress_user = s;
            NMP_TRY(e, st->dp_ops->create(pb, &q2, &st->dp, msg));
        }
    } else {
        for (int t = 0; t < st->threads; t++) {
            slot *s = &st->slots[t];
            s->st = st;
            s->index = t;
            const nmp_params q = sub_params(st, s);
            NMP_TRY(e, nmp_eval_create(pb, NULL, &s->ev));
            NMP_TRY(e, nmp_anneal_create(pb, &q, &s->an));
            NMP_TRY(e, nmp_lap_move_create(pb, st->block, 1, 1, &s->lm));
            s->best = nmp_malloc((size_t)pb->cols * sizeof *s->best);
            if (!s->best) {
                e = NMP_ERR_NOMEM;
                goto out;
            }
            if (st->lns_ops) { /* its kicks by the plan; with a time limit, as many as fit */
                nmp_params ql = q;
                NMP_TRY(e, nmp_params_set(&ql, "kicks", par->time_limit > 0 ? 1e12 : st->kicks));
                NMP_TRY(e, st->lns_ops->create(pb, &ql, &s->lns, msg));
            }
        }
    }
    *state = st;
    st = NULL;
out:
    auto_destroy(st);
    return e;
}

/* ------------------------------------------------------------- helpers */

/* LAP rounds with random positions until two in a row gain nothing or the round budget is
 * spent; false if stopped. */
static bool lap_until_stall(slot *s)
{
    int idle = 0;
    bool stopped = false;
    while (idle < 2 && !stopped && s->rounds_left > 0) {
        s->rounds_left--;
        const double gain = nmp_lap_move_round(s->lm, s->ev, &s->rng, &s->clk, &s->iterations,
                                               &stopped);
        idle = gain > 0 ? 0 : idle + 1;
    }
    return !stopped;
}

static void keep_if_better(slot *s)
{
    const double now = nmp_eval_score(s->ev);
    if (now > s->score) {
        s->score = now;
        memcpy(s->best, nmp_eval_perm(s->ev), (size_t)s->st->pb->cols * sizeof *s->best);
    }
}

/* Runs lns on the slot's best (lns keeps its start if it finds nothing). */
static bool run_lns(slot *s)
{
    auto_state *st = s->st;
    if (!s->lns)
        return true;
    nmp_result r;
    memset(&r, 0, sizeof r);
    if (st->lns_ops->solve(s->lns, s->best, &r) != NMP_OK)
        return true;
    nmp_eval_reset(s->ev, s->best);
    s->score = nmp_eval_score(s->ev);
    return r.status != NMP_STATUS_INTERRUPTED && r.status != NMP_STATUS_TIME_LIMIT;
}

/* One thread of the multi-start plan. */
static void run_slot(slot *s, const int32_t *start)
{
    auto_state *st = s->st;
    const nmp_problem *pb = st->pb;
    const int64_t moves = st->moves, starts = st->nstarts;
    const double limit = st->par.time_limit;
    memcpy(s->best, start, (size_t)pb->cols * sizeof *s->best);
    nmp_eval_reset(s->ev, start);
    s->score = nmp_eval_score(s->ev);
    bool running = true;
    if (limit > 0) { /* a quick LAP descent first secures a good answer should the limit be short */
        running = lap_until_stall(s);
        keep_if_better(s);
    }
    for (int64_t r = 0; r < starts && running; r++) {
        nmp_eval_reset(s->ev, start);
        double pace = 0;
        if (limit > 0) { /* search r gets an equal share of 45 % of the time, lns the rest */
            const double now = nmp_clock_elapsed(&s->clk);
            pace = now + (0.45 * limit - now) / (double)(starts - r);
        }
        running = nmp_anneal_run(s->an, s->ev, &s->rng, &s->clk, limit > 0 ? 0 : moves, pace);
        running = running && lap_until_stall(s);
        running = running && nmp_anneal_polish(s->an, s->ev, &s->clk, false);
        keep_if_better(s);
    }
    if (running)
        running = run_lns(s);
    s->stopped = !running;
}

/* The one-search plan for large inputs. */
static void run_large(slot *s, const int32_t *start)
{
    const auto_state *st = s->st;
    const nmp_problem *pb = st->pb;
    /* a round costs m selections of about G * block * R weight entries */
    const double round = (double)pb->m * (double)pb->groups *
                         (double)NMP_MIN(st->block, pb->groups) * (double)pb->rows;
    s->rounds_left = (int64_t)NMP_MAX(2.0, st->effort * 1e12 / round);
    memcpy(s->best, start, (size_t)pb->cols * sizeof *s->best);
    nmp_eval_reset(s->ev, start);
    s->score = nmp_eval_score(s->ev);
    bool running = lap_until_stall(s);
    running = running && nmp_anneal_polish(s->an, s->ev, &s->clk, false);
    running = running && lap_until_stall(s);
    keep_if_better(s);
    s->stopped = !running;
}

static nmp_err auto_solve(void *p, int32_t *perm, nmp_result *res)
{
    nmp_err e = NMP_OK;
    auto_state *st = p;
    const nmp_problem *pb = st->pb;
    nmp_clock_start(&st->clk, &st->par);
    atomic_store(&st->stop, 0);
    res->status = NMP_STATUS_FEASIBLE;
    double start_score = 0;
    {
        slot *s = &st->slots[0];
        nmp_eval_reset(s->ev, perm);
        start_score = nmp_eval_score(s->ev);
    }
    res->start_score = start_score;
    const int nslots = st->nslots;
    for (int t = 0; t < nslots; t++) {
        slot *s = &st->slots[t];
        s->clk = st->clk;
        s->clk.progress = slot_progress;
        s->clk.user = s;
        s->stopped = false;
        s->iterations = 0;
        s->moves0 = nmp_anneal_moves(s->an);
        s->rounds_left = INT64_MAX;
        nmp_rng_seed(&s->rng, mix(st->par.seed, (uint64_t)t));
    }
    if (st->exact) {
        slot *s = &st->slots[0];
        /* a quick anneal: what is returned if dp is stopped */
        memcpy(s->best, perm, (size_t)pb->cols * sizeof *perm);
        nmp_eval_reset(s->ev, perm);
        s->score = nmp_eval_score(s->ev);
        bool running = nmp_anneal_run(s->an, s->ev, &s->rng, &s->clk, 2000 * pb->cols, 0);
        keep_if_better(s);
        if (running) {
            nmp_result r;
            memset(&r, 0, sizeof r);
            NMP_TRY(e, st->dp_ops->solve(st->dp, s->best, &r));
            nmp_eval_reset(s->ev, s->best);
            s->score = nmp_eval_score(s->ev);
            res->status = r.status;
            res->bound = r.bound;
            res->nodes = r.nodes;
            s->iterations += r.iterations;
        } else {
            s->stopped = true;
        }
    } else if (st->multi) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static, 1) num_threads(st->threads) if (st->threads > 1)
#endif
        for (int t = 0; t < st->threads; t++)
            run_slot(&st->slots[t], perm);
    } else {
        run_large(&st->slots[0], perm);
    }
    /* the best thread, the lowest index among equals */
    int win = 0;
    for (int t = 1; t < nslots; t++)
        if (st->slots[t].score > st->slots[win].score)
            win = t;
    for (int t = 0; t < nslots; t++) {
        const slot *s = &st->slots[t];
        res->iterations += s->iterations + nmp_anneal_moves(s->an) - s->moves0;
        if (st->slots[t].stopped && res->status != NMP_STATUS_OPTIMAL)
            res->status = nmp_clock_status(&st->slots[t].clk);
    }
    if (atomic_load(&st->stop) && res->status != NMP_STATUS_OPTIMAL)
        res->status = NMP_STATUS_INTERRUPTED;
    const slot *w = &st->slots[win];
    if (w->score > start_score)
        memcpy(perm, w->best, (size_t)pb->cols * sizeof *perm);
    NMP_TRY(e, nmp_score(pb, perm, &res->score));
    nmp_clock_tick(&st->clk, res->iterations, res->score, pb->row_bound, "auto", true);
out:
    return e;
}

const nmp_solver_ops nmp_auto_ops = {
    "auto",
    "default portfolio: dp when small, else multi-start annealing + LAP + lns, LAP when large",
    auto_params,
    auto_create,
    auto_solve,
    auto_destroy,
};

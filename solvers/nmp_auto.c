/* nmp_auto.c: the default portfolio: exact dp when small, else annealing, assignment moves, lns
 *
 * Plan by size (C = cols, R = rows, G = C / m groups, T = threads):
 *   C <= dp_cols (24) and dp built in: a short anneal (a fallback should dp be stopped), then the
 *       exact dp, which proves optimality (status OPTIMAL) and uses the T threads itself.
 *   C <= ms_cols (512): multi-start. Each of the T threads runs its own searches from the start
 *       perm, each one anneal -> assignment (LAP) rounds -> swap descent, then lns (if built) on
 *       its best; the answer is the best thread's (ties: the lowest thread index). Thread t
 *       draws from the seed mix(seed, t). Annealing dominates here: it is what finds the optimum
 *       of small instances (LAP and lns add little after it).
 *   larger: one search, its assignment moves spread over the T threads (the k x k weight matrix
 *       of a block by rows; the blocks' work is split in a fixed way, so the result does not
 *       depend on T): LAP rounds with random positions until they stall, a swap descent where its
 *       C^2 R / 2 pass is affordable, LAP again. Here LAP is by far the best value per second
 *       (annealing first lowers the result at 1024 x 1024 in equal time).
 * Budget. Without a time limit the work is fixed by the instance (deterministic): the anneal
 *   moves per thread are effort * clamp(1.5e7 * 128 / (R + 32), ...) so that one thread spends
 *   about 0.6-0.8 s on the reference 128 x 64 and the whole run aims at ~1 s at 64 columns, ~0.2-
 *   0.5 s at 256 x 256, 1-2 s at 512 x 512; at >= 1024 the LAP rounds' stall rule bounds the work
 *   (measured on 2 cores: ~2-4 s at 1024 x 1024, <= 60 s at 4096 x 4096; see the report).
 *   With a time limit, annealing is paced by the clock to use most of it, LAP rounds continue
 *   until the limit or until they stall, and everything stops at the limit.
 * Threads. For a fixed seed and thread count (and no binding time limit) the result is the same
 *   on every run. Below ms_cols more threads run more independent searches (the search of
 *   thread t is the same whatever T, so T + 1 threads never do worse than T); above, the result
 *   does not depend on T at all, only the time does.
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
    { "ms_cols", 512, 0, 1e9, "multi-start annealing up to this many columns, LAP above" },
    { "starts", 0, 0, 1e6, "searches per thread in multi-start (0: by size)" },
    { "lns", 1, 0, 1, "finish each thread with lns (when built)" },
    { "block", 256, 2, 1e6, "most groups per assignment (see lap)" },
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
} slot;

struct auto_state {
    const nmp_problem *pb;
    nmp_params par;
    double effort;
    int64_t dp_cols, ms_cols, starts, block;
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
    st->ms_cols = (int64_t)nmp_param_get(par, d, "ms_cols");
    st->starts = (int64_t)nmp_param_get(par, d, "starts");
    st->use_lns = nmp_param_get(par, d, "lns") != 0;
    st->block = (int64_t)nmp_param_get(par, d, "block");
    atomic_init(&st->stop, 0);
    int threads = par->threads;
#ifdef _OPENMP
    if (threads <= 0)
        threads = omp_get_max_threads();
#endif
    st->threads = NMP_MIN(NMP_MAX(threads, 1), AUTO_MAX_THREADS);
    st->dp_ops = nmp_solver_find("dp");
    st->lns_ops = st->use_lns ? nmp_solver_find("lns") : NULL;
    st->exact = st->dp_ops && pb->cols <= st->dp_cols;
    st->multi = !st->exact && pb->cols <= st->ms_cols;
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
            if (st->lns_ops)
                NMP_TRY(e, st->lns_ops->create(pb, &q, &s->lns, msg));
        }
    }
    *state = st;
    st = NULL;
out:
    auto_destroy(st);
    return e;
}

/* ------------------------------------------------------------- helpers */

/* LAP rounds with random positions until two in a row gain nothing; false if stopped. */
static bool lap_until_stall(slot *s)
{
    int idle = 0;
    bool stopped = false;
    while (idle < 2 && !stopped) {
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

/* Anneal moves per search and searches per thread when no time limit is set. */
static void plan(const auto_state *st, int64_t *moves, int64_t *starts)
{
    const nmp_problem *pb = st->pb;
    /* ~1.2e7 moves per second and thread at 128 rows; the cost of a move grows like rows + 32 */
    const double per_thread = st->effort * 1.5e7 * 128.0 / ((double)pb->rows + 32.0);
    int64_t k = st->starts;
    if (k <= 0)
        k = pb->cols <= 128 ? 1 : 2;
    *starts = k;
    *moves = (int64_t)NMP_MAX(1000.0, per_thread / (double)k);
}

/* One thread of the multi-start plan. */
static void run_slot(slot *s, const int32_t *start)
{
    auto_state *st = s->st;
    const nmp_problem *pb = st->pb;
    int64_t moves, starts;
    plan(st, &moves, &starts);
    const double limit = st->par.time_limit;
    memcpy(s->best, start, (size_t)pb->cols * sizeof *s->best);
    nmp_eval_reset(s->ev, start);
    s->score = nmp_eval_score(s->ev);
    bool running = true;
    for (int64_t r = 0; r < starts && running; r++) {
        nmp_eval_reset(s->ev, start);
        double pace = 0;
        if (limit > 0) { /* search r gets an equal share of 85 % of the remaining time */
            const double now = nmp_clock_elapsed(&s->clk);
            pace = now + (0.85 * limit - now) / (double)(starts - r);
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
    const nmp_problem *pb = s->st->pb;
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

/* nmp_auto.c: the default portfolio: exact dp when small, else annealing or iterated LAP
 *
 * Plans by size (C = cols, R = rows, G = C / m groups, T = threads):
 *   exact    C <= dp_cols (24): a short anneal (the answer should dp be stopped), then the
 *            exact dp, which proves optimality (status OPTIMAL) and uses the T threads itself.
 *   anneal   C <= sa_cols (160): T independent searches, one per thread, from the start perm:
 *            constant-temperature annealing (nmp_anneal.c) -> LAP rounds -> swap descent, then
 *            lns (m <= 4) with a budget of kicks, from the thread's best.
 *   ils      G < one_groups (256): T independent iterated-LAP searches, one per thread: LAP
 *            rounds (random positions) until two rounds gain nothing, a swap descent, LAP again,
 *            then kicks: a few random swaps, LAP rounds until they stall, kept if better.
 *   one      larger: one iterated-LAP search (no swap descent: at 1024^2 it cost ~0.3 s of a
 *            core for less than LAP rounds gain in that time) whose assignment moves use the T
 *            threads (one block's weights by rows, or blocks side by side above 1024 groups).
 * Why: measured on |N(0,1)| squares and the apex reference with one thread at equal time,
 * annealing wins up to ~128 columns (64^2: 51.8 vs 51.0 % efficacy; 128^2: 40.1 vs 39.4-39.8 %)
 * and finds the reference's optimum, lns's kicks (exact windows) help it there; iterated LAP wins
 * from 256 columns (256^2: 31.5 vs 30.8 %; 512^2: 24.4 vs 23.9 % at ~1 s), where annealing needs
 * too many sweeps, and lns adds nothing after LAP at 1024^2 (+0 % in 14 s).
 * The answer of the multi-search plans is the best search's, ties to the lowest thread index;
 * thread t draws from splitmix(seed, t).
 * Budget. Without a time limit the work is fixed by the instance, so the result depends only on
 * the seed and T:
 *   anneal   effort * 0.55 * 1.5e7 * 128 / (R + 32) moves per thread (~0.45 s of a core), at most
 *            effort * 2e4 * C * G, in one search up to 128 columns, two above; lns kicks
 *            effort * 0.4 s / (0.25 us * G * R), at most effort * 100 * G.
 *   ils      LAP rounds to the first stall capped at effort * 7e11 units, kicks until
 *            effort * 6e9 further units are spent (~1 s per thread).
 *   one      effort * ONE_UNITS (1e11) units of LAP rounds, but no fewer than 12 and no more
 *            than 28 rounds (times effort; at least 8 rounds within 4e9 units at any effort):
 *            rounds to the first stall, then kicks with the rest. Blocks of all groups up to
 *            1024 (MAX_BLOCK). Calibrated 2026-12-06 (docs/benchmarks.md) against the default
 *            before 2026-12-05 on nine |N(0,1)| instances from 64 x 2048 to 4096^2 and the six
 *            384 x 1536 MLP matrices of all-MiniLM-L6-v2: >= 97 % of its gain in <= 0.2 of its
 *            time; 1024^2 gets 28 rounds (0.5 core-seconds), 256 x 4096 18, 4096^2 12 (11
 *            core-seconds). Blocks of 1024 groups instead of 512 at 4096^2: 99.3 % of the former
 *            gain in 12 rounds, against 98.2 % in 32 rounds of 512 at about the same time.
 *   A round costs m * G * block * (R + block) units: the weights filled plus the block^3
 *   assignments (with R alone, 5 x 1792 was allowed ~1.7e5 rounds of 448^3 and ran for 800 s).
 * Proven optimal: a search whose best reaches the row bound (nmp_at_row_bound) stops there, and
 * the searches of higher index stop too; the answer is the lowest proven search's (so the result
 * stays the same on every run) with status OPTIMAL.
 *   Measured (|N(0,1)| squares, seed 1; core-seconds, the 2-core machine being shared with other
 *   jobs): 128 x 64 reference ~0.8 per thread; 64^2, 128^2, 256^2, 512^2 ~0.8-1 per thread;
 *   1024^2 ~0.5 (one search), 2048^2 ~3, 4096^2 ~11 since 2026-12-06 (before 2026-12-05:
 *   5.6, 27, 82).
 *   Efficacy: 64^2 51.8 %, 128^2 40.3 %, 256^2 31.5 %, 512^2 24.4 %, 1024^2 17.9 %, 2048^2
 *   13.4 %, 4096^2 10.0 % (osg, apex's default: 41.6, 32.4, 27.7, 21.3, 16.1, 12.0, 8.9 %).
 * Proof: up to exact_cols (64) columns at m <= 4, with GLPK, the answer goes to bnp with
 * effort * exact_nodes nodes and no heuristics of its own (fixed work); status OPTIMAL when it
 * proves, and its bound counts either way.
 * With a time limit every thread first runs LAP to a stall (a good answer early), annealing is
 * paced by the clock to 45 % of the limit, lns (created then, with the time left) and kicks use
 * the rest, and everything stops at the limit: the result then also depends on the machine.
 * paced=0 keeps the fixed work under a limit, which then only stops it (bnp's and colgen's first
 * incumbent: the same answer on every run that the limit does not cut).
 * LP stage: with a limit of at least lp_time (5 s) on at most lp_cols (256) columns, m <= 4, the
 * searches do their fixed work instead (the answer of a run without a limit, ~1 s) and bnp gets
 * the rest of the limit (LP bound, heuristic dive, lists, lns, branching): an answer never below
 * the fixed-work one, bnp's bound, OPTIMAL when it proves. Measured 2026-12-06: 256 x 256
 * certified within 0.047 % in 30 s on 2 cores (the paced searches: 39821 vs 39857, no bound);
 * the 512 x 512 LP alone takes 221 s, hence 256.
 * dp and lns run through nmp_subsolve (the driver's checks, the thread's clock); both are always
 * built. dp refuses more than its max_cols (28): auto then fails with dp's NMP_ERR_UNSUPPORTED
 * when dp_cols is raised beyond it, rather than quietly planning otherwise.
 * Device (par->device gpu or ref, or auto with a GPU from NMP_DEVICE_AUTO_COLS columns): the
 * plans above exact first run osg's device search (every stripe pair evaluated at once by the
 * backend each round; half of a time limit) and start from its answer.
 * Threads. For a fixed seed and thread count (and no binding time limit) the result is the same
 * on every run. In the anneal and ils plans more threads run more independent searches (the
 * search of thread t is the same whatever T, so T + 1 threads never do worse than T); in the
 * exact and one plans the result does not depend on T at all, only the time does.
 */
#include "nmp_solvers.h"

#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static const nmp_param_desc auto_params[] = {
    { "effort", 1, 0.001, 1000, "scale of the default work (no time limit)" },
    { "dp_cols", 24, 0, 30, "solve exactly with dp up to this many columns (0: never)" },
    { "sa_cols", 160, 0, 1e9, "anneal (one search per thread) up to this many columns" },
    { "one_groups", 256, 2, 1e12, "one LAP search on all threads from this many groups" },
    { "starts", 0, 0, 1e6, "anneal searches per thread (0: 1 up to 128 columns, else 2)" },
    { "lns", 1, 0, 1, "finish each annealing thread with lns (m <= 4)" },
    { "block", 0, 0, 1e6, "most groups per assignment (0: all up to 1024, else 1024)" },
    { "exact_cols", 64, 0, 1e6, "then try to prove optimality with bnp up to this many columns "
      "and m <= 4 (GLPK builds; 0: never)" },
    { "exact_nodes", 3000, 1, 1e9, "bnp's node limit there, times effort (fixed work)" },
    { "lp_cols", 256, 0, 1e6, "with a time limit of at least lp_time, up to this many columns "
      "(m <= 4, GLPK builds): the searches' fixed work, then bnp until the limit (LP bound, "
      "dive, branching; 0: never)" },
    { "lp_time", 5, 0, 1e9, "the shortest time limit that goes to bnp (lp_cols)" },
    { "paced", 1, 0, 1, "with a time limit, pace the searches by the clock to fill it (0: their "
      "fixed work, the limit only stops them)" },
    { 0 },
};

#define AUTO_MAX_THREADS 256
/* The one-search plan's work, times effort: ONE_UNITS units of LAP rounds (round_units), but
 * no fewer than ONE_MIN_ROUNDS and no more than ONE_MAX_ROUNDS rounds. Calibrated 2026-12-06 on
 * |N(0,1)| 1024^2..4096^2 and flat shapes against the former default (docs/benchmarks.md). */
#define ONE_UNITS 1e11
#define ONE_MIN_ROUNDS 12
#define ONE_MAX_ROUNDS 28
/* Whatever the effort, at least ONE_FLOOR_ROUNDS rounds within ONE_FLOOR_UNITS units (~0.2 s
 * of a core): the first rounds gain most (permute's effort 0.015 on all-MiniLM-L6-v2's
 * 384 x 1536 spaces: 2, 4, 8 rounds gain 1675, 1776, 1833). */
#define ONE_FLOOR_UNITS 4e9
#define ONE_FLOOR_ROUNDS 8
#define MAX_BLOCK 1024 /* default groups per assignment */

typedef enum plan_kind { PLAN_EXACT, PLAN_ANNEAL, PLAN_ILS, PLAN_ONE } plan_kind;

typedef struct auto_state auto_state;

/* One search (a thread's, or the one search of PLAN_ONE). */
typedef struct slot {
    auto_state *st;
    int index;
    nmp_eval *ev;
    nmp_anneal *an;
    nmp_lap_move *lm;
    int32_t *best;
    int32_t *work;           /* cols: lns's copy */
    double score;            /* of best */
    nmp_err err;             /* a failure inside the parallel region */
    nmp_rng rng;
    nmp_clock clk;
    bool stopped;            /* the clock stopped it (time limit or interrupt) */
    bool proven;             /* best reached the row bound: optimal */
    int64_t iterations;      /* LAP moves applied */
    int64_t moves0;          /* the annealer's move count when the solve began */
    int64_t rounds_left;     /* LAP rounds still allowed */
} slot;

struct auto_state {
    const nmp_problem *pb;
    nmp_params par;
    double effort;
    int64_t dp_cols, sa_cols, one_groups, starts, block;
    plan_kind plan;
    int64_t moves, nstarts;  /* anneal: moves per search, searches per thread */
    double kicks;            /* anneal: lns kicks per thread */
    bool use_lns;            /* the user's lns parameter */
    bool lns;                /* anneal plan: threads finish with lns */
    bool device;             /* osg's device search runs first (par->device) */
    int64_t exact_cols, exact_nodes; /* the bnp stage (0 columns: none) */
    bool lp;                 /* time limit: fixed-work searches, then bnp until the limit */
    bool paced;              /* the searches fill a time limit (a limit, and no lp stage) */
    int threads, nslots;     /* OpenMP threads; searches */
    slot *slots;
    nmp_msg *msg;            /* create's msg (may be NULL): dp's reasons */
    nmp_clock clk;
    atomic_int stop;         /* set when the user's callback asked to stop */
    atomic_int proven_by;    /* lowest index of a search that proved its best optimal */
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
 * callback; every thread stops once the user asked to, and once a search of lower index proved
 * its answer optimal. */
static int slot_progress(const nmp_progress *p, void *user)
{
    slot *s = user;
    auto_state *st = s->st;
    if (s->index == 0 && st->par.progress && st->par.progress(p, st->par.progress_user) != 0)
        atomic_store(&st->stop, 1);
    return atomic_load(&st->stop) || atomic_load(&st->proven_by) < s->index;
}

static void auto_destroy(void *p)
{
    auto_state *st = p;
    if (!st)
        return;
    for (int t = 0; st->slots && t < st->nslots; t++) {
        slot *s = &st->slots[t];
        nmp_eval_free(s->ev);
        nmp_anneal_free(s->an);
        nmp_lap_move_free(s->lm);
        nmp_free(s->best);
        nmp_free(s->work);
    }
    nmp_free(st->slots);
    nmp_free(st);
}

/* A parameter set for a sub-solver or the annealer of search s: its seed, one thread, the
 * user's time limit, progress through slot_progress; no named values (defaults). */
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

/* The plan and the annealing work of a thread without a time limit. */
static void choose_plan(auto_state *st)
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
    st->kicks = NMP_MAX(10.0, NMP_MIN(st->effort * 100.0 * (double)pb->groups,
                                      st->effort * 0.4 /
                                          (0.25e-6 * (double)pb->groups * (double)pb->rows)));
    if (pb->cols <= st->dp_cols)
        st->plan = PLAN_EXACT;
    else if (pb->cols <= st->sa_cols)
        st->plan = PLAN_ANNEAL;
    else if (pb->groups < st->one_groups)
        st->plan = PLAN_ILS;
    else
        st->plan = PLAN_ONE;
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
    st->sa_cols = (int64_t)nmp_param_get(par, d, "sa_cols");
    st->one_groups = (int64_t)nmp_param_get(par, d, "one_groups");
    st->starts = (int64_t)nmp_param_get(par, d, "starts");
    st->use_lns = nmp_param_get(par, d, "lns") != 0;
    st->block = (int64_t)nmp_param_get(par, d, "block");
    st->exact_cols = (int64_t)nmp_param_get(par, d, "exact_cols");
    st->exact_nodes = (int64_t)NMP_MAX(1.0, st->effort * nmp_param_get(par, d, "exact_nodes"));
    const double lp_cols = nmp_param_get(par, d, "lp_cols");
    const double lp_time = nmp_param_get(par, d, "lp_time");
    if (st->block <= 0)
        st->block = pb->groups <= MAX_BLOCK ? NMP_MAX(pb->groups, 2) : MAX_BLOCK;
    atomic_init(&st->stop, 0);
    int threads = par->threads;
#ifdef _OPENMP
    if (threads <= 0)
        threads = omp_get_max_threads();
#endif
    st->threads = NMP_MIN(NMP_MAX(threads, 1), AUTO_MAX_THREADS);
    st->msg = msg;
    choose_plan(st);
#ifdef NMP_HAVE_GLPK
    st->lp = st->plan != PLAN_EXACT && par->time_limit > 0 && par->time_limit >= lp_time &&
             (double)pb->cols <= lp_cols && pb->m <= 4;
#else
    (void)lp_cols;
    (void)lp_time;
#endif
    st->paced = par->time_limit > 0 && !st->lp && nmp_param_get(par, d, "paced") > 0;
    /* the device search: asked for (gpu, ref), or auto with a GPU at a size where it pays;
     * the exact plan stays on the CPU */
    st->device = st->plan != PLAN_EXACT &&
                 (par->device == NMP_DEVICE_GPU || par->device == NMP_DEVICE_REF ||
                  (par->device == NMP_DEVICE_AUTO && pb->cols >= NMP_DEVICE_AUTO_COLS &&
                   pb->m <= 8 && nmp_gpu_count() > 0));
    /* lns's kicks repair with pair windows; above m = 4 one kick took ~0.5 s (4:8, 16 x 64) */
    st->lns = st->use_lns && st->plan == PLAN_ANNEAL && pb->m <= 4;
    const bool multi = st->plan == PLAN_ANNEAL || st->plan == PLAN_ILS;
    st->nslots = multi ? st->threads : 1;
    st->slots = nmp_calloc((size_t)st->nslots, sizeof *st->slots);
    if (!st->slots) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    for (int t = 0; t < st->nslots; t++) {
        slot *s = &st->slots[t];
        s->st = st;
        s->index = t;
        const nmp_params q = sub_params(st, s);
        NMP_TRY(e, nmp_eval_create(pb, NULL, &s->ev));
        NMP_TRY(e, nmp_anneal_create(pb, &q, &s->an));
        if (st->plan != PLAN_EXACT)
            NMP_TRY(e, nmp_lap_move_create(pb, st->block, 1, multi ? 1 : st->threads, &s->lm));
        s->best = nmp_malloc((size_t)pb->cols * sizeof *s->best);
        s->work = nmp_malloc((size_t)pb->cols * sizeof *s->work);
        if (!s->best || !s->work) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
    }
    *state = st;
    st = NULL;
out:
    auto_destroy(st);
    return e;
}

/* ------------------------------------------------------------- helpers */

static void keep_if_better(slot *s)
{
    auto_state *st = s->st;
    const double now = nmp_eval_score(s->ev);
    if (now > s->score) {
        s->score = now;
        memcpy(s->best, nmp_eval_perm(s->ev), (size_t)st->pb->cols * sizeof *s->best);
    }
    if (!s->proven && nmp_at_row_bound(st->pb, s->score)) {
        s->proven = true;
        int low = atomic_load(&st->proven_by);
        while (s->index < low && !atomic_compare_exchange_weak(&st->proven_by, &low, s->index))
            ;
    }
}

/* True once search s has nothing left to do: its best is at the row bound (proven optimal), or
 * a search of lower index proved its own, which then is the answer (ties among proven searches go
 * to the lowest index, so a search stopped here at any moment cannot change the result). */
static bool done(slot *s)
{
    return s->proven || atomic_load(&s->st->proven_by) < s->index;
}

/* LAP rounds with random positions until two in a row gain nothing, the round budget is spent
 * or the score reaches the row bound (then kept: proven); false if stopped or done. */
static bool lap_until_stall(slot *s)
{
    int idle = 0;
    bool stopped = false;
    while (idle < 2 && !stopped && s->rounds_left > 0 && !done(s)) {
        s->rounds_left--;
        const double gain = nmp_lap_move_round(s->lm, s->ev, &s->rng, &s->clk, &s->iterations,
                                               &stopped);
        idle = gain > 0 ? 0 : idle + 1;
        if (gain > 0 && nmp_at_row_bound(s->st->pb, nmp_eval_score(s->ev)))
            keep_if_better(s);
    }
    return !stopped && !done(s);
}

/* Runs lns from the slot's best (nmp_subsolve on the thread's clock: with a time limit lns gets
 * the time that is left and kicks until then, else the plan's kicks) and keeps its answer if
 * better. */
static bool run_lns(slot *s)
{
    auto_state *st = s->st;
    const nmp_problem *pb = st->pb;
    if (!st->lns || done(s))
        return true;
    const bool timed = st->paced;
    if (timed && st->par.time_limit - nmp_clock_elapsed(&s->clk) <= 0.01)
        return false;
    nmp_params q = sub_params(st, s);
    nmp_result r;
    s->err = nmp_params_set(&q, "kicks", timed ? 1e12 : st->kicks);
    if (s->err != NMP_OK)
        return false;
    memcpy(s->work, s->best, (size_t)pb->cols * sizeof *s->work);
    s->err = nmp_subsolve(&nmp_lns_ops, pb, &q, &s->clk, 0, s->work, &r, NULL);
    if (s->err != NMP_OK)
        return false;
    nmp_eval_reset(s->ev, s->work);
    keep_if_better(s);
    return r.status != NMP_STATUS_INTERRUPTED && r.status != NMP_STATUS_TIME_LIMIT;
}

/* The annealing plan of one thread. */
static void run_anneal(slot *s, const int32_t *start)
{
    auto_state *st = s->st;
    const int64_t moves = st->moves, starts = st->nstarts;
    const double limit = st->paced ? st->par.time_limit : 0;
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
        running = running && !done(s);
    }
    if (running)
        running = run_lns(s);
    keep_if_better(s);
    s->stopped = !running && !done(s);
}

/* The units of one LAP round: m selections, each filling about G * block * R weight entries and
 * solving G / block assignments of block^3 steps: m * G * block * (R + block) (the assignment
 * term is what bounds flat matrices such as 5 x 1792, where R alone would allow ~1e5 rounds). */
static double round_units(const auto_state *st)
{
    const nmp_problem *pb = st->pb;
    const double blk = (double)NMP_MIN(st->block, pb->groups);
    return (double)pb->m * (double)pb->groups * blk * ((double)pb->rows + blk);
}

/* The one-search plan's budget in units: the work times effort, or the floor (not scaled) when
 * that is more. */
static double one_units(const auto_state *st)
{
    const double round = round_units(st);
    const double work = NMP_MIN(NMP_MAX(ONE_UNITS, ONE_MIN_ROUNDS * round), ONE_MAX_ROUNDS * round);
    const double floor = NMP_MIN(ONE_FLOOR_UNITS, ONE_FLOOR_ROUNDS * round);
    return NMP_MAX(st->effort * work, floor);
}

/* Iterated LAP from the start (plans ils and one): LAP rounds to the first stall capped at
 * `first` units, with `polish` a swap descent and LAP to a stall again, then kicks until
 * `entries` further units are spent (both budgets with effort already applied; entries < 0:
 * the rounds the first descent left). */
static void run_ils(slot *s, double first, double entries, bool polish)
{
    const auto_state *st = s->st;
    const nmp_problem *pb = st->pb;
    const bool timed = st->paced;
    const double round = round_units(st);
    s->rounds_left = timed ? INT64_MAX : (int64_t)NMP_MAX(2.0, first / round);
    bool running = lap_until_stall(s);
    if (polish) {
        running = running && nmp_anneal_polish(s->an, s->ev, &s->clk, false);
        running = running && lap_until_stall(s);
    }
    keep_if_better(s);
    /* Kicks while the budget lasts: random swaps touching up to 2 * 16 groups, LAP rounds until
     * they stall, kept if better, else back to the best. Measured at 1024^2: 18.2 % -> 18.5 %
     * efficacy with 5 kicks, where as many more LAP rounds alone gain 0.1 %. */
    const int64_t swaps = NMP_MAX(1, NMP_MIN(16, pb->groups / 16));
    if (!timed && entries >= 0)
        s->rounds_left = (int64_t)(entries / round);
    while (running && s->rounds_left > 0 && pb->groups > 1) {
        for (int64_t t = 0; t < swaps; t++) {
            const int64_t a = (int64_t)nmp_rng_below(&s->rng, (uint64_t)pb->cols);
            int64_t b = (int64_t)nmp_rng_below(&s->rng, (uint64_t)(pb->cols - pb->m));
            if (b >= a / pb->m * pb->m) /* skip a's own group */
                b += pb->m;
            nmp_eval_swap(s->ev, a, b);
        }
        running = lap_until_stall(s);
        if (nmp_eval_score(s->ev) > s->score)
            keep_if_better(s);
        else
            nmp_eval_reset(s->ev, s->best);
    }
    s->stopped = !running && !done(s);
}

/* The search of thread (or slot) s. */
static void run_slot(slot *s, const int32_t *start)
{
    const auto_state *st = s->st;
    memcpy(s->best, start, (size_t)st->pb->cols * sizeof *s->best);
    nmp_eval_reset(s->ev, start);
    s->score = nmp_eval_score(s->ev);
    if (st->plan == PLAN_ANNEAL)
        run_anneal(s, start);
    else if (st->plan == PLAN_ILS)
        run_ils(s, st->effort * 7e11, st->effort * 6e9, true);
    else /* one budget of rounds for the descent and then the kicks; no swap descent */
        run_ils(s, one_units(st), -1, false);
}

/* The exact plan: a quick anneal for a fallback, then dp. */
static nmp_err run_exact(auto_state *st, const int32_t *start, nmp_result *res)
{
    nmp_err e = NMP_OK;
    const nmp_problem *pb = st->pb;
    slot *s = &st->slots[0];
    memcpy(s->best, start, (size_t)pb->cols * sizeof *s->best);
    nmp_eval_reset(s->ev, start);
    s->score = nmp_eval_score(s->ev);
    s->stopped = !nmp_anneal_run(s->an, s->ev, &s->rng, &s->clk, 2000 * pb->cols, 0);
    keep_if_better(s);
    if (s->stopped || s->proven)
        return NMP_OK;
    nmp_result r;
    nmp_params q = st->par; /* the user's seed and threads, dp's defaults */
    q.count = 0;
    memcpy(s->work, s->best, (size_t)pb->cols * sizeof *s->work);
    NMP_TRY(e, nmp_subsolve(&nmp_dp_ops, pb, &q, &s->clk, 0, s->work, &r, st->msg));
    nmp_eval_reset(s->ev, s->work);
    keep_if_better(s);
    res->status = r.status;
    res->bound = r.bound;
    res->nodes = r.nodes;
    s->iterations += r.iterations;
    s->stopped = r.status == NMP_STATUS_TIME_LIMIT || r.status == NMP_STATUS_INTERRUPTED;
out:
    return e;
}

/* The proof stage: bnp from perm (the searches' answer as its incumbent) with effort *
 * exact_nodes nodes and no heuristics of its own, whose work would depend on the clock; or, in
 * the lp stage, bnp with its heuristics (the dive, lns) until the time limit. OPTIMAL when it
 * proves; otherwise its bound still counts, and its answer when it gained. Builds without GLPK
 * have no bnp: nothing happens; a shape bnp refuses is left as it is. */
static nmp_err run_bnp(auto_state *st, int32_t *perm, nmp_result *res)
{
#ifdef NMP_HAVE_GLPK
    const nmp_problem *pb = st->pb;
    slot *s = &st->slots[0];
    nmp_params q = st->par;
    nmp_result r;
    q.count = 0;
    nmp_params_set(&q, "heur_time", 0);
    if (!st->lp) {
        nmp_params_set(&q, "lns_time", 0);
        nmp_params_set(&q, "node_limit", (double)st->exact_nodes);
    }
    memcpy(s->work, perm, (size_t)pb->cols * sizeof *s->work);
    const nmp_err e = nmp_subsolve(&nmp_bnp_ops, pb, &q, &st->clk, 0, s->work, &r, NULL);
    if (e == NMP_ERR_UNSUPPORTED)
        return NMP_OK;
    if (e != NMP_OK)
        return e;
    if (r.score > r.start_score)
        memcpy(perm, s->work, (size_t)pb->cols * sizeof *perm);
    res->nodes += r.nodes;
    res->bound = NMP_MIN(res->bound, r.bound);
    if (r.status == NMP_STATUS_OPTIMAL)
        res->status = NMP_STATUS_OPTIMAL;
    else if (r.status == NMP_STATUS_TIME_LIMIT || r.status == NMP_STATUS_INTERRUPTED)
        res->status = r.status;
#else
    (void)st;
    (void)perm;
    (void)res;
#endif
    return NMP_OK;
}

static nmp_err auto_solve(void *p, int32_t *perm, nmp_result *res)
{
    nmp_err e = NMP_OK;
    auto_state *st = p;
    const nmp_problem *pb = st->pb;
    nmp_clock_start(&st->clk, &st->par);
    atomic_store(&st->stop, 0);
    atomic_store(&st->proven_by, INT_MAX);
    res->status = NMP_STATUS_FEASIBLE;
    const int nslots = st->nslots;
    for (int t = 0; t < nslots; t++) {
        slot *s = &st->slots[t];
        s->clk = st->clk;
        s->clk.progress = slot_progress;
        s->clk.user = s;
        s->stopped = false;
        s->proven = false;
        s->err = NMP_OK;
        s->iterations = 0;
        s->moves0 = nmp_anneal_moves(s->an);
        s->rounds_left = INT64_MAX;
        nmp_rng_seed(&s->rng, mix(st->par.seed, (uint64_t)t));
    }
    nmp_eval_reset(st->slots[0].ev, perm);
    res->start_score = nmp_eval_score(st->slots[0].ev);
    if (st->device) { /* osg on the device first (half of a time limit), the plan from there */
        nmp_params q = st->par;
        nmp_result r;
        q.count = 0;
        NMP_TRY(e, nmp_subsolve(&nmp_osg_ops, pb, &q, &st->clk, 0.5 * st->par.time_limit, perm,
                                &r, st->msg));
        res->iterations += r.iterations;
    }
    if (st->plan == PLAN_EXACT) {
        NMP_TRY(e, run_exact(st, perm, res));
    } else if (nslots > 1) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static, 1) num_threads(nslots)
#endif
        for (int t = 0; t < nslots; t++)
            run_slot(&st->slots[t], perm);
    } else {
        run_slot(&st->slots[0], perm);
    }
    for (int t = 0; t < nslots; t++)
        NMP_TRY(e, st->slots[t].err);
    /* the best search, the lowest index among equals; with a proven search, the lowest proven
     * one: searches of higher index stopped at any moment once it proved, so neither their
     * answers nor their work count (the result stays the same on every run) */
    int win = 0, last = nslots - 1;
    for (int t = 1; t < nslots; t++)
        if (st->slots[t].score > st->slots[win].score)
            win = t;
    if (atomic_load(&st->proven_by) < nslots) {
        win = last = atomic_load(&st->proven_by);
        res->status = NMP_STATUS_OPTIMAL;
    }
    for (int t = 0; t <= last; t++) {
        const slot *s = &st->slots[t];
        res->iterations += s->iterations + nmp_anneal_moves(s->an) - s->moves0;
        if (s->stopped && res->status != NMP_STATUS_OPTIMAL)
            res->status = nmp_clock_status(&s->clk);
    }
    if (atomic_load(&st->stop) && res->status != NMP_STATUS_OPTIMAL)
        res->status = NMP_STATUS_INTERRUPTED;
    const slot *w = &st->slots[win];
    if (w->score > res->start_score)
        memcpy(perm, w->best, (size_t)pb->cols * sizeof *perm);
    if ((st->lp || (st->plan != PLAN_EXACT && pb->cols <= st->exact_cols && pb->m <= 4)) &&
        !nmp_at_row_bound(pb, w->score) && res->status == NMP_STATUS_FEASIBLE)
        NMP_TRY(e, run_bnp(st, perm, res));
    NMP_TRY(e, nmp_score(pb, perm, &res->score));
    if (nmp_at_row_bound(pb, res->score))
        res->status = NMP_STATUS_OPTIMAL;
    if (res->status == NMP_STATUS_OPTIMAL)
        res->bound = res->score;
    nmp_clock_tick(&st->clk, res->iterations, res->score, pb->row_bound, "auto", true);
out:
    return e;
}

const nmp_solver_ops nmp_auto_ops = {
    "auto",
    "default portfolio: dp when small, annealing + lns up to 160 columns, iterated LAP above",
    auto_params,
    auto_create,
    auto_solve,
    auto_destroy, 1,
};

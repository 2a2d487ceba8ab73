/* nmp_swap.c: channel swap: best-improvement pairwise swaps across groups, with optional escapes
 *
 * Neighbourhood: exchange two columns that sit in different groups (C^2 (1 - 1/G) / 2 moves).
 * Step: apply the best improving swap; repeat until none improves (a 2-swap local optimum).
 * Speed: a table holds, for every pair of groups (g, h), its best swap and delta. A swap changes
 * only groups g and h, so only the 2G - 3 pairs that touch them are re-evaluated (m^2 deltas of
 * O(rows) each), and the next move is a scan of the table. This is the TETRIS channel swap as apex
 * adapts it to 2:4, without its batching of non-conflicting swaps (one move at a time keeps the
 * search deterministic and is never worse per move).
 * Escapes ("bounded regressions", apex): swap two random columns in different groups,
 * re-converge, keep the result only if it beats the best so far; otherwise go back.
 * Deltas are float sums; each applied move is checked against the exact double group scores and
 * undone if it did not improve, so the score rises strictly and the descent ends.
 * Clock: re-evaluating a group's pairs costs G m^2 rows (67 M entries at 4096^2), so a time
 * limit is looked at every ~SWAP_CHECK_WORK entries of it and every SWAP_CHECK_ROWS table rows of
 * a scan; a limit then stops the search (the table may be part stale: it is not used again). */
#include "nmp_solvers.h"

#include <string.h>

#define SWAP_CHECK_WORK 1048576.0 /* delta rows evaluated between two looks at the clock */
#define SWAP_CHECK_ROWS 64        /* table rows g scanned between two looks at the clock */

static const nmp_param_desc swap_params[] = {
    { "escapes", 0, 0, 1e9, "random escape attempts after convergence (apex: 100)" },
    { 0 },
};

typedef struct swap_state {
    const nmp_problem *pb;
    nmp_eval *ev;
    nmp_rng rng;
    nmp_clock clock;
    int64_t escapes, moves;
    int64_t groups;
    float *best;        /* best delta of pair (g, h), g < h, at g * groups + h */
    uint16_t *arg;      /* its swap as x * m + y */
    uint8_t *dirty;     /* groups changed since the last accepted state */
    int32_t *keep;      /* best perm so far */
    double *deltas;     /* m * m scratch */
    int64_t every;      /* pairs evaluated between two looks at the clock */
} swap_state;

static void swap_destroy(void *p)
{
    swap_state *st = p;
    if (!st)
        return;
    nmp_eval_free(st->ev);
    nmp_free(st->best);
    nmp_free(st->arg);
    nmp_free(st->dirty);
    nmp_free(st->keep);
    nmp_free(st->deltas);
    nmp_free(st);
}

static nmp_err swap_create(const nmp_problem *pb, const nmp_params *par, void **state,
                           nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    (void)msg;
    swap_state *st = nmp_calloc(1, sizeof *st);
    if (!st)
        return NMP_ERR_NOMEM;
    const size_t pairs = (size_t)pb->groups * (size_t)pb->groups;
    st->pb = pb;
    st->groups = pb->groups;
    st->escapes = (int64_t)nmp_param_get(par, swap_params, "escapes");
    st->every = (int64_t)NMP_MAX(1.0, SWAP_CHECK_WORK / ((double)pb->m * pb->m * (double)pb->rows));
    nmp_rng_seed(&st->rng, par->seed);
    nmp_clock_start(&st->clock, par);
    st->best = nmp_malloc(pairs * sizeof *st->best);
    st->arg = nmp_malloc(pairs * sizeof *st->arg);
    st->dirty = nmp_calloc((size_t)pb->groups, 1);
    st->keep = nmp_malloc((size_t)pb->cols * sizeof *st->keep);
    st->deltas = nmp_malloc((size_t)pb->m * (size_t)pb->m * sizeof *st->deltas);
    if (!st->best || !st->arg || !st->dirty || !st->keep || !st->deltas) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    NMP_TRY(e, nmp_eval_create(pb, NULL, &st->ev));
    *state = st;
    st = NULL;
out:
    swap_destroy(st);
    return e;
}

/* best[g, h] = max over the m^2 swaps between groups g < h */
static void eval_pair(swap_state *st, int64_t g, int64_t h)
{
    const int mm = st->pb->m * st->pb->m;
    nmp_eval_pair_deltas(st->ev, g, h, st->deltas);
    int arg = 0;
    for (int k = 1; k < mm; k++)
        if (st->deltas[k] > st->deltas[arg])
            arg = k;
    st->best[g * st->groups + h] = (float)st->deltas[arg];
    st->arg[g * st->groups + h] = (uint16_t)arg;
}

/* The pairs of group g; false (some left stale) when the time limit passed. */
static bool eval_group(swap_state *st, int64_t g)
{
    for (int64_t h = 0; h < st->groups; h++) {
        if (h != g)
            eval_pair(st, NMP_MIN(g, h), NMP_MAX(g, h));
        if ((h + 1) % st->every == 0 && nmp_clock_expired(&st->clock))
            return false;
    }
    return true;
}

/* Re-evaluates the pairs of every dirty group; false if the clock stopped it. */
static bool refresh_dirty(swap_state *st)
{
    for (int64_t g = 0; g < st->groups; g++)
        if (st->dirty[g]) {
            const bool complete = eval_group(st, g);
            st->dirty[g] = 0;
            if (!complete || nmp_clock_tick(&st->clock, st->moves, nmp_eval_score(st->ev),
                               st->pb->row_bound, "swap", false))
                return false;
        }
    return true;
}

/* Best-improvement descent from the current state; false if the clock stopped it. Marks every
 * group it changes in changed[] (if not NULL). */
static bool descend(swap_state *st, uint8_t *changed)
{
    const int64_t groups = st->groups;
    const int m = st->pb->m;
    for (;;) {
        float top = 0;
        int64_t tg = -1, th = -1;
        for (int64_t g = 0; g < groups; g++) {
            for (int64_t h = g + 1; h < groups; h++)
                if (st->best[g * groups + h] > top) {
                    top = st->best[g * groups + h];
                    tg = g;
                    th = h;
                }
            if ((g + 1) % SWAP_CHECK_ROWS == 0 && nmp_clock_expired(&st->clock))
                return false;
        }
        if (tg < 0)
            return true;
        const int arg = st->arg[tg * groups + th];
        const int64_t a = tg * m + arg / m, b = th * m + arg % m;
        const double before = nmp_eval_score(st->ev);
        nmp_eval_swap(st->ev, a, b);
        if (!(nmp_eval_score(st->ev) > before)) { /* rounding: not a real gain */
            nmp_eval_swap(st->ev, a, b);
            st->best[tg * groups + th] = 0;
            continue;
        }
        st->moves++;
        if (changed)
            changed[tg] = changed[th] = 1;
        if (!eval_group(st, tg) || !eval_group(st, th) ||
            nmp_clock_tick(&st->clock, st->moves, nmp_eval_score(st->ev), st->pb->row_bound,
                           "swap", false))
            return false;
    }
}

static nmp_err swap_solve(void *p, int32_t *perm, nmp_result *res)
{
    swap_state *st = p;
    const nmp_problem *pb = st->pb;
    const int m = pb->m;
    nmp_eval_reset(st->ev, perm);
    st->moves = 0;
    memset(st->dirty, 1, (size_t)st->groups);
    res->status = NMP_STATUS_FEASIBLE;
    bool running = refresh_dirty(st) && descend(st, NULL);
    memcpy(st->keep, nmp_eval_perm(st->ev), (size_t)pb->cols * sizeof *perm);
    double best = nmp_eval_score(st->ev);
    for (int64_t t = 0; running && t < st->escapes && st->groups > 1; t++) {
        const int64_t a = (int64_t)nmp_rng_below(&st->rng, (uint64_t)pb->cols);
        int64_t b = (int64_t)nmp_rng_below(&st->rng, (uint64_t)(pb->cols - m));
        if (b >= a / m * m) /* skip a's own group */
            b += m;
        memset(st->dirty, 0, (size_t)st->groups);
        st->dirty[a / m] = st->dirty[b / m] = 1;
        nmp_eval_swap(st->ev, a, b);
        running = refresh_dirty(st);
        st->dirty[a / m] = st->dirty[b / m] = 1;
        running = running && descend(st, st->dirty);
        if (nmp_eval_score(st->ev) > best) {
            best = nmp_eval_score(st->ev);
            memcpy(st->keep, nmp_eval_perm(st->ev), (size_t)pb->cols * sizeof *perm);
        } else {
            nmp_eval_reset(st->ev, st->keep);
            running = running && refresh_dirty(st);
        }
    }
    res->iterations = st->moves;
    if (!running)
        res->status = nmp_clock_status(&st->clock);
    memcpy(perm, st->keep, (size_t)pb->cols * sizeof *perm);
    if (nmp_eval_score(st->ev) > best) /* stopped mid-descent above the kept best */
        memcpy(perm, nmp_eval_perm(st->ev), (size_t)pb->cols * sizeof *perm);
    return NMP_OK;
}

const nmp_solver_ops nmp_swap_ops = {
    "swap", "channel swap: best-improvement pairwise swaps across groups, with escapes",
    swap_params, swap_create, swap_solve, swap_destroy, 0,
};

/* nmp_lns.c: large-neighbourhood search: exact re-partition of k chosen groups at a time */
#include "nmp_solvers.h"

#include <math.h>
#include <string.h>

/*
 * Move: choose k groups (k*m columns, param `window`), re-partition their columns optimally with
 * the window solver (nmp_window.c) and apply the result when it gains. This generalises OSG's 2-
 * and 3-stripe windows, but instead of sweeping all C(G, k) windows it samples them (G = cols/m
 * groups), by four strategies:
 *   random    k distinct groups, uniformly;
 *   pruned    k groups drawn with probability proportional to their pruned mass
 *             (sum of their saliencies minus what they keep): where the loss is;
 *   conflict  a random seed group g, then the k-1 groups h with the largest
 *                 c(g, h) = sum_j max(0, vn1_g(j) - vn_h(j)) + max(0, vn1_h(j) - vn_g(j))
 *             (times a random factor in [0.5, 1.5)), vn the smallest kept and vn1 the largest
 *             pruned value of a row: rows where one group prunes a value the other would keep.
 *             Above 256 other groups, 256 random candidates are scored;
 *   chain     as conflict, but each further partner maximises its conflict with the whole
 *             window so far.
 * Strategies are chosen at random with probability proportional to 1 + 20 * (their recent
 * success rate, an exponential average over ~50 uses), so the ones that pay get the time
 * (on |N(0,1)| 256^2, 16-column windows: conflict or chain alone reach ~39800 where random or
 * pruned alone stop at ~39758; identity 39008).
 * Descent: windows until max_fail in a row give nothing (auto: 20 + 4 G).
 * Kicks (iterated local search): from the accepted perm, swap kick_swaps random pairs of
 * columns in different groups, then repair: every changed group in turn is tried with other
 * groups in windows of kick_window columns (pairs at 2:4, as in OSG: with every other group, or
 * above 64 of them with the 64 of most conflict among 256 drawn; windows of more groups use
 * kick_fail partner sets drawn by the strategies), groups that change are queued again, until
 * the queue is empty. The result is accepted if it is no worse, or else with probability
 * exp(-loss / T), T = kick_temp * kept / cols (the loss of a kick scales like the kept score per
 * column, so the default suits any size); otherwise the changed groups go back. The best perm
 * seen is returned. Default kicks: clamp(4.2e6 / (min(G-1, 64) * rows), 100, 4000), about a
 * second of repairs on one core here (a repair visit costs ~min(G-1, 64) * rows).
 * Window size, measured per time (one core, 2:4, |N(0,1)| squares): a descent with 12 columns
 * takes 0.14 s at 256^2, 0.56 s at 512^2, 5.7 s at 1024^2; with 16 columns 0.6, 4.3 and 18 s
 * for a slightly better local optimum, which kicks from the 12-column descent overtake in that
 * time, hence the default 12. On apex's 128 x 64 reference (optimum 2926.952, proven by bnp)
 * descents stop at 2921-2925, local optima that differ from the optimum in 11-15 of the 16
 * groups; the default run (2187 kicks, ~1 s) reaches the optimum for 8 of 10 seeds (1000
 * kicks, 0.47 s: 4 of 10). Default runs on |N(0,1)| squares against osg's defaults (kept, one
 * core): 256^2 39823-39828 in 1.7 s (osg 39716 in 0.2 s), 512^2 158414-158420 in 1.7 s (osg
 * 158249 in 1.2 s), 1024^2 630619-630666 in 7.3 s (osg 630271 in 7.3 s); the descent alone
 * already beats osg: 39776 in 0.14 s, 158264 in 0.55 s, 630403 in 5.7 s.
 * Stop: after the kicks, `iters` windows, the time limit or an interrupt. When the window holds
 * every group the problem is solved exactly in one move (status OPTIMAL). The clock is ticked
 * before every window; a window large enough to take over ~1 ms (20+ columns at 2:4) also looks
 * at the limit inside its solve (nmp_window_set_clock) and gives up (no move) once it passes.
 * Gains are judged in the window solver's arithmetic and must exceed 1e-9 of the window's value,
 * so every move raises the score (see nmp_osg.c). Single-threaded: one seed, one result; the
 * portfolio runs solvers side by side.
 */

static const nmp_param_desc lns_params[] = {
    { "window", 12, 4, 32, "columns per window in the descent (k = window/m groups, >= 2)" },
    { "max_fail", 0, 0, 1e12, "stop after this many windows in a row without gain (0: 20 + 4G)" },
    { "iters", 0, 0, 1e15, "most windows to try (0: no limit)" },
    { "strategy", -1, -1, 3, "-1 adaptive, 0 random, 1 pruned mass, 2 conflict, 3 chain" },
    { "kicks", -1, -1, 1e12, "perturbations after the descent (-1: auto, see nmp_lns.c)" },
    { "kick_swaps", 2, 1, 1e6, "random swaps per kick" },
    { "kick_window", 8, 4, 32, "columns per window in the repairs after a kick" },
    { "kick_fail", 30, 1, 1e12, "partner sets tried per changed group in a repair (k > 2)" },
    { "kick_temp", 0.01, 0, 1e9, "accept a loss w.p. exp(-loss/T), T = kick_temp * kept/cols" },
    { 0 },
};

#define LNS_TOL 1e-9
#define LNS_CANDIDATES 256
#define LNS_PARTNERS 64      /* partners of a repaired group in pair windows, above that many */
#define LNS_STRATEGIES 4

typedef struct lns {
    const nmp_problem *pb;
    int m, k, strategy;          /* k: groups per window now (kd in descents, kr in repairs) */
    int kd, kr;
    int64_t groups, max_fail, iters, kicks, kick_swaps, kick_fail;
    double kick_temp;
    nmp_eval *ev;
    nmp_window *win;
    nmp_params par;              /* seed, time limit and progress callback of each solve */
    nmp_rng rng;
    nmp_clock clock;
    bool cut;                    /* the last window solve was stopped by the time limit */
    double best_score;           /* for progress reports */
    double rate[LNS_STRATEGIES]; /* recent success rate of each strategy */
    double *coltot;              /* saliency total of each source column */
    double *gtot;                /* of each group */
    double *weight;              /* G scratch: roulette weights / conflict scores */
    int64_t *order;              /* G: a permutation of the groups (random picks) */
    int64_t *cand;               /* G scratch: conflict candidates */
    int64_t *pick;               /* the k chosen groups */
    int32_t *in, *out;           /* k*m columns */
    uint8_t *taken;              /* G flags */
    uint8_t *changed;            /* G: groups changed since the accepted perm */
    int64_t *focus;              /* the changed groups, in order (nfocus of them) */
    int64_t nfocus;
    int64_t *queue;              /* G: groups to repair around after a kick (circular) */
    uint8_t *queued;             /* G flags */
    int64_t qhead, qlen;
    int64_t seed;                /* >= 0: the seed group of the next window */
    bool kicking;                /* changed groups are queued for repair */
    int32_t *acc;                /* cols: the accepted perm (kicks) */
    int32_t *best;               /* cols: the best perm */
    int64_t *glist;              /* G scratch */
    int32_t *clist;              /* cols scratch */
} lns;

static void lns_destroy(void *p)
{
    lns *l = p;
    if (!l)
        return;
    nmp_eval_free(l->ev);
    nmp_window_free(l->win);
    nmp_free(l->coltot);
    nmp_free(l->gtot);
    nmp_free(l->weight);
    nmp_free(l->order);
    nmp_free(l->cand);
    nmp_free(l->pick);
    nmp_free(l->in);
    nmp_free(l->out);
    nmp_free(l->taken);
    nmp_free(l->changed);
    nmp_free(l->focus);
    nmp_free(l->queue);
    nmp_free(l->queued);
    nmp_free(l->acc);
    nmp_free(l->best);
    nmp_free(l->glist);
    nmp_free(l->clist);
    nmp_free(l);
}

static nmp_err lns_create(const nmp_problem *pb, const nmp_params *par, void **state, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    lns *l = nmp_calloc(1, sizeof *l);
    *state = NULL;
    if (!l)
        return NMP_ERR_NOMEM;
    l->pb = pb;
    l->m = pb->m;
    l->groups = pb->groups;
    const int window = (int)nmp_param_get(par, lns_params, "window");
    const int kick_window = (int)nmp_param_get(par, lns_params, "kick_window");
    l->kd = (int)NMP_MIN((int64_t)NMP_MAX(2, window / pb->m), pb->groups);
    l->kr = (int)NMP_MIN((int64_t)NMP_MAX(2, kick_window / pb->m), pb->groups);
    l->k = NMP_MAX(l->kd, l->kr);
    const double max_fail = nmp_param_get(par, lns_params, "max_fail");
    l->max_fail = max_fail > 0 ? (int64_t)max_fail : 20 + 4 * pb->groups;
    l->iters = (int64_t)nmp_param_get(par, lns_params, "iters");
    l->strategy = (int)nmp_param_get(par, lns_params, "strategy");
    const double kicks = nmp_param_get(par, lns_params, "kicks");
    /* auto: a repair visit costs ~partners * rows; 4.2e6 of it is ~1 s here */
    const double partners = (double)NMP_MAX(1, NMP_MIN(pb->groups - 1, LNS_PARTNERS));
    const double kicks_auto = 4.2e6 / (partners * (double)pb->rows);
    l->kicks = kicks >= 0 ? (int64_t)kicks : (int64_t)NMP_MAX(100.0, NMP_MIN(4000.0, kicks_auto));
    l->kick_swaps = (int64_t)nmp_param_get(par, lns_params, "kick_swaps");
    l->kick_temp = nmp_param_get(par, lns_params, "kick_temp");
    l->kick_fail = (int64_t)nmp_param_get(par, lns_params, "kick_fail");
    l->par = *par;
    const size_t groups = (size_t)pb->groups, kc = (size_t)l->k * (size_t)pb->m;
    l->coltot = nmp_malloc((size_t)pb->cols * sizeof *l->coltot);
    l->gtot = nmp_malloc(groups * sizeof *l->gtot);
    l->weight = nmp_malloc(groups * sizeof *l->weight);
    l->order = nmp_malloc(groups * sizeof *l->order);
    l->cand = nmp_malloc(groups * sizeof *l->cand);
    l->pick = nmp_malloc((size_t)l->k * sizeof *l->pick);
    l->in = nmp_malloc(kc * sizeof *l->in);
    l->out = nmp_malloc(kc * sizeof *l->out);
    l->taken = nmp_calloc(groups, 1);
    l->changed = nmp_calloc(groups, 1);
    l->focus = nmp_malloc(groups * sizeof *l->focus);
    l->queue = nmp_malloc(groups * sizeof *l->queue);
    l->queued = nmp_calloc(groups, 1);
    l->acc = nmp_malloc((size_t)pb->cols * sizeof *l->acc);
    l->best = nmp_malloc((size_t)pb->cols * sizeof *l->best);
    l->glist = nmp_malloc(groups * sizeof *l->glist);
    l->clist = nmp_malloc((size_t)pb->cols * sizeof *l->clist);
    if (!l->coltot || !l->gtot || !l->weight || !l->order || !l->cand || !l->pick || !l->in ||
        !l->out || !l->taken || !l->changed || !l->focus || !l->acc || !l->best || !l->glist ||
        !l->clist || !l->queue || !l->queued) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    nmp_msg why = { { 0 } };
    e = nmp_window_create(pb, NMP_MAX(1, l->k), &l->win, &why);
    if (e == NMP_ERR_UNSUPPORTED)
        e = nmp_fail(msg, e, "lns: window=%d, kick_window=%d: %s", l->kd * l->m, l->kr * l->m,
                     why.text);
    if (e != NMP_OK)
        goto out;
    nmp_window_set_clock(l->win, &l->clock); /* large windows give up once the limit passes */
    NMP_TRY(e, nmp_eval_create(pb, NULL, &l->ev));
    for (int64_t i = 0; i < pb->cols; i++) {
        const float *c = nmp_col(pb, i);
        double t = 0;
        for (int64_t j = 0; j < pb->rows; j++)
            t += (double)c[j];
        l->coltot[i] = t;
    }
    *state = l;
    l = NULL;
out:
    lns_destroy(l);
    return e;
}

static void mark(lns *l, int64_t g)
{
    if (!l->changed[g]) {
        l->changed[g] = 1;
        l->focus[l->nfocus++] = g;
    }
    if (l->kicking && !l->queued[g]) {
        l->queued[g] = 1;
        l->queue[(l->qhead + l->qlen++) % l->groups] = g;
    }
}

static void clear_marks(lns *l)
{
    for (int64_t t = 0; t < l->nfocus; t++)
        l->changed[l->focus[t]] = 0;
    l->nfocus = 0;
}

/* The seed group of a window: the one being repaired, else uniform. */
static int64_t seed_group(lns *l)
{
    if (l->seed >= 0)
        return l->seed;
    return (int64_t)nmp_rng_below(&l->rng, (uint64_t)l->groups);
}

static void group_total(lns *l, int64_t g)
{
    const int32_t *perm = nmp_eval_perm(l->ev);
    double t = 0;
    for (int u = 0; u < l->m; u++)
        t += l->coltot[perm[g * l->m + u]];
    l->gtot[g] = t;
}

/* k distinct groups, uniformly (partial Fisher-Yates over order[]). */
static void pick_random(lns *l)
{
    if (l->seed >= 0) { /* the group being repaired first */
        const int64_t g = seed_group(l);
        for (int64_t t = 0; t < l->groups; t++)
            if (l->order[t] == g) {
                l->order[t] = l->order[0];
                l->order[0] = g;
                break;
            }
        l->pick[0] = g;
        for (int t = 1; t < l->k; t++) {
            const int64_t r = t + (int64_t)nmp_rng_below(&l->rng, (uint64_t)(l->groups - t));
            const int64_t x = l->order[t];
            l->order[t] = l->order[r];
            l->order[r] = x;
            l->pick[t] = l->order[t];
        }
        return;
    }
    for (int t = 0; t < l->k; t++) {
        const int64_t r = t + (int64_t)nmp_rng_below(&l->rng, (uint64_t)(l->groups - t));
        const int64_t x = l->order[t];
        l->order[t] = l->order[r];
        l->order[r] = x;
        l->pick[t] = l->order[t];
    }
}

/* k distinct groups with probability proportional to pruned mass (uniform if none prunes). */
static void pick_pruned(lns *l)
{
    const int64_t G = l->groups;
    for (int64_t g = 0; g < G; g++)
        l->weight[g] = NMP_MAX(0.0, l->gtot[g] - nmp_eval_group_score(l->ev, g));
    for (int t = 0; t < l->k; t++) {
        double total = 0;
        int64_t last = -1;
        for (int64_t g = 0; g < G; g++)
            if (l->weight[g] > 0) {
                total += l->weight[g];
                last = g;
            }
        int64_t g = last;
        if (last >= 0) {
            double x = nmp_rng_uniform(&l->rng) * total;
            for (int64_t h = 0; h < last; h++)
                if (l->weight[h] > 0) {
                    if (x < l->weight[h]) {
                        g = h;
                        break;
                    }
                    x -= l->weight[h];
                }
        } else {
            do
                g = (int64_t)nmp_rng_below(&l->rng, (uint64_t)G);
            while (l->taken[g]);
        }
        l->pick[t] = g;
        l->taken[g] = 1;
        l->weight[g] = 0;
    }
    for (int t = 0; t < l->k; t++)
        l->taken[l->pick[t]] = 0;
}

/* c(g, h) = sum_j max(0, vn1_g - vn_h) + max(0, vn1_h - vn_g) */
static double conflict(const lns *l, int64_t g, int64_t h)
{
    const int64_t rows = l->pb->rows;
    const float *vng = l->ev->vn + g * rows, *vn1g = l->ev->vn1 + g * rows;
    const float *vnh = l->ev->vn + h * rows, *vn1h = l->ev->vn1 + h * rows;
    double total = 0;
    for (int64_t j0 = 0; j0 < rows; j0 += 64) {
        const int64_t j1 = NMP_MIN(rows, j0 + 64);
        float part = 0;
        for (int64_t j = j0; j < j1; j++)
            part += NMP_MAX(0.0f, vn1g[j] - vnh[j]) + NMP_MAX(0.0f, vn1h[j] - vng[j]);
        total += (double)part;
    }
    return total;
}

/* A random seed group and the k-1 groups that conflict most with it. */
static void pick_conflict(lns *l, bool chain)
{
    const int64_t G = l->groups;
    const int64_t g = seed_group(l);
    int64_t *cand = l->cand, ncand = 0;
    for (int64_t h = 0; h < G; h++)
        if (h != g)
            cand[ncand++] = h;
    if (ncand > LNS_CANDIDATES) { /* LNS_CANDIDATES distinct random others: partial shuffle */
        for (int64_t t = 0; t < LNS_CANDIDATES; t++) {
            const int64_t r = t + (int64_t)nmp_rng_below(&l->rng, (uint64_t)(ncand - t));
            const int64_t x = cand[t];
            cand[t] = cand[r];
            cand[r] = x;
        }
        ncand = LNS_CANDIDATES;
    }
    for (int64_t c = 0; c < ncand; c++)
        l->weight[c] = conflict(l, g, cand[c]) * (0.5 + nmp_rng_uniform(&l->rng));
    l->pick[0] = g;
    for (int t = 1; t < l->k; t++) { /* selection of the top k-1, first maximum kept */
        int64_t best = t - 1;
        for (int64_t c = t; c < ncand; c++)
            if (l->weight[c] > l->weight[best])
                best = c;
        const double w = l->weight[t - 1];
        const int64_t x = cand[t - 1];
        l->weight[t - 1] = l->weight[best];
        cand[t - 1] = cand[best];
        l->weight[best] = w;
        cand[best] = x;
        l->pick[t] = cand[t - 1];
        if (chain) /* the next partner conflicts with the window so far */
            for (int64_t c = t; c < ncand; c++)
                l->weight[c] += conflict(l, l->pick[t], cand[c]) * (0.5 + nmp_rng_uniform(&l->rng));
    }
}

/* cand[0..LNS_PARTNERS-1] = the groups of largest conflict with g (of LNS_CANDIDATES random
 * others), in decreasing order; needs G - 1 > LNS_PARTNERS. */
static void rank_partners(lns *l, int64_t g)
{
    const int64_t G = l->groups;
    int64_t *cand = l->cand, ncand = 0;
    for (int64_t h = 0; h < G; h++)
        if (h != g)
            cand[ncand++] = h;
    if (ncand > LNS_CANDIDATES) {
        for (int64_t t = 0; t < LNS_CANDIDATES; t++) {
            const int64_t r = t + (int64_t)nmp_rng_below(&l->rng, (uint64_t)(ncand - t));
            const int64_t x = cand[t];
            cand[t] = cand[r];
            cand[r] = x;
        }
        ncand = LNS_CANDIDATES;
    }
    for (int64_t c = 0; c < ncand; c++)
        l->weight[c] = conflict(l, g, cand[c]);
    for (int64_t t = 0; t < LNS_PARTNERS; t++) { /* selection, first maximum kept */
        int64_t best = t;
        for (int64_t c = t + 1; c < ncand; c++)
            if (l->weight[c] > l->weight[best])
                best = c;
        const double w = l->weight[t];
        const int64_t x = cand[t];
        l->weight[t] = l->weight[best];
        cand[t] = cand[best];
        l->weight[best] = w;
        cand[best] = x;
    }
}

static int choose_strategy(lns *l)
{
    if (l->strategy >= 0)
        return l->strategy;
    double w[LNS_STRATEGIES], total = 0;
    for (int s = 0; s < LNS_STRATEGIES; s++)
        total += w[s] = 1.0 + 20.0 * l->rate[s];
    double x = nmp_rng_uniform(&l->rng) * total;
    for (int s = 0; s < LNS_STRATEGIES - 1; s++) {
        if (x < w[s])
            return s;
        x -= w[s];
    }
    return LNS_STRATEGIES - 1;
}

/* One window: returns true when it gained. */
static bool solve_pick(lns *l);

/* One window chosen by a strategy: true when it gained. */
static bool step(lns *l, int strategy)
{
    if (strategy == 0)
        pick_random(l);
    else if (strategy == 1)
        pick_pruned(l);
    else
        pick_conflict(l, strategy == 3);
    return solve_pick(l);
}

/* Re-partitions the groups pick[0..k-1]; true when it gained (then applied). */
static bool solve_pick(lns *l)
{
    const int m = l->m, k = l->k;
    const int32_t *perm = nmp_eval_perm(l->ev);
    for (int t = 0; t < k; t++)
        memcpy(l->in + t * m, perm + l->pick[t] * m, (size_t)m * sizeof *l->in);
    double cur;
    const double best = nmp_window_solve(l->win, l->in, k, l->out, &cur);
    l->cut = best == -HUGE_VAL; /* the time limit stopped the window */
    const double gain = best - cur;
    if (!(gain > 0 && gain > LNS_TOL * fabs(cur)))
        return false;
    nmp_eval_regroup(l->ev, l->pick, k, l->out);
    for (int t = 0; t < k; t++) {
        group_total(l, l->pick[t]);
        mark(l, l->pick[t]);
    }
    return true;
}

/* Windows until max_fail in a row fail or the iteration limit; false when the clock stopped it. */
static bool descend(lns *l, int64_t max_fail, int64_t *it)
{
    int64_t fails = 0;
    while (fails < max_fail && (l->iters <= 0 || *it < l->iters)) {
        if (nmp_clock_tick(&l->clock, *it, NMP_MAX(l->best_score, nmp_eval_score(l->ev)),
                           l->pb->row_bound, "lns", false))
            return false;
        const int s = choose_strategy(l);
        const bool gained = step(l, s);
        l->rate[s] += 0.02 * ((gained ? 1.0 : 0.0) - l->rate[s]);
        fails = gained ? 0 : fails + 1;
        (*it)++;
    }
    return true;
}

/* After a kick: each queued group g (groups re-enter when a window changes them) is tried in
 * windows with k-1 partners: every other group in turn when k = 2, else kick_fail partner
 * sets drawn by the strategies with g as seed. Ends when the queue is empty: for k = 2 the
 * changed groups are then 2-window optimal. False when the clock stopped it. */
static bool repair(lns *l, int64_t *it)
{
    const int64_t G = l->groups;
    bool running = true;
    while (running && l->qlen > 0 && (l->iters <= 0 || *it < l->iters)) {
        const int64_t g = l->queue[l->qhead];
        l->qhead = (l->qhead + 1) % G;
        l->qlen--;
        l->queued[g] = 0;
        l->seed = g;
        int64_t tries = l->k == 2 ? G - 1 : l->kick_fail;
        const int64_t h0 = (int64_t)nmp_rng_below(&l->rng, (uint64_t)G);
        if (l->k == 2 && tries > LNS_PARTNERS) { /* the partners that conflict most, in order */
            rank_partners(l, g);
            tries = LNS_PARTNERS;
        }
        for (int64_t t = 0; t < tries && (l->iters <= 0 || *it < l->iters); t++) {
            if (nmp_clock_tick(&l->clock, *it, NMP_MAX(l->best_score, nmp_eval_score(l->ev)),
                               l->pb->row_bound, "lns", false)) {
                running = false;
                break;
            }
            bool gained;
            if (l->k == 2) {
                int64_t h = (h0 + t) % (G - 1); /* the others, from a random one on */
                if (h >= g)
                    h++;
                if (G - 1 > LNS_PARTNERS)
                    h = l->cand[t];
                l->pick[0] = g;
                l->pick[1] = h;
                gained = solve_pick(l);
            } else {
                int s = choose_strategy(l);
                if (s == 1) /* pruned-mass picks ignore the seed */
                    s = 2;
                gained = step(l, s);
                l->rate[s] += 0.02 * ((gained ? 1.0 : 0.0) - l->rate[s]);
            }
            (*it)++;
            if (gained && !l->queued[g]) /* g changed: it is queued again */
                break;
        }
    }
    l->seed = -1;
    while (l->qlen > 0) { /* stopped: empty the queue */
        l->queued[l->queue[l->qhead]] = 0;
        l->qhead = (l->qhead + 1) % G;
        l->qlen--;
    }
    return running;
}

/* Puts the changed groups back to the accepted perm. */
static void restore(lns *l)
{
    const int m = l->m;
    int k = 0;
    for (int64_t t = 0; t < l->nfocus; t++) {
        const int64_t g = l->focus[t];
        l->glist[k] = g;
        memcpy(l->clist + (size_t)k * m, l->acc + g * m, (size_t)m * sizeof *l->clist);
        k++;
    }
    nmp_eval_regroup(l->ev, l->glist, k, l->clist);
    for (int t = 0; t < k; t++)
        group_total(l, l->glist[t]);
}

/* kick_swaps random swaps of columns in different groups. */
static void kick(lns *l)
{
    const int64_t cols = l->pb->cols, m = l->m;
    for (int64_t t = 0; t < l->kick_swaps; t++) {
        const int64_t a = (int64_t)nmp_rng_below(&l->rng, (uint64_t)cols);
        int64_t b = (int64_t)nmp_rng_below(&l->rng, (uint64_t)(cols - m));
        if (b >= a / m * m)
            b += m;
        nmp_eval_swap(l->ev, a, b);
        group_total(l, a / m);
        group_total(l, b / m);
        mark(l, a / m);
        mark(l, b / m);
    }
}

static nmp_err lns_solve(void *p, int32_t *perm, nmp_result *res)
{
    lns *l = p;
    const nmp_problem *pb = l->pb;
    const size_t bytes = (size_t)pb->cols * sizeof *perm;
    nmp_rng_seed(&l->rng, l->par.seed);
    nmp_clock_start(&l->clock, &l->par);
    nmp_eval_reset(l->ev, perm);
    const double start = nmp_eval_score(l->ev);
    res->status = NMP_STATUS_FEASIBLE;
    for (int64_t g = 0; g < l->groups; g++) {
        l->order[g] = g;
        group_total(l, g);
    }
    for (int s = 0; s < LNS_STRATEGIES; s++)
        l->rate[s] = 0.5;
    l->seed = -1;
    l->qhead = l->qlen = 0;
    l->k = l->kd;
    int64_t it = 0;
    bool running = true;
    memcpy(l->best, perm, bytes);
    double best = l->best_score = start;
    if (l->groups < 2 || l->k >= l->groups) { /* one window holds everything */
        l->cut = false;
        if (l->groups >= 2)
            step(l, 0);
        it = 1;
        res->status = NMP_STATUS_OPTIMAL;
        running = !l->cut;
    } else {
        running = descend(l, l->max_fail, &it);
        memcpy(l->acc, nmp_eval_perm(l->ev), bytes);
        double acc = nmp_eval_score(l->ev);
        clear_marks(l);
        l->kicking = true;
        l->k = l->kr;
        for (int64_t t = 0; running && t < l->kicks && (l->iters <= 0 || it < l->iters); t++) {
            if (acc > best) {
                best = l->best_score = acc;
                memcpy(l->best, l->acc, bytes);
            }
            kick(l);
            running = repair(l, &it);
            const double loss = acc - nmp_eval_score(l->ev);
            const double temp = l->kick_temp * acc / (double)pb->cols;
            if (loss <= 0 || (temp > 0 && nmp_rng_uniform(&l->rng) < exp(-loss / temp))) {
                acc = nmp_eval_score(l->ev);
                for (int64_t c = 0; c < l->nfocus; c++) /* only the changed groups differ */
                    memcpy(l->acc + l->focus[c] * l->m, nmp_eval_perm(l->ev) + l->focus[c] * l->m,
                           (size_t)l->m * sizeof *l->acc);
            } else if (running) {
                restore(l);
            }
            clear_marks(l);
        }
        l->kicking = false;
        l->k = l->kd;
        if (running && l->iters > 0 && it >= l->iters)
            res->status = NMP_STATUS_ITER_LIMIT;
    }
    if (!running)
        res->status = nmp_clock_status(&l->clock);
    res->iterations = it;
    if (nmp_eval_score(l->ev) > best) {
        best = nmp_eval_score(l->ev);
        memcpy(l->best, nmp_eval_perm(l->ev), bytes);
    }
    memcpy(perm, l->best, bytes);
    return NMP_OK;
}

const nmp_solver_ops nmp_lns_ops = {
    "lns", "large-neighbourhood search: exact re-partition of 4+ groups chosen by loss/conflict",
    lns_params, lns_create, lns_solve, lns_destroy, 0,
};

/* nmp_osg.c: apex's "optimize stripe groups" (Pool & Yu 2021): exhaustive stripe windows */
#include "nmp_solvers.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/*
 * A stripe is one group of m slots. A window is a set of s stripes (s = 2: 8 columns for 2:4,
 * apex's default; s = 3: 12 columns), and its gain is
 *     gain(W) = max over re-partitions P of W's s*m columns into s groups of sum_{q in P} D(q)
 *               - sum_{g in W} D(g),
 * found exhaustively by the window solver (nmp_window.c; 35 partitions for 8 columns, 5,775 for
 * 12). As apex does:
 *   1. the gain of every window is cached; a round re-evaluates only the windows that touch a
 *      stripe changed in the previous round (all windows in the first);
 *   2. the improving windows are sorted by gain (ties by index) and applied greedily, each only
 *      if none of its stripes was changed earlier in the round;
 *   3. rounds repeat until no window improves;
 *   4. escapes ("bounded regressions"): swap two random columns of different stripes,
 *      re-converge, keep the result only if it beats the best so far, else go back to the best
 *      (the perm and the cached gains of the stripes the escape changed).
 * Windows are indexed by the colex rank of their sorted stripes, so the cache is a flat array of
 * C(G, s) gains (G = cols/m). A window evaluation depends only on its columns, so each round's
 * evaluations run in parallel (OpenMP, par->threads) with a result that does not depend on the
 * thread count. Moves are decided in the window solver's arithmetic: a gain must exceed 1e-9 of
 * the window's value, and the sum of those values over all stripes rises with every move, so
 * the rounds end.
 * A parallel region is opened only for rounds with ~10 ms of work per thread (the first ones):
 * on shared cores a barrier can cost a time slice, and escapes re-evaluate few windows.
 * Clock: every loop of a round looks at the time limit: window evaluations before every window
 * (with a tick every ~20 ms of estimated work), the listing of dirty windows and the scan for
 * improving ones every OSG_CHECK_ITEMS windows, the sort (an in-place quicksort on the unique
 * key (gain, index), so its order is qsort's) every OSG_CHECK_ITEMS elements partitioned, the
 * greedy pass every OSG_CHECK_MOVES candidates: with s = 3 the listing alone is C(G, 3) windows
 * (2.7 M at 1024 columns, ~0.1 s), which ran unchecked before. A round cut short keeps the
 * moves it applied; without a limit the checks change nothing.
 * Size: refused (NMP_ERR_UNSUPPORTED) above 2^23 windows, G > 4096 stripes for s = 2 (16384
 * columns at 2:4) and G > 369 for s = 3; memory is 16 bytes per window. The first round costs
 * C(G, s) window evaluations, each about C(s*m, m) * rows min/max pairs: s = 3 is practical for
 * G up to ~100.
 * Measured (one core, 2:4): apex's 128 x 64 reference gives apex's published numbers, 2919.759
 * with s = 2 (its 2919.758; the 100 escapes found nothing better for seeds 1-3 and 5, 2919.936
 * for seed 4) in 0.02 s, and 2921.947 with s = 3 and no escapes in 0.1 s. |N(0,1)| squares,
 * s = 2, 100 escapes: 256^2 0.2 s, 512^2 1.2 s, 1024^2 7.3 s (efficacy 26.7, 21.5, 16.1 %).
 */

static const nmp_param_desc osg_params[] = {
    { "stripes", 2, 2, 3, "stripes of m columns per window (2: apex's 8-column window at 2:4)" },
    { "escapes", 100, 0, 1e9, "random escape attempts after convergence (apex: 100)" },
    { 0 },
};

#define OSG_MAX_WINDOWS 8388608.0
#define OSG_TOL 1e-9         /* a gain counts above this fraction of the window's value */
#define OSG_DEV_TOL 1e-6     /* a device gain (float sums) is a candidate above this fraction */
#define OSG_CHUNK_NS 2e7     /* aim of work between two clock checks, in ~ns */
#define OSG_PAR_NS 1e7       /* least work per thread for a parallel loop (a barrier can cost
                             * a time slice when the cores are shared) */
#define OSG_CHECK_ITEMS 65536 /* windows listed, scanned or sorted between two clock checks */
#define OSG_CHECK_MOVES 1024  /* candidates of the greedy pass between two clock checks */
#define OSG_SORT_SMALL 16     /* insertion sort below this many */

typedef struct osg_cand {
    float gain;
    uint32_t w;
} osg_cand;

typedef struct osg {
    const nmp_problem *pb;
    int s, m, threads;
    int64_t groups, nwin, escapes, moves, chunk;
    double cost;             /* ~ns per window evaluation */
    nmp_eval *ev;
    nmp_window **win;        /* one per thread */
    nmp_params par;          /* seed, time limit and progress callback of each solve */
    nmp_rng rng;
    nmp_clock clock;
    double best;             /* best score so far (for progress reports) */
    float *gain, *snap;      /* cached gain per window; its copy at the best perm */
    osg_cand *cand;          /* windows to evaluate, then improving windows */
    uint8_t *dirty;          /* stripes changed since their windows were evaluated */
    uint8_t *changed;        /* stripes changed since the best perm */
    uint8_t *used;           /* stripes changed in this round */
    int32_t *keep;           /* best perm */
    int32_t *io;             /* per thread: 2 * s * m columns (window in, out) */
    int64_t *glist;          /* groups to restore */
    int32_t *clist;          /* their columns */
    /* the device search (par->device; s = 2 only): every round the backend evaluates all
     * G(G-1)/2 windows at once; moves are still decided by exact deltas on the CPU */
    nmp_backend be;
    bool dev;
    double *pgain;           /* per pair of stripes (backend order): best split's gain */
    uint32_t *pmask;         /* and its mask */
    uint32_t *wmask;         /* per window (colex): that mask */
} osg;

static int64_t binom(int64_t a, int b)
{
    if (a < b)
        return 0;
    int64_t r = 1;
    for (int t = 1; t <= b; t++)
        r = r * (a - b + t) / t;
    return r;
}

/* The stripes st[0] < ... < st[s-1] of window w (colex). */
static void decode(const osg *o, int64_t w, int64_t *st)
{
    for (int t = o->s; t >= 1; t--) {
        int64_t lo = t - 1, hi = o->groups - 1; /* largest c with C(c, t) <= w */
        while (lo < hi) {
            const int64_t mid = (lo + hi + 1) / 2;
            if (binom(mid, t) <= w)
                lo = mid;
            else
                hi = mid - 1;
        }
        st[t - 1] = lo;
        w -= binom(lo, t);
    }
}

static int64_t encode(const osg *o, const int64_t *st)
{
    int64_t w = 0;
    for (int t = 0; t < o->s; t++)
        w += binom(st[t], t + 1);
    return w;
}

/* The window of stripes {g, h} (i < 0) or {g, h, i}, all distinct. */
static int64_t window_of(const osg *o, int64_t g, int64_t h, int64_t i)
{
    int64_t st[3] = { g, h, i };
    for (int a = 1; a < o->s; a++) /* insertion sort of 2 or 3 */
        for (int b = a; b > 0 && st[b - 1] > st[b]; b--) {
            const int64_t x = st[b];
            st[b] = st[b - 1];
            st[b - 1] = x;
        }
    return encode(o, st);
}

static void osg_destroy(void *p)
{
    osg *o = p;
    if (!o)
        return;
    nmp_eval_free(o->ev);
    if (o->win)
        for (int t = 0; t < o->threads; t++)
            nmp_window_free(o->win[t]);
    nmp_free(o->win);
    nmp_free(o->gain);
    nmp_free(o->snap);
    nmp_free(o->cand);
    nmp_free(o->dirty);
    nmp_free(o->changed);
    nmp_free(o->used);
    nmp_free(o->keep);
    nmp_free(o->io);
    nmp_free(o->glist);
    nmp_free(o->clist);
    nmp_free(o->pgain);
    nmp_free(o->pmask);
    nmp_free(o->wmask);
    nmp_backend_release(&o->be);
    nmp_free(o);
}

static nmp_err osg_create(const nmp_problem *pb, const nmp_params *par, void **state, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    osg *o = nmp_calloc(1, sizeof *o);
    *state = NULL;
    if (!o)
        return NMP_ERR_NOMEM;
    o->pb = pb;
    o->m = pb->m;
    o->groups = pb->groups;
    o->s = (int)NMP_MIN((int64_t)nmp_param_get(par, osg_params, "stripes"), pb->groups);
    o->escapes = (int64_t)nmp_param_get(par, osg_params, "escapes");
    o->threads = 1;
#ifdef _OPENMP
    o->threads = par->threads > 0 ? par->threads : omp_get_max_threads();
#endif
    o->par = *par;
    const int s = NMP_MAX(o->s, 1);
    o->nwin = binom(pb->groups, s);
    if ((double)o->nwin > OSG_MAX_WINDOWS) {
        e = nmp_fail(msg, NMP_ERR_UNSUPPORTED,
                     "osg: %lld stripes give %lld windows of %d (limit %.0f); use stripes=2 or "
                     "another solver", (long long)pb->groups, (long long)o->nwin, s,
                     OSG_MAX_WINDOWS);
        goto out;
    }
    const size_t nwin = (size_t)o->nwin, groups = (size_t)pb->groups;
    o->win = nmp_calloc((size_t)o->threads, sizeof *o->win);
    o->gain = nmp_calloc(nwin, sizeof *o->gain);
    o->snap = nmp_calloc(nwin, sizeof *o->snap);
    o->cand = nmp_malloc(nwin * sizeof *o->cand);
    o->dirty = nmp_calloc(groups, 1);
    o->changed = nmp_calloc(groups, 1);
    o->used = nmp_calloc(groups, 1);
    o->keep = nmp_malloc((size_t)pb->cols * sizeof *o->keep);
    o->io = nmp_malloc((size_t)o->threads * 2 * (size_t)(s * o->m) * sizeof *o->io);
    o->glist = nmp_malloc(groups * sizeof *o->glist);
    o->clist = nmp_malloc((size_t)pb->cols * sizeof *o->clist);
    if (!o->win || !o->gain || !o->snap || !o->cand || !o->dirty || !o->changed || !o->used ||
        !o->keep || !o->io || !o->glist || !o->clist) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    for (int t = 0; t < o->threads; t++) {
        NMP_TRY(e, nmp_window_create(pb, s, &o->win[t], msg));
        nmp_window_set_clock(o->win[t], &o->clock); /* 24-column windows (2:8) look at it */
    }
    NMP_TRY(e, nmp_eval_create(pb, NULL, &o->ev));
    NMP_TRY(e, nmp_solver_backend("osg", pb, par, NMP_DEVICE_AUTO_COLS, &o->be, &o->dev, msg));
    if (o->dev && (o->s != 2 || 2 * o->m > 16)) {
        if (par->device == NMP_DEVICE_AUTO) {
            nmp_backend_release(&o->be); /* auto: the CPU search serves this shape */
            o->dev = false;
        } else {
            e = nmp_fail(msg, NMP_ERR_UNSUPPORTED, "osg --device %s: the device search needs "
                         "stripes=2 and m <= 8 (here stripes=%d, m=%d)",
                         nmp_device_name(par->device), o->s, o->m);
            goto out;
        }
    }
    if (o->dev) {
        o->pgain = nmp_malloc(nwin * sizeof *o->pgain);
        o->pmask = nmp_malloc(nwin * sizeof *o->pmask);
        o->wmask = nmp_malloc(nwin * sizeof *o->wmask);
        if (!o->pgain || !o->pmask || !o->wmask) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
    }
    /* windows per clock check (~OSG_CHUNK_NS of work), at least one a thread; parallel only
     * where a thread gets OSG_PAR_NS of work, as a parallel region costs a barrier */
    o->cost = nmp_window_cost(o->win[0], s);
    o->chunk = (int64_t)NMP_MAX(1.0, NMP_MIN(4096.0, OSG_CHUNK_NS / o->cost)) * o->threads;
    *state = o;
    o = NULL;
out:
    osg_destroy(o);
    return e;
}

/* Window w's best re-partition on thread t: writes its columns to out (when not NULL) and
 * returns the gain, 0 when below the tolerance. */
static double window_gain(osg *o, int t, int64_t w, int32_t *out, int64_t *st)
{
    const int m = o->m, s = o->s;
    const int32_t *perm = nmp_eval_perm(o->ev);
    int32_t *in = o->io + (size_t)t * 2 * (size_t)(s * m);
    decode(o, w, st);
    for (int u = 0; u < s; u++)
        memcpy(in + u * m, perm + st[u] * m, (size_t)m * sizeof *in);
    double cur;
    const double best = nmp_window_solve(o->win[t], in, s, out, &cur);
    const double gain = best - cur;
    return gain > OSG_TOL * fabs(cur) && gain > 0 ? gain : 0.0;
}

/* Evaluates cand[0..count).w into gain[]; false when the clock stopped it. Chunks of ~20 ms of
 * estimated work end in a tick (progress, interrupt); the time limit is also looked at before
 * every window (a load and a compare without a limit, ~25 ns with one, against >= 1 us per
 * window), since the estimate can be far off: 50x under AddressSanitizer. */
static bool evaluate(osg *o, int64_t count)
{
    for (int64_t c0 = 0; c0 < count; c0 += o->chunk) {
        const int64_t c1 = NMP_MIN(count, c0 + o->chunk);
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(o->threads) \
    if ((double)(c1 - c0) * o->cost >= OSG_PAR_NS * o->threads)
#endif
        for (int64_t c = c0; c < c1; c++) {
            int t = 0;
#ifdef _OPENMP
            t = omp_get_thread_num();
#endif
            if (nmp_clock_expired(&o->clock)) /* skips the rest of the chunk */
                continue;
            int64_t st[3];
            const uint32_t w = o->cand[c].w;
            o->gain[w] = (float)window_gain(o, t, w, NULL, st);
        }
        if (nmp_clock_tick(&o->clock, o->moves, NMP_MAX(o->best, nmp_eval_score(o->ev)),
                           o->pb->row_bound, "osg", false))
            return false;
    }
    return true;
}

/* The device round: the backend's best split of every pair of stripes; gain[w] of window
 * {g, h} keeps it when it exceeds OSG_DEV_TOL of the window's value (the backend sums floats: a
 * smaller gain may be rounding), wmask[w] the split. Clears dirty. False on a backend error
 * (in *err) or when the clock stopped the search. */
static bool device_round(osg *o, nmp_err *err)
{
    const int64_t G = o->groups;
    *err = o->be.window_repartitions(&o->be, nmp_eval_perm(o->ev), o->pgain, o->pmask);
    if (*err != NMP_OK)
        return false;
    int64_t p = 0;
    for (int64_t g = 0; g < G; g++) {
        const double dg = nmp_eval_group_score(o->ev, g);
        for (int64_t h = g + 1; h < G; h++, p++) {
            const int64_t w = h * (h - 1) / 2 + g; /* colex rank of {g, h} */
            const double cur = dg + nmp_eval_group_score(o->ev, h);
            o->gain[w] = o->pgain[p] > OSG_DEV_TOL * fabs(cur) ? (float)o->pgain[p] : 0.0f;
            o->wmask[w] = o->pmask[p];
        }
        o->dirty[g] = 0;
    }
    return !nmp_clock_tick(&o->clock, o->moves, NMP_MAX(o->best, nmp_eval_score(o->ev)),
                           o->pb->row_bound, "osg", false);
}

/* The split wmask[w] of window {st[0], st[1]} into out (the columns of st[0], then st[1]);
 * returns its exact gain (nmp_eval_regroup_delta), 0 when below the tolerance. */
static double device_move(osg *o, int64_t w, const int64_t *st, int32_t *out)
{
    const int m = o->m;
    const int32_t *perm = nmp_eval_perm(o->ev);
    int a = 0, b = m;
    for (int t = 0; t < 2 * m; t++) {
        const int32_t col = t < m ? perm[st[0] * m + t] : perm[st[1] * m + t - m];
        out[(o->wmask[w] >> t & 1u) ? a++ : b++] = col;
    }
    if (a != m)
        return 0.0; /* not a split into two groups of m: never from the backend */
    const double cur = nmp_eval_group_score(o->ev, st[0]) + nmp_eval_group_score(o->ev, st[1]);
    const double gain = nmp_eval_regroup_delta(o->ev, st, 2, out);
    return gain > OSG_TOL * fabs(cur) && gain > 0 ? gain : 0.0;
}

/* cand[].w = every window with a dirty stripe, once (at its smallest dirty stripe); clears
 * dirty. Returns the count, or -1 when the time limit passed (dirty then stays set). */
static int64_t collect_dirty(osg *o)
{
    const int64_t G = o->groups;
    int64_t count = 0, next_check = OSG_CHECK_ITEMS;
    for (int64_t g = 0; g < G; g++) {
        if (!o->dirty[g])
            continue;
        if (count >= next_check) {
            next_check = count + OSG_CHECK_ITEMS;
            if (nmp_clock_expired(&o->clock))
                return -1;
        }
        for (int64_t h = 0; h < G; h++) {
            if (h == g || (o->dirty[h] && h < g))
                continue;
            if (o->s == 2) {
                o->cand[count++].w = (uint32_t)window_of(o, g, h, -1);
                continue;
            }
            for (int64_t i = h + 1; i < G; i++)
                if (i != g && !(o->dirty[i] && i < g))
                    o->cand[count++].w = (uint32_t)window_of(o, g, h, i);
            if (count >= next_check) { /* s = 3: up to G^2 windows per stripe g */
                next_check = count + OSG_CHECK_ITEMS;
                if (nmp_clock_expired(&o->clock))
                    return -1;
            }
        }
    }
    for (int64_t g = 0; g < G; g++)
        o->dirty[g] = 0;
    return count;
}

/* a before b: larger gain first, then smaller index (a total order: indices are unique) */
static inline bool cand_before(const osg_cand *a, const osg_cand *b)
{
    return a->gain != b->gain ? a->gain > b->gain : a->w < b->w;
}

static inline void cand_swap(osg_cand *a, osg_cand *b)
{
    const osg_cand t = *a;
    *a = *b;
    *b = t;
}

/* Sorts c[0..n) by cand_before: quicksort (median of three, Hoare partition, the smaller side
 * first by recursion, the larger by the loop: depth <= log2 n), insertion sort below
 * OSG_SORT_SMALL. The key is unique, so the order is the one qsort gave. *work counts the
 * elements partitioned; the clock is looked at every OSG_CHECK_ITEMS of them. False when the
 * time limit passed (c is then partly sorted). */
static bool sort_cands(const osg *o, osg_cand *c, int64_t n, int64_t *work)
{
    while (n > OSG_SORT_SMALL) {
        if ((*work += n) >= OSG_CHECK_ITEMS) {
            *work = 0;
            if (nmp_clock_expired(&o->clock))
                return false;
        }
        const int64_t mid = n / 2;
        if (cand_before(&c[mid], &c[0]))
            cand_swap(&c[mid], &c[0]);
        if (cand_before(&c[n - 1], &c[mid]))
            cand_swap(&c[n - 1], &c[mid]);
        if (cand_before(&c[mid], &c[0]))
            cand_swap(&c[mid], &c[0]);
        const osg_cand pivot = c[mid];
        int64_t i = -1, j = n;
        for (;;) {
            do
                i++;
            while (cand_before(&c[i], &pivot));
            do
                j--;
            while (cand_before(&pivot, &c[j]));
            if (i >= j)
                break;
            cand_swap(&c[i], &c[j]);
        }
        /* c[0..j] before-or-equal the pivot, c[j+1..n) after-or-equal */
        const int64_t left = j + 1, right = n - left;
        if (left < right) {
            if (!sort_cands(o, c, left, work))
                return false;
            c += left;
            n = right;
        } else {
            if (!sort_cands(o, c + left, right, work))
                return false;
            n = left;
        }
    }
    for (int64_t a = 1; a < n; a++)
        for (int64_t b = a; b > 0 && cand_before(&c[b], &c[b - 1]); b--)
            cand_swap(&c[b], &c[b - 1]);
    return true;
}

/* Rounds until no window improves; false when the clock stopped them. */
static bool converge(osg *o, const char *phase, nmp_err *err)
{
    const int m = o->m, s = o->s;
    int32_t *out = o->io + (size_t)s * m; /* thread 0's out half */
    for (;;) {
        if (o->dev) {
            if (!device_round(o, err))
                return false;
        } else {
            const int64_t dirty = collect_dirty(o);
            if (dirty < 0 || !evaluate(o, dirty))
                return false;
        }
        int64_t count = 0;
        for (int64_t w = 0; w < o->nwin; w++) {
            if (o->gain[w] > 0) {
                o->cand[count].gain = o->gain[w];
                o->cand[count++].w = (uint32_t)w;
            }
            if ((w + 1) % OSG_CHECK_ITEMS == 0 && nmp_clock_expired(&o->clock))
                return false;
        }
        if (count == 0)
            return true;
        int64_t work = 0;
        if (!sort_cands(o, o->cand, count, &work))
            return false;
        memset(o->used, 0, (size_t)o->groups);
        for (int64_t c = 0; c < count; c++) {
            if ((c + 1) % OSG_CHECK_MOVES == 0 && nmp_clock_expired(&o->clock))
                return false;
            int64_t st[3];
            decode(o, o->cand[c].w, st);
            bool disjoint = true;
            for (int u = 0; u < s; u++)
                disjoint = disjoint && !o->used[st[u]];
            if (!disjoint)
                continue;
            const double gain = o->dev ? device_move(o, o->cand[c].w, st, out)
                                       : window_gain(o, 0, o->cand[c].w, out, st);
            if (gain > 0) {
                nmp_eval_regroup(o->ev, st, s, out);
                o->moves++;
            }
            o->gain[o->cand[c].w] = 0;
            for (int u = 0; u < s; u++)
                o->used[st[u]] = o->dirty[st[u]] = o->changed[st[u]] = 1;
        }
        if (nmp_clock_tick(&o->clock, o->moves, NMP_MAX(o->best, nmp_eval_score(o->ev)),
                           o->pb->row_bound, phase, false))
            return false;
    }
}

/* dst[w] = src[w] for every window that touches a changed stripe. */
static void copy_changed(osg *o, float *dst, const float *src)
{
    const int64_t G = o->groups;
    int64_t nchanged = 0;
    for (int64_t g = 0; g < G; g++)
        nchanged += o->changed[g];
    if ((double)nchanged * (double)binom(G - 1, o->s - 1) >= (double)o->nwin) {
        memcpy(dst, src, (size_t)o->nwin * sizeof *dst);
        return;
    }
    for (int64_t g = 0; g < G; g++) {
        if (!o->changed[g])
            continue;
        for (int64_t h = 0; h < G; h++) {
            if (h == g)
                continue;
            if (o->s == 2) {
                const int64_t w = window_of(o, g, h, -1);
                dst[w] = src[w];
                continue;
            }
            for (int64_t i = h + 1; i < G; i++)
                if (i != g) {
                    const int64_t w = window_of(o, g, h, i);
                    dst[w] = src[w];
                }
        }
    }
}

/* Puts the changed stripes back to the best perm: eval, perm and cached gains. */
static void restore(osg *o)
{
    const int m = o->m;
    int k = 0;
    for (int64_t g = 0; g < o->groups; g++)
        if (o->changed[g]) {
            o->glist[k] = g;
            memcpy(o->clist + (size_t)k * m, o->keep + g * m, (size_t)m * sizeof *o->clist);
            k++;
        }
    nmp_eval_regroup(o->ev, o->glist, k, o->clist);
    copy_changed(o, o->gain, o->snap);
}

static nmp_err osg_solve(void *p, int32_t *perm, nmp_result *res)
{
    osg *o = p;
    const nmp_problem *pb = o->pb;
    const int m = o->m;
    const size_t bytes = (size_t)pb->cols * sizeof *perm;
    nmp_rng_seed(&o->rng, o->par.seed);
    nmp_clock_start(&o->clock, &o->par);
    nmp_eval_reset(o->ev, perm);
    o->moves = 0;
    res->status = NMP_STATUS_FEASIBLE;
    memcpy(o->keep, perm, bytes);
    double best = o->best = nmp_eval_score(o->ev);
    if (o->groups < 2) {
        res->status = NMP_STATUS_OPTIMAL;
        return NMP_OK;
    }
    memset(o->dirty, 1, (size_t)o->groups);
    nmp_err e = NMP_OK;
    bool running = converge(o, "osg", &e);
    if (nmp_eval_score(o->ev) > best) {
        best = o->best = nmp_eval_score(o->ev);
        memcpy(o->keep, nmp_eval_perm(o->ev), bytes);
    }
    if (running && o->s == o->groups) /* one window holds every column: solved exactly */
        res->status = NMP_STATUS_OPTIMAL;
    memcpy(o->snap, o->gain, (size_t)o->nwin * sizeof *o->snap);
    memset(o->changed, 0, (size_t)o->groups);
    int64_t t = 0;
    for (; running && t < o->escapes && o->s < o->groups; t++) {
        const int64_t a = (int64_t)nmp_rng_below(&o->rng, (uint64_t)pb->cols);
        int64_t b = (int64_t)nmp_rng_below(&o->rng, (uint64_t)(pb->cols - m));
        if (b >= a / m * m) /* skip a's own stripe */
            b += m;
        nmp_eval_swap(o->ev, a, b);
        o->dirty[a / m] = o->dirty[b / m] = 1;
        o->changed[a / m] = o->changed[b / m] = 1;
        running = converge(o, "escape", &e);
        if (nmp_eval_score(o->ev) > best) {
            best = o->best = nmp_eval_score(o->ev);
            memcpy(o->keep, nmp_eval_perm(o->ev), bytes);
            copy_changed(o, o->snap, o->gain);
        } else if (running) {
            restore(o);
        }
        memset(o->changed, 0, (size_t)o->groups);
    }
    if (!running)
        res->status = nmp_clock_status(&o->clock);
    res->iterations = o->moves;
    memcpy(perm, o->keep, bytes);
    return e;
}

const nmp_solver_ops nmp_osg_ops = {
    "osg", "apex's optimize-stripe-groups: exhaustive 2/3-stripe windows with escapes (baseline)",
    osg_params, osg_create, osg_solve, osg_destroy, 1,
};

/* nmp_dp.c: exact dynamic programme over column subsets ("dp"), for up to ~28 columns */
#include "nmp_solvers.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/*
 * max over partitions P of the columns into groups of m of  sum_{q in P} D(q),
 * D(q) = sum_j topn(s(j, q)).
 *
 * f(U) = best value of the columns outside U, with f(all) = 0 and
 * f(U) = max { D(q) + f(U | q) : q = {l} + (m-1) free columns above l },  l = lowest free column.
 *
 * Always extending by the lowest free column makes each partition one path, and a used set U of
 * k groups is reachable iff |U| = k*m and U holds {0..k-1} (leaders 0..k-1 can take the other
 * k*m - k columns in any way). So level k is indexed by S = U >> k, a k(m-1)-subset of the
 * cols-k upper bits, by its colex rank: C(cols-k, k(m-1)) states, 5.5 M for 28 columns at m = 4
 * instead of 2^28. Colex order is the numeric order of the bit masks, so a level is walked with
 * Gosper's next-subset step from an unranked start, in chunks that threads share. D is
 * precomputed for every m-subset (nmp_score_group_value, so D is exactly what nmp_score sums),
 * indexed by its colex rank. Per state, the colex ranks of q and of U | q become sums of one
 * table term per member of q (see walk_state), so a transition costs two additions and four
 * loads; that beat ranking U | q through per-byte tables (four lookups) by 2x at 28 columns.
 *
 * The levels run backwards (k = groups-1 .. 0); the states of one level only read level k+1, so
 * they run in parallel, each as a max in a fixed order with the first maximum kept: the result
 * does not depend on the number of threads. The optimal partition is then rebuilt forwards from
 * U = 0 by recomputing the argmax at each level.
 * Clock: both the D table and the levels run in chunks of about DP_CHUNK_WORK operations (D(q)
 * costs m * rows, a state C(free - 1, m - 1) transitions), after each of which the calling
 * thread ticks the clock; the chunking changes no value.
 */

#define DP_MAX_SUBSETS 40000000.0         /* entries of the D table */
#define DP_MAX_BYTES 4294967296.0         /* D + state tables */
#define DP_NB 33                          /* binomials C(a, b) for a, b <= 32 */
#define DP_CHUNK_STATES 4096              /* most states per chunk (one clock check each) */
#define DP_CHUNK_WORK 1048576.0           /* aim of transitions (or row values of D) per chunk */

static const nmp_param_desc dp_params[] = {
    { "max_cols", 28, 2, 30, "refuse larger inputs (the state table grows like C(cols, cols/2))" },
    { 0 }
};

typedef struct dp {
    const nmp_problem *pb;
    nmp_params par;
    int cols, m, groups, threads;
    uint32_t bn[DP_NB][DP_NB];     /* C(a, b), 0 when b > a */
    double *dval;                  /* D(q) by the colex rank of q among the cols columns */
    double *f;                     /* f of all levels; level k at off[k] */
    int64_t count[DP_NB], off[DP_NB + 1];
    int64_t nsub;                  /* C(cols, m) */
    int32_t *work;                 /* cols: the optimal perm before comparing with the start */
} dp;

/* One state's search. With members chosen in increasing order, the colex ranks of the group q and
 * of the successor U | q are both sums of one term per member, looked up by (member index t, free
 * column index i): qv[t][i] and sv[t][i], built per state (see walk_state). */
typedef struct walk {
    const dp *st;
    const double *fnext;
    int nf;
    int fr[32];                  /* free columns, increasing; fr[0] = l */
    uint32_t qv[NMP_MAX_M][32];  /* C(fr[i], t + 1) */
    uint32_t sv[NMP_MAX_M][32];  /* the successor rank's term for fr[i] as member t (mod 2^32) */
    uint32_t base;               /* the successor rank's constant term */
    double best;
    uint32_t arg;
} walk;

/* C(a, b) for 0 <= a < DP_NB and b >= 0; 0 when b > a. */
static inline uint32_t binom(const dp *st, int a, int b)
{
    return b > a ? 0 : st->bn[a][b];
}

/* The subset of rank r with p members, as a mask (colex unranking). */
static uint32_t unrank(const dp *st, uint64_t r, int p)
{
    uint32_t mask = 0;
    for (int t = p; t >= 1; t--) {
        int c = t - 1;
        while (st->bn[c + 1][t] <= r)
            c++;
        r -= st->bn[c][t];
        mask |= 1u << c;
    }
    return mask;
}

/* Next mask with as many bits, numerically (Gosper); x != 0. */
static inline uint32_t next_subset(uint32_t x)
{
    const uint32_t c = x & (~x + 1u), r = x + c;
    return (((r ^ x) >> 2) / c) | r;
}

/* Members t .. m-1 of the group, from free index i0 on: mask is U plus the members so far, srank
 * and qrank the partial ranks. The last member is a flat loop: that is where the time goes. */
static void walk_rec(walk *w, int t, int i0, uint32_t mask, uint32_t srank, uint32_t qrank)
{
    const int m = w->st->m, nf = w->nf;
    if (t == m - 1) {
        const double *const dval = w->st->dval, *const fnext = w->fnext;
        const uint32_t *const qv = w->qv[t], *const sv = w->sv[t];
        double best = w->best;
        int arg = -1;
        for (int i = i0; i < nf; i++) {
            const double v = dval[qrank + qv[i]] + fnext[srank + sv[i]];
            if (v > best) {
                best = v;
                arg = i;
            }
        }
        if (arg >= 0) {
            w->best = best;
            w->arg = mask | 1u << w->fr[arg];
        }
        return;
    }
    for (int i = i0; i <= nf - (m - t); i++)
        walk_rec(w, t + 1, i + 1, mask | 1u << w->fr[i], srank + w->sv[t][i], qrank + w->qv[t][i]);
}

/*
 * f(U) for U at level k: fills w->best and w->arg (U plus the best group).
 *
 * The successor V = U | q holds 0..k; its index at level k+1 is the colex rank of V without
 * them: sum over its members p > k of C(p-k-1, idx(p) - k), idx(p) = #V below p = cu(p) + a(p),
 * with cu(p) = #U below p and a(p) = #members of q below p. Cut at the members
 * fr[i_0] < .. < fr[i_{m-1}] (i_0 = 0), the columns of U between two members share a(p), so with
 *   G_a[i] = sum over U's p in (k, fr[i]) of C(p-k-1, cu(p)+a-k),  T = G_m over all of U's p > k,
 * the rank telescopes to  T + sum_t sv[t][i_t]  with
 *   sv[t][i] = C(fr[i]-k-1, cu(fr[i])+t-k) + G_t[i] - G_{t+1}[i]   (mod 2^32; the sum is exact).
 * Building the tables costs O(cols * m) per state; a transition then costs two table loads.
 */
static void walk_state(walk *w, int k, uint32_t u)
{
    const dp *st = w->st;
    const int m = st->m;
    uint32_t g[NMP_MAX_M + 1] = { 0 };
    int cu = k;
    w->nf = 0;
    for (int p = k; p < st->cols; p++) {
        if (u >> p & 1u) {
            for (int a = 0; a <= m && p > k; a++)
                g[a] += binom(st, p - k - 1, cu + a - k);
            cu++;
            continue;
        }
        const int i = w->nf++;
        w->fr[i] = p;
        for (int t = 0; t < m; t++) {
            const uint32_t own = p > k ? binom(st, p - k - 1, cu + t - k) : 0;
            w->sv[t][i] = own + g[t] - g[t + 1];
            w->qv[t][i] = st->bn[p][t + 1];
        }
    }
    w->base = g[m];
    w->fnext = st->f + st->off[k + 1];
    w->best = -HUGE_VAL;
    w->arg = 0;
    walk_rec(w, 1, 1, u | 1u << w->fr[0], w->base + w->sv[0][0], w->qv[0][0]);
}

/* Evaluates states [r0, r1) of level k. */
static void level_chunk(const dp *st, int k, int64_t r0, int64_t r1)
{
    const int p = k * (st->m - 1);
    const uint32_t lead = (1u << k) - 1u;
    double *fk = st->f + st->off[k];
    walk w;
    w.st = st;
    uint32_t s = unrank(st, (uint64_t)r0, p);
    for (int64_t r = r0; r < r1; r++) {
        walk_state(&w, k, s << k | lead);
        fk[r] = w.best;
        if (r + 1 < r1)
            s = next_subset(s);
    }
}

/* D for the subsets of ranks [r0, r1). */
static void dval_chunk(const dp *st, int64_t r0, int64_t r1)
{
    int32_t q[NMP_MAX_M];
    uint32_t s = unrank(st, (uint64_t)r0, st->m);
    for (int64_t r = r0; r < r1; r++) {
        int t = 0;
        for (int i = 0; i < st->cols; i++)
            if (s >> i & 1u)
                q[t++] = i;
        st->dval[r] = nmp_score_group_value(st->pb, q);
        if (r + 1 < r1)
            s = next_subset(s);
    }
}

/* Runs the D table (k < 0) or level k over [0, count) in chunks of `chunk`, which the threads take
 * in turn. One parallel region per level, without barriers between chunks; the calling thread
 * (OpenMP's thread 0) reports progress after each of its chunks and raises `stop` when the clock
 * runs out, which makes the others skip their remaining chunks. Returns true when stopped. */
static bool run_chunks(const dp *st, nmp_clock *clk, int k, int64_t count, int64_t chunk,
                       int64_t *iterations, double best, double bound)
{
    const int64_t nchunks = (count + chunk - 1) / chunk, before = *iterations;
    const char *phase = k < 0 ? "groups" : "dp";
    atomic_bool stop = false;
    atomic_llong done = 0;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(st->threads) if (nchunks > 1)
#endif
    for (int64_t c = 0; c < nchunks; c++) {
        if (atomic_load_explicit(&stop, memory_order_relaxed))
            continue;
        const int64_t r0 = c * chunk, r1 = NMP_MIN(count, r0 + chunk);
        if (k < 0)
            dval_chunk(st, r0, r1);
        else
            level_chunk(st, k, r0, r1);
        const long long n = atomic_fetch_add(&done, r1 - r0) + (r1 - r0);
#ifdef _OPENMP
        if (omp_get_thread_num() != 0)
            continue;
#endif
        if (nmp_clock_tick(clk, before + n, best, bound, phase, false))
            atomic_store(&stop, true);
    }
    *iterations = before + atomic_load(&done);
    if (!atomic_load(&stop) && nmp_clock_tick(clk, *iterations, best, bound, phase, false))
        atomic_store(&stop, true);
    return atomic_load(&stop);
}

/* kept = sum_g D(perm[g*m .. g*m+m-1]) in group order: nmp_score's value, without its scratch
 * allocation. NMP_ERR_ARG when perm is not a permutation. */
static nmp_err perm_score(const dp *st, const int32_t *perm, double *kept)
{
    uint32_t seen = 0;
    for (int k = 0; k < st->cols; k++) {
        if (perm[k] < 0 || perm[k] >= st->cols || (seen >> perm[k] & 1u))
            return NMP_ERR_ARG;
        seen |= 1u << perm[k];
    }
    double total = 0;
    for (int g = 0; g < st->groups; g++)
        total += nmp_score_group_value(st->pb, perm + g * st->m);
    *kept = total;
    return NMP_OK;
}

static nmp_err dp_create(const nmp_problem *pb, const nmp_params *par, void **state, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    dp *st = NULL;
    if (!pb || !state)
        return nmp_fail(msg, NMP_ERR_ARG, "dp: no problem or state");
    *state = NULL;
    nmp_params defaults;
    if (!par) {
        nmp_params_init(&defaults);
        par = &defaults;
    }
    const int64_t max_cols = (int64_t)nmp_param_get(par, dp_params, "max_cols");
    if (pb->cols > max_cols) {
        e = nmp_fail(msg, NMP_ERR_UNSUPPORTED,
                     "dp: %lld columns exceeds the limit of %lld (exact DP over column subsets)",
                     (long long)pb->cols, (long long)max_cols);
        goto out;
    }
    if (pb->cols > 31 || pb->m < 2 || pb->m > pb->cols) { /* masks are 32-bit; 30 is the top */
        e = nmp_fail(msg, NMP_ERR_UNSUPPORTED, "dp: %lld columns in groups of %d not supported",
                     (long long)pb->cols, pb->m);
        goto out;
    }
    st = nmp_calloc(1, sizeof *st);
    if (!st) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    st->pb = pb;
    st->par = *par;
    st->cols = (int)pb->cols;
    st->m = pb->m;
    st->groups = (int)pb->groups;
#ifdef _OPENMP
    st->threads = par->threads > 0 ? par->threads : omp_get_max_threads();
#else
    st->threads = 1;
#endif
    for (int a = 0; a < DP_NB; a++) {
        st->bn[a][0] = 1;
        for (int b = 1; b < DP_NB; b++)
            st->bn[a][b] = a == 0 ? 0 : st->bn[a - 1][b - 1] + st->bn[a - 1][b];
    }

    /* Table sizes, checked before anything big is allocated. */
    const int cols = st->cols, m = st->m, groups = st->groups;
    st->nsub = st->bn[cols][m];
    double states = 0;
    for (int k = 0; k <= groups; k++) {
        st->count[k] = st->bn[cols - k][k * (m - 1)];
        st->off[k] = (int64_t)states;
        states += (double)st->count[k];
    }
    st->off[groups + 1] = (int64_t)states;
    if ((double)st->nsub > DP_MAX_SUBSETS) {
        e = nmp_fail(msg, NMP_ERR_UNSUPPORTED,
                     "dp: C(%d, %d) = %lld subsets exceeds the limit of %.0f", cols, m,
                     (long long)st->nsub, DP_MAX_SUBSETS);
        goto out;
    }
    const double bytes = 8.0 * (states + (double)st->nsub);
    if (bytes > DP_MAX_BYTES) {
        e = nmp_fail(msg, NMP_ERR_UNSUPPORTED,
                     "dp: %d columns in groups of %d need %.1f GiB of tables, more than the "
                     "limit of %.0f GiB",
                     cols, m, bytes / 1073741824.0, DP_MAX_BYTES / 1073741824.0);
        goto out;
    }

    st->dval = nmp_malloc((size_t)st->nsub * sizeof *st->dval);
    st->f = nmp_malloc((size_t)states * sizeof *st->f);
    st->work = nmp_malloc((size_t)cols * sizeof *st->work);
    if (!st->dval || !st->f || !st->work) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    *state = st;
    st = NULL;
out:
    if (st) {
        nmp_free(st->dval);
        nmp_free(st->f);
        nmp_free(st->work);
        nmp_free(st);
    }
    return e;
}

/* Solves to optimality unless the clock stops it; perm is the start on entry and never gets
 * worse. */
static nmp_err dp_solve(void *state, int32_t *perm, nmp_result *res)
{
    nmp_err e = NMP_OK;
    dp *st = state;
    const nmp_problem *pb = st->pb;
    const int cols = st->cols, m = st->m, groups = st->groups;
    nmp_clock clk;
    nmp_clock_start(&clk, &st->par);
    memset(res, 0, sizeof *res);
    double start = 0;
    NMP_TRY(e, perm_score(st, perm, &start));
    res->start_score = res->score = start;
    res->bound = NMP_MAX(pb->row_bound, start);
    res->status = NMP_STATUS_OPTIMAL;

    /* D(q) reads m columns of rows values: 4096 subsets at once took ~1 s at 65536 rows */
    const int64_t dchunk = (int64_t)NMP_MAX(
        1.0, NMP_MIN(DP_CHUNK_STATES, DP_CHUNK_WORK / ((double)m * (double)pb->rows)));
    bool stopped = run_chunks(st, &clk, -1, st->nsub, dchunk, &res->iterations, start,
                              res->bound);
    st->f[st->off[groups]] = 0;
    for (int k = groups - 1; k >= 0 && !stopped; k--) {
        /* Chunks of about DP_CHUNK_WORK transitions, so the clock is looked at often enough. */
        const int nf = cols - k * m;
        const double moves = (double)st->bn[nf - 1][m - 1];
        const int64_t chunk =
            (int64_t)NMP_MAX(1.0, NMP_MIN(DP_CHUNK_STATES, DP_CHUNK_WORK / moves));
        stopped = run_chunks(st, &clk, k, st->count[k], chunk, &res->iterations, start, res->bound);
    }
    if (stopped) {
        res->status = nmp_clock_status(&clk);
        goto out;
    }

    /* Forwards from U = 0: each level's argmax, written as groups of sorted columns. */
    const double opt = st->f[st->off[0]];
    walk w;
    w.st = st;
    uint32_t u = 0;
    for (int k = 0; k < groups; k++) {
        walk_state(&w, k, u);
        const uint32_t q = w.arg & ~u;
        int t = k * m;
        for (int i = 0; i < cols; i++)
            if (q >> i & 1u)
                st->work[t++] = i;
        u = w.arg;
    }
    if (u != (uint32_t)((1ull << cols) - 1)) {
        e = NMP_ERR_INTERNAL;
        goto out;
    }
    double score = 0;
    NMP_TRY(e, perm_score(st, st->work, &score));
    if (score > start) {
        memcpy(perm, st->work, (size_t)cols * sizeof *perm);
        res->score = score;
    }
    res->bound = NMP_MAX(opt, res->score);
    nmp_clock_tick(&clk, res->iterations, res->score, res->bound, "dp", true);
out:
    res->seconds = nmp_clock_elapsed(&clk);
    return e;
}

static void dp_destroy(void *state)
{
    dp *st = state;
    if (!st)
        return;
    nmp_free(st->dval);
    nmp_free(st->f);
    nmp_free(st->work);
    nmp_free(st);
}

const nmp_solver_ops nmp_dp_ops = {
    "dp",
    "exact DP over column subsets (optimal; up to ~28 columns)",
    dp_params,
    dp_create,
    dp_solve,
    dp_destroy, 0,
};

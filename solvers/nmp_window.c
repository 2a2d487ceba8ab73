/* nmp_window.c: exact re-partition of a window of k groups (k*m <= 32 source columns) */
#include "nmp_solvers.h"

#include <math.h>
#include <string.h>

/*
 * best(W) = max over partitions P of the window W (K = k*m columns) into k groups of m of
 *           sum_{q in P} D(q),   D(q) = sum_j topn(s(j, q)).
 *
 * Two steps, as in the dp solver but sized for one window and called many times:
 *
 * 1. D(q) for every m-subset q of the window (C(K, m) values), indexed by the colex rank of q's
 *    local positions. Rows are taken in blocks of WIN_BLOCK; a block's partial sum is a float
 *    (eight lanes, so the compiler vectorises it without reassociating anything) and the blocks
 *    are added in double, like nmp_eval's deltas. For 2:4 the work of a block is shared: the
 *    max and min of every pair of window columns are formed once (C(K, 2) pairs), and then
 *    top2(a, b, c, d) = max(hi_ab, hi_cd) + max(min(hi_ab, hi_cd), max(lo_ab, lo_cd))
 *    costs five min/max per row and subset instead of seven. Other N:M patterns keep a row's
 *    top n sorted in n arrays over the block and merge each column in with 2n min/max, again
 *    loops over rows that vectorise. A row's value is the sum of its top n in decreasing
 *    order whatever the column order, so D is a function of the subset, bit for bit.
 *
 * 2. f(U) = best value of the columns outside U:
 *    f(U) = max { D(q) + f(U | q) : q = {l} + (m-1) free columns above l },  l = lowest free,
 *    so each partition is one path. After t groups U holds the columns 0..t-1 (each of the t
 *    leaders was the lowest free column at its turn), so level t is indexed by U >> t, a
 *    t(m-1)-subset of K - t bits, by its colex rank (four table lookups, one per byte); up to
 *    18 columns f is simply indexed by the mask U (2^K doubles, no ranking). The last level is
 *    D of what is left. The levels run backwards from the full set; the partition is rebuilt
 *    forwards by recomputing the argmax. Ties keep the first maximum in a fixed order: the
 *    result is a function of the input columns alone.
 *
 * Sizes: for 2:4, 8 columns need 70 values of D and 35 transitions; 12 columns 495 and 5,775;
 * 16 columns 1,820 and ~2e5; 20 columns 4,845 and ~4.4e6; 24 columns ~9e7 transitions. Measured
 * here (one core, 2:4): 8 columns 3.6 us at 128 rows, 20 us at 1024; 12 columns 26 / 125 us;
 * 16 columns 0.34 / 0.72 ms; 20 columns 13 ms. D dominates up to 12 columns, the DP beyond.
 * Refused: more than 2^22 values of D, 2^23 states or 2^27 transitions (2:4: above 24 columns;
 * 2:8: above 16).
 *
 * The value is returned together with the value of the partition as given (the k consecutive
 * groups of cols), summed in the same order as a DP path, so best >= current holds exactly and
 * best - current is the gain of the move.
 *
 * Clock: a window of 20 columns takes ~13 ms, of 24 up to ~0.4 s. When a caller has set a clock
 * (nmp_window_set_clock) and the estimated cost of a solve exceeds WIN_CHECK_NS, the time limit
 * is looked at every block of rows of step 1 and every WIN_CHECK_STATES states of step 2; a solve
 * cut short returns -HUGE_VAL, a gain no caller takes. Smaller windows never look (the check
 * would cost more than it saves), and without a limit nothing changes.
 */

#define WIN_NB 33                 /* binomials C(a, b) for a, b <= 32 */
#define WIN_BLOCK 64              /* rows per float partial sum */
#define WIN_LANES 8               /* float accumulators per partial sum */
#define WIN_MAX_SUBSETS 4194304.0 /* entries of the D table */
#define WIN_MAX_STATES 8388608.0  /* DP states over all levels */
#define WIN_MAX_TRANS 134217728.0 /* DP transitions (~0.4 s) */
#define WIN_DENSE_COLS 18         /* up to this many columns f is indexed by the used mask */
#define WIN_CHECK_NS 1e6          /* solves estimated above this (ns) look at the clock */
#define WIN_CHECK_STATES 4096     /* DP states between two looks at the clock */

struct nmp_window {
    const nmp_problem *pb;
    int m, n, max_k, max_cols;
    uint32_t bn[WIN_NB][WIN_NB]; /* C(a, b), 0 when b > a */
    uint8_t pop[256];            /* bits set in a byte */
    int toff[4];                 /* first row of byte chunk c in tab */
    uint32_t *tab;               /* [(toff[c] + below) * 256 + byte]: colex contributions */
    uint8_t *members;            /* [r * m + t]: t-th member of the m-subset of colex rank r */
    uint16_t *pairs;             /* 2:4: [2r], [2r+1]: pair ranks of (a, b) and (c, d) of r */
    double *dval;                /* D of the m-subset of rank r of the current window */
    double *f;                   /* the DP levels of the current window */
    double *fd;                  /* or, for small windows, f by the used mask (2^max_cols) */
    float *hi, *lo;              /* 2:4: per pair, the max and min of a block of rows */
    const float *col[32];        /* the window's columns */
    const nmp_clock *clk;        /* looked at by long solves (NULL: never) */
    bool watch;                  /* this solve looks at clk */
};

/* Rank of a mask of up to 32 bits: sum over its t-th set bit (t = 0, 1, ...) at position p of
 * C(p, t + 1). */
static inline uint32_t rank32(const nmp_window *w, uint32_t s)
{
    const uint32_t b0 = s & 255u, b1 = (s >> 8) & 255u, b2 = (s >> 16) & 255u, b3 = s >> 24;
    const uint32_t o1 = w->pop[b0], o2 = o1 + w->pop[b1], o3 = o2 + w->pop[b2];
    const uint32_t *t = w->tab;
    return t[b0] + t[((uint32_t)w->toff[1] + o1) * 256 + b1] +
           t[((uint32_t)w->toff[2] + o2) * 256 + b2] + t[((uint32_t)w->toff[3] + o3) * 256 + b3];
}

/* Next mask with as many bits, numerically (Gosper); x != 0. */
static inline uint32_t next_subset(uint32_t x)
{
    const uint32_t c = x & (~x + 1u), r = x + c;
    return (((r ^ x) >> 2) / c) | r;
}

static double states_of(const nmp_window *w, int k)
{
    const int cols = k * w->m;
    double total = 1; /* the full set */
    for (int t = 0; t < k; t++)
        total += (double)w->bn[cols - t][t * (w->m - 1)];
    return total;
}

/* Transitions of the DP for k groups: each state of level t < k-1 tries C(free - 1, m - 1)
 * groups led by its lowest free column (level k-1 takes what is left). */
static double transitions_of(const nmp_window *w, int k)
{
    const int cols = k * w->m, m = w->m;
    double total = 0;
    for (int t = 0; t + 1 < k; t++)
        total += (double)w->bn[cols - t][t * (m - 1)] * (double)w->bn[cols - t * m - 1][m - 1];
    return total;
}

double nmp_window_cost(const nmp_window *w, int k)
{
    const int m = w->m;
    const double per_row = m == 4 && w->n == 2 ? 0.25 : 0.5 + 0.35 * m * w->n; /* ~ns */
    return (double)w->bn[k * m][m] * ((double)w->pb->rows * per_row + 10.0) +
           1.5 * transitions_of(w, k) + 200.0;
}

void nmp_window_free(nmp_window *w)
{
    if (!w)
        return;
    nmp_free(w->tab);
    nmp_free(w->members);
    nmp_free(w->pairs);
    nmp_free(w->dval);
    nmp_free(w->f);
    nmp_free(w->fd);
    nmp_free(w->hi);
    nmp_free(w->lo);
    nmp_free(w);
}

nmp_err nmp_window_create(const nmp_problem *pb, int max_k, nmp_window **out, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    nmp_window *w = NULL;
    *out = NULL;
    if (!pb || max_k < 1) {
        e = nmp_fail(msg, NMP_ERR_ARG, "window: no problem or k < 1");
        goto out;
    }
    if ((int64_t)max_k * pb->m > 32) {
        e = nmp_fail(msg, NMP_ERR_UNSUPPORTED, "window: %d groups of %d exceed 32 columns", max_k,
                     pb->m);
        goto out;
    }
    w = nmp_calloc(1, sizeof *w);
    if (!w) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    w->pb = pb;
    w->m = pb->m;
    w->n = pb->n;
    w->max_k = max_k;
    w->max_cols = max_k * pb->m;
    for (int a = 0; a < WIN_NB; a++) {
        w->bn[a][0] = 1;
        for (int b = 1; b <= a; b++)
            w->bn[a][b] = w->bn[a - 1][b - 1] + (b < a ? w->bn[a - 1][b] : 0);
    }
    for (int b = 0; b < 256; b++)
        w->pop[b] = (uint8_t)((b & 1) + w->pop[b >> 1]);
    const int m = w->m, kc = w->max_cols;
    const double nsub = (double)w->bn[kc][m], nstates = states_of(w, max_k);
    const double ntrans = transitions_of(w, max_k);
    if (nsub > WIN_MAX_SUBSETS || nstates > WIN_MAX_STATES || ntrans > WIN_MAX_TRANS) {
        e = nmp_fail(msg, NMP_ERR_UNSUPPORTED,
                     "window: %d columns in groups of %d need %.0f group values, %.0f states and "
                     "%.0f transitions (limits %.0f, %.0f, %.0f)", kc, m, nsub, nstates, ntrans,
                     WIN_MAX_SUBSETS, WIN_MAX_STATES, WIN_MAX_TRANS);
        goto out;
    }
    /* rank tables: chunk c has 8c + 1 rows (0 .. 8c bits below it) */
    int rows_total = 0;
    for (int c = 0; c < 4; c++) {
        w->toff[c] = rows_total;
        rows_total += 8 * c + 1;
    }
    const bool pairwise = m == 4 && w->n == 2;
    const size_t npairs = (size_t)w->bn[kc][2];
    w->tab = nmp_calloc((size_t)rows_total * 256, sizeof *w->tab);
    w->members = nmp_malloc((size_t)nsub * (size_t)m);
    w->dval = nmp_malloc((size_t)nsub * sizeof *w->dval);
    if (kc <= WIN_DENSE_COLS)
        w->fd = nmp_malloc(((size_t)1 << kc) * sizeof *w->fd);
    else
        w->f = nmp_malloc((size_t)nstates * sizeof *w->f);
    if (pairwise) {
        w->pairs = nmp_malloc((size_t)nsub * 2 * sizeof *w->pairs);
        w->hi = nmp_malloc(npairs * WIN_BLOCK * sizeof *w->hi);
        w->lo = nmp_malloc(npairs * WIN_BLOCK * sizeof *w->lo);
    }
    if (!w->tab || !w->members || !w->dval || (!w->f && !w->fd) ||
        (pairwise && (!w->pairs || !w->hi || !w->lo))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    for (int c = 0; c < 4; c++)
        for (int below = 0; below <= 8 * c; below++)
            for (int b = 0; b < 256; b++) {
                uint32_t sum = 0;
                int o = below;
                for (int q = 0; q < 8; q++)
                    if (b >> q & 1) {
                        sum += w->bn[8 * c + q][o + 1];
                        o++;
                    }
                w->tab[((size_t)w->toff[c] + (size_t)below) * 256 + (size_t)b] = sum;
            }
    /* the m-subsets of 0..kc-1 in colex order: those of a smaller window are a prefix */
    uint32_t s = (1u << m) - 1u;
    for (int64_t r = 0; r < (int64_t)nsub; r++) {
        int t = 0;
        for (int i = 0; i < kc; i++)
            if (s >> i & 1u)
                w->members[r * m + t++] = (uint8_t)i;
        if (pairwise) {
            const uint8_t *q = w->members + r * m;
            w->pairs[2 * r] = (uint16_t)(w->bn[q[1]][2] + q[0]);
            w->pairs[2 * r + 1] = (uint16_t)(w->bn[q[3]][2] + q[2]);
        }
        if (r + 1 < (int64_t)nsub)
            s = next_subset(s);
    }
    *out = w;
    w = NULL;
out:
    nmp_window_free(w);
    return e;
}

int nmp_window_max_k(const nmp_window *w)
{
    return w->max_k;
}

void nmp_window_set_clock(nmp_window *w, const nmp_clock *clk)
{
    w->clk = clk;
}

/* true when this solve watches the clock, count is a multiple of every and the limit has passed */
static inline bool expired(const nmp_window *w, int64_t count, int64_t every)
{
    return w->watch && count % every == every - 1 && nmp_clock_expired(w->clk);
}

static inline float lanes_sum(const float *acc)
{
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* dval[r] = D(subset r) for the C(cols, 4) subsets, 2:4, pairs shared per block of rows; false
 * when the clock stopped it. */
static bool values_2of4(nmp_window *w, int cols)
{
    const int64_t rows = w->pb->rows;
    const int64_t nsub = w->bn[cols][4];
    float *hi = w->hi, *lo = w->lo;
    for (int64_t r = 0; r < nsub; r++)
        w->dval[r] = 0;
    for (int64_t j0 = 0; j0 < rows; j0 += WIN_BLOCK) {
        if (expired(w, 0, 1))
            return false;
        const int len = (int)NMP_MIN((int64_t)WIN_BLOCK, rows - j0);
        const int span = (len + WIN_LANES - 1) / WIN_LANES * WIN_LANES;
        int p = 0;
        for (int b = 1; b < cols; b++)
            for (int a = 0; a < b; a++, p++) {
                const float *x = w->col[a] + j0, *y = w->col[b] + j0;
                float *h = hi + (size_t)p * WIN_BLOCK, *l = lo + (size_t)p * WIN_BLOCK;
                for (int j = 0; j < len; j++) {
                    h[j] = NMP_MAX(x[j], y[j]);
                    l[j] = NMP_MIN(x[j], y[j]);
                }
                for (int j = len; j < span; j++) /* zeros add nothing to a top-2 */
                    h[j] = l[j] = 0;
            }
        for (int64_t r = 0; r < nsub; r++) {
            const size_t pa = w->pairs[2 * r], pc = w->pairs[2 * r + 1];
            const float *ha = hi + pa * WIN_BLOCK, *la = lo + pa * WIN_BLOCK;
            const float *hc = hi + pc * WIN_BLOCK, *lc = lo + pc * WIN_BLOCK;
            float acc[WIN_LANES] = { 0 };
            for (int j = 0; j < span; j += WIN_LANES)
                for (int u = 0; u < WIN_LANES; u++) {
                    const float x = ha[j + u], y = hc[j + u];
                    const float lmax = NMP_MAX(la[j + u], lc[j + u]);
                    acc[u] += NMP_MAX(x, y) + NMP_MAX(NMP_MIN(x, y), lmax);
                }
            w->dval[r] += (double)lanes_sum(acc);
        }
    }
    return true;
}

/* dval[r] = D(subset r) for the C(cols, m) subsets, any N:M. Per block of rows the top n of a
 * row are kept sorted in n arrays (one per rank) and each column is merged in by a min/max
 * network, so the loops run over rows and vectorise; values are >= 0, so starting from zeros
 * changes nothing. False when the clock stopped it (looked at every 64 subsets). */
static bool values_any(nmp_window *w, int cols)
{
    const int64_t rows = w->pb->rows;
    const int m = w->m, n = w->n;
    const int64_t nsub = w->bn[cols][m];
    float top[NMP_MAX_M][WIN_BLOCK], x[WIN_BLOCK];
    for (int64_t r = 0; r < nsub; r++) {
        if (expired(w, r, 64))
            return false;
        const uint8_t *q = w->members + r * m;
        double total = 0;
        for (int64_t j0 = 0; j0 < rows; j0 += WIN_BLOCK) {
            const int len = (int)NMP_MIN((int64_t)WIN_BLOCK, rows - j0);
            const int span = (len + WIN_LANES - 1) / WIN_LANES * WIN_LANES;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < span; j++)
                    top[i][j] = 0;
            for (int t = 0; t < m; t++) {
                const float *c = w->col[q[t]] + j0;
                for (int j = 0; j < len; j++)
                    x[j] = c[j];
                for (int j = len; j < span; j++)
                    x[j] = 0;
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < span; j++) {
                        const float hi = NMP_MAX(top[i][j], x[j]);
                        x[j] = NMP_MIN(top[i][j], x[j]);
                        top[i][j] = hi;
                    }
            }
            float acc[WIN_LANES] = { 0 };
            for (int j = 0; j < span; j += WIN_LANES)
                for (int u = 0; u < WIN_LANES; u++) {
                    float v = top[0][j + u];
                    for (int i = 1; i < n; i++)
                        v += top[i][j + u];
                    acc[u] += v;
                }
            total += (double)lanes_sum(acc);
        }
        w->dval[r] = total;
    }
    return true;
}

/* One DP state's search over the groups led by the lowest free column. */
typedef struct walk {
    const nmp_window *w;
    const double *fnext; /* level t + 1 */
    int shift, nf;       /* shift = t + 1; nf free columns in fr[] */
    int fr[32];
    double best;
    uint32_t arg; /* U plus the best group */
} walk;

/* Members t .. m-1 of the group; mask is U plus the members so far, qrank their colex sum. */
static void walk_rec(walk *k, int t, int i0, uint32_t mask, uint32_t qrank)
{
    const nmp_window *w = k->w;
    const int m = w->m;
    if (t == m - 1 && !k->shift) { /* dense: f by the used mask */
        const double *dval = w->dval, *fd = k->fnext;
        for (int i = i0; i < k->nf; i++) {
            const int x = k->fr[i];
            const uint32_t succ = mask | 1u << x;
            const double v = dval[qrank + w->bn[x][m]] + fd[succ];
            if (v > k->best) {
                k->best = v;
                k->arg = succ;
            }
        }
        return;
    }
    if (t == m - 1) {
        const double *dval = w->dval, *fnext = k->fnext;
        for (int i = i0; i < k->nf; i++) {
            const int x = k->fr[i];
            const uint32_t succ = mask | 1u << x;
            const double v = dval[qrank + w->bn[x][m]] + fnext[rank32(w, succ >> k->shift)];
            if (v > k->best) {
                k->best = v;
                k->arg = succ;
            }
        }
        return;
    }
    for (int i = i0; i <= k->nf - (m - t); i++) {
        const int x = k->fr[i];
        walk_rec(k, t + 1, i + 1, mask | 1u << x, qrank + w->bn[x][t + 1]);
    }
}

/* walk_rec for m = 4 as three flat loops: the innermost loop is long enough to pay. */
static void walk4(walk *k, uint32_t mask, uint32_t qrank)
{
    const nmp_window *w = k->w;
    const double *dval = w->dval, *fnext = k->fnext;
    const int nf = k->nf, shift = k->shift;
    double best = k->best;
    uint32_t arg = k->arg;
    for (int i1 = 1; i1 < nf - 2; i1++) {
        const int x1 = k->fr[i1];
        const uint32_t m1 = mask | 1u << x1, r1 = qrank + w->bn[x1][2];
        for (int i2 = i1 + 1; i2 < nf - 1; i2++) {
            const int x2 = k->fr[i2];
            const uint32_t m2 = m1 | 1u << x2, r2 = r1 + w->bn[x2][3];
            for (int i3 = i2 + 1; i3 < nf; i3++) {
                const int x3 = k->fr[i3];
                const uint32_t succ = m2 | 1u << x3;
                const uint32_t fi = shift ? rank32(w, succ >> shift) : succ;
                const double v = dval[r2 + w->bn[x3][4]] + fnext[fi];
                if (v > best) {
                    best = v;
                    arg = succ;
                }
            }
        }
    }
    k->best = best;
    k->arg = arg;
}

/* f(U) for U at level t of a window of cols columns. */
static void walk_state(walk *k, const double *fnext, int t, int cols, uint32_t u)
{
    int nf = 0;
    for (int i = t; i < cols; i++) { /* branch-free: the bits are random */
        k->fr[nf] = i;
        nf += (int)(~u >> i & 1u);
    }
    k->nf = nf;
    k->fnext = fnext;
    k->shift = k->w->fd ? 0 : t + 1;
    k->best = -HUGE_VAL;
    k->arg = 0;
    const int l = k->fr[0];
    if (k->w->m == 4) {
        walk4(k, u | 1u << l, (uint32_t)l);
        return;
    }
    walk_rec(k, 1, 1, u | 1u << l, (uint32_t)l);
}

double nmp_window_solve(nmp_window *w, const int32_t *cols, int k, int32_t *out, double *cur)
{
    const nmp_problem *pb = w->pb;
    const int m = w->m;
    const int kc = k * m;
    for (int i = 0; i < kc; i++)
        w->col[i] = nmp_col(pb, cols[i]);
    w->watch = w->clk && nmp_window_cost(w, k) > WIN_CHECK_NS;
    if (cur)
        *cur = 0;
    if (!(m == 4 && w->n == 2 ? values_2of4(w, kc) : values_any(w, kc)))
        return -HUGE_VAL;

    /* the given partition, summed as a DP path: D(g0) + (D(g1) + (... + 0)) */
    double given = 0;
    for (int t = k - 1; t >= 0; t--) {
        uint32_t r = 0;
        for (int u = 0; u < m; u++)
            r += w->bn[t * m + u][u + 1];
        given = w->dval[r] + given;
    }
    if (cur)
        *cur = given;

    /* levels: off[t] .. off[t] + C(kc - t, t(m-1)); level k is the full set, f = 0 */
    int64_t off[WIN_NB + 1];
    off[0] = 0;
    for (int t = 0; t < k; t++)
        off[t + 1] = off[t] + (int64_t)w->bn[kc - t][t * (m - 1)];
    const uint32_t full = kc == 32 ? ~0u : (1u << kc) - 1u;
    walk wk;
    wk.w = w;
    if (w->fd)
        w->fd[full] = 0;
    else
        w->f[off[k]] = 0;
    for (int t = k - 1; t >= 0; t--) {
        const int p = t * (m - 1);
        const int64_t count = (int64_t)w->bn[kc - t][p];
        const uint32_t lead = (1u << t) - 1u;
        double *ft = w->fd ? w->fd : w->f + off[t];
        const double *fnext = w->fd ? w->fd : w->f + off[t + 1];
        uint32_t s = p ? (1u << p) - 1u : 0u;
        for (int64_t r = 0; r < count; r++) {
            if (expired(w, r, WIN_CHECK_STATES))
                return -HUGE_VAL;
            const uint32_t u = s << t | lead;
            double best;
            if (t == k - 1) { /* the last group is what is left */
                best = w->dval[rank32(w, full & ~u)];
            } else {
                walk_state(&wk, fnext, t, kc, u);
                best = wk.best;
            }
            ft[w->fd ? u : (uint32_t)r] = best;
            if (r + 1 < count)
                s = next_subset(s);
        }
    }
    const double best = w->fd ? w->fd[0] : w->f[0];

    if (out) {
        uint32_t u = 0;
        for (int t = 0; t < k; t++) {
            walk_state(&wk, w->fd ? w->fd : w->f + off[t + 1], t, kc, u);
            const uint32_t q = wk.arg & ~u;
            int x = 0;
            for (int i = 0; i < kc; i++)
                if (q >> i & 1u)
                    out[t * m + x++] = cols[i];
            u = wk.arg;
        }
    }
    return best;
}

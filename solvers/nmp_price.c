/* nmp_price.c: exact pricing of the set-partitioning master, max over m-subsets S of D(S) - y(S)
 *
 * rc(S) = D(S) - sum_{i in S} y_i,  D(S) = sum_j topn(s(j, S)).
 *
 * Branch-and-bound over subsets built by increasing position in an order of the columns
 * (decreasing colsum - y, so that good subsets come first and the late first-level branches,
 * which have few candidates, prune at once). A node is a partial subset P (|P| = p) whose
 * r = m - p further members come from the candidates after its last member.
 *
 * Bound. D is a sum over rows of "sum of the n largest", a weighted uniform-matroid rank, hence
 * monotone submodular, so for every completion R of P
 *     D(P + R) <= D(P) + sum_{c in R} g_P(c),
 *     g_P(c) = D(P + c) - D(P) = sum_j max(0, s(j,c) - t_j(P))
 * with t_j(P) the n-th largest value of row j in P (0 while p < n: all values are >= 0). With
 * h_P(c) = g_P(c) - y_c every completion has rc <= val(P) + (sum of the r largest h_P over the
 * candidates), val(P) = D(P) - y(P). Because gains only shrink as P grows, the h of the parent
 * are upper bounds for the child's and filter its candidates before their gains are computed
 * (O(rows) each, the cost that matters). When r = 1 the children are leaves and val(P) + h_P(c)
 * is their rc, so a leaf costs no extra row pass; candidates above the threshold are re-evaluated
 * exactly (nmp_score_group_value) before they are kept.
 *
 * Floats. Gains are float sums (vectorised); each is inflated by its worst-case rounding error so
 * all bounds stay upper bounds, and only exact double values decide what is returned.
 *
 * Result. The best k subsets by (rc descending, then members lexicographically), among those with
 * rc > thr. The threshold is raised to the k-th best rc found so far (prune only when a bound is
 * strictly below it), so every subset of the true top k survives: the result does not depend on
 * the thread count or timing. Threads share the first-level branches (dynamic schedule) and keep
 * private heaps ordered by the same total order, merged at the end.
 *
 * Rules (branch-and-price, Ryan-Foster): pairs that must be together form components, which a
 * subset holds whole or not at all; apart pairs may not both be in a subset. Members of a
 * component enter in position order (rank), and a count of still required members keeps the
 * search from starting a component it cannot finish. Bounds use every candidate that is not
 * banned (a superset of the feasible completions), so they stay valid.
 *
 * Cheap sources first (nmp_price_solve): the device (nmp_price_set_backend), then the heuristic
 * (nmp_price_set_heuristic), each recomputed exactly; the exact search runs only when they find
 * nothing above thr, so "nothing prices out" is always its certificate. The exact search costs
 * about the same near the LP optimum whatever it finds (its proof dominates: 3.4e5 nodes at
 * 128 x 128, 2.8e6 at 256 x 256), while heuristic rounds cost 1-2 % of one; a generation ends
 * with two exact rounds instead of one per round. The heuristic has two parts:
 *  - per seed column a greedy subset (best marginal gain minus dual, the gains of the search
 *    above) improved by 1-swaps: it finds columns while the duals are far from optimal;
 *  - a memory: with the heuristic on, an exact search for up to hcap columns lists the best hcap
 *    subsets whatever their rc (at the cost of its proof), and heuristic rounds re-price them. Near
 *    the optimum the greedy subsets are mostly the master's own (rc 0), and the columns that price
 *    out in the next rounds were among the memory's (measured: all of them, 4096 kept at 256
 *    columns), so after the first exact round the generation needs one more, the last. */
#include "nmp_solvers.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "nmp_price_int.h"


/* ----------------------------------------------------------------- order */

/* a before b in the result: larger rc, then lexicographically smaller members */
static int item_before(const pr_item *a, const pr_item *b, int m)
{
    if (a->rc != b->rc)
        return a->rc > b->rc;
    for (int t = 0; t < m; t++)
        if (a->cols[t] != b->cols[t])
            return a->cols[t] < b->cols[t];
    return 0;
}

/* the same order for qsort; unused member slots are -1 in every item */
int pr_item_cmp(const void *pa, const void *pb)
{
    const pr_item *a = pa, *b = pb;
    if (item_before(a, b, NMP_MAX_M))
        return -1;
    if (item_before(b, a, NMP_MAX_M))
        return 1;
    return 0;
}

/* Min-heap by the total order: the root is the worst kept item. */
static void heap_push(pr_work *w, int64_t kmax, const pr_item *it, int m)
{
    pr_item *hp = w->heap;
    int64_t k;
    if (w->count < kmax) {
        k = w->count++;
    } else {
        if (!item_before(it, &hp[0], m))
            return;
        /* replace the root and sift down */
        k = 0;
        for (;;) {
            int64_t c = 2 * k + 1;
            if (c >= w->count)
                break;
            if (c + 1 < w->count && item_before(&hp[c], &hp[c + 1], m))
                c++;
            if (!item_before(it, &hp[c], m))
                break;
            hp[k] = hp[c];
            k = c;
        }
        hp[k] = *it;
        return;
    }
    while (k > 0) {
        const int64_t par = (k - 1) / 2;
        if (!item_before(&hp[par], it, m))
            break;
        hp[k] = hp[par];
        k = par;
    }
    hp[k] = *it;
}

/* ------------------------------------------------------------- lifecycle */

void nmp_price_free(nmp_price *pr)
{
    if (!pr)
        return;
    if (pr->work)
        for (int t = 0; t < pr->threads; t++) {
            pr_work *w = &pr->work[t];
            nmp_free(w->t);
            nmp_free(w->cand);
            nmp_free(w->h);
            nmp_free(w->suf);
            nmp_free(w->ban);
            nmp_free(w->cnt);
            nmp_free(w->heap);
            nmp_free(w->ht);
            nmp_free(w->hin);
            nmp_free(w->hban);
        }
    nmp_free(pr->work);
    nmp_free(pr->merge);
    nmp_free(pr->drc);
    nmp_free(pr->dcols);
    nmp_free(pr->ditems);
    nmp_free(pr->hitems);
    nmp_free(pr->hmem);
    nmp_free(pr->colsum);
    nmp_free(pr->sord);
    nmp_free(pr->ord);
    nmp_free(pr->pos);
    nmp_free(pr->yo);
    nmp_free(pr->h0);
    nmp_free(pr->suf0);
    nmp_free(pr->kp);
    nmp_free(pr->comp);
    nmp_free(pr->csize);
    nmp_free(pr->crank);
    nmp_free(pr->compo);
    nmp_free(pr->adj0);
    nmp_free(pr->adj);
    nmp_free(pr->uf);
    nmp_free(pr);
}

nmp_err nmp_price_create(const nmp_problem *pb, int threads, int64_t kmax, nmp_price **out)
{
    nmp_err e = NMP_OK;
    *out = NULL;
    if (kmax < 1 || pb->cols > INT32_MAX / 2)
        return NMP_ERR_ARG;
    nmp_price *pr = nmp_calloc(1, sizeof *pr);
    if (!pr)
        return NMP_ERR_NOMEM;
    pr->pb = pb;
    pr->rows = pb->rows;
    pr->cols = (int)pb->cols;
    pr->m = pb->m;
    pr->n = pb->n;
    pr->kmax = kmax;
    pr->kcap = kmax;
#ifdef _OPENMP
    pr->threads = threads > 0 ? threads : omp_get_max_threads();
#else
    (void)threads;
    pr->threads = 1;
#endif
    if (pr->threads < 1)
        pr->threads = 1;
    /* any summation order of rows nonnegative float terms, each rounded once: relative error
     * below (rows + 1) * 2^-24; twice that, plus the rounding of the doubles around it */
    pr->inflate = 1.0 + 2.0 * ((double)pr->rows + 4.0) * 0x1p-24;
    const size_t C = (size_t)pr->cols, R = (size_t)pr->rows, M = (size_t)pr->m;
    pr->colsum = nmp_malloc(C * sizeof *pr->colsum);
    pr->sord = nmp_malloc(C * R * sizeof *pr->sord);
    pr->ord = nmp_malloc(C * sizeof *pr->ord);
    pr->pos = nmp_malloc(C * sizeof *pr->pos);
    pr->yo = nmp_malloc(C * sizeof *pr->yo);
    pr->h0 = nmp_malloc(C * sizeof *pr->h0);
    pr->suf0 = nmp_malloc(C * sizeof *pr->suf0);
    pr->kp = nmp_malloc(C * sizeof *pr->kp);
    pr->comp = nmp_malloc(C * sizeof *pr->comp);
    pr->csize = nmp_calloc(C, sizeof *pr->csize);
    pr->crank = nmp_calloc(C, sizeof *pr->crank);
    pr->compo = nmp_malloc(C * sizeof *pr->compo);
    pr->adj0 = nmp_calloc(C + 1, sizeof *pr->adj0);
    pr->uf = nmp_malloc(C * sizeof *pr->uf);
    pr->work = nmp_calloc((size_t)pr->threads, sizeof *pr->work);
    pr->merge = nmp_malloc((size_t)pr->threads * (size_t)kmax * sizeof *pr->merge);
    if (!pr->colsum || !pr->sord || !pr->ord || !pr->pos || !pr->yo || !pr->h0 || !pr->suf0 ||
        !pr->kp || !pr->comp || !pr->csize || !pr->crank || !pr->compo || !pr->adj0 || !pr->uf ||
        !pr->work || !pr->merge) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    for (int t = 0; t < pr->threads; t++) {
        pr_work *w = &pr->work[t];
        w->tid = t;
        w->t = nmp_malloc((M + 1) * (size_t)pr->n * R * sizeof *w->t);
        w->cand = nmp_malloc((M + 1) * C * sizeof *w->cand);
        w->h = nmp_malloc((M + 1) * C * sizeof *w->h);
        w->suf = nmp_malloc((M + 1) * C * sizeof *w->suf);
        w->ban = nmp_calloc(C, sizeof *w->ban);
        w->cnt = nmp_calloc(C, sizeof *w->cnt);
        w->heap = nmp_malloc((size_t)kmax * sizeof *w->heap);
        if (!w->t || !w->cand || !w->h || !w->suf || !w->ban || !w->cnt || !w->heap) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
        memset(w->t, 0, (size_t)pr->n * R * sizeof *w->t); /* level 0: empty P, all zeros */
    }
    for (int i = 0; i < pr->cols; i++) {
        const float *c = nmp_col(pb, i);
        double s = 0;
        for (int64_t j = 0; j < pr->rows; j++)
            s += (double)c[j];
        pr->colsum[i] = s;
        pr->comp[i] = -1;
    }
    *out = pr;
    pr = NULL;
out:
    nmp_price_free(pr);
    return e;
}

static int32_t uf_find(int32_t *uf, int32_t i)
{
    while (uf[i] != i) {
        uf[i] = uf[uf[i]];
        i = uf[i];
    }
    return i;
}

nmp_err nmp_price_set_rules(nmp_price *pr, int count, const int32_t *a, const int32_t *b,
                            const uint8_t *together)
{
    const int C = pr->cols;
    if (count < 0)
        return NMP_ERR_ARG;
    for (int r = 0; r < count; r++)
        if (a[r] < 0 || a[r] >= C || b[r] < 0 || b[r] >= C || a[r] == b[r])
            return NMP_ERR_ARG;
    if (2 * count > pr->rcap) {
        const int cap = NMP_MAX(2 * count, 2 * pr->rcap);
        int32_t *adj = nmp_realloc(pr->adj, (size_t)cap * sizeof *adj);
        if (!adj)
            return NMP_ERR_NOMEM;
        pr->adj = adj;
        pr->rcap = cap;
    }
    pr->nrules = count;
    for (int i = 0; i < C; i++)
        pr->uf[i] = i;
    for (int r = 0; r < count; r++)
        if (together[r]) {
            const int32_t x = uf_find(pr->uf, a[r]), z = uf_find(pr->uf, b[r]);
            if (x != z)
                pr->uf[NMP_MAX(x, z)] = NMP_MIN(x, z);
        }
    /* components with two or more members get ids 0, 1, ... */
    memset(pr->csize, 0, (size_t)C * sizeof *pr->csize);
    for (int i = 0; i < C; i++)
        pr->csize[uf_find(pr->uf, i)]++;
    int ncomp = 0;
    for (int i = 0; i < C; i++)
        pr->comp[i] = -1;
    for (int i = 0; i < C; i++) {
        const int32_t root = uf_find(pr->uf, i);
        if (pr->csize[root] < 2)
            continue;
        if (root == i)
            pr->comp[i] = ncomp++;
    }
    for (int i = 0; i < C; i++) {
        const int32_t root = uf_find(pr->uf, i);
        if (pr->csize[root] >= 2)
            pr->comp[i] = pr->comp[root];
    }
    /* sizes by component id (csize was by root) */
    int32_t *sz = pr->crank; /* scratch */
    memset(sz, 0, (size_t)C * sizeof *sz);
    for (int i = 0; i < C; i++)
        if (pr->comp[i] >= 0)
            sz[pr->comp[i]]++;
    memcpy(pr->csize, sz, (size_t)C * sizeof *sz);
    /* apart lists */
    memset(pr->adj0, 0, (size_t)(C + 1) * sizeof *pr->adj0);
    for (int r = 0; r < count; r++)
        if (!together[r]) {
            pr->adj0[a[r] + 1]++;
            pr->adj0[b[r] + 1]++;
        }
    for (int i = 0; i < C; i++)
        pr->adj0[i + 1] += pr->adj0[i];
    memcpy(pr->uf, pr->adj0, (size_t)C * sizeof *pr->uf); /* fill pointers */
    for (int r = 0; r < count; r++)
        if (!together[r]) {
            pr->adj[pr->uf[a[r]]++] = b[r];
            pr->adj[pr->uf[b[r]]++] = a[r];
        }
    return NMP_OK;
}

/* ---------------------------------------------------------------- search */


/* Sum of the r largest of h[0..len-1] (into *sr), of the r - 1 largest (*sr1) and the r-th
 * largest (*vr); -inf sums when len < r. */
void pr_top_r(const double *h, int len, int r, double *sr, double *sr1, double *vr)
{
    double top[NMP_MAX_M];
    int k = 0;
    for (int i = 0; i < len; i++) {
        const double x = h[i];
        int q = k < r ? k++ : r;
        if (q == r && x <= top[r - 1])
            continue;
        if (q == r)
            q = r - 1;
        while (q > 0 && top[q - 1] < x) {
            top[q] = top[q - 1];
            q--;
        }
        top[q] = x;
    }
    if (k < r) {
        *sr = *sr1 = *vr = -INFINITY;
        return;
    }
    double s = 0;
    for (int i = 0; i < r - 1; i++)
        s += top[i];
    *sr1 = s;
    *sr = s + top[r - 1];
    *vr = top[r - 1];
}

/* suf[k] = sum of the q largest of h[k+1 .. len-1] (-inf when fewer than q) */
static void suffix_top(const double *h, int len, int q, double *suf)
{
    double top[NMP_MAX_M];
    int k = 0;
    double s = 0;
    for (int i = len - 1; i >= 0; i--) {
        suf[i] = k == q ? s : -INFINITY;
        const double x = h[i];
        if (k < q) {
            int p = k++;
            while (p > 0 && top[p - 1] < x) {
                top[p] = top[p - 1];
                p--;
            }
            top[p] = x;
            s += x;
        } else if (q > 0 && x > top[q - 1]) {
            s += x - top[q - 1];
            int p = q - 1;
            while (p > 0 && top[p - 1] < x) {
                top[p] = top[p - 1];
                p--;
            }
            top[p] = x;
        }
    }
}

/* Required members after adding position c at depth p (r slots before adding), or -1 when c may
 * not be added: its component's earlier members are missing, or it cannot be completed. */
static inline int admit(const nmp_price *pr, const pr_work *w, int p, int32_t c, int r)
{
    if (!pr->nrules)
        return 0;
    if (w->ban[c])
        return -1;
    const int32_t cp = pr->compo[c];
    int need = w->req[p];
    if (cp >= 0) {
        if (pr->crank[c] != w->cnt[cp])
            return -1;
        need += pr->crank[c] == 0 ? pr->csize[cp] - 1 : -1;
    }
    return need <= r - 1 ? need : -1;
}

/* Level p of the tops: level p - 1 with the column at w->P[p - 1] inserted. */
static void make_tops(const nmp_price *pr, pr_work *w, int p)
{
    const int64_t rows = pr->rows;
    const int n = pr->n;
    const float *s = pr->sord + (int64_t)w->P[p - 1] * rows;
    const float *src = w->t + (int64_t)(p - 1) * n * rows;
    float *dst = w->t + (int64_t)p * n * rows;
    if (n == 2) {
        const float *a0 = src, *a1 = src + rows;
        float *b0 = dst, *b1 = dst + rows;
        for (int64_t j = 0; j < rows; j++) { /* branch-free: max/min, vectorised */
            const float x = s[j], u = a0[j], v = a1[j];
            const float lo = x < u ? x : u;
            b0[j] = x > u ? x : u;
            b1[j] = lo > v ? lo : v;
        }
    } else {
        for (int64_t j = 0; j < rows; j++) {
            float x = s[j];
            for (int k = 0; k < n; k++) {
                const float v = src[k * rows + j];
                if (x > v) {
                    dst[k * rows + j] = x;
                    x = v;
                } else {
                    dst[k * rows + j] = v;
                }
            }
        }
    }
}

static void push(nmp_price *pr, pr_work *w, int p, int32_t c, int need)
{
    w->P[p] = c;
    w->req[p + 1] = need;
    if (pr->nrules) {
        const int32_t col = pr->ord[c];
        for (int32_t e = pr->adj0[col]; e < pr->adj0[col + 1]; e++)
            w->ban[pr->pos[pr->adj[e]]]++;
        if (pr->compo[c] >= 0)
            w->cnt[pr->compo[c]]++;
    }
}

static void pop(nmp_price *pr, pr_work *w, int32_t c)
{
    if (pr->nrules) {
        const int32_t col = pr->ord[c];
        for (int32_t e = pr->adj0[col]; e < pr->adj0[col + 1]; e++)
            w->ban[pr->pos[pr->adj[e]]]--;
        if (pr->compo[c] >= 0)
            w->cnt[pr->compo[c]]--;
    }
}

static void publish(nmp_price *pr, pr_work *w)
{
    if (w->count < pr->kmax)
        return;
    const double v = w->heap[0].rc;
    if (v > w->thr)
        w->thr = v;
#ifdef _OPENMP
#pragma omp critical(nmp_price_thr)
#endif
    {
        if (v > pr->shared_thr)
            pr->shared_thr = v;
    }
}

static bool stopped(nmp_price *pr)
{
    int stop;
#ifdef _OPENMP
#pragma omp atomic read
#endif
    stop = pr->stop;
    return stop != 0;
}

/* Reads the shared threshold and stop flag; thread 0 runs the clock. True: stop. */
bool pr_poll(nmp_price *pr, pr_work *w)
{
    double s;
#ifdef _OPENMP
#pragma omp atomic read
#endif
    s = pr->shared_thr;
    if (s > w->thr)
        w->thr = s;
    if (pr->clk && w->tid == 0 && ((++w->polls & 63) == 0 || w->work >= PR_POLL_WORK)) {
        w->work = 0;
        if (nmp_clock_tick(pr->clk, pr->iteration, pr->best, pr->bound, "pricing", false)) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
            pr->stop = 1;
        }
    }
    return stopped(pr);
}

bool pr_poll_work(nmp_price *pr, pr_work *w, int64_t units)
{
    w->work += units;
    return pr_poll(pr, w);
}

/* A complete subset: P[0..m-2] plus position c. Evaluated exactly, kept if it qualifies. */
static void leaf(nmp_price *pr, pr_work *w, int32_t c)
{
    const int m = pr->m;
    pr_item it;
    for (int t = m; t < NMP_MAX_M; t++)
        it.cols[t] = -1;
    for (int t = 0; t < m - 1; t++)
        it.cols[t] = pr->ord[w->P[t]];
    it.cols[m - 1] = pr->ord[c];
    for (int t = 1; t < m; t++) { /* insertion sort, m is small */
        const int32_t x = it.cols[t];
        int q = t;
        while (q > 0 && it.cols[q - 1] > x) {
            it.cols[q] = it.cols[q - 1];
            q--;
        }
        it.cols[q] = x;
    }
    it.value = nmp_score_group_value(pr->pb, it.cols);
    double ys = 0;
    for (int t = 0; t < m; t++)
        ys += pr->y[it.cols[t]];
    it.rc = it.value - ys;
    if (!(it.rc > pr->thr_in) || it.rc < w->thr)
        return;
    heap_push(w, pr->kmax, &it, m);
    publish(pr, w);
}

/* Node P = w->P[0..p-1] of value val (upper bound of D(P) - y(P)); its candidates and their
 * inherited upper h are at level p. */
static void expand(nmp_price *pr, pr_work *w, int p, int len, double val)
{
    const int m = pr->m, n = pr->n, r = m - p;
    const int64_t rows = pr->rows, C = pr->cols;
    int32_t *cand = w->cand + p * C;
    double *h = w->h + p * C;
    double sr, sr1, vr;
    if (pr_poll(pr, w) || len < r)
        return;
    w->nodes++;
    /* A: drop candidates whose best completion through the inherited bounds misses thr */
    pr_top_r(h, len, r, &sr, &sr1, &vr);
    if (val + sr < w->thr)
        return;
    int k2 = 0;
    for (int k = 0; k < len; k++) {
        const double u = h[k];
        const double b = u >= vr ? val + sr : val + u + sr1;
        if (b < w->thr || (pr->nrules && w->ban[cand[k]]))
            continue;
        cand[k2] = cand[k];
        h[k2++] = u;
    }
    len = k2;
    if (len < r)
        return;
    /* B: gains with respect to P (while p < n the gains are the column sums: inherited as is) */
    make_tops(pr, w, p);
    if (p >= n) {
        const float *t = w->t + ((int64_t)p * n + n - 1) * rows;
        const double infl = pr->inflate;
        for (int k = 0; k < len; k++) {
            const int32_t c = cand[k];
            const double g = (double)pr_gain(pr->sord + (int64_t)c * rows, t, rows) * infl;
            h[k] = g - pr->yo[c];
        }
        pr_top_r(h, len, r, &sr, &sr1, &vr);
        if (val + sr < w->thr)
            return;
    }
    /* C: leaves */
    if (r == 1) {
        for (int k = 0; k < len; k++)
            if (val + h[k] >= w->thr && admit(pr, w, p, cand[k], 1) == 0)
                leaf(pr, w, cand[k]);
        return;
    }
    /* D: children, each bounded by its own h plus the r - 1 best after it */
    double *suf = w->suf + p * C;
    suffix_top(h, len, r - 1, suf);
    int32_t *ncand = cand + C;
    double *nh = h + C;
    for (int k = 0; k < len - r + 1; k++) {
        if (val + h[k] + suf[k] < w->thr)
            continue;
        const int need = admit(pr, w, p, cand[k], r);
        if (need < 0)
            continue;
        const int nl = len - k - 1;
        memcpy(ncand, cand + k + 1, (size_t)nl * sizeof *ncand);
        memcpy(nh, h + k + 1, (size_t)nl * sizeof *nh);
        push(pr, w, p, cand[k], need);
        expand(pr, w, p + 1, nl, val + h[k]);
        pop(pr, w, cand[k]);
        if (stopped(pr))
            return;
    }
}

static int key_cmp(const void *pa, const void *pb)
{
    const key_pos *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key > b->key ? -1 : 1;
    return (a->col > b->col) - (a->col < b->col);
}

/* ------------------------------------------------------------------ solve */

/* The search order (decreasing colsum - y, ties by column) and the arrays by position. */
static void arrange(nmp_price *pr, const double *y)
{
    const int C = pr->cols;
    const int64_t rows = pr->rows;
    key_pos *kp = pr->kp;
    for (int i = 0; i < C; i++) {
        kp[i].key = pr->colsum[i] - y[i];
        kp[i].col = i;
    }
    qsort(kp, (size_t)C, sizeof *kp, key_cmp);
    for (int q = 0; q < C; q++) {
        pr->ord[q] = kp[q].col;
        pr->pos[kp[q].col] = q;
    }
    for (int q = 0; q < C; q++) {
        const int32_t i = pr->ord[q];
        memcpy(pr->sord + (int64_t)q * rows, nmp_col(pr->pb, i), (size_t)rows * sizeof(float));
        pr->yo[q] = y[i];
        pr->h0[q] = pr->colsum[i] * pr->inflate - y[i];
        pr->compo[q] = pr->comp[i];
    }
    if (pr->nrules) {
        memset(pr->uf, 0, (size_t)C * sizeof *pr->uf); /* members seen per component */
        for (int q = 0; q < C; q++)
            if (pr->compo[q] >= 0)
                pr->crank[q] = pr->uf[pr->compo[q]]++;
    }
}

/* What a round may use: the cheap sources then the exact search (nmp_price_solve), the exact
 * search alone (nmp_price_exact), or the heuristic alone (nmp_price_heuristic). */
typedef enum price_mode { PRICE_CHEAP, PRICE_EXACT, PRICE_HEURISTIC } price_mode;

static nmp_err price(nmp_price *pr, const double *y, double thr, int64_t k, nmp_clock *clk,
                     const nmp_report *rep, nmp_price_out *out, price_mode mode)
{
    const bool cheap = mode == PRICE_CHEAP;
    const int C = pr->cols, m = pr->m;
    out->found = 0;
    out->complete = false;
    out->nodes = 0;
    out->rc_max = -INFINITY;
    if (k < 1 || k > pr->kmax)
        return NMP_ERR_ARG;
    if (cheap && pr->be) {
        bool done = false;
        const nmp_err e = pr_device_round(pr, y, thr, k, out, &done);
        if (e != NMP_OK || done)
            return e;
    }
    arrange(pr, y);
    pr->y = y;
    pr->thr_in = thr;
    pr->shared_thr = thr;
    pr->stop = 0;
    pr->clk = clk;
    pr->best = rep ? rep->best : 0;
    pr->bound = rep ? rep->bound : 0;
    pr->iteration = rep ? rep->iteration : 0;
    for (int t = 0; t < pr->threads; t++)
        pr->work[t].polls = pr->work[t].work = 0;
    if (mode == PRICE_HEURISTIC) { /* nothing found is no proof either: rc_max stays unknown */
        if (pr->heur && !pr_heuristic_round(pr, thr, k, out))
            return NMP_OK; /* stopped (complete false) */
        out->complete = true;
        out->rc_max = INFINITY;
        return NMP_OK;
    }
    if (cheap && pr->heur && (!pr_heuristic_round(pr, thr, k, out) || out->found > 0))
        return NMP_OK; /* columns, or stopped (complete false) */
    /* With the heuristic, a search for up to hcap columns lists the best hcap whatever their rc
     * (its memory): near the LP optimum this costs no more nodes, the proof dominates. */
    const bool mem = pr->heur && k <= pr->hcap;
    const double sthr = mem ? -INFINITY : thr;
    const int64_t sk = mem ? pr->hcap : k;
    const int64_t kk = pr->kmax;
    pr->kmax = sk;
    pr->thr_in = sthr;
    pr->shared_thr = sthr;
    suffix_top(pr->h0, C, m - 1, pr->suf0);
    for (int t = 0; t < pr->threads; t++) {
        pr_work *w = &pr->work[t];
        w->count = 0;
        w->nodes = 0;
        w->polls = w->work = 0;
        w->thr = sthr;
        w->req[0] = 0;
    }
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(pr->threads) if (C >= 48)
#endif
    for (int q = 0; q < C - m + 1; q++) {
#ifdef _OPENMP
        pr_work *w = &pr->work[omp_get_thread_num()];
#else
        pr_work *w = &pr->work[0];
#endif
        if (pr_poll(pr, w) || pr->h0[q] + pr->suf0[q] < w->thr)
            continue;
        const int need = admit(pr, w, 0, q, m);
        if (need < 0)
            continue;
        const int len = C - q - 1;
        for (int t = 0; t < len; t++)
            w->cand[C + t] = q + 1 + t;
        memcpy(w->h + C, pr->h0 + q + 1, (size_t)len * sizeof *w->h);
        push(pr, w, 0, q, need);
        expand(pr, w, 1, len, pr->h0[q]);
        pop(pr, w, q);
    }
    pr->kmax = kk;
    /* merge */
    int64_t total = 0;
    for (int t = 0; t < pr->threads; t++) {
        memcpy(pr->merge + total, pr->work[t].heap, (size_t)pr->work[t].count * sizeof *pr->merge);
        total += pr->work[t].count;
        out->nodes += pr->work[t].nodes;
    }
    qsort(pr->merge, (size_t)total, sizeof *pr->merge, pr_item_cmp);
    int64_t above = 0; /* all of them without the memory: their rc > thr */
    while (above < total && pr->merge[above].rc > thr)
        above++;
    out->found = NMP_MIN(above, k);
    for (int64_t q = 0; q < out->found; q++) {
        memcpy(out->cols + q * m, pr->merge[q].cols, (size_t)m * sizeof *out->cols);
        out->value[q] = pr->merge[q].value;
        out->rc[q] = pr->merge[q].rc;
    }
    if (out->found > 0)
        out->rc_max = out->rc[0];
    out->complete = pr->stop == 0;
    if (mem && out->complete) {
        pr->hcount = NMP_MIN(total, pr->hcap); /* threads * hcap were merged */
        memcpy(pr->hmem, pr->merge, (size_t)pr->hcount * sizeof *pr->hmem);
    }
    return NMP_OK;
}

nmp_err nmp_price_solve(nmp_price *pr, const double *y, double thr, int64_t k, nmp_clock *clk,
                        const nmp_report *rep, nmp_price_out *out)
{
    return price(pr, y, thr, k, clk, rep, out, PRICE_CHEAP);
}

nmp_err nmp_price_exact(nmp_price *pr, const double *y, double thr, int64_t k, nmp_clock *clk,
                        const nmp_report *rep, nmp_price_out *out)
{
    return price(pr, y, thr, k, clk, rep, out, PRICE_EXACT);
}

nmp_err nmp_price_heuristic(nmp_price *pr, const double *y, double thr, int64_t k,
                            nmp_clock *clk, const nmp_report *rep, nmp_price_out *out)
{
    return price(pr, y, thr, k, clk, rep, out, PRICE_HEURISTIC);
}

/* nmp_price_src.c: columns for the set-partitioning master found before the exact search
 * (nmp_price.c): the device round (every column's best subset on the scoring backend) and the
 * heuristic round (per column a greedy subset, 1-swaps, and a memory of the last exact search).
 * Both recompute what they keep exactly; when neither finds a column the exact search runs, so
 * "nothing prices out" is always its certificate. */
#include "nmp_price_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

nmp_err nmp_price_set_backend(nmp_price *pr, const nmp_backend *be)
{
    pr->be = NULL;
    if (!be)
        return NMP_OK;
    const size_t C = (size_t)pr->cols;
    if (!pr->drc) {
        pr->drc = nmp_malloc(C * sizeof *pr->drc);
        pr->dcols = nmp_malloc(C * (size_t)pr->m * sizeof *pr->dcols);
        pr->ditems = nmp_malloc(C * sizeof *pr->ditems);
        if (!pr->drc || !pr->dcols || !pr->ditems)
            return NMP_ERR_NOMEM;
    }
    /* The backend's D(S) is float partial sums over 64 rows (added in double): off by at most
     * (64 + n) * 2^-24 of D(S) <= the sum of the m largest column sums; 1e-5 of that covers it */
    double top = 0;
    for (int t = 0; t < pr->m; t++) {
        double big = -1;
        int at = -1;
        for (int i = 0; i < pr->cols; i++) {
            bool taken = false;
            for (int u = 0; u < t; u++)
                taken = taken || pr->dcols[u] == i;
            if (!taken && pr->colsum[i] > big) {
                big = pr->colsum[i];
                at = i;
            }
        }
        pr->dcols[t] = at;
        top += big;
    }
    pr->dmargin = 1e-5 * top;
    pr->be = be;
    return NMP_OK;
}

/* Whether the m members of c (ascending) keep the Ryan-Foster rules. */
static bool keeps_rules(const nmp_price *pr, const int32_t *c)
{
    const int m = pr->m;
    for (int t = 0; t < m; t++) {
        const int32_t cp = pr->comp[c[t]];
        if (cp >= 0) { /* the whole component or none of it */
            int in = 0;
            for (int u = 0; u < m; u++)
                in += pr->comp[c[u]] == cp;
            if (in != pr->csize[cp])
                return false;
        }
        for (int32_t q = pr->adj0[c[t]]; q < pr->adj0[c[t] + 1]; q++)
            for (int u = 0; u < m; u++)
                if (c[u] == pr->adj[q])
                    return false;
    }
    return true;
}

/* The device round: the backend's best subset per smallest member; those that keep the rules
 * and whose exact rc (recomputed in double) exceeds thr, best k by the exact pricer's order.
 * *done false when the backend cannot serve (the exact pricer then runs); with none found the
 * exact pricer also runs, so "nothing prices out" is always its certificate. out->rc_max bounds
 * every subset's rc (the backend's best plus its rounding margin). */
nmp_err pr_device_round(nmp_price *pr, const double *y, double thr, int64_t k,
                            nmp_price_out *out, bool *done)
{
    const int C = pr->cols, m = pr->m;
    *done = false;
    const nmp_err e = pr->be->pricing(pr->be, y, pr->drc, pr->dcols);
    if (e == NMP_ERR_UNSUPPORTED) {
        pr->be = NULL; /* too many subsets for the backend: the exact pricer from now on */
        return NMP_OK;
    }
    if (e != NMP_OK)
        return e;
    double best = -INFINITY;
    int64_t count = 0;
    for (int i = 0; i < C; i++) {
        if (!(pr->drc[i] > -INFINITY))
            continue;
        best = NMP_MAX(best, pr->drc[i]);
        const int32_t *c = pr->dcols + (int64_t)i * m;
        if (pr->drc[i] + pr->dmargin <= thr || (pr->nrules && !keeps_rules(pr, c)))
            continue;
        pr_item *it = &pr->ditems[count];
        for (int t = 0; t < NMP_MAX_M; t++)
            it->cols[t] = t < m ? c[t] : -1;
        it->value = nmp_score_group_value(pr->pb, c);
        it->rc = it->value;
        for (int t = 0; t < m; t++)
            it->rc -= y[c[t]];
        count += it->rc > thr;
    }
    if (count == 0)
        return NMP_OK;
    qsort(pr->ditems, (size_t)count, sizeof *pr->ditems, pr_item_cmp);
    out->found = NMP_MIN(count, k);
    for (int64_t q = 0; q < out->found; q++) {
        memcpy(out->cols + q * m, pr->ditems[q].cols, (size_t)m * sizeof *out->cols);
        out->value[q] = pr->ditems[q].value;
        out->rc[q] = pr->ditems[q].rc;
    }
    out->rc_max = NMP_MAX(best + pr->dmargin, out->rc[0]);
    out->complete = true;
    *done = true;
    return NMP_OK;
}

/* ------------------------------------------------------------- heuristic */

nmp_err nmp_price_set_heuristic(nmp_price *pr, bool on)
{
    pr->heur = false;
    if (!on)
        return NMP_OK;
    const size_t C = (size_t)pr->cols, R = (size_t)pr->rows;
    const int64_t hcap = NMP_HMEM * (int64_t)C;
    if (!pr->hitems)
        pr->hitems = nmp_malloc((C + (size_t)hcap) * sizeof *pr->hitems);
    if (!pr->hmem)
        pr->hmem = nmp_malloc((size_t)hcap * sizeof *pr->hmem);
    if (!pr->hitems || !pr->hmem)
        return NMP_ERR_NOMEM;
    pr->hcap = hcap;
    if (pr->hcap > pr->kcap) { /* the memory's search keeps hcap subsets */
        const size_t cap = (size_t)pr->hcap;
        bool ok = true;
        pr->merge = nmp_grow(pr->merge, (size_t)pr->threads * cap * sizeof *pr->merge, &ok);
        for (int t = 0; t < pr->threads; t++)
            pr->work[t].heap = nmp_grow(pr->work[t].heap, cap * sizeof *pr->work[t].heap, &ok);
        if (!ok)
            return NMP_ERR_NOMEM;
        pr->kcap = pr->hcap;
    }
    for (int t = 0; t < pr->threads; t++) {
        pr_work *w = &pr->work[t];
        if (!w->ht)
            w->ht = nmp_malloc(2 * (size_t)pr->n * R * sizeof *w->ht);
        if (!w->hin)
            w->hin = nmp_calloc(C, sizeof *w->hin);
        if (!w->hban)
            w->hban = nmp_calloc(C, sizeof *w->hban);
        if (!w->ht || !w->hin || !w->hban)
            return NMP_ERR_NOMEM;
    }
    pr->heur = true;
    return NMP_OK;
}

/* t (n * rows: the k-th largest of row j at k * rows + j) with column s inserted, in place */
static void tops_insert(const nmp_price *pr, float *t, const float *s)
{
    const int64_t rows = pr->rows;
    const int n = pr->n;
    if (n == 2) {
        float *a0 = t, *a1 = t + rows;
        for (int64_t j = 0; j < rows; j++) { /* branch-free, as make_tops */
            const float x = s[j], u = a0[j], v = a1[j];
            const float lo = x < u ? x : u;
            a0[j] = x > u ? x : u;
            a1[j] = lo > v ? lo : v;
        }
        return;
    }
    for (int64_t j = 0; j < rows; j++) {
        float x = s[j];
        for (int k = 0; k < n; k++) {
            const float v = t[k * rows + j];
            if (x > v) {
                t[k * rows + j] = x;
                x = v;
            }
        }
    }
}

/* The apart partners of position q (in or out of the heuristic's S): ban counts += d. */
static void hban(const nmp_price *pr, pr_work *w, int32_t q, int d)
{
    const int32_t col = pr->ord[q];
    for (int32_t e = pr->adj0[col]; e < pr->adj0[col + 1]; e++)
        w->hban[pr->pos[pr->adj[e]]] += d;
}

static void hadd(const nmp_price *pr, pr_work *w, int32_t *P, int *p, int32_t q)
{
    P[(*p)++] = q;
    w->hin[q] = 1;
    if (pr->nrules)
        hban(pr, w, q, 1);
}

/* A heuristic subset from the start positions st[0..ns-1] (a seed and its rule component, kept
 * fixed; or a remembered subset, all free), into *it; it->rc is -inf when there is none that
 * keeps the rules.
 *
 * Greedy completion: m - |S| times add the position c of largest h(c) = D(S + c) - D(S) - y_c
 * (the marginal gain through the row-wise n-th largest of S, as the exact search's g_P; while
 * |S| < n it is the column sum), skipping c whose upper bound h0[c] cannot beat the best so far.
 * Then a 1-swap descent: each free member is replaced by the position of largest h with respect
 * to S less that member, while that is better (at most m passes). Members of rule components are
 * added whole and never swapped; banned positions are skipped. Float gains only guide the
 * choice: the result's value is recomputed exactly. O(m * cols * rows) per pass, before the
 * pruning by h0. */
static void hsearch(nmp_price *pr, pr_work *w, const int32_t *st, int ns, bool fix, pr_item *it)
{
    const int m = pr->m, n = pr->n, C = pr->cols;
    const int64_t rows = pr->rows;
    const size_t tbytes = (size_t)n * (size_t)rows * sizeof *w->ht;
    const int64_t scan = (int64_t)C * rows;
    float *T = w->ht, *T2 = w->ht + (int64_t)n * rows;
    int32_t P[NMP_MAX_M];
    int p = 0;
    it->rc = -INFINITY;
    memset(T, 0, tbytes);
    for (int t = 0; t < ns; t++) {
        if (w->hin[st[t]])
            goto out;
        hadd(pr, w, P, &p, st[t]);
        tops_insert(pr, T, pr->sord + (int64_t)st[t] * rows);
    }
    const int fixed = fix ? p : 0;
    while (p < m) {
        const float *t = T + (int64_t)(n - 1) * rows;
        double best = -INFINITY;
        int32_t arg = -1;
        if (pr_poll_work(pr, w, scan)) /* a scan costs up to cols * rows */
            goto out;
        for (int32_t q = 0; q < C; q++) {
            if (w->hin[q] || pr->h0[q] <= best)
                continue;
            if (pr->nrules) {
                const int32_t cp = pr->compo[q];
                if (w->hban[q] || (cp >= 0 && (pr->crank[q] != 0 || p + pr->csize[cp] > m)))
                    continue;
            }
            const double g =
                (p < n ? pr->colsum[pr->ord[q]]
                       : (double)pr_gain(pr->sord + (int64_t)q * rows, t, rows)) - pr->yo[q];
            if (g > best) {
                best = g;
                arg = q;
            }
        }
        if (arg < 0)
            goto out;
        const int32_t cp = pr->nrules ? pr->compo[arg] : -1;
        for (int32_t q = arg; q < C; q++)
            if (q == arg || (cp >= 0 && pr->compo[q] == cp)) {
                hadd(pr, w, P, &p, q);
                tops_insert(pr, T, pr->sord + (int64_t)q * rows);
            }
    }
    for (int pass = 0; pass < m; pass++) {
        bool moved = false;
        for (int u = fixed; u < m; u++) {
            const int32_t old = P[u];
            if (pr->nrules && pr->compo[old] >= 0)
                continue;
            if (pr_poll_work(pr, w, scan))
                goto out;
            memset(T2, 0, tbytes);
            for (int v = 0; v < m; v++)
                if (v != u)
                    tops_insert(pr, T2, pr->sord + (int64_t)P[v] * rows);
            const float *t = T2 + (int64_t)(n - 1) * rows;
            const bool sums = m - 1 < n; /* S less a member has fewer than n: gains are sums */
            double best = (sums ? pr->colsum[pr->ord[old]]
                                : (double)pr_gain(pr->sord + (int64_t)old * rows, t, rows)) -
                          pr->yo[old];
            int32_t arg = -1;
            if (pr->nrules)
                hban(pr, w, old, -1);
            for (int32_t q = 0; q < C; q++) {
                if (w->hin[q] || pr->h0[q] <= best)
                    continue;
                if (pr->nrules && (w->hban[q] || pr->compo[q] >= 0))
                    continue;
                const double g =
                    (sums ? pr->colsum[pr->ord[q]]
                          : (double)pr_gain(pr->sord + (int64_t)q * rows, t, rows)) - pr->yo[q];
                if (g > best) {
                    best = g;
                    arg = q;
                }
            }
            if (arg >= 0) {
                w->hin[old] = 0;
                P[u] = arg;
                w->hin[arg] = 1;
                moved = true;
            }
            if (pr->nrules)
                hban(pr, w, P[u], 1);
        }
        if (!moved)
            break;
    }
    for (int t = 0; t < NMP_MAX_M; t++)
        it->cols[t] = t < m ? pr->ord[P[t]] : -1;
    for (int t = 1; t < m; t++) { /* insertion sort, m is small */
        const int32_t x = it->cols[t];
        int q = t;
        while (q > 0 && it->cols[q - 1] > x) {
            it->cols[q] = it->cols[q - 1];
            q--;
        }
        it->cols[q] = x;
    }
    if (!pr->nrules || keeps_rules(pr, it->cols)) {
        it->value = nmp_score_group_value(pr->pb, it->cols);
        double ys = 0; /* summed as leaf() sums: the same rc as the exact search */
        for (int t = 0; t < m; t++)
            ys += pr->y[it->cols[t]];
        it->rc = it->value - ys;
    }
out:
    for (int t = 0; t < p; t++) {
        w->hin[P[t]] = 0;
        if (pr->nrules)
            hban(pr, w, P[t], -1);
    }
}

/* The start of the search from seed position q: q with its rule component (none when q is not
 * the component's first member, or the component has more than m). Returns its size. */
static int hstart(const nmp_price *pr, int32_t q, int32_t *st)
{
    const int32_t c0 = pr->nrules ? pr->compo[q] : -1;
    if (c0 < 0) {
        st[0] = q;
        return 1;
    }
    if (pr->csize[c0] > pr->m || pr->crank[q] != 0)
        return 0;
    int ns = 0;
    for (int32_t c = q; c < pr->cols; c++)
        if (pr->compo[c] == c0)
            st[ns++] = c;
    return ns;
}

/* The heuristic round: per seed position its subset (hsearch), and the memory (the best
 * subsets of the last exact search) re-priced at y: those with exact rc > thr that keep the rules,
 * duplicates removed, the best k in the exact pricer's order. Near the LP optimum the duals move
 * little between rounds, and the columns that price out next are among the memory's (the exact
 * search lists them at the cost of its proof), while greedy subsets are mostly the master's own.
 * Seeds whose bound h0[q] + (the m - 1 largest other h0) is at most thr cannot price out and are
 * skipped. Each seed writes its own slot, so the result does not depend on the thread count.
 * Returns false when the clock stopped it. */
bool pr_heuristic_round(nmp_price *pr, double thr, int64_t k, nmp_price_out *out)
{
    const int C = pr->cols, m = pr->m;
    double sr, sr1, vr;
    pr_top_r(pr->h0, C, m, &sr, &sr1, &vr);
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(pr->threads) if (C >= 48)
#endif
    for (int q = 0; q < C; q++) {
#ifdef _OPENMP
        pr_work *w = &pr->work[omp_get_thread_num()];
#else
        pr_work *w = &pr->work[0];
#endif
        pr_item *it = &pr->hitems[q];
        it->rc = -INFINITY;
        if (pr_poll(pr, w) || (pr->h0[q] >= vr ? sr : pr->h0[q] + sr1) <= thr)
            continue;
        int32_t st[NMP_MAX_M];
        const int ns = hstart(pr, q, st);
        if (ns > 0)
            hsearch(pr, w, st, ns, true, it);
    }
    if (pr->stop)
        return false;
    int64_t count = 0;
    for (int q = 0; q < C; q++)
        if (pr->hitems[q].rc > thr)
            pr->hitems[count++] = pr->hitems[q];
    for (int64_t q = 0; q < pr->hcount; q++) {
        pr_item *it = &pr->hitems[count];
        *it = pr->hmem[q];
        double ys = 0; /* summed as leaf() sums */
        for (int t = 0; t < m; t++)
            ys += pr->y[it->cols[t]];
        it->rc = it->value - ys;
        count += it->rc > thr && (!pr->nrules || keeps_rules(pr, it->cols));
    }
    qsort(pr->hitems, (size_t)count, sizeof *pr->hitems, pr_item_cmp);
    int64_t u = 0;
    for (int64_t v = 0; v < count; v++) /* duplicates are neighbours: the same rc */
        if (u == 0 || memcmp(pr->hitems[u - 1].cols, pr->hitems[v].cols,
                             sizeof pr->hitems[v].cols) != 0)
            pr->hitems[u++] = pr->hitems[v];
    out->found = NMP_MIN(u, k);
    for (int64_t q = 0; q < out->found; q++) {
        memcpy(out->cols + q * m, pr->hitems[q].cols, (size_t)m * sizeof *out->cols);
        out->value[q] = pr->hitems[q].value;
        out->rc[q] = pr->hitems[q].rc;
    }
    if (out->found > 0) {
        out->rc_max = INFINITY; /* no bound: the maximum is not known */
        out->complete = true;
    }
    return true;
}


/* nmp_sp.c: exact set partitioning over all m-subsets through GLPK ("sp")
 *
 * One binary x_q per m-subset q of the columns, worth D(q) = sum_j topn(s(j, q)):
 *
 *     max sum_q D(q) x_q   s.t.  sum_{q containing i} x_q = 1 for every column i,  x_q in {0, 1}.
 *
 * The LP relaxation is very tight (within 0.003-0.2 % of the optimum on random inputs), so the
 * method is: (1) a heuristic incumbent: the `swap` solver run from the start perm, so it is never
 * worse than the start; (2) every D(q) once, in colex order (OpenMP); (3) the LP by sifting: GLPK
 * holds a few thousand subsets, every round prices all C(cols, m) of them against the row duals y
 * and adds the best positive reduced costs, until none prices out; (4) reduced-cost fixing in
 * stages, each stage GLPK's branch-and-cut over the surviving subsets, warm-started with the
 * incumbent through the MIP callback (glp_ios_heur_sol), which makes it the cutoff.
 *
 * Bound and fixing (Lagrangian, valid for ANY duals y, so GLPK's tolerances cannot break them):
 * with d_q = D(q) - sum_{i in q} y_i, every partition P into G = cols/m groups has value
 *     sum_{q in P} D(q) = sum_i y_i + sum_{q in P} d_q  <=  sum_i y_i + G * max(0, max_q d_q) =: L.
 * L is the bound reported (at the LP optimum it is the LP value). A partition that uses q has
 * value <= sum_i y_i + d_q + (G - 1) * max(0, max d) =: L_q ("LP value + reduced cost"), so when
 * L_q < incumbent, q is in no better solution and is removed before the MIP. The incumbent's own
 * subsets always survive (L_q >= incumbent for them), so the reduced MIP stays feasible and its
 * optimum is the optimum. How much survives depends on the incumbent: on the 64-column reference
 * (635,376 subsets, L - optimum = 0.875) 1,128 subsets survive the optimum as cutoff but 632,438
 * the swap incumbent (0.28 % below). Hence the stages (see sp_mip): a MIP over the ~16 * cols
 * subsets of least reduced cost first, which finds the optimum or close, then the exact stage
 * with that cutoff. GLPK branches on the most fractional variable (parameter `branch`): on
 * 64-column instances 3-20 times fewer nodes than its default Driebeck-Tomlin rule. The proven
 * bound at the end is max(score, min(L, GLPK's best node bound, bound of the excluded subsets)).
 *
 * Measured (2 shared cores, |N(0,1)| 2:4, time to proven optimum): 64 x 32 0.2 s, 64 x 48 0.4 s,
 * 64 x 64 0.7-3.2 s, 64 x 80 5 s, 128 x 96 4.7 s, apex reference 128 x 64 1.2 s. Without fixing
 * the reference takes 122 s; without sifting (all subsets in GLPK's LP) 17 s. 128 x 128 (10.7 M
 * subsets, max_subsets raised) ends its 10 minutes at a 0.017 % gap: beyond sp, see bnp.
 *
 * GLPK (nmp_glpk.c): the solve runs inside nmp_glpk_run (silent terminal unless verbose, an
 * internal GLPK error becomes NMP_ERR_LP); the time limit is honoured in simplex slices of 0.2 s
 * and through the MIP callback, which also reports progress and can stop the search. solve()
 * reports reasons through the msg given to create(), which must outlive the solve (as it does
 * inside nmp_solve). */
#include "nmp_glpk.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#define SP_CHUNK 65536        /* subsets valued or priced between clock checks */

static const nmp_param_desc sp_params[] = {
    { "max_subsets", 2e6, 1, 1e9, "refuse when C(cols, m), one binary variable each, exceeds it" },
    NMP_GLPK_PARAM_ESCAPES,
    { "sift", 1, 0, 1, "LP by sifting: price all subsets, keep few in GLPK (0: give GLPK all)" },
    { "fixing", 1, 0, 1, "reduced-cost fixing before the MIP (0: off, for comparison)" },
    { "cuts", 0, 0, 1, "GLPK's clique cuts in the MIP" },
    NMP_GLPK_PARAMS_BRANCHING,
    { 0 },
};

typedef struct sp {
    nmp_glpk_exact x;     /* incumbent, bound, clock, GLPK problem (x.hx: nsub + 1 values) */
    int64_t nsub;         /* C(cols, m) */
    int64_t (*binom)[NMP_MAX_M + 1]; /* C(a, b) for a <= cols, b <= m */
    int32_t *sub;         /* nsub * m members, colex order */
    double *val;          /* D(q) */
    double *dj;           /* reduced costs */
    int32_t *cand;        /* pricing candidates */
    int32_t *gcol;        /* GLPK column of subset q, 0 when absent */
    int32_t *gsub;        /* subset of GLPK column c, 1-based */
    int *num;             /* 1-based GLPK index list */
    double *y;            /* row duals */
} sp;

static void sp_destroy(void *p)
{
    sp *st = p;
    if (!st)
        return;
    nmp_glpk_exact_release(&st->x);
    nmp_free(st->binom);
    nmp_free(st->sub);
    nmp_free(st->val);
    nmp_free(st->dj);
    nmp_free(st->cand);
    nmp_free(st->gcol);
    nmp_free(st->gsub);
    nmp_free(st->num);
    nmp_free(st->y);
    nmp_free(st);
}

static nmp_err sp_create(const nmp_problem *pb, const nmp_params *par, void **state, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    sp *st = NULL;
    if (!pb || !state)
        return nmp_fail(msg, NMP_ERR_ARG, "sp: no problem or state");
    *state = NULL;
    const int m = pb->m;
    const int64_t cols = pb->cols;
    double count = 1; /* C(cols, m) in floating point first: it may not fit anything */
    for (int t = 0; t < m; t++)
        count = count * (double)(cols - t) / (double)(t + 1);
    count = floor(count + 0.5);
    const double max_subsets = nmp_param_get(par, sp_params, "max_subsets");
    if (count > max_subsets || count > (double)INT32_MAX - 1)
        return nmp_fail(msg, NMP_ERR_UNSUPPORTED,
                        "sp: C(%lld, %d) = %.0f subsets (one binary variable each) exceed "
                        "max_subsets = %.0f; use colgen/bnp for a bound at this size",
                        (long long)cols, m, count, max_subsets);
    st = nmp_calloc(1, sizeof *st);
    if (!st)
        return NMP_ERR_NOMEM;
    NMP_TRY(e, nmp_glpk_exact_init(&st->x, pb, par, "sp", sp_params, msg));
    const size_t nsub = (size_t)count;
    st->nsub = (int64_t)nsub;
    st->binom = nmp_calloc((size_t)cols + 1, sizeof *st->binom);
    st->sub = nmp_malloc(nsub * (size_t)m * sizeof *st->sub);
    st->val = nmp_malloc(nsub * sizeof *st->val);
    st->dj = nmp_malloc(nsub * sizeof *st->dj);
    st->cand = nmp_malloc(nsub * sizeof *st->cand);
    st->gcol = nmp_malloc(nsub * sizeof *st->gcol);
    st->gsub = nmp_malloc((nsub + 1) * sizeof *st->gsub);
    st->num = nmp_malloc((nsub + 1) * sizeof *st->num);
    st->x.hx = nmp_malloc((nsub + 1) * sizeof *st->x.hx);
    st->y = nmp_malloc((size_t)cols * sizeof *st->y);
    if (!st->binom || !st->sub || !st->val || !st->dj || !st->cand || !st->gcol || !st->gsub ||
        !st->num || !st->x.hx || !st->y) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    for (int64_t a = 0; a <= cols; a++) { /* every entry <= max(C(cols, m), C(m, m/2)) */
        st->binom[a][0] = 1;
        for (int b = 1; b <= m; b++)
            st->binom[a][b] = a == 0 ? 0 : st->binom[a - 1][b - 1] + st->binom[a - 1][b];
    }
    *state = st;
    st = NULL;
out:
    sp_destroy(st);
    return e;
}

/* colex rank of the sorted subset c[0..m-1]: sum_t C(c[t], t + 1) */
static int64_t sp_rank(const sp *st, const int32_t *c)
{
    int64_t r = 0;
    for (int t = 0; t < st->x.pb->m; t++)
        r += st->binom[c[t]][t + 1];
    return r;
}

/* Every m-subset in colex order (rank q at sub + q * m), then D(q) in chunks that threads
 * share; false if the clock stopped it. */
static bool sp_values(sp *st)
{
    const nmp_problem *pb = st->x.pb;
    const int m = pb->m;
    int32_t c[NMP_MAX_M + 1];
    for (int t = 0; t < m; t++)
        c[t] = t;
    c[m] = (int32_t)pb->cols;
    for (int64_t q = 0; q < st->nsub; q++) {
        memcpy(st->sub + q * m, c, (size_t)m * sizeof *c);
        int t = 0;
        while (t < m && c[t] + 1 == c[t + 1])
            t++;
        if (t == m)
            break;
        c[t]++;
        for (int u = 0; u < t; u++)
            c[u] = u;
    }
    for (int64_t lo = 0; lo < st->nsub; lo += SP_CHUNK) {
        const int64_t hi = NMP_MIN(st->nsub, lo + SP_CHUNK);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(st->x.threads) \
    if (pb->rows * (hi - lo) > (1 << 16))
#endif
        for (int64_t q = lo; q < hi; q++)
            st->val[q] = nmp_score_group_value(pb, st->sub + q * m);
        if (nmp_glpk_exact_tick(&st->x, lo, "values"))
            return false;
    }
    return true;
}

/* dj[q] = D(q) - sum_{i in q} y_i for all q; returns max_q dj */
static double sp_price(sp *st)
{
    const int m = st->x.pb->m;
    double top = -INFINITY;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) reduction(max : top) num_threads(st->x.threads) \
    if (st->nsub > (1 << 15))
#endif
    for (int64_t q = 0; q < st->nsub; q++) {
        const int32_t *c = st->sub + q * m;
        double d = st->val[q];
        for (int t = 0; t < m; t++)
            d -= st->y[c[t]];
        st->dj[q] = d;
        top = NMP_MAX(top, d);
    }
    return top;
}

/* Moves the k candidates with the largest dj to cand[0..k-1] (Hoare's selection). */
static void select_top(int32_t *cand, int64_t cnt, int64_t k, const double *dj)
{
    int64_t lo = 0, hi = cnt - 1;
    while (lo < hi) {
        const double pivot = dj[cand[lo + (hi - lo) / 2]];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (dj[cand[i]] > pivot)
                i++;
            while (dj[cand[j]] < pivot)
                j--;
            if (i <= j) {
                const int32_t x = cand[i];
                cand[i++] = cand[j];
                cand[j--] = x;
            }
        }
        if (k - 1 <= j)
            hi = j;
        else if (k - 1 >= i)
            lo = i;
        else
            break;
    }
}

/* Adds subsets cand[0..k-1] to the LP as columns x_q >= 0. */
static void sp_add(sp *st, const int32_t *cand, int64_t k)
{
    if (k <= 0)
        return;
    const int m = st->x.pb->m;
    const int first = glp_add_cols(st->x.lp, (int)k);
    for (int64_t t = 0; t < k; t++) {
        const int32_t q = cand[t];
        const int c = first + (int)t;
        nmp_glpk_subset_col(st->x.lp, c, st->sub + (int64_t)q * m, m, st->val[q], false);
        st->gcol[q] = c;
        st->gsub[c] = q;
    }
}

/* Subset ranks of the incumbent's groups into cand[0..groups-1]. */
static void sp_incumbent_subsets(sp *st, int32_t *out)
{
    const nmp_problem *pb = st->x.pb;
    const int m = pb->m;
    memcpy(st->x.work, st->x.inc, (size_t)pb->cols * sizeof *st->x.work);
    nmp_perm_canonical(st->x.work, pb->cols, m);
    for (int64_t g = 0; g < pb->groups; g++)
        out[g] = (int32_t)sp_rank(st, st->x.work + g * m);
}

/* Sifting: the LP over all subsets through a small working set. Ends with st->y optimal duals
 * (or the last ones, when stopped), st->dj priced against them and st->x.bound the Lagrangian bound
 * L. *lp_done is false when the clock stopped it. */
static nmp_err sp_lp(sp *st, bool *lp_done)
{
    nmp_err e = NMP_OK;
    const nmp_problem *pb = st->x.pb;
    const int64_t cols = pb->cols, groups = pb->groups;
    const bool sift = nmp_param_get(&st->x.par, sp_params, "sift") != 0;
    const int64_t per_round = NMP_MAX(200, 8 * cols);
    double dmax = 0;
    for (int64_t q = 0; q < st->nsub; q++)
        dmax = NMP_MAX(dmax, st->val[q]);
    const double eps = 1e-9 * (1 + dmax);
    *lp_done = false;
    st->x.lp = glp_create_prob();
    glp_set_obj_dir(st->x.lp, GLP_MAX);
    nmp_glpk_partition_rows(st->x.lp, cols);
    memset(st->gcol, 0, (size_t)st->nsub * sizeof *st->gcol);
    /* the incumbent's groups (feasible from the start) and, priced against duals that share
     * each group's value among its columns, the most promising subsets */
    sp_incumbent_subsets(st, st->cand);
    sp_add(st, st->cand, groups);
    if (!sift) {
        int64_t k = 0;
        for (int64_t q = 0; q < st->nsub; q++)
            if (!st->gcol[q])
                st->cand[k++] = (int32_t)q;
        sp_add(st, st->cand, k);
    } else {
        for (int64_t g = 0; g < groups; g++) {
            const double share = nmp_score_group_value(pb, st->x.inc + g * pb->m) / pb->m;
            for (int t = 0; t < pb->m; t++)
                st->y[st->x.inc[g * pb->m + t]] = share;
        }
        sp_price(st);
        int64_t k = 0;
        for (int64_t q = 0; q < st->nsub; q++)
            if (!st->gcol[q])
                st->cand[k++] = (int32_t)q;
        const int64_t take = NMP_MIN(k, 2 * per_round);
        select_top(st->cand, k, take, st->dj);
        sp_add(st, st->cand, take);
    }
    for (int64_t round = 0;; round++) {
        bool solved;
        NMP_TRY(e, nmp_glpk_exact_lp(&st->x, "lp", &solved));
        if (!solved)
            goto out;
        double sumy = 0;
        for (int64_t i = 0; i < cols; i++) {
            st->y[i] = glp_get_row_dual(st->x.lp, (int)i + 1);
            sumy += st->y[i];
        }
        const double top = sp_price(st);
        st->x.bound = NMP_MIN(st->x.bound, sumy + (double)groups * NMP_MAX(0.0, top));
        int64_t k = 0;
        for (int64_t q = 0; q < st->nsub; q++)
            if (st->dj[q] > eps && !st->gcol[q])
                st->cand[k++] = (int32_t)q;
        if (k == 0)
            break;
        const int64_t take = NMP_MIN(k, per_round);
        select_top(st->cand, k, take, st->dj);
        sp_add(st, st->cand, take);
        if (nmp_glpk_exact_tick(&st->x, round, "lp"))
            goto out;
    }
    *lp_done = true;
out:
    return e;
}

/* Marks the GLPK columns binary and loads the incumbent into st->x.hx. */
static void sp_prepare(sp *st)
{
    const int n = glp_get_num_cols(st->x.lp);
    for (int c = 1; c <= n; c++) {
        glp_set_col_kind(st->x.lp, c, GLP_BV);
        st->x.hx[c] = 0;
    }
    sp_incumbent_subsets(st, st->cand);
    for (int64_t g = 0; g < st->x.pb->groups; g++)
        st->x.hx[st->gcol[st->cand[g]]] = 1;
}

/* Reduced-cost fixing in stages, each a MIP over S(delta) = { q : L_q >= L - delta }.
 * A partition that leaves S(delta) is worth < L - delta ("outside"), so the best partition
 * inside S(delta), v, is optimal once v >= L - delta; otherwise delta grows (S four times
 * larger), at most up to L - v, where S(delta) holds every subset of a better partition and the
 * stage is exact. Small first stages find the optimum quickly when the swap incumbent is weak:
 * with the optimum known, 1,128 of the 635,376 subsets of the 64-column reference survive, with
 * the swap incumbent 632,438. st->dj must hold the reduced costs at the duals st->y. */
static nmp_err sp_mip(sp *st, nmp_status *status)
{
    nmp_err e = NMP_OK;
    const nmp_problem *pb = st->x.pb;
    const int m = pb->m;
    const int64_t cols = pb->cols, groups = pb->groups, nsub = st->nsub;
    const bool fixing = nmp_param_get(&st->x.par, sp_params, "fixing") != 0;
    double sumy = 0, top = -INFINITY;
    for (int64_t i = 0; i < cols; i++)
        sumy += st->y[i];
    for (int64_t q = 0; q < nsub; q++)
        top = NMP_MAX(top, st->dj[q]);
    const double pos = NMP_MAX(0.0, top), L = sumy + (double)groups * pos;
    const double tol = 1e-9 * (1 + fabs(L));
    /* from here dj[q] = L_q - L <= 0: every partition using q is worth at most L + dj[q] */
    for (int64_t q = 0; q < nsub; q++)
        st->dj[q] -= pos;
    int64_t target = NMP_MAX(1000, 16 * cols);
    for (int stage = 0;; stage++) {
        const double exact = L - st->x.inc_score + tol;
        double delta = fixing ? exact : INFINITY;
        if (fixing && target < nsub) {
            for (int64_t q = 0; q < nsub; q++)
                st->cand[q] = (int32_t)q;
            select_top(st->cand, nsub, target, st->dj);
            double kth = 0;
            for (int64_t t = 0; t < target; t++)
                kth = NMP_MIN(kth, st->dj[st->cand[t]]);
            int64_t need = 0; /* the exact stage's size: take it when it is not much larger */
            for (int64_t q = 0; q < nsub; q++)
                need += st->dj[q] >= -exact;
            delta = need <= 2 * target ? exact : NMP_MIN(exact, -kth);
        }
        st->x.outside = delta < exact ? L - delta : -INFINITY;
        /* the incumbent's subsets always join S: the warm start must be a feasible solution of
         * the MIP (S may be any superset of S(delta)) */
        sp_incumbent_subsets(st, st->cand);
        for (int64_t g = 0; g < groups; g++)
            st->dj[st->cand[g]] = NMP_MAX(st->dj[st->cand[g]], -delta);
        if (stage == 0) { /* drop the LP's nonbasic columns outside S(delta) */
            const int ncols = glp_get_num_cols(st->x.lp);
            int ndel = 0, w = 0;
            for (int c = 1; c <= ncols; c++) {
                const int32_t q = st->gsub[c];
                if (st->dj[q] < -delta && glp_get_col_stat(st->x.lp, c) != GLP_BS) {
                    st->num[++ndel] = c;
                    st->gcol[q] = 0;
                } else {
                    st->gsub[++w] = q;
                    st->gcol[q] = w;
                }
            }
            if (ndel > 0)
                glp_del_cols(st->x.lp, ndel, st->num);
        }
        int64_t k = 0;
        for (int64_t q = 0; q < nsub; q++)
            if (st->dj[q] >= -delta && !st->gcol[q])
                st->cand[k++] = (int32_t)q;
        sp_add(st, st->cand, k);
        sp_prepare(st);
        bool solved, found;
        NMP_TRY(e, nmp_glpk_exact_lp(&st->x, "mip", &solved));
        if (!solved) {
            *status = nmp_clock_status(&st->x.clock);
            goto out;
        }
        glp_iocp parm;
        nmp_glpk_exact_iocp(&st->x, &parm);
        if (nmp_param_get(&st->x.par, sp_params, "cuts") != 0)
            parm.clq_cuts = GLP_ON;
        NMP_TRY(e, nmp_glpk_exact_mip(&st->x, &parm, status, &found));
        if (found) {
            const int n = glp_get_num_cols(st->x.lp);
            int64_t slot = 0;
            for (int c = 1; c <= n && slot <= cols - m; c++)
                if (glp_mip_col_val(st->x.lp, c) > 0.5) {
                    memcpy(st->x.work + slot, st->sub + (int64_t)st->gsub[c] * m,
                           (size_t)m * sizeof *st->x.work);
                    slot += m;
                }
            if (slot == cols)
                nmp_glpk_exact_offer(&st->x);
        }
        if (*status != NMP_STATUS_OPTIMAL) {
            st->x.bound = NMP_MIN(st->x.bound, NMP_MAX(st->x.tree_bound, st->x.outside));
            goto out;
        }
        if (st->x.outside <= st->x.inc_score + tol) { /* nothing outside S beats the incumbent */
            st->x.bound = st->x.inc_score;
            goto out;
        }
        /* S itself holds nothing better than v */
        st->x.bound = NMP_MIN(st->x.bound, st->x.outside);
        target *= 4;
    }
out:
    return e;
}

/* The solve after the warm start (inside nmp_glpk_run): values, LP, staged MIP. */
static nmp_err sp_run(void *p, int32_t *perm, nmp_result *res)
{
    nmp_err e = NMP_OK;
    sp *st = p; /* x, its first member, is what nmp_glpk_exact_solve passes */
    (void)perm; /* the incumbent (x.inc) is the answer */
    const nmp_problem *pb = st->x.pb;
    nmp_status status = NMP_STATUS_OPTIMAL;
    bool done = false;
    if (nmp_glpk_exact_tick(&st->x, 0, "heuristic") || !sp_values(st)) {
        status = nmp_clock_status(&st->x.clock);
        goto out;
    }
    NMP_TRY(e, sp_lp(st, &done));
    res->iterations = glp_get_it_cnt(st->x.lp);
    if (!done) {
        status = nmp_clock_status(&st->x.clock);
        goto out;
    }
    if (st->x.bound <= st->x.inc_score + 1e-9 * (1 + fabs(st->x.inc_score))) {
        st->x.bound = st->x.inc_score; /* the LP proves the incumbent optimal */
        goto out;
    }
    NMP_TRY(e, sp_mip(st, &status));
    res->iterations = glp_get_it_cnt(st->x.lp);
    res->nodes = st->x.nodes;
out:
    res->status = status;
    if (pb->groups == 1)
        res->status = NMP_STATUS_OPTIMAL;
    return e;
}


static nmp_err sp_solve(void *p, int32_t *perm, nmp_result *res)
{
    sp *st = p;
    return nmp_glpk_exact_solve(&st->x, sp_run, perm, res);
}

const nmp_solver_ops nmp_sp_ops = {
    "sp", "exact set partitioning over all m-subsets (GLPK): sifted LP bound, reduced-cost "
    "fixing, branch-and-cut",
    sp_params, sp_create, sp_solve, sp_destroy, 0,
};

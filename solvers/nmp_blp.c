/* nmp_blp.c: exact compact binary program through GLPK ("blp"), kept to measure it
 *
 * x[i,k] = column i in group k (binary), 0 <= z[i,j,k] <= x[i,k] the pruned entries:
 *
 *     max total - sum s(j,i) z[i,j,k]  s.t.  sum_k x[i,k] = 1,  sum_i x[i,k] = m,
 *                                            sum_i z[i,j,k] = m - n for every (j, k).
 *
 * Groups are interchangeable, so without care every solution appears G! times. Symmetry breaking
 * (parameter `symmetry`): groups are ordered by their lowest column, i.e. column i may only join
 * groups k <= i, and x[i,k] <= sum_{i' < i} x[i', k-1] (group k's lowest column lies above group
 * k-1's). The LP relaxation stays weak (fractional x spreads every column over all groups and z
 * prunes the smallest fractions): on 64 x 16 its root bound is 630.30 for an optimum of 617.37
 * (2.1 %; sp's LP: 0.0 %), and blp proves 64 x 12 in 2.5 s but not 64 x 16 in 120 s (0.02 %
 * gap), 16 x 20 in 39 s, where sp needs 0.03 s. Without symmetry breaking 64 x 12 takes 25 s.
 * A documented finding: blp is kept to measure it, not to use. It refuses models above max_vars
 * (1e5 variables: 64 x 64 has 5.9e4, 128 x 128 4.6e5) and, given no time limit, stops after
 * max_seconds (300 s) with status TIME_LIMIT rather than run on for hours.
 *
 * GLPK and the incumbent as in sp (nmp_glpk.c: the frame of the exact solvers): the swap warm
 * start, the solve inside nmp_glpk_run, simplex slices of 0.2 s and a MIP callback. */
#include "nmp_glpk.h"

#include <limits.h>
#include <string.h>

static const nmp_param_desc blp_params[] = {
    { "max_vars", 1e5, 1, 1e9, "refuse when the model has more variables (rows * cols * groups)" },
    { "max_seconds", 300, 0, 1e9, "time limit when none is given (0: none)" },
    NMP_GLPK_PARAM_ESCAPES,
    { "symmetry", 1, 0, 1, "break group symmetry: groups ordered by their lowest column" },
    { "cuts", 0, 0, 1, "GLPK's Gomory, MIR and cover cuts in the MIP" },
    NMP_GLPK_PARAMS_BRANCHING,
    { 0 },
};

typedef struct blp {
    nmp_glpk_exact x;     /* incumbent, bound, clock, GLPK problem (x.hx: nx + nz + 1 values) */
    int64_t nx, nz, nrows, nnz;
    bool sym;             /* symmetry breaking on */
    int32_t *xcol;        /* GLPK column of x[i,k] at i * groups + k, 0 when excluded */
    int *ia, *ja;
    double *ar;
} blp;

static void blp_destroy(void *p)
{
    blp *st = p;
    if (!st)
        return;
    nmp_glpk_exact_release(&st->x);
    nmp_free(st->xcol);
    nmp_free(st->ia);
    nmp_free(st->ja);
    nmp_free(st->ar);
    nmp_free(st);
}

/* The model's sizes for this problem; symmetry breaking excludes x[i,k] for k > i. */
static void blp_sizes(const nmp_problem *pb, bool sym, int64_t *nx, int64_t *nrows, int64_t *nnz)
{
    const int64_t cols = pb->cols, groups = pb->groups, rows = pb->rows;
    int64_t x = 0, symnz = 0, symrows = 0;
    for (int64_t i = 0; i < cols; i++)
        for (int64_t k = 0; k < groups; k++)
            if (!sym || k <= i) {
                x++;
                if (sym && k >= 1) {
                    symrows++;
                    symnz += 1 + (i - (k - 1)); /* x[i', k-1] for k-1 <= i' < i */
                }
            }
    *nx = x;
    *nrows = cols + groups + rows * groups + rows * x + symrows;
    *nnz = 2 * x + rows * x + 2 * rows * x + symnz;
}

static nmp_err blp_create(const nmp_problem *pb, const nmp_params *par, void **state,
                          nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    blp *st = NULL;
    if (!pb || !state)
        return nmp_fail(msg, NMP_ERR_ARG, "blp: no problem or state");
    *state = NULL;
    const bool sym = nmp_param_get(par, blp_params, "symmetry") != 0;
    int64_t nx, nrows, nnz;
    blp_sizes(pb, sym, &nx, &nrows, &nnz);
    const double vars = (double)nx * (double)(pb->rows + 1);
    const double max_vars = nmp_param_get(par, blp_params, "max_vars");
    if (vars > max_vars || (double)nnz > (double)INT32_MAX - 1)
        return nmp_fail(msg, NMP_ERR_UNSUPPORTED,
                        "blp: %.0f variables (x and z over %lld rows) exceed max_vars = %.0f; "
                        "use sp, or colgen/bnp for a bound at this size",
                        vars, (long long)pb->rows, max_vars);
    st = nmp_calloc(1, sizeof *st);
    if (!st)
        return NMP_ERR_NOMEM;
    NMP_TRY(e, nmp_glpk_exact_init(&st->x, pb, par, "blp", blp_params, msg));
    if (par->time_limit <= 0) /* the clock started in init: blp's own limit replaces "none" */
        st->x.par.time_limit = st->x.clock.limit = nmp_param_get(par, blp_params, "max_seconds");
    st->sym = sym;
    st->nx = nx;
    st->nz = nx * pb->rows;
    st->nrows = nrows;
    st->nnz = nnz;
    st->xcol = nmp_calloc((size_t)(pb->cols * pb->groups), sizeof *st->xcol);
    st->ia = nmp_malloc((size_t)(nnz + 1) * sizeof *st->ia);
    st->ja = nmp_malloc((size_t)(nnz + 1) * sizeof *st->ja);
    st->ar = nmp_malloc((size_t)(nnz + 1) * sizeof *st->ar);
    st->x.hx = nmp_malloc((size_t)(nx + st->nz + 1) * sizeof *st->x.hx);
    if (!st->xcol || !st->ia || !st->ja || !st->ar || !st->x.hx) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    int c = 0;
    for (int64_t i = 0; i < pb->cols; i++)
        for (int64_t k = 0; k < pb->groups; k++)
            if (!sym || k <= i)
                st->xcol[i * pb->groups + k] = ++c;
    *state = st;
    st = NULL;
out:
    blp_destroy(st);
    return e;
}

/* Columns: x[i,k] as numbered in xcol (1..nx), then z[i,j,k] at nx + (xcol - 1) * rows + j + 1.
 * Rows: assign (cols), size (groups), prune (rows * groups), link (rows * nx), symmetry. */
static void blp_build(blp *st)
{
    const nmp_problem *pb = st->x.pb;
    const int64_t cols = pb->cols, groups = pb->groups, rows = pb->rows;
    const int m = pb->m, n = pb->n;
    glp_prob *lp = st->x.lp = glp_create_prob();
    glp_set_obj_dir(lp, GLP_MAX);
    glp_set_obj_coef(lp, 0, pb->total);
    glp_add_cols(lp, (int)(st->nx + st->nz));
    glp_add_rows(lp, (int)st->nrows);
    int64_t nz = 0;
    int r = 0;
    const int assign0 = r;
    r += (int)cols;
    const int size0 = r;
    r += (int)groups;
    const int prune0 = r;
    r += (int)(rows * groups);
    for (int64_t i = 0; i < cols; i++)
        glp_set_row_bnds(lp, assign0 + (int)i + 1, GLP_FX, 1, 1);
    for (int64_t k = 0; k < groups; k++)
        glp_set_row_bnds(lp, size0 + (int)k + 1, GLP_FX, m, m);
    for (int64_t t = 0; t < rows * groups; t++)
        glp_set_row_bnds(lp, prune0 + (int)t + 1, GLP_FX, m - n, m - n);
    for (int64_t i = 0; i < cols; i++)
        for (int64_t k = 0; k < groups; k++) {
            const int xc = st->xcol[i * groups + k];
            if (!xc)
                continue;
            glp_set_col_kind(lp, xc, GLP_BV);
            st->ia[++nz] = assign0 + (int)i + 1, st->ja[nz] = xc, st->ar[nz] = 1;
            st->ia[++nz] = size0 + (int)k + 1, st->ja[nz] = xc, st->ar[nz] = 1;
            const float *s = nmp_col(pb, i);
            for (int64_t j = 0; j < rows; j++) {
                const int zc = (int)(st->nx + (xc - 1) * rows + j + 1);
                glp_set_col_bnds(lp, zc, GLP_DB, 0, 1);
                glp_set_obj_coef(lp, zc, -(double)s[j]);
                st->ia[++nz] = prune0 + (int)(k * rows + j) + 1, st->ja[nz] = zc, st->ar[nz] = 1;
                ++r; /* link: z - x <= 0 */
                glp_set_row_bnds(lp, r, GLP_UP, 0, 0);
                st->ia[++nz] = r, st->ja[nz] = zc, st->ar[nz] = 1;
                st->ia[++nz] = r, st->ja[nz] = xc, st->ar[nz] = -1;
            }
        }
    for (int64_t i = 0; st->sym && i < cols; i++) /* x[i,k] <= sum_{i' < i} x[i', k-1] */
        for (int64_t k = 1; k < groups; k++) {
            const int xc = st->xcol[i * groups + k];
            if (!xc)
                continue;
            ++r;
            glp_set_row_bnds(lp, r, GLP_UP, 0, 0);
            st->ia[++nz] = r, st->ja[nz] = xc, st->ar[nz] = 1;
            for (int64_t u = 0; u < i; u++)
                if (st->xcol[u * groups + k - 1])
                    st->ia[++nz] = r, st->ja[nz] = st->xcol[u * groups + k - 1], st->ar[nz] = -1;
        }
    glp_load_matrix(lp, (int)nz, st->ia, st->ja, st->ar);
}

/* The incumbent as x and z values: groups ordered by their lowest column, and in each (row,
 * group) the m - n smallest entries pruned. */
static void blp_incumbent(blp *st)
{
    const nmp_problem *pb = st->x.pb;
    const int64_t groups = pb->groups, rows = pb->rows;
    const int m = pb->m, n = pb->n;
    memset(st->x.hx, 0, (size_t)(st->nx + st->nz + 1) * sizeof *st->x.hx);
    memcpy(st->x.work, st->x.inc, (size_t)pb->cols * sizeof *st->x.work);
    nmp_perm_canonical(st->x.work, pb->cols, m);
    for (int64_t k = 0; k < groups; k++) {
        const int32_t *c = st->x.work + k * m;
        for (int t = 0; t < m; t++)
            st->x.hx[st->xcol[c[t] * groups + k]] = 1;
        for (int64_t j = 0; j < rows; j++) {
            bool keep[NMP_MAX_M] = { false };
            for (int kept = 0; kept < n; kept++) {
                int arg = -1;
                for (int t = 0; t < m; t++)
                    if (!keep[t] && (arg < 0 || nmp_col(pb, c[t])[j] > nmp_col(pb, c[arg])[j]))
                        arg = t;
                keep[arg] = true;
            }
            for (int t = 0; t < m; t++)
                if (!keep[t]) {
                    const int xc = st->xcol[c[t] * groups + k];
                    st->x.hx[st->nx + (xc - 1) * rows + j + 1] = 1;
                }
        }
    }
}

/* The solve after the warm start (inside nmp_glpk_run): model, LP, branch-and-cut. */
static nmp_err blp_run(void *p, int32_t *perm, nmp_result *res)
{
    nmp_err e = NMP_OK;
    blp *st = p; /* x, its first member, is what nmp_glpk_exact_solve passes */
    (void)perm; /* the incumbent (x.inc) is the answer */
    const nmp_problem *pb = st->x.pb;
    const int64_t cols = pb->cols, groups = pb->groups;
    nmp_status status = NMP_STATUS_OPTIMAL;
    bool solved, found;
    if (nmp_glpk_exact_tick(&st->x, 0, "heuristic")) {
        status = nmp_clock_status(&st->x.clock);
        goto out;
    }
    blp_build(st);
    blp_incumbent(st);
    NMP_TRY(e, nmp_glpk_exact_lp(&st->x, "lp", &solved));
    res->iterations = glp_get_it_cnt(st->x.lp);
    if (!solved) {
        status = nmp_clock_status(&st->x.clock);
        goto out;
    }
    st->x.bound = NMP_MIN(st->x.bound, glp_get_obj_val(st->x.lp));
    glp_iocp parm;
    nmp_glpk_exact_iocp(&st->x, &parm);
    if (nmp_param_get(&st->x.par, blp_params, "cuts") != 0)
        parm.gmi_cuts = parm.mir_cuts = parm.cov_cuts = GLP_ON;
    NMP_TRY(e, nmp_glpk_exact_mip(&st->x, &parm, &status, &found));
    res->iterations = glp_get_it_cnt(st->x.lp);
    res->nodes = st->x.nodes;
    if (found) {
        bool ok = true;
        for (int64_t k = 0; k < groups && ok; k++) {
            int64_t cnt = 0;
            for (int64_t i = 0; i < cols; i++) {
                const int xc = st->xcol[i * groups + k];
                if (xc && glp_mip_col_val(st->x.lp, xc) > 0.5) {
                    if (cnt == pb->m) {
                        ok = false;
                        break;
                    }
                    st->x.work[k * pb->m + cnt++] = (int32_t)i;
                }
            }
            ok = ok && cnt == pb->m;
        }
        if (ok)
            nmp_glpk_exact_offer(&st->x);
    }
    if (status == NMP_STATUS_OPTIMAL)
        st->x.bound = st->x.inc_score;
    else
        st->x.bound = NMP_MIN(st->x.bound, NMP_MAX(st->x.tree_bound, st->x.inc_score));
out:
    res->status = status;
    if (groups == 1)
        res->status = NMP_STATUS_OPTIMAL;
    return e;
}


static nmp_err blp_solve(void *p, int32_t *perm, nmp_result *res)
{
    blp *st = p;
    return nmp_glpk_exact_solve(&st->x, blp_run, perm, res);
}

const nmp_solver_ops nmp_blp_ops = {
    "blp", "exact compact binary program x[i,k], z[i,j,k] (GLPK), group symmetry broken; weak",
    blp_params, blp_create, blp_solve, blp_destroy, 0,
};

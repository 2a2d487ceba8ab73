/* nmp_mip.c: exact solvers through GLPK: set partitioning ("sp") and the compact BLP ("blp")
 *
 * sp: one binary x_q per m-subset q of the columns, worth D(q) = sum_j topn(s(j, q)):
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
 * blp: x[i,k] = column i in group k (binary), 0 <= z[i,j,k] <= x[i,k] the pruned entries:
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
 * A documented finding: blp is kept to measure it, not to use.
 *
 * GLPK: terminal output is off unless par->verbose (glp_term_out and a swallowing glp_term_hook,
 * both per-thread global state: the first is restored, the second reset to none afterwards);
 * its return codes become NMP_ERR_LP with a reason; an internal GLPK error (e.g. out of memory)
 * is caught through glp_error_hook and longjmp, after which glp_free_env() has released every
 * GLPK object of the calling thread. The time limit is honoured in slices of 0.2 s (simplex
 * tm_lim) and through the MIP callback, which also reports progress and can stop the search.
 * solve() reports reasons through the msg given to create(), which must outlive the solve (as it
 * does inside nmp_solve). */
#include "nmp_solvers.h"

#include <glpk.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define MIP_SLICE 0.2          /* seconds between clock checks inside the simplex method */
#define MIP_CHUNK 65536        /* subsets valued or priced between clock checks */

static const nmp_param_desc sp_params[] = {
    { "max_subsets", 2e6, 1, 1e9, "refuse when C(cols, m), one binary variable each, exceeds it" },
    { "escapes", 100, 0, 1e9, "escapes of the swap warm start (its score is the first cutoff)" },
    { "sift", 1, 0, 1, "LP by sifting: price all subsets, keep few in GLPK (0: give GLPK all)" },
    { "fixing", 1, 0, 1, "reduced-cost fixing before the MIP (0: off, for comparison)" },
    { "cuts", 0, 0, 1, "GLPK's clique cuts in the MIP" },
    { "branch", 3, 1, 5, "GLPK branching: 1 first, 2 last, 3 most fractional variable, "
      "4 Driebeck-Tomlin, 5 pseudocost" },
    { "backtrack", 3, 1, 4, "GLPK node choice: 1 depth first, 2 breadth first, 3 best bound, "
      "4 best projection" },
    { 0 },
};

static const nmp_param_desc blp_params[] = {
    { "max_vars", 1e6, 1, 1e9, "refuse when the model has more variables (rows * cols * groups)" },
    { "escapes", 100, 0, 1e9, "escapes of the swap warm start (its score is the first cutoff)" },
    { "symmetry", 1, 0, 1, "break group symmetry: groups ordered by their lowest column" },
    { "cuts", 0, 0, 1, "GLPK's Gomory, MIR and cover cuts in the MIP" },
    { "branch", 3, 1, 5, "GLPK branching: 1 first, 2 last, 3 most fractional variable, "
      "4 Driebeck-Tomlin, 5 pseudocost" },
    { "backtrack", 3, 1, 4, "GLPK node choice: 1 depth first, 2 breadth first, 3 best bound, "
      "4 best projection" },
    { 0 },
};

typedef struct mip {
    const nmp_problem *pb;
    nmp_params par;
    nmp_msg *msg;         /* create's msg (may be NULL) */
    bool blp;
    int threads;          /* OpenMP threads for valuing and pricing subsets */
    nmp_clock clock;
    void *heur;           /* swap state for the warm start */
    int32_t *inc;         /* incumbent perm */
    double inc_score;
    int32_t *work;        /* cols */
    double bound;         /* best proven upper bound so far */
    double tree_bound;    /* GLPK's best active node bound */
    double outside;       /* bound on solutions outside the MIP's columns (sp's fixing) */
    int64_t nodes;        /* branch-and-bound nodes of finished MIP runs */
    int64_t run_nodes;    /* ... and of the current one */
    bool heur_given;
    glp_prob *lp;
    jmp_buf fail;
    /* sp */
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
    /* blp */
    int64_t nx, nz, nrows, nnz;
    bool sym;             /* symmetry breaking on */
    int32_t *xcol;        /* GLPK column of x[i,k] at i * groups + k, 0 when excluded */
    int *ia, *ja;
    double *ar;
    /* both */
    double *hx;           /* the incumbent as GLPK column values, 1-based */
    int *ind;
    double *coef;
} mip;

static void mip_destroy(void *p)
{
    mip *st = p;
    if (!st)
        return;
    if (st->heur)
        nmp_swap_ops.destroy(st->heur);
    if (st->lp)
        glp_delete_prob(st->lp);
    nmp_free(st->inc);
    nmp_free(st->work);
    nmp_free(st->binom);
    nmp_free(st->sub);
    nmp_free(st->val);
    nmp_free(st->dj);
    nmp_free(st->cand);
    nmp_free(st->gcol);
    nmp_free(st->gsub);
    nmp_free(st->num);
    nmp_free(st->y);
    nmp_free(st->xcol);
    nmp_free(st->ia);
    nmp_free(st->ja);
    nmp_free(st->ar);
    nmp_free(st->hx);
    nmp_free(st->ind);
    nmp_free(st->coef);
    nmp_free(st);
}

/* The swap warm start reports through the solve's clock, which forwards to the caller. */
static int heur_progress(const nmp_progress *p, void *user)
{
    mip *st = user;
    return nmp_clock_tick(&st->clock, p->iteration, p->best, st->bound, "heuristic", true);
}

static nmp_err mip_create_common(const nmp_problem *pb, const nmp_params *par, bool blp,
                                 const nmp_param_desc *descs, mip **out, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    nmp_params defaults;
    if (!par) {
        nmp_params_init(&defaults);
        par = &defaults;
    }
    mip *st = nmp_calloc(1, sizeof *st);
    if (!st)
        return NMP_ERR_NOMEM;
    st->pb = pb;
    st->par = *par;
    st->msg = msg;
    st->blp = blp;
    st->threads = par->threads;
#ifdef _OPENMP
    if (st->threads <= 0)
        st->threads = omp_get_max_threads();
#endif
    nmp_clock_start(&st->clock, par);
    st->inc = nmp_malloc((size_t)pb->cols * sizeof *st->inc);
    st->work = nmp_malloc((size_t)pb->cols * sizeof *st->work);
    if (!st->inc || !st->work) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    nmp_params hp;
    nmp_params_init(&hp);
    hp.seed = par->seed;
    hp.time_limit = par->time_limit;
    hp.threads = par->threads;
    hp.progress = heur_progress;
    hp.progress_user = st;
    NMP_TRY(e, nmp_params_set(&hp, "escapes", nmp_param_get(par, descs, "escapes")));
    NMP_TRY(e, nmp_swap_ops.create(pb, &hp, &st->heur, msg));
    *out = st;
    st = NULL;
out:
    mip_destroy(st);
    return e;
}

/* ------------------------------------------------------------ GLPK glue */

static const char *glpk_reason(int ret)
{
    switch (ret) {
    case GLP_EBADB: return "invalid initial basis";
    case GLP_ESING: return "singular basis matrix";
    case GLP_ECOND: return "ill-conditioned basis matrix";
    case GLP_EBOUND: return "inconsistent bounds";
    case GLP_EFAIL: return "solver failure";
    case GLP_EITLIM: return "iteration limit";
    case GLP_ETMLIM: return "time limit";
    case GLP_ENOPFS: return "no primal feasible solution";
    case GLP_ENODFS: return "no dual feasible solution";
    case GLP_EROOT: return "root LP optimum not provided";
    case GLP_ESTOP: return "stopped by the application";
    case GLP_EMIPGAP: return "MIP gap tolerance reached";
    default: return "unknown failure";
    }
}

static nmp_err glpk_fail(mip *st, const char *what, int ret)
{
    return nmp_fail(st->msg, NMP_ERR_LP, "%s: GLPK %s failed: %s (code %d)",
                    st->blp ? "blp" : "sp", what, glpk_reason(ret), ret);
}

/* Swallows GLPK's terminal output: glp_term_out(GLP_OFF) alone does not silence the message
 * GLPK prints before calling the error hook. */
static int glpk_quiet(void *info, const char *text)
{
    (void)info;
    (void)text;
    return 1;
}

static void glpk_error(void *info)
{
    mip *st = info;
    longjmp(st->fail, 1);
}

static double remaining(const mip *st)
{
    return st->clock.limit > 0 ? st->clock.limit - nmp_clock_elapsed(&st->clock) : INFINITY;
}

static bool tick(mip *st, int64_t iteration, const char *phase)
{
    return nmp_clock_tick(&st->clock, iteration, st->inc_score, NMP_MAX(st->bound, st->inc_score),
                          phase, false);
}

/* Simplex on st->lp to optimality in slices of MIP_SLICE seconds. *solved is false when the
 * clock stopped it first. */
static nmp_err lp_solve(mip *st, const char *phase, bool *solved)
{
    glp_smcp parm;
    glp_init_smcp(&parm);
    parm.msg_lev = st->par.verbose ? GLP_MSG_ON : GLP_MSG_OFF;
    parm.meth = GLP_PRIMAL;
    *solved = false;
    bool rebased = false;
    for (;;) {
        if (tick(st, glp_get_it_cnt(st->lp), phase))
            return NMP_OK;
        parm.tm_lim = (int)(1000 * NMP_MAX(0.001, NMP_MIN(MIP_SLICE, remaining(st))));
        const int ret = glp_simplex(st->lp, &parm);
        if (ret == GLP_ETMLIM || ret == GLP_EITLIM)
            continue;
        if ((ret == GLP_EBADB || ret == GLP_ESING || ret == GLP_ECOND) && !rebased) {
            glp_adv_basis(st->lp, 0); /* restart from a fresh basis once */
            rebased = true;
            continue;
        }
        if (ret != 0)
            return glpk_fail(st, "simplex", ret);
        if (glp_get_status(st->lp) != GLP_OPT)
            return nmp_fail(st->msg, NMP_ERR_LP, "%s: GLPK simplex ended with LP status %d, not "
                            "optimal", st->blp ? "blp" : "sp", glp_get_status(st->lp));
        *solved = true;
        return NMP_OK;
    }
}

/* GLPK's MIP callback: the warm start at the first heuristic call, the tree's bound and size,
 * progress and stop. */
static void mip_callback(glp_tree *tree, void *info)
{
    mip *st = info;
    if (glp_ios_reason(tree) == GLP_IHEUR && !st->heur_given) {
        st->heur_given = true;
        glp_ios_heur_sol(tree, st->hx); /* rejected when GLPK already holds a better one */
    }
    int active, alive, total;
    glp_ios_tree_size(tree, &active, &alive, &total);
    st->run_nodes = total;
    const int p = glp_ios_best_node(tree);
    if (p)
        st->tree_bound = glp_ios_node_bound(tree, p);
    glp_prob *P = glp_ios_get_prob(tree);
    const double best = glp_mip_status(P) == GLP_FEAS
                            ? NMP_MAX(st->inc_score, glp_mip_obj_val(P)) : st->inc_score;
    const double tb = NMP_MAX(st->tree_bound, st->outside);
    const double bound = NMP_MAX(best, NMP_MIN(st->bound, tb));
    if (nmp_clock_tick(&st->clock, st->nodes + st->run_nodes, best, bound, "mip", false))
        glp_ios_terminate(tree);
}

/* Branch-and-cut on st->lp (binary columns, optimal LP basis loaded) with the incumbent st->hx.
 * Sets *status; *found when GLPK holds an integer solution. */
static nmp_err mip_run(mip *st, nmp_status *status, bool *found)
{
    const nmp_param_desc *descs = st->blp ? blp_params : sp_params;
    const bool cuts = nmp_param_get(&st->par, descs, "cuts") != 0;
    glp_iocp parm;
    glp_init_iocp(&parm);
    parm.msg_lev = st->par.verbose ? GLP_MSG_ON : GLP_MSG_OFF;
    parm.presolve = GLP_OFF; /* keep our column numbering for the callback */
    parm.cb_func = mip_callback;
    parm.cb_info = st;
    parm.br_tech = (int)nmp_param_get(&st->par, descs, "branch");
    parm.bt_tech = (int)nmp_param_get(&st->par, descs, "backtrack");
    if (cuts && st->blp)
        parm.gmi_cuts = parm.mir_cuts = parm.cov_cuts = GLP_ON;
    else if (cuts)
        parm.clq_cuts = GLP_ON;
    const double left = remaining(st);
    parm.tm_lim = isfinite(left) ? (int)NMP_MIN(1000.0 * NMP_MAX(left, 0.001), INT_MAX) : INT_MAX;
    st->heur_given = false;
    st->tree_bound = st->bound;
    st->run_nodes = 0;
    const int ret = glp_intopt(st->lp, &parm);
    st->nodes += st->run_nodes;
    const int ms = glp_mip_status(st->lp);
    *found = ms == GLP_OPT || ms == GLP_FEAS;
    if (ret == 0 && ms == GLP_OPT) {
        *status = NMP_STATUS_OPTIMAL;
        st->tree_bound = glp_mip_obj_val(st->lp);
    } else if (ret == GLP_ETMLIM)
        *status = NMP_STATUS_TIME_LIMIT;
    else if (ret == GLP_ESTOP)
        *status = nmp_clock_status(&st->clock);
    else if (ret == 0)
        return nmp_fail(st->msg, NMP_ERR_LP, "%s: GLPK branch-and-cut ended with MIP status %d",
                        st->blp ? "blp" : "sp", ms);
    else
        return glpk_fail(st, "branch-and-cut", ret);
    return NMP_OK;
}

/* Runs the swap warm start from perm; the incumbent is the better of the two. */
static nmp_err warm_start(mip *st, const int32_t *perm)
{
    const nmp_problem *pb = st->pb;
    nmp_result hres = { 0 };
    memcpy(st->inc, perm, (size_t)pb->cols * sizeof *perm);
    nmp_err e = nmp_swap_ops.solve(st->heur, st->inc, &hres);
    if (e != NMP_OK)
        return e;
    double start = 0, got = 0;
    for (int64_t g = 0; g < pb->groups; g++) {
        start += nmp_score_group_value(pb, perm + g * pb->m);
        got += nmp_score_group_value(pb, st->inc + g * pb->m);
    }
    if (!(got >= start)) {
        memcpy(st->inc, perm, (size_t)pb->cols * sizeof *perm);
        got = start;
    }
    st->inc_score = got;
    return NMP_OK;
}

/* Takes the perm in st->work when it beats the incumbent. */
static void offer(mip *st)
{
    const nmp_problem *pb = st->pb;
    if (!nmp_perm_is_valid(st->work, pb->cols))
        return;
    double got = 0;
    for (int64_t g = 0; g < pb->groups; g++)
        got += nmp_score_group_value(pb, st->work + g * pb->m);
    if (got > st->inc_score) {
        st->inc_score = got;
        memcpy(st->inc, st->work, (size_t)pb->cols * sizeof *st->inc);
    }
}

/* -------------------------------------------------------------------- sp */

static nmp_err sp_create(const nmp_problem *pb, const nmp_params *par, void **state, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    mip *st = NULL;
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
    NMP_TRY(e, mip_create_common(pb, par, false, sp_params, &st, msg));
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
    st->hx = nmp_malloc((nsub + 1) * sizeof *st->hx);
    st->y = nmp_malloc((size_t)cols * sizeof *st->y);
    st->ind = nmp_malloc(((size_t)cols + 1) * sizeof *st->ind);
    st->coef = nmp_malloc(((size_t)cols + 1) * sizeof *st->coef);
    if (!st->binom || !st->sub || !st->val || !st->dj || !st->cand || !st->gcol || !st->gsub ||
        !st->num || !st->hx || !st->y || !st->ind || !st->coef) {
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
    mip_destroy(st);
    return e;
}

/* colex rank of the sorted subset c[0..m-1]: sum_t C(c[t], t + 1) */
static int64_t sp_rank(const mip *st, const int32_t *c)
{
    int64_t r = 0;
    for (int t = 0; t < st->pb->m; t++)
        r += st->binom[c[t]][t + 1];
    return r;
}

/* Every m-subset in colex order (rank q at sub + q * m), then D(q) in chunks that threads
 * share; false if the clock stopped it. */
static bool sp_values(mip *st)
{
    const nmp_problem *pb = st->pb;
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
    for (int64_t lo = 0; lo < st->nsub; lo += MIP_CHUNK) {
        const int64_t hi = NMP_MIN(st->nsub, lo + MIP_CHUNK);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(st->threads) \
    if (pb->rows * (hi - lo) > (1 << 16))
#endif
        for (int64_t q = lo; q < hi; q++)
            st->val[q] = nmp_score_group_value(pb, st->sub + q * m);
        if (tick(st, lo, "values"))
            return false;
    }
    return true;
}

/* dj[q] = D(q) - sum_{i in q} y_i for all q; returns max_q dj */
static double sp_price(mip *st)
{
    const int m = st->pb->m;
    double top = -INFINITY;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) reduction(max : top) num_threads(st->threads) \
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
static void sp_add(mip *st, const int32_t *cand, int64_t k)
{
    if (k <= 0)
        return;
    const int m = st->pb->m;
    const int first = glp_add_cols(st->lp, (int)k);
    for (int64_t t = 0; t < k; t++) {
        const int32_t q = cand[t];
        const int c = first + (int)t;
        for (int u = 0; u < m; u++) {
            st->ind[u + 1] = st->sub[(int64_t)q * m + u] + 1;
            st->coef[u + 1] = 1.0;
        }
        glp_set_col_bnds(st->lp, c, GLP_LO, 0.0, 0.0);
        glp_set_obj_coef(st->lp, c, st->val[q]);
        glp_set_mat_col(st->lp, c, m, st->ind, st->coef);
        st->gcol[q] = c;
        st->gsub[c] = q;
    }
}

/* Subset ranks of the incumbent's groups into cand[0..groups-1]. */
static void sp_incumbent_subsets(mip *st, int32_t *out)
{
    const nmp_problem *pb = st->pb;
    const int m = pb->m;
    memcpy(st->work, st->inc, (size_t)pb->cols * sizeof *st->work);
    nmp_perm_canonical(st->work, pb->cols, m);
    for (int64_t g = 0; g < pb->groups; g++)
        out[g] = (int32_t)sp_rank(st, st->work + g * m);
}

/* Sifting: the LP over all subsets through a small working set. Ends with st->y optimal duals
 * (or the last ones, when stopped), st->dj priced against them and st->bound the Lagrangian bound
 * L. *lp_done is false when the clock stopped it. */
static nmp_err sp_lp(mip *st, bool *lp_done)
{
    nmp_err e = NMP_OK;
    const nmp_problem *pb = st->pb;
    const int64_t cols = pb->cols, groups = pb->groups;
    const bool sift = nmp_param_get(&st->par, sp_params, "sift") != 0;
    const int64_t per_round = NMP_MAX(200, 8 * cols);
    double dmax = 0;
    for (int64_t q = 0; q < st->nsub; q++)
        dmax = NMP_MAX(dmax, st->val[q]);
    const double eps = 1e-9 * (1 + dmax);
    *lp_done = false;
    st->lp = glp_create_prob();
    glp_set_obj_dir(st->lp, GLP_MAX);
    glp_add_rows(st->lp, (int)cols);
    for (int64_t i = 1; i <= cols; i++)
        glp_set_row_bnds(st->lp, (int)i, GLP_FX, 1.0, 1.0);
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
            const double share = nmp_score_group_value(pb, st->inc + g * pb->m) / pb->m;
            for (int t = 0; t < pb->m; t++)
                st->y[st->inc[g * pb->m + t]] = share;
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
        NMP_TRY(e, lp_solve(st, "lp", &solved));
        if (!solved)
            goto out;
        double sumy = 0;
        for (int64_t i = 0; i < cols; i++) {
            st->y[i] = glp_get_row_dual(st->lp, (int)i + 1);
            sumy += st->y[i];
        }
        const double top = sp_price(st);
        st->bound = NMP_MIN(st->bound, sumy + (double)groups * NMP_MAX(0.0, top));
        int64_t k = 0;
        for (int64_t q = 0; q < st->nsub; q++)
            if (st->dj[q] > eps && !st->gcol[q])
                st->cand[k++] = (int32_t)q;
        if (k == 0)
            break;
        const int64_t take = NMP_MIN(k, per_round);
        select_top(st->cand, k, take, st->dj);
        sp_add(st, st->cand, take);
        if (tick(st, round, "lp"))
            goto out;
    }
    *lp_done = true;
out:
    return e;
}

/* Marks the GLPK columns binary and loads the incumbent into st->hx. */
static void sp_prepare(mip *st)
{
    const int n = glp_get_num_cols(st->lp);
    for (int c = 1; c <= n; c++) {
        glp_set_col_kind(st->lp, c, GLP_BV);
        st->hx[c] = 0;
    }
    sp_incumbent_subsets(st, st->cand);
    for (int64_t g = 0; g < st->pb->groups; g++)
        st->hx[st->gcol[st->cand[g]]] = 1;
}

/* Reduced-cost fixing in stages, each a MIP over S(delta) = { q : L_q >= L - delta }.
 * A partition that leaves S(delta) is worth < L - delta ("outside"), so the best partition
 * inside S(delta), v, is optimal once v >= L - delta; otherwise delta grows (S four times
 * larger), at most up to L - v, where S(delta) holds every subset of a better partition and the
 * stage is exact. Small first stages find the optimum quickly when the swap incumbent is weak:
 * with the optimum known, 1,128 of the 635,376 subsets of the 64-column reference survive, with
 * the swap incumbent 632,438. st->dj must hold the reduced costs at the duals st->y. */
static nmp_err sp_mip(mip *st, nmp_status *status)
{
    nmp_err e = NMP_OK;
    const nmp_problem *pb = st->pb;
    const int m = pb->m;
    const int64_t cols = pb->cols, groups = pb->groups, nsub = st->nsub;
    const bool fixing = nmp_param_get(&st->par, sp_params, "fixing") != 0;
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
        const double exact = L - st->inc_score + tol;
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
        st->outside = delta < exact ? L - delta : -INFINITY;
        /* the incumbent's subsets always join S: the warm start must be a feasible solution of
         * the MIP (S may be any superset of S(delta)) */
        sp_incumbent_subsets(st, st->cand);
        for (int64_t g = 0; g < groups; g++)
            st->dj[st->cand[g]] = NMP_MAX(st->dj[st->cand[g]], -delta);
        if (stage == 0) { /* drop the LP's nonbasic columns outside S(delta) */
            const int ncols = glp_get_num_cols(st->lp);
            int ndel = 0, w = 0;
            for (int c = 1; c <= ncols; c++) {
                const int32_t q = st->gsub[c];
                if (st->dj[q] < -delta && glp_get_col_stat(st->lp, c) != GLP_BS) {
                    st->num[++ndel] = c;
                    st->gcol[q] = 0;
                } else {
                    st->gsub[++w] = q;
                    st->gcol[q] = w;
                }
            }
            if (ndel > 0)
                glp_del_cols(st->lp, ndel, st->num);
        }
        int64_t k = 0;
        for (int64_t q = 0; q < nsub; q++)
            if (st->dj[q] >= -delta && !st->gcol[q])
                st->cand[k++] = (int32_t)q;
        sp_add(st, st->cand, k);
        sp_prepare(st);
        bool solved, found;
        NMP_TRY(e, lp_solve(st, "mip", &solved));
        if (!solved) {
            *status = nmp_clock_status(&st->clock);
            goto out;
        }
        NMP_TRY(e, mip_run(st, status, &found));
        if (found) {
            const int n = glp_get_num_cols(st->lp);
            int64_t slot = 0;
            for (int c = 1; c <= n && slot <= cols - m; c++)
                if (glp_mip_col_val(st->lp, c) > 0.5) {
                    memcpy(st->work + slot, st->sub + (int64_t)st->gsub[c] * m,
                           (size_t)m * sizeof *st->work);
                    slot += m;
                }
            if (slot == cols)
                offer(st);
        }
        if (*status != NMP_STATUS_OPTIMAL) {
            st->bound = NMP_MIN(st->bound, NMP_MAX(st->tree_bound, st->outside));
            goto out;
        }
        if (st->outside <= st->inc_score + tol) { /* nothing outside S beats the incumbent */
            st->bound = st->inc_score;
            goto out;
        }
        st->bound = NMP_MIN(st->bound, st->outside); /* S itself holds nothing better than v */
        target *= 4;
    }
out:
    return e;
}

static nmp_err sp_run(mip *st, nmp_result *res)
{
    nmp_err e = NMP_OK;
    const nmp_problem *pb = st->pb;
    nmp_status status = NMP_STATUS_OPTIMAL;
    bool done = false;
    if (tick(st, 0, "heuristic") || !sp_values(st)) {
        status = nmp_clock_status(&st->clock);
        goto out;
    }
    NMP_TRY(e, sp_lp(st, &done));
    res->iterations = glp_get_it_cnt(st->lp);
    if (!done) {
        status = nmp_clock_status(&st->clock);
        goto out;
    }
    if (st->bound <= st->inc_score + 1e-9 * (1 + fabs(st->inc_score))) {
        st->bound = st->inc_score; /* the LP proves the incumbent optimal */
        goto out;
    }
    NMP_TRY(e, sp_mip(st, &status));
    res->iterations = glp_get_it_cnt(st->lp);
    res->nodes = st->nodes;
out:
    res->status = status;
    if (pb->groups == 1)
        res->status = NMP_STATUS_OPTIMAL;
    return e;
}

/* ------------------------------------------------------------------- blp */

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
    mip *st = NULL;
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
                        "blp: %.0f variables (x and z over %lld rows) exceed max_vars = %.0f",
                        vars, (long long)pb->rows, max_vars);
    NMP_TRY(e, mip_create_common(pb, par, true, blp_params, &st, msg));
    st->sym = sym;
    st->nx = nx;
    st->nz = nx * pb->rows;
    st->nrows = nrows;
    st->nnz = nnz;
    st->xcol = nmp_calloc((size_t)(pb->cols * pb->groups), sizeof *st->xcol);
    st->ia = nmp_malloc((size_t)(nnz + 1) * sizeof *st->ia);
    st->ja = nmp_malloc((size_t)(nnz + 1) * sizeof *st->ja);
    st->ar = nmp_malloc((size_t)(nnz + 1) * sizeof *st->ar);
    st->hx = nmp_malloc((size_t)(nx + st->nz + 1) * sizeof *st->hx);
    if (!st->xcol || !st->ia || !st->ja || !st->ar || !st->hx) {
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
    mip_destroy(st);
    return e;
}

/* Columns: x[i,k] as numbered in xcol (1..nx), then z[i,j,k] at nx + (xcol - 1) * rows + j + 1.
 * Rows: assign (cols), size (groups), prune (rows * groups), link (rows * nx), symmetry. */
static void blp_build(mip *st)
{
    const nmp_problem *pb = st->pb;
    const int64_t cols = pb->cols, groups = pb->groups, rows = pb->rows;
    const int m = pb->m, n = pb->n;
    glp_prob *lp = st->lp = glp_create_prob();
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
static void blp_incumbent(mip *st)
{
    const nmp_problem *pb = st->pb;
    const int64_t groups = pb->groups, rows = pb->rows;
    const int m = pb->m, n = pb->n;
    memset(st->hx, 0, (size_t)(st->nx + st->nz + 1) * sizeof *st->hx);
    memcpy(st->work, st->inc, (size_t)pb->cols * sizeof *st->work);
    nmp_perm_canonical(st->work, pb->cols, m);
    for (int64_t k = 0; k < groups; k++) {
        const int32_t *c = st->work + k * m;
        for (int t = 0; t < m; t++)
            st->hx[st->xcol[c[t] * groups + k]] = 1;
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
                    st->hx[st->nx + (xc - 1) * rows + j + 1] = 1;
                }
        }
    }
}

static nmp_err blp_run(mip *st, nmp_result *res)
{
    nmp_err e = NMP_OK;
    const nmp_problem *pb = st->pb;
    const int64_t cols = pb->cols, groups = pb->groups;
    nmp_status status = NMP_STATUS_OPTIMAL;
    bool solved, found;
    if (tick(st, 0, "heuristic")) {
        status = nmp_clock_status(&st->clock);
        goto out;
    }
    blp_build(st);
    blp_incumbent(st);
    NMP_TRY(e, lp_solve(st, "lp", &solved));
    res->iterations = glp_get_it_cnt(st->lp);
    if (!solved) {
        status = nmp_clock_status(&st->clock);
        goto out;
    }
    st->bound = NMP_MIN(st->bound, glp_get_obj_val(st->lp));
    NMP_TRY(e, mip_run(st, &status, &found));
    res->iterations = glp_get_it_cnt(st->lp);
    res->nodes = st->nodes;
    if (found) {
        bool ok = true;
        for (int64_t k = 0; k < groups && ok; k++) {
            int64_t cnt = 0;
            for (int64_t i = 0; i < cols; i++) {
                const int xc = st->xcol[i * groups + k];
                if (xc && glp_mip_col_val(st->lp, xc) > 0.5) {
                    if (cnt == pb->m) {
                        ok = false;
                        break;
                    }
                    st->work[k * pb->m + cnt++] = (int32_t)i;
                }
            }
            ok = ok && cnt == pb->m;
        }
        if (ok)
            offer(st);
    }
    if (status == NMP_STATUS_OPTIMAL)
        st->bound = st->inc_score;
    else
        st->bound = NMP_MIN(st->bound, NMP_MAX(st->tree_bound, st->inc_score));
out:
    res->status = status;
    if (groups == 1)
        res->status = NMP_STATUS_OPTIMAL;
    return e;
}

/* ---------------------------------------------------------------- driver */

static nmp_err mip_solve(void *p, int32_t *perm, nmp_result *res)
{
    mip *st = p;
    const nmp_problem *pb = st->pb;
    nmp_err e = NMP_OK;
    st->bound = pb->row_bound;
    st->outside = -INFINITY;
    st->nodes = 0;
    if (st->lp) {
        glp_delete_prob(st->lp);
        st->lp = NULL;
    }
    NMP_TRY(e, warm_start(st, perm));
    const int term = glp_term_out(st->par.verbose ? GLP_ON : GLP_OFF);
    if (!st->par.verbose)
        glp_term_hook(glpk_quiet, NULL);
    glp_error_hook(glpk_error, st);
    if (setjmp(st->fail) == 0)
        e = st->blp ? blp_run(st, res) : sp_run(st, res);
    else {
        glp_free_env(); /* GLPK's state after an internal error: release all of it */
        st->lp = NULL;
        e = nmp_fail(st->msg, NMP_ERR_LP, "%s: GLPK stopped on an internal error (out of memory?)",
                     st->blp ? "blp" : "sp");
    }
    glp_error_hook(NULL, NULL);
    if (!st->par.verbose)
        glp_term_hook(NULL, NULL);
    glp_term_out(term);
    if (e != NMP_OK)
        goto out;
    memcpy(perm, st->inc, (size_t)pb->cols * sizeof *perm);
    res->bound = NMP_MAX(st->bound, st->inc_score);
out:
    return e;
}

const nmp_solver_ops nmp_sp_ops = {
    "sp", "exact set partitioning over all m-subsets (GLPK): sifted LP bound, reduced-cost "
    "fixing, branch-and-cut",
    sp_params, sp_create, mip_solve, mip_destroy,
};

const nmp_solver_ops nmp_blp_ops = {
    "blp", "exact compact binary program x[i,k], z[i,j,k] (GLPK), group symmetry broken; weak",
    blp_params, blp_create, mip_solve, mip_destroy,
};

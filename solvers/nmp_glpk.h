/* nmp_glpk.h: the GLPK glue of the solvers that use it (sp, blp, colgen, bnp): guarded calls
 * (silent terminal, internal errors caught), return codes as reasons, set-partitioning model
 * pieces, simplex and branch-and-cut paced by a clock (not installed; built with GLPK only) */
#ifndef NMP_GLPK_H
#define NMP_GLPK_H

#include "nmp_solvers.h"

#include <glpk.h>

/* The solve of a GLPK solver: runs run(state, perm, res) with GLPK's terminal silent (unless
 * verbose: glp_term_out and a swallowing glp_term_hook, both per-thread state, restored
 * afterwards) and its error hook set. A GLPK internal error inside run (out of memory, a bad
 * argument), which would otherwise abort the process, unwinds to here: glp_free_env() then
 * releases every GLPK object of the calling thread, lost(state) must forget the solver's
 * pointers to them, and the result is NMP_ERR_LP with a reason naming `who` in msg. Otherwise
 * returns what run returns. run must own (through state) whatever it allocates around GLPK
 * calls: the unwinding frees nothing of its own. Not nested: the error hook is per thread. */
nmp_err nmp_glpk_run(nmp_err (*run)(void *state, int32_t *perm, nmp_result *res),
                     void (*lost)(void *state), void *state, int32_t *perm, nmp_result *res,
                     int verbose, const char *who, nmp_msg *msg);

/* NMP_ERR_LP with "who: GLPK what failed: reason (code ret)" in msg. */
nmp_err nmp_glpk_fail(nmp_msg *msg, const char *who, const char *what, int ret);

/* ------------------------------------------------------------------ model */

/* Appends cols rows sum_{q containing i} x_q = 1, one per column i (row i + 1). */
void nmp_glpk_partition_rows(glp_prob *lp, int64_t cols);
/* Column j as the m-subset c (a 1 in rows c[t] + 1) worth value, x_j >= 0 (fixed at 0 when
 * `fixed`). */
void nmp_glpk_subset_col(glp_prob *lp, int j, const int32_t *c, int m, double value, bool fixed);

/* ------------------------------------------------------------------ solves */

/* Simplex on lp with parm (method, messages set by the caller) to optimality, in slices of
 * `slice` iterations (deterministic: never sliced by time) within the clock's remaining time;
 * between slices clk (may be NULL) reports
 * rep (may be NULL) and may stop it (then *solved is false). A bad basis is rebuilt once and
 * solved by the primal method. NMP_ERR_LP (reason naming `who` in msg) when GLPK fails or the LP
 * is not solved to optimality. */
nmp_err nmp_glpk_simplex(glp_prob *lp, glp_smcp *parm, int slice, nmp_clock *clk,
                         const nmp_report *rep, const char *who, bool *solved, nmp_msg *msg);

/* Branch-and-cut bookkeeping for nmp_glpk_intopt. */
typedef struct nmp_glpk_bc {
    const double *start;  /* 1-based column values of a feasible solution handed to GLPK at its
                           * first heuristic call, or NULL */
    nmp_clock *clk;       /* ticked with the tree's progress; may stop the search (may be NULL) */
    nmp_report rep;       /* progress: iteration base (plus nodes), best known, bound cap */
    double outside;       /* progress: bound of the solutions outside this MIP (-inf: none,
                           * +inf: report the cap) */
    double deadline;      /* nmp_now() at which to stop (+inf: none) */
    int64_t nodes;        /* out: nodes of this run */
    double tree_bound;    /* in: the bound before the run; out: the best active node's bound */
    bool stopped;         /* out: the clock or the deadline ended the search */
} nmp_glpk_bc;
/* glp_intopt on lp (binary columns, an optimal LP basis) with parm (the caller's settings; its
 * callback is set here) and bc; returns glp_intopt's code. */
int nmp_glpk_intopt(glp_prob *lp, glp_iocp *parm, nmp_glpk_bc *bc);

/* ------------------------------------------- the frame of the exact MIP solvers (sp, blp) */

/* The rows of sp's and blp's parameter tables that the frame below reads by name: the swap warm
 * start's escapes, and GLPK's branching and node choice. */
#define NMP_GLPK_PARAM_ESCAPES                                                                     \
    { "escapes", 100, 0, 1e9, "escapes of the swap warm start (its score is the first cutoff)" }
#define NMP_GLPK_PARAMS_BRANCHING                                                                  \
    { "branch", 3, 1, 5, "GLPK branching: 1 first, 2 last, 3 most fractional variable, "          \
      "4 Driebeck-Tomlin, 5 pseudocost" },                                                         \
    { "backtrack", 3, 1, 4, "GLPK node choice: 1 depth first, 2 breadth first, 3 best bound, "     \
      "4 best projection" }

/* What sp and blp share: the incumbent (the swap warm start, then every better partition GLPK
 * finds), the proven bound, the clock (started at create) and the GLPK problem. A solver embeds
 * it as its first member and sizes hx (1-based column values of the incumbent) itself. */
typedef struct nmp_glpk_exact {
    const nmp_problem *pb;
    nmp_params par;
    nmp_msg *msg;            /* create's msg (may be NULL): it must outlive the solve */
    const char *who;         /* the solver's name, for reasons */
    const nmp_param_desc *params; /* its table: escapes, branch, backtrack */
    int threads;             /* OpenMP threads */
    nmp_clock clock;
    glp_prob *lp;
    int32_t *inc, *work;     /* the incumbent perm; cols of scratch */
    double inc_score;
    double bound;            /* best proven upper bound so far */
    double tree_bound;       /* GLPK's best active node bound */
    double outside;          /* bound of the solutions outside the MIP's columns (-inf: none) */
    int64_t nodes;           /* branch-and-bound nodes of finished MIP runs */
    double *hx;
} nmp_glpk_exact;

/* Fills x for pb and par (a NULL par: defaults), starts its clock, allocates inc and work.
 * NMP_ERR_NOMEM; release with nmp_glpk_exact_release (also after a failure). */
nmp_err nmp_glpk_exact_init(nmp_glpk_exact *x, const nmp_problem *pb, const nmp_params *par,
                            const char *who, const nmp_param_desc *params, nmp_msg *msg);
void nmp_glpk_exact_release(nmp_glpk_exact *x);
/* Serves the clock with the incumbent and bound; true when the search must stop. */
bool nmp_glpk_exact_tick(nmp_glpk_exact *x, int64_t iteration, const char *phase);
/* Primal simplex on x->lp to optimality (slices of 2000 iterations); *solved false when the
 * clock stopped it. NMP_ERR_LP as nmp_glpk_simplex. */
nmp_err nmp_glpk_exact_lp(nmp_glpk_exact *x, const char *phase, bool *solved);
/* Branch-and-cut settings: messages, no presolve (the callback keeps the column numbering),
 * the table's branch and backtrack rules; the caller adds cuts. */
void nmp_glpk_exact_iocp(const nmp_glpk_exact *x, glp_iocp *parm);
/* Branch-and-cut on x->lp (binary columns, an optimal LP basis) with x->hx as the first
 * incumbent, until the clock's limit. Sets *status (OPTIMAL also updates tree_bound), *found
 * when GLPK holds an integer solution; counts nodes. NMP_ERR_LP on GLPK failures. */
nmp_err nmp_glpk_exact_mip(nmp_glpk_exact *x, glp_iocp *parm, nmp_status *status, bool *found);
/* x->work replaces the incumbent when it is a perm that scores higher. */
void nmp_glpk_exact_offer(nmp_glpk_exact *x);
/* The solve of an exact solver whose state begins with x: bound and counters reset, the swap warm
 * start from perm (nmp_subsolve, the table's escapes), run(x, perm, res) inside nmp_glpk_run
 * (x->lp is dropped first and forgotten after a GLPK error); then perm = the incumbent,
 * res->bound the bound. */
nmp_err nmp_glpk_exact_solve(nmp_glpk_exact *x,
                             nmp_err (*run)(void *state, int32_t *perm, nmp_result *res),
                             int32_t *perm, nmp_result *res);

/* Tests only: the (k + 1)-th nmp_glpk_simplex from now on this thread first makes an invalid
 * GLPK call, which raises a GLPK internal error like a real one; k < 0: never (the default). */
void nmp_glpk_fail_at(int64_t k);

#endif /* NMP_GLPK_H */

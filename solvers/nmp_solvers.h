/* nmp_solvers.h: what solvers share inside solvers/: the ops tables of the registry, the driver
 * and the sub-solve entry through which one solver runs another, and the machinery one solver
 * borrows from another (pricing, column generation, windows, assignment moves, annealing); the
 * GLPK glue has its own header, nmp_glpk.h (not installed) */
#ifndef NMP_SOLVERS_H
#define NMP_SOLVERS_H

#include "nmp_internal.h"

/* -------------------------------------------------------------- solvers */

extern const nmp_solver_ops nmp_identity_ops;
extern const nmp_solver_ops nmp_random_ops;
extern const nmp_solver_ops nmp_swap_ops;
extern const nmp_solver_ops nmp_dp_ops;
extern const nmp_solver_ops nmp_match_ops;
extern const nmp_solver_ops nmp_osg_ops;
extern const nmp_solver_ops nmp_lns_ops;
extern const nmp_solver_ops nmp_anneal_ops;
extern const nmp_solver_ops nmp_lap_ops;
extern const nmp_solver_ops nmp_auto_ops;
#ifdef NMP_HAVE_GLPK
extern const nmp_solver_ops nmp_sp_ops;
extern const nmp_solver_ops nmp_blp_ops;
extern const nmp_solver_ops nmp_colgen_ops;
extern const nmp_solver_ops nmp_bnp_ops;
#endif

/* nmp_realloc for a chain of arrays that grow together: p resized to `bytes` while *ok; on a
 * failure (or with *ok already false) p is returned unchanged, still valid, and *ok is false.
 * Grow every array, then check *ok once and only then record the new capacity. */
static inline void *nmp_grow(void *p, size_t bytes, bool *ok)
{
    void *q = *ok ? nmp_realloc(p, bytes) : NULL;
    if (!q)
        *ok = false;
    return q ? q : p;
}

/* True when kept (a score from nmp_score) reaches the row bound within rounding, which proves the
 * perm optimal: the row bound is at least the optimum, and a kept score adds per row the float
 * sums of n values per group (relative error < (n - 1) * 2^-24 each) in double, so a kept score
 * that is at least row_bound * (1 - n * 2^-24) keeps the row bound's entries up to that
 * rounding. It may exceed the row bound by the same rounding. */
static inline bool nmp_at_row_bound(const nmp_problem *pb, double kept)
{
    return kept >= pb->row_bound - (double)pb->n * 0x1p-24 * pb->row_bound;
}

/* What a long computation inside a solver reports through the clock: the caller's best, bound
 * and iteration count. */
typedef struct nmp_report {
    double best, bound;
    int64_t iteration;
} nmp_report;

/* ------------------------------------ driver and sub-solves (nmp_registry.c, nmp_subsolve.c) */

/* Runs ops end to end with the driver's checks (nmp_solve's contract): par checked against the
 * solver's table, perm a valid start (NMP_ERR_ARG otherwise), then create, solve, destroy; the
 * returned perm is validated (NMP_ERR_INTERNAL), its score recomputed, and the start is kept
 * when the answer scores lower; res->bound is clamped to [score, row bound]. On an error perm
 * holds the start. */
nmp_err nmp_solver_run(const nmp_solver_ops *ops, const nmp_problem *pb, const nmp_params *par,
                       int32_t *perm, nmp_result *res, nmp_msg *msg);

/* A parent solver runs the solver `ops` (named by its table: one that is not in the build cannot
 * be called) from perm, through nmp_solver_run and so with all its checks. par gives the child's
 * seed, threads, verbosity and named values (overrides of its defaults); its time limit and
 * progress are replaced: the child may run for `seconds` (<= 0: no limit of its own) but never
 * past the parent clock's limit, and reports through the parent clock, whose interrupt stops it.
 * parent may be NULL (then `seconds` alone limits it, and nothing is reported). The parent's
 * device (par->device) passes to a child with a device search; others run on the CPU. With no time
 * left, or the parent already stopped, the child does not run: perm is unchanged and res->status
 * says why. perm: in the start, out the child's answer (never scoring below the start);
 * res->start_score and res->score tell whether it gained. */
nmp_err nmp_subsolve(const nmp_solver_ops *ops, const nmp_problem *pb, const nmp_params *par,
                     nmp_clock *parent, double seconds, int32_t *perm, nmp_result *res,
                     nmp_msg *msg);

/* The search device of a solver (par->device) as a backend: *on = false for NMP_DEVICE_CPU, and
 * for NMP_DEVICE_AUTO when there is no GPU or cols < min_cols (be is then the CPU reference,
 * unused); NMP_DEVICE_REF gives the reference entries with *on = true; NMP_DEVICE_GPU the GPU
 * entries or the backend's error (NMP_ERR_GPU, NMP_ERR_UNSUPPORTED) prefixed with the solver's
 * name. Release be with nmp_backend_release in every case. (solvers/nmp_subsolve.c) */
nmp_err nmp_solver_backend(const char *solver, const nmp_problem *pb, const nmp_params *par,
                           int64_t min_cols, nmp_backend *be, bool *on, nmp_msg *msg);

/* ------------- column generation (solvers/nmp_price.c, solvers/nmp_master.c; built with GLPK) */

/* Pricing output: caller-owned arrays for k columns (cols: k * m members, ascending per column). */
typedef struct nmp_price_out {
    int32_t *cols;
    double *value, *rc;  /* D(S) and D(S) - y(S) */
    int64_t found;       /* columns written, best first */
    int64_t nodes;       /* branch-and-bound nodes */
    bool complete;       /* false when the clock stopped the search: then nothing is certified */
    double rc_max;       /* >= every subset's rc when found > 0 (rc[0] when priced exactly,
                          * +inf from the heuristic); -inf when nothing was found */
} nmp_price_out;

/* Exact pricing of the set-partitioning master: the best k (<= kmax) m-subsets S by
 * rc(S) = D(S) - sum_{i in S} y_i among those with rc > thr, ordered by rc descending then
 * members lexicographically; independent of the thread count. threads 0: OpenMP's default.
 * Release with nmp_price_free (accepts NULL). Errors: NMP_ERR_ARG, NMP_ERR_NOMEM. */
typedef struct nmp_price nmp_price;
nmp_err nmp_price_create(const nmp_problem *pb, int threads, int64_t kmax, nmp_price **out);
void nmp_price_free(nmp_price *pr);
/* Ryan-Foster rules for later solves: columns a[r], b[r] together (together[r] != 0: a subset
 * holds both or neither) or apart (not both). count 0 clears them. */
nmp_err nmp_price_set_rules(nmp_price *pr, int count, const int32_t *a, const int32_t *b,
                            const uint8_t *together);
/* Prices on a scoring backend (be->pricing, e.g. the GPU) from now on, be NULL: exactly again.
 * A device round returns the best subset per smallest member that prices out, recomputed
 * exactly; when none does (or the backend cannot serve the size) the exact search runs, so a
 * round that finds nothing is always exact. be must outlive pr's solves. NMP_ERR_NOMEM. */
nmp_err nmp_price_set_backend(nmp_price *pr, const nmp_backend *be);
/* Heuristic pricing first from now on (on false: off, the default): per column a greedy subset
 * holding it, improved by 1-swaps, recomputed exactly; those that price out and keep the rules,
 * best k in the exact order, with rc_max = +inf (no bound) and complete true. When none prices
 * out the exact search runs (after the device round, when there is one), so a round that finds
 * nothing is always exact. Independent of the thread count. NMP_ERR_NOMEM. */
nmp_err nmp_price_set_heuristic(nmp_price *pr, bool on);
/* y: cols duals. clk (may be NULL) is ticked by the calling thread with rep's values. The cheap
 * sources (the backend, the heuristic) answer first when set. */
nmp_err nmp_price_solve(nmp_price *pr, const double *y, double thr, int64_t k, nmp_clock *clk,
                        const nmp_report *rep, nmp_price_out *out);
/* nmp_price_solve by the exact search alone (no backend, no heuristic): the complete list of the
 * best k above thr, as a listing needs. */
nmp_err nmp_price_exact(nmp_price *pr, const double *y, double thr, int64_t k, nmp_clock *clk,
                        const nmp_report *rep, nmp_price_out *out);
/* The heuristic alone (nothing when it is off): its columns with rc_max = +inf and complete true,
 * also when it finds none, so a round certifies nothing. For heuristic dives, which need columns
 * rather than proofs. */
nmp_err nmp_price_heuristic(nmp_price *pr, const double *y, double thr, int64_t k,
                            nmp_clock *clk, const nmp_report *rep, nmp_price_out *out);

/* Column generation on a restricted set-partitioning master in GLPK (see nmp_master.c). Every
 * call that reaches GLPK runs inside nmp_glpk_run (nmp_glpk.h), and after a GLPK internal error
 * nmp_master_forget_lp must be called before nmp_master_free. Release with nmp_master_free
 * (accepts NULL). */
typedef struct nmp_master nmp_master;
typedef struct nmp_master_opts {
    int threads;         /* pricing threads, 0: OpenMP's default */
    int64_t kmax;        /* columns per pricing round, 0: 2 * cols */
    double smoothing;    /* Wentges dual smoothing factor in [0, 1) */
    int verbose;         /* GLPK messages */
    int64_t enum_max;    /* most columns of nmp_master_enumerate (0: never enumerate) */
    const nmp_backend *be; /* price on this backend (nmp_price_set_backend); NULL: exactly */
    bool hprice;         /* heuristic pricing first (nmp_price_set_heuristic) */
} nmp_master_opts;
typedef enum nmp_master_end {
    NMP_MASTER_CONVERGED,    /* no column prices out (or the bound met the LP value) */
    NMP_MASTER_CUTOFF,       /* the bound fell to the cutoff */
    NMP_MASTER_STOPPED       /* the clock stopped it */
} nmp_master_end;
typedef struct nmp_master_out {
    nmp_master_end end;
    double lp;           /* value of the last restricted master (-inf when none was solved) */
    double bound;        /* best Lagrangian bound of the node's optimum (+inf when none) */
    int64_t rounds, columns_added, pricing_nodes;
    bool artificial;     /* the last master uses an artificial column */
} nmp_master_out;
nmp_err nmp_master_create(const nmp_problem *pb, const nmp_master_opts *o, nmp_master **out,
                          nmp_msg *msg);
void nmp_master_free(nmp_master *cg);
/* After a GLPK internal error (glp_free_env released the master's LP): drop the pointer. */
void nmp_master_forget_lp(nmp_master *cg);
/* The start of a run: the groups of perm join the pool; "auto" runs from perm at `effort` (its
 * fixed work), for at most `seconds` of clk's time (nmp_subsolve; either 0: skip it) and inc gets
 * its answer when it gains, else perm; inc's groups join the pool, *best is its score, the
 * incumbent (nmp_master_set_incumbent) and the first stability center (nmp_master_guess_duals)
 * follow from it. */
nmp_err nmp_master_start(nmp_master *cg, const nmp_params *par, double effort, double seconds,
                         nmp_clock *clk, const int32_t *perm, int32_t *inc, double *best,
                         nmp_msg *msg);
/* Adds the groups of perm to the pool (duplicates skipped). */
nmp_err nmp_master_add_groups(nmp_master *cg, const int32_t *perm);
/* Sets the first stability center to the saliency each column keeps in its group of perm. */
void nmp_master_guess_duals(nmp_master *cg, const int32_t *perm);
/* Branching rules (as nmp_price_set_rules): pool columns that break them are fixed at 0. list:
 * -1 to price columns, else an enumerated list (nmp_master_enumerate) the master is restricted
 * to. */
nmp_err nmp_master_set_rules(nmp_master *cg, int count, const int32_t *a, const int32_t *b,
                             const uint8_t *together, int list);
/* Generates columns until converged, the bound is <= cutoff, or clk stops it. rep (may be NULL)
 * supplies best/bound for progress reports. NMP_ERR_LP (reason in msg) when GLPK fails. */
nmp_err nmp_master_solve(nmp_master *cg, double cutoff, nmp_clock *clk, const nmp_report *rep,
                         nmp_master_out *out, nmp_msg *msg);
/* From now on (until called with false) nmp_master_solve prices by the heuristic alone
 * (nmp_price_heuristic) and ends when it finds nothing: no bound (out->bound +inf), and the
 * solution may be below the LP's. Dives need columns, not proofs; an exact round near the LP
 * optimum costs ~50 heuristic ones (256 x 256). List scans are unaffected. */
void nmp_master_set_heuristic_only(nmp_master *cg, bool on);
/* Keeps the certificate of the node just solved (the duals whose pricing bounded it), and puts it
 * back after other nodes' solves: nmp_master_enumerate then lists from it again without a new
 * exact solve of the node. */
void nmp_master_keep_bound(nmp_master *cg);
void nmp_master_restore_bound(nmp_master *cg);
/* Basis snapshots (branch-and-price's nodes start from their parent's basis): save writes the
 * current basis (its cols basic variables, named so that purges do not change them) into
 * basis[0 .. cols-1] and pins its columns (purges keep them) until release; load restores it
 * (before the node's nmp_master_solve, after its nmp_master_set_rules) and returns false,
 * changing nothing, when an entry names no variable (or a column that is gone). */
void nmp_master_save_basis(nmp_master *cg, int32_t *basis);
void nmp_master_release_basis(nmp_master *cg, const int32_t *basis);
bool nmp_master_load_basis(nmp_master *cg, const int32_t *basis);
int64_t nmp_master_pool(const nmp_master *cg);
const int32_t *nmp_master_column(const nmp_master *cg, int64_t q);
double nmp_master_x(const nmp_master *cg, int64_t q);
/* After nmp_master_solve: true when the master's solution is integral (perm gets its groups). */
bool nmp_master_integral(nmp_master *cg, int32_t *perm);
/* The pair of columns whose "together" value (*together) is most fractional; false when there
 * is none. */
bool nmp_master_branch_pair(nmp_master *cg, int32_t *a, int32_t *b, double *together);
/* The restricted master as a binary program for at most `seconds` (start: an incumbent perm
 * whose groups are in the pool, or NULL); *found and perm when it found a solution. */
nmp_err nmp_master_mip(nmp_master *cg, double seconds, const int32_t *start, nmp_clock *clk,
                       const nmp_report *rep, int32_t *perm, bool *found, nmp_msg *msg);
/* The value of the best partition known: lists drop the columns it rules out (at the next
 * nmp_master_set_rules). */
void nmp_master_set_incumbent(nmp_master *cg, double value);
/* After nmp_master_solve converged at a node: lists every column that can be in a partition worth
 * more than incumbent (reduced cost at the best duals above a threshold). With at most enum_max
 * of them (res->complete), res->list names the list: pass it to nmp_master_set_rules for this node
 * and its descendants, whose masters then hold the list only and need no pricing. With more, and
 * heur_cols > 0, res->list names a heuristic list of the best heur_cols: a restricted problem in
 * which to search for incumbents, after which nmp_master_relist may complete the list. */
typedef struct nmp_master_enum {
    int64_t columns;     /* columns in res->list (or listed, when none) */
    int list;            /* the list's id, or -1 */
    bool complete;       /* the list holds every column that matters at the node */
    bool stopped;        /* the clock stopped the listing */
} nmp_master_enum;
nmp_err nmp_master_enumerate(nmp_master *cg, double incumbent, int64_t heur_cols, nmp_clock *clk,
                             const nmp_report *rep, nmp_master_enum *res);
/* After a listing that was too long: a complete list if a better incumbent now allows one. */
nmp_err nmp_master_relist(nmp_master *cg, double incumbent, nmp_master_enum *res);

/* The master's enumerated lists (solvers/nmp_lists.c): listings of enum_max + 1 columns, lists
 * registered from them, reduced-cost fixing and pricing scans. Release with nmp_lists_free
 * (accepts NULL). kmax: the most columns one scan returns. */
typedef struct nmp_lists nmp_lists;
nmp_err nmp_lists_create(int m, int64_t enum_max, int64_t kmax, nmp_lists **out);
void nmp_lists_free(nmp_lists *ls);
/* Lists registered so far (0 for NULL); list `list` has nmp_lists_size columns. */
int nmp_lists_count(const nmp_lists *ls);
int64_t nmp_lists_size(const nmp_lists *ls, int list);
const int32_t *nmp_lists_column(const nmp_lists *ls, int list, int64_t k);
/* The output arrays for a listing of enum_max + 1 columns (nmp_price_solve), and what came of it:
 * found columns priced against duals whose sum + (G - 1) * max rc is base. Registers the complete
 * list (found <= enum_max, trimmed to thr(incumbent)) or the heuristic list of the best heur_cols
 * (when heur_cols > 0) in res. nmp_lists_forget drops the last listing (nothing to relist). */
nmp_price_out nmp_lists_listing(nmp_lists *ls);
void nmp_lists_forget(nmp_lists *ls);
nmp_err nmp_lists_listed(nmp_lists *ls, int64_t found, double base, double incumbent,
                         int64_t heur_cols, nmp_master_enum *res);
/* After a listing that was too long: a complete list if incumbent now allows one. */
nmp_err nmp_lists_relist(nmp_lists *ls, double incumbent, nmp_master_enum *res);
/* Selects list for scans: its columns that obey (obeys(ctx, c)) and whose rc at the listing's
 * duals does not rule them out against incumbent. */
void nmp_lists_select(nmp_lists *ls, int list, double incumbent,
                      bool (*obeys)(const void *ctx, const int32_t *c), const void *ctx);
/* Pricing over the selected list: the best k columns with rc > thr at duals y, in the order of
 * nmp_price_solve, into po. Allocates nothing. */
void nmp_lists_scan(nmp_lists *ls, const double *y, double thr, int64_t k, nmp_price_out *po);
/* ------------------------------------------------------ end of column generation */

/* ------------------------------ exact window re-partitioner (solvers/nmp_window.c) */

/* Scratch for re-partitioning windows of up to max_k groups (max_k * m <= 32 columns), allocated
 * once. NMP_ERR_UNSUPPORTED (reason in msg) when the window needs more than 2^22 group values,
 * 2^23 DP states or 2^27 transitions (2:4: up to 24 columns), NMP_ERR_ARG, NMP_ERR_NOMEM.
 * Release with nmp_window_free (accepts NULL). One per thread: nmp_window_solve writes its
 * scratch. */
typedef struct nmp_window nmp_window;
nmp_err nmp_window_create(const nmp_problem *pb, int max_k, nmp_window **out, nmp_msg *msg);
void nmp_window_free(nmp_window *w);
int nmp_window_max_k(const nmp_window *w);
/* Rough cost of one nmp_window_solve with k groups, in nanoseconds of one core (for pacing). */
double nmp_window_cost(const nmp_window *w, int k);
/* Best partition of the k*m source columns cols[] (1 <= k <= max_k) into k groups of m: returns
 * max sum_t D(group t) and writes the groups to out[t*m .. t*m+m-1] (out may be NULL; it must not
 * alias cols). *cur (may be NULL) gets the value of cols taken as k consecutive groups, summed
 * the same way, so the result is >= *cur exactly and their difference is the gain. Values use
 * float partial sums over 64 rows added in double (like nmp_eval's deltas). Allocates nothing. */
double nmp_window_solve(nmp_window *w, const int32_t *cols, int k, int32_t *out, double *cur);
/* Lets solves estimated above ~1 ms look at clk (NULL: none; it must outlive w's solves) and
 * give up once its time limit has passed: nmp_window_solve then returns -HUGE_VAL (out
 * unwritten), a gain no caller takes. Reads clk only, so threads with one window each may
 * share it. */
void nmp_window_set_clock(nmp_window *w, const nmp_clock *clk);

/* ------------------------------------------- assignment moves (solvers/nmp_lap.c) */

/* Bytes of scratch nmp_lap_solve needs for an n x n problem. */
size_t nmp_lap_scratch_size(int64_t n);
/* Linear assignment: assign[r] = column of row r minimising (maximise: maximising)
 * sum_r cost[r * n + assign[r]]; cost is n x n row-major, any finite values (ties and negative
 * costs are fine). O(n^3). scratch holds nmp_lap_scratch_size(n) bytes. NMP_ERR_ARG on n < 0,
 * NULL pointers or non-finite costs. */
nmp_err nmp_lap_solve(int64_t n, const double *cost, bool maximise, int32_t *assign,
                      void *scratch);

/* The position-wise assignment move on an nmp_eval: scratch for blocks of up to `block` groups.
 * Release with nmp_lap_move_free (accepts NULL). */
typedef struct nmp_lap_move nmp_lap_move;
nmp_err nmp_lap_move_create(const nmp_problem *pb, int64_t block, int pick, int threads,
                            nmp_lap_move **out);
void nmp_lap_move_free(nmp_lap_move *lm);
/* One round: m selections (position p = 0..m-1 of every group, or with pick 1 a random position
 * per group); each selection splits the groups into random blocks (rng may be NULL when all
 * groups fit in one block and pick is 0), reassigns the columns taken out optimally and applies
 * each block's move when it gains. threads (create) share the work; the result does not depend
 * on them. Returns the total gain; counts applied moves in *moves (may be NULL); sets
 * *stopped when clk (may be NULL) reports the time limit or an interrupt. */
double nmp_lap_move_round(nmp_lap_move *lm, nmp_eval *ev, nmp_rng *rng, nmp_clock *clk,
                          int64_t *moves, bool *stopped);
/* One assignment move on the k distinct groups gl[0..k-1] (k <= the block size), a random
 * position taken out of each; applied when it gains. Returns the gain. */
double nmp_lap_move_groups(nmp_lap_move *lm, nmp_eval *ev, const int64_t *gl, int64_t k,
                           nmp_rng *rng);
/* The instruction set of the move's weight kernel (solvers/nmp_lap_kernel.c); every path gives
 * the same weights bit for bit. A new move uses nmp_lap_isa_best(); nmp_lap_move_set_isa picks
 * another (tests, benchmarks): NMP_ERR_UNSUPPORTED when this CPU or build lacks it. */
typedef enum nmp_lap_isa { NMP_LAP_ISA_GENERIC, NMP_LAP_ISA_AVX2, NMP_LAP_ISA_AVX512 } nmp_lap_isa;
bool nmp_lap_isa_supported(nmp_lap_isa isa);
nmp_lap_isa nmp_lap_isa_best(void);
nmp_err nmp_lap_move_set_isa(nmp_lap_move *lm, nmp_lap_isa isa);
/* Columns b per tile of the thresholds: t of a tile holds rows j of NMP_LAP_TILE_B values,
 * t[j * NMP_LAP_TILE_B + l] being column b0 + l (any finite value past the last). */
#define NMP_LAP_TILE_B 16
/* w[a * k + b0 + l] += sum over rows j0 .. j0+len-1 of max(c[a][j], t[j - j0][l]) for a in
 * [a0, a1), l < nb, in the fixed order of nmp_lap_kernel.c (t points at the tile's row j0). */
void nmp_lap_fill_tile(nmp_lap_isa isa, const float *const *c, int64_t a0, int64_t a1,
                       int64_t j0, int64_t len, const float *t, double *w, int64_t k, int64_t b0,
                       int64_t nb);

/* ------------------------------------------------ annealing (solvers/nmp_anneal.c) */

/* Annealing scratch and settings for pb; anneal's parameters are read from par by name (defaults
 * where unset). Release with nmp_anneal_free (accepts NULL). */
typedef struct nmp_anneal nmp_anneal;
nmp_err nmp_anneal_create(const nmp_problem *pb, const nmp_params *par, nmp_anneal **out);
void nmp_anneal_free(nmp_anneal *an);
/* Moves of one default run (sweeps * cols). */
int64_t nmp_anneal_default_moves(const nmp_anneal *an);
/* Moves accepted (and descent steps) since create, for progress and iteration counts. */
int64_t nmp_anneal_moves(const nmp_anneal *an);
/* Anneals from ev's perm and leaves ev at the best perm seen (never below the start). The
 * schedule ends after `moves` moves (> 0) and/or when clk's elapsed time reaches pace_end
 * (> 0); with neither, after the default moves. Returns false when clk stopped it. */
bool nmp_anneal_run(nmp_anneal *an, nmp_eval *ev, nmp_rng *rng, nmp_clock *clk, int64_t moves,
                    double pace_end);
/* Parallel tempering over r replicas evs[0..r-1], all at the start perm on entry, temperatures
 * geometric between those accepting the median worsening move w.p. p_lo and p_hi; moves and
 * pace_end as for nmp_anneal_run (counted over all replicas). evs[0] ends at the best perm. */
bool nmp_anneal_tempering(nmp_anneal *an, nmp_eval *const *evs, int r, nmp_rng *rng,
                          nmp_clock *clk, int64_t moves, double pace_end, double p_lo,
                          double p_hi);
/* Best-improvement swap descent to a 2-swap local optimum; skipped unless force or its pass
 * cost is within the polish budget. Returns false when clk stopped it. */
bool nmp_anneal_polish(nmp_anneal *an, nmp_eval *ev, nmp_clock *clk, bool force);

#endif /* NMP_SOLVERS_H */

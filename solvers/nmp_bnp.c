/* nmp_bnp.c: branch-and-price for N:M channel permutations ("bnp"), exact
 *
 * max sum_q D(q) x_q  s.t.  sum_{q ∋ i} x_q = 1 (every column i),  x_q in {0, 1}.
 *
 * Nodes. Each node solves the LP of set partitioning by column generation (nmp_master.c: GLPK
 * master, exact pricing branch-and-bound in nmp_price.c) under its branching rules; its bound is
 * the best Lagrangian bound sum_i y_i + (cols/m) * max rc seen during the generation, valid at
 * every round, so a node stops as soon as that bound falls to the incumbent.
 * Branching (Ryan-Foster): for the pair of columns (i, j) whose "together" value
 * sum_{q ∋ i, j} x_q is most fractional, one child keeps i and j in the same group (columns with
 * exactly one of them are forbidden) and the other puts them apart (columns with both are
 * forbidden); the pricing enforces the rules, the master fixes breaking columns at 0. Every
 * fractional solution has such a pair, and the rules leave each partition in exactly one child.
 * Search: best bound first (ties: deeper, then older). Each branched node's final basis is kept
 * (nmp_master_save_basis, one snapshot shared by its two children) and a child starts its dual
 * simplex from it: best-first jumps across the tree, and from the last node's basis a child
 * needed ~260 simplex iterations at 128 x 128, 2.7x the time per node (docs/benchmarks.md).
 * Snapshots name pool columns by permanent ids and pin them, so purges neither renumber nor
 * drop them (unpinned, a purge at ~10k nodes of 128 x 128 broke nearly every stored basis).
 *
 * Lists. Once a node's gap (bound - incumbent) is small, every column that can be in a better
 * partition has a reduced cost above a threshold just below 0 (nmp_master_enumerate). When there
 * are at most enum_max of them, the node's subtree is priced by scanning that list instead of the
 * branch-and-bound, and the incumbent fixes list columns to 0 by reduced cost as it improves:
 * nodes then cost little more than a dual simplex. This is what proves 64- to 96-column instances
 * in seconds to minutes; branching alone needs the pricing at every node.
 *
 * Incumbents: the start perm improved by "auto" (at heur_effort: its fixed work, not paced by
 * the clock, so the tree is the same on every run); integral masters; a dive from the root LP
 * (fix the columns near 1, re-price by the heuristic alone: 1 s instead of 118 s at 256 x 256,
 * and a better answer there; dive=2 prices exactly); and, when a list is too long, a depth-first
 * search of a restricted problem made of its best heur_cols columns, then "lns" from the
 * incumbent (unless it already ran from that one: it would find the same), after which the list
 * may be complete after all. Both heuristics run through
 * nmp_subsolve. Neither needs the node's LP proven again afterwards: the node branches on the
 * pair chosen from its LP before them, and its certificate (nmp_master_keep_bound) is kept for
 * the listing.
 * The solve runs inside nmp_glpk_run: a GLPK internal error becomes NMP_ERR_LP.
 *
 * OPTIMAL when no open node's bound exceeds the incumbent by more than 1e-9 relative. */
#include "nmp_glpk.h"

#include <math.h>
#include <string.h>

static const nmp_param_desc bnp_params[] = {
    { "columns", 0, 0, 1e6, "columns added per pricing round (0: 2 * cols)" },
    { "smoothing", 0, 0, 0.99, "Wentges dual smoothing factor (0: off, half the rounds here)" },
    { "heur_effort", 1, 0, 1e3, "effort of the 'auto' run for the first incumbent (0: none)" },
    { "heur_time", 60, 0, 1e6, "most seconds of that run (0: none; it ends by its work first)" },
    { "node_limit", 1e7, 1, 1e12, "most nodes to process" },
    { "dive", 1, 0, 2, "dive from the root LP for an incumbent (fix columns near 1, re-price): "
      "0 no, 1 heuristic pricing (exact with hprice=0), 2 exact pricing" },
    { "enum_max", 50000, 0, 1e7, "longest list of a reduced-cost enumeration (0: never list)" },
    { "heur_cols", 5000, 0, 1e7, "columns of the problem searched when a list is too long" },
    { "heur_nodes", 2000, 0, 1e9, "nodes of that depth-first search" },
    { "lns_time", 10, 0, 1e6, "seconds of 'lns' from the incumbent when a list is too long" },
    { "hprice", 1, 0, 1, "heuristic pricing before the exact search (0: exact only)" },
    { 0 },
};

typedef struct bnp_node {
    double bound;
    int32_t parent, depth;
    int32_t list;     /* enumerated list of this subtree, -1: priced */
    int32_t basis;    /* snapshot slot of its parent's basis, -1: none */
    int32_t a, b;
    uint8_t together;
} bnp_node;

typedef struct bnp_state {
    const nmp_problem *pb;
    nmp_params par;
    nmp_master *cg;
    nmp_backend be;  /* the device pricing (par->device), when dev */
    bool dev;
    bool hprice;     /* the heuristic pricing is on */
    double heur_effort, heur_time, lns_time;
    int dive;
    int64_t node_limit, heur_cols, heur_nodes;
    int32_t *inc, *work;
    bnp_node *node;
    int32_t *heap;
    int64_t nnode, ncap, nheap;
    int32_t *ra, *rb;
    uint8_t *rt;
    int rcap;
    /* basis snapshots of branched nodes, one slot (cols entries) per parent, shared by its
     * queued children; free slots are reused */
    int32_t *bas;
    int32_t *bas_ref, *bas_free;
    int32_t nbas, bas_cap, nfree;
    nmp_msg *msg;
} bnp_state;

/* Snapshots use at most this many bytes; beyond it a child starts from the current basis. */
#define BNP_BASIS_BYTES ((size_t)256 << 20)

static void bnp_destroy(void *p)
{
    bnp_state *st = p;
    if (!st)
        return;
    nmp_master_free(st->cg);
    nmp_backend_release(&st->be);
    nmp_free(st->inc);
    nmp_free(st->work);
    nmp_free(st->node);
    nmp_free(st->heap);
    nmp_free(st->ra);
    nmp_free(st->rb);
    nmp_free(st->rt);
    nmp_free(st->bas);
    nmp_free(st->bas_ref);
    nmp_free(st->bas_free);
    nmp_free(st);
}

static nmp_err bnp_create(const nmp_problem *pb, const nmp_params *par, void **state, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    bnp_state *st = nmp_calloc(1, sizeof *st);
    if (!st)
        return NMP_ERR_NOMEM;
    st->pb = pb;
    st->par = *par;
    st->msg = msg;
    st->heur_effort = nmp_param_get(par, bnp_params, "heur_effort");
    st->heur_time = nmp_param_get(par, bnp_params, "heur_time");
    st->node_limit = (int64_t)nmp_param_get(par, bnp_params, "node_limit");
    st->heur_cols = (int64_t)nmp_param_get(par, bnp_params, "heur_cols");
    st->lns_time = nmp_param_get(par, bnp_params, "lns_time");
    st->heur_nodes = (int64_t)nmp_param_get(par, bnp_params, "heur_nodes");
    st->dive = (int)nmp_param_get(par, bnp_params, "dive");
    st->hprice = nmp_param_get(par, bnp_params, "hprice") > 0;
    st->inc = nmp_malloc((size_t)pb->cols * sizeof *st->inc);
    st->work = nmp_malloc((size_t)pb->cols * sizeof *st->work);
    st->ncap = 1024;
    st->node = nmp_malloc((size_t)st->ncap * sizeof *st->node);
    st->heap = nmp_malloc((size_t)st->ncap * sizeof *st->heap);
    st->rcap = 64;
    st->ra = nmp_malloc((size_t)st->rcap * sizeof *st->ra);
    st->rb = nmp_malloc((size_t)st->rcap * sizeof *st->rb);
    st->rt = nmp_malloc((size_t)st->rcap * sizeof *st->rt);
    if (!st->inc || !st->work || !st->node || !st->heap || !st->ra || !st->rb || !st->rt) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    NMP_TRY(e, nmp_solver_backend("bnp", pb, par, NMP_DEVICE_AUTO_PRICE_COLS, &st->be, &st->dev,
                                  msg));
    const nmp_master_opts o = { par->threads, (int64_t)nmp_param_get(par, bnp_params, "columns"),
                            nmp_param_get(par, bnp_params, "smoothing"), par->verbose,
                            (int64_t)nmp_param_get(par, bnp_params, "enum_max"),
                            st->dev ? &st->be : NULL,
                            st->hprice };
    NMP_TRY(e, nmp_master_create(pb, &o, &st->cg, msg));
    *state = st;
    st = NULL;
out:
    bnp_destroy(st);
    return e;
}

/* ------------------------------------------------------------------ tree */

/* u before v: larger bound, then deeper, then older */
static bool node_before(const bnp_state *st, int32_t u, int32_t v)
{
    const bnp_node *a = &st->node[u], *b = &st->node[v];
    if (a->bound != b->bound)
        return a->bound > b->bound;
    if (a->depth != b->depth)
        return a->depth > b->depth;
    return u < v;
}

static void heap_push(bnp_state *st, int32_t id)
{
    int64_t k = st->nheap++;
    while (k > 0) {
        const int64_t par = (k - 1) / 2;
        if (!node_before(st, id, st->heap[par]))
            break;
        st->heap[k] = st->heap[par];
        k = par;
    }
    st->heap[k] = id;
}

static int32_t heap_pop(bnp_state *st)
{
    const int32_t top = st->heap[0];
    const int32_t last = st->heap[--st->nheap];
    int64_t k = 0;
    for (;;) {
        int64_t c = 2 * k + 1;
        if (c >= st->nheap)
            break;
        if (c + 1 < st->nheap && node_before(st, st->heap[c + 1], st->heap[c]))
            c++;
        if (!node_before(st, st->heap[c], last))
            break;
        st->heap[k] = st->heap[c];
        k = c;
    }
    if (st->nheap > 0)
        st->heap[k] = last;
    return top;
}

/* A new node, queued, starting from basis snapshot `slot` (-1: none). */
static nmp_err new_node(bnp_state *st, int32_t parent, int32_t a, int32_t b, uint8_t together,
                        double bound, int32_t slot)
{
    if (st->nnode == st->ncap) {
        if (st->ncap > INT32_MAX / 2)
            return NMP_ERR_NOMEM;
        const int64_t cap = 2 * st->ncap;
        bool ok = true;
        st->node = nmp_grow(st->node, (size_t)cap * sizeof *st->node, &ok);
        st->heap = nmp_grow(st->heap, (size_t)cap * sizeof *st->heap, &ok);
        if (!ok)
            return NMP_ERR_NOMEM;
        st->ncap = cap;
    }
    const int32_t id = (int32_t)st->nnode++;
    bnp_node *nd = &st->node[id];
    nd->bound = bound;
    nd->parent = parent;
    nd->depth = parent < 0 ? 0 : st->node[parent].depth + 1;
    nd->list = parent < 0 ? -1 : st->node[parent].list;
    nd->basis = slot;
    nd->a = a;
    nd->b = b;
    nd->together = together;
    heap_push(st, id);
    return NMP_OK;
}

static nmp_err rules_reserve(bnp_state *st, int need)
{
    if (need <= st->rcap)
        return NMP_OK;
    const int cap = NMP_MAX(need, 2 * st->rcap);
    bool ok = true;
    st->ra = nmp_grow(st->ra, (size_t)cap * sizeof *st->ra, &ok);
    st->rb = nmp_grow(st->rb, (size_t)cap * sizeof *st->rb, &ok);
    st->rt = nmp_grow(st->rt, (size_t)cap * sizeof *st->rt, &ok);
    if (!ok)
        return NMP_ERR_NOMEM;
    st->rcap = cap;
    return NMP_OK;
}

/* A snapshot of the master's basis for the queued children of a node: *slot, or -1 when the
 * store is full (they start from whatever basis the master has then). */
static nmp_err basis_save(bnp_state *st, int32_t *slot)
{
    const size_t C = (size_t)st->pb->cols;
    *slot = -1;
    if (st->nfree == 0) {
        if (st->nbas == st->bas_cap) {
            const int32_t cap = NMP_MAX(64, 2 * st->bas_cap);
            if ((size_t)cap * C * sizeof *st->bas > BNP_BASIS_BYTES)
                return NMP_OK;
            bool ok = true;
            st->bas = nmp_grow(st->bas, (size_t)cap * C * sizeof *st->bas, &ok);
            st->bas_ref = nmp_grow(st->bas_ref, (size_t)cap * sizeof *st->bas_ref, &ok);
            st->bas_free = nmp_grow(st->bas_free, (size_t)cap * sizeof *st->bas_free, &ok);
            if (!ok)
                return NMP_ERR_NOMEM;
            st->bas_cap = cap;
        }
        st->bas_free[st->nfree++] = st->nbas++;
    }
    *slot = st->bas_free[--st->nfree];
    nmp_master_save_basis(st->cg, st->bas + (size_t)*slot * C);
    st->bas_ref[*slot] = 2;
    return NMP_OK;
}

/* Node id is solved next: its parent's basis goes back into the master (after its rules), and
 * the slot is freed once every child that shares it has been. */
static void basis_load(bnp_state *st, int32_t id)
{
    const int32_t slot = st->node[id].basis;
    if (slot < 0)
        return;
    (void)nmp_master_load_basis(st->cg, st->bas + (size_t)slot * (size_t)st->pb->cols);
    st->node[id].basis = -1;
    if (--st->bas_ref[slot] == 0) {
        nmp_master_release_basis(st->cg, st->bas + (size_t)slot * (size_t)st->pb->cols);
        st->bas_free[st->nfree++] = slot;
    }
}

/* The rules of node id, from its path to the root. */
static nmp_err apply_rules(bnp_state *st, int32_t id)
{
    nmp_err e = rules_reserve(st, st->node[id].depth);
    if (e != NMP_OK)
        return e;
    int k = 0;
    for (int32_t v = id; st->node[v].parent >= 0; v = st->node[v].parent) {
        st->ra[k] = st->node[v].a;
        st->rb[k] = st->node[v].b;
        st->rt[k] = st->node[v].together;
        k++;
    }
    return nmp_master_set_rules(st->cg, k, st->ra, st->rb, st->rt, st->node[id].list);
}

/* perm (a partition) replaces the incumbent if better */
static nmp_err offer(bnp_state *st, const int32_t *perm, double *best)
{
    nmp_err e = NMP_OK;
    double v;
    NMP_TRY(e, nmp_score(st->pb, perm, &v));
    if (v > *best) {
        *best = v;
        nmp_master_set_incumbent(st->cg, v);
        memcpy(st->inc, perm, (size_t)st->pb->cols * sizeof *perm);
        NMP_TRY(e, nmp_master_add_groups(st->cg, perm));
    }
out:
    return e;
}

/* A node whose master is integral (perm in st->work): the partition is a candidate, and the
 * node is closed. Its bound nb is certified by the pricing; it can exceed the partition's value
 * by GLPK's optimality tolerance, which *slack keeps so the final bound stays honest. */
static nmp_err close_integral(bnp_state *st, double nb, double *best, double *slack)
{
    nmp_err e = NMP_OK;
    double v;
    NMP_TRY(e, nmp_score(st->pb, st->work, &v));
    NMP_TRY(e, offer(st, st->work, best));
    if (nb > v + 1e-9 * fabs(v))
        *slack = NMP_MAX(*slack, nb);
out:
    return e;
}

/* Diving from the root LP: fix every column with x > 0.9 and the largest other one (its members
 * together: the component fills a group, so only that column can hold them), re-price, repeat
 * until the master is integral or its bound falls to the incumbent. The rules are cleared at
 * the end; *stopped when the clock ran out. */
static nmp_err dive(bnp_state *st, double *best, nmp_clock *clk, int64_t *rounds, bool *stopped)
{
    nmp_err e = NMP_OK;
    const int m = st->pb->m;
    const int most = (int)st->pb->groups * (m - 1);
    int nr = 0;
    *stopped = false;
    nmp_master_set_heuristic_only(st->cg, st->dive == 1 && st->hprice);
    NMP_TRY(e, rules_reserve(st, most));
    for (int64_t step = 0; step < st->pb->groups; step++) {
        const double tol = 1e-9 * fabs(*best);
        NMP_TRY(e, nmp_master_set_rules(st->cg, nr, st->ra, st->rb, st->rt, -1));
        nmp_report rep = { *best, st->node[0].bound, 0 };
        nmp_master_out out;
        NMP_TRY(e, nmp_master_solve(st->cg, *best + tol, clk, &rep, &out, st->msg));
        *rounds += out.rounds;
        if (out.end == NMP_MASTER_STOPPED) {
            *stopped = true;
            break;
        }
        if (out.end == NMP_MASTER_CUTOFF || out.bound <= *best + tol || out.artificial)
            break;
        if (nmp_master_integral(st->cg, st->work)) {
            NMP_TRY(e, offer(st, st->work, best));
            break;
        }
        int64_t top = -1;
        const int before = nr;
        for (int64_t q = 0; q < nmp_master_pool(st->cg); q++) {
            const double x = nmp_master_x(st->cg, q);
            if (x < 1e-6)
                continue;
            const int32_t *c = nmp_master_column(st->cg, q);
            bool fixed = false; /* already a full component? */
            for (int r = 0; r < before && !fixed; r++)
                fixed = st->ra[r] == c[0] && st->rb[r] == c[1];
            if (fixed)
                continue;
            if (x > 0.9) {
                for (int t = 1; t < m && nr < most; t++) {
                    st->ra[nr] = c[0];
                    st->rb[nr] = c[t];
                    st->rt[nr++] = 1;
                }
            } else if (top < 0 || x > nmp_master_x(st->cg, top)) {
                top = q;
            }
        }
        if (top >= 0) {
            const int32_t *c = nmp_master_column(st->cg, top);
            for (int t = 1; t < m && nr < most; t++) {
                st->ra[nr] = c[0];
                st->rb[nr] = c[t];
                st->rt[nr++] = 1;
            }
        }
        if (nr == before)
            break;
    }
    NMP_TRY(e, nmp_master_set_rules(st->cg, 0, st->ra, st->rb, st->rt, -1));
out:
    nmp_master_set_heuristic_only(st->cg, false);
    return e;
}

/* Depth-first branch-and-bound on a heuristic list (the best columns of a listing that was too
 * long): rules st->ra/rb/rt[0 .. nr-1] plus those of the search, the child that follows the LP
 * (together when the pair's value is >= 1/2) first, at most *budget nodes. Integral masters are
 * incumbents. A heuristic: the list may miss columns, so nothing here is a proof. */
static nmp_err hdfs(bnp_state *st, int list, int nr, double *best, int64_t *budget,
                    nmp_clock *clk, int64_t *rounds, bool *stopped)
{
    nmp_err e = NMP_OK;
    if (*budget <= 0 || *stopped)
        return NMP_OK;
    (*budget)--;
    NMP_TRY(e, nmp_master_set_rules(st->cg, nr, st->ra, st->rb, st->rt, list));
    const double tol = 1e-9 * fabs(*best);
    nmp_report rep = { *best, st->node[0].bound, 0 };
    nmp_master_out out;
    NMP_TRY(e, nmp_master_solve(st->cg, *best + tol, clk, &rep, &out, st->msg));
    *rounds += out.rounds;
    if (out.end == NMP_MASTER_STOPPED) {
        *stopped = true;
        goto out;
    }
    if (out.end == NMP_MASTER_CUTOFF || out.bound <= *best + tol || out.artificial)
        goto out;
    if (nmp_master_integral(st->cg, st->work)) {
        NMP_TRY(e, offer(st, st->work, best));
        goto out;
    }
    int32_t a, b;
    double together;
    if (!nmp_master_branch_pair(st->cg, &a, &b, &together))
        goto out;
    NMP_TRY(e, rules_reserve(st, nr + 1));
    for (int side = 0; side < 2; side++) {
        st->ra[nr] = a;
        st->rb[nr] = b;
        st->rt[nr] = (uint8_t)((together >= 0.5) != (side == 1));
        NMP_TRY(e, hdfs(st, list, nr + 1, best, budget, clk, rounds, stopped));
    }
out:
    return e;
}

/* "lns" from the incumbent for at most lns_time seconds of clk's time; its answer is offered. */
static nmp_err run_lns(bnp_state *st, nmp_clock *clk, double *best)
{
    nmp_err e = NMP_OK;
    const nmp_problem *pb = st->pb;
    nmp_params hp;
    nmp_result r;
    nmp_params_init(&hp);
    hp.seed = st->par.seed;
    hp.threads = st->par.threads;
    /* a search that stops by itself: a longer patience than lns's default 20 + 4 G */
    NMP_TRY(e, nmp_params_set(&hp, "max_fail", 10.0 * (20 + 4 * (double)pb->groups)));
    memcpy(st->work, st->inc, (size_t)pb->cols * sizeof *st->work);
    NMP_TRY(e, nmp_subsolve(&nmp_lns_ops, pb, &hp, clk, st->lns_time, st->work, &r, st->msg));
    NMP_TRY(e, offer(st, st->work, best));
out:
    return e;
}

/* The node was not finished (the clock stopped its work): back to the queue with bound nb. */
static void requeue(bnp_state *st, int32_t id, double nb, nmp_result *res)
{
    st->node[id].bound = nb;
    heap_push(st, id);
    res->nodes--;
}

/* The search, inside nmp_glpk_run. */
static nmp_err bnp_run(void *p, int32_t *perm, nmp_result *res)
{
    nmp_err e = NMP_OK;
    bnp_state *st = p;
    const nmp_problem *pb = st->pb;
    nmp_clock clk;
    nmp_clock_start(&clk, &st->par);
    double best;
    bool stopped = false, limited = false;
    double enum_gap = INFINITY, slack = -INFINITY;
    double lns_at = -INFINITY; /* the incumbent that "lns" last started from */
    NMP_TRY(e, nmp_master_start(st->cg, &st->par, st->heur_effort, st->heur_time, &clk, perm,
                                st->inc, &best, st->msg));
    st->nnode = st->nheap = 0;
    NMP_TRY(e, new_node(st, -1, -1, -1, 0, pb->row_bound, -1));
    while (st->nheap > 0) {
        const double tol = 1e-9 * fabs(best);
        const int32_t top = st->heap[0];
        if (st->node[top].bound <= best + tol) {
            st->nheap = 0; /* every open node is pruned */
            break;
        }
        if (nmp_clock_tick(&clk, res->nodes, best, st->node[top].bound, "bnp", false)) {
            stopped = true;
            break;
        }
        if (res->nodes >= st->node_limit) {
            limited = true;
            break;
        }
        const int32_t id = heap_pop(st);
        const double global = st->nheap > 0 ? NMP_MAX(st->node[id].bound,
                                                      st->node[st->heap[0]].bound)
                                            : st->node[id].bound;
        nmp_report rep = { best, global, res->nodes };
        nmp_master_out out;
        NMP_TRY(e, apply_rules(st, id));
        basis_load(st, id);
        NMP_TRY(e, nmp_master_solve(st->cg, best + tol, &clk, &rep, &out, st->msg));
        res->iterations += out.rounds;
        if (out.end == NMP_MASTER_STOPPED) {
            if (isfinite(out.bound))
                st->node[id].bound = NMP_MIN(st->node[id].bound, out.bound);
            heap_push(st, id);
            stopped = true;
            break;
        }
        res->nodes++;
        double nb = NMP_MIN(st->node[id].bound, out.bound);
        if (out.end == NMP_MASTER_CUTOFF || nb <= best + tol)
            continue;
        if (!out.artificial && nmp_master_integral(st->cg, st->work)) {
            NMP_TRY(e, close_integral(st, nb, &best, &slack));
            continue;
        }
        /* the pair to branch on, from the node's LP: what follows (a dive, a search of a list)
         * moves the master, and needs no exact solve of the node again for that */
        int32_t a, b;
        double together;
        if (!nmp_master_branch_pair(st->cg, &a, &b, &together))
            continue; /* only artificial columns are fractional: no partition here */
        nmp_master_keep_bound(st->cg);
        if (st->node[id].parent < 0 && st->dive) { /* the root: dive for an incumbent */
            int64_t rounds = 0;
            bool dstop;
            NMP_TRY(e, dive(st, &best, &clk, &rounds, &dstop));
            res->iterations += rounds;
            if (dstop) {
                requeue(st, id, nb, res);
                stopped = true;
                break;
            }
            if (nb <= best + 1e-9 * fabs(best))
                continue;
            nmp_master_restore_bound(st->cg); /* the root's certificate, for the listing */
        }
        /* small gap: list the columns that matter, and go on without pricing */
        if (st->node[id].list < 0 && nb - best < enum_gap) {
            nmp_master_enum en;
            rep.best = best;
            NMP_TRY(e, nmp_master_enumerate(st->cg, best, st->heur_cols, &clk, &rep, &en));
            bool lstop = en.stopped;
            if (!lstop && en.list >= 0 && !en.complete) { /* too many: search the best of them */
                int64_t budget = st->heur_nodes, rounds = 0;
                const int nr = st->node[id].depth;
                NMP_TRY(e, apply_rules(st, id));
                NMP_TRY(e, hdfs(st, en.list, nr, &best, &budget, &clk, &rounds, &lstop));
                res->iterations += rounds;
                if (!lstop && st->lns_time > 0 && best != lns_at) { /* from a new incumbent */
                    NMP_TRY(e, run_lns(st, &clk, &best));
                    lns_at = best;
                    lstop = clk.stopped || nmp_clock_expired(&clk);
                }
                NMP_TRY(e, nmp_master_relist(st->cg, best, &en));
            }
            if (lstop) {
                requeue(st, id, nb, res);
                stopped = true;
                break;
            }
            if (en.list < 0 || !en.complete)
                enum_gap = 0.8 * (nb - best); /* too many: try again on smaller gaps */
            else
                st->node[id].list = en.list; /* complete: the subtree scans the list */
            const double tol2 = 1e-9 * fabs(best);
            if (nb <= best + tol2)
                continue;
            if (st->node[id].list >= 0) { /* the node's master on its list, branched from there */
                NMP_TRY(e, apply_rules(st, id));
                NMP_TRY(e, nmp_master_solve(st->cg, best + tol2, &clk, &rep, &out, st->msg));
                res->iterations += out.rounds;
                if (out.end == NMP_MASTER_STOPPED) {
                    requeue(st, id, nb, res);
                    stopped = true;
                    break;
                }
                nb = NMP_MIN(nb, out.bound);
                if (out.end == NMP_MASTER_CUTOFF || nb <= best + tol2)
                    continue;
                if (!out.artificial && nmp_master_integral(st->cg, st->work)) {
                    NMP_TRY(e, close_integral(st, nb, &best, &slack));
                    continue;
                }
                if (!nmp_master_branch_pair(st->cg, &a, &b, &together))
                    continue;
            }
        }
        /* both children start from this node's basis, whenever they are solved */
        int32_t slot;
        NMP_TRY(e, basis_save(st, &slot));
        NMP_TRY(e, new_node(st, id, a, b, 1, nb, slot));
        NMP_TRY(e, new_node(st, id, a, b, 0, nb, slot));
    }
    memcpy(perm, st->inc, (size_t)pb->cols * sizeof *st->inc);
    res->bound = NMP_MAX(best, slack);
    if (st->nheap > 0)
        res->bound = NMP_MAX(res->bound, NMP_MIN(st->node[st->heap[0]].bound, pb->row_bound));
    if (res->bound - best <= 1e-9 * fabs(best))
        res->status = NMP_STATUS_OPTIMAL;
    else if (st->nheap == 0)
        res->status = NMP_STATUS_FEASIBLE; /* tree done, a closed node's bound above: tolerance */
    else
        res->status = stopped ? nmp_clock_status(&clk)
                              : limited ? NMP_STATUS_ITER_LIMIT : NMP_STATUS_FEASIBLE;
    nmp_clock_tick(&clk, res->nodes, best, res->bound, "done", true);
out:
    return e;
}

/* After a GLPK internal error: the master's LP is gone. */
static void bnp_lost(void *p)
{
    bnp_state *st = p;
    nmp_master_forget_lp(st->cg);
}

static nmp_err bnp_solve(void *p, int32_t *perm, nmp_result *res)
{
    bnp_state *st = p;
    return nmp_glpk_run(bnp_run, bnp_lost, st, perm, res, st->par.verbose, "bnp", st->msg);
}

const nmp_solver_ops nmp_bnp_ops = {
    "bnp", "branch-and-price: Ryan-Foster branching on column generation, exact (GLPK)",
    bnp_params, bnp_create, bnp_solve, bnp_destroy, 1,
};

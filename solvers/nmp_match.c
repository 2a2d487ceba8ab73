/* nmp_match.c: exact 1:2 solver ("match"): maximum-weight perfect matching by Edmonds' blossoms
 *
 * With m = 2 and n = 1 a group {a, b} keeps D(a, b) = sum_j max(s(j, a), s(j, b)), so the best
 * permutation pairs the columns by a maximum-weight perfect matching of the complete graph on the
 * cols columns with edge weights D. This file solves that matching exactly with Edmonds' weighted
 * blossom algorithm in Galil's primal-dual form ("Efficient algorithms for finding maximum matching
 * in graphs", 1986), organised as in J. van Rantwijk's mwmatching: stages grow alternating trees
 * from every free vertex over tight edges (slack 0), shrink odd cycles into blossoms, and change
 * the duals by the largest step that keeps them feasible; each stage ends with one augmentation.
 * Per blossom the least-slack edge to every other S-blossom is kept, so a stage costs O(cols^2)
 * and the whole run O(cols^3): 512 columns take well under a second.
 *
 * Exactness: the weights are scaled to integers below 2^48 (relative rounding 2^-48, far below the
 * float precision of the saliencies) and the algorithm runs in exact int64 arithmetic, as Galil's
 * algorithm with integer weights keeps every dual a multiple of 1/2 (duals are stored doubled).
 * The result is a maximum-weight matching; all weights are >= 0, so pairing any columns it left
 * single (there are none unless weights tie at 0) keeps it optimal among perfect matchings.
 *
 * Edges of the complete graph are implicit. An "endpoint" is the code p = a << shift | b (2^shift
 * >= cols, so no division decodes it): the end at vertex b of the edge {a, b}; flip(p) is the end
 * at a. mate[v], labelend[b], bestedge[b] and the
 * blossom endpoint lists hold such codes, so no edge list is stored. Memory: the weight matrix and
 * the per-blossom lists, O(cols^2) (about 50 MB at 2048 columns); max_cols bounds it.
 * Clock: a stage costs O(cols^2) (~10 ms at 4096 columns), so besides the check between stages
 * the time limit is looked at after every dual update and every MATCH_CHECK_SCANS vertex scans
 * of a stage, and per row of the weight scaling. A stage cut short leaves a valid matching (mate
 * changes only in an augmentation, which runs to its end), so the result is the matching so far
 * with its single columns paired up. */
#include "nmp_solvers.h"

#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static const nmp_param_desc match_params[] = {
    { "max_cols", 4096, 2, 16384, "refuse larger inputs (O(cols^2) memory, O(cols^3) time)" },
    { 0 },
};

#define MATCH_WMAX 281474976710656.0 /* 2^48: the largest scaled weight */
#define MATCH_CHECK_SCANS 64          /* vertex scans (O(cols) each) between two clock checks */

typedef struct match {
    const nmp_problem *pb;
    nmp_clock clock;
    int n;               /* vertices (= cols) */
    int shift, mask;     /* endpoint codes: a << shift | b, 2^shift >= n */
    int threads;         /* OpenMP threads for the weights */
    int64_t *w;          /* n * n scaled weights, symmetric */
    int64_t *dual;       /* 2n: vertex duals, then blossom duals (both doubled) */
    int32_t *mate;       /* n: endpoint at the mate, -1 when single */
    int8_t *label;       /* 2n: 0 free, 1 S, 2 T (bit 4 marks a scan) */
    int32_t *labelend;   /* 2n: endpoint through which the label came, -1 at roots */
    int32_t *inblossom;  /* n: top-level blossom holding each vertex */
    int32_t *parent;     /* 2n: enclosing blossom, -1 at the top */
    int32_t *base;       /* 2n: base vertex, -1 for unused blossom ids */
    int32_t *nchild;     /* 2n: children of blossom b (b >= n) */
    int32_t *childs;     /* n * n: children of blossom b at (b - n) * n, in cycle order */
    int32_t *endps;      /* n * n: endps[t] links childs[t] to childs[t + 1] */
    int32_t *bestedge;   /* 2n: least-slack edge to an S-blossom (or free vertex), -1 none */
    int32_t *nbest;      /* n: entries of the per-blossom best-edge list, -1 when none is kept */
    int32_t *bestlist;   /* n * n: least-slack edge to each other S-blossom */
    int32_t *unused;     /* free blossom ids */
    int nunused;
    uint8_t *allow;      /* n * n: edge known tight in this stage */
    int32_t *queue;      /* S-vertices to scan */
    uint8_t *queued;
    int nqueue;
    int32_t *leaves, *stack, *bestto, *rot; /* scratch */
    int32_t *work;       /* cols: the matched perm */
} match;

static void match_destroy(void *p)
{
    match *st = p;
    if (!st)
        return;
    nmp_free(st->w);
    nmp_free(st->dual);
    nmp_free(st->mate);
    nmp_free(st->label);
    nmp_free(st->labelend);
    nmp_free(st->inblossom);
    nmp_free(st->parent);
    nmp_free(st->base);
    nmp_free(st->nchild);
    nmp_free(st->childs);
    nmp_free(st->endps);
    nmp_free(st->bestedge);
    nmp_free(st->nbest);
    nmp_free(st->bestlist);
    nmp_free(st->unused);
    nmp_free(st->allow);
    nmp_free(st->queue);
    nmp_free(st->queued);
    nmp_free(st->leaves);
    nmp_free(st->stack);
    nmp_free(st->bestto);
    nmp_free(st->rot);
    nmp_free(st->work);
    nmp_free(st);
}

static nmp_err match_create(const nmp_problem *pb, const nmp_params *par, void **state,
                            nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    match *st = NULL;
    if (!pb || !state)
        return nmp_fail(msg, NMP_ERR_ARG, "match: no problem or state");
    *state = NULL;
    if (pb->m != 2 || pb->n != 1)
        return nmp_fail(msg, NMP_ERR_UNSUPPORTED,
                        "match: pattern %d:%d is not 1:2 (the matching model needs groups of "
                        "2 keeping 1; use sp, dp or a heuristic)",
                        pb->n, pb->m);
    const double max_cols = nmp_param_get(par, match_params, "max_cols");
    if ((double)pb->cols > max_cols)
        return nmp_fail(msg, NMP_ERR_UNSUPPORTED,
                        "match: %lld columns exceed max_cols = %.0f (O(cols^2) memory)",
                        (long long)pb->cols, max_cols);
    st = nmp_calloc(1, sizeof *st);
    if (!st)
        return NMP_ERR_NOMEM;
    const int n = (int)pb->cols;
    const size_t nn = (size_t)n * (size_t)n, n2 = 2 * (size_t)n;
    st->pb = pb;
    st->n = n;
    while ((1 << st->shift) < n)
        st->shift++;
    st->mask = (1 << st->shift) - 1;
    st->threads = par ? par->threads : 0;
#ifdef _OPENMP
    if (st->threads <= 0)
        st->threads = omp_get_max_threads();
#endif
    nmp_clock_start(&st->clock, par);
    st->w = nmp_malloc(nn * sizeof *st->w);
    st->dual = nmp_malloc(n2 * sizeof *st->dual);
    st->mate = nmp_malloc((size_t)n * sizeof *st->mate);
    st->label = nmp_malloc(n2 * sizeof *st->label);
    st->labelend = nmp_malloc(n2 * sizeof *st->labelend);
    st->inblossom = nmp_malloc((size_t)n * sizeof *st->inblossom);
    st->parent = nmp_malloc(n2 * sizeof *st->parent);
    st->base = nmp_malloc(n2 * sizeof *st->base);
    st->nchild = nmp_malloc(n2 * sizeof *st->nchild);
    st->childs = nmp_malloc(nn * sizeof *st->childs);
    st->endps = nmp_malloc(nn * sizeof *st->endps);
    st->bestedge = nmp_malloc(n2 * sizeof *st->bestedge);
    st->nbest = nmp_malloc((size_t)n * sizeof *st->nbest);
    st->bestlist = nmp_malloc(nn * sizeof *st->bestlist);
    st->unused = nmp_malloc((size_t)n * sizeof *st->unused);
    st->allow = nmp_malloc(nn);
    st->queue = nmp_malloc((size_t)n * sizeof *st->queue);
    st->queued = nmp_malloc((size_t)n);
    st->leaves = nmp_malloc((size_t)n * sizeof *st->leaves);
    st->stack = nmp_malloc(n2 * sizeof *st->stack);
    st->bestto = nmp_malloc(n2 * sizeof *st->bestto);
    st->rot = nmp_malloc((size_t)n * sizeof *st->rot);
    st->work = nmp_malloc((size_t)n * sizeof *st->work);
    if (!st->w || !st->dual || !st->mate || !st->label || !st->labelend || !st->inblossom ||
        !st->parent || !st->base || !st->nchild || !st->childs || !st->endps || !st->bestedge ||
        !st->nbest || !st->bestlist || !st->unused || !st->allow || !st->queue || !st->queued ||
        !st->leaves || !st->stack || !st->bestto || !st->rot || !st->work) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    *state = st;
    st = NULL;
out:
    match_destroy(st);
    return e;
}

/* ------------------------------------------------------------ endpoints */

static inline int32_t ep_code(const match *st, int a, int b) { return a << st->shift | b; }
static inline int ep_vertex(const match *st, int32_t p) { return p & st->mask; }
static inline int ep_far(const match *st, int32_t p) { return p >> st->shift; }
static inline int32_t ep_flip(const match *st, int32_t p)
{
    return (p & st->mask) << st->shift | p >> st->shift;
}
static inline int64_t slack(const match *st, int32_t p)
{
    const int a = ep_far(st, p), b = ep_vertex(st, p);
    return st->dual[a] + st->dual[b] - 2 * st->w[(size_t)a * st->n + b];
}
static inline void set_allow(match *st, int32_t p)
{
    const int a = ep_far(st, p), b = ep_vertex(st, p);
    st->allow[(size_t)a * st->n + b] = st->allow[(size_t)b * st->n + a] = 1;
}
static inline int32_t *kids(match *st, int b) { return st->childs + (size_t)(b - st->n) * st->n; }
static inline int32_t *eps(match *st, int b) { return st->endps + (size_t)(b - st->n) * st->n; }
/* index j of a cyclic list of length len, j possibly negative (as Python's list[j]) */
static inline int cyc(int j, int len) { return ((j % len) + len) % len; }

static void push(match *st, int v)
{
    if (!st->queued[v]) {
        st->queued[v] = 1;
        st->queue[st->nqueue++] = v;
    }
}

/* The vertices of blossom b, depth first in child order, into out; returns their number. */
static int leaves(match *st, int b, int32_t *out)
{
    int cnt = 0, top = 0;
    st->stack[top++] = b;
    while (top > 0) {
        const int x = st->stack[--top];
        if (x < st->n) {
            out[cnt++] = x;
            continue;
        }
        const int32_t *c = kids(st, x);
        for (int t = st->nchild[x] - 1; t >= 0; t--)
            st->stack[top++] = c[t];
    }
    return cnt;
}

/* ------------------------------------------------------------- the stages */

/* Label the top blossom of w with t (1 = S, 2 = T) reached through endpoint p; a T-blossom's base
 * mate becomes S. */
static void assign_label(match *st, int w, int t, int32_t p)
{
    const int b = st->inblossom[w];
    st->label[w] = st->label[b] = (int8_t)t;
    st->labelend[w] = st->labelend[b] = p;
    st->bestedge[w] = st->bestedge[b] = -1;
    if (t == 1) {
        const int cnt = leaves(st, b, st->leaves);
        for (int k = 0; k < cnt; k++)
            push(st, st->leaves[k]);
    } else {
        const int32_t mb = st->mate[st->base[b]];
        assign_label(st, ep_vertex(st, mb), 1, ep_flip(st, mb));
    }
}

/* Trace back from S-vertices v and w to their roots; the base of the first common blossom, or -1
 * when the roots differ (an augmenting path). */
static int scan_blossom(match *st, int v, int w)
{
    int path = 0, base = -1;
    while (v != -1 || w != -1) {
        int b = st->inblossom[v];
        if (st->label[b] & 4) {
            base = st->base[b];
            break;
        }
        st->leaves[path++] = b; /* leaves[] doubles as the path buffer here */
        st->label[b] = 5;
        if (st->labelend[b] == -1)
            v = -1;
        else {
            v = ep_vertex(st, st->labelend[b]);
            b = st->inblossom[v];
            v = ep_vertex(st, st->labelend[b]);
        }
        if (w != -1) {
            const int t = v;
            v = w;
            w = t;
        }
    }
    for (int k = 0; k < path; k++)
        st->label[st->leaves[k]] = 1;
    return base;
}

/* Shrink the odd cycle closed by edge k (from v to w) with the given base into an S-blossom. */
static void add_blossom(match *st, int base, int32_t k)
{
    const int n = st->n;
    int v = ep_far(st, k), w = ep_vertex(st, k);
    const int bb = st->inblossom[base];
    int bv = st->inblossom[v], bw = st->inblossom[w];
    const int b = st->unused[--st->nunused];
    int32_t *path = kids(st, b), *ends = eps(st, b);
    int len = 0;
    st->base[b] = base;
    st->parent[b] = -1;
    st->parent[bb] = b;
    while (bv != bb) { /* from v back to the base, reversed below */
        st->parent[bv] = b;
        path[len] = bv;
        ends[len++] = st->labelend[bv];
        v = ep_vertex(st, st->labelend[bv]);
        bv = st->inblossom[v];
    }
    path[len] = bb;
    for (int s = 0, t = len; s < t; s++, t--) {
        const int32_t x = path[s];
        path[s] = path[t];
        path[t] = x;
    }
    for (int s = 0, t = len - 1; s < t; s++, t--) {
        const int32_t x = ends[s];
        ends[s] = ends[t];
        ends[t] = x;
    }
    ends[len++] = ep_flip(st, k); /* the end at v */
    while (bw != bb) {
        st->parent[bw] = b;
        path[len] = bw;
        ends[len++] = ep_flip(st, st->labelend[bw]);
        w = ep_vertex(st, st->labelend[bw]);
        bw = st->inblossom[w];
    }
    st->nchild[b] = len;
    st->label[b] = 1;
    st->labelend[b] = st->labelend[bb];
    st->dual[b] = 0;
    const int cnt = leaves(st, b, st->leaves);
    for (int t = 0; t < cnt; t++) {
        const int x = st->leaves[t];
        if (st->label[st->inblossom[x]] == 2) /* former T-vertices become S: scan them */
            push(st, x);
        st->inblossom[x] = b;
    }
    /* least-slack edge from the new blossom to every other S-blossom */
    for (int t = 0; t < 2 * n; t++)
        st->bestto[t] = -1;
    for (int c = 0; c < len; c++) {
        const int sub = path[c];
        const bool listed = sub >= n && st->nbest[sub - n] >= 0;
        const int nl = listed ? 1 : leaves(st, sub, st->leaves);
        for (int l = 0; l < nl; l++) {
            const int cntk = listed ? st->nbest[sub - n] : n;
            for (int t = 0; t < cntk; t++) {
                int32_t e;
                if (listed)
                    e = st->bestlist[(size_t)(sub - n) * n + t];
                else {
                    if (t == st->leaves[l])
                        continue;
                    e = ep_code(st, st->leaves[l], t);
                }
                int i = ep_far(st, e), j = ep_vertex(st, e);
                if (st->inblossom[j] == b) {
                    const int x = i;
                    i = j;
                    j = x;
                }
                const int bj = st->inblossom[j];
                if (bj != b && st->label[bj] == 1 &&
                    (st->bestto[bj] == -1 || slack(st, e) < slack(st, st->bestto[bj])))
                    st->bestto[bj] = e;
            }
        }
        if (sub >= n)
            st->nbest[sub - n] = -1;
        st->bestedge[sub] = -1;
    }
    int nb = 0;
    int32_t *list = st->bestlist + (size_t)(b - n) * n;
    st->bestedge[b] = -1;
    for (int t = 0; t < 2 * n; t++)
        if (st->bestto[t] != -1) {
            list[nb++] = st->bestto[t];
            if (st->bestedge[b] == -1 || slack(st, st->bestto[t]) < slack(st, st->bestedge[b]))
                st->bestedge[b] = st->bestto[t];
        }
    st->nbest[b - n] = nb;
}

/* Undo blossom b: its children become top-level; mid-stage (T-blossom with dual 0) the children
 * on the even path through it are relabelled so the tree stays alternating. */
static void expand_blossom(match *st, int b, bool endstage)
{
    const int n = st->n;
    const int len = st->nchild[b];
    int32_t *c = kids(st, b), *ends = eps(st, b);
    for (int t = 0; t < len; t++) {
        const int s = c[t];
        st->parent[s] = -1;
        if (s < n)
            st->inblossom[s] = s;
        else if (endstage && st->dual[s] == 0)
            expand_blossom(st, s, endstage);
        else {
            const int cnt = leaves(st, s, st->leaves);
            for (int k = 0; k < cnt; k++)
                st->inblossom[st->leaves[k]] = s;
        }
    }
    if (!endstage && st->label[b] == 2) {
        const int entry = st->inblossom[ep_vertex(st, ep_flip(st, st->labelend[b]))];
        int j = 0, jstep, trick;
        while (c[j] != entry)
            j++;
        if (j & 1) {
            j -= len;
            jstep = 1;
            trick = 0;
        } else {
            jstep = -1;
            trick = 1;
        }
        int32_t p = st->labelend[b];
        while (j != 0) {
            /* relabel the T-sub-blossom, step to the next S-sub-blossom and the T after it */
            const int32_t q = ends[cyc(j - trick, len)];
            const int32_t qe = trick ? ep_flip(st, q) : q;
            st->label[ep_vertex(st, ep_flip(st, p))] = 0;
            st->label[ep_vertex(st, ep_flip(st, qe))] = 0;
            assign_label(st, ep_vertex(st, ep_flip(st, p)), 2, p);
            set_allow(st, q);
            j += jstep;
            const int32_t q2 = ends[cyc(j - trick, len)];
            p = trick ? ep_flip(st, q2) : q2;
            set_allow(st, p);
            j += jstep;
        }
        /* the base T-sub-blossom, without stepping to its mate */
        const int bv = c[cyc(j, len)];
        const int x = ep_vertex(st, ep_flip(st, p));
        st->label[x] = st->label[bv] = 2;
        st->labelend[x] = st->labelend[bv] = p;
        st->bestedge[bv] = -1;
        j += jstep;
        while (c[cyc(j, len)] != entry) {
            const int sub = c[cyc(j, len)];
            if (st->label[sub] == 1) {
                j += jstep;
                continue;
            }
            const int cnt = leaves(st, sub, st->leaves);
            int v = -1;
            for (int k = 0; k < cnt; k++)
                if (st->label[st->leaves[k]] != 0) {
                    v = st->leaves[k];
                    break;
                }
            if (v >= 0) { /* reachable: label the sub-blossom T */
                st->label[v] = 0;
                st->label[ep_vertex(st, st->mate[st->base[sub]])] = 0;
                assign_label(st, v, 2, st->labelend[v]);
            }
            j += jstep;
        }
    }
    st->label[b] = -1;
    st->labelend[b] = -1;
    st->nchild[b] = 0;
    st->base[b] = -1;
    st->nbest[b - n] = -1;
    st->bestedge[b] = -1;
    st->unused[st->nunused++] = b;
}

/* Swap matched and unmatched edges on the even path through blossom b from vertex v to its base;
 * v becomes the base. */
static void augment_blossom(match *st, int b, int v)
{
    const int n = st->n;
    int t = v;
    while (st->parent[t] != b)
        t = st->parent[t];
    if (t >= n)
        augment_blossom(st, t, v);
    const int len = st->nchild[b];
    int32_t *c = kids(st, b), *ends = eps(st, b);
    int i = 0;
    while (c[i] != t)
        i++;
    int j = i, jstep, trick;
    if (i & 1) {
        j -= len;
        jstep = 1;
        trick = 0;
    } else {
        jstep = -1;
        trick = 1;
    }
    while (j != 0) {
        j += jstep;
        t = c[cyc(j, len)];
        const int32_t q = ends[cyc(j - trick, len)];
        const int32_t p = trick ? ep_flip(st, q) : q;
        if (t >= n)
            augment_blossom(st, t, ep_vertex(st, p));
        j += jstep;
        t = c[cyc(j, len)];
        if (t >= n)
            augment_blossom(st, t, ep_vertex(st, ep_flip(st, p)));
        st->mate[ep_vertex(st, p)] = ep_flip(st, p);
        st->mate[ep_vertex(st, ep_flip(st, p))] = p;
    }
    /* rotate so that the new base's child comes first */
    for (int k = 0; k < len; k++)
        st->rot[k] = c[(i + k) % len];
    memcpy(c, st->rot, (size_t)len * sizeof *c);
    for (int k = 0; k < len; k++)
        st->rot[k] = ends[(i + k) % len];
    memcpy(ends, st->rot, (size_t)len * sizeof *ends);
    st->base[b] = st->base[c[0]];
}

/* Augment along the path through edge k (from v to w) between two S-trees. */
static void augment_matching(match *st, int32_t k)
{
    const int n = st->n;
    const int v = ep_far(st, k), w = ep_vertex(st, k);
    int s_list[2] = { v, w };
    int32_t p_list[2] = { k, ep_flip(st, k) };
    for (int side = 0; side < 2; side++) {
        int s = s_list[side];
        int32_t p = p_list[side];
        for (;;) {
            const int bs = st->inblossom[s];
            if (bs >= n)
                augment_blossom(st, bs, s);
            st->mate[s] = p;
            if (st->labelend[bs] == -1)
                break;
            const int tv = ep_vertex(st, st->labelend[bs]);
            const int bt = st->inblossom[tv];
            s = ep_vertex(st, st->labelend[bt]);
            const int j = ep_vertex(st, ep_flip(st, st->labelend[bt]));
            if (bt >= n)
                augment_blossom(st, bt, j);
            st->mate[j] = st->labelend[bt];
            p = ep_flip(st, st->labelend[bt]);
        }
    }
}

typedef enum stage_end { STAGE_OPTIMAL, STAGE_AUGMENTED, STAGE_STOPPED } stage_end;

/* One stage: grow trees from the single vertices until an augmentation (STAGE_AUGMENTED) or until
 * the duals of the single vertices reach 0 (STAGE_OPTIMAL: the matching is maximum-weight), or
 * until the time limit passes (STAGE_STOPPED: the matching is valid, the stage unfinished). */
static stage_end stage(match *st)
{
    const int n = st->n;
    if (n <= 0) /* never: tells the compiler the sizes below are small */
        return STAGE_OPTIMAL;
    int scans = 0;
    memset(st->label, 0, 2 * (size_t)n);
    for (int t = 0; t < 2 * n; t++)
        st->bestedge[t] = -1;
    for (int t = 0; t < n; t++)
        st->nbest[t] = -1;
    memset(st->allow, 0, (size_t)n * (size_t)n);
    memset(st->queued, 0, (size_t)n);
    st->nqueue = 0;
    for (int v = 0; v < n; v++)
        if (st->mate[v] == -1 && st->label[st->inblossom[v]] == 0)
            assign_label(st, v, 1, -1);
    for (;;) {
        while (st->nqueue > 0) {
            if (++scans % MATCH_CHECK_SCANS == 0 && nmp_clock_expired(&st->clock))
                return STAGE_STOPPED;
            const int v = st->queue[--st->nqueue];
            st->queued[v] = 0;
            const int64_t *wv = st->w + (size_t)v * n;
            uint8_t *av = st->allow + (size_t)v * n;
            for (int w = 0; w < n; w++) {
                if (w == v || st->inblossom[v] == st->inblossom[w])
                    continue;
                const int32_t p = ep_code(st, v, w); /* the end at w */
                int64_t ks = 0;
                if (!av[w]) {
                    ks = st->dual[v] + st->dual[w] - 2 * wv[w];
                    if (ks <= 0)
                        set_allow(st, p);
                }
                const int bw = st->inblossom[w];
                if (av[w]) {
                    if (st->label[bw] == 0)
                        assign_label(st, w, 2, ep_flip(st, p));
                    else if (st->label[bw] == 1) {
                        const int base = scan_blossom(st, v, w);
                        if (base >= 0)
                            add_blossom(st, base, p);
                        else {
                            augment_matching(st, p);
                            return STAGE_AUGMENTED;
                        }
                    } else if (st->label[w] == 0) { /* w inside a T-blossom */
                        st->label[w] = 2;
                        st->labelend[w] = ep_flip(st, p);
                    }
                } else if (st->label[bw] == 1) {
                    const int b = st->inblossom[v];
                    if (st->bestedge[b] == -1 || ks < slack(st, st->bestedge[b]))
                        st->bestedge[b] = p;
                } else if (st->label[w] == 0) {
                    if (st->bestedge[w] == -1 || ks < slack(st, st->bestedge[w]))
                        st->bestedge[w] = p;
                }
            }
        }
        /* the largest dual step that keeps every slack >= 0 and every blossom dual >= 0 */
        int type = 1, eblossom = -1;
        int32_t edge = -1;
        int64_t delta = st->dual[0];
        for (int v = 1; v < n; v++)
            delta = NMP_MIN(delta, st->dual[v]);
        for (int v = 0; v < n; v++)
            if (st->label[st->inblossom[v]] == 0 && st->bestedge[v] != -1) {
                const int64_t d = slack(st, st->bestedge[v]);
                if (d < delta) {
                    delta = d;
                    type = 2;
                    edge = st->bestedge[v];
                }
            }
        for (int b = 0; b < 2 * n; b++)
            if (st->parent[b] == -1 && st->label[b] == 1 && st->bestedge[b] != -1) {
                const int64_t d = slack(st, st->bestedge[b]) / 2; /* even: integer duals */
                if (d < delta) {
                    delta = d;
                    type = 3;
                    edge = st->bestedge[b];
                }
            }
        for (int b = n; b < 2 * n; b++)
            if (st->base[b] >= 0 && st->parent[b] == -1 && st->label[b] == 2 &&
                st->dual[b] < delta) {
                delta = st->dual[b];
                type = 4;
                eblossom = b;
            }
        for (int v = 0; v < n; v++) {
            const int l = st->label[st->inblossom[v]];
            if (l == 1)
                st->dual[v] -= delta;
            else if (l == 2)
                st->dual[v] += delta;
        }
        for (int b = n; b < 2 * n; b++)
            if (st->base[b] >= 0 && st->parent[b] == -1) {
                if (st->label[b] == 1)
                    st->dual[b] += delta;
                else if (st->label[b] == 2)
                    st->dual[b] -= delta;
            }
        if (type == 1)
            return STAGE_OPTIMAL;
        if (nmp_clock_expired(&st->clock)) /* after an O(cols) dual update */
            return STAGE_STOPPED;
        if (type == 2) {
            set_allow(st, edge);
            int i = ep_far(st, edge);
            if (st->label[st->inblossom[i]] == 0)
                i = ep_vertex(st, edge);
            push(st, i);
        } else if (type == 3) {
            set_allow(st, edge);
            push(st, ep_far(st, edge));
        } else
            expand_blossom(st, eblossom, false);
    }
}

/* ------------------------------------------------------------------ solve */

/* w(a, b) = sum_j max(s(j, a), s(j, b)), scaled to integers <= 2^48, and *wmax = the largest;
 * false if the clock stopped it. Rows of the matrix are independent: OpenMP splits them. */
static bool weights(match *st, int64_t *wmax)
{
    const nmp_problem *pb = st->pb;
    const int n = st->n;
    const int64_t rows = pb->rows;
    int64_t *w = st->w; /* doubles first (copied bitwise, no aliasing), then scaled in place */
    for (int a = 0; a < n; a++) {
        const float *ca = nmp_col(pb, a);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(st->threads) if (rows * (n - a) > (1 << 16))
#endif
        for (int b = a + 1; b < n; b++) {
            const float *cb = nmp_col(pb, b);
            double total = 0;
            for (int64_t j = 0; j < rows; j++)
                total += (double)NMP_MAX(ca[j], cb[j]);
            memcpy(&w[(size_t)a * n + b], &total, sizeof total);
        }
        if (nmp_clock_tick(&st->clock, 0, pb->identity, pb->row_bound, "weights", false))
            return false;
    }
    double top = 0, x;
    for (int a = 0; a < n; a++) {
        for (int b = a + 1; b < n; b++) {
            memcpy(&x, &w[(size_t)a * n + b], sizeof x);
            top = NMP_MAX(top, x);
        }
        if (a % 64 == 63 && nmp_clock_expired(&st->clock))
            return false;
    }
    const double scale = top > 0 ? MATCH_WMAX / top : 1.0;
    int64_t most = 0;
    for (int a = 0; a < n; a++) {
        w[(size_t)a * n + a] = 0;
        for (int b = a + 1; b < n; b++) {
            memcpy(&x, &w[(size_t)a * n + b], sizeof x);
            const int64_t v = llround(x * scale);
            w[(size_t)a * n + b] = w[(size_t)b * n + a] = v;
            most = NMP_MAX(most, v);
        }
        if (a % 64 == 63 && nmp_clock_expired(&st->clock))
            return false;
    }
    *wmax = most;
    return true;
}

static nmp_err match_solve(void *p, int32_t *perm, nmp_result *res)
{
    match *st = p;
    const nmp_problem *pb = st->pb;
    const int n = st->n;
    res->status = NMP_STATUS_OPTIMAL;
    int64_t wmax = 0;
    bool done = weights(st, &wmax);
    for (int v = 0; v < n; v++) {
        st->mate[v] = -1;
        st->inblossom[v] = v;
        st->dual[v] = wmax;
        st->base[v] = v;
    }
    for (int b = 0; b < 2 * n; b++) {
        st->parent[b] = -1;
        st->nchild[b] = 0;
        st->label[b] = 0;
        st->labelend[b] = -1;
        if (b >= n) {
            st->base[b] = -1;
            st->dual[b] = 0;
        }
    }
    st->nunused = 0;
    for (int b = 2 * n - 1; b >= n; b--)
        st->unused[st->nunused++] = b;
    int64_t stages = 0;
    while (done) {
        if (nmp_clock_tick(&st->clock, stages, pb->identity, pb->row_bound, "blossom", false)) {
            done = false;
            break;
        }
        stages++;
        const stage_end end = stage(st);
        if (end == STAGE_STOPPED)
            done = false;
        if (end != STAGE_AUGMENTED)
            break;
        /* blossoms whose dual reached 0 dissolve at the end of a stage */
        for (int b = n; b < 2 * n; b++)
            if (st->parent[b] == -1 && st->base[b] >= 0 && st->label[b] == 1 && st->dual[b] == 0)
                expand_blossom(st, b, true);
    }
    if (!done)
        res->status = nmp_clock_status(&st->clock);
    /* pairs in order of their lower column; single columns (ties at 0 or a stopped run) pair up */
    int k = 0, single = -1;
    for (int v = 0; v < n; v++) {
        const int u = st->mate[v] >= 0 ? ep_vertex(st, st->mate[v]) : -1;
        if (u > v) {
            st->work[k++] = v;
            st->work[k++] = u;
        } else if (u < 0) {
            if (single < 0)
                single = v;
            else {
                st->work[k++] = single;
                st->work[k++] = v;
                single = -1;
            }
        }
    }
    if (k != n || single >= 0)
        return NMP_ERR_INTERNAL;
    res->iterations = stages;
    double kept = 0, start = 0;
    for (int g = 0; g < n / 2; g++) {
        kept += nmp_score_group_value(pb, st->work + 2 * g);
        start += nmp_score_group_value(pb, perm + 2 * g);
    }
    if (kept >= start)
        memcpy(perm, st->work, (size_t)n * sizeof *perm);
    return NMP_OK;
}

const nmp_solver_ops nmp_match_ops = {
    "match", "exact 1:2 by maximum-weight perfect matching (Edmonds' blossom algorithm, O(cols^3))",
    match_params, match_create, match_solve, match_destroy, 0,
};

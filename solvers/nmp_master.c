/* nmp_master.c: the restricted set-partitioning master (GLPK) and its column generation engine
 *
 * Master: max sum_q D(q) x_q  s.t.  sum_{q ∋ i} x_q = 1 for every column i,  x >= 0, over a pool
 * of m-subsets q, plus one artificial column per row (value -bigM) so that the master stays
 * feasible under any branching rules. Adding columns only relaxes a problem, so the master's value
 * with artificials is still an upper bound for its node. Dual y_i (free); rc(q) = D(q) - y(q).
 *
 * Bound. Every partition has cols/m = G groups, so for any y (Lagrangian relaxation of the
 * partition rows, keeping sum_q x_q = G)
 *     L(y) = sum_i y_i + G * max_q rc_y(q)
 * bounds the node's optimum from above. The pricing (nmp_price.c) returns the exact max, so every
 * complete exact round certifies a bound, also when the time limit stops the generation early.
 * With the heuristic pricing (hprice) a round may instead bring columns from the heuristic
 * (rc_max = +inf): no bound; when those columns are all in the pool already the next round is
 * priced exactly, so the generation still ends only on an exact round that finds nothing.
 *
 * Stabilisation (Wentges): the pricing runs at y~ = a * c + (1 - a) * y, c the duals with the best
 * bound so far. Columns priced out at y~ enter the master when their rc at y is positive too; when
 * none does (a "mis-price"), a steps towards 0 (a <- a - (1 - a0)) and the round is repeated. The
 * generation ends when the best bound meets the master's value, or when pricing at y itself
 * finds nothing: then no column prices out and L(y) <= LP value + G * eps.
 *
 * GLPK: one problem for the whole run; branching rules fix disallowed pool columns at 0, so a
 * node re-optimises from the previous basis (dual simplex after bound changes, primal after new
 * columns). The simplex method runs in slices of 0.3 s, the MIP with a callback (nmp_glpk.c), so
 * that the clock and the progress callback are served in between. Every GLPK call runs inside
 * the caller's nmp_glpk_run, so nothing allocated here may live only on the stack across one:
 * scratch that a GLPK call can interrupt belongs to the master.
 *
 * Lists (branch-and-price's reduced-cost enumeration, nmp_lists.c): a node whose subtree holds a
 * complete list restricts the pool to it and prices by scanning it instead of nmp_price. */
#include "nmp_glpk.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#define CG_SLICE 2000 /* simplex iterations between clock checks (never seconds: determinism) */

struct nmp_master {
    const nmp_problem *pb;
    int cols, m;
    int64_t groups;
    glp_prob *lp;
    glp_smcp smcp;
    int verbose;
    double scale, eps, bigm, alpha;
    nmp_price *pr;
    int64_t kmax;
    bool need_dual;          /* bounds changed since the last simplex */
    bool have_center;        /* center holds a stability center (kept across nodes) */
    bool node_bound;         /* center_sum/center_max certify the current node's bound */
    double center_sum, center_max; /* sum_i center_i and max rc at the center */
    bool heur_only;          /* price by the heuristic alone (dives): no round certifies */
    bool kept_bound;         /* kept_* hold a node's certificate (nmp_master_keep_bound) */
    double *kept_center, kept_sum, kept_max;
    int64_t enum_max;        /* most columns of a reduced-cost enumeration */
    nmp_lists *lists;        /* enumerated lists (NULL when enum_max is 0) */
    double incumbent;        /* list columns it rules out by reduced cost are dropped */
    int cur_list;            /* -1: the B&B prices; else a scan of list cur_list */
    uint8_t *inlist;         /* pool: in cur_list */
    /* pool */
    int64_t npool, cap;
    int64_t purge_at;        /* pool size that triggers a purge of idle columns */
    int32_t *uid;            /* cap: the permanent id of each pool column (order of entry) */
    int64_t *where;          /* by id: the column's pool index, -1 once purged */
    int32_t *pins;           /* by id: snapshots that name the column (purges keep it) */
    int64_t nuid, uid_cap;
    int32_t *mem;            /* cap * m members, ascending */
    double *val;             /* D(q) */
    double *x;               /* last LP primal */
    uint8_t *allowed;        /* under the current rules */
    int64_t *hash;           /* open addressing: pool index + 1, 0 = empty */
    int64_t hcap;
    /* rules */
    int nrules, rcap;
    int32_t *ra, *rb;
    uint8_t *rt;
    int32_t *radj0, *radj;   /* cols + 1 offsets, 2 * rcap rule ids: the rules of each column */
    /* scratch */
    double *y, *ysm, *center;
    int32_t *fcols;
    double *fval, *frc;
    int *num;                /* cap + 1: GLPK column numbers (purge) */
    double *start, *xv;      /* cap + cols + 1 and cap: a MIP's start and solution */
    int32_t *frac;           /* fractional pool columns */
    uint8_t *inq;            /* cols: membership */
};

/* ------------------------------------------------------------------ pool */

static uint64_t col_hash(const int32_t *c, int m)
{
    uint64_t h = 1469598103934665603ull;
    for (int t = 0; t < m; t++) {
        h ^= (uint64_t)(uint32_t)c[t];
        h *= 1099511628211ull;
        h ^= h >> 29;
    }
    return h;
}

static int64_t pool_find(const nmp_master *cg, const int32_t *c)
{
    const uint64_t mask = (uint64_t)cg->hcap - 1;
    for (uint64_t s = col_hash(c, cg->m) & mask;; s = (s + 1) & mask) {
        const int64_t q = cg->hash[s] - 1;
        if (q < 0)
            return -1;
        if (memcmp(cg->mem + q * cg->m, c, (size_t)cg->m * sizeof *c) == 0)
            return q;
    }
}

static void hash_insert(nmp_master *cg, int64_t q)
{
    const uint64_t mask = (uint64_t)cg->hcap - 1;
    uint64_t s = col_hash(cg->mem + q * cg->m, cg->m) & mask;
    while (cg->hash[s])
        s = (s + 1) & mask;
    cg->hash[s] = q + 1;
}

static nmp_err pool_reserve(nmp_master *cg, int64_t need)
{
    if (need > cg->cap) {
        const size_t cap = (size_t)NMP_MAX(need, 2 * cg->cap);
        bool ok = true;
        cg->mem = nmp_grow(cg->mem, cap * (size_t)cg->m * sizeof *cg->mem, &ok);
        cg->val = nmp_grow(cg->val, cap * sizeof *cg->val, &ok);
        cg->x = nmp_grow(cg->x, cap * sizeof *cg->x, &ok);
        cg->allowed = nmp_grow(cg->allowed, cap * sizeof *cg->allowed, &ok);
        cg->inlist = nmp_grow(cg->inlist, cap * sizeof *cg->inlist, &ok);
        cg->num = nmp_grow(cg->num, (cap + 1) * sizeof *cg->num, &ok);
        cg->start = nmp_grow(cg->start, (cap + (size_t)cg->cols + 1) * sizeof *cg->start, &ok);
        cg->xv = nmp_grow(cg->xv, cap * sizeof *cg->xv, &ok);
        cg->uid = nmp_grow(cg->uid, cap * sizeof *cg->uid, &ok);
        if (!ok)
            return NMP_ERR_NOMEM;
        cg->cap = (int64_t)cap;
    }
    if (2 * need > cg->hcap) {
        int64_t hcap = NMP_MAX(cg->hcap, 1024);
        while (hcap < 2 * need)
            hcap *= 2;
        int64_t *hash = nmp_calloc((size_t)hcap, sizeof *hash);
        if (!hash)
            return NMP_ERR_NOMEM;
        nmp_free(cg->hash);
        cg->hash = hash;
        cg->hcap = hcap;
        for (int64_t q = 0; q < cg->npool; q++)
            hash_insert(cg, q);
    }
    return NMP_OK;
}

/* Does column c (ascending members) obey the current rules? */
static bool obeys(const nmp_master *cg, const int32_t *c)
{
    const int m = cg->m;
    if (!cg->nrules)
        return true;
    /* only the rules that touch a member can fail, seen from that member */
    for (int t = 0; t < m; t++)
        for (int32_t k = cg->radj0[c[t]]; k < cg->radj0[c[t] + 1]; k++) {
            const int r = cg->radj[k];
            const int32_t other = cg->ra[r] == c[t] ? cg->rb[r] : cg->ra[r];
            bool has = false;
            for (int u = 0; u < m; u++)
                has = has || c[u] == other;
            if (has != (cg->rt[r] != 0))
                return false;
        }
    return true;
}

static bool obeys_rules(const void *cg, const int32_t *c)
{
    return obeys(cg, c);
}

/* Adds column c (ascending, value v) unless present, at 0 unless `allow`; *added tells which. */
static nmp_err pool_add(nmp_master *cg, const int32_t *c, double v, bool allow, bool *added)
{
    nmp_err e = NMP_OK;
    *added = false;
    if (pool_find(cg, c) >= 0)
        return NMP_OK;
    NMP_TRY(e, pool_reserve(cg, cg->npool + 1));
    if (cg->nuid == cg->uid_cap) {
        const int64_t cap = NMP_MAX(1024, 2 * cg->uid_cap);
        bool ok = true;
        cg->where = nmp_grow(cg->where, (size_t)cap * sizeof *cg->where, &ok);
        cg->pins = nmp_grow(cg->pins, (size_t)cap * sizeof *cg->pins, &ok);
        if (!ok)
            return NMP_ERR_NOMEM;
        cg->uid_cap = cap;
    }
    const int64_t q = cg->npool++;
    cg->uid[q] = cg->nuid < INT32_MAX ? (int32_t)cg->nuid : -1; /* -1: never in a snapshot */
    cg->pins[cg->nuid] = 0;
    cg->where[cg->nuid++] = q;
    memcpy(cg->mem + q * cg->m, c, (size_t)cg->m * sizeof *c);
    cg->val[q] = v;
    cg->x[q] = 0;
    cg->inlist[q] = cg->cur_list >= 0 && allow;
    cg->allowed[q] = allow;
    hash_insert(cg, q);
    nmp_glpk_subset_col(cg->lp, glp_add_cols(cg->lp, 1), c, cg->m, v, !allow);
    *added = true;
out:
    return e;
}

/* c[0..m-1] ascending (insertion sort: m <= NMP_MAX_M) */
static void sort_members(int32_t *c, int m)
{
    for (int t = 1; t < m; t++) {
        const int32_t v = c[t];
        int q = t;
        while (q > 0 && c[q - 1] > v) {
            c[q] = c[q - 1];
            q--;
        }
        c[q] = v;
    }
}

static int lp_col(const nmp_master *cg, int64_t q)
{
    return (int)(cg->cols + q + 1);
}

/* ------------------------------------------------------------- lifecycle */

void nmp_master_forget_lp(nmp_master *cg)
{
    if (cg)
        cg->lp = NULL;
}

void nmp_master_free(nmp_master *cg)
{
    if (!cg)
        return;
    if (cg->lp)
        glp_delete_prob(cg->lp);
    nmp_price_free(cg->pr);
    nmp_free(cg->num);
    nmp_free(cg->start);
    nmp_free(cg->xv);
    nmp_free(cg->uid);
    nmp_free(cg->where);
    nmp_free(cg->pins);
    nmp_free(cg->mem);
    nmp_free(cg->val);
    nmp_free(cg->x);
    nmp_free(cg->allowed);
    nmp_free(cg->hash);
    nmp_free(cg->ra);
    nmp_free(cg->rb);
    nmp_free(cg->rt);
    nmp_free(cg->radj0);
    nmp_free(cg->radj);
    nmp_free(cg->y);
    nmp_free(cg->ysm);
    nmp_free(cg->center);
    nmp_free(cg->kept_center);
    nmp_free(cg->fcols);
    nmp_free(cg->fval);
    nmp_free(cg->frc);
    nmp_free(cg->frac);
    nmp_free(cg->inq);
    nmp_lists_free(cg->lists);
    nmp_free(cg->inlist);
    nmp_free(cg);
}

nmp_err nmp_master_create(const nmp_problem *pb, const nmp_master_opts *o, nmp_master **out,
                          nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    *out = NULL;
    if (pb->cols > INT_MAX / 4)
        return nmp_fail(msg, NMP_ERR_UNSUPPORTED, "colgen: %lld columns is beyond GLPK's indices",
                        (long long)pb->cols);
    nmp_master *cg = nmp_calloc(1, sizeof *cg);
    if (!cg)
        return NMP_ERR_NOMEM;
    cg->pb = pb;
    cg->cols = (int)pb->cols;
    cg->m = pb->m;
    cg->groups = pb->groups;
    cg->verbose = o->verbose;
    cg->alpha = o->smoothing;
    cg->kmax = o->kmax > 0 ? o->kmax : 2 * (int64_t)pb->cols;
    cg->scale = NMP_MAX(pb->row_bound / (double)pb->groups, 1e-300);
    cg->eps = 1e-10 * cg->scale; /* G * eps = 1e-10 * row bound: below the 1e-9 of a proof */
    cg->bigm = pb->row_bound + 1.0;
    const size_t C = (size_t)cg->cols;
    cg->y = nmp_malloc(C * sizeof *cg->y);
    cg->ysm = nmp_malloc(C * sizeof *cg->ysm);
    cg->center = nmp_malloc(C * sizeof *cg->center);
    cg->kept_center = nmp_malloc(C * sizeof *cg->kept_center);
    cg->fcols = nmp_malloc((size_t)cg->kmax * (size_t)cg->m * sizeof *cg->fcols);
    cg->fval = nmp_malloc((size_t)cg->kmax * sizeof *cg->fval);
    cg->frc = nmp_malloc((size_t)cg->kmax * sizeof *cg->frc);
    cg->frac = nmp_malloc(C * sizeof *cg->frac);
    cg->inq = nmp_calloc(C, sizeof *cg->inq);
    cg->radj0 = nmp_calloc(C + 1, sizeof *cg->radj0);
    if (!cg->y || !cg->ysm || !cg->center || !cg->kept_center || !cg->fcols || !cg->fval ||
        !cg->frc || !cg->frac || !cg->inq || !cg->radj0) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    cg->cur_list = -1;
    cg->purge_at = NMP_MAX(20 * (int64_t)pb->cols, 4096);
    cg->incumbent = -INFINITY;
    cg->enum_max = o->enum_max;
    if (cg->enum_max > 0)
        NMP_TRY(e, nmp_lists_create(cg->m, cg->enum_max, cg->kmax, &cg->lists));
    NMP_TRY(e, nmp_price_create(pb, o->threads, NMP_MAX(cg->kmax, cg->enum_max + 1), &cg->pr));
    NMP_TRY(e, nmp_price_set_backend(cg->pr, o->be));
    NMP_TRY(e, nmp_price_set_heuristic(cg->pr, o->hprice));
    NMP_TRY(e, pool_reserve(cg, 4 * (int64_t)C));
    cg->lp = glp_create_prob();
    glp_set_obj_dir(cg->lp, GLP_MAX);
    nmp_glpk_partition_rows(cg->lp, cg->cols);
    glp_add_cols(cg->lp, cg->cols);
    for (int i = 1; i <= cg->cols; i++) { /* artificial column i: row i alone, worth -bigM */
        int ind[2] = { 0, i };
        double v[2] = { 0, 1.0 };
        glp_set_mat_col(cg->lp, i, 1, ind, v);
        glp_set_obj_coef(cg->lp, i, -cg->bigm);
        glp_set_col_bnds(cg->lp, i, GLP_LO, 0, 0);
    }
    glp_init_smcp(&cg->smcp);
    cg->smcp.msg_lev = cg->verbose ? GLP_MSG_ON : GLP_MSG_OFF;
    cg->smcp.presolve = GLP_OFF;
    cg->smcp.tol_dj = 1e-9; /* rc of pool columns near 0: fewer re-priced duplicates */
    cg->need_dual = true;
    *out = cg;
    cg = NULL;
out:
    nmp_master_free(cg);
    return e;
}

nmp_err nmp_master_add_groups(nmp_master *cg, const int32_t *perm)
{
    nmp_err e = NMP_OK;
    const int m = cg->m;
    for (int64_t g = 0; g < cg->groups; g++) {
        int32_t c[NMP_MAX_M];
        memcpy(c, perm + g * m, (size_t)m * sizeof *c);
        sort_members(c, m);
        bool added;
        if (pool_find(cg, c) >= 0) /* known: its value is not computed again */
            continue;
        NMP_TRY(e, pool_add(cg, c, nmp_score_group_value(cg->pb, c),
                            cg->cur_list < 0 && obeys(cg, c), &added));
    }
out:
    return e;
}

/* Drops the nonbasic pool columns that the current rules fix at 0 (the pool is a cache: the
 * pricing or a list scan brings back what a node needs). Every dual simplex iteration scans all
 * columns, fixed ones too, so a pool that only grows makes each node slower. Amortised: the next
 * purge waits until the pool has doubled. */
static void pool_purge(nmp_master *cg)
{
    const int m = cg->m;
    int *num = cg->num;
    int ndel = 0;
    int64_t keep = 0;
    for (int64_t q = 0; q < cg->npool; q++) {
        const bool pinned = cg->uid[q] >= 0 && cg->pins[cg->uid[q]] > 0;
        if (!cg->allowed[q] && !pinned && glp_get_col_stat(cg->lp, lp_col(cg, q)) != GLP_BS) {
            num[++ndel] = lp_col(cg, q);
            if (cg->uid[q] >= 0)
                cg->where[cg->uid[q]] = -1;
            continue;
        }
        if (keep != q) { /* compact in the same order as GLPK renumbers */
            memmove(cg->mem + keep * m, cg->mem + q * m, (size_t)m * sizeof *cg->mem);
            cg->val[keep] = cg->val[q];
            cg->x[keep] = cg->x[q];
            cg->allowed[keep] = cg->allowed[q];
            cg->inlist[keep] = cg->inlist[q];
            cg->uid[keep] = cg->uid[q];
        }
        if (cg->uid[keep] >= 0)
            cg->where[cg->uid[keep]] = keep;
        keep++;
    }
    if (ndel > 0) {
        glp_del_cols(cg->lp, ndel, num);
        cg->npool = keep;
        memset(cg->hash, 0, (size_t)cg->hcap * sizeof *cg->hash);
        for (int64_t q = 0; q < cg->npool; q++)
            hash_insert(cg, q);
    }
    cg->purge_at = NMP_MAX(cg->purge_at, 2 * cg->npool);
}

nmp_err nmp_master_set_rules(nmp_master *cg, int count, const int32_t *a, const int32_t *b,
                             const uint8_t *together, int list)
{
    nmp_err e = NMP_OK;
    if (count > cg->rcap) {
        const int cap = NMP_MAX(count, 2 * cg->rcap);
        bool ok = true;
        cg->ra = nmp_grow(cg->ra, (size_t)cap * sizeof *cg->ra, &ok);
        cg->rb = nmp_grow(cg->rb, (size_t)cap * sizeof *cg->rb, &ok);
        cg->rt = nmp_grow(cg->rt, (size_t)cap * sizeof *cg->rt, &ok);
        cg->radj = nmp_grow(cg->radj, 2 * (size_t)cap * sizeof *cg->radj, &ok);
        if (!ok)
            return NMP_ERR_NOMEM;
        cg->rcap = cap;
    }
    NMP_TRY(e, nmp_price_set_rules(cg->pr, count, a, b, together));
    cg->nrules = count;
    if (count) {
        memcpy(cg->ra, a, (size_t)count * sizeof *a);
        memcpy(cg->rb, b, (size_t)count * sizeof *b);
        memcpy(cg->rt, together, (size_t)count * sizeof *together);
    }
    memset(cg->radj0, 0, (size_t)(cg->cols + 1) * sizeof *cg->radj0);
    for (int r = 0; r < count; r++) {
        cg->radj0[a[r] + 1]++;
        cg->radj0[b[r] + 1]++;
    }
    for (int i = 0; i < cg->cols; i++)
        cg->radj0[i + 1] += cg->radj0[i];
    for (int r = 0; r < count; r++) { /* fill backwards from the ends */
        cg->radj[--cg->radj0[a[r] + 1]] = r;
        cg->radj[--cg->radj0[b[r] + 1]] = r;
    }
    for (int i = 0; i < cg->cols; i++) /* radj0[i + 1] now holds the start of i: shift */
        cg->radj0[i] = cg->radj0[i + 1];
    cg->radj0[cg->cols] = 2 * count;
    if (list < -1 || list >= nmp_lists_count(cg->lists))
        return NMP_ERR_ARG;
    if (list != cg->cur_list) {
        memset(cg->inlist, 0, (size_t)cg->npool);
        for (int64_t k = 0; list >= 0 && k < nmp_lists_size(cg->lists, list); k++) {
            const int64_t q = pool_find(cg, nmp_lists_column(cg->lists, list, k));
            if (q >= 0)
                cg->inlist[q] = 1;
        }
        cg->cur_list = list;
    }
    if (list >= 0) /* reduced-cost fixing with the incumbent, then the rules */
        nmp_lists_select(cg->lists, list, cg->incumbent, obeys_rules, cg);
    for (int64_t q = 0; q < cg->npool; q++) {
        const uint8_t ok = (list < 0 || cg->inlist[q]) && obeys(cg, cg->mem + q * cg->m);
        if (ok == cg->allowed[q])
            continue;
        cg->allowed[q] = ok;
        if (ok)
            glp_set_col_bnds(cg->lp, lp_col(cg, q), GLP_LO, 0, 0);
        else
            glp_set_col_bnds(cg->lp, lp_col(cg, q), GLP_FX, 0, 0);
        cg->need_dual = true;
    }
    if (cg->npool > cg->purge_at)
        pool_purge(cg);
out:
    return e;
}

/* y_i = the saliency column i keeps in its group of perm: sum_i y_i = score(perm), and every
 * group of perm prices at 0. A dual guess that makes a good first stability center. */
void nmp_master_guess_duals(nmp_master *cg, const int32_t *perm)
{
    const nmp_problem *pb = cg->pb;
    const int m = cg->m, n = pb->n;
    for (int i = 0; i < cg->cols; i++)
        cg->center[i] = 0;
    for (int64_t g = 0; g < cg->groups; g++) {
        const int32_t *q = perm + g * m;
        for (int64_t j = 0; j < pb->rows; j++) {
            float v[NMP_MAX_M];
            int idx[NMP_MAX_M];
            for (int t = 0; t < m; t++) {
                v[t] = nmp_col(pb, q[t])[j];
                idx[t] = t;
            }
            for (int k = 0; k < n; k++) { /* selection of the n largest, first index on ties */
                int b = k;
                for (int t = k + 1; t < m; t++)
                    if (v[idx[t]] > v[idx[b]])
                        b = t;
                const int x = idx[k];
                idx[k] = idx[b];
                idx[b] = x;
                cg->center[q[idx[k]]] += (double)v[idx[k]];
            }
        }
    }
    cg->have_center = true;
}

void nmp_master_set_incumbent(nmp_master *cg, double value)
{
    cg->incumbent = value;
}

int64_t nmp_master_pool(const nmp_master *cg)
{
    return cg->npool;
}

const int32_t *nmp_master_column(const nmp_master *cg, int64_t q)
{
    return cg->mem + q * cg->m;
}

double nmp_master_x(const nmp_master *cg, int64_t q)
{
    return cg->x[q];
}

/* ------------------------------------------------------ basis snapshots */

/* A snapshot holds cols entries, the basic variables: a row's auxiliary (i, its index), an
 * artificial column (cols + i) or a pool column (2 * cols + its permanent id, which purges do not
 * renumber); -1 where none could be named. Its pool columns are pinned (purges keep them) until
 * it is released. */
static void pin_basis(nmp_master *cg, const int32_t *basis, int32_t delta)
{
    for (int k = 0; k < cg->cols; k++)
        if (basis[k] >= 2 * cg->cols)
            cg->pins[basis[k] - 2 * cg->cols] += delta;
}

void nmp_master_release_basis(nmp_master *cg, const int32_t *basis)
{
    pin_basis(cg, basis, -1);
}

void nmp_master_save_basis(nmp_master *cg, int32_t *basis)
{
    const int C = cg->cols;
    int k = 0;
    for (int i = 1; i <= C && k < C; i++)
        if (glp_get_row_stat(cg->lp, i) == GLP_BS)
            basis[k++] = i - 1;
    for (int i = 1; i <= C && k < C; i++)
        if (glp_get_col_stat(cg->lp, i) == GLP_BS)
            basis[k++] = C + i - 1;
    for (int64_t q = 0; q < cg->npool && k < C; q++)
        if (glp_get_col_stat(cg->lp, lp_col(cg, q)) == GLP_BS)
            basis[k++] = cg->uid[q] >= 0 && cg->uid[q] <= INT32_MAX - 2 * C ? 2 * C + cg->uid[q]
                                                                           : -1;
    for (; k < C; k++)
        basis[k] = -1;
    pin_basis(cg, basis, 1);
}

bool nmp_master_load_basis(nmp_master *cg, const int32_t *basis)
{
    const int C = cg->cols;
    for (int k = 0; k < C; k++) /* every variable still there */
        if (basis[k] < 0 || (basis[k] >= 2 * C && (basis[k] - 2 * C >= cg->nuid ||
                                                   cg->where[basis[k] - 2 * C] < 0)))
            return false;
    for (int i = 1; i <= C; i++) /* partition rows are fixed: nonbasic at their value */
        glp_set_row_stat(cg->lp, i, GLP_NS);
    const int ncol = glp_get_num_cols(cg->lp);
    for (int j = 1; j <= ncol; j++) /* GLPK picks the bound of each column's kind */
        glp_set_col_stat(cg->lp, j, GLP_NL);
    for (int k = 0; k < C; k++) {
        if (basis[k] < C)
            glp_set_row_stat(cg->lp, basis[k] + 1, GLP_BS);
        else if (basis[k] < 2 * C)
            glp_set_col_stat(cg->lp, basis[k] - C + 1, GLP_BS);
        else
            glp_set_col_stat(cg->lp, lp_col(cg, cg->where[basis[k] - 2 * C]), GLP_BS);
    }
    cg->need_dual = true;
    return true;
}

/* -------------------------------------------------------------------- LP */

/* Re-optimises the master (dual simplex after bound changes); *stopped when the clock ended it
 * first. */
static nmp_err lp_solve(nmp_master *cg, nmp_clock *clk, const nmp_report *rep, bool *stopped,
                        nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    bool solved;
    cg->smcp.meth = cg->need_dual ? GLP_DUALP : GLP_PRIMAL;
    NMP_TRY(e, nmp_glpk_simplex(cg->lp, &cg->smcp, CG_SLICE, clk, rep, "colgen", &solved, msg));
    *stopped = !solved;
    if (solved)
        cg->need_dual = false;
out:
    return e;
}

/* ------------------------------------------------------ column generation */

/* x of the pool from the last master; out->artificial when an artificial column is used */
static void read_primal(nmp_master *cg, nmp_master_out *out)
{
    out->artificial = false;
    for (int64_t q = 0; q < cg->npool; q++)
        cg->x[q] = glp_get_col_prim(cg->lp, lp_col(cg, q));
    for (int i = 1; i <= cg->cols; i++)
        if (glp_get_col_prim(cg->lp, i) > 1e-9)
            out->artificial = true;
}

nmp_err nmp_master_solve(nmp_master *cg, double cutoff, nmp_clock *clk, const nmp_report *rep,
                         nmp_master_out *out, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const int C = cg->cols, m = cg->m;
    const double G = (double)cg->groups;
    nmp_report pr_rep = { 0, 0, 0 };
    if (rep)
        pr_rep = *rep;
    memset(out, 0, sizeof *out);
    cg->node_bound = false;
    out->bound = INFINITY;
    out->lp = -INFINITY;
    out->end = NMP_MASTER_CONVERGED;
    double a = cg->alpha;
    bool exact = false; /* the last round's heuristic columns were all in the pool already */
    for (;;) {
        if (!rep)
            pr_rep.bound = isfinite(out->bound) ? out->bound : cg->pb->row_bound;
        pr_rep.iteration = out->rounds;
        bool stopped;
        if (clk && nmp_clock_tick(clk, out->rounds, pr_rep.best, pr_rep.bound, "colgen", false)) {
            out->end = NMP_MASTER_STOPPED;
            break;
        }
        NMP_TRY(e, lp_solve(cg, clk, &pr_rep, &stopped, msg));
        if (stopped) {
            out->end = NMP_MASTER_STOPPED;
            break;
        }
        out->lp = glp_get_obj_val(cg->lp);
        for (int i = 0; i < C; i++)
            cg->y[i] = glp_get_row_dual(cg->lp, i + 1);
        const bool smooth = cg->have_center && a > 0;
        double ysum = 0;
        for (int i = 0; i < C; i++) {
            cg->ysm[i] = smooth ? a * cg->center[i] + (1 - a) * cg->y[i] : cg->y[i];
            ysum += cg->ysm[i];
        }
        nmp_price_out po = { cg->fcols, cg->fval, cg->frc, 0, 0, false, -INFINITY };
        if (cg->cur_list >= 0)
            nmp_lists_scan(cg->lists, cg->ysm, cg->eps, cg->kmax, &po);
        else if (cg->heur_only)
            NMP_TRY(e, nmp_price_heuristic(cg->pr, cg->ysm, cg->eps, cg->kmax, clk, &pr_rep, &po));
        else if (exact)
            NMP_TRY(e, nmp_price_exact(cg->pr, cg->ysm, cg->eps, cg->kmax, clk, &pr_rep, &po));
        else
            NMP_TRY(e, nmp_price_solve(cg->pr, cg->ysm, cg->eps, cg->kmax, clk, &pr_rep, &po));
        const bool heur = po.rc_max == INFINITY; /* certified nothing */
        const bool heur_end = cg->heur_only && cg->cur_list < 0; /* no column found ends it */
        out->rounds++;
        out->pricing_nodes += po.nodes;
        if (!po.complete) {
            out->end = NMP_MASTER_STOPPED;
            break;
        }
        const double L = heur ? INFINITY : ysum + G * (po.found > 0 ? po.rc_max : cg->eps);
        if (L < out->bound) {
            out->bound = L;
            memcpy(cg->center, cg->ysm, (size_t)C * sizeof *cg->center);
            cg->have_center = true;
            cg->node_bound = true;
            cg->center_sum = ysum;
            cg->center_max = po.found > 0 ? po.rc_max : cg->eps;
        }
        if (out->bound <= cutoff) {
            out->end = NMP_MASTER_CUTOFF;
            break;
        }
        int64_t added = 0;
        for (int64_t k = 0; k < po.found; k++) {
            const int32_t *c = po.cols + k * m;
            double rc = po.value[k];
            for (int t = 0; t < m; t++)
                rc -= cg->y[c[t]];
            if (!(rc > cg->eps))
                continue;
            bool add;
            NMP_TRY(e, pool_add(cg, c, po.value[k], true, &add));
            added += add;
        }
        out->columns_added += added;
        const double gap_tol = 1e-9 * NMP_MAX(fabs(out->lp), cg->pb->row_bound);
        if (out->bound - out->lp <= gap_tol)
            break;
        if (out->bound - out->lp <= 1e-4 * NMP_MAX(fabs(out->lp), 1e-300)) {
            a = 0; /* close: finish at the master's own duals */
        } else if (added == 0) {
            if (!smooth && (!heur || heur_end))
                break; /* nothing prices out at y (heuristic only: nothing found) */
            a = NMP_MAX(0.0, a - (1 - cg->alpha)); /* mis-price: move towards y */
            if (a < 1e-3)
                a = 0;
        } else {
            a = cg->alpha;
        }
        if (added == 0 && !smooth && (!heur || heur_end))
            break;
        exact = added == 0 && !smooth && heur; /* a heuristic round certifies nothing */
    }
    if (out->lp > -INFINITY)
        read_primal(cg, out);
out:
    return e;
}

void nmp_master_set_heuristic_only(nmp_master *cg, bool on)
{
    cg->heur_only = on;
}

void nmp_master_keep_bound(nmp_master *cg)
{
    cg->kept_bound = cg->node_bound;
    if (!cg->node_bound)
        return;
    memcpy(cg->kept_center, cg->center, (size_t)cg->cols * sizeof *cg->center);
    cg->kept_sum = cg->center_sum;
    cg->kept_max = cg->center_max;
}

void nmp_master_restore_bound(nmp_master *cg)
{
    cg->node_bound = cg->kept_bound;
    if (!cg->kept_bound)
        return;
    memcpy(cg->center, cg->kept_center, (size_t)cg->cols * sizeof *cg->center);
    cg->center_sum = cg->kept_sum;
    cg->center_max = cg->kept_max;
    cg->have_center = true;
}

/* --------------------------------------------------------- LP solution use */

/* perm from the pool columns with x > 0.5; false unless they partition the columns */
static bool perm_from_x(nmp_master *cg, const double *xv, int32_t *perm)
{
    const int m = cg->m;
    int64_t g = 0;
    memset(cg->inq, 0, (size_t)cg->cols);
    for (int64_t q = 0; q < cg->npool; q++) {
        if (!(xv[q] > 0.5))
            continue;
        if (g == cg->groups)
            return false;
        const int32_t *c = cg->mem + q * m;
        for (int t = 0; t < m; t++) {
            if (cg->inq[c[t]])
                return false;
            cg->inq[c[t]] = 1;
            perm[g * m + t] = c[t];
        }
        g++;
    }
    return g == cg->groups;
}

bool nmp_master_integral(nmp_master *cg, int32_t *perm)
{
    for (int64_t q = 0; q < cg->npool; q++)
        if (cg->x[q] > 1e-6 && cg->x[q] < 1 - 1e-6)
            return false;
    return perm_from_x(cg, cg->x, perm);
}

bool nmp_master_branch_pair(nmp_master *cg, int32_t *pa, int32_t *pb, double *together)
{
    const int m = cg->m;
    int64_t nf = 0;
    for (int64_t q = 0; q < cg->npool && nf < cg->cols; q++)
        if (cg->x[q] > 1e-6 && cg->x[q] < 1 - 1e-6)
            cg->frac[nf++] = (int32_t)q;
    double best = 2;
    int32_t ba = -1, bb = -1;
    for (int64_t f = 0; f < nf; f++) {
        const int32_t *c = cg->mem + (int64_t)cg->frac[f] * m;
        for (int s = 0; s < m; s++)
            for (int t = s + 1; t < m; t++) {
                const int32_t i = c[s], j = c[t];
                double tog = 0;
                for (int64_t h = 0; h < nf; h++) {
                    const int32_t *d = cg->mem + (int64_t)cg->frac[h] * m;
                    bool hi = false, hj = false;
                    for (int u = 0; u < m; u++) {
                        hi = hi || d[u] == i;
                        hj = hj || d[u] == j;
                    }
                    if (hi && hj)
                        tog += cg->x[cg->frac[h]];
                }
                if (tog < 1e-6 || tog > 1 - 1e-6)
                    continue;
                const double d = fabs(tog - 0.5);
                if (d < best - 1e-12 || (d < best + 1e-12 && (i < ba || (i == ba && j < bb)))) {
                    best = d;
                    *together = tog;
                    ba = i;
                    bb = j;
                }
            }
    }
    *pa = ba;
    *pb = bb;
    return ba >= 0;
}

/* ------------------------------------------------------------------- MIP */

/* The pool as a binary program over the allowed columns (artificials fixed at 0), GLPK's
 * branch-and-cut from the master's basis, the start's groups as its first incumbent; then back
 * to the LP. Driebeck-Tomlin branching and best local bound: a short heuristic search. */
nmp_err nmp_master_mip(nmp_master *cg, double seconds, const int32_t *start, nmp_clock *clk,
                       const nmp_report *rep, int32_t *perm, bool *found, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const int C = cg->cols, m = cg->m;
    const int ncol = glp_get_num_cols(cg->lp);
    double *inc = cg->start, *xv = cg->xv;
    *found = false;
    if (seconds <= 0)
        return NMP_OK;
    memset(inc, 0, ((size_t)ncol + 1) * sizeof *inc);
    bool have_inc = start != NULL;
    for (int64_t g = 0; start && g < cg->groups; g++) {
        int32_t c[NMP_MAX_M];
        memcpy(c, start + g * m, (size_t)m * sizeof *c);
        sort_members(c, m);
        const int64_t q = pool_find(cg, c);
        if (q < 0 || !cg->allowed[q])
            have_inc = false;
        else
            inc[lp_col(cg, q)] = 1;
    }
    for (int i = 1; i <= C; i++)
        glp_set_col_bnds(cg->lp, i, GLP_FX, 0, 0);
    for (int64_t q = 0; q < cg->npool; q++)
        if (cg->allowed[q])
            glp_set_col_kind(cg->lp, lp_col(cg, q), GLP_BV);
    cg->need_dual = true;
    bool stopped = false;
    nmp_err le = lp_solve(cg, clk, rep, &stopped, msg);
    if (le == NMP_OK && !stopped && glp_get_status(cg->lp) == GLP_OPT) {
        nmp_glpk_bc bc = { have_inc ? inc : NULL, clk, { 0, 0, 0 }, INFINITY, nmp_now() + seconds,
                           0, -INFINITY, false };
        if (rep)
            bc.rep = *rep;
        glp_iocp iocp;
        glp_init_iocp(&iocp);
        iocp.msg_lev = cg->verbose ? GLP_MSG_ON : GLP_MSG_OFF;
        iocp.presolve = GLP_OFF;
        iocp.br_tech = GLP_BR_DTH;
        iocp.bt_tech = GLP_BT_BLB;
        iocp.tm_lim = (int)NMP_MIN(1e9, 1e3 * seconds + 1);
        const int ret = nmp_glpk_intopt(cg->lp, &iocp, &bc);
        if (ret == 0 || ret == GLP_ETMLIM || ret == GLP_ESTOP || ret == GLP_EMIPGAP) {
            const int st = glp_mip_status(cg->lp);
            if (st == GLP_OPT || st == GLP_FEAS) {
                for (int64_t q = 0; q < cg->npool; q++)
                    xv[q] = glp_mip_col_val(cg->lp, lp_col(cg, q));
                *found = perm_from_x(cg, xv, perm);
            }
        } else {
            e = nmp_glpk_fail(msg, "colgen", "branch-and-cut", ret);
        }
    } else if (le != NMP_OK) {
        e = le;
    }
    /* back to the LP */
    for (int64_t q = 0; q < cg->npool; q++) {
        glp_set_col_kind(cg->lp, lp_col(cg, q), GLP_CV);
        if (cg->allowed[q])
            glp_set_col_bnds(cg->lp, lp_col(cg, q), GLP_LO, 0, 0);
        else
            glp_set_col_bnds(cg->lp, lp_col(cg, q), GLP_FX, 0, 0);
    }
    for (int i = 1; i <= C; i++)
        glp_set_col_bnds(cg->lp, i, GLP_LO, 0, 0);
    cg->need_dual = true;
    return e;
}

/* ------------------------------------------------ reduced-cost enumeration */

/* Every partition X has value(X) = sum_i c_i + sum_{q in X} rc_c(q) for the center c, and each
 * rc_c(q) <= M (the max rc at c, known from its pricing round). So a partition worth more than
 * `incumbent` uses only columns with
 *     rc_c(q) > thr(incumbent) = incumbent - sum_i c_i - (G - 1) * M,
 * a threshold just below 0 when the node's gap is small. The pricing lists the best enum_max + 1
 * columns above it (under the node's rules); nmp_lists.c keeps the lists. */
nmp_err nmp_master_enumerate(nmp_master *cg, double incumbent, int64_t heur_cols, nmp_clock *clk,
                             const nmp_report *rep, nmp_master_enum *res)
{
    nmp_err e = NMP_OK;
    memset(res, 0, sizeof *res);
    res->list = -1;
    if (!cg->lists)
        return NMP_OK;
    nmp_lists_forget(cg->lists);
    if (!cg->node_bound)
        return NMP_OK;
    const double G = (double)cg->groups, keep = 1e-9 * NMP_MAX(fabs(incumbent), 1.0);
    const double base = cg->center_sum + (G - 1) * NMP_MAX(cg->center_max, 0.0);
    const double thr = incumbent - base - keep;
    nmp_price_out po = nmp_lists_listing(cg->lists);
    NMP_TRY(e, nmp_price_exact(cg->pr, cg->center, thr, cg->enum_max + 1, clk, rep, &po));
    res->columns = po.found;
    if (!po.complete) {
        res->stopped = true;
        goto out;
    }
    NMP_TRY(e, nmp_lists_listed(cg->lists, po.found, base, incumbent, heur_cols, res));
out:
    return e;
}

nmp_err nmp_master_relist(nmp_master *cg, double incumbent, nmp_master_enum *res)
{
    memset(res, 0, sizeof *res);
    res->list = -1;
    return cg->lists ? nmp_lists_relist(cg->lists, incumbent, res) : NMP_OK;
}

/* ----------------------------------------------------------------- start */

nmp_err nmp_master_start(nmp_master *cg, const nmp_params *par, double effort, double seconds,
                         nmp_clock *clk, const int32_t *perm, int32_t *inc, double *best,
                         nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const nmp_problem *pb = cg->pb;
    memcpy(inc, perm, (size_t)pb->cols * sizeof *inc);
    NMP_TRY(e, nmp_master_add_groups(cg, perm));
    if (effort > 0 && seconds > 0) {
        nmp_params hp;
        nmp_result r;
        nmp_params_init(&hp);
        hp.seed = par->seed;
        hp.threads = par->threads;
        /* auto's fixed work (its least effort is 0.001), which `seconds` only stops: no pacing
         * by the clock, no LP stage (that is the caller's) */
        NMP_TRY(e, nmp_params_set(&hp, "effort", NMP_MAX(effort, 0.001)));
        NMP_TRY(e, nmp_params_set(&hp, "paced", 0));
        NMP_TRY(e, nmp_params_set(&hp, "lp_cols", 0));
        NMP_TRY(e, nmp_subsolve(&nmp_auto_ops, pb, &hp, clk, seconds, inc, &r, msg));
        if (!(r.score > r.start_score)) /* only a gain replaces the start */
            memcpy(inc, perm, (size_t)pb->cols * sizeof *inc);
    }
    NMP_TRY(e, nmp_master_add_groups(cg, inc));
    NMP_TRY(e, nmp_score(pb, inc, best));
    nmp_master_set_incumbent(cg, *best);
    if (cg->alpha > 0) /* the center guides smoothing only (the lists use a node's own) */
        nmp_master_guess_duals(cg, inc);
out:
    return e;
}

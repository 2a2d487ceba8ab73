/* nmp_lists.c: the enumerated column lists of the master (branch-and-price's reduced-cost
 * enumeration): storage, reduced-cost fixing against the incumbent, pricing by a scan
 *
 * A listing (nmp_master_enumerate) prices the best enum_max + 1 columns whose reduced cost at the
 * stability center is above thr(incumbent), every column that can be in a better partition.
 * With at most enum_max of them the list is complete: the node's subtree needs no more pricing,
 * its master holds the list and its bound is a scan. This is the route-enumeration step of
 * exact VRP codes (Baldacci, Christofides, Mingozzi), here with exact subset pricing. When the
 * list is too long, its best columns make a heuristic list (a restricted problem to search for
 * incumbents); a better incumbent raises thr and may complete the list after all
 * (nmp_lists_relist). Each list keeps the reduced costs of its columns at the listing's duals,
 * so a better incumbent drops more of them (reduced-cost fixing) when the list is selected. */
#include "nmp_solvers.h"

#include <math.h>
#include <string.h>

struct nmp_lists {
    int m;
    int64_t enum_max;        /* most columns of a complete list */
    int32_t *ecols;          /* the last listing: enum_max + 1 columns, values, rc */
    double *eval, *erc;
    int64_t enum_found;      /* columns of the last listing (0: none to relist) */
    double enum_base;        /* its sum of duals + (G - 1) * max rc */
    /* column k of all lists has members lst[k * m ..] and value lst_val[k]; list l holds
     * columns lst_off[l] .. lst_off[l + 1] - 1 */
    int32_t *lst;
    double *lst_val, *lst_rc; /* D and the reduced cost at the duals of the listing */
    double *lst_base;        /* per list: sum of those duals + (G - 1) * their max rc */
    int64_t lst_cap;
    int64_t *lst_off;
    int nlst, lst_offcap;
    int cur;                 /* the selected list */
    uint8_t *lst_ok;         /* columns of the selected list that obey the rules */
    int32_t *scan;           /* indices of a scan */
    double *scan_rc;         /* rc of the list's columns in a scan */
};

void nmp_lists_free(nmp_lists *ls)
{
    if (!ls)
        return;
    nmp_free(ls->ecols);
    nmp_free(ls->eval);
    nmp_free(ls->erc);
    nmp_free(ls->lst);
    nmp_free(ls->lst_val);
    nmp_free(ls->lst_rc);
    nmp_free(ls->lst_base);
    nmp_free(ls->lst_off);
    nmp_free(ls->lst_ok);
    nmp_free(ls->scan);
    nmp_free(ls->scan_rc);
    nmp_free(ls);
}

nmp_err nmp_lists_create(int m, int64_t enum_max, int64_t kmax, nmp_lists **out)
{
    nmp_err e = NMP_OK;
    nmp_lists *ls = nmp_calloc(1, sizeof *ls);
    if (!ls)
        return NMP_ERR_NOMEM;
    ls->m = m;
    ls->enum_max = enum_max;
    ls->cur = -1;
    const size_t k = (size_t)enum_max + 1;
    ls->ecols = nmp_malloc(k * (size_t)m * sizeof *ls->ecols);
    ls->eval = nmp_malloc(k * sizeof *ls->eval);
    ls->erc = nmp_malloc(k * sizeof *ls->erc);
    ls->lst_ok = nmp_malloc(k * sizeof *ls->lst_ok);
    ls->scan = nmp_malloc(NMP_MAX(k, (size_t)kmax) * sizeof *ls->scan);
    ls->scan_rc = nmp_malloc(k * sizeof *ls->scan_rc);
    if (!ls->ecols || !ls->eval || !ls->erc || !ls->lst_ok || !ls->scan || !ls->scan_rc) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    *out = ls;
    ls = NULL;
out:
    nmp_lists_free(ls);
    return e;
}

int nmp_lists_count(const nmp_lists *ls)
{
    return ls ? ls->nlst : 0;
}

int64_t nmp_lists_size(const nmp_lists *ls, int list)
{
    return ls->lst_off[list + 1] - ls->lst_off[list];
}

const int32_t *nmp_lists_column(const nmp_lists *ls, int list, int64_t k)
{
    return ls->lst + (ls->lst_off[list] + k) * ls->m;
}

void nmp_lists_select(nmp_lists *ls, int list, double incumbent,
                      bool (*obeys)(const void *ctx, const int32_t *c), const void *ctx)
{
    const double thr = incumbent - ls->lst_base[list] - 1e-9 * NMP_MAX(fabs(incumbent), 1.0);
    for (int64_t k = ls->lst_off[list]; k < ls->lst_off[list + 1]; k++)
        ls->lst_ok[k - ls->lst_off[list]] = ls->lst_rc[k] > thr && obeys(ctx, ls->lst + k * ls->m);
    ls->cur = list;
}

/* ------------------------------------------------------------- listings */

void nmp_lists_forget(nmp_lists *ls)
{
    ls->enum_found = 0;
}

nmp_price_out nmp_lists_listing(nmp_lists *ls)
{
    const nmp_price_out po = { ls->ecols, ls->eval, ls->erc, 0, 0, false, -INFINITY };
    return po;
}

/* Stores the first count columns of the last listing as a new list (*id). */
static nmp_err list_register(nmp_lists *ls, int64_t count, double base, int *id)
{
    nmp_err e = NMP_OK;
    const int m = ls->m;
    bool ok = true;
    if (ls->nlst + 2 > ls->lst_offcap) {
        const int cap = NMP_MAX(8, 2 * ls->lst_offcap);
        const bool fresh = !ls->lst_off;
        ls->lst_off = nmp_grow(ls->lst_off, (size_t)cap * sizeof *ls->lst_off, &ok);
        if (fresh && ok)
            ls->lst_off[0] = 0;
        ls->lst_base = nmp_grow(ls->lst_base, (size_t)cap * sizeof *ls->lst_base, &ok);
        if (!ok) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
        ls->lst_offcap = cap;
    }
    const int64_t start = ls->lst_off[ls->nlst];
    if (start + count > ls->lst_cap) {
        const int64_t cap = NMP_MAX(start + count, 2 * ls->lst_cap);
        ls->lst = nmp_grow(ls->lst, (size_t)cap * (size_t)m * sizeof *ls->lst, &ok);
        ls->lst_val = nmp_grow(ls->lst_val, (size_t)cap * sizeof *ls->lst_val, &ok);
        ls->lst_rc = nmp_grow(ls->lst_rc, (size_t)cap * sizeof *ls->lst_rc, &ok);
        if (!ok) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
        ls->lst_cap = cap;
    }
    memcpy(ls->lst + start * m, ls->ecols, (size_t)(count * m) * sizeof *ls->lst);
    memcpy(ls->lst_val + start, ls->eval, (size_t)count * sizeof *ls->lst_val);
    memcpy(ls->lst_rc + start, ls->erc, (size_t)count * sizeof *ls->lst_rc);
    ls->lst_base[ls->nlst] = base;
    ls->lst_off[ls->nlst + 1] = start + count;
    *id = ls->nlst++;
out:
    return e;
}

/* A complete list from the last listing if thr(incumbent) leaves out everything it cut off. */
static nmp_err relist(nmp_lists *ls, double incumbent, nmp_master_enum *res)
{
    const double keep = 1e-9 * NMP_MAX(fabs(incumbent), 1.0);
    const double thr = incumbent - ls->enum_base - keep;
    int64_t count = ls->enum_found;
    if (count > ls->enum_max && thr < ls->erc[ls->enum_max])
        return NMP_OK;
    while (count > 0 && !(ls->erc[count - 1] > thr))
        count--;
    res->columns = count;
    res->complete = true;
    return list_register(ls, count, ls->enum_base, &res->list);
}

nmp_err nmp_lists_listed(nmp_lists *ls, int64_t found, double base, double incumbent,
                         int64_t heur_cols, nmp_master_enum *res)
{
    nmp_err e = NMP_OK;
    ls->enum_found = found;
    ls->enum_base = base;
    if (found <= ls->enum_max) {
        NMP_TRY(e, relist(ls, incumbent, res));
    } else if (heur_cols > 0) {
        res->columns = NMP_MIN(heur_cols, found);
        NMP_TRY(e, list_register(ls, res->columns, base, &res->list));
    }
out:
    return e;
}

nmp_err nmp_lists_relist(nmp_lists *ls, double incumbent, nmp_master_enum *res)
{
    return ls->enum_found == 0 ? NMP_OK : relist(ls, incumbent, res);
}

/* ----------------------------------------------------------------- scans */

/* List column u (index in the current list, rc in erc) before v: larger rc, then members
 * lexicographically, the order of the B&B's results. */
static bool scan_before(const nmp_lists *ls, const int32_t *c0, int32_t u, int32_t v)
{
    if (ls->scan_rc[u] != ls->scan_rc[v])
        return ls->scan_rc[u] > ls->scan_rc[v];
    const int32_t *a = c0 + (int64_t)u * ls->m, *b = c0 + (int64_t)v * ls->m;
    for (int t = 0; t < ls->m; t++)
        if (a[t] != b[t])
            return a[t] < b[t];
    return false;
}

/* sift item at k down a min-heap (root: the last in scan order) of n entries */
static void scan_sift(const nmp_lists *ls, const int32_t *c0, int32_t *h, int64_t n, int64_t k)
{
    const int32_t it = h[k];
    for (;;) {
        int64_t c = 2 * k + 1;
        if (c >= n)
            break;
        if (c + 1 < n && scan_before(ls, c0, h[c], h[c + 1]))
            c++;
        if (!scan_before(ls, c0, it, h[c]))
            break;
        h[k] = h[c];
        k = c;
    }
    h[k] = it;
}

/* The B&B's result restricted to the list (the best k with rc > thr, in the same order), by a
 * scan and a bounded heap. */
void nmp_lists_scan(nmp_lists *ls, const double *y, double thr, int64_t k, nmp_price_out *po)
{
    const int m = ls->m;
    const int64_t base = ls->lst_off[ls->cur], len = ls->lst_off[ls->cur + 1] - base;
    const int32_t *c0 = ls->lst + base * m;
    int32_t *h = ls->scan;
    int64_t n = 0;
    for (int64_t q = 0; q < len; q++) {
        if (!ls->lst_ok[q])
            continue;
        const int32_t *c = c0 + q * m;
        double ys = 0;
        for (int t = 0; t < m; t++)
            ys += y[c[t]];
        ls->scan_rc[q] = ls->lst_val[base + q] - ys;
        if (!(ls->scan_rc[q] > thr))
            continue;
        if (n < k) { /* sift up */
            int64_t j = n++;
            while (j > 0 && scan_before(ls, c0, h[(j - 1) / 2], (int32_t)q)) {
                h[j] = h[(j - 1) / 2];
                j = (j - 1) / 2;
            }
            h[j] = (int32_t)q;
        } else if (scan_before(ls, c0, (int32_t)q, h[0])) {
            h[0] = (int32_t)q;
            scan_sift(ls, c0, h, n, 0);
        }
    }
    po->found = n;
    for (int64_t t = n - 1; t >= 0; t--) { /* pop the last first */
        const int32_t q = h[0];
        h[0] = h[t];
        scan_sift(ls, c0, h, t, 0);
        memcpy(po->cols + t * m, c0 + (int64_t)q * m, (size_t)m * sizeof *po->cols);
        po->value[t] = ls->lst_val[base + q];
        po->rc[t] = ls->scan_rc[q];
    }
    po->nodes = len;
    po->complete = true;
    po->rc_max = n > 0 ? po->rc[0] : -INFINITY;
}

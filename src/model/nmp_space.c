/* nmp_space.c: a channel space on a checkpoint: tensor views, saliency, the scoring problem of
 * a space, and the check that its tensors hold finite values (writing: nmp_apply.c, verifying:
 * nmp_verify.c) */
#include "nmp_model.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------- tensor views */

int nmp_dtype_code(const char *d)
{
    return strcmp(d, "F32") == 0    ? NMP_DT_F32
           : strcmp(d, "F64") == 0  ? NMP_DT_F64
           : strcmp(d, "F16") == 0  ? NMP_DT_F16
           : strcmp(d, "BF16") == 0 ? NMP_DT_BF16
                                    : NMP_DT_OTHER;
}

nmp_tview nmp_tview_make(const nmp_st_tensor *t, const void *data, const nmp_ref *r,
                         const int32_t *perm)
{
    nmp_tview v = { data, nmp_dtype_code(t->dtype), nmp_st_dtype_size(t->dtype), 1,
                    t->shape[r->axis], 1, r->offset, perm, t->ndim, 0, { 0 }, { { 0 } } };
    memcpy(v.shape, t->shape, sizeof v.shape);
    for (int d = 0; d < r->axis; d++)
        v.outer *= t->shape[d];
    for (int d = r->axis + 1; d < t->ndim; d++)
        v.inner *= t->shape[d];
    return v;
}

nmp_err nmp_tview_resolve(const nmp_st *st, const nmp_space *sp, const nmp_ref *r,
                          const int32_t *perm, nmp_tview *v, nmp_msg *msg)
{
    const nmp_st_tensor *t = nmp_st_find(st, r->tensor);
    if (!t)
        return nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: missing (space %s)", nmp_st_path(st),
                        r->tensor, sp->name);
    if (nmp_dtype_code(t->dtype) == NMP_DT_OTHER || r->axis < 0 || r->axis >= t->ndim ||
        r->offset < 0 || r->offset + sp->size > t->shape[r->axis])
        return nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: dtype %s, axis %d, channels %lld..%lld do "
                        "not fit the tensor (space %s)", nmp_st_path(st), r->tensor, t->dtype,
                        r->axis, (long long)r->offset, (long long)(r->offset + sp->size - 1),
                        sp->name);
    *v = nmp_tview_make(t, nmp_st_bytes(st, t), r, perm);
    return NMP_OK;
}

/* ------------------------------------------------------------ saliency */

const char *nmp_saliency_name(nmp_saliency_kind k)
{
    return k == NMP_SAL_WANDA ? "wanda" : k == NMP_SAL_RIA ? "ria" : "abs";
}

nmp_err nmp_saliency_parse(const char *s, nmp_saliency_kind *out)
{
    for (int k = NMP_SAL_ABS; k <= NMP_SAL_RIA; k++)
        if (strcmp(s, nmp_saliency_name((nmp_saliency_kind)k)) == 0) {
            *out = (nmp_saliency_kind)k;
            return NMP_OK;
        }
    return NMP_ERR_ARG;
}

void nmp_saltab_free(nmp_saltab *t)
{
    nmp_free(t->act);
    nmp_free(t->colsum);
    t->act = t->colsum = NULL;
}

nmp_err nmp_saltab_make(const nmp_saliency *sal, const nmp_st_tensor *t, const nmp_tview *v,
                        const int32_t *map, const char *space, nmp_saltab *tab, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    memset(tab, 0, sizeof *tab);
    tab->kind = sal ? sal->kind : NMP_SAL_ABS;
    if (tab->kind == NMP_SAL_ABS)
        return NMP_OK;
    if (!sal->acts)
        return nmp_fail(msg, NMP_ERR_ARG, "objective %s needs activations (--activations)",
                        nmp_saliency_name(tab->kind));
    const nmp_st_tensor *a = nmp_st_find(sal->acts, t->name);
    if (!a) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: no entry (needed for %s; make the file "
                     "with tools/calibrate.py)", nmp_st_path(sal->acts), t->name, space);
        goto out;
    }
    const int code = nmp_dtype_code(a->dtype);
    if (code == NMP_DT_OTHER || a->ndim != 1 || a->numel != v->C) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: %s %lld values (%d-D), expected %lld float "
                     "values (the input channels of %s, needed for %s)", nmp_st_path(sal->acts),
                     t->name, a->dtype, (long long)a->numel, a->ndim, (long long)v->C, t->name,
                     space);
        goto out;
    }
    tab->act = nmp_malloc((size_t)v->C * sizeof *tab->act);
    tab->colsum = tab->kind == NMP_SAL_RIA ? nmp_calloc((size_t)v->C, sizeof *tab->colsum)
                                           : NULL;
    if (!tab->act || (tab->kind == NMP_SAL_RIA && !tab->colsum)) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    const uint8_t *p = nmp_st_bytes(sal->acts, a);
    const size_t esize = nmp_st_dtype_size(a->dtype);
    for (int64_t c = 0; c < v->C; c++) {
        const double x = nmp_dtype_decode(p + (size_t)(map ? map[c] : c) * esize, code);
        if (!(x >= 0) || x - x != 0) {
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: value %lld is %g (norms are finite and "
                         ">= 0)", nmp_st_path(sal->acts), t->name, (long long)(map ? map[c] : c),
                         x);
            goto out;
        }
        tab->act[c] = tab->kind == NMP_SAL_RIA ? sqrt(x) : x;
    }
    if (tab->kind == NMP_SAL_RIA)
        for (int64_t o = 0; o < v->outer; o++)
            for (int64_t c = 0; c < v->C; c++)
                for (int64_t i = 0; i < v->inner; i++)
                    tab->colsum[c] += fabs(nmp_tview_get(v, o, c, i));
out:
    if (e != NMP_OK)
        nmp_saltab_free(tab);
    return e;
}

double nmp_row_abs(const nmp_tview *v, int64_t o, int64_t i)
{
    double s = 0;
    for (int64_t c = 0; c < v->C; c++)
        s += fabs(nmp_tview_get(v, o, c, i));
    return s;
}

/* ------------------------------------------------------------ problems */

/* S = [S(C_1); S(C_2); ...]: each consumer's slice scored by sal (nmp_saliency) with the channel
 * axis as columns and (outer, inner) flattened into rows, stacked; built in float32 then handed
 * to nmp_problem_create. Saliencies that need sums (ria) or activations (wanda, ria) see the
 * whole tensor, not only the space's slice. */
nmp_err nmp_space_problem_sal(const nmp_st *st, const nmp_space *sp, nmp_pattern nm,
                              const nmp_saliency *sal, nmp_problem **out, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    float *w = NULL;
    nmp_saltab tab = { NMP_SAL_ABS, NULL, NULL };
    int64_t rows = 0;
    *out = NULL;
    for (int64_t r = 0; r < sp->nrefs; r++) {
        nmp_tview v;
        if (sp->refs[r].role != NMP_ROLE_CONSUMER)
            continue;
        NMP_TRY(e, nmp_tview_resolve(st, sp, &sp->refs[r], NULL, &v, msg));
        rows += v.outer * v.inner;
    }
    if (rows < 1 || (uint64_t)rows > SIZE_MAX / sizeof *w / (uint64_t)sp->size) {
        e = nmp_fail(msg, NMP_ERR_ARG, "space %s: %lld rows", sp->name, (long long)rows);
        goto out;
    }
    if (!(w = nmp_malloc((size_t)rows * (size_t)sp->size * sizeof *w))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    int64_t j = 0;
    for (int64_t r = 0; r < sp->nrefs; r++) {
        nmp_tview v;
        const nmp_ref *ref = &sp->refs[r];
        if (ref->role != NMP_ROLE_CONSUMER)
            continue;
        NMP_TRY(e, nmp_tview_resolve(st, sp, ref, NULL, &v, msg));
        const nmp_st_tensor *t = nmp_st_find(st, ref->tensor);
        const nmp_ref whole_ref = { ref->tensor, ref->role, ref->use, ref->axis, 0 };
        const nmp_tview whole = nmp_tview_make(t, nmp_st_bytes(st, t), &whole_ref, NULL);
        char what[300];
        snprintf(what, sizeof what, "space %s", sp->name);
        nmp_saltab_free(&tab);
        NMP_TRY(e, nmp_saltab_make(sal, t, &whole, NULL, what, &tab, msg));
        for (int64_t o = 0; o < v.outer; o++)
            for (int64_t i = 0; i < v.inner; i++, j++) {
                const double rs = tab.kind == NMP_SAL_RIA ? nmp_row_abs(&whole, o, i) : 0;
                for (int64_t c = 0; c < sp->size; c++)
                    w[j * sp->size + c] =
                        (float)nmp_sal_of(&tab, nmp_tview_get(&v, o, c, i), v.off + c, rs);
            }
    }
    const nmp_problem_desc d = { nmp_matrix_view(w, rows, sp->size), nm, NMP_OBJ_ABS, NULL,
                                 { 0 } };
    nmp_msg pmsg = { { 0 } };
    if ((e = nmp_problem_create(&d, out, &pmsg)) != NMP_OK)
        nmp_fail(msg, e, "%s: space %s: %s", nmp_st_path(st), sp->name, pmsg.text);
out:
    nmp_saltab_free(&tab);
    nmp_free(w);
    return e;
}

nmp_err nmp_space_problem(const nmp_st *st, const nmp_space *sp, nmp_pattern nm,
                          nmp_problem **out, nmp_msg *msg)
{
    return nmp_space_problem_sal(st, sp, nm, NULL, out, msg);
}

/* ------------------------------------------------------------ values */

nmp_err nmp_plan_check_values(const nmp_plan *plan, const nmp_st *st, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const int64_t count = nmp_st_count(st);
    uint8_t *done = nmp_calloc((size_t)count, 1);
    if (!done) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    for (int64_t s = 0; s < plan->count; s++) {
        const nmp_space *sp = &plan->spaces[s];
        for (int64_t r = 0; r < sp->nrefs && !sp->skip; r++) {
            const nmp_st_tensor *t = nmp_st_find(st, sp->refs[r].tensor);
            if (!t || done[t - nmp_st_tensor_at(st, 0)])
                continue;
            done[t - nmp_st_tensor_at(st, 0)] = 1;
            const int code = nmp_dtype_code(t->dtype);
            const size_t esize = nmp_st_dtype_size(t->dtype);
            const uint8_t *p = nmp_st_bytes(st, t);
            if (code == NMP_DT_OTHER)
                continue;
            for (int64_t k = 0; k < t->numel; k++) {
                const double x = nmp_dtype_decode(p + (size_t)k * esize, code);
                if (x - x == 0)
                    continue;
                char where[200] = "";
                int len = 0;
                int64_t rest = k;
                int64_t idx[NMP_ST_MAX_DIMS] = { 0 };
                for (int d = t->ndim - 1; d >= 0; d--) {
                    idx[d] = t->shape[d] > 0 ? rest % t->shape[d] : 0;
                    rest = t->shape[d] > 0 ? rest / t->shape[d] : 0;
                }
                for (int d = 0; d < t->ndim && len >= 0 && len < (int)sizeof where; d++)
                    len += snprintf(where + len, sizeof where - (size_t)len, "%s%lld",
                                    d ? ", " : "", (long long)idx[d]);
                e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: %s at index %lld ([%s]) (space %s)",
                             nmp_st_path(st), t->name, x != x ? "NaN" : "infinity",
                             (long long)k, where, sp->name);
                goto out;
            }
        }
        nmp_st_drop_pages(st); /* resident: one space's tensors at a time */
    }
out:
    nmp_free(done);
    return e;
}

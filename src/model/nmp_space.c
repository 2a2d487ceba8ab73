/* nmp_space.c: channel spaces applied to a checkpoint: scoring problems, permuted and pruned
 * output, verification that a permuted block computes what the original did */
#include "nmp_model.h"

#include <fnmatch.h>
#include <math.h>
#include <string.h>

/* ------------------------------------------------------- tensor views */

enum { DT_F32, DT_F64, DT_F16, DT_BF16, DT_OTHER };

static int dtype_code(const char *d)
{
    return strcmp(d, "F32") == 0    ? DT_F32
           : strcmp(d, "F64") == 0  ? DT_F64
           : strcmp(d, "F16") == 0  ? DT_F16
           : strcmp(d, "BF16") == 0 ? DT_BF16
                                    : DT_OTHER;
}

/* A tensor seen as [outer, C, inner] around one channel axis, channels off .. off + size - 1
 * of C exposed as 0 .. size - 1, optionally through perm (local channel c reads perm[c]). */

/* The permutations other spaces applied to slices of one other axis of the same tensor, undone
 * when reading: b's index map[i] along that axis holds a's index i (one map per axis, so a
 * tensor shared by many spaces, e.g. o_proj by every head and the residual stream, costs one
 * lookup per axis). */
typedef struct tother {
    int axis;
    const int32_t *map;
} tother;

typedef struct tview {
    const uint8_t *data;
    int code;
    size_t esize;
    int64_t outer, C, inner, off;
    const int32_t *perm;
    int ndim, nother;
    int64_t shape[NMP_ST_MAX_DIMS];
    tother other[NMP_ST_MAX_DIMS];
} tview;

static tview tview_make(const nmp_st_tensor *t, const void *data, const nmp_ref *r,
                        const int32_t *perm)
{
    tview v = { data, dtype_code(t->dtype), nmp_st_dtype_size(t->dtype), 1, t->shape[r->axis], 1,
                r->offset, perm, t->ndim, 0, { 0 }, { { 0 } } };
    memcpy(v.shape, t->shape, sizeof v.shape);
    for (int d = 0; d < r->axis; d++)
        v.outer *= t->shape[d];
    for (int d = r->axis + 1; d < t->ndim; d++)
        v.inner *= t->shape[d];
    return v;
}

/* Flat index of (o, c, i); with other spaces' permutations, through the multi-index. */
static inline int64_t tv_index(const tview *v, int64_t o, int64_t c, int64_t i)
{
    const int64_t ch = v->off + (v->perm ? v->perm[c] : c);
    int64_t idx = (o * v->C + ch) * v->inner + i;
    if (v->nother > 0) {
        int64_t mi[NMP_ST_MAX_DIMS];
        for (int d = v->ndim - 1; d >= 0; d--) {
            mi[d] = idx % v->shape[d];
            idx /= v->shape[d];
        }
        for (int k = 0; k < v->nother; k++)
            mi[v->other[k].axis] = v->other[k].map[mi[v->other[k].axis]];
        idx = 0;
        for (int d = 0; d < v->ndim; d++)
            idx = idx * v->shape[d] + mi[d];
    }
    return idx;
}

static inline double decode(const uint8_t *p, int code)
{
    float f;
    double d;
    uint16_t h;
    switch (code) {
    case DT_F32: memcpy(&f, p, 4); return f;
    case DT_F64: memcpy(&d, p, 8); return d;
    case DT_F16: memcpy(&h, p, 2); return nmp_f16_to_f32(h);
    case DT_BF16: memcpy(&h, p, 2); return nmp_bf16_to_f32(h);
    default: return 0;
    }
}

static inline double tv_get(const tview *v, int64_t o, int64_t c, int64_t i)
{
    return decode(v->data + (size_t)tv_index(v, o, c, i) * v->esize, v->code);
}

/* A reference of a space resolved on a checkpoint (NMP_ERR_FORMAT when absent or misshaped). */
static nmp_err resolve(const nmp_st *st, const nmp_space *sp, const nmp_ref *r,
                       const int32_t *perm, tview *v, nmp_msg *msg)
{
    const nmp_st_tensor *t = nmp_st_find(st, r->tensor);
    if (!t)
        return nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: missing (space %s)", nmp_st_path(st),
                        r->tensor, sp->name);
    if (dtype_code(t->dtype) == DT_OTHER || r->axis < 0 || r->axis >= t->ndim ||
        r->offset < 0 || r->offset + sp->size > t->shape[r->axis])
        return nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: dtype %s, axis %d, channels %lld..%lld do "
                        "not fit the tensor (space %s)", nmp_st_path(st), r->tensor, t->dtype,
                        r->axis, (long long)r->offset, (long long)(r->offset + sp->size - 1),
                        sp->name);
    *v = tview_make(t, nmp_st_bytes(st, t), r, perm);
    return NMP_OK;
}

/* ------------------------------------------------------------ problems */

/* ------------------------------------------------------------ saliency */

const char *const nmp_prune_exclude_default[] = {
    "*embed_tokens*", "*embeddings.*", "*wte.*", "*wpe.*", "lm_head*", "*.lm_head*", NULL
};

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

/* What the saliency of one tensor needs, over its whole input axis (C channels): a[c] (wanda)
 * or sqrt(a[c]) (ria), and for ria the column sums sum_k |W(k, c)| over every output row. */
typedef struct saltab {
    nmp_saliency_kind kind;
    double *act;    /* C values, NULL for abs */
    double *colsum; /* C values, ria only */
} saltab;

static void saltab_free(saltab *t)
{
    nmp_free(t->act);
    nmp_free(t->colsum);
    t->act = t->colsum = NULL;
}

/* Fills tab for the tensor of view v (the whole axis: v->off = 0, v->C all channels). The
 * activation vector is read at the tensor's name; map (C entries or NULL) gives, for slot x of
 * the data v reads, the channel of the activation file (the permutation applied to the input
 * axis). `space` names what needed it, for the error. */
static nmp_err saltab_make(const nmp_saliency *sal, const nmp_st_tensor *t, const tview *v,
                           const int32_t *map, const char *space, saltab *tab, nmp_msg *msg)
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
    const int code = dtype_code(a->dtype);
    if (code == DT_OTHER || a->ndim != 1 || a->numel != v->C) {
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
        const double x = decode(p + (size_t)(map ? map[c] : c) * esize, code);
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
                    tab->colsum[c] += fabs(tv_get(v, o, c, i));
out:
    if (e != NMP_OK)
        saltab_free(tab);
    return e;
}

/* sum_k |W(row, k)| of row (o, i) over the whole input axis (ria). */
static double row_abs(const tview *v, int64_t o, int64_t i)
{
    double s = 0;
    for (int64_t c = 0; c < v->C; c++)
        s += fabs(tv_get(v, o, c, i));
    return s;
}

/* The saliency of W(o, c, i) (c on the whole axis), rowsum = row_abs(o, i) for ria. */
static inline double sal_of(const saltab *tab, double w, int64_t c, double rowsum)
{
    const double x = fabs(w);
    switch (tab->kind) {
    case NMP_SAL_WANDA: return x * tab->act[c];
    case NMP_SAL_RIA:
        return ((rowsum > 0 ? x / rowsum : 0) + (tab->colsum[c] > 0 ? x / tab->colsum[c] : 0)) *
               tab->act[c];
    case NMP_SAL_ABS: break;
    }
    return x;
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
    saltab tab = { NMP_SAL_ABS, NULL, NULL };
    int64_t rows = 0;
    *out = NULL;
    for (int64_t r = 0; r < sp->nrefs; r++) {
        tview v;
        if (sp->refs[r].role != NMP_ROLE_CONSUMER)
            continue;
        NMP_TRY(e, resolve(st, sp, &sp->refs[r], NULL, &v, msg));
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
        tview v;
        const nmp_ref *ref = &sp->refs[r];
        if (ref->role != NMP_ROLE_CONSUMER)
            continue;
        NMP_TRY(e, resolve(st, sp, ref, NULL, &v, msg));
        const nmp_st_tensor *t = nmp_st_find(st, ref->tensor);
        const nmp_ref whole_ref = { ref->tensor, ref->role, ref->use, ref->axis, 0 };
        const tview whole = tview_make(t, nmp_st_bytes(st, t), &whole_ref, NULL);
        char what[300];
        snprintf(what, sizeof what, "space %s", sp->name);
        saltab_free(&tab);
        NMP_TRY(e, saltab_make(sal, t, &whole, NULL, what, &tab, msg));
        for (int64_t o = 0; o < v.outer; o++)
            for (int64_t i = 0; i < v.inner; i++, j++) {
                const double rs = tab.kind == NMP_SAL_RIA ? row_abs(&whole, o, i) : 0;
                for (int64_t c = 0; c < sp->size; c++)
                    w[j * sp->size + c] = (float)sal_of(&tab, tv_get(&v, o, c, i), v.off + c,
                                                        rs);
            }
    }
    const nmp_problem_desc d = { nmp_matrix_view(w, rows, sp->size), nm, NMP_OBJ_ABS, NULL,
                                 { 0 } };
    nmp_msg pmsg = { { 0 } };
    if ((e = nmp_problem_create(&d, out, &pmsg)) != NMP_OK)
        nmp_fail(msg, e, "%s: space %s: %s", nmp_st_path(st), sp->name, pmsg.text);
out:
    saltab_free(&tab);
    nmp_free(w);
    return e;
}

nmp_err nmp_space_problem(const nmp_st *st, const nmp_space *sp, nmp_pattern nm,
                          nmp_problem **out, nmp_msg *msg)
{
    return nmp_space_problem_sal(st, sp, nm, NULL, out, msg);
}

/* --------------------------------------------------------------- writing */

/* Slot k of every [outer] block gets the old slot perm[k]: cycles followed in place with one
 * slot (inner elements) of scratch, so a tensor is permuted without a second copy. */
static void permute_slots(uint8_t *data, const tview *v, const int32_t *perm, int64_t n,
                          uint8_t *tmp, uint8_t *seen)
{
    const size_t slot = (size_t)v->inner * v->esize;
    for (int64_t o = 0; o < v->outer; o++) {
        uint8_t *base = data + (size_t)((o * v->C + v->off) * v->inner) * v->esize;
        memset(seen, 0, (size_t)n);
        for (int64_t start = 0; start < n; start++) {
            if (seen[start] || perm[start] == start)
                continue;
            memcpy(tmp, base + (size_t)start * slot, slot);
            int64_t k = start;
            for (;;) {
                seen[k] = 1;
                const int64_t src = perm[k];
                if (src == start) {
                    memcpy(base + (size_t)k * slot, tmp, slot);
                    break;
                }
                memcpy(base + (size_t)k * slot, base + (size_t)src * slot, slot);
                k = src;
            }
        }
    }
}

/* Keeps the n most salient weights (tab; ties: the first ones) of every group of m consecutive
 * channels g * m .. g * m + m - 1 for groups glo <= g < ghi of the whole-axis view v, zeroes
 * the rest, then checks each group holds at most n nonzeros. */
static nmp_err prune_groups(uint8_t *data, const tview *v, int64_t glo, int64_t ghi,
                            nmp_pattern nm, const saltab *tab, const char *name, nmp_msg *msg)
{
    for (int64_t o = 0; o < v->outer; o++)
        for (int64_t i = 0; i < v->inner; i++) {
            const double rs = tab->kind == NMP_SAL_RIA ? row_abs(v, o, i) : 0;
            for (int64_t g = glo; g < ghi; g++) {
                double a[NMP_MAX_M];
                uint8_t *p[NMP_MAX_M];
                bool keep[NMP_MAX_M] = { false };
                for (int t = 0; t < nm.m; t++) {
                    p[t] = data + (size_t)tv_index(v, o, g * nm.m + t, i) * v->esize;
                    a[t] = sal_of(tab, decode(p[t], v->code), g * nm.m + t, rs);
                }
                for (int kept = 0; kept < nm.n; kept++) {
                    int best = -1;
                    for (int t = 0; t < nm.m; t++)
                        if (!keep[t] && (best < 0 || a[t] > a[best]))
                            best = t;
                    keep[best] = true;
                }
                int nonzero = 0;
                for (int t = 0; t < nm.m; t++) {
                    if (!keep[t])
                        memset(p[t], 0, v->esize);
                    nonzero += decode(p[t], v->code) != 0;
                }
                if (nonzero > nm.n)
                    return nmp_fail(msg, NMP_ERR_INTERNAL, "%s: group %lld of row %lld holds %d "
                                    "nonzeros after %d:%d pruning", name, (long long)g,
                                    (long long)(o * v->inner + i), nonzero, nm.n, nm.m);
            }
        }
    return NMP_OK;
}

typedef struct fill_ctx {
    nmp_plan *plan;
    const nmp_prune_spec *pr;
    int (*stop)(void *user, const nmp_st_tensor *t);
    void *stop_user;
    bool stopped;
} fill_ctx;

/* The input axis of tensor t: the axis a space consumes it on, else 0 for gpt2 (Conv1D weights
 * are [in, out]), else 1 (Linear weights are [out, in]). */
static int input_axis(const nmp_plan *plan, const nmp_st_tensor *t)
{
    for (int64_t s = 0; s < plan->count; s++)
        for (int64_t r = 0; r < plan->spaces[s].nrefs; r++) {
            const nmp_ref *ref = &plan->spaces[s].refs[r];
            if (ref->role == NMP_ROLE_CONSUMER && strcmp(ref->tensor, t->name) == 0)
                return ref->axis;
        }
    return plan->arch && strcmp(plan->arch, "gpt2") == 0 ? 0 : 1;
}

bool nmp_prune_selects(const nmp_plan *plan, const nmp_prune_spec *pr, const nmp_st_tensor *t)
{
    if (pr->mode != NMP_PRUNE_ALL || t->ndim != 2 || dtype_code(t->dtype) == DT_OTHER)
        return false;
    if (t->shape[input_axis(plan, t)] % pr->nm.m != 0 || t->numel == 0)
        return false;
    for (int k = 0; nmp_prune_exclude_default[k]; k++)
        if (fnmatch(nmp_prune_exclude_default[k], t->name, 0) == 0)
            return false;
    for (int k = 0; k < pr->nexclude; k++)
        if (fnmatch(pr->exclude[k], t->name, 0) == 0)
            return false;
    return true;
}

/* Prunes tensor t (already permuted in dst) as pr asks: with NMP_PRUNE_ALL the whole input
 * axis when nmp_prune_selects it, with NMP_PRUNE_SPACES the consumer slices of active spaces.
 * The saliency reads the activations through the permutations applied to the input axis.
 * Appends what it did to fc->plan->pruned. */
static nmp_err prune_tensor(fill_ctx *fc, const nmp_st_tensor *t, uint8_t *dst, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const nmp_plan *plan = fc->plan;
    const nmp_prune_spec *pr = fc->pr;
    const int axis = input_axis(plan, t);
    const bool all = nmp_prune_selects(plan, pr, t);
    int32_t *map = NULL;
    saltab tab = { NMP_SAL_ABS, NULL, NULL };
    bool any = all;
    for (int64_t s = 0; s < plan->count && !any && pr->mode == NMP_PRUNE_SPACES; s++)
        for (int64_t r = 0; r < plan->spaces[s].nrefs && !plan->spaces[s].skip; r++)
            any |= plan->spaces[s].refs[r].role == NMP_ROLE_CONSUMER &&
                   strcmp(plan->spaces[s].refs[r].tensor, t->name) == 0;
    if (!any || axis >= t->ndim)
        return NMP_OK;
    const nmp_ref whole_ref = { NULL, NMP_ROLE_CONSUMER, NMP_USE_WEIGHT,
                                axis, 0 };
    const tview v = tview_make(t, dst, &whole_ref, NULL);
    double before = 0, after = 0;
    int64_t nonzero = 0;
    for (int64_t k = 0; k < t->numel; k++)
        before += fabs(decode(dst + (size_t)k * v.esize, v.code));
    if (pr->sal.kind != NMP_SAL_ABS) {
        if (!(map = nmp_malloc((size_t)v.C * sizeof *map))) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
        for (int64_t x = 0; x < v.C; x++)
            map[x] = (int32_t)x;
        for (int64_t s = 0; s < plan->count; s++) {
            const nmp_space *sp = &plan->spaces[s];
            for (int64_t r = 0; r < sp->nrefs && !sp->skip && sp->perm; r++) {
                const nmp_ref *ref = &sp->refs[r];
                if (ref->role == NMP_ROLE_CONSUMER && ref->axis == axis &&
                    strcmp(ref->tensor, t->name) == 0)
                    for (int64_t x = 0; x < sp->size; x++)
                        map[ref->offset + x] = (int32_t)(ref->offset + sp->perm[x]);
            }
        }
    }
    char what[300];
    snprintf(what, sizeof what, "pruning %s", t->name);
    NMP_TRY(e, saltab_make(&pr->sal, t, &v, map, what, &tab, msg));
    if (all) {
        NMP_TRY(e, prune_groups(dst, &v, 0, v.C / pr->nm.m, pr->nm, &tab, t->name, msg));
    } else {
        for (int64_t s = 0; s < plan->count; s++) {
            const nmp_space *sp = &plan->spaces[s];
            for (int64_t r = 0; r < sp->nrefs && !sp->skip; r++) {
                const nmp_ref *ref = &sp->refs[r];
                if (ref->role != NMP_ROLE_CONSUMER || strcmp(ref->tensor, t->name) != 0)
                    continue;
                if (ref->offset % pr->nm.m != 0 || ref->axis != axis) {
                    e = nmp_fail(msg, NMP_ERR_ARG, "%s: space %s: offset %lld on axis %d is not "
                                 "a group boundary of %d:%d", t->name, sp->name,
                                 (long long)ref->offset, ref->axis, pr->nm.n, pr->nm.m);
                    goto out;
                }
                NMP_TRY(e, prune_groups(dst, &v, ref->offset / pr->nm.m,
                                        (ref->offset + sp->size) / pr->nm.m, pr->nm, &tab,
                                        t->name, msg));
            }
        }
    }
    for (int64_t k = 0; k < t->numel; k++) {
        const double x = decode(dst + (size_t)k * v.esize, v.code);
        after += fabs(x);
        nonzero += x != 0;
    }
    if (fc->plan) {
        nmp_pruned *grown = nmp_realloc(fc->plan->pruned, (size_t)(fc->plan->npruned + 1) *
                                                              sizeof *grown);
        if (!grown) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
        fc->plan->pruned = grown;
        nmp_pruned *rec = &grown[fc->plan->npruned];
        const size_t len = strlen(t->name) + 1;
        if (!(rec->tensor = nmp_malloc(len))) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
        memcpy(rec->tensor, t->name, len);
        rec->cols = v.C;
        rec->rows = t->numel / v.C;
        rec->density = (double)nonzero / (double)t->numel;
        rec->kept_abs = before > 0 ? after / before : 1;
        fc->plan->npruned++;
    }
out:
    saltab_free(&tab);
    nmp_free(map);
    return e;
}

/* Per tensor: every permutation that touches it, then (with prune) its pruning. */
static nmp_err fill(void *user, const nmp_st_tensor *t, void *dst, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    fill_ctx *fc = user;
    uint8_t *tmp = NULL, *seen = NULL;
    if (fc->stop && fc->stop(fc->stop_user, t)) {
        fc->stopped = true;
        return nmp_fail(msg, NMP_ERR_ARG, "stopped");
    }
    for (int64_t s = 0; s < fc->plan->count; s++) {
        const nmp_space *sp = &fc->plan->spaces[s];
        if (sp->skip || !sp->perm)
            continue;
        for (int64_t r = 0; r < sp->nrefs; r++) {
            const nmp_ref *ref = &sp->refs[r];
            if (strcmp(ref->tensor, t->name) != 0)
                continue;
            if (dtype_code(t->dtype) == DT_OTHER || ref->axis < 0 || ref->axis >= t->ndim ||
                ref->offset < 0 || ref->offset + sp->size > t->shape[ref->axis]) {
                e = nmp_fail(msg, NMP_ERR_ARG, "%s: does not fit space %s (dtype %s, axis "
                             "%d, offset %lld)", t->name, sp->name, t->dtype, ref->axis,
                             (long long)ref->offset);
                goto out;
            }
            const tview v = tview_make(t, dst, ref, NULL);
            nmp_free(tmp);
            nmp_free(seen);
            tmp = nmp_malloc((size_t)v.inner * v.esize);
            seen = nmp_malloc((size_t)sp->size);
            if (!tmp || !seen) {
                e = NMP_ERR_NOMEM;
                goto out;
            }
            permute_slots(dst, &v, sp->perm, sp->size, tmp, seen);
        }
    }
    if (fc->pr->mode != NMP_PRUNE_NONE && dtype_code(t->dtype) != DT_OTHER)
        NMP_TRY(e, prune_tensor(fc, t, dst, msg));
out:
    nmp_free(tmp);
    nmp_free(seen);
    return e;
}

/* Checks what nmp_plan_apply needs of the plan (valid perms, sizes for prune). */
static nmp_err apply_args(const nmp_plan *plan, const nmp_prune_spec *pr, nmp_msg *msg)
{
    const nmp_pattern nm = pr->nm;
    const bool prune = pr->mode != NMP_PRUNE_NONE;
    if (pr->mode < NMP_PRUNE_NONE || pr->mode > NMP_PRUNE_ALL)
        return nmp_fail(msg, NMP_ERR_ARG, "bad prune mode %d", pr->mode);
    if (prune && (nm.m < 2 || nm.m > NMP_MAX_M || nm.n < 1 || nm.n >= nm.m))
        return nmp_fail(msg, NMP_ERR_ARG, "bad N:M pattern %d:%d", nm.n, nm.m);
    for (int64_t s = 0; s < plan->count; s++) {
        const nmp_space *sp = &plan->spaces[s];
        const nmp_err e = sp->skip || !sp->perm ? NMP_OK : nmp_perm_check(sp->perm, sp->size);
        if (e == NMP_ERR_NOMEM)
            return e;
        if (!sp->skip && (e != NMP_OK || (prune && sp->size % nm.m != 0)))
            return nmp_fail(msg, NMP_ERR_ARG, "space %s: bad perm or size %lld", sp->name,
                            (long long)sp->size);
    }
    return NMP_OK;
}

/* Forgets what an earlier write recorded as pruned. */
static void pruned_clear(nmp_plan *plan)
{
    for (int64_t k = 0; k < plan->npruned; k++)
        nmp_free(plan->pruned[k].tensor);
    nmp_free(plan->pruned);
    plan->pruned = NULL;
    plan->npruned = 0;
}

nmp_err nmp_plan_apply(const nmp_st *in, const nmp_plan *plan, int prune, nmp_pattern nm,
                       const char *path, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    nmp_plan copy = *plan; /* records what was pruned in a copy, dropped at the end */
    const nmp_prune_spec pr = { prune, nm, { NMP_SAL_ABS, NULL }, NULL, 0 };
    fill_ctx fc = { &copy, &pr, NULL, NULL, false };
    copy.pruned = NULL;
    copy.npruned = 0;
    NMP_TRY(e, apply_args(plan, &pr, msg));
    e = nmp_st_write(in, path, fill, &fc, msg);
out:
    pruned_clear(&copy);
    return e;
}

nmp_err nmp_plan_apply_to(const nmp_st *in, nmp_plan *plan, const nmp_prune_spec *pr,
                          nmp_atomic *f, int (*stop)(void *user, const nmp_st_tensor *t),
                          void *user, int *stopped, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    fill_ctx fc = { plan, pr, stop, user, false };
    *stopped = 0;
    pruned_clear(plan);
    NMP_TRY(e, apply_args(plan, pr, msg));
    e = nmp_st_write_to(in, f, fill, &fc, msg);
    if (fc.stopped) {
        *stopped = 1;
        e = NMP_OK;
    }
out:
    return e;
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
            const int code = dtype_code(t->dtype);
            const size_t esize = nmp_st_dtype_size(t->dtype);
            const uint8_t *p = nmp_st_bytes(st, t);
            if (code == DT_OTHER)
                continue;
            for (int64_t k = 0; k < t->numel; k++) {
                const double x = decode(p + (size_t)k * esize, code);
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

/* ------------------------------------------------------------ verifying */

static double activate(nmp_act a, double x)
{
    switch (a) {
    case NMP_ACT_RELU: return x > 0 ? x : 0;
    case NMP_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case NMP_ACT_SILU: return x / (1.0 + exp(-x));
    case NMP_ACT_IDENTITY: break;
    }
    return x;
}

/* u = sum_q V(c, q) x[q] over the (outer, inner) index q of a producer weight. */
static double dot_in(const tview *v, int64_t c, const double *x)
{
    double s = 0;
    for (int64_t o = 0; o < v->outer; o++)
        for (int64_t i = 0; i < v->inner; i++)
            s += tv_get(v, o, c, i) * x[o * v->inner + i];
    return s;
}

/* The block of sp on st (through perm): y = [C_1 h; C_2 h; ...], h as in nmperm.h's nmp_use.
 * views holds sp->nrefs resolved views; u, g have size entries; y gets every consumer row. */
static void block(const nmp_space *sp, const tview *views, const double *x, double *u, double *g,
                  double *y)
{
    bool gated = false;
    for (int64_t c = 0; c < sp->size; c++)
        u[c] = g[c] = 0;
    for (int64_t r = 0; r < sp->nrefs; r++) {
        const nmp_ref *ref = &sp->refs[r];
        if (ref->role != NMP_ROLE_PRODUCER)
            continue;
        if (ref->use == NMP_USE_WEIGHT || ref->use == NMP_USE_GATE) {
            double *dst = ref->use == NMP_USE_GATE ? g : u;
            gated |= ref->use == NMP_USE_GATE;
            for (int64_t c = 0; c < sp->size; c++)
                dst[c] += dot_in(&views[r], c, x);
        }
    }
    static const nmp_use order[] = { NMP_USE_BIAS, NMP_USE_GATE_BIAS, NMP_USE_MEAN, NMP_USE_VAR,
                                     NMP_USE_SCALE, NMP_USE_SHIFT };
    for (int k = 0; k < 6; k++)
        for (int64_t r = 0; r < sp->nrefs; r++) {
            if (sp->refs[r].role != NMP_ROLE_PRODUCER || sp->refs[r].use != order[k])
                continue;
            for (int64_t c = 0; c < sp->size; c++) {
                const double p = tv_get(&views[r], 0, c, 0);
                switch (order[k]) {
                case NMP_USE_BIAS: u[c] += p; break;
                case NMP_USE_GATE_BIAS: g[c] += p; break;
                case NMP_USE_MEAN: u[c] -= p; break;
                case NMP_USE_VAR: u[c] /= sqrt(p + 1e-5); break;
                case NMP_USE_SCALE: u[c] *= p; break;
                default: u[c] += p; break;
                }
            }
        }
    for (int64_t c = 0; c < sp->size; c++)
        u[c] = gated ? activate(sp->act, g[c]) * u[c] : activate(sp->act, u[c]);
    int64_t j = 0;
    for (int64_t r = 0; r < sp->nrefs; r++) {
        const tview *v = &views[r];
        if (sp->refs[r].role != NMP_ROLE_CONSUMER)
            continue;
        for (int64_t o = 0; o < v->outer; o++)
            for (int64_t i = 0; i < v->inner; i++, j++) {
                double s = 0;
                for (int64_t c = 0; c < sp->size; c++)
                    s += tv_get(v, o, c, i) * u[c];
                y[j] = s;
            }
    }
}

/* The permutations other spaces of the plan applied to r's tensor on its other axes, undone
 * when reading b: one index map per axis (identity outside the spaces' slices) into maps[axis],
 * which the caller frees. Slices of r's own axis are disjoint from r's (nmp_plan_check): never
 * read here. */
static nmp_err add_others(const nmp_plan *plan, int64_t self, const nmp_ref *r, int32_t **pinv,
                          tview *v, int32_t **maps)
{
    for (int d = 0; d < v->ndim; d++) {
        if (d == r->axis)
            continue;
        for (int64_t s = 0; s < plan->count; s++) {
            const nmp_space *sp = &plan->spaces[s];
            if (s == self || sp->skip || !sp->perm)
                continue;
            for (int64_t k = 0; k < sp->nrefs; k++) {
                const nmp_ref *o = &sp->refs[k];
                if (o->axis != d || strcmp(o->tensor, r->tensor) != 0)
                    continue;
                if (!maps[d]) {
                    if (!(maps[d] = nmp_malloc((size_t)v->shape[d] * sizeof *maps[d])))
                        return NMP_ERR_NOMEM;
                    for (int64_t x = 0; x < v->shape[d]; x++)
                        maps[d][x] = (int32_t)x;
                    v->other[v->nother++] = (tother){ d, maps[d] };
                }
                for (int64_t x = 0; x < sp->size; x++)
                    maps[d][o->offset + x] = (int32_t)(o->offset + pinv[s][x]);
            }
        }
    }
    return NMP_OK;
}

/* One reference of a space checked on its own, `samples` random inputs at once (rng), for a
 * space that is no single block (the residual stream); slot c of b holds a's channel p(c):
 *   consumer:          y = W x over the channel axis, y_b(x') == y_a(x), x'[c] = x[p(c)];
 *   producer weight:   u = W q over the other axes, u_b[c] == u_a[p(c)];
 *   1-D producer:      z = N(v) op t, N a LayerNorm over the space, v' = v permuted:
 *                      z_b(v')[c] == z_a(v)[p(c)]; op is * for a scale, / sqrt(t + eps) for a
 *                      variance, - for a mean, + otherwise.
 * *diff and *scale get max |a - b| and max |a| over every output. */
static nmp_err verify_ref(const nmp_space *sp, const nmp_ref *ref, const tview *va,
                          const tview *vb, nmp_rng *rng, int samples, double *diff,
                          double *scale)
{
    nmp_err e = NMP_OK;
    const int64_t n = sp->size, ins = va->outer * va->inner;
    const int64_t xn = ref->role == NMP_ROLE_CONSUMER ? n
                       : ref->use == NMP_USE_WEIGHT || ref->use == NMP_USE_GATE ? ins
                                                                                : n;
    const int64_t outn = ref->role == NMP_ROLE_CONSUMER ? 1 : n;
    double *x = nmp_malloc((size_t)(samples * xn) * sizeof *x);
    double *ya = nmp_calloc((size_t)(samples * outn), sizeof *ya);
    double *yb = nmp_calloc((size_t)(samples * outn), sizeof *yb);
    if (!x || !ya || !yb) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    for (int64_t q = 0; q < samples * xn; q++)
        x[q] = nmp_rng_normal(rng);
#define P(c) (sp->perm ? (int64_t)sp->perm[c] : (c))
#define TRACK(a, b)                                                                                \
    do {                                                                                           \
        const double d_ = fabs((a) - (b));                                                         \
        *diff = d_ > *diff || d_ != d_ ? d_ : *diff;                                               \
        *scale = NMP_MAX(*scale, fabs(a));                                                         \
    } while (0)
    if (ref->role == NMP_ROLE_CONSUMER) {
        for (int64_t o = 0; o < va->outer; o++)
            for (int64_t i = 0; i < va->inner; i++) {
                for (int k = 0; k < samples; k++)
                    ya[k] = yb[k] = 0;
                for (int64_t c = 0; c < n; c++) {
                    const double wa = tv_get(va, o, c, i), wb = tv_get(vb, o, c, i);
                    for (int k = 0; k < samples; k++) {
                        ya[k] += wa * x[k * n + c];
                        yb[k] += wb * x[k * n + P(c)];
                    }
                }
                for (int k = 0; k < samples; k++)
                    TRACK(ya[k], yb[k]);
            }
    } else if (ref->use == NMP_USE_WEIGHT || ref->use == NMP_USE_GATE) {
        for (int64_t o = 0; o < va->outer; o++)
            for (int64_t c = 0; c < n; c++)
                for (int64_t i = 0; i < va->inner; i++) {
                    const double wa = tv_get(va, o, c, i), wb = tv_get(vb, o, c, i);
                    const int64_t q = o * va->inner + i;
                    for (int k = 0; k < samples; k++) {
                        ya[k * n + c] += wa * x[k * ins + q];
                        yb[k * n + c] += wb * x[k * ins + q];
                    }
                }
        for (int k = 0; k < samples; k++)
            for (int64_t c = 0; c < n; c++)
                TRACK(ya[k * n + P(c)], yb[k * n + c]);
    } else {
        for (int k = 0; k < samples; k++) {
            const double *v = &x[k * n];
            double ma = 0, mb = 0, sa = 0, sb = 0;
            for (int64_t c = 0; c < n; c++) {
                ma += v[c];
                mb += v[P(c)];
            }
            ma /= (double)n;
            mb /= (double)n;
            for (int64_t c = 0; c < n; c++) {
                sa += (v[c] - ma) * (v[c] - ma);
                sb += (v[P(c)] - mb) * (v[P(c)] - mb);
            }
            sa = sqrt(sa / (double)n + 1e-5);
            sb = sqrt(sb / (double)n + 1e-5);
            for (int64_t c = 0; c < n; c++) {
                const double na = (v[c] - ma) / sa, nb = (v[P(c)] - mb) / sb;
                const double ta = tv_get(va, 0, c, 0), tb = tv_get(vb, 0, c, 0);
                double *za = &ya[k * n + c], *zb = &yb[k * n + c];
                switch (ref->use) {
                case NMP_USE_SCALE: *za = na * ta; *zb = nb * tb; break;
                case NMP_USE_VAR:
                    *za = na / sqrt(fabs(ta) + 1e-5);
                    *zb = nb / sqrt(fabs(tb) + 1e-5);
                    break;
                case NMP_USE_MEAN: *za = na - ta; *zb = nb - tb; break;
                default: *za = na + ta; *zb = nb + tb; break;
                }
            }
            for (int64_t c = 0; c < n; c++)
                TRACK(ya[k * n + P(c)], yb[k * n + c]);
        }
    }
#undef TRACK
#undef P
out:
    nmp_free(x);
    nmp_free(ya);
    nmp_free(yb);
    return e;
}

/* Random x (N(0, 1), seeded) through the block of space `self` on a and on b (or, for a space
 * that is no single block, through each of its tensors); the largest output difference relative
 * to the largest output of a. */
nmp_err nmp_space_verify(const nmp_plan *plan, int64_t self, const nmp_st *a, const nmp_st *b,
                         int virtual_perm, uint64_t seed, int samples, double *max_rel,
                         nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const nmp_space *sp = &plan->spaces[self];
    tview *va = nmp_calloc((size_t)sp->nrefs, sizeof *va);
    tview *vb = nmp_calloc((size_t)sp->nrefs, sizeof *vb);
    int32_t **pinv = nmp_calloc((size_t)plan->count, sizeof *pinv);
    int32_t **maps = nmp_calloc((size_t)sp->nrefs * NMP_ST_MAX_DIMS, sizeof *maps);
    double *x = NULL, *u = NULL, *g = NULL, *ya = NULL, *yb = NULL;
    int64_t xdim = -1, ydim = 0;
    int weights = 0;
    *max_rel = 0;
    if (!va || !vb || !pinv || !maps) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    int producers = 0;
    for (int64_t r = 0; r < sp->nrefs; r++) {
        weights += sp->refs[r].role == NMP_ROLE_PRODUCER && sp->refs[r].use == NMP_USE_WEIGHT;
        producers += sp->refs[r].role == NMP_ROLE_PRODUCER;
    }
    if (producers == 0) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: space %s: no producer tensor: nothing to verify "
                     "against", nmp_st_path(a), sp->name);
        goto out;
    }
    const bool one_block = weights == 1;
    for (int64_t s = 0; s < plan->count && !virtual_perm; s++) {
        const nmp_space *o = &plan->spaces[s];
        if (o->skip || !o->perm || s == self)
            continue;
        if (!(pinv[s] = nmp_malloc((size_t)o->size * sizeof *pinv[s]))) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
        nmp_perm_invert(o->perm, pinv[s], o->size);
    }
    for (int64_t r = 0; r < sp->nrefs; r++) {
        const nmp_ref *ref = &sp->refs[r];
        NMP_TRY(e, resolve(a, sp, ref, NULL, &va[r], msg));
        NMP_TRY(e, resolve(b, sp, ref, virtual_perm ? sp->perm : NULL, &vb[r], msg));
        if (!virtual_perm)
            NMP_TRY(e, add_others(plan, self, ref, pinv, &vb[r], &maps[r * NMP_ST_MAX_DIMS]));
        if (va[r].outer != vb[r].outer || va[r].C != vb[r].C || va[r].inner != vb[r].inner) {
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: shape differs from %s", nmp_st_path(b),
                         ref->tensor, nmp_st_path(a));
            goto out;
        }
        const int64_t in = va[r].outer * va[r].inner;
        if (ref->role == NMP_ROLE_CONSUMER) {
            ydim += in;
        } else if (ref->use == NMP_USE_WEIGHT || ref->use == NMP_USE_GATE) {
            if (one_block && xdim >= 0 && xdim != in) {
                e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: %lld inputs, other producers of "
                             "space %s have %lld", nmp_st_path(a), ref->tensor, (long long)in,
                             sp->name, (long long)xdim);
                goto out;
            }
            xdim = in;
        } else if (va[r].outer * va[r].inner != 1) {
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: a %s must be 1-D (space %s)",
                         nmp_st_path(a), ref->tensor, nmp_use_name(ref->use), sp->name);
            goto out;
        }
    }
    nmp_rng rng;
    nmp_rng_seed(&rng, seed);
    if (!one_block) {
        for (int64_t r = 0; r < sp->nrefs; r++) {
            double diff = 0, scale = 0;
            NMP_TRY(e, verify_ref(sp, &sp->refs[r], &va[r], &vb[r], &rng, samples, &diff,
                                  &scale));
            const double rel = diff != diff ? INFINITY : diff / (scale > 0 ? scale : 1.0);
            *max_rel = NMP_MAX(*max_rel, rel);
        }
        goto out;
    }
    x = nmp_malloc((size_t)xdim * sizeof *x);
    u = nmp_malloc((size_t)sp->size * sizeof *u);
    g = nmp_malloc((size_t)sp->size * sizeof *g);
    ya = nmp_malloc((size_t)ydim * sizeof *ya);
    yb = nmp_malloc((size_t)ydim * sizeof *yb);
    if (!x || !u || !g || !ya || !yb) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    double diff = 0, scale = 0;
    for (int k = 0; k < samples; k++) {
        for (int64_t q = 0; q < xdim; q++)
            x[q] = nmp_rng_normal(&rng);
        block(sp, va, x, u, g, ya);
        block(sp, vb, x, u, g, yb);
        for (int64_t j = 0; j < ydim; j++) {
            const double d = fabs(ya[j] - yb[j]);
            diff = d > diff || d != d ? d : diff;
            scale = NMP_MAX(scale, fabs(ya[j]));
        }
    }
    *max_rel = diff != diff ? INFINITY : diff / (scale > 0 ? scale : 1.0);
out:
    for (int64_t s = 0; pinv && s < plan->count; s++)
        nmp_free(pinv[s]);
    for (int64_t k = 0; maps && k < sp->nrefs * NMP_ST_MAX_DIMS; k++)
        nmp_free(maps[k]);
    nmp_free(maps);
    nmp_free(pinv);
    nmp_free(va);
    nmp_free(vb);
    nmp_free(x);
    nmp_free(u);
    nmp_free(g);
    nmp_free(ya);
    nmp_free(yb);
    return e;
}

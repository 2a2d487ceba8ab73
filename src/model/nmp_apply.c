/* nmp_apply.c: a plan applied to a checkpoint: every space's permutation applied to its
 * tensors in place as they are written, then the N:M pruning asked for */
#include "nmp_model.h"

#include <fnmatch.h>
#include <math.h>
#include <string.h>

const char *const nmp_prune_exclude_default[] = {
    "*embed_tokens*", "*embeddings.*", "*wte.*", "*wpe.*", "lm_head*", "*.lm_head*", NULL
};

/* Slot k of every [outer] block gets the old slot perm[k]: cycles followed in place with one
 * slot (inner elements) of scratch, so a tensor is permuted without a second copy. */
static void permute_slots(uint8_t *data, const nmp_tview *v, const int32_t *perm, int64_t n,
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
static nmp_err prune_groups(uint8_t *data, const nmp_tview *v, int64_t glo, int64_t ghi,
                            nmp_pattern nm, const nmp_saltab *tab, const char *name, nmp_msg *msg)
{
    for (int64_t o = 0; o < v->outer; o++)
        for (int64_t i = 0; i < v->inner; i++) {
            const double rs = tab->kind == NMP_SAL_RIA ? nmp_row_abs(v, o, i) : 0;
            for (int64_t g = glo; g < ghi; g++) {
                double a[NMP_MAX_M];
                uint8_t *p[NMP_MAX_M];
                bool keep[NMP_MAX_M] = { false };
                for (int t = 0; t < nm.m; t++) {
                    p[t] = data + (size_t)nmp_tview_index(v, o, g * nm.m + t, i) * v->esize;
                    a[t] = nmp_sal_of(tab, nmp_dtype_decode(p[t], v->code), g * nm.m + t, rs);
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
                    nonzero += nmp_dtype_decode(p[t], v->code) != 0;
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
    if (pr->mode != NMP_PRUNE_ALL || t->ndim != 2 || nmp_dtype_code(t->dtype) == NMP_DT_OTHER)
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
    nmp_saltab tab = { NMP_SAL_ABS, NULL, NULL };
    bool any = all;
    for (int64_t s = 0; s < plan->count && !any && pr->mode == NMP_PRUNE_SPACES; s++)
        for (int64_t r = 0; r < plan->spaces[s].nrefs && !plan->spaces[s].skip; r++)
            any |= plan->spaces[s].refs[r].role == NMP_ROLE_CONSUMER &&
                   strcmp(plan->spaces[s].refs[r].tensor, t->name) == 0;
    if (!any || axis >= t->ndim)
        return NMP_OK;
    const nmp_ref whole_ref = { NULL, NMP_ROLE_CONSUMER, NMP_USE_WEIGHT,
                                axis, 0 };
    const nmp_tview v = nmp_tview_make(t, dst, &whole_ref, NULL);
    double before = 0, after = 0;
    int64_t nonzero = 0;
    for (int64_t k = 0; k < t->numel; k++)
        before += fabs(nmp_dtype_decode(dst + (size_t)k * v.esize, v.code));
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
    NMP_TRY(e, nmp_saltab_make(&pr->sal, t, &v, map, what, &tab, msg));
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
        const double x = nmp_dtype_decode(dst + (size_t)k * v.esize, v.code);
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
    nmp_saltab_free(&tab);
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
            if (nmp_dtype_code(t->dtype) == NMP_DT_OTHER || ref->axis < 0 || ref->axis >= t->ndim ||
                ref->offset < 0 || ref->offset + sp->size > t->shape[ref->axis]) {
                e = nmp_fail(msg, NMP_ERR_ARG, "%s: does not fit space %s (dtype %s, axis "
                             "%d, offset %lld)", t->name, sp->name, t->dtype, ref->axis,
                             (long long)ref->offset);
                goto out;
            }
            const nmp_tview v = nmp_tview_make(t, dst, ref, NULL);
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
    if (fc->pr->mode != NMP_PRUNE_NONE && nmp_dtype_code(t->dtype) != NMP_DT_OTHER)
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

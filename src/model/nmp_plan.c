/* nmp_plan.c: a checkpoint's channel spaces as data: names, building a plan (the presets of
 * nmp_plan_infer.c and the JSON of nmp_plan_json.c fill it), validation against the checkpoint */
#include "nmp_model.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------- names */

static const char *const act_names[] = { "identity", "relu", "gelu", "silu" };
static const char *const use_names[] = { "weight", "bias", "gate", "gate_bias", "scale",
                                         "shift", "mean", "var" };

const char *nmp_act_name(nmp_act a)
{
    return (unsigned)a < 4 ? act_names[a] : "?";
}

const char *nmp_use_name(nmp_use u)
{
    return (unsigned)u < 8 ? use_names[u] : "?";
}

/* ----------------------------------------------------------- building */

char *nmp_strdup(const char *s)
{
    const size_t len = strlen(s);
    char *d = nmp_malloc(len + 1);
    if (d)
        memcpy(d, s, len + 1);
    return d;
}

static void space_clear(nmp_space *sp)
{
    for (int64_t r = 0; r < sp->nrefs; r++)
        nmp_free(sp->refs[r].tensor);
    nmp_free(sp->refs);
    nmp_free(sp->name);
    nmp_free(sp->skip);
    nmp_free(sp->perm);
    memset(sp, 0, sizeof *sp);
}

void nmp_plan_free(nmp_plan *plan)
{
    if (!plan)
        return;
    for (int64_t s = 0; s < plan->count; s++)
        space_clear(&plan->spaces[s]);
    nmp_free(plan->spaces);
    nmp_free(plan->arch);
    for (int64_t k = 0; k < plan->npruned; k++)
        nmp_free(plan->pruned[k].tensor);
    nmp_free(plan->pruned);
    nmp_free(plan);
}

nmp_plan *nmp_plan_new(const char *arch)
{
    nmp_plan *plan = nmp_calloc(1, sizeof *plan);
    if (plan && !(plan->arch = nmp_strdup(arch))) {
        nmp_free(plan);
        plan = NULL;
    }
    return plan;
}

nmp_space *nmp_plan_add_space(nmp_plan *plan, const char *name, int64_t size, nmp_act act)
{
    nmp_space *spaces = nmp_realloc(plan->spaces, (size_t)(plan->count + 1) * sizeof *spaces);
    if (!spaces)
        return NULL;
    plan->spaces = spaces;
    nmp_space *sp = &spaces[plan->count];
    memset(sp, 0, sizeof *sp);
    if (!(sp->name = nmp_strdup(name)))
        return NULL;
    plan->count++;
    sp->size = size;
    sp->act = act;
    sp->stats.verify_rel = -1;
    return sp;
}

nmp_err nmp_space_ref(nmp_space *sp, const char *tensor, nmp_role role, nmp_use use, int axis,
                      int64_t offset)
{
    nmp_ref *refs = nmp_realloc(sp->refs, (size_t)(sp->nrefs + 1) * sizeof *refs);
    if (!refs)
        return NMP_ERR_NOMEM;
    sp->refs = refs;
    nmp_ref *r = &refs[sp->nrefs];
    if (!(r->tensor = nmp_strdup(tensor)))
        return NMP_ERR_NOMEM;
    sp->nrefs++;
    r->role = role;
    r->use = use;
    r->axis = axis;
    r->offset = offset;
    return NMP_OK;
}

nmp_err nmp_space_skip(nmp_space *sp, const char *reason)
{
    nmp_free(sp->skip);
    sp->skip = nmp_strdup(reason);
    return sp->skip ? NMP_OK : NMP_ERR_NOMEM;
}

bool nmp_ends_with(const char *s, const char *suffix)
{
    const size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* ---------------------------------------------------------- validation */

static bool overlap(const nmp_ref *a, int64_t na, const nmp_ref *b, int64_t nb)
{
    return strcmp(a->tensor, b->tensor) == 0 && a->axis == b->axis && a->offset < b->offset + nb &&
           b->offset < a->offset + na;
}

/* A producer "<p>weight" (weight, gate or norm scale) with a 1-D "<p>bias" of as many channels
 * as its permuted axis: the bias belongs to the same space at the same offset, else the output
 * rows and their bias part ways. */
static nmp_err check_siblings(const nmp_space *sp, const nmp_st *st, nmp_msg *msg)
{
    for (int64_t r = 0; r < sp->nrefs; r++) {
        const nmp_ref *ref = &sp->refs[r];
        const size_t len = strlen(ref->tensor);
        if (ref->role != NMP_ROLE_PRODUCER || len < 6 || len > 1000 ||
            (ref->use != NMP_USE_WEIGHT && ref->use != NMP_USE_GATE &&
             ref->use != NMP_USE_SCALE) || !nmp_ends_with(ref->tensor, "weight"))
            continue;
        char bias[1010];
        snprintf(bias, sizeof bias, "%.*sbias", (int)(len - 6), ref->tensor);
        const nmp_st_tensor *w = nmp_st_find(st, ref->tensor), *b = nmp_st_find(st, bias);
        if (!b || b->ndim != 1 || b->shape[0] != w->shape[ref->axis])
            continue;
        bool found = false;
        for (int64_t q = 0; q < sp->nrefs && !found; q++)
            found = sp->refs[q].role == NMP_ROLE_PRODUCER && sp->refs[q].axis == 0 &&
                    sp->refs[q].offset == ref->offset && strcmp(sp->refs[q].tensor, bias) == 0;
        if (!found)
            return nmp_fail(msg, NMP_ERR_FORMAT, "%s: space %s: %s is not in the space at offset "
                            "%lld, but the channels of %s it adds to are permuted",
                            nmp_st_path(st), sp->name, bias, (long long)ref->offset,
                            ref->tensor);
    }
    return NMP_OK;
}

/* Attention tensors by name: the value projection (producer, its head axis; qkv: the value
 * block starts at 2/3 of the axis) and the output projection (consumer, its head axis). */
static const struct attn_name {
    const char *suffix;
    nmp_role role;
    int axis, fused;
} attn_names[] = {
    { "self_attn.v_proj.weight", NMP_ROLE_PRODUCER, 0, 0 },
    { "self_attn.v_proj.bias", NMP_ROLE_PRODUCER, 0, 0 },
    { "attention.self.value.weight", NMP_ROLE_PRODUCER, 0, 0 },
    { "attention.self.value.bias", NMP_ROLE_PRODUCER, 0, 0 },
    { "attn.c_attn.weight", NMP_ROLE_PRODUCER, 1, 1 },
    { "attn.c_attn.bias", NMP_ROLE_PRODUCER, 0, 1 },
    { "self_attn.o_proj.weight", NMP_ROLE_CONSUMER, 1, 0 },
    { "attention.output.dense.weight", NMP_ROLE_CONSUMER, 1, 0 },
    { "attn.c_proj.weight", NMP_ROLE_CONSUMER, 0, 0 },
};

/* With known head counts, an attention value space stays inside one key/value head: its value
 * rows lie in one head, each output-projection column slice in one query head of that head's
 * group. Merging heads passes the per-space check but mixes the heads' softmax weights. */
static nmp_err check_heads(const nmp_plan *plan, const nmp_space *sp, const nmp_st *st,
                           nmp_msg *msg)
{
    const int heads = plan->heads, kv = plan->kv_heads > 0 ? plan->kv_heads : plan->heads;
    int64_t hd = 0, kv_head = -1;
    if (kv <= 0 || heads % kv != 0)
        return NMP_OK;
    for (int pass = 0; pass < 2; pass++)
        for (int64_t r = 0; r < sp->nrefs; r++) {
            const nmp_ref *ref = &sp->refs[r];
            const struct attn_name *a = NULL;
            for (size_t k = 0; k < sizeof attn_names / sizeof attn_names[0] && !a; k++)
                if (nmp_ends_with(ref->tensor, attn_names[k].suffix) &&
                    attn_names[k].role == ref->role && attn_names[k].axis == ref->axis)
                    a = &attn_names[k];
            /* pass 0: the output projection gives the head size; pass 1: the value rows */
            if (!a || (pass == 0) != (a->role == NMP_ROLE_CONSUMER))
                continue;
            const nmp_st_tensor *t = nmp_st_find(st, ref->tensor);
            const int64_t width = t->shape[ref->axis];
            if (pass == 0 && (width % heads != 0 || (hd > 0 && width / heads != hd)))
                continue;
            if (pass == 0)
                hd = width / heads;
            if (hd <= 0)
                break;
            const int64_t off = ref->offset - (a->fused ? width / 3 * 2 : 0);
            const int64_t first = off / hd, last = (off + sp->size - 1) / hd;
            const int64_t group = pass == 0 ? first / (heads / kv) : first;
            if (off < 0 || first != last || (kv_head >= 0 && group != kv_head))
                return nmp_fail(msg, NMP_ERR_FORMAT, "%s: space %s: channels %lld..%lld of %s "
                                "%s (%d heads, %d key/value heads, %lld channels each)",
                                nmp_st_path(st), sp->name, (long long)ref->offset,
                                (long long)(ref->offset + sp->size - 1), ref->tensor,
                                off < 0 || first != last ? "cross a head boundary"
                                                         : "belong to another key/value head",
                                heads, kv, (long long)hd);
            kv_head = group;
        }
    return NMP_OK;
}

/* sp holds `need` shifted by `shift` channels */
static bool holds(const nmp_space *sp, const nmp_ref *need, int64_t shift)
{
    for (int64_t j = 0; j < sp->nrefs; j++)
        if (sp->refs[j].axis == need->axis && sp->refs[j].offset == need->offset + shift &&
            strcmp(sp->refs[j].tensor, need->tensor) == 0)
            return true;
    return false;
}

/* sp against one inferred space `is`: where a reference of sp overlaps one of is, sp holds
 * every tensor of is at the same shift */
static nmp_err check_one(const nmp_space *sp, const nmp_space *is, const nmp_plan *ref,
                         const char *path, nmp_msg *msg)
{
    for (int64_t r = 0; r < sp->nrefs; r++)
        for (int64_t q = 0; q < is->nrefs; q++) {
            if (!overlap(&sp->refs[r], sp->size, &is->refs[q], is->size))
                continue;
            const int64_t shift = sp->refs[r].offset - is->refs[q].offset;
            for (int64_t k = 0; k < is->nrefs; k++) {
                const nmp_ref *need = &is->refs[k];
                if (!holds(sp, need, shift))
                    return nmp_fail(msg, NMP_ERR_FORMAT, "%s: space %s: permutes %s (axis %d) "
                                    "but not %s (axis %d, offset %lld), which the %s preset "
                                    "couples to it (its space %s)", path, sp->name,
                                    sp->refs[r].tensor, sp->refs[r].axis, need->tensor,
                                    need->axis, (long long)(need->offset + shift), ref->arch,
                                    is->name);
            }
        }
    return NMP_OK;
}

/* Channel c of an inferred space sits at offset + c of each of its tensors. A space of the plan
 * that covers some of those channels (one of its references overlaps one of the inferred
 * space's) must hold every tensor of the inferred space, shifted alike, so that the channels
 * move together: a gate left out of a gated MLP, or the up projection, passes the per-space
 * checks and verification (the block is built from the space's own tensors) but changes what
 * the layer computes. */
static nmp_err check_coupled(const nmp_plan *plan, const nmp_plan *ref, const char *path,
                             nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    for (int64_t s = 0; s < plan->count; s++)
        for (int64_t i = 0; i < ref->count; i++)
            if (!plan->spaces[s].skip && !ref->spaces[i].skip)
                NMP_TRY(e, check_one(&plan->spaces[s], &ref->spaces[i], ref, path, msg));
out:
    return e;
}

/* The spaces the preset infers for st (the plan's arch and heads, else auto-detected without
 * heads) against the plan; nothing to compare when no preset recognises the checkpoint. */
static nmp_err check_preset(const nmp_plan *plan, const nmp_st *st, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    nmp_plan *ref = NULL;
    const nmp_plan_opts tries[2] = { { plan->arch, plan->heads, plan->kv_heads, 0 },
                                     { "auto", 0, 0, 0 } };
    for (int t = 0; t < 2 && !ref; t++)
        if ((e = nmp_plan_infer(st, &tries[t], &ref, NULL)) == NMP_ERR_NOMEM)
            goto out;
    e = ref ? check_coupled(plan, ref, nmp_st_path(st), msg) : NMP_OK;
out:
    nmp_plan_free(ref);
    return e;
}

nmp_err nmp_plan_check(nmp_plan *plan, const nmp_st *st, nmp_pattern nm, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const char *path = nmp_st_path(st);
    for (int64_t s = 0; s < plan->count; s++) {
        nmp_space *sp = &plan->spaces[s];
        if (sp->skip)
            continue;
        int consumers = 0, producers = 0;
        for (int64_t r = 0; r < sp->nrefs; r++) {
            const nmp_ref *ref = &sp->refs[r];
            const nmp_st_tensor *t = nmp_st_find(st, ref->tensor);
            consumers += ref->role == NMP_ROLE_CONSUMER;
            producers += ref->role == NMP_ROLE_PRODUCER;
            if (!t) {
                e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: missing (named by space %s)", path,
                             ref->tensor, sp->name);
                goto out;
            }
            if (!nmp_st_dtype_is_float(t->dtype)) {
                e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: dtype %s, expected a float type "
                             "(space %s)", path, t->name, t->dtype, sp->name);
                goto out;
            }
            if (ref->axis < 0 || ref->axis >= t->ndim) {
                e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: axis %d out of range for %d "
                             "dimensions (space %s)", path, t->name, ref->axis, t->ndim,
                             sp->name);
                goto out;
            }
            if (ref->offset < 0 || sp->size < 1 || ref->offset > t->shape[ref->axis] ||
                sp->size > t->shape[ref->axis] - ref->offset) {
                e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: channels %lld..%lld of axis %d are "
                             "out of its %lld (space %s)", path, t->name, (long long)ref->offset,
                             (long long)(ref->offset + sp->size - 1), ref->axis,
                             (long long)t->shape[ref->axis], sp->name);
                goto out;
            }
            if (ref->role == NMP_ROLE_PRODUCER && ref->use != NMP_USE_WEIGHT &&
                ref->use != NMP_USE_GATE && t->ndim != 1) {
                e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: %s must be 1-D, has %d dimensions "
                             "(space %s)", path, t->name, nmp_use_name(ref->use), t->ndim,
                             sp->name);
                goto out;
            }
        }
        if (consumers == 0) {
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: space %s: no consumer tensor", path,
                         sp->name);
            goto out;
        }
        if (producers == 0) {
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: space %s: no producer tensor (permuting the "
                         "consumers' inputs alone changes what they compute)", path, sp->name);
            goto out;
        }
        NMP_TRY(e, check_siblings(sp, st, msg));
        if (plan->heads > 0)
            NMP_TRY(e, check_heads(plan, sp, st, msg));
    }
    /* no channel may be permuted by two spaces (or twice by one) */
    for (int64_t s = 0; s < plan->count; s++)
        for (int64_t r = 0; r < plan->spaces[s].nrefs; r++)
            for (int64_t s2 = s; s2 < plan->count; s2++)
                for (int64_t r2 = s2 == s ? r + 1 : 0; r2 < plan->spaces[s2].nrefs; r2++) {
                    const nmp_space *a = &plan->spaces[s], *b = &plan->spaces[s2];
                    if (a->skip || b->skip ||
                        !overlap(&a->refs[r], a->size, &b->refs[r2], b->size))
                        continue;
                    e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: axis %d is permuted twice "
                                 "(spaces %s and %s overlap)", path, a->refs[r].tensor,
                                 a->refs[r].axis, a->name, b->name);
                    goto out;
                }
    NMP_TRY(e, check_preset(plan, st, msg));
    for (int64_t s = 0; s < plan->count; s++) {
        nmp_space *sp = &plan->spaces[s];
        char why[200];
        if (sp->skip)
            continue;
        if (sp->size % nm.m != 0)
            snprintf(why, sizeof why, "size %lld is not a multiple of M = %d",
                     (long long)sp->size, nm.m);
        else if (sp->size < 2 * nm.m)
            snprintf(why, sizeof why, "size %lld is below 2 M = %d", (long long)sp->size,
                     2 * nm.m);
        else
            continue;
        NMP_TRY(e, nmp_space_skip(sp, why));
        nmp_free(sp->perm);
        sp->perm = NULL;
    }
out:
    return e;
}

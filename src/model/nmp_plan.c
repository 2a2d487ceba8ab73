/* nmp_plan.c: channel spaces of a checkpoint: presets inferred from tensor names, JSON plans,
 * validation against the checkpoint */
#include "nmp_io.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
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

static int find_name(const char *s, const char *(*name)(int), int count)
{
    for (int k = 0; k < count; k++)
        if (strcmp(s, name(k)) == 0)
            return k;
    return -1;
}

static const char *act_at(int k) { return nmp_act_name((nmp_act)k); }
static const char *use_at(int k) { return nmp_use_name((nmp_use)k); }

/* ----------------------------------------------------------- building */

static char *dup_str(const char *s)
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

static nmp_plan *plan_new(const char *arch)
{
    nmp_plan *plan = nmp_calloc(1, sizeof *plan);
    if (plan && !(plan->arch = dup_str(arch))) {
        nmp_free(plan);
        plan = NULL;
    }
    return plan;
}

/* Appends a zeroed space named name (NULL on out of memory). */
static nmp_space *plan_add(nmp_plan *plan, const char *name, int64_t size, nmp_act act)
{
    nmp_space *spaces = nmp_realloc(plan->spaces, (size_t)(plan->count + 1) * sizeof *spaces);
    if (!spaces)
        return NULL;
    plan->spaces = spaces;
    nmp_space *sp = &spaces[plan->count];
    memset(sp, 0, sizeof *sp);
    if (!(sp->name = dup_str(name)))
        return NULL;
    plan->count++;
    sp->size = size;
    sp->act = act;
    sp->stats.verify_rel = -1;
    return sp;
}

static nmp_err space_ref(nmp_space *sp, const char *tensor, nmp_role role, nmp_use use, int axis,
                         int64_t offset)
{
    nmp_ref *refs = nmp_realloc(sp->refs, (size_t)(sp->nrefs + 1) * sizeof *refs);
    if (!refs)
        return NMP_ERR_NOMEM;
    sp->refs = refs;
    nmp_ref *r = &refs[sp->nrefs];
    if (!(r->tensor = dup_str(tensor)))
        return NMP_ERR_NOMEM;
    sp->nrefs++;
    r->role = role;
    r->use = use;
    r->axis = axis;
    r->offset = offset;
    return NMP_OK;
}

static nmp_err space_skip(nmp_space *sp, const char *reason)
{
    nmp_free(sp->skip);
    sp->skip = dup_str(reason);
    return sp->skip ? NMP_OK : NMP_ERR_NOMEM;
}

/* ---------------------------------------------------------- inference */

static bool ends_with(const char *s, const char *suffix)
{
    const size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* Tensor prefix + name, or NULL. */
static const nmp_st_tensor *find2(const nmp_st *st, const char *prefix, const char *name)
{
    char full[1024];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return nmp_st_find(st, full);
}

/* A tensor the preset needs: NMP_ERR_FORMAT naming it when absent or not of ndim dimensions. */
static nmp_err need(const nmp_st *st, const char *prefix, const char *name, int ndim,
                    const nmp_st_tensor **t, nmp_msg *msg)
{
    *t = find2(st, prefix, name);
    if (!*t)
        return nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s%s: missing (the preset couples it)",
                        nmp_st_path(st), prefix, name);
    if ((*t)->ndim != ndim)
        return nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s%s: %d dimensions, expected %d",
                        nmp_st_path(st), prefix, name, (*t)->ndim, ndim);
    return NMP_OK;
}

/* Adds a reference to prefix+name when that tensor exists (optional biases and the like). */
static nmp_err ref_opt(const nmp_st *st, nmp_space *sp, const char *prefix, const char *name,
                       nmp_role role, nmp_use use, int axis, int64_t offset)
{
    char full[1024];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return nmp_st_find(st, full) ? space_ref(sp, full, role, use, axis, offset) : NMP_OK;
}

static nmp_err ref_req(nmp_space *sp, const char *prefix, const char *name, nmp_role role,
                       nmp_use use, int axis, int64_t offset)
{
    char full[1024];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return space_ref(sp, full, role, use, axis, offset);
}

/* Marks sp skipped when one of its tensors is not a float dtype. */
static nmp_err skip_non_float(const nmp_st *st, nmp_space *sp)
{
    nmp_err e = NMP_OK;
    for (int64_t r = 0; r < sp->nrefs && !sp->skip; r++) {
        const nmp_st_tensor *t = nmp_st_find(st, sp->refs[r].tensor);
        if (t && !nmp_st_dtype_is_float(t->dtype)) {
            char why[600];
            snprintf(why, sizeof why, "%s has dtype %s, not a float type", t->name, t->dtype);
            e = space_skip(sp, why);
        }
    }
    return e;
}

/* Per-head attention value spaces: producer rows of head h of `v` (and its bias) at prod_axis,
 * consumed by the column slices of the query heads of that KV group in `o` at cons_axis. */
typedef struct attn_desc {
    const char *v, *vb, *o;  /* names under the layer prefix */
    int prod_axis, cons_axis;
    int64_t v_base;          /* offset of the value block in v (fused qkv) */
} attn_desc;

static nmp_err infer_attn(const nmp_st *st, nmp_plan *plan, const char *prefix,
                          const attn_desc *a, const nmp_plan_opts *o, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const nmp_st_tensor *v = NULL, *out = NULL;
    NMP_TRY(e, need(st, prefix, a->v, 2, &v, msg));
    NMP_TRY(e, need(st, prefix, a->o, 2, &out, msg));
    const int heads = o->heads, kv = o->kv_heads > 0 ? o->kv_heads : o->heads;
    const int64_t width = out->shape[a->cons_axis];
    if (heads <= 0 || kv <= 0 || heads % kv != 0 || width % heads != 0) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s%s: %lld channels do not split into %d heads "
                     "(%d key/value heads)", nmp_st_path(st), prefix, a->o, (long long)width,
                     heads, kv);
        goto out;
    }
    const int64_t hd = width / heads;
    if (v->shape[a->prod_axis] < a->v_base + kv * hd) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s%s: %lld rows, expected %d heads of %lld",
                     nmp_st_path(st), prefix, a->v, (long long)v->shape[a->prod_axis], kv,
                     (long long)hd);
        goto out;
    }
    const int group = heads / kv;
    for (int g = 0; g < kv; g++) {
        char name[1100];
        snprintf(name, sizeof name, "%sattn_v.head%d", prefix, g);
        nmp_space *sp = plan_add(plan, name, hd, NMP_ACT_IDENTITY);
        if (!sp) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
        const int64_t off = a->v_base + g * hd;
        NMP_TRY(e, ref_req(sp, prefix, a->v, NMP_ROLE_PRODUCER, NMP_USE_WEIGHT, a->prod_axis,
                           off));
        if (a->vb)
            NMP_TRY(e, ref_opt(st, sp, prefix, a->vb, NMP_ROLE_PRODUCER, NMP_USE_BIAS, 0, off));
        for (int q = g * group; q < (g + 1) * group; q++)
            NMP_TRY(e, ref_req(sp, prefix, a->o, NMP_ROLE_CONSUMER, NMP_USE_WEIGHT, a->cons_axis,
                               q * hd));
        NMP_TRY(e, skip_non_float(st, sp));
    }
out:
    return e;
}

/* Without head counts the attention value path of a layer cannot be split into heads: one
 * skipped space "<prefix>attn_v" says so in the plan and the report. */
static nmp_err skip_attn(nmp_plan *plan, const char *prefix)
{
    char name[1100];
    snprintf(name, sizeof name, "%sattn_v", prefix);
    nmp_space *sp = plan_add(plan, name, 0, NMP_ACT_IDENTITY);
    return !sp ? NMP_ERR_NOMEM : space_skip(sp, NMP_PLAN_NO_HEADS);
}

/* An MLP space: producer weight rows (and bias, and gate rows) -> consumer columns. */
typedef struct mlp_desc {
    const char *w, *b, *gate, *c;  /* names under the layer prefix; b, gate may be NULL */
    int prod_axis, cons_axis;
    nmp_act act;
} mlp_desc;

static nmp_err infer_mlp(const nmp_st *st, nmp_plan *plan, const char *prefix, const char *name,
                         const mlp_desc *d, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const nmp_st_tensor *w = NULL, *c = NULL, *g = NULL;
    NMP_TRY(e, need(st, prefix, d->w, 2, &w, msg));
    NMP_TRY(e, need(st, prefix, d->c, 2, &c, msg));
    if (d->gate)
        NMP_TRY(e, need(st, prefix, d->gate, 2, &g, msg));
    nmp_space *sp = plan_add(plan, name, w->shape[d->prod_axis], d->act);
    if (!sp) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    if (d->gate)
        NMP_TRY(e, ref_req(sp, prefix, d->gate, NMP_ROLE_PRODUCER, NMP_USE_GATE, d->prod_axis, 0));
    NMP_TRY(e, ref_req(sp, prefix, d->w, NMP_ROLE_PRODUCER, NMP_USE_WEIGHT, d->prod_axis, 0));
    if (d->b)
        NMP_TRY(e, ref_opt(st, sp, prefix, d->b, NMP_ROLE_PRODUCER, NMP_USE_BIAS, 0, 0));
    NMP_TRY(e, ref_req(sp, prefix, d->c, NMP_ROLE_CONSUMER, NMP_USE_WEIGHT, d->cons_axis, 0));
    NMP_TRY(e, skip_non_float(st, sp));
out:
    return e;
}

/* torchvision block: conv_a -> bn_a -> ReLU -> conv_b. */
static nmp_err infer_conv(const nmp_st *st, nmp_plan *plan, const char *prefix, int a, int b,
                          nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    char conv_a[32], conv_b[32], bn[32], name[1100];
    const nmp_st_tensor *wa = NULL, *wb = NULL;
    snprintf(conv_a, sizeof conv_a, "conv%d.weight", a);
    snprintf(conv_b, sizeof conv_b, "conv%d.weight", b);
    NMP_TRY(e, need(st, prefix, conv_a, 4, &wa, msg));
    NMP_TRY(e, need(st, prefix, conv_b, 4, &wb, msg));
    snprintf(name, sizeof name, "%sconv%d", prefix, a);
    nmp_space *sp = plan_add(plan, name, wa->shape[0], NMP_ACT_RELU);
    if (!sp) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    NMP_TRY(e, ref_req(sp, prefix, conv_a, NMP_ROLE_PRODUCER, NMP_USE_WEIGHT, 0, 0));
    snprintf(conv_a, sizeof conv_a, "conv%d.bias", a);
    NMP_TRY(e, ref_opt(st, sp, prefix, conv_a, NMP_ROLE_PRODUCER, NMP_USE_BIAS, 0, 0));
    static const struct { const char *suffix; nmp_use use; } bn_parts[] = {
        { "running_mean", NMP_USE_MEAN }, { "running_var", NMP_USE_VAR },
        { "weight", NMP_USE_SCALE }, { "bias", NMP_USE_SHIFT } };
    for (int k = 0; k < 4; k++) {
        snprintf(bn, sizeof bn, "bn%d.%s", a, bn_parts[k].suffix);
        NMP_TRY(e, ref_opt(st, sp, prefix, bn, NMP_ROLE_PRODUCER, bn_parts[k].use, 0, 0));
    }
    NMP_TRY(e, ref_req(sp, prefix, conv_b, NMP_ROLE_CONSUMER, NMP_USE_WEIGHT, 1, 0));
    NMP_TRY(e, skip_non_float(st, sp));
out:
    return e;
}

/* ------------------------------------------------------ residual stream */

/* One tensor of a residual stream preset: under a layer prefix, or under the model root (the
 * part of a layer prefix before "<list>.<i>.") for the globals; role -1: known to neither read
 * nor write the stream (the unknown-tensor guard accepts it). */
typedef struct res_part {
    const char *name;
    int role;
    nmp_use use;
    int axis;
    bool required;
} res_part;

enum { RC = NMP_ROLE_CONSUMER, RP = NMP_ROLE_PRODUCER, RX = -1 };

static const res_part bert_layer[] = {
    { "attention.self.query.weight", RC, NMP_USE_WEIGHT, 1, true },
    { "attention.self.key.weight", RC, NMP_USE_WEIGHT, 1, true },
    { "attention.self.value.weight", RC, NMP_USE_WEIGHT, 1, true },
    { "attention.output.dense.weight", RP, NMP_USE_WEIGHT, 0, true },
    { "attention.output.dense.bias", RP, NMP_USE_BIAS, 0, false },
    { "attention.output.LayerNorm.weight", RP, NMP_USE_SCALE, 0, true },
    { "attention.output.LayerNorm.bias", RP, NMP_USE_SHIFT, 0, false },
    { "intermediate.dense.weight", RC, NMP_USE_WEIGHT, 1, true },
    { "output.dense.weight", RP, NMP_USE_WEIGHT, 0, true },
    { "output.dense.bias", RP, NMP_USE_BIAS, 0, false },
    { "output.LayerNorm.weight", RP, NMP_USE_SCALE, 0, true },
    { "output.LayerNorm.bias", RP, NMP_USE_SHIFT, 0, false },
    { "attention.self.query.bias", RX, 0, 0, false },
    { "attention.self.key.bias", RX, 0, 0, false },
    { "attention.self.value.bias", RX, 0, 0, false },
    { "intermediate.dense.bias", RX, 0, 0, false },
    { NULL, 0, 0, 0, false } };
static const res_part bert_global[] = {
    { "embeddings.word_embeddings.weight", RP, NMP_USE_WEIGHT, 1, true },
    { "embeddings.position_embeddings.weight", RP, NMP_USE_WEIGHT, 1, false },
    { "embeddings.token_type_embeddings.weight", RP, NMP_USE_WEIGHT, 1, false },
    { "embeddings.LayerNorm.weight", RP, NMP_USE_SCALE, 0, true },
    { "embeddings.LayerNorm.bias", RP, NMP_USE_SHIFT, 0, false },
    { "pooler.dense.weight", RC, NMP_USE_WEIGHT, 1, false },
    { "cls.predictions.transform.dense.weight", RC, NMP_USE_WEIGHT, 1, false },
    { "pooler.dense.bias", RX, 0, 0, false },
    { "cls.predictions.transform.dense.bias", RX, 0, 0, false },
    { "cls.predictions.transform.LayerNorm.weight", RX, 0, 0, false },
    { "cls.predictions.transform.LayerNorm.bias", RX, 0, 0, false },
    { "cls.predictions.decoder.weight", RX, 0, 0, false },  /* reads the transform's output */
    { "cls.predictions.decoder.bias", RX, 0, 0, false },
    { "cls.predictions.bias", RX, 0, 0, false },
    { "cls.seq_relationship.weight", RX, 0, 0, false },     /* reads the pooler's output */
    { "cls.seq_relationship.bias", RX, 0, 0, false },
    { NULL, 0, 0, 0, false } };
static const res_part gpt2_layer[] = {
    { "ln_1.weight", RP, NMP_USE_SCALE, 0, true },
    { "ln_1.bias", RP, NMP_USE_SHIFT, 0, false },
    { "attn.c_attn.weight", RC, NMP_USE_WEIGHT, 0, true },  /* Conv1D: [in, out] */
    { "attn.c_proj.weight", RP, NMP_USE_WEIGHT, 1, true },
    { "attn.c_proj.bias", RP, NMP_USE_BIAS, 0, false },
    { "ln_2.weight", RP, NMP_USE_SCALE, 0, true },
    { "ln_2.bias", RP, NMP_USE_SHIFT, 0, false },
    { "mlp.c_fc.weight", RC, NMP_USE_WEIGHT, 0, true },
    { "mlp.c_proj.weight", RP, NMP_USE_WEIGHT, 1, true },
    { "mlp.c_proj.bias", RP, NMP_USE_BIAS, 0, false },
    { "attn.c_attn.bias", RX, 0, 0, false },
    { "mlp.c_fc.bias", RX, 0, 0, false },
    { "attn.bias", RX, 0, 0, false },         /* causal mask buffers */
    { "attn.masked_bias", RX, 0, 0, false },
    { NULL, 0, 0, 0, false } };
static const res_part gpt2_global[] = {
    { "wte.weight", RP, NMP_USE_WEIGHT, 1, true },  /* also the tied LM head */
    { "wpe.weight", RP, NMP_USE_WEIGHT, 1, false },
    { "ln_f.weight", RP, NMP_USE_SCALE, 0, true },
    { "ln_f.bias", RP, NMP_USE_SHIFT, 0, false },
    { "lm_head.weight", RC, NMP_USE_WEIGHT, 1, false },
    { NULL, 0, 0, 0, false } };
static const res_part llama_layer[] = {
    { "input_layernorm.weight", RP, NMP_USE_SCALE, 0, true },
    { "self_attn.q_proj.weight", RC, NMP_USE_WEIGHT, 1, true },
    { "self_attn.k_proj.weight", RC, NMP_USE_WEIGHT, 1, true },
    { "self_attn.v_proj.weight", RC, NMP_USE_WEIGHT, 1, true },
    { "self_attn.o_proj.weight", RP, NMP_USE_WEIGHT, 0, true },
    { "self_attn.o_proj.bias", RP, NMP_USE_BIAS, 0, false },
    { "post_attention_layernorm.weight", RP, NMP_USE_SCALE, 0, true },
    { "mlp.gate_proj.weight", RC, NMP_USE_WEIGHT, 1, true },
    { "mlp.up_proj.weight", RC, NMP_USE_WEIGHT, 1, true },
    { "mlp.down_proj.weight", RP, NMP_USE_WEIGHT, 0, true },
    { "mlp.down_proj.bias", RP, NMP_USE_BIAS, 0, false },
    { "self_attn.q_proj.bias", RX, 0, 0, false },
    { "self_attn.k_proj.bias", RX, 0, 0, false },
    { "self_attn.v_proj.bias", RX, 0, 0, false },
    { "self_attn.rotary_emb.inv_freq", RX, 0, 0, false },
    { NULL, 0, 0, 0, false } };
static const res_part llama_global[] = {
    { "embed_tokens.weight", RP, NMP_USE_WEIGHT, 1, true },  /* also a tied LM head */
    { "norm.weight", RP, NMP_USE_SCALE, 0, true },
    { "lm_head.weight", RC, NMP_USE_WEIGHT, 1, false },
    { NULL, 0, 0, 0, false } };

/* A global is looked up under the model root, then at the top (lm_head.weight, cls.*). */
static const nmp_st_tensor *find_global(const nmp_st *st, const char *root, const char *name,
                                        char *full, size_t len)
{
    snprintf(full, len, "%s%s", root, name);
    const nmp_st_tensor *t = nmp_st_find(st, full);
    if (!t && root[0]) {
        snprintf(full, len, "%s", name);
        t = nmp_st_find(st, full);
    }
    return t;
}

static bool in_space(const nmp_space *sp, const char *tensor)
{
    for (int64_t r = 0; r < sp->nrefs; r++)
        if (strcmp(sp->refs[r].tensor, tensor) == 0)
            return true;
    return false;
}

/* Adds part p (full name `full`, tensor t or NULL) to the residual space sp of `hidden`
 * channels: a missing required tensor, a wrong rank or an axis of another size is an error. */
static nmp_err res_add(const nmp_st *st, nmp_space *sp, const res_part *p, const char *full,
                       const nmp_st_tensor *t, nmp_msg *msg)
{
    const int ndim = p->use == NMP_USE_WEIGHT ? 2 : 1;
    if (p->role == RX || (!t && !p->required) || (t && in_space(sp, full)))
        return NMP_OK;
    if (!t)
        return nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: missing (the residual stream couples it)",
                        nmp_st_path(st), full);
    if (t->ndim != ndim || t->shape[p->axis] != sp->size)
        return nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: expected %d dimensions with %lld "
                        "channels on axis %d (the residual stream)", nmp_st_path(st), full, ndim,
                        (long long)sp->size, p->axis);
    return space_ref(sp, full, (nmp_role)p->role, p->use, p->axis, 0);
}

/* Whether name is prefix + part for some part of list (any role). */
static bool res_known(const char *name, const char *prefix, const res_part *list)
{
    const size_t lp = strlen(prefix);
    if (strncmp(name, prefix, lp) != 0)
        return false;
    for (const res_part *p = list; p->name; p++)
        if (strcmp(name + lp, p->name) == 0)
            return true;
    return false;
}

/* The residual stream: one space of the hidden size over every layer (prefix + marker names a
 * layer's marker tensor) and the globals. The stream is permutable only as a whole, so a float
 * tensor with a hidden-size axis that the preset does not know (e.g. a task head) is an error
 * rather than a guess. */
static nmp_err infer_residual(const nmp_st *st, nmp_plan *plan, const char *marker,
                              nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const char *arch = plan->arch;
    const bool bert = strcmp(arch, "bert") == 0, gpt2 = strcmp(arch, "gpt2") == 0;
    const res_part *layer = bert ? bert_layer : gpt2 ? gpt2_layer : llama_layer;
    const res_part *global = bert ? bert_global : gpt2 ? gpt2_global : llama_global;
    const char *list = bert ? "layer." : gpt2 ? "h." : "layers.";
    const size_t mlen = strlen(marker);
    char root[1000] = "", full[2100];
    nmp_space *sp = NULL;
    int64_t layers = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int64_t k = 0; k < nmp_st_count(st); k++) {
            const char *tn = nmp_st_tensor_at(st, k)->name;
            const size_t lp = strlen(tn) - mlen;
            if (!ends_with(tn, marker) || lp >= sizeof root)
                continue;
            char prefix[1000];
            snprintf(prefix, sizeof prefix, "%.*s", (int)lp, tn);
            if (pass == 0 && layers++ == 0) {
                /* root: the prefix without "<list><i>." */
                size_t end = lp > 0 ? lp - 1 : 0;
                while (end > 0 && prefix[end - 1] >= '0' && prefix[end - 1] <= '9')
                    end--;
                const size_t ll = strlen(list);
                if (end == lp - 1 || end < ll || strncmp(prefix + end - ll, list, ll) != 0) {
                    e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: layer name not of the form "
                                 "<root>%s<i>.%s (residual stream)", nmp_st_path(st), tn, list,
                                 marker);
                    goto out;
                }
                snprintf(root, sizeof root, "%.*s", (int)(end - ll), prefix);
                const nmp_st_tensor *first = NULL;
                const res_part *c = &layer[gpt2 ? 2 : 1]; /* query / c_attn / q_proj */
                NMP_TRY(e, need(st, prefix, c->name, 2, &first, msg));
                if (!(sp = plan_add(plan, "residual", first->shape[c->axis], NMP_ACT_IDENTITY))) {
                    e = NMP_ERR_NOMEM;
                    goto out;
                }
                for (const res_part *p = global; p->name; p++) {
                    const nmp_st_tensor *t = find_global(st, root, p->name, full, sizeof full);
                    if (p->role == RP)
                        NMP_TRY(e, res_add(st, sp, p, full, t, msg));
                }
            }
            if (pass == 0) {
                for (const res_part *p = layer; p->name; p++) {
                    snprintf(full, sizeof full, "%s%s", prefix, p->name);
                    NMP_TRY(e, res_add(st, sp, p, full, nmp_st_find(st, full), msg));
                }
                continue;
            }
            /* pass 1: every float tensor of this layer with a hidden-size axis is known */
            for (int64_t j = 0; j < nmp_st_count(st); j++) {
                const nmp_st_tensor *t = nmp_st_tensor_at(st, j);
                if (strncmp(t->name, prefix, strlen(prefix)) != 0 || in_space(sp, t->name) ||
                    res_known(t->name, prefix, layer) || !nmp_st_dtype_is_float(t->dtype))
                    continue;
                for (int d = 0; d < t->ndim; d++)
                    if (t->shape[d] == sp->size) {
                        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: not known to the %s residual "
                                     "preset but has %lld channels on axis %d: write a plan file "
                                     "('nmperm plan --residual' prints one to edit)",
                                     nmp_st_path(st), t->name, arch, (long long)sp->size, d);
                        goto out;
                    }
            }
        }
    if (!sp)
        goto out;
    for (const res_part *p = global; p->name; p++) { /* consumers last: the LM head */
        const nmp_st_tensor *t = find_global(st, root, p->name, full, sizeof full);
        if (p->role == RC)
            NMP_TRY(e, res_add(st, sp, p, full, t, msg));
    }
    /* float tensors outside the layers with a hidden-size axis must be known too */
    for (int64_t j = 0; j < nmp_st_count(st); j++) {
        const nmp_st_tensor *t = nmp_st_tensor_at(st, j);
        bool known = in_space(sp, t->name) || !nmp_st_dtype_is_float(t->dtype) ||
                     res_known(t->name, root, global) || res_known(t->name, "", global);
        for (int64_t s = 0; s < plan->count && !known; s++)
            known = in_space(&plan->spaces[s], t->name);
        const size_t lr = strlen(root), ll = strlen(list);
        if (!known && strncmp(t->name, root, lr) == 0 && strncmp(t->name + lr, list, ll) == 0)
            known = true; /* inside a layer: checked above */
        for (int d = 0; d < t->ndim && !known; d++)
            if (t->shape[d] == sp->size) {
                e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: not known to the %s residual preset "
                             "but has %lld channels on axis %d: write a plan file ('nmperm plan "
                             "--residual' prints one to edit)", nmp_st_path(st), t->name, arch,
                             (long long)sp->size, d);
                goto out;
            }
    }
    NMP_TRY(e, skip_non_float(st, sp));
out:
    return e;
}

static const char *detect(const nmp_st *st)
{
    static const struct { const char *suffix, *arch; } marks[] = {
        { "intermediate.dense.weight", "bert" }, { "mlp.c_fc.weight", "gpt2" },
        { "mlp.gate_proj.weight", "llama" }, { "layer1.0.conv1.weight", "resnet" } };
    for (size_t m = 0; m < sizeof marks / sizeof marks[0]; m++)
        for (int64_t k = 0; k < nmp_st_count(st); k++)
            if (ends_with(nmp_st_tensor_at(st, k)->name, marks[m].suffix))
                return marks[m].arch;
    return NULL;
}

/* Every tensor named <prefix><marker>; calls one preset step per prefix. */
static nmp_err infer_arch(const nmp_st *st, nmp_plan *plan, const nmp_plan_opts *o,
                          nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const char *arch = plan->arch;
    const char *marker = strcmp(arch, "bert") == 0    ? "intermediate.dense.weight"
                         : strcmp(arch, "gpt2") == 0  ? "mlp.c_fc.weight"
                         : strcmp(arch, "llama") == 0 ? "mlp.gate_proj.weight"
                                                      : "conv1.weight";
    const size_t mlen = strlen(marker);
    for (int64_t k = 0; k < nmp_st_count(st); k++) {
        const char *tn = nmp_st_tensor_at(st, k)->name;
        if (!ends_with(tn, marker) || strlen(tn) - mlen >= 1000)
            continue;
        char prefix[1000], name[1100];
        snprintf(prefix, sizeof prefix, "%.*s", (int)(strlen(tn) - mlen), tn);
        if (strcmp(arch, "bert") == 0) {
            static const mlp_desc d = { "intermediate.dense.weight", "intermediate.dense.bias",
                                        NULL, "output.dense.weight", 0, 1, NMP_ACT_GELU };
            static const attn_desc a = { "attention.self.value.weight",
                                         "attention.self.value.bias",
                                         "attention.output.dense.weight", 0, 1, 0 };
            snprintf(name, sizeof name, "%smlp", prefix);
            NMP_TRY(e, infer_mlp(st, plan, prefix, name, &d, msg));
            if (o->heads > 0)
                NMP_TRY(e, infer_attn(st, plan, prefix, &a, o, msg));
            else
                NMP_TRY(e, skip_attn(plan, prefix));
        } else if (strcmp(arch, "gpt2") == 0) {
            static const mlp_desc d = { "mlp.c_fc.weight", "mlp.c_fc.bias", NULL,
                                        "mlp.c_proj.weight", 1, 0, NMP_ACT_GELU };
            snprintf(name, sizeof name, "%smlp", prefix);
            NMP_TRY(e, infer_mlp(st, plan, prefix, name, &d, msg));
            const nmp_st_tensor *qkv = find2(st, prefix, "attn.c_attn.weight");
            if (o->heads > 0 && qkv && qkv->ndim == 2) {
                /* Conv1D [hidden, 3 hidden]: the value block is the last third of the columns */
                const attn_desc a = { "attn.c_attn.weight", "attn.c_attn.bias",
                                      "attn.c_proj.weight", 1, 0, 2 * (qkv->shape[1] / 3) };
                nmp_plan_opts mha = *o;
                mha.kv_heads = 0;
                NMP_TRY(e, infer_attn(st, plan, prefix, &a, &mha, msg));
            } else if (qkv && qkv->ndim == 2) {
                NMP_TRY(e, skip_attn(plan, prefix));
            }
        } else if (strcmp(arch, "llama") == 0) {
            static const mlp_desc d = { "mlp.up_proj.weight", NULL, "mlp.gate_proj.weight",
                                        "mlp.down_proj.weight", 0, 1, NMP_ACT_SILU };
            static const attn_desc a = { "self_attn.v_proj.weight", "self_attn.v_proj.bias",
                                         "self_attn.o_proj.weight", 0, 1, 0 };
            snprintf(name, sizeof name, "%smlp", prefix);
            NMP_TRY(e, infer_mlp(st, plan, prefix, name, &d, msg));
            if (o->heads > 0)
                NMP_TRY(e, infer_attn(st, plan, prefix, &a, o, msg));
            else
                NMP_TRY(e, skip_attn(plan, prefix));
        } else if (strstr(prefix, "layer") && find2(st, prefix, "conv2.weight")) {
            NMP_TRY(e, infer_conv(st, plan, prefix, 1, 2, msg));
            if (find2(st, prefix, "conv3.weight"))
                NMP_TRY(e, infer_conv(st, plan, prefix, 2, 3, msg));
        }
    }
    if (plan->count == 0) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: no %s layers found (no tensor named *%s)",
                     nmp_st_path(st), arch, marker);
        goto out;
    }
    if (o->residual)
        NMP_TRY(e, infer_residual(st, plan, marker, msg));
out:
    return e;
}

nmp_err nmp_plan_infer(const nmp_st *st, const nmp_plan_opts *o, nmp_plan **out, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    nmp_plan *plan = NULL;
    const char *arch = o && o->arch ? o->arch : "auto";
    *out = NULL;
    if (strcmp(arch, "mistral") == 0)
        arch = "llama";
    if (strcmp(arch, "auto") == 0 && !(arch = detect(st))) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: architecture not recognised from the tensor "
                     "names (use --arch or --plan)", nmp_st_path(st));
        goto out;
    }
    if (strcmp(arch, "bert") && strcmp(arch, "gpt2") && strcmp(arch, "llama") &&
        strcmp(arch, "resnet")) {
        e = nmp_fail(msg, NMP_ERR_ARG, "unknown arch '%s' (expected auto, bert, gpt2, llama, "
                     "mistral or resnet)", arch);
        goto out;
    }
    if (o && o->residual && strcmp(arch, "resnet") == 0) {
        e = nmp_fail(msg, NMP_ERR_ARG, "the residual stream preset covers bert, gpt2 and llama, "
                     "not resnet (use a plan file)");
        goto out;
    }
    if (!(plan = plan_new(arch))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    plan->heads = o ? o->heads : 0;
    plan->kv_heads = o && o->heads > 0 ? (o->kv_heads > 0 ? o->kv_heads : o->heads) : 0;
    if (strcmp(arch, "gpt2") == 0)
        plan->kv_heads = plan->heads;
    NMP_TRY(e, infer_arch(st, plan, o, msg));
    *out = plan;
    plan = NULL;
out:
    nmp_plan_free(plan);
    return e;
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
             ref->use != NMP_USE_SCALE) || !ends_with(ref->tensor, "weight"))
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
                if (ends_with(ref->tensor, attn_names[k].suffix) &&
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
        NMP_TRY(e, space_skip(sp, why));
        nmp_free(sp->perm);
        sp->perm = NULL;
    }
out:
    return e;
}

/* ---------------------------------------------------------------- JSON */

static json_t *ref_json(const nmp_ref *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "tensor", json_string(r->tensor));
    json_object_set_new(o, "role", json_string(r->role == NMP_ROLE_CONSUMER ? "consumer"
                                                                            : "producer"));
    json_object_set_new(o, "use", json_string(nmp_use_name(r->use)));
    json_object_set_new(o, "axis", json_integer(r->axis));
    json_object_set_new(o, "offset", json_integer(r->offset));
    return o;
}

static json_t *num(double x)
{
    return x == x && x - x == 0 ? json_real(x) : json_null();
}

static json_t *stats_json(const nmp_space_stats *st)
{
    json_t *o = json_object();
    const double gain = st->identity > 0 ? 100.0 * (st->kept - st->identity) / st->identity : 0;
    json_object_set_new(o, "rows", json_integer(st->rows));
    json_object_set_new(o, "cols", json_integer(st->cols));
    json_object_set_new(o, "solver", json_string(st->solver));
    json_object_set_new(o, "status", json_string(nmp_status_str(st->status)));
    json_object_set_new(o, "kept_before", num(st->identity));
    json_object_set_new(o, "kept_after", num(st->kept));
    json_object_set_new(o, "gain_pct", num(gain));
    json_object_set_new(o, "efficacy", num(st->efficacy));
    json_object_set_new(o, "row_bound", num(st->row_bound));
    json_object_set_new(o, "bound", num(st->bound));
    json_object_set_new(o, "gap_pct", st->bound > 0 ? num(100.0 * (st->bound - st->kept) /
                                                           st->bound)
                                                    : json_null());
    json_object_set_new(o, "seconds", num(st->seconds));
    json_object_set_new(o, "verify_max_rel", st->verify_rel >= 0 ? num(st->verify_rel)
                                                                  : json_null());
    return o;
}

static json_t *plan_json(const nmp_plan *plan)
{
    json_t *root = json_object(), *spaces = json_array();
    json_object_set_new(root, "arch", json_string(plan->arch));
    if (plan->nm.m > 0) {
        char nm[32];
        snprintf(nm, sizeof nm, "%d:%d", plan->nm.n, plan->nm.m);
        json_object_set_new(root, "nm", json_string(nm));
    }
    for (int64_t s = 0; s < plan->count; s++) {
        const nmp_space *sp = &plan->spaces[s];
        json_t *o = json_object(), *refs = json_array();
        json_object_set_new(o, "name", json_string(sp->name));
        json_object_set_new(o, "size", json_integer(sp->size));
        json_object_set_new(o, "act", json_string(nmp_act_name(sp->act)));
        if (sp->skip)
            json_object_set_new(o, "skip", json_string(sp->skip));
        for (int64_t r = 0; r < sp->nrefs; r++)
            json_array_append_new(refs, ref_json(&sp->refs[r]));
        json_object_set_new(o, "tensors", refs);
        if (sp->solved)
            json_object_set_new(o, "stats", stats_json(&sp->stats));
        if (sp->perm) {
            json_t *p = json_array();
            for (int64_t k = 0; k < sp->size; k++)
                json_array_append_new(p, json_integer(sp->perm[k]));
            json_object_set_new(o, "perm", p);
        }
        json_array_append_new(spaces, o);
    }
    json_object_set_new(root, "spaces", spaces);
    bool solved = false;
    for (int64_t s = 0; s < plan->count; s++)
        solved |= plan->spaces[s].solved != 0;
    if (solved) {
        json_object_set_new(root, "objective",
                            json_string(nmp_saliency_name((nmp_saliency_kind)plan->objective)));
        json_object_set_new(root, "time_limit", num(plan->time_limit));
        json_object_set_new(root, "reproducible", json_boolean(!(plan->time_limit > 0)));
        if (plan->time_limit > 0)
            json_object_set_new(root, "reproducible_note", json_string(
                "solved under a wall-time limit: the permutations depend on the machine's "
                "speed and load; without --time-limit the work per space is fixed"));
    }
    const nmp_space *res = NULL;
    for (int64_t s = 0; s < plan->count; s++)
        if (strcmp(plan->spaces[s].name, "residual") == 0 && !plan->spaces[s].skip &&
            plan->spaces[s].perm)
            res = &plan->spaces[s];
    if (res)
        json_object_set_new(root, "output_permutation", json_string(
            "the residual stream is permuted: the model's hidden states (BERT / sentence "
            "embeddings, any output_hidden_states) come out with channel k holding original "
            "channel perm[k] of space \"residual\"; undo with h[perm] = h_out (numpy). LM "
            "logits are unchanged"));
    if (plan->npruned > 0) {
        json_t *pr = json_array();
        for (int64_t k = 0; k < plan->npruned; k++) {
            const nmp_pruned *t = &plan->pruned[k];
            json_t *o = json_object();
            json_object_set_new(o, "tensor", json_string(t->tensor));
            json_object_set_new(o, "rows", json_integer(t->rows));
            json_object_set_new(o, "cols", json_integer(t->cols));
            json_object_set_new(o, "density", num(t->density));
            json_object_set_new(o, "kept_abs", num(t->kept_abs));
            json_array_append_new(pr, o);
        }
        json_object_set_new(root, "pruned", pr);
    }
    return root;
}

nmp_err nmp_plan_dumps(const nmp_plan *plan, char **text)
{
    nmp_err e = NMP_OK;
    json_t *root = plan_json(plan);
    char *s = root ? json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER |
                                          JSON_REAL_PRECISION(12))
                   : NULL;
    *text = NULL;
    if (!s) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    if (!(*text = dup_str(s)))
        e = NMP_ERR_NOMEM;
out:
    free(s);
    json_decref(root);
    return e;
}

nmp_err nmp_plan_write(const nmp_plan *plan, const char *path, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    char *text = NULL;
    nmp_atomic f = { 0 };
    NMP_TRY(e, nmp_plan_dumps(plan, &text));
    NMP_TRY(e, nmp_atomic_open(&f, path, msg));
    NMP_TRY(e, nmp_atomic_write(&f, text, strlen(text), msg));
    NMP_TRY(e, nmp_atomic_write(&f, "\n", 1, msg));
    e = nmp_atomic_commit(&f, msg);
out:
    nmp_atomic_abort(&f);
    nmp_free(text);
    return e;
}

/* Reads one space; `where` names it in messages. */
static nmp_err space_from_json(nmp_plan *plan, json_t *o, const char *path, int64_t s,
                               nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    json_t *name = json_object_get(o, "name"), *size = json_object_get(o, "size");
    json_t *act = json_object_get(o, "act"), *skip = json_object_get(o, "skip");
    json_t *refs = json_object_get(o, "tensors"), *perm = json_object_get(o, "perm");
    int a = 0;
    if (!json_is_string(name) || !json_is_integer(size) || !json_is_array(refs) ||
        (act && (!json_is_string(act) ||
                 (a = find_name(json_string_value(act), act_at, 4)) < 0)) ||
        (skip && !json_is_string(skip))) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: space %lld: needs name (string), size (integer), "
                     "tensors (array) and act (identity, relu, gelu or silu)", path,
                     (long long)s);
        goto out;
    }
    const int64_t n = json_integer_value(size);
    if (n < 1 || n > INT32_MAX) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: space %s: size %lld out of range", path,
                     json_string_value(name), (long long)n);
        goto out;
    }
    nmp_space *sp = plan_add(plan, json_string_value(name), n, (nmp_act)a);
    if (!sp) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    if (skip)
        NMP_TRY(e, space_skip(sp, json_string_value(skip)));
    for (size_t r = 0; r < json_array_size(refs); r++) {
        json_t *ro = json_array_get(refs, r);
        json_t *t = json_object_get(ro, "tensor"), *role = json_object_get(ro, "role");
        json_t *use = json_object_get(ro, "use"), *axis = json_object_get(ro, "axis");
        json_t *off = json_object_get(ro, "offset");
        const char *rs = json_is_string(role) ? json_string_value(role) : "";
        const int u = use ? (json_is_string(use) ? find_name(json_string_value(use), use_at, 8)
                                                 : -1)
                          : 0;
        if (!json_is_string(t) || (strcmp(rs, "consumer") && strcmp(rs, "producer")) ||
            !json_is_integer(axis) || (off && !json_is_integer(off)) || u < 0) {
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: space %s: tensor %zu: needs tensor (string), "
                         "role (consumer or producer), axis (integer), optional offset "
                         "(integer) and use (weight, bias, gate, gate_bias, scale, shift, mean, "
                         "var)", path, sp->name, r);
            goto out;
        }
        const json_int_t ax = json_integer_value(axis);
        NMP_TRY(e, space_ref(sp, json_string_value(t),
                             strcmp(rs, "consumer") == 0 ? NMP_ROLE_CONSUMER : NMP_ROLE_PRODUCER,
                             (nmp_use)u, ax < -1 || ax > NMP_ST_MAX_DIMS ? -1 : (int)ax,
                             off ? json_integer_value(off) : 0));
    }
    if (perm && !json_is_null(perm)) {
        if (!json_is_array(perm) || (int64_t)json_array_size(perm) != n) {
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: space %s: perm must hold %lld integers",
                         path, sp->name, (long long)n);
            goto out;
        }
        if (!(sp->perm = nmp_malloc((size_t)n * sizeof *sp->perm))) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
        for (int64_t k = 0; k < n; k++) {
            json_t *v = json_array_get(perm, (size_t)k);
            const json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;
            sp->perm[k] = x < 0 || x >= n ? -1 : (int32_t)x;
        }
        if (!nmp_perm_is_valid(sp->perm, n)) {
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: space %s: perm is not a permutation of "
                         "0..%lld", path, sp->name, (long long)n - 1);
            goto out;
        }
    }
out:
    return e;
}

nmp_err nmp_plan_read(const char *path, nmp_plan **out, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    nmp_plan *plan = NULL;
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    *out = NULL;
    if (!root) {
        e = nmp_fail(msg, jerr.line < 0 ? NMP_ERR_IO : NMP_ERR_FORMAT, "%s: %s", path,
                     jerr.text);
        goto out;
    }
    json_t *arch = json_object_get(root, "arch"), *spaces = json_object_get(root, "spaces");
    json_t *nm = json_object_get(root, "nm");
    if (!json_is_array(spaces) || (arch && !json_is_string(arch)) ||
        (nm && !json_is_string(nm))) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: expected an object with \"spaces\" (array), "
                     "optional \"arch\" and \"nm\" (strings)", path);
        goto out;
    }
    if (!(plan = plan_new(arch ? json_string_value(arch) : "custom"))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    if (nm && nmp_pattern_parse(json_string_value(nm), &plan->nm, NULL) != NMP_OK) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: bad nm '%s'", path, json_string_value(nm));
        goto out;
    }
    for (size_t s = 0; s < json_array_size(spaces); s++)
        NMP_TRY(e, space_from_json(plan, json_array_get(spaces, s), path, (int64_t)s, msg));
    *out = plan;
    plan = NULL;
out:
    json_decref(root);
    nmp_plan_free(plan);
    return e;
}

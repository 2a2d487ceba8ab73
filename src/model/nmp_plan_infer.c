/* nmp_plan_infer.c: presets: the channel spaces of bert, gpt2, llama and resnet checkpoints
 * inferred from tensor names, and the residual stream of the transformers */
#include "nmp_model.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------- steps */

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
    return nmp_st_find(st, full) ? nmp_space_ref(sp, full, role, use, axis, offset) : NMP_OK;
}

static nmp_err ref_req(nmp_space *sp, const char *prefix, const char *name, nmp_role role,
                       nmp_use use, int axis, int64_t offset)
{
    char full[1024];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return nmp_space_ref(sp, full, role, use, axis, offset);
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
            e = nmp_space_skip(sp, why);
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
        nmp_space *sp = nmp_plan_add_space(plan, name, hd, NMP_ACT_IDENTITY);
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
    nmp_space *sp = nmp_plan_add_space(plan, name, 0, NMP_ACT_IDENTITY);
    return !sp ? NMP_ERR_NOMEM : nmp_space_skip(sp, NMP_PLAN_NO_HEADS);
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
    nmp_space *sp = nmp_plan_add_space(plan, name, w->shape[d->prod_axis], d->act);
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
    nmp_space *sp = nmp_plan_add_space(plan, name, wa->shape[0], NMP_ACT_RELU);
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

/* ------------------------------------------------------------- presets */

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

/* The rows of the tables, by what a tensor does to the stream: a weight that reads it on axis
 * `in`; a linear layer "<name>.weight" (and its optional bias) that writes it on axis `out`; a
 * norm with a scale "<name>.weight" (and an optional shift "<name>.bias", NORM) or without
 * (SCALE); an embedding that writes it on axis 1; a head that reads it on axis 1 when present;
 * a tensor that does neither. WRITES and NORM stand for two rows. */
#define READS(name, in) { name, RC, NMP_USE_WEIGHT, in, true }
#define WRITES(name, out)                                                                        \
    { name ".weight", RP, NMP_USE_WEIGHT, out, true }, { name ".bias", RP, NMP_USE_BIAS, 0, false }
#define NORM(name)                                                                               \
    { name ".weight", RP, NMP_USE_SCALE, 0, true }, { name ".bias", RP, NMP_USE_SHIFT, 0, false }
#define SCALE(name) { name ".weight", RP, NMP_USE_SCALE, 0, true }
#define EMBED(name, required) { name, RP, NMP_USE_WEIGHT, 1, required }
#define HEAD(name) { name, RC, NMP_USE_WEIGHT, 1, false }
#define OTHER(name) { name, RX, 0, 0, false }
#define END { NULL, 0, 0, 0, false }

static const res_part bert_layer[] = {
    READS("attention.self.query.weight", 1), READS("attention.self.key.weight", 1),
    READS("attention.self.value.weight", 1), WRITES("attention.output.dense", 0),
    NORM("attention.output.LayerNorm"), READS("intermediate.dense.weight", 1),
    WRITES("output.dense", 0), NORM("output.LayerNorm"),
    OTHER("attention.self.query.bias"), OTHER("attention.self.key.bias"),
    OTHER("attention.self.value.bias"), OTHER("intermediate.dense.bias"), END };
static const res_part bert_global[] = {
    EMBED("embeddings.word_embeddings.weight", true),
    EMBED("embeddings.position_embeddings.weight", false),
    EMBED("embeddings.token_type_embeddings.weight", false), NORM("embeddings.LayerNorm"),
    HEAD("pooler.dense.weight"), HEAD("cls.predictions.transform.dense.weight"),
    OTHER("pooler.dense.bias"), OTHER("cls.predictions.transform.dense.bias"),
    OTHER("cls.predictions.transform.LayerNorm.weight"),
    OTHER("cls.predictions.transform.LayerNorm.bias"),
    OTHER("cls.predictions.decoder.weight"), /* reads the transform's output */
    OTHER("cls.predictions.decoder.bias"), OTHER("cls.predictions.bias"),
    OTHER("cls.seq_relationship.weight"),    /* reads the pooler's output */
    OTHER("cls.seq_relationship.bias"), END };
static const res_part gpt2_layer[] = {       /* Conv1D weights are [in, out] */
    NORM("ln_1"), READS("attn.c_attn.weight", 0), WRITES("attn.c_proj", 1), NORM("ln_2"),
    READS("mlp.c_fc.weight", 0), WRITES("mlp.c_proj", 1),
    OTHER("attn.c_attn.bias"), OTHER("mlp.c_fc.bias"),
    OTHER("attn.bias"), OTHER("attn.masked_bias"), /* causal mask buffers */
    END };
static const res_part gpt2_global[] = {
    EMBED("wte.weight", true), /* also the tied LM head */
    EMBED("wpe.weight", false), NORM("ln_f"), HEAD("lm_head.weight"), END };
static const res_part llama_layer[] = {
    SCALE("input_layernorm"), READS("self_attn.q_proj.weight", 1),
    READS("self_attn.k_proj.weight", 1), READS("self_attn.v_proj.weight", 1),
    WRITES("self_attn.o_proj", 0), SCALE("post_attention_layernorm"),
    READS("mlp.gate_proj.weight", 1), READS("mlp.up_proj.weight", 1), WRITES("mlp.down_proj", 0),
    OTHER("self_attn.q_proj.bias"), OTHER("self_attn.k_proj.bias"),
    OTHER("self_attn.v_proj.bias"), OTHER("self_attn.rotary_emb.inv_freq"), END };
static const res_part llama_global[] = {
    EMBED("embed_tokens.weight", true), /* also a tied LM head */
    SCALE("norm"), HEAD("lm_head.weight"), END };

#undef READS
#undef WRITES
#undef NORM
#undef SCALE
#undef EMBED
#undef HEAD
#undef OTHER
#undef END

/* An architecture: the tensor that marks each block (<prefix><marker>, one step per prefix),
 * what a block holds, and the residual stream of the transformers. */
typedef struct preset preset;
typedef nmp_err (*block_fn)(const nmp_st *st, nmp_plan *plan, const char *prefix,
                            const preset *p, const nmp_plan_opts *o, nmp_msg *msg);
struct preset {
    const char *arch;
    const char *detect;     /* a tensor name suffix that tells the architecture (--arch auto) */
    const char *marker;
    block_fn block;
    mlp_desc mlp;
    attn_desc attn;
    bool fused;             /* attn.v is a fused qkv, its value block the last third of its
                             * columns; key/value heads = heads (no GQA) */
    const char *list;       /* blocks are <root><list><i>. (the residual stream) */
    const res_part *layer, *global;
    int width;              /* layer[width] (a reader of the stream) gives the hidden size */
};

/* A transformer block: its MLP space, then one attention value space per key/value head (with
 * head counts), or one skipped space saying they are missing. */
static nmp_err infer_transformer(const nmp_st *st, nmp_plan *plan, const char *prefix,
                                 const preset *p, const nmp_plan_opts *o, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    char name[1100];
    attn_desc a = p->attn;
    nmp_plan_opts heads = *o;
    snprintf(name, sizeof name, "%smlp", prefix);
    NMP_TRY(e, infer_mlp(st, plan, prefix, name, &p->mlp, msg));
    if (p->fused) {
        const nmp_st_tensor *qkv = find2(st, prefix, a.v);
        if (!qkv || qkv->ndim != 2)
            goto out;
        a.v_base = 2 * (qkv->shape[1] / 3);
        heads.kv_heads = 0;
    }
    if (o->heads > 0)
        NMP_TRY(e, infer_attn(st, plan, prefix, &a, &heads, msg));
    else
        NMP_TRY(e, skip_attn(plan, prefix));
out:
    return e;
}

/* A torchvision block (the prefix names a layer): conv1 -> conv2, and conv2 -> conv3 in a
 * bottleneck. */
static nmp_err infer_resnet(const nmp_st *st, nmp_plan *plan, const char *prefix,
                            const preset *p, const nmp_plan_opts *o, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    (void)p;
    (void)o;
    if (strstr(prefix, "layer") && find2(st, prefix, "conv2.weight")) {
        NMP_TRY(e, infer_conv(st, plan, prefix, 1, 2, msg));
        if (find2(st, prefix, "conv3.weight"))
            NMP_TRY(e, infer_conv(st, plan, prefix, 2, 3, msg));
    }
out:
    return e;
}

/* In the order --arch auto tries them. */
static const preset presets[] = {
    { .arch = "bert", .detect = "intermediate.dense.weight",
      .marker = "intermediate.dense.weight", .block = infer_transformer,
      .mlp = { "intermediate.dense.weight", "intermediate.dense.bias", NULL,
               "output.dense.weight", 0, 1, NMP_ACT_GELU },
      .attn = { "attention.self.value.weight", "attention.self.value.bias",
                "attention.output.dense.weight", 0, 1, 0 },
      .list = "layer.", .layer = bert_layer, .global = bert_global, .width = 1 },
    { .arch = "gpt2", .detect = "mlp.c_fc.weight", .marker = "mlp.c_fc.weight",
      .block = infer_transformer,
      .mlp = { "mlp.c_fc.weight", "mlp.c_fc.bias", NULL, "mlp.c_proj.weight", 1, 0,
               NMP_ACT_GELU },
      .attn = { "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", 1, 0, 0 },
      .fused = true, .list = "h.", .layer = gpt2_layer, .global = gpt2_global, .width = 2 },
    { .arch = "llama", .detect = "mlp.gate_proj.weight", .marker = "mlp.gate_proj.weight",
      .block = infer_transformer,
      .mlp = { "mlp.up_proj.weight", NULL, "mlp.gate_proj.weight", "mlp.down_proj.weight", 0, 1,
               NMP_ACT_SILU },
      .attn = { "self_attn.v_proj.weight", "self_attn.v_proj.bias", "self_attn.o_proj.weight", 0,
                1, 0 },
      .list = "layers.", .layer = llama_layer, .global = llama_global, .width = 1 },
    { .arch = "resnet", .detect = "layer1.0.conv1.weight", .marker = "conv1.weight",
      .block = infer_resnet },
};
enum { NPRESETS = sizeof presets / sizeof presets[0] };

/* ------------------------------------------------------ residual stream */

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
    return nmp_space_ref(sp, full, (nmp_role)p->role, p->use, p->axis, 0);
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
static nmp_err infer_residual(const nmp_st *st, nmp_plan *plan, const preset *pre,
                              nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const char *arch = pre->arch, *marker = pre->marker, *list = pre->list;
    const res_part *layer = pre->layer, *global = pre->global;
    const size_t mlen = strlen(marker);
    char root[1000] = "", full[2100];
    nmp_space *sp = NULL;
    int64_t layers = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int64_t k = 0; k < nmp_st_count(st); k++) {
            const char *tn = nmp_st_tensor_at(st, k)->name;
            const size_t lp = strlen(tn) - mlen;
            if (!nmp_ends_with(tn, marker) || lp >= sizeof root)
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
                const res_part *c = &layer[pre->width];
                NMP_TRY(e, need(st, prefix, c->name, 2, &first, msg));
                if (!(sp = nmp_plan_add_space(plan, "residual", first->shape[c->axis],
                                              NMP_ACT_IDENTITY))) {
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

static const preset *detect(const nmp_st *st)
{
    for (int m = 0; m < NPRESETS; m++)
        for (int64_t k = 0; k < nmp_st_count(st); k++)
            if (nmp_ends_with(nmp_st_tensor_at(st, k)->name, presets[m].detect))
                return &presets[m];
    return NULL;
}

/* Every tensor named <prefix><marker>; calls one preset step per prefix. */
static nmp_err infer_arch(const nmp_st *st, nmp_plan *plan, const preset *p,
                          const nmp_plan_opts *o, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const size_t mlen = strlen(p->marker);
    for (int64_t k = 0; k < nmp_st_count(st); k++) {
        const char *tn = nmp_st_tensor_at(st, k)->name;
        if (!nmp_ends_with(tn, p->marker) || strlen(tn) - mlen >= 1000)
            continue;
        char prefix[1000];
        snprintf(prefix, sizeof prefix, "%.*s", (int)(strlen(tn) - mlen), tn);
        NMP_TRY(e, p->block(st, plan, prefix, p, o, msg));
    }
    if (plan->count == 0) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: no %s layers found (no tensor named *%s)",
                     nmp_st_path(st), p->arch, p->marker);
        goto out;
    }
    if (o->residual)
        NMP_TRY(e, infer_residual(st, plan, p, msg));
out:
    return e;
}

nmp_err nmp_plan_infer(const nmp_st *st, const nmp_plan_opts *o, nmp_plan **out, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    nmp_plan *plan = NULL;
    const preset *p = NULL;
    const char *arch = o && o->arch ? o->arch : "auto";
    *out = NULL;
    if (strcmp(arch, "mistral") == 0)
        arch = "llama";
    if (strcmp(arch, "auto") == 0 && !(p = detect(st))) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: architecture not recognised from the tensor "
                     "names (use --arch or --plan)", nmp_st_path(st));
        goto out;
    }
    for (int k = 0; k < NPRESETS && !p; k++)
        if (strcmp(arch, presets[k].arch) == 0)
            p = &presets[k];
    if (!p) {
        e = nmp_fail(msg, NMP_ERR_ARG, "unknown arch '%s' (expected auto, bert, gpt2, llama, "
                     "mistral or resnet)", arch);
        goto out;
    }
    if (o && o->residual && !p->layer) {
        e = nmp_fail(msg, NMP_ERR_ARG, "the residual stream preset covers bert, gpt2 and llama, "
                     "not %s (use a plan file)", p->arch);
        goto out;
    }
    if (!(plan = nmp_plan_new(p->arch))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    plan->heads = o ? o->heads : 0;
    plan->kv_heads = o && o->heads > 0 ? (o->kv_heads > 0 ? o->kv_heads : o->heads) : 0;
    if (p->fused)
        plan->kv_heads = plan->heads;
    NMP_TRY(e, infer_arch(st, plan, p, o, msg));
    *out = plan;
    plan = NULL;
out:
    nmp_plan_free(plan);
    return e;
}

/* test_nmp_plan.c: channel-space inference per arch, JSON round trip, validation errors */
#include "nmp_test_ckpt.h"

#include "nmp_model.h"

static nmp_st *open_st(const char *name, const test_tensor *t, int count)
{
    char path[512];
    nmp_st *st = NULL;
    test_path(path, sizeof path, name);
    test_write_st(path, t, count, 7);
    nmp_assert_ok(nmp_st_open(path, &st, NULL));
    unlink(path); /* the mapping stays valid */
    return st;
}

static const test_tensor bert[] = {
    { "encoder.layer.0.attention.self.value.weight", "F32", 2, { 16, 16 } },
    { "encoder.layer.0.attention.self.value.bias", "F32", 1, { 16 } },
    { "encoder.layer.0.attention.output.dense.weight", "F32", 2, { 16, 16 } },
    { "encoder.layer.0.intermediate.dense.weight", "F32", 2, { 32, 16 } },
    { "encoder.layer.0.intermediate.dense.bias", "F32", 1, { 32 } },
    { "encoder.layer.0.output.dense.weight", "F32", 2, { 16, 32 } },
    { "embeddings.position_ids", "I64", 2, { 1, 8 } },
};

static const nmp_ref *find_ref(const nmp_space *sp, const char *tensor, int64_t offset)
{
    for (int64_t r = 0; r < sp->nrefs; r++)
        if (strcmp(sp->refs[r].tensor, tensor) == 0 && sp->refs[r].offset == offset)
            return &sp->refs[r];
    return NULL;
}

static void test_infer_bert(void **state)
{
    (void)state;
    nmp_st *st = open_st("bert.safetensors", bert, 7);
    nmp_plan *plan = NULL;
    nmp_plan_opts o = { "auto", 0, 0, 0 };
    nmp_assert_ok(nmp_plan_infer(st, &o, &plan, NULL));
    assert_string_equal(plan->arch, "bert");
    /* no heads known: the MLP, and the value path skipped, saying why */
    assert_int_equal(plan->count, 2);
    assert_string_equal(plan->spaces[1].name, "encoder.layer.0.attn_v");
    assert_non_null(plan->spaces[1].skip);
    assert_string_equal(plan->spaces[1].skip, NMP_PLAN_NO_HEADS);
    assert_int_equal(plan->heads, 0);
    nmp_assert_ok(nmp_plan_check(plan, st, (nmp_pattern){ 2, 4 }, NULL));
    const nmp_space *sp = &plan->spaces[0];
    assert_int_equal(sp->size, 32);
    assert_int_equal(sp->act, NMP_ACT_GELU);
    const nmp_ref *c = find_ref(sp, "encoder.layer.0.output.dense.weight", 0);
    assert_non_null(c);
    assert_int_equal(c->role, NMP_ROLE_CONSUMER);
    assert_int_equal(c->axis, 1);
    assert_non_null(find_ref(sp, "encoder.layer.0.intermediate.dense.bias", 0));
    nmp_plan_free(plan);
    o.heads = 2;
    nmp_assert_ok(nmp_plan_infer(st, &o, &plan, NULL));
    assert_int_equal(plan->count, 3);
    sp = &plan->spaces[2]; /* head 1: value rows 8..15 -> output columns 8..15 */
    assert_int_equal(sp->size, 8);
    assert_int_equal(find_ref(sp, "encoder.layer.0.attention.self.value.weight", 8)->axis, 0);
    assert_int_equal(find_ref(sp, "encoder.layer.0.attention.output.dense.weight", 8)->axis, 1);
    nmp_assert_ok(nmp_plan_check(plan, st, (nmp_pattern){ 2, 4 }, NULL));
    assert_null(plan->spaces[1].skip);
    nmp_assert_ok(nmp_plan_check(plan, st, (nmp_pattern){ 2, 8 }, NULL));
    assert_non_null(plan->spaces[1].skip); /* 8 < 2 M */
    assert_null(plan->spaces[0].skip);
    nmp_plan_free(plan);
    nmp_st_close(st);
}

/* Removes the one reference of sp whose tensor name contains needle. */
static void drop_ref(nmp_space *sp, const char *needle)
{
    int64_t kept = 0;
    for (int64_t r = 0; r < sp->nrefs; r++) {
        if (strstr(sp->refs[r].tensor, needle))
            nmp_free(sp->refs[r].tensor);
        else
            sp->refs[kept++] = sp->refs[r];
    }
    assert_int_equal(kept, sp->nrefs - 1);
    sp->nrefs = kept;
}

static void test_infer_llama_gqa(void **state)
{
    (void)state;
    static const test_tensor t[] = {
        { "model.layers.0.self_attn.v_proj.weight", "F32", 2, { 16, 32 } },  /* 2 KV x 8 */
        { "model.layers.0.self_attn.o_proj.weight", "F32", 2, { 32, 32 } },  /* 4 heads x 8 */
        { "model.layers.0.mlp.gate_proj.weight", "F16", 2, { 64, 32 } },
        { "model.layers.0.mlp.up_proj.weight", "F16", 2, { 64, 32 } },
        { "model.layers.0.mlp.down_proj.weight", "F16", 2, { 32, 64 } },
    };
    nmp_st *st = open_st("llama.safetensors", t, 5);
    nmp_plan *plan = NULL;
    const nmp_plan_opts o = { "auto", 4, 2, 0 };
    nmp_assert_ok(nmp_plan_infer(st, &o, &plan, NULL));
    assert_string_equal(plan->arch, "llama");
    assert_int_equal(plan->count, 3);
    assert_int_equal(plan->spaces[0].act, NMP_ACT_SILU);
    assert_int_equal(find_ref(&plan->spaces[0], "model.layers.0.mlp.gate_proj.weight", 0)->use,
                     NMP_USE_GATE);
    const nmp_space *kv1 = &plan->spaces[2]; /* KV head 1 serves query heads 2 and 3 */
    assert_int_equal(kv1->nrefs, 3);
    assert_non_null(find_ref(kv1, "model.layers.0.self_attn.v_proj.weight", 8));
    assert_non_null(find_ref(kv1, "model.layers.0.self_attn.o_proj.weight", 16));
    assert_non_null(find_ref(kv1, "model.layers.0.self_attn.o_proj.weight", 24));
    nmp_assert_ok(nmp_plan_check(plan, st, (nmp_pattern){ 2, 4 }, NULL));
    /* the MLP without its gate (or without up_proj) is refused: up and down would move, the
     * gate would not, and verification (built from the space's own tensors) cannot see it */
    for (int drop = 0; drop < 2; drop++) {
        nmp_plan *cut = NULL;
        nmp_msg msg = { { 0 } };
        nmp_assert_ok(nmp_plan_infer(st, &o, &cut, NULL));
        drop_ref(&cut->spaces[0], drop ? "up_proj" : "gate_proj");
        assert_int_equal(nmp_plan_check(cut, st, (nmp_pattern){ 2, 4 }, &msg), NMP_ERR_FORMAT);
        if (!strstr(msg.text, drop ? "but not model.layers.0.mlp.up_proj.weight (axis 0"
                                   : "but not model.layers.0.mlp.gate_proj.weight (axis 0"))
            fail_msg("%s", msg.text);
        nmp_plan_free(cut);
    }
    /* the MLP as two spaces of 32 channels (every tensor at offsets 0 and 32) moves channels
     * together: accepted */
    nmp_plan *halves = NULL;
    nmp_assert_ok(nmp_plan_infer(st, &o, &halves, NULL));
    nmp_space *h0 = &halves->spaces[0];
    h0->size = 32;
    nmp_space *h1 = nmp_plan_add_space(halves, "mlp.upper", 32, NMP_ACT_SILU);
    assert_non_null(h1);
    h0 = &halves->spaces[0]; /* the add may have moved the array */
    for (int64_t r = 0; r < h0->nrefs; r++)
        nmp_assert_ok(nmp_space_ref(h1, h0->refs[r].tensor, h0->refs[r].role, h0->refs[r].use,
                                    h0->refs[r].axis, 32));
    nmp_assert_ok(nmp_plan_check(halves, st, (nmp_pattern){ 2, 4 }, NULL));
    drop_ref(&halves->spaces[halves->count - 1], "gate_proj"); /* without the upper gate: refused */
    assert_int_equal(nmp_plan_check(halves, st, (nmp_pattern){ 2, 4 }, NULL), NMP_ERR_FORMAT);
    nmp_plan_free(halves);
    nmp_plan_free(plan);
    nmp_st_close(st);
}

static void test_infer_gpt2_resnet(void **state)
{
    (void)state;
    static const test_tensor g[] = {
        { "h.0.attn.bias", "I64", 4, { 1, 1, 4, 4 } },
        { "h.0.mlp.c_fc.weight", "F32", 2, { 8, 32 } },
        { "h.0.mlp.c_fc.bias", "F32", 1, { 32 } },
        { "h.0.mlp.c_proj.weight", "F32", 2, { 32, 8 } },
    };
    nmp_st *st = open_st("gpt2.safetensors", g, 4);
    nmp_plan *plan = NULL;
    const nmp_plan_opts o = { "auto", 0, 0, 0 };
    nmp_assert_ok(nmp_plan_infer(st, &o, &plan, NULL));
    assert_string_equal(plan->arch, "gpt2");
    assert_int_equal(plan->count, 1);
    assert_int_equal(find_ref(&plan->spaces[0], "h.0.mlp.c_fc.weight", 0)->axis, 1);
    assert_int_equal(find_ref(&plan->spaces[0], "h.0.mlp.c_proj.weight", 0)->axis, 0);
    for (int64_t r = 0; r < plan->spaces[0].nrefs; r++)
        assert_string_not_equal(plan->spaces[0].refs[r].tensor, "h.0.attn.bias");
    nmp_plan_free(plan);
    nmp_st_close(st);
    static const test_tensor rn[] = {
        { "conv1.weight", "F32", 4, { 8, 3, 3, 3 } },
        { "layer1.0.conv1.weight", "F32", 4, { 8, 8, 1, 1 } },
        { "layer1.0.bn1.weight", "F32", 1, { 8 } },
        { "layer1.0.bn1.bias", "F32", 1, { 8 } },
        { "layer1.0.bn1.running_mean", "F32", 1, { 8 } },
        { "layer1.0.bn1.running_var", "F32", 1, { 8 } },
        { "layer1.0.bn1.num_batches_tracked", "I64", 0, { 0 } },
        { "layer1.0.conv2.weight", "F32", 4, { 16, 8, 3, 3 } },
    };
    st = open_st("resnet.safetensors", rn, 8);
    nmp_assert_ok(nmp_plan_infer(st, &o, &plan, NULL));
    assert_string_equal(plan->arch, "resnet");
    assert_int_equal(plan->count, 1); /* the stem conv1 is not in a block */
    assert_int_equal(plan->spaces[0].nrefs, 6);
    assert_int_equal(find_ref(&plan->spaces[0], "layer1.0.bn1.running_var", 0)->use, NMP_USE_VAR);
    nmp_plan_free(plan);
    nmp_st_close(st);
}

static void test_json_round_trip(void **state)
{
    (void)state;
    nmp_st *st = open_st("rt.safetensors", bert, 7);
    nmp_plan *plan = NULL, *back = NULL;
    const nmp_plan_opts o = { "bert", 2, 0, 0 };
    char path[512];
    test_path(path, sizeof path, "plan.json");
    nmp_assert_ok(nmp_plan_infer(st, &o, &plan, NULL));
    nmp_assert_ok(nmp_plan_check(plan, st, (nmp_pattern){ 2, 4 }, NULL));
    plan->nm = (nmp_pattern){ 2, 4 };
    plan->spaces[0].perm = nmp_malloc(32 * sizeof(int32_t));
    for (int k = 0; k < 32; k++)
        plan->spaces[0].perm[k] = (k * 5) % 32;
    nmp_assert_ok(nmp_plan_write(plan, path, NULL));
    nmp_assert_ok(nmp_plan_read(path, &back, NULL));
    assert_string_equal(back->arch, "bert");
    assert_int_equal(back->nm.m, 4);
    assert_int_equal(back->count, plan->count);
    for (int64_t s = 0; s < plan->count; s++) {
        const nmp_space *a = &plan->spaces[s], *b = &back->spaces[s];
        assert_string_equal(a->name, b->name);
        assert_int_equal(a->size, b->size);
        assert_int_equal(a->act, b->act);
        assert_int_equal(a->nrefs, b->nrefs);
        for (int64_t r = 0; r < a->nrefs; r++) {
            assert_string_equal(a->refs[r].tensor, b->refs[r].tensor);
            assert_int_equal(a->refs[r].role, b->refs[r].role);
            assert_int_equal(a->refs[r].use, b->refs[r].use);
            assert_int_equal(a->refs[r].axis, b->refs[r].axis);
            assert_int_equal(a->refs[r].offset, b->refs[r].offset);
        }
        assert_int_equal(a->perm != NULL, b->perm != NULL);
        if (a->perm)
            assert_memory_equal(a->perm, b->perm, (size_t)a->size * sizeof(int32_t));
    }
    /* a perm that is not a bijection is refused */
    plan->spaces[0].perm[1] = plan->spaces[0].perm[0];
    nmp_assert_ok(nmp_plan_write(plan, path, NULL));
    nmp_plan_free(back);
    nmp_msg msg = { { 0 } };
    assert_int_equal(nmp_plan_read(path, &back, &msg), NMP_ERR_FORMAT);
    assert_non_null(strstr(msg.text, "not a permutation"));
    /* without heads: the skipped, empty value space comes back as it was written (a plan or
     * report of a checkpoint without config.json must be readable by --plan and apply) */
    nmp_plan_free(back);
    nmp_plan_free(plan);
    const nmp_plan_opts headless = { "bert", 0, 0, 0 };
    nmp_assert_ok(nmp_plan_infer(st, &headless, &plan, NULL));
    assert_int_equal(plan->spaces[1].size, 0);
    nmp_assert_ok(nmp_plan_write(plan, path, NULL));
    nmp_assert_ok(nmp_plan_read(path, &back, &msg));
    assert_int_equal(back->count, 2);
    assert_int_equal(back->spaces[1].size, 0);
    assert_string_equal(back->spaces[1].skip, NMP_PLAN_NO_HEADS);
    nmp_assert_ok(nmp_plan_check(back, st, (nmp_pattern){ 2, 4 }, NULL));
    unlink(path);
    nmp_plan_free(back);
    nmp_plan_free(plan);
    nmp_st_close(st);
}

/* Edits one reference of a fresh bert plan and expects nmp_plan_check to name the problem. */
static void expect_check_error(nmp_st *st, int what, const char *text)
{
    nmp_plan *plan = NULL;
    const nmp_plan_opts o = { "bert", 2, 0, 0 };
    nmp_msg msg = { { 0 } };
    nmp_assert_ok(nmp_plan_infer(st, &o, &plan, NULL));
    nmp_ref *r = &plan->spaces[0].refs[0];
    if (what == 0) {
        nmp_free(r->tensor);
        r->tensor = nmp_malloc(8);
        strcpy(r->tensor, "nope");
    } else if (what == 1) {
        r->axis = 2;
    } else if (what == 2) {
        r->offset = 4; /* 32 channels from 4 exceed 32 */
    } else if (what == 3) {
        plan->heads = 0; /* head 0 (rows and bias) overlaps head 1 */
        plan->spaces[1].refs[0].offset = plan->spaces[1].refs[1].offset = 4;
    } else if (what == 5) {
        plan->spaces[1].refs[0].offset = 4; /* the value rows move, their bias does not */
    } else if (what == 6) {
        /* head 0 spans rows 4..11 (value and bias) and output columns 4..11: two heads */
        plan->spaces[1].refs[0].offset = plan->spaces[1].refs[1].offset = 4;
        plan->spaces[1].refs[2].offset = 4;
        plan->spaces[2].skip = nmp_malloc(8);
        strcpy(plan->spaces[2].skip, "off");
    } else if (what == 7) {
        nmp_space *sp = &plan->spaces[0]; /* the MLP without its producers */
        const nmp_ref consumer = sp->refs[sp->nrefs - 1];
        assert_int_equal(consumer.role, NMP_ROLE_CONSUMER);
        for (int64_t k = 0; k < sp->nrefs - 1; k++)
            nmp_free(sp->refs[k].tensor);
        sp->refs[0] = consumer;
        sp->nrefs = 1; /* only output.dense: consumers, no producer */
    } else {
        nmp_free(r->tensor);
        r->tensor = nmp_malloc(32);
        strcpy(r->tensor, "embeddings.position_ids");
    }
    assert_int_equal(nmp_plan_check(plan, st, (nmp_pattern){ 2, 4 }, &msg), NMP_ERR_FORMAT);
    if (!strstr(msg.text, text))
        fail_msg("'%s' lacks '%s'", msg.text, text);
    nmp_plan_free(plan);
}

static void test_check_errors(void **state)
{
    (void)state;
    nmp_st *st = open_st("chk.safetensors", bert, 7);
    expect_check_error(st, 0, "nope: missing");
    expect_check_error(st, 1, "axis 2 out of range");
    expect_check_error(st, 2, "channels 4..35");
    expect_check_error(st, 3, "permuted twice");
    expect_check_error(st, 4, "dtype I64");
    expect_check_error(st, 5, "value.bias is not in the space at offset 4");
    expect_check_error(st, 6, "cross a head boundary");
    expect_check_error(st, 7, "no producer tensor");
    nmp_plan *plan = NULL;
    const nmp_plan_opts o = { "vgg", 0, 0, 0 };
    assert_int_equal(nmp_plan_infer(st, &o, &plan, NULL), NMP_ERR_ARG);
    assert_null(plan);
    nmp_st_close(st);
}

/* ---------------------------------------------------------- residual stream */

#define L0 "encoder.layer.0."
static const test_tensor bert_full[] = {
    { "embeddings.position_ids", "I64", 2, { 1, 8 } },
    { "embeddings.word_embeddings.weight", "F32", 2, { 50, 16 } },
    { "embeddings.position_embeddings.weight", "F32", 2, { 8, 16 } },
    { "embeddings.token_type_embeddings.weight", "F32", 2, { 2, 16 } },
    { "embeddings.LayerNorm.weight", "F32", 1, { 16 } },
    { "embeddings.LayerNorm.bias", "F32", 1, { 16 } },
    { L0 "attention.self.query.weight", "F32", 2, { 16, 16 } },
    { L0 "attention.self.query.bias", "F32", 1, { 16 } },
    { L0 "attention.self.key.weight", "F32", 2, { 16, 16 } },
    { L0 "attention.self.key.bias", "F32", 1, { 16 } },
    { L0 "attention.self.value.weight", "F32", 2, { 16, 16 } },
    { L0 "attention.self.value.bias", "F32", 1, { 16 } },
    { L0 "attention.output.dense.weight", "F32", 2, { 16, 16 } },
    { L0 "attention.output.dense.bias", "F32", 1, { 16 } },
    { L0 "attention.output.LayerNorm.weight", "F32", 1, { 16 } },
    { L0 "attention.output.LayerNorm.bias", "F32", 1, { 16 } },
    { L0 "intermediate.dense.weight", "F32", 2, { 32, 16 } },
    { L0 "intermediate.dense.bias", "F32", 1, { 32 } },
    { L0 "output.dense.weight", "F32", 2, { 16, 32 } },
    { L0 "output.dense.bias", "F32", 1, { 16 } },
    { L0 "output.LayerNorm.weight", "F32", 1, { 16 } },
    { L0 "output.LayerNorm.bias", "F32", 1, { 16 } },
    { "pooler.dense.weight", "F32", 2, { 16, 16 } },
    { "pooler.dense.bias", "F32", 1, { 16 } },
    { "classifier.weight", "F32", 2, { 2, 16 } }, /* only in the last test: unknown */
};
#define BERT_FULL 24

/* Counts the references of sp with that role. */
static int64_t count_role(const nmp_space *sp, nmp_role role)
{
    int64_t n = 0;
    for (int64_t r = 0; r < sp->nrefs; r++)
        n += sp->refs[r].role == role;
    return n;
}

static void test_residual_bert(void **state)
{
    (void)state;
    nmp_st *st = open_st("rbert.safetensors", bert_full, BERT_FULL);
    nmp_plan *plan = NULL;
    nmp_plan_opts o = { "auto", 2, 0, 0 };
    nmp_assert_ok(nmp_plan_infer(st, &o, &plan, NULL));
    assert_int_equal(plan->count, 3); /* off by default: MLP + 2 heads */
    for (int64_t s = 0; s < plan->count; s++)
        assert_string_not_equal(plan->spaces[s].name, "residual");
    nmp_plan_free(plan);
    o.residual = 1;
    nmp_assert_ok(nmp_plan_infer(st, &o, &plan, NULL));
    assert_int_equal(plan->count, 4);
    const nmp_space *sp = &plan->spaces[3];
    assert_string_equal(sp->name, "residual");
    assert_int_equal(sp->size, 16);
    assert_int_equal(sp->act, NMP_ACT_IDENTITY);
    assert_null(sp->skip);
    /* readers: query, key, value, intermediate, pooler */
    assert_int_equal(count_role(sp, NMP_ROLE_CONSUMER), 5);
    /* writers: 3 embeddings + 3 LayerNorms x 2 + 2 output projections x 2 */
    assert_int_equal(count_role(sp, NMP_ROLE_PRODUCER), 13);
    static const struct { const char *t; nmp_role role; nmp_use use; int axis; } want[] = {
        { "embeddings.word_embeddings.weight", NMP_ROLE_PRODUCER, NMP_USE_WEIGHT, 1 },
        { "embeddings.token_type_embeddings.weight", NMP_ROLE_PRODUCER, NMP_USE_WEIGHT, 1 },
        { "embeddings.LayerNorm.bias", NMP_ROLE_PRODUCER, NMP_USE_SHIFT, 0 },
        { L0 "attention.self.key.weight", NMP_ROLE_CONSUMER, NMP_USE_WEIGHT, 1 },
        { L0 "attention.output.dense.weight", NMP_ROLE_PRODUCER, NMP_USE_WEIGHT, 0 },
        { L0 "attention.output.dense.bias", NMP_ROLE_PRODUCER, NMP_USE_BIAS, 0 },
        { L0 "attention.output.LayerNorm.weight", NMP_ROLE_PRODUCER, NMP_USE_SCALE, 0 },
        { L0 "intermediate.dense.weight", NMP_ROLE_CONSUMER, NMP_USE_WEIGHT, 1 },
        { L0 "output.dense.weight", NMP_ROLE_PRODUCER, NMP_USE_WEIGHT, 0 },
        { L0 "output.LayerNorm.bias", NMP_ROLE_PRODUCER, NMP_USE_SHIFT, 0 },
        { "pooler.dense.weight", NMP_ROLE_CONSUMER, NMP_USE_WEIGHT, 1 },
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        const nmp_ref *r = find_ref(sp, want[k].t, 0);
        if (!r)
            fail_msg("%s is not in the residual space", want[k].t);
        assert_int_equal(r->role, want[k].role);
        assert_int_equal(r->use, want[k].use);
        assert_int_equal(r->axis, want[k].axis);
    }
    /* not the stream: q/k/v biases (their outputs), the pooler's output */
    assert_null(find_ref(sp, L0 "attention.self.query.bias", 0));
    assert_null(find_ref(sp, "pooler.dense.bias", 0));
    assert_null(find_ref(sp, "embeddings.position_ids", 0));
    /* the same tensors on other axes: no overlap with the MLP and head spaces */
    nmp_assert_ok(nmp_plan_check(plan, st, (nmp_pattern){ 2, 4 }, NULL));
    assert_null(plan->spaces[3].skip);
    nmp_plan_free(plan);
    /* resnet has no residual preset */
    o.arch = "resnet";
    assert_int_equal(nmp_plan_infer(st, &o, &plan, NULL), NMP_ERR_ARG);
    nmp_st_close(st);
}

/* A missing LayerNorm and an unknown head with a hidden-size axis are refused, not guessed. */
static void test_residual_bert_refusals(void **state)
{
    (void)state;
    test_tensor t[BERT_FULL + 1];
    memcpy(t, bert_full, sizeof t);
    nmp_plan *plan = NULL;
    const nmp_plan_opts o = { "bert", 2, 0, 1 };
    nmp_msg msg = { { 0 } };
    nmp_st *st = open_st("rbert2.safetensors", t, BERT_FULL + 1); /* with classifier.weight */
    assert_int_equal(nmp_plan_infer(st, &o, &plan, &msg), NMP_ERR_FORMAT);
    assert_null(plan);
    if (!strstr(msg.text, "classifier.weight: not known to the bert residual preset"))
        fail_msg("%s", msg.text);
    nmp_st_close(st);
    for (int k = 0; k < BERT_FULL; k++) /* drop output.LayerNorm.weight (and the head) */
        if (strcmp(t[k].name, L0 "output.LayerNorm.weight") == 0)
            memmove(&t[k], &t[k + 1], (size_t)(BERT_FULL - k) * sizeof t[0]);
    st = open_st("rbert3.safetensors", t, BERT_FULL - 1);
    assert_int_equal(nmp_plan_infer(st, &o, &plan, &msg), NMP_ERR_FORMAT);
    if (!strstr(msg.text, L0 "output.LayerNorm.weight: missing (the residual stream couples"))
        fail_msg("%s", msg.text);
    nmp_st_close(st);
}

#define LL(i, x) "model.layers." #i "." x
static const test_tensor llama_full[] = {
    { "model.embed_tokens.weight", "F32", 2, { 40, 32 } },
    { LL(0, "input_layernorm.weight"), "F32", 1, { 32 } },
    { LL(0, "self_attn.q_proj.weight"), "F32", 2, { 32, 32 } },
    { LL(0, "self_attn.k_proj.weight"), "F32", 2, { 16, 32 } },
    { LL(0, "self_attn.v_proj.weight"), "F32", 2, { 16, 32 } },
    { LL(0, "self_attn.o_proj.weight"), "F32", 2, { 32, 32 } },
    { LL(0, "post_attention_layernorm.weight"), "F32", 1, { 32 } },
    { LL(0, "mlp.gate_proj.weight"), "F16", 2, { 64, 32 } },
    { LL(0, "mlp.up_proj.weight"), "F16", 2, { 64, 32 } },
    { LL(0, "mlp.down_proj.weight"), "F16", 2, { 32, 64 } },
    { LL(1, "input_layernorm.weight"), "F32", 1, { 32 } },
    { LL(1, "self_attn.q_proj.weight"), "F32", 2, { 32, 32 } },
    { LL(1, "self_attn.k_proj.weight"), "F32", 2, { 16, 32 } },
    { LL(1, "self_attn.v_proj.weight"), "F32", 2, { 16, 32 } },
    { LL(1, "self_attn.o_proj.weight"), "F32", 2, { 32, 32 } },
    { LL(1, "post_attention_layernorm.weight"), "F32", 1, { 32 } },
    { LL(1, "mlp.gate_proj.weight"), "F32", 2, { 64, 32 } },
    { LL(1, "mlp.up_proj.weight"), "F32", 2, { 64, 32 } },
    { LL(1, "mlp.down_proj.weight"), "F32", 2, { 32, 64 } },
    { "model.norm.weight", "F32", 1, { 32 } },
    { "lm_head.weight", "F32", 2, { 40, 32 } }, /* last: dropped for the tied case */
};
#define LLAMA_FULL 21

static void test_residual_llama(void **state)
{
    (void)state;
    nmp_st *st = open_st("rllama.safetensors", llama_full, LLAMA_FULL);
    nmp_plan *plan = NULL;
    const nmp_plan_opts o = { "auto", 4, 2, 1 };
    nmp_assert_ok(nmp_plan_infer(st, &o, &plan, NULL));
    assert_string_equal(plan->arch, "llama");
    assert_int_equal(plan->count, 2 * 3 + 1);
    const nmp_space *sp = &plan->spaces[plan->count - 1];
    assert_string_equal(sp->name, "residual");
    assert_int_equal(sp->size, 32);
    /* 2 x (q, k, v, gate, up) + lm_head; embed + norm + 2 x (2 norms, o_proj, down_proj) */
    assert_int_equal(count_role(sp, NMP_ROLE_CONSUMER), 11);
    assert_int_equal(count_role(sp, NMP_ROLE_PRODUCER), 10);
    assert_int_equal(find_ref(sp, "lm_head.weight", 0)->role, NMP_ROLE_CONSUMER);
    assert_int_equal(find_ref(sp, "lm_head.weight", 0)->axis, 1);
    assert_int_equal(find_ref(sp, "model.embed_tokens.weight", 0)->axis, 1);
    assert_int_equal(find_ref(sp, "model.norm.weight", 0)->use, NMP_USE_SCALE);
    assert_int_equal(find_ref(sp, LL(1, "self_attn.o_proj.weight"), 0)->axis, 0);
    assert_int_equal(find_ref(sp, LL(1, "self_attn.o_proj.weight"), 0)->role, NMP_ROLE_PRODUCER);
    assert_int_equal(find_ref(sp, LL(0, "mlp.down_proj.weight"), 0)->axis, 0);
    assert_int_equal(find_ref(sp, LL(0, "mlp.gate_proj.weight"), 0)->axis, 1);
    assert_int_equal(find_ref(sp, LL(1, "self_attn.k_proj.weight"), 0)->role, NMP_ROLE_CONSUMER);
    assert_non_null(find_ref(sp, LL(0, "input_layernorm.weight"), 0));
    /* o_proj: columns in the head spaces, rows in the stream; down_proj: MLP columns */
    nmp_assert_ok(nmp_plan_check(plan, st, (nmp_pattern){ 2, 4 }, NULL));
    nmp_plan_free(plan);
    nmp_st_close(st);
    /* tied embeddings (no lm_head): the embedding is in the stream once, as a producer */
    st = open_st("rllama2.safetensors", llama_full, LLAMA_FULL - 1);
    nmp_assert_ok(nmp_plan_infer(st, &o, &plan, NULL));
    sp = &plan->spaces[plan->count - 1];
    assert_null(find_ref(sp, "lm_head.weight", 0));
    assert_int_equal(count_role(sp, NMP_ROLE_CONSUMER), 10);
    nmp_assert_ok(nmp_plan_check(plan, st, (nmp_pattern){ 2, 4 }, NULL));
    /* a stream of 32 channels cannot be 2:64 */
    nmp_assert_ok(nmp_plan_check(plan, st, (nmp_pattern){ 2, 32 }, NULL));
    assert_non_null(plan->spaces[plan->count - 1].skip);
    nmp_plan_free(plan);
    nmp_st_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_infer_bert),
        cmocka_unit_test(test_infer_llama_gqa),
        cmocka_unit_test(test_infer_gpt2_resnet),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_check_errors),
        cmocka_unit_test(test_residual_bert),
        cmocka_unit_test(test_residual_bert_refusals),
        cmocka_unit_test(test_residual_llama),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

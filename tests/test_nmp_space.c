/* test_nmp_space.c: applying channel spaces: inverse round trip, N:M pruning, verification,
 * stacked scoring problems */
#include "nmp_test_ckpt.h"

static const test_tensor llama[] = {
    { "model.layers.0.input_layernorm.weight", "F32", 1, { 32 } },
    { "model.layers.0.self_attn.v_proj.weight", "F32", 2, { 16, 32 } },
    { "model.layers.0.self_attn.v_proj.bias", "F32", 1, { 16 } },
    { "model.layers.0.self_attn.o_proj.weight", "F16", 2, { 32, 32 } },
    { "model.layers.0.mlp.gate_proj.weight", "F16", 2, { 64, 32 } },
    { "model.layers.0.mlp.up_proj.weight", "F32", 2, { 64, 32 } },
    { "model.layers.0.mlp.down_proj.weight", "F32", 2, { 32, 64 } },
    { "step", "I64", 1, { 3 } },
};

typedef struct fixture {
    char in[512], out[512], out2[512];
    nmp_st *st;
    nmp_plan *plan;
} fixture;

static void setup_llama(fixture *f)
{
    memset(f, 0, sizeof *f);
    test_path(f->in, sizeof f->in, "in.safetensors");
    test_path(f->out, sizeof f->out, "out.safetensors");
    test_path(f->out2, sizeof f->out2, "out2.safetensors");
    test_write_st(f->in, llama, 8, 11);
    nmp_assert_ok(nmp_st_open(f->in, &f->st, NULL));
    const nmp_plan_opts o = { "llama", 4, 2, 0 };
    nmp_assert_ok(nmp_plan_infer(f->st, &o, &f->plan, NULL));
    assert_int_equal(f->plan->count, 3);
    nmp_assert_ok(nmp_plan_check(f->plan, f->st, (nmp_pattern){ 2, 4 }, NULL));
    nmp_rng r;
    nmp_rng_seed(&r, 5);
    for (int64_t s = 0; s < f->plan->count; s++) {
        nmp_space *sp = &f->plan->spaces[s];
        sp->perm = nmp_malloc((size_t)sp->size * sizeof *sp->perm);
        nmp_perm_random(sp->perm, sp->size, &r);
    }
}

static void teardown(fixture *f)
{
    nmp_plan_free(f->plan);
    nmp_st_close(f->st);
    unlink(f->in);
    unlink(f->out);
    unlink(f->out2);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    *len = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *d = malloc(*len);
    assert_int_equal(fread(d, 1, *len, fp), *len);
    fclose(fp);
    return d;
}

/* Applying the perms and then their inverses gives back the tensors byte for byte. */
static void test_inverse_round_trip(void **state)
{
    (void)state;
    fixture f;
    setup_llama(&f);
    nmp_assert_ok(nmp_plan_apply(f.st, f.plan, 0, (nmp_pattern){ 2, 4 }, f.out, NULL));
    nmp_st *mid = NULL;
    nmp_assert_ok(nmp_st_open(f.out, &mid, NULL));
    for (int64_t s = 0; s < f.plan->count; s++) {
        nmp_space *sp = &f.plan->spaces[s];
        int32_t *inv = nmp_malloc((size_t)sp->size * sizeof *inv);
        nmp_perm_invert(sp->perm, inv, sp->size);
        nmp_free(sp->perm);
        sp->perm = inv;
    }
    nmp_assert_ok(nmp_plan_apply(mid, f.plan, 0, (nmp_pattern){ 2, 4 }, f.out2, NULL));
    nmp_st *back = NULL;
    nmp_assert_ok(nmp_st_open(f.out2, &back, NULL));
    int changed = 0;
    for (int64_t k = 0; k < nmp_st_count(f.st); k++) {
        const nmp_st_tensor *a = nmp_st_tensor_at(f.st, k), *m = nmp_st_tensor_at(mid, k);
        const nmp_st_tensor *b = nmp_st_tensor_at(back, k);
        assert_string_equal(a->name, b->name);
        assert_memory_equal(nmp_st_bytes(f.st, a), nmp_st_bytes(back, b), a->end - a->begin);
        changed += memcmp(nmp_st_bytes(f.st, a), nmp_st_bytes(mid, m), a->end - a->begin) != 0;
    }
    assert_int_equal(changed, 6); /* all but the norm and the I64 tensor */
    /* the input file itself is untouched */
    size_t la = 0;
    char *da = slurp(f.in, &la);
    nmp_st *again = NULL;
    nmp_assert_ok(nmp_st_open(f.in, &again, NULL));
    free(da);
    nmp_st_close(again);
    nmp_st_close(mid);
    nmp_st_close(back);
    teardown(&f);
}

/* After --prune every consumer group of m holds at most n nonzeros, and the kept entries are
 * the permuted weights themselves. */
static void test_prune_invariant(void **state)
{
    (void)state;
    fixture f;
    setup_llama(&f);
    nmp_assert_ok(nmp_plan_apply(f.st, f.plan, 0, (nmp_pattern){ 2, 4 }, f.out, NULL));
    nmp_assert_ok(nmp_plan_apply(f.st, f.plan, 1, (nmp_pattern){ 2, 4 }, f.out2, NULL));
    nmp_st *p = NULL, *q = NULL;
    nmp_assert_ok(nmp_st_open(f.out, &p, NULL));
    nmp_assert_ok(nmp_st_open(f.out2, &q, NULL));
    static const char *const consumers[] = { "model.layers.0.mlp.down_proj.weight",
                                             "model.layers.0.self_attn.o_proj.weight" };
    for (int c = 0; c < 2; c++) {
        const nmp_st_tensor *tp = nmp_st_find(p, consumers[c]), *tq = nmp_st_find(q, consumers[c]);
        float *wp = malloc((size_t)tp->numel * sizeof *wp), *wq = malloc((size_t)tq->numel * 4);
        nmp_assert_ok(nmp_st_read_f32(p, tp, wp, NULL));
        nmp_assert_ok(nmp_st_read_f32(q, tq, wq, NULL));
        int64_t zeros = 0;
        for (int64_t g = 0; g < tq->numel / 4; g++) {
            int nz = 0;
            float smallest_kept = INFINITY, largest_dropped = 0;
            for (int t = 0; t < 4; t++) {
                const float a = wq[4 * g + t], b = wp[4 * g + t];
                nz += a != 0;
                zeros += a == 0;
                if (a != 0)
                    assert_true(a == b);
                if (a != 0)
                    smallest_kept = fminf(smallest_kept, fabsf(b));
                else
                    largest_dropped = fmaxf(largest_dropped, fabsf(b));
            }
            assert_true(nz <= 2);
            assert_true(largest_dropped <= smallest_kept);
        }
        assert_int_equal(zeros, tq->numel / 2);
        free(wp);
        free(wq);
    }
    /* producers are not pruned */
    const nmp_st_tensor *up = nmp_st_find(q, "model.layers.0.mlp.up_proj.weight");
    const nmp_st_tensor *up0 = nmp_st_find(p, "model.layers.0.mlp.up_proj.weight");
    assert_memory_equal(nmp_st_bytes(q, up), nmp_st_bytes(p, up0), up->end - up->begin);
    nmp_st_close(p);
    nmp_st_close(q);
    teardown(&f);
}

/* Verification passes for the written file and on the fly, and catches a bias left unpermuted. */
static void test_verify_catches_inconsistency(void **state)
{
    (void)state;
    fixture f;
    setup_llama(&f);
    nmp_assert_ok(nmp_plan_apply(f.st, f.plan, 0, (nmp_pattern){ 2, 4 }, f.out, NULL));
    nmp_st *out = NULL;
    nmp_assert_ok(nmp_st_open(f.out, &out, NULL));
    for (int64_t s = 0; s < f.plan->count; s++) {
        double rel = 1;
        nmp_assert_ok(nmp_space_verify(f.plan, s, f.st, out, 0, 3, 4, &rel, NULL));
        assert_true(rel < 1e-12);
        nmp_assert_ok(nmp_space_verify(f.plan, s, f.st, f.st, 1, 3, 4, &rel, NULL));
        assert_true(rel < 1e-12);
    }
    nmp_st_close(out);
    /* write again with the v_proj bias reference hidden from the writer of KV head 0 */
    nmp_space *kv0 = &f.plan->spaces[1];
    assert_int_equal(kv0->refs[1].use, NMP_USE_BIAS);
    const nmp_ref bias = kv0->refs[1];
    kv0->refs[1] = kv0->refs[kv0->nrefs - 1];
    kv0->nrefs--;
    nmp_assert_ok(nmp_plan_apply(f.st, f.plan, 0, (nmp_pattern){ 2, 4 }, f.out2, NULL));
    kv0->refs[kv0->nrefs++] = kv0->refs[1];
    kv0->refs[1] = bias;
    nmp_assert_ok(nmp_st_open(f.out2, &out, NULL));
    double rel = 0;
    nmp_assert_ok(nmp_space_verify(f.plan, 1, f.st, out, 0, 3, 4, &rel, NULL));
    assert_true(rel > 1e-3);
    nmp_assert_ok(nmp_space_verify(f.plan, 0, f.st, out, 0, 3, 4, &rel, NULL));
    assert_true(rel < 1e-12); /* the MLP is still fine */
    /* the MLP shares no tensor with other spaces: the input compared with itself agrees */
    nmp_assert_ok(nmp_space_verify(f.plan, 0, f.st, f.st, 0, 3, 4, &rel, NULL));
    assert_true(rel < 1e-12);
    nmp_assert_ok(nmp_space_verify(f.plan, 2, f.st, out, 0, 3, 4, &rel, NULL));
    assert_true(rel < 1e-12);
    nmp_st_close(out);
    teardown(&f);
}

/* A GQA space stacks the o_proj column slices of its query heads by rows. */
static void test_problem_stacks_consumers(void **state)
{
    (void)state;
    fixture f;
    setup_llama(&f);
    nmp_problem *pb = NULL;
    nmp_assert_ok(nmp_space_problem(f.st, &f.plan->spaces[2], (nmp_pattern){ 2, 4 }, &pb, NULL));
    assert_int_equal(nmp_problem_rows(pb), 64);
    assert_int_equal(nmp_problem_cols(pb), 8);
    /* saliency (row 32 + j, col i) = |o_proj(j, 24 + i)| (query head 3) */
    const nmp_st_tensor *o = nmp_st_find(f.st, "model.layers.0.self_attn.o_proj.weight");
    float *w = malloc((size_t)o->numel * sizeof *w);
    nmp_assert_ok(nmp_st_read_f32(f.st, o, w, NULL));
    const float *s = nmp_problem_saliency(pb);
    for (int64_t j = 0; j < 32; j++)
        for (int64_t i = 0; i < 8; i++)
            assert_true(s[i * 64 + 32 + j] == fabsf(w[j * 32 + 24 + i]));
    free(w);
    nmp_problem_free(pb);
    nmp_assert_ok(nmp_space_problem(f.st, &f.plan->spaces[0], (nmp_pattern){ 2, 4 }, &pb, NULL));
    assert_int_equal(nmp_problem_rows(pb), 32);
    assert_int_equal(nmp_problem_cols(pb), 64);
    nmp_problem_free(pb);
    teardown(&f);
}

/* The residual stream: one space over embeddings, norms, every reader and writer, sharing
 * tensors with the head and MLP spaces on their other axes. Random perms of every space pass
 * verification (written and on the fly); leaving one reference of the stream out of the writer
 * (a norm, a reader, an embedding) is caught tensor by tensor. */
static void test_residual_verify(void **state)
{
    (void)state;
    static const test_tensor t[] = {
        { "model.embed_tokens.weight", "F32", 2, { 24, 32 } },
        { "model.layers.0.input_layernorm.weight", "F32", 1, { 32 } },
        { "model.layers.0.self_attn.q_proj.weight", "F32", 2, { 32, 32 } },
        { "model.layers.0.self_attn.k_proj.weight", "F32", 2, { 16, 32 } },
        { "model.layers.0.self_attn.v_proj.weight", "F16", 2, { 16, 32 } },
        { "model.layers.0.self_attn.o_proj.weight", "F32", 2, { 32, 32 } },
        { "model.layers.0.self_attn.o_proj.bias", "F32", 1, { 32 } },
        { "model.layers.0.post_attention_layernorm.weight", "F32", 1, { 32 } },
        { "model.layers.0.mlp.gate_proj.weight", "F32", 2, { 64, 32 } },
        { "model.layers.0.mlp.up_proj.weight", "F32", 2, { 64, 32 } },
        { "model.layers.0.mlp.down_proj.weight", "F16", 2, { 32, 64 } },
        { "model.norm.weight", "F32", 1, { 32 } },
        { "lm_head.weight", "F32", 2, { 24, 32 } },
    };
    fixture f;
    memset(&f, 0, sizeof f);
    test_path(f.in, sizeof f.in, "rin.safetensors");
    test_path(f.out, sizeof f.out, "rout.safetensors");
    test_path(f.out2, sizeof f.out2, "rout2.safetensors");
    test_write_st(f.in, t, 13, 21);
    nmp_assert_ok(nmp_st_open(f.in, &f.st, NULL));
    const nmp_plan_opts o = { "llama", 4, 2, 1 };
    nmp_assert_ok(nmp_plan_infer(f.st, &o, &f.plan, NULL));
    nmp_assert_ok(nmp_plan_check(f.plan, f.st, (nmp_pattern){ 2, 4 }, NULL));
    assert_int_equal(f.plan->count, 4);
    nmp_space *res = &f.plan->spaces[3];
    assert_string_equal(res->name, "residual");
    nmp_rng r;
    nmp_rng_seed(&r, 9);
    for (int64_t s = 0; s < f.plan->count; s++) {
        nmp_space *sp = &f.plan->spaces[s];
        sp->perm = nmp_malloc((size_t)sp->size * sizeof *sp->perm);
        nmp_perm_random(sp->perm, sp->size, &r);
    }
    nmp_assert_ok(nmp_plan_apply(f.st, f.plan, 0, (nmp_pattern){ 2, 4 }, f.out, NULL));
    nmp_st *out = NULL;
    nmp_assert_ok(nmp_st_open(f.out, &out, NULL));
    for (int64_t s = 0; s < f.plan->count; s++) {
        double rel = 1;
        nmp_assert_ok(nmp_space_verify(f.plan, s, f.st, out, 0, 3, 4, &rel, NULL));
        if (!(rel < 1e-12))
            fail_msg("space %s: %g", f.plan->spaces[s].name, rel);
        nmp_assert_ok(nmp_space_verify(f.plan, s, f.st, f.st, 1, 3, 4, &rel, NULL));
        assert_true(rel < 1e-12);
    }
    /* o_proj and down_proj rows moved with the stream: the file differs from the input there */
    const nmp_st_tensor *a = nmp_st_find(f.st, "model.norm.weight");
    const nmp_st_tensor *b = nmp_st_find(out, "model.norm.weight");
    assert_true(memcmp(nmp_st_bytes(f.st, a), nmp_st_bytes(out, b), 128) != 0);
    nmp_st_close(out);
    static const char *const hide[] = { "model.norm.weight",
                                        "model.layers.0.self_attn.q_proj.weight",
                                        "model.embed_tokens.weight",
                                        "model.layers.0.self_attn.o_proj.bias",
                                        "model.layers.0.mlp.down_proj.weight" };
    for (int h = 0; h < 5; h++) {
        int64_t k = 0;
        while (strcmp(res->refs[k].tensor, hide[h]) != 0)
            k++;
        const nmp_ref keep = res->refs[k];
        res->refs[k] = res->refs[res->nrefs - 1];
        res->nrefs--;
        nmp_assert_ok(nmp_plan_apply(f.st, f.plan, 0, (nmp_pattern){ 2, 4 }, f.out2, NULL));
        res->refs[res->nrefs++] = res->refs[k];
        res->refs[k] = keep;
        nmp_assert_ok(nmp_st_open(f.out2, &out, NULL));
        double rel = 0;
        nmp_assert_ok(nmp_space_verify(f.plan, 3, f.st, out, 0, 3, 4, &rel, NULL));
        if (!(rel > 1e-3))
            fail_msg("%s left out of the stream: verify gives %g", hide[h], rel);
        nmp_st_close(out);
    }
    teardown(&f);
}


/* Writes 1-D F32 vectors (names[k] with lens[k] values vals[k]) as an activations file. */
static void write_acts(const char *path, const char *const *names, const int64_t *lens,
                       const float *const *vals, int count)
{
    char header[4096];
    size_t len = 0, off = 0;
    len += (size_t)snprintf(header, sizeof header, "{\"__metadata__\":{\"format\":"
                            "\"nmperm-activations\"}");
    for (int k = 0; k < count; k++) {
        len += (size_t)snprintf(header + len, sizeof header - len, ",\"%s\":{\"dtype\":\"F32\","
                                "\"shape\":[%lld],\"data_offsets\":[%zu,%zu]}", names[k],
                                (long long)lens[k], off, off + (size_t)lens[k] * 4);
        off += (size_t)lens[k] * 4;
    }
    len += (size_t)snprintf(header + len, sizeof header - len, "}");
    while (len % 8)
        header[len++] = ' ';
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    const uint64_t hl = len;
    fwrite(&hl, 8, 1, fp);
    fwrite(header, 1, len, fp);
    for (int k = 0; k < count; k++)
        fwrite(vals[k], 4, (size_t)lens[k], fp);
    fclose(fp);
}

static const char *const O_PROJ = "model.layers.0.self_attn.o_proj.weight";
static const char *const DOWN = "model.layers.0.mlp.down_proj.weight";

/* Wanda and RIA problems: each entry is the formula of nmperm.h's nmp_saliency on the whole
 * tensor (RIA's sums over all 32 input channels of o_proj, not only the head's slice); the
 * stacked o_proj slices read the activation of their own channels. */
static void test_problem_wanda_ria(void **state)
{
    (void)state;
    fixture f;
    setup_llama(&f);
    char apath[512];
    test_path(apath, sizeof apath, "acts.safetensors");
    float ao[32], ad[64];
    for (int c = 0; c < 32; c++)
        ao[c] = 0.25f + (float)((c * 7) % 11);
    for (int c = 0; c < 64; c++)
        ad[c] = 1.0f + (float)(c % 5);
    const char *names[] = { O_PROJ, DOWN };
    const int64_t lens[] = { 32, 64 };
    const float *vals[] = { ao, ad };
    write_acts(apath, names, lens, vals, 2);
    nmp_st *acts = NULL;
    nmp_assert_ok(nmp_st_open(apath, &acts, NULL));
    const nmp_st_tensor *o = nmp_st_find(f.st, O_PROJ);
    float *w = malloc((size_t)o->numel * sizeof *w);
    nmp_assert_ok(nmp_st_read_f32(f.st, o, w, NULL));
    double rowsum[32] = { 0 }, colsum[32] = { 0 };
    for (int j = 0; j < 32; j++)
        for (int c = 0; c < 32; c++) {
            rowsum[j] += fabs(w[j * 32 + c]);
            colsum[c] += fabs(w[j * 32 + c]);
        }
    for (int kind = NMP_SAL_WANDA; kind <= NMP_SAL_RIA; kind++) {
        const nmp_saliency sal = { (nmp_saliency_kind)kind, acts };
        nmp_problem *pb = NULL;
        nmp_assert_ok(nmp_space_problem_sal(f.st, &f.plan->spaces[2], (nmp_pattern){ 2, 4 },
                                            &sal, &pb, NULL));
        assert_int_equal(nmp_problem_rows(pb), 64);
        const float *s = nmp_problem_saliency(pb);
        for (int64_t j = 0; j < 32; j++)
            for (int64_t i = 0; i < 8; i++) {
                const int64_t c = 24 + i; /* query head 3: rows 32.. of the stack */
                const double x = fabs(w[j * 32 + c]);
                const double want = kind == NMP_SAL_WANDA
                                        ? x * ao[c]
                                        : (x / rowsum[j] + x / colsum[c]) * sqrt(ao[c]);
                nmp_assert_close(s[i * 64 + 32 + j], want, 1e-6 * (want + 1e-3));
            }
        nmp_problem_free(pb);
    }
    free(w);
    nmp_st_close(acts);
    teardown(&f);
    unlink(apath);
}

/* An activations file that does not fit: a missing tensor, a wrong length, a negative norm,
 * no file at all for wanda: NMP_ERR_FORMAT / NMP_ERR_ARG naming the tensor. */
static void test_problem_acts_errors(void **state)
{
    (void)state;
    fixture f;
    setup_llama(&f);
    char apath[512];
    test_path(apath, sizeof apath, "acts.safetensors");
    float a[64];
    for (int c = 0; c < 64; c++)
        a[c] = 1.0f;
    static const struct {
        const char *name;
        int64_t len;
        int negative;
        const char *want;
    } cases[] = {
        { "model.layers.0.mlp.up_proj.weight", 32, 0, "down_proj.weight: no entry" },
        { "model.layers.0.mlp.down_proj.weight", 32, 0, "expected 64" },
        { "model.layers.0.mlp.down_proj.weight", 64, 1, "norms are finite and >= 0" },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        a[5] = cases[k].negative ? -1.0f : 1.0f;
        const char *names[] = { cases[k].name };
        const int64_t lens[] = { cases[k].len };
        const float *vals[] = { a };
        write_acts(apath, names, lens, vals, 1);
        nmp_st *acts = NULL;
        nmp_assert_ok(nmp_st_open(apath, &acts, NULL));
        const nmp_saliency sal = { NMP_SAL_WANDA, acts };
        nmp_problem *pb = NULL;
        nmp_msg msg = { { 0 } };
        assert_int_equal(nmp_space_problem_sal(f.st, &f.plan->spaces[0], (nmp_pattern){ 2, 4 },
                                               &sal, &pb, &msg), NMP_ERR_FORMAT);
        assert_null(pb);
        assert_non_null(strstr(msg.text, cases[k].want));
        nmp_st_close(acts);
    }
    const nmp_saliency none = { NMP_SAL_RIA, NULL };
    nmp_problem *pb = NULL;
    assert_int_equal(nmp_space_problem_sal(f.st, &f.plan->spaces[0], (nmp_pattern){ 2, 4 },
                                           &none, &pb, NULL), NMP_ERR_ARG);
    teardown(&f);
    unlink(apath);
}

/* --prune all: every 2-D float weight whose input dim divides by 4 is pruned 2:4 along it
 * (listed in plan->pruned with density 0.5), the default excludes (embeddings, lm_head), 1-D,
 * integer, a 30-wide input and a --prune-exclude glob stay byte-identical. With wanda, a channel
 * whose norm dominates its group survives in every row. */
static void test_prune_all(void **state)
{
    (void)state;
    static const test_tensor t[] = {
        { "model.embed_tokens.weight", "F32", 2, { 40, 32 } },
        { "model.layers.0.input_layernorm.weight", "F32", 1, { 32 } },
        { "model.layers.0.self_attn.q_proj.weight", "F32", 2, { 32, 32 } },
        { "model.layers.0.self_attn.v_proj.weight", "F32", 2, { 16, 32 } },
        { "model.layers.0.self_attn.o_proj.weight", "F32", 2, { 32, 32 } },
        { "model.layers.0.mlp.gate_proj.weight", "F32", 2, { 64, 32 } },
        { "model.layers.0.mlp.up_proj.weight", "F32", 2, { 64, 32 } },
        { "model.layers.0.mlp.down_proj.weight", "F32", 2, { 32, 64 } },
        { "lm_head.weight", "F32", 2, { 40, 32 } },
        { "extra.odd.weight", "F32", 2, { 8, 30 } },
        { "step", "I64", 1, { 3 } },
    };
    char in[512], out[512], apath[512];
    test_path(in, sizeof in, "pa_in.safetensors");
    test_path(out, sizeof out, "pa_out.safetensors");
    test_path(apath, sizeof apath, "pa_acts.safetensors");
    test_write_st(in, t, 11, 3);
    float aq[32];
    for (int c = 0; c < 32; c++)
        aq[c] = c % 4 == 3 ? 1e6f : 1.0f;
    const char *names[] = { "model.layers.0.self_attn.q_proj.weight" };
    const int64_t lens[] = { 32 };
    const float *vals[] = { aq };
    write_acts(apath, names, lens, vals, 1);
    for (int wanda = 0; wanda < 2; wanda++) {
        nmp_st *st = NULL, *acts = NULL, *o = NULL;
        nmp_plan *plan = NULL;
        nmp_assert_ok(nmp_st_open(in, &st, NULL));
        nmp_assert_ok(nmp_st_open(apath, &acts, NULL));
        /* no space: --prune all works on tensors, not on spaces (q_proj's acts suffice) */
        char ppath[512];
        test_path(ppath, sizeof ppath, "pa_plan.json");
        FILE *pf = fopen(ppath, "w");
        assert_non_null(pf);
        fputs("{\"arch\": \"llama\", \"spaces\": []}\n", pf);
        fclose(pf);
        nmp_msg pmsg = { { 0 } };
        if (nmp_plan_read(ppath, &plan, &pmsg) != NMP_OK)
            fail_msg("%s", pmsg.text);
        unlink(ppath);
        nmp_permute_opts po;
        nmp_permute_opts_init(&po);
        const char *const excl[] = { "*.v_proj.*" };
        po.prune = NMP_PRUNE_ALL;
        po.prune_exclude = excl;
        po.prune_nexclude = 1;
        po.saliency = (nmp_saliency){ wanda ? NMP_SAL_WANDA : NMP_SAL_ABS, acts };
        if (wanda) { /* only q_proj has activations: the others are excluded for this case */
            static const char *const more[] = { "*.v_proj.*", "*o_proj*", "*mlp*" };
            po.prune_exclude = more;
            po.prune_nexclude = 3;
        }
        nmp_permute_result res;
        nmp_msg msg = { { 0 } };
        const nmp_err e = nmp_ckpt_permute(st, plan, &po, out, &res, &msg);
        if (e != NMP_OK)
            fail_msg("%s", msg.text);
        nmp_assert_ok(nmp_st_open(out, &o, NULL));
        const char *want[] = { "model.layers.0.self_attn.q_proj.weight",
                               "model.layers.0.self_attn.o_proj.weight",
                               "model.layers.0.mlp.gate_proj.weight",
                               "model.layers.0.mlp.up_proj.weight",
                               "model.layers.0.mlp.down_proj.weight" };
        const int nwant = wanda ? 1 : 5;
        assert_int_equal(plan->npruned, nwant);
        for (int k = 0; k < nwant; k++) {
            assert_string_equal(plan->pruned[k].tensor, want[k]);
            nmp_assert_close(plan->pruned[k].density, 0.5, 1e-12);
        }
        for (int k = 0; k < 11; k++) {
            const nmp_st_tensor *a = nmp_st_find(st, t[k].name), *b = nmp_st_find(o, t[k].name);
            bool pruned = false;
            for (int q = 0; q < nwant; q++)
                pruned |= strcmp(t[k].name, want[q]) == 0;
            const size_t bytes = (size_t)a->numel * nmp_st_dtype_size(a->dtype);
            const bool same = memcmp(nmp_st_bytes(st, a), nmp_st_bytes(o, b), bytes) == 0;
            assert_true(same == !pruned);
        }
        const nmp_st_tensor *q = nmp_st_find(o, "model.layers.0.self_attn.q_proj.weight");
        const float *qv = nmp_st_bytes(o, q);
        int kept3 = 0;
        for (int j = 0; j < 32; j++)
            for (int c = 3; c < 32; c += 4)
                kept3 += qv[j * 32 + c] != 0;
        if (wanda)
            assert_int_equal(kept3, 32 * 8); /* the dominant channel always survives */
        else
            assert_true(kept3 < 32 * 8);
        nmp_st_close(o);
        nmp_plan_free(plan);
        nmp_st_close(acts);
        nmp_st_close(st);
    }
    unlink(in);
    unlink(out);
    unlink(apath);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inverse_round_trip),
        cmocka_unit_test(test_prune_invariant),
        cmocka_unit_test(test_verify_catches_inconsistency),
        cmocka_unit_test(test_problem_stacks_consumers),
        cmocka_unit_test(test_residual_verify),
        cmocka_unit_test(test_problem_wanda_ria),
        cmocka_unit_test(test_problem_acts_errors),
        cmocka_unit_test(test_prune_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

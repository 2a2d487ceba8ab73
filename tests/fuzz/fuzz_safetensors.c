/* fuzz_safetensors.c: libFuzzer harness of the safetensors reader and the plan presets: the
 * input is a whole .safetensors file; nmp_st_open, every float tensor through nmp_st_read_f32,
 * then nmp_plan_infer for every preset (with and without heads and the residual stream),
 * nmp_plan_check and the scoring problem of every space that is left. Findings are sanitizer
 * reports or a broken invariant (__builtin_trap): a failure without a one-line reason naming the
 * file, a tensor outside the file, a problem whose shape is not the space's. */
#include "fuzz_file.h" /* first: it asks for memfd_create (_GNU_SOURCE) */

#include "nmperm.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static fuzz_file file;

/* A reader's failure carries a one-line reason that names the file (NOMEM says nothing). */
static void check_msg(nmp_err e, const nmp_msg *msg, const char *path)
{
    if (e == NMP_OK || e == NMP_ERR_NOMEM)
        return;
    CHECK(msg->text[0] != '\0');
    CHECK(strchr(msg->text, '\n') == NULL);
    CHECK(strstr(msg->text, path) != NULL);
}

static void read_tensors(const nmp_st *st, size_t file_size)
{
    for (int64_t k = 0; k < nmp_st_count(st); k++) {
        const nmp_st_tensor *t = nmp_st_tensor_at(st, k);
        CHECK(t->begin <= t->end && t->end <= file_size);
        CHECK(nmp_st_find(st, t->name) != NULL);
        if (!nmp_st_dtype_is_float(t->dtype))
            continue;
        float *out = nmp_malloc((size_t)t->numel * sizeof *out);
        if (!out)
            continue;
        nmp_msg msg = { "" };
        CHECK(nmp_st_read_f32(st, t, out, &msg) == NMP_OK);
        nmp_free(out);
    }
    for (int64_t k = 0; k < nmp_st_metadata_count(st); k++) {
        const char *key = NULL, *value = NULL;
        nmp_st_metadata_at(st, k, &key, &value);
        CHECK(key && value);
    }
}

static void plan_spaces(const nmp_st *st, const nmp_plan_opts *o)
{
    nmp_plan *plan = NULL;
    nmp_msg msg = { "" };
    nmp_err e = nmp_plan_infer(st, o, &plan, &msg);
    if (e != NMP_OK) {
        CHECK(plan == NULL);
        CHECK(e == NMP_ERR_NOMEM || (msg.text[0] && !strchr(msg.text, '\n')));
        return;
    }
    const nmp_pattern nm = { 2, 4 };
    e = nmp_plan_check(plan, st, nm, &msg);
    CHECK(e == NMP_OK || e == NMP_ERR_NOMEM || msg.text[0]);
    for (int64_t s = 0; e == NMP_OK && s < plan->count; s++) {
        const nmp_space *sp = &plan->spaces[s];
        if (sp->skip)
            continue;
        nmp_problem *pb = NULL;
        if (nmp_space_problem(st, sp, nm, &pb, &msg) == NMP_OK) {
            CHECK(nmp_problem_cols(pb) == sp->size);
            nmp_problem_free(pb);
        }
    }
    char *text = NULL;
    if (nmp_plan_dumps(plan, &text) == NMP_OK)
        nmp_free(text);
    nmp_plan_free(plan);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const archs[] = { "auto", "bert", "gpt2", "llama", "resnet" };
    static const nmp_plan_opts heads[] = { { NULL, 0, 0, 0 }, { NULL, 2, 1, 0 },
                                           { NULL, 4, 0, 1 } };
    if (file.path[0] == '\0')
        fuzz_file_open(&file, "fuzz.safetensors");
    const char *path = fuzz_file_set(&file, data, size);
    nmp_st *st = NULL;
    nmp_msg msg = { "" };
    const nmp_err e = nmp_st_open(path, &st, &msg);
    check_msg(e, &msg, path);
    if (e != NMP_OK) {
        CHECK(st == NULL);
        return 0;
    }
    read_tensors(st, size);
    for (size_t a = 0; a < sizeof archs / sizeof archs[0]; a++)
        for (size_t h = 0; h < sizeof heads / sizeof heads[0]; h++) {
            nmp_plan_opts o = heads[h];
            o.arch = archs[a];
            plan_spaces(st, &o);
        }
    nmp_st_close(st);
    return 0;
}

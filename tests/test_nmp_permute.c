/* test_nmp_permute.c: a checkpoint permuted end to end through the library (nmp_ckpt_permute):
 * solve + verify + commit, stops at every stage, non-finite values, stale temporaries, NOMEM */
#include "nmp_test_ckpt.h"

#include <dirent.h>
#include <signal.h>

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
    char in[512], out[512], rep[512];
    nmp_st *st;
    nmp_plan *plan;
    nmp_permute_opts o;
} fixture;

static void setup(fixture *f)
{
    memset(f, 0, sizeof *f);
    test_path(f->in, sizeof f->in, "pin.safetensors");
    test_path(f->out, sizeof f->out, "pout.safetensors");
    test_path(f->rep, sizeof f->rep, "prep.json");
    test_write_st(f->in, llama, 8, 11);
    nmp_assert_ok(nmp_st_open(f->in, &f->st, NULL));
    const nmp_plan_opts po = { "llama", 4, 2, 0 };
    nmp_assert_ok(nmp_plan_infer(f->st, &po, &f->plan, NULL));
    nmp_assert_ok(nmp_plan_check(f->plan, f->st, (nmp_pattern){ 2, 4 }, NULL));
    nmp_permute_opts_init(&f->o);
    f->o.solver = "swap";
    f->o.verify = 1;
    f->o.report = f->rep;
}

static void teardown(fixture *f)
{
    nmp_plan_free(f->plan);
    nmp_st_close(f->st);
    unlink(f->in);
    unlink(f->out);
    unlink(f->rep);
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static bool has_text(const char *path, const char *text)
{
    char buf[64] = { 0 };
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return false;
    const size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    return n == strlen(text) && memcmp(buf, text, n) == 0;
}

/* Number of "<name>.nmperm-tmp.*" entries beside path. */
static int temporaries(const char *path)
{
    char dir[512], prefix[600];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    snprintf(prefix, sizeof prefix, "%s.nmperm-tmp.", slash + 1);
    int count = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        count += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return count;
}

/* Solve, verify, commit: stats in the plan, verification within tolerance, the report written,
 * the same bytes again for the same seed, no temporary left. */
static void test_permute_end_to_end(void **state)
{
    (void)state;
    fixture f;
    setup(&f);
    nmp_permute_result res;
    nmp_assert_ok(nmp_ckpt_permute(f.st, f.plan, &f.o, f.out, &res, NULL));
    assert_false(res.interrupted);
    assert_true(res.verify_max_rel >= 0 && res.verify_max_rel <= NMP_VERIFY_TOL);
    for (int64_t s = 0; s < f.plan->count; s++) {
        const nmp_space *sp = &f.plan->spaces[s];
        assert_true(sp->solved && nmp_perm_is_valid(sp->perm, sp->size));
        assert_true(sp->stats.kept >= sp->stats.identity - 1e-9);
        assert_true(sp->stats.verify_rel >= 0 && sp->stats.verify_rel <= NMP_VERIFY_TOL);
    }
    nmp_plan *back = NULL;
    nmp_assert_ok(nmp_plan_read(f.rep, &back, NULL));
    assert_int_equal(back->count, f.plan->count);
    assert_memory_equal(back->spaces[0].perm, f.plan->spaces[0].perm,
                        (size_t)f.plan->spaces[0].size * sizeof(int32_t));
    nmp_plan_free(back);
    /* apply (no solve) of the same perms writes the same file */
    nmp_st *a = NULL, *b = NULL;
    char out2[512];
    test_path(out2, sizeof out2, "pout2.safetensors");
    f.o.solve = 0;
    f.o.report = NULL;
    nmp_assert_ok(nmp_ckpt_permute(f.st, f.plan, &f.o, out2, &res, NULL));
    nmp_assert_ok(nmp_st_open(f.out, &a, NULL));
    nmp_assert_ok(nmp_st_open(out2, &b, NULL));
    for (int64_t k = 0; k < nmp_st_count(a); k++) {
        const nmp_st_tensor *t = nmp_st_tensor_at(a, k);
        assert_memory_equal(nmp_st_bytes(a, t), nmp_st_bytes(b, nmp_st_tensor_at(b, k)),
                            (size_t)(t->end - t->begin));
    }
    nmp_st_close(a);
    nmp_st_close(b);
    unlink(out2);
    assert_int_equal(temporaries(f.out), 0);
    assert_int_equal(temporaries(f.rep), 0);
    teardown(&f);
}

/* A time limit that the problem's build alone uses up (1 ns): no search runs (anneal, which
 * moves before it first reads the clock, would), every space keeps the identity with status
 * time limit and its identity score, verified and written. */
static void test_time_limit_spent_by_build(void **state)
{
    (void)state;
    fixture f;
    setup(&f);
    f.o.solver = "anneal";
    f.o.par.time_limit = 1e-9;
    nmp_permute_result res;
    nmp_assert_ok(nmp_ckpt_permute(f.st, f.plan, &f.o, f.out, &res, NULL));
    assert_false(res.interrupted);
    assert_true(f.plan->count > 0);
    for (int64_t s = 0; s < f.plan->count; s++) {
        const nmp_space *sp = &f.plan->spaces[s];
        assert_true(sp->solved);
        for (int64_t c = 0; c < sp->size; c++)
            assert_int_equal(sp->perm[c], c);
        assert_int_equal(sp->stats.status, NMP_STATUS_TIME_LIMIT);
        nmp_assert_close(sp->stats.kept, sp->stats.identity, 0);
        assert_true(sp->stats.bound >= sp->stats.kept);
        assert_true(sp->stats.verify_rel >= 0 && sp->stats.verify_rel <= NMP_VERIFY_TOL);
    }
    teardown(&f);
}

/* Stops at the k-th call of the progress callback; records the stages seen. */
typedef struct stopper {
    int calls, stop_at, solve_calls;
    char last_stage[16];
    bool saw_file;
} stopper;

static int stop_at(const nmp_ckpt_progress *p, void *user)
{
    stopper *s = user;
    snprintf(s->last_stage, sizeof s->last_stage, "%s", p->stage);
    s->solve_calls += strcmp(p->stage, "solve") == 0;
    s->saw_file |= p->file != NULL && temporaries(p->file) == 0 && access(p->file, F_OK) == 0;
    return s->calls++ == s->stop_at;
}

/* A stop at any call (solve, write, verify, last chance) leaves the old output and report and
 * no temporary; the stages come in order solve, write, verify. */
static void test_stop_keeps_old_files(void **state)
{
    (void)state;
    fixture f;
    setup(&f);
    stopper probe = { 0, -1, 0, "", false };
    f.o.progress = stop_at;
    f.o.progress_user = &probe;
    nmp_permute_result res;
    nmp_assert_ok(nmp_ckpt_permute(f.st, f.plan, &f.o, f.out, &res, NULL));
    assert_false(res.interrupted);
    assert_true(probe.saw_file);
    bool seen[3] = { false, false, false };
    for (int k = 0; k < probe.calls; k++) {
        write_text(f.out, "old output");
        write_text(f.rep, "old report");
        stopper s = { 0, k, 0, "", false };
        f.o.progress_user = &s;
        nmp_assert_ok(nmp_ckpt_permute(f.st, f.plan, &f.o, f.out, &res, NULL));
        assert_true(res.interrupted);
        assert_true(has_text(f.out, "old output"));
        assert_true(has_text(f.rep, "old report"));
        assert_int_equal(temporaries(f.out), 0);
        assert_int_equal(temporaries(f.rep), 0);
        seen[0] |= strcmp(s.last_stage, "solve") == 0;
        seen[1] |= strcmp(s.last_stage, "write") == 0;
        seen[2] |= strcmp(s.last_stage, "verify") == 0;
    }
    assert_true(seen[0] && seen[1] && seen[2]);
    teardown(&f);
}

/* A NaN in a producer is refused before any solve, naming the tensor and the index. */
static void test_nonfinite_refused(void **state)
{
    (void)state;
    fixture f;
    setup(&f);
    nmp_st_close(f.st);
    /* element 70 of up_proj (row 2, column 6) becomes a NaN: F32 at a known offset */
    FILE *fp = fopen(f.in, "r+b");
    uint64_t hlen = 0;
    assert_int_equal(fread(&hlen, 8, 1, fp), 1);
    nmp_assert_ok(nmp_st_open(f.in, &f.st, NULL));
    const nmp_st_tensor *t = nmp_st_find(f.st, "model.layers.0.mlp.up_proj.weight");
    const float nan = NAN;
    fseek(fp, (long)(8 + hlen + t->begin + 70 * 4), SEEK_SET);
    fwrite(&nan, 4, 1, fp);
    fclose(fp);
    nmp_st_close(f.st);
    nmp_assert_ok(nmp_st_open(f.in, &f.st, NULL));
    stopper s = { 0, -1, 0, "", false };
    f.o.progress = stop_at;
    f.o.progress_user = &s;
    nmp_msg msg = { { 0 } };
    nmp_permute_result res;
    assert_int_equal(nmp_ckpt_permute(f.st, f.plan, &f.o, f.out, &res, &msg), NMP_ERR_FORMAT);
    if (!strstr(msg.text, "up_proj.weight: NaN at index 70 ([2, 6])"))
        fail_msg("message: %s", msg.text);
    assert_int_equal(s.solve_calls, 0);
    assert_int_equal(access(f.out, F_OK), -1);
    teardown(&f);
}

/* Temporaries of dead processes are removed by the next write of the same path; those of a
 * live process and of other names stay. */
static void test_stale_temporaries(void **state)
{
    (void)state;
    fixture f;
    setup(&f);
    char dead[700], live[700], other[700];
    pid_t pid = 4194303; /* above the default pid_max: never alive here */
    for (; pid > 1000 && kill(pid, 0) == 0; pid--)
        ;
    snprintf(dead, sizeof dead, "%s.nmperm-tmp.%ld.abcdef", f.out, (long)pid);
    snprintf(live, sizeof live, "%s.nmperm-tmp.%ld.abcdef", f.out, (long)getppid());
    snprintf(other, sizeof other, "%s.nmperm-tmp.%ld.abcdef", f.rep, (long)pid);
    write_text(dead, "x");
    write_text(live, "x");
    write_text(other, "x");
    f.o.report = NULL;
    nmp_permute_result res;
    nmp_assert_ok(nmp_ckpt_permute(f.st, f.plan, &f.o, f.out, &res, NULL));
    assert_int_equal(access(dead, F_OK), -1);
    assert_int_equal(access(live, F_OK), 0);
    assert_int_equal(access(other, F_OK), 0);
    unlink(live);
    unlink(other);
    teardown(&f);
}

/* Apply without perms is an argument error; every allocation failure is NMP_ERR_NOMEM and leaves
 * no output and no temporary. */
static void test_errors_and_nomem(void **state)
{
    (void)state;
    fixture f;
    setup(&f);
    nmp_permute_result res;
    nmp_msg msg = { { 0 } };
    f.o.solve = 0;
    assert_int_equal(nmp_ckpt_permute(f.st, f.plan, &f.o, f.out, &res, &msg), NMP_ERR_ARG);
    assert_non_null(strstr(msg.text, "has no perm"));
    f.o.solve = 1;
    nmp_err e = NMP_ERR_NOMEM;
    for (int64_t k = 0; e == NMP_ERR_NOMEM; k++) {
        nmp_alloc_fail_after(k);
        nmp_msg m = { { 0 } };
        e = nmp_ckpt_permute(f.st, f.plan, &f.o, f.out, &res, &m);
        nmp_alloc_fail_after(-1);
        if (e != NMP_OK && e != NMP_ERR_NOMEM)
            fail_msg("allocation %lld: %s: %s", (long long)k, nmp_err_str(e), m.text);
        if (e == NMP_ERR_NOMEM) {
            assert_int_equal(access(f.out, F_OK), -1);
            assert_int_equal(access(f.rep, F_OK), -1);
        }
        assert_int_equal(temporaries(f.out), 0);
        assert_int_equal(temporaries(f.rep), 0);
        assert_true(k < 100000);
    }
    nmp_assert_ok(e);
    assert_int_equal(access(f.out, F_OK), 0);
    teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_permute_end_to_end),
        cmocka_unit_test(test_time_limit_spent_by_build),
        cmocka_unit_test(test_stop_keeps_old_files),
        cmocka_unit_test(test_nonfinite_refused),
        cmocka_unit_test(test_stale_temporaries),
        cmocka_unit_test(test_errors_and_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

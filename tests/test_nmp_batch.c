/* test_nmp_batch.c: batch jobs: natural order, listing with stable ids and bad inputs, shards,
 * journals with torn lines, one job's solve, atomic files */
#define _XOPEN_SOURCE 700 /* mkdtemp */
#include "nmp_test.h"

#include <sys/stat.h>
#include <unistd.h>

static char root[256];

static void path_in(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", root, name);
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "%s/nmp_batch_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR")
                                                                         : "/tmp");
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_matrix(const char *name, int64_t rows, int64_t cols, uint64_t seed)
{
    char path[512];
    path_in(path, sizeof path, name);
    nmp_assert_ok(nmp_batch_mkdirs(path, NULL));
    float *a = nmp_test_matrix(rows, cols, 0, seed);
    const nmp_matrix m = nmp_matrix_view(a, rows, cols);
    nmp_assert_ok(nmp_npy_write_matrix(path, &m, NULL));
    free(a);
}

static void test_name_cmp(void **state)
{
    (void)state;
    assert_true(nmp_batch_name_cmp("layer2", "layer10") < 0);
    assert_true(nmp_batch_name_cmp("layer10", "layer2") > 0);
    assert_true(nmp_batch_name_cmp("a/l.2.mlp", "a/l.10.attn") < 0);
    assert_true(nmp_batch_name_cmp("x", "x") == 0);
    assert_true(nmp_batch_name_cmp("l02", "l2") != 0); /* total: leading zeros still differ */
    assert_true(nmp_batch_name_cmp("l02", "l2") == -nmp_batch_name_cmp("l2", "l02"));
    assert_true(nmp_batch_name_cmp("a", "ab") < 0);
}

static void test_list(void **state)
{
    (void)state;
    char in[512], bad[512], manifest[512];
    write_matrix("in/top.npy", 16, 32, 1);
    write_matrix("in/sub/layer10.npy", 8, 16, 2);
    write_matrix("in/sub/layer2.npy", 8, 24, 3);
    write_matrix("in/odd.npy", 8, 10, 4); /* 10 columns: not divisible by 4 */
    path_in(bad, sizeof bad, "in/sub/bad.npy");
    nmp_assert_ok(nmp_batch_write_file(bad, "nope", 4, NULL));
    path_in(in, sizeof in, "in");
    const char *solvers[] = { "swap", "identity" };
    const nmp_batch_opts o = { solvers, 2, { 2, 4 }, { 0 }, 0, NULL };
    const char *inputs[] = { in, in }; /* given twice: listed once */
    nmp_batch_list *l = NULL;
    nmp_assert_ok(nmp_batch_list_inputs(inputs, 2, &o, &l, NULL));
    assert_int_equal(l->count, 10);
    const char *ids[] = { "odd.npy@swap", "odd.npy@identity", "sub/bad.npy@swap",
                          "sub/bad.npy@identity", "sub/layer2.npy@swap",
                          "sub/layer2.npy@identity", "sub/layer10.npy@swap",
                          "sub/layer10.npy@identity", "top.npy@swap", "top.npy@identity" };
    for (int k = 0; k < 10; k++)
        assert_string_equal(l->jobs[k].id, ids[k]);
    assert_non_null(l->jobs[0].error);
    assert_non_null(strstr(l->jobs[0].error, "not divisible by 4"));
    assert_non_null(l->jobs[2].error);
    assert_null(l->jobs[4].error);
    assert_int_equal(l->jobs[4].rows, 8);
    assert_int_equal(l->jobs[4].cols, 24);
    assert_string_equal(l->jobs[4].output, "perms/sub/layer2.npy.swap.npy");
    assert_true(l->jobs[8].cost > l->jobs[4].cost);
    nmp_batch_list_free(l);

    /* a manifest with a comment, a blank line and a missing file */
    path_in(manifest, sizeof manifest, "list.txt");
    const char text[] = "# inputs\nin/top.npy\n\nin/missing.npy\n";
    nmp_assert_ok(nmp_batch_write_file(manifest, text, sizeof text - 1, NULL));
    const char *minputs[] = { manifest };
    nmp_assert_ok(nmp_batch_list_inputs(minputs, 1, &o, &l, NULL));
    assert_int_equal(l->count, 4);
    int missing = 0;
    for (int64_t k = 0; k < l->count; k++)
        missing += l->jobs[k].error && strstr(l->jobs[k].error, "cannot open") != NULL;
    assert_int_equal(missing, 2);
    nmp_batch_list_free(l);
    assert_int_equal(nmp_batch_list_inputs(minputs, 0, &o, &l, NULL), NMP_ERR_ARG);
}

static void test_shard(void **state)
{
    (void)state;
    enum { N = 40 };
    nmp_batch_job jobs[N];
    memset(jobs, 0, sizeof jobs);
    double total = 0, biggest = 0;
    for (int k = 0; k < N; k++) {
        jobs[k].cost = nmp_batch_cost(64 + 13 * k, 16 * (1 + k % 7));
        jobs[k].group = k < 4 ? 0 : k; /* the first four stay together */
        total += jobs[k].cost;
        biggest = jobs[k].cost > biggest ? jobs[k].cost : biggest;
    }
    biggest = jobs[0].cost + jobs[1].cost + jobs[2].cost + jobs[3].cost > biggest
                  ? jobs[0].cost + jobs[1].cost + jobs[2].cost + jobs[3].cost
                  : biggest;
    nmp_batch_list l = { NULL, N, jobs };
    int a[N], b[N];
    for (int n = 1; n <= 5; n++) {
        nmp_assert_ok(nmp_batch_shard(&l, n, a));
        nmp_assert_ok(nmp_batch_shard(&l, n, b));
        assert_memory_equal(a, b, sizeof a); /* deterministic */
        double load[5] = { 0 };
        for (int k = 0; k < N; k++) {
            assert_true(a[k] >= 0 && a[k] < n);
            load[a[k]] += jobs[k].cost;
        }
        for (int k = 1; k < 4; k++)
            assert_int_equal(a[k], a[0]);
        double lo = total, hi = 0;
        for (int s = 0; s < n; s++) {
            lo = load[s] < lo ? load[s] : lo;
            hi = load[s] > hi ? load[s] : hi;
        }
        assert_true(hi - lo <= biggest + 1e-9); /* LPT: within one group of each other */
    }
    assert_int_equal(nmp_batch_shard(&l, 0, a), NMP_ERR_ARG);
}

static void test_journal(void **state)
{
    (void)state;
    char path[512];
    char **lines = NULL;
    int64_t count = 0;
    int torn = 0;
    nmp_journal *j = NULL;
    nmp_msg msg = { { 0 } };
    path_in(path, sizeof path, "j/journal.jsonl");
    nmp_assert_ok(nmp_journal_read(path, &lines, &count, &torn, NULL)); /* missing: empty */
    assert_int_equal(count, 0);
    nmp_batch_lines_free(lines, count);
    nmp_assert_ok(nmp_journal_open(path, 1, &j, NULL));
    nmp_assert_ok(nmp_journal_append(j, "{\"a\":1}", NULL));
    nmp_assert_ok(nmp_journal_append(j, "{\"b\":2}", NULL));
    nmp_journal_close(j);
    /* a write cut short */
    FILE *f = fopen(path, "ab");
    assert_non_null(f);
    fputs("{\"c\":", f);
    fclose(f);
    nmp_assert_ok(nmp_journal_read(path, &lines, &count, &torn, NULL));
    assert_int_equal(count, 2);
    assert_int_equal(torn, 1);
    assert_string_equal(lines[1], "{\"b\":2}");
    nmp_batch_lines_free(lines, count);
    /* opening cuts it off; the next line is whole */
    nmp_assert_ok(nmp_journal_open(path, 0, &j, NULL));
    nmp_assert_ok(nmp_journal_append(j, "{\"c\":3}", NULL));
    nmp_journal_close(j);
    nmp_assert_ok(nmp_journal_read(path, &lines, &count, &torn, NULL));
    assert_int_equal(count, 3);
    assert_int_equal(torn, 0);
    assert_string_equal(lines[2], "{\"c\":3}");
    nmp_batch_lines_free(lines, count);
    /* a bad line before the last is an error, not a torn line */
    const char bad[] = "{\"a\":1}\nxx\n{\"b\":2}\n";
    nmp_assert_ok(nmp_batch_write_file(path, bad, sizeof bad - 1, NULL));
    assert_int_equal(nmp_journal_read(path, &lines, &count, &torn, &msg), NMP_ERR_FORMAT);
    assert_non_null(strstr(msg.text, "line 2"));
    assert_null(lines);
}

static void test_run(void **state)
{
    (void)state;
    char in[512], out[512];
    write_matrix("run/w.npy", 32, 16, 9);
    path_in(in, sizeof in, "run/w.npy");
    path_in(out, sizeof out, "run/out/deep/p.npy");
    nmp_batch_run_opts o;
    memset(&o, 0, sizeof o);
    o.nm = (nmp_pattern){ 2, 4 };
    o.objective = NMP_OBJ_ABS;
    nmp_params_init(&o.par);
    nmp_batch_result r, r2;
    nmp_assert_ok(nmp_batch_run(in, NULL, "dp", &o, out, &r, NULL));
    assert_int_equal(r.res.status, NMP_STATUS_OPTIMAL);
    assert_true(r.res.score >= r.identity);
    assert_true(isnan(r.lp_bound));
    int32_t *perm = NULL;
    int64_t len = 0;
    nmp_assert_ok(nmp_npy_read_perm(out, &perm, &len, NULL));
    assert_int_equal(len, 16);
    assert_true(nmp_perm_is_valid(perm, len));
    nmp_free(perm);
    nmp_assert_ok(nmp_batch_run(in, NULL, "dp", &o, out, &r2, NULL));
    nmp_assert_close(r.res.score, r2.res.score, 0); /* fixed work: the same result */
    o.objective = NMP_OBJ_IMPORTANCE;
    assert_int_equal(nmp_batch_run(in, NULL, "dp", &o, out, &r, NULL), NMP_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_cmp),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_shard),
        cmocka_unit_test(test_journal),
        cmocka_unit_test(test_run),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

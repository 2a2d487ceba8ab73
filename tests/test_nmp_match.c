/* test_nmp_match.c: the 1:2 blossom matching against brute force and dp, ties, size, limits */
#include "nmp_test.h"

#include "nmp_solvers.h"

/* ------------------------------------------------------------ brute force */

/* Every perfect matching: the lowest single column pairs with each other single column. */
typedef struct brute {
    const nmp_problem *pb;
    int cols;
    double w[16][16];
    int32_t slot[16], best_perm[16];
    double best;
} brute;

static void brute_rec(brute *b, uint32_t used, int k, double val)
{
    if (k == b->cols) {
        if (val > b->best) {
            b->best = val;
            memcpy(b->best_perm, b->slot, sizeof b->slot);
        }
        return;
    }
    int l = 0;
    while (used >> l & 1u)
        l++;
    for (int i = l + 1; i < b->cols; i++)
        if (!(used >> i & 1u)) {
            b->slot[k] = l;
            b->slot[k + 1] = i;
            brute_rec(b, used | 1u << l | 1u << i, k + 2, val + b->w[l][i]);
        }
}

static double brute_force(const nmp_problem *pb)
{
    brute b = { 0 };
    b.pb = pb;
    b.cols = (int)nmp_problem_cols(pb);
    assert_true(b.cols <= 16);
    for (int i = 0; i < b.cols; i++)
        for (int k = i + 1; k < b.cols; k++) {
            const int32_t q[2] = { i, k };
            b.w[i][k] = nmp_score_group_value(pb, q);
        }
    b.best = -1;
    brute_rec(&b, 0, 0, 0.0);
    return b.best;
}

/* A problem over a rows x cols matrix of small integers 0..levels-1 (many ties). */
static nmp_problem *tie_problem(int64_t rows, int64_t cols, int n, int m, int levels, uint64_t seed)
{
    nmp_rng r;
    nmp_rng_seed(&r, seed);
    float *a = malloc((size_t)(rows * cols) * sizeof *a);
    assert_non_null(a);
    for (int64_t k = 0; k < rows * cols; k++)
        a[k] = (float)nmp_rng_below(&r, (uint64_t)levels);
    nmp_problem_desc d = { 0 };
    d.weights = nmp_matrix_view(a, rows, cols);
    d.nm.n = n;
    d.nm.m = m;
    nmp_problem *pb = NULL;
    nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
    free(a);
    return pb;
}

/* Runs match from the identity; checks the driver's invariants and returns the score. */
static double run_match(const nmp_problem *pb, const nmp_params *par, nmp_result *res)
{
    const int64_t cols = nmp_problem_cols(pb);
    int32_t *perm = malloc((size_t)cols * sizeof *perm);
    assert_non_null(perm);
    nmp_msg msg = { { 0 } };
    nmp_assert_ok(nmp_solve(pb, "match", par, perm, 1, res, &msg));
    assert_true(nmp_perm_is_valid(perm, cols));
    double kept;
    nmp_assert_ok(nmp_score(pb, perm, &kept));
    nmp_assert_close(kept, res->score, 1e-9 * (1 + kept));
    assert_true(res->score >= res->start_score);
    assert_true(res->bound >= res->score);
    free(perm);
    return res->score;
}

/* ------------------------------------------------------------------ tests */

static void test_brute(void **unused)
{
    (void)unused;
    const int64_t rows_list[] = { 1, 3, 16, 64 };
    for (int64_t cols = 2; cols <= 12; cols += 2)
        for (int r = 0; r < 4; r++)
            for (uint64_t seed = 1; seed <= 6; seed++) {
                nmp_problem *pb = nmp_test_problem(rows_list[r], cols, 1, 2, (int)(seed & 1),
                                                   seed * 131 + (uint64_t)cols);
                nmp_result res;
                const double got = run_match(pb, NULL, &res);
                const double want = brute_force(pb);
                nmp_assert_close(got, want, 1e-9 * (1 + want));
                assert_int_equal(res.status, NMP_STATUS_OPTIMAL);
                nmp_problem_free(pb);
            }
}

/* Integer saliencies with few levels: many equal weights and zero-dual blossoms. */
static void test_ties(void **unused)
{
    (void)unused;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        const int64_t cols = 2 + 2 * (int64_t)(seed % 6);
        const int64_t rows = 1 + (int64_t)(seed % 5);
        nmp_problem *pb = tie_problem(rows, cols, 1, 2, 2 + (int)(seed % 3), seed);
        nmp_result res;
        const double got = run_match(pb, NULL, &res);
        nmp_assert_close(got, brute_force(pb), 1e-9);
        nmp_problem_free(pb);
    }
}

/* Larger instances against the exact subset DP (when this build has it). */
static void test_dp(void **unused)
{
    (void)unused;
    if (!nmp_solver_find("dp"))
        skip();
    for (int64_t cols = 14; cols <= 24; cols += 2)
        for (uint64_t seed = 1; seed <= 3; seed++) {
            nmp_problem *pb = seed == 3 ? tie_problem(4, cols, 1, 2, 3, seed + (uint64_t)cols)
                                        : nmp_test_problem(32, cols, 1, 2, (int)seed - 1,
                                                           seed + (uint64_t)cols);
            nmp_result res, dres;
            const double got = run_match(pb, NULL, &res);
            int32_t *perm = malloc((size_t)cols * sizeof *perm);
            assert_non_null(perm);
            nmp_assert_ok(nmp_solve(pb, "dp", NULL, perm, 1, &dres, NULL));
            nmp_assert_close(got, dres.score, 1e-9 * (1 + got));
            free(perm);
            nmp_problem_free(pb);
        }
}

/* 512 and 1024 columns solved to optimality; no pairwise swap improves the result (timings:
 * bench/bench_limits.c and docs/benchmarks.md, not here). */
static void test_large(void **unused)
{
    (void)unused;
    const int64_t sizes[] = { 512, 1024 };
    for (int t = 0; t < 2; t++) {
        nmp_problem *pb = nmp_test_problem(64, sizes[t], 1, 2, 0, 7);
        int32_t *perm = malloc((size_t)sizes[t] * sizeof *perm);
        assert_non_null(perm);
        nmp_result res, sres;
        nmp_assert_ok(nmp_solve(pb, "match", NULL, perm, 1, &res, NULL));
        const double got = res.score;
        assert_int_equal(res.status, NMP_STATUS_OPTIMAL);
        assert_true(res.iterations >= 1 && res.iterations <= sizes[t] / 2 + 1); /* stages */
        assert_true(got > nmp_score_identity(pb));
        /* the swap local search cannot improve on a maximum-weight matching */
        nmp_assert_ok(nmp_solve(pb, "swap", NULL, perm, 0, &sres, NULL));
        nmp_assert_close(sres.score, got, 1e-9 * got);
        free(perm);
        nmp_problem_free(pb);
    }
}

static void test_refuse(void **unused)
{
    (void)unused;
    const int pats[][2] = { { 2, 4 }, { 1, 4 }, { 1, 3 }, { 2, 3 } };
    for (int t = 0; t < 4; t++) {
        nmp_problem *pb = nmp_test_problem(4, 12, pats[t][0], pats[t][1], 0, 1);
        int32_t perm[12];
        nmp_result res;
        nmp_msg msg = { { 0 } };
        assert_int_equal(nmp_solve(pb, "match", NULL, perm, 1, &res, &msg), NMP_ERR_UNSUPPORTED);
        assert_non_null(strstr(msg.text, "1:2"));
        nmp_problem_free(pb);
    }
    /* cols above max_cols */
    nmp_problem *pb = nmp_test_problem(2, 64, 1, 2, 0, 1);
    nmp_params par;
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "max_cols", 32));
    int32_t perm[64];
    nmp_result res;
    nmp_msg msg = { { 0 } };
    assert_int_equal(nmp_solve(pb, "match", &par, perm, 1, &res, &msg), NMP_ERR_UNSUPPORTED);
    assert_non_null(strstr(msg.text, "max_cols"));
    nmp_problem_free(pb);
}

/* An odd pattern count is refused by the problem itself, before any solver. */
static void test_bad_cols(void **unused)
{
    (void)unused;
    float a[6] = { 1, 2, 3, 4, 5, 6 };
    nmp_problem_desc d = { 0 };
    d.weights = nmp_matrix_view(a, 2, 3);
    d.nm.n = 1;
    d.nm.m = 2;
    nmp_problem *pb = NULL;
    assert_int_equal(nmp_problem_create(&d, &pb, NULL), NMP_ERR_ARG);
    assert_null(pb);
}

/* A run cut short (in the weights at 256 rows; in the stages at 2 rows, where the weights take
 * ~1 ms and the ~1000 stages ~1 s) reports the time limit and returns a valid perm no worse than
 * the start (run_match checks both); an interrupt reports itself. */
static void test_time_limit(void **unused)
{
    (void)unused;
    nmp_problem *flat = nmp_test_problem(2, 2048, 1, 2, 0, 4);
    nmp_params par;
    nmp_params_init(&par);
    par.time_limit = 0.05;
    nmp_result res;
    run_match(flat, &par, &res);
    assert_int_equal(res.status, NMP_STATUS_TIME_LIMIT);
    assert_true(res.iterations < 1024); /* stages: the matching is not complete */
    nmp_problem_free(flat);
    nmp_problem *pb = nmp_test_problem(256, 2048, 1, 2, 0, 3);
    run_match(pb, &par, &res);
    assert_int_equal(res.status, NMP_STATUS_TIME_LIMIT);
    nmp_params_init(&par);
    par.progress = nmp_test_stop_now;
    run_match(pb, &par, &res);
    assert_int_equal(res.status, NMP_STATUS_INTERRUPTED);
    nmp_problem_free(pb);
}

/* A start better than what a stopped run reaches is returned unchanged. */
static void test_keeps_start(void **unused)
{
    (void)unused;
    nmp_problem *pb = nmp_test_problem(16, 20, 1, 2, 0, 11);
    int32_t perm[20], best[20];
    nmp_result res;
    nmp_assert_ok(nmp_solve(pb, "match", NULL, best, 1, &res, NULL));
    const double opt = res.score;
    memcpy(perm, best, sizeof perm);
    nmp_params par;
    nmp_params_init(&par);
    par.progress = nmp_test_stop_now;
    nmp_assert_ok(nmp_solve(pb, "match", &par, perm, 0, &res, NULL));
    nmp_assert_close(res.score, opt, 1e-9 * opt);
    nmp_problem_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_brute),      cmocka_unit_test(test_ties),
        cmocka_unit_test(test_dp),         cmocka_unit_test(test_large),
        cmocka_unit_test(test_refuse),     cmocka_unit_test(test_bad_cols),
        cmocka_unit_test(test_time_limit), cmocka_unit_test(test_keeps_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

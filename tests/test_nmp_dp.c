/* test_nmp_dp.c: the exact subset DP against brute force, its limits, threads and time limit */
#include "nmp_test.h"

#include "nmp_solvers.h"

/* ------------------------------------------------------------ brute force */

/* Every partition into groups of m, each group led by the lowest unused column; D memoised by
 * the group's mask. */
typedef struct brute {
    const nmp_problem *pb;
    int cols, m;
    double *memo; /* 2^cols, NAN until computed */
    int32_t slot[32], best_perm[32];
    double best;
} brute;

static double brute_group(brute *b, uint32_t q)
{
    if (isnan(b->memo[q])) {
        int32_t c[NMP_MAX_M];
        int t = 0;
        for (int i = 0; i < b->cols; i++)
            if (q >> i & 1u)
                c[t++] = i;
        b->memo[q] = nmp_score_group_value(b->pb, c);
    }
    return b->memo[q];
}

/* Members t.. of the group that starts at slot g*m; `val` sums the closed groups. */
static void brute_rec(brute *b, uint32_t used, int g, int t, int from, uint32_t q, double val)
{
    const int m = b->m;
    if (t == m) {
        val += brute_group(b, q);
        used |= q;
        if ((g + 1) * m == b->cols) {
            if (val > b->best) {
                b->best = val;
                memcpy(b->best_perm, b->slot, sizeof b->slot);
            }
            return;
        }
        int l = 0;
        while (used >> l & 1u)
            l++;
        b->slot[(g + 1) * m] = l;
        brute_rec(b, used, g + 1, 1, l + 1, 1u << l, val);
        return;
    }
    for (int i = from; i < b->cols; i++)
        if (!((used | q) >> i & 1u)) {
            b->slot[g * m + t] = i;
            brute_rec(b, used, g, t + 1, i + 1, q | 1u << i, val);
        }
}

static double brute_force(const nmp_problem *pb, int32_t *perm)
{
    brute b = { 0 };
    b.pb = pb;
    b.cols = (int)nmp_problem_cols(pb);
    b.m = nmp_problem_pattern(pb).m;
    b.memo = malloc(((size_t)1 << b.cols) * sizeof *b.memo);
    assert_non_null(b.memo);
    for (size_t k = 0; k < (size_t)1 << b.cols; k++)
        b.memo[k] = NAN;
    b.best = -1;
    b.slot[0] = 0;
    brute_rec(&b, 0, 0, 1, 1, 1u, 0.0);
    free(b.memo);
    if (perm)
        memcpy(perm, b.best_perm, (size_t)b.cols * sizeof *perm);
    return b.best;
}

/* ---------------------------------------------------------------- helpers */

/* dp through its ops table: create, solve, destroy. */
static nmp_err dp_direct(const nmp_problem *pb, const nmp_params *par, int32_t *perm,
                         nmp_result *res, nmp_msg *msg)
{
    void *state = NULL;
    nmp_err e = nmp_dp_ops.create(pb, par, &state, msg);
    if (e == NMP_OK)
        e = nmp_dp_ops.solve(state, perm, res);
    nmp_dp_ops.destroy(state);
    return e;
}

static void check_result(const nmp_problem *pb, const int32_t *perm, const nmp_result *res,
                         double opt)
{
    const int64_t cols = nmp_problem_cols(pb);
    assert_true(nmp_perm_is_valid(perm, cols));
    assert_int_equal(res->status, NMP_STATUS_OPTIMAL);
    nmp_assert_close(res->score, opt, 1e-9 * fmax(1.0, opt));
    nmp_assert_close(nmp_test_score(pb, perm), res->score, 1e-12 * fmax(1.0, opt));
    assert_true(res->bound >= res->score);
    nmp_assert_close(res->bound, opt, 1e-9 * fmax(1.0, opt));
    assert_true(res->score >= res->start_score);
}

/* ------------------------------------------------------------------ tests */

static void test_ops_table(void **ctx)
{
    (void)ctx;
    assert_string_equal(nmp_dp_ops.name, "dp");
    assert_non_null(nmp_dp_ops.summary);
    assert_ptr_equal(nmp_solver_find("dp"), &nmp_dp_ops);
    assert_string_equal(nmp_dp_ops.params[0].name, "max_cols");
    nmp_assert_close(nmp_dp_ops.params[0].def, 28, 0);
    assert_null(nmp_dp_ops.params[1].name);
}

/* 200 random small instances: dp (through nmp_solve, from identity, and directly, from a random
 * start) equals brute force. */
static void test_brute_force(void **ctx)
{
    (void)ctx;
    static const int patterns[][2] = { { 1, 2 }, { 2, 4 }, { 1, 4 }, { 3, 4 }, { 2, 6 },
                                       { 1, 3 }, { 2, 3 }, { 4, 6 } };
    const int npat = (int)(sizeof patterns / sizeof patterns[0]);
    nmp_rng r;
    nmp_rng_seed(&r, 2024);
    for (int it = 0; it < 200; it++) {
        const int n = patterns[it % npat][0], m = patterns[it % npat][1];
        const int lo = (4 + m - 1) / m, hi = 12 / m; /* groups with 4 <= cols <= 12 */
        const int cols = m * (lo + (int)nmp_rng_below(&r, (uint64_t)(hi - lo + 1)));
        const int rows = 1 + (int)nmp_rng_below(&r, 40);
        const int kind = (int)nmp_rng_below(&r, 2);
        nmp_problem *pb = nmp_test_problem(rows, cols, n, m, kind, 1000 + (uint64_t)it);
        int32_t bperm[32], perm[32];
        const double opt = brute_force(pb, bperm);
        nmp_assert_close(nmp_test_score(pb, bperm), opt, 1e-9 * opt);

        nmp_result res;
        nmp_msg msg = { { 0 } };
        nmp_assert_ok(nmp_solve(pb, "dp", NULL, perm, 1, &res, &msg));
        check_result(pb, perm, &res, opt);
        nmp_assert_close(res.start_score, nmp_score_identity(pb), 1e-9 * opt);

        nmp_perm_random(perm, cols, &r);
        const double start = nmp_test_score(pb, perm);
        nmp_assert_ok(dp_direct(pb, NULL, perm, &res, &msg));
        nmp_assert_close(res.start_score, start, 0);
        check_result(pb, perm, &res, opt);
        nmp_problem_free(pb);
    }
}

/* Larger checks of general n:m against brute force (16 columns). */
static void test_brute_force_16(void **ctx)
{
    (void)ctx;
    static const int patterns[][2] = { { 2, 8 }, { 1, 4 }, { 2, 4 }, { 3, 4 }, { 5, 8 } };
    for (int p = 0; p < (int)(sizeof patterns / sizeof patterns[0]); p++) {
        nmp_problem *pb = nmp_test_problem(12, 16, patterns[p][0], patterns[p][1], p & 1,
                                           77 + (uint64_t)p);
        int32_t perm[16];
        const double opt = brute_force(pb, NULL);
        nmp_result res;
        nmp_assert_ok(nmp_solve(pb, "dp", NULL, perm, 1, &res, NULL));
        check_result(pb, perm, &res, opt);
        nmp_problem_free(pb);
    }
}

/* The returned perm is in canonical form; a start that is already optimal comes back as is. */
static void test_optimal_start_kept(void **ctx)
{
    (void)ctx;
    nmp_problem *pb = nmp_test_problem(20, 12, 2, 4, 0, 5);
    int32_t perm[12], canon[12], start[12];
    nmp_result res;
    nmp_assert_ok(nmp_solve(pb, "dp", NULL, perm, 1, &res, NULL));
    memcpy(canon, perm, sizeof perm);
    nmp_perm_canonical(canon, 12, 4);
    assert_memory_equal(canon, perm, sizeof perm);

    /* the same partition, groups and members reordered */
    for (int g = 0; g < 3; g++)
        for (int t = 0; t < 4; t++)
            start[g * 4 + t] = perm[(2 - g) * 4 + (3 - t)];
    memcpy(perm, start, sizeof perm);
    nmp_assert_ok(dp_direct(pb, NULL, perm, &res, NULL));
    assert_memory_equal(perm, start, sizeof perm);
    assert_int_equal(res.status, NMP_STATUS_OPTIMAL);
    nmp_assert_close(res.score, res.start_score, 0);
    nmp_problem_free(pb);
}

static void test_limits(void **ctx)
{
    (void)ctx;
    nmp_problem *pb = nmp_test_problem(4, 32, 2, 4, 0, 9);
    int32_t perm[32];
    nmp_result res;
    nmp_msg msg = { { 0 } };
    void *state = NULL;
    assert_int_equal(nmp_dp_ops.create(pb, NULL, &state, &msg), NMP_ERR_UNSUPPORTED);
    assert_null(state);
    assert_string_equal(msg.text,
                        "dp: 32 columns exceeds the limit of 28 (exact DP over column subsets)");
    assert_int_equal(nmp_solve(pb, "dp", NULL, perm, 1, &res, &msg), NMP_ERR_UNSUPPORTED);
    nmp_problem_free(pb);

    /* a lower limit set by parameter */
    pb = nmp_test_problem(4, 12, 2, 4, 0, 9);
    nmp_params par;
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "max_cols", 8));
    memset(&msg, 0, sizeof msg);
    assert_int_equal(nmp_solve(pb, "dp", &par, perm, 1, &res, &msg), NMP_ERR_UNSUPPORTED);
    assert_string_equal(msg.text,
                        "dp: 12 columns exceeds the limit of 8 (exact DP over column subsets)");
    nmp_problem_free(pb);

    /* too many m-subsets: C(30, 15) */
    pb = nmp_test_problem(2, 30, 7, 15, 0, 9);
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "max_cols", 30));
    memset(&msg, 0, sizeof msg);
    assert_int_equal(nmp_solve(pb, "dp", &par, perm, 1, &res, &msg), NMP_ERR_UNSUPPORTED);
    assert_non_null(strstr(msg.text, "dp: C(30, 15) = 155117520 subsets exceeds the limit"));
    nmp_problem_free(pb);
}

/* Same perm with 1, 2 and the default number of threads, also under heavy ties. */
static void check_threads(const nmp_problem *pb)
{
    const int64_t cols = nmp_problem_cols(pb);
    int32_t p1[32], p2[32], p0[32];
    nmp_result r1, r2, r0;
    nmp_params par;
    nmp_params_init(&par);
    par.threads = 1;
    nmp_assert_ok(nmp_solve(pb, "dp", &par, p1, 1, &r1, NULL));
    par.threads = 2;
    nmp_assert_ok(nmp_solve(pb, "dp", &par, p2, 1, &r2, NULL));
    par.threads = 0;
    nmp_assert_ok(dp_direct(pb, &par, (nmp_perm_identity(p0, cols), p0), &r0, NULL));
    assert_memory_equal(p1, p2, (size_t)cols * sizeof *p1);
    assert_memory_equal(p1, p0, (size_t)cols * sizeof *p1);
    nmp_assert_close(r1.score, r2.score, 0);
    nmp_assert_close(r1.bound, r2.bound, 0);
    nmp_assert_close(r1.score, r0.score, 0);
}

static void test_threads(void **ctx)
{
    (void)ctx;
    nmp_problem *pb = nmp_test_problem(32, 24, 2, 4, 0, 11);
    check_threads(pb);
    nmp_problem_free(pb);
    pb = nmp_test_problem(16, 20, 1, 2, 1, 12);
    check_threads(pb);
    nmp_problem_free(pb);

    /* columns drawn from three small-integer columns: many optimal partitions */
    enum { rows = 6, cols = 20 };
    float a[rows * cols];
    for (int j = 0; j < rows; j++)
        for (int i = 0; i < cols; i++)
            a[j * cols + i] = (float)((i * 7 % 3 + j) % 4);
    nmp_problem_desc d = { 0 };
    d.weights = nmp_matrix_view(a, rows, cols);
    d.nm.n = 2;
    d.nm.m = 4;
    d.objective = NMP_OBJ_ABS;
    nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
    check_threads(pb);
    nmp_problem_free(pb);
}

/* A tiny time limit on 26 columns stops the search and hands back the start. */
static void test_time_limit(void **ctx)
{
    (void)ctx;
    /* 2:4 needs 26 = 4 * 6.5: use 1:2 with 26 columns and 2:4 with 28 */
    nmp_problem *pb = nmp_test_problem(64, 26, 1, 2, 0, 14);
    int32_t perm[28], start[28];
    nmp_rng r;
    nmp_rng_seed(&r, 3);
    nmp_perm_random(start, 26, &r);
    memcpy(perm, start, sizeof start);
    nmp_params par;
    nmp_params_init(&par);
    par.time_limit = 1e-9;
    nmp_result res;
    nmp_assert_ok(nmp_solve(pb, "dp", &par, perm, 0, &res, NULL));
    assert_int_equal(res.status, NMP_STATUS_TIME_LIMIT);
    assert_memory_equal(perm, start, 26 * sizeof *perm);
    nmp_assert_close(res.score, res.start_score, 0);
    nmp_problem_free(pb);

    pb = nmp_test_problem(64, 28, 2, 4, 0, 15);
    nmp_perm_random(start, 28, &r);
    memcpy(perm, start, sizeof start);
    nmp_assert_ok(dp_direct(pb, &par, perm, &res, NULL));
    assert_int_equal(res.status, NMP_STATUS_TIME_LIMIT);
    assert_memory_equal(perm, start, 28 * sizeof *perm);
    nmp_assert_close(res.score, nmp_test_score(pb, start), 0);
    assert_true(res.bound >= res.score);
    nmp_problem_free(pb);

    /* many rows: the group values run in chunks of ~2^20 row values (64 subsets at 4096 rows
     * and m = 4), so a passed limit stops the solve after the first chunk, not after 4096
     * subsets */
    pb = nmp_test_problem(4096, 24, 2, 4, 0, 16);
    par.threads = 1;
    nmp_perm_identity(perm, 24);
    nmp_assert_ok(nmp_solve(pb, "dp", &par, perm, 1, &res, NULL));
    assert_int_equal(res.status, NMP_STATUS_TIME_LIMIT);
    assert_true(res.iterations >= 1 && res.iterations <= 64);
    for (int i = 0; i < 24; i++)
        assert_int_equal(perm[i], i);
    nmp_problem_free(pb);
}

static int stop_at_once(const nmp_progress *p, void *user)
{
    (void)p;
    (*(int *)user)++;
    return 1;
}

/* A progress callback that asks to stop interrupts a long solve (30 columns at 2:5: about a
 * minute of CPU time; the callback first runs after 0.2 s). */
static void test_interrupt(void **ctx)
{
    (void)ctx;
    nmp_problem *pb = nmp_test_problem(16, 30, 2, 5, 1, 16);
    int32_t perm[30];
    int calls = 0;
    nmp_params par;
    nmp_params_init(&par);
    par.progress = stop_at_once;
    par.progress_user = &calls;
    nmp_assert_ok(nmp_params_set(&par, "max_cols", 30));
    nmp_result res;
    nmp_assert_ok(nmp_solve(pb, "dp", &par, perm, 1, &res, NULL));
    assert_int_equal(res.status, NMP_STATUS_INTERRUPTED);
    assert_int_equal(calls, 1);
    int32_t ident[30];
    nmp_perm_identity(ident, 30);
    assert_memory_equal(perm, ident, sizeof ident);
    nmp_assert_close(res.score, nmp_score_identity(pb), 0);
    nmp_problem_free(pb);
}

/* Allocation k fails, for k = 0, 1, ...: NMP_ERR_NOMEM until everything fits. */
static void test_alloc_fail(void **ctx)
{
    (void)ctx;
    nmp_problem *pb = nmp_test_problem(10, 12, 2, 4, 0, 17);
    const double opt = brute_force(pb, NULL);
    for (int via_solve = 0; via_solve < 2; via_solve++) {
        int64_t k = 0;
        for (;; k++) {
            assert_true(k < 1000);
            int32_t perm[12];
            nmp_perm_identity(perm, 12);
            nmp_result res;
            nmp_alloc_fail_after(k);
            const nmp_err e = via_solve ? nmp_solve(pb, "dp", NULL, perm, 1, &res, NULL)
                                        : dp_direct(pb, NULL, perm, &res, NULL);
            nmp_alloc_fail_after(-1);
            if (e == NMP_OK) {
                check_result(pb, perm, &res, opt);
                break;
            }
            assert_int_equal(e, NMP_ERR_NOMEM);
        }
        assert_true(k > 0);
    }
    nmp_problem_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_table),
        cmocka_unit_test(test_brute_force),
        cmocka_unit_test(test_brute_force_16),
        cmocka_unit_test(test_optimal_start_kept),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_time_limit),
        cmocka_unit_test(test_interrupt),
        cmocka_unit_test(test_alloc_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

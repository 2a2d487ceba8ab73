/* test_nmp_window.c: the exact window re-partitioner against brute force over all partitions */
#include "nmp_test.h"

#include "nmp_solvers.h"

/* Best sum of D over all partitions of cols[0..kc-1] into groups of m, each group led by its
 * lowest unused position; D from nmp_score_group_value (double per row). */
typedef struct brute {
    const nmp_problem *pb;
    const int32_t *cols;
    int kc, m;
    int32_t q[NMP_MAX_M];
    double best;
} brute;

static void brute_rec(brute *b, uint32_t used, int t, int from, double val)
{
    const int m = b->m;
    if (t == m) {
        val += nmp_score_group_value(b->pb, b->q);
        if (used == (1u << b->kc) - 1u) {
            b->best = NMP_MAX(b->best, val);
            return;
        }
        int l = 0;
        while (used >> l & 1u)
            l++;
        int32_t saved[NMP_MAX_M];
        memcpy(saved, b->q, sizeof saved);
        b->q[0] = b->cols[l];
        brute_rec(b, used | 1u << l, 1, l + 1, val);
        memcpy(b->q, saved, sizeof saved);
        return;
    }
    for (int i = from; i < b->kc; i++)
        if (!(used >> i & 1u)) {
            b->q[t] = b->cols[i];
            brute_rec(b, used | 1u << i, t + 1, i + 1, val);
        }
}

static double brute_force(const nmp_problem *pb, const int32_t *cols, int k)
{
    brute b = { pb, cols, k * pb->m, pb->m, { 0 }, -1.0 };
    b.q[0] = cols[0];
    brute_rec(&b, 1u, 1, 1, 0.0);
    return b.best;
}

static int cmp_i32(const void *a, const void *b)
{
    const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The window solution of k groups of the first k*m columns of a random perm (several draws):
 * value == brute force, out is a re-partition of cols whose D sum is the value, cur is the
 * value of the given grouping. */
static void check_pattern(int rows, int n, int m, int k, int kind, uint64_t seed, int draws)
{
    const int kc = k * m;
    const int64_t cols = kc + 2 * m; /* a few columns outside the window */
    nmp_problem *pb = nmp_test_problem(rows, cols, n, m, kind, seed);
    nmp_window *w = NULL;
    nmp_assert_ok(nmp_window_create(pb, k, &w, NULL));
    int32_t perm[64], out[32], a[32], b[32];
    nmp_rng r;
    nmp_rng_seed(&r, seed);
    for (int d = 0; d < draws; d++) {
        nmp_perm_random(perm, cols, &r);
        double cur = -1;
        const double best = nmp_window_solve(w, perm, k, out, &cur);
        const double ref = brute_force(pb, perm, k);
        const double tol = 1e-5 * ref + 1e-6;
        nmp_assert_close(best, ref, tol);
        double given = 0, got = 0;
        for (int t = 0; t < k; t++) {
            given += nmp_score_group_value(pb, perm + t * m);
            got += nmp_score_group_value(pb, out + t * m);
        }
        nmp_assert_close(cur, given, tol);
        nmp_assert_close(got, best, tol);
        assert_true(best >= cur);
        memcpy(a, perm, (size_t)kc * sizeof *a);
        memcpy(b, out, (size_t)kc * sizeof *b);
        qsort(a, (size_t)kc, sizeof *a, cmp_i32);
        qsort(b, (size_t)kc, sizeof *b, cmp_i32);
        assert_memory_equal(a, b, (size_t)kc * sizeof *a);
        /* a smaller window with the same scratch */
        if (k > 2) {
            const double best2 = nmp_window_solve(w, perm, 2, out, NULL);
            nmp_assert_close(best2, brute_force(pb, perm, 2), tol);
        }
    }
    nmp_window_free(w);
    nmp_problem_free(pb);
}

static void test_2of4_8cols(void **s)
{
    (void)s;
    check_pattern(37, 2, 4, 2, 0, 1, 20);
    check_pattern(128, 2, 4, 2, 1, 2, 20);
    check_pattern(1, 2, 4, 2, 0, 3, 10);
}

static void test_2of4_12cols(void **s)
{
    (void)s;
    check_pattern(70, 2, 4, 3, 0, 4, 6);
    check_pattern(129, 2, 4, 3, 1, 5, 4);
}

static void test_other_patterns(void **s)
{
    (void)s;
    check_pattern(50, 1, 4, 2, 0, 6, 10);
    check_pattern(50, 3, 4, 3, 1, 7, 4);
    check_pattern(40, 1, 2, 6, 0, 8, 3);   /* 12 columns in 6 pairs */
    check_pattern(40, 1, 3, 4, 0, 9, 3);   /* 12 columns in 4 triples */
    check_pattern(30, 2, 6, 2, 1, 10, 5);  /* 12 columns in 2 groups of 6 */
    check_pattern(30, 3, 8, 2, 0, 11, 2);  /* 16 columns in 2 groups of 8 */
}

/* 16 columns of 2:4 against brute force (2.6 M partitions: one draw). */
static void test_2of4_16cols(void **s)
{
    (void)s;
    check_pattern(9, 2, 4, 4, 0, 12, 1);
}

/* Ties: integer saliencies give equal values for many partitions; the given grouping, when
 * optimal, must come out with gain exactly 0. */
static void test_ties(void **s)
{
    (void)s;
    const int rows = 6, cols = 12;
    float a[6 * 12];
    for (int j = 0; j < rows; j++)
        for (int i = 0; i < cols; i++)
            a[j * cols + i] = (float)((i * 7 + j * 3) % 4);
    nmp_problem_desc d = { 0 };
    d.weights = nmp_matrix_view(a, rows, cols);
    d.nm.n = 2;
    d.nm.m = 4;
    nmp_problem *pb = NULL;
    nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
    nmp_window *w = NULL;
    nmp_assert_ok(nmp_window_create(pb, 3, &w, NULL));
    int32_t perm[12], out[12];
    nmp_perm_identity(perm, cols);
    double cur;
    const double best = nmp_window_solve(w, perm, 3, out, &cur);
    nmp_assert_close(best, brute_force(pb, perm, 3), 1e-9);
    double again;
    const double best2 = nmp_window_solve(w, out, 3, perm, &again);
    assert_true(best2 == again); /* the optimum given back has no gain */
    assert_true(best2 == best);
    nmp_window_free(w);
    nmp_problem_free(pb);
}

static void test_limits(void **s)
{
    (void)s;
    nmp_problem *pb = nmp_test_problem(4, 64, 2, 4, 0, 13);
    nmp_window *w = NULL;
    assert_int_equal(nmp_window_create(pb, 9, &w, NULL), NMP_ERR_UNSUPPORTED); /* 36 columns */
    assert_null(w);
    nmp_msg msg = { { 0 } };
    assert_int_equal(nmp_window_create(pb, 8, &w, &msg), NMP_ERR_UNSUPPORTED); /* 32: states */
    assert_true(strlen(msg.text) > 0);
    assert_int_equal(nmp_window_create(pb, 7, &w, NULL), NMP_ERR_UNSUPPORTED); /* transitions */
    assert_int_equal(nmp_window_create(pb, 0, &w, NULL), NMP_ERR_ARG);
    nmp_assert_ok(nmp_window_create(pb, 6, &w, NULL)); /* 24 columns fit */
    assert_int_equal(nmp_window_max_k(w), 6);
    assert_true(nmp_window_cost(w, 6) > nmp_window_cost(w, 5));
    nmp_window_free(w);
    nmp_window_free(NULL);
    for (int64_t k = 0;; k++) { /* every allocation failure is reported, without leaks */
        nmp_alloc_fail_after(k);
        const nmp_err e = nmp_window_create(pb, 4, &w, NULL);
        nmp_alloc_fail_after(-1);
        if (e == NMP_OK) {
            nmp_window_free(w);
            break;
        }
        assert_int_equal(e, NMP_ERR_NOMEM);
        assert_null(w);
    }
    nmp_problem_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_2of4_8cols),  cmocka_unit_test(test_2of4_12cols),
        cmocka_unit_test(test_other_patterns), cmocka_unit_test(test_2of4_16cols),
        cmocka_unit_test(test_ties),        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

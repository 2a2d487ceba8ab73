/* test_nmp_score.c: kept score, group scores, bounds and efficacy against a naive recomputation */
#include "nmp_test.h"

#include "nmp_internal.h"

static const int patterns[][2] = { { 1, 2 }, { 2, 4 }, { 1, 4 }, { 3, 4 }, { 2, 8 }, { 4, 8 },
                                   { 5, 16 }, { 16, 32 } };
#define NPATTERNS (sizeof patterns / sizeof patterns[0])

/* Problem over w (row-major), n:m, abs. */
static nmp_problem *problem_of(const float *w, int64_t rows, int64_t cols, int n, int m)
{
    nmp_problem_desc d = { 0 };
    d.weights = nmp_matrix_view(w, rows, cols);
    d.nm.n = n;
    d.nm.m = m;
    nmp_problem *pb = NULL;
    nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
    return pb;
}

/* Random instance of kind 0 (|N(0,1)|), 1 (U[0,1)) or 2 (integers 0..3: ties everywhere). */
static float *instance(int64_t rows, int64_t cols, int kind, nmp_rng *r)
{
    float *w = malloc((size_t)(rows * cols) * sizeof *w);
    assert_non_null(w);
    for (int64_t k = 0; k < rows * cols; k++)
        w[k] = kind == 0 ? (float)fabs(nmp_rng_normal(r))
             : kind == 1 ? (float)nmp_rng_uniform(r)
                         : (float)nmp_rng_below(r, 4);
    return w;
}

static double naive_score(const nmp_problem *pb, const int32_t *perm)
{
    const int m = nmp_problem_pattern(pb).m;
    double total = 0;
    for (int64_t g = 0; g < nmp_problem_groups(pb); g++)
        total += nmp_test_naive_group(pb, perm + g * m);
    return total;
}

static void topn_matches_sort(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 1);
    for (int trial = 0; trial < 20000; trial++) {
        const int m = 2 + (int)nmp_rng_below(&r, NMP_MAX_M - 1);
        const int n = 1 + (int)nmp_rng_below(&r, (uint64_t)m - 1);
        const int levels = trial % 3 == 0 ? 3 : 1000;
        float v[NMP_MAX_M], sum, vn, vn1;
        double sorted[NMP_MAX_M];
        for (int t = 0; t < m; t++) {
            v[t] = (float)nmp_rng_below(&r, (uint64_t)levels) * 0.25f;
            sorted[t] = v[t];
        }
        qsort(sorted, (size_t)m, sizeof *sorted, nmp_test_cmp_desc);
        nmp_topn(v, m, n, &sum, &vn, &vn1);
        double expect = 0;
        for (int t = 0; t < n; t++)
            expect += sorted[t];
        nmp_assert_close(sum, expect, 1e-6 * expect); /* exact: multiples of 1/4 below 2^24 */
        assert_true(vn == sorted[n - 1]);
        assert_true(vn1 == sorted[n]);
    }
}

/* nmp_score and nmp_score_groups against sorting, for random perms, every pattern, three kinds of
 * values and several shapes. */
static void score_matches_naive(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 2);
    for (size_t p = 0; p < NPATTERNS; p++) {
        const int n = patterns[p][0], m = patterns[p][1];
        for (int kind = 0; kind < 3; kind++)
            for (int shape = 0; shape < 3; shape++) {
                const int64_t rows = shape == 0 ? 1 : shape == 1 ? 7 : 33 + (int64_t)nmp_rng_below(&r, 40);
                const int64_t cols = (int64_t)m * (shape == 0 ? 1 : 1 + (int64_t)nmp_rng_below(&r, 8));
                float *w = instance(rows, cols, kind, &r);
                nmp_problem *pb = problem_of(w, rows, cols, n, m);
                int32_t *perm = malloc((size_t)cols * sizeof *perm);
                double *gs = malloc((size_t)(cols / m) * sizeof *gs);
                assert_non_null(perm);
                assert_non_null(gs);
                for (int trial = 0; trial < 10; trial++) {
                    nmp_perm_random(perm, cols, &r);
                    double kept;
                    nmp_assert_ok(nmp_score(pb, perm, &kept));
                    const double expect = naive_score(pb, perm);
                    nmp_assert_close(kept, expect, 1e-6 * expect + 1e-9);
                    if (kind == 2) /* small integers: every sum is exact */
                        assert_true(kept == expect);
                    nmp_assert_ok(nmp_score_groups(pb, perm, gs));
                    double sum = 0;
                    for (int64_t g = 0; g < cols / m; g++) {
                        nmp_assert_close(gs[g], nmp_test_naive_group(pb, perm + g * m), 1e-6 * gs[g] + 1e-9);
                        nmp_assert_close(gs[g], nmp_score_group_value(pb, perm + g * m), 0);
                        sum += gs[g];
                    }
                    nmp_assert_close(sum, kept, 1e-12 * kept);
                    assert_true(kept <= nmp_score_row_bound(pb) * (1 + 1e-6) + 1e-9);
                    assert_true(kept <= nmp_score_total(pb) * (1 + 1e-6) + 1e-9);
                }
                nmp_perm_identity(perm, cols);
                double ident;
                nmp_assert_ok(nmp_score(pb, NULL, &ident));
                nmp_assert_close(ident, naive_score(pb, perm), 1e-6 * ident + 1e-9);
                nmp_assert_close(nmp_score_identity(pb), ident, 1e-12 * ident);
                free(gs);
                free(perm);
                nmp_problem_free(pb);
                free(w);
            }
    }
}

/* nmp_score_group_value on arbitrary column sets (not just a perm's groups). */
static void group_value_matches_naive(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 3);
    for (size_t p = 0; p < NPATTERNS; p++) {
        const int n = patterns[p][0], m = patterns[p][1];
        for (int kind = 0; kind < 3; kind++) {
            const int64_t rows = 50, cols = 3 * m;
            float *w = instance(rows, cols, kind, &r);
            nmp_problem *pb = problem_of(w, rows, cols, n, m);
            int32_t perm[3 * NMP_MAX_M];
            for (int trial = 0; trial < 30; trial++) {
                nmp_perm_random(perm, cols, &r);
                const double v = nmp_score_group_value(pb, perm + m);
                nmp_assert_close(v, nmp_test_naive_group(pb, perm + m), 1e-6 * v + 1e-9);
            }
            nmp_problem_free(pb);
            free(w);
        }
    }
}

/* Row bound: no perm beats it; one column group per row shows it is tight when each row's
 * largest values can sit in separate groups. */
static void row_bound_and_efficacy(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 4);
    float *w = instance(20, 16, 0, &r);
    nmp_problem *pb = problem_of(w, 20, 16, 2, 4);
    const double bound = nmp_score_row_bound(pb), ident = nmp_score_identity(pb);
    assert_true(bound >= ident);
    int32_t perm[16];
    for (int trial = 0; trial < 2000; trial++) {
        nmp_perm_random(perm, 16, &r);
        double kept;
        nmp_assert_ok(nmp_score(pb, perm, &kept));
        assert_true(kept <= bound + 1e-9 * bound);
        const double eff = nmp_score_efficacy(pb, kept);
        assert_true(eff <= 1.0 + 1e-9);
        nmp_assert_close(eff, (kept - ident) / (bound - ident), 1e-12);
    }
    nmp_assert_close(nmp_score_efficacy(pb, ident), 0.0, 0);
    nmp_assert_close(nmp_score_efficacy(pb, bound), 1.0, 1e-12);
    nmp_problem_free(pb);
    free(w);

    /* A single row: every perm keeps 2 of each group; the bound is the top half of the row and a
     * perm that spreads the 4 largest values over 2 groups reaches it. */
    const float row[8] = { 8, 7, 6, 5, 1, 2, 3, 4 };
    pb = problem_of(row, 1, 8, 2, 4);
    nmp_assert_close(nmp_score_row_bound(pb), 26.0, 0);
    nmp_assert_close(nmp_score_identity(pb), 15.0 + 7.0, 0);
    const int32_t spread[8] = { 0, 1, 4, 5, 2, 3, 6, 7 };
    double kept;
    nmp_assert_ok(nmp_score(pb, spread, &kept));
    nmp_assert_close(kept, 26.0, 0);
    nmp_assert_close(nmp_score_efficacy(pb, kept), 1.0, 1e-12);
    nmp_problem_free(pb);

    /* a matrix where the identity is already the row bound: efficacy 0, not NaN */
    const float flat[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };
    pb = problem_of(flat, 1, 8, 2, 4);
    nmp_assert_close(nmp_score_row_bound(pb), nmp_score_identity(pb), 0);
    nmp_assert_close(nmp_score_efficacy(pb, nmp_score_identity(pb)), 0.0, 0);
    nmp_problem_free(pb);
}

/* Tall enough to take the OpenMP path: the same score as group-by-group sums in order. */
static void large_matches_groupwise(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 5);
    const int64_t rows = 1100, cols = 1024;
    float *w = instance(rows, cols, 0, &r);
    nmp_problem *pb = problem_of(w, rows, cols, 2, 4);
    int32_t *perm = malloc((size_t)cols * sizeof *perm);
    assert_non_null(perm);
    nmp_perm_random(perm, cols, &r);
    double kept, sum = 0;
    nmp_assert_ok(nmp_score(pb, perm, &kept));
    for (int64_t g = 0; g < cols / 4; g++)
        sum += nmp_score_group_value(pb, perm + g * 4);
    assert_true(kept == sum);
    free(perm);
    nmp_problem_free(pb);
    free(w);
}

static void invalid_perm_and_allocation_failures(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(8, 16, 2, 4, 0, 6);
    int32_t perm[16];
    double gs[4], kept = -1;
    nmp_perm_identity(perm, 16);
    perm[3] = 2;
    assert_int_equal(nmp_score(pb, perm, &kept), NMP_ERR_ARG);
    assert_int_equal(nmp_score_groups(pb, perm, gs), NMP_ERR_ARG);
    perm[3] = 16;
    assert_int_equal(nmp_score(pb, perm, &kept), NMP_ERR_ARG);
    perm[3] = -3;
    assert_int_equal(nmp_score(pb, perm, &kept), NMP_ERR_ARG);
    nmp_rng r;
    nmp_rng_seed(&r, 6);
    nmp_perm_random(perm, 16, &r);
    double expect;
    nmp_assert_ok(nmp_score(pb, perm, &expect));
    /* with a perm (validated, which needs scratch) and without */
    for (int with_perm = 0; with_perm < 2; with_perm++) {
        nmp_err e = NMP_ERR_NOMEM;
        for (int64_t k = 0; e != NMP_OK; k++) {
            assert_true(k < 20);
            nmp_alloc_fail_after(k);
            e = nmp_score(pb, with_perm ? perm : NULL, &kept);
            nmp_alloc_fail_after(-1);
            if (e != NMP_OK)
                assert_int_equal(e, NMP_ERR_NOMEM);
        }
        nmp_assert_close(kept, with_perm ? expect : nmp_score_identity(pb), 0);
        nmp_alloc_fail_after(0);
        e = nmp_score_groups(pb, with_perm ? perm : NULL, gs);
        nmp_alloc_fail_after(-1);
        assert_true(e == NMP_OK || e == NMP_ERR_NOMEM);
    }
    nmp_problem_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(topn_matches_sort),
        cmocka_unit_test(score_matches_naive),
        cmocka_unit_test(group_value_matches_naive),
        cmocka_unit_test(row_bound_and_efficacy),
        cmocka_unit_test(large_matches_groupwise),
        cmocka_unit_test(invalid_perm_and_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

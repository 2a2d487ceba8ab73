/* test_nmp_problem.c: objectives, views, cached totals and bounds, argument errors, N:M parsing */
#include "nmp_test.h"

static nmp_problem_desc desc_of(const float *w, int64_t rows, int64_t cols, int n, int m)
{
    nmp_problem_desc d = { 0 };
    d.weights = nmp_matrix_view(w, rows, cols);
    d.nm.n = n;
    d.nm.m = m;
    d.objective = NMP_OBJ_ABS;
    return d;
}

/* A matrix of N(0,1) values, signs included. */
static float *signed_matrix(int64_t rows, int64_t cols, uint64_t seed)
{
    nmp_rng r;
    nmp_rng_seed(&r, seed);
    float *a = malloc((size_t)(rows * cols) * sizeof *a);
    assert_non_null(a);
    for (int64_t k = 0; k < rows * cols; k++)
        a[k] = (float)nmp_rng_normal(&r);
    return a;
}

static int cmp_desc(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* Checks the stored column-major saliency against expect(j, i) (row-major), and the cached total,
 * row bound (by a full sort of each row) and identity score. */
static void assert_problem_matches(const nmp_problem *pb, const float *expect, int64_t rows,
                                   int64_t cols, int n, int m)
{
    assert_int_equal(nmp_problem_rows(pb), rows);
    assert_int_equal(nmp_problem_cols(pb), cols);
    assert_int_equal(nmp_problem_groups(pb), cols / m);
    assert_int_equal(nmp_problem_pattern(pb).n, n);
    assert_int_equal(nmp_problem_pattern(pb).m, m);
    const float *s = nmp_problem_saliency(pb);
    double total = 0, bound = 0, ident = 0;
    float *row = malloc((size_t)cols * sizeof *row);
    assert_non_null(row);
    for (int64_t j = 0; j < rows; j++) {
        for (int64_t i = 0; i < cols; i++) {
            assert_true(s[i * rows + j] == expect[j * cols + i]);
            total += expect[j * cols + i];
            row[i] = expect[j * cols + i];
        }
        for (int64_t g = 0; g < cols / m; g++) {
            float grp[NMP_MAX_M];
            memcpy(grp, row + g * m, (size_t)m * sizeof *grp);
            qsort(grp, (size_t)m, sizeof *grp, cmp_desc);
            for (int t = 0; t < n; t++)
                ident += grp[t];
        }
        qsort(row, (size_t)cols, sizeof *row, cmp_desc);
        for (int64_t i = 0; i < cols / m * n; i++)
            bound += row[i];
    }
    free(row);
    nmp_assert_close(nmp_score_total(pb), total, 1e-9 * total + 1e-12);
    nmp_assert_close(nmp_score_row_bound(pb), bound, 1e-9 * bound + 1e-12);
    nmp_assert_close(nmp_score_identity(pb), ident, 1e-6 * ident + 1e-12);
    double kept;
    nmp_assert_ok(nmp_score(pb, NULL, &kept));
    nmp_assert_close(nmp_score_identity(pb), kept, 1e-12 * kept);
    assert_true(nmp_score_row_bound(pb) >= kept - 1e-6 * kept);
}

static void every_objective(void **state)
{
    (void)state;
    const int64_t rows = 13, cols = 24;
    float *w = signed_matrix(rows, cols, 1);
    float *expect = malloc((size_t)(rows * cols) * sizeof *expect);
    float imp[24];
    assert_non_null(expect);
    for (int64_t i = 0; i < cols; i++)
        imp[i] = (float)(i % 5) * 0.5f; /* zeros included */
    for (int o = NMP_OBJ_ABS; o <= NMP_OBJ_IMPORTANCE; o++) {
        nmp_problem_desc d = desc_of(w, rows, cols, 2, 4);
        d.objective = (nmp_objective)o;
        d.importance = imp;
        for (int64_t j = 0; j < rows; j++)
            for (int64_t i = 0; i < cols; i++) {
                const float x = w[j * cols + i];
                expect[j * cols + i] = o == NMP_OBJ_ABS ? fabsf(x)
                                     : o == NMP_OBJ_SQ  ? x * x
                                                        : fabsf(x) * imp[i];
            }
        nmp_problem *pb = NULL;
        nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
        assert_int_equal(nmp_problem_objective(pb), o);
        assert_problem_matches(pb, expect, rows, cols, 2, 4);
        nmp_problem_free(pb);
    }
    /* saliency: a given nonnegative matrix; the weights only fix the shape (and must be finite) */
    float *sal = nmp_test_matrix(rows, cols, 1, 9);
    nmp_problem_desc d = desc_of(w, rows, cols, 3, 8);
    d.objective = NMP_OBJ_SALIENCY;
    d.saliency = nmp_matrix_view(sal, rows, cols);
    nmp_problem *pb = NULL;
    nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
    assert_problem_matches(pb, sal, rows, cols, 3, 8);
    nmp_problem_free(pb);
    free(sal);
    free(expect);
    free(w);
}

/* Views: a transposed view of a cols x rows buffer and a strided view into a wider buffer give the
 * same problem as a contiguous copy, both for the weights and for a saliency matrix. */
static void strided_and_transposed_views(void **state)
{
    (void)state;
    const int64_t rows = 10, cols = 16, pad = 7;
    float *w = signed_matrix(rows, cols, 2);
    float *sal = nmp_test_matrix(rows, cols, 0, 3);
    float *expect_abs = malloc((size_t)(rows * cols) * sizeof *expect_abs);
    float *wt = malloc((size_t)(rows * cols) * sizeof *wt);     /* cols x rows */
    float *st = malloc((size_t)(rows * cols) * sizeof *st);     /* cols x rows */
    float *wide = malloc((size_t)(rows * (cols + pad)) * sizeof *wide);
    assert_non_null(expect_abs);
    assert_non_null(wt);
    assert_non_null(st);
    assert_non_null(wide);
    for (int64_t j = 0; j < rows; j++)
        for (int64_t i = 0; i < cols; i++) {
            expect_abs[j * cols + i] = fabsf(w[j * cols + i]);
            wt[i * rows + j] = w[j * cols + i];
            st[i * rows + j] = sal[j * cols + i];
            wide[j * (cols + pad) + i] = sal[j * cols + i];
        }
    for (int64_t j = 0; j < rows; j++)
        for (int64_t i = cols; i < cols + pad; i++)
            wide[j * (cols + pad) + i] = NAN; /* outside the view: must never be read */

    nmp_problem *pb = NULL;
    nmp_problem_desc d = desc_of(w, rows, cols, 2, 4);
    d.weights = nmp_matrix_transpose(nmp_matrix_view(wt, cols, rows));
    assert_int_equal(d.weights.rows, rows);
    assert_int_equal(d.weights.cols, cols);
    nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
    assert_problem_matches(pb, expect_abs, rows, cols, 2, 4);
    nmp_problem_free(pb);

    d = desc_of(w, rows, cols, 2, 4);
    d.objective = NMP_OBJ_SALIENCY;
    d.saliency = nmp_matrix_transpose(nmp_matrix_view(st, cols, rows));
    nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
    assert_problem_matches(pb, sal, rows, cols, 2, 4);
    nmp_problem_free(pb);

    d.saliency = nmp_matrix_view(wide, rows, cols);
    d.saliency.rs = cols + pad;
    nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
    assert_problem_matches(pb, sal, rows, cols, 2, 4);
    nmp_problem_free(pb);

    /* every other column of a 2*cols-wide buffer */
    float *every2 = malloc((size_t)(rows * cols * 2) * sizeof *every2);
    assert_non_null(every2);
    for (int64_t k = 0; k < rows * cols * 2; k++)
        every2[k] = -1.0f; /* negative: would be rejected if read */
    for (int64_t j = 0; j < rows; j++)
        for (int64_t i = 0; i < cols; i++)
            every2[j * 2 * cols + 2 * i] = sal[j * cols + i];
    d.saliency = (nmp_matrix){ every2, rows, cols, 2 * cols, 2 };
    nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
    assert_problem_matches(pb, sal, rows, cols, 2, 4);
    nmp_problem_free(pb);

    free(every2);
    free(wide);
    free(st);
    free(wt);
    free(expect_abs);
    free(sal);
    free(w);
}

/* Totals and bounds across patterns and shapes, with heavy ties (small integers). */
static void totals_and_bounds(void **state)
{
    (void)state;
    const int pat[][2] = { { 1, 2 }, { 2, 4 }, { 1, 4 }, { 3, 4 }, { 2, 8 }, { 4, 8 }, { 5, 16 },
                           { 16, 32 } };
    nmp_rng r;
    nmp_rng_seed(&r, 8);
    for (size_t t = 0; t < sizeof pat / sizeof pat[0]; t++) {
        const int n = pat[t][0], m = pat[t][1];
        for (int kind = 0; kind < 2; kind++) {
            const int64_t rows = 1 + (int64_t)nmp_rng_below(&r, 40);
            const int64_t cols = m * (1 + (int64_t)nmp_rng_below(&r, 6));
            float *w = malloc((size_t)(rows * cols) * sizeof *w);
            float *expect = malloc((size_t)(rows * cols) * sizeof *expect);
            assert_non_null(w);
            assert_non_null(expect);
            for (int64_t k = 0; k < rows * cols; k++) {
                w[k] = kind == 0 ? (float)nmp_rng_normal(&r)
                                 : (float)((int)nmp_rng_below(&r, 7) - 3);
                expect[k] = fabsf(w[k]);
            }
            nmp_problem_desc d = desc_of(w, rows, cols, n, m);
            nmp_problem *pb = NULL;
            nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
            assert_problem_matches(pb, expect, rows, cols, n, m);
            nmp_problem_free(pb);
            free(expect);
            free(w);
        }
    }
}

/* NVIDIA/apex, apex/contrib/sparsity/permutation_tests/README.md (permutation_test.py --channels 64
 * --filters 128: np.random.seed(1), a 128 x 64 matrix of np.random.rand, 2:4 magnitude) reports
 * "unpruned" 4083.169, "50% rows" 3042.332 (our row bound: each row keeps its top half; its
 * "unstructured" 3060.238 is the matrix-wide top half, a different number) and "default 2:4"
 * 2852.376 (the identity). */
static void apex_reference_instance(void **state)
{
    (void)state;
    float *w = malloc(128 * 64 * sizeof *w);
    assert_non_null(w);
    nmp_mt19937 g;
    nmp_mt19937_seed(&g, 1);
    for (int k = 0; k < 128 * 64; k++)
        w[k] = (float)nmp_mt19937_uniform(&g);
    nmp_problem_desc d = desc_of(w, 128, 64, 2, 4);
    nmp_problem *pb = NULL;
    nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
    nmp_assert_close(nmp_score_total(pb), 4083.169, 0.002);
    nmp_assert_close(nmp_score_row_bound(pb), 3042.332, 0.002);
    nmp_assert_close(nmp_score_identity(pb), 2852.376, 0.002);
    nmp_problem_free(pb);
    free(w);
}

/* Creates and expects NMP_ERR_ARG, a NULL problem and (if given) a reason containing `word`. */
static void expect_arg_error(const nmp_problem_desc *d, const char *word1, const char *word2)
{
    nmp_problem *pb = (nmp_problem *)(uintptr_t)1;
    nmp_msg msg = { { 0 } };
    assert_int_equal(nmp_problem_create(d, &pb, &msg), NMP_ERR_ARG);
    assert_null(pb);
    assert_true(msg.text[0] != '\0');
    if (word1 && !strstr(msg.text, word1)) {
        print_error("message '%s' lacks '%s'\n", msg.text, word1);
        fail();
    }
    if (word2 && !strstr(msg.text, word2)) {
        print_error("message '%s' lacks '%s'\n", msg.text, word2);
        fail();
    }
    /* and with no msg at all */
    assert_int_equal(nmp_problem_create(d, &pb, NULL), NMP_ERR_ARG);
    assert_null(pb);
}

static void argument_errors(void **state)
{
    (void)state;
    float w[8 * 8], imp[8], sal[8 * 8];
    for (int k = 0; k < 64; k++)
        w[k] = sal[k] = (float)(k % 9) - 4.0f + 0.5f;
    for (int k = 0; k < 64; k++)
        sal[k] = fabsf(sal[k]);
    for (int k = 0; k < 8; k++)
        imp[k] = 1.0f;
    nmp_problem *pb = NULL;
    nmp_problem_desc d = desc_of(w, 8, 8, 2, 4);
    nmp_assert_ok(nmp_problem_create(&d, &pb, NULL)); /* the base case is fine */
    nmp_problem_free(pb);

    d = desc_of(w, 8, 6, 2, 4); /* cols % m != 0 */
    expect_arg_error(&d, "divisible", NULL);
    d = desc_of(w, 8, 8, 4, 4); /* n >= m */
    expect_arg_error(&d, "4:4", NULL);
    d = desc_of(w, 8, 8, 5, 4);
    expect_arg_error(&d, "5:4", NULL);
    d = desc_of(w, 1, 64, 2, 64); /* m > 32 */
    expect_arg_error(&d, "2:64", NULL);
    d = desc_of(w, 8, 8, 0, 4); /* n = 0 */
    expect_arg_error(&d, "0:4", NULL);
    d = desc_of(w, 8, 8, -1, 4);
    expect_arg_error(&d, NULL, NULL);
    d = desc_of(w, 0, 8, 2, 4); /* empty */
    expect_arg_error(&d, "empty", NULL);
    d = desc_of(w, 8, 0, 2, 4);
    expect_arg_error(&d, "empty", NULL);
    d = desc_of(NULL, 8, 8, 2, 4);
    expect_arg_error(&d, NULL, NULL);

    w[3 * 8 + 7] = NAN; /* names row and col */
    d = desc_of(w, 8, 8, 2, 4);
    expect_arg_error(&d, "row 3", "col 7");
    expect_arg_error(&d, "NaN", NULL);
    w[3 * 8 + 7] = INFINITY;
    expect_arg_error(&d, "row 3", "col 7");
    w[3 * 8 + 7] = -INFINITY;
    w[5] = 0;
    expect_arg_error(&d, "Inf", "col 7");
    w[3 * 8 + 7] = 1;

    /* importance: missing, negative, NaN */
    d = desc_of(w, 8, 8, 2, 4);
    d.objective = NMP_OBJ_IMPORTANCE;
    expect_arg_error(&d, "importance", NULL);
    d.importance = imp;
    imp[5] = -0.5f;
    expect_arg_error(&d, "column 5", NULL);
    imp[5] = NAN;
    expect_arg_error(&d, "column 5", NULL);
    imp[5] = 1;
    nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
    nmp_problem_free(pb);
    /* squares that overflow float are not finite saliencies */
    w[2 * 8 + 1] = 3e38f;
    d = desc_of(w, 8, 8, 2, 4);
    d.objective = NMP_OBJ_SQ;
    expect_arg_error(&d, "row 2", "col 1");
    w[2 * 8 + 1] = 1;

    /* saliency: shape mismatch, negative, NaN, unknown objective */
    d = desc_of(w, 8, 8, 2, 4);
    d.objective = NMP_OBJ_SALIENCY;
    d.saliency = nmp_matrix_view(sal, 8, 4);
    expect_arg_error(&d, "8 x 4", NULL);
    d.saliency = nmp_matrix_view(sal, 4, 8);
    expect_arg_error(&d, NULL, NULL);
    d.saliency = nmp_matrix_transpose(nmp_matrix_view(sal, 4, 16)); /* 16 x 4 */
    expect_arg_error(&d, NULL, NULL);
    d.saliency = nmp_matrix_view(sal, 8, 8);
    sal[6 * 8 + 2] = -1.0f;
    expect_arg_error(&d, "row 6", "col 2");
    sal[6 * 8 + 2] = NAN;
    expect_arg_error(&d, "row 6", "col 2");
    sal[6 * 8 + 2] = 0;
    nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
    nmp_problem_free(pb);
    d.objective = (nmp_objective)7;
    expect_arg_error(&d, "objective", NULL);
}

/* Float32 range: finite values whose sums overflow float (16 x 8 of 3e38: a row's top two alone
 * are inf in float) are refused, as is a square that overflows; values whose total stays within
 * FLT_MAX / 16 are scored finite and right, with the solvers' float deltas finite too. */
static void float_range(void **state)
{
    (void)state;
    enum { R = 16, C = 8 };
    float w[R * C];
    for (int k = 0; k < R * C; k++)
        w[k] = 3e38f;
    nmp_problem_desc d = desc_of(w, R, C, 2, 4);
    expect_arg_error(&d, "sum", "scale the matrix down");
    for (int k = 0; k < R * C; k++)
        w[k] = 1e20f; /* w^2 = 1e40 */
    d.objective = NMP_OBJ_SQ;
    expect_arg_error(&d, "sq", "overflows");

    /* 1e35: the total 1.28e37 is below FLT_MAX / 16 = 2.1e37 */
    for (int k = 0; k < R * C; k++)
        w[k] = 1e35f;
    d.objective = NMP_OBJ_ABS;
    nmp_problem *pb = NULL;
    assert_int_equal(nmp_problem_create(&d, &pb, NULL), NMP_OK);
    const double v = (double)1e35f, identity = R * (C / 4) * 2 * v;
    nmp_assert_close(nmp_score_identity(pb), identity, 1e-6 * identity);
    nmp_assert_close(nmp_score_total(pb), R * C * v, 1e-6 * R * C * v);
    nmp_assert_close(nmp_score_row_bound(pb), identity, 1e-6 * identity);
    int32_t perm[C] = { 4, 1, 2, 3, 0, 5, 6, 7 };
    double kept = 0;
    assert_int_equal(nmp_score(pb, perm, &kept), NMP_OK);
    nmp_assert_close(kept, identity, 1e-6 * identity);
    nmp_eval *ev = NULL;
    assert_int_equal(nmp_eval_create(pb, NULL, &ev), NMP_OK);
    nmp_assert_close(nmp_eval_score(ev), identity, 1e-6 * identity);
    assert_true(isfinite(nmp_eval_swap_delta(ev, 0, 4)));
    nmp_assert_close(nmp_eval_swap_delta(ev, 0, 4), 0, 1e-6 * identity);
    nmp_eval_free(ev);
    nmp_problem_free(pb);

    /* one huge value among small ones: within the limit, exact to float rounding */
    for (int k = 0; k < R * C; k++)
        w[k] = 1.0f;
    w[0] = 1e37f;
    assert_int_equal(nmp_problem_create(&d, &pb, NULL), NMP_OK);
    const double expect = (double)1e37f + 1.0 + (R - 1) * 2 * 2 + 2;
    nmp_assert_close(nmp_score_identity(pb), expect, 1e-6 * expect);
    nmp_problem_free(pb);
}

static void pattern_parse(void **state)
{
    (void)state;
    nmp_pattern p = { 0, 0 };
    nmp_msg msg = { { 0 } };
    nmp_assert_ok(nmp_pattern_parse("2:4", &p, &msg));
    assert_int_equal(p.n, 2);
    assert_int_equal(p.m, 4);
    nmp_assert_ok(nmp_pattern_parse("1:2", &p, NULL));
    assert_int_equal(p.n, 1);
    assert_int_equal(p.m, 2);
    nmp_assert_ok(nmp_pattern_parse("31:32", &p, NULL));
    assert_int_equal(p.n, 31);
    assert_int_equal(p.m, 32);
    const char *bad[] = { "4:2", "0:4", "2:33", "x", "2:", "", ":4", "2", "2:4x", "2:4:8", "-1:4",
                          "2;4", "99999999999999999999:4", "2:99999999999999999999", "2:2" };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        nmp_pattern q = { 7, 9 };
        msg.text[0] = '\0';
        if (nmp_pattern_parse(bad[k], &q, &msg) != NMP_ERR_ARG) {
            print_error("pattern '%s' was accepted\n", bad[k]);
            fail();
        }
        assert_true(msg.text[0] != '\0');
        assert_int_equal(q.n, 7); /* untouched on error */
        assert_int_equal(q.m, 9);
    }
    assert_int_equal(nmp_pattern_parse(NULL, &p, NULL), NMP_ERR_ARG);
}

static void objective_names(void **state)
{
    (void)state;
    for (int o = NMP_OBJ_ABS; o <= NMP_OBJ_SALIENCY; o++) {
        nmp_objective x = (nmp_objective)99;
        nmp_assert_ok(nmp_objective_parse(nmp_objective_name((nmp_objective)o), &x));
        assert_int_equal(x, o);
    }
    assert_string_equal(nmp_objective_name(NMP_OBJ_ABS), "abs");
    assert_string_equal(nmp_objective_name(NMP_OBJ_SALIENCY), "saliency");
    nmp_objective x;
    assert_int_equal(nmp_objective_parse("ABS", &x), NMP_ERR_ARG);
    assert_int_equal(nmp_objective_parse("", &x), NMP_ERR_ARG);
    assert_int_equal(nmp_objective_parse(NULL, &x), NMP_ERR_ARG);
}

/* Fail allocation k = 0, 1, ...: NMP_ERR_NOMEM and no problem until enough succeed, then NMP_OK.
 * Leaks show up under valgrind / ASan. */
static void allocation_failures(void **state)
{
    (void)state;
    float *w = nmp_test_matrix(9, 16, 0, 4);
    float imp[16];
    for (int k = 0; k < 16; k++)
        imp[k] = 0.25f * (float)k;
    for (int o = NMP_OBJ_ABS; o <= NMP_OBJ_SALIENCY; o++) {
        nmp_problem_desc d = desc_of(w, 9, 16, 2, 4);
        d.objective = (nmp_objective)o;
        d.importance = imp;
        d.saliency = d.weights;
        nmp_err e = NMP_ERR_NOMEM;
        int64_t k = 0;
        for (; e != NMP_OK; k++) {
            assert_true(k < 100);
            nmp_problem *pb = (nmp_problem *)(uintptr_t)1;
            nmp_alloc_fail_after(k);
            e = nmp_problem_create(&d, &pb, NULL);
            nmp_alloc_fail_after(-1);
            if (e == NMP_OK) {
                assert_non_null(pb);
                double kept;
                nmp_assert_ok(nmp_score(pb, NULL, &kept));
                nmp_assert_close(kept, nmp_score_identity(pb), 1e-9 * kept);
            } else {
                assert_int_equal(e, NMP_ERR_NOMEM);
                assert_null(pb);
            }
            nmp_problem_free(pb);
        }
        assert_true(k > 1); /* at least one allocation was made and failed */
    }
    free(w);
    nmp_problem_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_objective),
        cmocka_unit_test(strided_and_transposed_views),
        cmocka_unit_test(totals_and_bounds),
        cmocka_unit_test(apex_reference_instance),
        cmocka_unit_test(argument_errors),
        cmocka_unit_test(float_range),
        cmocka_unit_test(pattern_parse),
        cmocka_unit_test(objective_names),
        cmocka_unit_test(allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

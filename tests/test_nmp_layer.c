/* test_nmp_layer.c: the CPU reference of the evaluator's error columns (src/core/nmp_layer.c:
 * token inputs, a pruned layer's output error with and without a permutation) against a
 * brute-force recomputation and the invariants of the definition */
#include "nmp_test.h"

static const nmp_pattern p24 = { 2, 4 };

static void test_inputs(void **state)
{
    (void)state;
    float a[64 * 64], b[64 * 64], c[64 * 64];
    nmp_assert_ok(nmp_layer_inputs(64, 64, 3, a));
    nmp_assert_ok(nmp_layer_inputs(64, 64, 3, b));
    nmp_assert_ok(nmp_layer_inputs(64, 64, 4, c));
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    double mean = 0, var = 0;
    for (int q = 0; q < 64 * 64; q++)
        mean += a[q];
    mean /= 64 * 64;
    for (int q = 0; q < 64 * 64; q++)
        var += (a[q] - mean) * (a[q] - mean);
    var /= 64 * 64 - 1;
    assert_true(fabs(mean) < 0.1 && fabs(var - 1.0) < 0.1); /* N(0, 1): 4096 draws */
    nmp_rng r; /* the documented order: row-major draws of nmp_rng_normal */
    nmp_rng_seed(&r, 3);
    for (int q = 0; q < 5; q++)
        assert_true(a[q] == (float)nmp_rng_normal(&r));
    assert_int_equal(nmp_layer_inputs(0, 4, 1, a), NMP_ERR_ARG);
    assert_int_equal(nmp_layer_inputs(4, 4, 1, NULL), NMP_ERR_ARG);
}

/* ||X P(W_perm)^T - X W^T||_F / ||X W^T||_F with every step written out: the prune keeps the two
 * largest |w| of each group of 4 in perm order (the lower slot on ties) */
static double brute_error(const float *w, int64_t n, int64_t k, const float *x, int64_t t,
                          const int32_t *perm, double *kept)
{
    double num = 0, den = 0;
    float *wp = calloc((size_t)(n * k), sizeof *wp);
    assert_non_null(wp);
    *kept = 0;
    for (int64_t j = 0; j < n; j++)
        for (int64_t g = 0; g < k; g += 4) {
            for (int a = 0; a < 4; a++) {
                const float va = fabsf(w[j * k + (perm ? perm[g + a] : g + a)]);
                int beaten = 0;
                for (int b = 0; b < 4; b++) {
                    const float vb = fabsf(w[j * k + (perm ? perm[g + b] : g + b)]);
                    beaten += vb > va || (vb == va && b < a);
                }
                if (beaten < 2) { /* kept: store at the source column (same product) */
                    const int64_t src = perm ? perm[g + a] : g + a;
                    wp[j * k + src] = w[j * k + src];
                    *kept += va;
                }
            }
        }
    for (int64_t r = 0; r < t; r++)
        for (int64_t c = 0; c < n; c++) {
            double y = 0, yp = 0;
            for (int64_t i = 0; i < k; i++) {
                y += (double)x[r * k + i] * w[c * k + i];
                yp += (double)x[r * k + i] * wp[c * k + i];
            }
            num += ((double)(float)yp - (float)y) * ((double)(float)yp - (float)y);
            den += (double)(float)y * (float)y;
        }
    free(wp);
    return sqrt(num / den);
}

static void test_against_brute_force(void **state)
{
    (void)state;
    const int64_t n = 7, k = 16, t = 9;
    float *w = nmp_test_matrix(n, k, 1, 21), x[9 * 16];
    int32_t perm[16];
    nmp_rng r;
    nmp_rng_seed(&r, 2);
    nmp_perm_random(perm, k, &r);
    for (int64_t q = 0; q < n * k; q++)
        w[q] -= 0.5f; /* signed weights: the prune compares |w| */
    nmp_assert_ok(nmp_layer_inputs(t, k, 11, x));
    const nmp_matrix wv = nmp_matrix_view(w, n, k);
    nmp_layer_err le;
    double kept_i, kept_p;
    nmp_assert_ok(nmp_layer_error(&wv, x, t, perm, p24, &le));
    const double want_i = brute_error(w, n, k, x, t, NULL, &kept_i);
    const double want_p = brute_error(w, n, k, x, t, perm, &kept_p);
    nmp_assert_close(le.err_identity, want_i, 1e-6 * want_i);
    nmp_assert_close(le.err_perm, want_p, 1e-6 * want_p);
    nmp_assert_close(le.kept_identity, kept_i, 1e-5);
    nmp_assert_close(le.kept_perm, kept_p, 1e-5);
    assert_int_equal(le.violations, 0);
    assert_true(le.err_identity > 0 && le.err_perm > 0 && le.err_identity < 1.5);
    free(w);
}

/* the identity as perm gives the identity's numbers, bit for bit */
static void test_identity_perm(void **state)
{
    (void)state;
    float *w = nmp_test_matrix(12, 24, 0, 5), x[20 * 24];
    int32_t id[24];
    nmp_perm_identity(id, 24);
    nmp_assert_ok(nmp_layer_inputs(20, 24, 1, x));
    const nmp_matrix wv = nmp_matrix_view(w, 12, 24);
    nmp_layer_err a, b;
    nmp_assert_ok(nmp_layer_error(&wv, x, 20, id, p24, &a));
    nmp_assert_ok(nmp_layer_error(&wv, x, 20, NULL, p24, &b));
    assert_true(a.err_perm == a.err_identity && a.kept_perm == a.kept_identity);
    assert_memory_equal(&a, &b, sizeof a);
    free(w);
}

/* Columns 0-3 large, 4-7 small: in natural order the prune drops two large ones per row; the
 * perm pairing two large with two small in each group drops only small ones. */
static void test_perm_lowers_error(void **state)
{
    (void)state;
    float w[4 * 8], x[32 * 8];
    const int32_t mix[8] = { 0, 4, 1, 5, 2, 6, 3, 7 };
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < 8; i++)
            w[j * 8 + i] = (i < 4 ? 10.0f : 0.1f) * (float)(1 + (i + j) % 3);
    nmp_assert_ok(nmp_layer_inputs(32, 8, 7, x));
    const nmp_matrix wv = nmp_matrix_view(w, 4, 8);
    nmp_layer_err le;
    nmp_assert_ok(nmp_layer_error(&wv, x, 32, mix, p24, &le));
    assert_true(le.err_perm < 0.1 * le.err_identity);
    double large = 0;
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < 4; i++)
            large += w[j * 8 + i];
    nmp_assert_close(le.kept_perm, large, 1e-9); /* every large weight kept */
    assert_true(le.kept_identity < large);
}

/* a transposed view (weights stored in x out, GPT-2's Conv1D) equals its contiguous copy */
static void test_transposed_view(void **state)
{
    (void)state;
    const int64_t n = 6, k = 12, t = 10;
    float *stored = nmp_test_matrix(k, n, 1, 8), w[6 * 12], x[10 * 12];
    for (int64_t c = 0; c < n; c++)
        for (int64_t i = 0; i < k; i++)
            w[c * k + i] = stored[i * n + c];
    nmp_assert_ok(nmp_layer_inputs(t, k, 4, x));
    int32_t perm[12];
    nmp_rng r;
    nmp_rng_seed(&r, 6);
    nmp_perm_random(perm, k, &r);
    const nmp_matrix sv = nmp_matrix_view(stored, k, n), tv = nmp_matrix_transpose(sv);
    const nmp_matrix wv = nmp_matrix_view(w, n, k);
    nmp_layer_err a, b;
    nmp_assert_ok(nmp_layer_error(&tv, x, t, perm, p24, &a));
    nmp_assert_ok(nmp_layer_error(&wv, x, t, perm, p24, &b));
    assert_memory_equal(&a, &b, sizeof a);
    free(stored);
}

static void test_args(void **state)
{
    (void)state;
    float w[2 * 8] = { 1 }, x[4 * 8] = { 1 };
    int32_t bad[8] = { 0, 1, 2, 3, 4, 5, 6, 6 };
    nmp_layer_err le;
    const nmp_matrix wv = nmp_matrix_view(w, 2, 8), w6 = nmp_matrix_view(w, 2, 6);
    const nmp_pattern p34 = { 3, 4 }, p44 = { 4, 4 };
    assert_int_equal(nmp_layer_error(&wv, x, 4, bad, p24, &le), NMP_ERR_ARG);
    assert_int_equal(nmp_layer_error(&w6, x, 4, NULL, p24, &le), NMP_ERR_ARG);
    assert_int_equal(nmp_layer_error(&wv, NULL, 4, NULL, p24, &le), NMP_ERR_ARG);
    assert_int_equal(nmp_layer_error(&wv, x, 0, NULL, p24, &le), NMP_ERR_ARG);
    assert_int_equal(nmp_layer_error(&wv, x, 4, NULL, p44, &le), NMP_ERR_ARG);
    assert_int_equal(nmp_layer_error(NULL, x, 4, NULL, p24, &le), NMP_ERR_ARG);
    nmp_assert_ok(nmp_layer_error(&wv, x, 4, NULL, p34, &le)); /* 3:4 is a pattern too */
}

static void test_nomem(void **state)
{
    (void)state;
    float *w = nmp_test_matrix(8, 16, 1, 3), x[8 * 16];
    nmp_assert_ok(nmp_layer_inputs(8, 16, 2, x));
    const nmp_matrix wv = nmp_matrix_view(w, 8, 16);
    nmp_layer_err le;
    nmp_err e = NMP_ERR_NOMEM;
    int64_t k = 0;
    for (; e == NMP_ERR_NOMEM && k < 64; k++) {
        nmp_alloc_fail_after(k);
        e = nmp_layer_error(&wv, x, 8, NULL, p24, &le);
        nmp_alloc_fail_after(-1);
    }
    nmp_assert_ok(e);
    assert_true(k > 1); /* the first allocations did fail */
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inputs),          cmocka_unit_test(test_against_brute_force),
        cmocka_unit_test(test_identity_perm),   cmocka_unit_test(test_perm_lowers_error),
        cmocka_unit_test(test_transposed_view), cmocka_unit_test(test_args),
        cmocka_unit_test(test_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

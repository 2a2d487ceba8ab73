/* test_nmp_backend.c: the backend table's CPU reference entries against direct recomputation, and
 * the CPU references of the GPU evaluator (gather, N:M prune, diffs, X W^T, dtypes) */
#include "nmp_test.h"

static nmp_backend cpu_backend(const nmp_problem *pb)
{
    nmp_backend be;
    nmp_backend_init_cpu(&be, pb);
    return be;
}

static void test_score_groups(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(37, 24, 2, 4, 0, 1);
    nmp_backend be = cpu_backend(pb);
    int32_t perm[24];
    double a[6], b[6];
    nmp_rng r;
    nmp_rng_seed(&r, 5);
    nmp_perm_random(perm, 24, &r);
    nmp_assert_ok(be.score_groups(&be, perm, a));
    nmp_assert_ok(nmp_score_groups(pb, perm, b));
    for (int g = 0; g < 6; g++)
        nmp_assert_close(a[g], b[g], 0);
    assert_string_equal(be.name, "cpu");
    nmp_problem_free(pb);
}

/* delta(a, b) = score after the swap - score before, for every b */
static void test_swap_deltas(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(53, 24, 2, 4, 1, 2);
    nmp_backend be = cpu_backend(pb);
    int32_t perm[24], q[24];
    int64_t b[24];
    double d[24], before, after;
    nmp_rng r;
    nmp_rng_seed(&r, 9);
    nmp_perm_random(perm, 24, &r);
    for (int t = 0; t < 24; t++)
        b[t] = t;
    nmp_assert_ok(nmp_score(pb, perm, &before));
    for (int64_t a = 0; a < 24; a += 7) {
        nmp_assert_ok(be.swap_deltas(&be, perm, a, b, 24, d));
        for (int t = 0; t < 24; t++) {
            memcpy(q, perm, sizeof q);
            q[a] = perm[t];
            q[t] = perm[a];
            nmp_assert_ok(nmp_score(pb, q, &after));
            nmp_assert_close(d[t], after - before, 1e-4);
        }
    }
    int64_t bad = 24;
    assert_int_equal(be.swap_deltas(&be, perm, 0, &bad, 1, d), NMP_ERR_ARG);
    nmp_problem_free(pb);
}

/* each pair's gain is the best of all masks, and applying the mask gains exactly that */
static void test_windows(void **state)
{
    (void)state;
    assert_int_equal(nmp_backend_split_count(4), 35);
    assert_int_equal(nmp_backend_split_count(2), 3);
    assert_int_equal(nmp_backend_split_count(8), 6435);
    nmp_problem *pb = nmp_test_problem(40, 20, 2, 4, 0, 3);
    nmp_backend be = cpu_backend(pb);
    int32_t perm[20];
    double gain[10];
    uint32_t mask[10];
    nmp_perm_identity(perm, 20);
    nmp_assert_ok(be.window_repartitions(&be, perm, gain, mask));
    int p = 0;
    for (int g = 0; g < 5; g++)
        for (int h = g + 1; h < 5; h++, p++) {
            const double cur = nmp_backend_split_value(pb, perm, g, h, 0xF);
            double best = cur;
            for (uint32_t mk = 1; mk < 256; mk += 2) {
                int bits = 0;
                for (uint32_t x = mk; x; x &= x - 1)
                    bits++;
                if (bits == 4 && nmp_backend_split_value(pb, perm, g, h, mk) > best)
                    best = nmp_backend_split_value(pb, perm, g, h, mk);
            }
            assert_true(gain[p] >= 0);
            assert_true(mask[p] & 1u);
            nmp_assert_close(gain[p], best - cur, 1e-9);
            nmp_assert_close(nmp_backend_split_value(pb, perm, g, h, mask[p]) - cur, gain[p], 1e-9);
            /* a mask without m bits is no split */
            assert_true(isinf(nmp_backend_split_value(pb, perm, g, h, 0x7)));
        }
    nmp_problem_free(pb);
}

/* pricing against four nested loops over all 4-subsets */
static void test_pricing(void **state)
{
    (void)state;
    const int c = 16;
    nmp_problem *pb = nmp_test_problem(30, c, 2, 4, 0, 4);
    nmp_backend be = cpu_backend(pb);
    double y[16], rc[16];
    int32_t cols[16 * 4];
    nmp_rng r;
    nmp_rng_seed(&r, 11);
    for (int i = 0; i < c; i++)
        y[i] = 30 * nmp_rng_uniform(&r);
    nmp_assert_ok(be.pricing(&be, y, rc, cols));
    for (int i = 0; i < c; i++) {
        double best = -INFINITY;
        for (int a = i + 1; a < c; a++)
            for (int b = a + 1; b < c; b++)
                for (int d = b + 1; d < c; d++) {
                    const int32_t s[4] = { i, a, b, d };
                    const double v = nmp_score_group_value(pb, s) - y[i] - y[a] - y[b] - y[d];
                    best = v > best ? v : best;
                }
        if (i > c - 4) {
            assert_true(isinf(rc[i]) && rc[i] < 0);
            continue;
        }
        nmp_assert_close(rc[i], best, 1e-9);
        assert_int_equal(cols[i * 4], i);
        double v = nmp_score_group_value(pb, cols + i * 4);
        for (int t = 0; t < 4; t++) {
            v -= y[cols[i * 4 + t]];
            if (t)
                assert_true(cols[i * 4 + t] > cols[i * 4 + t - 1]);
        }
        nmp_assert_close(v, rc[i], 1e-9);
    }
    nmp_problem_free(pb);
}

static void test_init(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(8, 8, 2, 4, 0, 6);
    nmp_backend be;
    nmp_msg msg = { { 0 } };
    nmp_assert_ok(nmp_backend_init(&be, pb, "cpu", &msg));
    assert_string_equal(be.name, "cpu");
    nmp_backend_release(&be);
    assert_int_equal(nmp_backend_init(&be, pb, "tpu", &msg), NMP_ERR_ARG);
    setenv("NMP_BACKEND", "cpu", 1);
    nmp_assert_ok(nmp_backend_init(&be, pb, NULL, &msg));
    assert_string_equal(be.name, "cpu");
    nmp_backend_release(&be);
    unsetenv("NMP_BACKEND");
    nmp_assert_ok(nmp_backend_init(&be, pb, "auto", &msg));
    if (nmp_gpu_count() == 0) {
        assert_string_equal(be.name, "cpu");
        const nmp_err e = nmp_backend_init(&be, pb, "gpu", &msg);
        assert_true(e == NMP_ERR_GPU || e == NMP_ERR_UNSUPPORTED);
    }
    nmp_backend_release(&be);
    nmp_backend_release(NULL);
    nmp_problem_free(pb);
}

static void test_gather(void **state)
{
    (void)state;
    float a[3 * 4], out[3 * 4];
    const int32_t perm[4] = { 2, 0, 3, 1 }, bad[4] = { 0, 0, 1, 2 };
    for (int k = 0; k < 12; k++)
        a[k] = (float)k;
    nmp_matrix v = nmp_matrix_view(a, 3, 4);
    nmp_assert_ok(nmp_gather_cols(&v, perm, out));
    for (int j = 0; j < 3; j++)
        for (int k = 0; k < 4; k++)
            assert_true(out[j * 4 + k] == a[j * 4 + perm[k]]);
    nmp_matrix t = nmp_matrix_transpose(v); /* 4 x 3 strided view */
    float out2[12];
    nmp_assert_ok(nmp_gather_cols(&t, NULL, out2));
    assert_true(out2[1] == a[4]);
    assert_int_equal(nmp_gather_cols(&v, bad, out), NMP_ERR_ARG);
}

static void test_prune(void **state)
{
    (void)state;
    const nmp_pattern p24 = { 2, 4 };
    float w[8] = { 0.5f, -3.0f, 1.0f, 2.0f, 1.0f, -1.0f, 1.0f, 0.25f };
    nmp_assert_ok(nmp_prune_nm(w, 1, 8, p24));
    const float want[8] = { 0, -3.0f, 0, 2.0f, 1.0f, -1.0f, 0, 0 }; /* ties keep lower index */
    for (int k = 0; k < 8; k++)
        assert_true(w[k] == want[k]);
    assert_int_equal(nmp_prune_violations(w, 1, 8, p24), 0);
    float *r = nmp_test_matrix(17, 32, 1, 8);
    nmp_assert_ok(nmp_prune_nm(r, 17, 32, p24));
    assert_int_equal(nmp_prune_violations(r, 17, 32, p24), 0);
    for (int g = 0; g < 17 * 8; g++) {
        int nz = 0;
        for (int t = 0; t < 4; t++)
            nz += r[g * 4 + t] != 0;
        assert_int_equal(nz, 2);
    }
    free(r);
    assert_int_equal(nmp_prune_nm(w, 1, 6, p24), NMP_ERR_ARG);
}

static void test_diff_gemm(void **state)
{
    (void)state;
    const float y[3] = { 1.0f, 2.5f, -1.0f }, ref[3] = { 1.0f, 2.0f, -1.0f };
    nmp_diff d;
    nmp_assert_ok(nmp_diff_compute(y, ref, 3, &d));
    nmp_assert_close(d.max_abs, 0.5, 1e-12);
    nmp_assert_close(d.max_ref, 2.0, 1e-12);
    nmp_assert_close(d.rel_fro, 0.5 / sqrt(6.0), 1e-12);
    assert_int_equal(d.nonfinite, 0);
    const float bad[3] = { NAN, 2.0f, -1.0f };
    nmp_assert_ok(nmp_diff_compute(bad, ref, 3, &d));
    assert_int_equal(d.nonfinite, 1);
    assert_true(isnan(d.rel_fro));
    const float x[2 * 3] = { 1, 2, 3, 4, 5, 6 }, w[2 * 3] = { 1, 0, -1, 2, 1, 0 };
    float out[4];
    nmp_assert_ok(nmp_gemm_xwt(x, w, 2, 2, 3, out));
    const float want[4] = { -2, 4, -2, 13 };
    for (int k = 0; k < 4; k++)
        nmp_assert_close(out[k], want[k], 0);
}

static void test_dtypes_and_stubs(void **state)
{
    (void)state;
    nmp_dtype d;
    nmp_assert_ok(nmp_dtype_parse("bf16", &d));
    assert_int_equal(d, NMP_DTYPE_BF16);
    nmp_assert_ok(nmp_dtype_parse("fp8", &d));
    assert_string_equal(nmp_dtype_name(d), "e4m3");
    nmp_assert_ok(nmp_dtype_parse("tf32", &d));
    assert_int_equal(d, NMP_DTYPE_F32);
    assert_int_equal(nmp_dtype_parse("fp64", &d), NMP_ERR_ARG);
    assert_true(nmp_dtype_tolerance(NMP_DTYPE_BF16) > nmp_dtype_tolerance(NMP_DTYPE_F16));
    if (nmp_gpu_count() == 0) {
        nmp_spmm_desc desc = { 0 };
        nmp_spmm_report rep;
        nmp_msg msg = { { 0 } };
        desc.n = desc.k = desc.tokens = 64;
        const nmp_err e = nmp_gpu_spmm_eval(&desc, &rep, &msg);
        assert_true(e == NMP_ERR_GPU || e == NMP_ERR_UNSUPPORTED);
        assert_true(msg.text[0] != '\0');
        char buf[64];
        assert_int_equal(nmp_gpu_describe(buf, sizeof buf), NMP_ERR_GPU);
        desc.dtype = NMP_DTYPE_F32; /* refused before looking for a device, when cuSPARSELt is in */
        assert_int_not_equal(nmp_gpu_spmm_eval(&desc, &rep, &msg), NMP_OK);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_score_groups), cmocka_unit_test(test_swap_deltas),
        cmocka_unit_test(test_windows),      cmocka_unit_test(test_pricing),
        cmocka_unit_test(test_init),         cmocka_unit_test(test_gather),
        cmocka_unit_test(test_prune),        cmocka_unit_test(test_diff_gemm),
        cmocka_unit_test(test_dtypes_and_stubs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

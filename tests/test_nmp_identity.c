/* test_nmp_identity.c: the identity solver keeps its start, through its ops and through nmp_solve */
#include "nmp_test.h"

#include "nmp_solvers.h"

static void ops_directly(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(12, 32, 2, 4, 0, 1);
    nmp_params par;
    nmp_params_init(&par);
    nmp_rng r;
    nmp_rng_seed(&r, 1);
    int32_t perm[32], start[32];
    nmp_perm_random(start, 32, &r);
    memcpy(perm, start, sizeof perm);
    void *st = NULL;
    nmp_assert_ok(nmp_identity_ops.create(pb, &par, &st, NULL));
    nmp_result res;
    memset(&res, 0, sizeof res);
    res.status = NMP_STATUS_OPTIMAL;
    nmp_assert_ok(nmp_identity_ops.solve(st, perm, &res));
    nmp_identity_ops.destroy(st);
    assert_memory_equal(perm, start, sizeof perm);
    assert_int_equal(res.status, NMP_STATUS_FEASIBLE); /* proves nothing */
    assert_string_equal(nmp_identity_ops.name, "identity");
    assert_null(nmp_identity_ops.params[0].name);
    nmp_problem_free(pb);
}

static void through_solve(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 2);
    const int pat[][2] = { { 2, 4 }, { 1, 2 }, { 4, 8 }, { 5, 16 } };
    for (int t = 0; t < 4; t++) {
        const int n = pat[t][0], m = pat[t][1];
        const int64_t cols = 4 * m;
        nmp_problem *pb = nmp_test_problem(30, cols, n, m, t % 2, 20 + (uint64_t)t);
        int32_t perm[64], start[64];
        nmp_result res;
        nmp_assert_ok(nmp_solve(pb, "identity", NULL, perm, 1, &res, NULL));
        for (int64_t k = 0; k < cols; k++)
            assert_int_equal(perm[k], k);
        nmp_assert_close(res.score, nmp_score_identity(pb), 1e-9 * res.score);
        nmp_assert_close(res.start_score, res.score, 0);
        assert_true(res.bound >= res.score);
        nmp_assert_close(res.bound, nmp_score_row_bound(pb), 1e-9 * res.bound);
        assert_int_equal(res.status, NMP_STATUS_FEASIBLE);

        nmp_perm_random(start, cols, &r);
        memcpy(perm, start, sizeof perm);
        nmp_assert_ok(nmp_solve(pb, "identity", NULL, perm, 0, &res, NULL));
        assert_memory_equal(perm, start, (size_t)cols * sizeof *perm);
        double kept;
        nmp_assert_ok(nmp_score(pb, start, &kept));
        nmp_assert_close(res.score, kept, 1e-9 * kept);
        nmp_assert_close(res.start_score, kept, 1e-9 * kept);
        nmp_problem_free(pb);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ops_directly),
        cmocka_unit_test(through_solve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_nmp_random.c: best of K random perms: contract, seeds, time limit and interruption */
#include "nmp_test.h"

#include "nmp_solvers.h"

static void ops_directly(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(16, 32, 2, 4, 0, 1);
    nmp_params par;
    nmp_params_init(&par);
    par.seed = 9;
    nmp_assert_ok(nmp_params_set(&par, "tries", 50));
    nmp_rng r;
    nmp_rng_seed(&r, 1);
    for (int from_random = 0; from_random < 2; from_random++) {
        int32_t perm[32];
        if (from_random)
            nmp_perm_random(perm, 32, &r);
        else
            nmp_perm_identity(perm, 32);
        const double start = nmp_test_score(pb, perm);
        void *st = NULL;
        nmp_assert_ok(nmp_random_ops.create(pb, &par, &st, NULL));
        nmp_result res;
        memset(&res, 0, sizeof res);
        nmp_assert_ok(nmp_random_ops.solve(st, perm, &res));
        nmp_random_ops.destroy(st);
        assert_true(nmp_perm_is_valid(perm, 32));
        assert_true(nmp_test_score(pb, perm) >= start);
        assert_int_equal(res.iterations, 50);
        assert_int_equal(res.status, NMP_STATUS_FEASIBLE);
    }
    nmp_random_ops.destroy(NULL);
    nmp_problem_free(pb);
}

static void contract_and_seeds(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 2);
    const int pat[][2] = { { 2, 4 }, { 1, 4 }, { 4, 8 }, { 16, 32 } };
    for (int t = 0; t < 4; t++) {
        const int n = pat[t][0], m = pat[t][1];
        const int64_t cols = 4 * m;
        nmp_problem *pb = nmp_test_problem(20, cols, n, m, t % 2, 30 + (uint64_t)t);
        nmp_params par;
        nmp_params_init(&par);
        nmp_assert_ok(nmp_params_set(&par, "tries", 40));
        int32_t start[128], a[128], b[128], c[128];
        nmp_result ra, rb, rc;
        nmp_perm_random(start, cols, &r);
        par.seed = 5;
        memcpy(a, start, sizeof a);
        nmp_assert_ok(nmp_solve(pb, "random", &par, a, 0, &ra, NULL));
        memcpy(b, start, sizeof b);
        nmp_assert_ok(nmp_solve(pb, "random", &par, b, 0, &rb, NULL));
        assert_memory_equal(a, b, (size_t)cols * sizeof *a); /* same seed, same perm */
        nmp_assert_close(ra.score, rb.score, 0);
        assert_true(nmp_perm_is_valid(a, cols));
        nmp_assert_close(ra.score, nmp_test_score(pb, a), 1e-9 * ra.score);
        nmp_assert_close(ra.start_score, nmp_test_score(pb, start), 1e-9 * ra.score);
        assert_true(ra.score >= ra.start_score);
        assert_true(ra.bound >= ra.score);
        /* from the identity: never below it */
        par.seed = 6;
        nmp_assert_ok(nmp_solve(pb, "random", &par, c, 1, &rc, NULL));
        assert_true(rc.score >= nmp_score_identity(pb));
        nmp_assert_close(rc.score, nmp_test_score(pb, c), 1e-9 * rc.score);
        nmp_problem_free(pb);
    }
    /* different seeds explore different perms: on a random instance the best of 20 differs */
    nmp_problem *pb = nmp_test_problem(20, 64, 2, 4, 0, 40);
    nmp_params par;
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "tries", 20));
    int32_t a[64], b[64];
    nmp_result ra, rb;
    par.seed = 1;
    nmp_assert_ok(nmp_solve(pb, "random", &par, a, 1, &ra, NULL));
    par.seed = 2;
    nmp_assert_ok(nmp_solve(pb, "random", &par, b, 1, &rb, NULL));
    assert_true(memcmp(a, b, sizeof a) != 0);
    /* more tries from the same seed draw a superset of candidates: never worse */
    nmp_assert_ok(nmp_params_set(&par, "tries", 200));
    nmp_assert_ok(nmp_solve(pb, "random", &par, a, 1, &ra, NULL));
    assert_true(ra.score >= rb.score);
    nmp_problem_free(pb);
}

static void time_limit(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(512, 512, 2, 4, 0, 3);
    nmp_params par;
    nmp_params_init(&par);
    par.time_limit = 1e-9;
    nmp_assert_ok(nmp_params_set(&par, "tries", 1e9));
    int32_t *perm = malloc(512 * sizeof *perm);
    assert_non_null(perm);
    nmp_result res;
    nmp_assert_ok(nmp_solve(pb, "random", &par, perm, 1, &res, NULL));
    assert_int_equal(res.status, NMP_STATUS_TIME_LIMIT);
    assert_int_equal(res.iterations, 0); /* stopped at its first look at the clock */
    assert_true(nmp_perm_is_valid(perm, 512));
    assert_true(res.score >= res.start_score);
    nmp_assert_close(res.score, nmp_test_score(pb, perm), 1e-9 * res.score);
    free(perm);
    nmp_problem_free(pb);
}

typedef struct calls {
    int count, stop_at;
    double last_elapsed, start;
    int bad;
} calls;

static int progress(const nmp_progress *p, void *user)
{
    calls *c = user;
    c->count++;
    if (!(p->elapsed >= c->last_elapsed) || !(p->best >= c->start) || !(p->bound >= p->best) ||
        !p->phase)
        c->bad++;
    c->last_elapsed = p->elapsed;
    return c->count >= c->stop_at;
}

static void interrupted_by_progress(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(256, 256, 2, 4, 0, 4);
    nmp_params par;
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "tries", 1e9));
    calls c = { 0, 2, 0, nmp_score_identity(pb), 0 };
    par.progress = progress;
    par.progress_user = &c;
    int32_t *perm = malloc(256 * sizeof *perm);
    assert_non_null(perm);
    nmp_result res;
    nmp_assert_ok(nmp_solve(pb, "random", &par, perm, 1, &res, NULL));
    assert_int_equal(res.status, NMP_STATUS_INTERRUPTED);
    assert_int_equal(c.count, 2); /* stopped at the first nonzero return */
    assert_int_equal(c.bad, 0);
    assert_true(res.iterations > 0 && res.iterations < 1000000000);
    nmp_test_check_solution(pb, perm, &res, 1e-9 * res.score);
    free(perm);
    nmp_problem_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ops_directly),
        cmocka_unit_test(contract_and_seeds),
        cmocka_unit_test(time_limit),
        cmocka_unit_test(interrupted_by_progress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

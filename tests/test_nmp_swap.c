/* test_nmp_swap.c: channel swap: contract, 2-swap local optimality by brute force, escapes, seeds,
 * time limit and interruption */
#include "nmp_test.h"

#include "nmp_solvers.h"

static void ops_directly(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(24, 32, 2, 4, 0, 1);
    nmp_params par;
    nmp_params_init(&par);
    int32_t perm[32];
    nmp_perm_identity(perm, 32);
    void *st = NULL;
    nmp_assert_ok(nmp_swap_ops.create(pb, &par, &st, NULL));
    nmp_result res;
    memset(&res, 0, sizeof res);
    nmp_assert_ok(nmp_swap_ops.solve(st, perm, &res));
    assert_true(nmp_perm_is_valid(perm, 32));
    const double first = nmp_test_score(pb, perm);
    assert_true(first > nmp_score_identity(pb)); /* 8 groups of |N(0,1)|: swaps always help */
    assert_int_equal(res.status, NMP_STATUS_FEASIBLE);
    assert_true(nmp_test_best_swap_gain(pb, perm) <= 1e-6);
    /* the same state solves again from another start */
    nmp_rng r;
    nmp_rng_seed(&r, 1);
    nmp_perm_random(perm, 32, &r);
    const double start = nmp_test_score(pb, perm);
    nmp_assert_ok(nmp_swap_ops.solve(st, perm, &res));
    assert_true(nmp_perm_is_valid(perm, 32));
    assert_true(nmp_test_score(pb, perm) >= start);
    assert_true(nmp_test_best_swap_gain(pb, perm) <= 1e-6);
    nmp_swap_ops.destroy(st);
    nmp_swap_ops.destroy(NULL);
    nmp_problem_free(pb);
}

/* Random instances, several patterns and value kinds (ties included), from the identity and from
 * random starts: valid, recomputed score, never below the start, and a 2-swap local optimum. */
static void local_optimum_by_brute_force(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 2);
    const int pat[][2] = { { 2, 4 }, { 1, 4 }, { 3, 4 }, { 1, 2 }, { 4, 8 }, { 2, 8 } };
    for (int t = 0; t < 6; t++)
        for (int kind = 0; kind < 3; kind++) {
            const int n = pat[t][0], m = pat[t][1];
            const int64_t rows = 8 + (int64_t)nmp_rng_below(&r, 60);
            const int64_t cols = (int64_t)m * (2 + (int64_t)nmp_rng_below(&r, 10));
            float *w = malloc((size_t)(rows * cols) * sizeof *w);
            assert_non_null(w);
            for (int64_t k = 0; k < rows * cols; k++)
                w[k] = kind == 0 ? (float)nmp_rng_normal(&r)
                     : kind == 1 ? (float)nmp_rng_uniform(&r)
                                 : (float)nmp_rng_below(&r, 3); /* ties */
            nmp_problem_desc d = { 0 };
            d.weights = nmp_matrix_view(w, rows, cols);
            d.nm.n = n;
            d.nm.m = m;
            nmp_problem *pb = NULL;
            nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
            free(w);
            for (int from_random = 0; from_random < 2; from_random++) {
                int32_t *perm = malloc((size_t)cols * sizeof *perm);
                int32_t *start = malloc((size_t)cols * sizeof *start);
                assert_non_null(perm);
                assert_non_null(start);
                if (from_random)
                    nmp_perm_random(start, cols, &r);
                else
                    nmp_perm_identity(start, cols);
                memcpy(perm, start, (size_t)cols * sizeof *perm);
                nmp_result res;
                nmp_assert_ok(nmp_solve(pb, "swap", NULL, perm, 0, &res, NULL));
                assert_true(nmp_perm_is_valid(perm, cols));
                const double kept = nmp_test_score(pb, perm);
                nmp_assert_close(res.score, kept, 1e-9 * kept);
                nmp_assert_close(res.start_score, nmp_test_score(pb, start), 1e-9 * kept);
                assert_true(res.score >= res.start_score);
                assert_true(res.bound >= res.score);
                assert_int_equal(res.status, NMP_STATUS_FEASIBLE);
                const double gain = nmp_test_best_swap_gain(pb, perm);
                if (!(gain <= 1e-6)) {
                    print_error("%d:%d kind %d %lldx%lld: a swap still gains %g\n", n, m, kind,
                                (long long)rows, (long long)cols, gain);
                    fail();
                }
                free(start);
                free(perm);
            }
            nmp_problem_free(pb);
        }
}

/* Escapes start from the plain descent's result and keep only improvements: never worse than no
 * escapes; same seed, same perm; and on an instance with room they find more. */
static void escapes_and_seeds(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(64, 64, 2, 4, 0, 3);
    nmp_params par;
    nmp_params_init(&par);
    int32_t plain[64], a[64], b[64];
    nmp_result rp, ra, rb;
    nmp_assert_ok(nmp_solve(pb, "swap", &par, plain, 1, &rp, NULL));
    nmp_assert_ok(nmp_params_set(&par, "escapes", 40));
    par.seed = 11;
    nmp_assert_ok(nmp_solve(pb, "swap", &par, a, 1, &ra, NULL));
    nmp_assert_ok(nmp_solve(pb, "swap", &par, b, 1, &rb, NULL));
    assert_memory_equal(a, b, sizeof a);
    nmp_assert_close(ra.score, rb.score, 0);
    assert_true(ra.score >= rp.score);
    assert_true(rp.iterations > 0); /* applied moves: the escapes' descents add to the first */
    assert_true(ra.iterations > rp.iterations);
    assert_true(nmp_test_best_swap_gain(pb, a) <= 1e-6);
    nmp_assert_close(ra.score, nmp_test_score(pb, a), 1e-9 * ra.score);
    /* escape t is drawn the same way whatever the count, so E + 1 escapes replay E of them and
     * one more: the kept best can only rise with E */
    double prev = rp.score;
    for (int e = 1; e <= 24; e++) {
        nmp_assert_ok(nmp_params_set(&par, "escapes", e));
        nmp_assert_ok(nmp_solve(pb, "swap", &par, b, 1, &rb, NULL));
        assert_true(rb.score >= prev);
        prev = rb.score;
    }
    nmp_assert_ok(nmp_params_set(&par, "escapes", 100));
    int differs = 0; /* some seed's escapes improve on the plain descent */
    for (uint64_t seed = 1; seed <= 5 && !differs; seed++) {
        par.seed = seed;
        nmp_assert_ok(nmp_solve(pb, "swap", &par, b, 1, &rb, NULL));
        assert_true(rb.score >= rp.score);
        differs = rb.score > rp.score;
    }
    assert_true(differs);
    nmp_problem_free(pb);
}

/* Escapes keep their best by comparing scores with each other only, never with a fixed margin.
 * On 8 x 32 weights times 2^-12 (kept scores ~0.04, so every local optimum lies within 1.0 of
 * the best) the kept best must still rise with the number of escapes E, for each seed (escape t
 * is drawn the same way whatever E); and the same weights times 2^12 (exact in floats, where no
 * two optima lie within 1.0) give the same perms. Few rows make escapes that land on worse
 * optima common (8 rows: a few per seed in 60 escapes; at 64 rows they almost always return). */
static void escapes_keep_their_best(void **state)
{
    (void)state;
    enum { ROWS = 8, COLS = 32 };
    float *w = nmp_test_matrix(ROWS, COLS, 0, 3);
    float *scaled = malloc(2 * ROWS * COLS * sizeof *scaled);
    assert_non_null(scaled);
    nmp_problem *pb[2] = { NULL, NULL }; /* small, big */
    for (int t = 0; t < 2; t++) {
        for (int k = 0; k < ROWS * COLS; k++)
            scaled[t * ROWS * COLS + k] = ldexpf(w[k], t ? 12 : -12);
        nmp_problem_desc d = { 0 };
        d.weights = nmp_matrix_view(scaled + t * ROWS * COLS, ROWS, COLS);
        d.nm.n = 2;
        d.nm.m = 4;
        nmp_assert_ok(nmp_problem_create(&d, &pb[t], NULL));
    }
    int32_t a[COLS], b[COLS];
    nmp_result ra, rb;
    int rises = 0;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        nmp_params par;
        nmp_params_init(&par);
        par.seed = seed;
        double prev = 0;
        for (int e = 0; e <= 60; e++) {
            nmp_assert_ok(nmp_params_set(&par, "escapes", e));
            nmp_assert_ok(nmp_solve(pb[0], "swap", &par, a, 1, &ra, NULL));
            assert_true(ra.score < 1.0);
            if (!(ra.score >= prev)) {
                print_error("seed %llu, %d escapes: kept %.17g, below %.17g with fewer\n",
                            (unsigned long long)seed, e, ra.score, prev);
                fail();
            }
            rises += e > 0 && ra.score > prev;
            prev = ra.score;
        }
        nmp_assert_ok(nmp_solve(pb[1], "swap", &par, b, 1, &rb, NULL));
        assert_memory_equal(a, b, sizeof a);
        nmp_assert_close(ldexp(ra.score, 24), rb.score, 1e-12 * rb.score);
    }
    assert_true(rises > 0); /* escapes found better optima: the test can see a loss too */
    nmp_problem_free(pb[0]);
    nmp_problem_free(pb[1]);
    free(scaled);
    free(w);
}

/* apex's reference instance (np.random.seed(1); rand(128, 64), 2:4): the swap search must beat
 * the identity's 2852.376 and stay below the row bound 3042.332. */
static void apex_instance_improves(void **state)
{
    (void)state;
    float *w = malloc(128 * 64 * sizeof *w);
    assert_non_null(w);
    nmp_mt19937 g;
    nmp_mt19937_seed(&g, 1);
    for (int k = 0; k < 128 * 64; k++)
        w[k] = (float)nmp_mt19937_uniform(&g);
    nmp_problem_desc d = { 0 };
    d.weights = nmp_matrix_view(w, 128, 64);
    d.nm.n = 2;
    d.nm.m = 4;
    nmp_problem *pb = NULL;
    nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
    int32_t perm[64];
    nmp_result res;
    nmp_assert_ok(nmp_solve(pb, "swap", NULL, perm, 1, &res, NULL));
    assert_true(res.score > 2852.376 + 10);
    assert_true(res.score < 3042.332);
    assert_true(nmp_score_efficacy(pb, res.score) > 0.05);
    assert_true(nmp_test_best_swap_gain(pb, perm) <= 1e-6);
    nmp_problem_free(pb);
    free(w);
}

static void time_limit(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(512, 512, 2, 4, 0, 4);
    nmp_params par;
    nmp_params_init(&par);
    par.time_limit = 1e-9;
    nmp_assert_ok(nmp_params_set(&par, "escapes", 1e6));
    nmp_rng r;
    nmp_rng_seed(&r, 4);
    int32_t *perm = malloc(512 * sizeof *perm), *start = malloc(512 * sizeof *start);
    assert_non_null(perm);
    assert_non_null(start);
    for (int from_random = 0; from_random < 2; from_random++) {
        if (from_random)
            nmp_perm_random(start, 512, &r);
        else
            nmp_perm_identity(start, 512);
        memcpy(perm, start, 512 * sizeof *perm);
        nmp_result res;
        nmp_assert_ok(nmp_solve(pb, "swap", &par, perm, 0, &res, NULL));
        assert_int_equal(res.status, NMP_STATUS_TIME_LIMIT);
        assert_int_equal(res.iterations, 0); /* stopped inside the first pass: no move yet */
        assert_true(nmp_perm_is_valid(perm, 512));
        nmp_assert_close(res.score, nmp_test_score(pb, perm), 1e-9 * res.score);
        nmp_assert_close(res.start_score, nmp_test_score(pb, start), 1e-9 * res.score);
        assert_true(res.score >= res.start_score);
    }
    free(start);
    free(perm);
    nmp_problem_free(pb);
}

static int stop_now(const nmp_progress *p, void *user)
{
    int *count = user;
    (*count)++;
    return p->best >= 0; /* always nonzero */
}

static void interrupted_by_progress(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(512, 512, 2, 4, 0, 5);
    nmp_params par;
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "escapes", 1e9));
    int count = 0;
    par.progress = stop_now;
    par.progress_user = &count;
    int32_t *perm = malloc(512 * sizeof *perm);
    assert_non_null(perm);
    nmp_result res;
    nmp_assert_ok(nmp_solve(pb, "swap", &par, perm, 1, &res, NULL));
    assert_int_equal(res.status, NMP_STATUS_INTERRUPTED);
    assert_int_equal(count, 1);
    nmp_test_check_solution(pb, perm, &res, 1e-9 * res.score);
    free(perm);
    nmp_problem_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ops_directly),
        cmocka_unit_test(local_optimum_by_brute_force),
        cmocka_unit_test(escapes_and_seeds),
        cmocka_unit_test(escapes_keep_their_best),
        cmocka_unit_test(apex_instance_improves),
        cmocka_unit_test(time_limit),
        cmocka_unit_test(interrupted_by_progress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

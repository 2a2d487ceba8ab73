/* test_nmp_lns.c: large-neighbourhood search: contract, exactness on one window, dp optima with
 * kicks, seeds, strategies, iteration and time limits, interruption, refusals */
#include "nmp_test.h"

#include "nmp_solvers.h"

/* Solves from perm (a start) and checks the driver's contract. */
static nmp_result solve(const nmp_problem *pb, const nmp_params *par, int32_t *perm)
{
    nmp_result res;
    nmp_msg msg = { { 0 } };
    nmp_assert_ok(nmp_solve(pb, "lns", par, perm, 0, &res, &msg));
    nmp_test_check_solution(pb, perm, &res, 1e-9 * res.score);
    return res;
}

static void contract_random(void **state)
{
    (void)state;
    const struct {
        int rows, cols, n, m, kind, window;
    } cases[] = {
        { 16, 64, 2, 4, 0, 16 }, { 33, 48, 2, 4, 1, 12 }, { 20, 40, 1, 4, 0, 16 },
        { 9, 48, 3, 4, 1, 16 },  { 12, 48, 2, 8, 0, 16 }, { 7, 24, 1, 2, 0, 12 },
        { 1, 32, 2, 4, 0, 8 },   { 70, 96, 2, 4, 1, 16 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int strategy = -1; strategy <= 3; strategy++) {
            nmp_problem *pb = nmp_test_problem(cases[c].rows, cases[c].cols, cases[c].n,
                                               cases[c].m, cases[c].kind, 100 + c);
            nmp_params par;
            nmp_params_init(&par);
            par.seed = c * 10 + (uint64_t)(strategy + 1);
            nmp_assert_ok(nmp_params_set(&par, "window", cases[c].window));
            nmp_assert_ok(nmp_params_set(&par, "strategy", strategy));
            nmp_assert_ok(nmp_params_set(&par, "kicks", 3));
            nmp_assert_ok(nmp_params_set(&par, "max_fail", 30));
            nmp_assert_ok(nmp_params_set(&par, "kick_fail", 10));
            int32_t perm[96];
            nmp_rng r;
            nmp_rng_seed(&r, par.seed);
            nmp_perm_random(perm, cases[c].cols, &r);
            const nmp_result res = solve(pb, &par, perm);
            /* optimal only when the score reached the row bound (one row: always reachable) */
            if (res.score < nmp_score_row_bound(pb) * (1 - 1e-6))
                assert_int_equal(res.status, NMP_STATUS_FEASIBLE);
            else
                assert_int_equal(res.status, NMP_STATUS_OPTIMAL);
            assert_true(res.iterations > 0);
            nmp_problem_free(pb);
        }
}

/* The window holds every group: one exact move, the dp optimum, status optimal. */
static void one_window_is_exact(void **state)
{
    (void)state;
    for (int inst = 0; inst < 6; inst++) {
        const int cols = 8 + 4 * (inst % 3);
        nmp_problem *pb = nmp_test_problem(20 + inst, cols, 2, 4, inst % 2, 300 + inst);
        int32_t opt[16], perm[16];
        nmp_result ro;
        nmp_assert_ok(nmp_solve(pb, "dp", NULL, opt, 1, &ro, NULL));
        nmp_params par;
        nmp_params_init(&par);
        nmp_assert_ok(nmp_params_set(&par, "window", 16));
        nmp_rng r;
        nmp_rng_seed(&r, inst);
        nmp_perm_random(perm, cols, &r);
        const nmp_result res = solve(pb, &par, perm);
        assert_int_equal(res.status, NMP_STATUS_OPTIMAL);
        nmp_assert_close(res.score, ro.score, 1e-6 * ro.score);
        nmp_problem_free(pb);
    }
}

/* 20 columns (5 groups), 3-group windows with kicks: the dp optimum on most instances. */
static void small_instances_reach_optimum(void **state)
{
    (void)state;
    int hits = 0;
    const int count = 10;
    for (int inst = 0; inst < count; inst++) {
        nmp_problem *pb = nmp_test_problem(32, 20, 2, 4, inst % 2, 400 + inst);
        int32_t opt[20], perm[20];
        nmp_result ro;
        nmp_assert_ok(nmp_solve(pb, "dp", NULL, opt, 1, &ro, NULL));
        nmp_params par;
        nmp_params_init(&par);
        par.seed = inst;
        nmp_assert_ok(nmp_params_set(&par, "window", 12));
        nmp_assert_ok(nmp_params_set(&par, "kicks", 100));
        nmp_assert_ok(nmp_params_set(&par, "kick_fail", 15));
        nmp_perm_identity(perm, 20);
        const nmp_result res = solve(pb, &par, perm);
        assert_true(res.score <= ro.score + 1e-6 * ro.score);
        hits += res.score >= ro.score - 1e-6 * ro.score;
        nmp_problem_free(pb);
    }
    assert_true(hits >= 8);
}

/* Same seed, same perm; kicks never lose what the first descent found (it draws the same). */
static void seeds_and_kicks(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(64, 128, 2, 4, 0, 5);
    int32_t a[128], b[128], c[128];
    nmp_params par;
    nmp_params_init(&par);
    par.seed = 3;
    nmp_assert_ok(nmp_params_set(&par, "window", 12));
    nmp_assert_ok(nmp_params_set(&par, "kicks", 20));
    nmp_perm_identity(a, 128);
    const nmp_result ra = solve(pb, &par, a);
    nmp_perm_identity(b, 128);
    const nmp_result rb = solve(pb, &par, b);
    assert_memory_equal(a, b, sizeof a);
    assert_true(ra.score == rb.score);
    nmp_assert_ok(nmp_params_set(&par, "kicks", 0));
    nmp_perm_identity(c, 128);
    const nmp_result rc = solve(pb, &par, c);
    assert_true(ra.score >= rc.score);
    assert_true(rc.score > rc.start_score);
    par.seed = 4;
    nmp_perm_identity(c, 128);
    solve(pb, &par, c);
    assert_memory_not_equal(a, c, sizeof a);
    nmp_problem_free(pb);
}

/* Iteration limit, time limit (respected within ~0.1 s) and interruption. */
static void limits(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(256, 512, 2, 4, 0, 6);
    int32_t *perm = malloc(512 * sizeof *perm);
    assert_non_null(perm);
    nmp_params par;
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "iters", 7));
    nmp_perm_identity(perm, 512);
    nmp_result res = solve(pb, &par, perm);
    assert_int_equal(res.status, NMP_STATUS_ITER_LIMIT);
    assert_int_equal(res.iterations, 7);

    nmp_params_init(&par);
    par.time_limit = 0.05;
    nmp_assert_ok(nmp_params_set(&par, "window", 20));
    nmp_assert_ok(nmp_params_set(&par, "kicks", 1e9));
    nmp_perm_identity(perm, 512);
    res = solve(pb, &par, perm);
    assert_int_equal(res.status, NMP_STATUS_TIME_LIMIT);
    assert_true(res.iterations >= 1);

    int calls = 0;
    nmp_params_init(&par);
    par.progress = nmp_test_stop_now;
    par.progress_user = &calls;
    nmp_assert_ok(nmp_params_set(&par, "kicks", 1e9));
    nmp_perm_identity(perm, 512);
    res = solve(pb, &par, perm);
    assert_int_equal(res.status, NMP_STATUS_INTERRUPTED);
    assert_int_equal(calls, 1);
    free(perm);
    nmp_problem_free(pb);
}

/* One 24-column window (2:4, ~9e7 DP transitions, 0.1 s or more) holds every group: with a
 * limit that has passed it gives up inside the window (status TIME_LIMIT, the start returned)
 * instead of finishing it and claiming the optimum; without a limit it is exact (dp agrees).
 * The window solver itself returns -HUGE_VAL once a clock it was given has expired. */
static void large_window_stops(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(512, 24, 2, 4, 0, 9);
    int32_t perm[24], best[24];
    nmp_params par;
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "window", 24));
    par.time_limit = 1e-9;
    nmp_perm_identity(perm, 24);
    nmp_result res = solve(pb, &par, perm);
    assert_int_equal(res.status, NMP_STATUS_TIME_LIMIT);
    for (int i = 0; i < 24; i++)
        assert_int_equal(perm[i], i);
    par.time_limit = 0;
    nmp_perm_identity(best, 24);
    res = solve(pb, &par, best);
    assert_int_equal(res.status, NMP_STATUS_OPTIMAL);
    nmp_result dres;
    nmp_assert_ok(nmp_solve(pb, "dp", NULL, perm, 1, &dres, NULL));
    nmp_assert_close(res.score, dres.score, 1e-9 * dres.score);

    nmp_window *w = NULL;
    nmp_assert_ok(nmp_window_create(pb, 6, &w, NULL));
    nmp_params_init(&par);
    par.time_limit = 1e-9;
    nmp_clock clk;
    nmp_clock_start(&clk, &par);
    nmp_window_set_clock(w, &clk);
    nmp_perm_identity(perm, 24);
    double cur;
    assert_true(nmp_window_solve(w, perm, 6, NULL, &cur) == -HUGE_VAL);
    nmp_window_set_clock(w, NULL); /* float partial sums: within ~1e-7 of dp's value */
    nmp_assert_close(nmp_window_solve(w, perm, 6, NULL, &cur), dres.score, 1e-6 * dres.score);
    nmp_window_free(w);
    nmp_problem_free(pb);
}

static void refusals_and_nomem(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(4, 48, 2, 8, 0, 7);
    nmp_params par;
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "window", 24)); /* 3 groups of 8: too many states */
    int32_t perm[48];
    nmp_result res;
    nmp_msg msg = { { 0 } };
    assert_int_equal(nmp_solve(pb, "lns", &par, perm, 1, &res, &msg), NMP_ERR_UNSUPPORTED);
    assert_non_null(strstr(msg.text, "lns"));
    nmp_problem_free(pb);

    pb = nmp_test_problem(8, 32, 2, 4, 0, 8);
    const nmp_solver_ops *ops = nmp_solver_find("lns");
    assert_non_null(ops);
    nmp_params_init(&par);
    for (int64_t k = 0;; k++) {
        void *st = NULL;
        nmp_alloc_fail_after(k);
        const nmp_err e = ops->create(pb, &par, &st, NULL);
        nmp_alloc_fail_after(-1);
        if (e == NMP_OK) {
            ops->destroy(st);
            break;
        }
        assert_int_equal(e, NMP_ERR_NOMEM);
        assert_null(st);
    }
    ops->destroy(NULL);
    nmp_problem_free(pb);
    /* one group: nothing to do */
    nmp_problem *one = nmp_test_problem(5, 4, 2, 4, 0, 9);
    int32_t p4[4] = { 3, 1, 0, 2 };
    const nmp_result r1 = solve(one, NULL, p4);
    assert_int_equal(r1.status, NMP_STATUS_OPTIMAL);
    nmp_problem_free(one);
}

/* One state solves twice, from the same start, to the same perm (seed and clock restart). */
static void same_state_twice(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(32, 64, 2, 4, 1, 11);
    const nmp_solver_ops *ops = nmp_solver_find("lns");
    assert_non_null(ops);
    nmp_params par;
    nmp_params_init(&par);
    par.seed = 5;
    nmp_assert_ok(nmp_params_set(&par, "kicks", 20));
    void *st = NULL;
    nmp_assert_ok(ops->create(pb, &par, &st, NULL));
    int32_t a[64], b[64];
    nmp_result ra, rb;
    memset(&ra, 0, sizeof ra);
    memset(&rb, 0, sizeof rb);
    nmp_perm_identity(a, 64);
    nmp_perm_identity(b, 64);
    nmp_assert_ok(ops->solve(st, a, &ra));
    nmp_assert_ok(ops->solve(st, b, &rb));
    assert_memory_equal(a, b, sizeof a);
    assert_true(nmp_test_score(pb, a) > nmp_score_identity(pb));
    ops->destroy(st);
    nmp_problem_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(contract_random),
        cmocka_unit_test(one_window_is_exact),
        cmocka_unit_test(small_instances_reach_optimum),
        cmocka_unit_test(seeds_and_kicks),
        cmocka_unit_test(limits),
        cmocka_unit_test(large_window_stops),
        cmocka_unit_test(refusals_and_nomem),
        cmocka_unit_test(same_state_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

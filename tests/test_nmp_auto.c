/* test_nmp_auto.c: the default portfolio: listed first, exact when small, optima of small
 * instances against dp, reproducible per (seed, threads), starts, time limit, interruption, out
 * of memory */
#include "nmp_test.h"

#include <stdbool.h>

#include "nmp_solvers.h"

static void listed_first(void **state)
{
    (void)state;
    const nmp_solver_ops *const *list = nmp_solver_list();
    assert_non_null(list[0]);
    assert_string_equal(list[0]->name, "auto");
    assert_ptr_equal(nmp_solver_find("auto"), &nmp_auto_ops);
    nmp_auto_ops.destroy(NULL);
}

/* Up to dp_cols columns auto is dp: optimal, with the status to say so. */
static void exact_when_small(void **state)
{
    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        nmp_problem *pb = nmp_test_problem(32, 16, 2, 4, kind, 40 + (uint64_t)kind);
        int32_t a[16], b[16];
        nmp_result ra, rb;
        nmp_assert_ok(nmp_solve(pb, "auto", NULL, a, 1, &ra, NULL));
        nmp_assert_ok(nmp_solve(pb, "dp", NULL, b, 1, &rb, NULL));
        assert_int_equal(ra.status, NMP_STATUS_OPTIMAL);
        nmp_assert_close(ra.score, rb.score, 1e-9 * rb.score);
        nmp_assert_close(ra.bound, ra.score, 1e-9 * rb.score);
        nmp_problem_free(pb);
    }
}

/* With dp switched off, the heuristics find the dp optimum of small instances. */
static void heuristics_reach_dp(void **state)
{
    (void)state;
    int hits = 0, total = 0;
    for (int kind = 0; kind < 2; kind++)
        for (uint64_t seed = 1; seed <= 4; seed++) {
            const int64_t rows = seed % 2 ? 64 : 128, cols = seed <= 2 ? 20 : 24;
            nmp_problem *pb = nmp_test_problem(rows, cols, 2, 4, kind, 100 + seed);
            int32_t opt[24], perm[24];
            nmp_result rd, ra;
            nmp_assert_ok(nmp_solve(pb, "dp", NULL, opt, 1, &rd, NULL));
            nmp_params par;
            nmp_params_init(&par);
            par.seed = seed;
            par.threads = 2;
            nmp_assert_ok(nmp_params_set(&par, "dp_cols", 0));
            nmp_assert_ok(nmp_params_set(&par, "exact_cols", 0)); /* the heuristics alone */
            nmp_assert_ok(nmp_params_set(&par, "effort", 0.05));
            nmp_assert_ok(nmp_solve(pb, "auto", &par, perm, 1, &ra, NULL));
            assert_true(nmp_perm_is_valid(perm, cols));
            nmp_assert_close(ra.score, nmp_test_score(pb, perm), 1e-9 * ra.score);
            assert_int_equal(ra.status, NMP_STATUS_FEASIBLE);
            hits += ra.score >= rd.score - 1e-6 * rd.score;
            total++;
            nmp_problem_free(pb);
        }
    if (hits < total) {
        print_error("auto (no dp) found the optimum of %d of %d instances\n", hits, total);
        fail();
    }
}

/* The same (seed, threads) gives the same perm, in the anneal, ils and one-search plans, from
 * the identity and from a random start that it never falls below. */
static void reproducible(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(64, 128, 2, 4, 0, 77);
    nmp_rng r;
    nmp_rng_seed(&r, 3);
    int32_t start[128], a[128], b[128];
    nmp_perm_random(start, 128, &r);
    for (int plan = 0; plan < 3; plan++) {
        nmp_params par;
        nmp_params_init(&par);
        par.seed = 12;
        par.threads = 2;
        nmp_assert_ok(nmp_params_set(&par, "effort", 0.05));
        if (plan >= 1) /* iterated LAP, one search per thread */
            nmp_assert_ok(nmp_params_set(&par, "sa_cols", 0));
        if (plan == 2) /* iterated LAP, one search on all threads */
            nmp_assert_ok(nmp_params_set(&par, "one_groups", 2));
        nmp_result ra, rb;
        memcpy(a, start, sizeof a);
        memcpy(b, start, sizeof b);
        nmp_assert_ok(nmp_solve(pb, "auto", &par, a, 0, &ra, NULL));
        nmp_assert_ok(nmp_solve(pb, "auto", &par, b, 0, &rb, NULL));
        assert_memory_equal(a, b, sizeof a);
        assert_true(nmp_perm_is_valid(a, 128));
        nmp_assert_close(ra.score, nmp_test_score(pb, a), 1e-9 * ra.score);
        nmp_assert_close(ra.start_score, nmp_test_score(pb, start), 1e-9 * ra.score);
        assert_true(ra.score > ra.start_score);
        assert_true(ra.iterations > 0);
        if (plan == 2) { /* no dependence on the thread count at all */
            par.threads = 1;
            memcpy(b, start, sizeof b);
            nmp_assert_ok(nmp_solve(pb, "auto", &par, b, 0, &rb, NULL));
            assert_memory_equal(a, b, sizeof a);
        }
    }
    nmp_problem_free(pb);
}

/* The one-search plan's budget: any effort gets at least its floor (8 rounds here), so effort
 * 0.001 and 0.2 (5.6 rounds) run the same 8 rounds; effort 1 (28 rounds) continues the same
 * search, so it keeps at least as much. */
static void one_plan_budget(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(64, 128, 2, 4, 0, 78);
    int32_t p[3][128];
    double score[3];
    const double effort[3] = { 0.001, 0.2, 1 };
    for (int k = 0; k < 3; k++) {
        nmp_params par;
        nmp_params_init(&par);
        par.seed = 5;
        par.threads = 2;
        nmp_assert_ok(nmp_params_set(&par, "sa_cols", 0));
        nmp_assert_ok(nmp_params_set(&par, "one_groups", 2));
        nmp_assert_ok(nmp_params_set(&par, "effort", effort[k]));
        nmp_result res;
        nmp_perm_identity(p[k], 128);
        nmp_assert_ok(nmp_solve(pb, "auto", &par, p[k], 0, &res, NULL));
        score[k] = res.score;
        assert_true(res.score > nmp_score_identity(pb));
    }
    assert_memory_equal(p[0], p[1], sizeof p[0]);
    assert_true(score[2] >= score[1]);
    nmp_problem_free(pb);
}

/* Several patterns and tiny or degenerate shapes keep the contract. */
static void contract_on_shapes(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 5);
    const int pat[][2] = { { 2, 4 }, { 1, 4 }, { 3, 4 }, { 1, 2 }, { 4, 8 } };
    const int64_t shapes[][2] = { { 1, 8 }, { 3, 40 }, { 40, 32 }, { 16, 64 } };
    for (int t = 0; t < 5; t++)
        for (int s = 0; s < 4; s++) {
            const int n = pat[t][0], m = pat[t][1];
            const int64_t rows = shapes[s][0], cols = shapes[s][1];
            if (cols % m)
                continue;
            float *w = malloc((size_t)(rows * cols) * sizeof *w);
            assert_non_null(w);
            for (int64_t k = 0; k < rows * cols; k++)
                w[k] = (float)nmp_rng_below(&r, 4); /* ties */
            nmp_problem_desc d = { 0 };
            d.weights = nmp_matrix_view(w, rows, cols);
            d.nm.n = n;
            d.nm.m = m;
            nmp_problem *pb = NULL;
            nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
            free(w);
            int32_t perm[64];
            nmp_params par;
            nmp_params_init(&par);
            par.threads = 2;
            nmp_assert_ok(nmp_params_set(&par, "effort", 0.02));
            nmp_assert_ok(nmp_params_set(&par, "exact_cols", 0)); /* bnp: proves_with_bnp */
            nmp_result res;
            nmp_assert_ok(nmp_solve(pb, "auto", &par, perm, 1, &res, NULL));
            nmp_test_check_solution(pb, perm, &res, 1e-9 * (1 + res.score));
            assert_true(res.bound >= res.score);
            nmp_problem_free(pb);
        }
}

static void time_limit_and_interrupt(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(128, 256, 2, 4, 0, 9);
    int32_t perm[256];
    nmp_params par;
    nmp_params_init(&par);
    par.threads = 2;
    par.time_limit = 0.3;
    nmp_result res;
    nmp_assert_ok(nmp_solve(pb, "auto", &par, perm, 1, &res, NULL));
    assert_true(res.score > res.start_score);
    assert_true(nmp_perm_is_valid(perm, 256));
    /* interrupted at the first report: every thread stops */
    int calls = 0;
    nmp_params_init(&par);
    par.threads = 2;
    par.progress = nmp_test_stop_now;
    par.progress_user = &calls;
    nmp_assert_ok(nmp_params_set(&par, "effort", 100));
    nmp_assert_ok(nmp_solve(pb, "auto", &par, perm, 1, &res, NULL));
    assert_int_equal(res.status, NMP_STATUS_INTERRUPTED);
    assert_true(calls >= 1);
    assert_true(nmp_perm_is_valid(perm, 256));
    /* the one-search plan too */
    nmp_problem *big = nmp_test_problem(1024, 2048, 2, 4, 0, 10);
    int32_t *p2 = malloc(2048 * sizeof *p2);
    assert_non_null(p2);
    nmp_assert_ok(nmp_solve(big, "auto", &par, p2, 1, &res, NULL));
    assert_int_equal(res.status, NMP_STATUS_INTERRUPTED);
    assert_true(nmp_perm_is_valid(p2, 2048));
    nmp_params_init(&par);
    par.time_limit = 0.2;
    nmp_assert_ok(nmp_solve(big, "auto", &par, p2, 1, &res, NULL));
    assert_int_equal(res.status, NMP_STATUS_TIME_LIMIT);
    assert_true(res.score >= res.start_score);
    assert_true(nmp_perm_is_valid(p2, 2048));
    free(p2);
    nmp_problem_free(big);
    nmp_problem_free(pb);
}

static void out_of_memory(void **state)
{
    (void)state;
    for (int small = 0; small < 2; small++) {
        nmp_problem *pb = nmp_test_problem(16, small ? 16 : 40, 2, 4, 0, 8); /* 40: bnp too */
        int32_t perm[64];
        nmp_result res;
        nmp_params par;
        nmp_params_init(&par);
        par.threads = 2;
        nmp_assert_ok(nmp_params_set(&par, "effort", 0.01));
        nmp_err e = NMP_ERR_NOMEM;
        for (int64_t k = 0; e == NMP_ERR_NOMEM && k < 500; k++) {
            nmp_alloc_fail_after(k);
            e = nmp_solve(pb, "auto", &par, perm, 1, &res, NULL);
            nmp_alloc_fail_after(-1);
        }
        nmp_assert_ok(e);
        nmp_problem_free(pb);
    }
}

/* A problem whose row bound is reachable: in every row the first half of the columns beats the
 * second half, so any perm with n of the first half in each group keeps the row bound; the
 * identity (groups of one half) does not. */
static nmp_problem *reachable_problem(int64_t rows, int64_t cols, uint64_t seed)
{
    float *a = nmp_test_matrix(rows, cols, 0, seed);
    for (int64_t j = 0; j < rows; j++)
        for (int64_t i = 0; i < cols / 2; i++)
            a[j * cols + i] += 10.0f;
    nmp_problem_desc d = { 0 };
    d.weights = nmp_matrix_view(a, rows, cols);
    d.nm.n = 2;
    d.nm.m = 4;
    d.objective = NMP_OBJ_ABS;
    nmp_problem *pb = NULL;
    nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
    free(a);
    return pb;
}

/* A score at the row bound is proven optimal: auto says so and stops there (with a budget that
 * would otherwise take hours), in the anneal, ils and one-search plans, and its bound is the
 * score; the same seed still gives the same perm. */
static void optimal_at_row_bound(void **state)
{
    (void)state;
    const int64_t shapes[3] = { 64, 400, 1200 };
    for (int k = 0; k < 3; k++) {
        const int64_t cols = shapes[k];
        nmp_problem *pb = reachable_problem(5, cols, 50 + (uint64_t)k);
        int32_t *a = malloc((size_t)cols * sizeof *a), *b = malloc((size_t)cols * sizeof *b);
        assert_non_null(a);
        assert_non_null(b);
        nmp_params par;
        nmp_params_init(&par);
        par.seed = 5;
        par.threads = 2;
        if (k > 0)
            nmp_assert_ok(nmp_params_set(&par, "effort", 1000));
        nmp_result ra, rb;
        nmp_assert_ok(nmp_solve(pb, "auto", &par, a, 1, &ra, NULL));
        assert_true(ra.start_score < nmp_score_row_bound(pb) - 1.0);
        assert_int_equal(ra.status, NMP_STATUS_OPTIMAL);
        nmp_assert_close(ra.score, nmp_score_row_bound(pb), 1e-6 * ra.score);
        assert_true(ra.bound >= ra.score);
        nmp_assert_close(ra.bound, ra.score, 1e-9 * ra.score);
        nmp_assert_close(ra.score, nmp_test_score(pb, a), 1e-9 * ra.score);
        nmp_assert_ok(nmp_solve(pb, "auto", &par, b, 1, &rb, NULL));
        assert_memory_equal(a, b, (size_t)cols * sizeof *a);
        assert_true(ra.iterations == rb.iterations);
        free(a);
        free(b);
        nmp_problem_free(pb);
    }
}

/* Up to exact_cols columns auto hands its answer to bnp (fixed nodes): status OPTIMAL with bnp's
 * own optimum and a bound equal to the score, the same perm twice; exact_cols=0 leaves the
 * answer unproven. GLPK builds only (no bnp otherwise: the answer stays feasible). */
static void proves_with_bnp(void **state)
{
    (void)state;
    const bool glpk = nmp_solver_find("bnp") != NULL;
    for (uint64_t seed = 1; seed <= 2; seed++) {
        const int64_t cols = 24 + 8 * (int64_t)seed, rows = seed == 2 ? 64 : 40;
        nmp_problem *pb = nmp_test_problem(rows, cols, 2, 4, (int)seed % 2, 900 + seed);
        int32_t a[48], b[48], o[48];
        nmp_params par;
        nmp_params_init(&par);
        par.seed = seed;
        nmp_assert_ok(nmp_params_set(&par, "effort", 0.2));
        nmp_result ra, rb, ro;
        nmp_assert_ok(nmp_solve(pb, "auto", &par, a, 1, &ra, NULL));
        nmp_assert_ok(nmp_solve(pb, "auto", &par, b, 1, &rb, NULL));
        assert_memory_equal(a, b, (size_t)cols * sizeof *a);
        nmp_assert_close(ra.score, nmp_test_score(pb, a), 1e-9 * ra.score);
        if (glpk) {
            nmp_params bp;
            nmp_params_init(&bp);
            nmp_assert_ok(nmp_params_set(&bp, "heur_time", 0));
            nmp_assert_ok(nmp_solve(pb, "bnp", &bp, o, 1, &ro, NULL));
            assert_int_equal(ro.status, NMP_STATUS_OPTIMAL);
            assert_int_equal(ra.status, NMP_STATUS_OPTIMAL);
            nmp_assert_close(ra.score, ro.score, 1e-7 * ro.score);
            nmp_assert_close(ra.bound, ra.score, 1e-9 * ra.score);
            assert_true(ra.nodes >= 1);
        }
        nmp_assert_ok(nmp_params_set(&par, "exact_cols", 0));
        nmp_assert_ok(nmp_solve(pb, "auto", &par, b, 1, &rb, NULL));
        assert_true(rb.status == NMP_STATUS_FEASIBLE ||
                    nmp_at_row_bound(pb, rb.score)); /* only the row bound proves it */
        assert_int_equal(rb.nodes, 0);
        nmp_problem_free(pb);
    }
}

/* With a time limit of at least lp_time, up to lp_cols columns: the searches' fixed work, then
 * bnp until the limit. The answer is at least the fixed-work one, and on 48 columns bnp proves
 * it optimal (equal to bnp's own proof) long before the limit; below lp_time, or above lp_cols,
 * the searches fill the limit and no node is solved. */
static void lp_stage(void **state)
{
    (void)state;
    if (!nmp_solver_find("bnp"))
        skip();
    nmp_problem *pb = nmp_test_problem(64, 48, 2, 4, 0, 77);
    int32_t a[48], b[48], o[48];
    nmp_params par;
    nmp_params_init(&par);
    par.seed = 3;
    par.threads = 1;
    nmp_assert_ok(nmp_params_set(&par, "exact_cols", 0)); /* the proof must come from lp */
    nmp_result ra, rb, ro;
    nmp_assert_ok(nmp_solve(pb, "auto", &par, a, 1, &ra, NULL));
    assert_int_equal(ra.nodes, 0);
    par.time_limit = 60;
    nmp_assert_ok(nmp_solve(pb, "auto", &par, b, 1, &rb, NULL));
    assert_int_equal(rb.status, NMP_STATUS_OPTIMAL);
    assert_true(rb.nodes >= 1);
    assert_true(rb.score >= ra.score);
    nmp_assert_close(rb.bound, rb.score, 1e-9 * rb.score);
    nmp_assert_close(rb.score, nmp_test_score(pb, b), 1e-9 * rb.score);
    nmp_params bp;
    nmp_params_init(&bp);
    nmp_assert_ok(nmp_params_set(&bp, "heur_time", 0));
    nmp_assert_ok(nmp_solve(pb, "bnp", &bp, o, 1, &ro, NULL));
    assert_int_equal(ro.status, NMP_STATUS_OPTIMAL);
    nmp_assert_close(rb.score, ro.score, 1e-7 * ro.score);
    /* a limit below lp_time, and more columns than lp_cols: the searches alone */
    par.time_limit = 0.3;
    nmp_assert_ok(nmp_params_set(&par, "lp_time", 0.5));
    nmp_assert_ok(nmp_solve(pb, "auto", &par, b, 1, &rb, NULL));
    assert_int_equal(rb.nodes, 0);
    assert_int_equal(rb.status, NMP_STATUS_TIME_LIMIT);
    nmp_assert_ok(nmp_params_set(&par, "lp_time", 0.1));
    nmp_assert_ok(nmp_params_set(&par, "lp_cols", 44));
    nmp_assert_ok(nmp_solve(pb, "auto", &par, b, 1, &rb, NULL));
    assert_int_equal(rb.nodes, 0);
    assert_int_equal(rb.status, NMP_STATUS_TIME_LIMIT);
    nmp_problem_free(pb);
}

/* paced=0: under a time limit that does not bind, the same answer as the fixed work without
 * one (bnp's and colgen's first incumbent); paced (the default) fills the limit instead. */
static void unpaced_limit(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(64, 96, 2, 4, 0, 21);
    int32_t a[96], b[96];
    nmp_params par;
    nmp_params_init(&par);
    par.seed = 5;
    par.threads = 1;
    nmp_assert_ok(nmp_params_set(&par, "lp_cols", 0));
    nmp_result ra, rb;
    nmp_assert_ok(nmp_solve(pb, "auto", &par, a, 1, &ra, NULL));
    par.time_limit = 100;
    nmp_assert_ok(nmp_params_set(&par, "paced", 0));
    nmp_assert_ok(nmp_solve(pb, "auto", &par, b, 1, &rb, NULL));
    assert_memory_equal(a, b, sizeof a);
    nmp_assert_close(ra.score, rb.score, 0);
    assert_int_equal(ra.iterations, rb.iterations);
    nmp_problem_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(listed_first),
        cmocka_unit_test(exact_when_small),
        cmocka_unit_test(heuristics_reach_dp),
        cmocka_unit_test(reproducible),
        cmocka_unit_test(one_plan_budget),
        cmocka_unit_test(unpaced_limit),
        cmocka_unit_test(contract_on_shapes),
        cmocka_unit_test(time_limit_and_interrupt),
        cmocka_unit_test(out_of_memory),
        cmocka_unit_test(optimal_at_row_bound),
        cmocka_unit_test(proves_with_bnp),
        cmocka_unit_test(lp_stage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

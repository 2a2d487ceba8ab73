/* test_nmp_anneal.c: simulated annealing: contract, local optimality of the end by brute force,
 * optima of small instances against dp, seeds, parameters, time limit, interruption, out of
 * memory, and the internal API (runs, tempering, polish) */
#include "nmp_test.h"

#include "nmp_solvers.h"

static nmp_problem *random_problem(nmp_rng *r, int n, int m, int kind, int64_t rows, int64_t cols)
{
    float *w = malloc((size_t)(rows * cols) * sizeof *w);
    assert_non_null(w);
    for (int64_t k = 0; k < rows * cols; k++)
        w[k] = kind == 0 ? (float)nmp_rng_normal(r)
             : kind == 1 ? (float)nmp_rng_uniform(r)
                         : (float)nmp_rng_below(r, 3); /* ties */
    nmp_problem_desc d = { 0 };
    d.weights = nmp_matrix_view(w, rows, cols);
    d.nm.n = n;
    d.nm.m = m;
    nmp_problem *pb = NULL;
    nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
    free(w);
    return pb;
}

/* Random instances over several patterns, value kinds and starts: valid, the recomputed score,
 * never below the start, a 2-swap local optimum (the final descent). */
static void contract_and_local_optimum(void **state)
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
            nmp_problem *pb = random_problem(&r, n, m, kind, rows, cols);
            for (int from_random = 0; from_random < 2; from_random++) {
                int32_t perm[128], start[128];
                if (from_random)
                    nmp_perm_random(start, cols, &r);
                else
                    nmp_perm_identity(start, cols);
                memcpy(perm, start, (size_t)cols * sizeof *perm);
                nmp_params par;
                nmp_params_init(&par);
                par.seed = (uint64_t)t;
                nmp_assert_ok(nmp_params_set(&par, "sweeps", 300));
                nmp_result res;
                nmp_assert_ok(nmp_solve(pb, "anneal", &par, perm, 0, &res, NULL));
                assert_true(nmp_perm_is_valid(perm, cols));
                const double kept = nmp_test_score(pb, perm);
                nmp_assert_close(res.score, kept, 1e-9 * (1 + kept));
                nmp_assert_close(res.start_score, nmp_test_score(pb, start), 1e-9 * (1 + kept));
                assert_true(res.score >= res.start_score);
                assert_int_equal(res.status, NMP_STATUS_FEASIBLE);
                const double gain = nmp_test_best_swap_gain(pb, perm);
                if (!(gain <= 1e-5 * (1 + kept))) {
                    print_error("%d:%d kind %d %lldx%lld: a swap still gains %g\n", n, m, kind,
                                (long long)rows, (long long)cols, gain);
                    fail();
                }
            }
            nmp_problem_free(pb);
        }
}

/* Instances dp solves in a blink: annealing with its defaults finds their optimum. */
static void small_instances_reach_dp(void **state)
{
    (void)state;
    int hits = 0, total = 0;
    for (int kind = 0; kind < 2; kind++)
        for (uint64_t seed = 1; seed <= 6; seed++) {
            const int64_t cols = seed % 2 ? 16 : 20, rows = seed % 3 ? 32 : 128;
            nmp_problem *pb = nmp_test_problem(rows, cols, 2, 4, kind, seed);
            int32_t opt[20], perm[20];
            nmp_result rd, ra;
            nmp_assert_ok(nmp_solve(pb, "dp", NULL, opt, 1, &rd, NULL));
            assert_int_equal(rd.status, NMP_STATUS_OPTIMAL);
            nmp_params par;
            nmp_params_init(&par);
            par.seed = seed;
            nmp_assert_ok(nmp_solve(pb, "anneal", &par, perm, 1, &ra, NULL));
            assert_true(ra.score <= rd.score + 1e-9 * rd.score);
            hits += ra.score >= rd.score - 1e-6 * rd.score;
            total++;
            nmp_problem_free(pb);
        }
    if (hits < total) {
        print_error("anneal found the optimum of %d of %d small instances\n", hits, total);
        fail();
    }
}

static void seeds_and_parameters(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(64, 128, 2, 4, 0, 3);
    int32_t a[128], b[128];
    nmp_params par;
    nmp_params_init(&par);
    par.seed = 5;
    nmp_assert_ok(nmp_params_set(&par, "sweeps", 500));
    nmp_result ra, rb;
    nmp_assert_ok(nmp_solve(pb, "anneal", &par, a, 1, &ra, NULL));
    nmp_assert_ok(nmp_solve(pb, "anneal", &par, b, 1, &rb, NULL));
    assert_memory_equal(a, b, sizeof a);
    assert_true(ra.score > nmp_score_identity(pb));
    assert_true(ra.iterations > 0);
    /* every documented knob runs and keeps the contract */
    const char *names[] = { "t0", "tfinal", "steps", "reheats", "reheat", "select", "polish",
                            "accept0" };
    const double values[] = { 0.5, 0.01, 0.25, 3, 0.5, 1, 0, 0.5 };
    for (int k = 0; k < 8; k++) {
        nmp_params q = par;
        nmp_assert_ok(nmp_params_set(&q, names[k], values[k]));
        nmp_assert_ok(nmp_params_check(&q, &nmp_anneal_ops, NULL));
        nmp_assert_ok(nmp_solve(pb, "anneal", &q, b, 1, &rb, NULL));
        assert_true(nmp_perm_is_valid(b, 128));
        nmp_assert_close(rb.score, nmp_test_score(pb, b), 1e-9 * rb.score);
        assert_true(rb.score > nmp_score_identity(pb));
    }
    nmp_assert_ok(nmp_params_set(&par, "select", 2)); /* out of range */
    assert_int_equal(nmp_params_check(&par, &nmp_anneal_ops, NULL), NMP_ERR_ARG);
    /* an optimal start is kept: never worse */
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "sweeps", 50));
    memcpy(b, a, sizeof a);
    nmp_assert_ok(nmp_solve(pb, "anneal", &par, b, 0, &rb, NULL));
    assert_true(rb.score >= ra.score - 1e-9 * ra.score);
    nmp_problem_free(pb);
}

static int count_calls(const nmp_progress *p, void *user)
{
    assert_true(p->best >= 0);
    assert_non_null(p->phase);
    ++*(int *)user;
    return 0;
}

static void time_limit_and_interrupt(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(256, 512, 2, 4, 0, 4);
    int32_t perm[512];
    nmp_params par;
    nmp_params_init(&par);
    /* paced by the clock: uses about the limit, ends by its own plan */
    par.time_limit = 0.3;
    int calls = 0;
    par.progress = count_calls;
    par.progress_user = &calls;
    nmp_result res;
    nmp_assert_ok(nmp_solve(pb, "anneal", &par, perm, 1, &res, NULL));
    assert_true(calls >= 1);
    assert_true(res.iterations > 0);
    assert_true(res.score > res.start_score);
    assert_true(res.status == NMP_STATUS_FEASIBLE || res.status == NMP_STATUS_TIME_LIMIT);
    /* a fixed number of sweeps far beyond the limit: stopped by it */
    nmp_assert_ok(nmp_params_set(&par, "sweeps", 1e6));
    par.time_limit = 0.1;
    nmp_assert_ok(nmp_solve(pb, "anneal", &par, perm, 1, &res, NULL));
    assert_int_equal(res.status, NMP_STATUS_TIME_LIMIT);
    assert_true(res.score >= res.start_score);
    assert_true(nmp_perm_is_valid(perm, 512));
    /* a limit that has passed before the first move stops the run at its first look at the
     * clock inside a level (every 2^20 / rows = 4096 steps at 256 rows), not at the end of the
     * level (steps * cols = 512,000 steps, at a temperature that accepts most of them) */
    nmp_assert_ok(nmp_params_set(&par, "steps", 1000));
    nmp_assert_ok(nmp_params_set(&par, "accept0", 0.9));
    par.time_limit = 1e-9;
    par.progress = NULL;
    nmp_assert_ok(nmp_solve(pb, "anneal", &par, perm, 1, &res, NULL));
    assert_int_equal(res.status, NMP_STATUS_TIME_LIMIT);
    assert_true(res.iterations < 4096);
    assert_true(res.score >= res.start_score);
    par.progress = count_calls;
    /* interrupted at the first report */
    par.time_limit = 0;
    calls = 0;
    par.progress = nmp_test_stop_now;
    nmp_assert_ok(nmp_solve(pb, "anneal", &par, perm, 1, &res, NULL));
    assert_int_equal(res.status, NMP_STATUS_INTERRUPTED);
    assert_int_equal(calls, 1);
    assert_true(nmp_perm_is_valid(perm, 512));
    nmp_problem_free(pb);
}

static void out_of_memory(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(16, 32, 2, 4, 0, 8);
    int32_t perm[32];
    nmp_result res;
    nmp_params par;
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "sweeps", 10));
    nmp_err e = NMP_ERR_NOMEM;
    for (int64_t k = 0; e == NMP_ERR_NOMEM && k < 100; k++) {
        nmp_alloc_fail_after(k);
        e = nmp_solve(pb, "anneal", &par, perm, 1, &res, NULL);
        nmp_alloc_fail_after(-1);
    }
    nmp_assert_ok(e);
    nmp_anneal *an = NULL;
    nmp_alloc_fail_after(1);
    assert_int_equal(nmp_anneal_create(pb, NULL, &an), NMP_ERR_NOMEM);
    nmp_alloc_fail_after(-1);
    assert_null(an);
    nmp_anneal_free(NULL);
    nmp_problem_free(pb);
}

/* The internal API auto uses: runs by moves, tempering, forced polish. */
static void internal_api(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(32, 64, 2, 4, 1, 6);
    nmp_eval *ev[4] = { NULL };
    for (int i = 0; i < 4; i++)
        nmp_assert_ok(nmp_eval_create(pb, NULL, &ev[i]));
    nmp_anneal *an = NULL;
    nmp_assert_ok(nmp_anneal_create(pb, NULL, &an));
    assert_true(nmp_anneal_default_moves(an) >= 400 * 64);
    nmp_rng r;
    nmp_rng_seed(&r, 1);
    nmp_clock clk;
    nmp_clock_start(&clk, NULL);
    const double start = nmp_eval_score(ev[0]);
    assert_true(nmp_anneal_run(an, ev[0], &r, &clk, 20000, 0));
    const double after = nmp_eval_score(ev[0]);
    assert_true(after >= start);
    nmp_assert_close(after, nmp_test_score(pb, nmp_eval_perm(ev[0])), 1e-6 * after);
    assert_true(nmp_anneal_polish(an, ev[0], &clk, true));
    assert_true(nmp_test_best_swap_gain(pb, nmp_eval_perm(ev[0])) <= 1e-5 * after);
    /* tempering from the identity on 4 replicas */
    nmp_eval_reset(ev[0], NULL);
    assert_true(nmp_anneal_tempering(an, ev, 4, &r, &clk, 40000, 0, 0.001, 0.1));
    const double pt = nmp_eval_score(ev[0]);
    assert_true(pt > start);
    nmp_assert_close(pt, nmp_test_score(pb, nmp_eval_perm(ev[0])), 1e-6 * pt);
    /* paced by the clock */
    nmp_eval_reset(ev[0], NULL);
    const int64_t moves = nmp_anneal_moves(an);
    assert_true(nmp_anneal_run(an, ev[0], &r, &clk, 0, nmp_clock_elapsed(&clk) + 0.05));
    assert_true(nmp_anneal_moves(an) > moves);
    assert_true(nmp_eval_score(ev[0]) >= start);
    nmp_assert_close(nmp_eval_score(ev[0]), nmp_test_score(pb, nmp_eval_perm(ev[0])),
                     1e-6 * nmp_eval_score(ev[0]));
    nmp_anneal_free(an);
    for (int i = 0; i < 4; i++)
        nmp_eval_free(ev[i]);
    nmp_problem_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(contract_and_local_optimum),
        cmocka_unit_test(small_instances_reach_dp),
        cmocka_unit_test(seeds_and_parameters),
        cmocka_unit_test(time_limit_and_interrupt),
        cmocka_unit_test(out_of_memory),
        cmocka_unit_test(internal_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

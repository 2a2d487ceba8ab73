/* test_nmp_osg.c: optimize stripe groups: contract, converged state, apex's reference numbers,
 * exactness on one window, seeds and threads, escapes, limits, time limit and interruption */
#include "nmp_test.h"

#include "nmp_solvers.h"

/* Solves from perm (a start) and checks the driver's contract. */
static nmp_result solve(const nmp_problem *pb, const char *solver, const nmp_params *par,
                        int32_t *perm)
{
    nmp_result res;
    nmp_msg msg = { { 0 } };
    nmp_assert_ok(nmp_solve(pb, solver, par, perm, 0, &res, &msg));
    nmp_test_check_solution(pb, perm, &res, 1e-9 * res.score);
    return res;
}

/* The largest gain of any window of s stripes, by the window solver. */
static double best_window_gain(const nmp_problem *pb, const int32_t *perm, int s)
{
    const int m = nmp_problem_pattern(pb).m;
    const int64_t groups = nmp_problem_groups(pb);
    nmp_window *w = NULL;
    nmp_assert_ok(nmp_window_create(pb, s, &w, NULL));
    int32_t in[3 * NMP_MAX_M];
    double best = 0;
    for (int64_t a = 0; a < groups; a++)
        for (int64_t b = a + 1; b < groups; b++)
            for (int64_t c = s == 3 ? b + 1 : groups - 1; c < groups; c++) {
                memcpy(in, perm + a * m, (size_t)m * sizeof *in);
                memcpy(in + m, perm + b * m, (size_t)m * sizeof *in);
                if (s == 3)
                    memcpy(in + 2 * m, perm + c * m, (size_t)m * sizeof *in);
                double cur;
                const double v = nmp_window_solve(w, in, s, NULL, &cur);
                best = NMP_MAX(best, (v - cur) / cur);
            }
    nmp_window_free(w);
    return best;
}

static void contract_random(void **state)
{
    (void)state;
    const struct {
        int rows, cols, n, m, kind;
    } cases[] = {
        { 16, 32, 2, 4, 0 }, { 33, 48, 2, 4, 1 }, { 20, 24, 1, 4, 0 }, { 9, 24, 3, 4, 1 },
        { 12, 32, 2, 8, 0 }, { 7, 12, 1, 2, 0 }, { 1, 16, 2, 4, 0 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int s = 2; s <= 3; s++) {
            nmp_problem *pb = nmp_test_problem(cases[c].rows, cases[c].cols, cases[c].n,
                                               cases[c].m, cases[c].kind, 100 + c);
            nmp_params par;
            nmp_params_init(&par);
            par.seed = c;
            nmp_assert_ok(nmp_params_set(&par, "stripes", s));
            nmp_assert_ok(nmp_params_set(&par, "escapes", cases[c].m == 8 ? 3 : 20));
            int32_t perm[64];
            nmp_rng r;
            nmp_rng_seed(&r, c);
            nmp_perm_random(perm, cases[c].cols, &r);
            if (cases[c].m == 8 && s == 3) { /* 24 columns in groups of 8: too many states */
                nmp_result res;
                nmp_msg msg = { { 0 } };
                assert_int_equal(nmp_solve(pb, "osg", &par, perm, 0, &res, &msg),
                                 NMP_ERR_UNSUPPORTED);
                assert_true(strlen(msg.text) > 0);
            } else {
                const nmp_result res = solve(pb, "osg", &par, perm);
                assert_true(res.status == NMP_STATUS_FEASIBLE ||
                            res.status == NMP_STATUS_OPTIMAL);
            }
            nmp_problem_free(pb);
        }
}

/* Escapes off, the result is a fixed point: no window of 2 (or 3) stripes improves. */
static void converged_has_no_improving_window(void **state)
{
    (void)state;
    for (int s = 2; s <= 3; s++)
        for (int inst = 0; inst < 3; inst++) {
            nmp_problem *pb = nmp_test_problem(40, 48, 2, 4, inst % 2, 200 + inst);
            nmp_params par;
            nmp_params_init(&par);
            nmp_assert_ok(nmp_params_set(&par, "stripes", s));
            nmp_assert_ok(nmp_params_set(&par, "escapes", 0));
            int32_t perm[48];
            nmp_perm_identity(perm, 48);
            solve(pb, "osg", &par, perm);
            assert_true(best_window_gain(pb, perm, s) <= 1e-9);
            nmp_problem_free(pb);
        }
}

/* apex's matrix (np.random.seed(1); rand(128, 64)): OSG(8 columns, 0 escapes) and OSG(12, 0)
 * reproduce apex's published 2919.758 and 2921.947 (the first convergence uses no randomness). */
static void apex_reference(void **state)
{
    (void)state;
    float *a = malloc(128 * 64 * sizeof *a);
    assert_non_null(a);
    nmp_mt19937 g;
    nmp_mt19937_seed(&g, 1);
    for (int k = 0; k < 128 * 64; k++)
        a[k] = (float)nmp_mt19937_uniform(&g);
    nmp_problem_desc d = { 0 };
    d.weights = nmp_matrix_view(a, 128, 64);
    d.nm.n = 2;
    d.nm.m = 4;
    nmp_problem *pb = NULL;
    nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
    free(a);
    nmp_assert_close(nmp_score_identity(pb), 2852.376, 2e-3);
    const double expect[2] = { 2919.758, 2921.947 };
    for (int s = 2; s <= 3; s++) {
        nmp_params par;
        nmp_params_init(&par);
        nmp_assert_ok(nmp_params_set(&par, "stripes", s));
        nmp_assert_ok(nmp_params_set(&par, "escapes", 0));
        int32_t perm[64];
        nmp_result res;
        nmp_assert_ok(nmp_solve(pb, "osg", &par, perm, 1, &res, NULL));
        nmp_assert_close(res.score, expect[s - 2], 2e-3);
    }
    nmp_problem_free(pb);
}

/* One window holds every column: the result is the dp optimum, status optimal. */
static void one_window_is_exact(void **state)
{
    (void)state;
    for (int inst = 0; inst < 6; inst++) {
        const int s = 2 + inst % 2, cols = 4 * s;
        nmp_problem *pb = nmp_test_problem(30 + inst, cols, 2, 4, inst % 2, 300 + inst);
        int32_t opt[12], perm[12];
        nmp_result ro, res;
        nmp_assert_ok(nmp_solve(pb, "dp", NULL, opt, 1, &ro, NULL));
        nmp_params par;
        nmp_params_init(&par);
        nmp_assert_ok(nmp_params_set(&par, "stripes", s));
        nmp_rng r;
        nmp_rng_seed(&r, inst);
        nmp_perm_random(perm, cols, &r);
        res = solve(pb, "osg", &par, perm);
        assert_int_equal(res.status, NMP_STATUS_OPTIMAL);
        nmp_assert_close(res.score, ro.score, 1e-6 * ro.score);
        nmp_problem_free(pb);
    }
}

/* 16 columns (4 stripes): 3-stripe windows with escapes find the dp optimum on most instances. */
static void small_instances_reach_optimum(void **state)
{
    (void)state;
    int hits = 0;
    const int count = 10;
    for (int inst = 0; inst < count; inst++) {
        nmp_problem *pb = nmp_test_problem(24, 16, 2, 4, inst % 2, 400 + inst);
        int32_t opt[16], perm[16];
        nmp_result ro;
        nmp_assert_ok(nmp_solve(pb, "dp", NULL, opt, 1, &ro, NULL));
        nmp_params par;
        nmp_params_init(&par);
        par.seed = inst;
        nmp_assert_ok(nmp_params_set(&par, "stripes", 3));
        nmp_perm_identity(perm, 16);
        const nmp_result res = solve(pb, "osg", &par, perm);
        assert_true(res.score <= ro.score + 1e-6 * ro.score);
        hits += res.score >= ro.score - 1e-6 * ro.score;
        nmp_problem_free(pb);
    }
    assert_true(hits >= 8);
}

/* Same seed, same perm, whatever the thread count; escapes never lose what convergence found. */
static void seeds_threads_escapes(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(64, 128, 2, 4, 0, 5);
    int32_t a[128], b[128], c[128];
    nmp_params par;
    nmp_params_init(&par);
    par.seed = 9;
    nmp_assert_ok(nmp_params_set(&par, "escapes", 30));
    par.threads = 1;
    nmp_perm_identity(a, 128);
    const nmp_result ra = solve(pb, "osg", &par, a);
    par.threads = 2;
    nmp_perm_identity(b, 128);
    const nmp_result rb = solve(pb, "osg", &par, b);
    assert_memory_equal(a, b, sizeof a);
    assert_true(ra.score == rb.score);
    nmp_assert_ok(nmp_params_set(&par, "escapes", 0));
    nmp_perm_identity(c, 128);
    const nmp_result rc = solve(pb, "osg", &par, c);
    assert_true(ra.score >= rc.score);
    nmp_problem_free(pb);
}

/* A time limit ends the search with its status and a valid perm no worse than the start (the
 * contract, checked by solve()); one that has passed before the first look at the clock (inside
 * the listing of the C(256, 3) = 2.7 M windows of the first round) applies no move. A callback
 * that says stop interrupts the search at its first report. How soon after the limit a solver
 * returns is measured by bench/bench_limits.c (docs/benchmarks.md), not asserted here. */
static void time_limit_and_interrupt(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(512, 1024, 2, 4, 0, 6);
    int32_t *perm = malloc(1024 * sizeof *perm);
    assert_non_null(perm);
    nmp_params par;
    nmp_params_init(&par);
    par.threads = 1;
    par.time_limit = 0.05;
    nmp_assert_ok(nmp_params_set(&par, "stripes", 3));
    nmp_perm_identity(perm, 1024);
    const nmp_result res = solve(pb, "osg", &par, perm);
    assert_int_equal(res.status, NMP_STATUS_TIME_LIMIT);
    par.time_limit = 1e-9;
    nmp_perm_identity(perm, 1024);
    const nmp_result r0 = solve(pb, "osg", &par, perm);
    assert_int_equal(r0.status, NMP_STATUS_TIME_LIMIT);
    assert_int_equal(r0.iterations, 0);
    for (int i = 0; i < 1024; i++)
        assert_int_equal(perm[i], i);
    int calls = 0;
    nmp_params_init(&par);
    par.progress = nmp_test_stop_now;
    par.progress_user = &calls;
    nmp_perm_identity(perm, 1024);
    const nmp_result ri = solve(pb, "osg", &par, perm);
    assert_int_equal(ri.status, NMP_STATUS_INTERRUPTED);
    assert_int_equal(calls, 1);
    free(perm);
    nmp_problem_free(pb);
}

static void limits_and_nomem(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(1, 4 * 400, 2, 4, 0, 7); /* C(400, 3) windows */
    nmp_params par;
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "stripes", 3));
    int32_t *perm = malloc(1600 * sizeof *perm);
    assert_non_null(perm);
    nmp_result res;
    nmp_msg msg = { { 0 } };
    assert_int_equal(nmp_solve(pb, "osg", &par, perm, 1, &res, &msg), NMP_ERR_UNSUPPORTED);
    assert_true(strlen(msg.text) > 0);
    nmp_problem_free(pb);
    free(perm);

    pb = nmp_test_problem(8, 32, 2, 4, 0, 8);
    const nmp_solver_ops *ops = nmp_solver_find("osg");
    assert_non_null(ops);
    nmp_params_init(&par);
    par.threads = 2;
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
    /* one group: nothing to do, optimal */
    nmp_problem *one = nmp_test_problem(5, 4, 2, 4, 0, 9);
    int32_t p4[4] = { 3, 1, 0, 2 };
    const nmp_result r1 = solve(one, "osg", NULL, p4);
    assert_int_equal(r1.status, NMP_STATUS_OPTIMAL);
    nmp_problem_free(one);
    nmp_problem_free(pb);
}

/* One state solves twice, from the same start, to the same perm (seed and clock restart). */
static void same_state_twice(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(32, 64, 2, 4, 1, 11);
    const nmp_solver_ops *ops = nmp_solver_find("osg");
    assert_non_null(ops);
    nmp_params par;
    nmp_params_init(&par);
    par.seed = 5;
    nmp_assert_ok(nmp_params_set(&par, "escapes", 10));
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

/* The device search (--device ref: the backend's CPU reference entries, the code path a GPU
 * runs): the driver's contract on every pattern it serves; escapes off, a fixed point of the
 * exact window solver; the same perm twice; at the apex reference the same first convergence
 * as the CPU search (apex's 2919.758). */
static void device_search(void **state)
{
    (void)state;
    const struct {
        int rows, cols, n, m, kind;
    } cases[] = {
        { 40, 48, 2, 4, 0 }, { 20, 24, 1, 4, 0 }, { 9, 32, 3, 4, 1 }, { 12, 32, 2, 8, 0 },
        { 7, 12, 1, 2, 0 }, { 16, 64, 2, 4, 1 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nmp_problem *pb = nmp_test_problem(cases[c].rows, cases[c].cols, cases[c].n, cases[c].m,
                                           cases[c].kind, 300 + c);
        nmp_params par;
        nmp_params_init(&par);
        par.device = NMP_DEVICE_REF;
        par.seed = c;
        nmp_assert_ok(nmp_params_set(&par, "escapes", 0));
        int32_t perm[128], again[128];
        nmp_perm_identity(perm, cases[c].cols);
        const nmp_result res = solve(pb, "osg", &par, perm);
        assert_true(res.score > res.start_score);
        assert_true(best_window_gain(pb, perm, 2) <= 1e-6);
        if (c == 0) { /* the same perm twice, with escapes */
            nmp_assert_ok(nmp_params_set(&par, "escapes", 5));
            nmp_perm_identity(perm, cases[c].cols);
            nmp_perm_identity(again, cases[c].cols);
            solve(pb, "osg", &par, perm);
            solve(pb, "osg", &par, again);
            assert_memory_equal(perm, again, (size_t)cases[c].cols * sizeof *perm);
        }
        nmp_problem_free(pb);
    }
}

/* Who serves which device: stripes=3 and solvers without a device search refuse gpu and ref
 * with a reason, auto falls back to the CPU search; gpu without a device (or without CUDA) is
 * NMP_ERR_GPU (NMP_ERR_UNSUPPORTED) naming osg; auto with ref starts from osg's device answer,
 * so it never ends below it. */
static void device_selection(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(32, 64, 2, 4, 1, 17);
    nmp_params par;
    nmp_params_init(&par);
    nmp_result res;
    nmp_msg msg = { { 0 } };
    int32_t perm[64], cpu[64];
    nmp_perm_identity(perm, 64);
    par.device = NMP_DEVICE_REF;
    nmp_assert_ok(nmp_params_set(&par, "stripes", 3));
    assert_int_equal(nmp_solve(pb, "osg", &par, perm, 0, &res, &msg), NMP_ERR_UNSUPPORTED);
    assert_non_null(strstr(msg.text, "stripes=2"));
    par.device = NMP_DEVICE_AUTO; /* 64 columns: the CPU search, the same perm as cpu */
    solve(pb, "osg", &par, perm);
    par.device = NMP_DEVICE_CPU;
    nmp_perm_identity(cpu, 64);
    solve(pb, "osg", &par, cpu);
    assert_memory_equal(perm, cpu, sizeof cpu);

    nmp_params_init(&par);
    par.device = NMP_DEVICE_REF;
    msg.text[0] = '\0';
    assert_int_equal(nmp_solve(pb, "swap", &par, perm, 0, &res, &msg), NMP_ERR_UNSUPPORTED);
    assert_non_null(strstr(msg.text, "no device search"));
    par.device = (nmp_device)7;
    assert_int_equal(nmp_solve(pb, "osg", &par, perm, 0, &res, &msg), NMP_ERR_ARG);
    if (nmp_gpu_count() == 0) {
        par.device = NMP_DEVICE_GPU;
        msg.text[0] = '\0';
        const nmp_err e = nmp_solve(pb, "osg", &par, perm, 0, &res, &msg);
        assert_true(e == (nmp_gpu_built() ? NMP_ERR_GPU : NMP_ERR_UNSUPPORTED));
        assert_non_null(strstr(msg.text, "osg --device gpu"));
    }

    nmp_problem_free(pb); /* auto above its exact plan, on ref: osg first, then its plan */
    pb = nmp_test_problem(12, 32, 2, 4, 0, 18);
    nmp_params_init(&par);
    par.device = NMP_DEVICE_REF;
    par.seed = 3;
    nmp_params_set(&par, "effort", 0.05);
    nmp_params_set(&par, "exact_cols", 0);
    nmp_perm_identity(perm, 32);
    const nmp_result ra = solve(pb, "auto", &par, perm);
    nmp_params_init(&par);
    par.device = NMP_DEVICE_REF;
    par.seed = 3;
    nmp_perm_identity(cpu, 32);
    const nmp_result ro = solve(pb, "osg", &par, cpu);
    assert_true(ra.score >= ro.score);
    nmp_problem_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(contract_random),
        cmocka_unit_test(converged_has_no_improving_window),
        cmocka_unit_test(apex_reference),
        cmocka_unit_test(one_window_is_exact),
        cmocka_unit_test(small_instances_reach_optimum),
        cmocka_unit_test(seeds_threads_escapes),
        cmocka_unit_test(time_limit_and_interrupt),
        cmocka_unit_test(limits_and_nomem),
        cmocka_unit_test(same_state_twice),
        cmocka_unit_test(device_search),
        cmocka_unit_test(device_selection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_nmp_bnp.c: branch-and-price against the exact DP; limits, start perms, threads, bad input,
 * GLPK errors */
#include "nmp_test.h"

#include "nmp_glpk.h"

static nmp_result run(const nmp_problem *pb, const char *solver, const nmp_params *par,
                      int32_t *perm, int start_is_identity)
{
    nmp_result res;
    nmp_msg msg = { { 0 } };
    const nmp_err e = nmp_solve(pb, solver, par, perm, start_is_identity, &res, &msg);
    if (e != NMP_OK)
        print_error("%s: %s\n", nmp_err_str(e), msg.text);
    assert_int_equal(e, NMP_OK);
    return res;
}

/* bnp == dp on instances with cols <= 24 and several patterns, with and without the heuristic
 * pricing */
static void test_bnp_vs_dp(void **state)
{
    (void)state;
    const struct { int rows, cols, n, m, kind; } cases[] = {
        { 8, 8, 2, 4, 0 },   { 64, 12, 2, 4, 0 }, { 16, 16, 2, 4, 1 }, { 5, 20, 2, 4, 0 },
        { 32, 24, 2, 4, 0 }, { 64, 24, 2, 4, 1 }, { 3, 24, 2, 4, 0 },  { 24, 12, 1, 2, 0 },
        { 24, 24, 1, 4, 0 }, { 40, 16, 2, 8, 1 }, { 16, 16, 3, 8, 0 }, { 16, 18, 1, 3, 0 },
        { 20, 18, 3, 6, 1 }, { 12, 20, 1, 2, 1 },
    };
    int32_t perm[24], dperm[24];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nmp_problem *pb = nmp_test_problem(cases[c].rows, cases[c].cols, cases[c].n, cases[c].m,
                                           cases[c].kind, 500 + c);
        nmp_params par;
        nmp_params_init(&par);
        par.seed = c;
        nmp_params_set(&par, "heur_time", 0.02);
        const nmp_result d = run(pb, "dp", NULL, dperm, 1);
        const nmp_result b = run(pb, "bnp", &par, perm, 1);
        assert_int_equal(b.status, NMP_STATUS_OPTIMAL);
        nmp_assert_close(b.score, d.score, 1e-7 * d.score); /* float sums: ties differ */
        nmp_assert_close(nmp_test_score(pb, perm), b.score, 0);
        nmp_assert_close(b.bound, b.score, 0);
        /* the dive priced exactly (the default prices it by the heuristic alone) */
        nmp_params_set(&par, "dive", 2);
        const nmp_result b6 = run(pb, "bnp", &par, perm, 1);
        assert_int_equal(b6.status, NMP_STATUS_OPTIMAL);
        nmp_assert_close(b6.score, d.score, 1e-7 * d.score);
        nmp_assert_close(b6.bound, b6.score, 0);
        /* without heuristic, dive and lists: the priced tree alone proves it */
        nmp_params_set(&par, "heur_time", 0);
        nmp_params_set(&par, "dive", 0);
        nmp_params_set(&par, "enum_max", 0);
        const nmp_result b2 = run(pb, "bnp", &par, perm, 1);
        assert_int_equal(b2.status, NMP_STATUS_OPTIMAL);
        nmp_assert_close(b2.score, d.score, 1e-7 * d.score);
        /* the same with exact pricing only (hprice 0; the default prices heuristically first) */
        nmp_params_set(&par, "hprice", 0);
        const nmp_result b5 = run(pb, "bnp", &par, perm, 1);
        assert_int_equal(b5.status, NMP_STATUS_OPTIMAL);
        nmp_assert_close(b5.score, d.score, 1e-7 * d.score);
        nmp_params_set(&par, "hprice", 1);
        /* short lists: heuristic lists, their depth-first search, lists completed later */
        nmp_params_set(&par, "enum_max", 6);
        nmp_params_set(&par, "heur_cols", 4);
        nmp_params_set(&par, "lns_time", 0.02);
        const nmp_result b3 = run(pb, "bnp", &par, perm, 1);
        assert_int_equal(b3.status, NMP_STATUS_OPTIMAL);
        nmp_assert_close(b3.score, d.score, 1e-7 * d.score);
        nmp_params_set(&par, "enum_max", 30);
        nmp_params_set(&par, "heur_cols", 20);
        const nmp_result b4 = run(pb, "bnp", &par, perm, 1);
        assert_int_equal(b4.status, NMP_STATUS_OPTIMAL);
        nmp_assert_close(b4.score, d.score, 1e-7 * d.score);
        nmp_problem_free(pb);
    }
}

/* bnp pricing on the device path (the backend's CPU reference): the same optimum as dp, also
 * where Ryan-Foster rules reach the device pricing (no heuristic, no lists: the tree decides),
 * and with the reduced-cost lists */
static void test_bnp_device(void **state)
{
    (void)state;
    const struct { int rows, cols, n, m, kind; } cases[] = {
        { 64, 12, 2, 4, 0 }, { 16, 16, 2, 4, 1 }, { 32, 20, 2, 4, 0 }, { 24, 12, 1, 2, 0 },
        { 16, 18, 1, 3, 0 }, { 40, 16, 2, 8, 1 },
    };
    int32_t perm[24], dperm[24];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nmp_problem *pb = nmp_test_problem(cases[c].rows, cases[c].cols, cases[c].n, cases[c].m,
                                           cases[c].kind, 800 + c);
        nmp_params par;
        nmp_params_init(&par);
        par.seed = c;
        par.device = NMP_DEVICE_REF;
        nmp_params_set(&par, "heur_time", 0);
        nmp_params_set(&par, "dive", 0);
        nmp_params_set(&par, "enum_max", 0);
        const nmp_result d = run(pb, "dp", NULL, dperm, 1);
        const nmp_result b = run(pb, "bnp", &par, perm, 1);
        assert_int_equal(b.status, NMP_STATUS_OPTIMAL);
        nmp_assert_close(b.score, d.score, 1e-7 * d.score);
        nmp_assert_close(nmp_test_score(pb, perm), b.score, 0);
        /* with reduced-cost lists: a listing is priced exactly, never by the device round */
        nmp_params_set(&par, "enum_max", 50000);
        const nmp_result b2 = run(pb, "bnp", &par, perm, 1);
        assert_int_equal(b2.status, NMP_STATUS_OPTIMAL);
        nmp_assert_close(b2.score, d.score, 1e-7 * d.score);
        nmp_problem_free(pb);
    }
}

/* the optimum as the start: returned as is, proven */
static void test_bnp_optimal_start(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(32, 20, 2, 4, 0, 42);
    int32_t perm[20];
    const nmp_result d = run(pb, "dp", NULL, perm, 1);
    nmp_params par;
    nmp_params_init(&par);
    nmp_params_set(&par, "heur_time", 0);
    const nmp_result b = run(pb, "bnp", &par, perm, 0);
    assert_int_equal(b.status, NMP_STATUS_OPTIMAL);
    nmp_assert_close(b.score, d.score, 0);
    nmp_problem_free(pb);
}

/* node and time limits: a valid bound >= the optimum, never worse than the start */
static void test_bnp_limits(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(16, 24, 2, 4, 0, 7);
    const nmp_result d = run(pb, "dp", NULL, (int32_t[24]){ 0 }, 1);
    nmp_params par;
    nmp_params_init(&par);
    nmp_params_set(&par, "heur_time", 0);
    nmp_params_set(&par, "dive", 0);
    nmp_params_set(&par, "enum_max", 0);
    nmp_params_set(&par, "node_limit", 1);
    int32_t perm[24];
    const nmp_result b = run(pb, "bnp", &par, perm, 1);
    if (b.status != NMP_STATUS_OPTIMAL) {
        assert_int_equal(b.status, NMP_STATUS_ITER_LIMIT);
        assert_int_equal(b.nodes, 1);
    }
    assert_true(b.bound >= d.score - 1e-9 * d.score);
    assert_true(b.score <= d.score + 1e-9 * d.score);
    assert_true(b.score >= b.start_score);
    nmp_problem_free(pb);

    /* a time limit on an instance that takes longer */
    pb = nmp_test_problem(128, 64, 2, 4, 0, 1);
    int32_t big[64];
    nmp_params_init(&par);
    par.time_limit = 0.5;
    const nmp_result t = run(pb, "bnp", &par, big, 1);
    if (t.status != NMP_STATUS_OPTIMAL) {
        assert_int_equal(t.status, NMP_STATUS_TIME_LIMIT);
        assert_true(t.bound > t.score);
    }
    assert_true(t.bound >= t.score);
    assert_true(t.bound <= nmp_score_row_bound(pb));
    assert_true(t.score >= t.start_score);
    nmp_problem_free(pb);
}

/* the same tree with one or two threads: the pricing does not depend on them */
static void test_bnp_threads(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(64, 48, 2, 4, 1, 3);
    nmp_params par;
    nmp_params_init(&par);
    nmp_params_set(&par, "heur_time", 0);
    int32_t a[48], b[48];
    par.threads = 1;
    const nmp_result r1 = run(pb, "bnp", &par, a, 1);
    par.threads = 2;
    const nmp_result r2 = run(pb, "bnp", &par, b, 1);
    assert_int_equal(r1.status, NMP_STATUS_OPTIMAL);
    assert_int_equal(r2.status, NMP_STATUS_OPTIMAL);
    nmp_assert_close(r1.score, r2.score, 0);
    assert_int_equal(r1.nodes, r2.nodes);
    assert_int_equal(r1.iterations, r2.iterations);
    nmp_problem_free(pb);
}

/* Adds the groups of `count` random perms of 0..31 to the master's pool. */
static void add_random_groups(nmp_master *cg, int count, uint64_t seed)
{
    nmp_rng rng;
    nmp_rng_seed(&rng, seed);
    int32_t perm[32];
    for (int t = 0; t < count; t++) {
        for (int i = 0; i < 32; i++)
            perm[i] = i;
        for (int i = 31; i > 0; i--) {
            const int k = (int)nmp_rng_below(&rng, (uint64_t)i + 1);
            const int32_t x = perm[i];
            perm[i] = perm[k];
            perm[k] = x;
        }
        assert_int_equal(nmp_master_add_groups(cg, perm), NMP_OK);
    }
}

/* Basis snapshots (nmp_master_save_basis / load_basis): a node that starts from a saved basis
 * re-solves to the same LP; purges renumber the pool but not a snapshot's columns, and keep the
 * columns of snapshots not yet released; a snapshot whose column a purge dropped (released
 * first), or that names no variable, is refused. */
static void test_bnp_basis_snapshots(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(48, 32, 2, 4, 0, 11);
    nmp_params par;
    nmp_params_init(&par);
    const nmp_master_opts o = { 1, 0, 0, 0, 0, NULL, false };
    nmp_master *cg;
    nmp_msg msg = { { 0 } };
    assert_int_equal(nmp_master_create(pb, &o, &cg, &msg), NMP_OK);
    int32_t perm[32], inc[32], basis[32], again[32];
    for (int i = 0; i < 32; i++)
        perm[i] = i;
    double best;
    nmp_clock clk;
    nmp_clock_start(&clk, &par);
    const int old = glp_term_out(GLP_OFF);
    assert_int_equal(nmp_master_start(cg, &par, 0, 0, &clk, perm, inc, &best, &msg), NMP_OK);
    nmp_master_out root, out;
    assert_int_equal(nmp_master_solve(cg, -INFINITY, &clk, NULL, &root, &msg), NMP_OK);
    assert_int_equal(root.end, NMP_MASTER_CONVERGED);
    nmp_master_save_basis(cg, basis);
    /* a rule that breaks a column q of the root's basis: its first member together with a
     * column outside it */
    int64_t q = 0;
    while (!(nmp_master_x(cg, q) > 1e-6))
        q++;
    const int32_t *c = nmp_master_column(cg, q);
    int32_t ra = c[0], rb = 0;
    while (rb == c[0] || rb == c[1] || rb == c[2] || rb == c[3])
        rb++;
    const uint8_t rt = 1;
    /* > 4096 pool columns: the next rules purge the ones they forbid (not the basic ones) */
    add_random_groups(cg, 700, 1);
    const int64_t full = nmp_master_pool(cg);
    assert_true(full > 4096);
    assert_int_equal(nmp_master_set_rules(cg, 1, &ra, &rb, &rt, -1), NMP_OK);
    assert_true(nmp_master_pool(cg) < full); /* purged and renumbered */
    assert_int_equal(nmp_master_set_rules(cg, 0, &ra, &rb, &rt, -1), NMP_OK);
    assert_true(nmp_master_load_basis(cg, basis));
    nmp_master_save_basis(cg, again); /* the same variables, renumbered or not */
    assert_memory_equal(basis, again, sizeof basis);
    assert_int_equal(nmp_master_solve(cg, -INFINITY, &clk, NULL, &out, &msg), NMP_OK);
    nmp_assert_close(out.lp, root.lp, 1e-9 * fabs(root.lp));
    nmp_master_release_basis(cg, again);
    /* the rule again: column q leaves the basis; a purge keeps it while a snapshot names it */
    assert_int_equal(nmp_master_set_rules(cg, 1, &ra, &rb, &rt, -1), NMP_OK);
    assert_int_equal(nmp_master_solve(cg, -INFINITY, &clk, NULL, &out, &msg), NMP_OK);
    add_random_groups(cg, 1400, 2);
    int64_t before = nmp_master_pool(cg);
    assert_int_equal(nmp_master_set_rules(cg, 1, &ra, &rb, &rt, -1), NMP_OK);
    assert_true(nmp_master_pool(cg) < before);
    nmp_master_save_basis(cg, again); /* the current basis, to go back to */
    assert_true(nmp_master_load_basis(cg, basis));
    assert_true(nmp_master_load_basis(cg, again));
    nmp_master_release_basis(cg, again);
    nmp_master_release_basis(cg, basis); /* unpinned: the next purge drops q */
    add_random_groups(cg, 3000, 3);
    before = nmp_master_pool(cg);
    assert_int_equal(nmp_master_set_rules(cg, 1, &ra, &rb, &rt, -1), NMP_OK);
    assert_true(nmp_master_pool(cg) < before);
    assert_false(nmp_master_load_basis(cg, basis));
    assert_int_equal(nmp_master_set_rules(cg, 0, &ra, &rb, &rt, -1), NMP_OK);
    nmp_master_save_basis(cg, basis);
    assert_true(nmp_master_load_basis(cg, basis));
    basis[3] = -1; /* names no variable */
    assert_false(nmp_master_load_basis(cg, basis));
    basis[3] = 1 << 30;
    assert_false(nmp_master_load_basis(cg, basis));
    glp_term_out(old);
    nmp_master_free(cg);
    nmp_problem_free(pb);
}

/* The default first incumbent is auto's fixed work: two runs with the same node limit give the
 * same tree and answer, with or without a generous time limit (which only stops it). */
static void test_bnp_fixed_work(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(64, 48, 2, 4, 0, 5);
    nmp_params par;
    nmp_params_init(&par);
    nmp_params_set(&par, "node_limit", 20);
    int32_t a[48], b[48], c[48];
    const nmp_result r1 = run(pb, "bnp", &par, a, 1);
    const nmp_result r2 = run(pb, "bnp", &par, b, 1);
    par.time_limit = 1000;
    const nmp_result r3 = run(pb, "bnp", &par, c, 1);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_equal(a, c, sizeof a);
    assert_int_equal(r1.nodes, r2.nodes);
    assert_int_equal(r1.nodes, r3.nodes);
    assert_int_equal(r1.iterations, r2.iterations);
    nmp_assert_close(r1.bound, r2.bound, 0);
    nmp_assert_close(r1.bound, r3.bound, 0);
    nmp_problem_free(pb);
}

static void test_bnp_interrupt_and_bad_input(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(64, 48, 2, 4, 0, 11);
    nmp_params par;
    nmp_params_init(&par);
    par.progress = nmp_test_stop_now;
    int32_t perm[48];
    const nmp_result r = run(pb, "bnp", &par, perm, 1);
    assert_int_equal(r.status, NMP_STATUS_INTERRUPTED);
    assert_true(r.bound >= r.score);
    nmp_result res;
    nmp_msg msg = { { 0 } };
    nmp_params_init(&par);
    nmp_params_set(&par, "node_limit", 0);
    assert_int_equal(nmp_solve(pb, "bnp", &par, perm, 1, &res, &msg), NMP_ERR_ARG);
    assert_true(strlen(msg.text) > 0);
    nmp_params_init(&par);
    nmp_params_set(&par, "columns", -1);
    assert_int_equal(nmp_solve(pb, "bnp", &par, perm, 1, &res, &msg), NMP_ERR_ARG);
    perm[0] = perm[1];
    assert_int_equal(nmp_solve(pb, "bnp", NULL, perm, 0, &res, &msg), NMP_ERR_ARG);
    nmp_problem_free(pb);
}

/* A GLPK internal error at the root or deeper in the tree becomes NMP_ERR_LP, not an abort;
 * the next solve proves the optimum. */
static void test_bnp_glpk_error(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(32, 24, 2, 4, 0, 17);
    nmp_params par;
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "heur_time", 0.01));
    int32_t perm[24];
    nmp_result res;
    for (int64_t k = 0; k <= 6; k += 6) {
        nmp_msg msg = { { 0 } };
        nmp_glpk_fail_at(k);
        const nmp_err e = nmp_solve(pb, "bnp", &par, perm, 1, &res, &msg);
        nmp_glpk_fail_at(-1);
        assert_int_equal(e, NMP_ERR_LP);
        assert_non_null(strstr(msg.text, "bnp: GLPK"));
    }
    const nmp_result r = run(pb, "bnp", &par, perm, 1);
    assert_int_equal(r.status, NMP_STATUS_OPTIMAL);
    nmp_problem_free(pb);
}

static void test_bnp_nomem(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(16, 16, 2, 4, 1, 9);
    nmp_params par;
    nmp_params_init(&par);
    nmp_params_set(&par, "heur_time", 0);
    int32_t perm[16];
    nmp_result res;
    nmp_err e = NMP_ERR_NOMEM;
    int64_t k = 0;
    for (; e == NMP_ERR_NOMEM && k < 100000; k++) {
        nmp_alloc_fail_after(k);
        e = nmp_solve(pb, "bnp", &par, perm, 1, &res, NULL);
        nmp_alloc_fail_after(-1);
        assert_true(e == NMP_OK || e == NMP_ERR_NOMEM);
    }
    assert_int_equal(e, NMP_OK);
    assert_int_equal(res.status, NMP_STATUS_OPTIMAL);
    nmp_problem_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bnp_vs_dp),
        cmocka_unit_test(test_bnp_device),
        cmocka_unit_test(test_bnp_optimal_start),
        cmocka_unit_test(test_bnp_limits),
        cmocka_unit_test(test_bnp_threads),
        cmocka_unit_test(test_bnp_basis_snapshots),
        cmocka_unit_test(test_bnp_fixed_work),
        cmocka_unit_test(test_bnp_interrupt_and_bad_input),
        cmocka_unit_test(test_bnp_nomem),
        cmocka_unit_test(test_bnp_glpk_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

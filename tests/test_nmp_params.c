/* test_nmp_params.c: named solver parameters, their checks, the solver registry and nmp_solve */
#include "nmp_test.h"

static void set_and_get(void **state)
{
    (void)state;
    nmp_params p;
    memset(&p, 0xff, sizeof p);
    nmp_params_init(&p);
    assert_true(p.seed == 0);
    assert_true(p.time_limit == 0);
    assert_int_equal(p.threads, 0);
    assert_int_equal(p.count, 0);
    assert_null(p.progress);

    const nmp_param_desc descs[] = { { "alpha", 0.5, 0, 1, "a" }, { "beta", 7, 1, 100, "b" }, { 0 } };
    nmp_assert_close(nmp_param_get(&p, descs, "alpha"), 0.5, 0); /* default */
    nmp_assert_ok(nmp_params_set(&p, "alpha", 0.25));
    nmp_assert_ok(nmp_params_set(&p, "gamma", 3));
    assert_int_equal(p.count, 2);
    nmp_assert_close(nmp_param_get(&p, descs, "alpha"), 0.25, 0);
    nmp_assert_close(nmp_param_get(&p, descs, "beta"), 7, 0);
    nmp_assert_close(nmp_param_get(&p, descs, "gamma"), 3, 0); /* set, though not described */
    assert_true(isnan(nmp_param_get(&p, descs, "delta")));
    nmp_assert_close(nmp_param_get(NULL, descs, "beta"), 7, 0);
    nmp_assert_ok(nmp_params_set(&p, "alpha", 0.75)); /* replaces */
    assert_int_equal(p.count, 2);
    nmp_assert_close(nmp_param_get(&p, descs, "alpha"), 0.75, 0);

    char name[64];
    memset(name, 'n', sizeof name);
    name[31] = '\0'; /* 31 characters: fits name[32] */
    nmp_assert_ok(nmp_params_set(&p, name, 1));
    name[31] = 'n';
    name[32] = '\0'; /* 32: too long */
    assert_int_equal(nmp_params_set(&p, name, 1), NMP_ERR_ARG);
    assert_int_equal(nmp_params_set(&p, "", 1), NMP_ERR_ARG);
    assert_int_equal(nmp_params_set(&p, NULL, 1), NMP_ERR_ARG);
    assert_int_equal(p.count, 3);

    /* the table fills up at NMP_MAX_PARAMS; replacing still works then */
    for (int k = p.count; k < NMP_MAX_PARAMS; k++) {
        char nm[16];
        snprintf(nm, sizeof nm, "p%d", k);
        nmp_assert_ok(nmp_params_set(&p, nm, k));
    }
    assert_int_equal(p.count, NMP_MAX_PARAMS);
    assert_int_equal(nmp_params_set(&p, "onemore", 1), NMP_ERR_ARG);
    nmp_assert_ok(nmp_params_set(&p, "alpha", 0.125));
    nmp_assert_close(nmp_param_get(&p, descs, "alpha"), 0.125, 0);
}

static void parse(void **state)
{
    (void)state;
    nmp_params p;
    nmp_params_init(&p);
    nmp_msg msg = { { 0 } };
    nmp_assert_ok(nmp_params_parse(&p, "tries=250", &msg));
    nmp_assert_ok(nmp_params_parse(&p, "t0=-1.5e-3", &msg));
    nmp_assert_close(nmp_param_get(&p, NULL, "tries"), 250, 0);
    nmp_assert_close(nmp_param_get(&p, NULL, "t0"), -1.5e-3, 0);
    const char *bad[] = { "k", "=1", "k=abc", "k=", "k=1x", "k=nan", "k=inf", "k=1e999", "",
                          "abcdefghijklmnopqrstuvwxyz0123456789=1" };
    for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
        msg.text[0] = '\0';
        if (nmp_params_parse(&p, bad[t], &msg) != NMP_ERR_ARG) {
            print_error("'%s' was accepted\n", bad[t]);
            fail();
        }
        assert_true(msg.text[0] != '\0');
        assert_int_equal(nmp_params_parse(&p, bad[t], NULL), NMP_ERR_ARG);
    }
    assert_non_null(strstr(msg.text, "too long"));
    assert_int_equal(p.count, 2); /* nothing bad was stored */
}

static void check_against_solver(void **state)
{
    (void)state;
    const nmp_solver_ops *random = nmp_solver_find("random");
    assert_non_null(random);
    nmp_params p;
    nmp_msg msg = { { 0 } };
    nmp_params_init(&p);
    nmp_assert_ok(nmp_params_check(&p, random, &msg));
    nmp_assert_ok(nmp_params_set(&p, "tries", 5));
    nmp_assert_ok(nmp_params_check(&p, random, &msg));
    nmp_assert_ok(nmp_params_set(&p, "bogus", 1));
    assert_int_equal(nmp_params_check(&p, random, &msg), NMP_ERR_ARG);
    assert_non_null(strstr(msg.text, "bogus"));
    nmp_params_init(&p);
    nmp_assert_ok(nmp_params_set(&p, "tries", 0)); /* below lo = 1 */
    assert_int_equal(nmp_params_check(&p, random, &msg), NMP_ERR_ARG);
    assert_non_null(strstr(msg.text, "tries"));
    nmp_assert_ok(nmp_params_set(&p, "tries", 2e9)); /* above hi */
    assert_int_equal(nmp_params_check(&p, random, NULL), NMP_ERR_ARG);
    nmp_assert_ok(nmp_params_set(&p, "tries", NAN));
    assert_int_equal(nmp_params_check(&p, random, NULL), NMP_ERR_ARG);
    nmp_assert_ok(nmp_params_set(&p, "tries", 1)); /* the interval is closed */
    nmp_assert_ok(nmp_params_check(&p, random, NULL));
    nmp_assert_ok(nmp_params_set(&p, "tries", 1e9));
    nmp_assert_ok(nmp_params_check(&p, random, NULL));
    p.time_limit = -1;
    assert_int_equal(nmp_params_check(&p, random, NULL), NMP_ERR_ARG);
    p.time_limit = NAN;
    assert_int_equal(nmp_params_check(&p, random, NULL), NMP_ERR_ARG);
    p.time_limit = INFINITY;
    assert_int_equal(nmp_params_check(&p, random, NULL), NMP_ERR_ARG);
    p.time_limit = 0;
    p.threads = -1;
    assert_int_equal(nmp_params_check(&p, random, NULL), NMP_ERR_ARG);
    /* a solver without parameters refuses any */
    const nmp_solver_ops *identity = nmp_solver_find("identity");
    assert_non_null(identity);
    nmp_params_init(&p);
    nmp_assert_ok(nmp_params_check(&p, identity, NULL));
    nmp_assert_ok(nmp_params_set(&p, "tries", 5));
    assert_int_equal(nmp_params_check(&p, identity, NULL), NMP_ERR_ARG);
}

static void registry(void **state)
{
    (void)state;
    const nmp_solver_ops *const *list = nmp_solver_list();
    assert_non_null(list);
    int count = 0, seen_identity = 0, seen_random = 0, seen_swap = 0;
    for (const nmp_solver_ops *const *s = list; *s; s++, count++) {
        const nmp_solver_ops *ops = *s;
        assert_non_null(ops->name);
        assert_non_null(ops->summary);
        assert_non_null(ops->params);
        assert_non_null(ops->create);
        assert_non_null(ops->solve);
        assert_non_null(ops->destroy);
        assert_ptr_equal(nmp_solver_find(ops->name), ops);
        for (const nmp_solver_ops *const *t = list; *t != ops; t++)
            assert_true(strcmp((*t)->name, ops->name) != 0); /* names are unique */
        for (const nmp_param_desc *d = ops->params; d->name; d++) {
            assert_true(d->lo <= d->def && d->def <= d->hi);
            assert_non_null(d->help);
        }
        seen_identity += strcmp(ops->name, "identity") == 0;
        seen_random += strcmp(ops->name, "random") == 0;
        seen_swap += strcmp(ops->name, "swap") == 0;
    }
    assert_true(count >= 3);
    assert_int_equal(seen_identity + seen_random + seen_swap, 3);
    assert_null(nmp_solver_find("no-such-solver"));
    assert_null(nmp_solver_find(""));
    assert_null(nmp_solver_find(NULL));
    assert_null(nmp_solver_find("SWAP"));
}

static void solve_errors(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(8, 16, 2, 4, 0, 1);
    int32_t perm[16], before[16];
    nmp_result res;
    nmp_msg msg = { { 0 } };
    nmp_perm_identity(perm, 16);
    assert_int_equal(nmp_solve(pb, "no-such-solver", NULL, perm, 0, &res, &msg), NMP_ERR_ARG);
    assert_non_null(strstr(msg.text, "no-such-solver"));
    assert_int_equal(nmp_solve(pb, NULL, NULL, perm, 0, &res, NULL), NMP_ERR_ARG);

    perm[5] = perm[6]; /* duplicate */
    memcpy(before, perm, sizeof perm);
    msg.text[0] = '\0';
    assert_int_equal(nmp_solve(pb, "swap", NULL, perm, 0, &res, &msg), NMP_ERR_ARG);
    assert_true(msg.text[0] != '\0');
    assert_memory_equal(perm, before, sizeof perm); /* untouched */
    perm[5] = 99; /* out of range */
    assert_int_equal(nmp_solve(pb, "identity", NULL, perm, 0, &res, NULL), NMP_ERR_ARG);
    perm[5] = -1;
    assert_int_equal(nmp_solve(pb, "identity", NULL, perm, 0, &res, NULL), NMP_ERR_ARG);
    /* but start_is_identity ignores whatever perm held */
    nmp_assert_ok(nmp_solve(pb, "identity", NULL, perm, 1, &res, NULL));
    for (int k = 0; k < 16; k++)
        assert_int_equal(perm[k], k);

    nmp_params p;
    nmp_params_init(&p);
    nmp_assert_ok(nmp_params_set(&p, "tries", 0));
    msg.text[0] = '\0';
    assert_int_equal(nmp_solve(pb, "random", &p, perm, 1, &res, &msg), NMP_ERR_ARG);
    assert_non_null(strstr(msg.text, "tries"));
    nmp_params_init(&p);
    nmp_assert_ok(nmp_params_set(&p, "tries", 5));
    assert_int_equal(nmp_solve(pb, "swap", &p, perm, 1, &res, NULL), NMP_ERR_ARG);
    nmp_problem_free(pb);
}

/* The driver's contract, for every solver in the build on small instances: a valid perm, the
 * recomputed score, never below the start, start_score of the start, row bound >= bound >= score. */
static void solve_contract_every_solver(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 2);
    const int pat[][2] = { { 2, 4 }, { 1, 4 }, { 4, 8 } };
    for (int t = 0; t < 3; t++) {
        const int n = pat[t][0], m = pat[t][1];
        const int64_t cols = m == 8 ? 16 : 12;
        nmp_problem *pb = nmp_test_problem(10, cols, n, m, t % 2, 10 + (uint64_t)t);
        for (const nmp_solver_ops *const *s = nmp_solver_list(); *s; s++)
            for (int from_random = 0; from_random < 2; from_random++) {
                int32_t perm[16], start[16];
                nmp_params p;
                nmp_params_init(&p);
                p.seed = 3;
                p.time_limit = 5;
                nmp_perm_random(start, cols, &r);
                memcpy(perm, start, sizeof perm);
                nmp_result res;
                nmp_msg msg = { { 0 } };
                memset(&res, 0xff, sizeof res);
                const nmp_err e = nmp_solve(pb, (*s)->name, &p, perm, !from_random, &res, &msg);
                if (e == NMP_ERR_UNSUPPORTED)
                    continue; /* a solver may refuse an instance, with a reason */
                if (e != NMP_OK) {
                    print_error("solver %s: %s (%s)\n", (*s)->name, nmp_err_str(e), msg.text);
                    fail();
                }
                if (!from_random)
                    nmp_perm_identity(start, cols);
                assert_true(nmp_perm_is_valid(perm, cols));
                double kept, start_kept;
                nmp_assert_ok(nmp_score(pb, perm, &kept));
                nmp_assert_ok(nmp_score(pb, start, &start_kept));
                nmp_assert_close(res.score, kept, 1e-9 * kept);
                nmp_assert_close(res.start_score, start_kept, 1e-9 * kept);
                assert_true(res.score >= res.start_score);
                assert_true(res.bound >= res.score);
                assert_true(res.bound <= nmp_score_row_bound(pb));
                assert_true(res.seconds >= 0);
                assert_true(res.iterations >= 0);
                assert_true(res.status <= NMP_STATUS_INTERRUPTED);
                if (res.status == NMP_STATUS_OPTIMAL)
                    nmp_assert_close(res.bound, res.score, 0);
            }
        nmp_problem_free(pb);
    }
}

/* Out of memory anywhere in nmp_solve is NMP_ERR_NOMEM (not a bad start or an internal error),
 * and the caller's perm is left a valid permutation. */
static void solve_allocation_failures(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(8, 16, 2, 4, 0, 3);
    const char *names[] = { "identity", "random", "swap" };
    nmp_rng r;
    nmp_rng_seed(&r, 4);
    for (int t = 0; t < 3; t++)
        for (int from_random = 0; from_random < 2; from_random++) {
            nmp_params p;
            nmp_params_init(&p);
            int32_t start[16], perm[16];
            nmp_perm_random(start, 16, &r);
            nmp_err e = NMP_ERR_NOMEM;
            nmp_result res;
            int64_t k = 0;
            for (; e != NMP_OK; k++) {
                assert_true(k < 100);
                memcpy(perm, start, sizeof perm);
                nmp_msg msg = { { 0 } };
                nmp_alloc_fail_after(k);
                e = nmp_solve(pb, names[t], &p, perm, !from_random, &res, &msg);
                nmp_alloc_fail_after(-1);
                if (e != NMP_OK && e != NMP_ERR_NOMEM) {
                    print_error("%s, allocation %lld fails: %s (%s)\n", names[t], (long long)k,
                                nmp_err_str(e), msg.text);
                    fail();
                }
                assert_true(nmp_perm_is_valid(perm, 16));
            }
            assert_true(k > 2);
            double kept;
            nmp_assert_ok(nmp_score(pb, perm, &kept));
            nmp_assert_close(res.score, kept, 1e-9 * kept);
        }
    nmp_problem_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(set_and_get),
        cmocka_unit_test(parse),
        cmocka_unit_test(check_against_solver),
        cmocka_unit_test(registry),
        cmocka_unit_test(solve_errors),
        cmocka_unit_test(solve_contract_every_solver),
        cmocka_unit_test(solve_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

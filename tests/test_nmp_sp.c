/* test_nmp_sp.c: the exact GLPK solvers sp (and blp, which shares its frame in nmp_glpk.c and is
 * checked against it) against dp / brute force, bounds, limits, refusals, GLPK errors */
#include "nmp_test.h"

#include "nmp_glpk.h"

#include <glpk.h>
#include <unistd.h>

/* ------------------------------------------------------------ brute force */

/* Every partition into groups of m (each group led by its lowest free column), cols <= 12. */
typedef struct brute {
    const nmp_problem *pb;
    int cols, m;
    int32_t slot[12];
    double best;
} brute;

static void brute_rec(brute *b, uint32_t used, int k, double val)
{
    const int m = b->m;
    if (k == b->cols) {
        b->best = NMP_MAX(b->best, val);
        return;
    }
    if (k % m == 0) {
        int l = 0;
        while (used >> l & 1u)
            l++;
        b->slot[k] = l;
        brute_rec(b, used | 1u << l, k + 1, val);
        return;
    }
    for (int i = b->slot[k - 1] + 1; i < b->cols; i++)
        if (!(used >> i & 1u)) {
            b->slot[k] = i;
            const double add = (k + 1) % m == 0
                                   ? nmp_score_group_value(b->pb, b->slot + (k + 1 - m)) : 0;
            brute_rec(b, used | 1u << i, k + 1, val + add);
        }
}

/* The optimum: dp when this build has it, else brute force (cols <= 12). */
static double optimum(const nmp_problem *pb)
{
    const int64_t cols = nmp_problem_cols(pb);
    if (nmp_solver_find("dp")) {
        int32_t perm[32];
        nmp_result res;
        nmp_assert_ok(nmp_solve(pb, "dp", NULL, perm, 1, &res, NULL));
        assert_int_equal(res.status, NMP_STATUS_OPTIMAL);
        return res.score;
    }
    assert_true(cols <= 12);
    brute b = { 0 };
    b.pb = pb;
    b.cols = (int)cols;
    b.m = nmp_problem_pattern(pb).m;
    b.best = -1;
    brute_rec(&b, 0, 0, 0.0);
    return b.best;
}

/* Runs a solver from the identity and checks the driver's contract; returns the score. */
static double run(const nmp_problem *pb, const char *solver, const nmp_params *par,
                  nmp_result *res)
{
    const int64_t cols = nmp_problem_cols(pb);
    int32_t *perm = malloc((size_t)cols * sizeof *perm);
    assert_non_null(perm);
    nmp_msg msg = { { 0 } };
    const nmp_err e = nmp_solve(pb, solver, par, perm, 1, res, &msg);
    if (e != NMP_OK)
        print_error("%s: %s (%s)\n", solver, nmp_err_str(e), msg.text);
    assert_int_equal(e, NMP_OK);
    assert_true(nmp_perm_is_valid(perm, cols));
    double kept;
    nmp_assert_ok(nmp_score(pb, perm, &kept));
    nmp_assert_close(kept, res->score, 1e-9 * (1 + kept));
    assert_true(res->score >= res->start_score);
    assert_true(res->bound >= res->score);
    free(perm);
    return res->score;
}

/* ------------------------------------------------------------------ tests */

/* sp == blp == dp on small instances of every pattern with m <= 4. */
static void test_agree(void **unused)
{
    (void)unused;
    const int pats[][2] = { { 2, 4 }, { 1, 4 }, { 3, 4 }, { 1, 2 } };
    for (int p = 0; p < 4; p++)
        for (int64_t cols = 8; cols <= 16; cols += 4)
            for (uint64_t seed = 1; seed <= 2; seed++) {
                const int n = pats[p][0], m = pats[p][1];
                nmp_problem *pb = nmp_test_problem(8, cols, n, m, (int)seed - 1,
                                                   seed * 1000 + (uint64_t)(cols * 10 + p));
                const double want = optimum(pb);
                nmp_result res;
                nmp_params par;
                nmp_params_init(&par);
                nmp_assert_ok(nmp_params_set(&par, "escapes", 0)); /* leave work to the MIP */
                const double sp = run(pb, "sp", &par, &res);
                assert_int_equal(res.status, NMP_STATUS_OPTIMAL);
                nmp_assert_close(res.bound, sp, 1e-9 * sp);
                const double blp = run(pb, "blp", &par, &res);
                assert_int_equal(res.status, NMP_STATUS_OPTIMAL);
                nmp_assert_close(sp, want, 1e-6 * want);
                nmp_assert_close(blp, want, 1e-6 * want);
                nmp_problem_free(pb);
            }
}

/* sp == dp up to 24 columns with more rows, and sp == match at m = 2. */
static void test_larger(void **unused)
{
    (void)unused;
    for (int64_t cols = 20; cols <= 24; cols += 4) {
        nmp_problem *pb = nmp_test_problem(64, cols, 2, 4, (int)(cols & 1), (uint64_t)cols);
        nmp_result res;
        nmp_assert_close(run(pb, "sp", NULL, &res), optimum(pb), 1e-6 * res.score);
        assert_int_equal(res.status, NMP_STATUS_OPTIMAL);
        nmp_problem_free(pb);
    }
    nmp_problem *pb = nmp_test_problem(32, 40, 1, 2, 0, 9);
    nmp_result res, mres;
    const double sp = run(pb, "sp", NULL, &res);
    assert_int_equal(res.status, NMP_STATUS_OPTIMAL);
    nmp_assert_close(sp, run(pb, "match", NULL, &mres), 1e-6 * sp);
    nmp_problem_free(pb);
}

/* Every bound reported on the way (LP by sifting, reduced-cost fixing stages, MIP) is a valid
 * upper bound: never below the optimum; the final one equals the score when optimal. */
typedef struct seen {
    double min_bound, max_best;
    int64_t calls;
} seen;

static int watch(const nmp_progress *p, void *user)
{
    seen *s = user;
    s->min_bound = NMP_MIN(s->min_bound, p->bound);
    s->max_best = NMP_MAX(s->max_best, p->best);
    s->calls++;
    return 0;
}

static void test_bounds(void **unused)
{
    (void)unused;
    nmp_problem *pb = nmp_test_problem(64, 24, 2, 4, 1, 77);
    const double opt = optimum(pb);
    seen s = { INFINITY, -INFINITY, 0 };
    nmp_params par;
    nmp_params_init(&par);
    par.progress = watch;
    par.progress_user = &s;
    nmp_result res;
    run(pb, "sp", &par, &res);
    nmp_assert_close(res.score, opt, 1e-6 * opt);
    assert_true(s.min_bound >= opt - 1e-6 * opt);
    assert_true(s.max_best <= opt + 1e-6 * opt);
    assert_true(res.bound >= res.score);
    /* without sifting and without fixing the model is the plain one: the same optimum */
    nmp_assert_ok(nmp_params_set(&par, "sift", 0));
    nmp_assert_ok(nmp_params_set(&par, "fixing", 0));
    nmp_assert_close(run(pb, "sp", &par, &res), opt, 1e-6 * opt);
    assert_int_equal(res.status, NMP_STATUS_OPTIMAL);
    nmp_problem_free(pb);
}

/* The apex reference matrix (NumPy legacy MT19937, seed 1, U[0,1) 128 x 64, 2:4): the optimum
 * 2926.952 is proven, well past what dp reaches. That value is sp's own (a regression figure;
 * bnp, another formulation, proves the same in docs/benchmarks.md); what is checked apart from
 * the solver is that the permutation returned keeps it, scored here by the sum of the two largest
 * of each row's four values per group, and that it beats apex's published best, 2921.947. */
static void test_reference(void **unused)
{
    (void)unused;
    const int64_t rows = 128, cols = 64;
    float *a = malloc((size_t)(rows * cols) * sizeof *a);
    assert_non_null(a);
    nmp_mt19937 g;
    nmp_mt19937_seed(&g, 1);
    for (int64_t k = 0; k < rows * cols; k++)
        a[k] = (float)nmp_mt19937_uniform(&g);
    nmp_problem_desc d = { 0 };
    d.weights = nmp_matrix_view(a, rows, cols);
    d.nm.n = 2;
    d.nm.m = 4;
    nmp_problem *pb = NULL;
    nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
    nmp_params par;
    nmp_params_init(&par);
    par.time_limit = 60;
    nmp_result res;
    int32_t perm[64];
    const double t0 = nmp_now();
    nmp_assert_ok(nmp_solve(pb, "sp", &par, perm, 1, &res, NULL));
    print_message("sp: apex reference 128x64 proven in %.2f s (%lld nodes): %.4f\n",
                  nmp_now() - t0, (long long)res.nodes, res.score);
    assert_int_equal(res.status, NMP_STATUS_OPTIMAL);
    nmp_assert_close(res.score, 2926.9524, 1e-3);
    assert_true(nmp_perm_is_valid(perm, cols));
    double kept = 0;
    for (int64_t j = 0; j < rows; j++)
        for (int64_t q = 0; q < cols; q += 4) {
            double v[4];
            for (int k = 0; k < 4; k++)
                v[k] = a[j * cols + perm[q + k]];
            qsort(v, 4, sizeof v[0], nmp_test_cmp_desc);
            kept += v[0] + v[1];
        }
    nmp_assert_close(kept, res.score, 1e-6 * kept); /* float sums inside nmperm */
    assert_true(kept > 2921.947);
    free(a);
    nmp_problem_free(pb);
}

/* A tiny time limit: a valid perm, TIME_LIMIT, bound >= score, never below the start; a
 * callback that says stop gives INTERRUPTED. The instances take far longer than the limit on any
 * machine: sp on 64 x 96 (3.3 M subsets) ~47 s, blp on 32 x 32 over 10 min (2-core VM; sp on the
 * former 64 x 32 took 0.03 s there, so a faster machine could prove it within the limit). */
static void test_time_limit(void **unused)
{
    (void)unused;
    const char *solvers[] = { "sp", "blp" };
    for (int t = 0; t < 2; t++) {
        nmp_problem *pb = nmp_test_problem(t == 0 ? 64 : 32, t == 0 ? 96 : 32, 2, 4, 0, 5);
        nmp_params par;
        nmp_params_init(&par);
        if (t == 0)
            nmp_assert_ok(nmp_params_set(&par, "max_subsets", 4e6));
        par.time_limit = 0.02;
        nmp_result res;
        run(pb, solvers[t], &par, &res);
        assert_int_equal(res.status, NMP_STATUS_TIME_LIMIT);
        nmp_params_init(&par);
        if (t == 0)
            nmp_assert_ok(nmp_params_set(&par, "max_subsets", 4e6));
        par.progress = nmp_test_stop_now;
        nmp_assert_ok(nmp_params_set(&par, "escapes", 1e6)); /* stopped in the warm start */
        run(pb, solvers[t], &par, &res);
        assert_int_equal(res.status, NMP_STATUS_INTERRUPTED);
        nmp_problem_free(pb);
    }
}

/* Started at the optimum with no time to search, the optimum comes back. */
static void test_keeps_start(void **unused)
{
    (void)unused;
    nmp_problem *pb = nmp_test_problem(16, 12, 2, 4, 1, 21);
    int32_t perm[12];
    nmp_result res;
    nmp_assert_ok(nmp_solve(pb, "sp", NULL, perm, 1, &res, NULL));
    const double opt = res.score;
    nmp_params par;
    nmp_params_init(&par);
    par.time_limit = 1e-6;
    const char *solvers[] = { "sp", "blp" };
    for (int t = 0; t < 2; t++) {
        int32_t start[12];
        memcpy(start, perm, sizeof start);
        nmp_assert_ok(nmp_solve(pb, solvers[t], &par, start, 0, &res, NULL));
        nmp_assert_close(res.score, opt, 1e-9 * opt);
    }
    nmp_problem_free(pb);
}

static void test_refusals(void **unused)
{
    (void)unused;
    /* cols not divisible by m, n >= m: refused by the problem itself */
    float a[12] = { 0 };
    nmp_problem_desc d = { 0 };
    d.weights = nmp_matrix_view(a, 2, 6);
    d.nm.n = 2;
    d.nm.m = 4;
    nmp_problem *pb = NULL;
    assert_int_equal(nmp_problem_create(&d, &pb, NULL), NMP_ERR_ARG);
    d.nm.n = 2;
    d.nm.m = 2;
    assert_int_equal(nmp_problem_create(&d, &pb, NULL), NMP_ERR_ARG);
    assert_null(pb);
    /* C(16, 4) = 1820 subsets above max_subsets; blp's model above max_vars */
    pb = nmp_test_problem(8, 16, 2, 4, 0, 3);
    nmp_params par;
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "max_subsets", 1000));
    int32_t perm[16];
    nmp_result res;
    nmp_msg msg = { { 0 } };
    assert_int_equal(nmp_solve(pb, "sp", &par, perm, 1, &res, &msg), NMP_ERR_UNSUPPORTED);
    assert_non_null(strstr(msg.text, "1820"));
    assert_non_null(strstr(msg.text, "max_subsets"));
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "max_vars", 100));
    assert_int_equal(nmp_solve(pb, "blp", &par, perm, 1, &res, &msg), NMP_ERR_UNSUPPORTED);
    assert_non_null(strstr(msg.text, "max_vars"));
    /* a parameter the solver does not have */
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "max_cols", 10));
    assert_int_equal(nmp_solve(pb, "sp", &par, perm, 1, &res, &msg), NMP_ERR_ARG);
    nmp_problem_free(pb);
    /* one group: nothing to choose, optimal at once */
    pb = nmp_test_problem(8, 4, 2, 4, 0, 3);
    nmp_assert_ok(nmp_solve(pb, "sp", NULL, perm, 1, &res, NULL));
    assert_int_equal(res.status, NMP_STATUS_OPTIMAL);
    nmp_assert_ok(nmp_solve(pb, "blp", NULL, perm, 1, &res, NULL));
    assert_int_equal(res.status, NMP_STATUS_OPTIMAL);
    nmp_problem_free(pb);
}

/* Out of memory in create or solve: NMP_ERR_NOMEM, nothing else, for every allocation. */
static void test_nomem(void **unused)
{
    (void)unused;
    nmp_problem *pb = nmp_test_problem(8, 12, 2, 4, 0, 4);
    const char *solvers[] = { "sp", "blp" };
    for (int t = 0; t < 2; t++) {
        bool passed = false;
        for (int64_t k = 0; k < 200 && !passed; k++) {
            int32_t perm[12];
            nmp_result res;
            nmp_alloc_fail_after(k);
            const nmp_err e = nmp_solve(pb, solvers[t], NULL, perm, 1, &res, NULL);
            nmp_alloc_fail_after(-1);
            assert_true(e == NMP_OK || e == NMP_ERR_NOMEM);
            passed = e == NMP_OK;
        }
        assert_true(passed);
    }
    nmp_problem_free(pb);
}

/* GLPK stays silent unless verbose: nothing reaches stdout during a solve. */
static void test_silent(void **unused)
{
    (void)unused;
    char path[] = "/tmp/nmp_sp_stdout_XXXXXX";
    const int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stdout);
    const int saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDOUT_FILENO) >= 0);
    nmp_problem *pb = nmp_test_problem(16, 16, 2, 4, 0, 8);
    int32_t perm[16];
    nmp_result res;
    const nmp_err e1 = nmp_solve(pb, "sp", NULL, perm, 1, &res, NULL);
    const nmp_err e2 = nmp_solve(pb, "blp", NULL, perm, 1, &res, NULL);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    const off_t size = lseek(fd, 0, SEEK_END);
    close(fd);
    unlink(path);
    nmp_problem_free(pb);
    nmp_assert_ok(e1);
    nmp_assert_ok(e2);
    assert_int_equal(size, 0);
}

/* An internal GLPK error (here its memory limit) becomes NMP_ERR_LP with a reason, prints
 * nothing, and the next solve works. */
static void test_glpk_error(void **unused)
{
    (void)unused;
    nmp_problem *pb = nmp_test_problem(64, 32, 2, 4, 0, 12);
    nmp_params par;
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "sift", 0)); /* all 35,960 subsets in GLPK at once */
    int32_t perm[32];
    nmp_result res;
    nmp_msg msg = { { 0 } };
    glp_mem_limit(1);
    assert_int_equal(nmp_solve(pb, "sp", &par, perm, 1, &res, &msg), NMP_ERR_LP);
    assert_non_null(strstr(msg.text, "GLPK"));
    nmp_assert_ok(nmp_solve(pb, "sp", &par, perm, 1, &res, &msg));
    assert_int_equal(res.status, NMP_STATUS_OPTIMAL);
    nmp_problem_free(pb);
}

/* A GLPK internal error raised in the first simplex call (nmp_glpk_fail_at) becomes NMP_ERR_LP
 * naming the solver, and the next solve works (test_glpk_error: one later in the solve). */
static void test_glpk_error_injected(void **unused)
{
    (void)unused;
    nmp_problem *pb = nmp_test_problem(16, 16, 2, 4, 0, 31);
    const char *solvers[] = { "sp", "blp" };
    for (int t = 0; t < 2; t++) {
        int32_t perm[16];
        nmp_result res;
        nmp_msg msg = { { 0 } };
        nmp_glpk_fail_at(0);
        const nmp_err e = nmp_solve(pb, solvers[t], NULL, perm, 1, &res, &msg);
        nmp_glpk_fail_at(-1);
        assert_int_equal(e, NMP_ERR_LP);
        assert_non_null(strstr(msg.text, solvers[t]));
        assert_non_null(strstr(msg.text, "GLPK"));
        assert_true(nmp_perm_is_valid(perm, 16));
        nmp_assert_ok(nmp_solve(pb, solvers[t], NULL, perm, 1, &res, &msg));
        assert_int_equal(res.status, NMP_STATUS_OPTIMAL);
    }
    nmp_problem_free(pb);
}

/* blp by default: refuses 128 x 128 (4.6e5 variables), and without a time limit stops after its
 * max_seconds with status TIME_LIMIT, a valid perm and a bound above it. */
static void test_blp_defaults(void **unused)
{
    (void)unused;
    nmp_problem *big = nmp_test_problem(128, 128, 2, 4, 0, 9);
    int32_t perm[128];
    nmp_result res;
    nmp_msg msg = { { 0 } };
    assert_int_equal(nmp_solve(big, "blp", NULL, perm, 1, &res, &msg), NMP_ERR_UNSUPPORTED);
    assert_non_null(strstr(msg.text, "max_vars"));
    nmp_problem_free(big);
    nmp_problem *pb = nmp_test_problem(64, 32, 2, 4, 0, 9);
    nmp_params par;
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "max_seconds", 0.3));
    nmp_assert_ok(nmp_solve(pb, "blp", &par, perm, 1, &res, NULL));
    assert_int_equal(res.status, NMP_STATUS_TIME_LIMIT);
    assert_true(nmp_perm_is_valid(perm, 32));
    assert_true(res.bound >= res.score);
    nmp_problem_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agree),       cmocka_unit_test(test_larger),
        cmocka_unit_test(test_bounds),      cmocka_unit_test(test_reference),
        cmocka_unit_test(test_time_limit),  cmocka_unit_test(test_keeps_start),
        cmocka_unit_test(test_refusals),    cmocka_unit_test(test_nomem),
        cmocka_unit_test(test_silent),      cmocka_unit_test(test_glpk_error),
        cmocka_unit_test(test_glpk_error_injected), cmocka_unit_test(test_blp_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_nmp_subsolve.c: one solver running another (solvers/nmp_subsolve.c): the child's clock is
 * capped by the parent's time, its progress reaches the parent and the parent's interrupt stops
 * it, and the driver's checks hold (valid perm, recomputed score, never below the start) */
#include "nmp_test.h"

#include "nmp_solvers.h"

/* ------------------------------------------------ a child that does what it is told */

/* What the fake child saw and what it does: it records its time limit, reports one progress
 * call (forced) and writes `answer` (or leaves perm alone when NULL). */
static struct {
    double time_limit;
    int created;
    const int32_t *answer;
    int64_t cols;
} fake;

static const nmp_param_desc fake_params[] = {
    { "knob", 1, 0, 10, "a value to override" },
    { 0 },
};

static nmp_err fake_create(const nmp_problem *pb, const nmp_params *par, void **state,
                           nmp_msg *msg)
{
    (void)pb;
    (void)msg;
    fake.time_limit = par->time_limit;
    fake.created++;
    nmp_clock *clk = malloc(sizeof *clk);
    assert_non_null(clk);
    nmp_clock_start(clk, par);
    *state = clk;
    return NMP_OK;
}

static nmp_err fake_solve(void *state, int32_t *perm, nmp_result *res)
{
    nmp_clock *clk = state;
    const bool stop = nmp_clock_tick(clk, 7, 1.0, 2.0, "fake", true);
    if (fake.answer)
        memcpy(perm, fake.answer, (size_t)fake.cols * sizeof *perm);
    res->status = stop ? nmp_clock_status(clk) : NMP_STATUS_FEASIBLE;
    return NMP_OK;
}

static void fake_destroy(void *state)
{
    free(state);
}

static const nmp_solver_ops fake_ops = {
    "fake", "test child", fake_params, fake_create, fake_solve, fake_destroy, 0,
};

/* A parent's progress: counts calls, remembers the last phase, stops when asked. */
static struct {
    int calls;
    const char *phase;
    int stop;
} parent_seen;

static int parent_progress(const nmp_progress *p, void *user)
{
    (void)user;
    parent_seen.calls++;
    parent_seen.phase = p->phase;
    return parent_seen.stop;
}

static void parent_clock(nmp_clock *clk, double limit)
{
    nmp_params par;
    nmp_params_init(&par);
    par.time_limit = limit;
    par.progress = parent_progress;
    nmp_clock_start(clk, &par);
    clk->last_report = -1e9; /* the next tick reaches the callback */
    memset(&parent_seen, 0, sizeof parent_seen);
}

/* ------------------------------------------------------------------ tests */

/* The child may run `seconds`, never past the parent's limit; no limit when neither has one. */
static void time_capped_by_parent(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(4, 8, 2, 4, 0, 1);
    int32_t perm[8];
    nmp_result res;
    nmp_params par;
    nmp_params_init(&par);
    nmp_clock clk;
    fake.answer = NULL;
    fake.cols = 8;

    parent_clock(&clk, 100);
    nmp_perm_identity(perm, 8);
    nmp_assert_ok(nmp_subsolve(&fake_ops, pb, &par, &clk, 5, perm, &res, NULL));
    nmp_assert_close(fake.time_limit, 5, 0);

    parent_clock(&clk, 1);
    nmp_assert_ok(nmp_subsolve(&fake_ops, pb, &par, &clk, 0, perm, &res, NULL));
    assert_true(fake.time_limit > 0 && fake.time_limit <= 1);
    nmp_assert_ok(nmp_subsolve(&fake_ops, pb, &par, &clk, 30, perm, &res, NULL));
    assert_true(fake.time_limit > 0 && fake.time_limit <= 1);

    parent_clock(&clk, 0);
    nmp_assert_ok(nmp_subsolve(&fake_ops, pb, &par, &clk, 0, perm, &res, NULL));
    nmp_assert_close(fake.time_limit, 0, 0);
    nmp_assert_ok(nmp_subsolve(&fake_ops, pb, &par, NULL, 3, perm, &res, NULL));
    nmp_assert_close(fake.time_limit, 3, 0);

    /* the parent's time is spent: the child does not run, perm stays */
    parent_clock(&clk, 1e-9);
    while (!nmp_clock_expired(&clk))
        ;
    fake.created = 0;
    nmp_assert_ok(nmp_subsolve(&fake_ops, pb, &par, &clk, 0, perm, &res, NULL));
    assert_int_equal(fake.created, 0);
    assert_int_equal(res.status, NMP_STATUS_TIME_LIMIT);
    for (int k = 0; k < 8; k++)
        assert_int_equal(perm[k], k);
    nmp_problem_free(pb);
}

/* The child's progress reaches the parent's callback; the parent's stop interrupts the child,
 * and a parent already stopped runs no child. */
static void progress_and_interrupt(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(4, 8, 2, 4, 0, 2);
    int32_t perm[8];
    nmp_result res;
    nmp_params par;
    nmp_params_init(&par);
    nmp_clock clk;
    fake.answer = NULL;
    fake.cols = 8;
    nmp_perm_identity(perm, 8);

    parent_clock(&clk, 0);
    nmp_assert_ok(nmp_subsolve(&fake_ops, pb, &par, &clk, 0, perm, &res, NULL));
    assert_int_equal(parent_seen.calls, 1);
    assert_string_equal(parent_seen.phase, "fake");
    assert_int_equal(res.status, NMP_STATUS_FEASIBLE);

    parent_clock(&clk, 0);
    parent_seen.stop = 1;
    nmp_assert_ok(nmp_subsolve(&fake_ops, pb, &par, &clk, 0, perm, &res, NULL));
    assert_int_equal(res.status, NMP_STATUS_INTERRUPTED);
    assert_true(clk.stopped);
    fake.created = 0;
    nmp_assert_ok(nmp_subsolve(&fake_ops, pb, &par, &clk, 0, perm, &res, NULL));
    assert_int_equal(fake.created, 0);
    assert_int_equal(res.status, NMP_STATUS_INTERRUPTED);
    nmp_problem_free(pb);
}

/* A real child (lns, kicking without end) stops at the parent's small limit and at its
 * interrupt, with a valid perm no worse than the start. */
static void real_child_stops(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(32, 64, 2, 4, 0, 3);
    int32_t perm[64];
    nmp_result res;
    nmp_params par;
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "kicks", 1e12));
    nmp_clock clk;
    for (int interrupt = 0; interrupt < 2; interrupt++) {
        parent_clock(&clk, interrupt ? 0 : 0.05);
        parent_seen.stop = interrupt;
        nmp_perm_identity(perm, 64);
        nmp_assert_ok(nmp_subsolve(&nmp_lns_ops, pb, &par, &clk, 0, perm, &res, NULL));
        assert_int_equal(res.status,
                         interrupt ? NMP_STATUS_INTERRUPTED : NMP_STATUS_TIME_LIMIT);
        assert_true(nmp_perm_is_valid(perm, 64));
        nmp_assert_close(res.score, nmp_test_score(pb, perm), 1e-9 * res.score);
        assert_true(res.score >= res.start_score);
        nmp_assert_close(res.start_score, nmp_test_score(pb, NULL), 1e-9 * res.score);
    }
    nmp_problem_free(pb);
}

/* The driver's checks: a worse answer gives back the start, an invalid one is an error (perm
 * keeps the start), a parameter the child does not have is refused, a bad start too. */
static void driver_checks(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(16, 12, 2, 4, 0, 4);
    int32_t best[12], perm[12], ident[12];
    nmp_result res;
    nmp_assert_ok(nmp_solve(pb, "dp", NULL, best, 1, &res, NULL));
    nmp_perm_identity(ident, 12);
    assert_true(nmp_test_score(pb, ident) < res.score); /* the identity is worse */
    nmp_params par;
    nmp_params_init(&par);
    nmp_msg msg = { { 0 } };
    fake.cols = 12;

    fake.answer = ident;
    memcpy(perm, best, sizeof perm);
    nmp_assert_ok(nmp_subsolve(&fake_ops, pb, &par, NULL, 0, perm, &res, &msg));
    assert_memory_equal(perm, best, sizeof perm);
    nmp_assert_close(res.score, res.start_score, 0);

    const int32_t twice[12] = { 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
    fake.answer = twice;
    assert_int_equal(nmp_subsolve(&fake_ops, pb, &par, NULL, 0, perm, &res, &msg),
                     NMP_ERR_INTERNAL);
    assert_non_null(strstr(msg.text, "fake"));
    assert_memory_equal(perm, best, sizeof perm);

    fake.answer = NULL;
    nmp_assert_ok(nmp_params_set(&par, "knob", 3));
    nmp_assert_ok(nmp_subsolve(&fake_ops, pb, &par, NULL, 0, perm, &res, &msg));
    nmp_assert_ok(nmp_params_set(&par, "kicks", 3));
    assert_int_equal(nmp_subsolve(&fake_ops, pb, &par, NULL, 0, perm, &res, &msg), NMP_ERR_ARG);
    nmp_params_init(&par);
    memcpy(perm, twice, sizeof perm);
    assert_int_equal(nmp_subsolve(&fake_ops, pb, &par, NULL, 0, perm, &res, &msg), NMP_ERR_ARG);
    nmp_problem_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(time_capped_by_parent),
        cmocka_unit_test(progress_and_interrupt),
        cmocka_unit_test(real_child_stops),
        cmocka_unit_test(driver_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

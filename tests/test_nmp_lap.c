/* test_nmp_lap.c: linear assignment against brute force; the assignment move's optimality per
 * position; the lap solver's contract, seeds, threads, time limit, interruption, out of memory */
#include "nmp_test.h"

#include "nmp_solvers.h"

/* ------------------------------------------------------ assignment itself */

/* Best sum over all n! permutations (Heap's algorithm), minimising or maximising. */
static double brute_lap(int n, const double *c, bool maximise)
{
    int p[8], cnt[8] = { 0 };
    for (int i = 0; i < n; i++)
        p[i] = i;
    double best = maximise ? -INFINITY : INFINITY;
    for (int i = 0;;) {
        double v = 0;
        for (int r = 0; r < n; r++)
            v += c[r * n + p[r]];
        if (maximise ? v > best : v < best)
            best = v;
        while (i < n && cnt[i] >= i) {
            cnt[i] = 0;
            i++;
        }
        if (i >= n)
            break;
        const int j = i % 2 ? cnt[i] : 0;
        const int t = p[j];
        p[j] = p[i];
        p[i] = t;
        cnt[i]++;
        i = 1;
    }
    return best;
}

static void lap_brute_force(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 7);
    double c[64];
    int32_t assign[8];
    void *scratch = malloc(nmp_lap_scratch_size(8));
    assert_non_null(scratch);
    for (int trial = 0; trial < 400; trial++) {
        const int n = 1 + trial % 8;
        const int kind = (trial / 8) % 4;
        for (int k = 0; k < n * n; k++)
            c[k] = kind == 0   ? nmp_rng_uniform(&r)
                 : kind == 1   ? (double)nmp_rng_below(&r, 3)          /* many ties */
                 : kind == 2   ? 100 * (nmp_rng_uniform(&r) - 0.7)     /* negative costs */
                               : (double)((int)nmp_rng_below(&r, 7) - 3) * 1e6; /* large, ties */
        for (int maximise = 0; maximise < 2; maximise++) {
            nmp_assert_ok(nmp_lap_solve(n, c, maximise, assign, scratch));
            assert_true(nmp_perm_is_valid(assign, n));
            double v = 0;
            for (int i = 0; i < n; i++)
                v += c[i * n + assign[i]];
            const double want = brute_lap(n, c, maximise);
            nmp_assert_close(v, want, 1e-9 * (1 + fabs(want)));
        }
    }
    /* all equal: any permutation, still a permutation */
    for (int k = 0; k < 64; k++)
        c[k] = 2.5;
    nmp_assert_ok(nmp_lap_solve(8, c, true, assign, scratch));
    assert_true(nmp_perm_is_valid(assign, 8));
    free(scratch);
}

static void lap_larger_against_greedy_bound(void **state)
{
    (void)state;
    /* n = 300: the optimum is at least the identity and every 2-exchange of it cannot gain */
    const int n = 300;
    nmp_rng r;
    nmp_rng_seed(&r, 3);
    double *c = malloc((size_t)n * n * sizeof *c);
    int32_t *assign = malloc((size_t)n * sizeof *assign);
    void *scratch = malloc(nmp_lap_scratch_size(n));
    assert_non_null(c);
    assert_non_null(assign);
    assert_non_null(scratch);
    for (int k = 0; k < n * n; k++)
        c[k] = nmp_rng_uniform(&r);
    nmp_assert_ok(nmp_lap_solve(n, c, true, assign, scratch));
    assert_true(nmp_perm_is_valid(assign, n));
    double v = 0, ident = 0;
    for (int i = 0; i < n; i++) {
        v += c[i * n + assign[i]];
        ident += c[i * n + i];
    }
    assert_true(v >= ident);
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++) {
            const double d = c[a * n + assign[b]] + c[b * n + assign[a]] - c[a * n + assign[a]] -
                             c[b * n + assign[b]];
            assert_true(d <= 1e-9);
        }
    free(c);
    free(assign);
    free(scratch);
}

static void lap_arguments(void **state)
{
    (void)state;
    double c[4] = { 1, 2, 4, 4 };
    int32_t assign[2];
    void *scratch = malloc(nmp_lap_scratch_size(2));
    assert_non_null(scratch);
    nmp_assert_ok(nmp_lap_solve(0, NULL, false, NULL, NULL));
    assert_int_equal(nmp_lap_solve(-1, c, false, assign, scratch), NMP_ERR_ARG);
    assert_int_equal(nmp_lap_solve(2, NULL, false, assign, scratch), NMP_ERR_ARG);
    assert_int_equal(nmp_lap_solve(2, c, false, NULL, scratch), NMP_ERR_ARG);
    assert_int_equal(nmp_lap_solve(2, c, false, assign, NULL), NMP_ERR_ARG);
    nmp_assert_ok(nmp_lap_solve(2, c, false, assign, scratch));
    assert_int_equal(assign[0], 0); /* 1 + 4 < 2 + 4 */
    assert_int_equal(assign[1], 1);
    nmp_assert_ok(nmp_lap_solve(2, c, true, assign, scratch));
    assert_int_equal(assign[0], 1); /* 2 + 4 > 1 + 4 */
    assert_int_equal(assign[1], 0);
    c[0] = c[1] = NAN;
    assert_int_equal(nmp_lap_solve(2, c, false, assign, scratch), NMP_ERR_ARG);
    free(scratch);
}

/* ----------------------------------------------------------------- moves */

/* Largest gain of reassigning the columns at position p among the groups, by brute force (all
 * G! assignments, G <= 6). */
static double best_position_gain(const nmp_problem *pb, const int32_t *perm, int p)
{
    const int m = nmp_problem_pattern(pb).m;
    const int groups = (int)nmp_problem_groups(pb);
    double val[6 * 6];
    for (int a = 0; a < groups; a++) /* column of group a into group b */
        for (int b = 0; b < groups; b++) {
            int32_t c[NMP_MAX_M];
            memcpy(c, perm + b * m, (size_t)m * sizeof *c);
            c[p] = perm[a * m + p];
            val[a * groups + b] = nmp_test_naive_group(pb, c);
        }
    double now = 0;
    for (int a = 0; a < groups; a++)
        now += val[a * groups + a];
    return brute_lap(groups, val, true) - now;
}

static void move_optimal_per_position(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 11);
    const int pat[][2] = { { 2, 4 }, { 1, 4 }, { 3, 4 }, { 1, 2 }, { 2, 8 } };
    for (int t = 0; t < 5; t++)
        for (int kind = 0; kind < 3; kind++) {
            const int n = pat[t][0], m = pat[t][1];
            const int groups = 2 + (int)nmp_rng_below(&r, 5);
            const int64_t rows = 4 + (int64_t)nmp_rng_below(&r, 40), cols = (int64_t)groups * m;
            float *w = malloc((size_t)(rows * cols) * sizeof *w);
            assert_non_null(w);
            for (int64_t k = 0; k < rows * cols; k++)
                w[k] = kind == 0 ? (float)nmp_rng_normal(&r)
                     : kind == 1 ? (float)nmp_rng_uniform(&r)
                                 : (float)nmp_rng_below(&r, 3);
            nmp_problem_desc d = { 0 };
            d.weights = nmp_matrix_view(w, rows, cols);
            d.nm.n = n;
            d.nm.m = m;
            nmp_problem *pb = NULL;
            nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
            free(w);
            int32_t perm[64];
            nmp_perm_random(perm, cols, &r);
            const double start = nmp_test_score(pb, perm);
            nmp_params par;
            nmp_params_init(&par);
            nmp_assert_ok(nmp_params_set(&par, "pick", 0)); /* cycling: every position */
            nmp_result res;
            nmp_assert_ok(nmp_solve(pb, "lap", &par, perm, 0, &res, NULL));
            assert_true(nmp_perm_is_valid(perm, cols));
            nmp_assert_close(res.score, nmp_test_score(pb, perm), 1e-9 * (1 + res.score));
            assert_true(res.score >= start);
            for (int p = 0; p < m; p++) {
                const double gain = best_position_gain(pb, perm, p);
                if (!(gain <= 1e-5 * (1 + res.score))) {
                    print_error("%d:%d kind %d G %d p %d: reassignment still gains %g\n", n, m,
                                kind, groups, p, gain);
                    fail();
                }
            }
            nmp_problem_free(pb);
        }
}

/* One round through the internal API never lowers the score and keeps the eval consistent. */
static void move_round_api(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(64, 96, 2, 4, 0, 5);
    nmp_eval *ev = NULL;
    nmp_lap_move *lm = NULL;
    nmp_assert_ok(nmp_eval_create(pb, NULL, &ev));
    nmp_assert_ok(nmp_lap_move_create(pb, 8, 1, 2, &lm)); /* 24 groups in blocks of <= 8 */
    nmp_rng r;
    nmp_rng_seed(&r, 1);
    double before = nmp_eval_score(ev);
    for (int k = 0; k < 5; k++) {
        bool stopped = true;
        int64_t moves = 0;
        const double gain = nmp_lap_move_round(lm, ev, &r, NULL, &moves, &stopped);
        assert_false(stopped);
        assert_true(gain >= 0);
        const double now = nmp_eval_score(ev);
        nmp_assert_close(now - before, gain, 1e-6 * now);
        nmp_assert_close(now, nmp_test_score(pb, nmp_eval_perm(ev)), 1e-6 * now);
        before = now;
    }
    assert_true(before > nmp_score_identity(pb));
    nmp_lap_move_free(lm);
    nmp_lap_move_free(NULL);
    nmp_eval_free(ev);
    nmp_problem_free(pb);
}

/* The weight kernel: every instruction set this CPU runs gives the generic path's weights bit
 * for bit (the same summation order), and the generic path gives sum_j max(c_a(j), t_b(j)) up
 * to float rounding. Row counts around the 8-row partials and tiles cut short by nb < 16. */
static void fill_tile_isas_agree(void **state)
{
    (void)state;
    enum { K = 21, LEN = 300, B = NMP_LAP_TILE_B };
    nmp_rng r;
    nmp_rng_seed(&r, 17);
    float *cols = malloc(K * (LEN + 3) * sizeof *cols);
    float *t = malloc(LEN * B * sizeof *t);
    double *ref = malloc(K * K * sizeof *ref), *w = malloc(K * K * sizeof *w);
    double *w0 = malloc(K * K * sizeof *w0);
    const float *c[K];
    assert_true(cols && t && ref && w && w0);
    for (int i = 0; i < K * (LEN + 3); i++)
        cols[i] = (float)fabs(nmp_rng_normal(&r));
    for (int i = 0; i < LEN * B; i++)
        t[i] = (float)fabs(nmp_rng_normal(&r));
    for (int a = 0; a < K; a++)
        c[a] = cols + a * (LEN + 3);
    const int64_t lens[] = { 1, 5, 8, 13, 64, 255, 256, 300 };
    const int64_t j0 = 3, b0 = 4, nb = 13, a0 = 2, a1 = 19; /* odd a range, a cut tile */
    int checked = 0;
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        const int64_t len = lens[li];
        for (int a = 0; a < K; a++)
            for (int b = 0; b < K; b++) {
                double sum = 0;
                for (int64_t j = 0; j < len; j++)
                    sum += fmax(c[a][j0 + j], (b >= b0 && b < b0 + nb) ? t[j * B + (b - b0)] : 0);
                ref[a * K + b] = (a >= a0 && a < a1 && b >= b0 && b < b0 + nb) ? 1.0 + sum : 1.0;
            }
        for (int isa = NMP_LAP_ISA_GENERIC; isa <= NMP_LAP_ISA_AVX512; isa++) {
            if (!nmp_lap_isa_supported((nmp_lap_isa)isa))
                continue;
            for (int i = 0; i < K * K; i++)
                w[i] = 1.0; /* the kernel adds to w */
            nmp_lap_fill_tile((nmp_lap_isa)isa, c, a0, a1, j0, len, t, w, K, b0, nb);
            if (isa == NMP_LAP_ISA_GENERIC) {
                for (int i = 0; i < K * K; i++)
                    nmp_assert_close(w[i], ref[i], 1e-5 * ref[i]);
                memcpy(w0, w, K * K * sizeof *w);
            } else if (memcmp(w, w0, K * K * sizeof *w) != 0) {
                print_error("isa %d differs from the generic path at len %lld\n", isa,
                            (long long)len);
                fail();
            }
            checked++;
        }
    }
    assert_true(checked >= (int)(sizeof lens / sizeof *lens));
    free(cols);
    free(t);
    free(ref);
    free(w);
    free(w0);
}

/* LAP rounds with each supported kernel from the same state and seed: the same permutation and
 * score bit for bit (blocks of 20 groups: a tile cut short; 3 threads). */
static void move_rounds_isas_agree(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(77, 160, 2, 4, 0, 9);
    int32_t ref[160];
    double ref_score = 0;
    assert_int_equal(nmp_lap_move_set_isa(NULL, NMP_LAP_ISA_GENERIC), NMP_ERR_ARG);
    for (int isa = NMP_LAP_ISA_GENERIC; isa <= NMP_LAP_ISA_AVX512; isa++) {
        nmp_eval *ev = NULL;
        nmp_lap_move *lm = NULL;
        nmp_assert_ok(nmp_eval_create(pb, NULL, &ev));
        nmp_assert_ok(nmp_lap_move_create(pb, 20, 1, 3, &lm));
        if (nmp_lap_move_set_isa(lm, (nmp_lap_isa)isa) != NMP_OK) {
            assert_false(nmp_lap_isa_supported((nmp_lap_isa)isa));
            nmp_lap_move_free(lm);
            nmp_eval_free(ev);
            continue;
        }
        nmp_rng r;
        nmp_rng_seed(&r, 4);
        for (int k = 0; k < 4; k++) {
            bool stopped = true;
            nmp_lap_move_round(lm, ev, &r, NULL, NULL, &stopped);
        }
        if (isa == NMP_LAP_ISA_GENERIC) {
            memcpy(ref, nmp_eval_perm(ev), sizeof ref);
            ref_score = nmp_eval_score(ev);
            assert_true(ref_score > nmp_score_identity(pb));
        } else {
            assert_memory_equal(nmp_eval_perm(ev), ref, sizeof ref);
            assert_true(nmp_eval_score(ev) == ref_score);
        }
        nmp_lap_move_free(lm);
        nmp_eval_free(ev);
    }
    nmp_problem_free(pb);
}

/* ---------------------------------------------------------------- solver */

static void solver_contract_seeds_threads(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(48, 256, 2, 4, 1, 21); /* 64 groups */
    int32_t a[256], b[256], start[256];
    nmp_rng r;
    nmp_rng_seed(&r, 4);
    nmp_perm_random(start, 256, &r);
    const double s0 = nmp_test_score(pb, start);
    nmp_params par;
    nmp_params_init(&par);
    par.seed = 9;
    nmp_assert_ok(nmp_params_set(&par, "block", 16)); /* several blocks: the random split */
    nmp_result ra, rb;
    for (int threads = 1; threads <= 2; threads++) {
        par.threads = threads;
        memcpy(threads == 1 ? a : b, start, sizeof start);
        nmp_assert_ok(nmp_solve(pb, "lap", &par, threads == 1 ? a : b, 0,
                                threads == 1 ? &ra : &rb, NULL));
    }
    assert_memory_equal(a, b, sizeof a); /* the thread count changes nothing */
    assert_true(nmp_perm_is_valid(a, 256));
    nmp_assert_close(ra.score, nmp_test_score(pb, a), 1e-9 * ra.score);
    nmp_assert_close(ra.start_score, s0, 1e-9 * s0);
    assert_true(ra.score > s0);
    assert_int_equal(ra.status, NMP_STATUS_FEASIBLE);
    /* same seed, same result; iteration limit */
    memcpy(b, start, sizeof start);
    par.threads = 1;
    nmp_assert_ok(nmp_solve(pb, "lap", &par, b, 0, &rb, NULL));
    assert_memory_equal(a, b, sizeof a);
    nmp_assert_ok(nmp_params_set(&par, "rounds", 1));
    memcpy(b, start, sizeof start);
    nmp_assert_ok(nmp_solve(pb, "lap", &par, b, 0, &rb, NULL));
    assert_int_equal(rb.status, NMP_STATUS_ITER_LIMIT);
    assert_true(rb.score >= s0 && rb.score <= ra.score + 1e-9 * ra.score);
    /* a lap-optimal start stays (never worse) */
    nmp_params_init(&par);
    nmp_assert_ok(nmp_solve(pb, "lap", &par, a, 0, &rb, NULL));
    assert_true(rb.score >= ra.score - 1e-9 * ra.score);
    nmp_problem_free(pb);
}

static void solver_time_limit_and_interrupt(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(2048, 2048, 2, 4, 0, 2); /* ~seconds of rounds */
    int32_t *perm = malloc(2048 * sizeof *perm);
    assert_non_null(perm);
    nmp_params par;
    nmp_params_init(&par);
    par.threads = 1;
    par.time_limit = 0.1;
    nmp_result res;
    nmp_assert_ok(nmp_solve(pb, "lap", &par, perm, 1, &res, NULL));
    assert_int_equal(res.status, NMP_STATUS_TIME_LIMIT);
    assert_true(res.score >= res.start_score);
    assert_true(nmp_perm_is_valid(perm, 2048));
    /* a limit that has passed before the first look at the clock (the first rows of the first
     * block's weights) drops that block and every other: no move, the start returned. Blocks
     * of all 512 groups make the weights alone 512^2 * 2048 entries. */
    par.time_limit = 1e-9;
    for (int block = 256; block <= 512; block *= 2) {
        nmp_assert_ok(nmp_params_set(&par, "block", block));
        nmp_assert_ok(nmp_solve(pb, "lap", &par, perm, 1, &res, NULL));
        assert_int_equal(res.status, NMP_STATUS_TIME_LIMIT);
        assert_int_equal(res.iterations, 0);
        for (int i = 0; i < 2048; i++)
            assert_int_equal(perm[i], i);
    }
    int calls = 0;
    nmp_params_init(&par);
    par.threads = 1;
    par.progress = nmp_test_stop_now;
    par.progress_user = &calls;
    nmp_assert_ok(nmp_solve(pb, "lap", &par, perm, 1, &res, NULL));
    assert_true(calls >= 1);
    assert_int_equal(res.status, NMP_STATUS_INTERRUPTED);
    assert_true(nmp_perm_is_valid(perm, 2048));
    free(perm);
    nmp_problem_free(pb);
}

static void solver_out_of_memory(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(16, 64, 2, 4, 0, 8);
    int32_t perm[64];
    nmp_result res;
    nmp_err e = NMP_ERR_NOMEM;
    for (int64_t k = 0; e == NMP_ERR_NOMEM && k < 100; k++) {
        nmp_alloc_fail_after(k);
        e = nmp_solve(pb, "lap", NULL, perm, 1, &res, NULL);
        nmp_alloc_fail_after(-1);
    }
    nmp_assert_ok(e);
    nmp_lap_move *lm = NULL;
    nmp_alloc_fail_after(0);
    assert_int_equal(nmp_lap_move_create(pb, 4, 1, 1, &lm), NMP_ERR_NOMEM);
    nmp_alloc_fail_after(-1);
    assert_null(lm);
    nmp_problem_free(pb);
}

static void ops_table(void **state)
{
    (void)state;
    const nmp_solver_ops *ops = nmp_solver_find("lap");
    assert_ptr_equal(ops, &nmp_lap_ops);
    assert_non_null(ops->summary);
    nmp_params par;
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "block", 1)); /* below its range */
    assert_int_equal(nmp_params_check(&par, ops, NULL), NMP_ERR_ARG);
    ops->destroy(NULL);
    /* one group: nothing to do */
    nmp_problem *pb = nmp_test_problem(8, 4, 2, 4, 0, 1);
    int32_t perm[4] = { 3, 1, 2, 0 };
    nmp_result res;
    nmp_assert_ok(nmp_solve(pb, "lap", NULL, perm, 0, &res, NULL));
    assert_true(nmp_perm_is_valid(perm, 4));
    nmp_problem_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lap_brute_force),
        cmocka_unit_test(lap_larger_against_greedy_bound),
        cmocka_unit_test(lap_arguments),
        cmocka_unit_test(move_optimal_per_position),
        cmocka_unit_test(move_round_api),
        cmocka_unit_test(fill_tile_isas_agree),
        cmocka_unit_test(move_rounds_isas_agree),
        cmocka_unit_test(solver_contract_seeds_threads),
        cmocka_unit_test(solver_time_limit_and_interrupt),
        cmocka_unit_test(solver_out_of_memory),
        cmocka_unit_test(ops_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

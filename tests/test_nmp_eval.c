/* test_nmp_eval.c: cached move evaluation: swap and regroup deltas against full recomputation */
#include "nmp_test.h"

static const int patterns[][2] = { { 1, 2 }, { 2, 4 }, { 1, 4 }, { 3, 4 }, { 2, 8 }, { 4, 8 },
                                   { 5, 16 }, { 16, 32 } };
#define NPATTERNS (sizeof patterns / sizeof patterns[0])

/* Random problem: kind 0 |N(0,1)|, 1 U[0,1), 2 integers 0..3 (ties everywhere), 3 integers 0..1
 * (mostly ties, many zeros). */
static nmp_problem *instance(int64_t rows, int64_t cols, int n, int m, int kind, nmp_rng *r)
{
    float *w = malloc((size_t)(rows * cols) * sizeof *w);
    assert_non_null(w);
    for (int64_t k = 0; k < rows * cols; k++)
        w[k] = kind == 0 ? (float)fabs(nmp_rng_normal(r))
             : kind == 1 ? (float)nmp_rng_uniform(r)
             : kind == 2 ? (float)nmp_rng_below(r, 4)
                         : (float)nmp_rng_below(r, 2);
    nmp_problem_desc d = { 0 };
    d.weights = nmp_matrix_view(w, rows, cols);
    d.nm.n = n;
    d.nm.m = m;
    nmp_problem *pb = NULL;
    nmp_assert_ok(nmp_problem_create(&d, &pb, NULL));
    free(w);
    return pb;
}

/* score(perm with slots a and b exchanged) - score(perm), from the two groups that change */
static double naive_swap_delta(const nmp_problem *pb, const int32_t *perm, int64_t a, int64_t b)
{
    const int m = nmp_problem_pattern(pb).m;
    const int64_t g = a / m, h = b / m;
    int32_t cg[NMP_MAX_M], ch[NMP_MAX_M];
    memcpy(cg, perm + g * m, (size_t)m * sizeof *cg);
    memcpy(ch, perm + h * m, (size_t)m * sizeof *ch);
    const double before = nmp_test_naive_group(pb, cg) + nmp_test_naive_group(pb, ch);
    const int32_t t = cg[a % m];
    cg[a % m] = ch[b % m];
    ch[b % m] = t;
    return nmp_test_naive_group(pb, cg) + nmp_test_naive_group(pb, ch) - before;
}

/* A pair of slots in different groups (cols / m >= 2). */
static void cross_pair(nmp_rng *r, int64_t cols, int m, int64_t *a, int64_t *b)
{
    *a = (int64_t)nmp_rng_below(r, (uint64_t)cols);
    *b = (int64_t)nmp_rng_below(r, (uint64_t)(cols - m));
    if (*b >= *a / m * m)
        *b += m;
}

/* Thousands of random cross-group swaps on every pattern and kind: the O(rows) delta equals the
 * recomputed change (exactly on the small-integer kinds, where no sum rounds). */
static void swap_delta_matches_recomputation(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 1);
    int64_t checked = 0;
    for (size_t p = 0; p < NPATTERNS; p++) {
        const int n = patterns[p][0], m = patterns[p][1];
        for (int kind = 0; kind < 4; kind++) {
            const int64_t rows = kind == 0 ? 200 : 1 + (int64_t)nmp_rng_below(&r, 100);
            const int64_t cols = (int64_t)m * (2 + (int64_t)nmp_rng_below(&r, 5));
            nmp_problem *pb = instance(rows, cols, n, m, kind, &r);
            int32_t *perm = malloc((size_t)cols * sizeof *perm);
            assert_non_null(perm);
            nmp_perm_random(perm, cols, &r);
            nmp_eval *ev = NULL;
            nmp_assert_ok(nmp_eval_create(pb, perm, &ev));
            assert_ptr_equal(nmp_eval_problem(ev), pb);
            for (int trial = 0; trial < 400; trial++) {
                int64_t a, b;
                cross_pair(&r, cols, m, &a, &b);
                const double d = nmp_eval_swap_delta(ev, a, b);
                const double expect = naive_swap_delta(pb, nmp_eval_perm(ev), a, b);
                if (kind >= 2)
                    nmp_assert_close(d, expect, 0);
                else
                    nmp_assert_close(d, expect, 1e-4 * (fabs(expect) + 1));
                assert_true(nmp_eval_swap_delta(ev, b, a) == d); /* symmetric */
                checked++;
                if (trial % 8 == 0) { /* move on, so deltas are checked at many states */
                    const double before = nmp_eval_score(ev);
                    nmp_eval_swap(ev, a, b);
                    nmp_assert_close(nmp_eval_score(ev) - before, expect, 1e-4 * (fabs(expect) + 1));
                }
            }
            /* the same from a full nmp_score recomputation at the final state */
            for (int trial = 0; trial < 10; trial++) {
                int64_t a, b;
                cross_pair(&r, cols, m, &a, &b);
                memcpy(perm, nmp_eval_perm(ev), (size_t)cols * sizeof *perm);
                double s0, s1;
                nmp_assert_ok(nmp_score(pb, perm, &s0));
                const int32_t t = perm[a];
                perm[a] = perm[b];
                perm[b] = t;
                nmp_assert_ok(nmp_score(pb, perm, &s1));
                nmp_assert_close(nmp_eval_swap_delta(ev, a, b), s1 - s0, 1e-4 * (fabs(s1 - s0) + 1));
            }
            nmp_eval_free(ev);
            free(perm);
            nmp_problem_free(pb);
        }
    }
    assert_true(checked >= 10000);
}

static void same_group_swap_is_zero(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 2);
    for (size_t p = 0; p < NPATTERNS; p++) {
        const int n = patterns[p][0], m = patterns[p][1];
        nmp_problem *pb = instance(17, 3 * m, n, m, 0, &r);
        nmp_eval *ev = NULL;
        nmp_assert_ok(nmp_eval_create(pb, NULL, &ev));
        const double score = nmp_eval_score(ev);
        for (int64_t g = 0; g < 3; g++)
            for (int x = 0; x < m; x++)
                for (int y = 0; y < m; y++)
                    assert_true(nmp_eval_swap_delta(ev, g * m + x, g * m + y) == 0.0);
        nmp_eval_swap(ev, m, m + m - 1); /* within group 1: perm changes, score does not */
        assert_int_equal(nmp_eval_perm(ev)[m], m + m - 1);
        assert_int_equal(nmp_eval_perm(ev)[m + m - 1], m);
        nmp_assert_close(nmp_eval_score(ev), score, 1e-9 * score);
        nmp_eval_free(ev);
        nmp_problem_free(pb);
    }
}

/* out[x*m + y] is the delta of swapping g*m+x with h*m+y, for random group pairs and states. */
static void pair_deltas_consistent(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 3);
    for (size_t p = 0; p < NPATTERNS; p++) {
        const int n = patterns[p][0], m = patterns[p][1];
        for (int kind = 0; kind < 4; kind++) {
            const int64_t cols = 5 * (int64_t)m, groups = 5;
            nmp_problem *pb = instance(70, cols, n, m, kind, &r);
            int32_t perm[5 * NMP_MAX_M];
            double out[NMP_MAX_M * NMP_MAX_M];
            nmp_perm_random(perm, cols, &r);
            nmp_eval *ev = NULL;
            nmp_assert_ok(nmp_eval_create(pb, perm, &ev));
            for (int trial = 0; trial < 6; trial++) {
                const int64_t g = (int64_t)nmp_rng_below(&r, groups);
                int64_t h = (int64_t)nmp_rng_below(&r, groups - 1);
                h += h >= g;
                nmp_eval_pair_deltas(ev, g, h, out);
                for (int x = 0; x < m; x++)
                    for (int y = 0; y < m; y++) {
                        const double d = nmp_eval_swap_delta(ev, g * m + x, h * m + y);
                        nmp_assert_close(out[x * m + y], d, 1e-9 * (fabs(d) + 1));
                        if (x == 0 && y % 3 == 0) {
                            const double e = naive_swap_delta(pb, nmp_eval_perm(ev), g * m + x,
                                                              h * m + y);
                            nmp_assert_close(out[x * m + y], e, 1e-4 * (fabs(e) + 1));
                        }
                    }
                int64_t a, b;
                cross_pair(&r, cols, m, &a, &b);
                nmp_eval_swap(ev, a, b);
            }
            nmp_eval_free(ev);
            nmp_problem_free(pb);
        }
    }
}

/* Shuffles the columns held by k distinct random groups into new[] (same set of columns). */
static int pick_regroup(nmp_rng *r, const int32_t *perm, int64_t groups, int m, int64_t *gs,
                        int32_t *cols)
{
    const int k = 1 + (int)nmp_rng_below(r, (uint64_t)(groups < 4 ? groups : 4));
    int32_t order[64];
    nmp_perm_random(order, groups, r); /* groups <= 64 here */
    for (int t = 0; t < k; t++) {
        gs[t] = order[t];
        memcpy(cols + t * m, perm + gs[t] * m, (size_t)m * sizeof *cols);
    }
    for (int64_t u = (int64_t)k * m - 1; u > 0; u--) {
        const int64_t v = (int64_t)nmp_rng_below(r, (uint64_t)u + 1);
        const int32_t x = cols[u];
        cols[u] = cols[v];
        cols[v] = x;
    }
    return k;
}

/* regroup_delta equals the recomputed change; regroup applies it. */
static void regroup_delta_matches_recomputation(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 4);
    for (size_t p = 0; p < NPATTERNS; p++) {
        const int n = patterns[p][0], m = patterns[p][1];
        for (int kind = 0; kind < 4; kind++) {
            const int64_t groups = 6, cols = groups * m;
            nmp_problem *pb = instance(40, cols, n, m, kind, &r);
            nmp_eval *ev = NULL;
            nmp_assert_ok(nmp_eval_create(pb, NULL, &ev));
            for (int trial = 0; trial < 30; trial++) {
                int64_t gs[4];
                int32_t cols_new[4 * NMP_MAX_M];
                const int k = pick_regroup(&r, nmp_eval_perm(ev), groups, m, gs, cols_new);
                double expect = 0, scale = 0; /* scale: the group scores the delta is taken from */
                for (int t = 0; t < k; t++) {
                    const double after = nmp_test_naive_group(pb, cols_new + t * m);
                    const double before = nmp_test_naive_group(pb, nmp_eval_perm(ev) + gs[t] * m);
                    expect += after - before;
                    scale += after + before;
                }
                const double d = nmp_eval_regroup_delta(ev, gs, k, cols_new);
                if (kind >= 2)
                    nmp_assert_close(d, expect, 0);
                /* group values are float row sums (n terms each): float epsilon of the groups */
                nmp_assert_close(d, expect, 2e-7 * scale + 1e-9);
                const double before = nmp_eval_score(ev);
                nmp_eval_regroup(ev, gs, k, cols_new);
                assert_true(nmp_perm_is_valid(nmp_eval_perm(ev), cols));
                for (int t = 0; t < k; t++)
                    assert_memory_equal(nmp_eval_perm(ev) + gs[t] * m, cols_new + t * m,
                                        (size_t)m * sizeof *cols_new);
                nmp_assert_close(nmp_eval_score(ev) - before, expect, 2e-7 * scale + 1e-6 * before);
            }
            nmp_eval_free(ev);
            nmp_problem_free(pb);
        }
    }
}

/* After 1000 random swaps (some within a group) and regroups, the cached score and group scores
 * still equal a fresh nmp_score of the eval's perm, and the perm is a bijection. */
static void long_sequence_stays_exact(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 5);
    for (size_t p = 0; p < NPATTERNS; p++) {
        const int n = patterns[p][0], m = patterns[p][1];
        for (int kind = 0; kind < 4; kind += 1) {
            const int64_t cols = (int64_t)m * 8, groups = 8, rows = 65;
            nmp_problem *pb = instance(rows, cols, n, m, kind, &r);
            nmp_eval *ev = NULL;
            int32_t *perm = malloc((size_t)cols * sizeof *perm);
            double gs[8];
            assert_non_null(perm);
            nmp_perm_random(perm, cols, &r);
            nmp_assert_ok(nmp_eval_create(pb, perm, &ev));
            for (int step = 0; step < 1000; step++) {
                if (step % 5 == 4) {
                    int64_t g[4];
                    int32_t c[4 * NMP_MAX_M];
                    const int k = pick_regroup(&r, nmp_eval_perm(ev), groups, m, g, c);
                    nmp_eval_regroup(ev, g, k, c);
                } else {
                    const int64_t a = (int64_t)nmp_rng_below(&r, (uint64_t)cols);
                    const int64_t b = (int64_t)nmp_rng_below(&r, (uint64_t)cols);
                    nmp_eval_swap(ev, a, b);
                }
            }
            memcpy(perm, nmp_eval_perm(ev), (size_t)cols * sizeof *perm);
            assert_true(nmp_perm_is_valid(perm, cols));
            double kept;
            nmp_assert_ok(nmp_score(pb, perm, &kept));
            nmp_assert_ok(nmp_score_groups(pb, perm, gs));
            nmp_assert_close(nmp_eval_score(ev), kept, 1e-6 * kept + 1e-12);
            double sum = 0;
            for (int64_t g = 0; g < groups; g++) {
                nmp_assert_close(nmp_eval_group_score(ev, g), gs[g], 1e-6 * gs[g] + 1e-12);
                sum += nmp_eval_group_score(ev, g);
            }
            nmp_assert_close(sum, nmp_eval_score(ev), 1e-9 * sum + 1e-12);
            /* reset to another perm forgets the history */
            nmp_perm_random(perm, cols, &r);
            nmp_eval_reset(ev, perm);
            assert_memory_equal(nmp_eval_perm(ev), perm, (size_t)cols * sizeof *perm);
            nmp_assert_ok(nmp_score(pb, perm, &kept));
            nmp_assert_close(nmp_eval_score(ev), kept, 1e-9 * kept + 1e-12);
            nmp_eval_reset(ev, NULL);
            nmp_assert_close(nmp_eval_score(ev), nmp_score_identity(pb), 1e-9 * kept + 1e-12);
            free(perm);
            nmp_eval_free(ev);
            nmp_problem_free(pb);
        }
    }
}

/* A tall matrix: the blocked float partial sums keep a delta accurate over 100000 rows. */
static void tall_matrix_delta_accuracy(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 6);
    nmp_problem *pb = instance(100000, 8, 2, 4, 0, &r);
    nmp_eval *ev = NULL;
    nmp_assert_ok(nmp_eval_create(pb, NULL, &ev));
    for (int64_t a = 0; a < 4; a++)
        for (int64_t b = 4; b < 8; b++) {
            const double d = nmp_eval_swap_delta(ev, a, b);
            const double e = naive_swap_delta(pb, nmp_eval_perm(ev), a, b);
            /* measured: |error| <= 3.2e-5 with 64-row float blocks; a single float sum over
             * all rows is off by up to 4.5e-4 on this instance (fails at 8e-5) */
            nmp_assert_close(d, e, 8e-5);
        }
    nmp_eval_free(ev);
    nmp_problem_free(pb);
}

static void invalid_perm_and_allocation_failures(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 7);
    nmp_problem *pb = instance(9, 12, 2, 4, 0, &r);
    int32_t perm[12];
    nmp_perm_identity(perm, 12);
    perm[0] = 11;
    nmp_eval *ev = (nmp_eval *)(uintptr_t)1;
    assert_int_equal(nmp_eval_create(pb, perm, &ev), NMP_ERR_ARG);
    assert_null(ev);
    nmp_perm_random(perm, 12, &r);
    double expect;
    nmp_assert_ok(nmp_score(pb, perm, &expect));
    for (int with_perm = 0; with_perm < 2; with_perm++) {
        nmp_err e = NMP_ERR_NOMEM;
        for (int64_t k = 0; e != NMP_OK; k++) {
            assert_true(k < 20);
            ev = (nmp_eval *)(uintptr_t)1;
            nmp_alloc_fail_after(k);
            e = nmp_eval_create(pb, with_perm ? perm : NULL, &ev);
            nmp_alloc_fail_after(-1);
            if (e != NMP_OK) {
                assert_int_equal(e, NMP_ERR_NOMEM);
                assert_null(ev);
            }
        }
        nmp_assert_close(nmp_eval_score(ev), with_perm ? expect : nmp_score_identity(pb),
                         1e-9 * expect);
        nmp_eval_free(ev);
    }
    nmp_eval_free(NULL);
    nmp_problem_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(swap_delta_matches_recomputation),
        cmocka_unit_test(same_group_swap_is_zero),
        cmocka_unit_test(pair_deltas_consistent),
        cmocka_unit_test(regroup_delta_matches_recomputation),
        cmocka_unit_test(long_sequence_stays_exact),
        cmocka_unit_test(tall_matrix_delta_accuracy),
        cmocka_unit_test(invalid_perm_and_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

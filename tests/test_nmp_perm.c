/* test_nmp_perm.c: validity, inverse, composition and the canonical form of channel permutations */
#include "nmp_test.h"

static void validity(void **state)
{
    (void)state;
    const int32_t ok[] = { 3, 0, 2, 1 };
    const int32_t dup[] = { 3, 0, 3, 1 };
    const int32_t high[] = { 4, 0, 2, 1 };
    const int32_t neg[] = { -1, 0, 2, 1 };
    const int32_t huge[] = { INT32_MAX, 0, 2, 1 };
    const int32_t low[] = { INT32_MIN, 0, 2, 1 };
    assert_true(nmp_perm_is_valid(ok, 4));
    assert_false(nmp_perm_is_valid(dup, 4));
    assert_false(nmp_perm_is_valid(high, 4));
    assert_false(nmp_perm_is_valid(neg, 4));
    assert_false(nmp_perm_is_valid(huge, 4));
    assert_false(nmp_perm_is_valid(low, 4));
    assert_false(nmp_perm_is_valid(NULL, 4));
    assert_true(nmp_perm_is_valid(ok, 0)); /* the empty perm */
    assert_false(nmp_perm_is_valid(ok, 3)); /* 3 is out of range for n = 3 */
    int32_t id[1000];
    nmp_perm_identity(id, 1000);
    assert_true(nmp_perm_is_valid(id, 1000));
    for (int k = 0; k < 1000; k++)
        assert_int_equal(id[k], k);
    id[999] = 0; /* duplicate far from the first */
    assert_false(nmp_perm_is_valid(id, 1000));
}

static void invert_and_compose(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 11);
    enum { N = 300 };
    int32_t p[N], q[N], pinv[N], qinv[N], pq[N], pqinv[N], x[N], y[N], id[N];
    nmp_perm_identity(id, N);
    for (int trial = 0; trial < 20; trial++) {
        nmp_perm_random(p, N, &r);
        nmp_perm_random(q, N, &r);
        nmp_perm_invert(p, pinv, N);
        assert_true(nmp_perm_is_valid(pinv, N));
        for (int k = 0; k < N; k++)
            assert_int_equal(pinv[p[k]], k);
        nmp_perm_compose(p, pinv, x, N); /* p[pinv[k]] = k */
        assert_memory_equal(x, id, sizeof id);
        nmp_perm_compose(pinv, p, x, N);
        assert_memory_equal(x, id, sizeof id);
        nmp_perm_compose(p, id, x, N);
        assert_memory_equal(x, p, sizeof p);
        nmp_perm_compose(id, p, x, N);
        assert_memory_equal(x, p, sizeof p);
        /* (p o q)^-1 = q^-1 o p^-1, and permuting data by p then by q matches p o q */
        nmp_perm_compose(p, q, pq, N);
        assert_true(nmp_perm_is_valid(pq, N));
        nmp_perm_invert(pq, pqinv, N);
        nmp_perm_invert(q, qinv, N);
        nmp_perm_compose(qinv, pinv, y, N);
        assert_memory_equal(pqinv, y, sizeof y);
        int32_t data[N], by_p[N], by_pq[N];
        for (int k = 0; k < N; k++)
            data[k] = 1000 + k;
        for (int k = 0; k < N; k++)
            by_p[k] = data[p[k]];
        for (int k = 0; k < N; k++)
            by_pq[k] = by_p[q[k]];
        for (int k = 0; k < N; k++)
            assert_int_equal(by_pq[k], data[pq[k]]);
    }
}

/* Columns sorted within groups, groups ordered by their first column. */
static void assert_canonical(const int32_t *p, int64_t n, int m)
{
    for (int64_t g = 0; g < n / m; g++) {
        for (int t = 1; t < m; t++)
            assert_true(p[g * m + t - 1] < p[g * m + t]);
        if (g > 0)
            assert_true(p[(g - 1) * m] < p[g * m]);
    }
}

static void canonical_form(void **state)
{
    (void)state;
    const int ms[] = { 2, 4, 8, 16 };
    nmp_rng r;
    nmp_rng_seed(&r, 5);
    for (int t = 0; t < 4; t++) {
        const int m = ms[t];
        const int64_t n = 8 * m;
        nmp_problem *pb = nmp_test_problem(16, n, m / 2, m, 0, 40 + (uint64_t)t);
        for (int trial = 0; trial < 20; trial++) {
            int32_t p[128], c[128], c2[128], shuffled[128];
            nmp_perm_random(p, n, &r);
            memcpy(c, p, sizeof c);
            nmp_perm_canonical(c, n, m);
            assert_true(nmp_perm_is_valid(c, n));
            assert_canonical(c, n, m);
            /* idempotent */
            memcpy(c2, c, sizeof c);
            nmp_perm_canonical(c2, n, m);
            assert_memory_equal(c, c2, (size_t)n * sizeof *c);
            /* same groups as p (as sets): every column's group holds the same columns */
            int32_t group_of_p[128], group_of_c[128];
            for (int64_t k = 0; k < n; k++) {
                group_of_p[p[k]] = (int32_t)(k / m);
                group_of_c[c[k]] = (int32_t)(k / m);
            }
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < n; j++)
                    assert_int_equal(group_of_p[i] == group_of_p[j], group_of_c[i] == group_of_c[j]);
            /* score-invariant */
            double sp, sc;
            nmp_assert_ok(nmp_score(pb, p, &sp));
            nmp_assert_ok(nmp_score(pb, c, &sc));
            nmp_assert_close(sp, sc, 1e-9 * sp);
            /* shuffling within groups and permuting the groups gives the same form */
            memcpy(shuffled, p, sizeof shuffled);
            for (int64_t g = 0; g < n / m; g++) {
                int32_t w[NMP_MAX_M];
                nmp_perm_random(w, m, &r);
                int32_t tmp[NMP_MAX_M];
                for (int u = 0; u < m; u++)
                    tmp[u] = p[g * m + w[u]];
                memcpy(shuffled + g * m, tmp, (size_t)m * sizeof *tmp);
            }
            int32_t gp[8], moved[128];
            nmp_perm_random(gp, n / m, &r);
            for (int64_t g = 0; g < n / m; g++)
                memcpy(moved + g * m, shuffled + gp[g] * m, (size_t)m * sizeof *moved);
            nmp_perm_canonical(moved, n, m);
            assert_memory_equal(moved, c, (size_t)n * sizeof *c);
        }
        nmp_problem_free(pb);
    }
    /* the identity is canonical */
    int32_t id[64], c[64];
    nmp_perm_identity(id, 64);
    memcpy(c, id, sizeof c);
    nmp_perm_canonical(c, 64, 4);
    assert_memory_equal(c, id, sizeof id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(validity),
        cmocka_unit_test(invert_and_compose),
        cmocka_unit_test(canonical_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_nmp_rng.c: xoshiro256** streams, bounded and normal draws, random perms, NumPy's MT19937 */
#include "nmp_test.h"

static void same_seed_same_stream(void **state)
{
    (void)state;
    nmp_rng a, b;
    nmp_rng_seed(&a, 12345);
    nmp_rng_seed(&b, 12345);
    for (int k = 0; k < 1000; k++)
        assert_true(nmp_rng_next(&a) == nmp_rng_next(&b));
}

static void different_seeds_differ(void **state)
{
    (void)state;
    /* neighbouring seeds, seed 0 included (splitmix64 keeps the state from being all zero) */
    for (uint64_t s = 0; s < 8; s++) {
        nmp_rng a, b;
        nmp_rng_seed(&a, s);
        nmp_rng_seed(&b, s + 1);
        int same = 0;
        for (int k = 0; k < 100; k++)
            same += nmp_rng_next(&a) == nmp_rng_next(&b);
        assert_int_equal(same, 0);
    }
    nmp_rng z;
    nmp_rng_seed(&z, 0);
    assert_true(z.s[0] | z.s[1] | z.s[2] | z.s[3]);
    uint64_t x = nmp_rng_next(&z), y = nmp_rng_next(&z);
    assert_true(x != y);
}

static void uniform_in_unit_interval(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 7);
    double sum = 0;
    const int draws = 100000;
    for (int k = 0; k < draws; k++) {
        const double u = nmp_rng_uniform(&r);
        assert_true(u >= 0.0 && u < 1.0);
        sum += u;
    }
    nmp_assert_close(sum / draws, 0.5, 0.01);
}

/* Range for several n (powers of two, odd, huge), and a chi-square test of 10 buckets: 9 degrees
 * of freedom, so 40 is far beyond the 99.99th percentile (about 33.7) and a fair stream passes. */
static void below_range_and_uniformity(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 99);
    const uint64_t ns[] = { 1, 2, 3, 7, 10, 64, 1000003, (uint64_t)1 << 63, ((uint64_t)1 << 63) + 1,
                            UINT64_MAX };
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++)
        for (int k = 0; k < 2000; k++)
            assert_true(nmp_rng_below(&r, ns[t]) < ns[t]);

    enum { BUCKETS = 10, DRAWS = 200000 };
    int64_t hits[BUCKETS] = { 0 };
    for (int k = 0; k < DRAWS; k++)
        hits[nmp_rng_below(&r, BUCKETS)]++;
    const double expect = (double)DRAWS / BUCKETS;
    double chi2 = 0;
    for (int b = 0; b < BUCKETS; b++)
        chi2 += (hits[b] - expect) * (hits[b] - expect) / expect;
    assert_true(chi2 < 40.0);
    assert_true(chi2 > 0.0); /* not suspiciously perfect either */

    /* n = 3 * 2^62: rejection matters; values in the upper third must show up about 1/3 */
    const uint64_t big = (uint64_t)3 << 62;
    int upper = 0;
    for (int k = 0; k < 30000; k++)
        upper += nmp_rng_below(&r, big) >= ((uint64_t)1 << 63);
    nmp_assert_close(upper / 30000.0, 1.0 / 3.0, 0.02);
}

static void normal_moments(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 2024);
    const int draws = 100000;
    double s1 = 0, s2 = 0, s4 = 0;
    int beyond2 = 0;
    for (int k = 0; k < draws; k++) {
        const double x = nmp_rng_normal(&r);
        assert_true(isfinite(x));
        s1 += x;
        s2 += x * x;
        s4 += x * x * x * x;
        beyond2 += fabs(x) > 2.0;
    }
    const double mean = s1 / draws, var = s2 / draws - mean * mean;
    nmp_assert_close(mean, 0.0, 0.02);        /* sd of the mean: 0.0032 */
    nmp_assert_close(var, 1.0, 0.03);         /* sd of the variance: 0.0045 */
    nmp_assert_close(s4 / draws, 3.0, 0.15);  /* kurtosis of a normal */
    nmp_assert_close(beyond2 / (double)draws, 0.0455, 0.005);
}

static void random_perm_is_bijection_and_uniform(void **state)
{
    (void)state;
    nmp_rng r;
    nmp_rng_seed(&r, 3);
    int32_t p[257];
    for (int64_t n = 0; n <= 257; n += 1 + n / 3) {
        nmp_perm_random(p, n, &r);
        assert_true(nmp_perm_is_valid(p, n));
    }
    /* the 6 perms of 3 elements, each about 1/6 of the time (chi-square, 5 dof, 99.99%: 25.7) */
    enum { DRAWS = 60000 };
    int64_t hits[9] = { 0 };
    for (int k = 0; k < DRAWS; k++) {
        nmp_perm_random(p, 3, &r);
        hits[p[0] * 3 + p[1]]++;
    }
    double chi2 = 0;
    int nonzero = 0;
    for (int b = 0; b < 9; b++)
        if (hits[b]) {
            nonzero++;
            chi2 += (hits[b] - DRAWS / 6.0) * (hits[b] - DRAWS / 6.0) / (DRAWS / 6.0);
        }
    assert_int_equal(nonzero, 6);
    assert_true(chi2 < 35.0);
    /* same seed, same perm */
    int32_t q[100], s[100];
    nmp_rng a, b;
    nmp_rng_seed(&a, 77);
    nmp_rng_seed(&b, 77);
    nmp_perm_random(q, 100, &a);
    nmp_perm_random(s, 100, &b);
    assert_memory_equal(q, s, sizeof q);
}

/* Published MT19937 reference outputs for init_genrand(5489) (the C++ std::mt19937 default seed);
 * the C++ standard requires the 10000th output to be 4123659995. */
static void mt19937_reference_values(void **state)
{
    (void)state;
    const uint32_t first[] = { 3499211612u, 581869302u, 3890346734u, 3586334585u, 545404204u };
    nmp_mt19937 g;
    nmp_mt19937_seed(&g, 5489);
    for (int k = 0; k < 5; k++)
        assert_true(nmp_mt19937_next(&g) == first[k]);
    uint32_t x = 0;
    for (int k = 5; k < 10000; k++)
        x = nmp_mt19937_next(&g);
    assert_true(x == 4123659995u);
}

/* np.random.seed(1); np.random.rand() gives 0.417022004702574, then 0.7203244934421581 (the
 * first values of the apex/ASP examples' weights). Bit-exact: both sides compute the same double. */
static void mt19937_matches_numpy(void **state)
{
    (void)state;
    nmp_mt19937 g;
    nmp_mt19937_seed(&g, 1);
    assert_true(nmp_mt19937_uniform(&g) == 0.417022004702574);
    assert_true(nmp_mt19937_uniform(&g) == 0.7203244934421581);
    nmp_mt19937_seed(&g, 1);
    double sum = 0;
    for (int k = 0; k < 100000; k++) {
        const double u = nmp_mt19937_uniform(&g);
        assert_true(u >= 0.0 && u < 1.0);
        sum += u;
    }
    nmp_assert_close(sum / 100000, 0.5, 0.01);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_seed_same_stream),
        cmocka_unit_test(different_seeds_differ),
        cmocka_unit_test(uniform_in_unit_interval),
        cmocka_unit_test(below_range_and_uniformity),
        cmocka_unit_test(normal_moments),
        cmocka_unit_test(random_perm_is_bijection_and_uniform),
        cmocka_unit_test(mt19937_reference_values),
        cmocka_unit_test(mt19937_matches_numpy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_nmp_alloc.c: the library heap: zero sizes, failure injection and the allocation count */
#include "nmp_test.h"

static void zero_sizes_are_not_null(void **state)
{
    (void)state;
    nmp_alloc_fail_after(-1);
    void *a = nmp_malloc(0), *b = nmp_calloc(0, 8), *c = nmp_calloc(8, 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    void *d = nmp_realloc(a, 0);
    assert_non_null(d);
    nmp_free(d);
    nmp_free(b);
    nmp_free(c);
    nmp_free(NULL);
}

static void calloc_zeroes_and_realloc_keeps_contents(void **state)
{
    (void)state;
    nmp_alloc_fail_after(-1);
    unsigned char *p = nmp_calloc(1000, 1);
    assert_non_null(p);
    for (int k = 0; k < 1000; k++)
        assert_int_equal(p[k], 0);
    for (int k = 0; k < 1000; k++)
        p[k] = (unsigned char)k;
    unsigned char *q = nmp_realloc(p, 100000);
    assert_non_null(q);
    for (int k = 0; k < 1000; k++)
        assert_int_equal(q[k], (unsigned char)k);
    nmp_free(q);
}

static void count_counts_every_kind(void **state)
{
    (void)state;
    nmp_alloc_fail_after(-1); /* also resets the count */
    assert_int_equal(nmp_alloc_count(), 0);
    void *a = nmp_malloc(8);
    void *b = nmp_calloc(2, 8);
    a = nmp_realloc(a, 64);
    assert_int_equal(nmp_alloc_count(), 3);
    nmp_free(a); /* frees are not counted */
    nmp_free(b);
    assert_int_equal(nmp_alloc_count(), 3);
}

/* The k-th allocation from now and every later one fails; earlier ones succeed. */
static void fail_after_k(void **state)
{
    (void)state;
    for (int64_t k = 0; k < 5; k++) {
        void *p[8];
        nmp_alloc_fail_after(k);
        for (int t = 0; t < 8; t++) {
            p[t] = t % 3 == 0 ? nmp_malloc(16) : t % 3 == 1 ? nmp_calloc(4, 4) : nmp_realloc(NULL, 16);
            if (t < k)
                assert_non_null(p[t]);
            else
                assert_null(p[t]);
        }
        nmp_alloc_fail_after(-1);
        for (int t = 0; t < 8; t++)
            nmp_free(p[t]);
    }
    void *p = nmp_malloc(16);
    assert_non_null(p);
    nmp_free(p);
}

/* A failed realloc leaves the block alone (as realloc does), so the caller can still free it. */
static void failed_realloc_keeps_block(void **state)
{
    (void)state;
    nmp_alloc_fail_after(-1);
    int *p = nmp_malloc(4 * sizeof *p);
    assert_non_null(p);
    p[3] = 42;
    nmp_alloc_fail_after(0);
    assert_null(nmp_realloc(p, 1 << 20));
    nmp_alloc_fail_after(-1);
    assert_int_equal(p[3], 42);
    nmp_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(zero_sizes_are_not_null),
        cmocka_unit_test(calloc_zeroes_and_realloc_keeps_contents),
        cmocka_unit_test(count_counts_every_kind),
        cmocka_unit_test(fail_after_k),
        cmocka_unit_test(failed_realloc_keeps_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* nmp_test.h: helpers shared by the cmocka tests */
#ifndef NMP_TEST_H
#define NMP_TEST_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nmperm.h"

/* cmocka 1.1.5's assert_float_equal casts to float; scores need doubles. */
#define nmp_assert_close(a, b, tol)                                                                \
    do {                                                                                           \
        const double nmp_a_ = (a), nmp_b_ = (b), nmp_t_ = (tol);                                   \
        if (!(fabs(nmp_a_ - nmp_b_) <= nmp_t_)) {                                                  \
            print_error("%s = %.9g, %s = %.9g, differ by more than %g\n", #a, nmp_a_, #b, nmp_b_,  \
                        nmp_t_);                                                                   \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#define nmp_assert_ok(call) assert_int_equal((call), NMP_OK)

/* A rows x cols row-major matrix of |N(0,1)| (kind 0) or U[0,1) (kind 1) values from seed. */
static inline float *nmp_test_matrix(int64_t rows, int64_t cols, int kind, uint64_t seed)
{
    nmp_rng r;
    nmp_rng_seed(&r, seed);
    float *a = malloc((size_t)(rows * cols) * sizeof *a);
    assert_non_null(a);
    for (int64_t k = 0; k < rows * cols; k++)
        a[k] = kind == 0 ? (float)fabs(nmp_rng_normal(&r)) : (float)nmp_rng_uniform(&r);
    return a;
}

/* A problem over a fresh random matrix; the matrix is freed (the problem holds a copy). */
static inline nmp_problem *nmp_test_problem(int64_t rows, int64_t cols, int n, int m, int kind,
                                            uint64_t seed)
{
    float *a = nmp_test_matrix(rows, cols, kind, seed);
    nmp_problem_desc d = { 0 };
    d.weights = nmp_matrix_view(a, rows, cols);
    d.nm.n = n;
    d.nm.m = m;
    d.objective = NMP_OBJ_ABS;
    nmp_problem *pb = NULL;
    nmp_msg msg = { { 0 } };
    assert_int_equal(nmp_problem_create(&d, &pb, &msg), NMP_OK);
    free(a);
    return pb;
}

#endif /* NMP_TEST_H */

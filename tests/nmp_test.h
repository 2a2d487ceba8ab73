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

/* kept score of perm (NULL: identity) by nmp_score, asserting that the call works */
static inline double nmp_test_score(const nmp_problem *pb, const int32_t *perm)
{
    double kept;
    nmp_assert_ok(nmp_score(pb, perm, &kept));
    return kept;
}

/* qsort comparator: doubles in descending order */
static inline int nmp_test_cmp_desc(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* sum_j top-n of the m columns c[], exactly (doubles, sorted): the naive group score */
static inline double nmp_test_naive_group(const nmp_problem *pb, const int32_t *c)
{
    const int64_t rows = nmp_problem_rows(pb);
    const int n = nmp_problem_pattern(pb).n, m = nmp_problem_pattern(pb).m;
    const float *s = nmp_problem_saliency(pb);
    double total = 0, v[NMP_MAX_M];
    for (int64_t j = 0; j < rows; j++) {
        for (int t = 0; t < m; t++)
            v[t] = s[(int64_t)c[t] * rows + j];
        qsort(v, (size_t)m, sizeof *v, nmp_test_cmp_desc);
        for (int t = 0; t < n; t++)
            total += v[t];
    }
    return total;
}

/* The largest gain of any single swap of two columns in different groups, by brute force. */
static inline double nmp_test_best_swap_gain(const nmp_problem *pb, const int32_t *perm)
{
    const int m = nmp_problem_pattern(pb).m;
    const int64_t groups = nmp_problem_groups(pb);
    double best = -INFINITY;
    for (int64_t g = 0; g < groups; g++)
        for (int64_t h = g + 1; h < groups; h++) {
            int32_t cg[NMP_MAX_M], ch[NMP_MAX_M];
            const double before =
                nmp_test_naive_group(pb, perm + g * m) + nmp_test_naive_group(pb, perm + h * m);
            for (int x = 0; x < m; x++)
                for (int y = 0; y < m; y++) {
                    memcpy(cg, perm + g * m, (size_t)m * sizeof *cg);
                    memcpy(ch, perm + h * m, (size_t)m * sizeof *ch);
                    cg[x] = perm[h * m + y];
                    ch[y] = perm[g * m + x];
                    const double gain =
                        nmp_test_naive_group(pb, cg) + nmp_test_naive_group(pb, ch) - before;
                    if (gain > best)
                        best = gain;
                }
        }
    return best;
}

/* Progress callback that stops at once; counts its calls in *(int *)user when user is not NULL. */
static inline int nmp_test_stop_now(const nmp_progress *p, void *user)
{
    (void)p;
    if (user)
        ++*(int *)user;
    return 1;
}

/* The solver contract for a finished run: perm is a bijection, the reported score equals
 * nmp_score recomputed (within tol), and the run did not end below its start. */
static inline void nmp_test_check_solution(const nmp_problem *pb, const int32_t *perm,
                                           const nmp_result *res, double tol)
{
    assert_true(nmp_perm_is_valid(perm, nmp_problem_cols(pb)));
    nmp_assert_close(res->score, nmp_test_score(pb, perm), tol);
    assert_true(res->score >= res->start_score);
}

#endif /* NMP_TEST_H */

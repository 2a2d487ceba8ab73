/* test_nmp_colgen.c: exact and heuristic pricing (nmp_price.c) against brute force; colgen's
 * bound against the full set-partitioning LP and the optimum, with and without the heuristic;
 * time limits, interrupts, bad input, failing allocations, GLPK internal errors (NMP_ERR_LP,
 * where GLPK alone aborts) */
#include "nmp_test.h"

#include "nmp_glpk.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

/* All m-subsets of 0..cols-1 in lexicographic order; returns their count. */
static int64_t subsets(int cols, int m, int32_t **out)
{
    int64_t count = 1;
    for (int k = 0; k < m; k++)
        count = count * (cols - k) / (k + 1);
    int32_t *all = malloc((size_t)(count * m) * sizeof *all);
    assert_non_null(all);
    int32_t c[NMP_MAX_M];
    for (int k = 0; k < m; k++)
        c[k] = k;
    for (int64_t q = 0; q < count; q++) {
        memcpy(all + q * m, c, (size_t)m * sizeof *c);
        int k = m - 1;
        while (k >= 0 && c[k] == cols - m + k)
            k--;
        if (k < 0)
            break;
        c[k]++;
        for (int t = k + 1; t < m; t++)
            c[t] = c[t - 1] + 1;
    }
    *out = all;
    return count;
}

/* The LP of set partitioning over every m-subset, solved by GLPK. */
static double full_lp(const nmp_problem *pb)
{
    const int cols = (int)nmp_problem_cols(pb), m = nmp_problem_pattern(pb).m;
    int32_t *all;
    const int64_t count = subsets(cols, m, &all);
    const int old = glp_term_out(GLP_OFF);
    glp_prob *lp = glp_create_prob();
    glp_set_obj_dir(lp, GLP_MAX);
    glp_add_rows(lp, cols);
    for (int i = 1; i <= cols; i++)
        glp_set_row_bnds(lp, i, GLP_FX, 1, 1);
    glp_add_cols(lp, (int)count);
    int ind[NMP_MAX_M + 1];
    double one[NMP_MAX_M + 1];
    for (int64_t q = 0; q < count; q++) {
        for (int t = 0; t < m; t++) {
            ind[t + 1] = all[q * m + t] + 1;
            one[t + 1] = 1;
        }
        glp_set_mat_col(lp, (int)q + 1, m, ind, one);
        glp_set_col_bnds(lp, (int)q + 1, GLP_LO, 0, 0);
        glp_set_obj_coef(lp, (int)q + 1, nmp_score_group_value(pb, all + q * m));
    }
    glp_smcp smcp;
    glp_init_smcp(&smcp);
    smcp.msg_lev = GLP_MSG_OFF;
    assert_int_equal(glp_simplex(lp, &smcp), 0);
    assert_int_equal(glp_get_status(lp), GLP_OPT);
    const double z = glp_get_obj_val(lp);
    glp_delete_prob(lp);
    glp_term_out(old);
    free(all);
    return z;
}

static double optimum(const nmp_problem *pb)
{
    const int64_t cols = nmp_problem_cols(pb);
    int32_t *perm = malloc((size_t)cols * sizeof *perm);
    assert_non_null(perm);
    nmp_result res;
    nmp_msg msg = { { 0 } };
    nmp_assert_ok(nmp_solve(pb, "dp", NULL, perm, 1, &res, &msg));
    assert_int_equal(res.status, NMP_STATUS_OPTIMAL);
    free(perm);
    return res.score;
}

static nmp_result run(const nmp_problem *pb, const char *solver, nmp_params *par, int32_t *perm)
{
    nmp_result res;
    nmp_msg msg = { { 0 } };
    int32_t *own = perm ? NULL : malloc((size_t)nmp_problem_cols(pb) * sizeof *own);
    nmp_err e = nmp_solve(pb, solver, par, perm ? perm : own, perm == NULL, &res, &msg);
    free(own);
    if (e != NMP_OK)
        print_error("%s: %s\n", nmp_err_str(e), msg.text);
    assert_int_equal(e, NMP_OK);
    return res;
}

/* -------------------------------------------------------- pricing vs brute */

typedef struct ref_item {
    double rc;
    int64_t q;
} ref_item;

static int ref_cmp(const void *pa, const void *pb)
{
    const ref_item *a = pa, *b = pb;
    if (a->rc != b->rc)
        return a->rc > b->rc ? -1 : 1;
    return (a->q > b->q) - (a->q < b->q); /* lexicographic = enumeration order */
}

static bool obeys(const int32_t *c, int m, int count, const int32_t *a, const int32_t *b,
                  const uint8_t *tog)
{
    for (int r = 0; r < count; r++) {
        bool ha = false, hb = false;
        for (int t = 0; t < m; t++) {
            ha = ha || c[t] == a[r];
            hb = hb || c[t] == b[r];
        }
        if (tog[r] ? ha != hb : ha && hb)
            return false;
    }
    return true;
}

/* Pricing with k results and some rules against brute force over all subsets; heur: the exact
 * search of a pricer with the heuristic on (nmp_price_exact: it lists its memory, the best
 * subsets whatever their rc, and returns those above thr). */
static void check_pricing_as(const nmp_problem *pb, const double *y, double thr, int64_t k,
                             int threads, int count, const int32_t *ra, const int32_t *rb,
                             const uint8_t *rt, bool heur)
{
    const int cols = (int)nmp_problem_cols(pb), m = nmp_problem_pattern(pb).m;
    int32_t *all;
    const int64_t total = subsets(cols, m, &all);
    ref_item *ref = malloc((size_t)total * sizeof *ref);
    assert_non_null(ref);
    int64_t nref = 0;
    for (int64_t q = 0; q < total; q++) {
        const int32_t *c = all + q * m;
        if (!obeys(c, m, count, ra, rb, rt))
            continue;
        double ys = 0; /* summed as the pricing sums: the same doubles */
        for (int t = 0; t < m; t++)
            ys += y[c[t]];
        const double rc = nmp_score_group_value(pb, c) - ys;
        if (rc > thr)
            ref[nref++] = (ref_item){ rc, q };
    }
    qsort(ref, (size_t)nref, sizeof *ref, ref_cmp);
    nmp_price *pr;
    nmp_assert_ok(nmp_price_create(pb, threads, k, &pr));
    nmp_assert_ok(nmp_price_set_rules(pr, count, ra, rb, rt));
    int32_t *oc = malloc((size_t)(k * m) * sizeof *oc);
    double *ov = malloc((size_t)k * sizeof *ov), *orc = malloc((size_t)k * sizeof *orc);
    assert_true(oc && ov && orc);
    nmp_price_out out = { oc, ov, orc, 0, 0, false, -INFINITY };
    if (heur) {
        nmp_assert_ok(nmp_price_set_heuristic(pr, true));
        nmp_assert_ok(nmp_price_exact(pr, y, thr, k, NULL, NULL, &out));
    } else {
        nmp_assert_ok(nmp_price_solve(pr, y, thr, k, NULL, NULL, &out));
    }
    assert_true(out.complete);
    assert_int_equal(out.found, NMP_MIN(nref, k));
    for (int64_t t = 0; t < out.found; t++) {
        /* the same subsets in the same order (ties broken by members) */
        nmp_assert_close(out.rc[t], ref[t].rc, 0);
        assert_memory_equal(oc + t * m, all + ref[t].q * m, (size_t)m * sizeof *oc);
        nmp_assert_close(out.value[t], nmp_score_group_value(pb, oc + t * m), 0);
    }
    nmp_price_free(pr);
    free(oc);
    free(ov);
    free(orc);
    free(ref);
    free(all);
}

static void check_pricing(const nmp_problem *pb, const double *y, double thr, int64_t k,
                          int threads, int count, const int32_t *ra, const int32_t *rb,
                          const uint8_t *rt)
{
    check_pricing_as(pb, y, thr, k, threads, count, ra, rb, rt, false);
}

/* duals around a fair share of the optimum, with noise, so that many subsets price out */
static void random_duals(const nmp_problem *pb, double spread, uint64_t seed, double *y)
{
    const int cols = (int)nmp_problem_cols(pb);
    const nmp_pattern nm = nmp_problem_pattern(pb);
    nmp_rng r;
    nmp_rng_seed(&r, seed);
    const double share = nmp_score_row_bound(pb) / cols;
    const float *s = nmp_problem_saliency(pb);
    const int64_t rows = nmp_problem_rows(pb);
    for (int i = 0; i < cols; i++) {
        double cs = 0;
        for (int64_t j = 0; j < rows; j++)
            cs += s[i * rows + j];
        y[i] = 0.5 * share + 0.5 * cs * nm.n / nm.m + spread * share * (nmp_rng_uniform(&r) - 0.5);
    }
}

static void test_pricing_brute(void **state)
{
    (void)state;
    const struct { int rows, cols, n, m, kind; } cases[] = {
        { 16, 12, 2, 4, 0 }, { 40, 16, 2, 4, 1 }, { 7, 20, 2, 4, 0 }, { 33, 24, 2, 4, 0 },
        { 20, 12, 1, 2, 0 }, { 20, 16, 1, 4, 1 }, { 24, 16, 3, 4, 0 }, { 12, 16, 2, 8, 0 },
        { 9, 18, 2, 6, 1 }, { 64, 40, 2, 4, 0 },
    };
    double y[64];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nmp_problem *pb = nmp_test_problem(cases[c].rows, cases[c].cols, cases[c].n, cases[c].m,
                                           cases[c].kind, 100 + c);
        for (int rep = 0; rep < 3; rep++) {
            random_duals(pb, 0.3 * rep, 7 * c + (uint64_t)rep, y);
            check_pricing(pb, y, -1e300, 1, 1, 0, NULL, NULL, NULL);  /* the exact max */
            check_pricing(pb, y, 0, 50, 2, 0, NULL, NULL, NULL);
            check_pricing(pb, y, -5, 7, 1, 0, NULL, NULL, NULL);
            check_pricing_as(pb, y, 0, 50, 2, 0, NULL, NULL, NULL, true);
        }
        nmp_problem_free(pb);
    }
}

static void test_pricing_rules(void **state)
{
    (void)state;
    double y[24];
    for (int c = 0; c < 12; c++) {
        const int cols = c % 2 ? 16 : 24, m = c % 3 == 2 ? 3 : 4;
        nmp_problem *pb = nmp_test_problem(20, cols - cols % m, 2, m, c % 2, 200 + c);
        const int C = (int)nmp_problem_cols(pb);
        nmp_rng r;
        nmp_rng_seed(&r, (uint64_t)c);
        int32_t ra[8], rb[8];
        uint8_t rt[8];
        const int count = 1 + c % 8;
        for (int k = 0; k < count; k++) {
            ra[k] = (int32_t)nmp_rng_below(&r, (uint64_t)C);
            do
                rb[k] = (int32_t)nmp_rng_below(&r, (uint64_t)C);
            while (rb[k] == ra[k]);
            rt[k] = (uint8_t)(nmp_rng_below(&r, 2));
        }
        random_duals(pb, 0.2, (uint64_t)c, y);
        check_pricing(pb, y, -1e300, 1, 1, count, ra, rb, rt);
        check_pricing(pb, y, -1e300, 40, 2, count, ra, rb, rt);
        check_pricing(pb, y, 0, 40, 1, count, ra, rb, rt);
        check_pricing_as(pb, y, 0, 40, 2, count, ra, rb, rt, true);
        nmp_problem_free(pb);
    }
}

/* One call of nmp_price_solve with the heuristic on (threads, rules); its output in *out (arrays
 * of k). Returns whether the heuristic answered (rc_max = +inf), after checking what it
 * returned: columns that keep the rules, with their exact value and rc (summed as the brute
 * force sums), above thr, in the exact pricer's order, without duplicates. An exact answer
 * (nothing from the heuristic) is checked against brute force by the caller. */
static bool heuristic_round(nmp_price *pr, const nmp_problem *pb, const double *y, double thr,
                            int64_t k, int count, const int32_t *ra, const int32_t *rb,
                            const uint8_t *rt, nmp_price_out *out)
{
    const int m = nmp_problem_pattern(pb).m;
    nmp_assert_ok(nmp_price_solve(pr, y, thr, k, NULL, NULL, out));
    assert_true(out->complete);
    if (out->rc_max != INFINITY)
        return false;
    assert_true(out->found >= 1 && out->found <= k);
    for (int64_t t = 0; t < out->found; t++) {
        const int32_t *s = out->cols + t * m;
        for (int u = 1; u < m; u++)
            assert_true(s[u - 1] < s[u]);
        assert_true(obeys(s, m, count, ra, rb, rt));
        nmp_assert_close(out->value[t], nmp_score_group_value(pb, s), 0);
        double ys = 0;
        for (int u = 0; u < m; u++)
            ys += y[s[u]];
        nmp_assert_close(out->rc[t], out->value[t] - ys, 0);
        assert_true(out->rc[t] > thr);
        if (t > 0) { /* rc descending, then members ascending: strictly, so no duplicates */
            const int32_t *p = s - m;
            assert_true(out->rc[t] <= out->rc[t - 1]);
            if (out->rc[t] == out->rc[t - 1]) {
                int u = 0;
                while (u < m && p[u] == s[u])
                    u++;
                assert_true(u < m && p[u] < s[u]);
            }
        }
    }
    return true;
}

/* The heuristic pricing (nmp_price_set_heuristic) through nmp_price_solve, against brute force:
 * what it answers prices out exactly and keeps the rules (heuristic_round), the same with one and
 * two threads; with nothing to find the exact search answers, complete and empty (a certificate);
 * after an exact search the memory of its best subsets is re-priced at new duals. */
static void test_pricing_heuristic(void **state)
{
    (void)state;
    const struct { int rows, cols, n, m, kind, rules; } cases[] = {
        { 16, 12, 2, 4, 0, 0 }, { 40, 16, 2, 4, 1, 2 }, { 33, 24, 2, 4, 0, 0 },
        { 20, 12, 1, 2, 0, 1 }, { 24, 16, 3, 4, 0, 3 }, { 12, 16, 2, 8, 0, 0 },
        { 9, 18, 2, 6, 1, 2 },  { 64, 48, 2, 4, 0, 0 }, { 32, 48, 2, 4, 1, 4 },
        { 20, 15, 1, 3, 0, 2 },
    };
    enum { K = 40 };
    int answered = 0, certified = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nmp_problem *pb = nmp_test_problem(cases[c].rows, cases[c].cols, cases[c].n, cases[c].m,
                                           cases[c].kind, 900 + c);
        const int C = (int)nmp_problem_cols(pb), m = cases[c].m;
        nmp_rng r;
        nmp_rng_seed(&r, (uint64_t)c);
        int32_t ra[4], rb[4];
        uint8_t rt[4];
        const int count = cases[c].rules;
        for (int q = 0; q < count; q++) {
            ra[q] = (int32_t)nmp_rng_below(&r, (uint64_t)C);
            do
                rb[q] = (int32_t)nmp_rng_below(&r, (uint64_t)C);
            while (rb[q] == ra[q]);
            rt[q] = (uint8_t)(nmp_rng_below(&r, 2));
        }
        double y[64], y2[64];
        random_duals(pb, 0.2, 50 + (uint64_t)c, y);
        int32_t *all;
        const int64_t total = subsets(C, m, &all);
        double best = -INFINITY;
        for (int64_t q = 0; q < total; q++) {
            const int32_t *s = all + q * m;
            double ys = 0; /* summed as the pricing sums: the same doubles */
            for (int t = 0; t < m; t++)
                ys += y[s[t]];
            if (obeys(s, m, count, ra, rb, rt))
                best = NMP_MAX(best, nmp_score_group_value(pb, s) - ys);
        }
        const double above = best > -INFINITY ? best + 1e-6 * fabs(best) + 1e-9 : 0;
        int32_t oc[K * NMP_MAX_M];
        double ov[K], orc[K];
        for (int v = 0; v < 2; v++) { /* thr 0 on one thread; every subset it has on two */
            nmp_price *pr;
            nmp_assert_ok(nmp_price_create(pb, v + 1, K, &pr));
            nmp_assert_ok(nmp_price_set_rules(pr, count, ra, rb, rt));
            nmp_assert_ok(nmp_price_set_heuristic(pr, true));
            nmp_price_out out = { oc, ov, orc, 0, 0, false, -INFINITY };
            if (heuristic_round(pr, pb, y, v ? -1e300 : 0, K, count, ra, rb, rt, &out)) {
                answered++;
                assert_true(out.rc[0] <= best); /* brute force's maximum under the rules */
            } else { /* the exact search answered: its maximum */
                assert_true(out.found == 0 || out.rc[0] == best);
            }
            /* above the maximum: nothing, certified by the exact search */
            nmp_assert_ok(nmp_price_solve(pr, y, above, K, NULL, NULL, &out));
            assert_true(out.complete);
            assert_int_equal(out.found, 0);
            assert_true(out.rc_max == -INFINITY);
            certified++;
            /* the memory of that exact search, re-priced at nearby duals under other rules (as
             * at another node of branch-and-price): what it returns keeps the new ones */
            for (int i = 0; i < C; i++)
                y2[i] = y[i] - 0.05 * fabs(y[i]) * (double)((i * 7 + v) % 3);
            int32_t sa[4], sb[4];
            uint8_t st[4];
            const int count2 = 1 + (int)(c + v) % 4;
            for (int q = 0; q < count2; q++) {
                sa[q] = (int32_t)nmp_rng_below(&r, (uint64_t)C);
                do
                    sb[q] = (int32_t)nmp_rng_below(&r, (uint64_t)C);
                while (sb[q] == sa[q]);
                st[q] = (uint8_t)(q % 2);
            }
            nmp_assert_ok(nmp_price_set_rules(pr, count2, sa, sb, st));
            answered += heuristic_round(pr, pb, y2, 0, K, count2, sa, sb, st, &out);
            nmp_price_free(pr);
        }
        nmp_problem_free(pb);
        free(all);
    }
    assert_true(answered >= 20); /* the heuristic did answer, not only the exact search */
    assert_true(certified == 20);
}

/* The heuristic's answer does not depend on the thread count. */
static void test_pricing_heuristic_threads(void **state)
{
    (void)state;
    enum { K = 96 };
    nmp_problem *pb = nmp_test_problem(64, 96, 2, 4, 1, 31);
    double y[96];
    random_duals(pb, 0.3, 3, y);
    int32_t oc[2][K * 4];
    double ov[2][K], orc[2][K];
    nmp_price_out out[2];
    for (int th = 0; th < 2; th++) {
        nmp_price *pr;
        nmp_assert_ok(nmp_price_create(pb, th + 1, K, &pr));
        nmp_assert_ok(nmp_price_set_heuristic(pr, true));
        out[th] = (nmp_price_out){ oc[th], ov[th], orc[th], 0, 0, false, -INFINITY };
        assert_true(heuristic_round(pr, pb, y, -1e300, K, 0, NULL, NULL, NULL, &out[th]));
        nmp_price_free(pr);
    }
    assert_int_equal(out[0].found, out[1].found);
    assert_memory_equal(oc[0], oc[1], (size_t)out[0].found * 4 * sizeof **oc);
    assert_memory_equal(orc[0], orc[1], (size_t)out[0].found * sizeof **orc);
    nmp_problem_free(pb);
}

/* The device pricing on the backend's CPU reference: every column returned keeps the rules,
 * prices out exactly (value recomputed) and comes in the exact pricer's order; rc_max bounds
 * the brute-force maximum; above the maximum the exact pricer answers (nothing, complete). */
static void test_pricing_device(void **state)
{
    (void)state;
    double y[24];
    for (int c = 0; c < 10; c++) {
        const int cols = c % 2 ? 16 : 24, m = c % 3 == 2 ? 3 : 4;
        nmp_problem *pb = nmp_test_problem(20, cols - cols % m, 2, m, c % 2, 600 + c);
        const int C = (int)nmp_problem_cols(pb);
        nmp_rng r;
        nmp_rng_seed(&r, (uint64_t)c);
        int32_t ra[4], rb[4];
        uint8_t rt[4];
        const int count = c % 5;
        for (int k = 0; k < count; k++) {
            ra[k] = (int32_t)nmp_rng_below(&r, (uint64_t)C);
            do
                rb[k] = (int32_t)nmp_rng_below(&r, (uint64_t)C);
            while (rb[k] == ra[k]);
            rt[k] = (uint8_t)(nmp_rng_below(&r, 2));
        }
        random_duals(pb, 0.2, (uint64_t)c, y);
        int32_t *all;
        const int64_t total = subsets(C, m, &all);
        double best = -INFINITY;
        for (int64_t q = 0; q < total; q++) {
            const int32_t *s = all + q * m;
            double rc = nmp_score_group_value(pb, s);
            for (int t = 0; t < m; t++)
                rc -= y[s[t]];
            if (obeys(s, m, count, ra, rb, rt))
                best = NMP_MAX(best, rc);
        }
        nmp_backend be;
        nmp_backend_init_cpu(&be, pb);
        nmp_price *pr;
        nmp_assert_ok(nmp_price_create(pb, 1, 40, &pr));
        nmp_assert_ok(nmp_price_set_rules(pr, count, ra, rb, rt));
        nmp_assert_ok(nmp_price_set_backend(pr, &be));
        int32_t oc[40 * 4];
        double ov[40], orc[40];
        nmp_price_out out = { oc, ov, orc, 0, 0, false, -INFINITY };
        nmp_assert_ok(nmp_price_solve(pr, y, -1e300, 40, NULL, NULL, &out));
        assert_true(out.complete && out.found >= 1);
        assert_true(out.rc_max >= best - 1e-12 * fabs(best));
        if (count == 0) /* without rules the per-column maxima hold the maximum */
            nmp_assert_close(out.rc[0], best, 1e-9 * fabs(best));
        for (int64_t t = 0; t < out.found; t++) {
            const int32_t *s = oc + t * m;
            assert_true(obeys(s, m, count, ra, rb, rt));
            nmp_assert_close(out.value[t], nmp_score_group_value(pb, s), 0);
            double rc = out.value[t];
            for (int u = 0; u < m; u++)
                rc -= y[s[u]];
            nmp_assert_close(out.rc[t], rc, 0);
            if (t > 0)
                assert_true(out.rc[t] <= out.rc[t - 1]);
        }
        nmp_assert_ok(nmp_price_solve(pr, y, best + 1e-6 * fabs(best) + 1e-9, 40, NULL, NULL,
                                      &out));
        assert_true(out.complete);
        assert_int_equal(out.found, 0);
        nmp_price_free(pr);
        nmp_backend_release(&be);
        free(all);
        nmp_problem_free(pb);
    }
}

/* colgen with --device ref reaches the same LP value (the last round is priced exactly) */
static void test_colgen_device(void **state)
{
    (void)state;
    const struct { int rows, cols, n, m, kind; } cases[] = {
        { 16, 8, 2, 4, 0 }, { 64, 12, 2, 4, 0 }, { 32, 16, 2, 4, 1 }, { 5, 16, 2, 4, 0 },
        { 24, 12, 1, 2, 0 }, { 40, 16, 2, 8, 1 }, { 16, 15, 1, 3, 0 }, { 24, 32, 2, 4, 0 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nmp_problem *pb = nmp_test_problem(cases[c].rows, cases[c].cols, cases[c].n, cases[c].m,
                                           cases[c].kind, 700 + c);
        nmp_params par;
        nmp_params_init(&par);
        par.seed = c;
        nmp_params_set(&par, "heur_time", 0);
        nmp_params_set(&par, "mip_time", 0);
        const nmp_result cpu = run(pb, "colgen", &par, NULL);
        par.device = NMP_DEVICE_REF;
        const nmp_result dev = run(pb, "colgen", &par, NULL);
        nmp_assert_close(dev.bound, cpu.bound, 1e-7 * cpu.bound);
        if (cases[c].cols <= 16)
            nmp_assert_close(dev.bound, full_lp(pb), 1e-7 * cpu.bound);
        nmp_problem_free(pb);
    }
}

static void test_pricing_args(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(8, 8, 2, 4, 0, 1);
    nmp_price *pr = NULL;
    assert_int_equal(nmp_price_create(pb, 1, 0, &pr), NMP_ERR_ARG);
    assert_null(pr);
    nmp_assert_ok(nmp_price_create(pb, 1, 4, &pr));
    const int32_t a[1] = { 3 }, b[1] = { 3 }, c[1] = { 8 };
    const uint8_t t[1] = { 1 };
    assert_int_equal(nmp_price_set_rules(pr, 1, a, b, t), NMP_ERR_ARG);
    assert_int_equal(nmp_price_set_rules(pr, 1, a, c, t), NMP_ERR_ARG);
    double y[8] = { 0 };
    int32_t oc[4 * 5];
    double ov[5], orc[5];
    nmp_price_out out = { oc, ov, orc, 0, 0, false, -INFINITY };
    assert_int_equal(nmp_price_solve(pr, y, 0, 5, NULL, NULL, &out), NMP_ERR_ARG);
    /* a component larger than m: nothing is feasible */
    const int32_t ca[4] = { 0, 1, 2, 3 }, cb[4] = { 1, 2, 3, 4 };
    const uint8_t ct[4] = { 1, 1, 1, 1 };
    nmp_assert_ok(nmp_price_set_rules(pr, 4, ca, cb, ct));
    nmp_assert_ok(nmp_price_solve(pr, y, -1e300, 4, NULL, NULL, &out));
    assert_true(out.complete);
    assert_int_equal(out.found, 0);
    nmp_price_free(pr);
    nmp_price_free(NULL);
    nmp_problem_free(pb);
}

/* --------------------------------------------------------------- colgen */

static void test_colgen_full_lp(void **state)
{
    (void)state;
    const struct { int rows, cols, n, m, kind; } cases[] = {
        { 16, 8, 2, 4, 0 }, { 64, 12, 2, 4, 0 }, { 32, 16, 2, 4, 1 }, { 5, 16, 2, 4, 0 },
        { 24, 12, 1, 2, 0 }, { 24, 16, 1, 4, 0 }, { 40, 16, 2, 8, 1 }, { 16, 15, 1, 3, 0 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nmp_problem *pb = nmp_test_problem(cases[c].rows, cases[c].cols, cases[c].n, cases[c].m,
                                           cases[c].kind, 300 + c);
        const double lp = full_lp(pb), opt = optimum(pb);
        int32_t perm[16];
        nmp_params par;
        nmp_params_init(&par);
        par.seed = c;
        const nmp_result res = run(pb, "colgen", &par, NULL);
        nmp_assert_close(res.bound, lp, 1e-7 * lp);
        assert_true(res.bound >= opt - 1e-7 * opt);
        assert_true(res.score <= opt + 1e-7 * opt);
        assert_true(res.iterations >= 1);
        if (res.status == NMP_STATUS_OPTIMAL)
            nmp_assert_close(res.score, opt, 1e-7 * opt);
        else
            assert_int_equal(res.status, NMP_STATUS_FEASIBLE);
        /* the optimum as the start comes back unchanged in score */
        nmp_assert_ok(nmp_solve(pb, "dp", NULL, perm, 1, &(nmp_result){ 0 }, NULL));
        const nmp_result r2 = run(pb, "colgen", &par, perm);
        nmp_assert_close(r2.score, opt, 1e-7 * opt);
        nmp_assert_close(r2.bound, lp, 1e-7 * lp);
        nmp_problem_free(pb);
    }
}

/* colgen with and without the heuristic pricing, with and without smoothing: the same LP value,
 * the full LP's */
static void test_colgen_hprice(void **state)
{
    (void)state;
    const struct { int rows, cols, n, m, kind; } cases[] = {
        { 16, 8, 2, 4, 0 }, { 64, 12, 2, 4, 0 }, { 32, 16, 2, 4, 1 }, { 5, 16, 2, 4, 0 },
        { 24, 12, 1, 2, 0 }, { 24, 16, 1, 4, 0 }, { 40, 16, 2, 8, 1 }, { 16, 15, 1, 3, 0 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nmp_problem *pb = nmp_test_problem(cases[c].rows, cases[c].cols, cases[c].n, cases[c].m,
                                           cases[c].kind, 300 + c);
        const double lp = full_lp(pb);
        nmp_params par;
        nmp_params_init(&par);
        par.seed = c;
        nmp_params_set(&par, "heur_time", 0);
        nmp_params_set(&par, "mip_time", 0);
        nmp_params_set(&par, "hprice", 0);
        const nmp_result ex = run(pb, "colgen", &par, NULL);
        nmp_assert_close(ex.bound, lp, 1e-7 * lp);
        for (int sm = 0; sm < 2; sm++) {
            nmp_params_set(&par, "hprice", 1);
            nmp_params_set(&par, "smoothing", 0.5 * sm);
            const nmp_result h = run(pb, "colgen", &par, NULL);
            nmp_assert_close(h.bound, ex.bound, 1e-9 * ex.bound);
        }
        nmp_problem_free(pb);
    }
    /* larger: no full LP, the two pricings against each other */
    for (int c = 0; c < 3; c++) {
        nmp_problem *pb = nmp_test_problem(32 + 16 * c, 48, 2, 4, c % 2, 330 + (uint64_t)c);
        nmp_params par;
        nmp_params_init(&par);
        nmp_params_set(&par, "heur_time", 0);
        nmp_params_set(&par, "mip_time", 0);
        nmp_params_set(&par, "hprice", 0);
        const nmp_result ex = run(pb, "colgen", &par, NULL);
        nmp_params_set(&par, "hprice", 1);
        const nmp_result h = run(pb, "colgen", &par, NULL);
        assert_int_equal(ex.status, h.status);
        nmp_assert_close(h.bound, ex.bound, 1e-9 * ex.bound);
        nmp_problem_free(pb);
    }
}

static void test_colgen_vs_dp(void **state)
{
    (void)state;
    for (int c = 0; c < 8; c++) {
        const int cols = 16 + 4 * (c % 3), rows = c % 2 ? 64 : 13;
        nmp_problem *pb = nmp_test_problem(rows, cols, 2, 4, c % 2, 400 + c);
        const double opt = optimum(pb);
        nmp_params par;
        nmp_params_init(&par);
        nmp_params_set(&par, "mip_time", 0);
        const nmp_result res = run(pb, "colgen", &par, NULL);
        assert_true(res.bound >= opt - 1e-7 * opt);
        assert_true(res.bound <= nmp_score_row_bound(pb) + 1e-9);
        assert_true(res.score <= opt + 1e-7 * opt);
        nmp_problem_free(pb);
    }
}

/* stops at the first report (reports come every 0.2 s) */
static int stop_after(const nmp_progress *p, void *user)
{
    int *calls = user;
    assert_true(p->bound >= p->best - 1e-9 * fabs(p->best));
    return ++*calls >= 1;
}

/* a stopped LP still gives a valid bound: between the kept score and the row bound */
static void assert_stopped(const nmp_result *r, const nmp_problem *pb, nmp_status status)
{
    assert_int_equal(r->status, status);
    assert_true(r->bound >= r->score);
    assert_true(r->bound <= nmp_score_row_bound(pb) * (1 + 1e-12));
    assert_true(r->score >= r->start_score);
}

static void test_colgen_time_limit(void **state)
{
    (void)state;
    /* the LP of 128 x 512 takes minutes (23 pricing rounds in 3 s on the 2-core VM), so every
     * stop below comes in the generation, whatever the machine's speed */
    nmp_problem *pb = nmp_test_problem(128, 512, 2, 4, 0, 77);
    nmp_params par;
    nmp_params_init(&par);
    nmp_params_set(&par, "heur_time", 0);
    nmp_params_set(&par, "mip_time", 0);
    par.time_limit = 0.3;
    const nmp_result res = run(pb, "colgen", &par, NULL);
    assert_stopped(&res, pb, NMP_STATUS_TIME_LIMIT);
    /* an interrupt through the progress callback */
    int calls = 0;
    par.time_limit = 0;
    par.progress = stop_after;
    par.progress_user = &calls;
    const nmp_result r2 = run(pb, "colgen", &par, NULL);
    assert_stopped(&r2, pb, NMP_STATUS_INTERRUPTED);
    assert_int_equal(calls, 1);
    nmp_problem_free(pb);
}

static void test_colgen_threads(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(32, 64, 2, 4, 1, 5);
    nmp_params par;
    nmp_params_init(&par);
    nmp_params_set(&par, "heur_time", 0); /* heuristics may depend on the thread count */
    nmp_params_set(&par, "mip_time", 0);
    par.threads = 1;
    const nmp_result a = run(pb, "colgen", &par, NULL);
    par.threads = 2;
    const nmp_result b = run(pb, "colgen", &par, NULL);
    nmp_assert_close(a.bound, b.bound, 0);
    assert_int_equal(a.iterations, b.iterations);
    nmp_problem_free(pb);
}

static void test_colgen_bad_input(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(8, 12, 2, 4, 0, 1);
    int32_t perm[12];
    nmp_result res;
    nmp_msg msg = { { 0 } };
    nmp_params par;
    nmp_params_init(&par);
    nmp_params_set(&par, "smoothing", 1.5);
    assert_int_equal(nmp_solve(pb, "colgen", &par, perm, 1, &res, &msg), NMP_ERR_ARG);
    nmp_params_init(&par);
    nmp_params_set(&par, "no_such_param", 1);
    assert_int_equal(nmp_solve(pb, "colgen", &par, perm, 1, &res, &msg), NMP_ERR_ARG);
    for (int i = 0; i < 12; i++)
        perm[i] = i % 6;
    assert_int_equal(nmp_solve(pb, "colgen", NULL, perm, 0, &res, &msg), NMP_ERR_ARG);
    nmp_problem_free(pb);
    /* problems the solvers never see: cols not divisible by m, n >= m, empty */
    float a[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
    nmp_problem_desc d = { 0 };
    d.weights = nmp_matrix_view(a, 2, 6);
    d.nm = (nmp_pattern){ 2, 4 };
    nmp_problem *bad = NULL;
    assert_int_equal(nmp_problem_create(&d, &bad, &msg), NMP_ERR_ARG);
    d.weights = nmp_matrix_view(a, 3, 4);
    d.nm = (nmp_pattern){ 4, 4 };
    assert_int_equal(nmp_problem_create(&d, &bad, &msg), NMP_ERR_ARG);
    d.weights = nmp_matrix_view(a, 0, 4);
    d.nm = (nmp_pattern){ 2, 4 };
    assert_int_equal(nmp_problem_create(&d, &bad, &msg), NMP_ERR_ARG);
    assert_null(bad);
}

static void test_colgen_nomem(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(16, 16, 2, 4, 0, 9);
    nmp_params par;
    nmp_params_init(&par);
    nmp_params_set(&par, "heur_time", 0.01);
    int32_t perm[16];
    nmp_result res;
    nmp_err e = NMP_ERR_NOMEM;
    int64_t k = 0;
    for (; e == NMP_ERR_NOMEM && k < 100000; k++) {
        nmp_alloc_fail_after(k);
        e = nmp_solve(pb, "colgen", &par, perm, 1, &res, NULL);
        nmp_alloc_fail_after(-1);
        assert_true(e == NMP_OK || e == NMP_ERR_NOMEM);
    }
    assert_int_equal(e, NMP_OK);
    assert_true(k > 5);
    nmp_problem_free(pb);
}

/* What a GLPK internal error does without the glue's error hook: the process aborts. The
 * injected error (nmp_glpk_fail_at) in a simplex run outside nmp_glpk_run, in a child process. */
static void test_glpk_error_aborts_unguarded(void **state)
{
    (void)state;
    fflush(NULL);
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const int null = open("/dev/null", O_WRONLY);
        if (null >= 0) { /* GLPK's message is expected: keep the log clean */
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
        }
        glp_prob *lp = glp_create_prob();
        nmp_glpk_partition_rows(lp, 4);
        glp_smcp parm;
        glp_init_smcp(&parm);
        bool solved;
        nmp_glpk_fail_at(0);
        nmp_glpk_simplex(lp, &parm, 1, NULL, NULL, "test", &solved, NULL);
        _exit(0); /* not reached when GLPK aborts */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

/* The same error inside colgen (first simplex call, or a later one) is NMP_ERR_LP with a reason;
 * the start perm comes back and the next solve works. */
static void test_colgen_glpk_error(void **state)
{
    (void)state;
    nmp_problem *pb = nmp_test_problem(32, 24, 2, 4, 0, 13);
    nmp_params par;
    nmp_params_init(&par);
    nmp_assert_ok(nmp_params_set(&par, "heur_time", 0.01));
    int32_t perm[24];
    nmp_result res;
    for (int64_t k = 0; k <= 3; k += 3) {
        nmp_msg msg = { { 0 } };
        nmp_glpk_fail_at(k);
        const nmp_err e = nmp_solve(pb, "colgen", &par, perm, 1, &res, &msg);
        nmp_glpk_fail_at(-1);
        assert_int_equal(e, NMP_ERR_LP);
        assert_non_null(strstr(msg.text, "colgen: GLPK"));
        for (int i = 0; i < 24; i++)
            assert_int_equal(perm[i], i);
    }
    nmp_msg msg = { { 0 } };
    nmp_assert_ok(nmp_solve(pb, "colgen", &par, perm, 1, &res, &msg));
    assert_true(res.bound >= res.score);
    assert_true(res.score >= res.start_score);
    nmp_problem_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pricing_brute),
        cmocka_unit_test(test_pricing_rules),
        cmocka_unit_test(test_pricing_args),
        cmocka_unit_test(test_pricing_heuristic),
        cmocka_unit_test(test_pricing_heuristic_threads),
        cmocka_unit_test(test_pricing_device),
        cmocka_unit_test(test_colgen_device),
        cmocka_unit_test(test_colgen_full_lp),
        cmocka_unit_test(test_colgen_hprice),
        cmocka_unit_test(test_colgen_vs_dp),
        cmocka_unit_test(test_colgen_time_limit),
        cmocka_unit_test(test_colgen_threads),
        cmocka_unit_test(test_colgen_bad_input),
        cmocka_unit_test(test_colgen_nomem),
        cmocka_unit_test(test_glpk_error_aborts_unguarded),
        cmocka_unit_test(test_colgen_glpk_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

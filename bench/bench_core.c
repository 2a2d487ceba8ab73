/* bench_core.c: speed of the core kernels: scoring, eval creation, swap and pair deltas, swaps
 *
 * For each instance (a rows x cols matrix of |N(0,1)| values under an N:M pattern, at a random
 * perm) it prints one row of a fixed-width table:
 *   score_Me/s   nmp_score throughput, million matrix elements per second (best of >= 3 reps)
 *   create_ms    nmp_eval_create + nmp_eval_free (best of >= 3 reps)
 *   delta_ns     one nmp_eval_swap_delta of a random cross-group swap; ns/row = delta_ns / rows
 *   pair_ns      one nmp_eval_pair_deltas (m*m swaps); pair_ns/sw = pair_ns / (m*m)
 *   swap_ns      one applied nmp_eval_swap of a random cross-group swap
 * Timed loops run short windows (~1 ms) for at least --min-time seconds (0.2) in all and report
 * the best window, which on a shared machine is the one least disturbed by other processes; time
 * is CLOCK_MONOTONIC. nmp_score uses OpenMP above 2^20 elements, the rest is serial.
 *
 * Usage: bench_core [--size N] [--nm n:m] [--min-time S] [--deltas K]
 *   --size N     only the N x N instance (default: 64 .. 4096 under 2:4, plus 1:2 and 4:8 at 1024)
 *   --nm n:m     the pattern for --size (default 2:4)
 *   --deltas K   measure only swap deltas, exactly K calls in one window (for instruction counts:
 *                valgrind --tool=callgrind --toggle-collect=nmp_eval_swap_delta bench_core ...)
 */
#include "nmperm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAIRS 4096 /* pre-drawn random moves, cycled */

static volatile double sink; /* keeps the timed calls from being optimised away */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct options {
    double min_time;
    int64_t deltas; /* > 0: only swap deltas, exactly this many calls */
} options;

typedef struct bench {
    nmp_problem *pb;
    nmp_eval *ev;
    int64_t rows, cols, groups;
    int m;
    int32_t *perm;
    int64_t a[PAIRS], b[PAIRS]; /* slots in different groups */
    int64_t g[PAIRS], h[PAIRS]; /* distinct groups */
} bench;

static void *xmalloc(size_t size)
{
    void *p = malloc(size);
    if (!p) {
        fprintf(stderr, "bench_core: out of memory (%zu bytes)\n", size);
        exit(1);
    }
    return p;
}

static void check(nmp_err e, const char *what)
{
    if (e != NMP_OK) {
        fprintf(stderr, "bench_core: %s: %s\n", what, nmp_err_str(e));
        exit(1);
    }
}

static void setup(bench *B, int64_t rows, int64_t cols, nmp_pattern nm, uint64_t seed)
{
    nmp_rng r;
    nmp_rng_seed(&r, seed);
    float *w = xmalloc((size_t)rows * (size_t)cols * sizeof *w);
    for (int64_t k = 0; k < rows * cols; k++)
        w[k] = (float)fabs(nmp_rng_normal(&r));
    nmp_problem_desc d = { 0 };
    d.weights = nmp_matrix_view(w, rows, cols);
    d.nm = nm;
    d.objective = NMP_OBJ_ABS;
    nmp_msg msg = { { 0 } };
    if (nmp_problem_create(&d, &B->pb, &msg) != NMP_OK) {
        fprintf(stderr, "bench_core: %s\n", msg.text);
        exit(1);
    }
    free(w);
    B->rows = rows;
    B->cols = cols;
    B->m = nm.m;
    B->groups = cols / nm.m;
    B->perm = xmalloc((size_t)cols * sizeof *B->perm);
    nmp_perm_random(B->perm, cols, &r);
    for (int k = 0; k < PAIRS; k++) {
        B->a[k] = (int64_t)nmp_rng_below(&r, (uint64_t)cols);
        B->b[k] = (int64_t)nmp_rng_below(&r, (uint64_t)(cols - nm.m));
        if (B->b[k] >= B->a[k] / nm.m * nm.m)
            B->b[k] += nm.m;
        B->g[k] = (int64_t)nmp_rng_below(&r, (uint64_t)B->groups);
        B->h[k] = (int64_t)nmp_rng_below(&r, (uint64_t)B->groups - 1);
        B->h[k] += B->h[k] >= B->g[k];
    }
    check(nmp_eval_create(B->pb, B->perm, &B->ev), "nmp_eval_create");
}

static void teardown(bench *B)
{
    nmp_eval_free(B->ev);
    nmp_problem_free(B->pb);
    free(B->perm);
}

/* Best time of one call over >= 3 reps and >= min_time in all. */
static double best_of_reps(bench *B, int what, double min_time)
{
    double best = INFINITY, spent = 0;
    for (int rep = 0; rep < 3 || (spent < min_time && rep < 1000); rep++) {
        const double t0 = now();
        if (what == 0) {
            double kept;
            check(nmp_score(B->pb, B->perm, &kept), "nmp_score");
            sink += kept;
        } else {
            nmp_eval *ev = NULL;
            check(nmp_eval_create(B->pb, B->perm, &ev), "nmp_eval_create");
            sink += nmp_eval_score(ev);
            nmp_eval_free(ev);
        }
        const double t = now() - t0;
        spent += t;
        if (t < best)
            best = t;
    }
    return best;
}

/* Runs `calls` calls of kind `what` (0 swap delta, 1 pair deltas, 2 applied swap) from pre-drawn
 * move *k on; returns the seconds taken. */
static double timed_calls(bench *B, int what, int64_t calls, int64_t *k)
{
    double out[NMP_MAX_M * NMP_MAX_M], acc = 0;
    int64_t i = *k;
    const double t0 = now();
    for (int64_t c = 0; c < calls; c++, i = (i + 1) % PAIRS) {
        if (what == 0) {
            acc += nmp_eval_swap_delta(B->ev, B->a[i], B->b[i]);
        } else if (what == 1) {
            nmp_eval_pair_deltas(B->ev, B->g[i], B->h[i], out);
            acc += out[0];
        } else {
            nmp_eval_swap(B->ev, B->a[i], B->b[i]);
        }
    }
    const double t = now() - t0;
    sink += acc;
    *k = i;
    return t;
}

/* Seconds per call of kind `what`: the best of many short windows (~1 ms each, >= 5 of them and
 * >= min_time in all). On a shared, loaded machine a long window is almost always interrupted,
 * while a short one often runs whole, so the minimum tracks the undisturbed speed. With count > 0:
 * one window of exactly `count` calls (for instruction counts). */
static double per_call(bench *B, int what, double min_time, int64_t count)
{
    int64_t k = 0;
    if (count > 0)
        return timed_calls(B, what, count, &k) / (double)count;
    int64_t batch = 1;
    while (timed_calls(B, what, batch, &k) < 1e-3 && batch < ((int64_t)1 << 40))
        batch *= 2;
    double best = INFINITY, spent = 0;
    for (int win = 0; win < 5 || spent < min_time; win++) {
        const double t = timed_calls(B, what, batch, &k);
        spent += t;
        if (t / (double)batch < best)
            best = t / (double)batch;
    }
    return best;
}

static void print_header(void)
{
    printf("%-20s %-5s %5s %5s %10s %9s %10s %7s %10s %10s %10s\n", "# instance", "nm", "rows",
           "cols", "score_Me/s", "create_ms", "delta_ns", "ns/row", "pair_ns", "pair_ns/sw",
           "swap_ns");
}

static void run(int64_t n, nmp_pattern nm, const options *o)
{
    bench B;
    memset(&B, 0, sizeof B);
    setup(&B, n, n, nm, (uint64_t)n * 100 + (uint64_t)nm.m);
    double score_s = NAN, create_s = NAN, pair_s = NAN, swap_s = NAN, delta_s;
    if (o->deltas > 0) {
        delta_s = per_call(&B, 0, o->min_time, o->deltas);
    } else {
        score_s = best_of_reps(&B, 0, o->min_time);
        create_s = best_of_reps(&B, 1, o->min_time);
        delta_s = per_call(&B, 0, o->min_time, 0);
        pair_s = per_call(&B, 1, o->min_time, 0);
        swap_s = per_call(&B, 2, o->min_time, 0); /* last: it changes the perm */
    }
    char name[32], pattern[16];
    snprintf(name, sizeof name, "absnormal_%lldx%lld", (long long)n, (long long)n);
    snprintf(pattern, sizeof pattern, "%d:%d", nm.n, nm.m);
    printf("%-20s %-5s %5lld %5lld %10.1f %9.3f %10.1f %7.3f %10.1f %10.1f %10.1f\n", name,
           pattern, (long long)n, (long long)n, (double)(n * n) / score_s * 1e-6, create_s * 1e3,
           delta_s * 1e9, delta_s * 1e9 / (double)n, pair_s * 1e9,
           pair_s * 1e9 / (double)(nm.m * nm.m), swap_s * 1e9);
    fflush(stdout);
    teardown(&B);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_core [--size N] [--nm n:m] [--min-time S] [--deltas K]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    options o = { 0.2, 0 };
    int64_t size = 0;
    nmp_pattern nm = { 2, 4 };
    for (int k = 1; k < argc; k++) {
        const char *arg = argv[k], *val = k + 1 < argc ? argv[k + 1] : NULL;
        if (!val)
            usage();
        if (strcmp(arg, "--size") == 0)
            size = atoll(val);
        else if (strcmp(arg, "--nm") == 0) {
            nmp_msg msg = { { 0 } };
            if (nmp_pattern_parse(val, &nm, &msg) != NMP_OK) {
                fprintf(stderr, "bench_core: %s\n", msg.text);
                return 2;
            }
        } else if (strcmp(arg, "--min-time") == 0)
            o.min_time = atof(val);
        else if (strcmp(arg, "--deltas") == 0)
            o.deltas = atoll(val);
        else
            usage();
        k++;
    }
    if ((size > 0 && (size % nm.m != 0 || size < 2 * nm.m)) || size < 0 || o.deltas < 0 ||
        !(o.min_time >= 0))
        usage();
    print_header();
    if (size > 0) {
        run(size, nm, &o);
        return 0;
    }
    const nmp_pattern p24 = { 2, 4 }, p12 = { 1, 2 }, p48 = { 4, 8 };
    for (int64_t n = 64; n <= 4096; n *= 2)
        run(n, p24, &o);
    run(1024, p12, &o);
    run(1024, p48, &o);
    return 0;
}

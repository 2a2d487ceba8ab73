/* bench_limits.c: how far past a time limit each solver returns (overshoot per solver and size) */
#include "nmperm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Per run, from CLOCK_MONOTONIC: create and solve, the seconds of the solver's create and solve
 * calls; over_solve = solve - limit (what the solver's clock controls: it starts in solve) and
 * over_all = create + solve - limit. nmp_solve adds two scoring passes (start and result,
 * O(rows * cols) each) to that. Instances: |N(0,1)| squares of 2:4 (seed 1, the stream of
 * `nmperm gen`); for 1:2 solvers (match) the same sizes as columns over --match-rows rows. A
 * solver that refuses an instance prints "refused"; one that ends before its limit prints its
 * status and a negative overshoot. The test suite asserts no times (tests assert behaviour);
 * this table is where the clock is measured.
 */

#define MAX_LIST 32

typedef struct options {
    const char *solvers[MAX_LIST];
    int nsolvers;
    int64_t sizes[MAX_LIST];
    int nsizes;
    double limits[MAX_LIST];
    int nlimits;
    int64_t match_rows;
    int threads;
} options;

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_limits [--solvers a,b,...] [--sizes 1024,4096] [--limits 0.1,0.5]\n"
            "                    [--match-rows R] [--threads T]\n"
            "One row per (solver, size, limit): seconds of create and solve, solve - limit and\n"
            "create + solve - limit.\n"
            "Default solvers: every registered solver but identity and random.\n");
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* |N(0,1)|, row-major */
static float *gen_matrix(int64_t rows, int64_t cols, uint64_t seed)
{
    nmp_rng r;
    nmp_rng_seed(&r, seed);
    float *a = malloc((size_t)(rows * cols) * sizeof *a);
    if (!a)
        return NULL;
    for (int64_t k = 0; k < rows * cols; k++)
        a[k] = (float)fabs(nmp_rng_normal(&r));
    return a;
}

static nmp_problem *make_problem(const float *a, int64_t rows, int64_t cols, int n, int m)
{
    nmp_problem_desc d = { 0 };
    d.weights = nmp_matrix_view(a, rows, cols);
    d.nm.n = n;
    d.nm.m = m;
    d.objective = NMP_OBJ_ABS;
    nmp_problem *pb = NULL;
    nmp_msg msg = { { 0 } };
    if (nmp_problem_create(&d, &pb, &msg) != NMP_OK) {
        fprintf(stderr, "bench_limits: %s\n", msg.text);
        exit(2);
    }
    return pb;
}

/* One run through the solver's table, so that create and solve are timed apart: the limit
 * runs on the solver's clock, which starts in solve; create (allocation, first touch of the
 * scratch) comes before it. */
static void row(const char *solver, const nmp_problem *pb, double limit, const options *o)
{
    const nmp_solver_ops *ops = nmp_solver_find(solver);
    nmp_params par;
    nmp_msg msg = { { 0 } };
    nmp_result res;
    void *state = NULL;
    const int64_t rows = nmp_problem_rows(pb), cols = nmp_problem_cols(pb);
    int32_t *perm = malloc((size_t)cols * sizeof *perm);
    if (!perm) {
        fprintf(stderr, "bench_limits: out of memory\n");
        exit(2);
    }
    for (int64_t i = 0; i < cols; i++)
        perm[i] = (int32_t)i;
    nmp_params_init(&par);
    par.seed = 1;
    par.threads = o->threads;
    par.time_limit = limit;
    memset(&res, 0, sizeof res);
    const double t0 = now();
    nmp_err e = ops->create(pb, &par, &state, &msg);
    const double t1 = now();
    if (e == NMP_OK)
        e = ops->solve(state, perm, &res);
    const double t2 = now();
    if (state)
        ops->destroy(state);
    free(perm);
    const char *status = e == NMP_OK ? nmp_status_str(res.status)
                         : e == NMP_ERR_UNSUPPORTED ? "refused" : nmp_err_str(e);
    printf("  %-8s %5lld %5lld %6.2f %8.3f %8.3f %+10.3f %+10.3f  %s\n", solver, (long long)rows,
           (long long)cols, limit, t1 - t0, t2 - t1, t2 - t1 - limit, t2 - t0 - limit, status);
    fflush(stdout);
}

static int split_list(char *s, const char **out, int max)
{
    int count = 0;
    for (char *tok = strtok(s, ","); tok && count < max; tok = strtok(NULL, ","))
        out[count++] = tok;
    return count;
}

int main(int argc, char **argv)
{
    options o = { .match_rows = 16, .threads = 1 };
    o.sizes[0] = 1024;
    o.sizes[1] = 4096;
    o.nsizes = 2;
    o.limits[0] = 0.1;
    o.limits[1] = 0.5;
    o.nlimits = 2;
    for (const nmp_solver_ops *const *s = nmp_solver_list(); *s && o.nsolvers < MAX_LIST; s++)
        if (strcmp((*s)->name, "identity") != 0 && strcmp((*s)->name, "random") != 0)
            o.solvers[o.nsolvers++] = (*s)->name;
    for (int k = 1; k < argc; k++) {
        const char *arg = argv[k], *val = k + 1 < argc ? argv[k + 1] : NULL;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage();
            return 0;
        }
        if (!val) {
            usage();
            return 1;
        }
        k++;
        const char *items[MAX_LIST];
        if (!strcmp(arg, "--solvers")) {
            o.nsolvers = split_list(argv[k], o.solvers, MAX_LIST);
        } else if (!strcmp(arg, "--sizes")) {
            o.nsizes = split_list(argv[k], items, MAX_LIST);
            for (int q = 0; q < o.nsizes; q++)
                o.sizes[q] = atoll(items[q]);
        } else if (!strcmp(arg, "--limits")) {
            o.nlimits = split_list(argv[k], items, MAX_LIST);
            for (int q = 0; q < o.nlimits; q++)
                o.limits[q] = atof(items[q]);
        } else if (!strcmp(arg, "--match-rows")) {
            o.match_rows = atoll(val);
        } else if (!strcmp(arg, "--threads")) {
            o.threads = atoi(val);
        } else {
            usage();
            return 1;
        }
    }
    for (int s = 0; s < o.nsolvers; s++)
        if (!nmp_solver_find(o.solvers[s])) {
            fprintf(stderr, "bench_limits: unknown solver '%s'\n", o.solvers[s]);
            return 1;
        }
    for (int q = 0; q < o.nsizes; q++)
        if (o.sizes[q] < 4 || o.sizes[q] % 4 != 0) {
            fprintf(stderr, "bench_limits: sizes must be positive multiples of 4\n");
            return 1;
        }
    printf("# nmperm %s bench_limits: |N(0,1)| seed 1, 2:4 squares (1:2 for match, %lld rows), "
           "threads %d\n", nmp_version(), (long long)o.match_rows, o.threads);
    printf("# %-8s %5s %5s %6s %8s %8s %10s %10s  %s\n", "solver", "rows", "cols", "limit",
           "create", "solve", "over_solve", "over_all", "status");
    for (int q = 0; q < o.nsizes; q++) {
        const int64_t size = o.sizes[q];
        float *a = gen_matrix(size, size, 1);
        if (!a) {
            fprintf(stderr, "bench_limits: out of memory\n");
            return 2;
        }
        nmp_problem *square = make_problem(a, size, size, 2, 4);
        /* the first match_rows rows of the square, as 1:2 */
        nmp_problem *pairs = make_problem(a, o.match_rows < size ? o.match_rows : size, size, 1, 2);
        for (int s = 0; s < o.nsolvers; s++)
            for (int l = 0; l < o.nlimits; l++)
                row(o.solvers[s], strcmp(o.solvers[s], "match") == 0 ? pairs : square,
                    o.limits[l], &o);
        nmp_problem_free(pairs);
        nmp_problem_free(square);
        free(a);
    }
    return 0;
}

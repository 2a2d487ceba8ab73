/* bench_solvers.c: solver quality and speed tables: apex reference, small instances vs dp, squares */
#include "nmperm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SOLVERS 16

typedef struct options {
    const char *solvers[MAX_SOLVERS];
    int nsolvers;
    int ref, small, square;
    int small_count;
    int64_t squares[16];
    int nsquares;
    double time_limit;
    int threads;
    const char *bound_solver; /* certifies a bound on squares (e.g. colgen), or NULL */
} options;

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_solvers [--suite ref,small,square] [--solvers a,b,...] [--small-count K]\n"
            "                     [--square 64,256,...] [--time-limit S] [--threads T]\n"
            "                     [--bound SOLVER]\n"
            "Prints one table per suite; the osg column ratios compare with 'osg' in the same run.\n");
}

/* |N(0,1)| (kind 0) or U[0,1) (kind 1), row-major, the stream of `nmperm gen` */
static float *gen_matrix(int64_t rows, int64_t cols, int kind, uint64_t seed)
{
    nmp_rng r;
    nmp_rng_seed(&r, seed);
    float *a = malloc((size_t)(rows * cols) * sizeof *a);
    if (!a)
        return NULL;
    for (int64_t k = 0; k < rows * cols; k++)
        a[k] = kind == 0 ? (float)fabs(nmp_rng_normal(&r)) : (float)nmp_rng_uniform(&r);
    return a;
}

static float *apex_matrix(void)
{
    nmp_mt19937 g;
    nmp_mt19937_seed(&g, 1);
    float *a = malloc(128 * 64 * sizeof *a);
    for (int k = 0; a && k < 128 * 64; k++)
        a[k] = (float)nmp_mt19937_uniform(&g);
    return a;
}

static nmp_problem *make_problem(const float *a, int64_t rows, int64_t cols)
{
    nmp_problem_desc d = { 0 };
    d.weights = nmp_matrix_view(a, rows, cols);
    d.nm.n = 2;
    d.nm.m = 4;
    d.objective = NMP_OBJ_ABS;
    nmp_problem *pb = NULL;
    nmp_msg msg = { { 0 } };
    if (nmp_problem_create(&d, &pb, &msg) != NMP_OK) {
        fprintf(stderr, "bench_solvers: %s\n", msg.text);
        exit(2);
    }
    return pb;
}

static int run(const nmp_problem *pb, const char *solver, const options *o, double time_limit,
               nmp_result *res)
{
    nmp_params par;
    nmp_msg msg = { { 0 } };
    nmp_params_init(&par);
    par.seed = 1;
    /* auto sizes its own budget to the instance (solvers/nmp_auto.c); the limit caps the others */
    par.time_limit = strcmp(solver, "auto") == 0 ? 0 : time_limit;
    par.threads = o->threads;
    int32_t *perm = malloc((size_t)nmp_problem_cols(pb) * sizeof *perm);
    const nmp_err e = nmp_solve(pb, solver, &par, perm, 1, res, &msg);
    free(perm);
    if (e != NMP_OK) {
        fprintf(stderr, "bench_solvers: %s: %s\n", solver, msg.text[0] ? msg.text : nmp_err_str(e));
        return 0;
    }
    return 1;
}

static void header(const char *title)
{
    printf("\n## %s\n", title);
    printf("# %-20s %-9s %5s %5s %10s %12s %8s %9s %10s %9s  %s\n", "instance", "solver", "rows",
           "cols", "seconds", "kept", "effic%", "gap%", "kept/osg", "time/osg", "status");
}

/* One instance, every solver; gaps against `bound` (an optimum or a proven upper bound). */
static void table_instance(const char *name, const nmp_problem *pb, const options *o,
                           double bound, double time_limit)
{
    nmp_result res[MAX_SOLVERS];
    int ok[MAX_SOLVERS], osg = -1;
    for (int s = 0; s < o->nsolvers; s++) {
        ok[s] = run(pb, o->solvers[s], o, time_limit, &res[s]);
        if (ok[s] && strcmp(o->solvers[s], "osg") == 0)
            osg = s;
        if (ok[s] && res[s].bound < bound)
            bound = res[s].bound; /* an exact solver's proof tightens the bound */
    }
    for (int s = 0; s < o->nsolvers; s++) {
        if (!ok[s])
            continue;
        const nmp_result *r = &res[s];
        printf("  %-20s %-9s %5lld %5lld %10.3f %12.3f %8.2f %9.4f", name, o->solvers[s],
               (long long)nmp_problem_rows(pb), (long long)nmp_problem_cols(pb), r->seconds,
               r->score, 100 * nmp_score_efficacy(pb, r->score),
               100 * (bound - r->score) / bound);
        if (osg >= 0)
            printf(" %10.5f %9.3f", r->score / res[osg].score,
                   r->seconds / fmax(res[osg].seconds, 1e-9));
        else
            printf(" %10s %9s", "-", "-");
        printf("  %s\n", nmp_status_str(r->status));
        fflush(stdout);
    }
}

static void suite_ref(const options *o)
{
    header("apex reference: np.random.seed(1); np.random.rand(128, 64), 2:4");
    float *a = apex_matrix();
    nmp_problem *pb = make_problem(a, 128, 64);
    double bound = nmp_score_row_bound(pb);
    nmp_result r;
    if (o->bound_solver && run(pb, o->bound_solver, o, o->time_limit, &r))
        bound = r.bound;
    printf("# identity %.3f  row bound %.3f  certified bound %.3f\n", nmp_score_identity(pb),
           nmp_score_row_bound(pb), bound);
    table_instance("apex_ref", pb, o, bound, o->time_limit);
    nmp_problem_free(pb);
    free(a);
}

/* Per (family, shape, solver): how often the dp optimum is reached, mean gap, mean/max time. */
static void suite_small(const options *o)
{
    static const int64_t shapes[][2] = { { 32, 16 }, { 128, 20 }, { 64, 24 }, { 128, 28 } };
    printf("\n## small instances: optimum from dp, %d per family and shape\n", o->small_count);
    printf("# %-10s %9s %-9s %6s %10s %10s %10s\n", "family", "shape", "solver", "hits",
           "mean_gap%", "mean_s", "max_s");
    for (int kind = 0; kind < 2; kind++)
        for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
            const int64_t rows = shapes[sh][0], cols = shapes[sh][1];
            int hits[MAX_SOLVERS] = { 0 };
            double gap[MAX_SOLVERS] = { 0 }, tsum[MAX_SOLVERS] = { 0 }, tmax[MAX_SOLVERS] = { 0 };
            for (int t = 0; t < o->small_count; t++) {
                float *a = gen_matrix(rows, cols, kind, 1000u * (uint64_t)cols + (uint64_t)t);
                nmp_problem *pb = make_problem(a, rows, cols);
                nmp_result opt, r;
                if (!run(pb, "dp", o, 0, &opt))
                    exit(2);
                for (int s = 0; s < o->nsolvers; s++) {
                    if (!run(pb, o->solvers[s], o, o->time_limit, &r))
                        continue;
                    hits[s] += r.score >= opt.score - 1e-6 * opt.score;
                    gap[s] += 100 * (opt.score - r.score) / opt.score;
                    tsum[s] += r.seconds;
                    tmax[s] = fmax(tmax[s], r.seconds);
                }
                nmp_problem_free(pb);
                free(a);
            }
            char shape[32];
            snprintf(shape, sizeof shape, "%lldx%lld", (long long)rows, (long long)cols);
            for (int s = 0; s < o->nsolvers; s++)
                printf("  %-10s %9s %-9s %3d/%-2d %10.4f %10.4f %10.4f\n",
                       kind ? "uniform" : "absnormal", shape, o->solvers[s], hits[s],
                       o->small_count, gap[s] / o->small_count, tsum[s] / o->small_count,
                       tmax[s]);
            fflush(stdout);
        }
}

static void suite_square(const options *o)
{
    header("square |N(0,1)| matrices, 2:4 (gap against the row bound or --bound)");
    for (int q = 0; q < o->nsquares; q++) {
        const int64_t n = o->squares[q];
        float *a = gen_matrix(n, n, 0, (uint64_t)n);
        nmp_problem *pb = make_problem(a, n, n);
        double bound = nmp_score_row_bound(pb);
        nmp_result r;
        if (o->bound_solver && run(pb, o->bound_solver, o, o->time_limit, &r))
            bound = r.bound;
        char name[32];
        snprintf(name, sizeof name, "absnormal_%lld", (long long)n);
        table_instance(name, pb, o, bound, o->time_limit);
        nmp_problem_free(pb);
        free(a);
    }
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
    options o = { .small_count = 25, .time_limit = 300, .threads = 0 };
    static const char *const defaults[] = { "auto", "osg", "lns", "anneal", "lap", "swap" };
    static const int64_t default_squares[] = { 64, 256, 512, 1024, 2048, 4096 };
    o.ref = o.small = o.square = 1;
    for (size_t k = 0; k < sizeof defaults / sizeof defaults[0]; k++)
        if (nmp_solver_find(defaults[k]))
            o.solvers[o.nsolvers++] = defaults[k];
    memcpy(o.squares, default_squares, sizeof default_squares);
    o.nsquares = 6;
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
        if (!strcmp(arg, "--solvers")) {
            o.nsolvers = split_list(argv[k], o.solvers, MAX_SOLVERS);
        } else if (!strcmp(arg, "--suite")) {
            o.ref = strstr(val, "ref") != NULL;
            o.small = strstr(val, "small") != NULL;
            o.square = strstr(val, "square") != NULL;
        } else if (!strcmp(arg, "--small-count")) {
            o.small_count = atoi(val);
        } else if (!strcmp(arg, "--square")) {
            const char *sizes[16];
            o.nsquares = split_list(argv[k], sizes, 16);
            for (int q = 0; q < o.nsquares; q++)
                o.squares[q] = atoll(sizes[q]);
        } else if (!strcmp(arg, "--time-limit")) {
            o.time_limit = atof(val);
        } else if (!strcmp(arg, "--threads")) {
            o.threads = atoi(val);
        } else if (!strcmp(arg, "--bound")) {
            o.bound_solver = val;
        } else {
            usage();
            return 1;
        }
    }
    for (int s = 0; s < o.nsolvers; s++)
        if (!nmp_solver_find(o.solvers[s])) {
            fprintf(stderr, "bench_solvers: unknown solver '%s'\n", o.solvers[s]);
            return 1;
        }
    printf("# nmperm %s bench_solvers: seed 1, threads %d (0 = OpenMP default), time limit %g s "
           "(auto: its own default budget)\n", nmp_version(), o.threads, o.time_limit);
    if (o.ref)
        suite_ref(&o);
    if (o.small)
        suite_small(&o);
    if (o.square)
        suite_square(&o);
    return 0;
}

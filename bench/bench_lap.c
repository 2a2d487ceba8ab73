/* bench_lap.c: the LAP move's weight kernel per instruction set, alone and inside a round
 *
 * Per size (|N(0,1)| R x R, 2:4, seed 1; blocks of --block (256) groups; one thread):
 *   kernel   G entries/s of nmp_lap_fill_tile over one block x block weight matrix, tiled as
 *            the move tiles it (chunks of 256 rows, 16 columns b per tile); best of --reps
 *   round    seconds of one nmp_lap_move_round from the identity (4 selections: thresholds,
 *            weights, assignment, apply), median of --reps fresh starts
 * and each path's weights checked equal, bit for bit, to the generic path's. The test suite
 * asserts the equality, never a time; this table is where the speed is measured.
 */
#include "nmp_solvers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const isa_name[] = { "generic", "avx2", "avx512" };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *xmalloc(size_t size)
{
    void *p = malloc(size);
    if (!p) {
        fprintf(stderr, "bench_lap: out of memory\n");
        exit(1);
    }
    return p;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* w = the k x k weights of columns c against thresholds t (tiles of NMP_LAP_TILE_B), as the move
 * fills them; returns the seconds taken. */
static double fill(nmp_lap_isa isa, const float *const *c, const float *t, int64_t k,
                   int64_t rows, double *w)
{
    const double t0 = now();
    memset(w, 0, (size_t)(k * k) * sizeof *w);
    for (int64_t j0 = 0; j0 < rows; j0 += 256)
        for (int64_t b0 = 0; b0 < k; b0 += NMP_LAP_TILE_B) {
            const float *tile = t + (b0 / NMP_LAP_TILE_B * rows + j0) * NMP_LAP_TILE_B;
            nmp_lap_fill_tile(isa, c, 0, k, j0, NMP_MIN(256, rows - j0), tile, w, k, b0,
                              NMP_MIN(NMP_LAP_TILE_B, k - b0));
        }
    return now() - t0;
}

static void run(int64_t rows, int64_t k, int reps)
{
    const int64_t cols = rows;
    nmp_rng r;
    nmp_rng_seed(&r, 1);
    float *x = xmalloc((size_t)(rows * cols) * sizeof *x);
    for (int64_t i = 0; i < rows * cols; i++)
        x[i] = (float)fabs(nmp_rng_normal(&r));
    nmp_problem_desc d = { 0 };
    d.weights = nmp_matrix_view(x, rows, cols);
    d.nm.n = 2;
    d.nm.m = 4;
    nmp_problem *pb = NULL;
    if (nmp_problem_create(&d, &pb, NULL) != NMP_OK) {
        fprintf(stderr, "bench_lap: problem %lld x %lld refused\n", (long long)rows,
                (long long)cols);
        exit(1);
    }
    /* kernel inputs: k columns of the matrix, thresholds from k others */
    const float **c = xmalloc((size_t)k * sizeof *c);
    float *t = xmalloc((size_t)(k * rows) * sizeof *t);
    for (int64_t a = 0; a < k; a++) {
        c[a] = x + a * rows;
        const float *y = x + ((a + k) % cols) * rows;
        for (int64_t j = 0; j < rows; j++)
            t[((a / NMP_LAP_TILE_B) * rows + j) * NMP_LAP_TILE_B + a % NMP_LAP_TILE_B] = y[j];
    }
    double *w = xmalloc((size_t)(k * k) * sizeof *w), *w0 = xmalloc((size_t)(k * k) * sizeof *w0);
    double *times = xmalloc((size_t)reps * sizeof *times);
    double base = 0;
    for (int isa = NMP_LAP_ISA_GENERIC; isa <= NMP_LAP_ISA_AVX512; isa++) {
        if (!nmp_lap_isa_supported((nmp_lap_isa)isa)) {
            printf("%6lld  %-8s  (not supported by this CPU or build)\n", (long long)rows,
                   isa_name[isa]);
            continue;
        }
        double best = 1e30;
        for (int q = 0; q < reps; q++)
            best = NMP_MIN(best, fill((nmp_lap_isa)isa, c, t, k, rows, w));
        const char *same = "-";
        if (isa == NMP_LAP_ISA_GENERIC)
            memcpy(w0, w, (size_t)(k * k) * sizeof *w);
        else
            same = memcmp(w, w0, (size_t)(k * k) * sizeof *w) == 0 ? "yes" : "NO";
        /* a round from the identity, fresh each time */
        for (int q = 0; q < reps; q++) {
            nmp_eval *ev = NULL;
            nmp_lap_move *lm = NULL;
            if (nmp_eval_create(pb, NULL, &ev) != NMP_OK ||
                nmp_lap_move_create(pb, k, 1, 1, &lm) != NMP_OK ||
                nmp_lap_move_set_isa(lm, (nmp_lap_isa)isa) != NMP_OK) {
                fprintf(stderr, "bench_lap: out of memory\n");
                exit(1);
            }
            nmp_rng rr;
            nmp_rng_seed(&rr, 2);
            bool stopped = false;
            const double t0 = now();
            nmp_lap_move_round(lm, ev, &rr, NULL, NULL, &stopped);
            times[q] = now() - t0;
            nmp_lap_move_free(lm);
            nmp_eval_free(ev);
        }
        qsort(times, (size_t)reps, sizeof *times, cmp_double);
        const double round = times[reps / 2];
        if (isa == NMP_LAP_ISA_GENERIC)
            base = round;
        printf("%6lld  %-8s  %8.2f  %9.2f  %9.4f  %10.2f  %s\n", (long long)rows, isa_name[isa],
               1e-9 * (double)(k * k * rows) / best, 1e3 * best, round, base / round, same);
    }
    free(times);
    free(w0);
    free(w);
    free(t);
    free(c);
    nmp_problem_free(pb);
    free(x);
}

int main(int argc, char **argv)
{
    int reps = 5;
    int64_t block = 256;
    int64_t sizes[8];
    int nsizes = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--block") && i + 1 < argc)
            block = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--rows") && i + 1 < argc && nsizes < 8)
            sizes[nsizes++] = atoll(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_lap [--rows R]... [--block K] [--reps N]\n"
                            "  the LAP weight kernel per instruction set (default rows 1024 "
                            "and 4096, blocks of 256 groups, 5 reps)\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 1000) {
        fprintf(stderr, "bench_lap: --reps must be 1..1000\n");
        return 2;
    }
    if (nsizes == 0) {
        sizes[nsizes++] = 1024;
        sizes[nsizes++] = 4096;
    }
    printf("# blocks of %lld groups\n", (long long)block);
    printf("# rows  isa       Gentry/s  fill(ms)   round(s)  round_speedup  same_bits\n");
    for (int i = 0; i < nsizes; i++) {
        if (sizes[i] < 1024 || sizes[i] % 4 || sizes[i] > 16384) {
            fprintf(stderr, "bench_lap: --rows must be a multiple of 4 in 1024..16384\n");
            return 2;
        }
        if (block < 16 || block > sizes[i] / 4) {
            fprintf(stderr, "bench_lap: --block must be 16..rows/4\n");
            return 2;
        }
        run(sizes[i], block, reps);
    }
    return 0;
}

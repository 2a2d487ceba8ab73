/* nmp_lap_kernel.c: the LAP move's weight kernel, w(a, b) += sum_j max(c_a(j), t_b(j)), with
 * one portable path and two x86 paths chosen at run time
 *
 * Why a file of its own: this loop is ~73 % of auto's time from 1024 columns (perf, 1024^2, one
 * thread), and the portable C vectorises to SSE2 only (x86-64's baseline: 4 floats per
 * instruction, ~11 G entries/s per core here). The AVX2 and AVX-512 paths below are compiled
 * with the target attribute (GCC, Clang) and picked by the CPU's features, as BLIS picks its
 * kernels, so the build stays portable.
 *
 * Same result on every path, bit for bit: each (a, b) is summed in the order of the portable
 * loop the move had before this file: within a chunk of rows, 8 float partial sums, partial q
 * taking the rows j = q (mod 8) in increasing j, the rows past the last multiple of 8 going to
 * partial 0; the chunk's value is ((0 + p0) + p1) + ... + p7, added to w as a double. The paths
 * differ only in how many (a, b) pairs one instruction carries: the thresholds t are laid out in
 * tiles of NMP_LAP_TILE_B columns b, row-major within the tile (t[j * 16 + l] is column
 * b0 + l), so one vector holds one row j of 8 or 16 different b and the 8 partials of a pair are
 * 8 registers. max(x, y) is x > y ? x : y everywhere (the x86 max instruction's own rule).
 * Expected and measured speed: docs/benchmarks.md ("Issue 10, 2026-12-06, part 2").
 */
#include "nmp_solvers.h"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define LAPK_X86 1
#include <immintrin.h>
#else
#define LAPK_X86 0
#endif

#define Q 8 /* partial sums per pair */
#define B NMP_LAP_TILE_B

/* Portable: the same sums, one partial q at a time (rows j = q, q + 8, ...) with the tile's 16
 * columns as the inner loop, which compilers keep in vector registers (SSE2: 8.6 G entries/s
 * here; the 8 partials side by side as one array did not stay in registers: 1.9). */
static void tile_generic(const float *const *c, int64_t a0, int64_t a1, int64_t j0, int64_t len,
                         const float *t, double *w, int64_t k, int64_t b0, int64_t nb)
{
    const int64_t main_rows = len / Q * Q;
    for (int64_t a = a0; a < a1; a++) {
        const float *restrict ca = c[a] + j0;
        float part[B] = { 0 };
        for (int q = 0; q < Q; q++) {
            float acc[B] = { 0 };
            for (int64_t j = q; j < main_rows; j += Q) {
                const float x = ca[j];
                const float *restrict tj = t + j * B;
                for (int l = 0; l < B; l++)
                    acc[l] += NMP_MAX(x, tj[l]);
            }
            if (q == 0) /* the rows past the last multiple of 8 */
                for (int64_t j = main_rows; j < len; j++)
                    for (int l = 0; l < B; l++)
                        acc[l] += NMP_MAX(ca[j], t[j * B + l]);
            for (int l = 0; l < B; l++)
                part[l] += acc[l];
        }
        double *wa = w + a * k + b0;
        for (int l = 0; l < nb; l++)
            wa[l] += (double)part[l];
    }
}

#if LAPK_X86

/* The columns of rows a .. a + A - 1 from row j0; past a1 (na of them are real) the last real
 * one again, computed on and never stored. */
static void pick_cols(const float *const *c, int64_t a, int na, int64_t j0, int A,
                      const float **ca)
{
    for (int h = 0; h < A; h++)
        ca[h] = c[a + NMP_MIN(h, na - 1)] + j0;
}

/* w rows a .. a + na - 1, columns b0 .. b0 + nb - 1 += the chunk's partial sums. */
static void add_parts(double *w, int64_t k, int64_t b0, int64_t nb, int64_t a, int na,
                      const float (*part)[B])
{
    for (int h = 0; h < na; h++) {
        double *wa = w + (a + h) * k + b0;
        for (int l = 0; l < nb; l++)
            wa[l] += (double)part[h][l];
    }
}

/* AVX2: four a against the tile's 16 columns, one partial q at a time (as the portable loop):
 * 8 accumulator registers, two loads of t per row shared by the four. */
__attribute__((target("avx2"))) static void tile_avx2(const float *const *c, int64_t a0,
                                                      int64_t a1, int64_t j0, int64_t len,
                                                      const float *t, double *w, int64_t k,
                                                      int64_t b0, int64_t nb)
{
    enum { A = 4 };
    const int64_t main_rows = len / Q * Q;
    float part[A][B];
    for (int64_t a = a0; a < a1; a += A) {
        const int na = (int)NMP_MIN(A, a1 - a);
        const float *ca[A];
        pick_cols(c, a, na, j0, A, ca);
        __m256 p[A][2];
        for (int h = 0; h < A; h++)
            p[h][0] = p[h][1] = _mm256_setzero_ps();
        for (int q = 0; q < Q; q++) {
            __m256 acc[A][2];
            for (int h = 0; h < A; h++)
                acc[h][0] = acc[h][1] = _mm256_setzero_ps();
            const int64_t end = q == 0 ? len : main_rows; /* partial 0 takes the tail rows */
            for (int64_t j = q; j < end; j += j < main_rows ? Q : 1) {
                const __m256 t0 = _mm256_loadu_ps(t + j * B), t1 = _mm256_loadu_ps(t + j * B + 8);
                for (int h = 0; h < A; h++) {
                    const __m256 x = _mm256_broadcast_ss(ca[h] + j);
                    acc[h][0] = _mm256_add_ps(acc[h][0], _mm256_max_ps(x, t0));
                    acc[h][1] = _mm256_add_ps(acc[h][1], _mm256_max_ps(x, t1));
                }
            }
            for (int h = 0; h < A; h++) {
                p[h][0] = _mm256_add_ps(p[h][0], acc[h][0]);
                p[h][1] = _mm256_add_ps(p[h][1], acc[h][1]);
            }
        }
        for (int h = 0; h < na; h++) {
            _mm256_storeu_ps(part[h], p[h][0]);
            _mm256_storeu_ps(part[h] + 8, p[h][1]);
        }
        add_parts(w, k, b0, nb, a, na, (const float(*)[B])part);
    }
}

/* AVX-512: eight a against the tile's 16 columns, one partial q at a time: 8 accumulator
 * registers, one load of t per row shared by the eight. */
__attribute__((target("avx512f"))) static void tile_avx512(const float *const *c, int64_t a0,
                                                           int64_t a1, int64_t j0, int64_t len,
                                                           const float *t, double *w,
                                                           int64_t k, int64_t b0, int64_t nb)
{
    enum { A = 8 };
    const int64_t main_rows = len / Q * Q;
    float part[A][B];
    for (int64_t a = a0; a < a1; a += A) {
        const int na = (int)NMP_MIN(A, a1 - a);
        const float *ca[A];
        pick_cols(c, a, na, j0, A, ca);
        __m512 p[A];
        for (int h = 0; h < A; h++)
            p[h] = _mm512_setzero_ps();
        for (int q = 0; q < Q; q++) {
            __m512 acc[A];
            for (int h = 0; h < A; h++)
                acc[h] = _mm512_setzero_ps();
            const int64_t end = q == 0 ? len : main_rows; /* partial 0 takes the tail rows */
            for (int64_t j = q; j < end; j += j < main_rows ? Q : 1) {
                const __m512 tj = _mm512_loadu_ps(t + j * B);
                for (int h = 0; h < A; h++)
                    acc[h] = _mm512_add_ps(acc[h], _mm512_max_ps(_mm512_set1_ps(ca[h][j]), tj));
            }
            for (int h = 0; h < A; h++)
                p[h] = _mm512_add_ps(p[h], acc[h]);
        }
        for (int h = 0; h < na; h++)
            _mm512_storeu_ps(part[h], p[h]);
        add_parts(w, k, b0, nb, a, na, (const float(*)[B])part);
    }
}

#endif

bool nmp_lap_isa_supported(nmp_lap_isa isa)
{
    switch (isa) {
    case NMP_LAP_ISA_GENERIC:
        return true;
#if LAPK_X86
    case NMP_LAP_ISA_AVX2:
        return __builtin_cpu_supports("avx2");
    case NMP_LAP_ISA_AVX512:
        return __builtin_cpu_supports("avx512f");
#endif
    default:
        return false;
    }
}

nmp_lap_isa nmp_lap_isa_best(void)
{
    if (nmp_lap_isa_supported(NMP_LAP_ISA_AVX512))
        return NMP_LAP_ISA_AVX512;
    if (nmp_lap_isa_supported(NMP_LAP_ISA_AVX2))
        return NMP_LAP_ISA_AVX2;
    return NMP_LAP_ISA_GENERIC;
}

void nmp_lap_fill_tile(nmp_lap_isa isa, const float *const *c, int64_t a0, int64_t a1,
                       int64_t j0, int64_t len, const float *t, double *w, int64_t k, int64_t b0,
                       int64_t nb)
{
    switch (isa) {
#if LAPK_X86
    case NMP_LAP_ISA_AVX512:
        tile_avx512(c, a0, a1, j0, len, t, w, k, b0, nb);
        return;
    case NMP_LAP_ISA_AVX2:
        tile_avx2(c, a0, a1, j0, len, t, w, k, b0, nb);
        return;
#endif
    default:
        tile_generic(c, a0, a1, j0, len, t, w, k, b0, nb);
        return;
    }
}

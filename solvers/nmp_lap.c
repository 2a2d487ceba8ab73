/* nmp_lap.c: linear assignment (shortest augmenting paths) and position-wise assignment moves
 *
 * The move ("lap"): take one column out of each of k groups (the column at position p, or a
 * random position per group: `pick`); put the k columns back, one per group, in the best way.
 * With the m-1 columns that stay in group b fixed, the value of giving it column c is, per row,
 *   D(rest_b + c) = top_n(rest_b) + max(0, c_j - t_bj),  t_bj = n-th largest of rest_b in row j,
 * the formula nmp_eval's swap delta uses. The first term does not depend on c, so the best
 * reassignment maximises sum_a w(a, assign(a)) over the k x k matrix
 *   w(a, b) = sum_j max(0, s(j, c_a) - t_bj),
 * where c_a is the column group a gave up; a linear assignment problem, solved exactly below.
 * The current grouping is the diagonal, so a move never loses; a move is applied only if its
 * exact gain (nmp_eval_regroup_delta) is positive. rest_b comes from the cached (n-th, (n+1)-th)
 * values of nmp_eval: t_bj = vn1 if group b's column is kept in row j (it is >= vn), else vn.
 * Building w costs k^2 rows, solving it O(k^3) (in practice ~k^2.5). One move searches k!
 * reassignments at once, which swaps (2-cycles) and OSG windows cannot: on |N(0,1)| squares LAP
 * alone reaches 26 % efficacy at 256^2 in 20 ms and 17-18 % at 1024^2 in ~1.5 s of one core,
 * above apex's OSG at 100-300x less time (measured with the SSE2 weight loop; the AVX-512 kernel
 * and the row reduction make a 1024^2 round ~2x faster since, bench_lap).
 * Positions: `pick` 1 (default) takes a random position out of every group in each selection;
 * measured it beats cycling positions 0..m-1 clearly (256^2: 29.4 % vs 26.0 %; 1024^2: 18.2 % vs
 * 17.0 %), since it reaches m^G different selections instead of m.
 * Scale: a selection over all G groups costs G^2 rows; larger G are split into random blocks of
 * at most `block` groups (a fresh split per selection). Larger blocks are stronger (4096^2:
 * blocks of 256, 512, 1024: 9.7, 10.1, 10.4 % at 50, 63, 173 s of one core).
 * Threads: the blocks of a selection hold disjoint groups, so their assignments are independent:
 * they are solved side by side (one scratch set per thread) and applied in block order; a single
 * block shares its weight matrix among the threads by rows. Either way each value is computed by
 * one thread in a fixed order: the result does not depend on the thread count.
 * As a solver: rounds (m selections each) until one (cycling) or two in a row (random positions)
 * improve nothing. auto calls nmp_lap_move_round; nmp_lap_move_groups (one move on chosen groups)
 * has no caller at present, in the library or its tests.
 * Clock: a time limit is looked at between blocks, every 64 rows of a weight matrix per thread
 * and every ~1e6 scanned entries of an assignment, so a limit ends a round within ~1 ms of work
 * at any block size (bench/bench_limits.c); a block cut short is dropped, not applied. Without
 * a limit nothing is skipped: the checks change no result.
 */
#include "nmp_solvers.h"

#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Rows per float partial sum, as in nmp_eval.c (8 partial sums within: nmp_lap_kernel.c). */
#define LAP_ROWS 256
#define LAP_CHECK_ROWS 64       /* rows of w a thread fills between two looks at the clock */
#define LAP_CHECK_WORK 1048576  /* entries an assignment scans between two looks at the clock */

/* ----------------------------------------------------- linear assignment */

size_t nmp_lap_scratch_size(int64_t n)
{
    const size_t k = (size_t)NMP_MAX(n, 1);
    return k * (2 * sizeof(double) + 4 * sizeof(int32_t));
}

/* Jonker & Volgenant's augmenting row reduction, two passes over the free rows: a free row i
 * takes the column j1 of its least reduced cost u1 = c(i, j1) - v_j1 and lowers v_j1 by the gap
 * to its second least u2, so that j1 stays its best column; the row that held j1 becomes free
 * and, when the gap was positive, is taken next (else in the next pass). Keeps the invariant the
 * shortest paths need (an assigned row's column has its least reduced cost: c(i, j) - v_j >=
 * c(i, col_of[i]) - v_col_of[i] for all j) and leaves few free rows for them. At most 2n rows per
 * pass (floating-point gaps can be tiny); those not reached stay free. `free_rows` has n
 * entries of scratch. True when clk expired (*work counts entries scanned, as lap_assign). */
static bool reduce_rows(int64_t n, const double *cost, double sign, double *v, int32_t *col_of,
                        int32_t *row_of, int32_t *free_rows, const nmp_clock *clk,
                        int64_t *work)
{
#define C(i, j) (sign * cost[(i) * n + (j)])
    int64_t nfree = 0;
    if (n < 2) /* column reduction matched the one row */
        return false;
    for (int64_t i = 0; i < n; i++)
        if (col_of[i] < 0)
            free_rows[nfree++] = (int32_t)i;
    for (int pass = 0; pass < 2 && nfree > 0; pass++) {
        const int64_t listed = nfree;
        int64_t k = 0, steps = 0;
        nfree = 0; /* the next pass's list is written over the entries already read */
        while (k < listed && steps++ < 2 * n) {
            const int32_t i = free_rows[k++];
            double u1 = C(i, 0) - v[0], u2 = HUGE_VAL;
            int64_t j1 = 0, j2 = -1;
            for (int64_t j = 1; j < n; j++) {
                const double h = C(i, j) - v[j];
                if (h < u2) {
                    if (h >= u1) {
                        u2 = h;
                        j2 = j;
                    } else {
                        u2 = u1;
                        j2 = j1;
                        u1 = h;
                        j1 = j;
                    }
                }
            }
            int32_t i0 = row_of[j1];
            if (u1 < u2)
                v[j1] -= u2 - u1;
            else if (i0 >= 0 && j2 >= 0) { /* a tie: take the second, free if it can be */
                j1 = j2;
                i0 = row_of[j2];
            }
            row_of[j1] = i;
            col_of[i] = (int32_t)j1;
            if (i0 >= 0) {
                col_of[i0] = -1;
                if (u1 < u2)
                    free_rows[--k] = i0;
                else
                    free_rows[nfree++] = i0;
            }
            if ((*work += n) >= LAP_CHECK_WORK) {
                *work = 0;
                if (nmp_clock_expired(clk))
                    return true;
            }
        }
        while (k < listed) /* the step cap: the rest stay free */
            free_rows[nfree++] = free_rows[k++];
    }
#undef C
    return false;
}

/* min (or max) sum_r cost[r * n + assign[r]] over permutations assign.
 * Jonker & Volgenant's shortest augmenting paths (LAPJV, 1987): column reduction
 * v_j = min_i c(i, j) matches each column's argmin row if it is still free (~60 % of the rows
 * on random dense matrices), augmenting row reduction (reduce_rows) most of the rest; every
 * free row left then grows a Dijkstra tree over the reduced costs c(i, j) - v_j (row potentials
 * implicit) until it reaches a free column, updates the column potentials of the scanned columns once at the end, and flips
 * the path. Columns are kept in one array split into scanned | to-scan (at the current minimum
 * distance) | the rest, so each step scans only the rest. O(n^3) worst case, ~2x faster than
 * the textbook Hungarian that updates every potential at every step. The potentials keep the
 * reduced costs non-negative, so ties and negative costs need no care.
 * clk (may be NULL): looked at every ~LAP_CHECK_WORK scanned entries; once its limit has passed
 * the solve gives up (*stopped, assign unwritten). */
static nmp_err lap_assign(int64_t n, const double *cost, bool maximise, int32_t *assign,
                          void *scratch, const nmp_clock *clk, bool *stopped)
{
    *stopped = false;
    if (n < 0 || (n > 0 && (!cost || !assign || !scratch)) || n >= INT32_MAX)
        return NMP_ERR_ARG;
    if (n == 0)
        return NMP_OK;
    int64_t work = 0; /* entries scanned since the clock was last looked at */
    const size_t k = (size_t)n;
    double *v = scratch, *d = v + k;
    int32_t *col_of = (int32_t *)(d + k), *row_of = col_of + k, *pred = row_of + k,
            *list = pred + k;
    const double sign = maximise ? -1.0 : 1.0;
#define C(i, j) (sign * cost[(i) * n + (j)])
    /* column reduction, row by row (the matrix is row-major: read in order, the inner loop over
     * columns vectorises; by columns it was 22 % of the solve at n = 1024): v_j = the least
     * c(i, j), pred[j] = its first row i */
    bool finite = true;
    for (int64_t j = 0; j < n; j++) {
        v[j] = HUGE_VAL;
        pred[j] = -1;
    }
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < n; j++) {
            const double c = C(i, j);
            finite &= fabs(c) < HUGE_VAL; /* false for NaN too */
            if (c < v[j]) {
                v[j] = c;
                pred[j] = (int32_t)i;
            }
        }
        if ((work += n) >= LAP_CHECK_WORK) {
            work = 0;
            if (nmp_clock_expired(clk)) {
                *stopped = true;
                return NMP_OK;
            }
        }
    }
    if (!finite) /* the row reduction and the paths assume finite costs */
        return NMP_ERR_ARG;
    for (int64_t i = 0; i < n; i++)
        col_of[i] = -1;
    for (int64_t j = 0; j < n; j++) { /* each column to its row, if that row is still free */
        const int32_t i = pred[j];
        row_of[j] = -1;
        if (col_of[i] < 0) {
            col_of[i] = (int32_t)j;
            row_of[j] = i;
        }
    }
    if (reduce_rows(n, cost, sign, v, col_of, row_of, list, clk, &work)) {
        *stopped = true;
        return NMP_OK;
    }
    for (int64_t free_row = 0; free_row < n; free_row++) {
        if (col_of[free_row] >= 0)
            continue;
        for (int64_t j = 0; j < n; j++) {
            d[j] = C(free_row, j) - v[j];
            pred[j] = (int32_t)free_row;
            list[j] = (int32_t)j;
        }
        /* list[0..low): scanned; list[low..up): at distance dmin, to scan; list[up..n): rest */
        int64_t low = 0, up = 0, last = 0, end = -1;
        double dmin = 0;
        while (end < 0) {
            if (up == low) { /* the next distance level: every column at the least distance */
                last = low;
                dmin = HUGE_VAL;
                for (int64_t t = up; t < n; t++) {
                    const int32_t j = list[t];
                    if (d[j] <= dmin) {
                        if (d[j] < dmin) {
                            up = low;
                            dmin = d[j];
                        }
                        list[t] = list[up];
                        list[up++] = j;
                    }
                }
                if (!(dmin < HUGE_VAL)) /* only with non-finite costs */
                    return NMP_ERR_ARG;
                for (int64_t t = low; t < up; t++)
                    if (row_of[list[t]] < 0) {
                        end = list[t];
                        break;
                    }
                if (end >= 0)
                    break;
            }
            if ((work += n - low) >= LAP_CHECK_WORK) {
                work = 0;
                if (nmp_clock_expired(clk)) {
                    *stopped = true;
                    return NMP_OK;
                }
            }
            const int32_t j1 = list[low++];
            const int64_t i = row_of[j1];
            const double h = C(i, j1) - v[j1] - dmin;
            for (int64_t t = up; t < n; t++) {
                const int32_t j = list[t];
                const double dj = C(i, j) - v[j] - h;
                if (dj < d[j]) {
                    d[j] = dj;
                    pred[j] = (int32_t)i;
                    if (dj == dmin) {
                        if (row_of[j] < 0) {
                            end = j;
                            break;
                        }
                        list[t] = list[up];
                        list[up++] = j;
                    }
                }
            }
        }
        for (int64_t t = 0; t < last; t++) { /* potentials of the columns scanned before */
            const int32_t j = list[t];
            v[j] += d[j] - dmin;
        }
        for (;;) { /* flip the path */
            const int32_t i = pred[end];
            const int32_t next = col_of[i];
            row_of[end] = i;
            col_of[i] = (int32_t)end;
            if (i == free_row)
                break;
            end = next;
        }
    }
#undef C
    for (int64_t i = 0; i < n; i++)
        assign[i] = col_of[i];
    return NMP_OK;
}

nmp_err nmp_lap_solve(int64_t n, const double *cost, bool maximise, int32_t *assign,
                      void *scratch)
{
    bool stopped;
    return lap_assign(n, cost, maximise, assign, scratch, NULL, &stopped);
}

/* ------------------------------------------------------------- the move */

/* What one thread needs to solve one block. */
typedef struct lap_scratch {
    float *t;          /* tiles(block) * NMP_LAP_TILE_B * rows: t_bj, the n-th largest of group b
                        * without its column, in tiles of NMP_LAP_TILE_B groups b (row-major
                        * within the tile; the lanes past the block's last group are computed
                        * on and never read: zero at first, then a former block's values) */
    const float **c;   /* block: the columns taken out */
    double *w;         /* block * block */
    void *lap;         /* nmp_lap_scratch_size(block) */
} lap_scratch;

struct nmp_lap_move {
    const nmp_problem *pb;
    int64_t block;     /* most groups per assignment */
    int pick;          /* 0: position p of every group; 1: a random position per group */
    int threads;       /* OpenMP threads */
    nmp_lap_isa isa;   /* the weight kernel's instruction set */
    int nscr;          /* scratch sets: one per thread that solves blocks side by side */
    lap_scratch *scr;
    int32_t *assign;   /* groups: the assignment found for each block, at the block's offset */
    double *gain;      /* blocks: its estimated gain */
    int64_t *order;    /* groups: the random split into blocks */
    int64_t *changed;  /* block: groups whose column changes */
    int32_t *cols;     /* block * m: their new columns */
    uint8_t *sel;      /* groups: the position taken out of each group */
    const nmp_clock *clk; /* the round's clock (NULL: none): blocks give up once it expires */
};

/* Tiles of NMP_LAP_TILE_B groups that hold k groups. */
static size_t tiles(int64_t k)
{
    return (size_t)((k + NMP_LAP_TILE_B - 1) / NMP_LAP_TILE_B);
}

void nmp_lap_move_free(nmp_lap_move *lm)
{
    if (!lm)
        return;
    for (int q = 0; lm->scr && q < lm->nscr; q++) {
        nmp_free(lm->scr[q].t);
        nmp_free(lm->scr[q].c);
        nmp_free(lm->scr[q].w);
        nmp_free(lm->scr[q].lap);
    }
    nmp_free(lm->scr);
    nmp_free(lm->assign);
    nmp_free(lm->gain);
    nmp_free(lm->order);
    nmp_free(lm->changed);
    nmp_free(lm->cols);
    nmp_free(lm->sel);
    nmp_free(lm);
}

nmp_err nmp_lap_move_create(const nmp_problem *pb, int64_t block, int pick, int threads,
                            nmp_lap_move **out)
{
    nmp_err e = NMP_OK;
    nmp_lap_move *lm = nmp_calloc(1, sizeof *lm);
    *out = NULL;
    if (!lm)
        return NMP_ERR_NOMEM;
    const size_t groups = (size_t)pb->groups;
    block = NMP_MIN(NMP_MAX(block, 2), NMP_MAX(pb->groups, 1));
    lm->pb = pb;
    lm->block = block;
    lm->pick = pick;
    lm->threads = NMP_MAX(1, threads);
    lm->isa = nmp_lap_isa_best();
    const int64_t nb = (pb->groups + block - 1) / block;
    lm->nscr = (int)NMP_MAX(1, NMP_MIN(lm->threads, nb));
    const size_t k = (size_t)block;
    lm->scr = nmp_calloc((size_t)lm->nscr, sizeof *lm->scr);
    lm->assign = nmp_malloc(groups * sizeof *lm->assign);
    lm->gain = nmp_malloc((size_t)nb * sizeof *lm->gain);
    lm->order = nmp_malloc(groups * sizeof *lm->order);
    lm->changed = nmp_malloc(k * sizeof *lm->changed);
    lm->cols = nmp_malloc(k * (size_t)pb->m * sizeof *lm->cols);
    lm->sel = nmp_malloc(groups * sizeof *lm->sel);
    if (!lm->scr || !lm->assign || !lm->gain || !lm->order || !lm->changed || !lm->cols ||
        !lm->sel) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    for (int q = 0; q < lm->nscr; q++) {
        lap_scratch *sc = &lm->scr[q];
        sc->t = nmp_calloc(tiles(block) * NMP_LAP_TILE_B * (size_t)pb->rows, sizeof *sc->t);
        sc->c = nmp_malloc(k * sizeof *sc->c);
        sc->w = nmp_malloc(k * k * sizeof *sc->w);
        sc->lap = nmp_malloc(nmp_lap_scratch_size((int64_t)k));
        if (!sc->t || !sc->c || !sc->w || !sc->lap) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
    }
    for (int64_t g = 0; g < pb->groups; g++)
        lm->order[g] = g;
    *out = lm;
    lm = NULL;
out:
    nmp_lap_move_free(lm);
    return e;
}

/* w(a, b) = sum_j max(c_a(j), t_b(j)) for a, b < k. This is the value of the text above plus
 * sum_j t_b(j), a constant per column b of the assignment, which changes no assignment's rank
 * (every b is used once) and saves a subtraction per entry. By chunks of LAP_ROWS rows (one
 * float partial sum each, added in double) and tiles of NMP_LAP_TILE_B columns b (16 KiB of
 * thresholds per chunk, in L1 while every a passes over it); the sums themselves are
 * nmp_lap_fill_tile's (solvers/nmp_lap_kernel.c: AVX-512, AVX2 or portable, the same bits).
 * The rows a of w are shared among `threads` threads; each entry is summed by one thread in a
 * fixed order, so the result does not depend on the thread count. A thread gives up once clk
 * (may be NULL) has expired, looked at every LAP_CHECK_ROWS rows a of a tile, leaving w partial:
 * the caller then drops the block (the clock only moves forwards, so it sees the expiry too). */
static void fill_weights(lap_scratch *sc, int64_t k, int64_t rows, int threads, nmp_lap_isa isa,
                         const nmp_clock *clk)
{
    double *w = sc->w;
    const int64_t nt_b = (int64_t)tiles(k);
    memset(w, 0, (size_t)(k * k) * sizeof *w);
    /* each thread takes a contiguous range of rows a of w and walks all tiles: no barrier but
     * the last, which matters when the machine is shared */
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) if (threads > 1 && k * k * rows > 1000000)
#else
    (void)threads;
#endif
    {
        int64_t a0 = 0, a1 = k;
#ifdef _OPENMP
        const int64_t tid = omp_get_thread_num(), nt = omp_get_num_threads();
        a0 = tid * k / nt;
        a1 = (tid + 1) * k / nt;
#endif
        bool quit = false;
        for (int64_t j0 = 0; j0 < rows && !quit; j0 += LAP_ROWS)
            for (int64_t q = 0; q < nt_b && !quit; q++) {
                const int64_t len = NMP_MIN(LAP_ROWS, rows - j0), b0 = q * NMP_LAP_TILE_B;
                const float *tq = sc->t + (q * rows + j0) * NMP_LAP_TILE_B;
                for (int64_t a = a0; a < a1; a += LAP_CHECK_ROWS) {
                    if (nmp_clock_expired(clk)) {
                        quit = true;
                        break;
                    }
                    nmp_lap_fill_tile(isa, sc->c, a, NMP_MIN(a1, a + LAP_CHECK_ROWS), j0, len,
                                      tq, w, k, b0, NMP_MIN(NMP_LAP_TILE_B, k - b0));
                }
            }
    }
}

/* The best reassignment of the columns taken out of the k groups gl[0..k-1] (group gl[a] gives
 * up its column at position sel): assign[a] = the index b of the group column a goes to.
 * Returns its estimated gain (0 when the current grouping is already the best, or when lm's
 * clock expired during the block). Reads ev only. */
static double solve_block(const nmp_lap_move *lm, lap_scratch *sc, const nmp_eval *ev,
                          const int64_t *gl, int64_t k, int threads, int32_t *assign)
{
    const nmp_problem *pb = lm->pb;
    const int64_t rows = pb->rows;
    const int m = pb->m;
    const int32_t *perm = nmp_eval_perm(ev);
    for (int64_t b = 0; b < k; b++) /* the column group gl[b] gives up */
        sc->c[b] = nmp_col(pb, perm[gl[b] * m + lm->sel[gl[b]]]);
    /* t tile by tile, LAP_ROWS rows at a time, so the tile's lines (16 KiB) stay in L1 while
     * its 16 groups write their lanes */
    for (int64_t b0 = 0; b0 < k; b0 += NMP_LAP_TILE_B) {
        const int64_t b1 = NMP_MIN(k, b0 + NMP_LAP_TILE_B);
        float *tq = sc->t + b0 * rows;
        for (int64_t j0 = 0; j0 < rows; j0 += LAP_ROWS)
            for (int64_t b = b0; b < b1; b++) {
                const int64_t g = gl[b], j1 = NMP_MIN(rows, j0 + LAP_ROWS);
                const float *restrict x = sc->c[b];
                const float *restrict vn = ev->vn + g * rows, *restrict vn1 = ev->vn1 + g * rows;
                float *restrict t = tq + (b - b0);
                for (int64_t j = j0; j < j1; j++) { /* both loads first: a select, no branch */
                    const float lo = vn1[j], hi = vn[j];
                    t[j * NMP_LAP_TILE_B] = x[j] >= hi ? lo : hi;
                }
            }
    }
    fill_weights(sc, k, rows, threads, lm->isa, lm->clk);
    bool stopped = nmp_clock_expired(lm->clk); /* w may be partial */
    if (!stopped && lap_assign(k, sc->w, true, assign, sc->lap, lm->clk, &stopped) != NMP_OK)
        return 0;
    if (stopped)
        return 0;
    double now = 0, best = 0;
    for (int64_t a = 0; a < k; a++) {
        now += sc->w[a * k + a];
        best += sc->w[a * k + assign[a]];
    }
    return best - now > 1e-9 * (fabs(now) + 1.0) ? best - now : 0;
}

/* Applies a block's assignment when it gains exactly; returns the gain applied. */
static double apply_block(nmp_lap_move *lm, nmp_eval *ev, const int64_t *gl, int64_t k,
                          const int32_t *assign)
{
    const int m = lm->pb->m;
    const int32_t *perm = nmp_eval_perm(ev);
    int nc = 0;
    for (int64_t a = 0; a < k; a++) { /* group gl[assign[a]] receives the column of group gl[a] */
        const int64_t b = assign[a];
        if (b == a)
            continue;
        const int64_t g = gl[b];
        memcpy(lm->cols + nc * m, perm + g * m, (size_t)m * sizeof *perm);
        lm->cols[nc * m + lm->sel[g]] = perm[gl[a] * m + lm->sel[gl[a]]];
        lm->changed[nc++] = g;
    }
    const double exact = nmp_eval_regroup_delta(ev, lm->changed, nc, lm->cols);
    if (!(exact > 0))
        return 0;
    nmp_eval_regroup(ev, lm->changed, nc, lm->cols);
    return exact;
}

/* One selection: split into blocks, solve them (side by side when there are several, each block's
 * weights on all threads when there is one), apply them in block order. The blocks hold disjoint
 * groups, so a block's solution does not depend on the others: the result is the same for any
 * thread count. */
static double move_selection(nmp_lap_move *lm, nmp_eval *ev, nmp_clock *clk, int64_t *moves,
                             bool *stopped)
{
    const nmp_problem *pb = lm->pb;
    const int64_t groups = pb->groups;
    const int64_t nb = (groups + lm->block - 1) / lm->block;
    if (nb == 1) {
        lm->gain[0] = solve_block(lm, &lm->scr[0], ev, lm->order, groups, lm->threads, lm->assign);
    } else {
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(lm->nscr) if (lm->nscr > 1)
#endif
        for (int64_t q = 0; q < nb; q++) {
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            const int64_t lo = q * groups / nb, hi = (q + 1) * groups / nb;
            lm->gain[q] = nmp_clock_expired(clk) ? 0
                                                 : solve_block(lm, &lm->scr[tid], ev,
                                                               lm->order + lo, hi - lo, 1,
                                                               lm->assign + lo);
        }
    }
    double gain = 0;
    for (int64_t q = 0; q < nb; q++) {
        const int64_t lo = q * groups / nb, hi = (q + 1) * groups / nb;
        const double d = lm->gain[q] > 0 ? apply_block(lm, ev, lm->order + lo, hi - lo,
                                                        lm->assign + lo)
                                         : 0;
        gain += d;
        if (moves && d > 0)
            (*moves)++;
    }
    if (clk)
        *stopped = nmp_clock_tick(clk, moves ? *moves : 0, nmp_eval_score(ev), pb->row_bound,
                                  "lap", false);
    return gain;
}

nmp_err nmp_lap_move_set_isa(nmp_lap_move *lm, nmp_lap_isa isa)
{
    if (!lm)
        return NMP_ERR_ARG;
    if (!nmp_lap_isa_supported(isa))
        return NMP_ERR_UNSUPPORTED;
    lm->isa = isa;
    return NMP_OK;
}

double nmp_lap_move_groups(nmp_lap_move *lm, nmp_eval *ev, const int64_t *gl, int64_t k,
                           nmp_rng *rng)
{
    const int m = lm->pb->m;
    if (k < 2)
        return 0;
    k = NMP_MIN(k, lm->block);
    lm->clk = NULL;
    for (int64_t b = 0; b < k; b++)
        lm->sel[gl[b]] = (uint8_t)nmp_rng_below(rng, (uint64_t)m);
    const double est = solve_block(lm, &lm->scr[0], ev, gl, k, lm->threads, lm->assign);
    return est > 0 ? apply_block(lm, ev, gl, k, lm->assign) : 0;
}

double nmp_lap_move_round(nmp_lap_move *lm, nmp_eval *ev, nmp_rng *rng, nmp_clock *clk,
                          int64_t *moves, bool *stopped)
{
    const nmp_problem *pb = lm->pb;
    const int64_t groups = pb->groups;
    const int m = pb->m;
    double gain = 0;
    *stopped = false;
    lm->clk = clk;
    if (groups < 2)
        return 0;
    const int64_t nb = (groups + lm->block - 1) / lm->block;
    for (int p = 0; p < m && !*stopped; p++) {
        if (nb > 1 && rng) /* a fresh random split into nb blocks of near-equal size */
            for (int64_t g = groups - 1; g > 0; g--) {
                const int64_t r = (int64_t)nmp_rng_below(rng, (uint64_t)g + 1);
                const int64_t tmp = lm->order[g];
                lm->order[g] = lm->order[r];
                lm->order[r] = tmp;
            }
        for (int64_t g = 0; g < groups; g++)
            lm->sel[g] = (uint8_t)(lm->pick && rng ? (int)nmp_rng_below(rng, (uint64_t)m) : p);
        gain += move_selection(lm, ev, clk, moves, stopped);
    }
    return gain;
}

/* ------------------------------------------------------------ the solver */

static const nmp_param_desc lap_params[] = {
    { "block", 256, 2, 1e6, "most groups in one assignment (cost block^2 * rows + block^3)" },
    { "pick", 1, 0, 1, "column taken out of each group: 0 position p (cycling), 1 random" },
    { "rounds", 0, 0, 1e9, "most rounds (all m positions each); 0: until a round gains nothing" },
    { 0 },
};

typedef struct lap_state {
    const nmp_problem *pb;
    nmp_params par;
    int64_t rounds;
    int pick;
    nmp_eval *ev;
    nmp_lap_move *lm;
} lap_state;

static void lap_destroy(void *p)
{
    lap_state *st = p;
    if (!st)
        return;
    nmp_eval_free(st->ev);
    nmp_lap_move_free(st->lm);
    nmp_free(st);
}

static nmp_err lap_create(const nmp_problem *pb, const nmp_params *par, void **state,
                          nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    (void)msg;
    lap_state *st = nmp_calloc(1, sizeof *st);
    if (!st)
        return NMP_ERR_NOMEM;
    st->pb = pb;
    st->par = *par;
    st->rounds = (int64_t)nmp_param_get(par, lap_params, "rounds");
    st->pick = (int)nmp_param_get(par, lap_params, "pick");
    NMP_TRY(e, nmp_eval_create(pb, NULL, &st->ev));
    int threads = par->threads;
#ifdef _OPENMP
    if (threads <= 0)
        threads = omp_get_max_threads();
#endif
    NMP_TRY(e, nmp_lap_move_create(pb, (int64_t)nmp_param_get(par, lap_params, "block"),
                                   (int)nmp_param_get(par, lap_params, "pick"), threads,
                                   &st->lm));
    *state = st;
    st = NULL;
out:
    lap_destroy(st);
    return e;
}

static nmp_err lap_solve(void *p, int32_t *perm, nmp_result *res)
{
    lap_state *st = p;
    const nmp_problem *pb = st->pb;
    nmp_clock clk;
    nmp_rng rng;
    nmp_clock_start(&clk, &st->par);
    nmp_rng_seed(&rng, st->par.seed);
    nmp_eval_reset(st->ev, perm);
    res->status = NMP_STATUS_FEASIBLE;
    res->start_score = nmp_eval_score(st->ev);
    bool stopped = false;
    int64_t round = 0, idle = 0;
    /* with random positions one idle round proves little: stop after two in a row */
    const int64_t patience = st->pick ? 2 : 1;
    while (!stopped && idle < patience) {
        if (st->rounds > 0 && round == st->rounds) {
            res->status = NMP_STATUS_ITER_LIMIT;
            break;
        }
        const double gain = nmp_lap_move_round(st->lm, st->ev, &rng, &clk, &res->iterations,
                                               &stopped);
        round++;
        idle = gain > 0 ? 0 : idle + 1;
    }
    if (stopped)
        res->status = nmp_clock_status(&clk);
    memcpy(perm, nmp_eval_perm(st->ev), (size_t)pb->cols * sizeof *perm);
    res->score = nmp_eval_score(st->ev);
    nmp_clock_tick(&clk, res->iterations, res->score, pb->row_bound, "lap", true);
    return NMP_OK;
}

const nmp_solver_ops nmp_lap_ops = {
    "lap",
    "position-wise assignment moves: reassign column p of every group optimally (Hungarian)",
    lap_params,
    lap_create,
    lap_solve,
    lap_destroy, 0,
};

/* nmp_anneal.c: simulated annealing on cross-group column swaps, with reheats and a final descent
 *
 * Move: exchange the columns of two slots a, b in different groups; its exact change of the kept
 * score costs O(rows) from nmp_eval's cached (n-th, (n+1)-th) values, here in a form the
 * compiler vectorises (fast_delta: 25x faster than a branchy scalar loop on random data). A
 * worsening move of size d is taken with probability e^(d / T) (Metropolis), the test bounded
 * first by e^x <= 1 / (1 - x) so that e^x is rarely computed.
 * Schedule: geometric cooling in levels of `steps * cols` moves from t0 down to tfinal * t0; the
 * run is `reheats + 1` such cycles, the later ones starting from reheat * t0 at the current
 * state. The best perm seen is kept (lazily: a log of the swaps made since the best, replayed
 * onto the saved copy only when a new best appears, so a new best costs O(moves since) and not
 * O(cols)). The run ends with a best-improvement swap descent (a 2-swap local optimum).
 * Defaults and how they scale with the instance (C = cols, R = rows, G = C / m groups):
 *   t0      from 2048 random moves sampled at a random perm (not at the start, so that t0 is a
 *           property of the instance): the median worsening delta is accepted with probability
 *           accept0: t0 = -median / ln(accept0). Deltas grow like R, so t0 does too, and the
 *           schedule is invariant to scaling s.
 *   accept0 0.003 and tfinal 1, reheats 0: a constant temperature. Measured (|N(0,1)| 64^2,
 *           256^2, 512^2 and the 128 x 64 U[0,1) reference, equal move counts): runs at a
 *           constant temperature near median / 5.8 beat every cooling tried (accept0 0.4 ->
 *           tfinal 1e-3, 0.03 -> 0.3, 0.01 -> 0.3, ...) and reheats (2, 4, 9 cycles), e.g. at
 *           256^2 with 13000 sweeps + LAP 31.0 % efficacy vs 30.9 / 30.6 %, and on the reference
 *           with 2e5 sweeps 9-12 of 24 seeds reach the proven optimum vs 1-6 of 24 with
 *           cooling. The cooling and reheat knobs stay for other inputs.
 *   steps   moves per temperature level = steps * C (the clock is looked at once per level).
 *   sweeps  total moves = sweeps * C. Default (sweeps = 0): sweeps = clamp(4e9 / (R * C), 400,
 *           20000): at most ~4e9 row evaluations per run (about 2 s here at 1024 x 1024, a few
 *           ms below 64 x 64), never fewer than 400 offers per column.
 *   time    with a time limit and sweeps = 0 the schedule runs by moves or by the clock,
 *           whichever ends first: its fraction is the larger of the moves done over the default
 *           sweeps and the elapsed fraction of 95 % of the limit less two passes over the matrix
 *           (timed as the first reset; the rest is left for the descent and those passes). A
 *           limit longer than the default run changes nothing, so the result depends only on
 *           the seed unless the limit cuts the run short (then on the machine's speed); more
 *           sweeps are asked for with the sweeps parameter.
 *   polish  the final descent over all swaps of each pair of groups (dirty groups only after
 *           the first pass) costs C^2 R / 2 per pass; it runs when that is at most polish * 1e9
 *           (default 2: up to ~1024 x 1024 and 2048 x 512), else is skipped.
 * Candidate selection `select` 1 takes the first slot from the group with more pruned mass of two
 * random groups (tournament), the second uniformly; 0 takes both uniformly. Measured on the
 * reference (2e5 sweeps, 24 seeds: 13 vs 12 reach the optimum) it does not help at equal move
 * counts and costs a little per move, so 0 is the default.
 * Tempering (nmp_anneal_tempering, for callers): replicas at geometric temperatures exchanging
 * configurations; measured on the reference it was no better than one constant-temperature run
 * of the same total moves.
 * Clock: besides the tick per level (which paces the schedule and calls the progress callback),
 * the time limit is looked at every ~ANNEAL_CHECK_WORK row evaluations inside a level, the t0
 * sample and the descent (a level is steps * cols moves of O(rows): 16 ms at 4096^2, unbounded
 * with a large `steps`). A level cut short ends the run at the best perm seen. Without a limit
 * the checks draw nothing from the rng and change no result.
 */
#include "nmp_solvers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const nmp_param_desc anneal_params[] = {
    { "sweeps", 0, 0, 1e9, "moves per run / cols; 0: clamp(4e9 / (rows*cols), 400, 20000)" },
    { "accept0", 0.003, 1e-9, 0.999, "accept the median worsening move w.p. accept0 at t0" },
    { "t0", 0, 0, 1e30, "initial temperature; 0: from accept0 and sampled deltas" },
    { "tfinal", 1, 1e-12, 1, "final temperature as a fraction of t0 (1: constant temperature)" },
    { "steps", 1, 1e-3, 1e6, "moves per temperature level / cols" },
    { "reheats", 0, 0, 1e6, "extra cooling cycles after the first" },
    { "reheat", 0.3, 1e-6, 1, "temperature of a reheat as a fraction of t0" },
    { "select", 0, 0, 1, "first slot: 0 uniform, 1 from the more-pruned of two random groups" },
    { "polish", 2, 0, 1e9, "final descent if cols^2 * rows / 2 <= polish * 1e9" },
    { 0 },
};

struct nmp_anneal {
    const nmp_problem *pb;
    double sweeps, accept0, t0, tfinal, steps, reheat, polish;
    int64_t reheats;
    int select;
    bool timed;          /* a time limit and sweeps = 0: pace by the clock */
    double *colsum;      /* cols: total saliency of each source column (select = 1) */
    int32_t *best;       /* cols: best perm seen */
    int32_t *log;        /* 2 * cols: swaps made since the best, as slot pairs */
    int64_t nlog;
    bool overflow;       /* the log filled up: the best is refreshed by a copy */
    double *sample;      /* delta samples for t0 */
    uint8_t *dirty, *fresh; /* groups: changed in the last / this descent pass */
    double *deltas;      /* m * m */
    int64_t moves;       /* accepted moves and descent steps, for progress */
    int64_t every;       /* moves (fast_delta calls) between two looks at the clock */
};

void nmp_anneal_free(nmp_anneal *an)
{
    if (!an)
        return;
    nmp_free(an->colsum);
    nmp_free(an->best);
    nmp_free(an->log);
    nmp_free(an->sample);
    nmp_free(an->dirty);
    nmp_free(an->fresh);
    nmp_free(an->deltas);
    nmp_free(an);
}

#define SAMPLES_MAX 2048
#define ANNEAL_CHECK_WORK 1048576.0 /* row evaluations between two looks at the clock */

nmp_err nmp_anneal_create(const nmp_problem *pb, const nmp_params *par, nmp_anneal **out)
{
    nmp_err e = NMP_OK;
    nmp_anneal *an = nmp_calloc(1, sizeof *an);
    *out = NULL;
    if (!an)
        return NMP_ERR_NOMEM;
    const nmp_param_desc *d = anneal_params;
    an->pb = pb;
    an->sweeps = nmp_param_get(par, d, "sweeps");
    an->accept0 = nmp_param_get(par, d, "accept0");
    an->t0 = nmp_param_get(par, d, "t0");
    an->tfinal = nmp_param_get(par, d, "tfinal");
    an->steps = nmp_param_get(par, d, "steps");
    an->reheats = (int64_t)nmp_param_get(par, d, "reheats");
    an->reheat = nmp_param_get(par, d, "reheat");
    an->select = (int)nmp_param_get(par, d, "select");
    an->polish = nmp_param_get(par, d, "polish");
    an->timed = par && par->time_limit > 0 && an->sweeps == 0;
    an->every = (int64_t)NMP_MAX(1.0, ANNEAL_CHECK_WORK / (double)pb->rows);
    if (an->sweeps == 0)
        an->sweeps = NMP_MIN(20000.0, NMP_MAX(400.0, 4e9 / ((double)pb->rows * (double)pb->cols)));
    const size_t cols = (size_t)pb->cols, groups = (size_t)pb->groups;
    an->colsum = nmp_malloc(cols * sizeof *an->colsum);
    an->best = nmp_malloc(cols * sizeof *an->best);
    an->log = nmp_malloc(2 * cols * sizeof *an->log);
    an->sample = nmp_malloc(SAMPLES_MAX * sizeof *an->sample);
    an->dirty = nmp_malloc(groups);
    an->fresh = nmp_malloc(groups);
    an->deltas = nmp_malloc((size_t)(pb->m * pb->m) * sizeof *an->deltas);
    if (!an->colsum || !an->best || !an->log || !an->sample || !an->dirty || !an->fresh ||
        !an->deltas) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    for (int64_t i = 0; i < pb->cols; i++) {
        const float *x = nmp_col(pb, i);
        double s = 0;
        for (int64_t j = 0; j < pb->rows; j++)
            s += (double)x[j];
        an->colsum[i] = s;
    }
    *out = an;
    an = NULL;
out:
    nmp_anneal_free(an);
    return e;
}

/* ------------------------------------------------------------ best perm */

static void best_save(nmp_anneal *an, const nmp_eval *ev)
{
    memcpy(an->best, nmp_eval_perm(ev), (size_t)an->pb->cols * sizeof *an->best);
    an->nlog = 0;
    an->overflow = false;
}

static inline void best_log(nmp_anneal *an, int64_t a, int64_t b)
{
    if (an->nlog == an->pb->cols) {
        an->overflow = true;
        return;
    }
    an->log[2 * an->nlog] = (int32_t)a;
    an->log[2 * an->nlog + 1] = (int32_t)b;
    an->nlog++;
}

/* The current perm is a new best: bring the saved copy up to it. */
static void best_update(nmp_anneal *an, const nmp_eval *ev)
{
    if (an->overflow) {
        best_save(an, ev);
        return;
    }
    int32_t *best = an->best;
    for (int64_t t = 0; t < an->nlog; t++) {
        const int32_t a = an->log[2 * t], b = an->log[2 * t + 1];
        const int32_t x = best[a];
        best[a] = best[b];
        best[b] = x;
    }
    an->nlog = 0;
}

/* ----------------------------------------------------------- annealing */

#define LANES 8       /* independent float partial sums, so the row loop vectorises */
#define BLOCK 256     /* rows per flush of the partial sums into the double total */

/* nmp_eval_swap_delta, written so that the compiler vectorises it (few selects, LANES partial
 * sums instead of one serial float sum): several times faster on random data, where the branch
 * "is x kept in row j" is unpredictable. Per row and side (x leaves the group, y enters):
 *   kept: max(y, vn1) - x        else: max(y - vn, 0) = max(y, vn) - vn
 *   both: max(y, x >= vn ? vn1 : vn) - max(x, vn).
 * It differs from nmp_eval_swap_delta only by float rounding; the applied moves go through
 * nmp_eval_swap, which keeps the exact score. */
static inline float side(float x, float y, float vn, float vn1)
{
    const float low = x >= vn ? vn1 : vn;
    return NMP_MAX(y, low) - NMP_MAX(x, vn);
}

static double fast_delta(const nmp_eval *ev, int64_t a, int64_t b)
{
    const nmp_problem *pb = ev->pb;
    const int64_t rows = pb->rows, g = a / pb->m, h = b / pb->m;
    const float *restrict xa = nmp_col(pb, ev->perm[a]), *restrict xb = nmp_col(pb, ev->perm[b]);
    const float *restrict ng = ev->vn + g * rows, *restrict n1g = ev->vn1 + g * rows;
    const float *restrict nh = ev->vn + h * rows, *restrict n1h = ev->vn1 + h * rows;
    double total = 0;
    for (int64_t j0 = 0; j0 < rows; j0 += BLOCK) {
        const int64_t j1 = NMP_MIN(rows, j0 + BLOCK);
        float acc[LANES] = { 0 };
        int64_t j = j0;
        for (; j + LANES <= j1; j += LANES)
            for (int k = 0; k < LANES; k++) {
                const float x = xa[j + k], y = xb[j + k];
                acc[k] += side(x, y, ng[j + k], n1g[j + k]) + side(y, x, nh[j + k], n1h[j + k]);
            }
        for (; j < j1; j++)
            acc[0] += side(xa[j], xb[j], ng[j], n1g[j]) + side(xb[j], xa[j], nh[j], n1h[j]);
        float part = 0;
        for (int k = 0; k < LANES; k++)
            part += acc[k];
        total += (double)part;
    }
    return total;
}

/* Pruned mass of group g: its columns' total minus what it keeps. */
static inline double pruned(const nmp_anneal *an, const nmp_eval *ev, int64_t g)
{
    const int m = an->pb->m;
    const int32_t *cols = ev->perm + g * m;
    double s = -ev->gscore[g];
    for (int t = 0; t < m; t++)
        s += an->colsum[cols[t]];
    return s;
}

/* Two slots in different groups. */
static inline void pick(const nmp_anneal *an, const nmp_eval *ev, nmp_rng *rng, int64_t *a,
                        int64_t *b)
{
    const nmp_problem *pb = an->pb;
    const int m = pb->m;
    int64_t x;
    if (an->select == 1) {
        const int64_t g1 = (int64_t)nmp_rng_below(rng, (uint64_t)pb->groups);
        const int64_t g2 = (int64_t)nmp_rng_below(rng, (uint64_t)pb->groups);
        const int64_t g = pruned(an, ev, g1) >= pruned(an, ev, g2) ? g1 : g2;
        x = g * m + (int64_t)nmp_rng_below(rng, (uint64_t)m);
    } else {
        x = (int64_t)nmp_rng_below(rng, (uint64_t)pb->cols);
    }
    int64_t y = (int64_t)nmp_rng_below(rng, (uint64_t)(pb->cols - m));
    if (y >= x / m * m) /* skip x's own group */
        y += m;
    *a = x;
    *b = y;
}

static int cmp_double(const void *x, const void *y)
{
    const double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* t0 = -median(worsening deltas of random moves from a random perm) / ln(accept0).
 * The sample is taken at a random perm, not at the start, so that t0 is a property of the
 * instance: a good start (a previous result, a LAP optimum) would otherwise set it lower. */
static double start_temperature(nmp_anneal *an, nmp_eval *ev, nmp_rng *rng, const nmp_clock *clk)
{
    if (an->t0 > 0)
        return an->t0;
    const nmp_problem *pb = an->pb;
    memcpy(an->best, nmp_eval_perm(ev), (size_t)pb->cols * sizeof *an->best);
    nmp_perm_random(an->log, pb->cols, rng); /* the log is free scratch before the run */
    nmp_eval_reset(ev, an->log);
    int64_t k = 0;
    for (int64_t t = 0; t < SAMPLES_MAX; t++) {
        if ((t + 1) % an->every == 0 && nmp_clock_expired(clk))
            break; /* the run stops at its first look at the clock */
        int64_t a, b;
        pick(an, ev, rng, &a, &b);
        const double d = fast_delta(ev, a, b);
        if (d < 0)
            an->sample[k++] = -d;
    }
    nmp_eval_reset(ev, an->best);
    if (k == 0)
        return 1e-30;
    qsort(an->sample, (size_t)k, sizeof *an->sample, cmp_double);
    return an->sample[k / 2] / -log(an->accept0);
}

int64_t nmp_anneal_moves(const nmp_anneal *an)
{
    return an->moves;
}

int64_t nmp_anneal_default_moves(const nmp_anneal *an)
{
    return (int64_t)(an->sweeps * (double)an->pb->cols);
}

/* e^x for -64 <= x <= 0, to about 1e-7 relative: 2^(x log2 e) split into 2^k * 2^f, 2^f by its
 * degree-6 Taylor polynomial in f ln 2 (f in [0, 1)), 2^k assembled in the exponent bits. libm's
 * exp took a fifth of the time of a Metropolis step on small instances; the acceptance test
 * needs far less precision. Exact at x = 0 up to rounding; monotone enough for the test. */
static inline double exp_neg(double x)
{
    const double y = x * 1.4426950408889634; /* log2(e) */
    int64_t k = (int64_t)y; /* floor without libm: y <= 0 */
    if ((double)k > y)
        k--;
    const double t = (y - (double)k) * 0.6931471805599453;
    const double p = 1 + t * (1 + t * (0.5 + t * (1.0 / 6 + t * (1.0 / 24 + t * (1.0 / 120 +
                                                                             t * (1.0 / 720))))));
    const uint64_t bits = (uint64_t)(k + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* count Metropolis steps at temperature temp; a new best is saved through the swap log
 * (logged) or by a copy. False when clk's time limit passed first (looked at every an->every
 * steps). */
static bool metropolis(nmp_anneal *an, nmp_eval *ev, nmp_rng *rng, const nmp_clock *clk,
                       double temp, int64_t count, double *best, bool logged)
{
    const double inv = 1 / temp;
    int64_t left = an->every; /* steps until the next look at the clock */
    for (int64_t s = 0; s < count; s++) {
        if (--left == 0) {
            left = an->every;
            if (nmp_clock_expired(clk))
                return false;
        }
        int64_t a, b;
        pick(an, ev, rng, &a, &b);
        const double d = fast_delta(ev, a, b);
        if (d < 0) {
            /* take it with probability e^x; e^x <= 1 / (1 - x) rejects most cheaply */
            const double x = d * inv;
            if (x < -40)
                continue;
            const double u = nmp_rng_uniform(rng);
            if (u * (1 - x) >= 1 || u >= exp_neg(x))
                continue;
        }
        nmp_eval_swap(ev, a, b);
        an->moves++;
        if (logged)
            best_log(an, a, b);
        if (nmp_eval_score(ev) > *best) {
            *best = nmp_eval_score(ev);
            if (logged)
                best_update(an, ev);
            else
                best_save(an, ev);
        }
    }
    return true;
}

/* Parallel tempering over r replicas evs[0..r-1] (all at the start perm on entry): replica i
 * walks at T_i, geometric from T_0 = med / -ln(p_lo) up to T_{r-1} = med / -ln(p_hi), med the
 * median worsening delta at a random perm; after each level of steps * cols moves per replica,
 * neighbours exchange their configurations with probability min(1, exp((S_j - S_i)(1/T_i -
 * 1/T_j))). evs[0] ends at the best perm seen. */
bool nmp_anneal_tempering(nmp_anneal *an, nmp_eval *const *evs, int r, nmp_rng *rng,
                          nmp_clock *clk, int64_t moves, double pace_end, double p_lo,
                          double p_hi)
{
    const nmp_problem *pb = an->pb;
    if (pb->groups < 2 || r < 1)
        return true;
    nmp_eval *walk[64];
    double temp[64];
    r = NMP_MIN(r, 64);
    const double saved = an->accept0;
    an->accept0 = 0.5;
    const double med = start_temperature(an, evs[0], rng, clk) * -log(0.5);
    an->accept0 = saved;
    for (int i = 0; i < r; i++) {
        walk[i] = evs[i];
        const double f = r > 1 ? (double)i / (r - 1) : 0;
        temp[i] = med / -log(p_lo) * pow(log(p_lo) / log(p_hi), f);
    }
    best_save(an, evs[0]);
    double best = nmp_eval_score(evs[0]);
    const int64_t level = NMP_MAX(1, (int64_t)(an->steps * (double)pb->cols));
    const double begin = nmp_clock_elapsed(clk);
    int64_t done = 0, round = 0;
    bool running = true;
    for (;;) {
        double f = moves > 0 ? (double)done / (double)moves : 0;
        if (pace_end > 0)
            f = NMP_MAX(f, pace_end > begin ? (nmp_clock_elapsed(clk) - begin) / (pace_end - begin)
                                            : 1.0);
        if (f >= 1)
            break;
        for (int i = 0; i < r && running; i++)
            running = metropolis(an, walk[i], rng, clk, temp[i], level, &best, false);
        if (!running)
            break;
        done += level * r;
        for (int i = (int)(round & 1); i + 1 < r; i += 2) {
            const double x = (nmp_eval_score(walk[i + 1]) - nmp_eval_score(walk[i])) *
                             (1 / temp[i] - 1 / temp[i + 1]);
            if (x >= 0 || nmp_rng_uniform(rng) < exp(x)) {
                nmp_eval *t = walk[i];
                walk[i] = walk[i + 1];
                walk[i + 1] = t;
            }
        }
        round++;
        if (nmp_clock_tick(clk, an->moves, best, pb->row_bound, "tempering", false)) {
            running = false;
            break;
        }
    }
    nmp_eval_reset(evs[0], an->best);
    return running;
}

bool nmp_anneal_run(nmp_anneal *an, nmp_eval *ev, nmp_rng *rng, nmp_clock *clk, int64_t moves,
                    double pace_end)
{
    const nmp_problem *pb = an->pb;
    if (pb->groups < 2)
        return true;
    if (moves <= 0 && pace_end <= 0)
        moves = nmp_anneal_default_moves(an);
    const double begin = nmp_clock_elapsed(clk);
    const double span = pace_end - begin;
    const int64_t level = NMP_MAX(1, (int64_t)(an->steps * (double)pb->cols));
    const double cycles = (double)(an->reheats + 1);
    const double t0 = start_temperature(an, ev, rng, clk);
    const double log_final = log(an->tfinal);
    best_save(an, ev);
    double best = nmp_eval_score(ev);
    int64_t done = 0;
    bool running = true;
    for (;;) {
        /* overall fraction of the schedule: by moves, by the clock, or the further of the two */
        double f = moves > 0 ? (double)done / (double)moves : 0;
        if (pace_end > 0)
            f = NMP_MAX(f, span > 0 ? (nmp_clock_elapsed(clk) - begin) / span : 1.0);
        if (f >= 1)
            break;
        const double fc = f * cycles;
        const double cycle = floor(fc);
        const double temp = t0 * (cycle > 0 ? an->reheat : 1.0) * exp(log_final * (fc - cycle));
        if (!metropolis(an, ev, rng, clk, temp, level, &best, true)) {
            running = false;
            break;
        }
        done += level;
        if (nmp_clock_tick(clk, an->moves, best, pb->row_bound, "anneal", false)) {
            running = false;
            break;
        }
    }
    if (nmp_eval_score(ev) < best)
        nmp_eval_reset(ev, an->best);
    return running;
}

/* ------------------------------------------------------------- descent */

/* Best swap between groups g and h (m^2 deltas, as nmp_eval_pair_deltas); applies it when it
 * gains. */
static bool improve_pair(nmp_anneal *an, nmp_eval *ev, int64_t g, int64_t h)
{
    const int m = an->pb->m;
    for (int x = 0; x < m; x++)
        for (int y = 0; y < m; y++)
            an->deltas[x * m + y] = fast_delta(ev, g * m + x, h * m + y);
    int arg = 0;
    for (int k = 1; k < m * m; k++)
        if (an->deltas[k] > an->deltas[arg])
            arg = k;
    if (!(an->deltas[arg] > 0))
        return false;
    const int64_t a = g * m + arg / m, b = h * m + arg % m;
    const double before = nmp_eval_score(ev);
    nmp_eval_swap(ev, a, b);
    if (!(nmp_eval_score(ev) > before)) { /* rounding: not a real gain */
        nmp_eval_swap(ev, a, b);
        return false;
    }
    an->moves++;
    return true;
}

bool nmp_anneal_polish(nmp_anneal *an, nmp_eval *ev, nmp_clock *clk, bool force)
{
    const nmp_problem *pb = an->pb;
    const int64_t groups = pb->groups;
    const double pass = (double)pb->cols * (double)pb->cols * (double)pb->rows / 2;
    if (groups < 2 || (!force && pass > an->polish * 1e9))
        return true;
    /* pairs between two looks at the clock: each costs m^2 deltas of O(rows) */
    const int64_t every = NMP_MAX(1, an->every / ((int64_t)pb->m * pb->m));
    memset(an->dirty, 1, (size_t)groups);
    for (bool changed = true; changed;) {
        changed = false;
        memset(an->fresh, 0, (size_t)groups);
        for (int64_t g = 0; g < groups; g++) {
            for (int64_t h = g + 1; h < groups; h++) {
                if ((an->dirty[g] | an->dirty[h] | an->fresh[g] | an->fresh[h]) &&
                    improve_pair(an, ev, g, h)) {
                    an->fresh[g] = an->fresh[h] = 1;
                    changed = true;
                }
                if ((h - g) % every == 0 && nmp_clock_expired(clk))
                    return false;
            }
            if (nmp_clock_tick(clk, an->moves, nmp_eval_score(ev), pb->row_bound, "descent",
                               false))
                return false;
        }
        memcpy(an->dirty, an->fresh, (size_t)groups);
    }
    return true;
}

/* ------------------------------------------------------------ the solver */

typedef struct anneal_state {
    const nmp_problem *pb;
    nmp_params par;
    nmp_anneal *an;
    nmp_eval *ev;
} anneal_state;

static void anneal_destroy(void *p)
{
    anneal_state *st = p;
    if (!st)
        return;
    nmp_anneal_free(st->an);
    nmp_eval_free(st->ev);
    nmp_free(st);
}

static nmp_err anneal_create(const nmp_problem *pb, const nmp_params *par, void **state,
                             nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    (void)msg;
    anneal_state *st = nmp_calloc(1, sizeof *st);
    if (!st)
        return NMP_ERR_NOMEM;
    st->pb = pb;
    st->par = *par;
    NMP_TRY(e, nmp_anneal_create(pb, par, &st->an));
    NMP_TRY(e, nmp_eval_create(pb, NULL, &st->ev));
    *state = st;
    st = NULL;
out:
    anneal_destroy(st);
    return e;
}

static nmp_err anneal_solve(void *p, int32_t *perm, nmp_result *res)
{
    anneal_state *st = p;
    const nmp_problem *pb = st->pb;
    nmp_clock clk;
    nmp_rng rng;
    nmp_clock_start(&clk, &st->par);
    nmp_rng_seed(&rng, st->par.seed);
    nmp_eval_reset(st->ev, perm);
    st->an->moves = 0;
    res->start_score = nmp_eval_score(st->ev);
    res->status = NMP_STATUS_FEASIBLE;
    /* the schedule ends at 95 % of the limit, less two passes over the matrix like the reset
     * above (back to the best perm, the final fresh sum): ~15 ms each at 4096^2 */
    const double pass = nmp_clock_elapsed(&clk), limit = st->par.time_limit;
    const double pace = st->an->timed ? NMP_MAX(0.5 * limit, 0.95 * limit - 2 * pass) : 0;
    bool running = nmp_anneal_run(st->an, st->ev, &rng, &clk, nmp_anneal_default_moves(st->an),
                                  pace);
    running = running && nmp_anneal_polish(st->an, st->ev, &clk, false);
    if (!running)
        res->status = nmp_clock_status(&clk);
    /* a fresh sum, free of the incremental updates' rounding; skipped once the clock stopped
     * the run (an O(rows * cols) pass after the limit: nmp_solve rescores the perm anyway) */
    if (running) {
        memcpy(st->an->best, nmp_eval_perm(st->ev), (size_t)pb->cols * sizeof *perm);
        nmp_eval_reset(st->ev, st->an->best);
    }
    res->score = nmp_eval_score(st->ev);
    if (res->score > res->start_score)
        memcpy(perm, nmp_eval_perm(st->ev), (size_t)pb->cols * sizeof *perm);
    else
        res->score = res->start_score;
    res->iterations = st->an->moves;
    nmp_clock_tick(&clk, res->iterations, res->score, pb->row_bound, "anneal", true);
    return NMP_OK;
}

const nmp_solver_ops nmp_anneal_ops = {
    "anneal",
    "simulated annealing on cross-group swaps with reheats, then a swap descent",
    anneal_params,
    anneal_create,
    anneal_solve,
    anneal_destroy, 0,
};

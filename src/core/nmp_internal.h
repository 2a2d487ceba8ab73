/* nmp_internal.h: the core's internal structures and helpers (problem, eval, clock, messages),
 * shared by every library layer above it (not installed) */
#ifndef NMP_INTERNAL_H
#define NMP_INTERNAL_H

#include "nmperm.h"

#include <stdarg.h>
#include <stdbool.h>

/* if ((e = (call)) != NMP_OK) goto out; */
#define NMP_TRY(e, call)                                                                           \
    do {                                                                                           \
        if (((e) = (call)) != NMP_OK)                                                              \
            goto out;                                                                              \
    } while (0)

#define NMP_MIN(a, b) ((a) < (b) ? (a) : (b))
#define NMP_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ------------------------------------------------------------ messages */

/* Formats into msg->text when msg is not NULL; returns e so callers can `return nmp_fail(...)`. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
nmp_err nmp_fail(nmp_msg *msg, nmp_err e, const char *fmt, ...);

/* ---------------------------------------------------------- half types */

float nmp_f16_to_f32(uint16_t h);
uint16_t nmp_f32_to_f16(float f);   /* round to nearest even */
float nmp_bf16_to_f32(uint16_t b);
uint16_t nmp_f32_to_bf16(float f);  /* round to nearest even */

/* ----------------------------------------------------------------- perm */

/* nmp_perm_is_valid that tells the two failures apart: NMP_OK for a bijection on 0..n-1,
 * NMP_ERR_ARG when perm is not one, NMP_ERR_NOMEM when its scratch could not be allocated. */
nmp_err nmp_perm_check(const int32_t *perm, int64_t n);

/* ------------------------------------------------------------- problem */

struct nmp_problem {
    int64_t rows, cols, groups;
    int n, m;
    nmp_objective objective;
    float *s;           /* column-major saliency, s[i * rows + j] */
    double identity;    /* kept score of the identity */
    double row_bound;   /* sum over rows of the top cols*n/m values */
    double total;       /* sum of all saliencies */
};

/* Column i of the saliency (rows values). */
static inline const float *nmp_col(const nmp_problem *pb, int64_t i)
{
    return pb->s + i * pb->rows;
}

/* Sum of the n largest of v[0..m-1] and the n-th and (n+1)-th largest values (n < m). */
void nmp_topn(const float *v, int m, int n, float *sum, float *vn, float *vn1);

/* nmp_score_groups without validating perm (NULL = identity); allocates nothing. */
void nmp_score_groups_raw(const nmp_problem *pb, const int32_t *perm, double *out);

/* ---------------------------------------------------------------- eval */

/* Per (group g, row j) at index g * rows + j: sum of the top n, the n-th largest, the (n+1)-th
 * largest. Group scores are kept in double, recomputed from the floats on every change. */
struct nmp_eval {
    const nmp_problem *pb;
    int32_t *perm;
    float *sum, *vn, *vn1;
    double *gscore;
    double score;
};

/* ---------------------------------------------------------------- time */

double nmp_now(void); /* monotonic seconds */

/* A deadline for the time limit and the progress callback. */
typedef struct nmp_clock {
    double start, limit;     /* limit <= 0: none */
    double last_report;
    nmp_progress_fn progress;
    void *user;
    bool stopped;            /* set once the callback asked to stop */
} nmp_clock;

void nmp_clock_start(nmp_clock *c, const nmp_params *par);
double nmp_clock_elapsed(const nmp_clock *c);
/* true once the time limit has passed */
bool nmp_clock_expired(const nmp_clock *c);
/* Calls the progress callback if 0.2 s have passed since the last call (or force); returns true
 * when the search must stop (time limit or interrupt). */
bool nmp_clock_tick(nmp_clock *c, int64_t iteration, double best, double bound, const char *phase,
                    bool force);
/* The status to report when a search stopped early through this clock. */
nmp_status nmp_clock_status(const nmp_clock *c);

#endif /* NMP_INTERNAL_H */

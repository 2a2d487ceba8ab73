/* nmp_price_int.h: the pricer's state, shared by the exact search (nmp_price.c) and the column
 * sources tried before it (nmp_price_src.c: the device round and the heuristic); not installed */
#ifndef NMP_PRICE_INT_H
#define NMP_PRICE_INT_H

#include "nmp_solvers.h"

#include <stdbool.h>

#ifndef NMP_HMEM
#define NMP_HMEM 16 /* the heuristic's memory: subsets per column (hcap = NMP_HMEM * cols) */
#endif
#define PR_POLL_WORK (INT64_C(1) << 22) /* heuristic steps between looks at the clock (~4 ms) */

typedef struct pr_item {
    double rc, value;
    int32_t cols[NMP_MAX_M]; /* ascending */
} pr_item;

typedef struct key_pos {
    double key;
    int32_t col;
} key_pos;

typedef struct pr_work {
    float *t;         /* (m + 1) * n * rows: k-th largest of row j, level p: (p*n + k) * rows + j */
    int32_t *cand;    /* (m + 1) * cols: candidate positions per level */
    double *h;        /* (m + 1) * cols: their h (upper bounds) */
    double *suf;      /* (m + 1) * cols: suffix sums of the r - 1 largest h */
    int32_t *ban;     /* cols, by position: apart partners in P */
    int32_t *cnt;     /* cols, by component: members in P */
    int32_t P[NMP_MAX_M];
    int req[NMP_MAX_M + 1]; /* members still required by the components P has started */
    pr_item *heap;    /* min-heap by the total order (root = worst kept) */
    float *ht;        /* 2 * n * rows: the heuristic's tops of S and of S less one member */
    uint8_t *hin;     /* cols, by position: in the heuristic's S */
    int32_t *hban;    /* cols, by position: apart partners in the heuristic's S */
    int64_t count;
    int64_t nodes, polls;
    int64_t work;     /* row-column steps since the last look at the clock (heuristic scans) */
    double thr;
    int tid;
} pr_work;

struct nmp_price {
    const nmp_problem *pb;
    int64_t rows;
    int cols, m, n, threads;
    int64_t kmax;
    int64_t kcap;     /* capacity of the heaps: kmax, or hcap when larger */
    double inflate;   /* a float gain times this bounds the exact one */
    double *colsum;   /* per column, in double */
    float *sord;      /* cols * rows: the columns in position order */
    int32_t *ord;     /* ord[k] = column at position k */
    int32_t *pos;     /* pos[i] = position of column i */
    double *yo;       /* duals by position */
    double *h0, *suf0;
    struct key_pos *kp; /* sort scratch */
    /* rules, by column */
    int nrules;
    int32_t *comp;    /* component of column i, -1 when alone */
    int32_t *csize;   /* by component */
    int32_t *crank;   /* by position: rank within its component in position order */
    int32_t *compo;   /* by position: comp[ord[k]] */
    int32_t *adj0;    /* cols + 1: CSR offsets of the apart lists */
    int32_t *adj;     /* apart partners (columns), 2 * rules entries */
    int32_t *uf;      /* union-find scratch */
    int rcap;
    /* run */
    const double *y;
    double thr_in;
    double shared_thr;
    int stop;
    nmp_clock *clk;
    double best, bound;
    int64_t iteration;
    /* the device pricing (nmp_price_set_backend): per column its best subset, on the backend */
    const nmp_backend *be;
    double *drc;      /* cols: the backend's rc per smallest member */
    int32_t *dcols;   /* cols * m: its members */
    pr_item *ditems;  /* cols: the exact candidates */
    double dmargin;   /* bound on |backend rc - exact rc| of any subset */
    /* the heuristic pricing (nmp_price_set_heuristic): per column a greedy subset holding it */
    bool heur;
    pr_item *hitems;  /* cols + hcap: by seed, then the memory re-priced */
    pr_item *hmem;    /* hcap: the best subsets of the last exact search, whatever their rc */
    int64_t hcap, hcount;
    pr_work *work;
    pr_item *merge;
};

/* g = sum_j max(0, s_j - t_j), in float */
static inline float pr_gain(const float *restrict s, const float *restrict t, int64_t rows)
{
    float g = 0;
#ifdef _OPENMP
#pragma omp simd reduction(+ : g)
#endif
    for (int64_t j = 0; j < rows; j++) {
        const float d = s[j] - t[j];
        g += d > 0 ? d : 0;
    }
    return g;
}

/* the exact pricer's total order on items (rc descending, then members), for qsort */
int pr_item_cmp(const void *pa, const void *pb);
/* sr = sum of the r largest of h[0..len), sr1 = of the r - 1 largest, vr = the r-th largest */
void pr_top_r(const double *h, int len, int r, double *sr, double *sr1, double *vr);
/* a thread's look at the clock (every so many nodes); true when the search must stop */
bool pr_poll(nmp_price *pr, pr_work *w);
/* pr_poll after `units` row-column steps of work: a heuristic scan of cols x rows looks at the
 * clock whenever ~4 M steps (a few ms) have passed since the last look. */
bool pr_poll_work(nmp_price *pr, pr_work *w, int64_t units);
/* The device round (nmp_price_src.c): *done false when the backend cannot serve or found
 * nothing (the exact search runs then). */
nmp_err pr_device_round(nmp_price *pr, const double *y, double thr, int64_t k, nmp_price_out *out,
                        bool *done);
/* The heuristic round (nmp_price_src.c): false when the clock stopped it. */
bool pr_heuristic_round(nmp_price *pr, double thr, int64_t k, nmp_price_out *out);

#endif

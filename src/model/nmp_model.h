/* nmp_model.h: library-internal pieces of the model layer (plans, spaces, permute, batch) (not
 * installed) */
#ifndef NMP_MODEL_H
#define NMP_MODEL_H

#include "nmp_io.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------ building plans (nmp_plan.c) */

/* A copy of s (release with nmp_free); NULL on out of memory. */
char *nmp_strdup(const char *s);
/* Whether s ends with suffix. */
bool nmp_ends_with(const char *s, const char *suffix);
/* An empty plan of architecture arch (copied); NULL on out of memory. */
nmp_plan *nmp_plan_new(const char *arch);
/* Appends a space named name (copied) of size channels, no references, stats.verify_rel = -1;
 * NULL on out of memory (the plan stays valid for nmp_plan_free). */
nmp_space *nmp_plan_add_space(nmp_plan *plan, const char *name, int64_t size, nmp_act act);
/* Appends a reference to tensor (copied) to sp. NMP_ERR_NOMEM. */
nmp_err nmp_space_ref(nmp_space *sp, const char *tensor, nmp_role role, nmp_use use, int axis,
                      int64_t offset);
/* Marks sp skipped with reason (copied; replaces an earlier one). NMP_ERR_NOMEM. */
nmp_err nmp_space_skip(nmp_space *sp, const char *reason);

/* ------------------------------------------------ tensor views (nmp_space.c) */

/* The float dtypes a space's tensors may have (anything else is NMP_DT_OTHER). */
enum { NMP_DT_F32, NMP_DT_F64, NMP_DT_F16, NMP_DT_BF16, NMP_DT_OTHER };
int nmp_dtype_code(const char *dtype);

/* The permutations other spaces applied to slices of one other axis of the same tensor, undone
 * when reading: b's index map[i] along that axis holds a's index i (one map per axis, so a
 * tensor shared by many spaces, e.g. o_proj by every head and the residual stream, costs one
 * lookup per axis). */
typedef struct nmp_tother {
    int axis;
    const int32_t *map;
} nmp_tother;

/* A tensor seen as [outer, C, inner] around one channel axis, channels off .. off + size - 1
 * of C exposed as 0 .. size - 1, optionally through perm (local channel c reads perm[c]). */
typedef struct nmp_tview {
    const uint8_t *data;
    int code;
    size_t esize;
    int64_t outer, C, inner, off;
    const int32_t *perm;
    int ndim, nother;
    int64_t shape[NMP_ST_MAX_DIMS];
    nmp_tother other[NMP_ST_MAX_DIMS];
} nmp_tview;

/* The view of t's data along r's axis (channels r->offset ..), through perm (NULL: none). */
nmp_tview nmp_tview_make(const nmp_st_tensor *t, const void *data, const nmp_ref *r,
                         const int32_t *perm);

/* Flat index of (o, c, i); with other spaces' permutations, through the multi-index. */
static inline int64_t nmp_tview_index(const nmp_tview *v, int64_t o, int64_t c, int64_t i)
{
    const int64_t ch = v->off + (v->perm ? v->perm[c] : c);
    int64_t idx = (o * v->C + ch) * v->inner + i;
    if (v->nother > 0) {
        int64_t mi[NMP_ST_MAX_DIMS];
        for (int d = v->ndim - 1; d >= 0; d--) {
            mi[d] = idx % v->shape[d];
            idx /= v->shape[d];
        }
        for (int k = 0; k < v->nother; k++)
            mi[v->other[k].axis] = v->other[k].map[mi[v->other[k].axis]];
        idx = 0;
        for (int d = 0; d < v->ndim; d++)
            idx = idx * v->shape[d] + mi[d];
    }
    return idx;
}

static inline double nmp_dtype_decode(const uint8_t *p, int code)
{
    float f;
    double d;
    uint16_t h;
    switch (code) {
    case NMP_DT_F32: memcpy(&f, p, 4); return f;
    case NMP_DT_F64: memcpy(&d, p, 8); return d;
    case NMP_DT_F16: memcpy(&h, p, 2); return nmp_f16_to_f32(h);
    case NMP_DT_BF16: memcpy(&h, p, 2); return nmp_bf16_to_f32(h);
    default: return 0;
    }
}

static inline double nmp_tview_get(const nmp_tview *v, int64_t o, int64_t c, int64_t i)
{
    return nmp_dtype_decode(v->data + (size_t)nmp_tview_index(v, o, c, i) * v->esize, v->code);
}

/* A reference of a space resolved on a checkpoint (NMP_ERR_FORMAT when absent or misshaped). */
nmp_err nmp_tview_resolve(const nmp_st *st, const nmp_space *sp, const nmp_ref *r,
                          const int32_t *perm, nmp_tview *v, nmp_msg *msg);

/* ---------------------------------------------------- saliency (nmp_space.c) */

/* What the saliency of one tensor needs, over its whole input axis (C channels): a[c] (wanda)
 * or sqrt(a[c]) (ria), and for ria the column sums sum_k |W(k, c)| over every output row. */
typedef struct nmp_saltab {
    nmp_saliency_kind kind;
    double *act;    /* C values, NULL for abs */
    double *colsum; /* C values, ria only */
} nmp_saltab;

/* Releases t->act and t->colsum (NULL afterwards). */
void nmp_saltab_free(nmp_saltab *t);
/* Fills tab for the tensor of view v (the whole axis: v->off = 0, v->C all channels). The
 * activation vector is read at the tensor's name; map (C entries or NULL) gives, for slot x of
 * the data v reads, the channel of the activation file (the permutation applied to the input
 * axis). `space` names what needed it, for the error. */
nmp_err nmp_saltab_make(const nmp_saliency *sal, const nmp_st_tensor *t, const nmp_tview *v,
                        const int32_t *map, const char *space, nmp_saltab *tab, nmp_msg *msg);
/* sum_k |W(row, k)| of row (o, i) over the whole input axis (ria). */
double nmp_row_abs(const nmp_tview *v, int64_t o, int64_t i);

/* The saliency of W(o, c, i) (c on the whole axis), rowsum = nmp_row_abs(o, i) for ria. */
static inline double nmp_sal_of(const nmp_saltab *tab, double w, int64_t c, double rowsum)
{
    const double x = fabs(w);
    switch (tab->kind) {
    case NMP_SAL_WANDA: return x * tab->act[c];
    case NMP_SAL_RIA:
        return ((rowsum > 0 ? x / rowsum : 0) + (tab->colsum[c] > 0 ? x / tab->colsum[c] : 0)) *
               tab->act[c];
    case NMP_SAL_ABS: break;
    }
    return x;
}

/* ------------------------------------------------------------- writing (nmp_apply.c) */

/* What a write prunes: mode NMP_PRUNE_*, the pattern, the saliency, more exclude globs. */
typedef struct nmp_prune_spec {
    int mode;
    nmp_pattern nm;
    nmp_saliency sal;
    const char *const *exclude;
    int nexclude;
} nmp_prune_spec;

/* Whether NMP_PRUNE_ALL prunes tensor t: 2-D float, its input axis (the axis a space consumes
 * it on, else 0 for gpt2's Conv1D, else 1) divisible by m, and no exclude glob
 * (nmp_prune_exclude_default, then pr->exclude) matching its name. */
bool nmp_prune_selects(const nmp_plan *plan, const nmp_prune_spec *pr, const nmp_st_tensor *t);

/* nmp_plan_apply into an opened atomic file (nmp_st_write_to: closed, not committed), pruning
 * as pr says; what was pruned replaces plan->pruned. Before each tensor stop(user, t) is asked
 * (when not NULL); nonzero ends the write early with *stopped = 1 and NMP_OK (the caller aborts
 * f). */
nmp_err nmp_plan_apply_to(const nmp_st *in, nmp_plan *plan, const nmp_prune_spec *pr,
                          nmp_atomic *f, int (*stop)(void *user, const nmp_st_tensor *t),
                          void *user, int *stopped, nmp_msg *msg);

/* ---------------------------------------------------------- batch runs */

/* The whole file into *buf (NUL-terminated, release with nmp_free) and its length into *len; a
 * missing file gives *buf NULL and NMP_OK. NMP_ERR_IO, NMP_ERR_NOMEM. (nmp_journal.c) */
nmp_err nmp_batch_read_file(const char *path, char **buf, size_t *len, nmp_msg *msg);

/* Opens checkpoint path (*st, release with nmp_st_close) and builds its plan (*out, release with
 * nmp_plan_free), checked for pattern nm; heads and KV heads from config.json beside the file
 * when plan->heads is 0. (nmp_batch_list.c) */
nmp_err nmp_batch_open_plan(const char *path, const nmp_plan_opts *plan, nmp_pattern nm,
                            nmp_st **st, nmp_plan **out, nmp_msg *msg);

/* "<prefix><space>.<solver>.npy" with every '/' of space as '_': the file a space job writes its
 * permutation to and the write job reads it from (nmp heap; NULL when out of memory).
 * (nmp_batch_list.c) */
char *nmp_batch_perm_name(const char *prefix, const char *space, const char *solver);

#endif /* NMP_MODEL_H */

/* nmp_model.h: library-internal pieces of the model layer (plans, spaces, permute, batch) (not
 * installed) */
#ifndef NMP_MODEL_H
#define NMP_MODEL_H

#include "nmp_io.h"

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

/* nmp_model.h: library-internal pieces of the model layer (plans, spaces, permute) (not
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

#endif /* NMP_MODEL_H */

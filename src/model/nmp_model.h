/* nmp_model.h: library-internal pieces of the model layer (plans, spaces, permute) (not
 * installed) */
#ifndef NMP_MODEL_H
#define NMP_MODEL_H

#include "nmp_io.h"

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

/* ------------------------------------------------------------- writing (nmp_space.c) */

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

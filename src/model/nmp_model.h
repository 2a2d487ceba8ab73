/* nmp_model.h: library-internal pieces of the model layer (plans, spaces, permute) (not
 * installed) */
#ifndef NMP_MODEL_H
#define NMP_MODEL_H

#include "nmp_io.h"

/* nmp_plan_apply into an opened atomic file (nmp_st_write_to: closed, not committed). Before
 * each tensor stop(user, t) is asked (when not NULL); nonzero ends the write early with *stopped
 * = 1 and NMP_OK (the caller aborts f). */
nmp_err nmp_plan_apply_to(const nmp_st *in, const nmp_plan *plan, int prune, nmp_pattern nm,
                          nmp_atomic *f, int (*stop)(void *user, const nmp_st_tensor *t),
                          void *user, int *stopped, nmp_msg *msg);

#endif /* NMP_MODEL_H */

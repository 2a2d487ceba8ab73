/* nmp_io.h: library-internal helpers of the file layer (atomic output files) (not installed) */
#ifndef NMP_IO_H
#define NMP_IO_H

#include "nmp_internal.h"

/* ---------------------------------------------------------- atomic files */

#include <stdio.h>

/* An output file written to a temporary beside path and renamed over it on commit; abort (or a
 * failed commit) removes the temporary, so path never holds a partial file. The temporary is
 * "<path>.nmperm-tmp.<pid>.XXXXXX"; only kill -9 (or a crash) can leave one behind, and the next
 * open of the same path removes those whose pid no longer runs. Between close and commit the
 * complete temporary (tmp) can be read back, e.g. to verify it, before it replaces path. */
typedef struct nmp_atomic {
    FILE *fp;
    char *path, *tmp;
} nmp_atomic;

nmp_err nmp_atomic_open(nmp_atomic *f, const char *path, nmp_msg *msg);
nmp_err nmp_atomic_write(nmp_atomic *f, const void *data, size_t size, nmp_msg *msg);
nmp_err nmp_atomic_close(nmp_atomic *f, nmp_msg *msg);  /* flush + fsync + close; keeps tmp */
nmp_err nmp_atomic_commit(nmp_atomic *f, nmp_msg *msg); /* close + rename; always releases f */
void nmp_atomic_abort(nmp_atomic *f);                   /* idempotent; accepts a zeroed f */

/* ---------------------------------------------------------- safetensors */

/* nmp_st_write into an opened atomic file: header and tensors (through fill), then
 * nmp_atomic_close; the caller commits or aborts f. */
nmp_err nmp_st_write_to(const nmp_st *in, nmp_atomic *f, nmp_st_fill_fn fill, void *user,
                        nmp_msg *msg);

#endif /* NMP_IO_H */

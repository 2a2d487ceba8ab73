/* nmp_io.h: library-internal helpers of the file layer (atomic output files) (not installed) */
#ifndef NMP_IO_H
#define NMP_IO_H

#include "nmp_internal.h"

/* ---------------------------------------------------------- atomic files */

#include <stdio.h>

/* An output file written to a temporary beside path and renamed over it on commit; abort (or a
 * failed commit) removes the temporary, so path never holds a partial file. */
typedef struct nmp_atomic {
    FILE *fp;
    char *path, *tmp;
} nmp_atomic;

nmp_err nmp_atomic_open(nmp_atomic *f, const char *path, nmp_msg *msg);
nmp_err nmp_atomic_write(nmp_atomic *f, const void *data, size_t size, nmp_msg *msg);
nmp_err nmp_atomic_commit(nmp_atomic *f, nmp_msg *msg); /* fsync + rename; always closes */
void nmp_atomic_abort(nmp_atomic *f);                   /* idempotent; accepts a zeroed f */

#endif /* NMP_IO_H */

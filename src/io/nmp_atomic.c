/* nmp_atomic.c: atomic output files: write to a temporary beside the target, fsync, rename */
#include "nmp_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

nmp_err nmp_atomic_open(nmp_atomic *f, const char *path, nmp_msg *msg)
{
    memset(f, 0, sizeof *f);
    const size_t len = strlen(path);
    f->path = nmp_malloc(len + 1);
    f->tmp = nmp_malloc(len + 16);
    if (!f->path || !f->tmp) {
        nmp_atomic_abort(f);
        return NMP_ERR_NOMEM;
    }
    memcpy(f->path, path, len + 1);
    snprintf(f->tmp, len + 16, "%s.tmpXXXXXX", path);
    const int fd = mkstemp(f->tmp);
    if (fd < 0) {
        const int err = errno;
        nmp_atomic_abort(f);
        return nmp_fail(msg, NMP_ERR_IO, "%s: cannot create output: %s", path, strerror(err));
    }
    /* mkstemp makes 0600: keep the mode of the file being replaced, else the usual 0666 & ~umask */
    struct stat old;
    mode_t mode;
    if (stat(path, &old) == 0) {
        mode = old.st_mode & 07777;
    } else {
        const mode_t mask = umask(0);
        umask(mask);
        mode = 0666 & ~mask;
    }
    fchmod(fd, mode);
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        const int err = errno;
        close(fd);
        nmp_atomic_abort(f);
        return nmp_fail(msg, NMP_ERR_IO, "%s: cannot create output: %s", path, strerror(err));
    }
    return NMP_OK;
}

nmp_err nmp_atomic_write(nmp_atomic *f, const void *data, size_t size, nmp_msg *msg)
{
    if (size && fwrite(data, 1, size, f->fp) != size)
        return nmp_fail(msg, NMP_ERR_IO, "%s: write failed: %s", f->path, strerror(errno));
    return NMP_OK;
}

nmp_err nmp_atomic_commit(nmp_atomic *f, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    int err = 0;
    if (fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0)
        err = errno;
    if (fclose(f->fp) != 0 && !err)
        err = errno;
    f->fp = NULL;
    if (err)
        e = nmp_fail(msg, NMP_ERR_IO, "%s: write failed: %s", f->path, strerror(err));
    else if (rename(f->tmp, f->path) != 0)
        e = nmp_fail(msg, NMP_ERR_IO, "%s: cannot rename temporary file over it: %s", f->path,
                     strerror(errno));
    else
        f->tmp[0] = '\0'; /* renamed: nothing to remove */
    nmp_atomic_abort(f);
    return e;
}

void nmp_atomic_abort(nmp_atomic *f)
{
    if (f->fp)
        fclose(f->fp);
    if (f->tmp && f->tmp[0])
        unlink(f->tmp);
    nmp_free(f->tmp);
    nmp_free(f->path);
    memset(f, 0, sizeof *f);
}

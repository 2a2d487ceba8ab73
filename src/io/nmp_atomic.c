/* nmp_atomic.c: atomic output files: write to a temporary beside the target, fsync, rename */
#include "nmp_io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_TAG ".nmperm-tmp."

/* The pid in a temporary's name "<base>.nmperm-tmp.<pid>.<6 characters>" (name starts at the
 * tag), or 0 when name is not one. */
static long tmp_owner(const char *tag)
{
    if (strncmp(tag, TMP_TAG, strlen(TMP_TAG)) != 0)
        return 0;
    const char *p = tag + strlen(TMP_TAG);
    char *end = NULL;
    const long pid = strtol(p, &end, 10);
    if (end == p || pid <= 0 || *end != '.' || strlen(end + 1) != 6)
        return 0;
    return pid;
}

/* Whether process pid has ended: no such process, or a zombie (killed, not yet reaped: kill(pid,
 * 0) still succeeds on it, and in a container whose init reaps slowly it stays so for a while). */
static bool pid_gone(long pid)
{
    if (kill((pid_t)pid, 0) != 0)
        return errno == ESRCH; /* EPERM: alive, not ours to judge */
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    const size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')'); /* "pid (comm) S ...": comm may hold ')' */
    return paren && paren[1] == ' ' && paren[2] == 'Z';
}

/* Unlinks dir/name when it is a regular file of this user. */
static bool unlink_own(const char *dir, const char *name)
{
    char full[4096 + 256];
    if (snprintf(full, sizeof full, "%s%s", dir, name) >= (int)sizeof full)
        return false;
    struct stat sb;
    return lstat(full, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_uid == getuid() &&
           unlink(full) == 0;
}

/* Removes temporaries of path left by processes that no longer run (kill -9, power loss):
 * entries "<name>.nmperm-tmp.<pid>.<6 characters>" of path's folder whose pid has ended and
 * that are regular files of this user. Best effort: a failure leaves the file, nothing else. */
static void remove_stale(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const size_t blen = strlen(base), dlen = slash ? (size_t)(slash - path) + 1 : 0;
    char dir[4096];
    if (dlen + 1 > sizeof dir)
        return;
    snprintf(dir, sizeof dir, "%.*s", dlen ? (int)dlen : 1, dlen ? path : ".");
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *ent; (ent = readdir(d)) != NULL;) {
        const char *n = ent->d_name;
        if (strncmp(n, base, blen) != 0)
            continue;
        const long pid = tmp_owner(n + blen);
        if (pid > 0 && pid != (long)getpid() && pid_gone(pid))
            unlink_own(dlen ? dir : "", n);
    }
    closedir(d);
}

/* nmp_atomic_sweep's walk: dir ends with '/'. */
static int64_t sweep(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int64_t removed = 0;
    for (struct dirent *ent; (ent = readdir(d)) != NULL;) {
        const char *n = ent->d_name, *tag = strstr(n, TMP_TAG);
        if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0')))
            continue;
        const long pid = tag && tag > n ? tmp_owner(tag) : 0;
        if (pid > 0 && pid != (long)getpid()) {
            removed += unlink_own(dir, n);
            continue;
        }
        char sub[4096];
        struct stat sb;
        if (depth < 32 && snprintf(sub, sizeof sub, "%s%s/", dir, n) < (int)sizeof sub &&
            lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode))
            removed += sweep(sub, depth + 1);
    }
    closedir(d);
    return removed;
}

int64_t nmp_atomic_sweep(const char *dir)
{
    char root[4096];
    const size_t len = strlen(dir);
    if (len == 0 || len + 2 > sizeof root)
        return 0;
    snprintf(root, sizeof root, "%s%s", dir, dir[len - 1] == '/' ? "" : "/");
    return sweep(root, 0);
}

nmp_err nmp_atomic_open(nmp_atomic *f, const char *path, nmp_msg *msg)
{
    memset(f, 0, sizeof *f);
    const size_t len = strlen(path), tlen = len + sizeof TMP_TAG + 32;
    f->path = nmp_malloc(len + 1);
    f->tmp = nmp_malloc(tlen);
    if (!f->path || !f->tmp) {
        nmp_atomic_abort(f);
        return NMP_ERR_NOMEM;
    }
    memcpy(f->path, path, len + 1);
    remove_stale(path);
    snprintf(f->tmp, tlen, "%s" TMP_TAG "%ld.XXXXXX", path, (long)getpid());
    const int fd = mkstemp(f->tmp);
    if (fd < 0) {
        const int err = errno;
        f->tmp[0] = '\0';
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

nmp_err nmp_atomic_close(nmp_atomic *f, nmp_msg *msg)
{
    int err = 0;
    if (!f->fp)
        return NMP_OK;
    if (fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0)
        err = errno;
    if (fclose(f->fp) != 0 && !err)
        err = errno;
    f->fp = NULL;
    if (err)
        return nmp_fail(msg, NMP_ERR_IO, "%s: write failed: %s", f->path, strerror(err));
    return NMP_OK;
}

void nmp_atomic_sync_dir(const char *dir)
{
    const int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* A set: every part is complete and fsynced before the first rename, so the window in which a
 * kill -9 leaves a mix is the N back-to-back renames. The old index goes first: a set torn in
 * that window has no index (loaders refuse it) instead of an old index over new shards. */
static nmp_err commit_parts(nmp_atomic *f, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    for (int64_t k = 0; k < f->nparts; k++)
        NMP_TRY(e, nmp_atomic_close(&f->parts[k], msg));
    NMP_TRY(e, nmp_atomic_close(f, msg));
    if (unlink(f->path) != 0 && errno != ENOENT) {
        e = nmp_fail(msg, NMP_ERR_IO, "%s: cannot remove the old index: %s", f->path,
                     strerror(errno));
        goto out;
    }
    for (int64_t k = 0; k < f->nparts; k++)
        NMP_TRY(e, nmp_atomic_commit(&f->parts[k], msg));
    nmp_atomic_sync_dir(f->dir);
out:
    return e;
}

nmp_err nmp_atomic_commit(nmp_atomic *f, nmp_msg *msg)
{
    nmp_err e = f->parts ? commit_parts(f, msg) : NMP_OK;
    if (e == NMP_OK)
        e = nmp_atomic_close(f, msg);
    if (e == NMP_OK && rename(f->tmp, f->path) != 0)
        e = nmp_fail(msg, NMP_ERR_IO, "%s: cannot rename temporary file over it: %s", f->path,
                     strerror(errno));
    else if (e == NMP_OK)
        f->tmp[0] = '\0'; /* renamed: nothing to remove */
    if (e == NMP_OK && f->dir) {
        nmp_atomic_sync_dir(f->dir);
        f->made_dir = 0;
    }
    nmp_atomic_abort(f);
    return e;
}

void nmp_atomic_abort(nmp_atomic *f)
{
    for (int64_t k = 0; f->parts && k < f->nparts; k++)
        nmp_atomic_abort(&f->parts[k]);
    nmp_free(f->parts);
    if (f->fp)
        fclose(f->fp);
    if (f->tmp && f->tmp[0])
        unlink(f->tmp);
    if (f->made_dir && f->dir)
        rmdir(f->dir); /* only when empty: the folder this output made */
    nmp_free(f->dir);
    nmp_free(f->tmp);
    nmp_free(f->path);
    memset(f, 0, sizeof *f);
}

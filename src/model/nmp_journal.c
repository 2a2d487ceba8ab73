/* nmp_journal.c: batch journals (append-only JSON lines, fsync'd, torn-line detection, one
 * writer at a time) and the batch's file helpers (folders, atomic writes and copies, reads) */
#include "nmp_model.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* ------------------------------------------------------------- files */

nmp_err nmp_batch_mkdirs(const char *path, nmp_msg *msg)
{
    char buf[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return NMP_OK;
    const size_t len = (size_t)(slash - path);
    if (len >= sizeof buf)
        return nmp_fail(msg, NMP_ERR_IO, "%s: path too long", path);
    memcpy(buf, path, len);
    buf[len] = '\0';
    for (size_t k = 1; k <= len; k++) {
        if (buf[k] != '/' && buf[k] != '\0')
            continue;
        const char keep = buf[k];
        buf[k] = '\0';
        struct stat st;
        if (mkdir(buf, 0777) != 0 && !(errno == EEXIST && stat(buf, &st) == 0 &&
                                       S_ISDIR(st.st_mode)))
            return nmp_fail(msg, NMP_ERR_IO, "%s: cannot create folder: %s", buf,
                            errno == EEXIST ? "a file is in the way" : strerror(errno));
        buf[k] = keep;
    }
    return NMP_OK;
}

nmp_err nmp_batch_write_file(const char *path, const void *data, size_t size, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    nmp_atomic f = { 0 };
    NMP_TRY(e, nmp_batch_mkdirs(path, msg));
    NMP_TRY(e, nmp_atomic_open(&f, path, msg));
    NMP_TRY(e, nmp_atomic_write(&f, data, size, msg));
    e = nmp_atomic_commit(&f, msg);
out:
    nmp_atomic_abort(&f);
    return e;
}

nmp_err nmp_batch_copy_file(const char *from, const char *to, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    nmp_atomic f = { 0 };
    char buf[65536];
    FILE *in = fopen(from, "rb");
    if (!in)
        return nmp_fail(msg, NMP_ERR_IO, "%s: cannot open: %s", from, strerror(errno));
    NMP_TRY(e, nmp_batch_mkdirs(to, msg));
    NMP_TRY(e, nmp_atomic_open(&f, to, msg));
    for (size_t got; (got = fread(buf, 1, sizeof buf, in)) > 0;)
        NMP_TRY(e, nmp_atomic_write(&f, buf, got, msg));
    if (ferror(in)) {
        e = nmp_fail(msg, NMP_ERR_IO, "%s: read failed", from);
        goto out;
    }
    e = nmp_atomic_commit(&f, msg);
out:
    nmp_atomic_abort(&f);
    fclose(in);
    return e;
}

/* The whole file into *buf (NUL-terminated, nmp heap); a missing file gives *buf NULL. */
nmp_err nmp_batch_read_file(const char *path, char **buf, size_t *len, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    *buf = NULL;
    *len = 0;
    size_t cap = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? NMP_OK
                               : nmp_fail(msg, NMP_ERR_IO, "%s: cannot open: %s", path,
                                          strerror(errno));
    for (;;) {
        if (*len + 65536 + 1 > cap) {
            cap = 2 * cap + 65536 + 1;
            char *grown = nmp_realloc(*buf, cap);
            if (!grown) {
                e = NMP_ERR_NOMEM;
                goto out;
            }
            *buf = grown;
        }
        const size_t got = fread(*buf + *len, 1, 65536, f);
        *len += got;
        if (got < 65536)
            break;
    }
    if (ferror(f))
        e = nmp_fail(msg, NMP_ERR_IO, "%s: read failed", path);
    else
        (*buf)[*len] = '\0';
out:
    fclose(f);
    if (e != NMP_OK) {
        nmp_free(*buf);
        *buf = NULL;
    }
    return e;
}

/* ------------------------------------------------------------- journal */

struct nmp_journal {
    int fd;
};

/* Splits text into lines; *valid = bytes up to the end of the last good line. A line without
 * '\n' at the end, or a last line that does not parse, is torn; a bad line before it is an
 * error. With lines NULL only *valid and *torn are computed. */
static nmp_err scan_lines(const char *path, const char *text, size_t len, char **lines,
                          int64_t *count, size_t *valid, int *torn, nmp_msg *msg)
{
    int64_t n = 0, lineno = 0;
    size_t at = 0;
    *valid = 0;
    *torn = 0;
    while (at < len) {
        const char *nl = memchr(text + at, '\n', len - at);
        lineno++;
        if (!nl) {
            *torn = 1;
            break;
        }
        const size_t end = (size_t)(nl - text);
        json_t *j = json_loadb(text + at, end - at, 0, NULL);
        const bool good = json_is_object(j);
        json_decref(j);
        if (!good) {
            if (end + 1 == len) {
                *torn = 1;
                break;
            }
            return nmp_fail(msg, NMP_ERR_FORMAT, "%s: line %lld: not a JSON object", path,
                            (long long)lineno);
        }
        if (lines) {
            lines[n] = nmp_malloc(end - at + 1);
            if (!lines[n])
                return NMP_ERR_NOMEM;
            memcpy(lines[n], text + at, end - at);
            lines[n][end - at] = '\0';
        }
        n++;
        at = end + 1;
        *valid = at;
    }
    *count = n;
    return NMP_OK;
}

nmp_err nmp_journal_read(const char *path, char ***lines, int64_t *count, int *torn,
                         nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    char *text = NULL;
    size_t len = 0, valid = 0;
    int64_t cap = 1;
    *lines = NULL;
    *count = 0;
    *torn = 0;
    NMP_TRY(e, nmp_batch_read_file(path, &text, &len, msg));
    for (size_t k = 0; k < len; k++)
        cap += text[k] == '\n';
    if (!(*lines = nmp_calloc((size_t)cap, sizeof **lines))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    e = scan_lines(path, text ? text : "", len, *lines, count, &valid, torn, msg);
    if (e != NMP_OK) {
        nmp_batch_lines_free(*lines, cap);
        *lines = NULL;
        *count = 0;
    }
out:
    nmp_free(text);
    return e;
}

void nmp_batch_lines_free(char **lines, int64_t count)
{
    if (!lines)
        return;
    for (int64_t k = 0; k < count; k++)
        nmp_free(lines[k]);
    nmp_free(lines);
}

/* fsync of the folder holding path, so that a new file's name is durable too. */
static void sync_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + 1 : 1, slash ? path : ".");
    nmp_atomic_sync_dir(dir);
}

nmp_err nmp_journal_open(const char *path, int truncate, nmp_journal **out, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    char *text = NULL;
    size_t len = 0, valid = 0;
    int64_t count = 0;
    int torn = 0, fd = -1;
    *out = NULL;
    if (!truncate) {
        NMP_TRY(e, nmp_batch_read_file(path, &text, &len, msg));
        NMP_TRY(e, scan_lines(path, text ? text : "", len, NULL, &count, &valid, &torn, msg));
    }
    NMP_TRY(e, nmp_batch_mkdirs(path, msg));
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (fd < 0) {
        e = nmp_fail(msg, NMP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    /* one writer at a time: two runs appending to one journal would interleave */
    struct flock lock = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    if (fcntl(fd, F_SETLK, &lock) != 0) {
        e = nmp_fail(msg, NMP_ERR_IO, "%s: in use by another run (%s)", path, strerror(errno));
        goto out;
    }
    { /* the folder is this run's now: temporaries in it were left by killed runs' workers */
        char dir[4096];
        const char *slash = strrchr(path, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
        nmp_atomic_sweep(dir);
    }
    if (truncate && ftruncate(fd, 0) != 0) {
        e = nmp_fail(msg, NMP_ERR_IO, "%s: cannot truncate: %s", path, strerror(errno));
        goto out;
    }
    if (torn && (ftruncate(fd, (off_t)valid) != 0 || fsync(fd) != 0)) {
        e = nmp_fail(msg, NMP_ERR_IO, "%s: cannot cut the torn last line: %s", path,
                     strerror(errno));
        goto out;
    }
    sync_dir(path);
    if (!(*out = nmp_malloc(sizeof **out))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    (*out)->fd = fd;
    fd = -1;
out:
    if (fd >= 0)
        close(fd);
    nmp_free(text);
    return e;
}

nmp_err nmp_journal_append(nmp_journal *j, const char *line, nmp_msg *msg)
{
    const size_t len = strlen(line);
    char *buf = nmp_malloc(len + 1);
    nmp_err e = NMP_OK;
    if (!buf)
        return NMP_ERR_NOMEM;
    memcpy(buf, line, len);
    buf[len] = '\n';
    for (size_t at = 0; at < len + 1;) {
        const ssize_t w = write(j->fd, buf + at, len + 1 - at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            e = nmp_fail(msg, NMP_ERR_IO, "journal: write failed: %s", strerror(errno));
            goto out;
        }
        at += (size_t)w;
    }
    if (fsync(j->fd) != 0)
        e = nmp_fail(msg, NMP_ERR_IO, "journal: fsync failed: %s", strerror(errno));
out:
    nmp_free(buf);
    return e;
}

void nmp_journal_close(nmp_journal *j)
{
    if (!j)
        return;
    close(j->fd);
    nmp_free(j);
}

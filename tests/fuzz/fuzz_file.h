/* fuzz_file.h: the fuzz input as a file path (the library's readers take paths): an in-memory
 * file (memfd) rewritten in place on every run, opened through /proc/self/fd; a temporary file
 * under $TMPDIR where memfd_create is missing. Header-only, shared by the fuzz harnesses. */
#ifndef FUZZ_FILE_H
#define FUZZ_FILE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct fuzz_file {
    int fd;
    char path[4096];
} fuzz_file;

/* Opens f once; aborts (a harness setup failure, not a finding) when neither way works. */
static void fuzz_file_open(fuzz_file *f, const char *name)
{
    f->fd = memfd_create(name, MFD_CLOEXEC);
    if (f->fd >= 0) {
        snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
        if (access(f->path, R_OK) == 0)
            return;
        close(f->fd);
    }
    const char *dir = getenv("TMPDIR");
    snprintf(f->path, sizeof f->path, "%s/%s.XXXXXX", dir && *dir ? dir : "/tmp", name);
    f->fd = mkstemp(f->path);
    if (f->fd < 0) {
        perror("fuzz_file_open");
        abort();
    }
}

/* Makes the file hold exactly data[0 .. size-1]; returns f->path. */
static const char *fuzz_file_set(fuzz_file *f, const uint8_t *data, size_t size)
{
    if (ftruncate(f->fd, 0) != 0) {
        perror("fuzz_file_set");
        abort();
    }
    for (size_t done = 0; done < size;) {
        const ssize_t n = pwrite(f->fd, data + done, size - done, (off_t)done);
        if (n <= 0) {
            perror("fuzz_file_set");
            abort();
        }
        done += (size_t)n;
    }
    return f->path;
}

#endif /* FUZZ_FILE_H */

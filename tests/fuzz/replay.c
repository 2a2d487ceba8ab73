/* replay.c: runs a fuzz harness once on every file named (folders: every file inside, sorted),
 * without libFuzzer, so that the normal and sanitizer builds replay the seed corpus and every
 * past finding (tests/fuzz/regress/) under any compiler. A finding aborts, as under libFuzzer. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    uint8_t *data = NULL;
    size_t size = 0, cap = 0, got;
    do {
        if (size == cap) {
            cap = cap ? 2 * cap : 4096;
            uint8_t *grown = realloc(data, cap);
            if (!grown) {
                free(data);
                fclose(f);
                return 1;
            }
            data = grown;
        }
        got = fread(data + size, 1, cap - size, f);
        size += got;
    } while (got > 0);
    fclose(f);
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

/* Replays path (a file, or the files of a folder, sorted); counts them in *count. */
static int replay(const char *path, int *count)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        perror(path);
        return 1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        ++*count;
        return replay_file(path);
    }
    struct dirent **names = NULL;
    const int n = scandir(path, &names, NULL, alphasort);
    if (n < 0) {
        perror(path);
        return 1;
    }
    int rc = 0;
    for (int k = 0; k < n; k++) {
        char child[4096];
        if (names[k]->d_name[0] != '.' && rc == 0) {
            snprintf(child, sizeof child, "%s/%s", path, names[k]->d_name);
            rc = replay(child, count);
        }
        free(names[k]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    int count = 0;
    for (int k = 1; k < argc; k++)
        if (replay(argv[k], &count) != 0)
            return 1;
    printf("%d inputs replayed\n", count);
    return count > 0 ? 0 : 1;
}

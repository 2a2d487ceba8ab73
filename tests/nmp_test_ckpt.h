/* nmp_test_ckpt.h: tiny safetensors files written by the checkpoint tests (F32/F16/I64 tensors) */
#ifndef NMP_TEST_CKPT_H
#define NMP_TEST_CKPT_H

#include "nmp_test.h"

#include <stdbool.h>
#include <unistd.h>

typedef struct test_tensor {
    const char *name, *dtype;
    int ndim;
    int64_t shape[4];
} test_tensor;

/* Writes the tensors (values N(0, 0.5) from seed, positive for names ending in "var") to path. */
static inline void test_write_st(const char *path, const test_tensor *t, int count, uint64_t seed)
{
    char header[16384];
    size_t len = 0, off = 0;
    nmp_rng r;
    nmp_rng_seed(&r, seed);
    len += (size_t)snprintf(header + len, sizeof header - len, "{");
    for (int k = 0; k < count; k++) {
        int64_t n = 1;
        for (int d = 0; d < t[k].ndim; d++)
            n *= t[k].shape[d];
        const size_t bytes = (size_t)n * nmp_st_dtype_size(t[k].dtype);
        len += (size_t)snprintf(header + len, sizeof header - len,
                                "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", k ? "," : "", t[k].name,
                                t[k].dtype);
        for (int d = 0; d < t[k].ndim; d++)
            len += (size_t)snprintf(header + len, sizeof header - len, "%s%lld", d ? "," : "",
                                    (long long)t[k].shape[d]);
        len += (size_t)snprintf(header + len, sizeof header - len, "],\"data_offsets\":[%zu,%zu]}",
                                off, off + bytes);
        off += bytes;
    }
    len += (size_t)snprintf(header + len, sizeof header - len, "}");
    while (len % 8)
        header[len++] = ' ';
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    const uint64_t hl = len;
    fwrite(&hl, 8, 1, f);
    fwrite(header, 1, len, f);
    for (int k = 0; k < count; k++) {
        int64_t n = 1;
        for (int d = 0; d < t[k].ndim; d++)
            n *= t[k].shape[d];
        const size_t nl = strlen(t[k].name);
        const bool positive = nl > 3 && strcmp(t[k].name + nl - 3, "var") == 0;
        for (int64_t j = 0; j < n; j++) {
            double v = 0.5 * nmp_rng_normal(&r);
            v = positive ? fabs(v) + 0.5 : v;
            if (strcmp(t[k].dtype, "F32") == 0) {
                const float x = (float)v;
                fwrite(&x, 4, 1, f);
            } else if (strcmp(t[k].dtype, "I64") == 0) {
                const int64_t x = j;
                fwrite(&x, 8, 1, f);
            } else { /* F16: a few exact values */
                const uint16_t x = (uint16_t)(0x3800 + (nmp_rng_below(&r, 512) << 1));
                fwrite(&x, 2, 1, f);
            }
        }
    }
    fclose(f);
}

/* A temporary path ("<dir>/<name>") under $TMPDIR or /tmp, unique per process. */
static inline void test_path(char *out, size_t size, const char *name)
{
    const char *dir = getenv("TMPDIR");
    snprintf(out, size, "%s/nmp_test_%ld_%s", dir ? dir : "/tmp", (long)getpid(), name);
}

#endif /* NMP_TEST_CKPT_H */

/* fuzz_npy.c: libFuzzer harness of the .npy readers: the input is a whole .npy file, read as a
 * matrix (nmp_npy_read_matrix), a vector (nmp_npy_read_vector) and a permutation
 * (nmp_npy_read_perm). Findings are sanitizer reports or a broken invariant (__builtin_trap): a
 * failure without a one-line reason naming the file, a result whose size the file cannot hold,
 * output left behind by a failed read. */
#include "fuzz_file.h" /* first: it asks for memfd_create (_GNU_SOURCE) */

#include "nmperm.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static fuzz_file file;

static void check_msg(nmp_err e, const nmp_msg *msg, const char *path)
{
    if (e == NMP_OK || e == NMP_ERR_NOMEM)
        return;
    CHECK(msg->text[0] != '\0');
    CHECK(strchr(msg->text, '\n') == NULL);
    CHECK(strstr(msg->text, path) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (file.path[0] == '\0')
        fuzz_file_open(&file, "fuzz.npy");
    const char *path = fuzz_file_set(&file, data, size);

    nmp_array a;
    nmp_msg msg = { "" };
    nmp_err e = nmp_npy_read_matrix(path, &a, &msg);
    check_msg(e, &msg, path);
    if (e == NMP_OK) {
        /* every element takes at least 2 bytes of the file (float16) */
        CHECK(a.data && a.rows >= 0 && a.cols >= 0);
        CHECK(a.rows == 0 || a.cols <= (int64_t)size / 2 / a.rows);
        volatile float sum = 0;
        for (int64_t k = 0; k < a.rows * a.cols; k++)
            sum += a.data[k];
        (void)sum;
    } else {
        CHECK(a.data == NULL);
    }
    nmp_array_free(&a);

    float *v = NULL;
    int64_t len = -1;
    msg.text[0] = '\0';
    e = nmp_npy_read_vector(path, &v, &len, &msg);
    check_msg(e, &msg, path);
    if (e == NMP_OK) {
        CHECK(v && len >= 1 && len <= (int64_t)size / 2);
        volatile float last = v[len - 1];
        (void)last;
    }
    nmp_free(v);

    int32_t *p = NULL;
    len = -1;
    msg.text[0] = '\0';
    e = nmp_npy_read_perm(path, &p, &len, &msg);
    check_msg(e, &msg, path);
    if (e == NMP_OK) {
        CHECK(p && len >= 1 && len <= (int64_t)size);
        volatile int32_t last = p[len - 1];
        (void)last;
    }
    nmp_free(p);
    return 0;
}

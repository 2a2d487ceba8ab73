/* test_nmp_npy.c: .npy reading and writing (src/io/nmp_npy.c) on hand-built files */
#include "nmp_test.h"

#include <dirent.h>
#include <float.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

/* A fresh mkdtemp directory; dir_remove deletes it with the files in it. */
static void dir_new(char *dir, size_t cap)
{
    const char *base = getenv("TMPDIR");
    snprintf(dir, cap, "%s/nmp_npy_XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(dir));
}

/* Number of entries in dir other than "." and "..". */
static int dir_count(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void dir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char path[600];
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    closedir(d);
    assert_int_equal(rmdir(dir), 0);
}

static void join(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* put_raw of a string literal without its NUL */
#define PUT_LIT(path, lit) put_raw((path), (lit), sizeof(lit) - 1)

static void put_raw(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* A .npy of format version major.0: magic, version, header length (2 bytes for 1.0, else 4),
 * the header text plus a newline, then n bytes of data. */
static void put_npy(const char *path, int major, const char *header, const void *data, size_t n)
{
    unsigned char buf[4096];
    const size_t hlen = strlen(header) + 1;
    size_t pos = 0;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    pos = 8;
    for (int b = 0; b < (major == 1 ? 2 : 4); b++)
        buf[pos++] = (unsigned char)(hlen >> (8 * b));
    memcpy(buf + pos, header, hlen - 1);
    pos += hlen - 1;
    buf[pos++] = '\n';
    assert_true(pos + n <= sizeof buf);
    if (n)
        memcpy(buf + pos, data, n);
    put_raw(path, buf, pos + n);
}

/* Little-endian encoders of element k. */
static void le16(unsigned char *b, size_t k, uint16_t v)
{
    b[2 * k] = (unsigned char)v;
    b[2 * k + 1] = (unsigned char)(v >> 8);
}

static void le32(unsigned char *b, size_t k, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[4 * k + i] = (unsigned char)(v >> (8 * i));
}

static void le64(unsigned char *b, size_t k, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[8 * k + i] = (unsigned char)(v >> (8 * i));
}

static void lef32(unsigned char *b, size_t k, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    le32(b, k, u);
}

static void lef64(unsigned char *b, size_t k, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    le64(b, k, u);
}

static bool same_bits(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* The message starts with the path and contains reason. */
static void assert_msg(const nmp_msg *msg, const char *path, const char *reason)
{
    if (strncmp(msg->text, path, strlen(path)) != 0 || !strstr(msg->text, reason)) {
        print_error("message \"%s\" lacks \"%s\" or the path\n", msg->text, reason);
        fail();
    }
}

static void expect_matrix_fail(const char *path, nmp_err code, const char *reason)
{
    nmp_array a = { 0 };
    nmp_msg msg = { { 0 } };
    assert_int_equal(nmp_npy_read_matrix(path, &a, &msg), code);
    assert_null(a.data);
    assert_msg(&msg, path, reason);
}

static void expect_perm_fail(const char *path, const char *reason)
{
    int32_t *p = NULL;
    int64_t n = -1;
    nmp_msg msg = { { 0 } };
    assert_int_equal(nmp_npy_read_perm(path, &p, &n, &msg), NMP_ERR_FORMAT);
    assert_null(p);
    assert_int_equal(n, 0);
    assert_msg(&msg, path, reason);
}

static const char hdr_f4_2x3[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";

/* ------------------------------------------------------------ round trips */

static void test_roundtrip_matrix(void **state)
{
    (void)state;
    char dir[256], path[300];
    dir_new(dir, sizeof dir);
    join(path, sizeof path, dir, "w.npy");

    enum { R = 7, C = 13 };
    float w[R * C];
    for (int k = 0; k < R * C; k++)
        w[k] = (float)k * 0.37f - 11.0f;
    w[0] = -0.0f;
    w[1] = FLT_MAX;
    w[2] = 1e-40f; /* subnormal */
    w[3] = -FLT_MIN;
    const nmp_matrix v = { w, R, C, C, 1 };
    nmp_msg msg = { { 0 } };
    nmp_assert_ok(nmp_npy_write_matrix(path, &v, &msg));
    assert_int_equal(dir_count(dir), 1);

    /* header padded to a multiple of 64, ends in a newline, data follow */
    unsigned char buf[1024];
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    const size_t got = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_memory_equal(buf, "\x93NUMPY\x01\x00", 8);
    const size_t offset = 10 + (size_t)(buf[8] | buf[9] << 8);
    assert_int_equal(offset % 64, 0);
    assert_int_equal(buf[offset - 1], '\n');
    assert_int_equal(got, offset + sizeof w);
    assert_non_null(strstr((const char *)buf + 10, "'shape': (7, 13)"));

    nmp_array a = { 0 };
    nmp_assert_ok(nmp_npy_read_matrix(path, &a, &msg));
    assert_int_equal(a.rows, R);
    assert_int_equal(a.cols, C);
    for (int k = 0; k < R * C; k++)
        assert_true(same_bits(a.data[k], w[k]));
    nmp_array_free(&a);
    assert_null(a.data);

    /* overwriting replaces the file and leaves no temporary behind */
    const nmp_matrix v2 = { w, 2, 2, C, 1 };
    nmp_assert_ok(nmp_npy_write_matrix(path, &v2, &msg));
    nmp_assert_ok(nmp_npy_read_matrix(path, &a, &msg));
    assert_int_equal(a.rows, 2);
    assert_int_equal(a.cols, 2);
    assert_true(same_bits(a.data[3], w[C + 1]));
    nmp_array_free(&a);
    assert_int_equal(dir_count(dir), 1);
    dir_remove(dir);
}

static void test_write_strided_views(void **state)
{
    (void)state;
    char dir[256], path[300];
    dir_new(dir, sizeof dir);
    join(path, sizeof path, dir, "s.npy");

    enum { R = 6, C = 9 };
    float w[R * C];
    for (int k = 0; k < R * C; k++)
        w[k] = (float)k + 0.5f;
    /* a 3 x 4 block at (1, 2), a column-strided view, and a transpose */
    const nmp_matrix views[] = {
        { w + 1 * C + 2, 3, 4, C, 1 },
        { w + 1, 3, 4, 2 * C, 2 },
        { w, C, R, 1, C },
    };
    for (size_t t = 0; t < sizeof views / sizeof views[0]; t++) {
        const nmp_matrix *v = &views[t];
        nmp_msg msg = { { 0 } };
        nmp_assert_ok(nmp_npy_write_matrix(path, v, &msg));
        nmp_array a = { 0 };
        nmp_assert_ok(nmp_npy_read_matrix(path, &a, &msg));
        assert_int_equal(a.rows, v->rows);
        assert_int_equal(a.cols, v->cols);
        for (int64_t j = 0; j < v->rows; j++)
            for (int64_t i = 0; i < v->cols; i++)
                assert_true(same_bits(a.data[j * a.cols + i], nmp_matrix_at(v, j, i)));
        nmp_array_free(&a);
    }
    dir_remove(dir);
}

static void test_roundtrip_perm(void **state)
{
    (void)state;
    char dir[256], path[300];
    dir_new(dir, sizeof dir);
    join(path, sizeof path, dir, "p.npy");

    const int32_t perm[] = { 3, 0, 2, 1, 7, 6, 5, 4, -1, INT32_MAX, INT32_MIN };
    const int64_t n = (int64_t)(sizeof perm / sizeof perm[0]);
    nmp_msg msg = { { 0 } };
    nmp_assert_ok(nmp_npy_write_perm(path, perm, n, &msg));

    unsigned char buf[512];
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    const size_t got = fread(buf, 1, sizeof buf, f);
    fclose(f);
    const size_t offset = 10 + (size_t)(buf[8] | buf[9] << 8);
    assert_int_equal(offset % 64, 0);
    assert_int_equal(got, offset + 8 * (size_t)n);
    assert_non_null(strstr((const char *)buf + 10, "'descr': '<i8'"));
    assert_non_null(strstr((const char *)buf + 10, "'shape': (11,)"));

    int32_t *p = NULL;
    int64_t len = 0;
    nmp_assert_ok(nmp_npy_read_perm(path, &p, &len, &msg));
    assert_int_equal(len, n);
    assert_memory_equal(p, perm, sizeof perm);
    nmp_free(p);

    /* NULL writes the identity */
    nmp_assert_ok(nmp_npy_write_perm(path, NULL, 5, &msg));
    nmp_assert_ok(nmp_npy_read_perm(path, &p, &len, &msg));
    assert_int_equal(len, 5);
    for (int k = 0; k < 5; k++)
        assert_int_equal(p[k], k);
    nmp_free(p);

    assert_int_equal(nmp_npy_write_perm(path, perm, 0, &msg), NMP_ERR_ARG);
    const float zero[3] = { 0 };
    const nmp_matrix empty = { zero, 0, 3, 3, 1 };
    assert_int_equal(nmp_npy_write_matrix(path, &empty, &msg), NMP_ERR_ARG);
    assert_int_equal(dir_count(dir), 1);
    dir_remove(dir);
}

/* ------------------------------------------------------- hand-built reads */

static void test_read_f8_c_order(void **state)
{
    (void)state;
    char dir[256], path[300];
    dir_new(dir, sizeof dir);
    join(path, sizeof path, dir, "d.npy");

    const double v[6] = { 1.5, -2.25, 1e-3, 3e38, -1e-45, 0.1 };
    unsigned char data[48];
    for (size_t k = 0; k < 6; k++)
        lef64(data, k, v[k]);
    put_npy(path, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", data,
            sizeof data);
    nmp_array a = { 0 };
    nmp_msg msg = { { 0 } };
    nmp_assert_ok(nmp_npy_read_matrix(path, &a, &msg));
    assert_int_equal(a.rows, 2);
    assert_int_equal(a.cols, 3);
    for (int k = 0; k < 6; k++)
        assert_true(same_bits(a.data[k], (float)v[k]));
    nmp_array_free(&a);

    /* Fortran-order float64: column-major on disk */
    put_npy(path, 1, "{'descr': '<f8', 'fortran_order': True, 'shape': (3, 2), }", data,
            sizeof data);
    nmp_assert_ok(nmp_npy_read_matrix(path, &a, &msg));
    assert_int_equal(a.rows, 3);
    assert_int_equal(a.cols, 2);
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < 2; i++)
            assert_true(same_bits(a.data[j * 2 + i], (float)v[i * 3 + j]));
    nmp_array_free(&a);

    /* beyond float32: an error naming the element; inf and NaN pass */
    lef64(data, 4, 1e300);
    lef64(data, 1, INFINITY);
    lef64(data, 2, NAN);
    put_npy(path, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", data,
            sizeof data);
    expect_matrix_fail(path, NMP_ERR_FORMAT, "at row 1, col 1 does not fit float32");
    lef64(data, 4, -3.5e38);
    put_npy(path, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", data,
            sizeof data);
    expect_matrix_fail(path, NMP_ERR_FORMAT, "at row 1, col 1 does not fit float32");
    lef64(data, 4, 0.0);
    put_npy(path, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", data,
            sizeof data);
    nmp_assert_ok(nmp_npy_read_matrix(path, &a, &msg));
    assert_true(isinf(a.data[1]) && a.data[1] > 0);
    assert_true(isnan(a.data[2]));
    nmp_array_free(&a);
    dir_remove(dir);
}

static void test_read_f2(void **state)
{
    (void)state;
    char dir[256], path[300];
    dir_new(dir, sizeof dir);
    join(path, sizeof path, dir, "h.npy");

    /* bits -> value: normals, subnormals, zeros, extremes, inf, NaN */
    const uint16_t bits[12] = { 0x3c00, 0xc000, 0x0001, 0x03ff, 0x0400, 0x7bff,
                                0x7c00, 0xfc00, 0x8000, 0x3555, 0x8001, 0x7e00 };
    const float want[11] = { 1.0f,
                             -2.0f,
                             0x1p-24f,
                             1023 * 0x1p-24f,
                             0x1p-14f,
                             65504.0f,
                             INFINITY,
                             -INFINITY,
                             -0.0f,
                             0x1.554p-2f,
                             -0x1p-24f };
    unsigned char data[24];
    for (size_t k = 0; k < 12; k++)
        le16(data, k, bits[k]);
    put_npy(path, 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (3, 4), }", data,
            sizeof data);
    nmp_array a = { 0 };
    nmp_msg msg = { { 0 } };
    nmp_assert_ok(nmp_npy_read_matrix(path, &a, &msg));
    assert_int_equal(a.rows, 3);
    assert_int_equal(a.cols, 4);
    for (int k = 0; k < 11; k++)
        assert_true(same_bits(a.data[k], want[k]));
    assert_true(isnan(a.data[11]));
    nmp_array_free(&a);

    /* the same bits as a vector, and in Fortran order as a 4 x 3 matrix */
    put_npy(path, 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (12,), }", data,
            sizeof data);
    float *vec = NULL;
    int64_t len = 0;
    nmp_assert_ok(nmp_npy_read_vector(path, &vec, &len, &msg));
    assert_int_equal(len, 12);
    for (int k = 0; k < 11; k++)
        assert_true(same_bits(vec[k], want[k]));
    nmp_free(vec);

    put_npy(path, 1, "{'descr': '<f2', 'fortran_order': True, 'shape': (4, 3), }", data,
            sizeof data);
    nmp_assert_ok(nmp_npy_read_matrix(path, &a, &msg));
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < 3; i++)
            if (i * 4 + j != 11)
                assert_true(same_bits(a.data[j * 3 + i], want[i * 4 + j]));
    nmp_array_free(&a);
    dir_remove(dir);
}

static void test_read_fortran_f4(void **state)
{
    (void)state;
    char dir[256], path[300];
    dir_new(dir, sizeof dir);
    join(path, sizeof path, dir, "f.npy");

    /* A = [[0 1 2], [3 4 5]] stored column-major: 0 3 1 4 2 5 */
    const float colmajor[6] = { 0, 3, 1, 4, 2, 5 };
    unsigned char data[24];
    for (size_t k = 0; k < 6; k++)
        lef32(data, k, colmajor[k]);
    put_npy(path, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", data,
            sizeof data);
    nmp_array a = { 0 };
    nmp_msg msg = { { 0 } };
    nmp_assert_ok(nmp_npy_read_matrix(path, &a, &msg));
    assert_int_equal(a.rows, 2);
    assert_int_equal(a.cols, 3);
    for (int k = 0; k < 6; k++)
        assert_true(a.data[k] == (float)k);
    nmp_array_free(&a);
    dir_remove(dir);
}

static void test_read_header_forms(void **state)
{
    (void)state;
    char dir[256], path[300];
    dir_new(dir, sizeof dir);
    join(path, sizeof path, dir, "v.npy");

    unsigned char data[24];
    for (size_t k = 0; k < 6; k++)
        lef32(data, k, (float)k);
    static const struct {
        int major;
        const char *header;
    } forms[] = {
        { 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" },
        { 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" },
        { 1, "{'shape':(2,3),'fortran_order':False,'descr':'<f4'}" },
        { 1, "  {  \"fortran_order\" : False ,\n \"descr\" : \"<f4\", 'shape' : ( 2 , 3 , ) ,}  " },
        { 1, "{'descr': '=f4', 'fortran_order': False, 'shape': (2L, 3L), }" },
        { 1, "{'descr': '|f4', 'fortran_order': False, 'shape': (2, 3)}" },
    };
    for (size_t t = 0; t < sizeof forms / sizeof forms[0]; t++) {
        put_npy(path, forms[t].major, forms[t].header, data, sizeof data);
        nmp_array a = { 0 };
        nmp_msg msg = { { 0 } };
        assert_int_equal(nmp_npy_read_matrix(path, &a, &msg), NMP_OK);
        assert_int_equal(a.rows, 2);
        assert_int_equal(a.cols, 3);
        for (int k = 0; k < 6; k++)
            assert_true(a.data[k] == (float)k);
        nmp_array_free(&a);
    }
    dir_remove(dir);
}

static void test_read_perm_dtypes(void **state)
{
    (void)state;
    char dir[256], path[300];
    dir_new(dir, sizeof dir);
    join(path, sizeof path, dir, "p.npy");
    unsigned char data[64];
    int32_t *p = NULL;
    int64_t n = 0;
    nmp_msg msg = { { 0 } };

    const int32_t want[4] = { 2, 0, 3, 1 };
    for (size_t k = 0; k < 4; k++)
        le32(data, k, (uint32_t)want[k]);
    put_npy(path, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }", data, 16);
    nmp_assert_ok(nmp_npy_read_perm(path, &p, &n, &msg));
    assert_int_equal(n, 4);
    assert_memory_equal(p, want, sizeof want);
    nmp_free(p);

    for (size_t k = 0; k < 4; k++)
        le64(data, k, (uint64_t)want[k]);
    put_npy(path, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", data, 32);
    nmp_assert_ok(nmp_npy_read_perm(path, &p, &n, &msg));
    assert_int_equal(n, 4);
    assert_memory_equal(p, want, sizeof want);
    nmp_free(p);

    put_npy(path, 1, "{'descr': '<u8', 'fortran_order': False, 'shape': (4,), }", data, 32);
    nmp_assert_ok(nmp_npy_read_perm(path, &p, &n, &msg));
    assert_memory_equal(p, want, sizeof want);
    nmp_free(p);

    /* narrow types, with sign extension; not validated as a bijection */
    const unsigned char small[4] = { 0xff, 0x00, 0x7f, 0x80 };
    put_npy(path, 1, "{'descr': '|i1', 'fortran_order': False, 'shape': (4,), }", small, 4);
    nmp_assert_ok(nmp_npy_read_perm(path, &p, &n, &msg));
    assert_int_equal(p[0], -1);
    assert_int_equal(p[2], 127);
    assert_int_equal(p[3], -128);
    nmp_free(p);
    put_npy(path, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }", small, 4);
    nmp_assert_ok(nmp_npy_read_perm(path, &p, &n, &msg));
    assert_int_equal(p[0], 255);
    assert_int_equal(p[3], 128);
    nmp_free(p);
    le16(data, 0, 0xfffe);
    le16(data, 1, 0x7fff);
    put_npy(path, 1, "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }", data, 4);
    nmp_assert_ok(nmp_npy_read_perm(path, &p, &n, &msg));
    assert_int_equal(p[0], -2);
    assert_int_equal(p[1], 32767);
    nmp_free(p);
    put_npy(path, 1, "{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", data, 4);
    nmp_assert_ok(nmp_npy_read_perm(path, &p, &n, &msg));
    assert_int_equal(p[0], 65534);
    nmp_free(p);
    le32(data, 0, 0x7fffffffu);
    le32(data, 1, 0x80000000u);
    put_npy(path, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", data, 8);
    nmp_assert_ok(nmp_npy_read_perm(path, &p, &n, &msg));
    assert_int_equal(p[0], INT32_MAX);
    assert_int_equal(p[1], INT32_MIN);
    nmp_free(p);

    /* out of int32 range */
    put_npy(path, 1, "{'descr': '<u4', 'fortran_order': False, 'shape': (2,), }", data, 8);
    expect_perm_fail(path, "value 2147483648 at index 1 does not fit int32");
    le64(data, 0, 1);
    le64(data, 1, UINT64_MAX);
    put_npy(path, 1, "{'descr': '<u8', 'fortran_order': False, 'shape': (2,), }", data, 16);
    expect_perm_fail(path, "value 18446744073709551615 at index 1 does not fit int32");
    put_npy(path, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", data, 16);
    nmp_assert_ok(nmp_npy_read_perm(path, &p, &n, &msg)); /* -1 fits */
    assert_int_equal(p[1], -1);
    nmp_free(p);
    le64(data, 0, (uint64_t)INT32_MIN - 1);
    put_npy(path, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", data, 16);
    expect_perm_fail(path, "value -2147483649 at index 0 does not fit int32");

    /* wrong kinds and shapes */
    put_npy(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", data, 8);
    expect_perm_fail(path, "dtype '<f4', expected an integer type");
    put_npy(path, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 1), }", data, 8);
    expect_perm_fail(path, "2-D array, expected 1-D");
    put_npy(path, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (0,), }", data, 0);
    expect_perm_fail(path, "empty array");
    put_npy(path, 1, "{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }", data, 8);
    expect_perm_fail(path, "dtype '>i4' (big-endian) is not supported");
    put_npy(path, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", data, 2);
    expect_perm_fail(path, "dtype '|b1' is not supported");
    dir_remove(dir);
}

static void test_read_vector(void **state)
{
    (void)state;
    char dir[256], path[300];
    dir_new(dir, sizeof dir);
    join(path, sizeof path, dir, "x.npy");
    unsigned char data[40];
    float *x = NULL;
    int64_t n = 0;
    nmp_msg msg = { { 0 } };

    for (size_t k = 0; k < 5; k++)
        lef32(data, k, 0.25f * (float)k);
    put_npy(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", data, 20);
    nmp_assert_ok(nmp_npy_read_vector(path, &x, &n, &msg));
    assert_int_equal(n, 5);
    for (int k = 0; k < 5; k++)
        assert_true(x[k] == 0.25f * (float)k);
    nmp_free(x);

    for (size_t k = 0; k < 5; k++)
        lef64(data, k, 0.1 * (double)k);
    put_npy(path, 2, "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }", data, 40);
    nmp_assert_ok(nmp_npy_read_vector(path, &x, &n, &msg));
    assert_int_equal(n, 5);
    for (int k = 0; k < 5; k++)
        assert_true(x[k] == (float)(0.1 * k));
    nmp_free(x);

    lef64(data, 3, 1e39);
    put_npy(path, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }", data, 40);
    assert_int_equal(nmp_npy_read_vector(path, &x, &n, &msg), NMP_ERR_FORMAT);
    assert_null(x);
    assert_msg(&msg, path, "at index 3 does not fit float32");
    put_npy(path, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }", data, 40);
    assert_int_equal(nmp_npy_read_vector(path, &x, &n, &msg), NMP_ERR_FORMAT);
    assert_msg(&msg, path, "dtype '<i8', expected float");
    put_npy(path, 1, hdr_f4_2x3, data, 24);
    assert_int_equal(nmp_npy_read_vector(path, &x, &n, &msg), NMP_ERR_FORMAT);
    assert_msg(&msg, path, "2-D array, expected 1-D");
    dir_remove(dir);
}

/* ----------------------------------------------------------------- errors */

static void test_read_errors(void **state)
{
    (void)state;
    char dir[256], path[300];
    dir_new(dir, sizeof dir);
    join(path, sizeof path, dir, "w.npy");
    unsigned char data[128] = { 0 };

    /* data shorter or longer than the shape says */
    put_npy(path, 1, hdr_f4_2x3, data, 20);
    expect_matrix_fail(path, NMP_ERR_FORMAT,
                       "truncated: header says 24 bytes of data, file has 20");
    put_npy(path, 1, hdr_f4_2x3, data, 0);
    expect_matrix_fail(path, NMP_ERR_FORMAT,
                       "truncated: header says 24 bytes of data, file has 0");
    put_npy(path, 1, hdr_f4_2x3, data, 28);
    expect_matrix_fail(path, NMP_ERR_FORMAT, "4 trailing bytes");
    put_npy(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }", data, 24);
    expect_matrix_fail(path, NMP_ERR_FORMAT,
                       "truncated: header says 32 bytes of data, file has 24");

    /* truncated preamble or header */
    PUT_LIT(path, "\x93NUMP");
    expect_matrix_fail(path, NMP_ERR_FORMAT, "truncated header");
    PUT_LIT(path, "\x93NUMPY\x01\x00\x64");
    expect_matrix_fail(path, NMP_ERR_FORMAT, "truncated header");
    PUT_LIT(path, "\x93NUMPY\x01\x00\x64\x00{'descr': '<f4'");
    expect_matrix_fail(path, NMP_ERR_FORMAT,
                       "truncated header: header says 100 bytes, file has 15");
    PUT_LIT(path, "");
    expect_matrix_fail(path, NMP_ERR_FORMAT, "truncated header");

    /* not a .npy, or an unknown version */
    PUT_LIT(path, "PK\x03\x04 this is a zip file, not npy");
    expect_matrix_fail(path, NMP_ERR_FORMAT, "bad magic");
    PUT_LIT(path, "hi");
    expect_matrix_fail(path, NMP_ERR_FORMAT, "bad magic");
    put_npy(path, 4, hdr_f4_2x3, data, 24);
    expect_matrix_fail(path, NMP_ERR_FORMAT, "version 4.0 is not supported");

    /* dimensions */
    put_npy(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 2), }", data, 48);
    expect_matrix_fail(path, NMP_ERR_FORMAT, "3-D array, expected 2-D");
    put_npy(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", data, 24);
    expect_matrix_fail(path, NMP_ERR_FORMAT, "1-D array, expected 2-D");
    put_npy(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", data, 4);
    expect_matrix_fail(path, NMP_ERR_FORMAT, "0-D array, expected 2-D");
    put_npy(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", data, 0);
    expect_matrix_fail(path, NMP_ERR_FORMAT, "empty matrix (0 x 3)");
    put_npy(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0), }", data, 0);
    expect_matrix_fail(path, NMP_ERR_FORMAT, "empty matrix (3 x 0)");
    put_npy(path, 1,
            "{'descr': '<f4', 'fortran_order': False, "
            "'shape': (4294967296, 4294967296), }",
            data, 24);
    expect_matrix_fail(path, NMP_ERR_FORMAT, "overflow");
    put_npy(path, 1,
            "{'descr': '<f4', 'fortran_order': False, "
            "'shape': (3037000499, 3037000499), }",
            data, 24);
    expect_matrix_fail(path, NMP_ERR_FORMAT, "overflow");
    put_npy(path, 1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 1), }",
            data, 24);
    expect_matrix_fail(path, NMP_ERR_FORMAT, "bad dimension");

    /* dtypes */
    put_npy(path, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", data, 24);
    expect_matrix_fail(path, NMP_ERR_FORMAT, "dtype '>f4' (big-endian) is not supported");
    put_npy(path, 1, "{'descr': '|O', 'fortran_order': False, 'shape': (2, 3), }", data, 48);
    expect_matrix_fail(path, NMP_ERR_FORMAT, "dtype '|O' is not supported");
    put_npy(path, 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2, 3), }", data, 48);
    expect_matrix_fail(path, NMP_ERR_FORMAT, "dtype '<c8' is not supported");
    put_npy(path, 1, "{'descr': '<f16', 'fortran_order': False, 'shape': (2, 3), }", data, 96);
    expect_matrix_fail(path, NMP_ERR_FORMAT, "dtype '<f16' is not supported");
    put_npy(path, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", data, 24);
    expect_matrix_fail(path, NMP_ERR_FORMAT, "dtype '<i4', expected float16, float32 or float64");
    put_npy(path, 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 3), }",
            data, 24);
    expect_matrix_fail(path, NMP_ERR_FORMAT, "structured dtype is not supported");

    /* malformed dicts */
    static const char *const bad[] = {
        "'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)",
        "{'descr': '<f4', 'fortran_order': False}",
        "{'descr': '<f4', 'shape': (2, 3)}",
        "{'fortran_order': False, 'shape': (2, 3)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}",
        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",
        "{'descr': '<f4', 'fortran_order': false, 'shape': (2, 3)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} x",
        "{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3)}",
        "{'descr': '<f4, 'fortran_order': False, 'shape': (2, 3)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)",
    };
    for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
        put_npy(path, 1, bad[t], data, 24);
        expect_matrix_fail(path, NMP_ERR_FORMAT, "malformed header");
    }

    /* no such file, a directory */
    join(path, sizeof path, dir, "missing.npy");
    expect_matrix_fail(path, NMP_ERR_IO, "cannot open");
    expect_matrix_fail(dir, NMP_ERR_IO, "not a regular file");
    dir_remove(dir);
}

static void test_write_errors(void **state)
{
    (void)state;
    char dir[256], path[300], sub[300];
    dir_new(dir, sizeof dir);
    const float w[6] = { 1, 2, 3, 4, 5, 6 };
    const nmp_matrix v = { w, 2, 3, 3, 1 };
    const int32_t perm[3] = { 2, 1, 0 };
    nmp_msg msg = { { 0 } };

    /* the folder does not exist */
    join(path, sizeof path, dir, "nope/w.npy");
    assert_int_equal(nmp_npy_write_matrix(path, &v, &msg), NMP_ERR_IO);
    assert_msg(&msg, path, "No such file");
    assert_int_equal(nmp_npy_write_perm(path, perm, 3, &msg), NMP_ERR_IO);
    assert_msg(&msg, path, "cannot create output");

    /* a file where a folder should be */
    join(sub, sizeof sub, dir, "plain");
    put_raw(sub, "x", 1);
    join(path, sizeof path, dir, "plain/w.npy");
    assert_int_equal(nmp_npy_write_matrix(path, &v, &msg), NMP_ERR_IO);
    assert_msg(&msg, path, "cannot create output");
    assert_int_equal(dir_count(dir), 1);

    /* the rename fails (a non-empty folder is in the way): the temporary is removed */
    join(sub, sizeof sub, dir, "taken");
    assert_int_equal(mkdir(sub, 0755), 0);
    join(path, sizeof path, dir, "taken/inner");
    PUT_LIT(path, "x");
    assert_int_equal(nmp_npy_write_matrix(sub, &v, &msg), NMP_ERR_IO);
    assert_msg(&msg, sub, "cannot rename");
    assert_int_equal(dir_count(dir), 2);
    assert_int_equal(dir_count(sub), 1);
    unlink(path);

    /* a folder without write permission (root may write anyway: then nothing to check) */
    join(sub, sizeof sub, dir, "ro");
    assert_int_equal(mkdir(sub, 0555), 0);
    join(path, sizeof path, dir, "ro/w.npy");
    if (access(sub, W_OK) != 0) {
        assert_int_equal(nmp_npy_write_matrix(path, &v, &msg), NMP_ERR_IO);
        assert_msg(&msg, path, "cannot create output");
        assert_int_equal(dir_count(sub), 0);
    }
    chmod(sub, 0755);
    dir_remove(dir);
}

/* ---------------------------------------------------- allocation failures */

/* Fails allocation k for k = 0, 1, ... until the call succeeds; every failing call must say
 * NMP_ERR_NOMEM and leave its outputs empty (the ASan build checks for leaks). */
static void test_alloc_failures(void **state)
{
    (void)state;
    char dir[256], f4[300], f8[300], vec[300], pv[300], out[300];
    dir_new(dir, sizeof dir);
    join(f4, sizeof f4, dir, "f4.npy");
    join(f8, sizeof f8, dir, "f8.npy");
    join(vec, sizeof vec, dir, "v.npy");
    join(pv, sizeof pv, dir, "p.npy");
    join(out, sizeof out, dir, "out.npy");
    unsigned char data[48];
    for (size_t k = 0; k < 6; k++)
        lef32(data, k, (float)k);
    put_npy(f4, 1, hdr_f4_2x3, data, 24);
    for (size_t k = 0; k < 6; k++)
        lef64(data, k, (double)k);
    put_npy(f8, 1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", data, 48);
    put_npy(vec, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }", data, 48);
    for (size_t k = 0; k < 6; k++)
        le64(data, k, 5 - k);
    put_npy(pv, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (6,), }", data, 48);

    for (int which = 0; which < 6; which++) {
        int64_t k = 0;
        for (;; k++) {
            nmp_msg msg = { { 0 } };
            nmp_array a = { 0 };
            float *x = NULL;
            int32_t *p = NULL;
            int64_t n = 0;
            const float w[6] = { 1, 2, 3, 4, 5, 6 };
            const nmp_matrix v = { w, 2, 3, 3, 1 };
            nmp_err e;
            nmp_alloc_fail_after(k);
            switch (which) {
            case 0: e = nmp_npy_read_matrix(f4, &a, &msg); break;
            case 1: e = nmp_npy_read_matrix(f8, &a, &msg); break;
            case 2: e = nmp_npy_read_vector(vec, &x, &n, &msg); break;
            case 3: e = nmp_npy_read_perm(pv, &p, &n, &msg); break;
            case 4: e = nmp_npy_write_matrix(out, &v, &msg); break;
            default: e = nmp_npy_write_perm(out, NULL, 6, &msg); break;
            }
            nmp_alloc_fail_after(-1);
            if (e == NMP_OK) {
                nmp_array_free(&a);
                nmp_free(x);
                nmp_free(p);
                break;
            }
            assert_int_equal(e, NMP_ERR_NOMEM);
            assert_null(a.data);
            assert_null(x);
            assert_null(p);
            assert_int_equal(dir_count(dir), which == 5 ? 5 : 4); /* no temporary left */
            assert_true(k < 100);
        }
        assert_true(k >= 1);
    }
    dir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_matrix),
        cmocka_unit_test(test_write_strided_views),
        cmocka_unit_test(test_roundtrip_perm),
        cmocka_unit_test(test_read_f8_c_order),
        cmocka_unit_test(test_read_f2),
        cmocka_unit_test(test_read_fortran_f4),
        cmocka_unit_test(test_read_header_forms),
        cmocka_unit_test(test_read_perm_dtypes),
        cmocka_unit_test(test_read_vector),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

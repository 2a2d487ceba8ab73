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

/* Element k of little-endian data of size bytes each: the low size bytes of bits. */
static void put_le(unsigned char *b, size_t k, int size, uint64_t bits)
{
    for (int i = 0; i < size; i++)
        b[(size_t)size * k + (size_t)i] = (unsigned char)(bits >> (8 * i));
}

static void lef32(unsigned char *b, size_t k, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    put_le(b, k, 4, u);
}

static void lef64(unsigned char *b, size_t k, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    put_le(b, k, 8, u);
}

/* Equal bits, or both NaN when want is a NaN (the payload a reader keeps is not checked). */
static bool same_bits(float got, float want)
{
    return isnan(want) ? isnan(got) != 0 : memcmp(&got, &want, sizeof got) == 0;
}

/* The message starts with the path and contains reason. */
static void assert_msg(const nmp_msg *msg, const char *path, const char *reason)
{
    if (strncmp(msg->text, path, strlen(path)) != 0 || !strstr(msg->text, reason)) {
        print_error("message \"%s\" lacks \"%s\" or the path\n", msg->text, reason);
        fail();
    }
}

/* Reads path as a rows x cols matrix whose element (j, i) is want[j * cols + i] (same_bits). */
static void expect_matrix(const char *path, int64_t rows, int64_t cols, const float *want)
{
    nmp_array a = { 0 };
    nmp_msg msg = { { 0 } };
    nmp_assert_ok(nmp_npy_read_matrix(path, &a, &msg));
    assert_int_equal(a.rows, rows);
    assert_int_equal(a.cols, cols);
    for (int64_t k = 0; k < rows * cols; k++)
        if (!same_bits(a.data[k], want[k])) {
            print_error("%s: element %lld is %a, expected %a\n", path, (long long)k,
                        (double)a.data[k], (double)want[k]);
            fail();
        }
    nmp_array_free(&a);
    assert_null(a.data);
}

/* Reads path as a vector of n values want[0..n-1] (same_bits). */
static void expect_vector(const char *path, int64_t n, const float *want)
{
    float *x = NULL;
    int64_t len = 0;
    nmp_msg msg = { { 0 } };
    nmp_assert_ok(nmp_npy_read_vector(path, &x, &len, &msg));
    assert_int_equal(len, n);
    for (int64_t k = 0; k < n; k++)
        if (!same_bits(x[k], want[k])) {
            print_error("%s: value %lld is %a, expected %a\n", path, (long long)k,
                        (double)x[k], (double)want[k]);
            fail();
        }
    nmp_free(x);
}

static void expect_matrix_fail(const char *path, nmp_err code, const char *reason)
{
    nmp_array a = { 0 };
    nmp_msg msg = { { 0 } };
    assert_int_equal(nmp_npy_read_matrix(path, &a, &msg), code);
    assert_null(a.data);
    assert_msg(&msg, path, reason);
}

static void expect_vector_fail(const char *path, const char *reason)
{
    float *x = NULL;
    int64_t n = -1;
    nmp_msg msg = { { 0 } };
    assert_int_equal(nmp_npy_read_vector(path, &x, &n, &msg), NMP_ERR_FORMAT);
    assert_null(x);
    assert_int_equal(n, 0);
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

/* A version major.0 file of one C-order array of dtype descr and shape (a Python tuple), with
 * nbytes of data. */
static void put_array(const char *path, int major, const char *descr, const char *shape,
                      const void *data, size_t nbytes)
{
    char header[200];
    snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
             descr, shape);
    put_npy(path, major, header, data, nbytes);
}

static const char hdr_f4_2x3[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
static const char hdr_f8_2x3[] = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";

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
    float want[6], want_t[6];
    for (size_t k = 0; k < 6; k++) {
        lef64(data, k, v[k]);
        want[k] = (float)v[k];
    }
    put_npy(path, 1, hdr_f8_2x3, data, sizeof data);
    expect_matrix(path, 2, 3, want);

    /* Fortran-order float64: column-major on disk */
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < 2; i++)
            want_t[j * 2 + i] = (float)v[i * 3 + j];
    put_npy(path, 1, "{'descr': '<f8', 'fortran_order': True, 'shape': (3, 2), }", data,
            sizeof data);
    expect_matrix(path, 3, 2, want_t);

    /* beyond float32: an error naming the element; inf and NaN pass */
    static const double beyond[] = { 1e300, -3.5e38 };
    lef64(data, 1, INFINITY);
    lef64(data, 2, NAN);
    for (size_t t = 0; t < sizeof beyond / sizeof beyond[0]; t++) {
        lef64(data, 4, beyond[t]);
        put_npy(path, 1, hdr_f8_2x3, data, sizeof data);
        expect_matrix_fail(path, NMP_ERR_FORMAT, "at row 1, col 1 does not fit float32");
    }
    lef64(data, 4, 0.0);
    want[1] = INFINITY;
    want[2] = NAN;
    want[4] = 0.0f;
    put_npy(path, 1, hdr_f8_2x3, data, sizeof data);
    expect_matrix(path, 2, 3, want);
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
    const float want[12] = { 1.0f,
                             -2.0f,
                             0x1p-24f,
                             1023 * 0x1p-24f,
                             0x1p-14f,
                             65504.0f,
                             INFINITY,
                             -INFINITY,
                             -0.0f,
                             0x1.554p-2f,
                             -0x1p-24f,
                             NAN };
    unsigned char data[24];
    for (size_t k = 0; k < 12; k++)
        put_le(data, k, 2, bits[k]);
    put_npy(path, 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (3, 4), }", data,
            sizeof data);
    expect_matrix(path, 3, 4, want);

    /* the same bits as a vector, and in Fortran order as a 4 x 3 matrix */
    put_array(path, 1, "<f2", "(12,)", data, sizeof data);
    expect_vector(path, 12, want);
    float want_t[12];
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < 3; i++)
            want_t[j * 3 + i] = want[i * 4 + j];
    put_npy(path, 1, "{'descr': '<f2', 'fortran_order': True, 'shape': (4, 3), }", data,
            sizeof data);
    expect_matrix(path, 4, 3, want_t);
    dir_remove(dir);
}

/* 0 1 2 3 4 5 as a 2 x 3 float32 matrix: in Fortran order, and in the header spellings NumPy
 * versions and hand-written files use. */
static void test_read_header_forms(void **state)
{
    (void)state;
    char dir[256], path[300];
    dir_new(dir, sizeof dir);
    join(path, sizeof path, dir, "v.npy");

    const float want[6] = { 0, 1, 2, 3, 4, 5 };
    unsigned char data[24], colmajor[24];
    for (size_t k = 0; k < 6; k++) {
        lef32(data, k, want[k]);
        lef32(colmajor, k, want[k % 2 * 3 + k / 2]); /* 0 3 1 4 2 5 */
    }
    put_npy(path, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", colmajor,
            sizeof colmajor);
    expect_matrix(path, 2, 3, want);
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
        expect_matrix(path, 2, 3, want);
    }
    dir_remove(dir);
}

/* One 1-D integer file read as a permutation: dtype, shape, the elements' bits (the low `size`
 * bytes of each), then the values read or the reason the file is refused. */
static const struct int_case {
    const char *descr, *shape;
    int size, n;
    uint64_t bits[4];
    int32_t want[4];
    const char *reason;
} int_cases[] = {
    { "<i4", "(4,)", 4, 4, { 2, 0, 3, 1 }, { 2, 0, 3, 1 }, NULL },
    { "<i8", "(4,)", 8, 4, { 2, 0, 3, 1 }, { 2, 0, 3, 1 }, NULL },
    { "<u8", "(4,)", 8, 4, { 2, 0, 3, 1 }, { 2, 0, 3, 1 }, NULL },
    /* narrow types, with sign extension; not validated as a bijection */
    { "|i1", "(4,)", 1, 4, { 0xff, 0x00, 0x7f, 0x80 }, { -1, 0, 127, -128 }, NULL },
    { "|u1", "(4,)", 1, 4, { 0xff, 0x00, 0x7f, 0x80 }, { 255, 0, 127, 128 }, NULL },
    { "<i2", "(2,)", 2, 2, { 0xfffe, 0x7fff }, { -2, 32767 }, NULL },
    { "<u2", "(2,)", 2, 2, { 0xfffe, 0x7fff }, { 65534, 32767 }, NULL },
    { "<i4", "(2,)", 4, 2, { 0x7fffffff, 0x80000000 }, { INT32_MAX, INT32_MIN }, NULL },
    { "<i8", "(2,)", 8, 2, { 1, UINT64_MAX }, { 1, -1 }, NULL },
    /* out of int32 range */
    { "<u4", "(2,)", 4, 2, { 0x7fffffff, 0x80000000 }, { 0 },
      "value 2147483648 at index 1 does not fit int32" },
    { "<u8", "(2,)", 8, 2, { 1, UINT64_MAX }, { 0 },
      "value 18446744073709551615 at index 1 does not fit int32" },
    { "<i8", "(2,)", 8, 2, { (uint64_t)INT32_MIN - 1, UINT64_MAX }, { 0 },
      "value -2147483649 at index 0 does not fit int32" },
    /* wrong kinds and shapes */
    { "<f4", "(2,)", 4, 2, { 0 }, { 0 }, "dtype '<f4', expected an integer type" },
    { "<i4", "(2, 1)", 4, 2, { 0 }, { 0 }, "2-D array, expected 1-D" },
    { "<i4", "(0,)", 4, 0, { 0 }, { 0 }, "empty array" },
    { ">i4", "(2,)", 4, 2, { 0 }, { 0 }, "dtype '>i4' (big-endian) is not supported" },
    { "|b1", "(2,)", 1, 2, { 0 }, { 0 }, "dtype '|b1' is not supported" },
};

static void test_read_perm_dtypes(void **state)
{
    (void)state;
    char dir[256], path[300];
    dir_new(dir, sizeof dir);
    join(path, sizeof path, dir, "p.npy");
    for (size_t t = 0; t < sizeof int_cases / sizeof int_cases[0]; t++) {
        const struct int_case *c = &int_cases[t];
        unsigned char data[32];
        for (int k = 0; k < c->n; k++)
            put_le(data, (size_t)k, c->size, c->bits[k]);
        put_array(path, 1, c->descr, c->shape, data, (size_t)(c->n * c->size));
        if (c->reason) {
            expect_perm_fail(path, c->reason);
            continue;
        }
        int32_t *p = NULL;
        int64_t n = 0;
        nmp_msg msg = { { 0 } };
        nmp_assert_ok(nmp_npy_read_perm(path, &p, &n, &msg));
        assert_int_equal(n, c->n);
        assert_memory_equal(p, c->want, (size_t)c->n * sizeof *p);
        nmp_free(p);
    }
    dir_remove(dir);
}

/* One 1-D file read as a vector: format version, dtype, shape, its values (written as float32
 * or float64 by size), then the reason the file is refused (NULL: read back as float32). */
static const struct float_case {
    int major;
    const char *descr, *shape;
    int size, n;
    double v[6];
    const char *reason;
} float_cases[] = {
    { 1, "<f4", "(5,)", 4, 5, { 0, 0.25, 0.5, 0.75, 1.0 }, NULL },
    { 2, "<f8", "(5,)", 8, 5, { 0, 0.1, 0.2, 0.3, 0.4 }, NULL },
    { 1, "<f8", "(5,)", 8, 5, { 0, 0.1, 0.2, 1e39, 0.4 }, "at index 3 does not fit float32" },
    { 1, "<i8", "(5,)", 8, 5, { 0 }, "dtype '<i8', expected float" },
    { 1, "<f4", "(2, 3)", 4, 6, { 0 }, "2-D array, expected 1-D" },
    { 1, "<f4", "(0,)", 4, 0, { 0 }, "empty array" },
};

static void test_read_vector(void **state)
{
    (void)state;
    char dir[256], path[300];
    dir_new(dir, sizeof dir);
    join(path, sizeof path, dir, "x.npy");
    for (size_t t = 0; t < sizeof float_cases / sizeof float_cases[0]; t++) {
        const struct float_case *c = &float_cases[t];
        unsigned char data[48];
        float want[6];
        for (int k = 0; k < c->n; k++) {
            if (c->size == 4)
                lef32(data, (size_t)k, (float)c->v[k]);
            else
                lef64(data, (size_t)k, c->v[k]);
            want[k] = (float)c->v[k];
        }
        put_array(path, c->major, c->descr, c->shape, data, (size_t)(c->n * c->size));
        if (c->reason)
            expect_vector_fail(path, c->reason);
        else
            expect_vector(path, c->n, want);
    }
    dir_remove(dir);
}

/* ----------------------------------------------------------------- errors */

/* A file that nmp_npy_read_matrix refuses: version, header, bytes of data, the reason. */
static const struct bad_file {
    int major;
    const char *header;
    size_t nbytes;
    const char *reason;
} bad_files[] = {
    /* data shorter or longer than the shape says */
    { 1, hdr_f4_2x3, 20, "truncated: header says 24 bytes of data, file has 20" },
    { 1, hdr_f4_2x3, 0, "truncated: header says 24 bytes of data, file has 0" },
    { 1, hdr_f4_2x3, 28, "4 trailing bytes" },
    { 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }", 24,
      "truncated: header says 32 bytes of data, file has 24" },
    /* an unknown version */
    { 4, hdr_f4_2x3, 24, "version 4.0 is not supported" },
    /* dimensions */
    { 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 2), }", 48,
      "3-D array, expected 2-D" },
    { 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 24,
      "1-D array, expected 2-D" },
    { 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, "0-D array, expected 2-D" },
    { 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", 0, "empty matrix (0 x 3)" },
    { 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0), }", 0, "empty matrix (3 x 0)" },
    { 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 24,
      "overflow" },
    { 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3037000499, 3037000499), }", 24,
      "overflow" },
    { 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 1), }", 24,
      "bad dimension" },
    /* dtypes */
    { 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24,
      "dtype '>f4' (big-endian) is not supported" },
    { 1, "{'descr': '|O', 'fortran_order': False, 'shape': (2, 3), }", 48,
      "dtype '|O' is not supported" },
    { 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2, 3), }", 48,
      "dtype '<c8' is not supported" },
    { 1, "{'descr': '<f16', 'fortran_order': False, 'shape': (2, 3), }", 96,
      "dtype '<f16' is not supported" },
    { 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", 24,
      "dtype '<i4', expected float16, float32 or float64" },
    { 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 3), }", 24,
      "structured dtype is not supported" },
};

/* Files too short for a preamble and header, or no .npy at all: bytes, then the reason. */
#define LIT(s) s, sizeof(s) - 1
static const struct bad_bytes {
    const char *bytes;
    size_t len;
    const char *reason;
} bad_bytes[] = {
    { LIT("\x93NUMP"), "truncated header" },
    { LIT("\x93NUMPY\x01\x00\x64"), "truncated header" },
    { LIT("\x93NUMPY\x01\x00\x64\x00{'descr': '<f4'"),
      "truncated header: header says 100 bytes, file has 15" },
    { LIT(""), "truncated header" },
    { LIT("PK\x03\x04 this is a zip file, not npy"), "bad magic" },
    { LIT("hi"), "bad magic" },
};
#undef LIT

static void test_read_errors(void **state)
{
    (void)state;
    char dir[256], path[300];
    dir_new(dir, sizeof dir);
    join(path, sizeof path, dir, "w.npy");
    unsigned char data[128] = { 0 };

    for (size_t t = 0; t < sizeof bad_files / sizeof bad_files[0]; t++) {
        put_npy(path, bad_files[t].major, bad_files[t].header, data, bad_files[t].nbytes);
        expect_matrix_fail(path, NMP_ERR_FORMAT, bad_files[t].reason);
    }
    for (size_t t = 0; t < sizeof bad_bytes / sizeof bad_bytes[0]; t++) {
        put_raw(path, bad_bytes[t].bytes, bad_bytes[t].len);
        expect_matrix_fail(path, NMP_ERR_FORMAT, bad_bytes[t].reason);
    }

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
        put_le(data, k, 8, 5 - k);
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
        cmocka_unit_test(test_read_header_forms),
        cmocka_unit_test(test_read_perm_dtypes),
        cmocka_unit_test(test_read_vector),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

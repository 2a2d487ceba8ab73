/* test_nmp_safetensors.c: the safetensors reader on hand-made files: a good file read back, and
 * every header check refusing a file that breaks only that check */
#include "nmp_test.h"

#include <unistd.h>

/* A scratch folder for this run and the files made in it, removed at the end. */
static char dir[64];
static char made[64][128];
static int nmade;

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/nmp_st_test_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    for (int k = 0; k < nmade; k++)
        unlink(made[k]);
    return rmdir(dir);
}

/* <dir>/name, remembered for teardown. */
static const char *scratch(const char *name)
{
    assert_true(nmade < 64);
    snprintf(made[nmade], sizeof made[nmade], "%s/%s", dir, name);
    return made[nmade++];
}

/* Writes <dir>/name: the 8-byte little-endian length of header, header, then data_size bytes of
 * data (0, 1, 2, ... when data is NULL). Returns the path (static storage). */
static const char *put(const char *name, const char *header, const void *data, size_t data_size)
{
    const char *path = scratch(name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    const uint64_t hlen = strlen(header);
    unsigned char len[8];
    for (int b = 0; b < 8; b++)
        len[b] = (unsigned char)(hlen >> (8 * b));
    assert_int_equal(fwrite(len, 1, 8, f), 8);
    assert_int_equal(fwrite(header, 1, hlen, f), hlen);
    for (size_t k = 0; k < data_size; k++) {
        const unsigned char c = data ? ((const unsigned char *)data)[k] : (unsigned char)k;
        assert_int_equal(fputc(c, f), c);
    }
    assert_int_equal(fclose(f), 0);
    return path;
}

/* Opening must fail with NMP_ERR_FORMAT and a reason that contains `why`. */
static void refused(const char *name, const char *header, size_t data_size, const char *why)
{
    nmp_st *st = NULL;
    nmp_msg msg = { { 0 } };
    const nmp_err e = nmp_st_open(put(name, header, NULL, data_size), &st, &msg);
    if (e != NMP_ERR_FORMAT || st != NULL || !strstr(msg.text, why)) {
        print_error("%s: got %s, '%s'; expected a format error naming '%s'\n", name,
                    nmp_err_str(e), msg.text, why);
        nmp_st_close(st);
        fail();
    }
}

/* Two tensors (F32 2x3 and F16 [2]) and metadata: every field read back, values converted. */
static void good_file(void **state)
{
    (void)state;
    float a[6] = { 1.5f, -2, 0.25f, 3, 4, -0.5f };
    unsigned char data[24 + 4];
    memcpy(data, a, sizeof a); /* the test machine is little-endian, as the format */
    const uint16_t h[2] = { 0x3c00, 0xc000 }; /* 1.0, -2.0 in IEEE half */
    memcpy(data + 24, h, sizeof h);
    const char *path = put("good.safetensors",
                           "{\"__metadata__\": {\"format\": \"pt\"}, "
                           "\"b\": {\"dtype\": \"F16\", \"shape\": [2], "
                           "\"data_offsets\": [24, 28]}, "
                           "\"a\": {\"dtype\": \"F32\", \"shape\": [2, 3], "
                           "\"data_offsets\": [0, 24]}}",
                           data, sizeof data);
    nmp_st *st = NULL;
    nmp_msg msg = { { 0 } };
    nmp_assert_ok(nmp_st_open(path, &st, &msg));
    assert_int_equal(nmp_st_count(st), 2);
    assert_int_equal(nmp_st_metadata_count(st), 1);
    const nmp_st_tensor *t = nmp_st_tensor_at(st, 0); /* offset order */
    assert_string_equal(t->name, "a");
    assert_string_equal(t->dtype, "F32");
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->numel, 6);
    assert_int_equal(t->end - t->begin, 24);
    float out[6];
    nmp_assert_ok(nmp_st_read_f32(st, t, out, NULL));
    assert_memory_equal(out, a, sizeof a);
    t = nmp_st_find(st, "b");
    assert_non_null(t);
    assert_int_equal(t->numel, 2);
    nmp_assert_ok(nmp_st_read_f32(st, t, out, NULL));
    assert_true(out[0] == 1.0f && out[1] == -2.0f);
    assert_null(nmp_st_find(st, "c"));
    nmp_st_close(st);
    nmp_st_close(NULL);
}

/* The byte size of a tensor must be its shape product times its dtype size. Each file below is
 * consistent in every other way (offsets contiguous from 0, covering the whole buffer), so only
 * this check can refuse it. */
static void size_must_match_shape_and_dtype(void **state)
{
    (void)state;
    refused("short.safetensors",
            "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 20]}}", 20,
            "need 24 bytes");
    refused("long.safetensors",
            "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 28]}}", 28,
            "need 24 bytes");
    /* the right size for F32, not for the F16 it claims */
    refused("dtype.safetensors",
            "{\"w\": {\"dtype\": \"F16\", \"shape\": [3], \"data_offsets\": [0, 12]}}", 12,
            "need 6 bytes");
    /* the second of two tensors: the first is right */
    refused("second.safetensors",
            "{\"a\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [0, 4]}, "
            "\"b\": {\"dtype\": \"BF16\", \"shape\": [2, 2], \"data_offsets\": [4, 10]}}", 10,
            "need 8 bytes");
    /* an empty tensor takes no bytes */
    refused("empty.safetensors",
            "{\"w\": {\"dtype\": \"F32\", \"shape\": [0, 5], \"data_offsets\": [0, 4]}}", 4,
            "need 0 bytes");
    /* a product that overflows 64 bits must not wrap around to the given size */
    refused("wrap.safetensors",
            "{\"w\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904, 1], "
            "\"data_offsets\": [0, 0]}}", 0, "need");
    refused("overflow.safetensors",
            "{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 2], "
            "\"data_offsets\": [0, 8]}}", 8, "overflows");
}

/* The other header checks, each on a file that breaks only it. */
static void other_header_checks(void **state)
{
    (void)state;
    refused("hole.safetensors",
            "{\"a\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [0, 4]}, "
            "\"b\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [6, 10]}}", 10, "hole");
    refused("overlap.safetensors",
            "{\"a\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [0, 4]}, "
            "\"b\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [2, 6]}}", 6, "overlap");
    refused("trailing.safetensors",
            "{\"a\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [0, 4]}}", 5,
            "trailing bytes");
    refused("truncated.safetensors",
            "{\"a\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [0, 4]}}", 3,
            "truncated");
    refused("dtype_unknown.safetensors",
            "{\"a\": {\"dtype\": \"F33\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
            "unknown dtype");
    refused("negative.safetensors",
            "{\"a\": {\"dtype\": \"U8\", \"shape\": [-1], \"data_offsets\": [0, 0]}}", 0,
            "negative");
    refused("offsets.safetensors",
            "{\"a\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [4, 0]}}", 4,
            "bad data_offsets");
    refused("fields.safetensors", "{\"a\": {\"dtype\": \"U8\", \"shape\": [4]}}", 4,
            "data_offsets");
    refused("duplicate.safetensors",
            "{\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}, "
            "\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [1, 2]}}", 2,
            "bad JSON header");
    refused("meta.safetensors", "{\"__metadata__\": {\"n\": 3}}", 0, "not a string");
    refused("json.safetensors", "[1, 2]", 0, "not an object");
    /* a header length beyond the file */
    nmp_st *st = NULL;
    nmp_msg msg = { { 0 } };
    const char *path = put("len.safetensors", "{}", NULL, 0);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fputc(0x40, f), 0x40); /* length 64, the file holds 2 bytes of header */
    assert_int_equal(fclose(f), 0);
    assert_int_equal(nmp_st_open(path, &st, &msg), NMP_ERR_FORMAT);
    assert_null(st);
    assert_non_null(strstr(msg.text, "exceeds"));
    assert_int_equal(nmp_st_open(scratch("none.safetensors"), &st, NULL), NMP_ERR_IO);
}

/* A plain copy through nmp_st_write opens again with the same tensors and bytes. */
static void copy_round_trip(void **state)
{
    (void)state;
    const char *path = put("src.safetensors",
                           "{\"x\": {\"dtype\": \"I8\", \"shape\": [3], \"data_offsets\": [0, 3]}, "
                           "\"y\": {\"dtype\": \"F64\", \"shape\": [1, 1], "
                           "\"data_offsets\": [3, 11]}}",
                           NULL, 11);
    nmp_st *in = NULL, *out = NULL;
    nmp_assert_ok(nmp_st_open(path, &in, NULL));
    const char *copy = scratch("copy.safetensors");
    nmp_assert_ok(nmp_st_write(in, copy, NULL, NULL, NULL));
    nmp_assert_ok(nmp_st_open(copy, &out, NULL));
    assert_int_equal(nmp_st_count(out), 2);
    for (int64_t k = 0; k < 2; k++) {
        const nmp_st_tensor *a = nmp_st_tensor_at(in, k), *b = nmp_st_tensor_at(out, k);
        assert_string_equal(a->name, b->name);
        assert_string_equal(a->dtype, b->dtype);
        assert_int_equal(a->end - a->begin, b->end - b->begin);
        assert_memory_equal(nmp_st_bytes(in, a), nmp_st_bytes(out, b), a->end - a->begin);
    }
    nmp_st_close(out);
    nmp_st_close(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_file),
        cmocka_unit_test(size_must_match_shape_and_dtype),
        cmocka_unit_test(other_header_checks),
        cmocka_unit_test(copy_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

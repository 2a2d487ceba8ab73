/* nmp_npy.c: NumPy .npy files (format 1.0, 2.0, 3.0): matrices, vectors, permutations */
#include "nmp_io.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

/* A .npy file is
 *     "\x93NUMPY" major minor hlen header data
 * where hlen is a little-endian uint16 (version 1.0) or uint32 (2.0, 3.0) and header is the
 * repr of a Python dict, e.g. "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }",
 * padded with spaces and a newline. The data follow at 10 + hlen (or 12 + hlen) and hold
 * prod(shape) elements, nothing more. Only plain numeric dtypes are read here; everything is
 * decoded byte by byte (little-endian), so the code does not depend on the host's byte order. */

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_MAX_DIMS 32
#define NPY_MAX_HEADER (1u << 20) /* far beyond any header of a plain dtype */
#define NPY_ALIGN 64              /* data offset of written files, as NumPy does */
#define NPY_CHUNK 65536           /* bytes encoded per fwrite when writing */
#define NPY_FLOATS "float16, float32 or float64" /* the dtypes read as float32 */

/* What the header says. kind is 'f', 'i' or 'u'; size is the item size in bytes. */
typedef struct npy_header {
    char descr[32];
    char kind;
    int size;
    bool fortran;
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    int64_t count;  /* prod(shape) */
    size_t nbytes;  /* count * size */
} npy_header;

/* ------------------------------------------------------------ byte decoding */

static uint16_t load_u16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static uint32_t load_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t load_u64(const unsigned char *p)
{
    return (uint64_t)load_u32(p) | (uint64_t)load_u32(p + 4) << 32;
}

/* The low size bytes of v, little-endian. */
static void store_le(unsigned char *p, uint64_t v, int size)
{
    for (int b = 0; b < size; b++)
        p[b] = (unsigned char)(v >> (8 * b));
}

/* IEEE binary16 -> binary32, exact: sign, 5-bit exponent (bias 15), 10-bit mantissa.
 * Normals rebias the exponent by 127 - 15 = 112; subnormals (exponent 0) are m * 2^-24 and are
 * normalised by shifting the mantissa until its leading bit reaches bit 10; exponent 31 is inf
 * (mantissa 0) or NaN (payload kept). */
static float half_to_float(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | man << 13;
    } else if (exp != 0) {
        bits = sign | (exp + 112) << 23 | man << 13;
    } else if (man == 0) {
        bits = sign;
    } else {
        uint32_t shift = 0;
        while (!(man & 0x400u)) {
            man <<= 1;
            shift++;
        }
        bits = sign | (113 - shift) << 23 | (man & 0x3ffu) << 13;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Element k of float16 or float32 data, bit-exact (NaN payloads included). */
static float load_narrow(const unsigned char *raw, int size, int64_t k)
{
    const unsigned char *p = raw + (size_t)k * (size_t)size;
    if (size == 2)
        return half_to_float(load_u16(p));
    const uint32_t bits = load_u32(p);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static double load_f64(const unsigned char *raw, int64_t k)
{
    const uint64_t bits = load_u64(raw + (size_t)k * 8);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* *out = float(element k) of float16/32/64 data; false when a finite float64 lies beyond the
 * float32 range (rather than turning it into an infinity). */
static bool load_float(const unsigned char *raw, int size, int64_t k, float *out, double *wide)
{
    if (size != 8) {
        *out = load_narrow(raw, size, k);
        return true;
    }
    *wide = load_f64(raw, k);
    *out = (float)*wide;
    return !(isfinite(*wide) && fabs(*wide) > FLT_MAX);
}

/* --------------------------------------------------------- header parsing */

/* A cursor over the header text: a recursive-descent reader of the one dict literal that
 * np.save writes, in any key order, with any spacing and an optional trailing comma. */
typedef struct cursor {
    const char *s;
    size_t pos, len;
} cursor;

static void skip_space(cursor *c)
{
    while (c->pos < c->len && (c->s[c->pos] == ' ' || c->s[c->pos] == '\t' ||
                               c->s[c->pos] == '\n' || c->s[c->pos] == '\r'))
        c->pos++;
}

/* Skips spaces; true (and consumes it) if the next character is ch. */
static bool accept(cursor *c, char ch)
{
    skip_space(c);
    if (c->pos < c->len && c->s[c->pos] == ch) {
        c->pos++;
        return true;
    }
    return false;
}

static bool peek(cursor *c, char ch)
{
    skip_space(c);
    return c->pos < c->len && c->s[c->pos] == ch;
}

/* A quoted string without escapes into buf (cap bytes with the NUL). */
static bool parse_string(cursor *c, char *buf, size_t cap)
{
    skip_space(c);
    if (c->pos >= c->len || (c->s[c->pos] != '\'' && c->s[c->pos] != '"'))
        return false;
    const char quote = c->s[c->pos++];
    size_t n = 0;
    while (c->pos < c->len && c->s[c->pos] != quote) {
        if (c->s[c->pos] == '\\' || n + 1 >= cap)
            return false;
        buf[n++] = c->s[c->pos++];
    }
    if (c->pos >= c->len)
        return false;
    c->pos++;
    buf[n] = '\0';
    return true;
}

static bool parse_word(cursor *c, const char *word)
{
    skip_space(c);
    const size_t n = strlen(word);
    if (c->len - c->pos < n || memcmp(c->s + c->pos, word, n) != 0)
        return false;
    c->pos += n;
    return true;
}

/* A non-negative decimal integer, optionally with Python 2's 'L' suffix. */
static bool parse_dim(cursor *c, int64_t *v)
{
    skip_space(c);
    if (c->pos >= c->len || c->s[c->pos] < '0' || c->s[c->pos] > '9')
        return false;
    int64_t x = 0;
    while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9') {
        const int d = c->s[c->pos++] - '0';
        if (x > (INT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    if (c->pos < c->len && (c->s[c->pos] == 'L' || c->s[c->pos] == 'l'))
        c->pos++;
    *v = x;
    return true;
}

/* "(d0, d1, ...)" with an optional trailing comma; "()" is 0-D. */
static nmp_err parse_shape(cursor *c, npy_header *h, const char *path, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    if (!accept(c, '(')) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: malformed header: 'shape' is not a tuple", path);
        goto out;
    }
    h->ndim = 0;
    while (!accept(c, ')')) {
        if (h->ndim == NPY_MAX_DIMS) {
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: more than %d dimensions", path, NPY_MAX_DIMS);
            goto out;
        }
        if (!parse_dim(c, &h->shape[h->ndim])) {
            e = nmp_fail(msg, NMP_ERR_FORMAT,
                         "%s: malformed header: bad dimension in 'shape' at byte %zu", path,
                         c->pos);
            goto out;
        }
        h->ndim++;
        if (!accept(c, ',') && !peek(c, ')')) {
            e = nmp_fail(msg, NMP_ERR_FORMAT,
                         "%s: malformed header: expected ',' or ')' in 'shape' at byte %zu", path,
                         c->pos);
            goto out;
        }
    }
out:
    return e;
}

/* Splits a descr such as '<f4' into byte order, kind and size and refuses what is not read
 * here. '|' and '=' mean the host's order, which is checked at run time. */
static nmp_err parse_descr(const char *descr, npy_header *h, const char *path, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    const bool host_little = first == 1;

    const char *p = descr;
    char order = '=';
    if (*p == '<' || *p == '>' || *p == '|' || *p == '=')
        order = *p++;
    const char kind = *p ? *p++ : '\0';
    int size = 0;
    if (*p >= '1' && *p <= '9' && p[1] == '\0')
        size = *p - '0';
    const bool known = (kind == 'f' && (size == 2 || size == 4 || size == 8)) ||
                       ((kind == 'i' || kind == 'u') &&
                        (size == 1 || size == 2 || size == 4 || size == 8));
    if (!known) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: dtype '%s' is not supported", path, descr);
        goto out;
    }
    const bool little = order == '<' || ((order == '=' || order == '|') && host_little);
    if (size > 1 && !little) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: dtype '%s' (big-endian) is not supported", path,
                     descr);
        goto out;
    }
    h->kind = kind;
    h->size = size;
out:
    return e;
}

/* Parses the dict: exactly the keys 'descr', 'fortran_order' and 'shape', each once. */
static nmp_err parse_header(const char *text, size_t len, npy_header *h, const char *path,
                            nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    cursor c = { text, 0, len };
    bool seen_descr = false, seen_order = false, seen_shape = false;
    char key[32];

    if (!accept(&c, '{')) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: malformed header: expected '{'", path);
        goto out;
    }
    while (!accept(&c, '}')) {
        if (!parse_string(&c, key, sizeof key) || !accept(&c, ':')) {
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: malformed header: expected a key at byte %zu",
                         path, c.pos);
            goto out;
        }
        if (strcmp(key, "descr") == 0 && !seen_descr) {
            seen_descr = true;
            if (peek(&c, '[')) {
                e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: structured dtype is not supported", path);
                goto out;
            }
            if (!parse_string(&c, h->descr, sizeof h->descr)) {
                e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: malformed header: bad 'descr' at byte %zu",
                             path, c.pos);
                goto out;
            }
        } else if (strcmp(key, "fortran_order") == 0 && !seen_order) {
            seen_order = true;
            if (parse_word(&c, "True")) {
                h->fortran = true;
            } else if (parse_word(&c, "False")) {
                h->fortran = false;
            } else {
                e = nmp_fail(msg, NMP_ERR_FORMAT,
                             "%s: malformed header: 'fortran_order' is not True or False", path);
                goto out;
            }
        } else if (strcmp(key, "shape") == 0 && !seen_shape) {
            seen_shape = true;
            NMP_TRY(e, parse_shape(&c, h, path, msg));
        } else {
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: malformed header: unexpected key '%s'", path,
                         key);
            goto out;
        }
        if (!accept(&c, ',') && !peek(&c, '}')) {
            e = nmp_fail(msg, NMP_ERR_FORMAT,
                         "%s: malformed header: expected ',' or '}' at byte %zu", path, c.pos);
            goto out;
        }
    }
    skip_space(&c);
    if (c.pos != c.len) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: malformed header: text after the dict at byte %zu",
                     path, c.pos);
        goto out;
    }
    if (!seen_descr || !seen_order || !seen_shape) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: malformed header: no '%s'", path,
                     !seen_descr ? "descr" : !seen_order ? "fortran_order" : "shape");
        goto out;
    }
    NMP_TRY(e, parse_descr(h->descr, h, path, msg));
out:
    return e;
}

/* ------------------------------------------------------------------ reading */

/* Opens path, reads and checks the preamble and header, and checks that the file holds exactly
 * prod(shape) * itemsize bytes of data. On NMP_OK *f is positioned at the data. */
static nmp_err npy_open(const char *path, FILE **f, npy_header *h, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    char *text = NULL;
    unsigned char pre[12];
    struct stat st;

    memset(h, 0, sizeof *h);
    *f = fopen(path, "rb");
    if (!*f) {
        e = nmp_fail(msg, NMP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fileno(*f), &st) != 0) {
        e = nmp_fail(msg, NMP_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        e = nmp_fail(msg, NMP_ERR_IO, "%s: not a regular file", path);
        goto out;
    }
    const int64_t file_size = (int64_t)st.st_size;

    const size_t got = fread(pre, 1, 8, *f);
    if (memcmp(pre, NPY_MAGIC, NMP_MIN(got, (size_t)NPY_MAGIC_LEN)) != 0) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: not a .npy file (bad magic)", path);
        goto out;
    }
    if (got != 8) {
        e = nmp_fail(msg, ferror(*f) ? NMP_ERR_IO : NMP_ERR_FORMAT,
                     "%s: truncated header: file has %" PRId64 " bytes", path, file_size);
        goto out;
    }
    const int major = pre[6], minor = pre[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: .npy format version %d.%d is not supported", path,
                     major, minor);
        goto out;
    }
    const size_t len_size = major == 1 ? 2 : 4;
    if (fread(pre + 8, 1, len_size, *f) != len_size) {
        e = nmp_fail(msg, ferror(*f) ? NMP_ERR_IO : NMP_ERR_FORMAT,
                     "%s: truncated header: file has %" PRId64 " bytes", path, file_size);
        goto out;
    }
    const uint32_t hlen = major == 1 ? load_u16(pre + 8) : load_u32(pre + 8);
    const int64_t data_offset = 8 + (int64_t)len_size + (int64_t)hlen;
    if (data_offset > file_size) {
        e = nmp_fail(msg, NMP_ERR_FORMAT,
                     "%s: truncated header: header says %" PRIu32 " bytes, file has %" PRId64,
                     path, hlen, file_size - 8 - (int64_t)len_size);
        goto out;
    }
    if (hlen > NPY_MAX_HEADER) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: header of %" PRIu32 " bytes is too long", path,
                     hlen);
        goto out;
    }
    text = nmp_malloc((size_t)hlen + 1);
    if (!text) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    if (fread(text, 1, hlen, *f) != hlen) {
        e = nmp_fail(msg, NMP_ERR_IO, "%s: cannot read header: %s", path,
                     ferror(*f) ? strerror(errno) : "file shrank");
        goto out;
    }
    text[hlen] = '\0';
    NMP_TRY(e, parse_header(text, hlen, h, path, msg));

    /* count = prod(shape), nbytes = count * size, both overflow-checked */
    int64_t count = 1;
    for (int d = 0; d < h->ndim; d++) {
        if (h->shape[d] != 0 && count > INT64_MAX / h->shape[d]) {
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: shape overflows 64 bits", path);
            goto out;
        }
        count *= h->shape[d];
    }
    if (count > INT64_MAX / h->size || (uint64_t)count * (uint64_t)h->size > SIZE_MAX) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: data size overflows", path);
        goto out;
    }
    h->count = count;
    h->nbytes = (size_t)count * (size_t)h->size;
    const int64_t have = file_size - data_offset;
    if ((int64_t)h->nbytes > have) {
        e = nmp_fail(msg, NMP_ERR_FORMAT,
                     "%s: truncated: header says %zu bytes of data, file has %" PRId64, path,
                     h->nbytes, have);
        goto out;
    }
    if ((int64_t)h->nbytes < have) {
        e = nmp_fail(msg, NMP_ERR_FORMAT,
                     "%s: %" PRId64 " trailing bytes after %zu bytes of data", path,
                     have - (int64_t)h->nbytes, h->nbytes);
        goto out;
    }
out:
    nmp_free(text);
    if (e != NMP_OK && *f) {
        fclose(*f);
        *f = NULL;
    }
    return e;
}

/* npy_open, then the dtype kind must be one of kinds ("expected <expect>" otherwise) and the
 * array ndim-D; on failure *f is closed. */
static nmp_err npy_open_as(const char *path, const char *kinds, const char *expect, int ndim,
                           FILE **f, npy_header *h, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    NMP_TRY(e, npy_open(path, f, h, msg));
    if (!strchr(kinds, h->kind))
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: dtype '%s', expected %s", path, h->descr, expect);
    else if (h->ndim != ndim)
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %d-D array, expected %d-D", path, h->ndim, ndim);
    if (e != NMP_OK) {
        fclose(*f);
        *f = NULL;
    }
out:
    return e;
}

/* All nbytes of data in one fread. */
static nmp_err read_data(FILE *f, void *buf, size_t nbytes, const char *path, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    if (fread(buf, 1, nbytes, f) != nbytes)
        e = nmp_fail(msg, NMP_ERR_IO, "%s: cannot read data: %s", path,
                     ferror(f) ? strerror(errno) : "file shrank");
    return e;
}

/* Element k of a 1-D array (h, raw) as the caller's type, into slot k of out; NMP_ERR_FORMAT
 * naming the element when its value does not fit that type. */
typedef nmp_err (*decode_fn)(const npy_header *h, const unsigned char *raw, int64_t k, void *out,
                             const char *path, nmp_msg *msg);

/* out[k] = float(v[k]) of float16/32/64 data. */
static nmp_err decode_float(const npy_header *h, const unsigned char *raw, int64_t k, void *out,
                            const char *path, nmp_msg *msg)
{
    double v = 0;
    if (!load_float(raw, h->size, k, (float *)out + k, &v))
        return nmp_fail(msg, NMP_ERR_FORMAT,
                        "%s: value %g at index %" PRId64 " does not fit float32", path, v, k);
    return NMP_OK;
}

/* out[k] = int32(v[k]) of signed or unsigned integer data of 1, 2, 4 or 8 bytes. */
static nmp_err decode_int32(const npy_header *h, const unsigned char *raw, int64_t k, void *out,
                            const char *path, nmp_msg *msg)
{
    const unsigned char *p = raw + (size_t)k * (size_t)h->size;
    uint64_t u = h->size == 1 ? p[0] : h->size == 2 ? load_u16(p)
                                     : h->size == 4 ? load_u32(p) : load_u64(p);
    bool fits;
    int64_t v;
    if (h->kind == 'u') {
        fits = u <= INT32_MAX;
        v = fits ? (int64_t)u : 0;
    } else {
        /* sign-extend from size bytes to 64 bits */
        const int bits = 8 * h->size;
        if (bits < 64 && (u >> (bits - 1) & 1))
            u |= ~(uint64_t)0 << bits;
        v = u >> 63 ? -(int64_t)(~u) - 1 : (int64_t)u;
        fits = v >= INT32_MIN && v <= INT32_MAX;
    }
    if (fits) {
        ((int32_t *)out)[k] = (int32_t)v;
        return NMP_OK;
    }
    if (h->kind == 'u')
        return nmp_fail(msg, NMP_ERR_FORMAT,
                        "%s: value %" PRIu64 " at index %" PRId64 " does not fit int32", path,
                        u, k);
    return nmp_fail(msg, NMP_ERR_FORMAT,
                    "%s: value %" PRId64 " at index %" PRId64 " does not fit int32", path, v, k);
}

/* *out = the values of a non-empty 1-D array whose dtype kind is one of kinds ("expected
 * <expect>" otherwise), each decoded into esize bytes (release with nmp_free), *len = their
 * count; who names the public entry in the NULL-argument message. */
static nmp_err read_1d(const char *path, const char *who, const char *kinds, const char *expect,
                       size_t esize, decode_fn decode, void **out, int64_t *len, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    FILE *f = NULL;
    unsigned char *raw = NULL, *data = NULL;
    npy_header h;

    if (out)
        *out = NULL;
    if (len)
        *len = 0;
    if (!path || !out || !len) {
        e = nmp_fail(msg, NMP_ERR_ARG, "%s: NULL argument", who);
        goto out;
    }
    NMP_TRY(e, npy_open_as(path, kinds, expect, 1, &f, &h, msg));
    if (h.count == 0) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: empty array", path);
        goto out;
    }
    if (!(raw = nmp_malloc(h.nbytes))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    NMP_TRY(e, read_data(f, raw, h.nbytes, path, msg));
    if (!(data = nmp_malloc((size_t)h.count * esize))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    for (int64_t k = 0; k < h.count; k++)
        NMP_TRY(e, decode(&h, raw, k, data, path, msg));
    *out = data;
    *len = h.count;
    data = NULL;
out:
    nmp_free(raw);
    nmp_free(data);
    if (f)
        fclose(f);
    return e;
}

/* out(j, i) = float(A(j, i)), row-major. Float32 C-order data are read straight into the output
 * and decoded in place; other dtypes and Fortran order go through a raw buffer. float64 values
 * beyond the float32 range are refused rather than turned into infinities. */
nmp_err nmp_npy_read_matrix(const char *path, nmp_array *out, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    FILE *f = NULL;
    float *data = NULL;
    unsigned char *raw = NULL;
    npy_header h;

    if (out)
        memset(out, 0, sizeof *out);
    if (!path || !out) {
        e = nmp_fail(msg, NMP_ERR_ARG, "nmp_npy_read_matrix: NULL argument");
        goto out;
    }
    NMP_TRY(e, npy_open_as(path, "f", NPY_FLOATS, 2, &f, &h, msg));
    const int64_t rows = h.shape[0], cols = h.shape[1];
    if (rows == 0 || cols == 0) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: empty matrix (%" PRId64 " x %" PRId64 ")", path,
                     rows, cols);
        goto out;
    }
    data = nmp_malloc((size_t)h.count * sizeof *data);
    if (!data) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    if (h.size == 4 && !h.fortran) {
        const unsigned char *bytes = (const unsigned char *)data;
        NMP_TRY(e, read_data(f, data, h.nbytes, path, msg));
        for (int64_t k = 0; k < h.count; k++)
            data[k] = load_narrow(bytes, 4, k);
    } else {
        raw = nmp_malloc(h.nbytes);
        if (!raw) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
        NMP_TRY(e, read_data(f, raw, h.nbytes, path, msg));
        for (int64_t j = 0; j < rows; j++) {
            for (int64_t i = 0; i < cols; i++) {
                const int64_t k = h.fortran ? i * rows + j : j * cols + i;
                double v = 0;
                if (!load_float(raw, h.size, k, &data[j * cols + i], &v)) {
                    e = nmp_fail(msg, NMP_ERR_FORMAT,
                                 "%s: value %g at row %" PRId64 ", col %" PRId64
                                 " does not fit float32",
                                 path, v, j, i);
                    goto out;
                }
            }
        }
    }
    out->data = data;
    out->rows = rows;
    out->cols = cols;
    data = NULL;
out:
    nmp_free(raw);
    nmp_free(data);
    if (f)
        fclose(f);
    return e;
}

/* out[k] = float(v[k]) of a 1-D float16/32/64 array. */
nmp_err nmp_npy_read_vector(const char *path, float **out, int64_t *len, nmp_msg *msg)
{
    void *data = NULL;
    const nmp_err e = read_1d(path, "nmp_npy_read_vector", "f", NPY_FLOATS,
                              sizeof(float), decode_float, out ? &data : NULL, len, msg);
    if (out)
        *out = data;
    return e;
}

/* out[k] = int32(v[k]) of a 1-D integer array; values outside int32 are refused. */
nmp_err nmp_npy_read_perm(const char *path, int32_t **out, int64_t *len, nmp_msg *msg)
{
    void *data = NULL;
    const nmp_err e = read_1d(path, "nmp_npy_read_perm", "iu", "an integer type",
                              sizeof(int32_t), decode_int32, out ? &data : NULL, len, msg);
    if (out)
        *out = data;
    return e;
}

/* ------------------------------------------------------------------ writing */

/* What is written: a 1-D or 2-D little-endian array, either a float32 view or int64 values of a
 * perm (NULL: identity). */
typedef struct npy_source {
    const nmp_matrix *a;
    const int32_t *perm;
    int64_t n;
} npy_source;

/* Version 1.0 preamble and header, padded with spaces and a newline so that the data start at a
 * multiple of 64, as np.save does. Returns the byte count written to buf. */
static size_t format_header(const npy_source *src, unsigned char *buf, size_t cap)
{
    char dict[160];
    int n;
    if (src->a)
        n = snprintf(dict, sizeof dict,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (%" PRId64 ", %" PRId64
                     "), }",
                     src->a->rows, src->a->cols);
    else
        n = snprintf(dict, sizeof dict,
                     "{'descr': '<i8', 'fortran_order': False, 'shape': (%" PRId64 ",), }",
                     src->n);
    const size_t unpadded = 10 + (size_t)n + 1;
    const size_t total = (unpadded + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    const size_t hlen = total - 10;
    if (total > cap)
        return 0;
    memcpy(buf, NPY_MAGIC, NPY_MAGIC_LEN);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = (unsigned char)(hlen & 0xff);
    buf[9] = (unsigned char)(hlen >> 8);
    memcpy(buf + 10, dict, (size_t)n);
    memset(buf + 10 + n, ' ', hlen - (size_t)n - 1);
    buf[total - 1] = '\n';
    return total;
}

/* Encodes the data in row-major order (a perm as one row) into chunks of NPY_CHUNK bytes and
 * writes them. */
static bool write_data(FILE *f, const npy_source *src, unsigned char *chunk)
{
    const nmp_matrix *a = src->a;
    const int64_t rows = a ? a->rows : 1, cols = a ? a->cols : src->n;
    const int size = a ? 4 : 8;
    size_t fill = 0;
    for (int64_t j = 0; j < rows; j++)
        for (int64_t i = 0; i < cols; i++) {
            uint64_t bits;
            if (a) {
                const float v = nmp_matrix_at(a, j, i);
                uint32_t b32;
                memcpy(&b32, &v, sizeof b32);
                bits = b32;
            } else {
                bits = (uint64_t)(src->perm ? src->perm[i] : i);
            }
            store_le(chunk + fill, bits, size);
            fill += (size_t)size;
            if (fill == NPY_CHUNK) {
                if (fwrite(chunk, 1, fill, f) != fill)
                    return false;
                fill = 0;
            }
        }
    return fwrite(chunk, 1, fill, f) == fill;
}

/* Header, then data, through an atomic output file (nmp_atomic.c): path holds either its old
 * content or the whole new file. */
static nmp_err write_atomic(const char *path, const npy_source *src, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    nmp_atomic f = { 0 };
    unsigned char header[256];
    unsigned char *chunk = nmp_malloc(NPY_CHUNK);
    if (!chunk) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    const size_t hsize = format_header(src, header, sizeof header);
    if (hsize == 0) {
        e = nmp_fail(msg, NMP_ERR_INTERNAL, "%s: header does not fit", path);
        goto out;
    }
    NMP_TRY(e, nmp_atomic_open(&f, path, msg));
    if (fwrite(header, 1, hsize, f.fp) != hsize || !write_data(f.fp, src, chunk)) {
        e = nmp_fail(msg, NMP_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        goto out;
    }
    e = nmp_atomic_commit(&f, msg);
out:
    nmp_atomic_abort(&f);
    nmp_free(chunk);
    return e;
}

/* A float32 C-order .npy of the view a (any strides), rows x cols as the view has them. */
nmp_err nmp_npy_write_matrix(const char *path, const nmp_matrix *a, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    if (!path || !a || !a->data || a->rows < 1 || a->cols < 1) {
        e = nmp_fail(msg, NMP_ERR_ARG, "%s: nothing to write (NULL or empty matrix)",
                     path ? path : "(null)");
        goto out;
    }
    const npy_source src = { a, NULL, 0 };
    NMP_TRY(e, write_atomic(path, &src, msg));
out:
    return e;
}

/* A 1-D int64 .npy of perm[0..n-1] (NULL: the identity). */
nmp_err nmp_npy_write_perm(const char *path, const int32_t *perm, int64_t n, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    if (!path || n < 1) {
        e = nmp_fail(msg, NMP_ERR_ARG, "%s: nothing to write (empty permutation)",
                     path ? path : "(null)");
        goto out;
    }
    const npy_source src = { NULL, perm, n };
    NMP_TRY(e, write_atomic(path, &src, msg));
out:
    return e;
}

/* ------------------------------------------------------------ shape only */

/* The checks of nmp_npy_read_matrix that need no data: magic, header, size, float dtype, 2-D. */
nmp_err nmp_npy_read_shape(const char *path, int64_t *rows, int64_t *cols, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    FILE *f = NULL;
    npy_header h;
    *rows = *cols = 0;
    NMP_TRY(e, npy_open_as(path, "f", NPY_FLOATS, 2, &f, &h, msg));
    *rows = h.shape[0];
    *cols = h.shape[1];
out:
    if (f)
        fclose(f);
    return e;
}

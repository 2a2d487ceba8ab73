/* nmp_safetensors.c: safetensors files (one, or the shards of an index): validated mmap
 * reading, streamed atomic writing */
#define _DEFAULT_SOURCE /* madvise, MADV_DONTNEED */
#include "nmp_io.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HEADER (100u * 1000u * 1000u) /* the reference reader's limit */

/* One file: its mapping, header and metadata; its tensors are tensors[first .. first+count-1]. */
typedef struct shard {
    char *path;            /* as opened */
    const uint8_t *map;    /* the whole file */
    size_t size;
    const uint8_t *data;   /* byte buffer after the header */
    uint64_t data_size;
    json_t *header;
    const char **meta_keys, **meta_values;
    int64_t meta_count, first, count;
} shard;

struct nmp_st {
    char *path;            /* the file, or the index of a sharded checkpoint */
    json_t *index;         /* sharded: the parsed index (owned), else NULL */
    char **names;          /* sharded: the shard file names the index gives, else NULL */
    shard *shards;         /* nshards >= 1 */
    int64_t nshards;
    nmp_st_tensor *tensors; /* by shard, then by begin */
    int64_t count;
};

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    { "BOOL", 1 }, { "U8", 1 }, { "I8", 1 }, { "F8_E5M2", 1 }, { "F8_E4M3", 1 },
    { "F8_E8M0", 1 }, { "I16", 2 }, { "U16", 2 }, { "F16", 2 }, { "BF16", 2 }, { "I32", 4 },
    { "U32", 4 }, { "F32", 4 }, { "F64", 8 }, { "I64", 8 }, { "U64", 8 }, { "C64", 8 },
};

/* Float dtypes by code, so the conversion loops branch once per tensor, not per element. */
enum { DT_F32, DT_F64, DT_F16, DT_BF16, DT_OTHER };

static int float_code(const char *d)
{
    return !strcmp(d, "F32") ? DT_F32 : !strcmp(d, "F64") ? DT_F64 : !strcmp(d, "F16") ? DT_F16
         : !strcmp(d, "BF16") ? DT_BF16 : DT_OTHER;
}

size_t nmp_st_dtype_size(const char *dtype)
{
    for (size_t k = 0; k < sizeof dtypes / sizeof dtypes[0]; k++)
        if (strcmp(dtypes[k].name, dtype) == 0)
            return dtypes[k].size;
    return 0;
}


static void shard_free(shard *sh)
{
    if (sh->map)
        munmap((void *)sh->map, sh->size);
    json_decref(sh->header);
    nmp_free(sh->meta_keys);
    nmp_free(sh->meta_values);
    nmp_free(sh->path);
}

void nmp_st_close(nmp_st *st)
{
    if (!st)
        return;
    for (int64_t k = 0; k < st->nshards; k++)
        shard_free(&st->shards[k]);
    for (int64_t k = 0; st->names && k < st->nshards; k++)
        nmp_free(st->names[k]);
    nmp_free(st->names);
    nmp_free(st->shards);
    json_decref(st->index);
    nmp_free(st->tensors);
    nmp_free(st->path);
    nmp_free(st);
}

static int by_begin(const void *a, const void *b)
{
    const nmp_st_tensor *x = a, *y = b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

/* One header entry: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} */
static nmp_err parse_tensor(const shard *sh, const char *name, json_t *v, nmp_st_tensor *t,
                            nmp_msg *msg)
{
    const char *path = sh->path;
    json_t *dtype = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape");
    json_t *offs = json_object_get(v, "data_offsets");
    if (!json_is_object(v) || !json_is_string(dtype) || !json_is_array(shape) ||
        !json_is_array(offs) || json_array_size(offs) != 2)
        return nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: header entry needs dtype, shape and "
                        "data_offsets [begin, end]", path, name);
    t->name = name;
    const char *ds = json_string_value(dtype);
    const size_t esize = nmp_st_dtype_size(ds);
    if (!esize || strlen(ds) >= sizeof t->dtype)
        return nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: unknown dtype '%s'", path, name, ds);
    strcpy(t->dtype, ds);
    if (json_array_size(shape) > NMP_ST_MAX_DIMS)
        return nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: %zu dimensions, at most %d supported", path,
                        name, json_array_size(shape), NMP_ST_MAX_DIMS);
    t->ndim = (int)json_array_size(shape);
    uint64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        json_t *x = json_array_get(shape, (size_t)d);
        if (!json_is_integer(x) || json_integer_value(x) < 0)
            return nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: shape holds a non-integer or negative "
                            "size", path, name);
        const uint64_t dim = (uint64_t)json_integer_value(x);
        if (dim && numel > UINT64_MAX / dim)
            return nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: shape overflows", path, name);
        numel *= dim;
        t->shape[d] = (int64_t)dim;
    }
    json_t *b = json_array_get(offs, 0), *e = json_array_get(offs, 1);
    if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
        json_integer_value(e) < json_integer_value(b))
        return nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: bad data_offsets", path, name);
    t->begin = (uint64_t)json_integer_value(b);
    t->end = (uint64_t)json_integer_value(e);
    if (numel > UINT64_MAX / esize || numel * esize != t->end - t->begin)
        return nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: shape and dtype %s need %llu bytes, "
                        "data_offsets give %llu", path, name, t->dtype,
                        (unsigned long long)(numel * esize),
                        (unsigned long long)(t->end - t->begin));
    if (numel > INT64_MAX)
        return nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: too many elements", path, name);
    t->numel = (int64_t)numel;
    return NMP_OK;
}

static nmp_err parse_metadata(shard *sh, json_t *meta, nmp_msg *msg)
{
    if (!json_is_object(meta))
        return nmp_fail(msg, NMP_ERR_FORMAT, "%s: __metadata__ is not an object", sh->path);
    const size_t count = json_object_size(meta);
    sh->meta_keys = nmp_calloc(count, sizeof *sh->meta_keys);
    sh->meta_values = nmp_calloc(count, sizeof *sh->meta_values);
    if (!sh->meta_keys || !sh->meta_values)
        return NMP_ERR_NOMEM;
    const char *key;
    json_t *v;
    json_object_foreach(meta, key, v) {
        if (!json_is_string(v))
            return nmp_fail(msg, NMP_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string",
                            sh->path, key);
        sh->meta_keys[sh->meta_count] = key;
        sh->meta_values[sh->meta_count++] = json_string_value(v);
    }
    return NMP_OK;
}

/* Shard k's header into tensors[sh->first ..]: parsed, sorted by begin, checked contiguous. */
static nmp_err parse_header(nmp_st *st, int64_t k, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    shard *sh = &st->shards[k];
    nmp_st_tensor *ts = &st->tensors[sh->first];
    const char *key;
    json_t *v;
    json_object_foreach(sh->header, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            NMP_TRY(e, parse_metadata(sh, v, msg));
            continue;
        }
        NMP_TRY(e, parse_tensor(sh, key, v, &ts[sh->count], msg));
        ts[sh->count++].shard = k;
    }
    qsort(ts, (size_t)sh->count, sizeof *ts, by_begin);
    uint64_t at = 0;
    for (int64_t j = 0; j < sh->count; j++) {
        const nmp_st_tensor *t = &ts[j];
        if (t->begin != at) {
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: data_offsets begin at %llu, expected %llu "
                         "(%s)", sh->path, t->name, (unsigned long long)t->begin,
                         (unsigned long long)at, t->begin < at ? "overlap" : "hole");
            goto out;
        }
        at = t->end;
    }
    if (at != sh->data_size)
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: tensors cover %llu bytes of a %llu-byte buffer (%s)",
                     sh->path, (unsigned long long)at, (unsigned long long)sh->data_size,
                     at < sh->data_size ? "trailing bytes" : "truncated file");
out:
    return e;
}

/* Maps one file and parses its JSON header (not yet its entries). */
static nmp_err map_shard(shard *sh, const char *path, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    int fd = -1;
    if (!(sh->path = nmp_malloc(strlen(path) + 1))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    strcpy(sh->path, path);
    struct stat sb;
    fd = open(path, O_RDONLY);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        e = nmp_fail(msg, NMP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        e = nmp_fail(msg, NMP_ERR_IO, "%s: not a regular file", path);
        goto out;
    }
    sh->size = (size_t)sb.st_size;
    if (sh->size < 8) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %zu bytes, too short for a safetensors header",
                     path, sh->size);
        goto out;
    }
    void *map = mmap(NULL, sh->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        e = nmp_fail(msg, NMP_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        goto out;
    }
    sh->map = map;
    uint64_t hlen = 0;
    for (int b = 7; b >= 0; b--)
        hlen = hlen << 8 | sh->map[b];
    if (hlen > MAX_HEADER || hlen > sh->size - 8) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: header length %llu exceeds %s", path,
                     (unsigned long long)hlen, hlen > MAX_HEADER ? "the 100 MB limit" :
                     "the file size");
        goto out;
    }
    json_error_t jerr;
    sh->header = json_loadb((const char *)sh->map + 8, (size_t)hlen,
                            JSON_REJECT_DUPLICATES, &jerr);
    if (!sh->header || !json_is_object(sh->header)) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: bad JSON header: %s", path,
                     sh->header ? "not an object" : jerr.text);
        goto out;
    }
    sh->data = sh->map + 8 + hlen;
    sh->data_size = sh->size - 8 - hlen;
out:
    if (fd >= 0)
        close(fd);
    return e;
}

/* No tensor name in two shards: names into a JSON object used as a set. */
static nmp_err check_unique(const nmp_st *st, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    json_t *seen = json_object();
    if (!seen)
        return NMP_ERR_NOMEM;
    for (int64_t k = 0; k < st->count; k++) {
        const nmp_st_tensor *t = &st->tensors[k];
        json_t *other = json_object_get(seen, t->name);
        if (other) {
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: tensor %s is in two shards: %s and %s",
                         st->path, t->name, st->shards[json_integer_value(other)].path,
                         st->shards[t->shard].path);
            goto out;
        }
        if (json_object_set_new(seen, t->name, json_integer(t->shard)) != 0) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
    }
out:
    json_decref(seen);
    return e;
}

nmp_err nmp_st_open_files(const char *label, const char *const *paths, int64_t count,
                          nmp_st **out, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    *out = NULL;
    nmp_st *st = nmp_calloc(1, sizeof *st);
    if (!st || !(st->path = nmp_malloc(strlen(label) + 1)) ||
        !(st->shards = nmp_calloc((size_t)(count > 0 ? count : 1), sizeof *st->shards))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    strcpy(st->path, label);
    size_t total = 0;
    for (int64_t k = 0; k < count; k++) {
        st->nshards = k + 1;
        NMP_TRY(e, map_shard(&st->shards[k], paths[k], msg));
        total += json_object_size(st->shards[k].header);
    }
    st->tensors = nmp_calloc(total ? total : 1, sizeof *st->tensors);
    if (!st->tensors) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    for (int64_t k = 0; k < count; k++) {
        st->shards[k].first = st->count;
        NMP_TRY(e, parse_header(st, k, msg));
        st->count += st->shards[k].count;
    }
    if (count > 1)
        NMP_TRY(e, check_unique(st, msg));
    *out = st;
    st = NULL;
out:
    nmp_st_close(st);
    return e;
}

void nmp_st_set_index(nmp_st *st, json_t *index, char **names)
{
    st->index = index;
    st->names = names;
}

const json_t *nmp_st_index(const nmp_st *st) { return st->index; }
const char *nmp_st_shard_name(const nmp_st *st, int64_t k) { return st->names[k]; }

/* A folder or a name ending in ".json" is an index; anything else one safetensors file. */
nmp_err nmp_st_open(const char *path, nmp_st **out, nmp_msg *msg)
{
    struct stat sb;
    const size_t len = strlen(path);
    *out = NULL;
    if ((stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) ||
        (len >= 5 && strcmp(path + len - 5, ".json") == 0))
        return nmp_st_open_index(path, out, msg);
    return nmp_st_open_files(path, &path, 1, out, msg);
}

const char *nmp_st_path(const nmp_st *st) { return st->path; }
int64_t nmp_st_count(const nmp_st *st) { return st->count; }
const nmp_st_tensor *nmp_st_tensor_at(const nmp_st *st, int64_t k) { return &st->tensors[k]; }
int64_t nmp_st_metadata_count(const nmp_st *st) { return st->shards[0].meta_count; }
int nmp_st_is_sharded(const nmp_st *st) { return st->index != NULL; }
int64_t nmp_st_shard_count(const nmp_st *st) { return st->nshards; }
const char *nmp_st_shard_path(const nmp_st *st, int64_t k) { return st->shards[k].path; }

const nmp_st_tensor *nmp_st_find(const nmp_st *st, const char *name)
{
    for (int64_t k = 0; k < st->count; k++)
        if (strcmp(st->tensors[k].name, name) == 0)
            return &st->tensors[k];
    return NULL;
}

/* MADV_DONTNEED on a private read-only file mapping drops the pages from this process (they
 * stay in the page cache and are read back on the next access), so RSS stops counting them. */
void nmp_st_drop_pages(const nmp_st *st)
{
    for (int64_t k = 0; st && k < st->nshards; k++)
        if (st->shards[k].map)
            madvise((void *)st->shards[k].map, st->shards[k].size, MADV_DONTNEED);
}

int nmp_st_dtype_is_float(const char *dtype)
{
    return float_code(dtype) != DT_OTHER;
}

const void *nmp_st_bytes(const nmp_st *st, const nmp_st_tensor *t)
{
    return st->shards[t->shard].data + t->begin;
}

void nmp_st_metadata_at(const nmp_st *st, int64_t k, const char **key, const char **value)
{
    *key = st->shards[0].meta_keys[k];
    *value = st->shards[0].meta_values[k];
}

nmp_err nmp_st_read_f32(const nmp_st *st, const nmp_st_tensor *t, float *out, nmp_msg *msg)
{
    const uint8_t *p = nmp_st_bytes(st, t);
    const int64_t count = t->numel;
    switch (float_code(t->dtype)) {
    case DT_F32:
        memcpy(out, p, (size_t)count * 4);
        break;
    case DT_F64:
        for (int64_t k = 0; k < count; k++) {
            double x;
            memcpy(&x, p + 8 * k, 8);
            out[k] = (float)x;
        }
        break;
    case DT_F16:
        for (int64_t k = 0; k < count; k++)
            out[k] = nmp_f16_to_f32((uint16_t)(p[2 * k] | p[2 * k + 1] << 8));
        break;
    case DT_BF16:
        for (int64_t k = 0; k < count; k++)
            out[k] = nmp_bf16_to_f32((uint16_t)(p[2 * k] | p[2 * k + 1] << 8));
        break;
    default:
        return nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: dtype %s is not a float type", st->path,
                        t->name, t->dtype);
    }
    return NMP_OK;
}

nmp_err nmp_st_encode_f32(const nmp_st_tensor *t, const float *in, void *dst, nmp_msg *msg)
{
    uint8_t *p = dst;
    const int64_t count = t->numel;
    const int code = float_code(t->dtype);
    switch (code) {
    case DT_F32:
        memcpy(p, in, (size_t)count * 4);
        break;
    case DT_F64:
        for (int64_t k = 0; k < count; k++) {
            const double x = in[k];
            memcpy(p + 8 * k, &x, 8);
        }
        break;
    case DT_F16:
    case DT_BF16:
        for (int64_t k = 0; k < count; k++) {
            const uint16_t h = code == DT_F16 ? nmp_f32_to_f16(in[k]) : nmp_f32_to_bf16(in[k]);
            p[2 * k] = (uint8_t)(h & 0xff);
            p[2 * k + 1] = (uint8_t)(h >> 8);
        }
        break;
    default:
        return nmp_fail(msg, NMP_ERR_FORMAT, "%s: dtype %s is not a float type", t->name,
                        t->dtype);
    }
    return NMP_OK;
}

/* The output header of shard k: __metadata__ first (with "format": "pt"), then its tensors in
 * file order. */
static char *build_header(const nmp_st *in, int64_t k, size_t *len)
{
    char *text = NULL;
    const shard *sh = &in->shards[k];
    json_t *h = json_object(), *meta = json_object();
    if (!h || !meta)
        goto out;
    for (int64_t j = 0; j < sh->meta_count; j++)
        json_object_set_new(meta, sh->meta_keys[j], json_string(sh->meta_values[j]));
    json_object_set_new(meta, "format", json_string("pt"));
    json_object_set(h, "__metadata__", meta);
    for (int64_t j = sh->first; j < sh->first + sh->count; j++) {
        const nmp_st_tensor *t = &in->tensors[j];
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++)
            json_array_append_new(shape, json_integer(t->shape[d]));
        json_t *entry = json_pack("{s:s, s:o, s:[I, I]}", "dtype", t->dtype, "shape", shape,
                                  "data_offsets", (json_int_t)t->begin, (json_int_t)t->end);
        if (!entry || json_object_set_new(h, t->name, entry) != 0)
            goto out;
    }
    text = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text)
        *len = strlen(text);
out:
    json_decref(meta);
    json_decref(h);
    return text;
}

/* The whole pages inside t's bytes leave this process (nmp_st_drop_pages, one tensor): the
 * writer reads each input tensor once, so resident memory stays at one tensor, not the file. */
static void drop_tensor(const nmp_st *st, const nmp_st_tensor *t)
{
    const shard *sh = &st->shards[t->shard];
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t a = ((uintptr_t)(sh->data + t->begin) + page - 1) / page * page;
    const uintptr_t b = (uintptr_t)(sh->data + t->end) / page * page;
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

/* Shard k of in into f (header, tensors through fill), then nmp_atomic_close(f). */
static nmp_err write_shard(const nmp_st *in, int64_t k, nmp_atomic *f, nmp_st_fill_fn fill,
                           void *user, uint8_t *buf, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const shard *sh = &in->shards[k];
    size_t hlen = 0;
    char *header = build_header(in, k, &hlen);
    if (!header) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    const size_t padded = (hlen + 7) / 8 * 8;
    uint8_t len8[8];
    for (int b = 0; b < 8; b++)
        len8[b] = (uint8_t)((uint64_t)padded >> (8 * b));
    NMP_TRY(e, nmp_atomic_write(f, len8, 8, msg));
    NMP_TRY(e, nmp_atomic_write(f, header, hlen, msg));
    NMP_TRY(e, nmp_atomic_write(f, "        ", padded - hlen, msg));
    for (int64_t j = sh->first; j < sh->first + sh->count; j++) {
        const nmp_st_tensor *t = &in->tensors[j];
        const size_t size = (size_t)(t->end - t->begin);
        const void *src = nmp_st_bytes(in, t);
        if (fill) {
            memcpy(buf, src, size);
            NMP_TRY(e, fill(user, t, buf, msg));
            src = buf;
        }
        NMP_TRY(e, nmp_atomic_write(f, src, size, msg));
        drop_tensor(in, t);
    }
    e = nmp_atomic_close(f, msg);
out:
    free(header); /* json_dumps allocates with malloc */
    return e;
}

nmp_err nmp_st_write_to(const nmp_st *in, nmp_atomic *f, nmp_st_fill_fn fill, void *user,
                        nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    uint64_t largest = 0;
    for (int64_t k = 0; k < in->count; k++)
        largest = NMP_MAX(largest, in->tensors[k].end - in->tensors[k].begin);
    uint8_t *buf = nmp_malloc((size_t)(largest ? largest : 1));
    if (!buf) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    if (!f->parts) {
        NMP_TRY(e, write_shard(in, 0, f, fill, user, buf, msg));
        goto out;
    }
    for (int64_t k = 0; k < in->nshards; k++)
        NMP_TRY(e, write_shard(in, k, &f->parts[k], fill, user, buf, msg));
    e = nmp_st_out_index(in, f, msg);
out:
    nmp_free(buf);
    return e;
}

nmp_err nmp_st_write(const nmp_st *in, const char *path, nmp_st_fill_fn fill, void *user,
                     nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    nmp_atomic f = { 0 };
    NMP_TRY(e, nmp_st_out_open(in, &f, path, msg));
    NMP_TRY(e, nmp_st_write_to(in, &f, fill, user, msg));
    e = nmp_atomic_commit(&f, msg);
out:
    nmp_atomic_abort(&f);
    return e;
}

/* nmp_shards.c: sharded safetensors checkpoints: the index (model.safetensors.index.json) read
 * and validated, and the output set (shards, companion files, index last) written atomically */
#include "nmp_io.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INDEX_NAME "model.safetensors.index.json"

/* "dir/name" (nmp_malloc'd; NULL when out of memory). */
static char *join(const char *dir, size_t dlen, const char *name)
{
    const size_t nlen = strlen(name);
    char *p = nmp_malloc(dlen + 1 + nlen + 1);
    if (p) {
        memcpy(p, dir, dlen);
        p[dlen] = '/';
        memcpy(p + dlen + 1, name, nlen + 1);
    }
    return p;
}

/* The length of path's folder part ("" -> "."). */
static size_t dir_len(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? (size_t)(slash - path) + (slash == path) : 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A shard name stays in the index's folder: a plain file name, no '/', not "." or "..". */
static int is_plain_name(const char *name)
{
    return name[0] && !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* Every tensor of every shard is in the weight_map under its own shard, and every weight_map
 * entry is in the shard it names (nmp_st_open_files has already refused a name in two shards). */
static nmp_err check_map(const nmp_st *st, json_t *map, char **names, nmp_msg *msg)
{
    const char *path = nmp_st_path(st);
    for (int64_t k = 0; k < nmp_st_count(st); k++) {
        const nmp_st_tensor *t = nmp_st_tensor_at(st, k);
        const char *listed = json_string_value(json_object_get(map, t->name));
        if (!listed)
            return nmp_fail(msg, NMP_ERR_FORMAT, "%s: tensor %s of %s is not in the weight_map",
                            path, t->name, names[t->shard]);
        if (strcmp(listed, names[t->shard]) != 0)
            return nmp_fail(msg, NMP_ERR_FORMAT, "%s: the weight_map puts %s in %s, but it is "
                            "in %s", path, t->name, listed, names[t->shard]);
    }
    const char *key;
    json_t *v;
    json_object_foreach(map, key, v) {
        if (!nmp_st_find(st, key))
            return nmp_fail(msg, NMP_ERR_FORMAT, "%s: the weight_map lists %s in %s, which has "
                            "no such tensor", path, key, json_string_value(v));
    }
    return NMP_OK;
}

/* Reads the index, opens its shards (sorted by name) through nmp_st_open_files, checks the
 * weight_map against them. */
nmp_err nmp_st_open_index(const char *path, nmp_st **out, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    struct stat sb;
    char *index_path = NULL, **names = NULL, **paths = NULL;
    int64_t count = 0;
    json_t *index = NULL, *map = NULL;
    *out = NULL;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        index_path = join(path, strlen(path), INDEX_NAME);
    else if ((index_path = nmp_malloc(strlen(path) + 1)) != NULL)
        strcpy(index_path, path);
    if (!index_path) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    json_error_t jerr;
    if (!(index = json_load_file(index_path, JSON_REJECT_DUPLICATES, &jerr))) {
        e = access(index_path, R_OK) != 0
                ? nmp_fail(msg, NMP_ERR_IO, "%s: cannot open: %s", index_path, strerror(errno))
                : nmp_fail(msg, NMP_ERR_FORMAT, "%s: bad JSON: %s (line %d)", index_path,
                           jerr.text, jerr.line);
        goto out;
    }
    map = json_object_get(index, "weight_map");
    if (!json_is_object(index) || !json_is_object(map) || json_object_size(map) == 0) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: not a safetensors index (no weight_map object, "
                     "or an empty one)", index_path);
        goto out;
    }
    /* the distinct shard names, sorted */
    const size_t entries = json_object_size(map);
    if (!(names = nmp_calloc(entries, sizeof *names))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(map, key, v) {
        const char *name = json_string_value(v);
        if (!name || !is_plain_name(name)) {
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: weight_map: %s: the shard must be a file name "
                         "in the index's folder, not %s%s%s", index_path, key, name ? "'" : "",
                         name ? name : "a non-string", name ? "'" : "");
            goto out;
        }
        int64_t k = 0;
        while (k < count && strcmp(names[k], name) != 0)
            k++;
        if (k == count) {
            if (!(names[count] = nmp_malloc(strlen(name) + 1))) {
                e = NMP_ERR_NOMEM;
                goto out;
            }
            strcpy(names[count++], name);
        }
    }
    qsort(names, (size_t)count, sizeof *names, by_name);
    if (!(paths = nmp_calloc((size_t)count, sizeof *paths))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    const size_t dlen = dir_len(index_path);
    for (int64_t k = 0; k < count; k++)
        if (!(paths[k] = dlen ? join(index_path, dlen, names[k]) : join(".", 1, names[k]))) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
    NMP_TRY(e, nmp_st_open_files(index_path, (const char *const *)paths, count, out, msg));
    if ((e = check_map(*out, map, names, msg)) != NMP_OK) {
        nmp_st_close(*out);
        *out = NULL;
        goto out;
    }
    nmp_st_set_index(*out, index, names);
    index = NULL;
    names = NULL;
out:
    for (int64_t k = 0; names && k < count; k++)
        nmp_free(names[k]);
    for (int64_t k = 0; paths && k < count; k++)
        nmp_free(paths[k]);
    nmp_free(names);
    nmp_free(paths);
    json_decref(index);
    nmp_free(index_path);
    return e;
}

/* ------------------------------------------------------------ the output set */

/* Files beside an index that describe the model rather than hold its weights. */
static int is_companion(const char *name)
{
    const size_t len = strlen(name);
    static const char *const ends[] = { ".json", ".txt", ".model", ".tiktoken" };
    if (name[0] == '.' || strstr(name, ".nmperm-tmp.") ||
        (len >= 11 && strcmp(name + len - 11, ".index.json") == 0))
        return 0;
    if (strncmp(name, "tokenizer", 9) == 0)
        return 1;
    for (size_t k = 0; k < sizeof ends / sizeof ends[0]; k++) {
        const size_t el = strlen(ends[k]);
        if (len >= el && strcmp(name + len - el, ends[k]) == 0)
            return 1;
    }
    return 0;
}

/* Copies file src into the opened f (streamed, 1 MiB at a time) and closes f. */
static nmp_err copy_into(const char *src, nmp_atomic *f, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    char *buf = nmp_malloc(1 << 20);
    FILE *in = fopen(src, "rb");
    if (!buf) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    if (!in) {
        e = nmp_fail(msg, NMP_ERR_IO, "%s: cannot open: %s", src, strerror(errno));
        goto out;
    }
    for (size_t n; (n = fread(buf, 1, 1 << 20, in)) > 0;)
        NMP_TRY(e, nmp_atomic_write(f, buf, n, msg));
    if (ferror(in)) {
        e = nmp_fail(msg, NMP_ERR_IO, "%s: read failed", src);
        goto out;
    }
    e = nmp_atomic_close(f, msg);
out:
    if (in)
        fclose(in);
    nmp_free(buf);
    return e;
}

/* The companion files of the folder indir (sorted names; *names released by the caller, each
 * entry and the array, with nmp_free). */
static nmp_err list_companions(const char *indir, char ***names, int64_t *count, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    int64_t cap = 0;
    DIR *d = opendir(indir);
    *names = NULL;
    *count = 0;
    if (!d)
        return nmp_fail(msg, NMP_ERR_IO, "%s: cannot list: %s", indir, strerror(errno));
    for (struct dirent *ent; (ent = readdir(d)) != NULL;) {
        struct stat sb;
        char *full = NULL;
        if (!is_companion(ent->d_name))
            continue;
        if (!(full = join(indir, strlen(indir), ent->d_name))) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
        const int regular = stat(full, &sb) == 0 && S_ISREG(sb.st_mode);
        nmp_free(full);
        if (!regular)
            continue;
        if (*count == cap) {
            char **grown = nmp_calloc((size_t)(cap = cap ? 2 * cap : 8), sizeof *grown);
            if (!grown) {
                e = NMP_ERR_NOMEM;
                goto out;
            }
            if (*count)
                memcpy(grown, *names, (size_t)*count * sizeof *grown);
            nmp_free(*names);
            *names = grown;
        }
        if (!((*names)[*count] = nmp_malloc(strlen(ent->d_name) + 1))) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
        strcpy((*names)[(*count)++], ent->d_name);
    }
    if (*count)
        qsort(*names, (size_t)*count, sizeof **names, by_name);
out:
    closedir(d);
    return e;
}

/* Opens the part at dir/name. */
static nmp_err open_part(nmp_atomic *f, const char *name, nmp_msg *msg)
{
    char *p = join(f->dir, strlen(f->dir), name);
    nmp_err e = p ? nmp_atomic_open(&f->parts[f->nparts], p, msg) : NMP_ERR_NOMEM;
    if (e == NMP_OK)
        f->nparts++;
    nmp_free(p);
    return e;
}

nmp_err nmp_st_out_open(const nmp_st *in, nmp_atomic *f, const char *path, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    struct stat sb, ib;
    char *indir = NULL, *index_path = NULL, **comp = NULL;
    int64_t ncomp = 0, made = 0;
    memset(f, 0, sizeof *f);
    if (!nmp_st_is_sharded(in))
        return nmp_atomic_open(f, path, msg);
    const char *inpath = nmp_st_path(in);
    const size_t dlen = dir_len(inpath);
    if (!(indir = nmp_malloc(dlen + 2))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    snprintf(indir, dlen + 2, "%.*s", dlen ? (int)dlen : 1, dlen ? inpath : ".");
    if (stat(path, &sb) != 0) {
        if (errno != ENOENT || mkdir(path, 0777) != 0 || stat(path, &sb) != 0) {
            e = nmp_fail(msg, NMP_ERR_IO, "%s: cannot make the output folder: %s", path,
                         strerror(errno));
            goto out;
        }
        made = 1;
    } else if (!S_ISDIR(sb.st_mode)) {
        e = nmp_fail(msg, NMP_ERR_ARG, "%s: not a folder (a sharded checkpoint is written to a "
                     "folder)", path);
        goto out;
    }
    if (stat(indir, &ib) == 0 && ib.st_dev == sb.st_dev && ib.st_ino == sb.st_ino) {
        e = nmp_fail(msg, NMP_ERR_ARG, "%s: the output folder is the input's folder %s (inputs "
                     "are never overwritten)", path, indir);
        goto out;
    }
    NMP_TRY(e, list_companions(indir, &comp, &ncomp, msg));
    const char *base = inpath + dlen + (dlen > 0 && inpath[dlen - 1] != '/');
    if (!(index_path = join(path, strlen(path), base))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    NMP_TRY(e, nmp_atomic_open(f, index_path, msg));
    const int64_t nshards = nmp_st_shard_count(in);
    f->made_dir = (int)made;
    made = 0;
    f->nshards = nshards;
    f->dir = nmp_malloc(strlen(path) + 1);
    f->parts = nmp_calloc((size_t)(nshards + ncomp), sizeof *f->parts);
    if (!f->dir || !f->parts) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    strcpy(f->dir, path);
    for (int64_t k = 0; k < nshards; k++)
        NMP_TRY(e, open_part(f, nmp_st_shard_name(in, k), msg));
    for (int64_t k = 0; k < ncomp; k++) {
        char *src = join(indir, strlen(indir), comp[k]);
        e = src ? open_part(f, comp[k], msg) : NMP_ERR_NOMEM;
        if (e == NMP_OK)
            e = copy_into(src, &f->parts[f->nparts - 1], msg);
        nmp_free(src);
        if (e != NMP_OK)
            goto out;
    }
out:
    if (e != NMP_OK) {
        nmp_atomic_abort(f);
        if (made)
            rmdir(path);
    }
    for (int64_t k = 0; k < ncomp; k++)
        nmp_free(comp[k]);
    nmp_free(comp);
    nmp_free(index_path);
    nmp_free(indir);
    return e;
}

/* total_size is what transformers writes: the bytes of all tensors (headers excluded). */
nmp_err nmp_st_out_index(const nmp_st *in, nmp_atomic *f, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    char *text = NULL;
    json_t *index = json_deep_copy(nmp_st_index(in));
    uint64_t total = 0;
    for (int64_t k = 0; k < nmp_st_count(in); k++)
        total += nmp_st_tensor_at(in, k)->end - nmp_st_tensor_at(in, k)->begin;
    json_t *meta = index ? json_object_get(index, "metadata") : NULL;
    if (index && !json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(index, "metadata", meta);
    }
    if (!index || !meta || json_object_set_new(meta, "total_size", json_integer((json_int_t)total))
        || !(text = json_dumps(index, JSON_INDENT(2) | JSON_PRESERVE_ORDER))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    NMP_TRY(e, nmp_atomic_write(f, text, strlen(text), msg));
    NMP_TRY(e, nmp_atomic_write(f, "\n", 1, msg));
    e = nmp_atomic_close(f, msg);
out:
    free(text); /* json_dumps allocates with malloc */
    json_decref(index);
    return e;
}

nmp_err nmp_st_out_reopen(const nmp_atomic *f, nmp_st **out, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    if (!f->parts)
        return nmp_st_open_files(f->tmp, (const char *const *)&f->tmp, 1, out, msg);
    const char **paths = nmp_calloc((size_t)f->nshards, sizeof *paths);
    if (!paths)
        return NMP_ERR_NOMEM;
    for (int64_t k = 0; k < f->nshards; k++)
        paths[k] = f->parts[k].tmp;
    e = nmp_st_open_files(f->path, paths, f->nshards, out, msg);
    nmp_free(paths);
    return e;
}

const char *nmp_st_out_file(const nmp_atomic *f)
{
    return f->parts && f->nshards > 0 ? f->parts[0].tmp : f->tmp;
}

/* nmp_batch_list.c: a batch's job list: inputs walked (files, folders, manifests), stable job
 * ids and output names, cost estimates, natural name order, shards balanced by cost */
#define _XOPEN_SOURCE 700 /* realpath */
#include "nmp_model.h"

#include <jansson.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* ------------------------------------------------------------- strings */

static char *str_dup(const char *s)
{
    const size_t len = strlen(s);
    char *d = nmp_malloc(len + 1);
    if (d)
        memcpy(d, s, len + 1);
    return d;
}

/* A formatted string on the nmp heap (NULL when out of memory). */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static char *str_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        return NULL;
    char *d = nmp_malloc((size_t)len + 1);
    if (!d)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(d, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return d;
}

static bool ends_with(const char *s, const char *suffix)
{
    const size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Digit runs compare as numbers (leading zeros ignored, then by length of the run), everything
 * else bytewise; equal under that rule, plain strcmp decides, so the order is total. */
int nmp_batch_name_cmp(const char *a, const char *b)
{
    const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
    while (*p && *q) {
        if (*p >= '0' && *p <= '9' && *q >= '0' && *q <= '9') {
            while (*p == '0' && p[1] >= '0' && p[1] <= '9')
                p++;
            while (*q == '0' && q[1] >= '0' && q[1] <= '9')
                q++;
            size_t lp = 0, lq = 0;
            while (p[lp] >= '0' && p[lp] <= '9')
                lp++;
            while (q[lq] >= '0' && q[lq] <= '9')
                lq++;
            if (lp != lq)
                return lp < lq ? -1 : 1;
            const int c = memcmp(p, q, lp);
            if (c)
                return c < 0 ? -1 : 1;
            p += lp;
            q += lq;
        } else {
            if (*p != *q)
                return *p < *q ? -1 : 1;
            p++;
            q++;
        }
    }
    if (*p || *q)
        return *p ? 1 : -1;
    const int c = strcmp(a, b);
    return c < 0 ? -1 : c > 0;
}

/* ------------------------------------------------------------- cost */

/* auto's default work, measured (nmp_auto.c): ~1 core-second per search from 64^2 to 512^2,
 * 4 at 1024^2, 20 at 2048^2: about rows * cols / 2e5 above 512^2; a small constant for the
 * process start and the load below. */
double nmp_batch_cost(int64_t rows, int64_t cols)
{
    return 0.05 + (double)rows * (double)cols / 2e5;
}

/* ------------------------------------------------------------- listing */

typedef enum in_kind { IN_NPY, IN_ST, IN_MISSING } in_kind;

/* One input file found. */
typedef struct in_file {
    char *abs;    /* absolute (realpath); for IN_MISSING the path as given */
    char *error;  /* IN_MISSING: why */
    in_kind kind;
} in_file;

typedef struct walker {
    in_file *files;
    int64_t count, cap;
    const char *exclude; /* realpath of the excluded folder, or NULL */
    nmp_msg *msg;
} walker;

static nmp_err add_file(walker *w, const char *abs, in_kind kind, const char *error)
{
    for (int64_t k = 0; k < w->count; k++)
        if (strcmp(w->files[k].abs, abs) == 0)
            return NMP_OK;
    if (w->count == w->cap) {
        const int64_t cap = 2 * w->cap + 16;
        in_file *grown = nmp_realloc(w->files, (size_t)cap * sizeof *grown);
        if (!grown)
            return NMP_ERR_NOMEM;
        w->files = grown;
        w->cap = cap;
    }
    in_file *f = &w->files[w->count];
    f->abs = str_dup(abs);
    f->error = error ? str_dup(error) : NULL;
    f->kind = kind;
    if (!f->abs || (error && !f->error)) {
        nmp_free(f->abs);
        nmp_free(f->error);
        return NMP_ERR_NOMEM;
    }
    w->count++;
    return NMP_OK;
}

static bool is_index(const char *name)
{
    return ends_with(name, ".safetensors.index.json");
}

static bool is_input_name(const char *name)
{
    return ends_with(name, ".npy") || ends_with(name, ".safetensors") || is_index(name);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether name (in folder dir) is a shard file named by an index in names[]. */
static bool named_by_index(const char *dir, char **names, int64_t count, const char *name)
{
    bool hit = false;
    for (int64_t k = 0; k < count && !hit; k++) {
        if (!is_index(names[k]))
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        json_t *root = json_load_file(path, 0, NULL);
        json_t *map = json_object_get(root, "weight_map");
        const char *key;
        json_t *v;
        json_object_foreach(map, key, v) {
            if (json_is_string(v) && strcmp(json_string_value(v), name) == 0) {
                hit = true;
                break;
            }
        }
        json_decref(root);
    }
    return hit;
}

static nmp_err walk_dir(walker *w, const char *dir);

/* One path: a folder, an input file, or (manifest != 0) a manifest's line. */
static nmp_err add_path(walker *w, const char *path, bool allow_manifest);

static nmp_err walk_dir(walker *w, const char *dir)
{
    nmp_err e = NMP_OK;
    char **names = NULL;
    int64_t count = 0, cap = 0;
    if (w->exclude && strcmp(dir, w->exclude) == 0)
        return NMP_OK;
    DIR *d = opendir(dir);
    if (!d)
        return nmp_fail(w->msg, NMP_ERR_IO, "%s: cannot read folder: %s", dir, strerror(errno));
    for (struct dirent *ent; (ent = readdir(d)) != NULL;) {
        if (ent->d_name[0] == '.')
            continue; /* ., .., hidden files and temporaries */
        if (count == cap) {
            cap = 2 * cap + 16;
            char **grown = nmp_realloc(names, (size_t)cap * sizeof *grown);
            if (!grown) {
                e = NMP_ERR_NOMEM;
                goto out;
            }
            names = grown;
        }
        if (!(names[count] = str_dup(ent->d_name))) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
        count++;
    }
    if (count)
        qsort(names, (size_t)count, sizeof *names, cmp_names);
    for (int64_t k = 0; k < count; k++) {
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            NMP_TRY(e, walk_dir(w, path));
        else if (S_ISREG(st.st_mode) && is_input_name(names[k]) &&
                 !(ends_with(names[k], ".safetensors") &&
                   named_by_index(dir, names, count, names[k])))
            NMP_TRY(e, add_path(w, path, false));
    }
out:
    closedir(d);
    for (int64_t k = 0; k < count; k++)
        nmp_free(names[k]);
    nmp_free(names);
    return e;
}

/* Lines of a manifest, relative paths against the manifest's folder. */
static nmp_err read_manifest(walker *w, const char *abs)
{
    nmp_err e = NMP_OK;
    char *text = NULL;
    size_t len = 0;
    NMP_TRY(e, nmp_batch_read_file(abs, &text, &len, w->msg));
    if (!text || memchr(text, '\0', len)) {
        e = nmp_fail(w->msg, NMP_ERR_FORMAT,
                     "%s: not a manifest (a text file with one input path per line)", abs);
        goto out;
    }
    const char *slash = strrchr(abs, '/');
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line || *line == '#')
            continue;
        char path[PATH_MAX];
        if (line[0] == '/')
            snprintf(path, sizeof path, "%s", line);
        else
            snprintf(path, sizeof path, "%.*s/%s", (int)(slash - abs), abs, line);
        NMP_TRY(e, add_path(w, path, false));
    }
out:
    nmp_free(text);
    return e;
}

static nmp_err add_path(walker *w, const char *path, bool allow_manifest)
{
    char abs[PATH_MAX];
    struct stat st;
    if (!realpath(path, abs) || stat(abs, &st) != 0) {
        char why[600];
        snprintf(why, sizeof why, "%s: cannot open: %s", path, strerror(errno));
        return add_file(w, path, IN_MISSING, why);
    }
    if (S_ISDIR(st.st_mode))
        return walk_dir(w, abs);
    if (ends_with(abs, ".npy"))
        return add_file(w, abs, IN_NPY, NULL);
    if (ends_with(abs, ".safetensors") || is_index(abs))
        return add_file(w, abs, IN_ST, NULL);
    if (allow_manifest)
        return read_manifest(w, abs);
    char why[600];
    snprintf(why, sizeof why, "%s: not an input (expected .npy, .safetensors or "
             ".safetensors.index.json)", path);
    return add_file(w, abs, IN_MISSING, why);
}

/* Longest common folder of the files' absolute paths ("/" at worst). */
static char *common_root(const walker *w)
{
    const char *first = NULL;
    size_t len = 0;
    for (int64_t k = 0; k < w->count; k++) {
        const in_file *f = &w->files[k];
        if (f->kind == IN_MISSING && f->abs[0] != '/')
            continue;
        const char *slash = strrchr(f->abs, '/');
        const size_t dlen = (size_t)(slash - f->abs);
        if (!first) {
            first = f->abs;
            len = dlen;
            continue;
        }
        size_t n = 0;
        while (n < len && n < dlen && first[n] == f->abs[n])
            n++;
        /* back to a component boundary */
        if (!((n == len || first[n] == '/') && (n == dlen || f->abs[n] == '/')))
            while (n > 0 && first[n] != '/')
                n--;
        len = n;
    }
    if (!first || len == 0)
        return str_dup("/");
    return str_fmt("%.*s", (int)len, first);
}

/* The path relative to root (as given when it is not under root). */
static const char *rel_of(const char *root, const char *abs)
{
    const size_t n = strlen(root);
    if (strcmp(root, "/") == 0)
        return abs[0] == '/' ? abs + 1 : abs;
    if (strncmp(abs, root, n) == 0 && abs[n] == '/')
        return abs + n + 1;
    return abs;
}

/* ----------------------------------------------------------- job list */

typedef struct builder {
    nmp_batch_list *list;
    int64_t cap;
    const nmp_batch_opts *o;
} builder;

typedef struct job_key {
    const char *rel, *space, *error;
    const char *path;
    nmp_batch_kind kind;
    int64_t index, rows, cols;
    double cost;
} job_key;

char *nmp_batch_perm_name(const char *prefix, const char *space, const char *solver)
{
    char *s = str_dup(space);
    for (char *p = s; p && *p; p++)
        if (*p == '/')
            *p = '_';
    char *name = s ? str_fmt("%s%s.%s.npy", prefix, s, solver) : NULL;
    nmp_free(s);
    return name;
}

static nmp_err push_job(builder *b, const job_key *k, int solver)
{
    nmp_batch_list *l = b->list;
    if (l->count == b->cap) {
        const int64_t cap = 2 * b->cap + 64;
        nmp_batch_job *grown = nmp_realloc(l->jobs, (size_t)cap * sizeof *grown);
        if (!grown)
            return NMP_ERR_NOMEM;
        l->jobs = grown;
        b->cap = cap;
    }
    nmp_batch_job *j = &l->jobs[l->count];
    memset(j, 0, sizeof *j);
    l->count++;
    const char *sv = b->o->solvers[solver];
    j->kind = k->kind;
    j->index = k->index;
    j->rows = k->rows;
    j->cols = k->cols;
    j->cost = k->cost;
    j->group = solver; /* the solver's position, until the list is sorted */
    j->path = str_dup(k->path);
    j->rel = str_dup(k->rel);
    j->solver = str_dup(sv);
    j->error = k->error ? str_dup(k->error) : NULL;
    if (k->kind == NMP_BATCH_SPACE) {
        char *prefix = str_fmt("perms/%s/", k->rel);
        j->space = str_dup(k->space);
        j->id = str_fmt("%s:%s@%s", k->rel, k->space, sv);
        j->output = prefix ? nmp_batch_perm_name(prefix, k->space, sv) : NULL;
        nmp_free(prefix);
        if (!j->space)
            return NMP_ERR_NOMEM;
    } else {
        j->id = str_fmt("%s@%s", k->rel, sv);
        if (k->kind == NMP_BATCH_WRITE) {
            const size_t n = strlen(k->rel) - (ends_with(k->rel, ".safetensors") ? 12 : 0);
            j->output = str_fmt("checkpoints/%.*s.%s.safetensors", (int)n, k->rel, sv);
        } else {
            j->output = str_fmt("perms/%s.%s.npy", k->rel, sv);
        }
    }
    if (!j->path || !j->rel || !j->solver || !j->id || !j->output || (k->error && !j->error))
        return NMP_ERR_NOMEM;
    return NMP_OK;
}

static nmp_err push_all(builder *b, const job_key *k)
{
    nmp_err e = NMP_OK;
    for (int s = 0; s < b->o->nsolvers && e == NMP_OK; s++)
        e = push_job(b, k, s);
    return e;
}

/* Heads (and KV heads) from config.json beside path (transformers' names), when not given. */
static void heads_from_config(const char *path, nmp_plan_opts *po)
{
    char cfgpath[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (po->heads > 0)
        return;
    snprintf(cfgpath, sizeof cfgpath, "%.*sconfig.json", slash ? (int)(slash - path + 1) : 0,
             path);
    json_t *cfg = json_load_file(cfgpath, 0, NULL);
    json_t *h = json_object_get(cfg, "num_attention_heads");
    json_t *kv = json_object_get(cfg, "num_key_value_heads");
    if (!h)
        h = json_object_get(cfg, "n_head");
    if (json_is_integer(h) && json_integer_value(h) > 0 && json_integer_value(h) <= 65536)
        po->heads = (int)json_integer_value(h);
    if (po->kv_heads == 0 && json_is_integer(kv) && json_integer_value(kv) > 0 &&
        json_integer_value(kv) <= 65536)
        po->kv_heads = (int)json_integer_value(kv);
    json_decref(cfg);
}

/* Opens a checkpoint and builds its checked plan (heads from config.json when not given). */
nmp_err nmp_batch_open_plan(const char *path, const nmp_plan_opts *plan, nmp_pattern nm,
                         nmp_st **st, nmp_plan **out, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    nmp_plan_opts po = *plan;
    heads_from_config(path, &po);
    NMP_TRY(e, nmp_st_open(path, st, msg));
    NMP_TRY(e, nmp_plan_infer(*st, &po, out, msg));
    NMP_TRY(e, nmp_plan_check(*out, *st, nm, msg));
out:
    return e;
}

/* Rows of a space's scoring problem: every consumer's elements over its channel axis. */
static int64_t space_rows(const nmp_st *st, const nmp_space *sp)
{
    int64_t rows = 0;
    for (int64_t r = 0; r < sp->nrefs; r++) {
        const nmp_ref *ref = &sp->refs[r];
        const nmp_st_tensor *t = ref->role == NMP_ROLE_CONSUMER ? nmp_st_find(st, ref->tensor)
                                                                 : NULL;
        if (t && ref->axis >= 0 && ref->axis < t->ndim && t->shape[ref->axis] > 0)
            rows += t->numel / t->shape[ref->axis];
    }
    return rows;
}

static nmp_err list_checkpoint(builder *b, const char *abs, const char *rel)
{
    nmp_err e = NMP_OK;
    nmp_msg why = { { 0 } };
    nmp_st *st = NULL;
    nmp_plan *plan = NULL;
    job_key k = { rel, NULL, NULL, abs, NMP_BATCH_SPACE, 0, 0, 0, 0 };
    const nmp_err le = nmp_batch_open_plan(abs, &b->o->plan, b->o->nm, &st, &plan, &why);
    int64_t active = 0;
    if (le == NMP_ERR_NOMEM) {
        e = le;
        goto out;
    }
    if (le == NMP_OK)
        for (int64_t s = 0; s < plan->count; s++)
            active += !plan->spaces[s].skip;
    if (le != NMP_OK || active == 0) {
        if (le == NMP_OK)
            snprintf(why.text, sizeof why.text, "%s: no channel space to permute (%lld skipped)",
                     rel, (long long)plan->count);
        else if (!why.text[0])
            snprintf(why.text, sizeof why.text, "%s: %s", rel, nmp_err_str(le));
        else if (is_index(abs) && !st) { /* forward compatible: a reader that opens them wins */
            char reason[sizeof why.text];
            snprintf(reason, sizeof reason, "%s", why.text);
            snprintf(why.text, sizeof why.text, "%s: a sharded checkpoint index, and this "
                     "build's safetensors reader opens single files only (%.300s)", rel, reason);
        }
        k.kind = NMP_BATCH_MATRIX;
        k.error = why.text;
        e = push_all(b, &k);
        goto out;
    }
    double bytes = 0;
    for (int64_t s = 0; s < plan->count; s++) {
        const nmp_space *sp = &plan->spaces[s];
        if (sp->skip)
            continue;
        k.space = sp->name;
        k.index = s;
        k.rows = space_rows(st, sp);
        k.cols = sp->size;
        k.cost = nmp_batch_cost(k.rows, k.cols);
        bytes += 4.0 * (double)k.rows * (double)k.cols;
        NMP_TRY(e, push_all(b, &k));
    }
    if (b->o->write_checkpoints) {
        k.kind = NMP_BATCH_WRITE;
        k.space = NULL;
        k.index = INT64_MAX;
        k.rows = k.cols = 0;
        k.cost = 0.05 + 2 * bytes / 2e8; /* read and write at ~200 MB/s */
        NMP_TRY(e, push_all(b, &k));
    }
out:
    nmp_plan_free(plan);
    nmp_st_close(st);
    return e;
}

static nmp_err list_file(builder *b, const in_file *f, const char *root)
{
    const char *rel = f->kind == IN_MISSING && f->abs[0] != '/' ? f->abs : rel_of(root, f->abs);
    job_key k = { rel, NULL, NULL, f->abs, NMP_BATCH_MATRIX, 0, 0, 0, 0 };
    nmp_msg why = { { 0 } };
    if (f->kind == IN_MISSING) {
        k.error = f->error;
    } else if (f->kind == IN_NPY) {
        const nmp_err e = nmp_npy_read_shape(f->abs, &k.rows, &k.cols, &why);
        if (e == NMP_ERR_NOMEM)
            return e;
        if (e == NMP_OK && k.cols % b->o->nm.m != 0)
            nmp_fail(&why, NMP_ERR_ARG, "%s: %lld columns, not divisible by %d", f->abs,
                     (long long)k.cols, b->o->nm.m);
        if (why.text[0])
            k.error = why.text;
        else
            k.cost = nmp_batch_cost(k.rows, k.cols);
    } else {
        return list_checkpoint(b, f->abs, rel);
    }
    return push_all(b, &k);
}

static int cmp_jobs(const void *pa, const void *pb)
{
    const nmp_batch_job *a = pa, *b = pb;
    int c = nmp_batch_name_cmp(a->rel, b->rel);
    if (c)
        return c;
    if (a->index != b->index)
        return a->index < b->index ? -1 : 1;
    if (a->group != b->group)
        return a->group < b->group ? -1 : 1; /* solver position */
    return strcmp(a->id, b->id);
}

static void job_free(nmp_batch_job *j)
{
    nmp_free(j->id);
    nmp_free(j->path);
    nmp_free(j->rel);
    nmp_free(j->space);
    nmp_free(j->solver);
    nmp_free(j->output);
    nmp_free(j->error);
}

void nmp_batch_list_free(nmp_batch_list *list)
{
    if (!list)
        return;
    for (int64_t k = 0; k < list->count; k++)
        job_free(&list->jobs[k]);
    nmp_free(list->jobs);
    nmp_free(list->root);
    nmp_free(list);
}

nmp_err nmp_batch_list_inputs(const char *const *inputs, int ninputs, const nmp_batch_opts *o,
                              nmp_batch_list **out, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    char exclude[PATH_MAX];
    walker w = { NULL, 0, 0, NULL, msg };
    builder b = { NULL, 0, o };
    *out = NULL;
    if (ninputs < 1 || !o || o->nsolvers < 1)
        return nmp_fail(msg, NMP_ERR_ARG, "batch: no inputs or no solvers");
    if (o->exclude && realpath(o->exclude, exclude))
        w.exclude = exclude;
    for (int k = 0; k < ninputs; k++)
        NMP_TRY(e, add_path(&w, inputs[k], true));
    if (!(b.list = nmp_calloc(1, sizeof *b.list))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    if (!(b.list->root = common_root(&w))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    for (int64_t k = 0; k < w.count; k++)
        NMP_TRY(e, list_file(&b, &w.files[k], b.list->root));
    nmp_batch_list *l = b.list;
    if (l->count)
        qsort(l->jobs, (size_t)l->count, sizeof *l->jobs, cmp_jobs);
    /* groups: a checkpoint's spaces and its write job (per solver) stay together */
    for (int64_t k = 0; k < l->count; k++) {
        nmp_batch_job *j = &l->jobs[k];
        j->group = k;
        if (!o->write_checkpoints || j->kind == NMP_BATCH_MATRIX)
            continue;
        for (int64_t q = k - 1; q >= 0 && strcmp(l->jobs[q].rel, j->rel) == 0; q--)
            if (strcmp(l->jobs[q].solver, j->solver) == 0) {
                j->group = l->jobs[q].group;
                break;
            }
    }
    *out = b.list;
    b.list = NULL;
out:
    nmp_batch_list_free(b.list);
    for (int64_t k = 0; k < w.count; k++) {
        nmp_free(w.files[k].abs);
        nmp_free(w.files[k].error);
    }
    nmp_free(w.files);
    return e;
}

/* ------------------------------------------------------------- sharding */

typedef struct group_cost {
    int64_t first;
    double cost;
} group_cost;

static int cmp_groups(const void *pa, const void *pb)
{
    const group_cost *a = pa, *b = pb;
    if (a->cost != b->cost)
        return a->cost > b->cost ? -1 : 1;
    return a->first < b->first ? -1 : a->first > b->first;
}

/* LPT (longest processing time first): within 4/3 of the best makespan, and deterministic. */
nmp_err nmp_batch_shard(const nmp_batch_list *list, int n, int *shard)
{
    nmp_err e = NMP_OK;
    group_cost *g = NULL;
    double *load = NULL;
    int64_t ng = 0;
    if (n < 1)
        return NMP_ERR_ARG;
    g = nmp_calloc((size_t)list->count + 1, sizeof *g);
    load = nmp_calloc((size_t)n, sizeof *load);
    if (!g || !load) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    for (int64_t k = 0; k < list->count; k++) {
        const nmp_batch_job *j = &list->jobs[k];
        if (j->group == k)
            g[ng++] = (group_cost){ k, 0 };
        for (int64_t q = ng - 1; q >= 0; q--)
            if (g[q].first == j->group) {
                g[q].cost += j->cost;
                break;
            }
    }
    qsort(g, (size_t)ng, sizeof *g, cmp_groups);
    for (int64_t q = 0; q < ng; q++) {
        int best = 0;
        for (int s = 1; s < n; s++)
            if (load[s] < load[best])
                best = s;
        load[best] += g[q].cost;
        g[q].cost = best; /* reuse: the shard of the group */
    }
    for (int64_t k = 0; k < list->count; k++)
        for (int64_t q = 0; q < ng; q++)
            if (g[q].first == list->jobs[k].group) {
                shard[k] = (int)g[q].cost;
                break;
            }
out:
    nmp_free(g);
    nmp_free(load);
    return e;
}

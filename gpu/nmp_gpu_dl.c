/* nmp_gpu_dl.c: finding and loading a GPU library at first use (dlopen), so that a CUDA build
 * links no GPU library and runs every CPU command where none is installed.
 *
 * Search order for one library (first hit wins):
 *   1. the folder the caller names (the CLI's --gpu-libs DIR): DIR/<soname>, DIR/lib/<soname>
 *   2. the library's environment variable (NMP_CUSPARSELT, NMP_CUBLASLT): a file or a folder
 *   3. pip wheels: <site>/<layout>/<soname> for every site-packages folder <site> (the list in
 *      NMP_PYTHON_SITE, colon-separated, when set; else PYTHONPATH's entries, $VIRTUAL_ENV,
 *      $CONDA_PREFIX, the python3 of every PATH folder, ~/.local, the build machine's python3,
 *      /usr/local/lib/python3.X/dist-packages, /usr/lib/python3/dist-packages) and every layout
 *      the library's wheels use (nvidia/cu13/lib, nvidia/cusparselt/lib, nvidia/cublas/lib)
 *   4. the system: dlopen(<soname>) (LD_LIBRARY_PATH, ld.so.cache, /usr/lib, ...), then
 *      $CUDA_HOME/lib64, $CUDA_PATH/lib64 and /usr/local/cuda/lib64
 * A file that exists but fails to load (wrong architecture, missing dependency) is named with
 * dlerror's reason in the message when nothing later in the order loads either. */
#include "nmp_gpu.h"

#include <dlfcn.h>
#include <glob.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef NMP_BUILD_SITE
#define NMP_BUILD_SITE ""
#endif

#define PATH_LEN 4096

/* What one search keeps: the loaded handle and where, or the first file that failed to load. */
typedef struct search {
    const nmp_gpu_lib *lib;
    void *handle;
    char *path;
    size_t len;
    char failed[PATH_LEN + 200]; /* "<file>: <dlerror>" of the first file that would not load */
    int sites;                   /* site-packages folders looked at */
} search;

/* p (PATH_LEN bytes) = the formatted path; 0 when it does not fit (then it is not tried). */
static int path_of(char *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(p, PATH_LEN, fmt, ap);
    va_end(ap);
    return n >= 0 && n < PATH_LEN;
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Tries one file (or a bare soname when bare: the dynamic loader's own search). 1 when loaded. */
static int try_file(search *s, const char *file, int bare)
{
    if (s->handle || !file || !file[0] || (!bare && !is_file(file)))
        return s->handle != NULL;
    void *h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        if (!bare && !s->failed[0])
            snprintf(s->failed, sizeof s->failed, "%s: %s", file, why ? why : "dlopen failed");
        return 0;
    }
    s->handle = h;
    snprintf(s->path, s->len, bare ? "%s (system search path)" : "%s", file);
    return 1;
}

/* A folder: <dir>/<soname>, then <dir>/lib/<soname>. */
static int try_dir(search *s, const char *dir)
{
    char p[PATH_LEN];
    if (!dir || !dir[0])
        return 0;
    if (path_of(p, "%s/%s", dir, s->lib->soname) && try_file(s, p, 0))
        return 1;
    return path_of(p, "%s/lib/%s", dir, s->lib->soname) && try_file(s, p, 0);
}

/* A file or a folder. */
static int try_path(search *s, const char *path)
{
    if (!path || !path[0])
        return 0;
    return is_dir(path) ? try_dir(s, path) : try_file(s, path, 0);
}

/* One site-packages folder: every wheel layout of the library in it. */
static int try_site(search *s, const char *site)
{
    char p[PATH_LEN];
    if (!site || !site[0] || !is_dir(site))
        return 0;
    s->sites++;
    for (const char *const *l = s->lib->layouts; *l; l++) {
        if (path_of(p, "%s/%s/%s", site, *l, s->lib->soname) && try_file(s, p, 0))
            return 1;
    }
    return 0;
}

/* Every folder matching a glob pattern, as site-packages. */
static int try_site_glob(search *s, const char *pattern)
{
    glob_t g;
    int hit = 0;
    if (glob(pattern, 0, NULL, &g) != 0)
        return 0;
    for (size_t k = 0; k < g.gl_pathc && !hit; k++)
        hit = try_site(s, g.gl_pathv[k]);
    globfree(&g);
    return hit;
}

/* Every entry of a colon-separated list, through fn. */
static int try_list(search *s, const char *list, int (*fn)(search *, const char *))
{
    char entry[PATH_LEN];
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ':');
        const size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > 0 && n < sizeof entry) {
            memcpy(entry, p, n);
            entry[n] = '\0';
            if (fn(s, entry))
                return 1;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}

/* <prefix>/lib/python3*[/site-packages] under a prefix (virtualenv, conda, ~/.local). */
static int try_prefix(search *s, const char *prefix)
{
    char p[PATH_LEN];
    if (!prefix || !prefix[0])
        return 0;
    return path_of(p, "%s/lib/python3*/site-packages", prefix) && try_site_glob(s, p);
}

/* PATH folder with a python3 in it: its prefix (<dir>/..). */
static int try_bin(search *s, const char *bin)
{
    char p[PATH_LEN];
    if (!path_of(p, "%s/python3", bin) || !is_file(p) || !path_of(p, "%s/..", bin))
        return 0;
    return try_prefix(s, p);
}

static int try_sites(search *s)
{
    const char *only = getenv("NMP_PYTHON_SITE");
    char p[PATH_LEN];
    if (only) /* set (even empty): exactly these folders */
        return try_list(s, only, try_site);
    if (try_list(s, getenv("PYTHONPATH"), try_site) || try_prefix(s, getenv("VIRTUAL_ENV")) ||
        try_prefix(s, getenv("CONDA_PREFIX")) || try_list(s, getenv("PATH"), try_bin))
        return 1;
    const char *home = getenv("HOME");
    if (home && home[0]) {
        if (path_of(p, "%s/.local", home) && try_prefix(s, p))
            return 1;
    }
    return try_list(s, NMP_BUILD_SITE, try_site) ||
           try_site_glob(s, "/usr/local/lib/python3*/dist-packages") ||
           try_site_glob(s, "/usr/local/lib/python3*/site-packages") ||
           try_site(s, "/usr/lib/python3/dist-packages");
}

static int try_system(search *s)
{
    char p[PATH_LEN];
    if (try_file(s, s->lib->soname, 1))
        return 1;
    const char *vars[] = { "CUDA_HOME", "CUDA_PATH" };
    for (size_t k = 0; k < sizeof vars / sizeof vars[0]; k++) {
        const char *v = getenv(vars[k]);
        if (v && v[0]) {
            if (path_of(p, "%s/lib64", v) && try_dir(s, p))
                return 1;
        }
    }
    return try_dir(s, "/usr/local/cuda/lib64");
}

void *nmp_gpu_dl_open(const nmp_gpu_lib *lib, const char *dir, char *path, size_t len,
                      nmp_msg *msg)
{
    char where[PATH_LEN];
    search s;
    memset(&s, 0, sizeof s);
    s.lib = lib;
    s.path = path ? path : where;
    s.len = path ? len : sizeof where;
    if (try_path(&s, dir) || try_path(&s, getenv(lib->env)) || try_sites(&s) || try_system(&s))
        return s.handle;
    if (s.failed[0])
        nmp_fail(msg, NMP_ERR_UNSUPPORTED, "%s (%s) would not load: %s; install it with 'pip "
                 "install %s' or name its folder with --gpu-libs or %s", lib->what, lib->soname,
                 s.failed, lib->wheel, lib->env);
    else
        nmp_fail(msg, NMP_ERR_UNSUPPORTED, "%s (%s) not found (searched --gpu-libs, $%s, %d "
                 "site-packages folders, the system paths and /usr/local/cuda/lib64): install it "
                 "with 'pip install %s' or name its folder with --gpu-libs or %s", lib->what,
                 lib->soname, lib->env, s.sites, lib->wheel, lib->env);
    return NULL;
}

void *nmp_gpu_dl_sym(void *handle, const char *name)
{
    return handle ? dlsym(handle, name) : NULL;
}

/* nmp_cli.c: the nmperm command line: score, solve, solvers, gen; the only place that prints */
#include "nmperm.h"

#include <jansson.h>

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Exit codes: 0 ok, 1 bad input or usage, 2 internal error. */
enum { EXIT_USAGE = 1, EXIT_INTERNAL = 2 };

/* ------------------------------------------------------------ help texts */

static const char help_main[] =
    "usage: nmperm <command> [options]\n"
    "\n"
    "Find column permutations of a weight matrix that keep more saliency under N:M sparsity.\n"
    "\n"
    "commands:\n"
    "  score     scores of a matrix: unpruned total, identity, row bound, a permutation's kept\n"
    "  solve     search for a good permutation with a solver\n"
    "  solvers   list the solvers and their parameters\n"
    "  gen       write a deterministic random test matrix\n"
    "\n"
    "  -h, --help      this text ('nmperm <command> --help' for a command)\n"
    "      --version   print the version\n"
    "\n"
    "exit codes: 0 ok, 1 bad input or usage, 2 internal error\n";

#define HELP_PROBLEM                                                                               \
    "  --nm N:M              sparsity pattern, keep N of every M columns (default 2:4)\n"          \
    "  --objective OBJ       abs (|w|, default), sq (w^2), importance (|w| * x[col]),\n"           \
    "                        saliency (a given matrix)\n"                                          \
    "  --importance X.npy    1-D per-column importance x for --objective importance\n"             \
    "  --saliency S.npy      saliency matrix of W's shape for --objective saliency\n"

static const char help_score[] =
    "usage: nmperm score W.npy [--perm P.npy] [options]\n"
    "\n"
    "Prints the unpruned total, the kept score of the identity, the row bound (each row keeps its\n"
    "best cols*N/M values: unstructured pruning at the same density), and with --perm the kept\n"
    "score of P and its efficacy = (kept - identity) / (row bound - identity).\n"
    "\n"
    "options:\n"
    "  --perm P.npy          a 1-D integer permutation, P[k] = source column at slot k\n"
    HELP_PROBLEM
    "  --json                print one JSON object instead of text\n"
    "  -h, --help            this text\n"
    "      --version         print the version\n";

static const char help_solve[] =
    "usage: nmperm solve W.npy [--solver NAME] [options]\n"
    "\n"
    "Searches for a permutation of W's columns that maximises the kept score and prints a summary.\n"
    "Ctrl-C stops the search early; the best permutation so far is still reported and written.\n"
    "\n"
    "options:\n"
    "  --solver NAME         solver ('nmperm solvers' lists them; default auto, else swap)\n"
    "  --param KEY=VALUE     a solver parameter (repeatable)\n"
    "  --time-limit S        stop after S seconds (0: none, the default)\n"
    "  --seed N              seed of all randomness (default 0)\n"
    "  --threads T           threads (0: the OpenMP default)\n"
    "  --start P.npy         start from this permutation instead of the identity\n"
    "  -o, --output P.npy    write the permutation (int64, 1-D) here, atomically\n"
    HELP_PROBLEM
    "  --json                print one JSON object (with the permutation) instead of text\n"
    "  --quiet               no progress line and no text summary\n"
    "  -h, --help            this text\n"
    "      --version         print the version\n";

static const char help_solvers[] =
    "usage: nmperm solvers [--json]\n"
    "\n"
    "Lists every solver in this build with its parameters: default and range.\n"
    "\n"
    "options:\n"
    "  --json                print one JSON object instead of text\n"
    "  -h, --help            this text\n"
    "      --version         print the version\n";

static const char help_gen[] =
    "usage: nmperm gen -o W.npy --rows R --cols C [--dist absnormal|uniform] [--seed N]\n"
    "       nmperm gen -o W.npy --rows R --cols C --numpy-legacy-rand [--seed N]\n"
    "\n"
    "Writes a float32 R x C matrix; the same arguments give the same file on any machine.\n"
    "\n"
    "options:\n"
    "  -o, --output W.npy    output file (written atomically)\n"
    "  --rows R, --cols C    shape\n"
    "  --dist D              absnormal: |N(0, 1)| (default); uniform: U[0, 1)\n"
    "  --seed N              seed (default 0)\n"
    "  --numpy-legacy-rand   NumPy's legacy stream: np.random.seed(N); np.random.rand(R, C),\n"
    "                        rounded to float32 (N < 2^32)\n"
    "  -h, --help            this text\n"
    "      --version         print the version\n";

/* --------------------------------------------------------------- errors */

/* The one map from library errors to exit codes. */
static int exit_code(nmp_err e)
{
    switch (e) {
    case NMP_OK: return 0;
    case NMP_ERR_ARG:
    case NMP_ERR_IO:
    case NMP_ERR_FORMAT:
    case NMP_ERR_UNSUPPORTED: return EXIT_USAGE;
    case NMP_ERR_NOMEM:
    case NMP_ERR_LP:
    case NMP_ERR_GPU:
    case NMP_ERR_INTERNAL: break;
    }
    return EXIT_INTERNAL;
}

/* Prints text on one line: control characters become spaces. */
static void put_line(const char *text)
{
    for (const char *p = text; *p; p++)
        fputc((unsigned char)*p < 0x20 ? ' ' : *p, stderr);
}

/* "nmperm: <what>: <reason>" for a failed library call about `what` (a file); the library's
 * message is used as it is when it already starts with the file name. Returns the exit code. */
static int fail_lib(nmp_err e, const char *what, const nmp_msg *msg)
{
    const char *text = msg && msg->text[0] ? msg->text : nmp_err_str(e);
    const size_t len = strlen(what);
    fputs("nmperm: ", stderr);
    if (!(strncmp(text, what, len) == 0 && text[len] == ':')) {
        put_line(what);
        fputs(": ", stderr);
    }
    put_line(text);
    fputc('\n', stderr);
    return exit_code(e);
}

/* "nmperm: <what>: <reason>" with a formatted reason; returns code. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int fail(int code, const char *what, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fputs("nmperm: ", stderr);
    put_line(what);
    fputs(": ", stderr);
    put_line(text);
    fputc('\n', stderr);
    return code;
}

/* ------------------------------------------------------ argument parsing */

/* The arguments of one subcommand and a cursor over them. */
typedef struct cli_args {
    int argc;
    char **argv;
    int k;          /* index of the argument being looked at */
    const char *cmd;
    bool bad;       /* a usage error was printed */
} cli_args;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void usage_error(cli_args *c, const char *fmt, ...)
{
    char text[1024], hint[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    snprintf(hint, sizeof hint, " (see 'nmperm %s --help')", c->cmd);
    if (strstr(text, "(see '"))
        hint[0] = '\0';
    fail(EXIT_USAGE, c->cmd, "%s%s", text, hint);
    c->bad = true;
}

/* True when the current argument is option `name` (long "--name" or "--name=VALUE", or the short
 * form `alias` when given); its value, from after '=' or the next argument, goes to *val. */
static bool take(cli_args *c, const char *name, const char *alias, const char **val)
{
    const char *a = c->argv[c->k];
    const size_t len = strlen(name);
    *val = NULL;
    if (strncmp(a, name, len) == 0 && a[len] == '=') {
        *val = a + len + 1;
        return true;
    }
    if (strcmp(a, name) != 0 && !(alias && strcmp(a, alias) == 0))
        return false;
    if (c->k + 1 >= c->argc) {
        usage_error(c, "option %s needs a value", a);
        return true;
    }
    *val = c->argv[++c->k];
    return true;
}

static bool is_flag(const cli_args *c, const char *name)
{
    return strcmp(c->argv[c->k], name) == 0;
}

static bool parse_i64(cli_args *c, const char *opt, const char *s, int64_t lo, int64_t hi,
                      int64_t *out)
{
    char *end = NULL;
    errno = 0;
    const long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || end == s || *end != '\0' || errno || v < lo || v > hi) {
        usage_error(c, "%s '%s': expected an integer in [%lld, %lld]", opt, s ? s : "",
                    (long long)lo, (long long)hi);
        return false;
    }
    *out = v;
    return true;
}

static bool parse_u64(cli_args *c, const char *opt, const char *s, uint64_t hi, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    const unsigned long long v = s && *s != '-' ? strtoull(s, &end, 10) : 0;
    if (!s || *s == '-' || end == s || *end != '\0' || errno || v > hi) {
        usage_error(c, "%s '%s': expected an integer in [0, %llu]", opt, s ? s : "",
                    (unsigned long long)hi);
        return false;
    }
    *out = v;
    return true;
}

static bool parse_seconds(cli_args *c, const char *opt, const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    const double v = s ? strtod(s, &end) : 0;
    if (!s || end == s || *end != '\0' || errno || !isfinite(v) || v < 0) {
        usage_error(c, "%s '%s': expected a number of seconds >= 0", opt, s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

/* Prints help or the version when any argument asks for it (before other errors are seen);
 * returns true when it did. */
static bool help_or_version(const cli_args *c, const char *help)
{
    for (int k = 2; k < c->argc; k++) {
        if (strcmp(c->argv[k], "-h") == 0 || strcmp(c->argv[k], "--help") == 0) {
            fputs(help, stdout);
            return true;
        }
        if (strcmp(c->argv[k], "--version") == 0) {
            printf("nmperm %s\n", nmp_version());
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------ problem loading */

/* Options shared by score and solve. */
typedef struct problem_opts {
    const char *input;
    const char *importance_path, *saliency_path;
    nmp_pattern nm;
    nmp_objective objective;
    bool objective_set;
} problem_opts;

/* A loaded problem and the arrays it was built from. */
typedef struct loaded {
    nmp_array w, sal;
    float *importance;
    nmp_problem *pb;
} loaded;

static void loaded_free(loaded *ld)
{
    nmp_problem_free(ld->pb);
    nmp_array_free(&ld->w);
    nmp_array_free(&ld->sal);
    nmp_free(ld->importance);
    memset(ld, 0, sizeof *ld);
}

/* Parses --nm, --objective, --importance, --saliency; true when the argument was one of them. */
static bool take_problem_opt(cli_args *c, problem_opts *po)
{
    const char *v = NULL;
    nmp_msg msg = { { 0 } };
    if (take(c, "--nm", NULL, &v)) {
        if (v && nmp_pattern_parse(v, &po->nm, &msg) != NMP_OK)
            usage_error(c, "--nm: %s", msg.text);
    } else if (take(c, "--objective", NULL, &v)) {
        if (v && nmp_objective_parse(v, &po->objective) != NMP_OK)
            usage_error(c, "--objective '%s': expected abs, sq, importance or saliency", v);
        po->objective_set = true;
    } else if (take(c, "--importance", NULL, &v)) {
        po->importance_path = v;
    } else if (take(c, "--saliency", NULL, &v)) {
        po->saliency_path = v;
    } else {
        return false;
    }
    return true;
}

/* Fills in the objective implied by --importance / --saliency and checks the combination. */
static void check_problem_opts(cli_args *c, problem_opts *po)
{
    if (!po->objective_set && po->importance_path && !po->saliency_path)
        po->objective = NMP_OBJ_IMPORTANCE;
    if (!po->objective_set && po->saliency_path && !po->importance_path)
        po->objective = NMP_OBJ_SALIENCY;
    if (po->objective == NMP_OBJ_IMPORTANCE && !po->importance_path)
        usage_error(c, "--objective importance needs --importance X.npy");
    else if (po->objective == NMP_OBJ_SALIENCY && !po->saliency_path)
        usage_error(c, "--objective saliency needs --saliency S.npy");
    else if (po->importance_path && po->objective != NMP_OBJ_IMPORTANCE)
        usage_error(c, "--importance is only used with --objective importance");
    else if (po->saliency_path && po->objective != NMP_OBJ_SALIENCY)
        usage_error(c, "--saliency is only used with --objective saliency");
    if (!po->input && !c->bad)
        usage_error(c, "missing the input matrix W.npy");
}

/* Reads the files and builds the problem; on failure prints one line and returns the exit code.
 * Each message names the file it is about. */
static int load_problem(const problem_opts *po, loaded *ld)
{
    nmp_err e = NMP_OK;
    nmp_msg msg = { { 0 } };
    memset(ld, 0, sizeof *ld);
    if ((e = nmp_npy_read_matrix(po->input, &ld->w, &msg)) != NMP_OK)
        return fail_lib(e, po->input, &msg);
    nmp_matrix w = nmp_array_view(&ld->w);
    if ((e = nmp_matrix_check(&w, &msg)) != NMP_OK)
        return fail_lib(e, po->input, &msg);
    nmp_problem_desc d = { w, po->nm, po->objective, NULL, { 0 } };
    const char *blame = po->input; /* the file a problem error is about */
    if (po->objective == NMP_OBJ_IMPORTANCE) {
        int64_t len = 0;
        if ((e = nmp_npy_read_vector(po->importance_path, &ld->importance, &len, &msg)) != NMP_OK)
            return fail_lib(e, po->importance_path, &msg);
        if (len != w.cols)
            return fail(EXIT_USAGE, po->importance_path, "%lld values, expected %lld (the "
                        "columns of %s)", (long long)len, (long long)w.cols, po->input);
        d.importance = ld->importance;
        for (int64_t i = 0; i < len; i++)
            if (!isfinite(ld->importance[i]) || ld->importance[i] < 0)
                return fail(EXIT_USAGE, po->importance_path, "value %lld is %g, expected a "
                            "finite value >= 0", (long long)i, (double)ld->importance[i]);
    } else if (po->objective == NMP_OBJ_SALIENCY) {
        if ((e = nmp_npy_read_matrix(po->saliency_path, &ld->sal, &msg)) != NMP_OK)
            return fail_lib(e, po->saliency_path, &msg);
        d.saliency = nmp_array_view(&ld->sal);
        if (ld->sal.rows != w.rows || ld->sal.cols != w.cols)
            return fail(EXIT_USAGE, po->saliency_path, "%lld x %lld, expected %lld x %lld (the "
                        "shape of %s)", (long long)ld->sal.rows, (long long)ld->sal.cols,
                        (long long)w.rows, (long long)w.cols, po->input);
        if ((e = nmp_matrix_check(&d.saliency, &msg)) != NMP_OK)
            return fail_lib(e, po->saliency_path, &msg);
        if (w.cols % po->nm.m == 0)
            blame = po->saliency_path; /* then only its values can be wrong */
    }
    if ((e = nmp_problem_create(&d, &ld->pb, &msg)) != NMP_OK)
        return fail_lib(e, blame, &msg);
    return 0;
}

/* Reads a permutation file for a problem of `cols` columns and validates it. */
static int load_perm(const char *path, const char *input, int64_t cols, int32_t **out)
{
    nmp_msg msg = { { 0 } };
    int64_t len = 0;
    const nmp_err e = nmp_npy_read_perm(path, out, &len, &msg);
    if (e != NMP_OK)
        return fail_lib(e, path, &msg);
    if (len != cols)
        return fail(EXIT_USAGE, path, "%lld entries, expected %lld (the columns of %s)",
                    (long long)len, (long long)cols, input);
    if (!nmp_perm_is_valid(*out, len))
        return fail(EXIT_USAGE, path, "not a permutation of 0..%lld (an entry is out of range "
                    "or repeated)", (long long)cols - 1);
    return 0;
}

/* Fails early when path's folder cannot take a new file, so a long solve is not wasted. */
static int check_writable(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!*path)
        return fail(EXIT_USAGE, "-o", "empty output path");
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (slash && !slash[1])
        return fail(EXIT_USAGE, path, "is a folder, expected a file name");
    struct stat st;
    if (stat(dir, &st) != 0)
        return fail(EXIT_USAGE, path, "cannot write: %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return fail(EXIT_USAGE, path, "cannot write: %s is not a folder", dir);
    if (access(dir, W_OK | X_OK) != 0)
        return fail(EXIT_USAGE, path, "cannot write: %s: %s", dir, strerror(errno));
    return 0;
}

/* -------------------------------------------------------- JSON helpers */

static void jset(json_t *o, const char *key, json_t *v)
{
    json_object_set_new(o, key, v ? v : json_null());
}

static json_t *jnum(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

static int print_json(json_t *root)
{
    int rc = 0;
    char *text = json_dumps(root, JSON_REAL_PRECISION(12) | JSON_PRESERVE_ORDER);
    if (!text)
        rc = fail(EXIT_INTERNAL, "json", "out of memory");
    else
        printf("%s\n", text);
    free(text);
    json_decref(root);
    return rc;
}

/* Fields of score and solve: shape, pattern, objective and the fixed scores. */
static void json_problem(json_t *o, const char *input, const nmp_problem *pb)
{
    const nmp_pattern nm = nmp_problem_pattern(pb);
    char nmtext[32];
    snprintf(nmtext, sizeof nmtext, "%d:%d", nm.n, nm.m);
    jset(o, "file", json_string(input));
    jset(o, "rows", json_integer(nmp_problem_rows(pb)));
    jset(o, "cols", json_integer(nmp_problem_cols(pb)));
    jset(o, "nm", json_string(nmtext));
    jset(o, "objective", json_string(nmp_objective_name(nmp_problem_objective(pb))));
    jset(o, "total", jnum(nmp_score_total(pb)));
    jset(o, "identity", jnum(nmp_score_identity(pb)));
    jset(o, "row_bound", jnum(nmp_score_row_bound(pb)));
}

static double gain_pct(const nmp_problem *pb, double kept)
{
    const double id = nmp_score_identity(pb);
    return id > 0 ? 100.0 * (kept - id) / id : 0.0;
}

static void text_problem(const char *input, const nmp_problem *pb)
{
    const nmp_pattern nm = nmp_problem_pattern(pb);
    printf("file        %s\n", input);
    printf("shape       %lld x %lld, N:M %d:%d (%lld groups)\n",
           (long long)nmp_problem_rows(pb), (long long)nmp_problem_cols(pb), nm.n, nm.m,
           (long long)nmp_problem_groups(pb));
    printf("objective   %s\n", nmp_objective_name(nmp_problem_objective(pb)));
}

/* --------------------------------------------------------------- score */

static int cmd_score(cli_args *c)
{
    if (help_or_version(c, help_score))
        return 0;
    problem_opts po = { NULL, NULL, NULL, { 2, 4 }, NMP_OBJ_ABS, false };
    const char *perm_path = NULL, *v = NULL;
    bool json = false;
    for (c->k = 2; c->k < c->argc && !c->bad; c->k++) {
        const char *a = c->argv[c->k];
        if (is_flag(c, "--json")) {
            json = true;
        } else if (take(c, "--perm", NULL, &v)) {
            perm_path = v;
        } else if (take_problem_opt(c, &po)) {
        } else if (a[0] == '-' && a[1]) {
            usage_error(c, "unknown option '%s'", a);
        } else if (po.input) {
            usage_error(c, "more than one input file ('%s', '%s')", po.input, a);
        } else {
            po.input = a;
        }
    }
    if (!c->bad)
        check_problem_opts(c, &po);
    if (c->bad)
        return EXIT_USAGE;

    loaded ld;
    int32_t *perm = NULL;
    int rc = load_problem(&po, &ld);
    if (rc == 0 && perm_path)
        rc = load_perm(perm_path, po.input, ld.w.cols, &perm);
    if (rc == 0) {
        const nmp_problem *pb = ld.pb;
        double kept = nmp_score_identity(pb);
        const nmp_err e = perm ? nmp_score(pb, perm, &kept) : NMP_OK;
        if (e != NMP_OK) {
            rc = fail_lib(e, po.input, NULL);
        } else if (json) {
            json_t *o = json_object();
            json_problem(o, po.input, pb);
            jset(o, "perm", perm_path ? json_string(perm_path) : json_null());
            jset(o, "kept", jnum(kept));
            jset(o, "gain_pct", jnum(gain_pct(pb, kept)));
            jset(o, "efficacy_pct", jnum(100.0 * nmp_score_efficacy(pb, kept)));
            rc = print_json(o);
        } else {
            text_problem(po.input, pb);
            printf("total       %.4f   (unpruned)\n", nmp_score_total(pb));
            printf("identity    %.4f\n", nmp_score_identity(pb));
            printf("row bound   %.4f   (unstructured pruning, same density)\n",
                   nmp_score_row_bound(pb));
            printf("kept        %.4f   (%s)\n", kept, perm_path ? perm_path : "identity");
            printf("gain        %+.3f%% over identity\n", gain_pct(pb, kept));
            printf("efficacy    %.2f%%\n", 100.0 * nmp_score_efficacy(pb, kept));
        }
    }
    nmp_free(perm);
    loaded_free(&ld);
    return rc;
}

/* --------------------------------------------------------------- solve */

static volatile sig_atomic_t interrupted;

/* First Ctrl-C: ask the solver to stop (SA_RESETHAND makes a second one end the process). */
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct progress_line {
    bool show;   /* stderr is a terminal and not --quiet */
    int width;   /* length of the line on screen */
} progress_line;

/* One updating line on the terminal; returns nonzero after Ctrl-C so the solver stops. */
static int on_progress(const nmp_progress *p, void *user)
{
    progress_line *pl = user;
    if (pl->show) {
        char line[200];
        int len = snprintf(line, sizeof line, "%9.1fs  iter %lld  best %.4f  bound %.4f  %s%s",
                           p->elapsed, (long long)p->iteration, p->best, p->bound,
                           p->phase ? p->phase : "", interrupted ? "  (stopping)" : "");
        len = len < 0 ? 0 : len >= (int)sizeof line ? (int)sizeof line - 1 : len;
        fprintf(stderr, "\r%s%*s", line, pl->width > len ? pl->width - len : 0, "");
        fflush(stderr);
        pl->width = len;
    }
    return interrupted ? 1 : 0;
}

static void progress_clear(progress_line *pl)
{
    if (pl->width > 0) {
        fprintf(stderr, "\r%*s\r", pl->width, "");
        fflush(stderr);
    }
    pl->width = 0;
}

typedef struct solve_opts {
    problem_opts po;
    const char *solver, *start_path, *out_path;
    nmp_params par;
    bool json, quiet;
} solve_opts;

static void parse_solve(cli_args *c, solve_opts *o)
{
    const char *v = NULL;
    nmp_msg msg = { { 0 } };
    for (c->k = 2; c->k < c->argc && !c->bad; c->k++) {
        const char *a = c->argv[c->k];
        if (is_flag(c, "--json")) {
            o->json = true;
        } else if (is_flag(c, "--quiet")) {
            o->quiet = true;
        } else if (take(c, "--solver", NULL, &v)) {
            o->solver = v;
        } else if (take(c, "--param", NULL, &v)) {
            if (v && nmp_params_parse(&o->par, v, &msg) != NMP_OK)
                usage_error(c, "--param: %s", msg.text);
        } else if (take(c, "--time-limit", NULL, &v)) {
            parse_seconds(c, "--time-limit", v, &o->par.time_limit);
        } else if (take(c, "--seed", NULL, &v)) {
            parse_u64(c, "--seed", v, UINT64_MAX, &o->par.seed);
        } else if (take(c, "--threads", NULL, &v)) {
            int64_t t = 0;
            if (parse_i64(c, "--threads", v, 0, 4096, &t))
                o->par.threads = (int)t;
        } else if (take(c, "--start", NULL, &v)) {
            o->start_path = v;
        } else if (take(c, "--output", "-o", &v)) {
            o->out_path = v;
        } else if (take_problem_opt(c, &o->po)) {
        } else if (a[0] == '-' && a[1]) {
            usage_error(c, "unknown option '%s'", a);
        } else if (o->po.input) {
            usage_error(c, "more than one input file ('%s', '%s')", o->po.input, a);
        } else {
            o->po.input = a;
        }
    }
    if (!c->bad)
        check_problem_opts(c, &o->po);
    if (c->bad)
        return;
    if (!o->solver)
        o->solver = nmp_solver_find("auto") ? "auto" : "swap";
    const nmp_solver_ops *ops = nmp_solver_find(o->solver);
    if (!ops)
        usage_error(c, "unknown solver '%s' (see 'nmperm solvers')", o->solver);
    else if (nmp_params_check(&o->par, ops, &msg) != NMP_OK)
        usage_error(c, "%s", msg.text);
}

/* The solver's parameters with the values in effect, as JSON or one text line. */
static json_t *json_params(const nmp_solver_ops *ops, const nmp_params *par)
{
    json_t *o = json_object();
    for (const nmp_param_desc *d = ops->params; d && d->name; d++)
        jset(o, d->name, jnum(nmp_param_get(par, ops->params, d->name)));
    return o;
}

static void report_solve(const solve_opts *o, const nmp_problem *pb, const int32_t *perm,
                         const nmp_result *res)
{
    const nmp_solver_ops *ops = nmp_solver_find(o->solver);
    const double row_bound = nmp_score_row_bound(pb);
    const bool has_bound = res->bound < row_bound;
    const double gap = res->score > 0 ? 100.0 * (res->bound - res->score) / res->score : 0.0;
    const int64_t cols = nmp_problem_cols(pb);
    if (o->json) {
        json_t *j = json_object();
        jset(j, "solver", json_string(o->solver));
        json_problem(j, o->po.input, pb);
        jset(j, "start", jnum(res->start_score));
        jset(j, "kept", jnum(res->score));
        jset(j, "gain_pct", jnum(gain_pct(pb, res->score)));
        jset(j, "efficacy_pct", jnum(100.0 * nmp_score_efficacy(pb, res->score)));
        jset(j, "bound", jnum(res->bound));
        jset(j, "gap_pct", jnum(gap));
        jset(j, "status", json_string(nmp_status_str(res->status)));
        jset(j, "seconds", jnum(res->seconds));
        jset(j, "iterations", json_integer(res->iterations));
        jset(j, "nodes", json_integer(res->nodes));
        jset(j, "seed", json_integer((json_int_t)o->par.seed));
        jset(j, "time_limit", jnum(o->par.time_limit));
        jset(j, "threads", json_integer(o->par.threads));
        jset(j, "params", json_params(ops, &o->par));
        jset(j, "output", o->out_path ? json_string(o->out_path) : json_null());
        json_t *p = json_array();
        for (int64_t k = 0; k < cols; k++)
            json_array_append_new(p, json_integer(perm[k]));
        jset(j, "perm", p);
        print_json(j);
        return;
    }
    if (o->quiet)
        return;
    printf("solver      %s", o->solver);
    for (const nmp_param_desc *d = ops->params; d && d->name; d++)
        printf("%s%s=%g", d == ops->params ? "  (" : ", ", d->name,
               nmp_param_get(&o->par, ops->params, d->name));
    printf("%s\n", ops->params && ops->params->name ? ")" : "");
    text_problem(o->po.input, pb);
    printf("identity    %.4f\n", nmp_score_identity(pb));
    if (o->start_path)
        printf("start       %.4f   (%s)\n", res->start_score, o->start_path);
    printf("kept        %.4f   (%+.3f%% over identity)\n", res->score,
           gain_pct(pb, res->score));
    printf("row bound   %.4f\n", row_bound);
    printf("efficacy    %.2f%%\n", 100.0 * nmp_score_efficacy(pb, res->score));
    if (has_bound)
        printf("bound       %.4f   (gap %.4f%%)\n", res->bound, gap);
    printf("time        %.3f s   (%lld iterations", res->seconds, (long long)res->iterations);
    if (res->nodes)
        printf(", %lld nodes", (long long)res->nodes);
    printf(")\n");
    printf("status      %s\n", nmp_status_str(res->status));
    if (o->out_path)
        printf("written     %s\n", o->out_path);
}

static int cmd_solve(cli_args *c)
{
    solve_opts o;
    memset(&o, 0, sizeof o);
    o.po.nm = (nmp_pattern){ 2, 4 };
    o.po.objective = NMP_OBJ_ABS;
    nmp_params_init(&o.par);
    if (help_or_version(c, help_solve))
        return 0;
    parse_solve(c, &o);
    if (c->bad)
        return EXIT_USAGE;
    if (o.out_path) {
        const int rc = check_writable(o.out_path);
        if (rc)
            return rc;
    }

    loaded ld;
    int32_t *perm = NULL;
    nmp_msg msg = { { 0 } };
    nmp_result res;
    memset(&res, 0, sizeof res);
    int rc = load_problem(&o.po, &ld);
    const int64_t cols = ld.w.cols;
    if (rc == 0 && o.start_path)
        rc = load_perm(o.start_path, o.po.input, cols, &perm);
    if (rc == 0 && !perm && !(perm = nmp_malloc((size_t)cols * sizeof *perm)))
        rc = fail_lib(NMP_ERR_NOMEM, o.po.input, NULL);
    if (rc == 0) {
        progress_line pl = { isatty(STDERR_FILENO) && !o.quiet, 0 };
        struct sigaction sa, old;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigint;
        sa.sa_flags = (int)SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old);
        o.par.progress = on_progress;
        o.par.progress_user = &pl;
        const nmp_err e = nmp_solve(ld.pb, o.solver, &o.par, perm, !o.start_path, &res, &msg);
        sigaction(SIGINT, &old, NULL);
        progress_clear(&pl);
        if (e != NMP_OK)
            rc = fail_lib(e, o.po.input, &msg);
    }
    if (rc == 0 && o.out_path) {
        const nmp_err e = nmp_npy_write_perm(o.out_path, perm, cols, &msg);
        if (e != NMP_OK)
            rc = fail_lib(e, o.out_path, &msg);
    }
    if (rc == 0)
        report_solve(&o, ld.pb, perm, &res);
    nmp_free(perm);
    loaded_free(&ld);
    return rc;
}

/* ------------------------------------------------------------- solvers */

static int cmd_solvers(cli_args *c)
{
    if (help_or_version(c, help_solvers))
        return 0;
    bool json = false;
    for (c->k = 2; c->k < c->argc && !c->bad; c->k++) {
        if (is_flag(c, "--json")) {
            json = true;
        } else {
            usage_error(c, "unexpected argument '%s'", c->argv[c->k]);
        }
    }
    if (c->bad)
        return EXIT_USAGE;
    const nmp_solver_ops *const *list = nmp_solver_list();
    if (json) {
        json_t *arr = json_array();
        for (const nmp_solver_ops *const *s = list; *s; s++) {
            json_t *o = json_object(), *params = json_array();
            jset(o, "name", json_string((*s)->name));
            jset(o, "summary", json_string((*s)->summary));
            for (const nmp_param_desc *d = (*s)->params; d && d->name; d++) {
                json_t *p = json_object();
                jset(p, "name", json_string(d->name));
                jset(p, "default", jnum(d->def));
                jset(p, "min", jnum(d->lo));
                jset(p, "max", jnum(d->hi));
                jset(p, "help", json_string(d->help ? d->help : ""));
                json_array_append_new(params, p);
            }
            jset(o, "params", params);
            json_array_append_new(arr, o);
        }
        json_t *root = json_object();
        jset(root, "solvers", arr);
        return print_json(root);
    }
    for (const nmp_solver_ops *const *s = list; *s; s++) {
        printf("%-12s %s\n", (*s)->name, (*s)->summary);
        for (const nmp_param_desc *d = (*s)->params; d && d->name; d++)
            printf("    %-16s default %-10g range [%g, %g]  %s\n", d->name, d->def, d->lo, d->hi,
                   d->help ? d->help : "");
    }
    printf("\nset a parameter with: nmperm solve W.npy --solver NAME --param KEY=VALUE\n");
    return 0;
}

/* ----------------------------------------------------------------- gen */

static int cmd_gen(cli_args *c)
{
    if (help_or_version(c, help_gen))
        return 0;
    const char *out = NULL, *dist = "absnormal", *v = NULL;
    int64_t rows = 0, cols = 0;
    uint64_t seed = 0;
    bool legacy = false, dist_set = false;
    for (c->k = 2; c->k < c->argc && !c->bad; c->k++) {
        const char *a = c->argv[c->k];
        if (is_flag(c, "--numpy-legacy-rand")) {
            legacy = true;
        } else if (take(c, "--output", "-o", &v)) {
            out = v;
        } else if (take(c, "--rows", NULL, &v)) {
            parse_i64(c, "--rows", v, 1, INT32_MAX, &rows);
        } else if (take(c, "--cols", NULL, &v)) {
            parse_i64(c, "--cols", v, 1, INT32_MAX, &cols);
        } else if (take(c, "--seed", NULL, &v)) {
            parse_u64(c, "--seed", v, UINT64_MAX, &seed);
        } else if (take(c, "--dist", NULL, &v)) {
            dist = v;
            dist_set = true;
            if (v && strcmp(v, "absnormal") != 0 && strcmp(v, "uniform") != 0)
                usage_error(c, "--dist '%s': expected absnormal or uniform", v);
        } else {
            usage_error(c, "unexpected argument '%s'", a);
        }
    }
    if (!c->bad && (!out || !rows || !cols))
        usage_error(c, "needs -o FILE, --rows R and --cols C");
    if (!c->bad && legacy && dist_set)
        usage_error(c, "--numpy-legacy-rand and --dist exclude each other");
    if (!c->bad && legacy && seed > UINT32_MAX)
        usage_error(c, "--seed %llu: NumPy's legacy seed must be below 2^32",
                    (unsigned long long)seed);
    if (c->bad)
        return EXIT_USAGE;
    if ((uint64_t)rows > SIZE_MAX / sizeof(float) / (uint64_t)cols)
        return fail(EXIT_USAGE, out, "%lld x %lld is too large", (long long)rows,
                    (long long)cols);

    const size_t count = (size_t)rows * (size_t)cols;
    float *data = nmp_malloc(count * sizeof *data);
    if (!data)
        return fail_lib(NMP_ERR_NOMEM, out, NULL);
    if (legacy) {
        nmp_mt19937 g;
        nmp_mt19937_seed(&g, (uint32_t)seed);
        for (size_t k = 0; k < count; k++)
            data[k] = (float)nmp_mt19937_uniform(&g);
    } else {
        nmp_rng r;
        nmp_rng_seed(&r, seed);
        const bool uniform = strcmp(dist, "uniform") == 0;
        for (size_t k = 0; k < count; k++)
            data[k] = (float)(uniform ? nmp_rng_uniform(&r) : fabs(nmp_rng_normal(&r)));
    }
    const nmp_matrix a = nmp_matrix_view(data, rows, cols);
    nmp_msg msg = { { 0 } };
    const nmp_err e = nmp_npy_write_matrix(out, &a, &msg);
    nmp_free(data);
    return e == NMP_OK ? 0 : fail_lib(e, out, &msg);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(cli_args *c);
        const char *help;
    } cmds[] = {
        { "score", cmd_score, help_score },
        { "solve", cmd_solve, help_solve },
        { "solvers", cmd_solvers, help_solvers },
        { "gen", cmd_gen, help_gen },
    };
    const size_t ncmds = sizeof cmds / sizeof cmds[0];
    if (argc < 2) {
        fputs(help_main, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
        fputs(help_main, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("nmperm %s\n", nmp_version());
        return 0;
    }
    if (strcmp(cmd, "help") == 0) {
        for (size_t k = 0; argc > 2 && k < ncmds; k++)
            if (strcmp(argv[2], cmds[k].name) == 0) {
                fputs(cmds[k].help, stdout);
                return 0;
            }
        if (argc > 2)
            return fail(EXIT_USAGE, "help", "unknown command '%s'", argv[2]);
        fputs(help_main, stdout);
        return 0;
    }
    for (size_t k = 0; k < ncmds; k++)
        if (strcmp(cmd, cmds[k].name) == 0) {
            cli_args c = { argc, argv, 2, cmds[k].name, false };
            const int rc = cmds[k].run(&c);
            if (fflush(stdout) != 0 || ferror(stdout))
                return fail(EXIT_USAGE, "stdout", "write error: %s", strerror(errno));
            return rc;
        }
    return fail(EXIT_USAGE, cmd, "unknown command (commands: score, solve, solvers, gen; see "
                "'nmperm --help')");
}

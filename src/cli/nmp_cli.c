/* nmp_cli.c: the nmperm command line: main() and its command table, errors, argument parsing,
 * loading problems, output paths, progress lines; the commands are in nmp_cli_cmds.c (score,
 * solvers, gen), nmp_cli_solve.c, nmp_cli_bound.c, nmp_cli_compare.c, nmp_cli_gpu.c and
 * nmp_cli_ckpt.c (plan, permute, apply) */
#include "nmp_cli.h"
#include "nmp_cli_batch.h"
#include "nmp_cli_ckpt.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* --------------------------------------------------------------- errors */

/* The one map from library errors to exit codes. */
int cli_exit_code(nmp_err e)
{
    switch (e) {
    case NMP_OK: return 0;
    case NMP_ERR_ARG:
    case NMP_ERR_IO:
    case NMP_ERR_FORMAT:
    case NMP_ERR_UNSUPPORTED: return CLI_EXIT_USAGE;
    case NMP_ERR_NOMEM:
    case NMP_ERR_LP:
    case NMP_ERR_GPU:
    case NMP_ERR_INTERNAL: break;
    }
    return CLI_EXIT_INTERNAL;
}

/* Prints text on one line: control characters become spaces. */
static void put_line(const char *text)
{
    for (const char *p = text; *p; p++)
        fputc((unsigned char)*p < 0x20 ? ' ' : *p, stderr);
}

/* "nmperm: <what>: <reason>" for a failed library call about `what` (a file); the library's
 * message is used as it is when it already starts with the file name. Returns the exit code. */
int cli_fail_lib(nmp_err e, const char *what, const nmp_msg *msg)
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
    return cli_exit_code(e);
}

/* "nmperm: <what>: <reason>" with a formatted reason; returns code. */
int cli_fail(int code, const char *what, const char *fmt, ...)
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

void cli_usage(cli_args *c, const char *fmt, ...)
{
    char text[1024], hint[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    snprintf(hint, sizeof hint, " (see 'nmperm %s --help')", c->cmd);
    if (strstr(text, "(see '"))
        hint[0] = '\0';
    cli_fail(CLI_EXIT_USAGE, c->cmd, "%s%s", text, hint);
    c->bad = true;
}

/* True when the current argument is option `name` (long "--name" or "--name=VALUE", or the short
 * form `alias` when given); its value, from after '=' or the next argument, goes to *val. */
bool cli_take(cli_args *c, const char *name, const char *alias, const char **val)
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
        cli_usage(c, "option %s needs a value", a);
        return true;
    }
    *val = c->argv[++c->k];
    return true;
}

bool cli_is_flag(const cli_args *c, const char *name)
{
    return strcmp(c->argv[c->k], name) == 0;
}

void cli_take_input(cli_args *c, const char **input)
{
    const char *a = c->argv[c->k];
    if (a[0] == '-' && a[1])
        cli_usage(c, "unknown option '%s'", a);
    else if (*input)
        cli_usage(c, "more than one input file ('%s', '%s')", *input, a);
    else
        *input = a;
}

bool cli_parse_i64(cli_args *c, const char *opt, const char *s, int64_t lo, int64_t hi,
                   int64_t *out)
{
    char *end = NULL;
    errno = 0;
    const long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || end == s || *end != '\0' || errno || v < lo || v > hi) {
        cli_usage(c, "%s '%s': expected an integer in [%lld, %lld]", opt, s ? s : "",
                  (long long)lo, (long long)hi);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_u64(cli_args *c, const char *opt, const char *s, uint64_t hi, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    const unsigned long long v = s && *s != '-' ? strtoull(s, &end, 10) : 0;
    if (!s || *s == '-' || end == s || *end != '\0' || errno || v > hi) {
        cli_usage(c, "%s '%s': expected an integer in [0, %llu]", opt, s ? s : "",
                  (unsigned long long)hi);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_seconds(cli_args *c, const char *opt, const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    const double v = s ? strtod(s, &end) : 0;
    if (!s || end == s || *end != '\0' || errno || !isfinite(v) || v < 0) {
        cli_usage(c, "%s '%s': expected a number of seconds >= 0", opt, s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

/* Prints help or the version when any argument asks for it (before other errors are seen);
 * returns true when it did. */
bool cli_help_or_version(const cli_args *c, const char *help)
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

void cli_loaded_free(cli_loaded *ld)
{
    nmp_problem_free(ld->pb);
    nmp_array_free(&ld->w);
    nmp_array_free(&ld->sal);
    nmp_free(ld->importance);
    memset(ld, 0, sizeof *ld);
}

bool cli_take_device(cli_args *c, nmp_device *device)
{
    const char *v = NULL;
    if (!cli_take(c, "--device", NULL, &v))
        return false;
    nmp_msg msg = { { 0 } };
    if (v && nmp_device_parse(v, device, &msg) != NMP_OK)
        cli_usage(c, "--device: %s", msg.text);
    return true;
}

/* Parses --nm, --objective, --importance, --saliency; true when the argument was one of them. */
bool cli_take_problem_opt(cli_args *c, cli_problem_opts *po)
{
    const char *v = NULL;
    nmp_msg msg = { { 0 } };
    if (cli_take(c, "--nm", NULL, &v)) {
        if (v && nmp_pattern_parse(v, &po->nm, &msg) != NMP_OK)
            cli_usage(c, "--nm: %s", msg.text);
    } else if (cli_take(c, "--objective", NULL, &v)) {
        if (v && nmp_objective_parse(v, &po->objective) != NMP_OK)
            cli_usage(c, "--objective '%s': expected abs, sq, importance or saliency", v);
        po->objective_set = true;
    } else if (cli_take(c, "--importance", NULL, &v)) {
        po->importance_path = v;
    } else if (cli_take(c, "--saliency", NULL, &v)) {
        po->saliency_path = v;
    } else {
        return false;
    }
    return true;
}

/* The names of a comma-separated list, each checked against the registry and for repeats before
 * anything runs, so a typo costs nothing. */
void cli_solver_list(cli_args *c, char *text, const char ***solvers, int *n, nmp_params **par)
{
    size_t cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == ',';
    if (!(*solvers = nmp_calloc(cap, sizeof **solvers))) {
        cli_usage(c, "out of memory");
        return;
    }
    for (char *p = text, *next = NULL; p; p = next) {
        next = strchr(p, ',');
        if (next)
            *next++ = '\0';
        if (!*p) {
            cli_usage(c, "--solvers: empty solver name in the list");
            return;
        }
        if (!nmp_solver_find(p)) {
            cli_usage(c, "unknown solver '%s' (see 'nmperm solvers')", p);
            return;
        }
        for (int s = 0; s < *n; s++)
            if (strcmp((*solvers)[s], p) == 0) {
                cli_usage(c, "--solvers: '%s' is listed twice", p);
                return;
            }
        (*solvers)[(*n)++] = p;
    }
    if (!(*par = nmp_calloc((size_t)*n, sizeof **par))) {
        cli_usage(c, "out of memory");
        return;
    }
    for (int s = 0; s < *n; s++)
        nmp_params_init(&(*par)[s]);
}

/* Each "SOLVER.KEY=VALUE" of texts into the params of that solver of the list, then every
 * solver's params checked against its table; a bad one is a usage error (c->bad). */
void cli_solver_params(cli_args *c, const char *const *solvers, int nsolvers,
                       const char *const *texts, int ntexts, nmp_params *par)
{
    nmp_msg msg = { { 0 } };
    for (int k = 0; k < ntexts; k++) {
        const char *text = texts[k], *dot = strchr(text, '.');
        const char *eq = strchr(text, '=');
        if (!dot || (eq && eq < dot) || dot == text) {
            cli_usage(c, "--param '%s': expected SOLVER.KEY=VALUE", text);
            return;
        }
        int s = 0;
        while (s < nsolvers && !(strlen(solvers[s]) == (size_t)(dot - text) &&
                                    strncmp(solvers[s], text, (size_t)(dot - text)) == 0))
            s++;
        if (s == nsolvers) {
            cli_usage(c, "--param '%s': solver '%.*s' is not in --solvers", text,
                      (int)(dot - text), text);
            return;
        }
        if (nmp_params_parse(&par[s], dot + 1, &msg) != NMP_OK) {
            cli_usage(c, "--param: %s", msg.text);
            return;
        }
    }
    for (int s = 0; s < nsolvers; s++)
        if (nmp_params_check(&par[s], nmp_solver_find(solvers[s]), &msg) != NMP_OK) {
            cli_usage(c, "%s: %s", solvers[s], msg.text);
            return;
        }
}

/* Fills in the objective implied by --importance / --saliency and checks the combination: a
 * vector or matrix that the objective would not use is refused, never ignored. */
void cli_check_problem_opts(cli_args *c, cli_problem_opts *po)
{
    if (!po->objective_set && po->importance_path && !po->saliency_path)
        po->objective = NMP_OBJ_IMPORTANCE;
    if (!po->objective_set && po->saliency_path && !po->importance_path)
        po->objective = NMP_OBJ_SALIENCY;
    if (!po->objective_set && po->importance_path && po->saliency_path)
        cli_usage(c, "--importance and --saliency belong to different objectives: give one");
    else if (po->objective == NMP_OBJ_IMPORTANCE && !po->importance_path)
        cli_usage(c, "--objective importance needs --importance X.npy");
    else if (po->objective == NMP_OBJ_SALIENCY && !po->saliency_path)
        cli_usage(c, "--objective saliency needs --saliency S.npy");
    else if (po->importance_path && po->objective != NMP_OBJ_IMPORTANCE)
        cli_usage(c, "--importance is only used with --objective importance");
    else if (po->saliency_path && po->objective != NMP_OBJ_SALIENCY)
        cli_usage(c, "--saliency is only used with --objective saliency");
    if (!po->input && !c->bad)
        cli_usage(c, "missing the input matrix W.npy");
}

/* Reads the files and builds the problem; on failure prints one line and returns the exit code.
 * Each message names the file it is about. */
int cli_load_problem(const cli_problem_opts *po, cli_loaded *ld)
{
    nmp_err e = NMP_OK;
    nmp_msg msg = { { 0 } };
    memset(ld, 0, sizeof *ld);
    if ((e = nmp_npy_read_matrix(po->input, &ld->w, &msg)) != NMP_OK)
        return cli_fail_lib(e, po->input, &msg);
    nmp_matrix w = nmp_array_view(&ld->w);
    if ((e = nmp_matrix_check(&w, &msg)) != NMP_OK)
        return cli_fail_lib(e, po->input, &msg);
    nmp_problem_desc d = { w, po->nm, po->objective, NULL, { 0 } };
    const char *blame = po->input; /* the file a problem error is about */
    if (po->objective == NMP_OBJ_IMPORTANCE) {
        int64_t len = 0;
        if ((e = nmp_npy_read_vector(po->importance_path, &ld->importance, &len, &msg)) != NMP_OK)
            return cli_fail_lib(e, po->importance_path, &msg);
        if (len != w.cols)
            return cli_fail(CLI_EXIT_USAGE, po->importance_path,
                            "%lld values, expected %lld (the columns of %s)", (long long)len,
                            (long long)w.cols, po->input);
        d.importance = ld->importance;
        for (int64_t i = 0; i < len; i++)
            if (!isfinite(ld->importance[i]) || ld->importance[i] < 0)
                return cli_fail(CLI_EXIT_USAGE, po->importance_path,
                                "value %lld is %g, expected a finite value >= 0", (long long)i,
                                (double)ld->importance[i]);
    } else if (po->objective == NMP_OBJ_SALIENCY) {
        if ((e = nmp_npy_read_matrix(po->saliency_path, &ld->sal, &msg)) != NMP_OK)
            return cli_fail_lib(e, po->saliency_path, &msg);
        d.saliency = nmp_array_view(&ld->sal);
        if (ld->sal.rows != w.rows || ld->sal.cols != w.cols)
            return cli_fail(CLI_EXIT_USAGE, po->saliency_path,
                            "%lld x %lld, expected %lld x %lld (the shape of %s)",
                            (long long)ld->sal.rows, (long long)ld->sal.cols, (long long)w.rows,
                            (long long)w.cols, po->input);
        if ((e = nmp_matrix_check(&d.saliency, &msg)) != NMP_OK)
            return cli_fail_lib(e, po->saliency_path, &msg);
        if (w.cols % po->nm.m == 0)
            blame = po->saliency_path; /* then only its values can be wrong */
    }
    if ((e = nmp_problem_create(&d, &ld->pb, &msg)) != NMP_OK)
        return cli_fail_lib(e, blame, &msg);
    return 0;
}

/* Reads a permutation file for a problem of `cols` columns and validates it. */
int cli_load_perm(const char *path, const char *input, int64_t cols, int32_t **out)
{
    nmp_msg msg = { { 0 } };
    int64_t len = 0;
    const nmp_err e = nmp_npy_read_perm(path, out, &len, &msg);
    if (e != NMP_OK)
        return cli_fail_lib(e, path, &msg);
    if (len != cols)
        return cli_fail(CLI_EXIT_USAGE, path, "%lld entries, expected %lld (the columns of %s)",
                        (long long)len, (long long)cols, input);
    if (!nmp_perm_is_valid(*out, len))
        return cli_fail(CLI_EXIT_USAGE, path,
                        "not a permutation of 0..%lld (an entry is out of range or repeated)",
                        (long long)cols - 1);
    return 0;
}

/* Fails early when path's folder cannot take a new file, so a long solve is not wasted. */
int cli_check_writable(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!*path)
        return cli_fail(CLI_EXIT_USAGE, "-o", "empty output path");
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (slash && !slash[1])
        return cli_fail(CLI_EXIT_USAGE, path, "is a folder, expected a file name");
    struct stat st;
    if (stat(dir, &st) != 0)
        return cli_fail(CLI_EXIT_USAGE, path, "cannot write: %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return cli_fail(CLI_EXIT_USAGE, path, "cannot write: %s is not a folder", dir);
    if (access(dir, W_OK | X_OK) != 0)
        return cli_fail(CLI_EXIT_USAGE, path, "cannot write: %s: %s", dir, strerror(errno));
    return 0;
}

/* What a path names: device and inode when it exists, else those of its folder and its name
 * (name is NULL for an existing file), for a file still to be written. */
typedef struct path_id {
    dev_t dev;
    ino_t ino;
    const char *name;
} path_id;

/* false when path names neither an existing file nor a name in an existing folder */
static bool path_identify(const char *path, path_id *id)
{
    struct stat st;
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    id->name = NULL;
    if (stat(path, &st) != 0) {
        id->name = slash ? slash + 1 : path;
        if (!*id->name || strlen(path) >= sizeof dir)
            return false;
        if (!slash)
            snprintf(dir, sizeof dir, ".");
        else if (slash == path)
            snprintf(dir, sizeof dir, "/");
        else
            snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        if (stat(dir, &st) != 0)
            return false;
    }
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    return true;
}

static bool path_same(const path_id *a, const path_id *b)
{
    if (a->dev != b->dev || a->ino != b->ino || !a->name != !b->name)
        return false;
    return !a->name || strcmp(a->name, b->name) == 0;
}

/* Each output against every input, then against the outputs before it. */
int cli_check_named_paths(const cli_path *in, int nin, const cli_path *out, int nout)
{
    path_id a = { 0 }, b = { 0 };
    for (int k = 0; k < nout; k++) {
        if (!out[k].path || !path_identify(out[k].path, &a))
            continue;
        for (int j = 0; j < nin; j++)
            if (in[j].path && path_identify(in[j].path, &b) && path_same(&a, &b))
                return cli_fail(CLI_EXIT_USAGE, out[k].path, "%s is the same file as %s %s "
                                "(inputs are never overwritten)", out[k].what, in[j].what,
                                in[j].path);
        for (int j = 0; j < k; j++)
            if (out[j].path && path_identify(out[j].path, &b) && path_same(&a, &b))
                return cli_fail(CLI_EXIT_USAGE, out[k].path, "%s is the same file as %s %s",
                                out[k].what, out[j].what, out[j].path);
    }
    return 0;
}

int nmp_cli_check_paths(const char *const *inputs, int ni, const char *const *outputs, int no)
{
    cli_path in[8], out[4];
    if (ni > 8 || no > 4)
        return cli_fail(CLI_EXIT_INTERNAL, "nmperm", "too many paths to compare");
    for (int k = 0; k < ni; k++)
        in[k] = (cli_path){ "the input", inputs[k] };
    for (int k = 0; k < no; k++)
        out[k] = (cli_path){ "the output", outputs[k] };
    return cli_check_named_paths(in, ni, out, no);
}

/* mkstemp beside path, write, fsync, close, rename; the temporary file is removed on failure */
int cli_write_atomic(const char *path, const char *data, size_t len)
{
    const size_t plen = strlen(path);
    char *tmp = nmp_malloc(plen + 16);
    if (!tmp)
        return cli_fail_lib(NMP_ERR_NOMEM, path, NULL);
    snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
    const int fd = mkstemp(tmp);
    if (fd < 0) {
        const int err = errno;
        nmp_free(tmp);
        return cli_fail(CLI_EXIT_USAGE, path, "cannot create output: %s", strerror(err));
    }
    struct stat old;
    mode_t mode;
    if (stat(path, &old) == 0) {
        mode = old.st_mode & 07777;
    } else {
        const mode_t mask = umask(0);
        umask(mask);
        mode = 0666 & ~mask;
    }
    int err = fchmod(fd, mode) != 0 ? errno : 0;
    for (size_t done = 0; done < len && !err;) {
        const ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno != EINTR)
            err = errno;
        else if (w > 0)
            done += (size_t)w;
    }
    if (!err && fsync(fd) != 0)
        err = errno;
    if (close(fd) != 0 && !err)
        err = errno;
    int rc = 0;
    if (err)
        rc = cli_fail(CLI_EXIT_USAGE, path, "write failed: %s", strerror(err));
    else if (rename(tmp, path) != 0)
        rc = cli_fail(CLI_EXIT_USAGE, path, "cannot rename temporary file over it: %s",
                      strerror(errno));
    if (rc)
        unlink(tmp);
    nmp_free(tmp);
    return rc;
}

/* -------------------------------------------------------- JSON helpers */

void cli_jset(json_t *o, const char *key, json_t *v)
{
    json_object_set_new(o, key, v ? v : json_null());
}

json_t *cli_jnum(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

int cli_print_json(json_t *root)
{
    int rc = 0;
    char *text = json_dumps(root, JSON_REAL_PRECISION(12) | JSON_PRESERVE_ORDER);
    if (!text)
        rc = cli_fail(CLI_EXIT_INTERNAL, "json", "out of memory");
    else
        printf("%s\n", text);
    free(text);
    json_decref(root);
    return rc;
}

/* Fields of score and solve: shape, pattern, objective and the fixed scores. */
void cli_json_problem(json_t *o, const char *input, const nmp_problem *pb)
{
    const nmp_pattern nm = nmp_problem_pattern(pb);
    char nmtext[32];
    snprintf(nmtext, sizeof nmtext, "%d:%d", nm.n, nm.m);
    cli_jset(o, "file", json_string(input));
    cli_jset(o, "rows", json_integer(nmp_problem_rows(pb)));
    cli_jset(o, "cols", json_integer(nmp_problem_cols(pb)));
    cli_jset(o, "nm", json_string(nmtext));
    cli_jset(o, "objective", json_string(nmp_objective_name(nmp_problem_objective(pb))));
    cli_jset(o, "total", cli_jnum(nmp_score_total(pb)));
    cli_jset(o, "identity", cli_jnum(nmp_score_identity(pb)));
    cli_jset(o, "row_bound", cli_jnum(nmp_score_row_bound(pb)));
}

double cli_gain_pct(double identity, double kept)
{
    return identity > 0 ? 100.0 * (kept - identity) / identity : 0.0;
}

void cli_text_problem(const char *input, const nmp_problem *pb)
{
    const nmp_pattern nm = nmp_problem_pattern(pb);
    printf("file        %s\n", input);
    printf("shape       %lld x %lld, N:M %d:%d (%lld groups)\n",
           (long long)nmp_problem_rows(pb), (long long)nmp_problem_cols(pb), nm.n, nm.m,
           (long long)nmp_problem_groups(pb));
    printf("objective   %s\n", nmp_objective_name(nmp_problem_objective(pb)));
}

/* ---------------------------------------------------------------- main */

/* The commands, in the order of the help; an entry without `run` is a heading. */
typedef struct cli_command {
    const char *name;
    int (*run)(cli_args *c);
    const char *summary;
} cli_command;

static const cli_command commands[] = {
    { NULL, NULL, "one matrix (W.npy, a 2-D float32 array):" },
    { "score", cli_cmd_score, "scores of a matrix: unpruned total, identity, row bound, a "
                              "permutation's kept" },
    { "solve", cli_cmd_solve, "search for a good permutation with a solver" },
    { "bound", cli_cmd_bound, "the best upper bound on the kept score: row bound, LP bound "
                              "(colgen)" },
    { "solvers", cli_cmd_solvers, "list the solvers and their parameters" },
    { "gen", cli_cmd_gen, "write a deterministic random test matrix" },
    { NULL, NULL, "many matrices:" },
    { "compare", cli_cmd_compare, "run several solvers on several inputs: a table with gaps to "
                                  "the best bound" },
    { "batch", cli_cmd_batch, "many matrices and checkpoints: parallel, journaled, resumable, "
                              "sharded" },
    { "summary", cli_cmd_summary, "the table of a batch run (also while it runs)" },
    { "merge", cli_cmd_merge, "join the output folders of a batch's shards" },
    { NULL, NULL, "checkpoints (safetensors):" },
    { "plan", nmp_cli_plan, "print the channel spaces of a checkpoint (JSON)" },
    { "permute", nmp_cli_permute, "permute (and prune) a checkpoint, verified and reported" },
    { "apply", nmp_cli_apply, "re-apply the permutations of a permute report" },
    { NULL, NULL, "GPU (CUDA builds with cuSPARSELt):" },
    { "gpu-eval", cli_cmd_gpu_eval, "time a permuted 2:4 layer: cuSPARSELt vs dense cuBLAS, "
                                    "errors" },
    { "gpu-bench", cli_cmd_gpu_bench, "sparse vs dense GEMM timings over LLM shapes" },
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

/* The top-level help: every command of the table under its heading. */
static void print_help(FILE *f)
{
    fputs("usage: nmperm <command> [options]\n"
          "\n"
          "Find column permutations of a weight matrix that keep more saliency under N:M "
          "sparsity.\n",
          f);
    for (int k = 0; k < NCOMMANDS; k++) {
        if (!commands[k].run)
            fprintf(f, "\n%s\n", commands[k].summary);
        else
            fprintf(f, "  %-10s %s\n", commands[k].name, commands[k].summary);
    }
    fputs("\n"
          "  -h, --help      this text ('nmperm <command> --help' for a command)\n"
          "      --version   print the version\n"
          "\n"
          "exit codes: 0 ok, 1 bad input or usage, 2 internal error\n",
          f);
}

static const cli_command *find_command(const char *name)
{
    for (int k = 0; k < NCOMMANDS; k++)
        if (commands[k].run && strcmp(name, commands[k].name) == 0)
            return &commands[k];
    return NULL;
}

/* "nmperm: <what>: unknown command ['<name>'] (commands: score, solve, ...; see ...)" */
static int unknown_command(const char *what, const char *name)
{
    char list[512];
    size_t len = 0;
    list[0] = '\0';
    for (int k = 0; k < NCOMMANDS; k++)
        if (commands[k].run && len < sizeof list)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "",
                                    commands[k].name);
    if (strcmp(what, name) == 0)
        return cli_fail(CLI_EXIT_USAGE, what, "unknown command (commands: %s; see 'nmperm "
                        "--help')", list);
    return cli_fail(CLI_EXIT_USAGE, what, "unknown command '%s' (commands: %s; see 'nmperm "
                    "--help')", name, list);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 ||
        (strcmp(name, "help") == 0 && argc < 3)) {
        print_help(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0) {
        printf("nmperm %s\n", nmp_version());
        return 0;
    }
    if (strcmp(name, "help") == 0) {
        const cli_command *cmd = find_command(argv[2]);
        if (!cmd)
            return unknown_command("help", argv[2]);
        char *args[] = { argv[0], argv[2], (char *)"--help", NULL };
        cli_args c = { 3, args, 2, cmd->name, false };
        return cmd->run(&c);
    }
    const cli_command *cmd = find_command(name);
    if (!cmd)
        return unknown_command(name, name);
    cli_args c = { argc, argv, 2, cmd->name, false };
    const int rc = cmd->run(&c);
    if (fflush(stdout) != 0 || ferror(stdout))
        return cli_fail(CLI_EXIT_USAGE, "stdout", "write error: %s", strerror(errno));
    return rc;
}

/* ------------------------------------------------------- Ctrl-C, progress */

volatile sig_atomic_t cli_interrupted;

/* First Ctrl-C: ask the running solve to stop. */
static void on_sigint(int sig)
{
    (void)sig;
    cli_interrupted = 1;
}

void cli_sigint_catch(struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = (int)SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, old);
}

void cli_progress_init(cli_progress_line *pl, bool quiet, bool forced)
{
    memset(pl, 0, sizeof *pl);
    pl->tty = isatty(STDERR_FILENO) != 0;
    pl->show = forced || (pl->tty && !quiet);
}

/* On a terminal: "\r" + text, padded over the previous line. Elsewhere: text + "\n", at most
 * once per second of the run (and always for the first report and after Ctrl-C). */
int cli_progress_report(const nmp_progress *p, void *user)
{
    cli_progress_line *pl = user;
    if (!pl->show || (!pl->tty && p->elapsed < pl->next && !cli_interrupted))
        return cli_interrupted ? 1 : 0;
    char text[320];
    snprintf(text, sizeof text, "%s%s%8.1fs  iter %lld  best %.4f  bound %.4f"
                             "  %s%s", pl->label, pl->label[0] ? " " : "", p->elapsed,
                             (long long)p->iteration, p->best, p->bound,
                             p->phase ? p->phase : "", cli_interrupted ? "  (stopping)" : "");
    if (pl->tty) {
        cli_progress_draw(pl, text);
    } else {
        fprintf(stderr, "%s\n", text);
        pl->next = p->elapsed + 1.0;
    }
    fflush(stderr);
    return cli_interrupted ? 1 : 0;
}

void cli_progress_draw(cli_progress_line *pl, const char *text)
{
    const int shown = (int)strlen(text);
    fprintf(stderr, "\r%s%*s", text, pl->width > shown ? pl->width - shown : 0, "");
    fflush(stderr);
    pl->width = shown;
}

void cli_progress_clear(cli_progress_line *pl)
{
    if (pl->tty && pl->width > 0) {
        fprintf(stderr, "\r%*s\r", pl->width, "");
        fflush(stderr);
    }
    pl->width = 0;
}

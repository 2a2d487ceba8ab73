/* nmp_cli.c: the nmperm command line: main(), errors, argument parsing, loading problems; the
 * commands are in nmp_cli_cmds.c (score, solvers, gen) and nmp_cli_solve.c (solve) */
#include "nmp_cli.h"
#include "nmp_cli_batch.h"
#include "nmp_cli_ckpt.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    "  bound     the best upper bound on the kept score: row bound, LP bound (colgen)\n"
    "  compare   run several solvers on several inputs: a table with gaps to the best bound\n"
    "  gen       write a deterministic random test matrix\n"
    "  gpu-eval  time a permuted 2:4 layer on the GPU: cuSPARSELt vs dense cuBLAS, errors\n"
    "  gpu-bench sparse vs dense GEMM timings over LLM shapes on the GPU\n"
    "  plan      print the channel spaces of a safetensors checkpoint (JSON)\n"
    "  permute   permute (and prune) a safetensors checkpoint, verified and reported\n"
    "  apply     re-apply the permutations of a permute report\n"
    "  batch     many matrices and checkpoints: parallel, journaled, resumable, sharded\n"
    "  summary   the table of a batch run (also while it runs)\n"
    "  merge     join the output folders of a batch's shards\n"
    "\n"
    "  -h, --help      this text ('nmperm <command> --help' for a command)\n"
    "      --version   print the version\n"
    "\n"
    "exit codes: 0 ok, 1 bad input or usage, 2 internal error\n";

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

/* Fills in the objective implied by --importance / --saliency and checks the combination. */
void cli_check_problem_opts(cli_args *c, cli_problem_opts *po)
{
    if (!po->objective_set && po->importance_path && !po->saliency_path)
        po->objective = NMP_OBJ_IMPORTANCE;
    if (!po->objective_set && po->saliency_path && !po->importance_path)
        po->objective = NMP_OBJ_SALIENCY;
    if (po->objective == NMP_OBJ_IMPORTANCE && !po->importance_path)
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

double cli_gain_pct(const nmp_problem *pb, double kept)
{
    const double id = nmp_score_identity(pb);
    return id > 0 ? 100.0 * (kept - id) / id : 0.0;
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

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(cli_args *c);
    } cmds[] = {
        { "score", cli_cmd_score },
        { "solve", cli_cmd_solve },
        { "solvers", cli_cmd_solvers },
        { "bound", cli_cmd_bound },
        { "compare", cli_cmd_compare },
        { "gen", cli_cmd_gen },
        { "gpu-eval", cli_cmd_gpu_eval },
        { "gpu-bench", cli_cmd_gpu_bench },
        { "plan", nmp_cli_plan },
        { "permute", nmp_cli_permute },
        { "apply", nmp_cli_apply },
        { "batch", cli_cmd_batch },
        { "summary", cli_cmd_summary },
        { "merge", cli_cmd_merge },
    };
    const size_t ncmds = sizeof cmds / sizeof cmds[0];
    if (argc < 2) {
        fputs(help_main, stderr);
        return CLI_EXIT_USAGE;
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
        if (argc < 3) {
            fputs(help_main, stdout);
            return 0;
        }
        for (size_t k = 0; k < ncmds; k++)
            if (strcmp(argv[2], cmds[k].name) == 0) {
                char *args[] = { argv[0], argv[2], (char *)"--help", NULL };
                cli_args c = { 3, args, 2, cmds[k].name, false };
                return cmds[k].run(&c);
            }
        return cli_fail(CLI_EXIT_USAGE, "help", "unknown command '%s'", argv[2]);
    }
    for (size_t k = 0; k < ncmds; k++)
        if (strcmp(cmd, cmds[k].name) == 0) {
            cli_args c = { argc, argv, 2, cmds[k].name, false };
            const int rc = cmds[k].run(&c);
            if (fflush(stdout) != 0 || ferror(stdout))
                return cli_fail(CLI_EXIT_USAGE, "stdout", "write error: %s", strerror(errno));
            return rc;
        }
    return cli_fail(CLI_EXIT_USAGE, cmd,
                    "unknown command (commands: score, solve, solvers, gen; see 'nmperm --help')");
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

void cli_progress_draw(cli_progress_line *pl, const char *text)
{
    if (!pl->show)
        return;
    const int len = (int)strlen(text);
    fprintf(stderr, "\r%s%*s", text, pl->width > len ? pl->width - len : 0, "");
    fflush(stderr);
    pl->width = len;
}

void cli_progress_clear(cli_progress_line *pl)
{
    if (pl->width > 0) {
        fprintf(stderr, "\r%*s\r", pl->width, "");
        fflush(stderr);
    }
    pl->width = 0;
}

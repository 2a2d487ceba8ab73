/* nmp_cli.h: shared pieces of the nmperm command line (not installed; used by nmp_cli*.c) */
#ifndef NMP_CLI_H
#define NMP_CLI_H

#include "nmperm.h"

#include <jansson.h>

#include <signal.h>
#include <stdbool.h>

/* Exit codes: 0 ok, 1 bad input or usage, 2 internal error. */
enum { CLI_EXIT_USAGE = 1, CLI_EXIT_INTERNAL = 2 };

#if defined(__GNUC__)
#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLI_PRINTF(f, a)
#endif

/* ------------------------------------------------------------ errors */

/* The one map from library errors to exit codes. */
int cli_exit_code(nmp_err e);
/* "nmperm: <what>: <reason>" for a failed library call about `what` (a file), the reason from
 * msg (or nmp_err_str when msg is NULL or empty); returns the exit code of e. */
int cli_fail_lib(nmp_err e, const char *what, const nmp_msg *msg);
/* "nmperm: <what>: <reason>" with a formatted reason; returns code. */
int cli_fail(int code, const char *what, const char *fmt, ...) CLI_PRINTF(3, 4);

/* ------------------------------------------------------------ arguments */

/* The arguments of one subcommand and a cursor over them. */
typedef struct cli_args {
    int argc;
    char **argv;
    int k;          /* index of the argument being looked at */
    const char *cmd;
    bool bad;       /* a usage error was printed */
} cli_args;

/* Prints "nmperm: <cmd>: <reason> (see 'nmperm <cmd> --help')" and marks c bad. */
void cli_usage(cli_args *c, const char *fmt, ...) CLI_PRINTF(2, 3);
/* True when argv[k] is option `name` ("--name VALUE", "--name=VALUE", or `alias VALUE` when alias
 * is not NULL); *val gets the value (NULL after a usage error for a missing value). */
bool cli_take(cli_args *c, const char *name, const char *alias, const char **val);
bool cli_is_flag(const cli_args *c, const char *name);
/* Number parsers: false after a usage error naming opt and the text. */
bool cli_parse_i64(cli_args *c, const char *opt, const char *s, int64_t lo, int64_t hi,
                   int64_t *out);
bool cli_parse_u64(cli_args *c, const char *opt, const char *s, uint64_t hi, uint64_t *out);
bool cli_parse_seconds(cli_args *c, const char *opt, const char *s, double *out);
/* Prints help (stdout) or the version when any argument is -h, --help or --version. */
bool cli_help_or_version(const cli_args *c, const char *help);
/* The last branch of an option loop: argv[k] is an unknown option (a usage error), a second
 * input (a usage error) or the input, stored in *input. */
void cli_take_input(cli_args *c, const char **input);

/* -------------------------------------------------------------- problems */

#define CLI_HELP_PROBLEM                                                                           \
    "  --nm N:M              sparsity pattern, keep N of every M columns (default 2:4)\n"          \
    "  --objective OBJ       abs (|w|, default), sq (w^2), importance (|w| * x[col]),\n"           \
    "                        saliency (a given matrix)\n"                                          \
    "  --importance X.npy    1-D per-column importance x for --objective importance\n"             \
    "  --saliency S.npy      saliency matrix of W's shape for --objective saliency\n"

/* Options shared by score and solve. */
typedef struct cli_problem_opts {
    const char *input;
    const char *importance_path, *saliency_path;
    nmp_pattern nm;
    nmp_objective objective;
    bool objective_set;
} cli_problem_opts;

/* A loaded problem and the arrays it was built from. */
typedef struct cli_loaded {
    nmp_array w, sal;
    float *importance;
    nmp_problem *pb;
} cli_loaded;

void cli_loaded_free(cli_loaded *ld);
/* Parses --nm, --objective, --importance, --saliency; true when argv[k] was one of them. */
bool cli_take_problem_opt(cli_args *c, cli_problem_opts *po);
/* Fills in the objective implied by --importance / --saliency, checks the combination and that
 * an input was given; usage errors mark c bad. */
void cli_check_problem_opts(cli_args *c, cli_problem_opts *po);
/* Reads the files and builds the problem; 0, or the exit code after one line naming the file. */
int cli_load_problem(const cli_problem_opts *po, cli_loaded *ld);
/* Reads and validates a permutation of `cols` entries (*out released with nmp_free). */
int cli_load_perm(const char *path, const char *input, int64_t cols, int32_t **out);
/* Fails early when path's folder cannot take a new file, so a long solve is not wasted. */
int cli_check_writable(const char *path);

/* ------------------------------------------------------------- output */

void cli_jset(json_t *o, const char *key, json_t *v); /* takes v; NULL becomes null */
json_t *cli_jnum(double x);                             /* null when not finite */
int cli_print_json(json_t *root);                       /* one line on stdout; frees root */
/* file, rows, cols, nm, objective, total, identity, row_bound */
void cli_json_problem(json_t *o, const char *input, const nmp_problem *pb);
void cli_text_problem(const char *input, const nmp_problem *pb);
double cli_gain_pct(const nmp_problem *pb, double kept); /* 100 (kept - identity) / identity */

/* ------------------------------------------------------- Ctrl-C, progress */

/* Set by the first Ctrl-C after cli_sigint_catch; the running solve is asked to stop. */
extern volatile sig_atomic_t cli_interrupted;
/* Catches SIGINT into cli_interrupted (SA_RESETHAND makes a second Ctrl-C end the process); the
 * previous action goes to *old, for sigaction(SIGINT, old, NULL) afterwards. */
void cli_sigint_catch(struct sigaction *old);

/* One updating line on the terminal (stderr). */
typedef struct cli_progress_line {
    bool show;   /* stderr is a terminal and not --quiet */
    int width;   /* length of the line on screen */
} cli_progress_line;

/* Redraws the line with text (when shown), padding over what was there before. */
void cli_progress_draw(cli_progress_line *pl, const char *text);
/* Erases the line. */
void cli_progress_clear(cli_progress_line *pl);

/* ------------------------------------------------------------ commands */

int cli_cmd_score(cli_args *c);   /* nmp_cli_cmds.c */
int cli_cmd_solvers(cli_args *c); /* nmp_cli_cmds.c */
int cli_cmd_gen(cli_args *c);     /* nmp_cli_cmds.c */
int cli_cmd_solve(cli_args *c);   /* nmp_cli_solve.c */
int cli_cmd_bound(cli_args *c);   /* nmp_cli_bound.c */
int cli_cmd_compare(cli_args *c); /* nmp_cli_bound.c */
int cli_cmd_gpu_eval(cli_args *c);  /* nmp_cli_gpu.c */
int cli_cmd_gpu_bench(cli_args *c); /* nmp_cli_gpu.c */

#endif /* NMP_CLI_H */

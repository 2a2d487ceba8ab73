/* nmp_cli.h: shared pieces of the nmperm command line (not installed; used by nmp_cli*.c) */
#ifndef NMP_CLI_H
#define NMP_CLI_H

#include "nmperm.h"

#include <jansson.h>

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

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
    "  --importance X.npy    1-D per-column importance x; implies --objective importance\n"        \
    "                        (refused with any other objective)\n"                                 \
    "  --saliency S.npy      saliency matrix of W's shape; implies --objective saliency\n"         \
    "                        (refused with any other objective)\n"

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
/* Parses --device cpu|auto|gpu|ref into *device; true when argv[k] was it. */
bool cli_take_device(cli_args *c, nmp_device *device);
#define CLI_DEVICE_HELP \
    "  --device D            where the search runs: cpu (default), gpu (osg's stripe-pair\n" \
    "                        windows and auto's first stage on the GPU backend), auto (gpu when\n" \
    "                        present and >= 1024 columns), ref (the GPU path on the CPU\n" \
    "                        reference: slow, for checks)\n"
/* Parses --nm, --objective, --importance, --saliency; true when argv[k] was one of them. */
bool cli_take_problem_opt(cli_args *c, cli_problem_opts *po);
/* Fills in the objective implied by --importance / --saliency, checks the combination and that
 * an input was given; usage errors mark c bad. */
void cli_check_problem_opts(cli_args *c, cli_problem_opts *po);
/* Splits text, a comma-separated --solvers list (cut in place), into (*solvers)[0 .. *n) (names
 * pointing into text, each a registered solver named once; release with nmp_free) and gives each
 * its nmp_params_init'ed parameters (*par, release with nmp_free); *n starts at 0. Errors
 * through cli_usage. */
void cli_solver_list(cli_args *c, char *text, const char ***solvers, int *n, nmp_params **par);
/* --param "SOLVER.KEY=VALUE" texts into par[s] of solver solvers[s], then each checked against its
 * solver's table; errors through cli_usage. */
void cli_solver_params(cli_args *c, const char *const *solvers, int nsolvers,
                       const char *const *texts, int ntexts, nmp_params *par);
/* Reads the files and builds the problem; 0, or the exit code after one line naming the file. */
int cli_load_problem(const cli_problem_opts *po, cli_loaded *ld);
/* Reads and validates a permutation of `cols` entries (*out released with nmp_free). */
int cli_load_perm(const char *path, const char *input, int64_t cols, int32_t **out);
/* Fails early when path's folder cannot take a new file, so a long solve is not wasted. */
int cli_check_writable(const char *path);
/* Refuses, before any work, an output that is the same file as an input or as another output:
 * existing files are compared by device and inode (stat follows links, so a link or a second
 * name of an input is caught), a path that does not exist yet by its folder's device and inode
 * and its name. NULL entries are skipped; a path whose folder does not exist is left to the
 * reader's or writer's own error. 0, or 1 (usage) after one line "nmperm: OUT: the output is the
 * same file as the input IN (inputs are never overwritten)" (or "... as the output OUT1"). */
int nmp_cli_check_paths(const char *const *inputs, int ni, const char *const *outputs, int no);
/* The same with a role for each path ("the report", "the plan", ...) named in the message. */
typedef struct cli_path {
    const char *what, *path;
} cli_path;
int cli_check_named_paths(const cli_path *in, int nin, const cli_path *out, int nout);
/* Writes len bytes to path atomically: a temporary file beside it (mkstemp), fsync, rename; the
 * mode of a file it replaces is kept, else 0666 & ~umask. 0, or the exit code after a line. */
int cli_write_atomic(const char *path, const char *data, size_t len);

/* ------------------------------------------------------------- output */

void cli_jset(json_t *o, const char *key, json_t *v); /* takes v; NULL becomes null */
json_t *cli_jnum(double x);                             /* null when not finite */
int cli_print_json(json_t *root);                       /* one line on stdout; frees root */
/* file, rows, cols, nm, objective, total, identity, row_bound */
void cli_json_problem(json_t *o, const char *input, const nmp_problem *pb);
void cli_text_problem(const char *input, const nmp_problem *pb);
double cli_gain_pct(double identity, double kept);       /* 100 (kept - identity) / identity */

/* ------------------------------------------------------- Ctrl-C, progress */

/* Set by the first Ctrl-C after cli_sigint_catch; the running solve is asked to stop. */
extern volatile sig_atomic_t cli_interrupted;
/* Catches SIGINT into cli_interrupted (SA_RESETHAND makes a second Ctrl-C end the process); the
 * previous action goes to *old, for sigaction(SIGINT, old, NULL) afterwards. */
void cli_sigint_catch(struct sigaction *old);

/* Progress of a long run on stderr: shown when stderr is a terminal (unless --quiet) or when
 * --progress asks for it. On a terminal one line is redrawn in place; elsewhere (a log file) a
 * plain line is written at most once per second. */
typedef struct cli_progress_line {
    bool show;       /* progress is printed at all */
    bool tty;        /* stderr is a terminal: redraw one line */
    int width;       /* length of the line on screen (terminal) */
    double next;     /* elapsed seconds of the next plain line (not a terminal) */
    char label[96];  /* what is running, printed first ("" for none) */
} cli_progress_line;

/* show = forced || (stderr is a terminal && !quiet); empty label. */
void cli_progress_init(cli_progress_line *pl, bool quiet, bool forced);
/* The nmp_progress_fn of solve, bound and compare (user = a cli_progress_line): prints the
 * label, elapsed seconds, iteration, best and bound; returns nonzero after Ctrl-C so the solver
 * stops. */
int cli_progress_report(const nmp_progress *p, void *user);
/* On a terminal: redraws the line with text, padded over what was there before. */
void cli_progress_draw(cli_progress_line *pl, const char *text);
/* Erases the terminal line (nothing to do elsewhere). */
void cli_progress_clear(cli_progress_line *pl);

/* ------------------------------------------------- LP bound (nmp_cli_bound.c) */

/* Default time limit (seconds) of the LP bound and of each solve in compare. */
#define CLI_DEFAULT_SECONDS 60.0

/* The LP bound of one problem and how it ended. */
typedef struct cli_lp_bound {
    bool ran;        /* colgen ran and gave res */
    bool complete;   /* the LP was solved to completion (res.bound is the LP value) */
    nmp_result res;  /* res.bound, res.seconds, res.iterations (pricing rounds), res.status */
    char note[sizeof(nmp_msg) + 16]; /* when it did not run: why */
} cli_lp_bound;

/* Runs colgen for the LP bound within `seconds` (progress through pl); a refusal or a build
 * without GLPK is a note in lp, not an error. 0, or the exit code after a line naming input. */
int cli_lp_compute(const nmp_problem *pb, const char *input, double seconds, int threads,
                   nmp_device device,
                   cli_progress_line *pl, cli_lp_bound *lp);
/* lp_bound, lp_status, lp_complete, lp_seconds, lp_rounds, lp_note */
void cli_json_lp(json_t *o, const cli_lp_bound *lp);

/* ------------------------------------------------------------ commands */

int cli_cmd_score(cli_args *c);   /* nmp_cli_cmds.c */
int cli_cmd_solvers(cli_args *c); /* nmp_cli_cmds.c */
int cli_cmd_gen(cli_args *c);     /* nmp_cli_cmds.c */
int cli_cmd_solve(cli_args *c);   /* nmp_cli_solve.c */
int cli_cmd_bound(cli_args *c);   /* nmp_cli_bound.c */
int cli_cmd_compare(cli_args *c); /* nmp_cli_compare.c */
int cli_cmd_gpu_eval(cli_args *c);  /* nmp_cli_gpu.c */
int cli_cmd_gpu_bench(cli_args *c); /* nmp_cli_gpu.c */

#endif /* NMP_CLI_H */

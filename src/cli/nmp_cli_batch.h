/* nmp_cli_batch.h: nmperm batch, summary and merge: shared pieces of nmp_cli_batch.c (options,
 * job list, the journal read back, OUTDIR checks), nmp_cli_batch_run.c (worker processes),
 * nmp_cli_merge.c (shards joined), nmp_cli_summary.c (tables, files) and nmp_cli_svg.c (plots)
 * (not installed) */
#ifndef NMP_CLI_BATCH_H
#define NMP_CLI_BATCH_H

#include "nmp_cli.h"

#include <stdio.h>

#define BATCH_JOURNAL "journal.jsonl"
#define BATCH_FORMAT 1 /* "nmperm_batch" of the journal's header line */

/* A batch's journal as read back: the header (options, shard, job list) and per job its last
 * record (NULL: unfinished). */
typedef struct batch_view {
    json_t *header;   /* owned */
    json_t *jobs;     /* borrowed from header: array of job objects, in model order */
    json_t **records; /* per job; owned references */
    size_t count;
    int torn;         /* a torn last line was ignored */
} batch_view;

/* Reads OUTDIR's journal; 0 or the exit code after one line. A missing journal is an error
 * ("not a batch output folder"). (nmp_cli_batch.c, as the two below) */
int batch_view_load(const char *outdir, batch_view *v);
void batch_view_free(batch_view *v);
/* The journal's lines parsed: header (first line) and records (the others), owned refs. */
int batch_view_from_lines(const char *path, char **lines, int64_t count, batch_view *v);

/* Terminal table: per job, totals per input and solver, overall, failed jobs with their errors.
 * times false leaves out every wall-time column (for byte comparisons). (nmp_cli_summary.c) */
void summary_print(const batch_view *v, FILE *f, bool times);
/* summary.csv, summary.json, summary.md and the three plots/ SVGs under outdir, atomically. */
int summary_write_files(const batch_view *v, const char *outdir);

/* ------------------------------------------------------------- plots */

/* One point or bar of a plot. */
typedef struct svg_point {
    double x, y;
    int series;       /* colour / legend entry */
    int group;        /* bars: the input, for the shaded bands and labels */
} svg_point;

typedef struct svg_plot {
    const char *title, *xlabel, *ylabel;
    bool xlog, ylog;
    bool bars;                   /* a bar per point at x = its index, in order */
    const char *const *series;   /* legend names */
    int nseries;
    const char *const *groups;   /* bars: group names */
    int ngroups;
    const svg_point *points;
    size_t count;
} svg_plot;

/* The plot as a standalone SVG document (nmp heap, NUL-terminated; NULL when out of memory). */
char *svg_render(const svg_plot *p);

/* ------------------------------------------------------------- batch runs */

/* nmperm batch's options (nmp_cli_batch.c parses them). */
typedef struct batch_opts {
    const char **inputs;
    int ninputs;
    const char *outdir;
    char *solver_text;        /* owned copy, split in place */
    const char **solvers;
    int nsolvers;
    const char **param_text;
    int nparams;
    nmp_params *par;          /* per solver */
    nmp_pattern nm;
    nmp_objective objective;
    double budget, time_limit, bound_time;
    uint64_t seed;
    int64_t threads, jobs;
    nmp_device device;       /* for the solvers with a device search (and the LP bound) */
    int shard_i, shard_n;
    bool budget_set, time_limit_set, threads_set, jobs_set, shard_set, oversubscribe;
    bool resume, force, retry_failed, write_ckpt, quiet;
    const char *arch;
    int64_t heads, kv_heads;
    bool residual;
} batch_opts;

/* The first option that differs between two fingerprints (the journal header's "options"), as
 * "--seed: 1 here, 0 in <where>" into out; false when equal. (nmp_cli_batch.c) */
bool batch_fingerprint_diff(json_t *a, json_t *b, const char *where, char *out, size_t len);
/* True when dir holds no entry (or cannot be read). (nmp_cli_batch.c) */
bool batch_dir_is_empty(const char *dir);
/* "matrix", "space" or "write": a job's kind in the journal and job specs. (nmp_cli_batch_run.c) */
const char *batch_kind_name(nmp_batch_kind k);

/* The jobs of one run and their progress: the caller sets o, l, mine, share, self, state and
 * journal; the counters, slots and progress line are batch_run's. */
typedef struct batch_runner {
    const batch_opts *o;
    const nmp_batch_list *l;
    const int *mine;         /* per job: 1 when it is of this shard */
    const double *share;     /* per job: its seconds (0: fixed work) */
    char *self;              /* this program, for the workers */
    int *state;              /* per job: 0 pending, 1 running, 2 done ok, 3 failed */
    nmp_journal *journal;    /* each job's end is appended (fsync'd) */
    struct batch_slot *slots;
    int64_t total, done, failed;
    double cost_total, cost_done, start;
    cli_progress_line pl;
} batch_runner;

/* Runs the pending jobs (state 0) of this shard in o->jobs worker processes, largest first, a
 * write job once its spaces are done; progress on stderr unless o->quiet. 0, 130 after SIGINT or
 * SIGTERM (the workers killed), or the exit code after one line. (nmp_cli_batch_run.c) */
int batch_run(batch_runner *r);
/* nmperm batch --run-job SPEC: one job in this process; prints one JSON line with the result
 * ({"ok": true, ...} or {"ok": false, "error": ...}). 0 unless the line could not be printed.
 * (nmp_cli_batch_run.c) */
int batch_run_job(const char *spec_text);

/* ------------------------------------------------------------ commands */

int cli_cmd_batch(cli_args *c);   /* nmp_cli_batch.c */
int cli_cmd_merge(cli_args *c);   /* nmp_cli_merge.c */
int cli_cmd_summary(cli_args *c); /* nmp_cli_summary.c */

#endif /* NMP_CLI_BATCH_H */

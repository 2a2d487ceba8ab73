/* nmp_cli_batch.h: nmperm batch, summary and merge: shared pieces of nmp_cli_batch.c (runs,
 * journal, merge), nmp_cli_summary.c (tables, files) and nmp_cli_svg.c (plots) (not installed) */
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
 * ("not a batch output folder"). */
int batch_view_load(const char *outdir, batch_view *v);
void batch_view_free(batch_view *v);
/* The journal's lines parsed: header (first line) and records (the others), owned refs. */
int batch_view_from_lines(const char *path, char **lines, int64_t count, batch_view *v);

/* Terminal table: per job, totals per input and solver, overall, failed jobs with their errors.
 * times false leaves out every wall-time column (for byte comparisons). */
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

/* ------------------------------------------------------------ commands */

int cli_cmd_batch(cli_args *c);   /* nmp_cli_batch.c */
int cli_cmd_merge(cli_args *c);   /* nmp_cli_batch.c */
int cli_cmd_summary(cli_args *c); /* nmp_cli_summary.c */

#endif /* NMP_CLI_BATCH_H */

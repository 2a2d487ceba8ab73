/* nmp_cli_summary.c: nmperm summary: a batch's journal read back as a table (per job, per input,
 * overall, failed jobs), CSV, JSON and Markdown files and SVG plots */
#include "nmp_cli_batch.h"

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help_summary[] =
    "usage: nmperm summary OUTDIR [--no-times] [--write]\n"
    "\n"
    "Prints the table of a batch run (also of one still running or killed): per job its kept\n"
    "score, gain over the identity, efficacy, bound and gap when computed, solver, time and\n"
    "status; totals per input and overall; failed jobs with their errors.\n"
    "\n"
    "options:\n"
    "  --no-times            leave out the time columns (for comparing runs byte for byte)\n"
    "  --write               also rewrite OUTDIR's summary files and plots\n"
    "  -h, --help            this text\n";

/* ------------------------------------------------------------- rows */

/* One job as the summary shows it. */
typedef struct row {
    const char *id, *rel, *space, *solver, *kind, *state, *status, *error;
    int64_t index, rows, cols;
    double identity, kept, row_bound, gain, efficacy, bound, lp_bound, gap;
    double seconds, wall, share;
} row;

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void make_row(const batch_view *v, size_t k, row *r)
{
    const json_t *j = json_array_get(v->jobs, k), *rec = v->records[k];
    memset(r, 0, sizeof *r);
    r->id = str(j, "id");
    r->rel = str(j, "rel");
    r->space = str(j, "space");
    r->solver = str(j, "solver");
    r->kind = str(j, "kind");
    r->index = json_integer_value(json_object_get(j, "index"));
    r->rows = json_integer_value(json_object_get(rec && json_object_get(rec, "rows") ? rec : j,
                                                 "rows"));
    r->cols = json_integer_value(json_object_get(rec && json_object_get(rec, "cols") ? rec : j,
                                                 "cols"));
    r->state = rec ? str(rec, "state") : "unfinished";
    r->status = rec ? str(rec, "status") : NULL;
    r->error = rec ? str(rec, "error") : NULL;
    r->identity = num(rec, "identity");
    r->kept = num(rec, "kept");
    r->row_bound = num(rec, "row_bound");
    r->gain = r->identity > 0 ? 100.0 * (r->kept - r->identity) / r->identity : NAN;
    r->efficacy = 100.0 * num(rec, "efficacy");
    r->bound = num(rec, "bound");
    r->lp_bound = num(rec, "lp_bound");
    if (!(r->bound < r->row_bound))
        r->bound = NAN; /* only a bound better than the row bound is news */
    const double best = fmin(isnan(r->bound) ? INFINITY : r->bound,
                             isnan(r->lp_bound) ? INFINITY : r->lp_bound);
    r->gap = isfinite(best) && r->kept > 0 ? 100.0 * fmax(best - r->kept, 0) / r->kept : NAN;
    r->seconds = num(rec, "seconds");
    r->wall = num(rec, "wall");
    r->share = num(j, "share");
    if (!r->state)
        r->state = "failed";
}

static bool is_ok(const row *r)
{
    return strcmp(r->state, "ok") == 0;
}

/* Totals over jobs. */
typedef struct total {
    int64_t jobs, ok, failed, unfinished;
    double identity, kept, row_bound, seconds, wall;
} total;

static void add_total(total *t, const row *r)
{
    t->jobs++;
    if (strcmp(r->state, "unfinished") == 0) {
        t->unfinished++;
        return;
    }
    if (!is_ok(r)) {
        t->failed++;
        return;
    }
    t->ok++;
    if (isfinite(r->wall))
        t->wall += r->wall;
    if (strcmp(r->kind, "write") == 0)
        return;
    t->identity += r->identity;
    t->kept += r->kept;
    t->row_bound += r->row_bound;
    t->seconds += r->seconds;
}

static double total_gain(const total *t)
{
    return t->identity > 0 ? 100.0 * (t->kept - t->identity) / t->identity : 0;
}

static double total_efficacy(const total *t)
{
    return t->row_bound > t->identity ? 100.0 * (t->kept - t->identity) /
                                            (t->row_bound - t->identity)
                                      : 0;
}

/* Totals of solver's jobs among rows[k..end). */
static total solver_total(const row *rows, size_t k, size_t end, const char *solver)
{
    total t = { 0 };
    for (size_t q = k; q < end; q++)
        if (strcmp(rows[q].solver, solver) == 0)
            add_total(&t, &rows[q]);
    return t;
}

/* One line of totals: a solver's jobs of one input, or (input NULL) of all inputs. */
typedef struct total_line {
    const char *input, *solver;
    total t;
} total_line;

/* A journal as rows (per job) and lines of totals: per input (in row order) and solver (in the
 * options' order) where it has jobs, then per solver over all inputs. */
typedef struct table {
    row *rows;
    total_line *totals;
    size_t ntotals;
} table;

static void table_free(table *tb)
{
    nmp_free(tb->rows);
    nmp_free(tb->totals);
}

/* Fills tb (release with table_free, after a failure too); false when out of memory. */
static bool table_make(const batch_view *v, table *tb)
{
    const json_t *sv = json_object_get(json_object_get(v->header, "options"), "solvers");
    const size_t ns = json_array_size(sv);
    tb->rows = nmp_calloc(v->count + 1, sizeof *tb->rows);
    tb->totals = nmp_calloc(v->count + ns + 1, sizeof *tb->totals);
    tb->ntotals = 0;
    if (!tb->rows || !tb->totals)
        return false;
    const row *rows = tb->rows;
    for (size_t k = 0; k < v->count; k++)
        make_row(v, k, &tb->rows[k]);
    for (size_t k = 0; k < v->count;) {
        size_t end = k;
        while (end < v->count && strcmp(rows[end].rel, rows[k].rel) == 0)
            end++;
        for (size_t s = 0; s < ns; s++) {
            const char *solver = json_string_value(json_array_get(sv, s));
            const total t = solver_total(rows, k, end, solver);
            if (t.jobs)
                tb->totals[tb->ntotals++] = (total_line){ rows[k].rel, solver, t };
        }
        k = end;
    }
    for (size_t s = 0; s < ns; s++) {
        const char *solver = json_string_value(json_array_get(sv, s));
        tb->totals[tb->ntotals++] = (total_line){ NULL, solver,
                                                  solver_total(rows, 0, v->count, solver) };
    }
    return true;
}

/* Failed jobs (not unfinished ones) are listed with their errors. */
static bool is_failed(const row *r)
{
    return !is_ok(r) && strcmp(r->state, "unfinished") != 0;
}

/* Whether results depend on wall time, in words ("" when they do not). */
static void time_note(const batch_view *v, char *out, size_t len)
{
    const json_t *o = json_object_get(v->header, "options");
    const double budget = num(o, "budget"), limit = num(o, "time_limit");
    const double bt = num(o, "bound_time");
    out[0] = '\0';
    if (isfinite(budget))
        snprintf(out, len, "results depend on wall time (--budget %g s split over the jobs)",
                 budget);
    else if (isfinite(limit))
        snprintf(out, len, "results depend on wall time (--time-limit %g s per job)", limit);
    else if (isfinite(bt))
        snprintf(out, len, "LP bounds depend on wall time (--bound-time %g s)", bt);
}

/* The job's name without its solver: rel or rel:space. */
static void job_name(const row *r, char *out, size_t len)
{
    if (r->space)
        snprintf(out, len, "%s:%s", r->rel, r->space);
    else if (strcmp(r->kind, "write") == 0)
        snprintf(out, len, "%s (write)", r->rel);
    else
        snprintf(out, len, "%s", r->rel);
}

/* ------------------------------------------------------------- table */

static void fmt_num(char *out, size_t len, const char *fmt, double x)
{
    if (isfinite(x))
        snprintf(out, len, fmt, x);
    else
        snprintf(out, len, "-");
}

void summary_print(const batch_view *v, FILE *f, bool times)
{
    table tb;
    if (!table_make(v, &tb)) {
        table_free(&tb);
        return;
    }
    const row *rows = tb.rows;
    int width = 24;
    char name[1024], kept[32], gain[32], eff[32], gap[32], secs[32], shape[48];
    for (size_t k = 0; k < v->count; k++) {
        job_name(&rows[k], name, sizeof name);
        const int len = (int)strlen(name);
        width = len > width ? (len < 60 ? len : 60) : width;
    }
    fprintf(f, "# %-*s %-8s %11s %14s %8s %9s %8s", width - 2, "job", "solver", "shape", "kept",
            "gain", "efficacy", "gap");
    if (times)
        fprintf(f, " %9s", "seconds");
    fprintf(f, "  status\n");
    for (size_t k = 0; k < v->count; k++) {
        const row *r = &rows[k];
        job_name(r, name, sizeof name);
        const size_t len = strlen(name);
        const char *shown = len > (size_t)width ? name + len - (size_t)width : name;
        snprintf(shape, sizeof shape, "%lldx%lld", (long long)r->rows, (long long)r->cols);
        if (strcmp(r->kind, "write") == 0 || r->cols == 0)
            snprintf(shape, sizeof shape, "-");
        fmt_num(kept, sizeof kept, "%.3f", r->kept);
        fmt_num(gain, sizeof gain, "%+.2f%%", r->gain);
        fmt_num(eff, sizeof eff, "%.2f%%", r->efficacy);
        fmt_num(gap, sizeof gap, "%.3f%%", r->gap);
        fmt_num(secs, sizeof secs, "%.3f", strcmp(r->kind, "write") == 0 ? r->wall : r->seconds);
        fprintf(f, "%-*s %-8.8s %11s %14s %8s %9s %8s", width, shown, r->solver, shape, kept, gain,
                eff, gap);
        if (times)
            fprintf(f, " %9s", secs);
        fprintf(f, "  %s\n", is_ok(r) ? (r->status ? r->status : "written") : r->state);
    }
    /* totals per input and solver, then per solver */
    fprintf(f, "# totals per input and solver\n# %-*s %-8s %5s %6s %14s %14s %8s %9s", width,
            "input", "solver", "jobs", "failed", "kept_before", "kept_after", "gain", "efficacy");
    if (times)
        fprintf(f, " %9s", "seconds");
    fprintf(f, "\n");
    for (size_t q = 0; q < tb.ntotals; q++) {
        const char *input = tb.totals[q].input, *solver = tb.totals[q].solver;
        const total *t = &tb.totals[q].t;
        if (input) {
            const size_t len = strlen(input);
            const char *shown = len > (size_t)width ? input + len - (size_t)width : input;
            fprintf(f, "# %-*s %-8.8s %5lld %6lld %14.3f %14.3f %+7.2f%% %8.2f%%", width, shown,
                    solver, (long long)t->jobs, (long long)t->failed, t->identity, t->kept,
                    total_gain(t), total_efficacy(t));
            if (times)
                fprintf(f, " %9.3f", t->seconds);
        } else {
            fprintf(f, "# total %s: %lld jobs, %lld ok, %lld failed, %lld unfinished; kept %.3f "
                    "-> %.3f (%+.3f%%), efficacy %.2f%%", solver, (long long)t->jobs,
                    (long long)t->ok, (long long)t->failed, (long long)t->unfinished,
                    t->identity, t->kept, total_gain(t), total_efficacy(t));
            if (times)
                fprintf(f, ", solve %.2f s, job wall %.2f s", t->seconds, t->wall);
        }
        fprintf(f, "\n");
    }
    bool header = false;
    for (size_t k = 0; k < v->count; k++) {
        if (!is_failed(&rows[k]))
            continue;
        if (!header)
            fprintf(f, "# failed jobs:\n");
        header = true;
        fprintf(f, "#   %s: %s\n", rows[k].id, rows[k].error ? rows[k].error : "?");
    }
    char note[200];
    time_note(v, note, sizeof note);
    if (note[0])
        fprintf(f, "# note: %s\n", note);
    table_free(&tb);
}

/* ------------------------------------------------------------- text buffer */

typedef struct buf {
    char *text;
    size_t len, cap;
    bool bad;
} buf;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void put(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || b->bad) {
        b->bad = true;
        return;
    }
    if (b->len + (size_t)n + 1 > b->cap) {
        const size_t cap = 2 * b->cap + (size_t)n + 4096;
        char *grown = nmp_realloc(b->text, cap);
        if (!grown) {
            b->bad = true;
            return;
        }
        b->text = grown;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->text + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* A CSV text field: quoted, '"' doubled, control characters as spaces unless raw; NULL: empty. */
static void put_csv_str(buf *b, const char *s, bool raw)
{
    if (!s)
        return;
    put(b, "\"");
    for (; *s; s++)
        put(b, *s == '"' ? "\"\"" : "%c", raw || (unsigned char)*s >= 0x20 ? *s : ' ');
    put(b, "\"");
}

/* Markdown table cells: '|' escaped. */
static void put_md(buf *b, const char *s)
{
    for (; s && *s; s++)
        put(b, *s == '|' ? "\\|" : "%c", *s);
}

/* ------------------------------------------------------------- files */

static int write_buf(const char *outdir, const char *name, buf *b)
{
    char path[4096];
    nmp_msg msg = { { 0 } };
    snprintf(path, sizeof path, "%s/%s", outdir, name);
    if (b->bad)
        return cli_fail(CLI_EXIT_INTERNAL, path, "out of memory");
    const nmp_err e = nmp_batch_write_file(path, b->text ? b->text : "", b->len, &msg);
    return e == NMP_OK ? 0 : cli_fail_lib(e, path, &msg);
}

/* The per-job columns of summary.csv and (but for index) of summary.json's jobs, in order. */
typedef enum col_type {
    COL_ID,    /* a string; CSV: written as it is (control characters kept) */
    COL_STR,   /* a string or NULL */
    COL_INDEX, /* CSV only: the space's position, -1 for a write job */
    COL_INT,
    COL_NUM    /* CSV: empty, JSON: null when not finite */
} col_type;

typedef struct column {
    const char *name;
    col_type type;
    size_t at; /* offsetof the row's field */
} column;

static const column columns[] = {
    { "id", COL_ID, offsetof(row, id) },
    { "input", COL_STR, offsetof(row, rel) },
    { "space", COL_STR, offsetof(row, space) },
    { "solver", COL_STR, offsetof(row, solver) },
    { "kind", COL_STR, offsetof(row, kind) },
    { "index", COL_INDEX, offsetof(row, index) },
    { "rows", COL_INT, offsetof(row, rows) },
    { "cols", COL_INT, offsetof(row, cols) },
    { "state", COL_STR, offsetof(row, state) },
    { "status", COL_STR, offsetof(row, status) },
    { "identity", COL_NUM, offsetof(row, identity) },
    { "kept", COL_NUM, offsetof(row, kept) },
    { "gain_pct", COL_NUM, offsetof(row, gain) },
    { "efficacy_pct", COL_NUM, offsetof(row, efficacy) },
    { "bound", COL_NUM, offsetof(row, bound) },
    { "lp_bound", COL_NUM, offsetof(row, lp_bound) },
    { "gap_pct", COL_NUM, offsetof(row, gap) },
    { "error", COL_STR, offsetof(row, error) },
    { "seconds", COL_NUM, offsetof(row, seconds) },
    { "wall", COL_NUM, offsetof(row, wall) },
    { "share", COL_NUM, offsetof(row, share) },
};
#define NCOLUMNS (sizeof columns / sizeof columns[0])

static const char *col_str(const row *r, const column *c)
{
    const char *s;
    memcpy(&s, (const char *)r + c->at, sizeof s);
    return s;
}

static int64_t col_int(const row *r, const column *c)
{
    int64_t i;
    memcpy(&i, (const char *)r + c->at, sizeof i);
    return i;
}

static double col_num(const row *r, const column *c)
{
    double x;
    memcpy(&x, (const char *)r + c->at, sizeof x);
    return x;
}

static void csv_file(const batch_view *v, const row *rows, buf *b)
{
    for (size_t c = 0; c < NCOLUMNS; c++)
        put(b, "%s%s", c ? "," : "", columns[c].name);
    put(b, "\n");
    for (size_t k = 0; k < v->count; k++) {
        for (size_t c = 0; c < NCOLUMNS; c++) {
            const column *col = &columns[c];
            if (c)
                put(b, ",");
            if (col->type == COL_ID || col->type == COL_STR) {
                put_csv_str(b, col_str(&rows[k], col), col->type == COL_ID);
            } else if (col->type == COL_INDEX) {
                const int64_t index = col_int(&rows[k], col);
                put(b, "%lld", (long long)(index == INT64_MAX ? -1 : index));
            } else if (col->type == COL_INT) {
                put(b, "%lld", (long long)col_int(&rows[k], col));
            } else if (isfinite(col_num(&rows[k], col))) {
                put(b, "%.10g", col_num(&rows[k], col));
            }
        }
        put(b, "\n");
    }
}

/* A job's object of summary.json: every column but index. */
static json_t *job_object(const row *r)
{
    json_t *o = json_object();
    for (size_t c = 0; c < NCOLUMNS; c++) {
        const column *col = &columns[c];
        if (col->type == COL_ID || col->type == COL_STR) {
            const char *s = col_str(r, col);
            cli_jset(o, col->name, s ? json_string(s) : NULL);
        } else if (col->type == COL_INT) {
            cli_jset(o, col->name, json_integer(col_int(r, col)));
        } else if (col->type == COL_NUM) {
            cli_jset(o, col->name, cli_jnum(col_num(r, col)));
        }
    }
    return o;
}

static json_t *total_json(const total *t)
{
    json_t *o = json_object();
    cli_jset(o, "jobs", json_integer(t->jobs));
    cli_jset(o, "ok", json_integer(t->ok));
    cli_jset(o, "failed", json_integer(t->failed));
    cli_jset(o, "unfinished", json_integer(t->unfinished));
    cli_jset(o, "identity", cli_jnum(t->identity));
    cli_jset(o, "kept", cli_jnum(t->kept));
    cli_jset(o, "gain_pct", cli_jnum(total_gain(t)));
    cli_jset(o, "efficacy_pct", cli_jnum(total_efficacy(t)));
    cli_jset(o, "seconds", cli_jnum(t->seconds));
    return o;
}

static json_t *json_file(const batch_view *v, const table *tb)
{
    json_t *root = json_object(), *jobs = json_array(), *inputs = json_array();
    json_t *solvers = json_array(), *failed = json_array();
    const row *rows = tb->rows;
    char note[200];
    time_note(v, note, sizeof note);
    cli_jset(root, "options", json_deep_copy(json_object_get(v->header, "options")));
    cli_jset(root, "wall_time_dependent", note[0] ? json_string(note) : json_false());
    for (size_t k = 0; k < v->count; k++) {
        const row *r = &rows[k];
        json_array_append_new(jobs, job_object(r));
        if (is_failed(r)) {
            json_t *fo = json_object();
            cli_jset(fo, "id", json_string(r->id));
            cli_jset(fo, "error", json_string(r->error ? r->error : "?"));
            json_array_append_new(failed, fo);
        }
    }
    for (size_t q = 0; q < tb->ntotals; q++) {
        const total_line *tl = &tb->totals[q];
        json_t *o = total_json(&tl->t);
        if (tl->input)
            json_object_set_new(o, "input", json_string(tl->input));
        json_object_set_new(o, "solver", json_string(tl->solver));
        json_array_append_new(tl->input ? inputs : solvers, o);
    }
    cli_jset(root, "jobs", jobs);
    cli_jset(root, "inputs", inputs);
    cli_jset(root, "solvers", solvers);
    cli_jset(root, "failed", failed);
    return root;
}

static void md_file(const batch_view *v, const table *tb, buf *b)
{
    const row *rows = tb->rows;
    char note[200], name[1024], t[6][32];
    time_note(v, note, sizeof note);
    put(b, "# nmperm batch summary\n\n");
    if (note[0])
        put(b, "Note: %s.\n\n", note);
    put(b, "![gain per layer](plots/gain_per_layer.svg)\n\n");
    put(b, "![solvers: efficacy vs time](plots/solvers.svg)\n\n");
    put(b, "![time vs matrix size](plots/time_vs_size.svg)\n\n");
    put(b, "| job | solver | shape | kept | gain | efficacy | gap | seconds | status |\n");
    put(b, "|---|---|---|---:|---:|---:|---:|---:|---|\n");
    for (size_t k = 0; k < v->count; k++) {
        const row *r = &rows[k];
        job_name(r, name, sizeof name);
        fmt_num(t[0], sizeof t[0], "%.3f", r->kept);
        fmt_num(t[1], sizeof t[1], "%+.2f%%", r->gain);
        fmt_num(t[2], sizeof t[2], "%.2f%%", r->efficacy);
        fmt_num(t[3], sizeof t[3], "%.3f%%", r->gap);
        fmt_num(t[4], sizeof t[4], "%.3f", strcmp(r->kind, "write") == 0 ? r->wall : r->seconds);
        put(b, "| ");
        put_md(b, name);
        if (r->cols > 0)
            snprintf(t[5], sizeof t[5], "%lldx%lld", (long long)r->rows, (long long)r->cols);
        else
            snprintf(t[5], sizeof t[5], "-");
        put(b, " | %s | %s | %s | %s | %s | %s | %s | %s |\n", r->solver, t[5], t[0], t[1],
            t[2], t[3], t[4], is_ok(r) ? (r->status ? r->status : "written") : r->state);
    }
    put(b, "\n## Totals\n\n| input | solver | jobs | failed | kept before | kept after | gain | "
        "efficacy | seconds |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t q = 0; q < tb->ntotals; q++) {
        const total *tt = &tb->totals[q].t;
        put(b, "| ");
        if (tb->totals[q].input)
            put_md(b, tb->totals[q].input);
        else
            put(b, "**all**");
        put(b, " | %s | %lld | %lld | %.3f | %.3f | %+.2f%% | %.2f%% | %.3f |\n",
            tb->totals[q].solver, (long long)tt->jobs, (long long)tt->failed, tt->identity,
            tt->kept, total_gain(tt), total_efficacy(tt), tt->seconds);
    }
    bool header = false;
    for (size_t k = 0; k < v->count; k++) {
        if (!is_failed(&rows[k]))
            continue;
        if (!header)
            put(b, "\n## Failed jobs\n\n");
        header = true;
        put(b, "- `");
        put_md(b, rows[k].id);
        put(b, "`: ");
        put_md(b, rows[k].error ? rows[k].error : "?");
        put(b, "\n");
    }
}

/* ------------------------------------------------------------- plots */

static int write_plot(const char *outdir, const char *name, const svg_plot *p)
{
    char *svg = svg_render(p);
    buf b = { svg, svg ? strlen(svg) : 0, 0, !svg };
    const int rc = write_buf(outdir, name, &b);
    nmp_free(svg);
    return rc;
}

/* The three plots of the jobs that ran (solve jobs that did not fail): gain per job in model
 * order, one band per checkpoint or per folder of matrices; efficacy vs time; time vs size. */
static int plots(const batch_view *v, const row *rows, const char *outdir)
{
    const json_t *sv = json_object_get(json_object_get(v->header, "options"), "solvers");
    const int ns = (int)json_array_size(sv);
    const char **series = nmp_calloc((size_t)ns + 1, sizeof *series);
    const char **groups = nmp_calloc(v->count + 1, sizeof *groups);
    svg_point *pts = nmp_calloc(3 * v->count + 1, sizeof *pts);
    svg_point *gain = pts, *eff = pts + v->count, *size = pts + 2 * v->count;
    char *names = NULL;
    int rc = 0, ng = 0;
    size_t np = 0;
    if (!series || !groups || !pts) {
        rc = cli_fail(CLI_EXIT_INTERNAL, outdir, "out of memory");
        goto out;
    }
    for (int s = 0; s < ns; s++)
        series[s] = json_string_value(json_array_get(sv, s));
    names = nmp_calloc(v->count + 1, 512);
    if (!names) {
        rc = cli_fail(CLI_EXIT_INTERNAL, outdir, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < v->count; k++) {
        const row *r = &rows[k];
        if (!is_ok(r) || strcmp(r->kind, "write") == 0)
            continue;
        char *name = names + 512 * (size_t)ng;
        const char *slash = strrchr(r->rel, '/');
        if (r->space)
            snprintf(name, 512, "%s", r->rel);
        else if (slash)
            snprintf(name, 512, "%.*s/", (int)(slash - r->rel), r->rel);
        else
            snprintf(name, 512, "./");
        if (!ng || strcmp(groups[ng - 1], name) != 0)
            groups[ng++] = name;
        int s = 0;
        while (s < ns - 1 && strcmp(series[s], r->solver) != 0)
            s++;
        const double secs = fmax(r->seconds, 1e-4);
        gain[np] = (svg_point){ (double)np, r->gain, s, ng - 1 };
        eff[np] = (svg_point){ secs, r->efficacy, s, 0 };
        size[np] = (svg_point){ (double)r->rows * (double)r->cols, secs, s, 0 };
        np++;
    }
    const svg_plot plot[3] = {
        { "Gain over the identity per layer (model order)",
          "jobs in model order, grouped by checkpoint or folder", "gain in kept saliency (%)",
          false, false, true, series, ns, groups, ng, gain, np },
        { "Solvers: efficacy vs time", "solve time (s)", "efficacy (%)", true, false, false,
          series, ns, NULL, 0, eff, np },
        { "Time vs matrix size", "matrix size (rows x cols)", "solve time (s)", true, true,
          false, series, ns, NULL, 0, size, np },
    };
    const char *const file[3] = { "plots/gain_per_layer.svg", "plots/solvers.svg",
                                  "plots/time_vs_size.svg" };
    for (int p = 0; p < 3 && !rc; p++)
        rc = write_plot(outdir, file[p], &plot[p]);
out:
    nmp_free(names);
    nmp_free(series);
    nmp_free(groups);
    nmp_free(pts);
    return rc;
}

int summary_write_files(const batch_view *v, const char *outdir)
{
    table tb;
    buf csv = { 0 }, md = { 0 };
    json_t *j = NULL;
    char *jtext = NULL;
    int rc = 0;
    if (!table_make(v, &tb)) {
        table_free(&tb);
        return cli_fail(CLI_EXIT_INTERNAL, outdir, "out of memory");
    }
    csv_file(v, tb.rows, &csv);
    if ((rc = write_buf(outdir, "summary.csv", &csv)))
        goto out;
    j = json_file(v, &tb);
    jtext = json_dumps(j, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
    buf jb = { jtext, jtext ? strlen(jtext) : 0, 0, !jtext };
    if (jtext) { /* end with a newline */
        buf tmp = { 0 };
        put(&tmp, "%s\n", jtext);
        rc = write_buf(outdir, "summary.json", &tmp);
        nmp_free(tmp.text);
    } else {
        rc = write_buf(outdir, "summary.json", &jb);
    }
    if (rc)
        goto out;
    md_file(v, &tb, &md);
    if ((rc = write_buf(outdir, "summary.md", &md)))
        goto out;
    rc = plots(v, tb.rows, outdir);
out:
    free(jtext);
    json_decref(j);
    nmp_free(csv.text);
    nmp_free(md.text);
    table_free(&tb);
    return rc;
}

/* ------------------------------------------------------------- command */

int cli_cmd_summary(cli_args *c)
{
    if (cli_help_or_version(c, help_summary))
        return 0;
    const char *dir = NULL;
    bool times = true, write = false;
    for (c->k = 2; c->k < c->argc && !c->bad; c->k++) {
        if (cli_is_flag(c, "--no-times"))
            times = false;
        else if (cli_is_flag(c, "--write"))
            write = true;
        else
            cli_take_input(c, &dir);
    }
    if (!c->bad && !dir)
        cli_usage(c, "missing OUTDIR (the output folder of nmperm batch)");
    if (c->bad)
        return CLI_EXIT_USAGE;
    batch_view v;
    int rc = batch_view_load(dir, &v);
    if (rc)
        return rc;
    if (write)
        rc = summary_write_files(&v, dir);
    if (!rc)
        summary_print(&v, stdout, times);
    batch_view_free(&v);
    return rc;
}

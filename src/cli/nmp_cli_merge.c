/* nmp_cli_merge.c: nmperm merge: the output folders of a batch's shards joined into one, the
 * same files as one run on one machine */
#include "nmp_cli_batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char help_merge[] =
    "usage: nmperm merge OUTDIR... -o MERGED [--force] [--quiet]\n"
    "\n"
    "Joins the output folders of the shards of one batch (nmperm batch --shard I/N, same options)\n"
    "into MERGED: the same files as one run on one machine (journal, permutations, checkpoints,\n"
    "summary files and plots). Refuses shards run with other options, missing or repeated\n"
    "shards, and shards with unfinished jobs.\n"
    "\n"
    "options:\n"
    "  -o, --output MERGED   the merged folder\n"
    "  --force               replace a merged folder that already holds a run\n"
    "  --quiet               no table\n"
    "  -h, --help            this text\n";

typedef struct merge_job {
    json_t *job, *record;
    const char *dir;
    int solver; /* position in the options' solver list */
} merge_job;

static int cmp_merge(const void *pa, const void *pb)
{
    const merge_job *a = pa, *b = pb;
    const char *ra = json_string_value(json_object_get(a->job, "rel"));
    const char *rb = json_string_value(json_object_get(b->job, "rel"));
    int c = nmp_batch_name_cmp(ra ? ra : "", rb ? rb : "");
    if (c)
        return c;
    const json_int_t ia = json_integer_value(json_object_get(a->job, "index"));
    const json_int_t ib = json_integer_value(json_object_get(b->job, "index"));
    if (ia != ib)
        return ia < ib ? -1 : 1;
    if (a->solver != b->solver)
        return a->solver < b->solver ? -1 : 1;
    return strcmp(json_string_value(json_object_get(a->job, "id")),
                  json_string_value(json_object_get(b->job, "id")));
}

int cli_cmd_merge(cli_args *c)
{
    if (cli_help_or_version(c, help_merge))
        return 0;
    const char **dirs = nmp_calloc((size_t)c->argc, sizeof *dirs), *out = NULL, *v = NULL;
    int ndirs = 0, rc = 0;
    bool force = false, quiet = false;
    batch_view *views = NULL;
    merge_job *mj = NULL;
    size_t nmj = 0;
    json_t *header = NULL;
    char *text = NULL;
    size_t tlen = 0;
    nmp_msg msg = { { 0 } };
    if (!dirs)
        return cli_fail(CLI_EXIT_INTERNAL, "merge", "out of memory");
    for (c->k = 2; c->k < c->argc && !c->bad; c->k++) {
        if (cli_is_flag(c, "--force"))
            force = true;
        else if (cli_is_flag(c, "--quiet"))
            quiet = true;
        else if (cli_take(c, "--output", "-o", &v))
            out = v;
        else if (c->argv[c->k][0] == '-' && c->argv[c->k][1])
            cli_usage(c, "unknown option '%s'", c->argv[c->k]);
        else
            dirs[ndirs++] = c->argv[c->k];
    }
    if (!c->bad && !ndirs)
        cli_usage(c, "missing the shards' output folders");
    else if (!c->bad && !out)
        cli_usage(c, "missing -o MERGED");
    if (c->bad) {
        nmp_free(dirs);
        return CLI_EXIT_USAGE;
    }
    views = nmp_calloc((size_t)ndirs, sizeof *views);
    if (!views) {
        rc = cli_fail(CLI_EXIT_INTERNAL, "merge", "out of memory");
        goto out;
    }
    int n = 0;
    for (int d = 0; d < ndirs; d++) {
        if ((rc = batch_view_load(dirs[d], &views[d])))
            goto out;
        json_t *sh = json_object_get(views[d].header, "shard");
        const json_int_t i = json_integer_value(json_array_get(sh, 0));
        const json_int_t nn = json_integer_value(json_array_get(sh, 1));
        if (d == 0)
            n = (int)nn;
        char diff[1200], where[4200];
        snprintf(where, sizeof where, "%s", dirs[0]);
        if (d > 0 && batch_fingerprint_diff(json_object_get(views[d].header, "options"),
                                      json_object_get(views[0].header, "options"), where, diff,
                                      sizeof diff)) {
            rc = cli_fail(CLI_EXIT_USAGE, dirs[d], "run with other options than the other "
                          "shards: %s", diff);
            goto out;
        }
        if (nn != n) {
            rc = cli_fail(CLI_EXIT_USAGE, dirs[d], "is shard %lld/%lld, %s is of %d shards",
                          (long long)i, (long long)nn, dirs[0], n);
            goto out;
        }
        for (int q = 0; q < d; q++)
            if (json_integer_value(json_array_get(json_object_get(views[q].header, "shard"),
                                                  0)) == i) {
                rc = cli_fail(CLI_EXIT_USAGE, "merge", "shard %lld/%d given twice (%s and %s)",
                              (long long)i, n, dirs[q], dirs[d]);
                goto out;
            }
        size_t unfinished = 0;
        for (size_t k = 0; k < views[d].count; k++)
            unfinished += !views[d].records[k];
        if (unfinished) {
            rc = cli_fail(CLI_EXIT_USAGE, dirs[d], "shard %lld/%d has %zu of %zu jobs "
                          "unfinished (run it again with --resume)", (long long)i, n,
                          unfinished, views[d].count);
            goto out;
        }
        nmj += views[d].count;
    }
    for (int i = 0; i < n; i++) {
        int d = 0;
        while (d < ndirs && json_integer_value(json_array_get(
                                json_object_get(views[d].header, "shard"), 0)) != i)
            d++;
        if (d == ndirs) {
            rc = cli_fail(CLI_EXIT_USAGE, "merge", "shard %d/%d is missing (%d of %d shards "
                          "given)", i, n, ndirs, n);
            goto out;
        }
    }
    mj = nmp_calloc(nmj + 1, sizeof *mj);
    if (!mj) {
        rc = cli_fail(CLI_EXIT_INTERNAL, "merge", "out of memory");
        goto out;
    }
    json_t *solvers = json_object_get(json_object_get(views[0].header, "options"), "solvers");
    nmj = 0;
    for (int d = 0; d < ndirs; d++)
        for (size_t k = 0; k < views[d].count; k++) {
            merge_job *m = &mj[nmj++];
            m->job = json_array_get(views[d].jobs, k);
            m->record = views[d].records[k];
            m->dir = dirs[d];
            const char *sv = json_string_value(json_object_get(m->job, "solver"));
            m->solver = 0;
            for (size_t s = 0; s < json_array_size(solvers); s++)
                if (sv && strcmp(json_string_value(json_array_get(solvers, s)), sv) == 0)
                    m->solver = (int)s;
        }
    qsort(mj, nmj, sizeof *mj, cmp_merge);
    for (size_t k = 1; k < nmj; k++)
        if (strcmp(json_string_value(json_object_get(mj[k].job, "id")),
                   json_string_value(json_object_get(mj[k - 1].job, "id"))) == 0) {
            rc = cli_fail(CLI_EXIT_USAGE, "merge", "job %s is in two shards (%s and %s): "
                          "overlapping shards", json_string_value(json_object_get(mj[k].job,
                                                                                   "id")),
                          mj[k - 1].dir, mj[k].dir);
            goto out;
        }
    /* the merged folder */
    char jpath[4096];
    snprintf(jpath, sizeof jpath, "%s/%s", out, BATCH_JOURNAL);
    struct stat st;
    if (!force && stat(out, &st) == 0 && !batch_dir_is_empty(out)) {
        rc = cli_fail(CLI_EXIT_USAGE, out, "is not empty (choose another folder, or --force)");
        goto out;
    }
    for (size_t k = 0; k < nmj; k++) {
        const char *state = json_string_value(json_object_get(mj[k].record, "state"));
        const char *output = json_string_value(json_object_get(mj[k].job, "output"));
        if (!state || strcmp(state, "ok") != 0 || !output)
            continue;
        char from[4096], to[4096];
        snprintf(from, sizeof from, "%s/%s", mj[k].dir, output);
        snprintf(to, sizeof to, "%s/%s", out, output);
        nmp_err e = nmp_batch_copy_file(from, to, &msg);
        if (e != NMP_OK) {
            rc = cli_fail_lib(e, from, &msg);
            goto out;
        }
    }
    header = json_deep_copy(views[0].header);
    json_t *jobs = json_array(), *sh = json_array();
    json_array_append_new(sh, json_integer(0));
    json_array_append_new(sh, json_integer(1));
    cli_jset(header, "shard", sh);
    cli_jset(header, "merged_from", json_integer(n));
    for (size_t k = 0; k < nmj; k++)
        json_array_append(jobs, mj[k].job);
    cli_jset(header, "jobs", jobs);
    for (size_t k = 0; k <= nmj; k++) {
        json_t *line = k == 0 ? header : mj[k - 1].record;
        char *one = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(17));
        const size_t len = one ? strlen(one) : 0;
        char *grown = one ? nmp_realloc(text, tlen + len + 2) : NULL;
        if (!grown) {
            free(one);
            rc = cli_fail(CLI_EXIT_INTERNAL, "merge", "out of memory");
            goto out;
        }
        text = grown;
        memcpy(text + tlen, one, len);
        text[tlen + len] = '\n';
        tlen += len + 1;
        free(one);
    }
    nmp_err e = nmp_batch_write_file(jpath, text, tlen, &msg);
    if (e != NMP_OK) {
        rc = cli_fail_lib(e, out, &msg);
        goto out;
    }
    batch_view mv;
    if ((rc = batch_view_load(out, &mv)))
        goto out;
    rc = summary_write_files(&mv, out);
    if (!rc && !quiet)
        summary_print(&mv, stdout, true);
    batch_view_free(&mv);
out:
    for (int d = 0; views && d < ndirs; d++)
        batch_view_free(&views[d]);
    nmp_free(views);
    nmp_free(mj);
    nmp_free(text);
    json_decref(header);
    nmp_free(dirs);
    return rc;
}

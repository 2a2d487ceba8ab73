/* nmp_cli_cmds.c: nmperm score, solvers and gen */
#include "nmp_cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help_score[] =
    "usage: nmperm score W.npy [--perm P.npy] [options]\n"
    "\n"
    "Prints the unpruned total, the kept score of the identity, the row bound (each row keeps its\n"
    "best cols*N/M values: unstructured pruning at the same density), and with --perm the kept\n"
    "score of P and its efficacy = (kept - identity) / (row bound - identity).\n"
    "\n"
    "options:\n"
    "  --perm P.npy          a 1-D integer permutation, P[k] = source column at slot k\n"
    CLI_HELP_PROBLEM
    "  --json                print one JSON object instead of text\n"
    "  -h, --help            this text\n"
    "      --version         print the version\n";

/* --------------------------------------------------------------- score */

int cli_cmd_score(cli_args *c)
{
    if (cli_help_or_version(c, help_score))
        return 0;
    cli_problem_opts po = { NULL, NULL, NULL, { 2, 4 }, NMP_OBJ_ABS, false };
    const char *perm_path = NULL, *v = NULL;
    bool json = false;
    for (c->k = 2; c->k < c->argc && !c->bad; c->k++) {
        if (cli_is_flag(c, "--json")) {
            json = true;
        } else if (cli_take(c, "--perm", NULL, &v)) {
            perm_path = v;
        } else if (cli_take_problem_opt(c, &po)) {
        } else {
            cli_take_input(c, &po.input);
        }
    }
    if (!c->bad)
        cli_check_problem_opts(c, &po);
    if (c->bad)
        return CLI_EXIT_USAGE;

    cli_loaded ld;
    int32_t *perm = NULL;
    int rc = cli_load_problem(&po, &ld);
    if (rc == 0 && perm_path)
        rc = cli_load_perm(perm_path, po.input, ld.w.cols, &perm);
    if (rc == 0) {
        const nmp_problem *pb = ld.pb;
        const double identity = nmp_score_identity(pb);
        double kept = identity;
        const nmp_err e = perm ? nmp_score(pb, perm, &kept) : NMP_OK;
        if (e != NMP_OK) {
            rc = cli_fail_lib(e, po.input, NULL);
        } else if (json) {
            json_t *o = json_object();
            cli_json_problem(o, po.input, pb);
            cli_jset(o, "perm", perm_path ? json_string(perm_path) : json_null());
            cli_jset(o, "kept", cli_jnum(kept));
            cli_jset(o, "gain_pct", cli_jnum(cli_gain_pct(identity, kept)));
            cli_jset(o, "efficacy_pct", cli_jnum(100.0 * nmp_score_efficacy(pb, kept)));
            rc = cli_print_json(o);
        } else {
            cli_text_problem(po.input, pb);
            printf("total       %.4f   (unpruned)\n", nmp_score_total(pb));
            printf("identity    %.4f\n", identity);
            printf("row bound   %.4f   (unstructured pruning, same density)\n",
                   nmp_score_row_bound(pb));
            printf("kept        %.4f   (%s)\n", kept, perm_path ? perm_path : "identity");
            printf("gain        %+.3f%% over identity\n", cli_gain_pct(identity, kept));
            printf("efficacy    %.2f%%\n", 100.0 * nmp_score_efficacy(pb, kept));
        }
    }
    nmp_free(perm);
    cli_loaded_free(&ld);
    return rc;
}

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

/* ------------------------------------------------------------- solvers */

int cli_cmd_solvers(cli_args *c)
{
    if (cli_help_or_version(c, help_solvers))
        return 0;
    bool json = false;
    for (c->k = 2; c->k < c->argc && !c->bad; c->k++) {
        if (cli_is_flag(c, "--json")) {
            json = true;
        } else {
            cli_usage(c, "unexpected argument '%s'", c->argv[c->k]);
        }
    }
    if (c->bad)
        return CLI_EXIT_USAGE;
    const nmp_solver_ops *const *list = nmp_solver_list();
    if (json) {
        json_t *arr = json_array();
        for (const nmp_solver_ops *const *s = list; *s; s++) {
            json_t *o = json_object(), *params = json_array();
            cli_jset(o, "name", json_string((*s)->name));
            cli_jset(o, "summary", json_string((*s)->summary));
            cli_jset(o, "device", json_boolean((*s)->device));
            for (const nmp_param_desc *d = (*s)->params; d && d->name; d++) {
                json_t *p = json_object();
                cli_jset(p, "name", json_string(d->name));
                cli_jset(p, "default", cli_jnum(d->def));
                cli_jset(p, "min", cli_jnum(d->lo));
                cli_jset(p, "max", cli_jnum(d->hi));
                cli_jset(p, "help", json_string(d->help ? d->help : ""));
                json_array_append_new(params, p);
            }
            cli_jset(o, "params", params);
            json_array_append_new(arr, o);
        }
        json_t *root = json_object();
        cli_jset(root, "solvers", arr);
        return cli_print_json(root);
    }
    for (const nmp_solver_ops *const *s = list; *s; s++) {
        printf("%-12s %s%s\n", (*s)->name, (*s)->summary,
               (*s)->device ? " [--device]" : "");
        for (const nmp_param_desc *d = (*s)->params; d && d->name; d++)
            printf("    %-16s default %-10g range [%g, %g]  %s\n", d->name, d->def, d->lo, d->hi,
                   d->help ? d->help : "");
    }
    printf("\nset a parameter with: nmperm solve W.npy --solver NAME --param KEY=VALUE\n"
           "[--device]: has a device search (nmperm solve --device gpu|auto|ref)\n");
    return 0;
}

/* ----------------------------------------------------------------- gen */

int cli_cmd_gen(cli_args *c)
{
    if (cli_help_or_version(c, help_gen))
        return 0;
    const char *out = NULL, *dist = "absnormal", *v = NULL;
    int64_t rows = 0, cols = 0;
    uint64_t seed = 0;
    bool legacy = false, dist_set = false;
    for (c->k = 2; c->k < c->argc && !c->bad; c->k++) {
        const char *a = c->argv[c->k];
        if (cli_is_flag(c, "--numpy-legacy-rand")) {
            legacy = true;
        } else if (cli_take(c, "--output", "-o", &v)) {
            out = v;
        } else if (cli_take(c, "--rows", NULL, &v)) {
            cli_parse_i64(c, "--rows", v, 1, INT32_MAX, &rows);
        } else if (cli_take(c, "--cols", NULL, &v)) {
            cli_parse_i64(c, "--cols", v, 1, INT32_MAX, &cols);
        } else if (cli_take(c, "--seed", NULL, &v)) {
            cli_parse_u64(c, "--seed", v, UINT64_MAX, &seed);
        } else if (cli_take(c, "--dist", NULL, &v)) {
            dist = v;
            dist_set = true;
            if (v && strcmp(v, "absnormal") != 0 && strcmp(v, "uniform") != 0)
                cli_usage(c, "--dist '%s': expected absnormal or uniform", v);
        } else {
            cli_usage(c, "unexpected argument '%s'", a);
        }
    }
    if (!c->bad && (!out || !rows || !cols))
        cli_usage(c, "needs -o FILE, --rows R and --cols C");
    if (!c->bad && legacy && dist_set)
        cli_usage(c, "--numpy-legacy-rand and --dist exclude each other");
    if (!c->bad && legacy && seed > UINT32_MAX)
        cli_usage(c, "--seed %llu: NumPy's legacy seed must be below 2^32",
                  (unsigned long long)seed);
    if (c->bad)
        return CLI_EXIT_USAGE;
    if ((uint64_t)rows > SIZE_MAX / sizeof(float) / (uint64_t)cols)
        return cli_fail(CLI_EXIT_USAGE, out, "%lld x %lld is too large", (long long)rows,
                        (long long)cols);

    const size_t count = (size_t)rows * (size_t)cols;
    float *data = nmp_malloc(count * sizeof *data);
    if (!data)
        return cli_fail_lib(NMP_ERR_NOMEM, out, NULL);
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
    return e == NMP_OK ? 0 : cli_fail_lib(e, out, &msg);
}

/* nmp_cli_ckpt.c: nmperm plan / permute / apply: channel spaces of a safetensors checkpoint,
 * solved per space, written permuted (optionally pruned), verified and reported */
#include "nmp_cli_ckpt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HELP_PLAN_OPTS                                                                             \
    "  --arch A              auto (default), bert, gpt2, llama (= mistral), resnet\n"              \
    "  --plan FILE           a JSON plan (as 'nmperm plan' prints) instead of a preset\n"          \
    "  --heads H             attention heads (default: config.json beside the input); with\n"     \
    "                        them the attention value path gets one space per (KV) head\n"         \
    "  --kv-heads K          key/value heads for grouped-query attention (default: config)\n"      \
    "  --nm N:M              sparsity pattern (default 2:4)\n"                                  \
    "  --residual            also permute the residual stream (bert, gpt2, llama): one space of\n" \
    "                        the hidden size over the whole network (embeddings, every norm,\n"   \
    "                        every block's input and output projections); off by default\n"

static const char help_plan[] =
    "usage: nmperm plan IN.safetensors [options]\n"
    "\n"
    "Prints the channel spaces inferred for a checkpoint as a JSON plan, for review or editing\n"
    "(then pass it to 'nmperm permute --plan'). Spaces that cannot be permuted say why.\n"
    "\n"
    "options:\n" HELP_PLAN_OPTS
    "  -h, --help            this text\n";

static const char help_permute[] =
    "usage: nmperm permute IN.safetensors -o OUT.safetensors [options]\n"
    "\n"
    "Permutes every free channel space of a checkpoint so that more weight survives N:M pruning;\n"
    "the output computes the same function as the input (before pruning). Tensors outside the\n"
    "spaces are copied byte for byte; the input is never modified.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE     the permuted checkpoint (written atomically)\n" HELP_PLAN_OPTS
    "  --solver NAME         solver per space (default auto, else swap)\n"
    "  --time-limit S        seconds per space (default 0.25; 0: none)\n"
    "  --seed N              seed of the solvers and of verification (default 0)\n"
    "  --threads T           solver threads (0: the OpenMP default)\n"
    "  --prune               also zero the N:M-pruned weights of the consumers\n"
    "  --verify              check each space on random inputs (float64) computes as before\n"
    "  --report R.json       write the report (spaces, scores, permutations) here\n"
    "  --quiet               no progress and no table\n"
    "  -h, --help            this text\n";

static const char help_apply[] =
    "usage: nmperm apply IN.safetensors --report R.json -o OUT.safetensors [options]\n"
    "\n"
    "Re-applies the permutations saved in a report of 'nmperm permute' without solving.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE     the permuted checkpoint (written atomically)\n"
    "  --report R.json       the report to take the spaces and permutations from\n"
    "  --nm N:M              pattern for --prune (default: the report's, else 2:4)\n"
    "  --prune               also zero the N:M-pruned weights of the consumers\n"
    "  --verify              check each space on random inputs (float64) computes as before\n"
    "  --seed N              seed of verification (default 0)\n"
    "  --quiet               no table\n"
    "  -h, --help            this text\n";

/* Verification tolerance: a permutation only reorders float64 sums of the same products, so
 * outputs agree to a few ulps of double; anything above 1e-9 is a wrong coupling. */
#define VERIFY_TOL 1e-9
#define VERIFY_SAMPLES 4

typedef struct ckpt_opts {
    const char *input, *output, *arch, *plan_path, *report, *solver;
    int64_t heads, kv_heads;
    nmp_pattern nm;
    bool nm_set, prune, verify, quiet, residual;
    nmp_params par;
} ckpt_opts;

/* Parses the options of plan, permute and apply; cmd picks which are allowed. */
static void parse(cli_args *c, ckpt_opts *o, char cmd)
{
    const char *v = NULL;
    nmp_msg msg = { { 0 } };
    o->nm = (nmp_pattern){ 2, 4 };
    o->par.time_limit = 0.25; /* all-MiniLM-L6-v2 (78 spaces) in ~20 s with auto */
    const bool solve = cmd == 'p', any_plan = cmd != 'a';
    for (c->k = 2; c->k < c->argc && !c->bad; c->k++) {
        if (cmd != 'l' && cli_is_flag(c, "--prune")) {
            o->prune = true;
        } else if (cmd != 'l' && cli_is_flag(c, "--verify")) {
            o->verify = true;
        } else if (cmd != 'l' && cli_is_flag(c, "--quiet")) {
            o->quiet = true;
        } else if (cmd != 'l' && cli_take(c, "--output", "-o", &v)) {
            o->output = v;
        } else if (cmd != 'l' && cli_take(c, "--report", NULL, &v)) {
            o->report = v;
        } else if (any_plan && cli_is_flag(c, "--residual")) {
            o->residual = true;
        } else if (any_plan && cli_take(c, "--arch", NULL, &v)) {
            o->arch = v;
        } else if (any_plan && cli_take(c, "--plan", NULL, &v)) {
            o->plan_path = v;
        } else if (any_plan && cli_take(c, "--heads", NULL, &v)) {
            cli_parse_i64(c, "--heads", v, 1, 65536, &o->heads);
        } else if (any_plan && cli_take(c, "--kv-heads", NULL, &v)) {
            cli_parse_i64(c, "--kv-heads", v, 1, 65536, &o->kv_heads);
        } else if (cli_take(c, "--nm", NULL, &v)) {
            o->nm_set = true;
            if (v && nmp_pattern_parse(v, &o->nm, &msg) != NMP_OK)
                cli_usage(c, "--nm: %s", msg.text);
        } else if (solve && cli_take(c, "--solver", NULL, &v)) {
            o->solver = v;
        } else if (solve && cli_take(c, "--time-limit", NULL, &v)) {
            cli_parse_seconds(c, "--time-limit", v, &o->par.time_limit);
        } else if (cmd != 'l' && cli_take(c, "--seed", NULL, &v)) {
            cli_parse_u64(c, "--seed", v, UINT64_MAX, &o->par.seed);
        } else if (solve && cli_take(c, "--threads", NULL, &v)) {
            int64_t t = 0;
            if (cli_parse_i64(c, "--threads", v, 0, 4096, &t))
                o->par.threads = (int)t;
        } else {
            cli_take_input(c, &o->input);
        }
    }
    if (c->bad)
        return;
    if (!o->input)
        cli_usage(c, "missing the input checkpoint IN.safetensors");
    else if (cmd != 'l' && !o->output)
        cli_usage(c, "missing -o OUT.safetensors");
    else if (cmd == 'a' && !o->report)
        cli_usage(c, "missing --report R.json (from 'nmperm permute --report')");
    else if (o->plan_path && o->arch)
        cli_usage(c, "--plan and --arch exclude each other");
    else if (o->plan_path && o->residual)
        cli_usage(c, "--plan and --residual exclude each other (a plan lists its spaces)");
    else if (o->output && strcmp(o->output, o->input) == 0)
        cli_usage(c, "the output must differ from the input (the input is never modified)");
    if (!c->bad && solve) {
        if (!o->solver)
            o->solver = nmp_solver_find("auto") ? "auto" : "swap";
        if (!nmp_solver_find(o->solver))
            cli_usage(c, "unknown solver '%s' (see 'nmperm solvers')", o->solver);
    }
}

/* Heads from a config.json beside the input (transformers' names), when not given. */
static void heads_from_config(ckpt_opts *o)
{
    char path[4096];
    const char *slash = strrchr(o->input, '/');
    if (o->heads > 0)
        return;
    snprintf(path, sizeof path, "%.*sconfig.json", slash ? (int)(slash - o->input + 1) : 0,
             o->input);
    json_t *cfg = json_load_file(path, 0, NULL);
    json_t *h = json_object_get(cfg, "num_attention_heads");
    json_t *kv = json_object_get(cfg, "num_key_value_heads");
    if (!h)
        h = json_object_get(cfg, "n_head");
    if (json_is_integer(h) && json_integer_value(h) > 0 && json_integer_value(h) <= 65536)
        o->heads = json_integer_value(h);
    if (o->kv_heads == 0 && json_is_integer(kv) && json_integer_value(kv) > 0 &&
        json_integer_value(kv) <= 65536)
        o->kv_heads = json_integer_value(kv);
    json_decref(cfg);
}

/* Opens the input and builds the checked plan; 0 or the exit code after one line. */
static int load(ckpt_opts *o, bool from_report, nmp_st **st, nmp_plan **plan)
{
    nmp_msg msg = { { 0 } };
    nmp_err e = nmp_st_open(o->input, st, &msg);
    if (e != NMP_OK)
        return cli_fail_lib(e, o->input, &msg);
    const char *plan_file = from_report ? o->report : o->plan_path;
    if (plan_file) {
        if ((e = nmp_plan_read(plan_file, plan, &msg)) != NMP_OK)
            return cli_fail_lib(e, plan_file, &msg);
        if (!o->nm_set && (*plan)->nm.m > 0)
            o->nm = (*plan)->nm;
    } else {
        heads_from_config(o);
        const nmp_plan_opts po = { o->arch, (int)o->heads, (int)o->kv_heads, o->residual };
        if ((e = nmp_plan_infer(*st, &po, plan, &msg)) != NMP_OK)
            return cli_fail_lib(e, o->input, &msg);
    }
    if ((e = nmp_plan_check(*plan, *st, o->nm, &msg)) != NMP_OK)
        return cli_fail_lib(e, o->input, &msg);
    return 0;
}

int nmp_cli_plan(cli_args *c)
{
    ckpt_opts o = { 0 };
    nmp_st *st = NULL;
    nmp_plan *plan = NULL;
    char *text = NULL;
    if (cli_help_or_version(c, help_plan))
        return 0;
    parse(c, &o, 'l');
    int rc = c->bad ? CLI_EXIT_USAGE : load(&o, false, &st, &plan);
    if (rc == 0) {
        if (nmp_plan_dumps(plan, &text) != NMP_OK)
            rc = cli_fail(CLI_EXIT_INTERNAL, "plan", "out of memory");
        else
            printf("%s\n", text);
    }
    nmp_free(text);
    nmp_plan_free(plan);
    nmp_st_close(st);
    return rc;
}

/* ------------------------------------------------------------- progress */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct progress {
    bool tty, quiet;
    double start;
    int width;
} progress;

static void progress_show(progress *p, int64_t i, int64_t n, const char *what, const char *name)
{
    if (p->quiet)
        return;
    const double el = now() - p->start;
    const double eta = i > 0 ? el / (double)i * (double)(n - i) : 0;
    char line[300];
    int len = snprintf(line, sizeof line, "%s space %lld of %lld  %.40s  %.1fs, ETA %.0fs", what,
                       (long long)i + 1, (long long)n, name, el, eta);
    len = len < 0 ? 0 : len >= (int)sizeof line ? (int)sizeof line - 1 : len;
    if (p->tty) {
        fprintf(stderr, "\r%s%*s", line, p->width > len ? p->width - len : 0, "");
        p->width = len;
    } else {
        fprintf(stderr, "nmperm: %s\n", line);
    }
    fflush(stderr);
}

static void progress_done(progress *p)
{
    if (p->tty && p->width > 0)
        fprintf(stderr, "\r%*s\r", p->width, "");
    p->width = 0;
}

/* ------------------------------------------------------------- permute */

/* Solves one space: perm and stats into sp. 0 or an exit code. */
static int solve_space(const ckpt_opts *o, const nmp_st *st, nmp_space *sp)
{
    nmp_msg msg = { { 0 } };
    nmp_problem *pb = NULL;
    nmp_result res = { 0 };
    int rc = 0;
    nmp_err e = nmp_space_problem(st, sp, o->nm, &pb, &msg);
    if (e == NMP_OK && !(sp->perm = nmp_malloc((size_t)sp->size * sizeof *sp->perm)))
        e = NMP_ERR_NOMEM;
    if (e == NMP_OK)
        e = nmp_solve(pb, o->solver, &o->par, sp->perm, 1, &res, &msg);
    if (e != NMP_OK) {
        rc = cli_fail_lib(e, o->input, &msg);
        goto out;
    }
    nmp_space_stats *s = &sp->stats;
    s->rows = nmp_problem_rows(pb);
    s->cols = nmp_problem_cols(pb);
    snprintf(s->solver, sizeof s->solver, "%s", o->solver);
    s->status = res.status;
    s->identity = nmp_score_identity(pb);
    s->kept = res.score;
    s->bound = res.bound;
    s->row_bound = nmp_score_row_bound(pb);
    s->efficacy = nmp_score_efficacy(pb, res.score);
    s->seconds = res.seconds;
    sp->solved = 1;
out:
    nmp_problem_free(pb);
    return rc;
}

/* Verifies every active space of the plan: b (through the perms when virtual) against a. */
static int verify_all(const ckpt_opts *o, nmp_plan *plan, const nmp_st *a, const nmp_st *b,
                      bool virtual_perm, progress *pg)
{
    for (int64_t s = 0; s < plan->count; s++) {
        nmp_space *sp = &plan->spaces[s];
        nmp_msg msg = { { 0 } };
        double rel = 0;
        if (sp->skip)
            continue;
        progress_show(pg, s, plan->count, "verify", sp->name);
        const nmp_err e = nmp_space_verify(plan, s, a, b, virtual_perm, o->par.seed + (uint64_t)s,
                                           VERIFY_SAMPLES, &rel, &msg);
        if (e != NMP_OK) {
            progress_done(pg);
            return cli_fail_lib(e, o->input, &msg);
        }
        sp->stats.verify_rel = rel;
        if (!(rel <= VERIFY_TOL)) {
            progress_done(pg);
            return cli_fail(CLI_EXIT_INTERNAL, nmp_st_path(b),
                            "space %s: the permuted block differs from the original (max "
                            "relative difference %.3g > %.0e)", sp->name, rel, VERIFY_TOL);
        }
    }
    progress_done(pg);
    return 0;
}

static void print_table(const nmp_plan *plan, bool verified)
{
    int64_t active = 0;
    double before = 0, after = 0, secs = 0, worst = 0;
    printf("# %-34s %11s %-8s %12s %12s %8s %9s %8s  %s\n", "space", "shape", "solver",
           "kept_before", "kept_after", "gain", "efficacy", "seconds",
           verified ? "verify_rel" : "status");
    for (int64_t s = 0; s < plan->count; s++) {
        const nmp_space *sp = &plan->spaces[s];
        const nmp_space_stats *t = &sp->stats;
        if (sp->skip) {
            printf("  %-34.34s skipped: %s\n", sp->name, sp->skip);
            continue;
        }
        active++;
        if (!sp->solved) {
            printf("  %-34.34s %5lld      %-8s (saved permutation)\n", sp->name,
                   (long long)sp->size, "-");
            continue;
        }
        char shape[32];
        snprintf(shape, sizeof shape, "%lldx%lld", (long long)t->rows, (long long)t->cols);
        const double gain = t->identity > 0 ? 100.0 * (t->kept - t->identity) / t->identity : 0;
        printf("  %-34.34s %11s %-8.8s %12.3f %12.3f %+7.2f%% %9.3f %8.3f  ", sp->name, shape,
               t->solver, t->identity, t->kept, gain, t->efficacy, t->seconds);
        if (verified)
            printf("%.2e\n", t->verify_rel);
        else
            printf("%s\n", nmp_status_str(t->status));
        before += t->identity;
        after += t->kept;
        secs += t->seconds;
        worst = worst > t->verify_rel ? worst : t->verify_rel;
    }
    printf("# %lld of %lld spaces permuted; kept %.3f -> %.3f (%+.2f%%), solve %.2fs",
           (long long)active, (long long)plan->count, before, after, before > 0 ? 100 * (after - before) / before : 0,
           secs);
    if (verified)
        printf(", verified (max rel %.2e)", worst);
    printf("\n");
}

/* permute (solve = true) and apply (solve = false) share everything but the solving. */
static int run(cli_args *c, bool solve)
{
    ckpt_opts o = { 0 };
    nmp_st *st = NULL, *out = NULL;
    nmp_plan *plan = NULL;
    nmp_msg msg = { { 0 } };
    bool wrote = false;
    nmp_params_init(&o.par);
    parse(c, &o, solve ? 'p' : 'a');
    int rc = c->bad ? CLI_EXIT_USAGE : 0;
    if (rc || (rc = load(&o, !solve, &st, &plan)) || (rc = cli_check_writable(o.output)) ||
        (o.report && solve && (rc = cli_check_writable(o.report))))
        goto out;
    progress pg = { isatty(STDERR_FILENO) != 0, o.quiet, now(), 0 };
    const double t0 = now();
    if (solve) {
        plan->nm = o.nm;
        for (int64_t s = 0; s < plan->count; s++) {
            nmp_space *sp = &plan->spaces[s];
            if (sp->skip)
                continue;
            progress_show(&pg, s, plan->count, "solve", sp->name);
            nmp_free(sp->perm);
            sp->perm = NULL;
            if ((rc = solve_space(&o, st, sp)))
                goto out;
        }
        progress_done(&pg);
    } else {
        for (int64_t s = 0; s < plan->count; s++)
            if (!plan->spaces[s].skip && !plan->spaces[s].perm) {
                rc = cli_fail(CLI_EXIT_USAGE, o.report, "space %s has no perm",
                              plan->spaces[s].name);
                goto out;
            }
    }
    const double t_solve = now() - t0;
    /* with --prune the output no longer computes the same: verify the permutation on the fly */
    if (o.verify && o.prune && (rc = verify_all(&o, plan, st, st, true, &pg)))
        goto out;
    nmp_err e = nmp_plan_apply(st, plan, o.prune, o.nm, o.output, &msg);
    if (e != NMP_OK) {
        rc = cli_fail_lib(e, o.input, &msg);
        goto out;
    }
    wrote = true;
    if (o.verify && !o.prune) {
        if ((e = nmp_st_open(o.output, &out, &msg)) != NMP_OK) {
            rc = cli_fail_lib(e, o.output, &msg);
            goto out;
        }
        if ((rc = verify_all(&o, plan, st, out, false, &pg)))
            goto out;
    }
    if (o.report && (e = nmp_plan_write(plan, o.report, &msg)) != NMP_OK) {
        rc = cli_fail_lib(e, o.report, &msg);
        goto out;
    }
    if (!o.quiet) {
        print_table(plan, o.verify);
        printf("# solve %.2fs, total %.2fs%s\n", t_solve, now() - t0,
               o.prune ? ", pruned" : "");
    }
out:
    if (rc && wrote)
        unlink(o.output);
    nmp_st_close(out);
    nmp_plan_free(plan);
    nmp_st_close(st);
    return rc;
}

int nmp_cli_permute(cli_args *c)
{
    return cli_help_or_version(c, help_permute) ? 0 : run(c, true);
}

int nmp_cli_apply(cli_args *c)
{
    return cli_help_or_version(c, help_apply) ? 0 : run(c, false);
}

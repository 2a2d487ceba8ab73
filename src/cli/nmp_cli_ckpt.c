/* nmp_cli_ckpt.c: nmperm plan / permute / apply: channel spaces of a safetensors checkpoint,
 * solved per space, written permuted (optionally pruned), verified and reported */
#include "nmp_cli_ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HELP_PLAN_OPTS                                                                             \
    "  --arch A              auto (default), bert, gpt2, llama (= mistral), resnet\n"              \
    "  --plan FILE           a JSON plan (as 'nmperm plan' prints) instead of a preset\n"          \
    "  --heads H             attention heads (default: config.json beside the input); with\n"     \
    "                        them the attention value path gets one space per (KV) head;\n"      \
    "                        without, those spaces are skipped (with a warning)\n"              \
    "  --kv-heads K          key/value heads for grouped-query attention (default: config)\n"      \
    "  --nm N:M              sparsity pattern (default 2:4)\n"                                  \
    "  --residual            also permute the residual stream (bert, gpt2, llama): one space of\n" \
    "                        the hidden size over the whole network (embeddings, every norm,\n"   \
    "                        every block's input and output projections); off by default.\n"    \
    "                        The model's output hidden states come out permuted (BERT and\n"    \
    "                        sentence embeddings change channel order; LM logits do not): the\n" \
    "                        report's space \"residual\" holds the perm to undo, h[perm] = out\n"

#define HELP_SHARDS                                                                                \
    "\n"                                                                                          \
    "A sharded checkpoint (model-0000k-of-0000n.safetensors + model.safetensors.index.json) is\n" \
    "given by its index or the folder holding it; -o then names the output folder (made when\n" \
    "missing, never the input's): the same shards, config and tokenizer files copied, the index\n" \
    "written last. Until then OUTDIR is left as it was; a kill -9 during the final renames can\n" \
    "leave it without an index (run again).\n"

static const char help_plan[] =
    "usage: nmperm plan IN.safetensors|INDEX.json|DIR [options]\n"
    "\n"
    "Prints the channel spaces inferred for a checkpoint as a JSON plan, for review or editing\n"
    "(then pass it to 'nmperm permute --plan'). Spaces that cannot be permuted say why.\n"
    "\n"
    "options:\n" HELP_PLAN_OPTS
    "  -h, --help            this text\n";

static const char help_permute[] =
    "usage: nmperm permute IN.safetensors -o OUT.safetensors [options]\n"
    "       nmperm permute INDEX.json|DIR -o OUTDIR [options]      (a sharded checkpoint)\n"
    "\n"
    "Permutes every free channel space of a checkpoint so that more weight survives N:M pruning;\n"
    "the output computes the same function as the input (before pruning). Tensors outside the\n"
    "spaces are copied byte for byte; the input is never modified.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE     the permuted checkpoint (written atomically)\n" HELP_PLAN_OPTS
    "  --solver NAME         solver per space (default auto, else swap)\n"
    "  --param KEY=VALUE     a solver parameter (repeatable; 'nmperm solvers' lists them)\n"
    "  --time-limit S        wall seconds per space, building its problem included (a space\n"
    "                        whose build uses them up keeps the identity); default: none.\n"
    "                        Without it each space gets a fixed amount of work (auto:\n"
    "                        effort=0.015, scaled by the space's size; --param effort=E changes\n"
    "                        it), so the same input, seed, threads and options give the same\n"
    "                        bytes; with it the result depends on the machine (the report says\n"
    "                        not reproducible)\n"
    "  --seed N              seed of the solvers and of verification (default 0)\n"
    "  --threads T           solver threads (0: the OpenMP default; the result depends on T)\n"
    CLI_DEVICE_HELP
    "  --objective O         saliency the spaces are scored and pruned by: abs (|w|, default),\n"
    "                        wanda (|w| * ||x||), ria (relative importance * ||x||^0.5)\n"
    "  --activations FILE    per-input-channel activation norms for wanda / ria (from\n"
    "                        tools/calibrate.py; format in docs/activations.md)\n"
    "  --prune [all|spaces]  also zero the N:M-pruned weights (the least salient of every M):\n"
    "                        spaces (the default): the consumers of the permuted spaces; all:\n"
    "                        every 2-D weight whose input dim divides by M, except\n"
    "                        embeddings and the LM head (*embed_tokens*, *embeddings.*, *wte.*,\n"
    "                        *wpe.*, lm_head*, *.lm_head*); the report lists each tensor\n"
    "  --prune-exclude GLOB  with --prune all, also keep tensors matching GLOB dense\n"
    "                        (repeatable; fnmatch on tensor names, e.g. '*.attention.*')\n"
    "  --verify              check each space on random inputs (float64) computes as before,\n"
    "                        on the written file before it replaces OUT\n"
    "  --report R.json       write the report (spaces, scores, permutations) here\n"
    "  --progress            progress lines on stderr even when it is not a terminal\n"
    "  --quiet               no progress and no table\n"
    "  -h, --help            this text\n";

/* the rest of permute's help (one literal would pass C's 4095-character limit) */
static const char help_permute_notes[] =
    "\n"
    "OUT (and R.json) are replaced only at the end, after --verify passed; on an error, Ctrl-C or\n"
    "SIGTERM they are left as they were (exit 130 / 143 after a signal). Only kill -9 can leave a\n"
    "temporary OUT.nmperm-tmp.PID.XXXXXX; the next run writing OUT removes it.\n"
    HELP_SHARDS;

static const char help_apply[] =
    "usage: nmperm apply IN.safetensors --report R.json -o OUT.safetensors [options]\n"
    "       nmperm apply INDEX.json|DIR --report R.json -o OUTDIR [options]\n"
    "\n"
    "Re-applies the permutations saved in a report of 'nmperm permute' without solving. The\n"
    "report is only read.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE     the permuted checkpoint (written atomically)\n"
    "  --report R.json       the report to take the spaces and permutations from\n"
    "  --nm N:M              pattern for --prune (default: the report's, else 2:4)\n"
    "  --prune [all|spaces]  also zero the N:M-pruned weights (see 'nmperm permute --help')\n"
    "  --prune-exclude GLOB  with --prune all, keep tensors matching GLOB dense (repeatable)\n"
    "  --objective O         abs (default), wanda or ria: the saliency pruning keeps\n"
    "  --activations FILE    activation norms for wanda / ria (docs/activations.md)\n"
    "  --verify              check each space on random inputs (float64) computes as before\n"
    "  --seed N              seed of verification (default 0)\n"
    "  --progress            progress lines on stderr even when it is not a terminal\n"
    "  --quiet               no progress and no table\n"
    "  -h, --help            this text\n" HELP_SHARDS;

#define MAX_EXCLUDE 64

typedef struct ckpt_opts {
    const char *input, *output, *arch, *plan_path, *report, *solver;
    int64_t heads, kv_heads;
    nmp_pattern nm;
    bool nm_set, verify, quiet, residual, progress;
    int prune; /* NMP_PRUNE_* */
    nmp_params par;
    const char *activations;
    nmp_saliency_kind objective;
    const char *exclude[MAX_EXCLUDE];
    int nexclude;
} ckpt_opts;

/* Parses the options of plan ('l'), permute ('p') and apply ('a'). */
static void parse(cli_args *c, ckpt_opts *o, char cmd)
{
    const char *v = NULL;
    nmp_msg msg = { { 0 } };
    o->nm = (nmp_pattern){ 2, 4 };
    o->par.time_limit = 0; /* fixed work per space (nmp_permute_opts.effort): reproducible */
    const bool solve = cmd == 'p', any_plan = cmd != 'a';
    for (c->k = 2; c->k < c->argc && !c->bad; c->k++) {
        if (cmd != 'l' && (cli_is_flag(c, "--prune") ||
                           strncmp(c->argv[c->k], "--prune=", 8) == 0)) {
            const char *a = c->argv[c->k];
            const char *mode = a[7] == '=' ? a + 8
                               : c->k + 1 < c->argc && (strcmp(c->argv[c->k + 1], "all") == 0 ||
                                                        strcmp(c->argv[c->k + 1], "spaces") == 0)
                                   ? c->argv[++c->k]
                                   : "spaces";
            if (strcmp(mode, "all") == 0)
                o->prune = NMP_PRUNE_ALL;
            else if (strcmp(mode, "spaces") == 0)
                o->prune = NMP_PRUNE_SPACES;
            else
                cli_usage(c, "--prune: '%s': expected all or spaces", mode);
        } else if (cmd != 'l' && cli_take(c, "--prune-exclude", NULL, &v)) {
            if (v && o->nexclude >= MAX_EXCLUDE)
                cli_usage(c, "--prune-exclude: at most %d patterns", MAX_EXCLUDE);
            else if (v)
                o->exclude[o->nexclude++] = v;
        } else if (cmd != 'l' && cli_take(c, "--activations", NULL, &v)) {
            o->activations = v;
        } else if (cmd != 'l' && cli_take(c, "--objective", NULL, &v)) {
            if (v && nmp_saliency_parse(v, &o->objective) != NMP_OK)
                cli_usage(c, "--objective: '%s': expected abs, wanda or ria", v);
        } else if (solve && cli_take(c, "--param", NULL, &v)) {
            if (v && nmp_params_parse(&o->par, v, &msg) != NMP_OK)
                cli_usage(c, "--param: %s", msg.text);
        } else if (cmd != 'l' && cli_is_flag(c, "--verify")) {
            o->verify = true;
        } else if (cmd != 'l' && cli_is_flag(c, "--quiet")) {
            o->quiet = true;
        } else if (cmd != 'l' && cli_is_flag(c, "--progress")) {
            o->progress = true;
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
        } else if (solve && cli_take_device(c, &o->par.device)) {
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
    else if (o->objective != NMP_SAL_ABS && !o->activations)
        cli_usage(c, "--objective %s needs --activations STATS.safetensors (tools/calibrate.py)",
                  nmp_saliency_name(o->objective));
    else if (o->activations && o->objective == NMP_SAL_ABS)
        cli_usage(c, "--activations is used by --objective wanda or ria only");
    else if (o->nexclude > 0 && o->prune != NMP_PRUNE_ALL)
        cli_usage(c, "--prune-exclude needs --prune all");
    else if (cmd == 'a' && o->objective != NMP_SAL_ABS && !o->prune)
        cli_usage(c, "--objective with apply only changes --prune: give --prune");
    if (!c->bad && solve) {
        if (!o->solver)
            o->solver = nmp_solver_find("auto") ? "auto" : "swap";
        const nmp_solver_ops *ops = nmp_solver_find(o->solver);
        if (!ops)
            cli_usage(c, "unknown solver '%s' (see 'nmperm solvers')", o->solver);
        else if (nmp_params_check(&o->par, ops, &msg) != NMP_OK)
            cli_usage(c, "--param: %s", msg.text);
    }
}

/* ------------------------------------------------------- same files */

/* A folder or an index (.json) is a sharded checkpoint, whose output is a folder. */
static bool is_sharded_input(const char *input)
{
    struct stat sb;
    const size_t len = strlen(input);
    return (stat(input, &sb) == 0 && S_ISDIR(sb.st_mode)) ||
           (len >= 5 && strcmp(input + len - 5, ".json") == 0);
}

/* The output folder of a sharded input, before any work: an existing folder or a new name in
 * a writable one, and not the input's folder (by device and inode). 0 or the exit code. */
static int check_output_folder(const char *input, const char *output)
{
    char indir[4096];
    struct stat in, out;
    const char *slash = strrchr(input, '/');
    if (stat(input, &in) == 0 && S_ISDIR(in.st_mode))
        snprintf(indir, sizeof indir, "%s", input);
    else
        snprintf(indir, sizeof indir, "%.*s", slash ? (int)(slash - input) + (slash == input)
                 : 1, slash ? input : ".");
    if (stat(output, &out) != 0) { /* a new folder: its parent must take it */
        char name[4096];
        size_t len = (size_t)snprintf(name, sizeof name, "%s", output);
        while (len > 1 && name[len - 1] == '/')
            name[--len] = '\0';
        return errno == ENOENT ? cli_check_writable(name) : cli_fail(CLI_EXIT_USAGE, output,
                                                                      "%s", strerror(errno));
    }
    if (!S_ISDIR(out.st_mode))
        return cli_fail(CLI_EXIT_USAGE, output, "not a folder: the input is sharded, -o names "
                        "the output folder");
    if (stat(indir, &in) == 0 && in.st_dev == out.st_dev && in.st_ino == out.st_ino)
        return cli_fail(CLI_EXIT_USAGE, output, "the output folder is the input's folder %s "
                        "(inputs are never overwritten)", indir);
    if (access(output, W_OK | X_OK) != 0)
        return cli_fail(CLI_EXIT_USAGE, output, "cannot write: %s", strerror(errno));
    return 0;
}

/* ------------------------------------------------------- loading */

/* Heads from a config.json beside the input (transformers' names), when not given. A missing
 * config or one without head counts is said in *why (for the warning when spaces are then
 * skipped); one that does not parse is an error. 0 or an exit code. */
static int heads_from_config(ckpt_opts *o, char *why, size_t len)
{
    char path[4096];
    const char *slash = strrchr(o->input, '/');
    struct stat sb;
    json_error_t jerr;
    why[0] = '\0';
    if (o->heads > 0)
        return 0;
    if (stat(o->input, &sb) == 0 && S_ISDIR(sb.st_mode)) /* a sharded checkpoint's folder */
        snprintf(path, sizeof path, "%s/config.json", o->input);
    else
        snprintf(path, sizeof path, "%.*sconfig.json", slash ? (int)(slash - o->input + 1) : 0,
                 o->input);
    if (access(path, F_OK) != 0) {
        snprintf(why, len, "no %s beside the checkpoint", path);
        return 0;
    }
    json_t *cfg = json_load_file(path, 0, &jerr);
    if (!cfg || !json_is_object(cfg)) {
        json_decref(cfg);
        return cli_fail(CLI_EXIT_USAGE, path, "cannot parse: %s (line %d); fix it or give "
                        "--heads", cfg ? "not a JSON object" : jerr.text, jerr.line);
    }
    json_t *h = json_object_get(cfg, "num_attention_heads");
    json_t *kv = json_object_get(cfg, "num_key_value_heads");
    if (!h)
        h = json_object_get(cfg, "n_head");
    if (json_is_integer(h) && json_integer_value(h) > 0 && json_integer_value(h) <= 65536)
        o->heads = json_integer_value(h);
    else
        snprintf(why, len, "%s has no num_attention_heads (or n_head)", path);
    if (o->kv_heads == 0 && json_is_integer(kv) && json_integer_value(kv) > 0 &&
        json_integer_value(kv) <= 65536)
        o->kv_heads = json_integer_value(kv);
    json_decref(cfg);
    return 0;
}

/* Opens the input and builds the checked plan; 0 or the exit code after one line. */
static int load(ckpt_opts *o, bool from_report, nmp_st **st, nmp_plan **plan)
{
    nmp_msg msg = { { 0 } };
    char why[4200];
    int rc = heads_from_config(o, why, sizeof why);
    if (rc)
        return rc;
    nmp_err e = nmp_st_open(o->input, st, &msg);
    if (e != NMP_OK && strncmp(msg.text, o->input, strlen(o->input)) == 0) {
        fprintf(stderr, "nmperm: %s\n", msg.text); /* names a file in the input folder */
        return cli_exit_code(e);
    }
    if (e != NMP_OK)
        return cli_fail_lib(e, o->input, &msg);
    const char *plan_file = from_report ? o->report : o->plan_path;
    if (plan_file) {
        if ((e = nmp_plan_read(plan_file, plan, &msg)) != NMP_OK)
            return cli_fail_lib(e, plan_file, &msg);
        if (!o->nm_set && (*plan)->nm.m > 0)
            o->nm = (*plan)->nm;
        (*plan)->heads = (int)o->heads;
        (*plan)->kv_heads = (int)o->kv_heads;
    } else {
        const nmp_plan_opts po = { o->arch, (int)o->heads, (int)o->kv_heads, o->residual };
        if ((e = nmp_plan_infer(*st, &po, plan, &msg)) != NMP_OK)
            return cli_fail_lib(e, o->input, &msg);
    }
    int64_t headless = 0;
    for (int64_t s = 0; s < (*plan)->count; s++)
        headless += (*plan)->spaces[s].skip &&
                    strcmp((*plan)->spaces[s].skip, NMP_PLAN_NO_HEADS) == 0;
    if (headless > 0)
        fprintf(stderr, "nmperm: warning: %s: %s: the attention value spaces of %lld layer%s are "
                "skipped (give --heads H, and --kv-heads K for grouped-query attention)\n",
                o->input, why[0] ? why : "no head count", (long long)headless,
                headless == 1 ? "" : "s");
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

/* ------------------------------------------------- signals, progress */

/* SIGINT and SIGTERM: the number of the first one; the library is asked to stop (through the
 * progress callback) and removes its temporaries. */
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    if (!stop_signal)
        stop_signal = sig;
}

typedef struct progress {
    const ckpt_opts *o;
    const nmp_plan *plan;
    bool show, tty;
    int width;
    int64_t last_space;
    const char *last_stage;
    const char *hook; /* NMPERM_TEST_HOOK (tests only): "TERM", "INT", "KILL" (raise it),
                         "PAUSE" (wait for a signal) or "corrupt" (the temporary), then
                         "@<stage>" */
    bool hooked;
} progress;

/* Test hook: the first element of the first active space's first consumer in the temporary
 * gets other bytes, as a broken write would leave them. A sharded output reports its first
 * shard's temporary: the others, "<name>.nmperm-tmp.<pid>.*" beside it, are tried too. */
static bool corrupt_file(const progress *pg, const char *file);

static void corrupt(const progress *pg, const char *file)
{
    char tag[64], dir[4096], other[8400];
    const char *slash = strrchr(file, '/');
    if (corrupt_file(pg, file))
        return;
    snprintf(tag, sizeof tag, ".nmperm-tmp.%ld.", (long)getpid());
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - file) : 1, slash ? file : ".");
    DIR *d = opendir(dir);
    for (struct dirent *ent; d && (ent = readdir(d)) != NULL;) {
        snprintf(other, sizeof other, "%s/%s", dir, ent->d_name);
        if (strstr(ent->d_name, tag) && strcmp(other, file) != 0 && corrupt_file(pg, other))
            break;
    }
    if (d)
        closedir(d);
}

static bool corrupt_file(const progress *pg, const char *file)
{
    bool done = false;
    nmp_st *st = NULL;
    const char *tensor = NULL;
    for (int64_t s = 0; s < pg->plan->count && !tensor; s++)
        for (int64_t r = 0; r < pg->plan->spaces[s].nrefs && !tensor; r++)
            if (!pg->plan->spaces[s].skip &&
                pg->plan->spaces[s].refs[r].role == NMP_ROLE_CONSUMER)
                tensor = pg->plan->spaces[s].refs[r].tensor;
    if (!tensor || nmp_st_open(file, &st, NULL) != NMP_OK)
        return false;
    const nmp_st_tensor *t = nmp_st_find(st, tensor);
    uint8_t len8[8], bytes[8];
    const int fd = open(file, O_RDWR);
    if (t && fd >= 0 && pread(fd, len8, 8, 0) == 8) {
        uint64_t hlen = 0;
        for (int b = 7; b >= 0; b--)
            hlen = hlen << 8 | len8[b];
        memset(bytes, 0x41, sizeof bytes);
        if (pwrite(fd, bytes, nmp_st_dtype_size(t->dtype), (off_t)(8 + hlen + t->begin)) < 0)
            fprintf(stderr, "nmperm: test hook: cannot corrupt %s\n", file);
        done = true;
    }
    if (fd >= 0)
        close(fd);
    nmp_st_close(st);
    return done;
}

static void run_hook(progress *pg, const nmp_ckpt_progress *p)
{
    const char *at = strchr(pg->hook, '@');
    if (pg->hooked || !at || strcmp(at + 1, p->stage) != 0)
        return;
    pg->hooked = true;
    const size_t n = (size_t)(at - pg->hook);
    if (strncmp(pg->hook, "corrupt", n) == 0 && p->file)
        corrupt(pg, p->file);
    else if (strncmp(pg->hook, "TERM", n) == 0)
        raise(SIGTERM);
    else if (strncmp(pg->hook, "INT", n) == 0)
        raise(SIGINT);
    else if (strncmp(pg->hook, "KILL", n) == 0)
        raise(SIGKILL);
    else if (strncmp(pg->hook, "PAUSE", n) == 0) /* a long stage: up to 60 s or a signal */
        for (int k = 0; k < 600 && !stop_signal; k++)
            nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
}

/* Shows where the run is: on a terminal one updating line; with --progress elsewhere one line
 * per space and stage. The ETA of a stage counts that stage's time only. Returns nonzero once
 * a signal asked to stop. */
static int on_progress(const nmp_ckpt_progress *p, void *user)
{
    progress *pg = user;
    if (pg->hook)
        run_hook(pg, p);
    if (!pg->show || stop_signal)
        return stop_signal != 0;
    char line[300];
    const int64_t i = p->space < 0 ? 0 : p->space;
    const double eta = i > 0 ? p->elapsed / (double)i * (double)(p->count - i) : 0;
    int len = p->space < 0
                  ? snprintf(line, sizeof line, "%s  %.1fs", p->stage, p->elapsed)
                  : snprintf(line, sizeof line, "%s space %lld of %lld  %.40s  %.1fs, ETA %.0fs",
                             p->stage, (long long)i + 1, (long long)p->count, p->name, p->elapsed,
                             eta);
    len = len < 0 ? 0 : len >= (int)sizeof line ? (int)sizeof line - 1 : len;
    if (pg->tty) {
        fprintf(stderr, "\r%s%*s", line, pg->width > len ? pg->width - len : 0, "");
        pg->width = len;
    } else if (p->space != pg->last_space || p->stage != pg->last_stage) {
        fprintf(stderr, "nmperm: %s\n", line);
    }
    pg->last_space = p->space;
    pg->last_stage = p->stage;
    fflush(stderr);
    return 0;
}

static void progress_done(progress *pg)
{
    if (pg->tty && pg->width > 0)
        fprintf(stderr, "\r%*s\r", pg->width, "");
    pg->width = 0;
}

/* ------------------------------------------------------------- permute */

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
           (long long)active, (long long)plan->count, before, after,
           before > 0 ? 100 * (after - before) / before : 0, secs);
    if (verified)
        printf(", verified (max rel %.2e)", worst);
    printf("\n");
    if (plan->npruned > 0) {
        int64_t elems = 0, zero = 0;
        printf("# %-50s %13s %8s %9s\n", "pruned tensor", "shape", "density", "kept_abs");
        for (int64_t k = 0; k < plan->npruned; k++) {
            const nmp_pruned *t = &plan->pruned[k];
            char shape[40];
            snprintf(shape, sizeof shape, "%lldx%lld", (long long)t->rows, (long long)t->cols);
            printf("  %-50.50s %13s %8.4f %9.4f\n", t->tensor, shape, t->density, t->kept_abs);
            elems += t->rows * t->cols;
            zero += (int64_t)llround((1 - t->density) * (double)(t->rows * t->cols));
        }
        printf("# %lld tensors pruned, %lld weights, %lld zero after pruning\n",
               (long long)plan->npruned, (long long)elems, (long long)zero);
    }
}

/* The space "residual" when it was permuted (the model's output hidden states are then in
 * permuted channel order), else NULL. */
static const nmp_space *residual_space(const nmp_plan *plan)
{
    for (int64_t s = 0; s < plan->count; s++)
        if (strcmp(plan->spaces[s].name, "residual") == 0 && !plan->spaces[s].skip)
            return &plan->spaces[s];
    return NULL;
}

/* permute (solve = true) and apply (solve = false): parsing, then nmp_ckpt_permute, then the
 * table. apply only reads its report. */
static int run(cli_args *c, bool solve)
{
    ckpt_opts o = { 0 };
    nmp_st *st = NULL, *acts = NULL;
    nmp_plan *plan = NULL;
    nmp_msg msg = { { 0 } };
    struct sigaction old_int, old_term;
    bool caught = false;
    nmp_params_init(&o.par);
    parse(c, &o, solve ? 'p' : 'a');
    int rc = c->bad ? CLI_EXIT_USAGE : 0;
    const cli_path in[] = { { "the input", o.input }, { "the plan", o.plan_path },
                              { "the report", solve ? NULL : o.report },
                              { "the activations", o.activations } };
    const cli_path out[] = { { "the output", o.output },
                               { "the report", solve ? o.report : NULL } };
    const bool sharded = !rc && is_sharded_input(o.input);
    if (rc || (rc = cli_check_named_paths(in, 4, out, 2)) ||
        (rc = sharded ? check_output_folder(o.input, o.output) : cli_check_writable(o.output)) ||
        (o.report && solve && (rc = cli_check_writable(o.report))) ||
        (rc = load(&o, !solve, &st, &plan)))
        goto out;
    if (o.activations) {
        const nmp_err ea = nmp_st_open(o.activations, &acts, &msg);
        if (ea != NMP_OK) {
            rc = cli_fail_lib(ea, o.activations, &msg);
            goto out;
        }
    }
    const nmp_space *resid = residual_space(plan);
    if (resid && !o.quiet && solve)
        fprintf(stderr, "nmperm: note: --residual permutes the model's output hidden states; "
                "the report's space \"residual\" holds the perm to undo (h[perm] = out)%s\n",
                o.report ? "" : ": give --report R.json to keep it");
    if (resid && solve && plan->arch && strcmp(plan->arch, "bert") == 0)
        fprintf(stderr, "nmperm: warning: %s: --residual on a bert model: its output is the "
                "hidden state (sentence embeddings), which comes out in permuted channel order"
                "; undo it with the residual perm of the report%s\n", o.input,
                o.report ? "" : " (give --report R.json, or it is lost)");
    const bool tty = isatty(STDERR_FILENO) != 0;
    progress pg = { &o, plan, !o.quiet && (tty || o.progress), tty, 0, -2, NULL,
                    getenv("NMPERM_TEST_HOOK"), false };
    nmp_permute_opts po;
    nmp_permute_opts_init(&po);
    po.nm = o.nm;
    po.solve = solve;
    po.solver = o.solver;
    po.par = o.par;
    po.prune = o.prune;
    po.saliency = (nmp_saliency){ o.objective, acts };
    po.prune_exclude = o.exclude;
    po.prune_nexclude = o.nexclude;
    po.verify = o.verify;
    po.report = solve ? o.report : NULL;
    po.progress = on_progress;
    po.progress_user = &pg;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    stop_signal = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    caught = true;
    nmp_permute_result res;
    const nmp_err e = nmp_ckpt_permute(st, plan, &po, o.output, &res, &msg);
    progress_done(&pg);
    if (e != NMP_OK) {
        const char *what = o.input;
        if (strncmp(msg.text, o.output, strlen(o.output)) == 0)
            what = o.output;
        else if (o.report && strncmp(msg.text, o.report, strlen(o.report)) == 0)
            what = o.report;
        else if (o.activations && strncmp(msg.text, o.activations, strlen(o.activations)) == 0)
            what = o.activations;
        rc = cli_fail_lib(e, what, &msg);
        goto out;
    }
    if (res.interrupted) {
        const int sig = stop_signal ? stop_signal : SIGINT;
        rc = cli_fail(128 + sig, o.output, "interrupted by %s: nothing written (left as it "
                      "was)", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        goto out;
    }
    if (!o.quiet) {
        print_table(plan, o.verify);
        printf("# solve %.2fs, total %.2fs%s, objective %s\n", res.solve_seconds, res.seconds,
               o.prune == NMP_PRUNE_ALL ? ", pruned (all)" : o.prune ? ", pruned (spaces)" : "",
               nmp_saliency_name(o.objective));
        if (solve && o.par.time_limit > 0)
            printf("# not reproducible: solved under --time-limit %g s per space (the perms "
                   "depend on the machine's speed and load)\n", o.par.time_limit);
        if (resid && resid->perm)
            printf("# output permuted: the model's hidden states come out in the residual "
                   "space's channel order (%s)\n", o.report ? "perm in the report" :
                   "no --report: the perm is not saved");
    }
out:
    if (caught) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
    nmp_plan_free(plan);
    nmp_st_close(st);
    nmp_st_close(acts);
    return rc;
}

int nmp_cli_permute(cli_args *c)
{
    for (int k = 2; k < c->argc; k++)
        if (strcmp(c->argv[k], "-h") == 0 || strcmp(c->argv[k], "--help") == 0) {
            fputs(help_permute, stdout);
            fputs(help_permute_notes, stdout);
            return 0;
        }
    return cli_help_or_version(c, help_permute) ? 0 : run(c, true);
}

int nmp_cli_apply(cli_args *c)
{
    return cli_help_or_version(c, help_apply) ? 0 : run(c, false);
}

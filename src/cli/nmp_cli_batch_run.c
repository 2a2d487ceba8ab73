/* nmp_cli_batch_run.c: nmperm batch's jobs: worker processes (fork + exec of this program with
 * --run-job), largest first, write jobs after their spaces, each end journaled, progress and ETA */
#define _GNU_SOURCE /* pipe2, prctl */
#include "nmp_cli_batch.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

const char *batch_kind_name(nmp_batch_kind k)
{
    return k == NMP_BATCH_SPACE ? "space" : k == NMP_BATCH_WRITE ? "write" : "matrix";
}

/* ------------------------------------------------------------ the worker */

/* nmperm batch --run-job SPEC: one job in this process; prints one JSON line with the result
 * ({"ok": true, ...} or {"ok": false, "error": ...}). Exit 0 unless the line could not be
 * printed. */
int batch_run_job(const char *spec_text)
{
    json_error_t jerr;
    json_t *spec = json_loads(spec_text, 0, &jerr), *out = json_object();
    nmp_msg msg = { { 0 } };
    nmp_err e = NMP_OK;
    const char *kind = json_string_value(json_object_get(spec, "kind"));
    const char *path = json_string_value(json_object_get(spec, "path"));
    const char *space = json_string_value(json_object_get(spec, "space"));
    const char *solver = json_string_value(json_object_get(spec, "solver"));
    const char *output = json_string_value(json_object_get(spec, "out"));
    const char *nmtext = json_string_value(json_object_get(spec, "nm"));
    const char *objtext = json_string_value(json_object_get(spec, "objective"));
    json_t *plan = json_object_get(spec, "plan");
    nmp_batch_run_opts ro;
    memset(&ro, 0, sizeof ro);
    nmp_params_init(&ro.par);
    if (!kind || !path || !solver || !output || !nmtext || !objtext ||
        nmp_pattern_parse(nmtext, &ro.nm, NULL) != NMP_OK ||
        nmp_objective_parse(objtext, &ro.objective) != NMP_OK) {
        e = NMP_ERR_ARG;
        snprintf(msg.text, sizeof msg.text, "batch --run-job: bad job spec");
        goto out;
    }
    ro.par.seed = (uint64_t)json_integer_value(json_object_get(spec, "seed"));
    ro.par.threads = (int)json_integer_value(json_object_get(spec, "threads"));
    const nmp_solver_ops *ops = nmp_solver_find(solver);
    if (ops && ops->device && /* the others run on the CPU */
        nmp_device_parse(json_string_value(json_object_get(spec, "device")), &ro.par.device,
                         NULL) != NMP_OK) {
        e = NMP_ERR_ARG;
        snprintf(msg.text, sizeof msg.text, "batch --run-job: bad device in the job spec");
        goto out;
    }
    ro.job_seconds = json_number_value(json_object_get(spec, "job_seconds"));
    ro.bound_seconds = json_number_value(json_object_get(spec, "bound_seconds"));
    ro.plan.arch = json_string_value(json_object_get(plan, "arch"));
    ro.plan.heads = (int)json_integer_value(json_object_get(plan, "heads"));
    ro.plan.kv_heads = (int)json_integer_value(json_object_get(plan, "kv_heads"));
    ro.plan.residual = json_is_true(json_object_get(plan, "residual"));
    const char *key;
    json_t *val;
    json_object_foreach(json_object_get(spec, "params"), key, val)
        nmp_params_set(&ro.par, key, json_number_value(val));
    if (strcmp(kind, "write") == 0) {
        const char *prefix = json_string_value(json_object_get(spec, "perm_prefix"));
        e = nmp_batch_write_checkpoint(path, &ro.plan, ro.nm, prefix ? prefix : "", solver,
                                       output, &msg);
        goto out;
    }
    nmp_batch_result r;
    if ((e = nmp_batch_run(path, space, solver, &ro, output, &r, &msg)) != NMP_OK)
        goto out;
    cli_jset(out, "rows", json_integer(r.rows));
    cli_jset(out, "cols", json_integer(r.cols));
    cli_jset(out, "status", json_string(nmp_status_str(r.res.status)));
    cli_jset(out, "identity", cli_jnum(r.identity));
    cli_jset(out, "kept", cli_jnum(r.res.score));
    cli_jset(out, "row_bound", cli_jnum(r.row_bound));
    cli_jset(out, "bound", cli_jnum(r.res.bound));
    cli_jset(out, "lp_bound", cli_jnum(r.lp_bound));
    cli_jset(out, "lp_complete", json_boolean(r.lp_complete));
    cli_jset(out, "efficacy", cli_jnum(r.efficacy));
    cli_jset(out, "iterations", json_integer(r.res.iterations));
    cli_jset(out, "seconds", cli_jnum(r.res.seconds));
    cli_jset(out, "load_seconds", cli_jnum(r.load_seconds));
out:
    cli_jset(out, "ok", json_boolean(e == NMP_OK));
    if (e != NMP_OK)
        cli_jset(out, "error", json_string(msg.text[0] ? msg.text : nmp_err_str(e)));
    char *text = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(17));
    int rc = text && printf("\n%s\n", text) > 0 && fflush(stdout) == 0 ? 0 : CLI_EXIT_INTERNAL;
    free(text);
    json_decref(out);
    json_decref(spec);
    return rc;
}

/* ------------------------------------------------------------ scheduling */

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
    stop_signal = sig;
}

typedef struct batch_slot {
    pid_t pid;
    int fd;
    int64_t job;
    double start;
    char *buf;
    size_t len, cap;
} slot;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static json_t *spec_json(const batch_runner *r, int64_t k)
{
    const batch_opts *o = r->o;
    const nmp_batch_job *j = &r->l->jobs[k];
    json_t *s = json_object(), *plan = json_object(), *params = json_object();
    char nm[32], buf[8192];
    int sv = 0;
    while (sv < o->nsolvers - 1 && strcmp(o->solvers[sv], j->solver) != 0)
        sv++;
    snprintf(nm, sizeof nm, "%d:%d", o->nm.n, o->nm.m);
    cli_jset(s, "kind", json_string(batch_kind_name(j->kind)));
    cli_jset(s, "path", json_string(j->path));
    cli_jset(s, "space", j->space ? json_string(j->space) : NULL);
    cli_jset(s, "solver", json_string(j->solver));
    snprintf(buf, sizeof buf, "%s/%s", o->outdir, j->output);
    cli_jset(s, "out", json_string(buf));
    snprintf(buf, sizeof buf, "%s/perms/%s/", o->outdir, j->rel);
    cli_jset(s, "perm_prefix", json_string(buf));
    cli_jset(s, "nm", json_string(nm));
    cli_jset(s, "objective", json_string(nmp_objective_name(o->objective)));
    cli_jset(s, "seed", json_integer((json_int_t)o->seed));
    cli_jset(s, "threads", json_integer(o->threads));
    cli_jset(s, "device", json_string(nmp_device_name(o->device)));
    cli_jset(s, "job_seconds", json_real(r->share[k]));
    cli_jset(s, "bound_seconds", json_real(o->bound_time));
    for (int p = 0; p < o->par[sv].count; p++)
        cli_jset(params, o->par[sv].values[p].name, json_real(o->par[sv].values[p].value));
    cli_jset(s, "params", params);
    cli_jset(plan, "arch", o->arch ? json_string(o->arch) : NULL);
    cli_jset(plan, "heads", json_integer(o->heads));
    cli_jset(plan, "kv_heads", json_integer(o->kv_heads));
    cli_jset(plan, "residual", json_boolean(o->residual));
    cli_jset(s, "plan", plan);
    return s;
}

/* Starts job k in a worker process (fork + exec of this program); false when it could not be
 * started (then it is failed with the reason). */
static bool spawn(batch_runner *r, slot *s, int64_t k, char *why, size_t len)
{
    json_t *spec = spec_json(r, k);
    char *text = json_dumps(spec, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(spec);
    int fds[2];
    if (!text || pipe2(fds, O_CLOEXEC) != 0) { /* no worker inherits another's pipe */
        snprintf(why, len, "cannot start a worker: %s", text ? strerror(errno) : "out of memory");
        free(text);
        return false;
    }
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = { r->self, (char *)"batch", (char *)"--run-job", text, NULL };
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a killed batch takes its workers along */
        if (getppid() != parent)
            _exit(127);
#else
        (void)parent;
#endif
        signal(SIGINT, SIG_IGN); /* Ctrl-C is the batch's to handle */
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(r->self, argv);
        _exit(127);
    }
    free(text);
    close(fds[1]);
    if (pid < 0) {
        snprintf(why, len, "cannot start a worker: %s", strerror(errno));
        close(fds[0]);
        return false;
    }
    s->pid = pid;
    s->fd = fds[0];
    s->job = k;
    s->start = now();
    s->len = 0;
    return true;
}

/* The worker's result line: the last line of its output that parses as a JSON object. */
static json_t *last_object(char *buf, size_t len, char *tail, size_t tail_len)
{
    json_t *res = NULL;
    tail[0] = '\0';
    buf[len] = '\0';
    for (char *line = buf, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        json_t *j = line[0] == '{' ? json_loads(line, 0, NULL) : NULL;
        if (json_is_object(j)) {
            json_decref(res);
            res = j;
        } else {
            json_decref(j);
            if (*line)
                snprintf(tail, tail_len, "%s", line);
        }
    }
    return res;
}

static void progress(batch_runner *r, const char *last, const json_t *rec)
{
    if (r->o->quiet)
        return;
    const double el = now() - r->start;
    const double rate = r->cost_done > 0 ? el / r->cost_done : 0;
    const double eta = rate * (r->cost_total - r->cost_done);
    char line[400];
    if (r->pl.show) {
        const char *cur = "";
        for (int64_t s = 0; s < r->o->jobs; s++)
            if (r->slots[s].pid > 0) {
                cur = r->l->jobs[r->slots[s].job].id;
                break;
            }
        char failed[64] = "";
        if (r->failed)
            snprintf(failed, sizeof failed, ", %lld failed", (long long)r->failed);
        snprintf(line, sizeof line, "batch %lld/%lld done%s, %.0fs, ETA %.0fs  %.60s",
                 (long long)r->done, (long long)r->total, failed, el, eta, cur);
        cli_progress_draw(&r->pl, line);
    } else if (last) {
        const char *state = json_string_value(json_object_get(rec, "state"));
        const double id = json_number_value(json_object_get(rec, "identity"));
        const double kept = json_number_value(json_object_get(rec, "kept"));
        fprintf(stderr, "nmperm: batch: [%lld/%lld] %s %s", (long long)r->done,
                (long long)r->total, last, state ? state : "?");
        if (state && strcmp(state, "ok") == 0 && id > 0)
            fprintf(stderr, " %+.3f%%", 100.0 * (kept - id) / id);
        fprintf(stderr, " %.2fs, ETA %.0fs\n", json_number_value(json_object_get(rec, "wall")),
                eta);
    }
}

/* Records job k's end in the journal (fsync'd) and the counters. */
static int finish(batch_runner *r, int64_t k, json_t *res, const char *error, double wall)
{
    const nmp_batch_job *j = &r->l->jobs[k];
    json_t *rec = json_object();
    nmp_msg msg = { { 0 } };
    const bool ok = !error && json_is_true(json_object_get(res, "ok"));
    cli_jset(rec, "id", json_string(j->id));
    cli_jset(rec, "state", json_string(ok ? "ok" : "failed"));
    if (res) {
        const char *keys[] = { "rows", "cols", "status", "identity", "kept", "row_bound",
                               "bound", "lp_bound", "lp_complete", "efficacy", "iterations",
                               "seconds", "load_seconds" };
        for (size_t q = 0; q < sizeof keys / sizeof keys[0]; q++) {
            json_t *v = json_object_get(res, keys[q]);
            if (v)
                json_object_set(rec, keys[q], v);
        }
    }
    cli_jset(rec, "wall", json_real(floor(wall * 1e6 + 0.5) / 1e6));
    cli_jset(rec, "share", r->share[k] > 0 ? json_real(r->share[k]) : NULL);
    if (!ok) {
        /* the input's absolute path differs between machines: name it relative to the root */
        const char *text = error ? error : json_string_value(json_object_get(res, "error"));
        char rel[1500];
        const char *at = text ? strstr(text, j->path) : NULL;
        if (at)
            snprintf(rel, sizeof rel, "%.*s%s%s", (int)(at - text), text, j->rel,
                     at + strlen(j->path));
        cli_jset(rec, "error", json_string(at ? rel : text ? text : "no result"));
    }
    char *text = json_dumps(rec, JSON_COMPACT | JSON_REAL_PRECISION(17));
    int rc = 0;
    nmp_err e = text ? nmp_journal_append(r->journal, text, &msg) : NMP_ERR_NOMEM;
    if (e != NMP_OK)
        rc = cli_fail_lib(e, r->o->outdir, &msg);
    free(text);
    r->state[k] = ok ? 2 : 3;
    r->done++;
    r->failed += !ok;
    r->cost_done += j->cost;
    progress(r, j->id, rec);
    json_decref(rec);
    return rc;
}

/* A worker's end: its result, or why it has none. */
static int reap(batch_runner *r, slot *s)
{
    int status = 0;
    char tail[600], why[800];
    while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
        ;
    close(s->fd);
    const double wall = now() - s->start;
    json_t *res = last_object(s->buf, s->len, tail, sizeof tail);
    const char *error = NULL;
    if (!res) {
        if (WIFSIGNALED(status))
            snprintf(why, sizeof why, "worker crashed: signal %d (%s)%s%s", WTERMSIG(status),
                     strsignal(WTERMSIG(status)), tail[0] ? ": " : "", tail);
        else
            snprintf(why, sizeof why, "worker exited with code %d%s%s",
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1, tail[0] ? ": " : "", tail);
        error = why;
    }
    const int64_t k = s->job;
    s->pid = 0;
    s->fd = -1;
    const int rc = finish(r, k, res, error, wall);
    json_decref(res);
    return rc;
}

/* Whether write job k can start: every space job of its group is finished. *failed names a
 * failed one. */
static bool deps_done(const batch_runner *r, int64_t k, const char **failed)
{
    const nmp_batch_job *j = &r->l->jobs[k];
    *failed = NULL;
    for (int64_t q = 0; q < r->l->count; q++) {
        const nmp_batch_job *d = &r->l->jobs[q];
        if (q == k || d->group != j->group || d->kind != NMP_BATCH_SPACE)
            continue;
        if (r->state[q] < 2)
            return false;
        if (r->state[q] == 3 && !*failed)
            *failed = d->id;
    }
    return true;
}

/* Runs the pending jobs (state 0) with o->jobs workers; 0, 130 on a signal, or an exit code. */
static int run_all(batch_runner *r)
{
    const batch_opts *o = r->o;
    const int64_t n = r->l->count;
    int rc = 0;
    struct pollfd *pfd = nmp_calloc((size_t)o->jobs, sizeof *pfd);
    int64_t *order = nmp_calloc((size_t)n + 1, sizeof *order);
    r->slots = nmp_calloc((size_t)o->jobs, sizeof *r->slots);
    if (!pfd || !order || !r->slots) {
        rc = cli_fail(CLI_EXIT_INTERNAL, "batch", "out of memory");
        goto out;
    }
    /* largest first (LPT): the makespan of J parallel slots is then near total / J */
    int64_t norder = 0;
    for (int64_t k = 0; k < n; k++)
        if (r->state[k] == 0)
            order[norder++] = k;
    for (int64_t a = 1; a < norder; a++) { /* insertion sort: stable and deterministic */
        const int64_t k = order[a];
        int64_t b = a;
        while (b > 0 && r->l->jobs[order[b - 1]].cost < r->l->jobs[k].cost)
            order[b] = order[b - 1], b--;
        order[b] = k;
    }
    int64_t running = 0, next = 0;
    while (!stop_signal && (running > 0 || next < norder)) {
        /* start what can start */
        for (int64_t s = 0; s < o->jobs && !stop_signal; s++) {
            if (r->slots[s].pid > 0)
                continue;
            int64_t pick = -1;
            for (int64_t q = next; q < norder && pick < 0; q++) {
                const int64_t k = order[q];
                if (r->state[k] != 0)
                    continue;
                const nmp_batch_job *j = &r->l->jobs[k];
                const char *failed = NULL;
                char why[1200];
                if (j->error) {
                    r->state[k] = 1;
                    if ((rc = finish(r, k, NULL, j->error, 0)))
                        goto out;
                    continue;
                }
                if (j->kind == NMP_BATCH_WRITE) {
                    if (!deps_done(r, k, &failed))
                        continue;
                    if (failed) {
                        snprintf(why, sizeof why, "not written: %s failed", failed);
                        r->state[k] = 1;
                        if ((rc = finish(r, k, NULL, why, 0)))
                            goto out;
                        continue;
                    }
                }
                pick = k;
            }
            while (next < norder && r->state[order[next]] != 0)
                next++;
            if (pick < 0)
                break;
            char why[300];
            r->state[pick] = 1;
            if (!spawn(r, &r->slots[s], pick, why, sizeof why)) {
                if ((rc = finish(r, pick, NULL, why, 0)))
                    goto out;
                continue;
            }
            running++;
            progress(r, NULL, NULL);
        }
        if (running == 0)
            continue; /* only unstartable write jobs were left: they are finished by now */
        int nf = 0;
        for (int64_t s = 0; s < o->jobs; s++)
            if (r->slots[s].pid > 0)
                pfd[nf++] = (struct pollfd){ r->slots[s].fd, POLLIN, 0 };
        if (poll(pfd, (nfds_t)nf, 250) < 0 && errno != EINTR) {
            rc = cli_fail(CLI_EXIT_INTERNAL, "batch", "poll: %s", strerror(errno));
            goto out;
        }
        for (int64_t s = 0; s < o->jobs; s++) {
            slot *sl = &r->slots[s];
            if (sl->pid <= 0)
                continue;
            int f = 0;
            while (f < nf && pfd[f].fd != sl->fd)
                f++;
            if (f == nf || !pfd[f].revents)
                continue;
            if (sl->cap - sl->len < 4097) {
                if (sl->cap >= 65536) { /* keep the tail: the result line comes last */
                    memmove(sl->buf, sl->buf + sl->len - 8192, 8192);
                    sl->len = 8192;
                } else {
                    char *grown = nmp_realloc(sl->buf, sl->cap * 2 + 8192);
                    if (!grown) {
                        rc = cli_fail(CLI_EXIT_INTERNAL, "batch", "out of memory");
                        goto out;
                    }
                    sl->buf = grown;
                    sl->cap = sl->cap * 2 + 8192;
                }
            }
            const ssize_t got = read(sl->fd, sl->buf + sl->len, sl->cap - sl->len - 1);
            if (got > 0) {
                sl->len += (size_t)got;
            } else if (got == 0 || errno != EINTR) {
                running--;
                if ((rc = reap(r, sl)))
                    goto out;
            }
        }
        progress(r, NULL, NULL);
    }
    if (stop_signal)
        rc = 130;
out:
    for (int64_t s = 0; r->slots && s < o->jobs; s++)
        if (r->slots[s].pid > 0) {
            kill(r->slots[s].pid, SIGKILL);
            while (waitpid(r->slots[s].pid, NULL, 0) < 0 && errno == EINTR)
                ;
            close(r->slots[s].fd);
        }
    for (int64_t s = 0; r->slots && s < o->jobs; s++)
        nmp_free(r->slots[s].buf);
    nmp_free(r->slots);
    r->slots = NULL;
    nmp_free(pfd);
    nmp_free(order);
    cli_progress_clear(&r->pl);
    return rc;
}

/* Counts this shard's jobs, says what is left, then runs the pending ones with SIGINT and
 * SIGTERM caught (the previous actions restored after). */
int batch_run(batch_runner *r)
{
    const batch_opts *o = r->o;
    const nmp_batch_list *l = r->l;
    const int *mine = r->mine;
    cli_progress_init(&r->pl, o->quiet, false);
    r->start = now();
    for (int64_t k = 0; k < l->count; k++)
        if (mine[k]) {
            r->total++;
            r->cost_total += l->jobs[k].cost;
            if (r->state[k] >= 2) {
                r->done++;
                r->cost_done += l->jobs[k].cost;
            }
        }
    r->cost_total -= r->cost_done; /* ETA from this run's pace */
    r->cost_done = 0;
    if (!o->quiet && !r->pl.show)
        fprintf(stderr, "nmperm: batch: %lld jobs (shard %d/%d), %lld already finished, %lld "
                "at a time x %lld threads\n", (long long)r->total, o->shard_i, o->shard_n,
                (long long)r->done, (long long)o->jobs, (long long)o->threads);
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    const int rc = run_all(r);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return rc;
}

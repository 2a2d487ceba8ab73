/* nmp_plan_json.c: plans as JSON: the text nmperm plan prints and permute reports (spaces,
 * stats, perms, what was pruned), written atomically, and plan files read back */
#include "nmp_model.h"

#include <jansson.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- writing */

static json_t *ref_json(const nmp_ref *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "tensor", json_string(r->tensor));
    json_object_set_new(o, "role", json_string(r->role == NMP_ROLE_CONSUMER ? "consumer"
                                                                            : "producer"));
    json_object_set_new(o, "use", json_string(nmp_use_name(r->use)));
    json_object_set_new(o, "axis", json_integer(r->axis));
    json_object_set_new(o, "offset", json_integer(r->offset));
    return o;
}

static json_t *num(double x)
{
    return x == x && x - x == 0 ? json_real(x) : json_null();
}

static json_t *stats_json(const nmp_space_stats *st)
{
    json_t *o = json_object();
    const double gain = st->identity > 0 ? 100.0 * (st->kept - st->identity) / st->identity : 0;
    json_object_set_new(o, "rows", json_integer(st->rows));
    json_object_set_new(o, "cols", json_integer(st->cols));
    json_object_set_new(o, "solver", json_string(st->solver));
    json_object_set_new(o, "status", json_string(nmp_status_str(st->status)));
    json_object_set_new(o, "kept_before", num(st->identity));
    json_object_set_new(o, "kept_after", num(st->kept));
    json_object_set_new(o, "gain_pct", num(gain));
    json_object_set_new(o, "efficacy", num(st->efficacy));
    json_object_set_new(o, "row_bound", num(st->row_bound));
    json_object_set_new(o, "bound", num(st->bound));
    json_object_set_new(o, "gap_pct", st->bound > 0 ? num(100.0 * (st->bound - st->kept) /
                                                           st->bound)
                                                    : json_null());
    json_object_set_new(o, "seconds", num(st->seconds));
    json_object_set_new(o, "verify_max_rel", st->verify_rel >= 0 ? num(st->verify_rel)
                                                                  : json_null());
    return o;
}

static json_t *plan_json(const nmp_plan *plan)
{
    json_t *root = json_object(), *spaces = json_array();
    json_object_set_new(root, "arch", json_string(plan->arch));
    if (plan->nm.m > 0) {
        char nm[32];
        snprintf(nm, sizeof nm, "%d:%d", plan->nm.n, plan->nm.m);
        json_object_set_new(root, "nm", json_string(nm));
    }
    for (int64_t s = 0; s < plan->count; s++) {
        const nmp_space *sp = &plan->spaces[s];
        json_t *o = json_object(), *refs = json_array();
        json_object_set_new(o, "name", json_string(sp->name));
        json_object_set_new(o, "size", json_integer(sp->size));
        json_object_set_new(o, "act", json_string(nmp_act_name(sp->act)));
        if (sp->skip)
            json_object_set_new(o, "skip", json_string(sp->skip));
        for (int64_t r = 0; r < sp->nrefs; r++)
            json_array_append_new(refs, ref_json(&sp->refs[r]));
        json_object_set_new(o, "tensors", refs);
        if (sp->solved)
            json_object_set_new(o, "stats", stats_json(&sp->stats));
        if (sp->perm) {
            json_t *p = json_array();
            for (int64_t k = 0; k < sp->size; k++)
                json_array_append_new(p, json_integer(sp->perm[k]));
            json_object_set_new(o, "perm", p);
        }
        json_array_append_new(spaces, o);
    }
    json_object_set_new(root, "spaces", spaces);
    bool solved = false;
    for (int64_t s = 0; s < plan->count; s++)
        solved |= plan->spaces[s].solved != 0;
    if (solved) {
        json_object_set_new(root, "objective",
                            json_string(nmp_saliency_name((nmp_saliency_kind)plan->objective)));
        json_object_set_new(root, "time_limit", num(plan->time_limit));
        char seed[24]; /* above INT64_MAX (jansson's integers) the exact decimal string */
        snprintf(seed, sizeof seed, "%" PRIu64, plan->seed);
        json_object_set_new(root, "seed", plan->seed <= (uint64_t)INT64_MAX
                                              ? json_integer((json_int_t)plan->seed)
                                              : json_string(seed));
        json_object_set_new(root, "threads", json_integer(plan->threads));
        json_object_set_new(root, "reproducible", json_boolean(!(plan->time_limit > 0)));
        json_object_set_new(root, "reproducible_note", json_string(
            plan->time_limit > 0
                ? "solved under a wall-time limit: the permutations depend on the machine's "
                  "speed and load; without --time-limit the work per space is fixed"
                : "fixed work per space: the same input, options, seed and threads give the "
                  "same permutations on any machine (--threads fixes the count; the default "
                  "is the machine's core count)"));
    }
    const nmp_space *res = NULL;
    for (int64_t s = 0; s < plan->count; s++)
        if (strcmp(plan->spaces[s].name, "residual") == 0 && !plan->spaces[s].skip &&
            plan->spaces[s].perm)
            res = &plan->spaces[s];
    if (res)
        json_object_set_new(root, "output_permutation", json_string(
            "the residual stream is permuted: the model's hidden states (BERT / sentence "
            "embeddings, any output_hidden_states) come out with channel k holding original "
            "channel perm[k] of space \"residual\"; undo with h[perm] = h_out (numpy). LM "
            "logits are unchanged"));
    if (plan->npruned > 0) {
        json_t *pr = json_array();
        for (int64_t k = 0; k < plan->npruned; k++) {
            const nmp_pruned *t = &plan->pruned[k];
            json_t *o = json_object();
            json_object_set_new(o, "tensor", json_string(t->tensor));
            json_object_set_new(o, "rows", json_integer(t->rows));
            json_object_set_new(o, "cols", json_integer(t->cols));
            json_object_set_new(o, "density", num(t->density));
            json_object_set_new(o, "kept_abs", num(t->kept_abs));
            json_array_append_new(pr, o);
        }
        json_object_set_new(root, "pruned", pr);
    }
    return root;
}

nmp_err nmp_plan_dumps(const nmp_plan *plan, char **text)
{
    nmp_err e = NMP_OK;
    json_t *root = plan_json(plan);
    char *s = root ? json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER |
                                          JSON_REAL_PRECISION(12))
                   : NULL;
    *text = NULL;
    if (!s) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    if (!(*text = nmp_strdup(s)))
        e = NMP_ERR_NOMEM;
out:
    free(s);
    json_decref(root);
    return e;
}

nmp_err nmp_plan_write(const nmp_plan *plan, const char *path, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    char *text = NULL;
    nmp_atomic f = { 0 };
    NMP_TRY(e, nmp_plan_dumps(plan, &text));
    NMP_TRY(e, nmp_atomic_open(&f, path, msg));
    NMP_TRY(e, nmp_atomic_write(&f, text, strlen(text), msg));
    NMP_TRY(e, nmp_atomic_write(&f, "\n", 1, msg));
    e = nmp_atomic_commit(&f, msg);
out:
    nmp_atomic_abort(&f);
    nmp_free(text);
    return e;
}

/* ------------------------------------------------------------- reading */

/* The k with name(k) equal to s, else -1. */
static int find_name(const char *s, const char *(*name)(int), int count)
{
    for (int k = 0; k < count; k++)
        if (strcmp(s, name(k)) == 0)
            return k;
    return -1;
}

static const char *act_at(int k) { return nmp_act_name((nmp_act)k); }
static const char *use_at(int k) { return nmp_use_name((nmp_use)k); }

/* Reads one space; `where` names it in messages. */
static nmp_err space_from_json(nmp_plan *plan, json_t *o, const char *path, int64_t s,
                               nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    json_t *name = json_object_get(o, "name"), *size = json_object_get(o, "size");
    json_t *act = json_object_get(o, "act"), *skip = json_object_get(o, "skip");
    json_t *refs = json_object_get(o, "tensors"), *perm = json_object_get(o, "perm");
    int a = 0;
    if (!json_is_string(name) || !json_is_integer(size) || !json_is_array(refs) ||
        (act && (!json_is_string(act) ||
                 (a = find_name(json_string_value(act), act_at, 4)) < 0)) ||
        (skip && !json_is_string(skip))) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: space %lld: needs name (string), size (integer), "
                     "tensors (array) and act (identity, relu, gelu or silu)", path,
                     (long long)s);
        goto out;
    }
    const int64_t n = json_integer_value(size);
    if (n < (skip ? 0 : 1) || n > INT32_MAX) { /* skipped spaces may be empty (no heads known) */
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: space %s: size %lld out of range", path,
                     json_string_value(name), (long long)n);
        goto out;
    }
    nmp_space *sp = nmp_plan_add_space(plan, json_string_value(name), n, (nmp_act)a);
    if (!sp) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    if (skip)
        NMP_TRY(e, nmp_space_skip(sp, json_string_value(skip)));
    for (size_t r = 0; r < json_array_size(refs); r++) {
        json_t *ro = json_array_get(refs, r);
        json_t *t = json_object_get(ro, "tensor"), *role = json_object_get(ro, "role");
        json_t *use = json_object_get(ro, "use"), *axis = json_object_get(ro, "axis");
        json_t *off = json_object_get(ro, "offset");
        const char *rs = json_is_string(role) ? json_string_value(role) : "";
        const int u = use ? (json_is_string(use) ? find_name(json_string_value(use), use_at, 8)
                                                 : -1)
                          : 0;
        if (!json_is_string(t) || (strcmp(rs, "consumer") && strcmp(rs, "producer")) ||
            !json_is_integer(axis) || (off && !json_is_integer(off)) || u < 0) {
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: space %s: tensor %zu: needs tensor (string), "
                         "role (consumer or producer), axis (integer), optional offset "
                         "(integer) and use (weight, bias, gate, gate_bias, scale, shift, mean, "
                         "var)", path, sp->name, r);
            goto out;
        }
        const json_int_t ax = json_integer_value(axis);
        const bool consumer = strcmp(rs, "consumer") == 0;
        NMP_TRY(e, nmp_space_ref(sp, json_string_value(t),
                                 consumer ? NMP_ROLE_CONSUMER : NMP_ROLE_PRODUCER, (nmp_use)u,
                                 ax < -1 || ax > NMP_ST_MAX_DIMS ? -1 : (int)ax,
                                 off ? json_integer_value(off) : 0));
    }
    if (perm && !json_is_null(perm)) {
        if (!json_is_array(perm) || (int64_t)json_array_size(perm) != n || n == 0) {
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: space %s: perm must hold %lld integers",
                         path, sp->name, (long long)n);
            goto out;
        }
        if (!(sp->perm = nmp_malloc((size_t)n * sizeof *sp->perm))) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
        for (int64_t k = 0; k < n; k++) {
            json_t *v = json_array_get(perm, (size_t)k);
            const json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;
            sp->perm[k] = x < 0 || x >= n ? -1 : (int32_t)x;
        }
        if (!nmp_perm_is_valid(sp->perm, n)) {
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: space %s: perm is not a permutation of "
                         "0..%lld", path, sp->name, (long long)n - 1);
            goto out;
        }
    }
out:
    return e;
}

nmp_err nmp_plan_read(const char *path, nmp_plan **out, nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    nmp_plan *plan = NULL;
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    *out = NULL;
    if (!root) {
        e = nmp_fail(msg, jerr.line < 0 ? NMP_ERR_IO : NMP_ERR_FORMAT, "%s: %s", path,
                     jerr.text);
        goto out;
    }
    json_t *arch = json_object_get(root, "arch"), *spaces = json_object_get(root, "spaces");
    json_t *nm = json_object_get(root, "nm");
    if (!json_is_array(spaces) || (arch && !json_is_string(arch)) ||
        (nm && !json_is_string(nm))) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: expected an object with \"spaces\" (array), "
                     "optional \"arch\" and \"nm\" (strings)", path);
        goto out;
    }
    if (!(plan = nmp_plan_new(arch ? json_string_value(arch) : "custom"))) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    if (nm && nmp_pattern_parse(json_string_value(nm), &plan->nm, NULL) != NMP_OK) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: bad nm '%s'", path, json_string_value(nm));
        goto out;
    }
    for (size_t s = 0; s < json_array_size(spaces); s++)
        NMP_TRY(e, space_from_json(plan, json_array_get(spaces, s), path, (int64_t)s, msg));
    *out = plan;
    plan = NULL;
out:
    json_decref(root);
    nmp_plan_free(plan);
    return e;
}

/* nmp_verify.c: verification that a permuted space computes what the original did, on random
 * inputs in float64 */
#include "nmp_model.h"

#include <math.h>
#include <string.h>

static double activate(nmp_act a, double x)
{
    switch (a) {
    case NMP_ACT_RELU: return x > 0 ? x : 0;
    case NMP_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case NMP_ACT_SILU: return x / (1.0 + exp(-x));
    case NMP_ACT_IDENTITY: break;
    }
    return x;
}

/* u = sum_q V(c, q) x[q] over the (outer, inner) index q of a producer weight. */
static double dot_in(const nmp_tview *v, int64_t c, const double *x)
{
    double s = 0;
    for (int64_t o = 0; o < v->outer; o++)
        for (int64_t i = 0; i < v->inner; i++)
            s += nmp_tview_get(v, o, c, i) * x[o * v->inner + i];
    return s;
}

/* The block of sp on st (through perm): y = [C_1 h; C_2 h; ...], h as in nmperm.h's nmp_use.
 * views holds sp->nrefs resolved views; u, g have size entries; y gets every consumer row. */
static void block(const nmp_space *sp, const nmp_tview *views, const double *x, double *u,
                  double *g, double *y)
{
    bool gated = false;
    for (int64_t c = 0; c < sp->size; c++)
        u[c] = g[c] = 0;
    for (int64_t r = 0; r < sp->nrefs; r++) {
        const nmp_ref *ref = &sp->refs[r];
        if (ref->role != NMP_ROLE_PRODUCER)
            continue;
        if (ref->use == NMP_USE_WEIGHT || ref->use == NMP_USE_GATE) {
            double *dst = ref->use == NMP_USE_GATE ? g : u;
            gated |= ref->use == NMP_USE_GATE;
            for (int64_t c = 0; c < sp->size; c++)
                dst[c] += dot_in(&views[r], c, x);
        }
    }
    static const nmp_use order[] = { NMP_USE_BIAS, NMP_USE_GATE_BIAS, NMP_USE_MEAN, NMP_USE_VAR,
                                     NMP_USE_SCALE, NMP_USE_SHIFT };
    for (int k = 0; k < 6; k++)
        for (int64_t r = 0; r < sp->nrefs; r++) {
            if (sp->refs[r].role != NMP_ROLE_PRODUCER || sp->refs[r].use != order[k])
                continue;
            for (int64_t c = 0; c < sp->size; c++) {
                const double p = nmp_tview_get(&views[r], 0, c, 0);
                switch (order[k]) {
                case NMP_USE_BIAS: u[c] += p; break;
                case NMP_USE_GATE_BIAS: g[c] += p; break;
                case NMP_USE_MEAN: u[c] -= p; break;
                case NMP_USE_VAR: u[c] /= sqrt(p + 1e-5); break;
                case NMP_USE_SCALE: u[c] *= p; break;
                default: u[c] += p; break;
                }
            }
        }
    for (int64_t c = 0; c < sp->size; c++)
        u[c] = gated ? activate(sp->act, g[c]) * u[c] : activate(sp->act, u[c]);
    int64_t j = 0;
    for (int64_t r = 0; r < sp->nrefs; r++) {
        const nmp_tview *v = &views[r];
        if (sp->refs[r].role != NMP_ROLE_CONSUMER)
            continue;
        for (int64_t o = 0; o < v->outer; o++)
            for (int64_t i = 0; i < v->inner; i++, j++) {
                double s = 0;
                for (int64_t c = 0; c < sp->size; c++)
                    s += nmp_tview_get(v, o, c, i) * u[c];
                y[j] = s;
            }
    }
}

/* The permutations other spaces of the plan applied to r's tensor on its other axes, undone
 * when reading b: one index map per axis (identity outside the spaces' slices) into maps[axis],
 * which the caller frees. Slices of r's own axis are disjoint from r's (nmp_plan_check): never
 * read here. */
static nmp_err add_others(const nmp_plan *plan, int64_t self, const nmp_ref *r, int32_t **pinv,
                          nmp_tview *v, int32_t **maps)
{
    for (int d = 0; d < v->ndim; d++) {
        if (d == r->axis)
            continue;
        for (int64_t s = 0; s < plan->count; s++) {
            const nmp_space *sp = &plan->spaces[s];
            if (s == self || sp->skip || !sp->perm)
                continue;
            for (int64_t k = 0; k < sp->nrefs; k++) {
                const nmp_ref *o = &sp->refs[k];
                if (o->axis != d || strcmp(o->tensor, r->tensor) != 0)
                    continue;
                if (!maps[d]) {
                    if (!(maps[d] = nmp_malloc((size_t)v->shape[d] * sizeof *maps[d])))
                        return NMP_ERR_NOMEM;
                    for (int64_t x = 0; x < v->shape[d]; x++)
                        maps[d][x] = (int32_t)x;
                    v->other[v->nother++] = (nmp_tother){ d, maps[d] };
                }
                for (int64_t x = 0; x < sp->size; x++)
                    maps[d][o->offset + x] = (int32_t)(o->offset + pinv[s][x]);
            }
        }
    }
    return NMP_OK;
}

/* One reference of a space checked on its own, `samples` random inputs at once (rng), for a
 * space that is no single block (the residual stream); slot c of b holds a's channel p(c):
 *   consumer:          y = W x over the channel axis, y_b(x') == y_a(x), x'[c] = x[p(c)];
 *   producer weight:   u = W q over the other axes, u_b[c] == u_a[p(c)];
 *   1-D producer:      z = N(v) op t, N a LayerNorm over the space, v' = v permuted:
 *                      z_b(v')[c] == z_a(v)[p(c)]; op is * for a scale, / sqrt(t + eps) for a
 *                      variance, - for a mean, + otherwise.
 * *diff and *scale get max |a - b| and max |a| over every output. */
static nmp_err verify_ref(const nmp_space *sp, const nmp_ref *ref, const nmp_tview *va,
                          const nmp_tview *vb, nmp_rng *rng, int samples, double *diff,
                          double *scale)
{
    nmp_err e = NMP_OK;
    const int64_t n = sp->size, ins = va->outer * va->inner;
    const int64_t xn = ref->role == NMP_ROLE_CONSUMER ? n
                       : ref->use == NMP_USE_WEIGHT || ref->use == NMP_USE_GATE ? ins
                                                                                : n;
    const int64_t outn = ref->role == NMP_ROLE_CONSUMER ? 1 : n;
    double *x = nmp_malloc((size_t)(samples * xn) * sizeof *x);
    double *ya = nmp_calloc((size_t)(samples * outn), sizeof *ya);
    double *yb = nmp_calloc((size_t)(samples * outn), sizeof *yb);
    if (!x || !ya || !yb) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    for (int64_t q = 0; q < samples * xn; q++)
        x[q] = nmp_rng_normal(rng);
#define P(c) (sp->perm ? (int64_t)sp->perm[c] : (c))
#define TRACK(a, b)                                                                                \
    do {                                                                                           \
        const double d_ = fabs((a) - (b));                                                         \
        *diff = d_ > *diff || d_ != d_ ? d_ : *diff;                                               \
        *scale = NMP_MAX(*scale, fabs(a));                                                         \
    } while (0)
    if (ref->role == NMP_ROLE_CONSUMER) {
        for (int64_t o = 0; o < va->outer; o++)
            for (int64_t i = 0; i < va->inner; i++) {
                for (int k = 0; k < samples; k++)
                    ya[k] = yb[k] = 0;
                for (int64_t c = 0; c < n; c++) {
                    const double wa = nmp_tview_get(va, o, c, i), wb = nmp_tview_get(vb, o, c, i);
                    for (int k = 0; k < samples; k++) {
                        ya[k] += wa * x[k * n + c];
                        yb[k] += wb * x[k * n + P(c)];
                    }
                }
                for (int k = 0; k < samples; k++)
                    TRACK(ya[k], yb[k]);
            }
    } else if (ref->use == NMP_USE_WEIGHT || ref->use == NMP_USE_GATE) {
        for (int64_t o = 0; o < va->outer; o++)
            for (int64_t c = 0; c < n; c++)
                for (int64_t i = 0; i < va->inner; i++) {
                    const double wa = nmp_tview_get(va, o, c, i), wb = nmp_tview_get(vb, o, c, i);
                    const int64_t q = o * va->inner + i;
                    for (int k = 0; k < samples; k++) {
                        ya[k * n + c] += wa * x[k * ins + q];
                        yb[k * n + c] += wb * x[k * ins + q];
                    }
                }
        for (int k = 0; k < samples; k++)
            for (int64_t c = 0; c < n; c++)
                TRACK(ya[k * n + P(c)], yb[k * n + c]);
    } else {
        for (int k = 0; k < samples; k++) {
            const double *v = &x[k * n];
            double ma = 0, mb = 0, sa = 0, sb = 0;
            for (int64_t c = 0; c < n; c++) {
                ma += v[c];
                mb += v[P(c)];
            }
            ma /= (double)n;
            mb /= (double)n;
            for (int64_t c = 0; c < n; c++) {
                sa += (v[c] - ma) * (v[c] - ma);
                sb += (v[P(c)] - mb) * (v[P(c)] - mb);
            }
            sa = sqrt(sa / (double)n + 1e-5);
            sb = sqrt(sb / (double)n + 1e-5);
            for (int64_t c = 0; c < n; c++) {
                const double na = (v[c] - ma) / sa, nb = (v[P(c)] - mb) / sb;
                const double ta = nmp_tview_get(va, 0, c, 0), tb = nmp_tview_get(vb, 0, c, 0);
                double *za = &ya[k * n + c], *zb = &yb[k * n + c];
                switch (ref->use) {
                case NMP_USE_SCALE: *za = na * ta; *zb = nb * tb; break;
                case NMP_USE_VAR:
                    *za = na / sqrt(fabs(ta) + 1e-5);
                    *zb = nb / sqrt(fabs(tb) + 1e-5);
                    break;
                case NMP_USE_MEAN: *za = na - ta; *zb = nb - tb; break;
                default: *za = na + ta; *zb = nb + tb; break;
                }
            }
            for (int64_t c = 0; c < n; c++)
                TRACK(ya[k * n + P(c)], yb[k * n + c]);
        }
    }
#undef TRACK
#undef P
out:
    nmp_free(x);
    nmp_free(ya);
    nmp_free(yb);
    return e;
}

/* Random x (N(0, 1), seeded) through the block of space `self` on a and on b (or, for a space
 * that is no single block, through each of its tensors); the largest output difference relative
 * to the largest output of a. */
nmp_err nmp_space_verify(const nmp_plan *plan, int64_t self, const nmp_st *a, const nmp_st *b,
                         int virtual_perm, uint64_t seed, int samples, double *max_rel,
                         nmp_msg *msg)
{
    nmp_err e = NMP_OK;
    const nmp_space *sp = &plan->spaces[self];
    nmp_tview *va = nmp_calloc((size_t)sp->nrefs, sizeof *va);
    nmp_tview *vb = nmp_calloc((size_t)sp->nrefs, sizeof *vb);
    int32_t **pinv = nmp_calloc((size_t)plan->count, sizeof *pinv);
    int32_t **maps = nmp_calloc((size_t)sp->nrefs * NMP_ST_MAX_DIMS, sizeof *maps);
    double *x = NULL, *u = NULL, *g = NULL, *ya = NULL, *yb = NULL;
    int64_t xdim = -1, ydim = 0;
    int weights = 0;
    *max_rel = 0;
    if (!va || !vb || !pinv || !maps) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    int producers = 0;
    for (int64_t r = 0; r < sp->nrefs; r++) {
        weights += sp->refs[r].role == NMP_ROLE_PRODUCER && sp->refs[r].use == NMP_USE_WEIGHT;
        producers += sp->refs[r].role == NMP_ROLE_PRODUCER;
    }
    if (producers == 0) {
        e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: space %s: no producer tensor: nothing to verify "
                     "against", nmp_st_path(a), sp->name);
        goto out;
    }
    const bool one_block = weights == 1;
    for (int64_t s = 0; s < plan->count && !virtual_perm; s++) {
        const nmp_space *o = &plan->spaces[s];
        if (o->skip || !o->perm || s == self)
            continue;
        if (!(pinv[s] = nmp_malloc((size_t)o->size * sizeof *pinv[s]))) {
            e = NMP_ERR_NOMEM;
            goto out;
        }
        nmp_perm_invert(o->perm, pinv[s], o->size);
    }
    for (int64_t r = 0; r < sp->nrefs; r++) {
        const nmp_ref *ref = &sp->refs[r];
        NMP_TRY(e, nmp_tview_resolve(a, sp, ref, NULL, &va[r], msg));
        NMP_TRY(e, nmp_tview_resolve(b, sp, ref, virtual_perm ? sp->perm : NULL, &vb[r], msg));
        if (!virtual_perm)
            NMP_TRY(e, add_others(plan, self, ref, pinv, &vb[r], &maps[r * NMP_ST_MAX_DIMS]));
        if (va[r].outer != vb[r].outer || va[r].C != vb[r].C || va[r].inner != vb[r].inner) {
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: shape differs from %s", nmp_st_path(b),
                         ref->tensor, nmp_st_path(a));
            goto out;
        }
        const int64_t in = va[r].outer * va[r].inner;
        if (ref->role == NMP_ROLE_CONSUMER) {
            ydim += in;
        } else if (ref->use == NMP_USE_WEIGHT || ref->use == NMP_USE_GATE) {
            if (one_block && xdim >= 0 && xdim != in) {
                e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: %lld inputs, other producers of "
                             "space %s have %lld", nmp_st_path(a), ref->tensor, (long long)in,
                             sp->name, (long long)xdim);
                goto out;
            }
            xdim = in;
        } else if (va[r].outer * va[r].inner != 1) {
            e = nmp_fail(msg, NMP_ERR_FORMAT, "%s: %s: a %s must be 1-D (space %s)",
                         nmp_st_path(a), ref->tensor, nmp_use_name(ref->use), sp->name);
            goto out;
        }
    }
    nmp_rng rng;
    nmp_rng_seed(&rng, seed);
    if (!one_block) {
        for (int64_t r = 0; r < sp->nrefs; r++) {
            double diff = 0, scale = 0;
            NMP_TRY(e, verify_ref(sp, &sp->refs[r], &va[r], &vb[r], &rng, samples, &diff,
                                  &scale));
            const double rel = diff != diff ? INFINITY : diff / (scale > 0 ? scale : 1.0);
            *max_rel = NMP_MAX(*max_rel, rel);
        }
        goto out;
    }
    x = nmp_malloc((size_t)xdim * sizeof *x);
    u = nmp_malloc((size_t)sp->size * sizeof *u);
    g = nmp_malloc((size_t)sp->size * sizeof *g);
    ya = nmp_malloc((size_t)ydim * sizeof *ya);
    yb = nmp_malloc((size_t)ydim * sizeof *yb);
    if (!x || !u || !g || !ya || !yb) {
        e = NMP_ERR_NOMEM;
        goto out;
    }
    double diff = 0, scale = 0;
    for (int k = 0; k < samples; k++) {
        for (int64_t q = 0; q < xdim; q++)
            x[q] = nmp_rng_normal(&rng);
        block(sp, va, x, u, g, ya);
        block(sp, vb, x, u, g, yb);
        for (int64_t j = 0; j < ydim; j++) {
            const double d = fabs(ya[j] - yb[j]);
            diff = d > diff || d != d ? d : diff;
            scale = NMP_MAX(scale, fabs(ya[j]));
        }
    }
    *max_rel = diff != diff ? INFINITY : diff / (scale > 0 ? scale : 1.0);
out:
    for (int64_t s = 0; pinv && s < plan->count; s++)
        nmp_free(pinv[s]);
    for (int64_t k = 0; maps && k < sp->nrefs * NMP_ST_MAX_DIMS; k++)
        nmp_free(maps[k]);
    nmp_free(maps);
    nmp_free(pinv);
    nmp_free(va);
    nmp_free(vb);
    nmp_free(x);
    nmp_free(u);
    nmp_free(g);
    nmp_free(ya);
    nmp_free(yb);
    return e;
}

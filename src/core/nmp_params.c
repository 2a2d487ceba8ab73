/* nmp_params.c: solver parameters: seeds, limits and named values checked against each solver's table */
#include "nmp_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void nmp_params_init(nmp_params *p)
{
    memset(p, 0, sizeof *p);
}

static const char *const device_names[] = { "cpu", "auto", "gpu", "ref" };

const char *nmp_device_name(nmp_device d)
{
    return (unsigned)d < sizeof device_names / sizeof *device_names ? device_names[d] : "?";
}

nmp_err nmp_device_parse(const char *name, nmp_device *out, nmp_msg *msg)
{
    for (unsigned k = 0; k < sizeof device_names / sizeof *device_names; k++)
        if (name && strcmp(name, device_names[k]) == 0) {
            *out = (nmp_device)k;
            return NMP_OK;
        }
    return nmp_fail(msg, NMP_ERR_ARG, "device '%s': expected cpu, auto, gpu or ref",
                    name ? name : "");
}

nmp_err nmp_params_set(nmp_params *p, const char *name, double value)
{
    if (!name || !*name || strlen(name) >= sizeof p->values[0].name)
        return NMP_ERR_ARG;
    for (int k = 0; k < p->count; k++)
        if (strcmp(p->values[k].name, name) == 0) {
            p->values[k].value = value;
            return NMP_OK;
        }
    if (p->count == NMP_MAX_PARAMS)
        return NMP_ERR_ARG;
    strcpy(p->values[p->count].name, name);
    p->values[p->count].value = value;
    p->count++;
    return NMP_OK;
}

nmp_err nmp_params_parse(nmp_params *p, const char *kv, nmp_msg *msg)
{
    const char *eq = strchr(kv, '=');
    char name[sizeof p->values[0].name];
    if (!eq || eq == kv)
        return nmp_fail(msg, NMP_ERR_ARG, "parameter '%s': expected key=value", kv);
    if ((size_t)(eq - kv) >= sizeof name)
        return nmp_fail(msg, NMP_ERR_ARG, "parameter '%s': name too long", kv);
    memcpy(name, kv, (size_t)(eq - kv));
    name[eq - kv] = '\0';
    char *end = NULL;
    errno = 0;
    const double v = strtod(eq + 1, &end);
    if (end == eq + 1 || *end != '\0' || errno || !isfinite(v))
        return nmp_fail(msg, NMP_ERR_ARG, "parameter '%s': '%s' is not a number", name, eq + 1);
    if (nmp_params_set(p, name, v) != NMP_OK)
        return nmp_fail(msg, NMP_ERR_ARG, "parameter '%s': too many parameters", name);
    return NMP_OK;
}

static const nmp_param_desc *find_desc(const nmp_param_desc *descs, const char *name)
{
    for (const nmp_param_desc *d = descs; d && d->name; d++)
        if (strcmp(d->name, name) == 0)
            return d;
    return NULL;
}

double nmp_param_get(const nmp_params *par, const nmp_param_desc *descs, const char *name)
{
    for (int k = 0; par && k < par->count; k++)
        if (strcmp(par->values[k].name, name) == 0)
            return par->values[k].value;
    const nmp_param_desc *d = find_desc(descs, name);
    return d ? d->def : NAN;
}

nmp_err nmp_params_check(const nmp_params *par, const nmp_solver_ops *ops, nmp_msg *msg)
{
    if (par->time_limit < 0 || !isfinite(par->time_limit))
        return nmp_fail(msg, NMP_ERR_ARG, "time limit %g is not a number of seconds >= 0",
                        par->time_limit);
    if (par->threads < 0)
        return nmp_fail(msg, NMP_ERR_ARG, "thread count %d is negative", par->threads);
    if ((unsigned)par->device > NMP_DEVICE_REF)
        return nmp_fail(msg, NMP_ERR_ARG, "device %d is not one of cpu, auto, gpu, ref",
                        (int)par->device);
    if ((par->device == NMP_DEVICE_GPU || par->device == NMP_DEVICE_REF) && !ops->device)
        return nmp_fail(msg, NMP_ERR_UNSUPPORTED, "solver '%s' has no device search (--device "
                        "%s; 'nmperm solvers' marks the ones that have)", ops->name,
                        nmp_device_name(par->device));
    for (int k = 0; k < par->count; k++) {
        const char *name = par->values[k].name;
        const double v = par->values[k].value;
        const nmp_param_desc *d = find_desc(ops->params, name);
        if (!d)
            return nmp_fail(msg, NMP_ERR_ARG, "solver '%s' has no parameter '%s' (see 'nmperm "
                            "solvers')", ops->name, name);
        if (!(v >= d->lo && v <= d->hi))
            return nmp_fail(msg, NMP_ERR_ARG, "parameter %s=%g of solver '%s' is out of range "
                            "[%g, %g]", name, v, ops->name, d->lo, d->hi);
    }
    return NMP_OK;
}

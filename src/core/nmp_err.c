/* nmp_err.c: error codes, search statuses and one-line messages */
#include "nmp_internal.h"

#include <stdio.h>

const char *nmp_err_str(nmp_err e)
{
    switch (e) {
    case NMP_OK: return "ok";
    case NMP_ERR_ARG: return "invalid argument";
    case NMP_ERR_NOMEM: return "out of memory";
    case NMP_ERR_IO: return "input/output error";
    case NMP_ERR_FORMAT: return "malformed or unsupported file";
    case NMP_ERR_UNSUPPORTED: return "unsupported";
    case NMP_ERR_LP: return "LP/MIP solver failure";
    case NMP_ERR_GPU: return "GPU failure";
    case NMP_ERR_INTERNAL: return "internal error";
    }
    return "unknown error";
}

const char *nmp_status_str(nmp_status s)
{
    switch (s) {
    case NMP_STATUS_OPTIMAL: return "optimal";
    case NMP_STATUS_FEASIBLE: return "feasible";
    case NMP_STATUS_TIME_LIMIT: return "time limit";
    case NMP_STATUS_ITER_LIMIT: return "iteration limit";
    case NMP_STATUS_INTERRUPTED: return "interrupted";
    }
    return "unknown";
}

const char *nmp_version(void)
{
    return NMP_VERSION_STRING;
}

/* Control characters (a newline in a tensor name or a .npy key echoed from a file) become '?':
 * a message stays one line whatever the input holds. */
nmp_err nmp_fail(nmp_msg *msg, nmp_err e, const char *fmt, ...)
{
    if (msg) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg->text, sizeof msg->text, fmt, ap);
        va_end(ap);
        for (char *c = msg->text; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                *c = '?';
    }
    return e;
}

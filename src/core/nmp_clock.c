/* nmp_clock.c: monotonic time, time limits and the progress callback */
#include "nmp_internal.h"

#include <time.h>

double nmp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void nmp_clock_start(nmp_clock *c, const nmp_params *par)
{
    c->start = nmp_now();
    c->last_report = c->start;
    c->limit = par ? par->time_limit : 0;
    c->progress = par ? par->progress : NULL;
    c->user = par ? par->progress_user : NULL;
    c->stopped = false;
}

double nmp_clock_elapsed(const nmp_clock *c)
{
    return nmp_now() - c->start;
}

/* Reads the time only when there is a limit, so a check costs a load and a compare without one
 * and a call to clock_gettime (vDSO, ~20 ns) with one. It reads only start and limit, which
 * nothing writes after nmp_clock_start: safe from any thread, also while the owner ticks. c may be
 * NULL (no clock: never expired). */
bool nmp_clock_expired(const nmp_clock *c)
{
    return c && c->limit > 0 && nmp_clock_elapsed(c) >= c->limit;
}

bool nmp_clock_tick(nmp_clock *c, int64_t iteration, double best, double bound, const char *phase,
                    bool force)
{
    const double now = nmp_now();
    if (c->progress && !c->stopped && (force || now - c->last_report >= 0.2)) {
        const nmp_progress p = { now - c->start, iteration, best, bound, phase };
        c->last_report = now;
        if (c->progress(&p, c->user) != 0)
            c->stopped = true;
    }
    return c->stopped || (c->limit > 0 && now - c->start >= c->limit);
}

nmp_status nmp_clock_status(const nmp_clock *c)
{
    return c->stopped ? NMP_STATUS_INTERRUPTED : NMP_STATUS_TIME_LIMIT;
}

/* timers.c: the phase accumulators of timers.h (one set per process). */
#include "kd/core/timers.h"
#include "kd/core/error.h"
#include "kd/core/log.h"

static double total[TIMER_COUNT];
static double started[TIMER_COUNT]; /* 0 = not running */

const char *timer_phase_name(enum timer_phase p)
{
    static const char *const names[TIMER_COUNT] = {"compute", "send/recv wait", "allreduce",
                                                   "I/O"};
    return (unsigned)p < TIMER_COUNT ? names[p] : "?";
}

void timers_reset(void)
{
    for (int i = 0; i < TIMER_COUNT; i++)
        total[i] = started[i] = 0.0;
}

double timer_total(enum timer_phase p) { return total[p]; }

void timer_add(enum timer_phase p, double seconds) { total[p] += seconds; }

void timer_start(enum timer_phase p)
{
    KD_ASSERT(started[p] == 0.0, "timer \"%s\" started twice", timer_phase_name(p));
    started[p] = wall_seconds();
    if (started[p] == 0.0) /* keep 0 as "not running" */
        started[p] = 1e-300;
}

void timer_stop(enum timer_phase p)
{
    KD_ASSERT(started[p] != 0.0, "timer \"%s\" stopped without start", timer_phase_name(p));
    total[p] += wall_seconds() - started[p];
    started[p] = 0.0;
}

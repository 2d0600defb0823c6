/* timers.c: the phase accumulators of timers.h (one set per process). */
#include "kd/core/timers.h"
#include "kd/core/error.h"
#include "kd/core/log.h"

/* Phases nest as a stack and time is exclusive: starting a phase pauses
 * the one running (a wait inside a compute region counts as wait only). */
#define TIMER_DEPTH 16
static double total[TIMER_COUNT];
static int stack[TIMER_DEPTH];
static int depth;
static double since; /* start of the current interval of the top phase */

const char *timer_phase_name(enum timer_phase p)
{
    static const char *const names[TIMER_COUNT] = {"compute", "send/recv wait", "allreduce",
                                                   "I/O"};
    return (unsigned)p < TIMER_COUNT ? names[p] : "?";
}

void timers_reset(void)
{
    for (int i = 0; i < TIMER_COUNT; i++)
        total[i] = 0.0;
    depth = 0;
}

double timer_total(enum timer_phase p) { return total[p]; }

void timer_add(enum timer_phase p, double seconds) { total[p] += seconds; }

void timer_start(enum timer_phase p)
{
    KD_ASSERT(depth < TIMER_DEPTH, "timer \"%s\" nested too deeply", timer_phase_name(p));
    const double now = wall_seconds();
    if (depth > 0)
        total[stack[depth - 1]] += now - since;
    stack[depth++] = (int)p;
    since = now;
}

void timer_stop(enum timer_phase p)
{
    KD_ASSERT(depth > 0 && stack[depth - 1] == (int)p, "timer \"%s\" stopped out of order",
              timer_phase_name(p));
    const double now = wall_seconds();
    total[p] += now - since;
    depth--;
    since = now;
}

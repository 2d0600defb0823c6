/* timers.h: per-process accumulating phase timers (core layer, no MPI).
 *
 * Every rank adds the seconds it spends in each phase; at the end of a stage
 * parallel/timer_report.h gathers them and prints min/avg/max across ranks,
 * which shows load imbalance and communication overhead at a glance.
 * Phases are coarse on purpose: timing every kernel would cost more than it
 * tells. Phases nest (start/stop in stack order) and time is exclusive: a
 * wait started inside a compute region pauses the compute clock. */
#ifndef KD_CORE_TIMERS_H
#define KD_CORE_TIMERS_H

enum timer_phase {
    TIMER_COMPUTE = 0,   /* forward, backward, optimizer, losses */
    TIMER_COMM_WAIT,     /* waiting in point-to-point sends/receives */
    TIMER_ALLREDUCE,     /* waiting for gradient (all-)reductions */
    TIMER_IO,            /* reading and writing files (store, checkpoints) */
    TIMER_COUNT
};

/* "compute", "send/recv wait", "allreduce", "I/O". */
const char *timer_phase_name(enum timer_phase p);

/* Zeroes every phase (at the start of a stage). */
void timers_reset(void);
/* Seconds accumulated in phase p since the last reset. */
double timer_total(enum timer_phase p);
/* Adds seconds to phase p. */
void timer_add(enum timer_phase p, double seconds);
/* Starts / stops phase p (accumulates the interval on stop). */
void timer_start(enum timer_phase p);
void timer_stop(enum timer_phase p);

#endif

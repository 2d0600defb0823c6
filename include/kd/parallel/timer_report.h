/* timer_report.h: the end-of-stage timing table (parallel layer).
 * Collective: gathers every rank's phase totals (core/timers.h) and rank 0
 * logs, per phase, min / avg / max seconds across ranks and the share of
 * the stage's wall time (the average rank's), e.g.
 *   stage "distill" timers over 4 ranks (s)   min     avg     max   share
 *     compute                                 41.2    42.0    43.1   93.1%
 *     allreduce                                1.0     1.9     2.6    4.2% */
#ifndef KD_PARALLEL_TIMER_REPORT_H
#define KD_PARALLEL_TIMER_REPORT_H

#include "kd/core/timers.h"
#include "kd/parallel/comm.h"

struct timer_summary {
    double min[TIMER_COUNT], avg[TIMER_COUNT], max[TIMER_COUNT];
    double wall; /* max over ranks of the wall seconds passed in */
};

/* Collective over c. wall: this rank's wall seconds of the stage. Fills
 * *out on every rank (may be NULL) and logs the table on rank 0. */
void timers_report(const struct comm *c, const char *stage, double wall,
                   struct timer_summary *out);

#endif

/* timer_report.c: min/avg/max of the phase timers across ranks. */
#include "kd/parallel/timer_report.h"
#include "kd/core/log.h"

void timers_report(const struct comm *c, const char *stage, double wall,
                   struct timer_summary *out)
{
    double mine[TIMER_COUNT + 1], lo[TIMER_COUNT + 1], hi[TIMER_COUNT + 1], sum[TIMER_COUNT + 1];
    for (int i = 0; i < TIMER_COUNT; i++)
        mine[i] = timer_total((enum timer_phase)i);
    mine[TIMER_COUNT] = wall;
    MPI_CHECK(MPI_Allreduce(mine, lo, TIMER_COUNT + 1, MPI_DOUBLE, MPI_MIN, c->world));
    MPI_CHECK(MPI_Allreduce(mine, hi, TIMER_COUNT + 1, MPI_DOUBLE, MPI_MAX, c->world));
    MPI_CHECK(MPI_Allreduce(mine, sum, TIMER_COUNT + 1, MPI_DOUBLE, MPI_SUM, c->world));
    struct timer_summary s;
    for (int i = 0; i < TIMER_COUNT; i++) {
        s.min[i] = lo[i];
        s.max[i] = hi[i];
        s.avg[i] = sum[i] / c->size;
    }
    s.wall = hi[TIMER_COUNT];
    const double avg_wall = sum[TIMER_COUNT] / c->size;
    /* c's rank 0 prints: the report of a sub-communicator (e.g. the teacher
     * ranks of an online stage) is shown even when it excludes world rank 0 */
    if (c->rank == 0) {
        log_info("stage \"%s\" timers over %d rank%s (s)   %8s %8s %8s %7s", stage, c->size,
                  c->size == 1 ? "" : "s", "min", "avg", "max", "share");
        for (int i = 0; i < TIMER_COUNT; i++)
            log_info("  %-36s %8.2f %8.2f %8.2f %6.1f%%", timer_phase_name((enum timer_phase)i),
                      s.min[i], s.avg[i], s.max[i],
                      avg_wall > 0 ? 100.0 * s.avg[i] / avg_wall : 0.0);
    }
    if (out)
        *out = s;
}

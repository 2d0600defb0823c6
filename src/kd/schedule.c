/* schedule.c: ALL / PID / SID phases of a distill stage (kd layer). The
 * phases, boundaries and which terms are on are specified in
 * include/kd/kd/schedule.h. */
#include "kd/kd/schedule.h"
#include "kd/job/job.h"

#include <math.h>
#include <string.h>

int kd_sched_phases(int method, int n_mapped)
{
    return method == DISTILL_METHOD_ALL ? 1 : n_mapped + 1;
}

int kd_sched_phase_at(int method, int n_mapped, int64_t total_steps, int64_t step)
{
    const int64_t P = kd_sched_phases(method, n_mapped);
    if (P <= 1 || total_steps <= 0 || step <= 0)
        return 0;
    /* floor(s * P / S) in integers: exact, so every rank agrees */
    int64_t p = step * P / total_steps;
    return (int)(p < P - 1 ? p : P - 1);
}

int64_t kd_sched_phase_begin(int method, int n_mapped, int64_t total_steps, int phase)
{
    const int64_t P = kd_sched_phases(method, n_mapped);
    if (phase <= 0)
        return 0;
    if (phase >= P)
        return total_steps;
    /* smallest s with floor(s * P / S) >= p, i.e. ceil(p * S / P) */
    return ((int64_t)phase * total_steps + P - 1) / P;
}

int kd_sched_init(struct kd_sched *s, int method, int n_mapped, int64_t total_steps,
                  double threshold, struct kd_err *err)
{
    memset(s, 0, sizeof *s);
    if (method != DISTILL_METHOD_ALL && method != DISTILL_METHOD_PID &&
        method != DISTILL_METHOD_SID)
        return kd_errf(err, "distill schedule: unknown method %d", method);
    if (method != DISTILL_METHOD_ALL && n_mapped < 1)
        return kd_errf(err, "distill schedule: method \"%s\" needs at least one layer mapped "
                       "by a hidden or attention loss, got none",
                       method == DISTILL_METHOD_PID ? "pid" : "sid");
    if (total_steps < 1)
        return kd_errf(err, "distill schedule: expected at least 1 step, got %lld",
                       (long long)total_steps);
    if (!(threshold >= 0.0) || !isfinite(threshold))
        return kd_errf(err, "distill schedule: expected a finite switch_threshold >= 0, "
                       "got %g", threshold);
    s->method = method;
    s->n_mapped = n_mapped;
    s->total_steps = total_steps;
    s->threshold = threshold;
    return 0;
}

int kd_sched_update(struct kd_sched *s, int64_t step, double prev_loss)
{
    const int last = kd_sched_phases(s->method, s->n_mapped) - 1;
    int p = s->phase;
    /* Early move: the previous step's loss counts only if that step ran in
     * the current phase (step - 1 >= phase_start); otherwise it measured
     * the phase we just left. A NaN loss compares false. */
    if (s->threshold > 0.0 && p < last && step > s->phase_start && prev_loss < s->threshold)
        p++;
    /* the equal split bounds every phase from above */
    const int q = kd_sched_phase_at(s->method, s->n_mapped, s->total_steps, step);
    if (q > p)
        p = q;
    if (p != s->phase) {
        s->phase = p;
        s->phase_start = step;
    }
    return p;
}

void kd_active_all(struct kd_active *a)
{
    a->output = 1;
    a->internal = 1;
    memset(a->layer, 1, sizeof a->layer);
}

void kd_sched_active(struct kd_active *a, int method, int phase, int n_mapped,
                     const int32_t *mapped)
{
    if (method == DISTILL_METHOD_ALL) {
        kd_active_all(a);
        return;
    }
    memset(a, 0, sizeof *a);
    if (phase >= n_mapped) { /* the final phase: soft (and hard) labels */
        a->output = 1;
        return;
    }
    a->internal = 1;
    const int first = method == DISTILL_METHOD_SID ? 0 : phase;
    for (int k = first; k <= phase; k++) {
        KD_ASSERT(mapped[k] >= 0 && mapped[k] <= BERT_MAX_LAYERS, "mapped layer %d",
                  (int)mapped[k]);
        a->layer[mapped[k]] = 1;
    }
}

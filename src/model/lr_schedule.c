/* lr_schedule.c: warmup + linear / cosine / constant learning rates as a
 * pure function of the step (model layer). Formulas and step indexing are
 * in include/kd/model/lr_schedule.h. */
#include "kd/model/lr_schedule.h"

#include <math.h>
#include <string.h>

/* Indexed by enum lr_schedule_kind. */
static const char *const kind_names[LR_SCHEDULE_COUNT] = {"linear", "cosine", "constant"};

const char *lr_schedule_kind_name(enum lr_schedule_kind kind)
{
    return (unsigned)kind < LR_SCHEDULE_COUNT ? kind_names[kind] : "?";
}

int lr_schedule_kind_parse(const char *name, enum lr_schedule_kind *out, struct kd_err *err)
{
    for (int k = 0; k < LR_SCHEDULE_COUNT; k++) {
        if (strcmp(name, kind_names[k]) == 0) {
            *out = (enum lr_schedule_kind)k;
            return 0;
        }
    }
    return kd_errf(err, "learning-rate schedule: expected one of \"linear\", \"cosine\", "
                   "\"constant\", got \"%s\"", name);
}

int lr_schedule_check(const struct lr_schedule *s, struct kd_err *err)
{
    if ((unsigned)s->kind >= LR_SCHEDULE_COUNT)
        return kd_errf(err, "learning-rate schedule: expected kind linear, cosine or "
                       "constant, got %d", (int)s->kind);
    const char *k = lr_schedule_kind_name(s->kind);
    /* !(in range) so that NaN fails too */
    if (!(s->lr_max >= 0.0 && isfinite(s->lr_max)))
        return kd_errf(err, "%s schedule: lr_max: expected a finite number >= 0, got %g",
                       k, s->lr_max);
    if (!(s->lr_min >= 0.0 && s->lr_min <= s->lr_max))
        return kd_errf(err, "%s schedule: lr_min: expected a number in [0, lr_max = %g], "
                       "got %g", k, s->lr_max, s->lr_min);
    if (s->warmup_steps < 0)
        return kd_errf(err, "%s schedule: warmup_steps: expected >= 0, got %lld", k,
                       (long long)s->warmup_steps);
    /* a decaying schedule with T = 0 would run at lr_min from the first
     * step, which is a plan that forgot to resolve max_steps */
    if (s->kind != LR_SCHEDULE_CONSTANT && s->total_steps <= 0)
        return kd_errf(err, "%s schedule: total_steps: expected > 0 (the decay ends "
                       "there), got %lld", k, (long long)s->total_steps);
    return 0;
}

double lr_schedule_at(const struct lr_schedule *s, int64_t step)
{
    const int64_t t = step < 0 ? 0 : step;
    const int64_t w = s->warmup_steps, total = s->total_steps;
    const double hi = s->lr_max, lo = s->lr_min;
    /* The ratios are formed first and then multiplied by the rate, in this
     * order, so that lo = 0 reproduces hi * ((t+1)/W) and hi * ((T-t)/(T-W))
     * exactly as PyTorch-side scripts write them. */
    /* warmup: t + 1 so that the first update already moves (rate hi/W) and
     * the last warmup update (t = W-1) runs at exactly hi */
    if (t < w)
        return hi * ((double)(t + 1) / (double)w);
    if (s->kind == LR_SCHEDULE_CONSTANT)
        return hi;
    /* past the end (W >= T, or a run longer than planned): the floor */
    if (t >= total)
        return lo;
    /* here w <= t < total, so total - w >= 1 */
    if (s->kind == LR_SCHEDULE_LINEAR)
        return lo + (hi - lo) * ((double)(total - t) / (double)(total - w));
    /* cosine over the same span: 1 at t = W, 0 at t = T (Loshchilov &
     * Hutter, SGDR, without restarts; transformers' half-cycle form) */
    double progress = (double)(t - w) / (double)(total - w);   /* in [0, 1) */
    return lo + (hi - lo) * (0.5 * (1.0 + cos(M_PI * progress)));
}

int64_t lr_schedule_warmup_from_fraction(double fraction, int64_t total_steps)
{
    /* !(> 0) also maps NaN to no warmup */
    if (!(fraction > 0.0) || total_steps <= 0)
        return 0;
    if (fraction > 1.0)
        fraction = 1.0;
    double x = fraction * (double)total_steps;
    double f = floor(x);
    /* 0.1 * 30 = 3.0000000000000004: an integer up to rounding stays one */
    return (int64_t)(x - f <= 1e-9 * (f > 1.0 ? f : 1.0) ? f : f + 1.0);
}

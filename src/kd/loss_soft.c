/* loss_soft.c: soft-label distillation from the teacher's logits (kd layer).
 *
 * Classification (K > 1), at temperature T (kd_soft_temperature: constant
 * or annealed linearly over the stage), p_T = softmax(t/T), p_S =
 * softmax(s/T), per example b:
 *     KL form  l_b = T^2 sum_k p_T,k (log p_T,k - log p_S,k)
 *     CE form  l_b = T^2 sum_k -p_T,k log p_S,k  = KL + T^2 H(p_T)
 *     L = (1/N) sum_b l_b                   (torch KLDivLoss "batchmean")
 * Both forms have the same gradient (H(p_T) does not depend on s):
 *     dL/ds_b,k = T^2 * (1/T) (p_S,k - p_T,k) / N = T (p_S,k - p_T,k) / N
 * The T^2 factor (Hinton et al. 2015) keeps the gradient's size roughly
 * independent of T. Rows are done in double: K is a handful of classes, and
 * the KL of two close distributions is a difference of nearly equal terms.
 *
 * Regression (K = 1): softmax of one logit is 1, so the soft target is the
 * teacher's prediction itself: l_b = (s_b - t_b)^2 (no temperature). */
#include "kd/kd/loss_term.h"

#include <math.h>

double kd_soft_temperature(const struct loss_cfg *cfg, int64_t step, int64_t total_steps)
{
    const double T0 = cfg->temperature, T1 = cfg->temperature_end;
    if (cfg->temperature_schedule != TEMP_SCHEDULE_LINEAR || total_steps <= 1)
        return T0;
    int64_t s = step < 0 ? 0 : step;
    if (s > total_steps - 1)
        s = total_steps - 1;
    return T0 + (T1 - T0) * ((double)s / (double)(total_steps - 1));
}

static void soft_needs(const struct kd_term *t, struct kd_needs *n)
{
    n->logits = 1;
}

static int soft_check(const struct kd_term *t, const struct kd_model_dims *d,
                      struct kd_err *err)
{
    char where[96];
    kd_loss_where(where, sizeof where, t->index, &t->cfg);
    if (d->student.num_labels != d->teacher.num_labels)
        return kd_errf(err, "%s: soft labels need the same label count in student and "
                       "teacher, got %lld student and %lld teacher labels", where,
                       (long long)d->student.num_labels, (long long)d->teacher.num_labels);
    if (t->opts.soft_form != KD_SOFT_KL && t->opts.soft_form != KD_SOFT_CE)
        return kd_errf(err, "%s: unknown soft-label form %d", where, t->opts.soft_form);
    if (!(t->cfg.temperature > 0) || !(t->cfg.temperature_end > 0))
        return kd_errf(err, "%s: expected temperatures > 0, got %g and %g", where,
                       t->cfg.temperature, t->cfg.temperature_end);
    return 0;
}

/* log-sum-exp of x/T (K) in double, max-shifted */
static double lse_scaled(const float *x, int64_t K, double invT)
{
    double m = -INFINITY;
    for (int64_t k = 0; k < K; k++)
        m = fmax(m, x[k] * invT);
    double s = 0.0;
    for (int64_t k = 0; k < K; k++)
        s += exp(x[k] * invT - m);
    return m + log(s);
}

static double soft_compute(struct kd_term *t, struct kd_term_ctx *c)
{
    const int64_t K = c->d->student.num_labels, B = c->B;
    const float *zs = c->s->logits, *zt = c->t->logits;
    KD_ASSERT(zs && zt, "soft loss: missing %s logits", zs ? "teacher" : "student");
    float *dz = kd_tap_dlogits(c);
    const double N = c->norm_examples;
    double sum = 0.0;
    if (K == 1) {
        const double g = 2.0 * c->weight / N;
        for (int64_t b = 0; b < B; b++) {
            if (c->n_real[b] == 0)
                continue;
            const double e = (double)zs[b] - (double)zt[b];
            sum += e * e;
            dz[b] += (float)(g * e);
        }
        return sum / N;
    }
    const double T = kd_soft_temperature(&t->cfg, c->step, c->total_steps);
    const double invT = 1.0 / T, g = c->weight * T / N;
    const int ce = t->opts.soft_form == KD_SOFT_CE;
    for (int64_t b = 0; b < B; b++) {
        if (c->n_real[b] == 0)
            continue;
        const float *s = zs + b * K, *u = zt + b * K;
        const double ls = lse_scaled(s, K, invT), lt = lse_scaled(u, K, invT);
        double row = 0.0;
        for (int64_t k = 0; k < K; k++) {
            const double log_ps = s[k] * invT - ls, log_pt = u[k] * invT - lt;
            const double pt = exp(log_pt);
            row += ce ? -pt * log_ps : pt * (log_pt - log_ps);
            dz[b * K + k] += (float)(g * (exp(log_ps) - pt));
        }
        sum += T * T * row;
    }
    return sum / N;
}

const struct kd_term_ops kd_term_soft = {
    .name = "soft",
    .kind = LOSS_KIND_SOFT,
    .internal = 0,
    .taps = KD_TAP_LOGITS,
    .uses_map = 0,
    .needs = soft_needs,
    .check = soft_check,
    .compute = soft_compute,
};

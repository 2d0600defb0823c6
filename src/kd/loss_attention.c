/* loss_attention.c: attention-map distillation over mapped layer pairs (kd
 * layer; Aguilar et al., METHODS.md 2(b), 2(e)).
 *
 * For a pair (student layer j, teacher layer i) with NH heads each, the
 * pre-dropout probabilities p_S = softmax(scores S over real keys) and p_T,
 * per example b with rows Q_b = its real query rows (n_b of them; or all T
 * with KD_ATTN_ROWS_ALL) and real keys k:
 *     KL_bhq = sum_k p_T log(p_T / p_S)           (0 log 0 = 0)
 *     l_b    = (1/(NH |Q_b|)) sum_h sum_{q in Q_b} KL_bhq
 *     L_pair = (1/N) sum_b l_b,   term value = sum over active pairs
 * Gradient, taken at the student's PRE-SOFTMAX scores (METHODS.md 2(e):
 * backpropagating through log p_S would divide by probabilities that can
 * be tiny): with s_T = sum_k p_T over the row's real keys,
 *     dL/dS_bhqk = (p_S,k s_T - p_T,k) / (N NH |Q_b|)   on real keys,
 * 0 on padded keys and on rows outside Q_b. s_T is 1 for a teacher row in
 * fp32; keeping it makes the gradient exact for rows rounded to fp16 in the
 * store too. The result goes to the set's dscores buffer of layer j, which
 * bert_backward adds after the softmax backward (bert_grad_in.dscores).
 *
 * p_S is clamped below at FLT_MIN inside the log: a real key whose
 * probability underflowed to 0 in fp32 would otherwise make the loss
 * infinite; the gradient is unaffected. Each row is one fp32 log of
 * p_T / p_S per key (6.3M keys, B = 32, T = 128, 12 heads: ~0.045 s per
 * layer pair on one core, measured), rows are summed in double. */
#include "kd/kd/loss_term.h"

#include <float.h>
#include <math.h>

static void attention_needs(const struct kd_term *t, struct kd_needs *n)
{
    for (int k = 0; k < t->map.n; k++)
        n->attention_layers[n->n_attention++] = t->map.pair[k].teacher;
}

static int attention_check(const struct kd_term *t, const struct kd_model_dims *d,
                           struct kd_err *err)
{
    char where[96];
    kd_loss_where(where, sizeof where, t->index, &t->cfg);
    if (t->opts.attention_rows != KD_ATTN_ROWS_REAL && t->opts.attention_rows != KD_ATTN_ROWS_ALL)
        return kd_errf(err, "%s: unknown attention row selection %d", where,
                       t->opts.attention_rows);
    for (int k = 0; k < t->map.n; k++) {
        const int32_t js = t->map.pair[k].student, it = t->map.pair[k].teacher;
        const int64_t nh = d->student.layer_heads[js - 1];
        if (nh == 0)
            return kd_errf(err, "%s: student layer %d has no attention heads (pruned), so "
                           "it cannot take teacher layer %d's attention maps", where,
                           (int)js, (int)it);
        if (nh != d->teacher.heads)
            return kd_errf(err, "%s: student layer %d has %lld attention heads but teacher "
                           "layer %d has %lld; maps are compared head by head and no head "
                           "mapping is defined, so the counts must be equal", where,
                           (int)js, (long long)nh, (int)it, (long long)d->teacher.heads);
    }
    return 0;
}

/* One (b,h) block of T rows; returns sum over the rows in Q_b of KL. */
static double block(float *restrict dS, const float *restrict pS, const float *restrict pT,
                    const int32_t *restrict keep, int64_t T, int all_rows, double coef)
{
    double kl = 0.0;
    for (int64_t q = 0; q < T; q++) {
        if (!all_rows && keep && keep[q] == 0)
            continue; /* padded query row */
        const float *ps = pS + q * T, *pt = pT + q * T;
        float *ds = dS + q * T;
        /* one fp32 log of the ratio per key: accurate where p_T ~ p_S (the
         * difference of two logs would cancel) and half the cost; the row
         * sums are short (T terms of magnitude <= 1) and go into double */
        float sT = 0.0f, row = 0.0f;
        for (int64_t k = 0; k < T; k++) {
            if (keep && keep[k] == 0)
                continue; /* padded key */
            const float t = pt[k];
            sT += t;
            if (t > 0.0f)
                row += t * logf(t / fmaxf(ps[k], FLT_MIN));
        }
        kl += row;
        const float c = (float)coef, cs = (float)(coef * sT);
        if (keep) { /* branch-free, so it vectorises */
            for (int64_t k = 0; k < T; k++)
                ds[k] += keep[k] != 0 ? cs * ps[k] - c * pt[k] : 0.0f;
        } else {
            for (int64_t k = 0; k < T; k++)
                ds[k] += cs * ps[k] - c * pt[k];
        }
    }
    return kl;
}

static double pair_compute(struct kd_term *t, struct kd_term_ctx *c, int k)
{
    const struct kd_layer_pair pr = t->map.pair[k];
    const int64_t B = c->B, T = c->T, NH = c->d->teacher.heads;
    const float *pS = c->s->probs[pr.student - 1], *pT = c->t->probs[pr.teacher - 1];
    KD_ASSERT(pS, "attention loss: no student probabilities for layer %d", (int)pr.student);
    KD_ASSERT(pT, "attention loss: no teacher probabilities for layer %d", (int)pr.teacher);
    float *dS = kd_tap_dscores(c, pr.student);
    const int all_rows = t->opts.attention_rows == KD_ATTN_ROWS_ALL;
    const double N = c->norm_examples;
    double sum = 0.0;
    for (int64_t b = 0; b < B; b++) {
        if (c->n_real[b] == 0)
            continue;
        const int64_t rows = all_rows ? T : c->n_real[b];
        const double coef = c->weight / (N * (double)NH * (double)rows);
        const int32_t *keep = c->t->attention_mask ? c->t->attention_mask + b * T : NULL;
        double lb = 0.0;
        for (int64_t h = 0; h < NH; h++) {
            const int64_t off = (b * NH + h) * T * T;
            lb += block(dS + off, pS + off, pT + off, keep, T, all_rows, coef);
        }
        sum += lb / ((double)NH * (double)rows);
    }
    return sum / N;
}

static double attention_compute(struct kd_term *t, struct kd_term_ctx *c)
{
    double v = 0.0;
    for (int k = 0; k < t->map.n; k++)
        if (c->layer_on[t->map.pair[k].student])
            v += pair_compute(t, c, k);
    return v;
}

const struct kd_term_ops kd_term_attention = {
    .name = "attention",
    .kind = LOSS_KIND_ATTENTION,
    .internal = 1,
    .taps = KD_TAP_SCORES,
    .uses_map = 1,
    .map_embeddings = 0,
    .needs = attention_needs,
    .check = attention_check,
    .compute = attention_compute,
};

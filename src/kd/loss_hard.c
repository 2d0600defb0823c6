/* loss_hard.c: the gold-label loss of the student (kd layer).
 *
 * Classification (K > 1), labels y in [0,K) or -100 (ignored):
 *     L = (1/N_lab) sum_b [lse(z_b) - z_b,y_b]
 *     dL/dz_b = (softmax(z_b) - onehot(y_b)) / N_lab
 * Regression (K = 1, num_labels == 1 as transformers' problem_type):
 *     L = (1/N_lab) sum_b (z_b - y_b)^2,   dL/dz_b = 2 (z_b - y_b) / N_lab
 * N_lab is the labelled-example normaliser (loss_term.h), so on one rank
 * with the local count this is PyTorch's CrossEntropyLoss / MSELoss with
 * reduction "mean". The row maths is the kernels' (losses.h), one row at a
 * time so batch-padding examples can be skipped. */
#include "kd/kd/loss_term.h"
#include "kd/kernels/losses.h"

static void hard_needs(const struct kd_term *t, struct kd_needs *n)
{
    n->labels = 1;
}

static int hard_check(const struct kd_term *t, const struct kd_model_dims *d,
                      struct kd_err *err)
{
    char where[96];
    if (d->student.num_labels < 1)
        return kd_errf(err, "%s: the student has no labels (num_labels = %lld)",
                       kd_loss_where(where, sizeof where, t->index, &t->cfg),
                       (long long)d->student.num_labels);
    return 0;
}

static double hard_compute(struct kd_term *t, struct kd_term_ctx *c)
{
    const int64_t K = c->d->student.num_labels, B = c->B;
    const int regression = K == 1;
    const float *z = c->s->logits;
    KD_ASSERT(z, "hard loss: the student view has no logits");
    KD_ASSERT(regression ? c->t->labels_f32 != NULL : c->t->labels != NULL,
              "hard loss: the batch has no %s labels", regression ? "float" : "class");
    float *dz = kd_tap_dlogits(c);
    const double N = c->norm_labelled;
    const float g = (float)(c->weight / N);
    double sum = 0.0;
    for (int64_t b = 0; b < B; b++) {
        if (c->n_real[b] == 0)
            continue; /* batch padding */
        if (regression) {
            const double e = (double)z[b] - (double)c->t->labels_f32[b];
            sum += e * e;
            dz[b] += 2.0f * g * (float)e;
            continue;
        }
        const int32_t *y = &c->t->labels[b];
        if (*y == LOSS_IGNORE_INDEX)
            continue;
        float lse;
        sum += crossentropy_forward(&lse, z + b * K, y, 1, K);
        crossentropy_backward(dz + b * K, g, z + b * K, &lse, y, 1, K);
    }
    return sum / N;
}

const struct kd_term_ops kd_term_hard = {
    .name = "hard",
    .kind = LOSS_KIND_HARD,
    .internal = 0,
    .taps = KD_TAP_LOGITS,
    .uses_map = 0,
    .needs = hard_needs,
    .check = hard_check,
    .compute = hard_compute,
};

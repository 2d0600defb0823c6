/* views.c: student and teacher views from a BERT model's taps, and the
 * local example counts behind the normalisers (kd layer). */
#include "kd/kd/loss_term.h"
#include "kd/kernels/losses.h"

#include <string.h>

void kd_student_view_from_bert(struct kd_student_view *v, const struct bert_model *m)
{
    KD_ASSERT(m->have_forward, "student view before bert_forward");
    memset(v, 0, sizeof *v);
    v->B = m->batch.B;
    v->T = m->batch.T;
    v->logits = m->a.logits;
    const int64_t L = m->cfg.num_hidden_layers;
    for (int64_t l = 0; l <= L; l++)
        v->hidden[l] = bert_hidden(m, l);
    for (int64_t l = 0; l < L; l++)
        v->probs[l] = bert_probs(m, l);
}

void kd_teacher_view_from_bert(struct kd_teacher_view *v, const struct bert_model *m,
                               const int32_t *attention_mask, const int32_t *labels,
                               const float *labels_f32)
{
    KD_ASSERT(m->have_forward, "teacher view before bert_forward");
    memset(v, 0, sizeof *v);
    v->B = m->batch.B;
    v->T = m->batch.T;
    v->attention_mask = attention_mask;
    v->labels = labels;
    v->labels_f32 = labels_f32;
    v->logits = m->a.logits;
    v->hidden_tokens = TOKEN_SEL_ALL;
    const int64_t L = m->cfg.num_hidden_layers;
    for (int64_t l = 0; l <= L; l++)
        v->hidden[l] = bert_hidden(m, l);
    for (int64_t l = 0; l < L; l++)
        v->probs[l] = bert_probs(m, l);
}

void kd_batch_counts(const struct kd_teacher_view *v, int regression, double *examples,
                     double *labelled)
{
    double ex = 0, lab = 0;
    for (int64_t b = 0; b < v->B; b++) {
        int real = 1;
        if (v->attention_mask) {
            real = 0;
            for (int64_t t = 0; t < v->T && !real; t++)
                real = v->attention_mask[b * v->T + t] != 0;
        }
        if (!real)
            continue; /* batch padding */
        ex += 1;
        if (regression || (v->labels && v->labels[b] != LOSS_IGNORE_INDEX))
            lab += 1;
    }
    if (examples)
        *examples = ex;
    if (labelled)
        *labelled = lab;
}

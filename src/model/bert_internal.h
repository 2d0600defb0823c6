/* bert_internal.h: declarations shared by the BERT source files only
 * (model layer; not a public API). */
#ifndef KD_MODEL_BERT_INTERNAL_H
#define KD_MODEL_BERT_INTERNAL_H

#include "kd/kernels/dropout.h"
#include "kd/model/bert.h"

#include <stdint.h>

/* Dropout streams: offset = step * BERT_DROP_SITES + site (see bert.h). */
#define BERT_DROP_SITES 65536u
#define BERT_SITE_EMB 0u
#define BERT_SITE_PROBS(l) (1u + 3u * (uint64_t)(l))
#define BERT_SITE_ATTN_OUT(l) (2u + 3u * (uint64_t)(l))
#define BERT_SITE_FFN_OUT(l) (3u + 3u * (uint64_t)(l))
#define BERT_SITE_CLS(L) (1u + 3u * (uint64_t)(L))

/* Dropout spec of one site for the current batch: p (0 unless training),
 * the model's seed, the site's stream, and first = first_example *
 * per_example (elements of the site's tensor per example). */
struct dropout_spec bert_drop(const struct bert_model *m, double p, uint64_t site,
                              uint64_t per_example);

/* Block width of the model's own pointwise loops: a constant inner trip
 * count lets GCC vectorise at -O2 (same reasoning as kernels/vecmath.h). */
#define BERT_VL 16

/* Elements per thread below which the model's own memory-bound passes
 * (adds, zeroing) stay on one thread (kernels/threads.h, threads_team). */
#define BERT_PASS_GRAIN 32768

/* y (n) = a (n) + b (n); y must not alias a or b. */
static inline void bert_add(float *restrict y, const float *restrict a, const float *restrict b,
                            int64_t n)
{
    int64_t i = 0;
    for (; i + BERT_VL <= n; i += BERT_VL)
        for (int k = 0; k < BERT_VL; k++)
            y[i + k] = a[i + k] + b[i + k];
    for (; i < n; i++)
        y[i] = a[i] + b[i];
}

/* y (n) += x (n) */
static inline void bert_acc(float *restrict y, const float *restrict x, int64_t n)
{
    int64_t i = 0;
    for (; i + BERT_VL <= n; i += BERT_VL)
        for (int k = 0; k < BERT_VL; k++)
            y[i + k] += x[i + k];
    for (; i < n; i++)
        y[i] += x[i];
}

/* Heads (bert_heads.c): pooler, classifier and MLM on h_L. */
void bert_heads_forward(struct bert_model *m);
/* Accumulates the heads' parameter gradients (g may be NULL: none) and
 * adds their gradient w.r.t. h_L into dh (B,T,C). */
void bert_heads_backward(struct bert_model *m, const struct bert_grad_in *in,
                         const struct bert_params *g, float *dh);

#endif

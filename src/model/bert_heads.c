/* bert_heads.c: the heads on top of the encoder, forward and backward,
 * and the task-loss helpers (model layer; no MPI).
 *
 *   pooler      pooled = tanh(h_L[:,0] W_p^T + b_p)              (B,C)
 *   classifier  logits = dropout(pooled) W_c^T + b_c             (B,K)
 *   MLM         z = LN(gelu(h_L[pos] W_t^T + b_t)) E^T + bias    (B,P,V)
 * (transformers' BertPooler, BertForSequenceClassification and
 * BertOnlyMLMHead / BertLMPredictionHead; E is the word-embedding matrix,
 * tied to the decoder, so its gradient collects both uses.)
 *
 * The MLM head runs on the chosen positions only: B*P rows instead of B*T,
 * which for BERT-base's V = 30522 is most of the head's cost. */
#include "bert_internal.h"

#include "kd/kernels/dropout.h"
#include "kd/kernels/elementwise.h"
#include "kd/kernels/gelu.h"
#include "kd/kernels/gemm.h"
#include "kd/kernels/layernorm.h"
#include "kd/kernels/linear.h"
#include "kd/kernels/losses.h"

#include <string.h>

/* HF: classifier_dropout if set, else hidden_dropout_prob */
static double classifier_p(const struct bert_config *cfg)
{
    return cfg->classifier_dropout >= 0.0 ? cfg->classifier_dropout : cfg->hidden_dropout_prob;
}

static struct dropout_spec cls_drop(const struct bert_model *m)
{
    return bert_drop(m, classifier_p(&m->cfg), BERT_SITE_CLS(m->cfg.num_hidden_layers),
                     (uint64_t)m->cfg.hidden_size);
}

static int mlm_active(const struct bert_model *m)
{
    return (m->opts.heads & BERT_HEAD_MLM) && m->batch.P > 0;
}

void bert_heads_forward(struct bert_model *m)
{
    const struct bert_batch *b = &m->batch;
    const struct bert_config *cfg = &m->cfg;
    const int64_t B = b->B, T = b->T, C = cfg->hidden_size;
    const unsigned heads = m->opts.heads;
    struct bert_acts *a = &m->a;
    const float *hL = a->hidden[cfg->num_hidden_layers]; /* (B,T,C) */

    if (heads & BERT_HEAD_POOLER) {
        /* gather the [CLS] rows (B,C): gemm needs a dense operand, and the
         * backward needs this input for d W_p */
        for (int64_t i = 0; i < B; i++)
            memcpy(a->cls_in + i * C, hL + i * T * C, (size_t)C * sizeof(float));
        linear_forward(a->pooled, a->cls_in, m->p.pool_w, m->p.pool_b, B, C, C);
        tanh_forward(a->pooled, a->pooled, B * C);
    }
    if (heads & BERT_HEAD_CLASSIFIER) {
        struct dropout_spec d = cls_drop(m);
        const float *x = a->pooled;
        if (d.p > 0.0f) { /* keep pooled intact: it is a tap */
            dropout_forward(a->cls_drop, a->pooled, d, B * C);
            x = a->cls_drop;
        }
        linear_forward(a->logits, x, m->p.cls_w, m->p.cls_b, B, C, cfg->num_labels);
    }
    if (mlm_active(m)) {
        const int64_t P = b->P, BP = B * P;
        for (int64_t i = 0; i < BP; i++) {
            const int64_t pos = b->mlm_positions[i], row = i / P;
            KD_ASSERT(pos < T, "MLM position %lld of sequence %lld outside [0,%lld)",
                      (long long)pos, (long long)row, (long long)T);
            if (pos < 0) /* unused slot */
                memset(a->mlm_in + i * C, 0, (size_t)C * sizeof(float));
            else
                memcpy(a->mlm_in + i * C, hL + (row * T + pos) * C, (size_t)C * sizeof(float));
        }
        linear_forward(a->mlm_pre, a->mlm_in, m->p.mlm_w, NULL, BP, C, C);
        gelu_forward(a->mlm_act, a->mlm_pre, a->mlm_pre, m->p.mlm_b, BP, C);
        layernorm_forward(a->mlm_ln, a->mlm_mean, a->mlm_rstd, a->mlm_act, m->p.mlm_ln_w,
                          m->p.mlm_ln_b, BP, C, (float)cfg->layer_norm_eps);
        /* tied decoder: z = t E^T + bias, E = word embeddings (V,C) */
        linear_forward(a->mlm_logits, a->mlm_ln, m->p.word_emb, m->p.mlm_bias, BP, C,
                       cfg->vocab_size);
    }
}

/* Gradient pointer of a parameter, or NULL when parameter gradients are
 * not wanted (g == NULL). */
#define GP(g, field) ((g) ? (g)->field : NULL)

void bert_heads_backward(struct bert_model *m, const struct bert_grad_in *in,
                         const struct bert_params *g, float *dh)
{
    const struct bert_batch *b = &m->batch;
    const struct bert_config *cfg = &m->cfg;
    const int64_t B = b->B, T = b->T, C = cfg->hidden_size, K = cfg->num_labels;
    const unsigned heads = m->opts.heads;
    const struct bert_acts *a = &m->a;
    const struct bert_grad_acts *ga = &m->ga;
    const int want_cls = (heads & BERT_HEAD_CLASSIFIER) && in->dlogits;

    if ((heads & BERT_HEAD_POOLER) && (want_cls || in->dpooled)) {
        memset(ga->dpool, 0, (size_t)(B * C) * sizeof(float));
        if (want_cls) {
            struct dropout_spec d = cls_drop(m);
            const float *x = d.p > 0.0f ? a->cls_drop : a->pooled;
            if (d.p > 0.0f) {
                /* dcls (B,C) = dlogits (B,K) @ W_c (K,C), then undo the mask */
                gemm(ga->dcls, C, in->dlogits, K, m->p.cls_w, C, GEMM_TRANS_N, GEMM_TRANS_N, B,
                     C, K, 1.0f, 0.0f);
                dropout_backward(ga->dpool, ga->dcls, d, B * C);
                linear_backward(NULL, GP(g, cls_w), GP(g, cls_b), in->dlogits, x, m->p.cls_w, B,
                                C, K);
            } else {
                linear_backward(ga->dpool, GP(g, cls_w), GP(g, cls_b), in->dlogits, x,
                                m->p.cls_w, B, C, K);
            }
        }
        if (in->dpooled)
            bert_acc(ga->dpool, in->dpooled, B * C);
        /* through tanh (from its output) and the pooler dense */
        memset(ga->dpool_pre, 0, (size_t)(B * C) * sizeof(float));
        tanh_backward(ga->dpool_pre, ga->dpool, a->pooled, B * C);
        gemm(ga->dcls_in, C, ga->dpool_pre, C, m->p.pool_w, C, GEMM_TRANS_N, GEMM_TRANS_N, B, C,
             C, 1.0f, 0.0f);
        linear_backward(NULL, GP(g, pool_w), GP(g, pool_b), ga->dpool_pre, a->cls_in,
                        m->p.pool_w, B, C, C);
        for (int64_t i = 0; i < B; i++) /* scatter to the [CLS] rows of h_L */
            bert_acc(dh + i * T * C, ga->dcls_in + i * C, C);
    }

    if (mlm_active(m) && in->dmlm_logits) {
        const int64_t P = b->P, BP = B * P, V = cfg->vocab_size;
        /* decoder: d t (BP,C) = dz (BP,V) @ E (V,C); dE += dz^T t; dbias */
        gemm(ga->dmlm_ln, C, in->dmlm_logits, V, m->p.word_emb, C, GEMM_TRANS_N, GEMM_TRANS_N,
             BP, C, V, 1.0f, 0.0f);
        linear_backward(NULL, GP(g, word_emb), GP(g, mlm_bias), in->dmlm_logits, a->mlm_ln,
                        m->p.word_emb, BP, C, V);
        /* transform: LayerNorm, GELU (+ bias), dense */
        memset(ga->dmlm_act, 0, (size_t)(BP * C) * sizeof(float));
        layernorm_backward(ga->dmlm_act, GP(g, mlm_ln_w), GP(g, mlm_ln_b), ga->dmlm_ln,
                           a->mlm_act, a->mlm_mean, a->mlm_rstd, m->p.mlm_ln_w, BP, C);
        memset(ga->dmlm_pre, 0, (size_t)(BP * C) * sizeof(float));
        gelu_backward(ga->dmlm_pre, GP(g, mlm_b), ga->dmlm_act, a->mlm_pre, BP, C);
        gemm(ga->dmlm_in, C, ga->dmlm_pre, C, m->p.mlm_w, C, GEMM_TRANS_N, GEMM_TRANS_N, BP, C,
             C, 1.0f, 0.0f);
        linear_backward(NULL, GP(g, mlm_w), NULL, ga->dmlm_pre, a->mlm_in, m->p.mlm_w, BP, C, C);
        for (int64_t i = 0; i < BP; i++) { /* scatter to the chosen rows of h_L */
            const int64_t pos = b->mlm_positions[i];
            if (pos >= 0)
                bert_acc(dh + ((i / P) * T + pos) * C, ga->dmlm_in + i * C, C);
        }
    }
}

/* ---- task losses ------------------------------------------------------- */

double bert_loss_classification(const struct bert_model *m, const int32_t *labels,
                                float *dlogits, float weight)
{
    KD_ASSERT(m->opts.heads & BERT_HEAD_CLASSIFIER, "the model has no classifier head");
    const int64_t B = m->batch.B, K = m->cfg.num_labels;
    double loss = crossentropy_forward(NULL, m->a.logits, labels, B, K);
    if (dlogits) {
        memset(dlogits, 0, (size_t)(B * K) * sizeof(float));
        crossentropy_backward(dlogits, weight, m->a.logits, NULL, labels, B, K);
    }
    return loss;
}

double bert_loss_regression(const struct bert_model *m, const float *labels, float *dlogits,
                            float weight)
{
    KD_ASSERT(m->opts.heads & BERT_HEAD_CLASSIFIER, "the model has no classifier head");
    KD_ASSERT(m->cfg.num_labels == 1, "regression needs num_labels = 1, got %lld",
              (long long)m->cfg.num_labels);
    const int64_t B = m->batch.B;
    double loss = mse_forward(m->a.logits, labels, B);
    if (dlogits) {
        memset(dlogits, 0, (size_t)B * sizeof(float));
        mse_backward(dlogits, NULL, weight, m->a.logits, labels, B);
    }
    return loss;
}

double bert_loss_mlm(const struct bert_model *m, const int32_t *labels, float *dmlm_logits,
                     float weight)
{
    KD_ASSERT(mlm_active(m), "the last forward ran no MLM head");
    const int64_t BP = m->batch.B * m->batch.P, V = m->cfg.vocab_size;
    double loss = crossentropy_forward(NULL, m->a.mlm_logits, labels, BP, V);
    if (dmlm_logits) {
        memset(dmlm_logits, 0, (size_t)(BP * V) * sizeof(float));
        crossentropy_backward(dmlm_logits, weight, m->a.mlm_logits, NULL, labels, BP, V);
    }
    return loss;
}

/* t_bert_grad.c: finite-difference check of the whole BERT model
 * (verification ladder rung iii, tests/gradcheck.h).
 *
 * Model: L = 3 layers, C = 12 (3 heads of 4), F = 16, V = 20, 10 positions,
 * K = 3 labels, with the pooler, the classifier and the MLM head, on a batch
 * of B = 2 sequences of T = 6 (the second padded after 4 tokens) with P = 2
 * MLM positions (one slot unused, -1). Every parameter is random (weights
 * U(-0.3, 0.3), biases U(-0.1, 0.1), LayerNorm weights U(0.8, 1.2)), and
 * the MLM transform bias is U(-1, 1): the unused MLM slot feeds a zero row
 * into the head, so its LayerNorm sees gelu(bias) alone, and with biases of
 * 0.1 that row's spread is so small (rstd ~ 30) that eps = 1e-2 is no
 * longer a small step (truncation error of 2%, measured). Also,
 * pad_token_id is null: with a padding index the model deliberately drops
 * the lookup gradient of that word row (transformers' semantics, checked by
 * t_bert_golden), which a finite difference would see.
 *
 * The scalar is gradcheck's random-weighted sum, in double, of EVERY tap:
 * logits, pooled output, MLM logits, hidden states h_0..h_L, attention
 * probabilities of each layer, and the attention scores S = QK^T/sqrt(HS)
 * of each layer (computed here in double from the model's QKV cache). Its
 * weights reach the backward as injected gradients (dlogits, dpooled,
 * dmlm_logits, dhidden[l], dprobs[l], dscores[l]), so one check covers the
 * heads, every injection point and the parameter gradients.
 *
 * Problems (each: NaN check, accumulate check, every parameter tensor):
 *   1. full layout, eval;
 *   2. pruned layout: heads {2, 0, 3}, FFN widths {16, 0, 5} (a layer with
 *      no attention and a layer with no FFN);
 *   3. pruned layout in training mode with every dropout at p = 0.1: the
 *      masks are functions of (seed, step, index), fixed across the
 *      perturbed forwards, so the difference quotient sees the same
 *      network the backward replays;
 *   4. d loss / d h_0 with h_0 given directly (batch.embedding_output, the
 *      integrated-gradients path), full layout.
 * Sampling: 12 entries per parameter tensor (all of the small ones), all
 * 144 entries of h_0.
 * Tolerances: eps 1e-2, |analytic - numeric| <= 1e-3 + 1e-2 * max(|a|,|n|).
 * Budget (gradcheck.c): ~2600 fp32 outputs of magnitude <= 3 with weights
 * in (-1, 1) give a rounding term of about sqrt(2600) * 2.4e-7 / 2e-2 =
 * 6e-4 in the worst case; the truncation term eps^2/6 * L''' stays below
 * 1e-4 * |a| for these smooth functions (GELU, tanh, softmax, LayerNorm). */
#include "../gradcheck.h"
#include "../tap.h"
#include "bert_testutil.h"
#include "kd/core/log.h"
#include "kd/model/bert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B_ 2
#define T_ 6
#define P_ 2

struct fd {
    struct bert_model m;
    struct bert_batch batch;
    int via_h0;            /* problem 4: h_0 is the input */
    float *h0, *dh0;       /* (B,T,C) */
    double **scores;       /* [L] (B,NH,T,T) */
    /* gradcheck outputs and their weights (= injected gradients) */
    struct gc_output *outs;
    int n_outs;
    float *w_logits, *w_pooled, *w_mlm;
    float **w_hidden, **w_probs, **w_scores;
};

static void fwd(void *p)
{
    struct fd *f = p;
    bert_forward(&f->m, &f->batch);
    /* the scores of every layer from the packed QKV cache, in double */
    const struct bert_config *cfg = &f->m.cfg;
    const int64_t HS = f->m.HS;
    for (int64_t l = 0; l < cfg->num_hidden_layers; l++) {
        const int64_t NH = cfg->layer_heads[l], CH = NH * HS;
        const float *qkv = f->m.a.layer[l].qkv;
        for (int64_t b = 0; b < B_; b++)
            for (int64_t h = 0; h < NH; h++)
                for (int64_t i = 0; i < T_; i++)
                    for (int64_t j = 0; j < T_; j++) {
                        double s = 0;
                        for (int64_t d = 0; d < HS; d++)
                            s += (double)qkv[(b * T_ + i) * 3 * CH + h * HS + d] *
                                 qkv[(b * T_ + j) * 3 * CH + CH + h * HS + d];
                        f->scores[l][((b * NH + h) * T_ + i) * T_ + j] = s / sqrt((double)HS);
                    }
    }
}

static void bwd(void *p)
{
    struct fd *f = p;
    const int64_t L = f->m.cfg.num_hidden_layers;
    struct bert_grad_in g;
    memset(&g, 0, sizeof g);
    g.dlogits = f->w_logits;
    g.dpooled = f->w_pooled;
    g.dmlm_logits = f->w_mlm;
    for (int64_t l = 0; l <= L; l++)
        g.dhidden[l] = f->w_hidden[l];
    for (int64_t l = 0; l < L; l++) {
        g.dprobs[l] = f->w_probs[l];
        g.dscores[l] = f->w_scores[l];
    }
    g.skip_param_grads = f->via_h0;
    bert_backward(&f->m, &g);
    if (f->via_h0) { /* the checker wants accumulation into its own buffer */
        const int64_t n = B_ * T_ * f->m.cfg.hidden_size;
        for (int64_t i = 0; i < n; i++)
            f->dh0[i] += f->m.d_embedding_output[i];
    }
}

/* Random values for every parameter, by kind. */
static void randomise(struct bert_model *m, uint64_t seed)
{
    float *base = (float *)(void *)m->params_arena.base;
    for (int i = 0; i < m->ptab.n; i++) {
        const struct bert_tensor *t = &m->ptab.t[i];
        const char *nm = t->name;
        size_t len = strlen(nm);
        int bias = len > 5 && strcmp(nm + len - 5, ".bias") == 0;
        float lo = -0.3f, hi = 0.3f;
        if (strstr(nm, "LayerNorm") && !bias)
            lo = 0.8f, hi = 1.2f;
        else if (strcmp(nm, "cls.predictions.transform.dense.bias") == 0)
            lo = -1.0f, hi = 1.0f; /* see the header: the unused MLM slot */
        else if (bias)
            lo = -0.1f, hi = 0.1f;
        gc_rand(base + t->offset, t->numel, lo, hi, seed + (uint64_t)i);
    }
}

static struct gc_output out(const char *name, const float *y, const double *yd, float *dy,
                            int64_t n)
{
    struct gc_output o = {name, y, yd, dy, n};
    return o;
}

static void run(const char *what, const struct bert_config *cfg, int train, int via_h0)
{
    static const int32_t ids[B_ * T_] = {2, 7, 0, 13, 19, 5, 3, 0, 11, 4, 0, 0};
    static const int32_t types[B_ * T_] = {0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0};
    static const int32_t mask[B_ * T_] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    static const int32_t pos[B_ * P_] = {1, 4, 2, -1};
    struct fd *f = calloc(1, sizeof *f);
    struct bert_opts o = {.B = B_, .T = T_, .P = P_,
                          .heads = BERT_HEAD_CLASSIFIER | BERT_HEAD_MLM, .backward = 1,
                          .param_grads = 1, .seed = 99};
    struct kd_err err;
    if (bert_init(&f->m, cfg, &o, &err) != 0)
        bail_out("%s", err.msg);
    struct bert_model *m = &f->m;
    randomise(m, 7);
    const int64_t L = cfg->num_hidden_layers, C = cfg->hidden_size, K = cfg->num_labels;
    const int64_t V = cfg->vocab_size, BTC = B_ * T_ * C;
    f->batch = (struct bert_batch){.B = B_, .T = T_, .input_ids = ids, .token_type_ids = types,
                                   .attention_mask = mask, .P = P_, .mlm_positions = pos,
                                   .train = train, .first_example = 5, .step = 3};
    f->via_h0 = via_h0;
    if (via_h0) {
        f->h0 = malloc((size_t)BTC * sizeof(float));
        f->dh0 = malloc((size_t)BTC * sizeof(float));
        gc_rand(f->h0, BTC, -1.5f, 1.5f, 31);
        f->batch.embedding_output = f->h0;
    }

    /* outputs: logits, pooled, mlm logits, h_0..h_L, probs and scores per layer */
    f->outs = calloc((size_t)(3 + (L + 1) + 2 * L), sizeof *f->outs);
    f->w_logits = malloc((size_t)(B_ * K) * sizeof(float));
    f->w_pooled = malloc((size_t)(B_ * C) * sizeof(float));
    f->w_mlm = malloc((size_t)(B_ * P_ * V) * sizeof(float));
    f->w_hidden = calloc((size_t)L + 1, sizeof(float *));
    f->w_probs = calloc((size_t)L, sizeof(float *));
    f->w_scores = calloc((size_t)L, sizeof(float *));
    f->scores = calloc((size_t)L, sizeof(double *));
    int k = 0;
    f->outs[k++] = out("logits", m->a.logits, NULL, f->w_logits, B_ * K);
    f->outs[k++] = out("pooled", m->a.pooled, NULL, f->w_pooled, B_ * C);
    f->outs[k++] = out("mlm_logits", m->a.mlm_logits, NULL, f->w_mlm, B_ * P_ * V);
    static char names[3 * BERT_MAX_LAYERS + 1][32];
    for (int64_t l = 0; l <= L; l++) {
        f->w_hidden[l] = malloc((size_t)BTC * sizeof(float));
        snprintf(names[l], sizeof names[l], "hidden.%lld", (long long)l);
        f->outs[k++] = out(names[l], m->a.hidden[l], NULL, f->w_hidden[l], BTC);
    }
    for (int64_t l = 0; l < L; l++) {
        const int64_t na = B_ * cfg->layer_heads[l] * T_ * T_;
        f->w_probs[l] = malloc((size_t)(na ? na : 1) * sizeof(float));
        f->w_scores[l] = malloc((size_t)(na ? na : 1) * sizeof(float));
        f->scores[l] = malloc((size_t)(na ? na : 1) * sizeof(double));
        snprintf(names[L + 1 + 2 * l], 32, "probs.%lld", (long long)l);
        snprintf(names[L + 2 + 2 * l], 32, "scores.%lld", (long long)l);
        f->outs[k++] = out(names[L + 1 + 2 * l], m->a.layer[l].probs, NULL, f->w_probs[l], na);
        f->outs[k++] = out(names[L + 2 + 2 * l], NULL, f->scores[l], f->w_scores[l], na);
    }
    f->n_outs = k;

    /* parameters: every tensor of the table, or h_0 alone */
    struct gc_param *prm = calloc((size_t)m->ptab.n + 1, sizeof *prm);
    int np = 0;
    float *pbase = (float *)(void *)m->params_arena.base;
    float *gbase = (float *)(void *)m->grads_arena.base;
    if (via_h0) {
        prm[np++] = (struct gc_param){"embedding_output", f->h0, f->dh0, BTC};
    } else {
        for (int i = 0; i < m->ptab.n; i++) {
            const struct bert_tensor *t = &m->ptab.t[i];
            if (t->numel > 0)
                prm[np++] = (struct gc_param){t->name, pbase + t->offset, gbase + t->offset,
                                              t->numel};
        }
    }
    struct gc_problem p = {what, f, fwd, bwd, f->outs, f->n_outs, prm, np};
    struct gc_opts go = {.eps = 1e-2, .rel_tol = 1e-2, .abs_tol = 1e-3,
                         .max_entries = via_h0 ? 0 : 12, .check_accumulate = 1, .seed = 17};
    gradcheck(&p, &go);

    for (int64_t l = 0; l <= L; l++)
        free(f->w_hidden[l]);
    for (int64_t l = 0; l < L; l++)
        free(f->w_probs[l]), free(f->w_scores[l]), free(f->scores[l]);
    free(f->w_hidden), free(f->w_probs), free(f->w_scores), free(f->scores);
    free(f->w_logits), free(f->w_pooled), free(f->w_mlm), free(f->outs);
    free(f->h0), free(f->dh0), free(prm);
    bert_free(m);
    free(f);
}

/* Dropout independent of the rank layout: a batch of 4 in one call equals
 * two calls of 2 with first_example 0 and 2 (as two ranks would run it),
 * bit for bit, for every tap and for d loss / d h_0 (each example's rows
 * depend on that example only). */
static void check_rank_split(const struct bert_config *cfg)
{
    enum { B = 4, T = 5 };
    static const int32_t ids[B * T] = {2, 7, 1, 13, 19, 5, 3, 6, 11, 4,
                                       9, 9, 2, 0, 0, 17, 8, 3, 3, 1};
    static const int32_t mask[B * T] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                        1, 1, 1, 0, 0, 1, 1, 1, 1, 1};
    struct bert_opts o = {.B = B, .T = T, .heads = BERT_HEAD_CLASSIFIER, .backward = 1,
                          .param_grads = 1, .seed = 11};
    struct bert_model m;
    struct kd_err err;
    if (bert_init(&m, cfg, &o, &err) != 0)
        bail_out("%s", err.msg);
    randomise(&m, 3);
    const int64_t L = cfg->num_hidden_layers, C = cfg->hidden_size, K = cfg->num_labels;
    float *full[4];
    float *dlog = malloc((size_t)(B * K) * sizeof(float));
    gc_rand(dlog, B * K, -1, 1, 5);
    struct bert_grad_in g;
    memset(&g, 0, sizeof g);
    int same = 1;
    for (int half = -1; half < 2; half++) { /* -1: the whole batch */
        const int64_t b0 = half < 0 ? 0 : 2 * half, nb = half < 0 ? B : 2;
        struct bert_batch batch = {.B = nb, .T = T, .input_ids = ids + b0 * T,
                                   .attention_mask = mask + b0 * T, .train = 1,
                                   .first_example = 100 + (uint64_t)b0, .step = 7};
        bert_forward(&m, &batch);
        g.dlogits = dlog + b0 * K;
        bert_zero_grads(&m);
        bert_backward(&m, &g);
        const float *taps[4] = {bert_hidden(&m, L), bert_probs(&m, 0), bert_logits(&m),
                                m.d_embedding_output};
        const int64_t per[4] = {T * C, cfg->layer_heads[0] * T * T, K, T * C};
        for (int k = 0; k < 4; k++) {
            if (half < 0) {
                full[k] = malloc((size_t)(B * per[k]) * sizeof(float));
                memcpy(full[k], taps[k], (size_t)(B * per[k]) * sizeof(float));
            } else {
                same &= memcmp(full[k] + b0 * per[k], taps[k],
                               (size_t)(nb * per[k]) * sizeof(float)) == 0;
            }
        }
    }
    ok(same, "dropout on: one call of 4 = two 'ranks' of 2 (first_example offset), bit for "
             "bit (h_L, probs, logits, d h_0)");
    for (int k = 0; k < 4; k++)
        free(full[k]);
    free(dlog);
    bert_free(&m);
}

int main(void)
{
    log_set_level(LOG_LEVEL_ERROR);
    struct bert_config cfg;
    bt_tiny_config(&cfg, 3, 3, 4, 16, 20, 10, 3);
    cfg.pad_token_id = -1;
    cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.1;
    cfg.classifier_dropout = 0.1;
    run("bert full", &cfg, 0, 0);
    check_rank_split(&cfg);
    run("bert h0 input", &cfg, 0, 1);

    /* pruned: layer 0 keeps heads 0 and 2, layer 1 none; FFN 16, 0, 5 */
    cfg.layer_heads[0] = 2, cfg.layer_head_mask[0] = 0x5;
    cfg.layer_heads[1] = 0, cfg.layer_head_mask[1] = 0x0;
    cfg.layer_intermediate[1] = 0;
    cfg.layer_intermediate[2] = 5;
    run("bert pruned", &cfg, 0, 0);
    run("bert pruned train p=0.1", &cfg, 1, 0);
    return done_testing();
}

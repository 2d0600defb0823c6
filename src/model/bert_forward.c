/* bert_forward.c: the BERT forward pass, embeddings and encoder layers
 * (model layer; no MPI). The heads run in bert_heads.c.
 *
 * Every product goes through gemm() (directly or via linear_forward), and
 * the pointwise work is fused where the kernels allow:
 *   - FFN bias + GELU in one pass (gelu_forward with pre == inp);
 *   - without dropout, bias + residual are folded into the output
 *     projections: the output rows are seeded with x + b and gemm
 *     accumulates x W^T onto them (beta = 1), so the projection output never
 *     exists on its own and no separate residual pass runs;
 *   - LayerNorm writes the next layer's input directly.
 * Everything the backward needs is kept in the activation block (see
 * struct bert_layer_acts); nothing is allocated here.
 *
 * Threads: the kernels share their loops over the team themselves
 * (kernels/threads.h); the one pass of this file, the bias + residual
 * seeding, splits its rows the same way. */
#include "bert_internal.h"

#include "kd/kernels/attention.h"
#include "kd/kernels/dropout.h"
#include "kd/kernels/elementwise.h"
#include "kd/kernels/embedding.h"
#include "kd/kernels/gelu.h"
#include "kd/kernels/gemm.h"
#include "kd/kernels/layernorm.h"
#include "kd/kernels/linear.h"
#include "kd/kernels/threads.h"

#include <string.h>

struct dropout_spec bert_drop(const struct bert_model *m, double p, uint64_t site,
                              uint64_t per_example)
{
    const struct bert_batch *b = &m->batch;
    struct dropout_spec d;
    d.p = b->train ? (float)p : 0.0f;
    d.seed = m->opts.seed;
    d.offset = b->step * BERT_DROP_SITES + site;
    d.first = b->first_example * per_example;
    return d;
}

/* out (BT,OC) = res (BT,OC) + dropout(inp (BT,IC) @ w (OC,IC)^T + b (OC)).
 * Without dropout the bias and residual seed the output and the product is
 * accumulated onto them: one gemm, one pass. IC == 0 (pruned block) leaves
 * res + dropout(b). out must not alias inp or res. */
static void proj_residual(float *out, const float *inp, const float *w, const float *b,
                          const float *res, struct dropout_spec d, int64_t BT, int64_t IC,
                          int64_t OC)
{
    if (d.p == 0.0f) {
        const int nt = threads_team(BT * OC, BERT_PASS_GRAIN);
        KD_OMP_TEAM(nt, parallel for schedule(static))
        for (int64_t r = 0; r < BT; r++)
            bert_add(out + r * OC, res + r * OC, b, OC);
        gemm(out, OC, inp, IC, w, IC, GEMM_TRANS_N, GEMM_TRANS_T, BT, OC, IC, 1.0f, 1.0f);
        return;
    }
    /* training: the dropout sits between the projection and the sum */
    linear_forward(out, inp, w, b, BT, IC, OC);
    dropout_forward(out, out, d, BT * OC);
    residual_forward(out, out, res, BT * OC);
}

/* h_0 = dropout(LN(word[id] + pos[t] + type[tt])), or the caller's
 * embedding output as is; on a slice, its input h_begin. */
static void embeddings_forward(struct bert_model *m)
{
    const struct bert_batch *b = &m->batch;
    const struct bert_config *cfg = &m->cfg;
    const int64_t B = b->B, T = b->T, BT = B * T, C = cfg->hidden_size;
    struct bert_acts *a = &m->a;
    if (b->embedding_output) {
        memcpy(a->hidden[m->layer_begin], b->embedding_output, (size_t)(BT * C) * sizeof(float));
        return;
    }
    embedding_forward(a->emb_sum, b->input_ids, b->token_type_ids, m->p.word_emb, m->p.pos_emb,
                      m->p.type_emb, B, T, C, cfg->vocab_size, cfg->type_vocab_size);
    layernorm_forward(a->hidden[0], a->emb_mean, a->emb_rstd, a->emb_sum, m->p.emb_ln_w,
                      m->p.emb_ln_b, BT, C, (float)cfg->layer_norm_eps);
    struct dropout_spec d = bert_drop(m, cfg->hidden_dropout_prob, 0, (uint64_t)(T * C));
    if (d.p > 0.0f)
        dropout_forward(a->hidden[0], a->hidden[0], d, BT * C);
}

/* Encoder layer l: h_{l+1} from h_l. */
static void layer_forward(struct bert_model *m, int64_t l)
{
    const struct bert_batch *b = &m->batch;
    const struct bert_config *cfg = &m->cfg;
    const int64_t B = b->B, T = b->T, BT = B * T, C = cfg->hidden_size;
    const int64_t NH = cfg->layer_heads[l], HS = m->HS, CH = NH * HS;
    const int64_t F = cfg->layer_intermediate[l];
    const float eps = (float)cfg->layer_norm_eps;
    const struct bert_layer_params *p = &m->p.layer[l];
    struct bert_layer_acts *a = &m->a.layer[l];
    const float *x = m->a.hidden[l]; /* (B,T,C) */

    /* self-attention: packed QKV projection, then the attention core */
    if (NH > 0) {
        linear_forward(a->qkv, x, p->qkv_w, p->qkv_b, BT, C, 3 * CH);
        struct dropout_spec dp = bert_drop(m, cfg->attention_probs_dropout_prob,
                                           BERT_SITE_PROBS(l), (uint64_t)(NH * T * T));
        attention_forward(a->ctx, a->probs, a->qkv, b->attention_mask, dp, m->a.attn_scratch,
                          B, T, NH, HS);
    }
    /* y = LN(x + dropout(ctx W_o^T + b_o)) */
    struct dropout_spec dh = bert_drop(m, cfg->hidden_dropout_prob, BERT_SITE_ATTN_OUT(l),
                                       (uint64_t)(T * C));
    proj_residual(a->attn_res, a->ctx, p->attn_out_w, p->attn_out_b, x, dh, BT, CH, C);
    layernorm_forward(a->attn_ln, a->attn_mean, a->attn_rstd, a->attn_res, p->attn_ln_w,
                      p->attn_ln_b, BT, C, eps);

    /* FFN: gelu(y W_1^T + b_1) with the bias fused into the GELU pass */
    if (F > 0) {
        linear_forward(a->ffn_pre, a->attn_ln, p->ffn_in_w, NULL, BT, C, F);
        gelu_forward(a->ffn_act, a->ffn_pre, a->ffn_pre, p->ffn_in_b, BT, F);
    }
    /* h_{l+1} = LN(y + dropout(act W_2^T + b_2)) */
    struct dropout_spec df = bert_drop(m, cfg->hidden_dropout_prob, BERT_SITE_FFN_OUT(l),
                                       (uint64_t)(T * C));
    proj_residual(a->ffn_res, a->ffn_act, p->ffn_out_w, p->ffn_out_b, a->attn_ln, df, BT, F, C);
    layernorm_forward(m->a.hidden[l + 1], a->ffn_mean, a->ffn_rstd, a->ffn_res, p->ffn_ln_w,
                      p->ffn_ln_b, BT, C, eps);
}

void bert_forward(struct bert_model *m, const struct bert_batch *batch)
{
    const struct bert_opts *o = &m->opts;
    KD_ASSERT(batch->B > 0 && batch->B <= o->B && batch->T > 0 && batch->T <= o->T,
              "batch %lld x %lld exceeds the model's allocation %lld x %lld",
              (long long)batch->B, (long long)batch->T, (long long)o->B, (long long)o->T);
    KD_ASSERT(batch->P >= 0 && batch->P <= o->P,
              "batch has %lld MLM positions per sequence, the model was sized for %lld",
              (long long)batch->P, (long long)o->P);
    KD_ASSERT(batch->input_ids || batch->embedding_output,
              "batch has neither input_ids nor an embedding output");
    KD_ASSERT(bert_has_embeddings(m) || batch->embedding_output,
              "a slice starting at layer %lld needs its input hidden state "
              "(batch.embedding_output)", (long long)m->layer_begin);
    m->batch = *batch;
    m->have_forward = 1;
    embeddings_forward(m);
    for (int64_t l = m->layer_begin; l < m->layer_end; l++)
        layer_forward(m, l);
    bert_heads_forward(m);
}

/* bert_backward.c: the BERT backward pass, heads to embeddings (model
 * layer; no MPI).
 *
 * Gradient flow, with dh = d loss / d h (B,T,C) carried from layer to
 * layer in two ping-pong buffers:
 *   dh_L  = injected dhidden[L] + the heads' contribution
 *   layer l (reverse of layer_forward), dh_l from dh_{l+1}:
 *     dy  = LN2'(dh_{l+1})                     (the FFN residual sum)
 *     dy += W_1-path(GELU'(W_2-path(dropout'(dy))))
 *     dx  = LN1'(dy)                           (the attention residual sum)
 *     dx += W_qkv-path(attention'(W_o-path(dropout'(dx)), dprobs_l, dscores_l))
 *     dh_l = dx + injected dhidden[l]
 *   embeddings: d h_0 is kept (m->d_embedding_output); LN' and the table
 *   scatter give the embedding gradients.
 * Parameter gradients accumulate (+=); the caller zeroes them per step.
 *
 * The input gradients of the projections are written by gemm with beta = 0
 * where nothing else contributes, which saves zeroing a buffer; the kernel
 * calls that accumulate (LayerNorm, GELU, attention) get a zeroed one.
 * When dropout is off, the gradient of a dropout input IS its output
 * gradient, so the same buffer is used without a copy (dproj aliases).
 *
 * Threads: the kernels share their loops over the team themselves
 * (kernels/threads.h). This file's own passes do the same: zeroing and
 * adds split their elements; the word-embedding scatter splits the columns,
 * so that every element of a word row is summed in batch order whatever the
 * team size. */
#include "bert_internal.h"

#include "kd/kernels/attention.h"
#include "kd/kernels/dropout.h"
#include "kd/kernels/embedding.h"
#include "kd/kernels/gelu.h"
#include "kd/kernels/gemm.h"
#include "kd/kernels/layernorm.h"
#include "kd/kernels/linear.h"
#include "kd/kernels/threads.h"

#include <string.h>

#define GP(g, field) ((g) ? (g)->field : NULL)

static void zero(float *x, int64_t n)
{
    if (n <= 0)
        return;
    const int nt = threads_team(n, BERT_PASS_GRAIN);
    KD_OMP_TEAM(nt, parallel)
    {
        int64_t lo, hi;
        threads_split(n, threads_count(), threads_id(), BERT_VL, &lo, &hi);
        if (hi > lo)
            memset(x + lo, 0, (size_t)(hi - lo) * sizeof(float));
    }
}

/* y (n) += x (n), split over the team */
static void acc(float *y, const float *x, int64_t n)
{
    const int nt = threads_team(n, BERT_PASS_GRAIN);
    KD_OMP_TEAM(nt, parallel)
    {
        int64_t lo, hi;
        threads_split(n, threads_count(), threads_id(), BERT_VL, &lo, &hi);
        if (hi > lo)
            bert_acc(y + lo, x + lo, hi - lo);
    }
}

/* Gradient before a dropout whose output gradient is dout (n): dout itself
 * when the dropout is off, else dout times the replayed mask, written into
 * scratch. dropout_forward applies exactly the factor dropout_backward
 * would (dropout.h), and writes instead of accumulating, which saves
 * zeroing the scratch first. */
static const float *undrop(const float *dout, float *scratch, struct dropout_spec d, int64_t n)
{
    if (d.p == 0.0f)
        return dout;
    dropout_forward(scratch, dout, d, n);
    return scratch;
}

/* Layer l: dx (B,T,C) = d loss / d h_l given dout = d loss / d h_{l+1}.
 * g: parameter gradients of the layer, or NULL. */
static void layer_backward(struct bert_model *m, int64_t l, float *dx, const float *dout,
                           const struct bert_grad_in *in, struct bert_layer_params *g)
{
    const struct bert_batch *b = &m->batch;
    const struct bert_config *cfg = &m->cfg;
    const int64_t B = b->B, T = b->T, BT = B * T, C = cfg->hidden_size;
    const int64_t NH = cfg->layer_heads[l], HS = m->HS, CH = NH * HS;
    const int64_t F = cfg->layer_intermediate[l];
    const struct bert_layer_params *p = &m->p.layer[l];
    const struct bert_layer_acts *a = &m->a.layer[l];
    const struct bert_grad_acts *ga = &m->ga;
    float *dy = ga->dy;

    /* ---- FFN block: h_{l+1} = LN(y + dropout(gelu(y W1^T + b1) W2^T + b2)) */
    zero(dy, BT * C); /* dy = d ffn_res, which is also the residual's share of d y */
    layernorm_backward(dy, GP(g, ffn_ln_w), GP(g, ffn_ln_b), dout, a->ffn_res, a->ffn_mean,
                       a->ffn_rstd, p->ffn_ln_w, BT, C);
    struct dropout_spec df = bert_drop(m, cfg->hidden_dropout_prob, BERT_SITE_FFN_OUT(l),
                                       (uint64_t)(T * C));
    const float *dproj = undrop(dy, ga->dproj, df, BT * C); /* d (act W2^T + b2) */
    if (F > 0) /* dact (BT,F) = dproj (BT,C) @ W2 (C,F) */
        gemm(ga->dact, F, dproj, C, p->ffn_out_w, F, GEMM_TRANS_N, GEMM_TRANS_N, BT, F, C,
             1.0f, 0.0f);
    linear_backward(NULL, GP(g, ffn_out_w), GP(g, ffn_out_b), dproj, a->ffn_act, p->ffn_out_w,
                    BT, F, C);
    if (F > 0) {
        zero(ga->dpre, BT * F);
        gelu_backward(ga->dpre, GP(g, ffn_in_b), ga->dact, a->ffn_pre, BT, F);
        /* dy += dpre @ W1: dproj (possibly dy itself) is fully consumed */
        linear_backward(dy, GP(g, ffn_in_w), NULL, ga->dpre, a->attn_ln, p->ffn_in_w, BT, C, F);
    }

    /* ---- attention block: y = LN(x + dropout(ctx Wo^T + bo)) */
    zero(dx, BT * C);
    layernorm_backward(dx, GP(g, attn_ln_w), GP(g, attn_ln_b), dy, a->attn_res, a->attn_mean,
                       a->attn_rstd, p->attn_ln_w, BT, C);
    struct dropout_spec dh = bert_drop(m, cfg->hidden_dropout_prob, BERT_SITE_ATTN_OUT(l),
                                       (uint64_t)(T * C));
    dproj = undrop(dx, ga->dproj, dh, BT * C);
    if (NH > 0) /* dctx (BT,CH) = dproj (BT,C) @ Wo (C,CH) */
        gemm(ga->dctx, CH, dproj, C, p->attn_out_w, CH, GEMM_TRANS_N, GEMM_TRANS_N, BT, CH, C,
             1.0f, 0.0f);
    linear_backward(NULL, GP(g, attn_out_w), GP(g, attn_out_b), dproj, a->ctx, p->attn_out_w,
                    BT, CH, C);
    if (NH > 0) {
        struct dropout_spec dp = bert_drop(m, cfg->attention_probs_dropout_prob,
                                           BERT_SITE_PROBS(l), (uint64_t)(NH * T * T));
        zero(ga->dqkv, BT * 3 * CH);
        attention_backward(ga->dqkv, ga->dctx, in->dprobs[l], in->dscores[l], a->probs, a->qkv,
                           b->attention_mask, dp, m->a.attn_scratch, B, T, NH, HS);
        /* dx += dqkv @ W_qkv, d W_qkv += dqkv^T x, d b_qkv */
        linear_backward(dx, GP(g, qkv_w), GP(g, qkv_b), ga->dqkv, m->a.hidden[l], p->qkv_w, BT,
                        C, 3 * CH);
    }
}

/* Embeddings: parameter gradients from d h_0. The lookup of pad_token_id
 * adds nothing to its word row (nn.Embedding(padding_idx), as
 * transformers builds BERT); positions and token types get every token's
 * gradient, padding included. */
static void embeddings_backward(struct bert_model *m, const float *dh0)
{
    const struct bert_batch *b = &m->batch;
    const struct bert_config *cfg = &m->cfg;
    const int64_t B = b->B, T = b->T, BT = B * T, C = cfg->hidden_size;
    struct bert_params *g = &m->g;
    struct dropout_spec d = bert_drop(m, cfg->hidden_dropout_prob, BERT_SITE_EMB,
                                      (uint64_t)(T * C));
    const float *dln = undrop(dh0, m->ga.dproj, d, BT * C);
    float *dsum = m->ga.dy; /* (B,T,C) d (word + pos + type) */
    zero(dsum, BT * C);
    layernorm_backward(dsum, g->emb_ln_w, g->emb_ln_b, dln, m->a.emb_sum, m->a.emb_mean,
                       m->a.emb_rstd, m->p.emb_ln_w, BT, C);
    embedding_backward(NULL, g->pos_emb, g->type_emb, dsum, b->input_ids, b->token_type_ids, B,
                       T, C, cfg->vocab_size, cfg->type_vocab_size);
    /* word rows, in batch order (deterministic); each thread takes columns
     * [j0, j1) of every row, BERT_VL-aligned so bert_acc's blocks are those
     * of the whole row */
    const int nt = threads_team(BT * C, BERT_PASS_GRAIN);
    KD_OMP_TEAM(nt, parallel)
    {
        int64_t j0, j1;
        threads_split(C, threads_count(), threads_id(), BERT_VL, &j0, &j1);
        for (int64_t i = 0; j1 > j0 && i < BT; i++) {
            const int64_t id = b->input_ids[i];
            if (id != cfg->pad_token_id)
                bert_acc(g->word_emb + id * C + j0, dsum + i * C + j0, j1 - j0);
        }
    }
}

void bert_backward(struct bert_model *m, const struct bert_grad_in *in)
{
    KD_ASSERT(m->opts.backward, "the model was built without backward caches");
    KD_ASSERT(m->have_forward, "bert_backward before bert_forward");
    KD_ASSERT(in->skip_param_grads || m->opts.param_grads,
              "parameter gradients requested but the model has no gradient block");
    const struct bert_batch *b = &m->batch;
    const int64_t L = m->cfg.num_hidden_layers, BTC = b->B * b->T * m->cfg.hidden_size;
    const int64_t lb = m->layer_begin, le = m->layer_end;
    struct bert_params *g = in->skip_param_grads ? NULL : &m->g;

    /* d h_end: injected gradient (on a slice before the last: the next
     * slice's d h_begin) plus the heads on the last slice */
    float *dh = m->ga.dh[0], *dnext = m->ga.dh[1];
    if (in->dhidden[le])
        memcpy(dh, in->dhidden[le], (size_t)BTC * sizeof(float));
    else
        zero(dh, BTC);
    if (le == L) {
        bert_heads_backward(m, in, g, dh);
        if (g && in->grads_ready)
            in->grads_ready(in->grads_ready_ctx, L);
    }

    for (int64_t l = le - 1; l >= lb; l--) {
        layer_backward(m, l, dnext, dh, in, g ? &g->layer[l] : NULL);
        if (g && in->grads_ready)
            in->grads_ready(in->grads_ready_ctx, l);
        if (in->dhidden[l])
            acc(dnext, in->dhidden[l], BTC);
        float *t = dh;
        dh = dnext;
        dnext = t;
    }
    m->d_embedding_output = dh; /* d loss / d h_begin */
    if (lb > 0)
        return; /* the embeddings live on the first slice */
    if (g && !b->embedding_output)
        embeddings_backward(m, dh);
    if (g && in->grads_ready)
        in->grads_ready(in->grads_ready_ctx, -1);
}
